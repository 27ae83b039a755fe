// SPDX-License-Identifier: GPL-2.0-or-later
//! Try-enable (§6.7) as a step machine: [`TryEnableRun`].

use super::*;

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
