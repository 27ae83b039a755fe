#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Run one scenario file (started by tests/vm/run with VM_DIR, VM_RUN, VM_KERNEL, VM_INITRD,
# VM_LIB in the environment). Writes the verdict to $VM_DIR/result: "PASS" or "FAIL <reason>".
SCENARIO=$1
VM_MAIN_PID=$$
_TIMED_OUT=0
# shellcheck source=harness.sh
. "$VM_LIB/harness.sh"

_end() {
	local rc=$1
	trap - EXIT USR1 TERM
	_finish
	if [ -s "$VM_DIR/fail.reason" ]; then
		{ printf 'FAIL '; cat "$VM_DIR/fail.reason"; [ -s "$VM_DIR/splat" ] && cat "$VM_DIR/splat"; } >"$VM_DIR/result"
	elif [ "$_TIMED_OUT" = 1 ]; then
		{ echo "FAIL timed out"; [ -s "$VM_DIR/splat" ] && cat "$VM_DIR/splat"; } >"$VM_DIR/result"
	elif [ "$rc" != 0 ]; then
		{ echo "FAIL scenario exited $rc"; [ -s "$VM_DIR/splat" ] && cat "$VM_DIR/splat"; } >"$VM_DIR/result"
	elif [ -s "$VM_DIR/splat" ]; then
		{ printf 'FAIL '; cat "$VM_DIR/splat"; } >"$VM_DIR/result"
	else
		echo PASS >"$VM_DIR/result"
	fi
}

trap 'exit 1' USR1
trap '_TIMED_OUT=1; log "scenario timed out"; exit 124' TERM
trap '_end $?' EXIT
log "scenario $SCENARIO"
cd "$(dirname "$SCENARIO")" || exit 1
# shellcheck disable=SC1090
. "$SCENARIO"
