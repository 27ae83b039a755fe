#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The test VMs' RTRS client: the test kernel's rtrs-client with the fixes in
# scripts/patches/rtrs_client-*.patch (scripts/patched-module.sh); rtrs-core and rtrs-server
# stay the kernel's. Prints the module's path.
exec "$(dirname "$0")/patched-module.sh" rtrs_client drivers/infiniband/ulp/rtrs rtrs-client.ko \
	CONFIG_INFINIBAND_RTRS= CONFIG_INFINIBAND_RTRS_SERVER= CONFIG_INFINIBAND_RTRS_CLIENT=m
