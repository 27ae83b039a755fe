// SPDX-License-Identifier: GPL-2.0-or-later
//! The error type of the core; every variant maps to a kernel errno.

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
}

impl Error {
    /// The negative errno of this error, as the kernel returns it.
    pub fn errno(self) -> i32 {
        match self {
            Error::Perm => -1,
            Error::NoEnt => -2,
            Error::Io => -5,
            Error::Again => -11,
            Error::NoMem => -12,
            Error::Busy => -16,
            Error::Exist => -17,
            Error::NoDev => -19,
            Error::Inval => -22,
            Error::NoSpc => -28,
            Error::Range => -34,
            Error::Proto => -71,
            Error::MsgSize => -90,
            Error::NotSupp => -95,
        }
    }

    /// The error for a negative errno received on the wire; unknown values become `Io`.
    pub fn from_errno(e: i32) -> Error {
        match e {
            -1 => Error::Perm,
            -2 => Error::NoEnt,
            -11 => Error::Again,
            -12 => Error::NoMem,
            -16 => Error::Busy,
            -17 => Error::Exist,
            -19 => Error::NoDev,
            -22 => Error::Inval,
            -28 => Error::NoSpc,
            -34 => Error::Range,
            -71 => Error::Proto,
            -90 => Error::MsgSize,
            -95 => Error::NotSupp,
            _ => Error::Io,
        }
    }
}

/// Result type of the core.
pub type Result<T> = core::result::Result<T, Error>;
