// SPDX-License-Identifier: GPL-2.0-or-later
//! The model of acknowledged writes, the invariants checked after every step, healing,
//! convergence and the final check; the run loop.

use super::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum WSt {
    InFlight,
    Acked,
    Failed,
}

/// What the client was promised (block layer semantics with a volatile write cache): an
/// acknowledged write survives unless it was neither written with FUA nor followed by a
/// completed FLUSH (issued after its acknowledgement) and every node that stored it lost
/// power before making it durable there. Such a write is *excused*: older values of its chunk
/// become legal again.
#[derive(Default)]
pub(super) struct Model {
    pub(super) writes: Vec<Vec<(u64, WSt)>>,
    /// Acknowledgement order of each acknowledged value.
    pub(super) ack_order: BTreeMap<u64, u64>,
    pub(super) ack_seq: u64,
    /// Values acknowledged as FUA writes.
    pub(super) fua: std::collections::BTreeSet<u64>,
    /// Writes acknowledged up to this order are covered by a completed FLUSH.
    pub(super) promised_upto: u64,
    /// Nodes that stored a value and still vouch for it (no power loss while it sat unflushed
    /// in their cache).
    pub(super) vouch: BTreeMap<u64, std::collections::BTreeSet<usize>>,
    /// Acknowledged writes lost legitimately (see above).
    pub(super) excused: std::collections::BTreeSet<u64>,
    /// (value, node): the node stored the value and lost it in a power loss.
    pub(super) lost: std::collections::BTreeSet<(u64, usize)>,
    /// (value, node): the client marked the node dirty for the value's write (MAP_ADD: its
    /// leg failed the write), so the acknowledgement does not rest on that node's copy.
    pub(super) disowned: std::collections::BTreeSet<(u64, usize)>,
}

impl Model {
    pub(super) fn last_acked(&self, c: u64) -> Option<usize> {
        self.writes.get(c as usize)?.iter().rposition(|w| w.1 == WSt::Acked)
    }
    pub(super) fn promised(&self, v: u64) -> bool {
        self.fua.contains(&v) || self.ack_order.get(&v).is_some_and(|o| *o <= self.promised_upto)
    }
    pub(super) fn acked(&mut self, v: u64, fua: bool) {
        self.ack_seq += 1;
        self.ack_order.insert(v, self.ack_seq);
        if fua {
            self.fua.insert(v);
        }
        if self.vouch.get(&v).is_none_or(|s| s.is_empty()) && !self.promised(v) {
            self.excused.insert(v);
        }
    }
    pub(super) fn stored(&mut self, v: u64, node: usize) {
        if v != 0 {
            self.vouch.entry(v).or_default().insert(node);
        }
    }
    /// The client's write of `v` failed on `node` and the node was marked dirty for it: the
    /// pool does not count that copy, whatever reached the node's disk.
    pub(super) fn disown(&mut self, v: u64, node: usize) {
        self.disowned.insert((v, node));
        if let Some(s) = self.vouch.get_mut(&v) {
            s.remove(&node);
        }
    }
    /// Node `node` went down uncleanly: it no longer vouches for `vals` (the values of the
    /// chunks its write-intent record names: after an unclean restart it cannot tell which of
    /// its unflushed writes survived); `dropped` are the values a power loss actually took.
    pub(super) fn unclean_down(&mut self, node: usize, vals: &[u64], dropped: &[u64]) -> Vec<u64> {
        for v in dropped {
            self.lost.insert((*v, node));
        }
        let mut ex = Vec::new();
        for v in vals {
            let Some(s) = self.vouch.get_mut(v) else { continue };
            s.remove(&node);
            if s.is_empty() && self.ack_order.contains_key(v) && !self.promised(*v) && self.excused.insert(*v) {
                ex.push(*v);
            }
        }
        ex
    }
    /// `v` is a legal content of chunk `c` for a reader that saw last-acked index `k`: the last
    /// acknowledged write up to `k` that is not excused, or anything later.
    pub(super) fn valid(&self, c: u64, k: Option<usize>, v: u64) -> bool {
        let Some(ws) = self.writes.get(c as usize) else { return false };
        let k = k.and_then(|k| (0..=k).rev().find(|i| ws[*i].1 == WSt::Acked && !self.excused.contains(&ws[*i].0)));
        match k {
            None => v == 0 || ws.iter().any(|w| w.0 == v),
            Some(k) => ws.iter().skip(k).any(|w| w.0 == v),
        }
    }
    pub(super) fn set(&mut self, c: u64, idx: usize, st: WSt) {
        if let Some(w) = self.writes.get_mut(c as usize).and_then(|ws| ws.get_mut(idx)) {
            w.1 = st;
        }
    }
}

impl Sim {
    pub(super) fn busy_chunks(&self) -> std::collections::BTreeSet<u64> {
        let mut b = std::collections::BTreeSet::new();
        if let Some(cl) = self.client.as_ref() {
            for x in cl.ios.iter().flatten() {
                if matches!(x.kind, CioKind::Write { .. }) {
                    b.insert(x.chunk);
                }
            }
        }
        for s in &self.srvs {
            for op in &s.backend {
                match op {
                    Bop::Io { io, .. } if io.is_write() => {
                        b.insert(io.id.b);
                    }
                    Bop::SyncWrite { chunk, .. } => {
                        b.insert(*chunk);
                    }
                    _ => {}
                }
            }
            b.extend(s.syncs.keys().copied());
        }
        b
    }

    pub(super) fn check_invariants(&mut self) {
        if self.fail.is_some() {
            return;
        }
        // Untouched chunks hold v0 everywhere and are trivially consistent.
        let busy = self.busy_chunks();
        let touched: Vec<u64> = (0..self.cfg.chunks)
            .filter(|c| !self.model.writes[*c as usize].is_empty() && !busy.contains(c))
            .collect();
        // 1. Only legal leg transitions (checked independently of the core's own table).
        if let Some(c) = self.client.as_mut() {
            let mut bad = None;
            // A freed slot (an undone join) holds the next leg as a new one.
            for s in 0..4 {
                if c.pool.leg(s).is_none() {
                    c.prev_states[s] = None;
                }
            }
            for (s, l) in c.pool.legs() {
                if let Some((m, prev)) = c.prev_states[s] {
                    if m == l.member_id && prev != l.state && !leg_transition_allowed(prev, l.state, l.sync) {
                        bad = Some(format!("illegal leg transition slot {s} member {m}: {prev:?} -> {:?}", l.state));
                    }
                }
                c.prev_states[s] = Some((l.member_id, l.state));
            }
            if let Some(b) = bad {
                if self.cfg.check_transitions {
                    self.violation(b);
                    return;
                }
            }
            // Client and server agree: a NORMAL leg's server must not be NORMAL-less forever;
            // a NORMAL server with a NORMAL leg holds the maps (below).
        }
        // 2. Every NORMAL server holds a complete dirty map, and its clean chunks hold current
        //    data. A server that has not noticed yet that the client's session is lost is
        //    NORMAL but cut off from the writes (SPEC §4.3 takes it to NO_IO when it notices);
        //    the client cannot reach it, and its peers know what it missed (MAP_ADD).
        //    Likewise a server whose leg the client holds but not as NORMAL (it gave up on a
        //    command to it, or failed an IO there, before the server learnt of it): the client
        //    writes around it with marks for it on every NORMAL peer (checked below and in 3.)
        //    under a newer map_ver, so no reader and no peer's sync takes the stale copy, and
        //    neither its MAP_CHECK answers nor its maps count (both go by map_ver).
        let written_around = |member: u32| {
            self.client.as_ref().is_some_and(|c| c.pool.legs().any(|(_, l)| l.member_id == member && l.state != LegState::Normal))
        };
        for (i, s) in self.srvs.iter().enumerate() {
            let Some(pool) = s.pool.as_ref() else { continue };
            if pool.state != SrvState::Normal || !s.alive || s.loss_due.is_some() || written_around(s.member) {
                continue;
            }
            for &c in &touched {
                let own_dirty = pool.maps.get(s.member).is_some_and(|m| m.test(c));
                if own_dirty {
                    continue;
                }
                let mine = s.disk.read(c);
                let k = self.model.last_acked(c);
                if !self.model.valid(c, k, mine) {
                    let vouch: Vec<(u64, Vec<usize>)> = self.model.writes[c as usize]
                        .iter()
                        .map(|w| (w.0, self.model.vouch.get(&w.0).map(|x| x.iter().copied().collect()).unwrap_or_default()))
                        .collect();
                    let w = format!(
                        "NORMAL srv {i} (member {}) holds stale chunk {c} = v{mine} with a clean own map; history {:?}, vouching nodes {vouch:?}",
                        s.member, self.model.writes[c as usize]
                    );
                    self.violation(w);
                    return;
                }
                for o in &self.srvs {
                    if o.member == s.member {
                        continue;
                    }
                    let theirs = o.disk.read(c);
                    if theirs != mine && !pool.maps.get(o.member).is_some_and(|m| m.test(c)) && !o.suspects(c) {
                        let w = format!(
                            "NORMAL srv {i} (member {}) misses dirty bit: chunk {c} is v{mine} here, v{theirs} on member {}",
                            s.member, o.member
                        );
                        self.violation(w);
                        return;
                    }
                }
            }
        }
        // 3. The client's maps are complete for members whose leg is not NORMAL (they decide
        //    what the returning node must resync) — checked against NORMAL servers' data.
        let mut bad = None;
        if let Some(c) = self.client.as_ref() {
            'outer: for (_, l) in c.pool.legs() {
                let Some(srv) = self.srvs.iter().find(|s| s.member == l.member_id) else { continue };
                for &ch in &touched {
                    let theirs = srv.disk.read(ch);
                    let Some(k) = self.model.last_acked(ch) else { continue };
                    let acked = self.model.writes[ch as usize][k].0;
                    // Stale = does not hold the last acked value or anything later.
                    if self.model.valid(ch, Some(k), theirs) {
                        continue;
                    }
                    let own_dirty = srv.pool.as_ref().is_some_and(|p| p.maps.get(l.member_id).is_some_and(|m| m.test(ch)));
                    let marked = c.maps.get(l.member_id).is_some_and(|m| m.test(ch));
                    let normal_marks = self.srvs.iter().any(|o| {
                        o.pool.as_ref().is_some_and(|p| p.state == SrvState::Normal && p.maps.get(l.member_id).is_some_and(|m| m.test(ch)))
                    });
                    if !marked && !own_dirty && !normal_marks && l.state == LegState::Normal {
                        bad = Some(format!(
                            "member {} is NORMAL but stale at chunk {ch} (v{theirs}, acked v{acked}) and nobody has it dirty",
                            l.member_id
                        ));
                        break 'outer;
                    }
                }
            }
        }
        if let Some(b) = bad {
            self.violation(b);
            return;
        }
        // 4. Client maps are complete for what this client incarnation acknowledged: a member
        //    that is stale at a chunk whose last acknowledged write this client issued must be
        //    dirty in the client map (they decide case 2 and are cleared only by map check).
        let mut bad = None;
        if let Some(c) = self.client.as_ref() {
            'o4: for (_, l) in c.pool.legs() {
                let Some(srv) = self.srvs.iter().find(|s| s.member == l.member_id) else { continue };
                for &ch in &touched {
                    let Some(k) = self.model.last_acked(ch) else { continue };
                    let (v, _) = self.model.writes[ch as usize][k];
                    if self.write_gen.get(&v) != Some(&self.client_gen) {
                        continue;
                    }
                    let theirs = srv.disk.read(ch);
                    // A node that lost the write in a power loss is not the client's to know:
                    // the node's own record covers it (invariants 2 and 3).
                    let node = self.srvs.iter().position(|s| s.member == l.member_id).unwrap_or(usize::MAX);
                    if self.model.lost.contains(&(v, node)) {
                        continue;
                    }
                    if !self.model.valid(ch, Some(k), theirs) && !c.maps.get(l.member_id).is_some_and(|m| m.test(ch)) {
                        bad = Some(format!(
                            "client map of member {} lacks chunk {ch}: it holds v{theirs}, this client acknowledged v{v}",
                            l.member_id
                        ));
                        break 'o4;
                    }
                }
            }
        }
        if let Some(b) = bad {
            self.violation(b);
        }
    }

    pub(super) fn heal(&mut self) {
        self.chaos = false;
        for l in self.links.values_mut() {
            l.admin_up = true;
        }
        for i in 0..self.srvs.len() {
            self.srvs[i].disk.flakey = false;
            if !self.srvs[i].alive {
                self.restart_server(i);
            } else if let Some(p) = self.srvs[i].pool.as_mut() {
                p.io_allowed = p.store;
            }
        }
        if self.client.is_none() {
            self.restart_client();
        }
        self.log("HEAL".into());
    }

    pub(super) fn converged(&self) -> bool {
        let Some(c) = self.client.as_ref() else { return false };
        if c.op.is_some() || !c.to_add.is_empty() || c.pool.inflight > 0 {
            return false;
        }
        if c.pool.legs().count() != self.srvs.len() || c.pool.legs().any(|(_, l)| l.state != LegState::Normal || l.maintenance) {
            return false;
        }
        self.srvs.iter().all(|s| s.pool.as_ref().is_some_and(|p| p.state == SrvState::Normal))
    }

    pub(super) fn synced(&self) -> bool {
        self.srvs.iter().all(|s| {
            s.backend.is_empty()
                && s.syncs.is_empty()
                && s.pool.as_ref().is_some_and(|p| p.maps.iter().all(|m| m.is_empty()))
        }) && self.links.values().all(|l| l.q.is_empty())
            && self.held.is_empty()
    }

    pub(super) fn final_check(&mut self) {
        for c in 0..self.cfg.chunks {
            let vals: Vec<u64> = self.srvs.iter().map(|s| s.disk.read(c)).collect();
            if vals.iter().any(|v| *v != vals[0]) {
                self.violation(format!("after recovery and sync, chunk {c} differs across legs: {vals:?}"));
                return;
            }
            let k = self.model.last_acked(c);
            if !self.model.valid(c, k, vals[0]) {
                self.violation(format!(
                    "acknowledged write lost: chunk {c} = v{} but history {:?}",
                    vals[0], self.model.writes[c as usize]
                ));
                return;
            }
        }
        if let Some(c) = self.client.as_ref() {
            let n: u64 = c.maps.iter().map(|m| m.count()).sum();
            if n != 0 {
                self.violation(format!("client maps not cleared after sync: {n} bits"));
            }
        }
    }

    /// Run the whole scenario: chaos, heal, converge, sync, final checks.
    pub fn run(mut self) -> Result<RunStats, Failure> {
        // Bring-up until all legs are NORMAL.
        self.io_on = false;
        self.chaos = false;
        let mut guard = 0;
        while !self.converged() && guard < 5000 {
            self.step_once();
            guard += 1;
        }
        if !self.converged() {
            return Err(self.failure("bring-up did not converge".into()));
        }
        self.log("bring-up done".into());
        self.io_on = true;
        self.chaos = true;
        for _ in 0..self.cfg.steps {
            self.step_once();
            if let Some(f) = self.fail.take() {
                return Err(self.failure(f));
            }
        }
        self.heal();
        // Keep a little IO, then stop it and converge.
        for _ in 0..100 {
            self.step_once();
        }
        self.io_on = false;
        let mut guard = 0;
        while guard < 40_000 {
            self.step_once();
            if let Some(f) = self.fail.take() {
                return Err(self.failure(f));
            }
            guard += 1;
            if self.converged() {
                // Sync every node with a dirty own map, let workers clear maps.
                for i in 0..self.srvs.len() {
                    let dirty = self.srvs[i]
                        .pool
                        .as_ref()
                        .is_some_and(|p| p.maps.get(p.member_id).is_some_and(|m| !m.is_empty()));
                    if dirty && !self.srvs[i].sched.running {
                        self.sync_start(i);
                    }
                }
                if self.synced() {
                    // Let client map checks run (clean delay).
                    let n: u64 = self.client.as_ref().map_or(0, |c| c.maps.iter().map(|m| m.count()).sum());
                    if n == 0 {
                        break;
                    }
                }
            }
        }
        if !self.converged() || !self.synced() {
            let st = self.state_line();
            return Err(self.failure(format!("did not converge after healing: {st}")));
        }
        self.final_check();
        if let Some(f) = self.fail.take() {
            return Err(self.failure(f));
        }
        let auto_syncs = self.nemesis_count.get("sync-auto").copied().unwrap_or(0);
        let nemesis = self.nemesis_count.iter().filter(|(k, _)| **k != "sync-auto").map(|(_, v)| v).sum();
        Ok(RunStats { steps: self.step, nemesis, auto_syncs })
    }

    /// One-line state summary for traces.
    pub fn state_line(&self) -> String {
        let mut s = String::new();
        if let Some(c) = self.client.as_ref() {
            for (i, l) in c.pool.legs() {
                s += &format!("leg{i}({})={}{} ", l.member_id, l.state.name(), if l.maintenance { "+m" } else { "" });
            }
            s += &format!("op={} ", c.op.is_some());
        } else {
            s += "client down ";
        }
        for (i, x) in self.srvs.iter().enumerate() {
            match x.pool.as_ref() {
                Some(p) => {
                    let mut buf = [0u8; 512];
                    let n = p.maps.render_summary(&mut buf);
                    let sum = String::from_utf8_lossy(&buf[..n]).replace('\n', "; ");
                    s += &format!(
                        "| srv{i}={} sync(run={} inflight={} table={} reqs={} bops={}) {}",
                        p.state.name(),
                        x.sched.running,
                        x.sched.in_flight,
                        p.sync.active(),
                        x.syncs.len(),
                        x.backend.len(),
                        sum
                    );
                }
                None => s += &format!("| srv{i}=down "),
            }
        }
        s
    }

    pub(super) fn failure(&mut self, what: String) -> Failure {
        let st = self.state_line();
        self.log(format!("state: {st}"));
        Failure { seed: self.seed, step: self.step, what, trace: self.trace.iter().cloned().collect() }
    }
}
