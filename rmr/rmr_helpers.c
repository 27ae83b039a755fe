// SPDX-License-Identifier: GPL-2.0-or-later
/* Thin C helpers of the transport and the workers (see transport.rs). */
#include <linux/module.h>
#include <linux/scatterlist.h>

void rmr_sg_init_one(struct scatterlist *sg, const void *buf, unsigned int len);
void rmr_sg_init_one(struct scatterlist *sg, const void *buf, unsigned int len)
{
	sg_init_one(sg, buf, len);
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
