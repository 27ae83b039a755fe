// SPDX-License-Identifier: GPL-2.0-or-later
//! The removal of a leg (SPEC §6.3 `del_sess`) as a step machine, driven by the kernel's
//! `del_sess` and by the simulator alike.
//!
//! 1. The caller freezes IO and drains it; [`RemoveRun::start`] turns the leg REMOVING
//!    (nothing else may use it; idempotent, so a halted removal is replayed from here).
//!    LEAVE_POOL(`delete`) goes to the leg if its transport is connected, and IO thaws when
//!    it is answered (at once without a transport).
//! 2. Non-sync only: the client drops the member's map and `srv_md` slot (delete), or keeps
//!    them (disassemble; all of them even when no other non-sync leg remains); then
//!    POOL_INFO(REMOVE, DELETE|DISASSEMBLE) to every other leg not FAILED/REMOVING, one at a
//!    time.
//! 3. The slot is freed ([`RemoveRun`] ends with `Done(Ok)`); the shell then drops its leg
//!    object, directory and transport reference.
//!
//! A LEAVE_POOL answered -ENOENT (the server does not know the session) counts as done. Any
//! other failed command halts the removal with its error: the leg stays REMOVING and a new
//! `del_sess` replays it (the steps already done are idempotent).

use super::client::{ClientPool, LegMask};
use super::control::Step;
use super::dirtymap::{MapSet, MapStorage};
use super::error::{Error, Result};
use super::wire::{Cmd, CmdRsp, InfoOp};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Start,
    Leave,
    Info { rest: LegMask },
    Done,
}

/// One removal in progress.
#[derive(Clone, Copy, Debug)]
pub struct RemoveRun {
    slot: usize,
    delete: bool,
    member: u32,
    phase: Phase,
}

impl RemoveRun {
    /// A removal of leg `slot` (`delete`: mode=delete, else disassemble).
    pub fn new(pool: &ClientPool, slot: usize, delete: bool) -> Result<RemoveRun> {
        let member = pool.leg(slot).ok_or(Error::NoEnt)?.member_id;
        Ok(RemoveRun { slot, delete, member, phase: Phase::Start })
    }

    /// The member whose leg is removed.
    pub fn member(&self) -> u32 {
        self.member
    }

    /// Step 1, with IO drained: REMOVING, IO thawed, LEAVE_POOL if `connected`.
    pub fn start<S: MapStorage + Default>(
        &mut self,
        pool: &mut ClientPool,
        maps: &mut MapSet<S>,
        connected: bool,
    ) -> Step<'static> {
        let r = pool.begin_remove(self.slot);
        if let Err(e) = r {
            pool.frozen = false;
            self.phase = Phase::Done;
            return Step::Done(Err(e));
        }
        if connected {
            // [improvement] IO stays frozen until the server answered: until then it is still
            // NORMAL and would vouch for chunks that writes skipping it change (a peer's sync
            // could read them from it). SPEC §6.3 thaws before LEAVE_POOL.
            self.phase = Phase::Leave;
            return Step::Send { slot: self.slot, cmd: Cmd::LeavePool { delete: self.delete } };
        }
        pool.frozen = false;
        self.after_leave(pool, maps)
    }

    /// The reply to the last command sent (an error reply for a transport failure).
    pub fn on_reply<S: MapStorage + Default>(
        &mut self,
        pool: &mut ClientPool,
        maps: &mut MapSet<S>,
        rsp: &CmdRsp<'_>,
    ) -> Step<'static> {
        if self.phase == Phase::Leave {
            pool.frozen = false;
        }
        if self.phase == Phase::Leave && rsp.errno == Error::NoEnt.errno() {
            // The server does not know the session in this pool (it restarted since, or a
            // halted removal's LEAVE_POOL did reach it): there is nothing to leave. Halting
            // here would keep the leg REMOVING for good (simulator seed 14247).
            return self.after_leave(pool, maps);
        }
        if rsp.errno != 0 {
            // Halted: the leg stays REMOVING for a replay.
            self.phase = Phase::Done;
            return Step::Done(Err(Error::from_errno(rsp.errno)));
        }
        match self.phase {
            Phase::Leave => self.after_leave(pool, maps),
            Phase::Info { rest } => self.next_info(pool, rest),
            Phase::Start | Phase::Done => Step::Done(Err(Error::Inval)),
        }
    }

    /// Step 2 (non-sync) or straight to step 3 (sync).
    fn after_leave<S: MapStorage + Default>(&mut self, pool: &mut ClientPool, maps: &mut MapSet<S>) -> Step<'static> {
        if pool.sync {
            return self.finish(pool);
        }
        pool.remove_member(self.member, self.delete, maps);
        let targets = pool.pool_info_targets(self.slot);
        self.next_info(pool, targets)
    }

    fn next_info(&mut self, pool: &mut ClientPool, rest: LegMask) -> Step<'static> {
        // A target that failed meanwhile is skipped, like every POOL_INFO of §6.3 step 2.
        let live = rest & pool.pool_info_targets(self.slot);
        if live == 0 {
            return self.finish(pool);
        }
        let cur = live.trailing_zeros() as usize;
        self.phase = Phase::Info { rest: live & !(1 << cur) };
        let op = if self.delete { InfoOp::RemoveDelete } else { InfoOp::RemoveDisassemble };
        Step::Send { slot: cur, cmd: Cmd::PoolInfo { member_id: self.member, op, dirty: false } }
    }

    /// Step 3: free the slot.
    fn finish(&mut self, pool: &mut ClientPool) -> Step<'static> {
        self.phase = Phase::Done;
        Step::Done(pool.free_leg(self.slot))
    }
}

#[cfg(test)]
mod tests {
    use super::super::client::LegState::*;
    use super::super::dirtymap::vecstore::VecStorage;
    use super::super::wire::{CmdType, PoolMd, PoolName, RspBody, SrvMd};
    use super::*;

    type Maps = MapSet<VecStorage>;

    fn ok(ty: CmdType) -> CmdRsp<'static> {
        CmdRsp { ty, errno: 0, body: RspBody::Empty }
    }

    /// Three NORMAL legs for members 11, 12, 13 with maps and pool_md.
    fn pool() -> (ClientPool, Maps) {
        let mut p = ClientPool::new(false, 100);
        let mut md = PoolMd {
            name: PoolName::new(b"p0").unwrap(),
            group_id: 7,
            chunk_size: 4096,
            mapped_size: 800,
            queue_depth: 16,
            map_ver: 0,
            srv_md: [SrvMd::default(); 4],
        };
        let mut maps = Maps::new();
        for m in [11, 12, 13] {
            md.add_member(m).unwrap();
            maps.ensure(m, 100).unwrap();
        }
        p.md = Some(md);
        for m in [11, 12, 13] {
            let s = p.add_leg(m, false).unwrap();
            p.set_state(s, Normal).unwrap();
        }
        (p, maps)
    }

    #[test]
    fn delete_leaves_then_informs_peers_then_frees() {
        let (mut p, mut maps) = pool();
        let b = p.slot_of(12).unwrap();
        p.frozen = true;
        let mut r = RemoveRun::new(&p, b, true).unwrap();
        assert_eq!(r.start(&mut p, &mut maps, true), Step::Send { slot: b, cmd: Cmd::LeavePool { delete: true } });
        assert!(p.frozen, "IO stays frozen while the server may still be NORMAL");
        assert_eq!(p.leg(b).unwrap().state, Removing);
        let (a, c) = (p.slot_of(11).unwrap(), p.slot_of(13).unwrap());
        let info = |slot| Step::Send { slot, cmd: Cmd::PoolInfo { member_id: 12, op: InfoOp::RemoveDelete, dirty: false } };
        assert_eq!(r.on_reply(&mut p, &mut maps, &ok(CmdType::LeavePool)), info(a));
        assert!(!p.frozen, "IO thaws once the server left");
        assert!(!p.piggyback().contains(12), "a deleted member is not piggybacked");
        assert!(maps.get(12).is_none() && !p.md.unwrap().members().contains(12));
        assert_eq!(r.on_reply(&mut p, &mut maps, &ok(CmdType::PoolInfo)), info(c));
        assert_eq!(r.on_reply(&mut p, &mut maps, &ok(CmdType::PoolInfo)), Step::Done(Ok(())));
        assert!(p.leg(b).is_none());
        assert_eq!(p.normal_count(), 2);
    }

    #[test]
    fn halted_removal_replays() {
        let (mut p, mut maps) = pool();
        let b = p.slot_of(12).unwrap();
        let mut r = RemoveRun::new(&p, b, false).unwrap();
        let _ = r.start(&mut p, &mut maps, true);
        let lost = CmdRsp { ty: CmdType::LeavePool, errno: -110, body: RspBody::Empty };
        assert_eq!(r.on_reply(&mut p, &mut maps, &lost), Step::Done(Err(Error::from_errno(-110))));
        assert_eq!(p.leg(b).unwrap().state, Removing, "a halted removal keeps the leg REMOVING");
        // Replay with the transport down: no LEAVE_POOL, the peers learn, the slot is freed.
        let mut r = RemoveRun::new(&p, b, false).unwrap();
        let a = p.slot_of(11).unwrap();
        assert_eq!(
            r.start(&mut p, &mut maps, false),
            Step::Send { slot: a, cmd: Cmd::PoolInfo { member_id: 12, op: InfoOp::RemoveDisassemble, dirty: false } }
        );
        assert!(maps.get(12).is_some(), "disassemble keeps the map while other legs remain");
        assert!(p.piggyback().contains(12), "a disassembled member's dirt keeps accumulating");
        let c = p.slot_of(13).unwrap();
        p.fail_leg(c);
        assert_eq!(r.on_reply(&mut p, &mut maps, &ok(CmdType::PoolInfo)), Step::Done(Ok(())), "a FAILED peer is skipped");
        assert!(p.leg(b).is_none());
    }

    #[test]
    fn leave_refused_as_unknown_goes_on() {
        let (mut p, mut maps) = pool();
        let b = p.slot_of(12).unwrap();
        let mut r = RemoveRun::new(&p, b, false).unwrap();
        let _ = r.start(&mut p, &mut maps, true);
        let gone = CmdRsp { ty: CmdType::LeavePool, errno: Error::NoEnt.errno(), body: RspBody::Empty };
        assert!(matches!(r.on_reply(&mut p, &mut maps, &gone), Step::Send { cmd: Cmd::PoolInfo { .. }, .. }));
    }

    #[test]
    fn last_disassembled_leg_keeps_the_maps() {
        let (mut p, mut maps) = pool();
        for m in [11, 12, 13] {
            let s = p.slot_of(m).unwrap();
            let mut r = RemoveRun::new(&p, s, false).unwrap();
            let mut st = r.start(&mut p, &mut maps, false);
            while let Step::Send { .. } = st {
                st = r.on_reply(&mut p, &mut maps, &ok(CmdType::PoolInfo));
            }
            assert_eq!(st, Step::Done(Ok(())));
        }
        assert_eq!(maps.iter().count(), 3, "this client's knowledge of what each member missed stays");
        assert_eq!(p.md.unwrap().members().len(), 3, "pool_md keeps the members for reassembly");
    }

    #[test]
    fn sync_leg_skips_step_two() {
        let mut p = ClientPool::new(true, 0);
        let mut maps = Maps::new();
        let s = p.add_leg(21, true).unwrap();
        p.set_state(s, Normal).unwrap();
        let mut r = RemoveRun::new(&p, s, true).unwrap();
        assert_eq!(r.start(&mut p, &mut maps, true), Step::Send { slot: s, cmd: Cmd::LeavePool { delete: true } });
        assert_eq!(r.on_reply(&mut p, &mut maps, &ok(CmdType::LeavePool)), Step::Done(Ok(())));
        assert!(p.leg(s).is_none());
        assert!(RemoveRun::new(&p, s, true).is_err());
    }
}
