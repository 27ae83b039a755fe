#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The test VMs' Soft-RoCE driver: the test kernel's rdma_rxe with the fixes in
# scripts/patches/rdma_rxe-*.patch (scripts/patched-module.sh). Prints the module's path.
exec "$(dirname "$0")/patched-module.sh" rdma_rxe drivers/infiniband/sw/rxe rdma_rxe.ko CONFIG_RDMA_RXE=m
