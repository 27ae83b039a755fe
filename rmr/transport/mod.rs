// SPDX-License-Identifier: GPL-2.0-or-later
//! The transports (DESIGN §3): the client sessions, one RTRS session per storage node shared
//! by every leg that reaches it ([`clt`]), and the RTRS server context of the storage role
//! ([`srv`]). The RTRS calls themselves are rtrs-sys's safe wrappers.

#![deny(unsafe_code)]

pub(crate) mod clt;
pub(crate) mod srv;
