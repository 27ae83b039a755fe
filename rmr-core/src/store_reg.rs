// SPDX-License-Identifier: GPL-2.0-or-later
//! Store registration and the admin checks around it (SPEC §2.3, §2.5, §4.3, §9.3): which
//! server-pool state a register/unregister leads to, when `leave_pool` is allowed, and how
//! `create_store`/`add_store` judge what they found on the disk.

use super::errno::Errno;
use super::ondisk::{MdError, Superblock};
use super::params::StoreMode;

/// Server pool states of SPEC §4.3, as `pools/<p>/state` prints them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SrvPoolState {
    /// Joined by the admin, no store.
    Empty,
    /// A store is registered; no client session yet.
    Registered,
    /// A create-mode client session joined; waits for enable.
    Created,
    /// Serving IO.
    Normal,
    /// Sessions joined but IO not allowed (recovery pending).
    NoIo,
}

impl SrvPoolState {
    /// The sysfs name.
    pub const fn name(self) -> &'static str {
        match self {
            SrvPoolState::Empty => "empty",
            SrvPoolState::Registered => "registered",
            SrvPoolState::Created => "created",
            SrvPoolState::Normal => "normal",
            SrvPoolState::NoIo => "no_io",
        }
    }

    /// Stable number used across the C ABI.
    pub const fn to_raw(self) -> u32 {
        self as u32
    }

    /// Inverse of [`SrvPoolState::to_raw`].
    pub const fn from_raw(v: u32) -> Option<SrvPoolState> {
        Some(match v {
            0 => SrvPoolState::Empty,
            1 => SrvPoolState::Registered,
            2 => SrvPoolState::Created,
            3 => SrvPoolState::Normal,
            4 => SrvPoolState::NoIo,
            _ => return None,
        })
    }
}

/// Registration mode (`rmr_srv_register` mode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegMode {
    /// `RMR_SRV_DISK_CREATE`: a fresh store.
    Create,
    /// `RMR_SRV_DISK_ADD`: a store with this pool's metadata.
    Add,
    /// `RMR_SRV_DISK_REPLACE`: disabled.
    Replace,
}

impl RegMode {
    /// Stable number used across the C ABI.
    pub const fn to_raw(self) -> u32 {
        self as u32
    }

    /// Inverse of [`RegMode::to_raw`].
    pub const fn from_raw(v: u32) -> Option<RegMode> {
        Some(match v {
            0 => RegMode::Create,
            1 => RegMode::Add,
            2 => RegMode::Replace,
            _ => return None,
        })
    }
}

/// The server pool facts registration decisions depend on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SrvPoolView {
    /// Current state.
    pub state: SrvPoolState,
    /// A store is registered.
    pub has_store: bool,
    /// Number of joined sessions (sync and non-sync).
    pub sessions: u32,
}

/// Outcome of an accepted registration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegOutcome {
    /// The pool's new state.
    pub state: SrvPoolState,
    /// `marked_create`: the next non-sync join must be a create join.
    pub marked_create: bool,
}

/// `rmr_srv_register(mode)`: SPEC §4.3 rows from EMPTY, and ADD onto a NO_IO pool whose
/// store went away while sessions stayed joined.
pub fn register(v: SrvPoolView, mode: RegMode) -> Result<RegOutcome, Errno> {
    if v.has_store {
        return Err(Errno::EBUSY);
    }
    match (v.state, mode) {
        (_, RegMode::Replace) => Err(Errno::EOPNOTSUPP),
        (SrvPoolState::Empty, RegMode::Create) => Ok(RegOutcome {
            state: SrvPoolState::Registered,
            marked_create: true,
        }),
        (SrvPoolState::Empty, RegMode::Add) => Ok(RegOutcome {
            state: SrvPoolState::Registered,
            marked_create: false,
        }),
        (SrvPoolState::NoIo, RegMode::Add) if v.sessions > 0 => Ok(RegOutcome {
            state: SrvPoolState::NoIo,
            marked_create: false,
        }),
        _ => Err(Errno::EBUSY),
    }
}

/// `rmr_srv_unregister(delete)`: the state after the store goes. Deleting a store needs the
/// pool to have no session (SPEC §2.5 `delete_store`).
pub fn unregister(v: SrvPoolView, delete: bool) -> Result<SrvPoolState, Errno> {
    if !v.has_store {
        return Err(Errno::ENOENT);
    }
    if delete && v.sessions > 0 {
        return Err(Errno::EBUSY);
    }
    Ok(match v.state {
        SrvPoolState::Registered | SrvPoolState::Empty => SrvPoolState::Empty,
        // Sessions still joined: IO on those legs fails from now on.
        SrvPoolState::Created | SrvPoolState::Normal | SrvPoolState::NoIo => {
            if v.sessions > 0 {
                SrvPoolState::NoIo
            } else {
                SrvPoolState::Empty
            }
        }
    })
}

/// Server `leave_pool`: -EBUSY while a store is registered or a session is joined.
pub fn srv_can_leave(v: SrvPoolView) -> Result<(), Errno> {
    if v.has_store || v.sessions > 0 {
        Err(Errno::EBUSY)
    } else {
        Ok(())
    }
}

/// Why a store command refused the disk it opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreRefusal {
    /// `create_store` on a disk that carries metadata.
    HasMetadata,
    /// `add_store` on a disk without metadata.
    NoMetadata,
    /// `add_store` on a disk whose metadata cannot be trusted.
    CorruptMetadata,
    /// Metadata of a newer format.
    NewerFormat(u32),
    /// `add_store` metadata names another pool.
    PoolMismatch,
    /// `add_store` metadata has another `mapped_size`.
    SizeMismatch,
    /// `add_store` metadata belongs to another member of the pool.
    MemberMismatch,
    /// `mapped_size` does not fit the device.
    TooLarge,
}

impl StoreRefusal {
    /// The errno of SPEC §2.5.
    pub const fn errno(self) -> Errno {
        match self {
            StoreRefusal::HasMetadata => Errno::EEXIST,
            _ => Errno::EINVAL,
        }
    }

    /// For the log line.
    pub const fn what(self) -> &'static str {
        match self {
            StoreRefusal::HasMetadata => "device carries rmr metadata (use add_store)",
            StoreRefusal::NoMetadata => "device carries no rmr metadata (use create_store)",
            StoreRefusal::CorruptMetadata => "device metadata is corrupt",
            StoreRefusal::NewerFormat(_) => "device metadata has a newer format version",
            StoreRefusal::PoolMismatch => "device metadata belongs to another pool",
            StoreRefusal::SizeMismatch => "mapped_size differs from the device metadata",
            StoreRefusal::MemberMismatch => "device metadata belongs to another member_id",
            StoreRefusal::TooLarge => "mapped_size does not fit the device behind the metadata area",
        }
    }
}

/// Judges what `create_store` (mode Create) or `add_store` found on the disk.
/// `md` is the result of reading both superblock copies; `member_id` is the server pool's.
/// Returns the superblock to continue from for an add.
pub fn check_disk(
    mode: StoreMode,
    md: Result<Superblock, MdError>,
    pool: &[u8],
    mapped_size: u64,
    member_id: u32,
) -> Result<Option<Superblock>, StoreRefusal> {
    match mode {
        StoreMode::Create => match md {
            Err(MdError::Blank) => Ok(None),
            // Anything carrying our magic is recognisable metadata, even if damaged.
            _ => Err(StoreRefusal::HasMetadata),
        },
        StoreMode::Add | StoreMode::Replace => {
            let sb = match md {
                Ok(sb) => sb,
                Err(MdError::Blank) => return Err(StoreRefusal::NoMetadata),
                Err(MdError::Corrupt) => return Err(StoreRefusal::CorruptMetadata),
                Err(MdError::UnsupportedVersion(v)) => return Err(StoreRefusal::NewerFormat(v)),
            };
            if sb.pool_name() != pool {
                return Err(StoreRefusal::PoolMismatch);
            }
            if sb.mapped_size != mapped_size {
                return Err(StoreRefusal::SizeMismatch);
            }
            if sb.pool_md.own_member_id != 0 && sb.pool_md.own_member_id != member_id {
                return Err(StoreRefusal::MemberMismatch);
            }
            Ok(Some(sb))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::ondisk::Layout;
    use super::*;

    fn view(state: SrvPoolState, has_store: bool, sessions: u32) -> SrvPoolView {
        SrvPoolView {
            state,
            has_store,
            sessions,
        }
    }

    #[test]
    fn register_rows() {
        use SrvPoolState::*;
        assert_eq!(
            register(view(Empty, false, 0), RegMode::Create),
            Ok(RegOutcome {
                state: Registered,
                marked_create: true
            })
        );
        assert!(!register(view(Empty, false, 0), RegMode::Add).unwrap().marked_create);
        assert_eq!(register(view(Registered, true, 0), RegMode::Add), Err(Errno::EBUSY));
        assert_eq!(register(view(Normal, false, 1), RegMode::Create), Err(Errno::EBUSY));
        assert_eq!(register(view(NoIo, false, 1), RegMode::Add).unwrap().state, NoIo);
        assert_eq!(register(view(NoIo, false, 1), RegMode::Create), Err(Errno::EBUSY));
        assert_eq!(register(view(Empty, false, 0), RegMode::Replace), Err(Errno::EOPNOTSUPP));
    }

    #[test]
    fn unregister_rows() {
        use SrvPoolState::*;
        assert_eq!(unregister(view(Registered, true, 0), false), Ok(Empty));
        assert_eq!(unregister(view(Registered, true, 0), true), Ok(Empty));
        assert_eq!(unregister(view(Normal, true, 2), false), Ok(NoIo));
        assert_eq!(unregister(view(Normal, true, 2), true), Err(Errno::EBUSY));
        assert_eq!(unregister(view(Empty, false, 0), false), Err(Errno::ENOENT));
        assert_eq!(srv_can_leave(view(Registered, true, 0)), Err(Errno::EBUSY));
        assert_eq!(srv_can_leave(view(NoIo, false, 1)), Err(Errno::EBUSY));
        assert_eq!(srv_can_leave(view(Empty, false, 0)), Ok(()));
    }

    #[test]
    fn disk_checks() {
        let l = Layout::new(262144, 204800).unwrap();
        let mut sb = Superblock::new(b"p", 1, 204800, 512, l).unwrap();
        sb.pool_md.own_member_id = 42;
        assert_eq!(check_disk(StoreMode::Create, Err(MdError::Blank), b"p", 204800, 42), Ok(None));
        assert_eq!(
            check_disk(StoreMode::Create, Ok(sb), b"p", 204800, 42),
            Err(StoreRefusal::HasMetadata)
        );
        assert_eq!(
            check_disk(StoreMode::Create, Err(MdError::Corrupt), b"p", 204800, 42),
            Err(StoreRefusal::HasMetadata)
        );
        assert_eq!(StoreRefusal::HasMetadata.errno(), Errno::EEXIST);
        assert_eq!(check_disk(StoreMode::Add, Ok(sb), b"p", 204800, 42), Ok(Some(sb)));
        assert_eq!(
            check_disk(StoreMode::Add, Err(MdError::Blank), b"p", 204800, 42),
            Err(StoreRefusal::NoMetadata)
        );
        assert_eq!(
            check_disk(StoreMode::Add, Ok(sb), b"q", 204800, 42),
            Err(StoreRefusal::PoolMismatch)
        );
        assert_eq!(
            check_disk(StoreMode::Add, Ok(sb), b"p", 204801, 42),
            Err(StoreRefusal::SizeMismatch)
        );
        assert_eq!(
            check_disk(StoreMode::Add, Ok(sb), b"p", 204800, 43),
            Err(StoreRefusal::MemberMismatch)
        );
        assert_eq!(StoreRefusal::NoMetadata.errno(), Errno::EINVAL);
    }

    #[test]
    fn raw_round_trips() {
        for s in [
            SrvPoolState::Empty,
            SrvPoolState::Registered,
            SrvPoolState::Created,
            SrvPoolState::Normal,
            SrvPoolState::NoIo,
        ] {
            assert_eq!(SrvPoolState::from_raw(s.to_raw()), Some(s));
        }
        assert_eq!(SrvPoolState::from_raw(9), None);
        assert_eq!(RegMode::from_raw(RegMode::Add.to_raw()), Some(RegMode::Add));
        assert_eq!(RegMode::from_raw(7), None);
    }
}
