# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
#
# sysfs_capture TAG NAME...: copy the rmr and brmr sysfs classes of each guest to
# $VM_DIR/capture/TAG/NAME/class/..., a tree `rmrctl --sysfs DIR` reads like /sys.
# $CAPTURE_GUEST, run in a guest script, makes the copy in the guest's /tmp/capture (to take
# it at a chosen moment of a longer command); sysfs_capture_fetch TAG NAME brings it over. The
# fixtures of tools/rmrctl/tests/fixtures are such captures (see its README.md for how to
# refresh them). Sourced by scenarios after the harness.
#
# In the copy: every readable attribute with its content; write-only attributes as empty
# files; `map` left out (reading it logs every map); symlinks followed, except `subsystem`
# and the device and power links; the `block` link of a brmr device reduced to block/size.
CAPTURE_GUEST='walk() {
	local s=$1 d=$2 n=$3 e b
	mkdir -p "$d"
	for e in "$s"/*; do
		[ -e "$e" ] || continue
		b=${e##*/}
		case $b in subsystem | power | device | map | holders | slaves | mq | queue | trace | bdi) continue ;; esac
		if [ -f "$e" ]; then
			cat "$e" >"$d/$b" 2>/dev/null || : >"$d/$b"
		elif [ "$b" = block ]; then
			mkdir -p "$d/block" && cat "$e/size" >"$d/block/size"
		elif [ -d "$e" ] && [ "$n" -gt 0 ]; then
			walk "$e" "$d/$b" $((n - 1))
		fi
	done
}
rm -rf /tmp/capture && mkdir -p /tmp/capture/class || exit 1
for c in rmr-client rmr-server brmr-client brmr-server; do
	[ -d /sys/class/$c ] && walk /sys/class/$c /tmp/capture/class/$c 6
done
true'

sysfs_capture_fetch() { # TAG NAME
	local dst=$VM_DIR/capture/$1/$2
	rm -rf "$dst" && mkdir -p "$dst" || fail "sysfs_capture: cannot create $dst"
	on "$2" 'tar -C /tmp/capture -cf - class | base64' | base64 -d | tar -C "$dst" -xf - ||
		fail "sysfs_capture $1: cannot unpack the capture of $2"
	log "captured the sysfs classes of $2 as $1"
}

sysfs_capture() {
	local tag=$1 n
	shift
	for n in "$@"; do
		on "$n" "$CAPTURE_GUEST" >/dev/null
		sysfs_capture_fetch "$tag" "$n"
	done
}
