// SPDX-License-Identifier: GPL-2.0-or-later
//! rmr.ko: reliable multicast over RTRS.
//!
//! This crate is a thin shell: it owns the kernel objects (sysfs directories, locks, later
//! RTRS sessions and requests) and asks `rmr_core` for every decision.

use wrap::global::{Global, Owner};
use kernel::prelude::*;
use kernel::sync::Mutex;
use kernel::{new_mutex, sync::lock::Guard};

#[allow(dead_code, unused_imports, missing_docs, unreachable_pub, clippy::all)]
#[path = "../rmr-core/src/lib.rs"]
mod rmr_core;

#[path = "../rtrs-sys/mod.rs"]
mod rtrs_sys;

mod api;
use api::abi;
mod client;
mod kmap;
mod peer;
mod server;
mod sysfs;
mod transport;
mod wrap;

/// sysfs object kinds; must match the enum in rmr_glue.c.
pub(crate) mod kind {
    pub(crate) const CLT_CTL: u32 = 0;
    pub(crate) const SRV_CTL: u32 = 1;
    pub(crate) const CLT_POOL: u32 = 2;
    pub(crate) const SRV_POOL: u32 = 3;
    pub(crate) const PLAIN: u32 = 4;
    pub(crate) const CLT_SESS: u32 = 5;
    /// `glue_dir()` selectors.
    pub(crate) const DIR_CLT_POOLS: u32 = 0;
    pub(crate) const DIR_SRV_POOLS: u32 = 1;
}

pub(crate) use wrap::params::{sync_queue_depth, write_intent};

use rmr_core::errno::Errno;

module! {
    type: RmrModule,
    name: "rmr",
    author: "rmr authors",
    description: "Reliable multicast over RTRS: replicated block IO pools",
    license: "GPL",
}

/// Upper bound of pools of one role on one host.
pub(crate) const MAX_POOLS: usize = 64;

/// Everything the module knows, behind one lock.
pub(crate) struct State {
    pub(crate) clt: KVec<Option<client::PoolEntry>>,
    /// Client transport sessions with their number of legs.
    pub(crate) sess: KVec<Option<(kernel::sync::Arc<rtrs_sys::clt::CltSess>, u32)>>,
    pub(crate) srv: KVec<Option<server::ServerPool>>,
    next_id: u64,
}

impl State {
    pub(crate) fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }
}

static STATE: Global<Mutex<State>> = Global::new();

/// Locks the module state.
///
/// Sysfs callbacks and the exported ABI run only between module init and exit, while the
/// state is published; outside that window they see `None`.
pub(crate) fn state() -> Option<Guard<'static, State, kernel::sync::lock::mutex::MutexBackend>> {
    STATE.get().map(|m| m.lock())
}

/// Converts a core errno into the value sysfs and C callers expect.
pub(crate) fn err(e: Errno) -> Error {
    Error::from_errno(e.to_kernel())
}

// Fields drop in order after `drop`: the registry, then the state, each unpublished first.
struct RmrModule {
    /// The client recovery worker (§6.8), stopped first at unload.
    recover: Option<wrap::dwork::Dwork>,
    _registry: Owner<server::Registry>,
    state: Owner<Mutex<State>>,
}

impl kernel::Module for RmrModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let state = KBox::pin_init(
            new_mutex!(
                State {
                    clt: KVec::new(),
                    sess: KVec::new(),
                    srv: KVec::new(),
                    next_id: 0,
                },
                "rmr_state"
            ),
            GFP_KERNEL,
        )?;
        let state = STATE.publish(state);
        let registry = match server::new_registry() {
            Ok(r) => server::REG.publish(r),
            Err(e) => {
                pr_err!("cannot set up the server role: {:?}\n", e);
                return Err(e);
            }
        };
        if let Err(e) = sysfs::init() {
            server::exit();
            pr_err!("cannot register sysfs classes: {:?}\n", e);
            return Err(e);
        }
        let recover = match wrap::dwork::Dwork::new_module(wrap::dwork::DW_CLT_RECOVER) {
            Ok(d) => d,
            Err(e) => {
                server::exit();
                sysfs::exit();
                pr_err!("cannot set up the recovery worker: {:?}\n", e);
                return Err(e);
            }
        };
        recover.queue(rmr_core::consts::RMR_RECOVER_INTERVAL_MS as u32);
        pr_info!("loaded (classes rmr-client, rmr-server)\n");
        Ok(RmrModule { recover: Some(recover), _registry: registry, state })
    }
}

impl Drop for RmrModule {
    fn drop(&mut self) {
        // The recovery worker first (it walks the client pools and sends commands).
        if let Some(d) = self.recover.take() {
            d.free();
        }
        // The server role first: close the RTRS server (every session goes), then shut down
        // its pools, detaching their sync pools before the client pools go.
        let nsrv = self.state.get().lock().srv.iter().flatten().count();
        if nsrv > 0 {
            pr_info!("unload: tearing down {} server pool(s) left configured\n", nsrv);
        }
        server::exit();
        // Tear down every pool left configured: take them out under the lock, then drop
        // them (removing their directories) without it.
        let (clt, srv) = {
            let mut st = self.state.get().lock();
            let clt = core::mem::take(&mut st.clt);
            let srv = core::mem::take(&mut st.srv);
            (clt, srv)
        };
        let sess = core::mem::take(&mut self.state.get().lock().sess);
        let n = clt.iter().flatten().count() + srv.iter().flatten().count();
        if n > 0 {
            pr_info!("unload: tearing down {} pool(s) left configured\n", n);
        }
        drop(clt);
        drop(srv);
        drop(sess);
        sysfs::exit();
        pr_info!("unloaded\n");
    }
}
