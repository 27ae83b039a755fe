// SPDX-License-Identifier: GPL-2.0-or-later
//! rmrctl: status of rmr/brmr objects from sysfs.
fn main() {}
