// SPDX-License-Identifier: GPL-2.0-or-later
//! SPEC §10 acceptance scenarios 1-9 as scripted simulator runs (fixed fault schedules).
//! Node index 0 = A (member 42), 1 = B (43), 2 = C (44); 800 chunks as in `0/800 dirty`.

use rmr_core::client::{Bugs, LegState};
use rmr_core::server::SrvState;
use rmr_sim::Sim;

const A: usize = 0;
const B: usize = 1;
const C: usize = 2;
const CHUNKS: u64 = 800;
/// A storage node notices a lost client session this long after the cut (its heartbeat), and
/// only then takes the client's reconnect.
const LOSS: u64 = rmr_sim::SESSION_LOSS_MS;

fn ok(s: &Sim) {
    if let Some(v) = s.failed() {
        panic!("invariant violated: {v}\n{}", s.trace_text());
    }
}

fn line(s: &Sim, node: usize, member: u32) -> String {
    s.summary(node).lines().find(|l| l.starts_with(&format!("member {member}:"))).unwrap_or("").to_string()
}

fn all_normal(s: &Sim, members: &[u32]) -> bool {
    members.iter().all(|m| s.leg_state(*m) == Some((LegState::Normal, false)))
}

/// Run the sync threads of `nodes` to the end and check the invariants.
fn resync(s: &mut Sim, nodes: &[usize]) {
    for n in nodes {
        s.sync(*n);
    }
    s.settle(12_000);
    ok(s);
}

#[test]
fn b0_baseline_is_clean() {
    let s = Sim::scripted(2, CHUNKS);
    ok(&s);
    assert!(all_normal(&s, &[42, 43]));
    assert_eq!(s.summary(A), "member 43: [] 0/800 dirty\nmember 42: [] 0/800 dirty\n");
    assert_eq!(s.summary(B), s.summary(A));
}

#[test]
fn s1_link_failure() {
    let mut s = Sim::scripted(2, CHUNKS);
    s.link(B, false);
    for c in [3, 5, 7] {
        assert!(s.write(c).is_some(), "writes pass with one leg");
    }
    assert_eq!(s.leg_state(43).map(|x| x.0), Some(LegState::Failed));
    // B notices the lost session by its heartbeat, SESSION_LOSS_MS after the cut.
    assert_eq!(s.srv_state(B).map(|x| x.0), Some(SrvState::Normal), "B has not noticed yet");
    s.settle(LOSS + 1000);
    assert_eq!(s.srv_state(B).map(|x| x.0), Some(SrvState::NoIo));
    assert_eq!(s.dirty(A, 43), vec![3, 5, 7]);
    s.link(B, true);
    s.settle(3000);
    ok(&s);
    assert_eq!(s.leg_state(43), Some((LegState::Normal, false)), "reconnecting -> normal unaided");
    assert_eq!(s.srv_state(B).map(|x| x.0), Some(SrvState::Normal));
    assert_eq!(line(&s, B, 43), line(&s, A, 43));
    assert_eq!(line(&s, A, 43), "member 43: [3 5 7] 3/800 dirty");
    s.sync(B);
    s.settle(1000);
    ok(&s);
    assert_eq!(line(&s, A, 43), "member 43: [] 0/800 dirty");
    assert_eq!(line(&s, B, 43), "member 43: [] 0/800 dirty");
    for c in [3, 5, 7] {
        assert_eq!(s.disk(A, c), s.disk(B, c));
    }
}

#[test]
fn s2_backend_io_error() {
    let mut s = Sim::scripted(2, CHUNKS);
    s.flakey(B, true);
    assert!(s.write(10).is_some());
    assert!(s.write(11).is_some());
    assert_eq!(s.leg_state(43).map(|x| x.0), Some(LegState::Failed));
    assert_eq!(s.srv_state(B).map(|x| x.0), Some(SrvState::NoIo));
    s.flakey(B, false);
    s.settle(3000);
    ok(&s);
    assert_eq!(s.leg_state(43), Some((LegState::Normal, false)), "store check -> map update");
    assert_eq!(s.srv_state(B).map(|x| x.0), Some(SrvState::Normal));
    assert!(s.dirty(B, 43).contains(&10) && s.dirty(B, 43).contains(&11));
}

#[test]
fn s3_storage_crash() {
    let mut s = Sim::scripted(2, CHUNKS);
    s.crash_srv(B);
    s.drain();
    assert_eq!(s.leg_state(43).map(|x| x.0), Some(LegState::Failed));
    for c in [20, 21] {
        assert!(s.write(c).is_some());
    }
    // Rebuild B, keep the client link down to observe REGISTERED.
    s.link(B, false);
    s.restart_srv(B);
    assert_eq!(s.srv_state(B).map(|x| x.0), Some(SrvState::Registered));
    s.link(B, true);
    s.settle(3000);
    ok(&s);
    assert_eq!(s.srv_state(B).map(|x| x.0), Some(SrvState::Normal));
    assert_eq!(s.leg_state(43), Some((LegState::Normal, false)));
    assert_eq!(s.dirty(B, 43), vec![20, 21], "outage chunks listed for 43");
}

#[test]
fn s4_client_crash() {
    let mut s = Sim::scripted(2, CHUNKS);
    for c in 0..6 {
        s.write(c);
    }
    // Leave writes in flight, then crash the client.
    s.write_start(6);
    s.write_start(7);
    s.deliver_to(A);
    s.crash_p();
    s.drain();
    s.settle(LOSS + 1000);
    assert_eq!(s.srv_state(A).map(|x| x.0), Some(SrvState::NoIo));
    assert_eq!(s.srv_state(B).map(|x| x.0), Some(SrvState::NoIo));
    s.reassemble(&[A, B]);
    s.settle(LOSS + 3000);
    ok(&s);
    assert!(all_normal(&s, &[42, 43]), "both normal without pool_enable (last-IO update)");
    resync(&mut s, &[A, B]);
    for c in 0..CHUNKS {
        assert_eq!(s.disk(A, c), s.disk(B, c), "chunk {c}");
    }
}

#[test]
fn s5_storage_before_client() {
    let mut s = Sim::scripted(3, CHUNKS);
    s.crash_srv(A);
    s.drain();
    let written: Vec<u64> = (30..35).filter(|c| s.write(*c).is_some()).collect();
    assert_eq!(written.len(), 5);
    s.crash_p();
    s.drain();
    s.reassemble(&[B, C, A]);
    s.settle(LOSS + 5000);
    ok(&s);
    assert_eq!(s.leg_state(43).map(|x| x.0), Some(LegState::Reconnecting));
    assert_eq!(s.leg_state(44).map(|x| x.0), Some(LegState::Reconnecting));
    s.restart_srv(A);
    s.settle(5000);
    ok(&s);
    assert!(all_normal(&s, &[42, 43, 44]));
    for c in written {
        assert!(s.dirty(B, 42).contains(&c), "chunk {c} dirty for A");
    }
}

/// Scenario 6 as SPEC words it, on disks without a volatile write cache (write-through or
/// power-loss protected): A's completed write is durable, so A's `last_io` wins.
#[test]
fn s6_client_before_storage_persisted_last_io() {
    let mut s = Sim::scripted_write_through(3, CHUNKS);
    let x = 77;
    s.write_start(x);
    s.deliver_to(A); // the write reaches only A
    s.crash_p();
    s.drain();
    s.crash_srv(A);
    s.restart_srv(A); // disk intact: last_io persisted
    s.reassemble(&[A, B, C]);
    s.settle(LOSS + 5000);
    ok(&s);
    assert!(all_normal(&s, &[42, 43, 44]));
    for n in [A, B, C] {
        assert!(s.dirty(n, 43).contains(&x), "x dirty for B on node {n}");
        assert!(s.dirty(n, 44).contains(&x), "x dirty for C on node {n}");
        assert!(!s.dirty(n, 42).contains(&x));
    }
}

/// Scenario 6 on disks with a volatile write cache [improvement]: after its crash A cannot
/// vouch for its unflushed write of x (a power loss may have dropped it, and then its
/// `last_io` entry would spread a stale copy), so x becomes dirty for A instead. The write was
/// never acknowledged, so either copy is right; what matters is that the legs converge.
#[test]
fn s6_volatile_cache_suspect_wins_over_last_io() {
    let mut s = Sim::scripted(3, CHUNKS);
    let x = 77;
    s.write_start(x);
    s.deliver_to(A);
    s.crash_p();
    s.drain();
    assert!(s.intent(A, x), "A recorded the unflushed write");
    s.crash_srv(A);
    s.restart_srv(A);
    s.reassemble(&[A, B, C]);
    s.settle(LOSS + 5000);
    ok(&s);
    assert!(all_normal(&s, &[42, 43, 44]));
    for n in [A, B, C] {
        assert!(s.dirty(n, 42).contains(&x), "x dirty for A on node {n}");
        assert!(!s.dirty(n, 43).contains(&x));
        assert!(!s.dirty(n, 44).contains(&x));
    }
    resync(&mut s, &[A]);
    assert_eq!(s.disk(A, x), s.disk(B, x));
    assert_eq!(s.disk(A, x), s.disk(C, x));
}

/// [improvement] Power loss on B after it acknowledged a write it had not flushed: B comes
/// back with the old data, resolves its write-intent record into its own map, spreads that to
/// A before it serves, and resyncs the chunk from A. A flushed write is not suspect.
#[test]
fn power_loss_lost_write_is_resynced() {
    let mut s = Sim::scripted(2, CHUNKS);
    let flushed = s.write(6).expect("acked");
    assert!(s.flush());
    assert!(!s.intent(B, 6), "the flush cleared the record");
    let v = s.write(5).expect("acked");
    assert!(s.intent(B, 5));
    s.power_loss_srv(B, true);
    s.drain();
    ok(&s);
    assert_ne!(s.disk(B, 5), v, "B lost the unflushed write");
    assert_eq!(s.disk(B, 6), flushed);
    assert_eq!(s.leg_state(43).map(|x| x.0), Some(LegState::Failed));
    s.restart_srv(B);
    s.settle(5000);
    ok(&s);
    assert!(all_normal(&s, &[42, 43]));
    for n in [A, B] {
        assert_eq!(s.dirty(n, 43), vec![5], "only the lost chunk is dirty for B on node {n}");
    }
    resync(&mut s, &[B]);
    assert_eq!(s.disk(B, 5), v);
    assert_eq!(s.summary(A), "member 43: [] 0/800 dirty\nmember 42: [] 0/800 dirty\n");
}

/// [improvement] The suspect tie-break: A loses power with two unflushed writes of chunk 9,
/// the first also stored (and made durable) by B, the second written while B was down. Every
/// other member (B) is dirty at 9, truly so for the second write, which nobody holds any more.
/// B witnessed the first write, so its copy is the newest that survives: A hands the chunk to
/// B instead of keeping its older copy, and syncs it back from B.
#[test]
fn power_loss_hands_chunk_to_witness() {
    let mut s = Sim::scripted(2, CHUNKS);
    let v1 = s.write(9).expect("acked");
    s.kernel_crash_srv(B);
    s.drain();
    assert_eq!(s.disk(B, 9), v1, "B's cache was written back");
    let v2 = s.write(9).expect("acked on A alone");
    assert!(s.dirty(A, 43).contains(&9));
    s.power_loss_srv(A, true);
    s.drain();
    ok(&s);
    assert_ne!(s.disk(A, 9), v1, "A lost both writes");
    assert_ne!(s.disk(A, 9), v2);
    s.restart_srv(A);
    s.restart_srv(B);
    s.settle(5000);
    ok(&s);
    assert!(all_normal(&s, &[42, 43]), "{}", s.trace_text());
    for n in [A, B] {
        assert!(s.dirty(n, 42).contains(&9), "A gave chunk 9 up (node {n})");
        assert!(!s.dirty(n, 43).contains(&9), "B holds its newest surviving copy (node {n})");
    }
    resync(&mut s, &[A]);
    assert_eq!(s.disk(A, 9), v1);
    assert_eq!(s.summary(A), "member 43: [] 0/800 dirty\nmember 42: [] 0/800 dirty\n");
}

/// [improvement] Found in review: v1 reaches A and B (B witnesses it on A), v2 reaches A
/// alone, a FLUSH covering v2 is issued and v3 written before it completes. The flushed v2 is
/// newer than B's v1, so when A loses v3 in a power loss it must keep v2, not hand the chunk
/// to B.
#[test]
fn flush_in_flight_retires_older_witnesses() {
    let mut s = Sim::scripted(2, CHUNKS);
    s.write(9).expect("acked");
    s.link(B, false);
    s.settle(300);
    let v2 = s.write(9).expect("acked on A alone");
    s.flush_start();
    s.write_start(9).expect("issued while the flush is in flight");
    s.drain();
    assert!(s.intent(A, 9), "v3 is not covered by the flush");
    s.power_loss_srv(A, true);
    s.drain();
    assert_eq!(s.disk(A, 9), v2, "the flush made v2 durable");
    s.restart_srv(A);
    s.link(B, true);
    s.settle(5000);
    resync(&mut s, &[A, B]);
    assert!(all_normal(&s, &[42, 43]), "{}", s.trace_text());
    assert_eq!((s.disk(A, 9), s.disk(B, 9)), (v2, v2), "{}", s.trace_text());
}

/// [improvement] Found in review: A hands chunk 9 to its witness B, but the update fails at
/// the spread-back (B's link is cut), so the hand-over never leaves A. On the next attempt B
/// looks dirty again with no known loss: A must hand over again, not take its stale copy back.
#[test]
fn failed_spread_back_does_not_undo_the_hand_over() {
    let mut s = Sim::scripted(2, CHUNKS);
    let v1 = s.write(9).expect("acked");
    s.link(B, false);
    s.settle(300);
    s.write(9).expect("acked on A alone");
    s.link(B, true);
    s.settle(LOSS + 3000);
    assert!(s.dirty(B, 43).contains(&9), "B installed A's maps");
    s.power_loss_srv(A, true);
    s.drain();
    s.settle(2000);
    s.restart_srv(A);
    assert!(s.step_until("srv 0 after SuspectToMap", 100_000), "{}", s.trace_text());
    assert!(s.step_until("ctl -> slot 1 \"MapReady\"", 100_000), "{}", s.trace_text());
    s.link(B, false);
    s.settle(1000);
    s.link(B, true);
    s.settle(8000);
    resync(&mut s, &[A, B]);
    assert!(all_normal(&s, &[42, 43]), "{}", s.trace_text());
    assert_eq!((s.disk(A, 9), s.disk(B, 9)), (v1, v1), "{}", s.trace_text());
}

/// [improvement] Both nodes lose power with the same write unflushed (block semantics let it
/// vanish): the first node to resolve marks itself dirty since the other looked clean, the
/// second finds every other member dirty and keeps its copy; the legs converge.
#[test]
fn power_loss_everywhere_converges() {
    let mut s = Sim::scripted(2, CHUNKS);
    s.write(7).expect("acked");
    s.power_loss_srv(A, true);
    s.drain();
    s.power_loss_srv(B, false);
    s.drain();
    ok(&s);
    s.restart_srv(A);
    s.restart_srv(B);
    s.settle(5000);
    ok(&s);
    assert!(all_normal(&s, &[42, 43]), "{}", s.trace_text());
    let dirty: Vec<u32> = [42, 43].into_iter().filter(|m| s.dirty(A, *m).contains(&7)).collect();
    assert_eq!(dirty.len(), 1, "chunk 7 dirty for exactly one member");
    resync(&mut s, &[A, B]);
    assert_eq!(s.disk(A, 7), s.disk(B, 7));
}

fn s7(order: &[usize]) {
    let mut s = Sim::scripted(2, CHUNKS);
    assert!(s.write(2).is_some()); // on A and B
    s.link(A, false);
    assert!(s.write(2).is_some()); // B marks chunk 2 for A
    assert_eq!(s.dirty(B, 42), vec![2]);
    s.crash_p();
    s.drain();
    s.link(A, true);
    s.reassemble(order);
    s.settle(LOSS + 5000);
    ok(&s);
    assert!(all_normal(&s, &[42, 43]));
    for n in [A, B] {
        assert!(line(&s, n, 42).starts_with("member 42: [2]"), "{}", s.summary(n));
        assert_eq!(line(&s, n, 43), "member 43: [] 0/800 dirty", "{}", s.summary(n));
    }
}

#[test]
fn s7_map_ver_selection_a_first() {
    s7(&[A, B]);
}

#[test]
fn s7_map_ver_selection_b_first() {
    s7(&[B, A]);
}

#[test]
fn s8_last_io_ordering() {
    let mut s = Sim::scripted(2, CHUNKS);
    assert!(s.write(9).is_some()); // 'a' on both
    s.write_start(9); // 'b'
    s.deliver_to(A); // B misses 'b'
    s.crash_p();
    s.drain();
    s.reassemble(&[A, B]);
    s.settle(LOSS + 5000);
    ok(&s);
    assert!(all_normal(&s, &[42, 43]));
    let d42 = s.dirty(A, 42).contains(&9);
    let d43 = s.dirty(A, 43).contains(&9);
    assert!(d42 ^ d43, "chunk 9 dirty for exactly one member: {}", s.summary(A));
    s.sync(A);
    s.sync(B);
    s.settle(1000);
    ok(&s);
    assert_eq!(s.disk(A, 9), s.disk(B, 9));
}

/// Scenario 8 with the nodes starting their syncs by themselves, as the kernel does (SPEC §11
/// [improvement]): after the reassembly nobody starts a sync, yet the node that missed 'b'
/// gets it and every map ends clean.
#[test]
fn s8_resyncs_by_itself() {
    let mut cfg = rmr_sim::Config::for_seed(0);
    cfg.servers = 2;
    cfg.chunks = CHUNKS;
    assert!(cfg.auto_sync);
    let mut s = Sim::scripted_cfg(cfg);
    assert!(s.write(9).is_some()); // 'a' on both
    s.write_start(9); // 'b'
    s.deliver_to(A); // B misses 'b'
    s.crash_p();
    s.drain();
    s.reassemble(&[A, B]);
    s.settle(30_000);
    ok(&s);
    assert!(all_normal(&s, &[42, 43]));
    for n in [A, B] {
        for m in [42, 43] {
            assert_eq!(line(&s, n, m), format!("member {m}: [] 0/800 dirty"), "{}", s.summary(n));
        }
    }
    assert_eq!(s.disk(A, 9), s.disk(B, 9));
}

#[test]
fn s9_maintenance() {
    let mut s = Sim::scripted(2, CHUNKS);
    s.maintenance(43, true);
    assert_eq!(s.leg_state(43), Some((LegState::Reconnecting, true)));
    assert_eq!(s.srv_state(B), Some((SrvState::NoIo, true)));
    for c in [40, 41, 42] {
        assert!(s.write(c).is_some(), "writes continue");
    }
    assert_eq!(s.dirty(A, 43), vec![40, 41, 42]);
    s.maintenance(43, false);
    s.settle(3000);
    ok(&s);
    assert_eq!(s.leg_state(43), Some((LegState::Normal, false)));
    assert_eq!(s.srv_state(B), Some((SrvState::Normal, false)));
    assert_eq!(s.dirty(B, 43), vec![40, 41, 42]);
}

/// Teeth for the client map clean delay (SPEC §6.8): a stale "empty" MAP_CHECK answer must
/// not clear a client map bit set after it was sent. B is clean and answers "empty", but the
/// answer is held back (RTRS spreads a session over several connections); meanwhile a write
/// fails on B's disk (the link stays up), B goes FAILED, recovers by store check and map
/// update, and is NORMAL again, missing that write. Then the old answer arrives. The correct
/// client needs two answers and a 5 s old map; `Bugs::no_clean_delay` clears on the first
/// and loses the only client-side record that B misses the chunk.
fn stale_map_check_answer(bugs: Bugs) -> Sim {
    let mut s = Sim::scripted_with_bugs(2, 16, bugs);
    // The client map lists chunk 3 for B, while B's own map is clean after a sync.
    s.link(B, false);
    assert!(s.write(3).is_some());
    s.link(B, true);
    s.settle(LOSS + 3000);
    assert_eq!(s.leg_state(43), Some((LegState::Normal, false)));
    assert_eq!(s.client_dirty(43), vec![3]);
    s.hold_map_check_answer(B);
    s.sync(B);
    s.settle(1500);
    assert!(s.holding(), "B answered \"empty\"");
    assert_eq!(s.client_dirty(43), vec![3], "the held answer has not cleared anything yet");
    // A write misses B through a disk error; B comes back NORMAL without it.
    s.flakey(B, true);
    assert!(s.write(5).is_some());
    assert_eq!(s.leg_state(43).map(|x| x.0), Some(LegState::Failed));
    s.flakey(B, false);
    s.settle(2500);
    assert_eq!(s.leg_state(43), Some((LegState::Normal, false)));
    assert!(s.dirty(B, 43).contains(&5));
    assert!(s.client_dirty(43).contains(&5));
    // The stale answer arrives.
    assert!(s.release_held());
    s
}

#[test]
fn clean_delay_stale_map_check_answer() {
    let mut s = stale_map_check_answer(Bugs::default());
    ok(&s);
    assert!(s.client_dirty(43).contains(&5), "a stale answer does not clear the client map");
    resync(&mut s, &[B]);
    assert_eq!(s.client_dirty(43), Vec::<u64>::new(), "cleared after B synced");
    assert_eq!(s.disk(A, 5), s.disk(B, 5));
}

#[test]
fn clean_delay_teeth() {
    let bugs = Bugs { no_clean_delay: true, ..Bugs::default() };
    let s = stale_map_check_answer(bugs);
    let v = s.failed().expect("no_clean_delay must be caught");
    assert!(v.contains("client map of member 43 lacks chunk 5"), "{v}");
}
