# SPDX-License-Identifier: GPL-2.0-or-later
"""Host-side checks of `rmrctl status --json` for tests/vm/scenarios/rmrctl.sh.

  rmrctl_check.py compare FILE GUEST
      FILE holds `rmrctl status --json`, a line `@@@@ RAW`, then a dump of the attributes
      (`@@ <class>/<path>` then the file's text). Every field rmrctl derives from those
      attributes must equal what the dump says; objects must be the same sets. Prints a
      one-line summary; exits 1 listing the differences.
  rmrctl_check.py get FILE EXPR
      Prints EXPR evaluated with `d` = the JSON document of FILE (text before `@@@@ RAW`).
  rmrctl_check.py progress FILE TOTAL [--moving]
      FILE holds samples, each `@@@ sample N`, the raw `sync_progress`, the raw `sync`, then
      `rmrctl status --json` of a storage node. Checks that sync_progress was reported in
      every sample, never went back, ended with the thread stopped, done == total == TOTAL,
      the own map clean and the JSON equal to the raw attribute; that at least one sample
      saw the run in flight (running, done < total); with --moving, that done took at least
      two values while running. Prints the samples' progress; exits 1 on a failed check.
"""
import json
import re
import sys

MAP_RE = re.compile(r"^member (\d+): \[([^\]]*)\] (\d+)/(\d+) dirty$")


def split_doc(text):
    doc, _, raw = text.partition("@@@@ RAW\n")
    return json.loads(doc), raw


def parse_dump(raw):
    files, cur = {}, None
    for line in raw.split("\n"):
        if line.startswith("@@ "):
            cur = line[3:]
            files[cur] = []
        elif cur is not None:
            files[cur].append(line)
    return {k: "\n".join(v).rstrip("\n") for k, v in files.items()}


def raw_maps(text):
    out = []
    for line in text.split("\n"):
        m = MAP_RE.match(line.strip())
        if not m:
            continue
        toks = m.group(2).split()
        cut = "..." in toks
        chunks = [int(t) for t in toks if t != "..."]
        out.append((int(m.group(1)), int(m.group(3)), int(m.group(4)), chunks, cut))
    return out


def json_maps(maps):
    if maps is None:
        return None
    return [(m["member_id"], m["dirty"], m["total"], m["chunks"], m["chunks_truncated"]) for m in maps]


def names(files, pattern):
    rx = re.compile(pattern)
    return sorted({m.group(1) for k in files for m in [rx.match(k)] if m})


def compare(path, guest):
    d, raw = split_doc(open(path).read())
    f = parse_dump(raw)
    errs = []

    def eq(a, b, what):
        if a != b:
            errs.append(f"{what}: json {a!r} != sysfs {b!r}")

    def first(k):
        return f[k].split("\n")[0] if k in f else None

    def maint(k):
        return "Maintenance mode: 1" in f[k].split("\n") if k in f else None

    def num(k):
        return int(f[k]) if k in f else None

    eq(d.get("version"), 1, "version")
    # client pools and legs
    cps = {p["name"]: p for p in d["client_pools"]}
    eq(sorted(cps), names(f, r"^rmr-client/pools/([^/]+)/sync$"), "client pool names")
    legs = 0
    for n, p in cps.items():
        b = f"rmr-client/pools/{n}"
        eq(p["sync"], {"y": True, "n": False}.get(f.get(f"{b}/sync")), f"{n} client sync")
        eq(p["chunk_size"], num(f"{b}/chunk_size"), f"{n} chunk_size")
        eq(p["queue_depth"], num(f"{b}/queue_depth"), f"{n} queue_depth")
        rm = raw_maps(f.get(f"{b}/map_summary", ""))
        eq(json_maps(p["maps"]), rm, f"{n} client maps")
        by_member = {m[0]: m for m in rm}
        lnames = names(f, rf"^{re.escape(b)}/sessions/([^/]+)/state$")
        eq(sorted(x["name"] for x in p["legs"]), lnames, f"{n} leg names")
        for leg in p["legs"]:
            lb = f"{b}/sessions/{leg['name']}"
            eq(leg["state"], first(f"{lb}/state"), f"leg {leg['name']} state")
            eq(leg["maintenance"], maint(f"{lb}/state"), f"leg {leg['name']} maintenance")
            eq(leg["member_id"], num(f"{lb}/member_id"), f"leg {leg['name']} member_id")
            m = by_member.get(leg["member_id"])
            want = None if m is None else {"dirty": m[1], "total": m[2]}
            eq(leg["dirty"], want, f"leg {leg['name']} dirty")
            legs += 1
    # server pools
    sps = {p["name"]: p for p in d["server_pools"]}
    eq(sorted(sps), names(f, r"^rmr-server/pools/([^/]+)/state$"), "server pool names")
    for n, p in sps.items():
        b = f"rmr-server/pools/{n}"
        eq(p["state"], first(f"{b}/state"), f"{n} server state")
        eq(p["maintenance"], maint(f"{b}/state"), f"{n} server maintenance")
        eq(p["member_id"], num(f"{b}/member_id"), f"{n} server member_id")
        eq(p["sync"], first(f"{b}/sync"), f"{n} sync")
        sp = p["sync_progress"]
        got = None if sp is None else [sp["done"], sp["total"], sp["elapsed_ms"]]
        want = [int(x) for x in f[f"{b}/sync_progress"].split()] if f"{b}/sync_progress" in f else None
        eq(got, want, f"{n} sync_progress")
        rm = raw_maps(f.get(f"{b}/map_summary", ""))
        eq(json_maps(p["maps"]), rm, f"{n} server maps")
        own = [m[1] for m in rm if m[0] == p["member_id"]]
        eq(p["own_dirty"], own[0] if own else None, f"{n} own_dirty")
    # stores
    sts = {s["pool"]: s for s in d["stores"]}
    eq(sorted(sts), names(f, r"^brmr-server/stores/([^/]+)/state$"), "store names")
    for n, s in sts.items():
        b = f"brmr-server/stores/{n}"
        flags = [x for x in f[f"{b}/state"].split("\n") if x]
        eq(s["state"], flags, f"store {n} state")
        eq((s["open"], s["mapped"]), ("open" in flags, "mapped" in flags), f"store {n} flags")
        eq(s["device"], first(f"{b}/bdev_name"), f"store {n} device")
        eq(s["mapped_size"], num(f"{b}/mapped_size"), f"store {n} mapped_size")
        eq(s["dev_size"], num(f"{b}/dev_size"), f"store {n} dev_size")
    # devices
    devs = {x["name"]: x for x in d["devices"]}
    eq(sorted(devs), names(f, r"^brmr-client/ctl/devices/([^/]+)/state$"), "device names")
    for n, x in devs.items():
        b = f"brmr-client/ctl/devices/{n}"
        eq(x["state"], first(f"{b}/state"), f"device {n} state")
        eq(x["pool"], first(f"{b}/pool"), f"device {n} pool")
        eq(x["pool_source"], "attribute", f"device {n} pool_source")
        eq(x["size"], num(f"{b}/block/size"), f"device {n} size")
        eq(cps.get(x["pool"], {}).get("device"), n, f"device {n} linked to its pool")
    if errs:
        print(f"{guest}: status --json differs from sysfs:")
        for e in errs:
            print("  " + e)
        sys.exit(1)
    print(
        f"{guest}: status --json matches sysfs: {len(cps)} client pool(s), {legs} leg(s), "
        f"{len(sps)} server pool(s), {len(sts)} store(s), {len(devs)} device(s), "
        f"{len(f)} attributes"
    )


def progress(path, total, moving):
    text = open(path).read()
    parts = re.split(r"^@@@ sample \d+\n", text, flags=re.M)[1:]
    samples = []
    for p in parts:
        lines = p.split("\n", 2)
        raw = [int(x) for x in lines[0].split()]
        d = json.loads(lines[2])
        sp = d["server_pools"][0]
        samples.append((raw, lines[1].strip(), sp))
    errs = []
    if len(samples) < 2:
        errs.append(f"{len(samples)} sample(s), want at least 2")
    prev = None
    for i, (raw, rsync, sp) in enumerate(samples):
        g = sp["sync_progress"]
        if g is None:
            errs.append(f"sample {i}: sync_progress is null")
            continue
        cur = (g["done"], g["elapsed_ms"])
        if prev and (cur[0] < prev[0] or cur[1] < prev[1]):
            errs.append(f"sample {i}: progress went back: {prev} -> {cur}")
        if g["done"] > g["total"]:
            errs.append(f"sample {i}: done {g['done']} > total {g['total']}")
        prev = cur
    run = [s[2]["sync_progress"] for s in samples if s[2]["sync"] == "running" and s[2]["sync_progress"]]
    if not any(g["done"] < g["total"] for g in run):
        errs.append("no sample saw the run in flight (sync running with done < total)")
    if moving and len({g["done"] for g in run}) < 2:
        errs.append(f"done did not move while running: {[g['done'] for g in run]}")
    raw, rsync, sp = samples[-1]
    g = sp["sync_progress"] or {}
    if sp["sync"] != "stopped" or rsync != "stopped":
        errs.append(f"last sample: sync {sp['sync']!r} (sysfs {rsync!r}), want stopped")
    if [g.get("done"), g.get("total"), g.get("elapsed_ms")] != raw:
        errs.append(f"last sample: json {g} != sysfs {raw}")
    if g.get("done") != total or g.get("total") != total:
        errs.append(f"last sample: done/total {g.get('done')}/{g.get('total')}, want {total}/{total}")
    if sp["own_dirty"] != 0:
        errs.append(f"last sample: own_dirty {sp['own_dirty']}, want 0")
    seen = " ".join(
        f"{s[2]['sync'][0]}:{s[2]['sync_progress']['done']}/{s[2]['sync_progress']['total']}"
        f"@{s[2]['sync_progress']['elapsed_ms']}ms"
        for s in samples
        if s[2]["sync_progress"]
    )
    print(f"{len(samples)} samples ({len(run)} while running): {seen}")
    if errs:
        for e in errs:
            print("  " + e)
        sys.exit(1)


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "compare":
        compare(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "get":
        d, _ = split_doc(open(sys.argv[2]).read())
        v = eval(sys.argv[3], {"d": d})  # test helper: EXPR comes from the scenario
        print(json.dumps(v) if not isinstance(v, str) else v)
    elif len(sys.argv) >= 4 and sys.argv[1] == "progress":
        progress(sys.argv[2], int(sys.argv[3]), "--moving" in sys.argv[4:])
    else:
        print(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
