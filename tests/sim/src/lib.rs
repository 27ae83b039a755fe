// SPDX-License-Identifier: GPL-2.0-or-later
//! Deterministic fault-injecting simulator for rmr-core (Documentation/simulator.md).
//!
//! One compute client and 2-4 storage nodes built from the real core state machines, a
//! simulated network (per-link FIFO queues, arbitrary interleaving across links, link down/up,
//! partitions), simulated disks (in-flight backend writes vanish on a crash; completed writes
//! sit in a volatile write cache until a FLUSH or FUA, a power loss drops part of it; metadata
//! is durable) and a seeded scheduler with nemeses. Invariants are checked after
//! every step and at the end. A seed replays exactly.


mod check;
mod client;
mod control;
mod nemesis;
mod net;
mod script;
mod server;
use check::*;
use client::*;
use control::*;
use net::*;
use server::*;

pub mod store;
pub use server::SESSION_LOSS_MS;

use rmr_core::client::{
    leg_transition_allowed, Bugs, ClientPool, LegState, ReadOutcome, ReadStep, StoreCheck, WriteReq, WriteStep,
};

use rmr_core::consts::{RMR_RECOVER_INTERVAL_MS, RMR_SRV_CHECK_MAPS_INTERVAL_MS};

use rmr_core::control::{Step, TryEnableRun};

use rmr_core::join::{JoinMode, JoinParams, JoinRun, JoinStep};
use rmr_core::rejoin::RejoinRun;
use rmr_core::remove::RemoveRun;

use rmr_core::dirtymap::MapSet;

use rmr_core::errno::Errno;
use rmr_core::error::Error;

use rmr_core::server::{
    AutoSync, IoDecision, RegMode, ServerPool, SessionPools, SrvState, SyncSched, SYNC_NO_SOURCE,
};

use rmr_core::wire::{
    Cmd, CmdRsp, CmdType, IoMsg, IoRsp, MemberList, Msg, PoolMd, PoolName,
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
    /// Teeth hook: client writes are submitted before their marks and `last_io` slot are
    /// persisted (the kernel parks them for the writer's round).
    pub bug_md_lazy_io: bool,
    /// Teeth hook: command replies leave before the bits they report are persisted.
    pub bug_md_lazy_reply: bool,
    /// Teeth hook: the `last_io` record is never written (upstream: memory only).
    pub bug_no_last_io_record: bool,
    /// Teeth hook: write-intent record changes are not waited for (`bug_intent_lazy`).
    pub bug_intent_lazy: bool,
    /// Teeth hook: slots are not scrubbed before they pass to another member.
    pub bug_no_scrub: bool,
    /// Teeth: a MAP_ADD removing a chunk's last witness persists without flushing first.
    pub bug_no_preflush: bool,
    /// Nodes start their sync by themselves (SPEC §11 [improvement], as the kernel does).
    /// Off in the scripted scenarios of tests/scenarios.rs, which inspect the marks a
    /// recovery leaves before any resync and start the syncs themselves.
    pub auto_sync: bool,
    /// The client gives up on a delayed control command (-ETIMEDOUT) while the command
    /// still travels and arrives later, as over RTRS. Off by default, so that the other
    /// seeds keep their traces; the seed batch runs a second set of seeds with it on.
    pub cmd_timeouts: bool,
    /// Teeth hook: the server ignores command sequence numbers (a late command runs).
    pub bug_no_cmd_seq: bool,
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
            bug_md_lazy_io: false,
            bug_md_lazy_reply: false,
            bug_no_last_io_record: false,
            bug_intent_lazy: false,
            bug_no_scrub: false,
            bug_no_preflush: false,
            auto_sync: true,
            cmd_timeouts: false,
            bug_no_cmd_seq: false,
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

struct Client {
    pool: ClientPool,
    maps: Maps,
    ios: Vec<Option<Cio>>,
    op: Option<Op>,
    op_tag: u64,
    op_wait: Option<usize>,
    op_srv: Option<usize>,
    /// The control command in flight (when it owns its data) and whether it is a resend: a
    /// timed-out one the core allows to repeat is sent once more (the kernel's `send`).
    op_cmd: Option<(usize, usize, Cmd<'static>, bool)>,
    next_tick: u64,
    slot_srv: [usize; 4],
    to_add: VecDeque<usize>,
    created: bool,
    /// Servers whose leg the admin disassembled: they come back with `mode=assemble`.
    reassemble: u32,
    want_te: bool,
    prev_states: [Option<(u32, LegState)>; 4],
    /// Map checks in flight outside the control lock (recover_work): tag -> slot.
    checks: BTreeMap<u64, usize>,
    rejoin_wanted: [bool; 4],
}

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
            pool.bug_no_last_io_record = s.cfg.bug_no_last_io_record;
            pool.bug_intent_lazy = s.cfg.bug_intent_lazy;
            pool.bug_no_scrub = s.cfg.bug_no_scrub;
            pool.bug_no_preflush = s.cfg.bug_no_preflush;
            pool.register(RegMode::Create, None).expect("register");
            pool.set_store_caps(!s.cfg.write_through && !s.cfg.bug_no_write_intent, true);
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
                client_sess: SessionPools::default(),
                loss_due: None,
                md_lazy_due: None,
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
    /// Sync runs started by a node itself (SPEC §11 [improvement], `SyncSched::auto_start`).
    pub auto_syncs: u64,
}

/// Run one seed with its default configuration.
pub fn run_seed(seed: u64) -> Result<RunStats, Failure> {
    Sim::new(seed, Config::for_seed(seed)).run()
}

/// Run one seed with `cfg`.
pub fn run_seed_with(seed: u64, cfg: Config) -> Result<RunStats, Failure> {
    Sim::new(seed, cfg).run()
}
