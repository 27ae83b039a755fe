// SPDX-License-Identifier: GPL-2.0-or-later
//! The store's side of rmr's server pool: the `RmrSrvStoreOps` rmr calls (SPEC §3.3, §4.4,
//! §9.1) and the bio data path behind `submit` (brmr_bio.c holds the static inlines).
//!
//! # Locking and lifetime
//!
//! rmr calls the ops while holding its own locks, and brmr calls rmr (`rmr_srv_register`,
//! `rmr_srv_unregister`) while holding brmr's global state lock. The ops therefore never take
//! the global lock: they work only through the [`Shared`] registered as `priv`, whose fields
//! are immutable, atomic, or behind [`Shared::md`], a per-store mutex that serialises
//! superblock updates. Lock order: brmr state → rmr → store `md`; nothing is taken while
//! `md` is held, and rmr is never called under it.
//!
//! A `Shared` (and with it the backing device and bio set) lives until after
//! `rmr_srv_unregister` returned for its pool. We rely on rmr's guarantee that once
//! `rmr_srv_unregister` returns, no op of the store is running or will start, and every IO
//! handed to `submit` has been completed through `rmr_srv_io_done`. As a second line, the
//! store counts its bios in flight and [`Shared`]'s drop waits for them (bios complete in
//! `brmr_srv_bio_done` before rmr learns of it), so the device and bio set are never freed
//! under a bio.

use crate::abi::{self, RmrPoolMd, RmrSrvIo, RmrSrvStoreOps};
use super::bdev::{Bdev, File};
use crate::rmr_core::{
    errno::Errno,
    ondisk::{self, DataArea, IoOp, Layout, Superblock},
    params::Name,
    wire::USER_MAX,
};
use super::store::{from_abi, write_sb};
use crate::sysfs::ename;
use core::ffi::{c_int, c_void};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use kernel::prelude::*;
use kernel::sync::Mutex;

/// Store flag `BRMR_SRV_STORE_OPEN`.
pub(crate) const OPEN: u32 = 1;
/// Store flag `BRMR_SRV_STORE_MAPPED`.
pub(crate) const MAPPED: u32 = 2;

#[repr(C)]
struct BioSetRaw {
    _opaque: [u8; 0],
}

extern "C" {
    fn brmr_bioset_create() -> *mut BioSetRaw;
    fn brmr_bioset_destroy(bs: *mut BioSetRaw);
    #[allow(clippy::too_many_arguments)]
    fn brmr_bio_submit(
        f: *mut File,
        bs: *mut BioSetRaw,
        op: u32,
        preflush: bool,
        fua: bool,
        sector: u64,
        data: *mut u8,
        len: u32,
        owner: *mut c_void,
        io: *mut c_void,
    ) -> c_int;
    fn brmr_srv_ratelimit() -> bool;
    fn brmr_zeroout(f: *mut File, sector: u64, nr_sects: u64) -> c_int;
    fn brmr_bdev_flush(f: *mut File) -> c_int;
    fn brmr_msleep(ms: u32);
    fn rmr_srv_io_done(io: *mut RmrSrvIo, err: c_int);
}

// Must match the enum in brmr_bio.c.
const BIO_READ: u32 = 0;
const BIO_WRITE: u32 = 1;
const BIO_FLUSH: u32 = 2;

/// True if an error line may be printed now (one rate limit for the IO and command paths).
fn ratelimit() -> bool {
    // SAFETY: no arguments; the C side only touches its static ratelimit state.
    unsafe { brmr_srv_ratelimit() }
}

/// A `struct bio_set` with room for brmr's per-bio context.
///
/// # Invariants
/// `bs` came from `brmr_bioset_create` and is destroyed only by `drop`.
pub(crate) struct BioSet {
    bs: NonNull<BioSetRaw>,
}

// SAFETY: a bio_set is used from any context (its mempools lock internally) and may be
// destroyed from any thread once no bio of it is alive.
unsafe impl Send for BioSet {}
// SAFETY: as above; allocation from it is thread-safe.
unsafe impl Sync for BioSet {}

impl BioSet {
    /// Allocates and initialises a bio set (may sleep).
    pub(crate) fn new() -> Result<BioSet> {
        // SAFETY: no arguments; returns null on failure.
        let bs = unsafe { brmr_bioset_create() };
        NonNull::new(bs).map(|bs| BioSet { bs }).ok_or(ENOMEM)
    }
}

impl Drop for BioSet {
    fn drop(&mut self) {
        // SAFETY: `bs` is live (type invariant) and its owner waited for every bio.
        unsafe { brmr_bioset_destroy(self.bs.as_ptr()) }
    }
}

/// The superblock state behind the per-store lock.
pub(crate) struct MdState {
    /// The superblock as last persisted.
    pub(crate) sb: Superblock,
    /// rmr reported a pool_md through `md_update` since registration (so the one registration
    /// returned is not newer and must not overwrite it).
    pub(crate) md_reported: bool,
}

/// The part of a store rmr reaches through the ops, without brmr's global lock.
#[pin_data(PinnedDrop)]
pub(crate) struct Shared {
    /// Pool name, for log lines.
    pub(crate) pool: Name,
    /// `OPEN` / `MAPPED` bits (`io_allowed`, `stores/<p>/state`).
    pub(crate) flags: AtomicU32,
    /// Bios started and not yet completed.
    inflight: AtomicUsize,
    /// A data bio failed since the device last proved to work (see [`Shared::io_allowed`]).
    failed: AtomicBool,
    /// When the last probe of a failed device ran (ms), and whether one runs.
    last_probe: AtomicU64,
    probing: AtomicBool,
    /// Where exported IO goes (immutable).
    pub(crate) area: DataArea,
    /// Where the metadata area's regions are (immutable).
    layout: Layout,
    /// Bio set of this store's data path; freed before the device.
    bioset: BioSet,
    /// The backing device: data bios and metadata IO.
    pub(crate) bdev: Bdev,
    /// Superblock, serialising every metadata update of the store.
    #[pin]
    pub(crate) md: Mutex<MdState>,
}

impl Shared {
    /// The initialiser of a store's shared part; `flags` are the store's starting flags.
    pub(crate) fn new(
        pool: Name,
        flags: u32,
        bdev: Bdev,
        bioset: BioSet,
        sb: Superblock,
    ) -> impl PinInit<Shared> {
        let area = sb.data_area(bdev.logical_block_size());
        let layout = sb.layout;
        pin_init!(Shared {
            pool,
            flags: AtomicU32::new(flags),
            inflight: AtomicUsize::new(0),
            failed: AtomicBool::new(false),
            last_probe: AtomicU64::new(0),
            probing: AtomicBool::new(false),
            area,
            layout,
            bioset,
            bdev,
            md <- kernel::new_mutex!(MdState { sb, md_reported: false }, "brmr_store_md"),
        })
    }

    /// Sets or clears `MAPPED` to follow a persisted superblock.
    fn follow(&self, sb: &Superblock) {
        if sb.mapped() {
            self.flags.fetch_or(MAPPED, Ordering::AcqRel);
        } else {
            self.flags.fetch_and(!MAPPED, Ordering::AcqRel);
        }
    }
}

#[pinned_drop]
impl PinnedDrop for Shared {
    fn drop(self: Pin<&mut Self>) {
        // rmr_srv_unregister returned before any store is dropped, so rmr completed every IO;
        // bios are done before rmr hears of them. This only waits if that contract breaks:
        // freeing the device or bio set under a live bio would corrupt memory, so wait.
        let mut waited = 0u32;
        while self.inflight.load(Ordering::Acquire) != 0 {
            if waited == 0 {
                pr_warn!(
                    "store {}: waiting for {} backend IOs before closing the device\n",
                    self.pool.as_str(),
                    self.inflight.load(Ordering::Acquire)
                );
            }
            // SAFETY: plain sleep in process context (store removal runs from sysfs/rmmod).
            unsafe { brmr_msleep(10) };
            // One line every 10 s.
            waited = if waited == 999 { 0 } else { waited + 1 };
        }
    }
}

/// Borrows the `Shared` rmr passes back.
///
/// # Safety
/// `priv_` must be the pointer registered with [`OPS`]: a pinned `Shared` that stays alive
/// until after `rmr_srv_unregister` returned (see the module comment).
unsafe fn shared<'a>(priv_: *mut c_void) -> &'a Shared {
    // SAFETY: guaranteed by the caller.
    unsafe { &*(priv_ as *const Shared) }
}

/// Milliseconds between two probes of a device whose IO failed.
const PROBE_INTERVAL_MS: u64 = 1000;

impl Shared {
    /// OPEN and MAPPED, and the device works: after a data bio failed, IO is allowed again
    /// only once a probe (the superblock rewritten and flushed) succeeded. Without that, rmr's
    /// store check revived a leg whose disk still failed, and the leg flapped with every
    /// write. A probe runs at most every [`PROBE_INTERVAL_MS`], by one caller; the others see
    /// `false` meanwhile. Sleeps (process context: rmr's command and IO work).
    fn io_allowed(&self) -> bool {
        if self.flags.load(Ordering::Acquire) != OPEN | MAPPED {
            return false;
        }
        if !self.failed.load(Ordering::Acquire) {
            return true;
        }
        let now = u64::try_from(kernel::time::Ktime::ktime_get().to_ms()).unwrap_or(0);
        if now.saturating_sub(self.last_probe.load(Ordering::Acquire)) < PROBE_INTERVAL_MS
            || self.probing.swap(true, Ordering::AcqRel)
        {
            return false;
        }
        self.last_probe.store(now, Ordering::Release);
        let ok = {
            let md = self.md.lock();
            write_sb(&self.bdev, &md.sb).is_ok()
        };
        if ok {
            self.failed.store(false, Ordering::Release);
            pr_info!("store {}: the device works again (probe write succeeded)\n", self.pool.as_str());
        }
        self.probing.store(false, Ordering::Release);
        ok
    }
}

/// `io_allowed` op: OPEN and MAPPED, and no data bio failed since the device last proved to
/// work ([`Shared::io_allowed`]).
///
/// # Safety
/// See [`shared`].
unsafe extern "C" fn op_io_allowed(priv_: *mut c_void) -> bool {
    // SAFETY: rmr passes back the registered `Shared`, alive until unregister returns.
    let s = unsafe { shared(priv_) };
    s.io_allowed()
}

/// `submit` op: starts one bio for `io`; 0 = `rmr_srv_io_done(io, ..)` follows.
///
/// # Safety
/// See [`shared`]; `io` is valid until it is completed, `io.data` is physically contiguous
/// kernel memory of `io.len` bytes. Process context.
unsafe extern "C" fn op_submit(priv_: *mut c_void, io: *mut RmrSrvIo) -> c_int {
    // SAFETY: rmr passes back the registered `Shared`, alive until unregister returns.
    let s = unsafe { shared(priv_) };
    if io.is_null() {
        return Errno::EINVAL.to_kernel();
    }
    // SAFETY: rmr owns `io` and keeps it valid until `rmr_srv_io_done`; nothing else writes it
    // while the store has it.
    let (flags, len, offset, data) = unsafe { ((*io).flags, (*io).len, (*io).offset, (*io).data) };
    let plan = match s.area.plan(flags, offset, len) {
        Ok(p) => p,
        Err(e) => {
            if ratelimit() {
                pr_err!(
                    "store {}: refusing IO flags {:#x} offset {} len {} (mapped_size {} sectors, lbs {}) ({})\n",
                    s.pool.as_str(),
                    flags,
                    offset,
                    len,
                    s.area.mapped_size,
                    s.area.lbs,
                    e.name()
                );
            }
            return e.to_kernel();
        }
    };
    let op = match plan.op {
        IoOp::Read => BIO_READ,
        IoOp::Write => BIO_WRITE,
        IoOp::Flush => BIO_FLUSH,
        IoOp::Zero => {
            // Zeroed here, synchronously (process context): the device's write-zeroes (it may
            // unmap), or zero pages written where it has none. A preflush flushes the device
            // first; FUA flushes it after, so the zeroes are durable when this completes.
            s.inflight.fetch_add(1, Ordering::AcqRel);
            let file = s.bdev.file();
            let mut r = 0;
            if plan.preflush {
                // SAFETY: the device file is live while `s` is.
                r = unsafe { brmr_bdev_flush(file) };
            }
            if r == 0 {
                // SAFETY: as above; the range lies in the exported space (planned above).
                r = unsafe { brmr_zeroout(file, plan.sector, u64::from(len) / 512) };
            }
            if r == 0 && plan.fua {
                // SAFETY: as above.
                r = unsafe { brmr_bdev_flush(file) };
            }
            // SAFETY: `priv_` is the `Shared` and `io` rmr's IO of this call; it completes
            // exactly once, here (submit returns 0 below).
            unsafe { brmr_srv_bio_done(priv_, io.cast(), r) };
            return 0;
        }
    };
    s.inflight.fetch_add(1, Ordering::AcqRel);
    // SAFETY: the device file and bio set are live while `s` is; `data` covers `len` bytes
    // until completion (rmr's contract, checked for vmalloc/invalid addresses in C); `priv_`
    // (the `Shared`) and `io` stay valid until `brmr_srv_bio_done` ran.
    let r = unsafe {
        brmr_bio_submit(
            s.bdev.file(),
            s.bioset.bs.as_ptr(),
            op,
            plan.preflush,
            plan.fua,
            plan.sector,
            data,
            len,
            priv_,
            io.cast(),
        )
    };
    if r < 0 {
        s.inflight.fetch_sub(1, Ordering::AcqRel);
        if ratelimit() {
            pr_err!(
                "store {}: cannot start backend IO (offset {} len {}) ({})\n",
                s.pool.as_str(),
                offset,
                len,
                r
            );
        }
    }
    r
}

/// Completion of a store bio (brmr_bio.c's end_io, any context, IRQ included), after the
/// bio was freed: hands the result to rmr.
///
/// # Safety
/// `owner` is the `Shared` and `io` the `RmrSrvIo` given to `brmr_bio_submit`, called once.
#[no_mangle]
pub(crate) unsafe extern "C" fn brmr_srv_bio_done(owner: *mut c_void, io: *mut c_void, err: c_int) {
    let io = io.cast::<RmrSrvIo>();
    {
        // SAFETY: the `Shared` outlives its bios (drop waits for `inflight`).
        let s = unsafe { shared(owner) };
        if err != 0 {
            s.failed.store(true, Ordering::Release);
        }
        if err != 0 && ratelimit() {
            // SAFETY: `io` stays valid until `rmr_srv_io_done` below.
            let (flags, offset, len) = unsafe { ((*io).flags, (*io).offset, (*io).len) };
            pr_err!(
                "store {}: backend IO failed: flags {:#x} offset {} len {} ({})\n",
                s.pool.as_str(),
                flags,
                offset,
                len,
                err
            );
        }
        // From here on the `Shared` may be freed: do not touch it again.
        s.inflight.fetch_sub(1, Ordering::AcqRel);
    }
    // SAFETY: `io` came from `submit` and is completed exactly once, here.
    unsafe { rmr_srv_io_done(io, err) };
}

/// `cmd` op: one BRMR command (bytes from the network) → its response slice.
///
/// # Safety
/// See [`shared`]; `req` readable for `req_len` bytes, `rsp` writable for `rsp_len` bytes.
unsafe extern "C" fn op_cmd(
    priv_: *mut c_void,
    req: *const u8,
    req_len: usize,
    rsp: *mut u8,
    rsp_len: usize,
) -> c_int {
    // SAFETY: rmr passes back the registered `Shared`, alive until unregister returns.
    let s = unsafe { shared(priv_) };
    if req.is_null() || rsp.is_null() || req_len > USER_MAX {
        if ratelimit() {
            pr_err!("store {}: BRMR command of {} bytes refused (EPROTO)\n", s.pool.as_str(), req_len);
        }
        return Errno::EPROTO.to_kernel();
    }
    // SAFETY: rmr's contract: `req` readable for `req_len` bytes during the call.
    let req = unsafe { core::slice::from_raw_parts(req, req_len) };
    // SAFETY: rmr's contract: `rsp` writable for `rsp_len` bytes, not aliased during the call.
    let out = unsafe { core::slice::from_raw_parts_mut(rsp, rsp_len) };
    let mut md = s.md.lock();
    let c = match ondisk::store_cmd(&md.sb, s.area.lbs, req) {
        Ok(c) => c,
        Err(e) => {
            drop(md);
            if ratelimit() {
                pr_err!("store {}: malformed BRMR command ({} bytes) ({})\n", s.pool.as_str(), req_len, e.name());
            }
            return e.to_kernel();
        }
    };
    let answer = match c.persist {
        None => Ok(c.rsp),
        Some(next) => match write_sb(&s.bdev, &next) {
            Ok(()) => {
                md.sb = next;
                s.follow(&next);
                pr_info!("store {}: mapped (persisted)\n", s.pool.as_str());
                Ok(c.rsp)
            }
            Err(e) => {
                pr_err!("store {}: persisting MAPPED failed ({})\n", s.pool.as_str(), ename(e));
                ondisk::store_rsp(&md.sb, s.area.lbs, e.to_errno())
            }
        },
    };
    drop(md);
    let r = answer.and_then(|m| m.encode(out).map_err(|e| e.to_errno()));
    match r {
        Ok(n) => c_int::try_from(n).unwrap_or(Errno::EMSGSIZE.to_kernel()),
        Err(e) => {
            if ratelimit() {
                pr_err!("store {}: cannot answer a BRMR command ({})\n", s.pool.as_str(), e.name());
            }
            e.to_kernel()
        }
    }
}

/// `md_update` op: persists rmr's pool_md if it changed.
///
/// # Safety
/// See [`shared`]; `md` readable during the call.
unsafe extern "C" fn op_md_update(priv_: *mut c_void, md: *const RmrPoolMd) -> c_int {
    // SAFETY: rmr passes back the registered `Shared`, alive until unregister returns.
    let s = unsafe { shared(priv_) };
    if md.is_null() {
        return Errno::EINVAL.to_kernel();
    }
    // SAFETY: rmr's contract: `md` points to a pool_md valid during the call.
    let new = from_abi(unsafe { &*md });
    let mut g = s.md.lock();
    g.md_reported = true;
    match g.sb.with_pool_md(&new) {
        Ok(None) => 0,
        Ok(Some(next)) => match write_sb(&s.bdev, &next) {
            Ok(()) => {
                g.sb = next;
                0
            }
            Err(e) => {
                drop(g);
                if ratelimit() {
                    pr_err!("store {}: persisting pool metadata failed ({})\n", s.pool.as_str(), ename(e));
                }
                e.to_errno()
            }
        },
        Err(e) => {
            drop(g);
            if ratelimit() {
                pr_err!(
                    "store {}: refusing pool metadata (group_id {:#x} chunk_size {} queue_depth {}) ({})\n",
                    s.pool.as_str(),
                    new.group_id,
                    new.chunk_size,
                    new.queue_depth,
                    e.name()
                );
            }
            e.to_kernel()
        }
    }
}

// rmr's metadata regions and page size are the format's.
const _: () = assert!(
    abi::RMR_MD_MAP == ondisk::REGION_MAP
        && abi::RMR_MD_LAST_IO == ondisk::REGION_LAST_IO
        && abi::RMR_MD_WITNESS == ondisk::REGION_WITNESS
        && abi::RMR_MD_LOST == ondisk::REGION_LOST
        && abi::RMR_MD_INTENT == ondisk::REGION_INTENT
        && abi::RMR_MD_PAGE as u64 == ondisk::MD_PAGE
);

/// Where `md_write`/`md_read` page (`region`, `index`, `page`) lives, or -EINVAL (logged).
fn md_pos(s: &Shared, what: &str, region: u32, index: u32, page: u32) -> Result<u64, Errno> {
    s.layout.md_page_offset(region, index, page).inspect_err(|_| {
        if ratelimit() {
            pr_err!(
                "store {}: metadata {} of region {} index {} page {} outside the area (EINVAL)\n",
                s.pool.as_str(), what, region, index, page
            );
        }
    })
}

/// `md_write` op: one metadata page into the page cache (durable after `md_sync`).
///
/// # Safety
/// See [`shared`]; `data` readable for `RMR_MD_PAGE` bytes during the call.
unsafe extern "C" fn op_md_write(priv_: *mut c_void, region: u32, index: u32, page: u32, data: *const u8) -> c_int {
    // SAFETY: rmr passes back the registered `Shared`, alive until unregister returns.
    let s = unsafe { shared(priv_) };
    if data.is_null() {
        return Errno::EINVAL.to_kernel();
    }
    let pos = match md_pos(s, "write", region, index, page) {
        Ok(p) => p,
        Err(e) => return e.to_kernel(),
    };
    // SAFETY: rmr's contract: `data` readable for a page during the call.
    let buf = unsafe { core::slice::from_raw_parts(data, abi::RMR_MD_PAGE) };
    match s.bdev.write_at(buf, pos) {
        Ok(()) => 0,
        Err(e) => {
            s.failed.store(true, Ordering::Release);
            if ratelimit() {
                pr_err!("store {}: metadata write at byte {} failed ({})\n", s.pool.as_str(), pos, ename(e));
            }
            e.to_errno()
        }
    }
}

/// `md_read` op: one metadata page.
///
/// # Safety
/// See [`shared`]; `data` writable for `RMR_MD_PAGE` bytes during the call.
unsafe extern "C" fn op_md_read(priv_: *mut c_void, region: u32, index: u32, page: u32, data: *mut u8) -> c_int {
    // SAFETY: rmr passes back the registered `Shared`, alive until unregister returns.
    let s = unsafe { shared(priv_) };
    if data.is_null() {
        return Errno::EINVAL.to_kernel();
    }
    let pos = match md_pos(s, "read", region, index, page) {
        Ok(p) => p,
        Err(e) => return e.to_kernel(),
    };
    // SAFETY: rmr's contract: `data` writable for a page, not aliased during the call.
    let buf = unsafe { core::slice::from_raw_parts_mut(data, abi::RMR_MD_PAGE) };
    match s.bdev.read_at(buf, pos) {
        Ok(()) => 0,
        Err(e) => {
            if ratelimit() {
                pr_err!("store {}: metadata read at byte {} failed ({})\n", s.pool.as_str(), pos, ename(e));
            }
            e.to_errno()
        }
    }
}

/// `md_sync` op: the pages written reach the device (`flush`: its cache too).
///
/// # Safety
/// See [`shared`].
unsafe extern "C" fn op_md_sync(priv_: *mut c_void, flush: bool) -> c_int {
    // SAFETY: rmr passes back the registered `Shared`, alive until unregister returns.
    let s = unsafe { shared(priv_) };
    let r = if flush { s.bdev.sync() } else { s.bdev.writeback() };
    match r {
        Ok(()) => 0,
        Err(e) => {
            s.failed.store(true, Ordering::Release);
            if ratelimit() {
                pr_err!("store {}: metadata {} failed ({})\n", s.pool.as_str(), if flush { "flush" } else { "writeback" }, ename(e));
            }
            e.to_errno()
        }
    }
}

/// `caps` op: a volatile write cache on the backing device (its queue's `write_cache` is
/// "write back"), and the write-intent regions (format version 3).
///
/// # Safety
/// See [`shared`].
unsafe extern "C" fn op_caps(priv_: *mut c_void) -> u32 {
    // SAFETY: rmr passes back the registered `Shared`, alive until unregister returns.
    let s = unsafe { shared(priv_) };
    let mut caps = 0;
    if s.bdev.write_cache() {
        caps |= abi::RMR_STORE_VOLATILE_CACHE;
    }
    if s.layout.intent {
        caps |= abi::RMR_STORE_INTENT;
    }
    caps
}

/// The ops every store registers; `priv` is its pinned [`Shared`].
pub(crate) static OPS: RmrSrvStoreOps = RmrSrvStoreOps {
    abi_version: abi::RMR_ABI_VERSION,
    io_allowed: Some(op_io_allowed),
    md_update: Some(op_md_update),
    submit: Some(op_submit),
    cmd: Some(op_cmd),
    md_write: Some(op_md_write),
    md_read: Some(op_md_read),
    md_sync: Some(op_md_sync),
    caps: Some(op_caps),
};
