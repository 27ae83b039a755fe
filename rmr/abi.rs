// SPDX-License-Identifier: GPL-2.0-or-later
//! The C ABI between rmr.ko and brmr.ko. Rust modules cannot link to each other, so rmr
//! exports `extern "C"` functions (EXPORT_SYMBOL_GPL in rmr_glue.c) and both crates include
//! this file for the `#[repr(C)]` types. Bump [`RMR_ABI_VERSION`] on any change.

use core::ffi::{c_int, c_void};

/// Version of this ABI; brmr passes it in [`RmrSrvStoreOps::abi_version`].
pub(crate) const RMR_ABI_VERSION: u32 = 1;

/// Registration modes of `rmr_srv_register` (`rmr_core::store_reg::RegMode` raw values).
pub(crate) const RMR_SRV_DISK_CREATE: u32 = 0;
/// Store with this pool's metadata.
pub(crate) const RMR_SRV_DISK_ADD: u32 = 1;
/// Replaced disk (disabled).
pub(crate) const RMR_SRV_DISK_REPLACE: u32 = 2;

/// Backend operations of a registered store (`brmr_srv_store_ops`).
#[repr(C)]
pub(crate) struct RmrSrvStoreOps {
    /// Must be [`RMR_ABI_VERSION`].
    pub(crate) abi_version: u32,
    /// True iff the store is OPEN and MAPPED.
    pub(crate) io_allowed: Option<unsafe extern "C" fn(priv_: *mut c_void) -> bool>,
    /// Persist the pool metadata given (the server pool's `pool_md` changed).
    pub(crate) md_update: Option<unsafe extern "C" fn(priv_: *mut c_void, md: *const RmrPoolMd) -> c_int>,
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
    /// Storage members.
    pub(crate) srv_md: [RmrSrvMd; 4],
}
