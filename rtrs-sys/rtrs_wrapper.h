/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The RTRS API as bindgen sees it: drivers/infiniband/ulp/rtrs/rtrs.h is not under include/. */
#include <linux/scatterlist.h>
#include <linux/uio.h>
#include "rtrs.h"
