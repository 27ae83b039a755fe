// SPDX-License-Identifier: GPL-2.0-or-later
//! Commands (`RMR_CMD_*`), their bodies and replies.

use super::*;

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
    pub(super) fn encode(&self, w: &mut Writer<'_>) -> Result<()> {
        if self.data.len() != PIECE_BYTES {
            return Err(Error::Inval);
        }
        w.u32(self.member)?;
        w.u32(self.page)?;
        w.bytes(self.data)
    }
    pub(super) fn decode(r: &mut Reader<'a>) -> Result<Self> {
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

    /// Whether the command carries a sequence number its session checks (wire-format.md,
    /// "Command sequence"): every control command but those sent outside the sender's
    /// control lock, which are safe to run late (MAP_ADD and MAP_CLEAR only set or clear a
    /// versioned bit, MAP_CHECK only asks, USER belongs to the upper layer).
    pub fn sequenced(&self) -> bool {
        !matches!(self, Cmd::MapAdd { .. } | Cmd::MapClear { .. } | Cmd::MapCheck { .. } | Cmd::User(_))
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

    pub(super) fn encode_body(&self, w: &mut Writer<'_>) -> Result<()> {
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

    pub(super) fn decode_body(ty: CmdType, r: &mut Reader<'a>) -> Result<Self> {
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

    pub(super) fn body_matches(&self) -> bool {
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

    pub(super) fn encode_body(&self, w: &mut Writer<'_>) -> Result<()> {
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

    pub(super) fn decode_body(ty: CmdType, errno: i32, r: &mut Reader<'a>) -> Result<Self> {
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
