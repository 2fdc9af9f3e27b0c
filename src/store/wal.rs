//! Write-ahead entries: each accepted write batch is stored whole in the
//! `Log` space under a sequence number before it changes any open row, so a
//! restart replays whatever the last checkpoint does not cover.
//!
//! Entry layout (docs/storage-format.md): format byte 1; the writer's clock
//! (i64 LE), so replay chooses the same archives; point count (varint) and
//! points as (series varint, zigzag timestamp delta varint, f64 LE); then
//! histogram count and histograms as (series varint, zigzag delta varint,
//! histogram).

use super::hist::Hist;
use super::row::{get_varint, put_varint, RowError};

const FORMAT: u8 = 1;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Entry {
    pub now: i64,
    pub points: Vec<(u32, i64, f64)>,
    pub hists: Vec<(u32, i64, Hist)>,
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

pub fn key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

pub fn seq_of(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.try_into().ok()?))
}

impl Entry {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.points.len() * 12);
        out.push(FORMAT);
        out.extend_from_slice(&self.now.to_le_bytes());
        put_varint(&mut out, self.points.len() as u64);
        let mut prev = 0i64;
        for &(id, ts, v) in &self.points {
            put_varint(&mut out, id as u64);
            put_varint(&mut out, zigzag(ts.wrapping_sub(prev)));
            out.extend_from_slice(&v.to_le_bytes());
            prev = ts;
        }
        put_varint(&mut out, self.hists.len() as u64);
        let mut prev = 0i64;
        for (id, ts, h) in &self.hists {
            put_varint(&mut out, *id as u64);
            put_varint(&mut out, zigzag(ts.wrapping_sub(prev)));
            h.encode(&mut out);
            prev = *ts;
        }
        out
    }

    pub fn decode(mut buf: &[u8]) -> Result<Entry, RowError> {
        let (&format, rest) = buf.split_first().ok_or(RowError::Empty)?;
        if format != FORMAT {
            return Err(RowError::Format(format));
        }
        if rest.len() < 8 {
            return Err(RowError::Truncated);
        }
        let now = i64::from_le_bytes(rest[..8].try_into().map_err(|_| RowError::Truncated)?);
        buf = &rest[8..];
        let b = &mut buf;
        let n = get_varint(b).ok_or(RowError::Truncated)?;
        if n as usize > b.len() / 10 {
            return Err(RowError::Truncated);
        }
        let mut points = Vec::with_capacity(n as usize);
        let mut prev = 0i64;
        for _ in 0..n {
            let id = get_varint(b).ok_or(RowError::Truncated)?;
            let ts = prev.wrapping_add(unzigzag(get_varint(b).ok_or(RowError::Truncated)?));
            if b.len() < 8 || id > u32::MAX as u64 {
                return Err(RowError::Truncated);
            }
            let v = f64::from_le_bytes(b[..8].try_into().map_err(|_| RowError::Truncated)?);
            *b = &b[8..];
            points.push((id as u32, ts, v));
            prev = ts;
        }
        let n = get_varint(b).ok_or(RowError::Truncated)?;
        if n as usize > b.len() / 3 {
            return Err(RowError::Truncated);
        }
        let mut hists = Vec::with_capacity(n as usize);
        let mut prev = 0i64;
        for _ in 0..n {
            let id = get_varint(b).ok_or(RowError::Truncated)?;
            let ts = prev.wrapping_add(unzigzag(get_varint(b).ok_or(RowError::Truncated)?));
            if id > u32::MAX as u64 {
                return Err(RowError::Truncated);
            }
            hists.push((id as u32, ts, Hist::decode(b)?));
            prev = ts;
        }
        if !b.is_empty() {
            return Err(RowError::Truncated);
        }
        Ok(Entry { now, points, hists })
    }
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
    fn zigzag_covers_the_range() {
        for v in [0i64, 1, -1, i64::MAX, i64::MIN, 1 << 40, -(1 << 40)] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }
}
