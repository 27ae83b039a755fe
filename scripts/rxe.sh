#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The test VMs' Soft-RoCE driver: the test kernel's rdma_rxe with the fixes in
# scripts/patches/rdma_rxe-*.patch, built out of tree into the cache, keyed by the kernel
# tree and the patches. The VM image installs it in /lib/modules/$KV/updates, which modprobe
# prefers to the kernel's own. Prints the module's path. Needs the kernel (scripts/kernel.sh).
set -euo pipefail
. "$(dirname "$0")/toolchain.sh"
[ -f "$KDIR/.rmr-built" ] || { echo "rxe: the kernel is not built (make kernel)" >&2; exit 1; }
key=$({ echo "$KDIR"; cat "$RMR_TOP"/scripts/patches/rdma_rxe-*.patch; } | sha256sum | cut -c1-16)
out=$RMR_CACHE/rxe-$key
if [ ! -f "$out/rdma_rxe.ko" ]; then
	tmp=$(mktemp -d "$RMR_CACHE/.rxe.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	cp "$KDIR"/drivers/infiniband/sw/rxe/*.[ch] "$KDIR"/drivers/infiniband/sw/rxe/Makefile "$tmp/"
	for p in "$RMR_TOP"/scripts/patches/rdma_rxe-*.patch; do
		patch -s -p5 -d "$tmp" <"$p" || { echo "rxe: $(basename "$p") does not apply" >&2; exit 1; }
	done
	# shellcheck disable=SC2086
	make -s -C "$KDIR" M="$tmp" CONFIG_RDMA_RXE=m $KMAKE_RUST modules >"$tmp/build.log" 2>&1 ||
		{ cat "$tmp/build.log" >&2; echo "rxe: build failed" >&2; exit 1; }
	mkdir -p "$out.new"
	cp "$tmp/rdma_rxe.ko" "$out.new/"
	rm -rf "$out"; mv "$out.new" "$out"
	for old in "$RMR_CACHE"/rxe-*; do [ "$old" = "$out" ] || rm -rf "$old"; done
	echo "rxe: built $out/rdma_rxe.ko" >&2
fi
echo "$out/rdma_rxe.ko"
