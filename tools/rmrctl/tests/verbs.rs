// SPDX-License-Identifier: GPL-2.0-or-later
//! The admin verbs against writable copies of the fixture trees: the right file gets the
//! right content, refusals are reported with the object and the errno, `--dry-run` writes
//! nothing.

mod common;

use common::{copy_fixture, fails, ok, Tmp};
use std::fs;

const P: &str = "ionos_pool";

#[test]
fn every_verb_writes_its_file() {
    let clt = copy_fixture("healthy", "clt");
    let stg = copy_fixture("healthy", "stg0");
    let leg = "rmr-client/pools/ionos_pool/sessions/psrv0@stg-rmr1";
    let cases: &[(&Tmp, &[&str], &str, &str)] = &[
        (
            &clt,
            &["pool", "join", P, "--chunk-size", "131072"],
            "rmr-client/ctl/join_pool",
            "poolname=ionos_pool chunk_size=131072\n",
        ),
        (
            &stg,
            &[
                "pool",
                "join",
                P,
                "--chunk-size=131072",
                "--sync",
                "--queue-depth",
                "128",
            ],
            "rmr-client/ctl/join_pool",
            "poolname=ionos_pool chunk_size=131072 sync=y queue_depth=128\n",
        ),
        (
            &stg,
            &["pool", "join", P, "--member-id", "42"],
            "rmr-server/ctl/join_pool",
            "poolname=ionos_pool member_id=42\n",
        ),
        (
            &clt,
            &["pool", "leave", P],
            "rmr-client/pools/ionos_pool/leave_pool",
            "1\n",
        ),
        (
            &stg,
            &["pool", "leave", P, "--server"],
            "rmr-server/pools/ionos_pool/leave_pool",
            "1\n",
        ),
        (
            &stg,
            &["pool", "leave", P, "--client"],
            "rmr-client/pools/ionos_pool/leave_pool",
            "1\n",
        ),
        (
            &stg,
            &["pool", "attach", P],
            "rmr-server/pools/ionos_pool/add_clt",
            "ionos_pool\n",
        ),
        (
            &stg,
            &["pool", "attach", P, "--sync-pool", "other"],
            "rmr-server/pools/ionos_pool/add_clt",
            "other\n",
        ),
        (
            &clt,
            &["pool", "enable", P],
            "rmr-client/pools/ionos_pool/pool_enable",
            "1\n",
        ),
        (
            &clt,
            &[
                "leg",
                "add",
                P,
                "psrv0@stg-rmr2",
                "--path",
                "192.168.122.88",
                "--mode",
                "create",
            ],
            "rmr-client/pools/ionos_pool/add_sess",
            "sessname=psrv0@stg-rmr2 path=ip:192.168.122.88 mode=create\n",
        ),
        (
            &stg,
            &[
                "leg",
                "add",
                P,
                "stg-rmr0@stg-rmr2",
                "--path",
                "ip:192.168.122.88",
            ],
            "rmr-client/pools/ionos_pool/add_sess",
            "sessname=stg-rmr0@stg-rmr2 path=ip:192.168.122.88\n",
        ),
        (
            &clt,
            &["leg", "enable", P, "psrv0@stg-rmr1"],
            &format!("{leg}/enable"),
            "1\n",
        ),
        (
            &clt,
            &["leg", "maintenance", P, "psrv0@stg-rmr1", "on"],
            &format!("{leg}/enable"),
            "0\n",
        ),
        (
            &clt,
            &["leg", "maintenance", P, "psrv0@stg-rmr1", "off"],
            &format!("{leg}/enable"),
            "1\n",
        ),
        (
            &clt,
            &[
                "leg",
                "remove",
                P,
                "psrv0@stg-rmr1",
                "--mode",
                "disassemble",
            ],
            &format!("{leg}/del_sess"),
            "mode=disassemble\n",
        ),
        (
            &clt,
            &[
                "leg",
                "reconnect",
                P,
                "psrv0@stg-rmr1",
                "--path",
                "192.168.122.84",
            ],
            &format!("{leg}/reconnect"),
            "path=ip:192.168.122.84\n",
        ),
        (
            &stg,
            &[
                "store",
                "create",
                P,
                "--device",
                "/dev/sda",
                "--mapped-size",
                "204800",
            ],
            "brmr-server/ctl/create_store",
            "device=/dev/sda pool=ionos_pool mapped_size=204800\n",
        ),
        (
            &stg,
            &[
                "store",
                "add",
                P,
                "--device",
                "/dev/sda",
                "--mapped-size",
                "204800",
            ],
            "brmr-server/ctl/add_store",
            "device=/dev/sda pool=ionos_pool mapped_size=204800\n",
        ),
        (
            &stg,
            &[
                "store",
                "add",
                P,
                "--device",
                "/dev/sdb",
                "--mapped-size",
                "8",
                "--mode",
                "replace",
            ],
            "brmr-server/ctl/add_store",
            "device=/dev/sdb pool=ionos_pool mapped_size=8 mode=replace\n",
        ),
        (
            &stg,
            &["store", "remove", P],
            "brmr-server/stores/ionos_pool/remove_store",
            "1\n",
        ),
        (
            &stg,
            &["store", "delete", P],
            "brmr-server/stores/ionos_pool/delete_store",
            "1\n",
        ),
        (
            &stg,
            &["sync", "start", P],
            "rmr-server/pools/ionos_pool/sync",
            "start\n",
        ),
        (
            &stg,
            &["sync", "stop", P],
            "rmr-server/pools/ionos_pool/sync",
            "stop\n",
        ),
        (
            &clt,
            &["device", "map", P, "--size", "204800"],
            "brmr-client/ctl/map_device",
            "pool=ionos_pool size=204800\n",
        ),
        (
            &clt,
            &["device", "unmap", "brmr0"],
            "brmr-client/ctl/devices/brmr0/unmap_device",
            "1\n",
        ),
        (
            &clt,
            &["device", "unmap", "/dev/brmr0"],
            "brmr-client/ctl/devices/brmr0/unmap_device",
            "1\n",
        ),
        // The pool is found from the device's stats (its legs are the pool's legs).
        (
            &clt,
            &["device", "unmap", P],
            "brmr-client/ctl/devices/brmr0/unmap_device",
            "1\n",
        ),
    ];
    for (t, args, file, want) in cases {
        t.write(file, "");
        ok(t, args);
        assert_eq!(&t.read(file), want, "{args:?}");
    }
}

#[test]
fn dry_run_prints_and_writes_nothing() {
    let t = copy_fixture("healthy", "clt");
    let out = ok(
        &t,
        &[
            "--dry-run",
            "leg",
            "add",
            P,
            "psrv0@stg-rmr2",
            "--path",
            "192.168.122.88",
            "--mode",
            "create",
            "--wait=5",
        ],
    );
    let add = t.class("rmr-client/pools/ionos_pool/add_sess");
    assert_eq!(
        out,
        format!(
            "echo 'sessname=psrv0@stg-rmr2 path=ip:192.168.122.88 mode=create' > {}\n\
             # then wait up to 5s until {} reads 'created'\n",
            add.display(),
            t.class("rmr-client/pools/ionos_pool/sessions/psrv0@stg-rmr2/state")
                .display()
        )
    );
    assert_eq!(fs::read_to_string(add).unwrap(), "");
    // Also for objects that do not exist: nothing is opened.
    let out = ok(&t, &["-n", "sync", "start", "nope"]);
    assert!(out.starts_with("echo start > "), "{out}");
}

#[test]
fn bad_values_are_usage_errors_and_write_nothing() {
    let t = copy_fixture("healthy", "clt");
    let cases: &[(&[&str], &str)] = &[
        (
            &["pool", "join", P, "--chunk-size", "1000"],
            "chunk_size (a power of two",
        ),
        (
            &[
                "pool",
                "join",
                P,
                "--chunk-size",
                "131072",
                "--queue-depth",
                "513",
            ],
            "queue_depth (1..512)",
        ),
        (&["pool", "join", P, "--member-id", "0"], "member_id"),
        (
            &["pool", "join", P, "--member-id", "1", "--sync"],
            "cannot be combined",
        ),
        (&["pool", "join", P], "--chunk-size BYTES"),
        (
            &["pool", "join", "a/b", "--member-id", "1"],
            "invalid pool name",
        ),
        (
            &["pool", "join", "..", "--member-id", "1"],
            "invalid pool name",
        ),
        (
            &[
                "leg",
                "add",
                P,
                "x",
                "--path",
                "10.0.0.256",
                "--mode",
                "create",
            ],
            "path (ip:",
        ),
        (
            &[
                "leg", "add", P, "x", "--path", "10.0.0.1", "--mode", "bogus",
            ],
            "invalid value for mode",
        ),
        (&["leg", "add", P, "x"], "--path is required"),
        (
            &["leg", "maintenance", P, "x", "maybe"],
            "expected on or off",
        ),
        (&["leg", "remove", P, "x"], "--mode is required"),
        (
            &["leg", "remove", P, "x", "--mode", "nuke"],
            "invalid value for mode",
        ),
        (
            &["leg", "enable", P, "x", "--wait=soon"],
            "not a decimal number",
        ),
        (
            &[
                "store",
                "create",
                P,
                "--device",
                "sda",
                "--mapped-size",
                "1",
            ],
            "device (an absolute path",
        ),
        (
            &[
                "store",
                "create",
                P,
                "--device",
                "/dev/sda",
                "--mapped-size",
                "0",
            ],
            "mapped_size",
        ),
        (
            &[
                "store",
                "create",
                P,
                "--device",
                "/dev/sda",
                "--mapped-size",
                "1",
                "--mode",
                "add",
            ],
            "unknown option --mode",
        ),
        (&["device", "map", P, "--size", "0"], "size"),
        (&["device", "unmap", "sda"], "neither brmrN nor a pool"),
        (&["sync", "start"], "missing POOL"),
        (&["pool", "leave", P, "--client", "--server"], "not both"),
    ];
    for (args, want) in cases {
        let e = fails(&t, args, 2);
        assert!(e.contains(want), "{args:?}: {e}");
    }
    // Nothing was written anywhere.
    for f in [
        "rmr-client/ctl/join_pool",
        "rmr-client/pools/ionos_pool/add_sess",
        "brmr-client/ctl/map_device",
    ] {
        assert_eq!(t.read(f), "", "{f}");
    }
}

#[test]
fn missing_objects_are_named() {
    let t = copy_fixture("healthy", "clt");
    let e = fails(&t, &["leg", "enable", P, "psrv0@stg-rmr9"], 1);
    assert_eq!(e, "rmrctl: leg enable ionos_pool/psrv0@stg-rmr9: ENOENT (2): client pool ionos_pool has no leg psrv0@stg-rmr9\n");
    let e = fails(&t, &["leg", "enable", "nopool", "x"], 1);
    assert!(e.contains("ENOENT (2): no client pool nopool"), "{e}");
    let e = fails(&t, &["sync", "start", P], 1);
    assert!(
        e.contains("sync start ionos_pool: ENOENT (2): no server pool ionos_pool"),
        "{e}"
    );
    let e = fails(&t, &["store", "remove", P], 1);
    assert!(
        e.contains("no store of pool ionos_pool on this host"),
        "{e}"
    );
    let e = fails(&t, &["device", "unmap", "brmr7"], 1);
    assert!(e.contains("ENOENT (2): no mapped device brmr7"), "{e}");
    // The attribute alone is missing: an older kernel.
    fs::remove_file(t.class("rmr-client/pools/ionos_pool/pool_enable")).unwrap();
    let e = fails(&t, &["pool", "enable", P], 1);
    assert!(
        e.contains("pool_enable does not exist (a kernel without this attribute?)"),
        "{e}"
    );
    // The module is not loaded.
    let empty = Tmp::new();
    let e = fails(&empty, &["pool", "join", P, "--member-id", "42"], 1);
    assert!(
        e.contains("no rmr-server class under") && e.contains("is rmr.ko loaded?"),
        "{e}"
    );
}

#[test]
fn refusals_carry_the_errno_and_its_meaning() {
    let t = copy_fixture("healthy", "clt");
    // Writes to /dev/full fail with ENOSPC: a write-time refusal, as the kernel gives.
    let add = t.class("rmr-client/pools/ionos_pool/add_sess");
    fs::remove_file(&add).unwrap();
    std::os::unix::fs::symlink("/dev/full", &add).unwrap();
    let e = fails(
        &t,
        &[
            "leg",
            "add",
            P,
            "psrv0@stg-rmr2",
            "--path",
            "10.0.0.1",
            "--mode",
            "create",
        ],
        1,
    );
    let mut lines = e.lines();
    assert_eq!(
        lines.next(),
        Some("rmrctl: leg add ionos_pool/psrv0@stg-rmr2: ENOSPC (28): the pool already has 4 legs")
    );
    assert_eq!(
        lines.next(),
        Some(&format!(
            "rmrctl: the kernel refused 'sessname=psrv0@stg-rmr2 path=ip:10.0.0.1 mode=create' written to {} (details: dmesg | tail)",
            add.display()
        )[..])
    );
    // A verb without a specific meaning for that errno gets the generic one.
    let en = t.class("rmr-client/pools/ionos_pool/pool_enable");
    fs::remove_file(&en).unwrap();
    std::os::unix::fs::symlink("/dev/full", &en).unwrap();
    let e = fails(&t, &["pool", "enable", P], 1);
    assert!(
        e.starts_with("rmrctl: pool enable ionos_pool: ENOSPC (28): no space left"),
        "{e}"
    );
    // An attribute that is a directory: EISDIR at open.
    let en = t.class("rmr-client/pools/ionos_pool/sessions/psrv0@stg-rmr1/enable");
    fs::remove_file(&en).unwrap();
    fs::create_dir(&en).unwrap();
    let e = fails(&t, &["leg", "enable", P, "psrv0@stg-rmr1"], 1);
    assert!(
        e.starts_with("rmrctl: leg enable ionos_pool/psrv0@stg-rmr1: EISDIR (21): is a directory"),
        "{e}"
    );
}

#[test]
fn pool_leave_needs_a_side_when_both_exist() {
    let t = copy_fixture("healthy", "stg0");
    let e = fails(&t, &["pool", "leave", P], 2);
    assert!(e.contains("say --client or --server"), "{e}");
    // Only the server pool: no flag needed.
    fs::remove_dir_all(t.class("rmr-client/pools/ionos_pool")).unwrap();
    ok(&t, &["pool", "leave", P]);
    assert_eq!(t.read("rmr-server/pools/ionos_pool/leave_pool"), "1\n");
}
