#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# patched-module.sh NAME SRC MODULE [MAKEVAR=VALUE ...]: one of the test kernel's modules with
# the testbed's fixes in scripts/patches/NAME-*.patch, built out of tree into the cache, keyed
# by the kernel tree and the patches. SRC is its folder in the kernel tree, MODULE the .ko it
# builds, the MAKEVARs select it (CONFIG_...=m). The VM image installs it in
# /lib/modules/$KV/updates, which modprobe prefers to the kernel's own. Prints the module's
# path. Needs the kernel (scripts/kernel.sh). Used by scripts/rxe.sh and scripts/rtrs.sh.
set -euo pipefail
. "$(dirname "$0")/toolchain.sh"
name=$1 src=$2 ko=$3
shift 3
[ -f "$KDIR/.rmr-built" ] || { echo "$name: the kernel is not built (make kernel)" >&2; exit 1; }
key=$({ echo "$KDIR"; cat "$RMR_TOP"/scripts/patches/"$name"-*.patch; } | sha256sum | cut -c1-16)
out=$RMR_CACHE/$name-$key
if [ ! -f "$out/$ko" ]; then
	tmp=$(mktemp -d "$RMR_CACHE/.$name.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	cp "$KDIR/$src"/*.[ch] "$KDIR/$src/Makefile" "$tmp/"
	for p in "$RMR_TOP"/scripts/patches/"$name"-*.patch; do
		patch -s -p5 -d "$tmp" <"$p" || { echo "$name: $(basename "$p") does not apply" >&2; exit 1; }
	done
	# shellcheck disable=SC2086
	make -s -C "$KDIR" M="$tmp" "$@" $KMAKE_RUST modules >"$tmp/build.log" 2>&1 ||
		{ cat "$tmp/build.log" >&2; echo "$name: build failed" >&2; exit 1; }
	mkdir -p "$out.new"
	cp "$tmp/$ko" "$out.new/"
	rm -rf "$out"; mv "$out.new" "$out"
	for old in "$RMR_CACHE/$name"-*; do [ "$old" = "$out" ] || rm -rf "$old"; done
	echo "$name: built $out/$ko" >&2
fi
echo "$out/$ko"
