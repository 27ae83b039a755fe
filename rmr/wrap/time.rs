// SPDX-License-Identifier: GPL-2.0-or-later
//! Clocks and sleeps for the shells (process context only for the sleeps).

/// Milliseconds since boot, the core's clock.
pub(crate) fn now_ms() -> u64 {
    u64::try_from(kernel::time::Ktime::ktime_get().to_ms()).unwrap_or(0)
}

/// Sleeps `ms` milliseconds, uninterruptibly. Process context.
pub(crate) fn sleep_ms(ms: u32) {
    // SAFETY: `msleep` has no preconditions beyond process context (the caller's promise).
    unsafe { kernel::bindings::msleep(ms) };
}

/// Sleeps up to `ms` milliseconds; false if a signal cut the sleep short. Process context.
pub(crate) fn sleep_ms_interruptible(ms: u32) -> bool {
    // SAFETY: as for `msleep`; returns the milliseconds left when a signal woke the task.
    unsafe { kernel::bindings::msleep_interruptible(ms) == 0 }
}

/// A global rate limit for log lines driven by the network or the IO path: 10 lines per 5 s.
pub(crate) fn ratelimit() -> bool {
    use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
    static START: AtomicU64 = AtomicU64::new(0);
    static COUNT: AtomicU32 = AtomicU32::new(0);
    let now = now_ms();
    let start = START.load(Ordering::Relaxed);
    if now.saturating_sub(start) >= 5000 {
        START.store(now, Ordering::Relaxed);
        COUNT.store(0, Ordering::Relaxed);
    }
    COUNT.fetch_add(1, Ordering::Relaxed) < 10
}
