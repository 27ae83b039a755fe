# SPDX-License-Identifier: GPL-2.0-or-later
# Shared by the scenarios that build the admin guide's pool (SPEC §12.1, baseline B0 of §10):
# sourced with `. "$VM_LIB/pool.sh"` after the harness is loaded.
C=/sys/class/rmr-client
S=/sys/class/rmr-server
BC=/sys/class/brmr-client
BS=/sys/class/brmr-server
P=ionos_pool
CHUNK=131072
SIZE=204800                          # mapped_size, sectors
A_IP=$(vm_ip stg0) B_IP=$(vm_ip stg1)
LEG_A=psrv0@stg-rmr0 LEG_B=psrv0@stg-rmr1
SYNC_A=stg-rmr0@stg-rmr1 SYNC_B=stg-rmr1@stg-rmr0
CLEAN="member 43: [] 0/800 dirty
member 42: [] 0/800 dirty"
# A store's data area (Documentation/on-disk-format.md): exported byte b is on the disk at
# b + AREA_BYTES, after the metadata (superblock and four bitmaps of SIZE sectors).
BITMAP_BYTES=$((((SIZE * 512 / 4096 + 7) / 8 + 4095) / 4096 * 4096))
AREA_BYTES=$(((16384 + 4 * BITMAP_BYTES + 1048575) / 1048576 * 1048576))

# The demo's store device: /dev/sda, or with DEMO_DM=1 a device-mapper linear map of it
# (`bdisk`) whose table the demo shell switches to 'error' and back (disk_fail, disk_heal).
# DEMO_DEV_SETUP creates it on a storage node (after each boot).
DEMO_DEV=/dev/sda
DEMO_DEV_SETUP=true
if [ "${DEMO_DM:-0}" = 1 ]; then
	DEMO_DEV=/dev/mapper/bdisk
	DEMO_DEV_SETUP='modprobe dm-flakey; n=$(cat /sys/block/sda/size); dmsetup create bdisk --table "0 $n linear /dev/sda 0"'
fi

# wr NAME ATTR VALUE: echo VALUE >ATTR on NAME. A missing ATTR or EOPNOTSUPP means the kernel
# does not have that step yet: fail saying so; any other error fails as usual.
wr() {
	local n=$1 a=$2 v=$3 out rc
	out=$(on_try "$n" "[ -e $a ] || { echo 'MISSING $a' >&2; exit 3; }; echo '$v' >$a" 2>&1)
	rc=$?
	[ "$rc" = 0 ] && return 0
	case $out in
	*MISSING* | *"Operation not supported"*)
		fail "not implemented yet: on $n: echo '$v' >$a: $(echo "$out" | tail -1)" ;;
	esac
	fail "on $n: echo '$v' >$a exited $rc: $out"
}
# need NAME PATH: PATH must exist on NAME, else the kernel lacks that feature yet
need() {
	on_try "$1" "[ -e $2 ]" >/dev/null || fail "not implemented yet: $1 has no $2"
}
# modules_load: the modules of every role on clt, stg0 and stg1 (SPEC §12.1 steps 1-2).
modules_load() {
	on clt 'modprobe rtrs-client; modprobe rmr; modprobe brmr'
	on_each "stg0 stg1" 'modprobe rtrs-server; modprobe rtrs-client; modprobe rmr; modprobe brmr'
}
# sync_pools_attach: each storage node's sync pool with its leg to the other, attached to its
# server pool (SPEC §12.1 steps 11-14).
sync_pools_attach() {
	wr stg0 $C/ctl/join_pool "poolname=$P chunk_size=$CHUNK sync=y"
	wr stg1 $C/ctl/join_pool "poolname=$P chunk_size=$CHUNK sync=y"
	wr stg0 $C/pools/$P/add_sess "sessname=$SYNC_A path=ip:$B_IP"
	wr stg1 $C/pools/$P/add_sess "sessname=$SYNC_B path=ip:$A_IP"
	wr stg0 $S/pools/$P/add_clt "$P"
	wr stg1 $S/pools/$P/add_clt "$P"
}
# pool_up [B_DEV]: the pool of SPEC §12.1 without the initial sync: both legs created before
# either is enabled (so B needs no sync), B's store on B_DEV (default /dev/sda), the sync
# pools attached, /dev/brmr0 mapped. Modules loaded.
pool_up() {
	local bdev=${1:-/dev/sda} n
	wr clt $C/ctl/join_pool "poolname=$P chunk_size=$CHUNK"
	wr stg0 $S/ctl/join_pool "poolname=$P member_id=42"
	wr stg1 $S/ctl/join_pool "poolname=$P member_id=43"
	wr stg0 $BS/ctl/create_store "device=/dev/sda pool=$P mapped_size=$SIZE"
	wr stg1 $BS/ctl/create_store "device=$bdev pool=$P mapped_size=$SIZE"
	wr clt $C/pools/$P/add_sess "sessname=$LEG_A path=ip:$A_IP mode=create"
	wr clt $C/pools/$P/add_sess "sessname=$LEG_B path=ip:$B_IP mode=create"
	wr clt $C/pools/$P/sessions/$LEG_A/enable 1
	wait_for clt "[ \"\$(head -1 $C/pools/$P/sessions/$LEG_A/state)\" = normal ]"
	wr clt $C/pools/$P/sessions/$LEG_B/enable 1
	wait_for -t 60 clt "[ \"\$(head -1 $C/pools/$P/sessions/$LEG_B/state)\" = normal ]"
	for n in stg0 stg1; do
		expect_eq "$(on $n "cat $S/pools/$P/map_summary")" "$CLEAN" "$n maps: B joined before any leg was normal"
	done
	sync_pools_attach
	wait_for stg1 "[ \"\$(cat $C/pools/$P/sessions/$SYNC_B/state)\" = normal ]"
	wr clt $BC/ctl/map_device "pool=$P size=$SIZE"
	wait_for clt '[ -b /dev/brmr0 ]'
}
# sync_start NAME: write `start` to NAME's server pool sync; EBUSY counts as done: the node
# starts its sync by itself when it enters normal with chunks to sync (SPEC §11
# [improvement]), so the run may be going on already.
sync_start() {
	local out
	out=$(on_try "$1" "echo start >$S/pools/$P/sync" 2>&1) && return 0
	case $out in *"Device or resource busy"*) log "$1: sync already running (started by itself)"; return 0 ;; esac
	fail "on $1: echo start >$S/pools/$P/sync: $out"
}
# sync_b_clean: B (stg1) syncs everything it misses through its sync pool (SPEC §12.1 step 15,
# or by itself; the sync thread ends by itself, §7), then every map_summary line on both
# nodes is clean.
sync_b_clean() {
	sync_start stg1
	wait_for -t 400 stg1 "[ \"\$(cat $S/pools/$P/sync)\" = stopped ] && grep -q '^member 43: \[\] 0/' $S/pools/$P/map_summary"
	expect_eq "$(on stg1 "cat $S/pools/$P/map_summary")" "$CLEAN" "B's maps after its sync"
	wait_for -t 60 stg0 "[ \"\$(cat $S/pools/$P/map_summary)\" = '$CLEAN' ]"
}
# fio_raw_start: on clt, fio writes and checks brmr0's raw range 64-72 MiB (chunks 512-575 of
# 128 KiB) in passes until fio_raw_stop: random 4 KiB writes (QD16, direct), each pass read
# back and verified (md5); a failed pass ends the loop. Echoes the background job.
FIO_RAW="fio --name=raw --filename=/dev/brmr0 --offset=64M --size=8M --rw=randwrite --bs=4k --ioengine=libaio --iodepth=16 --direct=1 --verify=md5 --do_verify=1 --randrepeat=0 --verify_fatal=1"
fio_raw_start() {
	on_bg clt "rm -f /tmp/fio.stop; n=0; while [ ! -e /tmp/fio.stop ]; do n=\$((n + 1)); $FIO_RAW >/tmp/fio.out 2>&1 || { echo \"fio pass \$n FAILED\"; grep -m5 -iE 'verify|error|bad' /tmp/fio.out; exit 1; }; done; echo \"fio: \$n passes, every one checked clean\""
}
# fio_raw_stop JOB: end fio_raw_start's loop after its current pass (at most 120 s); every pass
# must have passed its check.
fio_raw_stop() {
	on clt 'touch /tmp/fio.stop'
	log "$(bg_wait -t 120 "$1")"
}
# pool_delete: unmap brmr0, remove the sync legs and both client legs (mode=delete), then
# delete the stores and leave every pool (SPEC §12.3 for both legs).
pool_delete() {
	local n
	wr clt $BC/ctl/devices/brmr0/unmap_device 1
	wr stg0 $C/pools/$P/sessions/$SYNC_A/del_sess mode=disassemble
	wr stg1 $C/pools/$P/sessions/$SYNC_B/del_sess mode=disassemble
	wr clt $C/pools/$P/sessions/$LEG_A/del_sess mode=delete
	wr clt $C/pools/$P/sessions/$LEG_B/del_sess mode=delete
	wr clt $C/pools/$P/leave_pool 1
	for n in stg0 stg1; do
		wait_for $n "[ \"\$(cat $S/pools/$P/state)\" = registered ]"
		wr $n $BS/stores/$P/delete_store 1
		wr $n $S/pools/$P/leave_pool 1
		wr $n $C/pools/$P/leave_pool 1
	done
}
