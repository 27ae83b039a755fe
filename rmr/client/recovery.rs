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

/// REJOIN_POOL on a FAILED leg whose transport is up (§6.2 Reconnect), driven by the core's
/// [`RejoinRun`]: non-sync FAILED → RECONNECTING (then try-enable), sync FAILED → NORMAL, the
/// maintenance flag set again where the leg had it. Caller holds `ctl`.
pub(super) fn rejoin_leg(pool: &CltPool, slot: usize) -> Result<(), Errno> {
    let qd = u16::try_from(pool.queue_depth).map_err(|_| Errno::EINVAL)?;
    let (mut run, mut step) = {
        let c = pool.lock();
        let Some(mut run) = RejoinRun::new(&c.core, slot) else { return Ok(()) };
        let first = run.start(&c.core, pool.chunk_size, qd);
        (run, first)
    };
    let name = leg_name(pool, slot);
    loop {
        match step {
            Step::Done(Ok(())) => break,
            Step::Done(Err(e)) => {
                pr_err!("client pool {}: session {}: rejoin refused ({})\n", pool.name.as_str(), name.as_str(), cerr(e).name());
                return Err(cerr(e));
            }
            Step::Send { slot: s, cmd } => {
                let leg = pool.leg(s).ok_or(Errno::ENOENT)?;
                step = pool.send(&leg.sess, &cmd, |rsp| run.on_reply(&mut pool.lock().core, rsp));
            }
        }
    }
    if let Some(t) = run.transition() {
        pr_info!("client pool {}: session {}: rejoined, {} -> {}\n", pool.name.as_str(), name.as_str(), t.from.name(), t.to.name());
    }
    let te = run.wants_try_enable(&pool.lock().core);
    if te {
        try_enable(pool)?;
    }
    Ok(())
}
