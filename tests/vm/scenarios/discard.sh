# SPDX-License-Identifier: GPL-2.0-or-later
# Discard and write-zeroes on /dev/brmr0 (issue 12): the device advertises both, at most a
# chunk per request; every store zeroes the range, so both legs read the same afterwards. A
# request that crosses a chunk goes out as one rmr IO per chunk piece.
#  1. fstrim on the mounted ext4; files intact, data areas identical;
#  2. unmounted: blkdiscard and write-zeroes over ranges crossing chunks; the ranges read back
#     as zeroes and the data areas are identical;
#  3. a discard while B's link is cut: B is marked dirty for those chunks like for a write,
#     resyncs them when it is back, and the data areas are identical.
COST=60    # seconds alone, measured: tests/vm/run starts the costliest first
TIMEOUT=700
DEMO_SHELL=1
DEMO_NOSYNC=1
DEMO_STRICT=1
DEMO_INPUT=$VM_DIR/demo-shell.input
cat >"$DEMO_INPUT" <<'END'
on clt grep -x 131072 /sys/block/brmr0/queue/discard_max_bytes && grep -x 131072 /sys/block/brmr0/queue/write_zeroes_max_bytes
write 8
on clt /usr/bin/dd if=/dev/urandom of=/mnt/junk bs=1M count=8 status=none && sync && rm /mnt/junk && sync && fstrim -v /mnt
files
verify
on clt umount /mnt
on clt /usr/bin/dd if=/dev/urandom of=/dev/brmr0 bs=1M count=4 oflag=direct status=none
on clt /usr/sbin/blkdiscard -o 126976 -l 8192 /dev/brmr0 && /usr/bin/dd if=/dev/brmr0 bs=4096 skip=31 count=2 iflag=direct status=none | /usr/bin/cmp -n 8192 - /dev/zero && echo 'reads back as zeroes'
on clt /usr/sbin/blkdiscard -z -o 258048 -l 61440 /dev/brmr0 && /usr/bin/dd if=/dev/brmr0 bs=4096 skip=63 count=15 iflag=direct status=none | /usr/bin/cmp -n 61440 - /dev/zero && echo 'reads back as zeroes'
on clt /usr/sbin/blkdiscard -o 1048576 -l 1048576 /dev/brmr0
verify
cut clt stg1
on clt /usr/sbin/blkdiscard -o 2097152 -l 524288 /dev/brmr0; /usr/bin/dd if=/dev/urandom of=/dev/brmr0 bs=4096 seek=700 count=4 oflag=direct status=none
wait_failed
on stg0 grep -E 'member 43: \[.*1[6-9].*\] [0-9]+/800 dirty' /sys/class/rmr-server/pools/ionos_pool/map_summary
restore clt stg1
wait_normal
sync stg1
verify
exit
END
. ../demo.sh
