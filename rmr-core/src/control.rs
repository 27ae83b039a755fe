// SPDX-License-Identifier: GPL-2.0-or-later
//! Client control-path step machines: the map update (§6.5), the last-IO reconciliation
//! (§6.6) and try-enable (§6.7). Each emits one command at a time ([`Step::Send`]) and is driven
//! by the replies; a transport failure is fed back as an error reply.

use super::client::{lowest, ClientPool, LegMask, LegState, TryEnable};
use super::consts::{RMR_MAP_VER_MASK, RMR_POOL_MAX_SESS};
use super::dirtymap::{MapSet, MapStorage};
use super::error::{Error, Result};
use super::wire::{Cmd, CmdRsp, MemberList, RspBody};

/// What the caller does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step<'a> {
    /// Send `cmd` on leg `slot` and feed the reply (or an error reply) to `on_reply`.
    Send {
        /// Leg slot.
        slot: usize,
        /// Command.
        cmd: Cmd<'a>,
    },
    /// Finished.
    Done(Result<()>),
}

mod last_io;
mod map_update;
mod try_enable;
pub use last_io::*;
pub use map_update::*;
pub use try_enable::*;

/// Sorts a small slice ascending (insertion sort; the kernel build avoids core's sort).
fn crate_sort_small<T: PartialOrd + Copy>(v: &mut [T]) {
    for i in 1..v.len() {
        let mut j = i;
        while j > 0 && v[j - 1] > v[j] {
            v.swap(j - 1, j);
            j -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::client::ClientPool;
    use super::super::dirtymap::vecstore::VecStorage;
    use super::super::server::{RegMode, ServerPool, SrvState};
    use super::super::wire::{CmdType, JoinBody, PoolMd, PoolName, SrvMd, PIECE_BYTES};
    use super::*;

    type Srv = ServerPool<VecStorage>;

    fn md() -> PoolMd {
        PoolMd {
            name: PoolName::new(b"p").unwrap(),
            group_id: 1,
            chunk_size: 4096,
            mapped_size: 800 * 8,
            queue_depth: 8,
            map_ver: 0,
            srv_md: [SrvMd::default(); 4],
        }
    }

    /// Two servers in NO_IO after an assemble, a client with both legs RECONNECTING.
    fn setup() -> (ClientPool, MapSet<VecStorage>, [Srv; 2]) {
        let mut m = md();
        m.add_member(42).unwrap();
        m.add_member(43).unwrap();
        let mut srvs = [Srv::new(42, md()).unwrap(), Srv::new(43, md()).unwrap()];
        let mut buf = [0u8; PIECE_BYTES];
        for s in srvs.iter_mut() {
            s.register(RegMode::Add, Some(m)).unwrap();
            let j = JoinBody { chunk_size: 4096, queue_depth: 8, create: false, sync: false, members: MemberList::new() };
            let (r, _) = s.handle_cmd(&Cmd::JoinPool(j), false, 0, &mut buf);
            assert_eq!(r.errno, 0);
            assert_eq!(s.state, SrvState::NoIo);
        }
        let mut p = ClientPool::new(false, 800);
        p.md = Some(m);
        for id in [42, 43] {
            let s = p.add_leg(id, false).unwrap();
            p.set_state(s, LegState::Reconnecting).unwrap();
        }
        (p, MapSet::new(), srvs)
    }

    /// A command without borrowed data, re-typed as `'static`.
    fn own(cmd: Cmd<'_>) -> Cmd<'static> {
        cmd.to_static().unwrap_or(Cmd::MapDisable)
    }

    /// Run a try-enable to completion; `fail_at` makes the n-th command fail (as a transport
    /// error would).
    fn run(p: &mut ClientPool, maps: &MapSet<VecStorage>, srvs: &mut [Srv; 2], fail_at: Option<usize>) -> Result<()> {
        let mut te = TryEnableRun::new(p).expect("work");
        let mut next: (usize, Cmd<'static>) = match te.start(p, maps) {
            Step::Done(r) => return r,
            Step::Send { slot, cmd } => (slot, own(cmd)),
        };
        let mut n = 0;
        loop {
            n += 1;
            let (slot, cmd) = next;
            let mut buf = [0u8; PIECE_BYTES];
            let rsp = if Some(n) == fail_at {
                CmdRsp::err(cmd.ty(), Error::Io)
            } else {
                srvs[slot].handle_cmd(&cmd, false, 0, &mut buf).0
            };
            let mut st = te.on_reply(p, maps, &rsp);
            // A relayed piece borrows the reply: deliver it before the buffer goes away.
            while let Step::Send { slot: r, cmd: Cmd::SendMapBuf(pc) } = st {
                n += 1;
                let mut b2 = [0u8; PIECE_BYTES];
                let r2 = if Some(n) == fail_at {
                    CmdRsp::err(CmdType::SendMapBuf, Error::Io)
                } else {
                    srvs[r].handle_cmd(&Cmd::SendMapBuf(pc), false, 0, &mut b2).0
                };
                st = te.on_reply(p, maps, &CmdRsp { ty: r2.ty, errno: r2.errno, body: RspBody::Empty });
            }
            next = match st {
                Step::Done(r) => return r,
                Step::Send { slot, cmd } => (slot, own(cmd)),
            };
        }
    }

    #[test]
    fn last_io_update_picks_newest_and_skips() {
        let (mut p, maps, mut srvs) = setup();
        // 43 has the newer map: it knows chunk 2 is dirty for 42 (scenario 7).
        srvs[1].md.map_ver = 5;
        srvs[1].maps.ensure(42, 800).unwrap().set(2, 0).unwrap();
        // Scenario 8: 42 holds chunk 9 in last_io ('b' that 43 missed); 43 holds 'a' (9) too.
        srvs[0].last_io[3] = 9;
        srvs[1].last_io[2] = 9;
        run(&mut p, &maps, &mut srvs, None).unwrap();
        assert_eq!(p.mask(LegState::Normal), 0b11);
        for s in &srvs {
            assert_eq!(s.state, SrvState::Normal);
            assert!(s.maps.get(42).unwrap().test(2), "newest map wins");
            assert!(!s.maps.get(43).unwrap().test(2));
            // 43 is the source (newest) and goes first: chunk 9 dirty for 42 only.
            assert!(s.maps.get(42).unwrap().test(9));
            assert!(!s.maps.get(43).unwrap().test(9), "skip rule");
            assert_eq!(s.md.map_ver, 7);
        }
        assert_eq!(p.map_ver(), 7);
    }

    #[test]
    fn last_io_update_runs_pending_discards_first() {
        let (mut p, maps, mut srvs) = setup();
        let flag = |md: &mut PoolMd| {
            for s in md.srv_md.iter_mut().filter(|s| s.member_id == 43) {
                s.discard_entries = true;
            }
        };
        if let Some(md) = p.md.as_mut() {
            flag(md);
        }
        for s in srvs.iter_mut() {
            flag(&mut s.md);
            s.maps.ensure(43, 800).unwrap().set(4, 0).unwrap();
        }
        // 43's replaced store: the entries held for it are dropped before maps move, so the
        // newest map (43's own, version 5) cannot bring them back.
        srvs[1].md.map_ver = 5;
        run(&mut p, &maps, &mut srvs, None).unwrap();
        assert_eq!(p.mask(LegState::Normal), 0b11);
        for s in &srvs {
            assert!(!s.maps.get(43).unwrap().test(4), "discarded on every leg");
            assert!(s.md.srv_md.iter().all(|m| !m.discard_entries), "flag cleared");
        }
        assert!(p.md.unwrap().srv_md.iter().all(|m| !m.discard_entries));
    }

    #[test]
    fn failure_midway_disables_and_keeps_maps() {
        for fail_at in 3..12 {
            let (mut p, maps, mut srvs) = setup();
            srvs[1].md.map_ver = 5;
            srvs[1].maps.ensure(42, 800).unwrap().set(2, 0).unwrap();
            assert!(run(&mut p, &maps, &mut srvs, Some(fail_at)).is_err(), "fail at {fail_at}");
            assert!(!p.frozen, "IO unfrozen after a failed try-enable");
            // Whatever step failed, nobody is NORMAL with a half-installed map.
            for s in &srvs {
                if s.state == SrvState::Normal {
                    assert!(s.maps.get(42).unwrap().test(2));
                }
            }
        }
    }

    #[test]
    fn case2_pushes_client_bits() {
        let (mut p, mut maps, mut srvs) = setup();
        // 42 was the last NORMAL leg; the client knows 43 missed chunk 5.
        let a = p.slot_of(42).unwrap();
        p.set_state(a, LegState::Failed).ok();
        let mut q = ClientPool::new(false, 800);
        q.md = p.md;
        let a = q.add_leg(42, false).unwrap();
        let b = q.add_leg(43, false).unwrap();
        q.set_state(a, LegState::Normal).unwrap();
        q.set_state(b, LegState::Normal).unwrap();
        q.set_state(b, LegState::Failed).unwrap();
        q.set_state(a, LegState::Failed).unwrap();
        q.set_state(a, LegState::Reconnecting).unwrap();
        q.set_state(b, LegState::Reconnecting).unwrap();
        maps.ensure(43, 800).unwrap().set(5, 0).unwrap();
        assert_eq!(q.try_enable(), TryEnable::EnableAuthoritative { slot: a });
        run(&mut q, &maps, &mut srvs, None).unwrap();
        assert_eq!(q.mask(LegState::Normal), 0b11);
        assert!(srvs[0].maps.get(43).unwrap().test(5));
        assert!(srvs[1].maps.get(43).unwrap().test(5), "spread to the second leg");
    }

    /// SPEC §10.5: a client that returns before storage node A assembles B and C; try-enable
    /// waits for A, a `pool_md` member, and says so; with A's leg it runs the last-IO update.
    #[test]
    fn try_enable_waits_for_every_member() {
        let mut m = md();
        for id in [42, 43, 44] {
            m.add_member(id).unwrap();
        }
        let mut p = ClientPool::new(false, 800);
        p.md = Some(m);
        assert!(p.try_enable_waits_for().is_empty(), "no leg: nothing waits");
        for id in [43, 44] {
            let s = p.add_leg(id, false).unwrap();
            p.set_state(s, LegState::Reconnecting).unwrap();
        }
        assert_eq!(p.try_enable(), TryEnable::Nothing);
        assert_eq!(p.try_enable_waits_for().as_slice(), &[42]);
        let a = p.add_leg(42, false).unwrap();
        assert_eq!(p.try_enable_waits_for().as_slice(), &[42], "a CREATED leg cannot join yet");
        p.set_state(a, LegState::Reconnecting).unwrap();
        assert!(matches!(p.try_enable(), TryEnable::LastIo { legs: 0b111 }));
        assert!(p.try_enable_waits_for().is_empty());
    }

    /// An admin's ENABLE_POOL(1) that timed out at the client (a dropped link) reached the
    /// authoritative node later and made it NORMAL; the next try-enable still completes
    /// (found in the VMs: SUSPECT_TO_MAP was refused with -EPERM once a second, for good).
    #[test]
    fn case2_on_a_node_made_normal_by_a_late_enable() {
        let (_, mut maps, mut srvs) = setup();
        let mut q = ClientPool::new(false, 800);
        q.md = setup().0.md;
        let a = q.add_leg(42, false).unwrap();
        let b = q.add_leg(43, false).unwrap();
        for (s, st) in [(a, LegState::Normal), (b, LegState::Normal), (b, LegState::Failed), (a, LegState::Failed)] {
            q.set_state(s, st).unwrap();
        }
        q.set_state(a, LegState::Reconnecting).unwrap();
        q.set_state(b, LegState::Reconnecting).unwrap();
        maps.ensure(43, 800).unwrap().set(5, 0).unwrap();
        let mut buf = [0u8; PIECE_BYTES];
        let (r, _) = srvs[0].handle_cmd(&Cmd::EnablePool { enable: true }, false, 0, &mut buf);
        assert_eq!((r.errno, srvs[0].state), (0, SrvState::Normal));
        assert_eq!(q.try_enable(), TryEnable::EnableAuthoritative { slot: a });
        run(&mut q, &maps, &mut srvs, None).unwrap();
        assert_eq!(q.mask(LegState::Normal), 0b11);
        assert!(srvs[0].maps.get(43).unwrap().test(5));
        assert!(srvs[1].maps.get(43).unwrap().test(5));
    }
}
