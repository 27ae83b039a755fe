// SPDX-License-Identifier: GPL-2.0-or-later
//! Sleeps and the store's log rate limit (brmr_bio.c helpers).

extern "C" {
    fn brmr_srv_ratelimit() -> bool;
    fn brmr_msleep(ms: u32);
}

/// Sleeps `ms` milliseconds, uninterruptibly. Process context.
pub(crate) fn sleep_ms(ms: u32) {
    // SAFETY: `msleep` has no preconditions beyond process context (the caller's promise).
    unsafe { brmr_msleep(ms) };
}

/// True if an error line may be printed now (one rate limit for the store's IO and command
/// paths).
pub(crate) fn ratelimit() -> bool {
    // SAFETY: no arguments; the C side only touches its static ratelimit state.
    unsafe { brmr_srv_ratelimit() }
}
