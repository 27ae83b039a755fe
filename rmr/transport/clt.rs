// SPDX-License-Identifier: GPL-2.0-or-later
//! The module's table of client transport sessions: one RTRS session per storage node,
//! shared and refcounted by the legs of every pool that reaches it (SPEC §1.3).

#![deny(unsafe_code)]

use crate::client::kick_recovery;
use crate::rmr_core::{errno::Errno, params::Name};
use crate::rtrs_sys::clt::CltSess;
use crate::state;
use kernel::prelude::*;
use kernel::sync::Arc;

pub(crate) fn sess_get(name: Name, addr: [u8; 4]) -> Result<Arc<CltSess>, Errno> {
    {
        let mut st = state().ok_or(Errno::ENODEV)?;
        if let Some(e) = st.sess.iter_mut().flatten().find(|e| e.0.name == name) {
            if e.0.addr != addr {
                pr_err!("session {}: exists with another path (EINVAL)\n", name.as_str());
                return Err(Errno::EINVAL);
            }
            e.1 += 1;
            return Ok(e.0.clone());
        }
    }
    let s = CltSess::open(name, addr, kick_recovery)?;
    let mut st = state().ok_or(Errno::ENODEV)?;
    if let Some(e) = st.sess.iter_mut().flatten().find(|e| e.0.name == name) {
        // Opened concurrently by another leg: use that one, ours closes on drop.
        e.1 += 1;
        let other = e.0.clone();
        drop(st);
        drop(s);
        return Ok(other);
    }
    let entry = Some((s.clone(), 1));
    match st.sess.iter_mut().find(|e| e.is_none()) {
        Some(free) => *free = entry,
        None => st.sess.push(entry, GFP_KERNEL).map_err(|_| Errno::ENOMEM)?,
    }
    Ok(s)
}

pub(crate) fn sess_put(s: Arc<CltSess>) {
    let last = {
        let Some(mut st) = state() else { return };
        let Some(slot) = st.sess.iter_mut().find(|e| e.as_ref().is_some_and(|e| Arc::ptr_eq(&e.0, &s))) else {
            return;
        };
        match slot {
            Some(e) if e.1 > 1 => {
                e.1 -= 1;
                None
            }
            _ => slot.take(),
        }
    };
    // The RTRS session closes (sleeps) here, outside the module lock.
    drop(last);
    drop(s);
}
