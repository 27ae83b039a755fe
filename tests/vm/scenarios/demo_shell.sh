# SPDX-License-Identifier: GPL-2.0-or-later
# `make demo` and the prompt of `make demo-shell`, scripted: the demo's bring-up (rmrctl
# verbs, ext4 on /dev/brmr0), then at the prompt the three failures a newcomer is invited to
# try, each ending with both storage disks identical and every file written intact:
#  1. the P-B link cut while writing, restored; B resyncs (SPEC §10.1);
#  2. B powered off while P writes, rebooted and rebuilt with the admin guide's runbook;
#     B resyncs (SPEC §10.3);
#     through 1 and 2 fio writes and checks a file on /mnt (fio_start .. fio_stop, before
#     the disks are compared), every pass clean;
#  3. P powered off while fio writes (SPEC §10.4): A and B go no_io; P rebooted and
#     reassembled, both legs normal without an enable, the device mapped as a re-map, the
#     filesystem mounted again, and a file fio wrote with md5 verification before the crash
#     passes fio's verify-only pass.
# DEMO_STRICT: any command of the script that exits non-zero fails the scenario.
COST=150    # seconds alone, measured: tests/vm/run starts the costliest first
TIMEOUT=600
DEMO_SHELL=1
DEMO_STRICT=1
DEMO_INPUT=$VM_DIR/demo-shell.input
cat >"$DEMO_INPUT" <<'END'
status
write 8
verify
# 1. link failure
fio_start 4
cut clt stg1
write 8
wait_failed
capture leg-failed
watch -c 2 clt stg0
restore clt stg1
wait_normal
sync stg1
fio_stop
verify
files
# 2. storage node crash
fio_start 4
crash stg1
write 4
boot stg1
rebuild stg1
wait_normal
sync stg1
fio_stop
verify
files
# 3. compute client crash (SPEC §10.4)
write 4
on clt fio --name=v --filename=/mnt/fio.dat --size=8M --rw=randwrite --bs=4k --ioengine=libaio --iodepth=16 --direct=1 --verify=md5 --randrepeat=1 --output-format=terse >/tmp/v.out; r=$?; cut -d';' -f3,5,6,47 /tmp/v.out; exit $r
on clt fio --name=bg --filename=/mnt/fio-bg.dat --size=16M --rw=randwrite --bs=4k --ioengine=libaio --iodepth=16 --direct=1 --time_based --runtime=300 </dev/null >/dev/null 2>&1 & p=$!; sleep 3; kill -0 $p && echo "fio writing"
crash clt
on stg0 i=0; until grep -qx no_io /sys/class/rmr-server/pools/ionos_pool/state; do [ $i -ge 40 ] && { cat /sys/class/rmr-server/pools/ionos_pool/state; exit 1; }; i=$((i + 1)); sleep 0.5; done; echo "stg0 no_io after $((i * 500)) ms"
on stg1 i=0; until grep -qx no_io /sys/class/rmr-server/pools/ionos_pool/state; do [ $i -ge 40 ] && { cat /sys/class/rmr-server/pools/ionos_pool/state; exit 1; }; i=$((i + 1)); sleep 0.5; done; echo "stg1 no_io after $((i * 500)) ms"
boot clt
reassemble
on clt dmesg | grep -E 'brmr0: mapped pool .*\(re-map'
wait_normal
on clt fio --name=v --filename=/mnt/fio.dat --size=8M --rw=randwrite --bs=4k --ioengine=libaio --iodepth=16 --direct=1 --verify=md5 --randrepeat=1 --verify_only --output-format=terse >/tmp/v.out; r=$?; cut -d';' -f3,5,6 /tmp/v.out; exit $r
files
verify
status
exit
END
. ../demo.sh
