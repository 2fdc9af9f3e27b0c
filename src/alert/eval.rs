//! From a rule and the store to one observation per series: the target is
//! evaluated by the query stage directly (never through our HTTP API), and
//! each series' window reduced. Live evaluation, backtests and `/check`
//! all come through here, so they agree.

use std::collections::BTreeMap;

use super::forecast;
use super::reduce::reduce;
use super::rule::{Kind, Rule};
use super::state::Observation;
use crate::query::eval::{evaluate, Context, Limits, QueryError, Spent};
use crate::query::series::Series;
use crate::store::source::SeriesSource;

/// The key of an instance: the series name, made unique within one result
/// (two targets can yield the same name) by a ` #2` suffix.
pub fn instance_names(series: &[Series]) -> Vec<String> {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    series
        .iter()
        .map(|s| {
            let n = seen.entry(s.name.as_str()).or_insert(0);
            *n += 1;
            if *n == 1 {
                s.name.clone()
            } else {
                format!("{} #{}", s.name, n)
            }
        })
        .collect()
}

/// The series' tags as an alert's labels (its `name` tag is the series
/// label already).
pub fn tags(s: &Series) -> BTreeMap<String, String> {
    s.tags
        .iter()
        .filter(|(k, _)| k.as_str() != "name")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Evaluates the rule's target over `[from, until]` at `now`, reading at
/// most `max_series` series and `max_points` points.
pub fn fetch(
    store: &dyn SeriesSource,
    rule: &Rule,
    from: i64,
    until: i64,
    now: i64,
    limits: Limits,
) -> Result<Vec<Series>, QueryError> {
    let mut ctx = Context {
        store,
        from,
        until,
        now,
        tz: chrono_tz::Tz::UTC,
        server_tz: chrono_tz::Tz::UTC,
        xff: 0.0,
        limits,
        spent: Spent::default(),
    };
    let series = evaluate(&mut ctx, &rule.target)?;
    if series.len() > limits.max_series {
        return Err(QueryError::TooMuch {
            what: "series",
            needed: series.len(),
            cap: limits.max_series,
        });
    }
    Ok(series)
}

/// What the rule sees in `s` for the window ending at `t`: the points with
/// times in `(t - window, t]`. A trailing null whose interval has not ended
/// by `t` is left out: that point is still being aggregated (a 10 s flush
/// writes the point stamped 12:00:00 at 12:00:10), and counting it as
/// missing would turn every `nulls = "fail"` rule into an error and pull
/// every `count` down by one.
#[expect(
    clippy::cast_possible_wrap,
    reason = "i indexes s.values, a Vec, so it is below isize::MAX and fits an i64"
)]
pub fn observe_at(rule: &Rule, s: &Series, t: i64) -> Observation {
    let step = s.step.max(1);
    let w = super::secs(rule.window);
    let lo = t.saturating_sub(w);
    // Index range of times in (lo, t].
    let first = if lo < s.start {
        0
    } else {
        // Past usize is past every index: no data.
        usize::try_from((lo - s.start) / step + 1).unwrap_or(usize::MAX)
    };
    let last_incl = if t < s.start {
        return Observation::NoData;
    } else {
        usize::try_from((t - s.start) / step)
            .unwrap_or(usize::MAX)
            .min(s.values.len().saturating_sub(1))
    };
    if first > last_incl || s.values.is_empty() {
        return Observation::NoData;
    }
    let mut end = last_incl + 1;
    let ts = |i: usize| s.start + i as i64 * step;
    if s.values[end - 1].is_nan() && ts(end - 1) + step > t {
        end -= 1;
    }
    let values = &s.values[first..end];
    let start = ts(first);
    match &rule.kind {
        Kind::Threshold(th) => match reduce(start, step, values, th.reducer, th.nulls) {
            Ok(Some(v)) => Observation::Value(v),
            Ok(None) => Observation::NoData,
            Err(e) => Observation::Error(e.to_string()),
        },
        Kind::Forecast(f) => {
            let pts: Vec<(i64, f64)> = values
                .iter()
                .enumerate()
                .filter(|(_, v)| !v.is_nan())
                .map(|(i, &v)| (start + i as i64 * step, v))
                .collect();
            if pts.is_empty() {
                Observation::NoData
            } else {
                Observation::Forecast(forecast::judge(f, &pts, t))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::rule::parse_file;

    fn rule(extra: &str) -> Rule {
        parse_file(&format!(
            "[[rule]]\nname = \"r\"\ntarget = \"a\"\n{extra}\n"
        ))
        .unwrap()
        .remove(0)
    }

    #[test]
    fn the_window_ends_at_t_and_skips_the_point_still_filling() {
        let r = rule("reducer = \"count\"\nwindow = \"30s\"\ndirection = \"above\"\ncrit = 1");
        let n = f64::NAN;
        // Points at 100, 110, ..., 150; the one at 150 not flushed yet.
        let s = Series::new("a", 100, 160, 10, vec![1.0, 2.0, 3.0, 4.0, 5.0, n]);
        // At t = 155: (125, 155] holds 130, 140, 150; 150 is still filling.
        assert_eq!(observe_at(&r, &s, 155), Observation::Value(2.0));
        // At t = 140: (110, 140] holds 120, 130, 140.
        assert_eq!(observe_at(&r, &s, 140), Observation::Value(3.0));
        let r = rule("reducer = \"last\"\nwindow = \"30s\"\ndirection = \"above\"\ncrit = 1\nnulls = \"fail\"");
        assert_eq!(observe_at(&r, &s, 155), Observation::Value(5.0));
        // A null that is complete is a null.
        let s2 = Series::new("a", 100, 160, 10, vec![1.0, n, 3.0]);
        assert!(matches!(observe_at(&r, &s2, 125), Observation::Error(_)));
        assert_eq!(observe_at(&r, &s, 90), Observation::NoData);
    }

    #[test]
    fn duplicate_names_get_a_suffix() {
        let s = vec![
            Series::new("a", 0, 10, 10, vec![]),
            Series::new("a", 0, 10, 10, vec![]),
            Series::new("b", 0, 10, 10, vec![]),
        ];
        assert_eq!(instance_names(&s), vec!["a", "a #2", "b"]);
    }
}
