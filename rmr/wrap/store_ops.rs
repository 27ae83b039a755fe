// SPDX-License-Identifier: GPL-2.0-or-later
//! brmr's store operations as rmr calls them (the C ABI of rmr/api/abi.rs): the registered ops
//! table, and requests handed to the store's `submit` and given back by `rmr_srv_io_done`.

use crate::abi::{RmrPoolMd, RmrSrvIo, RmrSrvStoreOps};
use crate::rmr_core::errno::Errno;
use core::cell::UnsafeCell;
use core::ffi::{c_int, c_void};
use kernel::prelude::*;
use kernel::types::ForeignOwnable;

fn neg(e: Errno) -> i32 {
    e.to_kernel()
}

/// A registered store: brmr's ops table and its private pointer.
///
/// # Invariants
/// `ops` points to a valid ops table and, with `priv_`, stays valid until
/// `rmr_srv_unregister` removes the registration (brmr unregisters every store before it can
/// be unloaded). Ops are only called while a store reference is held (see `store_get`).
#[derive(Clone, Copy)]
pub(crate) struct StoreReg {
    ops: *const RmrSrvStoreOps,
    priv_: *mut c_void,
}

// SAFETY: brmr's ops are plain functions callable from any thread; `priv_` is only handed back
// to them.
unsafe impl Send for StoreReg {}

impl StoreReg {
    /// A registration of `ops` with `priv_`.
    ///
    /// # Safety
    /// `ops` points to a valid ops table, and `ops` and `priv_` stay valid until the store is
    /// unregistered.
    pub(crate) unsafe fn new(ops: *const RmrSrvStoreOps, priv_: *mut c_void) -> Self {
        // INVARIANT: per this function's contract.
        StoreReg { ops, priv_ }
    }

    fn ops(&self) -> &RmrSrvStoreOps {
        // SAFETY: valid while registered (type invariant).
        unsafe { &*self.ops }
    }

    pub(crate) fn io_allowed(&self) -> bool {
        match self.ops().io_allowed {
            // SAFETY: op and `priv_` valid while registered (type invariant).
            Some(f) => unsafe { f(self.priv_) },
            None => false,
        }
    }

    pub(crate) fn md_update(&self, md: &RmrPoolMd) -> i32 {
        match self.ops().md_update {
            // SAFETY: as above; `md` is valid for the call.
            Some(f) => unsafe { f(self.priv_, md) },
            None => 0,
        }
    }

    /// Writes one metadata page (`RMR_MD_PAGE` bytes of `data`); -EINVAL if `data` is short.
    pub(crate) fn md_write(&self, region: u32, index: u32, page: u32, data: &[u8]) -> i32 {
        if data.len() < crate::abi::RMR_MD_PAGE {
            return neg(Errno::EINVAL);
        }
        match self.ops().md_write {
            // SAFETY: as above; `data` is readable for `RMR_MD_PAGE` bytes during the call.
            Some(f) => unsafe { f(self.priv_, region, index, page, data.as_ptr()) },
            None => neg(Errno::EOPNOTSUPP),
        }
    }

    /// Reads one metadata page into `data`; -EINVAL if `data` is short.
    pub(crate) fn md_read(&self, region: u32, index: u32, page: u32, data: &mut [u8]) -> i32 {
        if data.len() < crate::abi::RMR_MD_PAGE {
            return neg(Errno::EINVAL);
        }
        match self.ops().md_read {
            // SAFETY: as above; `data` is writable for `RMR_MD_PAGE` bytes during the call.
            Some(f) => unsafe { f(self.priv_, region, index, page, data.as_mut_ptr()) },
            None => neg(Errno::EOPNOTSUPP),
        }
    }

    /// Makes the metadata pages written so far durable (`flush`: past the device cache too).
    pub(crate) fn md_sync(&self, flush: bool) -> i32 {
        match self.ops().md_sync {
            // SAFETY: as above.
            Some(f) => unsafe { f(self.priv_, flush) },
            None => neg(Errno::EOPNOTSUPP),
        }
    }

    /// The store's `RMR_STORE_*` capabilities (none if it has no `caps` op).
    pub(crate) fn caps(&self) -> u32 {
        match self.ops().caps {
            // SAFETY: as above.
            Some(f) => unsafe { f(self.priv_) },
            None => 0,
        }
    }

    pub(crate) fn cmd(&self, req: &[u8], rsp: &mut [u8]) -> i32 {
        match self.ops().cmd {
            // SAFETY: as above; both buffers valid for their lengths during the call.
            Some(f) => unsafe { f(self.priv_, req.as_ptr(), req.len(), rsp.as_mut_ptr(), rsp.len()) },
            None => neg(Errno::EOPNOTSUPP),
        }
    }

    /// Hands `req` to the store at byte `offset`, with `flags` added to its request flags.
    /// The store gives it back through `rmr_srv_io_done` ([`take_done`]); a refusal gives it
    /// back here with the store's errno.
    pub(crate) fn submit<T: StoreIo>(&self, req: Pin<KBox<T>>, offset: u64, flags: u32) -> Result<(), (Pin<KBox<T>>, i32)> {
        let Some(f) = self.ops().submit else {
            return Err((req, neg(Errno::EOPNOTSUPP)));
        };
        let sio = req.sio().0.get();
        // SAFETY: `sio` points into the request's box, which we own: nothing else reads or
        // writes it until the store has it (`SioCell` invariant).
        unsafe {
            (*sio).offset = offset;
            (*sio).flags |= flags;
        }
        let foreign = req.into_foreign();
        // SAFETY: the box is alive (owned by `foreign`) and still not shared.
        unsafe { (*sio).rmr_priv = foreign.cast_mut() };
        // SAFETY: op and `priv_` valid (type invariant); `sio` stays valid until the store
        // completes it, because the box is only rebuilt by `take_done` or below.
        let r = unsafe { f(self.priv_, sio) };
        if r != 0 {
            // SAFETY: refused, so the store never completes it: `foreign` came from
            // `into_foreign` above and is taken back once.
            let req = unsafe { <Pin<KBox<T>> as ForeignOwnable>::from_foreign(foreign) };
            return Err((req, if r < 0 { r } else { neg(Errno::EIO) }));
        }
        Ok(())
    }
}

/// The `rmr_srv_io` a request embeds for the store.
///
/// # Invariants
/// Written only by [`StoreReg::submit`] (while it owns the request) and by the store between
/// `submit` and `rmr_srv_io_done`; `data` stays valid as long as the request exists (it points
/// into memory the request owns or keeps alive).
pub(crate) struct SioCell(UnsafeCell<RmrSrvIo>);

// SAFETY: the cell is only accessed by its owner or, while submitted, by the store (type
// invariant); its data pointer may be used from any thread.
unsafe impl Send for SioCell {}

impl SioCell {
    /// A request of `len` bytes at `data` with `flags`.
    pub(crate) fn new(flags: u32, len: u32, data: *mut u8) -> Self {
        SioCell(UnsafeCell::new(RmrSrvIo { flags, len, offset: 0, data, rmr_priv: core::ptr::null_mut() }))
    }

    /// Makes the cell a new request, for a reused [`StoreIo`] that the store has completed
    /// (or never got): only its owner holds it.
    pub(crate) fn reset(&self, flags: u32, len: u32, data: *mut u8) {
        // SAFETY: by the type invariant only the owner accesses the cell while it is not
        // submitted, and the owner calls this between a completion and the next submission.
        unsafe { *self.0.get() = RmrSrvIo { flags, len, offset: 0, data, rmr_priv: core::ptr::null_mut() } };
    }
}

/// A Rust request handed to the store.
pub(crate) trait StoreIo: 'static {
    /// Its store request.
    fn sio(&self) -> &SioCell;
}

/// The request the store completed with `rmr_srv_io_done(io, ..)`.
///
/// # Safety
/// `io` is null or was passed to the store by [`StoreReg::submit`] for a `T` and is
/// completed exactly once.
pub(crate) unsafe fn take_done<T: StoreIo>(io: *mut RmrSrvIo, err: c_int) -> Option<(Pin<KBox<T>>, c_int)> {
    if io.is_null() {
        return None;
    }
    // SAFETY: `rmr_priv` is the `into_foreign` pointer set by `submit`, given back once.
    let req = unsafe { <Pin<KBox<T>> as ForeignOwnable>::from_foreign((*io).rmr_priv) };
    Some((req, err))
}
