#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# tests/bench/fio.sh: fio on /dev/brmr0 vs. one RNBD leg vs. md-raid1 over two RNBD legs vs.
# DRBD 8.4 (protocol C, an RNBD leg as its lower device), in the VM testbed (clt, stg0, stg1),
# on the storage nodes' disks or on RAM disks (BENCH_STORE=brd). See tests/bench/README.md.
#
# Run it as a program: it runs itself as a scenario through tests/vm/run and prints the table
# (also in results/<timestamp>/fio/bench.txt). tests/vm/run sources this same file as the
# scenario (everything below the "scenario" line).
TIMEOUT=2400
NSTG=2
# A 2-vCPU client (BENCH_CLT_CPUS): a replicated write costs the client two sends.
CPUS_clt=${BENCH_CLT_CPUS:-2}
# RAM disks need room beside the guest's own memory.
STORE=${BENCH_STORE:-disk}          # disk (virtio-scsi /dev/sda) or brd (/dev/ram0, 256 MiB)
if [ "$STORE" = brd ]; then MEM_MB_stg0=768 MEM_MB_stg1=768; fi

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
TARGETS=${BENCH_TARGETS:-brmr rnbd md-raid1 drbd}  # a subset runs only those (e.g. the baselines)
WRITE_INTENT=${BENCH_WRITE_INTENT:-1}   # rmr.write_intent on the storage nodes (0: no record)
. "$VM_LIB/pool.sh"
OUT=$VM_DIR/bench.txt
CSV=$VM_DIR/bench.csv


# The workloads: name, fio options. All: direct IO, libaio (the guest kernel has no
# io_uring), the first 100 MiB of the device (brmr0's whole capacity), time based.
# BENCH_WORKLOADS picks some (randwrite-4k-fsync runs only when picked).
WORKLOADS=${BENCH_WORKLOADS:-randwrite-4k randwrite-4k-qd1 randread-4k seqwrite-1M randrw-4k-70}
wl_opts() {
	case $1 in
	randwrite-4k) echo "--rw=randwrite --bs=4k --iodepth=16" ;;
	randwrite-4k-qd1) echo "--rw=randwrite --bs=4k --iodepth=1" ;;
	randwrite-4k-fsync) echo "--rw=randwrite --bs=4k --iodepth=16 --fsync=16" ;;
	randread-4k) echo "--rw=randread --bs=4k --iodepth=16" ;;
	seqwrite-1M) echo "--rw=write --bs=1M --iodepth=4" ;;
	randrw-4k-70) echo "--rw=randrw --rwmixread=70 --bs=4k --iodepth=16" ;;
	esac
}
# cpu_snap: host CPU ticks (busy, total) and each guest's QEMU CPU ticks (clt stg0 stg1), to
# see where a job's time goes: the host has two cores for three guests.
cpu_snap() {
	local n pid t
	awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat | tr '\n' ' '
	for n in clt stg0 stg1; do
		pid=$(cat "$VM_RUN/$n/pid" 2>/dev/null) && t=$(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null) || t=0
		printf '%s ' "${t:-0}"
	done
	echo
}
# cpu_use BEFORE AFTER: "host busy %, clt %, stg0 %, stg1 %" (a guest's share of one host core)
cpu_use() {
	echo "$1 $2" | awk '{ t = $7 - $2; if (t <= 0) t = 1; n = 2
		printf "%d %d %d %d", 100 * ($6 - $1) / t, 100 * n * ($8 - $3) / t, 100 * n * ($9 - $4) / t, 100 * n * ($10 - $5) / t }'
}
# bench TARGET DEV: run every workload on DEV, append "target workload iops MB/s p50_us p99_us
# host_busy% clt% stg0% stg1%" to $CSV (IOPS and MB/s of reads and writes together; the completion latency percentiles of
# the writes, or of the reads for a read-only workload).
bench() {
	local t=$1 dev=$2 w line r c0 cpu
	for w in $WORKLOADS; do
		c0=$(cpu_snap)
		line=$(on -t $((RUNTIME + 180)) clt "fio --name=$w --filename=$dev --direct=1 --ioengine=libaio \
			$(wl_opts "$w") --size=100M --time_based --runtime=$RUNTIME --ramp_time=2 \
			--norandommap --randrepeat=0 --output-format=terse --terse-version=3" | grep '^3;')
		cpu=$(cpu_use "$c0" "$(cpu_snap)")
		echo "$t $w $line" >>"$VM_DIR/fio-terse.txt"
		# terse v3: 5 error; reads 7 bw KiB/s, 8 IOPS, 18-37 clat percentiles ("50.000000%=us");
		# writes 48 bw, 49 IOPS, 59-78 clat percentiles
		r=$(echo "$line" | awk -F';' -v w="$w" '
			function pct(from, p,   i, kv) {
				for (i = from; i < from + 20; i++) { split($i, kv, "="); if (kv[1] == p "%") return kv[2] }
				return -1
			}
			{
				iops = $8 + $49; bw = ($7 + $48) * 1024 / 1e6
				c = (w ~ /read/ && w !~ /rw/) ? 18 : 59
				printf "%d %.1f %d %d %d", iops, bw, pct(c, "50.000000"), pct(c, "99.000000"), $5
			}')
		set -- $r
		[ "${5:-1}" = 0 ] || fail "fio $w on $t: error ${5:-none}: $line"
		expect_match "$1" '^[0-9]+$' "fio $w on $t: IOPS"
		[ "$1" -gt 0 ] || fail "fio $w on $t: 0 IOPS"
		echo "$t $w $1 $2 $3 $4 $cpu" >>"$CSV"
		log "$t $w: $1 IOPS, $2 MB/s, clat p50 $3 us, p99 $4 us; CPU % host busy, clt, stg0, stg1: $cpu"
	done
}

: >"$CSV"
vm_boot clt stg0 stg1

want() { [[ " $TARGETS " == *" $1 "* ]]; }

# The storage nodes' device: the disk, or a RAM disk of the same size (no device latency, no
# volatile cache: the replication path is what gets measured).
DEV=/dev/sda
if [ "$STORE" = brd ]; then
	DEV=/dev/ram0
	on_each "stg0 stg1" 'modprobe brd rd_nr=1 rd_size=262144 && [ -b /dev/ram0 ]'
fi

# ---- (a) brmr0: SPEC §12.1, both legs normal, B synced ------------------------------------
if want brmr; then
modules_load
on_each "stg0 stg1" "echo $WRITE_INTENT >/sys/module/rmr/parameters/write_intent"
wr clt $C/ctl/join_pool "poolname=$P chunk_size=$CHUNK"
wr stg0 $S/ctl/join_pool "poolname=$P member_id=42"
wr stg1 $S/ctl/join_pool "poolname=$P member_id=43"
wr stg0 $BS/ctl/create_store "device=$DEV pool=$P mapped_size=$SIZE"
wr stg1 $BS/ctl/create_store "device=$DEV pool=$P mapped_size=$SIZE"
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
# Where the time goes: a flat kernel profile (perf, cpu-clock samples on every CPU) of clt and
# stg0 while randwrite-4k runs once more (not counted in the table).
if [ "${BENCH_PROFILE:-1}" = 1 ] && on_try clt '[ -x /usr/bin/perf ]' >/dev/null 2>&1; then
	prof=$(on_bg clt "fio --name=prof --filename=/dev/brmr0 --direct=1 --ioengine=libaio $(wl_opts randwrite-4k) \
		--size=100M --time_based --runtime=$((RUNTIME + 4)) --norandommap --randrepeat=0 >/dev/null")
	sleep 2
	for n in clt stg0; do
		on_bg "$n" "perf record -q -a -g -e cpu-clock -F 499 -o /tmp/perf.data -- sleep $RUNTIME >/dev/null 2>&1" >"$VM_DIR/prof-$n.job"
	done
	for n in clt stg0; do
		bg_wait -t $((RUNTIME + 60)) "$(cat "$VM_DIR/prof-$n.job")" >/dev/null
		on "$n" "perf report -i /tmp/perf.data --stdio --no-children -g none --sort dso,sym --percent-limit 0.5 2>/dev/null | grep -v '^#' | grep -v '^\$' | head -40" >"$VM_DIR/profile-$n.txt"
		# self time per module (rmr, brmr, rdma_rxe, rtrs_client, ...; the kernel itself)
		on "$n" "perf report -i /tmp/perf.data --stdio --no-children -g none --sort dso 2>/dev/null | grep -v '^#' | grep -v '^\$' | head -12" >"$VM_DIR/profile-$n-modules.txt"
		# inclusive time (a function with everything it calls), and the call chains (folded,
		# innermost last) of the spin lock paths
		on "$n" "perf report -i /tmp/perf.data --stdio --children -g none --sort sym --percent-limit 2 2>/dev/null | grep -v '^#' | grep -v '^\$' | head -60;
			for f in queued_spin_lock_slowpath _raw_spin_unlock_irqrestore; do echo \"== callers of \$f\"; perf report -i /tmp/perf.data --stdio --no-children --symbols=\$f -g folded,0.05,caller,count --sort sym 2>/dev/null | grep -v '^#' | grep -v '^\$' | sort -rn | cut -c1-400 | head -25; done" >"$VM_DIR/profile-$n-callers.txt"
	done
	bg_wait -t 120 "$prof" >/dev/null
	log "profile of clt during brmr randwrite-4k (top 12):
$(head -12 "$VM_DIR/profile-clt.txt")"
fi
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
on clt "echo 'sessname=rnbd-stg0 path=ip:$A_IP device_path=$DEV' >/sys/class/rnbd-client/ctl/map_device"
on clt "echo 'sessname=rnbd-stg1 path=ip:$B_IP device_path=$DEV' >/sys/class/rnbd-client/ctl/map_device"
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
on clt 'echo normal >/sys/block/rnbd1/rnbd/unmap_device'

# ---- (d) DRBD 8.4, protocol C: clt primary on rnbd0 (stg0's device), stg1 its TCP peer ------
# drbd-utils' 8.4 tools (drbdsetup-84, drbdmeta) without a configuration file: internal
# metadata, the initial sync skipped (new-current-uuid --clear-bitmap, the contents are random
# anyway), then clt promoted.
if want drbd; then
on clt '[ -x /usr/sbin/drbdsetup-84 ] && [ -x /usr/sbin/drbdmeta ]' || fail "no DRBD 8.4 tools in the guest: install drbd-utils on the host (scripts/deps.sh)"
drbd_up() { # NAME LOWER MY_IP PEER_IP
	on "$1" "mkdir -p /var/lock /var/run/drbd /var/lib/drbd && modprobe drbd && yes yes | drbdmeta --force 0 v08 $2 internal create-md >/dev/null &&
		drbdsetup-84 new-resource r0 && drbdsetup-84 new-minor r0 0 0 &&
		drbdsetup-84 attach 0 $2 $2 internal &&
		drbdsetup-84 connect r0 ipv4:$3:7789 ipv4:$4:7789 --protocol=C"
}
drbd_up clt /dev/rnbd0 "$(vm_ip clt)" "$B_IP"
drbd_up stg1 "$DEV" "$B_IP" "$(vm_ip clt)"
wait_for -t 60 clt 'grep -q "cs:Connected" /proc/drbd'
on clt 'drbdsetup-84 new-current-uuid 0 --clear-bitmap'
wait_for -t 60 clt 'grep -q "ds:UpToDate/UpToDate" /proc/drbd'
on clt 'drbdsetup-84 primary 0 && [ -b /dev/drbd0 ]'
log "$(on clt 'cat /proc/drbd' | tr '\n' '|')"
bench drbd /dev/drbd0
on clt 'grep -q "cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate" /proc/drbd'
on clt 'drbdsetup-84 down r0'
on stg1 'drbdsetup-84 down r0'
# DRBD 8.4's worker takes a mutex while it prepares to wait (wait_for_work), which the test
# kernel's CONFIG_DEBUG_ATOMIC_SLEEP reports as a WARNING with a call trace. Allowed only
# when every such warning on a guest is DRBD's.
for n in clt stg1; do
	on "$n" 'w=$(dmesg | grep -c "WARNING: .* __might_sleep"); d=$(dmesg | grep -cE "wait_for_work\+0x[0-9a-f]+/0x[0-9a-f]+ \[drbd\]"); echo "$w might_sleep warnings, $d in DRBD'"'"'s worker"; [ "$w" -le "$d" ]'
done
log_allow 'WARNING: CPU: [0-9]+ PID: [0-9]+ at kernel/sched/core.c:[0-9]+ __might_sleep'
log_allow 'Call Trace:'
fi
on clt 'echo normal >/sys/block/rnbd0/rnbd/unmap_device'

# ---- the table -----------------------------------------------------------------------------
# One row per workload and target; the ratios are brmr's against that target (IOPS: > 1 brmr
# faster; latency: < 1 brmr faster). Then the issue's targets, met or missed.
{
	echo "fio, TCG guests ($(date -u '+%F %T') UTC, host $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)); store: $STORE; client vCPUs: $CPUS_clt; ${RUNTIME}s per job, 100 MiB region, direct, libaio; md bitmap: $MD_BITMAP"
	awk -v wl="$WORKLOADS" '{ iops[$1 " " $2] = $3; mbs[$1 " " $2] = $4; p50[$1 " " $2] = $5; p99[$1 " " $2] = $6
		cpu[$1 " " $2] = sprintf("%3d %3d %3d %3d", $7, $8, $9, $10) }
	function ratio(a, b) { return (b > 0 && a != "") ? sprintf("%.2f", a / b) : "-" }
	END {
		printf "%-16s %-9s %7s %8s %8s %8s %10s %10s  %s\n", "workload", "target", "IOPS", "MB/s", "p50 us", "p99 us", "brmr/IOPS", "brmr/p50", "CPU% host clt stg0 stg1"
		nt = split("brmr rnbd md-raid1 drbd", t, " ")
		n = split(wl, w, " ")
		for (i = 1; i <= n; i++) {
			b = "brmr " w[i]
			for (j = 1; j <= nt; j++) {
				k = t[j] " " w[i]
				if (!(k in iops)) continue
				printf "%-16s %-9s %7d %8.1f %8d %8d %10s %10s      %s\n", w[i], t[j], iops[k], mbs[k], p50[k], p99[k],
					(j > 1 && (b in iops)) ? ratio(iops[b], iops[k]) : "", (j > 1 && (b in iops)) ? ratio(p50[b], p50[k]) : "", cpu[k]
			}
		}
		# targets of issue 12 (ratios of one run)
		print ""
		print "targets (issue 12):"
		chk("randwrite-4k", "rnbd", "iops", 0.5); chk("randwrite-4k", "drbd", "iops", 1.0); chk("randwrite-4k", "md-raid1", "iops", 1.5)
		chk("randwrite-4k-qd1", "rnbd", "p50", 1.2)
		chk("randread-4k", "rnbd", "iops", 0.98)
		chk("seqwrite-1M", "rnbd", "iops", 0.5); chk("seqwrite-1M", "drbd", "iops", 1.0)
	}
	function chk(wk, other, what, lim,   b, k, r, ok) {
		b = "brmr " wk; k = other " " wk
		if (!(b in iops) || !(k in iops)) return
		if (what == "iops") { r = iops[b] / iops[k]; ok = r >= lim; rel = ">=" } else { r = (p50[k] > 0) ? p50[b] / p50[k] : 0; ok = r <= lim; rel = "<=" }
		printf "  %-16s brmr/%-8s %-4s %.2f (want %s %.2f): %s\n", wk, other, what, r, rel, lim, ok ? "met" : "MISSED"
	}' "$CSV"
	for n in clt stg0; do
		[ -s "$VM_DIR/profile-$n.txt" ] || continue
		echo
		echo "profile of $n during brmr randwrite-4k (perf, cpu-clock, % of samples on all its CPUs; top 15):"
		head -15 "$VM_DIR/profile-$n.txt"
		echo "by module (self time):"
		cat "$VM_DIR/profile-$n-modules.txt" 2>/dev/null
	done
} >"$OUT"
log "results:
$(cat "$OUT")"
