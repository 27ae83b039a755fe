# SPDX-License-Identifier: GPL-2.0-or-later
# `make demo`: boot the three-guest cluster (clt = compute client P, stg0 = A = stg-rmr0,
# stg1 = B = stg-rmr1), run the admin guide's bring-up (SPEC §12.1) with rmrctl verbs, put
# ext4 on /dev/brmr0, write some files, and show `rmrctl status` on every node.
# `make demo-shell` (DEMO_SHELL=1) then leaves the cluster running and gives a prompt
# (tests/vm/lib/demo_shell.sh): run commands on a guest, cut and restore a link, crash and
# restart a node, watch the status of every node refresh while it fails and resyncs.
# Without a terminal (stdin not a tty) the prompt reads its commands from stdin.
# DEMO_NOSYNC=1 (scripted scenarios): both legs are created before either is enabled, so B
# needs no first sync. DEMO_DM=1: the stores sit on a device-mapper map of /dev/sda that the
# shell can make fail (disk_fail, disk_heal).
TIMEOUT=400
[ "${DEMO_SHELL:-0}" = 1 ] && TIMEOUT=86400
NSTG=2
. "$VM_LIB/pool.sh"
. "$VM_LIB/capture.sh"
T_START=$EPOCHREALTIME

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; log "demo: $*"; }
# run NAME CMD: show the command as the user would type it, then run it on the guest
run() {
	printf '  %s# %s\n' "$1" "$2"
	on "$1" "$2" | sed 's/^/    /'
	[ "${PIPESTATUS[0]}" = 0 ] || exit 1
}

say "booting clt, stg0, stg1 (QEMU TCG)"
vm_boot clt stg0 stg1

say "SPEC §12.1 bring-up with rmrctl"
on clt 'modprobe rtrs-client; modprobe rmr; modprobe brmr'
on_each "stg0 stg1" "modprobe rtrs-server; modprobe rtrs-client; modprobe rmr; modprobe brmr; $DEMO_DEV_SETUP"
run clt "rmrctl pool join $P --chunk-size $CHUNK"
run stg0 "rmrctl pool join $P --member-id 42"
run stg1 "rmrctl pool join $P --member-id 43"
run stg0 "rmrctl store create $P --device $DEMO_DEV --mapped-size $SIZE"
run stg1 "rmrctl store create $P --device $DEMO_DEV --mapped-size $SIZE"
if [ "${DEMO_NOSYNC:-0}" = 1 ]; then
	# Scripted scenarios whose subject is not B's first sync: both legs are created before
	# either is enabled, so B misses nothing (the order of pool_up in tests/vm/lib/pool.sh).
	run clt "rmrctl leg add $P $LEG_A --path $A_IP --mode create --wait"
	run clt "rmrctl leg add $P $LEG_B --path $B_IP --mode create --wait"
	run clt "rmrctl leg enable $P $LEG_A --wait"
	run clt "rmrctl leg enable $P $LEG_B --wait=60"
else
	run clt "rmrctl leg add $P $LEG_A --path $A_IP --mode create --wait"
	run clt "rmrctl leg enable $P $LEG_A --wait"
	run clt "rmrctl leg add $P $LEG_B --path $B_IP --mode create --wait"
	run clt "rmrctl leg enable $P $LEG_B --wait=60"
fi
run stg0 "rmrctl pool join $P --chunk-size $CHUNK --sync"
run stg1 "rmrctl pool join $P --chunk-size $CHUNK --sync"
run stg0 "rmrctl leg add $P $SYNC_A --path $B_IP --wait"
run stg1 "rmrctl leg add $P $SYNC_B --path $A_IP --wait"
run stg0 "rmrctl pool attach $P"
run stg1 "rmrctl pool attach $P"
if [ "${DEMO_NOSYNC:-0}" = 1 ]; then
	say "B joined before A was enabled: nothing to sync"
	run stg1 "grep -x 'member 43: \[\] 0/800 dirty' /sys/class/rmr-server/pools/$P/map_summary"
else
	say "B joined next to a NORMAL A, so it misses every chunk: B syncs them from A (by itself)"
	run stg1 "rmrctl sync start $P --wait=300"
fi
run clt "rmrctl device map $P --size $SIZE"
wait_for clt '[ -b /dev/brmr0 ]'

say "ext4 on /dev/brmr0"
run clt 'mkfs.ext4 -q /dev/brmr0 && mkdir -p /mnt && mount /dev/brmr0 /mnt && df -h /mnt'
MOUNTED=$(_since "$T_START")
run clt 'seq 1 200000 >/mnt/numbers &&
/usr/bin/dd if=/dev/urandom of=/mnt/random.bin bs=1M count=16 status=none && sync &&
du -sh /mnt/*'
on clt '/usr/bin/sha256sum /mnt/numbers /mnt/random.bin' | tee "$VM_DIR/demo.sums" | sed 's/^/    /'

say "rmrctl status on every node"
for n in clt stg0 stg1; do
	printf '\n\033[1m-- %s (%s)\033[0m\n' "$n" "$(vm_ip "$n")"
	on "$n" 'rmrctl status'
done
say "/dev/brmr0 mounted ${MOUNTED}s after the start; demo complete after $(_since "$T_START")s"
echo "MOUNTED ${MOUNTED}s" >>"$VM_DIR/timings"

if [ "${DEMO_SHELL:-0}" = 1 ]; then
	. "$VM_LIB/demo_shell.sh"
	demo_shell
fi
