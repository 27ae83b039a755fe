// SPDX-License-Identifier: GPL-2.0-or-later
//! Client side of the RTRS transport (DESIGN §3): one RTRS session per storage node, shared
//! by every leg that reaches it and refcounted by the module's session table (SPEC §1.3).
//!
//! Framing (the server side in srv_transport.rs follows it):
//! - IO read: dir READ, usr = encoded `Msg::Io`, sg = the caller's data buffer.
//! - IO write: dir WRITE, usr = encoded `Msg::Io`, sg = the payload.
//! - Command up to [`USR_MAX`] bytes: dir READ, usr = encoded `Msg::Cmd`, sg = a response
//!   buffer of [`RSP_BUF_LEN`] bytes that the server fills with an encoded `Msg::CmdRsp`.
//! - Larger command (SEND_MAP_BUF): dir WRITE, no usr, sg = the encoded `Msg::Cmd`; the
//!   reply is the errno alone.

use crate::rmr_core::{errno::Errno, params::Name};
use crate::rtrs_sys::raw;
use core::ffi::{c_int, c_void};
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, Ordering};
use kernel::prelude::*;
use kernel::sync::{Arc, CondVar, SpinLock};
use kernel::{new_condvar, new_spinlock};

/// rmr's own RTRS port (RNBD uses 1234).
pub(crate) const RMR_PORT: u16 = 1235;
/// Largest command sent inline as the RTRS user message.
pub(crate) const USR_MAX: usize = 1024;
/// Response buffer of a command.
pub(crate) const RSP_BUF_LEN: usize = 8192;
/// Bound of a command's round trip.
const CMD_TIMEOUT_MS: u32 = 30_000;
const READ: c_int = 0;
const WRITE: c_int = 1;

extern "C" {
    fn rmr_sg_init_one(sg: *mut c_void, buf: *const c_void, len: u32);
    fn rmr_sg_size() -> usize;
}

/// A storage node's transport session.
///
/// # Invariants
/// `raw` is null only before `rtrs_clt_open` returned; afterwards it is a live RTRS session
/// until `Drop` closes it. RTRS holds a pointer to this object as the link-event `priv`, so the
/// object lives in an `Arc` whose last reference is dropped only after the close.
pub(crate) struct CltSess {
    raw: AtomicPtr<raw::rtrs_clt_sess>,
    /// Session name (`sessname`).
    pub(crate) name: Name,
    /// Storage node address.
    pub(crate) addr: [u8; 4],
    /// Link up as last reported by RTRS.
    pub(crate) connected: AtomicBool,
    /// Link went down since the client role last looked (set by the link event).
    pub(crate) link_changed: AtomicBool,
    /// RTRS queue depth (permits) of the session.
    pub(crate) queue_depth: AtomicU32,
    /// Largest IO in bytes.
    pub(crate) max_io_size: AtomicU32,
    /// Largest scatterlist of one IO.
    pub(crate) max_segments: AtomicU32,
}

// SAFETY: the RTRS session pointer is usable from any thread; the rest are atomics and
// immutable data.
unsafe impl Send for CltSess {}
// SAFETY: as above.
unsafe impl Sync for CltSess {}

/// RTRS link event of a client session.
///
/// # Safety
/// `priv_` is null or the `CltSess` given to `rtrs_clt_open`.
unsafe extern "C" fn link_ev(priv_: *mut c_void, ev: raw::rtrs_clt_link_ev) {
    if priv_.is_null() {
        return;
    }
    // SAFETY: `priv_` is the `CltSess` given to `rtrs_clt_open`, alive until after the close
    // (type invariant); RTRS stops calling before `rtrs_clt_close` returns.
    let s = unsafe { &*(priv_ as *const CltSess) };
    let up = ev == raw::rtrs_clt_link_ev_RTRS_CLT_LINK_EV_RECONNECTED;
    s.connected.store(up, Ordering::Release);
    s.link_changed.store(true, Ordering::Release);
    pr_info!("session {}: link {}\n", s.name.as_str(), if up { "reconnected" } else { "disconnected" });
    crate::client::kick_recovery();
}

#[repr(C, align(8))]
struct SockaddrStorage([u8; 128]);

impl CltSess {
    /// Connects to `addr` as session `name` (sleeps until RTRS connected or failed).
    pub(crate) fn open(name: Name, addr: [u8; 4]) -> Result<Arc<CltSess>, Errno> {
        let s = CltSess {
            raw: AtomicPtr::new(core::ptr::null_mut()),
            name,
            addr,
            connected: AtomicBool::new(false),
            link_changed: AtomicBool::new(false),
            queue_depth: AtomicU32::new(0),
            max_io_size: AtomicU32::new(0),
            max_segments: AtomicU32::new(0),
        };
        let mut dst = SockaddrStorage([0; 128]);
        dst.0[0..2].copy_from_slice(&2u16.to_ne_bytes()); // AF_INET
        dst.0[2..4].copy_from_slice(&RMR_PORT.to_be_bytes());
        dst.0[4..8].copy_from_slice(&addr);
        let mut cname = [0u8; 65];
        let nb = name.as_bytes();
        cname[..nb.len()].copy_from_slice(nb);
        // The RTRS session keeps `priv`: allocate first, then open with its final address.
        let arc = Arc::new(s, GFP_KERNEL).map_err(|_| Errno::ENOMEM)?;
        let mut ops = raw::rtrs_clt_ops {
            priv_: (&*arc as *const CltSess).cast_mut().cast(),
            link_ev: Some(link_ev),
        };
        let path = raw::rtrs_addr { src: core::ptr::null_mut(), dst: (&mut dst as *mut SockaddrStorage).cast() };
        // SAFETY: `ops`, `cname` and `path` are valid for the call (RTRS copies them); the
        // `priv` pointer stays valid as long as the session is open (type invariant).
        let sess = unsafe {
            raw::rtrs_clt_open(&mut ops, cname.as_ptr().cast(), &path, 1, RMR_PORT, 0, 5, -1, 0)
        };
        let sess = match kernel::error::from_err_ptr(sess) {
            Ok(p) if !p.is_null() => p,
            r => {
                let e = match r {
                    Err(e) => Errno::from_kernel(e.to_errno()),
                    Ok(_) => Errno::ECONNREFUSED,
                };
                pr_err!(
                    "session {}: cannot connect to {}.{}.{}.{} ({})\n",
                    name.as_str(), addr[0], addr[1], addr[2], addr[3], e.name()
                );
                return Err(e);
            }
        };
        let mut attrs = raw::rtrs_attrs::default();
        // SAFETY: `sess` is a live session, `attrs` valid for writes.
        let r = unsafe { raw::rtrs_clt_query(sess, &mut attrs) };
        arc.raw.store(sess, Ordering::Release);
        if r != 0 {
            drop(arc);
            return Err(Errno::EIO);
        }
        arc.queue_depth.store(attrs.queue_depth, Ordering::Release);
        arc.max_io_size.store(attrs.max_io_size, Ordering::Release);
        arc.max_segments.store(attrs.max_segments, Ordering::Release);
        arc.connected.store(true, Ordering::Release);
        pr_info!(
            "session {}: connected to {}.{}.{}.{}:{} (queue_depth {}, max_io_size {})\n",
            name.as_str(), addr[0], addr[1], addr[2], addr[3], RMR_PORT, attrs.queue_depth, attrs.max_io_size
        );
        Ok(arc)
    }

    fn raw(&self) -> *mut raw::rtrs_clt_sess {
        self.raw.load(Ordering::Acquire)
    }

    /// Takes a permit; `wait` sleeps until one is free.
    pub(crate) fn permit(&self, wait: bool) -> Option<Permit<'_>> {
        let w = if wait { raw::wait_type_RTRS_PERMIT_WAIT } else { raw::wait_type_RTRS_PERMIT_NOWAIT };
        // SAFETY: live session (type invariant).
        let p = unsafe { raw::rtrs_clt_get_permit(self.raw(), raw::rtrs_clt_con_type_RTRS_IO_CON, w) };
        if p.is_null() {
            None
        } else {
            Some(Permit { sess: self, p })
        }
    }

    /// Starts a request. On success `conf(ctx, errno)` is called exactly once later (softirq
    /// context); on error it is never called.
    ///
    /// # Safety
    /// `sg` must describe `len` bytes valid (and, for reads, writable) until `conf` runs;
    /// `ctx` must stay valid until `conf` runs.
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn request(
        &self,
        write: bool,
        permit: &Permit<'_>,
        usr: &[u8],
        sg: *mut c_void,
        sg_cnt: u32,
        len: usize,
        conf: unsafe extern "C" fn(*mut c_void, c_int),
        ctx: *mut c_void,
    ) -> Result<(), Errno> {
        let mut ops = raw::rtrs_clt_req_ops { priv_: ctx, conf_fn: Some(conf) };
        #[repr(C)]
        struct Kvec {
            base: *mut c_void,
            len: usize,
        }
        let vec = Kvec { base: usr.as_ptr().cast_mut().cast(), len: usr.len() };
        let nr = usize::from(!usr.is_empty());
        // SAFETY: live session and permit; `ops` and `vec` are copied by RTRS during the call
        // (the user message is copied into the request's buffer); `sg`/`ctx` per the contract.
        let r = unsafe {
            raw::rtrs_clt_request(
                if write { WRITE } else { READ },
                &mut ops,
                self.raw(),
                permit.p,
                (&vec as *const Kvec).cast(),
                nr,
                len,
                sg.cast(),
                sg_cnt,
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(Errno::from_kernel(r))
        }
    }

    /// Sends one encoded command and waits for the reply (process context). Small commands
    /// return the encoded reply in `rsp` (its length); large ones return 0 after a success.
    pub(crate) fn cmd(&self, msg: &[u8], rsp: &mut [u8]) -> Result<usize, Errno> {
        let large = msg.len() > USR_MAX;
        let buf_len = if large { msg.len() } else { RSP_BUF_LEN };
        let ctx = CmdCtx::new(buf_len)?;
        // SAFETY: `ctx.buf` is ours until the request is sent; no one else sees it yet.
        let data = unsafe { &mut *ctx.buf.get() };
        if large {
            data[..msg.len()].copy_from_slice(msg);
        }
        // SAFETY: `sg` is a scatterlist-sized buffer; `data` is kmalloc memory of `buf_len`.
        unsafe { rmr_sg_init_one(ctx.sg.as_ptr().cast_mut().cast(), data.as_ptr().cast(), buf_len as u32) };
        let permit = self.permit(true).ok_or(Errno::EIO)?;
        let raw_ctx = Arc::into_raw(ctx.clone()).cast_mut().cast::<c_void>();
        let usr: &[u8] = if large { &[] } else { msg };
        // SAFETY: the buffer and the scatterlist live in `ctx`, kept alive by the reference
        // handed to RTRS as `raw_ctx` until `cmd_conf` takes it back.
        let r = unsafe {
            self.request(large, &permit, usr, ctx.sg.as_ptr().cast_mut().cast(), 1, buf_len, cmd_conf, raw_ctx)
        };
        if let Err(e) = r {
            // SAFETY: the request was not started: the reference is still ours to drop.
            drop(unsafe { Arc::from_raw(raw_ctx as *const CmdCtx) });
            return Err(e);
        }
        let res = ctx.wait();
        drop(permit);
        let errno = res?;
        if errno < 0 {
            return Err(Errno::from_kernel(errno));
        }
        if large {
            return Ok(0);
        }
        // SAFETY: the request completed: RTRS no longer writes the buffer.
        let data = unsafe { &*ctx.buf.get() };
        let n = frame_len(data).ok_or(Errno::EPROTO)?;
        if n > rsp.len() {
            return Err(Errno::EMSGSIZE);
        }
        rsp[..n].copy_from_slice(&data[..n]);
        Ok(n)
    }
}

impl CltSess {
    /// A blocking read of `len` bytes into `buf` with the encoded IO message `usr`
    /// (sync reads from peers). Waits for the confirmation without a timeout: RTRS fails
    /// every request of a path that goes down.
    ///
    /// # Safety
    /// `buf` valid for writes of `len` bytes, physically contiguous.
    pub(crate) unsafe fn read_sync(&self, usr: &[u8], buf: *mut u8, len: u32) -> Result<(), Errno> {
        let ctx = CmdCtx::new(0)?;
        // SAFETY: `sg` is scatterlist-sized; `buf` per the contract.
        unsafe { rmr_sg_init_one(ctx.sg.as_ptr().cast_mut().cast(), buf.cast(), len) };
        let permit = self.permit(true).ok_or(Errno::EIO)?;
        let raw_ctx = Arc::into_raw(ctx.clone()).cast_mut().cast::<c_void>();
        // SAFETY: `buf` outlives the request because this function waits for it.
        let r = unsafe {
            self.request(false, &permit, usr, ctx.sg.as_ptr().cast_mut().cast(), 1, len as usize, cmd_conf, raw_ctx)
        };
        if let Err(e) = r {
            // SAFETY: not started: the reference is ours to drop.
            drop(unsafe { Arc::from_raw(raw_ctx as *const CmdCtx) });
            return Err(e);
        }
        let mut g = ctx.done.lock();
        let e = loop {
            if let Some(e) = *g {
                break e;
            }
            ctx.cv.wait(&mut g);
        };
        drop(g);
        drop(permit);
        if e < 0 {
            Err(Errno::from_kernel(e))
        } else {
            Ok(())
        }
    }
}

/// Total length of the encoded message at the start of `buf` (header length field), if sane.
pub(crate) fn frame_len(buf: &[u8]) -> Option<usize> {
    let l = buf.get(12..16)?;
    let len = u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize;
    let total = len.checked_add(crate::rmr_core::wire::HDR_LEN)?;
    (total <= buf.len()).then_some(total)
}

impl Drop for CltSess {
    fn drop(&mut self) {
        let s = self.raw();
        if !s.is_null() {
            // SAFETY: the session is live and this is its last user.
            unsafe { raw::rtrs_clt_close(s) };
            pr_info!("session {}: closed\n", self.name.as_str());
        }
    }
}

/// An RTRS permit, returned on drop.
pub(crate) struct Permit<'a> {
    sess: &'a CltSess,
    p: *mut raw::rtrs_permit,
}

impl Permit<'_> {
    /// Gives up ownership; the caller returns it with [`CltSess::put_raw_permit`].
    pub(crate) fn into_raw(self) -> *mut c_void {
        let p = self.p;
        core::mem::forget(self);
        p.cast()
    }
}

impl CltSess {
    /// Returns a permit taken with [`Permit::into_raw`].
    ///
    /// # Safety
    /// `p` came from `into_raw` of a permit of this session and is returned once.
    pub(crate) unsafe fn put_raw_permit(&self, p: *mut c_void) {
        // SAFETY: per the contract.
        unsafe { raw::rtrs_clt_put_permit(self.raw(), p.cast()) };
    }

    /// Borrows a raw permit as a [`Permit`] for one request call.
    ///
    /// # Safety
    /// `p` is a live raw permit of this session; the returned value must be forgotten, not
    /// dropped, unless the permit is to be returned.
    pub(crate) unsafe fn permit_from_raw(&self, p: *mut c_void) -> Permit<'_> {
        Permit { sess: self, p: p.cast() }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        // SAFETY: a live permit of this session, returned once.
        unsafe { raw::rtrs_clt_put_permit(self.sess.raw(), self.p) };
    }
}

/// A command in flight: buffer, scatterlist and the wait for the confirmation.
#[pin_data]
struct CmdCtx {
    #[pin]
    done: SpinLock<Option<c_int>>,
    #[pin]
    cv: CondVar,
    buf: core::cell::UnsafeCell<KVec<u8>>,
    sg: KVec<u64>,
}

// SAFETY: `buf` is written by RTRS (DMA) only while the request is in flight and read by the
// waiter only after `done` is set under the lock.
unsafe impl Send for CmdCtx {}
// SAFETY: as above.
unsafe impl Sync for CmdCtx {}

impl CmdCtx {
    fn new(len: usize) -> Result<Arc<CmdCtx>, Errno> {
        let mut buf = KVec::with_capacity(len, GFP_KERNEL).map_err(|_| Errno::ENOMEM)?;
        buf.extend_with(len, 0u8, GFP_KERNEL).map_err(|_| Errno::ENOMEM)?;
        // SAFETY: no preconditions.
        let words = unsafe { rmr_sg_size() }.div_ceil(8);
        let mut sg = KVec::with_capacity(words, GFP_KERNEL).map_err(|_| Errno::ENOMEM)?;
        sg.extend_with(words, 0u64, GFP_KERNEL).map_err(|_| Errno::ENOMEM)?;
        Arc::pin_init(
            pin_init!(CmdCtx {
                done <- new_spinlock!(None, "rmr_cmd_done"),
                cv <- new_condvar!("rmr_cmd_cv"),
                buf: core::cell::UnsafeCell::new(buf),
                sg,
            }),
            GFP_KERNEL,
        )
        .map_err(|_| Errno::ENOMEM)
    }

    fn wait(&self) -> Result<c_int, Errno> {
        let mut g = self.done.lock();
        let mut left = kernel::time::msecs_to_jiffies(CMD_TIMEOUT_MS);
        loop {
            if let Some(e) = *g {
                return Ok(e);
            }
            match self.cv.wait_interruptible_timeout(&mut g, left) {
                kernel::sync::CondVarTimeoutResult::Woken { jiffies } => left = jiffies,
                kernel::sync::CondVarTimeoutResult::Timeout => return Err(Errno::ETIMEDOUT),
                kernel::sync::CondVarTimeoutResult::Signal { .. } => return Err(Errno::EINTR),
            }
        }
    }
}

/// RTRS confirmation of a command or sync read.
///
/// # Safety
/// `priv_` is the `Arc<CmdCtx>` reference leaked for this request.
unsafe extern "C" fn cmd_conf(priv_: *mut c_void, errno: c_int) {
    // SAFETY: `priv_` is the reference leaked by `CltSess::cmd` for this request.
    let ctx = unsafe { Arc::from_raw(priv_ as *const CmdCtx) };
    *ctx.done.lock() = Some(errno);
    ctx.cv.notify_all();
}
