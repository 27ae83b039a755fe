// SPDX-License-Identifier: GPL-2.0-or-later
//! Deterministic fault-injecting simulator for rmr-core (Documentation/simulator.md).
//!
//! One compute client and 2-4 storage nodes built from the real core state machines, a
//! simulated network (per-link FIFO queues, arbitrary interleaving across links, link down/up,
//! partitions), simulated disks (in-flight backend writes vanish on a crash; completed writes
//! sit in a volatile write cache until a FLUSH or FUA, a power loss drops part of it; metadata
//! is durable) and a seeded scheduler with nemeses. Invariants are checked after
//! every step and at the end. A seed replays exactly.

pub mod store;

use rmr_core::client::{leg_transition_allowed, Bugs, ClientPool, LegState, ReadStep, WriteReq, WriteStep};
use rmr_core::consts::{RMR_RECOVER_INTERVAL_MS, RMR_SRV_CHECK_MAPS_INTERVAL_MS};
use rmr_core::control::{Step, TryEnableRun};
use rmr_core::rejoin::RejoinRun;
use rmr_core::dirtymap::MapSet;
use rmr_core::error::Error;
use rmr_core::server::{IoDecision, RegMode, ServerPool, SrvState, SyncSched};
use rmr_core::wire::{
    Cmd, CmdRsp, CmdType, InfoOp, IoMsg, IoRsp, JoinBody, MemberList, Msg, PoolMd, PoolName,
    RmrId, RspBody, SrvMd, IO_FLUSH, IO_FUA, IO_SYNC, IO_WRITE, MAX_MSG_LEN, PIECE_BYTES,
};
use std::collections::{BTreeMap, VecDeque};
use store::{Rng, VecStorage};

type Maps = MapSet<VecStorage>;

/// Chunk size used by the simulator (bytes).
pub const CHUNK_SIZE: u32 = 4096;
/// IO units of the simulated client.
pub const QD: usize = 8;
const GROUP: u32 = 0x1234;
const CLIENT: usize = 0;

/// Simulation parameters.
#[derive(Clone, Debug)]
pub struct Config {
    /// Storage nodes (2..=4).
    pub servers: usize,
    /// Device size in chunks.
    pub chunks: u64,
    /// Chaos steps before healing.
    pub steps: usize,
    /// Nemesis probability per step, permille.
    pub nemesis: u64,
    /// Deliberate bugs (teeth proof).
    pub bugs: Bugs,
    /// Check leg transitions against the SPEC table (independent of the core).
    pub check_transitions: bool,
    /// Keep the full trace (else the last 300 lines).
    pub full_trace: bool,
    /// Permille of storage-node crashes that are power losses (the disk's volatile write
    /// cache is lost); the others are kernel crashes (the powered disk keeps its cache).
    pub power_loss: u64,
    /// Disks without a volatile write cache (write-through, or a cache with power-loss
    /// protection): every completed write is durable and the nodes keep no write-intent record.
    pub write_through: bool,
    /// Teeth hook: nodes keep no write-intent record although their disks have a volatile
    /// cache (the protocol as upstream has it).
    pub bug_no_write_intent: bool,
}

impl Config {
    /// The default configuration for `seed` (node count derived from the seed).
    pub fn for_seed(seed: u64) -> Self {
        Config {
            servers: 2 + (seed % 3) as usize,
            chunks: 12,
            steps: 600,
            nemesis: 25,
            bugs: Bugs::default(),
            check_transitions: true,
            full_trace: false,
            power_loss: 250,
            write_through: false,
            bug_no_write_intent: false,
        }
    }
}

/// A failed run.
#[derive(Debug)]
pub struct Failure {
    /// Seed.
    pub seed: u64,
    /// Step at which the invariant broke.
    pub step: usize,
    /// What broke.
    pub what: String,
    /// Last trace lines.
    pub trace: Vec<String>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "seed {} failed at step {}: {}", self.seed, self.step, self.what)?;
        for l in &self.trace {
            writeln!(f, "  {l}")?;
        }
        write!(f, "replay: cargo run --release -p rmr-sim --bin soak -- --seed {} --trace", self.seed)
    }
}

// ---------------------------------------------------------------------------------------------
// Model of acknowledged data

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WSt {
    InFlight,
    Acked,
    Failed,
}

/// What the client was promised (block layer semantics with a volatile write cache): an
/// acknowledged write survives unless it was neither written with FUA nor followed by a
/// completed FLUSH (issued after its acknowledgement) and every node that stored it lost
/// power before making it durable there. Such a write is *excused*: older values of its chunk
/// become legal again.
#[derive(Default)]
struct Model {
    writes: Vec<Vec<(u64, WSt)>>,
    /// Acknowledgement order of each acknowledged value.
    ack_order: BTreeMap<u64, u64>,
    ack_seq: u64,
    /// Values acknowledged as FUA writes.
    fua: std::collections::BTreeSet<u64>,
    /// Writes acknowledged up to this order are covered by a completed FLUSH.
    promised_upto: u64,
    /// Nodes that stored a value and still vouch for it (no power loss while it sat unflushed
    /// in their cache).
    vouch: BTreeMap<u64, std::collections::BTreeSet<usize>>,
    /// Acknowledged writes lost legitimately (see above).
    excused: std::collections::BTreeSet<u64>,
    /// (value, node): the node stored the value and lost it in a power loss.
    lost: std::collections::BTreeSet<(u64, usize)>,
    /// (value, node): the client marked the node dirty for the value's write (MAP_ADD: its
    /// leg failed the write), so the acknowledgement does not rest on that node's copy.
    disowned: std::collections::BTreeSet<(u64, usize)>,
}

impl Model {
    fn last_acked(&self, c: u64) -> Option<usize> {
        self.writes.get(c as usize)?.iter().rposition(|w| w.1 == WSt::Acked)
    }
    fn promised(&self, v: u64) -> bool {
        self.fua.contains(&v) || self.ack_order.get(&v).is_some_and(|o| *o <= self.promised_upto)
    }
    fn acked(&mut self, v: u64, fua: bool) {
        self.ack_seq += 1;
        self.ack_order.insert(v, self.ack_seq);
        if fua {
            self.fua.insert(v);
        }
        if self.vouch.get(&v).is_none_or(|s| s.is_empty()) && !self.promised(v) {
            self.excused.insert(v);
        }
    }
    fn stored(&mut self, v: u64, node: usize) {
        if v != 0 {
            self.vouch.entry(v).or_default().insert(node);
        }
    }
    /// The client's write of `v` failed on `node` and the node was marked dirty for it: the
    /// pool does not count that copy, whatever reached the node's disk.
    fn disown(&mut self, v: u64, node: usize) {
        self.disowned.insert((v, node));
        if let Some(s) = self.vouch.get_mut(&v) {
            s.remove(&node);
        }
    }
    /// Node `node` went down uncleanly: it no longer vouches for `vals` (the values of the
    /// chunks its write-intent record names: after an unclean restart it cannot tell which of
    /// its unflushed writes survived); `dropped` are the values a power loss actually took.
    fn unclean_down(&mut self, node: usize, vals: &[u64], dropped: &[u64]) -> Vec<u64> {
        for v in dropped {
            self.lost.insert((*v, node));
        }
        let mut ex = Vec::new();
        for v in vals {
            let Some(s) = self.vouch.get_mut(v) else { continue };
            s.remove(&node);
            if s.is_empty() && self.ack_order.contains_key(v) && !self.promised(*v) && self.excused.insert(*v) {
                ex.push(*v);
            }
        }
        ex
    }
    /// `v` is a legal content of chunk `c` for a reader that saw last-acked index `k`: the last
    /// acknowledged write up to `k` that is not excused, or anything later.
    fn valid(&self, c: u64, k: Option<usize>, v: u64) -> bool {
        let Some(ws) = self.writes.get(c as usize) else { return false };
        let k = k.and_then(|k| (0..=k).rev().find(|i| ws[*i].1 == WSt::Acked && !self.excused.contains(&ws[*i].0)));
        match k {
            None => v == 0 || ws.iter().any(|w| w.0 == v),
            Some(k) => ws.iter().skip(k).any(|w| w.0 == v),
        }
    }
    fn set(&mut self, c: u64, idx: usize, st: WSt) {
        if let Some(w) = self.writes.get_mut(c as usize).and_then(|ws| ws.get_mut(idx)) {
            w.1 = st;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Network

struct Packet {
    from: usize,
    to: usize,
    bytes: Vec<u8>,
    data: u64,
    tag: u64,
}

#[derive(Default)]
struct Link {
    admin_up: bool,
    up: bool,
    q: VecDeque<Packet>,
}

fn link_key(a: usize, b: usize) -> (usize, usize) {
    (a.min(b), a.max(b))
}

// ---------------------------------------------------------------------------------------------
// Client

enum CioKind {
    /// A write (`flags` FUA), or a pure flush (`IO_FLUSH`, no model entry; `mark` = the
    /// acknowledgement order it covers).
    Write { req: WriteReq, widx: usize, value: u64, ma_stage: bool, flags: u16, mark: u64 },
    Read { slot: usize, k: Option<usize> },
}

struct Cio {
    tag: u64,
    chunk: u64,
    kind: CioKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BCmd {
    StoreCheck,
    SendMd,
    Maint(bool),
    PoolInfo(u32, InfoOp, bool),
}

enum Op {
    /// Try-enable; `started` once IO drained.
    Te { run: TryEnableRun, started: bool },
    /// Independent commands, one at a time.
    Batch { items: VecDeque<(usize, BCmd)>, cur: Option<(usize, BCmd)> },
    /// add_sess: JOIN, MD_SEND (assemble), POOL_INFO to others, then enable/assemble.
    Join { srv: usize, create: bool, phase: u8, slot: usize },
    /// `enable`=1 on a CREATED leg.
    Admit { slot: usize, mu: Option<rmr_core::control::MapUpdate> },
    /// REJOIN_POOL of a FAILED leg whose link is back (the kernel's `rejoin_leg`).
    Rejoin { slot: usize, run: RejoinRun },
}

struct Client {
    pool: ClientPool,
    maps: Maps,
    ios: Vec<Option<Cio>>,
    op: Option<Op>,
    op_tag: u64,
    op_wait: Option<usize>,
    op_srv: Option<usize>,
    next_tick: u64,
    slot_srv: [usize; 4],
    to_add: VecDeque<usize>,
    created: bool,
    want_te: bool,
    prev_states: [Option<(u32, LegState)>; 4],
    /// Map checks in flight outside the control lock (recover_work): tag -> slot.
    checks: BTreeMap<u64, usize>,
    rejoin_wanted: [bool; 4],
}

// ---------------------------------------------------------------------------------------------
// Storage node

enum Bop {
    Io { io: IoMsg, value: u64, tag: u64 },
    SyncWrite { chunk: u64, value: u64 },
}

struct SyncReq {
    tag: u64,
    src: u32,
    skip: MemberList,
    thread: bool,
}

/// A storage node's disk. `data` is the durable medium; `cache` is the volatile write cache:
/// per chunk the values written since the last flush, oldest first. Reads see the newest
/// value. A FLUSH makes the whole cache durable, a FUA write is durable on completion, and a
/// power loss keeps a random prefix of each chunk's cached values (the drive may have written
/// some back in order) and drops the rest.
#[derive(Default)]
struct Disk {
    data: BTreeMap<u64, u64>,
    cache: BTreeMap<u64, Vec<u64>>,
    md: Option<PoolMd>,
    maps: Vec<(u32, Vec<u64>)>,
    last_io: Vec<u64>,
    write_through: bool,
    /// Scripted: the next power loss drops every unflushed write.
    drop_all: bool,
    /// The durable write-intent record (`wi` ∪ `suspect`, written through like the maps).
    intent: Vec<u64>,
    /// The record's witnesses: (member, chunks).
    witness: Vec<(u32, Vec<u64>)>,
    /// Chunks suspect resolution marked lost.
    lost: Vec<u64>,
    /// The pool's lost maps (written through like the maps).
    lost_maps: Vec<(u32, Vec<u64>)>,
    flakey: bool,
    has_store: bool,
}

impl Disk {
    fn read(&self, c: u64) -> u64 {
        self.cache.get(&c).and_then(|v| v.last()).or_else(|| self.data.get(&c)).copied().unwrap_or(0)
    }
    fn write(&mut self, c: u64, v: u64, fua: bool) {
        if fua || self.write_through {
            self.cache.remove(&c);
            self.data.insert(c, v);
        } else {
            self.cache.entry(c).or_default().push(v);
        }
    }
    fn flush(&mut self) {
        for (c, vs) in std::mem::take(&mut self.cache) {
            if let Some(v) = vs.last() {
                self.data.insert(c, *v);
            }
        }
    }
    /// Power loss: returns the values dropped.
    fn power_loss(&mut self, rng: &mut Rng) -> Vec<u64> {
        let mut lost = Vec::new();
        for (c, vs) in std::mem::take(&mut self.cache) {
            let k = if self.drop_all { 0 } else { rng.below(vs.len() as u64 + 1) as usize };
            if k > 0 {
                self.data.insert(c, vs[k - 1]);
            }
            lost.extend_from_slice(&vs[k..]);
        }
        lost
    }
}

/// A map set as written to disk: (member, dirty chunks).
fn snapshot(set: &Maps) -> Vec<(u32, Vec<u64>)> {
    set.iter().map(|m| (m.member_id(), m.iter().collect())).collect()
}

/// Read a map set written by [`snapshot`] back.
fn restore(set: &mut Maps, saved: &[(u32, Vec<u64>)], total: u64) {
    for (m, bits) in saved {
        if let Ok(map) = set.ensure(*m, total) {
            for c in bits {
                let _ = map.set(*c, 0);
            }
        }
    }
}

impl Srv {
    /// Whether the node's durable write-intent record names `chunk`.
    fn suspects_any(&self, chunk: u64) -> bool {
        match self.pool.as_ref().filter(|_| self.alive) {
            Some(p) => p.intent.durable(chunk),
            None => self.disk.intent.contains(&chunk),
        }
    }

    /// A node not serving whose durable write-intent record names `chunk`: it may have lost
    /// writes there, which nobody else can know before it resolves its suspects (SUSPECT_TO_MAP
    /// or LAST_IO_TO_MAP) on its way back to NORMAL.
    fn suspects(&self, chunk: u64) -> bool {
        let serving = self.alive && self.pool.as_ref().is_some_and(|p| p.state == SrvState::Normal);
        !serving && self.suspects_any(chunk)
    }
}

struct Srv {
    member: u32,
    alive: bool,
    pool: Option<Box<ServerPool<VecStorage>>>,
    disk: Disk,
    backend: Vec<Bop>,
    parked: BTreeMap<u16, (IoMsg, u64, u64)>,
    syncs: BTreeMap<u64, SyncReq>,
    sched: SyncSched,
    next_clear: u64,
    clear_checks: BTreeMap<u64, (u32, u64)>,
    client_joined: bool,
}

// ---------------------------------------------------------------------------------------------
// The simulator

/// One simulation run.
pub struct Sim {
    seed: u64,
    cfg: Config,
    rng: Rng,
    now: u64,
    step: usize,
    next_tag: u64,
    next_value: u64,
    client: Option<Client>,
    srvs: Vec<Srv>,
    links: BTreeMap<(usize, usize), Link>,
    local: VecDeque<Packet>,
    model: Model,
    trace: VecDeque<String>,
    fail: Option<String>,
    chaos: bool,
    io_on: bool,
    name: PoolName,
    /// Count of nemesis actions by kind (for reports).
    pub nemesis_count: BTreeMap<&'static str, u64>,
    client_gen: u64,
    write_gen: BTreeMap<u64, u64>,
    /// Messages held back by the delay nemesis: (release time, link, packet). RTRS spreads a
    /// session over several connections, so messages of one session can overtake each other.
    held: Vec<(u64, (usize, usize), Packet)>,
    /// Hold back the next "empty" MAP_CHECK answer node `i` sends the client until the given
    /// time (scripted: `u64::MAX`, released by `release_held`).
    hold_check_from: Option<(usize, u64)>,
}

fn base_md(name: PoolName, chunks: u64) -> PoolMd {
    PoolMd {
        name,
        group_id: GROUP,
        chunk_size: CHUNK_SIZE,
        mapped_size: chunks * u64::from(CHUNK_SIZE) / 512,
        queue_depth: QD as u16,
        map_ver: 0,
        srv_md: [SrvMd::default(); 4],
    }
}

fn enc(msg: &Msg<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; MAX_MSG_LEN];
    let n = msg.encode(GROUP, &mut buf).expect("sim encodes valid messages");
    buf.truncate(n);
    buf
}

impl Sim {
    /// A pool brought up as in SPEC §12.1 (create, enable, sync pools) with `cfg`.
    pub fn new(seed: u64, cfg: Config) -> Self {
        let name = PoolName::new(b"ionos_pool").expect("valid");
        let mut s = Sim {
            seed,
            rng: Rng::new(seed),
            now: 0,
            step: 0,
            next_tag: 1,
            next_value: 1,
            client: None,
            srvs: Vec::new(),
            links: BTreeMap::new(),
            local: VecDeque::new(),
            model: Model { writes: vec![Vec::new(); cfg.chunks as usize], ..Model::default() },
            trace: VecDeque::new(),
            fail: None,
            chaos: true,
            io_on: true,
            name,
            nemesis_count: BTreeMap::new(),
            client_gen: 0,
            write_gen: BTreeMap::new(),
            held: Vec::new(),
            hold_check_from: None,
            cfg,
        };
        for i in 0..s.cfg.servers {
            let member = 42 + i as u32;
            let mut pool = Box::new(ServerPool::new(member, base_md(name, s.cfg.chunks)).expect("pool"));
            pool.bug_last_io_no_skip = s.cfg.bugs.last_io_no_skip;
            pool.intent.volatile_cache = !s.cfg.write_through && !s.cfg.bug_no_write_intent;
            pool.register(RegMode::Create, None).expect("register");
            s.srvs.push(Srv {
                member,
                alive: true,
                pool: Some(pool),
                disk: Disk { has_store: true, write_through: s.cfg.write_through, ..Disk::default() },
                backend: Vec::new(),
                parked: BTreeMap::new(),
                syncs: BTreeMap::new(),
                sched: SyncSched::default(),
                next_clear: RMR_SRV_CHECK_MAPS_INTERVAL_MS,
                clear_checks: BTreeMap::new(),
                client_joined: false,
            });
        }
        let n = s.cfg.servers;
        for a in 0..=n {
            for b in (a + 1)..=n {
                s.links.insert((a, b), Link { admin_up: true, up: true, q: VecDeque::new() });
            }
        }
        s.client = Some(s.new_client(true));
        s
    }

    fn new_client(&mut self, create: bool) -> Client {
        let mut pool = ClientPool::new(false, self.cfg.chunks);
        pool.bugs = self.cfg.bugs;
        pool.md = Some(base_md(self.name, self.cfg.chunks));
        let mut order: Vec<usize> = (0..self.cfg.servers).collect();
        if !create {
            // Assemble in a random order (scenario 7 wants both).
            for i in (1..order.len()).rev() {
                let j = self.rng.below(i as u64 + 1) as usize;
                order.swap(i, j);
            }
        }
        Client {
            pool,
            maps: MapSet::new(),
            ios: (0..QD).map(|_| None).collect(),
            op: None,
            op_tag: 0,
            op_wait: None,
            op_srv: None,
            next_tick: self.now + RMR_RECOVER_INTERVAL_MS,
            slot_srv: [usize::MAX; 4],
            to_add: order.into(),
            created: create,
            want_te: false,
            prev_states: [None; 4],
            checks: BTreeMap::new(),
            rejoin_wanted: [false; 4],
        }
    }

    fn log(&mut self, s: String) {
        let line = format!("[{} t={}] {}", self.step, self.now, s);
        self.trace.push_back(line);
        if !self.cfg.full_trace && self.trace.len() > 300 {
            self.trace.pop_front();
        }
    }

    fn violation(&mut self, what: String) {
        if self.fail.is_none() {
            self.log(format!("VIOLATION: {what}"));
            self.fail = Some(what);
        }
    }

    fn tag(&mut self) -> u64 {
        self.next_tag += 1;
        self.next_tag
    }

    // ----------------------------------------------------------------------------- network

    fn link_up(&self, a: usize, b: usize) -> bool {
        self.links.get(&link_key(a, b)).is_some_and(|l| l.up)
    }

    fn send(&mut self, from: usize, to: usize, bytes: Vec<u8>, data: u64, tag: u64) -> bool {
        let hold = self.hold_check_from.filter(|h| h.0 == from.wrapping_sub(1));
        if let (true, Some((_, until))) = (to == CLIENT && self.link_up(from, to), hold) {
            let empty_check = matches!(Msg::decode(&bytes), Ok((_, Msg::CmdRsp(r)))
                if r.ty == CmdType::MapCheck && r.errno == 0 && matches!(r.body, RspBody::Bool(true)));
            if empty_check {
                self.hold_check_from = None;
                self.log(format!("hold the \"empty\" MAP_CHECK answer of srv {} until t={until}", from - 1));
                // A link failure drops it, as RTRS would.
                self.held.push((until, link_key(from, to), Packet { from, to, bytes, data, tag }));
                return true;
            }
        }
        match self.links.get_mut(&link_key(from, to)) {
            Some(l) if l.up => {
                l.q.push_back(Packet { from, to, bytes, data, tag });
                true
            }
            _ => false,
        }
    }

    /// Recompute link state from admin state and node liveness; fire down/up events.
    fn refresh_links(&mut self) {
        let keys: Vec<(usize, usize)> = self.links.keys().copied().collect();
        for (a, b) in keys {
            let alive = |s: &Sim, n: usize| {
                if n == CLIENT {
                    s.client.is_some()
                } else {
                    s.srvs.get(n - 1).is_some_and(|x| x.alive)
                }
            };
            let want = self.links.get(&(a, b)).is_some_and(|l| l.admin_up) && alive(self, a) && alive(self, b);
            let was = self.links.get(&(a, b)).is_some_and(|l| l.up);
            if want == was {
                continue;
            }
            if let Some(l) = self.links.get_mut(&(a, b)) {
                l.up = want;
                if !want {
                    l.q.clear();
                    self.held.retain(|h| h.1 != (a, b));
                }
            }
            self.log(format!("link {a}-{b} {}", if want { "up" } else { "down" }));
            if want {
                self.on_link_up(a, b);
            } else {
                self.on_link_down(a, b);
            }
        }
    }

    fn on_link_down(&mut self, a: usize, b: usize) {
        if a == CLIENT {
            let srv = b - 1;
            // Server side: the client session is gone.
            let now = self.now;
            let s = &mut self.srvs[srv];
            // The RTRS session survives a link loss (it reconnects; SPEC §10.1/§10.4 expect
            // no_io): the pool only leaves NORMAL. A rejoin replaces the session.
            if s.alive && s.client_joined {
                if let Some(p) = s.pool.as_mut() {
                    let fx = p.on_fault();
                    if fx.stop_sync {
                        s.sched.stop();
                    }
                }
            }
            let _ = now;
            // Client side: leg fails, outstanding requests on it fail.
            if let Some(c) = self.client.as_mut() {
                if c.op_wait.is_some() && c.op_srv == Some(srv) {
                    c.op_wait = None;
                    c.op_srv = None;
                    let tag = c.op_tag;
                    self.local.push_back(Packet { from: b, to: CLIENT, bytes: Vec::new(), data: 0, tag });
                }
                if let Some(slot) = (0..4).find(|i| c.slot_srv[*i] == srv) {
                    c.checks.retain(|_, s| *s != slot);
                    c.pool.set_connected(slot, false);
                    let mut errs = Vec::new();
                    for io in c.ios.iter().flatten() {
                        errs.push(io.tag);
                    }
                    for tag in errs {
                        self.local.push_back(Packet { from: b, to: CLIENT, bytes: vec![1], data: 0, tag });
                    }
                }
            }
        } else {
            // Server-server: outstanding sync reads and checks to the peer fail.
            for (x, y) in [(a, b), (b, a)] {
                let peer_member = self.srvs[y - 1].member;
                let s = &mut self.srvs[x - 1];
                let tags: Vec<u64> = s
                    .syncs
                    .values()
                    .filter(|r| r.tag != 0 && r.src == peer_member)
                    .map(|r| r.tag)
                    .collect();
                for tag in tags {
                    self.local.push_back(Packet { from: y, to: x, bytes: vec![2], data: 0, tag });
                }
                s.clear_checks.retain(|_, (m, _)| *m != peer_member);
            }
        }
    }

    fn on_link_up(&mut self, a: usize, b: usize) {
        if a == CLIENT {
            let srv = b - 1;
            if let Some(c) = self.client.as_mut() {
                if let Some(slot) = (0..4).find(|i| c.slot_srv[*i] == srv) {
                    c.pool.set_connected(slot, true);
                    c.rejoin_wanted[slot] = true;
                }
            }
        }
    }

    // ----------------------------------------------------------------------------- scheduler

    /// Run one scheduler step.
    fn step_once(&mut self) {
        self.step += 1;
        // Synthesized local replies first (transport failures).
        while let Some(p) = self.local.pop_front() {
            self.deliver_local(p);
        }
        let pkts: u64 = self.links.values().map(|l| l.q.len() as u64).sum();
        let bops: u64 = self.srvs.iter().map(|s| s.backend.len() as u64).sum();
        let can_io = self.io_on
            && self.client.as_ref().is_some_and(|c| !c.pool.frozen && c.ios.iter().any(|x| x.is_none()));
        let w = [
            if pkts > 0 { 60 } else { 0 },
            if bops > 0 { 30 } else { 0 },
            if can_io { 20 } else { 0 },
            8,
            if self.chaos { self.cfg.nemesis } else { 0 },
        ];
        match self.rng.weighted(&w) {
            Some(0) => self.deliver_random(),
            Some(1) => self.backend_complete(),
            Some(2) => self.client_issue(),
            Some(3) => {
                self.now += 50 + self.rng.below(400);
                self.timers();
            }
            Some(4) => self.nemesis(),
            _ => {}
        }
        self.refresh_links();
        self.client_pump();
        self.servers_pump();
        self.check_invariants();
    }

    fn deliver_random(&mut self) {
        let nonempty: Vec<(usize, usize)> =
            self.links.iter().filter(|(_, l)| !l.q.is_empty()).map(|(k, _)| *k).collect();
        if nonempty.is_empty() {
            return;
        }
        let k = nonempty[self.rng.below(nonempty.len() as u64) as usize];
        let len = self.links.get(&k).map_or(0, |l| l.q.len()) as u64;
        // Mostly FIFO per link; sometimes take a later packet (independent requests reorder).
        let idx = if self.rng.permille(150) { self.rng.below(len) as usize } else { 0 };
        self.deliver_packet(k, idx);
    }

    fn deliver_packet(&mut self, k: (usize, usize), idx: usize) {
        let Some(l) = self.links.get_mut(&k) else { return };
        let Some(p) = l.q.remove(idx) else { return };
        if p.to == CLIENT {
            self.client_recv(p);
        } else {
            self.srv_recv(p);
        }
    }

    fn deliver_local(&mut self, p: Packet) {
        if p.to == CLIENT {
            let Some(c) = self.client.as_mut() else { return };
            if p.bytes.is_empty() {
                // Ctl command failed by transport.
                if p.tag == c.op_tag {
                    let ty = CmdType::MapReady; // type is irrelevant for an error reply
                    let rsp = CmdRsp::err(ty, Error::Io);
                    let slot = (0..4).find(|i| c.slot_srv[*i] == p.from.wrapping_sub(1)).unwrap_or(usize::MAX);
                    self.op_reply(slot, &rsp);
                }
            } else {
                // IO failed by transport: the leg's reply for that IO is an error.
                let slot = (0..4).find(|i| c.slot_srv[*i] == p.from - 1);
                if let Some(slot) = slot {
                    self.client_io_error(p.tag, slot);
                }
            }
        } else {
            // Sync read to a peer failed.
            self.sync_read_failed(p.to - 1, p.tag);
        }
    }

    fn timers(&mut self) {
        let now = self.now;
        let mut i = 0;
        while i < self.held.len() {
            if self.held[i].0 <= now {
                let (_, k, p) = self.held.remove(i);
                if let Some(l) = self.links.get_mut(&k) {
                    if l.up {
                        l.q.push_front(p);
                    }
                }
            } else {
                i += 1;
            }
        }
        if let Some(c) = self.client.as_mut() {
            if now >= c.next_tick {
                c.next_tick = now + RMR_RECOVER_INTERVAL_MS;
                self.recovery_tick();
            }
        }
        for i in 0..self.srvs.len() {
            if self.srvs[i].alive && now >= self.srvs[i].next_clear {
                self.srvs[i].next_clear = now + RMR_SRV_CHECK_MAPS_INTERVAL_MS;
                self.srv_map_clear_worker(i);
            }
        }
    }

    // ----------------------------------------------------------------------------- client IO

    fn client_issue(&mut self) {
        let chunk = self.rng.below(self.cfg.chunks);
        let write = self.rng.permille(650);
        // Block layer cache control: some writes are FUA, and now and then a pure FLUSH.
        if self.rng.permille(40) {
            self.issue_flags(0, true, IO_WRITE | IO_FLUSH);
        } else {
            let fua = self.rng.permille(100);
            self.issue_flags(chunk, write, if fua { IO_WRITE | IO_FUA } else { IO_WRITE });
        }
    }

    /// Issue one client IO (write or read of `chunk`); returns the written value.
    fn issue(&mut self, chunk: u64, write: bool) -> Option<u64> {
        self.issue_flags(chunk, write, IO_WRITE)
    }

    /// Issue one client IO: a read, a write with `flags` (`IO_FUA`), or a pure flush
    /// (`IO_FLUSH`, sent like a write of chunk 0 with no data, as rmr does).
    fn issue_flags(&mut self, chunk: u64, write: bool, flags: u16) -> Option<u64> {
        let now = self.now;
        let v = self.next_value;
        let flush = write && flags & IO_FLUSH != 0;
        let mark = self.model.ack_seq;
        let c = self.client.as_mut()?;
        let mem = c.ios.iter().position(|x| x.is_none())?;
        let busy = !flush && c.ios.iter().flatten().any(|x| x.chunk == chunk && matches!(x.kind, CioKind::Write { .. }));
        let tag = {
            self.next_tag += 1;
            self.next_tag
        };
        if write && !busy {
            let req = match c.pool.plan_write(chunk, &mut c.maps, now) {
                Ok(r) => r,
                Err(_) => return None,
            };
            let (value, widx) = if flush {
                (0, usize::MAX)
            } else {
                let value = self.next_value;
                self.next_value += 1;
                let ws = &mut self.model.writes[chunk as usize];
                ws.push((value, WSt::InFlight));
                self.write_gen.insert(value, self.client_gen);
                (value, ws.len() - 1)
            };
            let io = IoMsg {
                id: RmrId::chunk(chunk),
                mem_id: mem as u16,
                flags,
                offset: 0,
                len: if flush { 0 } else { CHUNK_SIZE },
                map_ver: req.plan.map_ver,
                members: req.plan.piggyback,
            };
            let targets = req.plan.targets;
            c.ios[mem] = Some(Cio {
                tag,
                chunk,
                kind: CioKind::Write { req, widx, value, ma_stage: false, flags, mark },
            });
            let srvs: Vec<(usize, usize)> =
                (0..4).filter(|s| targets & (1 << s) != 0).map(|s| (s, c.slot_srv[s])).collect();
            let pig = io.members;
            let kind = if flush { "FLUSH" } else if flags & IO_FUA != 0 { "W(fua)" } else { "W" };
            self.log(format!("{kind} c{chunk} v{value} mem{mem} -> slots {targets:#b} pig {:?}", pig.as_slice()));
            let bytes = enc(&Msg::Io(io));
            for (slot, srv) in srvs {
                if !self.send(CLIENT, srv + 1, bytes.clone(), value, tag) {
                    self.local.push_back(Packet { from: srv + 1, to: CLIENT, bytes: vec![1], data: 0, tag });
                    let _ = slot;
                }
            }
        } else {
            let Ok(slot) = c.pool.plan_read() else { return None };
            c.pool.inflight += 1;
            let k = self.model.last_acked(chunk);
            c.ios[mem] = Some(Cio { tag, chunk, kind: CioKind::Read { slot, k } });
            self.send_read(mem, slot);
        }
        Some(v)
    }

    fn send_read(&mut self, mem: usize, slot: usize) {
        let Some(c) = self.client.as_mut() else { return };
        let Some(io) = c.ios[mem].as_ref() else { return };
        let (tag, chunk) = (io.tag, io.chunk);
        let srv = c.slot_srv[slot];
        let msg = IoMsg {
            id: RmrId::chunk(chunk),
            mem_id: mem as u16,
            flags: 0,
            offset: 0,
            len: CHUNK_SIZE,
            map_ver: c.pool.map_ver(),
            members: MemberList::new(),
        };
        self.log(format!("R c{chunk} mem{mem} -> slot {slot}"));
        if !self.send(CLIENT, srv + 1, enc(&Msg::Io(msg)), 0, tag) {
            self.local.push_back(Packet { from: srv + 1, to: CLIENT, bytes: vec![1], data: 0, tag });
        }
    }

    fn client_io_error(&mut self, tag: u64, slot: usize) {
        self.client_io_reply(tag, slot, false, 0, None);
    }

    fn client_io_reply(&mut self, tag: u64, slot: usize, ok: bool, data: u64, ma: Option<bool>) {
        let now = self.now;
        let Some(c) = self.client.as_mut() else { return };
        let Some(mem) = c.ios.iter().position(|x| x.as_ref().is_some_and(|x| x.tag == tag)) else { return };
        let Some(io) = c.ios[mem].as_mut() else { return };
        let chunk = io.chunk;
        match &mut io.kind {
            CioKind::Write { req, widx, value, ma_stage, flags, mark } => {
                let st = if *ma_stage {
                    // A map-add reply (or a transport error during the map-add round).
                    let r = ma.unwrap_or(false) && ok;
                    req.on_map_add_member_reply(&mut c.pool, &mut c.maps, slot, r, now)
                } else {
                    if ma.is_some() {
                        return;
                    }
                    req.on_reply(&mut c.pool, &mut c.maps, slot, ok, now)
                };
                let (widx, value, flags, mark) = (*widx, *value, *flags, *mark);
                match st {
                    WriteStep::Wait => {}
                    WriteStep::MapAdd { targets, members } => {
                        *ma_stage = true;
                        let map_ver = c.pool.map_ver();
                        let sends: Vec<(usize, usize, Cmd<'static>)> =
                            req.map_add_cmds(map_ver).map(|(s, cmd)| (s, c.slot_srv[s], cmd)).collect();
                        self.log(format!("W c{chunk} v{value}: map-add {:?} -> {targets:#b}", members.as_slice()));
                        for m in members.iter() {
                            if let Some(j) = self.srvs.iter().position(|x| x.member == m) {
                                self.model.disown(value, j);
                            }
                        }
                        for (_s, srv, cmd) in sends {
                            if !self.send(CLIENT, srv + 1, enc(&Msg::Cmd(cmd)), 0, tag) {
                                self.local.push_back(Packet { from: srv + 1, to: CLIENT, bytes: vec![1], data: 0, tag });
                            }
                        }
                    }
                    WriteStep::Done(r) => {
                        c.ios[mem] = None;
                        c.pool.io_finished();
                        if flags & IO_FLUSH != 0 {
                            if r.is_ok() {
                                self.model.promised_upto = self.model.promised_upto.max(mark);
                            }
                            self.log(format!("FLUSH done {r:?} (covers acks up to #{mark})"));
                        } else {
                            self.model.set(chunk, widx, if r.is_ok() { WSt::Acked } else { WSt::Failed });
                            if r.is_ok() {
                                self.model.acked(value, flags & IO_FUA != 0);
                                if self.model.excused.contains(&value) {
                                    self.log(format!("W c{chunk} v{value} acknowledged but already lost by every holder"));
                                }
                            }
                            self.log(format!("W c{chunk} v{value} done {r:?}"));
                        }
                    }
                }
            }
            CioKind::Read { slot: rslot, k } => {
                if *rslot != slot || ma.is_some() {
                    return;
                }
                let k = *k;
                // The simulator counts reads in `inflight` as the kernel's drain counts its IO
                // units (see `issue_flags`), so it releases them here.
                match c.pool.on_read_reply(slot, ok).0 {
                    ReadStep::Done => {
                        c.ios[mem] = None;
                        c.pool.io_finished();
                        self.log(format!("R c{chunk} = v{data} (slot {slot})"));
                        if !self.model.valid(chunk, k, data) {
                            let acked = k.map(|k| self.model.writes[chunk as usize][k].0);
                            self.violation(format!(
                                "read of chunk {chunk} from slot {slot} returned v{data}, last acked before read v{acked:?}, history {:?}",
                                self.model.writes[chunk as usize]
                            ));
                        }
                    }
                    ReadStep::Retry => match c.pool.plan_read() {
                        Ok(s) => {
                            *rslot = s;
                            self.send_read(mem, s);
                        }
                        Err(_) => {
                            c.ios[mem] = None;
                            c.pool.io_finished();
                            self.log(format!("R c{chunk} EIO"));
                        }
                    },
                    ReadStep::Fail => {
                        c.ios[mem] = None;
                        c.pool.io_finished();
                        self.log(format!("R c{chunk} EIO"));
                    }
                }
            }
        }
    }

    fn client_recv(&mut self, p: Packet) {
        let Ok((_, msg)) = Msg::decode(&p.bytes) else {
            self.violation("client got an undecodable message".into());
            return;
        };
        let Some(c) = self.client.as_ref() else { return };
        let Some(slot) = (0..4).find(|i| c.slot_srv[*i] == p.from - 1) else {
            // Reply to a JOIN in progress (slot not assigned yet).
            if let Msg::CmdRsp(r) = msg {
                if p.tag == c.op_tag {
                    self.op_reply(usize::MAX, &r);
                }
            }
            return;
        };
        match msg {
            Msg::IoRsp(r) => self.client_io_reply(p.tag, slot, r.errno == 0, p.data, None),
            Msg::CmdRsp(r) => {
                if r.ty == CmdType::MapCheck && c.checks.contains_key(&p.tag) {
                    let now = self.now;
                    let c = self.client.as_mut().expect("client");
                    c.checks.remove(&p.tag);
                    let empty = r.errno == 0 && matches!(r.body, RspBody::Bool(true));
                    if c.pool.on_map_check_reply(slot, empty, &mut c.maps, now) {
                        self.log(format!("client map of slot {slot} cleared"));
                    }
                } else if r.ty == CmdType::MapAdd && p.tag != c.op_tag {
                    self.client_io_reply(p.tag, slot, true, 0, Some(r.errno == 0));
                } else if p.tag == c.op_tag {
                    self.op_reply(slot, &r);
                }
            }
            _ => self.violation("client got a request".into()),
        }
    }

    // ----------------------------------------------------------------------------- client control

    fn op_send(&mut self, slot: usize, cmd: &Cmd<'_>) {
        let tag = self.tag();
        let Some(c) = self.client.as_mut() else { return };
        c.op_tag = tag;
        let srv = if slot < 4 { c.slot_srv[slot] } else { usize::MAX };
        c.op_wait = Some(slot);
        c.op_srv = Some(srv);
        self.log(format!("ctl -> slot {slot} {:?}", cmd_brief(cmd)));
        let bytes = enc(&Msg::Cmd(*cmd));
        if srv == usize::MAX || !self.send(CLIENT, srv + 1, bytes, 0, tag) {
            self.local.push_back(Packet { from: srv.wrapping_add(1), to: CLIENT, bytes: Vec::new(), data: 0, tag });
        }
    }

    fn op_send_to_srv(&mut self, srv: usize, cmd: &Cmd<'_>) {
        let tag = self.tag();
        let Some(c) = self.client.as_mut() else { return };
        c.op_tag = tag;
        c.op_wait = Some(usize::MAX);
        c.op_srv = Some(srv);
        self.log(format!("ctl -> srv {srv} {:?}", cmd_brief(cmd)));
        if !self.send(CLIENT, srv + 1, enc(&Msg::Cmd(*cmd)), 0, tag) {
            self.local.push_back(Packet { from: srv + 1, to: CLIENT, bytes: Vec::new(), data: 0, tag });
        }
    }

    fn step_out(&mut self, st: Step<'_>) -> Option<rmr_core::error::Result<()>> {
        match st {
            Step::Send { slot, cmd } => {
                self.op_send(slot, &cmd);
                None
            }
            Step::Done(r) => Some(r),
        }
    }

    /// Start pending control work when the control lock is free.
    fn client_pump(&mut self) {
        let Some(c) = self.client.as_mut() else { return };
        // Try-enable waiting for the IO drain.
        if let Some(Op::Te { run, started }) = c.op.as_mut() {
            if !*started && c.pool.inflight == 0 {
                *started = true;
                let mut run2 = *run;
                let st = run2.start(&mut c.pool, &c.maps);
                let case = run2.case();
                *run = run2;
                self.log(format!("try-enable case {case}"));
                if let Some(r) = self.step_out(st) {
                    self.op_finished(format!("try-enable {r:?}"));
                }
            }
            return;
        }
        if c.op.is_some() {
            return;
        }
        let c = self.client.as_mut().expect("client");
        // Rejoin after reconnect.
        if let Some(slot) = (0..4).find(|s| c.rejoin_wanted[*s]) {
            c.rejoin_wanted[slot] = false;
            if c.pool.leg(slot).is_some_and(|l| l.connected) {
                if let Some(mut run) = RejoinRun::new(&c.pool, slot) {
                    let st = run.start(&c.pool, CHUNK_SIZE, QD as u16);
                    c.op = Some(Op::Rejoin { slot, run });
                    if let Some(r) = self.step_out(st) {
                        self.op_finished(format!("rejoin slot {slot}: {r:?}"));
                    }
                    return;
                }
            }
        }
        // add_sess for nodes not joined yet.
        let c = self.client.as_mut().expect("client");
        if let Some(&srv) = c.to_add.front() {
            if self.link_up(CLIENT, srv + 1) {
                let c = self.client.as_mut().expect("client");
                c.to_add.pop_front();
                let create = c.created;
                c.op = Some(Op::Join { srv, create, phase: 0, slot: usize::MAX });
                let j = JoinBody {
                    chunk_size: CHUNK_SIZE,
                    queue_depth: QD as u16,
                    create,
                    sync: false,
                    members: if create { c.pool.md.map(|m| m.members()).unwrap_or_default() } else { MemberList::new() },
                };
                self.op_send_to_srv(srv, &Cmd::JoinPool(j));
            }
            return;
        }
        let c = self.client.as_mut().expect("client");
        if c.want_te {
            c.want_te = false;
            if let Some(run) = TryEnableRun::new(&mut c.pool) {
                c.op = Some(Op::Te { run, started: false });
                self.log("try-enable: freeze".into());
            }
        }
    }

    fn op_finished(&mut self, what: String) {
        self.log(format!("ctl done: {what}"));
        if let Some(c) = self.client.as_mut() {
            c.op = None;
            c.op_wait = None;
            c.op_tag = 0;
            c.pool.frozen = false;
        }
    }

    fn recovery_tick(&mut self) {
        // Map checks run outside the control lock (recover_work does not hold it), so their
        // replies can race with map updates and new dirty bits: that race is what the clean
        // delay protects against.
        let map_ver = self.client.as_ref().map_or(0, |c| c.pool.map_ver());
        let targets: Vec<(usize, usize)> = match self.client.as_ref() {
            Some(c) => (0..4)
                .filter(|s| c.pool.map_check_targets(&c.maps) & (1 << s) != 0)
                .filter(|s| !c.checks.values().any(|x| x == s))
                .map(|s| (s, c.slot_srv[s]))
                .collect(),
            None => return,
        };
        for (s, srv) in targets {
            let tag = self.tag();
            if self.send(CLIENT, srv + 1, enc(&Msg::Cmd(Cmd::MapCheck { map_ver })), 0, tag) {
                if let Some(c) = self.client.as_mut() {
                    c.checks.insert(tag, s);
                }
            }
        }
        let Some(c) = self.client.as_mut() else { return };
        if c.op.is_some() {
            return;
        }
        let mut items = VecDeque::new();
        for s in 0..4 {
            if c.pool.store_check_targets() & (1 << s) != 0 {
                items.push_back((s, BCmd::StoreCheck));
            }
        }
        for (s, l) in c.pool.legs() {
            if l.state != LegState::Failed && l.state != LegState::Removing {
                items.push_back((s, BCmd::SendMd));
            }
        }
        if !self.chaos {
            // Healing: the admin leaves maintenance on every leg.
            for (s, l) in c.pool.legs() {
                if l.maintenance && l.state != LegState::Failed {
                    items.push_back((s, BCmd::Maint(false)));
                }
            }
        }
        // [choice] also retry try-enable every tick while candidates wait.
        if c.pool.candidates() != 0 {
            c.want_te = true;
        }
        if !items.is_empty() {
            c.op = Some(Op::Batch { items, cur: None });
            self.batch_next();
        }
    }

    fn batch_next(&mut self) {
        let Some(c) = self.client.as_mut() else { return };
        let Some(Op::Batch { items, cur }) = c.op.as_mut() else { return };
        let Some((slot, b)) = items.pop_front() else {
            self.op_finished("batch".into());
            return;
        };
        *cur = Some((slot, b));
        let map_ver = c.pool.map_ver();
        let md = c.pool.md;
        let cmd = match b {
            BCmd::StoreCheck => Cmd::StoreCheck,
            BCmd::SendMd => match md {
                Some(mut md) => {
                    md.map_ver = map_ver;
                    Cmd::SendMdBuf(md)
                }
                None => Cmd::StoreCheck,
            },
            BCmd::Maint(on) => Cmd::EnablePool { enable: !on },
            BCmd::PoolInfo(m, op, dirty) => Cmd::PoolInfo { member_id: m, op, dirty },
        };
        self.op_send(slot, &cmd);
    }

    fn op_reply(&mut self, slot: usize, rsp: &CmdRsp<'_>) {
        let now = self.now;
        let Some(c) = self.client.as_mut() else { return };
        c.op_wait = None;
        c.op_srv = None;
        let Some(mut op) = c.op.take() else { return };
        match &mut op {
            Op::Te { run, .. } => {
                let mut r = *run;
                let st = r.on_reply(&mut c.pool, &c.maps, rsp);
                *run = r;
                c.op = Some(op);
                if let Some(res) = self.step_out(st) {
                    self.op_finished(format!("try-enable {res:?}"));
                }
            }
            Op::Batch { cur, .. } => {
                let Some((s, b)) = cur.take() else {
                    c.op = Some(op);
                    return;
                };
                c.op = Some(op);
                let ok = rsp.errno == 0;
                match b {
                    BCmd::StoreCheck => {
                        if rsp.errno == Error::NoEnt.errno() {
                            // The session is gone on the server: rejoin instead.
                            c.rejoin_wanted[s] = true;
                        }
                        if ok && matches!(rsp.body, RspBody::Bool(true)) {
                            let r = c.pool.on_store_ok(s);
                            if !self.cfg.bugs.promote_failed {
                                c.want_te = true;
                            }
                            self.log(format!("store check ok slot {s}: {r:?}"));
                            self.bug_promote_enable(s);
                        }
                    }
                    BCmd::Maint(on) => {
                        if ok && !on {
                            let _ = c.pool.clear_maintenance(s);
                            c.want_te = true;
                        }
                    }
                    BCmd::SendMd | BCmd::PoolInfo(..) => {}
                }
                self.batch_next();
            }
            Op::Join { srv, create, phase, slot: jslot } => {
                let (srv, create) = (*srv, *create);
                match *phase {
                    0 => {
                        let RspBody::Join { member_id, .. } = rsp.body else {
                            // Retry later.
                            c.to_add.push_back(srv);
                            self.log(format!("join srv {srv} failed {}", rsp.errno));
                            self.op_finished("join failed".into());
                            return;
                        };
                        let Ok(s) = c.pool.add_leg(member_id, false) else {
                            self.op_finished("add_leg failed".into());
                            return;
                        };
                        c.slot_srv[s] = srv;
                        c.prev_states[s] = Some((member_id, LegState::Created));
                        *jslot = s;
                        let total = c.pool.total_chunks;
                        let _ = c.maps.ensure(member_id, total);
                        if create {
                            // POOL_INFO(ADD, CREATE) to other legs, then admit.
                            let dirty = c.pool.pool_info_dirty();
                            if dirty {
                                if let Some(m) = c.maps.get_mut(member_id) {
                                    let _ = m.set_all(now);
                                }
                            }
                            let others: VecDeque<(usize, BCmd)> = c
                                .pool
                                .legs()
                                .filter(|(i, l)| *i != s && !matches!(l.state, LegState::Failed | LegState::Removing))
                                .map(|(i, _)| (i, BCmd::PoolInfo(member_id, InfoOp::AddCreate, dirty)))
                                .collect();
                            *phase = 2;
                            c.op = Some(op);
                            self.join_info(others);
                        } else {
                            *phase = 1;
                            c.op = Some(op);
                            self.op_send(s, &Cmd::MdSend);
                        }
                    }
                    1 => {
                        let s = *jslot;
                        if let RspBody::Md(md) = rsp.body {
                            let total = c.pool.total_chunks;
                            for m in md.members().iter() {
                                let _ = c.maps.ensure(m, total);
                            }
                            if rmr_core::client::map_ver_newer(md.map_ver, c.pool.map_ver()) {
                                c.pool.set_map_ver(md.map_ver);
                            }
                            if let Some(cm) = c.pool.md.as_mut() {
                                for m in md.members().iter() {
                                    let _ = cm.add_member(m);
                                }
                            }
                        }
                        let member = c.pool.leg(s).map_or(0, |l| l.member_id);
                        let others: VecDeque<(usize, BCmd)> = c
                            .pool
                            .legs()
                            .filter(|(i, l)| *i != s && !matches!(l.state, LegState::Failed | LegState::Removing))
                            .map(|(i, _)| (i, BCmd::PoolInfo(member, InfoOp::AddAssemble, false)))
                            .collect();
                        *phase = 2;
                        c.op = Some(op);
                        self.join_info(others);
                    }
                    _ => {
                        // POOL_INFO reply; continue.
                        c.op = Some(op);
                        self.join_info(VecDeque::new());
                    }
                }
                let _ = slot;
            }
            Op::Rejoin { slot: s, run } => {
                let s = *s;
                let st = run.on_reply(&mut c.pool, rsp);
                let (t, te) = (run.transition(), run.wants_try_enable(&c.pool));
                c.op = Some(op);
                if let Some(r) = self.step_out(st) {
                    if r.is_ok() && te {
                        if let Some(c) = self.client.as_mut() {
                            c.want_te = true;
                        }
                    }
                    self.log(format!("rejoin slot {s}: {r:?} {t:?}"));
                    self.op_finished(format!("rejoin slot {s}: {r:?}"));
                    self.bug_promote_enable(s);
                }
            }
            Op::Admit { slot: s, mu } => {
                let s = *s;
                match mu {
                    None => {
                        if rsp.errno == 0 {
                            let _ = c.pool.set_state(s, LegState::Normal);
                        }
                        self.op_finished(format!("admit slot {s}: {}", rsp.errno));
                    }
                    Some(m) => {
                        let mut m2 = *m;
                        let st = m2.on_reply(&mut c.pool, rsp);
                        *m = m2;
                        c.op = Some(op);
                        if let Some(r) = self.step_out(st) {
                            self.op_finished(format!("admit spread slot {s}: {r:?}"));
                        }
                    }
                }
            }
        }
    }

    /// The teeth bug "failed leg promoted to NORMAL without a map update": enable directly.
    fn bug_promote_enable(&mut self, slot: usize) {
        if !self.cfg.bugs.promote_failed {
            return;
        }
        let Some(c) = self.client.as_mut() else { return };
        if c.pool.leg(slot).is_some_and(|l| l.state == LegState::Normal) {
            match c.op.as_mut() {
                Some(Op::Batch { items, .. }) => items.push_front((slot, BCmd::Maint(false))),
                None => {
                    c.op = Some(Op::Batch { items: VecDeque::from([(slot, BCmd::Maint(false))]), cur: None });
                    self.batch_next();
                }
                Some(_) => {}
            }
        }
    }

    /// Join: send queued POOL_INFOs one by one (kept in a side queue), then finish.
    fn join_info(&mut self, add: VecDeque<(usize, BCmd)>) {
        let Some(c) = self.client.as_mut() else { return };
        let Some(Op::Join { srv: _, create, phase: _, slot }) = c.op.as_ref() else { return };
        let (create, s) = (*create, *slot);
        // Keep the infos in a thread-local queue.
        PENDING_INFO.with(|q| q.borrow_mut().extend(add));
        let next = PENDING_INFO.with(|q| q.borrow_mut().pop_front());
        match next {
            Some((slot, BCmd::PoolInfo(m, op, d))) => {
                self.op_send(slot, &Cmd::PoolInfo { member_id: m, op, dirty: d });
            }
            _ => {
                if create {
                    // enable=1 (§6.2 step 5).
                    match c.pool.admit(s) {
                        Ok(rmr_core::client::Admit::EnablePool) => {
                            c.op = Some(Op::Admit { slot: s, mu: None });
                            self.op_send(s, &Cmd::EnablePool { enable: true });
                        }
                        Ok(rmr_core::client::Admit::Spread { source }) => {
                            c.pool.frozen = true;
                            let mut mu = rmr_core::control::MapUpdate::new(source, 1 << s, true);
                            let st = mu.start(&c.pool);
                            c.op = Some(Op::Admit { slot: s, mu: Some(mu) });
                            if let Some(r) = self.step_out(st) {
                                self.op_finished(format!("admit {r:?}"));
                            }
                        }
                        r => self.op_finished(format!("admit {r:?}")),
                    }
                } else {
                    // Only a leg still CREATED (its transport did not fail meanwhile) moves on;
                    // a FAILED one rejoins when its link returns.
                    if c.pool.leg(s).is_some_and(|l| l.state == LegState::Created) {
                        let _ = c.pool.set_state(s, LegState::Reconnecting);
                    }
                    c.want_te = true;
                    self.op_finished(format!("assembled slot {s}"));
                }
            }
        }
    }

    // ----------------------------------------------------------------------------- servers

    fn srv_recv(&mut self, p: Packet) {
        let i = p.to - 1;
        let now = self.now;
        if !self.srvs[i].alive {
            return;
        }
        let Ok((_, msg)) = Msg::decode(&p.bytes) else {
            self.violation(format!("server {i} got an undecodable message"));
            return;
        };
        match msg {
            Msg::Cmd(cmd) => {
                let from_client = p.from == CLIENT;
                let s = &mut self.srvs[i];
                let Some(pool) = s.pool.as_mut() else {
                    let r = CmdRsp::err(cmd.ty(), Error::NoEnt);
                    let b = enc(&Msg::CmdRsp(r));
                    self.send(p.to, p.from, b, 0, p.tag);
                    return;
                };
                // Commands need a joined session (the kernel has no srv_pool_sess before).
                let joins = matches!(cmd, Cmd::JoinPool(_) | Cmd::RejoinPool(_));
                if from_client && !s.client_joined && !joins {
                    let r = CmdRsp::err(cmd.ty(), Error::NoEnt);
                    let b = enc(&Msg::CmdRsp(r));
                    self.send(p.to, p.from, b, 0, p.tag);
                    return;
                }
                let mut buf = [0u8; PIECE_BYTES];
                let before = pool.state;
                let own_ver = pool.md.map_ver;
                let (rsp, fx) = pool.handle_cmd(&cmd, !from_client, now, &mut buf);
                let after = pool.state;
                // A peer's MAP_CLEAR (refused when older than this node's map_ver).
                let clear_note = match cmd {
                    Cmd::MapClear { member_id, chunk, map_ver } => Some(format!(
                        "srv {i} MAP_CLEAR m{member_id} c{chunk} ver {map_ver} (own ver {own_ver}): bit {}",
                        if pool.maps.get(member_id).is_some_and(|m| m.test(chunk)) { "still set" } else { "clear" }
                    )),
                    _ => None,
                };
                if from_client && rsp.errno == 0 && matches!(cmd, Cmd::JoinPool(_) | Cmd::RejoinPool(_)) {
                    if s.client_joined {
                        // The old session is replaced by the new one.
                        pool.sessions = pool.sessions.saturating_sub(1);
                    }
                    s.client_joined = true;
                }
                if fx.stop_sync {
                    s.sched.stop();
                }
                if matches!(cmd, Cmd::LastIoToMap | Cmd::SuspectToMap | Cmd::MapDone { .. }) {
                    let mut b = [0u8; 1024];
                    let n = pool.maps.render_summary(&mut b);
                    let sum = String::from_utf8_lossy(&b[..n]).replace('\n', "; ");
                    let li: Vec<u64> = pool.last_io.iter().copied().filter(|c| *c != u64::MAX).collect();
                    self.log(format!("srv {i} after {:?}: errno {} last_io {li:?} maps {sum}", cmd.ty(), rsp.errno));
                }
                let bytes = enc(&Msg::CmdRsp(rsp));
                if before != after {
                    self.log(format!("srv {i} {} -> {} ({:?})", before.name(), after.name(), cmd_brief(&cmd)));
                }
                self.send(p.to, p.from, bytes, 0, p.tag);
                if let Some(n) = clear_note {
                    self.log(n);
                }
            }
            Msg::Io(io) => self.srv_io(i, p.from, io, p.data, p.tag),
            Msg::IoRsp(r) => self.srv_sync_reply(i, p.tag, r, p.data),
            Msg::CmdRsp(r) => self.srv_cmd_reply(i, p.tag, r),
        }
    }

    fn srv_io(&mut self, i: usize, from: usize, io: IoMsg, value: u64, tag: u64) {
        let now = self.now;
        let s = &mut self.srvs[i];
        let Some(pool) = s.pool.as_mut() else {
            let b = enc(&Msg::IoRsp(IoRsp { mem_id: io.mem_id, errno: Error::Io.errno() }));
            self.send(i + 1, from, b, 0, tag);
            return;
        };
        let d = pool.on_io(&io, now);
        if let IoDecision::SubmitFua { preflush } = d {
            self.count(if preflush { "write-promoted-preflush-fua" } else { "write-promoted-fua" });
        }
        let s = &mut self.srvs[i];
        match d {
            IoDecision::Submit | IoDecision::SubmitFua { .. } => {
                let mut io = io;
                if let IoDecision::SubmitFua { preflush } = d {
                    io.flags |= IO_FUA;
                    if preflush {
                        io.flags |= IO_FLUSH;
                    }
                }
                if io.flags & IO_SYNC != 0 {
                    // Peer read: serve directly from the disk.
                    let v = s.disk.read(io.id.b);
                    let b = enc(&Msg::IoRsp(IoRsp { mem_id: io.mem_id, errno: 0 }));
                    self.send(i + 1, from, b, v, tag);
                } else {
                    s.backend.push(Bop::Io { io, value, tag });
                }
            }
            IoDecision::Park | IoDecision::SyncFirst => {
                s.parked.insert(io.mem_id, (io, value, tag));
                self.log(format!("srv {i} parks mem{} on c{} ({d:?})", io.mem_id, io.id.b));
                if d == IoDecision::SyncFirst {
                    self.start_sync_read(i, io.id.b, false, MemberList::new());
                }
            }
            IoDecision::Reject(e) => {
                let b = enc(&Msg::IoRsp(IoRsp { mem_id: io.mem_id, errno: e.errno() }));
                self.send(i + 1, from, b, 0, tag);
            }
        }
    }

    fn peers_up(&self, i: usize) -> MemberList {
        let mut l = MemberList::new();
        for (j, s) in self.srvs.iter().enumerate() {
            if j != i && self.link_up(i + 1, j + 1) {
                let _ = l.push(s.member);
            }
        }
        l
    }

    fn start_sync_read(&mut self, i: usize, chunk: u64, thread: bool, skip: MemberList) {
        let peers = self.peers_up(i);
        let src = self.srvs[i].pool.as_ref().and_then(|p| p.sync_source(chunk, &peers, &skip));
        let Some(src) = src else {
            self.log(format!("srv {i} sync c{chunk}: no source"));
            self.finish_sync(i, chunk, None);
            self.sync_thread_done(i, thread, false);
            return;
        };
        let j = self.srvs.iter().position(|s| s.member == src).expect("peer");
        let tag = self.tag();
        let mut skip2 = skip;
        let _ = skip2.push(src);
        self.srvs[i].syncs.insert(chunk, SyncReq { tag, src, skip: skip2, thread });
        let io = IoMsg {
            id: RmrId::chunk(chunk),
            mem_id: 0,
            flags: IO_SYNC,
            offset: 0,
            len: CHUNK_SIZE,
            map_ver: 0,
            members: MemberList::new(),
        };
        if !self.send(i + 1, j + 1, enc(&Msg::Io(io)), 0, tag) {
            self.local.push_back(Packet { from: j + 1, to: i + 1, bytes: vec![2], data: 0, tag });
        }
    }

    fn sync_read_failed(&mut self, i: usize, tag: u64) {
        let Some((&chunk, _)) = self.srvs[i].syncs.iter().find(|(_, r)| r.tag == tag) else { return };
        let r = self.srvs[i].syncs.remove(&chunk).expect("sync");
        // Try another peer.
        let thread = r.thread;
        self.start_sync_read_retry(i, chunk, thread, r.skip);
    }

    fn start_sync_read_retry(&mut self, i: usize, chunk: u64, thread: bool, skip: MemberList) {
        if skip.len() >= self.srvs.len() - 1 {
            self.finish_sync(i, chunk, None);
            self.sync_thread_done(i, thread, false);
            return;
        }
        self.start_sync_read(i, chunk, thread, skip);
    }

    fn srv_sync_reply(&mut self, i: usize, tag: u64, r: IoRsp, value: u64) {
        let Some((&chunk, _)) = self.srvs[i].syncs.iter().find(|(_, q)| q.tag == tag) else { return };
        if r.errno != 0 {
            let q = self.srvs[i].syncs.remove(&chunk).expect("sync");
            self.start_sync_read_retry(i, chunk, q.thread, q.skip);
            return;
        }
        if let Some(q) = self.srvs[i].syncs.get_mut(&chunk) {
            q.tag = 0; // now writing locally
        }
        // The sync write is a plain write: record it in the write-intent record first.
        let rec = self.srvs[i].pool.as_mut().map(|p| p.sync_write_intent(chunk));
        if !matches!(rec, Some(Ok(_))) {
            self.finish_sync(i, chunk, None);
            return;
        }
        self.srvs[i].backend.push(Bop::SyncWrite { chunk, value });
    }

    fn finish_sync(&mut self, i: usize, chunk: u64, value_written: Option<u64>) {
        let read_errno = if value_written.is_some() { 0 } else { Error::Io.errno() };
        let mut w = [0u16; QD];
        // The sync pool's NORMAL legs: every other node (a lost link drops the message).
        let peers: MemberList = {
            let mut l = MemberList::new();
            for (j, x) in self.srvs.iter().enumerate() {
                if j != i {
                    let _ = l.push(x.member);
                }
            }
            l
        };
        let s = &mut self.srvs[i];
        let thread = s.syncs.remove(&chunk).is_some_and(|q| q.thread);
        let Some(pool) = s.pool.as_mut() else { return };
        let done = pool.finish_sync(chunk, read_errno, &mut w);
        let targets = pool.map_clear_peers(&peers);
        let ok = done.cleared;
        self.log(format!("srv {i} sync c{chunk} {} ({} waiters)", if ok { "done" } else { "FAILED" }, done.waiters));
        // Waiters: resubmit (cleared) or fail with the core's errno.
        for mem in w.iter().take(done.waiters) {
            if let Some((io, value, tag)) = self.srvs[i].parked.remove(mem) {
                if ok {
                    self.srv_io(i, CLIENT, io, value, tag);
                } else {
                    let b = enc(&Msg::IoRsp(IoRsp { mem_id: io.mem_id, errno: done.waiter_errno }));
                    self.send(i + 1, CLIENT, b, 0, tag);
                }
            }
        }
        if let Some(cmd) = done.map_clear {
            let b = enc(&Msg::Cmd(cmd));
            for j in 0..self.srvs.len() {
                if targets.contains(self.srvs[j].member) {
                    let tag = self.tag();
                    self.send(i + 1, j + 1, b.clone(), 0, tag);
                }
            }
        }
        if thread {
            self.sync_thread_done(i, true, ok);
        }
    }

    fn sync_thread_done(&mut self, i: usize, was_thread: bool, ok: bool) {
        if !was_thread {
            return;
        }
        let s = &mut self.srvs[i];
        if let Some(pool) = s.pool.as_ref() {
            if s.sched.done(pool, ok) {
                self.log(format!("srv {i} sync thread stopped"));
            }
        }
    }

    fn srv_cmd_reply(&mut self, i: usize, tag: u64, r: CmdRsp<'_>) {
        if r.ty == CmdType::MapCheck {
            if let Some((m, gen)) = self.srvs[i].clear_checks.remove(&tag) {
                let empty = r.errno == 0 && matches!(r.body, RspBody::Bool(true));
                if let Some(pool) = self.srvs[i].pool.as_mut() {
                    if pool.on_peer_check_reply(m, empty, gen) {
                        self.log(format!("srv {i} cleared peer map {m}"));
                    }
                }
            }
        }
    }

    fn srv_map_clear_worker(&mut self, i: usize) {
        let Some(pool) = self.srvs[i].pool.as_ref() else { return };
        let targets = pool.map_clear_targets();
        let ver = pool.md.map_ver;
        let gens: Vec<(u32, u64)> =
            targets.iter().map(|m| (m, pool.maps.get(m).map_or(0, |x| x.gen()))).collect();
        for (m, gen) in gens {
            let Some(j) = self.srvs.iter().position(|s| s.member == m) else { continue };
            let tag = self.tag();
            if self.send(i + 1, j + 1, enc(&Msg::Cmd(Cmd::MapCheck { map_ver: ver })), 0, tag) {
                self.srvs[i].clear_checks.insert(tag, (m, gen));
            }
        }
    }

    fn backend_complete(&mut self) {
        let cands: Vec<usize> = (0..self.srvs.len()).filter(|i| !self.srvs[*i].backend.is_empty()).collect();
        if cands.is_empty() {
            return;
        }
        let i = cands[self.rng.below(cands.len() as u64) as usize];
        let k = self.rng.below(self.srvs[i].backend.len() as u64) as usize;
        self.complete_bop(i, k);
    }

    fn complete_bop(&mut self, i: usize, k: usize) {
        if k >= self.srvs[i].backend.len() {
            return;
        }
        let op = self.srvs[i].backend.remove(k);
        let flakey = self.srvs[i].disk.flakey;
        match op {
            Bop::Io { io, value, tag } => {
                let s = &mut self.srvs[i];
                let ok = !flakey;
                let mut v = 0;
                let mut stored = false;
                if ok {
                    if io.is_write() {
                        // Preflush first, then the data (FUA: durable at once).
                        if io.flags & IO_FLUSH != 0 {
                            s.disk.flush();
                        }
                        if io.len > 0 {
                            s.disk.write(io.id.b, value, io.flags & IO_FUA != 0);
                            stored = true;
                        }
                    } else {
                        v = s.disk.read(io.id.b);
                    }
                }
                if let Some(pool) = s.pool.as_mut() {
                    let before = pool.state;
                    let fx = pool.on_io_done(&io, ok);
                    if fx.stop_sync {
                        s.sched.stop();
                    }
                    if before != pool.state {
                        let st = pool.state.name();
                        self.log(format!("srv {i} backend error -> {st}"));
                    }
                }
                if stored && !self.model.disowned.contains(&(value, i)) {
                    self.model.stored(value, i);
                }
                let errno = if ok { 0 } else { Error::Io.errno() };
                let b = enc(&Msg::IoRsp(IoRsp { mem_id: io.mem_id, errno }));
                self.send(i + 1, CLIENT, b, v, tag);
            }
            Bop::SyncWrite { chunk, value } => {
                if flakey {
                    if let Some(pool) = self.srvs[i].pool.as_mut() {
                        pool.io_allowed = false;
                        let fx = pool.on_fault();
                        if fx.stop_sync {
                            self.srvs[i].sched.stop();
                        }
                    }
                    self.finish_sync(i, chunk, None);
                } else {
                    // A sync write is a plain write (rmr's sync_chunk): volatile until a flush.
                    self.srvs[i].disk.write(chunk, value, false);
                    self.model.stored(value, i);
                    self.finish_sync(i, chunk, Some(value));
                }
            }
        }
    }

    fn servers_pump(&mut self) {
        for i in 0..self.srvs.len() {
            loop {
                let s = &mut self.srvs[i];
                let Some(pool) = s.pool.as_mut() else { break };
                if !s.sched.running {
                    break;
                }
                match s.sched.next(pool) {
                    Some(c) => {
                        self.log(format!("srv {i} sync thread: c{c}"));
                        self.start_sync_read(i, c, true, MemberList::new());
                    }
                    None => {
                        let s = &mut self.srvs[i];
                        if let Some(pool) = s.pool.as_ref() {
                            if s.sched.check_end(pool) {
                                self.log(format!("srv {i} sync thread stopped"));
                            }
                        }
                        break;
                    }
                }
            }
        }
    }

    // ----------------------------------------------------------------------------- nemeses

    fn count(&mut self, k: &'static str) {
        *self.nemesis_count.entry(k).or_default() += 1;
    }

    fn nemesis(&mut self) {
        let n = self.srvs.len();
        match self.rng.below(12) {
            0 | 1 => {
                // Client-server link down/up.
                let i = self.rng.below(n as u64) as usize;
                let l = self.links.get_mut(&(CLIENT, i + 1)).expect("link");
                l.admin_up = !l.admin_up;
                let up = l.admin_up;
                self.count("link");
                self.log(format!("NEMESIS link P-{i} admin {}", if up { "up" } else { "down" }));
            }
            2 => {
                // Server-server link (sync pool) down/up.
                let a = 1 + self.rng.below(n as u64) as usize;
                let b = 1 + self.rng.below(n as u64) as usize;
                if a != b {
                    let l = self.links.get_mut(&link_key(a, b)).expect("link");
                    l.admin_up = !l.admin_up;
                    self.count("peer-link");
                    self.log(format!("NEMESIS link {a}-{b} toggled"));
                }
            }
            3 => {
                let i = self.rng.below(n as u64) as usize;
                if self.srvs[i].alive {
                    self.crash_server(i);
                } else {
                    self.restart_server(i);
                }
            }
            4 => {
                if self.client.is_some() {
                    self.crash_client();
                } else {
                    self.restart_client();
                }
            }
            5 => {
                // Crash during a map update.
                let in_mu = self.client.as_ref().is_some_and(|c| matches!(c.op, Some(Op::Te { started: true, .. }) | Some(Op::Admit { .. })));
                if in_mu {
                    self.count("crash-in-map-update");
                    if self.rng.permille(300) {
                        self.crash_client();
                    } else {
                        let i = self.rng.below(n as u64) as usize;
                        if self.srvs[i].alive {
                            self.crash_server(i);
                        }
                    }
                }
            }
            6 => {
                let i = self.rng.below(n as u64) as usize;
                let f = !self.srvs[i].disk.flakey;
                self.srvs[i].disk.flakey = f;
                self.count("flakey");
                self.log(format!("NEMESIS srv {i} disk {}", if f { "flakey" } else { "healed" }));
                if !f {
                    if let Some(p) = self.srvs[i].pool.as_mut() {
                        p.io_allowed = p.store;
                    }
                }
            }
            7 => self.maintenance_toggle(),
            8 | 9 => {
                let i = self.rng.below(n as u64) as usize;
                self.sync_start(i);
            }
            10 if self.rng.permille(300) => {
                // Hold the next "empty" MAP_CHECK answer of a node back for 1-15 s: the
                // stale answer the client map clean delay guards against.
                let i = self.rng.below(n as u64) as usize;
                let until = self.now + 1000 + self.rng.below(14_000);
                self.hold_check_from = Some((i, until));
                self.count("hold-map-check");
                self.log(format!("NEMESIS hold the next empty MAP_CHECK answer of srv {i} until t={until}"));
            }
            10 => {
                // Hold one in-flight message back for up to 6 s.
                let nonempty: Vec<(usize, usize)> =
                    self.links.iter().filter(|(_, l)| !l.q.is_empty()).map(|(k, _)| *k).collect();
                if !nonempty.is_empty() {
                    let k = nonempty[self.rng.below(nonempty.len() as u64) as usize];
                    let len = self.links.get(&k).map_or(0, |l| l.q.len()) as u64;
                    let idx = self.rng.below(len) as usize;
                    let until = self.now + 100 + self.rng.below(6000);
                    if let Some(p) = self.links.get_mut(&k).and_then(|l| l.q.remove(idx)) {
                        self.count("delay");
                        self.log(format!("NEMESIS delay a message {}->{} until t={until}", p.from, p.to));
                        self.held.push((until, k, p));
                    }
                }
            }
            _ => {
                // Time passes (recovery ticks, clean delays).
                self.now += 1000 + self.rng.below(6000);
                self.timers();
            }
        }
    }

    fn sync_start(&mut self, i: usize) {
        let s = &mut self.srvs[i];
        if let Some(pool) = s.pool.as_ref() {
            if s.sched.start(pool, 4, true).is_ok() {
                self.count("sync");
                self.log(format!("srv {i} sync start"));
            }
        }
    }

    fn maintenance_toggle(&mut self) {
        let Some(c) = self.client.as_mut() else { return };
        if c.op.is_some() || c.pool.inflight > 0 {
            return;
        }
        let legs: Vec<(usize, bool, LegState)> = c.pool.legs().map(|(s, l)| (s, l.maintenance, l.state)).collect();
        if legs.is_empty() {
            return;
        }
        let (s, m, st) = legs[self.rng.below(legs.len() as u64) as usize];
        if m {
            if st == LegState::Failed {
                return;
            }
            c.op = Some(Op::Batch { items: VecDeque::from([(s, BCmd::Maint(false))]), cur: None });
            self.count("maint-off");
            self.log(format!("NEMESIS maintenance off slot {s}"));
            self.batch_next();
        } else if st == LegState::Normal {
            // §8: IO frozen until the server is NO_IO.
            c.pool.frozen = true;
            let _ = c.pool.set_maintenance(s);
            c.op = Some(Op::Batch { items: VecDeque::from([(s, BCmd::Maint(true))]), cur: None });
            self.count("maint-on");
            self.log(format!("NEMESIS maintenance on slot {s}"));
            self.batch_next();
        }
    }

    fn crash_server(&mut self, i: usize) {
        let power = self.rng.permille(self.cfg.power_loss);
        self.crash_server_kind(i, power);
    }

    /// Crash storage node `i`: a power loss drops a random part of its disk's unflushed
    /// writes; a kernel crash leaves the (powered) disk to write its cache back.
    fn crash_server_kind(&mut self, i: usize, power: bool) {
        self.count(if power { "srv-power-loss" } else { "srv-crash" });
        let unflushed: Vec<u64> = self.srvs[i].disk.cache.values().flatten().copied().collect();
        // The node's durable write-intent record must name every chunk with unflushed data.
        let record: Vec<u64> = (0..self.cfg.chunks).filter(|c| self.srvs[i].suspects_any(*c)).collect();
        if !self.cfg.bug_no_write_intent {
            if let Some(c) = self.srvs[i].disk.cache.keys().find(|c| !record.contains(c)) {
                self.violation(format!("srv {i}: unflushed write of chunk {c} is missing from its write-intent record {record:?}"));
            }
        }
        // After an unclean restart the node cannot vouch for the values of recorded chunks (nor,
        // physically, for anything its cache still held).
        let mut doubt: std::collections::BTreeSet<u64> = record.iter().copied().collect();
        doubt.extend(self.srvs[i].disk.cache.keys().copied());
        let doubted: Vec<u64> =
            doubt.iter().flat_map(|c| self.model.writes[*c as usize].iter().map(|w| w.0)).collect();
        if power {
            let lost = self.srvs[i].disk.power_loss(&mut self.rng);
            let ex = self.model.unclean_down(i, &doubted, &lost);
            self.log(format!("NEMESIS srv {i} power loss: unflushed {unflushed:?}, dropped {lost:?}, record {record:?}, acked writes no holder vouches for {ex:?}"));
        } else {
            self.srvs[i].disk.flush();
            let ex = self.model.unclean_down(i, &doubted, &[]);
            self.log(format!("NEMESIS srv {i} crash: unflushed {unflushed:?}, record {record:?}, acked writes no holder vouches for {ex:?}"));
        }
        let s = &mut self.srvs[i];
        s.alive = false;
        if let Some(mut pool) = s.pool.take() {
            // Metadata is durable (written through): keep md, maps and last_io.
            s.disk.md = Some(pool.md);
            s.disk.maps = snapshot(&pool.maps);
            s.disk.last_io = pool.last_io.to_vec();
            s.disk.intent = (0..pool.total_chunks()).filter(|c| pool.intent.durable(*c)).collect();
            s.disk.witness = snapshot(&pool.intent.witness);
            s.disk.lost = pool.intent.lost.as_ref().map(|l| l.iter().collect()).unwrap_or_default();
            s.disk.lost_maps = snapshot(&pool.lost);
            pool.lost.remove_all();
            s.disk.has_store = pool.store;
            pool.maps.remove_all();
        }
        // In-flight backend writes vanish.
        s.backend.clear();
        s.parked.clear();
        s.syncs.clear();
        s.sched = SyncSched::default();
        s.clear_checks.clear();
        s.client_joined = false;
    }

    fn restart_server(&mut self, i: usize) {
        self.count("srv-restart");
        self.log(format!("NEMESIS srv {i} restart (join_pool, add_store mode=add)"));
        let name = self.name;
        let chunks = self.cfg.chunks;
        let nobug = self.cfg.bugs.last_io_no_skip;
        let s = &mut self.srvs[i];
        let mut pool = Box::new(ServerPool::new(s.member, base_md(name, chunks)).expect("pool"));
        pool.bug_last_io_no_skip = nobug;
        pool.intent.volatile_cache = !s.disk.write_through && !self.cfg.bug_no_write_intent;
        if pool.register(RegMode::Add, s.disk.md).is_ok() {
            let total = pool.total_chunks();
            restore(&mut pool.maps, &s.disk.maps, total);
            for (d, v) in pool.last_io.iter_mut().zip(s.disk.last_io.iter()) {
                *d = *v;
            }
            for c in &s.disk.intent {
                pool.restore_suspect(*c).expect("suspect");
            }
            for c in &s.disk.lost {
                pool.restore_lost(*c).expect("lost");
            }
            restore(&mut pool.lost, &s.disk.lost_maps, total);
            for (m, cs) in &s.disk.witness {
                for c in cs.iter().filter(|c| s.disk.intent.contains(c)) {
                    pool.restore_witness(*m, *c).expect("witness");
                }
            }
        }
        s.pool = Some(pool);
        s.alive = true;
        s.next_clear = self.now + RMR_SRV_CHECK_MAPS_INTERVAL_MS;
    }

    fn crash_client(&mut self) {
        self.count("client-crash");
        self.log("NEMESIS client crash".into());
        if let Some(c) = self.client.take() {
            for io in c.ios.iter().flatten() {
                if let CioKind::Write { widx, .. } = io.kind {
                    self.model.set(io.chunk, widx, WSt::Failed);
                }
            }
        }
        self.local.retain(|p| p.to != CLIENT);
        PENDING_INFO.with(|q| q.borrow_mut().clear());
    }

    fn restart_client(&mut self) {
        self.client_gen += 1;
        self.count("client-reassemble");
        self.log("NEMESIS client reassemble (join_pool, add_sess mode=assemble)".into());
        let c = self.new_client(false);
        self.client = Some(c);
    }

    // ----------------------------------------------------------------------------- invariants

    fn busy_chunks(&self) -> std::collections::BTreeSet<u64> {
        let mut b = std::collections::BTreeSet::new();
        if let Some(cl) = self.client.as_ref() {
            for x in cl.ios.iter().flatten() {
                if matches!(x.kind, CioKind::Write { .. }) {
                    b.insert(x.chunk);
                }
            }
        }
        for s in &self.srvs {
            for op in &s.backend {
                match op {
                    Bop::Io { io, .. } if io.is_write() => {
                        b.insert(io.id.b);
                    }
                    Bop::SyncWrite { chunk, .. } => {
                        b.insert(*chunk);
                    }
                    _ => {}
                }
            }
            b.extend(s.syncs.keys().copied());
        }
        b
    }

    fn check_invariants(&mut self) {
        if self.fail.is_some() {
            return;
        }
        // Untouched chunks hold v0 everywhere and are trivially consistent.
        let busy = self.busy_chunks();
        let touched: Vec<u64> = (0..self.cfg.chunks)
            .filter(|c| !self.model.writes[*c as usize].is_empty() && !busy.contains(c))
            .collect();
        // 1. Only legal leg transitions (checked independently of the core's own table).
        if let Some(c) = self.client.as_mut() {
            let mut bad = None;
            for (s, l) in c.pool.legs() {
                if let Some((m, prev)) = c.prev_states[s] {
                    if m == l.member_id && prev != l.state && !leg_transition_allowed(prev, l.state, l.sync) {
                        bad = Some(format!("illegal leg transition slot {s} member {m}: {prev:?} -> {:?}", l.state));
                    }
                }
                c.prev_states[s] = Some((l.member_id, l.state));
            }
            if let Some(b) = bad {
                if self.cfg.check_transitions {
                    self.violation(b);
                    return;
                }
            }
            // Client and server agree: a NORMAL leg's server must not be NORMAL-less forever;
            // a NORMAL server with a NORMAL leg holds the maps (below).
        }
        // 2. Every NORMAL server holds a complete dirty map, and its clean chunks hold current
        //    data.
        for (i, s) in self.srvs.iter().enumerate() {
            let Some(pool) = s.pool.as_ref() else { continue };
            if pool.state != SrvState::Normal || !s.alive {
                continue;
            }
            for &c in &touched {
                let own_dirty = pool.maps.get(s.member).is_some_and(|m| m.test(c));
                if own_dirty {
                    continue;
                }
                let mine = s.disk.read(c);
                let k = self.model.last_acked(c);
                if !self.model.valid(c, k, mine) {
                    let vouch: Vec<(u64, Vec<usize>)> = self.model.writes[c as usize]
                        .iter()
                        .map(|w| (w.0, self.model.vouch.get(&w.0).map(|x| x.iter().copied().collect()).unwrap_or_default()))
                        .collect();
                    let w = format!(
                        "NORMAL srv {i} (member {}) holds stale chunk {c} = v{mine} with a clean own map; history {:?}, vouching nodes {vouch:?}",
                        s.member, self.model.writes[c as usize]
                    );
                    self.violation(w);
                    return;
                }
                for o in &self.srvs {
                    if o.member == s.member {
                        continue;
                    }
                    let theirs = o.disk.read(c);
                    if theirs != mine && !pool.maps.get(o.member).is_some_and(|m| m.test(c)) && !o.suspects(c) {
                        let w = format!(
                            "NORMAL srv {i} (member {}) misses dirty bit: chunk {c} is v{mine} here, v{theirs} on member {}",
                            s.member, o.member
                        );
                        self.violation(w);
                        return;
                    }
                }
            }
        }
        // 3. The client's maps are complete for members whose leg is not NORMAL (they decide
        //    what the returning node must resync) — checked against NORMAL servers' data.
        let mut bad = None;
        if let Some(c) = self.client.as_ref() {
            'outer: for (_, l) in c.pool.legs() {
                let Some(srv) = self.srvs.iter().find(|s| s.member == l.member_id) else { continue };
                for &ch in &touched {
                    let theirs = srv.disk.read(ch);
                    let Some(k) = self.model.last_acked(ch) else { continue };
                    let acked = self.model.writes[ch as usize][k].0;
                    // Stale = does not hold the last acked value or anything later.
                    if self.model.valid(ch, Some(k), theirs) {
                        continue;
                    }
                    let own_dirty = srv.pool.as_ref().is_some_and(|p| p.maps.get(l.member_id).is_some_and(|m| m.test(ch)));
                    let marked = c.maps.get(l.member_id).is_some_and(|m| m.test(ch));
                    let normal_marks = self.srvs.iter().any(|o| {
                        o.pool.as_ref().is_some_and(|p| p.state == SrvState::Normal && p.maps.get(l.member_id).is_some_and(|m| m.test(ch)))
                    });
                    if !marked && !own_dirty && !normal_marks && l.state == LegState::Normal {
                        bad = Some(format!(
                            "member {} is NORMAL but stale at chunk {ch} (v{theirs}, acked v{acked}) and nobody has it dirty",
                            l.member_id
                        ));
                        break 'outer;
                    }
                }
            }
        }
        if let Some(b) = bad {
            self.violation(b);
            return;
        }
        // 4. Client maps are complete for what this client incarnation acknowledged: a member
        //    that is stale at a chunk whose last acknowledged write this client issued must be
        //    dirty in the client map (they decide case 2 and are cleared only by map check).
        let mut bad = None;
        if let Some(c) = self.client.as_ref() {
            'o4: for (_, l) in c.pool.legs() {
                let Some(srv) = self.srvs.iter().find(|s| s.member == l.member_id) else { continue };
                for &ch in &touched {
                    let Some(k) = self.model.last_acked(ch) else { continue };
                    let (v, _) = self.model.writes[ch as usize][k];
                    if self.write_gen.get(&v) != Some(&self.client_gen) {
                        continue;
                    }
                    let theirs = srv.disk.read(ch);
                    // A node that lost the write in a power loss is not the client's to know:
                    // the node's own record covers it (invariants 2 and 3).
                    let node = self.srvs.iter().position(|s| s.member == l.member_id).unwrap_or(usize::MAX);
                    if self.model.lost.contains(&(v, node)) {
                        continue;
                    }
                    if !self.model.valid(ch, Some(k), theirs) && !c.maps.get(l.member_id).is_some_and(|m| m.test(ch)) {
                        bad = Some(format!(
                            "client map of member {} lacks chunk {ch}: it holds v{theirs}, this client acknowledged v{v}",
                            l.member_id
                        ));
                        break 'o4;
                    }
                }
            }
        }
        if let Some(b) = bad {
            self.violation(b);
        }
    }

    // ----------------------------------------------------------------------------- run

    fn heal(&mut self) {
        self.chaos = false;
        for l in self.links.values_mut() {
            l.admin_up = true;
        }
        for i in 0..self.srvs.len() {
            self.srvs[i].disk.flakey = false;
            if !self.srvs[i].alive {
                self.restart_server(i);
            } else if let Some(p) = self.srvs[i].pool.as_mut() {
                p.io_allowed = p.store;
            }
        }
        if self.client.is_none() {
            self.restart_client();
        }
        self.log("HEAL".into());
    }

    fn converged(&self) -> bool {
        let Some(c) = self.client.as_ref() else { return false };
        if c.op.is_some() || !c.to_add.is_empty() || c.pool.inflight > 0 {
            return false;
        }
        if c.pool.legs().count() != self.srvs.len() || c.pool.legs().any(|(_, l)| l.state != LegState::Normal || l.maintenance) {
            return false;
        }
        self.srvs.iter().all(|s| s.pool.as_ref().is_some_and(|p| p.state == SrvState::Normal))
    }

    fn synced(&self) -> bool {
        self.srvs.iter().all(|s| {
            s.backend.is_empty()
                && s.syncs.is_empty()
                && s.pool.as_ref().is_some_and(|p| p.maps.iter().all(|m| m.is_empty()))
        }) && self.links.values().all(|l| l.q.is_empty())
            && self.held.is_empty()
    }

    fn final_check(&mut self) {
        for c in 0..self.cfg.chunks {
            let vals: Vec<u64> = self.srvs.iter().map(|s| s.disk.read(c)).collect();
            if vals.iter().any(|v| *v != vals[0]) {
                self.violation(format!("after recovery and sync, chunk {c} differs across legs: {vals:?}"));
                return;
            }
            let k = self.model.last_acked(c);
            if !self.model.valid(c, k, vals[0]) {
                self.violation(format!(
                    "acknowledged write lost: chunk {c} = v{} but history {:?}",
                    vals[0], self.model.writes[c as usize]
                ));
                return;
            }
        }
        if let Some(c) = self.client.as_ref() {
            let n: u64 = c.maps.iter().map(|m| m.count()).sum();
            if n != 0 {
                self.violation(format!("client maps not cleared after sync: {n} bits"));
            }
        }
    }

    /// Run the whole scenario: chaos, heal, converge, sync, final checks.
    pub fn run(mut self) -> Result<RunStats, Failure> {
        // Bring-up until all legs are NORMAL.
        self.io_on = false;
        self.chaos = false;
        let mut guard = 0;
        while !self.converged() && guard < 5000 {
            self.step_once();
            guard += 1;
        }
        if !self.converged() {
            return Err(self.failure("bring-up did not converge".into()));
        }
        self.log("bring-up done".into());
        self.io_on = true;
        self.chaos = true;
        for _ in 0..self.cfg.steps {
            self.step_once();
            if let Some(f) = self.fail.take() {
                return Err(self.failure(f));
            }
        }
        self.heal();
        // Keep a little IO, then stop it and converge.
        for _ in 0..100 {
            self.step_once();
        }
        self.io_on = false;
        let mut guard = 0;
        while guard < 40_000 {
            self.step_once();
            if let Some(f) = self.fail.take() {
                return Err(self.failure(f));
            }
            guard += 1;
            if self.converged() {
                // Sync every node with a dirty own map, let workers clear maps.
                for i in 0..self.srvs.len() {
                    let dirty = self.srvs[i]
                        .pool
                        .as_ref()
                        .is_some_and(|p| p.maps.get(p.member_id).is_some_and(|m| !m.is_empty()));
                    if dirty && !self.srvs[i].sched.running {
                        self.sync_start(i);
                    }
                }
                if self.synced() {
                    // Let client map checks run (clean delay).
                    let n: u64 = self.client.as_ref().map_or(0, |c| c.maps.iter().map(|m| m.count()).sum());
                    if n == 0 {
                        break;
                    }
                }
            }
        }
        if !self.converged() || !self.synced() {
            let st = self.state_line();
            return Err(self.failure(format!("did not converge after healing: {st}")));
        }
        self.final_check();
        if let Some(f) = self.fail.take() {
            return Err(self.failure(f));
        }
        Ok(RunStats { steps: self.step, nemesis: self.nemesis_count.values().sum() })
    }

    /// One-line state summary for traces.
    pub fn state_line(&self) -> String {
        let mut s = String::new();
        if let Some(c) = self.client.as_ref() {
            for (i, l) in c.pool.legs() {
                s += &format!("leg{i}({})={}{} ", l.member_id, l.state.name(), if l.maintenance { "+m" } else { "" });
            }
            s += &format!("op={} ", c.op.is_some());
        } else {
            s += "client down ";
        }
        for (i, x) in self.srvs.iter().enumerate() {
            match x.pool.as_ref() {
                Some(p) => {
                    let mut buf = [0u8; 512];
                    let n = p.maps.render_summary(&mut buf);
                    let sum = String::from_utf8_lossy(&buf[..n]).replace('\n', "; ");
                    s += &format!(
                        "| srv{i}={} sync(run={} inflight={} table={} reqs={} bops={}) {}",
                        p.state.name(),
                        x.sched.running,
                        x.sched.in_flight,
                        p.sync.active(),
                        x.syncs.len(),
                        x.backend.len(),
                        sum
                    );
                }
                None => s += &format!("| srv{i}=down "),
            }
        }
        s
    }

    fn failure(&mut self, what: String) -> Failure {
        let st = self.state_line();
        self.log(format!("state: {st}"));
        Failure { seed: self.seed, step: self.step, what, trace: self.trace.iter().cloned().collect() }
    }
}


// ---------------------------------------------------------------------------------------------
// Scripted scenarios (SPEC §10): deterministic control of the same simulator.

impl Sim {
    /// Baseline B0: `servers` nodes (members 42, 43, ...), pool created and enabled leg by leg,
    /// every node synced, all maps clean; no random IO and no nemesis.
    pub fn scripted(servers: usize, chunks: u64) -> Sim {
        let mut cfg = Config::for_seed(0);
        cfg.servers = servers;
        cfg.chunks = chunks;
        Sim::scripted_cfg(cfg)
    }

    /// Like [`Sim::scripted`] on disks without a volatile write cache.
    pub fn scripted_write_through(servers: usize, chunks: u64) -> Sim {
        let mut cfg = Config::for_seed(0);
        cfg.servers = servers;
        cfg.chunks = chunks;
        cfg.write_through = true;
        Sim::scripted_cfg(cfg)
    }

    /// Like [`Sim::scripted`] with a whole configuration (`servers`, `chunks`, `bugs`,
    /// `write_through` are used).
    pub fn scripted_cfg(mut cfg: Config) -> Sim {
        cfg.full_trace = true;
        let servers = cfg.servers;
        let mut s = Sim::new(0, cfg);
        s.chaos = false;
        s.io_on = false;
        s.settle(2000);
        for i in 0..servers {
            s.sync(i);
        }
        s.settle(12_000);
        // As a file system would: the synced data is flushed, so the write-intent records
        // start empty.
        s.flush();
        s.settle(1000);
        s
    }

    /// One deterministic unit of work; false when idle.
    fn work_one(&mut self) -> bool {
        if let Some(p) = self.local.pop_front() {
            self.deliver_local(p);
            return true;
        }
        if let Some(k) = self.links.iter().find(|(_, l)| !l.q.is_empty()).map(|(k, _)| *k) {
            self.deliver_packet(k, 0);
            return true;
        }
        if let Some(i) = (0..self.srvs.len()).find(|i| !self.srvs[*i].backend.is_empty()) {
            self.complete_bop(i, 0);
            return true;
        }
        false
    }

    fn after_work(&mut self) {
        self.step += 1;
        self.refresh_links();
        self.client_pump();
        self.servers_pump();
        self.check_invariants();
    }

    /// Process everything pending, letting at least `ms` of idle time pass (timers fire).
    pub fn settle(&mut self, ms: u64) {
        let mut idle = 0;
        let mut guard = 0;
        while idle < ms && guard < 200_000 {
            guard += 1;
            if !self.work_one() {
                self.now += 100;
                idle += 100;
                self.timers();
            }
            self.after_work();
        }
    }

    /// Process pending work without letting time pass (nothing but in-flight messages).
    pub fn drain(&mut self) {
        let mut guard = 0;
        while self.work_one() && guard < 200_000 {
            guard += 1;
            self.after_work();
        }
        self.after_work();
    }

    /// Issue a write of `chunk` without waiting; returns its value.
    pub fn write_start(&mut self, chunk: u64) -> Option<u64> {
        let v = self.issue(chunk, true);
        self.after_work();
        v
    }

    /// Issue a pure FLUSH without waiting for it.
    pub fn flush_start(&mut self) {
        self.issue_flags(0, true, IO_WRITE | IO_FLUSH);
        self.after_work();
    }

    /// Run units of work (advancing time when idle) until a new trace line contains `pat`;
    /// whether it appeared within `max` units.
    pub fn step_until(&mut self, pat: &str, max: usize) -> bool {
        for _ in 0..max {
            let before = self.trace.len();
            if !self.work_one() {
                self.now += 100;
                self.timers();
            }
            self.after_work();
            if self.trace.iter().skip(before).any(|l| l.contains(pat)) {
                return true;
            }
        }
        false
    }

    /// Write `chunk` and wait; returns the value if acknowledged.
    pub fn write(&mut self, chunk: u64) -> Option<u64> {
        let v = self.write_start(chunk)?;
        self.drain();
        let acked = self.model.writes[chunk as usize].iter().any(|w| w.0 == v && w.1 == WSt::Acked);
        acked.then_some(v)
    }

    /// Deliver the packets queued from the client to storage node `srv` and complete that
    /// node's backend IO, leaving every other message in flight.
    pub fn deliver_to(&mut self, srv: usize) {
        let k = (CLIENT, srv + 1);
        let mut guard = 0;
        loop {
            guard += 1;
            let idx = self.links.get(&k).and_then(|l| l.q.iter().position(|p| p.to == srv + 1));
            match idx {
                Some(i) if guard < 10_000 => self.deliver_packet(k, i),
                _ => break,
            }
            self.after_work();
        }
        while !self.srvs[srv].backend.is_empty() {
            self.complete_bop(srv, 0);
            self.after_work();
        }
    }

    /// A pool like [`Sim::scripted`] with deliberate bugs (teeth proof).
    pub fn scripted_with_bugs(servers: usize, chunks: u64, bugs: Bugs) -> Sim {
        let mut cfg = Config::for_seed(0);
        cfg.servers = servers;
        cfg.chunks = chunks;
        cfg.bugs = bugs;
        Sim::scripted_cfg(cfg)
    }

    /// Hold back the next "empty" MAP_CHECK answer storage node `srv` sends to the client
    /// (RTRS spreads a session over several connections: an answer can be overtaken by
    /// everything sent after it).
    pub fn hold_map_check_answer(&mut self, srv: usize) {
        self.hold_check_from = Some((srv, u64::MAX));
    }

    /// Whether a held-back answer is waiting.
    pub fn holding(&self) -> bool {
        self.held.iter().any(|h| h.0 == u64::MAX)
    }

    /// Deliver the messages held by [`Sim::hold_map_check_answer`] now; false if none.
    pub fn release_held(&mut self) -> bool {
        let mut any = false;
        while let Some(i) = self.held.iter().position(|h| h.0 == u64::MAX) {
            let (_, k, p) = self.held.remove(i);
            if let Some(l) = self.links.get_mut(&k).filter(|l| l.up) {
                l.q.push_front(p);
                any = true;
            }
        }
        self.log(format!("SCRIPT release held answers: {any}"));
        self.drain();
        any
    }

    /// Chunks the client map holds for `member`.
    pub fn client_dirty(&self, member: u32) -> Vec<u64> {
        self.client.as_ref().and_then(|c| c.maps.get(member)).map_or(Vec::new(), |m| m.iter().collect())
    }

    /// Take the client–`srv` link down or up.
    pub fn link(&mut self, srv: usize, up: bool) {
        if let Some(l) = self.links.get_mut(&(CLIENT, srv + 1)) {
            l.admin_up = up;
        }
        self.log(format!("SCRIPT link P-{srv} {}", if up { "up" } else { "down" }));
        self.after_work();
    }

    /// Power-cycle storage node `i` off.
    pub fn crash_srv(&mut self, i: usize) {
        self.crash_server(i);
        self.after_work();
    }

    /// Crash storage node `i`'s kernel: its (powered) disk writes its cache back.
    pub fn kernel_crash_srv(&mut self, i: usize) {
        self.crash_server_kind(i, false);
        self.after_work();
    }

    /// Cut storage node `i`'s power: its disk keeps a random in-order prefix of each chunk's
    /// unflushed writes (`all` = drop every unflushed write).
    pub fn power_loss_srv(&mut self, i: usize, all: bool) {
        self.srvs[i].disk.drop_all = all;
        self.crash_server_kind(i, true);
        self.srvs[i].disk.drop_all = false;
        self.after_work();
    }

    /// A pure FLUSH from the client to every NORMAL leg, waited for.
    pub fn flush(&mut self) -> bool {
        let before = self.model.promised_upto;
        self.issue_flags(0, true, IO_WRITE | IO_FLUSH);
        self.drain();
        self.model.promised_upto > before
    }

    /// Whether storage node `i`'s durable write-intent record names `chunk`.
    pub fn intent(&self, i: usize, chunk: u64) -> bool {
        self.srvs[i].suspects_any(chunk)
    }

    /// Bring storage node `i` back (`join_pool`, `add_store mode=add`).
    pub fn restart_srv(&mut self, i: usize) {
        self.restart_server(i);
        self.after_work();
    }

    /// Crash the compute client.
    pub fn crash_p(&mut self) {
        self.crash_client();
        self.after_work();
    }

    /// Restart the client and assemble the legs in `order` (server indices).
    pub fn reassemble(&mut self, order: &[usize]) {
        self.restart_client();
        if let Some(c) = self.client.as_mut() {
            c.to_add = order.iter().copied().collect();
        }
        self.after_work();
    }

    /// Make node `i`'s disk fail IO, or heal it (the store is usable again).
    pub fn flakey(&mut self, i: usize, on: bool) {
        self.srvs[i].disk.flakey = on;
        if !on {
            if let Some(p) = self.srvs[i].pool.as_mut() {
                p.io_allowed = p.store;
            }
        }
        self.after_work();
    }

    /// `echo 0|1 > sessions/<member>/enable` (maintenance on/off).
    pub fn maintenance(&mut self, member: u32, on: bool) {
        self.drain();
        let Some(c) = self.client.as_mut() else { return };
        let Some(s) = c.pool.slot_of(member) else { return };
        if on {
            c.pool.frozen = true;
            let _ = c.pool.set_maintenance(s);
        }
        c.op = Some(Op::Batch { items: VecDeque::from([(s, BCmd::Maint(on))]), cur: None });
        self.batch_next();
        self.drain();
    }

    /// `echo start > sync` on node `i` and wait until the thread stops.
    pub fn sync(&mut self, i: usize) {
        self.sync_start(i);
        self.settle(500);
    }

    /// `echo 1 > pool_enable`.
    pub fn pool_enable(&mut self) {
        if let Some(c) = self.client.as_mut() {
            c.want_te = true;
        }
        self.after_work();
    }

    /// Leg state and maintenance flag of `member` on the client.
    pub fn leg_state(&self, member: u32) -> Option<(LegState, bool)> {
        let c = self.client.as_ref()?;
        let s = c.pool.slot_of(member)?;
        c.pool.leg(s).map(|l| (l.state, l.maintenance))
    }

    /// Server pool state and maintenance flag of node `i`.
    pub fn srv_state(&self, i: usize) -> Option<(SrvState, bool)> {
        self.srvs.get(i)?.pool.as_ref().map(|p| (p.state, p.maintenance))
    }

    /// Dirty chunks node `i` holds for `member`.
    pub fn dirty(&self, i: usize, member: u32) -> Vec<u64> {
        self.srvs[i].pool.as_ref().and_then(|p| p.maps.get(member)).map_or(Vec::new(), |m| m.iter().collect())
    }

    /// `map_summary` of node `i`.
    pub fn summary(&self, i: usize) -> String {
        let Some(p) = self.srvs[i].pool.as_ref() else { return String::new() };
        let mut buf = [0u8; 4096];
        let n = p.maps.render_summary(&mut buf);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    /// Content of `chunk` on node `i`'s disk.
    pub fn disk(&self, i: usize, chunk: u64) -> u64 {
        self.srvs[i].disk.read(chunk)
    }

    /// First invariant violation, if any.
    pub fn failed(&self) -> Option<&str> {
        self.fail.as_deref()
    }

    /// The trace so far.
    pub fn trace_text(&self) -> String {
        self.trace.iter().cloned().collect::<Vec<_>>().join("\n")
    }
}

thread_local! {
    static PENDING_INFO: std::cell::RefCell<VecDeque<(usize, BCmd)>> = const { std::cell::RefCell::new(VecDeque::new()) };
}

fn cmd_brief(c: &Cmd<'_>) -> String {
    match c {
        Cmd::SendMapBuf(p) => format!("SendMapBuf(m{} p{})", p.member, p.page),
        Cmd::SendMdBuf(_) => "SendMdBuf".into(),
        other => format!("{other:?}"),
    }
}

/// Result of a passing run.
#[derive(Clone, Copy, Debug)]
pub struct RunStats {
    /// Scheduler steps.
    pub steps: usize,
    /// Nemesis actions.
    pub nemesis: u64,
}

/// Run one seed with its default configuration.
pub fn run_seed(seed: u64) -> Result<RunStats, Failure> {
    Sim::new(seed, Config::for_seed(seed)).run()
}

/// Run one seed with `cfg`.
pub fn run_seed_with(seed: u64, cfg: Config) -> Result<RunStats, Failure> {
    Sim::new(seed, cfg).run()
}
