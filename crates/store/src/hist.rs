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

use super::row::{
    decode_presence, decompress_exact, encode_presence, get_varint, put_varint, RowError,
};

/// Timer samples are milliseconds by convention; the histograms (the aggregator's and
/// the store's alike) record them in
/// microseconds so sub-millisecond timings keep three significant digits.
pub const HISTOGRAM_UNITS_PER_MS: f64 = 1000.0;
/// Significant decimal digits kept by each timer histogram (0.1% error).
pub const HISTOGRAM_SIGFIGS: u8 = 3;

/// Bucket arithmetic only (no counts are ever recorded into it).
fn template() -> &'static Histogram<u64> {
    static T: OnceLock<Histogram<u64>> = OnceLock::new();
    T.get_or_init(|| {
        Histogram::new(HISTOGRAM_SIGFIGS).unwrap_or_else(|_| unreachable!("3 sigfigs is valid"))
    })
}

#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "u is checked non-negative (NaN takes the else branch) and clamped to u64::MAX / 4"
)]
fn to_units(ms: f64) -> u64 {
    let u = (ms * HISTOGRAM_UNITS_PER_MS).round();
    if u >= 0.0 {
        u.min(u64::MAX as f64 / 4.0) as u64
    } else {
        0
    }
}

/// The histogram of one interval's samples (ms, recorded as µs rounded),
/// as the aggregator flushes it for each timer.
pub fn histogram_of(samples: &[f64]) -> Option<Histogram<u64>> {
    let mut h = Histogram::<u64>::new(HISTOGRAM_SIGFIGS).ok()?;
    for &v in samples {
        // Samples are finite and >= 0, but above ~1.8e305 ms the product
        // overflows to +inf: to_units clamps it like any other too-large
        // value, and auto-resizing histograms accept any u64.
        let _ = h.record(to_units(v));
    }
    Some(h)
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

    /// Heap bytes it holds (memory accounting).
    pub fn heap_bytes(&self) -> usize {
        self.buckets.capacity() * std::mem::size_of::<(u64, u64)>()
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
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "q is clamped to 0..=1, so the rank is within 0..=total; `as` saturates (and takes a NaN q to 0) before the clamp to 1..=total"
    )]
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
        let n = usize::try_from(n).map_err(|_| RowError::Truncated)?;
        if n > buf.len() / 2 {
            return Err(RowError::Truncated);
        }
        let mut buckets = Vec::with_capacity(n);
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

/// Histogram rows as first written: each histogram's varint pairs, not
/// compressed. Still read; written only when it is the smaller form.
const FORMAT_HIST_PLAIN: u8 = 3;
/// Histogram rows as dense bucket indices in four pco-compressed integer
/// streams (Section 5.4 of docs/storage-format.md).
const FORMAT_HIST_PACKED: u8 = 4;

/// Buckets below this many µs are 1 µs wide (hdrhistogram's sub-bucket
/// count at 3 significant digits); above it, every power of two holds
/// `HALF` buckets.
const LINEAR: u64 = 2048;
const HALF: u64 = LINEAR / 2;
/// More buckets than a histogram can have (hdrhistogram at 3 significant
/// digits has 2048 + 1024 × 52 distinct buckets over u64).
const MAX_BUCKETS: u32 = 2048 + 1024 * 53;
/// The widest bucket shift a u64 value can have.
const MAX_SHIFT: u64 = 63 - 11;

/// The dense index of the bucket whose lowest value is `b`: buckets are
/// numbered 0, 1, 2, ... in value order, so the buckets of one histogram
/// differ by small steps that pco packs into a few bits. `None` when `b` is
/// not the lowest value of a bucket. hdrhistogram keeps its own index
/// private, hence this mapping; a test checks it against the crate's
/// bucketing.
fn bucket_index(b: u64) -> Option<u32> {
    if b < LINEAR {
        return u32::try_from(b).ok();
    }
    let shift = u64::from(63 - b.leading_zeros()) - 10;
    let sub = b >> shift;
    if sub << shift != b {
        return None;
    }
    u32::try_from(shift * HALF + sub).ok()
}

/// The lowest value of the bucket with dense index `i`.
fn bucket_value(i: u32) -> Option<u64> {
    let i = u64::from(i);
    if i < LINEAR {
        return Some(i);
    }
    let shift = i / HALF - 1;
    if shift > MAX_SHIFT {
        return None;
    }
    Some((i - shift * HALF) << shift)
}

/// Encodes a row of histograms (`None` = no point in that slot), in the
/// smaller of the packed and plain forms.
pub fn encode_row(slots: &[Option<Hist>]) -> Vec<u8> {
    let plain = encode_row_plain(slots);
    match encode_row_packed(slots) {
        Some(packed) if packed.len() < plain.len() => packed,
        _ => plain,
    }
}

/// The plain form (format 3): what a checkpoint writes for a fragment of a
/// row not sealed, as `row::encode_xor` does for values (no pco: its cost
/// per call dominates on a fragment's few slots).
pub fn encode_row_plain(slots: &[Option<Hist>]) -> Vec<u8> {
    let mut out = vec![FORMAT_HIST_PLAIN];
    encode_presence(&mut out, slots.iter().map(|h| h.is_some()));
    for h in slots.iter().flatten() {
        h.encode(&mut out);
    }
    out
}

/// The packed form, or `None` if a bucket is not a bucket's lowest value
/// (never so for histograms the store builds; the plain form keeps them).
fn encode_row_packed(slots: &[Option<Hist>]) -> Option<Vec<u8>> {
    let mut out = vec![FORMAT_HIST_PACKED];
    encode_presence(&mut out, slots.iter().map(|h| h.is_some()));
    let (mut lens, mut firsts, mut steps, mut counts) = (vec![], vec![], vec![], vec![]);
    for h in slots.iter().flatten() {
        lens.push(u32::try_from(h.buckets.len()).ok()?);
        let mut prev: Option<u32> = None;
        for &(b, n) in &h.buckets {
            let i = bucket_index(b)?;
            match prev {
                None => firsts.push(i),
                // Buckets strictly increase: store the step less one.
                Some(p) => steps.push(i.checked_sub(p)?.checked_sub(1)?),
            }
            prev = Some(i);
            counts.push(n);
        }
    }
    put_stream(&mut out, &lens)?;
    put_stream(&mut out, &firsts)?;
    put_stream(&mut out, &steps)?;
    put_stream(&mut out, &counts)?;
    Some(out)
}

/// One integer stream: its compressed length, then pco's bytes (nothing for
/// an empty stream).
pub(super) fn put_stream<T: pco::data_types::Number>(
    out: &mut Vec<u8>,
    values: &[T],
) -> Option<()> {
    if values.is_empty() {
        put_varint(out, 0);
        return Some(());
    }
    let bytes = pco::standalone::simple_compress(values, &super::row::pco_config()).ok()?;
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(&bytes);
    Some(())
}

pub(super) fn get_stream<T: pco::data_types::Number>(
    buf: &mut &[u8],
    want: usize,
) -> Result<Vec<T>, RowError> {
    let len = get_varint(buf).ok_or(RowError::Truncated)?;
    let len = usize::try_from(len).map_err(|_| RowError::Truncated)?;
    if len > buf.len() {
        return Err(RowError::Truncated);
    }
    let (bytes, rest) = buf.split_at(len);
    *buf = rest;
    if len == 0 {
        return match want {
            0 => Ok(Vec::new()),
            _ => Err(RowError::Count { got: 0, want }),
        };
    }
    decompress_exact(bytes, want)
}

pub fn decode_row(row: &[u8], slots: usize) -> Result<Vec<Option<Hist>>, RowError> {
    let (&format, mut rest) = row.split_first().ok_or(RowError::Empty)?;
    if format != FORMAT_HIST_PLAIN && format != FORMAT_HIST_PACKED {
        return Err(RowError::Format(format));
    }
    let mut present = Vec::new();
    decode_presence(&mut rest, slots, |s| present.push(s))?;
    let mut out = vec![None; slots];
    if format == FORMAT_HIST_PACKED {
        for (s, h) in present.iter().zip(decode_packed(&mut rest, present.len())?) {
            out[*s] = Some(h);
        }
    } else {
        for &s in &present {
            out[s] = Some(Hist::decode(&mut rest)?);
        }
    }
    if !rest.is_empty() {
        return Err(RowError::Count {
            got: present.len() + 1,
            want: present.len(),
        });
    }
    Ok(out)
}

/// Rebuilds `want` histograms from the four streams, checking that their
/// lengths agree before trusting any of them.
fn decode_packed(buf: &mut &[u8], want: usize) -> Result<Vec<Hist>, RowError> {
    // Each stream's length follows from the ones before it, and is checked
    // before pco allocates for it.
    let lens: Vec<u32> = get_stream(buf, want)?;
    if lens.iter().any(|&l| l > MAX_BUCKETS) {
        return Err(RowError::Truncated);
    }
    let buckets: usize = lens.iter().map(|&l| l as usize).sum();
    let nonempty = lens.iter().filter(|&&l| l > 0).count();
    let firsts: Vec<u32> = get_stream(buf, nonempty)?;
    let steps: Vec<u32> = get_stream(buf, buckets - nonempty)?;
    let counts: Vec<u64> = get_stream(buf, buckets)?;
    let (mut firsts, mut steps, mut counts) = (firsts.iter(), steps.iter(), counts.iter());
    let mut out = Vec::with_capacity(want);
    for &len in &lens {
        let mut h = Hist {
            buckets: Vec::with_capacity(len as usize),
        };
        let mut index: Option<u32> = None;
        for _ in 0..len {
            let i = match index {
                None => *firsts.next().ok_or(RowError::Truncated)?,
                Some(p) => p
                    .checked_add(*steps.next().ok_or(RowError::Truncated)?)
                    .and_then(|i| i.checked_add(1))
                    .ok_or(RowError::Truncated)?,
            };
            let b = bucket_value(i).ok_or(RowError::Truncated)?;
            h.buckets
                .push((b, *counts.next().ok_or(RowError::Truncated)?));
            index = Some(i);
        }
        out.push(h);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_quantiles_equal_hdrhistogram() {
        let samples: Vec<f64> = (0..5000)
            .map(|i| f64::from((i * 7919) % 3001) * 0.37)
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
        let a: Vec<f64> = (0..300).map(|i| f64::from(i) * 1.1).collect();
        let b: Vec<f64> = (0..500).map(|i| 200.0 + f64::from(i) * 0.3).collect();
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
        assert!(decode_row(&[FORMAT_HIST_PLAIN, 1, 0, 1, 255, 255, 255, 255], 720).is_err());
    }

    #[test]
    fn dense_bucket_indices_follow_hdrhistogram_buckets() {
        let t = template();
        // Walk the crate's buckets one by one over the whole range a timer
        // sample can reach (to 1.1e15 µs), checking index and value agree.
        let (mut b, mut i) = (0u64, 0u32);
        while b < 1 << 50 {
            assert_eq!(t.lowest_equivalent(b), b);
            assert_eq!(bucket_index(b), Some(i), "bucket {b}");
            assert_eq!(bucket_value(i), Some(b), "index {i}");
            if b > 0 {
                let before = t.lowest_equivalent(b - 1);
                assert_eq!(bucket_index(before), Some(i - 1), "before {b}");
            }
            b = t.highest_equivalent(b) + 1;
            i += 1;
        }
        // A value inside a wide bucket is not a bucket's lowest value.
        assert_eq!(bucket_index(4097), None);
        assert_eq!(bucket_value(u32::MAX), None);
    }

    /// A row of histograms like a busy timer's: a few dozen samples per
    /// slot, spread over two decades.
    fn busy_row() -> Vec<Option<Hist>> {
        let mut rng = fastrand::Rng::with_seed(7);
        (0..720)
            .map(|slot| {
                (slot % 97 != 5).then(|| {
                    let mut s: Vec<f64> = (0..rng.usize(1..40))
                        .map(|_| (rng.f64() * 300.0 + 3.0).round())
                        .collect();
                    s.sort_by(f64::total_cmp);
                    Hist::from_sorted_samples(&s)
                })
            })
            .collect()
    }

    #[test]
    fn packed_rows_round_trip_and_are_smaller() {
        let slots = busy_row();
        let packed = encode_row(&slots);
        assert_eq!(packed[0], FORMAT_HIST_PACKED);
        assert_eq!(decode_row(&packed, 720).unwrap(), slots);
        let plain = encode_row_plain(&slots);
        assert_eq!(decode_row(&plain, 720).unwrap(), slots);
        assert!(
            packed.len() * 2 < plain.len(),
            "packed {} B, plain {} B",
            packed.len(),
            plain.len()
        );
        // Merged histograms (a coarse archive's) and empty ones pack too.
        let mut merged = vec![None; 120];
        for (k, chunk) in slots.chunks(6).enumerate() {
            let mut h = Hist::default();
            chunk.iter().flatten().for_each(|x| h.merge(x));
            merged[k] = Some(h);
        }
        merged[7] = Some(Hist::default());
        merged[8] = None;
        let bytes = encode_row(&merged);
        assert_eq!(bytes[0], FORMAT_HIST_PACKED);
        assert_eq!(decode_row(&bytes, 120).unwrap(), merged);
    }

    #[test]
    fn rows_with_foreign_buckets_stay_plain() {
        let mut slots = busy_row();
        slots[3] = Some(Hist {
            buckets: vec![(1, 2), (4097, 1)],
        });
        let bytes = encode_row(&slots);
        assert_eq!(bytes[0], FORMAT_HIST_PLAIN);
        assert_eq!(decode_row(&bytes, 720).unwrap(), slots);
    }

    #[test]
    fn damaged_packed_rows_are_errors_not_panics() {
        let bytes = encode_row(&busy_row());
        assert_eq!(bytes[0], FORMAT_HIST_PACKED);
        for cut in 0..bytes.len() {
            assert!(decode_row(&bytes[..cut], 720).is_err(), "cut {cut}");
        }
        let mut rng = fastrand::Rng::with_seed(3);
        for _ in 0..2000 {
            let mut b = bytes.clone();
            let at = rng.usize(1..b.len());
            b[at] ^= 1 << rng.u8(0..8);
            let _ = decode_row(&b, 720);
        }
    }
}
