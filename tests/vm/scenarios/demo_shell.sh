# SPDX-License-Identifier: GPL-2.0-or-later
# `make demo` and the prompt of `make demo-shell`, scripted: the demo's bring-up (rmrctl
# verbs, ext4 on /dev/brmr0), then at the prompt the three failures a newcomer is invited to
# try, each ending with both storage disks identical and every file written intact:
#  1. the P-B link cut while writing, restored; B resyncs (SPEC §10.1);
#  2. B powered off while P writes, rebooted and rebuilt with the admin guide's runbook;
#     B resyncs (SPEC §10.3);
#  3. P powered off after a write, rebooted and reassembled (SPEC §10.2), the filesystem
#     mounted again.
# DEMO_STRICT: any command of the script that exits non-zero fails the scenario.
TIMEOUT=600
DEMO_SHELL=1
DEMO_STRICT=1
DEMO_INPUT=$VM_DIR/demo-shell.input
cat >"$DEMO_INPUT" <<'END'
status
write 8
verify
# 1. link failure
cut clt stg1
write 8
wait_failed
capture leg-failed
watch -c 2 clt stg0
restore clt stg1
wait_normal
sync stg1
verify
files
# 2. storage node crash
crash stg1
write 4
boot stg1
rebuild stg1
wait_normal
sync stg1
verify
files
# 3. compute client crash
write 4
crash clt
boot clt
reassemble
wait_normal
files
verify
status
exit
END
. ../demo.sh
