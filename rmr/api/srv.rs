// SPDX-License-Identifier: GPL-2.0-or-later
//! The server half of the C ABI exported to brmr.ko (types in api/abi.rs, exports in rmr_glue.c).

use crate::abi::{RmrPoolMd, RmrSrvStoreOps, RMR_ABI_VERSION};
use crate::wrap::store_ops::{take_done, StoreReg};
use crate::rmr_core::{errno::Errno, store_reg::RegMode};
use crate::server;
use core::ffi::{c_int, c_void};
use kernel::prelude::*;

/// Builds a byte slice from an ABI (pointer, length) pair.
///
/// # Safety
/// `p` must be valid for reads of `len` bytes for the duration of the call, or `len` 0.
unsafe fn bytes<'a>(p: *const u8, len: usize) -> &'a [u8] {
    if p.is_null() || len == 0 {
        return &[];
    }
    // SAFETY: guaranteed by the caller.
    unsafe { core::slice::from_raw_parts(p, len) }
}

fn ret(r: Result<c_int, Errno>) -> c_int {
    match r {
        Ok(v) => v,
        Err(e) => e.to_kernel(),
    }
}

/// The state (`SrvPoolState` raw value) of server pool `name`, its member id in
/// `*member_id`; -ENOENT if there is no such pool.
///
/// # Safety
/// `name` valid for `len` bytes; `member_id` null or valid for a write.
#[no_mangle]
pub(crate) unsafe extern "C" fn rmr_srv_pool_query(name: *const u8, len: usize, member_id: *mut u32) -> c_int {
    // SAFETY: guaranteed by the caller.
    let name = unsafe { bytes(name, len) };
    ret(server::query(name).map(|(s, m)| {
        if !member_id.is_null() {
            // SAFETY: non-null and valid for a write per the contract.
            unsafe { *member_id = m };
        }
        s.to_raw() as c_int
    }))
}

/// Registers a store with server pool `name` (`rmr_srv_register`). CREATE fills `*md` with
/// the pool's identity; ADD loads `*md` from the store's metadata and completes it. `md_update`
/// is not called during registration: brmr persists `*md` itself afterwards.
///
/// # Safety
/// `name` valid for `len` bytes; `ops` a valid ops table and `md` a valid pool_md, both
/// alive (with `priv_`) until `rmr_srv_unregister` for this pool returns.
#[no_mangle]
pub(crate) unsafe extern "C" fn rmr_srv_register(
    name: *const u8,
    len: usize,
    ops: *const RmrSrvStoreOps,
    priv_: *mut c_void,
    mode: u32,
    md: *mut RmrPoolMd,
) -> c_int {
    // SAFETY: guaranteed by the caller.
    let name = unsafe { bytes(name, len) };
    // SAFETY: `ops` and `md` are null or valid per the contract.
    let (ops_ref, md) = match unsafe { (ops.as_ref(), md.as_mut()) } {
        (Some(o), Some(m)) => (o, m),
        _ => return Errno::EINVAL.to_kernel(),
    };
    if ops_ref.abi_version != RMR_ABI_VERSION {
        pr_err!("rmr_srv_register: ABI version {} != {}\n", ops_ref.abi_version, RMR_ABI_VERSION);
        return Errno::EINVAL.to_kernel();
    }
    let Some(mode) = RegMode::from_raw(mode) else {
        return Errno::EINVAL.to_kernel();
    };
    // SAFETY: `ops` is a valid table, alive with `priv_` until unregistered (the contract).
    let store = unsafe { StoreReg::new(ops, priv_) };
    ret(server::register(name, store, mode, md).map(|()| 0))
}

/// Unregisters the store of server pool `name`; `delete` needs no session joined (-EBUSY
/// otherwise). Waits until no store op runs and no submitted IO is outstanding: afterwards rmr
/// never calls the store's ops again.
///
/// # Safety
/// `name` valid for `len` bytes. Must not be called from a store op.
#[no_mangle]
pub(crate) unsafe extern "C" fn rmr_srv_unregister(name: *const u8, len: usize, delete: bool) -> c_int {
    // SAFETY: guaranteed by the caller.
    let name = unsafe { bytes(name, len) };
    ret(server::unregister(name, delete).map(|()| 0))
}

/// Completion of an IO handed to a store's `submit` op. Callable from any context.
///
/// # Safety
/// `io` is the pointer given to `submit`, completed exactly once.
#[no_mangle]
pub(crate) unsafe extern "C" fn rmr_srv_io_done(io: *mut crate::abi::RmrSrvIo, err: c_int) {
    // SAFETY: `io` came from the store's `submit` of a server request, completed once (the
    // contract).
    if let Some((req, err)) = unsafe { take_done::<server::SrvReq>(io, err) } {
        server::io_done(req, err);
    }
}
