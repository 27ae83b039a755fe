// SPDX-License-Identifier: GPL-2.0-or-later
//! Client pool and legs (SPEC §4.1, §4.2, §5.1, §5.2, §6.2, §6.3, §6.8, §8).
//!
//! A leg is addressed by its slot (0..`RMR_POOL_MAX_SESS`). Every state change goes through
//! [`ClientPool::set_state`], which allows exactly the §4.2 table and maintains `normal_count`,
//! `was_last_authoritative` and `map_ver`.

use super::consts::{RMR_MAP_CLEAN_DELAY_MS, RMR_MAP_VER_MASK, RMR_POOL_MAX_SESS};
use super::dirtymap::{MapSet, MapStorage};
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

/// A write routed by [`ClientPool::plan_write`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WritePlan {
    /// Chunk written.
    pub chunk: u64,
    /// NORMAL legs to send the write to.
    pub targets: LegMask,
    /// Members to piggyback (legs not NORMAL).
    pub piggyback: MemberList,
    /// Pool `map_ver` carried by the IO.
    pub map_ver: u64,
}

/// Next step of a read after its leg answered ([`ClientPool::on_read_reply`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadStep {
    /// Served: complete the read.
    Done,
    /// The leg failed: route the read again with [`ClientPool::plan_read`].
    Retry,
    /// No NORMAL leg is left: complete the read with -EIO.
    Fail,
}

/// Next step of a write after a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteStep {
    /// More replies outstanding.
    Wait,
    /// Send MAP_ADD(chunk, each of `members`) to every leg in `targets`, feed the replies to
    /// [`WriteReq::on_map_add_reply`].
    MapAdd {
        /// Legs to send to.
        targets: LegMask,
        /// Members that missed the write.
        members: MemberList,
    },
    /// Complete the request.
    Done(Result<()>),
}

/// One in-flight replicated write (§5.1). Allocation-free; lives in the IO unit.
#[derive(Clone, Copy, Debug)]
pub struct WriteReq {
    /// The routing decision.
    pub plan: WritePlan,
    pending: LegMask,
    ok: LegMask,
    failed: MemberList,
    map_add_pending: LegMask,
    map_add_ok: LegMask,
    in_map_add: bool,
    /// MAP_ADD replies still awaited per leg (one per member in `failed`).
    map_add_left: [u8; RMR_POOL_MAX_SESS],
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
    /// Sync pool (legs to peers from a storage node).
    pub sync: bool,
    /// IO frozen (map update in progress): new IO must wait.
    pub frozen: bool,
    /// IO in flight.
    pub inflight: u32,
    /// Number of chunks of the device.
    pub total_chunks: u64,
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

impl ClientPool {
    /// An empty pool (no legs).
    pub fn new(sync: bool, total_chunks: u64) -> Self {
        ClientPool {
            legs: [None; RMR_POOL_MAX_SESS],
            normal_count: 0,
            map_ver: 0,
            rr: 0,
            sync,
            frozen: false,
            inflight: 0,
            total_chunks,
            md: None,
            bugs: Bugs::default(),
        }
    }
    /// The leg in `slot`.
    pub fn leg(&self, slot: usize) -> Option<&Leg> {
        self.legs.get(slot).and_then(|l| l.as_ref())
    }
    fn leg_mut(&mut self, slot: usize) -> Result<&mut Leg> {
        self.legs.get_mut(slot).and_then(|l| l.as_mut()).ok_or(Error::NoEnt)
    }
    /// Iterate `(slot, leg)`.
    pub fn legs(&self) -> impl Iterator<Item = (usize, &Leg)> {
        self.legs.iter().enumerate().filter_map(|(i, l)| l.as_ref().map(|l| (i, l)))
    }
    /// Slot of `member`'s leg.
    pub fn slot_of(&self, member: u32) -> Option<usize> {
        self.legs().find(|(_, l)| l.member_id == member).map(|(i, _)| i)
    }
    /// Number of non-sync NORMAL legs.
    pub fn normal_count(&self) -> u32 {
        self.normal_count
    }
    /// Pool map version.
    pub fn map_ver(&self) -> u64 {
        self.map_ver
    }
    /// Adopt a version (assemble: from `pool_md`; last-IO: the new version).
    pub fn set_map_ver(&mut self, v: u64) {
        self.map_ver = v;
    }
    /// Mask of legs in `state`.
    pub fn mask(&self, state: LegState) -> LegMask {
        self.legs().filter(|(_, l)| l.state == state).fold(0, |m, (i, _)| m | (1 << i))
    }

    /// Insert a leg after a successful JOIN reply (state CREATED). -EEXIST for a member that
    /// already has a leg (the caller then sends LEAVE_POOL), -ENOSPC at `RMR_POOL_MAX_SESS`.
    pub fn add_leg(&mut self, member_id: u32, sync: bool) -> Result<usize> {
        if member_id == 0 || sync != self.sync {
            return Err(Error::Inval);
        }
        if self.slot_of(member_id).is_some() {
            return Err(Error::Exist);
        }
        let slot = self.legs.iter().position(|l| l.is_none()).ok_or(Error::NoSpc)?;
        let leg = Leg {
            member_id,
            state: LegState::Created,
            sync,
            maintenance: false,
            was_last_authoritative: false,
            connected: true,
            check_prev_empty: false,
        };
        *self.legs.get_mut(slot).ok_or(Error::NoSpc)? = Some(leg);
        if !sync {
            if let Some(md) = self.md.as_mut() {
                md.add_member(member_id)?;
            }
        }
        Ok(slot)
    }

    /// Free a REMOVING leg's slot (§6.3 step 3).
    pub fn free_leg(&mut self, slot: usize) -> Result<()> {
        if self.leg_mut(slot)?.state != LegState::Removing {
            return Err(Error::Busy);
        }
        if let Some(l) = self.legs.get_mut(slot) {
            *l = None;
        }
        Ok(())
    }

    /// The only way to change a leg's state (§4.2). Illegal → `Err(Inval)`, state unchanged.
    /// Same state → `Ok(None)`.
    pub fn set_state(&mut self, slot: usize, to: LegState) -> Result<Option<Transition>> {
        let bug_promote = self.bugs.promote_failed;
        let leg = self.leg_mut(slot)?;
        let from = leg.state;
        if from == to {
            return Ok(None);
        }
        let sync = leg.sync;
        let allowed = leg_transition_allowed(from, to, sync)
            || (bug_promote && from == LegState::Failed && to == LegState::Normal);
        if !allowed {
            return Err(Error::Inval);
        }
        leg.state = to;
        leg.check_prev_empty = false;
        if !sync {
            if to == LegState::Normal {
                leg.was_last_authoritative = false;
                self.normal_count = self.normal_count.saturating_add(1);
            } else if from == LegState::Normal {
                self.normal_count = self.normal_count.saturating_sub(1);
                let counts = to == LegState::Failed || to == LegState::Reconnecting;
                if counts && self.normal_count == 0 {
                    if let Ok(l) = self.leg_mut(slot) {
                        l.was_last_authoritative = true;
                    }
                }
            }
            // SPEC: NORMAL -> FAILED bumps map_ver. [improvement] So does NORMAL ->
            // RECONNECTING (maintenance): both make the member piggybacked from now on, and
            // servers use the version to reject stale "clean" claims (MAP_CHECK, MAP_CLEAR).
            if from == LegState::Normal && matches!(to, LegState::Failed | LegState::Reconnecting) {
                self.map_ver = self.map_ver.wrapping_add(1) & RMR_MAP_VER_MASK;
            }
        }
        Ok(Some(Transition { slot, from, to }))
    }

    /// Link or IO failure on a leg: → FAILED when that is legal from its state.
    pub fn fail_leg(&mut self, slot: usize) -> Option<Transition> {
        let st = self.leg(slot)?.state;
        if matches!(st, LegState::Removing | LegState::Failed) {
            return None;
        }
        self.set_state(slot, LegState::Failed).ok().flatten()
    }

    /// Record the transport state reported by the shell; link down fails the leg.
    pub fn set_connected(&mut self, slot: usize, up: bool) -> Option<Transition> {
        if let Ok(l) = self.leg_mut(slot) {
            l.connected = up;
        }
        if up {
            None
        } else {
            self.fail_leg(slot)
        }
    }

    /// Rejoin (REJOIN_POOL) succeeded: sync FAILED → NORMAL, non-sync FAILED → RECONNECTING.
    pub fn on_rejoined(&mut self, slot: usize) -> Result<Option<Transition>> {
        let leg = self.leg(slot).ok_or(Error::NoEnt)?;
        let to = if leg.sync || self.bugs.promote_failed {
            LegState::Normal
        } else {
            LegState::Reconnecting
        };
        self.set_state(slot, to)
    }

    /// A link event on `slot`'s transport (§4.2, §6.2 Reconnect): down fails the leg; up
    /// returns `true` when the leg is FAILED and must send REJOIN_POOL.
    pub fn on_link(&mut self, slot: usize, up: bool) -> (Option<Transition>, bool) {
        let t = self.set_connected(slot, up);
        let rejoin = up && self.leg(slot).is_some_and(|l| l.state == LegState::Failed);
        (t, rejoin)
    }

    /// A `reconnect` write on `slot` (§2.2): `Ok(true)` = rejoin now, `Ok(false)` = the
    /// transport is still down (RTRS reconnects it; the write answers ENOTCONN), -EBUSY [choice]
    /// if the transport is up and the leg is not FAILED.
    pub fn reconnect_check(&self, slot: usize, connected: bool) -> Result<bool> {
        let leg = self.leg(slot).ok_or(Error::NoEnt)?;
        match (connected, leg.state) {
            (true, LegState::Failed) => Ok(true),
            (true, _) => Err(Error::Busy),
            (false, _) => Ok(false),
        }
    }

    /// Whether a join on a new leg must run with IO frozen: an assemble join turns a NORMAL
    /// server NO_IO (§4.3) before its reply says which member it is, so if that member already
    /// has a NORMAL leg here no IO may reach it in between.
    pub fn join_freezes_io(&self, create: bool) -> bool {
        !self.sync && !create && self.normal_count > 0
    }

    /// The NORMAL leg `member` already has, if any: the new join is a duplicate (-EEXIST);
    /// after LEAVE_POOL on the new session that leg's server is re-enabled with
    /// ENABLE_POOL(1) (its maps saw no IO, see [`Self::join_freezes_io`]).
    pub fn duplicate_normal(&self, member: u32) -> Option<usize> {
        self.slot_of(member).filter(|s| self.leg(*s).is_some_and(|l| l.state == LegState::Normal))
    }

    /// POOL_INFO recipients (§6.2 step 4, §6.3 step 2): non-sync legs other than `except`
    /// that are not FAILED or REMOVING.
    pub fn pool_info_targets(&self, except: usize) -> LegMask {
        self.legs()
            .filter(|(s, l)| *s != except && !l.sync && !matches!(l.state, LegState::Failed | LegState::Removing))
            .fold(0, |m, (i, _)| m | (1 << i))
    }

    /// `cmd_with_rsp` recipients (§6.9): every leg but the FAILED ones.
    pub fn cmd_targets(&self) -> LegMask {
        self.legs().filter(|(_, l)| l.state != LegState::Failed).fold(0, |m, (i, _)| m | (1 << i))
    }

    /// A read routed to `slot` may still be sent (the leg is NORMAL and IO is not frozen).
    pub fn read_still_routable(&self, slot: usize) -> bool {
        !self.frozen && self.leg(slot).is_some_and(|l| l.state == LegState::Normal)
    }

    /// After a successful REJOIN: a leg in maintenance must set the server's flag again with
    /// ENABLE_POOL(0). A server keeps the flag in memory only, so one that restarted while
    /// its leg was in maintenance rejoins NO_IO without it, and the admin's `enable`=1 would
    /// then admit it directly with stale maps (simulator seed 29052).
    pub fn rejoin_needs_maintenance(&self, slot: usize) -> bool {
        self.leg(slot).is_some_and(|l| !l.sync && l.maintenance)
    }

    /// Store check answered "io allowed": FAILED → RECONNECTING (§6.8 step 2).
    pub fn on_store_ok(&mut self, slot: usize) -> Result<Option<Transition>> {
        self.on_rejoined(slot)
    }

    /// Members to piggyback on a write: every leg that is not NORMAL and not REMOVING.
    pub fn piggyback(&self) -> MemberList {
        let mut l = MemberList::new();
        for (_, leg) in self.legs() {
            let skip = match leg.state {
                LegState::Normal | LegState::Removing => true,
                LegState::Reconnecting => self.bugs.no_piggyback_reconnecting,
                _ => false,
            };
            if !skip && !leg.sync {
                let _ = l.push(leg.member_id);
            }
        }
        l
    }

    /// Route a write of `chunk` (§5.1 steps 1-2): targets, piggyback list and `map_ver`; the
    /// chunk is set in the client map of every piggybacked member. -EBUSY while frozen (queue
    /// the request), -EIO without a NORMAL leg, -EINVAL for a chunk out of range.
    pub fn plan_write<S: MapStorage + Default>(
        &mut self,
        chunk: u64,
        maps: &mut MapSet<S>,
        now: u64,
    ) -> Result<WriteReq> {
        if chunk >= self.total_chunks {
            return Err(Error::Inval);
        }
        if self.frozen {
            return Err(Error::Busy);
        }
        let targets = self.mask(LegState::Normal);
        if targets == 0 {
            return Err(Error::Io);
        }
        let piggyback = self.piggyback();
        for m in piggyback.iter() {
            maps.ensure(m, self.total_chunks)?.set(chunk, now)?;
        }
        self.inflight = self.inflight.saturating_add(1);
        Ok(WriteReq {
            plan: WritePlan { chunk, targets, piggyback, map_ver: self.map_ver },
            pending: targets,
            ok: 0,
            failed: MemberList::new(),
            map_add_pending: 0,
            map_add_ok: 0,
            in_map_add: false,
            map_add_left: [0; RMR_POOL_MAX_SESS],
        })
    }

    /// Route a read (§5.2): the next NORMAL leg round robin. -EBUSY while frozen, -EIO if none.
    pub fn plan_read(&mut self) -> Result<usize> {
        if self.frozen {
            return Err(Error::Busy);
        }
        for k in 0..RMR_POOL_MAX_SESS {
            let slot = (self.rr + k) % RMR_POOL_MAX_SESS;
            if self.leg(slot).is_some_and(|l| l.state == LegState::Normal) {
                self.rr = (slot + 1) % RMR_POOL_MAX_SESS;
                return Ok(slot);
            }
        }
        Err(Error::Io)
    }

    /// A read failed on `slot`: the leg goes FAILED; retry with [`Self::plan_read`].
    pub fn read_failed(&mut self, slot: usize) -> Option<Transition> {
        self.fail_leg(slot)
    }

    /// The answer of the leg a read went to (§5.2): served, or the leg fails and the read is
    /// routed again ([`ClientPool::plan_read`]) while a NORMAL leg is left, else it fails with
    /// -EIO. `inflight` is not touched: [`ClientPool::plan_read`] does not count reads, a
    /// shell that drains reads too counts them itself. Returns the leg's transition, if any,
    /// for the log.
    pub fn on_read_reply(&mut self, slot: usize, ok: bool) -> (ReadStep, Option<Transition>) {
        if ok {
            return (ReadStep::Done, None);
        }
        let t = self.read_failed(slot);
        let step = if self.mask(LegState::Normal) == 0 { ReadStep::Fail } else { ReadStep::Retry };
        (step, t)
    }

    /// A write finished (after `Done`): drop it from the in-flight count.
    pub fn io_finished(&mut self) {
        self.inflight = self.inflight.saturating_sub(1);
    }

    /// Candidates for try-enable: non-sync RECONNECTING legs without maintenance.
    pub fn candidates(&self) -> LegMask {
        self.legs()
            .filter(|(_, l)| !l.sync && l.state == LegState::Reconnecting && !l.maintenance)
            .fold(0, |m, (i, _)| m | (1 << i))
    }

    /// Try-enable decision (§6.7).
    pub fn try_enable(&self) -> TryEnable {
        let cand = self.candidates();
        if cand == 0 || self.sync {
            return TryEnable::Nothing;
        }
        let normal = self.mask(LegState::Normal);
        if let Some(src) = lowest(normal) {
            return TryEnable::Spread { source: src, receivers: cand };
        }
        let auth: LegMask = self
            .legs()
            .filter(|(i, l)| cand & (1 << i) != 0 && l.was_last_authoritative)
            .fold(0, |m, (i, _)| m | (1 << i));
        if auth.count_ones() == 1 {
            if let Some(a) = lowest(auth) {
                return TryEnable::EnableAuthoritative { slot: a };
            }
        }
        // Cases 3/4: every pool_md member has a leg, all RECONNECTING without maintenance.
        let Some(md) = self.md.as_ref() else {
            return TryEnable::Nothing;
        };
        let members = md.members();
        if members.is_empty() {
            return TryEnable::Nothing;
        }
        let all = members
            .iter()
            .all(|m| self.slot_of(m).is_some_and(|s| cand & (1 << s) != 0));
        if all && cand.count_ones() as usize == members.len() {
            TryEnable::LastIo { legs: cand }
        } else {
            TryEnable::Nothing
        }
    }

    /// Map check targets (§6.8 step 1): NORMAL non-maintenance non-sync legs whose client map
    /// is non-empty.
    pub fn map_check_targets<S: MapStorage + Default>(&self, maps: &MapSet<S>) -> LegMask {
        self.legs()
            .filter(|(_, l)| l.state == LegState::Normal && !l.maintenance && !l.sync)
            .filter(|(_, l)| maps.get(l.member_id).is_some_and(|m| !m.is_empty()))
            .fold(0, |m, (i, _)| m | (1 << i))
    }

    /// A MAP_CHECK reply arrived for `slot`. The client map is cleared only if this and the
    /// previous reply said "empty" and the map's last set is at least `RMR_MAP_CLEAN_DELAY_MS`
    /// old; the caller holds the map lock across this call (§6.8 improvement). Returns whether
    /// the map was cleared.
    pub fn on_map_check_reply<S: MapStorage + Default>(
        &mut self,
        slot: usize,
        empty: bool,
        maps: &mut MapSet<S>,
        now: u64,
    ) -> bool {
        let no_delay = self.bugs.no_clean_delay;
        let Ok(leg) = self.leg_mut(slot) else {
            return false;
        };
        if leg.state != LegState::Normal || !empty {
            leg.check_prev_empty = false;
            return false;
        }
        let prev = leg.check_prev_empty;
        leg.check_prev_empty = true;
        let member = leg.member_id;
        let Some(map) = maps.get_mut(member) else {
            return false;
        };
        let old_enough = now.saturating_sub(map.ts()) >= RMR_MAP_CLEAN_DELAY_MS;
        if no_delay || (prev && old_enough) {
            map.clear_all();
            return true;
        }
        false
    }

    /// Store check targets (§6.8 step 2): FAILED legs whose transport is connected.
    pub fn store_check_targets(&self) -> LegMask {
        self.legs()
            .filter(|(_, l)| l.state == LegState::Failed && l.connected)
            .fold(0, |m, (i, _)| m | (1 << i))
    }

    /// `POOL_INFO(ADD, CREATE)` dirty flag (§6.2 step 4): some non-sync leg is NORMAL.
    pub fn pool_info_dirty(&self) -> bool {
        self.normal_count > 0
    }

    /// `enable`=1 on a CREATED non-sync leg (§6.2 step 5).
    pub fn admit(&self, slot: usize) -> Result<Admit> {
        let leg = self.leg(slot).ok_or(Error::NoEnt)?;
        if leg.sync {
            return Err(Error::Perm);
        }
        match leg.state {
            LegState::Created => Ok(match lowest(self.mask(LegState::Normal)) {
                None => Admit::EnablePool,
                Some(source) => Admit::Spread { source },
            }),
            LegState::Normal => Ok(Admit::Nothing),
            LegState::Removing => Err(Error::Busy),
            _ if leg.maintenance => Ok(Admit::LeaveMaintenance),
            _ => Ok(Admit::Nothing),
        }
    }

    /// `enable`=0 (§8): NORMAL → RECONNECTING with maintenance; the caller freezes IO around
    /// this call and sends ENABLE_POOL(0). On RECONNECTING/FAILED only the flag is set.
    pub fn set_maintenance(&mut self, slot: usize) -> Result<bool> {
        let leg = self.leg(slot).ok_or(Error::NoEnt)?;
        if leg.sync {
            return Err(Error::Perm);
        }
        match leg.state {
            LegState::Created | LegState::Removing => Err(Error::Busy),
            LegState::Normal => {
                self.leg_mut(slot)?.maintenance = true;
                self.set_state(slot, LegState::Reconnecting)?;
                Ok(true)
            }
            _ => {
                self.leg_mut(slot)?.maintenance = true;
                Ok(false)
            }
        }
    }

    /// `enable`=1 on a maintenance leg: clear the flag (after ENABLE_POOL(1) succeeded); the
    /// caller then runs try-enable.
    pub fn clear_maintenance(&mut self, slot: usize) -> Result<()> {
        self.leg_mut(slot)?.maintenance = false;
        Ok(())
    }

    /// `del_sess` step 1: → REMOVING. Returns the member id.
    pub fn begin_remove(&mut self, slot: usize) -> Result<u32> {
        let m = self.leg(slot).ok_or(Error::NoEnt)?.member_id;
        self.set_state(slot, LegState::Removing)?;
        Ok(m)
    }

    /// `del_sess` step 2 on the client (non-sync): delete drops the member's map and `srv_md`
    /// slot; disassemble keeps them, and drops all maps when no non-sync leg remains.
    pub fn remove_member<S: MapStorage + Default>(
        &mut self,
        member: u32,
        delete: bool,
        maps: &mut MapSet<S>,
    ) {
        if delete {
            maps.remove(member);
            if let Some(md) = self.md.as_mut() {
                md.remove_member(member);
            }
        } else if !self.legs().any(|(_, l)| !l.sync && l.state != LegState::Removing) {
            maps.remove_all();
        }
    }
}

/// Outcome of `enable`=1 on a leg.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    /// No NORMAL leg: send ENABLE_POOL(1), then leg → NORMAL.
    EnablePool,
    /// Spread from `source` to this leg with `enable`=1.
    Spread {
        /// Source slot.
        source: usize,
    },
    /// ENABLE_POOL(1), clear maintenance, then try-enable.
    LeaveMaintenance,
    /// Already NORMAL / nothing to do.
    Nothing,
}

/// Try-enable decision (§6.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TryEnable {
    /// Nothing to do: wait for the next trigger.
    Nothing,
    /// Case 1: freeze IO, spread from `source` to `receivers` with `enable`=1.
    Spread {
        /// NORMAL source slot.
        source: usize,
        /// Candidate slots.
        receivers: LegMask,
    },
    /// Case 2: ENABLE_POOL(1) to the authoritative leg, leg → NORMAL, then decide again.
    EnableAuthoritative {
        /// The leg with `was_last_authoritative`.
        slot: usize,
    },
    /// Cases 3/4: last-IO update over `legs`.
    LastIo {
        /// All member legs.
        legs: LegMask,
    },
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

impl WriteReq {
    /// A data reply from `slot` (`ok` = success). Failure fails the leg and dirties the chunk
    /// for its member in the client map (§5.1 step 4).
    pub fn on_reply<S: MapStorage + Default>(
        &mut self,
        pool: &mut ClientPool,
        maps: &mut MapSet<S>,
        slot: usize,
        ok: bool,
        now: u64,
    ) -> WriteStep {
        let bit = 1u8 << (slot % RMR_POOL_MAX_SESS);
        if self.in_map_add || self.pending & bit == 0 {
            return WriteStep::Wait;
        }
        self.pending &= !bit;
        if ok {
            self.ok |= bit;
        } else {
            pool.fail_leg(slot);
            if let Some(m) = pool.leg(slot).map(|l| l.member_id) {
                let _ = self.failed.push(m);
                if let Ok(map) = maps.ensure(m, pool.total_chunks) {
                    let _ = map.set(self.plan.chunk, now);
                }
            }
        }
        if self.pending != 0 {
            return WriteStep::Wait;
        }
        if self.failed.is_empty() {
            return WriteStep::Done(if self.ok != 0 { Ok(()) } else { Err(Error::Io) });
        }
        let targets = pool.mask(LegState::Normal);
        if self.ok == 0 || targets == 0 {
            return WriteStep::Done(Err(Error::Io));
        }
        self.in_map_add = true;
        self.map_add_pending = targets;
        let n = u8::try_from(self.failed.len()).unwrap_or(u8::MAX);
        for (i, left) in self.map_add_left.iter_mut().enumerate() {
            *left = if targets & (1 << i) != 0 { n } else { 0 };
        }
        WriteStep::MapAdd { targets, members: self.failed }
    }

    /// The MAP_ADD commands of the round [`WriteStep::MapAdd`] started: one per member that
    /// missed the write, to every surviving leg, as `(slot, command)`. Each reply (or
    /// transport failure) goes to [`WriteReq::on_map_add_member_reply`].
    pub fn map_add_cmds(&self, map_ver: u64) -> impl Iterator<Item = (usize, Cmd<'static>)> + '_ {
        let chunk = self.plan.chunk;
        let pending = if self.in_map_add { self.map_add_pending } else { 0 };
        (0..RMR_POOL_MAX_SESS).filter(move |s| pending & (1 << s) != 0).flat_map(move |s| {
            self.failed
                .iter()
                .map(move |m| (s, Cmd::MapAdd { chunk, member_id: m, map_ver, recovery: false }))
        })
    }

    /// Whether leg `slot` still awaits MAP_ADD replies in this round (a shell sending the
    /// round's commands one by one skips the rest of a leg whose round already ended).
    pub fn map_add_awaits(&self, slot: usize) -> bool {
        self.in_map_add && self.map_add_pending & (1u8 << (slot % RMR_POOL_MAX_SESS)) != 0
    }

    /// One MAP_ADD reply from `slot` (`ok` = success; a transport failure is a failure). A
    /// leg's round succeeds when every one of its MAP_ADDs did and fails at its first failed
    /// one, which fails the leg (see [`WriteReq::on_map_add_reply`]); replies after that are
    /// ignored.
    pub fn on_map_add_member_reply<S: MapStorage + Default>(
        &mut self,
        pool: &mut ClientPool,
        maps: &mut MapSet<S>,
        slot: usize,
        ok: bool,
        now: u64,
    ) -> WriteStep {
        if !self.map_add_awaits(slot) {
            return WriteStep::Wait;
        }
        let Some(left) = self.map_add_left.get_mut(slot) else {
            return WriteStep::Wait;
        };
        if ok {
            *left = left.saturating_sub(1);
            if *left > 0 {
                return WriteStep::Wait;
            }
        } else {
            *left = 0;
        }
        self.on_map_add_reply(pool, maps, slot, ok, now)
    }

    /// The end of one leg's MAP_ADD round (`ok`: every member's MAP_ADD succeeded). A failed
    /// round fails the leg.
    fn on_map_add_reply<S: MapStorage + Default>(
        &mut self,
        pool: &mut ClientPool,
        maps: &mut MapSet<S>,
        slot: usize,
        ok: bool,
        now: u64,
    ) -> WriteStep {
        let bit = 1u8 << (slot % RMR_POOL_MAX_SESS);
        if !self.in_map_add || self.map_add_pending & bit == 0 {
            return WriteStep::Wait;
        }
        self.map_add_pending &= !bit;
        if ok {
            self.map_add_ok |= bit;
        } else {
            pool.fail_leg(slot);
            if let Some(m) = pool.leg(slot).map(|l| l.member_id) {
                if let Ok(map) = maps.ensure(m, pool.total_chunks) {
                    let _ = map.set(self.plan.chunk, now);
                }
            }
        }
        if self.map_add_pending != 0 {
            WriteStep::Wait
        } else if self.map_add_ok != 0 {
            WriteStep::Done(Ok(()))
        } else {
            WriteStep::Done(Err(Error::Io))
        }
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

    /// A failed read fails its leg and is routed again while a NORMAL leg is left.
    #[test]
    fn read_failover() {
        let mut p = ClientPool::new(false, 100);
        let a = p.add_leg(42, false).unwrap();
        let b = p.add_leg(43, false).unwrap();
        p.set_state(a, Normal).unwrap();
        p.set_state(b, Normal).unwrap();
        assert_eq!(p.on_read_reply(a, true), (ReadStep::Done, None));
        let (st, t) = p.on_read_reply(a, false);
        assert_eq!(st, ReadStep::Retry);
        assert_eq!(t.map(|t| t.to), Some(Failed));
        assert_eq!(p.plan_read(), Ok(b));
        assert_eq!(p.on_read_reply(b, false).0, ReadStep::Fail);
        assert_eq!(p.plan_read(), Err(Error::Io));
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
        // disassemble of the last non-sync leg drops all client maps
        p.begin_remove(a).unwrap();
        p.begin_remove(c).unwrap();
        p.remove_member(42, false, &mut maps);
        assert_eq!(maps.members().len(), 0);
        assert_eq!(p.add_leg(0, false), Err(Error::Inval));
    }
}
