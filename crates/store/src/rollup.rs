//! Rolling finer points up into coarser ones: whisper's propagation, in one
//! place for the three paths that need it. The seal writes a coarse row's
//! points once the finer row under them is sealed (`seal.rs`); reads
//! compute the stretch not sealed yet from the finer rows (`read.rs`); and
//! a late change to a sealed row rolls up at once (`write.rs`). All three
//! call these functions, so they cannot disagree.
//!
//! A coarse archive's point at `bucket` is the series' method over the
//! known finer slots of its window (the `step_j ÷ step_(j−1)` finer slots
//! from `bucket`, all in one finer row: spans are multiples of the next
//! coarser step), written only if the known fraction reaches the series'
//! xff. A timer statistic linked to a histogram takes instead that
//! statistic of the histogram merged over the window.

use super::hist::Hist;
use super::index::Stat;
use super::open::Shape;
use super::schema::Method;

/// How a value series rolls up.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub method: Method,
    pub xff: f32,
    /// A timer stat's histogram series and statistic.
    pub link: Option<(u32, Stat)>,
}

/// The statistic of a merged histogram.
pub fn stat_of(h: &Hist, stat: Stat) -> Option<f64> {
    match stat {
        Stat::Quantile(q) => h.quantile(q),
        Stat::Mean => h.mean(),
        Stat::Std => h.stdev(),
    }
}

/// One coarse value from its finer window (`per` slots; `finer` may be
/// shorter, missing slots absent) and, for a linked stat, the histogram
/// merged over the same window.
pub fn value(rule: &Rule, finer: &[f64], per: usize, merged: Option<&Hist>) -> Option<f64> {
    let agg = rule.method.aggregate_window(finer, per, rule.xff)?;
    if let (Some((_, stat)), Some(h)) = (rule.link, merged) {
        if let Some(v) = stat_of(h, stat) {
            return Some(v);
        }
    }
    Some(agg)
}

/// The merge of a window's histograms; `None` when the window has none.
pub fn merge(finer: &[Option<Hist>]) -> Option<Hist> {
    let mut merged = Hist::default();
    for h in finer.iter().flatten() {
        merged.merge(h);
    }
    (!merged.is_empty()).then_some(merged)
}

/// Where a point at `ts` lands in archive `a`: its row's start and slot.
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "callers pass 0 <= ts <= u32::MAX (the write path refuses other timestamps, points and histograms alike; the seal locates buckets of stored rows' points), so the row start, between 0 and ts, fits a u32; the slot is in 0..span / step"
)]
pub fn locate(shape: &Shape, a: usize, ts: i64) -> (u32, usize) {
    let step = i64::from(shape.steps[a]);
    let span = i64::from(shape.spans[a]);
    let t = ts - ts.rem_euclid(step);
    let start = t - t.rem_euclid(span);
    (start as u32, ((t - start) / step) as usize)
}

/// The coarse buckets (archive `j`) a finer row (archive `j − 1`, starting
/// at `start`) covers, from time `from` on: each as its time and the finer
/// slots of its window.
pub fn windows(
    shape: &Shape,
    j: usize,
    start: u32,
    from: i64,
) -> impl Iterator<Item = (i64, std::ops::Range<usize>)> {
    let coarse = i64::from(shape.steps[j]);
    let per = (shape.steps[j] / shape.steps[j - 1]) as usize;
    let start = i64::from(start);
    (0..shape.spans[j - 1] / shape.steps[j]).filter_map(move |k| {
        let bucket = start + i64::from(k) * coarse;
        let first = k as usize * per;
        (bucket + coarse > from).then_some((bucket, first..first + per))
    })
}

/// The coarse values of a finer value row, from time `from` on: (bucket,
/// value) for each window that rolls up. `hists` is the linked histogram
/// series' finer row over the same span, when the rule has a link.
pub fn roll_values(
    shape: &Shape,
    j: usize,
    start: u32,
    from: i64,
    rule: &Rule,
    finer: &[f64],
    hists: Option<&[Option<Hist>]>,
) -> Vec<(i64, f64)> {
    windows(shape, j, start, from)
        .filter_map(|(bucket, w)| {
            let slice = &finer[w.start.min(finer.len())..w.end.min(finer.len())];
            let merged = hists.and_then(|h| merge(&h[w.start.min(h.len())..w.end.min(h.len())]));
            value(rule, slice, w.len(), merged.as_ref()).map(|v| (bucket, v))
        })
        .collect()
}

/// The coarse histograms of a finer histogram row, from time `from` on.
pub fn roll_hists(
    shape: &Shape,
    j: usize,
    start: u32,
    from: i64,
    finer: &[Option<Hist>],
) -> Vec<(i64, Hist)> {
    windows(shape, j, start, from)
        .filter_map(|(bucket, w)| {
            merge(&finer[w.start.min(finer.len())..w.end.min(finer.len())]).map(|h| (bucket, h))
        })
        .collect()
}
