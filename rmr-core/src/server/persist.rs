// SPDX-License-Identifier: GPL-2.0-or-later
//! [improvement] What a server pool persists through its store, and when (SPEC §3.3, §9.4).
//!
//! Persisted: the dirty map of every member with a map (one on-disk slot each, the slot table
//! in the superblock), the `last_io` record and, on a store that has room for it, the
//! write-intent record: `wi`, `suspect` and the own lost map ([`MD_INTENT`]), and per slot
//! the member's witness map ([`MD_WITNESS`]) and lost map ([`MD_LOST`]). All are written by
//! one writer per pool, in rounds, through [`ServerPool::md_begin`],
//! [`ServerPool::md_next_scrub`], [`ServerPool::md_next_page`],
//! [`ServerPool::md_last_io_page`] and [`ServerPool::md_end`]:
//!
//! 0. when a slot passes to another member: zero pages over everything the slot held, then a
//!    flush ([`MdPlan::scrub`]);
//! 1. the superblock with `pool_md` and the slot table ([`MdPlan::table`]), when it changed;
//! 2. every page changed since the last round (set or cleared bits), and zero pages over a
//!    bitmap whose map is gone;
//! 3. the `last_io` record, when it changed;
//! 4. a flush when bitmap pages or the table were written.
//!
//! Ordering (what must be durable before what):
//! - A newly set bit before the reply or the write that depends on it: a command's reply is
//!   sent after a round that covers it, and a client write is submitted only after one
//!   ([`ServerPool::md_need`] gives the sequence to wait for). Cleared bits are persisted by
//!   the next round (at the latest the map-clear tick): a cleared bit that comes back after a
//!   crash only costs a sync.
//! - Write-intent record: a new `wi` bit and every change of a witness map (a cleared witness
//!   bit too: a stale witness would be handed a chunk it never received) before the write
//!   that caused it is submitted (`IntentRecord::persists` counts them). Bits cleared from
//!   `wi` by completed flushes are lazy (a stale bit only makes the chunk suspect).
//! - `last_io[mem_id]` is recorded when a client write is submitted, before it (the record
//!   goes to disk first), not when it completes: a kernel crash after the data reached the
//!   disk but before an acknowledgement must still find the chunk in the record (SPEC §10.6).
//!   A slot then may name a write that failed or never completed; reconciliation only marks
//!   more chunks dirty for it.
//! - A member's slot in the table is written before its pages: a crash in between leaves the
//!   slot's older pages attributed to the new member. For dirty maps that only means extra
//!   dirty bits, but a stale witness bit is not conservative, so a slot that may hold bits
//!   is zeroed and flushed before the table gives it to another member (step 0). A slot
//!   whose member has no map any more is freed in the table.

use super::*;
use super::super::ondisk::{decode_last_io, encode_last_io, LAST_IO_SLOT_BYTES};

/// Bytes of one persisted page (a map page, or a page of the `last_io` record).
pub const MD_PAGE_BYTES: usize = 4096;
/// Pages of the persisted `last_io` record (slots in the store format's `rmr_id_t` form,
/// `ondisk::encode_last_io`: a = 1 when used, b = chunk).
pub const MD_LAST_IO_PAGES: usize = RMR_MAX_QUEUE_DEPTH * LAST_IO_SLOT_BYTES / MD_PAGE_BYTES;
const SLOTS_PER_PAGE: usize = MD_PAGE_BYTES / LAST_IO_SLOT_BYTES;

/// Persisted region: the dirty map of the member in slot `index`.
pub const MD_MAP: u32 = 0;
/// Persisted region: the `last_io` record (`index` 0).
pub const MD_LAST_IO: u32 = 1;
/// Persisted region: the write-intent record's witness map of the member in slot `index`.
pub const MD_WITNESS: u32 = 2;
/// Persisted region: the lost map of the member in slot `index`.
pub const MD_LOST: u32 = 3;
/// Persisted region: the write-intent record, `index` [`INTENT_WI`], [`INTENT_SUSPECT`] or
/// [`INTENT_LOST`].
pub const MD_INTENT: u32 = 4;
/// [`MD_INTENT`] index: `wi`.
pub const INTENT_WI: u32 = 0;
/// [`MD_INTENT`] index: `suspect`.
pub const INTENT_SUSPECT: u32 = 1;
/// [`MD_INTENT`] index: the own lost map (`IntentRecord::lost`).
pub const INTENT_LOST: u32 = 2;

/// Bitmaps a round may write: map, witness and lost map per slot, then the three of the
/// record.
const TARGETS: usize = 3 * RMR_POOL_MAX_SESS + 3;
const SLOT_REGIONS: [u32; 3] = [MD_MAP, MD_WITNESS, MD_LOST];

/// (region, index) of bitmap target `k`.
const fn target(k: usize) -> (u32, usize) {
    if k < 3 * RMR_POOL_MAX_SESS {
        (SLOT_REGIONS[k / RMR_POOL_MAX_SESS], k % RMR_POOL_MAX_SESS)
    } else {
        (MD_INTENT, k - 3 * RMR_POOL_MAX_SESS)
    }
}

/// Bitmap target of (region, index), if it is one.
fn target_of(region: u32, index: usize) -> Option<usize> {
    match region {
        MD_MAP if index < RMR_POOL_MAX_SESS => Some(index),
        MD_WITNESS if index < RMR_POOL_MAX_SESS => Some(RMR_POOL_MAX_SESS + index),
        MD_LOST if index < RMR_POOL_MAX_SESS => Some(2 * RMR_POOL_MAX_SESS + index),
        MD_INTENT if index < 3 => Some(3 * RMR_POOL_MAX_SESS + index),
        _ => None,
    }
}

/// Targets of slot `s` (all its regions).
const fn slot_targets(s: usize) -> u32 {
    (1 << s) | (1 << (RMR_POOL_MAX_SESS + s)) | (1 << (2 * RMR_POOL_MAX_SESS + s))
}

/// Walks pages of a set of bitmap targets that are written as zeros.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct ZeroCursor {
    left: u32,
    page: usize,
}

impl ZeroCursor {
    /// The next (target, page) among `left`, `npages` pages each.
    fn next(&mut self, npages: usize) -> Option<(usize, usize)> {
        while self.left != 0 {
            let k = self.left.trailing_zeros() as usize;
            if self.page < npages {
                let p = self.page;
                self.page += 1;
                return Some((k, p));
            }
            self.left &= !(1 << k);
            self.page = 0;
        }
        None
    }
}

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
    /// The store persists the write-intent record, witness and lost maps (its format has
    /// their regions). Without, the pool keeps no write-intent record.
    pub intent_regions: bool,
    /// Record pages changed since the last round (bit per page).
    last_io_touched: u8,
    /// A record slot changed since the last [`ServerPool::md_need`].
    last_io_fresh: bool,
    /// `IntentRecord::persists` as of the last [`ServerPool::md_need`].
    intent_seen: u64,
    /// The `seq` at which a bitmap bit was last set (its round must flush; a round with
    /// only clears or the `last_io` record does not).
    bm_seq: u64,
    /// Completed flushes cleared `wi` bits: a round soon keeps the record small
    /// ([`ServerPool::md_lazy`]).
    pub(super) lazy: bool,
    /// The next round flushes the device before its first page ([`MdPlan::preflush`]).
    pub(super) preflush: bool,
    /// Bitmap targets that may hold set bits on disk (bit per target).
    nz: u32,
    /// This round's scrub (before the table) and zero pages (bitmaps without a map).
    scrub: ZeroCursor,
    zero: ZeroCursor,
    /// Rounds and pages written (statistics).
    pub rounds: u64,
    /// Map pages written.
    pub pages: u64,
    /// Record pages written.
    pub last_io_pages: u64,
    /// Write-intent record, witness and lost map pages written (zero pages included).
    pub intent_pages: u64,
}

impl MdLog {
    /// Nothing persisted, nothing pending.
    pub const fn new() -> Self {
        MdLog {
            seq: 0,
            durable: 0,
            slots: [0; RMR_POOL_MAX_SESS],
            last_io: [u64::MAX; RMR_MAX_QUEUE_DEPTH],
            intent_regions: true,
            last_io_touched: 0,
            last_io_fresh: false,
            intent_seen: 0,
            bm_seq: 0,
            lazy: false,
            preflush: false,
            nz: 0,
            scrub: ZeroCursor { left: 0, page: 0 },
            zero: ZeroCursor { left: 0, page: 0 },
            rounds: 0,
            pages: 0,
            last_io_pages: 0,
            intent_pages: 0,
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
    /// Slots passed to another member that may hold bits: their zero pages
    /// ([`ServerPool::md_next_scrub`]) must be durable (written and flushed) before the table.
    pub scrub: u8,
    /// The slot table changed: write the superblock (with this table) before any page.
    pub table: Option<[u32; RMR_POOL_MAX_SESS]>,
    /// Record pages to write (bit per page).
    pub last_io: u8,
    /// The table before this round (restored if the round fails).
    pub prev: [u32; RMR_POOL_MAX_SESS],
    /// The round ends with a flush (bits set, or the table changed); else its pages are only
    /// written back (lazy clears and the `last_io` record, which a kernel crash keeps).
    pub flush: bool,
    /// Flush the device before anything of this round is written: data this node holds
    /// unflushed must be durable before the change that made it the data's only holder (a
    /// MAP_ADD, cmd.rs, or a written-through write, io.rs, dropped the chunk's last witness).
    pub preflush: bool,
    /// Bitmap targets zeroed by this round (scrubbed, or without a map).
    zeroed: u32,
}

/// A bitmap page to write: region (`MD_MAP`, `MD_WITNESS`, `MD_LOST`, `MD_INTENT`), index
/// (on-disk slot, or record index), page index; its bytes are in the caller's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MdPage {
    /// Region.
    pub region: u32,
    /// On-disk map slot, or index inside [`MD_INTENT`].
    pub slot: usize,
    /// Page index inside the bitmap.
    pub page: usize,
}

impl<S: MapStorage + Default> ServerPool<S> {
    /// The store's capabilities, after [`Self::register`]: whether its device has a volatile
    /// write cache and whether its format persists the write-intent record. The record is
    /// kept only with both.
    pub fn set_store_caps(&mut self, volatile_cache: bool, intent_regions: bool) {
        self.mdlog.intent_regions = intent_regions;
        self.intent.volatile_cache = volatile_cache && intent_regions;
    }

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

    /// Bitmap targets this pool persists.
    fn targets(&self) -> usize {
        if self.mdlog.intent_regions {
            TARGETS
        } else {
            RMR_POOL_MAX_SESS
        }
    }

    /// The map bitmap target `k` persists under `slots`, if there is one.
    fn target_map(&mut self, k: usize, slots: &[u32; RMR_POOL_MAX_SESS]) -> Option<&mut DirtyMap<S>> {
        let (region, i) = target(k);
        let member = slots.get(i).copied().unwrap_or(0);
        match region {
            MD_MAP if member != 0 => self.maps.get_mut(member),
            MD_WITNESS if member != 0 => self.intent.witness.get_mut(member),
            MD_LOST if member != 0 => self.lost.get_mut(member),
            MD_INTENT => match i as u32 {
                INTENT_WI => self.intent.wi.as_mut(),
                INTENT_SUSPECT => self.intent.suspect.as_mut(),
                INTENT_LOST => self.intent.lost.as_mut(),
                _ => None,
            },
            _ => None,
        }
    }

    /// Targets that have a map now.
    fn targets_present(&mut self) -> u32 {
        let slots = self.mdlog.slots;
        (0..self.targets()).filter(|k| self.target_map(*k, &slots).is_some()).fold(0, |a, k| a | 1 << k)
    }

    /// Members whose bitmaps need a slot.
    fn slot_members(&self) -> MemberList {
        let mut l = self.maps.members();
        if self.mdlog.intent_regions {
            for m in self.intent.witness.members().iter().chain(self.lost.members().iter()) {
                if !l.contains(m) {
                    let _ = l.push(m);
                }
            }
        }
        l
    }

    /// The sequence a reply or write must wait for (a round covering it), if anything it may
    /// depend on is not durable yet. Call after the core call that may have set bits.
    pub fn md_need(&mut self) -> Option<u64> {
        let last_io = core::mem::take(&mut self.mdlog.last_io_fresh);
        let mut fresh = false;
        for m in self.maps.iter_mut() {
            fresh |= m.take_fresh();
        }
        if self.mdlog.intent_regions {
            if self.intent.persists != self.mdlog.intent_seen && !self.bug_intent_lazy {
                self.mdlog.intent_seen = self.intent.persists;
                fresh = true;
            }
            for m in self.lost.iter_mut() {
                fresh |= m.take_fresh();
            }
            fresh |= self.intent.lost.as_mut().is_some_and(|m| m.take_fresh());
        }
        let members = self.slot_members();
        if members.iter().any(|m| !self.mdlog.slots.contains(&m)) {
            fresh = true;
        }
        if fresh || last_io {
            self.mdlog.seq = self.mdlog.seq.wrapping_add(1);
        }
        if fresh {
            self.mdlog.bm_seq = self.mdlog.seq;
        }
        (self.mdlog.seq != self.mdlog.durable).then_some(self.mdlog.seq)
    }

    /// Completed flushes cleared bits of `wi` since the last round: the shell runs a round
    /// soon (not waited for), so that a crash finds few stale suspects.
    pub fn md_lazy(&mut self) -> bool {
        self.mdlog.lazy
    }

    /// Whether a round has anything to write (also lazily persisted clears).
    pub fn md_dirty(&mut self) -> bool {
        if self.md_need().is_some() || self.mdlog.last_io_touched != 0 || self.slot_table() != self.mdlog.slots {
            return true;
        }
        let slots = self.mdlog.slots;
        let present = self.targets_present();
        self.mdlog.nz & !present != 0
            || (0..self.targets()).any(|k| self.target_map(k, &slots).is_some_and(|m| m.has_touched()))
    }

    /// Whether slot `s` may hold bits on disk.
    fn slot_nz(&self, s: usize) -> bool {
        self.mdlog.nz & slot_targets(s) != 0
    }

    /// The slot table the current bitmaps need: members keep their slot, a slot whose member
    /// has no bitmap is freed, a new member takes a free slot (one holding no bits first).
    fn slot_table(&self) -> [u32; RMR_POOL_MAX_SESS] {
        let members = self.slot_members();
        let mut t = self.mdlog.slots;
        for s in t.iter_mut() {
            if *s != 0 && !members.contains(*s) {
                *s = 0;
            }
        }
        for m in members.iter() {
            if !t.contains(&m) {
                let clean = (0..RMR_POOL_MAX_SESS).find(|s| t.get(*s) == Some(&0) && !self.slot_nz(*s));
                let any = || t.iter().position(|s| *s == 0);
                if let Some(free) = clean.or_else(any).and_then(|i| t.get_mut(i)) {
                    *free = m;
                }
            }
        }
        t
    }

    /// Start a round (under the pool lock): what to write first. Bitmaps of members that get
    /// a new slot are written whole.
    pub fn md_begin(&mut self) -> MdPlan {
        let _ = self.md_need();
        let t = self.slot_table();
        let prev = self.mdlog.slots;
        let table = (t != prev).then_some(t);
        let mut scrub = 0u8;
        let mut zeroed = 0u32;
        for (s, (n, p)) in t.iter().zip(prev.iter()).enumerate() {
            if *n != 0 && n != p && self.slot_nz(s) && !self.bug_no_scrub {
                scrub |= 1 << s;
                zeroed |= slot_targets(s);
            }
        }
        let slot_mask = if self.mdlog.intent_regions { u32::MAX } else { (1 << RMR_POOL_MAX_SESS) - 1 };
        zeroed &= slot_mask;
        if table.is_some() {
            for k in 0..self.targets() {
                let (region, i) = target(k);
                let fresh_slot = region != MD_INTENT && t.get(i) != prev.get(i);
                if let Some(m) = self.target_map(k, &t).filter(|_| fresh_slot) {
                    m.touch_all();
                }
            }
            self.mdlog.slots = t;
        }
        let present = self.targets_present();
        // Bitmaps without a map that may hold bits are written as zeros; `wi` only once the
        // suspects it turned into are on disk (md_load_done).
        let mut zero = self.mdlog.nz & !present & !zeroed;
        if self.intent.suspect.as_ref().is_some_and(|s| s.has_touched()) {
            zero &= !(1 << (3 * RMR_POOL_MAX_SESS + INTENT_WI as usize));
        }
        self.mdlog.nz |= present;
        self.mdlog.scrub = ZeroCursor { left: zeroed, page: 0 };
        self.mdlog.zero = ZeroCursor { left: zero, page: 0 };
        let last_io = core::mem::take(&mut self.mdlog.last_io_touched);
        self.mdlog.lazy = false;
        let flush = table.is_some() || map_ver_seq_newer(self.mdlog.bm_seq, self.mdlog.durable);
        let preflush = core::mem::take(&mut self.mdlog.preflush);
        MdPlan { seq: self.mdlog.seq, scrub, table, last_io, prev, flush, preflush, zeroed: zeroed | zero }
    }

    /// Pages of one bitmap.
    fn md_npages(&self) -> usize {
        usize::try_from(self.total_chunks().div_ceil(super::super::dirtymap::PAGE_BITS)).unwrap_or(0)
    }

    /// The next zero page of this round's scrub ([`MdPlan::scrub`]), with `out` zeroed;
    /// `None` when all are handed out.
    pub fn md_next_scrub(&mut self, out: &mut [u8]) -> Option<MdPage> {
        let n = self.md_npages();
        let (k, page) = self.mdlog.scrub.next(n)?;
        let (region, slot) = target(k);
        out.fill(0);
        self.count_page(region);
        Some(MdPage { region, slot, page })
    }

    fn count_page(&mut self, region: u32) {
        if region == MD_MAP {
            self.mdlog.pages += 1;
        } else {
            self.mdlog.intent_pages += 1;
        }
    }

    /// The next changed bitmap page of this round, copied into `out` (`MD_PAGE_BYTES`) under
    /// the pool lock; `None` when all are handed out.
    pub fn md_next_page(&mut self, out: &mut [u8]) -> Option<MdPage> {
        let n = self.md_npages();
        while let Some((k, page)) = self.mdlog.zero.next(n) {
            let slots = self.mdlog.slots;
            if self.target_map(k, &slots).is_some() {
                // A map appeared meanwhile (written whole: it is new).
                self.mdlog.zero.left &= !(1 << k);
                self.mdlog.zero.page = 0;
                continue;
            }
            let (region, slot) = target(k);
            out.fill(0);
            self.count_page(region);
            return Some(MdPage { region, slot, page });
        }
        let slots = self.mdlog.slots;
        for k in 0..self.targets() {
            let Some(m) = self.target_map(k, &slots) else { continue };
            while let Some(page) = m.next_touched() {
                if m.page_bytes(page, out).is_ok() {
                    let (region, slot) = target(k);
                    self.count_page(region);
                    return Some(MdPage { region, slot, page });
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
        self.mdlog.scrub = ZeroCursor::default();
        self.mdlog.zero = ZeroCursor::default();
        if ok {
            if map_ver_seq_newer(plan.seq, self.mdlog.durable) {
                self.mdlog.durable = plan.seq;
            }
            let present = self.targets_present();
            self.mdlog.nz = (self.mdlog.nz & !plan.zeroed) | present;
        } else {
            self.mdlog.preflush |= plan.preflush;
            let slots = self.mdlog.slots;
            for k in 0..self.targets() {
                if let Some(m) = self.target_map(k, &slots) {
                    m.touch_all();
                }
            }
            self.mdlog.last_io_touched = (1 << MD_LAST_IO_PAGES) - 1;
            if plan.table.is_some() {
                // The table may not have reached the disk: the next round writes it again.
                // Pages written for the new table's members may sit in the old slots now.
                self.mdlog.slots = plan.prev;
                for s in 0..RMR_POOL_MAX_SESS {
                    if plan.table.and_then(|t| t.get(s).copied()) != plan.prev.get(s).copied() {
                        self.mdlog.nz |= slot_targets(s);
                    }
                }
            }
        }
    }

    /// Loading a store's metadata (`add_store mode=add`), after [`Self::register`] and
    /// [`Self::set_store_caps`]: install the on-disk slot table. Slots of members not in
    /// `pool_md` are dropped (their bitmaps are zeroed by the first round).
    pub fn md_load_table(&mut self, table: [u32; RMR_POOL_MAX_SESS]) {
        let members = self.md.members();
        let mut t = [0u32; RMR_POOL_MAX_SESS];
        for (d, s) in t.iter_mut().zip(table.iter()) {
            if *s != 0 && members.iter().any(|m| m == *s) {
                *d = *s;
            }
        }
        self.mdlog.slots = t;
        self.mdlog.nz = 0;
    }

    /// Loading: OR on-disk bitmap page `page` of `region` index `slot` into its map. Every
    /// bitmap page of the area is offered (free slots too, so that what they hold is known).
    pub fn md_load_page(&mut self, region: u32, slot: usize, page: usize, data: &[u8]) -> Result<()> {
        let Some(k) = target_of(region, slot).filter(|k| *k < self.targets()) else {
            return Err(Error::Inval);
        };
        if data.iter().all(|b| *b == 0) {
            return Ok(());
        }
        self.mdlog.nz |= 1 << k;
        let member = self.mdlog.slots.get(slot).copied().unwrap_or(0);
        let total = self.total_chunks();
        if page >= self.md_npages() {
            return Err(Error::Range);
        }
        let volatile = self.intent.volatile_cache;
        let m = match (region, slot as u32) {
            (MD_MAP, _) if member != 0 => self.maps.ensure(member, total)?,
            (MD_LOST, _) if member != 0 => self.lost.ensure(member, total)?,
            (MD_WITNESS, _) if member != 0 && member != self.member_id && volatile => {
                self.intent.witness.ensure(member, total)?
            }
            // `wi` and `suspect` both come back as suspects.
            (MD_INTENT, INTENT_WI | INTENT_SUSPECT) if volatile => {
                IntentRecord::map(&mut self.intent.suspect, &mut self.intent.spares, total)?
            }
            (MD_INTENT, INTENT_LOST) if volatile => IntentRecord::map(&mut self.intent.lost, &mut self.intent.spares, total)?,
            _ => return Ok(()),
        };
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

    /// Loading done: what was loaded equals the disk. A witness counts only for a chunk in
    /// the record (suspect). `wi` came back as suspects, so the suspect bitmap is written
    /// whole by the first round (which the shell runs before the store serves); the `wi`
    /// bitmap is zeroed only by a later one ([`Self::md_begin`]), so the disk never holds less
    /// than the record it was loaded with.
    pub fn md_load_done(&mut self) {
        if let Some(s) = self.intent.suspect.as_ref() {
            for w in self.intent.witness.iter_mut() {
                let mut c = 0;
                while let Some(x) = w.next_dirty(c) {
                    if !s.test(x) {
                        w.clear(x);
                    }
                    c = x.saturating_add(1);
                }
            }
        } else {
            self.intent.witness.remove_all();
        }
        let slots = self.mdlog.slots;
        for k in 0..self.targets() {
            if let Some(m) = self.target_map(k, &slots) {
                m.mark_saved();
            }
        }
        if let Some(s) = self.intent.suspect.as_mut() {
            s.touch_all();
        }
        // Maps of members without a slot (not on disk): written by the first round.
        for m in self.maps.iter_mut() {
            if !slots.contains(&m.member_id()) {
                let _ = m.take_fresh();
            }
        }
        self.mdlog.last_io_touched = 0;
        self.mdlog.last_io_fresh = false;
        self.mdlog.intent_seen = self.intent.persists;
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
        disk: std::collections::BTreeMap<(u32, usize, usize), Vec<u8>>,
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
            let mut buf = vec![0u8; MD_PAGE_BYTES];
            while let Some(pg) = p.md_next_scrub(&mut buf) {
                self.disk.insert((pg.region, pg.slot, pg.page), buf.clone());
            }
            if let Some(t) = plan.table {
                self.table = t;
            }
            while let Some(pg) = p.md_next_page(&mut buf) {
                self.disk.insert((pg.region, pg.slot, pg.page), buf.clone());
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
        assert_eq!(a.disk.get(&(MD_MAP, 1, 0)).unwrap()[1], 2, "chunk 9 = bit 1 of byte 1");
        // A clear needs no wait but is written by the next round.
        p.maps.get_mut(43).unwrap().clear(9);
        assert_eq!(p.md_need(), None);
        assert!(p.md_dirty());
        a.round(&mut p);
        assert!(a.disk.get(&(MD_MAP, 1, 0)).unwrap().iter().all(|b| *b == 0));
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
        assert_eq!(a.disk.get(&(MD_MAP, 0, 0)).unwrap()[0], 8);
    }

    #[test]
    fn maps_load_into_their_members() {
        let mut p = normal_pool();
        let mut a = Area::new();
        p.md.add_member(43).unwrap();
        p.maps.ensure(43, p.total_chunks()).unwrap().set(5, 0).unwrap();
        p.maps.get_mut(42).unwrap().set(6, 0).unwrap();
        a.round(&mut p);
        let mut q = load(&a, &p);
        assert!(q.maps.get(43).unwrap().test(5) && q.maps.get(42).unwrap().test(6));
        assert_eq!(q.maps.get(43).unwrap().count() + q.maps.get(42).unwrap().count(), 2);
        assert!(!q.md_dirty(), "a loaded pool has nothing to write");
    }

    fn load(a: &Area, p: &ServerPool<VecStorage>) -> ServerPool<VecStorage> {
        let mut q = normal_pool();
        q.md = p.md;
        q.md_load_table(a.table);
        for ((region, slot, page), data) in a.disk.iter() {
            q.md_load_page(*region, *slot, *page, data).unwrap();
        }
        q.md_load_done();
        q
    }

    fn wr(chunk: u64, mem_id: u16) -> IoMsg {
        use crate::wire::{RmrId, IO_WRITE};
        IoMsg { id: RmrId::chunk(chunk), mem_id, flags: IO_WRITE, offset: 0, len: 4096, map_ver: 0, members: MemberList::new() }
    }

    fn bit(a: &Area, region: u32, slot: usize, chunk: usize) -> bool {
        a.disk.get(&(region, slot, 0)).is_some_and(|d| d[chunk / 8] & (1 << (chunk % 8)) != 0)
    }

    /// A new `wi` bit and a witness change are durable before their write is submitted; a
    /// store loads them back as suspects with their witnesses.
    #[test]
    fn the_write_intent_record_is_durable_before_its_write() {
        let mut p = normal_pool();
        p.md.add_member(43).unwrap();
        let mut a = Area::new();
        a.round(&mut p);
        assert_eq!(p.on_io(&wr(3, 0), 0), IoDecision::Submit);
        assert!(p.md_need().is_some(), "a new wi bit waits for a round");
        a.round(&mut p);
        assert!(bit(&a, MD_INTENT, INTENT_WI as usize, 3));
        let w = a.table.iter().position(|m| *m == 43).expect("the witness has a slot");
        assert!(bit(&a, MD_WITNESS, w, 3), "43 is clean here: it received the write too");
        // The same write again changes nothing durable.
        assert_eq!(p.on_io(&wr(3, 0), 0), IoDecision::Submit);
        assert_eq!(p.md_need(), None);
        // 43 misses a write: its witness bit goes, and that must be durable too.
        p.maps.ensure(43, p.total_chunks()).unwrap().set(3, 0).unwrap();
        let _ = p.md_need();
        a.round(&mut p);
        assert!(matches!(p.on_io(&wr(3, 0), 0), IoDecision::Submit | IoDecision::SubmitFua));
        assert!(p.md_need().is_some(), "a cleared witness bit is not conservative");
        a.round(&mut p);
        assert!(!bit(&a, MD_WITNESS, w, 3));
        // Reload: the record comes back as suspects.
        let mut b = Area { disk: a.disk.clone(), table: a.table, rec: a.rec.clone() };
        let mut q = load(&b, &p);
        assert!(q.intent.suspect.as_ref().is_some_and(|s| s.test(3)));
        assert!(q.intent.wi.is_none());
        // The first round writes the suspects whole and keeps `wi` on disk; the next zeroes it.
        b.round(&mut q);
        assert!(bit(&b, MD_INTENT, INTENT_SUSPECT as usize, 3));
        assert!(bit(&b, MD_INTENT, INTENT_WI as usize, 3), "wi zeroed in the round that writes the suspects");
        assert!(q.md_dirty());
        b.round(&mut q);
        assert!(!bit(&b, MD_INTENT, INTENT_WI as usize, 3));
        assert!(bit(&b, MD_INTENT, INTENT_SUSPECT as usize, 3));
        assert!(!q.md_dirty());
    }

    #[test]
    fn witnesses_load_only_for_recorded_chunks() {
        let mut p = normal_pool();
        p.md.add_member(43).unwrap();
        let mut a = Area::new();
        assert_eq!(p.on_io(&wr(3, 0), 0), IoDecision::Submit);
        a.round(&mut p);
        // A witness bit on disk for a chunk outside the record (cleared lazily) is dropped.
        let w = a.table.iter().position(|m| *m == 43).unwrap();
        a.disk.get_mut(&(MD_WITNESS, w, 0)).unwrap()[0] |= 1 << 6;
        let q = load(&a, &p);
        assert!(q.intent.is_witness(43, 3));
        assert!(!q.intent.is_witness(43, 6));
    }

    /// A slot that may hold witness bits is zeroed, and that is flushed, before the table
    /// gives it to another member.
    #[test]
    fn a_slot_is_scrubbed_before_it_passes_to_another_member() {
        let mut p = normal_pool();
        p.md.add_member(43).unwrap();
        let total = p.total_chunks();
        let mut a = Area::new();
        assert_eq!(p.on_io(&wr(3, 0), 0), IoDecision::Submit);
        p.maps.ensure(44, total).unwrap();
        p.maps.ensure(45, total).unwrap();
        a.round(&mut p);
        let w = a.table.iter().position(|m| *m == 43).unwrap();
        assert!(a.table.iter().all(|m| *m != 0), "every slot is used");
        // 43 is forgotten (an untracked flush drops every witness) and 46 needs a slot.
        p.intent.witness.remove_all();
        p.intent.persists += 1;
        p.maps.ensure(46, total).unwrap();
        let plan = p.md_begin();
        assert_eq!(plan.scrub, 1 << w);
        assert_eq!(plan.table.map(|t| t[w]), Some(46));
        let mut buf = vec![0u8; MD_PAGE_BYTES];
        let mut scrubbed = Vec::new();
        while let Some(pg) = p.md_next_scrub(&mut buf) {
            assert!(buf.iter().all(|b| *b == 0));
            scrubbed.push((pg.region, pg.slot));
        }
        assert!(scrubbed.contains(&(MD_WITNESS, w)) && scrubbed.contains(&(MD_MAP, w)) && scrubbed.contains(&(MD_LOST, w)));
        while p.md_next_page(&mut buf).is_some() {}
        p.md_end(&plan, true);
        // A free slot that holds no bits is taken without a scrub.
        p.maps.remove(46);
        a.round(&mut p);
        p.maps.ensure(47, total).unwrap();
        assert_eq!(p.md_begin().scrub, 0);
    }

    /// A store without the record's regions keeps no record and writes maps only.
    #[test]
    fn a_store_without_the_regions_keeps_no_record() {
        let mut p = normal_pool();
        p.set_store_caps(true, false);
        assert!(!p.intent.volatile_cache);
        let mut a = Area::new();
        assert_eq!(p.on_io(&wr(3, 0), 0), IoDecision::Submit);
        a.round(&mut p);
        assert!(a.disk.keys().all(|(r, _, _)| *r == MD_MAP));
        assert_eq!(p.md_load_page(MD_WITNESS, 0, 0, &buf_with(1)), Err(Error::Inval));
    }

    fn buf_with(b: u8) -> Vec<u8> {
        let mut v = vec![0u8; MD_PAGE_BYTES];
        v[0] = b;
        v
    }
}
