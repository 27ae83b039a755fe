// SPDX-License-Identifier: GPL-2.0-or-later
//! Server IO (SPEC §5.3): requests from RTRS and local sync writes, the core's decision for
//! each, submission to the store and completion.

#![deny(unsafe_code)]

use super::*;
use core::cell::Cell;
use core::sync::atomic::AtomicU16;

pub(super) enum ReqKind {
    /// An IO from a session: answered through RTRS.
    Rtrs(SrvOp),
    /// A local write of a sync: the waiter is signalled.
    Local(Arc<LocalWait>),
}

/// One IO handed (or to be handed) to the store.
#[pin_data]
pub(crate) struct SrvReq {
    #[pin]
    work: Work<SrvReq>,
    pool: Arc<SrvPool>,
    /// Taken once, when the request is answered.
    kind: Cell<Option<ReqKind>>,
    io: Cell<IoMsg>,
    /// `IO_*` flags the core added at submission ([`IoDecision::SubmitFua`]).
    extra: AtomicU16,
    /// For the store; `data` points into the operation's RTRS chunk or the sync job's buffer,
    /// both kept alive by `kind` until the request is answered.
    sio: SioCell,
    err: AtomicI32,
}

impl StoreIo for SrvReq {
    fn sio(&self) -> &SioCell {
        &self.sio
    }
}

impl_has_work! {
    impl HasWork<Self> for SrvReq { self.work }
}

impl WorkItem for SrvReq {
    type Pointer = Pin<KBox<SrvReq>>;

    fn run(this: Pin<KBox<SrvReq>>) {
        complete(this);
    }
}

impl SrvReq {
    pub(super) fn new(pool: Arc<SrvPool>, kind: ReqKind, io: IoMsg, data: *mut u8) -> Result<Pin<KBox<SrvReq>>> {
        let sio = SioCell::new(u32::from(io.flags & !IO_SYNC), io.len, data);
        KBox::pin_init(
            pin_init!(SrvReq {
                work <- new_work!("rmr_srv_req"),
                pool,
                kind: Cell::new(Some(kind)),
                io: Cell::new(io),
                extra: AtomicU16::new(0),
                sio,
                err: AtomicI32::new(0),
            }),
            GFP_KERNEL,
        )
    }

    /// A request for [`Inner::reqs`], made before any IO needs it.
    fn blank(pool: Arc<SrvPool>) -> Result<Pin<KBox<SrvReq>>> {
        let io = IoMsg { id: RmrId::chunk(0), mem_id: 0, flags: 0, offset: 0, len: 0, map_ver: 0, members: MemberList::new() };
        KBox::pin_init(
            pin_init!(SrvReq {
                work <- new_work!("rmr_srv_req"),
                pool,
                kind: Cell::new(None),
                io: Cell::new(io),
                extra: AtomicU16::new(0),
                sio: SioCell::new(0, 0, core::ptr::null_mut()),
                err: AtomicI32::new(0),
            }),
            GFP_KERNEL,
        )
    }

    /// Makes a completed client request (kept in [`Inner::reqs`]) the next one of its
    /// `mem_id`: nothing is allocated per IO once a `mem_id` has been used.
    fn reuse(&self, kind: ReqKind, io: IoMsg, data: *mut u8) {
        self.sio.reset(u32::from(io.flags & !IO_SYNC), io.len, data);
        self.kind.set(Some(kind));
        self.io.set(io);
        self.extra.store(0, Ordering::Relaxed);
        self.err.store(0, Ordering::Relaxed);
    }

    /// The request's IO as the core saw it at submission (with the flags it added).
    fn io(&self) -> IoMsg {
        let mut io = self.io.get();
        io.flags |= self.extra.load(Ordering::Relaxed);
        io
    }
}

/// Fills [`Inner::reqs`]: one request per `mem_id`, allocated here (process context), so
/// that no client IO allocates (issue 12). Each holds a reference to the pool until
/// `shutdown` takes them. Best effort: a `mem_id` left without one allocates at its first IO.
pub(super) fn prefill_reqs(pool: &Arc<SrvPool>) {
    let mut made = KVec::new();
    if made.reserve(RMR_MAX_QUEUE_DEPTH, GFP_KERNEL).is_ok() {
        for _ in 0..RMR_MAX_QUEUE_DEPTH {
            let Ok(r) = SrvReq::blank(pool.clone()) else { break };
            if made.push(r, GFP_KERNEL).is_err() {
                break;
            }
        }
    }
    if made.len() < RMR_MAX_QUEUE_DEPTH {
        pr_warn!(
            "server pool {}: {} of {} IO requests preallocated (ENOMEM); the rest are allocated at first use\n",
            pool.name(), made.len(), RMR_MAX_QUEUE_DEPTH
        );
    }
    let mut g = pool.inner.lock();
    for (slot, r) in g.reqs.iter_mut().zip(made) {
        *slot = Some(r);
    }
}

/// What [`dispatch`] runs: a request resumed after a sync, or a client IO just received.
pub(super) enum Incoming {
    /// A parked request whose chunk is synced now.
    Resumed(Pin<KBox<SrvReq>>),
    /// A new IO; a client IO (not a peer's sync read) reuses its `mem_id`'s request.
    New { kind: ReqKind, io: IoMsg, data: *mut u8 },
}

#[pin_data]
pub(super) struct LocalWait {
    #[pin]
    done: SpinLock<Option<i32>>,
    #[pin]
    cv: CondVar,
}

impl LocalWait {
    pub(super) fn new() -> Result<Arc<LocalWait>> {
        Arc::pin_init(
            pin_init!(LocalWait {
                done <- new_spinlock!(None, "rmr_srv_local_wait"),
                cv <- new_condvar!("rmr_srv_local_wait_cv"),
            }),
            GFP_KERNEL,
        )
    }

    pub(super) fn signal(&self, err: i32) {
        *self.done.lock() = Some(err);
        self.cv.notify_all();
    }

    /// Waits for the local write. It is never abandoned: a sync write still in flight when a
    /// later one for the same chunk is issued could land after it and leave stale data. The
    /// block layer bounds it (its own IO timeout fails the bio); every `cmd_timeout_ms`
    /// without an answer is logged. Runs in a kworker (no signals).
    pub(super) fn wait(&self, pool: &SrvPool, chunk: u64) -> i32 {
        let ms = crate::rtrs_sys::clt::cmd_timeout_ms();
        let start = now_ms();
        let mut g = self.done.lock();
        loop {
            if let Some(e) = *g {
                return e;
            }
            let r = self.cv.wait_interruptible_timeout(&mut g, kernel::time::msecs_to_jiffies(ms));
            if matches!(r, kernel::sync::CondVarTimeoutResult::Timeout) && g.is_none() {
                pr_warn!(
                    "server pool {}: local write of synced chunk {} unanswered for {} ms, still waiting\n",
                    pool.name(), chunk, now_ms().saturating_sub(start)
                );
            }
        }
    }
}

/// Answers a request that never reached (or left) the store with `errno`.
pub(super) fn finish_with(req: Pin<KBox<SrvReq>>, errno: i32) {
    match req.kind.take() {
        Some(ReqKind::Rtrs(op)) => op.respond(errno),
        Some(ReqKind::Local(w)) => w.signal(errno),
        None => {}
    }
}

/// Hands `req` to the store; the caller's store reference travels with the IO.
/// `extra`: `IO_*` flags the core added ([`IoDecision::SubmitFua`]); they go to the store and
/// to the request's IO, which `on_io_done` sees.
pub(super) fn submit(store: StoreReg, req: Pin<KBox<SrvReq>>, offset: u64, extra: u16) {
    req.extra.store(extra, Ordering::Relaxed);
    if let Err((req, e)) = store.submit(req, offset, u32::from(extra)) {
        req.err.store(e, Ordering::Relaxed);
        complete(req);
    }
}

/// `rmr_srv_io_done`: completion of an IO handed to `submit`. Any context: only queues the
/// request's work item.
pub(crate) fn io_done(req: Pin<KBox<SrvReq>>, err: c_int) {
    req.err.store(if err > 0 { neg(Errno::EIO) } else { err }, Ordering::Relaxed);
    crate::wrap::wq::srv_io().enqueue(req);
}

/// Backend completion, in process context. A client request goes back to its `mem_id`'s
/// slot of [`Inner::reqs`] for the next IO of that `mem_id`.
pub(super) fn complete(req: Pin<KBox<SrvReq>>) {
    let err = req.err.load(Ordering::Relaxed);
    let pool = req.pool.clone();
    let io = req.io();
    let Some(kind) = req.kind.take() else { return };
    match kind {
        ReqKind::Local(w) => {
            drop(req);
            pool.store_put();
            w.signal(err);
        }
        ReqKind::Rtrs(op) => {
            let ok = err == 0;
            let mut spare = Some(req);
            let (fx, md, old, new, wake) = {
                let mut g = pool.inner.lock();
                // The IO's store reference, dropped under this acquisition (no second one).
                let wake = g.put_store_ref();
                if io.flags & IO_SYNC == 0 && !g.dead {
                    if let Some(slot) = g.reqs.get_mut(usize::from(io.mem_id)).filter(|s| s.is_none()) {
                        *slot = spare.take();
                    }
                }
                let old = g.core.state;
                let fx = g.core.on_io_done(&io, ok);
                if fx.stop_sync {
                    g.sched.stop();
                }
                if g.core.md_lazy() {
                    // Completed flushes cleared `wi` bits: persisted soon, not waited for.
                    g.dw_md.queue(RMR_SRV_MD_LAZY_MS as u32);
                }
                let md = fx.persist_md && !g.unregistering;
                (fx, md, old, g.core.state, wake)
            };
            drop(spare);
            if wake {
                pool.cv.notify_all();
            }
            if md {
                md_persist_sb(&pool);
            }
            if !ok && ratelimit() {
                pr_err!(
                    "server pool {}: backend {} of chunk {} failed ({})\n",
                    pool.name(),
                    if io.is_write() { "write" } else { "read" },
                    io.id.b,
                    err
                );
            }
            if fx.state_changed {
                pr_info!("server pool {}: {} -> {} (backend error)\n", pool.name(), old.name(), new.name());
            }
            op.respond(if ok { 0 } else { err });
        }
    }
}

/// Runs the core's IO decision for an IO of `pool` and acts on it.
pub(super) fn dispatch(pool: Arc<SrvPool>, inc: Incoming) {
    let io = match &inc {
        Incoming::Resumed(r) => r.io.get(),
        Incoming::New { io, .. } => *io,
    };
    let sync_read = io.flags & IO_SYNC != 0;
    let mem_id = usize::from(io.mem_id);
    let store = pool.store_get();
    let allowed = store.is_some_and(|s| s.io_allowed());
    let mut g = pool.inner.lock();
    let req = match inc {
        Incoming::Resumed(r) => r,
        Incoming::New { kind, io, data } => {
            let cached = if sync_read { None } else { g.reqs.get_mut(mem_id).and_then(Option::take) };
            match cached {
                Some(r) => {
                    r.reuse(kind, io, data);
                    r
                }
                None => {
                    // A peer's sync read, or a client IO whose mem_id's request is not
                    // back yet (or was never preallocated): allocated where sleeping is
                    // allowed. On failure the operation is dropped, which answers
                    // it with -EIO.
                    drop(g);
                    if !sync_read {
                        crate::wrap::params::count_io_req_alloc();
                    }
                    match SrvReq::new(pool.clone(), kind, io, data) {
                        Ok(r) => {
                            g = pool.inner.lock();
                            r
                        }
                        Err(_) => {
                            if store.is_some() {
                                pool.store_put();
                            }
                            return;
                        }
                    }
                }
            }
        }
    };
    if g.dead {
        drop(g);
        if store.is_some() {
            pool.store_put();
        }
        finish_with(req, neg(Errno::ENOENT));
        return;
    }
    if !sync_read && g.parked.get(mem_id).is_some_and(|p| p.is_some()) {
        drop(g);
        if store.is_some() {
            pool.store_put();
        }
        if ratelimit() {
            pr_err!("server pool {}: IO unit {} reused while parked (EPROTO)\n", pool.name(), mem_id);
        }
        finish_with(req, neg(Errno::EPROTO));
        return;
    }
    g.core.io_allowed = allowed;
    let decision = g.core.on_io(&io, now_ms());
    match decision {
        IoDecision::Submit | IoDecision::SubmitFua => {
            let off = g.core.io_byte_offset(&io);
            let extra = if decision == IoDecision::SubmitFua { IO_FUA } else { 0 };
            // A client write goes to the store after its marks and last_io slot are durable:
            // park it for the writer's next round (persist.rs).
            let need = if io.is_write() && !sync_read { g.core.md_need() } else { None };
            if let Some(seq) = need {
                let slot = g.md_wait.get_mut(mem_id).filter(|w| w.is_none());
                let parked = match slot {
                    Some(w) => {
                        *w = Some(MdWaiter { seq, off, extra, req });
                        None
                    }
                    None => Some(req),
                };
                g.dw_md.queue(0);
                drop(g);
                if store.is_some() {
                    pool.store_put();
                }
                if let Some(req) = parked {
                    if ratelimit() {
                        pr_err!("server pool {}: IO unit {} reused while waiting for metadata (EPROTO)\n", pool.name(), mem_id);
                    }
                    finish_with(req, neg(Errno::EPROTO));
                }
                return;
            }
            drop(g);
            match store {
                Some(s) => submit(s, req, off, extra),
                None => finish_with(req, neg(Errno::EIO)),
            }
        }
        IoDecision::Park | IoDecision::SyncFirst => {
            let first = decision == IoDecision::SyncFirst;
            if let Some(slot) = g.parked.get_mut(mem_id) {
                *slot = Some(req);
            }
            if first {
                g.jobs += 1;
            }
            drop(g);
            if store.is_some() {
                pool.store_put();
            }
            if first {
                spawn_sync(pool, io.id.b, false);
            }
        }
        IoDecision::Reject(e) => {
            drop(g);
            if store.is_some() {
                pool.store_put();
            }
            finish_with(req, e.errno());
        }
    }
}
