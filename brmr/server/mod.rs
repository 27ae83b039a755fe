// SPDX-License-Identifier: GPL-2.0-or-later
//! brmr-server: stores on backing block devices (SPEC §2.5, §9.1, §9.3).
//!
//! - [`store`]: `ctl/create_store`, `ctl/add_store` and `stores/<p>/...`;
//! - [`io`]: what the `RmrSrvStoreOps` rmr calls do, and the bio data path behind them.
//!
//! The FFI behind them (registration and op trampolines, the backing device and its metadata
//! IO, the bio set) is in `wrap/rmr_srv.rs`, `wrap/bdev.rs` and `wrap/bioset.rs`.

#![deny(unsafe_code)]

pub(crate) mod io;
pub(crate) mod store;
