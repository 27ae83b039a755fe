# SPDX-License-Identifier: GPL-2.0-or-later
# The write-intent record in the kernel (issue 11: "the write-intent record is on"). The demo
# stores sit on virtio disks with a volatile write cache ("write back"), so both nodes keep it:
#  1. `write_intent` says "on" on both nodes.
#  2. Raw direct writes (no flush: O_DIRECT without fsync) to the last four chunks, a region
#     ext4 leaves free: B's record names unflushed chunks.
#  3. B is powered off with them unflushed, P writes on (B's leg fails, A marks the chunks
#     for B), B is rebuilt: `store add` loads its record as suspects (dmesg), which become
#     dirty bits of its own map before it serves, and B resyncs them from A with what A marked.
#     Both data areas identical, every file intact, B's suspects gone once it is normal; fio
#     writes and checks a file on /mnt throughout (fio_start .. fio_stop), every pass clean.
#  4. Flushes (ext4's journal commits, `sync` on P) clear the record's bits of the chunks
#     written before them (`cleared` > 0).
#  5. No map page was allocated atomically on either node, B's load of its suspects and the
#     lost map of its map update included (`map_atomic_pages` 0; it was 2 on B before the
#     suspect and lost maps took prepared storages).
# QEMU keeps what the guest wrote when it is killed, so the power loss itself loses nothing
# here: what this shows is that the record survives the crash and drives the resync; the
# simulator's power-loss seeds show that this ordering loses no acknowledged write.
COST=65    # seconds alone, measured: tests/vm/run starts the costliest first
TIMEOUT=900
DEMO_SHELL=1
DEMO_NOSYNC=1
DEMO_STRICT=1
DEMO_INPUT=$VM_DIR/demo-shell.input
WI=/sys/class/rmr-server/pools/ionos_pool/write_intent
cat >"$DEMO_INPUT" <<END
write 4
verify
fio_start 8
on stg0 cat $WI; test "\$(head -1 $WI)" = on
on stg1 cat $WI; test "\$(head -1 $WI)" = on
on stg1 grep -o 'record_writes [0-9]*' $WI
on clt /usr/bin/dd if=/dev/urandom of=/dev/brmr0 bs=64k count=8 seek=1592 oflag=direct status=none && echo 'four chunks written, no flush'
on stg1 cat $WI; grep -E '^unflushed [1-9]' $WI
crash stg1
write 2
wait_failed
boot stg1
rebuild stg1
on stg1 dmesg | grep -E 'write-intent record on|loaded dirty maps'; dmesg | grep -E 'loaded dirty maps .* [1-9][0-9]* suspect chunks'
wait_normal
on stg1 dmesg | grep -E 'with [1-9][0-9]* suspect chunks of the write-intent record: own map [0-9]+ -> [1-9][0-9]* dirty'
sync stg1
fio_stop
verify
files
on stg1 cat $WI; grep -E '^unflushed [0-9]+ suspect 0 ' $WI
on clt sync
on stg0 sleep 1; cat $WI; grep -E 'cleared [1-9]' $WI
on stg0 echo "map_atomic_pages \$(cat /sys/module/rmr/parameters/map_atomic_pages)"; test "\$(cat /sys/module/rmr/parameters/map_atomic_pages)" = 0
on stg1 echo "map_atomic_pages \$(cat /sys/module/rmr/parameters/map_atomic_pages)"; test "\$(cat /sys/module/rmr/parameters/map_atomic_pages)" = 0
exit
END
. ../demo.sh
