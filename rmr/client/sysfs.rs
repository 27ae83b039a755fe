// SPDX-License-Identifier: GPL-2.0-or-later
//! sysfs attributes of client pools and their sessions (legs).

#![deny(unsafe_code)]

use super::*;

/// `pools/<p>/*` reads: `sync`, `chunk_size`, `queue_depth` as given to `join_pool`, and
/// `map_summary`, the client's dirty map per member in the server's format.
pub(crate) fn show(id: u64, attr: &[u8], w: &mut PageWriter<'_>) -> Result {
    let pool = {
        let st = state().ok_or(ENODEV)?;
        by_id(&st, id)
    }
    .ok_or(ENODEV)?;
    match attr {
        b"sync" => writeln!(w, "{}", if pool.sync { "y" } else { "n" }).map_err(|_| EINVAL),
        b"chunk_size" => writeln!(w, "{}", pool.chunk_size).map_err(|_| EINVAL),
        b"queue_depth" => writeln!(w, "{}", pool.queue_depth).map_err(|_| EINVAL),
        b"read_policy" => writeln!(w, "{}", pool.lock().core.read_policy.name()).map_err(|_| EINVAL),
        b"map_summary" => {
            let mut buf = KVec::<u8>::from_elem(0u8, kernel::page::PAGE_SIZE, GFP_KERNEL)?;
            let n = pool.lock().maps.render_summary(&mut buf);
            let text = core::str::from_utf8(buf.get(..n).unwrap_or(&[])).map_err(|_| EINVAL)?;
            w.write_str(text).map_err(|_| EINVAL)
        }
        _ => Err(EINVAL),
    }
}

pub(crate) fn store(id: u64, attr: &[u8], input: &[u8]) -> Result {
    match attr {
        b"leave_pool" => leave_pool(id, input),
        b"add_sess" => add_sess(id, input),
        b"pool_enable" => pool_enable(id, input),
        b"read_policy" => read_policy(id, input),
        _ => Err(EINVAL),
    }
}

/// `read_policy`: `round-robin` or `least-pending` (the default); reads already sent stay on
/// their legs.
fn read_policy(id: u64, input: &[u8]) -> Result {
    let pool = {
        let st = state().ok_or(ENODEV)?;
        by_id(&st, id)
    }
    .ok_or(ENODEV)?;
    let Ok(p) = ReadPolicy::parse(input) else {
        pr_err!("client pool {}: read_policy: expected round-robin or least-pending (EINVAL)\n", pool.name.as_str());
        return Err(EINVAL);
    };
    let old = core::mem::replace(&mut pool.lock().core.read_policy, p);
    if old != p {
        pr_info!("client pool {}: read_policy {} -> {}\n", pool.name.as_str(), old.name(), p.name());
    }
    Ok(())
}

pub(crate) fn sess_show(id: u64, attr: &[u8], w: &mut PageWriter<'_>) -> Result {
    let (pool, slot) = {
        let st = state().ok_or(ENODEV)?;
        leg_by_id(&st, id)
    }
    .ok_or(ENODEV)?;
    let c = pool.lock();
    let l = c.core.leg(slot).ok_or(ENODEV)?;
    let (st, maint, member) = (l.state, l.maintenance, l.member_id);
    drop(c);
    match attr {
        b"state" => {
            writeln!(w, "{}", st.name()).map_err(|_| EINVAL)?;
            if maint {
                writeln!(w, "Maintenance mode: 1").map_err(|_| EINVAL)?;
            }
            Ok(())
        }
        b"member_id" => writeln!(w, "{}", member).map_err(|_| EINVAL),
        _ => Err(EINVAL),
    }
}

pub(crate) fn sess_store(id: u64, attr: &[u8], input: &[u8]) -> Result {
    let (pool, slot) = {
        let st = state().ok_or(ENODEV)?;
        leg_by_id(&st, id)
    }
    .ok_or(ENODEV)?;
    match attr {
        b"enable" => enable(&pool, slot, input),
        b"del_sess" => del_sess(&pool, slot, input),
        b"reconnect" => reconnect(&pool, slot, input),
        _ => Err(EINVAL),
    }
}
