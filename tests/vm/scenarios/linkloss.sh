# SPDX-License-Identifier: GPL-2.0-or-later
# Link loss, timed (SPEC §4.3 and §10 scenario 1; issue 11 deliverable 4), on clt (P),
# stg0 = A (member 42), stg1 = B (member 43):
#  1. The P-B link drops every frame while P writes. The leg to B fails, and B notices the
#     lost session by rmr's RTRS heartbeat and goes no_io (never registered: only a
#     LEAVE_POOL does that) within LOSS_MAX seconds; A records what B misses. Before rmr set
#     the heartbeat, B stayed normal for about 34 s and then went registered.
#  2. The link returns. The leg is normal again within BACK_MAX_* seconds: RTRS reconnects
#     (B no longer holds the old session, so it accepts the reconnect), the leg rejoins and a
#     map update hands B what it missed. B resyncs; the written data reads back, and B's
#     data area equals A's.
#  3. The same with the cable pulled (carrier lost) while no IO runs: only the heartbeats
#     notice it, on both ends.
# Every time is printed; the bounds fail the scenario.
TIMEOUT=600
NSTG=2
LOSS_MAX=12   # cut -> B no_io: one 5 s RTRS beat before rmr's first, then 1 s x (4 + 1)
# link back -> leg normal. With the cable pulled, a reconnect attempt waits for the storage
# node's address (ARP), which rmr asks for again each second, and the leg is back about 2 s
# after the cable. Under silent loss an attempt in flight waits for its CM REQ, which the
# kernel's CM resends every 4.1 s (CMA_CM_RESPONSE_TIMEOUT): 4.5 to 9 s measured.
BACK_MAX_down=5
BACK_MAX_drop=12

. "$VM_LIB/pool.sh"
BITMAP_BYTES=$((((SIZE * 512 / 4096 + 7) / 8 + 4095) / 4096 * 4096))
AREA_BYTES=$(((16384 + 4 * BITMAP_BYTES + 1048575) / 1048576 * 1048576))
leg_b() { on clt "head -1 $C/pools/$P/sessions/$LEG_B/state"; }
# secs_since T: seconds (one decimal) since the host time T ($EPOCHREALTIME)
secs_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
# within WHAT SECS MAX: fail unless SECS <= MAX
within() { awk -v s="$2" -v m="$3" 'BEGIN { exit !(s <= m) }' || fail "$1 took $2 s (bound $3 s)"; }

vm_boot clt stg0 stg1
modules_load
expect_eq "$(on clt 'cat /sys/module/rmr/parameters/hb_interval_ms /sys/module/rmr/parameters/hb_missed_max' | tr '\n' ' ')" "1000 4 " "rmr's heartbeat parameters"
pool_up
on clt 'dd if=/dev/urandom of=/tmp/p bs=1M count=16 2>/dev/null; for o in 0 16 32 48; do dd if=/tmp/p of=/dev/brmr0 bs=1M seek=$o oflag=direct 2>/dev/null || exit 1; done'

# cut_and_return KIND (drop|down) IO (io|idle): one link loss of P-B, timed
cut_and_return() {
	local kind=$1 io=$2 t0 t job dirty
	log "P-B link: $kind, $io"
	# the writer rewrites /tmp/p at 0, 16, 32 and 48 MiB until told to stop
	[ "$io" = io ] && job=$(on_bg clt 'rm -f /tmp/stop; i=0; while [ ! -e /tmp/stop ]; do dd if=/tmp/p of=/dev/brmr0 bs=1M seek=$((i % 4 * 16)) count=16 oflag=direct 2>/dev/null || exit 1; i=$((i + 1)); done; echo "$i writes of 16 MiB"')
	[ "$io" = io ] && sleep 2
	t0=$EPOCHREALTIME
	if [ "$kind" = drop ]; then link_drop clt stg1; else link_down clt stg1; fi
	wait_for -t 40 stg1 "[ \"\$(cat $S/pools/$P/state)\" != normal ]"
	t=$(secs_since "$t0")
	expect_eq "$(on stg1 "cat $S/pools/$P/state")" no_io "B after losing P's session ($kind)"
	log "B no_io ${t} s after the cut: $(on stg1 'dmesg | grep -E "HB missed|link lost" | tail -2' | tr '\n' '|')"
	within "B noticing the lost session ($kind, $io)" "$t" "$LOSS_MAX"
	wait_for -t 40 clt "grep -q '^failed' $C/pools/$P/sessions/$LEG_B/state"
	log "leg B failed (by $(secs_since "$t0") s after the cut)"
	[ "$io" = io ] && { sleep 3; on stg0 "head -1 $S/pools/$P/map_summary"; }
	sleep 2
	expect_eq "$(on stg1 "cat $S/pools/$P/state")" no_io "B while the link is down ($kind)"
	t0=$EPOCHREALTIME
	link_up clt stg1
	wait_for -t 60 clt "[ \"\$(head -1 $C/pools/$P/sessions/$LEG_B/state)\" = normal ]"
	t=$(secs_since "$t0")
	log "leg B normal ${t} s after the link returned: $(on clt "dmesg | grep -E 'psrv0@stg-rmr1.*(reconnected|-> )' | tail -3" | tr '\n' '|')"
	local bound=BACK_MAX_$kind
	within "leg B back after the link returned ($kind, $io)" "$t" "${!bound}"
	wait_for -t 20 stg1 "[ \"\$(cat $S/pools/$P/state)\" = normal ]"
	if [ "$io" = io ]; then
		on clt 'touch /tmp/stop'
		log "writer: $(bg_wait -t 300 "$job")"
		dirty=$(on stg0 "head -1 $S/pools/$P/map_summary")
		case $dirty in "member 43: [] 0/"*) fail "A recorded nothing for B during the cut: $dirty" ;; esac
	fi
}

cut_and_return drop io
cut_and_return down idle

log "B resyncs; data compared"
sync_b_clean
wait_for -t 60 stg0 "[ \"\$(cat $S/pools/$P/map_summary)\" = '$CLEAN' ]"
sums=$(on_each -t 120 "stg0 stg1" "/usr/bin/dd if=/dev/sda bs=1M iflag=direct,skip_bytes skip=$AREA_BYTES count=64 status=none | /usr/bin/sha256sum | cut -d' ' -f1")
expect_eq "$(echo "$sums" | sed -n 2p)" "$(echo "$sums" | sed -n 1p)" "B's first 64 MiB of data vs A's after the resync"
p=$(on clt 'sha256sum </tmp/p')
for o in 0 16 32 48; do
	expect_eq "$(on clt "/usr/bin/dd if=/dev/brmr0 bs=1M skip=$o count=16 iflag=direct status=none | sha256sum")" "$p" "data at $o MiB"
done
on_try stg1 'dmesg | grep -q "normal -> registered"' >/dev/null && fail "B went registered on a lost session"
true
