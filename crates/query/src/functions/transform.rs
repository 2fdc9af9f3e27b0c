//! Functions that change each series on its own: scale, scaleToSeconds,
//! offset, offsetToZero, absolute, invert, squareRoot, log, derivative,
//! nonNegativeDerivative, perSecond, integral, keepLastValue,
//! transformNull, isNonNull, removeAboveValue, removeBelowValue,
//! removeAbovePercentile, removeBelowPercentile, consolidateBy,
//! cumulative, stdev, delay, timeShift, constantLine.
//!
//! Tags: graphite-web adds a tag named after the function to each series
//! it changes (`derivative: "1"`, `scale: "2.0"`...); values are Python's
//! `str()` of the argument after graphite-web's validation (a `float`
//! parameter given as `2` is `2.0`; a default never validated stays as
//! written, so `transformNull(x)` tags `"0"` and `transformNull(x,0)`
//! tags `"0.0"`).

use super::info::{p, FnInfo, Lit, Ty, SERIES_LIST};
use super::Args;
use crate::eval::{Context, QueryError};
use crate::format::{py_float_repr, py_g};
use crate::parse::Expr;
use crate::series::{Consolidate, Series};
use crate::time::parse_offset;

const TRANSFORM: &str = "Transform";
const FILTER_DATA: &str = "Filter Data";
const N_FLOAT: &[super::info::Param] = &[SERIES_LIST, p("n", Ty::Float).req()];
const COUNTER: &[super::info::Param] = &[
    SERIES_LIST,
    p("maxValue", Ty::Float),
    p("minValue", Ty::Float),
];
const LOG: &[super::info::Param] = &[SERIES_LIST, p("base", Ty::Integer).dflt(Lit::Int(10))];

pub(super) const INFO: &[FnInfo] = &[
    FnInfo::new(
        "absolute",
        TRANSFORM,
        "The absolute value of each point.",
        &[SERIES_LIST],
    ),
    FnInfo::new(
        "consolidateBy",
        "Special",
        "How the series is consolidated when there are more points than pixels or maxDataPoints.",
        &[
            SERIES_LIST,
            p("consolidationFunc", Ty::String).req().opts(&[
                "average", "avg", "avg_zero", "first", "last", "max", "min", "sum",
            ]),
        ],
    ),
    FnInfo::new(
        "constantLine",
        "Special",
        "A horizontal line at value across the whole window.",
        &[p("value", Ty::Float).req()],
    ),
    FnInfo::new(
        "cumulative",
        "Special",
        "Same as consolidateBy(seriesList, 'sum').",
        &[SERIES_LIST],
    ),
    FnInfo::new(
        "delay",
        TRANSFORM,
        "Shifts the values by a number of steps (positive: later), filling with gaps.",
        &[SERIES_LIST, p("steps", Ty::Integer).req()],
    ),
    FnInfo::new(
        "derivative",
        TRANSFORM,
        "The difference between each point and the one before it.",
        &[SERIES_LIST],
    ),
    FnInfo::new(
        "integral",
        TRANSFORM,
        "The running total of the series over time (gaps stay gaps).",
        &[SERIES_LIST],
    ),
    FnInfo::new(
        "invert",
        TRANSFORM,
        "1 / value at each point (zero gives a gap).",
        &[SERIES_LIST],
    ),
    FnInfo::new(
        "isNonNull",
        TRANSFORM,
        "1 where the series has a value, 0 where it has a gap.",
        &[SERIES_LIST],
    ),
    FnInfo::new(
        "keepLastValue",
        TRANSFORM,
        "Fills gaps of at most limit points with the value before them.",
        &[SERIES_LIST, p("limit", Ty::IntOrInf).dflt(Lit::Inf)],
    ),
    FnInfo::new(
        "log",
        TRANSFORM,
        "The logarithm of each point in the given base (zero and negatives give gaps).",
        LOG,
    ),
    FnInfo::new("logarithm", TRANSFORM, "Same as log.", LOG),
    FnInfo::new(
        "nonNegativeDerivative",
        TRANSFORM,
        "The increase from each point to the next, for counters: a decrease is a wrap (with maxValue) or a reset (a gap).",
        COUNTER,
    ),
    FnInfo::new(
        "offset",
        TRANSFORM,
        "Adds factor to each point.",
        &[SERIES_LIST, p("factor", Ty::Float).req()],
    ),
    FnInfo::new(
        "offsetToZero",
        TRANSFORM,
        "Subtracts the series' minimum from each point, so it starts at zero.",
        &[SERIES_LIST],
    ),
    FnInfo::new(
        "perSecond",
        TRANSFORM,
        "nonNegativeDerivative divided by the step: the rate per second of a counter.",
        COUNTER,
    ),
    FnInfo::new(
        "removeAbovePercentile",
        FILTER_DATA,
        "Removes points above the n-th percentile of the series.",
        N_FLOAT,
    ),
    FnInfo::new(
        "removeAboveValue",
        FILTER_DATA,
        "Removes points above n.",
        N_FLOAT,
    ),
    FnInfo::new(
        "removeBelowPercentile",
        FILTER_DATA,
        "Removes points below the n-th percentile of the series.",
        N_FLOAT,
    ),
    FnInfo::new(
        "removeBelowValue",
        FILTER_DATA,
        "Removes points below n.",
        N_FLOAT,
    ),
    FnInfo::new(
        "scale",
        TRANSFORM,
        "Multiplies each point by factor.",
        &[SERIES_LIST, p("factor", Ty::Float).req()],
    ),
    FnInfo::new(
        "scaleToSeconds",
        TRANSFORM,
        "Scales each point from a per-step value to a per-`seconds` value.",
        &[SERIES_LIST, p("seconds", Ty::Float).req()],
    ),
    FnInfo::new(
        "squareRoot",
        TRANSFORM,
        "The square root of each point (negatives give gaps).",
        &[SERIES_LIST],
    ),
    FnInfo::new(
        "stdev",
        "Calculate",
        "The standard deviation of each window of `points` points; a window needs windowTolerance of its points known.",
        &[
            SERIES_LIST,
            p("points", Ty::Integer).req(),
            p("windowTolerance", Ty::Float).dflt(Lit::Float(0.1)),
        ],
    ),
    FnInfo::new(
        "timeShift",
        TRANSFORM,
        "The series as it was timeShift ago (\"1d\", \"-2h\"; a bare amount means back in time), drawn in the current window.",
        &[
            SERIES_LIST,
            p("timeShift", Ty::Interval).req(),
            p("resetEnd", Ty::Boolean).dflt(Lit::Bool(true)),
            p("alignDst", Ty::Boolean).dflt(Lit::Bool(false)),
        ],
    ),
    FnInfo::new(
        "transformNull",
        TRANSFORM,
        "Replaces gaps with default (only where a referenceSeries has a value, if given).",
        &[
            SERIES_LIST,
            p("default", Ty::Float).dflt(Lit::Int(0)),
            p("referenceSeries", Ty::SeriesList),
        ],
    ),
];

/// `delay`'s values. graphite-web slices, `[None] * k + values[:-k]`, so
/// a delay of 0 leaves no values at all (and json drops the series).
fn delayed(values: &[f64], steps: i64) -> Vec<f64> {
    let n = values.len() + usize::from(false);
    let k = usize::try_from(steps.unsigned_abs())
        .unwrap_or(usize::MAX)
        .min(n);
    if steps == 0 {
        Vec::new()
    } else if steps > 0 {
        let mut out = vec![f64::NAN; k];
        out.extend_from_slice(&values[..n - k]);
        out
    } else {
        let mut out = values[k..].to_vec();
        out.resize(n, f64::NAN);
        out
    }
}

fn each(
    list: Vec<Series>,
    name: impl Fn(&Series) -> String,
    f: impl Fn(&mut Series),
) -> Vec<Series> {
    list.into_iter()
        .map(|mut s| {
            f(&mut s);
            s.name = name(&s);
            s.path_expression = s.name.clone();
            s
        })
        .collect()
}

/// Applies `f` to every known value, names the result `label(name)` and
/// tags it `label: tag`.
fn map_values(list: Vec<Series>, label: &str, tag: &str, f: impl Fn(f64) -> f64) -> Vec<Series> {
    each(
        list,
        |s| format!("{label}({})", s.name),
        |s| {
            for v in s.values.iter_mut() {
                if !v.is_nan() {
                    *v = f(*v);
                }
            }
            s.tags.insert(label.to_string(), tag.to_string());
        },
    )
}

/// Python's `round(x, n)`: to the nearest decimal, ties to even.
pub(super) fn py_round(x: f64, digits: usize) -> f64 {
    if !x.is_finite() {
        return x;
    }
    format!("{x:.digits$}").parse().unwrap_or(x)
}

/// graphite-web's `_nonNegativeDelta`: (delta, new previous value).
fn non_negative_delta(val: f64, prev: f64, max: Option<f64>, min: Option<f64>) -> (f64, f64) {
    if max.is_some_and(|m| val > m) || min.is_some_and(|m| val < m) {
        return (f64::NAN, f64::NAN);
    }
    if prev.is_nan() || val.is_nan() {
        return (f64::NAN, val);
    }
    if val >= prev {
        return (val - prev, val);
    }
    match (max, min) {
        (Some(m), _) => (m + 1.0 + val - prev - min.unwrap_or(0.0), val),
        (None, Some(m)) => (val - m, val),
        (None, None) => (f64::NAN, val),
    }
}

fn derivative(s: &mut Series) {
    let mut prev = f64::NAN;
    for v in s.values.iter_mut() {
        let cur = *v;
        *v = if prev.is_nan() || cur.is_nan() {
            f64::NAN
        } else {
            cur - prev
        };
        prev = cur;
    }
}

fn counter_rate(s: &mut Series, max: Option<f64>, min: Option<f64>, per_second: bool) {
    let mut prev = f64::NAN;
    let step = s.step as f64;
    for v in s.values.iter_mut() {
        let (delta, p) = non_negative_delta(*v, prev, max, min);
        prev = p;
        *v = if per_second && !delta.is_nan() {
            py_round(delta / step, 6)
        } else {
            delta
        };
    }
}

/// graphite-web's `stdev`: the standard deviation of a moving window of
/// `points`, from running sums as graphite-web keeps them.
fn moving_stdev(values: &[f64], points: usize, tolerance: f64) -> Vec<f64> {
    let mut out = Vec::with_capacity(values.len());
    let (mut valid, mut sum, mut squares) = (0usize, 0.0f64, 0.0f64);
    for (i, &new) in values.iter().enumerate() {
        if i >= points {
            let dropped = values[i - points];
            if !dropped.is_nan() {
                valid -= 1;
                sum -= dropped;
                squares -= dropped * dropped;
            }
        }
        if !new.is_nan() {
            valid += 1;
            sum += new;
            squares += new * new;
        }
        if valid > 0 && valid as f64 / points as f64 >= tolerance {
            let inner = valid as f64 * squares - sum * sum;
            out.push(if inner < 0.0 {
                f64::NAN
            } else {
                inner.sqrt() / valid as f64
            });
        } else {
            out.push(f64::NAN);
        }
    }
    out
}

/// graphite-web's `nPercentile` value of one series (None when empty).
fn series_percentile(s: &Series, n: f64) -> Option<f64> {
    let p = super::combine::percentile(&s.values, n, false);
    (!p.is_nan()).then_some(p)
}

pub(super) fn call(
    ctx: &mut Context<'_>,
    name: &str,
    a: &Args<'_>,
) -> Option<Result<Vec<Series>, QueryError>> {
    Some((|| -> Result<Vec<Series>, QueryError> {
        match name {
            "scale" | "offset" => {
                let list = a.series(ctx, 0)?;
                let (factor, tag) = a.float_str(1, "factor")?;
                let scale = name == "scale";
                Ok(each(
                    list,
                    |s| format!("{name}({},{})", s.name, py_g(factor)),
                    |s| {
                        for v in s.values.iter_mut() {
                            if !v.is_nan() {
                                *v = if scale { *v * factor } else { *v + factor };
                            }
                        }
                        s.tags.insert(name.into(), tag.clone());
                    },
                ))
            }
            "scaleToSeconds" => {
                let list = a.series(ctx, 0)?;
                let (seconds, tag) = a.float_str(1, "seconds")?;
                Ok(each(
                    list,
                    |s| format!("scaleToSeconds({},{})", s.name, super::py_int(seconds)),
                    |s| {
                        let factor = seconds / s.step.max(1) as f64;
                        for v in s.values.iter_mut() {
                            if !v.is_nan() {
                                *v = py_round(*v * factor, 6);
                            }
                        }
                        s.tags.insert("scaleToSeconds".into(), tag.clone());
                    },
                ))
            }
            "offsetToZero" => Ok(each(
                a.series(ctx, 0)?,
                |s| format!("offsetToZero({})", s.name),
                |s| {
                    let min = s
                        .values
                        .iter()
                        .copied()
                        .filter(|v| !v.is_nan())
                        .fold(f64::NAN, f64::min);
                    let tag = if min.is_nan() {
                        "None".to_string()
                    } else {
                        py_float_repr(min)
                    };
                    for v in s.values.iter_mut() {
                        *v -= min;
                    }
                    s.tags.insert("offsetToZero".into(), tag);
                },
            )),
            "absolute" => Ok(map_values(a.series(ctx, 0)?, "absolute", "1", f64::abs)),
            "invert" => Ok(map_values(a.series(ctx, 0)?, "invert", "1", |v| {
                let r = v.powf(-1.0);
                if r.is_finite() {
                    r
                } else {
                    f64::NAN
                }
            })),
            "squareRoot" => Ok(map_values(a.series(ctx, 0)?, "squareRoot", "1", |v| {
                if v < 0.0 {
                    f64::NAN
                } else {
                    v.powf(0.5)
                }
            })),
            "log" | "logarithm" => {
                let list = a.series(ctx, 0)?;
                let (base, text) = match a.get(1, "base") {
                    None | Some(Expr::None) => (10.0, "10".to_string()),
                    Some(Expr::Int(n)) => (*n as f64, n.to_string()),
                    Some(_) => {
                        let (b, t) = a.float_str(1, "base")?;
                        (b, t)
                    }
                };
                if base <= 0.0 || base == 1.0 {
                    return Err(a.bad_arg(format!("base must be positive and not 1, not {text}")));
                }
                let ln_base = base.ln();
                Ok(each(
                    list,
                    |s| format!("log({}, {text})", s.name),
                    |s| {
                        for v in s.values.iter_mut() {
                            *v = if *v > 0.0 { v.ln() / ln_base } else { f64::NAN };
                        }
                        s.tags.insert("log".into(), text.clone());
                    },
                ))
            }
            "derivative" => Ok(each(
                a.series(ctx, 0)?,
                |s| format!("derivative({})", s.name),
                |s| {
                    derivative(s);
                    s.tags.insert("derivative".into(), "1".into());
                },
            )),
            "nonNegativeDerivative" | "perSecond" => {
                let list = a.series(ctx, 0)?;
                let max = a.opt_num(1, "maxValue")?;
                let min = a.opt_num(2, "minValue")?;
                let per_second = name == "perSecond";
                Ok(each(
                    list,
                    |s| format!("{name}({})", s.name),
                    |s| {
                        counter_rate(s, max, min, per_second);
                        s.tags.insert(name.into(), "1".into());
                    },
                ))
            }
            "integral" => Ok(each(
                a.series(ctx, 0)?,
                |s| format!("integral({})", s.name),
                |s| {
                    let mut total = 0.0;
                    for v in s.values.iter_mut() {
                        if !v.is_nan() {
                            total += *v;
                            *v = total;
                        }
                    }
                    s.tags.insert("integral".into(), "1".into());
                },
            )),
            "keepLastValue" => {
                let list = a.series(ctx, 0)?;
                let limit = a.opt_num(1, "limit")?.unwrap_or(f64::INFINITY);
                Ok(each(
                    list,
                    |s| format!("keepLastValue({})", s.name),
                    |s| {
                        // Gaps of at most `limit` points take the value before them.
                        let mut last = f64::NAN;
                        let mut gap_start: Option<usize> = None;
                        let n = s.values.len();
                        for i in 0..n {
                            let v = s.values[i];
                            if v.is_nan() {
                                if gap_start.is_none() {
                                    gap_start = Some(i);
                                }
                                continue;
                            }
                            if let Some(g) = gap_start.take() {
                                if !last.is_nan() && ((i - g) as f64) <= limit {
                                    for x in &mut s.values[g..i] {
                                        *x = last;
                                    }
                                }
                            }
                            last = v;
                        }
                        if let Some(g) = gap_start {
                            if !last.is_nan() && ((n - g) as f64) <= limit {
                                for x in &mut s.values[g..n] {
                                    *x = last;
                                }
                            }
                        }
                    },
                ))
            }
            "transformNull" => {
                let list = a.series(ctx, 0)?;
                let (default, tag) = match a.get(1, "default") {
                    None | Some(Expr::None) => (0.0, "0".to_string()),
                    Some(_) => a.float_str(1, "default")?,
                };
                let reference = match a.get(2, "referenceSeries") {
                    None | Some(Expr::None) => None,
                    Some(e) => Some(a.eval(ctx, e)?),
                };
                // Per point: the default where any reference series has a
                // value there, else a gap.
                let defaults: Option<Vec<f64>> = reference.filter(|r| !r.is_empty()).map(|r| {
                    let len = r.iter().map(|s| s.values.len()).max().unwrap_or(0);
                    (0..len)
                        .map(|i| {
                            if r.iter()
                                .any(|s| s.values.get(i).is_some_and(|v| !v.is_nan()))
                            {
                                default
                            } else {
                                f64::NAN
                            }
                        })
                        .collect()
                });
                // Each series grows to the longest reference series: made
                // points, charged before they are.
                if let Some(d) = &defaults {
                    let grown = list
                        .iter()
                        .fold(0usize, |n, s| n.saturating_add(s.values.len().max(d.len())));
                    a.will_make(ctx, grown)?;
                }
                let suffix = if defaults.is_some() {
                    ",referenceSeries"
                } else {
                    ""
                };
                Ok(each(
                    list,
                    |s| format!("transformNull({},{}{suffix})", s.name, py_g(default)),
                    |s| {
                        match &defaults {
                            Some(d) => {
                                if s.values.len() < d.len() {
                                    s.values.resize(d.len(), f64::NAN);
                                }
                                for (i, v) in s.values.iter_mut().enumerate() {
                                    if v.is_nan() {
                                        *v = d.get(i).copied().unwrap_or(f64::NAN);
                                    }
                                }
                                s.tags.insert("referenceSeries".into(), "1".into());
                            }
                            None => {
                                for v in s.values.iter_mut() {
                                    if v.is_nan() {
                                        *v = default;
                                    }
                                }
                            }
                        }
                        s.tags.insert("transformNull".into(), tag.clone());
                    },
                ))
            }
            "isNonNull" => Ok(each(
                a.series(ctx, 0)?,
                |s| format!("isNonNull({})", s.name),
                |s| {
                    for v in s.values.iter_mut() {
                        *v = if v.is_nan() { 0.0 } else { 1.0 };
                    }
                    s.tags.insert("isNonNull".into(), "1".into());
                },
            )),
            "removeAboveValue" | "removeBelowValue" => {
                let list = a.series(ctx, 0)?;
                let n = a.num(1, "n")?;
                let above = name == "removeAboveValue";
                Ok(each(
                    list,
                    |s| format!("{name}({}, {})", s.name, py_g(n)),
                    |s| {
                        for v in s.values.iter_mut() {
                            if (above && *v > n) || (!above && *v < n) {
                                *v = f64::NAN;
                            }
                        }
                    },
                ))
            }
            "removeAbovePercentile" | "removeBelowPercentile" => {
                let list = a.series(ctx, 0)?;
                let (n, n_text) = a.float_str(1, "n")?;
                if n == 0.0 {
                    return Err(a.bad_arg("the requested percent is required to be greater than 0"));
                }
                let above = name == "removeAbovePercentile";
                Ok(each(
                    list,
                    |s| format!("{name}({}, {})", s.name, py_g(n)),
                    |s| {
                        let Some(pct) = series_percentile(s, n) else {
                            return;
                        };
                        // graphite-web computes it with nPercentile on a copy
                        // that shares the tags, so its tag lands here too.
                        s.tags.insert("nPercentile".into(), n_text.clone());
                        for v in s.values.iter_mut() {
                            if (above && *v > pct) || (!above && *v < pct) {
                                *v = f64::NAN;
                            }
                        }
                    },
                ))
            }
            "consolidateBy" | "cumulative" => {
                let list = a.series(ctx, 0)?;
                let func = if name == "cumulative" {
                    "sum"
                } else {
                    a.string(1, "consolidationFunc")?
                };
                let c = Consolidate::parse(func).ok_or_else(|| {
                    a.bad_arg(format!(
                        "{func:?} is not one of average, avg, avg_zero, sum, min, max, first, last"
                    ))
                })?;
                Ok(each(
                    list,
                    |s| format!("consolidateBy({},\"{}\")", s.name, func),
                    |s| {
                        s.consolidate = c;
                        s.tags.insert("consolidateBy".into(), func.to_string());
                    },
                ))
            }
            "stdev" => {
                let list = a.series(ctx, 0)?;
                let points = a.int(1, "points")?;
                if points <= 0 {
                    return Err(a.bad_arg(format!("points must be at least 1, not {points}")));
                }
                let tolerance = a.opt_num(2, "windowTolerance")?.unwrap_or(0.1);
                Ok(each(
                    list,
                    |s| format!("stdev({},{points})", s.name),
                    |s| {
                        s.values = moving_stdev(
                            &s.values,
                            usize::try_from(points).unwrap_or(usize::MAX),
                            tolerance,
                        );
                        s.tags.insert("stdev".into(), points.to_string());
                    },
                ))
            }
            "delay" => {
                let list = a.series(ctx, 0)?;
                let steps = a.int(1, "steps")?;
                Ok(each(
                    list,
                    |s| format!("delay({},{steps})", s.name),
                    |s| {
                        s.values = delayed(&s.values, steps);
                        s.tags.insert("delay".into(), steps.to_string());
                    },
                ))
            }
            "timeShift" => {
                let first = a.series(ctx, 0)?;
                let Some(base) = first.first() else {
                    return Ok(vec![]);
                };
                let mut shift = a.string(1, "timeShift")?.to_string();
                if shift.starts_with(|c: char| c.is_ascii_digit()) {
                    shift = format!("-{shift}");
                }
                let reset_end = a.opt_bool(2, "resetEnd")?.unwrap_or(true);
                let delta = parse_offset(&shift)?;
                let mut from = ctx.shifted(ctx.from, delta)?;
                let mut until = ctx.shifted(ctx.until, delta)?;
                if a.opt_bool(3, "alignDST")?.unwrap_or(false) {
                    let dst = super::shift::dst_hours(ctx, from, until);
                    from = ctx.shifted(from, dst * 3600)?;
                    until = ctx.shifted(until, dst * 3600)?;
                }
                // The first argument again (not the series' names: they may
                // be aliased or computed), over the shifted window.
                let shifted = a.series_over(ctx, 0, from, until);
                let (bstart, bend) = (base.start, base.end);
                Ok(shifted?
                    .into_iter()
                    .map(|mut s| {
                        s.name = format!("timeShift({}, \"{}\")", s.name, shift);
                        s.end = if reset_end {
                            bend
                        } else {
                            s.end - s.start + bstart
                        };
                        s.start = bstart;
                        s.tags.insert("timeShift".into(), shift.clone());
                        s
                    })
                    .collect())
            }
            "constantLine" => {
                let v = a.num(0, "value")?;
                Ok(vec![super::special::constant_line(ctx, v)])
            }
            _ => Err(QueryError::UnknownFunction(String::new())),
        }
    })())
    .filter(|r| !matches!(r, Err(QueryError::UnknownFunction(n)) if n.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: f64 = f64::NAN;

    fn same(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| (x.is_nan() && y.is_nan()) || (x - y).abs() < 1e-9)
    }

    #[test]
    fn python_rounding_ties_to_even() {
        assert_eq!(py_round(0.0078125, 6), 0.007812);
        assert_eq!(py_round(1.23456789, 6), 1.234568);
        assert_eq!(py_round(-2.5e-7, 6), -0.0);
        assert_eq!(py_round(1e300, 6), 1e300);
    }

    #[test]
    fn counters_wrap_reset_and_clip_like_graphite() {
        let run = |vals: &[f64], max, min| {
            let mut prev = N;
            vals.iter()
                .map(|&v| {
                    let (d, p) = non_negative_delta(v, prev, max, min);
                    prev = p;
                    d
                })
                .collect::<Vec<f64>>()
        };
        // A reset (drop without maxValue) is a gap; the next delta counts from it.
        assert!(same(
            &run(&[1.0, 4.0, 2.0, 5.0], None, None),
            &[N, 3.0, N, 3.0]
        ));
        // Wrap at maxValue 9: 8 → 2 is 9 + 1 + 2 - 8 = 4.
        assert!(same(
            &run(&[7.0, 8.0, 2.0], Some(9.0), None),
            &[N, 1.0, 4.0]
        ));
        // Wrap with minValue 1 too: 9 + 1 + 2 - 8 - 1 = 3.
        assert!(same(&run(&[8.0, 2.0], Some(9.0), Some(1.0)), &[N, 3.0]));
        // Only minValue: a drop counts from minValue.
        assert!(same(&run(&[8.0, 3.0], None, Some(1.0)), &[N, 2.0]));
        // A value above maxValue is dropped and forgets the previous one.
        assert!(same(
            &run(&[1.0, 20.0, 3.0, 4.0], Some(9.0), None),
            &[N, N, N, 1.0]
        ));
    }

    #[test]
    fn delay_shifts_by_steps_and_zero_leaves_nothing() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert!(same(&delayed(&v, 1), &[N, 1.0, 2.0, 3.0]));
        assert!(same(&delayed(&v, -2), &[3.0, 4.0, N, N]));
        assert!(same(&delayed(&v, 9), &[N, N, N, N]));
        assert!(delayed(&v, 0).is_empty());
    }

    #[test]
    fn derivative_and_per_second() {
        let mut s = Series::new("x", 0, 50, 10, vec![1.0, 3.0, N, 4.0, 10.0]);
        derivative(&mut s);
        assert!(same(&s.values, &[N, 2.0, N, N, 6.0]));
        let mut r = Series::new("x", 0, 40, 10, vec![0.0, 25.0, 15.0, 16.0]);
        counter_rate(&mut r, None, None, true);
        // 25 / 10 s, a reset, then 1 / 10 s.
        assert!(same(&r.values, &[N, 2.5, N, 0.1]));
    }

    #[test]
    fn moving_stdev_of_windows() {
        // Windows of 2: [1], [1,3], [3,5], [5,gap] → 0, 1, 1, 0.
        let out = moving_stdev(&[1.0, 3.0, 5.0, N], 2, 0.1);
        assert!(same(&out, &[0.0, 1.0, 1.0, 0.0]));
        // Tolerance 1: a window needs both its points.
        let out = moving_stdev(&[1.0, 3.0, 5.0, N], 2, 1.0);
        assert!(same(&out, &[N, 1.0, 1.0, N]));
    }

    #[test]
    fn percentile_of_a_series_ignores_gaps() {
        let s = Series::new("x", 0, 50, 10, vec![5.0, 1.0, N, 3.0, 4.0]);
        // Sorted 1,3,4,5: rank ceil(0.5 * 5) = 3 → 4.
        assert_eq!(series_percentile(&s, 50.0), Some(4.0));
        assert_eq!(
            series_percentile(&Series::new("e", 0, 10, 10, vec![N]), 50.0),
            None
        );
    }

    #[test]
    fn tags_are_python_strs_of_the_validated_arguments() {
        use crate::eval::evaluate;
        use rollupd_config::StorageConfig;
        use rollupd_store::{Point, Store};
        const T0: i64 = 1_795_300_200;
        let store = Store::in_memory(&StorageConfig::default()).unwrap();
        let pts: Vec<Point<'_>> = [2.0, f64::NAN, 4.0, 1.5]
            .iter()
            .enumerate()
            .filter(|(_, v)| !v.is_nan())
            .map(|(k, v)| Point {
                name: "a.b",
                timestamp: T0 + 10 + 10 * i64::try_from(k).unwrap(),
                value: *v,
            })
            .collect();
        store.write(&pts, &[], T0 + 40).unwrap();
        let one = |target: &str| {
            let mut c = super::super::testutil::ctx(&store, T0, T0 + 40, T0 + 40);
            evaluate(&mut c, target)
                .unwrap_or_else(|e| panic!("{target}: {e}"))
                .remove(0)
        };
        let tag = |target: &str, k: &str| one(target).tags.get(k).cloned();
        // float parameters: an int argument is validated into a float.
        assert_eq!(tag("scale(a.b,2)", "scale").as_deref(), Some("2.0"));
        assert_eq!(one("scale(a.b,2)").name, "scale(a.b,2)");
        assert_eq!(tag("offset(a.b,-1.5)", "offset").as_deref(), Some("-1.5"));
        assert_eq!(
            tag("scaleToSeconds(a.b,60)", "scaleToSeconds").as_deref(),
            Some("60.0")
        );
        // A default that is never validated keeps its Python type.
        assert_eq!(
            tag("transformNull(a.b)", "transformNull").as_deref(),
            Some("0")
        );
        assert_eq!(
            tag("transformNull(a.b,0)", "transformNull").as_deref(),
            Some("0.0")
        );
        assert_eq!(one("transformNull(a.b,-1)").name, "transformNull(a.b,-1)");
        assert_eq!(
            one("transformNull(a.b,-1)").values,
            vec![2.0, -1.0, 4.0, 1.5]
        );
        for f in [
            "derivative",
            "integral",
            "absolute",
            "invert",
            "squareRoot",
            "isNonNull",
        ] {
            assert_eq!(tag(&format!("{f}(a.b)"), f).as_deref(), Some("1"), "{f}");
        }
        assert_eq!(tag("perSecond(a.b)", "perSecond").as_deref(), Some("1"));
        assert_eq!(
            tag("nonNegativeDerivative(a.b)", "nonNegativeDerivative").as_deref(),
            Some("1")
        );
        assert_eq!(
            tag("consolidateBy(a.b,'max')", "consolidateBy").as_deref(),
            Some("max")
        );
        assert_eq!(
            tag("cumulative(a.b)", "consolidateBy").as_deref(),
            Some("sum")
        );
        assert_eq!(one("cumulative(a.b)").name, "consolidateBy(a.b,\"sum\")");
        assert_eq!(
            tag("offsetToZero(a.b)", "offsetToZero").as_deref(),
            Some("1.5")
        );
        let z = one("offsetToZero(a.b)");
        assert!(same(&z.values, &[0.5, N, 2.5, 0.0]));
        assert_eq!(tag("log(a.b)", "log").as_deref(), Some("10"));
        assert_eq!(one("log(a.b,2)").name, "log(a.b, 2)");
        assert!(same(
            &one("log(a.b,2)").values,
            &[1.0, N, 2.0, 1.5f64.log2()]
        ));
        assert_eq!(tag("stdev(a.b,3)", "stdev").as_deref(), Some("3"));
        assert_eq!(one("stdev(a.b,3)").name, "stdev(a.b,3)");
        // No tag for these.
        assert_eq!(one("keepLastValue(a.b)").tags.len(), 1);
        assert_eq!(
            one("removeAboveValue(a.b,3)").name,
            "removeAboveValue(a.b, 3)"
        );
        assert_eq!(one("removeAboveValue(a.b,3)").tags.len(), 1);
        let c = one("constantLine(100)");
        assert_eq!(
            (c.name.as_str(), c.path_expression.as_str()),
            ("100.0", "constantLine(100.0)")
        );
        assert_eq!(c.tags["name"], "100.0");
    }
}
