// SPDX-License-Identifier: GPL-2.0-or-later
//! rmr-core: the RMR/BRMR replication protocol as plain Rust that does no IO.
//!
//! The same files are a `no_std` crate on the host (tests, simulator, rmrctl) and a module
//! (`#[path = ...] mod rmr_core;`) inside rmr.ko and brmr.ko. Inside the core, siblings are
//! referred to with `super::`/`self::` paths so both builds resolve them. No allocation: memory
//! is handed in by the caller or bounded by constants.
#![cfg_attr(not(CONFIG_RUST), no_std)]

pub mod errno;
pub mod jhash;
pub mod ondisk;
pub mod params;
pub mod store_reg;
pub mod consts;
pub mod dirtymap;
pub mod error;
pub mod wire;
pub mod client;
pub mod server;
pub mod control;
pub mod rejoin;
pub mod join;
pub mod remove;
pub mod brmr_map;
