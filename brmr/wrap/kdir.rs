// SPDX-License-Identifier: GPL-2.0-or-later
//! sysfs directories whose kobject can be the source of a symlink (`ctl/devices/brmrN/block`,
//! see [`super::blk_mq`]); rmr/sysfs.rs's `Dir` does not hand its kobject out.

use crate::sysfs::{BStrDisplay, GlueKobj};
use core::ptr::NonNull;
use kernel::bindings;
use kernel::error::from_err_ptr;
use kernel::ffi::c_char;
use kernel::fmt;
use kernel::prelude::*;
use kernel::str::CString;

extern "C" {
    // Same declarations as in rmr/sysfs.rs (sysfs_glue.h).
    fn glue_dir(which: u32) -> *mut bindings::kobject;
    fn glue_kobj_add(parent: *mut bindings::kobject, name: *const c_char, kind: u32, id: u64) -> *mut GlueKobj;
    fn glue_kobj_of(o: *mut GlueKobj) -> *mut bindings::kobject;
    fn glue_kobj_del(o: *mut GlueKobj);
}

/// A sysfs directory (`struct glue_kobj`) whose kobject can be the source of a symlink.
///
/// # Invariants
/// `ptr` is a live `struct glue_kobj` created by `glue_kobj_add` and not yet deleted; `KDir`
/// is its only owner.
pub(crate) struct KDir {
    ptr: NonNull<GlueKobj>,
}

// SAFETY: the kobject is reference counted by the kernel and may be used and dropped from any
// thread; `KDir` holds no thread-bound state.
unsafe impl Send for KDir {}

impl KDir {
    /// Creates `name` below the module's fixed directory `which` (`glue_dir()`), or below
    /// `parent` if given, with the attribute files of `kind`; `id` comes back in callbacks.
    pub(crate) fn new(top: u32, parent: Option<&KDir>, name: &[u8], kind: u32, id: u64) -> Result<KDir> {
        let cname = CString::try_from_fmt(fmt!("{}", BStrDisplay(name)))?;
        let parent_ptr = match parent {
            // SAFETY: `p.ptr` is live by the type invariant.
            Some(p) => unsafe { glue_kobj_of(p.ptr.as_ptr()) },
            // SAFETY: the class devices live from module init to exit, which bracket all callers.
            None => unsafe { glue_dir(top) },
        };
        // SAFETY: `parent_ptr` is a live kobject, `cname` a NUL-terminated string.
        let p = unsafe { glue_kobj_add(parent_ptr, cname.as_char_ptr(), kind, id) };
        let p = from_err_ptr(p)?;
        // INVARIANT: `p` was just created by `glue_kobj_add` and is owned by the new `KDir`.
        NonNull::new(p).map(|ptr| KDir { ptr }).ok_or(ENOMEM)
    }

    /// The directory's kobject; live as long as `self`.
    pub(in crate::wrap) fn kobj(&self) -> *mut bindings::kobject {
        // SAFETY: `ptr` is live by the type invariant.
        unsafe { glue_kobj_of(self.ptr.as_ptr()) }
    }
}

impl Drop for KDir {
    fn drop(&mut self) {
        // SAFETY: `ptr` is live and owned by us (type invariant); it is not used afterwards.
        unsafe { glue_kobj_del(self.ptr.as_ptr()) }
    }
}
