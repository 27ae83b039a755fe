// SPDX-License-Identifier: GPL-2.0-or-later
//! Resync (SPEC §5.3 step 4, §7): on-demand chunk syncs and the sync thread, reading dirty
//! chunks from a NORMAL peer through the sync pool and writing them locally.

#![deny(unsafe_code)]

use super::*;

/// Piece size of one sync read from a peer (below RTRS's default 128 KiB chunk minus headers).
const SYNC_READ_MAX: u32 = 64 * 1024;

/// Retry period of a stalled sync thread (every dirty chunk busy with an on-demand sync).
const SYNC_RETRY_MS: u32 = 100;

/// Chunks one pump of the sync thread hands out before looping.
const PUMP_BATCH: usize = 32;

/// Starts a sync job for `chunk` (already locked in the core's sync table, `jobs` counted).
pub(super) fn spawn_sync(pool: Arc<SrvPool>, chunk: u64, thread: bool) {
    let p = pool.clone();
    let r = workqueue::system_unbound().try_spawn(GFP_KERNEL, move || {
        let r = sync_chunk(&p, chunk);
        finish_sync(&p, chunk, r, thread);
    });
    if r.is_err() {
        finish_sync(&pool, chunk, Err(Errno::ENOMEM), thread);
    }
}

/// Reads `len` bytes of `chunk` from `src` into `buf` in RTRS-sized pieces.
pub(super) fn read_from(sp: &SyncPool, src: u32, chunk: u64, buf: &mut [u8]) -> core::result::Result<(), Errno> {
    let len = u32::try_from(buf.len()).map_err(|_| Errno::EINVAL)?;
    let mut off = 0u32;
    while off < len {
        let n = core::cmp::min(SYNC_READ_MAX, len - off);
        let piece = buf.get_mut(off as usize..(off + n) as usize).ok_or(Errno::EINVAL)?;
        sp.read_chunk(src, chunk, off, piece)?;
        off += n;
    }
    Ok(())
}

/// Syncs one chunk: reads it from a peer that has it clean, writes it to the local store.
/// [`SYNC_NO_SOURCE`] (-ENODATA) when no peer could provide it (no sync pool attached, no
/// source, every source failed): the parked IOs get it, and a client tries another leg.
pub(super) fn sync_chunk(pool: &Arc<SrvPool>, chunk: u64) -> core::result::Result<(), Errno> {
    let (sp, cs, dev_bytes) = {
        let g = pool.inner.lock();
        (g.sync_pool.clone(), u64::from(g.core.md.chunk_size), g.core.md.mapped_size.saturating_mul(512))
    };
    let sp = sp.ok_or(SYNC_NO_SOURCE)?;
    let off = chunk.checked_mul(cs).filter(|o| *o < dev_bytes).ok_or(Errno::EINVAL)?;
    let len = core::cmp::min(cs, dev_bytes - off);
    let len32 = u32::try_from(len).map_err(|_| Errno::EINVAL)?;
    let mut buf = KVec::<u8>::from_elem(0u8, len as usize, GFP_KERNEL).map_err(|_| Errno::ENOMEM)?;
    let peers = sp.normal_peers();
    let mut skip = MemberList::new();
    let mut last: Option<Errno> = None;
    loop {
        let src = pool.inner.lock().core.sync_source(chunk, &peers, &skip);
        let Some(src) = src else {
            if ratelimit() {
                let why = if last.is_some() { "every source failed" } else { "no source among the sync pool's normal legs" };
                pr_err!("server pool {}: no peer can provide chunk {} ({}), answering ENODATA\n", pool.name(), chunk, why);
            }
            return Err(SYNC_NO_SOURCE);
        };
        match read_from(&sp, src, chunk, &mut buf) {
            Ok(()) => break,
            Err(e) => {
                if e != Errno::EAGAIN && ratelimit() {
                    pr_err!("server pool {}: sync read of chunk {} from member {} failed ({})\n",
                        pool.name(), chunk, src, e.name());
                }
                last = Some(e);
                if skip.push(src).is_err() {
                    return Err(SYNC_NO_SOURCE);
                }
            }
        }
    }
    drop(sp);
    // The synced data is a plain write: record it in the write-intent record, durably,
    // before it is submitted.
    let need = {
        let mut g = pool.inner.lock();
        if let Err(e) = g.core.sync_write_intent(chunk) {
            return Err(Errno::from_raw(-e.errno()).unwrap_or(Errno::EIO));
        }
        g.core.md_need().is_some()
    };
    if need {
        md_persist(pool).map_err(|r| Errno::from_raw(-r).unwrap_or(Errno::EIO))?;
    }
    let w = LocalWait::new().map_err(|_| Errno::ENOMEM)?;
    let store = pool.store_get().ok_or(Errno::EIO)?;
    let io = IoMsg {
        id: RmrId::chunk(chunk),
        mem_id: 0,
        flags: IO_WRITE,
        offset: 0,
        len: len32,
        map_ver: 0,
        members: MemberList::new(),
    };
    let req = match SrvReq::new(pool.clone(), ReqKind::Local(w.clone()), io, buf.as_mut_ptr()) {
        Ok(r) => r,
        Err(_) => {
            pool.store_put();
            return Err(Errno::ENOMEM);
        }
    };
    submit(store, req, off, 0);
    let e = w.wait(pool, chunk);
    drop(buf);
    if e != 0 {
        if ratelimit() {
            pr_err!("server pool {}: local write of synced chunk {} failed ({})\n", pool.name(), chunk, e);
        }
        return Err(Errno::from_raw(-e).unwrap_or(Errno::EIO));
    }
    Ok(())
}

/// A sync job ended: tell the core, MAP_CLEAR the peers, resume or fail the waiters.
pub(super) fn finish_sync(pool: &Arc<SrvPool>, chunk: u64, r: core::result::Result<(), Errno>, thread: bool) {
    let mut waiters = [0u16; RMR_MAX_QUEUE_DEPTH];
    let mut ended = false;
    let read_errno = match r {
        Ok(()) => 0,
        Err(e) => neg(e),
    };
    let (done, sp) = {
        let mut g = pool.inner.lock();
        let inner = &mut *g;
        let done = inner.core.finish_sync(chunk, read_errno, &mut waiters);
        if thread {
            let was_running = inner.sched.running;
            if inner.sched.done(&inner.core, done.cleared, now_ms()) && was_running {
                ended = true;
            }
        } else {
            inner.sched.on_demand_done(done.cleared);
        }
        (done, inner.sync_pool.clone())
    };
    if ended {
        log_sync_end(pool);
    }
    if let (Some(cmd), Some(sp)) = (done.map_clear.as_ref(), sp.as_ref()) {
        // The sync pool's lock first, released, then ours: they never nest (locking.md).
        let normal = sp.normal_peers();
        let peers = pool.inner.lock().core.map_clear_peers(&normal);
        for peer in peers.iter() {
            if let Err(e) = sp.send(peer, cmd) {
                if ratelimit() {
                    pr_err!("server pool {}: MAP_CLEAR of chunk {} to member {} failed ({})\n",
                        pool.name(), chunk, peer, e.name());
                }
            }
        }
    }
    drop(sp);
    for w in waiters.iter().take(done.waiters) {
        let req = pool.inner.lock().parked.get_mut(usize::from(*w)).and_then(|p| p.take());
        if let Some(req) = req {
            if done.cleared {
                dispatch(pool.clone(), Incoming::Resumed(req));
            } else {
                finish_with(req, done.waiter_errno);
            }
        }
    }
    if thread {
        pump(pool);
    }
    {
        let mut g = pool.inner.lock();
        g.jobs = g.jobs.saturating_sub(1);
    }
    pool.cv.notify_all();
}

/// Hands out sync-thread requests up to the scheduler's cap; notices the thread's end.
pub(super) fn pump(pool: &Arc<SrvPool>) {
    loop {
        let mut chunks = [0u64; PUMP_BATCH];
        let mut n = 0;
        let ended_now = {
            let mut g = pool.inner.lock();
            if g.dead {
                return;
            }
            let inner = &mut *g;
            let was_running = inner.sched.running;
            while n < PUMP_BATCH {
                match inner.sched.next(&mut inner.core) {
                    Some(c) => {
                        chunks[n] = c;
                        n += 1;
                        inner.jobs += 1;
                    }
                    None => break,
                }
            }
            let ended = inner.sched.check_end(&inner.core, now_ms());
            if !ended && n == 0 && inner.sched.in_flight == 0 {
                inner.dw_sync.queue(SYNC_RETRY_MS);
            }
            was_running && ended
        };
        for c in chunks.iter().take(n) {
            spawn_sync(pool.clone(), *c, true);
        }
        if ended_now {
            log_sync_end(pool);
        }
        if n < PUMP_BATCH {
            return;
        }
    }
}

/// SPEC §11 [improvement]: a NORMAL pool with a dirty own map and an attached sync pool starts
/// its sync thread by itself (the core decides: `SyncSched::auto_start`). Called by the
/// map-clear tick and when the pool enters NORMAL. Process context.
pub(super) fn auto_sync(pool: &Arc<SrvPool>) {
    let sqd = u16::try_from(crate::sync_queue_depth()).unwrap_or(32);
    let (r, cap, own) = {
        let mut g = pool.inner.lock();
        if g.dead {
            return;
        }
        let have = g.sync_pool.is_some();
        let inner = &mut *g;
        let r = inner.sched.auto_start(&inner.core, sqd, have, now_ms());
        let own = inner.core.maps.get(pool.member_id).map_or(0, |m| m.count());
        (r, inner.sched.cap, own)
    };
    if r == AutoSync::Started {
        pr_info!("server pool {}: sync started automatically ({} chunks dirty, {} in flight at most)\n",
            pool.name(), own, cap);
        pump(pool);
    }
}

pub(super) fn log_sync_end(pool: &SrvPool) {
    let (clean, st) = {
        let g = pool.inner.lock();
        let own = g.core.maps.get(pool.member_id).map_or(true, |m| m.is_empty());
        (own, g.core.state)
    };
    pr_info!(
        "server pool {}: sync stopped ({}, state {})\n",
        pool.name(),
        if clean { "own map clean" } else { "own map still dirty" },
        st.name()
    );
}
