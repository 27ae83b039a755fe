// SPDX-License-Identifier: GPL-2.0-or-later
//! Server pool (SPEC §4.3, §5.3, §6.1-§6.8): state, join acceptance, dirty maps, the IO
//! decision with wait lists, `last_io`, the command handler, the map-clear worker rule and the
//! sync scheduler. One file per concern: `pool`, `io`, `cmd`, `recovery`, `sync`, `intent`.

mod cmd;
mod intent;
mod io;
mod persist;
mod pool;
mod recovery;
mod session;
mod sync;
pub use intent::*;
pub use persist::*;
pub use session::*;
pub use sync::*;
pub use recovery::SYNC_NO_SOURCE;

use super::consts::{RMR_MAP_VER_MASK, RMR_MAX_QUEUE_DEPTH, RMR_POOL_MAX_SESS, RMR_PROTO_VERSION};

use super::dirtymap::{DirtyMap, MapSet, MapStorage, PAGE_BITS};

use super::errno::Errno;
use super::error::{Error, Result};

use super::wire::{
    Cmd, CmdRsp, InfoOp, IoMsg, MemberList, Piece, PoolMd, RspBody, SrvMd, IO_FLUSH, IO_FUA, LOST_PIECE,
    IO_DISCARD, IO_SYNC, IO_WRITE, PIECE_BYTES,
};

/// Server pool state (`rmr_srv_pool_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SrvState {
    /// No store.
    Empty,
    /// Store registered, no session.
    Registered,
    /// First create join accepted, waiting for enable.
    Created,
    /// Serving IO.
    Normal,
    /// Joined, not serving IO.
    NoIo,
}

impl SrvState {
    /// The sysfs name.
    pub fn name(self) -> &'static str {
        match self {
            SrvState::Empty => "empty",
            SrvState::Registered => "registered",
            SrvState::Created => "created",
            SrvState::Normal => "normal",
            SrvState::NoIo => "no_io",
        }
    }
}

/// Kind of a join request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinKind {
    /// Non-sync `mode=create`.
    Create,
    /// Non-sync `mode=assemble`.
    Assemble,
    /// Non-sync REJOIN_POOL.
    Rejoin,
    /// Sync pool join or rejoin.
    Sync,
}

/// Store registration mode (`rmr_srv_register`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegMode {
    /// `RMR_SRV_DISK_CREATE`.
    Create,
    /// `RMR_SRV_DISK_ADD` (with the `pool_md` read from disk).
    Add,
    /// `RMR_SRV_DISK_REPLACE`.
    Replace,
}

/// The join acceptance table of §4.3: `Ok(new state)` or the reply errno.
pub fn join_decision(state: SrvState, marked_create: bool, kind: JoinKind) -> Result<SrvState> {
    use JoinKind::*;
    use SrvState::*;
    match (state, kind) {
        (Empty, _) => Err(Error::NoDev),
        (Registered, Create) if marked_create => Ok(Created),
        (Registered, _) if marked_create => Err(Error::Perm),
        (Registered, Create) => Err(Error::Perm),
        (Registered, Assemble | Rejoin) => Ok(NoIo),
        (Registered, Sync) => Ok(Registered),
        (Created, _) => Err(Error::Busy),
        (Normal, Create) | (NoIo, Create) => Err(Error::Busy),
        (Normal, Assemble | Rejoin) => Ok(NoIo),
        (NoIo, Assemble | Rejoin) => Ok(NoIo),
        (s, Sync) => Ok(s),
    }
}

/// What the IO path must do with a request (§5.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoDecision {
    /// Submit to the backend.
    Submit,
    /// [improvement] Submit the write with FUA added (the shell adds the flag to the IO it
    /// passes back to `on_io_done`): see [`ServerPool::must_persist`] and
    /// [`ServerPool::on_io`]. Unflushed data the write's witness reset depends on is flushed
    /// by the writer round the write waits for ([`MdPlan::preflush`]).
    SubmitFua,
    /// Parked behind a sync of this chunk already running.
    Park,
    /// Parked; start an on-demand sync of the chunk (read it from a peer first).
    SyncFirst,
    /// Reply with this error.
    Reject(Error),
}

/// Side effects the shell must perform after a server call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SrvEffects {
    /// Persist maps and `pool_md` to the store.
    pub persist_md: bool,
    /// The state changed.
    pub state_changed: bool,
    /// Abort the sync thread and fail outstanding sync requests (left NORMAL).
    pub stop_sync: bool,
}

/// What the shell does after a sync job ended ([`ServerPool::finish_sync`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncDone {
    /// Parked IOs of the chunk, listed in the caller's waiters buffer.
    pub waiters: usize,
    /// The chunk is clean here now: run the parked IOs' decisions again and send `map_clear`
    /// to [`ServerPool::map_clear_peers`]; otherwise answer each parked IO with
    /// `waiter_errno`.
    pub cleared: bool,
    /// The answer (negative errno) of the parked IOs when the chunk stays dirty.
    pub waiter_errno: i32,
    /// `RMR_MSG_MAP_CLEAR(own member, chunk, map_ver)` when cleared.
    pub map_clear: Option<Cmd<'static>>,
}

/// A server pool (`rmr_srv_pool`).
pub struct ServerPool<S: MapStorage + Default> {
    /// State.
    pub state: SrvState,
    /// Registered by CREATE and not yet joined.
    pub marked_create: bool,
    /// Maintenance flag (§8).
    pub maintenance: bool,
    /// Own member id.
    pub member_id: u32,
    /// Pool description (chunk size, queue depth, members, `map_ver`).
    pub md: PoolMd,
    /// A store is registered.
    pub store: bool,
    /// `io_allowed()` of the store (OPEN ∧ MAPPED).
    pub io_allowed: bool,
    /// Joined non-sync sessions.
    pub sessions: u32,
    /// Joined sync sessions.
    pub sync_sessions: u32,
    /// Own and peer maps.
    pub maps: MapSet<S>,
    staging: Option<MapSet<S>>,
    /// Prepared storages for the next MAP_READY's staging maps (see [`MapSet::add_spare`]).
    pub staging_spares: MapSet<S>,
    /// `last_io`: chunk of the last successful write per `mem_id` (`u64::MAX` = empty).
    pub last_io: [u64; RMR_MAX_QUEUE_DEPTH],
    /// Chunks being synced with their waiters.
    pub sync: SyncTable,
    /// Teeth hook: last-IO without the skip rule.
    pub bug_last_io_no_skip: bool,
    /// Teeth hook: client writes are not recorded in the persisted `last_io` record.
    pub bug_no_last_io_record: bool,
    /// Teeth hook: changes of the write-intent record are persisted lazily (not before the
    /// write that made them).
    pub bug_intent_lazy: bool,
    /// Teeth hook: a slot passes to another member without being zeroed first.
    pub bug_no_scrub: bool,
    /// Teeth hook: a round that drops a chunk's last witness while the chunk has unflushed
    /// data here (MAP_ADD, written-through write) does not flush the device first.
    pub bug_no_preflush: bool,
    /// Incremented whenever the pool leaves NORMAL: a sync started in an earlier NORMAL period
    /// must fail even if the pool is NORMAL again when it completes.
    pub epoch: u64,
    /// Incremented whenever the pool enters NORMAL (an admin `sync stop` holds the automatic
    /// sync start until the next entry, [`SyncSched::stop_by_admin`]).
    pub normal_entries: u64,
    /// [improvement] Write-intent record (power-loss protection).
    pub intent: IntentRecord<S>,
    /// [improvement] Per member: chunks it may have lost in a power loss (its suspect
    /// resolution marked them dirty for it) and has not synced since. Travels with the maps
    /// (MAP_SEND pieces with [`LOST_PIECE`]); such a member is never handed a chunk.
    pub lost: MapSet<S>,
    /// The lost maps of a map transfer in progress (MAP_READY .. MAP_DONE).
    pub staging_lost: MapSet<S>,
    /// [improvement] What is persisted through the store, and when ([`MdLog`]).
    pub mdlog: MdLog,
}

/// `a` newer than `b` as 63-bit versions.
pub fn map_ver_gt(a: u64, b: u64) -> bool {
    (a & RMR_MAP_VER_MASK) > (b & RMR_MAP_VER_MASK)
}

/// Round a chunk count to map pages (for sizing storage).
pub fn pages_for(total_chunks: u64) -> u64 {
    total_chunks.div_ceil(PAGE_BITS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use super::super::dirtymap::vecstore::VecStorage;
    use super::super::wire::{JoinBody, PoolName, RmrId, SrvMd};
    use JoinKind::*;
    use SrvState::*;

    pub(super) fn md() -> PoolMd {
        PoolMd {
            name: PoolName::new(b"ionos_pool").unwrap(),
            group_id: 1,
            chunk_size: 131072,
            mapped_size: 204800,
            queue_depth: 512,
            map_ver: 0,
            srv_md: [SrvMd::default(); 4],
        }
    }

    #[test]
    fn join_table() {
        let rows: [(SrvState, bool, [Result<SrvState>; 4]); 6] = [
            (Empty, false, [Err(Error::NoDev); 4]),
            (Registered, true, [Ok(Created), Err(Error::Perm), Err(Error::Perm), Err(Error::Perm)]),
            (Registered, false, [Err(Error::Perm), Ok(NoIo), Ok(NoIo), Ok(Registered)]),
            (Created, false, [Err(Error::Busy); 4]),
            (Normal, false, [Err(Error::Busy), Ok(NoIo), Ok(NoIo), Ok(Normal)]),
            (NoIo, false, [Err(Error::Busy), Ok(NoIo), Ok(NoIo), Ok(NoIo)]),
        ];
        for (st, mc, want) in rows {
            for (k, w) in [Create, Assemble, Rejoin, Sync].into_iter().zip(want) {
                assert_eq!(join_decision(st, mc, k), w, "{st:?} mc={mc} {k:?}");
            }
        }
    }

    fn io(chunk: u64, mem_id: u16, members: &[u32]) -> IoMsg {
        let mut l = MemberList::new();
        for m in members {
            l.push(*m).unwrap();
        }
        IoMsg { id: RmrId::chunk(chunk), mem_id, flags: IO_WRITE, offset: 0, len: 4096, map_ver: 0, members: l }
    }

    pub(super) fn normal_pool() -> ServerPool<VecStorage> {
        let mut p: ServerPool<VecStorage> = ServerPool::new(42, md()).unwrap();
        p.register(RegMode::Create, None).unwrap();
        let mut buf = [0u8; PIECE_BYTES];
        let j = JoinBody { chunk_size: 131072, queue_depth: 512, create: true, sync: false, members: MemberList::new() };
        let (r, _) = p.handle_cmd(&Cmd::JoinPool(j), false, 0, &mut buf);
        assert_eq!(r.errno, 0);
        assert_eq!(p.state, Created);
        let (r, _) = p.handle_cmd(&Cmd::EnablePool { enable: true }, false, 0, &mut buf);
        assert_eq!(r.errno, 0);
        assert_eq!(p.state, Normal);
        p
    }

    #[test]
    fn sync_reads_need_a_store_not_mapped() {
        let mut p = normal_pool();
        let read = IoMsg { flags: IO_SYNC, ..io(3, 0, &[]) };
        // Store OPEN but not MAPPED (§12.1 step 15 runs before the first map).
        p.io_allowed = false;
        assert_eq!(p.on_io(&read, 0), IoDecision::Submit);
        assert_eq!(p.on_io(&io(3, 1, &[]), 0), IoDecision::Reject(Error::Io));
        // No store: nothing is served.
        p.store = false;
        assert_eq!(p.on_io(&read, 0), IoDecision::Reject(Error::Io));
        // Not NORMAL: nothing is served.
        p.store = true;
        p.state = NoIo;
        assert_eq!(p.on_io(&read, 0), IoDecision::Reject(Error::Io));
    }

    /// A finished sync: cleared (resume, MAP_CLEAR to the peers but this node), a failed read
    /// (its errno to the parked IOs), and a good read that may no longer clear (-EIO).
    #[test]
    fn finish_sync_outcomes() {
        let mut p = normal_pool();
        let mut w = [0u16; 8];
        p.maps.get_mut(42).unwrap().set(9, 0).unwrap();
        assert_eq!(p.on_io(&io(9, 2, &[]), 0), IoDecision::SyncFirst);
        let d = p.finish_sync(9, 0, &mut w);
        assert!(d.cleared && d.waiters == 1 && w[0] == 2);
        assert_eq!(d.map_clear, Some(Cmd::MapClear { member_id: 42, chunk: 9, map_ver: p.md.map_ver }));
        let peers: MemberList = [42u32, 43, 44].iter().fold(MemberList::new(), |mut l, m| {
            l.push(*m).unwrap();
            l
        });
        assert_eq!(p.map_clear_peers(&peers).as_slice(), &[43, 44]);
        // A failed read: the chunk stays dirty and the parked IO gets the read's errno.
        let mut p = normal_pool();
        p.maps.get_mut(42).unwrap().set(10, 0).unwrap();
        assert_eq!(p.on_io(&io(10, 3, &[]), 0), IoDecision::SyncFirst);
        let d = p.finish_sync(10, -110, &mut w);
        assert!(!d.cleared && d.waiters == 1 && d.map_clear.is_none());
        assert_eq!(d.waiter_errno, -110);
        assert!(p.maps.get(42).unwrap().test(10));
        assert_eq!(p.state, SrvState::NoIo);
        // No peer could provide it: the waiters get -ENODATA, so a client reading the chunk
        // tries another leg and keeps this one (§5.2).
        let mut p = normal_pool();
        p.maps.get_mut(42).unwrap().set(12, 0).unwrap();
        let read = IoMsg { flags: 0, ..io(12, 5, &[]) };
        assert_eq!(p.on_io(&read, 0), IoDecision::SyncFirst);
        assert_eq!(p.on_io(&IoMsg { mem_id: 6, ..read }, 0), IoDecision::Park);
        let d = p.finish_sync(12, SYNC_NO_SOURCE.to_kernel(), &mut w);
        assert!(!d.cleared && d.waiters == 2 && d.map_clear.is_none());
        assert_eq!(d.waiter_errno, -61);
        assert!(p.maps.get(42).unwrap().test(12));
        // ... and with only reads waiting the node stays NORMAL: it serves every other chunk
        // (found in the VMs: one stale read sent it to NO_IO, and the next write failed the
        // leg with -EIO).
        assert_eq!(p.state, SrvState::Normal);
        // A write among the waiters fails its leg at the client: NO_IO (seed 1929).
        assert_eq!(p.on_io(&read, 0), IoDecision::SyncFirst);
        assert_eq!(p.on_io(&io(12, 6, &[]), 0), IoDecision::Park);
        let d = p.finish_sync(12, SYNC_NO_SOURCE.to_kernel(), &mut w);
        assert!(!d.cleared && d.waiters == 2 && d.waiter_errno == -61);
        assert_eq!(p.state, SrvState::NoIo);
        // A good read after the pool left NORMAL clears nothing: -EIO for the waiters.
        let mut p = normal_pool();
        p.maps.get_mut(42).unwrap().set(11, 0).unwrap();
        assert_eq!(p.on_io(&io(11, 4, &[]), 0), IoDecision::SyncFirst);
        p.state = NoIo;
        let d = p.finish_sync(11, 0, &mut w);
        assert!(!d.cleared && d.map_clear.is_none());
        assert_eq!(d.waiter_errno, Error::Io.errno());
        assert!(p.maps.get(42).unwrap().test(11));
    }

    #[test]
    fn io_decision_wait_lists_and_last_io() {
        let mut p = normal_pool();
        assert_eq!(p.total_chunks(), 800);
        assert_eq!(p.on_io(&io(5, 1, &[43]), 0), IoDecision::Submit);
        assert!(p.maps.get(43).unwrap().test(5));
        p.on_io_done(&io(5, 1, &[43]), true);
        assert_eq!(p.last_io[1], 5);
        p.maps.get_mut(42).unwrap().set(9, 0).unwrap();
        assert_eq!(p.on_io(&io(9, 2, &[]), 0), IoDecision::SyncFirst);
        assert_eq!(p.on_io(&io(9, 3, &[]), 0), IoDecision::Park);
        let mut w = [0u16; 8];
        assert_eq!(p.on_sync_done(9, 0, &mut w), (2, true));
        assert_eq!(&w[..2], &[2, 3]);
        assert_eq!(p.on_io(&io(9, 2, &[]), 0), IoDecision::Submit);
        // Last-IO skip rule: chunk 9 was dirty in own map -> skip; chunk 5 -> dirty for peers.
        p.maps.ensure(44, 800).unwrap();
        p.md.add_member(44).unwrap();
        p.last_io[7] = 9;
        p.maps.get_mut(42).unwrap().set(9, 0).unwrap();
        p.last_io_to_map(0).unwrap();
        assert!(!p.maps.get(44).unwrap().test(9));
        assert!(p.maps.get(44).unwrap().test(5));
        assert!(!p.maps.get(42).unwrap().test(5));
        // Out of bounds: beyond the chunk, or past the device end in the last chunk.
        let mut o = io(3, 4, &[]);
        o.offset = 131072 - 512;
        o.len = 1024;
        assert_eq!(p.on_io(&o, 0), IoDecision::Reject(Error::Inval));
        p.md.mapped_size = 204800 - 8;
        let mut o = io(799, 4, &[]);
        o.offset = 131072 - 4096;
        assert_eq!(p.on_io(&o, 0), IoDecision::Reject(Error::Inval));
        o.offset = 131072 - 8192;
        assert_eq!(p.on_io(&o, 0), IoDecision::Submit);
        assert_eq!(p.io_byte_offset(&o), 799 * 131072 + 131072 - 8192);
        p.md.mapped_size = 204800;
        // Backend error -> NO_IO; IO rejected.
        p.on_io_done(&io(1, 1, &[]), false);
        assert_eq!(p.state, NoIo);
        assert_eq!(p.on_io(&io(1, 1, &[]), 0), IoDecision::Reject(Error::Io));
    }

    #[test]
    fn map_check_answers() {
        let mut p = normal_pool();
        p.md.map_ver = 3;
        assert!(p.map_check_answer(3));
        assert!(!p.map_check_answer(4), "asker saw a newer failure");
        p.maps.get_mut(42).unwrap().set(1, 0).unwrap();
        assert!(!p.map_check_answer(0));
        p.maps.ensure(43, 800).unwrap().set(1, 0).unwrap();
        let g = p.maps.get(43).unwrap().gen();
        p.maps.get_mut(43).unwrap().set(2, 0).unwrap();
        assert!(!p.on_peer_check_reply(43, true, g), "bit set after the check was sent");
        let g = p.maps.get(43).unwrap().gen();
        assert!(p.on_peer_check_reply(43, true, g));
    }
}

#[cfg(test)]
mod tests_membership {
    extern crate std;
    use super::super::dirtymap::vecstore::VecStorage;
    use super::super::wire::{JoinBody, PoolName, RmrId, SrvMd};
    use super::tests::{md, normal_pool};
    use super::*;
    use SrvState::Normal;

    fn pool() -> ServerPool<VecStorage> {
        let md = PoolMd {
            name: PoolName::new(b"p").unwrap(),
            group_id: 1,
            chunk_size: 4096,
            mapped_size: 800 * 8,
            queue_depth: 8,
            map_ver: 0,
            srv_md: [SrvMd::default(); 4],
        };
        let mut p: ServerPool<VecStorage> = ServerPool::new(42, md).unwrap();
        p.register(RegMode::Create, None).unwrap();
        let mut buf = [0u8; PIECE_BYTES];
        let j = JoinBody { chunk_size: 4096, queue_depth: 8, create: true, sync: false, members: MemberList::new() };
        assert_eq!(p.handle_cmd(&Cmd::JoinPool(j), false, 0, &mut buf).0.errno, 0);
        p
    }

    fn cmd(p: &mut ServerPool<VecStorage>, c: Cmd<'_>) -> i32 {
        let mut buf = [0u8; PIECE_BYTES];
        p.handle_cmd(&c, false, 0, &mut buf).0.errno
    }

    #[test]
    fn pool_info_table() {
        let mut p = pool();
        assert_eq!(cmd(&mut p, Cmd::PoolInfo { member_id: 43, op: InfoOp::AddAssemble, dirty: false }), Error::NoEnt.errno());
        assert!(p.maps.get(43).is_none(), "ASSEMBLE creates nothing");
        assert_eq!(cmd(&mut p, Cmd::PoolInfo { member_id: 43, op: InfoOp::AddCreate, dirty: true }), 0);
        assert_eq!(p.maps.get(43).unwrap().count(), 800, "dirty=1: fully dirty");
        assert!(p.md.members().contains(43));
        assert_eq!(cmd(&mut p, Cmd::PoolInfo { member_id: 43, op: InfoOp::AddAssemble, dirty: false }), 0);
        assert_eq!(cmd(&mut p, Cmd::PoolInfo { member_id: 43, op: InfoOp::RemoveDisassemble, dirty: false }), 0);
        assert!(p.maps.get(43).is_some(), "DISASSEMBLE keeps the map");
        assert_eq!(cmd(&mut p, Cmd::PoolInfo { member_id: 43, op: InfoOp::RemoveDelete, dirty: false }), 0);
        assert!(p.maps.get(43).is_none() && !p.md.members().contains(43));
        assert_eq!(cmd(&mut p, Cmd::PoolInfo { member_id: 42, op: InfoOp::RemoveDelete, dirty: false }), Error::Inval.errno());
    }

    #[test]
    fn leave_delete_and_disassemble() {
        let mut p = pool();
        cmd(&mut p, Cmd::PoolInfo { member_id: 43, op: InfoOp::AddCreate, dirty: false });
        assert_eq!(cmd(&mut p, Cmd::EnablePool { enable: true }), 0);
        assert_eq!(p.state, SrvState::Normal);
        // disassemble: maps kept, last session gone -> REGISTERED
        assert_eq!(cmd(&mut p, Cmd::LeavePool { delete: false }), 0);
        assert_eq!(p.state, SrvState::Registered);
        assert!(p.maps.get(43).is_some());
        // rejoin (assemble) then delete: other members' maps dropped, own kept
        let j = JoinBody { chunk_size: 4096, queue_depth: 8, create: false, sync: false, members: MemberList::new() };
        assert_eq!(cmd(&mut p, Cmd::JoinPool(j)), 0);
        assert_eq!(p.state, SrvState::NoIo);
        assert_eq!(cmd(&mut p, Cmd::LeavePool { delete: true }), 0);
        assert!(p.maps.get(43).is_none() && p.maps.get(42).is_some());
        assert_eq!(p.state, SrvState::Registered);
        // unregister with no sessions -> EMPTY; CREATE join refused afterwards
        p.unregister();
        assert_eq!(p.state, SrvState::Empty);
        let j = JoinBody { chunk_size: 4096, queue_depth: 8, create: true, sync: false, members: MemberList::new() };
        assert_eq!(cmd(&mut p, Cmd::JoinPool(j)), Error::NoDev.errno());
    }

    #[test]
    fn a_lost_session_leaves_the_pool_no_io() {
        // SPEC §4.3: a non-sync session whose link is lost takes NORMAL (and CREATED) to NO_IO
        // and never to REGISTERED; the client's rejoin or assemble is accepted there.
        let mut p = pool();
        cmd(&mut p, Cmd::PoolInfo { member_id: 43, op: InfoOp::AddCreate, dirty: false });
        assert_eq!(cmd(&mut p, Cmd::EnablePool { enable: true }), 0);
        let fx = p.on_session_lost(true);
        assert_eq!((p.state, fx.state_changed), (SrvState::Normal, false), "a sync session changes nothing");
        let fx = p.on_session_lost(false);
        assert_eq!(p.state, SrvState::NoIo);
        assert!(fx.state_changed && fx.stop_sync);
        assert_eq!(p.sessions, 0);
        let j = JoinBody { chunk_size: 4096, queue_depth: 8, create: false, sync: false, members: MemberList::new() };
        assert_eq!(cmd(&mut p, Cmd::RejoinPool(j)), 0);
        assert_eq!((p.state, p.sessions), (SrvState::NoIo, 1), "the rejoin is accepted in NO_IO");
        let fx = p.on_session_lost(false);
        assert_eq!((p.state, fx.state_changed), (SrvState::NoIo, false));
        // the store goes too: nothing is left
        p.unregister();
        assert_eq!(p.state, SrvState::Empty);
        // a CREATED pool whose client is lost before the enable: NO_IO, and an assemble is taken
        let mut p = pool();
        assert_eq!(p.state, SrvState::Created);
        p.on_session_lost(false);
        assert_eq!(p.state, SrvState::NoIo);
        assert_eq!(cmd(&mut p, Cmd::JoinPool(j)), 0);
        assert_eq!(p.state, SrvState::NoIo);
        // LEAVE_POOL of the last session still makes it REGISTERED
        assert_eq!(cmd(&mut p, Cmd::LeavePool { delete: false }), 0);
        assert_eq!(p.state, SrvState::Registered);
    }

    #[test]
    fn blank_pool_and_register_store() {
        extern crate std;
        let mut p: std::boxed::Box<ServerPool<VecStorage>> = std::boxed::Box::new(ServerPool::BLANK);
        assert_eq!(p.state, SrvState::Empty);
        assert!(p.last_io.iter().all(|c| *c == u64::MAX) && p.sync.active() == 0);
        p.member_id = 42;
        p.md.name = PoolName::new(b"p").unwrap();
        assert_eq!(p.register_store(RegMode::Create, None, 0), Err(Error::Inval));
        // A stale member of an earlier (deleted) store does not survive a CREATE.
        p.md.add_member(43).unwrap();
        p.register_store(RegMode::Create, None, 6400).unwrap();
        assert_eq!(p.md.mapped_size, 6400);
        assert_eq!(p.md.members().as_slice(), &[42]);
        assert_eq!(p.register_store(RegMode::Create, None, 100), Err(Error::Busy));
        assert_eq!(p.md.mapped_size, 6400, "a refused registration changes nothing");
        p.unregister();
        let mut disk = p.md;
        disk.chunk_size = 4096;
        disk.queue_depth = 8;
        assert_eq!(p.register_store(RegMode::Add, Some(disk), 6401), Err(Error::Inval));
        let mut other = disk;
        other.group_id ^= 1;
        assert_eq!(p.register_store(RegMode::Add, Some(other), 6400), Err(Error::Inval), "another pool's store");
        p.register_store(RegMode::Add, Some(disk), 6400).unwrap();
        assert_eq!(p.total_chunks(), 800);
        assert_eq!(p.state, SrvState::Registered);
    }

    #[test]
    fn maintenance_flag() {
        let mut p = pool();
        cmd(&mut p, Cmd::EnablePool { enable: true });
        assert_eq!(cmd(&mut p, Cmd::EnablePool { enable: false }), 0);
        assert_eq!((p.state, p.maintenance), (SrvState::NoIo, true));
        assert_eq!(cmd(&mut p, Cmd::MapReady), 0);
        assert_eq!(cmd(&mut p, Cmd::MapBufDone { members: MemberList::new() }), 0);
        assert_eq!(cmd(&mut p, Cmd::MapDone { enable: true, map_ver: 1 }), Error::Perm.errno(), "no map update into maintenance");
        assert_eq!(cmd(&mut p, Cmd::EnablePool { enable: true }), 0);
        assert_eq!((p.state, p.maintenance), (SrvState::NoIo, false), "flag cleared, stays NO_IO");
        assert_eq!(cmd(&mut p, Cmd::EnablePool { enable: true }), 0);
        assert_eq!(p.state, SrvState::Normal);
        assert_eq!(cmd(&mut p, Cmd::MapDone { enable: true, map_ver: 1 }), Error::Proto.errno(), "MAP_DONE without MAP_READY");
    }

    fn wio(chunk: u64, mem_id: u16, flags: u16, len: u32) -> IoMsg {
        IoMsg { id: RmrId::chunk(chunk), mem_id, flags: IO_WRITE | flags, offset: 0, len, map_ver: 0, members: MemberList::new() }
    }

    fn submit(p: &mut ServerPool<VecStorage>, io: &IoMsg) {
        assert_eq!(p.on_io(io, 0), IoDecision::Submit);
    }

    #[test]
    fn write_intent_follows_flushes() {
        use super::super::wire::{IO_FLUSH, IO_FUA};
        let mut p = normal_pool();
        // Plain writes are recorded (once), FUA writes are not.
        submit(&mut p, &wio(3, 0, 0, 4096));
        p.on_io_done(&wio(3, 0, 0, 4096), true);
        submit(&mut p, &wio(3, 0, 0, 4096));
        p.on_io_done(&wio(3, 0, 0, 4096), true);
        submit(&mut p, &wio(4, 1, IO_FUA, 4096));
        p.on_io_done(&wio(4, 1, IO_FUA, 4096), true);
        assert!(p.intent.durable(3) && !p.intent.durable(4));
        assert_eq!(p.intent.persists, 1, "one durable record write for two writes of chunk 3");
        // A write still in flight when a flush is issued is not covered by it.
        submit(&mut p, &wio(5, 2, 0, 4096));
        let f1 = wio(0, 7, IO_FLUSH, 0);
        submit(&mut p, &f1);
        p.on_io_done(&wio(5, 2, 0, 4096), true);
        // Overlapping second flush; the first completes, then a rewrite of 3 after the second
        // flush was issued keeps 3 in the record.
        let f2 = wio(0, 6, IO_FLUSH, 0);
        submit(&mut p, &f2);
        submit(&mut p, &wio(3, 0, 0, 4096));
        p.on_io_done(&f1, true);
        assert!(p.intent.durable(5), "in flight at the first flush");
        p.on_io_done(&wio(3, 0, 0, 4096), true);
        p.on_io_done(&f2, true);
        assert!(!p.intent.durable(5), "covered by the second flush");
        assert!(p.intent.durable(3), "rewritten after the second flush was issued");
        // A failed flush clears nothing; a later one covers its epoch.
        let f3 = wio(0, 6, IO_FLUSH, 0);
        submit(&mut p, &f3);
        p.on_io_done(&f3, false);
        assert!(p.intent.durable(3));
        p.io_allowed = true;
        p.state = Normal;
        let f4 = wio(0, 5, IO_FLUSH, 0);
        submit(&mut p, &f4);
        p.on_io_done(&f4, true);
        assert!(!p.intent.durable(3));
        // Sync writes are plain writes too.
        assert_eq!(p.sync_write_intent(9), Ok(true));
        assert!(p.intent.durable(9));
        assert_eq!(p.sync_write_intent(1 << 40), Err(Error::Range));
    }

    #[test]
    fn write_through_store_keeps_no_record() {
        let mut p = normal_pool();
        p.intent.volatile_cache = false;
        submit(&mut p, &wio(3, 0, 0, 4096));
        assert!(!p.intent.durable(3));
        p.restore_suspect(3).unwrap();
        assert!(!p.intent.durable(3));
    }

    #[test]
    fn suspects_resolve_into_the_own_map() {
        let mut p = pool();
        cmd(&mut p, Cmd::PoolInfo { member_id: 43, op: InfoOp::AddCreate, dirty: false });
        cmd(&mut p, Cmd::PoolInfo { member_id: 44, op: InfoOp::AddCreate, dirty: false });
        for c in [1, 2, 3] {
            p.restore_suspect(c).unwrap();
        }
        // Chunk 2: every other member misses it, so this copy is the best there is.
        p.maps.get_mut(43).unwrap().set(2, 0).unwrap();
        p.maps.get_mut(44).unwrap().set(2, 0).unwrap();
        // Chunk 3: already dirty here.
        p.maps.get_mut(42).unwrap().set(3, 0).unwrap();
        p.state = SrvState::NoIo; // back after a restart, not serving
        let mut buf = [0u8; PIECE_BYTES];
        let (r, _) = p.handle_cmd(&Cmd::SuspectToMap, false, 0, &mut buf);
        assert_eq!(r.body, RspBody::Bool(true));
        let own: std::vec::Vec<u64> = p.maps.get(42).unwrap().iter().collect();
        assert_eq!(own, [1, 3]);
        let (r, _) = p.handle_cmd(&Cmd::SuspectToMap, false, 0, &mut buf);
        assert_eq!(r.body, RspBody::Bool(false), "idempotent");
        // Suspects stay until NORMAL: a map update that replaces the maps gets them again.
        assert_eq!(cmd(&mut p, Cmd::MapReady), 0);
        let members = p.md.members();
        assert_eq!(cmd(&mut p, Cmd::MapBufDone { members }), 0);
        let (r, _) = p.handle_cmd(&Cmd::SuspectToMap, false, 0, &mut buf);
        assert_eq!(r.body, RspBody::Bool(true), "resolved against the staged maps");
        assert_eq!(cmd(&mut p, Cmd::MapDone { enable: true, map_ver: 1 }), 0);
        assert_eq!(p.state, SrvState::Normal);
        let own: std::vec::Vec<u64> = p.maps.get(42).unwrap().iter().collect();
        assert_eq!(own, [1, 2, 3], "staged maps were clean everywhere");
        assert!(p.intent.suspect.as_ref().is_none_or(|m| m.is_empty()), "dropped in NORMAL");
        let (r, _) = p.handle_cmd(&Cmd::SuspectToMap, false, 0, &mut buf);
        assert_eq!(r.body, RspBody::Bool(false), "nothing suspect while serving");
        let own: std::vec::Vec<u64> = p.maps.get(42).unwrap().iter().collect();
        assert_eq!(own, [1, 2, 3], "maps unchanged");
    }

    /// A NORMAL pool of member 42 with peers 43 and 44 (clean).
    fn trio() -> ServerPool<VecStorage> {
        let mut p = normal_pool();
        for m in [43, 44] {
            p.md.add_member(m).unwrap();
            p.maps.ensure(m, p.total_chunks()).unwrap();
        }
        p
    }

    fn pig(mut io: IoMsg, members: &[u32]) -> IoMsg {
        for m in members {
            io.members.push(*m).unwrap();
        }
        io
    }

    /// Back after a power loss with `chunk` in the record: not serving, `chunk` suspect.
    fn power_lost(p: &mut ServerPool<VecStorage>, chunk: u64) {
        p.state = SrvState::NoIo;
        p.restore_suspect(chunk).unwrap();
    }

    /// Member 42 wrote `chunk` (43 and 44 witnessed it), lost power, and finds 43 and 44
    /// marked dirty there.
    fn suspect_all_dirty(chunk: u64) -> ServerPool<VecStorage> {
        let mut p = trio();
        submit(&mut p, &wio(chunk, 0, 0, 4096));
        power_lost(&mut p, chunk);
        for m in [43, 44] {
            p.maps.get_mut(m).unwrap().set(chunk, 0).unwrap();
        }
        p
    }

    fn bits(m: Option<&DirtyMap<VecStorage>>) -> std::vec::Vec<u64> {
        m.map(|m| m.iter().collect()).unwrap_or_default()
    }

    #[test]
    fn lone_clean_holder_writes_through() {
        let mut p = trio();
        p.maps.get_mut(43).unwrap().set(1, 0).unwrap();
        // Chunk 1: the other target (43) looks dirty here, 44 is piggybacked: write through.
        assert_eq!(p.on_io(&pig(wio(1, 0, 0, 4096), &[44]), 0), IoDecision::SubmitFua);
        assert!(!p.intent.durable(1), "a written-through write is not recorded");
        // Chunk 2: 43 is a clean target: a plain recorded write.
        submit(&mut p, &pig(wio(2, 1, 0, 4096), &[44]));
        assert!(p.intent.durable(2));
        // Chunk 3: no other target at all (degraded to this node): plain, as on one disk.
        submit(&mut p, &pig(wio(3, 2, 0, 4096), &[43, 44]));
        assert!(p.intent.durable(3));
        // A store without a volatile cache never needs it.
        p.intent.volatile_cache = false;
        submit(&mut p, &pig(wio(1, 3, 0, 4096), &[44]));
    }

    #[test]
    fn suspect_chunk_goes_to_the_witnesses() {
        let mut p = trio();
        submit(&mut p, &wio(5, 0, 0, 4096));
        assert!(p.intent.is_witness(43, 5) && p.intent.is_witness(44, 5));
        // A write failure reported for 44 (client MAP_ADD) removes it; a recovery mark does not.
        assert_eq!(cmd(&mut p, Cmd::MapAdd { chunk: 5, member_id: 44, map_ver: 0, recovery: false }), 0);
        assert_eq!(cmd(&mut p, Cmd::MapAdd { chunk: 5, member_id: 43, map_ver: 0, recovery: true }), 0);
        assert!(p.intent.is_witness(43, 5) && !p.intent.is_witness(44, 5));
        power_lost(&mut p, 5);
        let mut buf = [0u8; PIECE_BYTES];
        let (r, _) = p.handle_cmd(&Cmd::SuspectToMap, false, 0, &mut buf);
        assert_eq!(r.body, RspBody::Bool(true));
        assert_eq!(bits(p.maps.get(42)), [5], "this node may have lost the write");
        assert_eq!(bits(p.maps.get(43)), [0u64; 0], "the witness's conservative mark is gone");
        assert_eq!(bits(p.maps.get(44)), [5], "44 failed the write");
        assert_eq!(bits(p.lost.get(42)), [5]);
        assert!(p.intent.lost.as_ref().is_some_and(|l| l.test(5)));
    }

    #[test]
    fn removing_the_last_witness_flushes_first() {
        let mut p = trio();
        // Chunk 5 is written here and on 43 and 44 and not flushed yet.
        submit(&mut p, &wio(5, 0, 0, 4096));
        let _ = p.md_begin();
        // The write failed on 44: 43 still holds everything this node has not flushed.
        assert_eq!(cmd(&mut p, Cmd::MapAdd { chunk: 5, member_id: 44, map_ver: 0, recovery: false }), 0);
        assert!(!p.md_begin().preflush, "43 still witnesses chunk 5");
        // A later write failed on 43 as well: this node is the only holder of data it has not
        // flushed, which the client may have acknowledged. The round that persists the
        // MAP_ADD (and so its reply) flushes the device first.
        assert_eq!(cmd(&mut p, Cmd::MapAdd { chunk: 5, member_id: 43, map_ver: 0, recovery: false }), 0);
        let plan = p.md_begin();
        assert!(plan.preflush, "the last witness is gone");
        // A failed round asks again; a successful one is done with it.
        p.md_end(&plan, false);
        let plan = p.md_begin();
        assert!(plan.preflush, "asked again after a failed round");
        p.md_end(&plan, true);
        assert!(!p.md_begin().preflush);
        // A flushed chunk (no `wi` bit) needs nothing: its data is durable here.
        submit(&mut p, &wio(6, 1, 0, 4096));
        p.on_io_done(&wio(6, 1, 0, 4096), true);
        let f = wio(0, 2, IO_FLUSH, 0);
        submit(&mut p, &f);
        p.on_io_done(&f, true);
        assert!(!p.intent.durable(6));
        let _ = p.md_begin();
        assert_eq!(cmd(&mut p, Cmd::MapAdd { chunk: 6, member_id: 43, map_ver: 0, recovery: false }), 0);
        assert_eq!(cmd(&mut p, Cmd::MapAdd { chunk: 6, member_id: 44, map_ver: 0, recovery: false }), 0);
        assert!(!p.md_begin().preflush, "nothing unflushed at chunk 6");
    }

    #[test]
    fn lost_witness_is_not_handed_a_chunk() {
        let mut p = suspect_all_dirty(6);
        // 43 lost chunk 6 itself; 44 did not.
        p.lost.ensure(43, p.total_chunks()).unwrap().set(6, 0).unwrap();
        let mut buf = [0u8; PIECE_BYTES];
        p.handle_cmd(&Cmd::SuspectToMap, false, 0, &mut buf);
        assert_eq!(bits(p.maps.get(43)), [6]);
        assert_eq!(bits(p.maps.get(44)), [0u64; 0]);
        assert_eq!(bits(p.maps.get(42)), [6]);
        // Without any usable witness the copy here is the best the pool has.
        let mut q = suspect_all_dirty(6);
        for m in [43, 44] {
            q.lost.ensure(m, q.total_chunks()).unwrap().set(6, 0).unwrap();
        }
        let (r, _) = q.handle_cmd(&Cmd::SuspectToMap, false, 0, &mut buf);
        assert_eq!(r.body, RspBody::Bool(false));
        assert_eq!(bits(q.maps.get(42)), [0u64; 0]);
    }

    #[test]
    fn witnesses_last_until_a_flush_covers_the_chunk() {
        use super::super::wire::IO_FLUSH;
        let mut p = trio();
        submit(&mut p, &wio(7, 0, 0, 4096));
        p.on_io_done(&wio(7, 0, 0, 4096), true);
        // 43 and 44 miss the next write: the witnesses of the first stay (their copy is the
        // newest that survives if this node loses both unflushed writes).
        submit(&mut p, &pig(wio(7, 1, 0, 4096), &[43, 44]));
        p.on_io_done(&wio(7, 1, 0, 4096), true);
        assert!(p.intent.is_witness(43, 7) && p.intent.is_witness(44, 7));
        // A flush makes this node's copy durable: after it, an unwitnessed write has none.
        let f = wio(0, 2, IO_FLUSH, 0);
        submit(&mut p, &f);
        p.on_io_done(&f, true);
        assert!(!p.intent.durable(7));
        submit(&mut p, &pig(wio(7, 3, 0, 4096), &[43, 44]));
        assert!(!p.intent.is_witness(43, 7) && !p.intent.is_witness(44, 7));
    }

    #[test]
    fn lost_maps_travel_with_the_maps_and_stay_dirty() {
        let mut a = trio();
        let total = a.total_chunks();
        a.maps.get_mut(43).unwrap().set(3, 0).unwrap();
        a.lost.ensure(43, total).unwrap().set(3, 0).unwrap();
        // Receiver 43 lost chunk 3 (and 9, which the source does not know yet).
        let mut b: ServerPool<VecStorage> = ServerPool::new(43, md()).unwrap();
        b.register(RegMode::Create, None).unwrap();
        b.md = a.md;
        b.restore_lost(9).unwrap();
        assert_eq!(cmd(&mut b, Cmd::MapReady), 0);
        let mut buf = [0u8; PIECE_BYTES];
        let mut cursor = 0;
        let mut flagged = 0;
        loop {
            let (r, _) = a.handle_cmd(&Cmd::MapSend { receiver: 43, cursor }, false, 0, &mut buf);
            let RspBody::MapSend { next_cursor, end, piece, .. } = r.body else { panic!("{r:?}") };
            if end {
                break;
            }
            let p = piece.unwrap();
            flagged += usize::from(p.member & LOST_PIECE != 0);
            let data = p.data.to_vec();
            let p2 = Piece { member: p.member, page: p.page, data: &data };
            assert_eq!(cmd(&mut b, Cmd::SendMapBuf(p2)), 0);
            cursor = next_cursor;
        }
        assert_eq!(flagged, 1);
        let members = a.md.members();
        assert_eq!(cmd(&mut b, Cmd::MapBufDone { members }), 0);
        assert_eq!(cmd(&mut b, Cmd::MapDone { enable: false, map_ver: 1 }), 0);
        assert_eq!(bits(b.lost.get(43)), [3, 9]);
        assert_eq!(bits(b.maps.get(43)), [3, 9], "a chunk it lost stays dirty for it");
        assert!(b.maps.get(42).is_some_and(|m| m.is_empty()));
        // A peer's MAP_CLEAR (it synced the chunk) ends its loss there.
        assert_eq!(cmd(&mut a, Cmd::MapClear { member_id: 43, chunk: 3, map_ver: 0 }), 0);
        assert!(a.lost.get(43).is_some_and(|l| l.is_empty()));
    }

    #[test]
    fn clean_or_deleted_member_loses_its_lost_and_witness_bits() {
        let mut p = trio();
        let total = p.total_chunks();
        submit(&mut p, &wio(2, 0, 0, 4096));
        for m in [43, 44] {
            p.maps.get_mut(m).unwrap().set(2, 0).unwrap();
            p.lost.ensure(m, total).unwrap().set(2, 0).unwrap();
        }
        // The map-clear worker learns 43's own map is clean: no losses left there either.
        let g = p.maps.get(43).unwrap().gen();
        assert!(p.on_peer_check_reply(43, true, g));
        assert!(p.lost.get(43).is_some_and(|l| l.is_empty()));
        // 44 is deleted from the pool: a later member with its id starts without its past.
        assert_eq!(cmd(&mut p, Cmd::PoolInfo { member_id: 44, op: InfoOp::RemoveDelete, dirty: false }), 0);
        assert!(p.lost.get(44).is_none() && !p.intent.is_witness(44, 2) && p.maps.get(44).is_none());
        assert!(p.intent.is_witness(43, 2));
    }

    #[test]
    fn witnesses_are_dropped_when_a_flush_may_cover_a_newer_write() {
        use super::super::wire::IO_FLUSH;
        let mut p = trio();
        let w = |mem| pig(wio(9, mem, 0, 4096), &[43, 44]);
        submit(&mut p, &wio(9, 0, 0, 4096));
        p.on_io_done(&wio(9, 0, 0, 4096), true);
        // Unwitnessed, then a flush is issued (it covers that write), then another
        // unwitnessed write before the flush completes: the chunk stays in `wi`, and the
        // witnesses (older than the flushed copy) must go.
        submit(&mut p, &w(1));
        p.on_io_done(&w(1), true);
        assert!(p.intent.is_witness(43, 9), "kept across an unwitnessed write");
        let f = wio(0, 2, IO_FLUSH, 0);
        submit(&mut p, &f);
        submit(&mut p, &w(3));
        assert!(!p.intent.is_witness(43, 9) && !p.intent.is_witness(44, 9));
        p.on_io_done(&w(3), true);
        p.on_io_done(&f, true);
        assert!(p.intent.durable(9));
        // Flush tracking full: a further flush clears nothing, so every witness goes.
        submit(&mut p, &wio(5, 4, 0, 4096));
        assert!(p.intent.is_witness(43, 5));
        for mem in 10..15 {
            submit(&mut p, &wio(0, mem, IO_FLUSH, 0));
        }
        assert!(!p.intent.is_witness(43, 5));
    }

    #[test]
    fn write_through_over_unflushed_witnessed_data_preflushes() {
        use super::super::wire::IO_FUA;
        let mut p = trio();
        submit(&mut p, &wio(8, 0, 0, 4096));
        p.on_io_done(&wio(8, 0, 0, 4096), true);
        assert!(p.intent.is_witness(43, 8));
        // 43 and 44 now look dirty (say a refused MAP_CLEAR): a client FUA write to part of the
        // chunk resets the witnesses, so the earlier unflushed write must become durable too.
        for m in [43, 44] {
            p.maps.get_mut(m).unwrap().set(8, 0).unwrap();
        }
        // The round that persists the reset flushes the device before it (and the write
        // waits for that round): a flush on the write itself would come after the reset.
        let _ = p.md_begin();
        let d = p.on_io(&wio(8, 1, IO_FUA, 512), 0);
        assert_eq!(d, IoDecision::Submit, "the client's own FUA, nothing added");
        assert!(!p.intent.is_witness(43, 8));
        assert!(p.md_need().is_some(), "the write waits for a round");
        assert!(p.md_begin().preflush, "which flushes first");
        // Without witnesses there is nothing to protect: plain promotion.
        let d = p.on_io(&wio(8, 2, 0, 512), 0);
        assert_eq!(d, IoDecision::SubmitFua);
        // A member created again under the same id has no past witness or loss.
        submit(&mut p, &wio(3, 3, 0, 4096));
        p.lost.ensure(44, p.total_chunks()).unwrap().set(3, 0).unwrap();
        assert!(p.intent.is_witness(44, 3));
        assert_eq!(cmd(&mut p, Cmd::PoolInfo { member_id: 44, op: InfoOp::AddCreate, dirty: true }), 0);
        assert!(!p.intent.is_witness(44, 3) && p.lost.get(44).is_none());
    }

    #[test]
    fn suspect_takes_a_chunk_back_from_witnesses_that_lost_it() {
        let mut p = suspect_all_dirty(4);
        let mut buf = [0u8; PIECE_BYTES];
        p.handle_cmd(&Cmd::SuspectToMap, false, 0, &mut buf);
        assert_eq!(bits(p.maps.get(42)), [4], "handed over");
        // The hand-over did not reach the next maps (an update failed after it): 43 and 44
        // look dirty again, with no known loss. Hand over again.
        for m in [43, 44] {
            p.maps.get_mut(m).unwrap().set(4, 0).unwrap();
        }
        let (r, _) = p.handle_cmd(&Cmd::SuspectToMap, false, 0, &mut buf);
        assert_eq!(r.body, RspBody::Bool(true));
        assert_eq!(bits(p.maps.get(43)), [0u64; 0]);
        assert_eq!(bits(p.maps.get(42)), [4]);
        // Both witnesses turn out to have lost it as well (they marked themselves again, and
        // their loss travels in the lost maps): take it back.
        let total = p.total_chunks();
        for m in [43, 44] {
            p.maps.get_mut(m).unwrap().set(4, 0).unwrap();
            p.lost.ensure(m, total).unwrap().set(4, 0).unwrap();
        }
        let (r, _) = p.handle_cmd(&Cmd::SuspectToMap, false, 0, &mut buf);
        assert_eq!(r.body, RspBody::Bool(true));
        assert_eq!(bits(p.maps.get(42)), [0u64; 0], "taken back: the best copy there is");
        assert!(!p.intent.is_witness(43, 4), "and not handed over again");
        let (r, _) = p.handle_cmd(&Cmd::SuspectToMap, false, 0, &mut buf);
        assert_eq!(r.body, RspBody::Bool(false));
    }

    #[test]
    fn last_io_skips_suspects() {
        let mut p = pool();
        cmd(&mut p, Cmd::PoolInfo { member_id: 43, op: InfoOp::AddCreate, dirty: false });
        p.last_io[0] = 5;
        p.last_io[1] = 6;
        p.restore_suspect(5).unwrap();
        assert_eq!(cmd(&mut p, Cmd::LastIoToMap), 0);
        assert!(p.maps.get(42).unwrap().test(5), "a suspect is dirty here");
        assert!(!p.maps.get(43).unwrap().test(5), "and not pushed onto the others");
        assert!(p.maps.get(43).unwrap().test(6));
    }
}
