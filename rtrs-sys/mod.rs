// SPDX-License-Identifier: GPL-2.0-or-later
//! rtrs-sys: bindings for the RTRS transport (`drivers/infiniband/ulp/rtrs/rtrs.h`), generated
//! at build time by `rtrs-sys/gen.sh` with the kernel's own clang flags, and the safe wrappers
//! over them: [`clt`] (client sessions, permits, requests, bounded calls) and [`srv`] (the
//! server context, operations, sessions).

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

pub(crate) mod clt;
pub(crate) mod srv;
