// SPDX-License-Identifier: GPL-2.0-or-later
//! The replicated IO path (SPEC §5.1, §5.2): plan, submit to every target leg, collect the
//! confirmations, MAP_ADD for missed legs, read failover; sync reads for the server role.

use super::*;

impl CltPool {
    /// Starts one IO (§5.1, §5.2). See `rmr_clt_request` in abi.rs.
    ///
    /// # Safety
    /// `io` valid and owned by rmr until its `done` is called.
    pub(crate) unsafe fn request(&self, io: *mut RmrCltIo) -> Result<(), Errno> {
        // SAFETY: per the contract.
        unsafe { self.request_tried(io, 0) }
    }

    /// [`Self::request`] for a read that the legs in `tried` answered already (0 for a new IO).
    ///
    /// # Safety
    /// As for [`Self::request`].
    unsafe fn request_tried(&self, io: *mut RmrCltIo, tried: u8) -> Result<(), Errno> {
        // SAFETY: per the contract.
        let r = unsafe { &mut *io };
        let write = r.flags & (RMR_IO_WRITE | RMR_IO_DISCARD) != 0 || (r.flags & RMR_IO_FLUSH != 0 && r.len == 0);
        if r.flags & RMR_IO_DISCARD != 0 && (r.len == 0 || r.flags & (RMR_IO_FLUSH | RMR_IO_FUA) != 0) {
            pr_err!("client pool {}: discard of {} bytes with flags {:#x} (EINVAL)\n", self.name.as_str(), r.len, r.flags);
            return Err(Errno::EINVAL);
        }
        let chunk = r.offset >> self.chunk_shift;
        let in_chunk = r.offset & (u64::from(self.chunk_size) - 1);
        if in_chunk + u64::from(r.len) > u64::from(self.chunk_size) {
            pr_err!("client pool {}: request crosses a chunk (offset {} len {}) (EINVAL)\n", self.name.as_str(), r.offset, r.len);
            return Err(Errno::EINVAL);
        }
        r.served = 0;
        // 1. Targets and their transports: every NORMAL leg for a write, the round-robin
        //    choice for a read.
        let (mask, sess) = {
            let mut c = self.lock();
            let mask = if write {
                c.core.mask(LegState::Normal)
            } else {
                match c.core.plan_read_excluding(tried) {
                    Ok(s) => 1u8 << s,
                    Err(CoreError::Busy) => return Err(Errno::EAGAIN),
                    Err(e) => return Err(cerr(e)),
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
            return Err(Errno::EIO);
        }
        // 2. Permits, without sleeping. Every early return below drops them, which gives
        //    them back.
        let mut permits: [Option<OwnedPermit>; 4] = [None, None, None, None];
        for i in 0..4 {
            if let Some(s) = sess[i].as_ref() {
                match OwnedPermit::take(s) {
                    Some(p) => permits[i] = Some(p),
                    None => return Err(Errno::EAGAIN),
                }
            }
        }
        // 3. Unit and routing under the lock.
        let now = now_ms();
        let mut guard = self.lock();
        let c = &mut *guard;
        // The unit on top of the free stack; taken off it below, once nothing can fail.
        let Some(u) = c.free.top() else {
            return Err(Errno::EAGAIN);
        };
        let (targets, plan_ver, piggy, req) = if write {
            match c.core.plan_write(chunk, &mut c.maps, now) {
                Ok(req) => (req.plan.targets, req.plan.map_ver, req.plan.piggyback, Some(req)),
                Err(CoreError::Busy) => return Err(Errno::EAGAIN),
                Err(e) => return Err(cerr(e)),
            }
        } else if c.core.read_still_routable(lowest_bit(mask)) {
            (mask, c.core.map_ver(), MemberList::new(), None)
        } else {
            // The leg left NORMAL (or IO froze) since it was chosen: try again.
            return Err(Errno::EAGAIN);
        };
        if targets & !mask != 0 {
            // A leg turned NORMAL between the two locks (only under a freeze): retry.
            if let Some(_r) = req {
                c.core.io_finished();
            }
            return Err(Errno::EAGAIN);
        }
        // Return the permits of legs this IO does not use.
        for (i, p) in permits.iter_mut().enumerate() {
            if targets & (1 << i) == 0 {
                *p = None;
            }
        }
        let mut flags = 0u16;
        if r.flags & RMR_IO_WRITE != 0 {
            flags |= wire::IO_WRITE;
        }
        if r.flags & RMR_IO_FLUSH != 0 {
            flags |= wire::IO_FLUSH | if r.len == 0 { wire::IO_WRITE } else { 0 };
        }
        if r.flags & RMR_IO_FUA != 0 {
            flags |= wire::IO_FUA;
        }
        // Discard (and write-zeroes): a write without data; the stores zero the range.
        let discard = r.flags & RMR_IO_DISCARD != 0;
        if discard {
            flags |= wire::IO_DISCARD | wire::IO_WRITE;
        }
        let msg = IoMsg {
            id: RmrId::chunk(chunk),
            mem_id: u as u16,
            flags,
            offset: in_chunk as u32,
            len: r.len,
            map_ver: plan_ver,
            members: if flags & wire::IO_WRITE != 0 { piggy } else { MemberList::new() },
        };
        // RTRS copies the message into its request during the call: a stack copy serves every
        // leg.
        let mut mbuf = [0u8; 128];
        let n = match Msg::Io(msg).encode(self.group_id, &mut mbuf) {
            Ok(n) => n,
            Err(e) => {
                if write {
                    c.core.io_finished();
                }
                return Err(cerr(e));
            }
        };
        if !write {
            // In flight on its leg until its reply (least-pending reads).
            c.core.read_started(lowest_bit(targets));
        }
        c.free.pop();
        let unit = &mut c.units[u];
        unit.busy = true;
        unit.io = io;
        unit.write = write;
        unit.req = req;
        unit.read_slot = lowest_bit(targets);
        unit.tried = tried;
        unit.served = 0;
        // What the sends below need, taken while the lock is held: the raw permits (the unit
        // owns them until each leg's confirmation) and each leg's scatterlist.
        let mut raw: [*mut c_void; 4] = [core::ptr::null_mut(); 4];
        for (r, p) in raw.iter_mut().zip(permits.iter()) {
            if let Some(p) = p {
                *r = p.as_raw();
            }
        }
        unit.permits = permits;
        c.in_flight += 1;
        // 4. Each target gets its own copy of the caller's scatterlist (RTRS DMA-maps the
        //    list per device).
        let mut failed: u8 = 0;
        let mut sgs: [(*mut c_void, u32); 4] = [(core::ptr::null_mut(), 0); 4];
        for (i, sg_i) in sgs.iter_mut().enumerate() {
            if targets & (1 << i) == 0 {
                continue;
            }
            let (sgp, nents) = if r.len == 0 || r.sg.is_null() || discard {
                (core::ptr::null_mut(), 0)
            } else {
                // SAFETY: table `u * 4 + i` belongs to unit `u`, which this call set busy above
                // (its previous requests were all confirmed before it was freed); the
                // caller's list has `sg_cnt` entries and lives until `done`.
                match unsafe { self.sgs.copy_into(u * 4 + i, r.sg, r.sg_cnt) } {
                    Ok(x) => x,
                    Err(_) => {
                        if ratelimit() {
                            pr_err!("client pool {}: IO of {} segments, at most {} (EINVAL)\n", self.name.as_str(), r.sg_cnt, sg::SEGS);
                        }
                        failed |= 1 << i;
                        continue;
                    }
                }
            };
            if sg::audit_submit(sgp) {
                c.units[u].sg_audited[i] = sgp;
            }
            *sg_i = (sgp, nents);
        }
        // 5. The sends run after the lock is released, so submitters on other CPUs do not
        //    queue behind this IO's `ib_post_send`s. Nothing frees the unit meanwhile: it
        //    finishes only when every target has answered, and a leg not sent to yet cannot.
        //    A send failure counts as that leg's failed reply.
        drop(guard);
        for i in 0..4 {
            if targets & (1 << i) == 0 || failed & (1 << i) != 0 {
                continue;
            }
            // A target without its session, permit or token cannot be sent to: it counts as
            // failed (skipping it would leave the unit waiting for a reply forever).
            let (Some(s), false, Some(tok)) = (sess[i].as_ref(), raw[i].is_null(), self.tokens.get(u * 4 + i)) else {
                failed |= 1 << i;
                continue;
            };
            let tok = (tok as *const Token).cast_mut().cast::<c_void>();
            let (sgp, nents) = sgs[i];
            // SAFETY: the permit was taken from this session and stays held by the unit until
            // `on_leg_reply` (this leg's confirmation) or, on failure here, `finish_unit`
            // drops it; the list is the unit's copy for this leg, left alone until the
            // confirmation, and its pages are the caller's, which live until `done`; the
            // token lives in the pool, which outlives every unit in use (close drains).
            let res = unsafe {
                s.request_raw(flags & wire::IO_WRITE != 0, raw[i], &mbuf[..n], sgp, nents, if discard { 0 } else { r.len as usize }, io_conf, tok)
            };
            if res.is_err() {
                failed |= 1 << i;
            }
        }
        drop(sess);
        for i in 0..4 {
            if failed & (1 << i) != 0 {
                self.on_leg_reply(u, i, -(Errno::EIO as i32));
            }
        }
        Ok(())
    }

    /// One leg's answer to unit `u` (softirq context).
    pub(super) fn on_leg_reply(&self, u: usize, slot: usize, errno: c_int) {
        let done = {
            let mut g = self.lock();
            self.on_leg_reply_locked(&mut g, u, slot, errno)
        };
        if let Some(d) = done {
            d.run();
        }
    }

    pub(super) fn on_leg_reply_locked(&self, c: &mut Core, u: usize, slot: usize, errno: c_int) -> Option<Done> {
        let now = now_ms();
        let unit = c.units.get_mut(u)?;
        if !unit.busy {
            return None;
        }
        // Return this leg's permit (RTRS confirmed the request).
        if let Some(p) = unit.permits.get_mut(slot) {
            *p = None;
        }
        let sgp = core::mem::replace(&mut unit.sg_audited[slot], core::ptr::null_mut());
        if !sgp.is_null() {
            sg::audit_done(sgp);
        }
        let leg = c.legs.get(slot).and_then(|l| l.clone());
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
                    if let Some(l) = leg {
                        l.reads.fetch_add(1, Ordering::Relaxed);
                    }
                    unit.served = 1 << slot;
                    return self.finish_unit(c, u, 0);
                }
                ReadStep::Fail => return self.finish_unit(c, u, Errno::EIO.to_kernel()),
                ReadStep::Retry => {}
            }
            let io = unit.io;
            unit.io = core::ptr::null_mut();
            let _ = self.finish_unit(c, u, 0);
            let (pool, iop) = (self.arc(), IoPtr(io));
            let spawned = kernel::workqueue::system().try_spawn(GFP_ATOMIC, move || {
                let iop = iop;
                pool.retry(iop.0, tried);
            });
            if spawned.is_err() {
                return Some(Done { io, errno: Errno::EIO.to_kernel(), served: 0 });
            }
            return None;
        }
        let mut req = unit.req?;
        if errno == 0 {
            unit.served |= 1 << slot;
            if let Some(l) = leg.as_ref() {
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
                let pool = self.arc();
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
        let io = unit.io;
        let served = unit.served;
        if unit.busy && !c.free.push(u as u16) {
            pr_err!("client pool {}: unit {} released twice (free list full)\n", self.name.as_str(), u);
        }
        unit.busy = false;
        unit.io = core::ptr::null_mut();
        unit.req = None;
        // Return the permits still held (slots whose send failed); the sessions they keep
        // alive are never released here for the last time: the legs hold theirs.
        unit.permits = [None, None, None, None];
        for sgp in unit.sg_audited.iter_mut() {
            let sgp = core::mem::replace(sgp, core::ptr::null_mut());
            if !sgp.is_null() {
                sg::audit_done(sgp);
            }
        }
        c.in_flight = c.in_flight.saturating_sub(1);
        if io.is_null() {
            return None;
        }
        Some(Done { io, errno, served })
    }

    /// Re-issues a read that the legs in `tried` answered without the data (process context).
    pub(super) fn retry(&self, io: *mut RmrCltIo, tried: u8) {
        for _ in 0..1000 {
            // SAFETY: `io` is owned by rmr until completed.
            match unsafe { self.request_tried(io, tried) } {
                Ok(()) => return,
                Err(Errno::EAGAIN) => sleep_ms(2),
                Err(e) => {
                    // SAFETY: as above.
                    unsafe { complete(io, e.to_kernel()) };
                    return;
                }
            }
        }
        // SAFETY: as above.
        unsafe { complete(io, Errno::EIO.to_kernel()) };
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

/// An IO handed to a work item: owned by rmr until its `done` is called.
pub(super) struct IoPtr(*mut RmrCltIo);

// SAFETY: the IO is owned by rmr until completed and only the work item that receives it
// touches it; brmr's IO memory may be completed from any thread.
unsafe impl Send for IoPtr {}

/// A completion to run once the pool lock is released.
pub(super) struct Done {
    io: *mut RmrCltIo,
    errno: c_int,
    served: u32,
}

impl Done {
    fn run(self) {
        // SAFETY: `io` was handed to `request` and is completed exactly once, here.
        unsafe {
            (*self.io).served = self.served;
            complete(self.io, self.errno);
        }
    }
}

/// Calls the IO's completion.
///
/// # Safety
/// `io` is an IO handed to `request` and not completed yet.
pub(super) unsafe fn complete(io: *mut RmrCltIo, errno: c_int) {
    // SAFETY: per the contract.
    unsafe {
        if let Some(done) = (*io).done {
            done(io, errno);
        }
    }
}

/// RTRS confirmation of one leg's IO request.
///
/// # Safety
/// `priv_` is the `Token` given with the request.
pub(super) unsafe extern "C" fn io_conf(priv_: *mut c_void, errno: c_int) {
    // SAFETY: `priv_` is a `Token` of a pool that outlives the unit's request; tokens are
    // only read after setup (atomics).
    let t = unsafe { &*(priv_ as *const Token) };
    // SAFETY: the token's pool pointer was set before any request and stays valid (above).
    let pool = unsafe { &*t.pool.load(Ordering::Acquire) };
    pool.on_leg_reply(usize::from(t.unit), usize::from(t.slot), errno);
}
