// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Heartbeat tuning of rmr's RTRS paths (SPEC §4.3, "link lost").
 *
 * RTRS sends a heartbeat every RTRS_HB_INTERVAL_MS (5 s) and gives a path up after
 * RTRS_HB_MISSED_MAX (5) unanswered ones, about 30 s. Until then a storage node keeps the
 * path of a client whose link is cut, stays NORMAL, and refuses that client's reconnect
 * ("Session in wrong state"). rtrs.h offers no setting, so these helpers set the two fields
 * of struct rtrs_path that the heartbeat work reads, from rmr's hb_interval_ms and
 * hb_missed_max parameters. They are built against the same tree as rtrs itself (Kbuild adds
 * its directory to the include path), so the layout matches.
 *
 * The work is never re-armed here: a path being closed may have stopped it already. The new
 * interval applies from the next beat, at most RTRS_HB_INTERVAL_MS after the path came up. A
 * client path keeps its settings across reconnects (RTRS sets them once, when it allocates the
 * path), so the client's are set once, after rtrs_clt_open().
 */
#include <linux/module.h>
#include "rtrs-srv.h"
#include "rtrs-clt.h"

static void rmr_hb_set(struct rtrs_path *s, unsigned int interval_ms, unsigned int missed_max)
{
	WRITE_ONCE(s->hb_interval_ms, interval_ms);
	WRITE_ONCE(s->hb_missed_max, missed_max);
}

/*
 * Every path of a server session, from its link_ev(CONNECTED): RTRS calls that with
 * paths_ev_mutex held, never with paths_mutex, which guards the list.
 */
void rmr_rtrs_srv_set_hb(struct rtrs_srv_sess *srv, unsigned int interval_ms,
			 unsigned int missed_max);
void rmr_rtrs_srv_set_hb(struct rtrs_srv_sess *srv, unsigned int interval_ms,
			 unsigned int missed_max)
{
	struct rtrs_srv_path *p;

	mutex_lock(&srv->paths_mutex);
	list_for_each_entry(p, &srv->paths_list, s.entry)
		rmr_hb_set(&p->s, interval_ms, missed_max);
	mutex_unlock(&srv->paths_mutex);
}

/* Every path of a client session, after rtrs_clt_open(). */
void rmr_rtrs_clt_set_hb(struct rtrs_clt_sess *clt, unsigned int interval_ms,
			 unsigned int missed_max);
void rmr_rtrs_clt_set_hb(struct rtrs_clt_sess *clt, unsigned int interval_ms,
			 unsigned int missed_max)
{
	struct rtrs_clt_path *p;

	mutex_lock(&clt->paths_mutex);
	list_for_each_entry(p, &clt->paths_list, s.entry)
		rmr_hb_set(&p->s, interval_ms, missed_max);
	mutex_unlock(&clt->paths_mutex);
}
