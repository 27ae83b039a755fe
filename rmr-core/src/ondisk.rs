// SPDX-License-Identifier: GPL-2.0-or-later
//! The BRMR store's on-disk metadata (SPEC §9.4), format version 3 (versions 1 and 2 are
//! read too: version 1 is version 2 with an empty map slot table, and version 2 lacks the
//! write-intent regions, so rmr keeps no write-intent record on it).
//!
//! The metadata area sits at the start of the backing device; exported sector `s` lives at
//! backend sector `s + area_sectors`. The area holds, in this order:
//!
//! | offset (bytes)        | size            | content                                     |
//! |-----------------------|-----------------|---------------------------------------------|
//! | 0                     | 4096            | superblock copy 0                           |
//! | 4096                  | 4096            | superblock copy 1                           |
//! | 8192                  | 16 × 512 = 8192 | `last_io` slots (16 bytes each, 512 slots)  |
//! | 16384                 | 4 × `bm_bytes`  | one dirty bitmap per map slot               |
//! | 16384 + 4 × `bm_bytes`| 4 × `bm_bytes`  | version 3: witness bitmap per map slot      |
//! | 16384 + 8 × `bm_bytes`| 4 × `bm_bytes`  | version 3: lost bitmap per map slot         |
//! | 16384 + 12 × `bm_bytes`| 3 × `bm_bytes` | version 3: write-intent `wi`, `suspect`, own lost |
//!
//! Superblock updates alternate between the two copies with an increasing sequence number,
//! so a torn write leaves the previous copy valid; readers take the valid copy with the
//! highest sequence. Every field is little-endian; see Documentation/on-disk-format.md.

use super::errno::Errno;
use super::wire::{BrmrMsg, PoolName, IO_DISCARD, IO_FLUSH, IO_FUA, IO_SYNC, IO_WRITE};

/// Sector size the block layer counts in.
pub const SECTOR: u64 = 512;
/// Size of one superblock copy.
pub const SB_SIZE: usize = 4096;
/// Magic at offset 0 of a superblock: "BRMRSTOR".
pub const MAGIC: [u8; 8] = *b"BRMRSTOR";
/// The format version this code writes (it reads [`VERSION_MIN`] too).
pub const VERSION: u32 = 3;
/// The last format version without the write-intent regions.
pub const VERSION_NO_INTENT: u32 = 2;
/// The oldest format version this code reads: 1 had no map slot table (all zero then).
pub const VERSION_MIN: u32 = 1;
/// Metadata region of [`Layout::md_page_offset`]: a dirty map slot.
pub const REGION_MAP: u32 = 0;
/// Metadata region of [`Layout::md_page_offset`]: the `last_io` record.
pub const REGION_LAST_IO: u32 = 1;
/// Metadata region (version 3): the witness bitmap of map slot `index`.
pub const REGION_WITNESS: u32 = 2;
/// Metadata region (version 3): the lost bitmap of map slot `index`.
pub const REGION_LOST: u32 = 3;
/// Metadata region (version 3): the write-intent record, `index` 0 `wi`, 1 `suspect`, 2 the
/// own lost bitmap.
pub const REGION_INTENT: u32 = 4;
/// Bitmaps of [`REGION_INTENT`].
pub const INTENT_BITMAPS: usize = 3;
/// Bytes of one metadata page.
pub const MD_PAGE: u64 = 4096;
/// Storage members a pool holds (RMR_POOL_MAX_SESS).
pub const MAX_MEMBERS: usize = 4;
/// `last_io` slots persisted (the largest queue depth).
pub const LAST_IO_SLOTS: usize = 512;
/// Byte offset of the `last_io` region.
pub const LAST_IO_OFFSET: u64 = 2 * SB_SIZE as u64;
/// Bytes of one `last_io` slot.
pub const LAST_IO_SLOT_BYTES: usize = 16;
/// Byte offset of the first dirty bitmap.
pub const BITMAP_OFFSET: u64 = LAST_IO_OFFSET + (LAST_IO_SLOTS * LAST_IO_SLOT_BYTES) as u64;
/// Bitmaps are sized for the smallest chunk size, so any later `chunk_size` fits.
pub const BITMAP_MIN_CHUNK: u64 = 4096;
/// Alignment of the data area (1 MiB keeps exported IO aligned for any block size).
pub const AREA_ALIGN: u64 = 1 << 20;
/// Longest pool name stored (SPEC §2.1 names are at most 63 bytes).
pub const NAME_BYTES: usize = 64;

/// Superblock flag: the store was mapped by a client (`BRMR_SRV_STORE_MAPPED`).
pub const FLAG_MAPPED: u32 = 1;
/// `srv_md` slot flag: the member has pending discard entries.
pub const MEMBER_DISCARD_ENTRIES: u32 = 1;

/// Where things are inside the metadata area of one store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Sectors of the whole metadata area; exported sector 0 is at this backend sector.
    pub area_sectors: u64,
    /// Bytes reserved for each member's dirty bitmap.
    pub bitmap_bytes: u64,
    /// The area has the write-intent regions (format version 3).
    pub intent: bool,
}

impl Layout {
    /// The layout for a store exporting `mapped_size` sectors on a device of `dev_sectors`.
    /// -EINVAL if `mapped_size` is 0 or does not fit behind the metadata area.
    pub fn new(dev_sectors: u64, mapped_size: u64) -> Result<Layout, Errno> {
        Self::with_intent(dev_sectors, mapped_size, true)
    }

    /// The layout of a format version 1 or 2 store (no write-intent regions).
    pub fn without_intent(dev_sectors: u64, mapped_size: u64) -> Result<Layout, Errno> {
        Self::with_intent(dev_sectors, mapped_size, false)
    }

    /// Bitmaps of the area: 4 dirty maps, and with the write-intent regions 4 witness, 4 lost
    /// and the 3 of the record.
    pub const fn bitmaps(intent: bool) -> u64 {
        if intent {
            (3 * MAX_MEMBERS + INTENT_BITMAPS) as u64
        } else {
            MAX_MEMBERS as u64
        }
    }

    fn with_intent(dev_sectors: u64, mapped_size: u64, intent: bool) -> Result<Layout, Errno> {
        if mapped_size == 0 {
            return Err(Errno::EINVAL);
        }
        let bytes = mapped_size.checked_mul(SECTOR).ok_or(Errno::EINVAL)?;
        let bits = bytes.div_ceil(BITMAP_MIN_CHUNK);
        let bitmap_bytes = bits.div_ceil(8).next_multiple_of(SB_SIZE as u64);
        let area = Self::bitmaps(intent)
            .checked_mul(bitmap_bytes)
            .and_then(|b| b.checked_add(BITMAP_OFFSET))
            .and_then(|b| b.checked_next_multiple_of(AREA_ALIGN))
            .ok_or(Errno::EINVAL)?;
        let area_sectors = area / SECTOR;
        match area_sectors.checked_add(mapped_size) {
            Some(need) if need <= dev_sectors => Ok(Layout {
                area_sectors,
                bitmap_bytes,
                intent,
            }),
            _ => Err(Errno::EINVAL),
        }
    }

    /// Byte offset of bitmap `i` (map slots 0..3, then in version 3 witness, lost, record).
    pub fn bitmap_offset(&self, i: usize) -> u64 {
        BITMAP_OFFSET + i as u64 * self.bitmap_bytes
    }

    /// Byte offset of the end of the bitmaps (what `create_store` zeroes).
    pub fn bitmaps_end(&self) -> u64 {
        self.bitmap_offset(Self::bitmaps(self.intent) as usize)
    }

    /// The format version a superblock with this layout carries.
    pub const fn version(&self) -> u32 {
        if self.intent {
            VERSION
        } else {
            VERSION_NO_INTENT
        }
    }

    /// Byte offset of page `page` of metadata region `region` number `index` (rmr's
    /// `md_write`/`md_read`): a bitmap (map, and in version 3 witness or lost of slot
    /// `index` < 4, or record bitmap `index` < 3) with `page` inside it, or the `last_io`
    /// record (`index` 0, `page` < 2). -EINVAL for anything else.
    pub fn md_page_offset(&self, region: u32, index: u32, page: u32) -> Result<u64, Errno> {
        let page = u64::from(page);
        let i = index as usize;
        if region == REGION_LAST_IO {
            return if index == 0 && (page + 1) * MD_PAGE <= (LAST_IO_SLOTS * LAST_IO_SLOT_BYTES) as u64 {
                Ok(LAST_IO_OFFSET + page * MD_PAGE)
            } else {
                Err(Errno::EINVAL)
            };
        }
        let bitmap = match region {
            REGION_MAP if i < MAX_MEMBERS => i,
            REGION_WITNESS if self.intent && i < MAX_MEMBERS => MAX_MEMBERS + i,
            REGION_LOST if self.intent && i < MAX_MEMBERS => 2 * MAX_MEMBERS + i,
            REGION_INTENT if self.intent && i < INTENT_BITMAPS => 3 * MAX_MEMBERS + i,
            _ => return Err(Errno::EINVAL),
        };
        if (page + 1) * MD_PAGE > self.bitmap_bytes {
            return Err(Errno::EINVAL);
        }
        Ok(self.bitmap_offset(bitmap) + page * MD_PAGE)
    }

    /// Largest `mapped_size` a device of `dev_sectors` can export (for error messages).
    pub fn max_mapped(dev_sectors: u64) -> u64 {
        // Each exported sector costs 1/8 bit-byte per 8 sectors of bitmap per member; solve
        // conservatively by trying the size minus the area needed for the whole device.
        match Layout::new(u64::MAX / SECTOR, dev_sectors.max(1)) {
            Ok(l) => dev_sectors.saturating_sub(l.area_sectors),
            Err(_) => 0,
        }
    }
}

/// One persisted member slot of `pool_md.srv_md[]`; `member_id == 0` means free.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SrvMd {
    /// Member id, 0 if the slot is free.
    pub member_id: u32,
    /// `MEMBER_*` flags.
    pub flags: u32,
}

/// The persisted RMR pool description (SPEC §3.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolMd {
    /// `jhash` of the pool name.
    pub group_id: u32,
    /// Chunk size in bytes; 0 until the first client join.
    pub chunk_size: u32,
    /// Queue depth of the client pool; 0 until the first client join.
    pub queue_depth: u32,
    /// Member id of this storage node; 0 until registration with the server pool.
    pub own_member_id: u32,
    /// Map version (bit 63: store replaced).
    pub map_ver: u64,
    /// Storage members.
    pub srv_md: [SrvMd; MAX_MEMBERS],
    /// Member whose dirty map is in map slot `i` (0 = free): version 2.
    pub map_slots: [u32; MAX_MEMBERS],
}

/// The store superblock: everything of SPEC §9.4 except bitmaps and `last_io` slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Superblock {
    /// Update sequence; the valid copy with the highest value wins.
    pub seq: u64,
    /// `FLAG_*` bits.
    pub flags: u32,
    /// Logical block size of the backing device, compared across stores at first map.
    pub logical_block_size: u32,
    /// Exported sectors.
    pub mapped_size: u64,
    /// Layout of the metadata area.
    pub layout: Layout,
    /// Pool name bytes, `name_len` of them valid.
    pub name: [u8; NAME_BYTES],
    /// Valid bytes of `name`.
    pub name_len: u8,
    /// Reserved for a store UUID generated at first map (SPEC §11); zero for now.
    pub store_uuid: [u8; 16],
    /// The RMR pool metadata.
    pub pool_md: PoolMd,
}

/// What reading a metadata area found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MdError {
    /// No copy carries the magic: a blank (or foreign) disk.
    Blank,
    /// The magic is there but no copy is valid (checksum, version or field check failed).
    Corrupt,
    /// A valid copy of a newer format version.
    UnsupportedVersion(u32),
}

// Field offsets inside a superblock copy.
const O_MAGIC: usize = 0;
const O_VERSION: usize = 8;
const O_SEQ: usize = 16;
const O_FLAGS: usize = 24;
const O_LBS: usize = 28;
const O_MAPPED: usize = 32;
const O_AREA: usize = 40;
const O_BMBYTES: usize = 48;
const O_NAMELEN: usize = 56;
const O_NAME: usize = 64;
const O_UUID: usize = O_NAME + NAME_BYTES; // 128
const O_GROUP: usize = 144;
const O_CHUNK: usize = 148;
const O_QD: usize = 152;
const O_OWN: usize = 156;
const O_MAPVER: usize = 160;
const O_SRVMD: usize = 168; // 4 × 8 bytes
const O_MAPSLOTS: usize = O_SRVMD + MAX_MEMBERS * 8; // 200, 4 × 4 bytes
const O_END: usize = O_MAPSLOTS + MAX_MEMBERS * 4; // 216
const O_CRC: usize = SB_SIZE - 4;

fn put32(b: &mut [u8], o: usize, v: u32) {
    b[o..o + 4].copy_from_slice(&v.to_le_bytes());
}
fn put64(b: &mut [u8], o: usize, v: u64) {
    b[o..o + 8].copy_from_slice(&v.to_le_bytes());
}
fn get32(b: &[u8; SB_SIZE], o: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[o..o + 4]);
    u32::from_le_bytes(a)
}
fn get64(b: &[u8; SB_SIZE], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(a)
}

const fn crc32c_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0x82f6_3b78 } else { c >> 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}
static CRC32C: [u32; 256] = crc32c_table();

/// CRC-32C (Castagnoli), as the kernel's `crc32c()` with seed `!0` and final inversion.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for b in data {
        c = CRC32C[((c ^ u32::from(*b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

impl Superblock {
    /// A fresh superblock for `create_store` (MAPPED clear, empty `pool_md` but for `group_id`).
    pub fn new(pool: &[u8], group_id: u32, mapped_size: u64, lbs: u32, layout: Layout) -> Result<Self, Errno> {
        if pool.is_empty() || pool.len() >= NAME_BYTES {
            return Err(Errno::EINVAL);
        }
        let mut name = [0u8; NAME_BYTES];
        name[..pool.len()].copy_from_slice(pool);
        Ok(Superblock {
            seq: 1,
            flags: 0,
            logical_block_size: lbs,
            mapped_size,
            layout,
            name,
            name_len: pool.len() as u8,
            store_uuid: [0; 16],
            pool_md: PoolMd {
                group_id,
                ..PoolMd::default()
            },
        })
    }

    /// The pool name.
    pub fn pool_name(&self) -> &[u8] {
        self.name.get(..usize::from(self.name_len)).unwrap_or(&[])
    }

    /// True if `FLAG_MAPPED` is set.
    pub fn mapped(&self) -> bool {
        self.flags & FLAG_MAPPED != 0
    }

    /// The copy (0 or 1) this superblock is written to: alternate by sequence.
    pub fn slot(&self) -> usize {
        (self.seq & 1) as usize
    }

    /// Serialises into one superblock copy, with checksum.
    pub fn encode(&self, b: &mut [u8; SB_SIZE]) {
        b.fill(0);
        b[O_MAGIC..O_MAGIC + 8].copy_from_slice(&MAGIC);
        put32(b, O_VERSION, self.layout.version());
        put64(b, O_SEQ, self.seq);
        put32(b, O_FLAGS, self.flags);
        put32(b, O_LBS, self.logical_block_size);
        put64(b, O_MAPPED, self.mapped_size);
        put64(b, O_AREA, self.layout.area_sectors);
        put64(b, O_BMBYTES, self.layout.bitmap_bytes);
        b[O_NAMELEN] = self.name_len;
        b[O_NAME..O_NAME + NAME_BYTES].copy_from_slice(&self.name);
        b[O_UUID..O_UUID + 16].copy_from_slice(&self.store_uuid);
        let p = &self.pool_md;
        put32(b, O_GROUP, p.group_id);
        put32(b, O_CHUNK, p.chunk_size);
        put32(b, O_QD, p.queue_depth);
        put32(b, O_OWN, p.own_member_id);
        put64(b, O_MAPVER, p.map_ver);
        for (i, m) in p.srv_md.iter().enumerate() {
            put32(b, O_SRVMD + 8 * i, m.member_id);
            put32(b, O_SRVMD + 8 * i + 4, m.flags);
        }
        for (i, m) in p.map_slots.iter().enumerate() {
            put32(b, O_MAPSLOTS + 4 * i, *m);
        }
        let crc = crc32c(&b[..O_CRC]);
        put32(b, O_CRC, crc);
    }

    /// Parses and validates one copy. `Blank` if the magic is absent.
    pub fn decode(b: &[u8; SB_SIZE]) -> Result<Superblock, MdError> {
        if b[O_MAGIC..O_MAGIC + 8] != MAGIC {
            return Err(MdError::Blank);
        }
        if crc32c(&b[..O_CRC]) != get32(b, O_CRC) {
            return Err(MdError::Corrupt);
        }
        let version = get32(b, O_VERSION);
        if !(VERSION_MIN..=VERSION).contains(&version) {
            return Err(MdError::UnsupportedVersion(version));
        }
        // Unused bytes must be zero: keeps the format strict and leaves room to grow.
        if b[O_END..O_CRC].iter().any(|x| *x != 0) {
            return Err(MdError::Corrupt);
        }
        let name_len = b[O_NAMELEN];
        let mut name = [0u8; NAME_BYTES];
        name.copy_from_slice(&b[O_NAME..O_NAME + NAME_BYTES]);
        let mut store_uuid = [0u8; 16];
        store_uuid.copy_from_slice(&b[O_UUID..O_UUID + 16]);
        let mut srv_md = [SrvMd::default(); MAX_MEMBERS];
        for (i, m) in srv_md.iter_mut().enumerate() {
            m.member_id = get32(b, O_SRVMD + 8 * i);
            m.flags = get32(b, O_SRVMD + 8 * i + 4);
        }
        let mut map_slots = [0u32; MAX_MEMBERS];
        for (i, m) in map_slots.iter_mut().enumerate() {
            *m = get32(b, O_MAPSLOTS + 4 * i);
        }
        let sb = Superblock {
            seq: get64(b, O_SEQ),
            flags: get32(b, O_FLAGS),
            logical_block_size: get32(b, O_LBS),
            mapped_size: get64(b, O_MAPPED),
            layout: Layout {
                area_sectors: get64(b, O_AREA),
                bitmap_bytes: get64(b, O_BMBYTES),
                intent: version >= VERSION,
            },
            name,
            name_len,
            store_uuid,
            pool_md: PoolMd {
                group_id: get32(b, O_GROUP),
                chunk_size: get32(b, O_CHUNK),
                queue_depth: get32(b, O_QD),
                own_member_id: get32(b, O_OWN),
                map_ver: get64(b, O_MAPVER),
                srv_md,
                map_slots,
            },
        };
        if sb.valid() {
            Ok(sb)
        } else {
            Err(MdError::Corrupt)
        }
    }

    /// Internal consistency: every field in range, the layout the one `Layout::new` computes.
    fn valid(&self) -> bool {
        let n = usize::from(self.name_len);
        let lbs_ok = self.logical_block_size.is_power_of_two()
            && (512..=65536).contains(&self.logical_block_size);
        let chunk_ok = self.pool_md.chunk_size == 0
            || (self.pool_md.chunk_size.is_power_of_two() && self.pool_md.chunk_size >= 4096);
        let layout_ok = matches!(
            Layout::with_intent(u64::MAX, self.mapped_size, self.layout.intent),
            Ok(l) if l == self.layout
        );
        n > 0
            && n < NAME_BYTES
            && self.name[n..].iter().all(|c| *c == 0)
            && self.flags & !FLAG_MAPPED == 0
            && lbs_ok
            && chunk_ok
            && self.pool_md.queue_depth as usize <= LAST_IO_SLOTS
            && layout_ok
    }

    /// Picks the newest valid copy out of the two read from disk.
    pub fn select(c0: &[u8; SB_SIZE], c1: &[u8; SB_SIZE]) -> Result<Superblock, MdError> {
        match (Superblock::decode(c0), Superblock::decode(c1)) {
            (Ok(a), Ok(b)) => Ok(if b.seq > a.seq { b } else { a }),
            (Ok(a), Err(_)) => Ok(a),
            (Err(_), Ok(b)) => Ok(b),
            (Err(MdError::Blank), Err(MdError::Blank)) => Err(MdError::Blank),
            (Err(MdError::UnsupportedVersion(v)), _) | (_, Err(MdError::UnsupportedVersion(v))) => {
                Err(MdError::UnsupportedVersion(v))
            }
            _ => Err(MdError::Corrupt),
        }
    }

    /// Advances the sequence for the next write; the result goes to the other copy.
    pub fn bump(&mut self) {
        self.seq = self.seq.wrapping_add(1);
    }
}

/// Encodes one `last_io` slot (`rmr_id_t` = {a, b}) into its 16 bytes.
pub fn encode_last_io(a: u64, b: u64, out: &mut [u8; LAST_IO_SLOT_BYTES]) {
    out[..8].copy_from_slice(&a.to_le_bytes());
    out[8..].copy_from_slice(&b.to_le_bytes());
}

/// Decodes one `last_io` slot.
pub fn decode_last_io(s: &[u8; LAST_IO_SLOT_BYTES]) -> (u64, u64) {
    let mut a = [0u8; 8];
    let mut b = [0u8; 8];
    a.copy_from_slice(&s[..8]);
    b.copy_from_slice(&s[8..]);
    (u64::from_le_bytes(a), u64::from_le_bytes(b))
}

// ---------------------------------------------------------------------------------------------
// What a store does with its superblock (SPEC §4.4, §9.1-9.3). The kernel store executes these
// decisions: it persists the superblock returned, answers the message returned, starts the
// block operation planned.

impl Superblock {
    /// The superblock to persist when rmr reports `md` (sequence advanced, so it goes to the
    /// other copy); `None` if `md` changes nothing. -EINVAL if `md` names another pool
    /// (`group_id`) or would not pass the format's checks (chunk size, queue depth).
    pub fn with_pool_md(&self, md: &PoolMd) -> Result<Option<Superblock>, Errno> {
        if md.group_id != self.pool_md.group_id {
            return Err(Errno::EINVAL);
        }
        if *md == self.pool_md {
            return Ok(None);
        }
        let mut next = *self;
        next.pool_md = *md;
        next.bump();
        if next.valid() {
            Ok(Some(next))
        } else {
            Err(Errno::EINVAL)
        }
    }

    /// The superblock to persist with MAPPED set (sequence advanced); `None` if already set.
    pub fn with_mapped(&self) -> Option<Superblock> {
        if self.mapped() {
            return None;
        }
        let mut next = *self;
        next.flags |= FLAG_MAPPED;
        next.bump();
        Some(next)
    }

    /// Where exported IO goes on the backing device of logical block size `lbs`.
    pub fn data_area(&self, lbs: u32) -> DataArea {
        DataArea {
            area_sectors: self.layout.area_sectors,
            mapped_size: self.mapped_size,
            lbs,
        }
    }
}

/// The response slice (`BRMR_CMD_RSP`) a store with superblock `sb` on a device of logical
/// block size `lbs` answers, carrying `errno` (0 or negative; a positive value is a caller
/// bug and is sent as -EIO). -EINVAL if the stored name is not a wire pool name.
pub fn store_rsp(sb: &Superblock, lbs: u32, errno: i32) -> Result<BrmrMsg, Errno> {
    let name = PoolName::new(sb.pool_name()).map_err(|_| Errno::EINVAL)?;
    Ok(BrmrMsg::Rsp {
        errno: if errno > 0 { Errno::EIO.to_kernel() } else { errno },
        name,
        mapped_size: sb.mapped_size,
        lbs,
        mapped: sb.mapped(),
    })
}

/// A store's decision on one BRMR command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreCmd {
    /// Superblock to persist before answering; if writing it fails, the store keeps its old
    /// superblock and answers [`store_rsp`] with the write's errno instead of `rsp`.
    pub persist: Option<Superblock>,
    /// The answer once `persist` (if any) is on disk.
    pub rsp: BrmrMsg,
}

/// Decides the answer of a store (superblock `sb`, device logical block size `lbs`) to the
/// BRMR command `req` (bytes from the network):
/// - `READ_MD`, `UNMAP`: the store's facts, errno 0 (unmap leaves MAPPED set, SPEC §4.4);
/// - `MAP_NEW`: `mapped_size` must equal the store's, else errno -EINVAL; sets MAPPED
///   (persisted) unless already set;
/// - `MAP_CHECK`: `mapped_size` must equal the store's and MAPPED be set, else -EINVAL;
/// - anything else (malformed, a response, the reserved IO type): `Err(EPROTO)`, no answer.
pub fn store_cmd(sb: &Superblock, lbs: u32, req: &[u8]) -> Result<StoreCmd, Errno> {
    let msg = BrmrMsg::decode(req).map_err(|_| Errno::EPROTO)?;
    let einval = Errno::EINVAL.to_kernel();
    let (persist, errno) = match msg {
        BrmrMsg::ReadMd | BrmrMsg::Unmap => (None, 0),
        BrmrMsg::MapNew { mapped_size } if mapped_size != sb.mapped_size => (None, einval),
        BrmrMsg::MapNew { .. } => (sb.with_mapped(), 0),
        BrmrMsg::MapCheck { mapped_size } if mapped_size != sb.mapped_size || !sb.mapped() => {
            (None, einval)
        }
        BrmrMsg::MapCheck { .. } => (None, 0),
        BrmrMsg::Rsp { .. } => return Err(Errno::EPROTO),
    };
    let rsp = store_rsp(persist.as_ref().unwrap_or(sb), lbs, errno)?;
    Ok(StoreCmd { persist, rsp })
}

/// The exported data area of a store: immutable facts the IO path needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataArea {
    /// Backend sector of exported sector 0.
    pub area_sectors: u64,
    /// Exported sectors.
    pub mapped_size: u64,
    /// Logical block size of the backing device (bytes).
    pub lbs: u32,
}

/// Block operation of one store IO.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoOp {
    /// Read `len` bytes.
    Read,
    /// Write `len` bytes.
    Write,
    /// Empty write with preflush (a pure flush; `len` is 0).
    Flush,
    /// Zero `len` bytes (a discard or write-zeroes from the client: every store zeroes, so
    /// every leg reads the same afterwards; the device may unmap).
    Zero,
}

/// How a store executes one IO from rmr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoPlan {
    /// The operation.
    pub op: IoOp,
    /// Flush the device cache before the data (writes only).
    pub preflush: bool,
    /// Forced unit access (writes only).
    pub fua: bool,
    /// Backend sector (0 for a pure flush).
    pub sector: u64,
}

impl DataArea {
    /// Plans the IO rmr hands over (`flags` are `wire::IO_*`, `offset`/`len` bytes of the
    /// exported space): a discard (with `IO_WRITE`, no flush or FUA) zeroes its range;
    /// -EINVAL for unknown flags, flush or FUA on a
    /// read, an empty IO that is not a flush, offset or length not a multiple of the sector and
    /// of the device's logical block size, or bytes beyond `mapped_size`. The backend sector
    /// never falls inside the metadata area or past the exported space.
    pub fn plan(&self, flags: u32, offset: u64, len: u32) -> Result<IoPlan, Errno> {
        let known = u32::from(IO_WRITE | IO_FLUSH | IO_FUA | IO_DISCARD | IO_SYNC);
        if flags & !known != 0 {
            return Err(Errno::EINVAL);
        }
        let discard = flags & u32::from(IO_DISCARD) != 0;
        // A discard may carry a preflush and FUA (rmr's write-intent record promotes writes,
        // discards too): the store flushes the device before and after zeroing.
        if discard && (flags & u32::from(IO_WRITE) == 0 || flags & u32::from(IO_SYNC) != 0 || len == 0) {
            return Err(Errno::EINVAL);
        }
        let write = flags & u32::from(IO_WRITE) != 0;
        let flush = flags & u32::from(IO_FLUSH) != 0;
        let fua = flags & u32::from(IO_FUA) != 0;
        if len == 0 {
            return if flush {
                Ok(IoPlan { op: IoOp::Flush, preflush: true, fua: false, sector: 0 })
            } else {
                Err(Errno::EINVAL)
            };
        }
        if !write && (flush || fua) {
            return Err(Errno::EINVAL);
        }
        let align = u64::from(self.lbs).max(SECTOR);
        let len = u64::from(len);
        let limit = self.mapped_size.checked_mul(SECTOR).ok_or(Errno::EINVAL)?;
        let in_range = offset.checked_add(len).is_some_and(|end| end <= limit);
        if !offset.is_multiple_of(align) || !len.is_multiple_of(align) || !in_range {
            return Err(Errno::EINVAL);
        }
        let sector = self.area_sectors.checked_add(offset / SECTOR).ok_or(Errno::EINVAL)?;
        Ok(IoPlan {
            op: if discard {
                IoOp::Zero
            } else if write {
                IoOp::Write
            } else {
                IoOp::Read
            },
            preflush: write && flush,
            fua: write && fua,
            sector,
        })
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::boxed::Box;

    fn sample() -> Superblock {
        let l = Layout::new(262144, 204800).unwrap();
        let mut sb = Superblock::new(b"ionos_pool", 0x1234_5678, 204800, 512, l).unwrap();
        sb.pool_md.chunk_size = 131072;
        sb.pool_md.queue_depth = 512;
        sb.pool_md.own_member_id = 42;
        sb.pool_md.map_ver = 7;
        sb.pool_md.srv_md[0] = SrvMd { member_id: 42, flags: 0 };
        sb.pool_md.srv_md[1] = SrvMd { member_id: 43, flags: MEMBER_DISCARD_ENTRIES };
        sb.flags = FLAG_MAPPED;
        sb
    }

    #[test]
    fn crc32c_known_vector() {
        // RFC 3720 B.4: 32 bytes of zeros.
        assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
    }

    #[test]
    fn layout_for_the_guide_example() {
        let l = Layout::new(262144, 204800).unwrap();
        assert_eq!(l.bitmap_bytes, 4096); // 25600 chunks of 4 KiB -> 3200 bytes -> one page
        assert_eq!(l.area_sectors, 2048); // rounded to 1 MiB
        assert_eq!(Layout::new(204800, 204800), Err(Errno::EINVAL));
        assert_eq!(Layout::new(206848, 204800).unwrap().area_sectors, 2048);
        assert_eq!(Layout::new(206847, 204800), Err(Errno::EINVAL));
        assert_eq!(Layout::new(1 << 40, 0), Err(Errno::EINVAL));
        assert_eq!(Layout::new(u64::MAX, u64::MAX), Err(Errno::EINVAL));
        // 64 TiB: 16 Gi 4-KiB chunks -> 2 GiB of bits per member, allocated on disk only.
        let big = Layout::new(u64::MAX / 1024, (64u64 << 40) / 512).unwrap();
        assert_eq!(big.bitmap_bytes, 2 << 30);
        assert!(Layout::max_mapped(262144) > 204800);
        assert!(Layout::new(262144, Layout::max_mapped(262144)).is_ok());
    }

    #[test]
    fn round_trip_and_select() {
        let sb = sample();
        let mut b0 = Box::new([0u8; SB_SIZE]);
        sb.encode(&mut b0);
        assert_eq!(Superblock::decode(&b0), Ok(sb));
        assert_eq!(Superblock::decode(&b0).unwrap().pool_name(), b"ionos_pool");
        let mut next = sb;
        next.bump();
        next.pool_md.map_ver = 8;
        let mut b1 = Box::new([0u8; SB_SIZE]);
        next.encode(&mut b1);
        assert_eq!(Superblock::select(&b0, &b1).unwrap().pool_md.map_ver, 8);
        // A torn newer copy falls back to the older one.
        b1[O_MAPVER] ^= 0xff;
        assert_eq!(Superblock::select(&b0, &b1).unwrap().pool_md.map_ver, 7);
        let blank = Box::new([0u8; SB_SIZE]);
        assert_eq!(Superblock::select(&blank, &blank), Err(MdError::Blank));
        assert_eq!(Superblock::select(&blank, &b1), Err(MdError::Corrupt));
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let mut b = Box::new([0u8; SB_SIZE]);
        sample().encode(&mut b);
        for byte in 8..SB_SIZE {
            for bit in 0..8 {
                let mut c = b.clone();
                c[byte] ^= 1 << bit;
                assert!(Superblock::decode(&c).is_err(), "flip at {byte}:{bit}");
            }
        }
    }

    #[test]
    fn rejects_bad_fields_even_with_valid_crc() {
        let mut sb = sample();
        sb.logical_block_size = 1000;
        let mut b = Box::new([0u8; SB_SIZE]);
        sb.encode(&mut b);
        assert_eq!(Superblock::decode(&b), Err(MdError::Corrupt));
        let mut sb = sample();
        sb.layout.area_sectors = 1;
        sb.encode(&mut b);
        assert_eq!(Superblock::decode(&b), Err(MdError::Corrupt));
        let mut sb = sample();
        sb.name_len = 0;
        sb.encode(&mut b);
        assert_eq!(Superblock::decode(&b), Err(MdError::Corrupt));
        let mut sb = sample();
        sb.flags = 2;
        sb.encode(&mut b);
        assert_eq!(Superblock::decode(&b), Err(MdError::Corrupt));
        // A newer version is reported as such.
        sample().encode(&mut b);
        put32(&mut b[..], O_VERSION, 4);
        let crc = crc32c(&b[..O_CRC]);
        put32(&mut b[..], O_CRC, crc);
        assert_eq!(Superblock::decode(&b), Err(MdError::UnsupportedVersion(4)));
    }

    #[test]
    fn version_1_reads_with_an_empty_slot_table_and_slots_round_trip() {
        let mut b = Box::new([0u8; SB_SIZE]);
        let mut old = sample();
        old.layout = Layout::without_intent(262144, 204800).unwrap();
        old.encode(&mut b);
        put32(&mut b[..], O_VERSION, 1);
        let crc = crc32c(&b[..O_CRC]);
        put32(&mut b[..], O_CRC, crc);
        assert_eq!(Superblock::decode(&b).unwrap().pool_md.map_slots, [0; 4]);
        let mut sb = sample();
        sb.pool_md.map_slots = [0, 43, 42, 0];
        sb.encode(&mut b);
        assert_eq!(Superblock::decode(&b).unwrap().pool_md.map_slots, [0, 43, 42, 0]);
    }

    #[test]
    fn metadata_pages_stay_inside_their_regions() {
        let l = Layout::new(1 << 30, 204800).unwrap();
        assert_eq!(l.md_page_offset(REGION_LAST_IO, 0, 0), Ok(8192));
        assert_eq!(l.md_page_offset(REGION_LAST_IO, 0, 1), Ok(12288));
        assert_eq!(l.md_page_offset(REGION_LAST_IO, 0, 2), Err(Errno::EINVAL));
        assert_eq!(l.md_page_offset(REGION_LAST_IO, 1, 0), Err(Errno::EINVAL));
        assert_eq!(l.md_page_offset(REGION_MAP, 0, 0), Ok(16384));
        assert_eq!(l.md_page_offset(REGION_MAP, 3, 0), Ok(16384 + 3 * 4096));
        assert_eq!(l.md_page_offset(REGION_MAP, 3, 1), Err(Errno::EINVAL), "bitmap_bytes is one page");
        assert_eq!(l.md_page_offset(REGION_MAP, 4, 0), Err(Errno::EINVAL));
        assert_eq!(l.md_page_offset(REGION_WITNESS, 0, 0), Ok(16384 + 4 * 4096));
        assert_eq!(l.md_page_offset(REGION_LOST, 3, 0), Ok(16384 + 11 * 4096));
        assert_eq!(l.md_page_offset(REGION_INTENT, 2, 0), Ok(16384 + 14 * 4096));
        assert_eq!(l.md_page_offset(REGION_INTENT, 3, 0), Err(Errno::EINVAL));
        assert_eq!(l.md_page_offset(5, 0, 0), Err(Errno::EINVAL));
        let last = l.md_page_offset(REGION_INTENT, 2, 0).unwrap() + MD_PAGE;
        assert!(last <= l.area_sectors * SECTOR, "inside the metadata area");
        assert_eq!(l.bitmaps_end(), last);
        // A version 2 store has no write-intent regions.
        let old = Layout::without_intent(1 << 30, 204800).unwrap();
        assert_eq!(old.md_page_offset(REGION_MAP, 3, 0), Ok(16384 + 3 * 4096));
        assert_eq!(old.md_page_offset(REGION_WITNESS, 0, 0), Err(Errno::EINVAL));
        assert_eq!(old.md_page_offset(REGION_INTENT, 0, 0), Err(Errno::EINVAL));
    }

    #[test]
    fn version_2_keeps_its_layout_and_version() {
        let mut sb = sample();
        sb.layout = Layout::without_intent(262144, 204800).unwrap();
        let mut b = Box::new([0u8; SB_SIZE]);
        sb.encode(&mut b);
        assert_eq!(get32(&b, O_VERSION), 2);
        let d = Superblock::decode(&b).unwrap();
        assert!(!d.layout.intent);
        assert_eq!(d, sb);
        // On a large store the regions take room, and a superblock whose version does not
        // match its area (version 3 with the version 2 area, or the reverse) is corrupt.
        let big = Layout::new(1 << 34, 1 << 33).unwrap();
        let big2 = Layout::without_intent(1 << 34, 1 << 33).unwrap();
        assert!(big.area_sectors > big2.area_sectors, "the regions take room on a large store");
        for (layout, claimed) in [(big2, VERSION), (big, VERSION_NO_INTENT)] {
            Superblock::new(b"ionos_pool", 1, 1 << 33, 512, layout).unwrap().encode(&mut b);
            put32(&mut b[..], O_VERSION, claimed);
            let crc = crc32c(&b[..O_CRC]);
            put32(&mut b[..], O_CRC, crc);
            assert_eq!(Superblock::decode(&b), Err(MdError::Corrupt), "version {claimed}");
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x: u64 = 0x1234_5678_9abc_def1;
        let mut b = Box::new([0u8; SB_SIZE]);
        for _ in 0..200 {
            for v in b.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *v = x as u8;
            }
            b[..8].copy_from_slice(&MAGIC);
            assert!(Superblock::decode(&b).is_err());
        }
    }

    #[test]
    fn last_io_slots() {
        let mut s = [0u8; LAST_IO_SLOT_BYTES];
        encode_last_io(1, 99, &mut s);
        assert_eq!(decode_last_io(&s), (1, 99));
    }

    fn rsp_of(c: &StoreCmd) -> (i32, bool) {
        match c.rsp {
            BrmrMsg::Rsp { errno, mapped, .. } => (errno, mapped),
            _ => panic!("not a response"),
        }
    }

    fn enc(m: BrmrMsg) -> std::vec::Vec<u8> {
        let mut b = std::vec![0u8; 256];
        let n = m.encode(&mut b).unwrap();
        b.truncate(n);
        b
    }

    #[test]
    fn store_commands() {
        let mut sb = sample();
        sb.flags = 0;
        // READ_MD answers the facts.
        let c = store_cmd(&sb, 4096, &enc(BrmrMsg::ReadMd)).unwrap();
        assert_eq!(c.persist, None);
        match c.rsp {
            BrmrMsg::Rsp { errno, name, mapped_size, lbs, mapped } => {
                assert_eq!((errno, mapped_size, lbs, mapped), (0, 204800, 4096, false));
                assert_eq!(name.as_bytes(), b"ionos_pool");
            }
            _ => panic!(),
        }
        // The answer decodes as a valid response slice.
        let mut buf = [0u8; 256];
        let n = c.rsp.encode(&mut buf).unwrap();
        assert_eq!(BrmrMsg::decode(&buf[..n]).unwrap(), c.rsp);
        // MAP_CHECK on an unmapped store and MAP_NEW with the wrong size: -EINVAL, no write.
        for m in [
            BrmrMsg::MapCheck { mapped_size: 204800 },
            BrmrMsg::MapNew { mapped_size: 204801 },
            BrmrMsg::MapNew { mapped_size: 0 },
        ] {
            let c = store_cmd(&sb, 512, &enc(m)).unwrap();
            assert_eq!(c.persist, None);
            assert_eq!(rsp_of(&c), (-22, false));
        }
        // MAP_NEW sets MAPPED, persisted into the other copy.
        let c = store_cmd(&sb, 512, &enc(BrmrMsg::MapNew { mapped_size: 204800 })).unwrap();
        let next = c.persist.unwrap();
        assert!(next.mapped());
        assert_eq!(next.seq, sb.seq + 1);
        assert_ne!(next.slot(), sb.slot());
        assert_eq!(rsp_of(&c), (0, true));
        // Mapped: MAP_NEW again is answered without a write, MAP_CHECK passes, UNMAP keeps it.
        let c = store_cmd(&next, 512, &enc(BrmrMsg::MapNew { mapped_size: 204800 })).unwrap();
        assert_eq!((c.persist, rsp_of(&c)), (None, (0, true)));
        let c = store_cmd(&next, 512, &enc(BrmrMsg::MapCheck { mapped_size: 204800 })).unwrap();
        assert_eq!((c.persist, rsp_of(&c)), (None, (0, true)));
        let c = store_cmd(&next, 512, &enc(BrmrMsg::MapCheck { mapped_size: 1 })).unwrap();
        assert_eq!((c.persist, rsp_of(&c)), (None, (-22, true)));
        let c = store_cmd(&next, 512, &enc(BrmrMsg::Unmap)).unwrap();
        assert_eq!((c.persist, rsp_of(&c)), (None, (0, true)));
        // A write failure is answered with its errno and the old facts.
        match store_rsp(&sb, 512, -5).unwrap() {
            BrmrMsg::Rsp { errno, mapped, .. } => assert_eq!((errno, mapped), (-5, false)),
            _ => panic!(),
        }
        match store_rsp(&sb, 512, 5).unwrap() {
            BrmrMsg::Rsp { errno, .. } => assert_eq!(errno, -5),
            _ => panic!(),
        }
    }

    #[test]
    fn store_command_garbage_is_eproto() {
        let sb = sample();
        assert_eq!(store_cmd(&sb, 512, &[]), Err(Errno::EPROTO));
        assert_eq!(store_cmd(&sb, 512, &[0u8; 64]), Err(Errno::EPROTO));
        let rsp = store_rsp(&sb, 512, 0).unwrap();
        assert_eq!(store_cmd(&sb, 512, &enc(rsp)), Err(Errno::EPROTO));
        let mut b = enc(BrmrMsg::MapNew { mapped_size: 204800 });
        b.push(0);
        assert_eq!(store_cmd(&sb, 512, &b), Err(Errno::EPROTO));
        let b = enc(BrmrMsg::MapNew { mapped_size: 204800 });
        assert_eq!(store_cmd(&sb, 512, &b[..b.len() - 1]), Err(Errno::EPROTO));
        // Random bytes (with and without the magic) never panic.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for i in 0..2000 {
            let mut v = std::vec![0u8; i % 40];
            for c in v.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *c = x as u8;
            }
            if v.len() >= 4 {
                v[0] = 0x42;
                v[1] = 0x52;
                v[2] = 1;
                v[3] = (x % 7) as u8;
            }
            let _ = store_cmd(&sb, 512, &v);
        }
    }

    #[test]
    fn pool_md_updates() {
        let sb = sample();
        assert_eq!(sb.with_pool_md(&sb.pool_md), Ok(None));
        let mut md = sb.pool_md;
        md.map_ver = 9;
        md.srv_md[2] = SrvMd { member_id: 44, flags: 0 };
        let next = sb.with_pool_md(&md).unwrap().unwrap();
        assert_eq!((next.pool_md, next.seq, next.flags), (md, sb.seq + 1, sb.flags));
        // The result is a valid copy.
        let mut b = Box::new([0u8; SB_SIZE]);
        next.encode(&mut b);
        assert_eq!(Superblock::decode(&b), Ok(next));
        // Refused: another pool, a chunk size or queue depth the format rejects.
        for bad in [
            PoolMd { group_id: 1, ..md },
            PoolMd { chunk_size: 1000, ..md },
            PoolMd { chunk_size: 2048, ..md },
            PoolMd { queue_depth: 513, ..md },
        ] {
            assert_eq!(sb.with_pool_md(&bad), Err(Errno::EINVAL));
        }
        assert_eq!(sample().with_mapped(), None);
    }

    #[test]
    fn io_plans() {
        let a = sample().data_area(512);
        assert_eq!(a.area_sectors, 2048);
        let w = u32::from(IO_WRITE);
        let p = a.plan(w, 4096, 4096).unwrap();
        assert_eq!(p, IoPlan { op: IoOp::Write, preflush: false, fua: false, sector: 2048 + 8 });
        let p = a.plan(w | u32::from(IO_FLUSH | IO_FUA), 0, 512).unwrap();
        assert_eq!(p, IoPlan { op: IoOp::Write, preflush: true, fua: true, sector: 2048 });
        let p = a.plan(u32::from(IO_SYNC), 131072, 131072).unwrap();
        assert_eq!(p, IoPlan { op: IoOp::Read, preflush: false, fua: false, sector: 2048 + 256 });
        // Pure flush, with or without the write flag.
        for f in [u32::from(IO_FLUSH), w | u32::from(IO_FLUSH), w | u32::from(IO_FLUSH | IO_FUA)] {
            assert_eq!(a.plan(f, 12345, 0).unwrap(), IoPlan { op: IoOp::Flush, preflush: true, fua: false, sector: 0 });
        }
        // The last sector is fine, one past it is not.
        let end = 204800 * 512;
        assert_eq!(a.plan(0, end - 512, 512).unwrap().sector, 2048 + 204799);
        assert_eq!(a.plan(0, end, 512), Err(Errno::EINVAL));
        assert_eq!(a.plan(0, end - 512, 1024), Err(Errno::EINVAL));
        assert_eq!(a.plan(0, u64::MAX - 511, 512), Err(Errno::EINVAL));
        // Misaligned, empty non-flush, flush/FUA on a read, unknown flags, discard.
        assert_eq!(a.plan(0, 100, 512), Err(Errno::EINVAL));
        assert_eq!(a.plan(0, 512, 100), Err(Errno::EINVAL));
        assert_eq!(a.plan(w, 0, 0), Err(Errno::EINVAL));
        assert_eq!(a.plan(u32::from(IO_FLUSH), 0, 512), Err(Errno::EINVAL));
        assert_eq!(a.plan(u32::from(IO_FUA), 0, 512), Err(Errno::EINVAL));
        assert_eq!(a.plan(1 << 5, 0, 512), Err(Errno::EINVAL));
        assert_eq!(a.plan(1 << 31, 0, 512), Err(Errno::EINVAL));
        // A discard zeroes its range; it needs IO_WRITE and a length, and may carry a
        // preflush and FUA (the write-intent record promotes it like a write).
        let d = w | u32::from(IO_DISCARD);
        assert_eq!(a.plan(d, 131072, 65536), Ok(IoPlan { op: IoOp::Zero, preflush: false, fua: false, sector: 2048 + 256 }));
        assert_eq!(a.plan(u32::from(IO_DISCARD), 0, 512), Err(Errno::EINVAL));
        assert_eq!(a.plan(d, 0, 0), Err(Errno::EINVAL));
        assert_eq!(a.plan(d | u32::from(IO_FUA), 0, 512), Ok(IoPlan { op: IoOp::Zero, preflush: false, fua: true, sector: 2048 }));
        assert_eq!(
            a.plan(d | u32::from(IO_FLUSH | IO_FUA), 0, 512),
            Ok(IoPlan { op: IoOp::Zero, preflush: true, fua: true, sector: 2048 })
        );
        assert_eq!(a.plan(d | u32::from(IO_SYNC), 0, 512), Err(Errno::EINVAL));
        assert_eq!(a.plan(d, end - 512, 1024), Err(Errno::EINVAL));
        // A 4 KiB device needs 4 KiB alignment.
        let b = sample().data_area(4096);
        assert_eq!(b.plan(0, 512, 4096), Err(Errno::EINVAL));
        assert_eq!(b.plan(0, 4096, 512), Err(Errno::EINVAL));
        assert_eq!(b.plan(0, 8192, 4096).unwrap().sector, 2048 + 16);
        // Whatever the input, an accepted IO stays inside the exported space.
        let mut x: u64 = 0x1234_5678_9abc_def1;
        for _ in 0..20000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let off = ((x >> 20) % (end + 4 * 131072)) & !511;
            let len = ((x & 0xff) as u32) * 512;
            if let Ok(p) = a.plan((x >> 8) as u32 & 0x1f, off, len) {
                if p.op != IoOp::Flush {
                    assert!(p.sector >= 2048);
                    assert!((p.sector - 2048) * 512 + u64::from(len) <= end);
                }
            }
        }
    }
}
