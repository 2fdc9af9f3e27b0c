//! Rows: the points of one series in one archive over one row span, and the
//! keys they are stored under. The byte layout is specified in
//! docs/storage-format.md; this module is its only reader and writer.
//!
//! A row is a run-length list of the slots that hold a point followed by the
//! values of those slots, compressed with pco. Regular timestamps cost
//! nothing (a full row's presence list is four bytes); values cost what pco
//! makes of them (well under a byte for counters, rates and gauges).

use thiserror::Error;

/// Row key: schema (u16), archive (u8), row start (u32), series (u32), all
/// big-endian, so one archive's rows sort by time and retention is one
/// range delete per archive.
pub const KEY_LEN: usize = 11;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RowKey {
    pub schema: u16,
    pub archive: u8,
    pub start: u32,
    pub series: u32,
}

impl RowKey {
    pub fn encode(&self) -> [u8; KEY_LEN] {
        let mut k = [0u8; KEY_LEN];
        k[0..2].copy_from_slice(&self.schema.to_be_bytes());
        k[2] = self.archive;
        k[3..7].copy_from_slice(&self.start.to_be_bytes());
        k[7..11].copy_from_slice(&self.series.to_be_bytes());
        k
    }

    pub fn decode(k: &[u8]) -> Option<RowKey> {
        if k.len() != KEY_LEN {
            return None;
        }
        Some(RowKey {
            schema: u16::from_be_bytes([k[0], k[1]]),
            archive: k[2],
            start: u32::from_be_bytes([k[3], k[4], k[5], k[6]]),
            series: u32::from_be_bytes([k[7], k[8], k[9], k[10]]),
        })
    }

    /// The first key of an archive's rows starting at `start`.
    pub fn prefix(schema: u16, archive: u8, start: u32) -> [u8; KEY_LEN] {
        RowKey {
            schema,
            archive,
            start,
            series: 0,
        }
        .encode()
    }
}

#[derive(Debug, Error, PartialEq)]
pub enum RowError {
    #[error("row is empty")]
    Empty,
    #[error("unknown row format {0}")]
    Format(u8),
    #[error("row is truncated")]
    Truncated,
    #[error("row presence list overflows {0} slots")]
    Overflow(usize),
    #[error("row values do not match its presence list ({got} values for {want} slots)")]
    Count { got: usize, want: usize },
    #[error("row values cannot be decompressed: {0}")]
    Pco(String),
    #[error("derived row cannot be read: {0}")]
    Source(String),
}

/// Values of a row are pco-compressed.
const FORMAT_PCO: u8 = 1;
/// A few values are cheaper raw than with pco's header.
const FORMAT_RAW: u8 = 2;
/// Rows with at most this many points are stored raw.
const RAW_MAX: usize = 4;
/// A fragment of a row not sealed: values XORed with the previous one.
const FORMAT_XOR: u8 = 6;

/// pco's settings for rows: level 4 of 12 packs a 720-point statsd-shaped
/// row as small as the default 8 (0.46 B a point) in half the time (65
/// against 140 µs a row, measured with pco 1.1), which is what a seal of
/// every live series spends its time on. Readers need no setting.
pub fn pco_config() -> pco::ChunkConfig {
    pco::ChunkConfig::default().with_compression_level(4)
}

#[expect(
    clippy::cast_possible_truncation,
    reason = "each byte keeps the low 7 bits of what is left (the cast drops the rest on purpose); the last is below 0x80"
)]
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn get_varint(buf: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = buf.split_first()?;
        *buf = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

/// Writes the present-slot runs of `slots` (NaN = absent): a count, then
/// (gap since the previous run's end, run length) pairs.
pub fn encode_presence(out: &mut Vec<u8>, present: impl Iterator<Item = bool>) -> usize {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    let mut count = 0usize;
    let (mut prev_end, mut run_start, mut in_run) = (0u64, 0u64, false);
    let mut i = 0u64;
    for p in present {
        if p {
            count += 1;
            if !in_run {
                run_start = i;
                in_run = true;
            }
        } else if in_run {
            runs.push((run_start - prev_end, i - run_start));
            prev_end = i;
            in_run = false;
        }
        i += 1;
    }
    if in_run {
        runs.push((run_start - prev_end, i - run_start));
    }
    put_varint(out, runs.len() as u64);
    for (gap, len) in runs {
        put_varint(out, gap);
        put_varint(out, len);
    }
    count
}

/// Reads a presence list; calls `f(slot)` for each present slot in order.
#[expect(
    clippy::cast_possible_truncation,
    reason = "a run is checked to end within `slots` (a usize) before its slots and length are cast"
)]
pub fn decode_presence(
    buf: &mut &[u8],
    slots: usize,
    mut f: impl FnMut(usize),
) -> Result<usize, RowError> {
    let runs = get_varint(buf).ok_or(RowError::Truncated)?;
    let mut pos = 0u64;
    let mut count = 0usize;
    for _ in 0..runs {
        let gap = get_varint(buf).ok_or(RowError::Truncated)?;
        let len = get_varint(buf).ok_or(RowError::Truncated)?;
        let start = pos.checked_add(gap).ok_or(RowError::Overflow(slots))?;
        let end = start.checked_add(len).ok_or(RowError::Overflow(slots))?;
        if end > slots as u64 {
            return Err(RowError::Overflow(slots));
        }
        for s in start..end {
            f(s as usize);
        }
        count += len as usize;
        pos = end;
    }
    Ok(count)
}

/// pco's standalone decompression, refusing more than `want` values
/// before allocating for them. A row's presence list says how many values
/// it holds, but pco's header is what sizes its buffers, and a damaged
/// header may claim billions: `simple_decompress` would try to allocate them.
pub fn decompress_exact<T: pco::data_types::Number>(
    src: &[u8],
    want: usize,
) -> Result<Vec<T>, RowError> {
    use pco::standalone::{DecompressorItem, FileDecompressor};
    let bad = |e: pco::errors::PcoError| RowError::Pco(e.to_string());
    let (file, mut src) = FileDecompressor::new(src).map_err(bad)?;
    let mut out: Vec<T> = Vec::new();
    loop {
        match file.chunk_decompressor::<T, _>(src).map_err(bad)? {
            DecompressorItem::EndOfData(_) => break,
            DecompressorItem::Chunk(mut chunk) => {
                let n = chunk.n();
                if n > want - out.len() {
                    return Err(RowError::Count {
                        got: out.len().saturating_add(n),
                        want,
                    });
                }
                let at = out.len();
                out.resize(at + n, T::default());
                let progress = chunk.read(&mut out[at..]).map_err(bad)?;
                if progress.n_processed != n {
                    return Err(RowError::Truncated);
                }
                src = chunk.into_src();
            }
        }
    }
    if out.len() != want {
        return Err(RowError::Count {
            got: out.len(),
            want,
        });
    }
    Ok(out)
}

/// Encodes a row fragment (format 6): each present value as the XOR of
/// its bits with the previous value's, trailing zero bits cut. A checkpoint
/// writes one fragment per changed row, ~30 points at the default 5
/// minutes; pco spends 15-25 µs on so few values whatever its level (about
/// 20 s a checkpoint at 1M series), this a fraction of a µs, at 2-3 bytes a
/// statsd-shaped point against pco's 2. Rows are compressed by pco when
/// sealed, so fragments are short-lived.
pub fn encode_xor(slots: &[f64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + slots.len() * 3);
    out.push(FORMAT_XOR);
    encode_presence(&mut out, slots.iter().map(|v| !v.is_nan()));
    let mut prev = 0u64;
    for v in slots.iter().filter(|v| !v.is_nan()) {
        let bits = v.to_bits();
        let x = bits ^ prev;
        prev = bits;
        if x == 0 {
            out.push(64);
        } else {
            let tz = x.trailing_zeros();
            out.push(u8::try_from(tz).unwrap_or(64));
            put_varint(&mut out, x >> tz);
        }
    }
    out
}

/// The bytes [`encode_xor`] makes of `slots`, counted without making
/// them: a merge compares them with pco's before it needs them, if at all.
pub fn xor_len(slots: &[f64]) -> usize {
    let mut presence = Vec::new();
    encode_presence(&mut presence, slots.iter().map(|v| !v.is_nan()));
    let mut prev = 0u64;
    let mut n = 1 + presence.len();
    for v in slots.iter().filter(|v| !v.is_nan()) {
        let bits = v.to_bits();
        let x = bits ^ prev;
        prev = bits;
        n += 1;
        if x != 0 {
            let rest = x >> x.trailing_zeros();
            // A uvarint carries 7 bits a byte.
            n += (64 - rest.leading_zeros() as usize).div_ceil(7);
        }
    }
    n
}

fn decode_xor(mut rest: &[u8], count: usize) -> Result<Vec<f64>, RowError> {
    let mut out = Vec::with_capacity(count.min(rest.len()));
    let mut prev = 0u64;
    for _ in 0..count {
        let (&tz, r) = rest.split_first().ok_or(RowError::Truncated)?;
        rest = r;
        let x = match tz {
            64 => 0,
            0..=63 => {
                let v = get_varint(&mut rest).ok_or(RowError::Truncated)?;
                if tz > 0 && v >> (64 - tz) != 0 {
                    return Err(RowError::Truncated);
                }
                v << tz
            }
            _ => return Err(RowError::Truncated),
        };
        prev ^= x;
        out.push(f64::from_bits(prev));
    }
    if !rest.is_empty() {
        return Err(RowError::Count {
            got: count + 1,
            want: count,
        });
    }
    Ok(out)
}

/// pco's settings for a checkpoint's merged fragments (`checkpoint.rs`),
/// chosen by what the row's XOR encoding made of it (`xor_per_point`, its
/// bytes per point). A merge re-packs a row every fourth checkpoint, so
/// pco's fixed cost counts more than its last bytes; its automatic choice
/// of delta encoding (lookback searches) was most of it. Measured on
/// 360-point rows (`cargo bench --bench merge`): statsd counters 138 B in
/// 11 µs with first-order deltas against 138 B in 30 µs with every choice
/// automatic, gauges by tenths 275 B in 14 against 44 µs, constants 36
/// against 28 B; rows the XOR packs at 8 B a point or more (random bits)
/// get no mode or delta search at all: 2,863 B in 10 µs, the bytes the
/// automatic choice made in 29. The level stays the seal's: level 0 (one
/// bin) made 850 B of a counter stepping by 7 with gaps, 182 at level 2
/// and up. Readers need no setting.
pub fn merge_pco_config(xor_per_point: f64) -> pco::ChunkConfig {
    if xor_per_point >= 8.0 {
        pco_config()
            .with_mode_spec(pco::ModeSpec::Classic)
            .with_delta_spec(pco::DeltaSpec::NoOp)
    } else {
        pco_config().with_delta_spec(pco::DeltaSpec::TryConsecutive(1))
    }
}

/// Encodes a row's slots (NaN = no point). The caller never stores a row
/// with no points; such a row is deleted instead.
///
/// Packed with first-order deltas, or, for one value repeated, pco's
/// classic mode with no deltas; rows XOR packs at 8 B a point or more get
/// pco's own search of modes and delta encodings. That search made the
/// same bytes of statsd-shaped rows in two to four times the time, and a
/// seal of 1M rows spent most of its CPU there (`seal[…]` lines of `cargo
/// bench --bench merge`, whole 720-point rows: counters 233 B in 16-21 µs
/// against 36-49, gauges by tenths 484 B in 27-35 against 48-50, a
/// constant 33 B in 6-10 against 23).
pub fn encode(slots: &[f64]) -> Vec<u8> {
    let mut present = slots.iter().filter(|v| !v.is_nan());
    let first = present.next().map(|v| v.to_bits());
    let points = 1 + present.clone().count();
    let cfg = if first.is_some() && present.all(|v| Some(v.to_bits()) == first) {
        pco_config()
            .with_mode_spec(pco::ModeSpec::Classic)
            .with_delta_spec(pco::DeltaSpec::NoOp)
    } else if xor_len(slots) >= 8 * points {
        // Bits XOR finds no order in: pco's search, which finds the float
        // modes' (a rate by tenths cycling through its range, 251 B, was
        // 748 with no deltas; random bits lost 1.6 % with first-order ones).
        pco_config()
    } else {
        pco_config().with_delta_spec(pco::DeltaSpec::TryConsecutive(1))
    };
    encode_with(slots, &cfg)
}

/// A merged fragment's packing (format 1 or 2, as [`encode`]): `xor_len`
/// is the bytes [`encode_xor`] made of the same slots, which picks pco's
/// settings ([`merge_pco_config`]).
pub fn encode_merged(slots: &[f64], xor_len: usize) -> Vec<u8> {
    let points = slots.iter().filter(|v| !v.is_nan()).count().max(1);
    encode_with(slots, &merge_pco_config(xor_len as f64 / points as f64))
}

/// [`encode`] with pco's settings `cfg`.
pub fn encode_with(slots: &[f64], cfg: &pco::ChunkConfig) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    out.push(FORMAT_PCO);
    let count = encode_presence(&mut out, slots.iter().map(|v| !v.is_nan()));
    let values: Vec<f64> = slots.iter().copied().filter(|v| !v.is_nan()).collect();
    if count <= RAW_MAX {
        out[0] = FORMAT_RAW;
        for v in values {
            out.extend_from_slice(&v.to_le_bytes());
        }
        return out;
    }
    match pco::standalone::simple_compress(&values, cfg) {
        Ok(bytes) => out.extend_from_slice(&bytes),
        Err(_) => {
            // pco accepts every f64 slice; keep a correct row regardless.
            out[0] = FORMAT_RAW;
            for v in values {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
    }
    out
}

/// Decodes a row into `slots` (which the caller has sized to the archive's
/// slots per row and filled with NaN). Returns the number of points.
pub fn decode_into(row: &[u8], slots: &mut [f64]) -> Result<usize, RowError> {
    let (&format, mut rest) = row.split_first().ok_or(RowError::Empty)?;
    let mut present = Vec::new();
    let count = decode_presence(&mut rest, slots.len(), |s| present.push(s))?;
    let values: Vec<f64> = match format {
        FORMAT_RAW => {
            if rest.len() != count * 8 {
                return Err(RowError::Count {
                    got: rest.len() / 8,
                    want: count,
                });
            }
            rest.chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect()
        }
        FORMAT_PCO => decompress_exact::<f64>(rest, count)?,
        FORMAT_XOR => decode_xor(rest, count)?,
        f => return Err(RowError::Format(f)),
    };
    if values.len() != count {
        return Err(RowError::Count {
            got: values.len(),
            want: count,
        });
    }
    for (s, v) in present.into_iter().zip(values) {
        slots[s] = v;
    }
    Ok(count)
}

/// Decodes a row into a fresh slot vector of `slots` entries.
pub fn decode(row: &[u8], slots: usize) -> Result<Vec<f64>, RowError> {
    let mut v = vec![f64::NAN; slots];
    decode_into(row, &mut v)?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xor_fragments_round_trip_every_bit_and_refuse_damage() {
        let mut slots = vec![f64::NAN; 720];
        let vals = [
            1234.0,
            1236.0,
            1236.0,
            -0.0,
            f64::INFINITY,
            f64::MIN_POSITIVE / 2.0,
            1e300,
            0.1,
        ];
        for (i, v) in vals.iter().enumerate() {
            slots[100 + 3 * i] = *v;
        }
        let bytes = encode_xor(&slots);
        assert_eq!(bytes[0], FORMAT_XOR);
        let back = decode(&bytes, 720).unwrap();
        for (a, b) in slots.iter().zip(&back) {
            assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()));
        }
        for cut in 1..bytes.len() {
            assert!(decode(&bytes[..cut], 720).is_err(), "cut at {cut}");
        }
        // A shift that would push bits out, and a byte past the last value.
        let mut bad = bytes.clone();
        let at = bytes.len() - 2;
        bad[at] = 63;
        bad.push(0x7f);
        assert!(decode(&bad, 720).is_err());
        let mut long = bytes.clone();
        long.push(64);
        assert!(decode(&long, 720).is_err());
        // Counted without encoding, the same bytes, for every shape.
        let mut rng = fastrand::Rng::with_seed(3);
        let random: Vec<f64> = (0..700)
            .map(|i| match i % 4 {
                0 => f64::NAN,
                1 => f64::from_bits(rng.u64(..)),
                2 => f64::from(i / 4) / 10.0,
                _ => 7.0,
            })
            .collect();
        for s in [&slots[..], &random[..], &[][..], &[f64::NAN; 5][..]] {
            assert_eq!(xor_len(s), encode_xor(s).len());
        }
        // statsd-shaped: small integer steps cost a few bytes a point.
        let counter: Vec<f64> = (0..30).map(|i| 5000.0 + f64::from(i * 7 % 5)).collect();
        assert!(encode_xor(&counter).len() < 30 * 4);
    }

    #[test]
    fn keys_sort_by_archive_then_time_then_series() {
        let a = RowKey {
            schema: 1,
            archive: 0,
            start: 7200,
            series: 9,
        };
        let b = RowKey {
            schema: 1,
            archive: 0,
            start: 14400,
            series: 1,
        };
        let c = RowKey {
            schema: 1,
            archive: 1,
            start: 0,
            series: 0,
        };
        assert!(a.encode() < b.encode() && b.encode() < c.encode());
        assert_eq!(RowKey::decode(&b.encode()), Some(b));
        assert_eq!(RowKey::decode(&[1, 2]), None);
    }

    #[test]
    fn round_trips_full_sparse_and_tiny_rows() {
        let n = f64::NAN;
        let full: Vec<f64> = (0..720).map(|i| f64::from(i % 17) / 10.0).collect();
        let mut sparse = vec![n; 720];
        for i in (3..700).step_by(7) {
            sparse[i] = i as f64 * 1.5;
        }
        let mut tiny = vec![n; 720];
        tiny[719] = -0.0;
        tiny[0] = f64::INFINITY;
        for slots in [full, sparse, tiny] {
            let bytes = encode(&slots);
            let back = decode(&bytes, 720).unwrap();
            for (a, b) in slots.iter().zip(&back) {
                assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()));
            }
        }
    }

    #[test]
    fn regular_statsd_rows_are_small() {
        // A counter's rate with one decimal, every slot present.
        let slots: Vec<f64> = (0..720).map(|i| f64::from((i * 37) % 90) / 10.0).collect();
        let bytes = encode(&slots);
        assert!(bytes.len() < 720, "{} bytes for 720 points", bytes.len());
        // The presence list of a full row is 4 bytes: one run, from slot 0,
        // 720 long.
        assert_eq!(&bytes[1..5], &[1, 0, 0xd0, 0x05]);
    }

    #[test]
    fn raw_rows_decode_like_compressed_ones() {
        let mut slots = vec![f64::NAN; 720];
        for (i, s) in slots.iter_mut().enumerate().take(300).skip(7) {
            *s = i as f64 / 10.0;
        }
        // As rollupd-store-2 wrote open rows (and still reads them).
        let mut raw = vec![FORMAT_RAW];
        encode_presence(&mut raw, slots.iter().map(|v| !v.is_nan()));
        for v in slots.iter().filter(|v| !v.is_nan()) {
            raw.extend_from_slice(&v.to_le_bytes());
        }
        let a = decode(&raw, 720).unwrap();
        let b = decode(&encode(&slots), 720).unwrap();
        assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
    }

    #[test]
    fn damaged_rows_are_errors_not_panics() {
        let good = encode(&(0..720).map(f64::from).collect::<Vec<_>>());
        assert_eq!(decode(&[], 720), Err(RowError::Empty));
        assert_eq!(decode(&[9, 0], 720), Err(RowError::Format(9)));
        assert!(decode(&good[..good.len() / 2], 720).is_err());
        assert_eq!(decode(&good, 10), Err(RowError::Overflow(10)));
        assert!(decode(&[FORMAT_RAW, 1, 0, 2, 1, 2, 3], 720).is_err());
        for cut in 0..good.len() {
            let _ = decode(&good[..cut], 720);
        }
    }
}
