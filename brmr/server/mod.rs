// SPDX-License-Identifier: GPL-2.0-or-later
//! brmr-server: stores on backing block devices (SPEC §2.5, §9.1, §9.3).
//!
//! - [`store`]: `ctl/create_store`, `ctl/add_store` and `stores/<p>/...`;
//! - [`io`]: the `RmrSrvStoreOps` rmr calls and the bio data path behind them;
//! - [`bdev`]: the exclusively opened backing device and its metadata IO.

pub(crate) mod bdev;
pub(crate) mod io;
pub(crate) mod store;
