// SPDX-License-Identifier: GPL-2.0-or-later
//! The rmr server role (storage node): server pools, their RTRS sessions, the IO path with
//! on-demand sync, the command handler, the sync thread and the map-clear worker (SPEC §2.3,
//! §4.3, §5.3, §6, §7). Every decision comes from `rmr_core::server::ServerPool`; this file
//! owns the kernel objects and runs the core's answers.
//!
//! Locking:
//! - the module `state()` mutex: control plane only (sysfs, registration); never taken on
//!   the IO path and never held while calling the sync pool (the client role may take it);
//! - `Registry::pools` (spinlock): group_id → pool, cloned into an `Arc` on every message;
//! - `SrvSess::joined` (mutex): the pools a session joined; taken before a pool's lock;
//! - `SrvPool::inner` (spinlock): the core pool (maps, sync table), the store registration
//!   and its reference count, parked IOs, the sync scheduler. Never held across a store op,
//!   a sync-pool call, a sleep or a `GFP_KERNEL` allocation.
//!
//! Store ops are called only with a store reference (`store_get`/`store_put`);
//! `rmr_srv_unregister` waits for the references to drain, so after it returns no op is called
//! and no submitted IO is outstanding. `rmr_srv_io_done` may run in IRQ context: it only
//! queues the request's own work item (no allocation, no lock).

use crate::abi::{RmrPoolMd, RmrSrvIo, RmrSrvMd, RmrSrvStoreOps};
use crate::kind;
use crate::kmap::KMapStorage;
use crate::peer::{self, SyncPool};
use crate::rmr_core::{
    consts::{RMR_MAX_QUEUE_DEPTH, RMR_SRV_CHECK_MAPS_INTERVAL_MS},
    errno::Errno,
    error::Error as CoreError,
    jhash,
    params::{self, Name, SyncCmd},
    server::{self as srvcore, IoDecision, SrvState, SyncSched},
    store_reg::{self, RegMode, SrvPoolState, SrvPoolView},
    wire::{
        Cmd, CmdRsp, CmdType, IoMsg, MemberList, Msg, PoolMd, PoolName, RmrId, RspBody, SrvMd,
        HDR_LEN, IO_FLUSH, IO_FUA, IO_SYNC, IO_WRITE, PIECE_BYTES, USER_MAX,
    },
};
use crate::srv_transport::{SessHandle, SrvCtx, SrvOp, RMR_SRV_PORT};
use crate::sysfs::{BStrDisplay, Dir, PageWriter, Parent};
use crate::{err, state, State, MAX_POOLS};
use core::ffi::{c_int, c_void};
use core::fmt::Write;
use core::pin::Pin;
use core::sync::atomic::{AtomicI32, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use kernel::alloc::flags::{GFP_ATOMIC, __GFP_ZERO};
use kernel::prelude::*;
use kernel::sync::{Arc, ArcBorrow, CondVar, Mutex, SpinLock};
use kernel::workqueue::{self, Work, WorkItem};
use kernel::{impl_has_work, new_condvar, new_mutex, new_spinlock, new_work};

type CorePool = srvcore::ServerPool<KMapStorage>;

/// A blank core pool, copied into every new pool's heap memory (the core pool is ~30 KiB,
/// too large to build on a kernel stack).
static BLANK: CorePool = CorePool::BLANK;

/// Piece size of one sync read from a peer (below RTRS's default 128 KiB chunk minus headers).
const SYNC_READ_MAX: u32 = 64 * 1024;
/// Retry period of a stalled sync thread (every dirty chunk busy with an on-demand sync).
const SYNC_RETRY_MS: u32 = 100;
/// Chunks one pump of the sync thread hands out before looping.
const PUMP_BATCH: usize = 32;
/// Delayed-work kinds (`rmr_srv_dwork_fn`).
const DW_CLEAR: u32 = 0;
const DW_SYNC: u32 = 1;

extern "C" {
    fn rmr_srv_dwork_new(ctx: *mut c_void, kind: u32) -> *mut c_void;
    fn rmr_srv_dwork_queue(d: *mut c_void, ms: u32);
    fn rmr_srv_dwork_free(d: *mut c_void);
}

fn neg(e: Errno) -> i32 {
    e.to_kernel()
}

fn now_ms() -> u64 {
    kernel::time::Ktime::ktime_get().to_ms().max(0) as u64
}

fn to_pool_state(s: SrvState) -> SrvPoolState {
    match s {
        SrvState::Empty => SrvPoolState::Empty,
        SrvState::Registered => SrvPoolState::Registered,
        SrvState::Created => SrvPoolState::Created,
        SrvState::Normal => SrvPoolState::Normal,
        SrvState::NoIo => SrvPoolState::NoIo,
    }
}

/// A simple global rate limit for log lines driven by network input: 10 lines per 5 s.
fn ratelimit() -> bool {
    static START: AtomicU64 = AtomicU64::new(0);
    static COUNT: AtomicU32 = AtomicU32::new(0);
    let now = now_ms();
    let start = START.load(Ordering::Relaxed);
    if now.saturating_sub(start) >= 5000 {
        START.store(now, Ordering::Relaxed);
        COUNT.store(0, Ordering::Relaxed);
    }
    COUNT.fetch_add(1, Ordering::Relaxed) < 10
}

// ---------------------------------------------------------------------------------------
// Store registration

/// A registered store: brmr's ops table and its private pointer.
///
/// # Invariants
/// `ops` points to a valid ops table and, with `priv_`, stays valid until
/// `rmr_srv_unregister` removes the registration (brmr unregisters every store before it can
/// be unloaded). Ops are only called while a store reference is held (see `store_get`).
#[derive(Clone, Copy)]
pub(crate) struct StoreReg {
    ops: *const RmrSrvStoreOps,
    priv_: *mut c_void,
}

// SAFETY: brmr's ops are plain functions callable from any thread; `priv_` is only handed back
// to them.
unsafe impl Send for StoreReg {}

impl StoreReg {
    fn ops(&self) -> &RmrSrvStoreOps {
        // SAFETY: valid while registered (type invariant).
        unsafe { &*self.ops }
    }

    fn io_allowed(&self) -> bool {
        match self.ops().io_allowed {
            // SAFETY: op and `priv_` valid while registered (type invariant).
            Some(f) => unsafe { f(self.priv_) },
            None => false,
        }
    }

    fn md_update(&self, md: &RmrPoolMd) -> i32 {
        match self.ops().md_update {
            // SAFETY: as above; `md` is valid for the call.
            Some(f) => unsafe { f(self.priv_, md) },
            None => 0,
        }
    }

    fn cmd(&self, req: &[u8], rsp: &mut [u8]) -> i32 {
        match self.ops().cmd {
            // SAFETY: as above; both buffers valid for their lengths during the call.
            Some(f) => unsafe { f(self.priv_, req.as_ptr(), req.len(), rsp.as_mut_ptr(), rsp.len()) },
            None => neg(Errno::EOPNOTSUPP),
        }
    }

    /// # Safety
    /// `io` valid until `rmr_srv_io_done(io, ..)` when this returns 0.
    unsafe fn submit(&self, io: *mut RmrSrvIo) -> i32 {
        match self.ops().submit {
            // SAFETY: as above; `io` per this function's contract.
            Some(f) => unsafe { f(self.priv_, io) },
            None => neg(Errno::EOPNOTSUPP),
        }
    }
}

fn to_abi(c: &CorePool) -> RmrPoolMd {
    let mut srv_md = [RmrSrvMd::default(); 4];
    for (d, s) in srv_md.iter_mut().zip(c.md.srv_md.iter()) {
        *d = RmrSrvMd { member_id: s.member_id, flags: u32::from(s.discard_entries) };
    }
    RmrPoolMd {
        group_id: c.md.group_id,
        chunk_size: c.md.chunk_size,
        queue_depth: u32::from(c.md.queue_depth),
        own_member_id: c.member_id,
        map_ver: c.md.map_ver,
        mapped_size: c.md.mapped_size,
        srv_md,
    }
}

fn from_abi(m: &RmrPoolMd, name: PoolName) -> core::result::Result<PoolMd, Errno> {
    let mut srv_md = [SrvMd::default(); 4];
    for (d, s) in srv_md.iter_mut().zip(m.srv_md.iter()) {
        *d = SrvMd { member_id: s.member_id, discard_entries: s.flags & 1 != 0 };
    }
    Ok(PoolMd {
        name,
        group_id: m.group_id,
        chunk_size: m.chunk_size,
        mapped_size: m.mapped_size,
        queue_depth: u16::try_from(m.queue_depth).map_err(|_| Errno::EINVAL)?,
        map_ver: m.map_ver,
        srv_md,
    })
}

// ---------------------------------------------------------------------------------------
// Delayed works (rmr_helpers.c)

/// A self-rearming delayed work of a pool.
///
/// # Invariants
/// `dw` is null or a live `rmr_srv_dwork` whose context is `ctx`, a reference of an
/// `Arc<SrvPool>` (from `Arc::into_raw`) owned by this value; both are released by `free`.
struct Dwork {
    dw: *mut c_void,
    ctx: *const SrvPool,
}

// SAFETY: the C work may be queued and freed from any thread.
unsafe impl Send for Dwork {}

impl Dwork {
    const NONE: Dwork = Dwork { dw: core::ptr::null_mut(), ctx: core::ptr::null() };

    fn new(pool: &Arc<SrvPool>, kind: u32) -> Result<Dwork> {
        let ctx = Arc::into_raw(pool.clone());
        // SAFETY: plain allocation; `ctx` stays valid until `free` (type invariant).
        let dw = unsafe { rmr_srv_dwork_new(ctx.cast_mut().cast(), kind) };
        if dw.is_null() {
            // SAFETY: `ctx` came from `Arc::into_raw` above and was not handed out.
            drop(unsafe { Arc::from_raw(ctx) });
            return Err(ENOMEM);
        }
        Ok(Dwork { dw, ctx })
    }

    /// Arms the work after `ms` unless pending. Any context, also under a spinlock.
    fn queue(&self, ms: u32) {
        if !self.dw.is_null() {
            // SAFETY: `dw` is live (type invariant).
            unsafe { rmr_srv_dwork_queue(self.dw, ms) }
        }
    }

    /// Cancels and frees the work (waiting for a running callback). Sleeps.
    fn free(self) {
        if self.dw.is_null() {
            return;
        }
        // SAFETY: `dw` is live and freed once: `self` is consumed.
        unsafe { rmr_srv_dwork_free(self.dw) };
        // SAFETY: the work no longer runs, so the reference it held is ours to drop.
        drop(unsafe { Arc::from_raw(self.ctx) });
    }
}

/// Callback of the pool's delayed works. Returns milliseconds until the next run (0: none).
///
/// # Safety
/// `ctx` is the `Arc<SrvPool>` reference of a live [`Dwork`].
#[no_mangle]
pub(crate) unsafe extern "C" fn rmr_srv_dwork_fn(ctx: *mut c_void, kind: u32) -> u32 {
    // SAFETY: the Dwork keeps this reference alive until the work is cancelled.
    let b = unsafe { ArcBorrow::<SrvPool>::from_raw(ctx.cast_const().cast()) };
    let pool: Arc<SrvPool> = b.into();
    match kind {
        DW_CLEAR => {
            map_clear_tick(&pool);
            RMR_SRV_CHECK_MAPS_INTERVAL_MS as u32
        }
        DW_SYNC => {
            pump(&pool);
            0
        }
        _ => 0,
    }
}

// ---------------------------------------------------------------------------------------
// Pools

struct Inner {
    core: KBox<CorePool>,
    /// MAP_SEND piece buffer of the core.
    piece: KBox<[u8; PIECE_BYTES]>,
    store: Option<StoreReg>,
    /// Store references: ops being called and IOs submitted, not yet completed.
    store_refs: u32,
    /// `rmr_srv_unregister` is waiting for `store_refs` to drain: no new references.
    unregistering: bool,
    /// IOs parked behind a sync of their chunk, by `mem_id`.
    parked: KVec<Option<Pin<KBox<SrvReq>>>>,
    sync_pool: Option<Arc<SyncPool>>,
    sched: SyncSched,
    /// Sync jobs (on-demand and sync thread) spawned and not finished.
    jobs: u32,
    /// `leave_pool` or module exit: no new commands, jobs or works.
    dead: bool,
    dw_clear: Dwork,
    dw_sync: Dwork,
}

/// A server pool: the data-plane object, shared by sysfs, sessions, requests and workers.
#[pin_data]
pub(crate) struct SrvPool {
    name: Name,
    group_id: u32,
    member_id: u32,
    #[pin]
    inner: SpinLock<Inner>,
    /// Signalled when `store_refs` or `jobs` drop.
    #[pin]
    cv: CondVar,
}

impl SrvPool {
    fn new(name: Name, group_id: u32, member_id: u32) -> Result<Arc<SrvPool>> {
        let mut core = KBox::<CorePool>::new_uninit(GFP_KERNEL)?;
        // SAFETY: `BLANK` owns no heap memory (no maps, no staging), so a bitwise copy is an
        // independent valid value; the static itself is never mutated or dropped.
        unsafe { core::ptr::copy_nonoverlapping(&BLANK as *const CorePool, core.as_mut_ptr(), 1) };
        // SAFETY: fully initialised by the copy above.
        let mut core = unsafe { core.assume_init() };
        core.member_id = member_id;
        let mut md = PoolMd::BLANK;
        md.name = PoolName::new(name.as_bytes()).map_err(|_| EINVAL)?;
        md.group_id = group_id;
        core.md = md;
        let piece = KBox::<[u8; PIECE_BYTES]>::new_uninit(GFP_KERNEL | __GFP_ZERO)?;
        // SAFETY: zeroed memory is a valid byte array.
        let piece = unsafe { piece.assume_init() };
        let mut parked = KVec::with_capacity(RMR_MAX_QUEUE_DEPTH, GFP_KERNEL)?;
        for _ in 0..RMR_MAX_QUEUE_DEPTH {
            parked.push(None, GFP_KERNEL)?;
        }
        let inner = Inner {
            core,
            piece,
            store: None,
            store_refs: 0,
            unregistering: false,
            parked,
            sync_pool: None,
            sched: SyncSched::default(),
            jobs: 0,
            dead: false,
            dw_clear: Dwork::NONE,
            dw_sync: Dwork::NONE,
        };
        let pool = Arc::pin_init(
            pin_init!(SrvPool {
                name,
                group_id,
                member_id,
                inner <- new_spinlock!(inner, "rmr_srv_pool"),
                cv <- new_condvar!("rmr_srv_pool_cv"),
            }),
            GFP_KERNEL,
        )?;
        let clear = Dwork::new(&pool, DW_CLEAR)?;
        let sync = match Dwork::new(&pool, DW_SYNC) {
            Ok(d) => d,
            Err(e) => {
                clear.free();
                return Err(e);
            }
        };
        clear.queue(RMR_SRV_CHECK_MAPS_INTERVAL_MS as u32);
        {
            let mut g = pool.inner.lock();
            g.dw_clear = clear;
            g.dw_sync = sync;
        }
        Ok(pool)
    }

    fn name(&self) -> &str {
        self.name.as_str()
    }

    /// Takes a store reference: `Some` while a store is registered and not unregistering.
    fn store_get(&self) -> Option<StoreReg> {
        let mut g = self.inner.lock();
        match g.store {
            Some(s) if !g.unregistering => {
                g.store_refs += 1;
                Some(s)
            }
            _ => None,
        }
    }

    fn store_put(&self) {
        let wake = {
            let mut g = self.inner.lock();
            g.store_refs = g.store_refs.saturating_sub(1);
            g.store_refs == 0 && g.unregistering
        };
        if wake {
            self.cv.notify_all();
        }
    }

    /// Persists `md` through the store (`md_update`), outside every lock.
    fn persist(&self, md: &RmrPoolMd) {
        if let Some(s) = self.store_get() {
            let r = s.md_update(md);
            self.store_put();
            if r < 0 {
                pr_err!("server pool {}: persisting pool metadata failed ({})\n", self.name(), r);
            }
        }
    }

    /// Stops the workers and waits for sync jobs; detaches the sync pool. Sleeps; call without
    /// the module state lock.
    fn shutdown(&self) {
        let (clear, sync, sp) = {
            let mut g = self.inner.lock();
            g.dead = true;
            g.sched.stop();
            let c = core::mem::replace(&mut g.dw_clear, Dwork::NONE);
            let s = core::mem::replace(&mut g.dw_sync, Dwork::NONE);
            (c, s, g.sync_pool.take())
        };
        clear.free();
        sync.free();
        {
            let mut g = self.inner.lock();
            while g.jobs > 0 {
                self.cv.wait(&mut g);
            }
        }
        drop(sp);
    }
}

// ---------------------------------------------------------------------------------------
// Registry: group_id -> pool for the data plane, and the RTRS context

#[pin_data]
struct Registry {
    #[pin]
    pools: SpinLock<KVec<Option<Arc<SrvPool>>>>,
    #[pin]
    ctx: Mutex<Option<SrvCtx>>,
}

static REG: AtomicPtr<Registry> = AtomicPtr::new(core::ptr::null_mut());

fn reg() -> Option<&'static Registry> {
    let p = REG.load(Ordering::Acquire);
    // SAFETY: `p` is null or the registry installed by `init` and freed by `exit` only after
    // the RTRS context (the only asynchronous user) is closed and every pool is gone.
    unsafe { p.as_ref() }
}

/// Module init: the registry (the RTRS context opens at the first `join_pool`).
pub(crate) fn init() -> Result {
    let mut v = KVec::with_capacity(MAX_POOLS, GFP_KERNEL)?;
    for _ in 0..MAX_POOLS {
        v.push(None, GFP_KERNEL)?;
    }
    let r = KBox::pin_init(
        pin_init!(Registry {
            pools <- new_spinlock!(v, "rmr_srv_registry"),
            ctx <- new_mutex!(None, "rmr_srv_ctx"),
        }),
        GFP_KERNEL,
    )?;
    // SAFETY: the registry is never moved out of its box; `exit` rebuilds the box to free it.
    let raw = KBox::into_raw(unsafe { Pin::into_inner_unchecked(r) });
    REG.store(raw, Ordering::Release);
    Ok(())
}

/// Module exit: close the RTRS context (every session goes, raising DISCONNECTED), shut down
/// and drop every server pool, free the registry.
pub(crate) fn exit() {
    let Some(r) = reg() else {
        return;
    };
    let ctx = r.ctx.lock().take();
    drop(ctx);
    let pools = match state() {
        Some(mut st) => core::mem::take(&mut st.srv),
        None => KVec::new(),
    };
    for p in pools.iter().flatten() {
        registry_remove(&p.pool);
        p.pool.shutdown();
    }
    drop(pools);
    let raw = REG.swap(core::ptr::null_mut(), Ordering::AcqRel);
    if !raw.is_null() {
        // SAFETY: `raw` came from `KBox::into_raw` in `init`; nothing uses it any more.
        drop(unsafe { KBox::from_raw(raw) });
    }
}

fn lookup(group_id: u32) -> Option<Arc<SrvPool>> {
    let r = reg()?;
    let g = r.pools.lock();
    g.iter().flatten().find(|p| p.group_id == group_id).cloned()
}

fn registry_add(pool: &Arc<SrvPool>) -> Result {
    let r = reg().ok_or(ENODEV)?;
    let mut g = r.pools.lock();
    let slot = g.iter_mut().find(|p| p.is_none()).ok_or(ENOSPC)?;
    *slot = Some(pool.clone());
    Ok(())
}

fn registry_remove(pool: &Arc<SrvPool>) {
    let Some(r) = reg() else {
        return;
    };
    let taken = {
        let mut g = r.pools.lock();
        g.iter_mut()
            .find(|p| p.as_ref().is_some_and(|p| Arc::ptr_eq(p, pool)))
            .and_then(|p| p.take())
    };
    drop(taken);
}

fn ensure_ctx() -> Result {
    let r = reg().ok_or(ENODEV)?;
    let mut g = r.ctx.lock();
    if g.is_none() {
        match SrvCtx::open(RMR_SRV_PORT) {
            Ok(c) => {
                pr_info!("rtrs server listening on port {}\n", RMR_SRV_PORT);
                *g = Some(c);
            }
            Err(e) => {
                pr_err!("cannot open the rtrs server on port {} ({:?})\n", RMR_SRV_PORT, e);
                return Err(e);
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Requests

enum ReqKind {
    /// An IO from a session: answered through RTRS.
    Rtrs(SrvOp),
    /// A local write of a sync: the waiter is signalled.
    Local(Arc<LocalWait>),
}

/// One IO handed (or to be handed) to the store.
#[pin_data]
struct SrvReq {
    #[pin]
    work: Work<SrvReq>,
    pool: Arc<SrvPool>,
    kind: ReqKind,
    io: IoMsg,
    sio: RmrSrvIo,
    err: AtomicI32,
}

// SAFETY: `sio.data` points into memory owned by the request's operation (RTRS chunk) or by
// the sync job waiting for it; both may be used from any thread until the request completes.
unsafe impl Send for SrvReq {}

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
    fn new(pool: Arc<SrvPool>, kind: ReqKind, io: IoMsg, data: *mut u8) -> Result<Pin<KBox<SrvReq>>> {
        let sio = RmrSrvIo {
            flags: u32::from(io.flags & !IO_SYNC),
            len: io.len,
            offset: 0,
            data,
            rmr_priv: core::ptr::null_mut(),
        };
        KBox::pin_init(
            pin_init!(SrvReq {
                work <- new_work!("rmr_srv_req"),
                pool,
                kind,
                io,
                sio,
                err: AtomicI32::new(0),
            }),
            GFP_KERNEL,
        )
    }

    /// Takes the request out of its pinned box (its work item is not queued).
    fn unpin(this: Pin<KBox<SrvReq>>) -> SrvReq {
        // SAFETY: the work item is neither queued nor running on this value any more, so
        // nothing depends on its address.
        KBox::into_inner(unsafe { Pin::into_inner_unchecked(this) })
    }
}

#[pin_data]
struct LocalWait {
    #[pin]
    done: SpinLock<Option<i32>>,
    #[pin]
    cv: CondVar,
}

impl LocalWait {
    fn new() -> Result<Arc<LocalWait>> {
        Arc::pin_init(
            pin_init!(LocalWait {
                done <- new_spinlock!(None, "rmr_srv_local_wait"),
                cv <- new_condvar!("rmr_srv_local_wait_cv"),
            }),
            GFP_KERNEL,
        )
    }

    fn signal(&self, err: i32) {
        *self.done.lock() = Some(err);
        self.cv.notify_all();
    }

    fn wait(&self) -> i32 {
        let mut g = self.done.lock();
        loop {
            if let Some(e) = *g {
                return e;
            }
            self.cv.wait(&mut g);
        }
    }
}

/// Answers a request that never reached (or left) the store with `errno`.
fn finish_with(req: Pin<KBox<SrvReq>>, errno: i32) {
    let r = SrvReq::unpin(req);
    match r.kind {
        ReqKind::Rtrs(op) => op.respond(errno),
        ReqKind::Local(w) => w.signal(errno),
    }
}

/// Hands `req` to the store; the caller's store reference travels with the IO.
/// `extra`: `IO_*` flags the core added ([`IoDecision::SubmitFua`]); they go to the store and
/// to the request's IO, which `on_io_done` sees.
fn submit(store: StoreReg, req: Pin<KBox<SrvReq>>, offset: u64, extra: u16) {
    // SAFETY: the request is not moved: its box is leaked to the store and rebuilt by
    // `rmr_srv_io_done` (or below if the store refuses it).
    let raw = KBox::into_raw(unsafe { Pin::into_inner_unchecked(req) });
    // SAFETY: `raw` is a valid, exclusively owned request.
    let sio = unsafe {
        (*raw).sio.offset = offset;
        (*raw).sio.flags |= u32::from(extra);
        (*raw).io.flags |= extra;
        (*raw).sio.rmr_priv = raw.cast();
        core::ptr::addr_of_mut!((*raw).sio)
    };
    // SAFETY: `sio` stays valid until `rmr_srv_io_done` gives the request back.
    let r = unsafe { store.submit(sio) };
    if r != 0 {
        // SAFETY: not started: the store does not complete it, the box is ours again.
        let req = unsafe { Pin::new_unchecked(KBox::from_raw(raw)) };
        req.err.store(if r < 0 { r } else { neg(Errno::EIO) }, Ordering::Relaxed);
        complete(req);
    }
}

/// `rmr_srv_io_done`: completion of an IO handed to `submit`. Any context: only queues the
/// request's work item.
///
/// # Safety
/// `io` is the pointer given to the store's `submit`, completed exactly once.
pub(crate) unsafe fn io_done(io: *mut RmrSrvIo, err: c_int) {
    if io.is_null() {
        return;
    }
    // SAFETY: `rmr_priv` is the leaked request box set by `submit`, given back exactly once.
    let req = unsafe { Pin::new_unchecked(KBox::from_raw((*io).rmr_priv.cast::<SrvReq>())) };
    req.err.store(if err > 0 { neg(Errno::EIO) } else { err }, Ordering::Relaxed);
    workqueue::system().enqueue(req);
}

/// Backend completion, in process context.
fn complete(req: Pin<KBox<SrvReq>>) {
    let r = SrvReq::unpin(req);
    let err = r.err.load(Ordering::Relaxed);
    let pool = r.pool;
    match r.kind {
        ReqKind::Local(w) => {
            pool.store_put();
            w.signal(err);
        }
        ReqKind::Rtrs(op) => {
            let ok = err == 0;
            let (fx, md, old, new) = {
                let mut g = pool.inner.lock();
                let old = g.core.state;
                let fx = g.core.on_io_done(&r.io, ok);
                if fx.stop_sync {
                    g.sched.stop();
                }
                let md = (fx.persist_md && !g.unregistering).then(|| to_abi(&g.core));
                (fx, md, old, g.core.state)
            };
            if let Some(md) = md {
                pool.persist(&md);
            }
            pool.store_put();
            if !ok && ratelimit() {
                pr_err!(
                    "server pool {}: backend {} of chunk {} failed ({})\n",
                    pool.name(),
                    if r.io.is_write() { "write" } else { "read" },
                    r.io.id.b,
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

/// Runs the core's IO decision for `req` and acts on it.
fn dispatch(req: Pin<KBox<SrvReq>>) {
    let pool = req.pool.clone();
    let io = req.io;
    let sync_read = io.flags & IO_SYNC != 0;
    let mem_id = usize::from(io.mem_id);
    let store = pool.store_get();
    let allowed = store.is_some_and(|s| s.io_allowed());
    let mut g = pool.inner.lock();
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
        IoDecision::Submit | IoDecision::SubmitFua { .. } => {
            let off = g.core.io_byte_offset(&io);
            drop(g);
            let extra = match decision {
                IoDecision::SubmitFua { preflush: true } => IO_FUA | IO_FLUSH,
                IoDecision::SubmitFua { preflush: false } => IO_FUA,
                _ => 0,
            };
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

// ---------------------------------------------------------------------------------------
// Sync: on-demand and the sync thread

/// Starts a sync job for `chunk` (already locked in the core's sync table, `jobs` counted).
fn spawn_sync(pool: Arc<SrvPool>, chunk: u64, thread: bool) {
    let p = pool.clone();
    let r = workqueue::system_unbound().try_spawn(GFP_KERNEL, move || {
        let r = sync_chunk(&p, chunk);
        finish_sync(&p, chunk, r, thread);
    });
    if r.is_err() {
        finish_sync(&pool, chunk, Err(Errno::ENOMEM), thread);
    }
}

/// Reads `len` bytes of `chunk` from `src` into `buf` in RTRS-sized pieces.
fn read_from(sp: &SyncPool, src: u32, chunk: u64, buf: &mut [u8]) -> core::result::Result<(), Errno> {
    let len = u32::try_from(buf.len()).map_err(|_| Errno::EINVAL)?;
    let mut off = 0u32;
    while off < len {
        let n = core::cmp::min(SYNC_READ_MAX, len - off);
        let piece = buf.get_mut(off as usize..(off + n) as usize).ok_or(Errno::EINVAL)?;
        // SAFETY: `piece` is valid for writes of `n` bytes until the call returns.
        unsafe { sp.read_chunk(src, chunk, off, n, piece.as_mut_ptr()) }?;
        off += n;
    }
    Ok(())
}

/// Syncs one chunk: reads it from a peer that has it clean, writes it to the local store.
fn sync_chunk(pool: &Arc<SrvPool>, chunk: u64) -> core::result::Result<(), Errno> {
    let (sp, cs, dev_bytes) = {
        let g = pool.inner.lock();
        (g.sync_pool.clone(), u64::from(g.core.md.chunk_size), g.core.md.mapped_size.saturating_mul(512))
    };
    let sp = sp.ok_or(Errno::ENOENT)?;
    let off = chunk.checked_mul(cs).filter(|o| *o < dev_bytes).ok_or(Errno::EINVAL)?;
    let len = core::cmp::min(cs, dev_bytes - off);
    let len32 = u32::try_from(len).map_err(|_| Errno::EINVAL)?;
    let mut buf = KVec::<u8>::from_elem(0u8, len as usize, GFP_KERNEL).map_err(|_| Errno::ENOMEM)?;
    let peers = sp.normal_peers();
    let mut skip = MemberList::new();
    let mut last = Errno::EIO;
    loop {
        let src = pool.inner.lock().core.sync_source(chunk, &peers, &skip);
        let Some(src) = src else {
            if ratelimit() {
                pr_err!("server pool {}: no peer can provide chunk {} ({})\n", pool.name(), chunk, last.name());
            }
            return Err(last);
        };
        match read_from(&sp, src, chunk, &mut buf) {
            Ok(()) => break,
            Err(e) => {
                if e != Errno::EAGAIN && ratelimit() {
                    pr_err!("server pool {}: sync read of chunk {} from member {} failed ({})\n",
                        pool.name(), chunk, src, e.name());
                }
                last = e;
                if skip.push(src).is_err() {
                    return Err(e);
                }
            }
        }
    }
    drop(sp);
    // The synced data is a plain write: record it in the write-intent record first (a no-op
    // while the store ABI cannot persist the record, see rmr_srv_register).
    if let Err(e) = pool.inner.lock().core.sync_write_intent(chunk) {
        return Err(Errno::from_raw(-e.errno()).unwrap_or(Errno::EIO));
    }
    let w = LocalWait::new().map_err(|_| Errno::ENOMEM)?;
    let store = pool.store_get().ok_or(Errno::EIO)?;
    let io = IoMsg {
        id: RmrId::chunk(chunk),
        mem_id: 0,
        flags: IO_WRITE,
        offset: 0,
        len: len32,
        map_ver: 0,
        members: MemberList::new(),
    };
    let req = match SrvReq::new(pool.clone(), ReqKind::Local(w.clone()), io, buf.as_mut_ptr()) {
        Ok(r) => r,
        Err(_) => {
            pool.store_put();
            return Err(Errno::ENOMEM);
        }
    };
    submit(store, req, off, 0);
    let e = w.wait();
    drop(buf);
    if e != 0 {
        if ratelimit() {
            pr_err!("server pool {}: local write of synced chunk {} failed ({})\n", pool.name(), chunk, e);
        }
        return Err(Errno::from_raw(-e).unwrap_or(Errno::EIO));
    }
    Ok(())
}

/// A sync job ended: tell the core, MAP_CLEAR the peers, resume or fail the waiters.
fn finish_sync(pool: &Arc<SrvPool>, chunk: u64, r: core::result::Result<(), Errno>, thread: bool) {
    let mut waiters = [0u16; RMR_MAX_QUEUE_DEPTH];
    let mut ended = false;
    let (n, cleared, sp, map_ver) = {
        let mut g = pool.inner.lock();
        let inner = &mut *g;
        let (n, cleared) = inner.core.on_sync_done(chunk, r.is_ok(), &mut waiters);
        if thread {
            let was_running = inner.sched.running;
            if inner.sched.done(&inner.core, cleared) && was_running {
                ended = true;
            }
        }
        (n, cleared, inner.sync_pool.clone(), inner.core.md.map_ver)
    };
    if ended {
        log_sync_end(pool);
    }
    if cleared {
        if let Some(sp) = &sp {
            for peer in sp.normal_peers().iter().filter(|m| *m != pool.member_id) {
                if let Err(e) = sp.map_clear(peer, pool.member_id, chunk, map_ver) {
                    if ratelimit() {
                        pr_err!("server pool {}: MAP_CLEAR of chunk {} to member {} failed ({})\n",
                            pool.name(), chunk, peer, e.name());
                    }
                }
            }
        }
    }
    drop(sp);
    let errno = match r {
        Err(e) => neg(e),
        Ok(()) => neg(Errno::EIO),
    };
    for w in waiters.iter().take(n) {
        let req = pool.inner.lock().parked.get_mut(usize::from(*w)).and_then(|p| p.take());
        if let Some(req) = req {
            if cleared {
                dispatch(req);
            } else {
                finish_with(req, errno);
            }
        }
    }
    if thread {
        pump(pool);
    }
    {
        let mut g = pool.inner.lock();
        g.jobs = g.jobs.saturating_sub(1);
    }
    pool.cv.notify_all();
}

/// Hands out sync-thread requests up to the scheduler's cap; notices the thread's end.
fn pump(pool: &Arc<SrvPool>) {
    loop {
        let mut chunks = [0u64; PUMP_BATCH];
        let mut n = 0;
        let ended_now = {
            let mut g = pool.inner.lock();
            if g.dead {
                return;
            }
            let inner = &mut *g;
            let was_running = inner.sched.running;
            while n < PUMP_BATCH {
                match inner.sched.next(&mut inner.core) {
                    Some(c) => {
                        chunks[n] = c;
                        n += 1;
                        inner.jobs += 1;
                    }
                    None => break,
                }
            }
            let ended = inner.sched.check_end(&inner.core);
            if !ended && n == 0 && inner.sched.in_flight == 0 {
                inner.dw_sync.queue(SYNC_RETRY_MS);
            }
            was_running && ended
        };
        for c in chunks.iter().take(n) {
            spawn_sync(pool.clone(), *c, true);
        }
        if ended_now {
            log_sync_end(pool);
        }
        if n < PUMP_BATCH {
            return;
        }
    }
}

fn log_sync_end(pool: &SrvPool) {
    let (clean, st) = {
        let g = pool.inner.lock();
        let own = g.core.maps.get(pool.member_id).map_or(true, |m| m.is_empty());
        (own, g.core.state)
    };
    pr_info!(
        "server pool {}: sync stopped ({}, state {})\n",
        pool.name(),
        if clean { "own map clean" } else { "own map still dirty" },
        st.name()
    );
}

/// The map-clear worker (SPEC §6.8 server part): ask each member whose peer map is non-empty
/// whether its own map is empty; clear ours if so and nothing was set since.
fn map_clear_tick(pool: &Arc<SrvPool>) {
    let (targets, gens, map_ver, sp) = {
        let g = pool.inner.lock();
        if g.dead {
            return;
        }
        let t = g.core.map_clear_targets();
        let mut gens = [0u64; 4];
        for (gn, m) in gens.iter_mut().zip(t.iter()) {
            *gn = g.core.maps.get(m).map(|x| x.gen()).unwrap_or(0);
        }
        (t, gens, g.core.md.map_ver, g.sync_pool.clone())
    };
    let Some(sp) = sp else {
        return;
    };
    for (m, gen) in targets.iter().zip(gens.iter()) {
        match sp.map_check(m, map_ver) {
            Ok(true) => {
                let cleared = pool.inner.lock().core.on_peer_check_reply(m, true, *gen);
                if cleared {
                    pr_info!("server pool {}: map of member {} cleared (member reports clean)\n", pool.name(), m);
                }
            }
            Ok(false) => {}
            Err(e) => {
                if ratelimit() {
                    pr_err!("server pool {}: MAP_CHECK to member {} failed ({})\n", pool.name(), m, e.name());
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// RTRS sessions

struct Joined {
    pool: Arc<SrvPool>,
    sync: bool,
}

/// Our private data of one RTRS server session (`rmr_srv_sess`).
#[pin_data]
struct SrvSess {
    name: [u8; 64],
    name_len: usize,
    /// Pools this session joined (one entry per accepted JOIN/REJOIN).
    #[pin]
    joined: Mutex<KVec<Option<Joined>>>,
}

impl SrvSess {
    fn name(&self) -> BStrDisplay<'_> {
        BStrDisplay(self.name.get(..self.name_len).unwrap_or(&[]))
    }
}

/// `RTRS_SRV_LINK_EV_CONNECTED`: allocates the session object.
pub(crate) fn on_connected(h: SessHandle) -> c_int {
    let mut name = [0u8; 64];
    let name_len = h.path_name(&mut name);
    let s = KBox::pin_init(
        pin_init!(SrvSess {
            name,
            name_len,
            joined <- new_mutex!(KVec::new(), "rmr_srv_sess_joined"),
        }),
        GFP_KERNEL,
    );
    match s {
        Ok(s) => {
            pr_info!("session {} connected\n", s.name());
            // SAFETY: the session object is never moved; `on_disconnected` rebuilds the box.
            let raw = KBox::into_raw(unsafe { Pin::into_inner_unchecked(s) });
            h.set_priv(raw.cast());
            0
        }
        Err(_) => neg(Errno::ENOMEM),
    }
}

/// `RTRS_SRV_LINK_EV_DISCONNECTED`: every operation of the session has been answered; the
/// session leaves every pool it joined.
pub(crate) fn on_disconnected(priv_: *mut c_void) {
    if priv_.is_null() {
        return;
    }
    // SAFETY: `priv_` is the box leaked by `on_connected`; RTRS hands it back once here, after
    // the last `rdma_ev` of the session.
    let s = unsafe { Pin::new_unchecked(KBox::from_raw(priv_.cast::<SrvSess>())) };
    let list = core::mem::take(&mut *s.joined.lock());
    for j in list.into_iter().flatten() {
        session_gone(&j.pool, j.sync, "link lost");
    }
    pr_info!("session {} disconnected\n", s.name());
}

fn session_gone(pool: &Arc<SrvPool>, sync: bool, why: &str) {
    let (md, old, new) = {
        let mut g = pool.inner.lock();
        let old = g.core.state;
        let fx = g.core.on_session_gone(sync);
        if fx.stop_sync {
            g.sched.stop();
        }
        let md = (fx.persist_md && g.store.is_some() && !g.unregistering).then(|| to_abi(&g.core));
        (md, old, g.core.state)
    };
    if let Some(md) = md {
        pool.persist(&md);
    }
    if old != new {
        pr_info!("server pool {}: {} -> {} ({}{})\n", pool.name(), old.name(), new.name(),
            if sync { "sync session, " } else { "" }, why);
    }
}

fn proto_err(sess: &SrvSess, what: &str) {
    if ratelimit() {
        pr_err!("session {}: {} (EPROTO)\n", sess.name(), what);
    }
}

/// `rdma_ev` of a session: an IO or a command (framing in Documentation/wire-format.md).
pub(crate) fn on_rdma_ev(priv_: *mut c_void, mut op: SrvOp, usr: &[u8]) {
    if priv_.is_null() {
        op.respond(neg(Errno::EIO));
        return;
    }
    // SAFETY: set at CONNECTED, freed at DISCONNECTED only after every operation of the
    // session has been answered, so it outlives this call.
    let sess = unsafe { &*priv_.cast::<SrvSess>() };
    if usr.is_empty() {
        // A large command (SEND_MAP_BUF): the whole message in the data area.
        let errno = {
            let data = op.data_mut();
            let total = data
                .get(12..16)
                .and_then(|b| b.try_into().ok())
                .map(|b: [u8; 4]| u32::from_le_bytes(b) as usize + HDR_LEN);
            match total.and_then(|t| data.get(..t)).map(Msg::decode) {
                Some(Ok((hdr, Msg::Cmd(cmd)))) => run_cmd(sess, hdr.group_id, &cmd, None),
                _ => {
                    proto_err(sess, "undecodable large command");
                    neg(Errno::EPROTO)
                }
            }
        };
        op.respond(errno);
        return;
    }
    match Msg::decode(usr) {
        Ok((hdr, Msg::Io(io))) => io_req(sess, hdr.group_id, io, op),
        Ok((hdr, Msg::Cmd(cmd))) => {
            let r = run_cmd(sess, hdr.group_id, &cmd, Some(op.data_mut()));
            op.respond(r);
        }
        Ok(_) => {
            proto_err(sess, "unexpected message type");
            op.respond(neg(Errno::EPROTO));
        }
        Err(_) => {
            proto_err(sess, "undecodable message");
            op.respond(neg(Errno::EPROTO));
        }
    }
}

fn io_req(sess: &SrvSess, group_id: u32, io: IoMsg, op: SrvOp) {
    if op.data_len() != io.len as usize {
        proto_err(sess, "IO length differs from its data area");
        op.respond(neg(Errno::EPROTO));
        return;
    }
    let Some(pool) = lookup(group_id) else {
        if ratelimit() {
            pr_err!("session {}: IO for unknown group_id {:#x} (ENOENT)\n", sess.name(), group_id);
        }
        op.respond(neg(Errno::ENOENT));
        return;
    };
    let data = op.data_ptr();
    // On allocation failure the operation is dropped, which answers it with -EIO.
    if let Ok(req) = SrvReq::new(pool, ReqKind::Rtrs(op), io, data) {
        dispatch(req);
    }
}

/// Encodes `rsp` into `out` (small command: 0 or the encode error) or returns its errno
/// (large command).
fn reply(out: Option<&mut [u8]>, group_id: u32, rsp: CmdRsp<'_>) -> i32 {
    match out {
        Some(buf) => match Msg::CmdRsp(rsp).encode(group_id, buf) {
            Ok(_) => 0,
            Err(e) => e.errno(),
        },
        None => rsp.errno,
    }
}

/// Runs one command; see [`reply`] for the return value.
fn run_cmd(sess: &SrvSess, group_id: u32, cmd: &Cmd<'_>, out: Option<&mut [u8]>) -> i32 {
    let ty = cmd.ty();
    let pool = match lookup(group_id) {
        Some(p) if !p.inner.lock().dead => p,
        _ => {
            if ratelimit() {
                pr_err!("session {}: command {:?} for unknown group_id {:#x} (ENOENT)\n", sess.name(), ty, group_id);
            }
            return reply(out, group_id, CmdRsp::err(ty, CoreError::NoEnt));
        }
    };
    if let Cmd::User(req) = cmd {
        return user_cmd(&pool, req, out);
    }
    let mut joined = sess.joined.lock();
    let join_sync = match cmd {
        Cmd::JoinPool(j) | Cmd::RejoinPool(j) => Some(j.sync),
        _ => None,
    };
    if join_sync.is_some() && joined.reserve(1, GFP_KERNEL).is_err() {
        return reply(out, group_id, CmdRsp::err(ty, CoreError::NoMem));
    }
    let slot = joined.iter().position(|j| j.as_ref().is_some_and(|j| Arc::ptr_eq(&j.pool, &pool)));
    let sync = slot.and_then(|i| joined.get(i)).and_then(|j| j.as_ref()).is_some_and(|j| j.sync);
    let leave = matches!(cmd, Cmd::LeavePool { .. });
    if leave && slot.is_none() {
        drop(joined);
        if ratelimit() {
            pr_err!("server pool {}: LEAVE_POOL from session {} that did not join (ENOENT)\n", pool.name(), sess.name());
        }
        return reply(out, group_id, CmdRsp::err(ty, CoreError::NoEnt));
    }
    if matches!(cmd, Cmd::StoreCheck) {
        let allowed = match pool.store_get() {
            Some(s) => {
                let a = s.io_allowed();
                pool.store_put();
                a
            }
            None => false,
        };
        pool.inner.lock().core.io_allowed = allowed;
    }
    let now = now_ms();
    let (errno, ret, md, old, new) = {
        let mut g = pool.inner.lock();
        let inner = &mut *g;
        let old = inner.core.state;
        let (rsp, fx) = inner.core.handle_cmd(cmd, sync, now, &mut inner.piece);
        let errno = rsp.errno;
        let ret = reply(out, group_id, rsp);
        if fx.stop_sync {
            inner.sched.stop();
        }
        let md = (fx.persist_md && inner.store.is_some() && !inner.unregistering).then(|| to_abi(&inner.core));
        (errno, ret, md, old, inner.core.state)
    };
    if errno == 0 {
        if let Some(s) = join_sync {
            let j = Some(Joined { pool: pool.clone(), sync: s });
            match joined.iter_mut().find(|x| x.is_none()) {
                Some(free) => *free = j,
                // Capacity was reserved above: this does not allocate.
                None => {
                    let _ = joined.push(j, GFP_ATOMIC);
                }
            }
        } else if leave {
            let gone = slot.and_then(|i| joined.get_mut(i)).and_then(|j| j.take());
            drop(gone);
        }
    }
    drop(joined);
    if let Some(md) = md {
        pool.persist(&md);
    }
    if old != new {
        pr_info!("server pool {}: {} -> {} ({:?} from {})\n", pool.name(), old.name(), new.name(), ty, sess.name());
    } else if join_sync.is_some() && errno == 0 {
        pr_info!("server pool {}: {}{:?} from {} accepted\n", pool.name(),
            if join_sync == Some(true) { "sync " } else { "" }, ty, sess.name());
    }
    if errno != 0 && ratelimit() {
        let name = Errno::from_raw(-errno).map(|e| e.name()).unwrap_or("error");
        pr_err!("server pool {}: {:?} from {} refused in state {} ({})\n", pool.name(), ty, sess.name(), new.name(), name);
    }
    ret
}

/// An opaque upper-layer (BRMR) command: handled by the store's `cmd` op.
fn user_cmd(pool: &Arc<SrvPool>, req: &[u8], out: Option<&mut [u8]>) -> i32 {
    let ty = CmdType::User;
    let Some(store) = pool.store_get() else {
        return reply(out, pool.group_id, CmdRsp::err(ty, CoreError::NoDev));
    };
    let mut rsp = [0u8; USER_MAX];
    let n = store.cmd(req, &mut rsp);
    pool.store_put();
    let r = if n < 0 {
        CmdRsp { ty, errno: n, body: RspBody::Empty }
    } else {
        let n = core::cmp::min(n as usize, USER_MAX);
        CmdRsp::ok(ty, RspBody::User(rsp.get(..n).unwrap_or(&[])))
    };
    reply(out, pool.group_id, r)
}

// ---------------------------------------------------------------------------------------
// Control plane: sysfs and registration

/// The control-plane record of a server pool in the module state.
pub(crate) struct ServerPool {
    pub(crate) id: u64,
    pub(crate) name: Name,
    pub(crate) pool: Arc<SrvPool>,
    _dir: Dir,
}

fn log_parse(what: &str, e: params::ParseError) -> Error {
    pr_err!("rmr-server {}: {}\n", what, e);
    err(e.errno())
}

/// Finds a server pool by name.
pub(crate) fn by_name<'a>(st: &'a mut State, name: &[u8]) -> Option<&'a mut ServerPool> {
    st.srv.iter_mut().flatten().find(|p| p.name.as_bytes() == name)
}

fn pool_by_id(id: u64) -> Result<Arc<SrvPool>> {
    let st = state().ok_or(ENODEV)?;
    st.srv.iter().flatten().find(|p| p.id == id).map(|p| p.pool.clone()).ok_or(ENODEV)
}

fn pool_by_name(name: &[u8]) -> core::result::Result<Arc<SrvPool>, Errno> {
    let mut st = state().ok_or(Errno::ENODEV)?;
    by_name(&mut st, name).map(|p| p.pool.clone()).ok_or(Errno::ENOENT)
}

/// `ctl/join_pool poolname=<n> member_id=<u32>`.
pub(crate) fn join_pool(input: &[u8]) -> Result {
    let j = params::server_join_pool(input).map_err(|e| log_parse("join_pool", e))?;
    let name = Name::new(j.poolname).ok_or(EINVAL)?;
    let group_id = jhash::group_id(j.poolname);
    ensure_ctx().inspect_err(|_| {
        pr_err!("server pool {}: join_pool: no rtrs server\n", name.as_str());
    })?;
    let pool = {
        let mut st = state().ok_or(ENODEV)?;
        if st.srv.iter().flatten().any(|p| p.name == name || p.pool.group_id == group_id) {
            pr_err!("server pool {}: join_pool: pool or group_id {:#x} exists (EEXIST)\n", name.as_str(), group_id);
            return Err(EEXIST);
        }
        let slot = free_slot(&mut st.srv)?;
        let id = st.new_id();
        let dir = Dir::new(Parent::Top(kind::DIR_SRV_POOLS), j.poolname, kind::SRV_POOL, id)?;
        let pool = SrvPool::new(name, group_id, j.member_id).inspect_err(|e| {
            pr_err!("server pool {}: join_pool: cannot allocate the pool ({:?})\n", name.as_str(), e);
        })?;
        match registry_add(&pool) {
            Ok(()) => {
                st.srv[slot] = Some(ServerPool { id, name, pool, _dir: dir });
                pr_info!("server pool {}: joined as member {} (empty)\n", name.as_str(), j.member_id);
                return Ok(());
            }
            Err(e) => {
                pr_err!("server pool {}: join_pool: registry full ({:?})\n", name.as_str(), e);
                drop(dir);
                pool
            }
        }
    };
    // Failure after the workers started: stop them without the state lock.
    pool.shutdown();
    Err(ENOSPC)
}

/// Index of a free slot, growing the table up to `MAX_POOLS`.
pub(crate) fn free_slot<T>(v: &mut KVec<Option<T>>) -> Result<usize> {
    if let Some(i) = v.iter().position(|p| p.is_none()) {
        return Ok(i);
    }
    if v.len() >= MAX_POOLS {
        pr_err!("too many pools (max {}) (ENOSPC)\n", MAX_POOLS);
        return Err(ENOSPC);
    }
    v.push(None, GFP_KERNEL)?;
    Ok(v.len() - 1)
}

pub(crate) fn show(id: u64, attr: &[u8], w: &mut PageWriter<'_>) -> Result {
    let pool = pool_by_id(id)?;
    match attr {
        b"state" => {
            let (s, m) = {
                let g = pool.inner.lock();
                (g.core.state, g.core.maintenance)
            };
            writeln!(w, "{}", s.name()).map_err(|_| EINVAL)?;
            if m {
                writeln!(w, "Maintenance mode: 1").map_err(|_| EINVAL)?;
            }
            Ok(())
        }
        b"member_id" => writeln!(w, "{}", pool.member_id).map_err(|_| EINVAL),
        b"sync" => {
            let running = pool.inner.lock().sched.running;
            writeln!(w, "{}", if running { "running" } else { "stopped" }).map_err(|_| EINVAL)
        }
        b"map_summary" => summary(&pool, w),
        b"map" => {
            dump_maps(&pool);
            summary(&pool, w)
        }
        _ => Err(EINVAL),
    }
}

fn summary(pool: &SrvPool, w: &mut PageWriter<'_>) -> Result {
    let mut buf = KVec::<u8>::from_elem(0u8, kernel::page::PAGE_SIZE, GFP_KERNEL)?;
    let n = pool.inner.lock().core.maps.render_summary(&mut buf);
    let text = core::str::from_utf8(buf.get(..n).unwrap_or(&[])).map_err(|_| EINVAL)?;
    w.write_str(text).map_err(|_| EINVAL)
}

/// `map`: every member's full map to the kernel log, in batches taken under the lock.
fn dump_maps(pool: &SrvPool) {
    let members = pool.inner.lock().core.maps.members();
    for m in members.iter() {
        let (count, total) = {
            let g = pool.inner.lock();
            match g.core.maps.get(m) {
                Some(x) => (x.count(), x.total()),
                None => continue,
            }
        };
        pr_info!("server pool {}: map of member {}: {}/{} dirty\n", pool.name(), m, count, total);
        let mut from = 0u64;
        loop {
            let mut batch = [0u64; 16];
            let mut n = 0;
            {
                let g = pool.inner.lock();
                let Some(map) = g.core.maps.get(m) else {
                    break;
                };
                while n < batch.len() {
                    match map.next_dirty(from) {
                        Some(c) => {
                            batch[n] = c;
                            n += 1;
                            from = c + 1;
                        }
                        None => break,
                    }
                }
            }
            if n == 0 {
                break;
            }
            let mut line = [0u8; 16 * 21];
            let mut lw = PageWriter::new(&mut line);
            for c in batch.iter().take(n) {
                let _ = write!(lw, " {}", c);
            }
            let len = lw.len();
            pr_info!("server pool {}: member {}:{}\n", pool.name(), m, BStrDisplay(line.get(..len).unwrap_or(&[])));
            if n < batch.len() {
                break;
            }
        }
    }
}

pub(crate) fn store(id: u64, attr: &[u8], input: &[u8]) -> Result {
    match attr {
        b"leave_pool" => leave_pool(id, input),
        b"add_clt" => add_clt(id, input),
        b"sync" => sync_store(id, input),
        _ => Err(EINVAL),
    }
}

fn leave_pool(id: u64, input: &[u8]) -> Result {
    let taken = {
        let mut st = state().ok_or(ENODEV)?;
        let slot = st.srv.iter().position(|p| p.as_ref().is_some_and(|p| p.id == id));
        let slot = slot.ok_or(ENODEV)?;
        let p = st.srv[slot].as_ref().ok_or(ENODEV)?;
        let name = p.name;
        params::parse_trigger(input, false).map_err(|e| log_parse(name.as_str(), e))?;
        {
            let mut g = p.pool.inner.lock();
            let view = SrvPoolView {
                state: to_pool_state(g.core.state),
                has_store: g.store.is_some(),
                sessions: g.core.sessions.saturating_add(g.core.sync_sessions),
            };
            if let Err(e) = store_reg::srv_can_leave(view) {
                let why = if view.has_store { "a store is registered" } else { "sessions are joined" };
                drop(g);
                pr_err!("server pool {}: leave_pool refused: {} ({})\n", name.as_str(), why, e.name());
                return Err(err(e));
            }
            // From here on no command or IO is accepted.
            g.dead = true;
        }
        registry_remove(&p.pool);
        st.srv[slot].take()
    };
    if let Some(p) = taken {
        p.pool.shutdown();
        pr_info!("server pool {}: left\n", p.name.as_str());
        // Dropping removes `pools/<p>/` once no other reader or writer is inside it.
        drop(p);
    }
    Ok(())
}

fn add_clt(id: u64, input: &[u8]) -> Result {
    let pool = pool_by_id(id)?;
    let name = params::parse_bare_name(input).map_err(|e| log_parse(pool.name(), e))?;
    if pool.inner.lock().sync_pool.is_some() {
        pr_err!("server pool {}: add_clt: a sync pool is already attached (EEXIST)\n", pool.name());
        return Err(EEXIST);
    }
    // Attach without any lock held: the client role takes its own.
    let sp = peer::attach(name).map_err(|e| {
        pr_err!("server pool {}: add_clt {}: cannot attach ({})\n", pool.name(), BStrDisplay(name), e.name());
        err(e)
    })?;
    let sp = Arc::new(sp, GFP_KERNEL)?;
    let refused = {
        let mut g = pool.inner.lock();
        if g.sync_pool.is_some() || g.dead {
            Some(sp)
        } else {
            g.sync_pool = Some(sp);
            None
        }
    };
    if let Some(sp) = refused {
        drop(sp);
        pr_err!("server pool {}: add_clt: a sync pool is already attached (EEXIST)\n", pool.name());
        return Err(EEXIST);
    }
    pr_info!("server pool {}: sync pool {} attached\n", pool.name(), BStrDisplay(name));
    Ok(())
}

fn sync_store(id: u64, input: &[u8]) -> Result {
    let pool = pool_by_id(id)?;
    let cmd = params::sync_cmd(input).map_err(|e| log_parse(pool.name(), e))?;
    match cmd {
        SyncCmd::Start => {
            let sqd = u16::try_from(crate::sync_queue_depth()).unwrap_or(32);
            let r = {
                let mut g = pool.inner.lock();
                let have = g.sync_pool.is_some();
                let inner = &mut *g;
                inner.sched.start(&inner.core, sqd, have).map(|()| inner.sched.cap)
            };
            match r {
                Ok(cap) => {
                    pr_info!("server pool {}: sync started ({} in flight at most)\n", pool.name(), cap);
                    pump(&pool);
                    Ok(())
                }
                Err(e) => {
                    let e = e.to_errno();
                    let st = pool.inner.lock().core.state;
                    pr_err!("server pool {}: sync start refused in state {} ({})\n", pool.name(), st.name(), e.name());
                    Err(err(e))
                }
            }
        }
        SyncCmd::Stop => {
            pool.inner.lock().sched.stop();
            pump(&pool);
            Ok(())
        }
    }
}

/// `rmr_srv_pool_query` for brmr: the pool's state and member id, or -ENOENT.
pub(crate) fn query(name: &[u8]) -> core::result::Result<(SrvPoolState, u32), Errno> {
    let pool = pool_by_name(name)?;
    let s = pool.inner.lock().core.state;
    Ok((to_pool_state(s), pool.member_id))
}

/// `rmr_srv_register`: CREATE fills `md` with the pool's identity; ADD loads it.
pub(crate) fn register(
    name: &[u8],
    ops: *const RmrSrvStoreOps,
    priv_: *mut c_void,
    mode: RegMode,
    md: &mut RmrPoolMd,
) -> core::result::Result<(), Errno> {
    let pool = pool_by_name(name)?;
    let cmode = match mode {
        RegMode::Create => srvcore::RegMode::Create,
        RegMode::Add => srvcore::RegMode::Add,
        RegMode::Replace => srvcore::RegMode::Replace,
    };
    let disk = if mode == RegMode::Add {
        if md.group_id != pool.group_id {
            pr_err!("server pool {}: store metadata has group_id {:#x}, pool has {:#x} (EINVAL)\n",
                pool.name(), md.group_id, pool.group_id);
            return Err(Errno::EINVAL);
        }
        let pname = PoolName::new(pool.name.as_bytes()).map_err(|_| Errno::EINVAL)?;
        Some(from_abi(md, pname).inspect_err(|_| {
            pr_err!("server pool {}: store metadata has queue_depth {} (EINVAL)\n", pool.name(), md.queue_depth);
        })?)
    } else {
        None
    };
    let mut g = pool.inner.lock();
    if g.store.is_some() || g.unregistering || g.dead {
        drop(g);
        pr_err!("server pool {}: store registration refused: a store is registered (EBUSY)\n", pool.name());
        return Err(Errno::EBUSY);
    }
    if let Err(e) = g.core.register_store(cmode, disk, md.mapped_size) {
        let st = g.core.state;
        drop(g);
        pr_err!("server pool {}: store registration refused in state {} ({})\n", pool.name(), st.name(), e.to_errno().name());
        return Err(e.to_errno());
    }
    g.store = Some(StoreReg { ops, priv_ });
    // The store ABI cannot persist the write-intent record yet (README), so a record kept only
    // in memory would protect nothing after a power loss: keep none rather than pay for it
    // (and risk an atomic allocation) on every write.
    g.core.intent.volatile_cache = false;
    *md = to_abi(&g.core);
    let st = g.core.state;
    drop(g);
    pr_info!(
        "server pool {}: store registered ({}), state {}\n",
        pool.name(),
        if mode == RegMode::Create { "create" } else { "add" },
        st.name()
    );
    Ok(())
}

/// `rmr_srv_unregister`: waits until no op is called and no IO is outstanding.
pub(crate) fn unregister(name: &[u8], delete: bool) -> core::result::Result<(), Errno> {
    let pool = pool_by_name(name)?;
    let mut g = pool.inner.lock();
    let view = SrvPoolView {
        state: to_pool_state(g.core.state),
        has_store: g.store.is_some() && !g.unregistering,
        sessions: g.core.sessions.saturating_add(g.core.sync_sessions),
    };
    if let Err(e) = store_reg::unregister(view, delete) {
        drop(g);
        pr_err!("server pool {}: store unregistration refused ({})\n", pool.name(), e.name());
        return Err(e);
    }
    g.unregistering = true;
    let old = g.core.state;
    let _ = g.core.unregister();
    g.sched.stop();
    while g.store_refs > 0 {
        pool.cv.wait(&mut g);
    }
    g.store = None;
    g.unregistering = false;
    let new = g.core.state;
    drop(g);
    pr_info!(
        "server pool {}: store {}, state {} -> {}\n",
        pool.name(),
        if delete { "deleted" } else { "removed" },
        old.name(),
        new.name()
    );
    Ok(())
}
