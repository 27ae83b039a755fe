# SPDX-License-Identifier: GPL-2.0-or-later
# rmrctl end to end (issue 13), on clt (P), stg0 = A (member 42) and stg1 = B (member 43):
#  1. The SPEC §12.1 bring-up with rmrctl verbs only (modprobe aside): pools, stores, legs
#     (--wait for their states), sync pools, add_clt, B's sync, map_device.
#  2. B's first sync (all 800 chunks, B joined next to a NORMAL A): `rmrctl status --json` on
#     B is sampled while it runs; sync_progress must be reported, move, never go back, and
#     end stopped with done == total == 800.
#  3. `status --json` against raw sysfs on every guest (states, member ids, maps, progress,
#     stores, device): at B0, with B in maintenance and dirty maps, and after the resync.
#  4. Maintenance on B's leg (rmrctl leg maintenance on), 24 MiB written to brmr0 (192
#     chunks), maintenance off (--wait for normal, map update), then B resyncs the chunks it
#     missed by itself (SPEC §11 [improvement]; `rmrctl sync start --wait` finds the run and
#     waits): done == total == 192; the written ranges of both disks are identical afterwards.
#     SPEC §10 scenario 9: fio writes and verifies brmr0's raw 64-72 MiB from the writes in
#     maintenance until B has resynced, every pass clean: through maintenance, its end (map
#     update) and the resync. It starts after the 24 MiB (which cover its range: a write
#     there would break its verification), so the 192 chunks stay exact.
#     (In step 2, `sync stop` before attaching B's sync pool holds the automatic start back:
#     still no run 6 s later.)
#  5. Teardown with rmrctl (device unmap, leg remove, store delete, pool leave); modules
#     unload.
COST=60    # seconds alone, measured: tests/vm/run starts the costliest first
TIMEOUT=420
NSTG=2

. "$VM_LIB/pool.sh"
. "$VM_LIB/capture.sh"
CHECK="/usr/bin/python3 -I -S $VM_LIB/rmrctl_check.py"

# Data area of a store (Documentation/on-disk-format.md): exported byte b is at b + AREA_BYTES.

# The guest's `rmrctl status --json`, a separator, then every attribute rmrctl reads, read
# in the same command (nothing runs on the pool in between where this is used).
DUMP='R=/sys/class
rmrctl status --json || exit 1
echo "@@@@ RAW"
for f in $R/rmr-client/pools/*/sync $R/rmr-client/pools/*/chunk_size \
	$R/rmr-client/pools/*/queue_depth $R/rmr-client/pools/*/map_summary \
	$R/rmr-client/pools/*/sessions/*/state $R/rmr-client/pools/*/sessions/*/member_id \
	$R/rmr-server/pools/*/state $R/rmr-server/pools/*/member_id $R/rmr-server/pools/*/sync \
	$R/rmr-server/pools/*/sync_progress $R/rmr-server/pools/*/map_summary \
	$R/brmr-server/stores/*/state $R/brmr-server/stores/*/mapped_size \
	$R/brmr-server/stores/*/dev_size $R/brmr-server/stores/*/bdev_name \
	$R/brmr-client/ctl/devices/*/state $R/brmr-client/ctl/devices/*/pool \
	$R/brmr-client/ctl/devices/*/block/size; do
	[ -f "$f" ] || continue
	echo "@@ ${f#$R/}"
	cat "$f" || exit 1
done'

# snap NAME TAG: status --json + raw dump of NAME into $VM_DIR/status-TAG-NAME.txt; prints the path
snap() {
	local f=$VM_DIR/status-$2-$1.txt
	on "$1" "$DUMP" >"$f"
	echo "$f"
}
# compare_all TAG: status --json equals sysfs on every guest
compare_all() {
	local g f out
	for g in clt stg0 stg1; do
		f=$(snap $g "$1")
		out=$($CHECK compare "$f" "$g") || fail "$1: $out"
		log "$1: $out"
	done
}
# jget FILE EXPR: a value of the JSON in FILE (d = the document)
jget() { $CHECK get "$1" "$2" || fail "cannot evaluate $2 on $1"; }

# sample_sync TAG: on B, start the sync and sample sync_progress + status --json every 0.3 s
# until the thread stops, plus one sample after; the samples go to $VM_DIR/progress-TAG.txt.
# The 4th sample, if the sync still runs then, also copies B's sysfs classes to /tmp/capture
# (sysfs_capture_fetch takes it).
sample_sync() {
	local f=$VM_DIR/progress-$1.txt
	on -t 200 stg1 "rm -rf /tmp/capture
rmrctl sync start $P
i=0
while :; do
	if [ \$i = 3 ] && [ \"\$(cat $S/pools/$P/sync)\" = running ]; then
		$CAPTURE_GUEST
	fi
	s=\$(cat $S/pools/$P/sync)
	echo \"@@@ sample \$i\"
	cat $S/pools/$P/sync_progress
	echo \"\$s\"
	rmrctl status --json || exit 1
	[ \"\$s\" = stopped ] && break
	[ \$i -lt 600 ] || { echo 'sync still running after 600 samples' >&2; exit 1; }
	i=\$((i + 1))
	sleep 0.3
done" >"$f"
	echo "$f"
}

vm_boot clt stg0 stg1
for g in clt stg0 stg1; do
	on $g 'command -v rmrctl >/dev/null || { echo "no rmrctl in the guest (tests/vm/run builds it)"; exit 1; }'
done

# ---- 1. bring-up, SPEC §12.1, with rmrctl ---------------------------------------------
log "§12.1 bring-up with rmrctl"
on clt 'modprobe rtrs-client; modprobe rmr; modprobe brmr'                                    # 1
on_each "stg0 stg1" 'modprobe rtrs-server; modprobe rtrs-client; modprobe rmr; modprobe brmr'  # 2
on clt "rmrctl pool join $P --chunk-size $CHUNK"                                               # 3
on stg0 "rmrctl pool join $P --member-id 42"                                                   # 4
on stg1 "rmrctl pool join $P --member-id 43"                                                   # 5
on_each "stg0 stg1" "rmrctl store create $P --device /dev/sda --mapped-size $SIZE"             # 6
on clt "rmrctl leg add $P $LEG_A --path $A_IP --mode create --wait"                            # 7
on clt "rmrctl leg enable $P $LEG_A --wait"                                                    # 8
on clt "rmrctl leg add $P $LEG_B --path $B_IP --mode create --wait"                            # 9
on clt "rmrctl leg enable $P $LEG_B --wait=60"                                                 # 10
on_each "stg0 stg1" "rmrctl pool join $P --chunk-size $CHUNK --sync"                           # 11
on stg0 "rmrctl leg add $P $SYNC_A --path $B_IP --wait"                                        # 12
on stg1 "rmrctl leg add $P $SYNC_B --path $A_IP --wait"                                        # 13
# B is normal with all 800 chunks in its own map: attached to its sync pool it would start its
# sync by itself (SPEC §11 [improvement]). `sync stop` holds that back until B next enters
# normal, so that this scenario samples a run from its start.
on stg1 "rmrctl sync stop $P"
on_each "stg0 stg1" "rmrctl pool attach $P"                                                    # 14
# one map-clear tick (5 s) later: still no run
sleep 6
on stg1 "[ \"\$(cat $S/pools/$P/sync)\" = stopped ] && [ \"\$(cat $S/pools/$P/sync_progress)\" = '0 0 0' ]" ||
	fail "B started a sync after sync stop: $(on stg1 "cat $S/pools/$P/sync $S/pools/$P/sync_progress" | tr '\n' ' ')"

# ---- 2. B's first sync: progress sampled --------------------------------------------------
f=$(snap stg1 before-sync)
expect_eq "$(jget "$f" "d['server_pools'][0]['sync_progress']")" \
	'{"done": 0, "total": 0, "elapsed_ms": 0, "rate_chunks_per_s": null, "eta_s": null}' \
	"B's sync_progress before its first run"
expect_eq "$(jget "$f" "d['server_pools'][0]['own_dirty']")" 800 "B's own dirty count before its sync"
# tools/rmrctl/tests/fixtures/sync-in-progress: clt and A as B's sync starts, B during it
sysfs_capture sync-in-progress clt stg0
log "B syncs (step 15), sampling status --json"
f=$(sample_sync first)                                                                        # 15
on stg1 '[ -d /tmp/capture/class ]' || fail "B's sync ended before the 4th sample: no capture"
sysfs_capture_fetch sync-in-progress stg1
out=$($CHECK progress "$f" 800 --moving) || fail "B's first sync: $out"
log "B's first sync: $out"
wait_for -t 60 stg0 "[ \"\$(cat $S/pools/$P/map_summary)\" = '$CLEAN' ]"
out=$(on clt "rmrctl device map $P --size $SIZE")                                             # 16
log "device map: $out"
wait_for clt '[ -b /dev/brmr0 ]'

# ---- 3. B0: status --json against sysfs ---------------------------------------------------
# The client's recovery worker clears its map of B (fully dirty since B joined next to a
# NORMAL A) once B is in sync; wait for that, so the compare reads a map that stays put.
wait_for -t 40 clt "! grep -v '\[\] 0/' $C/pools/$P/map_summary"
compare_all b0
sysfs_capture healthy clt stg0 stg1
f=$VM_DIR/status-b0-clt.txt
expect_eq "$(jget "$f" "[(l['name'], l['state'], l['member_id']) for l in d['client_pools'][0]['legs']]")" \
	"[[\"$LEG_A\", \"normal\", 42], [\"$LEG_B\", \"normal\", 43]]" "clt legs at B0"
expect_eq "$(jget "$f" "[(x['name'], x['pool'], x['size']) for x in d['devices']]")" \
	"[[\"brmr0\", \"$P\", $SIZE]]" "clt devices at B0"
for g in stg0 stg1; do
	f=$VM_DIR/status-b0-$g.txt
	expect_eq "$(jget "$f" "[(p['state'], p['member_id'], [(m['member_id'], m['dirty']) for m in p['maps']]) for p in d['server_pools']]")" \
		"[[\"normal\", $([ $g = stg0 ] && echo 42 || echo 43), [[43, 0], [42, 0]]]]" "$g server pool at B0"
	expect_eq "$(jget "$f" "[(p['name'], p['sync'], [l['state'] for l in p['legs']]) for p in d['client_pools']]")" \
		"[[\"$P\", true, [\"normal\"]]]" "$g sync pool at B0"
	expect_eq "$(jget "$f" "[s['state'] for s in d['stores']]")" '[["open", "mapped"]]' "$g store at B0"
done
on clt 'rmrctl status' >"$VM_DIR/status-b0-clt.human"

# ---- 4. maintenance on B, writes, resync --------------------------------------------------
log "maintenance on B's leg"
on clt "rmrctl leg maintenance $P $LEG_B on --wait"
wait_for stg1 "[ \"\$(head -1 $S/pools/$P/state)\" = no_io ]"
# 2 x 12 MiB at 0 and 64 MiB: 192 chunks of 128 KiB, written to A only.
on -t 120 clt '/usr/bin/dd if=/dev/urandom of=/dev/brmr0 bs=1M count=12 oflag=direct status=none &&
/usr/bin/dd if=/dev/urandom of=/dev/brmr0 bs=1M count=12 seek=64 oflag=direct status=none'
fio_job=$(fio_raw_start)
compare_all maint
sysfs_capture maintenance clt stg0 stg1
f=$VM_DIR/status-maint-clt.txt
expect_eq "$(jget "$f" "[(l['state'], l['maintenance']) for l in d['client_pools'][0]['legs']]")" \
	'[["normal", false], ["reconnecting", true]]' "clt legs in maintenance"
# The client's map of 43 holds the 192 chunks; it may hold more: it was made fully dirty when
# B joined next to a NORMAL A, and only the client's map check (not implemented yet) clears it.
log "client's map of member 43 in maintenance: $(jget "$f" "d['client_pools'][0]['legs'][1]['dirty']")"
expect_eq "$(jget "$f" "(lambda m: m['dirty'] >= 192 and (m['chunks_truncated'] or set(range(96)) | set(range(512, 608)) <= set(m['chunks'])))([m for m in d['client_pools'][0]['maps'] if m['member_id'] == 43][0])")" \
	true "the client's map of member 43 holds the chunks written in maintenance"
f=$VM_DIR/status-maint-stg1.txt
expect_eq "$(jget "$f" "[(p['state'], p['maintenance']) for p in d['server_pools']]")" \
	'[["no_io", true]]' "B in maintenance"
f=$VM_DIR/status-maint-stg0.txt
expect_eq "$(jget "$f" "[(m['member_id'], m['dirty']) for m in d['server_pools'][0]['maps']]")" \
	'[[43, 192], [42, 0]]' "A's maps after the writes in maintenance"
on clt "rmrctl leg maintenance $P $LEG_B off --wait=60"
wait_for stg1 "[ \"\$(cat $S/pools/$P/state)\" = normal ]"
# B entered normal with the 192 chunks it missed in its own map: it starts its sync by itself
# (SPEC §11 [improvement]); `rmrctl sync start --wait` finds it running and waits for it.
wait_for -t 30 stg1 'dmesg | grep -q "server pool ionos_pool: sync started automatically (192 chunks dirty"'
log "B resyncs what it missed by itself: $(on stg1 'dmesg | grep "sync started automatically" | tail -1')"
on -t 200 stg1 "rmrctl sync start $P --wait=180"
f=$(snap stg1 resync)
expect_eq "$(jget "$f" "[d['server_pools'][0][k] for k in ('sync', 'own_dirty')] + [d['server_pools'][0]['sync_progress'][k] for k in ('done', 'total')]")" \
	'["stopped", 0, 192, 192]' "B's sync and sync_progress after its automatic resync"
fio_raw_stop "$fio_job"
wait_for -t 60 stg0 "[ \"\$(cat $S/pools/$P/map_summary)\" = '$CLEAN' ]"
# The client's recovery worker (SPEC §6.8) clears its map of B once B answered MAP_CHECK
# "empty" twice and the map's last bit is 5 s old (before the compare: the map stays put).
wait_for -t 40 clt "! grep -v '\[\] 0/' $C/pools/$P/map_summary"
log "client maps cleared by the recovery worker: $(on clt "cat $C/pools/$P/map_summary" | tr '\n' '|')"
compare_all synced
for off in 0 64; do
	sums=$(on_each -t 120 "stg0 stg1" "/usr/bin/dd if=/dev/sda bs=1M iflag=direct,skip_bytes skip=$((AREA_BYTES + off * 1048576)) count=12 status=none | /usr/bin/sha256sum | cut -d' ' -f1")
	expect_eq "$(echo "$sums" | sed -n 2p)" "$(echo "$sums" | sed -n 1p)" "B's data at ${off} MiB after the resync vs A's"
done
on stg1 'rmrctl status' >"$VM_DIR/status-synced-stg1.human"
expect_match "$(cat "$VM_DIR/status-synced-stg1.human")" "resync +done:192/192 +100.0%.*\(ended\)" "B's human status after the resync"

# ---- 5. teardown with rmrctl --------------------------------------------------------------
log "teardown with rmrctl"
on clt 'rmrctl device unmap brmr0'
on stg0 "rmrctl leg remove $P $SYNC_A --mode disassemble --wait"
on stg1 "rmrctl leg remove $P $SYNC_B --mode disassemble --wait"
on clt "rmrctl leg remove $P $LEG_B --mode delete --wait"
on clt "rmrctl leg remove $P $LEG_A --mode delete --wait"
on clt "rmrctl pool leave $P"
for g in stg0 stg1; do
	wait_for $g "[ \"\$(cat $S/pools/$P/state)\" = registered ]"
	on $g "rmrctl store delete $P && rmrctl pool leave $P --server && rmrctl pool leave $P --client"
done
for g in clt stg0 stg1; do
	f=$(snap $g empty)
	expect_eq "$(jget "$f" "[len(d[k]) for k in ('client_pools', 'server_pools', 'stores', 'devices')]")" \
		'[0, 0, 0, 0]' "$g: rmrctl status after the teardown"
done
on_each "clt stg0 stg1" 'rmmod brmr rmr && rmmod rtrs_server rtrs_client rtrs_core'
