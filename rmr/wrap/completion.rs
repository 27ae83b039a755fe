// SPDX-License-Identifier: GPL-2.0-or-later
//! A C `struct completion` for Rust (6.12 has no abstraction): signalled from any context,
//! waited for with a bound.

use core::ffi::c_long;
use kernel::prelude::*;
use kernel::types::Opaque;

extern "C" {
    fn rmr_completion_init(c: *mut kernel::bindings::completion);
    fn rmr_complete(c: *mut kernel::bindings::completion);
    fn rmr_wait_completion_timeout(c: *mut kernel::bindings::completion, ms: u32) -> c_long;
}

/// How a bounded wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Waited {
    /// `complete` was called.
    Done,
    /// The bound ran out first.
    TimedOut,
    /// A signal arrived first.
    Interrupted,
}

/// A completion in pinned memory.
///
/// # Invariants
/// `c` was initialised by `init_completion` before any other use and is never moved
/// afterwards (pinned).
#[pin_data]
pub(crate) struct Completion {
    #[pin]
    c: Opaque<kernel::bindings::completion>,
}

// SAFETY: a C completion does its own locking; `complete` and the waits may be called from any
// thread (and `complete` from any context).
unsafe impl Send for Completion {}
// SAFETY: as above.
unsafe impl Sync for Completion {}

impl Completion {
    /// An initialiser of a new, not yet completed completion.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            // SAFETY: `slot` is valid, pinned memory for a `struct completion`;
            // `init_completion` initialises all of it.
            // INVARIANT: initialised here, before any use.
            c <- Opaque::ffi_init(|slot| unsafe { rmr_completion_init(slot) }),
        })
    }

    /// Wakes the waiter (any context, including softirq).
    pub(crate) fn complete(&self) {
        // SAFETY: an initialised completion (type invariant).
        unsafe { rmr_complete(self.c.get()) };
    }

    /// Waits up to `ms` milliseconds, interruptibly.
    pub(crate) fn wait_timeout(&self, ms: u32) -> Waited {
        // SAFETY: an initialised completion (type invariant); process context is the caller's
        // promise (every user is a sysfs write or a work item).
        let r = unsafe { rmr_wait_completion_timeout(self.c.get(), ms) };
        match r {
            0 => Waited::TimedOut,
            r if r < 0 => Waited::Interrupted,
            _ => Waited::Done,
        }
    }
}
