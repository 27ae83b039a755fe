// SPDX-License-Identifier: GPL-2.0-or-later
//! Scatterlist tables of the client IO path: one per IO unit and leg slot, preallocated, so
//! that every leg's RTRS request gets its own list (issue 12). RTRS maps the list it is
//! given with `ib_dma_map_sg` for its own device and writes the DMA addresses into it; with
//! two HCAs, an IOMMU or swiotlb, two legs sharing the caller's list would overwrite each
//! other's mappings and one completion would unmap what the other HCA still reads.
//!
//! Also the hooks of the `debug_sg_audit` module parameter (rmr_glue.c), which records the
//! list of every in-flight IO request and counts a list handed out twice
//! (`sg_audit_requests`, `sg_audit_shared`).

use core::ffi::{c_int, c_void};
use kernel::alloc::{flags::GFP_KERNEL, KVVec};
use kernel::bindings;
use kernel::error::{code::EINVAL, Result};
use kernel::types::Opaque;

extern "C" {
    fn rmr_sg_copy(dst: *mut bindings::scatterlist, cap: u32, src: *mut bindings::scatterlist, nents: u32, len: u32) -> c_int;
    fn rmr_sg_audit_submit(sg: *const c_void) -> bool;
    fn rmr_sg_audit_done(sg: *const c_void);
}

/// Entries of each table: the most segments an IO may have (the queue's max_segments is
/// capped at this, see `CltPool::info`). 32 entries hold a 128 KiB IO of 4 KiB pages.
pub(crate) const SEGS: u32 = 32;

/// `n` scatterlist tables of [`SEGS`] entries each.
///
/// # Invariants
/// `ents` holds `n * SEGS` entries and is never reallocated. Table `k` is used by one owner
/// at a time (the IO unit slot `k`, owned by whoever set the unit busy under the pool lock),
/// and the C side touches it only between [`SgTables::copy_into`] and that request's
/// confirmation.
pub(crate) struct SgTables {
    ents: KVVec<Opaque<bindings::scatterlist>>,
}

// SAFETY: the entries are plain data (page link, offset, length, DMA address); by the type
// invariant each table has one owner at a time, so sharing the container between threads
// never lets two of them write the same entry.
unsafe impl Sync for SgTables {}
// SAFETY: as above; nothing in it is tied to a thread.
unsafe impl Send for SgTables {}

impl SgTables {
    /// `n` tables (kvmalloc: 1 MiB for 512 units of 2 legs).
    pub(crate) fn new(n: usize) -> Result<SgTables> {
        let len = n.checked_mul(SEGS as usize).ok_or(EINVAL)?;
        let mut ents = KVVec::with_capacity(len, GFP_KERNEL)?;
        for _ in 0..len {
            ents.push(Opaque::uninit(), GFP_KERNEL)?;
        }
        Ok(SgTables { ents })
    }

    /// Copies the caller's list (`nents` entries at `src`: page, offset, length) into table
    /// `k` and returns it with its entry count; the DMA fields start zeroed. EINVAL if `k` is
    /// out of range, `src` is null, `nents` is 0 or exceeds [`SEGS`], or the entries hold
    /// fewer than `len` bytes.
    ///
    /// # Safety
    /// `src` points to a valid list of at least `nents` entries; the caller owns table `k`
    /// (its previous request, if any, was confirmed).
    pub(crate) unsafe fn copy_into(&self, k: usize, src: *mut c_void, nents: u32, len: u32) -> Result<(*mut c_void, u32)> {
        let start = k.checked_mul(SEGS as usize).ok_or(EINVAL)?;
        let dst = self.ents.get(start).ok_or(EINVAL)?.get();
        if src.is_null() || nents == 0 || nents > SEGS {
            return Err(EINVAL);
        }
        // SAFETY: `dst` starts `SEGS` entries owned by the caller (type invariant and the
        // contract), `src` per the contract; the helper writes at most `nents <= SEGS`.
        let r = unsafe { rmr_sg_copy(dst, SEGS, src.cast(), nents, len) };
        if r < 0 {
            return Err(EINVAL);
        }
        Ok((dst.cast(), nents))
    }
}

/// `debug_sg_audit`: records `sg` as handed to an in-flight request; true if it was recorded
/// (then [`audit_done`] must follow once the request is confirmed or was not started).
pub(crate) fn audit_submit(sg: *const c_void) -> bool {
    // SAFETY: the helper only compares and stores the pointer value under its own lock.
    unsafe { rmr_sg_audit_submit(sg) }
}

/// The request that was given `sg` is over.
pub(crate) fn audit_done(sg: *const c_void) {
    // SAFETY: as for `audit_submit`.
    unsafe { rmr_sg_audit_done(sg) }
}
