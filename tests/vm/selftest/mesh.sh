# SPDX-License-Identifier: GPL-2.0-or-later
# Harness self-test: the largest topology (clt + stg0..stg3). Every guest reaches every other
# over its own link (IP and Soft-RoCE); RNBD runs between two storage nodes; link_down drops
# the carrier, link_drop loses frames silently, both survive a restart of one end, link_up
# restores them.
TIMEOUT=300
NSTG=4
KMEMLEAK=0

vm_boot
for g in clt stg0 stg1 stg2 stg3; do
	peers=""
	for p in clt stg0 stg1 stg2 stg3; do [ "$p" = "$g" ] || peers="$peers $(vm_ip "$p")"; done
	# one ping per peer, in parallel; every rxe device ACTIVE
	on "$g" "for ip in $peers; do ping -c 1 -W 5 \$ip >/dev/null & done; ok=0; for j in \$(jobs -p); do wait \$j || ok=1; done; exit \$ok"
	expect_eq "$(on "$g" 'rdma link | grep -c "state ACTIVE"')" 4 "ACTIVE rxe devices on $g"
done
expect_eq "$(on stg2 "grep -w $(vm_ip stg3) /run/links | cut -d' ' -f1")" "$(vm_iface stg2 stg3)" "vm_iface stg2 stg3"

# RDMA between two storage nodes
on stg3 'modprobe brd rd_nr=1 rd_size=8192 && modprobe rnbd-server'
on stg2 'modprobe rnbd-client'
on stg2 "echo 'sessname=s23 path=ip:$(vm_ip stg3) device_path=/dev/ram0' >/sys/class/rnbd-client/ctl/map_device"
wait_for stg2 '[ -b /dev/rnbd0 ]'
on stg2 'dd if=/dev/urandom of=/tmp/p bs=1M count=2 2>/dev/null && dd if=/tmp/p of=/dev/rnbd0 bs=1M oflag=direct 2>/dev/null'
expect_eq "$(on stg3 'dd if=/dev/ram0 bs=1M count=2 2>/dev/null | sha256sum')" "$(on stg2 'sha256sum </tmp/p')" "data stg2 -> stg3"
on stg2 'echo normal >/sys/block/rnbd0/rnbd/unmap_device'

# link_down: carrier lost on both ends, no traffic; other links unaffected
e01=$(vm_iface stg0 stg1) e10=$(vm_iface stg1 stg0)
link_down stg0 stg1
expect_eq "$(on stg0 "cat /sys/class/net/$e01/carrier")" 0 "carrier stg0->stg1 when down"
expect_eq "$(on stg1 "cat /sys/class/net/$e10/carrier")" 0 "carrier stg1->stg0 when down"
on_fail stg0 "ping -c 1 -W 1 $(vm_ip stg1)"
on stg0 "ping -c 1 -W 5 $(vm_ip stg2) >/dev/null"
link_up stg0 stg1
expect_eq "$(on stg0 "cat /sys/class/net/$e01/carrier")" 1 "carrier after link_up"
wait_for -t 20 stg0 "ping -c 1 -W 2 $(vm_ip stg1)"

# link_drop: carrier stays, frames vanish
link_drop stg0 stg1
expect_eq "$(on stg0 "cat /sys/class/net/$e01/carrier")" 1 "carrier when dropping"
on_fail stg0 "ping -c 1 -W 1 $(vm_ip stg1)"
on_fail stg1 "ping -c 1 -W 1 $(vm_ip stg0)"
link_up stg0 stg1
wait_for -t 20 stg0 "ping -c 1 -W 2 $(vm_ip stg1)"

# a cut link stays cut across a restart of one end
link_drop stg1 stg2
link_down clt stg1
vm_reboot stg1
on_fail stg1 "ping -c 1 -W 1 $(vm_ip stg2)"
on_fail stg1 "ping -c 1 -W 1 $(vm_ip clt)"
expect_eq "$(on stg1 "cat /sys/class/net/$(vm_iface stg1 clt)/carrier")" 0 "carrier of a down link after restart"
on stg1 "ping -c 1 -W 5 $(vm_ip stg0) >/dev/null"
link_up stg1 stg2
link_up clt stg1
wait_for -t 20 stg1 "ping -c 1 -W 2 $(vm_ip stg2)"
wait_for -t 20 stg1 "ping -c 1 -W 2 $(vm_ip clt)"
