// SPDX-License-Identifier: GPL-2.0-or-later
//! What rmr and brmr hold on this host, read from sysfs into plain data.
//!
//! Attributes the kernel prints today are read as documented in Documentation/ABI. A few
//! attributes were added to the kernel for rmrctl (Documentation/rmrctl-json.md, "Attributes
//! added for rmrctl"): they are read when present and are `None` with older modules.

use crate::parse::{self, MemberMap, Progress, StatLeg, StatTotal};
use crate::sysfs::{self, Sysfs, BRMR_CLIENT, BRMR_SERVER, RMR_CLIENT, RMR_SERVER};
use std::path::Path;

/// Everything `status` shows.
#[derive(Clone, Debug, Default)]
pub struct Status {
    /// The sysfs root read.
    pub root: String,
    /// Which classes exist (module loaded).
    pub classes: Classes,
    /// rmr-client pools.
    pub client_pools: Vec<ClientPool>,
    /// rmr-server pools.
    pub server_pools: Vec<ServerPool>,
    /// brmr-server stores.
    pub stores: Vec<Store>,
    /// brmr-client mapped devices.
    pub devices: Vec<Device>,
}

/// Presence of each class directory.
#[derive(Clone, Copy, Debug, Default)]
pub struct Classes {
    /// `class/rmr-client` exists.
    pub rmr_client: bool,
    /// `class/rmr-server` exists.
    pub rmr_server: bool,
    /// `class/brmr-client` exists.
    pub brmr_client: bool,
    /// `class/brmr-server` exists.
    pub brmr_server: bool,
}

impl Classes {
    /// True if no class exists: neither module is loaded (or the root is wrong).
    pub fn none(&self) -> bool {
        !(self.rmr_client || self.rmr_server || self.brmr_client || self.brmr_server)
    }
}

/// An rmr client pool (`rmr-client/pools/<p>/`).
#[derive(Clone, Debug, Default)]
pub struct ClientPool {
    /// Pool name.
    pub name: String,
    /// `sync` attribute (newer modules): a sync pool (storage node to storage node).
    pub sync: Option<bool>,
    /// `chunk_size` attribute (newer modules), bytes.
    pub chunk_size: Option<u64>,
    /// `queue_depth` attribute (newer modules).
    pub queue_depth: Option<u64>,
    /// `map_summary` attribute (newer modules): the client's map per member.
    pub maps: Option<Vec<MemberMap>>,
    /// Legs, by name.
    pub legs: Vec<Leg>,
    /// The brmr device mapping this pool, if any.
    pub device: Option<String>,
}

/// A leg (`sessions/<s>/`).
#[derive(Clone, Debug, Default)]
pub struct Leg {
    /// Session name.
    pub name: String,
    /// `state`, first line.
    pub state: Option<String>,
    /// `Maintenance mode: 1` present; `None` if `state` is unreadable.
    pub maintenance: Option<bool>,
    /// `member_id`.
    pub member_id: Option<u32>,
    /// The client's map of this leg's member (from the pool's `map_summary`, newer modules).
    pub dirty: Option<MemberMap>,
    /// Reads and writes of this leg, from the mapping device's `stats`.
    pub io: Option<LegIo>,
}

/// Per-leg IO counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegIo {
    /// Reads served.
    pub reads: u64,
    /// Writes stored.
    pub writes: u64,
}

/// An rmr server pool (`rmr-server/pools/<p>/`).
#[derive(Clone, Debug, Default)]
pub struct ServerPool {
    /// Pool name.
    pub name: String,
    /// `state`, first line.
    pub state: Option<String>,
    /// Maintenance flag; `None` if `state` is unreadable.
    pub maintenance: Option<bool>,
    /// `member_id`.
    pub member_id: Option<u32>,
    /// `sync`: `running` or `stopped`.
    pub sync: Option<String>,
    /// `map_summary`, one entry per member map held.
    pub maps: Option<Vec<MemberMap>>,
    /// `sync_progress` attribute (newer modules).
    pub progress: Option<Progress>,
    /// Resync rate in chunks per second (from `sync_progress`, or measured by `watch`).
    pub rate: Option<f64>,
    /// Seconds left at `rate`.
    pub eta_s: Option<u64>,
}

impl ServerPool {
    /// This node's own map: the chunks this node is missing.
    pub fn own_map(&self) -> Option<&MemberMap> {
        let id = self.member_id?;
        self.maps.as_ref()?.iter().find(|m| m.member_id == id)
    }
}

/// A brmr store (`brmr-server/stores/<p>/`).
#[derive(Clone, Debug, Default)]
pub struct Store {
    /// Pool name.
    pub pool: String,
    /// `state` flags, e.g. `["open", "mapped"]`; `None` if unreadable.
    pub state: Option<Vec<String>>,
    /// `bdev_name`.
    pub device: Option<String>,
    /// `mapped_size`, sectors.
    pub mapped_size: Option<u64>,
    /// `dev_size`, sectors.
    pub dev_size: Option<u64>,
}

/// How a device's pool was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolSource {
    /// The `pool` attribute (newer modules).
    Attribute,
    /// The legs in `stats` are exactly one client pool's legs.
    Inferred,
}

/// A mapped brmr device (`brmr-client/ctl/devices/brmrN/`).
#[derive(Clone, Debug, Default)]
pub struct Device {
    /// `brmrN`.
    pub name: String,
    /// `state` (`ready`).
    pub state: Option<String>,
    /// The pool mapped, and how it was found.
    pub pool: Option<(String, PoolSource)>,
    /// `block/size`, sectors.
    pub size: Option<u64>,
    /// `stats` leg lines; `None` if `stats` is unreadable.
    pub legs: Option<Vec<StatLeg>>,
    /// `stats` totals line.
    pub total: Option<StatTotal>,
}

fn attr(dir: &Path, name: &str) -> Option<String> {
    sysfs::read(&dir.join(name))
}

/// Reads the whole status below `fs`.
pub fn collect(fs: &Sysfs) -> Status {
    let classes = Classes {
        rmr_client: sysfs::exists(&fs.class(RMR_CLIENT)),
        rmr_server: sysfs::exists(&fs.class(RMR_SERVER)),
        brmr_client: sysfs::exists(&fs.class(BRMR_CLIENT)),
        brmr_server: sysfs::exists(&fs.class(BRMR_SERVER)),
    };
    let mut st = Status {
        root: fs.root().display().to_string(),
        classes,
        client_pools: client_pools(fs),
        server_pools: server_pools(fs),
        stores: stores(fs),
        devices: devices(fs),
    };
    link_devices(&mut st);
    st
}

fn client_pools(fs: &Sysfs) -> Vec<ClientPool> {
    let dir = fs.path(RMR_CLIENT, "pools");
    let names = sysfs::subdirs(&dir).unwrap_or_default();
    names
        .into_iter()
        .map(|name| {
            let p = dir.join(&name);
            let maps = attr(&p, "map_summary").map(|t| parse::map_summary(&t));
            let sdir = p.join("sessions");
            let legs = sysfs::subdirs(&sdir)
                .unwrap_or_default()
                .into_iter()
                .map(|s| leg(&sdir.join(&s), s, maps.as_deref()))
                .collect();
            ClientPool {
                sync: attr(&p, "sync").and_then(|t| parse::yes_no(&t)),
                chunk_size: attr(&p, "chunk_size").and_then(|t| parse::num(&t)),
                queue_depth: attr(&p, "queue_depth").and_then(|t| parse::num(&t)),
                name,
                maps,
                legs,
                device: None,
            }
        })
        .collect()
}

fn leg(dir: &Path, name: String, maps: Option<&[MemberMap]>) -> Leg {
    let (state, maintenance) = match attr(dir, "state") {
        Some(t) => {
            let (s, m) = parse::state(&t);
            (s, Some(m))
        }
        None => (None, None),
    };
    let member_id = attr(dir, "member_id").and_then(|t| parse::num_u32(&t));
    let dirty = match (maps, member_id) {
        (Some(maps), Some(id)) => maps.iter().find(|m| m.member_id == id).cloned(),
        _ => None,
    };
    Leg {
        name,
        state,
        maintenance,
        member_id,
        dirty,
        io: None,
    }
}

fn server_pools(fs: &Sysfs) -> Vec<ServerPool> {
    let dir = fs.path(RMR_SERVER, "pools");
    sysfs::subdirs(&dir)
        .unwrap_or_default()
        .into_iter()
        .map(|name| {
            let p = dir.join(&name);
            let (state, maintenance) = match attr(&p, "state") {
                Some(t) => {
                    let (s, m) = parse::state(&t);
                    (s, Some(m))
                }
                None => (None, None),
            };
            let progress = attr(&p, "sync_progress").and_then(|t| parse::progress(&t));
            let (rate, eta_s) = progress.map_or((None, None), rate_of);
            ServerPool {
                name,
                state,
                maintenance,
                member_id: attr(&p, "member_id").and_then(|t| parse::num_u32(&t)),
                sync: attr(&p, "sync").and_then(|t| parse::token(&t)),
                // Never `map`: reading it dumps every map to the kernel log.
                maps: attr(&p, "map_summary").map(|t| parse::map_summary(&t)),
                progress,
                rate,
                eta_s,
            }
        })
        .collect()
}

/// Rate (chunks/s) and ETA (s) from a `sync_progress` that carries the elapsed time.
pub fn rate_of(p: Progress) -> (Option<f64>, Option<u64>) {
    let Some(ms) = p.elapsed_ms.filter(|ms| *ms > 0) else {
        return (None, None);
    };
    let rate = p.done as f64 * 1000.0 / ms as f64;
    (Some(rate), eta(p.total.saturating_sub(p.done), rate))
}

/// Seconds to sync `left` chunks at `rate` chunks/s, if the rate is positive.
pub fn eta(left: u64, rate: f64) -> Option<u64> {
    if left == 0 {
        return Some(0);
    }
    (rate.is_finite() && rate > 0.0).then(|| (left as f64 / rate).ceil() as u64)
}

fn stores(fs: &Sysfs) -> Vec<Store> {
    let dir = fs.path(BRMR_SERVER, "stores");
    sysfs::subdirs(&dir)
        .unwrap_or_default()
        .into_iter()
        .map(|pool| {
            let p = dir.join(&pool);
            Store {
                state: attr(&p, "state").map(|t| parse::flags(&t)),
                device: attr(&p, "bdev_name").and_then(|t| parse::token(&t)),
                mapped_size: attr(&p, "mapped_size").and_then(|t| parse::num(&t)),
                dev_size: attr(&p, "dev_size").and_then(|t| parse::num(&t)),
                pool,
            }
        })
        .collect()
}

fn devices(fs: &Sysfs) -> Vec<Device> {
    let dir = fs.path(BRMR_CLIENT, "ctl/devices");
    sysfs::subdirs(&dir)
        .unwrap_or_default()
        .into_iter()
        .map(|name| {
            let p = dir.join(&name);
            let stats = attr(&p, "stats").map(|t| parse::stats(&t));
            Device {
                state: attr(&p, "state").and_then(|t| parse::token(&t)),
                pool: attr(&p, "pool")
                    .and_then(|t| parse::token(&t))
                    .map(|n| (n, PoolSource::Attribute)),
                size: attr(&p.join("block"), "size").and_then(|t| parse::num(&t)),
                total: stats.as_ref().and_then(|s| s.total),
                legs: stats.map(|s| s.legs),
                name,
            }
        })
        .collect()
}

/// Finds each device's pool (attribute, else inferred from its legs) and hands the per-leg
/// counters of `stats` to that pool's legs.
fn link_devices(st: &mut Status) {
    for d in st.devices.iter_mut() {
        if d.pool.is_none() {
            d.pool = infer_pool(&st.client_pools, d).map(|n| (n, PoolSource::Inferred));
        }
        let Some((pool, _)) = d.pool.as_ref() else {
            continue;
        };
        let Some(cp) = st.client_pools.iter_mut().find(|p| &p.name == pool) else {
            continue;
        };
        cp.device = Some(d.name.clone());
        for l in d.legs.iter().flatten() {
            if let Some(leg) = cp.legs.iter_mut().find(|x| x.name == l.name) {
                leg.io = Some(LegIo {
                    reads: l.reads,
                    writes: l.writes,
                });
            }
        }
    }
}

/// The only client pool whose legs are exactly the legs listed in the device's `stats`.
fn infer_pool(pools: &[ClientPool], d: &Device) -> Option<String> {
    let legs = d.legs.as_ref().filter(|l| !l.is_empty())?;
    let mut want: Vec<&str> = legs.iter().map(|l| l.name.as_str()).collect();
    want.sort_unstable();
    let mut found = pools.iter().filter(|p| {
        let mut have: Vec<&str> = p.legs.iter().map(|l| l.name.as_str()).collect();
        have.sort_unstable();
        have == want
    });
    let first = found.next()?;
    found.next().is_none().then(|| first.name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat_leg(name: &str) -> StatLeg {
        StatLeg {
            name: name.into(),
            member_id: 1,
            state: "normal".into(),
            reads: 0,
            writes: 0,
        }
    }

    fn pool(name: &str, legs: &[&str]) -> ClientPool {
        ClientPool {
            name: name.into(),
            legs: legs
                .iter()
                .map(|l| Leg {
                    name: l.to_string(),
                    ..Leg::default()
                })
                .collect(),
            ..ClientPool::default()
        }
    }

    #[test]
    fn pool_inference_needs_a_unique_match() {
        let d = Device {
            legs: Some(vec![stat_leg("b"), stat_leg("a")]),
            ..Device::default()
        };
        let pools = [pool("p1", &["a", "b"]), pool("p2", &["a"])];
        assert_eq!(infer_pool(&pools, &d), Some("p1".into()));
        let pools = [pool("p1", &["a", "b"]), pool("p2", &["b", "a"])];
        assert_eq!(infer_pool(&pools, &d), None);
        let empty = Device {
            legs: Some(vec![]),
            ..Device::default()
        };
        assert_eq!(infer_pool(&[pool("p", &[])], &empty), None);
    }

    #[test]
    fn rates() {
        let p = Progress {
            done: 100,
            total: 800,
            elapsed_ms: Some(4000),
        };
        assert_eq!(rate_of(p), (Some(25.0), Some(28)));
        let p = Progress {
            elapsed_ms: Some(0),
            ..p
        };
        assert_eq!(rate_of(p), (None, None));
        assert_eq!(eta(0, 0.0), Some(0));
        assert_eq!(eta(10, 0.0), None);
        assert_eq!(eta(10, f64::NAN), None);
    }
}
