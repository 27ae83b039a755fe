// SPDX-License-Identifier: GPL-2.0-or-later
//! The seed batch of `make check`: 2,000 simulator seeds (override with RMR_SIM_SEEDS and
//! RMR_SIM_START). Runs on all cores; a failure prints the seed and its trace.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

#[test]
fn seed_batch() {
    let n: u64 = std::env::var("RMR_SIM_SEEDS").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let start: u64 = std::env::var("RMR_SIM_START").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    let next = AtomicU64::new(start);
    let failures = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let t0 = std::time::Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= start + n {
                    break;
                }
                if let Err(f) = rmr_sim::run_seed(seed) {
                    failures.lock().expect("lock").push(f.to_string());
                }
            });
        }
    });
    let f = failures.into_inner().expect("lock");
    eprintln!("{n} seeds in {:.1} s, {} failed", t0.elapsed().as_secs_f64(), f.len());
    assert!(f.is_empty(), "{}", f.join("\n\n"));
}

/// Seeds that once found a bug, replayed on every run.
#[test]
fn regression_seeds() {
    // 29052: a storage node restarted while its leg was in maintenance rejoined without the
    // flag, and the admin's enable=1 admitted it with stale maps.
    for seed in [29052u64] {
        if let Err(f) = rmr_sim::run_seed(seed) {
            panic!("regression seed {seed} failed: {f:?}");
        }
    }
}
