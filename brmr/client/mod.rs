// SPDX-License-Identifier: GPL-2.0-or-later
//! brmr-client: `/dev/brmrN` over an rmr client pool (SPEC §2.4, §9.2).
//!
//! `ctl/map_device` opens the pool through rmr's C ABI (`wrap/rmr_clt.rs`), reads every store's
//! metadata, lets `rmr_core::brmr_map` decide (first-time map, re-map or refusal), sends
//! MAP_NEW/MAP_CHECK and creates the gendisk (`wrap/blk_mq.rs`, which calls [`blk`] for every
//! request). `ctl/devices/brmrN/{state,unmap_device,stats,block}`.
//!
//! Locking: the devices sit behind their own mutex (`brmr_clt`), which may be held while
//! calling rmr (never the other way round). The blk-mq path takes no lock. A device's sysfs
//! directory is removed with the lock dropped (its readers take the lock); until then the
//! device stays listed as dying so its number and name are not reused.

#![deny(unsafe_code)]

use crate::abi::{RmrLegStats, RMR_POOL_MAX_SESS};
pub(crate) mod blk;

use blk::Shared;
use crate::rmr_core::brmr_map::{self, Answer, MapKind, PoolInfo, Refusal};
use crate::rmr_core::params::{self, Name};
use crate::rmr_core::wire::BrmrMsg;
use crate::sysfs::{ename, BStrDisplay, PageWriter};
use crate::wrap::blk_mq::{self, Disk};
use crate::wrap::global::{Global, Owner};
use crate::wrap::kdir::KDir;
use crate::wrap::rmr_clt::Pool;
use crate::{err, kind};
use core::fmt::Write;
use core::sync::atomic::Ordering;
use kernel::fmt;
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::lock::{mutex::MutexBackend, Guard};
use kernel::sync::Mutex;

// ---------------------------------------------------------------------------------------
// BRMR commands over the rmr client pool

type Answers = [Option<Answer>; RMR_POOL_MAX_SESS];

fn zero_leg() -> RmrLegStats {
    RmrLegStats { slot: 0, member_id: 0, reads: 0, writes: 0, name: [0; 64], state: [0; 16] }
}

/// Sends a BRMR command to every leg; returns `conf` and the decoded response slices.
fn cmd(p: &Pool, msg: BrmrMsg) -> Result<(i32, Answers)> {
    let mut m = KVec::from_elem(0u8, brmr_map::REQ_MAX, GFP_KERNEL)?;
    let n = msg.encode(&mut m).map_err(|_| EINVAL)?;
    // kmalloc'ed and zeroed: slices of legs that do not answer stay zero.
    // `RSP_BUF` = RMR_POOL_MAX_SESS * RSP_SLICE bytes.
    let mut buf = KVec::from_elem(0u8, brmr_map::RSP_BUF, GFP_KERNEL)?;
    let conf = p.cmd_with_rsp(m.get(..n).ok_or(EINVAL)?, &mut buf, brmr_map::RSP_SLICE)?;
    Ok((conf, brmr_map::decode_all(&buf)))
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
    /// The gendisk, its tag set and the pool once mapped (then `rmr` is `None`).
    disk: Option<Disk>,
    /// The pool before the gendisk exists.
    rmr: Option<Pool>,
}

impl Device {
    /// The device's data shared with its block callbacks.
    fn shared(&self) -> Option<&Shared> {
        self.disk.as_ref().map(Disk::shared)
    }

    /// Deletes the gendisk (draining IO), frees the tag set, sends UNMAP to the legs and
    /// closes the pool. Returns the directory, to be removed without the lock held.
    fn teardown(&mut self) -> Option<KDir> {
        self.dying = true;
        if let Some(d) = self.dir.as_ref() {
            blk_mq::unlink(d);
        }
        if let Some(d) = self.disk.take() {
            self.rmr = Some(d.into_pool());
        }
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
    match cmd(p, BrmrMsg::Unmap) {
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

/// The client state, published by `ClientRole` after it is initialised and unpublished
/// before it is freed.
static CLIENTS: Global<Mutex<Clients>> = Global::new();

fn clients() -> Option<Guard<'static, Clients, MutexBackend>> {
    CLIENTS.get().map(|m| m.lock())
}

/// The client role of the module: `ctl/devices/` and the devices below it.
pub(crate) struct ClientRole {
    lock: Owner<Mutex<Clients>>,
}

impl ClientRole {
    /// Creates `ctl/devices/`; the sysfs classes must exist.
    pub(crate) fn new() -> Result<ClientRole> {
        let dir = KDir::new(crate::kind::DIR_CLT_CTL, None, b"devices", kind::PLAIN, 0)?;
        let lock = KBox::pin_init(
            new_mutex!(Clients { dir: Some(dir), devs: KVec::new(), next_id: 0 }, "brmr_clt"),
            GFP_KERNEL,
        )?;
        Ok(ClientRole { lock: CLIENTS.publish(lock) })
    }
}

impl Drop for ClientRole {
    fn drop(&mut self) {
        // Tear every device down; the fops owner keeps the module while a device is open,
        // so nobody holds one open here.
        loop {
            let dir = {
                let mut g = self.lock.get().lock();
                let Some(mut d) = g.devs.iter_mut().find_map(|d| d.take()) else {
                    break;
                };
                if let Some(s) = d.shared() {
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
        self.lock.unpublish();
        let dir = self.lock.get().lock().dir.take();
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

    let (rmr, info) = Pool::open(pool.as_bytes()).inspect_err(|e| {
        pr_err!("map_device: pool {}: cannot open the rmr client pool ({})\n", pool.as_str(), ename(*e));
    })?;
    // From here on, dropping `rmr` closes the pool.
    let (conf, answers) = cmd(&rmr, BrmrMsg::ReadMd).inspect_err(|e| {
        pr_err!("map_device: pool {}: READ_MD failed ({})\n", pool.as_str(), ename(*e));
    })?;
    let mut legs = [zero_leg(); RMR_POOL_MAX_SESS];
    let nr_legs = rmr.leg_stats(&mut legs).max(info.nr_legs as usize);
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

    let (conf, answers) = match cmd(&rmr, plan.kind.msg(c.size)) {
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
        Device { id, index, pool, dying: false, dir: None, disk: None, rmr: Some(rmr) },
        GFP_KERNEL,
    )?;
    // Any error below drops `dev`: disk, tag set, UNMAP, close, in that order; it has no
    // directory yet, so dropping it under the lock is safe.
    let build = |dev: &mut Device| -> Result {
        let rmr = dev.rmr.take().ok_or(ENODEV)?;
        match Disk::new(rmr, Shared::new(info.chunk_size), &lim, index, c.size) {
            Ok(disk) => {
                dev.disk = Some(disk);
                Ok(())
            }
            Err((rmr, e)) => {
                dev.rmr = Some(rmr);
                Err(e)
            }
        }
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
            let n = d.disk.as_ref().map(Disk::pool).or(d.rmr.as_ref()).map_or(0, |p| p.leg_stats(&mut legs));
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
            if let Some(s) = d.shared() {
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
        if let Some(s) = d.shared() {
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
