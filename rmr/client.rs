// SPDX-License-Identifier: GPL-2.0-or-later
//! rmr-client role (SPEC §2.2, §4.1-4.2, §5.1-5.2, §6.2-6.3, §6.7): pools, legs, replicated
//! IO. Every decision comes from `rmr_core::client` and `rmr_core::control`; this file owns
//! the kernel objects (locks, sysfs directories, transport sessions, IO units) and moves
//! messages.
//!
//! Locking: the module `state()` mutex only finds objects. Each pool has a `ctl` mutex that
//! serialises its control operations (they sleep on the network) and a `core` spinlock for
//! everything the IO path touches. Order: state → ctl → core; nothing sleeps under `core`.

use crate::abi::{RmrCltIo, RMR_IO_FLUSH, RMR_IO_FUA, RMR_IO_WRITE};
use crate::kind;
use crate::kmap::KMapStorage;
use crate::rmr_core::{
    client::{Admit, ClientPool as CorePool, LegState, WriteReq, WriteStep},
    control::{MapUpdate, Step, TryEnableRun},
    dirtymap::MapSet,
    errno::Errno,
    error::Error as CoreError,
    jhash,
    params::{self, AddMode, DelMode, Name},
    wire::{self, Cmd, CmdRsp, InfoOp, IoMsg, JoinBody, MemberList, Msg, PoolMd, RmrId, RspBody, SrvMd},
};
use crate::server::free_slot;
use crate::sysfs::{Dir, PageWriter, Parent};
use crate::transport::{CltSess, RSP_BUF_LEN};
use crate::{err, state, State};
use core::ffi::{c_int, c_void};
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use kernel::prelude::*;
use kernel::sync::{Arc, Mutex, SpinLock};
use kernel::{new_mutex, new_spinlock};

/// Milliseconds since boot, the core's clock.
pub(crate) fn now_ms() -> u64 {
    u64::try_from(kernel::time::Ktime::ktime_get().to_ms()).unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Objects

/// The kernel half of a leg: its transport and counters.
pub(crate) struct LegObj {
    pub(crate) name: Name,
    pub(crate) sess: Arc<CltSess>,
    pub(crate) reads: AtomicU64,
    pub(crate) writes: AtomicU64,
}

/// Token handed to RTRS for one (IO unit, leg) request.
struct Token {
    pool: *const CltPool,
    unit: u16,
    slot: u8,
}

/// One IO unit (`mem_id`).
struct Unit {
    busy: bool,
    io: *mut RmrCltIo,
    write: bool,
    /// Write routing state.
    req: Option<WriteReq>,
    /// Read: the leg it went to.
    read_slot: usize,
    served: u32,
    permits: [*mut c_void; 4],
    sess: [Option<Arc<CltSess>>; 4],
    tokens: [Token; 4],
    msg: [u8; 128],
    msg_len: usize,
}

/// What the IO path needs, behind the pool spinlock.
pub(crate) struct Core {
    pub(crate) core: CorePool,
    pub(crate) maps: MapSet<KMapStorage>,
    pub(crate) legs: [Option<Arc<LegObj>>; 4],
    units: KVec<Unit>,
    in_flight: u32,
}

// SAFETY: the raw pointers in `Unit` are only dereferenced under the spinlock or by the
// completion that owns the unit; they point to objects that outlive the unit's use.
unsafe impl Send for Core {}

/// A client pool.
#[pin_data]
pub(crate) struct CltPool {
    pub(crate) id: u64,
    pub(crate) name: Name,
    pub(crate) group_id: u32,
    pub(crate) chunk_size: u32,
    chunk_shift: u32,
    pub(crate) sync: bool,
    pub(crate) queue_depth: u32,
    pub(crate) in_use: AtomicBool,
    mapped_size: AtomicU64,
    #[pin]
    pub(crate) ctl: Mutex<()>,
    #[pin]
    pub(crate) core: SpinLock<Core>,
}

extern "C" {
    fn rmr_bh_disable();
    fn rmr_bh_enable();
}

/// The pool spinlock held with bottom halves disabled: RTRS completes IO in softirq
/// context, which takes the same lock.
pub(crate) struct CoreGuard<'a> {
    g: core::mem::ManuallyDrop<kernel::sync::lock::Guard<'a, Core, kernel::sync::lock::spinlock::SpinLockBackend>>,
}

impl core::ops::Deref for CoreGuard<'_> {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.g
    }
}

impl core::ops::DerefMut for CoreGuard<'_> {
    fn deref_mut(&mut self) -> &mut Core {
        &mut self.g
    }
}

impl Drop for CoreGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: dropped exactly once, here; then bottom halves are enabled again as
        // disabled by `CltPool::lock`.
        unsafe {
            core::mem::ManuallyDrop::drop(&mut self.g);
            rmr_bh_enable();
        }
    }
}

impl CltPool {
    /// Locks the IO-path state.
    pub(crate) fn lock(&self) -> CoreGuard<'_> {
        // SAFETY: balanced by `CoreGuard::drop`.
        unsafe { rmr_bh_disable() };
        CoreGuard { g: core::mem::ManuallyDrop::new(self.core.lock()) }
    }
}

/// The module's entry for a pool: the object and its directories.
pub(crate) struct PoolEntry {
    pub(crate) pool: Arc<CltPool>,
    /// `(leg id, directory)` of each slot.
    leg_dirs: [Option<(u64, Dir)>; 4],
    _sessions: Dir,
    _dir: Dir,
}

impl PoolEntry {
    pub(crate) fn has_legs(&self) -> bool {
        self.leg_dirs.iter().any(|d| d.is_some())
    }
}

fn log_parse(what: &str, e: params::ParseError) -> Error {
    pr_err!("rmr-client {}: {}\n", what, e);
    err(e.errno())
}

fn cerr(e: CoreError) -> Errno {
    e.to_errno()
}

fn kerr(e: Errno) -> Error {
    err(e)
}

fn by_id(st: &State, id: u64) -> Option<Arc<CltPool>> {
    st.clt.iter().flatten().find(|p| p.pool.id == id).map(|p| p.pool.clone())
}

fn leg_by_id(st: &State, id: u64) -> Option<(Arc<CltPool>, usize)> {
    for e in st.clt.iter().flatten() {
        for (slot, d) in e.leg_dirs.iter().enumerate() {
            if d.as_ref().is_some_and(|(i, _)| *i == id) {
                return Some((e.pool.clone(), slot));
            }
        }
    }
    None
}

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
                io: core::ptr::null_mut(),
                write: false,
                req: None,
                read_slot: 0,
                served: 0,
                permits: [core::ptr::null_mut(); 4],
                sess: [None, None, None, None],
                tokens: [
                    Token { pool: core::ptr::null(), unit: 0, slot: 0 },
                    Token { pool: core::ptr::null(), unit: 0, slot: 1 },
                    Token { pool: core::ptr::null(), unit: 0, slot: 2 },
                    Token { pool: core::ptr::null(), unit: 0, slot: 3 },
                ],
                msg: [0; 128],
                msg_len: 0,
            },
            GFP_KERNEL,
        )?;
    }
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
            ctl <- new_mutex!((), "rmr_clt_pool_ctl"),
            core <- new_spinlock!(
                Core {
                    core: CorePool::new(j.sync, 0),
                    maps: MapSet::new(),
                    legs: [None, None, None, None],
                    units,
                    in_flight: 0,
                },
                "rmr_clt_pool_core"
            ),
        }),
        GFP_KERNEL,
    )?;
    {
        // Tokens point at the pool, whose address is final now.
        let pp: *const CltPool = &*pool;
        let mut c = pool.lock();
        for (u, unit) in c.units.iter_mut().enumerate() {
            for t in unit.tokens.iter_mut() {
                t.pool = pp;
                t.unit = u as u16;
            }
        }
    }
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

// ---------------------------------------------------------------------------------------------
// Commands

impl CltPool {
    fn leg(&self, slot: usize) -> Option<Arc<LegObj>> {
        self.lock().legs.get(slot).and_then(|l| l.clone())
    }

    /// Sends `cmd` on `sess` and hands the decoded reply to `f`. Transport failures become an
    /// error reply (`Io`-class errno), as the step machines expect.
    fn send<R>(&self, sess: &CltSess, cmd: &Cmd<'_>, f: impl FnOnce(&CmdRsp<'_>) -> R) -> R {
        let ty = cmd.ty();
        let fail = |e: Errno| CmdRsp { ty, errno: e.to_kernel(), body: RspBody::Empty };
        let mut msg = KVec::new();
        if msg.extend_with(wire::MAX_MSG_LEN, 0u8, GFP_KERNEL).is_err() {
            return f(&fail(Errno::ENOMEM));
        }
        let n = match Msg::Cmd(*cmd).encode(self.group_id, &mut msg) {
            Ok(n) => n,
            Err(e) => return f(&fail(cerr(e))),
        };
        let mut rsp = KVec::new();
        if rsp.extend_with(RSP_BUF_LEN, 0u8, GFP_KERNEL).is_err() {
            return f(&fail(Errno::ENOMEM));
        }
        match sess.cmd(&msg[..n], &mut rsp) {
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
    fn send_slot(&self, slot: usize, cmd: &Cmd<'_>) -> Result<(), Errno> {
        let leg = self.leg(slot).ok_or(Errno::ENOENT)?;
        self.send(&leg.sess, cmd, |r| if r.errno == 0 { Ok(()) } else { Err(Errno::from_kernel(r.errno)) })
    }

    /// Freezes new IO and waits until the IO in flight has finished.
    fn freeze_and_drain(&self) {
        self.lock().core.frozen = true;
        self.wait_drained();
    }

    /// Waits (sleeping) until no IO unit is in use.
    fn wait_drained(&self) {
        while self.lock().in_flight > 0 {
            // SAFETY: plain sleep in process context.
            unsafe { kernel::bindings::msleep(1) };
        }
    }

    fn unfreeze(&self) {
        self.lock().core.frozen = false;
    }
}

/// A step whose command owns its piece (see [`CltPool::drive`]).
enum OwnedStep {
    Send { slot: usize, cmd: OwnedCmd },
    Done(Result<(), Errno>),
}

/// A command with an owned piece buffer.
struct OwnedCmd {
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

fn own_step(s: Step<'_>) -> Result<OwnedStep, Errno> {
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

// ---------------------------------------------------------------------------------------------
// Transport sessions (shared, refcounted by legs)

fn sess_get(name: Name, addr: [u8; 4]) -> Result<Arc<CltSess>, Errno> {
    {
        let mut st = state().ok_or(Errno::ENODEV)?;
        if let Some(e) = st.sess.iter_mut().find(|e| e.0.name == name) {
            if e.0.addr != addr {
                pr_err!("session {}: exists with another path (EINVAL)\n", name.as_str());
                return Err(Errno::EINVAL);
            }
            e.1 += 1;
            return Ok(e.0.clone());
        }
    }
    let s = CltSess::open(name, addr)?;
    let mut st = state().ok_or(Errno::ENODEV)?;
    if let Some(e) = st.sess.iter_mut().find(|e| e.0.name == name) {
        // Opened concurrently by another leg: use that one, ours closes on drop.
        e.1 += 1;
        let other = e.0.clone();
        drop(st);
        drop(s);
        return Ok(other);
    }
    st.sess.push((s.clone(), 1), GFP_KERNEL).map_err(|_| Errno::ENOMEM)?;
    Ok(s)
}

fn sess_put(s: Arc<CltSess>) {
    let last = {
        let Some(mut st) = state() else { return };
        let Some(i) = st.sess.iter().position(|e| Arc::ptr_eq(&e.0, &s)) else { return };
        st.sess[i].1 -= 1;
        if st.sess[i].1 == 0 {
            // Swap-remove (KVec has no remove).
            let n = st.sess.len();
            st.sess.swap(i, n - 1);
            kvec_pop(&mut st.sess)
        } else {
            None
        }
    };
    // The RTRS session closes (sleeps) here, outside the module lock.
    drop(last);
    drop(s);
}

/// Removes and returns the last element (KVec on 6.12 has no `pop`).
fn kvec_pop<T>(v: &mut KVec<T>) -> Option<T> {
    let n = v.len();
    if n == 0 {
        return None;
    }
    // SAFETY: element `n - 1` is initialised; after the read the length is reduced so it is
    // never dropped twice.
    unsafe {
        let x = core::ptr::read(v.as_ptr().add(n - 1));
        v.set_len(n - 1);
        Some(x)
    }
}

// ---------------------------------------------------------------------------------------------
// sysfs: pool attributes

pub(crate) fn show(id: u64, attr: &[u8], _w: &mut PageWriter<'_>) -> Result {
    let _ = (id, attr);
    Err(EINVAL)
}

pub(crate) fn store(id: u64, attr: &[u8], input: &[u8]) -> Result {
    match attr {
        b"leave_pool" => leave_pool(id, input),
        b"add_sess" => add_sess(id, input),
        b"pool_enable" => pool_enable(id, input),
        _ => Err(EINVAL),
    }
}

fn leave_pool(id: u64, input: &[u8]) -> Result {
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

/// `pools/<p>/add_sess sessname=<s> path=ip:<a> [mode=create|assemble]` (§6.2).
fn add_sess(id: u64, input: &[u8]) -> Result {
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

fn add_leg(pool: &Arc<CltPool>, sname: Name, sess: &Arc<CltSess>, mode: Option<AddMode>) -> Result<(), Errno> {
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
        pool.freeze_and_drain();
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

/// The slots set in `mask`, in ascending order.
fn slots(mask: u8) -> impl Iterator<Item = usize> {
    (0..4).filter(move |s| mask & (1 << s) != 0)
}

/// `pool_enable 1` and every try-enable trigger (§6.7).
fn try_enable(pool: &CltPool) -> Result<(), Errno> {
    let first = {
        let mut c = pool.lock();
        let c = &mut *c;
        // `new` freezes IO; `drive_owned` waits for the IO in flight before maps move.
        let Some(mut run) = TryEnableRun::new(&mut c.core) else { return Ok(()) };
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

impl CltPool {
    fn drive_owned(
        &self,
        first: OwnedStep,
        mut next: impl FnMut(&mut Core, &CmdRsp<'_>) -> Result<OwnedStep, Errno>,
    ) -> Result<(), Errno> {
        let mut step = first;
        // IO in flight must finish before any map moves.
        self.wait_drained();
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
}

fn pool_enable(id: u64, input: &[u8]) -> Result {
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

// ---------------------------------------------------------------------------------------------
// sysfs: session attributes

pub(crate) fn sess_show(id: u64, attr: &[u8], w: &mut PageWriter<'_>) -> Result {
    let (pool, slot) = {
        let st = state().ok_or(ENODEV)?;
        leg_by_id(&st, id)
    }
    .ok_or(ENODEV)?;
    let c = pool.lock();
    let l = c.core.leg(slot).ok_or(ENODEV)?;
    let (st, maint, member) = (l.state, l.maintenance, l.member_id);
    drop(c);
    match attr {
        b"state" => {
            writeln!(w, "{}", st.name()).map_err(|_| EINVAL)?;
            if maint {
                writeln!(w, "Maintenance mode: 1").map_err(|_| EINVAL)?;
            }
            Ok(())
        }
        b"member_id" => writeln!(w, "{}", member).map_err(|_| EINVAL),
        _ => Err(EINVAL),
    }
}

pub(crate) fn sess_store(id: u64, attr: &[u8], input: &[u8]) -> Result {
    let (pool, slot) = {
        let st = state().ok_or(ENODEV)?;
        leg_by_id(&st, id)
    }
    .ok_or(ENODEV)?;
    match attr {
        b"enable" => enable(&pool, slot, input),
        b"del_sess" => del_sess(&pool, slot, input),
        b"reconnect" => reconnect(&pool, slot, input),
        _ => Err(EINVAL),
    }
}

fn leg_name(pool: &CltPool, slot: usize) -> Name {
    pool.leg(slot).map_or(pool.name, |l| l.name)
}

/// `sessions/<s>/enable 1|0` (§6.2 step 5, §8).
fn enable(pool: &Arc<CltPool>, slot: usize, input: &[u8]) -> Result {
    let sname = leg_name(pool, slot);
    let on = params::parse_trigger(input, true).map_err(|e| log_parse(sname.as_str(), e))?;
    let _ctl = pool.ctl.lock();
    let r = if on { admit(pool, slot) } else { maintenance(pool, slot) };
    r.map_err(|e| {
        pr_err!("client pool {}: session {}: enable={} failed ({})\n", pool.name.as_str(), sname.as_str(), u8::from(on), e.name());
        kerr(e)
    })
}

fn admit(pool: &Arc<CltPool>, slot: usize) -> Result<(), Errno> {
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
            pool.freeze_and_drain();
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

fn maintenance(pool: &Arc<CltPool>, slot: usize) -> Result<(), Errno> {
    pool.freeze_and_drain();
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
fn del_sess(pool: &Arc<CltPool>, slot: usize, input: &[u8]) -> Result {
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

fn remove_leg(pool: &Arc<CltPool>, slot: usize, delete: bool) -> Result<(), Errno> {
    // Step 1: REMOVING, drain, leave.
    pool.freeze_and_drain();
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

/// Link events (§4.2, §6.2 Reconnect): a leg whose transport went down fails; a FAILED leg
/// whose transport is back rejoins. Runs in a work item.
pub(crate) fn kick_recovery() {
    let _ = kernel::workqueue::system().try_spawn(GFP_ATOMIC, || {
        let pools: KVec<Arc<CltPool>> = match state() {
            Some(st) => {
                let mut v = KVec::new();
                for e in st.clt.iter().flatten() {
                    let _ = v.push(e.pool.clone(), GFP_KERNEL);
                }
                v
            }
            None => return,
        };
        for p in pools.iter() {
            let mut rejoin: u8 = 0;
            {
                let mut c = p.lock();
                let c = &mut *c;
                for slot in 0..4 {
                    let Some(leg) = c.legs.get(slot).and_then(|l| l.clone()) else { continue };
                    let up = leg.sess.connected.load(Ordering::Acquire);
                    let (t, wants_rejoin) = c.core.on_link(slot, up);
                    if let Some(t) = t {
                        pr_warn!(
                            "client pool {}: session {}: {} -> {} (link down)\n",
                            p.name.as_str(), leg.name.as_str(), t.from.name(), t.to.name()
                        );
                    }
                    if wants_rejoin {
                        rejoin |= 1 << slot;
                    }
                }
            }
            for slot in 0..4 {
                if rejoin & (1 << slot) != 0 {
                    let _ctl = p.ctl.lock();
                    let _ = rejoin_leg(p, slot);
                }
            }
        }
    });
}

/// REJOIN_POOL on a FAILED leg whose transport is up (§6.2 Reconnect): non-sync FAILED →
/// RECONNECTING then try-enable; sync FAILED → NORMAL. Caller holds `ctl`.
fn rejoin_leg(pool: &CltPool, slot: usize) -> Result<(), Errno> {
    let (leg, members) = {
        let c = pool.lock();
        if c.core.leg(slot).map(|l| l.state) != Some(LegState::Failed) {
            return Ok(());
        }
        let mut m = MemberList::new();
        if let Some(md) = c.core.md.as_ref() {
            m = md.members();
        }
        (c.legs[slot].clone().ok_or(Errno::ENOENT)?, m)
    };
    let qd = u16::try_from(pool.queue_depth).map_err(|_| Errno::EINVAL)?;
    let body = JoinBody { chunk_size: pool.chunk_size, queue_depth: qd, create: false, sync: pool.sync, members };
    let r = pool.send(&leg.sess, &Cmd::RejoinPool(body), |r| if r.errno == 0 { Ok(()) } else { Err(Errno::from_kernel(r.errno)) });
    if let Err(e) = r {
        pr_err!("client pool {}: session {}: rejoin refused ({})\n", pool.name.as_str(), leg.name.as_str(), e.name());
        return Err(e);
    }
    let (t, maint) = {
        let mut c = pool.lock();
        let t = c.core.on_rejoined(slot).map_err(cerr)?;
        (t, c.core.rejoin_needs_maintenance(slot))
    };
    if let Some(t) = t {
        pr_info!("client pool {}: session {}: rejoined, {} -> {}\n", pool.name.as_str(), leg.name.as_str(), t.from.name(), t.to.name());
    }
    if maint {
        // The server may have restarted and forgotten the flag: set it again.
        pool.send(&leg.sess, &Cmd::EnablePool { enable: false }, |r| {
            if r.errno == 0 { Ok(()) } else { Err(Errno::from_kernel(r.errno)) }
        })?;
    }
    if !pool.sync {
        try_enable(pool)?;
    }
    Ok(())
}

/// `sessions/<s>/reconnect path=ip:<a>`: rejoin a FAILED leg over its transport. -EBUSY if the
/// transport is connected and the leg is not FAILED [choice]; -EINVAL for another address
/// (the transport keeps its path; RTRS reconnects it by itself); -ENOTCONN while the
/// transport is still down.
fn reconnect(pool: &Arc<CltPool>, slot: usize, input: &[u8]) -> Result {
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

// ---------------------------------------------------------------------------------------------
// Upper layers: open/close, IO, commands

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
            max_segments: if segs == u32::MAX { 1 } else { segs },
            nr_legs: n,
            mapped_size: self.mapped_size.load(Ordering::Acquire),
        }
    }

    /// Starts one IO (§5.1, §5.2). See `rmr_clt_request` in abi.rs.
    ///
    /// # Safety
    /// `io` valid and owned by rmr until its `done` is called.
    pub(crate) unsafe fn request(&self, io: *mut RmrCltIo) -> Result<(), Errno> {
        // SAFETY: per the contract.
        let r = unsafe { &mut *io };
        let write = r.flags & RMR_IO_WRITE != 0 || (r.flags & RMR_IO_FLUSH != 0 && r.len == 0);
        let chunk = r.offset >> self.chunk_shift;
        let in_chunk = r.offset & (u64::from(self.chunk_size) - 1);
        if in_chunk + u64::from(r.len) > u64::from(self.chunk_size) {
            pr_err!("client pool {}: request crosses a chunk (offset {} len {}) (EINVAL)\n", self.name.as_str(), r.offset, r.len);
            return Err(Errno::EINVAL);
        }
        r.served = 0;
        // 1. Targets and their transports: every NORMAL leg for a write, the round-robin
        //    choice for a read.
        let (mask, sess) = {
            let mut c = self.lock();
            let mask = if write {
                c.core.mask(LegState::Normal)
            } else {
                match c.core.plan_read() {
                    Ok(s) => 1u8 << s,
                    Err(CoreError::Busy) => return Err(Errno::EAGAIN),
                    Err(e) => return Err(cerr(e)),
                }
            };
            let mut s: [Option<Arc<CltSess>>; 4] = [None, None, None, None];
            for (i, x) in s.iter_mut().enumerate() {
                if mask & (1 << i) != 0 {
                    *x = c.legs[i].as_ref().map(|l| l.sess.clone());
                }
            }
            (mask, s)
        };
        if mask == 0 {
            return Err(Errno::EIO);
        }
        // 2. Permits, without sleeping.
        let mut permits: [*mut c_void; 4] = [core::ptr::null_mut(); 4];
        let put_all = |permits: &[*mut c_void; 4], sess: &[Option<Arc<CltSess>>; 4]| {
            for i in 0..4 {
                if let (false, Some(s)) = (permits[i].is_null(), sess[i].as_ref()) {
                    // SAFETY: taken from this session below, returned once.
                    unsafe { s.put_raw_permit(permits[i]) };
                }
            }
        };
        for i in 0..4 {
            if let Some(s) = sess[i].as_ref() {
                match s.permit(false) {
                    Some(p) => permits[i] = p.into_raw(),
                    None => {
                        put_all(&permits, &sess);
                        return Err(Errno::EAGAIN);
                    }
                }
            }
        }
        // 3. Unit and routing under the lock.
        let now = now_ms();
        let mut guard = self.lock();
        let c = &mut *guard;
        let Some(u) = c.units.iter().position(|u| !u.busy) else {
            put_all(&permits, &sess);
            return Err(Errno::EAGAIN);
        };
        let (targets, plan_ver, piggy, req) = if write {
            match c.core.plan_write(chunk, &mut c.maps, now) {
                Ok(req) => (req.plan.targets, req.plan.map_ver, req.plan.piggyback, Some(req)),
                Err(CoreError::Busy) => {
                    put_all(&permits, &sess);
                    return Err(Errno::EAGAIN);
                }
                Err(e) => {
                    put_all(&permits, &sess);
                    return Err(cerr(e));
                }
            }
        } else if c.core.read_still_routable(lowest_bit(mask)) {
            (mask, c.core.map_ver(), MemberList::new(), None)
        } else {
            // The leg left NORMAL (or IO froze) since it was chosen: try again.
            put_all(&permits, &sess);
            return Err(Errno::EAGAIN);
        };
        if targets & !mask != 0 {
            // A leg turned NORMAL between the two locks (only under a freeze): retry.
            if let Some(_r) = req {
                c.core.io_finished();
            }
            put_all(&permits, &sess);
            return Err(Errno::EAGAIN);
        }
        // Return the permits of legs this IO does not use.
        for i in 0..4 {
            if targets & (1 << i) == 0 && !permits[i].is_null() {
                if let Some(s) = sess[i].as_ref() {
                    // SAFETY: taken above from this session, returned once.
                    unsafe { s.put_raw_permit(permits[i]) };
                }
                permits[i] = core::ptr::null_mut();
            }
        }
        let mut flags = 0u16;
        if r.flags & RMR_IO_WRITE != 0 {
            flags |= wire::IO_WRITE;
        }
        if r.flags & RMR_IO_FLUSH != 0 {
            flags |= wire::IO_FLUSH | if r.len == 0 { wire::IO_WRITE } else { 0 };
        }
        if r.flags & RMR_IO_FUA != 0 {
            flags |= wire::IO_FUA;
        }
        let msg = IoMsg {
            id: RmrId::chunk(chunk),
            mem_id: u as u16,
            flags,
            offset: in_chunk as u32,
            len: r.len,
            map_ver: plan_ver,
            members: if flags & wire::IO_WRITE != 0 { piggy } else { MemberList::new() },
        };
        let unit = &mut c.units[u];
        let n = match Msg::Io(msg).encode(self.group_id, &mut unit.msg) {
            Ok(n) => n,
            Err(e) => {
                if write {
                    c.core.io_finished();
                }
                put_all(&permits, &sess);
                return Err(cerr(e));
            }
        };
        unit.busy = true;
        unit.io = io;
        unit.write = write;
        unit.req = req;
        unit.read_slot = lowest_bit(targets);
        unit.served = 0;
        unit.msg_len = n;
        unit.permits = permits;
        unit.sess = sess;
        c.in_flight += 1;
        // 4. Send to each target; a send failure counts as that leg's failed reply.
        let mut failed: u8 = 0;
        for i in 0..4 {
            if targets & (1 << i) == 0 {
                continue;
            }
            let unit = &c.units[u];
            let Some(s) = unit.sess[i].as_ref() else { continue };
            // SAFETY: the raw permit belongs to `s` and stays taken until the unit ends.
            let p = unsafe { s.permit_from_raw(unit.permits[i]) };
            let tok = (&unit.tokens[i] as *const Token).cast_mut().cast::<c_void>();
            // SAFETY: the caller's scatterlist lives until `done`; the token lives in the pool,
            // which outlives every unit in use (close drains).
            let res = unsafe {
                s.request(flags & wire::IO_WRITE != 0, &p, &unit.msg[..unit.msg_len], r.sg, r.sg_cnt, r.len as usize, io_conf, tok)
            };
            core::mem::forget(p);
            if res.is_err() {
                failed |= 1 << i;
            }
        }
        drop(guard);
        for i in 0..4 {
            if failed & (1 << i) != 0 {
                self.on_leg_reply(u, i, -(Errno::EIO as i32));
            }
        }
        Ok(())
    }

    /// One leg's answer to unit `u` (softirq context).
    fn on_leg_reply(&self, u: usize, slot: usize, errno: c_int) {
        let done = {
            let mut g = self.lock();
            self.on_leg_reply_locked(&mut g, u, slot, errno)
        };
        if let Some(d) = done {
            d.run();
        }
    }

    fn on_leg_reply_locked(&self, c: &mut Core, u: usize, slot: usize, errno: c_int) -> Option<Done> {
        let now = now_ms();
        let unit = c.units.get_mut(u)?;
        if !unit.busy {
            return None;
        }
        // Return this leg's permit.
        let p = core::mem::replace(&mut unit.permits[slot], core::ptr::null_mut());
        if let (false, Some(s)) = (p.is_null(), unit.sess[slot].as_ref()) {
            // SAFETY: the unit's permit of this session, returned once.
            unsafe { s.put_raw_permit(p) };
        }
        let leg = c.legs.get(slot).and_then(|l| l.clone());
        if !unit.write {
            if errno == 0 {
                if let Some(l) = leg {
                    l.reads.fetch_add(1, Ordering::Relaxed);
                }
                unit.served = 1 << slot;
                return self.finish_unit(c, u, 0);
            }
            // §5.2: the leg fails and the read is retried on the next NORMAL leg.
            if let Some(t) = c.core.read_failed(slot) {
                pr_warn!("client pool {}: slot {}: read failed ({}), {} -> {}\n", self.name.as_str(), slot, errno, t.from.name(), t.to.name());
            }
            if c.core.mask(LegState::Normal) == 0 {
                return self.finish_unit(c, u, Errno::EIO.to_kernel());
            }
            let io = unit.io;
            unit.io = core::ptr::null_mut();
            let _ = self.finish_unit(c, u, 0);
            let (pp, iop) = (self as *const CltPool as usize, io as usize);
            let spawned = kernel::workqueue::system().try_spawn(GFP_ATOMIC, move || {
                // SAFETY: the pool outlives the IO (close waits for upper-layer IO), and the
                // IO is still owned by rmr: its `done` has not been called.
                let (pool, io) = unsafe { (&*(pp as *const CltPool), iop as *mut RmrCltIo) };
                pool.retry(io);
            });
            if spawned.is_err() {
                return Some(Done { io, errno: Errno::EIO.to_kernel(), served: 0 });
            }
            return None;
        }
        let mut req = unit.req?;
        if errno == 0 {
            unit.served |= 1 << slot;
            if let Some(l) = leg.as_ref() {
                l.writes.fetch_add(1, Ordering::Relaxed);
            }
        }
        let before = c.core.leg(slot).map(|l| l.state);
        let step = req.on_reply(&mut c.core, &mut c.maps, slot, errno == 0, now);
        if let (Some(b), Some(a)) = (before, c.core.leg(slot).map(|l| l.state)) {
            if a != b {
                pr_warn!("client pool {}: slot {}: write failed ({}), {} -> {}\n", self.name.as_str(), slot, errno, b.name(), a.name());
            }
        }
        if let Some(unit) = c.units.get_mut(u) {
            unit.req = Some(req);
        }
        match step {
            WriteStep::Wait => None,
            WriteStep::Done(r) => {
                c.core.io_finished();
                self.finish_unit(c, u, r.map_or_else(|e| e.errno(), |()| 0))
            }
            WriteStep::MapAdd { targets, members } => {
                // MAP_ADD sleeps on the network: finish in a work item.
                let pp = self as *const CltPool as usize;
                let spawn = kernel::workqueue::system().try_spawn(GFP_ATOMIC, move || {
                    // SAFETY: the pool outlives its units in use (close drains them).
                    let pool = unsafe { &*(pp as *const CltPool) };
                    pool.map_add(u, targets, members);
                });
                if spawn.is_err() {
                    c.core.io_finished();
                    return self.finish_unit(c, u, Errno::EIO.to_kernel());
                }
                None
            }
        }
    }

    /// §5.1 step 4: record the missed chunk on the surviving legs, then complete the write.
    fn map_add(&self, u: usize, targets: u8, members: MemberList) {
        let (chunk, ver) = {
            let c = self.lock();
            match c.units.get(u).and_then(|x| x.req) {
                Some(r) => (r.plan.chunk, c.core.map_ver()),
                None => return,
            }
        };
        let mut step = WriteStep::Wait;
        for slot in 0..4 {
            if targets & (1 << slot) == 0 {
                continue;
            }
            let mut ok = true;
            for m in members.iter() {
                let cmd = Cmd::MapAdd { chunk, member_id: m, map_ver: ver, recovery: false };
                if self.send_slot(slot, &cmd).is_err() {
                    ok = false;
                }
            }
            let mut c = self.lock();
            let c = &mut *c;
            let Some(mut req) = c.units.get(u).and_then(|x| x.req) else { return };
            step = req.on_map_add_reply(&mut c.core, &mut c.maps, slot, ok, now_ms());
            if let Some(x) = c.units.get_mut(u) {
                x.req = Some(req);
            }
        }
        let e = match step {
            WriteStep::Done(Ok(())) => 0,
            _ => Errno::EIO.to_kernel(),
        };
        let done = {
            let mut g = self.lock();
            g.core.io_finished();
            self.finish_unit(&mut g, u, e)
        };
        if let Some(d) = done {
            d.run();
        }
    }

    /// Releases unit `u`; the caller runs the returned completion after unlocking.
    fn finish_unit(&self, c: &mut Core, u: usize, errno: c_int) -> Option<Done> {
        let unit = c.units.get_mut(u)?;
        let io = unit.io;
        let served = unit.served;
        unit.busy = false;
        unit.io = core::ptr::null_mut();
        unit.req = None;
        for i in 0..4 {
            let p = core::mem::replace(&mut unit.permits[i], core::ptr::null_mut());
            if let (false, Some(s)) = (p.is_null(), unit.sess[i].as_ref()) {
                // SAFETY: the unit's permit of this session, returned once.
                unsafe { s.put_raw_permit(p) };
            }
        }
        let sess = core::mem::take(&mut unit.sess);
        c.in_flight = c.in_flight.saturating_sub(1);
        // Never the last references: the legs hold theirs.
        drop(sess);
        if io.is_null() {
            return None;
        }
        Some(Done { io, errno, served })
    }

    /// Re-issues a read after a leg failed (process context).
    fn retry(&self, io: *mut RmrCltIo) {
        for _ in 0..1000 {
            // SAFETY: `io` is owned by rmr until completed.
            match unsafe { self.request(io) } {
                Ok(()) => return,
                Err(Errno::EAGAIN) => {
                    // SAFETY: plain sleep in process context.
                    unsafe { kernel::bindings::msleep(2) };
                }
                Err(e) => {
                    // SAFETY: as above.
                    unsafe { complete(io, e.to_kernel()) };
                    return;
                }
            }
        }
        // SAFETY: as above.
        unsafe { complete(io, Errno::EIO.to_kernel()) };
    }

    /// `rmr_clt_cmd_with_rsp` (§6.9): `msg` as a USER command to every leg that takes
    /// commands; slice i of `buf` receives leg i's answer.
    pub(crate) fn cmd_with_rsp(&self, msg: &[u8], buf: &mut [u8], size: usize) -> Result<c_int, Errno> {
        if size == 0 || buf.len() != 4 * size {
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
            let slice = &mut buf[i * size..(i + 1) * size];
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

    /// Sends `cmd` to `member`'s leg; the reply's errno and body handed to `f`.
    pub(crate) fn member_cmd<R>(&self, member: u32, cmd: &Cmd<'_>, f: impl FnOnce(&CmdRsp<'_>) -> R) -> Result<R, Errno> {
        let leg = {
            let c = self.lock();
            let slot = c.core.slot_of(member).ok_or(Errno::ENOENT)?;
            c.legs[slot].clone().ok_or(Errno::ENOENT)?
        };
        Ok(self.send(&leg.sess, cmd, f))
    }

    /// A blocking IO_SYNC read of `len` bytes at `offset` of `chunk` from `member`.
    ///
    /// # Safety
    /// `buf` valid for writes of `len` bytes, physically contiguous.
    pub(crate) unsafe fn sync_read(&self, member: u32, chunk: u64, offset: u32, len: u32, buf: *mut u8) -> Result<(), Errno> {
        let leg = {
            let c = self.lock();
            let slot = c.core.slot_of(member).ok_or(Errno::ENOENT)?;
            if c.core.leg(slot).map(|l| l.state) != Some(LegState::Normal) {
                return Err(Errno::EIO);
            }
            c.legs[slot].clone().ok_or(Errno::ENOENT)?
        };
        let msg = IoMsg {
            id: RmrId::chunk(chunk),
            mem_id: 0,
            flags: wire::IO_SYNC,
            offset,
            len,
            map_ver: 0,
            members: MemberList::new(),
        };
        let mut m = [0u8; 128];
        let n = Msg::Io(msg).encode(self.group_id, &mut m).map_err(cerr)?;
        // SAFETY: per the contract.
        unsafe { leg.sess.read_sync(&m[..n], buf, len) }
    }
}

/// A completion to run once the pool lock is released.
struct Done {
    io: *mut RmrCltIo,
    errno: c_int,
    served: u32,
}

impl Done {
    fn run(self) {
        // SAFETY: `io` was handed to `request` and is completed exactly once, here.
        unsafe {
            (*self.io).served = self.served;
            complete(self.io, self.errno);
        }
    }
}

/// Calls the IO's completion.
///
/// # Safety
/// `io` is an IO handed to `request` and not completed yet.
unsafe fn complete(io: *mut RmrCltIo, errno: c_int) {
    // SAFETY: per the contract.
    unsafe {
        if let Some(done) = (*io).done {
            done(io, errno);
        }
    }
}

fn lowest_bit(m: u8) -> usize {
    if m == 0 {
        0
    } else {
        m.trailing_zeros() as usize
    }
}

/// RTRS confirmation of one leg's IO request.
///
/// # Safety
/// `priv_` is the `Token` given with the request.
unsafe extern "C" fn io_conf(priv_: *mut c_void, errno: c_int) {
    // SAFETY: `priv_` is a `Token` inside a pool that outlives the unit's request.
    let t = unsafe { &*(priv_ as *const Token) };
    // SAFETY: as above.
    let pool = unsafe { &*t.pool };
    pool.on_leg_reply(usize::from(t.unit), usize::from(t.slot), errno);
}
