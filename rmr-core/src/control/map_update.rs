// SPDX-License-Identifier: GPL-2.0-or-later
//! The map update (§6.5) as a step machine: [`MapUpdate`].

use super::*;

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
