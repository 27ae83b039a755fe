// SPDX-License-Identifier: GPL-2.0-or-later
//! Client side of the RTRS transport (DESIGN §3): one RTRS session per storage node, shared
//! by every leg that reaches it and refcounted by the module's session table (SPEC §1.3).
//!
//! Framing (the server side in srv.rs follows it):
//! - IO read: dir READ, usr = encoded `Msg::Io`, sg = the caller's data buffer.
//! - IO write: dir WRITE, usr = encoded `Msg::Io`, sg = the payload.
//! - Command up to [`USR_MAX`] bytes: dir READ, usr = encoded `Msg::Cmd`, sg = a response
//!   buffer of [`RSP_BUF_LEN`] bytes that the server fills with an encoded `Msg::CmdRsp`.
//! - Larger command (SEND_MAP_BUF): dir WRITE, no usr, sg = the encoded `Msg::Cmd`; the
//!   reply is the errno alone.

use super::raw;
use crate::rmr_core::{errno::Errno, params::Name};
use crate::wrap::completion::{Completion, Waited};
use crate::wrap::time::{now_ms, sleep_ms_interruptible};
use core::ffi::{c_int, c_uint, c_void};
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU32, Ordering};
use kernel::prelude::*;
use kernel::sync::Arc;

/// rmr's own RTRS port (RNBD uses 1234).
pub(crate) const RMR_PORT: u16 = 1235;
/// Seconds between RTRS's reconnect attempts of a lost path (RTRS adds a 1 s back-off to
/// each): a leg is back within about 2 s of its link (SPEC §4.3, issue 11).
const RECONNECT_DELAY_S: u8 = 1;
/// Largest command sent inline as the RTRS user message.
pub(crate) const USR_MAX: usize = 1024;
/// Response buffer of a command.
pub(crate) const RSP_BUF_LEN: usize = 8192;
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
    /// Called (any context) after every link event.
    on_link: fn(),
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
    (s.on_link)();
}

#[repr(C, align(8))]
struct SockaddrStorage([u8; 128]);

impl CltSess {
    /// Connects to `addr` as session `name` (sleeps until RTRS connected or failed). A
    /// first attempt on a fresh link can fail while the neighbour is being resolved, so
    /// transient errors get two more tries.
    /// `on_link` runs (in any context) after each link event of the session.
    pub(crate) fn open(name: Name, addr: [u8; 4], on_link: fn()) -> Result<Arc<CltSess>, Errno> {
        let mut r = Self::open_once(name, addr, on_link);
        for _ in 0..2 {
            match r {
                Err(Errno::ETIMEDOUT | Errno::ECONNRESET | Errno::EHOSTUNREACH | Errno::ECONNREFUSED) => {
                    pr_info!("session {}: retrying the connection\n", name.as_str());
                    r = Self::open_once(name, addr, on_link);
                }
                _ => break,
            }
        }
        r
    }

    fn open_once(name: Name, addr: [u8; 4], on_link: fn()) -> Result<Arc<CltSess>, Errno> {
        let s = CltSess {
            raw: AtomicPtr::new(core::ptr::null_mut()),
            name,
            addr,
            connected: AtomicBool::new(false),
            link_changed: AtomicBool::new(false),
            on_link,
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
            raw::rtrs_clt_open(&mut ops, cname.as_ptr().cast(), &path, 1, RMR_PORT, 0, RECONNECT_DELAY_S, -1, 0)
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
        extern "C" {
            fn rmr_rtrs_clt_set_hb(clt: *mut raw::rtrs_clt_sess, interval_ms: c_uint, missed_max: c_uint);
        }
        let (hb_ms, hb_max) = heartbeat();
        // SAFETY: `sess` is a live session; the helper only takes its paths_mutex.
        unsafe { rmr_rtrs_clt_set_hb(sess, hb_ms, hb_max) };
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

    /// While the link is down: asks for the storage node's neighbour (ARP) again, so that
    /// RTRS's pending address resolution completes as soon as the link is back instead of
    /// at its 30 s timeout (`rmr_neigh_probe`). Sleeps; call it from a worker.
    pub(crate) fn probe_path(&self) {
        extern "C" {
            fn rmr_neigh_probe(daddr: u32) -> c_int;
        }
        if self.connected.load(Ordering::Acquire) {
            return;
        }
        // SAFETY: no preconditions; the address is passed by value in network order.
        let _ = unsafe { rmr_neigh_probe(u32::from_ne_bytes(self.addr)) };
    }

    fn raw(&self) -> *mut raw::rtrs_clt_sess {
        self.raw.load(Ordering::Acquire)
    }

    /// Takes a free permit without sleeping. There is deliberately no waiting variant:
    /// `RTRS_PERMIT_WAIT` sleeps uninterruptibly without a bound (see `permit_bounded`).
    pub(crate) fn permit(&self) -> Option<Permit<'_>> {
        let w = raw::wait_type_RTRS_PERMIT_NOWAIT;
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
    /// `permit` is a raw permit of this session, held (not returned) until `conf` runs, or
    /// until this call fails; `sg` must describe `len` bytes valid (and, for reads,
    /// writable) until `conf` runs; `ctx` must stay valid until `conf` runs.
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn request_raw(
        &self,
        write: bool,
        permit: *mut c_void,
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
                permit.cast(),
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

    /// Takes a permit, polling without sleeping uninterruptibly (`RTRS_PERMIT_WAIT` would),
    /// for at most `ms` milliseconds. Process context.
    fn permit_bounded(&self, ms: u32, what: &str) -> Result<Permit<'_>, Errno> {
        let start = now_ms();
        loop {
            if let Some(p) = self.permit() {
                return Ok(p);
            }
            if now_ms().saturating_sub(start) >= u64::from(ms) {
                pr_err!("session {}: {}: no free permit within {} ms (ETIMEDOUT)\n", self.name.as_str(), what, ms);
                return Err(Errno::ETIMEDOUT);
            }
            if !sleep_ms_interruptible(1) {
                pr_err!("session {}: {}: interrupted waiting for a permit (EINTR)\n", self.name.as_str(), what);
                return Err(Errno::EINTR);
            }
        }
    }

    /// Runs one request with its own buffer of `buf_len` bytes (`payload` copied in first)
    /// and waits, bounded by `cmd_timeout_ms`, for its confirmation; the finished call is
    /// returned for the caller to read the buffer. On a timeout or a signal the call stays
    /// with RTRS, which confirms it later: its confirmation returns the permit and frees the
    /// buffer, so neither leaks and the caller's memory is never written after it returned.
    fn call(&self, write: bool, usr: &[u8], payload: Option<&[u8]>, buf_len: usize, what: &str) -> Result<Arc<Call>, Errno> {
        let ms = cmd_timeout_ms();
        let call = Call::new(self, buf_len, payload)?;
        let permit = self.permit_bounded(ms, what)?;
        call.hold(permit);
        let ctx = Arc::into_raw(call.clone()).cast_mut().cast::<c_void>();
        // SAFETY: the buffer and the scatterlist live in `call`, kept alive by the reference
        // handed to RTRS as `ctx` until `call_conf` takes it back; the permit is held by it.
        let r = unsafe { self.request_raw(write, call.permit_ptr(), usr, call.sg_ptr(), 1, buf_len, call_conf, ctx) };
        if let Err(e) = r {
            // SAFETY: the request was not started: the reference is still ours to drop.
            drop(unsafe { Arc::from_raw(ctx as *const Call) });
            // Nor will a confirmation return the permit: it goes back now.
            call.release_permit();
            pr_err!("session {}: {}: request refused ({})\n", self.name.as_str(), what, e.name());
            return Err(e);
        }
        match call.done.wait_timeout(ms) {
            Waited::Done => {}
            Waited::TimedOut => {
                pr_err!("session {}: {}: no reply within {} ms (ETIMEDOUT)\n", self.name.as_str(), what, ms);
                return Err(Errno::ETIMEDOUT);
            }
            Waited::Interrupted => {
                pr_err!("session {}: {}: interrupted waiting for the reply (EINTR)\n", self.name.as_str(), what);
                return Err(Errno::EINTR);
            }
        }
        let errno = call.errno.load(Ordering::Acquire);
        if errno < 0 {
            return Err(Errno::from_kernel(errno));
        }
        Ok(call)
    }

    /// Sends one encoded command and waits for the reply (process context). Small commands
    /// return the encoded reply in `rsp` (its length); large ones return 0 after a success.
    pub(crate) fn cmd(&self, msg: &[u8], rsp: &mut [u8]) -> Result<usize, Errno> {
        let large = msg.len() > USR_MAX;
        let call = if large {
            self.call(true, &[], Some(msg), msg.len(), "command")?
        } else {
            self.call(false, msg, None, RSP_BUF_LEN, "command")?
        };
        if large {
            return Ok(0);
        }
        let data = call.data();
        let n = frame_len(data).ok_or(Errno::EPROTO)?;
        if n > rsp.len() {
            return Err(Errno::EMSGSIZE);
        }
        rsp[..n].copy_from_slice(&data[..n]);
        Ok(n)
    }

    /// A read of `buf.len()` bytes with the encoded IO message `usr` (sync reads from
    /// peers), bounded like a command. RTRS reads into the call's own buffer, copied to
    /// `buf` after the confirmation.
    pub(crate) fn read_sync(&self, usr: &[u8], buf: &mut [u8]) -> Result<(), Errno> {
        let call = self.call(false, usr, None, buf.len(), "sync read")?;
        let src = call.data().get(..buf.len()).ok_or(Errno::EIO)?;
        buf.copy_from_slice(src);
        Ok(())
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
    /// Gives up ownership: the caller returns it (`rtrs_clt_put_permit`), as [`OwnedPermit`]
    /// and `Call` do.
    pub(crate) fn into_raw(self) -> *mut c_void {
        let p = self.p;
        core::mem::forget(self);
        p.cast()
    }
}


impl Drop for Permit<'_> {
    fn drop(&mut self) {
        // SAFETY: a live permit of this session, returned once.
        unsafe { raw::rtrs_clt_put_permit(self.sess.raw(), self.p) };
    }
}

/// An RTRS permit held by an IO unit across contexts: it keeps its session alive and goes
/// back to RTRS exactly once, when dropped (any context: `rtrs_clt_put_permit` does not
/// sleep).
///
/// # Invariants
/// `p` is a permit taken from `sess` and not returned yet.
pub(crate) struct OwnedPermit {
    sess: Arc<CltSess>,
    p: core::ptr::NonNull<raw::rtrs_permit>,
}

// SAFETY: a permit is RTRS memory handed to its holder, usable and returnable from any thread;
// the session is shared through `Arc`.
unsafe impl Send for OwnedPermit {}
// SAFETY: `&OwnedPermit` only reads the pointer value and the session.
unsafe impl Sync for OwnedPermit {}

impl OwnedPermit {
    /// Takes a free permit of `sess` without sleeping.
    pub(crate) fn take(sess: &Arc<CltSess>) -> Option<OwnedPermit> {
        let p = sess.permit()?.into_raw();
        let p = core::ptr::NonNull::new(p.cast::<raw::rtrs_permit>())?;
        Some(OwnedPermit { sess: sess.clone(), p })
    }

    /// Whether this permit was taken from `sess`.
    pub(crate) fn is_of(&self, sess: &CltSess) -> bool {
        core::ptr::eq(&*self.sess, sess)
    }

    /// The raw permit, for [`CltSess::request_raw`] on the session it was taken from; it
    /// stays this value's to return.
    pub(crate) fn as_raw(&self) -> *mut c_void {
        self.p.as_ptr().cast()
    }
}

impl Drop for OwnedPermit {
    fn drop(&mut self) {
        // SAFETY: by the type invariant a permit of `sess` not returned yet; returned once,
        // here.
        unsafe { raw::rtrs_clt_put_permit(self.sess.raw(), self.p.as_ptr()) };
    }
}

/// `/sys/module/rmr/parameters/cmd_timeout_ms`.
pub(crate) fn cmd_timeout_ms() -> u32 {
    extern "C" {
        fn rmr_glue_cmd_timeout_ms() -> c_int;
    }
    // SAFETY: reads an int with READ_ONCE; no preconditions.
    let v = unsafe { rmr_glue_cmd_timeout_ms() };
    u32::try_from(v).unwrap_or(30_000)
}

/// `/sys/module/rmr/parameters/{hb_interval_ms,hb_missed_max}`: the RTRS heartbeat of rmr's
/// paths (`rmr_rtrs_hb.c`).
pub(crate) fn heartbeat() -> (c_uint, c_uint) {
    extern "C" {
        fn rmr_glue_hb_interval_ms() -> c_int;
        fn rmr_glue_hb_missed_max() -> c_int;
    }
    // SAFETY: each reads an int with READ_ONCE; no preconditions.
    let (i, m) = unsafe { (rmr_glue_hb_interval_ms(), rmr_glue_hb_missed_max()) };
    (c_uint::try_from(i).unwrap_or(1000), c_uint::try_from(m).unwrap_or(4))
}

/// One command or sync read in flight: its buffer, its scatterlist, the permit it holds and
/// the wait for its confirmation.
///
/// # Invariants
/// - `sess` is the live RTRS session the request was sent on; RTRS confirms every request
///   before `rtrs_clt_close` returns, so it is live whenever `call_conf` runs.
/// - `permit` is null or a permit of `sess` that this call holds; it is taken out (and
///   returned to RTRS) exactly once: by `call_conf`, or by `release_permit` when the request
///   never started.
/// - `buf` is written by RTRS only between the start of the request and `call_conf`, and read
///   only after `done` completed (or before the start); the scatterlist in `sg_mem` points
///   into `buf`; both are heap memory owned by this object, which never moves.
#[pin_data]
struct Call {
    #[pin]
    done: Completion,
    errno: AtomicI32,
    sess: *mut raw::rtrs_clt_sess,
    permit: AtomicPtr<c_void>,
    buf: KVec<u8>,
    sg_mem: KVec<u64>,
}

// SAFETY: the raw pointers are the session (usable from any thread), and memory owned by the
// call itself; see the type invariants for who touches `buf` when.
unsafe impl Send for Call {}
// SAFETY: as above; the shared state is atomics and a C completion.
unsafe impl Sync for Call {}

fn zeroed_words(bytes: usize) -> Result<KVec<u64>, Errno> {
    let words = bytes.div_ceil(8);
    let mut v = KVec::with_capacity(words, GFP_KERNEL).map_err(|_| Errno::ENOMEM)?;
    v.extend_with(words, 0u64, GFP_KERNEL).map_err(|_| Errno::ENOMEM)?;
    Ok(v)
}

impl Call {
    fn new(sess: &CltSess, len: usize, payload: Option<&[u8]>) -> Result<Arc<Call>, Errno> {
        let mut buf = KVec::with_capacity(len, GFP_KERNEL).map_err(|_| Errno::ENOMEM)?;
        buf.extend_with(len, 0u8, GFP_KERNEL).map_err(|_| Errno::ENOMEM)?;
        if let Some(p) = payload {
            buf.get_mut(..p.len()).ok_or(Errno::EINVAL)?.copy_from_slice(p);
        }
        let data = buf.as_mut_ptr();
        // SAFETY: no preconditions.
        let mut sg_mem = zeroed_words(unsafe { rmr_sg_size() })?;
        let len32 = u32::try_from(len).map_err(|_| Errno::EINVAL)?;
        // SAFETY: `sg_mem` is scatterlist-sized and 8-aligned; `data` is kmalloc memory of
        // `len` bytes (physically contiguous) that lives as long as the call.
        unsafe { rmr_sg_init_one(sg_mem.as_mut_ptr().cast(), data.cast(), len32) };
        Arc::pin_init(
            pin_init!(Call {
                done <- Completion::new(),
                errno: AtomicI32::new(0),
                sess: sess.raw(),
                permit: AtomicPtr::new(core::ptr::null_mut()),
                buf,
                sg_mem,
            }),
            GFP_KERNEL,
        )
        .map_err(|_| Errno::ENOMEM)
    }

    /// The call takes over `permit` (returned by its confirmation or `release_permit`).
    fn hold(&self, permit: Permit<'_>) {
        // INVARIANT: the permit belongs to `self.sess` (the session the call was made for).
        self.permit.store(permit.into_raw(), Ordering::Release);
    }

    fn permit_ptr(&self) -> *mut c_void {
        self.permit.load(Ordering::Acquire)
    }

    fn sg_ptr(&self) -> *mut c_void {
        self.sg_mem.as_ptr().cast_mut().cast()
    }

    /// Returns the held permit, if any, exactly once.
    fn release_permit(&self) {
        let p = self.permit.swap(core::ptr::null_mut(), Ordering::AcqRel);
        if !p.is_null() {
            // SAFETY: a permit of `sess`, live (type invariant), taken out of the call by the
            // swap above, so returned once.
            unsafe { raw::rtrs_clt_put_permit(self.sess, p.cast()) };
        }
    }

    /// The buffer after the confirmation.
    fn data(&self) -> &[u8] {
        // Called only after the confirmation was observed (`done` completed, errno read with
        // Acquire): RTRS writes the buffer no more (type invariant).
        &self.buf
    }
}

/// RTRS confirmation of a command or sync read (softirq context): returns the permit, then
/// wakes the waiter, if it still waits.
///
/// # Safety
/// `priv_` is the `Arc<Call>` reference leaked for this request.
unsafe extern "C" fn call_conf(priv_: *mut c_void, errno: c_int) {
    // SAFETY: `priv_` is the reference leaked by `CltSess::call` for this request.
    let call = unsafe { Arc::from_raw(priv_ as *const Call) };
    call.errno.store(errno, Ordering::Release);
    call.release_permit();
    call.done.complete();
}
