#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Copy the sources of the DKMS package (dkms.conf) to DIR/rmr-<version>, DIR being /usr/src
# unless given, as `dkms add rmr/<version>` wants them. Only what git tracks, and new files it
# does not ignore, are copied: target/, results/, .git and built objects stay behind.
# Usage: dkms-source.sh [DIR]; prints the package's name for dkms, rmr/<version>.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
DIR=${1:-/usr/src}
# shellcheck disable=SC1091
VER=$(set +u; . "$TOP/dkms.conf" && echo "$PACKAGE_VERSION")
[ -n "$VER" ] || { echo "dkms-source: no PACKAGE_VERSION from dkms.conf" >&2; exit 1; }
DEST=$DIR/rmr-$VER
git -C "$TOP" rev-parse --git-dir >/dev/null 2>&1 ||
	{ echo "dkms-source: $TOP is not a git checkout" >&2; exit 1; }
if [ -e "$DEST" ]; then
	echo "dkms-source: $DEST exists (dkms remove rmr/$VER --all; rm -r $DEST)" >&2
	exit 1
fi
mkdir -p "$DEST"
cd "$TOP"
# Tracked files deleted in the work tree are skipped.
git ls-files -z --cached --others --exclude-standard |
	while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
	tar --null -T - -cf - | tar -C "$DEST" -xf -
echo "rmr/$VER"
