// SPDX-License-Identifier: GPL-2.0-or-later
//! The simulated network: links, delivery with reordering and delay, timers, the trace.

use super::*;

/// `Packet::data` of a local packet that tells the client its control command timed out.
pub(super) const TIMED_OUT: u64 = 1;

pub(super) struct Packet {
    pub(super) from: usize,
    pub(super) to: usize,
    pub(super) bytes: Vec<u8>,
    pub(super) data: u64,
    pub(super) tag: u64,
}

#[derive(Default)]
pub(super) struct Link {
    pub(super) admin_up: bool,
    pub(super) up: bool,
    pub(super) q: VecDeque<Packet>,
}

pub(super) fn link_key(a: usize, b: usize) -> (usize, usize) {
    (a.min(b), a.max(b))
}

impl Sim {
    pub(super) fn log(&mut self, s: String) {
        let line = format!("[{} t={}] {}", self.step, self.now, s);
        self.trace.push_back(line);
        if !self.cfg.full_trace && self.trace.len() > 300 {
            self.trace.pop_front();
        }
    }

    pub(super) fn violation(&mut self, what: String) {
        if self.fail.is_none() {
            self.log(format!("VIOLATION: {what}"));
            self.fail = Some(what);
        }
    }

    /// A command message: sequenced commands carry the message's tag as their sequence number
    /// (tags grow over the whole run, across client crashes, as one client's counter does).
    pub(super) fn cmd_bytes(cmd: &Cmd<'_>, tag: u64) -> Vec<u8> {
        let seq = if cmd.sequenced() { (tag as u32).max(1) } else { 0 };
        enc(&Msg::Cmd(seq, *cmd))
    }

    pub(super) fn tag(&mut self) -> u64 {
        self.next_tag += 1;
        self.next_tag
    }

    pub(super) fn link_up(&self, a: usize, b: usize) -> bool {
        self.links.get(&link_key(a, b)).is_some_and(|l| l.up)
    }

    pub(super) fn send(&mut self, from: usize, to: usize, bytes: Vec<u8>, data: u64, tag: u64) -> bool {
        let hold = self.hold_check_from.filter(|h| h.0 == from.wrapping_sub(1));
        if let (true, Some((_, until))) = (to == CLIENT && self.link_up(from, to), hold) {
            let empty_check = matches!(Msg::decode(&bytes), Ok((_, Msg::CmdRsp(r)))
                if r.ty == CmdType::MapCheck && r.errno == 0 && matches!(r.body, RspBody::Bool(true)));
            if empty_check {
                self.hold_check_from = None;
                self.log(format!("hold the \"empty\" MAP_CHECK answer of srv {} until t={until}", from - 1));
                // A link failure drops it, as RTRS would.
                self.held.push((until, link_key(from, to), Packet { from, to, bytes, data, tag }));
                return true;
            }
        }
        match self.links.get_mut(&link_key(from, to)) {
            Some(l) if l.up => {
                l.q.push_back(Packet { from, to, bytes, data, tag });
                true
            }
            _ => false,
        }
    }

    /// Recompute link state from admin state and node liveness; fire down/up events.
    pub(super) fn refresh_links(&mut self) {
        let keys: Vec<(usize, usize)> = self.links.keys().copied().collect();
        for (a, b) in keys {
            let alive = |s: &Sim, n: usize| {
                if n == CLIENT {
                    s.client.is_some()
                } else {
                    s.srvs.get(n - 1).is_some_and(|x| x.alive)
                }
            };
            // A client's reconnect is refused while the server still holds the lost session.
            let held = a == CLIENT && self.srvs.get(b - 1).is_some_and(|s| s.loss_due.is_some());
            let want = self.links.get(&(a, b)).is_some_and(|l| l.admin_up) && alive(self, a) && alive(self, b) && !held;
            let was = self.links.get(&(a, b)).is_some_and(|l| l.up);
            if want == was {
                continue;
            }
            if let Some(l) = self.links.get_mut(&(a, b)) {
                l.up = want;
                if !want {
                    l.q.clear();
                    self.held.retain(|h| h.1 != (a, b));
                }
            }
            self.log(format!("link {a}-{b} {}", if want { "up" } else { "down" }));
            if want {
                self.on_link_up(a, b);
            } else {
                self.on_link_down(a, b);
            }
        }
    }

    pub(super) fn on_link_down(&mut self, a: usize, b: usize) {
        if a == CLIENT {
            let srv = b - 1;
            // Server side: the session is lost, but the server notices only when its heartbeat
            // gives up (`session_loss`); a peer still reaches it over the sync pool meanwhile.
            let now = self.now;
            let s = &mut self.srvs[srv];
            if s.alive && s.loss_due.is_none() && s.client_sess.sync_of(0).is_some() {
                s.loss_due = Some(now + SESSION_LOSS_MS);
            }
            // Client side: leg fails, outstanding requests on it fail.
            if let Some(c) = self.client.as_mut() {
                if c.op_wait.is_some() && c.op_srv == Some(srv) {
                    c.op_wait = None;
                    c.op_srv = None;
                    let tag = c.op_tag;
                    self.local.push_back(Packet { from: b, to: CLIENT, bytes: Vec::new(), data: 0, tag });
                }
                if let Some(slot) = (0..4).find(|i| c.slot_srv[*i] == srv) {
                    c.checks.retain(|_, s| *s != slot);
                    c.pool.set_connected(slot, false);
                    let mut errs = Vec::new();
                    for io in c.ios.iter().flatten() {
                        errs.push(io.tag);
                    }
                    for tag in errs {
                        self.local.push_back(Packet { from: b, to: CLIENT, bytes: vec![1], data: 0, tag });
                    }
                }
            }
        } else {
            // Server-server: outstanding sync reads and checks to the peer fail.
            for (x, y) in [(a, b), (b, a)] {
                let peer_member = self.srvs[y - 1].member;
                let s = &mut self.srvs[x - 1];
                let tags: Vec<u64> = s
                    .syncs
                    .values()
                    .filter(|r| r.tag != 0 && r.src == peer_member)
                    .map(|r| r.tag)
                    .collect();
                for tag in tags {
                    self.local.push_back(Packet { from: y, to: x, bytes: vec![2], data: 0, tag });
                }
                s.clear_checks.retain(|_, (m, _)| *m != peer_member);
            }
        }
    }

    /// Server `i` notices that the client's session is lost (rmr/server/session.rs
    /// `on_disconnected`): every pool the session joined takes the core's `on_session_lost`;
    /// then the client may reconnect.
    fn session_loss(&mut self, i: usize) {
        let s = &mut self.srvs[i];
        s.loss_due = None;
        let joins: Vec<(u8, bool)> = s.client_sess.take_all().collect();
        if let Some(p) = s.pool.as_mut() {
            let before = p.state;
            for (_, sync) in joins {
                let fx = p.on_session_lost(sync);
                if fx.stop_sync {
                    s.sched.stop();
                }
            }
            let after = p.state;
            self.log(format!("srv {i} notices the client's session lost: {before:?} -> {after:?}"));
        }
        self.refresh_links();
    }

    pub(super) fn on_link_up(&mut self, a: usize, b: usize) {
        if a == CLIENT {
            let srv = b - 1;
            if let Some(c) = self.client.as_mut() {
                if let Some(slot) = (0..4).find(|i| c.slot_srv[*i] == srv) {
                    c.pool.set_connected(slot, true);
                    c.rejoin_wanted[slot] = true;
                }
            }
        }
    }

    /// Run one scheduler step.
    pub(super) fn step_once(&mut self) {
        self.step += 1;
        // Synthesized local replies first (transport failures).
        while let Some(p) = self.local.pop_front() {
            self.deliver_local(p);
        }
        let pkts: u64 = self.links.values().map(|l| l.q.len() as u64).sum();
        let bops: u64 = self.srvs.iter().map(|s| s.backend.len() as u64).sum();
        let can_io = self.io_on
            && self.client.as_ref().is_some_and(|c| !c.pool.frozen && c.ios.iter().any(|x| x.is_none()));
        let w = [
            if pkts > 0 { 60 } else { 0 },
            if bops > 0 { 30 } else { 0 },
            if can_io { 20 } else { 0 },
            8,
            if self.chaos { self.cfg.nemesis } else { 0 },
        ];
        match self.rng.weighted(&w) {
            Some(0) => self.deliver_random(),
            Some(1) => self.backend_complete(),
            Some(2) => self.client_issue(),
            Some(3) => {
                self.now += 50 + self.rng.below(400);
                self.timers();
            }
            Some(4) => self.nemesis(),
            _ => {}
        }
        self.refresh_links();
        self.client_pump();
        self.servers_pump();
        self.check_invariants();
    }

    pub(super) fn deliver_random(&mut self) {
        let nonempty: Vec<(usize, usize)> =
            self.links.iter().filter(|(_, l)| !l.q.is_empty()).map(|(k, _)| *k).collect();
        if nonempty.is_empty() {
            return;
        }
        let k = nonempty[self.rng.below(nonempty.len() as u64) as usize];
        let len = self.links.get(&k).map_or(0, |l| l.q.len()) as u64;
        // Mostly FIFO per link; sometimes take a later packet (independent requests reorder).
        let idx = if self.rng.permille(150) { self.rng.below(len) as usize } else { 0 };
        self.deliver_packet(k, idx);
    }

    pub(super) fn deliver_packet(&mut self, k: (usize, usize), idx: usize) {
        let Some(l) = self.links.get_mut(&k) else { return };
        let Some(p) = l.q.remove(idx) else { return };
        if p.to == CLIENT {
            self.client_recv(p);
        } else {
            self.srv_recv(p);
        }
    }

    pub(super) fn deliver_local(&mut self, p: Packet) {
        if p.to == CLIENT {
            let Some(c) = self.client.as_mut() else { return };
            if p.bytes.is_empty() {
                // Ctl command failed by transport.
                if p.tag == c.op_tag {
                    let slot = (0..4).find(|i| c.slot_srv[*i] == p.from.wrapping_sub(1)).unwrap_or(usize::MAX);
                    if p.data == TIMED_OUT {
                        self.op_timed_out(slot);
                    } else {
                        let ty = CmdType::MapReady; // type is irrelevant for an error reply
                        let rsp = CmdRsp::err(ty, Error::Io);
                        self.op_reply(slot, &rsp);
                    }
                    // A late answer to this command (it timed out, see the nemesis) is not
                    // taken for the answer to a later one.
                    if let Some(c) = self.client.as_mut().filter(|c| c.op_tag == p.tag) {
                        c.op_tag = 0;
                    }
                }
            } else {
                // IO failed by transport: the leg's reply for that IO is an error.
                let slot = (0..4).find(|i| c.slot_srv[*i] == p.from - 1);
                if let Some(slot) = slot {
                    self.client_io_error(p.tag, slot);
                }
            }
        } else {
            // Sync read to a peer failed.
            self.sync_read_failed(p.to - 1, p.tag);
        }
    }

    pub(super) fn timers(&mut self) {
        let now = self.now;
        let mut i = 0;
        while i < self.held.len() {
            if self.held[i].0 <= now {
                let (_, k, p) = self.held.remove(i);
                if let Some(l) = self.links.get_mut(&k) {
                    if l.up {
                        l.q.push_front(p);
                    }
                }
            } else {
                i += 1;
            }
        }
        if let Some(c) = self.client.as_mut() {
            if now >= c.next_tick {
                c.next_tick = now + RMR_RECOVER_INTERVAL_MS;
                self.recovery_tick();
            }
        }
        for i in 0..self.srvs.len() {
            if self.srvs[i].alive && self.srvs[i].loss_due.is_some_and(|t| now >= t) {
                self.session_loss(i);
            }
            if self.srvs[i].alive && self.srvs[i].md_lazy_due.is_some_and(|t| now >= t) {
                self.srvs[i].md_lazy_due = None;
                self.srvs[i].md_round();
            }
            if self.srvs[i].alive && now >= self.srvs[i].next_clear {
                self.srvs[i].next_clear = now + RMR_SRV_CHECK_MAPS_INTERVAL_MS;
                self.srv_map_clear_worker(i);
                self.srv_auto_sync(i);
                // The tick also persists what changed lazily (cleared bits).
                if self.srvs[i].pool.as_mut().is_some_and(|p| p.md_dirty()) {
                    self.srvs[i].md_round();
                }
            }
        }
    }
}
