# SPDX-License-Identifier: GPL-2.0-or-later
# Must PASS: the same Call Trace, allowed by log_allow.
# expect: PASS
TIMEOUT=100
NSTG=1
KMEMLEAK=0
vm_boot clt
log_allow 'NMI backtrace|Call Trace|sysrq'
on clt 'echo l >/proc/sysrq-trigger'
