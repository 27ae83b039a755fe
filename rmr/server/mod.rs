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

#![deny(unsafe_code)]


mod io;
mod map_clear;
mod persist;
mod registry;
mod session;
mod store;
mod sync;
mod sysfs;
pub(crate) use io::*;
use map_clear::*;
use persist::*;
pub(crate) use registry::*;
pub(crate) use session::*;
pub(crate) use store::*;
use sync::*;
pub(crate) use sysfs::*;

use crate::abi::{RmrPoolMd, RmrSrvMd};
use crate::wrap::store_ops::{SioCell, StoreIo, StoreReg};

use crate::kind;

use crate::kmap::{prepare_spares, KMapStorage};

use crate::peer::{self, SyncPool};

use crate::rmr_core::{
    consts::{RMR_MAX_QUEUE_DEPTH, RMR_SRV_CHECK_MAPS_INTERVAL_MS, RMR_SRV_MD_LAZY_MS},
    errno::Errno,
    error::Error as CoreError,
    jhash,
    params::{self, Name, SyncCmd},
    server::{self as srvcore, AutoSync, IoDecision, SessionPools, SrvState, SyncSched, SYNC_NO_SOURCE},
    store_reg::{self, RegMode, SrvPoolState, SrvPoolView},
    wire::{
        Cmd, CmdRsp, CmdType, IoMsg, MemberList, Msg, PoolMd, PoolName, RmrId, RspBody, SrvMd,
        HDR_LEN, IO_DISCARD, IO_FUA, IO_SYNC, IO_WRITE, PIECE_BYTES, USER_MAX,
    },
};

use crate::rtrs_sys::srv::{SessHandle, SrvCtx, SrvOp};

use crate::sysfs::{BStrDisplay, Dir, PageWriter, Parent};

use crate::{err, state, State, MAX_POOLS};

use core::ffi::c_int;

use core::fmt::Write;

use core::pin::Pin;

use core::sync::atomic::{AtomicI32, Ordering};


use kernel::prelude::*;

use kernel::sync::{Arc, CondVar, Mutex, SpinLock};

use kernel::workqueue::{self, Work, WorkItem};

use kernel::{impl_has_work, new_condvar, new_mutex, new_spinlock, new_work};

type CorePool = srvcore::ServerPool<KMapStorage>;

/// Delayed-work kinds ([`dwork_run`]).
const DW_CLEAR: u32 = 0;
const DW_SYNC: u32 = 1;
const DW_MD: u32 = 2;

fn neg(e: Errno) -> i32 {
    e.to_kernel()
}

use crate::wrap::time::now_ms;

fn to_pool_state(s: SrvState) -> SrvPoolState {
    match s {
        SrvState::Empty => SrvPoolState::Empty,
        SrvState::Registered => SrvPoolState::Registered,
        SrvState::Created => SrvPoolState::Created,
        SrvState::Normal => SrvPoolState::Normal,
        SrvState::NoIo => SrvPoolState::NoIo,
    }
}

use crate::wrap::dwork::Dwork;
use crate::wrap::global::Global;
use crate::wrap::blank::blank_server_pool;
use crate::wrap::time::ratelimit;

/// The pool's delayed works (`wrap::dwork`): the map-clear tick and the sync retry. Returns
/// milliseconds until the next run (0: none).
pub(crate) fn dwork_run(pool: &Arc<SrvPool>, kind: u32) -> u32 {
    match kind {
        DW_CLEAR => {
            map_clear_tick(pool);
            auto_sync(pool);
            // Cleared bits are persisted lazily, at the latest here.
            if pool.inner.lock().core.md_dirty() {
                let _ = md_persist(pool);
            }
            RMR_SRV_CHECK_MAPS_INTERVAL_MS as u32
        }
        DW_MD => {
            md_work(pool);
            0
        }
        DW_SYNC => {
            pump(pool);
            0
        }
        _ => 0,
    }
}

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
    /// Completed client requests, by `mem_id`, reused by its next IO (io.rs `dispatch`):
    /// allocated at a `mem_id`'s first IO only. Emptied when the pool dies (each holds a
    /// reference to the pool).
    reqs: KVec<Option<Pin<KBox<SrvReq>>>>,
    /// Client writes parked until their metadata is durable, by `mem_id` (persist.rs).
    md_wait: KVec<Option<MdWaiter>>,
    sync_pool: Option<Arc<SyncPool>>,
    sched: SyncSched,
    /// Sync jobs (on-demand and sync thread) spawned and not finished.
    jobs: u32,
    /// `leave_pool` or module exit: no new commands, jobs or works.
    dead: bool,
    dw_clear: Dwork,
    dw_sync: Dwork,
    dw_md: Dwork,
}

impl Inner {
    /// Drops a store reference (see `SrvPool::store_put`, which takes the lock for it);
    /// true if `rmr_srv_unregister` waits for the last one: notify `SrvPool::cv`.
    fn put_store_ref(&mut self) -> bool {
        self.store_refs = self.store_refs.saturating_sub(1);
        self.store_refs == 0 && self.unregistering
    }
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
    /// The metadata writer (persist.rs): serialises its rounds; its page buffer.
    #[pin]
    md_writer: Mutex<MdBuf>,
}

impl SrvPool {
    fn new(name: Name, group_id: u32, member_id: u32) -> Result<Arc<SrvPool>> {
        let mut core = blank_server_pool()?;
        core.member_id = member_id;
        let mut md = PoolMd::BLANK;
        md.name = PoolName::new(name.as_bytes()).map_err(|_| EINVAL)?;
        md.group_id = group_id;
        core.md = md;
        let piece = KBox::<[u8; PIECE_BYTES]>::init(kernel::init::zeroed(), GFP_KERNEL)?;
        let mut parked = KVec::with_capacity(RMR_MAX_QUEUE_DEPTH, GFP_KERNEL)?;
        let mut md_wait = KVec::with_capacity(RMR_MAX_QUEUE_DEPTH, GFP_KERNEL)?;
        let mut reqs = KVec::with_capacity(RMR_MAX_QUEUE_DEPTH, GFP_KERNEL)?;
        for _ in 0..RMR_MAX_QUEUE_DEPTH {
            parked.push(None, GFP_KERNEL)?;
            md_wait.push(None, GFP_KERNEL)?;
            reqs.push(None, GFP_KERNEL)?;
        }
        let md_buf = KBox::<[u8; crate::abi::RMR_MD_PAGE]>::init(kernel::init::zeroed(), GFP_KERNEL)?;
        let inner = Inner {
            core,
            piece,
            store: None,
            store_refs: 0,
            unregistering: false,
            parked,
            md_wait,
            reqs,
            sync_pool: None,
            sched: SyncSched::default(),
            jobs: 0,
            dead: false,
            dw_clear: Dwork::NONE,
            dw_sync: Dwork::NONE,
            dw_md: Dwork::NONE,
        };
        let pool = Arc::pin_init(
            pin_init!(SrvPool {
                name,
                group_id,
                member_id,
                inner <- new_spinlock!(inner, "rmr_srv_pool"),
                cv <- new_condvar!("rmr_srv_pool_cv"),
                md_writer <- new_mutex!(md_buf, "rmr_srv_md_writer"),
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
        let mdw = match Dwork::new(&pool, DW_MD) {
            Ok(d) => d,
            Err(e) => {
                clear.free();
                sync.free();
                return Err(e);
            }
        };
        clear.queue(RMR_SRV_CHECK_MAPS_INTERVAL_MS as u32);
        {
            let mut g = pool.inner.lock();
            g.dw_clear = clear;
            g.dw_sync = sync;
            g.dw_md = mdw;
        }
        io::prefill_reqs(&pool);
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

    /// Waits until `drained` holds for the pool's state: a drain of IO or jobs already in
    /// flight, which cannot be abandoned (their memory and the store stay in use until they
    /// end). Each wait is bounded by `cmd_timeout_ms` and logged when it runs out; a signal
    /// does not end the drain but turns the wait into 10 ms naps. Sleeps.
    fn drain(&self, what: &str, drained: impl Fn(&Inner) -> bool) {
        let ms = crate::rtrs_sys::clt::cmd_timeout_ms();
        let start = now_ms();
        loop {
            let mut g = self.inner.lock();
            if drained(&g) {
                return;
            }
            let r = self.cv.wait_interruptible_timeout(&mut g, kernel::time::msecs_to_jiffies(ms));
            let done = drained(&g);
            drop(g);
            match r {
                _ if done => return,
                kernel::sync::CondVarTimeoutResult::Timeout => pr_warn!(
                    "server pool {}: {} not drained after {} ms, still waiting\n",
                    self.name(), what, now_ms().saturating_sub(start)
                ),
                kernel::sync::CondVarTimeoutResult::Signal { .. } => crate::wrap::time::sleep_ms(10),
                kernel::sync::CondVarTimeoutResult::Woken { .. } => {}
            }
        }
    }

    fn store_put(&self) {
        let wake = self.inner.lock().put_store_ref();
        if wake {
            self.cv.notify_all();
        }
    }

    /// Stops the workers and waits for sync jobs; detaches the sync pool. Sleeps; call without
    /// the module state lock.
    fn shutdown(&self) {
        let (clear, sync, sp, reqs) = {
            let mut g = self.inner.lock();
            g.dead = true;
            g.sched.stop();
            let c = core::mem::replace(&mut g.dw_clear, Dwork::NONE);
            let s = core::mem::replace(&mut g.dw_sync, Dwork::NONE);
            let m = core::mem::replace(&mut g.dw_md, Dwork::NONE);
            (c, (s, m), g.sync_pool.take(), core::mem::take(&mut g.reqs))
        };
        // Outside the lock: each holds a reference to this pool.
        drop(reqs);
        clear.free();
        sync.0.free();
        sync.1.free();
        md_fail_waiters(self);
        self.drain("sync jobs", |g| g.jobs == 0);
        drop(sp);
    }
}

impl SrvPool {
    /// Hands the core the spare map storages it lacks for maps of `total` chunks (and, for a
    /// MAP_READY, the staging maps'), allocated here where sleeping is allowed (see kmap.rs).
    pub(super) fn prepare_maps(&self, total: u64, staging: bool) {
        if total == 0 {
            return;
        }
        let ok = prepare_spares(total, |f| f(&mut self.inner.lock().core.maps))
            && (!staging || prepare_spares(total, |f| f(&mut self.inner.lock().core.staging_spares)));
        if !ok && ratelimit() {
            pr_warn!("server pool {}: no memory to prepare dirty maps; new maps allocate on demand\n", self.name());
        }
    }

    /// Prepares one spare storage each for the lost maps and their staging set, before a
    /// command that may create one (`may_make_lost_map`).
    pub(super) fn prepare_lost(&self, total: u64) {
        if total == 0 {
            return;
        }
        let ok = prepare_spares(total, |f| f(&mut self.inner.lock().core.lost))
            && prepare_spares(total, |f| f(&mut self.inner.lock().core.staging_lost));
        if !ok && ratelimit() {
            pr_warn!("server pool {}: no memory to prepare a lost map; it allocates on demand\n", self.name());
        }
    }

    /// Prepares the write-intent record's maps and witness maps (where sleeping is allowed),
    /// so that its IO path does not allocate. Nothing without a volatile cache.
    pub(super) fn prepare_intent(&self) {
        let total = {
            let g = self.inner.lock();
            if !g.core.intent.volatile_cache || g.core.md.chunk_size == 0 {
                return;
            }
            g.core.total_chunks()
        };
        let ok = prepare_spares(total, |f| f(&mut self.inner.lock().core.intent))
            && prepare_spares(total, |f| f(&mut self.inner.lock().core.intent.witness));
        if !ok && ratelimit() {
            pr_warn!("server pool {}: no memory to prepare the write-intent maps; they allocate on demand\n", self.name());
        }
    }
}
