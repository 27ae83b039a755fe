// SPDX-License-Identifier: GPL-2.0-or-later
//! rmr's module parameters and counters, kept in rmr_glue.c (validated by its setters).

extern "C" {
    fn rmr_glue_sync_queue_depth() -> i32;
    fn rmr_glue_write_intent() -> i32;
    fn rmr_glue_map_atomic_page();
    fn rmr_glue_io_req_alloc();
}

/// `/sys/module/rmr/parameters/write_intent` (0 or 1, validated by the C setter).
pub(crate) fn write_intent() -> bool {
    // SAFETY: reads an int with READ_ONCE; no preconditions.
    unsafe { rmr_glue_write_intent() != 0 }
}

/// `/sys/module/rmr/parameters/sync_queue_depth` (1..512, validated by the C setter).
#[allow(dead_code)]
pub(crate) fn sync_queue_depth() -> u32 {
    // SAFETY: reads an int with READ_ONCE; no preconditions.
    let v = unsafe { rmr_glue_sync_queue_depth() };
    u32::try_from(v).unwrap_or(32)
}

/// Counts a server request allocated for a client IO at its arrival in
/// `/sys/module/rmr/parameters/io_req_allocs`.
pub(crate) fn count_io_req_alloc() {
    // SAFETY: `rmr_glue_io_req_alloc` takes no arguments and only increments an atomic64_t.
    unsafe { rmr_glue_io_req_alloc() };
}

/// Counts a map page allocated on demand (atomically, under a lock) in
/// `/sys/module/rmr/parameters/map_atomic_pages`.
pub(crate) fn count_map_atomic_page() {
    // SAFETY: `rmr_glue_map_atomic_page` takes no arguments and only increments an atomic64_t.
    unsafe { rmr_glue_map_atomic_page() };
}
