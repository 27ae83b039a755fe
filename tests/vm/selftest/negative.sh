#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Harness self-test of failure detection: runs tests/vm/selftest/negative/*.sh and checks that
# each ends as its "# expect:" line says (PASS, or a FAIL whose reason contains the text).
HERE=$(cd "$(dirname "$0")" && pwd)
out=$("$HERE/../run" "$HERE"/negative/*.sh 2>&1)
echo "$out"
bad=0
for f in "$HERE"/negative/*.sh; do
	name=$(basename "$f" .sh)
	want=$(sed -n 's/^# expect: //p' "$f")
	line=$(echo "$out" | grep -E "^(PASS|FAIL) $name[: ]" -A3 | tr '\n' ' ')
	if [ "$want" = PASS ]; then
		case $line in "PASS $name "*) ok=1 ;; *) ok=0 ;; esac
	else
		case $line in "FAIL $name:"*"$want"*) ok=1 ;; *) ok=0 ;; esac
	fi
	[ $ok = 1 ] || { echo "negative: $name: want '$want', got: $line"; bad=1; }
done
[ $bad = 0 ] && echo "negative: all as expected"
exit $bad
