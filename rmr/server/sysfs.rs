// SPDX-License-Identifier: GPL-2.0-or-later
//! sysfs of the server role: `ctl/join_pool` and `pools/<p>/...`.

#![deny(unsafe_code)]

use super::*;

/// The control-plane record of a server pool in the module state.
pub(crate) struct ServerPool {
    pub(crate) id: u64,
    pub(crate) name: Name,
    pub(crate) pool: Arc<SrvPool>,
    _dir: Dir,
}

pub(super) fn log_parse(what: &str, e: params::ParseError) -> Error {
    pr_err!("rmr-server {}: {}\n", what, e);
    err(e.errno())
}

/// `ctl/join_pool poolname=<n> member_id=<u32>`.
pub(crate) fn join_pool(input: &[u8]) -> Result {
    let j = params::server_join_pool(input).map_err(|e| log_parse("join_pool", e))?;
    let name = Name::new(j.poolname).ok_or(EINVAL)?;
    let group_id = jhash::group_id(j.poolname);
    ensure_ctx().inspect_err(|_| {
        pr_err!("server pool {}: join_pool: no rtrs server\n", name.as_str());
    })?;
    let pool = {
        let mut st = state().ok_or(ENODEV)?;
        if st.srv.iter().flatten().any(|p| p.name == name || p.pool.group_id == group_id) {
            pr_err!("server pool {}: join_pool: pool or group_id {:#x} exists (EEXIST)\n", name.as_str(), group_id);
            return Err(EEXIST);
        }
        let slot = free_slot(&mut st.srv)?;
        let id = st.new_id();
        let dir = Dir::new(Parent::Top(kind::DIR_SRV_POOLS), j.poolname, kind::SRV_POOL, id)?;
        let pool = SrvPool::new(name, group_id, j.member_id).inspect_err(|e| {
            pr_err!("server pool {}: join_pool: cannot allocate the pool ({:?})\n", name.as_str(), e);
        })?;
        match registry_add(&pool) {
            Ok(()) => {
                st.srv[slot] = Some(ServerPool { id, name, pool, _dir: dir });
                pr_info!("server pool {}: joined as member {} (empty)\n", name.as_str(), j.member_id);
                return Ok(());
            }
            Err(e) => {
                pr_err!("server pool {}: join_pool: registry full ({:?})\n", name.as_str(), e);
                drop(dir);
                pool
            }
        }
    };
    // Failure after the workers started: stop them without the state lock.
    pool.shutdown();
    Err(ENOSPC)
}

pub(crate) fn show(id: u64, attr: &[u8], w: &mut PageWriter<'_>) -> Result {
    let pool = pool_by_id(id)?;
    match attr {
        b"state" => {
            let (s, m) = {
                let g = pool.inner.lock();
                (g.core.state, g.core.maintenance)
            };
            writeln!(w, "{}", s.name()).map_err(|_| EINVAL)?;
            if m {
                writeln!(w, "Maintenance mode: 1").map_err(|_| EINVAL)?;
            }
            Ok(())
        }
        b"member_id" => writeln!(w, "{}", pool.member_id).map_err(|_| EINVAL),
        b"sync" => {
            let running = pool.inner.lock().sched.running;
            writeln!(w, "{}", if running { "running" } else { "stopped" }).map_err(|_| EINVAL)
        }
        b"sync_progress" => {
            let p = {
                let g = pool.inner.lock();
                g.sched.progress(&g.core, now_ms())
            };
            writeln!(w, "{} {} {}", p.done, p.total, p.elapsed_ms).map_err(|_| EINVAL)
        }
        b"map_summary" => summary(&pool, w),
        b"write_intent" => write_intent(&pool, w),
        b"map" => {
            dump_maps(&pool);
            summary(&pool, w)
        }
        _ => Err(EINVAL),
    }
}

/// `write_intent` [improvement]: whether the pool keeps the write-intent record, what it
/// holds, and what the metadata writer wrote.
fn write_intent(pool: &SrvPool, w: &mut PageWriter<'_>) -> Result {
    let (on, has_store, regions, wi, suspect, lost, persists, cleared, rounds, pages, ipages) = {
        let g = pool.inner.lock();
        let c = &g.core;
        (
            c.intent.volatile_cache,
            g.store.is_some(),
            c.mdlog.intent_regions,
            c.intent.wi.as_ref().map_or(0, |m| m.count()),
            c.intent.suspect.as_ref().map_or(0, |m| m.count()),
            c.intent.lost.as_ref().map_or(0, |m| m.count()),
            c.intent.persists,
            c.intent.cleared,
            c.mdlog.rounds,
            c.mdlog.pages,
            c.mdlog.intent_pages,
        )
    };
    let why = match (on, has_store, regions) {
        (true, _, _) => "on",
        (false, false, _) => "off (no store)",
        (false, true, false) => "off (store format without the record: recreate the store)",
        (false, true, true) => "off (no volatile write cache, or rmr.write_intent=0)",
    };
    writeln!(w, "{}", why).map_err(|_| EINVAL)?;
    writeln!(w, "unflushed {} suspect {} lost {}", wi, suspect, lost).map_err(|_| EINVAL)?;
    writeln!(w, "record_writes {} cleared {}", persists, cleared).map_err(|_| EINVAL)?;
    writeln!(w, "md_rounds {} map_pages {} record_pages {}", rounds, pages, ipages).map_err(|_| EINVAL)
}

pub(super) fn summary(pool: &SrvPool, w: &mut PageWriter<'_>) -> Result {
    let mut buf = KVec::<u8>::from_elem(0u8, kernel::page::PAGE_SIZE, GFP_KERNEL)?;
    let n = pool.inner.lock().core.maps.render_summary(&mut buf);
    let text = core::str::from_utf8(buf.get(..n).unwrap_or(&[])).map_err(|_| EINVAL)?;
    w.write_str(text).map_err(|_| EINVAL)
}

/// `map`: every member's full map to the kernel log, in batches taken under the lock.
pub(super) fn dump_maps(pool: &SrvPool) {
    let members = pool.inner.lock().core.maps.members();
    for m in members.iter() {
        let (count, total) = {
            let g = pool.inner.lock();
            match g.core.maps.get(m) {
                Some(x) => (x.count(), x.total()),
                None => continue,
            }
        };
        pr_info!("server pool {}: map of member {}: {}/{} dirty\n", pool.name(), m, count, total);
        let mut from = 0u64;
        loop {
            let mut batch = [0u64; 16];
            let mut n = 0;
            {
                let g = pool.inner.lock();
                let Some(map) = g.core.maps.get(m) else {
                    break;
                };
                while n < batch.len() {
                    match map.next_dirty(from) {
                        Some(c) => {
                            batch[n] = c;
                            n += 1;
                            from = c + 1;
                        }
                        None => break,
                    }
                }
            }
            if n == 0 {
                break;
            }
            let mut line = [0u8; 16 * 21];
            let mut lw = PageWriter::new(&mut line);
            for c in batch.iter().take(n) {
                let _ = write!(lw, " {}", c);
            }
            let len = lw.len();
            pr_info!("server pool {}: member {}:{}\n", pool.name(), m, BStrDisplay(line.get(..len).unwrap_or(&[])));
            if n < batch.len() {
                break;
            }
        }
    }
}

pub(crate) fn store(id: u64, attr: &[u8], input: &[u8]) -> Result {
    match attr {
        b"leave_pool" => leave_pool(id, input),
        b"add_clt" => add_clt(id, input),
        b"sync" => sync_store(id, input),
        _ => Err(EINVAL),
    }
}

pub(super) fn leave_pool(id: u64, input: &[u8]) -> Result {
    let taken = {
        let mut st = state().ok_or(ENODEV)?;
        let slot = st.srv.iter().position(|p| p.as_ref().is_some_and(|p| p.id == id));
        let slot = slot.ok_or(ENODEV)?;
        let p = st.srv[slot].as_ref().ok_or(ENODEV)?;
        let name = p.name;
        params::parse_trigger(input, false).map_err(|e| log_parse(name.as_str(), e))?;
        {
            let mut g = p.pool.inner.lock();
            let view = SrvPoolView {
                state: to_pool_state(g.core.state),
                has_store: g.store.is_some(),
                sessions: g.core.sessions.saturating_add(g.core.sync_sessions),
            };
            if let Err(e) = store_reg::srv_can_leave(view) {
                let why = if view.has_store { "a store is registered" } else { "sessions are joined" };
                drop(g);
                pr_err!("server pool {}: leave_pool refused: {} ({})\n", name.as_str(), why, e.name());
                return Err(err(e));
            }
            // From here on no command or IO is accepted.
            g.dead = true;
        }
        registry_remove(&p.pool);
        st.srv[slot].take()
    };
    if let Some(p) = taken {
        p.pool.shutdown();
        pr_info!("server pool {}: left\n", p.name.as_str());
        // Dropping removes `pools/<p>/` once no other reader or writer is inside it.
        drop(p);
    }
    Ok(())
}

pub(super) fn add_clt(id: u64, input: &[u8]) -> Result {
    let pool = pool_by_id(id)?;
    let name = params::parse_bare_name(input).map_err(|e| log_parse(pool.name(), e))?;
    if pool.inner.lock().sync_pool.is_some() {
        pr_err!("server pool {}: add_clt: a sync pool is already attached (EEXIST)\n", pool.name());
        return Err(EEXIST);
    }
    // Attach without any lock held: the client role takes its own.
    let sp = peer::attach(name).map_err(|e| {
        pr_err!("server pool {}: add_clt {}: cannot attach ({})\n", pool.name(), BStrDisplay(name), e.name());
        err(e)
    })?;
    let sp = Arc::new(sp, GFP_KERNEL)?;
    let refused = {
        let mut g = pool.inner.lock();
        if g.sync_pool.is_some() || g.dead {
            Some(sp)
        } else {
            g.sync_pool = Some(sp);
            None
        }
    };
    if let Some(sp) = refused {
        drop(sp);
        pr_err!("server pool {}: add_clt: a sync pool is already attached (EEXIST)\n", pool.name());
        return Err(EEXIST);
    }
    pr_info!("server pool {}: sync pool {} attached\n", pool.name(), BStrDisplay(name));
    Ok(())
}

pub(super) fn sync_store(id: u64, input: &[u8]) -> Result {
    let pool = pool_by_id(id)?;
    let cmd = params::sync_cmd(input).map_err(|e| log_parse(pool.name(), e))?;
    match cmd {
        SyncCmd::Start => {
            let sqd = u16::try_from(crate::sync_queue_depth()).unwrap_or(32);
            let r = {
                let mut g = pool.inner.lock();
                let have = g.sync_pool.is_some();
                let inner = &mut *g;
                inner.sched.start(&inner.core, sqd, have, now_ms()).map(|()| inner.sched.cap)
            };
            match r {
                Ok(cap) => {
                    pr_info!("server pool {}: sync started ({} in flight at most)\n", pool.name(), cap);
                    pump(&pool);
                    Ok(())
                }
                Err(e) => {
                    let e = e.to_errno();
                    let st = pool.inner.lock().core.state;
                    pr_err!("server pool {}: sync start refused in state {} ({})\n", pool.name(), st.name(), e.name());
                    Err(err(e))
                }
            }
        }
        SyncCmd::Stop => {
            {
                let mut g = pool.inner.lock();
                let inner = &mut *g;
                // Also holds the automatic start back until the pool enters NORMAL again.
                inner.sched.stop_by_admin(&inner.core);
            }
            pr_info!("server pool {}: sync stop (no automatic start until the pool enters normal again or sync start)\n", pool.name());
            pump(&pool);
            Ok(())
        }
    }
}
