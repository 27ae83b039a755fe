// SPDX-License-Identifier: GPL-2.0-or-later
//! The sync table (chunks being synced, IOs parked behind them) and the sync thread's
//! scheduler (SPEC §7).

use super::*;

const NONE: u16 = u16::MAX;

/// Sync entries: sync thread requests plus on-demand syncs, each bounded by the queue depth.
pub const SYNC_ENTRIES: usize = 2 * RMR_MAX_QUEUE_DEPTH;

#[derive(Clone, Copy, Debug)]
pub(super) struct SyncEntry {
    pub(super) chunk: u64,
    pub(super) epoch: u64,
    pub(super) used: bool,
    pub(super) head: u16,
    pub(super) tail: u16,
}

/// Chunks being synced (`rmr_map_entry`) with FIFO wait lists of parked IO units (`mem_id`).
pub struct SyncTable {
    pub(super) entries: [SyncEntry; SYNC_ENTRIES],
    pub(super) next: [u16; RMR_MAX_QUEUE_DEPTH],
    pub(super) active: usize,
}

impl Default for SyncTable {
    fn default() -> Self {
        Self::new()
    }
}

impl SyncTable {
    /// Empty table.
    pub const fn new() -> Self {
        SyncTable {
            entries: [SyncEntry { chunk: 0, epoch: 0, used: false, head: NONE, tail: NONE }; SYNC_ENTRIES],
            next: [NONE; RMR_MAX_QUEUE_DEPTH],
            active: 0,
        }
    }
    pub(super) fn find(&self, chunk: u64) -> Option<usize> {
        if self.active == 0 {
            return None;
        }
        self.entries.iter().position(|e| e.used && e.chunk == chunk)
    }
    /// Whether `chunk` is being synced.
    pub fn syncing(&self, chunk: u64) -> bool {
        self.find(chunk).is_some()
    }
    /// The chunks being synced.
    pub fn chunks(&self) -> impl Iterator<Item = u64> + '_ {
        self.entries.iter().filter(|e| e.used).map(|e| e.chunk)
    }
    /// Number of chunks being synced.
    pub fn active(&self) -> usize {
        self.active
    }
    /// Lock `chunk` for a sync started in NORMAL period `epoch`. -EBUSY if already syncing,
    /// -ENOSPC if full.
    pub fn start(&mut self, chunk: u64, epoch: u64) -> Result<()> {
        if self.syncing(chunk) {
            return Err(Error::Busy);
        }
        let e = self.entries.iter_mut().find(|e| !e.used).ok_or(Error::NoSpc)?;
        *e = SyncEntry { chunk, epoch, used: true, head: NONE, tail: NONE };
        self.active += 1;
        Ok(())
    }
    /// Park IO unit `mem_id` on `chunk`'s wait list.
    pub fn park(&mut self, chunk: u64, mem_id: u16) -> Result<()> {
        let i = self.find(chunk).ok_or(Error::NoEnt)?;
        *self.next.get_mut(usize::from(mem_id)).ok_or(Error::Range)? = NONE;
        let e = self.entries.get_mut(i).ok_or(Error::NoEnt)?;
        let old_tail = e.tail;
        e.tail = mem_id;
        if old_tail == NONE {
            e.head = mem_id;
        } else if let Some(n) = self.next.get_mut(usize::from(old_tail)) {
            *n = mem_id;
        }
        Ok(())
    }
    /// The NORMAL period in which the sync of `chunk` started.
    pub fn epoch_of(&self, chunk: u64) -> Option<u64> {
        self.find(chunk).and_then(|i| self.entries.get(i)).map(|e| e.epoch)
    }
    /// Unlock `chunk`; writes its waiters in order into `out`, returns how many.
    pub fn finish(&mut self, chunk: u64, out: &mut [u16]) -> usize {
        let Some(i) = self.find(chunk) else {
            return 0;
        };
        let mut n = 0;
        if let Some(e) = self.entries.get_mut(i) {
            let mut cur = e.head;
            while cur != NONE {
                if let Some(o) = out.get_mut(n) {
                    *o = cur;
                    n += 1;
                }
                cur = self.next.get(usize::from(cur)).copied().unwrap_or(NONE);
            }
            e.used = false;
        }
        self.active = self.active.saturating_sub(1);
        n
    }
}

/// The sync thread's scheduler (§7): walks the own map, at most `cap` requests in flight.
#[derive(Clone, Copy, Debug, Default)]
pub struct SyncSched {
    /// Thread running.
    pub running: bool,
    /// Requests in flight.
    pub in_flight: u32,
    /// `min(sync_queue_depth, queue_depth)`.
    pub cap: u32,
    pub(super) cursor: u64,
    pub(super) failed: bool,
}

impl SyncSched {
    /// `sync start`: -EPERM unless NORMAL, -EBUSY if running.
    pub fn start<S: MapStorage + Default>(
        &mut self,
        pool: &ServerPool<S>,
        sync_queue_depth: u16,
        have_sync_pool: bool,
    ) -> Result<()> {
        if pool.state != SrvState::Normal {
            return Err(Error::Perm);
        }
        if !have_sync_pool {
            return Err(Error::NoEnt);
        }
        if self.running {
            return Err(Error::Busy);
        }
        let cap = core::cmp::min(sync_queue_depth, pool.md.queue_depth).max(1);
        *self = SyncSched { running: true, in_flight: 0, cap: u32::from(cap), cursor: 0, failed: false };
        Ok(())
    }
    /// `sync stop`: no new requests; the thread ends when in-flight ones drain.
    pub fn stop(&mut self) {
        self.failed = true;
    }
    /// The next chunk to sync (locked in the pool's sync table), or None (wait / done).
    pub fn next<S: MapStorage + Default>(&mut self, pool: &mut ServerPool<S>) -> Option<u64> {
        if !self.running || self.failed || self.in_flight >= self.cap || pool.state != SrvState::Normal {
            return None;
        }
        let own = pool.member_id;
        loop {
            let c = pool.maps.get(own)?.next_dirty(self.cursor)?;
            self.cursor = c + 1;
            if pool.sync.start(c, pool.epoch).is_ok() {
                self.in_flight = self.in_flight.saturating_add(1);
                return Some(c);
            }
        }
    }
    /// A request finished. Returns true when the thread has ended (`stopped`).
    pub fn done<S: MapStorage + Default>(&mut self, pool: &ServerPool<S>, ok: bool) -> bool {
        self.in_flight = self.in_flight.saturating_sub(1);
        if !ok || pool.state != SrvState::Normal {
            self.failed = true;
        }
        self.check_end(pool)
    }
    /// Whether the thread has ended (map walked and clean, or failed and drained).
    pub fn check_end<S: MapStorage + Default>(&mut self, pool: &ServerPool<S>) -> bool {
        if !self.running {
            return true;
        }
        let own_clean = pool.maps.get(pool.member_id).is_none_or(|m| m.is_empty());
        let walked = pool
            .maps
            .get(pool.member_id)
            .is_none_or(|m| m.next_dirty(self.cursor).is_none());
        if self.in_flight == 0 && (self.failed || own_clean || pool.state != SrvState::Normal) {
            self.running = false;
        } else if self.in_flight == 0 && walked {
            // Rescan: bits may have been set behind the cursor.
            self.cursor = 0;
        }
        !self.running
    }
}
