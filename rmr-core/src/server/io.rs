// SPDX-License-Identifier: GPL-2.0-or-later
//! The IO decision of a server pool (SPEC §5.3) and the write-intent record's part in it.

use super::*;

impl<S: MapStorage + Default> ServerPool<S> {
    /// The IO decision (§5.3 steps 1-5, 7). For writes the piggybacked members are marked in
    /// their peer maps first. Parks `mem_id` where needed.
    pub fn on_io(&mut self, io: &IoMsg, now: u64) -> IoDecision {
        let chunk = io.id.b;
        let total = self.total_chunks();
        // [choice] A peer's sync read needs NORMAL and a registered store, not MAPPED: the
        // admin guide syncs a new node (SPEC §12.1 step 15) before the device is first mapped
        // (step 16), when no store is MAPPED yet.
        let sync_read = io.flags & IO_SYNC != 0;
        let allowed = if sync_read { self.state == SrvState::Normal && self.store } else { self.serving() };
        if !allowed {
            return IoDecision::Reject(Error::Io);
        }
        if chunk >= total || !self.io_in_bounds(io) {
            return IoDecision::Reject(Error::Inval);
        }
        let own_dirty = self.maps.get(self.member_id).is_some_and(|m| m.test(chunk));
        if io.flags & IO_SYNC != 0 {
            return if own_dirty || self.sync.syncing(chunk) {
                IoDecision::Reject(Error::Again)
            } else {
                IoDecision::Submit
            };
        }
        if io.is_write() && map_ver_gt(io.map_ver, self.md.map_ver) {
            self.md.map_ver = io.map_ver;
        }
        if !own_dirty {
            // [improvement] Piggybacked members are marked when the write is actually
            // submitted (still before the ack): a write parked behind a sync that then fails
            // must not leave a chunk dirty for every member, which no sync could ever clean.
            if io.is_write() {
                for m in io.members.iter().filter(|m| *m != self.member_id) {
                    if let Err(e) = self.maps.ensure(m, total).and_then(|map| map.set(chunk, now)) {
                        return IoDecision::Reject(e);
                    }
                }
                if io.len > 0 {
                    // [improvement] Recorded before the write is submitted (persist.rs).
                    self.record_last_io(io.mem_id, chunk);
                }
                if !self.intent.volatile_cache {
                    return IoDecision::Submit;
                }
                // The other members clean here (the piggybacked ones are marked by now).
                let clean = self.clean_others(chunk);
                let promote = self.must_persist(io, &clean);
                // [improvement] A written-through write resets the chunk's witnesses. If the
                // chunk still has unflushed data here that witnesses hold, that data must be
                // durable before the reset is: the round that persists the reset flushes the
                // device first (MdPlan::preflush), and the write waits for it. (A preflush on
                // the write itself would come after the reset is on disk: a failed or lost
                // flush would leave this node's older data without its witnesses, soak seed
                // 46993.) A write may cover only part of the chunk.
                let through = promote || io.flags & IO_FUA != 0;
                let preflush = through
                    && io.flags & IO_FLUSH == 0
                    && io.len > 0
                    && clean.is_empty()
                    && self.intent.unflushed_witnessed(chunk);
                if preflush && !self.bug_no_preflush {
                    self.mdlog.preflush = true;
                }
                if let Err(e) = self.intent_submit(io, io.flags, promote, &clean) {
                    return IoDecision::Reject(e);
                }
                if promote {
                    return IoDecision::SubmitFua;
                }
            }
            return IoDecision::Submit;
        }
        if self.sync.syncing(chunk) {
            return match self.sync.park(chunk, io.mem_id, io.flags & (IO_WRITE | IO_DISCARD) != 0) {
                Ok(()) => IoDecision::Park,
                Err(e) => IoDecision::Reject(e),
            };
        }
        match self.sync.start(chunk, self.epoch).and_then(|()| self.sync.park(chunk, io.mem_id, io.flags & (IO_WRITE | IO_DISCARD) != 0)) {
            Ok(()) => IoDecision::SyncFirst,
            Err(e) => IoDecision::Reject(e),
        }
    }

    /// Whether `io` stays inside its chunk and inside the exported device (a server never
    /// touches sectors beyond `mapped_size`).
    pub fn io_in_bounds(&self, io: &IoMsg) -> bool {
        let cs = u64::from(self.md.chunk_size);
        let end_in_chunk = u64::from(io.offset) + u64::from(io.len);
        let dev_bytes = self.md.mapped_size.saturating_mul(512);
        cs != 0
            && end_in_chunk <= cs
            && io.id.b.checked_mul(cs).and_then(|o| o.checked_add(end_in_chunk)).is_some_and(|e| e <= dev_bytes)
    }

    /// Byte offset of `io` in the exported device (valid after [`Self::io_in_bounds`]).
    pub fn io_byte_offset(&self, io: &IoMsg) -> u64 {
        io.id.b.saturating_mul(u64::from(self.md.chunk_size)).saturating_add(u64::from(io.offset))
    }

    /// Backend completion of a non-sync IO (§5.3 step 6). A successful write records
    /// `last_io[mem_id]` (the shell persists that slot before replying); an error → NO_IO.
    pub fn on_io_done(&mut self, io: &IoMsg, ok: bool) -> SrvEffects {
        if io.is_write() && io.flags & IO_SYNC == 0 {
            if let Some(s) = self.intent.inflight.get_mut(usize::from(io.mem_id)) {
                *s = u64::MAX;
            }
            if io.flags & IO_FLUSH != 0 {
                let cleared = self.intent.cleared;
                self.intent.flush_done(io.mem_id, ok);
                self.mdlog.lazy |= self.intent.cleared != cleared;
            }
        }
        if ok {
            if io.is_write() && io.flags & IO_SYNC == 0 {
                if let Some(s) = self.last_io.get_mut(usize::from(io.mem_id)) {
                    *s = io.id.b;
                }
            }
            SrvEffects::default()
        } else {
            self.io_allowed = false;
            self.on_fault()
        }
    }

    /// [improvement] Whether a plain (non-FUA) client write must be made durable here before
    /// it is acknowledged, on a store with a volatile cache: another member receives the write
    /// too (it is not piggybacked), yet this node's map has every such member dirty at the
    /// chunk. Such a mark may be conservative (a MAP_CLEAR lost or refused for its older
    /// `map_ver`), so the peer may really hold the write; but after a power loss here nothing
    /// could show that, and suspect resolution would keep this node's older copy. Writing it
    /// through closes that. Called after the piggybacked members are marked.
    /// `clean`: the other members clean at the chunk here, after the piggybacked members were
    /// marked (so every clean member is a receiver).
    pub fn must_persist(&self, io: &IoMsg, clean: &MemberList) -> bool {
        if !self.intent.volatile_cache || io.flags & (IO_FUA | IO_SYNC) != 0 || !io.is_write() || io.len == 0 {
            return false;
        }
        clean.is_empty() && self.md.members().iter().any(|m| m != self.member_id && !io.members.contains(m))
    }

    /// Record a client write about to be submitted in the write-intent record: a preflush
    /// starts tracking the chunks it covers, a plain data write sets its `wi` bit unless it is
    /// written through (`fua`: promoted by [`Self::must_persist`]).
    pub(super) fn intent_submit(&mut self, io: &IoMsg, flags: u16, fua: bool, clean: &MemberList) -> Result<()> {
        let total = self.total_chunks();
        if flags & IO_FLUSH != 0 {
            self.intent.flush_issued(io.mem_id, total, self.sync.chunks())?;
        }
        if io.len > 0 || flags & IO_FLUSH == 0 {
            if let Some(s) = self.intent.inflight.get_mut(usize::from(io.mem_id)) {
                *s = io.id.b;
            }
            // Every data write of a recorded chunk renews its witnesses (an FUA write too: the
            // members clean here now hold everything acknowledged there, this one included).
            let record = flags & IO_FUA == 0 && !fua;
            let c = io.id.b;
            let in_wi = self.intent.wi.as_ref().is_some_and(|m| m.test(c));
            if record || in_wi {
                // Witnesses of an earlier write are kept across an unwitnessed one only while
                // no flush was issued since: a flush covering the unwitnessed write makes this
                // node's copy newer than theirs.
                let reset = !record || !in_wi || self.intent.in_closed_epoch(c);
                self.intent.witnessed(c, total, clean, reset)?;
            }
            if record {
                self.intent.write(c, total)?;
            }
        }
        Ok(())
    }

    /// [improvement] A sync write of `chunk` (a plain write of the synced data, §5.3 step 4) is
    /// about to be submitted: record it like a client write. Returns whether the `wi` bit is
    /// new (the shell persists it first). On error the shell fails the sync.
    pub fn sync_write_intent(&mut self, chunk: u64) -> Result<bool> {
        let total = self.total_chunks();
        if chunk >= total {
            return Err(Error::Range);
        }
        if !self.intent.volatile_cache {
            return Ok(false);
        }
        let clean = self.clean_others(chunk);
        let in_wi = self.intent.wi.as_ref().is_some_and(|m| m.test(chunk));
        let reset = !in_wi || self.intent.in_closed_epoch(chunk);
        self.intent.witnessed(chunk, total, &clean, reset)?;
        self.intent.write(chunk, total)
    }

    /// The other pool members whose map is clean at `chunk` here.
    pub(super) fn clean_others(&self, chunk: u64) -> MemberList {
        let mut l = MemberList::new();
        for m in self.md.members().iter().filter(|m| *m != self.member_id) {
            if !self.maps.get(m).is_some_and(|x| x.test(chunk)) {
                let _ = l.push(m);
            }
        }
        l
    }
}
