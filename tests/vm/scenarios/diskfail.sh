# SPDX-License-Identifier: GPL-2.0-or-later
# A disk failure and its recovery without an administrator (SPEC §6.8 store check, §10
# backend-error case), on clt (P), stg0 = A (member 42), stg1 = B (member 43, its store on a
# device-mapper target over /dev/sda that the scenario switches to "error" and back):
#  1. both legs created before either is enabled, so B needs no initial sync; sync pools;
#     brmr0 mapped; 4 MiB written and read back.
#  2. B's disk fails: 8 MiB written through brmr0 still succeed (A takes them, B's leg
#     fails, A records what B misses); B's server leaves NORMAL.
#     While the disk keeps failing the leg stays failed: B's store answers STORE_CHECK "no IO"
#     until a probe (its superblock rewritten and flushed, at most once a second) succeeds.
#  3. B's disk heals. Without any admin step the client's recovery worker brings the leg
#     back: the probe succeeds, STORE_CHECK says B's store serves IO, the leg goes failed ->
#     reconnecting -> normal by a map update, and B's own map holds what it missed. Without
#     the worker the leg stays failed and the wait below times out.
#  4. B, normal with chunks in its own map, starts its sync thread by itself (SPEC §11
#     [improvement]; no `sync start`) and copies the missed chunks from A; every map is clean
#     on both nodes and B's data equals A's over the written ranges.
TIMEOUT=600
NSTG=2

. "$VM_LIB/pool.sh"
BITMAP_BYTES=$((((SIZE * 512 / 4096 + 7) / 8 + 4095) / 4096 * 4096))
AREA_BYTES=$(((16384 + 4 * BITMAP_BYTES + 1048575) / 1048576 * 1048576))
leg() { on clt "head -1 $C/pools/$P/sessions/$1/state"; }

vm_boot clt stg0 stg1

# ---- 1. bring-up with B's store on a device-mapper target ----------------------------------
log "bring-up, B's store on /dev/mapper/bdisk"
modules_load
on stg1 'modprobe dm-flakey; n=$(cat /sys/block/sda/size); dmsetup create bdisk --table "0 $n linear /dev/sda 0"'
pool_up /dev/mapper/bdisk
on clt 'dd if=/dev/urandom of=/tmp/a bs=1M count=4 2>/dev/null; dd if=/dev/urandom of=/tmp/b bs=1M count=8 2>/dev/null'
on clt 'dd if=/tmp/a of=/dev/brmr0 bs=1M oflag=direct 2>/dev/null'

# ---- 2. B's disk fails ---------------------------------------------------------------------
log "B's disk fails"
on stg1 'n=$(cat /sys/block/sda/size); dmsetup suspend bdisk && dmsetup load bdisk --table "0 $n error" && dmsetup resume bdisk'
on -t 120 clt 'dd if=/tmp/b of=/dev/brmr0 bs=1M seek=16 oflag=direct 2>/dev/null'
expect_eq "$(on clt '/usr/bin/dd if=/dev/brmr0 bs=1M skip=16 count=8 iflag=direct status=none | sha256sum')" "$(on clt 'sha256sum </tmp/b')" "pattern b read back while B's disk fails"
# The first write to fail may be the data or, before it, the write's last_io record
# (rmr persists it before submitting the data: Documentation/on-disk-format.md).
on stg1 'dmesg | grep -qE "backend IO failed|metadata (write at byte [0-9]+|writeback|flush) failed"' ||
	fail "B's store saw no backend error"
on stg1 'dmesg | grep -E "backend IO failed|metadata .* failed|persisting dirty maps" | head -3'
# While the disk keeps failing, B's store does not claim to serve IO (brmr probes it at most
# once a second by rewriting its superblock): the leg stays failed, it does not flap.
sleep 4
expect_eq "$(leg $LEG_B)" failed "leg B while B's disk still fails"
expect_eq "$(on stg1 "cat $S/pools/$P/state")" no_io "B's server pool while its disk still fails"
if on_try clt 'dmesg | grep -q "psrv0@stg-rmr1: store serves IO again"' >/dev/null; then
	fail "the leg was revived while B's disk still failed"
fi
log "while failing: leg B failed, B no_io, A's map of 43: $(on stg0 "head -1 $S/pools/$P/map_summary" | cut -c1-80)"

# ---- 3. B's disk heals: the recovery worker brings the leg back ----------------------------
log "B's disk heals; no admin step from here"
on stg1 'n=$(cat /sys/block/sda/size); dmsetup suspend bdisk && dmsetup load bdisk --table "0 $n linear /dev/sda 0" && dmsetup resume bdisk'
t0=$EPOCHSECONDS
wait_for -t 90 clt "[ \"\$(head -1 $C/pools/$P/sessions/$LEG_B/state)\" = normal ]"
wait_for -t 30 stg1 "[ \"\$(cat $S/pools/$P/state)\" = normal ]"
log "leg B normal again after $((EPOCHSECONDS - t0)) s: $(on clt 'dmesg | grep -E "psrv0@stg-rmr1.*(store serves IO again|-> )" | tail -4' | tr '\n' '|')"
on clt 'dmesg | grep -q "psrv0@stg-rmr1: store serves IO again, failed -> reconnecting"' ||
	fail "the leg did not come back through the store check: $(on clt 'dmesg | grep rmr | tail -5' | tr '\n' '|')"
on stg1 'dmesg | grep -q "store ionos_pool: the device works again"' || fail "B's store did not probe its device"
# ---- 4. B resyncs from A by itself ---------------------------------------------------------
# B entered normal with what it missed in its own map: it starts its sync by itself (SPEC
# §11 [improvement]), no `sync start`.
wait_for -t 30 stg1 'dmesg | grep -q "server pool ionos_pool: sync started automatically ([1-9][0-9]* chunks dirty"'
log "B: $(on stg1 'dmesg | grep "sync started automatically" | tail -1')"
wait_for -t 300 stg1 "[ \"\$(cat $S/pools/$P/sync)\" = stopped ] && grep -q '^member 43: \[\] 0/' $S/pools/$P/map_summary"
expect_eq "$(on stg1 "cat $S/pools/$P/map_summary")" "$CLEAN" "B's maps after its sync"
wait_for -t 60 stg0 "[ \"\$(cat $S/pools/$P/map_summary)\" = '$CLEAN' ]"
sums=$(on_each -t 120 "stg0 stg1" "/usr/bin/dd if=/dev/sda bs=1M iflag=direct,skip_bytes skip=$AREA_BYTES count=24 status=none | /usr/bin/sha256sum | cut -d' ' -f1")
expect_eq "$(echo "$sums" | sed -n 2p)" "$(echo "$sums" | sed -n 1p)" "B's first 24 MiB of data vs A's after the resync"
expect_eq "$(on clt '/usr/bin/dd if=/dev/brmr0 bs=1M count=4 iflag=direct status=none | sha256sum')" "$(on clt 'sha256sum </tmp/a')" "pattern a read back after the resync"
expect_eq "$(on clt '/usr/bin/dd if=/dev/brmr0 bs=1M skip=16 count=8 iflag=direct status=none | sha256sum')" "$(on clt 'sha256sum </tmp/b')" "pattern b read back after the resync"
