# SPDX-License-Identifier: GPL-2.0-or-later
# 20 rounds of load, configure, tear down, unload of rmr.ko and brmr.ko: every object kind is
# created and destroyed each round (and every other round left for rmmod to tear down). The
# harness fails the scenario on any splat and on a kmemleak report after the last round; the
# slab usage before and after the rounds is logged.
COST=25    # seconds alone, measured: tests/vm/run starts the costliest first
TIMEOUT=300
NSTG=1

vm_boot stg0
round='set -e
C=/sys/class/rmr-client S=/sys/class/rmr-server BS=/sys/class/brmr-server
modprobe brmr
echo "poolname=p$1 member_id=42" >$S/ctl/join_pool
echo "poolname=p$1 chunk_size=131072" >$C/ctl/join_pool
echo "poolname=p$1 chunk_size=131072 sync=y" >$C/ctl/join_pool 2>/dev/null && exit 9 || true
echo "poolname=s$1 chunk_size=4096 sync=y" >$C/ctl/join_pool
echo "device=/dev/sda pool=p$1 mapped_size=204800" >$BS/ctl/create_store
echo 1 >$BS/stores/p$1/remove_store
echo "device=/dev/sda pool=p$1 mapped_size=204800" >$BS/ctl/add_store
cat $BS/stores/p$1/state $S/pools/p$1/state >/dev/null
if [ $(($1 % 2)) = 0 ]; then
	echo 1 >$BS/stores/p$1/delete_store
	echo 1 >$S/pools/p$1/leave_pool
	echo 1 >$C/pools/p$1/leave_pool
	echo 1 >$C/pools/s$1/leave_pool
else
	# leave everything configured: unload must tear it down; wipe the disk for the next round
	rmmod brmr rmr
	dd if=/dev/zero of=/dev/sda bs=4k count=2 conv=fsync 2>/dev/null
	exit 0
fi
rmmod brmr rmr'
on stg0 "printf '%s\n' '$round' >/root/round.sh"
before=$(on stg0 "grep -E '^Slab:' /proc/meminfo")
for i in $(seq 1 20); do
	on stg0 "sh /root/round.sh $i"
done
on stg0 '! lsmod | grep -qE "^b?rmr "'
after=$(on stg0 "grep -E '^Slab:' /proc/meminfo")
log "slab before: $before; after 20 rounds: $after"
