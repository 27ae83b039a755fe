# SPDX-License-Identifier: GPL-2.0-or-later
# Must FAIL: a failed check stops the scenario and names what was checked.
# expect: the answer: expected '6', got '5'
TIMEOUT=60
NSTG=1
KMEMLEAK=0
vm_boot stg0
x=$(on stg0 'echo 5')
expect_eq "$x" 6 "the answer"
fail "not reached"
