# SPDX-License-Identifier: GPL-2.0-or-later
# The harness's fault injection on RNBD:
#  1. link cut and restore, as a pulled cable (link_down) and as silent loss (link_drop): with
#     rnbd0 mapped from stg0, IO over the cut link must fail or stall (never succeed) and RTRS
#     must see the path go down; after link_up the path reconnects and old and new data read
#     back identical.
#  2. hard kill and reboot: data written to stg0's disk through RNBD survives SIGKILL of stg0's
#     QEMU and a fresh boot (checked in the guest and in the host's image); after rnbd-server is
#     loaded again the client reconnects and reads it back through RNBD.
COST=65    # seconds alone, measured: tests/vm/run starts the costliest first
TIMEOUT=300
NSTG=1

# the client's RTRS path of the session to stg0
STATE=/sys/class/rtrs-client/rnbd-stg0/paths/*/state
RECONNECT=/sys/class/rtrs-client/rnbd-stg0/paths/*/reconnect
sum() { on "$1" "$2 2>/dev/null | sha256sum"; }

vm_boot clt stg0
on stg0 'modprobe rnbd-server'
on clt 'modprobe rnbd-client'
on clt "echo 'sessname=rnbd-stg0 path=ip:$(vm_ip stg0) device_path=/dev/sda' >/sys/class/rnbd-client/ctl/map_device"
wait_for clt '[ -b /dev/rnbd0 ]'
on clt 'for p in a b c; do dd if=/dev/urandom of=/tmp/$p bs=1M count=4 2>/dev/null; done'
A=$(on clt 'sha256sum </tmp/a')
B=$(on clt 'sha256sum </tmp/b')
C=$(on clt 'sha256sum </tmp/c')
on clt 'dd if=/tmp/a of=/dev/rnbd0 bs=1M oflag=direct 2>/dev/null'
expect_eq "$(sum clt 'dd if=/dev/rnbd0 bs=1M count=4 iflag=direct')" "$A" "pattern a before the cut"

# ---- 1. link cut and restore: carrier loss (link_down), then silent loss (link_drop) ----
cut_and_restore() { # link_down|link_drop
	local job state
	$1 clt stg0
	job=$(on_bg clt 'dd if=/tmp/b of=/dev/rnbd0 bs=1M seek=8 oflag=direct conv=fsync')
	# RTRS notices within its RDMA retry / heartbeat budget (seconds; 25 s heartbeat at worst)
	wait_for -t 60 clt "grep -q disconnected $STATE"
	if bg_wait_try -t 5 "$job" >/dev/null 2>&1; then
		fail "$1: a write over the cut link succeeded"
	fi
	state=$(on clt "[ -e /run/bg/${job#*:}.rc ] && echo failed rc=\$(cat /run/bg/${job#*:}.rc) || echo stalled")
	log "$1: IO over the cut link $state"
	on_fail -t 30 clt 'dd if=/dev/rnbd0 of=/dev/null bs=4k count=1 iflag=direct'
	link_up clt stg0
	# rnbd's own reconnect delay is 30 s; ask RTRS to reconnect now (synchronous)
	wait_for -t 60 clt "for f in $RECONNECT; do echo 1 >\$f; done; grep -q '^connected' $STATE"
	bg_wait_try -t 60 "$job" >/dev/null
	on clt 'dd if=/tmp/b of=/dev/rnbd0 bs=1M seek=8 oflag=direct 2>/dev/null'
	expect_eq "$(sum clt 'dd if=/dev/rnbd0 bs=1M count=4 iflag=direct')" "$A" "pattern a after $1"
	expect_eq "$(sum clt 'dd if=/dev/rnbd0 bs=1M skip=8 count=4 iflag=direct')" "$B" "pattern b after $1"
}
cut_and_restore link_down
cut_and_restore link_drop

# ---- 2. hard kill and reboot of stg0 ----
on clt 'dd if=/tmp/c of=/dev/rnbd0 bs=1M seek=16 oflag=direct 2>/dev/null'
vm_kill stg0
vm_start stg0
expect_eq "$(sum stg0 'dd if=/dev/sda bs=1M count=4 iflag=direct')" "$A" "pattern a on stg0's disk after reboot"
expect_eq "$(sum stg0 'dd if=/dev/sda bs=1M skip=8 count=4 iflag=direct')" "$B" "pattern b on stg0's disk after reboot"
expect_eq "$(sum stg0 'dd if=/dev/sda bs=1M skip=16 count=4 iflag=direct')" "$C" "pattern c on stg0's disk after reboot"
expect_eq "$(dd if="$(vm_disk stg0)" bs=1M skip=16 count=4 2>/dev/null | sha256sum)" "$C" "pattern c in the host's image"
on stg0 'modprobe rnbd-server'
wait_for -t 60 clt "for f in $RECONNECT; do echo 1 >\$f; done; grep -q '^connected' $STATE"
wait_for -t 30 clt 'dd if=/dev/rnbd0 of=/dev/null bs=4k count=1 iflag=direct'
expect_eq "$(sum clt 'dd if=/dev/rnbd0 bs=1M skip=16 count=4 iflag=direct')" "$C" "pattern c through rnbd after stg0's reboot"
on clt 'echo normal >/sys/block/rnbd0/rnbd/unmap_device'
