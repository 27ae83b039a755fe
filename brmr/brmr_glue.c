// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * brmr.ko C side: sysfs tables and one-line wrappers of block-device helpers that are
 * static inlines or need ERR_PTR handling. No logic: everything is forwarded to Rust.
 */
#include <linux/module.h>
#include <linux/blkdev.h>
#include <linux/fs.h>

ssize_t brmr_rs_show(u32 kind, u64 id, const char *attr, char *buf);
ssize_t brmr_rs_store(u32 kind, u64 id, const char *attr, const char *buf, size_t count);

#define GLUE_SHOW brmr_rs_show
#define GLUE_STORE brmr_rs_store

/* Object kinds; must match `glue::Kind` in brmr/brmr_main.rs. */
enum {
	BRMR_K_CLT_CTL,
	BRMR_K_SRV_CTL,
	BRMR_K_STORE,
	BRMR_K_PLAIN,
	BRMR_K_CLT_DEV,
	BRMR_K_NR,
};

static const struct kobj_type glue_ktypes[BRMR_K_NR];
#include "sysfs_glue.h"

static GLUE_RO(state);
static GLUE_RO(mapped_size);
static GLUE_RO(bdev_name);
static GLUE_RO(dev_size);
static GLUE_WO(remove_store);
static GLUE_WO(delete_store);

static GLUE_RO(stats);
static GLUE_RO(pool);
static GLUE_WO(unmap_device);

static struct attribute *clt_dev_attrs[] = {
	&glue_attr_state.attr, &glue_attr_unmap_device.attr, &glue_attr_stats.attr,
	&glue_attr_pool.attr, NULL,
};
ATTRIBUTE_GROUPS(clt_dev);

static struct attribute *store_attrs[] = {
	&glue_attr_state.attr, &glue_attr_mapped_size.attr, &glue_attr_bdev_name.attr,
	&glue_attr_dev_size.attr, &glue_attr_remove_store.attr, &glue_attr_delete_store.attr,
	NULL,
};
ATTRIBUTE_GROUPS(store);

static const struct kobj_type glue_ktypes[BRMR_K_NR] = {
	[BRMR_K_STORE] = { .release = glue_kobj_release, .sysfs_ops = &kobj_sysfs_ops,
			   .default_groups = store_groups },
	[BRMR_K_PLAIN] = { .release = glue_kobj_release, .sysfs_ops = &kobj_sysfs_ops },
	[BRMR_K_CLT_DEV] = { .release = glue_kobj_release, .sysfs_ops = &kobj_sysfs_ops,
			     .default_groups = clt_dev_groups },
	[BRMR_K_CLT_CTL] = { .release = glue_kobj_release },
	[BRMR_K_SRV_CTL] = { .release = glue_kobj_release },
};

static GLUE_DEV_WO(create_store);
static GLUE_DEV_WO(add_store);
static struct attribute *srv_ctl_attrs[] = {
	&glue_dattr_create_store.attr, &glue_dattr_add_store.attr, NULL,
};
ATTRIBUTE_GROUPS(srv_ctl);
static GLUE_DEV_WO(map_device);
static struct attribute *clt_ctl_attrs[] = { &glue_dattr_map_device.attr, NULL };
ATTRIBUTE_GROUPS(clt_ctl);

static const u32 clt_ctl_kind = BRMR_K_CLT_CTL;
static const u32 srv_ctl_kind = BRMR_K_SRV_CTL;
static struct glue_class clt_class, srv_class;

int glue_init(void);
int glue_init(void)
{
	int ret;

	ret = glue_class_create(&clt_class, "brmr-client", clt_ctl_groups, &clt_ctl_kind, NULL);
	if (ret)
		return ret;
	ret = glue_class_create(&srv_class, "brmr-server", srv_ctl_groups, &srv_ctl_kind, "stores");
	if (ret)
		glue_class_destroy(&clt_class);
	return ret;
}

void glue_exit(void);
void glue_exit(void)
{
	glue_class_destroy(&srv_class);
	glue_class_destroy(&clt_class);
}

/* Parent directories: 0 = brmr-client/ctl, 1 = brmr-server/stores. */
struct kobject *glue_dir(u32 which);
struct kobject *glue_dir(u32 which)
{
	return which ? &srv_class.extra->kobj : &clt_class.ctl->kobj;
}

/* `ctl/devices/brmrN/block`: link to the gendisk's device (disk_to_dev() is a macro). */
int brmr_link_disk(struct kobject *dir, struct gendisk *disk);
int brmr_link_disk(struct kobject *dir, struct gendisk *disk)
{
	return sysfs_create_link(dir, &disk_to_dev(disk)->kobj, "block");
}

void brmr_unlink_disk(struct kobject *dir);
void brmr_unlink_disk(struct kobject *dir)
{
	sysfs_remove_link(dir, "block");
}

/* Block device helpers: static inlines and ERR_PTR conversions only. */
struct file *brmr_bdev_open(const char *path, void *holder, int *err);
struct file *brmr_bdev_open(const char *path, void *holder, int *err)
{
	struct file *f = bdev_file_open_by_path(path, BLK_OPEN_READ | BLK_OPEN_WRITE, holder, NULL);

	*err = IS_ERR(f) ? PTR_ERR(f) : 0;
	return IS_ERR(f) ? NULL : f;
}

void brmr_bdev_close(struct file *f);
void brmr_bdev_close(struct file *f)
{
	bdev_fput(f);
}

u64 brmr_bdev_sectors(struct file *f);
u64 brmr_bdev_sectors(struct file *f)
{
	return bdev_nr_sectors(file_bdev(f));
}

u32 brmr_bdev_lbs(struct file *f);
u32 brmr_bdev_lbs(struct file *f)
{
	return bdev_logical_block_size(file_bdev(f));
}

bool brmr_bdev_write_cache(struct file *f);
bool brmr_bdev_write_cache(struct file *f)
{
	return bdev_write_cache(file_bdev(f));
}

int brmr_bdev_name(struct file *f, char *buf, size_t len);
int brmr_bdev_name(struct file *f, char *buf, size_t len)
{
	return snprintf(buf, len, "%pg", file_bdev(f));
}

ssize_t brmr_md_read(struct file *f, void *buf, size_t len, u64 pos);
ssize_t brmr_md_read(struct file *f, void *buf, size_t len, u64 pos)
{
	loff_t p = pos;

	return kernel_read(f, buf, len, &p);
}

ssize_t brmr_md_write(struct file *f, const void *buf, size_t len, u64 pos);
ssize_t brmr_md_write(struct file *f, const void *buf, size_t len, u64 pos)
{
	loff_t p = pos;

	return kernel_write(f, buf, len, &p);
}

int brmr_md_sync(struct file *f);
int brmr_md_sync(struct file *f)
{
	return vfs_fsync(f, 0);
}

int brmr_md_writeback(struct file *f);
int brmr_md_writeback(struct file *f)
{
	return file_write_and_wait(f);
}

MODULE_ALIAS("brmr-client");
MODULE_ALIAS("brmr-server");
