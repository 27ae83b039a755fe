// SPDX-License-Identifier: GPL-2.0-or-later
//! Link events and the rejoin of FAILED legs (SPEC §4.2, §6.2 Reconnect); the recovery
//! worker (§6.8): map checks, store checks of FAILED legs, the periodic pool_md push and
//! try-enable, every second, as the core's [`RecoveryPlan`] says.

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

/// One tick of the client recovery worker over every client pool (§6.8). Runs on
/// `system_long_wq` from the module's delayed work; returns the milliseconds to the next tick.
pub(crate) fn recover_tick() -> u32 {
    let pools: KVec<Arc<CltPool>> = match state() {
        Some(st) => {
            let mut v = KVec::new();
            for e in st.clt.iter().flatten() {
                let _ = v.push(e.pool.clone(), GFP_KERNEL);
            }
            v
        }
        None => return 0,
    };
    for p in pools.iter() {
        p.recover_once();
    }
    RMR_RECOVER_INTERVAL_MS as u32
}

impl CltPool {
    /// Runs the core's recovery plan once.
    fn recover_once(&self) {
        // A leg whose link is down: help RTRS's reconnect see the link come back.
        for s in 0..4 {
            if let Some(leg) = self.leg(s) {
                leg.sess.probe_path();
            }
        }
        let plan = {
            let c = self.lock();
            c.core.recovery_plan(&c.maps)
        };
        // Map checks run without the control lock (§6.8 [improvement]): the clean delay and
        // the "previous answer empty" rule make a stale answer harmless.
        for s in slots(plan.map_check) {
            let Some(leg) = self.leg(s) else { continue };
            let empty = self.send(&leg.sess, &Cmd::MapCheck { map_ver: plan.map_ver }, |r| match (r.errno, r.body) {
                (0, RspBody::Bool(e)) => Some(e),
                _ => None,
            });
            let Some(empty) = empty else { continue };
            let mut g = self.lock();
            let c = &mut *g;
            let member = c.core.leg(s).map_or(0, |l| l.member_id);
            if c.core.on_map_check_reply(s, empty, &mut c.maps, now_ms()) {
                drop(g);
                pr_info!("client pool {}: member {} is clean, client map cleared\n", self.name.as_str(), member);
            }
        }
        if plan.store_check == 0 && plan.md_push == 0 && !plan.try_enable {
            return;
        }
        let _ctl = self.ctl.lock();
        let mut te = plan.try_enable;
        for s in slots(plan.store_check) {
            let Some(leg) = self.leg(s) else { continue };
            let (errno, allowed) = self.send(&leg.sess, &Cmd::StoreCheck, |r| (r.errno, matches!(r.body, RspBody::Bool(true))));
            let outcome = self.lock().core.on_store_check_reply(s, errno, allowed);
            match outcome {
                StoreCheck::Revived { transition, try_enable } => {
                    if let Some(t) = transition {
                        pr_info!(
                            "client pool {}: session {}: store serves IO again, {} -> {}\n",
                            self.name.as_str(), leg.name.as_str(), t.from.name(), t.to.name()
                        );
                    }
                    te |= try_enable;
                }
                StoreCheck::Rejoin => {
                    let _ = rejoin_leg(self, s);
                }
                StoreCheck::Nothing => {}
            }
        }
        if let Some(md) = plan.md {
            for s in slots(plan.md_push) {
                let Some(leg) = self.leg(s) else { continue };
                if let Err(e) = self.send(&leg.sess, &Cmd::SendMdBuf(md), |r| if r.errno == 0 { Ok(()) } else { Err(Errno::from_kernel(r.errno)) }) {
                    if ratelimit() {
                        pr_warn!("client pool {}: session {}: pool_md push failed ({})\n", self.name.as_str(), leg.name.as_str(), e.name());
                    }
                }
            }
        }
        if te {
            let _ = try_enable(self);
        }
    }
}

