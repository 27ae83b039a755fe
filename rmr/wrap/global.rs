// SPDX-License-Identifier: GPL-2.0-or-later
//! Module-owned objects published to callers that cannot be handed a reference: sysfs
//! callbacks, the C ABI and RTRS callbacks reach the module state and the server registry
//! through a [`Global`]. brmr.ko includes this file too (brmr/wrap/mod.rs), for its store
//! list and its mapped devices.

use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::prelude::*;

/// Where a module-owned `T` is published.
///
/// # Invariants
/// `ptr` is null or points to the `T` inside the box held by the live [`Owner`] that
/// published it. The owner is a field of the module object: it unpublishes before it frees
/// the box, and the module's teardown first stops every caller of [`Global::get`] (sysfs
/// classes removed, the RTRS server closed, no pool left for the upper layer).
pub(crate) struct Global<T: 'static> {
    ptr: AtomicPtr<T>,
}

impl<T: 'static> Global<T> {
    /// Nothing published.
    pub(crate) const fn new() -> Self {
        Global { ptr: AtomicPtr::new(core::ptr::null_mut()) }
    }

    /// Publishes `b`; the returned owner keeps it and unpublishes it when dropped.
    pub(crate) fn publish(&'static self, b: Pin<KBox<T>>) -> Owner<T> {
        let p: *const T = &*b;
        // INVARIANT: `p` points into `b`, which the owner holds until it unpublishes.
        self.ptr.store(p.cast_mut(), Ordering::Release);
        Owner { global: self, b }
    }

    /// The published object, or `None` outside the module's lifetime.
    pub(crate) fn get(&self) -> Option<&'static T> {
        let p = self.ptr.load(Ordering::Acquire);
        // SAFETY: `p` is null or points to the owner's live box, which outlives every caller
        // (type invariant).
        unsafe { p.as_ref() }
    }
}

/// The owner of a published object (a field of a module object).
///
/// # Invariants
/// `b` is the box `global` may point into; it is freed only after `drop` unpublished it.
pub(crate) struct Owner<T: 'static> {
    global: &'static Global<T>,
    b: Pin<KBox<T>>,
}

impl<T: 'static> Owner<T> {
    /// The object.
    pub(crate) fn get(&self) -> &T {
        &self.b
    }

    /// Unpublishes the object before the owner goes (teardown steps that must no longer be
    /// found by [`Global::get`]); the object itself lives on until the owner is dropped.
    #[allow(dead_code)]
    pub(crate) fn unpublish(&self) {
        self.global.ptr.store(core::ptr::null_mut(), Ordering::Release);
    }
}

impl<T: 'static> Drop for Owner<T> {
    fn drop(&mut self) {
        self.unpublish();
    }
}
