// SPDX-License-Identifier: GPL-2.0-or-later
//! RMR and BRMR wire format (Documentation/wire-format.md).
//!
//! Little-endian, fixed 16-byte header, versioned. `encode` writes into a caller buffer and returns
//! the bytes used; `decode` validates every field (lengths, counts, enum values, member ids,
//! ranges) and returns an error for any malformed input, never panics.

use super::consts::{
    BRMR_MAGIC, RMR_MAGIC, RMR_MAX_CHUNK_SIZE, RMR_MAX_QUEUE_DEPTH, RMR_MIN_CHUNK_SIZE,
    RMR_NAME_MAX, RMR_POOL_MAX_SESS, RMR_PROTO_VERSION,
};
use super::error::{Error, Result};

/// Size of the common header.
pub const HDR_LEN: usize = 16;
/// Bytes of one map transfer piece (one second-level dirty-map page).
pub const PIECE_BYTES: usize = 4096;
/// Largest opaque payload of a `User` command or reply (BRMR commands).
pub const USER_MAX: usize = 256;
/// Size of the buffer that holds any RMR message.
pub const MAX_MSG_LEN: usize = HDR_LEN + 64 + PIECE_BYTES;

// ---------------------------------------------------------------------------------------------
// Cursor helpers

/// Bounded little-endian writer over a caller buffer.
pub struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    /// A writer at the start of `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Writer { buf, pos: 0 }
    }
    /// Bytes written so far.
    pub fn pos(&self) -> usize {
        self.pos
    }
    /// Append raw bytes.
    pub fn bytes(&mut self, b: &[u8]) -> Result<()> {
        let end = self.pos.checked_add(b.len()).ok_or(Error::MsgSize)?;
        let dst = self.buf.get_mut(self.pos..end).ok_or(Error::MsgSize)?;
        dst.copy_from_slice(b);
        self.pos = end;
        Ok(())
    }
    /// Append a u8.
    pub fn u8(&mut self, v: u8) -> Result<()> {
        self.bytes(&[v])
    }
    /// Append a u16.
    pub fn u16(&mut self, v: u16) -> Result<()> {
        self.bytes(&v.to_le_bytes())
    }
    /// Append a u32.
    pub fn u32(&mut self, v: u32) -> Result<()> {
        self.bytes(&v.to_le_bytes())
    }
    /// Append an i32.
    pub fn i32(&mut self, v: i32) -> Result<()> {
        self.bytes(&v.to_le_bytes())
    }
    /// Append a u64.
    pub fn u64(&mut self, v: u64) -> Result<()> {
        self.bytes(&v.to_le_bytes())
    }
    /// Overwrite 4 bytes at `at` (used to patch the header length).
    fn patch_u32(&mut self, at: usize, v: u32) -> Result<()> {
        let end = at.checked_add(4).ok_or(Error::MsgSize)?;
        let dst = self.buf.get_mut(at..end).ok_or(Error::MsgSize)?;
        dst.copy_from_slice(&v.to_le_bytes());
        Ok(())
    }
}

/// Bounded little-endian reader; every read past the end is `Error::Proto`.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }
    /// Bytes not consumed yet.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }
    /// Take `n` raw bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or(Error::Proto)?;
        let s = self.buf.get(self.pos..end).ok_or(Error::Proto)?;
        self.pos = end;
        Ok(s)
    }
    fn arr<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(N)?);
        Ok(a)
    }
    /// Read a u8.
    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.arr::<1>()?[0])
    }
    /// Read a u16.
    pub fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.arr()?))
    }
    /// Read a u32.
    pub fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.arr()?))
    }
    /// Read an i32.
    pub fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_le_bytes(self.arr()?))
    }
    /// Read a u64.
    pub fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.arr()?))
    }
    /// Read a boolean byte (0 or 1; anything else is malformed).
    pub fn bool(&mut self) -> Result<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Error::Proto),
        }
    }
    /// Read a reserved field that must be zero.
    pub fn zero(&mut self, n: usize) -> Result<()> {
        if self.bytes(n)?.iter().all(|b| *b == 0) {
            Ok(())
        } else {
            Err(Error::Proto)
        }
    }
    /// Succeed only if everything was consumed.
    pub fn end(&self) -> Result<()> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(Error::Proto)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Common types

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
    fn encode(&self, w: &mut Writer<'_>) -> Result<()> {
        w.u8(self.n)?;
        w.bytes(&[0; 3])?;
        for id in self.ids {
            w.u32(id)?;
        }
        Ok(())
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
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
    fn encode(&self, w: &mut Writer<'_>) -> Result<()> {
        w.u8(self.len)?;
        w.bytes(&self.buf)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
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

fn check_chunk_size(c: u32) -> Result<()> {
    if c.is_power_of_two() && (RMR_MIN_CHUNK_SIZE..=RMR_MAX_CHUNK_SIZE).contains(&c) {
        Ok(())
    } else {
        Err(Error::Proto)
    }
}

fn check_queue_depth(q: u16) -> Result<()> {
    if q >= 1 && usize::from(q) <= RMR_MAX_QUEUE_DEPTH {
        Ok(())
    } else {
        Err(Error::Proto)
    }
}

fn check_member(m: u32) -> Result<u32> {
    if m == 0 {
        Err(Error::Proto)
    } else {
        Ok(m)
    }
}

// ---------------------------------------------------------------------------------------------
// Header

/// Message type in the common header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum MsgType {
    /// A control command (`RMR_CMD_*`, `RMR_MSG_MAP_CLEAR`).
    Cmd = 1,
    /// The reply to a command.
    CmdRsp = 2,
    /// An IO request.
    Io = 3,
    /// The reply to an IO request.
    IoRsp = 4,
}

impl MsgType {
    fn from_u16(v: u16) -> Result<Self> {
        Ok(match v {
            1 => MsgType::Cmd,
            2 => MsgType::CmdRsp,
            3 => MsgType::Io,
            4 => MsgType::IoRsp,
            _ => return Err(Error::Proto),
        })
    }
}

/// The common header `rmr_msg_hdr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Protocol version of the sender.
    pub version: u16,
    /// Message type.
    pub ty: MsgType,
    /// Pool address: jhash of the pool name.
    pub group_id: u32,
    /// Payload bytes after the header.
    pub len: u32,
}

// ---------------------------------------------------------------------------------------------
// Commands

/// `RMR_CMD_*` numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
#[allow(missing_docs)]
pub enum CmdType {
    JoinPool = 1,
    RejoinPool = 2,
    EnablePool = 3,
    LeavePool = 4,
    PoolInfo = 5,
    MapReady = 6,
    MapSend = 7,
    MapDone = 8,
    MapDisable = 9,
    SendMapBuf = 10,
    MapBufDone = 11,
    MapGetVer = 12,
    MapSetVer = 13,
    SendDiscard = 14,
    DiscardClearFlag = 15,
    LastIoToMap = 16,
    MapCheck = 17,
    StoreCheck = 18,
    MdSend = 19,
    SendMdBuf = 20,
    MapAdd = 21,
    MapClear = 22,
    User = 23,
    SuspectToMap = 24,
}

impl CmdType {
    /// Parse a command number.
    pub fn from_u16(v: u16) -> Result<Self> {
        use CmdType::*;
        Ok(match v {
            1 => JoinPool,
            2 => RejoinPool,
            3 => EnablePool,
            4 => LeavePool,
            5 => PoolInfo,
            6 => MapReady,
            7 => MapSend,
            8 => MapDone,
            9 => MapDisable,
            10 => SendMapBuf,
            11 => MapBufDone,
            12 => MapGetVer,
            13 => MapSetVer,
            14 => SendDiscard,
            15 => DiscardClearFlag,
            16 => LastIoToMap,
            17 => MapCheck,
            18 => StoreCheck,
            19 => MdSend,
            20 => SendMdBuf,
            21 => MapAdd,
            22 => MapClear,
            23 => User,
            24 => SuspectToMap,
            _ => return Err(Error::Proto),
        })
    }
}

/// Body of JOIN_POOL / REJOIN_POOL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JoinBody {
    /// Pool chunk size.
    pub chunk_size: u32,
    /// Pool queue depth.
    pub queue_depth: u16,
    /// `mode=create` (non-sync only; never with rejoin).
    pub create: bool,
    /// Joining as a sync pool leg.
    pub sync: bool,
    /// Members the client knows.
    pub members: MemberList,
}

/// POOL_INFO operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InfoOp {
    /// ADD + CREATE.
    AddCreate,
    /// ADD + ASSEMBLE.
    AddAssemble,
    /// REMOVE + DELETE.
    RemoveDelete,
    /// REMOVE + DISASSEMBLE.
    RemoveDisassemble,
}

/// Flag in a [`Piece`]'s member id: the page belongs to that member's *lost* map (chunks it may
/// have lost in a power loss and not synced since). [improvement]
pub const LOST_PIECE: u32 = 1 << 31;

/// A map transfer piece: one non-empty second-level page of `member`'s map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece<'a> {
    /// Member whose map the page belongs to.
    pub member: u32,
    /// Second-level page index.
    pub page: u32,
    /// `PIECE_BYTES` bytes: the page's u64 words, little-endian.
    pub data: &'a [u8],
}

impl<'a> Piece<'a> {
    fn encode(&self, w: &mut Writer<'_>) -> Result<()> {
        if self.data.len() != PIECE_BYTES {
            return Err(Error::Inval);
        }
        w.u32(self.member)?;
        w.u32(self.page)?;
        w.bytes(self.data)
    }
    fn decode(r: &mut Reader<'a>) -> Result<Self> {
        let member = check_member(r.u32()?)?;
        let page = r.u32()?;
        let data = r.bytes(PIECE_BYTES)?;
        Ok(Piece { member, page, data })
    }
}

/// A command with its payload (`RMR_CMD_*` and `RMR_MSG_MAP_CLEAR`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmd<'a> {
    /// Join a server pool.
    JoinPool(JoinBody),
    /// Rejoin (server state preserved).
    RejoinPool(JoinBody),
    /// 1 = admit, 0 = maintenance.
    EnablePool {
        /// Enable value.
        enable: bool,
    },
    /// Leave the pool.
    LeavePool {
        /// `mode=delete` (else disassemble).
        delete: bool,
    },
    /// Tell peers about a membership change.
    PoolInfo {
        /// The member concerned.
        member_id: u32,
        /// Operation and mode.
        op: InfoOp,
        /// Mark the new member's map fully dirty.
        dirty: bool,
    },
    /// Prepare empty staging maps.
    MapReady,
    /// Ask the source for the next piece for `receiver`.
    MapSend {
        /// Receiver member id.
        receiver: u32,
        /// Opaque cursor, 0 = start.
        cursor: u64,
    },
    /// Install the staged maps; adopt `map_ver`; `enable` → NORMAL.
    MapDone {
        /// Go NORMAL.
        enable: bool,
        /// The source's map version.
        map_ver: u64,
    },
    /// Abort a map update: drop staging maps.
    MapDisable,
    /// A relayed piece.
    SendMapBuf(Piece<'a>),
    /// End of pieces; `members` are the maps the source holds (created even if clean).
    MapBufDone {
        /// Member maps in the transfer.
        members: MemberList,
    },
    /// Ask for `map_ver`.
    MapGetVer,
    /// Set `map_ver`.
    MapSetVer {
        /// New version.
        map_ver: u64,
    },
    /// Drop dirty entries held for `member_id`.
    SendDiscard {
        /// Member whose entries to drop.
        member_id: u32,
    },
    /// Clear `discard_entries` of `member_id`.
    DiscardClearFlag {
        /// Member whose flag to clear.
        member_id: u32,
    },
    /// Convert `last_io` into dirty bits (§6.6).
    LastIoToMap,
    /// Is your own map empty? (`map_ver` = the asker's version)
    MapCheck {
        /// Asker's map version.
        map_ver: u64,
    },
    /// Is the store usable (`io_allowed`)?
    StoreCheck,
    /// Send me your `pool_md`.
    MdSend,
    /// Here is the client's `pool_md`.
    SendMdBuf(PoolMd),
    /// Mark `chunk` dirty for `member_id` (failed write, §5.1).
    MapAdd {
        /// Chunk.
        chunk: u64,
        /// Member that missed it.
        member_id: u32,
        /// Client map version.
        map_ver: u64,
        /// Sent by try-enable case 2 (accepted outside NORMAL, skip rule applies).
        recovery: bool,
    },
    /// `RMR_MSG_MAP_CLEAR`: `chunk` is clean now for `member_id`.
    MapClear {
        /// Member now clean.
        member_id: u32,
        /// Chunk.
        chunk: u64,
        /// Sender's map version: a receiver with a newer one ignores the clear.
        map_ver: u64,
    },
    /// Opaque upper-layer (BRMR) command for `cmd_with_rsp`.
    User(&'a [u8]),
    /// [improvement] Turn the chunks this node may have lost in a power loss (its
    /// write-intent record at restart) into own-map bits; replies whether the own map grew.
    SuspectToMap,
}

impl<'a> Cmd<'a> {
    /// The same command with a `'static` lifetime, for the commands that borrow nothing
    /// (`None` for SEND_MAP_BUF and USER, whose bodies live in a caller's buffer).
    pub fn to_static(self) -> Option<Cmd<'static>> {
        Some(match self {
            Cmd::JoinPool(b) => Cmd::JoinPool(b),
            Cmd::RejoinPool(b) => Cmd::RejoinPool(b),
            Cmd::EnablePool { enable } => Cmd::EnablePool { enable },
            Cmd::LeavePool { delete } => Cmd::LeavePool { delete },
            Cmd::PoolInfo { member_id, op, dirty } => Cmd::PoolInfo { member_id, op, dirty },
            Cmd::MapReady => Cmd::MapReady,
            Cmd::MapSend { receiver, cursor } => Cmd::MapSend { receiver, cursor },
            Cmd::MapDone { enable, map_ver } => Cmd::MapDone { enable, map_ver },
            Cmd::MapDisable => Cmd::MapDisable,
            Cmd::MapBufDone { members } => Cmd::MapBufDone { members },
            Cmd::MapGetVer => Cmd::MapGetVer,
            Cmd::MapSetVer { map_ver } => Cmd::MapSetVer { map_ver },
            Cmd::SendDiscard { member_id } => Cmd::SendDiscard { member_id },
            Cmd::DiscardClearFlag { member_id } => Cmd::DiscardClearFlag { member_id },
            Cmd::LastIoToMap => Cmd::LastIoToMap,
            Cmd::MapCheck { map_ver } => Cmd::MapCheck { map_ver },
            Cmd::StoreCheck => Cmd::StoreCheck,
            Cmd::SuspectToMap => Cmd::SuspectToMap,
            Cmd::MdSend => Cmd::MdSend,
            Cmd::SendMdBuf(md) => Cmd::SendMdBuf(md),
            Cmd::MapAdd { chunk, member_id, map_ver, recovery } => Cmd::MapAdd { chunk, member_id, map_ver, recovery },
            Cmd::MapClear { member_id, chunk, map_ver } => Cmd::MapClear { member_id, chunk, map_ver },
            Cmd::SendMapBuf(_) | Cmd::User(_) => return None,
        })
    }

    /// The command number.
    pub fn ty(&self) -> CmdType {
        match self {
            Cmd::JoinPool(_) => CmdType::JoinPool,
            Cmd::RejoinPool(_) => CmdType::RejoinPool,
            Cmd::EnablePool { .. } => CmdType::EnablePool,
            Cmd::LeavePool { .. } => CmdType::LeavePool,
            Cmd::PoolInfo { .. } => CmdType::PoolInfo,
            Cmd::MapReady => CmdType::MapReady,
            Cmd::MapSend { .. } => CmdType::MapSend,
            Cmd::MapDone { .. } => CmdType::MapDone,
            Cmd::MapDisable => CmdType::MapDisable,
            Cmd::SendMapBuf(_) => CmdType::SendMapBuf,
            Cmd::MapBufDone { .. } => CmdType::MapBufDone,
            Cmd::MapGetVer => CmdType::MapGetVer,
            Cmd::MapSetVer { .. } => CmdType::MapSetVer,
            Cmd::SendDiscard { .. } => CmdType::SendDiscard,
            Cmd::DiscardClearFlag { .. } => CmdType::DiscardClearFlag,
            Cmd::LastIoToMap => CmdType::LastIoToMap,
            Cmd::MapCheck { .. } => CmdType::MapCheck,
            Cmd::StoreCheck => CmdType::StoreCheck,
            Cmd::MdSend => CmdType::MdSend,
            Cmd::SendMdBuf(_) => CmdType::SendMdBuf,
            Cmd::MapAdd { .. } => CmdType::MapAdd,
            Cmd::MapClear { .. } => CmdType::MapClear,
            Cmd::User(_) => CmdType::User,
            Cmd::SuspectToMap => CmdType::SuspectToMap,
        }
    }

    fn encode_body(&self, w: &mut Writer<'_>) -> Result<()> {
        match self {
            Cmd::JoinPool(j) | Cmd::RejoinPool(j) => {
                w.u32(j.chunk_size)?;
                w.u16(j.queue_depth)?;
                w.u8(u8::from(j.create) | (u8::from(j.sync) << 1))?;
                w.u8(0)?;
                j.members.encode(w)
            }
            Cmd::EnablePool { enable } => w.u32(u32::from(*enable)),
            Cmd::LeavePool { delete } => w.u32(u32::from(*delete)),
            Cmd::PoolInfo { member_id, op, dirty } => {
                w.u32(*member_id)?;
                let (o, m) = match op {
                    InfoOp::AddCreate => (1, 1),
                    InfoOp::AddAssemble => (1, 2),
                    InfoOp::RemoveDelete => (2, 3),
                    InfoOp::RemoveDisassemble => (2, 4),
                };
                w.u8(o)?;
                w.u8(m)?;
                w.u8(u8::from(*dirty))?;
                w.u8(0)
            }
            Cmd::MapReady | Cmd::MapDisable | Cmd::MapGetVer | Cmd::LastIoToMap => Ok(()),
            Cmd::StoreCheck | Cmd::MdSend | Cmd::SuspectToMap => Ok(()),
            Cmd::MapSend { receiver, cursor } => {
                w.u32(*receiver)?;
                w.u32(0)?;
                w.u64(*cursor)
            }
            Cmd::MapDone { enable, map_ver } => {
                w.u32(u32::from(*enable))?;
                w.u32(0)?;
                w.u64(*map_ver)
            }
            Cmd::SendMapBuf(p) => p.encode(w),
            Cmd::MapBufDone { members } => members.encode(w),
            Cmd::MapSetVer { map_ver } | Cmd::MapCheck { map_ver } => w.u64(*map_ver),
            Cmd::SendDiscard { member_id } | Cmd::DiscardClearFlag { member_id } => {
                w.u32(*member_id)
            }
            Cmd::SendMdBuf(md) => md.encode(w),
            Cmd::MapAdd { chunk, member_id, map_ver, recovery } => {
                w.u64(*chunk)?;
                w.u32(*member_id)?;
                w.u32(u32::from(*recovery))?;
                w.u64(*map_ver)
            }
            Cmd::MapClear { member_id, chunk, map_ver } => {
                w.u32(*member_id)?;
                w.u32(0)?;
                w.u64(*chunk)?;
                w.u64(*map_ver)
            }
            Cmd::User(b) => {
                if b.len() > USER_MAX {
                    return Err(Error::Inval);
                }
                w.u16(b.len() as u16)?;
                w.u16(0)?;
                w.bytes(b)
            }
        }
    }

    fn decode_body(ty: CmdType, r: &mut Reader<'a>) -> Result<Self> {
        let cmd = match ty {
            CmdType::JoinPool | CmdType::RejoinPool => {
                let chunk_size = r.u32()?;
                check_chunk_size(chunk_size)?;
                let queue_depth = r.u16()?;
                check_queue_depth(queue_depth)?;
                let flags = r.u8()?;
                r.zero(1)?;
                if flags > 3 {
                    return Err(Error::Proto);
                }
                let create = flags & 1 != 0;
                let sync = flags & 2 != 0;
                // A sync leg has no mode; a rejoin never creates.
                if create && (sync || ty == CmdType::RejoinPool) {
                    return Err(Error::Proto);
                }
                let members = MemberList::decode(r)?;
                let b = JoinBody { chunk_size, queue_depth, create, sync, members };
                if ty == CmdType::JoinPool {
                    Cmd::JoinPool(b)
                } else {
                    Cmd::RejoinPool(b)
                }
            }
            CmdType::EnablePool => Cmd::EnablePool { enable: read_flag32(r)? },
            CmdType::LeavePool => Cmd::LeavePool { delete: read_flag32(r)? },
            CmdType::PoolInfo => {
                let member_id = check_member(r.u32()?)?;
                let o = r.u8()?;
                let m = r.u8()?;
                let op = match (o, m) {
                    (1, 1) => InfoOp::AddCreate,
                    (1, 2) => InfoOp::AddAssemble,
                    (2, 3) => InfoOp::RemoveDelete,
                    (2, 4) => InfoOp::RemoveDisassemble,
                    _ => return Err(Error::Proto),
                };
                let dirty = r.bool()?;
                r.zero(1)?;
                if dirty && op != InfoOp::AddCreate {
                    return Err(Error::Proto);
                }
                Cmd::PoolInfo { member_id, op, dirty }
            }
            CmdType::MapReady => Cmd::MapReady,
            CmdType::MapDisable => Cmd::MapDisable,
            CmdType::MapGetVer => Cmd::MapGetVer,
            CmdType::LastIoToMap => Cmd::LastIoToMap,
            CmdType::StoreCheck => Cmd::StoreCheck,
            CmdType::SuspectToMap => Cmd::SuspectToMap,
            CmdType::MdSend => Cmd::MdSend,
            CmdType::MapSend => {
                let receiver = check_member(r.u32()?)?;
                r.zero(4)?;
                Cmd::MapSend { receiver, cursor: r.u64()? }
            }
            CmdType::MapDone => {
                let enable = read_flag32(r)?;
                r.zero(4)?;
                Cmd::MapDone { enable, map_ver: r.u64()? }
            }
            CmdType::SendMapBuf => Cmd::SendMapBuf(Piece::decode(r)?),
            CmdType::MapBufDone => Cmd::MapBufDone { members: MemberList::decode(r)? },
            CmdType::MapSetVer => Cmd::MapSetVer { map_ver: r.u64()? },
            CmdType::MapCheck => Cmd::MapCheck { map_ver: r.u64()? },
            CmdType::SendDiscard => Cmd::SendDiscard { member_id: check_member(r.u32()?)? },
            CmdType::DiscardClearFlag => {
                Cmd::DiscardClearFlag { member_id: check_member(r.u32()?)? }
            }
            CmdType::SendMdBuf => Cmd::SendMdBuf(PoolMd::decode(r)?),
            CmdType::MapAdd => {
                let chunk = r.u64()?;
                let member_id = check_member(r.u32()?)?;
                let recovery = read_flag32(r)?;
                Cmd::MapAdd { chunk, member_id, map_ver: r.u64()?, recovery }
            }
            CmdType::MapClear => {
                let member_id = check_member(r.u32()?)?;
                r.zero(4)?;
                let chunk = r.u64()?;
                Cmd::MapClear { member_id, chunk, map_ver: r.u64()? }
            }
            CmdType::User => {
                let n = usize::from(r.u16()?);
                r.zero(2)?;
                if n > USER_MAX {
                    return Err(Error::Proto);
                }
                Cmd::User(r.bytes(n)?)
            }
        };
        r.end()?;
        Ok(cmd)
    }
}

fn read_flag32(r: &mut Reader<'_>) -> Result<bool> {
    match r.u32()? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(Error::Proto),
    }
}

/// Reply body; which variant is legal depends on the command type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RspBody<'a> {
    /// Commands without reply data.
    Empty,
    /// JOIN_POOL / REJOIN_POOL.
    Join {
        /// The server's member id.
        member_id: u32,
        /// Server protocol version.
        version: u16,
        /// Exported sectors of the store (0 if none).
        mapped_size: u64,
    },
    /// MAP_SEND: optional piece, next cursor, end flag, source version and members.
    MapSend {
        /// Source `map_ver`.
        map_ver: u64,
        /// Cursor for the next MAP_SEND.
        next_cursor: u64,
        /// No more pieces after this one.
        end: bool,
        /// The member maps the source holds.
        members: MemberList,
        /// The piece, if any.
        piece: Option<Piece<'a>>,
    },
    /// MAP_GET_VER.
    MapVer {
        /// Version.
        map_ver: u64,
    },
    /// MAP_CHECK / STORE_CHECK answer.
    Bool(bool),
    /// MD_SEND.
    Md(PoolMd),
    /// USER: opaque reply.
    User(&'a [u8]),
}

/// A command reply: the command number, errno (0 or negative) and body (only when errno is 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CmdRsp<'a> {
    /// Which command this answers.
    pub ty: CmdType,
    /// 0 = success, else the negative errno.
    pub errno: i32,
    /// Reply data (`Empty` on error).
    pub body: RspBody<'a>,
}

impl<'a> CmdRsp<'a> {
    /// A success reply.
    pub fn ok(ty: CmdType, body: RspBody<'a>) -> Self {
        CmdRsp { ty, errno: 0, body }
    }
    /// An error reply.
    pub fn err(ty: CmdType, e: Error) -> Self {
        CmdRsp { ty, errno: e.errno(), body: RspBody::Empty }
    }

    fn body_matches(&self) -> bool {
        use CmdType::*;
        if self.errno != 0 {
            return matches!(self.body, RspBody::Empty);
        }
        matches!(
            (self.ty, &self.body),
            (JoinPool | RejoinPool, RspBody::Join { .. })
                | (MapSend, RspBody::MapSend { .. })
                | (MapGetVer, RspBody::MapVer { .. })
                | (MapCheck | StoreCheck | SuspectToMap, RspBody::Bool(_))
                | (MdSend, RspBody::Md(_))
                | (User, RspBody::User(_))
        ) || (!matches!(
            self.ty,
            JoinPool | RejoinPool | MapSend | MapGetVer | MapCheck | StoreCheck | SuspectToMap | MdSend | User
        ) && matches!(self.body, RspBody::Empty))
    }

    fn encode_body(&self, w: &mut Writer<'_>) -> Result<()> {
        if !self.body_matches() {
            return Err(Error::Inval);
        }
        match &self.body {
            RspBody::Empty => Ok(()),
            RspBody::Join { member_id, version, mapped_size } => {
                w.u32(*member_id)?;
                w.u16(*version)?;
                w.u16(0)?;
                w.u64(*mapped_size)
            }
            RspBody::MapSend { map_ver, next_cursor, end, members, piece } => {
                w.u64(*map_ver)?;
                w.u64(*next_cursor)?;
                w.u8(u8::from(*end) | (u8::from(piece.is_some()) << 1))?;
                w.bytes(&[0; 3])?;
                members.encode(w)?;
                match piece {
                    Some(p) => p.encode(w),
                    None => Ok(()),
                }
            }
            RspBody::MapVer { map_ver } => w.u64(*map_ver),
            RspBody::Bool(b) => w.u32(u32::from(*b)),
            RspBody::Md(md) => md.encode(w),
            RspBody::User(b) => {
                if b.len() > USER_MAX {
                    return Err(Error::Inval);
                }
                w.u16(b.len() as u16)?;
                w.u16(0)?;
                w.bytes(b)
            }
        }
    }

    fn decode_body(ty: CmdType, errno: i32, r: &mut Reader<'a>) -> Result<Self> {
        if errno > 0 {
            return Err(Error::Proto);
        }
        let body = if errno != 0 {
            RspBody::Empty
        } else {
            match ty {
                CmdType::JoinPool | CmdType::RejoinPool => {
                    let member_id = check_member(r.u32()?)?;
                    let version = r.u16()?;
                    r.zero(2)?;
                    RspBody::Join { member_id, version, mapped_size: r.u64()? }
                }
                CmdType::MapSend => {
                    let map_ver = r.u64()?;
                    let next_cursor = r.u64()?;
                    let flags = r.u8()?;
                    r.zero(3)?;
                    if flags > 3 {
                        return Err(Error::Proto);
                    }
                    let members = MemberList::decode(r)?;
                    let piece = if flags & 2 != 0 { Some(Piece::decode(r)?) } else { None };
                    RspBody::MapSend { map_ver, next_cursor, end: flags & 1 != 0, members, piece }
                }
                CmdType::MapGetVer => RspBody::MapVer { map_ver: r.u64()? },
                CmdType::MapCheck | CmdType::StoreCheck | CmdType::SuspectToMap => {
                    RspBody::Bool(read_flag32(r)?)
                }
                CmdType::MdSend => RspBody::Md(PoolMd::decode(r)?),
                CmdType::User => {
                    let n = usize::from(r.u16()?);
                    r.zero(2)?;
                    if n > USER_MAX {
                        return Err(Error::Proto);
                    }
                    RspBody::User(r.bytes(n)?)
                }
                _ => RspBody::Empty,
            }
        };
        r.end()?;
        Ok(CmdRsp { ty, errno, body })
    }
}

// ---------------------------------------------------------------------------------------------
// IO

/// IO flag: write (else read).
pub const IO_WRITE: u16 = 1 << 0;
/// IO flag: preflush.
pub const IO_FLUSH: u16 = 1 << 1;
/// IO flag: forced unit access.
pub const IO_FUA: u16 = 1 << 2;
/// IO flag: discard (write only).
pub const IO_DISCARD: u16 = 1 << 3;
/// IO flag: sync read issued by a peer's sync thread.
pub const IO_SYNC: u16 = 1 << 4;
const IO_FLAGS_ALL: u16 = IO_WRITE | IO_FLUSH | IO_FUA | IO_DISCARD | IO_SYNC;

/// An IO request. Data moves by RDMA beside the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoMsg {
    /// Chunk addressed (`a` must be 1).
    pub id: RmrId,
    /// IO unit number, < queue_depth.
    pub mem_id: u16,
    /// `IO_*` flags.
    pub flags: u16,
    /// Byte offset inside the chunk.
    pub offset: u32,
    /// Byte length (0 only for a pure flush).
    pub len: u32,
    /// Client pool map version.
    pub map_ver: u64,
    /// Piggybacked members (legs not NORMAL): mark the chunk dirty for them.
    pub members: MemberList,
}

impl IoMsg {
    /// Whether this is a write.
    pub fn is_write(&self) -> bool {
        self.flags & IO_WRITE != 0
    }
    fn validate(&self) -> Result<()> {
        let write = self.flags & IO_WRITE != 0;
        let ok = self.id.a == 1
            && usize::from(self.mem_id) < RMR_MAX_QUEUE_DEPTH
            && self.flags & !IO_FLAGS_ALL == 0
            && (write || self.flags & (IO_FUA | IO_DISCARD) == 0)
            && (!write || self.flags & IO_SYNC == 0)
            && (write || self.members.is_empty())
            && (self.len > 0 || self.flags & IO_FLUSH != 0)
            && self.offset.checked_add(self.len).is_some_and(|e| e <= RMR_MAX_CHUNK_SIZE);
        if ok {
            Ok(())
        } else {
            Err(Error::Proto)
        }
    }
}

/// The reply to an IO request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoRsp {
    /// IO unit number.
    pub mem_id: u16,
    /// 0 or negative errno.
    pub errno: i32,
}

// ---------------------------------------------------------------------------------------------
// Whole messages

/// A decoded RMR message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Msg<'a> {
    /// Command.
    Cmd(Cmd<'a>),
    /// Command reply.
    CmdRsp(CmdRsp<'a>),
    /// IO request.
    Io(IoMsg),
    /// IO reply.
    IoRsp(IoRsp),
}

impl<'a> Msg<'a> {
    /// The header type of this message.
    pub fn ty(&self) -> MsgType {
        match self {
            Msg::Cmd(_) => MsgType::Cmd,
            Msg::CmdRsp(_) => MsgType::CmdRsp,
            Msg::Io(_) => MsgType::Io,
            Msg::IoRsp(_) => MsgType::IoRsp,
        }
    }

    /// Encode header + payload into `buf`; returns the total length.
    pub fn encode(&self, group_id: u32, buf: &mut [u8]) -> Result<usize> {
        let mut w = Writer::new(buf);
        w.u16(RMR_MAGIC)?;
        w.u16(RMR_PROTO_VERSION)?;
        w.u16(self.ty() as u16)?;
        w.u16(0)?;
        w.u32(group_id)?;
        w.u32(0)?;
        match self {
            Msg::Cmd(c) => {
                w.u16(c.ty() as u16)?;
                w.u16(0)?;
                c.encode_body(&mut w)?;
            }
            Msg::CmdRsp(c) => {
                w.u16(c.ty as u16)?;
                w.u16(0)?;
                w.i32(c.errno)?;
                c.encode_body(&mut w)?;
            }
            Msg::Io(io) => {
                io.validate().map_err(|_| Error::Inval)?;
                w.u64(io.id.a)?;
                w.u64(io.id.b)?;
                w.u16(io.mem_id)?;
                w.u16(io.flags)?;
                w.u32(io.offset)?;
                w.u32(io.len)?;
                w.u32(0)?;
                w.u64(io.map_ver)?;
                io.members.encode(&mut w)?;
            }
            Msg::IoRsp(r) => {
                w.u16(r.mem_id)?;
                w.u16(0)?;
                w.i32(r.errno)?;
            }
        }
        let total = w.pos();
        let len = u32::try_from(total - HDR_LEN).map_err(|_| Error::MsgSize)?;
        w.patch_u32(12, len)?;
        Ok(total)
    }

    /// Validate and decode a message; the returned body borrows from `buf`.
    pub fn decode(buf: &'a [u8]) -> Result<(Header, Msg<'a>)> {
        let mut r = Reader::new(buf);
        if r.u16()? != RMR_MAGIC {
            return Err(Error::Proto);
        }
        let version = r.u16()?;
        if version != RMR_PROTO_VERSION {
            return Err(Error::Proto);
        }
        let ty = MsgType::from_u16(r.u16()?)?;
        r.zero(2)?;
        let group_id = r.u32()?;
        let len = r.u32()?;
        let plen = usize::try_from(len).map_err(|_| Error::Proto)?;
        if r.remaining() != plen {
            return Err(Error::Proto);
        }
        let hdr = Header { version, ty, group_id, len };
        let msg = match ty {
            MsgType::Cmd => {
                let ct = CmdType::from_u16(r.u16()?)?;
                r.zero(2)?;
                Msg::Cmd(Cmd::decode_body(ct, &mut r)?)
            }
            MsgType::CmdRsp => {
                let ct = CmdType::from_u16(r.u16()?)?;
                r.zero(2)?;
                let errno = r.i32()?;
                Msg::CmdRsp(CmdRsp::decode_body(ct, errno, &mut r)?)
            }
            MsgType::Io => {
                let a = r.u64()?;
                let b = r.u64()?;
                let mem_id = r.u16()?;
                let flags = r.u16()?;
                let offset = r.u32()?;
                let len = r.u32()?;
                r.zero(4)?;
                let map_ver = r.u64()?;
                let members = MemberList::decode(&mut r)?;
                r.end()?;
                let io =
                    IoMsg { id: RmrId { a, b }, mem_id, flags, offset, len, map_ver, members };
                io.validate()?;
                Msg::Io(io)
            }
            MsgType::IoRsp => {
                let mem_id = r.u16()?;
                r.zero(2)?;
                let errno = r.i32()?;
                r.end()?;
                if errno > 0 || usize::from(mem_id) >= RMR_MAX_QUEUE_DEPTH {
                    return Err(Error::Proto);
                }
                Msg::IoRsp(IoRsp { mem_id, errno })
            }
        };
        Ok((hdr, msg))
    }
}

// ---------------------------------------------------------------------------------------------
// BRMR (SPEC §9.1)

/// A BRMR message (`brmr_msg_hdr` + `brmr_msg_cmd`), carried in an RMR `User` command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrmrMsg {
    /// Map a new device: store sets MAPPED.
    MapNew {
        /// Sectors.
        mapped_size: u64,
    },
    /// Re-map an already-mapped device.
    MapCheck {
        /// Sectors.
        mapped_size: u64,
    },
    /// Unmap.
    Unmap,
    /// Read store metadata.
    ReadMd,
    /// Response slice (tag `BRMR_CMD_RSP`).
    Rsp {
        /// 0 or negative errno of the handler.
        errno: i32,
        /// Store's pool name.
        name: PoolName,
        /// Store's mapped size.
        mapped_size: u64,
        /// Logical block size.
        lbs: u32,
        /// MAPPED flag.
        mapped: bool,
    },
}

/// Encoded size of a BRMR message header.
pub const BRMR_HDR_LEN: usize = 8;

impl BrmrMsg {
    /// Encode into `buf`; returns bytes used.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize> {
        let mut w = Writer::new(buf);
        w.u16(BRMR_MAGIC)?;
        w.u8(1)?; // type: command
        let ct = match self {
            BrmrMsg::MapNew { .. } => 1,
            BrmrMsg::MapCheck { .. } => 2,
            BrmrMsg::Unmap => 3,
            BrmrMsg::ReadMd => 4,
            BrmrMsg::Rsp { .. } => 5,
        };
        w.u8(ct)?;
        w.u32(0)?;
        match self {
            BrmrMsg::MapNew { mapped_size } | BrmrMsg::MapCheck { mapped_size } => {
                w.u64(*mapped_size)?
            }
            BrmrMsg::Unmap | BrmrMsg::ReadMd => {}
            BrmrMsg::Rsp { errno, name, mapped_size, lbs, mapped } => {
                w.i32(*errno)?;
                w.u32(*lbs)?;
                w.u64(*mapped_size)?;
                w.u32(u32::from(*mapped))?;
                name.encode(&mut w)?;
            }
        }
        Ok(w.pos())
    }

    /// Validate and decode.
    pub fn decode(buf: &[u8]) -> Result<Self> {
        let mut r = Reader::new(buf);
        if r.u16()? != BRMR_MAGIC {
            return Err(Error::Proto);
        }
        if r.u8()? != 1 {
            return Err(Error::Proto); // IO type is reserved
        }
        let ct = r.u8()?;
        r.zero(4)?;
        let m = match ct {
            1 => BrmrMsg::MapNew { mapped_size: r.u64()? },
            2 => BrmrMsg::MapCheck { mapped_size: r.u64()? },
            3 => BrmrMsg::Unmap,
            4 => BrmrMsg::ReadMd,
            5 => {
                let errno = r.i32()?;
                let lbs = r.u32()?;
                let mapped_size = r.u64()?;
                let mapped = read_flag32(&mut r)?;
                let name = PoolName::decode(&mut r)?;
                if errno > 0 || (errno == 0 && !(lbs.is_power_of_two() && lbs >= 512)) {
                    return Err(Error::Proto);
                }
                BrmrMsg::Rsp { errno, name, mapped_size, lbs, mapped }
            }
            _ => return Err(Error::Proto),
        };
        r.end()?;
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    fn members() -> impl Strategy<Value = MemberList> {
        proptest::collection::btree_set(1u32..u32::MAX, 0..=RMR_POOL_MAX_SESS).prop_map(|s| {
            let mut l = MemberList::new();
            for m in s {
                l.push(m).unwrap();
            }
            l
        })
    }

    fn pool_md() -> impl Strategy<Value = PoolMd> {
        (
            "[a-z_]{1,63}",
            any::<u32>(),
            12u32..=26,
            any::<u64>(),
            1u16..=512,
            any::<u64>(),
            members(),
            any::<bool>(),
        )
            .prop_map(|(n, g, cs, ms, qd, mv, mem, d)| {
                let mut srv_md = [SrvMd::default(); RMR_POOL_MAX_SESS];
                for (s, m) in srv_md.iter_mut().zip(mem.iter()) {
                    *s = SrvMd { member_id: m, discard_entries: d };
                }
                PoolMd {
                    name: PoolName::new(n.as_bytes()).unwrap(),
                    group_id: g,
                    chunk_size: 1 << cs,
                    mapped_size: ms,
                    queue_depth: qd,
                    map_ver: mv,
                    srv_md,
                }
            })
    }

    static PAGE: [u8; PIECE_BYTES] = [0xa5; PIECE_BYTES];
    static USER: [u8; USER_MAX] = [7; USER_MAX];

    fn cmd() -> impl Strategy<Value = Cmd<'static>> {
        fn join() -> impl Strategy<Value = JoinBody> {
            (12u32..=26, 1u16..=512, any::<bool>(), any::<bool>(), members()).prop_map(
                |(cs, qd, c, s, m)| JoinBody {
                    chunk_size: 1 << cs,
                    queue_depth: qd,
                    create: c && !s,
                    sync: s,
                    members: m,
                },
            )
        }
        let op = prop_oneof![
            Just(InfoOp::AddCreate),
            Just(InfoOp::AddAssemble),
            Just(InfoOp::RemoveDelete),
            Just(InfoOp::RemoveDisassemble)
        ];
        let m = 1u32..u32::MAX;
        prop_oneof![
            join().prop_map(Cmd::JoinPool),
            join().prop_map(|mut j| {
                j.create = false;
                Cmd::RejoinPool(j)
            }),
            any::<bool>().prop_map(|enable| Cmd::EnablePool { enable }),
            any::<bool>().prop_map(|delete| Cmd::LeavePool { delete }),
            (m.clone(), op, any::<bool>()).prop_map(|(member_id, op, d)| Cmd::PoolInfo {
                member_id,
                op,
                dirty: d && op == InfoOp::AddCreate
            }),
            Just(Cmd::MapReady),
            (m.clone(), any::<u64>()).prop_map(|(receiver, cursor)| Cmd::MapSend { receiver, cursor }),
            (any::<bool>(), any::<u64>()).prop_map(|(enable, map_ver)| Cmd::MapDone { enable, map_ver }),
            Just(Cmd::MapDisable),
            (m.clone(), any::<u32>()).prop_map(|(member, page)| Cmd::SendMapBuf(Piece {
                member,
                page,
                data: &PAGE
            })),
            members().prop_map(|members| Cmd::MapBufDone { members }),
            Just(Cmd::MapGetVer),
            any::<u64>().prop_map(|map_ver| Cmd::MapSetVer { map_ver }),
            m.clone().prop_map(|member_id| Cmd::SendDiscard { member_id }),
            m.clone().prop_map(|member_id| Cmd::DiscardClearFlag { member_id }),
            Just(Cmd::LastIoToMap),
            any::<u64>().prop_map(|map_ver| Cmd::MapCheck { map_ver }),
            Just(Cmd::StoreCheck),
            Just(Cmd::SuspectToMap),
            Just(Cmd::MdSend),
            pool_md().prop_map(Cmd::SendMdBuf),
            (any::<u64>(), m.clone(), any::<u64>(), any::<bool>()).prop_map(|(chunk, member_id, map_ver, recovery)| {
                Cmd::MapAdd { chunk, member_id, map_ver, recovery }
            }),
            (m, any::<u64>(), any::<u64>()).prop_map(|(member_id, chunk, map_ver)| Cmd::MapClear { member_id, chunk, map_ver }),
            (0usize..=USER_MAX).prop_map(|n| Cmd::User(&USER[..n])),
        ]
    }

    fn rsp() -> impl Strategy<Value = CmdRsp<'static>> {
        prop_oneof![
            (1u32..u32::MAX, any::<u16>(), any::<u64>()).prop_map(|(member_id, version, mapped_size)| {
                CmdRsp::ok(CmdType::JoinPool, RspBody::Join { member_id, version, mapped_size })
            }),
            (any::<u64>(), any::<u64>(), any::<bool>(), members(), any::<bool>(), 1u32..9).prop_map(
                |(map_ver, next_cursor, end, members, has, member)| CmdRsp::ok(
                    CmdType::MapSend,
                    RspBody::MapSend {
                        map_ver,
                        next_cursor,
                        end,
                        members,
                        piece: has.then_some(Piece { member, page: 3, data: &PAGE }),
                    }
                )
            ),
            any::<u64>().prop_map(|map_ver| CmdRsp::ok(CmdType::MapGetVer, RspBody::MapVer { map_ver })),
            any::<bool>().prop_map(|b| CmdRsp::ok(CmdType::MapCheck, RspBody::Bool(b))),
            any::<bool>().prop_map(|b| CmdRsp::ok(CmdType::StoreCheck, RspBody::Bool(b))),
            any::<bool>().prop_map(|b| CmdRsp::ok(CmdType::SuspectToMap, RspBody::Bool(b))),
            pool_md().prop_map(|md| CmdRsp::ok(CmdType::MdSend, RspBody::Md(md))),
            Just(CmdRsp::ok(CmdType::EnablePool, RspBody::Empty)),
            Just(CmdRsp::err(CmdType::JoinPool, Error::Busy)),
            (0usize..=USER_MAX).prop_map(|n| CmdRsp::ok(CmdType::User, RspBody::User(&USER[..n]))),
        ]
    }

    fn io() -> impl Strategy<Value = IoMsg> {
        (any::<u64>(), 0u16..512, any::<bool>(), 0u16..8, 0u32..4096, 1u32..4096, any::<u64>(), members())
            .prop_map(|(b, mem_id, write, extra, offset, len, map_ver, m)| {
                let flags = if write {
                    IO_WRITE | ((extra & 7) << 1)
                } else {
                    (extra & 1) << 1 | if extra & 2 != 0 { IO_SYNC } else { 0 }
                };
                IoMsg {
                    id: RmrId::chunk(b),
                    mem_id,
                    flags,
                    offset,
                    len,
                    map_ver,
                    members: if write { m } else { MemberList::new() },
                }
            })
    }

    fn msg() -> impl Strategy<Value = Msg<'static>> {
        prop_oneof![
            cmd().prop_map(Msg::Cmd),
            rsp().prop_map(Msg::CmdRsp),
            io().prop_map(Msg::Io),
            (0u16..512, -200i32..=0).prop_map(|(mem_id, errno)| Msg::IoRsp(IoRsp { mem_id, errno })),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn round_trip(m in msg(), gid in any::<u32>()) {
            let mut buf = [0u8; MAX_MSG_LEN];
            let n = m.encode(gid, &mut buf).unwrap();
            let (h, d) = Msg::decode(&buf[..n]).unwrap();
            prop_assert_eq!(h.group_id, gid);
            prop_assert_eq!(h.len as usize, n - HDR_LEN);
            prop_assert_eq!(d, m);
            // Truncation is always an error; so is a trailing byte.
            for cut in [0, 1, HDR_LEN - 1, HDR_LEN, n - 1] {
                prop_assert!(Msg::decode(&buf[..cut]).is_err());
            }
            // A too-small encode buffer fails cleanly.
            let mut small = [0u8; 20];
            if n > 20 { prop_assert!(m.encode(gid, &mut small).is_err()); }
        }

        #[test]
        fn mutated_never_panics(m in msg(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
            let mut buf = [0u8; MAX_MSG_LEN];
            let n = m.encode(1, &mut buf).unwrap();
            let mut v: Vec<u8> = buf[..n].to_vec();
            for (i, x) in flips { let l = v.len(); v[i % l] ^= x; }
            let _ = Msg::decode(&v);
        }

        #[test]
        fn random_bytes_never_panic(v in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Msg::decode(&v);
            let _ = BrmrMsg::decode(&v);
            // With a valid header prefix the body parsers get exercised too.
            let mut w = std::vec![0x52, 0x4d, 1, 0];
            w.extend_from_slice(&v);
            let _ = Msg::decode(&w);
        }

        #[test]
        fn brmr_round_trip(ms in any::<u64>(), lbs in 9u32..16, sel in 0u8..5, errno in -100i32..=0, mapped in any::<bool>()) {
            let m = match sel {
                0 => BrmrMsg::MapNew { mapped_size: ms },
                1 => BrmrMsg::MapCheck { mapped_size: ms },
                2 => BrmrMsg::Unmap,
                3 => BrmrMsg::ReadMd,
                _ => BrmrMsg::Rsp { errno, name: PoolName::new(b"ionos_pool").unwrap(), mapped_size: ms, lbs: 1 << lbs, mapped },
            };
            let mut buf = [0u8; 128];
            let n = m.encode(&mut buf).unwrap();
            prop_assert_eq!(BrmrMsg::decode(&buf[..n]).unwrap(), m);
            prop_assert!(BrmrMsg::decode(&buf[..n - 1]).is_err());
        }
    }

    #[test]
    fn rejects_bad_fields() {
        let mut buf = [0u8; MAX_MSG_LEN];
        let io = IoMsg {
            id: RmrId { a: 2, b: 0 },
            mem_id: 0,
            flags: IO_WRITE,
            offset: 0,
            len: 4096,
            map_ver: 0,
            members: MemberList::new(),
        };
        assert_eq!(Msg::Io(io).encode(1, &mut buf), Err(Error::Inval));
        let ok = IoMsg { id: RmrId::chunk(3), ..io };
        let n = Msg::Io(ok).encode(1, &mut buf).unwrap();
        // a != 1
        buf[HDR_LEN] = 2;
        assert_eq!(Msg::decode(&buf[..n]), Err(Error::Proto));
        buf[HDR_LEN] = 1;
        // mem_id out of range
        buf[HDR_LEN + 16..HDR_LEN + 18].copy_from_slice(&600u16.to_le_bytes());
        assert_eq!(Msg::decode(&buf[..n]), Err(Error::Proto));
        buf[HDR_LEN + 16..HDR_LEN + 18].copy_from_slice(&0u16.to_le_bytes());
        // bad version
        buf[2] = 9;
        assert_eq!(Msg::decode(&buf[..n]), Err(Error::Proto));
        buf[2] = 1;
        assert_eq!(Msg::decode(&buf[..n]), Err(Error::Proto), "version 1 (no lost maps) is refused");
        buf[2] = RMR_PROTO_VERSION as u8;
        assert!(Msg::decode(&buf[..n]).is_ok());
        // Duplicate member ids in a list.
        let mut l = MemberList::new();
        l.push(5).unwrap();
        l.push(6).unwrap();
        let n = Msg::Cmd(Cmd::MapBufDone { members: l }).encode(1, &mut buf).unwrap();
        buf[n - 12..n - 8].copy_from_slice(&5u32.to_le_bytes());
        assert_eq!(Msg::decode(&buf[..n]), Err(Error::Proto));
        // Wrong body for a reply type is refused at encode time.
        let bad = CmdRsp::ok(CmdType::MapCheck, RspBody::MapVer { map_ver: 1 });
        assert_eq!(Msg::CmdRsp(bad).encode(1, &mut buf), Err(Error::Inval));
    }
}
