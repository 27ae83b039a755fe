// SPDX-License-Identifier: GPL-2.0-or-later
/* Thin C helpers of the transport and the workers (see transport.rs). */
#include <linux/module.h>
