# SPDX-License-Identifier: GPL-2.0-or-later
# SPEC §10 scenario 5, storage before client, on three storage nodes: clt (P), stg0 = A
# (member 42), stg1 = B (43), stg2 = C (44).
#  1. Bring-up with all three legs created before any is enabled (no initial sync), each
#     node's sync pool with legs to the other two; 8 MiB written raw to brmr0.
#  2. A powered off; its leg fails; 4 MiB written while A is away (chunks 320-351), which B
#     and C record for member 42.
#  3. P powered off. P returns first and assembles B's and C's legs: both stay
#     `reconnecting`, because try-enable waits for every pool_md member (A is in it), and
#     the client's log says it waits for member 42.
#  4. A returns with its disk and is rebuilt (server join with its member_id, store add, sync
#     pool with legs to B and C, attach). Its sync links are cut so the marks can be read
#     before a resync clears them; P assembles A's leg. Every leg goes `normal`, every
#     chunk written while A was away is dirty for A on A, B and C, and brmr0 is mapped again
#     (a re-map).
#  5. A's sync links return; A resyncs; the data written before and while A was away reads
#     back through brmr0, and the three data areas are identical.
# fio writes and verifies its own raw range of brmr0 (64-72 MiB, chunks 512-575) from the
# bring-up until P's crash, and again through A's resync: every pass clean.
COST=110    # seconds alone, measured: tests/vm/run starts the costliest first
TIMEOUT=900
NSTG=3

. "$VM_LIB/pool.sh"
C_IP=$(vm_ip stg2)
LEG_C=psrv0@stg-rmr2
ALL="stg0 stg1 stg2"
id_of() { case $1 in stg0) echo 42 ;; stg1) echo 43 ;; stg2) echo 44 ;; esac; }
ip_of() { vm_ip "$1"; }
leg_of() { echo "psrv0@stg-rmr${1#stg}"; }
leg() { on clt "head -1 $C/pools/$P/sessions/$1/state"; }
# sync_pool NAME: NAME's sync pool, a leg to each other node, attached to its server pool
sync_pool() {
	local n=$1 m
	wr "$n" $C/ctl/join_pool "poolname=$P chunk_size=$CHUNK sync=y"
	for m in $ALL; do
		[ "$m" = "$n" ] && continue
		wr "$n" $C/pools/$P/add_sess "sessname=stg-rmr${n#stg}@stg-rmr${m#stg} path=ip:$(ip_of "$m")"
	done
	wr "$n" $S/pools/$P/add_clt "$P"
}
# dirty_for_a NAME: NAME's map_summary line of member 42 lists chunks 320 and 351
dirty_for_a() {
	on "$1" "grep -E '^member 42: \[(.* )?320 (.* )?351[] ]' $S/pools/$P/map_summary" >/dev/null ||
		fail "$1 does not list chunks 320-351 for member 42: $(on "$1" "cat $S/pools/$P/map_summary" | cut -c1-200 | tr '\n' '|')"
}

vm_boot clt $ALL

# ---- 1. bring-up ---------------------------------------------------------------------------
log "bring-up on three storage nodes"
on clt 'modprobe rtrs-client; modprobe rmr; modprobe brmr'
on_each "$ALL" 'modprobe rtrs-server; modprobe rtrs-client; modprobe rmr; modprobe brmr'
wr clt $C/ctl/join_pool "poolname=$P chunk_size=$CHUNK"
for n in $ALL; do
	wr "$n" $S/ctl/join_pool "poolname=$P member_id=$(id_of "$n")"
	wr "$n" $BS/ctl/create_store "device=/dev/sda pool=$P mapped_size=$SIZE"
done
for n in $ALL; do
	wr clt $C/pools/$P/add_sess "sessname=$(leg_of "$n") path=ip:$(ip_of "$n") mode=create"
done
for n in $ALL; do
	wr clt $C/pools/$P/sessions/$(leg_of "$n")/enable 1
	wait_for -t 60 clt "[ \"\$(head -1 $C/pools/$P/sessions/$(leg_of "$n")/state)\" = normal ]"
done
for n in $ALL; do
	on "$n" "! grep -v ' \[\] 0/800 dirty' $S/pools/$P/map_summary" >/dev/null ||
		fail "$n's maps are not clean after the bring-up: $(on "$n" "cat $S/pools/$P/map_summary" | tr '\n' '|')"
	sync_pool "$n"
done
wr clt $BC/ctl/map_device "pool=$P size=$SIZE"
wait_for clt '[ -b /dev/brmr0 ]'
sum_a=$(on clt 'dd if=/dev/urandom of=/tmp/a bs=1M count=8 2>/dev/null && /usr/bin/dd if=/tmp/a of=/dev/brmr0 bs=1M oflag=direct status=none && sha256sum </tmp/a')
# each node's sync pool has both legs normal
for n in $ALL; do
	wait_for -t 60 "$n" "[ \$(grep -c '^normal' $C/pools/$P/sessions/*/state | grep -c ':1\$') = 2 ]"
done

fio_job=$(fio_raw_start)

# ---- 2. A crashes; writes while it is away -------------------------------------------------
log "A powered off"
vm_kill stg0
sum_b=$(on -t 120 clt 'dd if=/dev/urandom of=/tmp/b bs=1M count=4 2>/dev/null && /usr/bin/dd if=/tmp/b of=/dev/brmr0 bs=1M seek=40 oflag=direct status=none && sha256sum </tmp/b')
expect_eq "$(leg $LEG_A)" failed "leg A after A's crash and a write"
for n in stg1 stg2; do dirty_for_a "$n"; done
log "B: $(on stg1 "grep '^member 42:' $S/pools/$P/map_summary" | cut -c1-60)..."

fio_raw_stop "$fio_job"
on stg1 "grep -E '^member 42: \[(.* )?(51[2-9]|5[2-6][0-9]|57[0-5])[] ]' $S/pools/$P/map_summary" >/dev/null ||
	fail "B does not list fio's chunks for member 42: $(on stg1 "cat $S/pools/$P/map_summary" | cut -c1-200)"

# ---- 3. P crashes and returns first --------------------------------------------------------
log "P powered off; P returns first and assembles B and C"
vm_kill clt
vm_start clt
on clt 'modprobe rtrs-client; modprobe rmr; modprobe brmr'
wr clt $C/ctl/join_pool "poolname=$P chunk_size=$CHUNK"
for n in stg1 stg2; do
	wr clt $C/pools/$P/add_sess "sessname=$(leg_of "$n") path=ip:$(ip_of "$n") mode=assemble"
done
# try-enable runs each second and waits for every pool_md member: give it a few rounds
sleep 5
for l in $LEG_B $LEG_C; do
	expect_eq "$(leg $l)" reconnecting "leg $l while A, a pool_md member, is away"
done
for n in stg1 stg2; do
	expect_eq "$(on "$n" "cat $S/pools/$P/state")" no_io "$n while P waits for A"
done
on clt 'dmesg | grep -E "rmr: .*try-enable waits for pool_md member\(s\) \[42\]"'

# ---- 4. A returns and is rebuilt; P assembles its leg --------------------------------------
log "A returns and is rebuilt; its sync links cut so the marks stay readable"
vm_start stg0
on stg0 'modprobe rtrs-server; modprobe rtrs-client; modprobe rmr; modprobe brmr'
wr stg0 $S/ctl/join_pool "poolname=$P member_id=42"
wr stg0 $BS/ctl/add_store "device=/dev/sda pool=$P mapped_size=$SIZE mode=add"
sync_pool stg0
link_down stg0 stg1
link_down stg0 stg2
t0=$EPOCHSECONDS
wr clt $C/pools/$P/add_sess "sessname=$LEG_A path=ip:$A_IP mode=assemble"
for l in $LEG_A $LEG_B $LEG_C; do
	wait_for -t 90 clt "[ \"\$(head -1 $C/pools/$P/sessions/$l/state)\" = normal ]"
done
log "every leg normal $((EPOCHSECONDS - t0)) s after A's leg was added"
wr clt $BC/ctl/map_device "pool=$P size=$SIZE"
wait_for clt '[ -b /dev/brmr0 ]'
on clt 'dmesg | grep -E "brmr0: mapped pool .*\(re-map"'
for n in $ALL; do dirty_for_a "$n"; done
log "A's own map: $(on stg0 "grep '^member 42:' $S/pools/$P/map_summary" | cut -c1-60)..."

# ---- 5. A resyncs; data checks -------------------------------------------------------------
log "A's sync links return; A resyncs"
link_up stg0 stg1
link_up stg0 stg2
wait_for -t 90 stg0 "[ \$(grep -c '^normal' $C/pools/$P/sessions/*/state | grep -c ':1\$') = 2 ]"
fio_job=$(fio_raw_start)
sync_start stg0
wait_for -t 300 stg0 "[ \"\$(cat $S/pools/$P/sync)\" = stopped ] && grep -q '^member 42: \[\] 0/' $S/pools/$P/map_summary"
fio_raw_stop "$fio_job"
for n in $ALL; do
	wait_for -t 60 "$n" "! grep -v ' \[\] 0/800 dirty' $S/pools/$P/map_summary"
done
expect_eq "$(on clt '/usr/bin/dd if=/dev/brmr0 bs=1M count=8 iflag=direct status=none | sha256sum')" "$sum_a" "the 8 MiB written before A's crash"
expect_eq "$(on clt '/usr/bin/dd if=/dev/brmr0 bs=1M skip=40 count=4 iflag=direct status=none | sha256sum')" "$sum_b" "the 4 MiB written while A was away"
sums=$(on_each -t 120 "$ALL" "/usr/bin/dd if=/dev/sda bs=1M iflag=direct,skip_bytes skip=$AREA_BYTES count=$((SIZE / 2048)) status=none | /usr/bin/sha256sum | cut -d' ' -f1")
[ "$(echo "$sums" | sort -u | wc -l)" = 1 ] || fail "the data areas differ after A's resync: $(echo "$sums" | tr '\n' ' ')"
log "data areas of A, B and C identical: $(echo "$sums" | head -1)"
true
