# SPDX-License-Identifier: GPL-2.0-or-later
# The configuration lifecycle of rmr.ko and brmr.ko on one storage node, without networking:
# module loading and aliases, rmr-client and rmr-server pools, brmr stores on a real disk with
# persisted metadata (surviving a power cut), and every negative case of SPEC §2.2-§2.5 that
# these objects reach, each answered by its errno with nothing changed.
COST=15    # seconds alone, measured: tests/vm/run starts the costliest first
TIMEOUT=300
NSTG=1

C=/sys/class/rmr-client
S=/sys/class/rmr-server
BS=/sys/class/brmr-server
P=ionos_pool
DEV=/dev/sda
SIZE=204800

vm_boot stg0

# --- modules, aliases, classes
on stg0 'modprobe brmr'
for m in rtrs_client rtrs_server rmr brmr; do
	on stg0 "lsmod | grep -q '^$m '"
done
on stg0 'rmmod brmr && rmmod rmr && modprobe rmr-client && modprobe rmr-server && modprobe brmr-server && modprobe brmr-client'
on stg0 "ls $C/ctl/join_pool $S/ctl/join_pool $BS/ctl/create_store $BS/ctl/add_store /sys/class/brmr-client/ctl/devices"
on stg0 "ls /sys/devices/virtual/rmr-client/ctl/join_pool /sys/devices/virtual/brmr-server/ctl/add_store"
expect_eq "$(on stg0 'cat /sys/module/rmr/parameters/sync_queue_depth')" 32 "sync_queue_depth default"
expect_errno stg0 EINVAL 'echo 0 >/sys/module/rmr/parameters/sync_queue_depth'
expect_errno stg0 EINVAL 'echo 513 >/sys/module/rmr/parameters/sync_queue_depth'
on stg0 'echo 64 >/sys/module/rmr/parameters/sync_queue_depth'
expect_eq "$(on stg0 'cat /sys/module/rmr/parameters/sync_queue_depth')" 64 "sync_queue_depth set"

# --- rmr-server pools
for bad in 'poolname=p' 'member_id=42' "poolname=$P member_id=0" "poolname=$P member_id=4294967296" \
	"poolname=$P member_id=42 colour=red" "poolname=$P member_id=42 member_id=43" \
	"poolname=a/b member_id=1" "poolname= member_id=1" 'garbage' "poolname=$P member_id=-1"; do
	expect_errno stg0 EINVAL "echo '$bad' >$S/ctl/join_pool"
done
on stg0 "[ -z \"\$(find $S/pools/ -mindepth 1 -maxdepth 1 -type d)\" ]"
on stg0 "echo 'poolname=$P member_id=42' >$S/ctl/join_pool"
expect_errno stg0 EEXIST "echo 'poolname=$P member_id=7' >$S/ctl/join_pool"
expect_eq "$(on stg0 "cat $S/pools/$P/state")" empty "server state after join"
expect_eq "$(on stg0 "cat $S/pools/$P/member_id")" 42 "member_id"
expect_errno stg0 EINVAL "echo 2 >$S/pools/$P/leave_pool"

# --- brmr stores: negative cases before any store exists
expect_errno stg0 ENOENT "echo 'device=$DEV pool=nopool mapped_size=$SIZE' >$BS/ctl/create_store"
expect_errno stg0 EINVAL "echo 'device=$DEV pool=$P mapped_size=0' >$BS/ctl/create_store"
expect_errno stg0 EINVAL "echo 'device=$DEV pool=$P mapped_size=$((DISK_MB * 2048))' >$BS/ctl/create_store"
expect_errno stg0 EINVAL "echo 'device=$DEV pool=$P' >$BS/ctl/create_store"
expect_errno stg0 EINVAL "echo 'device=$DEV pool=$P mapped_size=$SIZE mode=add' >$BS/ctl/create_store"
expect_errno stg0 ENOENT "echo 'device=/dev/nonexistent pool=$P mapped_size=$SIZE' >$BS/ctl/create_store"
expect_errno stg0 EINVAL "echo 'device=$DEV pool=$P mapped_size=$SIZE' >$BS/ctl/add_store"
expect_errno stg0 EOPNOTSUPP "echo 'device=$DEV pool=$P mapped_size=$SIZE mode=replace' >$BS/ctl/add_store"
on stg0 "[ -z \"\$(find $BS/stores/ -mindepth 1 -maxdepth 1 -type d)\" ] && [ \"\$(cat $S/pools/$P/state)\" = empty ]"

# --- create_store
on stg0 "echo 'device=$DEV pool=$P mapped_size=$SIZE' >$BS/ctl/create_store"
expect_eq "$(on stg0 "cat $BS/stores/$P/state")" open "store state after create"
expect_eq "$(on stg0 "cat $BS/stores/$P/mapped_size")" $SIZE "mapped_size"
expect_eq "$(on stg0 "cat $BS/stores/$P/bdev_name")" sda "bdev_name"
expect_eq "$(on stg0 "cat $BS/stores/$P/dev_size")" $((DISK_MB * 2048)) "dev_size"
expect_eq "$(on stg0 "cat $S/pools/$P/state")" registered "server state after create_store"
expect_eq "$(head -c 8 "$(vm_disk stg0)")" BRMRSTOR "metadata magic on the disk image"
# a second store for the pool, the device claimed, server leave with a store
expect_errno stg0 EBUSY "echo 'device=$DEV pool=$P mapped_size=$SIZE' >$BS/ctl/create_store"
on stg0 "echo 'poolname=other member_id=1' >$S/ctl/join_pool"
expect_errno stg0 EBUSY "echo 'device=$DEV pool=other mapped_size=$SIZE' >$BS/ctl/create_store"
expect_errno stg0 EBUSY "echo 1 >$S/pools/$P/leave_pool"
for f in remove_store delete_store; do
	for bad in 0 2 yes '1 1' ''; do
		expect_errno stg0 EINVAL "echo '$bad' >$BS/stores/$P/$f"
	done
done
expect_errno stg0 EINVAL "echo x >$BS/ctl/create_store"
expect_errno stg0 EINVAL "echo x >$BS/ctl/add_store"
expect_eq "$(on stg0 "cat $S/pools/$P/state; cat $BS/stores/$P/state")" "registered
open" "nothing changed by the refused writes"

# --- remove_store keeps the metadata; create refuses it, add takes it back
on stg0 "echo 1 >$BS/stores/$P/remove_store"
on stg0 "[ ! -e $BS/stores/$P ]"
expect_eq "$(on stg0 "cat $S/pools/$P/state")" empty "server state after remove_store"
expect_errno stg0 EEXIST "echo 'device=$DEV pool=$P mapped_size=$SIZE' >$BS/ctl/create_store"
expect_errno stg0 EINVAL "echo 'device=$DEV pool=other mapped_size=$SIZE' >$BS/ctl/add_store"
expect_errno stg0 EINVAL "echo 'device=$DEV pool=$P mapped_size=$((SIZE - 8))' >$BS/ctl/add_store"
on stg0 "echo 'device=$DEV pool=$P mapped_size=$SIZE' >$BS/ctl/add_store"
expect_eq "$(on stg0 "cat $S/pools/$P/state; cat $BS/stores/$P/state")" "registered
open" "after add_store"

# --- the metadata survives a power cut; another member_id is refused
vm_kill stg0
vm_start stg0
on stg0 "modprobe brmr && echo 'poolname=$P member_id=43' >$S/ctl/join_pool"
expect_errno stg0 EINVAL "echo 'device=$DEV pool=$P mapped_size=$SIZE mode=add' >$BS/ctl/add_store"
on stg0 "echo 1 >$S/pools/$P/leave_pool && echo 'poolname=$P member_id=42' >$S/ctl/join_pool"
on stg0 "echo 'device=$DEV pool=$P mapped_size=$SIZE mode=add' >$BS/ctl/add_store"
expect_eq "$(on stg0 "cat $S/pools/$P/state")" registered "server state after add_store on reboot"

# --- delete_store wipes; add refuses a blank disk; create works again
on stg0 "echo 1 >$BS/stores/$P/delete_store"
expect_eq "$(on stg0 "cat $S/pools/$P/state")" empty "server state after delete_store"
expect_ne "$(head -c 8 "$(vm_disk stg0)")" BRMRSTOR "metadata wiped from the disk image"
expect_errno stg0 EINVAL "echo 'device=$DEV pool=$P mapped_size=$SIZE mode=add' >$BS/ctl/add_store"
on stg0 "echo 'device=$DEV pool=$P mapped_size=$SIZE' >$BS/ctl/create_store"
on stg0 "echo 1 >$BS/stores/$P/delete_store && echo 1 >$S/pools/$P/leave_pool"
on stg0 "[ ! -e $S/pools/$P ]"

# --- rmr-client pools
for bad in "poolname=$P" "chunk_size=131072" "poolname=$P chunk_size=131071" "poolname=$P chunk_size=2048" \
	"poolname=$P chunk_size=134217728" "poolname=$P chunk_size=131072 sync=maybe" \
	"poolname=$P chunk_size=131072 queue_depth=0" "poolname=$P chunk_size=131072 queue_depth=513" \
	"poolname=$P chunk_size=131072 extra=1" 'x'; do
	expect_errno stg0 EINVAL "echo '$bad' >$C/ctl/join_pool"
done
on stg0 "echo 'poolname=$P chunk_size=131072' >$C/ctl/join_pool"
expect_errno stg0 EEXIST "echo 'poolname=$P chunk_size=65536' >$C/ctl/join_pool"
on stg0 "echo 'poolname=syncp chunk_size=4096 sync=y queue_depth=64' >$C/ctl/join_pool"
on stg0 "ls -d $C/pools/$P/sessions $C/pools/syncp/sessions"
expect_errno stg0 EINVAL "echo 0 >$C/pools/$P/leave_pool"
on stg0 "echo 1 >$C/pools/$P/leave_pool"
on stg0 "[ ! -e $C/pools/$P ]"

# --- unload with objects configured: torn down, not leaked
on stg0 "echo 'poolname=$P member_id=42' >$S/ctl/join_pool && echo 'device=$DEV pool=$P mapped_size=$SIZE' >$BS/ctl/create_store"
on stg0 'rmmod brmr && rmmod rmr'
on stg0 '! lsmod | grep -q "^b\?rmr "'
on stg0 "modprobe brmr && echo 'poolname=$P member_id=42' >$S/ctl/join_pool"
on stg0 "echo 'device=$DEV pool=$P mapped_size=$SIZE' >$BS/ctl/add_store"
on stg0 "echo 1 >$BS/stores/$P/delete_store && echo 1 >$S/pools/$P/leave_pool && rmmod brmr rmr"
