// SPDX-License-Identifier: GPL-2.0-or-later
//! The pools one server session has joined (`rmr_srv_sess`'s pool list, SPEC §6.2, §6.3):
//! which commands a session may send, and what its end means for each pool. The kernel keeps
//! one per RTRS server session, the simulator one per (server, peer) link.

use super::super::error::{Error, Result};
use super::super::wire::Cmd;

/// Pools one session may join at most (the kernel's pool table size).
pub const SESSION_MAX_POOLS: usize = 64;

/// The pools (by key: the kernel uses the group_id) a session joined, with the sync flag of
/// each join. A pool joined twice (a rejoin over the same session) is listed twice, as the
/// pool counted it twice.
#[derive(Clone, Debug)]
pub struct SessionPools<K: Copy + Eq> {
    joined: [Option<(K, bool)>; SESSION_MAX_POOLS],
}

impl<K: Copy + Eq> Default for SessionPools<K> {
    fn default() -> Self {
        SessionPools { joined: [None; SESSION_MAX_POOLS] }
    }
}

impl<K: Copy + Eq> SessionPools<K> {
    /// Whether `cmd` for pool `k` may run, and as which kind of session: `Ok(sync)`. JOIN_POOL
    /// and REJOIN_POOL may come from any session (the pool decides); every other command needs
    /// a session that joined this pool: -ENOENT otherwise (a client that sees it rejoins).
    pub fn admit(&self, k: K, cmd: &Cmd<'_>) -> Result<bool> {
        match cmd {
            Cmd::JoinPool(j) | Cmd::RejoinPool(j) => {
                if self.joined.iter().all(|e| e.is_some()) {
                    return Err(Error::NoSpc);
                }
                Ok(j.sync)
            }
            _ => self.sync_of(k).ok_or(Error::NoEnt),
        }
    }

    /// The pool answered `cmd` with `errno`: a successful join is recorded, a successful
    /// LEAVE_POOL drops one join.
    pub fn on_answer(&mut self, k: K, cmd: &Cmd<'_>, errno: i32) {
        if errno != 0 {
            return;
        }
        match cmd {
            Cmd::JoinPool(j) | Cmd::RejoinPool(j) => {
                if let Some(e) = self.joined.iter_mut().find(|e| e.is_none()) {
                    *e = Some((k, j.sync));
                }
            }
            Cmd::LeavePool { .. } => {
                if let Some(e) = self.joined.iter_mut().find(|e| e.is_some_and(|(x, _)| x == k)) {
                    *e = None;
                }
            }
            _ => {}
        }
    }

    /// The session ended: every join it held, each to be told to its pool.
    pub fn take_all(&mut self) -> impl Iterator<Item = (K, bool)> + '_ {
        self.joined.iter_mut().filter_map(|e| e.take())
    }

    /// The sync flag of this session's join of `k`, if it joined.
    pub fn sync_of(&self, k: K) -> Option<bool> {
        self.joined.iter().flatten().find(|(x, _)| *x == k).map(|(_, s)| *s)
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
        assert_eq!(s.admit(7, &Cmd::StoreCheck), Err(Error::NoEnt), "a session that did not join");
        assert_eq!(s.admit(7, &Cmd::LeavePool { delete: false }), Err(Error::NoEnt));
        assert_eq!(s.admit(7, &join(false)), Ok(false));
        s.on_answer(7, &join(false), -16);
        assert_eq!(s.admit(7, &Cmd::StoreCheck), Err(Error::NoEnt), "a refused join records nothing");
        s.on_answer(7, &join(false), 0);
        assert_eq!(s.admit(7, &Cmd::StoreCheck), Ok(false));
        assert_eq!(s.admit(8, &Cmd::StoreCheck), Err(Error::NoEnt), "per pool");
        s.on_answer(8, &join(true), 0);
        assert_eq!(s.admit(8, &Cmd::MapCheck { map_ver: 0 }), Ok(true), "a sync join");
        s.on_answer(7, &Cmd::LeavePool { delete: false }, 0);
        assert_eq!(s.admit(7, &Cmd::StoreCheck), Err(Error::NoEnt));
        let left: std::vec::Vec<(u32, bool)> = s.take_all().collect();
        assert_eq!(left, [(8, true)]);
        assert_eq!(s.sync_of(8), None);
    }

    #[test]
    fn a_full_table_refuses_joins() {
        let mut s: SessionPools<u32> = SessionPools::default();
        for k in 0..SESSION_MAX_POOLS as u32 {
            s.on_answer(k, &join(false), 0);
        }
        assert_eq!(s.admit(999, &join(false)), Err(Error::NoSpc));
    }
}
