// SPDX-License-Identifier: GPL-2.0-or-later
//! `--wait` of the admin verbs against writable copies of the fixture trees: success,
//! timeout (exit 3) and a state that cannot reach the goal (exit 4).

mod common;

use common::{copy_fixture, fails, ok, until_reads};
use std::fs;
use std::time::Duration;

const P: &str = "ionos_pool";

#[test]
fn wait_for_a_leg_state() {
    let t = copy_fixture("healthy", "clt");
    let leg = "rmr-client/pools/ionos_pool/sessions/psrv0@stg-rmr1";
    // Already normal: returns at once.
    ok(&t, &["leg", "enable", P, "psrv0@stg-rmr1", "--wait"]);
    // Never gets there: timeout, exit 3, with the state seen.
    t.write(&format!("{leg}/state"), "created\n");
    let e = fails(&t, &["leg", "enable", P, "psrv0@stg-rmr1", "--wait=1"], 3);
    assert!(e.contains("timed out after 1s (state is created)"), "{e}");
    // Gets there while waiting.
    let state = t.class(&format!("{leg}/state"));
    let h = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        fs::write(state, "normal\n").unwrap();
    });
    ok(&t, &["leg", "enable", P, "psrv0@stg-rmr1", "--wait=30"]);
    h.join().unwrap();
    // Maintenance on waits for the flag, whatever the state.
    t.write(&format!("{leg}/state"), "failed\nMaintenance mode: 1\n");
    ok(
        &t,
        &["leg", "maintenance", P, "psrv0@stg-rmr1", "on", "--wait=5"],
    );
    // A removing leg cannot become normal: exit 4.
    t.write(&format!("{leg}/state"), "removing\n");
    let e = fails(&t, &["leg", "enable", P, "psrv0@stg-rmr1", "--wait=30"], 4);
    assert!(e.contains("the leg is removing"), "{e}");
}

#[test]
fn wait_for_a_leg_to_go() {
    let t = copy_fixture("healthy", "clt");
    let dir = t.class("rmr-client/pools/ionos_pool/sessions/psrv0@stg-rmr1");
    let e = fails(
        &t,
        &[
            "leg",
            "remove",
            P,
            "psrv0@stg-rmr1",
            "--mode",
            "delete",
            "--wait=1",
        ],
        3,
    );
    assert!(e.contains("still there, state normal"), "{e}");
    t.write(
        "rmr-client/pools/ionos_pool/sessions/psrv0@stg-rmr1/del_sess",
        "",
    );
    let d = dir.clone();
    let h = std::thread::spawn(move || {
        until_reads(&d.join("del_sess"), "mode=delete\n");
        fs::remove_dir_all(d).unwrap();
    });
    ok(
        &t,
        &[
            "leg",
            "remove",
            P,
            "psrv0@stg-rmr1",
            "--mode",
            "delete",
            "--wait=30",
        ],
    );
    h.join().unwrap();
    assert!(!dir.exists());
}

#[test]
fn wait_for_a_sync() {
    let t = copy_fixture("sync-in-progress", "stg1");
    let pool = "rmr-server/pools/ionos_pool";
    // The thread stops with chunks left: exit 4 with the count.
    let sync = t.class(&format!("{pool}/sync"));
    let s = sync.clone();
    let h = std::thread::spawn(move || {
        until_reads(&s, "start\n");
        fs::write(s, "stopped\n").unwrap();
    });
    let e = fails(&t, &["sync", "start", P, "--wait=30"], 4);
    h.join().unwrap();
    assert!(
        e.contains("stopped with 538/800 chunks still dirty for member 43"),
        "{e}"
    );
    // The thread finishes: the own map is clean.
    let summary = t.class(&format!("{pool}/map_summary"));
    let h = std::thread::spawn(move || {
        until_reads(&sync, "start\n");
        fs::write(
            summary,
            "member 43: [] 0/800 dirty\nmember 42: [] 0/800 dirty\n",
        )
        .unwrap();
        fs::write(sync, "stopped\n").unwrap();
    });
    // The fixture file holds what rmrctl wrote ("start") until the thread above writes
    // the end state, so the waiter polls a few times first.
    ok(&t, &["sync", "start", P, "--wait=30"]);
    h.join().unwrap();
}

#[test]
fn wait_for_an_assembled_leg() {
    // A leg added in assemble mode waits in reconnecting until every member's leg exists:
    // --wait ends there (or at normal), not only at normal.
    let t = copy_fixture("healthy", "clt");
    let leg = "rmr-client/pools/ionos_pool/sessions/psrv0@stg-rmr0";
    let args = [
        "leg",
        "add",
        P,
        "psrv0@stg-rmr0",
        "--path",
        "192.168.122.80",
        "--mode",
        "assemble",
        "--wait=1",
    ];
    t.write(&format!("{leg}/state"), "created\n");
    let e = fails(&t, &args, 3);
    assert!(e.contains("timed out after 1s (state is created)"), "{e}");
    t.write(&format!("{leg}/state"), "reconnecting\n");
    ok(&t, &args);
    t.write(&format!("{leg}/state"), "normal\n");
    ok(&t, &args);
    // --dry-run names both goals.
    let out = ok(&t, &[&["--dry-run"], &args[..]].concat());
    assert!(out.contains("reads 'reconnecting' or 'normal'"), "{out}");
}
