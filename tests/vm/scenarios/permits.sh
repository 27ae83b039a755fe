# SPDX-License-Identifier: GPL-2.0-or-later
# Commands that time out give their RTRS permits back, and every wait of a command is bounded
# (issue 10, "permit leak"). One leg over a link that silently drops frames:
#  1. with cmd_timeout_ms=200, three admin commands to the leg (maintenance on, off, off
#     again) each fail within seconds; the first with ETIMEDOUT, logged with the session's
#     name (later ones may meet RTRS failing the dead path instead);
#     A timed-out ENABLE_POOL is sent once more (logged) before the error is returned;
#  2. the link returns: the leg leaves maintenance and is `normal`, /dev/brmr0 serves IO with
#     the data written before the cut;
#  3. the whole pool is dissolved and every module unloads within a bounded time: closing an
#     RTRS session waits for every permit, so one permit kept by a timed-out command would
#     hang the close (and rmmod) forever.
COST=15    # seconds alone, measured: tests/vm/run starts the costliest first
TIMEOUT=420
NSTG=1

. "$VM_LIB/pool.sh"
LEG=$LEG_A
L=$C/pools/$P/sessions/$LEG

vm_boot clt stg0
on clt 'modprobe rtrs-client; modprobe rmr; modprobe brmr'
on stg0 'modprobe rtrs-server; modprobe rtrs-client; modprobe rmr; modprobe brmr'
on clt "echo 'poolname=$P chunk_size=$CHUNK' >$C/ctl/join_pool"
on stg0 "echo 'poolname=$P member_id=42' >$S/ctl/join_pool"
on stg0 "echo 'device=/dev/sda pool=$P mapped_size=$SIZE' >$BS/ctl/create_store"
on clt "echo 'sessname=$LEG path=ip:$A_IP mode=create' >$C/pools/$P/add_sess"
on clt "echo 1 >$L/enable"
wait_for clt "[ \"\$(cat $L/state)\" = normal ]"
on clt "echo 'pool=$P size=$SIZE' >$BC/ctl/map_device"
wait_for clt '[ -b /dev/brmr0 ]'
on clt '/usr/bin/dd if=/dev/urandom of=/tmp/a bs=1M count=4 status=none && /usr/bin/dd if=/tmp/a of=/dev/brmr0 bs=1M oflag=direct status=none'
A=$(on clt '/usr/bin/sha256sum </tmp/a')

# ---- 1. commands time out over a silently dropped link ------------------------------------
expect_eq "$(on clt 'cat /sys/module/rmr/parameters/cmd_timeout_ms')" 30000 "default cmd_timeout_ms"
expect_errno clt EINVAL 'echo 99 >/sys/module/rmr/parameters/cmd_timeout_ms'
on clt 'echo 200 >/sys/module/rmr/parameters/cmd_timeout_ms'
link_drop clt stg0
# The first command times out. Soft-RoCE's retries give up about a second after the cut and
# RTRS then fails what is still in flight (ECONNABORTED), so the later ones may end either way;
# each must end, and quickly.
for v in 0 1 1; do
	t0=$EPOCHREALTIME
	out=$(on_try -t 20 clt "echo $v >$L/enable" 2>&1) && fail "enable $v succeeded over the dropped link"
	dt=$(echo "$EPOCHREALTIME - $t0" | bc)
	log "enable $v over the dropped link: '$out' after ${dt}s"
	[ "$(echo "$dt < 10" | bc)" = 1 ] || fail "enable $v took ${dt}s with cmd_timeout_ms=200"
	if [ "$v" = 0 ]; then
		expect_match "$out" 'Connection timed out' "the first command over the dropped link"
	fi
	expect_match "$out" 'Connection timed out|Software caused connection abort|Transport endpoint is not connected|Invalid argument|Device or resource busy' "enable $v over the dropped link"
done
n=$(on clt "dmesg | grep -c 'session $LEG: command: no reply within 200 ms (ETIMEDOUT)'")
[ "$n" -ge 1 ] || fail "no command timeout was logged"
log "$n command(s) timed out over the dropped link"
# ENABLE_POOL is safe to repeat: a timed-out one is sent once more under a new sequence
# number before the admin gets the error (wire-format.md, "Command sequence").
n=$(on clt "dmesg | grep -c 'session $LEG: EnablePool (seq [0-9]*) timed out, sending it again'")
[ "$n" -ge 1 ] || fail "a timed-out ENABLE_POOL was not sent again"

# ---- 2. the link returns: the leg recovers and serves IO ----------------------------------
link_up clt stg0
on clt 'echo 30000 >/sys/module/rmr/parameters/cmd_timeout_ms'
# RTRS may or may not have noticed the cut (heartbeat); either way the leg comes back and a
# maintenance leg is enabled again by `enable 1` once its session is connected.
wait_for -t 120 clt "echo 1 >$L/enable 2>/dev/null; [ \"\$(cat $L/state)\" = normal ]"
expect_eq "$(on clt "cat $L/state")" normal "leg state after the link returned"
# Commands that were still in the transport when the link came back are refused as stale
# when a newer one of the session already ran (counted, not required: RTRS may have dropped
# them with the dead path).
log "stale commands refused by stg0: $(on stg0 "dmesg | grep -c 'not run: the client sent a newer command since (ESTALE)'; true")"
expect_eq "$(on clt '/usr/bin/dd if=/dev/brmr0 bs=1M count=4 iflag=direct status=none | /usr/bin/sha256sum')" "$A" "data after the link returned"
on clt '/usr/bin/dd if=/tmp/a of=/dev/brmr0 bs=1M seek=8 oflag=direct status=none'
expect_eq "$(on clt '/usr/bin/dd if=/dev/brmr0 bs=1M skip=8 count=4 iflag=direct status=none | /usr/bin/sha256sum')" "$A" "data written after the link returned"

# ---- 3. teardown and unload, bounded ------------------------------------------------------
on clt "echo 1 >$BC/ctl/devices/brmr0/unmap_device"
on clt "echo mode=delete >$L/del_sess"
on clt "echo 1 >$C/pools/$P/leave_pool"
wait_for stg0 "[ \"\$(cat $S/pools/$P/state)\" = registered ]"
on stg0 "echo 1 >$BS/stores/$P/delete_store"
on stg0 "echo 1 >$S/pools/$P/leave_pool"
# Closing the RTRS session waits for every permit: a kept permit hangs here.
on -t 60 clt 'rmmod brmr && rmmod rmr && rmmod rtrs_client'
on -t 60 stg0 'rmmod brmr && rmmod rmr'
