# SPDX-License-Identifier: GPL-2.0-or-later
# What a storage node persists (SPEC §9.4, §10.6; issue 11), two crashes of P and A in one
# cluster (one bring-up for both):
#  1. Dirty maps: the P-B link is cut while P writes, so A marks those chunks dirty for B; then
#     P and A both power off. Nothing but A's disk knows what B missed: A comes back with
#     `store add` (add_store mode=add), must load its map of B (dmesg, map_summary), and after
#     P reassembles, B resyncs from A.
#  2. The last_io record (SPEC §10.6 "client before storage"): a 64 KiB write to the last
#     chunk (raw, a region ext4 leaves free; its writer waits on a FIFO so the write goes out
#     at once) reaches A only: the P-B link drops every frame silently and P is frozen as soon
#     as A's leg confirms the write, before Soft-RoCE gives up on B about a second later, so P
#     neither fails B's leg nor sends MAP_ADD (A's map of B stays clean; the data areas
#     differ). P powers off, then A. A comes back and loads its last_io record; after P
#     reassembles, the last-IO update marks the chunk dirty for B, which resyncs it.
# Each part ends with both data areas identical and every acknowledged file intact. With the
# maps and last_io in memory only (1616e18), each part ends with the data areas different.
TIMEOUT=900
DEMO_SHELL=1
DEMO_NOSYNC=1
DEMO_STRICT=1
DEMO_INPUT=$VM_DIR/demo-shell.input
cat >"$DEMO_INPUT" <<'END'
# 1. dirty maps
write 4
verify
cut clt stg1
write 8
wait_failed
on stg0 cat /sys/class/rmr-server/pools/ionos_pool/map_summary
crash clt
crash stg0
restore clt stg1
boot stg0
rebuild stg0
on stg0 dmesg | grep 'loaded dirty maps'
on stg0 grep -E 'member 43: .* [1-9][0-9]*/[0-9]+ dirty' /sys/class/rmr-server/pools/ionos_pool/map_summary
boot clt
reassemble
wait_normal
sync stg1
verify
files
# 2. the last_io record
write 2
verify
write_one stg0
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
