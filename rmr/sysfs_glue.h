/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sysfs attribute tables and kobject plumbing shared by rmr.ko and brmr.ko.
 *
 * Rust on 6.12 has no sysfs abstractions, so this header provides the tables and thin
 * wrappers; every decision is taken in Rust. Each object directory is a `struct glue_kobj`
 * carrying (kind, id): the Rust side looks the object up by id under its own lock, so no
 * pointer to a Rust object ever lives in sysfs. Show/store go to GLUE_SHOW/GLUE_STORE with
 * the attribute name.
 *
 * The including file defines GLUE_SHOW, GLUE_STORE and the attribute table
 * GLUE_KINDS (see rmr_glue.c) before including this file.
 */
#include <linux/device.h>
#include <linux/kdev_t.h>
#include <linux/kobject.h>
#include <linux/slab.h>
#include <linux/sysfs.h>

struct glue_kobj {
	struct kobject kobj;
	u32 kind;
	u64 id;
};

static void glue_kobj_release(struct kobject *kobj)
{
	kfree(container_of(kobj, struct glue_kobj, kobj));
}

static ssize_t glue_attr_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	struct glue_kobj *o = container_of(kobj, struct glue_kobj, kobj);

	return GLUE_SHOW(o->kind, o->id, attr->attr.name, buf);
}

/*
 * A store may destroy the object it was written to (leave_pool, del_sess, remove_store...).
 * Active protection of this one file is broken for the call so that the removal does not wait
 * for ourselves; the kobject stays referenced until we return. Rust never keeps pointers
 * across the call, it looks objects up by id, so a concurrent removal is harmless.
 */
static ssize_t glue_attr_store(struct kobject *kobj, struct kobj_attribute *attr,
			       const char *buf, size_t count)
{
	struct glue_kobj *o = container_of(kobj, struct glue_kobj, kobj);
	struct kernfs_node *kn;
	ssize_t ret;

	kn = sysfs_break_active_protection(kobj, &attr->attr);
	ret = GLUE_STORE(o->kind, o->id, attr->attr.name, buf, count);
	if (kn)
		sysfs_unbreak_active_protection(kn);
	return ret;
}

#define GLUE_RO(_name) struct kobj_attribute glue_attr_##_name = __ATTR(_name, 0444, glue_attr_show, NULL)
#define GLUE_WO(_name) struct kobj_attribute glue_attr_##_name = __ATTR(_name, 0200, NULL, glue_attr_store)
/* A read-only attribute named like a writable one of another kind (e.g. `sync`). */
#define GLUE_RO_AS(_var, _name) struct kobj_attribute glue_attr_##_var = \
	__ATTR(_name, 0444, glue_attr_show, NULL)
#define GLUE_RW(_name) struct kobj_attribute glue_attr_##_name = \
	__ATTR(_name, 0644, glue_attr_show, glue_attr_store)

/* Creates a directory `name` under `parent` whose files are the attribute group of `kind`. */
struct glue_kobj *glue_kobj_add(struct kobject *parent, const char *name, u32 kind, u64 id);
struct glue_kobj *glue_kobj_add(struct kobject *parent, const char *name, u32 kind, u64 id)
{
	struct glue_kobj *o;
	int ret;

	if (kind >= ARRAY_SIZE(glue_ktypes))
		return ERR_PTR(-EINVAL);
	o = kzalloc(sizeof(*o), GFP_KERNEL);
	if (!o)
		return ERR_PTR(-ENOMEM);
	o->kind = kind;
	o->id = id;
	ret = kobject_init_and_add(&o->kobj, &glue_ktypes[kind], parent, "%s", name);
	if (ret) {
		kobject_put(&o->kobj);
		return ERR_PTR(ret);
	}
	return o;
}

struct kobject *glue_kobj_of(struct glue_kobj *o);
struct kobject *glue_kobj_of(struct glue_kobj *o)
{
	return &o->kobj;
}

/* Removes the directory (waiting for other readers and writers to finish) and drops it. */
void glue_kobj_del(struct glue_kobj *o);
void glue_kobj_del(struct glue_kobj *o)
{
	kobject_del(&o->kobj);
	kobject_put(&o->kobj);
}

/* Attributes of the class devices (`ctl`): drvdata points at the kind. */
static __maybe_unused ssize_t glue_dev_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	const u32 *kind = dev_get_drvdata(dev);

	return GLUE_SHOW(*kind, 0, attr->attr.name, buf);
}

static ssize_t glue_dev_store(struct device *dev, struct device_attribute *attr,
			      const char *buf, size_t count)
{
	const u32 *kind = dev_get_drvdata(dev);

	return GLUE_STORE(*kind, 0, attr->attr.name, buf, count);
}

#define GLUE_DEV_WO(_name) struct device_attribute glue_dattr_##_name = \
	__ATTR(_name, 0200, NULL, glue_dev_store)

static void glue_dev_release(struct device *dev)
{
	kfree(dev);
}

/* A class device without the power/ directory: its directory lists only our entries. */
static struct device *glue_device_new(struct class *cls, const char *name,
				      const struct attribute_group **groups, const void *drvdata)
{
	struct device *dev;
	int ret;

	dev = kzalloc(sizeof(*dev), GFP_KERNEL);
	if (!dev)
		return ERR_PTR(-ENOMEM);
	device_initialize(dev);
	dev->class = cls;
	dev->groups = groups;
	dev->release = glue_dev_release;
	dev_set_drvdata(dev, (void *)drvdata);
	device_set_pm_not_required(dev);
	ret = dev_set_name(dev, "%s", name);
	if (!ret)
		ret = device_add(dev);
	if (ret) {
		put_device(dev);
		return ERR_PTR(ret);
	}
	return dev;
}

/* A class with its `ctl` device and optionally one container device (`pools`, `stores`). */
struct glue_class {
	struct class *cls;
	struct device *ctl;
	struct device *extra;
};

static int glue_class_create(struct glue_class *gc, const char *name,
			     const struct attribute_group **ctl_groups, const u32 *ctl_kind,
			     const char *extra)
{
	int ret;

	gc->cls = class_create(name);
	if (IS_ERR(gc->cls))
		return PTR_ERR(gc->cls);
	gc->ctl = glue_device_new(gc->cls, "ctl", ctl_groups, ctl_kind);
	if (IS_ERR(gc->ctl)) {
		ret = PTR_ERR(gc->ctl);
		goto err_cls;
	}
	gc->extra = NULL;
	if (extra) {
		gc->extra = glue_device_new(gc->cls, extra, NULL, NULL);
		if (IS_ERR(gc->extra)) {
			ret = PTR_ERR(gc->extra);
			goto err_ctl;
		}
	}
	return 0;
err_ctl:
	device_unregister(gc->ctl);
err_cls:
	class_destroy(gc->cls);
	return ret;
}

static void glue_class_destroy(struct glue_class *gc)
{
	if (gc->extra)
		device_unregister(gc->extra);
	device_unregister(gc->ctl);
	class_destroy(gc->cls);
}
