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
