# SPDX-License-Identifier: GPL-2.0-or-later
# A storage node crashes while a sync runs (issue 11: "a crash during a sync"), with ext4 on
# /dev/brmr0 and its files checked after each part:
#  1. The syncing node crashes. B (stg1) misses 32 MiB of writes (the clt-stg1 link is cut),
#     the link returns, and B's leg comes back and B starts its sync by itself. With
#     sync_queue_depth=1 on B, B is powered off once it has synced ten chunks and before its
#     own map is clean. More files are written while B is down (A marks them for B on its disk). B is
#     rebuilt (`store add` loads its maps: what it had not synced yet is still dirty for it),
#     its leg returns, it resyncs the rest: both data areas identical, every file intact, and
#     fio wrote and checked a file on /mnt throughout (fio_start .. fio_stop), every pass clean.
#  2. The source crashes. B misses writes again and starts its sync from A; A is powered off
#     in the middle of it. B's sync requests fail and its sync thread stops; /mnt is frozen
#     meanwhile (ext4's journal would write to chunks only A holds current: a node lost while
#     its peer resyncs takes the only current copy, README). A is rebuilt, its leg returns,
#     B's sync is started again and completes: identical data areas, every file intact.
COST=145    # seconds alone, measured: tests/vm/run starts the costliest first
TIMEOUT=1500
DEMO_SHELL=1
DEMO_NOSYNC=1
DEMO_STRICT=1
DEMO_INPUT=$VM_DIR/demo-shell.input
SUMMARY=/sys/class/rmr-server/pools/ionos_pool/map_summary
# B's own map: "N" of "member 43: [...] N/800 dirty"
B_DIRTY="awk '\$1 == \"member\" && \$2 == \"43:\" { split(\$(NF-1), a, \"/\"); print a[1] }' $SUMMARY"
cat >"$DEMO_INPUT" <<END
# 1. the syncing node crashes
write 4
verify
fio_start 8
on stg1 echo 1 >/sys/module/rmr/parameters/sync_queue_depth
cut clt stg1
write 32
wait_failed
on stg0 n=\$($B_DIRTY); echo "A marks \$n chunks dirty for B"; test "\$n" -ge 100
restore clt stg1
wait_normal
on stg1 n0=\$($B_DIRTY); i=0; while :; do n=\$($B_DIRTY); [ "\$n" -le \$((n0 - 10)) ] && [ "\$n" -gt 0 ] && break; [ "\$n" = 0 ] && { echo "B's sync finished before the crash"; exit 1; }; [ \$i -ge 600 ] && { echo "B's sync made no progress"; exit 1; }; sleep 0.05; i=\$((i + 1)); done; cat /sys/class/rmr-server/pools/ionos_pool/sync /sys/class/rmr-server/pools/ionos_pool/sync_progress; echo "B crashes with \$n of \$n0 chunks left"
crash stg1
wait_failed
write 4
on stg0 n=\$(awk '\$1 == "member" && \$2 == "43:" { split(\$(NF-1), a, "/"); print a[1] }' $SUMMARY); echo "A has \$n chunks dirty for B"; test "\$n" -gt 0
boot stg1
rebuild stg1
on stg1 dmesg | grep 'loaded dirty maps'; n=\$($B_DIRTY); echo "B's own map after store add: \$n chunks"; test "\$n" -gt 0
wait_normal
sync stg1
fio_stop
verify
files
# 2. the source crashes
on stg1 echo 1 >/sys/module/rmr/parameters/sync_queue_depth
cut clt stg1
write 24
wait_failed
on clt fsfreeze --freeze /mnt
restore clt stg1
wait_normal
on stg1 n0=\$($B_DIRTY); i=0; while :; do n=\$($B_DIRTY); [ "\$n" -le \$((n0 - 10)) ] && [ "\$n" -gt 0 ] && break; [ "\$n" = 0 ] && { echo "B's sync finished before the crash"; exit 1; }; [ \$i -ge 600 ] && { echo "B's sync made no progress"; exit 1; }; sleep 0.05; i=\$((i + 1)); done; echo "A crashes with \$n of \$n0 chunks left for B"
crash stg0
on stg1 i=0; until [ "\$(cat /sys/class/rmr-server/pools/ionos_pool/sync)" = stopped ]; do [ \$i -ge 600 ] && { echo "B's sync still running 60 s after A's crash"; exit 1; }; sleep 0.1; i=\$((i + 1)); done; n=\$($B_DIRTY); echo "B's sync stopped after \$((i / 10)) s with \$n chunks left"; test "\$n" -gt 0
wait_failed
boot stg0
rebuild stg0
on stg0 dmesg | grep 'loaded dirty maps'
wait_normal
on clt fsfreeze --unfreeze /mnt
sync stg1
verify
files
exit
END
. ../demo.sh
