// SPDX-License-Identifier: GPL-2.0-or-later
//! Fault injection: links, crashes and power loss, restarts, maintenance, sync starts.

use super::*;

impl Sim {
    pub(super) fn count(&mut self, k: &'static str) {
        *self.nemesis_count.entry(k).or_default() += 1;
    }

    pub(super) fn nemesis(&mut self) {
        let n = self.srvs.len();
        match self.rng.below(12) {
            0 | 1 => {
                // Client-server link down/up.
                let i = self.rng.below(n as u64) as usize;
                let l = self.links.get_mut(&(CLIENT, i + 1)).expect("link");
                l.admin_up = !l.admin_up;
                let up = l.admin_up;
                self.count("link");
                self.log(format!("NEMESIS link P-{i} admin {}", if up { "up" } else { "down" }));
            }
            2 => {
                // Server-server link (sync pool) down/up.
                let a = 1 + self.rng.below(n as u64) as usize;
                let b = 1 + self.rng.below(n as u64) as usize;
                if a != b {
                    let l = self.links.get_mut(&link_key(a, b)).expect("link");
                    l.admin_up = !l.admin_up;
                    self.count("peer-link");
                    self.log(format!("NEMESIS link {a}-{b} toggled"));
                }
            }
            3 => {
                let i = self.rng.below(n as u64) as usize;
                if self.srvs[i].alive {
                    self.crash_server(i);
                } else {
                    self.restart_server(i);
                }
            }
            4 => {
                if self.client.is_some() {
                    self.crash_client();
                } else {
                    self.restart_client();
                }
            }
            5 => {
                // Crash during a map update.
                let in_mu = self.client.as_ref().is_some_and(|c| matches!(c.op, Some(Op::Te { started: true, .. }) | Some(Op::Admit { .. })));
                if in_mu {
                    self.count("crash-in-map-update");
                    if self.rng.permille(300) {
                        self.crash_client();
                    } else {
                        let i = self.rng.below(n as u64) as usize;
                        if self.srvs[i].alive {
                            self.crash_server(i);
                        }
                    }
                }
            }
            6 => {
                let i = self.rng.below(n as u64) as usize;
                let f = !self.srvs[i].disk.flakey;
                self.srvs[i].disk.flakey = f;
                self.count("flakey");
                self.log(format!("NEMESIS srv {i} disk {}", if f { "flakey" } else { "healed" }));
                if !f {
                    if let Some(p) = self.srvs[i].pool.as_mut() {
                        p.io_allowed = p.store;
                    }
                }
            }
            7 => self.maintenance_toggle(),
            9 if self.rng.permille(200) => {
                let i = self.rng.below(n as u64) as usize;
                self.sync_stop_admin(i);
            }
            8 | 9 => {
                let i = self.rng.below(n as u64) as usize;
                self.sync_start(i);
            }
            11 if self.rng.permille(100) => self.disassemble(),
            10 if self.rng.permille(300) => {
                // Hold the next "empty" MAP_CHECK answer of a node back for 1-15 s: the
                // stale answer the client map clean delay guards against.
                let i = self.rng.below(n as u64) as usize;
                let until = self.now + 1000 + self.rng.below(14_000);
                self.hold_check_from = Some((i, until));
                self.count("hold-map-check");
                self.log(format!("NEMESIS hold the next empty MAP_CHECK answer of srv {i} until t={until}"));
            }
            10 => {
                // Hold one in-flight message back for up to 6 s.
                let nonempty: Vec<(usize, usize)> =
                    self.links.iter().filter(|(_, l)| !l.q.is_empty()).map(|(k, _)| *k).collect();
                if !nonempty.is_empty() {
                    let k = nonempty[self.rng.below(nonempty.len() as u64) as usize];
                    let len = self.links.get(&k).map_or(0, |l| l.q.len()) as u64;
                    let idx = self.rng.below(len) as usize;
                    let until = self.now + 100 + self.rng.below(6000);
                    if let Some(p) = self.links.get_mut(&k).and_then(|l| l.q.remove(idx)) {
                        self.count("delay");
                        self.log(format!("NEMESIS delay a message {}->{} until t={until}", p.from, p.to));
                        // The client's control command waits `cmd_timeout_ms` for its answer,
                        // then fails with -ETIMEDOUT; the command itself is still in the
                        // transport and executes when it arrives (found in the VMs: an
                        // admin's timed-out ENABLE_POOL made a node NORMAL later).
                        let waited = self.client.as_ref().is_some_and(|c| c.op_tag == p.tag && p.from == CLIENT);
                        if self.cfg.cmd_timeouts && waited && self.rng.permille(500) {
                            self.count("cmd-timeout");
                            self.log(format!("client gives up on its command to srv {} (ETIMEDOUT)", p.to - 1));
                            self.local.push_back(Packet { from: p.to, to: CLIENT, bytes: Vec::new(), data: TIMED_OUT, tag: p.tag });
                        }
                        self.held.push((until, k, p));
                    }
                }
            }
            _ => {
                // Time passes (recovery ticks, clean delays).
                self.now += 1000 + self.rng.below(6000);
                self.timers();
            }
        }
    }

    pub(super) fn sync_start(&mut self, i: usize) {
        let now = self.now;
        let s = &mut self.srvs[i];
        if let Some(pool) = s.pool.as_ref() {
            if s.sched.start(pool, 4, true, now).is_ok() {
                self.count("sync");
                self.log(format!("srv {i} sync start"));
            }
        }
    }

    /// The admin writes `stop` to a node's `sync`: no automatic start until the node leaves
    /// NORMAL and enters it again (or an admin `start`).
    pub(super) fn sync_stop_admin(&mut self, i: usize) {
        let s = &mut self.srvs[i];
        if let Some(pool) = s.pool.as_ref() {
            s.sched.stop_by_admin(pool);
            self.count("sync-stop");
            self.log(format!("srv {i} sync stop (admin)"));
        }
    }

    /// The server's periodic tick (SPEC §11 [improvement]): a NORMAL node with a dirty own map
    /// starts its sync by itself, as the kernel's map-clear tick does.
    pub(super) fn srv_auto_sync(&mut self, i: usize) {
        if !self.cfg.auto_sync {
            return;
        }
        let now = self.now;
        let s = &mut self.srvs[i];
        if let Some(pool) = s.pool.as_ref() {
            if s.sched.auto_start(pool, 4, true, now) == AutoSync::Started {
                self.count("sync-auto");
                self.log(format!("srv {i} sync started automatically"));
            }
        }
    }

    pub(super) fn maintenance_toggle(&mut self) {
        let Some(c) = self.client.as_mut() else { return };
        if c.op.is_some() || c.pool.inflight > 0 {
            return;
        }
        let legs: Vec<(usize, bool, LegState)> = c.pool.legs().map(|(s, l)| (s, l.maintenance, l.state)).collect();
        if legs.is_empty() {
            return;
        }
        let (s, m, st) = legs[self.rng.below(legs.len() as u64) as usize];
        if m {
            if st == LegState::Failed {
                return;
            }
            c.op = Some(Op::Batch { items: VecDeque::from([(s, BCmd::Maint(false))]), cur: None });
            self.count("maint-off");
            self.log(format!("NEMESIS maintenance off slot {s}"));
            self.batch_next();
        } else if st == LegState::Normal {
            // §8: IO frozen until the server is NO_IO.
            c.pool.frozen = true;
            let _ = c.pool.set_maintenance(s);
            c.op = Some(Op::Batch { items: VecDeque::from([(s, BCmd::Maint(true))]), cur: None });
            self.count("maint-on");
            self.log(format!("NEMESIS maintenance on slot {s}"));
            self.batch_next();
        }
    }

    pub(super) fn crash_server(&mut self, i: usize) {
        let power = self.rng.permille(self.cfg.power_loss);
        self.crash_server_kind(i, power);
    }

    /// Crash storage node `i`: a power loss drops a random part of its disk's unflushed
    /// writes; a kernel crash leaves the (powered) disk to write its cache back.
    pub(super) fn crash_server_kind(&mut self, i: usize, power: bool) {
        self.count(if power { "srv-power-loss" } else { "srv-crash" });
        let unflushed: Vec<u64> = self.srvs[i].disk.cache.values().flatten().copied().collect();
        // The node's durable write-intent record, as its writer rounds left it on disk, must
        // name every chunk with unflushed data.
        let record: Vec<u64> = (0..self.cfg.chunks).filter(|c| self.srvs[i].disk.recorded(*c)).collect();
        if !self.cfg.bug_no_write_intent {
            if let Some(c) = self.srvs[i].disk.cache.keys().find(|c| !record.contains(c)) {
                self.violation(format!("srv {i}: unflushed write of chunk {c} is missing from its write-intent record {record:?}"));
            }
        }
        // After an unclean restart the node cannot vouch for the values of recorded chunks (nor,
        // physically, for anything its cache still held).
        let mut doubt: std::collections::BTreeSet<u64> = record.iter().copied().collect();
        doubt.extend(self.srvs[i].disk.cache.keys().copied());
        let doubted: Vec<u64> =
            doubt.iter().flat_map(|c| self.model.writes[*c as usize].iter().map(|w| w.0)).collect();
        if power {
            let lost = self.srvs[i].disk.power_loss(&mut self.rng);
            let ex = self.model.unclean_down(i, &doubted, &lost);
            self.log(format!("NEMESIS srv {i} power loss: unflushed {unflushed:?}, dropped {lost:?}, record {record:?}, acked writes no holder vouches for {ex:?}"));
        } else {
            self.srvs[i].disk.flush();
            let ex = self.model.unclean_down(i, &doubted, &[]);
            self.log(format!("NEMESIS srv {i} crash: unflushed {unflushed:?}, record {record:?}, acked writes no holder vouches for {ex:?}"));
        }
        let s = &mut self.srvs[i];
        s.alive = false;
        if let Some(mut pool) = s.pool.take() {
            // pool_md is written through; the maps, last_io, the write-intent record and the
            // witness and lost maps survive as the node's writer rounds persisted them
            // (Srv::md_round), nothing newer.
            s.disk.md = Some(pool.md);
            pool.lost.remove_all();
            s.disk.has_store = pool.store;
            pool.maps.remove_all();
        }
        // In-flight backend writes vanish.
        s.backend.clear();
        s.parked.clear();
        s.syncs.clear();
        s.sched = SyncSched::default();
        s.clear_checks.clear();
        s.client_sess = SessionPools::default();
        s.loss_due = None;
        s.md_lazy_due = None;
    }

    pub(super) fn restart_server(&mut self, i: usize) {
        self.count("srv-restart");
        self.log(format!("NEMESIS srv {i} restart (join_pool, add_store mode=add)"));
        let name = self.name;
        let chunks = self.cfg.chunks;
        let nobug = self.cfg.bugs.last_io_no_skip;
        let s = &mut self.srvs[i];
        let mut pool = Box::new(ServerPool::new(s.member, base_md(name, chunks)).expect("pool"));
        pool.bug_last_io_no_skip = nobug;
        pool.bug_no_last_io_record = self.cfg.bug_no_last_io_record;
        pool.bug_intent_lazy = self.cfg.bug_intent_lazy;
        pool.bug_no_scrub = self.cfg.bug_no_scrub;
        pool.bug_no_preflush = self.cfg.bug_no_preflush;
        if pool.register(RegMode::Add, s.disk.md).is_ok() {
            pool.set_store_caps(!s.disk.write_through && !self.cfg.bug_no_write_intent, true);
            s.disk.md_load(&mut pool);
        }
        s.pool = Some(pool);
        // The kernel runs a writer round before the store serves (the suspects loaded from
        // `wi` are written whole).
        s.md_round();
        s.alive = true;
        s.next_clear = self.now + RMR_SRV_CHECK_MAPS_INTERVAL_MS;
    }

    pub(super) fn crash_client(&mut self) {
        self.count("client-crash");
        self.log("NEMESIS client crash".into());
        if let Some(c) = self.client.take() {
            for io in c.ios.iter().flatten() {
                if let CioKind::Write { widx, .. } = io.kind {
                    self.model.set(io.chunk, widx, WSt::Failed);
                }
            }
        }
        self.local.retain(|p| p.to != CLIENT);
    }

    pub(super) fn restart_client(&mut self) {
        self.client_gen += 1;
        self.count("client-reassemble");
        self.log("NEMESIS client reassemble (join_pool, add_sess mode=assemble)".into());
        let c = self.new_client(false);
        self.client = Some(c);
    }
}
