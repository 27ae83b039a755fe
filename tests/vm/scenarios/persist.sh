# SPDX-License-Identifier: GPL-2.0-or-later
# Persisted dirty maps (SPEC §9.4, issue 11): the P-B link is cut while P writes, so A marks
# those chunks dirty for B; then P and A both power off. No memory is left that knows what B
# missed but A's disk: A comes back with `store add` (add_store mode=add), must load its map
# of B (dmesg, map_summary), and after P reassembles, B resyncs from A. Ends with both data
# areas identical and every file intact. With the maps kept in memory only, B stays stale
# without anybody knowing, and `verify` fails.
TIMEOUT=700
DEMO_SHELL=1
DEMO_STRICT=1
DEMO_INPUT=$VM_DIR/demo-shell.input
cat >"$DEMO_INPUT" <<'END'
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
exit
END
. ../demo.sh
