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

/// Drives the core's [`JoinRun`] for a new leg on `sess` (§6.2). The leg object and its
/// directory are made before anything is sent; the leg is installed in the step that
/// finishes the join, under the pool lock, so nothing can fail after the pool took it.
pub(super) fn add_leg(pool: &Arc<CltPool>, sname: Name, sess: &Arc<CltSess>, mode: Option<AddMode>) -> Result<(), Errno> {
    let jmode = match mode {
        Some(AddMode::Create) => JoinMode::Create,
        Some(AddMode::Assemble) => JoinMode::Assemble,
        None => JoinMode::Sync,
    };
    let params = JoinParams {
        mode: jmode,
        chunk_size: pool.chunk_size,
        queue_depth: u16::try_from(pool.queue_depth).map_err(|_| Errno::EINVAL)?,
        name: wire::PoolName::new(pool.name.as_bytes()).map_err(cerr)?,
        group_id: pool.group_id,
    };
    let leg_id = state().ok_or(Errno::ENODEV)?.new_id();
    let leg = Arc::new(
        LegObj { name: sname, sess: sess.clone(), reads: AtomicU64::new(0), writes: AtomicU64::new(0) },
        GFP_KERNEL,
    )
    .map_err(|_| Errno::ENOMEM)?;
    let dir = {
        let st = state().ok_or(Errno::ENODEV)?;
        let e = st.clt.iter().flatten().find(|e| Arc::ptr_eq(&e.pool, pool)).ok_or(Errno::ENODEV)?;
        Dir::new(Parent::Dir(&e._sessions), sname.as_bytes(), kind::CLT_SESS, leg_id).map_err(|_| Errno::ENOMEM)?
    };
    let mut run = JoinRun::new(&pool.lock().core, params).map_err(cerr)?;
    let freeze = run.freezes_io();
    if freeze {
        pool.freeze_and_drain()?;
    }
    let on_reply = |run: &mut JoinRun, rsp: &CmdRsp<'_>| {
        // Maps the step may create get storages allocated here, before the lock.
        if !pool.sync {
            let total = match (pool.lock().core.total_chunks, &rsp.body) {
                (0, RspBody::Join { mapped_size, .. }) => {
                    mapped_size.saturating_mul(512).div_ceil(u64::from(pool.chunk_size.max(1)))
                }
                (t, _) => t,
            };
            if total != 0 && !prepare_spares(total, |f| f(&mut pool.lock().maps)) {
                pr_warn!("client pool {}: no memory to prepare dirty maps; new maps allocate on demand\n", pool.name.as_str());
            }
        }
        let mut g = pool.lock();
        let c = &mut *g;
        let st = run.on_reply(&mut c.core, &mut c.maps, rsp, now_ms());
        if let JoinStep::Done(Ok(slot)) = st {
            if let Some(l) = c.legs.get_mut(slot) {
                *l = Some(leg.clone());
            }
            // A link lost during the join was reported before the leg was installed.
            if !sess.connected.load(Ordering::Acquire) {
                c.core.set_connected(slot, false);
            }
            if !pool.sync {
                pool.mapped_size.store(c.core.mapped_size, Ordering::Release);
            }
        }
        st
    };
    let mut step = run.start(&pool.lock().core);
    let done = loop {
        step = match step {
            JoinStep::Done(r) => break r,
            JoinStep::SendNew(cmd) => pool.send(sess, &cmd, |rsp| on_reply(&mut run, rsp)),
            JoinStep::Send { slot, cmd } => {
                let mut rsp_of = |rsp: &CmdRsp<'_>| {
                    if rsp.errno != 0 {
                        pr_err!(
                            "client pool {}: join of {}: {:?} to slot {} failed ({})\n",
                            pool.name.as_str(), sname.as_str(), cmd.ty(), slot, Errno::from_kernel(rsp.errno).name()
                        );
                    }
                    on_reply(&mut run, rsp)
                };
                match pool.leg(slot) {
                    Some(l) => pool.send(&l.sess, &cmd, rsp_of),
                    None => rsp_of(&CmdRsp { ty: cmd.ty(), errno: Errno::ENOENT.to_kernel(), body: RspBody::Empty }),
                }
            }
        };
    };
    if freeze {
        pool.unfreeze();
    }
    let slot = match done {
        Ok(s) => s,
        Err(e) => {
            let e = cerr(e);
            if e == Errno::EEXIST {
                pr_err!(
                    "client pool {}: session {}: member {} already has a leg (EEXIST){}\n",
                    pool.name.as_str(), sname.as_str(), run.member(),
                    if run.dup_enable_failed() { "; re-enabling it failed" } else { "" }
                );
            } else {
                pr_err!("client pool {}: session {}: join refused ({})\n", pool.name.as_str(), sname.as_str(), e.name());
            }
            drop(dir);
            return Err(e);
        }
    };
    {
        let mut st = state().ok_or(Errno::ENODEV)?;
        let e = st.clt.iter_mut().flatten().find(|e| Arc::ptr_eq(&e.pool, pool)).ok_or(Errno::ENODEV)?;
        if let Some(s) = e.leg_dirs.get_mut(slot) {
            *s = Some((leg_id, dir));
        }
    }
    pr_info!(
        "client pool {}: session {} joined member {} ({})\n",
        pool.name.as_str(),
        sname.as_str(),
        run.member(),
        match jmode {
            JoinMode::Create => "create",
            JoinMode::Assemble => "assemble",
            JoinMode::Sync => "sync",
        }
    );
    for p in slots(run.failed_peers()) {
        pr_err!("client pool {}: slot {} failed: it did not take member {}\n", pool.name.as_str(), p, run.member());
    }
    if run.wants_try_enable() {
        let _ = try_enable(pool);
    }
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

/// Drives the core's [`RemoveRun`] (§6.3); on success drops the leg object, its directory
/// and its transport reference. A failed command halts it with the leg REMOVING.
pub(super) fn remove_leg(pool: &Arc<CltPool>, slot: usize, delete: bool) -> Result<(), Errno> {
    let mut run = RemoveRun::new(&pool.lock().core, slot, delete).map_err(cerr)?;
    pool.freeze_and_drain()?;
    let connected = pool.leg(slot).is_some_and(|l| l.sess.connected.load(Ordering::Acquire));
    let mut leg = None;
    // Under the lock of the step that frees the slot, the leg object leaves with it.
    let mut take_leg = |c: &mut Core, st: Step<'static>| {
        if st == Step::Done(Ok(())) {
            leg = c.legs.get_mut(slot).and_then(|l| l.take());
        }
        st
    };
    let mut step = {
        let mut g = pool.lock();
        let c = &mut *g;
        let st = run.start(&mut c.core, &mut c.maps, connected);
        take_leg(c, st)
    };
    loop {
        step = match step {
            Step::Done(r) => break r.map_err(cerr)?,
            Step::Send { slot: to, cmd } => {
                let mut rsp_of = |rsp: &CmdRsp<'_>| {
                    let mut g = pool.lock();
                    let c = &mut *g;
                    let st = run.on_reply(&mut c.core, &mut c.maps, rsp);
                    take_leg(c, st)
                };
                match pool.leg(to) {
                    Some(l) => pool.send(&l.sess, &cmd, rsp_of),
                    None => rsp_of(&CmdRsp { ty: cmd.ty(), errno: Errno::ENOENT.to_kernel(), body: RspBody::Empty }),
                }
            }
        };
    }
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
            pool.name.as_str(), leg.name.as_str(), run.member(), if delete { "delete" } else { "disassemble" }
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
