//! A window of points to the one number a rule compares (pure).

use super::rule::{Nulls, Reducer};

/// Why a window could not be reduced.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReduceError {
    /// `nulls = "fail"` and the window has a missing point.
    #[error("a null point at {0} (nulls = \"fail\")")]
    Null(i64),
}

/// Reduces the points `values[i]` at `start + i * step` (NaN: no point).
/// `Ok(None)`: nothing to reduce (no data; for `delta` and `rate`, fewer
/// than two points).
pub fn reduce(
    start: i64,
    step: i64,
    values: &[f64],
    reducer: Reducer,
    nulls: Nulls,
) -> Result<Option<f64>, ReduceError> {
    let mut pts: Vec<(i64, f64)> = Vec::with_capacity(values.len());
    for (i, &v) in (0i64..).zip(values) {
        let t = start.saturating_add(i.saturating_mul(step));
        if v.is_nan() {
            match nulls {
                Nulls::Ignore => {}
                Nulls::Zero => pts.push((t, 0.0)),
                Nulls::Fail => return Err(ReduceError::Null(t)),
            }
        } else {
            pts.push((t, v));
        }
    }
    if pts.is_empty() {
        return Ok(None);
    }
    let n = pts.len() as f64;
    let vals = || pts.iter().map(|p| p.1);
    Ok(match reducer {
        Reducer::Last => pts.last().map(|p| p.1),
        Reducer::Avg => Some(vals().sum::<f64>() / n),
        Reducer::Min => vals().reduce(f64::min),
        Reducer::Max => vals().reduce(f64::max),
        Reducer::Sum => Some(vals().sum()),
        Reducer::Count => Some(n),
        Reducer::Median => {
            let s = sorted(vals());
            let m = s.len() / 2;
            Some(if s.len() % 2 == 1 {
                s[m]
            } else {
                (s[m - 1] + s[m]) / 2.0
            })
        }
        Reducer::Percentile(p) => {
            // Nearest rank, as statsd's upper_NN and graphite's
            // nPercentile: the smallest value with at least p% at or below.
            let s = sorted(vals());
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "the saturating `as` is intended: max(1.0) makes the rank at least 1 (NaN too), and one past usize saturates and is capped by min(len) below"
            )]
            let rank = ((p / 100.0) * n).ceil().max(1.0) as usize;
            Some(s[rank.min(s.len()) - 1])
        }
        Reducer::Delta | Reducer::Rate => {
            let (first, last) = (pts[0], pts[pts.len() - 1]);
            if pts.len() < 2 {
                None
            } else if reducer == Reducer::Delta {
                Some(last.1 - first.1)
            } else {
                Some((last.1 - first.1) / (last.0 - first.0) as f64)
            }
        }
    })
}

fn sorted(v: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut s: Vec<f64> = v.collect();
    s.sort_by(f64::total_cmp);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: f64 = f64::NAN;

    fn r(values: &[f64], reducer: Reducer) -> Option<f64> {
        reduce(100, 10, values, reducer, Nulls::Ignore).unwrap()
    }

    #[test]
    fn each_reducer() {
        let v = [3.0, N, 1.0, 4.0, 1.0, 5.0];
        assert_eq!(r(&v, Reducer::Last), Some(5.0));
        assert_eq!(r(&v, Reducer::Avg), Some(2.8));
        assert_eq!(r(&v, Reducer::Min), Some(1.0));
        assert_eq!(r(&v, Reducer::Max), Some(5.0));
        assert_eq!(r(&v, Reducer::Sum), Some(14.0));
        assert_eq!(r(&v, Reducer::Count), Some(5.0));
        assert_eq!(r(&v, Reducer::Median), Some(3.0));
        assert_eq!(r(&[1.0, 2.0, 3.0, 4.0], Reducer::Median), Some(2.5));
        assert_eq!(r(&v, Reducer::Delta), Some(2.0));
        // 3 at t=100, 5 at t=150: 2 over 50 s.
        assert_eq!(r(&v, Reducer::Rate), Some(0.04));
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(r(&hundred, Reducer::Percentile(99.0)), Some(99.0));
        assert_eq!(r(&hundred, Reducer::Percentile(100.0)), Some(100.0));
        assert_eq!(r(&hundred, Reducer::Percentile(0.5)), Some(1.0));
    }

    #[test]
    fn nulls_policies() {
        let v = [N, 2.0, N];
        assert_eq!(r(&[N, N], Reducer::Avg), None);
        assert_eq!(r(&[7.0], Reducer::Rate), None);
        assert_eq!(
            reduce(0, 10, &v, Reducer::Avg, Nulls::Zero).unwrap(),
            Some(2.0 / 3.0)
        );
        assert_eq!(
            reduce(0, 10, &v, Reducer::Count, Nulls::Zero).unwrap(),
            Some(3.0)
        );
        assert_eq!(
            reduce(0, 10, &v, Reducer::Avg, Nulls::Fail),
            Err(ReduceError::Null(0))
        );
    }
}
