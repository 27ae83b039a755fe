// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * brmr.ko C side of the store's data path (brmr/server/io.rs, brmr/wrap/bioset.rs): bio
 * allocation from a per-store bio_set, one multi-page bvec over physically contiguous memory,
 * the end_io trampoline, and the static inlines/macros Rust cannot call. No decisions here: Rust plans every bio.
 */
#include <linux/module.h>
#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/delay.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/ratelimit.h>
#include <linux/slab.h>

/* Rust side (wrap/rmr_srv.rs): called once per bio, any context, after the bio is freed. */
void brmr_srv_bio_done(void *owner, void *io, int err);

/* Per-bio context in the bio_set's front pad. */
struct brmr_bio_ctx {
	void *owner;
	void *io;
	struct bio bio;
};

struct bio_set *brmr_bioset_create(void);
struct bio_set *brmr_bioset_create(void)
{
	struct bio_set *bs = kzalloc(sizeof(*bs), GFP_KERNEL);

	if (!bs)
		return NULL;
	if (bioset_init(bs, BIO_POOL_SIZE, offsetof(struct brmr_bio_ctx, bio),
			BIOSET_NEED_BVECS)) {
		kfree(bs);
		return NULL;
	}
	return bs;
}

void brmr_bioset_destroy(struct bio_set *bs);
void brmr_bioset_destroy(struct bio_set *bs)
{
	bioset_exit(bs);
	kfree(bs);
}

static void brmr_bio_end_io(struct bio *bio)
{
	struct brmr_bio_ctx *ctx = container_of(bio, struct brmr_bio_ctx, bio);
	void *owner = ctx->owner, *io = ctx->io;
	int err = blk_status_to_errno(bio->bi_status);

	bio_put(bio);
	brmr_srv_bio_done(owner, io, err);
}

/* Operations planned by rmr_core::ondisk::DataArea::plan(). */
enum { BRMR_BIO_READ, BRMR_BIO_WRITE, BRMR_BIO_FLUSH };

/*
 * Starts one bio on the bdev file @f: @len bytes at @data (physically contiguous kernel
 * memory, not vmalloc) at @sector, or an empty preflush for BRMR_BIO_FLUSH. 0 = started,
 * brmr_srv_bio_done(@owner, @io, err) follows exactly once; negative errno = not started.
 */
int brmr_bio_submit(struct file *f, struct bio_set *bs, u32 op, bool preflush, bool fua,
		    u64 sector, void *data, u32 len, void *owner, void *io);
int brmr_bio_submit(struct file *f, struct bio_set *bs, u32 op, bool preflush, bool fua,
		    u64 sector, void *data, u32 len, void *owner, void *io)
{
	struct brmr_bio_ctx *ctx;
	struct bio *bio;
	blk_opf_t opf;

	switch (op) {
	case BRMR_BIO_READ:
		opf = REQ_OP_READ;
		break;
	case BRMR_BIO_WRITE:
		opf = REQ_OP_WRITE | REQ_SYNC | (preflush ? REQ_PREFLUSH : 0) | (fua ? REQ_FUA : 0);
		break;
	case BRMR_BIO_FLUSH:
		opf = REQ_OP_WRITE | REQ_SYNC | REQ_PREFLUSH;
		len = 0;
		break;
	default:
		return -EINVAL;
	}
	if (len && (!data || is_vmalloc_addr(data) || !virt_addr_valid(data)))
		return -EINVAL;

	bio = bio_alloc_bioset(file_bdev(f), len ? 1 : 0, opf, GFP_NOIO, bs);
	if (!bio)
		return -ENOMEM;
	if (len && bio_add_page(bio, virt_to_page(data), len, offset_in_page(data)) != len) {
		bio_put(bio);
		return -EINVAL;
	}
	ctx = container_of(bio, struct brmr_bio_ctx, bio);
	ctx->owner = owner;
	ctx->io = io;
	bio->bi_iter.bi_sector = sector;
	bio->bi_end_io = brmr_bio_end_io;
	submit_bio(bio);
	return 0;
}

/*
 * Zeroes @nr_sects at @sector of the bdev file @f: the device's write-zeroes (unmapping
 * allowed) or, without it, zero pages written. Sleeps; 0 or a negative errno.
 */
int brmr_zeroout(struct file *f, u64 sector, u64 nr_sects);
int brmr_zeroout(struct file *f, u64 sector, u64 nr_sects)
{
	return blkdev_issue_zeroout(file_bdev(f), sector, nr_sects, GFP_NOIO, 0);
}

/* Flushes the volatile cache of the bdev file @f (a no-op without one). Sleeps. */
int brmr_bdev_flush(struct file *f);
int brmr_bdev_flush(struct file *f)
{
	return blkdev_issue_flush(file_bdev(f));
}

/* One rate limit for the store's error lines (IO path, network input). */
static DEFINE_RATELIMIT_STATE(brmr_srv_rs, DEFAULT_RATELIMIT_INTERVAL, DEFAULT_RATELIMIT_BURST);

bool brmr_srv_ratelimit(void);
bool brmr_srv_ratelimit(void)
{
	return __ratelimit(&brmr_srv_rs);
}

void brmr_msleep(unsigned int ms);
void brmr_msleep(unsigned int ms)
{
	msleep(ms);
}
