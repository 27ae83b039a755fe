// SPDX-License-Identifier: GPL-2.0-or-later
//! A self-rearming delayed work (Rust on 6.12 has no delayed work): the C helper
//! `rmr_srv_dwork` in rmr_helpers.c runs [`rmr_srv_dwork_fn`] on `system_long_wq` and re-arms
//! it after the milliseconds it returns. A work belongs to a server pool, or to the module
//! (the client recovery worker).

use crate::server::SrvPool;
use core::ffi::c_void;
use kernel::prelude::*;
use kernel::sync::{Arc, ArcBorrow};

extern "C" {
    fn rmr_srv_dwork_new(ctx: *mut c_void, kind: u32) -> *mut c_void;
    fn rmr_srv_dwork_queue(d: *mut c_void, ms: u32);
    fn rmr_srv_dwork_free(d: *mut c_void);
}

/// Kind of the module's client recovery worker (no pool).
pub(crate) const DW_CLT_RECOVER: u32 = 100;

/// A self-rearming delayed work of a pool or of the module.
///
/// # Invariants
/// `dw` is null or a live `rmr_srv_dwork` whose context is `ctx`: null for a module work, or
/// a reference of an `Arc<SrvPool>` (from `Arc::into_raw`) owned by this value; both are
/// released by `free`.
pub(crate) struct Dwork {
    dw: *mut c_void,
    ctx: *const SrvPool,
}

// SAFETY: the C work may be queued and freed from any thread.
unsafe impl Send for Dwork {}

// SAFETY: the only shared operation, `queue`, is `queue_delayed_work`, safe from any thread.
unsafe impl Sync for Dwork {}

impl Dwork {
    pub(crate) const NONE: Dwork = Dwork { dw: core::ptr::null_mut(), ctx: core::ptr::null() };

    pub(crate) fn new(pool: &Arc<SrvPool>, kind: u32) -> Result<Dwork> {
        let ctx = Arc::into_raw(pool.clone());
        // SAFETY: plain allocation; `ctx` stays valid until `free` (type invariant).
        let dw = unsafe { rmr_srv_dwork_new(ctx.cast_mut().cast(), kind) };
        if dw.is_null() {
            // SAFETY: `ctx` came from `Arc::into_raw` above and was not handed out.
            drop(unsafe { Arc::from_raw(ctx) });
            return Err(ENOMEM);
        }
        Ok(Dwork { dw, ctx })
    }

    /// The module's work of `kind` (no pool).
    pub(crate) fn new_module(kind: u32) -> Result<Dwork> {
        // SAFETY: plain allocation; a null context is never dereferenced.
        let dw = unsafe { rmr_srv_dwork_new(core::ptr::null_mut(), kind) };
        if dw.is_null() {
            return Err(ENOMEM);
        }
        Ok(Dwork { dw, ctx: core::ptr::null() })
    }

    /// Arms the work after `ms` unless pending. Any context, also under a spinlock.
    pub(crate) fn queue(&self, ms: u32) {
        if !self.dw.is_null() {
            // SAFETY: `dw` is live (type invariant).
            unsafe { rmr_srv_dwork_queue(self.dw, ms) }
        }
    }

    /// Cancels and frees the work (waiting for a running callback). Sleeps.
    pub(crate) fn free(self) {
        if self.dw.is_null() {
            return;
        }
        // SAFETY: `dw` is live and freed once: `self` is consumed.
        unsafe { rmr_srv_dwork_free(self.dw) };
        if !self.ctx.is_null() {
            // SAFETY: the work no longer runs, so the reference it held is ours to drop.
            drop(unsafe { Arc::from_raw(self.ctx) });
        }
    }
}

/// Callback of the pool's delayed works (called by the C helper `rmr_srv_dwork_cb`).
/// Returns milliseconds until the next run (0: none).
///
/// # Safety
/// `ctx` is null (a module work) or the `Arc<SrvPool>` reference of a live [`Dwork`].
#[no_mangle]
pub(crate) unsafe extern "C" fn rmr_srv_dwork_fn(ctx: *mut c_void, kind: u32) -> u32 {
    if ctx.is_null() {
        return match kind {
            DW_CLT_RECOVER => crate::client::recover_tick(),
            _ => 0,
        };
    }
    // SAFETY: the Dwork keeps this reference alive until the work is cancelled.
    let b = unsafe { ArcBorrow::<SrvPool>::from_raw(ctx.cast_const().cast()) };
    let pool: Arc<SrvPool> = b.into();
    crate::server::dwork_run(&pool, kind)
}
