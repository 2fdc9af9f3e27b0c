//! Mergeable timer histograms, stored per point beside a timer's stats so
//! that a coarser point's percentiles are percentiles of every sample in its
//! window, not averages of finer percentiles.
//!
//! A histogram is sparse: (bucket, count) pairs in hdrhistogram's bucketing
//! (microseconds, three significant digits), which the per-flush histogram
//! of the aggregate stage uses too. Sparse because a flush of ten samples
//! touches ten buckets, while a dense hdrhistogram of the same range is
//! about 200 KB. Merging is a sorted merge; quantiles walk the counts the way
//! `Histogram::value_at_quantile` does.

use std::sync::OnceLock;

use hdrhistogram::Histogram;

use super::row::{decode_presence, encode_presence, get_varint, put_varint, RowError};
use crate::aggregate::{HISTOGRAM_SIGFIGS, HISTOGRAM_UNITS_PER_MS};

/// Hist rows use their own format byte, distinct from value rows.
const FORMAT_HIST: u8 = 3;

/// Bucket arithmetic only (no counts are ever recorded into it).
fn template() -> &'static Histogram<u64> {
    static T: OnceLock<Histogram<u64>> = OnceLock::new();
    T.get_or_init(|| {
        Histogram::new(HISTOGRAM_SIGFIGS).unwrap_or_else(|_| unreachable!("3 sigfigs is valid"))
    })
}

fn to_units(ms: f64) -> u64 {
    let u = (ms * HISTOGRAM_UNITS_PER_MS).round();
    if u >= 0.0 {
        u.min(u64::MAX as f64 / 4.0) as u64
    } else {
        0
    }
}

/// Sample counts per bucket; buckets are each bucket's lowest value in
/// microseconds, ascending.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hist {
    pub buckets: Vec<(u64, u64)>,
}

impl Hist {
    /// The histogram of one flush's samples (milliseconds, ascending).
    pub fn from_sorted_samples(samples: &[f64]) -> Hist {
        let t = template();
        let mut buckets: Vec<(u64, u64)> = Vec::new();
        for &s in samples {
            let b = t.lowest_equivalent(to_units(s));
            match buckets.last_mut() {
                Some((lb, n)) if *lb == b => *n += 1,
                _ => buckets.push((b, 1)),
            }
        }
        // Samples are sorted, so buckets are too; a stray unsorted input
        // still gives a valid histogram.
        if buckets.windows(2).any(|w| w[0].0 >= w[1].0) {
            buckets.sort_unstable_by_key(|b| b.0);
            let mut merged: Vec<(u64, u64)> = Vec::with_capacity(buckets.len());
            for (b, n) in buckets {
                match merged.last_mut() {
                    Some((lb, m)) if *lb == b => *m += n,
                    _ => merged.push((b, n)),
                }
            }
            buckets = merged;
        }
        Hist { buckets }
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    pub fn total(&self) -> u64 {
        self.buckets.iter().map(|b| b.1).sum()
    }

    /// Adds another histogram's counts to this one.
    pub fn merge(&mut self, other: &Hist) {
        if other.buckets.is_empty() {
            return;
        }
        if self.buckets.is_empty() {
            self.buckets.clone_from(&other.buckets);
            return;
        }
        let mut out = Vec::with_capacity(self.buckets.len() + other.buckets.len());
        let (mut a, mut b) = (
            self.buckets.iter().peekable(),
            other.buckets.iter().peekable(),
        );
        loop {
            match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x.0 == y.0 => {
                    out.push((x.0, x.1.saturating_add(y.1)));
                    a.next();
                    b.next();
                }
                (Some(x), Some(y)) if x.0 < y.0 => {
                    out.push(**x);
                    a.next();
                }
                (Some(_), Some(y)) => {
                    out.push(**y);
                    b.next();
                }
                (Some(x), None) => {
                    out.push(**x);
                    a.next();
                }
                (None, Some(y)) => {
                    out.push(**y);
                    b.next();
                }
                (None, None) => break,
            }
        }
        self.buckets = out;
    }

    /// The value (ms) at quantile `q` in 0..=1, as hdrhistogram reports it:
    /// the highest value equivalent to the bucket holding the `ceil(q·n)`th
    /// sample.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let q = q.clamp(0.0, 1.0);
        let want = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0u64;
        let t = template();
        for &(b, n) in &self.buckets {
            seen += n;
            if seen >= want {
                let v = if q == 0.0 {
                    t.lowest_equivalent(b)
                } else {
                    t.highest_equivalent(b)
                };
                return Some(v as f64 / HISTOGRAM_UNITS_PER_MS);
            }
        }
        None
    }

    /// Mean (ms), taking each bucket at its median equivalent value, as
    /// hdrhistogram does.
    pub fn mean(&self) -> Option<f64> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let t = template();
        let sum: f64 = self
            .buckets
            .iter()
            .map(|&(b, n)| t.median_equivalent(b) as f64 * n as f64)
            .sum();
        Some(sum / total as f64 / HISTOGRAM_UNITS_PER_MS)
    }

    /// Population standard deviation (ms), as Etsy's `std`.
    pub fn stdev(&self) -> Option<f64> {
        let mean = self.mean()? * HISTOGRAM_UNITS_PER_MS;
        let total = self.total() as f64;
        let t = template();
        let var: f64 = self
            .buckets
            .iter()
            .map(|&(b, n)| {
                let d = t.median_equivalent(b) as f64 - mean;
                d * d * n as f64
            })
            .sum::<f64>()
            / total;
        Some(var.sqrt() / HISTOGRAM_UNITS_PER_MS)
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, self.buckets.len() as u64);
        let mut prev = 0u64;
        for &(b, n) in &self.buckets {
            put_varint(out, b - prev);
            put_varint(out, n);
            prev = b;
        }
    }

    pub fn decode(buf: &mut &[u8]) -> Result<Hist, RowError> {
        let n = get_varint(buf).ok_or(RowError::Truncated)?;
        // Each pair takes at least two bytes: refuse impossible counts
        // before allocating for them.
        if n as usize > buf.len() / 2 {
            return Err(RowError::Truncated);
        }
        let mut buckets = Vec::with_capacity(n as usize);
        let mut prev = 0u64;
        for i in 0..n {
            let d = get_varint(buf).ok_or(RowError::Truncated)?;
            let c = get_varint(buf).ok_or(RowError::Truncated)?;
            if i > 0 && d == 0 {
                return Err(RowError::Truncated);
            }
            prev = prev.checked_add(d).ok_or(RowError::Truncated)?;
            buckets.push((prev, c));
        }
        Ok(Hist { buckets })
    }
}

/// Encodes a row of histograms (`None` = no point in that slot).
pub fn encode_row(slots: &[Option<Hist>]) -> Vec<u8> {
    let mut out = vec![FORMAT_HIST];
    encode_presence(&mut out, slots.iter().map(|h| h.is_some()));
    for h in slots.iter().flatten() {
        h.encode(&mut out);
    }
    out
}

pub fn decode_row(row: &[u8], slots: usize) -> Result<Vec<Option<Hist>>, RowError> {
    let (&format, mut rest) = row.split_first().ok_or(RowError::Empty)?;
    if format != FORMAT_HIST {
        return Err(RowError::Format(format));
    }
    let mut present = Vec::new();
    decode_presence(&mut rest, slots, |s| present.push(s))?;
    let mut out = vec![None; slots];
    for s in present {
        out[s] = Some(Hist::decode(&mut rest)?);
    }
    if !rest.is_empty() {
        return Err(RowError::Count {
            got: out.iter().flatten().count() + 1,
            want: out.iter().flatten().count(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::histogram_of;

    #[test]
    fn sparse_quantiles_equal_hdrhistogram() {
        let samples: Vec<f64> = (0..5000)
            .map(|i| ((i * 7919) % 3001) as f64 * 0.37)
            .collect();
        let mut sorted = samples.clone();
        sorted.sort_by(f64::total_cmp);
        let sparse = Hist::from_sorted_samples(&sorted);
        let dense = histogram_of(&samples).unwrap();
        assert_eq!(sparse.total(), dense.len());
        for q in [0.0, 0.01, 0.5, 0.9, 0.99, 0.999, 1.0] {
            let want = dense.value_at_quantile(q) as f64 / HISTOGRAM_UNITS_PER_MS;
            assert_eq!(sparse.quantile(q), Some(want), "q={q}");
        }
        let m = dense.mean() / HISTOGRAM_UNITS_PER_MS;
        assert!((sparse.mean().unwrap() - m).abs() < 1e-9 * m.max(1.0));
    }

    #[test]
    fn merge_is_the_histogram_of_all_samples() {
        let a: Vec<f64> = (0..300).map(|i| i as f64 * 1.1).collect();
        let b: Vec<f64> = (0..500).map(|i| 200.0 + i as f64 * 0.3).collect();
        let mut h = Hist::from_sorted_samples(&a);
        h.merge(&Hist::from_sorted_samples(&b));
        let mut all = [a, b].concat();
        all.sort_by(f64::total_cmp);
        assert_eq!(h, Hist::from_sorted_samples(&all));
    }

    #[test]
    fn rows_round_trip_and_reject_damage() {
        let h1 = Hist::from_sorted_samples(&[1.0, 2.0, 2.0, 350.5]);
        let h2 = Hist::from_sorted_samples(&[0.001, 10_000.0]);
        let mut slots = vec![None; 720];
        slots[0] = Some(h1);
        slots[719] = Some(h2);
        let bytes = encode_row(&slots);
        assert_eq!(decode_row(&bytes, 720).unwrap(), slots);
        for cut in 0..bytes.len() {
            assert!(decode_row(&bytes[..cut], 720).is_err(), "cut {cut}");
        }
        assert!(decode_row(&[FORMAT_HIST, 1, 0, 1, 255, 255, 255, 255], 720).is_err());
    }
}
