// SPDX-License-Identifier: GPL-2.0-or-later
//! The client IO path's hand-offs to C (issue 10): the upper layer's IO ([`UpperIo`]) and
//! the RTRS requests of each (IO unit, leg slot) ([`LegRequests`]). The pool's protocol code
//! (client/io.rs) reaches both through safe calls only.
//!
//! A leg request in flight owns what RTRS uses until its confirmation: a reference to the
//! pool (so the confirmation never reaches a freed pool), the RTRS permit (returned exactly
//! once, by the confirmation or by the failed send) and its slot's scatterlist table (one per
//! leg: RTRS maps it for its own device).

use crate::abi::RmrCltIo;
use crate::rmr_core::errno::Errno;
use crate::rtrs_sys::clt::{CltSess, OwnedPermit};
use crate::wrap::sg::{self, SgTables};
use core::cell::UnsafeCell;
use core::ffi::{c_int, c_void};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::alloc::flags::GFP_KERNEL;
use kernel::prelude::*;
use kernel::sync::{Arc, ArcBorrow};

/// An IO that the upper layer (brmr) handed to `rmr_clt_request` and rmr accepted.
///
/// # Invariants
/// `0` points to a valid `RmrCltIo` that only this value touches until [`UpperIo::complete`]
/// calls its `done`, or [`UpperIo::into_raw`] gives it back. The upper layer keeps the pages
/// its scatterlist names valid until `done`; the client pool completes an IO only after every
/// leg request naming those pages was confirmed (a unit finishes when all its targets
/// answered).
pub(crate) struct UpperIo(NonNull<RmrCltIo>);

// SAFETY: by the type invariant only this value touches the IO, and brmr's IO may be read and
// completed from any thread.
unsafe impl Send for UpperIo {}

impl UpperIo {
    /// Takes an IO from the upper layer; `None` if `io` is null.
    ///
    /// # Safety
    /// `io` is null or valid, and untouched by the caller until its `done` runs or this
    /// value is given back with [`UpperIo::into_raw`].
    pub(crate) unsafe fn from_raw(io: *mut RmrCltIo) -> Option<UpperIo> {
        // INVARIANT: per the contract.
        NonNull::new(io).map(UpperIo)
    }

    /// Gives the IO back to the upper layer, not completed (rmr refused it).
    pub(crate) fn into_raw(self) -> *mut RmrCltIo {
        self.0.as_ptr()
    }

    fn get(&self) -> &RmrCltIo {
        // SAFETY: valid and only ours (type invariant); rmr never writes it while a shared
        // borrow lives (the only write is in `complete`, which consumes `self`).
        unsafe { self.0.as_ref() }
    }

    /// `RMR_IO_*` flags.
    pub(crate) fn flags(&self) -> u32 {
        self.get().flags
    }

    /// Bytes (0 only for a pure flush).
    pub(crate) fn len(&self) -> u32 {
        self.get().len
    }

    /// Byte offset on the device.
    pub(crate) fn offset(&self) -> u64 {
        self.get().offset
    }

    /// Entries of the scatterlist.
    pub(crate) fn sg_cnt(&self) -> u32 {
        self.get().sg_cnt
    }

    /// Completes the IO: `served` (bit i: leg slot i served it) and `done(errno)`, once.
    pub(crate) fn complete(self, errno: c_int, served: u32) {
        let io = self.0.as_ptr();
        // SAFETY: valid and only ours until `done` runs (type invariant); `self` is consumed,
        // so `done` runs at most once.
        unsafe {
            (*io).served = served;
            if let Some(done) = (*io).done {
                done(io, errno);
            }
        }
    }
}

/// The owner of leg requests: a pool, reached by each request's confirmation.
pub(crate) trait LegReplies: Send + Sync + Sized {
    /// The owner's request table.
    fn requests(&self) -> &LegRequests<Self>;
    /// RTRS confirmed request (`unit`, `slot`) with `errno` (softirq context). The request's
    /// permit is back with RTRS already.
    fn leg_reply(this: ArcBorrow<'_, Self>, unit: usize, slot: usize, errno: c_int);
}

/// What a leg request carries besides the message.
pub(crate) enum Payload<'a> {
    /// The upper IO's pages (none for a pure flush): its scatterlist is copied into the
    /// slot's own table.
    Pages(&'a UpperIo),
    /// A discard or write-zeroes: no pages.
    NoData,
}

/// One (unit, slot) request, handed to RTRS as its context.
///
/// # Invariants
/// `owner` is null while no request of this slot is in flight. A sender that moves it from
/// null to a reference taken by `Arc::into_raw` owns `permit`, `audited` and the slot's
/// scatterlist table until RTRS confirms the request (then the confirmation owns them, and
/// moves `owner` back to null once it is done with them) or the send fails (then the sender
/// moves it back, last).
struct Slot<T> {
    owner: AtomicPtr<T>,
    permit: UnsafeCell<Option<OwnedPermit>>,
    /// The list recorded by `debug_sg_audit` for the request in flight (null if none).
    audited: AtomicPtr<c_void>,
    unit: u16,
    slot: u8,
}

/// The RTRS requests of `units` IO units of 4 leg slots each, request `unit * 4 + slot`.
///
/// # Invariants
/// `slots` and `sgs` are never reallocated, so a slot's address stays valid while its owner
/// lives; a request in flight holds a reference to the owner, which holds this table.
pub(crate) struct LegRequests<T> {
    slots: KVec<Slot<T>>,
    /// Empty on a pool without block IO (sync pools).
    sgs: SgTables,
}

// SAFETY: a slot's non-atomic fields are touched only by the party that owns the slot
// (type invariant of `Slot`); the owner pointer is an `Arc` of a `Send + Sync` type.
unsafe impl<T: Send + Sync> Sync for LegRequests<T> {}
// SAFETY: as above; nothing in it is tied to a thread.
unsafe impl<T: Send + Sync> Send for LegRequests<T> {}

impl<T: LegReplies> LegRequests<T> {
    /// Requests for `units` units; with scatterlist tables when `pages` (block IO).
    pub(crate) fn new(units: usize, pages: bool) -> Result<LegRequests<T>> {
        let n = units.checked_mul(4).ok_or(EINVAL)?;
        let mut slots = KVec::with_capacity(n, GFP_KERNEL)?;
        for k in 0..n {
            slots.push(
                Slot {
                    owner: AtomicPtr::new(core::ptr::null_mut()),
                    permit: UnsafeCell::new(None),
                    audited: AtomicPtr::new(core::ptr::null_mut()),
                    unit: u16::try_from(k / 4).map_err(|_| EINVAL)?,
                    slot: (k % 4) as u8,
                },
                GFP_KERNEL,
            )?;
        }
        // INVARIANT: both are filled once, here, and never grow.
        Ok(LegRequests { slots, sgs: SgTables::new(if pages { n } else { 0 })? })
    }

    /// Prepares request (`unit`, `slot`) of `owner` on `sess` with `permit` (taken from
    /// `sess`): claims the slot and copies the IO's scatterlist into the slot's table. Send
    /// it with [`Prepared::send`]; dropped unsent, it gives everything back. EBUSY if the
    /// slot has a request in flight (a bug of the caller), EINVAL for a slot out of range, a
    /// permit of another session or a scatterlist the table cannot hold.
    pub(crate) fn prepare<'a>(
        owner: ArcBorrow<'a, T>,
        unit: usize,
        slot: usize,
        sess: &'a CltSess,
        permit: OwnedPermit,
        data: Payload<'_>,
    ) -> Result<Prepared<'a, T>, Errno> {
        let reqs = owner.requests();
        let k = unit.checked_mul(4).and_then(|k| k.checked_add(slot)).filter(|_| slot < 4).ok_or(Errno::EINVAL)?;
        let s = reqs.slots.get(k).ok_or(Errno::EINVAL)?;
        if !permit.is_of(sess) {
            return Err(Errno::EINVAL);
        }
        let held = Arc::into_raw(Arc::from(owner)).cast_mut();
        if s.owner.compare_exchange(core::ptr::null_mut(), held, Ordering::AcqRel, Ordering::Acquire).is_err() {
            // SAFETY: `held` came from `Arc::into_raw` just above and was not handed out.
            drop(unsafe { Arc::from_raw(held) });
            return Err(Errno::EBUSY);
        }
        // The slot is ours now (type invariant of `Slot`); a `Prepared` releases it when
        // dropped unsent.
        let raw = permit.as_raw();
        // SAFETY: we own the slot's permit cell.
        unsafe { *s.permit.get() = Some(permit) };
        // INVARIANT: the slot is ours and holds the permit `raw`; the list is set below.
        let mut p = Prepared { slot: s as *const Slot<T>, sess, raw, sgp: core::ptr::null_mut(), nents: 0, len: 0 };
        match data {
            Payload::NoData => {}
            // A pure flush: no data.
            Payload::Pages(io) if io.len() == 0 => {}
            Payload::Pages(io) => {
                // SAFETY: the IO's list has `sg_cnt` entries, valid during this call (type
                // invariant of `UpperIo`); table `k` is ours (we own the slot). The copy
                // fails unless the entries hold the IO's `len` bytes (null list included).
                let (sgp, nents) =
                    unsafe { reqs.sgs.copy_into(k, io.get().sg, io.sg_cnt(), io.len()) }.map_err(|_| Errno::EINVAL)?;
                (p.sgp, p.nents, p.len) = (sgp, nents, io.len() as usize);
            }
        }
        if sg::audit_submit(p.sgp) {
            s.audited.store(p.sgp, Ordering::Relaxed);
        }
        Ok(p)
    }
}

/// A leg request that owns its slot, permit and scatterlist copy, not sent yet.
///
/// # Invariants
/// `slot` is null once sent; until then the slot is owned by this value (type invariant of
/// `Slot`), so it is alive (it holds a reference to its owner), it holds the permit `raw`,
/// and `sgp` (`nents` entries, or null) is the slot's table.
pub(crate) struct Prepared<'a, T> {
    slot: *const Slot<T>,
    sess: &'a CltSess,
    raw: *mut c_void,
    sgp: *mut c_void,
    nents: u32,
    len: usize,
}

impl<T: LegReplies> Prepared<'_, T> {
    /// Sends the request (`write` or read, `msg` as its user message). On success
    /// `T::leg_reply` runs exactly once later; on failure never, and everything is given
    /// back.
    pub(crate) fn send(mut self, write: bool, msg: &[u8]) -> Result<(), Errno> {
        let sp = core::mem::replace(&mut self.slot, core::ptr::null());
        // SAFETY: alive while owned by this value (type invariant).
        let Some(s) = (unsafe { sp.as_ref() }) else { return Err(Errno::EINVAL) };
        let ctx = sp.cast_mut().cast::<c_void>();
        // SAFETY: the permit is this session's and stays in the slot until `conf` (or the
        // failure below) takes it; the list is the slot's table, untouched until then, and
        // names pages that live until the IO completes, after this confirmation (type
        // invariant of `UpperIo`); `ctx` is the slot, which lives as long as the owner, kept
        // alive by the reference the slot holds until `conf`; RTRS copies `msg` during the
        // call.
        let r = unsafe { self.sess.request_raw(write, self.raw, msg, self.sgp, self.nents, self.len, conf::<T>, ctx) };
        if r.is_err() {
            // Not started: no confirmation comes, so the slot goes back here.
            drop(s.release());
        }
        r
    }
}

impl<T> Drop for Prepared<'_, T> {
    fn drop(&mut self) {
        let sp = core::mem::replace(&mut self.slot, core::ptr::null());
        // SAFETY: alive while owned by this value (type invariant).
        if let Some(s) = unsafe { sp.as_ref() } {
            drop(s.release());
        }
    }
}

impl<T> Slot<T> {
    /// Ends the slot's request: returns its permit, closes its audit record and frees the
    /// slot (last); the owner's reference is given to the caller. Only by the slot's owner.
    fn release(&self) -> Option<Arc<T>> {
        // SAFETY: the caller owns the slot (type invariant), so nobody else touches the cell.
        drop(unsafe { (*self.permit.get()).take() });
        // A load and a store, not a swap: only the slot's owner touches it.
        let a = self.audited.load(Ordering::Relaxed);
        if !a.is_null() {
            self.audited.store(core::ptr::null_mut(), Ordering::Relaxed);
            sg::audit_done(a);
        }
        let held = self.owner.swap(core::ptr::null_mut(), Ordering::AcqRel);
        if held.is_null() {
            return None;
        }
        // SAFETY: the reference the sender stored with `Arc::into_raw`, taken back once: the
        // swap above leaves null behind.
        Some(unsafe { Arc::from_raw(held) })
    }
}

/// RTRS confirmation of one leg request.
///
/// # Safety
/// `ctx` is the `Slot` given to `request_raw` by [`LegRequests::send`], confirmed once.
unsafe extern "C" fn conf<T: LegReplies>(ctx: *mut c_void, errno: c_int) {
    // SAFETY: the slot lives as long as its owner, whose reference it holds until the
    // release below (type invariants).
    let s = unsafe { &*(ctx as *const Slot<T>) };
    let (unit, slot) = (usize::from(s.unit), usize::from(s.slot));
    // The confirmation owns the slot now (type invariant of `Slot`).
    let Some(owner) = s.release() else {
        pr_err!("rmr: leg request {}/{} confirmed without a request in flight\n", unit, slot);
        return;
    };
    T::leg_reply(owner.as_arc_borrow(), unit, slot, errno);
}
