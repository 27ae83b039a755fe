# SPDX-License-Identifier: GPL-2.0-or-later
# `make demo`: boot the three-guest cluster (clt, stg0 = stg-rmr0, stg1 = stg-rmr1), run the
# admin guide's bring-up (SPEC §12.1) command for command, put ext4 on /dev/brmr0, and print
# what the sysfs interface shows on every node.
TIMEOUT=400
NSTG=2
P=ionos_pool
C=/sys/class/rmr-client
S=/sys/class/rmr-server

vm_boot clt stg0 stg1
on clt 'modprobe rtrs-client && modprobe rmr && modprobe brmr'
on_each "stg0 stg1" 'modprobe rtrs-server && modprobe rtrs-client && modprobe rmr && modprobe brmr'
on clt "echo 'poolname=$P chunk_size=131072' >$C/ctl/join_pool"
on stg0 "echo 'poolname=$P member_id=42' >$S/ctl/join_pool"
on stg1 "echo 'poolname=$P member_id=43' >$S/ctl/join_pool"
on_each "stg0 stg1" "echo 'device=/dev/sda pool=$P mapped_size=204800' >/sys/class/brmr-server/ctl/create_store"
on clt "echo 'sessname=psrv0@stg-rmr0 path=ip:192.168.122.80 mode=create' >$C/pools/$P/add_sess"
on clt "echo 1 >$C/pools/$P/sessions/psrv0@stg-rmr0/enable"
on clt "echo 'sessname=psrv0@stg-rmr1 path=ip:192.168.122.84 mode=create' >$C/pools/$P/add_sess"
on clt "echo 1 >$C/pools/$P/sessions/psrv0@stg-rmr1/enable"
on_each "stg0 stg1" "echo 'poolname=$P chunk_size=131072 sync=y' >$C/ctl/join_pool"
on stg0 "echo 'sessname=stg-rmr0@stg-rmr1 path=ip:192.168.122.84' >$C/pools/$P/add_sess"
on stg1 "echo 'sessname=stg-rmr1@stg-rmr0 path=ip:192.168.122.80' >$C/pools/$P/add_sess"
on_each "stg0 stg1" "echo $P >$S/pools/$P/add_clt"
on stg1 "echo start >$S/pools/$P/sync"
wait_for -t 300 stg1 "[ \"\$(cat $S/pools/$P/sync)\" = stopped ]"
on clt "echo 'pool=$P size=204800' >/sys/class/brmr-client/ctl/map_device"
# 32 requests in flight, not 256: see brmr0_qd_cap in tests/vm/lib/pool.sh.
on clt 'echo 32 >/sys/block/brmr0/queue/nr_requests'
on clt 'mkfs.ext4 -q /dev/brmr0 && mkdir -p /mnt && mount /dev/brmr0 /mnt &&
	/usr/bin/dd if=/dev/urandom of=/mnt/demo bs=1M count=16 status=none && sync && umount /mnt'
show() {
	on "$1" "cd /sys/class; for f in \$(find rmr-client/pools/ rmr-server/pools/ brmr-server/stores/ \
		brmr-client/ctl/devices/ -mindepth 2 -maxdepth 4 -type f -perm -0400 \
		-not -name map -not -name uevent -not -path '*/block/*' 2>/dev/null | sort); do
		printf '  %-58s %s\n' \"\$f\" \"\$(tr '\n' ' ' <\$f | cut -c1-100)\"; done"
}
for n in clt stg0 stg1; do
	echo "== $n ($(vm_ip "$n"))"
	show $n
	echo
done
on clt "lsblk /dev/brmr0"
