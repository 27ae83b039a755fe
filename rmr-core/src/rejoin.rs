// SPDX-License-Identifier: GPL-2.0-or-later
//! The rejoin of a FAILED leg whose transport is back (SPEC §6.2 Reconnect) as a step
//! machine, driven by the kernel's recovery work and by the simulator alike.
//!
//! 1. REJOIN_POOL with the pool's geometry and the members of `pool_md`;
//! 2. on success the leg leaves FAILED (non-sync: RECONNECTING, sync: NORMAL);
//! 3. a non-sync leg in maintenance sets the flag on its server again (the server may have
//!    restarted and forgotten it);
//! 4. the caller then runs try-enable for a non-sync pool ([`RejoinRun::wants_try_enable`]).

use super::client::{ClientPool, LegState, Transition};
use super::control::Step;
use super::error::Error;
use super::wire::{Cmd, CmdRsp, JoinBody, MemberList};

/// One rejoin in progress.
#[derive(Clone, Copy, Debug)]
pub struct RejoinRun {
    slot: usize,
    phase: Phase,
    transition: Option<Transition>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Rejoin,
    Maintenance,
    Done,
}

impl RejoinRun {
    /// A rejoin of leg `slot`, or `None` when the leg is not FAILED (nothing to do).
    pub fn new(pool: &ClientPool, slot: usize) -> Option<RejoinRun> {
        (pool.leg(slot)?.state == LegState::Failed)
            .then_some(RejoinRun { slot, phase: Phase::Rejoin, transition: None })
    }

    /// The first command: REJOIN_POOL on the leg. `chunk_size` and `queue_depth` are the
    /// pool's (its `join_pool` parameters).
    pub fn start(&mut self, pool: &ClientPool, chunk_size: u32, queue_depth: u16) -> Step<'static> {
        let members = pool.md.as_ref().map_or_else(MemberList::new, |md| md.members());
        let body = JoinBody { chunk_size, queue_depth, create: false, sync: pool.sync, members };
        Step::Send { slot: self.slot, cmd: Cmd::RejoinPool(body) }
    }

    /// The reply to the last command sent (an error reply for a transport failure).
    pub fn on_reply(&mut self, pool: &mut ClientPool, rsp: &CmdRsp<'_>) -> Step<'static> {
        if rsp.errno != 0 {
            self.phase = Phase::Done;
            return Step::Done(Err(Error::from_errno(rsp.errno)));
        }
        match self.phase {
            Phase::Rejoin => {
                match pool.on_rejoined(self.slot) {
                    Ok(t) => self.transition = t,
                    Err(e) => {
                        self.phase = Phase::Done;
                        return Step::Done(Err(e));
                    }
                }
                if pool.rejoin_needs_maintenance(self.slot) {
                    self.phase = Phase::Maintenance;
                    return Step::Send { slot: self.slot, cmd: Cmd::EnablePool { enable: false } };
                }
                self.phase = Phase::Done;
                Step::Done(Ok(()))
            }
            Phase::Maintenance | Phase::Done => {
                self.phase = Phase::Done;
                Step::Done(Ok(()))
            }
        }
    }

    /// The leg's transition on a successful REJOIN_POOL, for the log.
    pub fn transition(&self) -> Option<Transition> {
        self.transition
    }

    /// Whether the caller runs try-enable after a successful rejoin (non-sync pools).
    pub fn wants_try_enable(&self, pool: &ClientPool) -> bool {
        !pool.sync
    }
}

#[cfg(test)]
mod tests {
    use super::super::client::LegState::*;
    use super::super::wire::{CmdType, RspBody};
    use super::*;

    fn ok(ty: CmdType) -> CmdRsp<'static> {
        CmdRsp { ty, errno: 0, body: RspBody::Empty }
    }

    #[test]
    fn rejoin_steps() {
        let mut p = ClientPool::new(false, 100);
        let a = p.add_leg(42, false).unwrap();
        p.set_state(a, Normal).unwrap();
        assert!(RejoinRun::new(&p, a).is_none());
        p.fail_leg(a);
        let mut r = RejoinRun::new(&p, a).unwrap();
        match r.start(&p, 131072, 512) {
            Step::Send { slot, cmd: Cmd::RejoinPool(b) } => {
                assert_eq!(slot, a);
                assert_eq!((b.chunk_size, b.queue_depth, b.create, b.sync), (131072, 512, false, false));
            }
            s => panic!("unexpected {s:?}"),
        }
        assert_eq!(r.on_reply(&mut p, &ok(CmdType::RejoinPool)), Step::Done(Ok(())));
        assert_eq!(p.leg(a).unwrap().state, Reconnecting);
        assert_eq!(r.transition().map(|t| (t.from, t.to)), Some((Failed, Reconnecting)));
        assert!(r.wants_try_enable(&p));
        // A refused rejoin leaves the leg FAILED.
        p.fail_leg(a);
        let mut r = RejoinRun::new(&p, a).unwrap();
        let _ = r.start(&p, 131072, 512);
        let e = CmdRsp { ty: CmdType::RejoinPool, errno: -2, body: RspBody::Empty };
        assert_eq!(r.on_reply(&mut p, &e), Step::Done(Err(Error::NoEnt)));
        assert_eq!(p.leg(a).unwrap().state, Failed);
    }

    #[test]
    fn rejoin_sets_maintenance_again() {
        let mut p = ClientPool::new(false, 100);
        let a = p.add_leg(42, false).unwrap();
        p.set_state(a, Normal).unwrap();
        assert_eq!(p.set_maintenance(a), Ok(true));
        p.fail_leg(a);
        let mut r = RejoinRun::new(&p, a).unwrap();
        let _ = r.start(&p, 4096, 16);
        assert_eq!(
            r.on_reply(&mut p, &ok(CmdType::RejoinPool)),
            Step::Send { slot: a, cmd: Cmd::EnablePool { enable: false } }
        );
        assert_eq!(r.on_reply(&mut p, &ok(CmdType::EnablePool)), Step::Done(Ok(())));
    }

    #[test]
    fn sync_leg_rejoins_normal() {
        let mut p = ClientPool::new(true, 100);
        let a = p.add_leg(43, true).unwrap();
        p.set_state(a, Normal).unwrap();
        p.fail_leg(a);
        let mut r = RejoinRun::new(&p, a).unwrap();
        let _ = r.start(&p, 4096, 16);
        assert_eq!(r.on_reply(&mut p, &ok(CmdType::RejoinPool)), Step::Done(Ok(())));
        assert_eq!(p.leg(a).unwrap().state, Normal);
        assert!(!r.wants_try_enable(&p));
    }
}
