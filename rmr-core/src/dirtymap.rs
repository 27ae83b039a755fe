// SPDX-License-Identifier: GPL-2.0-or-later
//! The dirty map: one bit per chunk in lazily allocated 4 KiB second-level pages (SPEC §3.2).
//!
//! The first level (page index → page) belongs to the caller's [`MapStorage`], so neither level
//! needs a large contiguous allocation: 64 TiB at 128 KiB chunks is 512 Mi chunks = 16384 pages.
//! Set/test/clear are O(1); the dirty count is kept incrementally; iteration skips absent pages
//! and zero words.

use super::consts::RMR_POOL_MAX_SESS;
use super::error::{Error, Result};
use super::wire::{MemberList, PIECE_BYTES};

mod set;
mod text;
pub use set::*;
pub use text::*;

/// Bytes of one second-level page.
pub const PAGE_BYTES: usize = 4096;
/// u64 words of one page.
pub const PAGE_WORDS: usize = PAGE_BYTES / 8;
/// Chunks covered by one page.
pub const PAGE_BITS: u64 = (PAGE_BYTES * 8) as u64;
/// Largest number of chunks one map may cover (2^36 chunks: 8 GiB of bits, 8 PiB at 128 KiB).
pub const MAX_CHUNKS: u64 = 1 << 36;

/// One second-level page.
pub type Page = [u64; PAGE_WORDS];

/// The storage could not provide a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoMem;

/// Caller-provided page storage (first level + pages). Host: `Vec<Option<Box<Page>>>`; kernel:
/// an xarray or a kvmalloc'ed pointer array of zeroed pages.
pub trait MapStorage {
    /// The page at `idx`, if allocated.
    fn page(&self, idx: usize) -> Option<&Page>;
    /// The page at `idx` for writing, if allocated.
    fn page_mut(&mut self, idx: usize) -> Option<&mut Page>;
    /// Allocate a zeroed page at `idx` (or return the existing one).
    fn alloc_page(&mut self, idx: usize) -> core::result::Result<&mut Page, NoMem>;
    /// Free the page at `idx` (no-op if absent). A prepared storage zeroes it instead and
    /// keeps it.
    fn free_page(&mut self, idx: usize);
    /// Pages held allocated from creation on ([`MapSet::add_spare`]): a map of at most this
    /// many pages never allocates when a bit is set. 0 for a storage that allocates on demand.
    fn prepared(&self) -> usize {
        0
    }
}

/// Pages a map remembers as changed since they were last persisted before it falls back to
/// "every page" ([`DirtyMap::next_touched`]).
pub const TOUCH_MAX: usize = 8;

/// A per-member dirty map (`rmr_dirty_id_map`).
///
/// Besides its bits a map remembers what changed since the shell last persisted it: the pages
/// whose bits changed (up to [`TOUCH_MAX`], else every page) and whether a bit was newly set
/// (a set must be durable before the reply or write that depends on it; a clear may be
/// persisted lazily). A new map counts as changed everywhere: the on-disk slot it gets may
/// hold another map's bits.
pub struct DirtyMap<S: MapStorage> {
    member_id: u32,
    total: u64,
    count: u64,
    ts: u64,
    gen: u64,
    storage: S,
    touched: [u32; TOUCH_MAX],
    ntouched: u8,
    /// Every page from `all_next` on is to be persisted.
    touched_all: bool,
    all_next: u32,
    /// A bit was set since [`DirtyMap::take_fresh`] last looked.
    fresh: bool,
}

impl<S: MapStorage> DirtyMap<S> {
    /// A clean map of `total` chunks for `member_id` over empty `storage`.
    pub fn new(member_id: u32, total: u64, storage: S) -> Result<Self> {
        if total > MAX_CHUNKS || member_id == 0 {
            return Err(Error::Range);
        }
        Ok(DirtyMap {
            member_id,
            total,
            count: 0,
            ts: 0,
            gen: 0,
            storage,
            touched: [0; TOUCH_MAX],
            ntouched: 0,
            touched_all: true,
            all_next: 0,
            fresh: false,
        })
    }

    fn touch(&mut self, page: usize) {
        let p = page as u32;
        if self.touched_all && p >= self.all_next {
            return;
        }
        let n = usize::from(self.ntouched);
        if self.touched.get(..n).is_some_and(|t| t.contains(&p)) {
            return;
        }
        match self.touched.get_mut(n) {
            Some(slot) => {
                *slot = p;
                self.ntouched += 1;
            }
            None => self.touch_all(),
        }
    }

    /// Mark every page as changed (a new on-disk slot, or a failed persist to redo).
    pub fn touch_all(&mut self) {
        self.touched_all = true;
        self.all_next = 0;
        self.ntouched = 0;
    }

    /// Whether a page changed since it was last handed out by [`Self::next_touched`].
    pub fn has_touched(&self) -> bool {
        self.touched_all || self.ntouched > 0
    }

    /// The next changed page to persist, forgetting it (the caller copies it under the same
    /// lock). `None` when every change has been handed out.
    pub fn next_touched(&mut self) -> Option<usize> {
        if self.touched_all {
            if (self.all_next as usize) < self.npages() {
                let p = self.all_next;
                self.all_next += 1;
                return Some(p as usize);
            }
            self.touched_all = false;
            self.all_next = 0;
        }
        if self.ntouched == 0 {
            return None;
        }
        self.ntouched -= 1;
        self.touched.get(usize::from(self.ntouched)).map(|p| *p as usize)
    }

    /// Forget every change: the caller knows the persisted copy equals the map (just loaded).
    pub fn mark_saved(&mut self) {
        self.touched_all = false;
        self.all_next = 0;
        self.ntouched = 0;
        self.fresh = false;
    }

    /// Whether a bit was newly set since the last call (and forget it).
    pub fn take_fresh(&mut self) -> bool {
        core::mem::take(&mut self.fresh)
    }
    /// Member this map belongs to.
    pub fn member_id(&self) -> u32 {
        self.member_id
    }
    /// Number of chunks covered.
    pub fn total(&self) -> u64 {
        self.total
    }
    /// Number of dirty chunks.
    pub fn count(&self) -> u64 {
        self.count
    }
    /// No dirty chunk.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
    /// Time (ms) a bit was last set (client maps, §6.8).
    pub fn ts(&self) -> u64 {
        self.ts
    }
    /// Generation: incremented by every `set`/`set_all`/`apply_piece`, so a reader can tell
    /// whether a bit was set since it last looked (server map-clear race, SPEC §11).
    pub fn gen(&self) -> u64 {
        self.gen
    }
    /// Number of second-level pages the map spans.
    pub fn npages(&self) -> usize {
        self.total.div_ceil(PAGE_BITS) as usize
    }
    /// The storage, e.g. for persisting pages.
    pub fn storage(&self) -> &S {
        &self.storage
    }
    /// Clear the map and hand its storage back (for reuse as a spare).
    pub fn into_storage(mut self) -> S {
        self.clear_all();
        self.storage
    }

    fn locate(&self, chunk: u64) -> Result<(usize, usize, u64)> {
        if chunk >= self.total {
            return Err(Error::Range);
        }
        let page = (chunk / PAGE_BITS) as usize;
        let bit = chunk % PAGE_BITS;
        Ok((page, (bit / 64) as usize, 1u64 << (bit % 64)))
    }

    /// Mark `chunk` dirty, stamping `ts = now`. Returns whether it was clean before.
    pub fn set(&mut self, chunk: u64, now: u64) -> Result<bool> {
        let (p, w, m) = self.locate(chunk)?;
        let page = self.storage.alloc_page(p).map_err(|_| Error::NoMem)?;
        let word = page.get_mut(w).ok_or(Error::Range)?;
        let was = *word & m != 0;
        *word |= m;
        if !was {
            self.count += 1;
            self.fresh = true;
            self.touch(p);
        }
        self.ts = now;
        self.gen = self.gen.wrapping_add(1);
        Ok(!was)
    }

    /// Whether `chunk` is dirty (out of range = false).
    pub fn test(&self, chunk: u64) -> bool {
        match self.locate(chunk) {
            Ok((p, w, m)) => self
                .storage
                .page(p)
                .and_then(|pg| pg.get(w))
                .is_some_and(|word| word & m != 0),
            Err(_) => false,
        }
    }

    /// Mark `chunk` clean. Returns whether it was dirty.
    pub fn clear(&mut self, chunk: u64) -> bool {
        let Ok((p, w, m)) = self.locate(chunk) else {
            return false;
        };
        let Some(word) = self.storage.page_mut(p).and_then(|pg| pg.get_mut(w)) else {
            return false;
        };
        let was = *word & m != 0;
        *word &= !m;
        if was {
            self.count -= 1;
            self.touch(p);
        }
        was
    }

    /// Clear every chunk and free every page.
    pub fn clear_all(&mut self) {
        for p in 0..self.npages() {
            self.storage.free_page(p);
        }
        if self.count > 0 {
            self.touch_all();
        }
        self.count = 0;
    }

    /// Mark every chunk dirty (new member, replaced store).
    pub fn set_all(&mut self, now: u64) -> Result<()> {
        let total = self.total;
        for p in 0..self.npages() {
            let page = self.storage.alloc_page(p).map_err(|_| Error::NoMem)?;
            let first = p as u64 * PAGE_BITS;
            let n = core::cmp::min(PAGE_BITS, total - first);
            fill_page(page, n);
        }
        self.count = total;
        self.ts = now;
        self.gen = self.gen.wrapping_add(1);
        self.fresh = true;
        self.touch_all();
        Ok(())
    }

    /// The first dirty chunk `>= from`.
    pub fn next_dirty(&self, from: u64) -> Option<u64> {
        let mut c = from;
        while c < self.total {
            let p = (c / PAGE_BITS) as usize;
            let Some(page) = self.storage.page(p) else {
                c = (p as u64 + 1) * PAGE_BITS;
                continue;
            };
            let mut w = ((c % PAGE_BITS) / 64) as usize;
            let mut word = page.get(w).copied().unwrap_or(0) & (!0u64 << (c % 64));
            loop {
                if word != 0 {
                    let chunk = p as u64 * PAGE_BITS + w as u64 * 64 + u64::from(word.trailing_zeros());
                    return if chunk < self.total { Some(chunk) } else { None };
                }
                w += 1;
                match page.get(w) {
                    Some(v) => word = *v,
                    None => break,
                }
            }
            c = (p as u64 + 1) * PAGE_BITS;
        }
        None
    }

    /// Iterate dirty chunks in ascending order.
    pub fn iter(&self) -> DirtyIter<'_, S> {
        DirtyIter { map: self, next: 0 }
    }

    /// First page index `>= from` holding a dirty bit (a transfer piece).
    pub fn next_piece(&self, from: usize) -> Option<usize> {
        (from..self.npages())
            .find(|p| self.storage.page(*p).is_some_and(|pg| pg.iter().any(|w| *w != 0)))
    }

    /// Serialise page `idx` into `out` (`PIECE_BYTES`, little-endian words).
    pub fn page_bytes(&self, idx: usize, out: &mut [u8]) -> Result<()> {
        if out.len() != PIECE_BYTES || idx >= self.npages() {
            return Err(Error::Inval);
        }
        match self.storage.page(idx) {
            Some(pg) => {
                for (o, w) in out.chunks_exact_mut(8).zip(pg.iter()) {
                    o.copy_from_slice(&w.to_le_bytes());
                }
            }
            None => out.fill(0),
        }
        Ok(())
    }

    /// OR a received piece into page `idx`. Rejects bits beyond `total` (malformed transfer).
    pub fn apply_piece(&mut self, idx: usize, data: &[u8]) -> Result<()> {
        if data.len() != PIECE_BYTES || idx >= self.npages() {
            return Err(Error::Range);
        }
        let first = idx as u64 * PAGE_BITS;
        let valid = core::cmp::min(PAGE_BITS, self.total - first);
        // Validate before touching anything.
        for (i, b) in data.chunks_exact(8).enumerate() {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            let v = u64::from_le_bytes(a);
            let lo = i as u64 * 64;
            if v != 0 && lo + 64 > valid {
                let keep = valid.saturating_sub(lo);
                let mask = if keep >= 64 { !0 } else { (1u64 << keep) - 1 };
                if v & !mask != 0 {
                    return Err(Error::Range);
                }
            }
        }
        if data.iter().all(|b| *b == 0) {
            return Ok(());
        }
        let page = self.storage.alloc_page(idx).map_err(|_| Error::NoMem)?;
        let mut added = 0u64;
        for (w, b) in page.iter_mut().zip(data.chunks_exact(8)) {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            let v = u64::from_le_bytes(a);
            added += u64::from((v & !*w).count_ones());
            *w |= v;
        }
        self.count += added;
        self.gen = self.gen.wrapping_add(1);
        if added > 0 {
            self.fresh = true;
            self.touch(idx);
        }
        Ok(())
    }

    /// Copy every dirty bit of `other` into `self` (same geometry required).
    pub fn merge_from<T: MapStorage>(&mut self, other: &DirtyMap<T>, now: u64) -> Result<()> {
        if other.total != self.total {
            return Err(Error::Inval);
        }
        let mut buf = [0u8; PIECE_BYTES];
        let mut p = 0;
        while let Some(idx) = other.next_piece(p) {
            other.page_bytes(idx, &mut buf)?;
            self.apply_piece(idx, &buf)?;
            p = idx + 1;
        }
        if !other.is_empty() {
            self.ts = now;
        }
        Ok(())
    }

}

fn fill_page(page: &mut Page, n: u64) {
    for (i, w) in page.iter_mut().enumerate() {
        let lo = i as u64 * 64;
        *w = if lo + 64 <= n {
            !0
        } else if lo >= n {
            0
        } else {
            (1u64 << (n - lo)) - 1
        };
    }
}

/// Iterator over the dirty chunks of a map.
pub struct DirtyIter<'a, S: MapStorage> {
    map: &'a DirtyMap<S>,
    next: u64,
}

impl<S: MapStorage> Iterator for DirtyIter<'_, S> {
    type Item = u64;
    fn next(&mut self) -> Option<u64> {
        let c = self.map.next_dirty(self.next)?;
        self.next = c + 1;
        Some(c)
    }
}

/// Host page storage for tests (`Vec<Option<Box<Page>>>`).
#[cfg(test)]
pub(crate) mod vecstore {
    extern crate std;
    use super::{MapStorage, NoMem, Page, PAGE_WORDS};
    use std::boxed::Box;
    use std::vec::Vec;

    /// Test storage.
    #[derive(Default)]
    pub struct VecStorage(pub Vec<Option<Box<Page>>>);

    impl MapStorage for VecStorage {
        fn page(&self, idx: usize) -> Option<&Page> {
            self.0.get(idx).and_then(|p| p.as_deref())
        }
        fn page_mut(&mut self, idx: usize) -> Option<&mut Page> {
            self.0.get_mut(idx).and_then(|p| p.as_deref_mut())
        }
        fn alloc_page(&mut self, idx: usize) -> Result<&mut Page, NoMem> {
            if self.0.len() <= idx {
                self.0.resize_with(idx + 1, || None);
            }
            let slot = self.0.get_mut(idx).ok_or(NoMem)?;
            Ok(slot.get_or_insert_with(|| Box::new([0u64; PAGE_WORDS])))
        }
        fn free_page(&mut self, idx: usize) {
            if let Some(p) = self.0.get_mut(idx) {
                *p = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::vecstore::VecStorage;
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;
    use std::string::String;
    use std::vec::Vec;

    fn map(member: u32, total: u64) -> DirtyMap<VecStorage> {
        DirtyMap::new(member, total, VecStorage::default()).unwrap()
    }

    fn summary(maps: &[&DirtyMap<VecStorage>], size: usize) -> String {
        let mut buf = std::vec![0u8; size];
        let n = render_summary(maps, &mut buf);
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn set_test_clear_count() {
        let mut m = map(42, 800);
        assert!(m.set(5, 10).unwrap());
        assert!(!m.set(5, 11).unwrap());
        assert_eq!(m.ts(), 11);
        assert!(m.test(5) && !m.test(6) && !m.test(10_000));
        assert_eq!(m.set(800, 0), Err(Error::Range));
        assert_eq!(m.count(), 1);
        assert!(m.clear(5));
        assert!(!m.clear(5));
        assert!(m.is_empty());
    }

    #[test]
    fn summary_format() {
        let mut a = map(42, 800);
        let b = map(43, 800);
        for c in [1, 7, 799] {
            a.set(c, 0).unwrap();
        }
        assert_eq!(
            summary(&[&a, &b], 4096),
            "member 43: [] 0/800 dirty\nmember 42: [1 7 799] 3/800 dirty\n"
        );
    }

    #[test]
    fn summary_cut_keeps_counts() {
        let mut a = map(42, 100_000);
        let mut b = map(43, 100_000);
        a.set_all(0).unwrap();
        for c in 0..2000 {
            b.set(c * 3, 0).unwrap();
        }
        let s = summary(&[&a, &b], 4096);
        assert!(s.len() <= 4096);
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("member 43: [0 3 6"));
        assert!(lines[0].ends_with(" ...] 2000/100000 dirty"));
        assert!(lines[1].starts_with("member 42: [") && lines[1].ends_with(" ...] 100000/100000 dirty"));
        // Tiny buffer: lines still complete with exact counts when they fit.
        let s = summary(&[&a, &b], 74);
        assert_eq!(s, "member 43: [ ...] 2000/100000 dirty\nmember 42: [ ...] 100000/100000 dirty\n");
    }

    #[test]
    fn big_device_is_sparse() {
        // 64 TiB / 128 KiB = 512 Mi chunks.
        let total = (64u64 << 40) / (128 << 10);
        let mut m = map(1, total);
        assert_eq!(m.npages(), 16384);
        m.set(total - 1, 0).unwrap();
        m.set(0, 0).unwrap();
        assert_eq!(m.storage().0.iter().filter(|p| p.is_some()).count(), 2);
        assert_eq!(m.iter().collect::<Vec<_>>(), std::vec![0, total - 1]);
    }

    #[test]
    fn set_all_and_pieces() {
        let mut m = map(1, 70_000);
        m.set_all(3).unwrap();
        assert_eq!(m.count(), 70_000);
        assert_eq!(m.iter().count(), 70_000);
        let mut n = map(1, 70_000);
        n.merge_from(&m, 0).unwrap();
        assert_eq!(n.count(), 70_000);
        // A piece with bits past the end is rejected.
        let mut buf = [0xffu8; PIECE_BYTES];
        assert_eq!(n.apply_piece(2, &buf), Err(Error::Range));
        buf.fill(0);
        assert_eq!(n.apply_piece(3, &buf), Err(Error::Range));
    }

    proptest! {
        #[test]
        fn model_equivalence(ops in proptest::collection::vec((0u8..3, 0u64..100_000), 0..300)) {
            let mut m = map(9, 100_000);
            let mut model = BTreeSet::new();
            for (op, c) in ops {
                match op {
                    0 => { prop_assert_eq!(m.set(c, 1).unwrap(), model.insert(c)); }
                    1 => { prop_assert_eq!(m.clear(c), model.remove(&c)); }
                    _ => { prop_assert_eq!(m.test(c), model.contains(&c)); }
                }
            }
            prop_assert_eq!(m.count(), model.len() as u64);
            prop_assert_eq!(m.iter().collect::<Vec<_>>(), model.iter().copied().collect::<Vec<_>>());
            // Transfer round trip through pieces.
            let mut r = map(9, 100_000);
            let mut p = 0;
            let mut buf = [0u8; PIECE_BYTES];
            while let Some(i) = m.next_piece(p) {
                m.page_bytes(i, &mut buf).unwrap();
                r.apply_piece(i, &buf).unwrap();
                p = i + 1;
            }
            prop_assert_eq!(r.iter().collect::<Vec<_>>(), m.iter().collect::<Vec<_>>());
            prop_assert_eq!(r.count(), m.count());
        }

        #[test]
        fn summary_never_overflows(chunks in proptest::collection::vec(0u64..5000, 0..2000), size in 0usize..4097) {
            let mut a = map(42, 5000);
            for c in &chunks { a.set(*c, 0).unwrap(); }
            let s = summary(&[&a], size);
            prop_assert!(s.len() <= size);
            if size == 4096 {
                let want = std::format!(" {}/5000 dirty\n", a.count());
                prop_assert!(s.ends_with(&want));
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod spare_tests {
    extern crate std;
    use super::*;
    use std::boxed::Box;
    use std::vec::Vec;

    /// A prepared storage that refuses to allocate: a set bit that needed a new page fails.
    #[derive(Default)]
    pub(crate) struct Prep(Vec<Option<Box<Page>>>);

    pub(crate) fn prep(n: usize) -> Prep {
        Prep((0..n).map(|_| Some(Box::new([0u64; PAGE_WORDS]))).collect())
    }

    impl MapStorage for Prep {
        fn page(&self, idx: usize) -> Option<&Page> {
            self.0.get(idx).and_then(|p| p.as_deref())
        }
        fn page_mut(&mut self, idx: usize) -> Option<&mut Page> {
            self.0.get_mut(idx).and_then(|p| p.as_deref_mut())
        }
        fn alloc_page(&mut self, idx: usize) -> core::result::Result<&mut Page, NoMem> {
            self.0.get_mut(idx).and_then(|p| p.as_deref_mut()).ok_or(NoMem)
        }
        fn free_page(&mut self, idx: usize) {
            if let Some(p) = self.0.get_mut(idx).and_then(|p| p.as_deref_mut()) {
                *p = [0; PAGE_WORDS];
            }
        }
        fn prepared(&self) -> usize {
            self.0.len()
        }
    }

    #[test]
    fn new_maps_take_prepared_spares_and_give_them_back() {
        let total = 2 * PAGE_BITS;
        let mut set: MapSet<Prep> = MapSet::new();
        assert_eq!(set.spares_wanted(2), 4);
        assert!(set.add_spare(Prep::default()).is_err(), "an unprepared storage is no spare");
        assert!(set.add_spare(prep(1)).is_ok());
        assert_eq!(set.spares_wanted(2), 4, "a spare too small for the map does not count");
        assert!(set.add_spare(prep(2)).is_ok());
        assert_eq!(set.spares_wanted(2), 3);
        let m = set.ensure(7, total).unwrap();
        // Without the spare, these would need page allocations, which Prep refuses.
        assert_eq!(m.set(PAGE_BITS + 5, 1), Ok(true));
        assert_eq!(m.set_all(2), Ok(()));
        assert_eq!(set.spare_count(), 1);
        set.remove(7);
        assert_eq!(set.spare_count(), 2, "the dropped map's storage is a spare again");
        let m = set.ensure(8, total).unwrap();
        assert!(m.is_empty() && !m.test(PAGE_BITS + 5), "a recycled storage comes back clean");
        assert_eq!(m.set(3, 1), Ok(true));
        // No spare left that fits: the next map is made on demand and fails to allocate.
        let m = set.ensure(9, total).unwrap();
        assert_eq!(m.set(3, 1), Err(Error::NoMem));
    }

    #[test]
    fn a_capped_set_wants_at_most_its_cap() {
        let total = 2 * PAGE_BITS;
        let mut set: MapSet<Prep> = MapSet::with_spare_cap(1);
        assert_eq!(set.spares_wanted(2), 1, "four free slots, one spare wanted");
        assert!(set.add_spare(prep(2)).is_ok());
        assert_eq!(set.spares_wanted(2), 0);
        // The map made from it allocates nothing; the next command prepares the next spare.
        let m = set.ensure(7, total).unwrap();
        assert_eq!(m.set(PAGE_BITS + 5, 1), Ok(true));
        assert_eq!(set.spares_wanted(2), 1);
    }

    #[test]
    fn spares_move_between_sets() {
        let mut a: MapSet<Prep> = MapSet::new();
        let mut b: MapSet<Prep> = MapSet::new();
        for _ in 0..4 {
            assert!(a.add_spare(prep(1)).is_ok());
        }
        assert!(a.add_spare(prep(1)).is_err(), "at most RMR_POOL_MAX_SESS spares");
        b.ensure(1, 10).unwrap();
        b.ensure(2, 10).unwrap();
        a.give_spares(&mut b);
        assert_eq!((a.spare_count(), b.spare_count()), (0, 4));
    }
}
