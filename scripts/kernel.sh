#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Build the test kernel into the cache (outside the repository), keyed by kernel version,
# config fragment and toolchain. A warm cache returns at once; `--kdir` prints the tree's path.
set -euo pipefail
. "$(dirname "$0")/toolchain.sh"
if [ "${1:-}" = --kdir ]; then echo "$KDIR"; exit 0; fi
if [ -f "$KDIR/.rmr-built" ]; then
	echo "kernel: cached at $KDIR"
	exit 0
fi
top=$(dirname "$KDIR")
rm -rf "$top"; mkdir -p "$top"
echo "kernel: building into $KDIR (about 6 minutes on 2 cores)"
tar -C "$top" -xf "$KSRC_TAR"
mv "$top/linux-source-6.12" "$KDIR"
cd "$KDIR"
# shellcheck disable=SC2086
make -s $KMAKE_RUST rustavailable
make -s $KMAKE_RUST tinyconfig >/dev/null
scripts/kconfig/merge_config.sh -m .config kernel/configs/kvm_guest.config \
	"$RMR_TOP/scripts/kernel.config" >"$top/merge.log"
make -s $KMAKE_RUST olddefconfig >/dev/null
bad=0
for o in $(grep -oE '^(# )?CONFIG_[A-Z0-9_]+' "$RMR_TOP/scripts/kernel.config" | sed 's/# //'); do
	want=$(grep -E "^(# )?$o[= ]" "$RMR_TOP/scripts/kernel.config" | head -1)
	have=$(grep -E "^(# )?$o[= ]" .config | head -1 || true)
	if [ "$want" != "$have" ]; then echo "kernel: config mismatch: want '$want' have '$have'"; bad=1; fi
done
[ $bad = 0 ] || { echo "kernel: the fragment did not apply"; exit 1; }
make -s -j"$(nproc)" $KMAKE_RUST bzImage modules
touch .rmr-built
echo "kernel: built $(cat include/config/kernel.release)"
