// SPDX-License-Identifier: GPL-2.0-or-later
//! The maps of a pool ([`MapSet`]) and the spare storages that keep their creation from
//! allocating where sleeping is not allowed ([`Spares`]).

use super::*;

/// The maps of a pool, one per member (at most `RMR_POOL_MAX_SESS`), and spare storages.
///
/// Map bits are set under the shells' spinlocks, often in softirq context, where a page
/// allocation may only be atomic and may fail. So the kernel prepares storages with every
/// page allocated where it may sleep and hands them in with [`Self::add_spare`] before the
/// command that may create a map; [`Self::ensure`] uses a spare that is large enough, and a
/// dropped map's prepared storage becomes a spare again. A map made without a spare (the
/// host, or a shell that did not prepare one) allocates its pages on demand.
pub struct MapSet<S: MapStorage> {
    maps: [Option<DirtyMap<S>>; RMR_POOL_MAX_SESS],
    spares: [Option<S>; RMR_POOL_MAX_SESS],
    /// At most this many spares are wanted ([`Self::spares_wanted`]).
    spare_cap: usize,
}

impl<S: MapStorage + Default> Default for MapSet<S> {
    fn default() -> Self {
        Self::new()
    }
}

/// Something that keeps prepared storages for maps it will create (a [`MapSet`], the
/// write-intent record): the shell allocates them where sleeping is allowed.
pub trait Spares<S> {
    /// How many prepared storages of `npages` pages it lacks.
    fn spares_wanted(&self, npages: usize) -> usize;
    /// Keep `spare`; hands back what it cannot keep.
    fn add_spare(&mut self, spare: S) -> core::result::Result<(), S>;
}

impl<S: MapStorage + Default> Spares<S> for MapSet<S> {
    fn spares_wanted(&self, npages: usize) -> usize {
        MapSet::spares_wanted(self, npages)
    }
    fn add_spare(&mut self, spare: S) -> core::result::Result<(), S> {
        MapSet::add_spare(self, spare)
    }
}

impl<S: MapStorage + Default> MapSet<S> {
    /// No maps.
    pub const fn new() -> Self {
        Self::with_spare_cap(RMR_POOL_MAX_SESS)
    }
    /// No maps; at most `cap` spares wanted: for a set whose maps are rare and made one per
    /// command (the lost maps), so that it does not hold a full set of spares.
    pub const fn with_spare_cap(cap: usize) -> Self {
        MapSet { maps: [None, None, None, None], spares: [None, None, None, None], spare_cap: cap }
    }
    /// How many spare storages of `npages` pages the set lacks: one per free map slot, at
    /// most its cap.
    pub fn spares_wanted(&self, npages: usize) -> usize {
        let free = self.maps.iter().filter(|m| m.is_none()).count().min(self.spare_cap);
        let ready = self.spares.iter().flatten().filter(|s| s.prepared() >= npages).count();
        free.saturating_sub(ready)
    }
    /// Keep `spare` for the next new map. Hands back a storage to be freed outside the
    /// caller's lock: `spare` itself when it is not prepared or the set holds enough, or the
    /// smaller spare it replaced.
    pub fn add_spare(&mut self, spare: S) -> core::result::Result<(), S> {
        if spare.prepared() == 0 {
            return Err(spare);
        }
        if let Some(slot) = self.spares.iter_mut().find(|s| s.is_none()) {
            *slot = Some(spare);
            return Ok(());
        }
        // Full: a larger spare replaces the smallest (made before the device grew).
        let n = spare.prepared();
        match self.spares.iter_mut().flatten().min_by_key(|s| s.prepared()) {
            Some(small) if small.prepared() < n => Err(core::mem::replace(small, spare)),
            _ => Err(spare),
        }
    }
    /// Move this set's spares into `to` (as far as it has room), e.g. from a staging set that
    /// was prepared to the maps it replaces.
    pub fn give_spares(&mut self, to: &mut MapSet<S>) {
        for s in self.spares.iter_mut() {
            if let Some(sp) = s.take() {
                if let Err(back) = to.add_spare(sp) {
                    *s = Some(back);
                }
            }
        }
    }
    /// Number of spare storages held.
    pub fn spare_count(&self) -> usize {
        self.spares.iter().flatten().count()
    }
    fn storage_for(&mut self, npages: usize) -> S {
        self.spares
            .iter_mut()
            .find(|s| s.as_ref().is_some_and(|s| s.prepared() >= npages))
            .and_then(|s| s.take())
            .unwrap_or_default()
    }
    fn recycle(&mut self, m: DirtyMap<S>) {
        let st = m.into_storage();
        if st.prepared() > 0 {
            if let Some(slot) = self.spares.iter_mut().find(|s| s.is_none()) {
                *slot = Some(st);
            }
        }
    }
    /// The map of `member`.
    pub fn get(&self, member: u32) -> Option<&DirtyMap<S>> {
        self.maps.iter().flatten().find(|m| m.member_id == member)
    }
    /// The map of `member`, writable.
    pub fn get_mut(&mut self, member: u32) -> Option<&mut DirtyMap<S>> {
        self.maps.iter_mut().flatten().find(|m| m.member_id == member)
    }
    /// The map of `member`, created clean (covering `total` chunks) if missing.
    pub fn ensure(&mut self, member: u32, total: u64) -> Result<&mut DirtyMap<S>> {
        let idx = match self.maps.iter().position(|m| m.as_ref().is_some_and(|m| m.member_id == member)) {
            Some(i) => i,
            None => {
                let i = self.maps.iter().position(|m| m.is_none()).ok_or(Error::NoSpc)?;
                if total > MAX_CHUNKS || member == 0 {
                    return Err(Error::Range);
                }
                let st = self.storage_for(total.div_ceil(PAGE_BITS) as usize);
                let slot = self.maps.get_mut(i).ok_or(Error::NoSpc)?;
                *slot = Some(DirtyMap::new(member, total, st)?);
                i
            }
        };
        self.maps.get_mut(idx).and_then(|m| m.as_mut()).ok_or(Error::NoSpc)
    }
    /// Drop the map of `member` (its pages are freed, or its prepared storage kept as a spare).
    pub fn remove(&mut self, member: u32) {
        for i in 0..RMR_POOL_MAX_SESS {
            let hit = self.maps.get(i).is_some_and(|m| m.as_ref().is_some_and(|m| m.member_id == member));
            if let Some(m) = self.maps.get_mut(i).filter(|_| hit).and_then(|m| m.take()) {
                self.recycle(m);
            }
        }
    }
    /// Drop every map (prepared storages are kept as spares).
    pub fn remove_all(&mut self) {
        for i in 0..RMR_POOL_MAX_SESS {
            if let Some(m) = self.maps.get_mut(i).and_then(|m| m.take()) {
                self.recycle(m);
            }
        }
    }
    /// Members that have a map.
    pub fn members(&self) -> MemberList {
        let mut l = MemberList::new();
        for m in self.maps.iter().flatten() {
            let _ = l.push(m.member_id);
        }
        l
    }
    /// Iterate the maps.
    pub fn iter(&self) -> impl Iterator<Item = &DirtyMap<S>> {
        self.maps.iter().flatten()
    }
    /// Iterate the maps, writable.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut DirtyMap<S>> {
        self.maps.iter_mut().flatten()
    }
    /// The map at slot `i` (cursor use).
    pub fn slot(&self, i: usize) -> Option<&DirtyMap<S>> {
        self.maps.get(i).and_then(|m| m.as_ref())
    }
    /// Render `map_summary` of all maps.
    pub fn render_summary(&self, out: &mut [u8]) -> usize {
        let mut refs: [Option<&DirtyMap<S>>; RMR_POOL_MAX_SESS] = [None; RMR_POOL_MAX_SESS];
        let mut n = 0;
        for (r, m) in refs.iter_mut().zip(self.maps.iter().flatten()) {
            *r = Some(m);
            n += 1;
        }
        match (refs[0], refs[1], refs[2], refs[3]) {
            (Some(a), Some(b), Some(c), Some(d)) if n == 4 => render_summary(&[a, b, c, d], out),
            (Some(a), Some(b), Some(c), _) if n == 3 => render_summary(&[a, b, c], out),
            (Some(a), Some(b), _, _) if n == 2 => render_summary(&[a, b], out),
            (Some(a), _, _, _) => render_summary(&[a], out),
            _ => 0,
        }
    }
    /// Swap contents with `other` (install staged maps).
    pub fn swap(&mut self, other: &mut MapSet<S>) {
        core::mem::swap(&mut self.maps, &mut other.maps);
    }
}
