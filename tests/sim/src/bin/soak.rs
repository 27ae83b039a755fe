// SPDX-License-Identifier: GPL-2.0-or-later
//! Run simulator seeds: `soak --seeds N [--start S]`, `soak --seed X --trace`,
//! `soak --bug NAME --seeds N` (teeth proof: stop at the first failing seed),
//! `--cmd-timeouts` (the client gives up on delayed commands that still execute; not in the
//! seed batch yet: 5 of seeds 0..20000 fail with it, see Documentation/simulator.md).

use rmr_sim::{Config, Sim};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut seeds = 2000u64;
    let mut start = 0u64;
    let mut one: Option<u64> = None;
    let mut trace = false;
    let mut bug = String::new();
    let mut check_transitions = true;
    let mut power_loss: Option<u64> = None;
    let mut cmd_timeouts = false;
    let mut i = 1;
    while i < args.len() {
        let v = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--seeds" => { seeds = v.parse().expect("--seeds N"); i += 1; }
            "--start" => { start = v.parse().expect("--start S"); i += 1; }
            "--seed" => { one = Some(v.parse().expect("--seed X")); i += 1; }
            "--bug" => { bug = v; i += 1; }
            "--power-loss" => { power_loss = Some(v.parse().expect("--power-loss PERMILLE")); i += 1; }
            "--trace" => trace = true,
            "--no-transition-check" => check_transitions = false,
            "--cmd-timeouts" => cmd_timeouts = true,
            a => { eprintln!("unknown argument {a}"); std::process::exit(2); }
        }
        i += 1;
    }
    let (start, seeds) = match one { Some(s) => (s, 1), None => (start, seeds) };
    let t0 = Instant::now();
    let mut failed = 0u64;
    let mut steps = 0u64;
    for seed in start..start + seeds {
        let mut cfg = Config::for_seed(seed);
        cfg.check_transitions = check_transitions;
        cfg.full_trace = trace;
        cfg.cmd_timeouts = cmd_timeouts;
        if let Some(p) = power_loss {
            cfg.power_loss = p;
        }
        match bug.as_str() {
            "" => {}
            "promote-failed" => cfg.bugs.promote_failed = true,
            "no-piggyback-reconnecting" => cfg.bugs.no_piggyback_reconnecting = true,
            "last-io-no-skip" => cfg.bugs.last_io_no_skip = true,
            "last-io-any-source" => cfg.bugs.last_io_any_source = true,
            "no-clean-delay" => cfg.bugs.no_clean_delay = true,
            "no-write-intent" => cfg.bug_no_write_intent = true,
            "md-lazy-io" => cfg.bug_md_lazy_io = true,
            "md-lazy-reply" => cfg.bug_md_lazy_reply = true,
            "no-last-io-record" => cfg.bug_no_last_io_record = true,
            "intent-lazy" => cfg.bug_intent_lazy = true,
            "no-scrub" => cfg.bug_no_scrub = true,
            "no-preflush" => cfg.bug_no_preflush = true,
            "no-cmd-seq" => cfg.bug_no_cmd_seq = true,
            b => { eprintln!("unknown bug {b}"); std::process::exit(2); }
        }
        let cfg_power = cfg.power_loss;
        let r = std::panic::catch_unwind(|| Sim::new(seed, cfg).run());
        match r {
            Ok(Ok(st)) => steps += st.steps as u64,
            Ok(Err(f)) if !bug.is_empty() && {
                let mut c0 = Config::for_seed(seed);
                c0.check_transitions = check_transitions;
                c0.power_loss = cfg_power;
                Sim::new(seed, c0).run().is_err()
            } => {
                // Fails without the bug too: not a detection of the bug.
                failed += 1;
                println!("seed {seed} fails without the bug as well (skipped): {}", f.what);
            }
            Ok(Err(f)) => {
                failed += 1;
                if trace || one.is_some() || !bug.is_empty() {
                    println!("{f}");
                } else {
                    println!("seed {} FAILED at step {}: {}", f.seed, f.step, f.what);
                }
                if !bug.is_empty() {
                    println!(
                        "bug {bug}: detected at seed {seed} ({} seeds tried) after {:.3} s",
                        seed - start + 1,
                        t0.elapsed().as_secs_f64()
                    );
                    std::process::exit(0);
                }
            }
            Err(_) => {
                failed += 1;
                println!("seed {seed} PANICKED (simulator bug); replay with --seed {seed} --trace");
            }
        }
    }
    let dt = t0.elapsed().as_secs_f64();
    println!(
        "{} seeds from {start}: {} passed, {failed} failed, {:.1} s, {:.0} seeds/s, {steps} steps",
        seeds,
        seeds - failed,
        dt,
        seeds as f64 / dt
    );
    if !bug.is_empty() {
        println!("bug {bug}: NOT detected in {seeds} seeds");
        std::process::exit(1);
    }
    if failed > 0 {
        std::process::exit(1);
    }
}
