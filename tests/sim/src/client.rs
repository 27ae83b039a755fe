// SPDX-License-Identifier: GPL-2.0-or-later
//! The simulated compute client's IO: issuing reads and writes, their replies through the
//! core's `WriteReq` and read failover.

use super::*;

pub(super) enum CioKind {
    /// A write (`flags` FUA), or a pure flush (`IO_FLUSH`, no model entry; `mark` = the
    /// acknowledgement order it covers).
    Write { req: WriteReq, widx: usize, value: u64, ma_stage: bool, flags: u16, mark: u64 },
    /// `tried`: the legs that answered this read already (it skips them when retried).
    Read { slot: usize, k: Option<usize>, tried: u8 },
}

pub(super) struct Cio {
    pub(super) tag: u64,
    pub(super) chunk: u64,
    pub(super) kind: CioKind,
}

impl Sim {
    pub(super) fn new_client(&mut self, create: bool) -> Client {
        let mut pool = ClientPool::new(false, self.cfg.chunks);
        pool.bugs = self.cfg.bugs;
        pool.md = Some(base_md(self.name, self.cfg.chunks));
        let mut order: Vec<usize> = (0..self.cfg.servers).collect();
        if !create {
            // Assemble in a random order (scenario 7 wants both).
            for i in (1..order.len()).rev() {
                let j = self.rng.below(i as u64 + 1) as usize;
                order.swap(i, j);
            }
        }
        Client {
            pool,
            maps: MapSet::new(),
            ios: (0..QD).map(|_| None).collect(),
            op: None,
            op_tag: 0,
            op_wait: None,
            op_srv: None,
            op_cmd: None,
            next_tick: self.now + RMR_RECOVER_INTERVAL_MS,
            slot_srv: [usize::MAX; 4],
            to_add: order.into(),
            created: create,
            reassemble: 0,
            want_te: false,
            prev_states: [None; 4],
            checks: BTreeMap::new(),
            rejoin_wanted: [false; 4],
        }
    }

    pub(super) fn client_issue(&mut self) {
        let chunk = self.rng.below(self.cfg.chunks);
        let write = self.rng.permille(650);
        // Block layer cache control: some writes are FUA, and now and then a pure FLUSH.
        if self.rng.permille(40) {
            self.issue_flags(0, true, IO_WRITE | IO_FLUSH);
        } else {
            let fua = self.rng.permille(100);
            self.issue_flags(chunk, write, if fua { IO_WRITE | IO_FUA } else { IO_WRITE });
        }
    }

    /// Issue one client IO (write or read of `chunk`); returns the written value.
    pub(super) fn issue(&mut self, chunk: u64, write: bool) -> Option<u64> {
        self.issue_flags(chunk, write, IO_WRITE)
    }

    /// Issue one client IO: a read, a write with `flags` (`IO_FUA`), or a pure flush
    /// (`IO_FLUSH`, sent like a write of chunk 0 with no data, as rmr does).
    pub(super) fn issue_flags(&mut self, chunk: u64, write: bool, flags: u16) -> Option<u64> {
        let now = self.now;
        let v = self.next_value;
        let flush = write && flags & IO_FLUSH != 0;
        let mark = self.model.ack_seq;
        let c = self.client.as_mut()?;
        let mem = c.ios.iter().position(|x| x.is_none())?;
        let busy = !flush && c.ios.iter().flatten().any(|x| x.chunk == chunk && matches!(x.kind, CioKind::Write { .. }));
        let tag = {
            self.next_tag += 1;
            self.next_tag
        };
        if write && !busy {
            let req = match c.pool.plan_write(chunk, &mut c.maps, now) {
                Ok(r) => r,
                Err(_) => return None,
            };
            let (value, widx) = if flush {
                (0, usize::MAX)
            } else {
                let value = self.next_value;
                self.next_value += 1;
                let ws = &mut self.model.writes[chunk as usize];
                ws.push((value, WSt::InFlight));
                self.write_gen.insert(value, self.client_gen);
                (value, ws.len() - 1)
            };
            let io = IoMsg {
                id: RmrId::chunk(chunk),
                mem_id: mem as u16,
                flags,
                offset: 0,
                len: if flush { 0 } else { CHUNK_SIZE },
                map_ver: req.plan.map_ver,
                members: req.plan.piggyback,
            };
            let targets = req.plan.targets;
            c.ios[mem] = Some(Cio {
                tag,
                chunk,
                kind: CioKind::Write { req, widx, value, ma_stage: false, flags, mark },
            });
            let srvs: Vec<(usize, usize)> =
                (0..4).filter(|s| targets & (1 << s) != 0).map(|s| (s, c.slot_srv[s])).collect();
            let pig = io.members;
            let kind = if flush { "FLUSH" } else if flags & IO_FUA != 0 { "W(fua)" } else { "W" };
            self.log(format!("{kind} c{chunk} v{value} mem{mem} -> slots {targets:#b} pig {:?}", pig.as_slice()));
            let bytes = enc(&Msg::Io(io));
            for (slot, srv) in srvs {
                if !self.send(CLIENT, srv + 1, bytes.clone(), value, tag) {
                    self.local.push_back(Packet { from: srv + 1, to: CLIENT, bytes: vec![1], data: 0, tag });
                    let _ = slot;
                }
            }
        } else {
            let Ok(slot) = c.pool.plan_read() else { return None };
            c.pool.read_started(slot);
            c.pool.inflight += 1;
            let k = self.model.last_acked(chunk);
            c.ios[mem] = Some(Cio { tag, chunk, kind: CioKind::Read { slot, k, tried: 0 } });
            self.send_read(mem, slot);
        }
        Some(v)
    }

    pub(super) fn send_read(&mut self, mem: usize, slot: usize) {
        let Some(c) = self.client.as_mut() else { return };
        let Some(io) = c.ios[mem].as_ref() else { return };
        let (tag, chunk) = (io.tag, io.chunk);
        let srv = c.slot_srv[slot];
        let msg = IoMsg {
            id: RmrId::chunk(chunk),
            mem_id: mem as u16,
            flags: 0,
            offset: 0,
            len: CHUNK_SIZE,
            map_ver: c.pool.map_ver(),
            members: MemberList::new(),
        };
        self.log(format!("R c{chunk} mem{mem} -> slot {slot}"));
        if !self.send(CLIENT, srv + 1, enc(&Msg::Io(msg)), 0, tag) {
            self.local.push_back(Packet { from: srv + 1, to: CLIENT, bytes: vec![1], data: 0, tag });
        }
    }

    pub(super) fn client_io_error(&mut self, tag: u64, slot: usize) {
        self.client_io_reply(tag, slot, Errno::ECONNABORTED.to_kernel(), 0, None);
    }

    /// A leg's answer to an IO: `errno` 0 or negative (a transport error is -ECONNABORTED,
    /// as RTRS confirms a request on a closing path).
    pub(super) fn client_io_reply(&mut self, tag: u64, slot: usize, errno: i32, data: u64, ma: Option<bool>) {
        let ok = errno == 0;
        let now = self.now;
        let Some(c) = self.client.as_mut() else { return };
        let Some(mem) = c.ios.iter().position(|x| x.as_ref().is_some_and(|x| x.tag == tag)) else { return };
        let Some(io) = c.ios[mem].as_mut() else { return };
        let chunk = io.chunk;
        match &mut io.kind {
            CioKind::Write { req, widx, value, ma_stage, flags, mark } => {
                let st = if *ma_stage {
                    // A map-add reply (or a transport error during the map-add round).
                    let r = ma.unwrap_or(false) && ok;
                    req.on_map_add_member_reply(&mut c.pool, &mut c.maps, slot, r, now)
                } else {
                    if ma.is_some() {
                        return;
                    }
                    req.on_reply(&mut c.pool, &mut c.maps, slot, ok, now)
                };
                let (widx, value, flags, mark) = (*widx, *value, *flags, *mark);
                match st {
                    WriteStep::Wait => {}
                    WriteStep::MapAdd { targets, members } => {
                        *ma_stage = true;
                        let map_ver = c.pool.map_ver();
                        let sends: Vec<(usize, usize, Cmd<'static>)> =
                            req.map_add_cmds(map_ver).map(|(s, cmd)| (s, c.slot_srv[s], cmd)).collect();
                        self.log(format!("W c{chunk} v{value}: map-add {:?} -> {targets:#b}", members.as_slice()));
                        for m in members.iter() {
                            if let Some(j) = self.srvs.iter().position(|x| x.member == m) {
                                self.model.disown(value, j);
                            }
                        }
                        for (_s, srv, cmd) in sends {
                            if !self.send(CLIENT, srv + 1, Sim::cmd_bytes(&cmd, tag), 0, tag) {
                                self.local.push_back(Packet { from: srv + 1, to: CLIENT, bytes: vec![1], data: 0, tag });
                            }
                        }
                    }
                    WriteStep::Done(r) => {
                        c.ios[mem] = None;
                        c.pool.io_finished();
                        if flags & IO_FLUSH != 0 {
                            if r.is_ok() {
                                self.model.promised_upto = self.model.promised_upto.max(mark);
                            }
                            self.log(format!("FLUSH done {r:?} (covers acks up to #{mark})"));
                        } else {
                            self.model.set(chunk, widx, if r.is_ok() { WSt::Acked } else { WSt::Failed });
                            if r.is_ok() {
                                self.model.acked(value, flags & IO_FUA != 0);
                                if self.model.excused.contains(&value) {
                                    self.log(format!("W c{chunk} v{value} acknowledged but already lost by every holder"));
                                }
                            }
                            self.log(format!("W c{chunk} v{value} done {r:?}"));
                        }
                    }
                }
            }
            CioKind::Read { slot: rslot, k, tried } => {
                if *rslot != slot || ma.is_some() {
                    return;
                }
                let k = *k;
                let before = *tried;
                *tried |= 1 << slot;
                // The simulator counts reads in `inflight` as the kernel's drain counts its IO
                // units (see `issue_flags`), so it releases them here.
                match c.pool.on_read_reply(slot, ReadOutcome::from_errno(errno), before).0 {
                    ReadStep::Done => {
                        c.ios[mem] = None;
                        c.pool.io_finished();
                        self.log(format!("R c{chunk} = v{data} (slot {slot})"));
                        if !self.model.valid(chunk, k, data) {
                            let acked = k.map(|k| self.model.writes[chunk as usize][k].0);
                            self.violation(format!(
                                "read of chunk {chunk} from slot {slot} returned v{data}, last acked before read v{acked:?}, history {:?}",
                                self.model.writes[chunk as usize]
                            ));
                        }
                    }
                    ReadStep::Retry => match c.pool.plan_read_excluding(*tried) {
                        Ok(s) => {
                            c.pool.read_started(s);
                            *rslot = s;
                            self.send_read(mem, s);
                        }
                        Err(_) => {
                            c.ios[mem] = None;
                            c.pool.io_finished();
                            self.log(format!("R c{chunk} EIO"));
                        }
                    },
                    ReadStep::Fail => {
                        c.ios[mem] = None;
                        c.pool.io_finished();
                        self.log(format!("R c{chunk} EIO"));
                    }
                }
            }
        }
    }

    pub(super) fn client_recv(&mut self, p: Packet) {
        let Ok((_, msg)) = Msg::decode(&p.bytes) else {
            self.violation("client got an undecodable message".into());
            return;
        };
        let Some(c) = self.client.as_ref() else { return };
        let Some(slot) = (0..4).find(|i| c.slot_srv[*i] == p.from - 1) else {
            // Reply to a JOIN in progress (slot not assigned yet).
            if let Msg::CmdRsp(r) = msg {
                if p.tag == c.op_tag {
                    self.op_reply(usize::MAX, &r);
                }
            }
            return;
        };
        match msg {
            Msg::IoRsp(r) => self.client_io_reply(p.tag, slot, r.errno, p.data, None),
            Msg::CmdRsp(r) => {
                if r.ty == CmdType::MapCheck && c.checks.contains_key(&p.tag) {
                    let now = self.now;
                    let c = self.client.as_mut().expect("client");
                    c.checks.remove(&p.tag);
                    let empty = r.errno == 0 && matches!(r.body, RspBody::Bool(true));
                    if c.pool.on_map_check_reply(slot, empty, &mut c.maps, now) {
                        self.log(format!("client map of slot {slot} cleared"));
                    }
                } else if r.ty == CmdType::MapAdd && p.tag != c.op_tag {
                    self.client_io_reply(p.tag, slot, 0, 0, Some(r.errno == 0));
                } else if p.tag == c.op_tag {
                    self.op_reply(slot, &r);
                }
            }
            _ => self.violation("client got a request".into()),
        }
    }
}
