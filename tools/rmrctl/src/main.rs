// SPDX-License-Identifier: GPL-2.0-or-later
//! rmrctl: administration CLI for rmr/brmr over sysfs. See `rmrctl --help`,
//! Documentation/rmrctl-json.md and Documentation/ABI/.

mod cli;
mod errno;
mod exec;
mod help;
mod human;
mod json;
mod model;
mod parse;
mod sysfs;
mod verbs;
mod watch;

use cli::{exit, Arg, Usage};
use std::io::Write;
use std::time::Duration;

fn usage_error(u: &Usage) -> i32 {
    if u.topic.is_empty() {
        eprintln!("rmrctl: {}", u.msg);
        eprintln!("Try 'rmrctl --help'.");
    } else {
        eprintln!("rmrctl: {}: {}", u.topic, u.msg);
        eprintln!("Try 'rmrctl {} --help'.", u.topic);
    }
    exit::USAGE
}

fn print(text: &str) -> i32 {
    let mut o = std::io::stdout().lock();
    // A closed pipe (`rmrctl status | head -1`) is not an error of ours.
    let _ = o.write_all(text.as_bytes()).and_then(|()| o.flush());
    exit::OK
}

fn status(words: &[String], fs: &sysfs::Sysfs) -> Result<i32, Usage> {
    let p = cli::parse("status", words, &[("json", Arg::Flag)])?;
    cli::positional("status", &p, &[])?;
    if !fs.root().is_dir() {
        eprintln!("rmrctl: status: {} is not a directory", fs.root().display());
        return Ok(exit::REFUSED);
    }
    let st = model::collect(fs);
    Ok(print(&if p.has("json") {
        json::to_string(&json::status(&st))
    } else {
        human::render(&st)
    }))
}

fn watch(words: &[String], fs: &sysfs::Sysfs) -> Result<i32, Usage> {
    let t = "watch";
    let p = cli::parse(t, words, &[("interval", Arg::Value), ("count", Arg::Value)])?;
    cli::positional(t, &p, &[])?;
    let interval = match p.val("interval") {
        None => Duration::from_secs(1),
        Some(v) => match v.parse::<f64>() {
            Ok(s) if s.is_finite() && (0.1..=3600.0).contains(&s) => Duration::from_secs_f64(s),
            _ => {
                return Err(Usage::new(
                    t,
                    format!("--interval: '{v}' is not 0.1..3600 seconds"),
                ))
            }
        },
    };
    let count = cli::number(t, &p, "count")?;
    if count == Some(0) {
        return Err(Usage::new(t, "--count must be at least 1"));
    }
    if !fs.root().is_dir() {
        eprintln!("rmrctl: watch: {} is not a directory", fs.root().display());
        return Ok(exit::REFUSED);
    }
    Ok(watch::run(fs, interval, count))
}

fn main_with(args: &[String]) -> i32 {
    let (g, words) = match cli::globals(args) {
        Ok(x) => x,
        Err(u) => return usage_error(&u),
    };
    let fs = sysfs::Sysfs::new(&g.sysfs);
    let noun = words.first().map_or("", String::as_str);
    if g.help || noun.is_empty() || noun == "help" {
        let topic = if noun == "help" {
            words[1..].join(" ")
        } else {
            words.iter().take(2).cloned().collect::<Vec<_>>().join(" ")
        };
        if noun.is_empty() && !g.help {
            eprint!("{}", help::GLOBAL);
            return exit::USAGE;
        }
        return print(help::text(&topic));
    }
    let rest = &words[1..];
    let r = match noun {
        "status" => status(rest, &fs),
        "watch" => watch(rest, &fs),
        "--version" | "version" => Ok(print(concat!("rmrctl ", env!("CARGO_PKG_VERSION"), "\n"))),
        n if verbs::is_noun(n) => {
            let verb = rest.first().map_or("", String::as_str);
            match verbs::find(n, verb) {
                None if verb.is_empty() => Err(Usage::new(n, "which verb?")),
                None => Err(Usage::new(n, format!("unknown verb '{verb}'"))),
                Some(v) => {
                    let topic = format!("{} {}", v.noun, v.verb);
                    cli::parse(&topic, &rest[1..], v.spec)
                        .and_then(|p| (v.build)(&topic, &p, &fs))
                        .map(|plan| exec::run(&plan, g.dry_run))
                }
            }
        }
        other => Err(Usage::new("", format!("unknown command '{other}'"))),
    };
    match r {
        Ok(code) => code,
        Err(u) => usage_error(&u),
    }
}

fn main() {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    std::process::exit(main_with(&args));
}
