// SPDX-License-Identifier: GPL-2.0-or-later
//! `--help` texts: global, per noun and per verb, with examples.

/// `rmrctl --help`.
pub const GLOBAL: &str = "\
rmrctl - administer rmr/brmr (replicated block devices over RDMA) through sysfs

Usage: rmrctl [--sysfs DIR] [--dry-run] COMMAND [ARGS...]

Show:
  status [--json]                       everything rmr and brmr hold on this host
  watch [--interval SECS] [--count N]   redraw the status, changed lines highlighted

Admin verbs (SPEC 12; each writes the sysfs files of Documentation/ABI):
  pool join|leave|attach|enable         rmr client and server pools
  leg add|enable|maintenance|remove|reconnect
                                        legs of a client pool (one per storage node)
  store create|add|remove|delete        brmr stores (backing disks) on storage nodes
  sync start|stop                       resync of a storage node's missing chunks
  device map|unmap                      /dev/brmrN on the compute client

Global options (anywhere on the line):
  --sysfs DIR    read and write DIR/class/... instead of /sys/class/... (tests, captures)
  --dry-run, -n  print the writes (as shell commands) instead of doing them
  -h, --help     this text; 'rmrctl NOUN --help' and 'rmrctl NOUN VERB --help' for more

Exit codes:
  0  success
  1  the kernel refused a write (errno explained), or the object does not exist
  2  usage error: bad command line or value; nothing was written
  3  --wait timed out
  4  --wait: the object reached a state from which the goal cannot be reached
     (leg gone or removing, sync stopped with dirty chunks left)

Examples (the bring-up of SPEC 12.1; P = compute client, A/B = storage nodes):
  A: rmrctl pool join ionos_pool --member-id 42
  A: rmrctl store create ionos_pool --device /dev/sda --mapped-size 204800
  P: rmrctl pool join ionos_pool --chunk-size 131072
  P: rmrctl leg add ionos_pool psrv0@stg-rmr0 --path 192.168.122.80 --mode create --wait
  P: rmrctl leg enable ionos_pool psrv0@stg-rmr0 --wait
  A: rmrctl pool join ionos_pool --chunk-size 131072 --sync
  A: rmrctl leg add ionos_pool stg-rmr0@stg-rmr1 --path 192.168.122.84 --wait
  A: rmrctl pool attach ionos_pool
  B: rmrctl sync start ionos_pool --wait=600
  P: rmrctl device map ionos_pool --size 204800
  rmrctl status --json | jq '.server_pools[].maps'
";

const STATUS: &str = "\
Usage: rmrctl status [--json]

Shows client pools with their legs (state, maintenance, member, IO counters of the mapping
device), server pools (state, member, sync thread, dirty map per member, resync progress),
stores (flags, disk, mapped_size, dev_size) and mapped devices. A missing attribute is '-'
(JSON null). --json prints the versioned document of Documentation/rmrctl-json.md.

Examples:
  rmrctl status
  rmrctl status --json
  rmrctl --sysfs /tmp/capture status
";

const WATCH: &str = "\
Usage: rmrctl watch [--interval SECS] [--count N]

Redraws the status every SECS seconds (default 1), lines changed since the previous refresh in
inverse video. While a sync runs, the resync line shows the rate and ETA (measured from the
own map if the kernel does not report them). --count N stops after N refreshes. Ctrl-C ends.

Examples:
  rmrctl watch
  rmrctl watch --interval 5
";

/// Per-noun help: (noun, text).
const NOUNS: &[(&str, &str)] = &[
    (
        "pool",
        "\
Usage:
  rmrctl pool join POOL --chunk-size BYTES [--sync] [--queue-depth N]
  rmrctl pool join POOL --member-id ID
  rmrctl pool leave POOL [--client|--server]
  rmrctl pool attach POOL [--sync-pool NAME]
  rmrctl pool enable POOL

join with --chunk-size creates a client pool (rmr-client ctl/join_pool; --sync for the sync
pool of a storage node); join with --member-id creates a server pool (rmr-server
ctl/join_pool). leave writes 1 to leave_pool (of the only pool of that name, or the one named
by --client/--server). attach writes the sync pool's name (default POOL) to the server pool's
add_clt. enable runs try-enable (pool_enable) on a client pool.

Examples:
  rmrctl pool join ionos_pool --chunk-size 131072
  rmrctl pool join ionos_pool --chunk-size 131072 --sync
  rmrctl pool join ionos_pool --member-id 42
  rmrctl pool attach ionos_pool
  rmrctl pool leave ionos_pool --server
",
    ),
    (
        "leg",
        "\
Usage:
  rmrctl leg add POOL LEG --path [ip:]A.B.C.D [--mode create|assemble] [--wait[=SECS]]
  rmrctl leg enable POOL LEG [--wait[=SECS]]
  rmrctl leg maintenance POOL LEG on|off [--wait[=SECS]]
  rmrctl leg remove POOL LEG --mode delete|disassemble [--wait[=SECS]]
  rmrctl leg reconnect POOL LEG --path [ip:]A.B.C.D

A leg is a session of a client pool to one storage node. add writes add_sess (--mode is
required on a compute client's pool and not allowed on a sync pool); --wait waits for
'created' (mode create), 'reconnecting' or 'normal' (mode assemble: the legs wait in
'reconnecting' until every member's leg exists, then all go 'normal') or 'normal' (sync
pool); under --wait, an add the storage node resets (ECONNRESET: it still holds the
session from before a crash) or refuses (ECONNREFUSED) is retried every 2 s within the
same limit. enable writes 1 to enable and waits for 'normal'.
maintenance on writes 0 (waits for 'Maintenance mode: 1'), off writes 1 (waits for 'normal').
remove writes del_sess and waits until the leg is gone. --wait alone means 60 s, --wait=0
no limit.

Examples:
  rmrctl leg add ionos_pool psrv0@stg-rmr1 --path 192.168.122.84 --mode create --wait
  rmrctl leg enable ionos_pool psrv0@stg-rmr1 --wait=30
  rmrctl leg maintenance ionos_pool psrv0@stg-rmr1 on --wait
  rmrctl leg remove ionos_pool psrv0@stg-rmr1 --mode disassemble --wait
",
    ),
    (
        "store",
        "\
Usage:
  rmrctl store create POOL --device PATH --mapped-size SECTORS
  rmrctl store add POOL --device PATH --mapped-size SECTORS [--mode add|replace]
  rmrctl store remove POOL
  rmrctl store delete POOL

create writes brmr-server ctl/create_store on a blank disk; add writes ctl/add_store on a
disk carrying this pool's metadata (after a restart or crash). remove unregisters the store
and keeps its metadata; delete also wipes the metadata (refused while legs are joined).

Examples:
  rmrctl store create ionos_pool --device /dev/sda --mapped-size 204800
  rmrctl store add ionos_pool --device /dev/sda --mapped-size 204800
  rmrctl store delete ionos_pool
",
    ),
    (
        "sync",
        "\
Usage:
  rmrctl sync start POOL [--wait[=SECS]]
  rmrctl sync stop POOL

start writes 'start' to the server pool's sync: the node copies the chunks it misses from
its peers. A node also starts its sync by itself when it enters normal with chunks to
sync (and every 5 s after a run that left some); start then finds it running (EBUSY),
which rmrctl reports and takes as done. --wait waits until the thread stops and fails
(exit 4) if chunks are left dirty. stop ends the run and keeps the node from starting
one by itself until it enters normal again or start is written.

Examples:
  rmrctl sync start ionos_pool --wait=600
  rmrctl sync stop ionos_pool
",
    ),
    (
        "device",
        "\
Usage:
  rmrctl device map POOL --size SECTORS
  rmrctl device unmap brmrN|/dev/brmrN|POOL

map writes brmr-client ctl/map_device and prints the new device name; SECTORS must equal
the stores' mapped_size. unmap writes 1 to the device's unmap_device (refused while open).

Examples:
  rmrctl device map ionos_pool --size 204800
  rmrctl device unmap brmr0
",
    ),
];

/// The help of `topic` (`""`, `status`, `watch`, a noun, or `noun verb`).
pub fn text(topic: &str) -> &'static str {
    let noun = topic.split_whitespace().next().unwrap_or("");
    match noun {
        "status" => STATUS,
        "watch" => WATCH,
        _ => NOUNS.iter().find(|n| n.0 == noun).map_or(GLOBAL, |n| n.1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_verb_is_documented() {
        for v in crate::verbs::VERBS {
            let t = text(&format!("{} {}", v.noun, v.verb));
            assert!(
                t.contains(&format!("rmrctl {} {}", v.noun, v.verb)),
                "{} {}",
                v.noun,
                v.verb
            );
            for (opt, _) in v.spec {
                assert!(
                    t.contains(&format!("--{opt}")),
                    "{} {} --{opt}",
                    v.noun,
                    v.verb
                );
            }
        }
    }
}
