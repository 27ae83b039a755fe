// SPDX-License-Identifier: GPL-2.0-or-later
//! The sysfs write grammar of SPEC §2: whitespace-separated `key=value` tokens in any order,
//! one trailing newline ignored. Every parser here is total: bad input returns a
//! [`ParseError`] naming the offending key, never panics.

use super::errno::Errno;

/// Longest accepted object name (pool, session), SPEC §2.1.
pub const NAME_MAX: usize = 63;
/// Longest accepted device path for the store commands.
pub const PATH_MAX: usize = 255;
/// Smallest and largest chunk size in bytes (SPEC §2.2).
pub const CHUNK_SIZE_MIN: u64 = 4096;
/// Largest chunk size in bytes.
pub const CHUNK_SIZE_MAX: u64 = 64 << 20;
/// Largest queue depth of a client pool.
pub const QUEUE_DEPTH_MAX: u32 = 512;

/// Why a write was refused; every variant maps to an errno and names what was wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// A token without `=`, or an input that is not ASCII text.
    Malformed,
    /// A key this command does not know.
    UnknownKey,
    /// A key given twice.
    DuplicateKey(&'static str),
    /// A required key is absent.
    MissingKey(&'static str),
    /// `key=` with nothing after it.
    EmptyValue(&'static str),
    /// The value of this key is not acceptable (number, range, name or enum token).
    BadValue(&'static str),
    /// This key may not be given in this context (e.g. `mode` on a sync pool).
    Forbidden(&'static str),
}

impl ParseError {
    /// All grammar errors are -EINVAL (SPEC §2.1).
    pub const fn errno(self) -> Errno {
        Errno::EINVAL
    }

    /// The key concerned, if any, for the log line.
    pub const fn key(self) -> &'static str {
        match self {
            ParseError::Malformed | ParseError::UnknownKey => "",
            ParseError::DuplicateKey(k)
            | ParseError::MissingKey(k)
            | ParseError::EmptyValue(k)
            | ParseError::BadValue(k)
            | ParseError::Forbidden(k) => k,
        }
    }

    /// A short description of the error class.
    pub const fn what(self) -> &'static str {
        match self {
            ParseError::Malformed => "malformed input",
            ParseError::UnknownKey => "unknown key",
            ParseError::DuplicateKey(_) => "duplicate key",
            ParseError::MissingKey(_) => "missing key",
            ParseError::EmptyValue(_) => "empty value",
            ParseError::BadValue(_) => "invalid value for",
            ParseError::Forbidden(_) => "key not allowed here",
        }
    }
}

impl core::fmt::Display for ParseError {
    /// E.g. `invalid value for member_id (EINVAL)` or `malformed input (EINVAL)`.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let k = self.key();
        if k.is_empty() {
            write!(f, "{} ({})", self.what(), self.errno().name())
        } else {
            write!(f, "{} {} ({})", self.what(), k, self.errno().name())
        }
    }
}

type PResult<T> = Result<T, ParseError>;

/// Strips one trailing newline (as `echo` appends) and rejects non-printable input.
fn body(input: &[u8]) -> PResult<&[u8]> {
    let b = match input.split_last() {
        Some((b'\n', rest)) => rest,
        _ => input,
    };
    if b.iter().any(|c| !(c.is_ascii_graphic() || *c == b' ' || *c == b'\t')) {
        return Err(ParseError::Malformed);
    }
    Ok(b)
}

/// Splits `input` into `key=value` tokens and assigns each value to the slot of its key.
/// `keys[i]` fills `out[i]`. Rejects unknown, duplicate and empty-valued keys.
fn split_kv<'a, const N: usize>(
    input: &'a [u8],
    keys: [&'static str; N],
) -> PResult<[Option<&'a [u8]>; N]> {
    let mut out: [Option<&'a [u8]>; N] = [None; N];
    for tok in body(input)?
        .split(|c| *c == b' ' || *c == b'\t')
        .filter(|t| !t.is_empty())
    {
        let eq = tok
            .iter()
            .position(|c| *c == b'=')
            .ok_or(ParseError::Malformed)?;
        let (k, v) = (&tok[..eq], &tok[eq + 1..]);
        let idx = keys
            .iter()
            .position(|key| key.as_bytes() == k)
            .ok_or(ParseError::UnknownKey)?;
        let key = keys[idx];
        if v.is_empty() {
            return Err(ParseError::EmptyValue(key));
        }
        if out[idx].is_some() {
            return Err(ParseError::DuplicateKey(key));
        }
        out[idx] = Some(v);
    }
    Ok(out)
}

fn required<'a>(v: Option<&'a [u8]>, key: &'static str) -> PResult<&'a [u8]> {
    v.ok_or(ParseError::MissingKey(key))
}

/// Parses a decimal unsigned number without sign, spaces or overflow.
pub fn parse_u64(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 20 {
        return None;
    }
    let mut n: u64 = 0;
    for c in v {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(n)
}

fn num(v: &[u8], key: &'static str) -> PResult<u64> {
    parse_u64(v).ok_or(ParseError::BadValue(key))
}

fn num_u32(v: &[u8], key: &'static str) -> PResult<u32> {
    u32::try_from(num(v, key)?).map_err(|_| ParseError::BadValue(key))
}

/// True if `v` is a valid object name: printable ASCII without whitespace or `/`, 1..=63 bytes.
pub fn valid_name(v: &[u8]) -> bool {
    !v.is_empty()
        && v.len() <= NAME_MAX
        && v.iter().all(|c| c.is_ascii_graphic() && *c != b'/')
        && v != b"."
        && v != b".."
}

fn name<'a>(v: &'a [u8], key: &'static str) -> PResult<&'a [u8]> {
    if valid_name(v) {
        Ok(v)
    } else {
        Err(ParseError::BadValue(key))
    }
}

/// An IPv4 address in network order (`a.b.c.d` → `[a, b, c, d]`).
pub type Ipv4 = [u8; 4];

/// Parses `a.b.c.d` strictly: four decimal octets, no leading zeros beyond "0".
pub fn parse_ipv4(v: &[u8]) -> Option<Ipv4> {
    let mut out = [0u8; 4];
    let mut parts = v.split(|c| *c == b'.');
    for o in out.iter_mut() {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 3 || (p.len() > 1 && p[0] == b'0') {
            return None;
        }
        *o = u8::try_from(parse_u64(p)?).ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(out)
}

/// `path=ip:<IPv4>`: only the IPv4 form is supported (SPEC §1.1).
fn path(v: &[u8]) -> PResult<Ipv4> {
    v.strip_prefix(b"ip:")
        .and_then(parse_ipv4)
        .ok_or(ParseError::BadValue("path"))
}

/// A trigger attribute: exactly `1`, or `0` where `allow_zero`.
pub fn parse_trigger(input: &[u8], allow_zero: bool) -> PResult<bool> {
    match body(input)? {
        b"1" => Ok(true),
        b"0" if allow_zero => Ok(false),
        _ => Err(ParseError::BadValue("trigger (expected 1)")),
    }
}

/// A bare token such as `add_clt`'s pool name or `sync`'s `start`.
pub fn parse_bare_name(input: &[u8]) -> PResult<&[u8]> {
    name(body(input)?, "name")
}

/// rmr-client `ctl/join_pool`.
#[derive(Debug, PartialEq, Eq)]
pub struct ClientJoinPool<'a> {
    /// Pool name.
    pub poolname: &'a [u8],
    /// Chunk size in bytes, a power of two in range.
    pub chunk_size: u32,
    /// A sync pool (storage node to storage node).
    pub sync: bool,
    /// IO units of the pool.
    pub queue_depth: u32,
}

/// Parses rmr-client `ctl/join_pool`: `poolname=<n> chunk_size=<bytes> [sync=y|n] [queue_depth=<q>]`.
pub fn client_join_pool(input: &[u8]) -> PResult<ClientJoinPool<'_>> {
    let [p, c, s, q] = split_kv(input, ["poolname", "chunk_size", "sync", "queue_depth"])?;
    let poolname = name(required(p, "poolname")?, "poolname")?;
    let cs = num(required(c, "chunk_size")?, "chunk_size")?;
    if !cs.is_power_of_two() || !(CHUNK_SIZE_MIN..=CHUNK_SIZE_MAX).contains(&cs) {
        return Err(ParseError::BadValue("chunk_size"));
    }
    let sync = match s {
        None | Some(b"n") => false,
        Some(b"y") => true,
        Some(_) => return Err(ParseError::BadValue("sync")),
    };
    let queue_depth = match q {
        None => QUEUE_DEPTH_MAX,
        Some(v) => {
            let q = num_u32(v, "queue_depth")?;
            if !(1..=QUEUE_DEPTH_MAX).contains(&q) {
                return Err(ParseError::BadValue("queue_depth"));
            }
            q
        }
    };
    Ok(ClientJoinPool {
        poolname,
        chunk_size: cs as u32,
        sync,
        queue_depth,
    })
}

/// How a non-sync leg joins (`add_sess mode=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddMode {
    /// A fresh store, create-registered on the server.
    Create,
    /// Re-assemble a pool whose stores were added with their metadata.
    Assemble,
}

/// rmr-client `pools/<p>/add_sess`.
#[derive(Debug, PartialEq, Eq)]
pub struct AddSess<'a> {
    /// Transport session name.
    pub sessname: &'a [u8],
    /// Storage node address.
    pub addr: Ipv4,
    /// Join mode; `None` for sync pools.
    pub mode: Option<AddMode>,
}

/// Parses `sessname=<s> path=ip:<IPv4> [mode=create|assemble]`; `mode` is required on a
/// non-sync pool and forbidden on a sync pool.
pub fn add_sess(input: &[u8], sync_pool: bool) -> PResult<AddSess<'_>> {
    let [s, p, m] = split_kv(input, ["sessname", "path", "mode"])?;
    let sessname = name(required(s, "sessname")?, "sessname")?;
    let addr = path(required(p, "path")?)?;
    let mode = match (m, sync_pool) {
        (Some(_), true) => return Err(ParseError::Forbidden("mode")),
        (None, true) => None,
        (None, false) => return Err(ParseError::MissingKey("mode")),
        (Some(b"create"), false) => Some(AddMode::Create),
        (Some(b"assemble"), false) => Some(AddMode::Assemble),
        (Some(_), false) => return Err(ParseError::BadValue("mode")),
    };
    Ok(AddSess {
        sessname,
        addr,
        mode,
    })
}

/// Parses `reconnect`: `path=ip:<IPv4>`.
pub fn reconnect(input: &[u8]) -> PResult<Ipv4> {
    let [p] = split_kv(input, ["path"])?;
    path(required(p, "path")?)
}

/// `del_sess mode=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DelMode {
    /// Forget the member: maps and metadata slot are dropped.
    Delete,
    /// Keep the member's map and slot for a later assemble.
    Disassemble,
}

/// Parses `del_sess`: `mode=delete|disassemble`.
pub fn del_sess(input: &[u8]) -> PResult<DelMode> {
    let [m] = split_kv(input, ["mode"])?;
    match required(m, "mode")? {
        b"delete" => Ok(DelMode::Delete),
        b"disassemble" => Ok(DelMode::Disassemble),
        _ => Err(ParseError::BadValue("mode")),
    }
}

/// rmr-server `ctl/join_pool`.
#[derive(Debug, PartialEq, Eq)]
pub struct ServerJoinPool<'a> {
    /// Pool name.
    pub poolname: &'a [u8],
    /// This storage node's member id, non-zero.
    pub member_id: u32,
}

/// Parses rmr-server `ctl/join_pool`: `poolname=<n> member_id=<u32>`.
pub fn server_join_pool(input: &[u8]) -> PResult<ServerJoinPool<'_>> {
    let [p, m] = split_kv(input, ["poolname", "member_id"])?;
    let poolname = name(required(p, "poolname")?, "poolname")?;
    let member_id = num_u32(required(m, "member_id")?, "member_id")?;
    if member_id == 0 {
        return Err(ParseError::BadValue("member_id"));
    }
    Ok(ServerJoinPool {
        poolname,
        member_id,
    })
}

/// rmr-server `sync` command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncCmd {
    /// Start the sync thread.
    Start,
    /// Stop it.
    Stop,
}

/// Parses `sync`: `start` | `stop`.
pub fn sync_cmd(input: &[u8]) -> PResult<SyncCmd> {
    match body(input)? {
        b"start" => Ok(SyncCmd::Start),
        b"stop" => Ok(SyncCmd::Stop),
        _ => Err(ParseError::BadValue("sync")),
    }
}

/// brmr-client `ctl/map_device`.
#[derive(Debug, PartialEq, Eq)]
pub struct MapDevice<'a> {
    /// Pool to map.
    pub pool: &'a [u8],
    /// Size in sectors, non-zero.
    pub size: u64,
}

/// Parses `map_device`: `pool=<n> size=<sectors>`.
pub fn map_device(input: &[u8]) -> PResult<MapDevice<'_>> {
    let [p, s] = split_kv(input, ["pool", "size"])?;
    let pool = name(required(p, "pool")?, "pool")?;
    let size = num(required(s, "size")?, "size")?;
    if size == 0 {
        return Err(ParseError::BadValue("size"));
    }
    Ok(MapDevice { pool, size })
}

/// `add_store mode=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreMode {
    /// `create_store`: a blank disk.
    Create,
    /// `add_store mode=add`: a disk with this pool's metadata.
    Add,
    /// `add_store mode=replace`: not supported yet.
    Replace,
}

/// brmr-server `ctl/create_store` and `ctl/add_store`.
#[derive(Debug, PartialEq, Eq)]
pub struct StoreCmd<'a> {
    /// Path of the backing block device, e.g. `/dev/sda`.
    pub device: &'a [u8],
    /// Pool name.
    pub pool: &'a [u8],
    /// Exported sectors.
    pub mapped_size: u64,
    /// What kind of registration.
    pub mode: StoreMode,
}

/// Parses `device=<path> pool=<n> mapped_size=<sectors>` plus, for `add_store`, `[mode=add|replace]`.
pub fn store_cmd(input: &[u8], add: bool) -> PResult<StoreCmd<'_>> {
    let [d, p, s, m] = split_kv(input, ["device", "pool", "mapped_size", "mode"])?;
    let device = required(d, "device")?;
    if device.len() > PATH_MAX || device.first() != Some(&b'/') {
        return Err(ParseError::BadValue("device"));
    }
    let pool = name(required(p, "pool")?, "pool")?;
    let mapped_size = num(required(s, "mapped_size")?, "mapped_size")?;
    if mapped_size == 0 {
        return Err(ParseError::BadValue("mapped_size"));
    }
    let mode = match (m, add) {
        (None, false) => StoreMode::Create,
        (Some(_), false) => return Err(ParseError::UnknownKey),
        (None, true) | (Some(b"add"), true) => StoreMode::Add,
        (Some(b"replace"), true) => StoreMode::Replace,
        (Some(_), true) => return Err(ParseError::BadValue("mode")),
    };
    Ok(StoreCmd {
        device,
        pool,
        mapped_size,
        mode,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_pool_ok_and_defaults() {
        let j = client_join_pool(b"poolname=ionos_pool chunk_size=131072\n").unwrap();
        assert_eq!(j.poolname, b"ionos_pool");
        assert_eq!(j.chunk_size, 131072);
        assert!(!j.sync);
        assert_eq!(j.queue_depth, 512);
        let j = client_join_pool(b"sync=y  chunk_size=4096\tpoolname=p queue_depth=7").unwrap();
        assert!(j.sync);
        assert_eq!(j.queue_depth, 7);
    }

    #[test]
    fn join_pool_errors() {
        use ParseError::*;
        let e = |s: &[u8]| client_join_pool(s).unwrap_err();
        assert_eq!(e(b"poolname=p"), MissingKey("chunk_size"));
        assert_eq!(e(b"chunk_size=4096"), MissingKey("poolname"));
        assert_eq!(e(b"poolname=p chunk_size=4096 poolname=q"), DuplicateKey("poolname"));
        assert_eq!(e(b"poolname=p chunk_size=4096 colour=red"), UnknownKey);
        assert_eq!(e(b"poolname= chunk_size=4096"), EmptyValue("poolname"));
        assert_eq!(e(b"poolname=p chunk_size=4095"), BadValue("chunk_size"));
        assert_eq!(e(b"poolname=p chunk_size=2048"), BadValue("chunk_size"));
        assert_eq!(e(b"poolname=p chunk_size=134217728"), BadValue("chunk_size"));
        assert_eq!(e(b"poolname=p chunk_size=0x1000"), BadValue("chunk_size"));
        assert_eq!(e(b"poolname=p chunk_size=99999999999999999999999"), BadValue("chunk_size"));
        assert_eq!(e(b"poolname=p chunk_size=4096 sync=yes"), BadValue("sync"));
        assert_eq!(e(b"poolname=p chunk_size=4096 queue_depth=0"), BadValue("queue_depth"));
        assert_eq!(e(b"poolname=p chunk_size=4096 queue_depth=513"), BadValue("queue_depth"));
        assert_eq!(e(b"poolname=a/b chunk_size=4096"), BadValue("poolname"));
        assert_eq!(e(b"poolname=.. chunk_size=4096"), BadValue("poolname"));
        assert_eq!(e(b"garbage"), Malformed);
        assert_eq!(e(b"poolname=p\x01 chunk_size=4096"), Malformed);
        assert_eq!(e(b""), MissingKey("poolname"));
        let long = [b'a'; 64];
        let mut buf = [0u8; 100];
        buf[..9].copy_from_slice(b"poolname=");
        buf[9..73].copy_from_slice(&long);
        buf[73..89].copy_from_slice(b" chunk_size=4096");
        assert_eq!(e(&buf[..89]), BadValue("poolname"));
        assert!(client_join_pool(&[&buf[..72], &buf[73..89]].concat()).is_ok());
    }

    #[test]
    fn add_sess_modes() {
        let a = add_sess(b"sessname=psrv0@stg-rmr0 path=ip:192.168.122.80 mode=create", false).unwrap();
        assert_eq!(a.addr, [192, 168, 122, 80]);
        assert_eq!(a.mode, Some(AddMode::Create));
        assert_eq!(
            add_sess(b"sessname=s path=ip:10.0.0.1", false).unwrap_err(),
            ParseError::MissingKey("mode")
        );
        assert_eq!(
            add_sess(b"sessname=s path=ip:10.0.0.1 mode=create", true).unwrap_err(),
            ParseError::Forbidden("mode")
        );
        assert_eq!(add_sess(b"sessname=s path=ip:10.0.0.1", true).unwrap().mode, None);
        for bad in [
            &b"ip:1.2.3"[..],
            b"ip:1.2.3.4.5",
            b"ip:256.1.1.1",
            b"ip:01.1.1.1",
            b"1.2.3.4",
            b"ip6:::1",
            b"ip:1..2.3",
        ] {
            let mut s = [0u8; 64];
            let pre = b"sessname=s mode=assemble path=";
            s[..pre.len()].copy_from_slice(pre);
            s[pre.len()..pre.len() + bad.len()].copy_from_slice(bad);
            assert_eq!(
                add_sess(&s[..pre.len() + bad.len()], false).unwrap_err(),
                ParseError::BadValue("path")
            );
        }
    }

    #[test]
    fn triggers_and_tokens() {
        assert_eq!(parse_trigger(b"1\n", false), Ok(true));
        assert_eq!(parse_trigger(b"0\n", true), Ok(false));
        assert!(parse_trigger(b"0\n", false).is_err());
        assert!(parse_trigger(b"1\n\n", false).is_err());
        assert!(parse_trigger(b"yes", true).is_err());
        assert_eq!(sync_cmd(b"start\n"), Ok(SyncCmd::Start));
        assert!(sync_cmd(b"go").is_err());
        assert_eq!(del_sess(b"mode=delete\n"), Ok(DelMode::Delete));
        assert!(del_sess(b"").is_err());
        assert_eq!(parse_bare_name(b"ionos_pool\n"), Ok(&b"ionos_pool"[..]));
        assert!(parse_bare_name(b"a b").is_err());
        assert_eq!(reconnect(b"path=ip:1.2.3.4"), Ok([1, 2, 3, 4]));
    }

    #[test]
    fn server_and_store() {
        let s = server_join_pool(b"poolname=ionos_pool member_id=42\n").unwrap();
        assert_eq!(s.member_id, 42);
        assert!(server_join_pool(b"poolname=p member_id=0").is_err());
        assert!(server_join_pool(b"poolname=p member_id=4294967296").is_err());
        let c = store_cmd(b"device=/dev/sda pool=ionos_pool mapped_size=204800", false).unwrap();
        assert_eq!((c.mapped_size, c.mode), (204800, StoreMode::Create));
        assert_eq!(
            store_cmd(b"device=/dev/sda pool=p mapped_size=1 mode=add", false).unwrap_err(),
            ParseError::UnknownKey
        );
        assert_eq!(
            store_cmd(b"device=/dev/sda pool=p mapped_size=8", true).unwrap().mode,
            StoreMode::Add
        );
        assert_eq!(
            store_cmd(b"device=/dev/sda pool=p mapped_size=8 mode=replace", true).unwrap().mode,
            StoreMode::Replace
        );
        assert!(store_cmd(b"device=sda pool=p mapped_size=8", false).is_err());
        assert!(store_cmd(b"device=/dev/sda pool=p mapped_size=0", false).is_err());
        let m = map_device(b"pool=ionos_pool size=204800\n").unwrap();
        assert_eq!(m.size, 204800);
        assert!(map_device(b"pool=ionos_pool size=0").is_err());
    }

    #[test]
    fn never_panics_on_random_bytes() {
        // A small deterministic xorshift; the fuzz target covers far more.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let alphabet = b"=pool name chunk_size sync queue_depth member_id 0123456789 yn\n\t/.:ip";
        for _ in 0..20000 {
            let mut buf = [0u8; 48];
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 48) as usize;
            for b in buf.iter_mut().take(len) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = if x & 1 == 0 {
                    alphabet[(x >> 8) as usize % alphabet.len()]
                } else {
                    (x >> 16) as u8
                };
            }
            let s = &buf[..len];
            let _ = client_join_pool(s);
            let _ = add_sess(s, x & 2 == 0);
            let _ = server_join_pool(s);
            let _ = store_cmd(s, x & 4 == 0);
            let _ = map_device(s);
            let _ = del_sess(s);
            let _ = reconnect(s);
        }
    }
}

/// An owned, validated object name (pool or session), at most [`NAME_MAX`] bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Name {
    buf: [u8; NAME_MAX],
    len: u8,
}

impl Name {
    /// Copies a name that passes [`valid_name`].
    pub fn new(v: &[u8]) -> Option<Name> {
        if !valid_name(v) {
            return None;
        }
        let mut buf = [0u8; NAME_MAX];
        buf[..v.len()].copy_from_slice(v);
        Some(Name {
            buf,
            len: v.len() as u8,
        })
    }

    /// The name's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// The name as text (names are ASCII by construction).
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.as_bytes()).unwrap_or("?")
    }
}

impl core::fmt::Debug for Name {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod name_tests {
    use super::*;

    #[test]
    fn name_holds_valid_names_only() {
        assert_eq!(Name::new(b"ionos_pool").unwrap().as_str(), "ionos_pool");
        assert!(Name::new(b"").is_none());
        assert!(Name::new(b"a b").is_none());
        assert!(Name::new(&[b'x'; 64]).is_none());
        assert_eq!(Name::new(&[b'x'; 63]).unwrap().as_bytes().len(), 63);
    }
}
