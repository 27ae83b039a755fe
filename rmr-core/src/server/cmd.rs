// SPDX-License-Identifier: GPL-2.0-or-later
//! Commands to a server pool (SPEC §6): the handler, MAP_SEND pieces, map checks.

use super::*;

impl<S: MapStorage + Default> ServerPool<S> {
    /// Answer to MAP_CHECK (§6.8): "empty" only in NORMAL with a clean own map and
    /// [improvement] a `map_ver` not older than the asker's (a member that missed a failure
    /// transition cannot vouch for itself).
    pub fn map_check_answer(&self, asker_ver: u64) -> bool {
        self.state == SrvState::Normal
            && self.maps.get(self.member_id).is_none_or(|m| m.is_empty())
            && !map_ver_gt(asker_ver, self.md.map_ver)
    }

    /// Handle a command from a client (or, for MAP_CHECK/MAP_CLEAR, a peer). `sync` = the
    /// session is a sync session. MAP_SEND pieces are serialised into `piece_buf`.
    pub fn handle_cmd<'b>(
        &mut self,
        cmd: &Cmd<'_>,
        sync: bool,
        now: u64,
        piece_buf: &'b mut [u8; PIECE_BYTES],
    ) -> (CmdRsp<'b>, SrvEffects) {
        let ty = cmd.ty();
        let mut fx = SrvEffects::default();
        let r = self.handle_inner(cmd, sync, now, piece_buf, &mut fx);
        match r {
            Ok(body) => (CmdRsp::ok(ty, body), fx),
            Err(e) => (CmdRsp::err(ty, e), fx),
        }
    }

    pub(super) fn handle_inner<'b>(
        &mut self,
        cmd: &Cmd<'_>,
        sync: bool,
        now: u64,
        piece_buf: &'b mut [u8; PIECE_BYTES],
        fx: &mut SrvEffects,
    ) -> Result<RspBody<'b>> {
        let total = self.total_chunks();
        match cmd {
            Cmd::JoinPool(j) | Cmd::RejoinPool(j) => {
                let rejoin = matches!(cmd, Cmd::RejoinPool(_));
                let kind = match (j.sync, j.create, rejoin) {
                    (true, _, _) => JoinKind::Sync,
                    (false, true, _) => JoinKind::Create,
                    (false, false, true) => JoinKind::Rejoin,
                    (false, false, false) => JoinKind::Assemble,
                };
                let to = join_decision(self.state, self.marked_create, kind)?;
                if kind == JoinKind::Create {
                    self.md.chunk_size = j.chunk_size;
                    self.md.queue_depth = j.queue_depth;
                    let total = self.total_chunks();
                    self.maps.ensure(self.member_id, total)?;
                    for m in j.members.iter() {
                        self.md.add_member(m)?;
                        self.maps.ensure(m, total)?;
                    }
                    self.marked_create = false;
                    fx.persist_md = true;
                } else if j.chunk_size != self.md.chunk_size || j.queue_depth != self.md.queue_depth
                {
                    return Err(Error::Inval);
                }
                if kind == JoinKind::Assemble {
                    // [choice] A fresh assemble comes from a client that has no maintenance
                    // state (it restarted): a stale flag would block every map update.
                    self.maintenance = false;
                }
                if kind == JoinKind::Sync {
                    self.sync_sessions = self.sync_sessions.saturating_add(1);
                } else {
                    self.sessions = self.sessions.saturating_add(1);
                }
                self.set_state(to, fx);
                Ok(RspBody::Join {
                    member_id: self.member_id,
                    version: RMR_PROTO_VERSION,
                    mapped_size: self.md.mapped_size,
                })
            }
            Cmd::EnablePool { enable } => {
                if *enable {
                    match self.state {
                        SrvState::Created => self.set_state(SrvState::Normal, fx),
                        SrvState::NoIo if self.maintenance => self.maintenance = false,
                        SrvState::NoIo => self.set_state(SrvState::Normal, fx),
                        SrvState::Normal => {}
                        _ => return Err(Error::Perm),
                    }
                } else {
                    self.maintenance = true;
                    if self.state == SrvState::Normal {
                        self.set_state(SrvState::NoIo, fx);
                    }
                }
                Ok(RspBody::Empty)
            }
            Cmd::LeavePool { delete } => {
                if *delete {
                    let own = self.member_id;
                    for m in self.maps.members().iter().filter(|m| *m != own) {
                        self.forget_member(m);
                    }
                    fx.persist_md = true;
                }
                let f = self.on_session_gone(sync);
                fx.state_changed |= f.state_changed;
                fx.stop_sync |= f.stop_sync;
                Ok(RspBody::Empty)
            }
            Cmd::PoolInfo { member_id, op, dirty } => {
                match op {
                    InfoOp::AddCreate => {
                        // A new member with this id has none of an earlier one's past.
                        self.lost.remove(*member_id);
                        self.intent.witness.remove(*member_id);
                        self.md.add_member(*member_id)?;
                        let map = self.maps.ensure(*member_id, total)?;
                        if *dirty {
                            map.set_all(now)?;
                        }
                    }
                    InfoOp::AddAssemble => {
                        if self.maps.get(*member_id).is_none() {
                            return Err(Error::NoEnt);
                        }
                    }
                    InfoOp::RemoveDelete => {
                        if *member_id == self.member_id {
                            return Err(Error::Inval);
                        }
                        self.forget_member(*member_id);
                    }
                    InfoOp::RemoveDisassemble => {}
                }
                fx.persist_md = true;
                Ok(RspBody::Empty)
            }
            Cmd::MapReady => {
                let mut st = MapSet::new();
                if let Some(mut old) = self.staging.take() {
                    old.remove_all();
                    old.give_spares(&mut st);
                }
                self.staging_spares.give_spares(&mut st);
                self.staging = Some(st);
                self.staging_lost.remove_all();
                Ok(RspBody::Empty)
            }
            Cmd::MapSend { receiver: _, cursor } => self.map_send(*cursor, piece_buf),
            Cmd::SendMapBuf(p) => {
                let st = self.staging.as_mut().ok_or(Error::Proto)?;
                let (st, member) = match p.member & !LOST_PIECE {
                    0 => return Err(Error::Proto),
                    m if p.member & LOST_PIECE != 0 => (&mut self.staging_lost, m),
                    m => (st, m),
                };
                st.ensure(member, total)?.apply_piece(p.page as usize, p.data)?;
                Ok(RspBody::Empty)
            }
            Cmd::MapBufDone { members } => {
                let st = self.staging.as_mut().ok_or(Error::Proto)?;
                for m in members.iter() {
                    st.ensure(m, total)?;
                }
                Ok(RspBody::Empty)
            }
            Cmd::MapDone { enable, map_ver } => {
                let mut st = self.staging.take().ok_or(Error::Proto)?;
                if *enable && self.maintenance {
                    return Err(Error::Perm);
                }
                if *enable && !matches!(self.state, SrvState::NoIo | SrvState::Created | SrvState::Normal) {
                    return Err(Error::Perm);
                }
                st.ensure(self.member_id, total)?;
                self.maps.swap(&mut st);
                st.remove_all();
                // The replaced maps' storages serve the next new map or staging.
                st.give_spares(&mut self.maps);
                st.give_spares(&mut self.staging_spares);
                self.lost.swap(&mut self.staging_lost);
                self.staging_lost.remove_all();
                // [improvement] Chunks this node lost in a power loss stay dirty and lost for it.
                if let Some(l) = self.intent.lost.as_ref().filter(|l| !l.is_empty()) {
                    let m = self.maps.ensure(self.member_id, total)?;
                    let ml = self.lost.ensure(self.member_id, total)?;
                    for c in l.iter().filter(|c| *c < total) {
                        m.set(c, now)?;
                        ml.set(c, 0)?;
                    }
                }
                for m in self.maps.members().iter() {
                    self.md.add_member(m)?;
                }
                self.md.map_ver = *map_ver;
                if *enable {
                    self.set_state(SrvState::Normal, fx);
                }
                fx.persist_md = true;
                Ok(RspBody::Empty)
            }
            Cmd::MapDisable => {
                if let Some(mut st) = self.staging.take() {
                    st.remove_all();
                    st.give_spares(&mut self.staging_spares);
                }
                self.staging_lost.remove_all();
                Ok(RspBody::Empty)
            }
            Cmd::MapGetVer => Ok(RspBody::MapVer { map_ver: self.md.map_ver }),
            Cmd::MapSetVer { map_ver } => {
                self.md.map_ver = *map_ver;
                fx.persist_md = true;
                Ok(RspBody::Empty)
            }
            Cmd::SendDiscard { member_id } => {
                if let Some(m) = self.maps.get_mut(*member_id) {
                    m.clear_all();
                }
                Ok(RspBody::Empty)
            }
            Cmd::DiscardClearFlag { member_id } => {
                for s in self.md.srv_md.iter_mut().filter(|s| s.member_id == *member_id) {
                    s.discard_entries = false;
                }
                fx.persist_md = true;
                Ok(RspBody::Empty)
            }
            Cmd::LastIoToMap => {
                self.last_io_to_map(now)?;
                fx.persist_md = true;
                Ok(RspBody::Empty)
            }
            Cmd::MapCheck { map_ver } => Ok(RspBody::Bool(self.map_check_answer(*map_ver))),
            Cmd::StoreCheck => Ok(RspBody::Bool(self.store && self.io_allowed)),
            Cmd::MdSend => Ok(RspBody::Md(self.md)),
            Cmd::SendMdBuf(md) => {
                if md.chunk_size != self.md.chunk_size || md.name != self.md.name {
                    return Err(Error::Inval);
                }
                // [choice] Merge, never drop: membership shrinks only by POOL_INFO(REMOVE,
                // DELETE) or LEAVE_POOL(delete); a client pushing a partial view (it is still
                // assembling) must not make this node forget a member (seed 34222).
                let before = self.md;
                for m in md.srv_md.iter().filter(|m| m.member_id != 0) {
                    self.md.add_member(m.member_id)?;
                    for s in self.md.srv_md.iter_mut().filter(|s| s.member_id == m.member_id) {
                        s.discard_entries = m.discard_entries;
                    }
                }
                // [choice] map_ver is NOT adopted from the pushed pool_md: the last-IO update
                // picks the node with the highest version as the one with the newest maps, so
                // a NO_IO node with stale maps must not be lifted by the periodic push
                // (seed 78). map_ver moves only with IO, MAP_ADD, MAP_DONE and MAP_SET_VER.
                // The push comes every second: only a change is written to the store.
                fx.persist_md = self.md != before;
                Ok(RspBody::Empty)
            }
            Cmd::MapAdd { chunk, member_id, map_ver, recovery } => {
                if self.state != SrvState::Normal && !(*recovery && self.state == SrvState::NoIo) {
                    return Err(Error::Io);
                }
                if map_ver_gt(*map_ver, self.md.map_ver) {
                    self.md.map_ver = *map_ver;
                }
                // Recovery pushes follow the last-IO skip rule: a node missing the chunk itself
                // cannot hold the write the other member missed.
                let own_dirty = self.maps.get(self.member_id).is_some_and(|m| m.test(*chunk));
                if *member_id != self.member_id && !(*recovery && own_dirty) {
                    self.maps.ensure(*member_id, total)?.set(*chunk, now)?;
                }
                // [improvement] A write failed on that member: it no longer witnesses this
                // node's last write there. (A recovery mark is conservative: it stays.)
                if !*recovery {
                    // [improvement] If that is the chunk's last witness, this node alone
                    // holds the data it has not flushed there, writes the client may have
                    // acknowledged: the device is flushed before the change is persisted
                    // and answered, as a lone holder's writes are written through (io.rs).
                    // Else a power loss would leave the older copy the witness held marked
                    // stale and this node's lost data as the source (soak seed 15236).
                    let was = self.intent.unflushed_witnessed(*chunk);
                    if let Some(w) = self.intent.witness.get_mut(*member_id).filter(|w| w.test(*chunk)) {
                        w.clear(*chunk);
                        self.intent.persists += 1;
                        fx.persist_md = true;
                        if was && !self.intent.unflushed_witnessed(*chunk) && !self.bug_no_preflush {
                            self.mdlog.preflush = true;
                        }
                    }
                }
                Ok(RspBody::Empty)
            }
            Cmd::MapClear { member_id, chunk, map_ver } => {
                // [improvement] A clear from a node that has not seen the latest failure
                // transition may race with a write that piggybacked it: ignore it (the
                // map-clear worker or a map update cleans up later).
                if *member_id != self.member_id && !map_ver_gt(self.md.map_ver, *map_ver) {
                    if let Some(m) = self.maps.get_mut(*member_id) {
                        m.clear(*chunk);
                    }
                    if let Some(m) = self.lost.get_mut(*member_id) {
                        m.clear(*chunk);
                    }
                }
                Ok(RspBody::Empty)
            }
            Cmd::User(_) => Err(Error::NotSupp),
            Cmd::SuspectToMap => {
                if self.state == SrvState::Normal {
                    // Nothing suspect: a pool drops its suspects on entering NORMAL. Answered
                    // as done, not refused: a client's timed-out ENABLE_POOL(1) can reach the
                    // node late and make it NORMAL behind the client's back, and a try-enable
                    // that then starts here must not stall on -EPERM for good (found in the
                    // VMs, permits.sh: commands timed out over a dropped link).
                    return Ok(RspBody::Bool(false));
                }
                let grew = self.resolve_suspects(now)?;
                fx.persist_md |= grew;
                Ok(RspBody::Bool(grew))
            }
        }
    }

    /// MAP_SEND on the source: cursor = (map slot << 32) | page.
    pub(super) fn map_send<'b>(&self, cursor: u64, buf: &'b mut [u8; PIECE_BYTES]) -> Result<RspBody<'b>> {
        let mut slot = (cursor >> 32) as usize;
        let mut page = (cursor & 0xffff_ffff) as usize;
        let members = self.maps.members();
        // Slots past the maps' carry the lost maps.
        while slot < 2 * RMR_POOL_MAX_SESS {
            let (m, flag) = match slot.checked_sub(RMR_POOL_MAX_SESS) {
                None => (self.maps.slot(slot), 0),
                Some(i) => (self.lost.slot(i), LOST_PIECE),
            };
            if let Some(m) = m {
                if let Some(p) = m.next_piece(page) {
                    m.page_bytes(p, buf)?;
                    let next = ((slot as u64) << 32) | (p as u64 + 1);
                    return Ok(RspBody::MapSend {
                        map_ver: self.md.map_ver,
                        next_cursor: next,
                        end: false,
                        members,
                        piece: Some(Piece { member: m.member_id() | flag, page: p as u32, data: &buf[..] }),
                    });
                }
            }
            slot += 1;
            page = 0;
        }
        Ok(RspBody::MapSend {
            map_ver: self.md.map_ver,
            next_cursor: cursor,
            end: true,
            members,
            piece: None,
        })
    }

    /// Whether `cmd` may create a lost map (a lost piece of a map transfer, the own lost map
    /// of MAP_DONE, suspect resolution): the shell prepares one spare storage for the lost
    /// maps and their staging set before it, so that the map is not allocated under its lock.
    pub fn may_make_lost_map(cmd: &Cmd<'_>) -> bool {
        match cmd {
            Cmd::SendMapBuf(p) => p.member & LOST_PIECE != 0,
            Cmd::MapDone { .. } | Cmd::SuspectToMap => true,
            _ => false,
        }
    }

    /// Members whose peer map is non-empty (map-clear worker targets, §6.8).
    pub fn map_clear_targets(&self) -> MemberList {
        let mut l = MemberList::new();
        for m in self.maps.iter().filter(|m| m.member_id() != self.member_id && !m.is_empty()) {
            let _ = l.push(m.member_id());
        }
        l
    }

    /// The map-clear worker got `empty` from `member` for a check sent when the peer map had
    /// generation `gen_at_send`. Clears only if no bit was set since (the race of SPEC §11).
    pub fn on_peer_check_reply(&mut self, member: u32, empty: bool, gen_at_send: u64) -> bool {
        if !empty || member == self.member_id {
            return false;
        }
        match self.maps.get_mut(member) {
            Some(m) if m.gen() == gen_at_send => {
                m.clear_all();
                // A member with a clean own map has no unsynced losses either.
                if let Some(l) = self.lost.get_mut(member) {
                    l.clear_all();
                }
                true
            }
            _ => false,
        }
    }

    /// A member left the pool (deleted): drop its maps, its lost map, its witness bits and its
    /// `srv_md` slot.
    pub(super) fn forget_member(&mut self, member: u32) {
        self.maps.remove(member);
        self.lost.remove(member);
        self.intent.witness.remove(member);
        self.md.remove_member(member);
    }
}
