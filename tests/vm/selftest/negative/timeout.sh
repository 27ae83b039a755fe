# SPDX-License-Identifier: GPL-2.0-or-later
# Must FAIL within about TIMEOUT: a command that outlives the scenario's TIMEOUT.
# expect: timed out
TIMEOUT=25
NSTG=1
KMEMLEAK=0
vm_boot clt
on clt 'sleep 60'
