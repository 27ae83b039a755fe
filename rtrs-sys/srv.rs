// SPDX-License-Identifier: GPL-2.0-or-later
//! The RTRS server context of the rmr server role: `rtrs_srv_open`/`rtrs_srv_close`, the
//! `rdma_ev`/`link_ev` callbacks, `rtrs_srv_resp_rdma` and `rtrs_srv_set_sess_priv`.
//!
//! rmr listens on its own port [`RMR_SRV_PORT`] (RNBD uses 1234). The context is opened at the
//! first rmr-server `join_pool` and closed at module exit, so loading rmr on a host without
//! RDMA (a compute client) never depends on the server side.
//!
//! RTRS calls `rdma_ev` from workqueue context (`IB_POLL_WORKQUEUE`) with a data area that
//! stays ours until we answer the operation; [`SrvOp`] owns that right and answers exactly
//! once. Session private data is set at `RTRS_SRV_LINK_EV_CONNECTED` and handed back with
//! every event of the session until `RTRS_SRV_LINK_EV_DISCONNECTED`, which RTRS raises only
//! after every operation of the session has been answered.

use super::raw;
use core::ffi::{c_int, c_uint, c_void};
use core::ptr::NonNull;
use kernel::prelude::*;
use kernel::types::ForeignOwnable;

/// Our private data of one RTRS server session.
pub(crate) type SessPriv = crate::server::SrvSess;

/// TCP/IB port of rmr's RTRS server.
pub(crate) const RMR_SRV_PORT: u16 = 1235;

/// The open server context.
///
/// # Invariants
/// `ptr` was returned by a successful `rtrs_srv_open` and is closed exactly once, by `drop`.
pub(crate) struct SrvCtx {
    ptr: NonNull<raw::rtrs_srv_ctx>,
}

// SAFETY: the context is only passed to `rtrs_srv_close`, which may run on any thread.
unsafe impl Send for SrvCtx {}

impl SrvCtx {
    /// Opens the listening context on `port`.
    pub(crate) fn open(port: u16) -> Result<SrvCtx> {
        let mut ops = raw::rtrs_srv_ops {
            rdma_ev: Some(rdma_ev_cb),
            link_ev: Some(link_ev_cb),
        };
        // SAFETY: `ops` is valid for the call; RTRS copies it into the context.
        let p = unsafe { raw::rtrs_srv_open(&mut ops, port) };
        let p = kernel::error::from_err_ptr(p)?;
        NonNull::new(p).map(|ptr| SrvCtx { ptr }).ok_or(ENOMEM)
    }
}

impl Drop for SrvCtx {
    fn drop(&mut self) {
        // SAFETY: `ptr` is open (type invariant) and not used after this call. Closing tears
        // down every session, raising DISCONNECTED for each, and waits for that.
        unsafe { raw::rtrs_srv_close(self.ptr.as_ptr()) }
    }
}

/// One RTRS operation received by `rdma_ev`, not yet answered, with its data area.
///
/// # Invariants
/// `id` is an operation RTRS handed to `rdma_ev` that has not been answered; `data` is its
/// data area of `len` bytes (null when `len` is 0), valid and exclusively ours until the
/// answer. The answer is sent exactly once: by [`SrvOp::respond`], or with -EIO on drop.
pub(crate) struct SrvOp {
    id: NonNull<raw::rtrs_srv_op>,
    data: *mut u8,
    len: usize,
}

// SAFETY: the operation and its data area may be answered and used from any thread
// (`rtrs_srv_resp_rdma` is callable from any context).
unsafe impl Send for SrvOp {}

impl SrvOp {
    /// The data area (read: to fill; write: the payload; command: the reply buffer).
    pub(crate) fn data_mut(&mut self) -> &mut [u8] {
        if self.data.is_null() || self.len == 0 {
            return &mut [];
        }
        // SAFETY: by the type invariant `data` is valid for `len` bytes and ours until answered.
        unsafe { core::slice::from_raw_parts_mut(self.data, self.len) }
    }

    /// Pointer to the data area, for the store (physically contiguous RTRS chunk memory).
    pub(crate) fn data_ptr(&self) -> *mut u8 {
        self.data
    }

    /// Length of the data area.
    pub(crate) fn data_len(&self) -> usize {
        self.len
    }

    /// Answers the operation with `errno` (0 or negative).
    pub(crate) fn respond(self, errno: i32) {
        let id = self.id;
        core::mem::forget(self);
        // SAFETY: `id` is unanswered (type invariant) and `self` is forgotten, so this is the
        // only answer.
        unsafe { raw::rtrs_srv_resp_rdma(id.as_ptr(), errno as c_int) };
    }
}

impl Drop for SrvOp {
    fn drop(&mut self) {
        // SAFETY: an unanswered operation (type invariant); dropping answers it once.
        unsafe { raw::rtrs_srv_resp_rdma(self.id.as_ptr(), crate::rmr_core::errno::Errno::EIO.to_kernel()) };
    }
}

/// An RTRS server session during `link_ev(CONNECTED)`.
///
/// # Invariants
/// `ptr` is the session of the current `link_ev` call.
pub(crate) struct SessHandle {
    ptr: NonNull<raw::rtrs_srv_sess>,
}

impl SessHandle {
    /// Hands our session object to RTRS, which passes it to `rdma_ev` (borrowed) and gives it
    /// back at DISCONNECTED.
    pub(crate) fn set_sess(&self, s: Pin<KBox<SessPriv>>) {
        let p = s.into_foreign();
        // SAFETY: the session is live during the callback (type invariant).
        unsafe { raw::rtrs_srv_set_sess_priv(self.ptr.as_ptr(), p.cast_mut()) }
    }

    /// Sets the heartbeat of the session's paths from rmr's parameters (`rmr_rtrs_hb.c`), so
    /// that a lost client is noticed in seconds, not RTRS's 30.
    pub(crate) fn set_heartbeat(&self) {
        extern "C" {
            fn rmr_rtrs_srv_set_hb(srv: *mut raw::rtrs_srv_sess, interval_ms: c_uint, missed_max: c_uint);
        }
        let (ms, max) = super::clt::heartbeat();
        // SAFETY: the session is live during the callback (type invariant); RTRS holds
        // paths_ev_mutex, not the paths_mutex the helper takes.
        unsafe { rmr_rtrs_srv_set_hb(self.ptr.as_ptr(), ms, max) }
    }

    /// The session's path name (`<client>@<server>`) for log lines; bytes written to `buf`.
    pub(crate) fn path_name(&self, buf: &mut [u8]) -> usize {
        if buf.is_empty() {
            return 0;
        }
        buf.fill(0);
        // SAFETY: the session is live (type invariant); `buf` is writable for its length.
        let r = unsafe {
            raw::rtrs_srv_get_path_name(self.ptr.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
        };
        if r < 0 {
            return 0;
        }
        buf.iter().position(|b| *b == 0).unwrap_or(buf.len())
    }
}

/// `rdma_ev`: always returns 0; the operation is answered through [`SrvOp`].
///
/// # Safety
/// Called by RTRS as documented in `rtrs.h`: `id` unanswered, `data` valid for `datalen`
/// bytes and `usr` for `usrlen` bytes, `priv_` the session pointer set at CONNECTED.
unsafe extern "C" fn rdma_ev_cb(
    priv_: *mut c_void,
    id: *mut raw::rtrs_srv_op,
    data: *mut c_void,
    datalen: usize,
    usr: *const c_void,
    usrlen: usize,
) -> c_int {
    let Some(id) = NonNull::new(id) else {
        return 0;
    };
    let op = SrvOp {
        id,
        data: if datalen == 0 { core::ptr::null_mut() } else { data.cast() },
        len: if data.is_null() { 0 } else { datalen },
    };
    let usr: &[u8] = if usr.is_null() || usrlen == 0 {
        &[]
    } else {
        // SAFETY: RTRS passes `usr` valid for `usrlen` bytes for the duration of the call.
        unsafe { core::slice::from_raw_parts(usr.cast(), usrlen) }
    };
    if priv_.is_null() {
        crate::server::on_rdma_ev(None, op, usr);
        return 0;
    }
    // SAFETY: a non-null `priv_` is the session object given to RTRS by `set_sess`; RTRS calls
    // `rdma_ev` only before the DISCONNECTED event that gives it back.
    let sess = unsafe { <Pin<KBox<SessPriv>> as ForeignOwnable>::borrow(priv_) };
    crate::server::on_rdma_ev(Some(&sess), op, usr);
    0
}

/// `link_ev`: session connected (allocate our session object) or gone.
///
/// # Safety
/// Called by RTRS with a live session; `priv_` is what we set at CONNECTED (or null).
unsafe extern "C" fn link_ev_cb(
    sess: *mut raw::rtrs_srv_sess,
    ev: raw::rtrs_srv_link_ev,
    priv_: *mut c_void,
) -> c_int {
    match ev {
        raw::rtrs_srv_link_ev_RTRS_SRV_LINK_EV_CONNECTED => match NonNull::new(sess) {
            Some(ptr) => crate::server::on_connected(SessHandle { ptr }),
            None => crate::rmr_core::errno::Errno::EINVAL.to_kernel(),
        },
        raw::rtrs_srv_link_ev_RTRS_SRV_LINK_EV_DISCONNECTED => {
            if !priv_.is_null() {
                // SAFETY: `priv_` is the session object given to RTRS by `set_sess`, handed
                // back once here, after the session's last `rdma_ev`.
                let s = unsafe { <Pin<KBox<SessPriv>> as ForeignOwnable>::from_foreign(priv_) };
                crate::server::on_disconnected(s);
            }
            0
        }
        _ => 0,
    }
}
