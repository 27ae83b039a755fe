// SPDX-License-Identifier: GPL-2.0-or-later
//! Commands to legs: encode, send over the leg's transport, decode the reply, drive the
//! core's step machines; freezing and draining IO around map moves.

#![deny(unsafe_code)]

use super::*;

/// The client's command sequence: every sequenced command (`Cmd::sequenced`) takes the next
/// number, never 0. One counter for the module makes the numbers grow on every (session,
/// pool) pair, which is what the server checks; each pool sends its sequenced commands one at
/// a time (under its `ctl` lock).
static CMD_SEQ: AtomicU32 = AtomicU32::new(0);

fn next_seq(cmd: &Cmd<'_>) -> u32 {
    if !cmd.sequenced() {
        return 0;
    }
    loop {
        let s = CMD_SEQ.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        if s != 0 {
            return s;
        }
    }
}

impl CltPool {
    /// Sends `cmd` on `sess` and hands the decoded reply to `f`. Transport failures become an
    /// error reply (`Io`-class errno), as the step machines expect. A command the core says
    /// is safe to repeat is sent once more after a timeout (`resend_after_timeout`).
    pub(super) fn send<R>(&self, sess: &CltSess, cmd: &Cmd<'_>, f: impl FnOnce(&CmdRsp<'_>) -> R) -> R {
        let ty = cmd.ty();
        let fail = |e: Errno| CmdRsp { ty, errno: e.to_kernel(), body: RspBody::Empty };
        let mut msg = KVec::new();
        if msg.extend_with(wire::MAX_MSG_LEN, 0u8, GFP_KERNEL).is_err() {
            return f(&fail(Errno::ENOMEM));
        }
        let mut rsp = KVec::new();
        if rsp.extend_with(RSP_BUF_LEN, 0u8, GFP_KERNEL).is_err() {
            return f(&fail(Errno::ENOMEM));
        }
        let mut resent = false;
        let r = loop {
            let seq = next_seq(cmd);
            let n = match Msg::Cmd(seq, *cmd).encode(self.group_id, &mut msg) {
                Ok(n) => n,
                Err(e) => return f(&fail(cerr(e))),
            };
            match sess.cmd(&msg[..n], &mut rsp) {
                Err(e) if !resent && resend_after_timeout(cmd, e.to_kernel()) => {
                    resent = true;
                    pr_warn!(
                        "client pool {}: session {}: {:?} (seq {}) timed out, sending it again\n",
                        self.name.as_str(), sess.name.as_str(), ty, seq
                    );
                }
                r => break r,
            }
        };
        match r {
            Ok(0) => f(&CmdRsp { ty, errno: 0, body: RspBody::Empty }),
            Ok(len) => match Msg::decode(&rsp[..len]) {
                Ok((_, Msg::CmdRsp(r))) if r.ty == ty => f(&r),
                _ => {
                    pr_err!("client pool {}: session {}: malformed reply to {:?}\n", self.name.as_str(), sess.name.as_str(), ty);
                    f(&fail(Errno::EPROTO))
                }
            },
            Err(e) => f(&fail(e)),
        }
    }

    /// Sends `cmd` on leg `slot`; the reply's errno as a result.
    pub(super) fn send_slot(&self, slot: usize, cmd: &Cmd<'_>) -> Result<(), Errno> {
        let leg = self.leg(slot).ok_or(Errno::ENOENT)?;
        self.send(&leg.sess, cmd, |r| if r.errno == 0 { Ok(()) } else { Err(Errno::from_kernel(r.errno)) })
    }

    /// Freezes new IO and waits until the IO in flight has finished; on a failed wait IO is
    /// thawed again and nothing else changed.
    pub(super) fn freeze_and_drain(&self) -> Result<(), Errno> {
        self.lock().core.frozen = true;
        let r = self.wait_drained();
        if r.is_err() {
            self.unfreeze();
        }
        r
    }

    /// Waits (sleeping, interruptibly) until no IO unit is in use, at most twice
    /// `cmd_timeout_ms`: an IO waits at most for one transport confirmation and one MAP_ADD
    /// round, each bounded by it.
    pub(super) fn wait_drained(&self) -> Result<(), Errno> {
        let bound = u64::from(cmd_timeout_ms()) * 2;
        let start = now_ms();
        loop {
            let n = self.lock().in_flight;
            if n == 0 {
                return Ok(());
            }
            if now_ms().saturating_sub(start) >= bound {
                pr_err!("client pool {}: {} IOs still in flight after {} ms (ETIMEDOUT)\n", self.name.as_str(), n, bound);
                return Err(Errno::ETIMEDOUT);
            }
            if !sleep_ms_interruptible(1) {
                pr_err!("client pool {}: interrupted waiting for {} IOs in flight (EINTR)\n", self.name.as_str(), n);
                return Err(Errno::EINTR);
            }
        }
    }

    pub(super) fn unfreeze(&self) {
        self.lock().core.frozen = false;
    }
}

/// A step whose command owns its piece (see [`CltPool::drive`]).
pub(super) enum OwnedStep {
    Send { slot: usize, cmd: OwnedCmd },
    Done(Result<(), Errno>),
}

/// A command with an owned piece buffer.
pub(super) struct OwnedCmd {
    cmd: Cmd<'static>,
    piece: Option<(u32, u32, KVec<u8>)>,
}

impl OwnedCmd {
    fn ty(&self) -> wire::CmdType {
        self.cmd.ty()
    }
    fn as_cmd(&self) -> Cmd<'_> {
        match &self.piece {
            Some((member, page, data)) => Cmd::SendMapBuf(wire::Piece { member: *member, page: *page, data }),
            None => self.cmd,
        }
    }
}

pub(super) fn own_step(s: Step<'_>) -> Result<OwnedStep, Errno> {
    Ok(match s {
        Step::Done(r) => OwnedStep::Done(r.map_err(cerr)),
        Step::Send { slot, cmd: Cmd::SendMapBuf(p) } => {
            let mut data = KVec::new();
            // Runs under the pool spinlock (bottom halves off): no sleeping allocation.
            data.extend_from_slice(p.data, GFP_ATOMIC).map_err(|_| Errno::ENOMEM)?;
            OwnedStep::Send {
                slot,
                cmd: OwnedCmd { cmd: Cmd::MapReady, piece: Some((p.member, p.page, data)) },
            }
        }
        Step::Send { slot, cmd } => match cmd.to_static() {
            Some(c) => OwnedStep::Send { slot, cmd: OwnedCmd { cmd: c, piece: None } },
            None => OwnedStep::Done(Err(Errno::EINVAL)),
        },
    })
}

impl CltPool {
    pub(super) fn drive_owned(
        &self,
        first: OwnedStep,
        mut next: impl FnMut(&mut Core, &CmdRsp<'_>) -> Result<OwnedStep, Errno>,
    ) -> Result<(), Errno> {
        let mut step = first;
        // IO in flight must finish before any map moves.
        self.wait_drained()?;
        loop {
            match step {
                OwnedStep::Done(r) => return r,
                OwnedStep::Send { slot, cmd } => {
                    let leg = self.leg(slot);
                    let as_cmd = cmd.as_cmd();
                    step = match leg {
                        Some(leg) => self.send(&leg.sess, &as_cmd, |rsp| next(&mut self.lock(), rsp))?,
                        None => {
                            let rsp = CmdRsp { ty: cmd.ty(), errno: Errno::ENOENT.to_kernel(), body: RspBody::Empty };
                            next(&mut self.lock(), &rsp)?
                        }
                    };
                }
            }
        }
    }

    /// `rmr_clt_cmd_with_rsp` (§6.9): `msg` as a USER command to every leg that takes
    /// commands; slice i of `buf` receives leg i's answer.
    pub(crate) fn cmd_with_rsp(&self, msg: &[u8], buf: &mut [u8], size: usize) -> Result<c_int, Errno> {
        if size == 0 || 4usize.checked_mul(size) != Some(buf.len()) {
            return Err(Errno::EINVAL);
        }
        let _ctl = self.ctl.lock();
        let legs: [Option<Arc<LegObj>>; 4] = {
            let c = self.lock();
            let targets = c.core.cmd_targets();
            let mut v: [Option<Arc<LegObj>>; 4] = [None, None, None, None];
            for i in slots(targets) {
                v[i] = c.legs[i].clone();
            }
            v
        };
        let (mut sent, mut failed, mut last) = (0, 0, 0);
        for (i, l) in legs.iter().enumerate() {
            let Some(leg) = l else { continue };
            sent += 1;
            let Some(slice) = buf.get_mut(i * size..(i + 1) * size) else { continue };
            let r = self.send(&leg.sess, &Cmd::User(msg), |r| match (r.errno, r.body) {
                (0, RspBody::User(d)) => {
                    let n = d.len().min(slice.len());
                    slice[..n].copy_from_slice(&d[..n]);
                    Ok(())
                }
                (0, _) => Err(Errno::EPROTO),
                (e, _) => Err(Errno::from_kernel(e)),
            });
            if let Err(e) = r {
                failed += 1;
                last = e.to_kernel();
            }
        }
        Ok(crate::rmr_core::client::cmd_conf(sent, failed, last))
    }

    /// Sends `cmd` to `member`'s leg; the reply's errno and body handed to `f`.
    pub(crate) fn member_cmd<R>(&self, member: u32, cmd: &Cmd<'_>, f: impl FnOnce(&CmdRsp<'_>) -> R) -> Result<R, Errno> {
        let leg = {
            let c = self.lock();
            let slot = c.core.slot_of(member).ok_or(Errno::ENOENT)?;
            c.legs[slot].clone().ok_or(Errno::ENOENT)?
        };
        Ok(self.send(&leg.sess, cmd, f))
    }
}
