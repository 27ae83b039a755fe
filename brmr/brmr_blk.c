// SPDX-License-Identifier: GPL-2.0-or-later
/* Thin C helpers (see the Rust side for their users). */
#include <linux/module.h>
