// SPDX-License-Identifier: GPL-2.0-or-later
//! Protocol constants (SPEC §2.6 and the wire format of Documentation/wire-format.md).

/// Maximum number of legs (storage members) of one client pool.
pub const RMR_POOL_MAX_SESS: usize = 4;
/// A client map is cleared only if its last set bit is at least this old (SPEC §6.8).
pub const RMR_MAP_CLEAN_DELAY_MS: u64 = 5000;
/// Period of the client recovery worker (map check, store check, metadata send).
pub const RMR_RECOVER_INTERVAL_MS: u64 = 1000;
/// Period of the server map-clear worker.
pub const RMR_SRV_CHECK_MAPS_INTERVAL_MS: u64 = 5000;
/// [improvement] Delay of the writer round that persists `wi` bits cleared by completed
/// flushes (`ServerPool::md_lazy`): soon, so a crash finds few stale suspects, but shared by
/// the flushes of a burst.
pub const RMR_SRV_MD_LAZY_MS: u64 = 100;
/// Largest pool `queue_depth` (number of IO units, `mem_id` < this).
pub const RMR_MAX_QUEUE_DEPTH: usize = 512;
/// Default pool `queue_depth`.
pub const RMR_DEFAULT_QUEUE_DEPTH: u16 = 512;
/// Smallest legal chunk size in bytes.
pub const RMR_MIN_CHUNK_SIZE: u32 = 4096;
/// Largest legal chunk size in bytes.
pub const RMR_MAX_CHUNK_SIZE: u32 = 67_108_864;
/// `map_ver` bit 63: the member's store was replaced, every chunk of it is dirty.
pub const RMR_STORE_IS_REPLACE: u64 = 1 << 63;
/// Mask of the ordering part of `map_ver` (bits 0..62).
pub const RMR_MAP_VER_MASK: u64 = !RMR_STORE_IS_REPLACE;
/// Default and maximum of the `sync_queue_depth` module parameter.
pub const RMR_SYNC_QUEUE_DEPTH_DEFAULT: u16 = 32;

/// Wire magic, first two bytes of every RMR message ("RM" little-endian).
pub const RMR_MAGIC: u16 = 0x4d52;
/// Wire protocol version spoken by this implementation.
pub const RMR_PROTO_VERSION: u16 = 3;
/// Wire magic of BRMR messages ("BR" little-endian).
pub const BRMR_MAGIC: u16 = 0x5242;
/// Longest pool name in bytes (SPEC §2.1).
pub const RMR_NAME_MAX: usize = 63;
