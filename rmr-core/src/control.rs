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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MuPhase {
    Ready,
    Send,
    Buf,
    BufDone,
    Resolve,
    Done,
    Disable,
}

/// `rmr_clt_spread_map(source, receivers, enable)` as a step machine (§6.5).
#[derive(Clone, Copy, Debug)]
pub struct MapUpdate {
    /// Source slot.
    pub source: usize,
    receivers: LegMask,
    enable: bool,
    cur: usize,
    phase: MuPhase,
    cursor: u64,
    end: bool,
    map_ver: u64,
    members: MemberList,
    err: Option<Error>,
    strict: bool,
    /// The current receiver's own map grew by its suspects: install with enable=0, then
    /// spread it back.
    grew: bool,
    /// Receivers whose suspects already changed their map once in this update.
    grown: LegMask,
    /// ... and twice (a chunk handed over to witnesses that lost it too, then taken back).
    grown2: LegMask,
    /// While a grown receiver's maps are spread back to the NORMAL legs: the original
    /// (source, remaining receivers) and the grown receiver, which gets the update again.
    back: Option<(usize, LegMask, usize)>,
}

impl MapUpdate {
    /// Spread `source`'s maps to `receivers` (slots), `enable` → receivers go NORMAL.
    pub fn new(source: usize, receivers: LegMask, enable: bool) -> Self {
        MapUpdate {
            source,
            receivers: receivers & !(1 << source),
            enable,
            cur: RMR_POOL_MAX_SESS,
            phase: MuPhase::Ready,
            cursor: 0,
            end: false,
            map_ver: 0,
            members: MemberList::new(),
            err: None,
            strict: false,
            grew: false,
            grown: 0,
            grown2: 0,
            back: None,
        }
    }

    /// As `new`, but a receiver that is not eligible (failed meanwhile) fails the update
    /// instead of being skipped: the last-IO update must reach every member (seed 48960).
    pub fn new_strict(source: usize, receivers: LegMask, enable: bool) -> Self {
        MapUpdate { strict: true, ..Self::new(source, receivers, enable) }
    }

    fn eligible(&self, pool: &ClientPool, slot: usize) -> bool {
        pool.leg(slot).is_some_and(|l| {
            !l.maintenance
                && !l.sync
                && if self.enable {
                    matches!(l.state, LegState::Reconnecting | LegState::Created)
                } else {
                    matches!(l.state, LegState::Reconnecting | LegState::Created | LegState::Normal)
                }
        })
    }

    fn next_receiver<'a>(&mut self, pool: &ClientPool) -> Step<'a> {
        loop {
            if let Some(st) = self.next_receiver_once(pool) {
                return st;
            }
            // Spread-back finished: resume the original update, the grown receiver first
            // (its maps now match the NORMAL legs', so it does not grow again).
            let Some((source, receivers, r)) = self.back.take() else {
                return Step::Done(Ok(()));
            };
            self.source = source;
            self.receivers = receivers | (1 << r);
            self.enable = true;
        }
    }

    fn next_receiver_once<'a>(&mut self, pool: &ClientPool) -> Option<Step<'a>> {
        while let Some(r) = lowest(self.receivers) {
            self.receivers &= !(1 << r);
            if !self.eligible(pool, r) && self.strict {
                return Some(Step::Done(Err(Error::Io)));
            }
            if self.eligible(pool, r) {
                self.cur = r;
                self.phase = MuPhase::Ready;
                self.cursor = 0;
                self.end = false;
                return Some(Step::Send { slot: r, cmd: Cmd::MapReady });
            }
        }
        None
    }

    /// First step.
    pub fn start<'a>(&mut self, pool: &ClientPool) -> Step<'a> {
        if !pool.leg(self.source).is_some_and(|l| {
            matches!(l.state, LegState::Normal | LegState::Reconnecting | LegState::Created)
        }) {
            return Step::Done(Err(Error::Io));
        }
        self.next_receiver(pool)
    }

    fn receiver_member(&self, pool: &ClientPool) -> u32 {
        pool.leg(self.cur).map_or(0, |l| l.member_id)
    }

    fn ask_source<'a>(&mut self, pool: &ClientPool) -> Step<'a> {
        self.phase = MuPhase::Send;
        let receiver = self.receiver_member(pool);
        if receiver == 0 {
            return self.fail(Error::NoEnt);
        }
        Step::Send { slot: self.source, cmd: Cmd::MapSend { receiver, cursor: self.cursor } }
    }

    fn map_done<'a>(&mut self, enable: bool) -> Step<'a> {
        self.phase = MuPhase::Done;
        Step::Send { slot: self.cur, cmd: Cmd::MapDone { enable, map_ver: self.map_ver } }
    }

    fn fail<'a>(&mut self, e: Error) -> Step<'a> {
        self.err = Some(e);
        self.phase = MuPhase::Disable;
        Step::Send { slot: self.cur, cmd: Cmd::MapDisable }
    }

    /// Feed the reply to the last `Send`.
    pub fn on_reply<'a>(&mut self, pool: &mut ClientPool, rsp: &CmdRsp<'a>) -> Step<'a> {
        if self.phase == MuPhase::Disable {
            return Step::Done(Err(self.err.unwrap_or(Error::Io)));
        }
        if rsp.errno != 0 {
            return self.fail(Error::from_errno(rsp.errno));
        }
        match self.phase {
            MuPhase::Ready => self.ask_source(pool),
            MuPhase::Send => {
                let RspBody::MapSend { map_ver, next_cursor, end, members, piece } = rsp.body else {
                    return self.fail(Error::Proto);
                };
                self.map_ver = map_ver;
                self.members = members;
                self.cursor = next_cursor;
                self.end = end;
                match piece {
                    Some(p) => {
                        self.phase = MuPhase::Buf;
                        Step::Send { slot: self.cur, cmd: Cmd::SendMapBuf(p) }
                    }
                    None if end => {
                        self.phase = MuPhase::BufDone;
                        Step::Send { slot: self.cur, cmd: Cmd::MapBufDone { members } }
                    }
                    None => self.ask_source(pool),
                }
            }
            MuPhase::Buf => {
                if self.end {
                    self.phase = MuPhase::BufDone;
                    Step::Send { slot: self.cur, cmd: Cmd::MapBufDone { members: self.members } }
                } else {
                    self.ask_source(pool)
                }
            }
            MuPhase::BufDone if self.enable => {
                // [improvement] Before a receiver serves, it turns what it may have lost in a
                // power loss into own-map bits (against the maps it just received).
                self.phase = MuPhase::Resolve;
                Step::Send { slot: self.cur, cmd: Cmd::SuspectToMap }
            }
            MuPhase::BufDone => self.map_done(false),
            MuPhase::Resolve => {
                let RspBody::Bool(grew) = rsp.body else {
                    return self.fail(Error::Proto);
                };
                if !grew {
                    return self.map_done(true);
                }
                if self.grown2 & (1 << self.cur) != 0 {
                    // Changed a third time after its maps were spread back: a NORMAL leg
                    // missed the spread-back. Give up; try-enable runs again later.
                    return self.fail(Error::Io);
                }
                if self.grown & (1 << self.cur) != 0 {
                    self.grown2 |= 1 << self.cur;
                }
                self.grown |= 1 << self.cur;
                self.grew = true;
                self.map_done(false)
            }
            MuPhase::Done => {
                if self.grew {
                    // The NORMAL legs must learn the receiver's new own bits before it serves:
                    // spread its maps to them (enable=0; IO is frozen), then update it again.
                    self.grew = false;
                    let r = self.cur;
                    self.back = Some((self.source, self.receivers, r));
                    self.source = r;
                    self.receivers = pool.mask(LegState::Normal) & !(1 << r);
                    self.enable = false;
                    return self.next_receiver(pool);
                }
                if self.enable && pool.set_state(self.cur, LegState::Normal).is_err() {
                    return Step::Done(Err(Error::Io));
                }
                self.next_receiver(pool)
            }
            MuPhase::Disable => Step::Done(Err(self.err.unwrap_or(Error::Io))),
        }
    }
}

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

#[derive(Clone, Copy, Debug)]
enum TeSub {
    Idle,
    Spread(MapUpdate),
    /// Case 2, first: the authoritative node resolves its suspects on its own maps.
    AuthResolve(usize),
    Auth(usize),
    /// Case 2, after ENABLE_POOL(1): MAP_ADD every client-map bit of the other members.
    AuthAdd { slot: usize, member: u32, next: u64 },
    LastIo(LastIoUpdate),
}

/// Try-enable (§6.7) as a step machine. Create it with [`TryEnableRun::new`] (which freezes IO
/// when there is work), wait until `pool.inflight == 0`, then `start`. IO is unfrozen when it
/// returns `Done`.
#[derive(Clone, Copy, Debug)]
pub struct TryEnableRun {
    sub: TeSub,
    rounds: u32,
}

impl TryEnableRun {
    /// None if try-enable has nothing to do. Otherwise IO is frozen.
    pub fn new(pool: &mut ClientPool) -> Option<Self> {
        if pool.try_enable() == TryEnable::Nothing {
            return None;
        }
        pool.frozen = true;
        Some(TryEnableRun { sub: TeSub::Idle, rounds: 0 })
    }

    /// The decision currently executed (for traces).
    pub fn case(&self) -> u8 {
        match self.sub {
            TeSub::Idle => 0,
            TeSub::Spread(_) => 1,
            TeSub::AuthResolve(_) | TeSub::Auth(_) | TeSub::AuthAdd { .. } => 2,
            TeSub::LastIo(_) => 3,
        }
    }

    /// Decide and take the first step (also used after each completed case).
    pub fn start<'a, S: MapStorage + Default>(
        &mut self,
        pool: &mut ClientPool,
        maps: &MapSet<S>,
    ) -> Step<'a> {
        self.rounds = self.rounds.saturating_add(1);
        if self.rounds > 8 {
            return self.finish(pool, Err(Error::Inval));
        }
        match pool.try_enable() {
            TryEnable::Nothing => self.finish(pool, Ok(())),
            TryEnable::Spread { source, receivers } => {
                let mut mu = MapUpdate::new(source, receivers, true);
                let st = mu.start(pool);
                self.sub = TeSub::Spread(mu);
                self.after(pool, maps, st)
            }
            TryEnable::EnableAuthoritative { slot } => {
                // [improvement] Its suspects first (no NORMAL leg needs to learn them: the
                // others get its maps by case 1), so the client-map pushes below skip them.
                self.sub = TeSub::AuthResolve(slot);
                Step::Send { slot, cmd: Cmd::SuspectToMap }
            }
            TryEnable::LastIo { legs } => {
                let mut li = LastIoUpdate::new(legs);
                let st = li.start(pool);
                self.sub = TeSub::LastIo(li);
                self.after(pool, maps, st)
            }
        }
    }

    fn finish<'a>(&mut self, pool: &mut ClientPool, r: Result<()>) -> Step<'a> {
        pool.frozen = false;
        self.sub = TeSub::Idle;
        Step::Done(r)
    }

    fn after<'a, S: MapStorage + Default>(
        &mut self,
        pool: &mut ClientPool,
        maps: &MapSet<S>,
        st: Step<'a>,
    ) -> Step<'a> {
        match st {
            Step::Send { .. } => st,
            Step::Done(Ok(())) => {
                self.sub = TeSub::Idle;
                self.start(pool, maps)
            }
            Step::Done(Err(e)) => self.finish(pool, Err(e)),
        }
    }

    /// Case 2 [improvement]: the authoritative node A may lack the record of a write whose
    /// map-add failed when the last legs went down (the write failed with -EIO but landed on
    /// some nodes and not on others). Such writes were never acknowledged, so A's copy may win:
    /// for every chunk dirty in any client map (A's own included), mark it dirty for every
    /// other member on A (MAP_ADD with `recovery`; A skips a chunk it misses itself). A never
    /// gets its own bit set, so no chunk becomes dirty for every member. Acknowledged writes
    /// are all on A: it was NORMAL until the last failure. Returns the next MAP_ADD or None.
    fn next_auth_add<'a, S: MapStorage + Default>(
        &mut self,
        pool: &ClientPool,
        maps: &MapSet<S>,
        slot: usize,
        mut member: u32,
        mut next: u64,
    ) -> Option<Step<'a>> {
        let own = pool.leg(slot).map_or(0, |l| l.member_id);
        let mut members = maps.members();
        if let Some(md) = pool.md.as_ref() {
            for m in md.members().iter() {
                let _ = members.push(m);
            }
        }
        loop {
            let c = maps.iter().filter_map(|m| m.next_dirty(next)).min()?;
            if let Some(m) = members.iter().filter(|m| *m != own && *m >= member).min() {
                self.sub = TeSub::AuthAdd { slot, member: m.saturating_add(1), next: c };
                return Some(Step::Send {
                    slot,
                    cmd: Cmd::MapAdd { chunk: c, member_id: m, map_ver: pool.map_ver(), recovery: true },
                });
            }
            next = c.checked_add(1)?;
            member = 0;
        }
    }

    /// Feed the reply to the last `Send`. `maps` are the client maps.
    pub fn on_reply<'a, S: MapStorage + Default>(
        &mut self,
        pool: &mut ClientPool,
        maps: &MapSet<S>,
        rsp: &CmdRsp<'a>,
    ) -> Step<'a> {
        match self.sub {
            TeSub::Idle => self.finish(pool, Err(Error::Inval)),
            TeSub::AuthResolve(slot) => {
                if rsp.errno != 0 {
                    return self.finish(pool, Err(Error::from_errno(rsp.errno)));
                }
                if let Some(st) = self.next_auth_add(pool, maps, slot, 0, 0) {
                    return st;
                }
                self.sub = TeSub::Auth(slot);
                Step::Send { slot, cmd: Cmd::EnablePool { enable: true } }
            }
            TeSub::AuthAdd { slot, member, next } => {
                if rsp.errno != 0 {
                    return self.finish(pool, Err(Error::from_errno(rsp.errno)));
                }
                if let Some(st) = self.next_auth_add(pool, maps, slot, member, next) {
                    return st;
                }
                self.sub = TeSub::Auth(slot);
                Step::Send { slot, cmd: Cmd::EnablePool { enable: true } }
            }
            TeSub::Spread(mut mu) => {
                let st = mu.on_reply(pool, rsp);
                self.sub = TeSub::Spread(mu);
                self.after(pool, maps, st)
            }
            TeSub::LastIo(mut li) => {
                let st = li.on_reply(pool, rsp);
                self.sub = TeSub::LastIo(li);
                self.after(pool, maps, st)
            }
            TeSub::Auth(slot) => {
                if rsp.errno != 0 {
                    return self.finish(pool, Err(Error::from_errno(rsp.errno)));
                }
                if let Err(e) = pool.set_state(slot, LegState::Normal) {
                    return self.finish(pool, Err(e));
                }
                self.after(pool, maps, Step::Done(Ok(())))
            }
        }
    }
}

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
