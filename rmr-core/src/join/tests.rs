// SPDX-License-Identifier: GPL-2.0-or-later
use super::super::client::LegState::*;
use super::super::dirtymap::vecstore::VecStorage;
use super::super::consts::RMR_PROTO_VERSION;
use super::super::wire::{CmdType, RspBody};
use super::*;

const CHUNK: u32 = 4096;
/// 100 chunks of 4 KiB.
const SECTORS: u64 = 800;

fn params(mode: JoinMode) -> JoinParams {
    JoinParams { mode, chunk_size: CHUNK, queue_depth: 16, name: PoolName::new(b"p0").unwrap(), group_id: 7 }
}

fn joined(member_id: u32, mapped_size: u64) -> CmdRsp<'static> {
    CmdRsp::ok(CmdType::JoinPool, RspBody::Join { member_id, version: RMR_PROTO_VERSION, mapped_size })
}

fn ok(ty: CmdType) -> CmdRsp<'static> {
    CmdRsp { ty, errno: 0, body: RspBody::Empty }
}

fn err(ty: CmdType, errno: i32) -> CmdRsp<'static> {
    CmdRsp { ty, errno, body: RspBody::Empty }
}

type Maps = MapSet<VecStorage>;

/// A create join of `member` that no peer refuses; returns its slot.
fn create(p: &mut ClientPool, maps: &mut Maps, member: u32) -> usize {
    let mut r = JoinRun::new(p, params(JoinMode::Create)).unwrap();
    assert!(!r.freezes_io(), "a create join never freezes IO");
    let _ = r.start(p);
    let mut st = r.on_reply(p, maps, &joined(member, SECTORS), 5);
    loop {
        match st {
            JoinStep::Send { cmd: Cmd::PoolInfo { .. }, .. } => st = r.on_reply(p, maps, &ok(CmdType::PoolInfo), 5),
            JoinStep::Done(Ok(s)) => return s,
            s => panic!("unexpected {s:?}"),
        }
    }
}

#[test]
fn first_create_makes_md_and_clean_map() {
    let (mut p, mut maps) = (ClientPool::new(false, 0), Maps::new());
    let mut r = JoinRun::new(&p, params(JoinMode::Create)).unwrap();
    match r.start(&p) {
        JoinStep::SendNew(Cmd::JoinPool(b)) => {
            assert_eq!((b.chunk_size, b.queue_depth, b.create, b.sync), (CHUNK, 16, true, false));
            assert!(b.members.is_empty());
        }
        s => panic!("unexpected {s:?}"),
    }
    let a = match r.on_reply(&mut p, &mut maps, &joined(11, SECTORS), 5) {
        JoinStep::Done(Ok(s)) => s,
        s => panic!("unexpected {s:?}"),
    };
    assert_eq!(p.leg(a).unwrap().state, Created);
    assert_eq!((p.mapped_size, p.total_chunks), (SECTORS, 100));
    let md = p.md.unwrap();
    assert_eq!((md.group_id, md.chunk_size, md.mapped_size), (7, CHUNK, SECTORS));
    assert!(md.members().contains(11));
    assert!(maps.get(11).unwrap().is_empty());
    assert!(!r.wants_try_enable());
}

#[test]
fn create_next_to_normal_leg_is_dirty_and_informs_peers() {
    let (mut p, mut maps) = (ClientPool::new(false, 0), Maps::new());
    let a = create(&mut p, &mut maps, 11);
    p.set_state(a, Normal).unwrap();
    let mut r = JoinRun::new(&p, params(JoinMode::Create)).unwrap();
    match r.start(&p) {
        JoinStep::SendNew(Cmd::JoinPool(b)) => assert_eq!(b.members.as_slice(), &[11]),
        s => panic!("unexpected {s:?}"),
    }
    let st = r.on_reply(&mut p, &mut maps, &joined(12, SECTORS), 9);
    assert_eq!(st, JoinStep::Send { slot: a, cmd: Cmd::PoolInfo { member_id: 12, op: InfoOp::AddCreate, dirty: true } });
    assert_eq!(maps.get(12).unwrap().count(), 100, "§6.2 step 4: the client's own map is fully dirty too");
    // A peer that refuses the new member's map cannot serve IO for it.
    let b = match r.on_reply(&mut p, &mut maps, &err(CmdType::PoolInfo, -5), 9) {
        JoinStep::Done(Ok(s)) => s,
        s => panic!("unexpected {s:?}"),
    };
    assert_eq!(p.leg(a).unwrap().state, Failed);
    assert_eq!(r.failed_peers(), 1 << a);
    assert_eq!(p.leg(b).unwrap().state, Created);
}

#[test]
fn mapped_size_mismatch_is_refused_and_left() {
    let (mut p, mut maps) = (ClientPool::new(false, 0), Maps::new());
    create(&mut p, &mut maps, 11);
    let before = (p.md, p.mapped_size, p.legs().count());
    let mut r = JoinRun::new(&p, params(JoinMode::Create)).unwrap();
    let _ = r.start(&p);
    assert_eq!(
        r.on_reply(&mut p, &mut maps, &joined(12, SECTORS + 8), 5),
        JoinStep::SendNew(Cmd::LeavePool { delete: false })
    );
    assert_eq!(r.on_reply(&mut p, &mut maps, &ok(CmdType::LeavePool), 5), JoinStep::Done(Err(Error::Inval)));
    assert_eq!((p.md, p.mapped_size, p.legs().count()), before);
    assert!(maps.get(12).is_none());
}

#[test]
fn refused_join_sends_nothing_more() {
    let (mut p, mut maps) = (ClientPool::new(false, 0), Maps::new());
    let mut r = JoinRun::new(&p, params(JoinMode::Create)).unwrap();
    let _ = r.start(&p);
    assert_eq!(r.on_reply(&mut p, &mut maps, &err(CmdType::JoinPool, -16), 5), JoinStep::Done(Err(Error::Busy)));
    assert_eq!(p.legs().count(), 0);
    assert_eq!(p.mapped_size, 0);
}

#[test]
fn duplicate_of_normal_leg_reenables_it() {
    let (mut p, mut maps) = (ClientPool::new(false, 0), Maps::new());
    let a = create(&mut p, &mut maps, 11);
    p.set_state(a, Normal).unwrap();
    let mut r = JoinRun::new(&p, params(JoinMode::Assemble)).unwrap();
    assert!(r.freezes_io(), "an assemble join next to a NORMAL leg runs with IO frozen");
    let _ = r.start(&p);
    assert_eq!(
        r.on_reply(&mut p, &mut maps, &joined(11, SECTORS), 5),
        JoinStep::SendNew(Cmd::LeavePool { delete: false })
    );
    assert_eq!(
        r.on_reply(&mut p, &mut maps, &ok(CmdType::LeavePool), 5),
        JoinStep::Send { slot: a, cmd: Cmd::EnablePool { enable: true } }
    );
    assert_eq!(r.on_reply(&mut p, &mut maps, &err(CmdType::EnablePool, -110), 5), JoinStep::Done(Err(Error::Exist)));
    assert!(r.dup_enable_failed());
    assert_eq!(p.legs().count(), 1);
    assert_eq!(p.leg(a).unwrap().state, Normal);
}

#[test]
fn duplicate_of_non_normal_leg_is_left() {
    let (mut p, mut maps) = (ClientPool::new(false, 0), Maps::new());
    let a = create(&mut p, &mut maps, 11);
    p.fail_leg(a);
    let mut r = JoinRun::new(&p, params(JoinMode::Assemble)).unwrap();
    let _ = r.start(&p);
    assert_eq!(
        r.on_reply(&mut p, &mut maps, &joined(11, SECTORS), 5),
        JoinStep::SendNew(Cmd::LeavePool { delete: false })
    );
    assert_eq!(r.on_reply(&mut p, &mut maps, &ok(CmdType::LeavePool), 5), JoinStep::Done(Err(Error::Exist)));
    assert_eq!(p.leg(a).unwrap().state, Failed);
}

fn md_of(members: &[u32], map_ver: u64) -> PoolMd {
    let mut md = PoolMd { name: PoolName::new(b"p0").unwrap(), group_id: 7, chunk_size: CHUNK, mapped_size: SECTORS, queue_depth: 16, map_ver, srv_md: [SrvMd::default(); 4] };
    for m in members {
        md.add_member(*m).unwrap();
    }
    md
}

#[test]
fn assemble_adopts_then_merges_md() {
    let (mut p, mut maps) = (ClientPool::new(false, 0), Maps::new());
    let mut r = JoinRun::new(&p, params(JoinMode::Assemble)).unwrap();
    assert!(!r.freezes_io());
    let _ = r.start(&p);
    assert_eq!(r.on_reply(&mut p, &mut maps, &joined(11, SECTORS), 5), JoinStep::SendNew(Cmd::MdSend));
    let md = md_of(&[11, 12], 3);
    let a = match r.on_reply(&mut p, &mut maps, &CmdRsp::ok(CmdType::MdSend, RspBody::Md(md)), 5) {
        JoinStep::Done(Ok(s)) => s,
        s => panic!("unexpected {s:?}"),
    };
    assert!(r.wants_try_enable());
    assert_eq!(p.leg(a).unwrap().state, Reconnecting);
    assert_eq!(p.map_ver(), 3);
    assert!(maps.get(11).is_some() && maps.get(12).is_some());
    // The second member: POOL_INFO(ADD, ASSEMBLE) to the first; a newer map_ver and a
    // member the first md did not list are taken.
    let mut r = JoinRun::new(&p, params(JoinMode::Assemble)).unwrap();
    match r.start(&p) {
        JoinStep::SendNew(Cmd::JoinPool(b)) => assert_eq!(b.members.as_slice(), &[11, 12]),
        s => panic!("unexpected {s:?}"),
    }
    assert_eq!(r.on_reply(&mut p, &mut maps, &joined(12, SECTORS), 5), JoinStep::SendNew(Cmd::MdSend));
    let md = md_of(&[11, 12, 13], 4);
    assert_eq!(
        r.on_reply(&mut p, &mut maps, &CmdRsp::ok(CmdType::MdSend, RspBody::Md(md)), 5),
        JoinStep::Send { slot: a, cmd: Cmd::PoolInfo { member_id: 12, op: InfoOp::AddAssemble, dirty: false } }
    );
    // A refused ADD+ASSEMBLE does not fail the peer (it lacks the entry; try-enable decides).
    let b = match r.on_reply(&mut p, &mut maps, &err(CmdType::PoolInfo, -2), 5) {
        JoinStep::Done(Ok(s)) => s,
        s => panic!("unexpected {s:?}"),
    };
    assert_eq!(p.leg(a).unwrap().state, Reconnecting);
    assert_eq!(p.leg(b).unwrap().state, Reconnecting);
    assert_eq!(p.map_ver(), 4);
    assert!(p.md.unwrap().members().contains(13));
    assert!(maps.get(13).is_some());
}

#[test]
fn failed_md_send_undoes_the_join() {
    let (mut p, mut maps) = (ClientPool::new(false, 0), Maps::new());
    let a = create(&mut p, &mut maps, 11);
    p.fail_leg(a);
    let before = (p.md, p.legs().count());
    let mut r = JoinRun::new(&p, params(JoinMode::Assemble)).unwrap();
    let _ = r.start(&p);
    assert_eq!(r.on_reply(&mut p, &mut maps, &joined(12, SECTORS), 5), JoinStep::SendNew(Cmd::MdSend));
    assert!(r.slot().is_some());
    assert_eq!(
        r.on_reply(&mut p, &mut maps, &err(CmdType::MdSend, -5), 5),
        JoinStep::SendNew(Cmd::LeavePool { delete: false })
    );
    assert_eq!(r.on_reply(&mut p, &mut maps, &err(CmdType::LeavePool, -104), 5), JoinStep::Done(Err(Error::Io)));
    assert_eq!((p.md, p.legs().count()), before, "the undone join leaves pool_md and the legs as they were");
    assert!(r.slot().is_none());
}

#[test]
fn peer_failed_meanwhile_is_skipped() {
    let (mut p, mut maps) = (ClientPool::new(false, 0), Maps::new());
    let a = create(&mut p, &mut maps, 11);
    let b = create(&mut p, &mut maps, 12);
    let mut r = JoinRun::new(&p, params(JoinMode::Create)).unwrap();
    let _ = r.start(&p);
    let st = r.on_reply(&mut p, &mut maps, &joined(13, SECTORS), 5);
    assert_eq!(st, JoinStep::Send { slot: a, cmd: Cmd::PoolInfo { member_id: 13, op: InfoOp::AddCreate, dirty: false } });
    p.fail_leg(b);
    assert!(matches!(r.on_reply(&mut p, &mut maps, &ok(CmdType::PoolInfo), 5), JoinStep::Done(Ok(_))));
    assert_eq!(r.failed_peers(), 0);
}

#[test]
fn sync_join_goes_normal_without_maps() {
    let (mut p, mut maps) = (ClientPool::new(true, 0), Maps::new());
    assert_eq!(JoinRun::new(&p, params(JoinMode::Create)).err(), Some(Error::Inval));
    let mut r = JoinRun::new(&p, params(JoinMode::Sync)).unwrap();
    match r.start(&p) {
        JoinStep::SendNew(Cmd::JoinPool(b)) => assert!(b.sync && !b.create),
        s => panic!("unexpected {s:?}"),
    }
    let a = match r.on_reply(&mut p, &mut maps, &joined(21, SECTORS), 5) {
        JoinStep::Done(Ok(s)) => s,
        s => panic!("unexpected {s:?}"),
    };
    assert_eq!(p.leg(a).unwrap().state, Normal);
    assert!(maps.get(21).is_none());
    assert_eq!(p.mapped_size, 0, "a sync pool has no size of its own");
}
