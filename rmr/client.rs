// SPDX-License-Identifier: GPL-2.0-or-later
//! rmr-client pools: `ctl/join_pool` and `pools/<p>/leave_pool`. Legs, IO and recovery come
//! with the replicated IO path.

use crate::kind;
use crate::sysfs::{Dir, PageWriter, Parent};
use crate::rmr_core::{
    jhash,
    params::{self, Name},
};
use crate::server::free_slot;
use crate::{state, State};
use kernel::prelude::*;

pub(crate) struct ClientPool {
    pub(crate) id: u64,
    pub(crate) name: Name,
    pub(crate) group_id: u32,
    #[allow(dead_code)]
    pub(crate) chunk_size: u32,
    pub(crate) sync: bool,
    #[allow(dead_code)]
    pub(crate) queue_depth: u32,
    /// Legs of the pool (none until add_sess exists).
    pub(crate) legs: u32,
    /// Opened by an upper layer (BRMR map or add_clt).
    pub(crate) in_use: bool,
    // Children before the parent: fields drop in declaration order.
    _sessions: Dir,
    _dir: Dir,
}

fn log_parse(what: &str, e: params::ParseError) -> Error {
    pr_err!("rmr-client {}: {}\n", what, e);
    crate::err(e.errno())
}

fn by_id(st: &mut State, id: u64) -> Option<&mut ClientPool> {
    st.clt.iter_mut().flatten().find(|p| p.id == id)
}

/// `ctl/join_pool poolname=<n> chunk_size=<bytes> [sync=y|n] [queue_depth=<q>]`.
pub(crate) fn join_pool(input: &[u8]) -> Result {
    let j = params::client_join_pool(input).map_err(|e| log_parse("join_pool", e))?;
    let name = Name::new(j.poolname).ok_or(EINVAL)?;
    let group_id = jhash::group_id(j.poolname);
    let mut st = state().ok_or(ENODEV)?;
    if st.clt.iter().flatten().any(|p| p.name == name || p.group_id == group_id) {
        pr_err!("client pool {}: join_pool: pool or group_id {:#x} exists (EEXIST)\n", name.as_str(), group_id);
        return Err(EEXIST);
    }
    let slot = free_slot(&mut st.clt)?;
    let id = st.new_id();
    let dir = Dir::new(Parent::Top(kind::DIR_CLT_POOLS), j.poolname, kind::CLT_POOL, id)?;
    let sessions = Dir::new(Parent::Dir(&dir), b"sessions", kind::PLAIN, id)?;
    st.clt[slot] = Some(ClientPool {
        id,
        name,
        group_id,
        chunk_size: j.chunk_size,
        sync: j.sync,
        queue_depth: j.queue_depth,
        legs: 0,
        in_use: false,
        _sessions: sessions,
        _dir: dir,
    });
    pr_info!(
        "client pool {}: joined (chunk_size {}, queue_depth {}{})\n",
        name.as_str(),
        j.chunk_size,
        j.queue_depth,
        if j.sync { ", sync" } else { "" }
    );
    Ok(())
}

pub(crate) fn show(_id: u64, _attr: &[u8], _w: &mut PageWriter<'_>) -> Result {
    Err(EINVAL)
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
        let p = by_id(&mut st, id).ok_or(ENODEV)?;
        let name = p.name;
        params::parse_trigger(input, false).map_err(|e| log_parse(name.as_str(), e))?;
        if p.legs > 0 || p.in_use {
            pr_err!(
                "client pool {}: leave_pool refused: {} (EBUSY)\n",
                name.as_str(),
                if p.legs > 0 { "legs exist" } else { "pool is in use" }
            );
            return Err(EBUSY);
        }
        let slot = st.clt.iter().position(|p| p.as_ref().is_some_and(|p| p.id == id));
        slot.and_then(|s| st.clt[s].take())
    };
    if let Some(p) = taken {
        pr_info!("client pool {}: left{}\n", p.name.as_str(), if p.sync { " (sync)" } else { "" });
        drop(p);
    }
    Ok(())
}
