// SPDX-License-Identifier: GPL-2.0-or-later
//! Helpers of the rmrctl integration tests: running the binary, temporary copies of fixture
//! trees, golden files and a small JSON reader to check `status --json`.

#![allow(dead_code)]

pub mod jsonv;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// The crate directory: fixtures and goldens are relative to it.
pub fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `tests/fixtures/<scenario>/<host>`, relative to the crate directory.
pub fn fixture(scenario: &str, host: &str) -> String {
    format!("tests/fixtures/{scenario}/{host}")
}

/// Result of one run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

fn finish(o: Output) -> Run {
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// A command running rmrctl from the crate directory.
pub fn cmd(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rmrctl"));
    c.current_dir(manifest()).args(args);
    c
}

/// Runs rmrctl with `args` from the crate directory.
pub fn run(args: &[&str]) -> Run {
    finish(cmd(args).output().expect("run rmrctl"))
}

/// A temporary directory removed on drop.
pub struct Tmp(pub PathBuf);

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

impl Tmp {
    pub fn new() -> Tmp {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "rmrctl-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        Tmp(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn s(&self) -> String {
        self.0.display().to_string()
    }

    /// `<tmp>/class/<rel>`.
    pub fn class(&self, rel: &str) -> PathBuf {
        self.0.join("class").join(rel)
    }

    pub fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.class(rel)).unwrap()
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.class(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let t = e.file_type().unwrap();
        let dst = to.join(e.file_name());
        if t.is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            fs::copy(e.path(), dst).unwrap();
        }
    }
}

/// A writable copy of a fixture host tree.
pub fn copy_fixture(scenario: &str, host: &str) -> Tmp {
    let t = Tmp::new();
    copy_dir(&manifest().join(fixture(scenario, host)), t.path());
    t
}

/// Compares `actual` with `tests/golden/<name>`; `RMRCTL_BLESS=1` rewrites the file.
pub fn golden(name: &str, actual: &str) {
    let p = manifest().join("tests/golden").join(name);
    if std::env::var_os("RMRCTL_BLESS").is_some() {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, actual).unwrap();
        return;
    }
    let want = fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e} (run with RMRCTL_BLESS=1 to create)", p.display()));
    assert!(
        want == actual,
        "{} differs (RMRCTL_BLESS=1 rewrites it)\n--- want\n{want}\n--- got\n{actual}",
        p.display()
    );
}

/// Waits until the file `p` reads `want` (written by rmrctl), at most 30 s.
pub fn until_reads(p: &std::path::Path, want: &str) {
    for _ in 0..300 {
        if fs::read_to_string(p).is_ok_and(|t| t == want) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{} never read {want:?}", p.display());
}

/// Runs a verb on `t` and asserts success.
pub fn ok(t: &Tmp, args: &[&str]) -> String {
    let s = t.s();
    let mut a = vec!["--sysfs", &s[..]];
    a.extend_from_slice(args);
    let r = run(&a);
    assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
    assert!(r.stderr.is_empty(), "{args:?}: {}", r.stderr);
    r.stdout
}

pub fn fails(t: &Tmp, args: &[&str], code: i32) -> String {
    let s = t.s();
    let mut a = vec!["--sysfs", &s[..]];
    a.extend_from_slice(args);
    let r = run(&a);
    assert_eq!(r.code, code, "{args:?}: {}{}", r.stdout, r.stderr);
    r.stderr
}
