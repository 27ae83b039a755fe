// SPDX-License-Identifier: GPL-2.0-or-later
//! Unsafe FFI wrappers of brmr's block client: blk-mq tag set, gendisk, request to
//! scatterlist to [`RmrCltIo`], completion, and the sysfs directories whose kobject the
//! `block` symlink needs. The 6.12 `kernel::block::mq` abstraction has no error completion
//! and no scatterlists, so this uses `kernel::bindings` and a few helpers in brmr_blk.c.
//!
//! Decisions (limits, what to map) are taken in `rmr_core::brmr_map`; this file only executes.

use crate::abi::{RmrCltIo, RMR_IO_DISCARD, RMR_IO_FLUSH, RMR_IO_FUA, RMR_IO_WRITE};
use crate::rmr_core::brmr_map::{self, Limits};
use crate::sysfs::{BStrDisplay, GlueKobj};
use core::ffi::{c_int, c_void};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use kernel::bindings;
use kernel::error::{from_err_ptr, to_result};
use kernel::ffi::c_char;
use kernel::fmt;
use kernel::prelude::*;
use kernel::str::CString;
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
    fn brmr_sts_resource() -> bindings::blk_status_t;
    fn brmr_sts_ioerr() -> bindings::blk_status_t;
    fn brmr_sts_notsupp() -> bindings::blk_status_t;
    fn brmr_feat_cache_fua() -> bindings::blk_features_t;
    fn brmr_link_disk(dir: *mut bindings::kobject, disk: *mut c_void) -> c_int;
    fn brmr_unlink_disk(dir: *mut bindings::kobject);
    // Same declarations as in rmr/sysfs.rs (sysfs_glue.h).
    fn glue_dir(which: u32) -> *mut bindings::kobject;
    fn glue_kobj_add(parent: *mut bindings::kobject, name: *const c_char, kind: u32, id: u64) -> *mut GlueKobj;
    fn glue_kobj_of(o: *mut GlueKobj) -> *mut bindings::kobject;
    fn glue_kobj_del(o: *mut GlueKobj);
}

// ---------------------------------------------------------------------------------------
// sysfs directories with a reachable kobject

/// A sysfs directory (`struct glue_kobj`) whose kobject can be the source of a symlink.
///
/// # Invariants
/// `ptr` is a live `struct glue_kobj` created by `glue_kobj_add` and not yet deleted; `KDir`
/// is its only owner.
pub(crate) struct KDir {
    ptr: NonNull<GlueKobj>,
}

// SAFETY: the kobject is reference counted by the kernel and may be used and dropped from any
// thread; `KDir` holds no thread-bound state.
unsafe impl Send for KDir {}

impl KDir {
    /// Creates `name` below the module's fixed directory `which` (`glue_dir()`), or below
    /// `parent` if given, with the attribute files of `kind`; `id` comes back in callbacks.
    pub(crate) fn new(top: u32, parent: Option<&KDir>, name: &[u8], kind: u32, id: u64) -> Result<KDir> {
        let cname = CString::try_from_fmt(fmt!("{}", BStrDisplay(name)))?;
        let parent_ptr = match parent {
            // SAFETY: `p.ptr` is live by the type invariant.
            Some(p) => unsafe { glue_kobj_of(p.ptr.as_ptr()) },
            // SAFETY: the class devices live from module init to exit, which bracket all callers.
            None => unsafe { glue_dir(top) },
        };
        // SAFETY: `parent_ptr` is a live kobject, `cname` a NUL-terminated string.
        let p = unsafe { glue_kobj_add(parent_ptr, cname.as_char_ptr(), kind, id) };
        let p = from_err_ptr(p)?;
        NonNull::new(p).map(|ptr| KDir { ptr }).ok_or(ENOMEM)
    }

    fn kobj(&self) -> *mut bindings::kobject {
        // SAFETY: `ptr` is live by the type invariant.
        unsafe { glue_kobj_of(self.ptr.as_ptr()) }
    }
}

impl Drop for KDir {
    fn drop(&mut self) {
        // SAFETY: `ptr` is live and owned by us (type invariant); it is not used afterwards.
        unsafe { glue_kobj_del(self.ptr.as_ptr()) }
    }
}

// ---------------------------------------------------------------------------------------
// Per-device data shared with blk-mq and the block device callbacks

/// `openers` value once the device is being removed: no new opener gets in.
const DYING: i32 = -1;

/// What the blk-mq and open/release callbacks of one device use, without brmr's lock.
///
/// # Invariants
/// Lives at a fixed heap address (in a `KBox`) from before its tag set is allocated until
/// after the tag set is freed and the gendisk is put; `handle` is an open rmr client handle
/// for that whole time.
pub(crate) struct Shared {
    /// rmr client handle.
    pub(crate) handle: *mut c_void,
    /// Scatterlist entries per request.
    max_segments: u32,
    /// Chunk size in bytes (discard and write-zeroes go out one chunk piece at a time).
    chunk: u32,
    /// Block device openers, or [`DYING`].
    openers: AtomicI32,
    /// Reads completed successfully.
    pub(crate) reads: AtomicU64,
    /// Writes (and flushes) completed successfully.
    pub(crate) writes: AtomicU64,
    /// Requests completed with an error.
    pub(crate) errors: AtomicU64,
}

// SAFETY: `handle` is an opaque token rmr accepts from any context; everything else is atomic
// or immutable.
unsafe impl Send for Shared {}
// SAFETY: as above.
unsafe impl Sync for Shared {}

impl Shared {
    /// Data for a device over the open rmr handle `handle`.
    pub(crate) fn new(handle: *mut c_void, max_segments: u32, chunk: u32) -> Result<KBox<Shared>> {
        Ok(KBox::new(
            Shared {
                handle,
                max_segments,
                chunk,
                openers: AtomicI32::new(0),
                reads: AtomicU64::new(0),
                writes: AtomicU64::new(0),
                errors: AtomicU64::new(0),
            },
            GFP_KERNEL,
        )?)
    }

    /// Marks the device as going away unless the block device is open (-EBUSY then).
    pub(crate) fn start_removal(&self) -> Result {
        match self.openers.compare_exchange(0, DYING, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) | Err(DYING) => Ok(()),
            Err(_) => Err(EBUSY),
        }
    }

    /// Marks the device as going away even if open (module unload: nothing can hold it open
    /// then, the gendisk's fops pin the module).
    pub(crate) fn force_removal(&self) {
        self.openers.store(DYING, Ordering::Release);
    }

    /// Current openers (for logs).
    pub(crate) fn openers(&self) -> i32 {
        self.openers.load(Ordering::Acquire).max(0)
    }
}

/// gendisk `open`: counts openers; refuses once the device is being removed.
///
/// # Safety
/// Called by the block layer with a disk allocated by [`Disk::new`].
#[no_mangle]
pub(crate) unsafe extern "C" fn brmr_rs_open(disk: *mut bindings::gendisk, _mode: bindings::blk_mode_t) -> c_int {
    // SAFETY: `private_data` is the `Shared` of this disk (set in `Disk::new`), alive until
    // after the disk is put (type invariant of `Shared`).
    let s = unsafe { &*((*disk).private_data as *const Shared) };
    let mut cur = s.openers.load(Ordering::Acquire);
    loop {
        if cur < 0 {
            return ENXIO.to_errno();
        }
        match s.openers.compare_exchange(cur, cur + 1, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return 0,
            Err(v) => cur = v,
        }
    }
}

/// gendisk `release`.
///
/// # Safety
/// Called by the block layer after a successful [`brmr_rs_open`].
#[no_mangle]
pub(crate) unsafe extern "C" fn brmr_rs_release(disk: *mut bindings::gendisk) {
    // SAFETY: as in `brmr_rs_open`.
    let s = unsafe { &*((*disk).private_data as *const Shared) };
    // An opener of a dying device (module unload) may still release: never go below DYING.
    let _ = s
        .openers
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| (v > 0).then_some(v - 1));
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

extern "C" {
    fn rmr_clt_request(handle: *mut c_void, io: *mut RmrCltIo) -> c_int;
}

const REQ_OP_MASK: u32 = (1 << bindings::REQ_OP_BITS) - 1;
extern "C" {
    fn brmr_requeue(rq: *mut c_void);
}
const REQ_FUA: u32 = 1 << bindings::req_flag_bits___REQ_FUA;
const REQ_PREFLUSH: u32 = 1 << bindings::req_flag_bits___REQ_PREFLUSH;

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
    // SAFETY: `driver_data` is the device's `Shared`, alive while the tag set exists.
    let s = unsafe { &*((*set).driver_data as *const Shared) };
    // SAFETY: `rq` belongs to this tag set.
    let (_, sg) = unsafe { pdu_of(rq) };
    // SAFETY: the pdu holds `max_segments` scatterlist entries at `sg`.
    unsafe { bindings::sg_init_table(sg, s.max_segments) };
    0
}

/// `RmrCltIo::done`: may run in any context, possibly before `rmr_clt_request` returned.
///
/// # Safety
/// Called by rmr exactly once for an IO `queue_rq` started successfully.
unsafe extern "C" fn io_done(io: *mut RmrCltIo, err: c_int) {
    // SAFETY: `io` is the pdu's first field (`repr(C)`), `priv_` its request, handed to rmr
    // by `queue_rq` and not completed before this call; its queue's `queuedata` is the
    // device's `Shared`. rmr calls `done` without holding any of its locks, so the next piece
    // may be requested from here.
    unsafe {
        let rq = (*io).priv_.cast::<bindings::request>();
        let pdu = io.cast::<Pdu>();
        let mut err = err;
        if err == 0 && (*pdu).left > 0 {
            let s = &*((*(*rq).q).queuedata as *const Shared);
            (*io).offset += u64::from((*io).len);
            (*io).len = brmr_map::zero_piece((*io).offset, (*pdu).left, s.chunk);
            (*pdu).left -= u64::from((*io).len);
            match rmr_clt_request(s.handle, io) {
                0 => return,
                r if r == EAGAIN.to_errno() => {
                    // No IO unit now: the whole request runs again later (zeroing twice is
                    // harmless; nothing else writes the range before it completes).
                    brmr_requeue(rq.cast());
                    return;
                }
                r => err = r,
            }
        }
        (*pdu).err.store(err, Ordering::Release);
        bindings::blk_mq_complete_request(rq);
    }
}

/// blk-mq `complete`: ends the request with the status rmr reported.
///
/// # Safety
/// Called by blk-mq after [`io_done`] completed a request of one of our queues.
unsafe extern "C" fn complete(rq: *mut bindings::request) {
    // SAFETY: `rq` belongs to a tag set made by `TagSet::new`; its queue's `queuedata` is the
    // device's `Shared`.
    unsafe {
        let (pdu, _) = pdu_of(rq);
        let s = &*((*(*rq).q).queuedata as *const Shared);
        let err = (*pdu).err.load(Ordering::Acquire);
        let sts = if err == 0 {
            let c = if (*pdu).io.flags & (RMR_IO_WRITE | RMR_IO_FLUSH) != 0 { &s.writes } else { &s.reads };
            c.fetch_add(1, Ordering::Relaxed);
            bindings::BLK_STS_OK as bindings::blk_status_t
        } else {
            s.errors.fetch_add(1, Ordering::Relaxed);
            bindings::errno_to_blk_status(err)
        };
        bindings::blk_mq_end_request(rq, sts);
    }
}

/// blk-mq `queue_rq`: request → scatterlist → `rmr_clt_request`.
///
/// # Safety
/// Called by blk-mq with a hardware context and request of a queue made by [`Disk::new`].
unsafe extern "C" fn queue_rq(
    hctx: *mut bindings::blk_mq_hw_ctx,
    bd: *const bindings::blk_mq_queue_data,
) -> bindings::blk_status_t {
    // SAFETY: blk-mq passes a live hardware context and request of our queue; `queuedata` is
    // the device's `Shared` (see `Disk::new`).
    unsafe {
        let rq = (*bd).rq;
        let s = &*((*(*hctx).queue).queuedata as *const Shared);
        let cmd = (*rq).cmd_flags;
        let mut flags = match cmd & REQ_OP_MASK {
            bindings::req_op_REQ_OP_READ => 0,
            bindings::req_op_REQ_OP_WRITE => RMR_IO_WRITE,
            bindings::req_op_REQ_OP_FLUSH => RMR_IO_FLUSH,
            // Both zero the range on every store (so every leg reads the same afterwards).
            bindings::req_op_REQ_OP_DISCARD | bindings::req_op_REQ_OP_WRITE_ZEROES => RMR_IO_WRITE | RMR_IO_DISCARD,
            _ => return brmr_sts_notsupp(),
        };
        let zero = flags & RMR_IO_DISCARD != 0;
        if cmd & REQ_PREFLUSH != 0 {
            flags |= RMR_IO_FLUSH;
        }
        if cmd & REQ_FUA != 0 && flags & RMR_IO_WRITE != 0 && !zero {
            flags |= RMR_IO_FUA;
        }
        let (pdu, sg) = pdu_of(rq);
        bindings::blk_mq_start_request(rq);
        let mut len = (*rq).__data_len;
        (*pdu).left = 0;
        if zero {
            // One chunk piece at a time; `io_done` sends the rest.
            let total = u64::from(len);
            len = brmr_map::zero_piece((*rq).__sector << 9, total, s.chunk);
            (*pdu).left = total - u64::from(len);
        }
        let (sgp, nents) = if len == 0 || zero {
            (core::ptr::null_mut(), 0)
        } else {
            let n = brmr_rq_map_sg(rq.cast::<c_void>(), sg);
            if n <= 0 || n as u32 > s.max_segments {
                return brmr_sts_ioerr();
            }
            (sg.cast::<c_void>(), n as u32)
        };
        core::ptr::write(
            core::ptr::addr_of_mut!((*pdu).io),
            RmrCltIo {
                flags,
                len,
                // A pure flush has no position (`__sector` is -1): offset 0.
                offset: if len == 0 { 0 } else { (*rq).__sector << 9 },
                sg: sgp,
                sg_cnt: nents,
                served: 0,
                done: Some(io_done),
                priv_: rq.cast::<c_void>(),
            },
        );
        (*pdu).err.store(0, Ordering::Relaxed);
        // After a 0 return `done` owns the request (it may already have completed it).
        match rmr_clt_request(s.handle, core::ptr::addr_of_mut!((*pdu).io)) {
            0 => bindings::BLK_STS_OK as bindings::blk_status_t,
            r if r == EAGAIN.to_errno() => brmr_sts_resource(),
            _ => {
                s.errors.fetch_add(1, Ordering::Relaxed);
                brmr_sts_ioerr()
            }
        }
    }
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

/// A blk-mq tag set with one hardware queue.
///
/// # Invariants
/// `set` was initialised by a successful `blk_mq_alloc_tag_set` and is freed only in `drop`;
/// the box is never moved out of (the tag set holds a mutex and list heads), and
/// `driver_data` points to a `Shared` that outlives it.
pub(crate) struct TagSet {
    set: KBox<Opaque<bindings::blk_mq_tag_set>>,
}

// SAFETY: the tag set is used through blk-mq functions that do their own locking.
unsafe impl Send for TagSet {}

impl TagSet {
    /// Allocates the tag set of a device; `shared` must outlive it.
    pub(crate) fn new(lim: &Limits, shared: &Shared) -> Result<TagSet> {
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
        set.driver_data = (shared as *const Shared).cast_mut().cast::<c_void>();
        let set = KBox::new(Opaque::new(set), GFP_KERNEL)?;
        // SAFETY: `set` is a zeroed tag set with its parameters filled in, at its final address.
        to_result(unsafe { bindings::blk_mq_alloc_tag_set(set.get()) })?;
        Ok(TagSet { set })
    }
}

impl Drop for TagSet {
    fn drop(&mut self) {
        // SAFETY: allocated by `blk_mq_alloc_tag_set` (type invariant); no disk uses it any more
        // (`Disk` borrows nothing but is always dropped first by its owner).
        unsafe { bindings::blk_mq_free_tag_set(self.set.get()) };
    }
}

/// An added gendisk `brmrN`.
///
/// # Invariants
/// `disk` was allocated by `brmr_alloc_disk` on a live [`TagSet`] and added with
/// `device_add_disk`; it is deleted and put only in `drop`, which happens before the tag set
/// is freed and the `Shared` (its `private_data` and `queuedata`) is dropped.
pub(crate) struct Disk {
    disk: *mut bindings::gendisk,
}

// SAFETY: the gendisk is reference counted and its functions lock internally.
unsafe impl Send for Disk {}

impl Disk {
    /// Allocates and adds `brmr<index>` with `lim` and `capacity` sectors.
    pub(crate) fn new(tags: &TagSet, shared: &Shared, lim: &Limits, index: u32, capacity: u64) -> Result<Disk> {
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
        let sp = (shared as *const Shared).cast_mut().cast::<c_void>();
        let mut err: c_int = 0;
        // SAFETY: `tags.set` is an allocated tag set (its invariant), `ql` and `err` are valid
        // for the call; `sp` outlives the disk (`Shared` invariant).
        let disk = unsafe { brmr_alloc_disk(tags.set.get(), &mut ql, sp, &mut err) }.cast::<bindings::gendisk>();
        if disk.is_null() {
            return Err(Error::from_errno(if err < 0 { err } else { ENOMEM.to_errno() }));
        }
        // SAFETY: `disk` is a freshly allocated gendisk we own; its name buffer is 32 bytes.
        unsafe {
            (*disk).private_data = sp;
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
        Ok(Disk { disk })
    }

    /// Creates the `block` symlink in `dir` to this disk's device.
    pub(crate) fn link(&self, dir: &KDir) -> Result {
        // SAFETY: `dir` is live (its invariant) and `self.disk` is added (ours).
        to_result(unsafe { brmr_link_disk(dir.kobj(), self.disk.cast::<c_void>()) })
    }
}

/// Removes the `block` symlink of `dir` (no-op if absent).
pub(crate) fn unlink(dir: &KDir) {
    // SAFETY: `dir` is live (its invariant).
    unsafe { brmr_unlink_disk(dir.kobj()) }
}

impl Drop for Disk {
    fn drop(&mut self) {
        // SAFETY: added by `Disk::new` (type invariant). `del_gendisk` waits for in-flight
        // requests (each completes through `done`), then the last reference is put.
        unsafe {
            bindings::del_gendisk(self.disk);
            bindings::put_disk(self.disk);
        }
    }
}
