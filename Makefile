# SPDX-License-Identifier: GPL-2.0-or-later
# rmr + brmr. `make check` runs every test; `make demo` boots a local cluster.
SHELL := /bin/bash
TOP := $(CURDIR)
export RMR_CACHE ?= $(HOME)/.cache/rmr
KDIR = $(shell $(TOP)/scripts/kernel.sh --kdir)
TOOLCHAIN = source $(TOP)/scripts/toolchain.sh
KMAKE = $(TOOLCHAIN) && $(MAKE) -C $(KDIR) M=$(TOP) $$KMAKE_RUST
HOST_CARGO = $(HOME)/.cargo/bin/cargo

.PHONY: all modules modules-kdir deps kernel clippy test vm check demo demo-shell clean fmt rmrctl

all: modules

deps:
	@$(TOP)/scripts/deps.sh

kernel: deps
	@$(TOP)/scripts/kernel.sh

# The bindings belong to the kernel tree they were generated from: .rtrs-kdir names it, so
# building against another tree (modules-kdir) regenerates them, and so does coming back.
.rtrs-kdir: FORCE
	@echo "$(KDIR)" | cmp -s - $@ || echo "$(KDIR)" >$@

rtrs-sys/rtrs_generated.rs: .rtrs-kdir scripts/kernel.config rtrs-sys/gen.sh rtrs-sys/rtrs_wrapper.h
	@$(TOP)/rtrs-sys/gen.sh $(KDIR) $@

# Kbuild tracks a Rust crate by the files rustc read last time: a source file that was added,
# moved or deleted since goes unnoticed. RS_SRCS lists them; when the list changes, the crate
# roots are touched so both crates rebuild.
RS_SRCS = $(shell cd $(TOP) && find rmr brmr rtrs-sys rmr-core/src -name '*.rs' | sort)
RS_ROOTS = rmr/rmr_main.rs brmr/brmr_main.rs

.rs-srcs: FORCE
	@echo "$(RS_SRCS)" | cmp -s - $@ || { echo "$(RS_SRCS)" >$@; touch $(RS_ROOTS); }

.PHONY: FORCE
FORCE:

# A build that warned touches the crate roots, so that running `make modules` again rebuilds
# and fails again instead of finding everything up to date.
modules: kernel rtrs-sys/rtrs_generated.rs .rs-srcs
	@$(KMAKE) modules 2>&1 | tee build.log | grep -v '^  \(RUSTC\|CC\|LD\|MODPOST\|BTF\)' ; \
	  rc=$${PIPESTATUS[0]}; [ $$rc = 0 ] || exit $$rc; \
	  if grep -qiE '(^|[^a-z])(warning|error)(:|\[)' build.log; then touch $(RS_ROOTS); echo "modules: the build printed warnings (see build.log)"; exit 1; fi
	@echo "modules: built rmr/rmr.ko brmr/brmr.ko without warnings"

# Both modules against any kernel tree built with Rust and RTRS, given as KDIR=...: what
# dkms.conf runs. Needs neither the cached kernel nor `make deps`, and does not fail on warnings
# (another kernel's config may bring some; `make modules` is the warning gate).
ifneq ($(filter modules-kdir,$(MAKECMDGOALS)),)
ifneq ($(origin KDIR),command line)
$(error modules-kdir: give the kernel tree as KDIR=DIR)
endif
endif
modules-kdir: rtrs-sys/rtrs_generated.rs .rs-srcs
	+@$(KMAKE) modules

clippy: kernel rtrs-sys/rtrs_generated.rs .rs-srcs
	@$(KMAKE) CLIPPY=1 modules 2>&1 | tee clippy.log | grep -v '^  \(RUSTC\|CC\|LD\|MODPOST\|BTF\|CLIPPY\)' ; \
	  rc=$${PIPESTATUS[0]}; [ $$rc = 0 ] || exit $$rc; \
	  if grep -qiE '(^|[^a-z])(warning|error)(:|\[)' clippy.log; then touch $(RS_ROOTS); echo "clippy: kernel crates have lints (see clippy.log)"; exit 1; fi
	@$(HOST_CARGO) clippy -q --workspace --all-targets -- -D warnings
	@echo "clippy: clean"

test:
	@$(HOST_CARGO) test -q --workspace --release

# The admin CLI, also put in every guest's /bin by tests/vm/run (which builds it itself).
rmrctl:
	@$(HOST_CARGO) build --release -q -p rmrctl

vm: modules rmrctl
	@$(TOP)/tests/vm/run

check:
	@$(TOP)/scripts/check.sh

demo: modules rmrctl
	@VM_VERBOSE=1 $(TOP)/tests/vm/run $(TOP)/tests/vm/demo.sh

# The demo, then a prompt on the running cluster (tests/vm/lib/demo_shell.sh; `help` there).
demo-shell: modules rmrctl
	@DEMO_SHELL=1 VM_INTERACTIVE=1 $(TOP)/tests/vm/run $(TOP)/tests/vm/demo.sh

fmt:
	@$(HOST_CARGO) fmt --all

clean:
	-@$(KMAKE) clean
	rm -f rtrs-sys/rtrs_generated.rs build.log clippy.log .rs-srcs .rtrs-kdir
