// SPDX-License-Identifier: GPL-2.0-or-later
//! RMR and BRMR wire format (Documentation/wire-format.md).
//!
//! Little-endian, fixed 16-byte header, versioned. `encode` writes into a caller buffer and returns
//! the bytes used; `decode` validates every field (lengths, counts, enum values, member ids,
//! ranges) and returns an error for any malformed input, never panics.


mod brmr;
mod cmd;
mod codec;
mod md;
pub use brmr::*;
pub use cmd::*;
pub use codec::*;
pub use md::*;

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

/// A decoded RMR message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Msg<'a> {
    /// Command with its sequence number on its (session, pool): 0 for a command that is not
    /// sequenced ([`Cmd::sequenced`]), else the sender's per-session counter, which the
    /// receiving session requires to grow (`SessionPools::admit`).
    Cmd(u32, Cmd<'a>),
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
            Msg::Cmd(..) => MsgType::Cmd,
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
            Msg::Cmd(seq, c) => {
                if (*seq == 0) == c.sequenced() {
                    return Err(Error::Inval);
                }
                w.u16(c.ty() as u16)?;
                w.u16(0)?;
                w.u32(*seq)?;
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
                let seq = r.u32()?;
                let c = Cmd::decode_body(ct, &mut r)?;
                if (seq == 0) == c.sequenced() {
                    return Err(Error::Proto);
                }
                Msg::Cmd(seq, c)
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
            (cmd(), 1u32..).prop_map(|(c, seq)| Msg::Cmd(if c.sequenced() { seq } else { 0 }, c)),
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
        buf[2] = 2;
        assert_eq!(Msg::decode(&buf[..n]), Err(Error::Proto), "version 2 (no command sequence) is refused");
        buf[2] = RMR_PROTO_VERSION as u8;
        assert!(Msg::decode(&buf[..n]).is_ok());
        // Duplicate member ids in a list.
        let mut l = MemberList::new();
        l.push(5).unwrap();
        l.push(6).unwrap();
        let n = Msg::Cmd(3, Cmd::MapBufDone { members: l }).encode(1, &mut buf).unwrap();
        buf[n - 12..n - 8].copy_from_slice(&5u32.to_le_bytes());
        assert_eq!(Msg::decode(&buf[..n]), Err(Error::Proto));
        // Wrong body for a reply type is refused at encode time.
        let bad = CmdRsp::ok(CmdType::MapCheck, RspBody::MapVer { map_ver: 1 });
        assert_eq!(Msg::CmdRsp(bad).encode(1, &mut buf), Err(Error::Inval));
    }

    /// A sequenced command needs a sequence number and an unsequenced one must not have one,
    /// both ways (one canonical encoding).
    #[test]
    fn command_sequence_numbers() {
        let mut buf = [0u8; MAX_MSG_LEN];
        assert_eq!(Msg::Cmd(0, Cmd::EnablePool { enable: true }).encode(1, &mut buf), Err(Error::Inval));
        assert_eq!(Msg::Cmd(4, Cmd::MapCheck { map_ver: 0 }).encode(1, &mut buf), Err(Error::Inval));
        let n = Msg::Cmd(7, Cmd::EnablePool { enable: true }).encode(1, &mut buf).unwrap();
        assert_eq!(&buf[HDR_LEN + 4..HDR_LEN + 8], &7u32.to_le_bytes());
        assert_eq!(Msg::decode(&buf[..n]).map(|(_, m)| m), Ok(Msg::Cmd(7, Cmd::EnablePool { enable: true })));
        buf[HDR_LEN + 4..HDR_LEN + 8].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(Msg::decode(&buf[..n]), Err(Error::Proto), "sequenced without a number");
        let n = Msg::Cmd(0, Cmd::MapCheck { map_ver: 0 }).encode(1, &mut buf).unwrap();
        buf[HDR_LEN + 4] = 1;
        assert_eq!(Msg::decode(&buf[..n]), Err(Error::Proto), "unsequenced with a number");
    }
}
