// SPDX-License-Identifier: GPL-2.0-or-later
//! brmr-server stores: `ctl/create_store`, `ctl/add_store` and `stores/<p>/...` (SPEC §2.5,
//! §9.3). The on-disk format and every accept/refuse decision come from `rmr_core`. The ops
//! rmr calls, and the per-store object they use, live in `server::io`; registration with rmr
//! and the backing device in `wrap/rmr_srv.rs` and `wrap/bdev.rs`.

#![deny(unsafe_code)]

use crate::abi::{RmrPoolMd, RmrSrvMd};
use crate::rmr_core::{
    errno::Errno,
    jhash,
    ondisk::{self, Layout, MdError, PoolMd, SrvMd, Superblock, SB_SIZE},
    params::{self, Name, StoreMode},
    store_reg::{self, RegMode, SrvPoolState},
};
use super::io::{Shared, MAPPED, OPEN};
use crate::sysfs::{ename, BStrDisplay, Dir, PageWriter, Parent};
use crate::wrap::bdev::Bdev;
use crate::wrap::bioset::BioSet;
use crate::wrap::rmr_srv::{self, Registration};
use crate::{err, kind, state};
use core::ffi::c_void;
use core::fmt::Write;
use core::sync::atomic::Ordering;
use kernel::fmt;
use kernel::prelude::*;
use kernel::str::CString;

/// A store on this host, in brmr's state list. Every path unregisters it (`unregister`)
/// before dropping it; `Registration` keeps its `Shared` alive while rmr holds it.
pub(crate) struct Store {
    id: u64,
    pub(crate) pool: Name,
    // Drop order: the directory first, then the device (inside `shared`).
    _dir: Dir,
    shared: Registration,
    dev_sectors: u64,
    bdev_name: [u8; 32],
    bdev_name_len: usize,
}

impl Store {
    /// Unregisters from the rmr server pool; errors are logged (the store goes anyway).
    pub(crate) fn unregister(&self, delete: bool) -> i32 {
        let r = self.shared.unregister(delete);
        if r < 0 && !delete {
            pr_err!("store {}: unregister from the server pool failed ({})\n", self.pool.as_str(), r);
        }
        r
    }

    fn flags(&self) -> u32 {
        self.shared.flags.load(Ordering::Acquire)
    }
}

pub(crate) fn to_abi(p: &PoolMd) -> RmrPoolMd {
    let mut srv_md = [RmrSrvMd::default(); 4];
    for (d, s) in srv_md.iter_mut().zip(p.srv_md.iter()) {
        *d = RmrSrvMd { member_id: s.member_id, flags: s.flags };
    }
    RmrPoolMd {
        group_id: p.group_id,
        chunk_size: p.chunk_size,
        queue_depth: p.queue_depth,
        own_member_id: p.own_member_id,
        map_ver: p.map_ver,
        mapped_size: 0,
        srv_md,
        map_slots: p.map_slots,
    }
}

pub(crate) fn from_abi(m: &RmrPoolMd) -> PoolMd {
    let mut srv_md = [SrvMd::default(); ondisk::MAX_MEMBERS];
    for (d, s) in srv_md.iter_mut().zip(m.srv_md.iter()) {
        *d = SrvMd { member_id: s.member_id, flags: s.flags };
    }
    PoolMd {
        group_id: m.group_id,
        chunk_size: m.chunk_size,
        queue_depth: m.queue_depth,
        own_member_id: m.own_member_id,
        map_ver: m.map_ver,
        srv_md,
        map_slots: m.map_slots,
    }
}

fn zeroed(len: usize) -> Result<KVec<u8>> {
    Ok(KVec::from_elem(0u8, len, GFP_KERNEL)?)
}

/// Reads both superblock copies and picks the valid newest one.
fn read_md(b: &Bdev) -> Result<core::result::Result<Superblock, MdError>> {
    if b.sectors() * ondisk::SECTOR < 2 * SB_SIZE as u64 {
        return Ok(Err(MdError::Blank));
    }
    let mut buf = zeroed(2 * SB_SIZE)?;
    b.read_at(&mut buf, 0)?;
    let (c0, c1) = buf.split_at(SB_SIZE);
    let c0: &[u8; SB_SIZE] = c0.try_into().map_err(|_| EINVAL)?;
    let c1: &[u8; SB_SIZE] = c1.try_into().map_err(|_| EINVAL)?;
    Ok(Superblock::select(c0, c1))
}

/// Writes `sb` to the copy its sequence selects and flushes. Callers hold the store's `md`
/// lock once the store is registered, and keep their old superblock if this fails (the next
/// attempt then rewrites the same copy, never the other, valid one).
pub(crate) fn write_sb(b: &Bdev, sb: &Superblock) -> Result {
    let mut buf = zeroed(SB_SIZE)?;
    let page: &mut [u8; SB_SIZE] = buf.as_mut_slice().try_into().map_err(|_| EINVAL)?;
    sb.encode(page);
    b.write_at(&buf, (sb.slot() * SB_SIZE) as u64)?;
    b.sync()
}

/// Fresh metadata: the other superblock copy, `last_io` and every bitmap zeroed, then `sb`.
fn format(b: &Bdev, sb: &Superblock) -> Result {
    const STEP: usize = 64 * 1024;
    let zero = zeroed(STEP)?;
    let other = (1 - sb.slot()) * SB_SIZE;
    b.write_at(&zero[..SB_SIZE], other as u64)?;
    let end = sb.layout.bitmaps_end();
    let mut pos = ondisk::LAST_IO_OFFSET;
    while pos < end {
        let n = (end - pos).min(STEP as u64) as usize;
        b.write_at(&zero[..n], pos)?;
        pos += n as u64;
    }
    write_sb(b, sb)
}

/// Zeroes both superblock copies so the disk no longer carries recognisable metadata.
fn wipe(b: &Bdev) -> Result {
    let zero = zeroed(2 * SB_SIZE)?;
    b.write_at(&zero, 0)?;
    b.sync()
}

fn log_parse(cmd: &str, e: params::ParseError) -> Error {
    pr_err!("brmr-server {}: {}\n", cmd, e);
    err(e.errno())
}

/// `ctl/create_store` (`add` false) and `ctl/add_store` (`add` true).
pub(crate) fn create_or_add(input: &[u8], add: bool) -> Result {
    let cmd_name = if add { "add_store" } else { "create_store" };
    let c = params::store_cmd(input, add).map_err(|e| log_parse(cmd_name, e))?;
    let pool = Name::new(c.pool).ok_or(EINVAL)?;
    let dev = BStrDisplay(c.device);
    if c.mode == StoreMode::Replace {
        pr_err!("store {}: add_store mode=replace is not supported (EOPNOTSUPP)\n", pool.as_str());
        return Err(err(Errno::EOPNOTSUPP));
    }
    // The whole operation runs under brmr's lock: store commands are serialised.
    let mut st = state().ok_or(ENODEV)?;
    if st.stores.iter().flatten().any(|s| s.pool == pool) {
        pr_err!("store {}: {}: the pool already has a store (EBUSY)\n", pool.as_str(), cmd_name);
        return Err(EBUSY);
    }
    let (q, member_id) = rmr_srv::pool_query(pool.as_bytes());
    if q < 0 {
        pr_err!("store {}: {}: no rmr-server pool of that name ({})\n", pool.as_str(), cmd_name, ename(Error::from_errno(q)));
        return Err(Error::from_errno(q));
    }
    let srv_state = SrvPoolState::from_raw(q as u32).ok_or(EINVAL)?;
    if !add && srv_state != SrvPoolState::Empty {
        pr_err!("store {}: create_store: server pool is {} not empty (EBUSY)\n", pool.as_str(), srv_state.name());
        return Err(EBUSY);
    }

    // The `Shared` is allocated first: its address is the holder that claims the device.
    let uninit = KBox::<Shared>::new_uninit(GFP_KERNEL)?;
    let holder = uninit.as_ptr().cast_mut().cast::<c_void>();
    let bioset = BioSet::new()?;
    let path = CString::try_from_fmt(fmt!("{}", dev))?;
    let bdev = Bdev::open(&path, holder).inspect_err(|e| {
        pr_err!("store {}: {}: cannot open {} exclusively ({})\n", pool.as_str(), cmd_name, dev, ename(*e));
    })?;
    let dev_sectors = bdev.sectors();
    let md = read_md(&bdev).inspect_err(|e| {
        pr_err!("store {}: {}: reading metadata of {} failed ({})\n", pool.as_str(), cmd_name, dev, ename(*e));
    })?;
    let mode = if add { StoreMode::Add } else { StoreMode::Create };
    let found = store_reg::check_disk(mode, md, pool.as_bytes(), c.mapped_size, member_id)
        .map_err(|r| {
            pr_err!("store {}: {} {}: {} ({})\n", pool.as_str(), cmd_name, dev, r.what(), r.errno().name());
            err(r.errno())
        })?;

    // What can fail without side effects on the disk or rmr comes first: the store's slot and
    // allocation (so a store that registered is never dropped before it unregisters).
    let slot = free_slot(&mut st.stores)?;
    let store_box = KBox::<Store>::new_uninit(GFP_KERNEL)?;

    let sb = match found {
        Some(sb) => {
            if sb.layout.area_sectors.saturating_add(sb.mapped_size) > dev_sectors {
                pr_err!("store {}: add_store {}: device smaller than its metadata says (EINVAL)\n", pool.as_str(), dev);
                return Err(EINVAL);
            }
            sb
        }
        None => {
            let layout = Layout::new(dev_sectors, c.mapped_size).map_err(|e| {
                pr_err!(
                    "store {}: create_store {}: mapped_size {} does not fit {} sectors (max {}) ({})\n",
                    pool.as_str(), dev, c.mapped_size, dev_sectors, Layout::max_mapped(dev_sectors), e.name()
                );
                err(e)
            })?;
            let sb = Superblock::new(
                pool.as_bytes(),
                jhash::group_id(pool.as_bytes()),
                c.mapped_size,
                bdev.logical_block_size(),
                layout,
            )
            .map_err(err)?;
            format(&bdev, &sb).inspect_err(|e| {
                pr_err!("store {}: create_store {}: writing metadata failed ({})\n", pool.as_str(), dev, ename(*e));
            })?;
            sb
        }
    };

    let mut md = to_abi(&sb.pool_md);
    md.mapped_size = sb.mapped_size;
    // OPEN from now on: nobody sees the flags before rmr holds the store.
    let flags = if sb.mapped() { OPEN | MAPPED } else { OPEN };
    let shared = match uninit.write_pin_init(Shared::new(pool, flags, bdev, bioset, sb)) {
        Ok(s) => s,
        Err(e) => match e {},
    };
    let reg_mode = if add { RegMode::Add } else { RegMode::Create };
    // `shared` stays in the store until after unregister (or is dropped right here if
    // registration fails).
    let shared = match Registration::register(pool, shared, reg_mode, &mut md) {
        Ok(s) => s,
        Err((shared, r)) => {
            pr_err!("store {}: {}: registration with the server pool failed ({})\n", pool.as_str(), cmd_name, ename(Error::from_errno(r)));
            if !add {
                let _ = wipe(&shared.bdev);
            }
            return Err(Error::from_errno(r));
        }
    };
    // rmr may call the ops from now on: the superblock is only touched under `md`. Persist the
    // pool_md registration returned unless `md_update` already reported a newer one.
    let persisted = {
        let mut g = shared.md.lock();
        let r = if g.md_reported {
            Ok(())
        } else {
            match g.sb.with_pool_md(&from_abi(&md)) {
                Ok(None) => Ok(()),
                Ok(Some(next)) => write_sb(&shared.bdev, &next).map(|()| g.sb = next),
                Err(e) => Err(err(e)),
            }
        };
        r.map(|()| g.sb)
    };
    let sb = match persisted {
        Ok(sb) => sb,
        Err(e) => {
            pr_err!("store {}: {}: persisting pool metadata failed ({})\n", pool.as_str(), cmd_name, ename(e));
            shared.unregister(false);
            if !add {
                let _ = wipe(&shared.bdev);
            }
            return Err(e);
        }
    };

    // The directory comes last: a failure dropping it under brmr's lock could wait for a
    // reader of one of its files that waits for the lock.
    let id = st.new_id();
    let dir = match Dir::new(Parent::Top(kind::DIR_STORES), pool.as_bytes(), kind::STORE, id) {
        Ok(d) => d,
        Err(e) => {
            shared.unregister(false);
            if !add {
                let _ = wipe(&shared.bdev);
            }
            return Err(e);
        }
    };
    let mut name_buf = [0u8; 32];
    let name_len = shared.bdev.name(&mut name_buf);
    let s = store_box.write(Store {
        id,
        pool,
        _dir: dir,
        shared,
        dev_sectors,
        bdev_name: name_buf,
        bdev_name_len: name_len,
    });
    pr_info!(
        "store {}: {} on {} ({} of {} sectors, metadata area {} sectors){}\n",
        s.pool.as_str(),
        if add { "added" } else { "created" },
        BStrDisplay(&s.bdev_name[..s.bdev_name_len]),
        sb.mapped_size,
        s.dev_sectors,
        sb.layout.area_sectors,
        if sb.mapped() { ", mapped" } else { "" }
    );
    st.stores[slot] = Some(s);
    Ok(())
}

fn free_slot<T>(v: &mut KVec<Option<T>>) -> Result<usize> {
    if let Some(i) = v.iter().position(|p| p.is_none()) {
        return Ok(i);
    }
    if v.len() >= 64 {
        pr_err!("too many stores (max 64) (ENOSPC)\n");
        return Err(ENOSPC);
    }
    v.push(None, GFP_KERNEL)?;
    Ok(v.len() - 1)
}

pub(crate) fn show(id: u64, attr: &[u8], w: &mut PageWriter<'_>) -> Result {
    let st = state().ok_or(ENODEV)?;
    let s = st.stores.iter().flatten().find(|s| s.id == id).ok_or(ENODEV)?;
    let f = s.flags();
    match attr {
        b"state" => {
            if f & OPEN != 0 {
                let _ = writeln!(w, "open");
            }
            if f & MAPPED != 0 {
                let _ = writeln!(w, "mapped");
            }
            Ok(())
        }
        b"mapped_size" => writeln!(w, "{}", s.shared.area.mapped_size),
        b"dev_size" => writeln!(w, "{}", s.dev_sectors),
        b"bdev_name" => writeln!(w, "{}", BStrDisplay(&s.bdev_name[..s.bdev_name_len])),
        _ => return Err(EINVAL),
    }
    .map_err(|_| EINVAL)
}

/// `remove_store` / `delete_store` on `stores/<p>/`.
pub(crate) fn store_attr(id: u64, attr: &[u8], input: &[u8]) -> Result {
    let delete = match attr {
        b"remove_store" => false,
        b"delete_store" => true,
        _ => return Err(EINVAL),
    };
    let taken = {
        let mut st = state().ok_or(ENODEV)?;
        let slot = st
            .stores
            .iter()
            .position(|s| s.as_ref().is_some_and(|s| s.id == id))
            .ok_or(ENODEV)?;
        let s = st.stores[slot].as_ref().ok_or(ENODEV)?;
        let what = if delete { "delete_store" } else { "remove_store" };
        params::parse_trigger(input, false).map_err(|e| {
            pr_err!("store {}: {}: {}\n", s.pool.as_str(), what, e);
            err(e.errno())
        })?;
        let r = s.unregister(delete);
        if r < 0 {
            if delete {
                pr_err!(
                    "store {}: delete_store refused: sessions are joined to the server pool ({})\n",
                    s.pool.as_str(),
                    ename(Error::from_errno(r))
                );
            }
            return Err(Error::from_errno(r));
        }
        if delete {
            if let Err(e) = wipe(&s.shared.bdev) {
                pr_err!("store {}: delete_store: wiping metadata failed ({}); store removed\n", s.pool.as_str(), ename(e));
                let s = st.stores[slot].take();
                drop(st);
                drop(s);
                return Err(e);
            }
        }
        st.stores[slot].take()
    };
    if let Some(s) = taken {
        pr_info!("store {}: {}\n", s.pool.as_str(), if delete { "deleted (metadata wiped)" } else { "removed (metadata kept)" });
        drop(s);
    }
    Ok(())
}
