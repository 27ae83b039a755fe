# SPDX-License-Identifier: GPL-2.0-or-later
# Harness self-test: the command API. Output of every size goes through the agent intact (both
# ways, stdout and stderr), exit codes, timeouts, errno checks, background jobs, the guest tools.
TIMEOUT=240
NSTG=1

vm_boot clt stg0
tmp=$VM_RUN/api.tmp
for n in 0 1 2 3 4 5 12287 12288 12289 300000; do
	head -c $n /dev/urandom >"$tmp"
	h=$(sha256sum <"$tmp")
	vm_put clt "$tmp" /tmp/f
	expect_eq "$(on clt 'sha256sum </tmp/f')" "$h" "vm_put of $n bytes"
	expect_eq "$(on clt 'cat /tmp/f' | sha256sum)" "$h" "stdout of $n bytes"
	expect_eq "$(on clt 'cat /tmp/f >&2' 2>&1 >/dev/null | sha256sum)" "$h" "stderr of $n bytes"
done
out=$(on_try clt 'echo out; echo err >&2; exit 3' 2>/dev/null)
expect_eq "$?" 3 "on_try exit code"
expect_eq "$out" out "on_try stdout"
expect_eq "$(on clt 'echo "a  b"; printf "%s\n" "$HOME" "$(pwd)"')" "a  b
/root
/root" "quoting and environment"
on_fail -t 3 clt 'sleep 10'
on_fail clt 'exit 1'
expect_eq "$(on clt 'echo still alive')" "still alive" "agent after a timeout"
expect_errno stg0 EINVAL 'echo x >/sys/block/sda/queue/scheduler'
expect_errno stg0 ENOENT 'cat /nonexistent'
h=$(on_bg clt 'sleep 2; echo bgdone; exit 4')
expect_eq "$(on clt 'echo not blocked')" "not blocked" "on while a background job runs"
out=$(bg_wait_try "$h")
expect_eq "$?" 4 "background job exit code"
expect_eq "$out" bgdone "background job output"
h=$(on_bg clt 'sleep 100')
bg_kill "$h"
wait_for -t 5 clt '! pgrep -f "sleep 100"'
on clt 'sleep 30 >/dev/null 2>&1 &'   # a leftover child must not hold the reply back
wait_for -t 5 clt 'test -e /tmp/f'
expect_match "$(on clt 'fio --version')" '^fio-' "fio"
on stg0 'mkfs.ext4 -q -F /dev/sda && e2fsck -fn /dev/sda >/dev/null && lsblk /dev/sda >/dev/null && rdma link show >/dev/null && /usr/bin/ip -br addr >/dev/null && blockdev --getsize64 /dev/sda && cmp /dev/null /dev/null'
expect_eq "$(on stg0 'hostname; grep -c . /run/links')" "stg0
1" "hostname and links"
expect_eq "$(on_each "clt stg0" 'sleep 1; hostname')" "clt
stg0" "on_each output order"
