// SPDX-License-Identifier: GPL-2.0-or-later
//! [improvement] The write-intent record against power loss on volatile write caches.

use super::*;

/// Flushes tracked at once by the write-intent record; a flush issued while this many are in
/// flight clears nothing (the record stays conservative).
pub const INTENT_FLUSHES: usize = 4;
/// Prepared storages the record keeps for its epoch maps and `wi` (current, closed, the one
/// replacing the current at a flush, `wi`): with them its IO path never allocates.
pub const INTENT_SPARES: usize = INTENT_FLUSHES + 3;

/// [improvement] The write-intent record: what a power loss may have taken from this node.
///
/// A disk with a volatile write cache may lose any plain write it completed since the last
/// flush that covered it, and upstream RMR has no record of those: a node that comes back from
/// a power loss serves stale chunks with a clean own map while a peer holds the acknowledged
/// data. Like md's write-intent bitmap, `wi` names every chunk with a plain (not FUA) client or
/// sync write not yet covered by a completed flush. The shell makes a newly set bit durable
/// before it submits the write ([`IntentRecord::persists`] counts them); cleared bits may be
/// persisted lazily. At a restart the durable record becomes `suspect` (the shell passes it to
/// [`ServerPool::restore_suspect`]), and the control path turns suspects into own-map bits
/// ([`ServerPool::resolve_suspects`]) before the node serves again.
///
/// Flush tracking: writes fall into epochs separated by flush submissions. A chunk lives in the
/// epoch of its last write (a rewrite moves it to the current one; a write still in flight when
/// a flush is issued stays in the current one). A flush that completes covers its own epoch and
/// every older one: their chunks leave `wi`.
pub struct IntentRecord<S: MapStorage> {
    /// The store has a volatile write cache (the default). A store without one (write-through,
    /// or a cache with power-loss protection: Linux's `write_cache` = "write through") loses
    /// no completed write, keeps no record and never has suspects.
    pub volatile_cache: bool,
    /// Durable: chunks written and not yet covered by a completed flush.
    pub wi: Option<DirtyMap<S>>,
    /// Durable: chunks of the record found at restart, until the pool is NORMAL again.
    pub suspect: Option<DirtyMap<S>>,
    /// Chunks last written in the current epoch.
    pub(super) cur: Option<DirtyMap<S>>,
    /// Closed epochs, oldest first, each waiting for the flush (`mem_id`) that closed it;
    /// `None` = that flush failed (a later one covers the epoch).
    pub(super) closed: [Option<DirtyMap<S>>; INTENT_FLUSHES],
    pub(super) closed_by: [Option<u16>; INTENT_FLUSHES],
    pub(super) nclosed: usize,
    /// Chunk of the write in flight per `mem_id` (`u64::MAX` = none).
    pub(super) inflight: [u64; RMR_MAX_QUEUE_DEPTH],
    /// [improvement] Durable with `wi`: per member, the chunks whose last witnessed unflushed
    /// write found that member clean in this node's map (it received the same data). Suspect
    /// resolution hands a chunk this node may have lost to its witnesses when conservative
    /// marks make every other member look dirty there.
    pub witness: MapSet<S>,
    /// [improvement] Durable: chunks this node's suspect resolution marked dirty in its own
    /// map (it may have lost them), until a sync cleans them. Installed maps that show such a
    /// chunk clean (a peer handed it over) get the own bit back.
    pub lost: Option<DirtyMap<S>>,
    /// Bits newly set in `wi` or changed in `witness` (each made durable before its write was
    /// submitted).
    pub persists: u64,
    /// Bits cleared from `wi` by completed flushes.
    pub cleared: u64,
    /// Prepared storages for `wi`, the epoch maps, and the suspect and lost maps
    /// ([`Self::add_spare`]).
    pub(super) spares: [Option<S>; INTENT_SPARES],
}

impl<S: MapStorage + Default> IntentRecord<S> {
    /// Empty record.
    pub const fn new() -> Self {
        IntentRecord {
            volatile_cache: true,
            wi: None,
            suspect: None,
            cur: None,
            closed: [None, None, None, None],
            closed_by: [None; INTENT_FLUSHES],
            nclosed: 0,
            inflight: [u64::MAX; RMR_MAX_QUEUE_DEPTH],
            witness: MapSet::new(),
            lost: None,
            persists: 0,
            cleared: 0,
            spares: [None, None, None, None, None, None, None],
        }
    }

    /// How many prepared storages of `npages` pages the record lacks (none without a
    /// volatile cache).
    pub fn spares_wanted(&self, npages: usize) -> usize {
        if !self.volatile_cache {
            return 0;
        }
        let held = [&self.wi, &self.cur].into_iter().chain(self.closed.iter()).flatten();
        let in_use = held.filter(|m| m.storage().prepared() >= npages).count();
        let ready = self.spares.iter().flatten().filter(|s| s.prepared() >= npages).count();
        INTENT_SPARES.saturating_sub(in_use + ready)
    }

    /// Keep `spare` for a new epoch map or `wi`; hands back what it cannot keep (to be freed
    /// outside the caller's lock).
    pub fn add_spare(&mut self, spare: S) -> core::result::Result<(), S> {
        if spare.prepared() == 0 {
            return Err(spare);
        }
        match self.spares.iter_mut().find(|s| s.is_none()) {
            Some(slot) => {
                *slot = Some(spare);
                Ok(())
            }
            None => Err(spare),
        }
    }

    /// A new clean map, on a prepared storage if one is kept.
    fn new_map(&mut self, total: u64) -> Result<DirtyMap<S>> {
        DirtyMap::new(u32::MAX, total, Self::take_spare(&mut self.spares, total))
    }

    /// A kept prepared storage big enough for a map of `total` chunks, or a default one
    /// (whose pages are allocated on demand). The member id of the record's maps is never
    /// used; DirtyMap wants a non-zero one: `u32::MAX`.
    fn take_spare(spares: &mut [Option<S>; INTENT_SPARES], total: u64) -> S {
        let npages = usize::try_from(total.div_ceil(super::super::dirtymap::PAGE_BITS)).unwrap_or(usize::MAX);
        spares
            .iter_mut()
            .find(|s| s.as_ref().is_some_and(|s| s.prepared() >= npages))
            .and_then(|s| s.take())
            .unwrap_or_default()
    }

    /// Drop a map, keeping a prepared storage for the next one.
    fn recycle(&mut self, m: Option<DirtyMap<S>>) {
        let Some(m) = m else { return };
        let st = m.into_storage();
        if st.prepared() > 0 {
            if let Some(slot) = self.spares.iter_mut().find(|s| s.is_none()) {
                *slot = Some(st);
            }
        }
    }

    /// `cur` or `wi` (`wi`: true), created on a prepared storage if missing or sized for
    /// another device.
    fn hot_map(&mut self, wi: bool, total: u64) -> Result<&mut DirtyMap<S>> {
        let stale = if wi { &self.wi } else { &self.cur }.as_ref().is_some_and(|x| x.total() != total);
        if stale {
            let old = if wi { self.wi.take() } else { self.cur.take() };
            self.recycle(old);
        }
        if if wi { self.wi.is_none() } else { self.cur.is_none() } {
            let m = self.new_map(total)?;
            if wi {
                self.wi = Some(m);
            } else {
                self.cur = Some(m);
            }
        }
        if wi { self.wi.as_mut() } else { self.cur.as_mut() }.ok_or(Error::NoMem)
    }

    /// The suspect or lost map in `m`, made when missing or sized for another device.
    pub(super) fn map<'a>(
        m: &'a mut Option<DirtyMap<S>>,
        spares: &mut [Option<S>; INTENT_SPARES],
        total: u64,
    ) -> Result<&'a mut DirtyMap<S>> {
        if m.as_ref().is_some_and(|x| x.total() != total) {
            if let Some(x) = m.as_mut() {
                x.clear_all();
            }
            *m = None;
        }
        if m.is_none() {
            // On a prepared storage if one is kept: the suspect map is made while a store
            // loads and the lost map during a map update, both under the pool's lock, where
            // pages of a storage made on demand are allocated atomically (intent.sh counted
            // two in map_atomic_pages).
            *m = Some(DirtyMap::new(u32::MAX, total, Self::take_spare(spares, total))?);
        }
        m.as_mut().ok_or(Error::NoMem)
    }

    /// Whether `chunk` is in the durable record (`wi` or `suspect`).
    pub fn durable(&self, chunk: u64) -> bool {
        self.wi.as_ref().is_some_and(|m| m.test(chunk)) || self.suspect.as_ref().is_some_and(|m| m.test(chunk))
    }

    /// Whether this node has unflushed data of `chunk` (`wi`) and some member witnessed it.
    /// Before such witnesses are dropped while no other copy holds the data, the device must
    /// be flushed ([`super::MdPlan::preflush`]).
    pub(super) fn unflushed_witnessed(&self, chunk: u64) -> bool {
        self.wi.as_ref().is_some_and(|m| m.test(chunk)) && self.witness.iter().any(|w| w.test(chunk))
    }

    /// A flush is issued with IO unit `mem_id`: close the current epoch (chunks with a write
    /// still in flight, client or sync (`syncing`), move on to the new one).
    pub(super) fn flush_issued(&mut self, mem_id: u16, total: u64, syncing: impl Iterator<Item = u64>) -> Result<()> {
        if !self.volatile_cache {
            return Ok(());
        }
        if self.nclosed >= INTENT_FLUSHES {
            // Untracked: it may make writes durable that the record cannot tell from later
            // ones, so witnesses kept across an unwitnessed write could be older than this
            // node's copy. Forget them all (suspects then keep their copy).
            if self.witness.iter().any(|w| !w.is_empty()) {
                self.witness.remove_all();
                self.persists += 1;
            }
            return Ok(());
        }
        self.hot_map(false, total)?;
        let fresh = self.new_map(total)?;
        let n = self.nclosed;
        let (Some(slot), Some(by)) = (self.closed.get_mut(n), self.closed_by.get_mut(n)) else {
            return Ok(());
        };
        *slot = self.cur.replace(fresh);
        *by = Some(mem_id);
        self.nclosed = n + 1;
        let (Some(old), Some(cur)) = (slot.as_mut(), self.cur.as_mut()) else {
            return Err(Error::NoMem);
        };
        for c in self.inflight.iter().copied().filter(|c| *c != u64::MAX).chain(syncing) {
            if old.clear(c) {
                cur.set(c, 0)?;
            }
        }
        Ok(())
    }

    /// The flush sent with `mem_id` completed: on success its epoch and all older ones are
    /// durable.
    pub(super) fn flush_done(&mut self, mem_id: u16, ok: bool) {
        let Some(j) = (0..self.nclosed).find(|j| self.closed_by.get(*j).copied().flatten() == Some(mem_id)) else {
            return;
        };
        if !ok {
            if let Some(b) = self.closed_by.get_mut(j) {
                *b = None;
            }
            return;
        }
        for k in 0..=j {
            let e = self.closed.get_mut(k).and_then(|e| e.take());
            if let Some(m) = e.as_ref() {
                for c in m.iter() {
                    if self.wi.as_mut().is_some_and(|w| w.clear(c)) {
                        self.cleared += 1;
                    }
                }
            }
            self.recycle(e);
        }
        let n = self.nclosed;
        for k in (j + 1)..n {
            self.closed.swap(k - (j + 1), k);
            self.closed_by.swap(k - (j + 1), k);
        }
        for k in (n - (j + 1))..n {
            if let Some(b) = self.closed_by.get_mut(k) {
                *b = None;
            }
        }
        self.nclosed = n - (j + 1);
    }

    /// A plain write of `chunk` is about to be submitted: record it. Returns whether the bit
    /// is new in `wi` (the shell persists it before submitting).
    pub(super) fn write(&mut self, chunk: u64, total: u64) -> Result<bool> {
        if !self.volatile_cache {
            return Ok(false);
        }
        self.hot_map(false, total)?.set(chunk, 0)?;
        for m in self.closed.iter_mut().take(self.nclosed).flatten() {
            m.clear(chunk);
        }
        let new = self.hot_map(true, total)?.set(chunk, 0)?;
        if new {
            self.persists += 1;
        }
        Ok(new)
    }

    /// Forget everything (the store is gone or a fresh store starts).
    pub(super) fn reset(&mut self) {
        let (wi, cur) = (self.wi.take(), self.cur.take());
        self.recycle(wi);
        self.recycle(cur);
        for k in 0..INTENT_FLUSHES {
            let e = self.closed.get_mut(k).and_then(|e| e.take());
            self.recycle(e);
        }
        for m in [&mut self.suspect, &mut self.lost] {
            if let Some(x) = m.as_mut() {
                x.clear_all();
            }
            *m = None;
        }
        self.closed_by = [None; INTENT_FLUSHES];
        self.nclosed = 0;
        self.inflight = [u64::MAX; RMR_MAX_QUEUE_DEPTH];
        self.witness.remove_all();
    }

    /// A data write of `chunk` found `clean` (the other members clean there in this node's
    /// map): they become its witnesses. A recorded write nobody else witnessed, while the chunk
    /// is in `wi` already, keeps the witnesses of the last unflushed write somebody did: if
    /// this node loses its unflushed writes there, theirs is the newest surviving copy. A
    /// written-through (FUA) write, or the first write after a flush covered the chunk
    /// (`reset`), sets exactly `clean`.
    pub(super) fn witnessed(&mut self, chunk: u64, total: u64, clean: &MemberList, reset: bool) -> Result<()> {
        if !self.volatile_cache || (clean.is_empty() && !reset) {
            return Ok(());
        }
        let mut changed = false;
        for m in self.witness.iter_mut() {
            if !clean.contains(m.member_id()) && m.test(chunk) {
                m.clear(chunk);
                changed = true;
            }
        }
        for m in clean.iter() {
            changed |= self.witness.ensure(m, total)?.set(chunk, 0)?;
        }
        if changed {
            self.persists += 1;
        }
        Ok(())
    }

    /// Whether a flush issued after the last write of `chunk` is still in flight.
    pub(super) fn in_closed_epoch(&self, chunk: u64) -> bool {
        self.closed.iter().take(self.nclosed).flatten().any(|m| m.test(chunk))
    }

    /// Whether `member` witnessed the last recorded write of `chunk`.
    pub fn is_witness(&self, member: u32, chunk: u64) -> bool {
        self.witness.get(member).is_some_and(|m| m.test(chunk))
    }
}

impl<S: MapStorage + Default> super::super::dirtymap::Spares<S> for IntentRecord<S> {
    fn spares_wanted(&self, npages: usize) -> usize {
        IntentRecord::spares_wanted(self, npages)
    }
    fn add_spare(&mut self, spare: S) -> core::result::Result<(), S> {
        IntentRecord::add_spare(self, spare)
    }
}

impl<S: MapStorage + Default> Default for IntentRecord<S> {
    fn default() -> Self {
        Self::new()
    }
}

/// Turn suspect chunks into own-map bits in `maps` (see [`ServerPool::resolve_suspects`]).
/// Returns whether the own map changed.
pub(super) fn resolve_into<S: MapStorage + Default>(
    maps: &mut MapSet<S>,
    lost_maps: &mut MapSet<S>,
    rec: &mut IntentRecord<S>,
    own: u32,
    pool_members: MemberList,
    total: u64,
    now: u64,
) -> Result<bool> {
    let IntentRecord { suspect, witness, lost, spares, .. } = rec;
    let Some(suspect) = suspect.as_ref() else {
        return Ok(false);
    };
    let mut members = pool_members;
    for m in maps.members().iter() {
        let _ = members.push(m);
    }
    let mut changed = false;
    // What this node lost earlier stays dirty for it, whatever the maps it resolves against
    // say (a peer may have handed such a chunk over before it learnt of the loss).
    if let Some(l) = lost.as_ref().filter(|l| !l.is_empty()) {
        let m = maps.ensure(own, total)?;
        let ml = lost_maps.ensure(own, total)?;
        for c in l.iter().filter(|c| *c < total) {
            changed |= m.set(c, now)?;
            ml.set(c, 0)?;
        }
    }
    for c in suspect.iter().filter(|c| *c < total) {
        let own_dirty = maps.get(own).is_some_and(|m| m.test(c));
        let other_clean = members.iter().filter(|m| *m != own).any(|m| !maps.get(m).is_some_and(|x| x.test(c)));
        if own_dirty {
            // Take back: this node gave the chunk up (below) and every other member is dirty
            // there now. If its witnesses lost it too (they marked themselves again, and
            // their loss is in the lost maps) its copy is the best the pool has after all; the
            // witnesses are forgotten, so it is not handed over again.
            if !other_clean && lost.as_ref().is_some_and(|l| l.test(c)) {
                // A witness not known to have lost it: the hand-over did not reach the maps
                // resolved against now (an update failed after it). Hand over again.
                if hand_over(maps, witness, lost_maps, pool_members, own, c) {
                    changed = true;
                    continue;
                }
                if let Some(m) = maps.get_mut(own) {
                    m.clear(c);
                }
                if let Some(l) = lost.as_mut() {
                    l.clear(c);
                }
                if let Some(l) = lost_maps.get_mut(own) {
                    l.clear(c);
                }
                for w in witness.iter_mut() {
                    w.clear(c);
                }
                changed = true;
            }
            continue;
        }
        if !other_clean {
            // Every other member looks dirty. The witnesses of this node's last witnessed
            // unflushed write there received the same data and were not reported failing it
            // since (a write failure's MAP_ADD removes the witness); no acknowledged write
            // reached the chunk after this node went down (it would be dirty there). So their
            // marks are conservative (a refused or lost MAP_CLEAR, a recovery MAP_ADD) unless
            // they lost the data themselves: those in their lost map are skipped, one whose
            // loss is not known here yet marks itself again when it installs these maps and
            // this node takes the chunk back (above). Without a witness this node's copy is
            // the best the pool has: keep it.
            if !hand_over(maps, witness, lost_maps, pool_members, own, c) {
                continue;
            }
        }
        maps.ensure(own, total)?.set(c, now)?;
        IntentRecord::map(lost, spares, total)?.set(c, 0)?;
        lost_maps.ensure(own, total)?.set(c, 0)?;
        changed = true;
    }
    Ok(changed)
}

/// Clear `c` for every witness of it among `members` that is not in its lost map (the chunk
/// is handed to them); whether there was one.
pub(super) fn hand_over<S: MapStorage + Default>(
    maps: &mut MapSet<S>,
    witness: &MapSet<S>,
    lost_maps: &MapSet<S>,
    members: MemberList,
    own: u32,
    c: u64,
) -> bool {
    let mut any = false;
    for m in members.iter().filter(|m| *m != own) {
        if witness.get(m).is_some_and(|w| w.test(c)) && !lost_maps.get(m).is_some_and(|l| l.test(c)) {
            if let Some(x) = maps.get_mut(m) {
                x.clear(c);
            }
            any = true;
        }
    }
    any
}

#[cfg(test)]
mod tests {
    use super::super::super::dirtymap::spare_tests::{prep, Prep};
    use super::super::super::dirtymap::PAGE_BITS;
    use super::*;

    /// The suspect and lost maps are made on a kept prepared storage: in the kernel they are
    /// made under the pool's lock, where a storage made there allocates its pages atomically.
    #[test]
    fn suspect_and_lost_maps_take_prepared_spares() {
        let total = 2 * PAGE_BITS;
        let mut rec: IntentRecord<Prep> = IntentRecord::default();
        assert!(rec.volatile_cache);
        assert!(rec.add_spare(prep(2)).is_ok());
        assert!(rec.add_spare(prep(2)).is_ok());
        let IntentRecord { suspect, lost, spares, .. } = &mut rec;
        // Prep refuses to allocate: these sets succeed only on a prepared storage.
        assert_eq!(IntentRecord::map(suspect, spares, total).and_then(|m| m.set(PAGE_BITS + 1, 0)), Ok(true));
        assert_eq!(IntentRecord::map(lost, spares, total).and_then(|m| m.set(3, 0)), Ok(true));
        // No spare left: made on demand, and Prep cannot allocate.
        let mut other = None;
        assert_eq!(IntentRecord::map(&mut other, spares, total).and_then(|m| m.set(3, 0)), Err(Error::NoMem));
    }
}
