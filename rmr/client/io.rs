// SPDX-License-Identifier: GPL-2.0-or-later
//! The replicated IO path (SPEC §5.1, §5.2): plan, submit to every target leg, collect the
//! confirmations, MAP_ADD for missed legs, read failover; sync reads for the server role.

#![deny(unsafe_code)]

use super::*;

impl CltPool {
    /// Starts one IO (§5.1, §5.2). See `rmr_clt_request` in api/abi.rs. A refused IO comes back
    /// with the errno, not completed.
    pub(crate) fn request(this: ArcBorrow<'_, CltPool>, io: UpperIo) -> Result<(), (UpperIo, Errno)> {
        Self::request_tried(this, io, 0)
    }

    /// [`Self::request`] for a read that the legs in `tried` answered already (0 for a new IO).
    fn request_tried(this: ArcBorrow<'_, CltPool>, io: UpperIo, tried: u8) -> Result<(), (UpperIo, Errno)> {
        // Every refusal gives the IO back.
        macro_rules! refuse {
            ($e:expr) => {
                return Err((io, $e))
            };
        }
        let (rflags, rlen, roffset) = (io.flags(), io.len(), io.offset());
        let write = rflags & (RMR_IO_WRITE | RMR_IO_DISCARD) != 0 || (rflags & RMR_IO_FLUSH != 0 && rlen == 0);
        if rflags & RMR_IO_DISCARD != 0 && (rlen == 0 || rflags & (RMR_IO_FLUSH | RMR_IO_FUA) != 0) {
            pr_err!("client pool {}: discard of {} bytes with flags {:#x} (EINVAL)\n", this.name.as_str(), rlen, rflags);
            refuse!(Errno::EINVAL);
        }
        let chunk = roffset >> this.chunk_shift;
        let in_chunk = roffset & (u64::from(this.chunk_size) - 1);
        if in_chunk + u64::from(rlen) > u64::from(this.chunk_size) {
            pr_err!("client pool {}: request crosses a chunk (offset {} len {}) (EINVAL)\n", this.name.as_str(), roffset, rlen);
            refuse!(Errno::EINVAL);
        }
        // 1. Targets and their transports: every NORMAL leg for a write, the round-robin
        //    choice for a read.
        let (mask, sess) = {
            let mut c = this.lock();
            let mask = if write {
                c.core.mask(LegState::Normal)
            } else {
                match c.core.plan_read_excluding(tried) {
                    Ok(s) => 1u8 << s,
                    Err(CoreError::Busy) => refuse!(Errno::EAGAIN),
                    Err(e) => refuse!(cerr(e)),
                }
            };
            let mut s: [Option<Arc<CltSess>>; 4] = [None, None, None, None];
            for (i, x) in s.iter_mut().enumerate() {
                if mask & (1 << i) != 0 {
                    *x = c.legs[i].as_ref().map(|l| l.sess.clone());
                }
            }
            (mask, s)
        };
        if mask == 0 {
            refuse!(Errno::EIO);
        }
        // 2. Permits, without sleeping. Every early return below drops them, which gives
        //    them back.
        let mut permits: [Option<OwnedPermit>; 4] = [None, None, None, None];
        for i in 0..4 {
            if let Some(s) = sess[i].as_ref() {
                match OwnedPermit::take(s) {
                    Some(p) => permits[i] = Some(p),
                    None => refuse!(Errno::EAGAIN),
                }
            }
        }
        // 3. Unit and routing under the lock.
        let now = now_ms();
        let mut guard = this.lock();
        let c = &mut *guard;
        // The unit on top of the free stack; taken off it below, once nothing can fail.
        let Some(u) = c.free.top() else {
            refuse!(Errno::EAGAIN);
        };
        let (targets, plan_ver, piggy, req) = if write {
            match c.core.plan_write(chunk, &mut c.maps, now) {
                Ok(req) => (req.plan.targets, req.plan.map_ver, req.plan.piggyback, Some(req)),
                Err(CoreError::Busy) => refuse!(Errno::EAGAIN),
                Err(e) => refuse!(cerr(e)),
            }
        } else if c.core.read_still_routable(lowest_bit(mask)) {
            (mask, c.core.map_ver(), MemberList::new(), None)
        } else {
            // The leg left NORMAL (or IO froze) since it was chosen: try again.
            refuse!(Errno::EAGAIN);
        };
        if targets & !mask != 0 {
            // A leg turned NORMAL between the two locks (only under a freeze): retry.
            if let Some(_r) = req {
                c.core.io_finished();
            }
            refuse!(Errno::EAGAIN);
        }
        let mut flags = 0u16;
        if rflags & RMR_IO_WRITE != 0 {
            flags |= wire::IO_WRITE;
        }
        if rflags & RMR_IO_FLUSH != 0 {
            flags |= wire::IO_FLUSH | if rlen == 0 { wire::IO_WRITE } else { 0 };
        }
        if rflags & RMR_IO_FUA != 0 {
            flags |= wire::IO_FUA;
        }
        // Discard (and write-zeroes): a write without data; the stores zero the range.
        let discard = rflags & RMR_IO_DISCARD != 0;
        if discard {
            flags |= wire::IO_DISCARD | wire::IO_WRITE;
        }
        let msg = IoMsg {
            id: RmrId::chunk(chunk),
            mem_id: u as u16,
            flags,
            offset: in_chunk as u32,
            len: rlen,
            map_ver: plan_ver,
            members: if flags & wire::IO_WRITE != 0 { piggy } else { MemberList::new() },
        };
        // RTRS copies the message into its request during the call: a stack copy serves every
        // leg.
        let mut mbuf = [0u8; 128];
        let n = match Msg::Io(msg).encode(this.group_id, &mut mbuf) {
            Ok(n) => n,
            Err(e) => {
                if write {
                    c.core.io_finished();
                }
                refuse!(cerr(e));
            }
        };
        if !write {
            // In flight on its leg until its reply (least-pending reads).
            c.core.read_started(lowest_bit(targets));
        }
        // 4. Each target's request, prepared while the lock is held: its slot, its permit and
        //    its own copy of the IO's scatterlist (RTRS DMA-maps the list per device). The
        //    permits of legs this IO does not use go back here.
        let mut failed: u8 = 0;
        let mut prep: [Option<Prepared<'_, CltPool>>; 4] = [None, None, None, None];
        for (i, p) in permits.iter_mut().enumerate() {
            let p = p.take();
            if targets & (1 << i) == 0 {
                continue;
            }
            // A target without its session or permit cannot be sent to: it counts as failed
            // (skipping it would leave the unit waiting for a reply forever).
            let (Some(s), Some(p)) = (sess[i].as_ref(), p) else {
                failed |= 1 << i;
                continue;
            };
            let data = if discard { Payload::NoData } else { Payload::Pages(&io) };
            match LegRequests::prepare(this, u, i, s, p, data) {
                Ok(x) => prep[i] = Some(x),
                Err(e) => {
                    if e == Errno::EINVAL && ratelimit() {
                        pr_err!(
                            "client pool {}: IO of {} bytes in {} segments: more than {} segments, or a list shorter than the IO (EINVAL)\n",
                            this.name.as_str(), io.len(), io.sg_cnt(), sg::SEGS
                        );
                    }
                    failed |= 1 << i;
                }
            }
        }
        c.free.pop();
        let unit = &mut c.units[u];
        unit.busy = true;
        unit.io = Some(io);
        unit.write = write;
        unit.req = req;
        unit.read_slot = lowest_bit(targets);
        unit.tried = tried;
        unit.served = 0;
        c.in_flight += 1;
        // 5. The sends run after the lock is released, so submitters on other CPUs do not
        //    queue behind this IO's `ib_post_send`s. Nothing finishes the unit meanwhile: it
        //    finishes only when every target has answered, and a leg not sent to yet cannot.
        //    A send failure counts as that leg's failed reply.
        drop(guard);
        let write_op = flags & wire::IO_WRITE != 0;
        for (i, p) in prep.iter_mut().enumerate() {
            if let Some(p) = p.take() {
                if p.send(write_op, &mbuf[..n]).is_err() {
                    failed |= 1 << i;
                }
            }
        }
        drop(prep);
        drop(sess);
        for i in 0..4 {
            if failed & (1 << i) != 0 {
                Self::on_leg_reply(this, u, i, -(Errno::EIO as i32));
            }
        }
        Ok(())
    }

    /// One leg's answer to unit `u` (softirq context).
    pub(super) fn on_leg_reply(this: ArcBorrow<'_, CltPool>, u: usize, slot: usize, errno: c_int) {
        let done = {
            let mut g = this.lock();
            this.on_leg_reply_locked(this, &mut g, u, slot, errno)
        };
        if let Some(d) = done {
            d.run();
        }
    }

    pub(super) fn on_leg_reply_locked(&self, this: ArcBorrow<'_, CltPool>, c: &mut Core, u: usize, slot: usize, errno: c_int) -> Option<Done> {
        let now = now_ms();
        let unit = c.units.get_mut(u)?;
        if !unit.busy {
            return None;
        }
        if !unit.write {
            // §5.2, decided by the core: served, retried on a NORMAL leg not tried yet, or -EIO.
            let tried = c.units.get(u).map_or(0, |x| x.tried);
            let outcome = ReadOutcome::from_errno(errno);
            let (step, t) = c.core.on_read_reply(slot, outcome, tried);
            // ratelimit() only for a line to print: each call spends the window's budget.
            if let Some(t) = t.filter(|_| ratelimit()) {
                pr_warn!("client pool {}: slot {}: read failed ({}), {} -> {}\n", self.name.as_str(), slot, errno, t.from.name(), t.to.name());
            }
            if outcome == ReadOutcome::NotHere && ratelimit() {
                pr_info!("client pool {}: slot {}: chunk stale there and not syncable (ENODATA), {}\n",
                    self.name.as_str(), slot, if step == ReadStep::Retry { "reading another leg" } else { "no leg left (EIO)" });
            }
            let tried = tried | (1u8 << (slot % 4));
            let unit = c.units.get_mut(u)?;
            match step {
                ReadStep::Done => {
                    if let Some(Some(l)) = c.legs.get(slot) {
                        l.reads.fetch_add(1, Ordering::Relaxed);
                    }
                    unit.served = 1 << slot;
                    return self.finish_unit(c, u, 0);
                }
                ReadStep::Fail => return self.finish_unit(c, u, Errno::EIO.to_kernel()),
                ReadStep::Retry => {}
            }
            // The read goes on from a work item (it may sleep); the unit keeps the IO until
            // then, so a work item that cannot be queued leaves it to complete here.
            unit.tried = tried;
            let pool: Arc<CltPool> = this.into();
            let spawned = kernel::workqueue::system().try_spawn(GFP_ATOMIC, move || {
                CltPool::retry_unit(pool.as_arc_borrow(), u);
            });
            if spawned.is_err() {
                return self.finish_unit(c, u, Errno::EIO.to_kernel());
            }
            return None;
        }
        let mut req = unit.req?;
        if errno == 0 {
            unit.served |= 1 << slot;
            if let Some(Some(l)) = c.legs.get(slot) {
                l.writes.fetch_add(1, Ordering::Relaxed);
            }
        }
        let before = c.core.leg(slot).map(|l| l.state);
        let step = req.on_reply(&mut c.core, &mut c.maps, slot, errno == 0, now);
        if let (Some(b), Some(a)) = (before, c.core.leg(slot).map(|l| l.state)) {
            if a != b && ratelimit() {
                pr_warn!("client pool {}: slot {}: write failed ({}), {} -> {}\n", self.name.as_str(), slot, errno, b.name(), a.name());
            }
        }
        if let Some(unit) = c.units.get_mut(u) {
            unit.req = Some(req);
        }
        match step {
            WriteStep::Wait => None,
            WriteStep::Done(r) => {
                c.core.io_finished();
                self.finish_unit(c, u, r.map_or_else(|e| e.errno(), |()| 0))
            }
            WriteStep::MapAdd { .. } => {
                // MAP_ADD sleeps on the network: finish in a work item.
                let pool: Arc<CltPool> = this.into();
                let spawn = kernel::workqueue::system().try_spawn(GFP_ATOMIC, move || {
                    pool.map_add(u);
                });
                if spawn.is_err() {
                    c.core.io_finished();
                    return self.finish_unit(c, u, Errno::EIO.to_kernel());
                }
                None
            }
        }
    }

    /// §5.1 step 4: record the missed chunk on the surviving legs, then complete the write.
    /// The core lists the round's MAP_ADDs and decides each leg's outcome from its replies.
    pub(super) fn map_add(&self, u: usize) {
        let mut cmds: [Option<(usize, Cmd<'static>)>; 16] = [None; 16];
        {
            let c = self.lock();
            let Some(req) = c.units.get(u).and_then(|x| x.req) else { return };
            for (dst, cmd) in cmds.iter_mut().zip(req.map_add_cmds(c.core.map_ver())) {
                *dst = Some(cmd);
            }
        }
        let mut step = WriteStep::Wait;
        for (slot, cmd) in cmds.iter().flatten() {
            let awaits = self.lock().units.get(u).and_then(|x| x.req).is_some_and(|r| r.map_add_awaits(*slot));
            if !awaits {
                continue;
            }
            let ok = self.send_slot(*slot, cmd).is_ok();
            let mut c = self.lock();
            let c = &mut *c;
            let Some(mut req) = c.units.get(u).and_then(|x| x.req) else { return };
            step = req.on_map_add_member_reply(&mut c.core, &mut c.maps, *slot, ok, now_ms());
            if let Some(x) = c.units.get_mut(u) {
                x.req = Some(req);
            }
        }
        let e = match step {
            WriteStep::Done(Ok(())) => 0,
            _ => Errno::EIO.to_kernel(),
        };
        let done = {
            let mut g = self.lock();
            g.core.io_finished();
            self.finish_unit(&mut g, u, e)
        };
        if let Some(d) = done {
            d.run();
        }
    }

    /// Releases unit `u`; the caller runs the returned completion after unlocking.
    pub(super) fn finish_unit(&self, c: &mut Core, u: usize, errno: c_int) -> Option<Done> {
        let unit = c.units.get_mut(u)?;
        let io = unit.io.take();
        let served = unit.served;
        if unit.busy && !c.free.push(u as u16) {
            pr_err!("client pool {}: unit {} released twice (free list full)\n", self.name.as_str(), u);
        }
        unit.busy = false;
        unit.req = None;
        c.in_flight = c.in_flight.saturating_sub(1);
        Some(Done { io: io?, errno, served })
    }

    /// Takes unit `u`'s read, which the legs in the unit's `tried` answered without the
    /// data, off its unit and issues it again (process context).
    pub(super) fn retry_unit(this: ArcBorrow<'_, CltPool>, u: usize) {
        let (io, tried) = {
            let mut g = this.lock();
            let Some(unit) = g.units.get_mut(u) else { return };
            let (io, tried) = (unit.io.take(), unit.tried);
            let _ = this.finish_unit(&mut g, u, 0);
            (io, tried)
        };
        let Some(mut io) = io else { return };
        for _ in 0..1000 {
            match Self::request_tried(this, io, tried) {
                Ok(()) => return,
                Err((back, Errno::EAGAIN)) => {
                    io = back;
                    sleep_ms(2);
                }
                Err((back, e)) => {
                    back.complete(e.to_kernel(), 0);
                    return;
                }
            }
        }
        io.complete(Errno::EIO.to_kernel(), 0);
    }

    /// A blocking IO_SYNC read of `buf.len()` bytes at `offset` of `chunk` from `member`,
    /// bounded by `cmd_timeout_ms`.
    pub(crate) fn sync_read(&self, member: u32, chunk: u64, offset: u32, buf: &mut [u8]) -> Result<(), Errno> {
        let len = u32::try_from(buf.len()).map_err(|_| Errno::EINVAL)?;
        let leg = {
            let c = self.lock();
            let slot = c.core.slot_of(member).ok_or(Errno::ENOENT)?;
            if c.core.leg(slot).map(|l| l.state) != Some(LegState::Normal) {
                return Err(Errno::EIO);
            }
            c.legs[slot].clone().ok_or(Errno::ENOENT)?
        };
        let msg = IoMsg {
            id: RmrId::chunk(chunk),
            mem_id: 0,
            flags: wire::IO_SYNC,
            offset,
            len,
            map_ver: 0,
            members: MemberList::new(),
        };
        let mut m = [0u8; 128];
        let n = Msg::Io(msg).encode(self.group_id, &mut m).map_err(cerr)?;
        leg.sess.read_sync(&m[..n], buf)
    }
}

/// A completion to run once the pool lock is released.
pub(super) struct Done {
    io: UpperIo,
    errno: c_int,
    served: u32,
}

impl Done {
    fn run(self) {
        self.io.complete(self.errno, self.served);
    }
}

impl LegReplies for CltPool {
    fn requests(&self) -> &LegRequests<CltPool> {
        &self.reqs
    }

    fn leg_reply(this: ArcBorrow<'_, CltPool>, unit: usize, slot: usize, errno: c_int) {
        CltPool::on_leg_reply(this, unit, slot, errno);
    }
}
