//! Functions that change each series on its own: scale, offset, absolute,
//! invert, squareRoot, derivative, nonNegativeDerivative, perSecond,
//! integral, keepLastValue, transformNull, removeAboveValue,
//! removeBelowValue, consolidateBy, cumulative, delay, timeShift,
//! constantLine.

use super::Args;
use crate::query::eval::{Context, QueryError};
use crate::query::format::{py_float_repr, py_g};
use crate::query::parse::Expr;
use crate::query::series::{Consolidate, Series};
use crate::query::time::parse_offset;

pub const NAMES: &[&str] = &[
    "absolute",
    "consolidateBy",
    "constantLine",
    "cumulative",
    "delay",
    "derivative",
    "integral",
    "invert",
    "keepLastValue",
    "nonNegativeDerivative",
    "offset",
    "perSecond",
    "removeAboveValue",
    "removeBelowValue",
    "scale",
    "squareRoot",
    "timeShift",
    "transformNull",
];

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

fn map_values(list: Vec<Series>, label: &str, f: impl Fn(f64) -> f64) -> Vec<Series> {
    each(
        list,
        |s| format!("{label}({})", s.name),
        |s| {
            for v in s.values.iter_mut() {
                if !v.is_nan() {
                    *v = f(*v);
                }
            }
        },
    )
}

/// The text Python's `str()` gives a number argument (ints stay ints).
fn py_str(e: Option<&Expr>) -> String {
    match e {
        Some(Expr::Int(n)) => n.to_string(),
        Some(Expr::Num(n)) => py_float_repr(*n),
        Some(other) => other.to_target(),
        None => String::new(),
    }
}

fn derivative(s: &mut Series, max: Option<f64>, non_negative: bool, per_second: bool) {
    let mut prev = f64::NAN;
    let step = s.step as f64;
    for v in s.values.iter_mut() {
        let cur = *v;
        if cur.is_nan() {
            prev = f64::NAN;
            *v = f64::NAN;
            continue;
        }
        if prev.is_nan() {
            prev = cur;
            *v = f64::NAN;
            continue;
        }
        let mut diff = cur - prev;
        if non_negative && diff < 0.0 {
            diff = match max {
                Some(m) if m >= cur => m + 1.0 - prev + cur,
                _ => f64::NAN,
            };
        }
        *v = if per_second { diff / step } else { diff };
        prev = cur;
    }
}

pub fn call(
    ctx: &mut Context<'_>,
    name: &str,
    a: &Args<'_>,
) -> Option<Result<Vec<Series>, QueryError>> {
    Some((|| -> Result<Vec<Series>, QueryError> {
        match name {
            "scale" => {
                let list = a.series(ctx, 0)?;
                let factor = a.num(1, "factor")?;
                let tag = py_str(a.get(1, "factor"));
                Ok(each(
                    list,
                    |s| format!("scale({},{})", s.name, py_g(factor)),
                    |s| {
                        for v in s.values.iter_mut() {
                            if !v.is_nan() {
                                *v *= factor;
                            }
                        }
                        s.tags.insert("scale".into(), tag.clone());
                    },
                ))
            }
            "offset" => {
                let list = a.series(ctx, 0)?;
                let factor = a.num(1, "factor")?;
                let tag = py_str(a.get(1, "factor"));
                Ok(each(
                    list,
                    |s| format!("offset({},{})", s.name, py_g(factor)),
                    |s| {
                        for v in s.values.iter_mut() {
                            if !v.is_nan() {
                                *v += factor;
                            }
                        }
                        s.tags.insert("offset".into(), tag.clone());
                    },
                ))
            }
            "absolute" => Ok(map_values(a.series(ctx, 0)?, "absolute", f64::abs)),
            "invert" => Ok(map_values(a.series(ctx, 0)?, "invert", |v| {
                if v == 0.0 {
                    f64::NAN
                } else {
                    1.0 / v
                }
            })),
            "squareRoot" => Ok(map_values(a.series(ctx, 0)?, "squareRoot", |v| {
                if v < 0.0 {
                    f64::NAN
                } else {
                    v.sqrt()
                }
            })),
            "derivative" | "nonNegativeDerivative" | "perSecond" => {
                let list = a.series(ctx, 0)?;
                let max = if name == "derivative" {
                    None
                } else {
                    a.opt_num(1, "maxValue")?
                };
                let non_negative = name != "derivative";
                let per_second = name == "perSecond";
                Ok(each(
                    list,
                    |s| format!("{name}({})", s.name),
                    |s| derivative(s, max, non_negative, per_second),
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
                let default = a.opt_num(1, "default")?.unwrap_or(0.0);
                Ok(each(
                    list,
                    |s| format!("transformNull({},{})", s.name, py_g(default)),
                    |s| {
                        for v in s.values.iter_mut() {
                            if v.is_nan() {
                                *v = default;
                            }
                        }
                    },
                ))
            }
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
            "consolidateBy" | "cumulative" => {
                let list = a.series(ctx, 0)?;
                let func = if name == "cumulative" {
                    "sum"
                } else {
                    a.string(1, "consolidationFunc")?
                };
                let c = Consolidate::parse(func).ok_or_else(|| {
                    QueryError::BadArgument(format!(
                        "consolidateBy(): {func:?} is not one of average, sum, min, max, first, last, median"
                    ))
                })?;
                Ok(each(
                    list,
                    |s| format!("consolidateBy({},\"{}\")", s.name, func),
                    |s| s.consolidate = c,
                ))
            }
            "delay" => {
                let list = a.series(ctx, 0)?;
                let steps = a.int(1, "steps")?;
                Ok(each(
                    list,
                    |s| format!("delay({},{steps})", s.name),
                    |s| {
                        let n = s.values.len();
                        let k = steps.unsigned_abs() as usize;
                        let mut out = vec![f64::NAN; n];
                        for (i, o) in out.iter_mut().enumerate() {
                            let j = if steps >= 0 {
                                i.checked_sub(k)
                            } else {
                                Some(i + k).filter(|j| *j < n)
                            };
                            if let Some(j) = j {
                                *o = s.values[j];
                            }
                        }
                        s.values = out;
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
                let (mut from, mut until) = (ctx.from + delta, ctx.until + delta);
                if a.opt_bool(3, "alignDST")?.unwrap_or(false) {
                    let dst = super::shift::dst_hours(ctx, from, until);
                    from += dst * 3600;
                    until += dst * 3600;
                }
                // The first argument again (not the series' names: they may
                // be aliased or computed), over the shifted window.
                let expr = a.get(0, "seriesList").expect("evaluated above");
                let shifted = ctx.eval_over(expr, from, until);
                let (bstart, bend) = (base.start, base.end);
                Ok(shifted?
                    .into_iter()
                    .map(|mut s| {
                        s.name = format!("timeShift({}, \"{}\")", s.name, shift);
                        s.end = if reset_end { bend } else { s.end - s.start + bstart };
                        s.start = bstart;
                        s.tags.insert("timeShift".into(), shift.clone());
                        s
                    })
                    .collect())
            }
            "constantLine" => {
                let v = a.num(0, "value")?;
                let step = ((ctx.until - ctx.from) / 2).max(1);
                let name = py_float_repr(v);
                let mut s = Series::new(&name, ctx.from, ctx.until, step, vec![v, v, v]);
                s.path_expression = format!("constantLine({})", py_str(a.get(0, "value")));
                Ok(vec![s])
            }
            _ => Err(QueryError::UnknownFunction(String::new())),
        }
    })())
    .filter(|r| !matches!(r, Err(QueryError::UnknownFunction(n)) if n.is_empty()))
}
