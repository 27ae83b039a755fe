#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Install every build and test dependency. Idempotent: returns in seconds when all is present.
set -euo pipefail
CACHE=${RMR_CACHE:-$HOME/.cache/rmr}
PKGS="linux-source-6.12 rustc-web rust-web-src rustfmt-web rust-web-clippy cargo-web libclang-dev clang lld llvm
 bc flex bison libelf-dev libssl-dev cpio dwarves busybox-static qemu-system-x86 kmod e2fsprogs iproute2
 fio mdadm drbd-utils make gcc python3 xz-utils dkms"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "deps: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# linux-source-6.12 and rustc-web 1.96 come from bookworm-security
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
BG=$CACHE/bindgen/bin/bindgen
if ! [ -x "$BG" ] || ! "$BG" --version 2>/dev/null | grep -q '0.71.1'; then
	echo "deps: installing bindgen-cli 0.71.1"
	mkdir -p "$CACHE"
	CARGO_HOME=$CACHE/cargo-home LIBCLANG_PATH=/usr/lib/llvm-14/lib \
		cargo install --locked bindgen-cli@0.71.1 --root "$CACHE/bindgen" -q
fi
echo "deps: ok"
