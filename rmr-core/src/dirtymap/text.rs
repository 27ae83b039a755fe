// SPDX-License-Identifier: GPL-2.0-or-later
//! Text rendering of dirty maps for sysfs (`map_summary`, SPEC §2.3) into bounded buffers.

use super::*;

impl<S: MapStorage> DirtyMap<S> {
    /// Write `member <id>: [<c> ...] <n>/<total> dirty\n` into `w`, cutting the chunk list
    /// with ` ...]` so that `reserve` bytes stay free after the line; counts stay exact.
    pub fn render_line(&self, w: &mut TextWriter<'_>, reserve: usize) {
        let tail = tail_len(self.count, self.total);
        w.str("member ");
        w.num(u64::from(self.member_id));
        w.str(": [");
        let mut first = true;
        let mut it = self.iter().peekable();
        while let Some(c) = it.next() {
            let sep = usize::from(!first);
            let need = sep + digits(c);
            let after = if it.peek().is_some() { CUT.len() + tail } else { 1 + tail };
            if w.room() < need + after + reserve {
                w.str(CUT);
                w.str_tail(self.count, self.total);
                return;
            }
            if !first {
                w.str(" ");
            }
            w.num(c);
            first = false;
        }
        w.str("]");
        w.str_tail(self.count, self.total);
    }
}

const CUT: &str = " ...]";

/// Length of ` <n>/<total> dirty\n`.
fn tail_len(n: u64, total: u64) -> usize {
    1 + digits(n) + 1 + digits(total) + " dirty\n".len()
}

/// Number of decimal digits of `v`.
pub fn digits(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 10 {
        v /= 10;
        n += 1;
    }
    n
}

/// A bounded text writer into a caller buffer (sysfs page). Output past the end is dropped.
pub struct TextWriter<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> TextWriter<'a> {
    /// A writer over `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        TextWriter { buf, pos: 0 }
    }
    /// Bytes written.
    pub fn len(&self) -> usize {
        self.pos
    }
    /// Nothing written yet.
    pub fn is_empty(&self) -> bool {
        self.pos == 0
    }
    /// Bytes still free.
    pub fn room(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }
    /// Append a string (truncated at the end of the buffer).
    pub fn str(&mut self, s: &str) {
        for b in s.bytes() {
            if let Some(d) = self.buf.get_mut(self.pos) {
                *d = b;
                self.pos += 1;
            }
        }
    }
    /// Append a decimal number.
    pub fn num(&mut self, v: u64) {
        let mut tmp = [0u8; 20];
        let n = digits(v);
        let mut x = v;
        for i in (0..n).rev() {
            if let Some(d) = tmp.get_mut(i) {
                *d = b'0' + (x % 10) as u8;
            }
            x /= 10;
        }
        for b in tmp.iter().take(n) {
            if let Some(d) = self.buf.get_mut(self.pos) {
                *d = *b;
                self.pos += 1;
            }
        }
    }
    fn str_tail(&mut self, n: u64, total: u64) {
        self.str(" ");
        self.num(n);
        self.str("/");
        self.num(total);
        self.str(" dirty\n");
    }
}

/// Render `map_summary` (SPEC §2.3): one line per map in descending `member_id`; a line's chunk
/// list is cut with ` ...]` when the buffer would overflow, leaving room for the other lines.
/// Returns the bytes written.
pub fn render_summary<S: MapStorage>(maps: &[&DirtyMap<S>], out: &mut [u8]) -> usize {
    let mut order: [usize; 8] = [0; 8];
    let n = core::cmp::min(maps.len(), order.len());
    for (i, o) in order.iter_mut().enumerate().take(n) {
        *o = i;
    }
    let ord = order.get_mut(..n).unwrap_or(&mut []);
    // Insertion sort by descending member id (at most 8 entries). Not `sort_unstable`: its
    // code in core trips objtool ("falls through") in the 6.12 kernel build.
    let key = |i: usize| maps.get(i).map_or(0, |m| m.member_id);
    for a in 1..ord.len() {
        let mut b = a;
        while b > 0 && key(ord[b - 1]) < key(ord[b]) {
            ord.swap(b - 1, b);
            b -= 1;
        }
    }
    let mut w = TextWriter::new(out);
    for (k, i) in ord.iter().enumerate() {
        // Minimum room for the remaining lines: `member <id>: [ ...] n/t dirty\n`.
        let reserve: usize = ord
            .iter()
            .skip(k + 1)
            .filter_map(|j| maps.get(*j))
            .map(|m| 7 + digits(u64::from(m.member_id)) + 3 + CUT.len() + tail_len(m.count, m.total))
            .sum();
        if let Some(m) = maps.get(*i) {
            m.render_line(&mut w, reserve);
        }
    }
    w.len()
}
