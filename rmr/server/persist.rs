// SPDX-License-Identifier: GPL-2.0-or-later
//! The writer of a server pool's persisted metadata: rounds of `rmr_core::server::persist`
//! executed through the store's `md_update`, `md_write` and `md_sync`, the client writes
//! waiting for a round, and the loading at `add_store mode=add`.
//!
//! One writer mutex per pool orders the rounds (a later round copies newer pages, so it never
//! writes older content after a newer one). A command's reply and a client write wait for
//! the round that covers the bits and `last_io` slot they depend on; writes park in
//! `Inner::md_wait` by `mem_id` and the `DW_MD` work runs the round and submits them, so the
//! writes arriving while a round runs share the next one.

#![deny(unsafe_code)]

use super::*;
use crate::abi::{RMR_MD_INTENT, RMR_MD_LAST_IO, RMR_MD_LOST, RMR_MD_MAP, RMR_MD_PAGE, RMR_MD_WITNESS};
use crate::rmr_core::dirtymap::PAGE_BITS;
use crate::rmr_core::server::{MD_INTENT, MD_LAST_IO, MD_LAST_IO_PAGES, MD_LOST, MD_MAP, MD_PAGE_BYTES, MD_WITNESS};

const _: () = assert!(
    MD_PAGE_BYTES == RMR_MD_PAGE
        && MD_MAP == RMR_MD_MAP
        && MD_LAST_IO == RMR_MD_LAST_IO
        && MD_WITNESS == RMR_MD_WITNESS
        && MD_LOST == RMR_MD_LOST
        && MD_INTENT == RMR_MD_INTENT
);

/// A client write parked until its metadata is durable.
pub(super) struct MdWaiter {
    /// The round sequence it waits for.
    pub(super) seq: u64,
    /// Byte offset and added flags of its submission (`IoDecision::Submit*`).
    pub(super) off: u64,
    pub(super) extra: u16,
    pub(super) req: Pin<KBox<SrvReq>>,
}

/// The writer's page buffer (guarded by `SrvPool::md_writer`).
pub(super) type MdBuf = KBox<[u8; RMR_MD_PAGE]>;

/// One writer round: a device flush first if the plan asks for it (`MdPlan::preflush`), zero
/// pages over slots passing to another member (flushed), the
/// superblock (pool_md and slot table; brmr skips it if unchanged), the changed bitmap pages
/// (dirty maps, write-intent record, witness and lost maps), the changed `last_io` record
/// pages, then a writeback (a flush too when bits were set or the table changed). 0 or a
/// negative errno.
fn round(pool: &SrvPool, store: &StoreReg, buf: &mut [u8; RMR_MD_PAGE]) -> i32 {
    let (plan, md) = {
        let mut g = pool.inner.lock();
        let plan = g.core.md_begin();
        (plan, to_abi(&g.core))
    };
    let mut r = 0;
    if plan.preflush {
        // This node alone holds unflushed data a MAP_ADD's change depends on (MdPlan).
        r = store.md_sync(true);
    }
    let mut scrubbed = 0u32;
    while r == 0 {
        let Some(pg) = pool.inner.lock().core.md_next_scrub(&mut buf[..]) else { break };
        r = store.md_write(pg.region, pg.slot as u32, pg.page as u32, &buf[..]);
        scrubbed += 1;
    }
    if r == 0 && scrubbed > 0 {
        // A slot passing to another member holds nothing before the table names it.
        r = store.md_sync(true);
    }
    if r == 0 {
        r = store.md_update(&md);
    }
    let mut pages = 0u32;
    while r == 0 {
        let Some(pg) = pool.inner.lock().core.md_next_page(&mut buf[..]) else { break };
        r = store.md_write(pg.region, pg.slot as u32, pg.page as u32, &buf[..]);
        pages += 1;
    }
    let mut records = 0u32;
    for p in 0..MD_LAST_IO_PAGES {
        if r != 0 {
            break;
        }
        if plan.last_io & (1 << p) != 0 {
            pool.inner.lock().core.md_last_io_page(p, &mut buf[..]);
            r = store.md_write(RMR_MD_LAST_IO, 0, p as u32, &buf[..]);
            records += 1;
        }
    }
    if r == 0 && (pages + records > 0 || plan.table.is_some()) {
        r = store.md_sync(plan.flush);
    }
    pool.inner.lock().core.md_end(&plan, r == 0);
    r
}

/// Runs a writer round now. Sleeps. Ok without a store (nothing to persist); on failure the
/// pool leaves NORMAL (the store failed) and the errno is returned.
pub(super) fn md_persist(pool: &SrvPool) -> core::result::Result<(), i32> {
    let mut buf = pool.md_writer.lock();
    let Some(store) = pool.store_get() else { return Ok(()) };
    let r = round(pool, &store, &mut buf);
    pool.store_put();
    if r == 0 {
        return Ok(());
    }
    let (old, new) = {
        let mut g = pool.inner.lock();
        let old = g.core.state;
        g.core.io_allowed = false;
        let fx = g.core.on_fault();
        if fx.stop_sync {
            g.sched.stop();
        }
        (old, g.core.state)
    };
    if ratelimit() {
        pr_err!("server pool {}: persisting dirty maps and last_io failed ({})\n", pool.name(), r);
    }
    if old != new {
        pr_info!("server pool {}: {} -> {} (metadata write failed)\n", pool.name(), old.name(), new.name());
    }
    Err(r)
}

/// Writes the superblock only (`pool_md` changed, no bit to make durable): the map pages and
/// record changed meanwhile stay for the next round (a sync's clears, say, must not cost a
/// flush each). Under the writer mutex, so a round's slot table is never overtaken. Sleeps.
pub(super) fn md_persist_sb(pool: &SrvPool) {
    let _w = pool.md_writer.lock();
    let Some(store) = pool.store_get() else { return };
    let md = to_abi(&pool.inner.lock().core);
    let r = store.md_update(&md);
    pool.store_put();
    if r != 0 && ratelimit() {
        pr_err!("server pool {}: persisting pool metadata failed ({})\n", pool.name(), r);
    }
}

/// The `DW_MD` work: a round, then the parked writes it covers are submitted (all fail with
/// -EIO if it failed). Writes parked after the round began wait for the next one.
pub(super) fn md_work(pool: &Arc<SrvPool>) {
    let ok = md_persist(pool).is_ok();
    let mut i = 0;
    while i < RMR_MAX_QUEUE_DEPTH {
        let (w, more) = {
            let mut g = pool.inner.lock();
            let durable = g.core.mdlog.durable;
            let mut found = None;
            while i < RMR_MAX_QUEUE_DEPTH && found.is_none() {
                if let Some(slot) = g.md_wait.get_mut(i) {
                    if slot.as_ref().is_some_and(|w| !ok || w.seq.wrapping_sub(durable) as i64 <= 0) {
                        found = slot.take();
                    }
                }
                i += 1;
            }
            let more = g.md_wait.iter().any(|w| w.is_some());
            (found, more)
        };
        match w {
            Some(w) if ok => match pool.store_get() {
                Some(s) => submit(s, w.req, w.off, w.extra),
                None => finish_with(w.req, neg(Errno::EIO)),
            },
            Some(w) => finish_with(w.req, neg(Errno::EIO)),
            None if more => {
                // Parked after this round began: the next round covers them.
                pool.inner.lock().dw_md.queue(0);
                return;
            }
            None => return,
        }
    }
}

/// Fails every parked write (the pool is shut down).
pub(super) fn md_fail_waiters(pool: &SrvPool) {
    for i in 0..RMR_MAX_QUEUE_DEPTH {
        let w = pool.inner.lock().md_wait.get_mut(i).and_then(|w| w.take());
        if let Some(w) = w {
            finish_with(w.req, neg(Errno::EIO));
        }
    }
}

/// `add_store mode=add`: loads the persisted bitmaps (dirty maps by the slot table in `md`,
/// and with the write-intent regions the record, witness and lost maps) and the `last_io`
/// record through the store's `md_read`, before the store serves. Every bitmap of the area is
/// read, free slots too, so the writer knows which hold bits. Sleeps.
pub(super) fn md_load(pool: &SrvPool, store: &StoreReg, md: &RmrPoolMd) -> core::result::Result<(), i32> {
    let mut buf = pool.md_writer.lock();
    let (table, npages, intent) = {
        let mut g = pool.inner.lock();
        g.core.md_load_table(md.map_slots);
        let pages = if g.core.md.chunk_size == 0 { 0 } else { g.core.total_chunks().div_ceil(PAGE_BITS) };
        (g.core.mdlog.slots, pages, g.core.mdlog.intent_regions)
    };
    let mut bitmaps: KVec<(u32, u32)> = KVec::new();
    let regions: &[u32] = if intent { &[RMR_MD_MAP, RMR_MD_WITNESS, RMR_MD_LOST] } else { &[RMR_MD_MAP] };
    for region in regions {
        for slot in 0..table.len() as u32 {
            bitmaps.push((*region, slot), GFP_KERNEL).map_err(|_| neg(Errno::ENOMEM))?;
        }
    }
    if intent {
        for i in 0..3 {
            bitmaps.push((RMR_MD_INTENT, i), GFP_KERNEL).map_err(|_| neg(Errno::ENOMEM))?;
        }
    }
    let mut loaded = 0u64;
    for (region, index) in bitmaps.iter().copied() {
        for page in 0..npages {
            let r = store.md_read(region, index, page as u32, &mut buf[..]);
            if r != 0 {
                pr_err!("server pool {}: reading metadata region {} index {} page {} failed ({})\n", pool.name(), region, index, page, r);
                return Err(r);
            }
            if buf.iter().any(|b| *b != 0) {
                let r = pool.inner.lock().core.md_load_page(region, index as usize, page as usize, &buf[..]);
                if let Err(e) = r {
                    pr_err!(
                        "server pool {}: metadata region {} index {} page {} is malformed ({})\n",
                        pool.name(), region, index, page, e.to_errno().name()
                    );
                    return Err(e.to_errno().to_kernel());
                }
                loaded += 1;
            }
        }
    }
    for p in 0..MD_LAST_IO_PAGES {
        let r = store.md_read(RMR_MD_LAST_IO, 0, p as u32, &mut buf[..]);
        if r != 0 {
            pr_err!("server pool {}: reading the last_io record failed ({})\n", pool.name(), r);
            return Err(r);
        }
        if let Err(e) = pool.inner.lock().core.md_load_last_io(p, &buf[..]) {
            return Err(e.to_errno().to_kernel());
        }
    }
    let (dirty, last, suspect, witness) = {
        let mut g = pool.inner.lock();
        g.core.md_load_done();
        let dirty: u64 = g.core.maps.iter().map(|m| m.count()).sum();
        let last = g.core.last_io.iter().filter(|c| **c != u64::MAX).count();
        let suspect = g.core.intent.suspect.as_ref().map_or(0, |m| m.count());
        let witness: u64 = g.core.intent.witness.iter().map(|m| m.count()).sum();
        (dirty, last, suspect, witness)
    };
    pr_info!(
        "server pool {}: loaded dirty maps (slots {:?}, {} pages, {} dirty bits), {} last_io slots, {} suspect chunks ({} witness bits)\n",
        pool.name(), table, loaded, dirty, last, suspect, witness
    );
    // The record's `wi` came back as suspects: written whole before the store serves
    // (md_load_done). Without a chunk size (no client joined yet) nothing was loaded, and
    // the maps cannot be written yet.
    drop(buf);
    if npages == 0 {
        return Ok(());
    }
    md_persist(pool)
}
