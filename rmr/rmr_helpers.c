// SPDX-License-Identifier: GPL-2.0-or-later
/* Thin C helpers of the transport and the workers (see transport.rs). */
#include <linux/module.h>
#include <linux/scatterlist.h>

void rmr_sg_init_one(struct scatterlist *sg, const void *buf, unsigned int len);
void rmr_sg_init_one(struct scatterlist *sg, const void *buf, unsigned int len)
{
	sg_init_one(sg, buf, len);
}

/*
 * Copies nents entries of src (page, offset, length) into dst, a table of cap entries, and
 * marks its end; the DMA fields of dst start zeroed. Returns nents, or -EINVAL.
 */
int rmr_sg_copy(struct scatterlist *dst, unsigned int cap, struct scatterlist *src,
		unsigned int nents, unsigned int len);
int rmr_sg_copy(struct scatterlist *dst, unsigned int cap, struct scatterlist *src,
		unsigned int nents, unsigned int len)
{
	struct scatterlist *s;
	unsigned int i;
	u64 total = 0;

	if (!dst || !src || !nents || nents > cap)
		return -EINVAL;
	sg_init_table(dst, nents);
	for_each_sg(src, s, nents, i) {
		sg_set_page(&dst[i], sg_page(s), s->length, s->offset);
		total += s->length;
	}
	/* The IO's `len` bytes must lie within the list RTRS is given. */
	if (total < len)
		return -EINVAL;
	return nents;
}

size_t rmr_sg_size(void);
size_t rmr_sg_size(void)
{
	return sizeof(struct scatterlist);
}

#include <linux/bottom_half.h>

void rmr_bh_disable(void);
void rmr_bh_disable(void)
{
	local_bh_disable();
}

void rmr_bh_enable(void);
void rmr_bh_enable(void)
{
	local_bh_enable();
}

#include <linux/mm.h>

bool rmr_is_vmalloc(const void *p);
bool rmr_is_vmalloc(const void *p)
{
	return is_vmalloc_addr(p);
}

#include <linux/slab.h>
#include <linux/workqueue.h>

/*
 * rmr_srv_dwork: a self-rearming delayed work for the server role (map-clear worker, sync
 * retry). Rust on 6.12 has no delayed work. The callback runs rmr_srv_dwork_fn(ctx, kind) on
 * system_long_wq; a non-zero return re-arms it after that many milliseconds.
 */
unsigned int rmr_srv_dwork_fn(void *ctx, u32 kind);

struct rmr_srv_dwork {
	struct delayed_work dw;
	void *ctx;
	u32 kind;
	bool stopping;
};

static void rmr_srv_dwork_cb(struct work_struct *w)
{
	struct rmr_srv_dwork *d = container_of(to_delayed_work(w), struct rmr_srv_dwork, dw);
	unsigned int ms = rmr_srv_dwork_fn(d->ctx, d->kind);

	if (ms && !READ_ONCE(d->stopping))
		queue_delayed_work(system_long_wq, &d->dw, msecs_to_jiffies(ms));
}

struct rmr_srv_dwork *rmr_srv_dwork_new(void *ctx, u32 kind);
struct rmr_srv_dwork *rmr_srv_dwork_new(void *ctx, u32 kind)
{
	struct rmr_srv_dwork *d = kzalloc(sizeof(*d), GFP_KERNEL);

	if (!d)
		return NULL;
	INIT_DELAYED_WORK(&d->dw, rmr_srv_dwork_cb);
	d->ctx = ctx;
	d->kind = kind;
	return d;
}

/* Arms the work after @ms milliseconds unless it is pending already. Any context. */
void rmr_srv_dwork_queue(struct rmr_srv_dwork *d, unsigned int ms);
void rmr_srv_dwork_queue(struct rmr_srv_dwork *d, unsigned int ms)
{
	if (!READ_ONCE(d->stopping))
		queue_delayed_work(system_long_wq, &d->dw, msecs_to_jiffies(ms));
}

/* Stops the work, waits for a running callback and frees it. Sleeps. */
void rmr_srv_dwork_free(struct rmr_srv_dwork *d);
void rmr_srv_dwork_free(struct rmr_srv_dwork *d)
{
	if (!d)
		return;
	WRITE_ONCE(d->stopping, true);
	cancel_delayed_work_sync(&d->dw);
	kfree(d);
}

#include <linux/completion.h>

/* struct completion for Rust (6.12 has no abstraction): complete() is safe in any context. */
void rmr_completion_init(struct completion *c);
void rmr_completion_init(struct completion *c)
{
	init_completion(c);
}

void rmr_complete(struct completion *c);
void rmr_complete(struct completion *c)
{
	complete(c);
}

/* 0 = timed out, < 0 = interrupted, > 0 = completed. */
long rmr_wait_completion_timeout(struct completion *c, unsigned int ms);
long rmr_wait_completion_timeout(struct completion *c, unsigned int ms)
{
	return wait_for_completion_interruptible_timeout(c, msecs_to_jiffies(ms));
}


#include <net/route.h>
#include <net/neighbour.h>
#include <net/dst.h>

/*
 * Starts the resolution of the neighbour (ARP) of IPv4 address @daddr (network order) unless
 * it is valid already. RTRS resolves a storage node's address with rdma_resolve_addr(), whose
 * request, once the neighbour has failed (the link was down), is retried only when a
 * neighbour update arrives or its 30 s timeout ends; nothing sends a new ARP request when the
 * link is back. rmr calls this each second for a session whose link is down, so a reconnect
 * proceeds as soon as the link returns. Process context. Returns 0, or a negative errno when
 * no route leads there.
 */
int rmr_neigh_probe(__be32 daddr);
int rmr_neigh_probe(__be32 daddr)
{
	struct flowi4 fl4 = { .daddr = daddr };
	struct neighbour *n;
	struct rtable *rt;

	rt = ip_route_output_key(&init_net, &fl4);
	if (IS_ERR(rt))
		return PTR_ERR(rt);
	n = dst_neigh_lookup(&rt->dst, &daddr);
	if (n) {
		if (!(READ_ONCE(n->nud_state) & NUD_VALID))
			neigh_event_send(n, NULL);
		neigh_release(n);
	}
	ip_rt_put(rt);
	return 0;
}
