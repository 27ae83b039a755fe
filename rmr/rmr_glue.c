// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * rmr.ko C side: sysfs tables, the module parameter and the EXPORT_SYMBOL_GPL lines of the
 * C ABI that brmr.ko calls. No logic: everything is forwarded to Rust (rmr_main.rs).
 */
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/atomic.h>
#include <linux/sysfs.h>
#include <linux/spinlock.h>
#include <linux/workqueue.h>

ssize_t rmr_rs_show(u32 kind, u64 id, const char *attr, char *buf);
ssize_t rmr_rs_store(u32 kind, u64 id, const char *attr, const char *buf, size_t count);

#define GLUE_SHOW rmr_rs_show
#define GLUE_STORE rmr_rs_store

/* Object kinds; must match `glue::Kind` in rmr/glue.rs. */
enum {
	RMR_K_CLT_CTL,
	RMR_K_SRV_CTL,
	RMR_K_CLT_POOL,
	RMR_K_SRV_POOL,
	RMR_K_PLAIN,
	RMR_K_CLT_SESS,
	RMR_K_NR,
};

static const struct kobj_type glue_ktypes[RMR_K_NR];
#include "sysfs_glue.h"

static GLUE_WO(leave_pool);
static GLUE_RO(state);
static GLUE_RO(member_id);
static GLUE_WO(add_clt);
static GLUE_RW(sync);
static GLUE_RO(map_summary);
static GLUE_RO(map);
static GLUE_RO(sync_progress);
static GLUE_RO(write_intent);
static GLUE_RO(chunk_size);
static GLUE_RO(queue_depth);
static GLUE_RW(read_policy);
static GLUE_RO_AS(clt_sync, sync);

static GLUE_WO(add_sess);
static GLUE_WO(pool_enable);
static GLUE_WO(enable);
static GLUE_WO(del_sess);
static GLUE_WO(reconnect);

static struct attribute *clt_pool_attrs[] = {
	&glue_attr_add_sess.attr, &glue_attr_pool_enable.attr, &glue_attr_leave_pool.attr,
	&glue_attr_clt_sync.attr, &glue_attr_chunk_size.attr, &glue_attr_queue_depth.attr,
	&glue_attr_map_summary.attr, &glue_attr_read_policy.attr, NULL,
};
static struct attribute *clt_sess_attrs[] = {
	&glue_attr_enable.attr, &glue_attr_state.attr, &glue_attr_member_id.attr,
	&glue_attr_del_sess.attr, &glue_attr_reconnect.attr, NULL,
};
ATTRIBUTE_GROUPS(clt_sess);
static struct attribute *srv_pool_attrs[] = {
	&glue_attr_state.attr, &glue_attr_member_id.attr, &glue_attr_leave_pool.attr,
	&glue_attr_add_clt.attr, &glue_attr_sync.attr, &glue_attr_map_summary.attr,
	&glue_attr_map.attr, &glue_attr_sync_progress.attr, &glue_attr_write_intent.attr, NULL,
};
ATTRIBUTE_GROUPS(clt_pool);
ATTRIBUTE_GROUPS(srv_pool);

static const struct kobj_type glue_ktypes[RMR_K_NR] = {
	[RMR_K_CLT_POOL] = { .release = glue_kobj_release, .sysfs_ops = &kobj_sysfs_ops,
			     .default_groups = clt_pool_groups },
	[RMR_K_SRV_POOL] = { .release = glue_kobj_release, .sysfs_ops = &kobj_sysfs_ops,
			     .default_groups = srv_pool_groups },
	[RMR_K_CLT_SESS] = { .release = glue_kobj_release, .sysfs_ops = &kobj_sysfs_ops,
			     .default_groups = clt_sess_groups },
	[RMR_K_PLAIN] = { .release = glue_kobj_release, .sysfs_ops = &kobj_sysfs_ops },
	/* The ctl kinds are devices; their kobj_type slots stay unused. */
	[RMR_K_CLT_CTL] = { .release = glue_kobj_release },
	[RMR_K_SRV_CTL] = { .release = glue_kobj_release },
};

static GLUE_DEV_WO(join_pool);
static struct attribute *ctl_attrs[] = { &glue_dattr_join_pool.attr, NULL };
ATTRIBUTE_GROUPS(ctl);

static const u32 clt_ctl_kind = RMR_K_CLT_CTL;
static const u32 srv_ctl_kind = RMR_K_SRV_CTL;
static struct glue_class clt_class, srv_class;

/*
 * The server's IO completions run here, not on the system workqueue: a storage node whose
 * writeback goes through rmr (a loop or swap device on /dev/brmrN, or a client and a server on
 * one host) needs them to make progress under memory pressure (WQ_MEM_RECLAIM). Created
 * before any pool can exist; destroyed (drained) after the last pool is gone.
 */
static struct workqueue_struct *srv_io_wq;

struct workqueue_struct *rmr_glue_srv_io_wq(void);
struct workqueue_struct *rmr_glue_srv_io_wq(void)
{
	return srv_io_wq;
}

int glue_init(void);
int glue_init(void)
{
	int ret;

	srv_io_wq = alloc_workqueue("rmr_srv_io", WQ_MEM_RECLAIM, 0);
	if (!srv_io_wq)
		return -ENOMEM;
	ret = glue_class_create(&clt_class, "rmr-client", ctl_groups, &clt_ctl_kind, "pools");
	if (ret)
		goto err_wq;
	ret = glue_class_create(&srv_class, "rmr-server", ctl_groups, &srv_ctl_kind, "pools");
	if (ret)
		goto err_clt;
	return 0;
err_clt:
	glue_class_destroy(&clt_class);
err_wq:
	destroy_workqueue(srv_io_wq);
	srv_io_wq = NULL;
	return ret;
}

void glue_exit(void);
void glue_exit(void)
{
	glue_class_destroy(&srv_class);
	glue_class_destroy(&clt_class);
	destroy_workqueue(srv_io_wq);
	srv_io_wq = NULL;
}

/* Parent directories: 0 = rmr-client/pools, 1 = rmr-server/pools. */
struct kobject *glue_dir(u32 which);
struct kobject *glue_dir(u32 which)
{
	return &(which ? &srv_class : &clt_class)->extra->kobj;
}

/* Sets an int module parameter to @val if it parses and lies in min..max, else -EINVAL. */
static int rmr_param_set_range(const char *val, const struct kernel_param *kp, int min, int max)
{
	int v, ret;

	ret = kstrtoint(val, 10, &v);
	if (ret || v < min || v > max) {
		pr_err("rmr: %s must be %d..%d\n", kp->name, min, max);
		return -EINVAL;
	}
	*(int *)kp->arg = v;
	return 0;
}

/*
 * RMR_INT_PARAM: /sys/module/rmr/parameters/<name>, an int in min..max (EINVAL otherwise) with
 * its default, and rmr_glue_<name>() for Rust, which reads it with READ_ONCE.
 */
#define RMR_INT_PARAM(name, def, min, max, desc)					\
	static int name = def;								\
	static int name##_set(const char *val, const struct kernel_param *kp)		\
	{										\
		return rmr_param_set_range(val, kp, min, max);				\
	}										\
	static const struct kernel_param_ops name##_ops = {				\
		.set = name##_set,							\
		.get = param_get_int,							\
	};										\
	module_param_cb(name, &name##_ops, &name, 0644);				\
	MODULE_PARM_DESC(name, desc);							\
	int rmr_glue_##name(void);							\
	int rmr_glue_##name(void)							\
	{										\
		return READ_ONCE(name);							\
	}

/* In-flight sync requests per pool, read at each sync start. */
RMR_INT_PARAM(sync_queue_depth, 32, 1, 512, "In-flight sync requests per pool (1..512, default 32)");

/* Keep the write-intent record on stores with a volatile write cache, read at add_store. */
RMR_INT_PARAM(write_intent, 1, 0, 1,
	      "Keep the write-intent record on stores whose device has a volatile write cache (0|1, default 1; read when a store registers)");

/*
 * The bound of every wait of a client command or sync read for its RTRS confirmation (and for
 * a free permit), read at each wait.
 */
RMR_INT_PARAM(cmd_timeout_ms, 30000, 100, 600000,
	      "Bound of a command's wait for its reply, in ms (100..600000, default 30000)");

/*
 * RTRS heartbeat of rmr's paths (rmr_rtrs_hb.c), read when a path comes up: a beat every
 * hb_interval_ms, the path given up after hb_missed_max beats unanswered. RTRS's own 5 s x 5
 * keeps a cut client's session on a storage node for about 30 s.
 */
RMR_INT_PARAM(hb_interval_ms, 1000, 100, 5000,
	      "RTRS heartbeat interval of rmr's paths, in ms (100..5000, default 1000)");
RMR_INT_PARAM(hb_missed_max, 4, 1, 10,
	      "Heartbeats missed before an rmr path is given up (1..10, default 4)");

/* Read-only counters: `kp->arg` is the counter's atomic64_t. */
static int counter_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%lld\n", (long long)atomic64_read((atomic64_t *)kp->arg));
}

static const struct kernel_param_ops counter_ops = {
	.get = counter_get,
};

/*
 * Dirty-map pages allocated on demand under a lock (GFP_ATOMIC) rather than prepared where
 * sleeping is allowed: read-only, for tests and for admins (see rmr/kmap.rs).
 */
static atomic64_t map_atomic_pages = ATOMIC64_INIT(0);
module_param_cb(map_atomic_pages, &counter_ops, &map_atomic_pages, 0444);
MODULE_PARM_DESC(map_atomic_pages, "Dirty-map pages allocated atomically under a lock (read-only)");

void rmr_glue_map_atomic_page(void);
void rmr_glue_map_atomic_page(void)
{
	atomic64_inc(&map_atomic_pages);
}

/* Server requests allocated when a client IO arrived (each mem_id's is preallocated). */
static atomic64_t io_req_allocs = ATOMIC64_INIT(0);
module_param_cb(io_req_allocs, &counter_ops, &io_req_allocs, 0444);
MODULE_PARM_DESC(io_req_allocs, "Server requests allocated for a client IO at its arrival (read-only)");

void rmr_glue_io_req_alloc(void);
void rmr_glue_io_req_alloc(void)
{
	atomic64_inc(&io_req_allocs);
}

/*
 * debug_sg_audit: record the scatterlist of every in-flight client IO request and count one
 * handed to a request while another in-flight request holds it (two legs sharing a list:
 * each HCA would DMA-map it over the other's mapping). For tests; off by default.
 */
static bool debug_sg_audit;
module_param(debug_sg_audit, bool, 0644);
MODULE_PARM_DESC(debug_sg_audit, "Audit the scatterlists of in-flight IO requests (debug, default off)");

static atomic64_t sg_audit_requests = ATOMIC64_INIT(0);
static atomic64_t sg_audit_shared = ATOMIC64_INIT(0);

module_param_cb(sg_audit_requests, &counter_ops, &sg_audit_requests, 0444);
MODULE_PARM_DESC(sg_audit_requests, "IO requests audited by debug_sg_audit (read-only)");
module_param_cb(sg_audit_shared, &counter_ops, &sg_audit_shared, 0444);
MODULE_PARM_DESC(sg_audit_shared, "IO requests given a scatterlist already in flight (read-only)");

#define SG_AUDIT_MAX 4096
static const void *sg_audit_tab[SG_AUDIT_MAX];
static DEFINE_SPINLOCK(sg_audit_lock);

bool rmr_sg_audit_submit(const void *sg);
bool rmr_sg_audit_submit(const void *sg)
{
	unsigned long flags;
	int i, free = -1;
	bool shared = false;

	if (!READ_ONCE(debug_sg_audit) || !sg)
		return false;
	spin_lock_irqsave(&sg_audit_lock, flags);
	for (i = 0; i < SG_AUDIT_MAX; i++) {
		if (sg_audit_tab[i] == sg)
			shared = true;
		else if (!sg_audit_tab[i] && free < 0)
			free = i;
	}
	if (free >= 0)
		sg_audit_tab[free] = sg;
	spin_unlock_irqrestore(&sg_audit_lock, flags);
	atomic64_inc(&sg_audit_requests);
	if (shared) {
		atomic64_inc(&sg_audit_shared);
		pr_warn_ratelimited("rmr: debug_sg_audit: scatterlist %p handed to a second in-flight request\n", sg);
	}
	return free >= 0;
}

void rmr_sg_audit_done(const void *sg);
void rmr_sg_audit_done(const void *sg)
{
	unsigned long flags;
	int i;

	spin_lock_irqsave(&sg_audit_lock, flags);
	for (i = 0; i < SG_AUDIT_MAX; i++) {
		if (sg_audit_tab[i] == sg) {
			sg_audit_tab[i] = NULL;
			break;
		}
	}
	spin_unlock_irqrestore(&sg_audit_lock, flags);
}

MODULE_ALIAS("rmr-client");
MODULE_ALIAS("rmr-server");

/* The C ABI of rmr/api/abi.rs, implemented in Rust (rmr/api/). */
int rmr_srv_pool_query(const u8 *name, size_t len, u32 *member_id);
int rmr_srv_register(const u8 *name, size_t len, const void *ops, void *priv, u32 mode, void *md);
int rmr_srv_unregister(const u8 *name, size_t len, bool delete);
EXPORT_SYMBOL_GPL(rmr_srv_pool_query);
EXPORT_SYMBOL_GPL(rmr_srv_register);
EXPORT_SYMBOL_GPL(rmr_srv_unregister);
int rmr_clt_open(const u8 *name, size_t len, void *info, void **handle);
void rmr_clt_close(void *handle);
int rmr_clt_request(void *handle, void *io);
int rmr_clt_cmd_with_rsp(void *handle, const u8 *msg, size_t msg_len, u8 *buf, size_t buf_len,
			 size_t size, int *conf);
int rmr_clt_leg_stats(void *handle, void *out, u32 n);
void rmr_srv_io_done(void *io, int err);
EXPORT_SYMBOL_GPL(rmr_clt_open);
EXPORT_SYMBOL_GPL(rmr_clt_close);
EXPORT_SYMBOL_GPL(rmr_clt_request);
EXPORT_SYMBOL_GPL(rmr_clt_cmd_with_rsp);
EXPORT_SYMBOL_GPL(rmr_clt_leg_stats);
EXPORT_SYMBOL_GPL(rmr_srv_io_done);
