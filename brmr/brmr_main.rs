// SPDX-License-Identifier: GPL-2.0-or-later
//! brmr.ko: block devices over RMR pools.
//!
//! Server role: stores, i.e. backing block devices with BRMR metadata, registered with rmr
//! server pools through rmr's C ABI (server/). Client role: `/dev/brmrN` over rmr client pools
//! (client/). The FFI wrappers are in wrap/, the only module (with the sysfs plumbing shared
//! with rmr.ko) where the crate-wide `deny(unsafe_code)` below is lifted.

#![deny(unsafe_code)]

use kernel::prelude::*;
use kernel::sync::lock::{mutex::MutexBackend, Guard};
use kernel::sync::Mutex;
use kernel::new_mutex;

#[allow(dead_code, unused_imports, missing_docs, unreachable_pub, clippy::all)]
#[path = "../rmr-core/src/lib.rs"]
mod rmr_core;

#[allow(dead_code)]
#[path = "../rmr/api/abi.rs"]
mod abi;

// Shared with rmr.ko; not every helper is used here. It is rmr's FFI wrapper of
// sysfs_glue.h: like wrap/, it is allowed FFI code.
#[allow(dead_code, unsafe_code)]
#[path = "../rmr/sysfs.rs"]
mod sysfs;

mod client;
mod server;
mod wrap;

use crate::sysfs::PageWriter;
use wrap::global::{Global, Owner};

module! {
    type: BrmrModule,
    name: "brmr",
    author: "rmr authors",
    description: "Block devices over RMR replicated pools",
    license: "GPL",
}

/// sysfs object kinds; must match the enum in brmr_glue.c.
pub(crate) mod kind {
    /// brmr-client ctl: `map_device`.
    pub(crate) const CLT_CTL: u32 = 0;
    pub(crate) const SRV_CTL: u32 = 1;
    pub(crate) const STORE: u32 = 2;
    pub(crate) const PLAIN: u32 = 3;
    /// brmr-client `ctl/devices/brmrN`.
    pub(crate) const CLT_DEV: u32 = 4;
    /// `glue_dir()` selectors.
    pub(crate) const DIR_CLT_CTL: u32 = 0;
    pub(crate) const DIR_STORES: u32 = 1;
}

/// Stores on this host, behind one lock. Lock order: this lock, then rmr's; rmr calls into
/// brmr's store ops without taking this lock (they use per-store atomics only).
pub(crate) struct State {
    pub(crate) stores: KVec<Option<KBox<server::store::Store>>>,
    next_id: u64,
}

impl State {
    pub(crate) fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }
}

/// The module state, published before the sysfs classes exist and unpublished after they are
/// gone.
static STATE: Global<Mutex<State>> = Global::new();

/// Locks the module state; `None` outside the module's lifetime.
pub(crate) fn state() -> Option<Guard<'static, State, MutexBackend>> {
    STATE.get().map(|m| m.lock())
}

/// Converts a core errno into a kernel error.
pub(crate) fn err(e: rmr_core::errno::Errno) -> Error {
    Error::from_errno(e.to_kernel())
}

struct BrmrModule {
    state: Owner<Mutex<State>>,
    clt: Option<client::ClientRole>,
}

impl kernel::Module for BrmrModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let state = KBox::pin_init(
            new_mutex!(
                State {
                    stores: KVec::new(),
                    next_id: 0,
                },
                "brmr_state"
            ),
            GFP_KERNEL,
        )?;
        let state = STATE.publish(state);
        if let Err(e) = sysfs::init() {
            state.unpublish();
            pr_err!("cannot register sysfs classes: {:?}\n", e);
            return Err(e);
        }
        let clt = match client::ClientRole::new() {
            Ok(c) => c,
            Err(e) => {
                sysfs::exit();
                state.unpublish();
                return Err(e);
            }
        };
        pr_info!("loaded (classes brmr-client, brmr-server)\n");
        Ok(BrmrModule {
            state,
            clt: Some(clt),
        })
    }
}

impl Drop for BrmrModule {
    fn drop(&mut self) {
        let stores = {
            let mut st = self.state.get().lock();
            core::mem::take(&mut st.stores)
        };
        for s in stores.into_iter().flatten() {
            pr_info!("unload: removing store of pool {} (metadata kept)\n", s.pool.as_str());
            s.unregister(false);
            drop(s);
        }
        // Unmaps every /dev/brmrN and removes ctl/devices/.
        self.clt = None;
        sysfs::exit();
        self.state.unpublish();
        pr_info!("unloaded\n");
    }
}

/// sysfs reads of attribute `name` of the object `id` of kind `kind` (`wrap::attr`).
pub(crate) fn show_attr(kind: u32, id: u64, name: &[u8], w: &mut PageWriter<'_>) -> Result {
    match kind {
        kind::STORE => server::store::show(id, name, w),
        kind::CLT_DEV => client::show(id, name, w),
        _ => Err(EINVAL),
    }
}

/// sysfs writes of `input` to attribute `name` of the object `id` of kind `kind`
/// (`wrap::attr`).
pub(crate) fn store_attr(kind: u32, id: u64, name: &[u8], input: &[u8]) -> Result {
    match kind {
        kind::SRV_CTL if name == b"create_store" => server::store::create_or_add(input, false),
        kind::SRV_CTL if name == b"add_store" => server::store::create_or_add(input, true),
        kind::STORE => server::store::store_attr(id, name, input),
        kind::CLT_CTL if name == b"map_device" => client::map_device(input),
        kind::CLT_DEV => client::store_attr(id, name, input),
        _ => Err(EINVAL),
    }
}
