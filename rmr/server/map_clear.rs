// SPDX-License-Identifier: GPL-2.0-or-later
//! The map-clear worker (SPEC §6.8, server part).

#![deny(unsafe_code)]

use super::*;

/// The map-clear worker (SPEC §6.8 server part): ask each member whose peer map is non-empty
/// whether its own map is empty; clear ours if so and nothing was set since.
pub(super) fn map_clear_tick(pool: &Arc<SrvPool>) {
    let (targets, gens, map_ver, sp) = {
        let g = pool.inner.lock();
        if g.dead {
            return;
        }
        let t = g.core.map_clear_targets();
        let mut gens = [0u64; 4];
        for (gn, m) in gens.iter_mut().zip(t.iter()) {
            *gn = g.core.maps.get(m).map(|x| x.gen()).unwrap_or(0);
        }
        (t, gens, g.core.md.map_ver, g.sync_pool.clone())
    };
    let Some(sp) = sp else {
        return;
    };
    for (m, gen) in targets.iter().zip(gens.iter()) {
        match sp.map_check(m, map_ver) {
            Ok(true) => {
                let cleared = pool.inner.lock().core.on_peer_check_reply(m, true, *gen);
                if cleared {
                    pr_info!("server pool {}: map of member {} cleared (member reports clean)\n", pool.name(), m);
                }
            }
            Ok(false) => {}
            Err(e) => {
                if ratelimit() {
                    pr_err!("server pool {}: MAP_CHECK to member {} failed ({})\n", pool.name(), m, e.name());
                }
            }
        }
    }
}
