#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Build what the guests boot from:
#   initrd.img  the initramfs, two concatenated cpio archives (the kernel unpacks them in order,
#               so the second overrides the first):
#       base (cached): busybox, the static command agent, the ELF loader, the kernel's modules;
#       run  (every run, cheap): /init, the project's rmr.ko/brmr.ko in /lib/modules/$KV/extra,
#               the fixed Soft-RoCE driver and RTRS client (scripts/rxe.sh, scripts/rtrs.sh) in
#               .../updates, a fresh depmod,
#               and rmrctl (in /bin) when it has been built.
#   tools.img   (cached) a read-only ext4 image mounted on /usr in every guest: the dynamic tools
#               the tests use and their libraries (fio alone pulls ~80 MiB of libraries; as a
#               disk they cost nothing at boot, in the initramfs they cost ~2 s of unpacking).
# The cache lives in $RMR_CACHE (default ~/.cache/rmr)/vm-initramfs-<key>, the key covering the
# kernel tree and its build stamp, the host tool versions and the sources in this folder.
#
# Usage: initramfs.sh KDIR OUTDIR      (writes OUTDIR/initrd.img, OUTDIR/tools.img -> cache)
set -euo pipefail

KDIR=$1
OUTDIR=$2
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/../../.." && pwd)
RMR_CACHE=${RMR_CACHE:-$HOME/.cache/rmr}
KV=$(cat "$KDIR/include/config/kernel.release")

# Dynamic executables for the tools image, with their libraries.
TOOLS="/usr/bin/rdma /usr/bin/ip /usr/sbin/mke2fs /usr/sbin/e2fsck /usr/sbin/dumpe2fs
       /usr/sbin/debugfs /usr/bin/fio /usr/bin/lsblk /usr/sbin/blockdev /usr/bin/dd /usr/bin/cmp
       /usr/bin/sha256sum /usr/bin/md5sum /usr/sbin/dmsetup /usr/bin/timeout /usr/bin/hexdump
       /usr/bin/od /usr/bin/stat /usr/bin/truncate /usr/sbin/blkdiscard"
# Taken when the host has them (scripts/deps.sh installs them); only some tests need them:
# mdadm and DRBD's 8.4 tools for tests/bench/fio.sh's md-raid1 and DRBD comparisons, perf for
# its profile (the ones outside /usr land in the guest's /usr/sbin).
OPTIONAL_TOOLS="/usr/sbin/mdadm /lib/drbd/drbdsetup-84 /sbin/drbdmeta /usr/bin/perf"

base_key() {
	{
		echo "$KDIR $KV"
		stat -c %Y "$KDIR/.rmr-built" 2>/dev/null || stat -c %Y "$KDIR/arch/x86/boot/bzImage"
		dpkg-query -W -f='${Package} ${Version}\n' busybox-static iproute2 e2fsprogs fio \
			coreutils util-linux diffutils dmsetup bsdextrautils mdadm drbd-utils linux-perf libc6 2>/dev/null || true
		sha256sum "${BASH_SOURCE[0]}" "$HERE/agent.c"
	} | sha256sum | cut -c1-16
}

# Copy EXE to ROOT/DESTDIR and its libraries to ROOT/usr/lib/... (the guest's /lib is a link)
copy_with_libs() { # ROOT EXE DESTDIR
	local r=$1 exe=$2 dest=$3 l g
	mkdir -p "$r$dest"
	cp -L "$exe" "$r$dest/"
	for l in $(ldd "$exe" 2>/dev/null | grep -oE '/[^ ]+\.so[^ ]*'); do
		case $l in /usr/*) g=$l ;; *) g=/usr$l ;; esac
		[ -e "$r$g" ] && continue
		mkdir -p "$r$(dirname "$g")"
		cp -L "$l" "$r$g"
	done
}

build_base() { # DIR
	local d=$1 r=$1/rootfs u=$1/usr a t sz
	mkdir -p "$r"/{bin,sbin,usr,proc,sys,dev,tmp,run,mnt,root,etc,lib,lib64} "$u/usr"
	cp /bin/busybox "$r/bin/busybox"
	for a in $(/bin/busybox --list); do
		[ -e "$r/bin/$a" ] || ln -s busybox "$r/bin/$a"
	done
	# the kernel's request_module() runs /sbin/modprobe
	for a in modprobe insmod rmmod lsmod depmod; do
		rm -f "$r/bin/$a"; ln -s /bin/busybox "$r/sbin/$a"
	done
	gcc -static -O2 -Wall -o "$r/sbin/rmr-agent" "$HERE/agent.c"
	strip "$r/sbin/rmr-agent"
	# dynamic tools live on the tools image, mounted on /usr; /lib/x86_64-linux-gnu points there
	for t in $TOOLS; do
		[ -x "$t" ] || { echo "initramfs: missing host tool $t" >&2; exit 1; }
		copy_with_libs "$u" "$t" "$(dirname "$t")"
	done
	for t in $OPTIONAL_TOOLS; do
		if [ -x "$t" ]; then
			case $t in /usr/*) copy_with_libs "$u" "$t" "$(dirname "$t")" ;; *) copy_with_libs "$u" "$t" /usr/sbin ;; esac
		else
			echo "initramfs: warning: optional host tool $t missing (scripts/deps.sh)" >&2
		fi
	done
	ln -s mke2fs "$u/usr/sbin/mkfs.ext4"
	ln -s e2fsck "$u/usr/sbin/fsck.ext4"
	ln -s /usr/lib/x86_64-linux-gnu "$r/lib/x86_64-linux-gnu"
	cp -L /lib64/ld-linux-x86-64.so.2 "$r/lib64/"
	echo "root:x:0:0:root:/root:/bin/sh" >"$r/etc/passwd"
	echo "root:x:0:" >"$r/etc/group"
	make -s -C "$KDIR" INSTALL_MOD_PATH="$r" INSTALL_MOD_STRIP=1 modules_install >/dev/null
	rm -f "$r/lib/modules/$KV/build" "$r/lib/modules/$KV/source"
	depmod -b "$r" "$KV"
	(cd "$r" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) >"$d/base.cpio"
	sz=$(du -sm "$u/usr" | cut -f1)
	mke2fs -q -t ext4 -O ^has_journal -L rmr-tools -E root_owner=0:0 -d "$u/usr" \
		"$d/tools.img" "$((sz + sz / 5 + 16))M" >/dev/null
	rm -rf "$u"
}

key=$(base_key)
BASE=$RMR_CACHE/vm-initramfs-$key
if [ ! -f "$BASE/tools.img" ]; then
	mkdir -p "$RMR_CACHE"
	tmp=$(mktemp -d "$RMR_CACHE/.vm-initramfs.XXXXXX")
	chmod 755 "$tmp"
	build_base "$tmp"
	rm -rf "$BASE"
	mv "$tmp" "$BASE" 2>/dev/null || rm -rf "$tmp"   # a concurrent builder won the race
fi
touch "$BASE"
# Drop other keys unused for an hour (worktrees with other harness sources share the cache;
# dropping them at once made two of them rebuild in turn).
for old in "$RMR_CACHE"/vm-initramfs-*; do
	[ "$old" = "$BASE" ] || [ -z "$(find "$old" -maxdepth 0 -mmin +60)" ] || rm -rf "$old"
done

# The run layer.
run=$(mktemp -d)
trap 'rm -rf "$run"' EXIT
mods=$run/mods
mkdir -p "$mods/lib/modules" "$run/layer/lib/modules/$KV/extra" "$run/layer/bin"
cp -a "$BASE/rootfs/lib/modules/$KV" "$mods/lib/modules/"
mkdir -p "$mods/lib/modules/$KV/extra"
extra=""
for m in "$TOP/rmr/rmr.ko" "$TOP/brmr/brmr.ko" ${VM_EXTRA_MODULES:-}; do
	[ -f "$m" ] || continue
	cp "$m" "$mods/lib/modules/$KV/extra/"
	strip --strip-debug "$mods/lib/modules/$KV/extra/$(basename "$m")" 2>/dev/null ||
		echo "initramfs: warning: cannot strip $m (being rebuilt?)" >&2
	extra="$extra $(basename "$m")"
done
# Soft-RoCE and the RTRS client with the testbed's fixes (scripts/rxe.sh, scripts/rtrs.sh):
# updates/ wins over the kernel's own.
rxe=$("$TOP/scripts/rxe.sh")
rtrs=$("$TOP/scripts/rtrs.sh")
mkdir -p "$mods/lib/modules/$KV/updates" "$run/layer/lib/modules/$KV/updates"
for m in "$rxe" "$rtrs"; do
	cp "$m" "$mods/lib/modules/$KV/updates/"
	strip --strip-debug "$mods/lib/modules/$KV/updates/$(basename "$m")"
done
depmod -b "$mods" "$KV"
for m in rdma_rxe rtrs-client; do
	grep -q "^updates/$m.ko:" "$mods/lib/modules/$KV/modules.dep" ||
		{ echo "initramfs: depmod did not prefer updates/$m.ko" >&2; exit 1; }
	cp "$mods/lib/modules/$KV/updates/$m.ko" "$run/layer/lib/modules/$KV/updates/"
done
cp "$mods/lib/modules/$KV"/modules.* "$run/layer/lib/modules/$KV/"
[ -z "$extra" ] || cp "$mods/lib/modules/$KV/extra/"*.ko "$run/layer/lib/modules/$KV/extra/"
cp "$HERE/init" "$run/layer/init"
chmod 755 "$run/layer/init"
tools=""
for t in "$TOP/target/release/rmrctl" ${VM_EXTRA_TOOLS:-}; do
	[ -x "$t" ] || continue
	cp -L "$t" "$run/layer/bin/"
	for l in $(ldd "$t" 2>/dev/null | grep -oE '/[^ ]+\.so[^ ]*' | grep -v ld-linux); do
		debugfs -R "stat /lib/x86_64-linux-gnu/$(basename "$l")" "$BASE/tools.img" 2>/dev/null | grep -q Inode ||
			echo "initramfs: warning: $(basename "$t") needs $l, not on the tools image" >&2
	done
	tools="$tools $(basename "$t")"
done
(cd "$run/layer" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) >"$run/run.cpio"
mkdir -p "$OUTDIR"
cat "$BASE/base.cpio" "$run/run.cpio" >"$OUTDIR/initrd.img.tmp"
mv "$OUTDIR/initrd.img.tmp" "$OUTDIR/initrd.img"
# a hard link keeps the image of this run even if another run drops the cache entry
rm -f "$OUTDIR/tools.img"
ln "$BASE/tools.img" "$OUTDIR/tools.img" 2>/dev/null || ln -sfn "$BASE/tools.img" "$OUTDIR/tools.img"
echo "initramfs: $(($(stat -c %s "$OUTDIR/initrd.img") / 1048576)) MiB + tools image $(($(stat -c %s "$BASE/tools.img") / 1048576)) MiB, kernel $KV, extra modules:${extra:- none}, rdma_rxe from $(basename "$(dirname "$rxe")"), rtrs-client from $(basename "$(dirname "$rtrs")"), tools:${tools:- none}"
