// SPDX-License-Identifier: GPL-2.0-or-later
//! Legs of a client pool: slots, states and their transitions, links, rejoin, admission,
//! maintenance and removal (SPEC §4.2, §6.2, §6.3, §8).

use super::*;

impl ClientPool {
    /// An empty pool (no legs).
    pub fn new(sync: bool, total_chunks: u64) -> Self {
        ClientPool {
            legs: [None; RMR_POOL_MAX_SESS],
            normal_count: 0,
            map_ver: 0,
            rr: 0,
            read_policy: ReadPolicy::LeastPending,
            reads_pending: [0; RMR_POOL_MAX_SESS],
            sync,
            frozen: false,
            inflight: 0,
            total_chunks,
            mapped_size: 0,
            md: None,
            bugs: Bugs::default(),
        }
    }

    /// The leg in `slot`.
    pub fn leg(&self, slot: usize) -> Option<&Leg> {
        self.legs.get(slot).and_then(|l| l.as_ref())
    }

    pub(super) fn leg_mut(&mut self, slot: usize) -> Result<&mut Leg> {
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

    /// Drop a leg inserted by a join that is being undone ([`crate::join::JoinRun`]); it
    /// never carried IO, so nothing else changes.
    pub fn drop_new_leg(&mut self, slot: usize) {
        if let Some(l) = self.legs.get_mut(slot) {
            if l.is_some_and(|l| !l.sync && l.state == LegState::Normal) {
                self.normal_count = self.normal_count.saturating_sub(1);
            }
            *l = None;
        }
    }

    /// The members a JOIN_POOL lists (§6.2 step 2, `stg_members`): the non-sync legs' and
    /// those of `pool_md`.
    pub fn join_members(&self) -> MemberList {
        let mut m = MemberList::new();
        for (_, l) in self.legs().filter(|(_, l)| !l.sync) {
            let _ = m.push(l.member_id);
        }
        if let Some(md) = self.md.as_ref() {
            for x in md.members().iter() {
                if !m.contains(x) {
                    let _ = m.push(x);
                }
            }
        }
        m
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
    /// slot; disassemble keeps them. [improvement] SPEC §6.3 also drops every client map when
    /// the last non-sync leg is disassembled; we keep them: this client still acknowledged the
    /// writes they record, and try-enable's case 2 decides from them on reassembly (simulator
    /// seed 67488: a member stale at an acknowledged write looked clean after reassembly).
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
        }
    }
}
