// SPDX-License-Identifier: GPL-2.0-or-later
//! The join of a new leg (SPEC §6.2 add_sess) as a step machine, driven by the kernel's
//! `add_sess` and by the simulator alike.
//!
//! 1. JOIN_POOL on the new session (it has no leg yet) with the pool's geometry and the
//!    members it knows ([`ClientPool::join_members`]).
//! 2. On the reply: a member that already has a NORMAL leg is a duplicate: LEAVE_POOL on the
//!    new session, ENABLE_POOL(1) to the existing leg (its server went NO_IO on the assemble
//!    join; IO was frozen meanwhile, see [`JoinRun::freezes_io`]), then -EEXIST. Otherwise the
//!    reply's `mapped_size` must match the pool's (non-sync; the first join sets it), the leg
//!    is inserted CREATED, and a create join makes `pool_md` if the pool has none.
//! 3. sync: the leg goes NORMAL at once; done.
//!    create: the client map of the new member is created, fully dirty if some leg is NORMAL
//!    (step 4's `dirty` flag); POOL_INFO(ADD, CREATE, dirty) goes to every other leg not
//!    FAILED/REMOVING, one at a time; a peer that refuses or cannot be reached is failed.
//!    assemble: MD_SEND on the new session; `pool_md` is adopted (the first) or merged (members
//!    united, the newer `map_ver` kept); a map for every listed member; POOL_INFO(ADD,
//!    ASSEMBLE) to the peers; the leg goes RECONNECTING and the caller runs try-enable.
//! 4. A failure after the leg was inserted (MD_SEND, a map allocation, a malformed reply)
//!    undoes the join: the leg, the `pool_md` entry and the map it added are dropped, and
//!    LEAVE_POOL goes to the new session. The pool is then as it was before.
//!
//! The new leg is addressed through the joining session until the run is done, so the shell
//! installs its own leg object only on `Done(Ok(slot))`, under the same lock as that step.

use super::client::{ClientPool, LegMask, LegState};
use super::dirtymap::{MapSet, MapStorage};
use super::error::{Error, Result};
use super::wire::{Cmd, CmdRsp, InfoOp, JoinBody, PoolMd, PoolName, RspBody, SrvMd};

/// Which join `add_sess` asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinMode {
    /// `mode=create`: a new member of the pool.
    Create,
    /// `mode=assemble`: an existing member after a disassemble or a client restart.
    Assemble,
    /// A leg of a sync pool (storage node to storage node).
    Sync,
}

/// The pool's parameters a join needs (the `join_pool` arguments of the client pool).
#[derive(Clone, Copy, Debug)]
pub struct JoinParams {
    /// The join asked for.
    pub mode: JoinMode,
    /// Chunk size in bytes.
    pub chunk_size: u32,
    /// IO units of the pool.
    pub queue_depth: u16,
    /// Pool name (for a `pool_md` made by the first create join).
    pub name: PoolName,
    /// The pool's group id.
    pub group_id: u32,
}

/// What the caller does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinStep<'a> {
    /// Send `cmd` on the joining session and feed the reply (an error reply on a transport
    /// failure) to [`JoinRun::on_reply`].
    SendNew(Cmd<'a>),
    /// Send `cmd` on leg `slot` and feed the reply to [`JoinRun::on_reply`].
    Send {
        /// Leg slot.
        slot: usize,
        /// Command.
        cmd: Cmd<'a>,
    },
    /// Finished: the new leg's slot, or why the join was refused (the pool is unchanged but
    /// for peers failed by a refused POOL_INFO).
    Done(Result<usize>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Join,
    /// LEAVE_POOL sent on the new session of a duplicate; next ENABLE_POOL(1) to `other`.
    DupLeave { other: usize },
    /// ENABLE_POOL(1) sent to the existing leg of a duplicate.
    DupEnable,
    /// LEAVE_POOL sent to undo the join; then done with the error.
    Undo(Error),
    /// MD_SEND sent (assemble).
    Md,
    /// POOL_INFO sent to `cur`; `rest` still to go.
    Info { cur: usize, rest: LegMask, op: InfoOp, dirty: bool },
    Done,
}

/// One join in progress.
#[derive(Clone, Copy, Debug)]
pub struct JoinRun {
    p: JoinParams,
    phase: Phase,
    freeze: bool,
    slot: Option<usize>,
    member: u32,
    /// What the join added and an undo removes.
    added_md_member: bool,
    added_map: bool,
    failed_peers: LegMask,
    dup_enable_failed: bool,
}

impl JoinRun {
    /// A join of a new leg into `pool`; -EINVAL if the mode does not suit the pool (sync
    /// pools take only sync joins).
    pub fn new(pool: &ClientPool, p: JoinParams) -> Result<JoinRun> {
        if (p.mode == JoinMode::Sync) != pool.sync {
            return Err(Error::Inval);
        }
        Ok(JoinRun {
            p,
            phase: Phase::Join,
            freeze: pool.join_freezes_io(p.mode == JoinMode::Create),
            slot: None,
            member: 0,
            added_md_member: false,
            added_map: false,
            failed_peers: 0,
            dup_enable_failed: false,
        })
    }

    /// Whether the caller freezes IO and drains it before [`Self::start`] and thaws it when
    /// the run is done: an assemble join turns a NORMAL server NO_IO (§4.3) before its reply
    /// says which member it is, so if that member already has a NORMAL leg here no IO may
    /// reach it in between.
    pub fn freezes_io(&self) -> bool {
        self.freeze
    }

    /// The first command: JOIN_POOL on the new session.
    pub fn start(&mut self, pool: &ClientPool) -> JoinStep<'static> {
        let body = JoinBody {
            chunk_size: self.p.chunk_size,
            queue_depth: self.p.queue_depth,
            create: self.p.mode == JoinMode::Create,
            sync: pool.sync,
            members: pool.join_members(),
        };
        JoinStep::SendNew(Cmd::JoinPool(body))
    }

    /// The new leg's slot once the join reply inserted it (also while the run goes on).
    pub fn slot(&self) -> Option<usize> {
        self.slot
    }

    /// The member id the server answered (0 before the join reply).
    pub fn member(&self) -> u32 {
        self.member
    }

    /// Peers failed because they refused or missed POOL_INFO(ADD, CREATE).
    pub fn failed_peers(&self) -> LegMask {
        self.failed_peers
    }

    /// A duplicate's existing leg did not take ENABLE_POOL(1) back (it stays NORMAL here
    /// while its server is NO_IO; its next IO fails it and recovery takes over).
    pub fn dup_enable_failed(&self) -> bool {
        self.dup_enable_failed
    }

    /// Whether the caller runs try-enable after a successful join (assemble).
    pub fn wants_try_enable(&self) -> bool {
        self.p.mode == JoinMode::Assemble
    }

    /// The reply to the last command sent (an error reply for a transport failure). `now`
    /// stamps a map made fully dirty.
    pub fn on_reply<S: MapStorage + Default>(
        &mut self,
        pool: &mut ClientPool,
        maps: &mut MapSet<S>,
        rsp: &CmdRsp<'_>,
        now: u64,
    ) -> JoinStep<'static> {
        match self.phase {
            Phase::Join => self.on_join(pool, maps, rsp, now),
            Phase::DupLeave { other } => {
                self.phase = Phase::DupEnable;
                JoinStep::Send { slot: other, cmd: Cmd::EnablePool { enable: true } }
            }
            Phase::DupEnable => {
                self.dup_enable_failed = rsp.errno != 0;
                self.done(Err(Error::Exist))
            }
            Phase::Undo(e) => self.done(Err(e)),
            Phase::Md => match (rsp.errno, &rsp.body) {
                (0, RspBody::Md(md)) => self.on_md(pool, maps, md),
                (0, _) => self.undo(pool, maps, Error::Proto),
                (e, _) => self.undo(pool, maps, Error::from_errno(e)),
            },
            Phase::Info { cur, rest, op, dirty } => {
                if rsp.errno != 0 && op == InfoOp::AddCreate {
                    // The peer would miss the new member's map: it cannot serve IO for it.
                    pool.fail_leg(cur);
                    self.failed_peers |= 1 << cur;
                }
                self.next_info(pool, rest, op, dirty)
            }
            Phase::Done => JoinStep::Done(Err(Error::Inval)),
        }
    }

    fn done(&mut self, r: Result<usize>) -> JoinStep<'static> {
        self.phase = Phase::Done;
        JoinStep::Done(r)
    }

    fn on_join<S: MapStorage + Default>(
        &mut self,
        pool: &mut ClientPool,
        maps: &mut MapSet<S>,
        rsp: &CmdRsp<'_>,
        now: u64,
    ) -> JoinStep<'static> {
        let (member, mapped) = match (rsp.errno, &rsp.body) {
            (0, RspBody::Join { member_id, mapped_size, .. }) => (*member_id, *mapped_size),
            (0, _) => return self.leave(Error::Proto),
            (e, _) => return self.done(Err(Error::from_errno(e))),
        };
        self.member = member;
        if let Some(other) = pool.duplicate_normal(member) {
            self.phase = Phase::DupLeave { other };
            return JoinStep::SendNew(Cmd::LeavePool { delete: false });
        }
        if !pool.sync && pool.mapped_size != 0 && mapped != pool.mapped_size {
            return self.leave(Error::Inval);
        }
        let known = pool.md.as_ref().is_some_and(|md| md.members().contains(member));
        let slot = match pool.add_leg(member, pool.sync) {
            Ok(s) => s,
            Err(e) => return self.leave(e),
        };
        self.slot = Some(slot);
        self.added_md_member = !pool.sync && !known && pool.md.is_some();
        if pool.sync {
            return match pool.set_state(slot, LegState::Normal) {
                Ok(_) => self.done(Ok(slot)),
                Err(e) => self.undo(pool, maps, e),
            };
        }
        if pool.mapped_size == 0 {
            pool.mapped_size = mapped;
            pool.total_chunks = mapped.saturating_mul(512).div_ceil(u64::from(self.p.chunk_size.max(1)));
        }
        match self.p.mode {
            JoinMode::Create => {
                if pool.md.is_none() {
                    let mut md = PoolMd {
                        name: self.p.name,
                        group_id: self.p.group_id,
                        chunk_size: self.p.chunk_size,
                        mapped_size: pool.mapped_size,
                        queue_depth: self.p.queue_depth,
                        map_ver: 0,
                        srv_md: [SrvMd::default(); 4],
                    };
                    if let Err(e) = md.add_member(member) {
                        return self.undo(pool, maps, e);
                    }
                    pool.md = Some(md);
                    self.added_md_member = true;
                }
                let dirty = pool.pool_info_dirty();
                self.added_map = maps.get(member).is_none();
                let total = pool.total_chunks;
                let made = maps.ensure(member, total).and_then(|m| if dirty { m.set_all(now) } else { Ok(()) });
                if let Err(e) = made {
                    return self.undo(pool, maps, e);
                }
                let targets = pool.pool_info_targets(slot);
                self.next_info(pool, targets, InfoOp::AddCreate, dirty)
            }
            JoinMode::Assemble | JoinMode::Sync => {
                self.phase = Phase::Md;
                JoinStep::SendNew(Cmd::MdSend)
            }
        }
    }

    fn on_md<S: MapStorage + Default>(
        &mut self,
        pool: &mut ClientPool,
        maps: &mut MapSet<S>,
        md: &PoolMd,
    ) -> JoinStep<'static> {
        match pool.md.as_mut() {
            None => {
                pool.md = Some(*md);
                pool.set_map_ver(md.map_ver);
            }
            Some(cur) => {
                for m in md.members().iter() {
                    if cur.add_member(m).is_err() {
                        return self.undo(pool, maps, Error::NoSpc);
                    }
                }
                if super::client::map_ver_newer(md.map_ver, pool.map_ver()) {
                    pool.set_map_ver(md.map_ver);
                }
            }
        }
        let total = pool.total_chunks;
        for m in md.members().iter() {
            if let Err(e) = maps.ensure(m, total) {
                return self.undo(pool, maps, e);
            }
        }
        let Some(slot) = self.slot else { return self.done(Err(Error::Inval)) };
        let targets = pool.pool_info_targets(slot);
        self.next_info(pool, targets, InfoOp::AddAssemble, false)
    }

    /// POOL_INFO to the lowest remaining target, or the end of the join.
    fn next_info(&mut self, pool: &mut ClientPool, rest: LegMask, op: InfoOp, dirty: bool) -> JoinStep<'static> {
        // A target may have failed meanwhile (link down): §6.2 step 4 skips FAILED legs.
        let live = rest
            & pool
                .legs()
                .filter(|(_, l)| !matches!(l.state, LegState::Failed | LegState::Removing))
                .fold(0, |m, (i, _)| m | (1 << i));
        if live != 0 {
            let cur = live.trailing_zeros() as usize;
            self.phase = Phase::Info { cur, rest: live & !(1 << cur), op, dirty };
            return JoinStep::Send { slot: cur, cmd: Cmd::PoolInfo { member_id: self.member, op, dirty } };
        }
        let Some(slot) = self.slot else { return self.done(Err(Error::Inval)) };
        if op == InfoOp::AddAssemble && pool.leg(slot).is_some_and(|l| l.state == LegState::Created) {
            // A leg whose transport failed meanwhile stays FAILED and rejoins later.
            if let Err(e) = pool.set_state(slot, LegState::Reconnecting) {
                return self.done(Err(e));
            }
        }
        self.done(Ok(slot))
    }

    /// Refuse before a leg was inserted: LEAVE_POOL on the new session, then the error.
    fn leave(&mut self, e: Error) -> JoinStep<'static> {
        self.phase = Phase::Undo(e);
        JoinStep::SendNew(Cmd::LeavePool { delete: false })
    }

    /// Undo an inserted leg (§6.2 step 3 failed later), then [`Self::leave`].
    fn undo<S: MapStorage + Default>(&mut self, pool: &mut ClientPool, maps: &mut MapSet<S>, e: Error) -> JoinStep<'static> {
        if let Some(slot) = self.slot.take() {
            pool.drop_new_leg(slot);
            if self.added_map {
                maps.remove(self.member);
            }
            if self.added_md_member {
                if let Some(md) = pool.md.as_mut() {
                    md.remove_member(self.member);
                }
            }
        }
        self.leave(e)
    }
}

#[cfg(test)]
mod tests;
