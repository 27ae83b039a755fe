// SPDX-License-Identifier: GPL-2.0-or-later
//! `rmrctl watch`: frames, the ANSI clear, and highlighting of the lines that changed.

mod common;

use common::{cmd, copy_fixture, run};
use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;

const CLEAR: &str = "\x1b[H\x1b[2J";
const INVERSE: &str = "\x1b[7m";

#[test]
fn bounded_frames_without_changes() {
    let t = copy_fixture("healthy", "stg0");
    let r = run(&[
        "--sysfs",
        &t.s(),
        "watch",
        "--interval",
        "0.1",
        "--count",
        "3",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.matches(CLEAR).count(), 3);
    assert!(
        !r.stdout.contains(INVERSE),
        "nothing changed: {:?}",
        r.stdout
    );
    assert!(r
        .stdout
        .contains("server pool ionos_pool  member:42  normal  sync:stopped"));
}

#[test]
fn a_changed_line_is_highlighted() {
    let t = copy_fixture("healthy", "clt");
    let s = t.s();
    let mut child = cmd(&["--sysfs", &s, "watch", "--interval", "2", "--count", "2"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    // Read the first frame up to its last line, then change the leg's state.
    let mut first = String::new();
    loop {
        let mut l = String::new();
        assert!(
            out.read_line(&mut l).unwrap() > 0,
            "watch ended early: {first}"
        );
        first.push_str(&l);
        if l.starts_with("device brmr0") {
            break;
        }
    }
    t.write(
        "rmr-client/pools/ionos_pool/sessions/psrv0@stg-rmr1/state",
        "failed\n",
    );
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert!(child.wait().unwrap().success());
    assert!(!first.contains(INVERSE), "{first:?}");
    assert!(rest.starts_with(CLEAR), "{rest:?}");
    // The failed leg's line is in inverse video; the other leg's is not.
    assert!(
        rest.contains(&format!("{INVERSE}  leg psrv0@stg-rmr1  member:43  failed")),
        "{rest:?}"
    );
    assert!(
        rest.contains("\n  leg psrv0@stg-rmr0  member:42  normal"),
        "{rest:?}"
    );
}
