// SPDX-License-Identifier: GPL-2.0-or-later
//! The store's side of rmr's server pool: what the `RmrSrvStoreOps` rmr calls do (SPEC §3.3,
//! §4.4, §9.1) and the bio data path behind `submit`. The `extern "C"` trampolines that rmr
//! calls, and the registration, live in `wrap/rmr_srv.rs`; the bio set and the backing device
//! in `wrap/bioset.rs` and `wrap/bdev.rs` (brmr_bio.c holds the static inlines).
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
//! `rmr_srv_unregister` returned for its pool (`wrap::rmr_srv::Registration`). We rely on
//! rmr's guarantee that once `rmr_srv_unregister` returns, no op of the store is running or
//! will start, and every IO handed to `submit` has been completed through `rmr_srv_io_done`
//! (an owned [`SrvIo`] until then, completed exactly once). As a second line, the
//! store counts its bios in flight and [`Shared`]'s drop waits for them (bios complete in
//! `brmr_srv_bio_done` before rmr learns of it), so the device and bio set are never freed
//! under a bio.

#![deny(unsafe_code)]

use crate::abi::{self, RmrPoolMd};
use crate::rmr_core::{
    errno::Errno,
    ondisk::{self, DataArea, IoOp, Layout, Superblock},
    params::Name,
    wire::USER_MAX,
};
use super::store::{from_abi, write_sb};
use crate::sysfs::ename;
use crate::wrap::bdev::Bdev;
use crate::wrap::bioset::{BioOp, BioSet};
use crate::wrap::rmr_srv::SrvIo;
use crate::wrap::time::{ratelimit, sleep_ms};
use core::ffi::c_int;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use kernel::prelude::*;
use kernel::sync::Mutex;

/// Store flag `BRMR_SRV_STORE_OPEN`.
pub(crate) const OPEN: u32 = 1;
/// Store flag `BRMR_SRV_STORE_MAPPED`.
pub(crate) const MAPPED: u32 = 2;

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
    pub(crate) bioset: BioSet,
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
            // Process context: store removal runs from sysfs/rmmod.
            sleep_ms(10);
            // One line every 10 s.
            waited = if waited == 999 { 0 } else { waited + 1 };
        }
    }
}

/// Milliseconds between two probes of a device whose IO failed.
const PROBE_INTERVAL_MS: u64 = 1000;

impl Shared {
    /// OPEN and MAPPED, and the device works: after a data bio failed, IO is allowed again
    /// only once a probe (the superblock rewritten and flushed) succeeded. Without that, rmr's
    /// store check revived a leg whose disk still failed, and the leg flapped with every
    /// write. A probe runs at most every [`PROBE_INTERVAL_MS`], by one caller; the others see
    /// `false` meanwhile. Sleeps (process context: rmr's command and IO work). The
    /// `io_allowed` op.
    pub(crate) fn io_allowed(&self) -> bool {
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

/// `submit` op: starts one bio for `io`. `Ok`: `io` completes later (or has completed);
/// `Err`: refused with a negative errno, `io` goes back to rmr uncompleted. Process context.
pub(crate) fn submit(s: &Shared, io: SrvIo) -> Result<(), (SrvIo, c_int)> {
    let (flags, len, offset) = (io.flags(), io.len(), io.offset());
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
            return Err((io, e.to_kernel()));
        }
    };
    let op = match plan.op {
        IoOp::Read => BioOp::Read,
        IoOp::Write => BioOp::Write,
        IoOp::Flush => BioOp::Flush,
        IoOp::Zero => {
            // Zeroed here, synchronously (process context): the device's write-zeroes (it may
            // unmap), or zero pages written where it has none. A preflush flushes the device
            // first; FUA flushes it after, so the zeroes are durable when this completes.
            s.inflight.fetch_add(1, Ordering::AcqRel);
            let mut r = Ok(());
            if plan.preflush {
                r = s.bdev.flush();
            }
            if r.is_ok() {
                // The range lies in the exported space (planned above).
                r = s.bdev.zeroout(plan.sector, u64::from(len) / 512);
            }
            if r.is_ok() && plan.fua {
                r = s.bdev.flush();
            }
            let err = r.err().map_or(0, |e| e.to_errno());
            // Completes exactly once, here (submit succeeds below).
            bio_done(&io, err);
            io.complete(err);
            return Ok(());
        }
    };
    s.inflight.fetch_add(1, Ordering::AcqRel);
    io.submit_bio(op, plan.preflush, plan.fua, plan.sector).inspect_err(|(_, r)| {
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
    })
}

/// The end of a store bio (any context, IRQ included), after the bio was freed and before
/// its IO is completed to rmr (which the caller does next).
pub(crate) fn bio_done(io: &SrvIo, err: c_int) {
    let s = io.shared();
    if err != 0 {
        s.failed.store(true, Ordering::Release);
    }
    if err != 0 && ratelimit() {
        pr_err!(
            "store {}: backend IO failed: flags {:#x} offset {} len {} ({})\n",
            s.pool.as_str(),
            io.flags(),
            io.offset(),
            io.len(),
            err
        );
    }
    // From here on the `Shared` may be freed: do not touch it again.
    s.inflight.fetch_sub(1, Ordering::AcqRel);
}

/// A BRMR command rmr passed without its buffers, or longer than any: -EPROTO (logged).
pub(crate) fn cmd_refused(s: &Shared, req_len: usize) -> c_int {
    if ratelimit() {
        pr_err!("store {}: BRMR command of {} bytes refused (EPROTO)\n", s.pool.as_str(), req_len);
    }
    Errno::EPROTO.to_kernel()
}

/// `cmd` op: one BRMR command (bytes from the network) → its response slice in `out`; the
/// bytes written or a negative errno.
pub(crate) fn cmd(s: &Shared, req: &[u8], out: &mut [u8]) -> c_int {
    let req_len = req.len();
    if req_len > USER_MAX {
        return cmd_refused(s, req_len);
    }
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
pub(crate) fn md_update(s: &Shared, md: &RmrPoolMd) -> c_int {
    let new = from_abi(md);
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

/// `md_write` op: one metadata page (`buf`, `RMR_MD_PAGE` bytes) into the page cache
/// (durable after `md_sync`).
pub(crate) fn md_write(s: &Shared, region: u32, index: u32, page: u32, buf: &[u8]) -> c_int {
    let pos = match md_pos(s, "write", region, index, page) {
        Ok(p) => p,
        Err(e) => return e.to_kernel(),
    };
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

/// `md_read` op: one metadata page into `buf` (`RMR_MD_PAGE` bytes).
pub(crate) fn md_read(s: &Shared, region: u32, index: u32, page: u32, buf: &mut [u8]) -> c_int {
    let pos = match md_pos(s, "read", region, index, page) {
        Ok(p) => p,
        Err(e) => return e.to_kernel(),
    };
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
pub(crate) fn md_sync(s: &Shared, flush: bool) -> c_int {
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
pub(crate) fn caps(s: &Shared) -> u32 {
    let mut caps = 0;
    if s.bdev.write_cache() {
        caps |= abi::RMR_STORE_VOLATILE_CACHE;
    }
    if s.layout.intent {
        caps |= abi::RMR_STORE_INTENT;
    }
    caps
}
