// SPDX-License-Identifier: GPL-2.0-or-later
//! brmr-client: `/dev/brmrN` over an rmr client pool (SPEC §2.4, §9.2).
//!
//! `ctl/map_device` opens the pool through rmr's C ABI, reads every store's metadata, lets
//! `rmr_core::brmr_map` decide (first-time map, re-map or refusal), sends MAP_NEW/MAP_CHECK and
//! creates the gendisk (`blk`). `ctl/devices/brmrN/{state,unmap_device,stats,block}`.
//!
//! Locking: the devices sit behind their own mutex (`brmr_clt`), which may be held while
//! calling rmr (never the other way round). The blk-mq path takes no lock. A device's sysfs
//! directory is removed with the lock dropped (its readers take the lock); until then the
//! device stays listed as dying so its number and name are not reused.

use crate::abi::{self, RmrCltInfo, RmrLegStats, RMR_POOL_MAX_SESS};
pub(crate) mod blk;

use blk::{Disk, KDir, Shared, TagSet};
use crate::rmr_core::brmr_map::{self, Answer, MapKind, PoolInfo, Refusal};
use crate::rmr_core::params::{self, Name};
use crate::rmr_core::wire::BrmrMsg;
use crate::sysfs::{ename, BStrDisplay, PageWriter};
use crate::{err, kind};
use core::ffi::{c_int, c_void};
use core::fmt::Write;
use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::fmt;
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::lock::{mutex::MutexBackend, Guard};
use kernel::sync::Mutex;

extern "C" {
    fn rmr_clt_open(name: *const u8, len: usize, info: *mut RmrCltInfo, handle: *mut *mut c_void) -> c_int;
    fn rmr_clt_close(handle: *mut c_void);
    fn rmr_clt_cmd_with_rsp(
        handle: *mut c_void,
        msg: *const u8,
        msg_len: usize,
        buf: *mut u8,
        buf_len: usize,
        size: usize,
        conf: *mut c_int,
    ) -> c_int;
    fn rmr_clt_leg_stats(handle: *mut c_void, out: *mut RmrLegStats, n: u32) -> c_int;
}

// ---------------------------------------------------------------------------------------
// The rmr client pool handle

/// An rmr client pool opened for a block device (pool IN_USE).
///
/// # Invariants
/// `ptr` came from a successful `rmr_clt_open` and is closed exactly once, in `drop`.
struct Pool {
    ptr: *mut c_void,
}

// SAFETY: the handle is an opaque token rmr accepts from any thread.
unsafe impl Send for Pool {}

type Answers = [Option<Answer>; RMR_POOL_MAX_SESS];

fn zero_leg() -> RmrLegStats {
    RmrLegStats { slot: 0, member_id: 0, reads: 0, writes: 0, name: [0; 64], state: [0; 16] }
}

impl Pool {
    fn open(name: &Name) -> Result<(Pool, RmrCltInfo)> {
        let n = name.as_bytes();
        let mut info = RmrCltInfo { abi_version: abi::RMR_ABI_VERSION, ..Default::default() };
        let mut h: *mut c_void = core::ptr::null_mut();
        // SAFETY: `n` is valid for its length, `info` and `h` for writes, during the call.
        let r = unsafe { rmr_clt_open(n.as_ptr(), n.len(), &mut info, &mut h) };
        if r < 0 {
            return Err(Error::from_errno(r));
        }
        Ok((Pool { ptr: h }, info))
    }

    /// Sends a BRMR command to every leg; returns `conf` and the decoded response slices.
    fn cmd(&self, msg: BrmrMsg) -> Result<(i32, Answers)> {
        let mut m = KVec::from_elem(0u8, brmr_map::REQ_MAX, GFP_KERNEL)?;
        let n = msg.encode(&mut m).map_err(|_| EINVAL)?;
        // kmalloc'ed and zeroed: slices of legs that do not answer stay zero.
        let mut buf = KVec::from_elem(0u8, brmr_map::RSP_BUF, GFP_KERNEL)?;
        let mut conf: c_int = 0;
        // SAFETY: `self.ptr` is open (type invariant); `m` holds `n` bytes, `buf` is kmalloc
        // memory of `RSP_BUF` = RMR_POOL_MAX_SESS * RSP_SLICE bytes, `conf` valid for a write.
        let r = unsafe {
            rmr_clt_cmd_with_rsp(
                self.ptr,
                m.as_ptr(),
                n,
                buf.as_mut_ptr(),
                brmr_map::RSP_BUF,
                brmr_map::RSP_SLICE,
                &mut conf,
            )
        };
        if r < 0 {
            return Err(Error::from_errno(r));
        }
        Ok((conf, brmr_map::decode_all(&buf)))
    }

    /// Per-leg state and counters; returns how many entries of `out` are filled.
    fn legs(&self, out: &mut [RmrLegStats; RMR_POOL_MAX_SESS]) -> usize {
        // SAFETY: `self.ptr` is open; `out` is valid for RMR_POOL_MAX_SESS writes.
        let r = unsafe { rmr_clt_leg_stats(self.ptr, out.as_mut_ptr(), RMR_POOL_MAX_SESS as u32) };
        usize::try_from(r).unwrap_or(0).min(RMR_POOL_MAX_SESS)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // SAFETY: open (type invariant), closed once here; no IO is in flight: the gendisk
        // using it was deleted first (owners drop the disk before the pool).
        unsafe { rmr_clt_close(self.ptr) }
    }
}

// ---------------------------------------------------------------------------------------
// Devices

/// One `/dev/brmrN`.
pub(crate) struct Device {
    id: u64,
    index: u32,
    pool: Name,
    /// Being removed: not shown, number still taken until its directory is gone.
    dying: bool,
    // Torn down in this order by `teardown` (and by field order if dropped).
    dir: Option<KDir>,
    disk: Option<Disk>,
    tags: Option<TagSet>,
    shared: Option<KBox<Shared>>,
    rmr: Option<Pool>,
}

impl Device {
    /// Deletes the gendisk (draining IO), frees the tag set, sends UNMAP to the legs and
    /// closes the pool. Returns the directory, to be removed without the lock held.
    fn teardown(&mut self) -> Option<KDir> {
        self.dying = true;
        if let Some(d) = self.dir.as_ref() {
            blk::unlink(d);
        }
        self.disk = None;
        self.tags = None;
        self.shared = None;
        if let Some(p) = self.rmr.take() {
            send_unmap(&p, &self.pool, self.index);
            drop(p);
        }
        self.dir.take()
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        drop(self.teardown());
    }
}

/// Sends BRMR_CMD_UNMAP to the legs; failures are logged (the device goes anyway).
fn send_unmap(p: &Pool, pool: &Name, index: u32) {
    match p.cmd(BrmrMsg::Unmap) {
        Ok((0, _)) => {}
        Ok((conf, _)) => {
            pr_warn!("brmr{}: pool {}: UNMAP not delivered to every leg (conf {})\n", index, pool.as_str(), conf)
        }
        Err(e) => pr_warn!("brmr{}: pool {}: UNMAP failed ({})\n", index, pool.as_str(), ename(e)),
    }
}

/// The client role's state.
pub(crate) struct Clients {
    /// `ctl/devices/`.
    dir: Option<KDir>,
    devs: KVec<Option<KBox<Device>>>,
    next_id: u64,
}

static CLIENTS: AtomicPtr<Mutex<Clients>> = AtomicPtr::new(core::ptr::null_mut());

fn clients() -> Option<Guard<'static, Clients, MutexBackend>> {
    let p = CLIENTS.load(Ordering::Acquire);
    // SAFETY: `p` is null or points to the pinned mutex owned by `ClientRole`, installed
    // after it is initialised and cleared before it is freed.
    unsafe { p.as_ref() }.map(|m| m.lock())
}

/// The client role of the module: `ctl/devices/` and the devices below it.
pub(crate) struct ClientRole {
    lock: Pin<KBox<Mutex<Clients>>>,
}

impl ClientRole {
    /// Creates `ctl/devices/`; the sysfs classes must exist.
    pub(crate) fn new() -> Result<ClientRole> {
        let dir = KDir::new(crate::kind::DIR_CLT_CTL, None, b"devices", kind::PLAIN, 0)?;
        let lock = KBox::pin_init(
            new_mutex!(Clients { dir: Some(dir), devs: KVec::new(), next_id: 0 }, "brmr_clt"),
            GFP_KERNEL,
        )?;
        let p: *const Mutex<Clients> = &*lock;
        CLIENTS.store(p.cast_mut(), Ordering::Release);
        Ok(ClientRole { lock })
    }
}

impl Drop for ClientRole {
    fn drop(&mut self) {
        // Tear every device down; the fops owner keeps the module while a device is open,
        // so nobody holds one open here.
        loop {
            let dir = {
                let mut g = self.lock.lock();
                let Some(mut d) = g.devs.iter_mut().find_map(|d| d.take()) else {
                    break;
                };
                if let Some(s) = d.shared.as_ref() {
                    s.force_removal();
                }
                if !d.dying {
                    pr_info!("unload: unmapping brmr{} (pool {})\n", d.index, d.pool.as_str());
                }
                let dir = d.teardown();
                drop(d);
                dir
            };
            drop(dir);
        }
        CLIENTS.store(core::ptr::null_mut(), Ordering::Release);
        let dir = self.lock.lock().dir.take();
        drop(dir);
    }
}

fn refuse(pool: &Name, r: Refusal) -> Error {
    pr_err!("map_device: pool {}: {} ({})\n", pool.as_str(), r.what(), r.errno().name());
    err(r.errno())
}

/// `ctl/map_device`: `pool=<n> size=<sectors>`.
pub(crate) fn map_device(input: &[u8]) -> Result {
    let c = params::map_device(input).map_err(|e| {
        pr_err!("brmr-client map_device: {}\n", e);
        err(e.errno())
    })?;
    let pool = Name::new(c.pool).ok_or(EINVAL)?;
    let mut g = clients().ok_or(ENODEV)?;
    if let Some(d) = g.devs.iter().flatten().find(|d| !d.dying && d.pool == pool) {
        pr_err!("map_device: pool {} is already mapped as brmr{} (EBUSY)\n", pool.as_str(), d.index);
        return Err(EBUSY);
    }
    let index = brmr_map::lowest_free(g.devs.iter().flatten().map(|d| d.index)).map_err(|r| refuse(&pool, r))?;
    let slot = free_slot(&mut g.devs)?;

    let (rmr, info) = Pool::open(&pool).inspect_err(|e| {
        pr_err!("map_device: pool {}: cannot open the rmr client pool ({})\n", pool.as_str(), ename(*e));
    })?;
    // From here on, dropping `rmr` closes the pool.
    let (conf, answers) = rmr.cmd(BrmrMsg::ReadMd).inspect_err(|e| {
        pr_err!("map_device: pool {}: READ_MD failed ({})\n", pool.as_str(), ename(*e));
    })?;
    let mut legs = [zero_leg(); RMR_POOL_MAX_SESS];
    let nr_legs = rmr.legs(&mut legs).max(info.nr_legs as usize);
    let plan = brmr_map::plan(pool.as_bytes(), c.size, nr_legs, conf, &answers).map_err(|r| refuse(&pool, r))?;
    let pinfo = PoolInfo {
        chunk_size: info.chunk_size,
        queue_depth: info.queue_depth,
        max_io_size: info.max_io_size,
        max_segments: info.max_segments,
    };
    let lim = brmr_map::limits(&pinfo, plan.lbs, kernel::page::PAGE_SIZE as u32).map_err(|r| {
        pr_err!(
            "map_device: pool {}: chunk_size {} queue_depth {} max_io_size {} max_segments {} lbs {}\n",
            pool.as_str(), info.chunk_size, info.queue_depth, info.max_io_size, info.max_segments, plan.lbs
        );
        refuse(&pool, r)
    })?;

    let (conf, answers) = match rmr.cmd(plan.kind.msg(c.size)) {
        Ok(x) => x,
        Err(e) => {
            pr_err!("map_device: pool {}: {} command failed ({})\n", pool.as_str(), plan.kind.name(), ename(e));
            if plan.kind == MapKind::New {
                // Some stores may have set MAPPED: leave no half-mapped pool behind.
                send_unmap(&rmr, &pool, index);
                return Err(err(Refusal::MapNewFailed.errno()));
            }
            return Err(e);
        }
    };
    if let Err(r) = brmr_map::judge(plan.kind, nr_legs, conf, &answers) {
        if plan.kind == MapKind::New {
            send_unmap(&rmr, &pool, index);
        }
        return Err(refuse(&pool, r));
    }

    let id = g.next_id + 1;
    g.next_id = id;
    let mut dev = KBox::new(
        Device { id, index, pool, dying: false, dir: None, disk: None, tags: None, shared: None, rmr: Some(rmr) },
        GFP_KERNEL,
    )?;
    // Any error below drops `dev`: disk, tag set, UNMAP, close, in that order; it has no
    // directory yet, so dropping it under the lock is safe.
    let handle = dev.rmr.as_ref().map_or(core::ptr::null_mut(), |p| p.ptr);
    let build = |dev: &mut Device| -> Result {
        let shared = Shared::new(handle, lim.max_segments, info.chunk_size)?;
        let tags = TagSet::new(&lim, &shared)?;
        let disk = Disk::new(&tags, &shared, &lim, index, c.size)?;
        dev.shared = Some(shared);
        dev.tags = Some(tags);
        dev.disk = Some(disk);
        Ok(())
    };
    build(&mut dev).inspect_err(|e| {
        pr_err!("map_device: pool {}: cannot create brmr{} ({})\n", dev.pool.as_str(), index, ename(*e));
    })?;
    let name = kernel::str::CString::try_from_fmt(fmt!("brmr{}", index))?;
    let parent = g.dir.as_ref().ok_or(ENODEV)?;
    let dir = KDir::new(0, Some(parent), name.as_bytes(), kind::CLT_DEV, id).inspect_err(|e| {
        pr_err!("map_device: pool {}: cannot create ctl/devices/brmr{} ({})\n", dev.pool.as_str(), index, ename(*e));
    })?;
    if let Some(disk) = dev.disk.as_ref() {
        if let Err(e) = disk.link(&dir) {
            pr_err!("brmr{}: pool {}: cannot create the block link ({})\n", index, dev.pool.as_str(), ename(e));
        }
    }
    dev.dir = Some(dir);
    pr_info!(
        "brmr{}: mapped pool {} ({}, {} sectors, block size {}, {} tags, chunk {} sectors)\n",
        index, dev.pool.as_str(), plan.kind.name(), c.size, lim.lbs, lim.queue_depth, lim.chunk_sectors
    );
    g.devs[slot] = Some(dev);
    Ok(())
}

fn free_slot<T>(v: &mut KVec<Option<T>>) -> Result<usize> {
    if let Some(i) = v.iter().position(|p| p.is_none()) {
        return Ok(i);
    }
    v.push(None, GFP_KERNEL)?;
    Ok(v.len() - 1)
}

/// `ctl/devices/brmrN/*` reads.
pub(crate) fn show(id: u64, attr: &[u8], w: &mut PageWriter<'_>) -> Result {
    let g = clients().ok_or(ENODEV)?;
    let d = g.devs.iter().flatten().find(|d| d.id == id && !d.dying).ok_or(ENODEV)?;
    match attr {
        b"state" => writeln!(w, "ready").map_err(|_| EINVAL),
        b"pool" => writeln!(w, "{}", d.pool.as_str()).map_err(|_| EINVAL),
        b"stats" => {
            let mut legs = [zero_leg(); RMR_POOL_MAX_SESS];
            let n = d.rmr.as_ref().map_or(0, |p| p.legs(&mut legs));
            for l in legs.iter().take(n) {
                let _ = writeln!(
                    w,
                    "{} member {} {} reads {} writes {}",
                    BStrDisplay(cstr(&l.name)),
                    l.member_id,
                    BStrDisplay(cstr(&l.state)),
                    l.reads,
                    l.writes
                );
            }
            if let Some(s) = d.shared.as_ref() {
                let _ = writeln!(
                    w,
                    "total reads {} writes {} errors {}",
                    s.reads.load(Ordering::Relaxed),
                    s.writes.load(Ordering::Relaxed),
                    s.errors.load(Ordering::Relaxed)
                );
            }
            Ok(())
        }
        _ => Err(EINVAL),
    }
}

/// Bytes up to the first NUL.
fn cstr(b: &[u8]) -> &[u8] {
    let n = b.iter().position(|c| *c == 0).unwrap_or(b.len());
    b.get(..n).unwrap_or(&[])
}

/// `ctl/devices/brmrN/unmap_device`: `1`.
pub(crate) fn store_attr(id: u64, attr: &[u8], input: &[u8]) -> Result {
    if attr != b"unmap_device" {
        return Err(EINVAL);
    }
    let dir = {
        let mut g = clients().ok_or(ENODEV)?;
        let d = g.devs.iter_mut().flatten().find(|d| d.id == id && !d.dying).ok_or(ENODEV)?;
        params::parse_trigger(input, false).map_err(|e| {
            pr_err!("brmr{}: unmap_device: {}\n", d.index, e);
            err(e.errno())
        })?;
        if let Some(s) = d.shared.as_ref() {
            s.start_removal().inspect_err(|_| {
                pr_err!("brmr{}: unmap_device: device is open by {} opener(s) (EBUSY)\n", d.index, s.openers());
            })?;
        }
        pr_info!("brmr{}: unmapping pool {}\n", d.index, d.pool.as_str());
        d.teardown()
    };
    // The directory goes without the lock: its readers take it.
    drop(dir);
    if let Some(mut g) = clients() {
        if let Some(slot) = g.devs.iter_mut().find(|d| d.as_ref().is_some_and(|d| d.id == id)) {
            *slot = None;
        }
    }
    Ok(())
}
