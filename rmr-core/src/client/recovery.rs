// SPDX-License-Identifier: GPL-2.0-or-later
//! Recovery decisions of a client pool (SPEC §6.7, §6.8): try-enable cases, the map check
//! with its clean delay, store checks.

use super::*;

impl ClientPool {
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

    /// The `pool_md` members try-enable waits for (§6.7 cases 3/4, SPEC §10.5): legs are
    /// RECONNECTING, none is NORMAL or the one authoritative leg, and these members have no
    /// leg that could join them (no leg, or one that is not RECONNECTING). Empty when
    /// try-enable has something to do or nothing waits. For the shells' log.
    pub fn try_enable_waits_for(&self) -> MemberList {
        let mut out = MemberList::new();
        let cand = self.candidates();
        if cand == 0 || self.try_enable() != TryEnable::Nothing {
            return out;
        }
        if let Some(md) = self.md.as_ref() {
            for m in md.members().iter() {
                if self.slot_of(m).is_none_or(|s| cand & (1 << s) == 0) {
                    let _ = out.push(m);
                }
            }
        }
        out
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

/// What one tick of the recovery worker does (§6.8), decided by the core; the shells (the
/// kernel's worker, the simulator's tick) only send the commands and feed the replies back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecoveryPlan {
    /// MAP_CHECK (carrying [`Self::map_ver`]) to these NORMAL legs whose client map is not
    /// empty; sent without the control lock, answers to [`ClientPool::on_map_check_reply`].
    pub map_check: LegMask,
    /// The pool's `map_ver` for the MAP_CHECKs.
    pub map_ver: u64,
    /// STORE_CHECK to these FAILED legs whose transport is up; answers to
    /// [`ClientPool::on_store_check_reply`].
    pub store_check: LegMask,
    /// SEND_MD_BUF of [`Self::md`] to these legs (non-sync pools: every leg not FAILED or
    /// REMOVING).
    pub md_push: LegMask,
    /// `pool_md` with the pool's current `map_ver`.
    pub md: Option<PoolMd>,
    /// Try-enable candidates wait: run try-enable after the store checks.
    pub try_enable: bool,
}

/// What a STORE_CHECK answer means for its FAILED leg.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreCheck {
    /// The store serves IO again: the leg left FAILED. `try_enable`: the leg waits in
    /// RECONNECTING for a map update, so the caller runs try-enable (non-sync legs).
    Revived {
        /// The leg's transition, for the log.
        transition: Option<Transition>,
        /// Run try-enable now.
        try_enable: bool,
    },
    /// The server does not know the session in this pool (it restarted): rejoin instead.
    Rejoin,
    /// Still failed, or the check did not get through.
    Nothing,
}

impl ClientPool {
    /// The commands of one recovery tick (§6.8).
    pub fn recovery_plan<S: MapStorage + Default>(&self, maps: &MapSet<S>) -> RecoveryPlan {
        let md = (!self.sync).then_some(self.md).flatten().map(|mut md| {
            md.map_ver = self.map_ver;
            md
        });
        let md_push = if md.is_some() {
            self.legs()
                .filter(|(_, l)| !matches!(l.state, LegState::Failed | LegState::Removing))
                .fold(0, |m, (i, _)| m | (1 << i))
        } else {
            0
        };
        RecoveryPlan {
            map_check: self.map_check_targets(maps),
            map_ver: self.map_ver,
            store_check: self.store_check_targets(),
            md_push,
            md,
            try_enable: self.candidates() != 0,
        }
    }

    /// A STORE_CHECK answer (`errno`, and whether the store allows IO) for leg `slot`.
    pub fn on_store_check_reply(&mut self, slot: usize, errno: i32, io_allowed: bool) -> StoreCheck {
        if errno == Error::NoEnt.errno() {
            return StoreCheck::Rejoin;
        }
        if errno != 0 || !io_allowed || self.leg(slot).is_none_or(|l| l.state != LegState::Failed) {
            return StoreCheck::Nothing;
        }
        match self.on_store_ok(slot) {
            Ok(transition) => StoreCheck::Revived {
                transition,
                try_enable: self.leg(slot).is_some_and(|l| l.state == LegState::Reconnecting),
            },
            Err(_) => StoreCheck::Nothing,
        }
    }
}

#[cfg(test)]
mod tests_recovery_plan {
    use super::super::super::dirtymap::vecstore::VecStorage;
    use super::*;

    #[test]
    fn plan_and_store_check() {
        let mut p = ClientPool::new(false, 100);
        let mut maps: MapSet<VecStorage> = MapSet::new();
        let a = p.add_leg(42, false).unwrap();
        let b = p.add_leg(43, false).unwrap();
        p.set_state(a, LegState::Normal).unwrap();
        p.set_state(b, LegState::Normal).unwrap();
        maps.ensure(42, 100).unwrap().set(3, 0).unwrap();
        maps.ensure(43, 100).unwrap();
        let plan = p.recovery_plan(&maps);
        assert_eq!(plan.map_check, 1 << a, "only legs whose client map is dirty are checked");
        assert_eq!((plan.store_check, plan.md_push, plan.try_enable), (0, 0, false), "no pool_md, nothing to push");
        p.md = Some(PoolMd::BLANK);
        p.fail_leg(b);
        let plan = p.recovery_plan(&maps);
        assert_eq!(plan.md_push, 1 << a, "a FAILED leg gets no push");
        assert_eq!(plan.md.map(|m| m.map_ver), Some(p.map_ver()));
        assert_eq!(plan.store_check, 1 << b, "a FAILED leg with its transport up is store-checked");
        assert_eq!(p.on_store_check_reply(b, 0, false), StoreCheck::Nothing);
        assert_eq!(p.on_store_check_reply(b, Error::NoEnt.errno(), false), StoreCheck::Rejoin);
        match p.on_store_check_reply(b, 0, true) {
            StoreCheck::Revived { transition: Some(t), try_enable: true } => {
                assert_eq!((t.from, t.to), (LegState::Failed, LegState::Reconnecting))
            }
            s => panic!("unexpected {s:?}"),
        }
        assert!(p.recovery_plan(&maps).try_enable);
        assert_eq!(p.on_store_check_reply(b, 0, true), StoreCheck::Nothing, "only a FAILED leg is revived");
        p.set_connected(a, false);
        assert_eq!(p.recovery_plan(&maps).store_check, 0, "no check over a transport that is down");
    }
}

