# SPDX-License-Identifier: GPL-2.0-or-later
# `make demo`: boot the three-guest cluster (clt, stg0 = stg-rmr0, stg1 = stg-rmr1), build the
# admin guide's pool on both storage nodes (SPEC §12.1 steps 1-6 and 11, which need no client
# session yet) and print what the sysfs interface shows. The replicated bring-up (client legs,
# sync sessions, /dev/brmr0) arrives with the replicated IO path.
TIMEOUT=300
NSTG=2
P=ionos_pool

vm_boot clt stg0 stg1
on clt 'modprobe rtrs-client && modprobe rmr && modprobe brmr'
for n in stg0 stg1; do
	on $n 'modprobe rtrs-server && modprobe rtrs-client && modprobe rmr && modprobe brmr'
done
on clt "echo 'poolname=$P chunk_size=131072' >/sys/class/rmr-client/ctl/join_pool"
on stg0 "echo 'poolname=$P member_id=42' >/sys/class/rmr-server/ctl/join_pool"
on stg1 "echo 'poolname=$P member_id=43' >/sys/class/rmr-server/ctl/join_pool"
for n in stg0 stg1; do
	on $n "echo 'device=/dev/sda pool=$P mapped_size=204800' >/sys/class/brmr-server/ctl/create_store"
	on $n "echo 'poolname=$P chunk_size=131072 sync=y' >/sys/class/rmr-client/ctl/join_pool"
done
show() {
	on "$1" "cd /sys/class; for d in \$(find rmr-client/pools/ rmr-server/pools/ brmr-server/stores/ \
		-mindepth 1 -maxdepth 1 -type d | sort); do echo \"  \$d/\"; done
		for f in \$(find rmr-client/pools/ rmr-server/pools/ brmr-server/stores/ \
		-mindepth 2 -maxdepth 2 -type f -perm -0400 2>/dev/null | sort); do
		printf '  %-44s %s\n' \"\$f\" \"\$(tr '\n' ' ' <\$f)\"; done"
}
for n in clt stg0 stg1; do
	echo "== $n ($(vm_ip "$n"))"
	show $n
	echo
done
