// SPDX-License-Identifier: GPL-2.0-or-later
//! brmr verbs: stores and mapped devices.

use super::*;
use crate::model;
use crate::sysfs::BRMR_CLIENT;

fn store_cmd(t: &str, p: &Parsed, fs: &Sysfs, add: bool) -> Result<Plan, Usage> {
    let pool = name(t, "pool name", &cli::positional(t, p, &["pool"])?[0])?;
    let dev = required(t, p, "device")?;
    let size = required(t, p, "mapped-size")?;
    let mut content = format!("device={dev} pool={pool} mapped_size={size}");
    if let Some(m) = p.val("mode") {
        content.push_str(&format!(" mode={m}"));
    }
    check(t, params::store_cmd(content.as_bytes(), add))?;
    let attr = if add {
        "ctl/add_store"
    } else {
        "ctl/create_store"
    };
    let mut meanings = vec![
        (
            2,
            "no server pool of that name (rmrctl pool join POOL --member-id ID), or no such device",
        ),
        (
            16,
            "the server pool is not empty or already has a store, or the device is claimed",
        ),
        (
            22,
            "mapped_size is 0 or larger than the device minus the metadata area",
        ),
    ];
    if add {
        meanings[2] = (
            22,
            "the device's metadata does not match the pool name, mapped_size or member id",
        );
        meanings.push((95, "mode=replace is not supported yet"));
    } else {
        meanings.push((
            17,
            "the device carries rmr metadata: use rmrctl store add (or wipe it deliberately)",
        ));
    }
    Ok(Plan {
        what: format!("{t} {pool}"),
        writes: write(fs.path(BRMR_SERVER, attr), content),
        objects: vec![class_obj(fs, BRMR_SERVER, "brmr.ko")],
        meanings,
        ..Plan::default()
    })
}

pub(super) fn store_create(t: &str, p: &Parsed, fs: &Sysfs) -> Result<Plan, Usage> {
    store_cmd(t, p, fs, false)
}

pub(super) fn store_add(t: &str, p: &Parsed, fs: &Sysfs) -> Result<Plan, Usage> {
    store_cmd(t, p, fs, true)
}

fn store_trigger(t: &str, p: &Parsed, fs: &Sysfs, attr: &str) -> Result<Plan, Usage> {
    let pool = name(t, "pool name", &cli::positional(t, p, &["pool"])?[0])?;
    Ok(Plan {
        what: format!("{t} {pool}"),
        writes: write(fs.path(BRMR_SERVER, &format!("stores/{pool}/{attr}")), "1"),
        objects: store_objs(fs, pool),
        meanings: vec![(
            16,
            "sessions are joined to the server pool: remove the legs first",
        )],
        ..Plan::default()
    })
}

pub(super) fn store_remove(t: &str, p: &Parsed, fs: &Sysfs) -> Result<Plan, Usage> {
    store_trigger(t, p, fs, "remove_store")
}

pub(super) fn store_delete(t: &str, p: &Parsed, fs: &Sysfs) -> Result<Plan, Usage> {
    store_trigger(t, p, fs, "delete_store")
}

pub(super) fn device_map(t: &str, p: &Parsed, fs: &Sysfs) -> Result<Plan, Usage> {
    let pool = name(t, "pool name", &cli::positional(t, p, &["pool"])?[0])?;
    let content = format!("pool={pool} size={}", required(t, p, "size")?);
    check(t, params::map_device(content.as_bytes()))?;
    Ok(Plan {
        what: format!("device map {pool}"),
        writes: write(fs.path(BRMR_CLIENT, "ctl/map_device"), content),
        objects: vec![class_obj(fs, BRMR_CLIENT, "brmr.ko")],
        meanings: vec![
            (2, "no client pool of that name on this host"),
            (22, "a sync pool, a size other than the stores' mapped_size, mixed mapped and unmapped stores, or store parameters that disagree"),
            (16, "the pool is already mapped or in use, or recovery is running: try again"),
            (5, "first-time map with a failed or missing leg, or no store answered"),
        ],
        new_device_in: Some(fs.path(BRMR_CLIENT, "ctl/devices")),
        ..Plan::default()
    })
}

/// `brmrN` from `brmrN` or `/dev/brmrN`.
fn device_name(v: &str) -> Option<&str> {
    let n = v.strip_prefix("/dev/").unwrap_or(v);
    let digits = n.strip_prefix("brmr")?;
    (!digits.is_empty() && digits.len() <= 10 && digits.bytes().all(|c| c.is_ascii_digit()))
        .then_some(n)
}

pub(super) fn device_unmap(t: &str, p: &Parsed, fs: &Sysfs) -> Result<Plan, Usage> {
    let arg = &cli::positional(t, p, &["device"])?[0];
    let devs = fs.path(BRMR_CLIENT, "ctl/devices");
    let dev = match device_name(arg) {
        Some(d) => d.to_string(),
        None => {
            // A pool name: the device that maps it, if rmrctl can tell.
            let pool = name(t, "device or pool name", arg)?;
            let st = model::collect(fs);
            match st
                .devices
                .iter()
                .find(|d| d.pool.as_ref().is_some_and(|p| p.0 == pool))
            {
                Some(d) => d.name.clone(),
                None => {
                    return Err(Usage::new(
                        t,
                        format!("'{arg}' is neither brmrN nor a pool mapped by a device here"),
                    ))
                }
            }
        }
    };
    Ok(Plan {
        what: format!("device unmap {dev}"),
        writes: write(devs.join(&dev).join("unmap_device"), "1"),
        objects: vec![
            class_obj(fs, BRMR_CLIENT, "brmr.ko"),
            (devs.join(&dev), format!("no mapped device {dev}")),
        ],
        meanings: vec![(
            16,
            "the block device is open (mounted, or used by a process)",
        )],
        ..Plan::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names() {
        assert_eq!(device_name("brmr0"), Some("brmr0"));
        assert_eq!(device_name("/dev/brmr12"), Some("brmr12"));
        assert_eq!(device_name("brmr"), None);
        assert_eq!(device_name("brmr1x"), None);
        assert_eq!(device_name("sda"), None);
    }
}
