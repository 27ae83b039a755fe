// SPDX-License-Identifier: GPL-2.0-or-later
//! Kernel page storage of the dirty maps (`rmr_core::dirtymap::MapStorage`), shared by the
//! server and the client role.
//!
//! Map bits are set under spinlocks (IO path), so every allocation here is `GFP_ATOMIC`: the
//! first level grows on demand and second-level pages are allocated zeroed. A failed
//! allocation is reported to the core as `NoMem`, which turns it into -ENOMEM.

use crate::rmr_core::dirtymap::{MapStorage, NoMem, Page};
use kernel::alloc::flags::{GFP_ATOMIC, __GFP_NOWARN, __GFP_ZERO};
use kernel::prelude::*;

/// First level (`dirty_bitmap[]`) of one member map: one optional zeroed page per index.
#[derive(Default)]
pub(crate) struct KMapStorage {
    pages: KVec<Option<KBox<Page>>>,
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
            let b = KBox::<Page>::new_uninit(GFP_ATOMIC | __GFP_ZERO | __GFP_NOWARN).map_err(|_| NoMem)?;
            // SAFETY: the allocation was zeroed (`__GFP_ZERO`) and all-zero bytes are a valid
            // `[u64; N]`.
            *slot = Some(unsafe { b.assume_init() });
        }
        slot.as_deref_mut().ok_or(NoMem)
    }

    fn free_page(&mut self, idx: usize) {
        if let Some(p) = self.pages.get_mut(idx) {
            *p = None;
        }
    }
}
