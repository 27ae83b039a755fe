// SPDX-License-Identifier: GPL-2.0-or-later
//! The module's own workqueue for server IO completions (`WQ_MEM_RECLAIM`, made by rmr_glue.c).

use kernel::bindings;
use kernel::workqueue::Queue;

extern "C" {
    fn rmr_glue_srv_io_wq() -> *mut bindings::workqueue_struct;
}

/// The server IO completion queue: `rmr_srv_io`, a `WQ_MEM_RECLAIM` workqueue.
///
/// It exists from module init (`glue_init` fails the load without it) until module exit
/// (`glue_exit` destroys it after every pool, and so every server request, is gone).
pub(crate) fn srv_io() -> &'static Queue {
    // SAFETY: reads a pointer that glue_init set before any pool could exist.
    let p = unsafe { rmr_glue_srv_io_wq() };
    if p.is_null() {
        // Not reachable while a server request exists (see above); the system queue keeps a
        // caller that races module init or exit correct.
        return kernel::workqueue::system();
    }
    // SAFETY: `p` is a live workqueue until glue_exit, which runs after the last server
    // request completed (module teardown drops every pool first), so the reference does not
    // outlive it for any caller.
    unsafe { Queue::from_raw(p) }
}
