// SPDX-License-Identifier: GPL-2.0-or-later
//! The client half of the C ABI exported to brmr.ko (types in abi.rs, exports in rmr_glue.c).

use crate::abi::{RmrCltInfo, RmrCltIo, RmrLegStats};
use crate::rmr_core::errno::Errno;
use core::ffi::{c_int, c_void};

/// Opens client pool `name` for an upper layer (SPEC §4.1 `rmr_clt_open`).
///
/// # Safety
/// `name` valid for `len` bytes; `info` and `handle` valid for writes.
#[no_mangle]
pub(crate) unsafe extern "C" fn rmr_clt_open(
    _name: *const u8,
    _len: usize,
    _info: *mut RmrCltInfo,
    _handle: *mut *mut c_void,
) -> c_int {
    Errno::EOPNOTSUPP.to_kernel()
}

/// Closes a handle from `rmr_clt_open`.
///
/// # Safety
/// `handle` from a successful `rmr_clt_open`, not used afterwards.
#[no_mangle]
pub(crate) unsafe extern "C" fn rmr_clt_close(_handle: *mut c_void) {}

/// Starts one IO.
///
/// # Safety
/// `handle` open; `io` valid and untouched by the caller until its `done` runs.
#[no_mangle]
pub(crate) unsafe extern "C" fn rmr_clt_request(_handle: *mut c_void, _io: *mut RmrCltIo) -> c_int {
    Errno::EOPNOTSUPP.to_kernel()
}

/// `rmr_clt_cmd_with_rsp` (SPEC §6.9).
///
/// # Safety
/// `handle` open; `msg` valid for `msg_len` bytes; `buf` valid for `buf_len` bytes; `conf`
/// valid for a write.
#[no_mangle]
pub(crate) unsafe extern "C" fn rmr_clt_cmd_with_rsp(
    _handle: *mut c_void,
    _msg: *const u8,
    _msg_len: usize,
    _buf: *mut u8,
    _buf_len: usize,
    _size: usize,
    _conf: *mut c_int,
) -> c_int {
    Errno::EOPNOTSUPP.to_kernel()
}

/// Per-leg stats: fills up to `n` entries, returns how many.
///
/// # Safety
/// `handle` open; `out` valid for `n` writes.
#[no_mangle]
pub(crate) unsafe extern "C" fn rmr_clt_leg_stats(_handle: *mut c_void, _out: *mut RmrLegStats, _n: u32) -> c_int {
    0
}
