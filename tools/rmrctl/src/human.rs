// SPDX-License-Identifier: GPL-2.0-or-later
//! The human view of `status` and `watch`: one line per object, columns aligned per kind,
//! `-` for an attribute that is missing or unreadable.

use crate::model::{ClientPool, Device, ServerPool, Status, Store};
use crate::parse::MemberMap;

/// Chunk numbers shown per map line; the JSON output has them all.
const PREVIEW: usize = 8;

/// One output line: `key` names the object (stable across refreshes, for `watch`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// Identity of the object shown.
    pub key: String,
    /// The text, without newline.
    pub text: String,
}

/// Kinds of rows aligned together.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Group {
    ClientPool,
    Leg,
    ServerPool,
    Map,
    Resync,
    Store,
    Device,
}

struct Row {
    group: Group,
    indent: usize,
    key: String,
    cells: Vec<String>,
}

/// Replaces control characters so that sysfs content cannot drive the terminal.
pub fn clean(t: &str) -> String {
    t.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |x| clean(&x.to_string()))
}

fn kv<T: std::fmt::Display>(k: &str, v: Option<T>) -> String {
    format!("{k}:{}", opt(v))
}

/// `[3 17 18]`, `[0 1 2 3 4 5 6 7 ...]`.
fn preview(m: &MemberMap) -> String {
    let mut parts: Vec<String> = m.chunks.iter().take(PREVIEW).map(u64::to_string).collect();
    if m.truncated || m.chunks.len() > PREVIEW || (m.chunks.len() as u64) < m.dirty {
        parts.push("...".into());
    }
    format!("[{}]", parts.join(" "))
}

/// `0:42`, `1:02:03`.
pub fn duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

fn client_rows(p: &ClientPool, rows: &mut Vec<Row>) {
    let key = format!("cp/{}", p.name);
    let mut cells = vec![format!("client pool {}", clean(&p.name))];
    if p.sync == Some(true) {
        cells.push("sync".into());
    }
    if let Some(c) = p.chunk_size {
        cells.push(format!("chunk_size:{c}"));
    }
    if let Some(q) = p.queue_depth {
        cells.push(format!("queue_depth:{q}"));
    }
    if let Some(d) = &p.device {
        cells.push(format!("device:{}", clean(d)));
    }
    if p.legs.is_empty() {
        cells.push("no legs".into());
    }
    rows.push(Row {
        group: Group::ClientPool,
        indent: 0,
        key: key.clone(),
        cells,
    });
    for l in &p.legs {
        let maint = match l.maintenance {
            Some(true) => "maintenance".to_string(),
            _ => String::new(),
        };
        let dirty = l
            .dirty
            .as_ref()
            .map_or(String::new(), |m| format!("dirty:{}/{}", m.dirty, m.total));
        let (reads, writes) = l.io.as_ref().map_or((String::new(), String::new()), |io| {
            (
                format!("reads:{}", io.reads),
                format!("writes:{}", io.writes),
            )
        });
        rows.push(Row {
            group: Group::Leg,
            indent: 2,
            key: format!("{key}/{}", l.name),
            cells: vec![
                format!("leg {}", clean(&l.name)),
                kv("member", l.member_id),
                opt(l.state.as_deref()),
                maint,
                dirty,
                reads,
                writes,
            ],
        });
    }
}

fn server_rows(p: &ServerPool, rows: &mut Vec<Row>) {
    let key = format!("sp/{}", p.name);
    let maint = match p.maintenance {
        Some(true) => "maintenance".to_string(),
        _ => String::new(),
    };
    rows.push(Row {
        group: Group::ServerPool,
        indent: 0,
        key: key.clone(),
        cells: vec![
            format!("server pool {}", clean(&p.name)),
            kv("member", p.member_id),
            opt(p.state.as_deref()),
            maint,
            kv("sync", p.sync.as_deref()),
        ],
    });
    match &p.maps {
        None => rows.push(Row {
            group: Group::Map,
            indent: 2,
            key: format!("{key}/maps"),
            cells: vec!["maps -".into()],
        }),
        Some(maps) => {
            for m in maps {
                let own = if Some(m.member_id) == p.member_id {
                    "own"
                } else {
                    ""
                };
                rows.push(Row {
                    group: Group::Map,
                    indent: 2,
                    key: format!("{key}/map/{}", m.member_id),
                    cells: vec![
                        format!("map member:{}", m.member_id),
                        format!("dirty:{}/{}", m.dirty, m.total),
                        own.into(),
                        preview(m),
                    ],
                });
            }
        }
    }
    if let Some(r) = resync(p) {
        rows.push(Row {
            group: Group::Resync,
            indent: 2,
            key: format!("{key}/resync"),
            cells: r,
        });
    }
}

/// The resync line: shown while the sync thread runs, or when the kernel reports a past
/// run (`sync_progress` other than `0 0 0`), which is then marked `(ended)`.
fn resync(p: &ServerPool) -> Option<Vec<String>> {
    let running = p.sync.as_deref() == Some("running");
    let ran = p
        .progress
        .is_some_and(|g| g.done > 0 || g.total > 0 || g.elapsed_ms.is_some_and(|ms| ms > 0));
    if !running && !ran {
        return None;
    }
    let mut cells = vec!["resync".to_string()];
    match (p.progress, p.own_map()) {
        (Some(g), _) => {
            let pct = if g.total == 0 {
                100.0
            } else {
                g.done as f64 * 100.0 / g.total as f64
            };
            cells.push(format!("done:{}/{}", g.done, g.total));
            cells.push(format!("{pct:.1}%"));
        }
        (None, Some(m)) => cells.push(format!("left:{}/{}", m.dirty, m.total)),
        (None, None) => cells.push("left:-".into()),
    }
    cells.push(match p.rate {
        Some(r) => format!("rate:{r:.1}/s"),
        None => "rate:-".into(),
    });
    cells.push(format!("eta:{}", opt(p.eta_s.map(duration))));
    if !running {
        cells.push("(ended)".into());
    }
    Some(cells)
}

fn store_row(t: &Store) -> Row {
    let state = match &t.state {
        Some(v) if !v.is_empty() => clean(&v.join(",")),
        Some(_) => "none".into(),
        None => "-".into(),
    };
    Row {
        group: Group::Store,
        indent: 0,
        key: format!("st/{}", t.pool),
        cells: vec![
            format!("store {}", clean(&t.pool)),
            state,
            kv("device", t.device.as_deref()),
            kv("mapped_size", t.mapped_size),
            kv("dev_size", t.dev_size),
        ],
    }
}

fn device_row(d: &Device) -> Row {
    let mut cells = vec![
        format!("device {}", clean(&d.name)),
        opt(d.state.as_deref()),
        kv("pool", d.pool.as_ref().map(|p| p.0.as_str())),
        kv("size", d.size),
    ];
    match d.total {
        Some(t) => {
            cells.push(format!("reads:{}", t.reads));
            cells.push(format!("writes:{}", t.writes));
            cells.push(format!("errors:{}", t.errors));
        }
        None => cells.push("stats:-".into()),
    }
    Row {
        group: Group::Device,
        indent: 0,
        key: format!("dev/{}", d.name),
        cells,
    }
}

/// Renders rows with the columns of each group aligned; columns empty in every row of a
/// group are dropped.
fn align(rows: &[Row]) -> Vec<Line> {
    let groups = [
        Group::ClientPool,
        Group::Leg,
        Group::ServerPool,
        Group::Map,
        Group::Resync,
        Group::Store,
        Group::Device,
    ];
    let mut widths: Vec<(Group, Vec<usize>)> = Vec::new();
    for g in groups {
        let mut w: Vec<usize> = Vec::new();
        for r in rows.iter().filter(|r| r.group == g) {
            if w.len() < r.cells.len() {
                w.resize(r.cells.len(), 0);
            }
            for (i, c) in r.cells.iter().enumerate() {
                w[i] = w[i].max(c.chars().count());
            }
        }
        widths.push((g, w));
    }
    rows.iter()
        .map(|r| {
            let w = widths
                .iter()
                .find(|x| x.0 == r.group)
                .map(|x| x.1.as_slice())
                .unwrap_or(&[]);
            let mut text = " ".repeat(r.indent);
            for (i, c) in r.cells.iter().enumerate() {
                let width = w.get(i).copied().unwrap_or(0);
                if width == 0 {
                    continue;
                }
                if i > 0 {
                    text.push_str("  ");
                }
                text.push_str(c);
                text.push_str(&" ".repeat(width.saturating_sub(c.chars().count())));
            }
            Line {
                key: r.key.clone(),
                text: text.trim_end().to_string(),
            }
        })
        .collect()
}

/// The status as lines.
pub fn lines(st: &Status) -> Vec<Line> {
    if st.classes.none() {
        return vec![Line {
            key: "none".into(),
            text: format!(
                "no rmr or brmr class under {}/class (modules not loaded?)",
                clean(&st.root)
            ),
        }];
    }
    let mut rows = Vec::new();
    for p in &st.client_pools {
        client_rows(p, &mut rows);
    }
    for p in &st.server_pools {
        server_rows(p, &mut rows);
    }
    rows.extend(st.stores.iter().map(store_row));
    rows.extend(st.devices.iter().map(device_row));
    if rows.is_empty() {
        return vec![Line {
            key: "empty".into(),
            text: "no pools, stores or devices".into(),
        }];
    }
    align(&rows)
}

/// The status as text.
pub fn render(st: &Status) -> String {
    let mut out = String::new();
    for l in lines(st) {
        out.push_str(&l.text);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::Progress;

    #[test]
    fn resync_line_by_run() {
        let mut p = ServerPool {
            sync: Some("stopped".into()),
            progress: Some(Progress {
                done: 0,
                total: 0,
                elapsed_ms: Some(0),
            }),
            ..ServerPool::default()
        };
        assert_eq!(resync(&p), None, "never ran");
        p.progress = Some(Progress {
            done: 312,
            total: 312,
            elapsed_ms: Some(4000),
        });
        (p.rate, p.eta_s) = crate::model::rate_of(p.progress.unwrap());
        assert_eq!(
            resync(&p).unwrap(),
            [
                "resync",
                "done:312/312",
                "100.0%",
                "rate:78.0/s",
                "eta:0:00",
                "(ended)"
            ]
        );
        p.sync = Some("running".into());
        p.progress = Some(Progress {
            done: 0,
            total: 0,
            elapsed_ms: Some(0),
        });
        (p.rate, p.eta_s) = (None, None);
        assert_eq!(
            resync(&p).unwrap(),
            ["resync", "done:0/0", "100.0%", "rate:-", "eta:-"]
        );
    }

    #[test]
    fn previews() {
        let m = MemberMap {
            member_id: 1,
            chunks: (0..10).collect(),
            truncated: false,
            dirty: 10,
            total: 800,
        };
        assert_eq!(preview(&m), "[0 1 2 3 4 5 6 7 ...]");
        let m = MemberMap {
            chunks: vec![3, 5],
            dirty: 2,
            ..m
        };
        assert_eq!(preview(&m), "[3 5]");
        let m = MemberMap {
            chunks: vec![],
            dirty: 0,
            ..m
        };
        assert_eq!(preview(&m), "[]");
        let m = MemberMap {
            chunks: vec![],
            truncated: true,
            dirty: 5000,
            ..m
        };
        assert_eq!(preview(&m), "[...]");
    }

    #[test]
    fn durations_and_cleaning() {
        assert_eq!(duration(0), "0:00");
        assert_eq!(duration(75), "1:15");
        assert_eq!(duration(3723), "1:02:03");
        assert_eq!(clean("a\x1b[2Jb\n"), "a?[2Jb?");
    }

    #[test]
    fn alignment_drops_empty_columns() {
        let rows = vec![
            Row {
                group: Group::Leg,
                indent: 2,
                key: "a".into(),
                cells: vec!["leg a".into(), "".into(), "normal".into()],
            },
            Row {
                group: Group::Leg,
                indent: 2,
                key: "b".into(),
                cells: vec!["leg bbb".into(), "".into(), "failed".into()],
            },
        ];
        let l = align(&rows);
        assert_eq!(l[0].text, "  leg a    normal");
        assert_eq!(l[1].text, "  leg bbb  failed");
    }
}
