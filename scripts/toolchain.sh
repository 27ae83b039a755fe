# SPDX-License-Identifier: GPL-2.0-or-later
# Sourced by the build scripts: the pinned toolchain for kernel code and the cache locations.
# Kernel code is built with Debian's rustc-web (/usr/bin/rustc, sysroot /usr, with rust-src);
# rustup's toolchain in ~/.cargo/bin has no rust-src and must never build kernel code.
RMR_CACHE=${RMR_CACHE:-$HOME/.cache/rmr}
RMR_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export LIBCLANG_PATH=/usr/lib/llvm-14/lib
BINDGEN=$RMR_CACHE/bindgen/bin/bindgen
KMAKE_RUST="RUSTC=/usr/bin/rustc HOSTRUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTFMT=/usr/bin/rustfmt CLIPPY_DRIVER=/usr/bin/clippy-driver BINDGEN=$BINDGEN"
KSRC_TAR=/usr/src/linux-source-6.12.tar.xz

# Cache key: kernel source version + config fragment + toolchain versions.
kernel_key() {
	{
		dpkg-query -W -f='${Version}\n' linux-source-6.12 2>/dev/null
		cat "$RMR_TOP/scripts/kernel.config"
		/usr/bin/rustc --version
		"$BINDGEN" --version
		gcc --version | head -1
	} | sha256sum | cut -c1-16
}
KDIR=$RMR_CACHE/kernel-$(kernel_key)/linux
