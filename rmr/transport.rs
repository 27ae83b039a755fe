// SPDX-License-Identifier: GPL-2.0-or-later
//! RTRS transport. The shared client sessions and the server context arrive with the
//! replicated IO path; until then the module links against both RTRS modules so that
//! `modprobe rmr` loads the transport it is built for.

use crate::rtrs_sys::raw;

/// Resolves the RTRS entry points rmr will use (modpost records the dependency).
pub(crate) fn link_check() {
    let entry: [usize; 4] = [
        raw::rtrs_clt_open as *const () as usize,
        raw::rtrs_clt_close as *const () as usize,
        raw::rtrs_srv_open as *const () as usize,
        raw::rtrs_srv_close as *const () as usize,
    ];
    core::hint::black_box(entry);
}
