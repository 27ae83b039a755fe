// SPDX-License-Identifier: GPL-2.0-or-later
//! Command-line parsing: global options anywhere, then `<noun> [<verb>]`, positional
//! arguments and per-verb `--options`.

use std::path::PathBuf;

/// Exit codes (documented in `rmrctl --help`).
pub mod exit {
    /// Success.
    pub const OK: i32 = 0;
    /// The kernel refused a write, or the object does not exist / cannot be read.
    pub const REFUSED: i32 = 1;
    /// Bad command line or argument value; nothing was written.
    pub const USAGE: i32 = 2;
    /// `--wait` ran out of time.
    pub const TIMEOUT: i32 = 3;
    /// `--wait` saw the object reach a state from which the goal cannot be reached.
    pub const WAIT_FAILED: i32 = 4;
}

/// A usage error: the message, and the help topic to point at.
#[derive(Debug, PartialEq, Eq)]
pub struct Usage {
    /// What was wrong.
    pub msg: String,
    /// `rmrctl <topic> --help` names the relevant help.
    pub topic: String,
}

impl Usage {
    /// A usage error about `topic`.
    pub fn new(topic: &str, msg: impl Into<String>) -> Usage {
        Usage {
            msg: msg.into(),
            topic: topic.to_string(),
        }
    }
}

/// Options valid with every command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Global {
    /// Root of sysfs (`/sys`).
    pub sysfs: PathBuf,
    /// Print the writes instead of doing them.
    pub dry_run: bool,
    /// `-h`/`--help` was given.
    pub help: bool,
}

/// Splits the global options (`--sysfs DIR`, `--dry-run`, `-h`, `--help`) out of `args`,
/// wherever they are, and returns the remaining words.
pub fn globals(args: &[String]) -> Result<(Global, Vec<String>), Usage> {
    let mut g = Global {
        sysfs: PathBuf::from("/sys"),
        dry_run: false,
        help: false,
    };
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--sysfs" => match it.next() {
                Some(d) if !d.is_empty() => g.sysfs = PathBuf::from(d),
                _ => return Err(Usage::new("", "--sysfs needs a directory")),
            },
            "--dry-run" | "-n" => g.dry_run = true,
            "-h" | "--help" => g.help = true,
            _ => match a.strip_prefix("--sysfs=") {
                Some("") => return Err(Usage::new("", "--sysfs needs a directory")),
                Some(d) => g.sysfs = PathBuf::from(d),
                None => rest.push(a.clone()),
            },
        }
    }
    Ok((g, rest))
}

/// Whether an option takes a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg {
    /// `--flag`.
    Flag,
    /// `--opt VALUE` or `--opt=VALUE`.
    Value,
    /// `--opt` or `--opt=VALUE` (never a separate word).
    Optional,
}

/// Parsed words of one verb.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Positional arguments.
    pub pos: Vec<String>,
    opts: Vec<(&'static str, Option<String>)>,
}

impl Parsed {
    /// The value of `--name VALUE`, if given.
    pub fn val(&self, name: &str) -> Option<&str> {
        self.opts
            .iter()
            .find(|o| o.0 == name)
            .and_then(|o| o.1.as_deref())
    }

    /// True if `--name` was given (with or without a value).
    pub fn has(&self, name: &str) -> bool {
        self.opts.iter().any(|o| o.0 == name)
    }
}

/// Parses `words` against the options of one verb. `topic` names the verb for errors.
pub fn parse(topic: &str, words: &[String], spec: &[(&'static str, Arg)]) -> Result<Parsed, Usage> {
    let mut p = Parsed::default();
    let mut it = words.iter();
    let mut only_pos = false;
    while let Some(w) = it.next() {
        if only_pos || !w.starts_with("--") || w == "-" {
            p.pos.push(w.clone());
            continue;
        }
        if w == "--" {
            only_pos = true;
            continue;
        }
        let body = &w[2..];
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let Some(&(key, kind)) = spec.iter().find(|s| s.0 == name) else {
            return Err(Usage::new(topic, format!("unknown option --{name}")));
        };
        if p.has(key) {
            return Err(Usage::new(topic, format!("--{key} given twice")));
        }
        let value = match (kind, inline) {
            (Arg::Flag, Some(_)) => {
                return Err(Usage::new(topic, format!("--{key} takes no value")))
            }
            (Arg::Flag, None) | (Arg::Optional, None) => None,
            (Arg::Value | Arg::Optional, Some(v)) => Some(v),
            (Arg::Value, None) => match it.next() {
                Some(v) => Some(v.clone()),
                None => return Err(Usage::new(topic, format!("--{key} needs a value"))),
            },
        };
        if matches!(&value, Some(v) if v.is_empty()) {
            return Err(Usage::new(topic, format!("--{key} needs a value")));
        }
        p.opts.push((key, value));
    }
    Ok(p)
}

/// Checks the number of positional arguments and returns them.
pub fn positional<'a>(topic: &str, p: &'a Parsed, names: &[&str]) -> Result<&'a [String], Usage> {
    if p.pos.len() == names.len() {
        return Ok(&p.pos);
    }
    let want = names
        .iter()
        .map(|n| n.to_uppercase())
        .collect::<Vec<_>>()
        .join(" ");
    if p.pos.len() < names.len() {
        let missing = names[p.pos.len()].to_uppercase();
        Err(Usage::new(
            topic,
            format!("missing {missing} (usage: rmrctl {topic} {want})"),
        ))
    } else {
        Err(Usage::new(
            topic,
            format!("unexpected argument '{}'", p.pos[names.len()]),
        ))
    }
}

/// A decimal number option.
pub fn number(topic: &str, p: &Parsed, name: &str) -> Result<Option<u64>, Usage> {
    match p.val(name) {
        None => Ok(None),
        Some(v) => crate::parse::num(v)
            .filter(|_| !v.starts_with(' ') && !v.ends_with(' '))
            .map(Some)
            .ok_or_else(|| Usage::new(topic, format!("--{name}: '{v}' is not a decimal number"))),
    }
}

/// `--wait` (default 60 s), `--wait=SECS`, `--wait=0` (no limit). `None` without `--wait`.
pub fn wait(topic: &str, p: &Parsed) -> Result<Option<Option<u64>>, Usage> {
    if !p.has("wait") {
        return Ok(None);
    }
    match number(topic, p, "wait")? {
        None => Ok(Some(Some(60))),
        Some(0) => Ok(Some(None)),
        Some(s) => Ok(Some(Some(s))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn globals_anywhere() {
        let (g, rest) = globals(&w(&["leg", "--sysfs", "/t", "add", "--dry-run", "p"])).unwrap();
        assert_eq!(g.sysfs, PathBuf::from("/t"));
        assert!(g.dry_run && !g.help);
        assert_eq!(rest, w(&["leg", "add", "p"]));
        let (g, _) = globals(&w(&["--sysfs=/x", "-h"])).unwrap();
        assert_eq!(g.sysfs, PathBuf::from("/x"));
        assert!(g.help);
        assert!(globals(&w(&["--sysfs"])).is_err());
        assert!(globals(&w(&["--sysfs="])).is_err());
    }

    #[test]
    fn options() {
        let spec = [
            ("mode", Arg::Value),
            ("wait", Arg::Optional),
            ("sync", Arg::Flag),
        ];
        let p = parse("t", &w(&["a", "--mode", "create", "b", "--wait"]), &spec).unwrap();
        assert_eq!(p.pos, w(&["a", "b"]));
        assert_eq!(p.val("mode"), Some("create"));
        assert!(p.has("wait") && p.val("wait").is_none());
        assert_eq!(wait("t", &p).unwrap(), Some(Some(60)));
        let p = parse("t", &w(&["--wait=5", "--mode=x", "--", "--sync"]), &spec).unwrap();
        assert_eq!(wait("t", &p).unwrap(), Some(Some(5)));
        assert_eq!(p.pos, w(&["--sync"]));
        let p = parse("t", &w(&["--wait=0"]), &spec).unwrap();
        assert_eq!(wait("t", &p).unwrap(), Some(None));
        assert!(parse("t", &w(&["--bogus"]), &spec).is_err());
        assert!(parse("t", &w(&["--mode"]), &spec).is_err());
        assert!(parse("t", &w(&["--mode="]), &spec).is_err());
        assert!(parse("t", &w(&["--sync=y"]), &spec).is_err());
        assert!(parse("t", &w(&["--sync", "--sync"]), &spec).is_err());
        let p = parse("t", &w(&["--wait=x"]), &spec).unwrap();
        assert!(wait("t", &p).is_err());
    }

    #[test]
    fn positionals() {
        let p = parse("leg add", &w(&["p"]), &[]).unwrap();
        let e = positional("leg add", &p, &["pool", "leg"]).unwrap_err();
        assert!(e.msg.starts_with("missing LEG"), "{}", e.msg);
        let p = parse("leg add", &w(&["p", "l", "x"]), &[]).unwrap();
        assert!(positional("leg add", &p, &["pool", "leg"]).is_err());
        let p = parse("leg add", &w(&["p", "l"]), &[]).unwrap();
        assert_eq!(
            positional("leg add", &p, &["pool", "leg"]).unwrap().len(),
            2
        );
    }
}
