// SPDX-License-Identifier: GPL-2.0-or-later
//! Link events and the rejoin of FAILED legs (SPEC §4.2, §6.2 Reconnect).

#![deny(unsafe_code)]

use super::*;

/// Link events (§4.2, §6.2 Reconnect): a leg whose transport went down fails; a FAILED leg
/// whose transport is back rejoins. Runs in a work item.
pub(crate) fn kick_recovery() {
    let _ = kernel::workqueue::system().try_spawn(GFP_ATOMIC, || {
        let pools: KVec<Arc<CltPool>> = match state() {
            Some(st) => {
                let mut v = KVec::new();
                for e in st.clt.iter().flatten() {
                    let _ = v.push(e.pool.clone(), GFP_KERNEL);
                }
                v
            }
            None => return,
        };
        for p in pools.iter() {
            let mut rejoin: u8 = 0;
            {
                let mut c = p.lock();
                let c = &mut *c;
                for slot in 0..4 {
                    let Some(leg) = c.legs.get(slot).and_then(|l| l.clone()) else { continue };
                    let up = leg.sess.connected.load(Ordering::Acquire);
                    let (t, wants_rejoin) = c.core.on_link(slot, up);
                    if let Some(t) = t {
                        pr_warn!(
                            "client pool {}: session {}: {} -> {} (link down)\n",
                            p.name.as_str(), leg.name.as_str(), t.from.name(), t.to.name()
                        );
                    }
                    if wants_rejoin {
                        rejoin |= 1 << slot;
                    }
                }
            }
            for slot in 0..4 {
                if rejoin & (1 << slot) != 0 {
                    let _ctl = p.ctl.lock();
                    let _ = rejoin_leg(p, slot);
                }
            }
        }
    });
}

/// REJOIN_POOL on a FAILED leg whose transport is up (§6.2 Reconnect): non-sync FAILED →
/// RECONNECTING then try-enable; sync FAILED → NORMAL. Caller holds `ctl`.
pub(super) fn rejoin_leg(pool: &CltPool, slot: usize) -> Result<(), Errno> {
    let (leg, members) = {
        let c = pool.lock();
        if c.core.leg(slot).map(|l| l.state) != Some(LegState::Failed) {
            return Ok(());
        }
        let mut m = MemberList::new();
        if let Some(md) = c.core.md.as_ref() {
            m = md.members();
        }
        (c.legs[slot].clone().ok_or(Errno::ENOENT)?, m)
    };
    let qd = u16::try_from(pool.queue_depth).map_err(|_| Errno::EINVAL)?;
    let body = JoinBody { chunk_size: pool.chunk_size, queue_depth: qd, create: false, sync: pool.sync, members };
    let r = pool.send(&leg.sess, &Cmd::RejoinPool(body), |r| if r.errno == 0 { Ok(()) } else { Err(Errno::from_kernel(r.errno)) });
    if let Err(e) = r {
        pr_err!("client pool {}: session {}: rejoin refused ({})\n", pool.name.as_str(), leg.name.as_str(), e.name());
        return Err(e);
    }
    let (t, maint) = {
        let mut c = pool.lock();
        let t = c.core.on_rejoined(slot).map_err(cerr)?;
        (t, c.core.rejoin_needs_maintenance(slot))
    };
    if let Some(t) = t {
        pr_info!("client pool {}: session {}: rejoined, {} -> {}\n", pool.name.as_str(), leg.name.as_str(), t.from.name(), t.to.name());
    }
    if maint {
        // The server may have restarted and forgotten the flag: set it again.
        pool.send(&leg.sess, &Cmd::EnablePool { enable: false }, |r| {
            if r.errno == 0 { Ok(()) } else { Err(Errno::from_kernel(r.errno)) }
        })?;
    }
    if !pool.sync {
        try_enable(pool)?;
    }
    Ok(())
}
