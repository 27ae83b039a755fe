// SPDX-License-Identifier: GPL-2.0-or-later
//! An exclusively opened backing block device: the metadata IO on it (brmr_glue.c helpers),
//! its flush and write-zeroes (brmr_bio.c), and the file that bios are submitted to
//! ([`super::bioset`]).

use core::ffi::c_void;
use core::ptr::NonNull;
use kernel::ffi::c_char;
use kernel::prelude::*;

/// `struct file` of an opened block device (opaque).
#[repr(C)]
pub(crate) struct File {
    _opaque: [u8; 0],
}

extern "C" {
    fn brmr_bdev_open(path: *const c_char, holder: *mut c_void, err: *mut i32) -> *mut File;
    fn brmr_bdev_close(f: *mut File);
    fn brmr_bdev_sectors(f: *mut File) -> u64;
    fn brmr_bdev_lbs(f: *mut File) -> u32;
    fn brmr_bdev_write_cache(f: *mut File) -> bool;
    fn brmr_bdev_name(f: *mut File, buf: *mut c_char, len: usize) -> i32;
    fn brmr_md_read(f: *mut File, buf: *mut c_void, len: usize, pos: u64) -> isize;
    fn brmr_md_write(f: *mut File, buf: *const c_void, len: usize, pos: u64) -> isize;
    fn brmr_md_sync(f: *mut File) -> i32;
    fn brmr_md_writeback(f: *mut File) -> i32;
    fn brmr_zeroout(f: *mut File, sector: u64, nr_sects: u64) -> i32;
    fn brmr_bdev_flush(f: *mut File) -> i32;
}

/// A block device opened read-write and claimed exclusively.
///
/// # Invariants
/// `file` is a bdev file returned by `bdev_file_open_by_path` and not yet released.
pub(crate) struct Bdev {
    file: NonNull<File>,
}

// SAFETY: a bdev file may be used and released from any thread.
unsafe impl Send for Bdev {}
// SAFETY: every method only passes the file to kernel functions that may run concurrently on
// one file (kernel_read/kernel_write at explicit positions, vfs_fsync, bio submission).
unsafe impl Sync for Bdev {}

impl Bdev {
    /// Opens `path` (NUL-terminated) claiming it for `holder`; -EBUSY if another holder has it.
    pub(crate) fn open(path: &kernel::str::CStr, holder: *mut c_void) -> Result<Bdev> {
        let mut e: i32 = 0;
        // SAFETY: `path` is NUL-terminated; `holder` is only compared by the block layer.
        let f = unsafe { brmr_bdev_open(path.as_char_ptr(), holder, &mut e) };
        match NonNull::new(f) {
            // INVARIANT: a non-null result is an opened bdev file, owned by the new `Bdev`.
            Some(file) => Ok(Bdev { file }),
            None => Err(Error::from_errno(if e < 0 { e } else { -5 })),
        }
    }

    /// The bdev file, for bio submission (brmr_bio.c); valid while `self` is.
    pub(in crate::wrap) fn file(&self) -> *mut File {
        self.file.as_ptr()
    }

    /// Capacity in 512-byte sectors.
    pub(crate) fn sectors(&self) -> u64 {
        // SAFETY: `file` is a live bdev file (type invariant).
        unsafe { brmr_bdev_sectors(self.file.as_ptr()) }
    }

    /// Logical block size in bytes.
    pub(crate) fn logical_block_size(&self) -> u32 {
        // SAFETY: as above.
        unsafe { brmr_bdev_lbs(self.file.as_ptr()) }
    }

    /// Whether the device has a volatile write cache (`write_cache` "write back").
    pub(crate) fn write_cache(&self) -> bool {
        // SAFETY: as above.
        unsafe { brmr_bdev_write_cache(self.file.as_ptr()) }
    }

    /// The kernel's name of the device (`sda`, `sda1`...) into `buf`; returns its length.
    pub(crate) fn name(&self, buf: &mut [u8]) -> usize {
        // SAFETY: `file` is live; `buf` is writable for its length (snprintf NUL-terminates).
        let n = unsafe { brmr_bdev_name(self.file.as_ptr(), buf.as_mut_ptr(), buf.len()) };
        usize::try_from(n).unwrap_or(0).min(buf.len().saturating_sub(1))
    }

    /// Reads exactly `buf.len()` bytes at byte `pos`; a short read is -EIO.
    pub(crate) fn read_at(&self, buf: &mut [u8], pos: u64) -> Result {
        // SAFETY: `file` is live; `buf` is writable for its length.
        let n = unsafe { brmr_md_read(self.file.as_ptr(), buf.as_mut_ptr().cast(), buf.len(), pos) };
        Self::check(n, buf.len())
    }

    /// Writes `buf` at byte `pos` (page cache; see [`Bdev::sync`]).
    pub(crate) fn write_at(&self, buf: &[u8], pos: u64) -> Result {
        // SAFETY: `file` is live; `buf` is readable for its length.
        let n = unsafe { brmr_md_write(self.file.as_ptr(), buf.as_ptr().cast(), buf.len(), pos) };
        Self::check(n, buf.len())
    }

    /// Writes back and flushes the device cache.
    pub(crate) fn sync(&self) -> Result {
        // SAFETY: `file` is live.
        kernel::error::to_result(unsafe { brmr_md_sync(self.file.as_ptr()) })
    }

    /// Writes back the page cache and waits, without flushing the device cache.
    pub(crate) fn writeback(&self) -> Result {
        // SAFETY: `file` is live.
        kernel::error::to_result(unsafe { brmr_md_writeback(self.file.as_ptr()) })
    }

    /// Zeroes `nr_sects` sectors at `sector`: the device's write-zeroes (unmapping allowed)
    /// or, without it, zero pages written. Sleeps.
    pub(crate) fn zeroout(&self, sector: u64, nr_sects: u64) -> Result {
        // SAFETY: `file` is live.
        kernel::error::to_result(unsafe { brmr_zeroout(self.file.as_ptr(), sector, nr_sects) })
    }

    /// Flushes the device's volatile cache (a no-op without one). Sleeps.
    pub(crate) fn flush(&self) -> Result {
        // SAFETY: `file` is live.
        kernel::error::to_result(unsafe { brmr_bdev_flush(self.file.as_ptr()) })
    }

    fn check(n: isize, want: usize) -> Result {
        if n < 0 {
            Err(Error::from_errno(n as i32))
        } else if n as usize != want {
            Err(EIO)
        } else {
            Ok(())
        }
    }
}

impl Drop for Bdev {
    fn drop(&mut self) {
        // SAFETY: `file` is live and owned by us; it is not used afterwards.
        unsafe { brmr_bdev_close(self.file.as_ptr()) }
    }
}
