// SPDX-License-Identifier: GPL-2.0-or-later
//! blk-mq and the gendisk of `/dev/brmrN`: the tag set, the queue limits, the request pdu (the
//! rmr IO and its scatterlist), the blk-mq and block device callbacks, the rmr IO completion,
//! and the `block` symlink. The 6.12 `kernel::block::mq` abstraction has no error completion
//! and no scatterlists, so this uses `kernel::bindings` and a few helpers in brmr_blk.c.
//!
//! The callbacks turn their raw arguments into a [`Request`] or a [`Done`] and call
//! `client::blk`, which decides (rmr flags, pieces, requeue, counters).

use super::kdir::KDir;
use super::rmr_clt::Pool;
use crate::abi::{RmrCltIo, RMR_IO_DISCARD};
use crate::client::blk::{self, Shared};
use crate::rmr_core::brmr_map::Limits;
use core::ffi::{c_int, c_void};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicI32, Ordering};
use kernel::bindings;
use kernel::error::to_result;
use kernel::ffi::c_char;
use kernel::prelude::*;
use kernel::types::Opaque;

extern "C" {
    // `struct gendisk` and `struct request` cross as `void *` (bindgen leaves some of their
    // nested types empty, which the FFI lint rejects).
    fn brmr_alloc_disk(
        set: *mut bindings::blk_mq_tag_set,
        lim: *mut bindings::queue_limits,
        queuedata: *mut c_void,
        err: *mut c_int,
    ) -> *mut c_void;
    fn brmr_rq_map_sg(rq: *mut c_void, sg: *mut bindings::scatterlist) -> c_int;
    fn brmr_requeue(rq: *mut c_void);
    fn brmr_sts_resource() -> bindings::blk_status_t;
    fn brmr_sts_ioerr() -> bindings::blk_status_t;
    fn brmr_sts_notsupp() -> bindings::blk_status_t;
    fn brmr_feat_cache_fua() -> bindings::blk_features_t;
    fn brmr_link_disk(dir: *mut bindings::kobject, disk: *mut c_void) -> c_int;
    fn brmr_unlink_disk(dir: *mut bindings::kobject);
}

/// What the callbacks of one disk reach through `driver_data`, `queuedata` and
/// `private_data`.
///
/// # Invariants
/// Lives in the box of a [`Disk`] at a fixed address while the disk's tag set or gendisk
/// exist (see [`Disk`]); `max_segments` is the number of scatterlist entries in every pdu of
/// that tag set.
struct Ctx {
    /// The rmr client pool the disk's IOs go to.
    pool: Pool,
    /// Scatterlist entries per request.
    max_segments: u32,
    /// The client's data of the device.
    shared: Shared,
}

// ---------------------------------------------------------------------------------------
// Requests

/// The request pdu: the rmr IO, its completion status, then `max_segments` scatterlist
/// entries (`cmd_size` covers them).
#[repr(C)]
struct Pdu {
    io: RmrCltIo,
    err: AtomicI32,
    /// Discard/write-zeroes: bytes after the piece in flight (one chunk piece at a time).
    left: u64,
}

/// Offset of the scatterlist array in the pdu.
const SG_OFFSET: usize = {
    let a = core::mem::align_of::<bindings::scatterlist>();
    core::mem::size_of::<Pdu>().div_ceil(a) * a
};

fn cmd_size(max_segments: u32) -> usize {
    SG_OFFSET + max_segments as usize * core::mem::size_of::<bindings::scatterlist>()
}

/// # Safety
/// `rq` is a request of a tag set made by [`TagSet::new`].
unsafe fn pdu_of(rq: *mut bindings::request) -> (*mut Pdu, *mut bindings::scatterlist) {
    // SAFETY: blk-mq allocated `cmd_size` bytes of pdu behind every request of the tag set.
    let p = unsafe { bindings::blk_mq_rq_to_pdu(rq) }.cast::<u8>();
    // SAFETY: `SG_OFFSET` is within the pdu (see `cmd_size`).
    (p.cast::<Pdu>(), unsafe { p.add(SG_OFFSET) }.cast::<bindings::scatterlist>())
}

const REQ_OP_MASK: u32 = (1 << bindings::REQ_OP_BITS) - 1;
const REQ_FUA: u32 = 1 << bindings::req_flag_bits___REQ_FUA;
const REQ_PREFLUSH: u32 = 1 << bindings::req_flag_bits___REQ_PREFLUSH;

/// The operation of a request.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// REQ_OP_READ.
    Read,
    /// REQ_OP_WRITE.
    Write,
    /// REQ_OP_FLUSH.
    Flush,
    /// REQ_OP_DISCARD.
    Discard,
    /// REQ_OP_WRITE_ZEROES.
    WriteZeroes,
    /// Anything else.
    Other,
}

/// Why `queue_rq` refuses a request.
#[derive(Clone, Copy)]
pub(crate) enum Status {
    /// No resources now (BLK_STS_RESOURCE): blk-mq retries later.
    Resource,
    /// Failed (BLK_STS_IOERR).
    IoErr,
    /// Operation not supported (BLK_STS_NOTSUPP).
    NotSupp,
}

impl Status {
    fn to_raw(self) -> bindings::blk_status_t {
        match self {
            // SAFETY: returns a constant.
            Status::Resource => unsafe { brmr_sts_resource() },
            // SAFETY: returns a constant.
            Status::IoErr => unsafe { brmr_sts_ioerr() },
            // SAFETY: returns a constant.
            Status::NotSupp => unsafe { brmr_sts_notsupp() },
        }
    }
}

/// A request blk-mq handed to `queue_rq`, until it goes to rmr.
///
/// # Invariants
/// `rq` is a live request of a [`Disk`]'s queue that blk-mq gave to `queue_rq` and that is not
/// handed to rmr yet: the driver alone uses it and its pdu. `ctx` is that disk's context.
/// `nents` is 0 or the number of scatterlist entries [`Request::map_sg`] wrote into the pdu.
/// `started`: `blk_mq_start_request` ran for it.
pub(crate) struct Request<'a> {
    rq: NonNull<bindings::request>,
    ctx: &'a Ctx,
    nents: u32,
    started: bool,
}

/// Proof that `queue_rq` handed its request to rmr: only [`Request::submit`] makes one, so
/// `queue_rq` can report success only for a request rmr owns, and a refusal only with the
/// request in hand ([`Queued`] or `(Request, Status)`).
pub(crate) struct Queued(());

impl Request<'_> {
    fn cmd_flags(&self) -> u32 {
        // SAFETY: `rq` is live (type invariant).
        unsafe { (*self.rq.as_ptr()).cmd_flags }
    }

    /// The request's operation.
    pub(crate) fn op(&self) -> Op {
        match self.cmd_flags() & REQ_OP_MASK {
            bindings::req_op_REQ_OP_READ => Op::Read,
            bindings::req_op_REQ_OP_WRITE => Op::Write,
            bindings::req_op_REQ_OP_FLUSH => Op::Flush,
            bindings::req_op_REQ_OP_DISCARD => Op::Discard,
            bindings::req_op_REQ_OP_WRITE_ZEROES => Op::WriteZeroes,
            _ => Op::Other,
        }
    }

    /// REQ_PREFLUSH is set.
    pub(crate) fn preflush(&self) -> bool {
        self.cmd_flags() & REQ_PREFLUSH != 0
    }

    /// REQ_FUA is set.
    pub(crate) fn fua(&self) -> bool {
        self.cmd_flags() & REQ_FUA != 0
    }

    /// Bytes of the request.
    pub(crate) fn bytes(&self) -> u32 {
        // SAFETY: `rq` is live (type invariant).
        unsafe { (*self.rq.as_ptr()).__data_len }
    }

    /// First sector (-1 for a pure flush).
    pub(crate) fn sector(&self) -> u64 {
        // SAFETY: `rq` is live (type invariant).
        unsafe { (*self.rq.as_ptr()).__sector }
    }

    /// The client's data of the device.
    pub(crate) fn shared(&self) -> &Shared {
        &self.ctx.shared
    }

    /// `blk_mq_start_request`, once (before the pages are mapped or the request goes to rmr).
    fn start(&mut self) {
        if !self.started {
            // SAFETY: `rq` is live and ours (type invariant), not started yet.
            unsafe { bindings::blk_mq_start_request(self.rq.as_ptr()) };
            self.started = true;
        }
    }

    /// Maps the request's pages into the pdu's scatterlist: the number of entries, or `None`
    /// if there are none or more than the pdu holds. Starts the request.
    pub(crate) fn map_sg(&mut self) -> Option<u32> {
        self.start();
        let rq = self.rq.as_ptr();
        // SAFETY: `rq` is a request of a `Disk`'s tag set (type invariant).
        let (_, sg) = unsafe { pdu_of(rq) };
        // SAFETY: `rq` is live and ours; `sg` holds `max_segments` initialised entries
        // (`init_request`), which the queue limits keep the mapping within.
        let n = unsafe { brmr_rq_map_sg(rq.cast::<c_void>(), sg) };
        if n <= 0 || n as u32 > self.ctx.max_segments {
            return None;
        }
        // INVARIANT: `n` entries were written into the pdu's scatterlist.
        self.nents = n as u32;
        Some(self.nents)
    }

    /// Hands the request to rmr as one IO of `len` bytes at byte `offset` with `RMR_IO_*`
    /// `flags`, over the scatterlist [`Request::map_sg`] made (none if it was not called);
    /// `left` bytes follow in later pieces ([`Done::next_piece`]). `Ok`: rmr owns it until
    /// its completion, which may already have run; `Err`: rmr's negative errno, and the
    /// request back (rmr checks that the scatterlist holds `len` bytes). Starts the request.
    pub(crate) fn submit(mut self, flags: u32, len: u32, offset: u64, left: u64) -> Result<Queued, (Self, c_int)> {
        self.start();
        let rq = self.rq.as_ptr();
        // SAFETY: `rq` is a request of a `Disk`'s tag set (type invariant).
        let (pdu, sg) = unsafe { pdu_of(rq) };
        let sg = if self.nents == 0 { core::ptr::null_mut() } else { sg.cast::<c_void>() };
        // SAFETY: the pdu is ours until rmr has the IO (type invariant); `io` is written whole
        // before anything reads it.
        let io = unsafe {
            core::ptr::write(
                core::ptr::addr_of_mut!((*pdu).io),
                RmrCltIo {
                    flags,
                    len,
                    offset,
                    sg,
                    sg_cnt: self.nents,
                    served: 0,
                    done: Some(io_done),
                    priv_: rq.cast::<c_void>(),
                },
            );
            (*pdu).left = left;
            (*pdu).err.store(0, Ordering::Relaxed);
            core::ptr::addr_of_mut!((*pdu).io)
        };
        // SAFETY: `io` lives in the pdu, untouched by us until `io_done` runs (the request is
        // not used after this call unless rmr refused the IO).
        match unsafe { self.ctx.pool.request(io) } {
            0 => Ok(Queued(())),
            r => Err((self, r)),
        }
    }
}

/// A request whose rmr IO rmr has just completed (its `done` runs).
///
/// # Invariants
/// `io` is the rmr IO in the pdu of a live request of a [`Disk`]'s queue (its `priv_`), which
/// rmr has completed and which nothing else touches until it goes back to rmr or the request
/// is completed or requeued. `ctx` is that disk's context.
pub(crate) struct Done<'a> {
    io: NonNull<RmrCltIo>,
    ctx: &'a Ctx,
}

impl Done<'_> {
    /// The client's data of the device (borrowed from this value, so never across its
    /// completion, after which the disk may go).
    pub(crate) fn shared(&self) -> &Shared {
        &self.ctx.shared
    }

    fn pdu(&self) -> *mut Pdu {
        // `io` is the pdu's first field (`repr(C)`).
        self.io.as_ptr().cast::<Pdu>()
    }

    fn rq(&self) -> *mut bindings::request {
        // SAFETY: the IO is ours (type invariant).
        unsafe { (*self.io.as_ptr()).priv_ }.cast::<bindings::request>()
    }

    /// Byte offset of the piece that completed.
    pub(crate) fn offset(&self) -> u64 {
        // SAFETY: the IO is ours (type invariant).
        unsafe { (*self.io.as_ptr()).offset }
    }

    /// Bytes of the piece that completed.
    pub(crate) fn len(&self) -> u32 {
        // SAFETY: the IO is ours (type invariant).
        unsafe { (*self.io.as_ptr()).len }
    }

    /// Bytes after the piece that completed (discard/write-zeroes).
    pub(crate) fn left(&self) -> u64 {
        // SAFETY: the pdu is ours (type invariant).
        unsafe { (*self.pdu()).left }
    }

    /// Sends the next piece of a discard or write-zeroes (`len` bytes at `offset`, no data;
    /// `left` bytes after it). `Err`: rmr's negative errno (EINVAL for an IO with data), the
    /// IO is still ours.
    pub(crate) fn next_piece(self, offset: u64, len: u32, left: u64) -> Result<(), (Self, c_int)> {
        let io = self.io.as_ptr();
        // SAFETY: the IO is ours (type invariant).
        let (flags, sg) = unsafe { ((*io).flags, (*io).sg) };
        if flags & RMR_IO_DISCARD == 0 || !sg.is_null() {
            return Err((self, EINVAL.to_errno()));
        }
        // SAFETY: the IO and its pdu are ours (type invariant).
        unsafe {
            (*io).offset = offset;
            (*io).len = len;
            (*self.pdu()).left = left;
        }
        // SAFETY: rmr calls `done` without holding any of its locks, so the IO may go back
        // from here; untouched by us until `io_done` runs again (`self` is consumed).
        match unsafe { self.ctx.pool.request(io) } {
            0 => Ok(()),
            r => Err((self, r)),
        }
    }

    /// Requeues the whole request (`blk_mq_requeue_request`): `queue_rq` runs it again later.
    pub(crate) fn requeue(self) {
        // SAFETY: the request is live and ours (type invariant); it is not used afterwards.
        unsafe { brmr_requeue(self.rq().cast::<c_void>()) };
    }

    /// Completes the request with `err` (0 or a negative errno); blk-mq then calls
    /// `complete`.
    pub(crate) fn complete(self, err: c_int) {
        let rq = self.rq();
        // SAFETY: the pdu is ours (type invariant).
        unsafe { (*self.pdu()).err.store(err, Ordering::Release) };
        // SAFETY: the request is live and ours; it is not used afterwards.
        unsafe { bindings::blk_mq_complete_request(rq) };
    }
}

/// blk-mq `init_request`: prepares the pdu's scatterlist once per request.
///
/// # Safety
/// Called by blk-mq for a request of a tag set made by [`TagSet::new`].
unsafe extern "C" fn init_request(
    set: *mut bindings::blk_mq_tag_set,
    rq: *mut bindings::request,
    _hctx_idx: u32,
    _numa_node: u32,
) -> c_int {
    // SAFETY: `driver_data` is the disk's `Ctx`, alive while the tag set exists.
    let ctx = unsafe { &*((*set).driver_data as *const Ctx) };
    // SAFETY: `rq` belongs to this tag set.
    let (_, sg) = unsafe { pdu_of(rq) };
    // SAFETY: the pdu holds `max_segments` scatterlist entries at `sg`.
    unsafe { bindings::sg_init_table(sg, ctx.max_segments) };
    0
}

/// `RmrCltIo::done`: may run in any context, possibly before `rmr_clt_request` returned.
///
/// # Safety
/// Called by rmr exactly once for each IO started by [`Request::submit`] or
/// [`Done::next_piece`].
unsafe extern "C" fn io_done(io: *mut RmrCltIo, err: c_int) {
    let Some(io) = NonNull::new(io) else {
        return;
    };
    // SAFETY: `io` is in the pdu of the request in `priv_`, handed to rmr and completed by this
    // call; the request's queue's `queuedata` is the disk's `Ctx`, alive while it has requests.
    let ctx = unsafe { &*((*(*(*io.as_ptr()).priv_.cast::<bindings::request>()).q).queuedata as *const Ctx) };
    // INVARIANT: rmr completed the IO and gives it back to us.
    blk::io_done(Done { io, ctx }, err);
}

/// blk-mq `complete`: ends the request with the status rmr reported.
///
/// # Safety
/// Called by blk-mq after [`Done::complete`] completed a request of one of our queues.
unsafe extern "C" fn complete(rq: *mut bindings::request) {
    // SAFETY: `rq` belongs to a tag set made by `TagSet::new`.
    let (pdu, _) = unsafe { pdu_of(rq) };
    // SAFETY: the request's queue's `queuedata` is the disk's `Ctx`; the pdu was written by
    // `Request::submit` and `Done::complete`, and nothing else touches it now.
    let (ctx, err, flags) = unsafe {
        (&*((*(*rq).q).queuedata as *const Ctx), (*pdu).err.load(Ordering::Acquire), (*pdu).io.flags)
    };
    blk::completed(&ctx.shared, flags, err);
    let sts = if err == 0 {
        bindings::BLK_STS_OK as bindings::blk_status_t
    } else {
        // SAFETY: a pure mapping of an errno.
        unsafe { bindings::errno_to_blk_status(err) }
    };
    // SAFETY: the request is live and completed by us; it is not used afterwards.
    unsafe { bindings::blk_mq_end_request(rq, sts) };
}

/// blk-mq `queue_rq`: the request goes to `client::blk::queue_rq`.
///
/// # Safety
/// Called by blk-mq with a hardware context and request of a queue made by [`GenDisk::new`].
unsafe extern "C" fn queue_rq(
    hctx: *mut bindings::blk_mq_hw_ctx,
    bd: *const bindings::blk_mq_queue_data,
) -> bindings::blk_status_t {
    // SAFETY: blk-mq passes a live hardware context and request of our queue; `queuedata` is
    // the disk's `Ctx` (see `GenDisk::new`).
    let (rq, ctx) = unsafe { ((*bd).rq, &*((*(*hctx).queue).queuedata as *const Ctx)) };
    let Some(rq) = NonNull::new(rq) else {
        return Status::IoErr.to_raw();
    };
    // INVARIANT: blk-mq hands `rq` to the driver; it has not gone to rmr nor been started.
    match blk::queue_rq(Request { rq, ctx, nents: 0, started: false }) {
        Ok(Queued(())) => bindings::BLK_STS_OK as bindings::blk_status_t,
        Err((_rq, sts)) => sts.to_raw(),
    }
}

/// gendisk `open`: `client::blk::open`.
///
/// # Safety
/// Called by the block layer with a disk allocated by [`GenDisk::new`].
#[no_mangle]
pub(crate) unsafe extern "C" fn brmr_rs_open(disk: *mut bindings::gendisk, _mode: bindings::blk_mode_t) -> c_int {
    // SAFETY: `private_data` is the `Ctx` of this disk (set in `GenDisk::new`), alive until
    // after the disk is put (`Disk` invariant).
    let ctx = unsafe { &*((*disk).private_data as *const Ctx) };
    match blk::open(&ctx.shared) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// gendisk `release`: `client::blk::release`.
///
/// # Safety
/// Called by the block layer after a successful [`brmr_rs_open`].
#[no_mangle]
pub(crate) unsafe extern "C" fn brmr_rs_release(disk: *mut bindings::gendisk) {
    // SAFETY: as in `brmr_rs_open`.
    let ctx = unsafe { &*((*disk).private_data as *const Ctx) };
    blk::release(&ctx.shared);
}

static MQ_OPS: bindings::blk_mq_ops = bindings::blk_mq_ops {
    queue_rq: Some(queue_rq),
    complete: Some(complete),
    init_request: Some(init_request),
    // SAFETY: every other field is an optional callback; all-zero is `None`.
    ..unsafe { core::mem::zeroed() }
};

// ---------------------------------------------------------------------------------------
// Tag set and gendisk

/// A blk-mq tag set with one hardware queue per CPU.
///
/// # Invariants
/// `set` was initialised by a successful `blk_mq_alloc_tag_set` and is freed only in `drop`;
/// the box is never moved out of (the tag set holds a mutex and list heads), and
/// `driver_data` points to the `Ctx` of the [`Disk`] that holds it, which outlives it.
struct TagSet {
    set: KBox<Opaque<bindings::blk_mq_tag_set>>,
}

// SAFETY: the tag set is used through blk-mq functions that do their own locking.
unsafe impl Send for TagSet {}

impl TagSet {
    /// Allocates the tag set of a device; `ctx` must outlive it.
    fn new(lim: &Limits, ctx: &Ctx) -> Result<TagSet> {
        // SAFETY: `blk_mq_tag_set` is integers, pointers and a mutex/list head that
        // `blk_mq_alloc_tag_set` initialises; all-zero is its documented starting state.
        let mut set: bindings::blk_mq_tag_set = unsafe { core::mem::zeroed() };
        set.ops = &MQ_OPS;
        // One hardware queue per CPU, sharing one set of tags (the pool's IO units): the
        // submitters of different CPUs meet only at the pool lock.
        // SAFETY: `nr_cpu_ids` is set once during boot and only read afterwards.
        set.nr_hw_queues = unsafe { bindings::nr_cpu_ids }.max(1);
        set.nr_maps = 1;
        set.queue_depth = lim.queue_depth;
        set.cmd_size = u32::try_from(cmd_size(lim.max_segments)).map_err(|_| EINVAL)?;
        set.numa_node = bindings::NUMA_NO_NODE;
        // Not BLK_MQ_F_BLOCKING: queue_rq never sleeps (rmr_clt_request takes permits without
        // waiting and answers EAGAIN, i.e. BLK_STS_RESOURCE, while IO is frozen for a map
        // update).
        set.flags = bindings::BLK_MQ_F_SHOULD_MERGE | bindings::BLK_MQ_F_TAG_HCTX_SHARED;
        set.driver_data = (ctx as *const Ctx).cast_mut().cast::<c_void>();
        let set = KBox::new(Opaque::new(set), GFP_KERNEL)?;
        // SAFETY: `set` is a zeroed tag set with its parameters filled in, at its final address.
        to_result(unsafe { bindings::blk_mq_alloc_tag_set(set.get()) })?;
        // INVARIANT: allocated above; the caller keeps `ctx` alive longer (`Disk`).
        Ok(TagSet { set })
    }
}

impl Drop for TagSet {
    fn drop(&mut self) {
        // SAFETY: allocated by `blk_mq_alloc_tag_set` (type invariant); no disk uses it any more
        // (`Disk` drops its gendisk first).
        unsafe { bindings::blk_mq_free_tag_set(self.set.get()) };
    }
}

/// An added gendisk `brmrN`.
///
/// # Invariants
/// `disk` was allocated by `brmr_alloc_disk` on the tag set of the same [`Disk`] and added with
/// `device_add_disk`; it is deleted and put only in `drop`, which runs before that tag set is
/// freed and the `Ctx` (its `private_data` and `queuedata`) is dropped.
struct GenDisk {
    disk: *mut bindings::gendisk,
}

// SAFETY: the gendisk is reference counted and its functions lock internally.
unsafe impl Send for GenDisk {}

impl GenDisk {
    /// Allocates and adds `brmr<index>` with `lim` and `capacity` sectors.
    fn new(tags: &TagSet, ctx: &Ctx, lim: &Limits, index: u32, capacity: u64) -> Result<GenDisk> {
        // SAFETY: all-zero `queue_limits` means "defaults" to the block layer.
        let mut ql: bindings::queue_limits = unsafe { core::mem::zeroed() };
        ql.logical_block_size = lim.lbs;
        ql.physical_block_size = lim.lbs;
        ql.max_hw_sectors = lim.max_hw_sectors;
        ql.chunk_sectors = lim.chunk_sectors;
        ql.max_segments = u16::try_from(lim.max_segments).map_err(|_| EINVAL)?;
        // Discard and write-zeroes: the stores zero the range (their device's write-zeroes,
        // with unmapping allowed, or zero pages), at most a chunk per request.
        ql.max_hw_discard_sectors = lim.chunk_sectors;
        ql.max_write_zeroes_sectors = lim.chunk_sectors;
        ql.discard_granularity = lim.lbs;
        // RTRS registers the scatterlist with one fast-registration MR, which needs every
        // segment but the first and last to be whole pages (as rnbd-client sets it).
        ql.virt_boundary_mask = 4096 - 1;
        // SAFETY: returns a constant.
        ql.features = unsafe { brmr_feat_cache_fua() };
        let cp = (ctx as *const Ctx).cast_mut().cast::<c_void>();
        let mut err: c_int = 0;
        // SAFETY: `tags.set` is an allocated tag set (its invariant), `ql` and `err` are valid
        // for the call; `cp` outlives the disk (`Disk` invariant).
        let disk = unsafe { brmr_alloc_disk(tags.set.get(), &mut ql, cp, &mut err) }.cast::<bindings::gendisk>();
        if disk.is_null() {
            return Err(Error::from_errno(if err < 0 { err } else { ENOMEM.to_errno() }));
        }
        // SAFETY: `disk` is a freshly allocated gendisk we own; its name buffer is 32 bytes.
        unsafe {
            (*disk).private_data = cp;
            let mut name = [0u8; 32];
            let mut w = crate::sysfs::PageWriter::new(&mut name[..31]);
            let _ = core::fmt::Write::write_fmt(&mut w, format_args!("brmr{}", index));
            for (d, s) in (*disk).disk_name.iter_mut().zip(name.iter()) {
                *d = *s as c_char;
            }
            bindings::set_capacity(disk, capacity);
            let r = bindings::device_add_disk(core::ptr::null_mut(), disk, core::ptr::null_mut());
            if r != 0 {
                bindings::put_disk(disk);
                return Err(Error::from_errno(r));
            }
        }
        // INVARIANT: allocated on `tags` and added above.
        Ok(GenDisk { disk })
    }
}

impl Drop for GenDisk {
    fn drop(&mut self) {
        // SAFETY: added by `GenDisk::new` (type invariant). `del_gendisk` waits for in-flight
        // requests (each completes through `done`), then the last reference is put.
        unsafe {
            bindings::del_gendisk(self.disk);
            bindings::put_disk(self.disk);
        }
    }
}

/// The block device `brmrN` over an rmr client pool: its gendisk, its tag set and the context
/// their callbacks reach, which holds the pool.
///
/// # Invariants
/// `ctx` is boxed at the address the tag set (`driver_data`) and the gendisk (`queuedata`,
/// `private_data`) point to, and stays there while they exist. The fields go in their order:
/// the gendisk is deleted (draining every request and rmr IO), then the tag set is freed, then
/// the context and its pool; [`Disk::into_pool`] keeps that order.
pub(crate) struct Disk {
    disk: GenDisk,
    tags: TagSet,
    ctx: KBox<Ctx>,
}

impl Disk {
    /// Creates and adds `brmr<index>` of `capacity` sectors with `lim` over `pool`; `shared` is
    /// the client's data its callbacks get. On failure the pool comes back (nothing was added).
    pub(crate) fn new(
        pool: Pool,
        shared: Shared,
        lim: &Limits,
        index: u32,
        capacity: u64,
    ) -> Result<Disk, (Pool, Error)> {
        let ctx = match KBox::<Ctx>::new_uninit(GFP_KERNEL) {
            Ok(b) => b.write(Ctx { pool, max_segments: lim.max_segments, shared }),
            Err(_) => return Err((pool, ENOMEM)),
        };
        let tags = match TagSet::new(lim, &ctx) {
            Ok(t) => t,
            Err(e) => return Err((KBox::into_inner(ctx).pool, e)),
        };
        let disk = match GenDisk::new(&tags, &ctx, lim, index, capacity) {
            Ok(d) => d,
            Err(e) => {
                drop(tags);
                return Err((KBox::into_inner(ctx).pool, e));
            }
        };
        // INVARIANT: `tags` and `disk` point to `ctx`, whose box moves into `Disk` unchanged.
        Ok(Disk { disk, tags, ctx })
    }

    /// The client's data of the device.
    pub(crate) fn shared(&self) -> &Shared {
        &self.ctx.shared
    }

    /// The rmr client pool.
    pub(crate) fn pool(&self) -> &Pool {
        &self.ctx.pool
    }

    /// Deletes the gendisk (draining its IO) and frees the tag set; returns the pool.
    pub(crate) fn into_pool(self) -> Pool {
        let Disk { disk, tags, ctx } = self;
        drop(disk);
        drop(tags);
        KBox::into_inner(ctx).pool
    }

    /// Creates the `block` symlink in `dir` to this disk's device.
    pub(crate) fn link(&self, dir: &KDir) -> Result {
        // SAFETY: `dir`'s kobject is live while `dir` is, and `self.disk` is added (ours).
        to_result(unsafe { brmr_link_disk(dir.kobj(), self.disk.disk.cast::<c_void>()) })
    }
}

/// Removes the `block` symlink of `dir` (no-op if absent).
pub(crate) fn unlink(dir: &KDir) {
    // SAFETY: `dir`'s kobject is live while `dir` is.
    unsafe { brmr_unlink_disk(dir.kobj()) }
}
