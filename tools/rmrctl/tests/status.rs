// SPDX-License-Identifier: GPL-2.0-or-later
//! `rmrctl status` against the fixture trees: golden human and JSON output, JSON checked
//! against the files it was read from, and odd or missing content.

mod common;

use common::jsonv::{self, J};
use common::{copy_fixture, fixture, golden, run, Tmp};
use std::fs;
use std::path::Path;

const SCENARIOS: &[&str] = &[
    "healthy",
    "leg-failed",
    "sync-in-progress",
    "maintenance",
    "older-modules",
];
const HOSTS: &[&str] = &["clt", "stg0", "stg1"];

#[test]
fn human_and_json_match_the_goldens() {
    for s in SCENARIOS {
        for h in HOSTS {
            let root = fixture(s, h);
            let r = run(&["--sysfs", &root, "status"]);
            assert_eq!(r.code, 0, "{s}/{h}: {}", r.stderr);
            assert!(r.stderr.is_empty(), "{s}/{h}: {}", r.stderr);
            golden(&format!("{s}-{h}.txt"), &r.stdout);
            let r = run(&["status", "--json", "--sysfs", &root]);
            assert_eq!(r.code, 0, "{s}/{h}: {}", r.stderr);
            golden(&format!("{s}-{h}.json"), &r.stdout);
        }
    }
}

fn text(p: &Path) -> Option<String> {
    fs::read_to_string(p).ok()
}

fn first_line(p: &Path) -> Option<String> {
    text(p).and_then(|t| t.lines().next().map(str::to_string))
}

fn dirs(p: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(p)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.file_type().unwrap().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn find<'a>(arr: &'a J, key: &str, name: &str) -> &'a J {
    arr.arr()
        .iter()
        .find(|x| x.get(key).str() == Some(name))
        .unwrap_or_else(|| panic!("{name} missing from JSON"))
}

/// Every object and attribute of the tree is in the JSON with the value of its file.
fn check_against_sysfs(root: &Path, j: &J) {
    assert_eq!(j.get("version").num(), Some(1));
    let c = root.join("class");
    let cp = c.join("rmr-client/pools");
    assert_eq!(j.get("client_pools").arr().len(), dirs(&cp).len());
    for p in dirs(&cp) {
        let jp = find(j.get("client_pools"), "name", &p);
        let sd = cp.join(&p).join("sessions");
        assert_eq!(jp.get("legs").arr().len(), dirs(&sd).len());
        for l in dirs(&sd) {
            let jl = find(jp.get("legs"), "name", &l);
            let st = text(&sd.join(&l).join("state")).unwrap();
            assert_eq!(jl.get("state").str(), st.lines().next());
            assert_eq!(
                jl.get("maintenance"),
                &J::Bool(st.contains("Maintenance mode: 1"))
            );
            let m = first_line(&sd.join(&l).join("member_id")).unwrap();
            assert_eq!(jl.get("member_id").num().map(|v| v.to_string()), Some(m));
        }
    }
    let sp = c.join("rmr-server/pools");
    assert_eq!(j.get("server_pools").arr().len(), dirs(&sp).len());
    for p in dirs(&sp) {
        let jp = find(j.get("server_pools"), "name", &p);
        let d = sp.join(&p);
        assert_eq!(
            jp.get("state").str(),
            first_line(&d.join("state")).as_deref()
        );
        assert_eq!(jp.get("sync").str(), first_line(&d.join("sync")).as_deref());
        let summary = text(&d.join("map_summary")).unwrap();
        let maps = jp.get("maps").arr();
        assert_eq!(maps.len(), summary.lines().count());
        for (line, m) in summary.lines().zip(maps) {
            // Rebuild the kernel's line from the JSON: it must be the same text.
            let chunks: Vec<String> = m
                .get("chunks")
                .arr()
                .iter()
                .map(|c| c.num().unwrap().to_string())
                .collect();
            let rebuilt = format!(
                "member {}: [{}] {}/{} dirty",
                m.get("member_id").num().unwrap(),
                chunks.join(" "),
                m.get("dirty").num().unwrap(),
                m.get("total").num().unwrap()
            );
            assert_eq!(rebuilt, line);
        }
    }
    let st = c.join("brmr-server/stores");
    assert_eq!(j.get("stores").arr().len(), dirs(&st).len());
    for p in dirs(&st) {
        let js = find(j.get("stores"), "pool", &p);
        let d = st.join(&p);
        let flags: Vec<&str> = js
            .get("state")
            .arr()
            .iter()
            .map(|x| x.str().unwrap())
            .collect();
        assert_eq!(flags.join("\n") + "\n", text(&d.join("state")).unwrap());
        assert_eq!(
            js.get("device").str(),
            first_line(&d.join("bdev_name")).as_deref()
        );
        for k in ["mapped_size", "dev_size"] {
            assert_eq!(
                js.get(k).num().map(|v| v.to_string()),
                first_line(&d.join(k))
            );
        }
    }
    let dv = c.join("brmr-client/ctl/devices");
    assert_eq!(j.get("devices").arr().len(), dirs(&dv).len());
    for n in dirs(&dv) {
        let jd = find(j.get("devices"), "name", &n);
        let d = dv.join(&n);
        assert_eq!(
            jd.get("state").str(),
            first_line(&d.join("state")).as_deref()
        );
        assert_eq!(
            jd.get("size").num().map(|v| v.to_string()),
            first_line(&d.join("block/size"))
        );
        let stats = text(&d.join("stats")).unwrap();
        assert_eq!(jd.get("legs").arr().len() + 1, stats.lines().count());
    }
}

#[test]
fn json_carries_what_sysfs_holds() {
    for s in SCENARIOS {
        for h in HOSTS {
            let root = fixture(s, h);
            let r = run(&["--sysfs", &root, "status", "--json"]);
            let j = jsonv::parse(&r.stdout).unwrap_or_else(|e| panic!("{s}/{h}: {e}"));
            check_against_sysfs(&common::manifest().join(&root), &j);
        }
    }
}

#[test]
fn failed_leg_and_maintenance_are_visible() {
    let r = run(&["--sysfs", &fixture("leg-failed", "clt"), "status"]);
    assert!(
        r.stdout.contains("leg psrv0@stg-rmr1  member:43  failed"),
        "{}",
        r.stdout
    );
    let r = run(&["--sysfs", &fixture("maintenance", "clt"), "status"]);
    assert!(
        r.stdout.contains("reconnecting  maintenance"),
        "{}",
        r.stdout
    );
    let r = run(&[
        "--sysfs",
        &fixture("maintenance", "stg1"),
        "status",
        "--json",
    ]);
    let j = jsonv::parse(&r.stdout).unwrap();
    let p = j.get("server_pools").at(0);
    assert_eq!(p.get("state").str(), Some("no_io"));
    assert_eq!(p.get("maintenance"), &J::Bool(true));
    // Captured while B's first sync ran: the kernel's progress, and B's own map shrinking.
    let r = run(&["--sysfs", &fixture("sync-in-progress", "stg1"), "status"]);
    assert!(r.stdout.contains("sync:running"), "{}", r.stdout);
    assert!(r.stdout.contains("resync  done:288/800  36.0%"), "{}", r.stdout);
    assert!(r.stdout.contains("dirty:538/800  own"), "{}", r.stdout);
    // Modules without sync_progress: the left count comes from the own map.
    let r = run(&["--sysfs", &fixture("older-modules", "stg1"), "status"]);
    assert!(r.stdout.contains("resync  left:280/800"), "{}", r.stdout);
}

#[test]
fn missing_attributes_are_dashes_and_nulls() {
    let t = copy_fixture("healthy", "stg0");
    for f in [
        "rmr-server/pools/ionos_pool/state",
        "rmr-server/pools/ionos_pool/member_id",
        "rmr-server/pools/ionos_pool/map_summary",
        "rmr-server/pools/ionos_pool/sync_progress",
        "rmr-client/pools/ionos_pool/sessions/stg-rmr0@stg-rmr1/member_id",
        "rmr-client/pools/ionos_pool/sessions/stg-rmr0@stg-rmr1/state",
        "brmr-server/stores/ionos_pool/dev_size",
        "brmr-server/stores/ionos_pool/state",
    ] {
        fs::remove_file(t.class(f)).unwrap();
    }
    let r = run(&["--sysfs", &t.s(), "status"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("leg stg-rmr0@stg-rmr1  member:-  -"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("server pool ionos_pool  member:-  -  sync:stopped"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("maps -"), "{}", r.stdout);
    assert!(r.stdout.contains("dev_size:-"), "{}", r.stdout);
    let r = run(&["--sysfs", &t.s(), "status", "--json"]);
    let j = jsonv::parse(&r.stdout).unwrap();
    let sp = j.get("server_pools").at(0);
    for k in [
        "state",
        "maintenance",
        "member_id",
        "maps",
        "own_dirty",
        "sync_progress",
    ] {
        assert_eq!(sp.get(k), &J::Null, "{k}");
    }
    let leg = j.get("client_pools").at(0).get("legs").at(0);
    for k in ["state", "maintenance", "member_id"] {
        assert_eq!(leg.get(k), &J::Null, "{k}");
    }
    let st = j.get("stores").at(0);
    for k in ["dev_size", "state", "open", "mapped"] {
        assert_eq!(st.get(k), &J::Null, "{k}");
    }
}

#[test]
fn odd_content_never_panics_and_json_stays_valid() {
    let t = Tmp::new();
    let weird = "we\"ird\\pool'$x";
    let p = format!("rmr-server/pools/{weird}");
    t.write(
        &format!("{p}/state"),
        "nor\u{1b}[2Jmal\nMaintenance mode: 1\n",
    );
    t.write(&format!("{p}/member_id"), "99999999999999999999999\n");
    t.write(&format!("{p}/sync"), "\n");
    t.write(
        &format!("{p}/map_summary"),
        "member 43: [1 2 ...] 9/800 dirty\nmember x: [] 0/1 dirty\nmember 5: [1 2\n\u{0}\u{7}",
    );
    t.write(&format!("{p}/sync_progress"), "lots\n");
    let c = format!("rmr-client/pools/{weird}/sessions/a\tb");
    t.write(&format!("{c}/state"), "");
    t.write(&format!("{c}/member_id"), "-1");
    t.write(
        "brmr-client/ctl/devices/brmr0/stats",
        "garbage\ntotal reads x\n",
    );
    t.write("brmr-client/ctl/devices/brmr0/state", "\u{7f}\n");
    fs::write(
        t.class("brmr-client/ctl/devices/brmr0/block"),
        b"not a directory",
    )
    .unwrap();
    // Invalid UTF-8.
    fs::create_dir_all(t.class("brmr-server/stores/s")).unwrap();
    fs::write(t.class("brmr-server/stores/s/bdev_name"), b"sd\xff\xfe\n").unwrap();
    fs::write(t.class("brmr-server/stores/s/mapped_size"), b"\xff").unwrap();

    let r = run(&["--sysfs", &t.s(), "status"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        !r.stdout.contains('\u{1b}'),
        "escape sequence leaked: {:?}",
        r.stdout
    );
    assert!(r.stdout.contains("[1 2 ...]"), "{}", r.stdout);
    let r = run(&["--sysfs", &t.s(), "status", "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let j = jsonv::parse(&r.stdout).unwrap_or_else(|e| panic!("{e}\n{}", r.stdout));
    let sp = j.get("server_pools").at(0);
    assert_eq!(sp.get("name").str(), Some(weird));
    assert_eq!(sp.get("state").str(), Some("nor\u{1b}[2Jmal"));
    assert_eq!(sp.get("member_id"), &J::Null);
    assert_eq!(sp.get("sync"), &J::Null);
    assert_eq!(sp.get("sync_progress"), &J::Null);
    let maps = sp.get("maps").arr();
    assert_eq!(maps.len(), 1);
    assert_eq!(maps[0].get("chunks_truncated"), &J::Bool(true));
    let leg = j.get("client_pools").at(0).get("legs").at(0);
    assert_eq!(leg.get("name").str(), Some("a\tb"));
    assert_eq!(leg.get("state"), &J::Null);
    assert_eq!(leg.get("member_id"), &J::Null);
    let d = j.get("devices").at(0);
    assert_eq!(d.get("legs").arr().len(), 0);
    assert_eq!(d.get("total"), &J::Null);
    assert_eq!(d.get("size"), &J::Null);
    let s = j.get("stores").at(0);
    assert_eq!(s.get("device").str(), Some("sd\u{fffd}\u{fffd}"));
    assert_eq!(s.get("mapped_size"), &J::Null);
}

#[test]
fn empty_and_absent_roots() {
    let t = Tmp::new();
    let r = run(&["--sysfs", &t.s(), "status"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("no rmr or brmr class"), "{}", r.stdout);
    let r = run(&["--sysfs", &t.s(), "status", "--json"]);
    let j = jsonv::parse(&r.stdout).unwrap();
    assert_eq!(j.get("classes").get("rmr_client"), &J::Bool(false));
    assert_eq!(j.get("client_pools").arr().len(), 0);
    // Classes loaded, nothing configured.
    for c in ["rmr-client/pools", "rmr-server/pools"] {
        fs::create_dir_all(t.class(c)).unwrap();
    }
    let r = run(&["--sysfs", &t.s(), "status"]);
    assert_eq!(r.stdout, "no pools, stores or devices\n");
    let r = run(&["--sysfs", "/nonexistent/rmrctl-root", "status"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("not a directory"), "{}", r.stderr);
}

#[test]
fn class_links_and_files_are_not_objects() {
    let t = copy_fixture("healthy", "stg0");
    // Real sysfs has `subsystem` links and `uevent` files beside the object directories.
    std::os::unix::fs::symlink(t.class("rmr-client"), t.class("rmr-client/pools/subsystem"))
        .unwrap();
    let r = run(&["--sysfs", &t.s(), "status", "--json"]);
    let j = jsonv::parse(&r.stdout).unwrap();
    assert_eq!(j.get("client_pools").arr().len(), 1);
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["status", "--bogus"][..],
        &["status", "extra"],
        &["frobnicate"],
        &["leg"],
        &["leg", "fly"],
        &["--sysfs"],
        &["watch", "--interval", "0"],
        &["watch", "--count", "0"],
    ] {
        let r = run(args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("--help"), "{args:?}: {}", r.stderr);
    }
    let r = run(&[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("Usage: rmrctl"));
}

#[test]
fn help_texts() {
    let r = run(&["--help"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("Exit codes:"));
    assert!(r.stdout.contains("Examples"));
    for topic in ["pool", "leg", "store", "sync", "device", "status", "watch"] {
        let r = run(&[topic, "--help"]);
        assert_eq!(r.code, 0, "{topic}");
        assert!(
            r.stdout.contains(&format!("rmrctl {topic}")),
            "{topic}: {}",
            r.stdout
        );
        assert!(r.stdout.contains("Example"), "{topic}");
    }
    let r = run(&["leg", "add", "--help"]);
    assert!(r.stdout.contains("rmrctl leg add POOL LEG --path"));
    let r = run(&["help", "store"]);
    assert!(r.stdout.contains("rmrctl store create"));
}
