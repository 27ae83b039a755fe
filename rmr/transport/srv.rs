// SPDX-License-Identifier: GPL-2.0-or-later
//! The RTRS server context of the storage role: opened at the first server `join_pool`,
//! closed at module exit (every session goes, raising DISCONNECTED).

#![deny(unsafe_code)]

use crate::rtrs_sys::srv::{SrvCtx, RMR_SRV_PORT};
use kernel::prelude::*;
use kernel::sync::Mutex;

/// Opens the context in `slot` unless it is open.
pub(crate) fn ensure_open(slot: &Mutex<Option<SrvCtx>>) -> Result {
    let mut g = slot.lock();
    if g.is_none() {
        match SrvCtx::open(RMR_SRV_PORT) {
            Ok(c) => {
                pr_info!("rtrs server listening on port {}\n", RMR_SRV_PORT);
                *g = Some(c);
            }
            Err(e) => {
                pr_err!("cannot open the rtrs server on port {} ({:?})\n", RMR_SRV_PORT, e);
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Closes the context in `slot`, if open (sleeps until RTRS has closed every session).
pub(crate) fn close(slot: &Mutex<Option<SrvCtx>>) {
    let ctx = slot.lock().take();
    drop(ctx);
}
