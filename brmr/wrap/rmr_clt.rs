// SPDX-License-Identifier: GPL-2.0-or-later
//! rmr's client C ABI as brmr's block devices use it (rmr/api/abi.rs): a pool handle, its BRMR
//! commands and leg stats. Its IOs are started by [`super::blk_mq`].

use crate::abi::{self, RmrCltInfo, RmrCltIo, RmrLegStats, RMR_POOL_MAX_SESS};
use core::ffi::{c_int, c_void};
use kernel::prelude::*;

extern "C" {
    fn rmr_clt_open(name: *const u8, len: usize, info: *mut RmrCltInfo, handle: *mut *mut c_void) -> c_int;
    fn rmr_clt_close(handle: *mut c_void);
    fn rmr_clt_cmd_with_rsp(
        handle: *mut c_void,
        msg: *const u8,
        msg_len: usize,
        buf: *mut u8,
        buf_len: usize,
        size: usize,
        conf: *mut c_int,
    ) -> c_int;
    fn rmr_clt_leg_stats(handle: *mut c_void, out: *mut RmrLegStats, n: u32) -> c_int;
    fn rmr_clt_request(handle: *mut c_void, io: *mut RmrCltIo) -> c_int;
}

/// An rmr client pool opened for a block device (pool IN_USE).
///
/// # Invariants
/// `ptr` came from a successful `rmr_clt_open` and is closed exactly once, in `drop`.
pub(crate) struct Pool {
    ptr: *mut c_void,
}

// SAFETY: the handle is an opaque token rmr accepts from any thread.
unsafe impl Send for Pool {}
// SAFETY: rmr's client functions may run concurrently on one handle (IOs from every CPU,
// commands and leg stats from sysfs); `Pool` has no state of its own.
unsafe impl Sync for Pool {}

impl Pool {
    /// Opens client pool `name` (`rmr_clt_open`); returns the handle and the pool's
    /// parameters.
    pub(crate) fn open(name: &[u8]) -> Result<(Pool, RmrCltInfo)> {
        let mut info = RmrCltInfo { abi_version: abi::RMR_ABI_VERSION, ..Default::default() };
        let mut h: *mut c_void = core::ptr::null_mut();
        // SAFETY: `name` is valid for its length, `info` and `h` for writes, during the call.
        let r = unsafe { rmr_clt_open(name.as_ptr(), name.len(), &mut info, &mut h) };
        if r < 0 {
            return Err(Error::from_errno(r));
        }
        // INVARIANT: `h` is the handle of the successful open, closed by the new `Pool`.
        Ok((Pool { ptr: h }, info))
    }

    /// Sends `msg` to every leg and collects the answers, one slice of `size` bytes per leg
    /// slot in `buf` (`rmr_clt_cmd_with_rsp`, SPEC §6.9; sleeps). `buf` is kmalloc memory
    /// (a `KVec`) of `RMR_POOL_MAX_SESS * size` bytes (rmr checks it). Returns `conf`.
    pub(crate) fn cmd_with_rsp(&self, msg: &[u8], buf: &mut KVec<u8>, size: usize) -> Result<i32> {
        let mut conf: c_int = 0;
        // SAFETY: `self.ptr` is open (type invariant); `msg` and `buf` are valid for their
        // lengths and `conf` for a write during the call.
        let r = unsafe {
            rmr_clt_cmd_with_rsp(self.ptr, msg.as_ptr(), msg.len(), buf.as_mut_ptr(), buf.len(), size, &mut conf)
        };
        if r < 0 {
            return Err(Error::from_errno(r));
        }
        Ok(conf)
    }

    /// Per-leg state and counters; returns how many entries of `out` are filled.
    pub(crate) fn leg_stats(&self, out: &mut [RmrLegStats; RMR_POOL_MAX_SESS]) -> usize {
        // SAFETY: `self.ptr` is open; `out` is valid for RMR_POOL_MAX_SESS writes.
        let r = unsafe { rmr_clt_leg_stats(self.ptr, out.as_mut_ptr(), RMR_POOL_MAX_SESS as u32) };
        usize::try_from(r).unwrap_or(0).min(RMR_POOL_MAX_SESS)
    }

    /// Starts one IO (`rmr_clt_request`): 0 = `io.done` will be called exactly once (any
    /// context, possibly before this returns); -EAGAIN: no IO unit or permit now; other
    /// errors: refused, `done` is not called.
    ///
    /// # Safety
    /// `io` is valid and untouched by the caller until its `done` runs (if this returns 0).
    pub(in crate::wrap) unsafe fn request(&self, io: *mut RmrCltIo) -> c_int {
        // SAFETY: `self.ptr` is open (type invariant); `io` per the caller's contract.
        unsafe { rmr_clt_request(self.ptr, io) }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // SAFETY: open (type invariant), closed once here; no IO is in flight: IOs are only
        // started by a `blk_mq::Disk` that owns the pool and drains its requests before it
        // gives the pool back.
        unsafe { rmr_clt_close(self.ptr) }
    }
}
