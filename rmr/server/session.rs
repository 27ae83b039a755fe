// SPDX-License-Identifier: GPL-2.0-or-later
//! RTRS server sessions: connect and disconnect, the messages they carry, the commands.

#![deny(unsafe_code)]

use super::*;

/// Our private data of one RTRS server session (`rmr_srv_sess`).
#[pin_data]
pub(crate) struct SrvSess {
    name: [u8; 64],
    name_len: usize,
    /// Pools this session joined, by group_id (one entry per accepted JOIN/REJOIN); the
    /// core's table decides which commands the session may send.
    #[pin]
    joined: Mutex<SessionPools<u32>>,
}

impl SrvSess {
    pub(super) fn name(&self) -> BStrDisplay<'_> {
        BStrDisplay(self.name.get(..self.name_len).unwrap_or(&[]))
    }
}

/// `RTRS_SRV_LINK_EV_CONNECTED`: allocates the session object.
pub(crate) fn on_connected(h: SessHandle) -> c_int {
    let mut name = [0u8; 64];
    let name_len = h.path_name(&mut name);
    let s = KBox::pin_init(
        pin_init!(SrvSess {
            name,
            name_len,
            joined <- new_mutex!(SessionPools::default(), "rmr_srv_sess_joined"),
        }),
        GFP_KERNEL,
    );
    match s {
        Ok(s) => {
            h.set_heartbeat();
            pr_info!("session {} connected\n", s.name());
            h.set_sess(s);
            0
        }
        Err(_) => neg(Errno::ENOMEM),
    }
}

/// `RTRS_SRV_LINK_EV_DISCONNECTED`: every operation of the session has been answered. A pool
/// the session joined and did not leave with LEAVE_POOL has lost its client (a cut link, a
/// crash): it goes NO_IO and waits for the rejoin or assemble (SPEC §4.3).
pub(crate) fn on_disconnected(s: Pin<KBox<SrvSess>>) {
    // `joined` is taken before a pool's lock (the documented order), so the pools are told
    // while it is held.
    let mut joined = s.joined.lock();
    for (group_id, sync) in joined.take_all() {
        if let Some(pool) = lookup(group_id) {
            session_lost(&pool, sync);
        }
    }
    drop(joined);
    pr_info!("session {} disconnected\n", s.name());
}

fn session_lost(pool: &Arc<SrvPool>, sync: bool) {
    let (md, old, new) = {
        let mut g = pool.inner.lock();
        let old = g.core.state;
        let fx = g.core.on_session_lost(sync);
        if fx.stop_sync {
            g.sched.stop();
        }
        let md = fx.persist_md && g.store.is_some() && !g.unregistering;
        (md, old, g.core.state)
    };
    if md {
        md_persist_sb(pool);
    }
    if old != new {
        pr_info!("server pool {}: {} -> {} (link lost)\n", pool.name(), old.name(), new.name());
    }
}

pub(super) fn proto_err(sess: &SrvSess, what: &str) {
    if ratelimit() {
        pr_err!("session {}: {} (EPROTO)\n", sess.name(), what);
    }
}

/// `rdma_ev` of a session: an IO or a command (framing in Documentation/wire-format.md).
pub(crate) fn on_rdma_ev(sess: Option<&SrvSess>, mut op: SrvOp, usr: &[u8]) {
    let Some(sess) = sess else {
        op.respond(neg(Errno::EIO));
        return;
    };
    if usr.is_empty() {
        // A large command (SEND_MAP_BUF): the whole message in the data area.
        let errno = {
            let data = op.data_mut();
            let total = data
                .get(12..16)
                .and_then(|b| b.try_into().ok())
                .map(|b: [u8; 4]| u32::from_le_bytes(b) as usize + HDR_LEN);
            match total.and_then(|t| data.get(..t)).map(Msg::decode) {
                Some(Ok((hdr, Msg::Cmd(seq, cmd)))) => run_cmd(sess, hdr.group_id, seq, &cmd, None),
                _ => {
                    proto_err(sess, "undecodable large command");
                    neg(Errno::EPROTO)
                }
            }
        };
        op.respond(errno);
        return;
    }
    match Msg::decode(usr) {
        Ok((hdr, Msg::Io(io))) => io_req(sess, hdr.group_id, io, op),
        Ok((hdr, Msg::Cmd(seq, cmd))) => {
            let r = run_cmd(sess, hdr.group_id, seq, &cmd, Some(op.data_mut()));
            op.respond(r);
        }
        Ok(_) => {
            proto_err(sess, "unexpected message type");
            op.respond(neg(Errno::EPROTO));
        }
        Err(_) => {
            proto_err(sess, "undecodable message");
            op.respond(neg(Errno::EPROTO));
        }
    }
}

pub(super) fn io_req(sess: &SrvSess, group_id: u32, io: IoMsg, op: SrvOp) {
    // A discard carries no data: the store zeroes `len` bytes.
    let want = if io.flags & IO_DISCARD != 0 { 0 } else { io.len as usize };
    if op.data_len() != want {
        proto_err(sess, "IO length differs from its data area");
        op.respond(neg(Errno::EPROTO));
        return;
    }
    let Some(pool) = lookup(group_id) else {
        if ratelimit() {
            pr_err!("session {}: IO for unknown group_id {:#x} (ENOENT)\n", sess.name(), group_id);
        }
        op.respond(neg(Errno::ENOENT));
        return;
    };
    let data = op.data_ptr();
    dispatch(pool, Incoming::New { kind: ReqKind::Rtrs(op), io, data });
}

/// Encodes `rsp` into `out` (small command: 0 or the encode error) or returns its errno
/// (large command).
pub(super) fn reply(out: Option<&mut [u8]>, group_id: u32, rsp: CmdRsp<'_>) -> i32 {
    match out {
        Some(buf) => match Msg::CmdRsp(rsp).encode(group_id, buf) {
            Ok(_) => 0,
            Err(e) => e.errno(),
        },
        None => rsp.errno,
    }
}

/// Runs one command (`seq`: its sequence number, 0 if unsequenced); see [`reply`] for the
/// return value.
pub(super) fn run_cmd(sess: &SrvSess, group_id: u32, seq: u32, cmd: &Cmd<'_>, out: Option<&mut [u8]>) -> i32 {
    let ty = cmd.ty();
    let pool = match lookup(group_id) {
        Some(p) if !p.inner.lock().dead => p,
        _ => {
            if ratelimit() {
                pr_err!("session {}: command {:?} for unknown group_id {:#x} (ENOENT)\n", sess.name(), ty, group_id);
            }
            return reply(out, group_id, CmdRsp::err(ty, CoreError::NoEnt));
        }
    };
    if let Cmd::User(req) = cmd {
        return user_cmd(&pool, req, out);
    }
    let mut joined = sess.joined.lock();
    let sync = match joined.admit(group_id, seq, cmd) {
        Ok(sync) => sync,
        Err(CoreError::Stale) => {
            drop(joined);
            if ratelimit() {
                pr_warn!(
                    "server pool {}: {:?} (seq {}) from session {} not run: the client sent a newer command since (ESTALE)\n",
                    pool.name(), ty, seq, sess.name()
                );
            }
            return reply(out, group_id, CmdRsp::err(ty, CoreError::Stale));
        }
        Err(e) => {
            drop(joined);
            if ratelimit() {
                pr_err!("server pool {}: {:?} from session {} that did not join ({})\n", pool.name(), ty, sess.name(), e.to_errno().name());
            }
            return reply(out, group_id, CmdRsp::err(ty, e));
        }
    };
    if matches!(cmd, Cmd::StoreCheck) {
        let allowed = match pool.store_get() {
            Some(s) => {
                let a = s.io_allowed();
                pool.store_put();
                a
            }
            None => false,
        };
        pool.inner.lock().core.io_allowed = allowed;
    }
    let total = pool.inner.lock().core.total_chunks();
    pool.prepare_maps(total, matches!(cmd, Cmd::MapReady));
    pool.prepare_intent();
    if CorePool::may_make_lost_map(cmd) {
        pool.prepare_lost(total);
    }
    let now = now_ms();
    let mut out = out;
    let (errno, mut ret, md, old, new, resolved) = {
        let mut g = pool.inner.lock();
        let inner = &mut *g;
        let old = inner.core.state;
        let own = |c: &CorePool| c.maps.get(c.member_id).map_or(0, |m| m.count());
        let suspects = inner.core.intent.suspect.as_ref().map_or(0, |m| m.count());
        let own0 = own(&inner.core);
        let (rsp, fx) = inner.core.handle_cmd(cmd, sync, now, &mut inner.piece);
        let own1 = own(&inner.core);
        let resolved = (suspects > 0 && own1 > own0).then_some((suspects, own0, own1));
        let errno = rsp.errno;
        let ret = reply(out.as_deref_mut(), group_id, rsp);
        if fx.stop_sync {
            inner.sched.stop();
        }
        // The reply leaves after the bits it depends on are durable (persist.rs); a
        // pool_md change alone needs only the superblock.
        let need = inner.core.md_need().is_some();
        let live = inner.store.is_some() && !inner.unregistering;
        (errno, ret, (live && need, live && fx.persist_md), old, inner.core.state, resolved)
    };
    if let Some((s, a, b)) = resolved {
        pr_info!(
            "server pool {}: {:?} with {} suspect chunks of the write-intent record: own map {} -> {} dirty\n",
            pool.name(), ty, s, a, b
        );
    }
    joined.on_answer(group_id, seq, cmd, errno);
    drop(joined);
    match md {
        (true, _) => {
            if md_persist(&pool).is_err() && errno == 0 {
                ret = reply(out, group_id, CmdRsp::err(ty, CoreError::Io));
            }
        }
        (false, true) => md_persist_sb(&pool),
        _ => {}
    }
    if old != new {
        pr_info!("server pool {}: {} -> {} ({:?} from {})\n", pool.name(), old.name(), new.name(), ty, sess.name());
        if new == SrvState::Normal {
            auto_sync(&pool);
        }
    } else if matches!(cmd, Cmd::JoinPool(_) | Cmd::RejoinPool(_)) && errno == 0 {
        pr_info!("server pool {}: {}{:?} from {} accepted\n", pool.name(),
            if sync { "sync " } else { "" }, ty, sess.name());
    }
    if errno != 0 && ratelimit() {
        let name = Errno::from_raw(-errno).map(|e| e.name()).unwrap_or("error");
        pr_err!("server pool {}: {:?} from {} refused in state {} ({})\n", pool.name(), ty, sess.name(), new.name(), name);
    }
    ret
}

/// An opaque upper-layer (BRMR) command: handled by the store's `cmd` op.
pub(super) fn user_cmd(pool: &Arc<SrvPool>, req: &[u8], out: Option<&mut [u8]>) -> i32 {
    let ty = CmdType::User;
    let Some(store) = pool.store_get() else {
        return reply(out, pool.group_id, CmdRsp::err(ty, CoreError::NoDev));
    };
    let mut rsp = [0u8; USER_MAX];
    let n = store.cmd(req, &mut rsp);
    pool.store_put();
    let r = if n < 0 {
        CmdRsp { ty, errno: n, body: RspBody::Empty }
    } else {
        let n = core::cmp::min(n as usize, USER_MAX);
        CmdRsp::ok(ty, RspBody::User(rsp.get(..n).unwrap_or(&[])))
    };
    reply(out, pool.group_id, r)
}
