#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `make check`: dependencies, the kernel (cached), host tests, the modules, the DKMS package,
# clippy and every VM scenario. Each host test, build step and scenario counts once; the last
# line is `N passed, N failed`. Logs of the steps go to results/check-<time>/.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP" || exit 1
LOG=$TOP/results/check-$(date +%Y%m%d-%H%M%S)
mkdir -p "$LOG"
pass=0
fail=0
t0=$(date +%s)

# step NAME CMD...: one counted step, its output in $LOG/NAME.log.
step() {
	local name=$1 s e
	shift
	s=$(date +%s)
	if "$@" >"$LOG/$name.log" 2>&1; then
		e=$(date +%s)
		echo "PASS $name ($((e - s))s)"
		pass=$((pass + 1))
		return 0
	fi
	e=$(date +%s)
	echo "FAIL $name ($((e - s))s), last lines of $LOG/$name.log:"
	tail -n 25 "$LOG/$name.log" | sed 's/^/    /'
	fail=$((fail + 1))
	return 1
}

# add_counts LOGFILE: add cargo's "test result: ... N passed; M failed" lines.
add_counts() {
	local p f
	p=$(grep -E '^test result:' "$1" | sed -E 's/.* ([0-9]+) passed; ([0-9]+) failed.*/\1/' | paste -sd+ | bc)
	f=$(grep -E '^test result:' "$1" | sed -E 's/.* ([0-9]+) passed; ([0-9]+) failed.*/\2/' | paste -sd+ | bc)
	echo "host tests: ${p:-0} passed, ${f:-0} failed"
	pass=$((pass + ${p:-0}))
	fail=$((fail + ${f:-0}))
}

finish() {
	echo "check: $(($(date +%s) - t0))s, logs in $LOG"
	echo "$pass passed, $fail failed"
	[ "$fail" = 0 ]
	exit $?
}

step deps make -s deps || finish
step kernel make -s kernel || finish

# Host tests: the protocol core, the simulator's seed batch, rmrctl (release: the seed batch
# needs it to stay fast).
s=$(date +%s)
if ! "$HOME/.cargo/bin/cargo" test --workspace --release --no-fail-fast >"$LOG/host-tests.log" 2>&1; then
	if ! grep -q '^test result:' "$LOG/host-tests.log"; then
		echo "FAIL host-tests (did not build):"
		tail -n 25 "$LOG/host-tests.log" | sed 's/^/    /'
		fail=$((fail + 1))
	fi
	grep -E '^test .* FAILED$|panicked' "$LOG/host-tests.log" | head -20 | sed 's/^/    /'
fi
echo "host tests took $(($(date +%s) - s))s"
add_counts "$LOG/host-tests.log"

step modules make -s modules || finish
# the DKMS package, built and installed into a temporary tree against the test kernel
step dkms scripts/dkms-check.sh
step clippy make -s clippy
# clippy rebuilt the objects with clippy-driver; rebuild them with rustc for the guests
step modules-rebuild make -s modules

# VM scenarios: tests/vm/run prints its own "N passed, N failed" last.
tests/vm/run 2>&1 | tee "$LOG/vm.log" | grep -E '^(PASS|FAIL) '
vm_last=$(tail -n 1 "$LOG/vm.log")
if [[ $vm_last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
	pass=$((pass + BASH_REMATCH[1]))
	fail=$((fail + BASH_REMATCH[2]))
else
	echo "FAIL vm harness did not finish: $vm_last"
	fail=$((fail + 1))
fi
finish
