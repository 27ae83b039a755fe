# SPDX-License-Identifier: GPL-2.0-or-later
# Must FAIL: the guest panics (and powers off) during a command.
# expect: vmctl: guest died
TIMEOUT=100
NSTG=1
KMEMLEAK=0
vm_boot clt
on clt 'echo c >/proc/sysrq-trigger'
on clt true
