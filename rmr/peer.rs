// SPDX-License-Identifier: GPL-2.0-or-later
//! What the server role uses of the client role: the sync pool attached by `add_clt`
//! (SPEC §2.3, §5.3 step 4, §6.8, §7). Every call may sleep; none may be called with a
//! spinlock held or from the IO completion path.

#![deny(unsafe_code)]

use crate::client::{self, CltPool};
use crate::rmr_core::{
    errno::Errno,
    wire::{Cmd, MemberList, RspBody},
};
use kernel::sync::Arc;

/// A sync client pool attached to a server pool (IN_USE while attached).
pub(crate) struct SyncPool {
    pool: Arc<CltPool>,
}

/// `add_clt <name>`: -ENOENT unknown pool, -EINVAL not a sync pool, -EBUSY already in use.
pub(crate) fn attach(name: &[u8]) -> Result<SyncPool, Errno> {
    client::open(name, true).map(|pool| SyncPool { pool })
}

impl SyncPool {
    /// Members behind the pool's NORMAL legs (the peers a sync may read from).
    pub(crate) fn normal_peers(&self) -> MemberList {
        self.pool.normal_members()
    }

    /// Reads `buf.len()` bytes at byte `offset` inside chunk `chunk` from `member` with an
    /// IO_SYNC read, bounded by `cmd_timeout_ms`. The peer answers -EAGAIN when the chunk is
    /// dirty or syncing on its side.
    pub(crate) fn read_chunk(&self, member: u32, chunk: u64, offset: u32, buf: &mut [u8]) -> Result<(), Errno> {
        self.pool.sync_read(member, chunk, offset, buf)
    }

    /// `RMR_CMD_MAP_CHECK(map_ver)` to `member`: true = its own map is empty.
    pub(crate) fn map_check(&self, member: u32, map_ver: u64) -> Result<bool, Errno> {
        self.pool.member_cmd(member, &Cmd::MapCheck { map_ver }, |r| match (r.errno, r.body) {
            (0, RspBody::Bool(b)) => Ok(b),
            (0, _) => Err(Errno::EPROTO),
            (e, _) => Err(Errno::from_kernel(e)),
        })?
    }

    /// A command the core built (e.g. `RMR_MSG_MAP_CLEAR`) to `member`; its reply's errno.
    pub(crate) fn send(&self, member: u32, cmd: &Cmd<'_>) -> Result<(), Errno> {
        self.pool.member_cmd(member, cmd, |r| if r.errno == 0 { Ok(()) } else { Err(Errno::from_kernel(r.errno)) })?
    }
}

/// Detaches (server `leave_pool` or module exit): the client pool leaves IN_USE.
impl Drop for SyncPool {
    fn drop(&mut self) {
        self.pool.close();
    }
}
