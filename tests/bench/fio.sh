#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# tests/bench/fio.sh: fio on /dev/brmr0 vs. RNBD vs. md-raid1 over two RNBD legs, in the VM
# testbed (clt, stg0, stg1). See tests/bench/README.md.
#
# Run it as a program: it runs itself as a scenario through tests/vm/run and prints the table
# (also in results/<timestamp>/fio/bench.txt). tests/vm/run sources this same file as the
# scenario (everything below the "scenario" line).
TIMEOUT=1500
NSTG=2

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	here=$(cd "$(dirname "$0")" && pwd)
	self=$here/$(basename "$0")
	out=$(mktemp)
	"$here/../vm/run" "$self" | tee "$out"
	rc=${PIPESTATUS[0]}
	dir=$(sed -n 's/^results: //p' "$out" | head -1)
	rm -f "$out"
	if [ -n "$dir" ] && [ -s "$dir/fio/bench.txt" ]; then
		echo
		cat "$dir/fio/bench.txt"
	fi
	exit "$rc"
fi

# ---- scenario ------------------------------------------------------------------------------
RUNTIME=${BENCH_RUNTIME:-20}        # seconds per fio job (time_based), after 2 s of ramp
MD_BITMAP=${BENCH_MD_BITMAP:-internal}   # internal (chunk 128 KiB, like brmr's) or none
TARGETS=${BENCH_TARGETS:-brmr rnbd md-raid1}  # a subset runs only those (e.g. the baselines)
WRITE_INTENT=${BENCH_WRITE_INTENT:-1}   # rmr.write_intent on the storage nodes (0: no record)
. "$VM_LIB/pool.sh"
OUT=$VM_DIR/bench.txt
CSV=$VM_DIR/bench.csv


# The workloads: name, fio options. All: direct IO, libaio (the guest kernel has no
# io_uring), the first 100 MiB of the device (brmr0's whole capacity), time based.
# BENCH_WORKLOADS picks some (randwrite-4k-qd1 runs only when picked).
WORKLOADS=${BENCH_WORKLOADS:-randwrite-4k randread-4k seqwrite-1M}
wl_opts() {
	case $1 in
	randwrite-4k) echo "--rw=randwrite --bs=4k --iodepth=16" ;;
	randwrite-4k-qd1) echo "--rw=randwrite --bs=4k --iodepth=1" ;;
	randwrite-4k-fsync) echo "--rw=randwrite --bs=4k --iodepth=16 --fsync=16" ;;
	randread-4k) echo "--rw=randread --bs=4k --iodepth=16" ;;
	seqwrite-1M) echo "--rw=write --bs=1M --iodepth=4" ;;
	esac
}
# bench TARGET DEV: run every workload on DEV, append "target workload iops MB/s" to $CSV
bench() {
	local t=$1 dev=$2 w line iops bw
	for w in $WORKLOADS; do
		line=$(on -t $((RUNTIME + 180)) clt "fio --name=$w --filename=$dev --direct=1 --ioengine=libaio \
			$(wl_opts "$w") --size=100M --time_based --runtime=$RUNTIME --ramp_time=2 \
			--norandommap --randrepeat=0 --output-format=terse --terse-version=3" | grep '^3;')
		# terse v3: 5 error, 7/8 read bw KiB/s and IOPS, 48/49 write bw and IOPS
		case $w in
		*read*) iops=$(echo "$line" | cut -d';' -f8) bw=$(echo "$line" | cut -d';' -f7) ;;
		*) iops=$(echo "$line" | cut -d';' -f49) bw=$(echo "$line" | cut -d';' -f48) ;;
		esac
		[ "$(echo "$line" | cut -d';' -f5)" = 0 ] || fail "fio $w on $t: error $(echo "$line" | cut -d';' -f5)"
		expect_match "$iops" '^[0-9]+$' "fio $w on $t: IOPS"
		[ "$iops" -gt 0 ] || fail "fio $w on $t: 0 IOPS"
		bw=$(awk -v k="$bw" 'BEGIN { printf "%.1f", k * 1024 / 1e6 }')
		echo "$t $w $iops $bw" >>"$CSV"
		log "$t $w: $iops IOPS, $bw MB/s"
	done
}

: >"$CSV"
vm_boot clt stg0 stg1

want() { [[ " $TARGETS " == *" $1 "* ]]; }

# ---- (a) brmr0: SPEC §12.1, both legs normal, B synced ------------------------------------
if want brmr; then
modules_load
on_each "stg0 stg1" "echo $WRITE_INTENT >/sys/module/rmr/parameters/write_intent"
wr clt $C/ctl/join_pool "poolname=$P chunk_size=$CHUNK"
wr stg0 $S/ctl/join_pool "poolname=$P member_id=42"
wr stg1 $S/ctl/join_pool "poolname=$P member_id=43"
wr stg0 $BS/ctl/create_store "device=/dev/sda pool=$P mapped_size=$SIZE"
wr stg1 $BS/ctl/create_store "device=/dev/sda pool=$P mapped_size=$SIZE"
wr clt $C/pools/$P/add_sess "sessname=$LEG_A path=ip:$A_IP mode=create"
wr clt $C/pools/$P/sessions/$LEG_A/enable 1
wait_for clt "[ \"\$(cat $C/pools/$P/sessions/$LEG_A/state)\" = normal ]"
wr clt $C/pools/$P/add_sess "sessname=$LEG_B path=ip:$B_IP mode=create"
wr clt $C/pools/$P/sessions/$LEG_B/enable 1
wait_for -t 60 clt "[ \"\$(cat $C/pools/$P/sessions/$LEG_B/state)\" = normal ]"
sync_pools_attach
# the benchmark starts when every map is clean
wr clt $BC/ctl/map_device "pool=$P size=$SIZE"
wait_for clt '[ -b /dev/brmr0 ]'
sync_b_clean
log "write-intent record (rmr.write_intent=$WRITE_INTENT): $(on stg1 "head -1 $S/pools/$P/write_intent")"
bench brmr /dev/brmr0
log "stg1 after the benchmark: $(on stg1 "cat $S/pools/$P/write_intent" | tr '\n' '|')"
# still both legs normal and clean: the numbers are those of the replicated path
for l in $LEG_A $LEG_B; do
	expect_eq "$(on clt "cat $C/pools/$P/sessions/$l/state")" normal "leg $l after the benchmark"
done
for n in stg0 stg1; do
	expect_eq "$(on $n "cat $S/pools/$P/map_summary")" "$CLEAN" "$n maps after the benchmark"
done
# tear down (§12.3 for both legs) so RNBD can export the disks
pool_delete
fi

# ---- (b) one RNBD leg: clt maps stg0's disk ------------------------------------------------
# RTRS on 6.12 keeps one server context per host (rtrs-srv's global ib_ctx): rmr's must be
# closed (module unloaded) before rnbd-server opens its own.
on_each "stg0 stg1" 'if lsmod | grep -q "^brmr "; then rmmod brmr; fi; if lsmod | grep -q "^rmr "; then rmmod rmr; fi'
on_each "stg0 stg1" 'modprobe rnbd-server'
on clt 'modprobe rnbd-client'
on clt "echo 'sessname=rnbd-stg0 path=ip:$A_IP device_path=/dev/sda' >/sys/class/rnbd-client/ctl/map_device"
on clt "echo 'sessname=rnbd-stg1 path=ip:$B_IP device_path=/dev/sda' >/sys/class/rnbd-client/ctl/map_device"
wait_for clt '[ -b /dev/rnbd0 ] && [ -b /dev/rnbd1 ]'
want rnbd && bench rnbd /dev/rnbd0

# ---- (c) md-raid1 over both RNBD legs ------------------------------------------------------
# No udev in the guest: MDADM_NO_UDEV=1 makes mdadm create /dev/md0 itself. --assume-clean:
# no initial resync competing with the benchmark.
BM="--bitmap=none"
[ "$MD_BITMAP" = internal ] && BM="--bitmap=internal --bitmap-chunk=128K"
if want md-raid1; then
on clt '[ -x /usr/sbin/mdadm ]' || fail "no mdadm in the guest: install it on the host (scripts/deps.sh)"
on clt "modprobe raid1 && mkdir -p /run/mdadm && MDADM_NO_UDEV=1 mdadm --create /dev/md0 --run --level=1 \
	--raid-devices=2 --metadata=1.2 --assume-clean $BM /dev/rnbd0 /dev/rnbd1 </dev/null"
wait_for clt '[ -b /dev/md0 ] && grep -q "md0 : active raid1" /proc/mdstat'
log "$(on clt 'cat /proc/mdstat' | tr '\n' '|')"
bench md-raid1 /dev/md0
on clt 'grep -A2 "^md0" /proc/mdstat | grep -q "\[UU\]"'
on clt 'MDADM_NO_UDEV=1 mdadm --stop /dev/md0'
fi
on clt 'echo normal >/sys/block/rnbd0/rnbd/unmap_device && echo normal >/sys/block/rnbd1/rnbd/unmap_device'

# ---- the table -----------------------------------------------------------------------------
{
	echo "fio, TCG guests ($(date -u '+%F %T') UTC, host $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)); ${RUNTIME}s per job, 100 MiB region, direct, libaio; md bitmap: $MD_BITMAP"
	awk -v wl="$WORKLOADS" '{ iops[$1 " " $2] = $3; mbs[$1 " " $2] = $4 }
	END {
		printf "%-16s %19s %19s %19s %10s %10s\n", "workload", "brmr IOPS MB/s", "rnbd IOPS MB/s", "md-raid1 IOPS MB/s", "brmr/rnbd", "brmr/md"
		nt = split("brmr rnbd md-raid1", t, " ")
		n = split(wl, w, " ")
		for (i = 1; i <= n; i++) {
			line = sprintf("%-16s", w[i])
			for (j = 1; j <= nt; j++) {
				k = t[j] " " w[i]
				line = line ((k in iops) ? sprintf(" %9d %9.1f", iops[k], mbs[k]) : sprintf(" %9s %9s", "-", "-"))
			}
			b = "brmr " w[i]
			for (j = 2; j <= nt; j++) {
				k = t[j] " " w[i]
				line = line (((b in iops) && (k in iops) && iops[k] > 0) ? sprintf(" %10.2f", iops[b] / iops[k]) : sprintf(" %10s", "-"))
			}
			print line
		}
		print "ratios: brmr IOPS / other IOPS (> 1: brmr faster)"
	}' "$CSV"
} >"$OUT"
log "results:
$(cat "$OUT")"
