// SPDX-License-Identifier: GPL-2.0-or-later
//! The simulated storage nodes: messages, the core's IO decision, sync reads and their
//! completion, the map-clear worker, disks with a volatile cache.

use super::*;

pub(super) enum Bop {
    Io { io: IoMsg, value: u64, tag: u64 },
    SyncWrite { chunk: u64, value: u64 },
}

pub(super) struct SyncReq {
    pub(super) tag: u64,
    pub(super) src: u32,
    pub(super) skip: MemberList,
    pub(super) thread: bool,
}

/// A storage node's disk. `data` is the durable medium; `cache` is the volatile write cache:
/// per chunk the values written since the last flush, oldest first. Reads see the newest
/// value. A FLUSH makes the whole cache durable, a FUA write is durable on completion, and a
/// power loss keeps a random prefix of each chunk's cached values (the drive may have written
/// some back in order) and drops the rest.
#[derive(Default)]
pub(super) struct Disk {
    pub(super) data: BTreeMap<u64, u64>,
    pub(super) cache: BTreeMap<u64, Vec<u64>>,
    pub(super) md: Option<PoolMd>,
    /// The persisted bitmaps (dirty maps, write-intent record, witness and lost maps) as the
    /// writer rounds left them: (region, index, page) → bytes, and the slot table (the
    /// kernel's store area; `ServerPool::md_begin` and friends).
    pub(super) md_pages: BTreeMap<(u32, usize, usize), Vec<u8>>,
    pub(super) md_slots: [u32; 4],
    /// The persisted `last_io` record pages.
    pub(super) md_last_io: Vec<Vec<u8>>,
    pub(super) write_through: bool,
    /// Scripted: the next power loss drops every unflushed write.
    pub(super) drop_all: bool,
    pub(super) flakey: bool,
    pub(super) has_store: bool,
}

impl Disk {
    /// Load the persisted maps and record into a pool registered with `add_store mode=add`
    /// (what the kernel does through the store's `md_read`).
    pub(super) fn md_load(&self, pool: &mut ServerPool<VecStorage>) {
        pool.md_load_table(self.md_slots);
        for ((region, slot, page), data) in self.md_pages.iter() {
            pool.md_load_page(*region, *slot, *page, data).expect("load bitmap page");
        }
        for (p, data) in self.md_last_io.iter().enumerate() {
            pool.md_load_last_io(p, data).expect("load last_io");
        }
        pool.md_load_done();
    }
    /// Whether the persisted write-intent record (`wi` or `suspect` bitmap) names `chunk`.
    pub(super) fn recorded(&self, chunk: u64) -> bool {
        let bits = rmr_core::dirtymap::PAGE_BITS;
        let (page, bit) = ((chunk / bits) as usize, (chunk % bits) as usize);
        [rmr_core::server::INTENT_WI, rmr_core::server::INTENT_SUSPECT].iter().any(|i| {
            self.md_pages.get(&(rmr_core::server::MD_INTENT, *i as usize, page)).is_some_and(|d| d[bit / 8] & (1 << (bit % 8)) != 0)
        })
    }
    pub(super) fn read(&self, c: u64) -> u64 {
        self.cache.get(&c).and_then(|v| v.last()).or_else(|| self.data.get(&c)).copied().unwrap_or(0)
    }
    pub(super) fn write(&mut self, c: u64, v: u64, fua: bool) {
        if fua || self.write_through {
            self.cache.remove(&c);
            self.data.insert(c, v);
        } else {
            self.cache.entry(c).or_default().push(v);
        }
    }
    pub(super) fn flush(&mut self) {
        for (c, vs) in std::mem::take(&mut self.cache) {
            if let Some(v) = vs.last() {
                self.data.insert(c, *v);
            }
        }
    }
    /// Power loss: returns the values dropped.
    pub(super) fn power_loss(&mut self, rng: &mut Rng) -> Vec<u64> {
        let mut lost = Vec::new();
        for (c, vs) in std::mem::take(&mut self.cache) {
            let k = if self.drop_all { 0 } else { rng.below(vs.len() as u64 + 1) as usize };
            if k > 0 {
                self.data.insert(c, vs[k - 1]);
            }
            lost.extend_from_slice(&vs[k..]);
        }
        lost
    }
}

impl Srv {
    /// One writer round, as the kernel's (rmr/server/persist.rs) but atomic: what it writes is
    /// what survives a crash of this node.
    pub(super) fn md_round(&mut self) {
        let Some(pool) = self.pool.as_mut() else { return };
        if !pool.store {
            return;
        }
        let plan = pool.md_begin();
        if plan.preflush {
            // The device flush before the round's first page makes the data durable.
            self.disk.flush();
        }
        let mut buf = vec![0u8; rmr_core::server::MD_PAGE_BYTES];
        while let Some(pg) = pool.md_next_scrub(&mut buf) {
            self.disk.md_pages.insert((pg.region, pg.slot, pg.page), buf.clone());
        }
        if let Some(t) = plan.table {
            self.disk.md_slots = t;
        }
        while let Some(pg) = pool.md_next_page(&mut buf) {
            self.disk.md_pages.insert((pg.region, pg.slot, pg.page), buf.clone());
        }
        if self.disk.md_last_io.len() < rmr_core::server::MD_LAST_IO_PAGES {
            self.disk.md_last_io.resize(rmr_core::server::MD_LAST_IO_PAGES, vec![0u8; rmr_core::server::MD_PAGE_BYTES]);
        }
        for (p, page) in self.disk.md_last_io.iter_mut().enumerate() {
            if plan.last_io & (1 << p) != 0 {
                pool.md_last_io_page(p, page);
            }
        }
        pool.md_end(&plan, true);
    }

    /// Persist what a reply or a write depends on (the kernel waits for a round).
    pub(super) fn md_sync_point(&mut self) {
        if self.pool.as_mut().is_some_and(|p| p.md_need().is_some()) {
            self.md_round();
        }
    }

    /// Whether the node's durable write-intent record names `chunk`.
    pub(super) fn suspects_any(&self, chunk: u64) -> bool {
        match self.pool.as_ref().filter(|_| self.alive) {
            Some(p) => p.intent.durable(chunk),
            None => self.disk.recorded(chunk),
        }
    }

    /// A node not serving whose durable write-intent record names `chunk`: it may have lost
    /// writes there, which nobody else can know before it resolves its suspects (SUSPECT_TO_MAP
    /// or LAST_IO_TO_MAP) on its way back to NORMAL.
    pub(super) fn suspects(&self, chunk: u64) -> bool {
        let serving = self.alive && self.pool.as_ref().is_some_and(|p| p.state == SrvState::Normal);
        !serving && self.suspects_any(chunk)
    }
}

pub(super) struct Srv {
    pub(super) member: u32,
    pub(super) alive: bool,
    pub(super) pool: Option<Box<ServerPool<VecStorage>>>,
    pub(super) disk: Disk,
    pub(super) backend: Vec<Bop>,
    pub(super) parked: BTreeMap<u16, (IoMsg, u64, u64)>,
    pub(super) syncs: BTreeMap<u64, SyncReq>,
    pub(super) sched: SyncSched,
    pub(super) next_clear: u64,
    pub(super) clear_checks: BTreeMap<u64, (u32, u64)>,
    /// The client's session to this server and the pool it joined (the core's table).
    pub(super) client_sess: SessionPools<u8>,
    /// When this server notices that the client's session is lost (its RTRS heartbeat,
    /// [`SESSION_LOSS_MS`] after the cut). Until then it keeps the session and refuses the
    /// client's reconnect.
    pub(super) loss_due: Option<u64>,
    /// When the writer round that persists lazily cleared `wi` bits runs (the kernel's
    /// delayed `DW_MD`).
    pub(super) md_lazy_due: Option<u64>,
}

/// How long a storage node takes to notice a lost client session: rmr's RTRS heartbeat,
/// `hb_interval_ms` x (`hb_missed_max` + 1) at their defaults (rmr_glue.c).
pub const SESSION_LOSS_MS: u64 = 1000 * (4 + 1);

impl Sim {
    pub(super) fn srv_recv(&mut self, p: Packet) {
        let i = p.to - 1;
        let now = self.now;
        if !self.srvs[i].alive {
            return;
        }
        let Ok((_, msg)) = Msg::decode(&p.bytes) else {
            self.violation(format!("server {i} got an undecodable message"));
            return;
        };
        match msg {
            Msg::Cmd(seq, cmd) => {
                // Teeth hook: the server takes every command for the newest one.
                let seq = if self.cfg.bug_no_cmd_seq && seq != 0 { self.tag() as u32 } else { seq };
                let from_client = p.from == CLIENT;
                let s = &mut self.srvs[i];
                let Some(pool) = s.pool.as_mut() else {
                    let r = CmdRsp::err(cmd.ty(), Error::NoEnt);
                    let b = enc(&Msg::CmdRsp(r));
                    self.send(p.to, p.from, b, 0, p.tag);
                    return;
                };
                // Commands need a joined session (the core's SessionPools decides; peers' sync
                // sessions are not modelled as joins).
                let sync = if from_client {
                    match s.client_sess.admit(0, seq, &cmd) {
                        Ok(sync) => sync,
                        Err(e) => {
                            let r = CmdRsp::err(cmd.ty(), e);
                            let b = enc(&Msg::CmdRsp(r));
                            self.send(p.to, p.from, b, 0, p.tag);
                            return;
                        }
                    }
                } else {
                    true
                };
                let mut buf = [0u8; PIECE_BYTES];
                let before = pool.state;
                let own_ver = pool.md.map_ver;
                let (rsp, fx) = pool.handle_cmd(&cmd, sync, now, &mut buf);
                let after = pool.state;
                // A peer's MAP_CLEAR (refused when older than this node's map_ver).
                let clear_note = match cmd {
                    Cmd::MapClear { member_id, chunk, map_ver } => Some(format!(
                        "srv {i} MAP_CLEAR m{member_id} c{chunk} ver {map_ver} (own ver {own_ver}): bit {}",
                        if pool.maps.get(member_id).is_some_and(|m| m.test(chunk)) { "still set" } else { "clear" }
                    )),
                    _ => None,
                };
                if from_client {
                    if rsp.errno == 0 && matches!(cmd, Cmd::JoinPool(_) | Cmd::RejoinPool(_)) && s.client_sess.sync_of(0).is_some() {
                        // The old session is replaced by the new one (RTRS reconnected it).
                        let _ = s.client_sess.take_all().count();
                        pool.sessions = pool.sessions.saturating_sub(1);
                    }
                    s.client_sess.on_answer(0, seq, &cmd, rsp.errno);
                }
                if fx.stop_sync {
                    s.sched.stop();
                }
                if matches!(cmd, Cmd::LastIoToMap | Cmd::SuspectToMap | Cmd::MapDone { .. }) {
                    let mut b = [0u8; 1024];
                    let n = pool.maps.render_summary(&mut b);
                    let sum = String::from_utf8_lossy(&b[..n]).replace('\n', "; ");
                    let li: Vec<u64> = pool.last_io.iter().copied().filter(|c| *c != u64::MAX).collect();
                    self.log(format!("srv {i} after {:?}: errno {} last_io {li:?} maps {sum}", cmd.ty(), rsp.errno));
                }
                let bytes = enc(&Msg::CmdRsp(rsp));
                // The reply leaves after the bits it reports are durable.
                if !self.cfg.bug_md_lazy_reply {
                    self.srvs[i].md_sync_point();
                }
                if before != after {
                    self.log(format!("srv {i} {} -> {} ({:?})", before.name(), after.name(), cmd_brief(&cmd)));
                }
                self.send(p.to, p.from, bytes, 0, p.tag);
                if let Some(n) = clear_note {
                    self.log(n);
                }
            }
            Msg::Io(io) => self.srv_io(i, p.from, io, p.data, p.tag),
            Msg::IoRsp(r) => self.srv_sync_reply(i, p.tag, r, p.data),
            Msg::CmdRsp(r) => self.srv_cmd_reply(i, p.tag, r),
        }
    }

    pub(super) fn srv_io(&mut self, i: usize, from: usize, io: IoMsg, value: u64, tag: u64) {
        let now = self.now;
        let s = &mut self.srvs[i];
        let Some(pool) = s.pool.as_mut() else {
            let b = enc(&Msg::IoRsp(IoRsp { mem_id: io.mem_id, errno: Error::Io.errno() }));
            self.send(i + 1, from, b, 0, tag);
            return;
        };
        let d = pool.on_io(&io, now);
        if d == IoDecision::SubmitFua {
            self.count("write-promoted-fua");
        }
        let s = &mut self.srvs[i];
        match d {
            IoDecision::Submit | IoDecision::SubmitFua => {
                let mut io = io;
                if d == IoDecision::SubmitFua {
                    io.flags |= IO_FUA;
                }
                if io.flags & IO_SYNC != 0 {
                    // Peer read: serve directly from the disk.
                    let v = s.disk.read(io.id.b);
                    let b = enc(&Msg::IoRsp(IoRsp { mem_id: io.mem_id, errno: 0 }));
                    self.send(i + 1, from, b, v, tag);
                } else {
                    // The write is submitted after its marks and last_io slot are durable.
                    if !self.cfg.bug_md_lazy_io {
                        s.md_sync_point();
                    }
                    s.backend.push(Bop::Io { io, value, tag });
                }
            }
            IoDecision::Park | IoDecision::SyncFirst => {
                s.parked.insert(io.mem_id, (io, value, tag));
                self.log(format!("srv {i} parks mem{} on c{} ({d:?})", io.mem_id, io.id.b));
                if d == IoDecision::SyncFirst {
                    self.start_sync_read(i, io.id.b, false, MemberList::new());
                }
            }
            IoDecision::Reject(e) => {
                let b = enc(&Msg::IoRsp(IoRsp { mem_id: io.mem_id, errno: e.errno() }));
                self.send(i + 1, from, b, 0, tag);
            }
        }
    }

    pub(super) fn peers_up(&self, i: usize) -> MemberList {
        let mut l = MemberList::new();
        for (j, s) in self.srvs.iter().enumerate() {
            if j != i && self.link_up(i + 1, j + 1) {
                let _ = l.push(s.member);
            }
        }
        l
    }

    pub(super) fn start_sync_read(&mut self, i: usize, chunk: u64, thread: bool, skip: MemberList) {
        let peers = self.peers_up(i);
        let src = self.srvs[i].pool.as_ref().and_then(|p| p.sync_source(chunk, &peers, &skip));
        let Some(src) = src else {
            self.log(format!("srv {i} sync c{chunk}: no source"));
            self.finish_sync(i, chunk, Err(SYNC_NO_SOURCE.to_kernel()));
            self.sync_thread_done(i, thread, false);
            return;
        };
        let j = self.srvs.iter().position(|s| s.member == src).expect("peer");
        let tag = self.tag();
        let mut skip2 = skip;
        let _ = skip2.push(src);
        self.srvs[i].syncs.insert(chunk, SyncReq { tag, src, skip: skip2, thread });
        let io = IoMsg {
            id: RmrId::chunk(chunk),
            mem_id: 0,
            flags: IO_SYNC,
            offset: 0,
            len: CHUNK_SIZE,
            map_ver: 0,
            members: MemberList::new(),
        };
        if !self.send(i + 1, j + 1, enc(&Msg::Io(io)), 0, tag) {
            self.local.push_back(Packet { from: j + 1, to: i + 1, bytes: vec![2], data: 0, tag });
        }
    }

    pub(super) fn sync_read_failed(&mut self, i: usize, tag: u64) {
        let Some((&chunk, _)) = self.srvs[i].syncs.iter().find(|(_, r)| r.tag == tag) else { return };
        let r = self.srvs[i].syncs.remove(&chunk).expect("sync");
        // Try another peer.
        let thread = r.thread;
        self.start_sync_read_retry(i, chunk, thread, r.skip);
    }

    pub(super) fn start_sync_read_retry(&mut self, i: usize, chunk: u64, thread: bool, skip: MemberList) {
        if skip.len() >= self.srvs.len() - 1 {
            self.finish_sync(i, chunk, Err(SYNC_NO_SOURCE.to_kernel()));
            self.sync_thread_done(i, thread, false);
            return;
        }
        self.start_sync_read(i, chunk, thread, skip);
    }

    pub(super) fn srv_sync_reply(&mut self, i: usize, tag: u64, r: IoRsp, value: u64) {
        let Some((&chunk, _)) = self.srvs[i].syncs.iter().find(|(_, q)| q.tag == tag) else { return };
        if r.errno != 0 {
            let q = self.srvs[i].syncs.remove(&chunk).expect("sync");
            self.start_sync_read_retry(i, chunk, q.thread, q.skip);
            return;
        }
        if let Some(q) = self.srvs[i].syncs.get_mut(&chunk) {
            q.tag = 0; // now writing locally
        }
        // The sync write is a plain write: record it in the write-intent record first, and
        // make that durable before the write is submitted (as the kernel's sync_chunk does).
        let rec = self.srvs[i].pool.as_mut().map(|p| p.sync_write_intent(chunk));
        match rec {
            Some(Ok(_)) => self.srvs[i].md_sync_point(),
            Some(Err(e)) => return self.finish_sync(i, chunk, Err(e.errno())),
            None => return self.finish_sync(i, chunk, Err(Error::Io.errno())),
        }
        self.srvs[i].backend.push(Bop::SyncWrite { chunk, value });
    }

    /// A sync job ended: `Ok(value)` written here, or the negative errno the kernel's
    /// `sync_chunk` returns (no source: [`SYNC_NO_SOURCE`]; a failed local write: -EIO).
    pub(super) fn finish_sync(&mut self, i: usize, chunk: u64, r: Result<u64, i32>) {
        let read_errno = r.err().unwrap_or(0);
        let mut w = [0u16; QD];
        // The sync pool's NORMAL legs: every other node (a lost link drops the message).
        let peers: MemberList = {
            let mut l = MemberList::new();
            for (j, x) in self.srvs.iter().enumerate() {
                if j != i {
                    let _ = l.push(x.member);
                }
            }
            l
        };
        let s = &mut self.srvs[i];
        let thread = s.syncs.remove(&chunk).is_some_and(|q| q.thread);
        let Some(pool) = s.pool.as_mut() else { return };
        let done = pool.finish_sync(chunk, read_errno, &mut w);
        let targets = pool.map_clear_peers(&peers);
        let ok = done.cleared;
        self.log(format!("srv {i} sync c{chunk} {} ({} waiters)", if ok { "done" } else { "FAILED" }, done.waiters));
        // Waiters: resubmit (cleared) or fail with the core's errno.
        for mem in w.iter().take(done.waiters) {
            if let Some((io, value, tag)) = self.srvs[i].parked.remove(mem) {
                if ok {
                    self.srv_io(i, CLIENT, io, value, tag);
                } else {
                    let b = enc(&Msg::IoRsp(IoRsp { mem_id: io.mem_id, errno: done.waiter_errno }));
                    self.send(i + 1, CLIENT, b, 0, tag);
                }
            }
        }
        if let Some(cmd) = done.map_clear {
            let b = enc(&Msg::Cmd(0, cmd));
            for j in 0..self.srvs.len() {
                if targets.contains(self.srvs[j].member) {
                    let tag = self.tag();
                    self.send(i + 1, j + 1, b.clone(), 0, tag);
                }
            }
        }
        if thread {
            self.sync_thread_done(i, true, ok);
        }
    }

    pub(super) fn sync_thread_done(&mut self, i: usize, was_thread: bool, ok: bool) {
        if !was_thread {
            return;
        }
        let now = self.now;
        let s = &mut self.srvs[i];
        if let Some(pool) = s.pool.as_ref() {
            if s.sched.done(pool, ok, now) {
                self.log(format!("srv {i} sync thread stopped"));
            }
        }
    }

    pub(super) fn srv_cmd_reply(&mut self, i: usize, tag: u64, r: CmdRsp<'_>) {
        if r.ty == CmdType::MapCheck {
            if let Some((m, gen)) = self.srvs[i].clear_checks.remove(&tag) {
                let empty = r.errno == 0 && matches!(r.body, RspBody::Bool(true));
                if let Some(pool) = self.srvs[i].pool.as_mut() {
                    if pool.on_peer_check_reply(m, empty, gen) {
                        self.log(format!("srv {i} cleared peer map {m}"));
                    }
                }
            }
        }
    }

    pub(super) fn srv_map_clear_worker(&mut self, i: usize) {
        let Some(pool) = self.srvs[i].pool.as_ref() else { return };
        let targets = pool.map_clear_targets();
        let ver = pool.md.map_ver;
        let gens: Vec<(u32, u64)> =
            targets.iter().map(|m| (m, pool.maps.get(m).map_or(0, |x| x.gen()))).collect();
        for (m, gen) in gens {
            let Some(j) = self.srvs.iter().position(|s| s.member == m) else { continue };
            let tag = self.tag();
            if self.send(i + 1, j + 1, enc(&Msg::Cmd(0, Cmd::MapCheck { map_ver: ver })), 0, tag) {
                self.srvs[i].clear_checks.insert(tag, (m, gen));
            }
        }
    }

    pub(super) fn backend_complete(&mut self) {
        let cands: Vec<usize> = (0..self.srvs.len()).filter(|i| !self.srvs[*i].backend.is_empty()).collect();
        if cands.is_empty() {
            return;
        }
        let i = cands[self.rng.below(cands.len() as u64) as usize];
        let k = self.rng.below(self.srvs[i].backend.len() as u64) as usize;
        self.complete_bop(i, k);
    }

    pub(super) fn complete_bop(&mut self, i: usize, k: usize) {
        if k >= self.srvs[i].backend.len() {
            return;
        }
        let op = self.srvs[i].backend.remove(k);
        let flakey = self.srvs[i].disk.flakey;
        match op {
            Bop::Io { io, value, tag } => {
                let s = &mut self.srvs[i];
                let ok = !flakey;
                let mut v = 0;
                let mut stored = false;
                if ok {
                    if io.is_write() {
                        // Preflush first, then the data (FUA: durable at once).
                        if io.flags & IO_FLUSH != 0 {
                            s.disk.flush();
                        }
                        if io.len > 0 {
                            s.disk.write(io.id.b, value, io.flags & IO_FUA != 0);
                            stored = true;
                        }
                    } else {
                        v = s.disk.read(io.id.b);
                    }
                }
                if let Some(pool) = s.pool.as_mut() {
                    let before = pool.state;
                    let fx = pool.on_io_done(&io, ok);
                    if fx.stop_sync {
                        s.sched.stop();
                    }
                    if pool.md_lazy() && s.md_lazy_due.is_none() {
                        s.md_lazy_due = Some(self.now + rmr_core::consts::RMR_SRV_MD_LAZY_MS);
                    }
                    if before != pool.state {
                        let st = pool.state.name();
                        self.log(format!("srv {i} backend error -> {st}"));
                    }
                }
                if stored && !self.model.disowned.contains(&(value, i)) {
                    self.model.stored(value, i);
                }
                let errno = if ok { 0 } else { Error::Io.errno() };
                let b = enc(&Msg::IoRsp(IoRsp { mem_id: io.mem_id, errno }));
                self.send(i + 1, CLIENT, b, v, tag);
            }
            Bop::SyncWrite { chunk, value } => {
                if flakey {
                    if let Some(pool) = self.srvs[i].pool.as_mut() {
                        pool.io_allowed = false;
                        let fx = pool.on_fault();
                        if fx.stop_sync {
                            self.srvs[i].sched.stop();
                        }
                    }
                    self.finish_sync(i, chunk, Err(Error::Io.errno()));
                } else {
                    // A sync write is a plain write (rmr's sync_chunk): volatile until a flush.
                    self.srvs[i].disk.write(chunk, value, false);
                    self.model.stored(value, i);
                    self.finish_sync(i, chunk, Ok(value));
                }
            }
        }
    }

    pub(super) fn servers_pump(&mut self) {
        for i in 0..self.srvs.len() {
            loop {
                let s = &mut self.srvs[i];
                let Some(pool) = s.pool.as_mut() else { break };
                if !s.sched.running {
                    break;
                }
                match s.sched.next(pool) {
                    Some(c) => {
                        self.log(format!("srv {i} sync thread: c{c}"));
                        self.start_sync_read(i, c, true, MemberList::new());
                    }
                    None => {
                        let now = self.now;
                        let s = &mut self.srvs[i];
                        if let Some(pool) = s.pool.as_ref() {
                            if s.sched.check_end(pool, now) {
                                self.log(format!("srv {i} sync thread stopped"));
                            }
                        }
                        break;
                    }
                }
            }
        }
    }
}
