// SPDX-License-Identifier: GPL-2.0-or-later
//! The IO path of a client pool (SPEC §5.1, §5.2): write routing with piggybacking, the
//! replies of every leg, the MAP_ADD round, reads and their failover.

use super::*;

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

/// How the leg a read went to answered ([`ClientPool::on_read_reply`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Served.
    Ok,
    /// -ENODATA ([`super::super::server::SYNC_NO_SOURCE`]): the node's copy of the chunk is stale
    /// and it found no peer to sync it from (e.g. its sync link is down). The leg is fine
    /// for every other chunk: it stays NORMAL.
    NotHere,
    /// Any other error: the leg failed.
    Failed,
}

impl ReadOutcome {
    /// The outcome of a reply with `errno` (0 or negative).
    pub fn from_errno(errno: i32) -> ReadOutcome {
        if errno == 0 {
            ReadOutcome::Ok
        } else if errno == super::super::server::SYNC_NO_SOURCE.to_kernel() {
            ReadOutcome::NotHere
        } else {
            ReadOutcome::Failed
        }
    }
}

/// Next step of a read after its leg answered ([`ClientPool::on_read_reply`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadStep {
    /// Served: complete the read.
    Done,
    /// Route the read again with [`ClientPool::plan_read_excluding`], excluding the legs
    /// tried so far (the one that answered included).
    Retry,
    /// No NORMAL leg is left that was not tried: complete the read with -EIO.
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
    pub(super) pending: LegMask,
    pub(super) ok: LegMask,
    pub(super) failed: MemberList,
    pub(super) map_add_pending: LegMask,
    pub(super) map_add_ok: LegMask,
    pub(super) in_map_add: bool,
    /// MAP_ADD replies still awaited per leg (one per member in `failed`).
    pub(super) map_add_left: [u8; RMR_POOL_MAX_SESS],
}

impl ClientPool {
    /// A read routed to `slot` may still be sent (the leg is NORMAL and IO is not frozen).
    pub fn read_still_routable(&self, slot: usize) -> bool {
        !self.frozen && self.leg(slot).is_some_and(|l| l.state == LegState::Normal)
    }

    /// Members to piggyback on a write (§5.1, §6.3): every member of `pool_md` and every
    /// non-sync leg's member, except those with a NORMAL leg. So the dirt of a member keeps
    /// accumulating on its peers while its leg is FAILED, RECONNECTING or REMOVING, and while
    /// it has no leg at all (disassembled, or not assembled yet after a client restart): its
    /// return then resyncs everything it missed. A member deleted from `pool_md` is not
    /// piggybacked once the deletion took it out (its peers drop its map).
    pub fn piggyback(&self) -> MemberList {
        let mut l = MemberList::new();
        let in_md = |m: u32| self.md.as_ref().is_some_and(|md| md.members().contains(m));
        for (_, leg) in self.legs().filter(|(_, l)| !l.sync) {
            let skip = match leg.state {
                LegState::Normal => true,
                LegState::Removing => !in_md(leg.member_id),
                LegState::Reconnecting => self.bugs.no_piggyback_reconnecting,
                _ => false,
            };
            if !skip && !l.contains(leg.member_id) {
                let _ = l.push(leg.member_id);
            }
        }
        if let Some(md) = self.md.as_ref() {
            for m in md.members().iter() {
                if self.slot_of(m).is_none() && !l.contains(m) {
                    let _ = l.push(m);
                }
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

    /// Route a read (§5.2) among the NORMAL legs by [`ClientPool::read_policy`]: the next one
    /// round robin, or [improvement] the one with the fewest reads in flight (round robin
    /// among equals). -EBUSY while frozen, -EIO if none. The shell calls
    /// [`Self::read_started`] once the read is really sent.
    pub fn plan_read(&mut self) -> Result<usize> {
        self.plan_read_excluding(0)
    }

    /// [`Self::plan_read`] among the NORMAL legs not in `tried` (a retried read skips the
    /// legs that answered it already). -EIO if none is left.
    pub fn plan_read_excluding(&mut self, tried: LegMask) -> Result<usize> {
        if self.frozen {
            return Err(Error::Busy);
        }
        let mut best: Option<(usize, u32)> = None;
        for k in 0..RMR_POOL_MAX_SESS {
            let slot = (self.rr + k) % RMR_POOL_MAX_SESS;
            if tried & (1 << slot) != 0 || !self.leg(slot).is_some_and(|l| l.state == LegState::Normal) {
                continue;
            }
            let pending = match self.read_policy {
                ReadPolicy::RoundRobin => 0,
                ReadPolicy::LeastPending => self.reads_pending.get(slot).copied().unwrap_or(0),
            };
            if best.is_none_or(|(_, p)| pending < p) {
                best = Some((slot, pending));
            }
        }
        let (slot, _) = best.ok_or(Error::Io)?;
        self.rr = (slot + 1) % RMR_POOL_MAX_SESS;
        Ok(slot)
    }

    /// A read planned on `slot` was sent: it is in flight until `on_read_reply(slot, ..)`.
    pub fn read_started(&mut self, slot: usize) {
        if let Some(p) = self.reads_pending.get_mut(slot) {
            *p = p.saturating_add(1);
        }
    }

    /// Reads in flight on `slot`.
    pub fn reads_pending(&self, slot: usize) -> u32 {
        self.reads_pending.get(slot).copied().unwrap_or(0)
    }

    /// A read failed on `slot`: the leg goes FAILED; retry with [`Self::plan_read`].
    pub fn read_failed(&mut self, slot: usize) -> Option<Transition> {
        self.fail_leg(slot)
    }

    /// The answer of the leg `slot` a read went to (§5.2), `tried` the legs that answered it
    /// before. Served; or the leg fails ([`ReadOutcome::Failed`]), or [improvement] stays
    /// NORMAL because only this chunk is stale there ([`ReadOutcome::NotHere`]); either way
    /// the read is routed again ([`ClientPool::plan_read_excluding`] with `tried` and `slot`)
    /// while a NORMAL leg is left that was not tried, else it fails with -EIO. `inflight` is
    /// not touched: [`ClientPool::plan_read`] does not count reads, a shell that drains reads
    /// too counts them itself. Returns the leg's transition, if any, for the log.
    pub fn on_read_reply(&mut self, slot: usize, outcome: ReadOutcome, tried: LegMask) -> (ReadStep, Option<Transition>) {
        if let Some(p) = self.reads_pending.get_mut(slot) {
            *p = p.saturating_sub(1);
        }
        let t = match outcome {
            ReadOutcome::Ok => return (ReadStep::Done, None),
            ReadOutcome::NotHere => None,
            ReadOutcome::Failed => self.read_failed(slot),
        };
        let untried = self.mask(LegState::Normal) & !tried & !(1u8 << (slot % RMR_POOL_MAX_SESS));
        let step = if untried == 0 { ReadStep::Fail } else { ReadStep::Retry };
        (step, t)
    }

    /// A write finished (after `Done`): drop it from the in-flight count.
    pub fn io_finished(&mut self) {
        self.inflight = self.inflight.saturating_sub(1);
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
    pub(super) fn on_map_add_reply<S: MapStorage + Default>(
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
