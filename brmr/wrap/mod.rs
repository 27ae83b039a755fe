// SPDX-License-Identifier: GPL-2.0-or-later
//! Small safe wrappers over the kernel facilities and the rmr C ABI that brmr uses. Every
//! `unsafe` block of brmr lives here (and in the files shared with rmr.ko: `rmr/api/abi.rs`,
//! `rmr/sysfs.rs`, `rmr/wrap/global.rs`), each with its `// SAFETY:` comment and each type
//! with its `# Invariants`.
//! The callbacks the kernel and rmr make into brmr turn their raw arguments into safe values
//! here and call safe functions of `client/` and `server/`, which hold the logic and carry
//! `#![deny(unsafe_code)]`. The crate root denies unsafe code; this is where it is allowed.

#![allow(unsafe_code)]

pub(crate) mod attr;
pub(crate) mod bdev;
pub(crate) mod bioset;
pub(crate) mod blk_mq;
// Shared with rmr.ko.
#[path = "../../rmr/wrap/global.rs"]
pub(crate) mod global;
pub(crate) mod kdir;
pub(crate) mod rmr_clt;
pub(crate) mod rmr_srv;
pub(crate) mod time;
