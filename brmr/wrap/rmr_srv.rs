// SPDX-License-Identifier: GPL-2.0-or-later
//! rmr's server C ABI as brmr's stores use it (rmr/api/abi.rs): pool query, registration of a
//! store, the `RmrSrvStoreOps` trampolines rmr calls, and the IOs handed to `submit` until
//! `rmr_srv_io_done`. The trampolines turn rmr's raw arguments into a `&Shared`, slices and
//! an owned [`SrvIo`], and call the safe functions of `server::io`, which hold the logic.
//!
//! Lifetime: rmr calls the ops with the `priv` pointer of a [`Registration`] until
//! `rmr_srv_unregister` returned for its pool; by then no op runs and every IO handed to
//! `submit` has been completed. A `Registration` frees its `Shared` only afterwards.

use super::bioset::BioOp;
use crate::abi::{RmrPoolMd, RmrSrvIo, RmrSrvStoreOps, RMR_ABI_VERSION, RMR_MD_PAGE};
use crate::rmr_core::{errno::Errno, params::Name, store_reg::RegMode};
use crate::server::io::{self, Shared};
use core::ffi::{c_int, c_void};
use core::ops::Deref;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, Ordering};
use kernel::prelude::*;

extern "C" {
    fn rmr_srv_pool_query(name: *const u8, len: usize, member_id: *mut u32) -> i32;
    fn rmr_srv_register(
        name: *const u8,
        len: usize,
        ops: *const RmrSrvStoreOps,
        priv_: *mut c_void,
        mode: u32,
        md: *mut RmrPoolMd,
    ) -> i32;
    fn rmr_srv_unregister(name: *const u8, len: usize, delete: bool) -> i32;
    fn rmr_srv_io_done(io: *mut RmrSrvIo, err: c_int);
}

/// `rmr_srv_pool_query`: the state of server pool `name` (a raw `SrvPoolState`) or a negative
/// errno, and this node's member id in it.
pub(crate) fn pool_query(name: &[u8]) -> (i32, u32) {
    let mut member_id = 0u32;
    // SAFETY: `name` is valid for its length, `member_id` for a write, during the call.
    let q = unsafe { rmr_srv_pool_query(name.as_ptr(), name.len(), &mut member_id) };
    (q, member_id)
}

// ---------------------------------------------------------------------------------------
// Registration

/// A store's [`Shared`] registered with an rmr server pool as the `priv` of [`OPS`].
///
/// # Invariants
/// `shared` stays pinned in its box. While `registered` is true, rmr may hold it as the `priv`
/// of the store of server pool `pool` and call the ops with it. `registered` turns false once
/// rmr holds it no more: after an `rmr_srv_unregister` that succeeded, or one without
/// `delete` refused with -ENOENT, which rmr answers only when the pool has no store (brmr
/// unregisters under its state lock, so no other unregister of this store is in progress
/// then). `drop` unregisters first if it is still true, so the `Shared` is never freed under
/// rmr.
pub(crate) struct Registration {
    pool: Name,
    shared: Pin<KBox<Shared>>,
    registered: AtomicBool,
}

impl Registration {
    /// Registers `shared` as the store of server pool `pool` in `mode` (`rmr_srv_register`);
    /// `md` is the pool metadata in and out. On failure the store comes back with rmr's
    /// negative errno.
    pub(crate) fn register(
        pool: Name,
        shared: Pin<KBox<Shared>>,
        mode: RegMode,
        md: &mut RmrPoolMd,
    ) -> Result<Registration, (Pin<KBox<Shared>>, i32)> {
        let n = pool.as_bytes();
        let p = (&*shared as *const Shared).cast_mut().cast::<c_void>();
        // SAFETY: `n` is valid for its length and `md` for the call; `OPS` is static; `p` is
        // the pinned `Shared`, kept by the registration returned until rmr holds it no more
        // (type invariant), and handed back only if rmr refused it.
        let r = unsafe { rmr_srv_register(n.as_ptr(), n.len(), &OPS, p, mode.to_raw(), md) };
        if r < 0 {
            return Err((shared, r));
        }
        // INVARIANT: rmr holds `p` from now on, until `rmr_srv_unregister` returned.
        Ok(Registration { pool, shared, registered: AtomicBool::new(true) })
    }

    /// `rmr_srv_unregister`: 0 or a negative errno. Waits until no op of the store runs and
    /// every IO handed to it is completed; `delete` is refused (-EBUSY) while sessions are
    /// joined to the pool. Not to be called from a store op.
    pub(crate) fn unregister(&self, delete: bool) -> i32 {
        let n = self.pool.as_bytes();
        // SAFETY: `n` is valid for its length during the call.
        let r = unsafe { rmr_srv_unregister(n.as_ptr(), n.len(), delete) };
        if r >= 0 || (!delete && r == Errno::ENOENT.to_kernel()) {
            // INVARIANT: after a successful unregister rmr holds the store no more; one
            // without `delete` answered -ENOENT means the pool has no store (see above).
            self.registered.store(false, Ordering::Release);
        }
        r
    }
}

impl Deref for Registration {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.shared
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // Every path of brmr unregisters a store before dropping it; this only keeps the
        // `Shared` from being freed under rmr if one did not.
        if self.registered.load(Ordering::Acquire) {
            self.unregister(false);
        }
    }
}

// ---------------------------------------------------------------------------------------
// IOs handed to the store

/// An IO rmr handed to a store's `submit` op, owned by the store until it completes it.
///
/// # Invariants
/// `io` is an `rmr_srv_io` that rmr passed to `submit` with `shared` as `priv` and that is not
/// completed yet: rmr keeps it, and its `data` (`len` bytes of physically contiguous kernel
/// memory), valid and untouched until `rmr_srv_io_done`. `shared` is alive until then too
/// (see the module comment). Only [`SrvIo::complete`] completes it, consuming the handle.
pub(crate) struct SrvIo {
    io: NonNull<RmrSrvIo>,
    shared: NonNull<Shared>,
}

impl SrvIo {
    /// The store the IO was handed to.
    pub(crate) fn shared(&self) -> &Shared {
        // SAFETY: alive until the IO is completed, which consumes `self` (type invariant).
        unsafe { self.shared.as_ref() }
    }

    /// `RMR_IO_*` flags.
    pub(crate) fn flags(&self) -> u32 {
        // SAFETY: valid and not written by anyone while the store owns it (type invariant).
        unsafe { (*self.io.as_ptr()).flags }
    }

    /// Bytes (0 only for a pure flush).
    pub(crate) fn len(&self) -> u32 {
        // SAFETY: as for `flags`.
        unsafe { (*self.io.as_ptr()).len }
    }

    /// Byte offset in the exported space.
    pub(crate) fn offset(&self) -> u64 {
        // SAFETY: as for `flags`.
        unsafe { (*self.io.as_ptr()).offset }
    }

    /// Hands the IO back to rmr with its result (0 or a negative errno); any context.
    pub(crate) fn complete(self, err: c_int) {
        // SAFETY: `io` came from `submit` and is not completed yet (type invariant); `self` is
        // consumed, so this is the only completion.
        unsafe { rmr_srv_io_done(self.io.as_ptr(), err) };
    }

    /// Starts the IO's bio (`op` at `sector` of the store's device, over the IO's data).
    /// `Ok`: the bio's end completes the IO through `brmr_srv_bio_done` (after
    /// `server::io::bio_done`); `Err`: not started, the IO comes back with a negative errno.
    pub(crate) fn submit_bio(self, op: BioOp, preflush: bool, fua: bool, sector: u64) -> Result<(), (SrvIo, c_int)> {
        let s = self.shared();
        // SAFETY: as for `flags`.
        let (data, len) = unsafe { ((*self.io.as_ptr()).data, (*self.io.as_ptr()).len) };
        // SAFETY: `data` covers `len` bytes of physically contiguous memory until the IO is
        // completed, which happens only in `brmr_srv_bio_done` after the bio ended (type
        // invariant); `owner` and `io` are this IO's `Shared` and `rmr_srv_io`, as
        // `brmr_srv_bio_done` expects; the bio set and the device are the `Shared`'s own,
        // alive as long as it is.
        let r = unsafe {
            s.bioset.submit(
                &s.bdev,
                op,
                preflush,
                fua,
                sector,
                data,
                len,
                self.shared.as_ptr().cast(),
                self.io.as_ptr().cast(),
            )
        };
        if r < 0 {
            return Err((self, r));
        }
        Ok(())
    }
}

/// Completion of a store bio (brmr_bio.c's end_io, any context, IRQ included), after the
/// bio was freed: `server::io::bio_done`, then the IO goes back to rmr.
///
/// # Safety
/// `owner` is the `Shared` and `io` the `RmrSrvIo` that [`SrvIo::submit_bio`] gave to
/// `brmr_bio_submit`; called once per bio started.
#[no_mangle]
pub(crate) unsafe extern "C" fn brmr_srv_bio_done(owner: *mut c_void, io: *mut c_void, err: c_int) {
    let (Some(io), Some(shared)) = (NonNull::new(io.cast::<RmrSrvIo>()), NonNull::new(owner.cast::<Shared>())) else {
        return;
    };
    // INVARIANT: the IO and its store that `submit_bio` handed to the bio, not completed yet.
    let io = SrvIo { io, shared };
    io::bio_done(&io, err);
    // The `Shared` may be freed once the IO is completed: only `io` is touched from here on.
    io.complete(err);
}

// ---------------------------------------------------------------------------------------
// The ops

/// Borrows the `Shared` rmr passes back.
///
/// # Safety
/// `priv_` must be the pointer a [`Registration`] registered, passed by rmr to one of its ops:
/// the `Shared` stays alive during the op (rmr holds a reference for every op call).
unsafe fn shared<'a>(priv_: *mut c_void) -> &'a Shared {
    // SAFETY: guaranteed by the caller.
    unsafe { &*(priv_ as *const Shared) }
}

/// `io_allowed` op.
///
/// # Safety
/// See [`shared`].
unsafe extern "C" fn op_io_allowed(priv_: *mut c_void) -> bool {
    // SAFETY: rmr passes back the registered `Shared`, alive during the op.
    let s = unsafe { shared(priv_) };
    s.io_allowed()
}

/// `submit` op: 0 = `rmr_srv_io_done(io, ..)` follows; else refused, rmr keeps `io`.
///
/// # Safety
/// See [`shared`]; `io` is valid until it is completed, `io.data` is physically contiguous
/// kernel memory of `io.len` bytes. Process context.
unsafe extern "C" fn op_submit(priv_: *mut c_void, io: *mut RmrSrvIo) -> c_int {
    // SAFETY: rmr passes back the registered `Shared`, alive during the op.
    let s = unsafe { shared(priv_) };
    let Some(io) = NonNull::new(io) else {
        return Errno::EINVAL.to_kernel();
    };
    // INVARIANT: rmr hands `io` to the store of `s` and keeps it until `rmr_srv_io_done`.
    let io = SrvIo { io, shared: NonNull::from(s) };
    match io::submit(s, io) {
        Ok(()) => 0,
        // Refused: rmr keeps the IO (it is never completed).
        Err((_, r)) => r,
    }
}

/// `cmd` op: one BRMR command (bytes from the network) → its response slice.
///
/// # Safety
/// See [`shared`]; `req` readable for `req_len` bytes, `rsp` writable for `rsp_len` bytes.
unsafe extern "C" fn op_cmd(priv_: *mut c_void, req: *const u8, req_len: usize, rsp: *mut u8, rsp_len: usize) -> c_int {
    // SAFETY: rmr passes back the registered `Shared`, alive during the op.
    let s = unsafe { shared(priv_) };
    if req.is_null() || rsp.is_null() {
        return io::cmd_refused(s, req_len);
    }
    // SAFETY: rmr's contract: `req` readable for `req_len` bytes during the call.
    let req = unsafe { core::slice::from_raw_parts(req, req_len) };
    // SAFETY: rmr's contract: `rsp` writable for `rsp_len` bytes, not aliased during the call.
    let rsp = unsafe { core::slice::from_raw_parts_mut(rsp, rsp_len) };
    io::cmd(s, req, rsp)
}

/// `md_update` op.
///
/// # Safety
/// See [`shared`]; `md` readable during the call.
unsafe extern "C" fn op_md_update(priv_: *mut c_void, md: *const RmrPoolMd) -> c_int {
    // SAFETY: rmr passes back the registered `Shared`, alive during the op.
    let s = unsafe { shared(priv_) };
    // SAFETY: rmr's contract: `md` is null or points to a pool_md valid during the call.
    match unsafe { md.as_ref() } {
        Some(md) => io::md_update(s, md),
        None => Errno::EINVAL.to_kernel(),
    }
}

/// `md_write` op.
///
/// # Safety
/// See [`shared`]; `data` readable for `RMR_MD_PAGE` bytes during the call.
unsafe extern "C" fn op_md_write(priv_: *mut c_void, region: u32, index: u32, page: u32, data: *const u8) -> c_int {
    // SAFETY: rmr passes back the registered `Shared`, alive during the op.
    let s = unsafe { shared(priv_) };
    if data.is_null() {
        return Errno::EINVAL.to_kernel();
    }
    // SAFETY: rmr's contract: `data` readable for a page during the call.
    let buf = unsafe { core::slice::from_raw_parts(data, RMR_MD_PAGE) };
    io::md_write(s, region, index, page, buf)
}

/// `md_read` op.
///
/// # Safety
/// See [`shared`]; `data` writable for `RMR_MD_PAGE` bytes during the call.
unsafe extern "C" fn op_md_read(priv_: *mut c_void, region: u32, index: u32, page: u32, data: *mut u8) -> c_int {
    // SAFETY: rmr passes back the registered `Shared`, alive during the op.
    let s = unsafe { shared(priv_) };
    if data.is_null() {
        return Errno::EINVAL.to_kernel();
    }
    // SAFETY: rmr's contract: `data` writable for a page, not aliased during the call.
    let buf = unsafe { core::slice::from_raw_parts_mut(data, RMR_MD_PAGE) };
    io::md_read(s, region, index, page, buf)
}

/// `md_sync` op.
///
/// # Safety
/// See [`shared`].
unsafe extern "C" fn op_md_sync(priv_: *mut c_void, flush: bool) -> c_int {
    // SAFETY: rmr passes back the registered `Shared`, alive during the op.
    let s = unsafe { shared(priv_) };
    io::md_sync(s, flush)
}

/// `caps` op.
///
/// # Safety
/// See [`shared`].
unsafe extern "C" fn op_caps(priv_: *mut c_void) -> u32 {
    // SAFETY: rmr passes back the registered `Shared`, alive during the op.
    let s = unsafe { shared(priv_) };
    io::caps(s)
}

/// The ops every store registers; `priv` is its pinned [`Shared`].
static OPS: RmrSrvStoreOps = RmrSrvStoreOps {
    abi_version: RMR_ABI_VERSION,
    io_allowed: Some(op_io_allowed),
    md_update: Some(op_md_update),
    submit: Some(op_submit),
    cmd: Some(op_cmd),
    md_write: Some(op_md_write),
    md_read: Some(op_md_read),
    md_sync: Some(op_md_sync),
    caps: Some(op_caps),
};
