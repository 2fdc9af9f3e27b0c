//! Functions that combine many series into one: sumSeries, averageSeries,
//! maxSeries, minSeries, diffSeries, multiplySeries, rangeOfSeries,
//! countSeries, aggregate, group, divideSeries, percentileOfSeries.

use std::collections::BTreeMap;

use super::Args;
use crate::query::eval::{Context, QueryError};
use crate::query::series::{Consolidate, Series};

pub const NAMES: &[&str] = &[
    "aggregate",
    "averageSeries",
    "avg",
    "countSeries",
    "diffSeries",
    "divideSeries",
    "group",
    "maxSeries",
    "minSeries",
    "multiplySeries",
    "percentileOfSeries",
    "rangeOfSeries",
    "sum",
    "sumSeries",
];

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// graphite-web's `normalize`: every series consolidated to the least
/// common multiple of their steps, over the union of their windows.
pub fn normalize(list: &[Series]) -> (Vec<Vec<f64>>, i64, i64, i64) {
    let step = list
        .iter()
        .map(|s| s.step.max(1))
        .fold(1, |a, b| a / gcd(a, b) * b);
    let start = list.iter().map(|s| s.start).min().unwrap_or(0);
    let mut end = list.iter().map(|s| s.end).max().unwrap_or(0);
    end -= (end - start).rem_euclid(step);
    let rows = list.iter().map(|s| consolidated(s, step)).collect();
    (rows, start, end, step)
}

/// A series' values consolidated to `step` (its own function and xff).
pub fn consolidated(s: &Series, step: i64) -> Vec<f64> {
    let per = (step / s.step.max(1)).max(1) as usize;
    if per == 1 {
        return s.values.clone();
    }
    s.values
        .chunks(per)
        .map(|c| s.consolidate.apply(c, s.xff))
        .collect()
}

/// The names inside an aggregate's name: the distinct path expressions,
/// sorted, comma-joined.
pub fn path_expressions(list: &[Series]) -> String {
    let set: std::collections::BTreeSet<&str> =
        list.iter().map(|s| s.path_expression.as_str()).collect();
    set.into_iter().collect::<Vec<_>>().join(",")
}

/// Tags every series shares, with `name` and `aggregatedBy` set.
fn common_tags(list: &[Series], name: &str, func: &str) -> BTreeMap<String, String> {
    let mut tags = list.first().map(|s| s.tags.clone()).unwrap_or_default();
    for s in list.iter().skip(1) {
        tags.retain(|k, v| s.tags.get(k) == Some(v));
    }
    tags.entry("name".to_string())
        .or_insert_with(|| name.to_string());
    tags.insert("aggregatedBy".to_string(), func.to_string());
    tags
}

/// One row's aggregate, graphite-web's safe functions (None-ignoring).
fn reduce(func: &str, row: &[f64]) -> f64 {
    let known: Vec<f64> = row.iter().copied().filter(|v| !v.is_nan()).collect();
    if known.is_empty() {
        return f64::NAN;
    }
    match func {
        "sum" => known.iter().sum(),
        "average" | "avg" => known.iter().sum::<f64>() / known.len() as f64,
        "max" => known.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        "min" => known.iter().copied().fold(f64::INFINITY, f64::min),
        "diff" => known[0] - known[1..].iter().sum::<f64>(),
        "multiply" => {
            if known.len() < row.len() {
                f64::NAN
            } else {
                known.iter().product()
            }
        }
        "rangeOf" | "range" => {
            known.iter().copied().fold(f64::NEG_INFINITY, f64::max)
                - known.iter().copied().fold(f64::INFINITY, f64::min)
        }
        "count" => known.len() as f64,
        "median" => Consolidate::Median.apply(&known, 0.0),
        "last" | "current" => known[known.len() - 1],
        "stddev" => {
            let m = known.iter().sum::<f64>() / known.len() as f64;
            (known.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / known.len() as f64).sqrt()
        }
        _ => f64::NAN,
    }
}

const AGG_FUNCS: &[&str] = &[
    "sum", "average", "avg", "max", "min", "diff", "multiply", "rangeOf", "range", "count",
    "median", "last", "current", "stddev",
];

/// graphite-web's `aggregate(seriesList, func, xFilesFactor)`.
pub fn aggregate(list: Vec<Series>, func: &str, xff: Option<f64>) -> Vec<Series> {
    if list.is_empty() {
        return vec![];
    }
    let func = match func {
        "avg" => "average",
        "range" => "rangeOf",
        "current" => "last",
        f => f,
    };
    let name = format!("{func}Series({})", path_expressions(&list));
    let (rows, start, end, step) = normalize(&list);
    let len = rows.iter().map(Vec::len).max().unwrap_or(0);
    let xff = xff.unwrap_or(0.0);
    let mut values = Vec::with_capacity(len);
    let mut row = Vec::with_capacity(rows.len());
    for i in 0..len {
        row.clear();
        row.extend(rows.iter().map(|r| r.get(i).copied().unwrap_or(f64::NAN)));
        let known = row.iter().filter(|v| !v.is_nan()).count();
        if (known as f64 / row.len() as f64) < xff {
            values.push(f64::NAN);
        } else {
            values.push(reduce(func, &row));
        }
    }
    let tags = common_tags(&list, &name, func);
    let mut s = Series::new(&name, start, end, step, values);
    s.tags = tags;
    s.xff = xff;
    vec![s]
}

pub fn call(
    ctx: &mut Context<'_>,
    name: &str,
    a: &Args<'_>,
) -> Option<Result<Vec<Series>, QueryError>> {
    let simple = match name {
        "sumSeries" | "sum" => Some("sum"),
        "averageSeries" | "avg" => Some("average"),
        "maxSeries" => Some("max"),
        "minSeries" => Some("min"),
        "diffSeries" => Some("diff"),
        "multiplySeries" => Some("multiply"),
        "rangeOfSeries" => Some("rangeOf"),
        _ => None,
    };
    if let Some(func) = simple {
        return Some(
            a.series_from(ctx, 0)
                .map(|list| aggregate(list, func, None)),
        );
    }
    Some(match name {
        "aggregate" => (|| {
            let list = a.series(ctx, 0)?;
            let func = a.string(1, "func")?;
            if !AGG_FUNCS.contains(&func) {
                return Err(QueryError::BadArgument(format!(
                    "aggregate(): unsupported aggregation function: {func}"
                )));
            }
            let xff = a.opt_num(2, "xFilesFactor")?;
            Ok(aggregate(list, func, xff))
        })(),
        "group" => a.series_from(ctx, 0),
        "countSeries" => (|| {
            let list = a.series_from(ctx, 0)?;
            let name = format!("countSeries({})", path_expressions(&list));
            let n = list.len() as f64;
            let (start, end, step) = if list.is_empty() {
                (ctx.from, ctx.until, ctx.until - ctx.from)
            } else {
                let (_, s, e, st) = normalize(&list);
                (s, e, st)
            };
            let points = ((end - start) / step.max(1)).max(1) as usize;
            let mut s = Series::new(&name, start, end, step, vec![n; points]);
            s.tags
                .insert("aggregatedBy".to_string(), "count".to_string());
            Ok(vec![s])
        })(),
        "divideSeries" => (|| {
            let dividends = a.series(ctx, 0)?;
            let divisors = match a.get(1, "divisorSeries") {
                Some(e) => ctx.eval(e)?,
                None => {
                    return Err(QueryError::BadArgument(
                        "divideSeries(): divisorSeries is missing".into(),
                    ))
                }
            };
            if divisors.len() != 1 {
                return Err(QueryError::BadArgument(format!(
                    "divideSeries(): divisorSeries must be exactly one series, not {}",
                    divisors.len()
                )));
            }
            let divisor = &divisors[0];
            let mut out = Vec::new();
            for d in dividends {
                let pair = [d.clone(), divisor.clone()];
                let (rows, start, end, step) = normalize(&pair);
                let values = rows[0]
                    .iter()
                    .zip(rows[1].iter().chain(std::iter::repeat(&f64::NAN)))
                    .map(|(x, y)| {
                        if x.is_nan() || y.is_nan() || *y == 0.0 {
                            f64::NAN
                        } else {
                            x / y
                        }
                    })
                    .collect();
                let name = format!("divideSeries({},{})", d.name, divisor.name);
                let mut s = Series::new(&name, start, end, step, values);
                s.tags = d.tags.clone();
                s.tags.insert("name".into(), name.clone());
                out.push(s);
            }
            Ok(out)
        })(),
        "percentileOfSeries" => {
            (|| {
                let list = a.series(ctx, 0)?;
                let n = a.num(1, "n")?;
                let interpolate = a.opt_bool(2, "interpolate")?.unwrap_or(false);
                if n <= 0.0 {
                    return Err(QueryError::BadArgument("percentileOfSeries(): the requested percent is required to be greater than 0".into()));
                }
                if list.is_empty() {
                    return Ok(vec![]);
                }
                let name = format!(
                    "percentileOfSeries({},{})",
                    list[0].path_expression,
                    crate::query::format::py_g(n)
                );
                let (rows, start, end, step) = normalize(&list);
                let len = rows.iter().map(Vec::len).max().unwrap_or(0);
                let values = (0..len)
                    .map(|i| {
                        let row: Vec<f64> = rows
                            .iter()
                            .filter_map(|r| r.get(i).copied())
                            .filter(|v| !v.is_nan())
                            .collect();
                        percentile(&row, n, interpolate)
                    })
                    .collect();
                Ok(vec![Series::new(&name, start, end, step, values)])
            })()
        }
        _ => return None,
    })
}

/// graphite-web's `_getPercentile`: rank `n/100 * (len + 1)`, rounded up
/// unless interpolating.
pub fn percentile(points: &[f64], n: f64, interpolate: bool) -> f64 {
    let mut sorted: Vec<f64> = points.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted.sort_by(f64::total_cmp);
    let len = sorted.len();
    let frac = n / 100.0 * (len as f64 + 1.0);
    let mut rank = frac.trunc() as usize;
    let rank_fraction = frac - frac.trunc();
    if !interpolate {
        rank += rank_fraction.ceil() as usize;
    }
    let mut p = if rank == 0 {
        sorted[0]
    } else if rank > len {
        sorted[len - 1]
    } else {
        sorted[rank - 1]
    };
    if interpolate && rank < len {
        let next = sorted[rank];
        p += rank_fraction * (next - p);
    }
    p
}
