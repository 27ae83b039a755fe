// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Thin C helpers of brmr's block client (brmr/wrap/blk_mq.rs): macros and static inlines Rust cannot
 * call, and the block_device_operations table (it needs THIS_MODULE). No logic.
 */
#include <linux/module.h>
#include <linux/blk-mq.h>
#include <linux/blkdev.h>
#include <linux/scatterlist.h>

int brmr_rs_open(struct gendisk *disk, blk_mode_t mode);
void brmr_rs_release(struct gendisk *disk);

static const struct block_device_operations brmr_fops = {
	.owner = THIS_MODULE,
	.open = brmr_rs_open,
	.release = brmr_rs_release,
};

/* blk_mq_alloc_disk() is a macro (static lock class key); ERR_PTR becomes NULL + *err. */
struct gendisk *brmr_alloc_disk(struct blk_mq_tag_set *set, struct queue_limits *lim,
				void *queuedata, int *err);
struct gendisk *brmr_alloc_disk(struct blk_mq_tag_set *set, struct queue_limits *lim,
				void *queuedata, int *err)
{
	struct gendisk *disk = blk_mq_alloc_disk(set, lim, queuedata);

	*err = IS_ERR(disk) ? PTR_ERR(disk) : 0;
	if (IS_ERR(disk))
		return NULL;
	disk->fops = &brmr_fops;
	return disk;
}

void brmr_requeue(struct request *rq);
void brmr_requeue(struct request *rq)
{
	blk_mq_requeue_request(rq, true);
}

int brmr_rq_map_sg(struct request *rq, struct scatterlist *sg);
int brmr_rq_map_sg(struct request *rq, struct scatterlist *sg)
{
	return blk_rq_map_sg(rq->q, rq, sg);
}

blk_status_t brmr_sts_resource(void);
blk_status_t brmr_sts_resource(void)
{
	return BLK_STS_RESOURCE;
}

blk_status_t brmr_sts_ioerr(void);
blk_status_t brmr_sts_ioerr(void)
{
	return BLK_STS_IOERR;
}

blk_status_t brmr_sts_notsupp(void);
blk_status_t brmr_sts_notsupp(void)
{
	return BLK_STS_NOTSUPP;
}

blk_features_t brmr_feat_cache_fua(void);
blk_features_t brmr_feat_cache_fua(void)
{
	return BLK_FEAT_WRITE_CACHE | BLK_FEAT_FUA;
}
