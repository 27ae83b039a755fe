// SPDX-License-Identifier: GPL-2.0-or-later
//! What the server role uses of the client role: the sync pool attached by `add_clt`
//! (SPEC §2.3, §5.3 step 4, §6.8, §7). Every call may sleep; none may be called with a
//! spinlock held or from the IO completion path.

use crate::rmr_core::{errno::Errno, wire::MemberList};

/// A sync client pool attached to a server pool (IN_USE while attached).
pub(crate) struct SyncPool {
    _private: (),
}

/// `add_clt <name>`: -ENOENT unknown pool, -EINVAL not a sync pool, -EBUSY already in use.
pub(crate) fn attach(_name: &[u8]) -> Result<SyncPool, Errno> {
    Err(Errno::EOPNOTSUPP)
}

impl SyncPool {
    /// Members behind the pool's NORMAL legs (the peers a sync may read from).
    pub(crate) fn normal_peers(&self) -> MemberList {
        MemberList::new()
    }

    /// Reads `len` bytes at byte `offset` inside chunk `chunk` from `member` with an IO_SYNC
    /// read into `buf` (physically contiguous, at least `len` bytes). The peer answers -EAGAIN
    /// when the chunk is dirty or syncing on its side.
    ///
    /// # Safety
    /// `buf` valid for writes of `len` bytes until the call returns.
    pub(crate) unsafe fn read_chunk(
        &self,
        _member: u32,
        _chunk: u64,
        _offset: u32,
        _len: u32,
        _buf: *mut u8,
    ) -> Result<(), Errno> {
        Err(Errno::EOPNOTSUPP)
    }

    /// `RMR_CMD_MAP_CHECK(map_ver)` to `member`: true = its own map is empty.
    pub(crate) fn map_check(&self, _member: u32, _map_ver: u64) -> Result<bool, Errno> {
        Err(Errno::EOPNOTSUPP)
    }

    /// `RMR_MSG_MAP_CLEAR(clean_member, chunk, map_ver)` to `member`.
    pub(crate) fn map_clear(&self, _member: u32, _clean_member: u32, _chunk: u64, _map_ver: u64) -> Result<(), Errno> {
        Err(Errno::EOPNOTSUPP)
    }
}

/// Detaches (server `leave_pool` or module exit): the client pool leaves IN_USE.
impl Drop for SyncPool {
    fn drop(&mut self) {}
}
