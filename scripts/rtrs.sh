#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The test VMs' RTRS client: the test kernel's rtrs-client with the fixes in
# scripts/patches/rtrs_client-*.patch, built out of tree into the cache, keyed by the kernel
# tree and the patches. The VM image installs it in /lib/modules/$KV/updates, which modprobe
# prefers to the kernel's own (rtrs-core stays the kernel's). Prints the module's path.
# Needs the kernel (scripts/kernel.sh).
set -euo pipefail
. "$(dirname "$0")/toolchain.sh"
[ -f "$KDIR/.rmr-built" ] || { echo "rtrs: the kernel is not built (make kernel)" >&2; exit 1; }
key=$({ echo "$KDIR"; cat "$RMR_TOP"/scripts/patches/rtrs_client-*.patch; } | sha256sum | cut -c1-16)
out=$RMR_CACHE/rtrs-$key
if [ ! -f "$out/rtrs-client.ko" ]; then
	tmp=$(mktemp -d "$RMR_CACHE/.rtrs.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	cp "$KDIR"/drivers/infiniband/ulp/rtrs/*.[ch] "$KDIR"/drivers/infiniband/ulp/rtrs/Makefile "$tmp/"
	for p in "$RMR_TOP"/scripts/patches/rtrs_client-*.patch; do
		patch -s -p5 -d "$tmp" <"$p" || { echo "rtrs: $(basename "$p") does not apply" >&2; exit 1; }
	done
	# only the client: rtrs-core and rtrs-server stay the kernel's
	# shellcheck disable=SC2086
	make -s -C "$KDIR" M="$tmp" CONFIG_INFINIBAND_RTRS= CONFIG_INFINIBAND_RTRS_SERVER= \
		CONFIG_INFINIBAND_RTRS_CLIENT=m $KMAKE_RUST modules >"$tmp/build.log" 2>&1 ||
		{ cat "$tmp/build.log" >&2; echo "rtrs: build failed" >&2; exit 1; }
	mkdir -p "$out.new"
	cp "$tmp/rtrs-client.ko" "$out.new/"
	rm -rf "$out"; mv "$out.new" "$out"
	for old in "$RMR_CACHE"/rtrs-*; do [ "$old" = "$out" ] || rm -rf "$old"; done
	echo "rtrs: built $out/rtrs-client.ko" >&2
fi
echo "$out/rtrs-client.ko"
