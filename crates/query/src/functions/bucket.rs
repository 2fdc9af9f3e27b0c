//! Time-bucket functions: summarize and hitcount (graphite-web's
//! `summarize`/`_summarizeValues` and `hitcount`).
//!
//! summarize buckets by multiples of the interval since the epoch (the
//! first and last buckets may be partial), or from the series' start with
//! `alignToFrom`. hitcount reads values as rates and spreads `value * step`
//! hits over the buckets a point's step overlaps, its buckets ending at the
//! series' end; `alignToInterval` refetches from `from` truncated to the
//! minute, hour or day (in the request's time zone).

use chrono::{Offset, TimeZone};

use super::aggfunc::AggFunc;
use super::window::xff_ok;
use super::Args;
use crate::eval::{Context, QueryError};
use crate::series::Series;
use crate::time::parse_offset;

/// What `/functions` says about each function here (graphite-web's
/// groups and parameters); the registry dispatches by these names.
pub(super) const INFO: &[super::info::FnInfo] = {
    use super::info::{p, FnInfo, Lit::*, Param, Ty, SERIES_LIST};
    const INTERVAL: Param =
        p("intervalString", Ty::Interval)
            .req()
            .sugg(&[Str("10min"), Str("1h"), Str("1d")]);
    &[
        FnInfo::new(
            "hitcount",
            "Transform",
            "Estimates hit counts per interval from series of rates: each point's value times its step, spread over the buckets its step overlaps. alignToInterval starts the buckets at a whole minute, hour or day.",
            &[
                SERIES_LIST,
                INTERVAL,
                p("alignToInterval", Ty::Boolean).dflt(Bool(false)),
            ],
        ),
        FnInfo::new(
            "summarize",
            "Transform",
            "Summarizes each series into buckets of intervalString with func (sum by default; average, max, min, last, ...). Buckets are aligned to the epoch, or to `from` with alignToFrom.",
            &[
                SERIES_LIST,
                INTERVAL,
                p("func", Ty::AggFunc).dflt(Str("sum")),
                p("alignToFrom", Ty::Boolean).dflt(Bool(false)),
            ],
        ),
    ]
};

/// An interval argument in seconds; graphite-web divides by it, so it must
/// be positive here.
fn interval_secs(func: &str, text: &str) -> Result<i64, QueryError> {
    let secs = parse_offset(text)?;
    if secs <= 0 {
        return Err(QueryError::BadArgument(format!(
            "{func}(): the interval {text:?} must be positive"
        )));
    }
    Ok(secs)
}

/// `_summarizeValues`: values per bucket from `new_start` while the bucket
/// starts before `new_end`, and where the last bucket ended.
#[expect(
    clippy::cast_possible_wrap,
    reason = "`i` indexes `s.values`, and a Vec holds at most isize::MAX elements"
)]
pub(super) fn summarize_values(
    s: &Series,
    agg: AggFunc,
    interval: i64,
    new_start: i64,
    new_end: i64,
) -> (Vec<f64>, i64) {
    let step = s.step.max(1);
    let n_ts = if s.end > s.start {
        usize::try_from((s.end - s.start + step - 1) / step).unwrap_or(usize::MAX)
    } else {
        0
    };
    let num = n_ts.min(s.values.len());
    let ts = |i: usize| s.start + i as i64 * step;
    let interval_points = interval as f64 / step as f64;
    let mut out = Vec::new();
    let mut i = 0;
    let mut t = new_start;
    while t < new_end {
        let mut first = i;
        let mut non_null = 0;
        while i < num && ts(i) < t + interval {
            if ts(i) <= t {
                first = i;
            }
            if ts(i) >= t && !s.values[i].is_nan() {
                non_null += 1;
            }
            i += 1;
        }
        out.push(if xff_ok(non_null, interval_points, s.xff) {
            agg.apply(&s.values[first..i])
        } else {
            f64::NAN
        });
        t += interval;
    }
    (out, t)
}

/// The buckets summarize makes of `s`: `[new_start, new_end)` in steps of
/// `interval` (both as [`summarize`] works them out).
fn summarize_bounds(s: &Series, interval: i64, align_to_from: bool) -> (i64, i64) {
    if align_to_from {
        (s.start, s.end)
    } else {
        (
            s.start - s.start.rem_euclid(interval),
            s.end - s.end.rem_euclid(interval) + interval,
        )
    }
}

/// How many buckets of `interval` seconds cover `[start, end)`: what
/// summarize and hitcount allocate, computed before they do.
fn bucket_count(start: i64, end: i64, interval: i64) -> usize {
    // Times and intervals are in range (`time::check_time`), so the
    // difference cannot overflow.
    let span = end.saturating_sub(start).max(0).unsigned_abs();
    usize::try_from(span.div_ceil(interval.max(1).unsigned_abs())).unwrap_or(usize::MAX)
}

/// summarize over one series.
pub(super) fn summarize(
    mut s: Series,
    interval_text: &str,
    interval: i64,
    func: &str,
    align_to_from: bool,
) -> Result<Series, QueryError> {
    let agg = AggFunc::get(func)?;
    let (new_start, new_end) = summarize_bounds(&s, interval, align_to_from);
    let (values, aligned_end) = summarize_values(&s, agg, interval, new_start, new_end);
    s.tags.insert("summarize".into(), interval_text.to_string());
    s.tags.insert("summarizeFunction".into(), func.to_string());
    s.name = format!(
        "summarize({}, \"{interval_text}\", \"{func}\"{})",
        s.name,
        if align_to_from { ", true" } else { "" }
    );
    s.path_expression = s.name.clone();
    s.start = new_start;
    s.end = if align_to_from { aligned_end } else { new_end };
    s.step = interval;
    s.values = values;
    Ok(s)
}

/// hitcount over one series.
#[expect(
    clippy::cast_possible_wrap,
    reason = "`i` indexes `s.values`, and a Vec holds at most isize::MAX elements"
)]
pub(super) fn hitcount(mut s: Series, interval_text: &str, interval: i64, align: bool) -> Series {
    let step = s.step;
    // graphite-web's `int(math.ceil(...))`.
    let bucket_count = super::py_int(((s.end - s.start) as f64 / interval as f64).ceil().max(0.0));
    let new_start = s.end - bucket_count * interval;
    // Each bucket's running sum, in the order graphite-web appends its
    // hits and then sums them from 0 (the same additions, so the same
    // result), without a list per bucket: 8-16 bytes a bucket, not 24
    // plus a heap block.
    let mut buckets: Vec<Option<f64>> = vec![None; usize::try_from(bucket_count).unwrap_or(0)];
    let mut add = |b: i64, v: f64| {
        if let Some(bucket) = usize::try_from(b).ok().and_then(|b| buckets.get_mut(b)) {
            *bucket = Some(bucket.unwrap_or(0.0) + v);
        }
    };
    for (i, &value) in s.values.iter().enumerate() {
        if value.is_nan() {
            continue;
        }
        let start_time = s.start + i as i64 * step;
        let (start_bucket, start_mod) = (
            (start_time - new_start).div_euclid(interval),
            (start_time - new_start).rem_euclid(interval),
        );
        let end_time = start_time + step;
        let (mut end_bucket, mut end_mod) = (
            (end_time - new_start).div_euclid(interval),
            (end_time - new_start).rem_euclid(interval),
        );
        if end_bucket >= bucket_count {
            end_bucket = bucket_count - 1;
            end_mod = interval;
        }
        if start_bucket == end_bucket {
            if start_bucket >= 0 {
                add(start_bucket, value * (end_mod - start_mod) as f64);
            }
        } else {
            if start_bucket >= 0 {
                add(start_bucket, value * (interval - start_mod) as f64);
            }
            let hits = value * interval as f64;
            for j in start_bucket + 1..end_bucket {
                add(j, hits);
            }
            if end_mod > 0 {
                add(end_bucket, value * end_mod as f64);
            }
        }
    }
    s.values = buckets.iter().map(|b| b.unwrap_or(f64::NAN)).collect();
    s.tags.insert("hitcount".into(), interval_text.to_string());
    s.name = format!(
        "hitcount({}, \"{interval_text}\"{})",
        s.name,
        if align { ", true" } else { "" }
    );
    s.path_expression = s.name.clone();
    s.start = new_start;
    s.step = interval;
    s
}

/// `datetime(s.year, ..., tzinfo=s.tzinfo)`: `t`'s wall clock in `tz`
/// truncated to a multiple of `unit` seconds, keeping `t`'s UTC offset
/// (pytz's fixed-offset tzinfo).
fn truncate_local(t: i64, unit: i64, tz: &chrono_tz::Tz) -> i64 {
    let offset = tz
        .timestamp_opt(t, 0)
        .single()
        .map(|d| i64::from(d.offset().fix().local_minus_utc()))
        .unwrap_or(0);
    let local = t + offset;
    local - local.rem_euclid(unit) - offset
}

pub(super) fn call(
    ctx: &mut Context<'_>,
    name: &str,
    a: &Args<'_>,
) -> Option<Result<Vec<Series>, QueryError>> {
    match name {
        "summarize" => Some((|| {
            let list = a.series(ctx, 0)?;
            let text = a.string(1, "intervalString")?;
            let interval = interval_secs(name, text)?;
            let func = a.opt_string(2, "func")?.unwrap_or("sum");
            let align = a.opt_bool(3, "alignToFrom")?.unwrap_or(false);
            // '1s' over five years is 158 million buckets a series: counted
            // against the points cap before any is allocated.
            let buckets = list.iter().fold(0usize, |n, s| {
                let (start, end) = summarize_bounds(s, interval, align);
                n.saturating_add(bucket_count(start, end, interval))
            });
            a.will_make(ctx, buckets)?;
            list.into_iter()
                .map(|s| {
                    ctx.limits.check_deadline()?;
                    summarize(s, text, interval, func, align)
                })
                .collect()
        })()),
        "hitcount" => Some((|| {
            let mut list = a.series(ctx, 0)?;
            let text = a.string(1, "intervalString")?;
            let interval = interval_secs(name, text)?;
            let align = a.opt_bool(2, "alignToInterval")?.unwrap_or(false);
            if align {
                let unit = if interval >= 86400 {
                    86400
                } else if interval >= 3600 {
                    3600
                } else if interval >= 60 {
                    60
                } else {
                    1
                };
                let from = truncate_local(ctx.from, unit, &ctx.tz);
                list = a.series_over(ctx, 0, from, ctx.until)?;
                for s in &mut list {
                    let count = (s.end - s.start).div_euclid(interval);
                    s.end = s.start + count * interval + interval;
                }
            }
            let buckets = list.iter().fold(0usize, |n, s| {
                n.saturating_add(bucket_count(s.start, s.end, interval))
            });
            a.will_make(ctx, buckets)?;
            list.into_iter()
                .map(|s| {
                    ctx.limits.check_deadline()?;
                    Ok(hitcount(s, text, interval, align))
                })
                .collect()
        })()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{same, N};
    use super::*;

    /// 10 s points from 1790 to 1900 (end 1900, as fetched: one step past
    /// the last point at 1890).
    fn s12() -> Series {
        let v = vec![1.0, 2.0, 3.0, N, 5.0, 6.0, 7.0, 8.0, N, N, 11.0];
        Series::new("a.b", 1790, 1900, 10, v)
    }

    #[test]
    fn summarize_on_epoch_buckets() {
        let s = summarize(s12(), "1min", 60, "sum", false).unwrap();
        assert_eq!(s.name, "summarize(a.b, \"1min\", \"sum\")");
        assert_eq!(s.path_expression, s.name);
        assert_eq!(s.tags.get("summarize").map(String::as_str), Some("1min"));
        assert_eq!(
            s.tags.get("summarizeFunction").map(String::as_str),
            Some("sum")
        );
        // Buckets 1740..1800 (1790), 1800..1860 (1800..1850), 1860..1920.
        assert_eq!((s.start, s.end, s.step), (1740, 1920, 60));
        assert!(
            same(&s.values, &[1.0, 2.0 + 3.0 + 5.0 + 6.0 + 7.0, 8.0 + 11.0]),
            "{:?}",
            s.values
        );
        let avg = summarize(s12(), "1min", 60, "avg", false).unwrap();
        assert_eq!(avg.name, "summarize(a.b, \"1min\", \"avg\")");
        assert!(same(&avg.values, &[1.0, 23.0 / 5.0, 9.5]));
        let mul = summarize(s12(), "1min", 60, "multiply", false).unwrap();
        assert!(
            same(&mul.values, &[1.0, N, N]),
            "a None in the bucket: {:?}",
            mul.values
        );
        let last = summarize(s12(), "1min", 60, "last", false).unwrap();
        assert!(same(&last.values, &[1.0, 7.0, 11.0]));
        assert!(summarize(s12(), "1min", 60, "mode", false).is_err());
    }

    #[test]
    fn summarize_aligned_to_from() {
        let s = summarize(s12(), "30s", 30, "max", true).unwrap();
        assert_eq!(s.name, "summarize(a.b, \"30s\", \"max\", true)");
        // Buckets from 1790: [1,2,3] [N,5,6] [7,8,N] [N,11] (the last one
        // partial); the end is where the last bucket ends, 1910.
        assert_eq!((s.start, s.end, s.step), (1790, 1910, 30));
        assert!(same(&s.values, &[3.0, 6.0, 8.0, 11.0]), "{:?}", s.values);
    }

    #[test]
    fn summarize_xfilesfactor() {
        let mut x = s12();
        x.xff = 0.5;
        let s = summarize(x, "1min", 60, "sum", false).unwrap();
        // 1/6, 5/6 and 2/6 of the bucket known.
        assert!(same(&s.values, &[N, 23.0, N]), "{:?}", s.values);
    }

    #[test]
    fn hitcount_spreads_rates_over_buckets() {
        // Rates at 10 s, 1-minute buckets ending at the series' end (1900):
        // 1780..1840, 1840..1900.
        let s = hitcount(s12(), "1min", 60, false);
        assert_eq!(s.name, "hitcount(a.b, \"1min\")");
        assert_eq!(s.tags.get("hitcount").map(String::as_str), Some("1min"));
        assert_eq!((s.start, s.end, s.step), (1780, 1900, 60));
        let want0 = (1.0 + 2.0 + 3.0 + 5.0) * 10.0;
        let want1 = (6.0 + 7.0 + 8.0 + 11.0) * 10.0;
        assert!(same(&s.values, &[want0, want1]), "{:?}", s.values);
    }

    #[test]
    fn hitcount_splits_a_step_across_buckets() {
        // 60 s points, 25 s buckets: bucket_count = ceil(180/25) = 8,
        // start 1000 + 180 - 200 = 980.
        let x = Series::new("c", 1000, 1180, 60, vec![1.0, N, 2.0]);
        let s = hitcount(x, "25s", 25, true);
        assert_eq!(s.name, "hitcount(c, \"25s\", true)");
        assert_eq!((s.start, s.step), (980, 25));
        // Point 1000..1060: bucket 0 (980..1005) gets 5, 1 and 2 get 25
        // each, bucket 3 (1055..1080) gets 5. Point 1120..1180: bucket 5
        // (1105..1130) 10 s, 6 25 s, 7 25 s (end_mod clamps to the last).
        assert!(
            same(&s.values, &[5.0, 25.0, 25.0, 5.0, N, 20.0, 50.0, 50.0]),
            "{:?}",
            s.values
        );
    }

    #[test]
    fn truncation_keeps_the_offset_of_the_instant() {
        let utc = chrono_tz::Tz::UTC;
        assert_eq!(
            truncate_local(86400 * 3 + 3725, 3600, &utc),
            86400 * 3 + 3600
        );
        assert_eq!(truncate_local(86400 * 3 + 3725, 86400, &utc), 86400 * 3);
        // 2026-11-22 02:30 UTC is 08:00 in Kolkata (+05:30): its midnight
        // is 2026-11-21 18:30 UTC, and 08:29:59 local truncates to 08:00.
        let k: chrono_tz::Tz = "Asia/Kolkata".parse().unwrap();
        let t = 1_795_314_600;
        assert_eq!(truncate_local(t, 86400, &k), 1_795_314_600 - 8 * 3600);
        assert_eq!(truncate_local(t + 1799, 3600, &k), t);
    }
}
