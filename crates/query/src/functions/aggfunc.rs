//! graphite-web's aggregation functions by name (`functions/aggfuncs.py`
//! over `functions/safe.py`), as movingWindow, summarize and friends take
//! them: `'average'`, `'median'`, `'sum'`, `'min'`, `'max'`, `'diff'`,
//! `'stddev'`, `'count'`, `'range'`, `'multiply'`, `'last'`, `'avg_zero'`,
//! and the aliases `'avg'`, `'rangeOf'`, `'total'`, `'current'`.
//!
//! Values are NaN for Python's None; a NaN result is None.

use crate::eval::QueryError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AggFunc {
    Average,
    AvgZero,
    Median,
    Sum,
    Min,
    Max,
    Diff,
    StdDev,
    Count,
    Range,
    Multiply,
    Last,
}

impl AggFunc {
    pub(super) fn parse(name: &str) -> Option<AggFunc> {
        Some(match name {
            "average" | "avg" => AggFunc::Average,
            "avg_zero" => AggFunc::AvgZero,
            "median" => AggFunc::Median,
            "sum" | "total" => AggFunc::Sum,
            "min" => AggFunc::Min,
            "max" => AggFunc::Max,
            "diff" => AggFunc::Diff,
            "stddev" => AggFunc::StdDev,
            "count" => AggFunc::Count,
            "range" | "rangeOf" => AggFunc::Range,
            "multiply" => AggFunc::Multiply,
            "last" | "current" => AggFunc::Last,
            _ => return None,
        })
    }

    /// `getAggFunc`, with its error (a 400 in graphite-web too).
    pub(super) fn get(name: &str) -> Result<AggFunc, QueryError> {
        AggFunc::parse(name).ok_or_else(|| {
            QueryError::BadArgument(format!("Unsupported aggregation function: {name}"))
        })
    }

    /// The function over `values` (None = NaN), as the safe* helpers do it:
    /// Nones skipped (avg_zero counts them as 0, multiply is None if any is
    /// None), None when nothing is left (count gives 0).
    pub(super) fn apply(self, values: &[f64]) -> f64 {
        let known = || values.iter().copied().filter(|v| !v.is_nan());
        // Python's sum(): left to right from the integer 0.
        let py_sum = |it: &mut dyn Iterator<Item = f64>| it.fold(0.0, |a, v| a + v);
        let n = known().count();
        match self {
            AggFunc::Count => n as f64,
            AggFunc::AvgZero => {
                if values.is_empty() {
                    f64::NAN
                } else {
                    let s = py_sum(&mut values.iter().map(|v| if v.is_nan() { 0.0 } else { *v }));
                    s / values.len() as f64
                }
            }
            AggFunc::Multiply => {
                if values.is_empty() || n < values.len() {
                    f64::NAN
                } else {
                    values.iter().skip(1).fold(values[0], |a, v| a * v)
                }
            }
            _ if n == 0 => f64::NAN,
            AggFunc::Average => py_sum(&mut known()) / n as f64,
            AggFunc::Sum => py_sum(&mut known()),
            AggFunc::Min => known().fold(f64::INFINITY, f64::min),
            AggFunc::Max => known().fold(f64::NEG_INFINITY, f64::max),
            AggFunc::Range => {
                known().fold(f64::NEG_INFINITY, f64::max) - known().fold(f64::INFINITY, f64::min)
            }
            AggFunc::Last => known().next_back().unwrap_or(f64::NAN),
            AggFunc::Diff => {
                let mut it = known();
                let first = it.next().unwrap_or(f64::NAN);
                it.fold(first, |a, v| a + -v)
            }
            AggFunc::Median => {
                let mut v: Vec<f64> = known().collect();
                v.sort_by(f64::total_cmp);
                let mid = v.len() / 2;
                if v.len().is_multiple_of(2) {
                    (v[mid - 1] + v[mid]) / 2.0
                } else {
                    v[mid]
                }
            }
            AggFunc::StdDev => {
                let avg = py_sum(&mut known()) / n as f64;
                let ss = known().fold(0.0, |a, v| a + (v - avg) * (v - avg));
                (ss / n as f64).sqrt()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: f64 = f64::NAN;

    fn ap(f: &str, v: &[f64]) -> f64 {
        AggFunc::parse(f).unwrap().apply(v)
    }

    #[test]
    fn safe_functions() {
        let v = [1.0, N, 4.0, 2.0];
        assert_eq!(ap("average", &v), 7.0 / 3.0);
        assert_eq!(ap("avg", &v), 7.0 / 3.0);
        assert_eq!(ap("avg_zero", &v), 7.0 / 4.0);
        assert_eq!(ap("sum", &v), 7.0);
        assert_eq!(ap("total", &v), 7.0);
        assert_eq!(ap("min", &v), 1.0);
        assert_eq!(ap("max", &v), 4.0);
        assert_eq!(ap("diff", &v), 1.0 - 4.0 - 2.0);
        assert_eq!(ap("count", &v), 3.0);
        assert_eq!(ap("range", &v), 3.0);
        assert_eq!(ap("rangeOf", &v), 3.0);
        assert!(ap("multiply", &v).is_nan());
        assert_eq!(ap("multiply", &[2.0, 3.0, 0.5]), 3.0);
        assert_eq!(ap("last", &[1.0, 2.0, N]), 2.0);
        assert_eq!(ap("current", &[1.0, 2.0, N]), 2.0);
        assert_eq!(ap("median", &v), 2.0);
        assert_eq!(ap("median", &[4.0, 1.0, 3.0, 2.0]), 2.5);
        // sqrt(((1-7/3)^2 + (4-7/3)^2 + (2-7/3)^2) / 3)
        let m = 7.0 / 3.0;
        let want = (((1.0 - m) * (1.0 - m) + (4.0 - m) * (4.0 - m) + (2.0 - m) * (2.0 - m))
            / 3.0f64)
            .sqrt();
        assert_eq!(ap("stddev", &v), want);
        for f in [
            "average", "sum", "min", "max", "diff", "median", "stddev", "range", "last",
        ] {
            assert!(ap(f, &[N, N]).is_nan(), "{f}");
        }
        assert_eq!(ap("count", &[N]), 0.0);
        assert!(ap("avg_zero", &[]).is_nan());
        assert_eq!(ap("avg_zero", &[N, N]), 0.0);
        assert!(AggFunc::get("mode").is_err());
    }
}
