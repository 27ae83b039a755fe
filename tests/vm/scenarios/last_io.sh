# SPDX-License-Identifier: GPL-2.0-or-later
# SPEC §10.6 "client before storage", with the persisted last_io record: a write reaches A
# only (the P-B link drops every frame silently and P is frozen 0.2 s after sending, before
# Soft-RoCE gives up on B, so P neither fails B's leg nor sends MAP_ADD), P is powered off,
# then A too. Nothing but A's disk knows that B
# misses that write: A comes back with `store add`, loads its last_io record, and after P
# reassembles, the last-IO update marks the chunk dirty for B, which resyncs it. Ends with
# both data areas identical and every acknowledged file intact. With last_io in memory only,
# the data areas stay different without anybody knowing.
TIMEOUT=700
DEMO_SHELL=1
DEMO_STRICT=1
DEMO_INPUT=$VM_DIR/demo-shell.input
cat >"$DEMO_INPUT" <<'END'
write 2
on clt /usr/bin/dd if=/dev/urandom of=/mnt/victim bs=1M count=1 oflag=direct status=none && sync
verify
drop clt stg1
on clt (nohup /usr/bin/dd if=/dev/urandom of=/mnt/victim bs=64k count=1 seek=5 oflag=direct conv=notrunc status=none >/dev/null 2>&1 &) ; sleep 0.2; echo "write sent: A answers, B never hears of it"
freeze clt
on stg0 cat /sys/class/rmr-server/pools/ionos_pool/map_summary; grep -E 'member 43: \[\] 0/' /sys/class/rmr-server/pools/ionos_pool/map_summary
crash clt
differ
crash stg0
restore clt stg1
boot stg0
rebuild stg0
on stg0 dmesg | grep -E 'loaded dirty maps .* and [1-9][0-9]* last_io slots'
boot clt
reassemble
wait_normal
sync stg1
verify
files
exit
END
. ../demo.sh
