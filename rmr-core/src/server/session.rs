// SPDX-License-Identifier: GPL-2.0-or-later
//! The pools one server session has joined (`rmr_srv_sess`'s pool list, SPEC §6.2, §6.3):
//! which commands a session may send, and what its end means for each pool. The kernel keeps
//! one per RTRS server session, the simulator one per (server, peer) link.

use super::super::error::{Error, Result};
use super::super::wire::Cmd;

/// Pools one session may join at most (the kernel's pool table size).
pub const SESSION_MAX_POOLS: usize = 64;

/// The pools (by key: the kernel uses the group_id) a session joined, with the sync flag of
/// each join and the sequence number of the last sequenced command the session ran for it
/// ([`Cmd::sequenced`]). A pool joined twice (a rejoin over the same session) is listed
/// twice, as the pool counted it twice.
#[derive(Clone, Debug)]
pub struct SessionPools<K: Copy + Eq> {
    joined: [Option<Joined<K>>; SESSION_MAX_POOLS],
}

#[derive(Clone, Copy, Debug)]
struct Joined<K> {
    key: K,
    sync: bool,
    seq: u32,
}

impl<K: Copy + Eq> Default for SessionPools<K> {
    fn default() -> Self {
        SessionPools { joined: [None; SESSION_MAX_POOLS] }
    }
}

/// Whether `seq` was sent after `last` (serial-number order: a session sends fewer than 2^31
/// commands between two that one pool runs).
pub fn seq_newer(seq: u32, last: u32) -> bool {
    (seq.wrapping_sub(last) as i32) > 0
}

impl<K: Copy + Eq> SessionPools<K> {
    /// Whether `cmd` (sequence number `seq`) for pool `k` may run now, and as which kind of
    /// session: `Ok(sync)`. JOIN_POOL and REJOIN_POOL may come from any session (the pool
    /// decides); every other command needs a session that joined this pool: -ENOENT
    /// otherwise (a client that sees it rejoins).
    ///
    /// A sequenced command older than the last one the session ran for this pool is refused
    /// with -ESTALE and never runs: its sender gave up waiting (`cmd_timeout_ms`) and has
    /// since sent a newer one, so it acts on what that one did (SPEC §6.9 [improvement]).
    /// An admitted sequenced command becomes the last one at once: the caller runs it
    /// before it admits the session's next command.
    pub fn admit(&mut self, k: K, seq: u32, cmd: &Cmd<'_>) -> Result<bool> {
        let stale = |e: &Joined<K>| e.key == k && cmd.sequenced() && !seq_newer(seq, e.seq);
        match cmd {
            Cmd::JoinPool(j) | Cmd::RejoinPool(j) => {
                if self.joined.iter().flatten().any(stale) {
                    return Err(Error::Stale);
                }
                if self.joined.iter().all(|e| e.is_some()) {
                    return Err(Error::NoSpc);
                }
                Ok(j.sync)
            }
            _ => {
                let sync = self.sync_of(k).ok_or(Error::NoEnt)?;
                if self.joined.iter().flatten().any(stale) {
                    return Err(Error::Stale);
                }
                if cmd.sequenced() {
                    for e in self.joined.iter_mut().flatten().filter(|e| e.key == k) {
                        e.seq = seq;
                    }
                }
                Ok(sync)
            }
        }
    }

    /// The pool answered `cmd` (sequence number `seq`) with `errno`: a successful join is
    /// recorded, a successful LEAVE_POOL drops one join.
    pub fn on_answer(&mut self, k: K, seq: u32, cmd: &Cmd<'_>, errno: i32) {
        if errno != 0 {
            return;
        }
        match cmd {
            Cmd::JoinPool(j) | Cmd::RejoinPool(j) => {
                for e in self.joined.iter_mut().flatten().filter(|e| e.key == k) {
                    e.seq = seq;
                }
                if let Some(e) = self.joined.iter_mut().find(|e| e.is_none()) {
                    *e = Some(Joined { key: k, sync: j.sync, seq });
                }
            }
            Cmd::LeavePool { .. } => {
                if let Some(e) = self.joined.iter_mut().find(|e| e.is_some_and(|x| x.key == k)) {
                    *e = None;
                }
            }
            _ => {}
        }
    }

    /// The session ended: every join it held, each to be told to its pool.
    pub fn take_all(&mut self) -> impl Iterator<Item = (K, bool)> + '_ {
        self.joined.iter_mut().filter_map(|e| e.take()).map(|e| (e.key, e.sync))
    }

    /// The sync flag of this session's join of `k`, if it joined.
    pub fn sync_of(&self, k: K) -> Option<bool> {
        self.joined.iter().flatten().find(|e| e.key == k).map(|e| e.sync)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::super::wire::{JoinBody, MemberList};
    use super::*;

    fn join(sync: bool) -> Cmd<'static> {
        Cmd::JoinPool(JoinBody { chunk_size: 4096, queue_depth: 8, create: false, sync, members: MemberList::new() })
    }

    #[test]
    fn commands_need_a_join() {
        let mut s: SessionPools<u32> = SessionPools::default();
        assert_eq!(s.admit(7, 1, &Cmd::StoreCheck), Err(Error::NoEnt), "a session that did not join");
        assert_eq!(s.admit(7, 2, &Cmd::LeavePool { delete: false }), Err(Error::NoEnt));
        assert_eq!(s.admit(7, 3, &join(false)), Ok(false));
        s.on_answer(7, 3, &join(false), -16);
        assert_eq!(s.admit(7, 4, &Cmd::StoreCheck), Err(Error::NoEnt), "a refused join records nothing");
        s.on_answer(7, 5, &join(false), 0);
        assert_eq!(s.admit(7, 6, &Cmd::StoreCheck), Ok(false));
        assert_eq!(s.admit(8, 7, &Cmd::StoreCheck), Err(Error::NoEnt), "per pool");
        s.on_answer(8, 8, &join(true), 0);
        assert_eq!(s.admit(8, 0, &Cmd::MapCheck { map_ver: 0 }), Ok(true), "a sync join");
        s.on_answer(7, 9, &Cmd::LeavePool { delete: false }, 0);
        assert_eq!(s.admit(7, 10, &Cmd::StoreCheck), Err(Error::NoEnt));
        let left: std::vec::Vec<(u32, bool)> = s.take_all().collect();
        assert_eq!(left, [(8, true)]);
        assert_eq!(s.sync_of(8), None);
    }

    /// A command the client gave up on arrives after a newer one ran: it is refused and does
    /// not change the record, so the newer one's successors still run.
    #[test]
    fn a_late_command_is_stale() {
        let mut s: SessionPools<u32> = SessionPools::default();
        s.on_answer(7, 10, &join(false), 0);
        assert_eq!(s.admit(7, 12, &Cmd::EnablePool { enable: true }), Ok(false));
        assert_eq!(s.admit(7, 11, &Cmd::EnablePool { enable: false }), Err(Error::Stale), "sent before 12");
        assert_eq!(s.admit(7, 12, &Cmd::EnablePool { enable: false }), Err(Error::Stale), "a replay of 12");
        assert_eq!(s.admit(7, 10, &join(false)), Err(Error::Stale), "a late join");
        assert_eq!(s.admit(7, 0, &Cmd::MapCheck { map_ver: 0 }), Ok(false), "unsequenced: always");
        assert_eq!(s.admit(7, 13, &Cmd::StoreCheck), Ok(false));
        // Another pool on the same session keeps its own order.
        s.on_answer(8, 5, &join(false), 0);
        assert_eq!(s.admit(8, 6, &Cmd::StoreCheck), Ok(false));
        // Serial order survives the wrap of the counter.
        s.on_answer(9, u32::MAX, &join(false), 0);
        assert_eq!(s.admit(9, 1, &Cmd::StoreCheck), Ok(false));
        assert_eq!(s.admit(9, u32::MAX, &Cmd::StoreCheck), Err(Error::Stale));
        assert!(seq_newer(1, u32::MAX) && !seq_newer(u32::MAX, 1) && !seq_newer(5, 5));
    }

    #[test]
    fn a_full_table_refuses_joins() {
        let mut s: SessionPools<u32> = SessionPools::default();
        for k in 0..SESSION_MAX_POOLS as u32 {
            s.on_answer(k, 1, &join(false), 0);
        }
        assert_eq!(s.admit(999, 1, &join(false)), Err(Error::NoSpc));
    }
}
