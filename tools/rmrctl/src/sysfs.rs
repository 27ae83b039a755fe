// SPDX-License-Identifier: GPL-2.0-or-later
//! Access to the rmr and brmr sysfs classes below a root (`/sys` or a test tree).
//!
//! Reading never fails: a missing or unreadable attribute is `None`. Writing reports the
//! stage that failed (open or write) with the `io::Error`, so callers can tell a missing
//! object from a refusal by the kernel.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The four classes rmr.ko and brmr.ko register.
pub const RMR_CLIENT: &str = "rmr-client";
/// rmr.ko's server class.
pub const RMR_SERVER: &str = "rmr-server";
/// brmr.ko's client class.
pub const BRMR_CLIENT: &str = "brmr-client";
/// brmr.ko's server class.
pub const BRMR_SERVER: &str = "brmr-server";

/// Largest attribute we read: sysfs pages are 4 KiB; leave room for bigger pages.
const READ_MAX: u64 = 64 * 1024;

/// A sysfs root: `<root>/class/<class>/...`.
#[derive(Clone, Debug)]
pub struct Sysfs {
    root: PathBuf,
}

/// Which step of a write failed.
#[derive(Debug)]
pub enum WriteError {
    /// The attribute could not be opened (missing object, not a file, permission).
    Open(io::Error),
    /// The kernel refused the written value.
    Write(io::Error),
    /// The kernel accepted fewer bytes than written.
    Short(usize, usize),
}

impl Sysfs {
    /// A root directory such as `/sys`.
    pub fn new(root: impl Into<PathBuf>) -> Sysfs {
        Sysfs { root: root.into() }
    }

    /// The root as given.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/class/<class>`.
    pub fn class(&self, class: &str) -> PathBuf {
        self.root.join("class").join(class)
    }

    /// `<root>/class/<class>/<rel>`.
    pub fn path(&self, class: &str, rel: &str) -> PathBuf {
        self.class(class).join(rel)
    }
}

/// True if `p` exists (following symlinks, as sysfs class links are followed).
pub fn exists(p: &Path) -> bool {
    p.exists()
}

/// The text of an attribute, or `None` if it is missing, unreadable or refuses the read.
/// Invalid UTF-8 is replaced, never fatal.
pub fn read(p: &Path) -> Option<String> {
    use std::io::Read;
    let f = fs::File::open(p).ok()?;
    if !f.metadata().ok()?.is_file() {
        return None;
    }
    let mut buf = Vec::new();
    f.take(READ_MAX).read_to_end(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf).into_owned())
}

/// Names of the object directories in `dir`, sorted naturally (`brmr2` before `brmr10`).
/// Symlinks (`subsystem`, `device`) and files (`uevent`) are skipped. `None` if `dir` is
/// missing or unreadable.
pub fn subdirs(dir: &Path) -> Option<Vec<String>> {
    let rd = fs::read_dir(dir).ok()?;
    let mut out: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    out.sort_by(|a, b| natural_cmp(a, b));
    Some(out)
}

/// Orders names by their text, comparing runs of digits as numbers.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let nx = x.iter().take_while(|c| c.is_ascii_digit()).count();
                let ny = y.iter().take_while(|c| c.is_ascii_digit()).count();
                let (dx, dy) = (trim_zeros(&x[..nx]), trim_zeros(&y[..ny]));
                let o = dx.len().cmp(&dy.len()).then(dx.cmp(dy));
                if o != std::cmp::Ordering::Equal {
                    return o;
                }
                x = &x[nx..];
                y = &y[ny..];
            }
            (Some(c), Some(d)) => {
                if c != d {
                    return c.cmp(d);
                }
                x = &x[1..];
                y = &y[1..];
            }
        }
    }
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let n = d.iter().take_while(|c| **c == b'0').count();
    &d[n.min(d.len().saturating_sub(1))..]
}

/// Writes `content` to the attribute `p` in one `write(2)`, as `echo content >p` does
/// (open for writing with truncation, never creating the file).
pub fn write(p: &Path, content: &str) -> Result<(), WriteError> {
    let mut f = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(p)
        .map_err(WriteError::Open)?;
    let n = f.write(content.as_bytes()).map_err(WriteError::Write)?;
    if n != content.len() {
        return Err(WriteError::Short(n, content.len()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering;

    #[test]
    fn natural_order() {
        assert_eq!(natural_cmp("brmr2", "brmr10"), Ordering::Less);
        assert_eq!(natural_cmp("brmr10", "brmr2"), Ordering::Greater);
        assert_eq!(natural_cmp("a", "a"), Ordering::Equal);
        assert_eq!(natural_cmp("a", "ab"), Ordering::Less);
        assert_eq!(natural_cmp("pool007", "pool7"), Ordering::Equal);
        assert_eq!(natural_cmp("p0", "p00"), Ordering::Equal);
        assert_eq!(natural_cmp("x9y", "x10a"), Ordering::Less);
    }

    #[test]
    fn missing_is_none() {
        assert_eq!(read(Path::new("/nonexistent/rmrctl/attr")), None);
        assert_eq!(subdirs(Path::new("/nonexistent/rmrctl")), None);
        // A directory is not an attribute.
        assert_eq!(read(Path::new("/")), None);
    }
}
