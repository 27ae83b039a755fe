// SPDX-License-Identifier: GPL-2.0-or-later
//! The scripted API the scenario tests use to drive a simulation step by step.

use super::*;

impl Sim {
    /// Baseline B0: `servers` nodes (members 42, 43, ...), pool created and enabled leg by leg,
    /// every node synced, all maps clean; no random IO and no nemesis.
    pub fn scripted(servers: usize, chunks: u64) -> Sim {
        let mut cfg = Config::for_seed(0);
        cfg.servers = servers;
        cfg.chunks = chunks;
        cfg.auto_sync = false;
        Sim::scripted_cfg(cfg)
    }

    /// Like [`Sim::scripted`] on disks without a volatile write cache.
    pub fn scripted_write_through(servers: usize, chunks: u64) -> Sim {
        let mut cfg = Config::for_seed(0);
        cfg.servers = servers;
        cfg.chunks = chunks;
        cfg.auto_sync = false;
        cfg.write_through = true;
        Sim::scripted_cfg(cfg)
    }

    /// Like [`Sim::scripted`] with a whole configuration (`servers`, `chunks`, `bugs`,
    /// `write_through` are used).
    pub fn scripted_cfg(mut cfg: Config) -> Sim {
        cfg.full_trace = true;
        let servers = cfg.servers;
        let mut s = Sim::new(0, cfg);
        s.chaos = false;
        s.io_on = false;
        s.settle(2000);
        for i in 0..servers {
            s.sync(i);
        }
        s.settle(12_000);
        // As a file system would: the synced data is flushed, so the write-intent records
        // start empty.
        s.flush();
        s.settle(1000);
        s
    }

    /// One deterministic unit of work; false when idle.
    pub(super) fn work_one(&mut self) -> bool {
        if let Some(p) = self.local.pop_front() {
            self.deliver_local(p);
            return true;
        }
        if let Some(k) = self.links.iter().find(|(_, l)| !l.q.is_empty()).map(|(k, _)| *k) {
            self.deliver_packet(k, 0);
            return true;
        }
        if let Some(i) = (0..self.srvs.len()).find(|i| !self.srvs[*i].backend.is_empty()) {
            self.complete_bop(i, 0);
            return true;
        }
        false
    }

    pub(super) fn after_work(&mut self) {
        self.step += 1;
        self.refresh_links();
        self.client_pump();
        self.servers_pump();
        self.check_invariants();
    }

    /// Process everything pending, letting at least `ms` of idle time pass (timers fire).
    pub fn settle(&mut self, ms: u64) {
        let mut idle = 0;
        let mut guard = 0;
        while idle < ms && guard < 200_000 {
            guard += 1;
            if !self.work_one() {
                self.now += 100;
                idle += 100;
                self.timers();
            }
            self.after_work();
        }
    }

    /// Process pending work without letting time pass (nothing but in-flight messages).
    pub fn drain(&mut self) {
        let mut guard = 0;
        while self.work_one() && guard < 200_000 {
            guard += 1;
            self.after_work();
        }
        self.after_work();
    }

    /// Issue a write of `chunk` without waiting; returns its value.
    pub fn write_start(&mut self, chunk: u64) -> Option<u64> {
        let v = self.issue(chunk, true);
        self.after_work();
        v
    }

    /// Issue a pure FLUSH without waiting for it.
    pub fn flush_start(&mut self) {
        self.issue_flags(0, true, IO_WRITE | IO_FLUSH);
        self.after_work();
    }

    /// Run units of work (advancing time when idle) until a new trace line contains `pat`;
    /// whether it appeared within `max` units.
    pub fn step_until(&mut self, pat: &str, max: usize) -> bool {
        for _ in 0..max {
            let before = self.trace.len();
            if !self.work_one() {
                self.now += 100;
                self.timers();
            }
            self.after_work();
            if self.trace.iter().skip(before).any(|l| l.contains(pat)) {
                return true;
            }
        }
        false
    }

    /// Write `chunk` and wait; returns the value if acknowledged.
    pub fn write(&mut self, chunk: u64) -> Option<u64> {
        let v = self.write_start(chunk)?;
        self.drain();
        let acked = self.model.writes[chunk as usize].iter().any(|w| w.0 == v && w.1 == WSt::Acked);
        acked.then_some(v)
    }

    /// Deliver the packets queued from the client to storage node `srv` and complete that
    /// node's backend IO, leaving every other message in flight.
    pub fn deliver_to(&mut self, srv: usize) {
        let k = (CLIENT, srv + 1);
        let mut guard = 0;
        loop {
            guard += 1;
            let idx = self.links.get(&k).and_then(|l| l.q.iter().position(|p| p.to == srv + 1));
            match idx {
                Some(i) if guard < 10_000 => self.deliver_packet(k, i),
                _ => break,
            }
            self.after_work();
        }
        while !self.srvs[srv].backend.is_empty() {
            self.complete_bop(srv, 0);
            self.after_work();
        }
    }

    /// A pool like [`Sim::scripted`] with deliberate bugs (teeth proof).
    pub fn scripted_with_bugs(servers: usize, chunks: u64, bugs: Bugs) -> Sim {
        let mut cfg = Config::for_seed(0);
        cfg.servers = servers;
        cfg.chunks = chunks;
        cfg.auto_sync = false;
        cfg.bugs = bugs;
        Sim::scripted_cfg(cfg)
    }

    /// Hold back the next "empty" MAP_CHECK answer storage node `srv` sends to the client
    /// (RTRS spreads a session over several connections: an answer can be overtaken by
    /// everything sent after it).
    pub fn hold_map_check_answer(&mut self, srv: usize) {
        self.hold_check_from = Some((srv, u64::MAX));
    }

    /// Whether a held-back answer is waiting.
    pub fn holding(&self) -> bool {
        self.held.iter().any(|h| h.0 == u64::MAX)
    }

    /// Deliver the messages held by [`Sim::hold_map_check_answer`] now; false if none.
    pub fn release_held(&mut self) -> bool {
        let mut any = false;
        while let Some(i) = self.held.iter().position(|h| h.0 == u64::MAX) {
            let (_, k, p) = self.held.remove(i);
            if let Some(l) = self.links.get_mut(&k).filter(|l| l.up) {
                l.q.push_front(p);
                any = true;
            }
        }
        self.log(format!("SCRIPT release held answers: {any}"));
        self.drain();
        any
    }

    /// Chunks the client map holds for `member`.
    pub fn client_dirty(&self, member: u32) -> Vec<u64> {
        self.client.as_ref().and_then(|c| c.maps.get(member)).map_or(Vec::new(), |m| m.iter().collect())
    }

    /// Take the client–`srv` link down or up.
    pub fn link(&mut self, srv: usize, up: bool) {
        if let Some(l) = self.links.get_mut(&(CLIENT, srv + 1)) {
            l.admin_up = up;
        }
        self.log(format!("SCRIPT link P-{srv} {}", if up { "up" } else { "down" }));
        self.after_work();
    }

    /// Power-cycle storage node `i` off.
    pub fn crash_srv(&mut self, i: usize) {
        self.crash_server(i);
        self.after_work();
    }

    /// Crash storage node `i`'s kernel: its (powered) disk writes its cache back.
    pub fn kernel_crash_srv(&mut self, i: usize) {
        self.crash_server_kind(i, false);
        self.after_work();
    }

    /// Cut storage node `i`'s power: its disk keeps a random in-order prefix of each chunk's
    /// unflushed writes (`all` = drop every unflushed write).
    pub fn power_loss_srv(&mut self, i: usize, all: bool) {
        self.srvs[i].disk.drop_all = all;
        self.crash_server_kind(i, true);
        self.srvs[i].disk.drop_all = false;
        self.after_work();
    }

    /// A pure FLUSH from the client to every NORMAL leg, waited for.
    pub fn flush(&mut self) -> bool {
        let before = self.model.promised_upto;
        self.issue_flags(0, true, IO_WRITE | IO_FLUSH);
        self.drain();
        self.model.promised_upto > before
    }

    /// Whether storage node `i`'s durable write-intent record names `chunk`.
    pub fn intent(&self, i: usize, chunk: u64) -> bool {
        self.srvs[i].suspects_any(chunk)
    }

    /// Bring storage node `i` back (`join_pool`, `add_store mode=add`).
    pub fn restart_srv(&mut self, i: usize) {
        self.restart_server(i);
        self.after_work();
    }

    /// Crash the compute client.
    pub fn crash_p(&mut self) {
        self.crash_client();
        self.after_work();
    }

    /// Restart the client and assemble the legs in `order` (server indices).
    pub fn reassemble(&mut self, order: &[usize]) {
        self.restart_client();
        if let Some(c) = self.client.as_mut() {
            c.to_add = order.iter().copied().collect();
        }
        self.after_work();
    }

    /// Make node `i`'s disk fail IO, or heal it (the store is usable again).
    pub fn flakey(&mut self, i: usize, on: bool) {
        self.srvs[i].disk.flakey = on;
        if !on {
            if let Some(p) = self.srvs[i].pool.as_mut() {
                p.io_allowed = p.store;
            }
        }
        self.after_work();
    }

    /// `echo 0|1 > sessions/<member>/enable` (maintenance on/off).
    pub fn maintenance(&mut self, member: u32, on: bool) {
        self.drain();
        let Some(c) = self.client.as_mut() else { return };
        let Some(s) = c.pool.slot_of(member) else { return };
        if on {
            c.pool.frozen = true;
            let _ = c.pool.set_maintenance(s);
        }
        c.op = Some(Op::Batch { items: VecDeque::from([(s, BCmd::Maint(on))]), cur: None });
        self.batch_next();
        self.drain();
    }

    /// `echo start > sync` on node `i` and wait until the thread stops.
    pub fn sync(&mut self, i: usize) {
        self.sync_start(i);
        self.settle(500);
    }

    /// `echo 1 > pool_enable`.
    pub fn pool_enable(&mut self) {
        if let Some(c) = self.client.as_mut() {
            c.want_te = true;
        }
        self.after_work();
    }

    /// Leg state and maintenance flag of `member` on the client.
    pub fn leg_state(&self, member: u32) -> Option<(LegState, bool)> {
        let c = self.client.as_ref()?;
        let s = c.pool.slot_of(member)?;
        c.pool.leg(s).map(|l| (l.state, l.maintenance))
    }

    /// Server pool state and maintenance flag of node `i`.
    pub fn srv_state(&self, i: usize) -> Option<(SrvState, bool)> {
        self.srvs.get(i)?.pool.as_ref().map(|p| (p.state, p.maintenance))
    }

    /// Dirty chunks node `i` holds for `member`.
    pub fn dirty(&self, i: usize, member: u32) -> Vec<u64> {
        self.srvs[i].pool.as_ref().and_then(|p| p.maps.get(member)).map_or(Vec::new(), |m| m.iter().collect())
    }

    /// `map_summary` of node `i`.
    pub fn summary(&self, i: usize) -> String {
        let Some(p) = self.srvs[i].pool.as_ref() else { return String::new() };
        let mut buf = [0u8; 4096];
        let n = p.maps.render_summary(&mut buf);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    /// Content of `chunk` on node `i`'s disk.
    pub fn disk(&self, i: usize, chunk: u64) -> u64 {
        self.srvs[i].disk.read(chunk)
    }

    /// First invariant violation, if any.
    pub fn failed(&self) -> Option<&str> {
        self.fail.as_deref()
    }

    /// The trace so far.
    pub fn trace_text(&self) -> String {
        self.trace.iter().cloned().collect::<Vec<_>>().join("\n")
    }
}
