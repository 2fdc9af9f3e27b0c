//! Write-ahead entries: each accepted write batch is stored whole in the
//! `Log` space under a sequence number before it changes any row in memory, so a
//! restart replays whatever the last checkpoint does not cover.
//!
//! Entry layout (docs/storage-format.md): a format byte; the writer's clock
//! (i64 LE), so replay chooses the same archives; the point count (varint)
//! and the points, then the histogram count and the histograms as (series
//! varint, zigzag timestamp delta varint, histogram). Format 1 writes each
//! point as (series varint, zigzag delta varint, f64 LE): 11 bytes or so.
//! Format 2, for batches of [`PACK_MIN`] points or more, writes the series,
//! timestamps and values as three pco streams: a carbon batch's ids climb
//! by one, its timestamps repeat and statsd's values are small integers, so
//! a point costs 2 to 4 bytes, and the log (kept on disk and in RocksDB's
//! memtables until a checkpoint covers it) shrinks as much.

use super::hist::{get_stream, put_stream, Hist};
use super::row::{get_varint, put_varint, RowError};

const FORMAT: u8 = 1;
const FORMAT_PACKED: u8 = 2;
/// Batches with fewer points keep format 1 (pco's headers cost more).
const PACK_MIN: usize = 16;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Entry {
    pub now: i64,
    pub points: Vec<(u32, i64, f64)>,
    pub hists: Vec<(u32, i64, Hist)>,
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)).cast_unsigned()
}

fn unzigzag(v: u64) -> i64 {
    (v >> 1).cast_signed() ^ -(v & 1).cast_signed()
}

pub fn key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

pub fn seq_of(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.try_into().ok()?))
}

impl Entry {
    pub fn encode(&self) -> Vec<u8> {
        if self.points.len() >= PACK_MIN {
            if let Some(packed) = self.encode_packed() {
                return packed;
            }
        }
        let mut out = Vec::with_capacity(16 + self.points.len() * 12);
        out.push(FORMAT);
        out.extend_from_slice(&self.now.to_le_bytes());
        put_varint(&mut out, self.points.len() as u64);
        let mut prev = 0i64;
        for &(id, ts, v) in &self.points {
            put_varint(&mut out, u64::from(id));
            put_varint(&mut out, zigzag(ts.wrapping_sub(prev)));
            out.extend_from_slice(&v.to_le_bytes());
            prev = ts;
        }
        self.encode_hists(&mut out);
        out
    }

    /// Format 2: the points as three pco streams (`None` if pco refused,
    /// which it does not for numbers).
    fn encode_packed(&self) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(32 + self.points.len() * 4);
        out.push(FORMAT_PACKED);
        out.extend_from_slice(&self.now.to_le_bytes());
        put_varint(&mut out, self.points.len() as u64);
        let ids: Vec<u32> = self.points.iter().map(|p| p.0).collect();
        let ts: Vec<i64> = self.points.iter().map(|p| p.1).collect();
        let vs: Vec<f64> = self.points.iter().map(|p| p.2).collect();
        put_stream(&mut out, &ids)?;
        put_stream(&mut out, &ts)?;
        put_stream(&mut out, &vs)?;
        self.encode_hists(&mut out);
        Some(out)
    }

    fn encode_hists(&self, out: &mut Vec<u8>) {
        put_varint(out, self.hists.len() as u64);
        let mut prev = 0i64;
        for (id, ts, h) in &self.hists {
            put_varint(out, u64::from(*id));
            put_varint(out, zigzag(ts.wrapping_sub(prev)));
            h.encode(out);
            prev = *ts;
        }
    }

    pub fn decode(buf: &[u8]) -> Result<Entry, RowError> {
        let (&format, rest) = buf.split_first().ok_or(RowError::Empty)?;
        if format != FORMAT && format != FORMAT_PACKED {
            return Err(RowError::Format(format));
        }
        if rest.len() < 8 {
            return Err(RowError::Truncated);
        }
        let now = i64::from_le_bytes(rest[..8].try_into().map_err(|_| RowError::Truncated)?);
        let mut buf = &rest[8..];
        let b = &mut buf;
        let n = get_varint(b).ok_or(RowError::Truncated)?;
        let points = if format == FORMAT_PACKED {
            decode_packed(b, n)?
        } else {
            decode_plain(b, n)?
        };
        let n = get_varint(b).ok_or(RowError::Truncated)?;
        let n = usize::try_from(n).map_err(|_| RowError::Truncated)?;
        if n > b.len() / 3 {
            return Err(RowError::Truncated);
        }
        let mut hists = Vec::with_capacity(n);
        let mut prev = 0i64;
        for _ in 0..n {
            let id = get_varint(b).ok_or(RowError::Truncated)?;
            let ts = prev.wrapping_add(unzigzag(get_varint(b).ok_or(RowError::Truncated)?));
            let id = u32::try_from(id).map_err(|_| RowError::Truncated)?;
            hists.push((id, ts, Hist::decode(b)?));
            prev = ts;
        }
        if !b.is_empty() {
            return Err(RowError::Truncated);
        }
        Ok(Entry { now, points, hists })
    }
}

/// Points in one packed entry at most: far above a batch (carbon's reads
/// deliver at most 4,096), so a damaged count is refused before pco's
/// decoder is asked for that many values.
const MAX_PACKED_POINTS: usize = 1 << 24;

/// Format 2's point streams; each must hold exactly `n` values.
fn decode_packed(b: &mut &[u8], n: u64) -> Result<Vec<(u32, i64, f64)>, RowError> {
    let n = usize::try_from(n).map_err(|_| RowError::Truncated)?;
    if n > MAX_PACKED_POINTS {
        return Err(RowError::Truncated);
    }
    let ids: Vec<u32> = get_stream(b, n)?;
    let ts: Vec<i64> = get_stream(b, n)?;
    let vs: Vec<f64> = get_stream(b, n)?;
    Ok(ids
        .into_iter()
        .zip(ts)
        .zip(vs)
        .map(|((i, t), v)| (i, t, v))
        .collect())
}

fn decode_plain(b: &mut &[u8], n: u64) -> Result<Vec<(u32, i64, f64)>, RowError> {
    let n = usize::try_from(n).map_err(|_| RowError::Truncated)?;
    if n > b.len() / 10 {
        return Err(RowError::Truncated);
    }
    let mut points = Vec::with_capacity(n);
    let mut prev = 0i64;
    for _ in 0..n {
        let id = get_varint(b).ok_or(RowError::Truncated)?;
        let ts = prev.wrapping_add(unzigzag(get_varint(b).ok_or(RowError::Truncated)?));
        if b.len() < 8 {
            return Err(RowError::Truncated);
        }
        let id = u32::try_from(id).map_err(|_| RowError::Truncated)?;
        let v = f64::from_le_bytes(b[..8].try_into().map_err(|_| RowError::Truncated)?);
        *b = &b[8..];
        points.push((id, ts, v));
        prev = ts;
    }
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_truncation_is_an_error() {
        let e = Entry {
            now: 1_700_000_123,
            points: vec![
                (0, 1_700_000_000, 1.5),
                (70_000, 1_699_999_990, -2.0),
                (3, 5, 0.0),
            ],
            hists: vec![(
                9,
                1_700_000_000,
                Hist::from_sorted_samples(&[1.0, 2.0, 300.0]),
            )],
        };
        let bytes = e.encode();
        assert_eq!(Entry::decode(&bytes).unwrap(), e);
        for cut in 0..bytes.len() {
            assert!(Entry::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert_eq!(seq_of(&key(42)), Some(42));
        assert!(key(1) < key(256));
    }

    #[test]
    fn a_batch_packs_into_a_few_bytes_a_point_and_round_trips() {
        let points: Vec<(u32, i64, f64)> = (0..4096u32)
            .map(|i| (1000 + i, 1_700_000_000, f64::from(i % 50)))
            .collect();
        let e = Entry {
            now: 1_700_000_005,
            points,
            hists: vec![(2, 1_700_000_000, Hist::from_sorted_samples(&[4.0]))],
        };
        let bytes = e.encode();
        assert_eq!(bytes[0], FORMAT_PACKED);
        assert!(bytes.len() < 4096 * 2, "{} bytes", bytes.len());
        assert_eq!(Entry::decode(&bytes).unwrap(), e);
        for cut in (0..bytes.len()).step_by(7) {
            assert!(Entry::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        // A count that claims more points than any stream holds.
        let mut lie = bytes.clone();
        lie[9] = 0xff;
        assert!(Entry::decode(&lie).is_err());
    }

    #[test]
    fn zigzag_covers_the_range() {
        for v in [0i64, 1, -1, i64::MAX, i64::MIN, 1 << 40, -(1 << 40)] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }
}
