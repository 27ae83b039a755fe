// SPDX-License-Identifier: GPL-2.0-or-later
//! The simulated client's control operations, one at a time (the `clt_pool_lock`): join,
//! admit, rejoin, try-enable, the recovery tick; each drives the core's step machines.

use super::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum BCmd {
    StoreCheck,
    SendMd(PoolMd),
    Maint(bool),
}

pub(super) enum Op {
    /// Try-enable; `started` once IO drained.
    Te { run: TryEnableRun, started: bool },
    /// Independent commands, one at a time.
    Batch { items: VecDeque<(usize, BCmd)>, cur: Option<(usize, BCmd)> },
    /// add_sess: the core's [`JoinRun`] on server `srv`; `started` once IO drained (an
    /// assemble join next to a NORMAL leg freezes IO), then enable (create) or try-enable.
    Join { srv: usize, run: JoinRun, started: bool },
    /// `enable`=1 on a CREATED leg.
    Admit { slot: usize, mu: Option<rmr_core::control::MapUpdate> },
    /// `del_sess mode=disassemble` of the leg to server `srv` (the core's [`RemoveRun`]);
    /// `started` once IO drained.
    Remove { srv: usize, slot: usize, run: RemoveRun, started: bool },
    /// REJOIN_POOL of a FAILED leg whose link is back (the kernel's `rejoin_leg`).
    Rejoin { slot: usize, run: RejoinRun },
}

impl Sim {
    pub(super) fn op_send(&mut self, slot: usize, cmd: &Cmd<'_>) {
        let srv = match self.client.as_ref() {
            Some(c) if slot < 4 => c.slot_srv[slot],
            _ => usize::MAX,
        };
        self.op_send_at(slot, srv, cmd, false);
    }

    pub(super) fn op_send_to_srv(&mut self, srv: usize, cmd: &Cmd<'_>) {
        self.op_send_at(usize::MAX, srv, cmd, false);
    }

    /// Sends the control command `cmd` to server `srv` (leg `slot`, `usize::MAX` for a join
    /// before its slot exists).
    fn op_send_at(&mut self, slot: usize, srv: usize, cmd: &Cmd<'_>, resent: bool) {
        let tag = self.tag();
        let Some(c) = self.client.as_mut() else { return };
        c.op_tag = tag;
        c.op_wait = Some(slot);
        c.op_srv = Some(srv);
        c.op_cmd = cmd.to_static().map(|k| (slot, srv, k, resent));
        if slot < 4 {
            self.log(format!("ctl -> slot {slot} {:?}", cmd_brief(cmd)));
        } else {
            self.log(format!("ctl -> srv {srv} {:?}", cmd_brief(cmd)));
        }
        let bytes = Sim::cmd_bytes(cmd, tag);
        if srv == usize::MAX || !self.send(CLIENT, srv + 1, bytes, 0, tag) {
            self.local.push_back(Packet { from: srv.wrapping_add(1), to: CLIENT, bytes: Vec::new(), data: 0, tag });
        }
    }

    /// The client gave up waiting for the control command in flight (`cmd_timeout_ms`): the
    /// core decides whether it is sent once more; else the step machine gets -ETIMEDOUT.
    pub(super) fn op_timed_out(&mut self, slot: usize) {
        let Some(c) = self.client.as_mut() else { return };
        let etimedout = Errno::ETIMEDOUT.to_kernel();
        if let Some((s, srv, cmd, false)) = c.op_cmd {
            if rmr_core::client::resend_after_timeout(&cmd, etimedout) {
                self.count("cmd-resend");
                self.op_send_at(s, srv, &cmd, true);
                return;
            }
        }
        let rsp = CmdRsp { ty: CmdType::MapReady, errno: etimedout, body: RspBody::Empty };
        self.op_reply(slot, &rsp);
    }

    pub(super) fn step_out(&mut self, st: Step<'_>) -> Option<rmr_core::error::Result<()>> {
        match st {
            Step::Send { slot, cmd } => {
                self.op_send(slot, &cmd);
                None
            }
            Step::Done(r) => Some(r),
        }
    }

    /// Start pending control work when the control lock is free.
    pub(super) fn client_pump(&mut self) {
        let Some(c) = self.client.as_mut() else { return };
        // Try-enable waiting for the IO drain.
        if let Some(Op::Te { run, started }) = c.op.as_mut() {
            if !*started && c.pool.inflight == 0 {
                *started = true;
                let mut run2 = *run;
                let st = run2.start(&mut c.pool, &c.maps);
                let case = run2.case();
                *run = run2;
                self.log(format!("try-enable case {case}"));
                if let Some(r) = self.step_out(st) {
                    self.op_finished(format!("try-enable {r:?}"));
                }
            }
            return;
        }
        if let Some(Op::Remove { srv, slot, run, started }) = c.op.as_mut() {
            if !*started && c.pool.inflight == 0 {
                *started = true;
                let srv = *srv;
                let connected = c.pool.leg(*slot).is_some_and(|l| l.connected);
                let st = run.start(&mut c.pool, &mut c.maps, connected);
                self.remove_step(srv, st);
            }
            return;
        }
        if let Some(Op::Join { srv, run, started }) = c.op.as_mut() {
            if !*started && c.pool.inflight == 0 {
                *started = true;
                let srv = *srv;
                let st = run.start(&c.pool);
                self.join_step(srv, st);
            }
            return;
        }
        if c.op.is_some() {
            return;
        }
        let c = self.client.as_mut().expect("client");
        // Rejoin after reconnect.
        if let Some(slot) = (0..4).find(|s| c.rejoin_wanted[*s]) {
            c.rejoin_wanted[slot] = false;
            if c.pool.leg(slot).is_some_and(|l| l.connected) {
                if let Some(mut run) = RejoinRun::new(&c.pool, slot) {
                    let st = run.start(&c.pool, CHUNK_SIZE, QD as u16);
                    c.op = Some(Op::Rejoin { slot, run });
                    if let Some(r) = self.step_out(st) {
                        self.op_finished(format!("rejoin slot {slot}: {r:?}"));
                    }
                    return;
                }
            }
        }
        // Healing: the admin replays a halted del_sess.
        if !self.chaos && c.pool.legs().any(|(_, l)| l.state == LegState::Removing) {
            self.disassemble();
            return;
        }
        // add_sess for nodes not joined yet.
        let c = self.client.as_mut().expect("client");
        if let Some(&srv) = c.to_add.front() {
            if self.link_up(CLIENT, srv + 1) {
                let c = self.client.as_mut().expect("client");
                c.to_add.pop_front();
                let again = c.reassemble & (1 << srv) != 0;
                let mode = if c.created && !again { JoinMode::Create } else { JoinMode::Assemble };
                let params = JoinParams { mode, chunk_size: CHUNK_SIZE, queue_depth: QD as u16, name: self.name, group_id: GROUP };
                let Ok(mut run) = JoinRun::new(&c.pool, params) else { return };
                if run.freezes_io() {
                    c.pool.frozen = true;
                    c.op = Some(Op::Join { srv, run, started: false });
                    self.log(format!("join srv {srv}: freeze"));
                } else {
                    let st = run.start(&c.pool);
                    c.op = Some(Op::Join { srv, run, started: true });
                    self.join_step(srv, st);
                }
            }
            return;
        }
        let c = self.client.as_mut().expect("client");
        if c.want_te {
            c.want_te = false;
            if let Some(run) = TryEnableRun::new(&mut c.pool) {
                c.op = Some(Op::Te { run, started: false });
                self.log("try-enable: freeze".into());
            }
        }
    }

    pub(super) fn op_finished(&mut self, what: String) {
        self.log(format!("ctl done: {what}"));
        if let Some(c) = self.client.as_mut() {
            c.op = None;
            c.op_wait = None;
            c.op_tag = 0;
            c.pool.frozen = false;
        }
    }

    pub(super) fn recovery_tick(&mut self) {
        // The core plans the tick (the kernel's recover_once runs the same plan). Map checks
        // run outside the control lock (recover_work does not hold it), so their replies can
        // race with map updates and new dirty bits: that race is what the clean delay
        // protects against.
        let Some(plan) = self.client.as_ref().map(|c| c.pool.recovery_plan(&c.maps)) else { return };
        let targets: Vec<(usize, usize)> = match self.client.as_ref() {
            Some(c) => (0..4)
                .filter(|s| plan.map_check & (1 << s) != 0)
                .filter(|s| !c.checks.values().any(|x| x == s))
                .map(|s| (s, c.slot_srv[s]))
                .collect(),
            None => return,
        };
        for (s, srv) in targets {
            let tag = self.tag();
            if self.send(CLIENT, srv + 1, Sim::cmd_bytes(&Cmd::MapCheck { map_ver: plan.map_ver }, tag), 0, tag) {
                if let Some(c) = self.client.as_mut() {
                    c.checks.insert(tag, s);
                }
            }
        }
        let Some(c) = self.client.as_mut() else { return };
        if c.op.is_some() {
            return;
        }
        let mut items = VecDeque::new();
        for s in (0..4).filter(|s| plan.store_check & (1 << s) != 0) {
            items.push_back((s, BCmd::StoreCheck));
        }
        if let Some(md) = plan.md {
            for s in (0..4).filter(|s| plan.md_push & (1 << s) != 0) {
                items.push_back((s, BCmd::SendMd(md)));
            }
        }
        if !self.chaos {
            // Healing: the admin leaves maintenance on every leg.
            for (s, l) in c.pool.legs() {
                if l.maintenance && l.state != LegState::Failed {
                    items.push_back((s, BCmd::Maint(false)));
                }
            }
        }
        // [choice] also retry try-enable every tick while candidates wait.
        if plan.try_enable {
            c.want_te = true;
        }
        if !items.is_empty() {
            c.op = Some(Op::Batch { items, cur: None });
            self.batch_next();
        }
    }

    pub(super) fn batch_next(&mut self) {
        let Some(c) = self.client.as_mut() else { return };
        let Some(Op::Batch { items, cur }) = c.op.as_mut() else { return };
        let Some((slot, b)) = items.pop_front() else {
            self.op_finished("batch".into());
            return;
        };
        *cur = Some((slot, b));
        let cmd = match b {
            BCmd::StoreCheck => Cmd::StoreCheck,
            BCmd::SendMd(md) => Cmd::SendMdBuf(md),
            BCmd::Maint(on) => Cmd::EnablePool { enable: !on },
        };
        self.op_send(slot, &cmd);
    }

    pub(super) fn op_reply(&mut self, _slot: usize, rsp: &CmdRsp<'_>) {
        let now = self.now;
        let Some(c) = self.client.as_mut() else { return };
        c.op_wait = None;
        c.op_srv = None;
        let Some(mut op) = c.op.take() else { return };
        match &mut op {
            Op::Te { run, .. } => {
                let mut r = *run;
                let st = r.on_reply(&mut c.pool, &c.maps, rsp);
                *run = r;
                c.op = Some(op);
                if let Some(res) = self.step_out(st) {
                    self.op_finished(format!("try-enable {res:?}"));
                }
            }
            Op::Batch { cur, .. } => {
                let Some((s, b)) = cur.take() else {
                    c.op = Some(op);
                    return;
                };
                c.op = Some(op);
                let ok = rsp.errno == 0;
                match b {
                    BCmd::StoreCheck => {
                        let allowed = matches!(rsp.body, RspBody::Bool(true));
                        match c.pool.on_store_check_reply(s, rsp.errno, allowed) {
                            // The session is gone on the server: rejoin instead.
                            StoreCheck::Rejoin => c.rejoin_wanted[s] = true,
                            StoreCheck::Revived { transition, try_enable } => {
                                c.want_te |= try_enable;
                                self.log(format!("store check ok slot {s}: {transition:?}"));
                                self.bug_promote_enable(s);
                            }
                            StoreCheck::Nothing => {}
                        }
                    }
                    BCmd::Maint(on) => {
                        if ok && !on {
                            let _ = c.pool.clear_maintenance(s);
                            c.want_te = true;
                        }
                    }
                    BCmd::SendMd(_) => {}
                }
                self.batch_next();
            }
            Op::Join { srv, run, .. } => {
                let srv = *srv;
                let st = run.on_reply(&mut c.pool, &mut c.maps, rsp, now);
                if let Some(s) = run.slot() {
                    c.slot_srv[s] = srv;
                    if c.prev_states[s].is_none() {
                        c.prev_states[s] = Some((run.member(), LegState::Created));
                    }
                }
                c.op = Some(op);
                self.join_step(srv, st);
            }
            Op::Remove { srv, run, .. } => {
                let srv = *srv;
                let st = run.on_reply(&mut c.pool, &mut c.maps, rsp);
                c.op = Some(op);
                self.remove_step(srv, st);
            }
            Op::Rejoin { slot: s, run } => {
                let s = *s;
                let st = run.on_reply(&mut c.pool, rsp);
                let (t, te) = (run.transition(), run.wants_try_enable(&c.pool));
                c.op = Some(op);
                if let Some(r) = self.step_out(st) {
                    if r.is_ok() && te {
                        if let Some(c) = self.client.as_mut() {
                            c.want_te = true;
                        }
                    }
                    self.log(format!("rejoin slot {s}: {r:?} {t:?}"));
                    self.op_finished(format!("rejoin slot {s}: {r:?}"));
                    self.bug_promote_enable(s);
                }
            }
            Op::Admit { slot: s, mu } => {
                let s = *s;
                match mu {
                    None => {
                        if rsp.errno == 0 {
                            let _ = c.pool.set_state(s, LegState::Normal);
                        }
                        self.op_finished(format!("admit slot {s}: {}", rsp.errno));
                    }
                    Some(m) => {
                        let mut m2 = *m;
                        let st = m2.on_reply(&mut c.pool, rsp);
                        *m = m2;
                        c.op = Some(op);
                        if let Some(r) = self.step_out(st) {
                            self.op_finished(format!("admit spread slot {s}: {r:?}"));
                        }
                    }
                }
            }
        }
    }

    /// The teeth bug "failed leg promoted to NORMAL without a map update": enable directly.
    pub(super) fn bug_promote_enable(&mut self, slot: usize) {
        if !self.cfg.bugs.promote_failed {
            return;
        }
        let Some(c) = self.client.as_mut() else { return };
        if c.pool.leg(slot).is_some_and(|l| l.state == LegState::Normal) {
            match c.op.as_mut() {
                Some(Op::Batch { items, .. }) => items.push_front((slot, BCmd::Maint(false))),
                None => {
                    c.op = Some(Op::Batch { items: VecDeque::from([(slot, BCmd::Maint(false))]), cur: None });
                    self.batch_next();
                }
                Some(_) => {}
            }
        }
    }

    /// The admin disassembles a random leg (`del_sess mode=disassemble`) to re-add it later
    /// with `mode=assemble`, or replays a removal that halted.
    pub(super) fn disassemble(&mut self) {
        let pick = self.rng.below(4) as usize;
        let Some(c) = self.client.as_mut() else { return };
        if c.op.is_some() {
            return;
        }
        // A halted removal is replayed first (the admin writes del_sess again).
        let slot = c
            .pool
            .legs()
            .find(|(_, l)| l.state == LegState::Removing)
            .map(|(s, _)| s)
            .or_else(|| c.pool.leg(pick).map(|_| pick));
        let Some(slot) = slot else { return };
        let Ok(run) = RemoveRun::new(&c.pool, slot, false) else { return };
        let srv = c.slot_srv[slot];
        c.pool.frozen = true;
        c.op = Some(Op::Remove { srv, slot, run, started: false });
        self.count("disassemble");
        self.log(format!("NEMESIS admin disassembles slot {slot} (srv {srv})"));
    }

    /// Execute a step of a removal; a finished one queues the server for reassembly.
    pub(super) fn remove_step(&mut self, srv: usize, st: Step<'_>) {
        if let Some(r) = self.step_out(st) {
            if r.is_ok() {
                if let Some(c) = self.client.as_mut() {
                    c.reassemble |= 1 << srv;
                    c.to_add.push_back(srv);
                }
            }
            self.op_finished(format!("disassemble srv {srv}: {r:?}"));
        }
    }

    /// Execute a step of the join on server `srv`; at its end enable the leg (create:
    /// the admin's `enable`=1, §6.2 step 5) or run try-enable (assemble).
    pub(super) fn join_step(&mut self, srv: usize, st: JoinStep<'_>) {
        match st {
            JoinStep::SendNew(cmd) => self.op_send_to_srv(srv, &cmd),
            JoinStep::Send { slot, cmd } => self.op_send(slot, &cmd),
            JoinStep::Done(Err(e)) => {
                let Some(c) = self.client.as_mut() else { return };
                if e != Error::Exist {
                    // Retry later (a refusal or a lost link).
                    c.to_add.push_back(srv);
                }
                self.op_finished(format!("join srv {srv}: {e:?}"));
            }
            JoinStep::Done(Ok(s)) => {
                let Some(c) = self.client.as_mut() else { return };
                let assemble = matches!(c.op, Some(Op::Join { ref run, .. }) if run.wants_try_enable());
                if assemble {
                    c.want_te = true;
                    self.op_finished(format!("assembled slot {s}"));
                    return;
                }
                c.pool.frozen = false;
                match c.pool.admit(s) {
                    Ok(rmr_core::client::Admit::EnablePool) => {
                        c.op = Some(Op::Admit { slot: s, mu: None });
                        self.op_send(s, &Cmd::EnablePool { enable: true });
                    }
                    Ok(rmr_core::client::Admit::Spread { source }) => {
                        c.pool.frozen = true;
                        let mut mu = rmr_core::control::MapUpdate::new(source, 1 << s, true);
                        let st = mu.start(&c.pool);
                        c.op = Some(Op::Admit { slot: s, mu: Some(mu) });
                        if let Some(r) = self.step_out(st) {
                            self.op_finished(format!("admit {r:?}"));
                        }
                    }
                    r => self.op_finished(format!("admit {r:?}")),
                }
            }
        }
    }
}

