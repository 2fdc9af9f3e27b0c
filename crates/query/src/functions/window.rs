//! Moving-window functions: movingWindow and its shorthands movingAverage,
//! movingSum, movingMin, movingMax, movingMedian (graphite-web's
//! `movingWindow`).
//!
//! The window is a number of points (`movingAverage(x,10)`) or an interval
//! (`movingAverage(x,'5min')`). Either way the first argument is evaluated
//! again with `from` moved back by the window (the bootstrap), so the first
//! point of the requested range already has a full window behind it, and
//! the result starts `window` seconds after the bootstrapped series.

use super::aggfunc::AggFunc;
use super::Args;
use crate::eval::{Context, Limits, QueryError};
use crate::format::py_float_repr;
use crate::parse::Expr;
use crate::series::Series;
use crate::time::parse_offset;

/// What `/functions` says about each function here (graphite-web's
/// groups and parameters); the registry dispatches by these names.
pub(super) const INFO: &[super::info::FnInfo] = {
    use super::info::{p, FnInfo, Lit::*, Param, Ty, SERIES_LIST};
    const WINDOW: Param = p("windowSize", Ty::IntOrInterval).req().sugg(&[
        Int(5),
        Int(7),
        Int(10),
        Str("1min"),
        Str("5min"),
        Str("10min"),
        Str("30min"),
        Str("1hour"),
    ]);
    const MOVING: &[Param] = &[SERIES_LIST, WINDOW, p("xFilesFactor", Ty::Float)];
    &[
        FnInfo::new(
            "movingAverage",
            "Calculate",
            "The average of the last windowSize points (a number of points, or an interval such as '5min') at each point; the window before `from` is read first, so the first points are complete. A window with fewer known values than xFilesFactor allows is a gap.",
            MOVING,
        ),
        FnInfo::new(
            "movingMax",
            "Calculate",
            "The maximum of the last windowSize points (a number of points, or an interval such as '5min') at each point; the window before `from` is read first, so the first points are complete. A window with fewer known values than xFilesFactor allows is a gap.",
            MOVING,
        ),
        FnInfo::new(
            "movingMedian",
            "Calculate",
            "The median of the last windowSize points (a number of points, or an interval such as '5min') at each point; the window before `from` is read first, so the first points are complete. A window with fewer known values than xFilesFactor allows is a gap.",
            MOVING,
        ),
        FnInfo::new(
            "movingMin",
            "Calculate",
            "The minimum of the last windowSize points (a number of points, or an interval such as '5min') at each point; the window before `from` is read first, so the first points are complete. A window with fewer known values than xFilesFactor allows is a gap.",
            MOVING,
        ),
        FnInfo::new(
            "movingSum",
            "Calculate",
            "The sum of the last windowSize points (a number of points, or an interval such as '5min') at each point; the window before `from` is read first, so the first points are complete. A window with fewer known values than xFilesFactor allows is a gap.",
            MOVING,
        ),
        FnInfo::new(
            "movingWindow",
            "Calculate",
            "The aggregation func (average, median, sum, min, max, ...) of the last windowSize points (a number of points, or an interval such as '5min') at each point; the window before `from` is read first. A window with fewer known values than xFilesFactor allows is a gap.",
            &[
                SERIES_LIST,
                WINDOW,
                p("func", Ty::AggFunc).dflt(Str("average")),
                p("xFilesFactor", Ty::Float),
            ],
        ),
    ]
};

/// A window size as given: points (an int, or a float graphite truncates)
/// or a quoted interval.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Window {
    /// The point count and the argument as Python's `str()` prints it.
    Points(i64, String),
    Interval(String),
}

impl Window {
    pub(super) fn from_arg(e: Option<&Expr>, func: &str) -> Result<Window, QueryError> {
        match e {
            Some(Expr::Int(n)) => Ok(Window::Points(*n, n.to_string())),
            Some(Expr::Num(f)) if f.is_finite() => {
                Ok(Window::Points(super::py_int(*f), py_float_repr(*f)))
            }
            Some(Expr::Str(s)) => Ok(Window::Interval(s.clone())),
            Some(other) => Err(QueryError::BadArgument(format!(
                "{func}(): windowSize must be a number of points or a quoted interval, not {}",
                other.to_target()
            ))),
            None => Err(QueryError::BadArgument(format!(
                "{func}(): windowSize is missing"
            ))),
        }
    }

    /// The text graphite-web puts in the name and the tag.
    fn text(&self) -> &str {
        match self {
            Window::Points(_, t) | Window::Interval(t) => t,
        }
    }

    /// Seconds of bootstrap: the interval (its absolute value), or the
    /// point count times the largest step of the series as first fetched.
    pub(super) fn seconds(&self, first: &[Series]) -> Result<i64, QueryError> {
        match self {
            Window::Interval(s) => {
                let secs = parse_offset(s)?.unsigned_abs();
                if secs > MAX_BOOTSTRAP_SECS {
                    return Err(QueryError::BadArgument(format!(
                        "window {s:?} reaches back further than any retention"
                    )));
                }
                Ok(i64::try_from(secs).unwrap_or(i64::MAX))
            }
            Window::Points(n, _) => {
                let step = first.iter().map(|s| s.step).max().unwrap_or(0);
                step.checked_mul(*n)
                    .filter(|s| s.unsigned_abs() <= MAX_BOOTSTRAP_SECS)
                    .ok_or_else(|| {
                        QueryError::BadArgument(format!(
                            "windowSize {n} points at {step} s reaches back further than any retention"
                        ))
                    })
            }
        }
    }
}

/// No retention reaches back further than a century: a window beyond it
/// is a typo, and refusing it keeps the time arithmetic from overflowing.
const MAX_BOOTSTRAP_SECS: u64 = 100 * 366 * 86_400;

/// `'moving' + func.capitalize()`: the name prefix and the tag key.
fn tag_name(func: &str) -> String {
    let mut c = func.chars();
    match c.next() {
        Some(f) => format!("moving{}{}", f.to_uppercase(), c.as_str().to_lowercase()),
        None => "moving".to_string(),
    }
}

/// graphite-web's `xff(nonNull, total, xFilesFactor)`.
pub(super) fn xff_ok(non_null: usize, total: f64, xff: f64) -> bool {
    non_null > 0 && total != 0.0 && non_null as f64 / total >= xff
}

/// The window of `window` over a series at `step`, in points.
fn window_points(window: &Window, preview: i64, step: i64) -> i64 {
    match window {
        Window::Interval(_) => preview.div_euclid(step.max(1)),
        Window::Points(n, _) => *n,
    }
}

/// How many values the window function gives a series of `len` values
/// with a window of `points`: `range(w + 1, len + 1)`, so a negative window
/// gives more values than the series has (`movingSum(x, -1000000)` a
/// million more).
fn output_len(len: usize, points: i64) -> usize {
    if points < 0 {
        len.saturating_add(usize::try_from(points.unsigned_abs()).unwrap_or(usize::MAX))
    } else {
        len.saturating_sub(usize::try_from(points).unwrap_or(usize::MAX))
    }
}

/// How many output values [`moving`] computes between deadline checks:
/// a movingMedian value sorts its whole window.
const DEADLINE_EVERY: usize = 4096;

/// The window function over series fetched with `preview` seconds of
/// bootstrap before the request's `from` (no deadline: for tests).
#[cfg(test)]
pub(super) fn moving(
    bootstrapped: Vec<Series>,
    window: &Window,
    preview: i64,
    func: &str,
    xff: Option<f64>,
) -> Result<Vec<Series>, QueryError> {
    moving_within(bootstrapped, window, preview, func, xff, &Limits::default())
}

/// [`moving`], stopping with `Deadline` soon after `limits`' deadline.
pub(super) fn moving_within(
    bootstrapped: Vec<Series>,
    window: &Window,
    preview: i64,
    func: &str,
    xff: Option<f64>,
    limits: &Limits,
) -> Result<Vec<Series>, QueryError> {
    let agg = AggFunc::get(func)?;
    let tag = tag_name(func);
    let mut out = Vec::with_capacity(bootstrapped.len());
    for mut s in bootstrapped {
        limits.check_deadline()?;
        let points = window_points(window, preview, s.step);
        let name = match window {
            Window::Interval(text) => format!("{tag}({},\"{text}\")", s.name),
            Window::Points(_, text) => format!("{tag}({},{text})", s.name),
        };
        let effective_xff = xff.unwrap_or(s.xff);
        let values = if points < 0 {
            // range(w + 1, len + 1) over Python's slices: every window
            // fails xff against a negative total, so len - w Nones.
            vec![f64::NAN; output_len(s.values.len(), points)]
        } else {
            // Past usize::MAX (a 32-bit target), no window fits anyway.
            let w = usize::try_from(points).unwrap_or(usize::MAX);
            let mut values = Vec::with_capacity(s.values.len().saturating_sub(w));
            // Never more than the series holds: `w` is the user's number.
            let mut known = Vec::with_capacity(w.min(s.values.len()));
            for i in w.saturating_add(1)..=s.values.len() {
                if i % DEADLINE_EVERY == 0 {
                    limits.check_deadline()?;
                }
                known.clear();
                known.extend(s.values[i - w..i].iter().copied().filter(|v| !v.is_nan()));
                values.push(if xff_ok(known.len(), w as f64, effective_xff) {
                    agg.apply(&known)
                } else {
                    f64::NAN
                });
            }
            values
        };
        s.tags.insert(tag.clone(), window.text().to_string());
        s.start += preview;
        s.values = values;
        s.path_expression = name.clone();
        s.name = name;
        out.push(s);
    }
    Ok(out)
}

pub(super) fn call(
    ctx: &mut Context<'_>,
    name: &str,
    a: &Args<'_>,
) -> Option<Result<Vec<Series>, QueryError>> {
    let (func, xff_at) = match name {
        "movingWindow" => (None, 3),
        "movingAverage" => (Some("average"), 2),
        "movingSum" => (Some("sum"), 2),
        "movingMin" => (Some("min"), 2),
        "movingMax" => (Some("max"), 2),
        "movingMedian" => (Some("median"), 2),
        _ => return None,
    };
    Some((|| {
        let first = a.series(ctx, 0)?;
        // graphite-web looks at nothing else when the list is empty.
        if first.is_empty() {
            return Ok(vec![]);
        }
        let window = Window::from_arg(a.get(1, "windowSize"), name)?;
        let func = match func {
            Some(f) => f,
            None => a.opt_string(2, "func")?.unwrap_or("average"),
        };
        let xff = a.opt_num(xff_at, "xFilesFactor")?;
        AggFunc::get(func)?;
        let preview = window.seconds(&first)?;
        let bootstrapped = a.series_bootstrapped(ctx, 0, preview)?;
        let made = bootstrapped.iter().fold(0usize, |n, s| {
            let points = window_points(&window, preview, s.step);
            n.saturating_add(output_len(s.values.len(), points))
        });
        a.will_make(ctx, made)?;
        moving_within(bootstrapped, &window, preview, func, xff, &ctx.limits)
    })())
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{same, N};
    use super::*;

    /// 8 points at 10 s from t=1000, the first 3 being the bootstrap of a
    /// 3-point window.
    fn boot() -> Series {
        let mut s = Series::new(
            "a.b",
            1000,
            1080,
            10,
            vec![1.0, 2.0, N, 4.0, 5.0, N, N, 8.0],
        );
        s.path_expression = "a.*".into();
        s
    }

    #[test]
    fn points_window_average_with_bootstrap() {
        let w = Window::Points(3, "3".into());
        let out = moving(vec![boot()], &w, 30, "average", None).unwrap();
        let s = &out[0];
        assert_eq!(s.name, "movingAverage(a.b,3)");
        assert_eq!(s.path_expression, s.name);
        assert_eq!(s.tags.get("movingAverage").map(String::as_str), Some("3"));
        assert_eq!(s.tags.get("name").map(String::as_str), Some("a.b"));
        assert_eq!((s.start, s.end, s.step), (1030, 1080, 10));
        // Windows end at points 3..7: [2,N,4] [N,4,5] [4,5,N] [5,N,N] [N,N,8].
        assert!(
            same(&s.values, &[3.0, 4.5, 4.5, 5.0, 8.0]),
            "{:?}",
            s.values
        );
    }

    #[test]
    fn xfilesfactor_counts_against_the_whole_window() {
        let w = Window::Points(3, "3".into());
        let out = moving(vec![boot()], &w, 30, "sum", Some(0.5)).unwrap();
        // 2/3 known passes 0.5; 1/3 does not.
        assert!(
            same(&out[0].values, &[6.0, 9.0, 9.0, N, N]),
            "{:?}",
            out[0].values
        );
        let mut b = boot();
        b.xff = 0.7; // the series' own factor when none is given
        let out = moving(vec![b], &w, 30, "sum", None).unwrap();
        assert!(
            same(&out[0].values, &[N, N, N, N, N]),
            "{:?}",
            out[0].values
        );
    }

    #[test]
    fn interval_window_names_quote_the_interval() {
        let w = Window::Interval("-30s".into());
        let out = moving(vec![boot()], &w, 30, "median", None).unwrap();
        let s = &out[0];
        assert_eq!(s.name, "movingMedian(a.b,\"-30s\")");
        assert_eq!(s.tags.get("movingMedian").map(String::as_str), Some("-30s"));
        assert!(
            same(&s.values, &[3.0, 4.5, 4.5, 5.0, 8.0]),
            "{:?}",
            s.values
        );
        // A window shorter than a step holds no point: all None.
        let w = Window::Interval("5s".into());
        let out = moving(vec![boot()], &w, 5, "max", None).unwrap();
        assert_eq!(out[0].start, 1005);
        assert_eq!(out[0].values.len(), 8);
        assert!(out[0].values.iter().all(|v| v.is_nan()));
    }

    #[test]
    fn every_function_and_its_tag() {
        let w = Window::Points(2, "2".into());
        let v = |f: &str| moving(vec![boot()], &w, 20, f, None).unwrap().remove(0);
        let s = v("min");
        assert_eq!(s.name, "movingMin(a.b,2)");
        assert!(
            same(&s.values, &[2.0, 4.0, 4.0, 5.0, N, 8.0]),
            "{:?}",
            s.values
        );
        assert!(same(&v("max").values, &[2.0, 4.0, 5.0, 5.0, N, 8.0]));
        assert!(same(&v("multiply").values, &[2.0, 4.0, 20.0, 5.0, N, 8.0]));
        assert!(same(&v("diff").values, &[2.0, 4.0, -1.0, 5.0, N, 8.0]));
        assert!(same(&v("count").values, &[1.0, 1.0, 2.0, 1.0, N, 1.0]));
        let s = v("avg_zero");
        assert_eq!(s.name, "movingAvg_zero(a.b,2)");
        assert!(s.tags.contains_key("movingAvg_zero"));
        assert_eq!(v("rangeOf").name, "movingRangeof(a.b,2)");
        assert!(moving(vec![boot()], &w, 20, "mode", None).is_err());
    }

    #[test]
    fn float_window_truncates_but_keeps_its_text() {
        let w = Window::from_arg(Some(&Expr::Num(2.5)), "movingSum").unwrap();
        assert_eq!(w, Window::Points(2, "2.5".into()));
        let out = moving(vec![boot()], &w, 20, "sum", None).unwrap();
        assert_eq!(out[0].name, "movingSum(a.b,2.5)");
        assert_eq!(out[0].values.len(), 6);
        assert!(Window::from_arg(Some(&Expr::Bool(true)), "movingSum").is_err());
    }

    #[test]
    fn negative_window_is_all_none() {
        let w = Window::Points(-2, "-2".into());
        let out = moving(vec![boot()], &w, -20, "average", None).unwrap();
        assert_eq!(out[0].name, "movingAverage(a.b,-2)");
        assert_eq!(out[0].start, 980);
        assert_eq!(out[0].values.len(), 10);
        assert!(out[0].values.iter().all(|v| v.is_nan()));
    }

    #[test]
    fn bootstrap_seconds() {
        let a = Series::new("a", 0, 100, 10, vec![]);
        let b = Series::new("b", 0, 120, 60, vec![]);
        assert_eq!(
            Window::Points(5, "5".into())
                .seconds(&[a.clone(), b])
                .unwrap(),
            300
        );
        assert_eq!(
            Window::Points(5, "5".into())
                .seconds(std::slice::from_ref(&a))
                .unwrap(),
            50
        );
        assert_eq!(
            Window::Interval("-1h".into())
                .seconds(std::slice::from_ref(&a))
                .unwrap(),
            3600
        );
        assert_eq!(Window::Interval("5min".into()).seconds(&[a]).unwrap(), 300);
    }
}
