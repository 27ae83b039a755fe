// SPDX-License-Identifier: GPL-2.0-or-later
//! Microbenchmarks: `cargo bench -p rmr-core --bench micro`. Reports ns/op and the map pages
//! allocated during the measurement (the core has no other way to allocate: it is `no_std`
//! without `alloc`); 0 on the IO path once the pages of the touched range exist.

use rmr_core::client::{ClientPool, LegState, WriteStep};
use rmr_core::dirtymap::{DirtyMap, MapSet, MapStorage, NoMem, Page, PAGE_WORDS};
use rmr_core::server::{IoDecision, RegMode, ServerPool};
use rmr_core::wire::{
    Cmd, IoMsg, JoinBody, MemberList, Msg, PoolMd, PoolName, RmrId, SrvMd, IO_WRITE, MAX_MSG_LEN,
    PIECE_BYTES,
};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Pages created through `MapStorage::alloc_page`: the only way the core can obtain memory
/// (it is `no_std` without `alloc`), so this counts every allocation the IO path makes.
static ALLOCS: AtomicU64 = AtomicU64::new(0);

#[derive(Default)]
struct VecStorage(Vec<Option<Box<Page>>>);

impl MapStorage for VecStorage {
    fn page(&self, idx: usize) -> Option<&Page> {
        self.0.get(idx).and_then(|p| p.as_deref())
    }
    fn page_mut(&mut self, idx: usize) -> Option<&mut Page> {
        self.0.get_mut(idx).and_then(|p| p.as_deref_mut())
    }
    fn alloc_page(&mut self, idx: usize) -> Result<&mut Page, NoMem> {
        if self.0.len() <= idx {
            self.0.resize_with(idx + 1, || None);
        }
        let slot = self.0.get_mut(idx).ok_or(NoMem)?;
        Ok(slot.get_or_insert_with(|| {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
            Box::new([0u64; PAGE_WORDS])
        }))
    }
    fn free_page(&mut self, idx: usize) {
        if let Some(p) = self.0.get_mut(idx) {
            *p = None;
        }
    }
}

fn bench<F: FnMut(u64)>(name: &str, iters: u64, mut f: F) {
    for i in 0..iters / 10 {
        f(i);
    }
    let a0 = ALLOCS.load(Ordering::Relaxed);
    let t = Instant::now();
    for i in 0..iters {
        f(i);
    }
    let ns = t.elapsed().as_nanos() as f64 / iters as f64;
    let allocs = ALLOCS.load(Ordering::Relaxed) - a0;
    println!("{name:<44} {ns:>8.1} ns/op   allocations: {allocs}");
}

fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

fn md() -> PoolMd {
    PoolMd {
        name: PoolName::new(b"ionos_pool").unwrap(),
        group_id: 7,
        chunk_size: 131072,
        mapped_size: (64u64 << 40) / 512,
        queue_depth: 512,
        map_ver: 0,
        srv_md: [SrvMd::default(); 4],
    }
}

fn main() {
    // 64 TiB at 128 KiB chunks.
    let total = (64u64 << 40) / (128 << 10);
    let mut m = DirtyMap::new(1, total, VecStorage::default()).unwrap();
    // Pre-touch pages of the benchmark range (the IO path then never allocates).
    let range = 1u64 << 24;
    for c in (0..range).step_by(32768) {
        m.set(c, 0).unwrap();
    }
    let mut x = 88172645463325252u64;
    bench("dirtymap set (random, 16 Mi chunk range)", 20_000_000, |_| {
        x = xorshift(x);
        black_box(m.set(x % range, 1).unwrap());
    });
    bench("dirtymap test (random, 16 Mi chunk range)", 20_000_000, |_| {
        x = xorshift(x);
        black_box(m.test(black_box(x % range)));
    });
    bench("dirtymap clear (random)", 20_000_000, |_| {
        x = xorshift(x);
        black_box(m.clear(x % range));
    });
    let t = Instant::now();
    let n = m.iter().count();
    println!("dirtymap iterate {n} dirty of {range} chunks: {:.2} ms", t.elapsed().as_secs_f64() * 1e3);

    // Client routing: 3 legs NORMAL, 1 FAILED (piggybacked), write plan + 3 replies.
    let mut pool = ClientPool::new(false, total);
    let mut maps: MapSet<VecStorage> = MapSet::new();
    for (i, mem) in [42u32, 43, 44, 45].into_iter().enumerate() {
        let s = pool.add_leg(mem, false).unwrap();
        pool.set_state(s, LegState::Normal).unwrap();
        maps.ensure(mem, total).unwrap();
        if i == 3 {
            pool.set_state(s, LegState::Failed).unwrap();
        }
    }
    for c in (0..range).step_by(32768) {
        maps.get_mut(45).unwrap().set(c, 0).unwrap();
    }
    bench("client write routing: plan + 3 acks", 5_000_000, |i| {
        x = xorshift(x);
        let mut w = pool.plan_write(x % range, &mut maps, i).unwrap();
        for s in 0..3 {
            if let WriteStep::Done(r) = w.on_reply(&mut pool, &mut maps, s, true, i) {
                r.unwrap();
            }
        }
        pool.io_finished();
    });
    bench("client read routing (round robin)", 20_000_000, |_| {
        black_box(pool.plan_read().unwrap());
    });

    // Server IO decision with a piggybacked member.
    let mut srv: Box<ServerPool<VecStorage>> = Box::new(ServerPool::new(42, md()).unwrap());
    srv.register(RegMode::Create, None).unwrap();
    let mut pb = [0u8; PIECE_BYTES];
    let j = JoinBody { chunk_size: 131072, queue_depth: 512, create: true, sync: false, members: MemberList::new() };
    srv.handle_cmd(&Cmd::JoinPool(j), false, 0, &mut pb);
    srv.handle_cmd(&Cmd::EnablePool { enable: true }, false, 0, &mut pb);
    srv.maps.ensure(45, total).unwrap();
    for c in (0..range).step_by(32768) {
        srv.maps.get_mut(45).unwrap().set(c, 0).unwrap();
    }
    let mut pig = MemberList::new();
    pig.push(45).unwrap();
    bench("server IO decision (write, 1 piggyback)", 10_000_000, |i| {
        x = xorshift(x);
        let io = IoMsg { id: RmrId::chunk(x % range), mem_id: (i % 512) as u16, flags: IO_WRITE, offset: 0, len: 131072, map_ver: 0, members: pig };
        let d = srv.on_io(&io, 0);
        debug_assert_eq!(d, IoDecision::Submit);
        black_box(d);
        black_box(srv.on_io_done(&io, true));
    });

    // Wire.
    let io = IoMsg { id: RmrId::chunk(12345), mem_id: 7, flags: IO_WRITE, offset: 0, len: 131072, map_ver: 3, members: pig };
    let mut buf = [0u8; MAX_MSG_LEN];
    bench("encode IO message", 20_000_000, |_| {
        black_box(Msg::Io(black_box(io)).encode(7, &mut buf).unwrap());
    });
    let n = Msg::Io(io).encode(7, &mut buf).unwrap();
    let enc = buf[..n].to_vec();
    bench("decode+validate IO message", 20_000_000, |_| {
        black_box(Msg::decode(black_box(&enc)).unwrap());
    });
    let cmd = Cmd::MapAdd { chunk: 99, member_id: 43, map_ver: 2, recovery: false };
    bench("encode MAP_ADD command", 20_000_000, |_| {
        black_box(Msg::Cmd(0, black_box(cmd)).encode(7, &mut buf).unwrap());
    });
    let n = Msg::Cmd(0, cmd).encode(7, &mut buf).unwrap();
    let enc = buf[..n].to_vec();
    bench("decode+validate MAP_ADD command", 20_000_000, |_| {
        black_box(Msg::decode(black_box(&enc)).unwrap());
    });
    let page = [0x55u8; PIECE_BYTES];
    let piece = Cmd::SendMapBuf(rmr_core::wire::Piece { member: 43, page: 9, data: &page });
    let n = Msg::Cmd(1, piece).encode(7, &mut buf).unwrap();
    let enc = buf[..n].to_vec();
    bench("decode SEND_MAP_BUF (4 KiB piece)", 5_000_000, |_| {
        black_box(Msg::decode(black_box(&enc)).unwrap());
    });
}
