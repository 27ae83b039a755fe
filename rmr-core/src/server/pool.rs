// SPDX-License-Identifier: GPL-2.0-or-later
//! A server pool's life: creation, store registration, state changes, faults, sessions.

use super::*;

impl<S: MapStorage + Default> ServerPool<S> {
    /// A blank EMPTY pool (member 0, blank `pool_md`) as a constant. The struct is large
    /// (`last_io`, sync table: about 30 KiB), too large for a kernel stack: a kernel copies this
    /// value straight into heap memory, then sets `member_id` and `md` (what [`Self::new`]
    /// does by value).
    pub const BLANK: Self = ServerPool {
        state: SrvState::Empty,
        marked_create: false,
        maintenance: false,
        member_id: 0,
        md: PoolMd::BLANK,
        store: false,
        io_allowed: false,
        sessions: 0,
        sync_sessions: 0,
        maps: MapSet::new(),
        staging: None,
        staging_spares: MapSet::new(),
        last_io: [u64::MAX; RMR_MAX_QUEUE_DEPTH],
        sync: SyncTable::new(),
        bug_last_io_no_skip: false,
        bug_no_last_io_record: false,
        bug_intent_lazy: false,
        bug_no_scrub: false,
        bug_no_preflush: false,
        epoch: 0,
        normal_entries: 0,
        intent: IntentRecord::new(),
        // A lost map is rare and made by one command at a time: one spare each.
        lost: MapSet::with_spare_cap(1),
        staging_lost: MapSet::with_spare_cap(1),
        mdlog: MdLog::new(),
    };

    /// `join_pool`: a server pool in EMPTY. `md` carries name/group_id; sizes come later.
    pub fn new(member_id: u32, md: PoolMd) -> Result<Self> {
        if member_id == 0 {
            return Err(Error::Inval);
        }
        Ok(ServerPool { member_id, md, ..Self::BLANK })
    }

    /// Number of chunks of the device.
    pub fn total_chunks(&self) -> u64 {
        let bytes = self.md.mapped_size.saturating_mul(512);
        bytes.div_ceil(u64::from(self.md.chunk_size.max(1)))
    }

    pub(super) fn set_state(&mut self, to: SrvState, fx: &mut SrvEffects) {
        if self.state != to {
            if self.state == SrvState::Normal {
                fx.stop_sync = true;
                self.epoch = self.epoch.wrapping_add(1);
            }
            if to == SrvState::Normal {
                self.normal_entries = self.normal_entries.wrapping_add(1);
                self.last_io = [u64::MAX; RMR_MAX_QUEUE_DEPTH];
                self.clear_last_io_record();
                // Suspects are resolved by the control path before a node serves (SUSPECT_TO_MAP,
                // LAST_IO_TO_MAP); resolving again here is a no-op then and a safety net else.
                // They are dropped only once resolved: a failure keeps them for the next try.
                if self.resolve_suspects(0).is_ok() {
                    if let Some(m) = self.intent.suspect.as_mut() {
                        m.clear_all();
                    }
                }
                fx.persist_md = true;
            }
            self.state = to;
            fx.state_changed = true;
        }
    }

    /// Register a store. ADD passes the `pool_md` and `last_io` read from disk (the caller
    /// restores maps into `self.maps` before or after). -EBUSY unless EMPTY (or NO_IO without a
    /// store, §4.3 last row).
    pub fn register(&mut self, mode: RegMode, disk_md: Option<PoolMd>) -> Result<SrvEffects> {
        let mut fx = SrvEffects::default();
        let no_io_storeless = self.state == SrvState::NoIo && !self.store;
        if self.state != SrvState::Empty && !no_io_storeless {
            return Err(Error::Busy);
        }
        match mode {
            RegMode::Create => {
                if no_io_storeless {
                    return Err(Error::Busy);
                }
                self.maps.remove_all();
                self.lost.remove_all();
                // A fresh store starts a fresh membership: members of an earlier store of this
                // pool (deleted with delete_store) must not survive into the new pool_md.
                self.md.srv_md = [SrvMd::default(); RMR_POOL_MAX_SESS];
                self.md.add_member(self.member_id)?;
                self.md.map_ver = 0;
                self.marked_create = true;
                self.last_io = [u64::MAX; RMR_MAX_QUEUE_DEPTH];
                self.intent.reset();
                // create_store zeroed the metadata area.
                self.mdlog = MdLog::new();
            }
            RegMode::Add => {
                let md = disk_md.ok_or(Error::Inval)?;
                if md.name != self.md.name {
                    return Err(Error::Inval);
                }
                // The durable record comes back through restore_suspect.
                self.intent.reset();
                // The on-disk maps and record come back through md_load_*.
                self.mdlog = MdLog::new();
                self.md = md;
                self.marked_create = false;
                let total = self.total_chunks();
                for m in self.md.members().iter() {
                    self.maps.ensure(m, total)?;
                }
            }
            RegMode::Replace => return Err(Error::NotSupp),
        }
        self.store = true;
        self.io_allowed = true;
        if !no_io_storeless {
            self.set_state(SrvState::Registered, &mut fx);
        }
        fx.persist_md = true;
        Ok(fx)
    }

    /// `rmr_srv_register` as a kernel calls it: like [`Self::register`], with the store's
    /// exported size. CREATE adopts `mapped_size` (the pool has no size before its first store);
    /// ADD takes the size from the on-disk `pool_md`, which must agree (-EINVAL otherwise).
    pub fn register_store(
        &mut self,
        mode: RegMode,
        disk_md: Option<PoolMd>,
        mapped_size: u64,
    ) -> Result<SrvEffects> {
        if mapped_size == 0 {
            return Err(Error::Inval);
        }
        if mode == RegMode::Add && disk_md.is_some_and(|m| m.mapped_size != mapped_size) {
            return Err(Error::Inval);
        }
        // A store written by another pool (its metadata names another group).
        if mode == RegMode::Add && disk_md.is_some_and(|m| m.group_id != self.md.group_id) {
            return Err(Error::Inval);
        }
        let old = self.md.mapped_size;
        if mode == RegMode::Create {
            self.md.mapped_size = mapped_size;
        }
        let r = self.register(mode, disk_md);
        if r.is_err() {
            self.md.mapped_size = old;
        }
        r
    }

    /// Unregister the store (`remove_store` / `delete_store`).
    pub fn unregister(&mut self) -> SrvEffects {
        let mut fx = SrvEffects::default();
        self.store = false;
        self.io_allowed = false;
        let to = match self.state {
            SrvState::Registered => SrvState::Empty,
            // A client lost without leaving: with the store gone too, nothing is left.
            SrvState::NoIo if self.sessions == 0 => SrvState::Empty,
            SrvState::Created | SrvState::Normal => SrvState::NoIo,
            s => s,
        };
        self.set_state(to, &mut fx);
        fx
    }

    /// Backend IO error or link loss of a non-sync session: NORMAL → NO_IO.
    pub fn on_fault(&mut self) -> SrvEffects {
        let mut fx = SrvEffects::default();
        if self.state == SrvState::Normal {
            self.set_state(SrvState::NoIo, &mut fx);
        }
        fx
    }

    /// A session's transport died without LEAVE_POOL: a cut link, a client crash, or RTRS
    /// giving up on it (SPEC §4.3 "non-sync session link lost"). The pool leaves CREATED or
    /// NORMAL for NO_IO and stays there: only a LEAVE_POOL makes it REGISTERED, because the
    /// client is expected back, by a rejoin or, after a crash, an assemble (both accepted in
    /// NO_IO). A sync session changes nothing.
    pub fn on_session_lost(&mut self, sync: bool) -> SrvEffects {
        let mut fx = SrvEffects::default();
        if sync {
            self.sync_sessions = self.sync_sessions.saturating_sub(1);
            return fx;
        }
        self.sessions = self.sessions.saturating_sub(1);
        if matches!(self.state, SrvState::Created | SrvState::Normal) {
            self.set_state(SrvState::NoIo, &mut fx);
        }
        fx
    }

    /// A session left the pool (LEAVE_POOL). `sync` = sync session.
    pub fn on_session_gone(&mut self, sync: bool) -> SrvEffects {
        let mut fx = SrvEffects::default();
        if sync {
            self.sync_sessions = self.sync_sessions.saturating_sub(1);
            return fx;
        }
        self.sessions = self.sessions.saturating_sub(1);
        if self.state == SrvState::Normal {
            self.set_state(SrvState::NoIo, &mut fx);
        }
        if self.sessions == 0 && matches!(self.state, SrvState::Created | SrvState::Normal | SrvState::NoIo) {
            let to = if self.store { SrvState::Registered } else { SrvState::Empty };
            self.marked_create = false;
            self.set_state(to, &mut fx);
        }
        fx
    }

    /// Whether non-sync IO is served now.
    pub fn serving(&self) -> bool {
        self.state == SrvState::Normal && self.io_allowed
    }
}
