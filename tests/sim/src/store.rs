// SPDX-License-Identifier: GPL-2.0-or-later
//! Host page storage for dirty maps and a deterministic PRNG.

use rmr_core::dirtymap::{MapStorage, NoMem, Page, PAGE_WORDS};

/// `Vec<Option<Box<Page>>>` page storage.
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

/// SplitMix64: small, fast, deterministic.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// Seeded generator.
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
    /// True with probability `p`/1000.
    pub fn permille(&mut self, p: u64) -> bool {
        self.below(1000) < p
    }
    /// Pick an index by weights; None if all weights are 0.
    pub fn weighted(&mut self, w: &[u64]) -> Option<usize> {
        let total: u64 = w.iter().sum();
        if total == 0 {
            return None;
        }
        let mut x = self.below(total);
        for (i, v) in w.iter().enumerate() {
            if x < *v {
                return Some(i);
            }
            x -= v;
        }
        None
    }
}
