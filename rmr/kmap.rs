// SPDX-License-Identifier: GPL-2.0-or-later
//! Kernel page storage of the dirty maps (`rmr_core::dirtymap::MapStorage`), shared by the
//! server and the client role.
//!
//! Map bits are set under spinlocks, often in softirq context (IO completions), where only an
//! atomic allocation is possible and it may fail. So the shells prepare storages with every
//! page allocated (`GFP_KERNEL`, where sleeping is allowed) before a command that may create
//! a map, and hand them to the core's `MapSet` as spares ([`prepare_spares`]). A map made
//! from a prepared storage never allocates; its clean pages are zeroed and kept.
//!
//! A map made without a spare (when preparing failed) still allocates on demand with
//! `GFP_ATOMIC`; each such page is counted in
//! `/sys/module/rmr/parameters/map_atomic_pages` and a failure is
//! reported to the core as `NoMem`.

#![deny(unsafe_code)]

use crate::rmr_core::dirtymap::{MapStorage, NoMem, Page, Spares, PAGE_BITS};
use kernel::alloc::flags::{GFP_ATOMIC, GFP_KERNEL, __GFP_NOWARN};
use kernel::alloc::Flags;
use kernel::prelude::*;

use crate::wrap::params::count_map_atomic_page as count_atomic_page;

/// First level (`dirty_bitmap[]`) of one member map: one optional zeroed page per index.
#[derive(Default)]
pub(crate) struct KMapStorage {
    pages: KVec<Option<KBox<Page>>>,
    /// Pages allocated at creation (all of them); 0 = allocate on demand (and zero pages are
    /// never a spare: `MapSet::add_spare` refuses them).
    prepared: usize,
}

fn zeroed_page(flags: Flags) -> Result<KBox<Page>, NoMem> {
    KBox::init(kernel::init::zeroed(), flags | __GFP_NOWARN).map_err(|_| NoMem)
}

impl KMapStorage {
    /// A storage of `npages` zeroed pages, allocated where sleeping is allowed.
    pub(crate) fn prepared(npages: usize) -> Result<Self, NoMem> {
        let mut pages = KVec::with_capacity(npages, GFP_KERNEL).map_err(|_| NoMem)?;
        for _ in 0..npages {
            pages.push(Some(zeroed_page(GFP_KERNEL)?), GFP_KERNEL).map_err(|_| NoMem)?;
        }
        Ok(KMapStorage { pages, prepared: npages })
    }
}

impl MapStorage for KMapStorage {
    fn page(&self, idx: usize) -> Option<&Page> {
        self.pages.get(idx).and_then(|p| p.as_deref())
    }

    fn page_mut(&mut self, idx: usize) -> Option<&mut Page> {
        self.pages.get_mut(idx).and_then(|p| p.as_deref_mut())
    }

    fn alloc_page(&mut self, idx: usize) -> core::result::Result<&mut Page, NoMem> {
        while self.pages.len() <= idx {
            self.pages.push(None, GFP_ATOMIC | __GFP_NOWARN).map_err(|_| NoMem)?;
        }
        let slot = self.pages.get_mut(idx).ok_or(NoMem)?;
        if slot.is_none() {
            *slot = Some(zeroed_page(GFP_ATOMIC)?);
            count_atomic_page();
        }
        slot.as_deref_mut().ok_or(NoMem)
    }

    fn free_page(&mut self, idx: usize) {
        if let Some(p) = self.pages.get_mut(idx) {
            if self.prepared > 0 {
                if let Some(pg) = p.as_deref_mut() {
                    *pg = [0; crate::rmr_core::dirtymap::PAGE_WORDS];
                }
            } else {
                *p = None;
            }
        }
    }

    fn prepared(&self) -> usize {
        self.prepared
    }
}

/// Hands `maps` (behind a spinlock that `with` takes) the spare storages it lacks for maps of
/// `total` chunks. Allocates with the lock released; returns false if memory ran out (the
/// maps that then cannot take a spare allocate on demand).
pub(crate) fn prepare_spares<T: Spares<KMapStorage>>(total: u64, mut with: impl FnMut(&mut dyn FnMut(&mut T))) -> bool {
    let npages = usize::try_from(total.div_ceil(PAGE_BITS)).unwrap_or(usize::MAX);
    let mut want = 0;
    with(&mut |m| want = m.spares_wanted(npages));
    for _ in 0..want {
        let Ok(st) = KMapStorage::prepared(npages) else { return false };
        let (mut st, mut back) = (Some(st), None);
        with(&mut |m| {
            if let Some(s) = st.take() {
                back = m.add_spare(s).err();
            }
        });
        // A refused spare is freed here, outside the lock.
        drop(back);
    }
    true
}
