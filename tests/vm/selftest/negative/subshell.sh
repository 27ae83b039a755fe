# SPDX-License-Identifier: GPL-2.0-or-later
# Must FAIL: a failing command inside $(...) stops the scenario.
# expect: on stg0: 'exit 7' exited 7
TIMEOUT=60
NSTG=1
KMEMLEAK=0
vm_boot stg0
x=$(on stg0 'exit 7')
fail "not reached"
