// SPDX-License-Identifier: GPL-2.0-or-later
//! rmr verbs: client and server pools, legs, sync.

use super::*;
use crate::exec::Wait;
use crate::sysfs;

pub(super) fn pool_join(t: &str, p: &Parsed, fs: &Sysfs) -> Result<Plan, Usage> {
    let pool = name(t, "pool name", &cli::positional(t, p, &["pool"])?[0])?;
    let server = p.has("member-id");
    if server && (p.has("chunk-size") || p.has("sync") || p.has("queue-depth")) {
        return Err(Usage::new(
            t,
            "--member-id (server pool) cannot be combined with the client pool options",
        ));
    }
    if server {
        let id = required(t, p, "member-id")?;
        let content = format!("poolname={pool} member_id={id}");
        check(t, params::server_join_pool(content.as_bytes()))?;
        return Ok(Plan {
            what: format!("pool join {pool} (server)"),
            writes: write(fs.path(RMR_SERVER, "ctl/join_pool"), content),
            objects: vec![class_obj(fs, RMR_SERVER, "rmr.ko")],
            meanings: vec![
                (
                    17,
                    "a server pool with this name (or its group_id) already exists",
                ),
                (28, "no free server pool slot"),
                (98, "rmr's RTRS server port 1235 is in use"),
            ],
            ..Plan::default()
        });
    }
    let cs = p.val("chunk-size").ok_or_else(|| {
        Usage::new(
            t,
            "give --chunk-size BYTES (client pool) or --member-id ID (server pool)",
        )
    })?;
    let mut content = format!("poolname={pool} chunk_size={cs}");
    if p.has("sync") {
        content.push_str(" sync=y");
    }
    if let Some(q) = p.val("queue-depth") {
        content.push_str(&format!(" queue_depth={q}"));
    }
    check(t, params::client_join_pool(content.as_bytes()))?;
    Ok(Plan {
        what: format!("pool join {pool}"),
        writes: write(fs.path(RMR_CLIENT, "ctl/join_pool"), content),
        objects: vec![class_obj(fs, RMR_CLIENT, "rmr.ko")],
        meanings: vec![
            (
                17,
                "a client pool with this name (or its group_id) already exists",
            ),
            (28, "no free client pool slot (64 pools)"),
        ],
        ..Plan::default()
    })
}

pub(super) fn pool_leave(t: &str, p: &Parsed, fs: &Sysfs) -> Result<Plan, Usage> {
    let pool = name(t, "pool name", &cli::positional(t, p, &["pool"])?[0])?;
    let clt = fs.path(RMR_CLIENT, &format!("pools/{pool}"));
    let srv = fs.path(RMR_SERVER, &format!("pools/{pool}"));
    let server = match (p.has("client"), p.has("server")) {
        (true, true) => return Err(Usage::new(t, "give --client or --server, not both")),
        (true, false) => false,
        (false, true) => true,
        (false, false) => match (sysfs::exists(&clt), sysfs::exists(&srv)) {
            (true, true) => {
                return Err(Usage::new(
                    t,
                    format!(
                        "both a client and a server pool {pool} exist: say --client or --server"
                    ),
                ))
            }
            (_, s) => s,
        },
    };
    if server {
        return Ok(Plan {
            what: format!("pool leave {pool} (server)"),
            writes: write(srv.join("leave_pool"), "1"),
            objects: srv_pool_objs(fs, pool),
            meanings: vec![(
                16,
                "a store is registered (rmrctl store remove) or sessions are joined",
            )],
            ..Plan::default()
        });
    }
    Ok(Plan {
        what: format!("pool leave {pool}"),
        writes: write(clt.join("leave_pool"), "1"),
        objects: clt_pool_objs(fs, pool),
        meanings: vec![(
            16,
            "the pool still has legs (rmrctl leg remove) or is in use (mapped by brmr, or attached to a server pool)",
        )],
        ..Plan::default()
    })
}

pub(super) fn pool_attach(t: &str, p: &Parsed, fs: &Sysfs) -> Result<Plan, Usage> {
    let pool = name(t, "pool name", &cli::positional(t, p, &["pool"])?[0])?;
    let sync = name(t, "sync pool name", p.val("sync-pool").unwrap_or(pool))?;
    check(t, params::parse_bare_name(sync.as_bytes()))?;
    Ok(Plan {
        what: format!("pool attach {pool}"),
        writes: write(fs.path(RMR_SERVER, &format!("pools/{pool}/add_clt")), sync),
        objects: srv_pool_objs(fs, pool),
        meanings: vec![
            (2, "no client pool of that name on this host (rmrctl pool join NAME --chunk-size ... --sync)"),
            (22, "that client pool is not a sync pool"),
            (17, "a sync pool is already attached"),
        ],
        ..Plan::default()
    })
}

pub(super) fn pool_enable(t: &str, p: &Parsed, fs: &Sysfs) -> Result<Plan, Usage> {
    let pool = name(t, "pool name", &cli::positional(t, p, &["pool"])?[0])?;
    Ok(Plan {
        what: format!("pool enable {pool}"),
        writes: write(
            fs.path(RMR_CLIENT, &format!("pools/{pool}/pool_enable")),
            "1",
        ),
        objects: clt_pool_objs(fs, pool),
        meanings: vec![(1, "a sync pool is never enabled by hand")],
        ..Plan::default()
    })
}

pub(super) fn leg_add(t: &str, p: &Parsed, fs: &Sysfs) -> Result<Plan, Usage> {
    let pos = cli::positional(t, p, &["pool", "leg"])?;
    let pool = name(t, "pool name", &pos[0])?;
    let leg = name(t, "leg (session) name", &pos[1])?;
    let path = ip_path(required(t, p, "path")?);
    let mode = p.val("mode");
    // The pool `sync` attribute, when the module has it, tells whether mode is due.
    let pdir = fs.path(RMR_CLIENT, &format!("pools/{pool}"));
    let sync_pool = sysfs::read(&pdir.join("sync")).and_then(|v| crate::parse::yes_no(&v));
    match (sync_pool, mode) {
        (Some(false), None) => {
            return Err(Usage::new(
                t,
                "--mode create|assemble is required on a non-sync pool",
            ))
        }
        (Some(true), Some(_)) => return Err(Usage::new(t, "--mode is not allowed on a sync pool")),
        _ => {}
    }
    let mut content = format!("sessname={leg} path={path}");
    if let Some(m) = mode {
        content.push_str(&format!(" mode={m}"));
    }
    check(t, params::add_sess(content.as_bytes(), mode.is_none()))?;
    // A leg assembled before the other members' legs exist waits in reconnecting: the pool
    // enables (last-IO update, SPEC §6.6) once every member has one.
    let want: &'static [&'static str] = match mode {
        Some("create") => &["created"],
        Some(_) => &["reconnecting", "normal"],
        None => &["normal"],
    };
    let wait = cli::wait(t, p)?.map(|lim| {
        (
            Wait::Leg {
                dir: leg_dir(fs, pool, leg),
                want,
                maintenance: false,
            },
            lim,
        )
    });
    Ok(Plan {
        what: format!("leg add {pool}/{leg}"),
        writes: write(pdir.join("add_sess"), content),
        objects: clt_pool_objs(fs, pool),
        meanings: vec![
            (17, "a leg with this name already exists, or the storage member already has a leg in this pool"),
            (28, "the pool already has 4 legs"),
            (22, "bad parameters: mode missing on a non-sync pool or given on a sync pool, the session name already used with another path, or the store's mapped_size differs from the pool's"),
            (19, "the storage node's server pool has no store (state empty): create or add the store first"),
            (1, "the storage node refused this join mode: its store was registered the other way (create_store needs --mode create, add_store needs --mode assemble)"),
            (16, "the storage node's server pool is busy (created, waiting for enable, or already joined by a create)"),
            (2, "the storage node has no server pool of this name"),
            (104, "the storage node reset the connection: it may still hold a session of this name from before a crash or link loss, until RTRS times it out (tens of seconds); with --wait rmrctl retries"),
            (111, "the storage node refused the connection: its rmr server is not up (modules not loaded?); with --wait rmrctl retries"),
        ],
        wait,
        retry: vec![104, 111],
        ..Plan::default()
    })
}

fn leg_trigger(
    t: &str,
    p: &Parsed,
    fs: &Sysfs,
    pos: &[String],
    value: &str,
    want: &'static [&'static str],
    maint: bool,
) -> Result<Plan, Usage> {
    let pool = name(t, "pool name", &pos[0])?;
    let leg = name(t, "leg (session) name", &pos[1])?;
    let dir = leg_dir(fs, pool, leg);
    let wait = cli::wait(t, p)?.map(|lim| {
        (
            Wait::Leg {
                dir: dir.clone(),
                want,
                maintenance: maint,
            },
            lim,
        )
    });
    Ok(Plan {
        what: format!("{t} {pool}/{leg}"),
        writes: write(dir.join("enable"), value),
        objects: leg_objs(fs, pool, leg),
        meanings: vec![
            (
                1,
                "the legs of a sync pool are enabled by the kernel, never by hand",
            ),
            (
                16,
                if value == "0" {
                    "a created leg cannot enter maintenance (enable it first), and a removing leg takes no command"
                } else {
                    "the leg is being removed"
                },
            ),
        ],
        wait,
        ..Plan::default()
    })
}

pub(super) fn leg_enable(t: &str, p: &Parsed, fs: &Sysfs) -> Result<Plan, Usage> {
    let pos = cli::positional(t, p, &["pool", "leg"])?;
    leg_trigger(t, p, fs, pos, "1", &["normal"], false)
}

pub(super) fn leg_maintenance(t: &str, p: &Parsed, fs: &Sysfs) -> Result<Plan, Usage> {
    let pos = cli::positional(t, p, &["pool", "leg", "on|off"])?;
    match pos[2].as_str() {
        "on" => leg_trigger(t, p, fs, pos, "0", &[], true),
        "off" => leg_trigger(t, p, fs, pos, "1", &["normal"], false),
        x => Err(Usage::new(t, format!("expected on or off, not '{x}'"))),
    }
}

pub(super) fn leg_remove(t: &str, p: &Parsed, fs: &Sysfs) -> Result<Plan, Usage> {
    let pos = cli::positional(t, p, &["pool", "leg"])?;
    let pool = name(t, "pool name", &pos[0])?;
    let leg = name(t, "leg (session) name", &pos[1])?;
    let content = format!("mode={}", required(t, p, "mode")?);
    check(t, params::del_sess(content.as_bytes()))?;
    let dir = leg_dir(fs, pool, leg);
    let wait = cli::wait(t, p)?.map(|lim| (Wait::Gone { dir: dir.clone() }, lim));
    Ok(Plan {
        what: format!("leg remove {pool}/{leg}"),
        writes: write(dir.join("del_sess"), content),
        objects: leg_objs(fs, pool, leg),
        meanings: vec![
            (110, "the removal halted on a network timeout; the leg stays removing: run the command again to retry"),
            (107, "the removal halted: the transport is down; the leg stays removing: run the command again to retry"),
        ],
        wait,
        ..Plan::default()
    })
}

pub(super) fn leg_reconnect(t: &str, p: &Parsed, fs: &Sysfs) -> Result<Plan, Usage> {
    let pos = cli::positional(t, p, &["pool", "leg"])?;
    let pool = name(t, "pool name", &pos[0])?;
    let leg = name(t, "leg (session) name", &pos[1])?;
    let content = format!("path={}", ip_path(required(t, p, "path")?));
    check(t, params::reconnect(content.as_bytes()))?;
    Ok(Plan {
        what: format!("leg reconnect {pool}/{leg}"),
        writes: write(leg_dir(fs, pool, leg).join("reconnect"), content),
        objects: leg_objs(fs, pool, leg),
        meanings: vec![
            (16, "the transport is connected and the leg is not failed"),
            (22, "the address differs from the session's"),
            (
                107,
                "the transport is still down; RTRS keeps reconnecting, try again later",
            ),
        ],
        ..Plan::default()
    })
}

pub(super) fn sync_start(t: &str, p: &Parsed, fs: &Sysfs) -> Result<Plan, Usage> {
    let pool = name(t, "pool name", &cli::positional(t, p, &["pool"])?[0])?;
    let dir = fs.path(RMR_SERVER, &format!("pools/{pool}"));
    let wait = cli::wait(t, p)?.map(|lim| (Wait::Sync { dir: dir.clone() }, lim));
    Ok(Plan {
        what: format!("sync start {pool}"),
        writes: write(dir.join("sync"), "start"),
        objects: srv_pool_objs(fs, pool),
        meanings: vec![
            (1, "the server pool is not normal"),
            (2, "no sync pool is attached (rmrctl pool attach POOL)"),
            (16, "a sync is already running"),
        ],
        // The node starts its sync by itself when it enters normal with a dirty own map:
        // that run is what the admin asked for.
        already: vec![(16, "a sync is already running (the node starts one by itself when it enters normal with chunks to sync)")],
        wait,
        ..Plan::default()
    })
}

pub(super) fn sync_stop(t: &str, p: &Parsed, fs: &Sysfs) -> Result<Plan, Usage> {
    let pool = name(t, "pool name", &cli::positional(t, p, &["pool"])?[0])?;
    Ok(Plan {
        what: format!("sync stop {pool}"),
        writes: write(fs.path(RMR_SERVER, &format!("pools/{pool}/sync")), "stop"),
        objects: srv_pool_objs(fs, pool),
        ..Plan::default()
    })
}
