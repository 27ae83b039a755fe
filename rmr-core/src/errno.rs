// SPDX-License-Identifier: GPL-2.0-or-later
//! Linux errno values the core reports. The core returns [`Errno`]; the kernel shells hand
//! `-(errno as i32)` to the VFS, RTRS or block layer unchanged.

/// An errno the protocol can produce, with its Linux value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Errno {
    /// Operation not permitted.
    EPERM = 1,
    /// No such file or directory (unknown pool, store, session).
    ENOENT = 2,
    /// I/O error.
    EIO = 5,
    /// Resource temporarily unavailable.
    EAGAIN = 11,
    /// Out of memory.
    ENOMEM = 12,
    /// Device or resource busy.
    EBUSY = 16,
    /// Object exists.
    EEXIST = 17,
    /// No such device.
    ENODEV = 19,
    /// Invalid argument.
    EINVAL = 22,
    /// No space left (e.g. all leg slots used).
    ENOSPC = 28,
    /// Result out of range.
    ERANGE = 34,
    /// No data available: a storage node's copy of a chunk is stale and no peer could provide
    /// it (its on-demand sync found no source); the client tries another leg.
    ENODATA = 61,
    /// Protocol error (malformed or unexpected message).
    EPROTO = 71,
    /// Stale: a control command older than one the session already ran (the sender gave up
    /// on it and moved on); it is not executed.
    ESTALE = 116,
    /// Message too long (a caller's buffer is too small).
    EMSGSIZE = 90,
    /// Bad message (checksum or magic mismatch).
    EBADMSG = 74,
    /// Operation not supported.
    EOPNOTSUPP = 95,
    /// Interrupted by a signal.
    EINTR = 4,
    /// Network unreachable.
    ENETUNREACH = 101,
    /// Connection aborted (transport closing).
    ECONNABORTED = 103,
    /// Connection reset.
    ECONNRESET = 104,
    /// Transport not connected.
    ENOTCONN = 107,
    /// Timed out.
    ETIMEDOUT = 110,
    /// Connection refused.
    ECONNREFUSED = 111,
    /// Host unreachable.
    EHOSTUNREACH = 113,
}

impl Errno {
    /// The negative value kernel functions return.
    pub const fn to_kernel(self) -> i32 {
        -(self as i32)
    }

    /// The symbolic name, for log lines.
    pub const fn name(self) -> &'static str {
        match self {
            Errno::EPERM => "EPERM",
            Errno::ENOENT => "ENOENT",
            Errno::EIO => "EIO",
            Errno::EAGAIN => "EAGAIN",
            Errno::ENOMEM => "ENOMEM",
            Errno::EBUSY => "EBUSY",
            Errno::EEXIST => "EEXIST",
            Errno::ENODEV => "ENODEV",
            Errno::EINVAL => "EINVAL",
            Errno::ENOSPC => "ENOSPC",
            Errno::ERANGE => "ERANGE",
            Errno::ENODATA => "ENODATA",
            Errno::EPROTO => "EPROTO",
            Errno::ESTALE => "ESTALE",
            Errno::EMSGSIZE => "EMSGSIZE",
            Errno::EBADMSG => "EBADMSG",
            Errno::EOPNOTSUPP => "EOPNOTSUPP",
            Errno::EINTR => "EINTR",
            Errno::ENETUNREACH => "ENETUNREACH",
            Errno::ECONNABORTED => "ECONNABORTED",
            Errno::ECONNRESET => "ECONNRESET",
            Errno::ENOTCONN => "ENOTCONN",
            Errno::ETIMEDOUT => "ETIMEDOUT",
            Errno::ECONNREFUSED => "ECONNREFUSED",
            Errno::EHOSTUNREACH => "EHOSTUNREACH",
        }
    }

    /// Maps a positive Linux errno back, for errors that travel in replies.
    pub const fn from_raw(v: i32) -> Option<Errno> {
        Some(match v {
            1 => Errno::EPERM,
            2 => Errno::ENOENT,
            5 => Errno::EIO,
            11 => Errno::EAGAIN,
            12 => Errno::ENOMEM,
            16 => Errno::EBUSY,
            17 => Errno::EEXIST,
            19 => Errno::ENODEV,
            22 => Errno::EINVAL,
            28 => Errno::ENOSPC,
            34 => Errno::ERANGE,
            61 => Errno::ENODATA,
            71 => Errno::EPROTO,
            116 => Errno::ESTALE,
            90 => Errno::EMSGSIZE,
            74 => Errno::EBADMSG,
            95 => Errno::EOPNOTSUPP,
            4 => Errno::EINTR,
            101 => Errno::ENETUNREACH,
            103 => Errno::ECONNABORTED,
            104 => Errno::ECONNRESET,
            107 => Errno::ENOTCONN,
            110 => Errno::ETIMEDOUT,
            111 => Errno::ECONNREFUSED,
            113 => Errno::EHOSTUNREACH,
            _ => return None,
        })
    }

    /// Maps a negative kernel return value; unknown values become `EIO`.
    pub const fn from_kernel(v: i32) -> Errno {
        match Errno::from_raw(v.wrapping_neg()) {
            Some(e) => e,
            None => Errno::EIO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for e in [Errno::EPERM, Errno::EINVAL, Errno::EOPNOTSUPP, Errno::EBADMSG, Errno::ENODATA] {
            assert_eq!(Errno::from_raw(e as i32), Some(e));
            assert_eq!(e.to_kernel(), -(e as i32));
        }
        assert_eq!(Errno::from_raw(9999), None);
        assert_eq!(Errno::from_kernel(-110), Errno::ETIMEDOUT);
        assert_eq!(Errno::from_kernel(-9999), Errno::EIO);
    }
}
