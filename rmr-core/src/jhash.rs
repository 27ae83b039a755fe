// SPDX-License-Identifier: GPL-2.0-or-later
//! Bob Jenkins' lookup3 hash as the kernel's `jhash()` computes it; `group_id = jhash(name, len, 0)`.

const JHASH_INITVAL: u32 = 0xdead_beef;

#[inline]
fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(4);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(6);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(8);
    *b = b.wrapping_add(*a);
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(16);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(19);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(4);
    *b = b.wrapping_add(*a);
}

#[inline]
fn final_mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(14));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(11));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(25));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(16));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(4));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(14));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(24));
}

fn le32(k: &[u8]) -> u32 {
    let mut v = 0u32;
    for (i, b) in k.iter().take(4).enumerate() {
        v |= u32::from(*b) << (8 * i);
    }
    v
}

/// `jhash(key, length, initval)` exactly as `include/linux/jhash.h` (little-endian byte order).
pub fn jhash(key: &[u8], initval: u32) -> u32 {
    // The kernel takes a u32 length; names are bounded far below that.
    let len = key.len() as u32;
    let mut a = JHASH_INITVAL.wrapping_add(len).wrapping_add(initval);
    let mut b = a;
    let mut c = a;
    let mut k = key;
    while k.len() > 12 {
        a = a.wrapping_add(le32(&k[0..4]));
        b = b.wrapping_add(le32(&k[4..8]));
        c = c.wrapping_add(le32(&k[8..12]));
        mix(&mut a, &mut b, &mut c);
        k = &k[12..];
    }
    if k.is_empty() {
        return c;
    }
    // Tail of 1..=12 bytes: zero-padded words, as the kernel's switch fall-through adds them.
    let mut tail = [0u8; 12];
    tail[..k.len()].copy_from_slice(k);
    a = a.wrapping_add(le32(&tail[0..4]));
    b = b.wrapping_add(le32(&tail[4..8]));
    c = c.wrapping_add(le32(&tail[8..12]));
    final_mix(&mut a, &mut b, &mut c);
    c
}

/// The pool's `group_id`: `jhash(name, strlen(name), 0)`.
pub fn group_id(pool_name: &[u8]) -> u32 {
    jhash(pool_name, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_key_returns_initial_c() {
        assert_eq!(jhash(b"", 0), JHASH_INITVAL);
    }

    #[test]
    fn matches_the_kernel() {
        // Values computed with include/linux/jhash.h of Linux 6.12 (and ionos_pool's group_id
        // as rmr.ko logs it).
        assert_eq!(group_id(b"ionos_pool"), 0x7d91_f4dd);
        assert_eq!(group_id(b"a"), 0x58d6_8708);
        assert_eq!(group_id(b"abcdefghijkl"), 0x4012_f87b);
        assert_eq!(group_id(b"abcdefghijklm"), 0x9281_28f9);
        assert_eq!(group_id(b"p12345678901234567890123"), 0x9798_9b26);
    }

    #[test]
    fn distinct_names_differ() {
        assert_ne!(group_id(b"ionos_pool"), group_id(b"ionos_poom"));
        assert_ne!(group_id(b"abcdefghijkl"), group_id(b"abcdefghijklm"));
    }
}
