// SPDX-License-Identifier: GPL-2.0-or-later
//! BRMR's messages carried as USER commands.

use super::*;

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
