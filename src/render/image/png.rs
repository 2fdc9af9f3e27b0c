//! PNG out of an RGB buffer, in memory (plotters only writes PNG files).
//! Every row is Up-filtered (a graph's flat colour and vertical grid lines
//! become zeros) and compressed by [`super::deflate`].

use super::deflate::zlib;

/// Encodes `rgb` (`width × height × 3` bytes, rows top down).
pub fn encode_rgb(width: u32, height: u32, rgb: &[u8]) -> Vec<u8> {
    let stride = width as usize * 3;
    let rows = height as usize;
    debug_assert_eq!(rgb.len(), stride * rows);
    let mut filtered = Vec::with_capacity((stride + 1) * rows);
    for y in 0..rows {
        let row = &rgb[y * stride..(y + 1) * stride];
        filtered.push(2);
        if y == 0 {
            filtered.extend_from_slice(row);
        } else {
            let up = &rgb[(y - 1) * stride..y * stride];
            filtered.extend(row.iter().zip(up).map(|(a, b)| a.wrapping_sub(*b)));
        }
    }
    let mut out = Vec::with_capacity(filtered.len() / 8 + 1024);
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

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// CRC-32 (PNG's), eight bytes a step ("slicing by 8").
fn crc32(data: &[u8]) -> u32 {
    static TABLES: std::sync::OnceLock<[[u32; 256]; 8]> = std::sync::OnceLock::new();
    let t = TABLES.get_or_init(|| {
        let mut t = [[0u32; 256]; 8];
        for (n, slot) in t[0].iter_mut().enumerate() {
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
        for k in 1..8 {
            let (done, rest) = t.split_at_mut(k);
            for (slot, prev) in rest[0].iter_mut().zip(done[k - 1].iter()) {
                *slot = (prev >> 8) ^ done[0][(prev & 0xff) as usize];
            }
        }
        t
    });
    let mut c = 0xffff_ffffu32;
    let mut chunks = data.chunks_exact(8);
    for b in &mut chunks {
        let lo = c ^ u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        c = t[7][(lo & 0xff) as usize]
            ^ t[6][((lo >> 8) & 0xff) as usize]
            ^ t[5][((lo >> 16) & 0xff) as usize]
            ^ t[4][(lo >> 24) as usize]
            ^ t[3][usize::from(b[4])]
            ^ t[2][usize::from(b[5])]
            ^ t[1][usize::from(b[6])]
            ^ t[0][usize::from(b[7])];
    }
    for b in chunks.remainder() {
        c = t[0][((c ^ u32::from(*b)) & 0xff) as usize] ^ (c >> 8);
    }
    c ^ 0xffff_ffff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_known_values() {
        assert_eq!(crc32(b"IEND"), 0xae42_6082);
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b""), 0);
        assert_eq!(
            crc32(b"The quick brown fox jumps over the lazy dog"),
            0x414f_a339
        );
    }

    #[test]
    fn png_layout_and_pixels() {
        let (w, h) = (7u32, 5u32);
        let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i * 13 % 256) as u8).collect();
        let png = encode_rgb(w, h, &rgb);
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&png[12..16], b"IHDR");
        assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), w);
        assert_eq!(u32::from_be_bytes(png[20..24].try_into().unwrap()), h);
        // 8-bit RGB.
        assert_eq!(&png[24..26], &[8, 2]);
        assert_eq!(&png[png.len() - 8..png.len() - 4], b"IEND");
        let idat_len = u32::from_be_bytes(png[33..37].try_into().unwrap()) as usize;
        assert_eq!(&png[37..41], b"IDAT");
        let crc = u32::from_be_bytes(png[41 + idat_len..45 + idat_len].try_into().unwrap());
        assert_eq!(crc, crc32(&png[37..41 + idat_len]));
        // Undo the Up filter and compare with the pixels.
        let raw = super::super::deflate::tests::inflate(&png[41..41 + idat_len]);
        let stride = w as usize * 3;
        let mut prev = vec![0u8; stride];
        for y in 0..h as usize {
            assert_eq!(raw[y * (stride + 1)], 2);
            let row: Vec<u8> = raw[y * (stride + 1) + 1..(y + 1) * (stride + 1)]
                .iter()
                .zip(&prev)
                .map(|(f, p)| f.wrapping_add(*p))
                .collect();
            assert_eq!(&row[..], &rgb[y * stride..(y + 1) * stride]);
            prev = row;
        }
    }
}
