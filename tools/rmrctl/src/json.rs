// SPDX-License-Identifier: GPL-2.0-or-later
//! `status --json`: a small hand-written JSON serializer and the schema of
//! Documentation/rmrctl-json.md (version 1).

use crate::model::{ClientPool, Device, Leg, PoolSource, ServerPool, Status, Store};
use crate::parse::MemberMap;
use std::fmt::Write;

/// Schema version; bump on any incompatible change.
pub const VERSION: u64 = 1;

/// A JSON value. Objects keep their key order.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An unsigned integer.
    Num(u64),
    /// A number with one decimal (non-finite becomes `null`).
    Float(f64),
    /// A string, escaped on output.
    Str(String),
    /// An array.
    Arr(Vec<Value>),
    /// An object.
    Obj(Vec<(&'static str, Value)>),
}

impl Value {
    fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> Value) -> Value {
        v.map_or(Value::Null, f)
    }
}

fn s(v: &str) -> Value {
    Value::Str(v.to_string())
}

fn os(v: &Option<String>) -> Value {
    Value::opt(v.as_deref(), s)
}

fn on(v: Option<u64>) -> Value {
    Value::opt(v, Value::Num)
}

fn ob(v: Option<bool>) -> Value {
    Value::opt(v, Value::Bool)
}

/// Writes `v` as pretty-printed JSON (two-space indent) followed by a newline.
pub fn to_string(v: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, v, 0);
    out.push('\n');
    out
}

fn indent(out: &mut String, n: usize) {
    for _ in 0..n {
        out.push_str("  ");
    }
}

fn write_value(out: &mut String, v: &Value, depth: usize) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Num(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Float(f) if f.is_finite() => {
            let _ = write!(out, "{f:.1}");
        }
        Value::Float(_) => out.push_str("null"),
        Value::Str(t) => escape(out, t),
        // Arrays of numbers (chunk lists) stay on one line.
        Value::Arr(a) if a.iter().all(|x| matches!(x, Value::Num(_))) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, x, depth);
            }
            out.push(']');
        }
        Value::Arr(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                out.push_str(if i > 0 { ",\n" } else { "\n" });
                indent(out, depth + 1);
                write_value(out, x, depth + 1);
            }
            if !a.is_empty() {
                out.push('\n');
                indent(out, depth);
            }
            out.push(']');
        }
        Value::Obj(o) => {
            out.push('{');
            for (i, (k, x)) in o.iter().enumerate() {
                out.push_str(if i > 0 { ",\n" } else { "\n" });
                indent(out, depth + 1);
                escape(out, k);
                out.push_str(": ");
                write_value(out, x, depth + 1);
            }
            if !o.is_empty() {
                out.push('\n');
                indent(out, depth);
            }
            out.push('}');
        }
    }
}

/// Writes `t` as a JSON string literal (RFC 8259 escaping).
pub fn escape(out: &mut String, t: &str) {
    out.push('"');
    for c in t.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The JSON document of a status.
pub fn status(st: &Status) -> Value {
    Value::Obj(vec![
        ("version", Value::Num(VERSION)),
        ("sysfs", s(&st.root)),
        (
            "classes",
            Value::Obj(vec![
                ("rmr_client", Value::Bool(st.classes.rmr_client)),
                ("rmr_server", Value::Bool(st.classes.rmr_server)),
                ("brmr_client", Value::Bool(st.classes.brmr_client)),
                ("brmr_server", Value::Bool(st.classes.brmr_server)),
            ]),
        ),
        (
            "client_pools",
            Value::Arr(st.client_pools.iter().map(client_pool).collect()),
        ),
        (
            "server_pools",
            Value::Arr(st.server_pools.iter().map(server_pool).collect()),
        ),
        ("stores", Value::Arr(st.stores.iter().map(store).collect())),
        (
            "devices",
            Value::Arr(st.devices.iter().map(device).collect()),
        ),
    ])
}

fn map(m: &MemberMap) -> Value {
    Value::Obj(vec![
        ("member_id", Value::Num(u64::from(m.member_id))),
        ("dirty", Value::Num(m.dirty)),
        ("total", Value::Num(m.total)),
        (
            "chunks",
            Value::Arr(m.chunks.iter().map(|c| Value::Num(*c)).collect()),
        ),
        ("chunks_truncated", Value::Bool(m.truncated)),
    ])
}

fn maps(v: &Option<Vec<MemberMap>>) -> Value {
    Value::opt(v.as_ref(), |m| Value::Arr(m.iter().map(map).collect()))
}

fn client_pool(p: &ClientPool) -> Value {
    Value::Obj(vec![
        ("name", s(&p.name)),
        ("sync", ob(p.sync)),
        ("chunk_size", on(p.chunk_size)),
        ("queue_depth", on(p.queue_depth)),
        ("device", os(&p.device)),
        ("maps", maps(&p.maps)),
        ("legs", Value::Arr(p.legs.iter().map(leg).collect())),
    ])
}

fn leg(l: &Leg) -> Value {
    Value::Obj(vec![
        ("name", s(&l.name)),
        ("state", os(&l.state)),
        ("maintenance", ob(l.maintenance)),
        ("member_id", on(l.member_id.map(u64::from))),
        (
            "dirty",
            Value::opt(l.dirty.as_ref(), |m| {
                Value::Obj(vec![
                    ("dirty", Value::Num(m.dirty)),
                    ("total", Value::Num(m.total)),
                ])
            }),
        ),
        (
            "io",
            Value::opt(l.io.as_ref(), |io| {
                Value::Obj(vec![
                    ("reads", Value::Num(io.reads)),
                    ("writes", Value::Num(io.writes)),
                ])
            }),
        ),
    ])
}

fn server_pool(p: &ServerPool) -> Value {
    let progress = Value::opt(p.progress, |g| {
        Value::Obj(vec![
            ("done", Value::Num(g.done)),
            ("total", Value::Num(g.total)),
            ("elapsed_ms", on(g.elapsed_ms)),
            ("rate_chunks_per_s", Value::opt(p.rate, Value::Float)),
            ("eta_s", on(p.eta_s)),
        ])
    });
    Value::Obj(vec![
        ("name", s(&p.name)),
        ("state", os(&p.state)),
        ("maintenance", ob(p.maintenance)),
        ("member_id", on(p.member_id.map(u64::from))),
        ("sync", os(&p.sync)),
        ("sync_progress", progress),
        (
            "own_dirty",
            Value::opt(p.own_map(), |m| Value::Num(m.dirty)),
        ),
        ("maps", maps(&p.maps)),
    ])
}

fn store(t: &Store) -> Value {
    let flag = |f: &str| Value::opt(t.state.as_ref(), |v| Value::Bool(v.iter().any(|x| x == f)));
    Value::Obj(vec![
        ("pool", s(&t.pool)),
        (
            "state",
            Value::opt(t.state.as_ref(), |v| {
                Value::Arr(v.iter().map(|x| s(x)).collect())
            }),
        ),
        ("open", flag("open")),
        ("mapped", flag("mapped")),
        ("device", os(&t.device)),
        ("mapped_size", on(t.mapped_size)),
        ("dev_size", on(t.dev_size)),
    ])
}

fn device(d: &Device) -> Value {
    let (pool, source) = match &d.pool {
        Some((n, PoolSource::Attribute)) => (s(n), s("attribute")),
        Some((n, PoolSource::Inferred)) => (s(n), s("inferred")),
        None => (Value::Null, Value::Null),
    };
    Value::Obj(vec![
        ("name", s(&d.name)),
        ("state", os(&d.state)),
        ("pool", pool),
        ("pool_source", source),
        ("size", on(d.size)),
        (
            "legs",
            Value::opt(d.legs.as_ref(), |legs| {
                Value::Arr(
                    legs.iter()
                        .map(|l| {
                            Value::Obj(vec![
                                ("name", s(&l.name)),
                                ("member_id", Value::Num(u64::from(l.member_id))),
                                ("state", s(&l.state)),
                                ("reads", Value::Num(l.reads)),
                                ("writes", Value::Num(l.writes)),
                            ])
                        })
                        .collect(),
                )
            }),
        ),
        (
            "total",
            Value::opt(d.total, |t| {
                Value::Obj(vec![
                    ("reads", Value::Num(t.reads)),
                    ("writes", Value::Num(t.writes)),
                    ("errors", Value::Num(t.errors)),
                ])
            }),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(t: &str) -> String {
        let mut o = String::new();
        escape(&mut o, t);
        o
    }

    #[test]
    fn escaping() {
        assert_eq!(esc("plain"), "\"plain\"");
        assert_eq!(esc("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(esc("l1\nl2\t\r"), "\"l1\\nl2\\t\\r\"");
        assert_eq!(esc("\u{1}\u{1f}\u{7f}"), "\"\\u0001\\u001f\\u007f\"");
        assert_eq!(esc("\u{8}\u{c}"), "\"\\b\\f\"");
        assert_eq!(esc("é\u{fffd}"), "\"é\u{fffd}\"");
    }

    #[test]
    fn layout() {
        let v = Value::Obj(vec![
            ("a", Value::Arr(vec![Value::Num(1), Value::Num(2)])),
            ("b", Value::Arr(vec![])),
            ("c", Value::Obj(vec![])),
            ("d", Value::Arr(vec![Value::Null, Value::Bool(false)])),
            ("e", Value::Float(2.5)),
            ("f", Value::Float(f64::INFINITY)),
        ]);
        assert_eq!(
            to_string(&v),
            "{\n  \"a\": [1, 2],\n  \"b\": [],\n  \"c\": {},\n  \"d\": [\n    null,\n    false\n  ],\n  \"e\": 2.5,\n  \"f\": null\n}\n"
        );
    }

    #[test]
    fn empty_status_is_versioned() {
        let out = to_string(&status(&Status::default()));
        assert!(out.starts_with("{\n  \"version\": 1,\n"), "{out}");
    }
}
