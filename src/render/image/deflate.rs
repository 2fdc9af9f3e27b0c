//! A zlib stream (RFC 1950/1951) for the PNG encoder: greedy LZ77 that
//! looks first at the byte and the pixel before (flat colour after PNG's
//! Up filter is long runs of zeros), then at one hashed earlier position;
//! blocks of up to 64 K symbols, each with Huffman codes built for it.

const WINDOW: usize = 32_768;
const MAX_MATCH: usize = 258;
const HASH_BITS: u32 = 12;
const BLOCK_SYMBOLS: usize = 65_536;
const MATCH: u32 = 1 << 31;

const LEN_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LEN_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
const DIST_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
const DIST_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];
/// The order code-length code lengths are sent in.
const CL_ORDER: [usize; 19] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];

/// Compresses `data` into a zlib stream.
pub fn zlib(data: &[u8]) -> Vec<u8> {
    let mut bits = Bits {
        out: Vec::with_capacity(data.len() / 8 + 64),
        acc: 0,
        n: 0,
    };
    // CMF/FLG: deflate, 32 K window, default level, check bits.
    bits.out.extend_from_slice(&[0x78, 0x9c]);
    let mut tokens: Vec<u32> = Vec::with_capacity(BLOCK_SYMBOLS);
    let mut head = vec![u32::MAX; 1 << HASH_BITS];
    let n = data.len();
    let mut i = 0;
    while i < n {
        let max = MAX_MATCH.min(n - i);
        let mut best = (0usize, 0usize);
        if max >= 3 {
            for d in [1, 3] {
                if i >= d {
                    let l = match_len(data, i - d, i, max);
                    if l > best.0 {
                        best = (l, d);
                    }
                }
            }
            let h = hash(data, i);
            if best.0 < 32 {
                let c = head[h] as usize;
                if c < i && i - c <= WINDOW {
                    let l = match_len(data, c, i, max);
                    if l > best.0 {
                        best = (l, i - c);
                    }
                }
            }
            head[h] = i as u32;
        }
        if best.0 >= 3 {
            tokens.push(MATCH | (best.0 as u32) << 16 | best.1 as u32);
            // Index a few positions inside the match; runs need none.
            let end = i + best.0;
            let mut j = i + 1;
            while j < end.min(i + 8) && j + 3 <= n {
                head[hash(data, j)] = j as u32;
                j += 1;
            }
            i = end;
        } else {
            tokens.push(u32::from(data[i]));
            i += 1;
        }
        if tokens.len() >= BLOCK_SYMBOLS {
            block(&mut bits, &tokens, false);
            tokens.clear();
        }
    }
    block(&mut bits, &tokens, true);
    let mut out = bits.finish();
    out.extend_from_slice(&adler32(data).to_be_bytes());
    out
}

fn hash(d: &[u8], i: usize) -> usize {
    let v = u32::from(d[i]) | u32::from(d[i + 1]) << 8 | u32::from(d[i + 2]) << 16;
    (v.wrapping_mul(0x9e37_79b1) >> (32 - HASH_BITS)) as usize
}

/// How many bytes at `b` repeat those at `a` (a < b), up to `max`.
fn match_len(d: &[u8], a: usize, b: usize, max: usize) -> usize {
    let (x, y) = (&d[a..a + max], &d[b..b + max]);
    let mut l = 0;
    while l + 8 <= max {
        let p = u64::from_le_bytes(x[l..l + 8].try_into().unwrap_or([0; 8]));
        let q = u64::from_le_bytes(y[l..l + 8].try_into().unwrap_or([0; 8]));
        let diff = p ^ q;
        if diff != 0 {
            return l + (diff.trailing_zeros() / 8) as usize;
        }
        l += 8;
    }
    while l < max && x[l] == y[l] {
        l += 1;
    }
    l
}

pub(crate) fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65_521;
    let (mut a, mut b) = (1u32, 0u32);
    // 5552 bytes is the most that cannot overflow before the modulo.
    for block in data.chunks(5552) {
        for x in block {
            a += u32::from(*x);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

/// Bits out, least significant first (deflate's order).
struct Bits {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl Bits {
    #[inline]
    fn put(&mut self, value: u32, count: u32) {
        self.acc |= u64::from(value) << self.n;
        self.n += count;
        if self.n >= 32 {
            self.out.extend_from_slice(&(self.acc as u32).to_le_bytes());
            self.acc >>= 32;
            self.n -= 32;
        }
    }

    fn finish(mut self) -> Vec<u8> {
        while self.n > 0 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n = self.n.saturating_sub(8);
        }
        self.out
    }
}

/// Length (3..=258) to its symbol index, by table.
const LEN_SYM: [u8; 259] = {
    let mut t = [0u8; 259];
    let mut s = 0;
    let mut len = 3;
    while len <= 258 {
        while s + 1 < 29 && LEN_BASE[s + 1] as usize <= len {
            s += 1;
        }
        t[len] = s as u8;
        len += 1;
    }
    t
};

/// Distance to its symbol index: by `d - 1` up to 256, by `(d - 1) >> 7`
/// beyond (every symbol past 256 spans a multiple of 128).
const DIST_SYM: [u8; 512] = {
    let mut t = [0u8; 512];
    let mut s = 0;
    let mut d = 1;
    while d <= 256 {
        while s + 1 < 30 && DIST_BASE[s + 1] as usize <= d {
            s += 1;
        }
        t[d - 1] = s as u8;
        d += 1;
    }
    let mut k = 2;
    while k < 256 {
        let d = (k << 7) + 1;
        while s + 1 < 30 && DIST_BASE[s + 1] as usize <= d {
            s += 1;
        }
        t[256 + k] = s as u8;
        k += 1;
    }
    t
};

#[inline]
fn len_symbol(len: usize) -> usize {
    usize::from(LEN_SYM[len])
}

#[inline]
fn dist_symbol(dist: usize) -> usize {
    if dist <= 256 {
        usize::from(DIST_SYM[dist - 1])
    } else {
        usize::from(DIST_SYM[256 + ((dist - 1) >> 7)])
    }
}

/// A Huffman code: per symbol its length and its bits, reversed ready for
/// LSB-first output.
struct Code {
    len: Vec<u8>,
    bits: Vec<u32>,
}

impl Code {
    fn new(freq: &[u32], limit: u8) -> Code {
        let len = code_lengths(freq, limit);
        let bits = canonical(&len);
        Code { len, bits }
    }

    #[inline]
    fn put(&self, out: &mut Bits, sym: usize) {
        out.put(self.bits[sym], u32::from(self.len[sym]));
    }
}

/// Makes sure at least two symbols have a code (a code of one symbol is
/// incomplete, which inflaters refuse).
fn at_least_two(freq: &mut [u32]) {
    let mut used = freq.iter().filter(|f| **f > 0).count();
    for f in freq.iter_mut() {
        if used >= 2 {
            break;
        }
        if *f == 0 {
            *f = 1;
            used += 1;
        }
    }
}

/// Code lengths of at most `limit` bits for symbols of the given
/// frequencies (zero-frequency symbols get none): a Huffman tree's depths,
/// then the over-long codes pushed up and the Kraft sum restored.
fn code_lengths(freq: &[u32], limit: u8) -> Vec<u8> {
    let mut lens = vec![0u8; freq.len()];
    let mut used: Vec<usize> = (0..freq.len()).filter(|s| freq[*s] > 0).collect();
    match used.len() {
        0 => return lens,
        1 => {
            lens[used[0]] = 1;
            return lens;
        }
        _ => {}
    }
    // Huffman's merging; nodes past the leaves are internal.
    let leaves = used.len();
    let mut parent = vec![usize::MAX; 2 * leaves];
    let mut heap: std::collections::BinaryHeap<std::cmp::Reverse<(u64, usize)>> = used
        .iter()
        .enumerate()
        .map(|(k, s)| std::cmp::Reverse((u64::from(freq[*s]), k)))
        .collect();
    let mut next = leaves;
    while heap.len() > 1 {
        let std::cmp::Reverse((fa, a)) = heap.pop().unwrap_or(std::cmp::Reverse((0, 0)));
        let std::cmp::Reverse((fb, b)) = heap.pop().unwrap_or(std::cmp::Reverse((0, 0)));
        parent[a] = next;
        parent[b] = next;
        heap.push(std::cmp::Reverse((fa + fb, next)));
        next += 1;
    }
    let depth = |mut k: usize| {
        let mut d = 0usize;
        while parent[k] != usize::MAX {
            k = parent[k];
            d += 1;
        }
        d
    };
    let limit = usize::from(limit);
    let mut count = vec![0usize; limit + 1];
    for k in 0..leaves {
        count[depth(k).min(limit)] += 1;
    }
    // Clamping to `limit` can oversubscribe the code; move leaves down
    // from a shorter length until the Kraft sum is exactly one.
    let kraft = |count: &[usize]| -> usize { (1..=limit).map(|l| count[l] << (limit - l)).sum() };
    let mut total = kraft(&count);
    while total > 1 << limit && count[limit] > 0 {
        count[limit] -= 1;
        if let Some(l) = (1..limit).rev().find(|l| count[*l] > 0) {
            count[l] -= 1;
            count[l + 1] += 2;
        }
        total = kraft(&count);
    }
    // Most frequent symbols get the shortest codes.
    used.sort_by(|a, b| freq[*b].cmp(&freq[*a]).then(a.cmp(b)));
    let mut it = used.into_iter();
    for (l, c) in count.iter().enumerate().skip(1) {
        for _ in 0..*c {
            if let Some(s) = it.next() {
                lens[s] = l as u8;
            }
        }
    }
    lens
}

/// RFC 1951 §3.2.2 canonical codes, bit-reversed.
fn canonical(lens: &[u8]) -> Vec<u32> {
    let max = usize::from(lens.iter().copied().max().unwrap_or(0));
    let mut count = vec![0u32; max + 2];
    for l in lens {
        count[usize::from(*l)] += 1;
    }
    count[0] = 0;
    let mut next = vec![0u32; max + 2];
    let mut code = 0u32;
    for bits in 1..=max {
        code = (code + count[bits - 1]) << 1;
        next[bits] = code;
    }
    lens.iter()
        .map(|l| {
            let l = usize::from(*l);
            if l == 0 {
                return 0;
            }
            let c = next[l];
            next[l] += 1;
            c.reverse_bits() >> (32 - l)
        })
        .collect()
}

/// Run-length form of a code-length list: (symbol, extra bits value).
fn rle(lens: &[u8]) -> Vec<(u8, u8)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < lens.len() {
        let l = lens[i];
        let mut run = lens[i..].iter().take_while(|x| **x == l).count();
        i += run;
        if l == 0 {
            while run >= 11 {
                let r = run.min(138);
                out.push((18, (r - 11) as u8));
                run -= r;
            }
            if run >= 3 {
                out.push((17, (run - 3) as u8));
                run = 0;
            }
        } else {
            out.push((l, 0));
            run -= 1;
            while run >= 3 {
                let r = run.min(6);
                out.push((16, (r - 3) as u8));
                run -= r;
            }
        }
        out.extend(std::iter::repeat_n((l, 0), run));
    }
    out
}

/// One block with its own dynamic Huffman codes.
fn block(out: &mut Bits, tokens: &[u32], last: bool) {
    let mut lit_freq = vec![0u32; 286];
    let mut dist_freq = vec![0u32; 30];
    for t in tokens {
        if t & MATCH != 0 {
            lit_freq[257 + len_symbol(((t >> 16) & 0x1ff) as usize)] += 1;
            dist_freq[dist_symbol((t & 0xffff) as usize)] += 1;
        } else {
            lit_freq[*t as usize] += 1;
        }
    }
    lit_freq[256] = 1;
    at_least_two(&mut lit_freq);
    at_least_two(&mut dist_freq);
    let lit = Code::new(&lit_freq, 15);
    let dist = Code::new(&dist_freq, 15);
    let hlit = 257.max(286 - lit.len.iter().rev().take_while(|l| **l == 0).count());
    let hdist = 1.max(30 - dist.len.iter().rev().take_while(|l| **l == 0).count());
    let mut all = lit.len[..hlit].to_vec();
    all.extend_from_slice(&dist.len[..hdist]);
    let runs = rle(&all);
    let mut cl_freq = vec![0u32; 19];
    for (s, _) in &runs {
        cl_freq[usize::from(*s)] += 1;
    }
    at_least_two(&mut cl_freq);
    let cl = Code::new(&cl_freq, 7);
    let hclen = 4.max(
        19 - CL_ORDER
            .iter()
            .rev()
            .take_while(|s| cl.len[**s] == 0)
            .count(),
    );

    out.put(u32::from(last), 1);
    out.put(2, 2);
    out.put((hlit - 257) as u32, 5);
    out.put((hdist - 1) as u32, 5);
    out.put((hclen - 4) as u32, 4);
    for s in &CL_ORDER[..hclen] {
        out.put(u32::from(cl.len[*s]), 3);
    }
    for (s, extra) in runs {
        cl.put(out, usize::from(s));
        match s {
            16 => out.put(u32::from(extra), 2),
            17 => out.put(u32::from(extra), 3),
            18 => out.put(u32::from(extra), 7),
            _ => {}
        }
    }
    for t in tokens {
        if t & MATCH != 0 {
            let len = ((t >> 16) & 0x1ff) as usize;
            let d = (t & 0xffff) as usize;
            let ls = len_symbol(len);
            lit.put(out, 257 + ls);
            if LEN_EXTRA[ls] > 0 {
                out.put(
                    (len - usize::from(LEN_BASE[ls])) as u32,
                    u32::from(LEN_EXTRA[ls]),
                );
            }
            let ds = dist_symbol(d);
            dist.put(out, ds);
            if DIST_EXTRA[ds] > 0 {
                out.put(
                    (d - usize::from(DIST_BASE[ds])) as u32,
                    u32::from(DIST_EXTRA[ds]),
                );
            }
        } else {
            lit.put(out, *t as usize);
        }
    }
    lit.put(out, 256);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A reader of deflate streams (stored, fixed and dynamic blocks),
    /// written from RFC 1951 to check the encoder.
    pub(crate) fn inflate(z: &[u8]) -> Vec<u8> {
        assert_eq!(
            (u16::from(z[0]) << 8 | u16::from(z[1])) % 31,
            0,
            "zlib header"
        );
        let d = &z[2..z.len() - 4];
        let mut pos = 0usize;
        let mut bit = |n: u32| -> usize {
            let mut v = 0usize;
            for k in 0..n {
                v |= usize::from((d[pos / 8] >> (pos % 8)) & 1) << k;
                pos += 1;
            }
            v
        };
        // Decoding table: (length, code) → symbol, codes read MSB first.
        let table = |lens: &[u8]| -> std::collections::HashMap<(u8, u32), usize> {
            let codes = canonical(lens);
            lens.iter()
                .enumerate()
                .filter(|(_, l)| **l > 0)
                .map(|(s, l)| ((*l, codes[s].reverse_bits() >> (32 - u32::from(*l))), s))
                .collect()
        };
        let mut out: Vec<u8> = Vec::new();
        loop {
            let last = bit(1);
            let kind = bit(2);
            assert!(kind == 1 || kind == 2, "block type {kind}");
            let (lit, dist) = if kind == 1 {
                let mut l = vec![8u8; 288];
                l[144..256].fill(9);
                l[256..280].fill(7);
                (table(&l), table(&[5u8; 30]))
            } else {
                let hlit = bit(5) + 257;
                let hdist = bit(5) + 1;
                let hclen = bit(4) + 4;
                let mut cl = [0u8; 19];
                for s in &CL_ORDER[..hclen] {
                    cl[*s] = bit(3) as u8;
                }
                let clt = table(&cl);
                let mut lens: Vec<u8> = Vec::new();
                while lens.len() < hlit + hdist {
                    let (mut code, mut len) = (0u32, 0u8);
                    let sym = loop {
                        code = (code << 1) | bit(1) as u32;
                        len += 1;
                        if let Some(s) = clt.get(&(len, code)) {
                            break *s;
                        }
                        assert!(len < 8, "bad code-length code");
                    };
                    match sym {
                        0..=15 => lens.push(sym as u8),
                        16 => {
                            let p = *lens.last().unwrap();
                            let r = 3 + bit(2);
                            lens.extend(std::iter::repeat_n(p, r));
                        }
                        17 => {
                            let r = 3 + bit(3);
                            lens.extend(std::iter::repeat_n(0, r));
                        }
                        _ => {
                            let r = 11 + bit(7);
                            lens.extend(std::iter::repeat_n(0, r));
                        }
                    }
                }
                assert_eq!(lens.len(), hlit + hdist);
                (table(&lens[..hlit]), table(&lens[hlit..]))
            };
            let read = |t: &std::collections::HashMap<(u8, u32), usize>,
                        bit: &mut dyn FnMut(u32) -> usize| {
                let (mut code, mut len) = (0u32, 0u8);
                loop {
                    code = (code << 1) | bit(1) as u32;
                    len += 1;
                    if let Some(s) = t.get(&(len, code)) {
                        return *s;
                    }
                    assert!(len < 16, "bad code");
                }
            };
            loop {
                let sym = read(&lit, &mut bit);
                if sym < 256 {
                    out.push(sym as u8);
                    continue;
                }
                if sym == 256 {
                    break;
                }
                let li = sym - 257;
                let len = usize::from(LEN_BASE[li]) + bit(u32::from(LEN_EXTRA[li]));
                let di = read(&dist, &mut bit);
                let dd = usize::from(DIST_BASE[di]) + bit(u32::from(DIST_EXTRA[di]));
                for _ in 0..len {
                    out.push(out[out.len() - dd]);
                }
            }
            if last == 1 {
                break;
            }
        }
        let tail = u32::from_be_bytes(z[z.len() - 4..].try_into().unwrap());
        assert_eq!(tail, adler32(&out), "adler32");
        out
    }

    #[test]
    fn adler_matches_a_known_value() {
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
    }

    #[test]
    fn round_trips() {
        let mut data = vec![0u8; 5000];
        data.extend((0..3000u32).map(|i| (i * 7 % 251) as u8));
        data.extend(std::iter::repeat_n(9u8, 700));
        data.extend_from_slice(b"abcabcabcabcxyz");
        // Enough to span several blocks, with a skewed alphabet.
        let mut x = 12345u32;
        for _ in 0..200_000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            data.push(((x >> 16) % 7) as u8 * ((x >> 24) % 3) as u8);
        }
        let z = zlib(&data);
        assert_eq!(inflate(&z), data);
        assert!(z.len() < data.len() / 2);
        for small in [&b""[..], b"a", b"ab", b"aaaa"] {
            assert_eq!(inflate(&zlib(small)), small);
        }
    }

    #[test]
    fn lengths_respect_the_limit_and_kraft() {
        // Fibonacci frequencies make a maximally deep tree.
        let mut f = vec![1u32, 1];
        while f.len() < 30 {
            let k = f.len();
            f.push(f[k - 1] + f[k - 2]);
        }
        let l = code_lengths(&f, 7);
        assert!(l.iter().all(|x| (1..=7).contains(x)));
        let kraft: f64 = l.iter().map(|x| 0.5f64.powi(i32::from(*x))).sum();
        assert!((kraft - 1.0).abs() < 1e-12, "{kraft}");
        assert_eq!(rle(&[0; 20]), vec![(18, 9)]);
        assert_eq!(rle(&[5, 5, 5, 5, 5]), vec![(5, 0), (16, 1)]);
        assert_eq!(rle(&[3, 0, 0]), vec![(3, 0), (0, 0), (0, 0)]);
    }

    #[test]
    fn symbol_tables_match_the_rfc_ranges() {
        for len in 3..=258 {
            let s = len_symbol(len);
            assert!(usize::from(LEN_BASE[s]) <= len);
            assert!(len < usize::from(LEN_BASE[s]) + (1 << LEN_EXTRA[s]) || len == 258);
        }
        assert_eq!(len_symbol(258), 28);
        for d in 1..=32_768 {
            let s = dist_symbol(d);
            assert!(usize::from(DIST_BASE[s]) <= d, "{d}");
            assert!(d < usize::from(DIST_BASE[s]) + (1 << DIST_EXTRA[s]), "{d}");
        }
    }
}
