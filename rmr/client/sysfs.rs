// SPDX-License-Identifier: GPL-2.0-or-later
//! sysfs attributes of client pools and their sessions (legs).

#![deny(unsafe_code)]

use super::*;

pub(crate) fn show(id: u64, attr: &[u8], _w: &mut PageWriter<'_>) -> Result {
    let _ = (id, attr);
    Err(EINVAL)
}

pub(crate) fn store(id: u64, attr: &[u8], input: &[u8]) -> Result {
    match attr {
        b"leave_pool" => leave_pool(id, input),
        b"add_sess" => add_sess(id, input),
        b"pool_enable" => pool_enable(id, input),
        _ => Err(EINVAL),
    }
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
