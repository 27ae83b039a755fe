// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Heartbeat tuning of rmr's RTRS client paths; see rmr_rtrs_hb.c. A client path keeps its
 * heartbeat settings across reconnects (RTRS sets them once, when it allocates the path), so
 * this runs once, after rtrs_clt_open().
 */
#include <linux/module.h>
#include "rtrs-clt.h"

void rmr_rtrs_clt_set_hb(struct rtrs_clt_sess *clt, unsigned int interval_ms,
			 unsigned int missed_max);
void rmr_rtrs_clt_set_hb(struct rtrs_clt_sess *clt, unsigned int interval_ms,
			 unsigned int missed_max)
{
	struct rtrs_clt_path *p;

	mutex_lock(&clt->paths_mutex);
	list_for_each_entry(p, &clt->paths_list, s.entry) {
		WRITE_ONCE(p->s.hb_interval_ms, interval_ms);
		WRITE_ONCE(p->s.hb_missed_max, missed_max);
	}
	mutex_unlock(&clt->paths_mutex);
}
