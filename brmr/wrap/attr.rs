// SPDX-License-Identifier: GPL-2.0-or-later
//! The sysfs show/store entry points brmr_glue.c calls: the raw attribute name and page become
//! slices (rmr/sysfs.rs) for [`crate::show_attr`] and [`crate::store_attr`].

use kernel::ffi::c_char;

/// sysfs show entry point, called by brmr_glue.c.
///
/// # Safety
/// `attr` is a NUL-terminated attribute name and `buf` a writable page, as sysfs passes them.
#[no_mangle]
pub(crate) unsafe extern "C" fn brmr_rs_show(kind: u32, id: u64, attr: *const c_char, buf: *mut u8) -> isize {
    // SAFETY: forwarded unchanged from sysfs (see above).
    unsafe { crate::sysfs::show(attr, buf, |name, w| crate::show_attr(kind, id, name, w)) }
}

/// sysfs store entry point, called by brmr_glue.c.
///
/// # Safety
/// `attr` is a NUL-terminated attribute name and `buf` holds `count` readable bytes.
#[no_mangle]
pub(crate) unsafe extern "C" fn brmr_rs_store(
    kind: u32,
    id: u64,
    attr: *const c_char,
    buf: *const u8,
    count: usize,
) -> isize {
    // SAFETY: forwarded unchanged from sysfs (see above).
    unsafe { crate::sysfs::store(attr, buf, count, |name, input| crate::store_attr(kind, id, name, input)) }
}
