// SPDX-License-Identifier: GPL-2.0-or-later
//! rmr's sysfs entry points, called by rmr_glue.c's attribute tables: the raw name and
//! buffer become a name and a [`PageWriter`](crate::sysfs::PageWriter) or an input slice
//! (crate::sysfs), and each object kind goes to its role's safe handler.

use crate::{client, kind, server, sysfs};
use kernel::error::code::EINVAL;
use kernel::ffi::c_char;

/// sysfs show entry point, called by rmr_glue.c.
///
/// # Safety
/// `attr` is a NUL-terminated attribute name and `buf` a writable page, as sysfs passes them.
#[no_mangle]
pub(crate) unsafe extern "C" fn rmr_rs_show(kind: u32, id: u64, attr: *const c_char, buf: *mut u8) -> isize {
    // SAFETY: forwarded unchanged from sysfs (see above).
    unsafe {
        sysfs::show(attr, buf, |name, w| match kind {
            kind::SRV_POOL => server::show(id, name, w),
            kind::CLT_POOL => client::show(id, name, w),
            kind::CLT_SESS => client::sess_show(id, name, w),
            _ => Err(EINVAL),
        })
    }
}

/// sysfs store entry point, called by rmr_glue.c.
///
/// # Safety
/// `attr` is a NUL-terminated attribute name and `buf` holds `count` readable bytes.
#[no_mangle]
pub(crate) unsafe extern "C" fn rmr_rs_store(
    kind: u32,
    id: u64,
    attr: *const c_char,
    buf: *const u8,
    count: usize,
) -> isize {
    // SAFETY: forwarded unchanged from sysfs (see above).
    unsafe {
        sysfs::store(attr, buf, count, |name, input| match kind {
            kind::CLT_CTL if name == b"join_pool" => client::join_pool(input),
            kind::SRV_CTL if name == b"join_pool" => server::join_pool(input),
            kind::CLT_POOL => client::store(id, name, input),
            kind::CLT_SESS => client::sess_store(id, name, input),
            kind::SRV_POOL => server::store(id, name, input),
            _ => Err(EINVAL),
        })
    }
}
