// SPDX-License-Identifier: GPL-2.0-or-later
//! Legs: add (create, assemble, sync), enable and maintenance, delete and disassemble,
//! reconnect (SPEC §6.2, §6.3, §8).

#![deny(unsafe_code)]

use super::*;

/// `pools/<p>/add_sess sessname=<s> path=ip:<a> [mode=create|assemble]` (§6.2).
pub(super) fn add_sess(id: u64, input: &[u8]) -> Result {
    let pool = {
        let st = state().ok_or(ENODEV)?;
        by_id(&st, id)
    }
    .ok_or(ENODEV)?;
    let a = params::add_sess(input, pool.sync).map_err(|e| log_parse(pool.name.as_str(), e))?;
    let sname = Name::new(a.sessname).ok_or(EINVAL)?;
    let _ctl = pool.ctl.lock();
    {
        let c = pool.lock();
        if c.legs.iter().flatten().any(|l| l.name == sname) {
            pr_err!("client pool {}: add_sess: session {} exists (EEXIST)\n", pool.name.as_str(), sname.as_str());
            return Err(EEXIST);
        }
        if c.legs.iter().all(|l| l.is_some()) {
            pr_err!("client pool {}: add_sess: {} legs already (ENOSPC)\n", pool.name.as_str(), c.legs.len());
            return Err(ENOSPC);
        }
    }
    let sess = sess_get(sname, a.addr).map_err(kerr)?;
    match add_leg(&pool, sname, &sess, a.mode) {
        Ok(()) => Ok(()),
        Err(e) => {
            pr_err!("client pool {}: add_sess {}: failed ({})\n", pool.name.as_str(), sname.as_str(), e.name());
            sess_put(sess);
            Err(kerr(e))
        }
    }
}

pub(super) fn add_leg(pool: &Arc<CltPool>, sname: Name, sess: &Arc<CltSess>, mode: Option<AddMode>) -> Result<(), Errno> {
    let create = mode == Some(AddMode::Create);
    let members = {
        let c = pool.lock();
        let mut m = MemberList::new();
        for (_, l) in c.core.legs() {
            if !l.sync {
                let _ = m.push(l.member_id);
            }
        }
        if let Some(md) = c.core.md.as_ref() {
            for x in md.members().iter() {
                if !m.contains(x) {
                    let _ = m.push(x);
                }
            }
        }
        m
    };
    let qd = u16::try_from(pool.queue_depth).map_err(|_| Errno::EINVAL)?;
    let body = JoinBody { chunk_size: pool.chunk_size, queue_depth: qd, create, sync: pool.sync, members };
    // An assemble join turns a NORMAL server NO_IO (§4.3) before the reply tells which
    // member it is. If it is a member that already has a NORMAL leg here, that leg must get
    // its server back unharmed: no IO may reach it in between, so IO is frozen around the
    // join and the duplicate is re-enabled directly (its maps saw no change).
    let freeze = pool.lock().core.join_freezes_io(create);
    if freeze {
        pool.freeze_and_drain()?;
    }
    let joined = pool.send(sess, &Cmd::JoinPool(body), |r| match (r.errno, r.body) {
        (0, RspBody::Join { member_id, mapped_size, .. }) => Ok((member_id, mapped_size)),
        (0, _) => Err(Errno::EPROTO),
        (e, _) => Err(Errno::from_kernel(e)),
    });
    let dup = joined.as_ref().ok().and_then(|(m, _)| pool.lock().core.duplicate_normal(*m));
    if let (Some(other), Ok((m, _))) = (dup, joined.as_ref()) {
        pool.send(sess, &Cmd::LeavePool { delete: false }, |_| ());
        let r = pool.send_slot(other, &Cmd::EnablePool { enable: true });
        if freeze {
            pool.unfreeze();
        }
        pr_err!(
            "client pool {}: session {}: member {} already has leg {} (EEXIST){}\n",
            pool.name.as_str(), sname.as_str(), m, leg_name(pool, other).as_str(),
            if r.is_err() { "; re-enabling it failed" } else { "" }
        );
        return Err(Errno::EEXIST);
    }
    if freeze {
        pool.unfreeze();
    }
    let (member, mapped) = joined.inspect_err(|e| {
        pr_err!("client pool {}: session {}: join refused ({})\n", pool.name.as_str(), sname.as_str(), e.name());
    })?;
    let leave = |why: Errno| {
        pool.send(sess, &Cmd::LeavePool { delete: false }, |_| ());
        Err(why)
    };
    let old = pool.mapped_size.load(Ordering::Acquire);
    if !pool.sync && old != 0 && mapped != old {
        pr_err!(
            "client pool {}: session {}: mapped_size {} differs from the pool's {} (EINVAL)\n",
            pool.name.as_str(), sname.as_str(), mapped, old
        );
        return leave(Errno::EINVAL);
    }
    let leg_id = state().ok_or(Errno::ENODEV)?.new_id();
    let leg = Arc::new(
        LegObj { name: sname, sess: sess.clone(), reads: AtomicU64::new(0), writes: AtomicU64::new(0) },
        GFP_KERNEL,
    )
    .map_err(|_| Errno::ENOMEM)?;
    let now = now_ms();
    let added = {
        let mut g = pool.lock();
        let c = &mut *g;
        if !pool.sync && old == 0 {
            pool.mapped_size.store(mapped, Ordering::Release);
            let bytes = mapped.saturating_mul(512);
            c.core.total_chunks = bytes.div_ceil(u64::from(pool.chunk_size));
        }
        if !pool.sync && c.core.md.is_none() && create {
            c.core.md = Some(PoolMd {
                name: wire::PoolName::new(pool.name.as_bytes()).map_err(cerr)?,
                group_id: pool.group_id,
                chunk_size: pool.chunk_size,
                mapped_size: mapped,
                queue_depth: qd,
                map_ver: 0,
                srv_md: [SrvMd::default(); 4],
            });
        }
        let r = c.core.add_leg(member, pool.sync);
        if let (Ok(s), Some(l)) = (r, r.ok().and_then(|s| c.legs.get_mut(s))) {
            let _ = s;
            *l = Some(leg.clone());
        }
        r
    };
    let slot = match added {
        Ok(s) => s,
        Err(e) => {
            pr_err!("client pool {}: member {} already has a leg or no slot ({})\n", pool.name.as_str(), member, cerr(e).name());
            return leave(cerr(e));
        }
    };
    // Directory first, so a failure below can still be undone by del_sess.
    {
        let mut st = state().ok_or(Errno::ENODEV)?;
        let e = st.clt.iter_mut().flatten().find(|e| Arc::ptr_eq(&e.pool, pool)).ok_or(Errno::ENODEV)?;
        let d = Dir::new(Parent::Dir(&e._sessions), sname.as_bytes(), kind::CLT_SESS, leg_id)
            .map_err(|_| Errno::ENOMEM)?;
        if let Some(s) = e.leg_dirs.get_mut(slot) {
            *s = Some((leg_id, d));
        }
    }
    pr_info!(
        "client pool {}: session {} joined member {} ({})\n",
        pool.name.as_str(),
        sname.as_str(),
        member,
        match mode {
            Some(AddMode::Create) => "create",
            Some(AddMode::Assemble) => "assemble",
            None => "sync",
        }
    );
    if pool.sync {
        let _ = pool.lock().core.set_state(slot, LegState::Normal);
        return Ok(());
    }
    if create {
        let (dirty, peers) = {
            let mut c = pool.lock();
            let c = &mut *c;
            let dirty = c.core.pool_info_dirty();
            if dirty {
                let total = c.core.total_chunks;
                c.maps.ensure(member, total).and_then(|m| m.set_all(now)).map_err(cerr)?;
            } else {
                let total = c.core.total_chunks;
                c.maps.ensure(member, total).map_err(cerr)?;
            }
            (dirty, c.core.pool_info_targets(slot))
        };
        for p in slots(peers) {
            let r = pool.send_slot(p, &Cmd::PoolInfo { member_id: member, op: InfoOp::AddCreate, dirty });
            if let Err(e) = r {
                pr_err!("client pool {}: POOL_INFO(add) for {} failed on slot {} ({})\n", pool.name.as_str(), member, p, e.name());
                pool.lock().core.fail_leg(p);
            }
        }
        return Ok(());
    }
    // Assemble: learn pool_md, create the maps, tell the peers, then try-enable.
    let md = pool.send(sess, &Cmd::MdSend, |r| match (r.errno, r.body) {
        (0, RspBody::Md(md)) => Ok(md),
        (0, _) => Err(Errno::EPROTO),
        (e, _) => Err(Errno::from_kernel(e)),
    })?;
    let peers = {
        let mut c = pool.lock();
        let c = &mut *c;
        if c.core.md.is_none() {
            c.core.set_map_ver(md.map_ver);
            c.core.md = Some(md);
        }
        let total = c.core.total_chunks;
        for m in md.members().iter() {
            c.maps.ensure(m, total).map_err(cerr)?;
        }
        c.core.pool_info_targets(slot)
    };
    for p in slots(peers) {
        let _ = pool.send_slot(p, &Cmd::PoolInfo { member_id: member, op: InfoOp::AddAssemble, dirty: false });
    }
    pool.lock().core.set_state(slot, LegState::Reconnecting).map_err(cerr)?;
    let _ = try_enable(pool);
    Ok(())
}

pub(super) fn leg_name(pool: &CltPool, slot: usize) -> Name {
    pool.leg(slot).map_or(pool.name, |l| l.name)
}

/// `sessions/<s>/enable 1|0` (§6.2 step 5, §8).
pub(super) fn enable(pool: &Arc<CltPool>, slot: usize, input: &[u8]) -> Result {
    let sname = leg_name(pool, slot);
    let on = params::parse_trigger(input, true).map_err(|e| log_parse(sname.as_str(), e))?;
    let _ctl = pool.ctl.lock();
    let r = if on { admit(pool, slot) } else { maintenance(pool, slot) };
    r.map_err(|e| {
        pr_err!("client pool {}: session {}: enable={} failed ({})\n", pool.name.as_str(), sname.as_str(), u8::from(on), e.name());
        kerr(e)
    })
}

pub(super) fn admit(pool: &Arc<CltPool>, slot: usize) -> Result<(), Errno> {
    let a = pool.lock().core.admit(slot).map_err(cerr)?;
    match a {
        Admit::Nothing => Ok(()),
        Admit::EnablePool => {
            pool.send_slot(slot, &Cmd::EnablePool { enable: true })?;
            pool.lock().core.set_state(slot, LegState::Normal).map_err(cerr)?;
            pr_info!("client pool {}: session {} normal (first leg)\n", pool.name.as_str(), leg_name(pool, slot).as_str());
            Ok(())
        }
        Admit::Spread { source } => {
            pool.freeze_and_drain()?;
            let first = {
                let c = pool.lock();
                let mut mu = MapUpdate::new(source, 1 << slot, true);
                let s = mu.start(&c.core);
                (mu, own_step(s))
            };
            let (mut mu, first) = first;
            let r = first.and_then(|f| pool.drive_owned(f, |c, rsp| own_step(mu.on_reply(&mut c.core, rsp))));
            pool.unfreeze();
            if r.is_ok() {
                pr_info!(
                    "client pool {}: session {} normal (map update from slot {})\n",
                    pool.name.as_str(), leg_name(pool, slot).as_str(), source
                );
            }
            r
        }
        Admit::LeaveMaintenance => {
            pool.send_slot(slot, &Cmd::EnablePool { enable: true })?;
            pool.lock().core.clear_maintenance(slot).map_err(cerr)?;
            try_enable(pool)
        }
    }
}

pub(super) fn maintenance(pool: &Arc<CltPool>, slot: usize) -> Result<(), Errno> {
    pool.freeze_and_drain()?;
    let r = pool.lock().core.set_maintenance(slot).map_err(cerr);
    let r = match r {
        Ok(true) => pool.send_slot(slot, &Cmd::EnablePool { enable: false }),
        Ok(false) => Ok(()),
        Err(e) => Err(e),
    };
    pool.unfreeze();
    r
}

/// `sessions/<s>/del_sess mode=delete|disassemble` (§6.3).
pub(super) fn del_sess(pool: &Arc<CltPool>, slot: usize, input: &[u8]) -> Result {
    let sname = leg_name(pool, slot);
    let mode = params::del_sess(input).map_err(|e| log_parse(sname.as_str(), e))?;
    let delete = mode == DelMode::Delete;
    let _ctl = pool.ctl.lock();
    let r = remove_leg(pool, slot, delete);
    r.map_err(|e| {
        pr_err!("client pool {}: session {}: del_sess halted, leg stays removing ({})\n", pool.name.as_str(), sname.as_str(), e.name());
        kerr(e)
    })
}

pub(super) fn remove_leg(pool: &Arc<CltPool>, slot: usize, delete: bool) -> Result<(), Errno> {
    // Step 1: REMOVING, drain, leave.
    pool.freeze_and_drain()?;
    let member = {
        let mut c = pool.lock();
        // Idempotent on a REMOVING leg: a halted del_sess retries from here.
        let r = c.core.begin_remove(slot);
        c.core.frozen = false;
        r.map_err(cerr)?
    };
    let connected = pool.leg(slot).is_some_and(|l| l.sess.connected.load(Ordering::Acquire));
    if connected {
        pool.send_slot(slot, &Cmd::LeavePool { delete })?;
    }
    // Step 2 (non-sync): maps, slot, peers.
    if !pool.sync {
        let peers = {
            let mut c = pool.lock();
            let c = &mut *c;
            c.core.remove_member(member, delete, &mut c.maps);
            c.core.pool_info_targets(slot)
        };
        let op = if delete { InfoOp::RemoveDelete } else { InfoOp::RemoveDisassemble };
        for p in slots(peers) {
            pool.send_slot(p, &Cmd::PoolInfo { member_id: member, op, dirty: false })?;
        }
    }
    // Step 3: unlink, directory, transport.
    let leg = {
        let mut c = pool.lock();
        c.core.free_leg(slot).map_err(cerr)?;
        c.legs.get_mut(slot).and_then(|l| l.take())
    };
    let dir = {
        let mut st = state().ok_or(Errno::ENODEV)?;
        st.clt
            .iter_mut()
            .flatten()
            .find(|e| Arc::ptr_eq(&e.pool, pool))
            .and_then(|e| e.leg_dirs.get_mut(slot).and_then(|d| d.take()))
    };
    drop(dir);
    if let Some(leg) = leg {
        pr_info!(
            "client pool {}: session {} removed (member {}, {})\n",
            pool.name.as_str(), leg.name.as_str(), member, if delete { "delete" } else { "disassemble" }
        );
        let sess = leg.sess.clone();
        drop(leg);
        sess_put(sess);
    }
    Ok(())
}

/// `sessions/<s>/reconnect path=ip:<a>`: rejoin a FAILED leg over its transport. -EBUSY if the
/// transport is connected and the leg is not FAILED [choice]; -EINVAL for another address
/// (the transport keeps its path; RTRS reconnects it by itself); -ENOTCONN while the
/// transport is still down.
pub(super) fn reconnect(pool: &Arc<CltPool>, slot: usize, input: &[u8]) -> Result {
    let sname = leg_name(pool, slot);
    let addr = params::reconnect(input).map_err(|e| log_parse(sname.as_str(), e))?;
    let _ctl = pool.ctl.lock();
    let leg = pool.leg(slot).ok_or(ENODEV)?;
    if leg.sess.addr != addr {
        pr_err!("client pool {}: session {}: reconnect to another address is not supported (EINVAL)\n", pool.name.as_str(), sname.as_str());
        return Err(EINVAL);
    }
    let up = leg.sess.connected.load(Ordering::Acquire);
    let now = pool.lock().core.reconnect_check(slot, up).map_err(|e| {
        pr_err!("client pool {}: session {}: reconnect: connected and not failed ({})\n", pool.name.as_str(), sname.as_str(), cerr(e).name());
        kerr(cerr(e))
    })?;
    if !now {
        pr_err!("client pool {}: session {}: reconnect: transport still down, RTRS retries (ENOTCONN)\n", pool.name.as_str(), sname.as_str());
        return Err(kerr(Errno::ENOTCONN));
    }
    rejoin_leg(pool, slot).map_err(kerr)
}
