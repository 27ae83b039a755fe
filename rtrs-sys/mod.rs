// SPDX-License-Identifier: GPL-2.0-or-later
//! rtrs-sys: bindings for the RTRS transport (`drivers/infiniband/ulp/rtrs/rtrs.h`), generated
//! at build time by `rtrs-sys/gen.sh` with the kernel's own clang flags. The safe wrappers
//! (client sessions, server context) come with the replicated IO path.

/// The generated declarations, unchanged.
#[allow(
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    dead_code,
    missing_docs,
    unreachable_pub,
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    clippy::missing_safety_doc
)]
pub(crate) mod raw {
    include!("rtrs_generated.rs");
}
