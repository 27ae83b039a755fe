// SPDX-License-Identifier: GPL-2.0-or-later
//! The last-IO reconciliation (§6.6) as a step machine: [`LastIoUpdate`].

use super::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LiPhase {
    GetVer,
    Discard,
    InitialSpread,
    ToMap,
    SetVerX,
    Spread,
    Enable,
    SetVer,
}

/// The last-IO update (`rmr_clt_start_last_io_update()`, §6.6) as a step machine.
#[derive(Clone, Copy, Debug)]
pub struct LastIoUpdate {
    legs: LegMask,
    phase: LiPhase,
    pending: LegMask,
    best_ver: u64,
    best: Option<(usize, u32)>,
    max_ver: u64,
    order: [usize; RMR_POOL_MAX_SESS],
    n: usize,
    k: usize,
    sub: Option<MapUpdate>,
    new_ver: u64,
    /// Members with pending discards (`discard_entries`), run before the initial spread.
    disc: MemberList,
    disc_k: usize,
    disc_clear: bool,
}

impl LastIoUpdate {
    /// Over `legs` (all members, all RECONNECTING).
    pub fn new(legs: LegMask) -> Self {
        LastIoUpdate {
            legs,
            phase: LiPhase::GetVer,
            pending: legs,
            best_ver: 0,
            best: None,
            max_ver: 0,
            order: [0; RMR_POOL_MAX_SESS],
            n: 0,
            k: 0,
            sub: None,
            new_ver: 0,
            disc: MemberList::new(),
            disc_k: 0,
            disc_clear: false,
        }
    }

    /// The chosen source slot (after MAP_GET_VER).
    pub fn source(&self) -> Option<usize> {
        self.best.map(|b| b.0)
    }

    /// First step.
    pub fn start<'a>(&mut self, _pool: &ClientPool) -> Step<'a> {
        match lowest(self.pending) {
            Some(s) => Step::Send { slot: s, cmd: Cmd::MapGetVer },
            None => Step::Done(Ok(())),
        }
    }

    fn spread<'a>(&mut self, pool: &mut ClientPool, source: usize, enable: bool) -> Step<'a> {
        let mut mu = MapUpdate::new_strict(source, self.legs, enable);
        let st = mu.start(pool);
        self.sub = Some(mu);
        self.after_sub(pool, st)
    }

    /// Handle a sub-machine step: pass sends through, continue on its completion.
    fn after_sub<'a>(&mut self, pool: &mut ClientPool, st: Step<'a>) -> Step<'a> {
        match st {
            Step::Send { .. } => st,
            Step::Done(Err(e)) => Step::Done(Err(e)),
            Step::Done(Ok(())) => {
                self.sub = None;
                self.sub_done(pool)
            }
        }
    }

    /// Pending discards first (§6.6): SEND_DISCARD(m) to every participating leg, then, once
    /// all acknowledged, DISCARD_CLEAR_FLAG(m) to every leg; then the initial spread.
    fn next_discard<'a>(&mut self, pool: &mut ClientPool) -> Step<'a> {
        loop {
            let Some(m) = self.disc.as_slice().get(self.disc_k).copied() else {
                self.phase = LiPhase::InitialSpread;
                let src = self.best.map_or(0, |b| b.0);
                return self.spread(pool, src, false);
            };
            if let Some(slot) = lowest(self.pending) {
                self.pending &= !(1 << slot);
                self.phase = LiPhase::Discard;
                let cmd = if self.disc_clear {
                    Cmd::DiscardClearFlag { member_id: m }
                } else {
                    Cmd::SendDiscard { member_id: m }
                };
                return Step::Send { slot, cmd };
            }
            self.pending = self.legs;
            if !self.disc_clear {
                self.disc_clear = true;
                continue;
            }
            if let Some(md) = pool.md.as_mut() {
                for s in md.srv_md.iter_mut().filter(|s| s.member_id == m) {
                    s.discard_entries = false;
                }
            }
            self.disc_clear = false;
            self.disc_k += 1;
        }
    }

    fn step_to_map<'a>(&mut self) -> Step<'a> {
        self.phase = LiPhase::ToMap;
        let slot = self.order.get(self.k).copied().unwrap_or(0);
        Step::Send { slot, cmd: Cmd::LastIoToMap }
    }

    fn sub_done<'a>(&mut self, _pool: &mut ClientPool) -> Step<'a> {
        match self.phase {
            LiPhase::InitialSpread => self.step_to_map(),
            LiPhase::Spread => {
                if self.k + 1 >= self.n {
                    self.phase = LiPhase::Enable;
                    let slot = self.order.get(self.k).copied().unwrap_or(0);
                    Step::Send { slot, cmd: Cmd::EnablePool { enable: true } }
                } else {
                    self.k += 1;
                    self.step_to_map()
                }
            }
            _ => Step::Done(Err(Error::Inval)),
        }
    }

    fn set_ver<'a>(&mut self, pool: &mut ClientPool) -> Step<'a> {
        match lowest(self.pending) {
            Some(s) => {
                self.pending &= !(1 << s);
                Step::Send { slot: s, cmd: Cmd::MapSetVer { map_ver: self.new_ver } }
            }
            None => {
                pool.set_map_ver(self.new_ver);
                if let Some(md) = pool.md.as_mut() {
                    md.map_ver = self.new_ver;
                }
                Step::Done(Ok(()))
            }
        }
    }

    /// Feed the reply to the last `Send`.
    pub fn on_reply<'a>(&mut self, pool: &mut ClientPool, rsp: &CmdRsp<'a>) -> Step<'a> {
        if let Some(mut sub) = self.sub {
            let st = sub.on_reply(pool, rsp);
            self.sub = Some(sub);
            return self.after_sub(pool, st);
        }
        if rsp.errno != 0 {
            return Step::Done(Err(Error::from_errno(rsp.errno)));
        }
        match self.phase {
            LiPhase::GetVer => {
                let Some(slot) = lowest(self.pending) else {
                    return Step::Done(Err(Error::Inval));
                };
                self.pending &= !(1 << slot);
                let RspBody::MapVer { map_ver } = rsp.body else {
                    return Step::Done(Err(Error::Proto));
                };
                let member = pool.leg(slot).map_or(u32::MAX, |l| l.member_id);
                let v = map_ver & RMR_MAP_VER_MASK;
                self.max_ver = self.max_ver.max(v);
                let better = match self.best {
                    None => true,
                    Some((_, bm)) if pool.bugs.last_io_any_source => member < bm,
                    Some((_, bm)) => v > self.best_ver || (v == self.best_ver && member < bm),
                };
                if better {
                    self.best = Some((slot, member));
                    self.best_ver = v;
                }
                if let Some(next) = lowest(self.pending) {
                    return Step::Send { slot: next, cmd: Cmd::MapGetVer };
                }
                // Order: source first, then ascending member_id.
                let Some((src, _)) = self.best else {
                    return Step::Done(Err(Error::Io));
                };
                let mut others = [(u32::MAX, 0usize); RMR_POOL_MAX_SESS];
                let mut no = 0;
                for s in 0..RMR_POOL_MAX_SESS {
                    if self.legs & (1 << s) != 0 && s != src {
                        if let (Some(o), Some(l)) = (others.get_mut(no), pool.leg(s)) {
                            *o = (l.member_id, s);
                            no += 1;
                        }
                    }
                }
                // Insertion sort: tiny array, and no core sort machinery in the kernel build.
                crate_sort_small(&mut others);
                self.order[0] = src;
                for (i, o) in others.iter().take(no).enumerate() {
                    if let Some(d) = self.order.get_mut(i + 1) {
                        *d = o.1;
                    }
                }
                self.n = no + 1;
                self.new_ver = (self.max_ver + self.n as u64) & RMR_MAP_VER_MASK;
                self.disc = MemberList::new();
                if let Some(md) = pool.md.as_ref() {
                    for s in md.srv_md.iter().filter(|s| s.member_id != 0 && s.discard_entries) {
                        let _ = self.disc.push(s.member_id);
                    }
                }
                self.pending = self.legs;
                self.next_discard(pool)
            }
            LiPhase::Discard => self.next_discard(pool),
            LiPhase::ToMap => {
                // [improvement] X's converted maps get a version above everything before, so
                // if the update dies later, the next one picks the node(s) holding them
                // instead of a node with equal version and older maps (seed 70611).
                self.phase = LiPhase::SetVerX;
                let x = self.order.get(self.k).copied().unwrap_or(0);
                let v = (self.max_ver + 1 + self.k as u64) & RMR_MAP_VER_MASK;
                Step::Send { slot: x, cmd: Cmd::MapSetVer { map_ver: v } }
            }
            LiPhase::SetVerX => {
                self.phase = LiPhase::Spread;
                let x = self.order.get(self.k).copied().unwrap_or(0);
                let last = self.k + 1 >= self.n;
                self.spread(pool, x, last)
            }
            LiPhase::Enable => {
                let x = self.order.get(self.k).copied().unwrap_or(0);
                if pool.set_state(x, LegState::Normal).is_err() {
                    return Step::Done(Err(Error::Io));
                }
                self.phase = LiPhase::SetVer;
                self.pending = self.legs;
                self.set_ver(pool)
            }
            LiPhase::SetVer => self.set_ver(pool),
            LiPhase::InitialSpread | LiPhase::Spread => Step::Done(Err(Error::Inval)),
        }
    }
}
