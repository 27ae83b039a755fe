// SPDX-License-Identifier: GPL-2.0-or-later
//! brmr's block client: what happens to a request of `/dev/brmrN` (its rmr flags, the pieces
//! of a discard or write-zeroes, requeue and errors), the device's counters and its openers.
//! The blk-mq tag set, the gendisk and the callbacks that call this file are in
//! `wrap/blk_mq.rs`.
//!
//! Decisions (limits, what to map) are taken in `rmr_core::brmr_map`.

#![deny(unsafe_code)]

use crate::abi::{RMR_IO_DISCARD, RMR_IO_FLUSH, RMR_IO_FUA, RMR_IO_WRITE};
use crate::rmr_core::brmr_map;
use crate::wrap::blk_mq::{Done, Op, Queued, Request, Status};
use core::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use kernel::prelude::*;

/// `openers` value once the device is being removed: no new opener gets in.
const DYING: i32 = -1;

/// What the blk-mq and open/release callbacks of one device use, without brmr's lock.
pub(crate) struct Shared {
    /// Chunk size in bytes (discard and write-zeroes go out one chunk piece at a time).
    chunk: u32,
    /// Block device openers, or [`DYING`].
    openers: AtomicI32,
    /// Reads completed successfully.
    pub(crate) reads: AtomicU64,
    /// Writes (and flushes) completed successfully.
    pub(crate) writes: AtomicU64,
    /// Requests completed with an error.
    pub(crate) errors: AtomicU64,
}

impl Shared {
    /// Data for a device of an rmr pool with chunks of `chunk` bytes.
    pub(crate) fn new(chunk: u32) -> Shared {
        Shared {
            chunk,
            openers: AtomicI32::new(0),
            reads: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }

    /// Marks the device as going away unless the block device is open (-EBUSY then).
    pub(crate) fn start_removal(&self) -> Result {
        match self.openers.compare_exchange(0, DYING, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) | Err(DYING) => Ok(()),
            Err(_) => Err(EBUSY),
        }
    }

    /// Marks the device as going away even if open (module unload: nothing can hold it open
    /// then, the gendisk's fops pin the module).
    pub(crate) fn force_removal(&self) {
        self.openers.store(DYING, Ordering::Release);
    }

    /// Current openers (for logs).
    pub(crate) fn openers(&self) -> i32 {
        self.openers.load(Ordering::Acquire).max(0)
    }
}

/// gendisk `open`: counts openers; refuses once the device is being removed.
pub(crate) fn open(s: &Shared) -> Result {
    let mut cur = s.openers.load(Ordering::Acquire);
    loop {
        if cur < 0 {
            return Err(ENXIO);
        }
        match s.openers.compare_exchange(cur, cur + 1, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Ok(()),
            Err(v) => cur = v,
        }
    }
}

/// gendisk `release`.
pub(crate) fn release(s: &Shared) {
    // An opener of a dying device (module unload) may still release: never go below DYING.
    let _ = s
        .openers
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| (v > 0).then_some(v - 1));
}

/// blk-mq `queue_rq`: request → scatterlist → rmr IO. Never sleeps. A refusal gives the
/// request back with its status.
pub(crate) fn queue_rq(mut rq: Request<'_>) -> Result<Queued, (Request<'_>, Status)> {
    let mut flags = match rq.op() {
        Op::Read => 0,
        Op::Write => RMR_IO_WRITE,
        Op::Flush => RMR_IO_FLUSH,
        // Both zero the range on every store (so every leg reads the same afterwards).
        Op::Discard | Op::WriteZeroes => RMR_IO_WRITE | RMR_IO_DISCARD,
        Op::Other => return Err((rq, Status::NotSupp)),
    };
    let zero = flags & RMR_IO_DISCARD != 0;
    if rq.preflush() {
        flags |= RMR_IO_FLUSH;
    }
    if rq.fua() && flags & RMR_IO_WRITE != 0 && !zero {
        flags |= RMR_IO_FUA;
    }
    let mut len = rq.bytes();
    let mut left = 0;
    if zero {
        // One chunk piece at a time; `io_done` sends the rest.
        let total = u64::from(len);
        len = brmr_map::zero_piece(rq.sector() << 9, total, rq.shared().chunk);
        left = total - u64::from(len);
    }
    if !(len == 0 || zero) && rq.map_sg().is_none() {
        return Err((rq, Status::IoErr));
    }
    // A pure flush has no position (`__sector` is -1): offset 0.
    let offset = if len == 0 { 0 } else { rq.sector() << 9 };
    // After `Ok` the completion owns the request (it may already have completed it).
    match rq.submit(flags, len, offset, left) {
        Ok(q) => Ok(q),
        Err((rq, r)) if r == EAGAIN.to_errno() => Err((rq, Status::Resource)),
        Err((rq, _)) => {
            rq.shared().errors.fetch_add(1, Ordering::Relaxed);
            Err((rq, Status::IoErr))
        }
    }
}

/// The rmr IO of a request completed with `err` (any context, possibly before the request
/// call returned): the next piece of a discard or write-zeroes goes out, or the request
/// completes. rmr calls this without holding any of its locks, so the next piece may be
/// requested from here.
/// The device's data is reached through `io`, never across its completion (after which the
/// disk may go).
pub(crate) fn io_done(io: Done<'_>, err: i32) {
    let mut io = io;
    let mut err = err;
    if err == 0 && io.left() > 0 {
        let offset = io.offset() + u64::from(io.len());
        let len = brmr_map::zero_piece(offset, io.left(), io.shared().chunk);
        let left = io.left() - u64::from(len);
        match io.next_piece(offset, len, left) {
            Ok(()) => return,
            Err((back, r)) if r == EAGAIN.to_errno() => {
                // No IO unit now: the whole request runs again later (zeroing twice is
                // harmless; nothing else writes the range before it completes).
                back.requeue();
                return;
            }
            Err((back, r)) => {
                io = back;
                err = r;
            }
        }
    }
    io.complete(err);
}

/// blk-mq `complete` of a request with `RMR_IO_*` `flags` that ended with `err`: counts it.
pub(crate) fn completed(s: &Shared, flags: u32, err: i32) {
    if err == 0 {
        let c = if flags & (RMR_IO_WRITE | RMR_IO_FLUSH) != 0 { &s.writes } else { &s.reads };
        c.fetch_add(1, Ordering::Relaxed);
    } else {
        s.errors.fetch_add(1, Ordering::Relaxed);
    }
}
