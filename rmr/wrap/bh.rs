// SPDX-License-Identifier: GPL-2.0-or-later
//! A spinlock taken with bottom halves disabled (`spin_lock_bh`): for state that RTRS's
//! softirq-context confirmations take too.

use kernel::sync::lock::{spinlock::SpinLockBackend, Guard};
use kernel::sync::SpinLock;

extern "C" {
    fn rmr_bh_disable();
    fn rmr_bh_enable();
}

/// The guard of [`lock_bh`].
///
/// # Invariants
/// Bottom halves were disabled on this CPU before `g` was taken and are enabled again only
/// after `g` is released, once.
pub(crate) struct BhGuard<'a, T: ?Sized> {
    g: core::mem::ManuallyDrop<Guard<'a, T, SpinLockBackend>>,
}

/// Locks `lock` with bottom halves disabled.
pub(crate) fn lock_bh<T: ?Sized>(lock: &SpinLock<T>) -> BhGuard<'_, T> {
    // SAFETY: no preconditions; balanced by `BhGuard::drop`.
    unsafe { rmr_bh_disable() };
    // INVARIANT: bottom halves are off before the lock is taken.
    BhGuard { g: core::mem::ManuallyDrop::new(lock.lock()) }
}

impl<T: ?Sized> core::ops::Deref for BhGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.g
    }
}

impl<T: ?Sized> core::ops::DerefMut for BhGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.g
    }
}

impl<T: ?Sized> Drop for BhGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: `g` is dropped exactly once, here, and bottom halves are enabled only after
        // the lock is released, as the type invariant requires.
        unsafe {
            core::mem::ManuallyDrop::drop(&mut self.g);
            rmr_bh_enable();
        }
    }
}
