// SPDX-License-Identifier: GPL-2.0-or-later
//! Deterministic simulator for rmr-core (see issue "rmr-core ... simulator").
