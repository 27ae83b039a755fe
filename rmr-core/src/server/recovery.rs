// SPDX-License-Identifier: GPL-2.0-or-later
//! Sync completion, suspect and lost chunks, last-IO, and the choice of a sync source.

use super::*;

/// The `read_errno` a shell passes to [`ServerPool::finish_sync`] when no peer could provide
/// the chunk: no sync pool is attached yet, [`ServerPool::sync_source`] found none, or every
/// source it offered failed. The parked IOs get it: the node's copy is stale, nothing else is
/// wrong with it, and a client reading the chunk tries another leg without failing this one
/// ([`crate::client::ReadOutcome::NotHere`]; SPEC §5.2). A failed local write of the synced
/// data is a backend error instead (-EIO).
pub const SYNC_NO_SOURCE: Errno = Errno::ENODATA;

impl<S: MapStorage + Default> ServerPool<S> {
    /// A sync job of `chunk` ended (§5.3 step 4, §7); `read_errno` is 0 when the chunk was
    /// read from a peer and written here, else the failure (negative errno). Clears the bit
    /// when that is still safe ([`ServerPool::on_sync_done`]) and says what to do with the
    /// parked IOs and whom to tell.
    pub fn finish_sync(&mut self, chunk: u64, read_errno: i32, waiters: &mut [u16]) -> SyncDone {
        let (n, cleared) = self.on_sync_done(chunk, read_errno, waiters);
        let waiter_errno = if read_errno < 0 { read_errno } else { Error::Io.errno() };
        let map_clear =
            cleared.then_some(Cmd::MapClear { member_id: self.member_id, chunk, map_ver: self.md.map_ver });
        SyncDone { waiters: n, cleared, waiter_errno, map_clear }
    }

    /// The members a MAP_CLEAR after a sync goes to: every peer in `peers` (the members behind
    /// the sync pool's NORMAL legs) but this node.
    pub fn map_clear_peers(&self, peers: &MemberList) -> MemberList {
        let mut out = MemberList::new();
        for m in peers.iter().filter(|m| *m != self.member_id) {
            let _ = out.push(m);
        }
        out
    }

    /// A sync of `chunk` finished, `read_errno` 0 when its data was written locally. The own
    /// bit is cleared only if the pool is still NORMAL (leaving NORMAL fails outstanding
    /// syncs, §7). Returns (waiters written to `waiters`, cleared). Shells call
    /// [`ServerPool::finish_sync`].
    pub(super) fn on_sync_done(&mut self, chunk: u64, read_errno: i32, waiters: &mut [u16]) -> (usize, bool) {
        let ok = read_errno == 0;
        // [sim] Also fail a sync that started before the pool last left NORMAL: its data may
        // predate writes that piggybacked this node meanwhile (seed 199911).
        let ok = ok && self.state == SrvState::Normal && self.sync.epoch_of(chunk) == Some(self.epoch);
        if ok {
            if let Some(m) = self.maps.get_mut(self.member_id) {
                m.clear(chunk);
            }
            if let Some(l) = self.intent.lost.as_mut() {
                l.clear(chunk);
            }
            if let Some(l) = self.lost.get_mut(self.member_id) {
                l.clear(chunk);
            }
        }
        let writes = self.sync.writes_parked(chunk);
        let n = self.sync.finish(chunk, waiters);
        if !ok && n > 0 && (writes || read_errno != SYNC_NO_SOURCE.to_kernel()) {
            // [improvement] The waiters get an error reply, which the client treats as a leg
            // failure: stop claiming complete maps (and serving peers) until a map update.
            // Not when only reads wait and no peer could provide the chunk: nothing is wrong
            // with this node, the chunk stays dirty here, and the client reads another leg
            // and keeps this one (§5.2). A waiting write fails its leg at the client, whose
            // marks this node then misses (simulator seed 1929).
            let _ = self.on_fault();
        }
        (n, ok)
    }

    /// A store ADD found `chunk` in the durable record of chunks this node lost.
    pub fn restore_lost(&mut self, chunk: u64) -> Result<()> {
        self.restore_bit(chunk, true)
    }

    /// Set `chunk` in the record's lost map (`lost`) or suspect map, from the durable record.
    pub(super) fn restore_bit(&mut self, chunk: u64, lost: bool) -> Result<()> {
        let total = self.total_chunks();
        if chunk >= total {
            return Err(Error::Range);
        }
        if !self.intent.volatile_cache {
            return Ok(());
        }
        let rec = &mut self.intent;
        let m = if lost { &mut rec.lost } else { &mut rec.suspect };
        IntentRecord::map(m, &mut rec.spares, total)?.set(chunk, 0)?;
        Ok(())
    }

    /// A store ADD found `member` recorded as a witness of `chunk` in the durable record.
    pub fn restore_witness(&mut self, member: u32, chunk: u64) -> Result<()> {
        let total = self.total_chunks();
        if chunk >= total || member == 0 || member == self.member_id {
            return Err(Error::Range);
        }
        if !self.intent.volatile_cache {
            return Ok(());
        }
        self.intent.witness.ensure(member, total)?.set(chunk, 0)?;
        Ok(())
    }

    /// A store ADD found `chunk` in the durable write-intent record: this node may have lost
    /// writes there (power loss). The chunk stays suspect until resolved and NORMAL.
    pub fn restore_suspect(&mut self, chunk: u64) -> Result<()> {
        self.restore_bit(chunk, false)
    }

    /// [improvement] Resolve the suspects (chunks this node may have lost in a power loss):
    /// each becomes dirty in the own map unless the own map has it already or every other
    /// member is dirty there (then this node's copy is the best the pool has; a write every
    /// holder lost unflushed may legitimately vanish). Works on the staged maps during a map
    /// update, else on the live maps. Returns whether the own map grew. Suspects stay until
    /// the pool enters NORMAL, so a failed attempt is resolved again by the next one.
    pub fn resolve_suspects(&mut self, now: u64) -> Result<bool> {
        let total = self.total_chunks();
        let own = self.member_id;
        let members = self.md.members();
        if self.intent.suspect.as_ref().is_none_or(|s| s.is_empty()) {
            return Ok(false);
        }
        let (maps, lost) = match self.staging.as_mut() {
            Some(st) => (st, &mut self.staging_lost),
            None => (&mut self.maps, &mut self.lost),
        };
        resolve_into(maps, lost, &mut self.intent, own, members, total, now)
    }

    /// Pick the peer to read `chunk` from: a listed peer (NORMAL sync leg) whose peer map does
    /// not have the chunk dirty.
    pub fn sync_source(&self, chunk: u64, peers: &MemberList, skip: &MemberList) -> Option<u32> {
        peers.iter().find(|p| {
            *p != self.member_id
                && !skip.contains(*p)
                && !self.maps.get(*p).is_some_and(|m| m.test(chunk))
        })
    }

    /// Convert `last_io` into dirty bits (RMR_CMD_LAST_IO_TO_MAP, §6.6 step 3).
    /// [improvement] Suspects are resolved first, so the skip rule keeps a chunk this node may
    /// have lost in a power loss from being pushed onto the others.
    pub fn last_io_to_map(&mut self, now: u64) -> Result<()> {
        if self.staging.is_none() {
            self.resolve_suspects(now)?;
        }
        let total = self.total_chunks();
        let own = self.member_id;
        let mut members = self.md.members();
        for m in self.maps.members().iter() {
            let _ = members.push(m);
        }
        for i in 0..RMR_MAX_QUEUE_DEPTH {
            let c = self.last_io.get(i).copied().unwrap_or(u64::MAX);
            if c == u64::MAX || c >= total {
                continue;
            }
            let own_dirty = self.maps.get(own).is_some_and(|m| m.test(c));
            if own_dirty && !self.bug_last_io_no_skip {
                continue;
            }
            for m in members.iter().filter(|m| *m != own) {
                self.maps.ensure(m, total)?.set(c, now)?;
            }
        }
        // [change from SPEC's choice] last_io is NOT emptied here: if this update fails
        // before the marks reach the other nodes, a later update whose initial spread
        // overwrites this node's maps would lose them (seed 4944). It is emptied when the pool
        // enters NORMAL, when the marks are part of the authoritative maps.
        Ok(())
    }
}
