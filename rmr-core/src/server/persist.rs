// SPDX-License-Identifier: GPL-2.0-or-later
//! [improvement] What a server pool persists through its store, and when (SPEC §3.3, §9.4).
//!
//! Persisted: the dirty map of every member with a map (one on-disk slot each, the slot table
//! in the superblock) and the `last_io` record. Both are written by one writer per pool, in
//! rounds, through [`ServerPool::md_begin`], [`ServerPool::md_next_page`],
//! [`ServerPool::md_last_io_page`] and [`ServerPool::md_end`]:
//!
//! 1. the superblock with `pool_md` and the slot table ([`MdPlan::table`]), when it changed;
//! 2. every map page changed since the last round (set or cleared bits);
//! 3. the `last_io` record, when it changed;
//! 4. a flush when map pages or the table were written.
//!
//! Ordering (what must be durable before what):
//! - A newly set bit before the reply or the write that depends on it: a command's reply is
//!   sent after a round that covers it, and a client write is submitted only after one
//!   ([`ServerPool::md_need`] gives the sequence to wait for). Cleared bits are persisted by
//!   the next round (at the latest the map-clear tick): a cleared bit that comes back after a
//!   crash only costs a sync.
//! - `last_io[mem_id]` is recorded when a client write is submitted, before it (the record
//!   goes to disk first), not when it completes: a kernel crash after the data reached the
//!   disk but before an acknowledgement must still find the chunk in the record (SPEC §10.6).
//!   A slot then may name a write that failed or never completed; reconciliation only marks
//!   more chunks dirty for it.
//! - A member's slot in the table is written before its pages: a crash in between leaves the
//!   slot's older pages attributed to the new member (extra dirty bits, never fewer). A slot
//!   whose member has no map any more is freed in the table.

use super::*;
use super::super::ondisk::{decode_last_io, encode_last_io, LAST_IO_SLOT_BYTES};

/// Bytes of one persisted page (a map page, or a page of the `last_io` record).
pub const MD_PAGE_BYTES: usize = 4096;
/// Pages of the persisted `last_io` record (slots in the store format's `rmr_id_t` form,
/// `ondisk::encode_last_io`: a = 1 when used, b = chunk).
pub const MD_LAST_IO_PAGES: usize = RMR_MAX_QUEUE_DEPTH * LAST_IO_SLOT_BYTES / MD_PAGE_BYTES;
const SLOTS_PER_PAGE: usize = MD_PAGE_BYTES / LAST_IO_SLOT_BYTES;

/// Persistence bookkeeping of a server pool.
pub struct MdLog {
    /// Incremented whenever something that must be durable before a reply or a write changed.
    pub seq: u64,
    /// The `seq` the last successful round covered.
    pub durable: u64,
    /// On-disk slot table: member whose map slot `i` holds (0 = free), as last written.
    pub slots: [u32; RMR_POOL_MAX_SESS],
    /// The `last_io` record: chunk of the last client write submitted per `mem_id`.
    pub last_io: [u64; RMR_MAX_QUEUE_DEPTH],
    /// Record pages changed since the last round (bit per page).
    last_io_touched: u8,
    /// A record slot changed since the last [`ServerPool::md_need`].
    last_io_fresh: bool,
    /// Rounds and pages written (statistics).
    pub rounds: u64,
    /// Map pages written.
    pub pages: u64,
    /// Record pages written.
    pub last_io_pages: u64,
}

impl MdLog {
    /// Nothing persisted, nothing pending.
    pub const fn new() -> Self {
        MdLog {
            seq: 0,
            durable: 0,
            slots: [0; RMR_POOL_MAX_SESS],
            last_io: [u64::MAX; RMR_MAX_QUEUE_DEPTH],
            last_io_touched: 0,
            last_io_fresh: false,
            rounds: 0,
            pages: 0,
            last_io_pages: 0,
        }
    }
}

impl Default for MdLog {
    fn default() -> Self {
        Self::new()
    }
}

/// One round of the writer ([`ServerPool::md_begin`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MdPlan {
    /// The sequence this round makes durable.
    pub seq: u64,
    /// The slot table changed: write the superblock (with this table) before any page.
    pub table: Option<[u32; RMR_POOL_MAX_SESS]>,
    /// Record pages to write (bit per page).
    pub last_io: u8,
    /// The table before this round (restored if the round fails).
    pub prev: [u32; RMR_POOL_MAX_SESS],
}

/// A map page to write: on-disk slot, page index; its bytes are in the caller's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MdPage {
    /// On-disk map slot.
    pub slot: usize,
    /// Page index inside the slot.
    pub page: usize,
}

impl<S: MapStorage + Default> ServerPool<S> {
    /// Record a client write about to be submitted in the `last_io` record.
    pub(super) fn record_last_io(&mut self, mem_id: u16, chunk: u64) {
        if self.bug_no_last_io_record {
            return;
        }
        let i = usize::from(mem_id);
        if let Some(s) = self.mdlog.last_io.get_mut(i) {
            if *s != chunk {
                *s = chunk;
                self.mdlog.last_io_touched |= 1 << (i / SLOTS_PER_PAGE);
                self.mdlog.last_io_fresh = true;
            }
        }
    }

    /// Empty the `last_io` record (lazily persisted: a stale record only marks more dirty).
    pub(super) fn clear_last_io_record(&mut self) {
        if self.mdlog.last_io.iter().any(|c| *c != u64::MAX) {
            self.mdlog.last_io = [u64::MAX; RMR_MAX_QUEUE_DEPTH];
            self.mdlog.last_io_touched = (1 << MD_LAST_IO_PAGES) - 1;
        }
    }

    /// The sequence a reply or write must wait for (a round covering it), if anything it may
    /// depend on is not durable yet. Call after the core call that may have set bits.
    pub fn md_need(&mut self) -> Option<u64> {
        let mut fresh = core::mem::take(&mut self.mdlog.last_io_fresh);
        for m in self.maps.iter_mut() {
            fresh |= m.take_fresh();
        }
        let members = self.maps.members();
        if members.iter().any(|m| !self.mdlog.slots.contains(&m)) {
            fresh = true;
        }
        if fresh {
            self.mdlog.seq = self.mdlog.seq.wrapping_add(1);
        }
        (self.mdlog.seq != self.mdlog.durable).then_some(self.mdlog.seq)
    }

    /// Whether a round has anything to write (also lazily persisted clears).
    pub fn md_dirty(&mut self) -> bool {
        self.md_need().is_some()
            || self.mdlog.last_io_touched != 0
            || self.maps.iter().any(|m| m.has_touched())
            || self.slot_table() != self.mdlog.slots
    }

    /// The slot table the current maps need: members keep their slot, a slot whose member has
    /// no map is freed, a new member takes the first free slot.
    fn slot_table(&self) -> [u32; RMR_POOL_MAX_SESS] {
        let mut t = self.mdlog.slots;
        for s in t.iter_mut() {
            if *s != 0 && self.maps.get(*s).is_none() {
                *s = 0;
            }
        }
        for m in self.maps.members().iter() {
            if !t.contains(&m) {
                if let Some(free) = t.iter_mut().find(|s| **s == 0) {
                    *free = m;
                }
            }
        }
        t
    }

    /// Start a round (under the pool lock): what to write first. Maps of members that get a
    /// new slot are written whole.
    pub fn md_begin(&mut self) -> MdPlan {
        let _ = self.md_need();
        let t = self.slot_table();
        let prev = self.mdlog.slots;
        let table = (t != prev).then_some(t);
        if table.is_some() {
            for m in self.maps.iter_mut() {
                let id = m.member_id();
                if !self.mdlog.slots.contains(&id) {
                    m.touch_all();
                }
            }
            self.mdlog.slots = t;
        }
        let last_io = core::mem::take(&mut self.mdlog.last_io_touched);
        MdPlan { seq: self.mdlog.seq, table, last_io, prev }
    }

    /// The next changed map page of this round, copied into `out` (`MD_PAGE_BYTES`) under the
    /// pool lock; `None` when all are handed out.
    pub fn md_next_page(&mut self, out: &mut [u8]) -> Option<MdPage> {
        let slots = self.mdlog.slots;
        for m in self.maps.iter_mut() {
            let Some(slot) = slots.iter().position(|s| *s == m.member_id()) else {
                continue;
            };
            while let Some(page) = m.next_touched() {
                if m.page_bytes(page, out).is_ok() {
                    self.mdlog.pages += 1;
                    return Some(MdPage { slot, page });
                }
            }
        }
        None
    }

    /// Record page `page` of this round, encoded into `out` (`MD_PAGE_BYTES`).
    pub fn md_last_io_page(&mut self, page: usize, out: &mut [u8]) {
        out.fill(0);
        let first = page * SLOTS_PER_PAGE;
        for (i, o) in out.chunks_exact_mut(LAST_IO_SLOT_BYTES).enumerate() {
            let c = self.mdlog.last_io.get(first + i).copied().unwrap_or(u64::MAX);
            if let (true, Ok(slot)) = (c != u64::MAX, <&mut [u8; LAST_IO_SLOT_BYTES]>::try_from(o)) {
                encode_last_io(1, c, slot);
            }
        }
        self.mdlog.last_io_pages += 1;
    }

    /// End a round: on success `plan.seq` is durable; on failure everything is written again
    /// by the next round (and the caller fails what waited).
    pub fn md_end(&mut self, plan: &MdPlan, ok: bool) {
        self.mdlog.rounds += 1;
        if ok {
            if map_ver_seq_newer(plan.seq, self.mdlog.durable) {
                self.mdlog.durable = plan.seq;
            }
        } else {
            for m in self.maps.iter_mut() {
                m.touch_all();
            }
            self.mdlog.last_io_touched = (1 << MD_LAST_IO_PAGES) - 1;
            if plan.table.is_some() {
                // The table may not have reached the disk: the next round writes it again.
                self.mdlog.slots = plan.prev;
            }
        }
    }

    /// Loading a store's metadata (`add_store mode=add`), after [`Self::register`]: install
    /// the on-disk slot table. Slots of members not in `pool_md` are dropped.
    pub fn md_load_table(&mut self, table: [u32; RMR_POOL_MAX_SESS]) {
        let members = self.md.members();
        let mut t = [0u32; RMR_POOL_MAX_SESS];
        for (d, s) in t.iter_mut().zip(table.iter()) {
            if *s != 0 && members.iter().any(|m| m == *s) {
                *d = *s;
            }
        }
        self.mdlog.slots = t;
    }

    /// Loading: OR on-disk page `page` of map slot `slot` into its member's map.
    pub fn md_load_page(&mut self, slot: usize, page: usize, data: &[u8]) -> Result<()> {
        let member = self.mdlog.slots.get(slot).copied().unwrap_or(0);
        if member == 0 || data.iter().all(|b| *b == 0) {
            return Ok(());
        }
        let total = self.total_chunks();
        let m = self.maps.ensure(member, total)?;
        if page >= m.npages() {
            return Err(Error::Range);
        }
        m.apply_piece(page, data)
    }

    /// Loading: on-disk `last_io` record page `page`; becomes `last_io` and the record.
    pub fn md_load_last_io(&mut self, page: usize, data: &[u8]) -> Result<()> {
        let total = self.total_chunks();
        let first = page * SLOTS_PER_PAGE;
        for (i, s) in data.chunks_exact(LAST_IO_SLOT_BYTES).enumerate() {
            let slot = <&[u8; LAST_IO_SLOT_BYTES]>::try_from(s).map_err(|_| Error::Inval)?;
            let (a, c) = decode_last_io(slot);
            let v = if a == 1 && c < total { c } else { u64::MAX };
            if let (Some(d), Some(l)) = (self.mdlog.last_io.get_mut(first + i), self.last_io.get_mut(first + i)) {
                *d = v;
                *l = v;
            }
        }
        Ok(())
    }

    /// Loading done: what was loaded equals the disk.
    pub fn md_load_done(&mut self) {
        for m in self.maps.iter_mut() {
            if self.mdlog.slots.contains(&m.member_id()) {
                m.mark_saved();
            } else {
                let _ = m.take_fresh();
            }
        }
        self.mdlog.last_io_touched = 0;
        self.mdlog.last_io_fresh = false;
        self.mdlog.durable = self.mdlog.seq;
    }
}

/// `a` is a later round sequence than `b` (wrapping).
fn map_ver_seq_newer(a: u64, b: u64) -> bool {
    a.wrapping_sub(b) as i64 > 0
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec;
    use std::vec::Vec;
    use super::super::tests::normal_pool;
    use super::*;
    use crate::dirtymap::vecstore::VecStorage;

    /// A simulated metadata area: map pages by (slot, page), the slot table, the record pages.
    struct Area {
        disk: std::collections::BTreeMap<(usize, usize), Vec<u8>>,
        table: [u32; 4],
        rec: Vec<Vec<u8>>,
    }

    impl Area {
        fn new() -> Self {
            Area { disk: Default::default(), table: [0; 4], rec: vec![vec![0u8; MD_PAGE_BYTES]; MD_LAST_IO_PAGES] }
        }

        /// Runs one writer round into the area; returns the plan.
        fn round(&mut self, p: &mut ServerPool<VecStorage>) -> MdPlan {
            let plan = p.md_begin();
            if let Some(t) = plan.table {
                self.table = t;
            }
            let mut buf = vec![0u8; MD_PAGE_BYTES];
            while let Some(pg) = p.md_next_page(&mut buf) {
                self.disk.insert((pg.slot, pg.page), buf.clone());
            }
            for (i, r) in self.rec.iter_mut().enumerate() {
                if plan.last_io & (1 << i) != 0 {
                    p.md_last_io_page(i, &mut buf);
                    r.clone_from(&buf);
                }
            }
            p.md_end(&plan, true);
            plan
        }
    }

    #[test]
    fn sets_must_be_durable_clears_are_lazy() {
        let mut p = normal_pool();
        let mut a = Area::new();
        // The own map exists: its slot is new.
        assert!(p.md_need().is_some());
        let plan = a.round(&mut p);
        assert_eq!(plan.table, Some([42, 0, 0, 0]));
        assert_eq!(p.md_need(), None);
        p.maps.ensure(43, p.total_chunks()).unwrap().set(9, 0).unwrap();
        let need = p.md_need().expect("a set bit must be persisted");
        a.round(&mut p);
        assert!(p.mdlog.durable >= need && p.md_need().is_none());
        assert_eq!(a.table, [42, 43, 0, 0]);
        assert_eq!(a.disk.get(&(1, 0)).unwrap()[1], 2, "chunk 9 = bit 1 of byte 1");
        // A clear needs no wait but is written by the next round.
        p.maps.get_mut(43).unwrap().clear(9);
        assert_eq!(p.md_need(), None);
        assert!(p.md_dirty());
        a.round(&mut p);
        assert!(a.disk.get(&(1, 0)).unwrap().iter().all(|b| *b == 0));
        assert!(!p.md_dirty());
    }

    #[test]
    fn last_io_is_recorded_at_submit_and_loads_back() {
        let mut p = normal_pool();
        let mut a = Area::new();
        a.round(&mut p);
        p.record_last_io(300, 7);
        assert!(p.md_need().is_some());
        a.round(&mut p);
        // The same write again needs nothing.
        p.record_last_io(300, 7);
        assert_eq!(p.md_need(), None);
        let mut q = normal_pool();
        q.md_load_table(a.table);
        for (i, r) in a.rec.iter().enumerate() {
            q.md_load_last_io(i, r).unwrap();
        }
        q.md_load_done();
        assert_eq!(q.last_io[300], 7);
        assert_eq!(q.mdlog.last_io[300], 7);
        assert!(q.last_io.iter().enumerate().all(|(i, c)| i == 300 || *c == u64::MAX));
    }

    /// A discard (or write-zeroes) is a write without data: a member that misses it is marked
    /// dirty like for a write, the chunk enters the last_io record, and both are made durable
    /// before it is submitted.
    #[test]
    fn a_discard_marks_missed_members_like_a_write() {
        use crate::wire::{IoMsg, MemberList, RmrId, IO_DISCARD, IO_WRITE};
        let mut p = normal_pool();
        p.intent.volatile_cache = false;
        let mut a = Area::new();
        a.round(&mut p);
        let mut members = MemberList::new();
        members.push(43).unwrap();
        let d = IoMsg {
            id: RmrId::chunk(5),
            mem_id: 3,
            flags: IO_WRITE | IO_DISCARD,
            offset: 0,
            len: 8192,
            map_ver: 0,
            members,
        };
        assert_eq!(p.on_io(&d, 0), IoDecision::Submit);
        assert!(p.maps.get(43).is_some_and(|m| m.test(5)), "B missed the discard");
        assert_eq!(p.mdlog.last_io[3], 5);
        assert!(p.md_need().is_some(), "durable before the discard is submitted");
    }

    #[test]
    fn a_failed_round_writes_everything_again() {
        let mut p = normal_pool();
        let mut a = Area::new();
        a.round(&mut p);
        p.maps.get_mut(42).unwrap().set(3, 0).unwrap();
        let need = p.md_need().unwrap();
        let plan = p.md_begin();
        let mut buf = vec![0u8; MD_PAGE_BYTES];
        while p.md_next_page(&mut buf).is_some() {}
        p.md_end(&plan, false);
        assert!(p.mdlog.durable < need);
        assert!(p.md_dirty());
        a.round(&mut p);
        assert!(p.mdlog.durable >= need);
        assert_eq!(a.disk.get(&(0, 0)).unwrap()[0], 8);
    }

    #[test]
    fn maps_load_into_their_members() {
        let mut p = normal_pool();
        let mut a = Area::new();
        p.md.add_member(43).unwrap();
        p.maps.ensure(43, p.total_chunks()).unwrap().set(5, 0).unwrap();
        p.maps.get_mut(42).unwrap().set(6, 0).unwrap();
        a.round(&mut p);
        let mut q = normal_pool();
        q.md = p.md;
        q.md_load_table(a.table);
        for ((slot, page), data) in a.disk.iter() {
            q.md_load_page(*slot, *page, data).unwrap();
        }
        q.md_load_done();
        assert!(q.maps.get(43).unwrap().test(5) && q.maps.get(42).unwrap().test(6));
        assert_eq!(q.maps.get(43).unwrap().count() + q.maps.get(42).unwrap().count(), 2);
        assert!(!q.md_dirty(), "a loaded pool has nothing to write");
    }
}
