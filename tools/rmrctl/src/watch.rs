// SPDX-License-Identifier: GPL-2.0-or-later
//! `rmrctl watch`: redraws the status every interval, like `watch cat /proc/mdstat`, with the
//! lines that changed since the previous refresh in inverse video. While a sync runs and the
//! kernel gives no rate, the rate and ETA are measured from the own map's dirty count.

use crate::human::{self, Line};
use crate::model::{self, Status};
use crate::sysfs::Sysfs;
use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const CLEAR: &str = "\x1b[H\x1b[2J";
const BOLD: &str = "\x1b[1m";
const INVERSE: &str = "\x1b[7m";
const RESET: &str = "\x1b[0m";

/// First sample of a running sync: own dirty count and when it was seen.
type Baseline = HashMap<String, (u64, Instant)>;

/// Fills in `rate` and `eta_s` of running syncs without a kernel rate, measured since the
/// sync was first seen running. Baselines of pools not syncing are dropped.
fn measure(st: &mut Status, base: &mut Baseline, now: Instant) {
    base.retain(|name, _| {
        st.server_pools
            .iter()
            .any(|p| &p.name == name && p.sync.as_deref() == Some("running"))
    });
    for p in st.server_pools.iter_mut() {
        if p.sync.as_deref() != Some("running") || p.rate.is_some() {
            continue;
        }
        let Some(left) = p.own_map().map(|m| m.dirty) else {
            continue;
        };
        let (first, since) = *base.entry(p.name.clone()).or_insert((left, now));
        let secs = now.duration_since(since).as_secs_f64();
        if secs > 0.0 && first >= left {
            let rate = (first - left) as f64 / secs;
            p.rate = Some(rate);
            p.eta_s = model::eta(left, rate);
        }
    }
}

/// `HH:MM:SS` UTC of the wall clock.
fn clock() -> String {
    let s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("{:02}:{:02}:{:02} UTC", s / 3600 % 24, s / 60 % 60, s % 60)
}

/// One frame: the text to print, with changed lines highlighted.
pub fn frame(lines: &[Line], prev: Option<&[Line]>, header: &str) -> String {
    let mut out = String::from(CLEAR);
    out.push_str(BOLD);
    out.push_str(header);
    out.push_str(RESET);
    out.push_str("\n\n");
    for l in lines {
        let changed = prev.is_some_and(|p| !p.iter().any(|o| o.key == l.key && o.text == l.text));
        if changed {
            out.push_str(INVERSE);
            out.push_str(&l.text);
            out.push_str(RESET);
        } else {
            out.push_str(&l.text);
        }
        out.push('\n');
    }
    out
}

/// Runs the loop: `count` frames (forever if `None`), `interval` apart.
pub fn run(fs: &Sysfs, interval: Duration, count: Option<u64>) -> i32 {
    let mut prev: Option<Vec<Line>> = None;
    let mut base = Baseline::new();
    let mut n = 0u64;
    let stdout = std::io::stdout();
    loop {
        let mut st = model::collect(fs);
        measure(&mut st, &mut base, Instant::now());
        let lines = human::lines(&st);
        let header = format!(
            "rmrctl watch: every {}s, {}    {}",
            interval.as_secs_f64(),
            human::clean(&st.root),
            clock()
        );
        let text = frame(&lines, prev.as_deref(), &header);
        {
            let mut o = stdout.lock();
            if o.write_all(text.as_bytes())
                .and_then(|()| o.flush())
                .is_err()
            {
                // stdout closed (e.g. piped into head): stop quietly.
                return crate::cli::exit::OK;
            }
        }
        prev = Some(lines);
        n += 1;
        if count.is_some_and(|c| n >= c) {
            return crate::cli::exit::OK;
        }
        std::thread::sleep(interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ServerPool;
    use crate::parse::MemberMap;

    fn line(k: &str, t: &str) -> Line {
        Line {
            key: k.into(),
            text: t.into(),
        }
    }

    #[test]
    fn highlights_changed_and_new_lines() {
        let a = vec![line("x", "one"), line("y", "two")];
        let b = vec![line("x", "one"), line("y", "TWO"), line("z", "new")];
        let f = frame(&b, Some(&a), "h");
        assert!(f.contains("\none\n"));
        assert!(f.contains(&format!("{INVERSE}TWO{RESET}")));
        assert!(f.contains(&format!("{INVERSE}new{RESET}")));
        let first = frame(&a, None, "h");
        assert!(!first.contains(INVERSE));
        assert!(first.starts_with(CLEAR));
    }

    #[test]
    fn measures_rate_of_a_running_sync() {
        let pool = |dirty| ServerPool {
            name: "p".into(),
            member_id: Some(43),
            sync: Some("running".into()),
            maps: Some(vec![MemberMap {
                member_id: 43,
                chunks: vec![],
                truncated: false,
                dirty,
                total: 800,
            }]),
            ..ServerPool::default()
        };
        let mut base = Baseline::new();
        let t0 = Instant::now();
        let mut st = Status {
            server_pools: vec![pool(800)],
            ..Status::default()
        };
        measure(&mut st, &mut base, t0);
        assert_eq!(st.server_pools[0].rate, None);
        let mut st = Status {
            server_pools: vec![pool(600)],
            ..Status::default()
        };
        measure(&mut st, &mut base, t0 + Duration::from_secs(2));
        assert_eq!(st.server_pools[0].rate, Some(100.0));
        assert_eq!(st.server_pools[0].eta_s, Some(6));
        // Stopped: baseline dropped.
        let mut st = Status {
            server_pools: vec![ServerPool {
                sync: Some("stopped".into()),
                ..pool(0)
            }],
            ..Status::default()
        };
        measure(&mut st, &mut base, t0 + Duration::from_secs(3));
        assert!(base.is_empty());
    }
}
