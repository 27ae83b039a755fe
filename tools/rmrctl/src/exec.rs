// SPDX-License-Identifier: GPL-2.0-or-later
//! Carrying out a verb: its sysfs writes (or printing them with `--dry-run`), reporting a
//! refusal with the object named and the errno explained, then the optional `--wait`.

use crate::cli::exit;
use crate::errno;
use crate::parse;
use crate::sysfs::{self, WriteError};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Poll period of `--wait`.
const POLL: Duration = Duration::from_millis(100);

/// One `echo content >path`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    /// Attribute file.
    pub path: PathBuf,
    /// Text written; a newline is appended as `echo` does.
    pub content: String,
}

/// What `--wait` waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wait {
    /// A leg directory's `state` reads `want`, with the maintenance line iff `maintenance`.
    Leg {
        /// `sessions/<s>/`.
        dir: PathBuf,
        /// The state names that end the wait; empty: any state.
        want: &'static [&'static str],
        /// Whether `Maintenance mode: 1` must be present.
        maintenance: bool,
    },
    /// A directory is gone (leg removed).
    Gone {
        /// The directory.
        dir: PathBuf,
    },
    /// A server pool's sync thread has stopped and its own map is clean.
    Sync {
        /// `rmr-server/pools/<p>/`.
        dir: PathBuf,
    },
}

/// Everything a verb does.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// The verb and its object, e.g. `leg add ionos_pool/psrv0@stg-rmr0`.
    pub what: String,
    /// Writes, in order.
    pub writes: Vec<Write>,
    /// Objects the writes need, outermost first, with the message if one is missing.
    pub objects: Vec<(PathBuf, String)>,
    /// Meanings of errnos specific to this verb (from Documentation/ABI).
    pub meanings: Vec<(i32, &'static str)>,
    /// `--wait`: what, and the limit in seconds (`None`: no limit).
    pub wait: Option<(Wait, Option<u64>)>,
    /// `device map`: the devices directory, to report the new `brmrN`.
    pub new_device_in: Option<PathBuf>,
    /// Errnos of a write that mean "not yet" (e.g. the storage node still holds this
    /// session from before a crash): with `--wait`, the write is repeated every
    /// `RETRY` until it is taken or the wait's limit has passed.
    pub retry: Vec<i32>,
    /// Errnos of a write that mean the goal is reached already, with what to tell the user:
    /// the write counts as done (and `--wait` still waits).
    pub already: Vec<(i32, &'static str)>,
}

const RETRY: Duration = Duration::from_secs(2);

/// Quotes `s` for a POSIX shell when needed.
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"@%+=:,./_-".contains(&c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn describe_wait(w: &Wait, limit: Option<u64>) -> String {
    let lim = match limit {
        Some(s) => format!("up to {s}s"),
        None => "without limit".to_string(),
    };
    match w {
        Wait::Leg {
            dir,
            want,
            maintenance,
        } => {
            let m = if *maintenance {
                " with 'Maintenance mode: 1'"
            } else {
                ""
            };
            let st = if want.is_empty() {
                "any state".to_string()
            } else {
                want.iter()
                    .map(|w| format!("'{w}'"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            };
            format!(
                "# then wait {lim} until {} reads {st}{m}",
                dir.join("state").display()
            )
        }
        Wait::Gone { dir } => format!("# then wait {lim} until {} is gone", dir.display()),
        Wait::Sync { dir } => format!(
            "# then wait {lim} until {} reads 'stopped' and the own map in {} is clean",
            dir.join("sync").display(),
            dir.join("map_summary").display()
        ),
    }
}

/// Runs `plan`; returns the exit code. Messages go to stderr, results to stdout.
pub fn run(plan: &Plan, dry_run: bool) -> i32 {
    if dry_run {
        for w in &plan.writes {
            println!(
                "echo {} > {}",
                shell_quote(&w.content),
                shell_quote(&w.path.display().to_string())
            );
        }
        if let Some((w, lim)) = &plan.wait {
            println!("{}", describe_wait(w, *lim));
        }
        return exit::OK;
    }
    let before = plan
        .new_device_in
        .as_ref()
        .map(|d| sysfs::subdirs(d).unwrap_or_default());
    let start = Instant::now();
    let write = |w: &Write| sysfs::write(&w.path, &format!("{}\n", w.content));
    if let Err(code) = do_writes(plan, write, start, RETRY) {
        return code;
    }
    if let (Some(dir), Some(before)) = (&plan.new_device_in, before) {
        let after = sysfs::subdirs(dir).unwrap_or_default();
        for d in after.iter().filter(|d| !before.contains(d)) {
            println!("{d}");
        }
    }
    match &plan.wait {
        Some((w, lim)) => wait(plan, w, *lim, start),
        None => exit::OK,
    }
}

/// Does the plan's writes in order with `write`; a refusal in `plan.retry` is retried every
/// `every` while the `--wait` limit (counted from `start`) allows. On a refusal, reports it
/// and returns the exit code.
fn do_writes(
    plan: &Plan,
    mut write: impl FnMut(&Write) -> Result<(), WriteError>,
    start: Instant,
    every: Duration,
) -> Result<(), i32> {
    for w in &plan.writes {
        let mut told = false;
        loop {
            let e = match write(w) {
                Ok(()) => break,
                Err(e) => e,
            };
            let n = match &e {
                WriteError::Write(io) => errno::of(io),
                _ => None,
            };
            if let Some((_, note)) = plan.already.iter().find(|a| Some(a.0) == n) {
                eprintln!("rmrctl: {}: {note}", plan.what);
                break;
            }
            let again = match (&plan.wait, n) {
                (Some((_, lim)), Some(n)) if plan.retry.contains(&n) => {
                    lim.is_none_or(|l| start.elapsed() + every < Duration::from_secs(l))
                }
                _ => false,
            };
            if !again {
                report(plan, w, &e);
                return Err(exit::REFUSED);
            }
            if !told {
                let n = n.unwrap_or(0);
                let specific = plan.meanings.iter().find(|m| m.0 == n).map(|m| m.1);
                eprintln!(
                    "rmrctl: {}: {}; retrying every {}s while --wait allows",
                    plan.what,
                    errno::describe(n, specific),
                    every.as_secs()
                );
                told = true;
            }
            std::thread::sleep(every);
        }
    }
    Ok(())
}

fn report(plan: &Plan, w: &Write, e: &WriteError) {
    let head = format!("rmrctl: {}", plan.what);
    match e {
        WriteError::Open(io) => match errno::of(io) {
            Some(n @ (2 | 20)) => {
                let missing = plan.objects.iter().find(|(p, _)| !sysfs::exists(p));
                let why = match missing {
                    Some((_, msg)) => msg.clone(),
                    None => format!(
                        "{} does not exist (a kernel without this attribute?)",
                        w.path.display()
                    ),
                };
                eprintln!("{head}: {}", errno::describe(n, Some(&why)));
            }
            Some(n) => eprintln!(
                "{head}: {} (opening {})",
                errno::describe(n, None),
                w.path.display()
            ),
            None => eprintln!("{head}: cannot open {}: {io}", w.path.display()),
        },
        WriteError::Write(io) => {
            match errno::of(io) {
                Some(n) => {
                    let specific = plan.meanings.iter().find(|m| m.0 == n).map(|m| m.1);
                    eprintln!("{head}: {}", errno::describe(n, specific));
                }
                None => eprintln!("{head}: {io}"),
            }
            eprintln!(
                "rmrctl: the kernel refused '{}' written to {} (details: dmesg | tail)",
                w.content,
                w.path.display()
            );
        }
        WriteError::Short(n, len) => eprintln!(
            "{head}: the kernel took {n} of {len} bytes written to {}",
            w.path.display()
        ),
    }
}

enum Poll {
    Done,
    Pending(String),
    Failed(String),
}

fn poll(w: &Wait) -> Poll {
    match w {
        Wait::Leg {
            dir,
            want,
            maintenance,
        } => {
            if !sysfs::exists(dir) {
                return Poll::Failed("the leg is gone".into());
            }
            let Some(text) = sysfs::read(&dir.join("state")) else {
                return Poll::Pending("state unreadable".into());
            };
            let (st, m) = parse::state(&text);
            let st = st.unwrap_or_else(|| "-".into());
            let now = if m {
                format!("{st} (maintenance)")
            } else {
                st.clone()
            };
            if (want.is_empty() || want.contains(&st.as_str())) && m == *maintenance {
                Poll::Done
            } else if st == "removing" {
                Poll::Failed(format!("the leg is {now}"))
            } else {
                Poll::Pending(format!("state is {now}"))
            }
        }
        Wait::Gone { dir } => {
            if sysfs::exists(dir) {
                let st = sysfs::read(&dir.join("state"))
                    .and_then(|t| parse::state(&t).0)
                    .unwrap_or_else(|| "-".into());
                Poll::Pending(format!("still there, state {st}"))
            } else {
                Poll::Done
            }
        }
        Wait::Sync { dir } => sync_poll(dir),
    }
}

fn sync_poll(dir: &Path) -> Poll {
    if !sysfs::exists(dir) {
        return Poll::Failed("the server pool is gone".into());
    }
    let sync = sysfs::read(&dir.join("sync")).and_then(|t| parse::token(&t));
    let own = sysfs::read(&dir.join("member_id"))
        .and_then(|t| parse::num_u32(&t))
        .and_then(|id| {
            let maps = parse::map_summary(&sysfs::read(&dir.join("map_summary"))?);
            maps.into_iter().find(|m| m.member_id == id)
        });
    let left = own
        .as_ref()
        .map_or("-".to_string(), |m| format!("{}/{}", m.dirty, m.total));
    match (sync.as_deref(), own) {
        (Some("stopped"), Some(m)) if m.dirty == 0 => Poll::Done,
        (Some("stopped"), Some(m)) => Poll::Failed(format!(
            "the sync thread stopped with {}/{} chunks still dirty for member {} (a sync \
             request failed or the pool left normal; see the kernel log, fix the cause and \
             start the sync again)",
            m.dirty, m.total, m.member_id
        )),
        (Some("stopped"), None) => {
            Poll::Failed("the sync thread stopped; own map unreadable".into())
        }
        (s, _) => Poll::Pending(format!("sync {}, own map {left} dirty", s.unwrap_or("-"))),
    }
}

fn wait(plan: &Plan, w: &Wait, limit: Option<u64>, start: Instant) -> i32 {
    let show = matches!(w, Wait::Sync { .. }) && std::io::stderr().is_terminal();
    let mut last_shown = Instant::now();
    loop {
        match poll(w) {
            Poll::Done => {
                if show {
                    eprintln!();
                }
                return exit::OK;
            }
            Poll::Failed(why) => {
                if show {
                    eprintln!();
                }
                eprintln!("rmrctl: {}: {why}", plan.what);
                return exit::WAIT_FAILED;
            }
            Poll::Pending(now) => {
                let waited = start.elapsed();
                if limit.is_some_and(|l| waited >= Duration::from_secs(l)) {
                    if show {
                        eprintln!();
                    }
                    eprintln!(
                        "rmrctl: {}: timed out after {}s ({now})",
                        plan.what,
                        limit.unwrap_or(0)
                    );
                    return exit::TIMEOUT;
                }
                if show && last_shown.elapsed() >= Duration::from_secs(1) {
                    eprint!("\r{}: {now}   ", plan.what);
                    last_shown = Instant::now();
                }
            }
        }
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(n: i32) -> WriteError {
        WriteError::Write(std::io::Error::from_raw_os_error(n))
    }

    fn plan(wait: Option<Option<u64>>) -> Plan {
        Plan {
            what: "leg add p/l".into(),
            writes: vec![Write {
                path: PathBuf::from("/nonexistent/add_sess"),
                content: "sessname=l path=ip:10.0.0.1".into(),
            }],
            wait: wait.map(|lim| {
                (
                    Wait::Gone {
                        dir: PathBuf::from("/nonexistent"),
                    },
                    lim,
                )
            }),
            retry: vec![104],
            ..Plan::default()
        }
    }

    #[test]
    fn a_retryable_refusal_is_retried_under_wait() {
        let mut calls = 0;
        let r = do_writes(
            &plan(Some(Some(60))),
            |_| {
                calls += 1;
                if calls < 3 {
                    Err(refused(104))
                } else {
                    Ok(())
                }
            },
            Instant::now(),
            Duration::from_millis(1),
        );
        assert_eq!((r, calls), (Ok(()), 3));
    }

    #[test]
    fn a_retryable_refusal_without_wait_or_past_the_limit_is_final() {
        for p in [plan(None), plan(Some(Some(0)))] {
            let mut calls = 0;
            let r = do_writes(
                &p,
                |_| {
                    calls += 1;
                    Err(refused(104))
                },
                Instant::now(),
                Duration::from_millis(1),
            );
            assert_eq!((r, calls), (Err(exit::REFUSED), 1));
        }
    }

    #[test]
    fn an_already_reached_goal_is_no_refusal() {
        let mut p = plan(None);
        p.already = vec![(16, "running already")];
        let mut calls = 0;
        let r = do_writes(
            &p,
            |_| {
                calls += 1;
                Err(refused(16))
            },
            Instant::now(),
            Duration::from_millis(1),
        );
        assert_eq!((r, calls), (Ok(()), 1));
    }

    #[test]
    fn other_refusals_are_final_under_wait() {
        let mut calls = 0;
        let r = do_writes(
            &plan(Some(None)),
            |_| {
                calls += 1;
                Err(refused(16))
            },
            Instant::now(),
            Duration::from_millis(1),
        );
        assert_eq!((r, calls), (Err(exit::REFUSED), 1));
    }

    #[test]
    fn quoting() {
        assert_eq!(
            shell_quote("poolname=p chunk_size=4096"),
            "'poolname=p chunk_size=4096'"
        );
        assert_eq!(
            shell_quote("/sys/class/rmr-client/pools/p/sessions/a@b/enable"),
            "/sys/class/rmr-client/pools/p/sessions/a@b/enable"
        );
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("1"), "1");
    }
}
