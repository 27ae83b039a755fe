// SPDX-License-Identifier: GPL-2.0-or-later
//! The client half of the C ABI exported to brmr.ko (types in api/abi.rs, exports in rmr_glue.c).
//! A handle is a leaked `Arc<CltPool>` reference, taken back by `rmr_clt_close`.

use crate::abi::{RmrCltInfo, RmrCltIo, RmrLegStats, RMR_ABI_VERSION, RMR_POOL_MAX_SESS};
use crate::client::{self, CltPool};
use crate::rmr_core::errno::Errno;
use core::ffi::{c_int, c_void};
use kernel::prelude::*;
use crate::wrap::clt_io::UpperIo;
use kernel::sync::{Arc, ArcBorrow};

extern "C" {
    fn rmr_is_vmalloc(p: *const c_void) -> bool;
}

/// Builds a byte slice from an ABI (pointer, length) pair.
///
/// # Safety
/// `p` valid for reads of `len` bytes during the call, or `len` 0.
unsafe fn bytes<'a>(p: *const u8, len: usize) -> &'a [u8] {
    if p.is_null() || len == 0 {
        return &[];
    }
    // SAFETY: guaranteed by the caller.
    unsafe { core::slice::from_raw_parts(p, len) }
}

/// The pool behind a handle.
///
/// # Safety
/// `h` is a handle from `rmr_clt_open` not closed yet.
unsafe fn pool<'a>(h: *mut c_void) -> Option<ArcBorrow<'a, CltPool>> {
    if h.is_null() {
        return None;
    }
    // SAFETY: a live `Arc<CltPool>` reference (from `Arc::into_raw`) per the contract, which
    // `rmr_clt_close` takes back only after the caller's last use.
    Some(unsafe { ArcBorrow::from_raw(h as *const CltPool) })
}

/// Opens client pool `name` for an upper layer (SPEC §4.1 `rmr_clt_open`).
///
/// # Safety
/// `name` valid for `len` bytes; `info` valid for reads and writes; `handle` valid for a write.
#[no_mangle]
pub(crate) unsafe extern "C" fn rmr_clt_open(
    name: *const u8,
    len: usize,
    info: *mut RmrCltInfo,
    handle: *mut *mut c_void,
) -> c_int {
    // SAFETY: per the contract.
    let (name, info) = unsafe { (bytes(name, len), info.as_mut()) };
    let Some(info) = info else { return Errno::EINVAL.to_kernel() };
    if handle.is_null() || info.abi_version != RMR_ABI_VERSION {
        pr_err!("rmr_clt_open: ABI version {} != {} (EINVAL)\n", info.abi_version, RMR_ABI_VERSION);
        return Errno::EINVAL.to_kernel();
    }
    match client::open(name, false) {
        Ok(p) => {
            *info = p.info();
            // SAFETY: `handle` is valid for a write per the contract.
            unsafe { *handle = Arc::into_raw(p).cast_mut().cast() };
            0
        }
        Err(e) => {
            pr_err!("rmr_clt_open: pool {}: {}\n", crate::sysfs::BStrDisplay(name), e.name());
            e.to_kernel()
        }
    }
}

/// Closes a handle from `rmr_clt_open`.
///
/// # Safety
/// `handle` from a successful `rmr_clt_open`, no IO in flight, not used afterwards.
#[no_mangle]
pub(crate) unsafe extern "C" fn rmr_clt_close(handle: *mut c_void) {
    if handle.is_null() {
        return;
    }
    // SAFETY: takes back the reference leaked by `rmr_clt_open`.
    let p = unsafe { Arc::from_raw(handle as *const CltPool) };
    p.close();
}

/// Starts one IO.
///
/// # Safety
/// `handle` open; `io` valid and untouched by the caller until its `done` runs.
#[no_mangle]
pub(crate) unsafe extern "C" fn rmr_clt_request(handle: *mut c_void, io: *mut RmrCltIo) -> c_int {
    // SAFETY: per the contract.
    let Some(p) = (unsafe { pool(handle) }) else { return Errno::EINVAL.to_kernel() };
    // SAFETY: per the contract: the IO is rmr's until its `done` runs, or until this call
    // returns an error (`into_raw` below).
    let Some(io) = (unsafe { UpperIo::from_raw(io) }) else { return Errno::EINVAL.to_kernel() };
    match CltPool::request(p, io) {
        Ok(()) => 0,
        Err((io, e)) => {
            let _ = io.into_raw();
            e.to_kernel()
        }
    }
}

/// `rmr_clt_cmd_with_rsp` (SPEC §6.9): 0 and `*conf` on delivery, else a negative errno.
///
/// # Safety
/// `handle` open; `msg` valid for `msg_len` bytes; `buf` valid for `buf_len` bytes; `conf`
/// valid for a write.
#[no_mangle]
pub(crate) unsafe extern "C" fn rmr_clt_cmd_with_rsp(
    handle: *mut c_void,
    msg: *const u8,
    msg_len: usize,
    buf: *mut u8,
    buf_len: usize,
    size: usize,
    conf: *mut c_int,
) -> c_int {
    // SAFETY: per the contract.
    let Some(p) = (unsafe { pool(handle) }) else { return Errno::EINVAL.to_kernel() };
    // SAFETY: an address check only.
    if buf.is_null() || conf.is_null() || unsafe { rmr_is_vmalloc(buf as *const c_void) } {
        pr_err!("client pool {}: cmd_with_rsp: buffer is not kmalloc memory (EINVAL)\n", p.name.as_str());
        return Errno::EINVAL.to_kernel();
    }
    if size == 0 || RMR_POOL_MAX_SESS.checked_mul(size) != Some(buf_len) {
        pr_err!("client pool {}: cmd_with_rsp: buf_len {} != {} x {} (EINVAL)\n", p.name.as_str(), buf_len, RMR_POOL_MAX_SESS, size);
        return Errno::EINVAL.to_kernel();
    }
    // SAFETY: per the contract.
    let (msg, out) = unsafe { (bytes(msg, msg_len), core::slice::from_raw_parts_mut(buf, buf_len)) };
    match p.cmd_with_rsp(msg, out, size) {
        Ok(c) => {
            // SAFETY: valid for a write per the contract.
            unsafe { *conf = c };
            0
        }
        Err(e) => e.to_kernel(),
    }
}

/// Per-leg stats: fills up to `n` entries, returns how many.
///
/// # Safety
/// `handle` open; `out` valid for `n` writes.
#[no_mangle]
pub(crate) unsafe extern "C" fn rmr_clt_leg_stats(handle: *mut c_void, out: *mut RmrLegStats, n: u32) -> c_int {
    // SAFETY: per the contract.
    let Some(p) = (unsafe { pool(handle) }) else { return Errno::EINVAL.to_kernel() };
    if out.is_null() {
        return Errno::EINVAL.to_kernel();
    }
    // SAFETY: `out` valid for `n` writes; `RmrLegStats` is plain data, written before read.
    let out = unsafe { core::slice::from_raw_parts_mut(out, n as usize) };
    p.leg_stats(out) as c_int
}
