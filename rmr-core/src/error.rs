// SPDX-License-Identifier: GPL-2.0-or-later
//! The error type of the core; every variant maps to a kernel errno.

use super::errno::Errno;

/// An error returned by a core function. `errno()` gives the negative kernel errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// -EINVAL: invalid argument, illegal transition.
    Inval,
    /// -EPROTO: malformed message.
    Proto,
    /// -ERANGE: a value out of its range (chunk, member, page index).
    Range,
    /// -ENOMEM: map storage could not provide a page.
    NoMem,
    /// -EPERM: operation not permitted in this state.
    Perm,
    /// -EBUSY: busy (e.g. pool CREATED, lock held).
    Busy,
    /// -ENODEV: no store registered.
    NoDev,
    /// -ENOENT: unknown pool, member or entry.
    NoEnt,
    /// -EEXIST: already exists.
    Exist,
    /// -EIO: IO failed or no leg could serve it.
    Io,
    /// -EAGAIN: try another peer.
    Again,
    /// -ENOSPC: no free slot.
    NoSpc,
    /// -EOPNOTSUPP: not supported (e.g. replace).
    NotSupp,
    /// -EMSGSIZE: the caller's buffer is too small.
    MsgSize,
    /// -ESTALE: a control command older than one its session already ran.
    Stale,
}

impl Error {
    /// The errno of this error; the numbers live in [`Errno`] only.
    pub const fn to_errno(self) -> Errno {
        match self {
            Error::Perm => Errno::EPERM,
            Error::NoEnt => Errno::ENOENT,
            Error::Io => Errno::EIO,
            Error::Again => Errno::EAGAIN,
            Error::NoMem => Errno::ENOMEM,
            Error::Busy => Errno::EBUSY,
            Error::Exist => Errno::EEXIST,
            Error::NoDev => Errno::ENODEV,
            Error::Inval => Errno::EINVAL,
            Error::NoSpc => Errno::ENOSPC,
            Error::Range => Errno::ERANGE,
            Error::Proto => Errno::EPROTO,
            Error::MsgSize => Errno::EMSGSIZE,
            Error::NotSupp => Errno::EOPNOTSUPP,
            Error::Stale => Errno::ESTALE,
        }
    }

    /// The negative errno of this error, as the kernel returns it.
    pub fn errno(self) -> i32 {
        self.to_errno().to_kernel()
    }

    /// The error for a negative errno received on the wire; unknown values become `Io`.
    pub fn from_errno(e: i32) -> Error {
        match Errno::from_raw(e.saturating_neg()) {
            Some(Errno::EPERM) => Error::Perm,
            Some(Errno::ENOENT) => Error::NoEnt,
            Some(Errno::EAGAIN) => Error::Again,
            Some(Errno::ENOMEM) => Error::NoMem,
            Some(Errno::EBUSY) => Error::Busy,
            Some(Errno::EEXIST) => Error::Exist,
            Some(Errno::ENODEV) => Error::NoDev,
            Some(Errno::EINVAL) => Error::Inval,
            Some(Errno::ENOSPC) => Error::NoSpc,
            Some(Errno::ERANGE) => Error::Range,
            Some(Errno::EPROTO) => Error::Proto,
            Some(Errno::EMSGSIZE) => Error::MsgSize,
            Some(Errno::EOPNOTSUPP) => Error::NotSupp,
            Some(Errno::ESTALE) => Error::Stale,
            // Transport errors count as IO errors of the leg.
            Some(_) | None => Error::Io,
        }
    }
}

/// Result type of the core.
pub type Result<T> = core::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_round_trip() {
        for e in [
            Error::Perm,
            Error::NoEnt,
            Error::Io,
            Error::Again,
            Error::NoMem,
            Error::Busy,
            Error::Exist,
            Error::NoDev,
            Error::Inval,
            Error::NoSpc,
            Error::Range,
            Error::Proto,
            Error::MsgSize,
            Error::NotSupp,
        ] {
            assert_eq!(Error::from_errno(e.errno()), e);
        }
        assert_eq!(Error::Inval.errno(), -22);
        assert_eq!(Error::MsgSize.errno(), -90);
        assert_eq!(Error::from_errno(-9999), Error::Io);
        assert_eq!(Error::from_errno(i32::MIN), Error::Io);
    }
}
