// SPDX-License-Identifier: GPL-2.0-or-later
//! Store registration (the C ABI brmr calls): register, unregister, query, and the
//! pool metadata in its ABI form.

#![deny(unsafe_code)]

use super::*;
use crate::abi::{RMR_STORE_INTENT, RMR_STORE_VOLATILE_CACHE};

pub(super) fn to_abi(c: &CorePool) -> RmrPoolMd {
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
        map_slots: c.mdlog.slots,
    }
}

pub(super) fn from_abi(m: &RmrPoolMd, name: PoolName) -> core::result::Result<PoolMd, Errno> {
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

/// `rmr_srv_pool_query` for brmr: the pool's state and member id, or -ENOENT.
pub(crate) fn query(name: &[u8]) -> core::result::Result<(SrvPoolState, u32), Errno> {
    let pool = pool_by_name(name)?;
    let s = pool.inner.lock().core.state;
    Ok((to_pool_state(s), pool.member_id))
}

/// `rmr_srv_register`: CREATE fills `md` with the pool's identity; ADD loads it.
pub(crate) fn register(
    name: &[u8],
    store: StoreReg,
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
        let pname = PoolName::new(pool.name.as_bytes()).map_err(|_| Errno::EINVAL)?;
        Some(from_abi(md, pname).inspect_err(|_| {
            pr_err!("server pool {}: store metadata has queue_depth {} (EINVAL)\n", pool.name(), md.queue_depth);
        })?)
    } else {
        None
    };
    let chunk = disk.map_or_else(|| pool.inner.lock().core.md.chunk_size, |d| d.chunk_size);
    pool.prepare_maps(md.mapped_size.saturating_mul(512).div_ceil(u64::from(chunk.max(1))), false);
    let mut g = pool.inner.lock();
    if g.store.is_some() || g.unregistering || g.dead {
        drop(g);
        pr_err!("server pool {}: store registration refused: a store is registered (EBUSY)\n", pool.name());
        return Err(Errno::EBUSY);
    }
    if let Err(e) = g.core.register_store(cmode, disk, md.mapped_size) {
        let (st, size) = (g.core.state, g.core.md.mapped_size);
        drop(g);
        pr_err!(
            "server pool {}: store registration refused in state {} ({}): store group_id {:#x} mapped_size {}, pool group_id {:#x} mapped_size {}\n",
            pool.name(), st.name(), e.to_errno().name(), md.group_id, md.mapped_size, pool.group_id, size
        );
        return Err(e.to_errno());
    }
    // [improvement] The write-intent record is kept on a device with a volatile write cache
    // whose store can persist it (format version 3).
    let caps = store.caps();
    let volatile = caps & RMR_STORE_VOLATILE_CACHE != 0;
    let regions = caps & RMR_STORE_INTENT != 0;
    let wanted = crate::write_intent();
    g.core.set_store_caps(volatile && wanted, regions);
    g.store = Some(store);
    drop(g);
    let why = match (volatile, regions, wanted) {
        (true, true, true) => "on: the device has a volatile write cache",
        (false, _, _) => "off: the device has no volatile write cache",
        (true, true, false) => "OFF although the device has a volatile write cache: rmr.write_intent=0",
        (true, false, _) => "OFF although the device has a volatile write cache: the store format has no room for it (recreate the store)",
    };
    pr_info!("server pool {}: write-intent record {}\n", pool.name(), why);
    pool.prepare_intent();
    if mode == RegMode::Add {
        // The persisted maps and last_io record come back before the store serves (it is
        // REGISTERED: no session has joined yet).
        if let Err(r) = md_load(&pool, &store, md) {
            let mut g = pool.inner.lock();
            let _ = g.core.unregister();
            g.store = None;
            drop(g);
            pr_err!("server pool {}: store registration failed: its metadata could not be loaded ({})\n", pool.name(), r);
            return Err(Errno::from_raw(-r).unwrap_or(Errno::EIO));
        }
    }
    let g = pool.inner.lock();
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
    drop(g);
    pool.drain("store IO", |g| g.store_refs == 0);
    let mut g = pool.inner.lock();
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
