//! Functions that combine many series into one: aggregate and its short
//! forms (sumSeries, averageSeries, maxSeries, minSeries, diffSeries,
//! multiplySeries, rangeOfSeries, stddevSeries), the `*SeriesLists` pair
//! forms, countSeries, group, divideSeries, divideSeriesLists,
//! percentileOfSeries.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::info::{p, FnInfo, Lit, Ty, SERIES_LIST, SERIES_LISTS};
use super::Args;
use crate::eval::{Context, QueryError};
use crate::format::py_g;
use crate::series::{Consolidate, Series};
use crate::time::MAX_OFFSET;

const COMBINE: &str = "Combine";
const PAIR: &[super::info::Param] = &[
    p("seriesListFirstPos", Ty::SeriesList).req(),
    p("seriesListSecondPos", Ty::SeriesList).req(),
];

pub(super) const INFO: &[FnInfo] = &[
    FnInfo::new(
        "aggregate",
        COMBINE,
        "Aggregates the series point by point with the given function (average, avg_zero, median, sum/total, min, max, diff, stddev, count, range/rangeOf, multiply, last/current).",
        &[
            SERIES_LIST,
            p("func", Ty::AggFunc).req(),
            p("xFilesFactor", Ty::Float),
        ],
    ),
    FnInfo::new(
        "aggregateSeriesLists",
        COMBINE,
        "Aggregates the two lists pairwise (first with first, second with second...) with the given function; the lists must be as long as each other.",
        &[
            p("seriesListFirstPos", Ty::SeriesList).req(),
            p("seriesListSecondPos", Ty::SeriesList).req(),
            p("func", Ty::AggFunc).req(),
            p("xFilesFactor", Ty::Float),
        ],
    ),
    FnInfo::new(
        "averageSeries",
        COMBINE,
        "Short form: avg(). The average of the series at each point (gaps ignored).",
        &[SERIES_LISTS],
    ),
    FnInfo::new(
        "avg",
        COMBINE,
        "The average of the series at each point (gaps ignored).",
        &[SERIES_LISTS],
    ),
    FnInfo::new(
        "countSeries",
        COMBINE,
        "The number of series, as a series (0 when called without arguments).",
        &[p("seriesLists", Ty::SeriesList).multi()],
    ),
    FnInfo::new(
        "diffSeries",
        COMBINE,
        "The first series minus the others, point by point (gaps ignored).",
        &[SERIES_LISTS],
    ),
    FnInfo::new(
        "diffSeriesLists",
        COMBINE,
        "Subtracts the second list from the first, pairwise.",
        PAIR,
    ),
    FnInfo::new(
        "divideSeries",
        COMBINE,
        "Divides each series by the one divisor series (a gap or zero gives a gap).",
        &[
            p("dividendSeriesList", Ty::SeriesList).req(),
            p("divisorSeries", Ty::SeriesList).req(),
        ],
    ),
    FnInfo::new(
        "divideSeriesLists",
        COMBINE,
        "Divides the first list by the second, pairwise; the lists must be as long as each other.",
        &[
            p("dividendSeriesList", Ty::SeriesList).req(),
            p("divisorSeriesList", Ty::SeriesList).req(),
        ],
    ),
    FnInfo::new(
        "group",
        COMBINE,
        "Joins several series lists into one.",
        &[p("seriesLists", Ty::SeriesList).multi()],
    ),
    FnInfo::new(
        "maxSeries",
        COMBINE,
        "The largest value of the series at each point.",
        &[SERIES_LISTS],
    ),
    FnInfo::new(
        "minSeries",
        COMBINE,
        "The smallest value of the series at each point.",
        &[SERIES_LISTS],
    ),
    FnInfo::new(
        "multiplySeries",
        COMBINE,
        "The product of the series at each point (a gap in any gives a gap).",
        &[SERIES_LISTS],
    ),
    FnInfo::new(
        "multiplySeriesLists",
        COMBINE,
        "Multiplies the two lists pairwise.",
        PAIR,
    ),
    FnInfo::new(
        "percentileOfSeries",
        COMBINE,
        "The n-th percentile of the series' values at each point.",
        &[
            SERIES_LIST,
            p("n", Ty::Float).req(),
            p("interpolate", Ty::Boolean).dflt(Lit::Bool(false)),
        ],
    ),
    FnInfo::new(
        "rangeOfSeries",
        COMBINE,
        "The largest minus the smallest value of the series at each point.",
        &[SERIES_LISTS],
    ),
    FnInfo::new(
        "stddevSeries",
        COMBINE,
        "The (population) standard deviation of the series at each point.",
        &[SERIES_LISTS],
    ),
    FnInfo::new(
        "sum",
        COMBINE,
        "The sum of the series at each point (gaps ignored).",
        &[SERIES_LISTS],
    ),
    FnInfo::new(
        "sumSeries",
        COMBINE,
        "Short form: sum(). The sum of the series at each point (gaps ignored).",
        &[SERIES_LISTS],
    ),
    FnInfo::new(
        "sumSeriesLists",
        COMBINE,
        "Adds the two lists pairwise.",
        PAIR,
    ),
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
pub(super) fn normalize(list: &[Series]) -> (Vec<Vec<f64>>, i64, i64, i64) {
    let (start, end, step) = common_grid(list);
    let rows = list.iter().map(|s| consolidated(s, step)).collect();
    (rows, start, end, step)
}

/// The window and step [`normalize`] puts every series on: `(start, end,
/// step)`.
fn common_grid(list: &[Series]) -> (i64, i64, i64) {
    // The least common multiple of the steps; steps the user chose
    // (summarize's '7s', '11s', '13s'...) can make it overflow i64, which
    // wrapped to a zero step and a division by it. Python's is exact, but
    // any step longer than every window puts each series into one bucket,
    // so past MAX_OFFSET (longer than any window) it stops growing.
    let step = list.iter().map(|s| s.step.max(1)).fold(1i64, |a, b| {
        (a / gcd(a, b))
            .checked_mul(b)
            .map_or(MAX_OFFSET, |l| l.min(MAX_OFFSET))
    });
    let start = list.iter().map(|s| s.start).min().unwrap_or(0);
    let mut end = list.iter().map(|s| s.end).max().unwrap_or(0);
    end -= (end - start).rem_euclid(step);
    (start, end, step)
}

/// A series' values consolidated to `step` (its own function and xff).
pub(super) fn consolidated(s: &Series, step: i64) -> Vec<f64> {
    consolidated_view(s, step).into_owned()
}

/// [`consolidated`], borrowing the values when they are already at `step`
/// (the usual case: a wide aggregate need not copy its inputs).
fn consolidated_view(s: &Series, step: i64) -> Cow<'_, [f64]> {
    let per = usize::try_from((step / s.step.max(1)).max(1)).unwrap_or(usize::MAX);
    if per == 1 {
        return Cow::Borrowed(&s.values);
    }
    Cow::Owned(
        s.values
            .chunks(per)
            .map(|c| s.consolidate.apply(c, s.xff))
            .collect(),
    )
}

/// Rows of `izip_longest` over consolidated series: row `i` holds every
/// series' value `i` (NaN past a shorter series' end).
pub(super) fn rows_of(cols: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let len = cols.iter().map(Vec::len).max().unwrap_or(0);
    (0..len)
        .map(|i| {
            cols.iter()
                .map(|c| c.get(i).copied().unwrap_or(f64::NAN))
                .collect()
        })
        .collect()
}

/// graphite-web's `formatPathExpressions`: the distinct path expressions
/// in order of first appearance, comma-joined.
pub(super) fn path_expressions(list: &[Series]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for s in list {
        if !seen.contains(&s.path_expression.as_str()) {
            seen.push(&s.path_expression);
        }
    }
    seen.join(",")
}

/// Tags every series shares, with `name` (when they differ) and
/// `aggregatedBy` set.
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

/// Python's `sum()` of floats: left to right from 0.
fn py_sum(v: impl Iterator<Item = f64>) -> f64 {
    v.fold(0.0, |a, b| a + b)
}

/// Whether `func` is one of graphite-web's aggregation functions.
pub(super) fn is_agg_func(func: &str) -> bool {
    super::info::AGG_FUNCS.contains(&func)
}

/// One row's aggregate with graphite-web's safe functions (gaps ignored,
/// except by multiply). `func` must satisfy [`is_agg_func`].
pub(super) fn reduce(func: &str, row: &[f64]) -> f64 {
    reduce_with(func, row, &mut Vec::new())
}

/// [`reduce`] with a scratch buffer for the row's known values, so that
/// a caller reducing many rows allocates it once.
fn reduce_with(func: &str, row: &[f64], known: &mut Vec<f64>) -> f64 {
    known.clear();
    known.extend(row.iter().copied().filter(|v| !v.is_nan()));
    let known = &known[..];
    if func == "avg_zero" {
        if row.is_empty() {
            return f64::NAN;
        }
        return py_sum(known.iter().copied()) / row.len() as f64;
    }
    if known.is_empty() {
        return f64::NAN;
    }
    let max = || known.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let min = || known.iter().copied().fold(f64::INFINITY, f64::min);
    match func {
        "sum" | "total" => py_sum(known.iter().copied()),
        "average" | "avg" => py_sum(known.iter().copied()) / known.len() as f64,
        "max" => max(),
        "min" => min(),
        "diff" => py_sum(std::iter::once(known[0]).chain(known[1..].iter().map(|v| -v))),
        "multiply" => {
            if known.len() < row.len() {
                f64::NAN
            } else {
                known.iter().fold(1.0, |a, b| a * b)
            }
        }
        "rangeOf" | "range" => max() - min(),
        "count" => known.len() as f64,
        "median" => Consolidate::Median.apply(known, 0.0),
        "last" | "current" => known[known.len() - 1],
        "stddev" => {
            let n = known.len() as f64;
            let mean = py_sum(known.iter().copied()) / n;
            (py_sum(known.iter().map(|v| (v - mean) * (v - mean))) / n).sqrt()
        }
        _ => f64::NAN,
    }
}

/// graphite-web's `aggregate(seriesList, func, xFilesFactor)`: one series
/// named `<func>Series(<path expressions>)`, tagged with what the inputs
/// share and `aggregatedBy`. A `func` ending in `Series` (`sumSeries`)
/// means the function without it.
pub(super) fn aggregate(
    list: Vec<Series>,
    func: &str,
    xff: Option<f64>,
) -> Result<Vec<Series>, QueryError> {
    let func = func.strip_suffix("Series").unwrap_or(func);
    if !is_agg_func(func) {
        return Err(QueryError::BadArgument(format!(
            "unsupported aggregation function: {func}"
        )));
    }
    if list.is_empty() {
        return Ok(vec![]);
    }
    let name = format!("{func}Series({})", path_expressions(&list));
    // `normalize` and `rows_of` without their copies: the columns borrow
    // the series' values and each row is gathered into one reused buffer
    // (sumSeries of 1,000 series by 8,640 points copied 69 MB twice).
    let (start, end, step) = common_grid(&list);
    let cols: Vec<Cow<'_, [f64]>> = list.iter().map(|s| consolidated_view(s, step)).collect();
    let len = cols.iter().map(|c| c.len()).max().unwrap_or(0);
    let xff_v = xff.unwrap_or(0.0);
    let values = match func {
        "sum" | "total" => sums_by_column(&cols, len, xff_v, false),
        "average" | "avg" => sums_by_column(&cols, len, xff_v, true),
        _ => {
            let mut row = Vec::with_capacity(cols.len());
            let mut known = Vec::with_capacity(cols.len());
            (0..len)
                .map(|i| {
                    row.clear();
                    row.extend(cols.iter().map(|c| c.get(i).copied().unwrap_or(f64::NAN)));
                    let n = row.iter().filter(|v| !v.is_nan()).count();
                    if n == 0 || (n as f64 / row.len() as f64) < xff_v {
                        f64::NAN
                    } else {
                        reduce_with(func, &row, &mut known)
                    }
                })
                .collect()
        }
    };
    let tags = common_tags(&list, &name, func);
    let mut s = Series::new(&name, start, end, step, values);
    s.tags = tags;
    s.xff = xff_v;
    Ok(vec![s])
}

/// sumSeries and averageSeries of `len` rows, summed a column at a time
/// instead of a row at a time: each row's known values are still added
/// left to right from 0.0, as [`reduce`] adds them, so every sum is the
/// same to the bit, but the columns are read in order rather than
/// gathered across every series for each row.
fn sums_by_column(cols: &[Cow<'_, [f64]>], len: usize, xff: f64, average: bool) -> Vec<f64> {
    let mut sums = vec![0.0f64; len];
    let mut counts = vec![0u32; len];
    for c in cols {
        for ((sum, count), v) in sums.iter_mut().zip(counts.iter_mut()).zip(c.iter()) {
            if !v.is_nan() {
                *sum += v;
                *count += 1;
            }
        }
    }
    // A shorter column's missing tail counts as gaps, as `rows_of` pads it.
    let width = cols.len() as f64;
    sums.iter()
        .zip(&counts)
        .map(|(&sum, &n)| {
            if n == 0 || (f64::from(n) / width) < xff {
                f64::NAN
            } else if average {
                sum / f64::from(n)
            } else {
                sum
            }
        })
        .collect()
}

/// graphite-web's `aggregateSeriesLists`: `aggregate` of each pair, named
/// `<func>Series(<first name>,<second name>)`.
fn aggregate_pairs(
    first: Vec<Series>,
    second: Vec<Series>,
    func: &str,
    xff: Option<f64>,
) -> Result<Vec<Series>, QueryError> {
    if first.len() != second.len() {
        return Err(QueryError::BadArgument(format!(
            "seriesListFirstPos and seriesListSecondPos must be as long as each other ({} and {})",
            first.len(),
            second.len()
        )));
    }
    let mut out = Vec::new();
    for (a, b) in first.into_iter().zip(second) {
        let name = format!("({},{})", a.name, b.name);
        for mut s in aggregate(vec![a, b], func, xff)? {
            let head = s
                .name
                .find("Series(")
                .map_or(s.name.as_str(), |i| &s.name[..i]);
            s.name = format!("{head}Series{name}");
            out.push(s);
        }
    }
    Ok(out)
}

/// graphite-web's `safeDiv`: a gap or a zero divisor gives a gap.
pub(super) fn safe_div(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() || b == 0.0 {
        f64::NAN
    } else {
        a / b
    }
}

/// One quotient series of divideSeries / divideSeriesLists.
fn quotient(d: &Series, divisor: &Series) -> Series {
    let pair = [d.clone(), divisor.clone()];
    let (cols, start, end, step) = normalize(&pair);
    let values = rows_of(&cols)
        .iter()
        .map(|r| safe_div(r[0], r[1]))
        .collect();
    let name = format!("divideSeries({},{})", d.name, divisor.name);
    Series::new(&name, start, end, step, values)
}

/// Calls an aggregating function by name on an evaluated list, as
/// groupByNode's callback does; None when `name` is not one.
pub(super) fn aggregator(name: &str, list: Vec<Series>) -> Option<Result<Vec<Series>, QueryError>> {
    let func = match name {
        "sumSeries" | "sum" => "sum",
        "averageSeries" | "avg" => "average",
        "maxSeries" => "max",
        "minSeries" => "min",
        "diffSeries" => "diff",
        "rangeOfSeries" => "rangeOf",
        "stddevSeries" => "stddev",
        "multiplySeries" => {
            if list.len() == 1 {
                return Some(Ok(list));
            }
            "multiply"
        }
        "countSeries" => return Some(Ok(count_series(&list).into_iter().collect())),
        _ => return None,
    };
    Some(aggregate(list, func, None))
}

/// countSeries of a non-empty list (None when empty: graphite-web's
/// normalize gives up, so nothing is drawn).
fn count_series(list: &[Series]) -> Option<Series> {
    if list.is_empty() {
        return None;
    }
    let name = format!("countSeries({})", path_expressions(list));
    let (cols, start, end, step) = normalize(list);
    let len = cols.iter().map(Vec::len).max().unwrap_or(0);
    Some(Series::new(
        &name,
        start,
        end,
        step,
        vec![list.len() as f64; len],
    ))
}

pub(super) fn call(
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
        "stddevSeries" => Some("stddev"),
        _ => None,
    };
    if let Some(func) = simple {
        return Some((|| {
            let list = a.series_from(ctx, 0)?;
            // graphite-web hands back a lone series to multiplySeries as is.
            if func == "multiply" && a.call.args.len() == 1 && list.len() == 1 {
                return Ok(list);
            }
            aggregate(list, func, None)
        })());
    }
    let pairs = match name {
        "sumSeriesLists" => Some("sum"),
        "diffSeriesLists" => Some("diff"),
        "multiplySeriesLists" => Some("multiply"),
        _ => None,
    };
    if let Some(func) = pairs {
        return Some((|| {
            let first = a.series(ctx, 0)?;
            let second = match a.get(1, "seriesListSecondPos") {
                Some(e) => a.eval(ctx, e)?,
                None => return Err(a.bad_arg("seriesListSecondPos is missing")),
            };
            aggregate_pairs(first, second, func, None)
        })());
    }
    Some(match name {
        "aggregate" => (|| {
            let list = a.series(ctx, 0)?;
            let func = a.string(1, "func")?;
            let xff = a.opt_num(2, "xFilesFactor")?;
            aggregate(list, func, xff).map_err(|e| a.bad_arg(e))
        })(),
        "aggregateSeriesLists" => (|| {
            let first = match a.get(0, "seriesListFirstPos") {
                Some(e) => a.eval(ctx, e)?,
                None => return Err(a.bad_arg("seriesListFirstPos is missing")),
            };
            let second = match a.get(1, "seriesListSecondPos") {
                Some(e) => a.eval(ctx, e)?,
                None => return Err(a.bad_arg("seriesListSecondPos is missing")),
            };
            let func = a.string(2, "func")?;
            let xff = a.opt_num(3, "xFilesFactor")?;
            aggregate_pairs(first, second, func, xff).map_err(|e| a.bad_arg(e))
        })(),
        "group" => a.series_from(ctx, 0),
        "countSeries" => (|| {
            if a.call.args.is_empty() {
                // graphite-web: constantLine(0), path expression countSeries().
                let step = ((ctx.until - ctx.from) / 2).max(1);
                let mut s = Series::new("0", ctx.from, ctx.until, step, vec![0.0; 3]);
                s.path_expression = "countSeries()".into();
                return Ok(vec![s]);
            }
            let list = a.series_from(ctx, 0)?;
            Ok(count_series(&list).into_iter().collect())
        })(),
        "divideSeries" => (|| {
            let dividends = a.series(ctx, 0)?;
            let divisors = match a.get(1, "divisorSeries") {
                Some(e) => a.eval(ctx, e)?,
                None => return Err(a.bad_arg("divisorSeries is missing")),
            };
            if divisors.is_empty() {
                // graphite-web: every dividend becomes a gap, named MISSING.
                return Ok(dividends
                    .into_iter()
                    .map(|mut s| {
                        s.name = format!("divideSeries({},MISSING)", s.name);
                        s.path_expression = s.name.clone();
                        s.values.iter_mut().for_each(|v| *v = f64::NAN);
                        s
                    })
                    .collect());
            }
            if divisors.len() != 1 {
                return Err(a.bad_arg(format!(
                    "divisorSeries must be exactly one series, not {}",
                    divisors.len()
                )));
            }
            Ok(dividends
                .iter()
                .map(|d| quotient(d, &divisors[0]))
                .collect())
        })(),
        "divideSeriesLists" => (|| {
            let dividends = a.series(ctx, 0)?;
            let divisors = match a.get(1, "divisorSeriesList") {
                Some(e) => a.eval(ctx, e)?,
                None => return Err(a.bad_arg("divisorSeriesList is missing")),
            };
            if dividends.len() != divisors.len() {
                return Err(a.bad_arg(format!(
                    "dividendSeriesList and divisorSeriesList must be as long as each other ({} and {})",
                    dividends.len(),
                    divisors.len()
                )));
            }
            Ok(dividends
                .iter()
                .zip(&divisors)
                .map(|(d, v)| quotient(d, v))
                .collect())
        })(),
        "percentileOfSeries" => (|| {
            let list = a.series(ctx, 0)?;
            let n = a.num(1, "n")?;
            let interpolate = a.opt_bool(2, "interpolate")?.unwrap_or(false);
            if n <= 0.0 {
                return Err(a.bad_arg("the requested percent is required to be greater than 0"));
            }
            if list.is_empty() {
                return Ok(vec![]);
            }
            let name = format!(
                "percentileOfSeries({},{})",
                list[0].path_expression,
                py_g(n)
            );
            let (cols, start, end, step) = normalize(&list);
            let values = rows_of(&cols)
                .iter()
                .map(|row| percentile(row, n, interpolate))
                .collect();
            Ok(vec![Series::new(&name, start, end, step, values)])
        })(),
        _ => return None,
    })
}

/// graphite-web's `_getPercentile`: rank `n/100 * (len + 1)`, rounded up
/// unless interpolating.
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "`n` is the user's percent: the saturating `as` is the intended clamp, a \
              negative or NaN rank becoming 0 (the first value) and one past usize::MAX \
              usize::MAX (the last); `rank_fraction` is in (-1, 1) or NaN, so its ceil \
              becomes 0 or 1 (0 for any rank of 2^53 or more: no fraction left)"
)]
pub(super) fn percentile(points: &[f64], n: f64, interpolate: bool) -> f64 {
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

#[cfg(test)]
#[expect(
    clippy::cast_possible_wrap,
    reason = "test series hold a handful of values"
)]
mod tests {
    use super::*;

    fn s(name: &str, values: &[f64]) -> Series {
        Series::new(
            name,
            100,
            100 + 10 * values.len() as i64,
            10,
            values.to_vec(),
        )
    }

    /// Summing a column at a time gives what reducing each padded row
    /// gives, to the bit: gaps, columns of different lengths, xff.
    #[test]
    fn column_sums_are_the_row_reductions() {
        let mut rng = fastrand::Rng::with_seed(11);
        for _ in 0..200 {
            let list: Vec<Series> = (0..rng.usize(1..12))
                .map(|i| {
                    let values: Vec<f64> = (0..rng.usize(0..40))
                        .map(|_| match rng.u8(0..4) {
                            0 => f64::NAN,
                            _ => rng.f64() * 1e6 - 5e5,
                        })
                        .collect();
                    s(&format!("x.s{i}"), &values)
                })
                .collect();
            let xff = [0.0, 0.3, 0.5, 1.0][rng.usize(0..4)];
            let cols: Vec<Vec<f64>> = list.iter().map(|x| x.values.clone()).collect();
            for func in ["sum", "average"] {
                let got = &aggregate(list.clone(), func, Some(xff)).unwrap()[0].values;
                let want: Vec<f64> = rows_of(&cols)
                    .iter()
                    .map(|row| {
                        let n = row.iter().filter(|v| !v.is_nan()).count();
                        if n == 0 || (n as f64 / row.len() as f64) < xff {
                            f64::NAN
                        } else {
                            reduce(func, row)
                        }
                    })
                    .collect();
                assert_eq!(got.len(), want.len());
                for (g, w) in got.iter().zip(&want) {
                    assert_eq!(g.to_bits(), w.to_bits(), "{func}: {got:?} {want:?}");
                }
            }
        }
    }

    const N: f64 = f64::NAN;

    fn same(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| (x.is_nan() && y.is_nan()) || (x - y).abs() < 1e-12)
    }

    #[test]
    fn aggregate_names_tags_and_values_like_graphite() {
        let mut a = s("a.x;dc=east;host=h1", &[1.0, N, 3.0, N]);
        let mut b = s("a.y;dc=east;host=h2", &[2.0, 5.0, N, N]);
        a.path_expression = "a.*".into();
        b.path_expression = "b.*".into();
        let one = |func: &str| {
            aggregate(vec![b.clone(), a.clone()], func, None)
                .unwrap()
                .remove(0)
        };
        let sum = one("sum");
        // Path expressions in order of appearance, not sorted.
        assert_eq!(sum.name, "sumSeries(b.*,a.*)");
        assert!(same(&sum.values, &[3.0, 5.0, 3.0, N]));
        // Only the shared tag survives; name is the new one.
        assert_eq!(sum.tags.get("dc").map(String::as_str), Some("east"));
        assert_eq!(sum.tags.get("host"), None);
        assert_eq!(sum.tags["name"], "sumSeries(b.*,a.*)");
        assert_eq!(sum.tags["aggregatedBy"], "sum");
        // `sumSeries` as func means sum; `avg` keeps its own name.
        assert_eq!(one("sumSeries").name, "sumSeries(b.*,a.*)");
        let avg = one("avg");
        assert_eq!(avg.name, "avgSeries(b.*,a.*)");
        assert_eq!(avg.tags["aggregatedBy"], "avg");
        assert!(same(&avg.values, &[1.5, 5.0, 3.0, N]));
        assert_eq!(one("range").tags["aggregatedBy"], "range");
        assert!(same(&one("range").values, &[1.0, 0.0, 0.0, N]));
        // diff: first known minus the rest.
        assert!(same(&one("diff").values, &[1.0, 5.0, 3.0, N]));
        // multiply: a gap anywhere in the row is a gap.
        assert!(same(&one("multiply").values, &[2.0, N, N, N]));
        // avg_zero: gaps count as zero, but an all-gap row stays a gap.
        assert!(same(&one("avg_zero").values, &[1.5, 2.5, 1.5, N]));
        assert!(same(&one("count").values, &[2.0, 1.0, 1.0, N]));
        // stddev of (2, 1): mean 1.5, variance 0.25.
        assert!(same(&one("stddev").values, &[0.5, 0.0, 0.0, N]));
        assert!(same(&one("median").values, &[1.5, 5.0, 3.0, N]));
        assert!(same(&one("last").values, &[1.0, 5.0, 3.0, N]));
        assert!(aggregate(vec![a.clone()], "mean", None).is_err());
        // xFilesFactor 0.6: a row needs more than one of two values.
        let x = aggregate(vec![a, b], "sum", Some(0.6)).unwrap().remove(0);
        assert!(same(&x.values, &[3.0, N, N, N]));
    }

    #[test]
    fn mixed_steps_consolidate_to_the_common_multiple() {
        let fine = Series::new("f", 0, 60, 10, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let coarse = Series::new("c", 0, 60, 30, vec![10.0, 20.0]);
        let out = aggregate(vec![fine, coarse], "sum", None)
            .unwrap()
            .remove(0);
        assert_eq!(out.step, 30);
        // (1+2+3)/3 + 10, (4+5+6)/3 + 20.
        assert!(same(&out.values, &[12.0, 25.0]));
    }

    #[test]
    fn pair_names_and_quotients() {
        let a = s("a", &[4.0, 1.0, N]);
        let b = s("b", &[2.0, 0.0, 1.0]);
        let r = aggregate_pairs(vec![a.clone()], vec![b.clone()], "diff", None).unwrap();
        assert_eq!(r[0].name, "diffSeries(a,b)");
        // diff takes the first *known* value: a gap then 1 gives 1.
        assert!(same(&r[0].values, &[2.0, 1.0, 1.0]));
        let q = quotient(&a, &b);
        assert_eq!(q.name, "divideSeries(a,b)");
        assert_eq!(q.tags.len(), 1);
        assert!(same(&q.values, &[2.0, N, N]));
        assert!(aggregate_pairs(vec![a], vec![], "sum", None).is_err());
    }

    #[test]
    fn count_series_counts_every_series_at_every_point() {
        let c = count_series(&[s("a", &[1.0, N]), s("b", &[N, N])]).unwrap();
        assert_eq!(c.name, "countSeries(a,b)");
        assert_eq!(c.tags.get("aggregatedBy"), None);
        assert!(same(&c.values, &[2.0, 2.0]));
        assert!(count_series(&[]).is_none());
    }

    #[test]
    fn percentiles_rank_as_graphite() {
        // rank = 0.5 * 5 = 2.5 → 3rd of [1,2,3,4] = 3; interpolated 2 + 0.5.
        assert_eq!(percentile(&[4.0, 1.0, 3.0, 2.0], 50.0, false), 3.0);
        assert_eq!(percentile(&[4.0, 1.0, 3.0, 2.0], 50.0, true), 2.5);
        assert_eq!(percentile(&[4.0, 1.0, N], 100.0, false), 4.0);
        assert!(percentile(&[N], 50.0, false).is_nan());
    }
}
