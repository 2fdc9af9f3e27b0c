//! PNG out of an RGB buffer, in memory. plotters only writes PNG files
//! (through the `image` crate), so this is a small encoder of its own:
//! per-row filters chosen by the usual least-sum heuristic, and a deflate
//! stream of fixed-Huffman LZ77 — graphs are mostly flat colour, which
//! this squeezes to a few KB, quickly.

/// Encodes `rgb` (`width × height × 3` bytes, rows top down).
pub fn encode_rgb(width: u32, height: u32, rgb: &[u8]) -> Vec<u8> {
    let stride = width as usize * 3;
    let rows = height as usize;
    debug_assert_eq!(rgb.len(), stride * rows);
    let mut filtered = Vec::with_capacity((stride + 1) * rows);
    let zero = vec![0u8; stride];
    let mut cand = [vec![0u8; stride], vec![0u8; stride], vec![0u8; stride]];
    for y in 0..rows {
        let row = &rgb[y * stride..(y + 1) * stride];
        let up = if y == 0 {
            &zero[..]
        } else {
            &rgb[(y - 1) * stride..y * stride]
        };
        // 1 = Sub, 2 = Up, 4 = Paeth; 0 = None scored on the raw row.
        for i in 0..stride {
            let a = if i >= 3 { row[i - 3] } else { 0 };
            let b = up[i];
            let c = if i >= 3 { up[i - 3] } else { 0 };
            cand[0][i] = row[i].wrapping_sub(a);
            cand[1][i] = row[i].wrapping_sub(b);
            cand[2][i] = row[i].wrapping_sub(paeth(a, b, c));
        }
        let score =
            |v: &[u8]| -> u64 { v.iter().map(|b| u64::from((*b as i8).unsigned_abs())).sum() };
        let mut best = (score(row), 0u8, row);
        for (k, f) in [(1u8, &cand[0]), (2, &cand[1]), (4, &cand[2])] {
            let s = score(f);
            if s < best.0 {
                best = (s, k, &f[..]);
            }
        }
        filtered.push(best.1);
        filtered.extend_from_slice(best.2);
    }
    let mut out = Vec::with_capacity(filtered.len() / 20 + 1024);
    out.extend_from_slice(&[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a]);
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    // 8-bit RGB, deflate, adaptive filtering, no interlace.
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &zlib(&filtered));
    chunk(&mut out, b"IEND", &[]);
    out
}

fn paeth(a: u8, b: u8, c: u8) -> u8 {
    let p = i16::from(a) + i16::from(b) - i16::from(c);
    let (pa, pb, pc) = (
        (p - i16::from(a)).abs(),
        (p - i16::from(b)).abs(),
        (p - i16::from(c)).abs(),
    );
    if pa <= pb && pa <= pc {
        a
    } else if pb <= pc {
        b
    } else {
        c
    }
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

fn crc32(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (n, slot) in t.iter_mut().enumerate() {
            let mut c = n as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *slot = c;
        }
        t
    });
    let mut c = 0xffff_ffffu32;
    for b in data {
        c = table[((c ^ u32::from(*b)) & 0xff) as usize] ^ (c >> 8);
    }
    c ^ 0xffff_ffff
}

fn adler32(data: &[u8]) -> u32 {
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
    fn put(&mut self, value: u32, count: u32) {
        self.acc |= u64::from(value) << self.n;
        self.n += count;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    /// A Huffman code, which deflate sends most significant bit first.
    fn code(&mut self, code: u32, len: u32) {
        self.put(code.reverse_bits() >> (32 - len), len);
    }

    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

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

/// The fixed Huffman code of a literal/length symbol.
fn lit(bits: &mut Bits, sym: u32) {
    match sym {
        0..=143 => bits.code(0x30 + sym, 8),
        144..=255 => bits.code(0x190 + sym - 144, 9),
        256..=279 => bits.code(sym - 256, 7),
        _ => bits.code(0xc0 + sym - 280, 8),
    }
}

fn length(bits: &mut Bits, len: usize) {
    let i = LEN_BASE.partition_point(|b| usize::from(*b) <= len) - 1;
    lit(bits, 257 + i as u32);
    if LEN_EXTRA[i] > 0 {
        bits.put(
            (len - usize::from(LEN_BASE[i])) as u32,
            u32::from(LEN_EXTRA[i]),
        );
    }
}

fn distance(bits: &mut Bits, dist: usize) {
    let i = DIST_BASE.partition_point(|b| usize::from(*b) <= dist) - 1;
    bits.code(i as u32, 5);
    if DIST_EXTRA[i] > 0 {
        bits.put(
            (dist - usize::from(DIST_BASE[i])) as u32,
            u32::from(DIST_EXTRA[i]),
        );
    }
}

const WINDOW: usize = 32_768;
const MAX_MATCH: usize = 258;
const HASH_BITS: u32 = 15;

fn hash(d: &[u8], i: usize) -> usize {
    let v = u32::from(d[i]) | u32::from(d[i + 1]) << 8 | u32::from(d[i + 2]) << 16;
    (v.wrapping_mul(0x9e37_79b1) >> (32 - HASH_BITS)) as usize
}

/// A zlib stream: one fixed-Huffman deflate block, greedy matches found
/// through a one-entry hash table.
fn zlib(data: &[u8]) -> Vec<u8> {
    let mut bits = Bits {
        out: Vec::with_capacity(data.len() / 16 + 64),
        acc: 0,
        n: 0,
    };
    // CMF/FLG: deflate, 32 K window, no dictionary, check bits.
    bits.out.extend_from_slice(&[0x78, 0x01]);
    bits.put(1, 1); // last block
    bits.put(1, 2); // fixed Huffman
    let mut head = vec![usize::MAX; 1 << HASH_BITS];
    let n = data.len();
    let mut i = 0;
    while i < n {
        let mut best = (0usize, 0usize);
        if i + 3 <= n {
            let h = hash(data, i);
            let cand = head[h];
            head[h] = i;
            // The previous byte is the likeliest match in flat colour.
            for c in [i.wrapping_sub(1), i.wrapping_sub(3), cand] {
                if c < i && i - c <= WINDOW {
                    let max = MAX_MATCH.min(n - i);
                    let mut l = 0;
                    while l < max && data[c + l] == data[i + l] {
                        l += 1;
                    }
                    if l > best.0 {
                        best = (l, i - c);
                    }
                }
            }
        }
        if best.0 >= 3 {
            length(&mut bits, best.0);
            distance(&mut bits, best.1);
            // Index a few positions inside the match; flat runs need none.
            let end = i + best.0;
            let mut j = i + 1;
            while j < end.min(i + 16) && j + 3 <= n {
                head[hash(data, j)] = j;
                j += 1;
            }
            i = end;
        } else {
            lit(&mut bits, u32::from(data[i]));
            i += 1;
        }
    }
    lit(&mut bits, 256);
    let mut out = bits.finish();
    out.extend_from_slice(&adler32(data).to_be_bytes());
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small inflate for fixed-Huffman blocks, to check the encoder
    /// round-trips (decoding follows RFC 1951's tables, written apart).
    pub(crate) fn inflate_fixed(z: &[u8]) -> Vec<u8> {
        let d = &z[2..z.len() - 4];
        let mut pos = 0usize;
        let mut bit = |n: u32| -> u32 {
            let mut v = 0;
            for k in 0..n {
                let b = (d[pos / 8] >> (pos % 8)) & 1;
                v |= u32::from(b) << k;
                pos += 1;
            }
            v
        };
        assert_eq!(bit(1), 1);
        assert_eq!(bit(2), 1);
        let mut out: Vec<u8> = Vec::new();
        loop {
            // Read a fixed code MSB-first: 7 bits, then maybe 8 or 9.
            let mut code = 0u32;
            for _ in 0..7 {
                code = (code << 1) | bit(1);
            }
            let sym = if code <= 0b0010111 {
                256 + code
            } else {
                code = (code << 1) | bit(1);
                if (0x30..=0xbf).contains(&code) {
                    code - 0x30
                } else if (0xc0..=0xc7).contains(&code) {
                    280 + code - 0xc0
                } else {
                    code = (code << 1) | bit(1);
                    144 + code - 0x190
                }
            };
            if sym < 256 {
                out.push(sym as u8);
                continue;
            }
            if sym == 256 {
                break;
            }
            let li = (sym - 257) as usize;
            let len = usize::from(LEN_BASE[li]) + bit(u32::from(LEN_EXTRA[li])) as usize;
            let mut dc = 0u32;
            for _ in 0..5 {
                dc = (dc << 1) | bit(1);
            }
            let di = dc as usize;
            let dist = usize::from(DIST_BASE[di]) + bit(u32::from(DIST_EXTRA[di])) as usize;
            for _ in 0..len {
                let b = out[out.len() - dist];
                out.push(b);
            }
        }
        out
    }

    #[test]
    fn checksums_match_known_values() {
        assert_eq!(crc32(b"IEND"), 0xae42_6082);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
    }

    #[test]
    fn deflate_round_trips() {
        let mut data = vec![0u8; 5000];
        data.extend((0..3000u32).map(|i| (i * 7 % 251) as u8));
        data.extend(std::iter::repeat_n(9u8, 700));
        data.extend_from_slice(b"abcabcabcabcxyz");
        let z = zlib(&data);
        assert_eq!((u16::from(z[0]) << 8 | u16::from(z[1])) % 31, 0);
        assert_eq!(inflate_fixed(&z), data);
        assert!(z.len() < data.len() / 2);
        let tail = u32::from_be_bytes(z[z.len() - 4..].try_into().unwrap());
        assert_eq!(tail, adler32(&data));
    }

    #[test]
    fn png_layout() {
        let (w, h) = (7u32, 5u32);
        let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i * 13 % 256) as u8).collect();
        let png = encode_rgb(w, h, &rgb);
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&png[12..16], b"IHDR");
        assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), w);
        assert_eq!(u32::from_be_bytes(png[20..24].try_into().unwrap()), h);
        assert_eq!(&png[png.len() - 8..png.len() - 4], b"IEND");
        // Undo the filters and compare with the pixels.
        let idat_len = u32::from_be_bytes(png[33..37].try_into().unwrap()) as usize;
        assert_eq!(&png[37..41], b"IDAT");
        let raw = inflate_fixed(&png[41..41 + idat_len]);
        let stride = w as usize * 3;
        let mut prev = vec![0u8; stride];
        for y in 0..h as usize {
            let f = raw[y * (stride + 1)];
            let mut row = raw[y * (stride + 1) + 1..(y + 1) * (stride + 1)].to_vec();
            for i in 0..stride {
                let a = if i >= 3 { row[i - 3] } else { 0 };
                let b = prev[i];
                let c = if i >= 3 { prev[i - 3] } else { 0 };
                row[i] = row[i].wrapping_add(match f {
                    0 => 0,
                    1 => a,
                    2 => b,
                    4 => paeth(a, b, c),
                    other => panic!("filter {other}"),
                });
            }
            assert_eq!(&row[..], &rgb[y * stride..(y + 1) * stride]);
            prev = row;
        }
    }
}
