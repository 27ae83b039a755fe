// SPDX-License-Identifier: GPL-2.0-or-later
//! Small safe wrappers over kernel facilities that Rust on 6.12 lacks. Every `unsafe` block of
//! the shells' infrastructure lives here (or in rtrs-sys, sysfs, the C ABI), each with its
//! `// SAFETY:` comment and each type with its `# Invariants`.

pub(crate) mod bh;
pub(crate) mod blank;
pub(crate) mod clt_io;
pub(crate) mod completion;
pub(crate) mod dwork;
pub(crate) mod global;
pub(crate) mod params;
pub(crate) mod sg;
pub(crate) mod store_ops;
pub(crate) mod sysfs_entry;
pub(crate) mod time;
pub(crate) mod wq;
