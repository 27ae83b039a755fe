// SPDX-License-Identifier: GPL-2.0-or-later
//! Client pool and legs (SPEC §4.1, §4.2, §5.1, §5.2, §6.2, §6.3, §6.8, §8).
//!
//! A leg is addressed by its slot (0..`RMR_POOL_MAX_SESS`). Every state change goes through
//! [`ClientPool::set_state`], which allows exactly the §4.2 table and maintains `normal_count`,
//! `was_last_authoritative` and `map_ver`.


mod io;
mod legs;
mod recovery;
pub use io::*;
pub use recovery::*;

use super::consts::{RMR_MAP_CLEAN_DELAY_MS, RMR_MAP_VER_MASK, RMR_POOL_MAX_SESS};

use super::dirtymap::{MapSet, MapStorage};

use super::errno::Errno;
use super::error::{Error, Result};

use super::wire::{Cmd, MemberList, PoolMd};

/// Client leg state (`rmr_clt_pool_sess_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LegState {
    /// Joined, not admitted yet.
    Created,
    /// Receives IO.
    Normal,
    /// Transport or IO failure.
    Failed,
    /// Back, waiting for a map update.
    Reconnecting,
    /// Being removed (terminal).
    Removing,
}

impl LegState {
    /// The sysfs name.
    pub fn name(self) -> &'static str {
        match self {
            LegState::Created => "created",
            LegState::Normal => "normal",
            LegState::Failed => "failed",
            LegState::Reconnecting => "reconnecting",
            LegState::Removing => "removing",
        }
    }
}

/// Slot bitmask of legs.
pub type LegMask = u8;

/// One leg (`rmr_clt_pool_sess`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leg {
    /// Storage member behind the leg.
    pub member_id: u32,
    /// State.
    pub state: LegState,
    /// Leg of a sync pool.
    pub sync: bool,
    /// Maintenance flag (§8).
    pub maintenance: bool,
    /// This leg was the last NORMAL one when the pool lost all of them.
    pub was_last_authoritative: bool,
    /// Transport connected (link up), as reported by the shell.
    pub connected: bool,
    /// The previous map check of this member answered "empty" (§6.8).
    pub check_prev_empty: bool,
}

/// What a state change did (returned for logging and assertions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    /// Slot.
    pub slot: usize,
    /// Old state.
    pub from: LegState,
    /// New state.
    pub to: LegState,
}

/// Whether `from → to` is in the §4.2 table for a leg of kind `sync`.
pub fn leg_transition_allowed(from: LegState, to: LegState, sync: bool) -> bool {
    use LegState::*;
    match (from, to) {
        (Created, Normal) | (Created, Failed) | (Normal, Failed) | (Reconnecting, Failed) => true,
        (Created, Reconnecting) | (Normal, Reconnecting) | (Failed, Reconnecting) => !sync,
        (Reconnecting, Normal) => !sync,
        (Failed, Normal) => sync,
        (Created | Normal | Failed | Reconnecting, Removing) => true,
        _ => false,
    }
}

/// Compare two `map_ver` values by their 63-bit version.
pub fn map_ver_newer(a: u64, b: u64) -> bool {
    (a & RMR_MAP_VER_MASK) > (b & RMR_MAP_VER_MASK)
}

/// [improvement] How a read picks its leg among the NORMAL ones (`read_policy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadPolicy {
    /// The next leg in turn (upstream's only policy).
    RoundRobin,
    /// The leg with the fewest reads in flight; round robin among equals (the default).
    LeastPending,
}

impl ReadPolicy {
    /// The attribute's word.
    pub fn name(self) -> &'static str {
        match self {
            ReadPolicy::RoundRobin => "round-robin",
            ReadPolicy::LeastPending => "least-pending",
        }
    }
    /// Parses the attribute's input (one word, surrounding blanks and a newline allowed).
    pub fn parse(input: &[u8]) -> Result<Self> {
        let s = input.trim_ascii();
        if s == b"round-robin" {
            Ok(ReadPolicy::RoundRobin)
        } else if s == b"least-pending" {
            Ok(ReadPolicy::LeastPending)
        } else {
            Err(Error::Inval)
        }
    }
}

/// The client pool (`rmr_clt_pool`): legs, counters, `pool_md` mirror, IO freeze.
#[derive(Clone, Debug)]
pub struct ClientPool {
    legs: [Option<Leg>; RMR_POOL_MAX_SESS],
    /// Non-sync legs in NORMAL.
    normal_count: u32,
    /// Pool map version.
    map_ver: u64,
    rr: usize,
    /// How reads pick their leg (`read_policy`).
    pub read_policy: ReadPolicy,
    /// Reads in flight per leg slot ([`ClientPool::read_started`] .. `on_read_reply`).
    reads_pending: [u32; RMR_POOL_MAX_SESS],
    /// Sync pool (legs to peers from a storage node).
    pub sync: bool,
    /// IO frozen (map update in progress): new IO must wait.
    pub frozen: bool,
    /// IO in flight.
    pub inflight: u32,
    /// Number of chunks of the device.
    pub total_chunks: u64,
    /// Exported sectors, 0 until the first non-sync join reply sets it; every later join
    /// must report the same (§6.2).
    pub mapped_size: u64,
    /// Mirror of `pool_md` (members, versions).
    pub md: Option<PoolMd>,
    /// Test hooks for the simulator's teeth proof (never set in production).
    pub bugs: Bugs,
}

/// Deliberately broken behaviours, used only to prove that the simulator catches them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bugs {
    /// Promote a FAILED non-sync leg straight to NORMAL on rejoin (no map update).
    pub promote_failed: bool,
    /// Do not piggyback RECONNECTING legs.
    pub no_piggyback_reconnecting: bool,
    /// Last-IO: set dirty for others even if dirty in own map.
    pub last_io_no_skip: bool,
    /// Last-IO: take the lowest member as source, ignoring map_ver.
    pub last_io_any_source: bool,
    /// Clear client maps on the first "empty" answer, ignoring the clean delay.
    pub no_clean_delay: bool,
}

/// A control command whose answer did not come within `cmd_timeout_ms` is sent once more,
/// with a new sequence number, when running it twice does no harm. The second answer then
/// decides: the first command either ran before it or is refused as stale and never runs
/// (`server::SessionPools::admit`). Others fail with -ETIMEDOUT and leave the outcome to the
/// step machine that sent them. `errno` is the negative errno the transport gave.
pub fn resend_after_timeout(cmd: &Cmd<'_>, errno: i32) -> bool {
    errno == Errno::ETIMEDOUT.to_kernel()
        && matches!(
            cmd,
            Cmd::EnablePool { .. }
                | Cmd::StoreCheck
                | Cmd::MdSend
                | Cmd::SendMdBuf(_)
                | Cmd::MapGetVer
                | Cmd::MapSetVer { .. }
        )
}

/// The `conf` of `rmr_clt_cmd_with_rsp` (SPEC §6.9) after sending to `sent` legs of which
/// `failed` failed, the last with `last_err` (negative errno): 0 = every recipient answered,
/// > 0 = that many failed, < 0 = all failed (the error). No recipient at all counts as 0.
pub fn cmd_conf(sent: u32, failed: u32, last_err: i32) -> i32 {
    if sent > 0 && failed == sent {
        if last_err < 0 { last_err } else { Error::Io.errno() }
    } else {
        i32::try_from(failed).unwrap_or(i32::MAX)
    }
}

/// Lowest slot set in a mask.
pub fn lowest(m: LegMask) -> Option<usize> {
    if m == 0 {
        None
    } else {
        Some(m.trailing_zeros() as usize)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;
    use LegState::*;

    const ALL: [LegState; 5] = [Created, Normal, Failed, Reconnecting, Removing];

    #[test]
    fn shell_helpers() {
        let mut p = ClientPool::new(false, 100);
        let a = p.add_leg(42, false).unwrap();
        let b = p.add_leg(43, false).unwrap();
        assert!(!p.join_freezes_io(false));
        p.set_state(a, Normal).unwrap();
        assert!(p.join_freezes_io(false));
        assert!(!p.join_freezes_io(true));
        assert_eq!(p.duplicate_normal(42), Some(a));
        assert_eq!(p.duplicate_normal(43), None);
        assert_eq!(p.pool_info_targets(b), 1 << a);
        assert_eq!(p.cmd_targets(), (1 << a) | (1 << b));
        assert!(p.read_still_routable(a));
        assert!(!p.read_still_routable(b));
        assert_eq!(p.reconnect_check(a, true), Err(Error::Busy));
        // Link down fails the leg; link up asks for a rejoin.
        let (t, rejoin) = p.on_link(a, false);
        assert_eq!(t.map(|t| t.to), Some(Failed));
        assert!(!rejoin);
        assert_eq!(p.pool_info_targets(b), 0);
        assert_eq!(p.cmd_targets(), 1 << b);
        assert_eq!(p.reconnect_check(a, false), Ok(false));
        assert_eq!(p.reconnect_check(a, true), Ok(true));
        assert_eq!(p.on_link(a, true), (None, true));
        p.frozen = true;
        p.set_state(b, Normal).unwrap();
        assert!(!p.read_still_routable(b));
        // begin_remove is idempotent (a halted del_sess retries).
        assert_eq!(p.begin_remove(b), Ok(43));
        assert_eq!(p.begin_remove(b), Ok(43));
    }

    #[test]
    fn cmd_with_rsp_conf() {
        assert_eq!(cmd_conf(2, 0, 0), 0);
        assert_eq!(cmd_conf(0, 0, 0), 0);
        assert_eq!(cmd_conf(3, 1, -110), 1);
        assert_eq!(cmd_conf(2, 2, -110), -110);
        assert_eq!(cmd_conf(1, 1, 0), Error::Io.errno());
    }

    #[test]
    fn transition_table_is_exact() {
        let legal_nonsync = [
            (Created, Normal),
            (Created, Reconnecting),
            (Created, Failed),
            (Normal, Failed),
            (Normal, Reconnecting),
            (Failed, Reconnecting),
            (Reconnecting, Normal),
            (Reconnecting, Failed),
            (Created, Removing),
            (Normal, Removing),
            (Failed, Removing),
            (Reconnecting, Removing),
        ];
        for f in ALL {
            for t in ALL {
                if f == t {
                    continue;
                }
                assert_eq!(leg_transition_allowed(f, t, false), legal_nonsync.contains(&(f, t)), "{f:?}->{t:?}");
            }
        }
        assert!(leg_transition_allowed(Failed, Normal, true));
        assert!(!leg_transition_allowed(Failed, Reconnecting, true));
        assert!(!leg_transition_allowed(Created, Reconnecting, true));
    }

    #[test]
    fn counters_and_authority() {
        let mut p = ClientPool::new(false, 100);
        let a = p.add_leg(42, false).unwrap();
        let b = p.add_leg(43, false).unwrap();
        assert_eq!(p.add_leg(42, false), Err(Error::Exist));
        p.set_state(a, Normal).unwrap();
        p.set_state(b, Normal).unwrap();
        assert_eq!(p.normal_count(), 2);
        assert_eq!(p.set_state(a, Created), Err(Error::Inval));
        assert_eq!(p.set_state(a, Normal), Ok(None));
        p.set_state(a, Failed).unwrap();
        assert_eq!(p.map_ver(), 1);
        assert!(!p.leg(a).unwrap().was_last_authoritative);
        p.set_state(b, Failed).unwrap();
        assert!(p.leg(b).unwrap().was_last_authoritative);
        assert_eq!(p.set_state(b, Normal), Err(Error::Inval), "non-sync FAILED->NORMAL");
        p.set_state(b, Reconnecting).unwrap();
        p.set_state(a, Reconnecting).unwrap();
        assert_eq!(p.try_enable(), TryEnable::EnableAuthoritative { slot: b });
        p.set_state(b, Normal).unwrap();
        assert!(!p.leg(b).unwrap().was_last_authoritative);
        assert_eq!(p.try_enable(), TryEnable::Spread { source: b, receivers: 1 << a });
        p.set_state(b, Removing).unwrap();
        assert_eq!(p.set_state(b, Normal), Err(Error::Inval), "REMOVING is terminal");
    }

    #[test]
    fn piggyback_and_routing() {
        let mut p = ClientPool::new(false, 100);
        let mut maps: MapSet<super::super::dirtymap::vecstore::VecStorage> = MapSet::new();
        let a = p.add_leg(42, false).unwrap();
        let b = p.add_leg(43, false).unwrap();
        assert_eq!(p.plan_write(1, &mut maps, 0).err(), Some(Error::Io));
        p.set_state(a, Normal).unwrap();
        let w = p.plan_write(1, &mut maps, 7).unwrap();
        assert_eq!(w.plan.targets, 1 << a);
        assert_eq!(w.plan.piggyback.as_slice(), &[43]);
        assert!(maps.get(43).unwrap().test(1));
        assert_eq!(maps.get(43).unwrap().ts(), 7);
        p.set_state(b, Normal).unwrap();
        let mut w = p.plan_write(2, &mut maps, 8).unwrap();
        assert!(w.plan.piggyback.is_empty());
        assert_eq!(w.on_reply(&mut p, &mut maps, a, true, 9), WriteStep::Wait);
        let st = w.on_reply(&mut p, &mut maps, b, false, 9);
        assert_eq!(st, WriteStep::MapAdd { targets: 1 << a, members: {
            let mut l = MemberList::new();
            l.push(43).unwrap();
            l
        } });
        assert!(maps.get(43).unwrap().test(2));
        let cmds: Vec<_> = w.map_add_cmds(5).collect();
        assert_eq!(cmds, std::vec![(a, Cmd::MapAdd { chunk: 2, member_id: 43, map_ver: 5, recovery: false })]);
        assert_eq!(w.on_map_add_member_reply(&mut p, &mut maps, a, true, 9), WriteStep::Done(Ok(())));
        assert_eq!(p.plan_read(), Ok(a));
        assert_eq!(p.plan_read(), Ok(a));
        assert_eq!(p.plan_write(100, &mut maps, 0).err(), Some(Error::Inval));
    }

    /// A leg's MAP_ADD round needs every member's MAP_ADD; its first failure fails the leg and
    /// ends its round, later replies of that leg change nothing.
    #[test]
    fn map_add_round_per_member() {
        type M = MapSet<super::super::dirtymap::vecstore::VecStorage>;
        let setup = || {
            let mut p = ClientPool::new(false, 100);
            let mut maps: M = MapSet::new();
            let s: Vec<usize> = (42..46).map(|m| p.add_leg(m, false).unwrap()).collect();
            for &x in &s {
                p.set_state(x, Normal).unwrap();
            }
            let mut w = p.plan_write(3, &mut maps, 1).unwrap();
            assert_eq!(w.on_reply(&mut p, &mut maps, s[0], true, 2), WriteStep::Wait);
            assert_eq!(w.on_reply(&mut p, &mut maps, s[1], true, 2), WriteStep::Wait);
            assert_eq!(w.on_reply(&mut p, &mut maps, s[2], false, 2), WriteStep::Wait);
            assert!(matches!(w.on_reply(&mut p, &mut maps, s[3], false, 2), WriteStep::MapAdd { .. }));
            (p, maps, s, w)
        };
        // Two survivors, two missed members: four MAP_ADDs, two per survivor.
        let (mut p, mut maps, s, mut w) = setup();
        let cmds: Vec<_> = w.map_add_cmds(0).collect();
        assert_eq!(cmds.len(), 4);
        assert_eq!(cmds.iter().filter(|(x, _)| *x == s[0]).count(), 2);
        assert_eq!(w.on_map_add_member_reply(&mut p, &mut maps, s[0], true, 3), WriteStep::Wait);
        assert!(w.map_add_awaits(s[0]));
        assert_eq!(w.on_map_add_member_reply(&mut p, &mut maps, s[0], true, 3), WriteStep::Wait);
        assert!(!w.map_add_awaits(s[0]));
        // A surplus reply of a finished leg is ignored.
        assert_eq!(w.on_map_add_member_reply(&mut p, &mut maps, s[0], false, 3), WriteStep::Wait);
        assert_eq!(p.leg(s[0]).unwrap().state, Normal);
        assert_eq!(w.on_map_add_member_reply(&mut p, &mut maps, s[1], true, 3), WriteStep::Wait);
        assert_eq!(w.on_map_add_member_reply(&mut p, &mut maps, s[1], true, 3), WriteStep::Done(Ok(())));
        // One failed MAP_ADD of a leg fails that leg at once, even though its other succeeded.
        let (mut p, mut maps, s, mut w) = setup();
        assert_eq!(w.on_map_add_member_reply(&mut p, &mut maps, s[1], true, 3), WriteStep::Wait);
        assert_eq!(w.on_map_add_member_reply(&mut p, &mut maps, s[1], false, 3), WriteStep::Wait);
        assert_eq!(p.leg(s[1]).unwrap().state, Failed);
        assert!(maps.get(43).unwrap().test(3));
        assert_eq!(w.on_map_add_member_reply(&mut p, &mut maps, s[1], true, 3), WriteStep::Wait);
        assert_eq!(w.on_map_add_member_reply(&mut p, &mut maps, s[0], true, 3), WriteStep::Wait);
        assert_eq!(w.on_map_add_member_reply(&mut p, &mut maps, s[0], true, 3), WriteStep::Done(Ok(())));
        // Every survivor's round failed: the write fails.
        let (mut p, mut maps, s, mut w) = setup();
        assert_eq!(w.on_map_add_member_reply(&mut p, &mut maps, s[0], false, 3), WriteStep::Wait);
        assert_eq!(w.on_map_add_member_reply(&mut p, &mut maps, s[1], false, 3), WriteStep::Done(Err(Error::Io)));
    }

    /// A pool with two NORMAL legs (members 42, 43): the pool and their slots.
    fn two_normal_legs() -> (ClientPool, usize, usize) {
        let mut p = ClientPool::new(false, 100);
        let a = p.add_leg(42, false).unwrap();
        let b = p.add_leg(43, false).unwrap();
        p.set_state(a, Normal).unwrap();
        p.set_state(b, Normal).unwrap();
        (p, a, b)
    }

    /// [improvement] least-pending sends a read to the leg with the fewest reads in flight,
    /// round robin among equals; round-robin ignores the counts.
    #[test]
    fn read_policies() {
        let (mut p, a, b) = two_normal_legs();
        assert_eq!(p.read_policy, ReadPolicy::LeastPending, "the default");
        // Equal: alternate.
        let (x, y) = (p.plan_read().unwrap(), p.plan_read().unwrap());
        assert_ne!(x, y);
        // A slow leg keeps its reads: the other gets every new one until they are level.
        for _ in 0..3 {
            p.read_started(a);
        }
        for _ in 0..3 {
            let s = p.plan_read().unwrap();
            assert_eq!(s, b);
            p.read_started(s);
        }
        let s = p.plan_read().unwrap();
        p.read_started(s);
        assert_eq!(p.reads_pending(a) + p.reads_pending(b), 7);
        // A reply (ok or not) ends the read.
        assert_eq!(p.on_read_reply(a, ReadOutcome::Ok, 0).0, ReadStep::Done);
        assert_eq!(p.reads_pending(a), 2 + u32::from(s == a));
        p.read_policy = ReadPolicy::RoundRobin;
        for _ in 0..4 {
            p.read_started(b);
        }
        let (x, y) = (p.plan_read().unwrap(), p.plan_read().unwrap());
        assert_ne!(x, y, "round robin ignores the counts");
        assert_eq!(ReadPolicy::parse(b"least-pending\n"), Ok(ReadPolicy::LeastPending));
        assert_eq!(ReadPolicy::parse(b" round-robin "), Ok(ReadPolicy::RoundRobin));
        assert_eq!(ReadPolicy::parse(b"random"), Err(Error::Inval));
        assert_eq!(ReadPolicy::RoundRobin.name(), "round-robin");
    }

    /// A failed read fails its leg and is routed again while a NORMAL leg is left.
    #[test]
    fn read_failover() {
        let (mut p, a, b) = two_normal_legs();
        assert_eq!(p.on_read_reply(a, ReadOutcome::Ok, 0), (ReadStep::Done, None));
        let (st, t) = p.on_read_reply(a, ReadOutcome::Failed, 0);
        assert_eq!(st, ReadStep::Retry);
        assert_eq!(t.map(|t| t.to), Some(Failed));
        assert_eq!(p.plan_read_excluding(1 << a), Ok(b));
        assert_eq!(p.on_read_reply(b, ReadOutcome::Failed, 1 << a).0, ReadStep::Fail);
        assert_eq!(p.plan_read(), Err(Error::Io));
    }

    /// A node whose copy of the chunk is stale and that cannot sync it answers -ENODATA: its
    /// leg stays NORMAL and the read goes to a leg not tried yet; -EIO once every NORMAL leg
    /// said so (found in the VMs: a client reassembled while A-B was cut lost both legs).
    #[test]
    fn read_not_here_keeps_the_leg() {
        assert_eq!(ReadOutcome::from_errno(0), ReadOutcome::Ok);
        assert_eq!(ReadOutcome::from_errno(-61), ReadOutcome::NotHere);
        assert_eq!(ReadOutcome::from_errno(-5), ReadOutcome::Failed);
        assert_eq!(ReadOutcome::from_errno(-103), ReadOutcome::Failed);
        let (mut p, a, b) = two_normal_legs();
        let (st, t) = p.on_read_reply(a, ReadOutcome::NotHere, 0);
        assert_eq!((st, t), (ReadStep::Retry, None));
        assert_eq!(p.leg(a).map(|l| l.state), Some(Normal));
        // The retry skips A, whatever round robin or the pending counts would pick.
        for _ in 0..3 {
            assert_eq!(p.plan_read_excluding(1 << a), Ok(b));
        }
        // B has it: served.
        assert_eq!(p.on_read_reply(b, ReadOutcome::Ok, 1 << a).0, ReadStep::Done);
        // B has it stale too: no leg left to try, -EIO; both legs stay NORMAL.
        assert_eq!(p.on_read_reply(b, ReadOutcome::NotHere, 1 << a), (ReadStep::Fail, None));
        assert_eq!(p.mask(Normal), (1 << a) | (1 << b));
        assert_eq!(p.plan_read_excluding((1 << a) | (1 << b)), Err(Error::Io));
        // The next read is routed as usual.
        assert!(p.plan_read().is_ok());
    }

    #[test]
    fn map_check_clean_delay() {
        let mut p = ClientPool::new(false, 100);
        let mut maps: MapSet<super::super::dirtymap::vecstore::VecStorage> = MapSet::new();
        let a = p.add_leg(42, false).unwrap();
        p.set_state(a, Normal).unwrap();
        maps.ensure(42, 100).unwrap().set(3, 1000).unwrap();
        assert_eq!(p.map_check_targets(&maps), 1 << a);
        assert!(!p.on_map_check_reply(a, true, &mut maps, 7000), "first empty answer");
        assert!(!p.on_map_check_reply(a, false, &mut maps, 8000));
        assert!(!p.on_map_check_reply(a, true, &mut maps, 9000));
        maps.get_mut(42).unwrap().set(4, 9500).unwrap();
        assert!(!p.on_map_check_reply(a, true, &mut maps, 10_000), "bit set 500 ms ago");
        assert!(p.on_map_check_reply(a, true, &mut maps, 14_500));
        assert!(maps.get(42).unwrap().is_empty());
    }
}

#[cfg(test)]
mod tests_membership {
    use super::super::dirtymap::vecstore::VecStorage;
    use super::*;

    #[test]
    fn only_idempotent_commands_are_resent() {
        let t = Errno::ETIMEDOUT.to_kernel();
        assert!(resend_after_timeout(&Cmd::EnablePool { enable: false }, t));
        assert!(resend_after_timeout(&Cmd::StoreCheck, t));
        assert!(!resend_after_timeout(&Cmd::EnablePool { enable: false }, Errno::ECONNRESET.to_kernel()), "only a timeout");
        assert!(!resend_after_timeout(&Cmd::EnablePool { enable: false }, Errno::EBUSY.to_kernel()), "an answer decides");
        assert!(!resend_after_timeout(&Cmd::LeavePool { delete: true }, t), "not idempotent");
        assert!(!resend_after_timeout(&Cmd::MapReady, t), "part of a transfer");
        assert!(!resend_after_timeout(&Cmd::MapAdd { chunk: 1, member_id: 42, map_ver: 0, recovery: false }, t), "IO path");
    }

    #[test]
    fn del_sess_and_maintenance() {
        let mut p = ClientPool::new(false, 100);
        let mut maps: MapSet<VecStorage> = MapSet::new();
        let a = p.add_leg(42, false).unwrap();
        let b = p.add_leg(43, false).unwrap();
        for (s, m) in [(a, 42), (b, 43)] {
            maps.ensure(m, 100).unwrap();
            p.set_state(s, LegState::Normal).unwrap();
        }
        // maintenance on NORMAL b: RECONNECTING + flag, piggybacked, not a try-enable candidate
        assert_eq!(p.set_maintenance(b), Ok(true));
        assert_eq!(p.leg(b).map(|l| (l.state, l.maintenance)), Some((LegState::Reconnecting, true)));
        assert!(p.piggyback().contains(43));
        assert_eq!(p.try_enable(), TryEnable::Nothing);
        assert_eq!(p.admit(b), Ok(Admit::LeaveMaintenance));
        p.clear_maintenance(b).unwrap();
        assert_eq!(p.try_enable(), TryEnable::Spread { source: a, receivers: 1 << b });
        // CREATED and REMOVING refuse maintenance
        let c = p.add_leg(44, false).unwrap();
        assert_eq!(p.set_maintenance(c), Err(Error::Busy));
        // del_sess delete: map and srv_md slot dropped
        assert_eq!(p.begin_remove(b), Ok(43));
        assert!(!p.piggyback().contains(43), "REMOVING is not piggybacked");
        p.remove_member(43, true, &mut maps);
        assert!(maps.get(43).is_none());
        p.free_leg(b).unwrap();
        assert!(p.slot_of(43).is_none());
        assert_eq!(p.free_leg(a), Err(Error::Busy), "only REMOVING legs are freed");
        // disassemble of the last non-sync leg keeps the client maps ([improvement])
        p.begin_remove(a).unwrap();
        p.begin_remove(c).unwrap();
        p.remove_member(42, false, &mut maps);
        assert_eq!(maps.members().len(), 1);
        assert_eq!(p.add_leg(0, false), Err(Error::Inval));
    }
}
