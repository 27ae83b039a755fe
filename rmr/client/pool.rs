// SPDX-License-Identifier: GPL-2.0-or-later
//! Client pools: join and leave (SPEC §6.1), the upper layer's open/close/info, try-enable.

#![deny(unsafe_code)]

use super::*;

/// `ctl/join_pool poolname=<n> chunk_size=<bytes> [sync=y|n] [queue_depth=<q>]`.
pub(crate) fn join_pool(input: &[u8]) -> Result {
    let j = params::client_join_pool(input).map_err(|e| log_parse("join_pool", e))?;
    let name = Name::new(j.poolname).ok_or(EINVAL)?;
    let group_id = jhash::group_id(j.poolname);
    let mut units = KVec::with_capacity(j.queue_depth as usize, GFP_KERNEL)?;
    for _ in 0..j.queue_depth {
        units.push(
            Unit {
                busy: false,
                io: None,
                write: false,
                req: None,
                read_slot: 0,
                tried: 0,
                served: 0,
            },
            GFP_KERNEL,
        )?;
    }
    // Free units, a stack with the lowest index on top.
    let mut free = FreeUnits { idx: [0; RMR_MAX_QUEUE_DEPTH], n: 0 };
    for u in (0..units.len()).rev() {
        free.push(u16::try_from(u).map_err(|_| EINVAL)?);
    }
    let reqs = LegRequests::new(units.len(), !j.sync)?;
    let mut st = state().ok_or(ENODEV)?;
    if st.clt.iter().flatten().any(|p| p.pool.name == name || p.pool.group_id == group_id) {
        pr_err!("client pool {}: join_pool: pool or group_id {:#x} exists (EEXIST)\n", name.as_str(), group_id);
        return Err(EEXIST);
    }
    let slot = free_slot(&mut st.clt)?;
    let id = st.new_id();
    let pool = Arc::pin_init(
        pin_init!(CltPool {
            id,
            name,
            group_id,
            chunk_size: j.chunk_size,
            chunk_shift: j.chunk_size.trailing_zeros(),
            sync: j.sync,
            queue_depth: j.queue_depth,
            in_use: AtomicBool::new(false),
            mapped_size: AtomicU64::new(0),
            reqs,
            ctl <- new_mutex!((), "rmr_clt_pool_ctl"),
            core <- new_spinlock!(
                Core {
                    core: CorePool::new(j.sync, 0),
                    maps: MapSet::new(),
                    legs: [None, None, None, None],
                    units,
                    free,
                    in_flight: 0,
                    te_waits: MemberList::new(),
                },
                "rmr_clt_pool_core"
            ),
        }),
        GFP_KERNEL,
    )?;
    let dir = Dir::new(Parent::Top(kind::DIR_CLT_POOLS), j.poolname, kind::CLT_POOL, id)?;
    let sessions = Dir::new(Parent::Dir(&dir), b"sessions", kind::PLAIN, id)?;
    st.clt[slot] = Some(PoolEntry { pool, leg_dirs: [None, None, None, None], _sessions: sessions, _dir: dir });
    pr_info!(
        "client pool {}: joined (chunk_size {}, queue_depth {}{})\n",
        name.as_str(),
        j.chunk_size,
        j.queue_depth,
        if j.sync { ", sync" } else { "" }
    );
    Ok(())
}

pub(super) fn leave_pool(id: u64, input: &[u8]) -> Result {
    let taken = {
        let mut st = state().ok_or(ENODEV)?;
        let slot = st.clt.iter().position(|p| p.as_ref().is_some_and(|p| p.pool.id == id)).ok_or(ENODEV)?;
        let e = st.clt[slot].as_ref().ok_or(ENODEV)?;
        let name = e.pool.name;
        params::parse_trigger(input, false).map_err(|er| log_parse(name.as_str(), er))?;
        let busy = e.has_legs() || e.pool.in_use.load(Ordering::Acquire);
        if busy {
            pr_err!(
                "client pool {}: leave_pool refused: {} (EBUSY)\n",
                name.as_str(),
                if e.has_legs() { "legs exist" } else { "pool is in use" }
            );
            return Err(EBUSY);
        }
        st.clt[slot].take()
    };
    if let Some(e) = taken {
        pr_info!("client pool {}: left{}\n", e.pool.name.as_str(), if e.pool.sync { " (sync)" } else { "" });
        drop(e);
    }
    Ok(())
}

/// `pool_enable 1` and every try-enable trigger (§6.7).
pub(super) fn try_enable(pool: &CltPool) -> Result<(), Errno> {
    let first = {
        let mut c = pool.lock();
        let c = &mut *c;
        // `new` freezes IO; `drive_owned` waits for the IO in flight before maps move.
        let Some(mut run) = TryEnableRun::new(&mut c.core) else {
            // SPEC §6.7/§10.5: say once which pool_md members the legs wait for.
            let w = c.core.try_enable_waits_for();
            if w != c.te_waits {
                c.te_waits = w;
                if !w.is_empty() {
                    pr_info!("client pool {}: try-enable waits for pool_md member(s) {:?}: add their legs (mode=assemble)\n",
                        pool.name.as_str(), w.as_slice());
                }
            }
            return Ok(());
        };
        c.te_waits = MemberList::new();
        let s = run.start(&mut c.core, &c.maps);
        (run, own_step(s))
    };
    let (mut run, first) = first;
    let first = first?;
    let r = pool.drive_owned(first, |c, rsp| {
        let c = &mut *c;
        own_step(run.on_reply(&mut c.core, &c.maps, rsp))
    });
    if r.is_err() {
        pool.unfreeze();
    }
    if let Err(e) = r {
        pr_err!("client pool {}: try-enable failed ({})\n", pool.name.as_str(), e.name());
    }
    r
}

pub(super) fn pool_enable(id: u64, input: &[u8]) -> Result {
    let pool = {
        let st = state().ok_or(ENODEV)?;
        by_id(&st, id)
    }
    .ok_or(ENODEV)?;
    params::parse_trigger(input, false).map_err(|e| log_parse(pool.name.as_str(), e))?;
    if pool.sync {
        pr_err!("client pool {}: pool_enable on a sync pool (EPERM)\n", pool.name.as_str());
        return Err(EPERM);
    }
    let _ctl = pool.ctl.lock();
    try_enable(&pool).map_err(kerr)
}

/// `rmr_clt_open`: the pool by name, marked IN_USE.
pub(crate) fn open(name: &[u8], sync_ok: bool) -> Result<Arc<CltPool>, Errno> {
    let st = state().ok_or(Errno::ENODEV)?;
    let pool = st
        .clt
        .iter()
        .flatten()
        .find(|e| e.pool.name.as_bytes() == name)
        .map(|e| e.pool.clone())
        .ok_or(Errno::ENOENT)?;
    drop(st);
    if pool.sync != sync_ok {
        return Err(Errno::EINVAL);
    }
    if pool.in_use.swap(true, Ordering::AcqRel) {
        return Err(Errno::EBUSY);
    }
    Ok(pool)
}

impl CltPool {
    /// `rmr_clt_close`.
    pub(crate) fn close(&self) {
        let _ctl = self.ctl.lock();
        self.in_use.store(false, Ordering::Release);
    }

    pub(crate) fn info(&self) -> crate::abi::RmrCltInfo {
        let c = self.lock();
        let mut mio = self.chunk_size;
        let mut segs = u32::MAX;
        let mut qd = self.queue_depth;
        let mut n = 0;
        for l in c.legs.iter().flatten() {
            n += 1;
            let m = l.sess.max_io_size.load(Ordering::Acquire);
            if m > 0 {
                mio = mio.min(m);
            }
            segs = segs.min(l.sess.max_segments.load(Ordering::Acquire).max(1));
            qd = qd.min(l.sess.queue_depth.load(Ordering::Acquire).max(1));
        }
        crate::abi::RmrCltInfo {
            abi_version: crate::abi::RMR_ABI_VERSION,
            chunk_size: self.chunk_size,
            queue_depth: qd,
            max_io_size: mio,
            // Each leg's request gets a copy of the caller's list in a table of sg::SEGS.
            max_segments: if segs == u32::MAX { 1 } else { segs.min(sg::SEGS) },
            nr_legs: n,
            mapped_size: self.mapped_size.load(Ordering::Acquire),
        }
    }

    /// Per-leg stats for `rmr_clt_leg_stats`.
    pub(crate) fn leg_stats(&self, out: &mut [crate::abi::RmrLegStats]) -> usize {
        let c = self.lock();
        let mut n = 0;
        for (i, l) in c.legs.iter().enumerate() {
            let (Some(l), Some(cl)) = (l, c.core.leg(i)) else { continue };
            let Some(o) = out.get_mut(n) else { break };
            let mut name = [0u8; 64];
            let b = l.name.as_bytes();
            name[..b.len().min(63)].copy_from_slice(&b[..b.len().min(63)]);
            let mut state = [0u8; 16];
            let s = cl.state.name().as_bytes();
            state[..s.len().min(15)].copy_from_slice(&s[..s.len().min(15)]);
            *o = crate::abi::RmrLegStats {
                slot: i as u32,
                member_id: cl.member_id,
                reads: l.reads.load(Ordering::Relaxed),
                writes: l.writes.load(Ordering::Relaxed),
                name,
                state,
            };
            n += 1;
        }
        n
    }

    /// The member ids behind NORMAL legs (sync pools).
    pub(crate) fn normal_members(&self) -> MemberList {
        let c = self.lock();
        let mut l = MemberList::new();
        for (_, leg) in c.core.legs() {
            if leg.state == LegState::Normal {
                let _ = l.push(leg.member_id);
            }
        }
        l
    }
}
