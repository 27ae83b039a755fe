# SPDX-License-Identifier: GPL-2.0-or-later
# Must FAIL: a Call Trace in a guest's kernel log (sysrq-l prints one per CPU).
# expect: kernel log: clt.serial.log: Call Trace
TIMEOUT=100
NSTG=1
KMEMLEAK=0
vm_boot clt
on clt 'echo l >/proc/sysrq-trigger'
