// SPDX-License-Identifier: GPL-2.0-or-later
//! A store's `struct bio_set` and bio submission on its backing device (brmr_bio.c holds the
//! static inlines and the end_io trampoline, which calls `brmr_srv_bio_done`, see
//! [`super::rmr_srv`]).

use super::bdev::{Bdev, File};
use core::ffi::{c_int, c_void};
use core::ptr::NonNull;
use kernel::prelude::*;

#[repr(C)]
struct BioSetRaw {
    _opaque: [u8; 0],
}

extern "C" {
    fn brmr_bioset_create() -> *mut BioSetRaw;
    fn brmr_bioset_destroy(bs: *mut BioSetRaw);
    #[allow(clippy::too_many_arguments)]
    fn brmr_bio_submit(
        f: *mut File,
        bs: *mut BioSetRaw,
        op: u32,
        preflush: bool,
        fua: bool,
        sector: u64,
        data: *mut u8,
        len: u32,
        owner: *mut c_void,
        io: *mut c_void,
    ) -> c_int;
}

/// What a data bio does (`rmr_core::ondisk::DataArea::plan` decides).
#[derive(Clone, Copy)]
pub(crate) enum BioOp {
    /// Read `len` bytes.
    Read,
    /// Write `len` bytes.
    Write,
    /// An empty preflush.
    Flush,
}

impl BioOp {
    /// The operation's number; must match the enum in brmr_bio.c.
    fn to_raw(self) -> u32 {
        match self {
            BioOp::Read => 0,
            BioOp::Write => 1,
            BioOp::Flush => 2,
        }
    }
}

/// A `struct bio_set` with room for brmr's per-bio context.
///
/// # Invariants
/// `bs` came from `brmr_bioset_create` and is destroyed only by `drop`.
pub(crate) struct BioSet {
    bs: NonNull<BioSetRaw>,
}

// SAFETY: a bio_set is used from any context (its mempools lock internally) and may be
// destroyed from any thread once no bio of it is alive.
unsafe impl Send for BioSet {}
// SAFETY: as above; allocation from it is thread-safe.
unsafe impl Sync for BioSet {}

impl BioSet {
    /// Allocates and initialises a bio set (may sleep).
    pub(crate) fn new() -> Result<BioSet> {
        // SAFETY: no arguments; returns null on failure.
        let bs = unsafe { brmr_bioset_create() };
        // INVARIANT: a non-null result is an initialised bio set, owned by the new `BioSet`.
        NonNull::new(bs).map(|bs| BioSet { bs }).ok_or(ENOMEM)
    }

    /// Starts one bio from this set on `bdev`: `len` bytes at `data` at `sector`, or an empty
    /// preflush for [`BioOp::Flush`]. 0: `brmr_srv_bio_done(owner, io, err)` follows exactly
    /// once, in any context, after the bio was freed; a negative errno: not started.
    ///
    /// # Safety
    /// `data` is physically contiguous kernel memory of `len` bytes (unless `len` is 0 or the
    /// op a flush) that stays valid until `brmr_srv_bio_done` ran; `owner` and `io` are what
    /// `brmr_srv_bio_done` expects; `self` and `bdev` stay alive until then.
    #[allow(clippy::too_many_arguments)]
    pub(in crate::wrap) unsafe fn submit(
        &self,
        bdev: &Bdev,
        op: BioOp,
        preflush: bool,
        fua: bool,
        sector: u64,
        data: *mut u8,
        len: u32,
        owner: *mut c_void,
        io: *mut c_void,
    ) -> c_int {
        // SAFETY: the device file and bio set are live (their invariants) and stay so until
        // completion, as does `data` (the caller's contract; vmalloc or invalid addresses are
        // refused in C); `owner` and `io` per the caller's contract.
        unsafe {
            brmr_bio_submit(bdev.file(), self.bs.as_ptr(), op.to_raw(), preflush, fua, sector, data, len, owner, io)
        }
    }
}

impl Drop for BioSet {
    fn drop(&mut self) {
        // SAFETY: `bs` is live (type invariant). No bio of it is alive: bios are only started by
        // `SrvIo::submit_bio` with the set of the store `Shared` that owns this one, and each
        // ends before its IO is completed to rmr, which happens before rmr lets the store go
        // (`Registration`); the store's drop also waits for its bios in flight.
        unsafe { brmr_bioset_destroy(self.bs.as_ptr()) }
    }
}
