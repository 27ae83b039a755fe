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
    /// Whether a write (or discard) is among the parked IOs.
    pub(super) writes: bool,
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
            entries: [SyncEntry { chunk: 0, epoch: 0, used: false, head: NONE, tail: NONE, writes: false }; SYNC_ENTRIES],
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
        *e = SyncEntry { chunk, epoch, used: true, head: NONE, tail: NONE, writes: false };
        self.active += 1;
        Ok(())
    }
    /// Park IO unit `mem_id` on `chunk`'s wait list; `write` if it changes data (a write
    /// or a discard).
    pub fn park(&mut self, chunk: u64, mem_id: u16, write: bool) -> Result<()> {
        let i = self.find(chunk).ok_or(Error::NoEnt)?;
        *self.next.get_mut(usize::from(mem_id)).ok_or(Error::Range)? = NONE;
        let e = self.entries.get_mut(i).ok_or(Error::NoEnt)?;
        e.writes |= write;
        let old_tail = e.tail;
        e.tail = mem_id;
        if old_tail == NONE {
            e.head = mem_id;
        } else if let Some(n) = self.next.get_mut(usize::from(old_tail)) {
            *n = mem_id;
        }
        Ok(())
    }
    /// Whether a write waits for the sync of `chunk`.
    pub fn writes_parked(&self, chunk: u64) -> bool {
        self.find(chunk).and_then(|i| self.entries.get(i)).is_some_and(|e| e.writes)
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

/// Progress of the current or last sync run, as `sync_progress` shows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncProgress {
    /// Own-map chunks cleared by syncs since the run started: the sync thread's requests
    /// and the on-demand syncs of IO that met a dirty chunk while the run went on.
    pub done: u64,
    /// `done` plus the chunks still dirty in the own map: the chunks the run had to sync
    /// (own map count at start plus chunks dirtied since). Frozen when the run ends.
    pub total: u64,
    /// Milliseconds since the run started, frozen when it ends.
    pub elapsed_ms: u64,
}

/// The sync thread's scheduler (§7): walks the own map, at most `cap` requests in flight.
/// It also counts the progress of the run (`sync_progress`); times are the caller's clock
/// in milliseconds.
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
    /// A run was ever started.
    pub(super) ran: bool,
    /// Own chunks cleared during the run.
    pub(super) synced: u64,
    /// `synced` plus the own map count when the run ended.
    pub(super) total_at_end: u64,
    pub(super) started_ms: u64,
    pub(super) ended_ms: u64,
    /// `sync stop` by the admin (the pool's `normal_entries` then): no automatic start until
    /// the pool enters NORMAL again, or `sync start`.
    pub(super) admin_stop_at: Option<u64>,
}

/// Least time between the end of a run and an automatic start (a run that ended with chunks
/// left, e.g. no peer could provide one, is retried at this pace, not in a loop).
pub const SYNC_AUTO_RETRY_MS: u64 = 5000;

/// Why [`SyncSched::auto_start`] did not start a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AutoSync {
    /// Started: the caller pumps the thread and logs it.
    Started,
    /// Nothing to do: a run is going on, or the own map is clean.
    Idle,
    /// Not now: the pool is not NORMAL and serving, or has no sync pool attached.
    NotReady,
    /// The admin stopped the sync during this NORMAL period.
    AdminStopped,
    /// The last run ended less than [`SYNC_AUTO_RETRY_MS`] ago.
    Backoff,
}

impl SyncSched {
    /// `sync start` at time `now_ms`: -EPERM unless NORMAL, -ENOENT without a sync pool,
    /// -EBUSY if running. Resets the progress counters.
    pub fn start<S: MapStorage + Default>(
        &mut self,
        pool: &ServerPool<S>,
        sync_queue_depth: u16,
        have_sync_pool: bool,
        now_ms: u64,
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
        *self = SyncSched {
            running: true,
            in_flight: 0,
            cap: u32::from(cap),
            cursor: 0,
            failed: false,
            ran: true,
            synced: 0,
            total_at_end: 0,
            started_ms: now_ms,
            ended_ms: now_ms,
            admin_stop_at: None,
        };
        Ok(())
    }
    /// Stops the run (the pool left NORMAL, a request failed, the pool goes away): no new
    /// requests; the thread ends when in-flight ones drain.
    pub fn stop(&mut self) {
        self.failed = true;
    }
    /// `sync stop` written by the admin: [`Self::stop`], and no automatic start until the
    /// pool next enters NORMAL (or the admin writes `start`). Written while the pool is not
    /// NORMAL, it therefore holds nothing back beyond the current run.
    pub fn stop_by_admin<S: MapStorage + Default>(&mut self, pool: &ServerPool<S>) {
        self.stop();
        self.admin_stop_at = Some(pool.normal_entries);
    }
    /// SPEC §11 [improvement], called by the shell's periodic tick and when the pool enters
    /// NORMAL: a pool that is NORMAL and serving, with an attached sync pool and a non-empty
    /// own map, starts its sync thread by itself, unless a run is going on, the admin
    /// stopped the sync since the pool last entered NORMAL, or the last run ended less than
    /// [`SYNC_AUTO_RETRY_MS`] ago.
    pub fn auto_start<S: MapStorage + Default>(
        &mut self,
        pool: &ServerPool<S>,
        sync_queue_depth: u16,
        have_sync_pool: bool,
        now_ms: u64,
    ) -> AutoSync {
        if self.running {
            return AutoSync::Idle;
        }
        if !pool.serving() || !have_sync_pool {
            return AutoSync::NotReady;
        }
        if pool.maps.get(pool.member_id).is_none_or(|m| m.is_empty()) {
            return AutoSync::Idle;
        }
        if self.admin_stop_at == Some(pool.normal_entries) {
            return AutoSync::AdminStopped;
        }
        if self.ran && now_ms < self.ended_ms.saturating_add(SYNC_AUTO_RETRY_MS) {
            return AutoSync::Backoff;
        }
        match self.start(pool, sync_queue_depth, have_sync_pool, now_ms) {
            Ok(()) => AutoSync::Started,
            Err(_) => AutoSync::NotReady,
        }
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
    /// A sync-thread request finished at `now_ms`; `ok`: it cleared its chunk in the own
    /// map. Returns true when the thread has ended (`stopped`).
    pub fn done<S: MapStorage + Default>(&mut self, pool: &ServerPool<S>, ok: bool, now_ms: u64) -> bool {
        self.in_flight = self.in_flight.saturating_sub(1);
        if ok && self.running {
            self.synced = self.synced.saturating_add(1);
        }
        if !ok || pool.state != SrvState::Normal {
            self.failed = true;
        }
        self.check_end(pool, now_ms)
    }
    /// An on-demand sync (IO that met a dirty chunk) finished; `cleared`: it cleared its
    /// chunk in the own map. Counted as progress while a run goes on.
    pub fn on_demand_done(&mut self, cleared: bool) {
        if cleared && self.running {
            self.synced = self.synced.saturating_add(1);
        }
    }
    /// Whether the thread has ended (map walked and clean, or failed and drained). The end
    /// is stamped `now_ms`, which freezes the progress.
    pub fn check_end<S: MapStorage + Default>(&mut self, pool: &ServerPool<S>, now_ms: u64) -> bool {
        if !self.running {
            return true;
        }
        let own = pool.maps.get(pool.member_id);
        let own_clean = own.is_none_or(|m| m.is_empty());
        let walked = own.is_none_or(|m| m.next_dirty(self.cursor).is_none());
        if self.in_flight == 0 && (self.failed || own_clean || pool.state != SrvState::Normal) {
            self.running = false;
            self.ended_ms = now_ms;
            self.total_at_end = self.synced.saturating_add(own.map_or(0, |m| m.count()));
        } else if self.in_flight == 0 && walked {
            // Rescan: bits may have been set behind the cursor.
            self.cursor = 0;
        }
        !self.running
    }
    /// Progress of the current run at `now_ms`, or of the last one (frozen at its end);
    /// all zero before the first run.
    pub fn progress<S: MapStorage + Default>(&self, pool: &ServerPool<S>, now_ms: u64) -> SyncProgress {
        if !self.ran {
            return SyncProgress::default();
        }
        if self.running {
            let left = pool.maps.get(pool.member_id).map_or(0, |m| m.count());
            SyncProgress {
                done: self.synced,
                total: self.synced.saturating_add(left),
                elapsed_ms: now_ms.saturating_sub(self.started_ms),
            }
        } else {
            SyncProgress {
                done: self.synced,
                total: self.total_at_end,
                elapsed_ms: self.ended_ms.saturating_sub(self.started_ms),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::normal_pool;
    use super::*;

    fn prog(done: u64, total: u64, elapsed_ms: u64) -> SyncProgress {
        SyncProgress { done, total, elapsed_ms }
    }

    /// Runs one sync-thread request to completion at `now`: the chunk the scheduler hands
    /// out is "read" and cleared through the pool's `finish_sync`.
    fn one<S: MapStorage + Default>(s: &mut SyncSched, p: &mut ServerPool<S>, now: u64) -> (u64, bool) {
        let c = s.next(p).expect("a chunk to sync");
        let mut w = [0u16; 4];
        let d = p.finish_sync(c, 0, &mut w);
        (c, s.done(p, d.cleared, now))
    }

    #[test]
    fn progress_counts_a_run_and_freezes_at_its_end() {
        let mut p = normal_pool();
        let mut s = SyncSched::default();
        assert_eq!(s.progress(&p, 5000), prog(0, 0, 0), "no run yet");
        for c in [1u64, 2, 3, 4, 5] {
            p.maps.get_mut(42).unwrap().set(c, 0).unwrap();
        }
        s.start(&p, 1, true, 1000).unwrap();
        assert_eq!(s.progress(&p, 1000), prog(0, 5, 0));
        assert_eq!(one(&mut s, &mut p, 1200), (1, false));
        assert_eq!(s.progress(&p, 1500), prog(1, 5, 500));
        // IO meeting dirty chunk 3 syncs it on demand: progress too.
        let mut w = [0u16; 4];
        p.sync.start(3, p.epoch).unwrap();
        let d = p.finish_sync(3, 0, &mut w);
        assert!(d.cleared);
        s.on_demand_done(d.cleared);
        assert_eq!(s.progress(&p, 1600), prog(2, 5, 600));
        // A write that failed on a peer meanwhile dirties a new chunk: the total grows.
        p.maps.get_mut(42).unwrap().set(9, 0).unwrap();
        assert_eq!(s.progress(&p, 1700), prog(2, 6, 700));
        assert_eq!(one(&mut s, &mut p, 1800), (2, false));
        assert_eq!(one(&mut s, &mut p, 1900), (4, false));
        assert_eq!(one(&mut s, &mut p, 2000), (5, false));
        assert_eq!(one(&mut s, &mut p, 2100), (9, true), "own map clean: the run ends");
        assert!(!s.running);
        assert_eq!(s.progress(&p, 2100), prog(6, 6, 1100));
        // Frozen: later reads, dirt and on-demand syncs after the end change nothing.
        p.maps.get_mut(42).unwrap().set(11, 0).unwrap();
        s.on_demand_done(true);
        assert_eq!(s.progress(&p, 90_000), prog(6, 6, 1100));
        // A new run starts from zero.
        s.start(&p, 4, true, 100_000).unwrap();
        assert_eq!(s.progress(&p, 100_250), prog(0, 1, 250));
    }

    #[test]
    fn progress_of_a_stopped_or_failed_run() {
        let mut p = normal_pool();
        let mut s = SyncSched::default();
        for c in 0u64..4 {
            p.maps.get_mut(42).unwrap().set(c, 0).unwrap();
        }
        assert_eq!(s.start(&p, 2, false, 0), Err(Error::NoEnt));
        assert_eq!(s.progress(&p, 10), prog(0, 0, 0), "a refused start is no run");
        s.start(&p, 2, true, 10).unwrap();
        assert_eq!(s.start(&p, 2, true, 20), Err(Error::Busy));
        let (a, b) = (s.next(&mut p).unwrap(), s.next(&mut p).unwrap());
        assert_eq!((a, b), (0, 1));
        assert_eq!(s.next(&mut p), None, "cap 2 reached");
        let mut w = [0u16; 4];
        let d = p.finish_sync(a, 0, &mut w);
        assert!(!s.done(&p, d.cleared, 30));
        s.stop();
        // The second request in flight drains; the run ends with 2 of 4 done.
        let d = p.finish_sync(b, 0, &mut w);
        assert!(s.done(&p, d.cleared, 40));
        assert_eq!(s.progress(&p, 1000), prog(2, 4, 30));
        // A failed read ends the next run without counting.
        s.start(&p, 1, true, 2000).unwrap();
        let c = s.next(&mut p).unwrap();
        let d = p.finish_sync(c, Error::Io.errno(), &mut w);
        assert!(!d.cleared);
        assert!(s.done(&p, d.cleared, 2500));
        assert_eq!(s.progress(&p, 3000), prog(0, 2, 500));
    }

    #[test]
    fn auto_start_when_normal_with_a_dirty_own_map() {
        let mut p = normal_pool();
        let mut s = SyncSched::default();
        assert_eq!(s.auto_start(&p, 4, true, 0), AutoSync::Idle, "own map clean");
        p.maps.get_mut(42).unwrap().set(7, 0).unwrap();
        assert_eq!(s.auto_start(&p, 4, false, 0), AutoSync::NotReady, "no sync pool");
        p.io_allowed = false;
        assert_eq!(s.auto_start(&p, 4, true, 0), AutoSync::NotReady, "store not serving");
        p.io_allowed = true;
        assert_eq!(s.auto_start(&p, 4, true, 100), AutoSync::Started);
        assert!(s.running);
        assert_eq!(s.auto_start(&p, 4, true, 200), AutoSync::Idle, "already running");
        // A run that ends with the chunk still dirty (the read failed) is retried, at the
        // backoff's pace.
        let c = s.next(&mut p).unwrap();
        let mut w = [0u16; 4];
        let d = p.finish_sync(c, Error::Io.errno(), &mut w);
        assert!(s.done(&p, d.cleared, 1000));
        assert_eq!(s.auto_start(&p, 4, true, 1000 + SYNC_AUTO_RETRY_MS - 1), AutoSync::Backoff);
        assert_eq!(s.auto_start(&p, 4, true, 1000 + SYNC_AUTO_RETRY_MS), AutoSync::Started);
    }

    #[test]
    fn admin_stop_holds_until_normal_is_entered_again() {
        let mut p = normal_pool();
        let mut s = SyncSched::default();
        p.maps.get_mut(42).unwrap().set(3, 0).unwrap();
        assert_eq!(s.auto_start(&p, 4, true, 0), AutoSync::Started);
        s.stop_by_admin(&p);
        assert!(s.check_end(&p, 10), "nothing in flight: the run ends");
        assert_eq!(s.auto_start(&p, 4, true, 60_000), AutoSync::AdminStopped);
        // A fault stop (not the admin's) does not hold the automatic start back.
        s.start(&p, 4, true, 60_000).unwrap();
        s.stop();
        assert!(s.check_end(&p, 60_010));
        assert_eq!(s.auto_start(&p, 4, true, 70_000), AutoSync::Started, "admin start cleared the hold");
        s.stop_by_admin(&p);
        assert!(s.check_end(&p, 70_010));
        // The pool leaves NORMAL and comes back: the hold is over.
        let mut fx = SrvEffects::default();
        p.set_state(SrvState::NoIo, &mut fx);
        assert_eq!(s.auto_start(&p, 4, true, 80_000), AutoSync::NotReady, "not normal");
        p.set_state(SrvState::Normal, &mut fx);
        assert_eq!(s.auto_start(&p, 4, true, 80_000), AutoSync::Started);
        // A stop written while the pool is not NORMAL holds nothing past the next entry.
        s.stop_by_admin(&p);
        assert!(s.check_end(&p, 80_010));
        p.set_state(SrvState::NoIo, &mut fx);
        s.stop_by_admin(&p);
        p.set_state(SrvState::Normal, &mut fx);
        assert_eq!(s.auto_start(&p, 4, true, 90_000), AutoSync::Started);
    }
}
