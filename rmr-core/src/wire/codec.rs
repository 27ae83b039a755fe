// SPDX-License-Identifier: GPL-2.0-or-later
//! Little-endian writer and reader with strict bounds, and the field checks of decoding.

use super::*;

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
    pub(super) fn patch_u32(&mut self, at: usize, v: u32) -> Result<()> {
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
    pub(super) fn arr<const N: usize>(&mut self) -> Result<[u8; N]> {
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

pub(super) fn check_chunk_size(c: u32) -> Result<()> {
    if c.is_power_of_two() && (RMR_MIN_CHUNK_SIZE..=RMR_MAX_CHUNK_SIZE).contains(&c) {
        Ok(())
    } else {
        Err(Error::Proto)
    }
}

pub(super) fn check_queue_depth(q: u16) -> Result<()> {
    if q >= 1 && usize::from(q) <= RMR_MAX_QUEUE_DEPTH {
        Ok(())
    } else {
        Err(Error::Proto)
    }
}

pub(super) fn check_member(m: u32) -> Result<u32> {
    if m == 0 {
        Err(Error::Proto)
    } else {
        Ok(m)
    }
}

pub(super) fn read_flag32(r: &mut Reader<'_>) -> Result<bool> {
    match r.u32()? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(Error::Proto),
    }
}
