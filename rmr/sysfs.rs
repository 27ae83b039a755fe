// SPDX-License-Identifier: GPL-2.0-or-later
//! sysfs plumbing shared by rmr.ko and brmr.ko: the Rust side of rmr/sysfs_glue.h.
//! Each module's C file provides `glue_init`, `glue_exit` and `glue_dir` for its classes.

use kernel::ffi::c_char;
use core::ptr::NonNull;
use kernel::error::{to_result, Error};
use kernel::prelude::*;
use kernel::fmt;
use kernel::str::CString;

#[repr(C)]
pub(crate) struct GlueKobj {
    _opaque: [u8; 0],
}

extern "C" {
    fn glue_init() -> i32;
    fn glue_exit();
    fn glue_dir(which: u32) -> *mut kernel::bindings::kobject;
    fn glue_kobj_add(
        parent: *mut kernel::bindings::kobject,
        name: *const c_char,
        kind: u32,
        id: u64,
    ) -> *mut GlueKobj;
    fn glue_kobj_of(o: *mut GlueKobj) -> *mut kernel::bindings::kobject;
    fn glue_kobj_del(o: *mut GlueKobj);
}

/// Registers the module's two classes with their `ctl` and container devices.
pub(crate) fn init() -> Result {
    // SAFETY: called once from module init; the callbacks it enables find the state installed.
    to_result(unsafe { glue_init() })
}

/// Unregisters the classes; every directory below must have been removed.
pub(crate) fn exit() {
    // SAFETY: called once from module exit after `init` succeeded.
    unsafe { glue_exit() }
}

/// A sysfs directory owned by Rust.
///
/// # Invariants
/// `ptr` is a live `struct glue_kobj` created by `glue_kobj_add` and not yet deleted;
/// `Dir` is its only owner.
pub(crate) struct Dir {
    ptr: NonNull<GlueKobj>,
}

// SAFETY: the kobject is reference counted by the kernel and may be used and dropped from
// any thread; `Dir` holds no thread-bound state.
unsafe impl Send for Dir {}

// SAFETY: `Dir` exposes no method through `&self` that changes the kobject, and the kernel
// functions used on a shared `Dir` (child creation) take their own locks.
unsafe impl Sync for Dir {}

/// Where a new directory goes.
pub(crate) enum Parent<'a> {
    /// One of the module's fixed directories (`glue_dir(which)` in its C file).
    Top(u32),
    /// Below another directory.
    Dir(&'a Dir),
}

impl Dir {
    /// Creates `parent/name` with the attribute files of `kind`; `id` comes back in callbacks.
    pub(crate) fn new(parent: Parent<'_>, name: &[u8], kind: u32, id: u64) -> Result<Dir> {
        let cname = CString::try_from_fmt(fmt!("{}", BStrDisplay(name)))?;
        let parent_ptr = match parent {
            // SAFETY: the class devices live from `init` to `exit`, which bracket all callers.
            Parent::Top(which) => unsafe { glue_dir(which) },
            // SAFETY: `d.ptr` is live by the type invariant.
            Parent::Dir(d) => unsafe { glue_kobj_of(d.ptr.as_ptr()) },
        };
        // SAFETY: `parent_ptr` is a live kobject, `cname` a NUL-terminated string.
        let p = unsafe { glue_kobj_add(parent_ptr, cname.as_char_ptr(), kind, id) };
        let p = kernel::error::from_err_ptr(p)?;
        NonNull::new(p).map(|ptr| Dir { ptr }).ok_or(ENOMEM)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        // SAFETY: `ptr` is live and owned by us (type invariant); it is not used afterwards.
        unsafe { glue_kobj_del(self.ptr.as_ptr()) }
    }
}

/// Displays bytes that are known to be printable ASCII.
pub(crate) struct BStrDisplay<'a>(pub(crate) &'a [u8]);

impl core::fmt::Display for BStrDisplay<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for b in self.0 {
            let c = if b.is_ascii_graphic() || *b == b' ' { *b as char } else { '?' };
            core::fmt::Write::write_char(f, c)?;
        }
        Ok(())
    }
}

/// Writes formatted text into a sysfs page, truncating at its end.
pub(crate) struct PageWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> PageWriter<'a> {
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        PageWriter { buf, len: 0 }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl core::fmt::Write for PageWriter<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let room = self.buf.len().saturating_sub(self.len);
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Turns a raw attribute name from C into bytes.
///
/// # Safety
/// `attr` must be a NUL-terminated string valid for the duration of the call.
pub(crate) unsafe fn attr_name<'a>(attr: *const c_char) -> &'a [u8] {
    // SAFETY: guaranteed by the caller.
    unsafe { kernel::str::CStr::from_char_ptr(attr) }.as_bytes()
}

/// The symbolic name of a kernel error, for log lines (`EBUSY`, ...).
#[allow(dead_code)]
pub(crate) fn ename(e: Error) -> &'static str {
    match crate::rmr_core::errno::Errno::from_raw(-e.to_errno()) {
        Some(x) => x.name(),
        None => "error",
    }
}

/// Runs a module's show handler on a sysfs page: returns the bytes written or -errno.
///
/// # Safety
/// `attr` must be a NUL-terminated attribute name and `buf` a writable page of `PAGE_SIZE`
/// bytes, both valid for the call, as sysfs passes them.
pub(crate) unsafe fn show(
    attr: *const c_char,
    buf: *mut u8,
    f: impl FnOnce(&[u8], &mut PageWriter<'_>) -> Result,
) -> isize {
    // SAFETY: guaranteed by the caller.
    let name = unsafe { attr_name(attr) };
    // SAFETY: guaranteed by the caller: a page, ours for the call.
    let page = unsafe { core::slice::from_raw_parts_mut(buf, kernel::page::PAGE_SIZE) };
    let mut w = PageWriter::new(page);
    match f(name, &mut w) {
        Ok(()) => w.len() as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// Runs a module's store handler on a sysfs write: returns `count` or -errno.
///
/// # Safety
/// `attr` must be a NUL-terminated attribute name and `buf` valid for reads of `count` bytes,
/// both for the call, as sysfs passes them.
pub(crate) unsafe fn store(
    attr: *const c_char,
    buf: *const u8,
    count: usize,
    f: impl FnOnce(&[u8], &[u8]) -> Result,
) -> isize {
    // SAFETY: guaranteed by the caller.
    let name = unsafe { attr_name(attr) };
    // SAFETY: guaranteed by the caller.
    let input = unsafe { core::slice::from_raw_parts(buf, count) };
    match f(name, input) {
        Ok(()) => count as isize,
        Err(e) => e.to_errno() as isize,
    }
}
