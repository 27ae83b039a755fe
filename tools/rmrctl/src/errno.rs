// SPDX-License-Identifier: GPL-2.0-or-later
//! Linux errno names and one-line meanings, for reporting a refused sysfs write.

/// `(value, name, generic meaning)` of the errnos a sysfs write or open can return here.
const TABLE: &[(i32, &str, &str)] = &[
    (
        1,
        "EPERM",
        "operation not permitted in the object's current state",
    ),
    (2, "ENOENT", "no such object"),
    (4, "EINTR", "interrupted by a signal"),
    (5, "EIO", "input/output error"),
    (6, "ENXIO", "no such device or address"),
    (7, "E2BIG", "argument list too long"),
    (9, "EBADF", "bad file descriptor"),
    (11, "EAGAIN", "resource temporarily unavailable, try again"),
    (12, "ENOMEM", "out of memory"),
    (13, "EACCES", "permission denied (run as root?)"),
    (14, "EFAULT", "bad address"),
    (16, "EBUSY", "the object is busy"),
    (17, "EEXIST", "the object already exists"),
    (19, "ENODEV", "no such device"),
    (20, "ENOTDIR", "a path component is not a directory"),
    (21, "EISDIR", "is a directory, not an attribute file"),
    (
        22,
        "EINVAL",
        "invalid argument (see the kernel log for the offending key)",
    ),
    (
        28,
        "ENOSPC",
        "no space left (a table or slot limit was reached)",
    ),
    (30, "EROFS", "read-only file system"),
    (34, "ERANGE", "result out of range"),
    (
        61,
        "ENODATA",
        "no data (the node cannot serve this chunk yet)",
    ),
    (
        71,
        "EPROTO",
        "protocol error (malformed or unexpected message)",
    ),
    (74, "EBADMSG", "bad message (checksum or magic mismatch)"),
    (90, "EMSGSIZE", "message too long"),
    (95, "EOPNOTSUPP", "operation not supported"),
    (98, "EADDRINUSE", "address already in use"),
    (101, "ENETUNREACH", "network unreachable"),
    (
        103,
        "ECONNABORTED",
        "connection aborted (transport closing)",
    ),
    (104, "ECONNRESET", "connection reset by the peer"),
    (107, "ENOTCONN", "the transport is not connected"),
    (110, "ETIMEDOUT", "timed out waiting for the peer"),
    (
        111,
        "ECONNREFUSED",
        "connection refused (is rmr loaded and the pool joined on the peer?)",
    ),
    (113, "EHOSTUNREACH", "no route to the host"),
    (
        116,
        "ESTALE",
        "stale command (a newer one from the same session already ran)",
    ),
    (524, "ENOTSUPP", "operation not supported"),
];

/// The symbolic name of `errno`, e.g. `EBUSY`, or `errno N` for a value not in the table.
pub fn name(errno: i32) -> String {
    match TABLE.iter().find(|e| e.0 == errno) {
        Some(e) => e.1.to_string(),
        None => format!("errno {errno}"),
    }
}

/// The generic one-line meaning of `errno`.
pub fn meaning(errno: i32) -> &'static str {
    TABLE
        .iter()
        .find(|e| e.0 == errno)
        .map_or("unknown error", |e| e.2)
}

/// The errno of an I/O error, if it carries one.
pub fn of(e: &std::io::Error) -> Option<i32> {
    e.raw_os_error()
}

/// `EBUSY (16): <meaning>`, with `specific` taking precedence over the generic meaning.
pub fn describe(errno: i32, specific: Option<&str>) -> String {
    format!(
        "{} ({}): {}",
        name(errno),
        errno,
        specific.unwrap_or_else(|| meaning(errno))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_and_unknown() {
        assert_eq!(name(17), "EEXIST");
        assert_eq!(name(9999), "errno 9999");
        assert_eq!(meaning(9999), "unknown error");
        assert_eq!(describe(16, None), "EBUSY (16): the object is busy");
        assert_eq!(describe(17, Some("x")), "EEXIST (17): x");
    }

    #[test]
    fn table_is_consistent_with_the_core() {
        // Every errno the protocol core can return has a name here, and the same one.
        for v in 1..200 {
            if let Some(e) = rmr_core::errno::Errno::from_raw(v) {
                assert_eq!(name(v), e.name(), "errno {v}");
            }
        }
    }
}
