// SPDX-License-Identifier: GPL-2.0-or-later
//! Server pool (SPEC §4.3, §5.3, §6.1-§6.8): state, join acceptance, dirty maps, the IO
//! decision with wait lists, `last_io`, the command handler, the map-clear worker rule and the
//! sync scheduler.

use super::consts::{RMR_MAP_VER_MASK, RMR_MAX_QUEUE_DEPTH, RMR_POOL_MAX_SESS, RMR_PROTO_VERSION};
use super::dirtymap::{DirtyMap, MapSet, MapStorage, PAGE_BITS};
use super::error::{Error, Result};
use super::wire::{
    Cmd, CmdRsp, InfoOp, IoMsg, MemberList, Piece, PoolMd, RspBody, SrvMd, IO_FLUSH, IO_FUA, LOST_PIECE,
    IO_SYNC, PIECE_BYTES,
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
    /// [improvement] Submit the write with FUA added, and with a preflush too if `preflush`
    /// (the shell adds the flags to the IO it passes back to `on_io_done`): see
    /// [`ServerPool::must_persist`] and [`ServerPool::on_io`].
    SubmitFua {
        /// Also flush the store's cache before the data (PREFLUSH).
        preflush: bool,
    },
    /// Parked behind a sync of this chunk already running.
    Park,
    /// Parked; start an on-demand sync of the chunk (read it from a peer first).
    SyncFirst,
    /// Reply with this error.
    Reject(Error),
}

const NONE: u16 = u16::MAX;
/// Sync entries: sync thread requests plus on-demand syncs, each bounded by the queue depth.
pub const SYNC_ENTRIES: usize = 2 * RMR_MAX_QUEUE_DEPTH;

#[derive(Clone, Copy, Debug)]
struct SyncEntry {
    chunk: u64,
    epoch: u64,
    used: bool,
    head: u16,
    tail: u16,
}

/// Chunks being synced (`rmr_map_entry`) with FIFO wait lists of parked IO units (`mem_id`).
pub struct SyncTable {
    entries: [SyncEntry; SYNC_ENTRIES],
    next: [u16; RMR_MAX_QUEUE_DEPTH],
    active: usize,
}

impl Default for SyncTable {
    fn default() -> Self {
        Self::new()
    }
}

impl SyncTable {
    /// Empty table.
    pub const fn new() -> Self {
        SyncTable {
            entries: [SyncEntry { chunk: 0, epoch: 0, used: false, head: NONE, tail: NONE }; SYNC_ENTRIES],
            next: [NONE; RMR_MAX_QUEUE_DEPTH],
            active: 0,
        }
    }
    fn find(&self, chunk: u64) -> Option<usize> {
        if self.active == 0 {
            return None;
        }
        self.entries.iter().position(|e| e.used && e.chunk == chunk)
    }
    /// Whether `chunk` is being synced.
    pub fn syncing(&self, chunk: u64) -> bool {
        self.find(chunk).is_some()
    }
    /// The chunks being synced.
    pub fn chunks(&self) -> impl Iterator<Item = u64> + '_ {
        self.entries.iter().filter(|e| e.used).map(|e| e.chunk)
    }
    /// Number of chunks being synced.
    pub fn active(&self) -> usize {
        self.active
    }
    /// Lock `chunk` for a sync started in NORMAL period `epoch`. -EBUSY if already syncing,
    /// -ENOSPC if full.
    pub fn start(&mut self, chunk: u64, epoch: u64) -> Result<()> {
        if self.syncing(chunk) {
            return Err(Error::Busy);
        }
        let e = self.entries.iter_mut().find(|e| !e.used).ok_or(Error::NoSpc)?;
        *e = SyncEntry { chunk, epoch, used: true, head: NONE, tail: NONE };
        self.active += 1;
        Ok(())
    }
    /// Park IO unit `mem_id` on `chunk`'s wait list.
    pub fn park(&mut self, chunk: u64, mem_id: u16) -> Result<()> {
        let i = self.find(chunk).ok_or(Error::NoEnt)?;
        *self.next.get_mut(usize::from(mem_id)).ok_or(Error::Range)? = NONE;
        let e = self.entries.get_mut(i).ok_or(Error::NoEnt)?;
        let old_tail = e.tail;
        e.tail = mem_id;
        if old_tail == NONE {
            e.head = mem_id;
        } else if let Some(n) = self.next.get_mut(usize::from(old_tail)) {
            *n = mem_id;
        }
        Ok(())
    }
    /// The NORMAL period in which the sync of `chunk` started.
    pub fn epoch_of(&self, chunk: u64) -> Option<u64> {
        self.find(chunk).and_then(|i| self.entries.get(i)).map(|e| e.epoch)
    }
    /// Unlock `chunk`; writes its waiters in order into `out`, returns how many.
    pub fn finish(&mut self, chunk: u64, out: &mut [u16]) -> usize {
        let Some(i) = self.find(chunk) else {
            return 0;
        };
        let mut n = 0;
        if let Some(e) = self.entries.get_mut(i) {
            let mut cur = e.head;
            while cur != NONE {
                if let Some(o) = out.get_mut(n) {
                    *o = cur;
                    n += 1;
                }
                cur = self.next.get(usize::from(cur)).copied().unwrap_or(NONE);
            }
            e.used = false;
        }
        self.active = self.active.saturating_sub(1);
        n
    }
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

/// Flushes tracked at once by the write-intent record; a flush issued while this many are in
/// flight clears nothing (the record stays conservative).
pub const INTENT_FLUSHES: usize = 4;

/// [improvement] The write-intent record: what a power loss may have taken from this node.
///
/// A disk with a volatile write cache may lose any plain write it completed since the last
/// flush that covered it, and upstream RMR has no record of those: a node that comes back from
/// a power loss serves stale chunks with a clean own map while a peer holds the acknowledged
/// data. Like md's write-intent bitmap, `wi` names every chunk with a plain (not FUA) client or
/// sync write not yet covered by a completed flush. The shell makes a newly set bit durable
/// before it submits the write ([`IntentRecord::persists`] counts them); cleared bits may be
/// persisted lazily. At a restart the durable record becomes `suspect` (the shell passes it to
/// [`ServerPool::restore_suspect`]), and the control path turns suspects into own-map bits
/// ([`ServerPool::resolve_suspects`]) before the node serves again.
///
/// Flush tracking: writes fall into epochs separated by flush submissions. A chunk lives in the
/// epoch of its last write (a rewrite moves it to the current one; a write still in flight when
/// a flush is issued stays in the current one). A flush that completes covers its own epoch and
/// every older one: their chunks leave `wi`.
pub struct IntentRecord<S: MapStorage> {
    /// The store has a volatile write cache (the default). A store without one (write-through,
    /// or a cache with power-loss protection: Linux's `write_cache` = "write through") loses
    /// no completed write, keeps no record and never has suspects.
    pub volatile_cache: bool,
    /// Durable: chunks written and not yet covered by a completed flush.
    pub wi: Option<DirtyMap<S>>,
    /// Durable: chunks of the record found at restart, until the pool is NORMAL again.
    pub suspect: Option<DirtyMap<S>>,
    /// Chunks last written in the current epoch.
    cur: Option<DirtyMap<S>>,
    /// Closed epochs, oldest first, each waiting for the flush (`mem_id`) that closed it;
    /// `None` = that flush failed (a later one covers the epoch).
    closed: [Option<DirtyMap<S>>; INTENT_FLUSHES],
    closed_by: [Option<u16>; INTENT_FLUSHES],
    nclosed: usize,
    /// Chunk of the write in flight per `mem_id` (`u64::MAX` = none).
    inflight: [u64; RMR_MAX_QUEUE_DEPTH],
    /// [improvement] Durable with `wi`: per member, the chunks whose last witnessed unflushed
    /// write found that member clean in this node's map (it received the same data). Suspect
    /// resolution hands a chunk this node may have lost to its witnesses when conservative
    /// marks make every other member look dirty there.
    pub witness: MapSet<S>,
    /// [improvement] Durable: chunks this node's suspect resolution marked dirty in its own
    /// map (it may have lost them), until a sync cleans them. Installed maps that show such a
    /// chunk clean (a peer handed it over) get the own bit back.
    pub lost: Option<DirtyMap<S>>,
    /// Bits newly set in `wi` or changed in `witness` (each made durable before its write was
    /// submitted).
    pub persists: u64,
    /// Bits cleared from `wi` by completed flushes.
    pub cleared: u64,
}

impl<S: MapStorage + Default> IntentRecord<S> {
    /// Empty record.
    pub const fn new() -> Self {
        IntentRecord {
            volatile_cache: true,
            wi: None,
            suspect: None,
            cur: None,
            closed: [None, None, None, None],
            closed_by: [None; INTENT_FLUSHES],
            nclosed: 0,
            inflight: [u64::MAX; RMR_MAX_QUEUE_DEPTH],
            witness: MapSet::new(),
            lost: None,
            persists: 0,
            cleared: 0,
        }
    }

    fn map(m: &mut Option<DirtyMap<S>>, total: u64) -> Result<&mut DirtyMap<S>> {
        if m.as_ref().is_some_and(|x| x.total() != total) {
            if let Some(x) = m.as_mut() {
                x.clear_all();
            }
            *m = None;
        }
        if m.is_none() {
            // The member id of these maps is never used; DirtyMap wants a non-zero one.
            *m = Some(DirtyMap::new(u32::MAX, total, S::default())?);
        }
        m.as_mut().ok_or(Error::NoMem)
    }

    /// Whether `chunk` is in the durable record (`wi` or `suspect`).
    pub fn durable(&self, chunk: u64) -> bool {
        self.wi.as_ref().is_some_and(|m| m.test(chunk)) || self.suspect.as_ref().is_some_and(|m| m.test(chunk))
    }

    /// A flush is issued with IO unit `mem_id`: close the current epoch (chunks with a write
    /// still in flight, client or sync (`syncing`), move on to the new one).
    fn flush_issued(&mut self, mem_id: u16, total: u64, syncing: impl Iterator<Item = u64>) -> Result<()> {
        if !self.volatile_cache {
            return Ok(());
        }
        if self.nclosed >= INTENT_FLUSHES {
            // Untracked: it may make writes durable that the record cannot tell from later
            // ones, so witnesses kept across an unwitnessed write could be older than this
            // node's copy. Forget them all (suspects then keep their copy).
            if self.witness.iter().any(|w| !w.is_empty()) {
                self.witness.remove_all();
                self.persists += 1;
            }
            return Ok(());
        }
        Self::map(&mut self.cur, total)?;
        let fresh = DirtyMap::new(u32::MAX, total, S::default())?;
        let n = self.nclosed;
        let (Some(slot), Some(by)) = (self.closed.get_mut(n), self.closed_by.get_mut(n)) else {
            return Ok(());
        };
        *slot = self.cur.replace(fresh);
        *by = Some(mem_id);
        self.nclosed = n + 1;
        let (Some(old), Some(cur)) = (slot.as_mut(), self.cur.as_mut()) else {
            return Err(Error::NoMem);
        };
        for c in self.inflight.iter().copied().filter(|c| *c != u64::MAX).chain(syncing) {
            if old.clear(c) {
                cur.set(c, 0)?;
            }
        }
        Ok(())
    }

    /// The flush sent with `mem_id` completed: on success its epoch and all older ones are
    /// durable.
    fn flush_done(&mut self, mem_id: u16, ok: bool) {
        let Some(j) = (0..self.nclosed).find(|j| self.closed_by.get(*j).copied().flatten() == Some(mem_id)) else {
            return;
        };
        if !ok {
            if let Some(b) = self.closed_by.get_mut(j) {
                *b = None;
            }
            return;
        }
        for e in self.closed.iter_mut().take(j + 1) {
            if let Some(m) = e.as_mut() {
                for c in m.iter() {
                    if self.wi.as_mut().is_some_and(|w| w.clear(c)) {
                        self.cleared += 1;
                    }
                }
                m.clear_all();
            }
            *e = None;
        }
        let n = self.nclosed;
        for k in (j + 1)..n {
            self.closed.swap(k - (j + 1), k);
            self.closed_by.swap(k - (j + 1), k);
        }
        for k in (n - (j + 1))..n {
            if let Some(b) = self.closed_by.get_mut(k) {
                *b = None;
            }
        }
        self.nclosed = n - (j + 1);
    }

    /// A plain write of `chunk` is about to be submitted: record it. Returns whether the bit
    /// is new in `wi` (the shell persists it before submitting).
    fn write(&mut self, chunk: u64, total: u64) -> Result<bool> {
        if !self.volatile_cache {
            return Ok(false);
        }
        Self::map(&mut self.cur, total)?.set(chunk, 0)?;
        for m in self.closed.iter_mut().take(self.nclosed).flatten() {
            m.clear(chunk);
        }
        let new = Self::map(&mut self.wi, total)?.set(chunk, 0)?;
        if new {
            self.persists += 1;
        }
        Ok(new)
    }

    /// Forget everything (the store is gone or a fresh store starts).
    fn reset(&mut self) {
        for m in [&mut self.wi, &mut self.suspect, &mut self.cur, &mut self.lost].into_iter().chain(self.closed.iter_mut()) {
            if let Some(x) = m.as_mut() {
                x.clear_all();
            }
            *m = None;
        }
        self.closed_by = [None; INTENT_FLUSHES];
        self.nclosed = 0;
        self.inflight = [u64::MAX; RMR_MAX_QUEUE_DEPTH];
        self.witness.remove_all();
    }

    /// A data write of `chunk` found `clean` (the other members clean there in this node's
    /// map): they become its witnesses. A recorded write nobody else witnessed, while the chunk
    /// is in `wi` already, keeps the witnesses of the last unflushed write somebody did: if
    /// this node loses its unflushed writes there, theirs is the newest surviving copy. A
    /// written-through (FUA) write, or the first write after a flush covered the chunk
    /// (`reset`), sets exactly `clean`.
    fn witnessed(&mut self, chunk: u64, total: u64, clean: &MemberList, reset: bool) -> Result<()> {
        if !self.volatile_cache || (clean.is_empty() && !reset) {
            return Ok(());
        }
        let mut changed = false;
        for m in self.witness.iter_mut() {
            if !clean.contains(m.member_id()) && m.test(chunk) {
                m.clear(chunk);
                changed = true;
            }
        }
        for m in clean.iter() {
            changed |= self.witness.ensure(m, total)?.set(chunk, 0)?;
        }
        if changed {
            self.persists += 1;
        }
        Ok(())
    }

    /// Whether a flush issued after the last write of `chunk` is still in flight.
    fn in_closed_epoch(&self, chunk: u64) -> bool {
        self.closed.iter().take(self.nclosed).flatten().any(|m| m.test(chunk))
    }

    /// Whether `member` witnessed the last recorded write of `chunk`.
    pub fn is_witness(&self, member: u32, chunk: u64) -> bool {
        self.witness.get(member).is_some_and(|m| m.test(chunk))
    }
}

impl<S: MapStorage + Default> Default for IntentRecord<S> {
    fn default() -> Self {
        Self::new()
    }
}

/// Turn suspect chunks into own-map bits in `maps` (see [`ServerPool::resolve_suspects`]).
/// Returns whether the own map changed.
fn resolve_into<S: MapStorage + Default>(
    maps: &mut MapSet<S>,
    lost_maps: &mut MapSet<S>,
    rec: &mut IntentRecord<S>,
    own: u32,
    pool_members: MemberList,
    total: u64,
    now: u64,
) -> Result<bool> {
    let IntentRecord { suspect, witness, lost, .. } = rec;
    let Some(suspect) = suspect.as_ref() else {
        return Ok(false);
    };
    let mut members = pool_members;
    for m in maps.members().iter() {
        let _ = members.push(m);
    }
    let mut changed = false;
    // What this node lost earlier stays dirty for it, whatever the maps it resolves against
    // say (a peer may have handed such a chunk over before it learnt of the loss).
    if let Some(l) = lost.as_ref().filter(|l| !l.is_empty()) {
        let m = maps.ensure(own, total)?;
        let ml = lost_maps.ensure(own, total)?;
        for c in l.iter().filter(|c| *c < total) {
            changed |= m.set(c, now)?;
            ml.set(c, 0)?;
        }
    }
    for c in suspect.iter().filter(|c| *c < total) {
        let own_dirty = maps.get(own).is_some_and(|m| m.test(c));
        let other_clean = members.iter().filter(|m| *m != own).any(|m| !maps.get(m).is_some_and(|x| x.test(c)));
        if own_dirty {
            // Take back: this node gave the chunk up (below) and every other member is dirty
            // there now. If its witnesses lost it too (they marked themselves again, and
            // their loss is in the lost maps) its copy is the best the pool has after all; the
            // witnesses are forgotten, so it is not handed over again.
            if !other_clean && lost.as_ref().is_some_and(|l| l.test(c)) {
                // A witness not known to have lost it: the hand-over did not reach the maps
                // resolved against now (an update failed after it). Hand over again.
                if hand_over(maps, witness, lost_maps, pool_members, own, c) {
                    changed = true;
                    continue;
                }
                if let Some(m) = maps.get_mut(own) {
                    m.clear(c);
                }
                if let Some(l) = lost.as_mut() {
                    l.clear(c);
                }
                if let Some(l) = lost_maps.get_mut(own) {
                    l.clear(c);
                }
                for w in witness.iter_mut() {
                    w.clear(c);
                }
                changed = true;
            }
            continue;
        }
        if !other_clean {
            // Every other member looks dirty. The witnesses of this node's last witnessed
            // unflushed write there received the same data and were not reported failing it
            // since (a write failure's MAP_ADD removes the witness); no acknowledged write
            // reached the chunk after this node went down (it would be dirty there). So their
            // marks are conservative (a refused or lost MAP_CLEAR, a recovery MAP_ADD) unless
            // they lost the data themselves: those in their lost map are skipped, one whose
            // loss is not known here yet marks itself again when it installs these maps and
            // this node takes the chunk back (above). Without a witness this node's copy is
            // the best the pool has: keep it.
            if !hand_over(maps, witness, lost_maps, pool_members, own, c) {
                continue;
            }
        }
        maps.ensure(own, total)?.set(c, now)?;
        IntentRecord::map(lost, total)?.set(c, 0)?;
        lost_maps.ensure(own, total)?.set(c, 0)?;
        changed = true;
    }
    Ok(changed)
}

/// Clear `c` for every witness of it among `members` that is not in its lost map (the chunk
/// is handed to them); whether there was one.
fn hand_over<S: MapStorage + Default>(
    maps: &mut MapSet<S>,
    witness: &MapSet<S>,
    lost_maps: &MapSet<S>,
    members: MemberList,
    own: u32,
    c: u64,
) -> bool {
    let mut any = false;
    for m in members.iter().filter(|m| *m != own) {
        if witness.get(m).is_some_and(|w| w.test(c)) && !lost_maps.get(m).is_some_and(|l| l.test(c)) {
            if let Some(x) = maps.get_mut(m) {
                x.clear(c);
            }
            any = true;
        }
    }
    any
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
    /// `last_io`: chunk of the last successful write per `mem_id` (`u64::MAX` = empty).
    pub last_io: [u64; RMR_MAX_QUEUE_DEPTH],
    /// Chunks being synced with their waiters.
    pub sync: SyncTable,
    /// Teeth hook: last-IO without the skip rule.
    pub bug_last_io_no_skip: bool,
    /// Incremented whenever the pool leaves NORMAL: a sync started in an earlier NORMAL period
    /// must fail even if the pool is NORMAL again when it completes.
    pub epoch: u64,
    /// [improvement] Write-intent record (power-loss protection).
    pub intent: IntentRecord<S>,
    /// [improvement] Per member: chunks it may have lost in a power loss (its suspect
    /// resolution marked them dirty for it) and has not synced since. Travels with the maps
    /// (MAP_SEND pieces with [`LOST_PIECE`]); such a member is never handed a chunk.
    pub lost: MapSet<S>,
    staging_lost: MapSet<S>,
}


impl<S: MapStorage + Default> ServerPool<S> {
    /// A blank EMPTY pool (member 0, blank `pool_md`) as a constant. The struct is large
    /// (`last_io`, sync table: about 30 KiB), too large for a kernel stack: a kernel copies this
    /// value straight into heap memory, then sets `member_id` and `md` (what [`Self::new`]
    /// does by value).
    pub const BLANK: Self = ServerPool {
        state: SrvState::Empty,
        marked_create: false,
        maintenance: false,
        member_id: 0,
        md: PoolMd::BLANK,
        store: false,
        io_allowed: false,
        sessions: 0,
        sync_sessions: 0,
        maps: MapSet::new(),
        staging: None,
        last_io: [u64::MAX; RMR_MAX_QUEUE_DEPTH],
        sync: SyncTable::new(),
        bug_last_io_no_skip: false,
        epoch: 0,
        intent: IntentRecord::new(),
        lost: MapSet::new(),
        staging_lost: MapSet::new(),
    };

    /// `join_pool`: a server pool in EMPTY. `md` carries name/group_id; sizes come later.
    pub fn new(member_id: u32, md: PoolMd) -> Result<Self> {
        if member_id == 0 {
            return Err(Error::Inval);
        }
        Ok(ServerPool { member_id, md, ..Self::BLANK })
    }

    /// Number of chunks of the device.
    pub fn total_chunks(&self) -> u64 {
        let bytes = self.md.mapped_size.saturating_mul(512);
        bytes.div_ceil(u64::from(self.md.chunk_size.max(1)))
    }

    fn set_state(&mut self, to: SrvState, fx: &mut SrvEffects) {
        if self.state != to {
            if self.state == SrvState::Normal {
                fx.stop_sync = true;
                self.epoch = self.epoch.wrapping_add(1);
            }
            if to == SrvState::Normal {
                self.last_io = [u64::MAX; RMR_MAX_QUEUE_DEPTH];
                // Suspects are resolved by the control path before a node serves (SUSPECT_TO_MAP,
                // LAST_IO_TO_MAP); resolving again here is a no-op then and a safety net else.
                // They are dropped only once resolved: a failure keeps them for the next try.
                if self.resolve_suspects(0).is_ok() {
                    if let Some(m) = self.intent.suspect.as_mut() {
                        m.clear_all();
                    }
                }
                fx.persist_md = true;
            }
            self.state = to;
            fx.state_changed = true;
        }
    }

    /// Register a store. ADD passes the `pool_md` and `last_io` read from disk (the caller
    /// restores maps into `self.maps` before or after). -EBUSY unless EMPTY (or NO_IO without a
    /// store, §4.3 last row).
    pub fn register(&mut self, mode: RegMode, disk_md: Option<PoolMd>) -> Result<SrvEffects> {
        let mut fx = SrvEffects::default();
        let no_io_storeless = self.state == SrvState::NoIo && !self.store;
        if self.state != SrvState::Empty && !no_io_storeless {
            return Err(Error::Busy);
        }
        match mode {
            RegMode::Create => {
                if no_io_storeless {
                    return Err(Error::Busy);
                }
                self.maps.remove_all();
                self.lost.remove_all();
                // A fresh store starts a fresh membership: members of an earlier store of this
                // pool (deleted with delete_store) must not survive into the new pool_md.
                self.md.srv_md = [SrvMd::default(); RMR_POOL_MAX_SESS];
                self.md.add_member(self.member_id)?;
                self.md.map_ver = 0;
                self.marked_create = true;
                self.last_io = [u64::MAX; RMR_MAX_QUEUE_DEPTH];
                self.intent.reset();
            }
            RegMode::Add => {
                let md = disk_md.ok_or(Error::Inval)?;
                if md.name != self.md.name {
                    return Err(Error::Inval);
                }
                // The durable record comes back through restore_suspect.
                self.intent.reset();
                self.md = md;
                self.marked_create = false;
                let total = self.total_chunks();
                for m in self.md.members().iter() {
                    self.maps.ensure(m, total)?;
                }
            }
            RegMode::Replace => return Err(Error::NotSupp),
        }
        self.store = true;
        self.io_allowed = true;
        if !no_io_storeless {
            self.set_state(SrvState::Registered, &mut fx);
        }
        fx.persist_md = true;
        Ok(fx)
    }

    /// `rmr_srv_register` as a kernel calls it: like [`Self::register`], with the store's
    /// exported size. CREATE adopts `mapped_size` (the pool has no size before its first store);
    /// ADD takes the size from the on-disk `pool_md`, which must agree (-EINVAL otherwise).
    pub fn register_store(
        &mut self,
        mode: RegMode,
        disk_md: Option<PoolMd>,
        mapped_size: u64,
    ) -> Result<SrvEffects> {
        if mapped_size == 0 {
            return Err(Error::Inval);
        }
        if mode == RegMode::Add && disk_md.is_some_and(|m| m.mapped_size != mapped_size) {
            return Err(Error::Inval);
        }
        let old = self.md.mapped_size;
        if mode == RegMode::Create {
            self.md.mapped_size = mapped_size;
        }
        let r = self.register(mode, disk_md);
        if r.is_err() {
            self.md.mapped_size = old;
        }
        r
    }

    /// Unregister the store (`remove_store` / `delete_store`).
    pub fn unregister(&mut self) -> SrvEffects {
        let mut fx = SrvEffects::default();
        self.store = false;
        self.io_allowed = false;
        let to = match self.state {
            SrvState::Registered => SrvState::Empty,
            SrvState::Created | SrvState::Normal => SrvState::NoIo,
            s => s,
        };
        self.set_state(to, &mut fx);
        fx
    }

    /// Backend IO error or link loss of a non-sync session: NORMAL → NO_IO.
    pub fn on_fault(&mut self) -> SrvEffects {
        let mut fx = SrvEffects::default();
        if self.state == SrvState::Normal {
            self.set_state(SrvState::NoIo, &mut fx);
        }
        fx
    }

    /// A session went away (link lost or LEAVE_POOL). `sync` = sync session.
    pub fn on_session_gone(&mut self, sync: bool) -> SrvEffects {
        let mut fx = SrvEffects::default();
        if sync {
            self.sync_sessions = self.sync_sessions.saturating_sub(1);
            return fx;
        }
        self.sessions = self.sessions.saturating_sub(1);
        if self.state == SrvState::Normal {
            self.set_state(SrvState::NoIo, &mut fx);
        }
        if self.sessions == 0 && matches!(self.state, SrvState::Created | SrvState::Normal | SrvState::NoIo) {
            let to = if self.store { SrvState::Registered } else { SrvState::Empty };
            self.marked_create = false;
            self.set_state(to, &mut fx);
        }
        fx
    }

    /// Whether non-sync IO is served now.
    pub fn serving(&self) -> bool {
        self.state == SrvState::Normal && self.io_allowed
    }

    /// The IO decision (§5.3 steps 1-5, 7). For writes the piggybacked members are marked in
    /// their peer maps first. Parks `mem_id` where needed.
    pub fn on_io(&mut self, io: &IoMsg, now: u64) -> IoDecision {
        let chunk = io.id.b;
        let total = self.total_chunks();
        // [choice] A peer's sync read needs NORMAL and a registered store, not MAPPED: the
        // admin guide syncs a new node (SPEC §12.1 step 15) before the device is first mapped
        // (step 16), when no store is MAPPED yet.
        let sync_read = io.flags & IO_SYNC != 0;
        let allowed = if sync_read { self.state == SrvState::Normal && self.store } else { self.serving() };
        if !allowed {
            return IoDecision::Reject(Error::Io);
        }
        if chunk >= total || !self.io_in_bounds(io) {
            return IoDecision::Reject(Error::Inval);
        }
        let own_dirty = self.maps.get(self.member_id).is_some_and(|m| m.test(chunk));
        if io.flags & IO_SYNC != 0 {
            return if own_dirty || self.sync.syncing(chunk) {
                IoDecision::Reject(Error::Again)
            } else {
                IoDecision::Submit
            };
        }
        if io.is_write() && map_ver_gt(io.map_ver, self.md.map_ver) {
            self.md.map_ver = io.map_ver;
        }
        if !own_dirty {
            // [improvement] Piggybacked members are marked when the write is actually
            // submitted (still before the ack): a write parked behind a sync that then fails
            // must not leave a chunk dirty for every member, which no sync could ever clean.
            if io.is_write() {
                for m in io.members.iter().filter(|m| *m != self.member_id) {
                    if let Err(e) = self.maps.ensure(m, total).and_then(|map| map.set(chunk, now)) {
                        return IoDecision::Reject(e);
                    }
                }
                if !self.intent.volatile_cache {
                    return IoDecision::Submit;
                }
                // The other members clean here (the piggybacked ones are marked by now).
                let clean = self.clean_others(chunk);
                let promote = self.must_persist(io, &clean);
                // [improvement] A written-through write resets the chunk's witnesses. If the
                // chunk still has unflushed data here that witnesses hold, a preflush makes
                // that data durable first (a write may cover only part of the chunk).
                let through = promote || io.flags & IO_FUA != 0;
                let preflush = through
                    && io.flags & IO_FLUSH == 0
                    && io.len > 0
                    && clean.is_empty()
                    && self.intent.wi.as_ref().is_some_and(|m| m.test(chunk))
                    && self.intent.witness.iter().any(|w| w.test(chunk));
                let flags = if preflush { io.flags | IO_FLUSH } else { io.flags };
                if let Err(e) = self.intent_submit(io, flags, promote, &clean) {
                    return IoDecision::Reject(e);
                }
                if promote || preflush {
                    return IoDecision::SubmitFua { preflush };
                }
            }
            return IoDecision::Submit;
        }
        if self.sync.syncing(chunk) {
            return match self.sync.park(chunk, io.mem_id) {
                Ok(()) => IoDecision::Park,
                Err(e) => IoDecision::Reject(e),
            };
        }
        match self.sync.start(chunk, self.epoch).and_then(|()| self.sync.park(chunk, io.mem_id)) {
            Ok(()) => IoDecision::SyncFirst,
            Err(e) => IoDecision::Reject(e),
        }
    }

    /// Whether `io` stays inside its chunk and inside the exported device (a server never
    /// touches sectors beyond `mapped_size`).
    pub fn io_in_bounds(&self, io: &IoMsg) -> bool {
        let cs = u64::from(self.md.chunk_size);
        let end_in_chunk = u64::from(io.offset) + u64::from(io.len);
        let dev_bytes = self.md.mapped_size.saturating_mul(512);
        cs != 0
            && end_in_chunk <= cs
            && io.id.b.checked_mul(cs).and_then(|o| o.checked_add(end_in_chunk)).is_some_and(|e| e <= dev_bytes)
    }

    /// Byte offset of `io` in the exported device (valid after [`Self::io_in_bounds`]).
    pub fn io_byte_offset(&self, io: &IoMsg) -> u64 {
        io.id.b.saturating_mul(u64::from(self.md.chunk_size)).saturating_add(u64::from(io.offset))
    }

    /// Backend completion of a non-sync IO (§5.3 step 6). A successful write records
    /// `last_io[mem_id]` (the shell persists that slot before replying); an error → NO_IO.
    pub fn on_io_done(&mut self, io: &IoMsg, ok: bool) -> SrvEffects {
        if io.is_write() && io.flags & IO_SYNC == 0 {
            if let Some(s) = self.intent.inflight.get_mut(usize::from(io.mem_id)) {
                *s = u64::MAX;
            }
            if io.flags & IO_FLUSH != 0 {
                self.intent.flush_done(io.mem_id, ok);
            }
        }
        if ok {
            if io.is_write() && io.flags & IO_SYNC == 0 {
                if let Some(s) = self.last_io.get_mut(usize::from(io.mem_id)) {
                    *s = io.id.b;
                }
            }
            SrvEffects::default()
        } else {
            self.io_allowed = false;
            self.on_fault()
        }
    }

    /// A sync job of `chunk` ended (§5.3 step 4, §7); `read_errno` is 0 when the chunk was
    /// read from a peer and written here, else the failure (negative errno). Clears the bit
    /// when that is still safe ([`ServerPool::on_sync_done`]) and says what to do with the
    /// parked IOs and whom to tell.
    pub fn finish_sync(&mut self, chunk: u64, read_errno: i32, waiters: &mut [u16]) -> SyncDone {
        let (n, cleared) = self.on_sync_done(chunk, read_errno == 0, waiters);
        let waiter_errno = if read_errno < 0 { read_errno } else { Error::Io.errno() };
        let map_clear =
            cleared.then_some(Cmd::MapClear { member_id: self.member_id, chunk, map_ver: self.md.map_ver });
        SyncDone { waiters: n, cleared, waiter_errno, map_clear }
    }

    /// The members a MAP_CLEAR after a sync goes to: every peer in `peers` (the members behind
    /// the sync pool's NORMAL legs) but this node.
    pub fn map_clear_peers(&self, peers: &MemberList) -> MemberList {
        let mut out = MemberList::new();
        for m in peers.iter().filter(|m| *m != self.member_id) {
            let _ = out.push(m);
        }
        out
    }

    /// A sync of `chunk` finished (data written locally on success). The own bit is cleared
    /// only if the pool is still NORMAL (leaving NORMAL fails outstanding syncs, §7). Returns
    /// (waiters written to `waiters`, cleared). Shells call [`ServerPool::finish_sync`].
    fn on_sync_done(&mut self, chunk: u64, ok: bool, waiters: &mut [u16]) -> (usize, bool) {
        // [sim] Also fail a sync that started before the pool last left NORMAL: its data may
        // predate writes that piggybacked this node meanwhile (seed 199911).
        let ok = ok && self.state == SrvState::Normal && self.sync.epoch_of(chunk) == Some(self.epoch);
        if ok {
            if let Some(m) = self.maps.get_mut(self.member_id) {
                m.clear(chunk);
            }
            if let Some(l) = self.intent.lost.as_mut() {
                l.clear(chunk);
            }
            if let Some(l) = self.lost.get_mut(self.member_id) {
                l.clear(chunk);
            }
        }
        let n = self.sync.finish(chunk, waiters);
        if !ok && n > 0 {
            // [improvement] The waiters get an error reply, which the client treats as a leg
            // failure: stop claiming complete maps (and serving peers) until a map update.
            let _ = self.on_fault();
        }
        (n, ok)
    }

    /// [improvement] Whether a plain (non-FUA) client write must be made durable here before
    /// it is acknowledged, on a store with a volatile cache: another member receives the write
    /// too (it is not piggybacked), yet this node's map has every such member dirty at the
    /// chunk. Such a mark may be conservative (a MAP_CLEAR lost or refused for its older
    /// `map_ver`), so the peer may really hold the write; but after a power loss here nothing
    /// could show that, and suspect resolution would keep this node's older copy. Writing it
    /// through closes that. Called after the piggybacked members are marked.
    /// `clean`: the other members clean at the chunk here, after the piggybacked members were
    /// marked (so every clean member is a receiver).
    pub fn must_persist(&self, io: &IoMsg, clean: &MemberList) -> bool {
        if !self.intent.volatile_cache || io.flags & (IO_FUA | IO_SYNC) != 0 || !io.is_write() || io.len == 0 {
            return false;
        }
        clean.is_empty() && self.md.members().iter().any(|m| m != self.member_id && !io.members.contains(m))
    }

    /// Record a client write about to be submitted in the write-intent record: a preflush
    /// starts tracking the chunks it covers, a plain data write sets its `wi` bit unless it is
    /// written through (`fua`: promoted by [`Self::must_persist`]).
    fn intent_submit(&mut self, io: &IoMsg, flags: u16, fua: bool, clean: &MemberList) -> Result<()> {
        let total = self.total_chunks();
        if flags & IO_FLUSH != 0 {
            self.intent.flush_issued(io.mem_id, total, self.sync.chunks())?;
        }
        if io.len > 0 || flags & IO_FLUSH == 0 {
            if let Some(s) = self.intent.inflight.get_mut(usize::from(io.mem_id)) {
                *s = io.id.b;
            }
            // Every data write of a recorded chunk renews its witnesses (an FUA write too: the
            // members clean here now hold everything acknowledged there, this one included).
            let record = flags & IO_FUA == 0 && !fua;
            let c = io.id.b;
            let in_wi = self.intent.wi.as_ref().is_some_and(|m| m.test(c));
            if record || in_wi {
                // Witnesses of an earlier write are kept across an unwitnessed one only while
                // no flush was issued since: a flush covering the unwitnessed write makes this
                // node's copy newer than theirs.
                let reset = !record || !in_wi || self.intent.in_closed_epoch(c);
                self.intent.witnessed(c, total, clean, reset)?;
            }
            if record {
                self.intent.write(c, total)?;
            }
        }
        Ok(())
    }

    /// [improvement] A sync write of `chunk` (a plain write of the synced data, §5.3 step 4) is
    /// about to be submitted: record it like a client write. Returns whether the `wi` bit is
    /// new (the shell persists it first). On error the shell fails the sync.
    pub fn sync_write_intent(&mut self, chunk: u64) -> Result<bool> {
        let total = self.total_chunks();
        if chunk >= total {
            return Err(Error::Range);
        }
        if !self.intent.volatile_cache {
            return Ok(false);
        }
        let clean = self.clean_others(chunk);
        let in_wi = self.intent.wi.as_ref().is_some_and(|m| m.test(chunk));
        let reset = !in_wi || self.intent.in_closed_epoch(chunk);
        self.intent.witnessed(chunk, total, &clean, reset)?;
        self.intent.write(chunk, total)
    }

    /// The other pool members whose map is clean at `chunk` here.
    fn clean_others(&self, chunk: u64) -> MemberList {
        let mut l = MemberList::new();
        for m in self.md.members().iter().filter(|m| *m != self.member_id) {
            if !self.maps.get(m).is_some_and(|x| x.test(chunk)) {
                let _ = l.push(m);
            }
        }
        l
    }

    /// A store ADD found `chunk` in the durable record of chunks this node lost.
    pub fn restore_lost(&mut self, chunk: u64) -> Result<()> {
        self.restore_bit(chunk, true)
    }

    /// Set `chunk` in the record's lost map (`lost`) or suspect map, from the durable record.
    fn restore_bit(&mut self, chunk: u64, lost: bool) -> Result<()> {
        let total = self.total_chunks();
        if chunk >= total {
            return Err(Error::Range);
        }
        if !self.intent.volatile_cache {
            return Ok(());
        }
        let m = if lost { &mut self.intent.lost } else { &mut self.intent.suspect };
        IntentRecord::map(m, total)?.set(chunk, 0)?;
        Ok(())
    }

    /// A store ADD found `member` recorded as a witness of `chunk` in the durable record.
    pub fn restore_witness(&mut self, member: u32, chunk: u64) -> Result<()> {
        let total = self.total_chunks();
        if chunk >= total || member == 0 || member == self.member_id {
            return Err(Error::Range);
        }
        if !self.intent.volatile_cache {
            return Ok(());
        }
        self.intent.witness.ensure(member, total)?.set(chunk, 0)?;
        Ok(())
    }

    /// A store ADD found `chunk` in the durable write-intent record: this node may have lost
    /// writes there (power loss). The chunk stays suspect until resolved and NORMAL.
    pub fn restore_suspect(&mut self, chunk: u64) -> Result<()> {
        self.restore_bit(chunk, false)
    }

    /// [improvement] Resolve the suspects (chunks this node may have lost in a power loss):
    /// each becomes dirty in the own map unless the own map has it already or every other
    /// member is dirty there (then this node's copy is the best the pool has; a write every
    /// holder lost unflushed may legitimately vanish). Works on the staged maps during a map
    /// update, else on the live maps. Returns whether the own map grew. Suspects stay until
    /// the pool enters NORMAL, so a failed attempt is resolved again by the next one.
    pub fn resolve_suspects(&mut self, now: u64) -> Result<bool> {
        let total = self.total_chunks();
        let own = self.member_id;
        let members = self.md.members();
        if self.intent.suspect.as_ref().is_none_or(|s| s.is_empty()) {
            return Ok(false);
        }
        let (maps, lost) = match self.staging.as_mut() {
            Some(st) => (st, &mut self.staging_lost),
            None => (&mut self.maps, &mut self.lost),
        };
        resolve_into(maps, lost, &mut self.intent, own, members, total, now)
    }

    /// Pick the peer to read `chunk` from: a listed peer (NORMAL sync leg) whose peer map does
    /// not have the chunk dirty.
    pub fn sync_source(&self, chunk: u64, peers: &MemberList, skip: &MemberList) -> Option<u32> {
        peers.iter().find(|p| {
            *p != self.member_id
                && !skip.contains(*p)
                && !self.maps.get(*p).is_some_and(|m| m.test(chunk))
        })
    }

    /// Convert `last_io` into dirty bits (RMR_CMD_LAST_IO_TO_MAP, §6.6 step 3).
    /// [improvement] Suspects are resolved first, so the skip rule keeps a chunk this node may
    /// have lost in a power loss from being pushed onto the others.
    pub fn last_io_to_map(&mut self, now: u64) -> Result<()> {
        if self.staging.is_none() {
            self.resolve_suspects(now)?;
        }
        let total = self.total_chunks();
        let own = self.member_id;
        let mut members = self.md.members();
        for m in self.maps.members().iter() {
            let _ = members.push(m);
        }
        for i in 0..RMR_MAX_QUEUE_DEPTH {
            let c = self.last_io.get(i).copied().unwrap_or(u64::MAX);
            if c == u64::MAX || c >= total {
                continue;
            }
            let own_dirty = self.maps.get(own).is_some_and(|m| m.test(c));
            if own_dirty && !self.bug_last_io_no_skip {
                continue;
            }
            for m in members.iter().filter(|m| *m != own) {
                self.maps.ensure(m, total)?.set(c, now)?;
            }
        }
        // [change from SPEC's choice] last_io is NOT emptied here: if this update fails
        // before the marks reach the other nodes, a later update whose initial spread
        // overwrites this node's maps would lose them (seed 4944). It is emptied when the pool
        // enters NORMAL, when the marks are part of the authoritative maps.
        Ok(())
    }

    /// Answer to MAP_CHECK (§6.8): "empty" only in NORMAL with a clean own map and
    /// [improvement] a `map_ver` not older than the asker's (a member that missed a failure
    /// transition cannot vouch for itself).
    pub fn map_check_answer(&self, asker_ver: u64) -> bool {
        self.state == SrvState::Normal
            && self.maps.get(self.member_id).is_none_or(|m| m.is_empty())
            && !map_ver_gt(asker_ver, self.md.map_ver)
    }

    /// Handle a command from a client (or, for MAP_CHECK/MAP_CLEAR, a peer). `sync` = the
    /// session is a sync session. MAP_SEND pieces are serialised into `piece_buf`.
    pub fn handle_cmd<'b>(
        &mut self,
        cmd: &Cmd<'_>,
        sync: bool,
        now: u64,
        piece_buf: &'b mut [u8; PIECE_BYTES],
    ) -> (CmdRsp<'b>, SrvEffects) {
        let ty = cmd.ty();
        let mut fx = SrvEffects::default();
        let r = self.handle_inner(cmd, sync, now, piece_buf, &mut fx);
        match r {
            Ok(body) => (CmdRsp::ok(ty, body), fx),
            Err(e) => (CmdRsp::err(ty, e), fx),
        }
    }

    fn handle_inner<'b>(
        &mut self,
        cmd: &Cmd<'_>,
        sync: bool,
        now: u64,
        piece_buf: &'b mut [u8; PIECE_BYTES],
        fx: &mut SrvEffects,
    ) -> Result<RspBody<'b>> {
        let total = self.total_chunks();
        match cmd {
            Cmd::JoinPool(j) | Cmd::RejoinPool(j) => {
                let rejoin = matches!(cmd, Cmd::RejoinPool(_));
                let kind = match (j.sync, j.create, rejoin) {
                    (true, _, _) => JoinKind::Sync,
                    (false, true, _) => JoinKind::Create,
                    (false, false, true) => JoinKind::Rejoin,
                    (false, false, false) => JoinKind::Assemble,
                };
                let to = join_decision(self.state, self.marked_create, kind)?;
                if kind == JoinKind::Create {
                    self.md.chunk_size = j.chunk_size;
                    self.md.queue_depth = j.queue_depth;
                    let total = self.total_chunks();
                    self.maps.ensure(self.member_id, total)?;
                    for m in j.members.iter() {
                        self.md.add_member(m)?;
                        self.maps.ensure(m, total)?;
                    }
                    self.marked_create = false;
                    fx.persist_md = true;
                } else if j.chunk_size != self.md.chunk_size || j.queue_depth != self.md.queue_depth
                {
                    return Err(Error::Inval);
                }
                if kind == JoinKind::Assemble {
                    // [choice] A fresh assemble comes from a client that has no maintenance
                    // state (it restarted): a stale flag would block every map update.
                    self.maintenance = false;
                }
                if kind == JoinKind::Sync {
                    self.sync_sessions = self.sync_sessions.saturating_add(1);
                } else {
                    self.sessions = self.sessions.saturating_add(1);
                }
                self.set_state(to, fx);
                Ok(RspBody::Join {
                    member_id: self.member_id,
                    version: RMR_PROTO_VERSION,
                    mapped_size: self.md.mapped_size,
                })
            }
            Cmd::EnablePool { enable } => {
                if *enable {
                    match self.state {
                        SrvState::Created => self.set_state(SrvState::Normal, fx),
                        SrvState::NoIo if self.maintenance => self.maintenance = false,
                        SrvState::NoIo => self.set_state(SrvState::Normal, fx),
                        SrvState::Normal => {}
                        _ => return Err(Error::Perm),
                    }
                } else {
                    self.maintenance = true;
                    if self.state == SrvState::Normal {
                        self.set_state(SrvState::NoIo, fx);
                    }
                }
                Ok(RspBody::Empty)
            }
            Cmd::LeavePool { delete } => {
                if *delete {
                    let own = self.member_id;
                    for m in self.maps.members().iter().filter(|m| *m != own) {
                        self.forget_member(m);
                    }
                    fx.persist_md = true;
                }
                let f = self.on_session_gone(sync);
                fx.state_changed |= f.state_changed;
                fx.stop_sync |= f.stop_sync;
                Ok(RspBody::Empty)
            }
            Cmd::PoolInfo { member_id, op, dirty } => {
                match op {
                    InfoOp::AddCreate => {
                        // A new member with this id has none of an earlier one's past.
                        self.lost.remove(*member_id);
                        self.intent.witness.remove(*member_id);
                        self.md.add_member(*member_id)?;
                        let map = self.maps.ensure(*member_id, total)?;
                        if *dirty {
                            map.set_all(now)?;
                        }
                    }
                    InfoOp::AddAssemble => {
                        if self.maps.get(*member_id).is_none() {
                            return Err(Error::NoEnt);
                        }
                    }
                    InfoOp::RemoveDelete => {
                        if *member_id == self.member_id {
                            return Err(Error::Inval);
                        }
                        self.forget_member(*member_id);
                    }
                    InfoOp::RemoveDisassemble => {}
                }
                fx.persist_md = true;
                Ok(RspBody::Empty)
            }
            Cmd::MapReady => {
                self.staging = Some(MapSet::new());
                self.staging_lost.remove_all();
                Ok(RspBody::Empty)
            }
            Cmd::MapSend { receiver: _, cursor } => self.map_send(*cursor, piece_buf),
            Cmd::SendMapBuf(p) => {
                let st = self.staging.as_mut().ok_or(Error::Proto)?;
                let (st, member) = match p.member & !LOST_PIECE {
                    0 => return Err(Error::Proto),
                    m if p.member & LOST_PIECE != 0 => (&mut self.staging_lost, m),
                    m => (st, m),
                };
                st.ensure(member, total)?.apply_piece(p.page as usize, p.data)?;
                Ok(RspBody::Empty)
            }
            Cmd::MapBufDone { members } => {
                let st = self.staging.as_mut().ok_or(Error::Proto)?;
                for m in members.iter() {
                    st.ensure(m, total)?;
                }
                Ok(RspBody::Empty)
            }
            Cmd::MapDone { enable, map_ver } => {
                let mut st = self.staging.take().ok_or(Error::Proto)?;
                if *enable && self.maintenance {
                    return Err(Error::Perm);
                }
                if *enable && !matches!(self.state, SrvState::NoIo | SrvState::Created | SrvState::Normal) {
                    return Err(Error::Perm);
                }
                st.ensure(self.member_id, total)?;
                self.maps.swap(&mut st);
                st.remove_all();
                self.lost.swap(&mut self.staging_lost);
                self.staging_lost.remove_all();
                // [improvement] Chunks this node lost in a power loss stay dirty and lost for it.
                if let Some(l) = self.intent.lost.as_ref().filter(|l| !l.is_empty()) {
                    let m = self.maps.ensure(self.member_id, total)?;
                    let ml = self.lost.ensure(self.member_id, total)?;
                    for c in l.iter().filter(|c| *c < total) {
                        m.set(c, now)?;
                        ml.set(c, 0)?;
                    }
                }
                for m in self.maps.members().iter() {
                    self.md.add_member(m)?;
                }
                self.md.map_ver = *map_ver;
                if *enable {
                    self.set_state(SrvState::Normal, fx);
                }
                fx.persist_md = true;
                Ok(RspBody::Empty)
            }
            Cmd::MapDisable => {
                if let Some(mut st) = self.staging.take() {
                    st.remove_all();
                }
                self.staging_lost.remove_all();
                Ok(RspBody::Empty)
            }
            Cmd::MapGetVer => Ok(RspBody::MapVer { map_ver: self.md.map_ver }),
            Cmd::MapSetVer { map_ver } => {
                self.md.map_ver = *map_ver;
                fx.persist_md = true;
                Ok(RspBody::Empty)
            }
            Cmd::SendDiscard { member_id } => {
                if let Some(m) = self.maps.get_mut(*member_id) {
                    m.clear_all();
                }
                Ok(RspBody::Empty)
            }
            Cmd::DiscardClearFlag { member_id } => {
                for s in self.md.srv_md.iter_mut().filter(|s| s.member_id == *member_id) {
                    s.discard_entries = false;
                }
                fx.persist_md = true;
                Ok(RspBody::Empty)
            }
            Cmd::LastIoToMap => {
                self.last_io_to_map(now)?;
                fx.persist_md = true;
                Ok(RspBody::Empty)
            }
            Cmd::MapCheck { map_ver } => Ok(RspBody::Bool(self.map_check_answer(*map_ver))),
            Cmd::StoreCheck => Ok(RspBody::Bool(self.store && self.io_allowed)),
            Cmd::MdSend => Ok(RspBody::Md(self.md)),
            Cmd::SendMdBuf(md) => {
                if md.chunk_size != self.md.chunk_size || md.name != self.md.name {
                    return Err(Error::Inval);
                }
                // [choice] Merge, never drop: membership shrinks only by POOL_INFO(REMOVE,
                // DELETE) or LEAVE_POOL(delete); a client pushing a partial view (it is still
                // assembling) must not make this node forget a member (seed 34222).
                for m in md.srv_md.iter().filter(|m| m.member_id != 0) {
                    self.md.add_member(m.member_id)?;
                    for s in self.md.srv_md.iter_mut().filter(|s| s.member_id == m.member_id) {
                        s.discard_entries = m.discard_entries;
                    }
                }
                // [choice] map_ver is NOT adopted from the pushed pool_md: the last-IO update
                // picks the node with the highest version as the one with the newest maps, so
                // a NO_IO node with stale maps must not be lifted by the periodic push
                // (seed 78). map_ver moves only with IO, MAP_ADD, MAP_DONE and MAP_SET_VER.
                fx.persist_md = true;
                Ok(RspBody::Empty)
            }
            Cmd::MapAdd { chunk, member_id, map_ver, recovery } => {
                if self.state != SrvState::Normal && !(*recovery && self.state == SrvState::NoIo) {
                    return Err(Error::Io);
                }
                if map_ver_gt(*map_ver, self.md.map_ver) {
                    self.md.map_ver = *map_ver;
                }
                // Recovery pushes follow the last-IO skip rule: a node missing the chunk itself
                // cannot hold the write the other member missed.
                let own_dirty = self.maps.get(self.member_id).is_some_and(|m| m.test(*chunk));
                if *member_id != self.member_id && !(*recovery && own_dirty) {
                    self.maps.ensure(*member_id, total)?.set(*chunk, now)?;
                }
                // [improvement] A write failed on that member: it no longer witnesses this
                // node's last write there. (A recovery mark is conservative: it stays.)
                if !*recovery {
                    if let Some(w) = self.intent.witness.get_mut(*member_id) {
                        if w.test(*chunk) {
                            w.clear(*chunk);
                            self.intent.persists += 1;
                            fx.persist_md = true;
                        }
                    }
                }
                Ok(RspBody::Empty)
            }
            Cmd::MapClear { member_id, chunk, map_ver } => {
                // [improvement] A clear from a node that has not seen the latest failure
                // transition may race with a write that piggybacked it: ignore it (the
                // map-clear worker or a map update cleans up later).
                if *member_id != self.member_id && !map_ver_gt(self.md.map_ver, *map_ver) {
                    if let Some(m) = self.maps.get_mut(*member_id) {
                        m.clear(*chunk);
                    }
                    if let Some(m) = self.lost.get_mut(*member_id) {
                        m.clear(*chunk);
                    }
                }
                Ok(RspBody::Empty)
            }
            Cmd::User(_) => Err(Error::NotSupp),
            Cmd::SuspectToMap => {
                if self.state == SrvState::Normal {
                    return Err(Error::Perm);
                }
                let grew = self.resolve_suspects(now)?;
                fx.persist_md |= grew;
                Ok(RspBody::Bool(grew))
            }
        }
    }

    /// MAP_SEND on the source: cursor = (map slot << 32) | page.
    fn map_send<'b>(&self, cursor: u64, buf: &'b mut [u8; PIECE_BYTES]) -> Result<RspBody<'b>> {
        let mut slot = (cursor >> 32) as usize;
        let mut page = (cursor & 0xffff_ffff) as usize;
        let members = self.maps.members();
        // Slots past the maps' carry the lost maps.
        while slot < 2 * RMR_POOL_MAX_SESS {
            let (m, flag) = match slot.checked_sub(RMR_POOL_MAX_SESS) {
                None => (self.maps.slot(slot), 0),
                Some(i) => (self.lost.slot(i), LOST_PIECE),
            };
            if let Some(m) = m {
                if let Some(p) = m.next_piece(page) {
                    m.page_bytes(p, buf)?;
                    let next = ((slot as u64) << 32) | (p as u64 + 1);
                    return Ok(RspBody::MapSend {
                        map_ver: self.md.map_ver,
                        next_cursor: next,
                        end: false,
                        members,
                        piece: Some(Piece { member: m.member_id() | flag, page: p as u32, data: &buf[..] }),
                    });
                }
            }
            slot += 1;
            page = 0;
        }
        Ok(RspBody::MapSend {
            map_ver: self.md.map_ver,
            next_cursor: cursor,
            end: true,
            members,
            piece: None,
        })
    }

    /// Members whose peer map is non-empty (map-clear worker targets, §6.8).
    pub fn map_clear_targets(&self) -> MemberList {
        let mut l = MemberList::new();
        for m in self.maps.iter().filter(|m| m.member_id() != self.member_id && !m.is_empty()) {
            let _ = l.push(m.member_id());
        }
        l
    }

    /// The map-clear worker got `empty` from `member` for a check sent when the peer map had
    /// generation `gen_at_send`. Clears only if no bit was set since (the race of SPEC §11).
    pub fn on_peer_check_reply(&mut self, member: u32, empty: bool, gen_at_send: u64) -> bool {
        if !empty || member == self.member_id {
            return false;
        }
        match self.maps.get_mut(member) {
            Some(m) if m.gen() == gen_at_send => {
                m.clear_all();
                // A member with a clean own map has no unsynced losses either.
                if let Some(l) = self.lost.get_mut(member) {
                    l.clear_all();
                }
                true
            }
            _ => false,
        }
    }

    /// A member left the pool (deleted): drop its maps, its lost map, its witness bits and its
    /// `srv_md` slot.
    fn forget_member(&mut self, member: u32) {
        self.maps.remove(member);
        self.lost.remove(member);
        self.intent.witness.remove(member);
        self.md.remove_member(member);
    }
}

/// `a` newer than `b` as 63-bit versions.
pub fn map_ver_gt(a: u64, b: u64) -> bool {
    (a & RMR_MAP_VER_MASK) > (b & RMR_MAP_VER_MASK)
}

/// The sync thread's scheduler (§7): walks the own map, at most `cap` requests in flight.
#[derive(Clone, Copy, Debug, Default)]
pub struct SyncSched {
    /// Thread running.
    pub running: bool,
    /// Requests in flight.
    pub in_flight: u32,
    /// `min(sync_queue_depth, queue_depth)`.
    pub cap: u32,
    cursor: u64,
    failed: bool,
}

impl SyncSched {
    /// `sync start`: -EPERM unless NORMAL, -EBUSY if running.
    pub fn start<S: MapStorage + Default>(
        &mut self,
        pool: &ServerPool<S>,
        sync_queue_depth: u16,
        have_sync_pool: bool,
    ) -> Result<()> {
        if pool.state != SrvState::Normal {
            return Err(Error::Perm);
        }
        if !have_sync_pool {
            return Err(Error::NoEnt);
        }
        if self.running {
            return Err(Error::Busy);
        }
        let cap = core::cmp::min(sync_queue_depth, pool.md.queue_depth).max(1);
        *self = SyncSched { running: true, in_flight: 0, cap: u32::from(cap), cursor: 0, failed: false };
        Ok(())
    }
    /// `sync stop`: no new requests; the thread ends when in-flight ones drain.
    pub fn stop(&mut self) {
        self.failed = true;
    }
    /// The next chunk to sync (locked in the pool's sync table), or None (wait / done).
    pub fn next<S: MapStorage + Default>(&mut self, pool: &mut ServerPool<S>) -> Option<u64> {
        if !self.running || self.failed || self.in_flight >= self.cap || pool.state != SrvState::Normal {
            return None;
        }
        let own = pool.member_id;
        loop {
            let c = pool.maps.get(own)?.next_dirty(self.cursor)?;
            self.cursor = c + 1;
            if pool.sync.start(c, pool.epoch).is_ok() {
                self.in_flight = self.in_flight.saturating_add(1);
                return Some(c);
            }
        }
    }
    /// A request finished. Returns true when the thread has ended (`stopped`).
    pub fn done<S: MapStorage + Default>(&mut self, pool: &ServerPool<S>, ok: bool) -> bool {
        self.in_flight = self.in_flight.saturating_sub(1);
        if !ok || pool.state != SrvState::Normal {
            self.failed = true;
        }
        self.check_end(pool)
    }
    /// Whether the thread has ended (map walked and clean, or failed and drained).
    pub fn check_end<S: MapStorage + Default>(&mut self, pool: &ServerPool<S>) -> bool {
        if !self.running {
            return true;
        }
        let own_clean = pool.maps.get(pool.member_id).is_none_or(|m| m.is_empty());
        let walked = pool
            .maps
            .get(pool.member_id)
            .is_none_or(|m| m.next_dirty(self.cursor).is_none());
        if self.in_flight == 0 && (self.failed || own_clean || pool.state != SrvState::Normal) {
            self.running = false;
        } else if self.in_flight == 0 && walked {
            // Rescan: bits may have been set behind the cursor.
            self.cursor = 0;
        }
        !self.running
    }
}

/// Round a chunk count to map pages (for sizing storage).
pub fn pages_for(total_chunks: u64) -> u64 {
    total_chunks.div_ceil(PAGE_BITS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use super::super::dirtymap::vecstore::VecStorage;
    use super::super::wire::{JoinBody, PoolName, RmrId, SrvMd, IO_WRITE};
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
        assert_eq!(p.on_sync_done(9, true, &mut w), (2, true));
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
    use super::super::wire::{JoinBody, PoolName, RmrId, SrvMd, IO_WRITE};
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
        assert_eq!(r.errno, Error::Perm.errno(), "not while serving");
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
        assert_eq!(p.on_io(&pig(wio(1, 0, 0, 4096), &[44]), 0), IoDecision::SubmitFua { preflush: false });
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
        let d = p.on_io(&wio(8, 1, IO_FUA, 512), 0);
        assert_eq!(d, IoDecision::SubmitFua { preflush: true });
        assert!(!p.intent.is_witness(43, 8));
        // Without witnesses there is nothing to protect: plain promotion.
        let d = p.on_io(&wio(8, 2, 0, 512), 0);
        assert_eq!(d, IoDecision::SubmitFua { preflush: false });
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
