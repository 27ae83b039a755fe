// SPDX-License-Identifier: GPL-2.0-or-later
//! rmr-server pools: `ctl/join_pool` and `pools/<p>/{state,member_id,leave_pool}`, store
//! registration. Decisions come from `rmr_core::store_reg`.

use crate::kind;
use crate::sysfs::{Dir, PageWriter, Parent};
use crate::rmr_core::{
    errno::Errno,
    jhash,
    params::{self, Name},
    store_reg::{self, SrvPoolState, SrvPoolView},
};
use crate::{abi, err, state, State, MAX_POOLS};
use core::ffi::c_void;
use core::fmt::Write;
use kernel::prelude::*;

/// A registered store: brmr's ops table and its private pointer.
///
/// # Invariants
/// `ops` and `priv_` stay valid until `rmr_srv_unregister` removes the registration
/// (brmr unregisters every store before it can be unloaded).
pub(crate) struct StoreReg {
    #[allow(dead_code)]
    pub(crate) ops: *const abi::RmrSrvStoreOps,
    #[allow(dead_code)]
    pub(crate) priv_: *mut c_void,
}

// SAFETY: brmr's ops are plain functions callable from any thread; `priv_` is only handed back
// to them.
unsafe impl Send for StoreReg {}

pub(crate) struct ServerPool {
    pub(crate) id: u64,
    pub(crate) name: Name,
    pub(crate) member_id: u32,
    pub(crate) group_id: u32,
    pub(crate) state: SrvPoolState,
    pub(crate) marked_create: bool,
    pub(crate) sessions: u32,
    pub(crate) store: Option<StoreReg>,
    pub(crate) pool_md: abi::RmrPoolMd,
    _dir: Dir,
}

impl ServerPool {
    pub(crate) fn view(&self) -> SrvPoolView {
        SrvPoolView {
            state: self.state,
            has_store: self.store.is_some(),
            sessions: self.sessions,
        }
    }
}

fn log_parse(what: &str, e: params::ParseError) -> Error {
    pr_err!("rmr-server {}: {}\n", what, e);
    err(e.errno())
}

/// Finds a server pool by name.
pub(crate) fn by_name<'a>(st: &'a mut State, name: &[u8]) -> Option<&'a mut ServerPool> {
    st.srv.iter_mut().flatten().find(|p| p.name.as_bytes() == name)
}

fn by_id(st: &mut State, id: u64) -> Option<&mut ServerPool> {
    st.srv.iter_mut().flatten().find(|p| p.id == id)
}

/// `ctl/join_pool poolname=<n> member_id=<u32>`.
pub(crate) fn join_pool(input: &[u8]) -> Result {
    let j = params::server_join_pool(input).map_err(|e| log_parse("join_pool", e))?;
    let name = Name::new(j.poolname).ok_or(EINVAL)?;
    let group_id = jhash::group_id(j.poolname);
    let mut st = state().ok_or(ENODEV)?;
    if st.srv.iter().flatten().any(|p| p.name == name || p.group_id == group_id) {
        pr_err!("server pool {}: join_pool: pool or group_id {:#x} exists (EEXIST)\n", name.as_str(), group_id);
        return Err(EEXIST);
    }
    let slot = free_slot(&mut st.srv)?;
    let id = st.new_id();
    let dir = Dir::new(Parent::Top(kind::DIR_SRV_POOLS), j.poolname, kind::SRV_POOL, id)?;
    st.srv[slot] = Some(ServerPool {
        id,
        name,
        member_id: j.member_id,
        group_id,
        state: SrvPoolState::Empty,
        marked_create: false,
        sessions: 0,
        store: None,
        pool_md: abi::RmrPoolMd::default(),
        _dir: dir,
    });
    pr_info!("server pool {}: joined as member {} (empty)\n", name.as_str(), j.member_id);
    Ok(())
}

/// Index of a free slot, growing the table up to `MAX_POOLS`.
pub(crate) fn free_slot<T>(v: &mut KVec<Option<T>>) -> Result<usize> {
    if let Some(i) = v.iter().position(|p| p.is_none()) {
        return Ok(i);
    }
    if v.len() >= MAX_POOLS {
        pr_err!("too many pools (max {}) (ENOSPC)\n", MAX_POOLS);
        return Err(ENOSPC);
    }
    v.push(None, GFP_KERNEL)?;
    Ok(v.len() - 1)
}

pub(crate) fn show(id: u64, attr: &[u8], w: &mut PageWriter<'_>) -> Result {
    let mut st = state().ok_or(ENODEV)?;
    let p = by_id(&mut st, id).ok_or(ENODEV)?;
    match attr {
        b"state" => writeln!(w, "{}", p.state.name()),
        b"member_id" => writeln!(w, "{}", p.member_id),
        _ => return Err(EINVAL),
    }
    .map_err(|_| EINVAL)
}

pub(crate) fn store(id: u64, attr: &[u8], input: &[u8]) -> Result {
    match attr {
        b"leave_pool" => leave_pool(id, input),
        _ => Err(EINVAL),
    }
}

fn leave_pool(id: u64, input: &[u8]) -> Result {
    let taken = {
        let mut st = state().ok_or(ENODEV)?;
        let slot = st.srv.iter().position(|p| p.as_ref().is_some_and(|p| p.id == id));
        let slot = slot.ok_or(ENODEV)?;
        let p = st.srv[slot].as_ref().ok_or(ENODEV)?;
        let name = p.name;
        params::parse_trigger(input, false)
            .map_err(|e| log_parse(name.as_str(), e))?;
        if let Err(e) = store_reg::srv_can_leave(p.view()) {
            pr_err!(
                "server pool {}: leave_pool refused: {} ({})\n",
                name.as_str(),
                if p.store.is_some() { "a store is registered" } else { "sessions are joined" },
                e.name()
            );
            return Err(err(e));
        }
        st.srv[slot].take()
    };
    if let Some(p) = taken {
        pr_info!("server pool {}: left\n", p.name.as_str());
        // Dropping removes `pools/<p>/` once no other reader or writer is inside it.
        drop(p);
    }
    Ok(())
}

/// `rmr_srv_pool_query` for brmr: the pool's state and member id, or -ENOENT.
pub(crate) fn query(name: &[u8]) -> core::result::Result<(SrvPoolState, u32), Errno> {
    let mut st = state().ok_or(Errno::ENODEV)?;
    let p = by_name(&mut st, name).ok_or(Errno::ENOENT)?;
    Ok((p.state, p.member_id))
}
