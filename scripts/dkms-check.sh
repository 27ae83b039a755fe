#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `make check`'s dkms step: the DKMS package (dkms.conf) built and installed as an administrator
# would, against the test kernel's tree, so that it cannot rot. Everything dkms writes goes to
# a temporary directory (its own --sourcetree, --dkmstree and --installtree, no depmod, no
# signing): the host's /usr/src, /var/lib/dkms and /lib/modules, the kernel tree and this
# source tree are left alone. Checks that rmr.ko and brmr.ko came out for the kernel's release
# (vermagic) and were installed where dkms puts them, and that the kernel tree was not written.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
KDIR=$("$TOP/scripts/kernel.sh" --kdir)
[ -f "$KDIR/.rmr-built" ] || { echo "dkms-check: no test kernel at $KDIR (make kernel)"; exit 1; }
DKMS=$(command -v dkms || echo /usr/sbin/dkms)
[ -x "$DKMS" ] || { echo "dkms-check: dkms is not installed (make deps)"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/rmr-dkms.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
touch "$tmp/start"
KVER=$(make -s -C "$KDIR" kernelrelease)
pkg=$("$TOP/scripts/dkms-source.sh" "$tmp/src")
echo "dkms-check: $pkg for $KVER from $KDIR"
mkdir -p "$tmp/dkms" "$tmp/root/lib/modules/$KVER"
trees=(--sourcetree "$tmp/src" --dkmstree "$tmp/dkms" --installtree "$tmp/root/lib/modules")
# dkms reads sign_file from the environment when framework.conf does not set it: a path that
# does not exist turns signing off, so that no key is made in /var/lib/dkms.
export sign_file=$tmp/no-sign-file

"$DKMS" add "$pkg" "${trees[@]}"
if ! "$DKMS" build "$pkg" -k "$KVER" --kernelsourcedir "$KDIR" "${trees[@]}"; then
	log=$(find "$tmp/dkms" -name make.log | head -1 || true)
	echo "dkms-check: the build failed; last lines of ${log:-make.log}:"
	[ -z "$log" ] || tail -n 40 "$log"
	exit 1
fi
"$DKMS" install "$pkg" -k "$KVER" --no-depmod "${trees[@]}"
"$DKMS" status "${trees[@]}"

bad=0
for m in rmr brmr; do
	ko=$tmp/root/lib/modules/$KVER/updates/dkms/$m.ko
	if ! [ -f "$ko" ]; then
		echo "dkms-check: $m.ko was not installed to ${ko#"$tmp"/root}"
		bad=1
		continue
	fi
	vm=$(modinfo -F vermagic "$ko")
	if [ "${vm%% *}" != "$KVER" ]; then
		echo "dkms-check: $m.ko has vermagic '$vm', the kernel is $KVER"
		bad=1
	fi
done
# The installed tree resolves as modprobe would see it: brmr needs rmr.
touch "$tmp/root/lib/modules/$KVER/"{modules.order,modules.builtin,modules.builtin.modinfo}
depmod -b "$tmp/root" "$KVER"
grep -q '^updates/dkms/brmr.ko:.*updates/dkms/rmr.ko' "$tmp/root/lib/modules/$KVER/modules.dep" || {
	echo "dkms-check: modules.dep does not have brmr depend on rmr:"
	cat "$tmp/root/lib/modules/$KVER/modules.dep"
	bad=1
}
written=$(find "$KDIR" -newer "$tmp/start" -print | head -5 || true)
if [ -n "$written" ]; then
	echo "dkms-check: the build wrote into the kernel tree:"
	echo "$written"
	bad=1
fi
[ $bad = 0 ] || exit 1
echo "dkms-check: $pkg built and installed for $KVER: rmr.ko, brmr.ko"
