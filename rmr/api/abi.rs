// SPDX-License-Identifier: GPL-2.0-or-later
//! The C ABI between rmr.ko and brmr.ko. Rust modules cannot link to each other, so rmr
//! exports `extern "C"` functions (EXPORT_SYMBOL_GPL in rmr_glue.c) and both crates include
//! this file for the `#[repr(C)]` types. Bump [`RMR_ABI_VERSION`] on any change.
//!
//! Client side (compute node, brmr's block device):
//! - `rmr_clt_open(name, len, *info, **handle) -> 0/-errno`: opens client pool `name` for an
//!   upper layer (pool → IN_USE); fills `info`; `*handle` is passed to every other call.
//! - `rmr_clt_close(handle)`: closes it (pool → JOINED). No IO may be in flight.
//! - `rmr_clt_request(handle, *io) -> 0/-errno`: starts one IO ([`RmrCltIo`]). 0: `io.done`
//!   will be called exactly once (any context, possibly before the call returns). -EAGAIN: no
//!   IO unit or transport permit right now, retry later; other errors: refused, `done` is not
//!   called.
//! - `rmr_clt_cmd_with_rsp(handle, msg, msg_len, buf, buf_len, size, *conf) -> 0/-errno`:
//!   SPEC §6.9; sleeps. `buf` must be kmalloc memory of `RMR_POOL_MAX_SESS * size` bytes.
//! - `rmr_clt_leg_stats(handle, *out, n) -> count`: per-leg state and IO counters.
//!
//! Server side (storage node, brmr's store): `rmr_srv_pool_query`, `rmr_srv_register`,
//! `rmr_srv_unregister` and, for every IO handed to [`RmrSrvStoreOps::submit`],
//! `rmr_srv_io_done(io, err)` exactly once.

use core::ffi::{c_int, c_void};

/// Version of this ABI; brmr passes it in [`RmrSrvStoreOps::abi_version`] and
/// `rmr_clt_open` checks [`RmrCltInfo::abi_version`].
pub(crate) const RMR_ABI_VERSION: u32 = 4;

/// Legs per pool (`RMR_POOL_MAX_SESS`): slices of `cmd_with_rsp`, entries of leg stats.
pub(crate) const RMR_POOL_MAX_SESS: usize = 4;

/// Registration modes of `rmr_srv_register` (`rmr_core::store_reg::RegMode` raw values).
pub(crate) const RMR_SRV_DISK_CREATE: u32 = 0;
/// Store with this pool's metadata.
pub(crate) const RMR_SRV_DISK_ADD: u32 = 1;
/// Replaced disk (disabled).
pub(crate) const RMR_SRV_DISK_REPLACE: u32 = 2;

/// IO flag: write (else read). Same values as `rmr_core::wire::IO_*`.
pub(crate) const RMR_IO_WRITE: u32 = 1 << 0;
/// IO flag: preflush before the data (alone with `len` 0: a pure flush).
pub(crate) const RMR_IO_FLUSH: u32 = 1 << 1;
/// IO flag: forced unit access.
pub(crate) const RMR_IO_FUA: u32 = 1 << 2;
/// IO flag: discard (write).
pub(crate) const RMR_IO_DISCARD: u32 = 1 << 3;

/// Persisted metadata region of `md_write`/`md_read`: the dirty map in slot `index`.
pub(crate) const RMR_MD_MAP: u32 = 0;
/// Persisted metadata region: the `last_io` record (`index` 0).
pub(crate) const RMR_MD_LAST_IO: u32 = 1;
/// Persisted metadata region: the write-intent record's witness map in slot `index`.
pub(crate) const RMR_MD_WITNESS: u32 = 2;
/// Persisted metadata region: the lost map in slot `index`.
pub(crate) const RMR_MD_LOST: u32 = 3;
/// Persisted metadata region: the write-intent record (`index` 0 `wi`, 1 `suspect`, 2 the
/// own lost map).
pub(crate) const RMR_MD_INTENT: u32 = 4;

/// Store capability (`caps` op): the backing device has a volatile write cache.
pub(crate) const RMR_STORE_VOLATILE_CACHE: u32 = 1 << 0;
/// Store capability: the store has the `RMR_MD_WITNESS`, `RMR_MD_LOST` and `RMR_MD_INTENT`
/// regions.
pub(crate) const RMR_STORE_INTENT: u32 = 1 << 1;
/// Bytes of one page of `md_write`/`md_read`.
pub(crate) const RMR_MD_PAGE: usize = 4096;

// ---------------------------------------------------------------------------------------
// Client side

/// What an upper layer learns at `rmr_clt_open`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct RmrCltInfo {
    /// In: must be [`RMR_ABI_VERSION`].
    pub(crate) abi_version: u32,
    /// Chunk size in bytes: no request may cross a chunk boundary.
    pub(crate) chunk_size: u32,
    /// IO units of the pool: the most requests in flight at once.
    pub(crate) queue_depth: u32,
    /// Largest request in bytes (smallest over the legs' transports, ≤ `chunk_size`).
    pub(crate) max_io_size: u32,
    /// Largest scatterlist of one request (smallest over the legs).
    pub(crate) max_segments: u32,
    /// Legs of the pool now.
    pub(crate) nr_legs: u32,
    /// Exported sectors the storage nodes reported at join (0 if none did).
    pub(crate) mapped_size: u64,
}

/// One block IO handed to `rmr_clt_request`. Owned by the caller until `done` is called.
#[repr(C)]
pub(crate) struct RmrCltIo {
    /// `RMR_IO_*` flags.
    pub(crate) flags: u32,
    /// Bytes (0 only for a pure flush).
    pub(crate) len: u32,
    /// Byte offset on the device; `[offset, offset + len)` lies within one chunk.
    pub(crate) offset: u64,
    /// `struct scatterlist *` with `sg_cnt` entries covering `len` bytes (null if `len` 0).
    pub(crate) sg: *mut c_void,
    /// Entries of `sg`.
    pub(crate) sg_cnt: u32,
    /// Out: bit i set = leg slot i served this IO (read: the one leg; write: legs that stored it).
    pub(crate) served: u32,
    /// Completion: 0 or a negative errno.
    pub(crate) done: Option<unsafe extern "C" fn(io: *mut RmrCltIo, err: c_int)>,
    /// The caller's pointer, untouched by rmr.
    pub(crate) priv_: *mut c_void,
}

/// Per-leg information for `rmr_clt_leg_stats`.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct RmrLegStats {
    /// Leg slot (bit index of [`RmrCltIo::served`]).
    pub(crate) slot: u32,
    /// Storage member behind the leg.
    pub(crate) member_id: u32,
    /// Reads served.
    pub(crate) reads: u64,
    /// Writes stored.
    pub(crate) writes: u64,
    /// Session name, NUL-padded.
    pub(crate) name: [u8; 64],
    /// Leg state name (`normal`, ...), NUL-padded.
    pub(crate) state: [u8; 16],
}

// ---------------------------------------------------------------------------------------
// Server side

/// One IO rmr hands to the store. Owned by rmr; valid until `rmr_srv_io_done(io, ..)`.
#[repr(C)]
pub(crate) struct RmrSrvIo {
    /// `RMR_IO_*` flags.
    pub(crate) flags: u32,
    /// Bytes (0 only for a pure flush).
    pub(crate) len: u32,
    /// Byte offset in the exported space (the store adds its metadata area).
    pub(crate) offset: u64,
    /// Physically contiguous kernel memory of `len` bytes (read: filled by the store).
    pub(crate) data: *mut u8,
    /// rmr's pointer, untouched by the store.
    pub(crate) rmr_priv: *mut c_void,
}

/// Backend operations of a registered store (`brmr_srv_store_ops`).
#[repr(C)]
pub(crate) struct RmrSrvStoreOps {
    /// Must be [`RMR_ABI_VERSION`].
    pub(crate) abi_version: u32,
    /// True iff the store is OPEN and MAPPED.
    pub(crate) io_allowed: Option<unsafe extern "C" fn(priv_: *mut c_void) -> bool>,
    /// Persist the pool metadata given (the server pool's `pool_md` changed). May sleep.
    pub(crate) md_update: Option<unsafe extern "C" fn(priv_: *mut c_void, md: *const RmrPoolMd) -> c_int>,
    /// Start `io` on the backing device: 0 = started, `rmr_srv_io_done` follows exactly once;
    /// negative errno = not started (no completion). May sleep (called from process context).
    pub(crate) submit: Option<unsafe extern "C" fn(priv_: *mut c_void, io: *mut RmrSrvIo) -> c_int>,
    /// Handle an upper-layer (BRMR) command of `req_len` bytes, writing the response slice
    /// (at most `rsp_len` bytes) to `rsp`: bytes written or a negative errno. May sleep.
    pub(crate) cmd: Option<
        unsafe extern "C" fn(priv_: *mut c_void, req: *const u8, req_len: usize, rsp: *mut u8, rsp_len: usize) -> c_int,
    >,
    /// Write [`RMR_MD_PAGE`] bytes at `data` to page `page` of metadata region `region`
    /// (`RMR_MD_*`) number `index`; durable only after `md_sync`. -EINVAL outside the
    /// store's area. May sleep.
    pub(crate) md_write:
        Option<unsafe extern "C" fn(priv_: *mut c_void, region: u32, index: u32, page: u32, data: *const u8) -> c_int>,
    /// Read such a page into `data` (for `add_store mode=add`). May sleep.
    pub(crate) md_read:
        Option<unsafe extern "C" fn(priv_: *mut c_void, region: u32, index: u32, page: u32, data: *mut u8) -> c_int>,
    /// Make every page written so far reach the device; with `flush` also its volatile cache.
    /// May sleep.
    pub(crate) md_sync: Option<unsafe extern "C" fn(priv_: *mut c_void, flush: bool) -> c_int>,
    /// The store's `RMR_STORE_*` capabilities (asked at registration). May sleep.
    pub(crate) caps: Option<unsafe extern "C" fn(priv_: *mut c_void) -> u32>,
}

/// One `srv_md` slot.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct RmrSrvMd {
    /// Member id, 0 = free slot.
    pub(crate) member_id: u32,
    /// `discard_entries` and future flags.
    pub(crate) flags: u32,
}

/// `struct rmr_pool_md` as it crosses the ABI.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct RmrPoolMd {
    /// jhash of the pool name.
    pub(crate) group_id: u32,
    /// Chunk size in bytes (0 until a client joined).
    pub(crate) chunk_size: u32,
    /// Client queue depth (0 until a client joined).
    pub(crate) queue_depth: u32,
    /// The storage node's member id.
    pub(crate) own_member_id: u32,
    /// Map version.
    pub(crate) map_ver: u64,
    /// Exported sectors of the store (set by brmr at registration).
    pub(crate) mapped_size: u64,
    /// Storage members.
    pub(crate) srv_md: [RmrSrvMd; 4],
    /// Member whose dirty map is in persisted map slot `i` (0 = free).
    pub(crate) map_slots: [u32; 4],
}
