// SPDX-License-Identifier: GPL-2.0-or-later
//! rmr-client role (SPEC §2.2, §4.1-4.2, §5.1-5.2, §6.2-6.3, §6.7): pools, legs, replicated
//! IO. Every decision comes from `rmr_core::client` and `rmr_core::control`; this file owns
//! the kernel objects (locks, sysfs directories, transport sessions, IO units) and moves
//! messages.
//!
//! Locking: the module `state()` mutex only finds objects. Each pool has a `ctl` mutex that
//! serialises its control operations (they sleep on the network) and a `core` spinlock for
//! everything the IO path touches. Order: state → ctl → core; nothing sleeps under `core`.

#![deny(unsafe_code)]

mod commands;
mod io;
mod leg;
mod pool;
mod recovery;
mod sysfs;
use commands::*;
use leg::*;
pub(crate) use pool::*;
pub(crate) use recovery::*;
use crate::transport::clt::{sess_get, sess_put};
pub(crate) use sysfs::*;

use crate::abi::{RMR_IO_DISCARD, RMR_IO_FLUSH, RMR_IO_FUA, RMR_IO_WRITE};

use crate::kind;

use crate::kmap::{prepare_spares, KMapStorage};

use crate::rmr_core::{
    client::{resend_after_timeout, Admit, ClientPool as CorePool, LegState, ReadOutcome, ReadPolicy, ReadStep, StoreCheck, WriteReq, WriteStep},
    consts::{RMR_MAX_QUEUE_DEPTH, RMR_RECOVER_INTERVAL_MS},
    control::{MapUpdate, Step, TryEnableRun},
    join::{JoinMode, JoinParams, JoinRun, JoinStep},
    rejoin::RejoinRun,
    remove::RemoveRun,
    dirtymap::MapSet,
    errno::Errno,
    error::Error as CoreError,
    jhash,
    params::{self, AddMode, DelMode, Name},
    wire::{self, Cmd, CmdRsp, IoMsg, MemberList, Msg, RmrId, RspBody},
};

use crate::server::free_slot;

use crate::sysfs::{Dir, PageWriter, Parent};

use crate::rtrs_sys::clt::{CltSess, OwnedPermit, RSP_BUF_LEN};

use crate::wrap::bh::{lock_bh, BhGuard};
use crate::wrap::clt_io::{LegReplies, LegRequests, Payload, Prepared, UpperIo};
use crate::wrap::sg;

use crate::wrap::time::{ratelimit, sleep_ms, sleep_ms_interruptible};

use crate::rtrs_sys::clt::cmd_timeout_ms;

use crate::{err, state, State};

use core::ffi::c_int;

use core::fmt::Write;

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use kernel::prelude::*;

use kernel::sync::{Arc, ArcBorrow, Mutex, SpinLock};

use kernel::{new_mutex, new_spinlock};

pub(crate) use crate::wrap::time::now_ms;

/// The kernel half of a leg: its transport and counters.
pub(crate) struct LegObj {
    pub(crate) name: Name,
    pub(crate) sess: Arc<CltSess>,
    pub(crate) reads: AtomicU64,
    pub(crate) writes: AtomicU64,
}

/// One IO unit (`mem_id`).
struct Unit {
    busy: bool,
    io: Option<UpperIo>,
    write: bool,
    /// Write routing state.
    req: Option<WriteReq>,
    /// Read: the leg it went to.
    read_slot: usize,
    /// Read: the legs that answered it before (a retried read skips them).
    tried: u8,
    served: u32,
}

/// A stack of unit indices (at most one entry per unit, so it never overflows).
struct FreeUnits {
    idx: [u16; RMR_MAX_QUEUE_DEPTH],
    n: usize,
}

impl FreeUnits {
    fn top(&self) -> Option<usize> {
        self.n.checked_sub(1).and_then(|i| self.idx.get(i)).map(|&u| usize::from(u))
    }
    fn pop(&mut self) {
        self.n = self.n.saturating_sub(1);
    }
    /// False if full (a unit released twice: a bug, logged by the caller).
    fn push(&mut self, u: u16) -> bool {
        match self.idx.get_mut(self.n) {
            Some(slot) => {
                *slot = u;
                self.n += 1;
                true
            }
            None => false,
        }
    }
}

/// What the IO path needs, behind the pool spinlock.
pub(crate) struct Core {
    pub(crate) core: CorePool,
    pub(crate) maps: MapSet<KMapStorage>,
    pub(crate) legs: [Option<Arc<LegObj>>; 4],
    units: KVec<Unit>,
    /// Indices of the units not in use (O(1) allocation instead of a scan).
    free: FreeUnits,
    in_flight: u32,
    /// The `pool_md` members try-enable last said it waits for (logged when it changes).
    te_waits: MemberList,
}

/// A client pool.
#[pin_data]
pub(crate) struct CltPool {
    pub(crate) id: u64,
    pub(crate) name: Name,
    pub(crate) group_id: u32,
    pub(crate) chunk_size: u32,
    chunk_shift: u32,
    pub(crate) sync: bool,
    pub(crate) queue_depth: u32,
    pub(crate) in_use: AtomicBool,
    mapped_size: AtomicU64,
    /// The RTRS requests of the units, `unit * 4 + slot`: each holds its permit and its own
    /// copy of the caller's scatterlist (none on a sync pool, which carries no block IO).
    reqs: LegRequests<CltPool>,
    #[pin]
    pub(crate) ctl: Mutex<()>,
    #[pin]
    pub(crate) core: SpinLock<Core>,
}

/// The pool spinlock held with bottom halves disabled: RTRS completes IO in softirq
/// context, which takes the same lock.
pub(crate) type CoreGuard<'a> = BhGuard<'a, Core>;

impl CltPool {
    /// Locks the IO-path state.
    pub(crate) fn lock(&self) -> CoreGuard<'_> {
        lock_bh(&self.core)
    }
}

/// The module's entry for a pool: the object and its directories.
pub(crate) struct PoolEntry {
    pub(crate) pool: Arc<CltPool>,
    /// `(leg id, directory)` of each slot.
    leg_dirs: [Option<(u64, Dir)>; 4],
    _sessions: Dir,
    _dir: Dir,
}

impl PoolEntry {
    pub(crate) fn has_legs(&self) -> bool {
        self.leg_dirs.iter().any(|d| d.is_some())
    }
}

fn log_parse(what: &str, e: params::ParseError) -> Error {
    pr_err!("rmr-client {}: {}\n", what, e);
    err(e.errno())
}

fn cerr(e: CoreError) -> Errno {
    e.to_errno()
}

fn kerr(e: Errno) -> Error {
    err(e)
}

fn by_id(st: &State, id: u64) -> Option<Arc<CltPool>> {
    st.clt.iter().flatten().find(|p| p.pool.id == id).map(|p| p.pool.clone())
}

fn leg_by_id(st: &State, id: u64) -> Option<(Arc<CltPool>, usize)> {
    for e in st.clt.iter().flatten() {
        for (slot, d) in e.leg_dirs.iter().enumerate() {
            if d.as_ref().is_some_and(|(i, _)| *i == id) {
                return Some((e.pool.clone(), slot));
            }
        }
    }
    None
}

impl CltPool {
    fn leg(&self, slot: usize) -> Option<Arc<LegObj>> {
        self.lock().legs.get(slot).and_then(|l| l.clone())
    }
}

/// The slots set in `mask`, in ascending order.
fn slots(mask: u8) -> impl Iterator<Item = usize> {
    (0..4).filter(move |s| mask & (1 << s) != 0)
}

fn lowest_bit(m: u8) -> usize {
    if m == 0 {
        0
    } else {
        m.trailing_zeros() as usize
    }
}
