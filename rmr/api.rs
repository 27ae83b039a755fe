// SPDX-License-Identifier: GPL-2.0-or-later
//! The C ABI exported to brmr.ko (declared in abi.rs, exported in rmr_glue.c).

use crate::abi::{RmrPoolMd, RmrSrvStoreOps, RMR_ABI_VERSION};
use crate::rmr_core::{
    errno::Errno,
    store_reg::{self, RegMode},
};
use crate::server::{self, StoreReg};
use crate::state;
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
/// the pool's identity; ADD loads `*md` from the store's metadata and completes it.
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
    let Some(mut st) = state() else {
        return Errno::ENODEV.to_kernel();
    };
    let Some(p) = server::by_name(&mut st, name) else {
        return Errno::ENOENT.to_kernel();
    };
    let out = match store_reg::register(p.view(), mode) {
        Ok(o) => o,
        Err(e) => {
            pr_err!(
                "server pool {}: store registration refused in state {} ({})\n",
                p.name.as_str(),
                p.state.name(),
                e.name()
            );
            return e.to_kernel();
        }
    };
    if mode == RegMode::Add && md.group_id != p.group_id {
        pr_err!("server pool {}: store metadata has group_id {:#x}, pool has {:#x} (EINVAL)\n",
            p.name.as_str(), md.group_id, p.group_id);
        return Errno::EINVAL.to_kernel();
    }
    if mode == RegMode::Create {
        *md = RmrPoolMd::default();
    }
    md.group_id = p.group_id;
    md.own_member_id = p.member_id;
    p.pool_md = *md;
    p.state = out.state;
    p.marked_create = out.marked_create;
    p.store = Some(StoreReg { ops, priv_ });
    pr_info!(
        "server pool {}: store registered ({}), state {}\n",
        p.name.as_str(),
        if mode == RegMode::Create { "create" } else { "add" },
        p.state.name()
    );
    0
}

/// Unregisters the store of server pool `name`; `delete` drops the maps of other members
/// and needs no session joined (-EBUSY otherwise).
///
/// # Safety
/// `name` valid for `len` bytes.
#[no_mangle]
pub(crate) unsafe extern "C" fn rmr_srv_unregister(name: *const u8, len: usize, delete: bool) -> c_int {
    // SAFETY: guaranteed by the caller.
    let name = unsafe { bytes(name, len) };
    let Some(mut st) = state() else {
        return Errno::ENODEV.to_kernel();
    };
    let Some(p) = server::by_name(&mut st, name) else {
        return Errno::ENOENT.to_kernel();
    };
    match store_reg::unregister(p.view(), delete) {
        Ok(s) => {
            p.state = s;
            p.store = None;
            p.marked_create = false;
            if delete {
                p.pool_md = RmrPoolMd::default();
            }
            pr_info!(
                "server pool {}: store {}, state {}\n",
                p.name.as_str(),
                if delete { "deleted" } else { "removed" },
                p.state.name()
            );
            0
        }
        Err(e) => {
            pr_err!("server pool {}: store unregistration refused ({})\n", p.name.as_str(), e.name());
            e.to_kernel()
        }
    }
}

/// Completion of an IO handed to a store's `submit` op. Callable from any context.
///
/// # Safety
/// `io` is the pointer given to `submit`, completed exactly once.
#[no_mangle]
pub(crate) unsafe extern "C" fn rmr_srv_io_done(_io: *mut crate::abi::RmrSrvIo, _err: c_int) {}
