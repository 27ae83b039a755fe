// SPDX-License-Identifier: GPL-2.0-or-later
//! The C ABI used by brmr.ko (DESIGN §3): the `#[repr(C)]` types both crates include
//! ([`abi`]), the client calls ([`clt`]: open, close, request, commands, leg stats) and the
//! server calls ([`srv`]: register and unregister a store, pool query, IO completion).
//! The `EXPORT_SYMBOL_GPL` lines are in rmr_glue.c.

#[allow(dead_code)]
pub(crate) mod abi;
mod clt;
mod srv;
