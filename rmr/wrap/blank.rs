// SPDX-License-Identifier: GPL-2.0-or-later
//! A blank core server pool, built in its heap allocation: the structure (~30 KiB) is too
//! large for a kernel stack, and rmr-core (host code) cannot use the kernel's in-place initialisers.

use crate::kmap::KMapStorage;
use crate::rmr_core::server::ServerPool;
use kernel::prelude::*;

type CorePool = ServerPool<KMapStorage>;

/// The source of every new pool's bytes; never mutated or dropped.
static BLANK: CorePool = CorePool::BLANK;

/// A new blank core server pool on the heap.
pub(crate) fn blank_server_pool() -> Result<KBox<CorePool>> {
    let mut core = KBox::<CorePool>::new_uninit(GFP_KERNEL)?;
    // SAFETY: `BLANK` owns no heap memory (no maps, no staging, no spares: every `MapSet` and
    // storage in it is empty), so a bitwise copy is an independent valid value; the static
    // is never mutated or dropped.
    unsafe { core::ptr::copy_nonoverlapping(&BLANK as *const CorePool, core.as_mut_ptr(), 1) };
    // SAFETY: fully initialised by the copy above.
    Ok(unsafe { core.assume_init() })
}
