//! `timerPercentile(timers, n)`: true percentiles of statsd timers, read
//! from the merged histograms rollupd keeps beside each timer's stats.
//!
//! A timer's `upper_90` point is exact for one flush, but a coarser point
//! (or `maxDataPoints` consolidation) of it can only average or max finer
//! percentiles. The store also keeps, per timer and per point of every
//! archive, the histogram of all samples in that point's window (merged as
//! the point rolls up), so any percentile of any step is a true one, to the
//! histogram's three significant digits.
//!
//! The argument names timers by their branch (`stats.timers.api.login`,
//! globs allowed: `stats.timers.api.*`), not by one of their stats. The
//! step is that of the archive the window reads, as for the stat series.

use super::info::{p, FnInfo, Ty};
use super::Args;
use crate::eval::{Context, QueryError};
use crate::format::{py_float_repr, py_g};
use crate::parse::Expr;
use crate::series::{tags_of, Series};

pub(super) const INFO: &[FnInfo] = &[FnInfo::new(
    "timerPercentile",
    "Calculate",
    "rollupd: the n-th percentile (0 < n <= 100) of all samples of each statsd timer in each step, from the timer's merged histogram (name the timer, e.g. stats.timers.api.login; globs allowed).",
    &[
        p("timers", Ty::SeriesList).req(),
        p("n", Ty::Float).req(),
    ],
)];

#[expect(
    clippy::cast_possible_wrap,
    reason = "a Vec's length is at most isize::MAX"
)]
fn timer_percentile(
    ctx: &mut Context<'_>,
    a: &Args<'_>,
    pattern: &str,
    n: f64,
) -> Result<Vec<Series>, QueryError> {
    let bad = |m: String| QueryError::BadArgument(format!("timerPercentile(): {m}"));
    let found: Vec<(String, u32)> = ctx
        .store
        .find_hists(
            pattern,
            ctx.limits.max_series.saturating_sub(ctx.spent.series) + 1,
        )
        .map_err(|e| QueryError::Glob(e.to_string()))?;
    if found.is_empty() {
        return Err(bad(format!(
            "{pattern} names no timer with a histogram (name the timer, e.g. stats.timers.api.login, not one of its stats; only timers rollupd aggregated itself have one)"
        )));
    }
    // Against what the whole request has read, before any is fetched.
    ctx.charge_series(found.len())?;
    let q = n / 100.0;
    let mut out = Vec::with_capacity(found.len());
    for (path, id) in found {
        let Some((from, step, hists)) = ctx.store.fetch_hists(id, ctx.from, ctx.until, ctx.now)?
        else {
            continue;
        };
        a.charge(ctx, hists.len())?;
        let values: Vec<f64> = hists
            .iter()
            .map(|h| h.as_ref().and_then(|h| h.quantile(q)).unwrap_or(f64::NAN))
            .collect();
        let step = i64::from(step);
        let end = from + values.len() as i64 * step;
        let name = format!("timerPercentile({path},{})", py_g(n));
        let mut s = Series::new(&name, from, end, step, values);
        s.tags = tags_of(&path);
        s.tags.insert("timerPercentile".into(), py_float_repr(n));
        out.push(s);
    }
    Ok(out)
}

pub(super) fn call(
    ctx: &mut Context<'_>,
    name: &str,
    a: &Args<'_>,
) -> Option<Result<Vec<Series>, QueryError>> {
    if name != "timerPercentile" {
        return None;
    }
    Some((|| {
        let pattern = match a.get(0, "timers") {
            Some(Expr::Path(p)) => p.as_str(),
            Some(other) => {
                return Err(a.bad_arg(format!(
                    "the first argument names timers (a path or glob), not {}",
                    other.to_target()
                )))
            }
            None => return Err(a.bad_arg("the timers to read are missing")),
        };
        let n = a.num(1, "n")?;
        if !(n > 0.0 && n <= 100.0) {
            return Err(a.bad_arg(format!(
                "n must be above 0 and at most 100, not {}",
                py_g(n)
            )));
        }
        timer_percentile(ctx, a, pattern, n)
    })())
}

#[cfg(test)]
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "test fixtures: sample times in milliseconds and slot offsets within a \
              two-hour window"
)]
mod tests {
    use super::*;
    use crate::eval::evaluate;
    use rollupd_config::{RetentionRule, StorageConfig};
    use rollupd_store::hist::Hist;
    use rollupd_store::{Point, Store};

    const T0: i64 = 1_795_300_200; // a multiple of 600

    fn store() -> Store {
        let c = StorageConfig {
            retention: vec![RetentionRule {
                pattern: ".*".into(),
                retentions: "10s:1h,1m:1d".into(),
            }],
            ..StorageConfig::default()
        };
        let store = Store::in_memory(&c).unwrap();
        // Flush k (k = 0..12, every 10 s from T0): samples k*10+1 ..= k*10+10 ms.
        for k in 0..12i64 {
            let t = T0 + k * 10;
            let samples: Vec<f64> = (1..=10).map(|i| (k * 10 + i) as f64).collect();
            let h = Hist::from_sorted_samples(&samples);
            let upper = samples[9];
            let pts = [Point {
                name: "stats.timers.api.login.upper",
                timestamp: t,
                value: upper,
            }];
            store
                .write(&pts, &[("stats.timers.api.login", t, h)], t)
                .unwrap();
        }
        store
    }

    /// What a 3-significant-digit hdrhistogram reports for a sample of `ms`:
    /// the top of its bucket. Microseconds below 2048 are exact; each
    /// power of two above that halves the resolution.
    fn hdr_top(ms: f64) -> f64 {
        let us = (ms * 1000.0) as u64;
        if us < 2048 {
            return ms;
        }
        let k = 63 - us.leading_zeros(); // us in [2^k, 2^(k+1))
        let res = 1u64 << (k - 10);
        ((us / res) * res + res - 1) as f64 / 1000.0
    }

    fn run(
        store: &Store,
        target: &str,
        from: i64,
        until: i64,
        now: i64,
    ) -> Result<Vec<Series>, QueryError> {
        let mut c = super::super::testutil::ctx(store, from, until, now);
        evaluate(&mut c, target)
    }

    #[test]
    fn percentiles_of_each_flush_at_10s() {
        let s = store();
        let now = T0 + 120;
        let out = run(
            &s,
            "timerPercentile(stats.timers.api.*,90)",
            T0 - 1,
            T0 + 119,
            now,
        )
        .unwrap();
        assert_eq!(out.len(), 1);
        let x = &out[0];
        assert_eq!(x.name, "timerPercentile(stats.timers.api.login,90)");
        assert_eq!(x.tags["name"], "stats.timers.api.login");
        assert_eq!(x.tags["timerPercentile"], "90.0");
        assert_eq!((x.start, x.step), (T0, 10));
        // Flush k holds k*10+1 ..= k*10+10 ms: the 90th percentile is the
        // ceil(0.9 * 10) = 9th sample, k*10+9 ms, as its bucket reports it.
        assert_eq!(x.values[0], 9.007);
        for (k, v) in x.values.iter().take(12).enumerate() {
            assert_eq!(*v, hdr_top((k * 10 + 9) as f64), "flush {k}");
        }
    }

    /// A tagged timer's histogram is named by its exact name (tagged
    /// names are in no glob tree).
    #[test]
    fn a_tagged_timer_is_named_exactly() {
        let s = store();
        let name = "stats.timers.api.login;env=prod";
        for k in 0..3i64 {
            let t = T0 + k * 10;
            let h = Hist::from_sorted_samples(&[1.0, 2.0, 3.0, 4.0]);
            s.write(&[], &[(name, t, h)], t).unwrap();
        }
        let target = format!("timerPercentile({name},50)");
        let out = run(&s, &target, T0 - 1, T0 + 29, T0 + 30).unwrap();
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].tags["env"], "prod");
        assert_eq!(out[0].values[..3], [2.0, 2.0, 2.0]);
    }

    #[test]
    fn a_minute_step_merges_its_six_flushes() {
        let s = store();
        // Two hours later the window reads the 1m archive.
        let now = T0 + 2 * 3600;
        let out = run(
            &s,
            "timerPercentile(stats.timers.api.login,50)",
            T0 - 60,
            T0 + 119,
            now,
        )
        .unwrap();
        let x = &out[0];
        assert_eq!(x.step, 60);
        let first = ((T0 - x.start) / 60) as usize;
        // Minute one holds samples 1..=60: the 30th is 30 ms; minute two
        // holds 61..=120: the 30th is 90 ms (each as its bucket reports it:
        // 30 ms is in 16 µs buckets, 90 ms in 64 µs ones).
        assert_eq!(x.values[first], 30.015);
        assert_eq!(x.values[first + 1], hdr_top(90.0));
        assert_eq!(hdr_top(90.0), 90.047);
        // 99th: ceil(0.99 * 60) = 60th sample.
        let out = run(
            &s,
            "timerPercentile(stats.timers.api.login,99)",
            T0 - 60,
            T0 + 119,
            now,
        )
        .unwrap();
        assert_eq!(out[0].values[first + 1], hdr_top(120.0));
    }

    #[test]
    fn a_path_without_histogram_is_a_400_naming_it() {
        let s = store();
        let e = run(
            &s,
            "timerPercentile(stats.timers.api.login.upper,99)",
            T0,
            T0 + 60,
            T0 + 120,
        )
        .unwrap_err();
        assert!(
            matches!(&e, QueryError::BadArgument(m) if m.contains("stats.timers.api.login.upper")),
            "{e}"
        );
        let e = run(
            &s,
            "timerPercentile(sumSeries(stats.timers.api.login.upper),99)",
            T0,
            T0 + 60,
            T0 + 120,
        )
        .unwrap_err();
        assert!(matches!(e, QueryError::BadArgument(_)));
        let e = run(
            &s,
            "timerPercentile(stats.timers.api.login,0)",
            T0,
            T0 + 60,
            T0 + 120,
        )
        .unwrap_err();
        assert!(matches!(e, QueryError::BadArgument(_)));
    }
}
