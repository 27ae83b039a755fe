// SPDX-License-Identifier: GPL-2.0-or-later
//! Member lists, ids, pool names and the pool metadata (`pool_md`, `srv_md`) on the wire.

use super::*;

/// A list of at most `RMR_POOL_MAX_SESS` distinct, non-zero member ids.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemberList {
    n: u8,
    ids: [u32; RMR_POOL_MAX_SESS],
}

/// Encoded size of a `MemberList`.
pub const MEMBER_LIST_LEN: usize = 4 + 4 * RMR_POOL_MAX_SESS;

impl MemberList {
    /// The empty list.
    pub const fn new() -> Self {
        MemberList { n: 0, ids: [0; RMR_POOL_MAX_SESS] }
    }
    /// Add `id`; a duplicate is ignored. Errors: 0 id (`Inval`), list full (`NoSpc`).
    pub fn push(&mut self, id: u32) -> Result<()> {
        if id == 0 {
            return Err(Error::Inval);
        }
        if self.contains(id) {
            return Ok(());
        }
        let slot = self.ids.get_mut(usize::from(self.n)).ok_or(Error::NoSpc)?;
        *slot = id;
        self.n += 1;
        Ok(())
    }
    /// Remove `id` if present.
    pub fn remove(&mut self, id: u32) {
        let mut out = MemberList::new();
        for m in self.iter().filter(|m| *m != id) {
            let _ = out.push(m);
        }
        *self = out;
    }
    /// Whether `id` is listed.
    pub fn contains(&self, id: u32) -> bool {
        self.as_slice().contains(&id)
    }
    /// Number of members.
    pub fn len(&self) -> usize {
        usize::from(self.n)
    }
    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
    /// The members as a slice.
    pub fn as_slice(&self) -> &[u32] {
        self.ids.get(..usize::from(self.n)).unwrap_or(&[])
    }
    /// Iterate the members.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.as_slice().iter().copied()
    }
    pub(super) fn encode(&self, w: &mut Writer<'_>) -> Result<()> {
        w.u8(self.n)?;
        w.bytes(&[0; 3])?;
        for id in self.ids {
            w.u32(id)?;
        }
        Ok(())
    }
    pub(super) fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let n = r.u8()?;
        r.zero(3)?;
        if usize::from(n) > RMR_POOL_MAX_SESS {
            return Err(Error::Proto);
        }
        let mut l = MemberList::new();
        for i in 0..RMR_POOL_MAX_SESS {
            let id = r.u32()?;
            if i < usize::from(n) {
                if id == 0 || l.contains(id) {
                    return Err(Error::Proto);
                }
                l.push(id).map_err(|_| Error::Proto)?;
            } else if id != 0 {
                return Err(Error::Proto);
            }
        }
        Ok(l)
    }
}

/// `rmr_id_t`: `b` = first chunk, `a` = number of chunks (only 1 is supported).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RmrId {
    /// Chunk count, always 1.
    pub a: u64,
    /// First chunk.
    pub b: u64,
}

impl RmrId {
    /// The id of one chunk.
    pub const fn chunk(c: u64) -> Self {
        RmrId { a: 1, b: c }
    }
}

/// A pool name: 1..63 printable ASCII bytes without whitespace or `/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolName {
    len: u8,
    buf: [u8; RMR_NAME_MAX],
}

impl PoolName {
    /// The empty name: a placeholder for blank structures, never valid on the wire.
    pub const EMPTY: PoolName = PoolName { len: 0, buf: [0; RMR_NAME_MAX] };
    /// Validate and copy a name.
    pub fn new(s: &[u8]) -> Result<Self> {
        if s.is_empty() || s.len() > RMR_NAME_MAX {
            return Err(Error::Inval);
        }
        if !s.iter().all(|c| c.is_ascii_graphic() && *c != b'/') {
            return Err(Error::Inval);
        }
        let mut buf = [0u8; RMR_NAME_MAX];
        buf.get_mut(..s.len()).ok_or(Error::Inval)?.copy_from_slice(s);
        Ok(PoolName { len: s.len() as u8, buf })
    }
    /// The name bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..usize::from(self.len)).unwrap_or(&[])
    }
    pub(super) fn encode(&self, w: &mut Writer<'_>) -> Result<()> {
        w.u8(self.len)?;
        w.bytes(&self.buf)
    }
    pub(super) fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let len = usize::from(r.u8()?);
        let raw = r.bytes(RMR_NAME_MAX)?;
        let name = raw.get(..len).ok_or(Error::Proto)?;
        if raw.get(len..).is_some_and(|t| t.iter().any(|b| *b != 0)) {
            return Err(Error::Proto);
        }
        PoolName::new(name).map_err(|_| Error::Proto)
    }
}

/// One `srv_md` slot of `pool_md`; `member_id` 0 = free.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SrvMd {
    /// Storage member of the slot, 0 if free.
    pub member_id: u32,
    /// Pending discard entries for this member (replace).
    pub discard_entries: bool,
}

/// `rmr_pool_md`: the pool description held by every node (SPEC §3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolMd {
    /// Pool name.
    pub name: PoolName,
    /// jhash of the name.
    pub group_id: u32,
    /// Chunk size in bytes (power of two).
    pub chunk_size: u32,
    /// Exported sectors.
    pub mapped_size: u64,
    /// IO units of the pool.
    pub queue_depth: u16,
    /// Map version (bit 63 = replace).
    pub map_ver: u64,
    /// Member slots.
    pub srv_md: [SrvMd; RMR_POOL_MAX_SESS],
}

impl PoolMd {
    /// A blank description (empty name, no members): a placeholder for blank structures.
    pub const BLANK: PoolMd = PoolMd {
        name: PoolName::EMPTY,
        group_id: 0,
        chunk_size: 0,
        mapped_size: 0,
        queue_depth: 0,
        map_ver: 0,
        srv_md: [SrvMd { member_id: 0, discard_entries: false }; RMR_POOL_MAX_SESS],
    };
}

/// Encoded size of a `PoolMd`.
pub const POOL_MD_LEN: usize = 1 + RMR_NAME_MAX + 4 + 4 + 8 + 2 + 2 + 8 + 8 * RMR_POOL_MAX_SESS;

impl PoolMd {
    /// The members listed in `srv_md`.
    pub fn members(&self) -> MemberList {
        let mut l = MemberList::new();
        for s in self.srv_md.iter().filter(|s| s.member_id != 0) {
            let _ = l.push(s.member_id);
        }
        l
    }
    /// Put `member_id` into a free slot (no-op if present).
    pub fn add_member(&mut self, member_id: u32) -> Result<()> {
        if member_id == 0 {
            return Err(Error::Inval);
        }
        if self.srv_md.iter().any(|s| s.member_id == member_id) {
            return Ok(());
        }
        let slot = self.srv_md.iter_mut().find(|s| s.member_id == 0).ok_or(Error::NoSpc)?;
        slot.member_id = member_id;
        slot.discard_entries = false;
        Ok(())
    }
    /// Zero `member_id`'s slot.
    pub fn remove_member(&mut self, member_id: u32) {
        for s in self.srv_md.iter_mut().filter(|s| s.member_id == member_id) {
            *s = SrvMd::default();
        }
    }
    /// Encode into a writer.
    pub fn encode(&self, w: &mut Writer<'_>) -> Result<()> {
        self.name.encode(w)?;
        w.u32(self.group_id)?;
        w.u32(self.chunk_size)?;
        w.u64(self.mapped_size)?;
        w.u16(self.queue_depth)?;
        w.u16(0)?;
        w.u64(self.map_ver)?;
        for s in self.srv_md {
            w.u32(s.member_id)?;
            w.u32(u32::from(s.discard_entries))?;
        }
        Ok(())
    }
    /// Decode and validate.
    pub fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let name = PoolName::decode(r)?;
        let group_id = r.u32()?;
        let chunk_size = r.u32()?;
        check_chunk_size(chunk_size)?;
        let mapped_size = r.u64()?;
        let queue_depth = r.u16()?;
        check_queue_depth(queue_depth)?;
        r.zero(2)?;
        let map_ver = r.u64()?;
        let mut srv_md = [SrvMd::default(); RMR_POOL_MAX_SESS];
        let mut seen = MemberList::new();
        for s in srv_md.iter_mut() {
            let member_id = r.u32()?;
            let flags = r.u32()?;
            if flags > 1 || (member_id == 0 && flags != 0) {
                return Err(Error::Proto);
            }
            if member_id != 0 {
                if seen.contains(member_id) {
                    return Err(Error::Proto);
                }
                seen.push(member_id).map_err(|_| Error::Proto)?;
            }
            *s = SrvMd { member_id, discard_entries: flags == 1 };
        }
        Ok(PoolMd { name, group_id, chunk_size, mapped_size, queue_depth, map_ver, srv_md })
    }
}
