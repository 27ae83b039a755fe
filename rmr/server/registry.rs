// SPDX-License-Identifier: GPL-2.0-or-later
//! The registry of server pools for the data plane (group_id to pool) and the RTRS server
//! context; module init and exit of the server role; lookups.

#![deny(unsafe_code)]

use super::*;
use crate::transport;

#[pin_data]
pub(crate) struct Registry {
    #[pin]
    pools: SpinLock<KVec<Option<Arc<SrvPool>>>>,
    #[pin]
    ctx: Mutex<Option<SrvCtx>>,
}

/// The registry, published by the module object (which owns it) for RTRS callbacks.
pub(crate) static REG: Global<Registry> = Global::new();

pub(super) fn reg() -> Option<&'static Registry> {
    REG.get()
}

/// The registry for module init to publish (the RTRS context opens at the first `join_pool`).
pub(crate) fn new_registry() -> Result<Pin<KBox<Registry>>> {
    let mut v = KVec::with_capacity(MAX_POOLS, GFP_KERNEL)?;
    for _ in 0..MAX_POOLS {
        v.push(None, GFP_KERNEL)?;
    }
    KBox::pin_init(
        pin_init!(Registry {
            pools <- new_spinlock!(v, "rmr_srv_registry"),
            ctx <- new_mutex!(None, "rmr_srv_ctx"),
        }),
        GFP_KERNEL,
    )
}

/// Module exit: close the RTRS context (every session goes, raising DISCONNECTED), shut down
/// and drop every server pool. The module object frees the registry afterwards.
pub(crate) fn exit() {
    let Some(r) = reg() else {
        return;
    };
    transport::srv::close(&r.ctx);
    let pools = match state() {
        Some(mut st) => core::mem::take(&mut st.srv),
        None => KVec::new(),
    };
    for p in pools.iter().flatten() {
        registry_remove(&p.pool);
        p.pool.shutdown();
    }
    drop(pools);
}

pub(super) fn lookup(group_id: u32) -> Option<Arc<SrvPool>> {
    let r = reg()?;
    let g = r.pools.lock();
    g.iter().flatten().find(|p| p.group_id == group_id).cloned()
}

pub(super) fn registry_add(pool: &Arc<SrvPool>) -> Result {
    let r = reg().ok_or(ENODEV)?;
    let mut g = r.pools.lock();
    let slot = g.iter_mut().find(|p| p.is_none()).ok_or(ENOSPC)?;
    *slot = Some(pool.clone());
    Ok(())
}

pub(super) fn registry_remove(pool: &Arc<SrvPool>) {
    let Some(r) = reg() else {
        return;
    };
    let taken = {
        let mut g = r.pools.lock();
        g.iter_mut()
            .find(|p| p.as_ref().is_some_and(|p| Arc::ptr_eq(p, pool)))
            .and_then(|p| p.take())
    };
    drop(taken);
}

pub(super) fn ensure_ctx() -> Result {
    let r = reg().ok_or(ENODEV)?;
    transport::srv::ensure_open(&r.ctx)
}

/// Finds a server pool by name.
pub(crate) fn by_name<'a>(st: &'a mut State, name: &[u8]) -> Option<&'a mut ServerPool> {
    st.srv.iter_mut().flatten().find(|p| p.name.as_bytes() == name)
}

pub(super) fn pool_by_id(id: u64) -> Result<Arc<SrvPool>> {
    let st = state().ok_or(ENODEV)?;
    st.srv.iter().flatten().find(|p| p.id == id).map(|p| p.pool.clone()).ok_or(ENODEV)
}

pub(super) fn pool_by_name(name: &[u8]) -> core::result::Result<Arc<SrvPool>, Errno> {
    let mut st = state().ok_or(Errno::ENODEV)?;
    by_name(&mut st, name).map(|p| p.pool.clone()).ok_or(Errno::ENOENT)
}

/// Index of a free slot, growing the table up to `MAX_POOLS`.
pub(crate) fn free_slot<T>(v: &mut KVec<Option<T>>) -> Result<usize> {
    if let Some(i) = v.iter().position(|p| p.is_none()) {
        return Ok(i);
    }
    if v.len() >= MAX_POOLS {
        pr_err!("too many pools (max {}) (ENOSPC)\n", MAX_POOLS);
        return Err(ENOSPC);
    }
    v.push(None, GFP_KERNEL)?;
    Ok(v.len() - 1)
}
