// SPDX-License-Identifier: GPL-2.0-or-later
//! Parsers for the text the kernel's show functions print. Every parser is total: odd
//! content yields `None` (or skips the odd line), never a panic.

/// A number attribute (`<u64>\n`), surrounding whitespace ignored.
pub fn num(text: &str) -> Option<u64> {
    let t = text.trim();
    if t.is_empty() || t.len() > 20 || !t.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    t.parse().ok()
}

/// A `u32` attribute such as `member_id`.
pub fn num_u32(text: &str) -> Option<u32> {
    num(text).and_then(|v| u32::try_from(v).ok())
}

/// A single-token attribute (`ready`, `running`, `sda`): the first line, trimmed.
pub fn token(text: &str) -> Option<String> {
    let t = text.lines().next()?.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// A `state` attribute of a leg or server pool: `<state>\n` then `Maintenance mode: 1\n`
/// only when in maintenance. Returns the state (if any) and the maintenance flag.
pub fn state(text: &str) -> (Option<String>, bool) {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let st = lines.next().map(str::to_string);
    let maint = lines.any(|l| {
        l.strip_prefix("Maintenance mode:")
            .is_some_and(|v| v.trim() == "1")
    });
    (st, maint)
}

/// One `map_summary` line: `member <id>: [<c> <c> ...] <n>/<total> dirty`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberMap {
    /// Member whose map this is.
    pub member_id: u32,
    /// Dirty chunk numbers listed (ascending); fewer than `dirty` when cut.
    pub chunks: Vec<u64>,
    /// The kernel cut the list at the page end (` ...]`).
    pub truncated: bool,
    /// Exact count of dirty chunks.
    pub dirty: u64,
    /// Chunks in the map.
    pub total: u64,
}

/// Parses one `map_summary` line.
pub fn map_line(line: &str) -> Option<MemberMap> {
    let rest = line.trim().strip_prefix("member ")?;
    let (id, rest) = rest.split_once(':')?;
    let member_id = num_u32(id)?;
    let rest = rest.trim_start().strip_prefix('[')?;
    let (list, tail) = rest.split_once(']')?;
    let mut chunks = Vec::new();
    let mut truncated = false;
    for tok in list.split_ascii_whitespace() {
        if tok == "..." {
            truncated = true;
            break;
        }
        chunks.push(num(tok)?);
    }
    let mut t = tail.split_ascii_whitespace();
    let (n, total) = t.next()?.split_once('/')?;
    if t.next() != Some("dirty") || t.next().is_some() {
        return None;
    }
    Some(MemberMap {
        member_id,
        chunks,
        truncated,
        dirty: num(n)?,
        total: num(total)?,
    })
}

/// Parses a whole `map_summary`; lines that do not parse are skipped.
pub fn map_summary(text: &str) -> Vec<MemberMap> {
    text.lines().filter_map(map_line).collect()
}

/// One leg line of brmr's `stats`: `<sessname> member <id> <leg state> reads <n> writes <n>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatLeg {
    /// Session (leg) name.
    pub name: String,
    /// Storage member behind the leg.
    pub member_id: u32,
    /// Leg state name.
    pub state: String,
    /// Reads served by this leg.
    pub reads: u64,
    /// Writes stored by this leg.
    pub writes: u64,
}

/// The last line of `stats`: `total reads <n> writes <n> errors <n>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatTotal {
    /// Read requests.
    pub reads: u64,
    /// Write requests (flushes included).
    pub writes: u64,
    /// Requests completed with an error.
    pub errors: u64,
}

/// Parsed `stats` of a mapped device.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// One entry per leg line.
    pub legs: Vec<StatLeg>,
    /// The totals line, if present.
    pub total: Option<StatTotal>,
}

/// Parses brmr's `stats`; odd lines are skipped.
pub fn stats(text: &str) -> Stats {
    let mut out = Stats::default();
    for line in text.lines() {
        let w: Vec<&str> = line.split_ascii_whitespace().collect();
        match w.as_slice() {
            ["total", "reads", r, "writes", wr, "errors", e] => {
                if let (Some(reads), Some(writes), Some(errors)) = (num(r), num(wr), num(e)) {
                    out.total = Some(StatTotal {
                        reads,
                        writes,
                        errors,
                    });
                }
            }
            [name, "member", id, st, "reads", r, "writes", wr] => {
                if let (Some(member_id), Some(reads), Some(writes)) = (num_u32(id), num(r), num(wr))
                {
                    out.legs.push(StatLeg {
                        name: name.to_string(),
                        member_id,
                        state: st.to_string(),
                        reads,
                        writes,
                    });
                }
            }
            _ => {}
        }
    }
    out
}

/// A store's `state`: one flag name per line (`open`, `mapped`).
pub fn flags(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// The server pool `sync_progress` attribute (the kernel prints three fields): `<done> <total>` or `<done> <total> <elapsed_ms>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Chunks synced by the current (or last) run.
    pub done: u64,
    /// Chunks the run has to sync.
    pub total: u64,
    /// Milliseconds since the run started, if the kernel says.
    pub elapsed_ms: Option<u64>,
}

/// Parses `sync_progress`.
pub fn progress(text: &str) -> Option<Progress> {
    let w: Vec<&str> = text.split_ascii_whitespace().collect();
    let (done, total, elapsed_ms) = match w.as_slice() {
        [d, t] => (num(d)?, num(t)?, None),
        [d, t, e] => (num(d)?, num(t)?, Some(num(e)?)),
        _ => return None,
    };
    Some(Progress {
        done,
        total,
        elapsed_ms,
    })
}

/// The client pool `sync` attribute: `y` or `n`.
pub fn yes_no(text: &str) -> Option<bool> {
    match text.trim() {
        "y" | "Y" | "1" => Some(true),
        "n" | "N" | "0" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(num("204800\n"), Some(204800));
        assert_eq!(num(" 7 "), Some(7));
        assert_eq!(num(""), None);
        assert_eq!(num("-1"), None);
        assert_eq!(num("12a"), None);
        assert_eq!(num("99999999999999999999999"), None);
        assert_eq!(num("18446744073709551616"), None);
        assert_eq!(num_u32("4294967296"), None);
        assert_eq!(num_u32("43\n"), Some(43));
    }

    #[test]
    fn states() {
        assert_eq!(state("normal\n"), (Some("normal".into()), false));
        assert_eq!(
            state("reconnecting\nMaintenance mode: 1\n"),
            (Some("reconnecting".into()), true)
        );
        assert_eq!(state(""), (None, false));
        assert_eq!(state("\n\n"), (None, false));
        assert_eq!(
            state("no_io\nMaintenance mode: 0\n"),
            (Some("no_io".into()), false)
        );
        assert_eq!(token("ready\n"), Some("ready".into()));
        assert_eq!(token("\n"), None);
    }

    #[test]
    fn map_lines() {
        let m = map_line("member 43: [3 17 18] 3/800 dirty").unwrap();
        assert_eq!(m.member_id, 43);
        assert_eq!(m.chunks, vec![3, 17, 18]);
        assert!(!m.truncated);
        assert_eq!((m.dirty, m.total), (3, 800));
        let m = map_line("member 42: [] 0/800 dirty").unwrap();
        assert!(m.chunks.is_empty());
        assert_eq!((m.dirty, m.total), (0, 800));
        // Cut at the page end, also before the first number.
        let m = map_line("member 7: [1 2 ...] 5000/10000 dirty").unwrap();
        assert_eq!((m.chunks.len(), m.truncated, m.dirty), (2, true, 5000));
        let m = map_line("member 7: [ ...] 5000/10000 dirty").unwrap();
        assert_eq!((m.chunks.len(), m.truncated), (0, true));
        for bad in [
            "",
            "member",
            "member x: [] 0/1 dirty",
            "member 1: 0/1 dirty",
            "member 1: [a] 0/1 dirty",
            "member 1: [] 0/1",
            "member 1: [] 0-1 dirty",
            "member 1: [] 0/1 dirty extra",
            "member 1: [1 2",
        ] {
            assert_eq!(map_line(bad), None, "{bad:?}");
        }
        let all = map_summary("member 43: [] 0/800 dirty\ngarbage\nmember 42: [1] 1/800 dirty\n");
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].member_id, 42);
    }

    #[test]
    fn stats_lines() {
        let s = stats(
            "psrv0@stg-rmr0 member 42 normal reads 3713 writes 4546\n\
             psrv0@stg-rmr1 member 43 failed reads 10 writes 20\n\
             odd line\n\
             total reads 7426 writes 4546 errors 0\n",
        );
        assert_eq!(s.legs.len(), 2);
        assert_eq!(s.legs[1].state, "failed");
        assert_eq!(s.legs[1].writes, 20);
        assert_eq!(
            s.total,
            Some(StatTotal {
                reads: 7426,
                writes: 4546,
                errors: 0
            })
        );
        assert_eq!(stats(""), Stats::default());
        assert_eq!(stats("x member y normal reads 1 writes 2").legs.len(), 0);
    }

    #[test]
    fn flags_progress_yes_no() {
        assert_eq!(flags("open\nmapped\n"), vec!["open", "mapped"]);
        assert!(flags("").is_empty());
        assert_eq!(
            progress("488 800\n"),
            Some(Progress {
                done: 488,
                total: 800,
                elapsed_ms: None
            })
        );
        assert_eq!(progress("1 2 3").unwrap().elapsed_ms, Some(3));
        assert_eq!(progress("1"), None);
        assert_eq!(progress("1 2 3 4"), None);
        assert_eq!(progress("a b"), None);
        assert_eq!(yes_no("y\n"), Some(true));
        assert_eq!(yes_no("n\n"), Some(false));
        assert_eq!(yes_no("maybe"), None);
    }
}
