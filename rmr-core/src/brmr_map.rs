// SPDX-License-Identifier: GPL-2.0-or-later
//! brmr-client `map_device` decisions (SPEC §2.4, §9.2) as pure functions.
//!
//! The kernel shell sends `BRMR_CMD_READ_MD`, `MAP_NEW`, `MAP_CHECK` and `UNMAP` through
//! `rmr_clt_cmd_with_rsp()` and feeds the response slices back here; every "may we map, how,
//! and did it work" decision is taken by this module. It also computes the block-queue limits
//! of `/dev/brmrN` from what `rmr_clt_open()` reported, and picks the device number.

use super::consts::RMR_POOL_MAX_SESS;
use super::errno::Errno;
use super::wire::{BrmrMsg, PoolName, BRMR_HDR_LEN};

/// Encoded length of a `BrmrMsg::Rsp`: header, errno, lbs, mapped_size, mapped, name.
pub const RSP_LEN: usize = BRMR_HDR_LEN + 4 + 4 + 8 + 4 + 1 + super::consts::RMR_NAME_MAX;

/// Size of one response slice the client hands to `rmr_clt_cmd_with_rsp()`.
pub const RSP_SLICE: usize = 128;

/// Size of the whole response buffer (`RMR_POOL_MAX_SESS` slices).
pub const RSP_BUF: usize = RMR_POOL_MAX_SESS * RSP_SLICE;

/// Longest encoded request message the client sends.
pub const REQ_MAX: usize = BRMR_HDR_LEN + 8;

/// Most request tags per device (caps a pool's larger `queue_depth`: pdu memory).
pub const MAX_TAGS: u32 = 512;

/// Most scatterlist entries per request (the sg table lives in the request pdu).
pub const MAX_SEGMENTS: u32 = 128;

/// Highest device number, `brmr0`..`brmr255`.
pub const MAX_DEVICES: u32 = 256;

/// What one store answered (a decoded `BRMR_CMD_RSP` slice).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    /// 0 or the handler's negative errno.
    pub errno: i32,
    /// Pool name of the store.
    pub name: PoolName,
    /// Store's mapped size in sectors.
    pub mapped_size: u64,
    /// Store's logical block size in bytes.
    pub lbs: u32,
    /// MAPPED flag.
    pub mapped: bool,
}

impl Answer {
    fn ok(&self) -> bool {
        self.errno == 0
    }
}

/// Decodes one response slice: `None` if the slice is not a valid `BRMR_CMD_RSP` (the leg did
/// not answer: untouched zeroes, a FAILED leg, garbage).
pub fn decode_slice(slice: &[u8]) -> Option<Answer> {
    let msg = slice.get(..RSP_LEN)?;
    match BrmrMsg::decode(msg) {
        Ok(BrmrMsg::Rsp { errno, name, mapped_size, lbs, mapped }) => {
            Some(Answer { errno, name, mapped_size, lbs, mapped })
        }
        _ => None,
    }
}

/// Decodes every slice of a response buffer (`RSP_BUF` bytes of `RSP_SLICE` slices).
pub fn decode_all(buf: &[u8]) -> [Option<Answer>; RMR_POOL_MAX_SESS] {
    let mut out = [None; RMR_POOL_MAX_SESS];
    for (o, s) in out.iter_mut().zip(buf.chunks(RSP_SLICE)) {
        *o = decode_slice(s);
    }
    out
}

/// Why a map (or one of its steps) is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No store answered at all.
    NoAnswer,
    /// First-time map, but not every leg answered (a leg failed, is missing or timed out).
    NotAllAnswered,
    /// Some stores are mapped, some not.
    Mixed,
    /// Stores of a first-time map disagree on the logical block size or mapped size.
    ParamMismatch,
    /// The requested size differs from the stores' `mapped_size`.
    SizeMismatch,
    /// A store answered for another pool.
    WrongPool,
    /// A store could not read its metadata (first-time map).
    StoreError,
    /// MAP_NEW did not succeed on every store.
    MapNewFailed,
    /// A store refused MAP_CHECK with this errno.
    CheckRefused(i32),
    /// The pool's parameters cannot make a block device (zero queue depth, IO size
    /// below a page or a logical block, block size beyond a page).
    BadLimits,
    /// All device numbers are taken.
    NoDevice,
}

impl Refusal {
    /// The errno `map_device` returns.
    pub const fn errno(self) -> Errno {
        match self {
            Refusal::NoAnswer
            | Refusal::NotAllAnswered
            | Refusal::StoreError
            | Refusal::MapNewFailed => Errno::EIO,
            Refusal::CheckRefused(e) if e != Errno::EINVAL.to_kernel() => Errno::EIO,
            Refusal::NoDevice => Errno::ENOSPC,
            _ => Errno::EINVAL,
        }
    }

    /// For the log line.
    pub const fn what(self) -> &'static str {
        match self {
            Refusal::NoAnswer => "no store answered",
            Refusal::NotAllAnswered => "first-time map needs every leg to answer",
            Refusal::Mixed => "some stores are mapped and some are not",
            Refusal::ParamMismatch => "stores disagree on logical block size or mapped_size",
            Refusal::SizeMismatch => "size differs from the stores' mapped_size",
            Refusal::WrongPool => "a store answered for another pool",
            Refusal::StoreError => "a store could not read its metadata",
            Refusal::MapNewFailed => "MAP_NEW failed on a store (rolled back)",
            Refusal::CheckRefused(_) => "a store refused MAP_CHECK",
            Refusal::BadLimits => "pool parameters cannot make a block device",
            Refusal::NoDevice => "no free brmr device number",
        }
    }
}

/// First-time map or re-map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapKind {
    /// All responding stores unmapped: `MAP_NEW` to all.
    New,
    /// All responding stores mapped: `MAP_CHECK` to the responding ones.
    Remap,
}

impl MapKind {
    /// The message to send for this kind of map.
    pub const fn msg(self, size: u64) -> BrmrMsg {
        match self {
            MapKind::New => BrmrMsg::MapNew { mapped_size: size },
            MapKind::Remap => BrmrMsg::MapCheck { mapped_size: size },
        }
    }

    /// For log lines.
    pub const fn name(self) -> &'static str {
        match self {
            MapKind::New => "first-time map",
            MapKind::Remap => "re-map",
        }
    }
}

/// What `READ_MD` decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// New or re-map.
    pub kind: MapKind,
    /// Logical block size of the device.
    pub lbs: u32,
}

/// Decides from the `READ_MD` answers (SPEC §9.2 steps 3-5).
///
/// `pool`: the pool name; `size`: requested sectors; `legs`: legs of the pool (each must answer
/// for a first-time map); `conf`: `rmr_clt_cmd_with_rsp()`'s `conf`; `answers`: decoded slices.
pub fn plan(pool: &[u8], size: u64, legs: usize, conf: i32, answers: &[Option<Answer>]) -> Result<Plan, Refusal> {
    let mut n = 0usize;
    let mut good = 0usize;
    let (mut mapped, mut unmapped) = (0usize, 0usize);
    for a in answers.iter().flatten() {
        n += 1;
        if a.name.as_bytes() != pool {
            return Err(Refusal::WrongPool);
        }
        if !a.ok() {
            continue;
        }
        good += 1;
        if a.mapped {
            mapped += 1;
        } else {
            unmapped += 1;
        }
    }
    if good == 0 {
        return Err(if n == 0 { Refusal::NoAnswer } else { Refusal::StoreError });
    }
    let oks = || answers.iter().flatten().filter(|a| a.ok());
    if mapped > 0 && unmapped > 0 {
        return Err(Refusal::Mixed);
    }
    if unmapped > 0 {
        // First-time map: every leg answered, no transport failure, no store error.
        if conf != 0 || n < legs || legs == 0 {
            return Err(Refusal::NotAllAnswered);
        }
        if good < n {
            return Err(Refusal::StoreError);
        }
        let first = oks().next().ok_or(Refusal::NoAnswer)?;
        if oks().any(|a| a.lbs != first.lbs || a.mapped_size != first.mapped_size) {
            return Err(Refusal::ParamMismatch);
        }
        if size != first.mapped_size {
            return Err(Refusal::SizeMismatch);
        }
        Ok(Plan { kind: MapKind::New, lbs: first.lbs })
    } else {
        // Re-map: missing legs are tolerated; the size must match every responding store.
        if oks().any(|a| a.mapped_size != size) {
            return Err(Refusal::SizeMismatch);
        }
        let lbs = oks().map(|a| a.lbs).max().ok_or(Refusal::NoAnswer)?;
        Ok(Plan { kind: MapKind::Remap, lbs })
    }
}

/// Judges the answers to `MAP_NEW` (`kind` New) or `MAP_CHECK` (`kind` Remap).
///
/// `New`: every leg must have answered with success and MAPPED set, else the caller rolls
/// back (`UNMAP` to all legs) and fails with `MapNewFailed`. `Remap`: at least one store must accept, and none
/// may refuse.
pub fn judge(kind: MapKind, legs: usize, conf: i32, answers: &[Option<Answer>]) -> Result<(), Refusal> {
    let n = answers.iter().flatten().count();
    let good = answers.iter().flatten().filter(|a| a.ok()).count();
    match kind {
        MapKind::New => {
            let set = answers.iter().flatten().filter(|a| a.ok() && a.mapped).count();
            if conf != 0 || n < legs || good < n || good == 0 || set < good {
                return Err(Refusal::MapNewFailed);
            }
            Ok(())
        }
        MapKind::Remap => {
            if let Some(a) = answers.iter().flatten().find(|a| !a.ok()) {
                return Err(Refusal::CheckRefused(a.errno));
            }
            if good == 0 {
                return Err(Refusal::NoAnswer);
            }
            Ok(())
        }
    }
}

/// What `rmr_clt_open()` reports that shapes the block device (`RmrCltInfo`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolInfo {
    /// Chunk size in bytes.
    pub chunk_size: u32,
    /// IO units of the pool.
    pub queue_depth: u32,
    /// Largest request in bytes.
    pub max_io_size: u32,
    /// Largest scatterlist.
    pub max_segments: u32,
}

/// Block queue limits of `/dev/brmrN`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Tags of the single hardware queue (≤ pool `queue_depth`).
    pub queue_depth: u32,
    /// Logical (and physical) block size in bytes.
    pub lbs: u32,
    /// `max_hw_sectors`: ≤ min(max_io_size, chunk_size) / 512, a multiple of the block size.
    pub max_hw_sectors: u32,
    /// `chunk_sectors`: requests never cross a chunk.
    pub chunk_sectors: u32,
    /// `max_segments` (≤ pool's, ≤ [`MAX_SEGMENTS`]).
    pub max_segments: u32,
}

/// Computes the queue limits; `page_size` is the kernel's (the block layer needs a page per
/// request and per segment at least, and a block size of at most a page).
pub fn limits(info: &PoolInfo, lbs: u32, page_size: u32) -> Result<Limits, Refusal> {
    if !lbs.is_power_of_two() || lbs < 512 || lbs > page_size {
        return Err(Refusal::BadLimits);
    }
    if !info.chunk_size.is_power_of_two() || info.chunk_size < page_size || info.chunk_size < lbs {
        return Err(Refusal::BadLimits);
    }
    let lbs_sectors = lbs / 512;
    let bytes = info.max_io_size.min(info.chunk_size);
    let max_hw_sectors = bytes / 512 / lbs_sectors * lbs_sectors;
    if max_hw_sectors < page_size / 512 || info.queue_depth == 0 || info.max_segments == 0 {
        return Err(Refusal::BadLimits);
    }
    Ok(Limits {
        queue_depth: info.queue_depth.min(MAX_TAGS),
        lbs,
        max_hw_sectors,
        chunk_sectors: info.chunk_size / 512,
        max_segments: info.max_segments.min(MAX_SEGMENTS),
    })
}

/// Bytes of the next piece of a discard or write-zeroes at byte `offset` with `left` bytes to
/// go: up to the end of its chunk (`chunk` bytes, a power of two), since rmr IO never crosses
/// a chunk. The block layer does not split these requests at chunks (only at
/// `max_discard_sectors` = one chunk), so one may span two.
pub fn zero_piece(offset: u64, left: u64, chunk: u32) -> u32 {
    let chunk = u64::from(chunk.max(1));
    let room = chunk - offset % chunk;
    u32::try_from(left.min(room)).unwrap_or(u32::MAX)
}

/// The lowest device number not in `used` (SPEC §2.4: lowest free `brmrN`).
pub fn lowest_free(used: impl Iterator<Item = u32> + Clone) -> Result<u32, Refusal> {
    (0..MAX_DEVICES).find(|n| !used.clone().any(|u| u == *n)).ok_or(Refusal::NoDevice)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    const POOL: &[u8] = b"ionos_pool";

    fn ans(mapped: bool, size: u64, lbs: u32) -> Option<Answer> {
        Some(Answer { errno: 0, name: PoolName::new(POOL).unwrap(), mapped_size: size, lbs, mapped })
    }

    fn err_ans(e: i32) -> Option<Answer> {
        Some(Answer { errno: e, name: PoolName::new(POOL).unwrap(), mapped_size: 0, lbs: 0, mapped: false })
    }

    #[test]
    fn zero_pieces_stop_at_chunks() {
        let c = 131072;
        assert_eq!(zero_piece(0, 4096, c), 4096);
        assert_eq!(zero_piece(0, 131072, c), 131072);
        assert_eq!(zero_piece(126976, 8192, c), 4096, "crosses: up to the chunk end");
        assert_eq!(zero_piece(131072, 4096, c), 4096, "the rest, in the next chunk");
        assert_eq!(zero_piece(65536, 131072, c), 65536);
        assert_eq!(zero_piece(5 * 131072 + 512, 1 << 40, c), 131072 - 512);
        assert_eq!(zero_piece(0, 0, c), 0);
    }

    fn encode(a: &Answer) -> Vec<u8> {
        let mut b = [0u8; RSP_SLICE];
        let m = BrmrMsg::Rsp { errno: a.errno, name: a.name, mapped_size: a.mapped_size, lbs: a.lbs, mapped: a.mapped };
        let n = m.encode(&mut b).unwrap();
        assert_eq!(n, RSP_LEN);
        b.to_vec()
    }

    #[test]
    fn rsp_len_matches_encoding_and_fits_a_slice() {
        let a = ans(true, 204800, 512).unwrap();
        assert_eq!(encode(&a).len(), RSP_SLICE);
        const { assert!(RSP_LEN <= RSP_SLICE) };
        let mut b = [0u8; 64];
        assert!(BrmrMsg::MapNew { mapped_size: u64::MAX }.encode(&mut b).unwrap() <= REQ_MAX);
        assert!(BrmrMsg::MapCheck { mapped_size: 1 }.encode(&mut b).unwrap() <= REQ_MAX);
        assert!(BrmrMsg::Unmap.encode(&mut b).unwrap() <= REQ_MAX);
        assert!(BrmrMsg::ReadMd.encode(&mut b).unwrap() <= REQ_MAX);
    }

    #[test]
    fn decode_buffer_slices() {
        let mut buf = [0u8; RSP_BUF];
        let a = ans(false, 204800, 4096).unwrap();
        let e = encode(&a);
        buf[RSP_SLICE..2 * RSP_SLICE].copy_from_slice(&e);
        // Slice 2: a request tag, not a response: no answer.
        let mut req = [0u8; RSP_SLICE];
        BrmrMsg::ReadMd.encode(&mut req).unwrap();
        buf[2 * RSP_SLICE..3 * RSP_SLICE].copy_from_slice(&req);
        // Slice 3: garbage.
        for (i, b) in buf[3 * RSP_SLICE..].iter_mut().enumerate() {
            *b = i as u8 ^ 0x5a;
        }
        let d = decode_all(&buf);
        assert_eq!(d, [None, Some(a), None, None]);
        assert_eq!(decode_slice(&[]), None);
        assert_eq!(decode_slice(&e[..RSP_LEN - 1]), None);
    }

    #[test]
    fn first_time_map() {
        let a = [ans(false, 204800, 512), ans(false, 204800, 512), None, None];
        assert_eq!(plan(POOL, 204800, 2, 0, &a), Ok(Plan { kind: MapKind::New, lbs: 512 }));
        // A missing leg, or a failed one (conf > 0), or a leg the pool has but that did not answer.
        assert_eq!(plan(POOL, 204800, 2, 1, &a), Err(Refusal::NotAllAnswered));
        assert_eq!(plan(POOL, 204800, 3, 0, &a), Err(Refusal::NotAllAnswered));
        assert_eq!(Refusal::NotAllAnswered.errno(), Errno::EIO);
        // Size and parameter checks.
        assert_eq!(plan(POOL, 204801, 2, 0, &a), Err(Refusal::SizeMismatch));
        assert_eq!(Refusal::SizeMismatch.errno(), Errno::EINVAL);
        let b = [ans(false, 204800, 512), ans(false, 204800, 4096), None, None];
        assert_eq!(plan(POOL, 204800, 2, 0, &b), Err(Refusal::ParamMismatch));
        let c = [ans(false, 204800, 512), ans(false, 1024, 512), None, None];
        assert_eq!(plan(POOL, 204800, 2, 0, &c), Err(Refusal::ParamMismatch));
        assert_eq!(Refusal::ParamMismatch.errno(), Errno::EINVAL);
        // One store could not read its metadata.
        let d = [ans(false, 204800, 512), err_ans(-5), None, None];
        assert_eq!(plan(POOL, 204800, 2, 0, &d), Err(Refusal::StoreError));
        assert_eq!(Refusal::StoreError.errno(), Errno::EIO);
        // No legs at all.
        assert_eq!(plan(POOL, 204800, 0, 0, &[None; 4]), Err(Refusal::NoAnswer));
    }

    #[test]
    fn remap_tolerates_missing_legs() {
        let a = [None, ans(true, 204800, 512), None, None];
        assert_eq!(plan(POOL, 204800, 2, 1, &a), Ok(Plan { kind: MapKind::Remap, lbs: 512 }));
        assert_eq!(plan(POOL, 204800, 2, 0, &a), Ok(Plan { kind: MapKind::Remap, lbs: 512 }));
        assert_eq!(plan(POOL, 100, 2, 1, &a), Err(Refusal::SizeMismatch));
        // A store with a read error does not count; the mapped one decides.
        let b = [err_ans(-5), ans(true, 204800, 4096), ans(true, 204800, 512), None];
        assert_eq!(plan(POOL, 204800, 3, 0, &b), Ok(Plan { kind: MapKind::Remap, lbs: 4096 }));
        assert_eq!(plan(POOL, 204800, 3, -110, &[None; 4]), Err(Refusal::NoAnswer));
        assert_eq!(plan(POOL, 204800, 3, 0, &[err_ans(-5), None, None, None]), Err(Refusal::StoreError));
    }

    #[test]
    fn mixed_is_refused() {
        let a = [ans(true, 204800, 512), ans(false, 204800, 512), None, None];
        assert_eq!(plan(POOL, 204800, 2, 0, &a), Err(Refusal::Mixed));
        assert_eq!(Refusal::Mixed.errno(), Errno::EINVAL);
    }

    #[test]
    fn foreign_pool_is_refused() {
        let mut a = [ans(false, 204800, 512), ans(false, 204800, 512), None, None];
        if let Some(x) = a[1].as_mut() {
            x.name = PoolName::new(b"other").unwrap();
        }
        assert_eq!(plan(POOL, 204800, 2, 0, &a), Err(Refusal::WrongPool));
    }

    #[test]
    fn judge_map_new_and_check() {
        let ok = [ans(true, 204800, 512), ans(true, 204800, 512), None, None];
        assert_eq!(judge(MapKind::New, 2, 0, &ok), Ok(()));
        assert_eq!(judge(MapKind::New, 2, 1, &ok), Err(Refusal::MapNewFailed));
        assert_eq!(judge(MapKind::New, 3, 0, &ok), Err(Refusal::MapNewFailed));
        let one_bad = [ans(true, 204800, 512), err_ans(-5), None, None];
        assert_eq!(judge(MapKind::New, 2, 0, &one_bad), Err(Refusal::MapNewFailed));
        assert_eq!(Refusal::MapNewFailed.errno(), Errno::EIO);
        assert_eq!(judge(MapKind::New, 0, 0, &[None; 4]), Err(Refusal::MapNewFailed));
        let not_set = [ans(true, 204800, 512), ans(false, 204800, 512), None, None];
        assert_eq!(judge(MapKind::New, 2, 0, &not_set), Err(Refusal::MapNewFailed));

        let partial = [None, ans(true, 204800, 512), None, None];
        assert_eq!(judge(MapKind::Remap, 2, 1, &partial), Ok(()));
        let refused = [err_ans(-22), ans(true, 204800, 512), None, None];
        assert_eq!(judge(MapKind::Remap, 2, 0, &refused), Err(Refusal::CheckRefused(-22)));
        assert_eq!(Refusal::CheckRefused(-22).errno(), Errno::EINVAL);
        assert_eq!(Refusal::CheckRefused(-5).errno(), Errno::EIO);
        assert_eq!(judge(MapKind::Remap, 2, -5, &[None; 4]), Err(Refusal::NoAnswer));
    }

    #[test]
    fn queue_limits() {
        let info = PoolInfo { chunk_size: 131072, queue_depth: 512, max_io_size: 1 << 20, max_segments: 256 };
        let l = limits(&info, 512, 4096).unwrap();
        assert_eq!(l, Limits { queue_depth: 512, lbs: 512, max_hw_sectors: 256, chunk_sectors: 256, max_segments: 128 });
        let info2 = PoolInfo { max_io_size: 65536 + 512, queue_depth: 32, ..info };
        let l = limits(&info2, 4096, 4096).unwrap();
        assert_eq!(l.max_hw_sectors, 128);
        assert_eq!(l.queue_depth, 32);
        assert_eq!(limits(&info, 8192, 4096), Err(Refusal::BadLimits));
        assert_eq!(limits(&info, 1000, 4096), Err(Refusal::BadLimits));
        assert_eq!(limits(&PoolInfo { max_io_size: 2048, ..info }, 512, 4096), Err(Refusal::BadLimits));
        assert_eq!(limits(&PoolInfo { queue_depth: 0, ..info }, 512, 4096), Err(Refusal::BadLimits));
        assert_eq!(limits(&PoolInfo { max_segments: 0, ..info }, 512, 4096), Err(Refusal::BadLimits));
        assert_eq!(limits(&PoolInfo { chunk_size: 3000, ..info }, 512, 4096), Err(Refusal::BadLimits));
    }

    #[test]
    fn device_numbers() {
        assert_eq!(lowest_free([].iter().copied()), Ok(0));
        assert_eq!(lowest_free([0, 1, 3].iter().copied()), Ok(2));
        let all: Vec<u32> = (0..MAX_DEVICES).collect();
        assert_eq!(lowest_free(all.iter().copied()), Err(Refusal::NoDevice));
    }

    #[test]
    fn never_panics_on_random_slices() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..20000 {
            let mut buf = [0u8; RSP_BUF];
            for b in buf.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = if x & 3 == 0 { (x >> 8) as u8 } else { 0 };
            }
            let d = decode_all(&buf);
            let _ = plan(POOL, x >> 40, (x & 3) as usize, (x >> 20) as i32 % 3, &d);
            let _ = judge(MapKind::New, 2, 0, &d);
            let _ = judge(MapKind::Remap, 2, 0, &d);
        }
    }
}
