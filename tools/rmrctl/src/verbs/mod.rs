// SPDX-License-Identifier: GPL-2.0-or-later
//! The admin verbs of SPEC §12: each builds the sysfs writes of Documentation/ABI, checked
//! beforehand with the kernel's own grammar (rmr-core `params`), into an [`exec::Plan`].

use crate::cli::{self, Arg, Parsed, Usage};
use crate::exec::{Plan, Write};
use crate::sysfs::{Sysfs, BRMR_SERVER, RMR_CLIENT, RMR_SERVER};
use rmr_core::params::{self, ParseError};

mod brmr;
mod rmr;
use brmr::*;
use rmr::*;
use std::path::PathBuf;

pub(super) const WAIT: (&str, Arg) = ("wait", Arg::Optional);

/// A verb: `noun verb`, its options and its plan builder.
pub struct Verb {
    /// `pool`, `leg`, ...
    pub noun: &'static str,
    /// `join`, `add`, ...
    pub verb: &'static str,
    /// Accepted `--options`.
    pub spec: &'static [(&'static str, Arg)],
    /// Builds the plan.
    pub build: fn(&str, &Parsed, &Sysfs) -> Result<Plan, Usage>,
}

/// Every verb.
pub const VERBS: &[Verb] = &[
    Verb {
        noun: "pool",
        verb: "join",
        spec: &[
            ("chunk-size", Arg::Value),
            ("sync", Arg::Flag),
            ("queue-depth", Arg::Value),
            ("member-id", Arg::Value),
        ],
        build: pool_join,
    },
    Verb {
        noun: "pool",
        verb: "leave",
        spec: &[("client", Arg::Flag), ("server", Arg::Flag)],
        build: pool_leave,
    },
    Verb {
        noun: "pool",
        verb: "attach",
        spec: &[("sync-pool", Arg::Value)],
        build: pool_attach,
    },
    Verb {
        noun: "pool",
        verb: "enable",
        spec: &[],
        build: pool_enable,
    },
    Verb {
        noun: "leg",
        verb: "add",
        spec: &[("path", Arg::Value), ("mode", Arg::Value), WAIT],
        build: leg_add,
    },
    Verb {
        noun: "leg",
        verb: "enable",
        spec: &[WAIT],
        build: leg_enable,
    },
    Verb {
        noun: "leg",
        verb: "maintenance",
        spec: &[WAIT],
        build: leg_maintenance,
    },
    Verb {
        noun: "leg",
        verb: "remove",
        spec: &[("mode", Arg::Value), WAIT],
        build: leg_remove,
    },
    Verb {
        noun: "leg",
        verb: "reconnect",
        spec: &[("path", Arg::Value)],
        build: leg_reconnect,
    },
    Verb {
        noun: "store",
        verb: "create",
        spec: &[("device", Arg::Value), ("mapped-size", Arg::Value)],
        build: store_create,
    },
    Verb {
        noun: "store",
        verb: "add",
        spec: &[
            ("device", Arg::Value),
            ("mapped-size", Arg::Value),
            ("mode", Arg::Value),
        ],
        build: store_add,
    },
    Verb {
        noun: "store",
        verb: "remove",
        spec: &[],
        build: store_remove,
    },
    Verb {
        noun: "store",
        verb: "delete",
        spec: &[],
        build: store_delete,
    },
    Verb {
        noun: "sync",
        verb: "start",
        spec: &[WAIT],
        build: sync_start,
    },
    Verb {
        noun: "sync",
        verb: "stop",
        spec: &[],
        build: sync_stop,
    },
    Verb {
        noun: "device",
        verb: "map",
        spec: &[("size", Arg::Value)],
        build: device_map,
    },
    Verb {
        noun: "device",
        verb: "unmap",
        spec: &[],
        build: device_unmap,
    },
];

/// Looks a verb up.
pub fn find(noun: &str, verb: &str) -> Option<&'static Verb> {
    VERBS.iter().find(|v| v.noun == noun && v.verb == verb)
}

/// True if `noun` has verbs.
pub fn is_noun(noun: &str) -> bool {
    VERBS.iter().any(|v| v.noun == noun)
}

pub(super) fn hint(key: &str) -> &'static str {
    match key {
        "chunk_size" => " (a power of two, 4096..67108864 bytes)",
        "queue_depth" => " (1..512)",
        "member_id" => " (1..4294967295)",
        "path" => " (ip:<a.b.c.d>)",
        "mapped_size" | "size" => " (sectors, more than 0)",
        "device" => " (an absolute path, at most 255 bytes)",
        "mode" => " (see --help)",
        _ => "",
    }
}

/// Checks a value with the kernel's own parser, so a bad value is a usage error here
/// instead of an EINVAL from the kernel.
pub(super) fn check<T>(topic: &str, r: Result<T, ParseError>) -> Result<T, Usage> {
    r.map_err(|e| {
        let k = e.key();
        let msg = if k.is_empty() {
            e.what().to_string()
        } else {
            format!("{} {k}{}", e.what(), hint(k))
        };
        Usage::new(topic, msg)
    })
}

pub(super) fn name<'a>(topic: &str, what: &str, v: &'a str) -> Result<&'a str, Usage> {
    if params::valid_name(v.as_bytes()) {
        Ok(v)
    } else {
        Err(Usage::new(
            topic,
            format!("invalid {what} '{v}' (1..63 printable characters, no whitespace or '/')"),
        ))
    }
}

pub(super) fn required<'a>(topic: &str, p: &'a Parsed, opt: &str) -> Result<&'a str, Usage> {
    p.val(opt)
        .ok_or_else(|| Usage::new(topic, format!("--{opt} is required")))
}

/// `ip:a.b.c.d` from `a.b.c.d` or `ip:a.b.c.d`.
pub(super) fn ip_path(v: &str) -> String {
    if v.starts_with("ip:") {
        v.to_string()
    } else {
        format!("ip:{v}")
    }
}

pub(super) fn class_obj(fs: &Sysfs, class: &str, module: &str) -> (PathBuf, String) {
    (
        fs.class(class),
        format!(
            "no {class} class under {} (is {module} loaded?)",
            fs.root().join("class").display()
        ),
    )
}

pub(super) fn clt_pool_objs(fs: &Sysfs, pool: &str) -> Vec<(PathBuf, String)> {
    vec![
        class_obj(fs, RMR_CLIENT, "rmr.ko"),
        (
            fs.path(RMR_CLIENT, &format!("pools/{pool}")),
            format!("no client pool {pool} (rmrctl pool join {pool} --chunk-size ...)"),
        ),
    ]
}

pub(super) fn leg_objs(fs: &Sysfs, pool: &str, leg: &str) -> Vec<(PathBuf, String)> {
    let mut o = clt_pool_objs(fs, pool);
    o.push((
        leg_dir(fs, pool, leg),
        format!("client pool {pool} has no leg {leg}"),
    ));
    o
}

pub(super) fn srv_pool_objs(fs: &Sysfs, pool: &str) -> Vec<(PathBuf, String)> {
    vec![
        class_obj(fs, RMR_SERVER, "rmr.ko"),
        (
            fs.path(RMR_SERVER, &format!("pools/{pool}")),
            format!("no server pool {pool} (rmrctl pool join {pool} --member-id ...)"),
        ),
    ]
}

pub(super) fn store_objs(fs: &Sysfs, pool: &str) -> Vec<(PathBuf, String)> {
    vec![
        class_obj(fs, BRMR_SERVER, "brmr.ko"),
        (
            fs.path(BRMR_SERVER, &format!("stores/{pool}")),
            format!("no store of pool {pool} on this host"),
        ),
    ]
}

pub(super) fn leg_dir(fs: &Sysfs, pool: &str, leg: &str) -> PathBuf {
    fs.path(RMR_CLIENT, &format!("pools/{pool}/sessions/{leg}"))
}

pub(super) fn write(path: PathBuf, content: impl Into<String>) -> Vec<Write> {
    vec![Write {
        path,
        content: content.into(),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_paths() {
        assert_eq!(ip_path("1.2.3.4"), "ip:1.2.3.4");
        assert_eq!(ip_path("ip:1.2.3.4"), "ip:1.2.3.4");
    }

    #[test]
    fn verbs_are_unique() {
        for (i, a) in VERBS.iter().enumerate() {
            for b in &VERBS[i + 1..] {
                assert!(!(a.noun == b.noun && a.verb == b.verb));
            }
        }
    }
}
