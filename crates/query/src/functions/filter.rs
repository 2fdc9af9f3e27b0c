//! Functions that choose or order whole series: exclude, grep, limit,
//! unique, removeEmptySeries, filterSeries and its short forms
//! (currentAbove, averageBelow, maximumAbove...), highest/lowest and their
//! short forms, mostDeviant, useSeriesAbove, sortBy, sortByName,
//! sortByMaxima, sortByMinima, sortByTotal.

use std::cmp::Ordering;

use regex::Regex;

use super::combine::{is_agg_func, reduce};
use super::info::{p, FnInfo, Lit, Ty, SERIES_LIST};
use super::Args;
use crate::eval::{Context, QueryError};
use crate::series::Series;

const FILTER: &str = "Filter Series";
const SORTING: &str = "Sorting";
const N_FLOAT: &[super::info::Param] = &[SERIES_LIST, p("n", Ty::Float).req()];
const N_INT: &[super::info::Param] = &[SERIES_LIST, p("n", Ty::Integer).req()];
const RANK: &[super::info::Param] = &[
    SERIES_LIST,
    p("n", Ty::Integer).req(),
    p("func", Ty::AggFunc).dflt(Lit::Str("average")),
];
const OPERATORS: &[&str] = &["!=", "<", "<=", "=", ">", ">="];

pub(super) const INFO: &[FnInfo] = &[
    FnInfo::new("averageAbove", FILTER, "Keeps the series whose average is above n.", N_FLOAT),
    FnInfo::new("averageBelow", FILTER, "Keeps the series whose average is at most n.", N_FLOAT),
    FnInfo::new("currentAbove", FILTER, "Keeps the series whose last value is above n.", N_FLOAT),
    FnInfo::new("currentBelow", FILTER, "Keeps the series whose last value is at most n.", N_FLOAT),
    FnInfo::new(
        "exclude",
        FILTER,
        "Removes the series whose name matches the regular expression.",
        &[SERIES_LIST, p("pattern", Ty::String).req()],
    ),
    FnInfo::new(
        "filterSeries",
        FILTER,
        "Keeps the series whose value of func (over the whole window) compares to threshold with operator.",
        &[
            SERIES_LIST,
            p("func", Ty::AggFunc).req(),
            p("operator", Ty::String).req().opts(OPERATORS),
            p("threshold", Ty::Float).req(),
        ],
    ),
    FnInfo::new(
        "grep",
        FILTER,
        "Keeps the series whose name matches the regular expression.",
        &[SERIES_LIST, p("pattern", Ty::String).req()],
    ),
    FnInfo::new("highest", FILTER, "The n series with the highest value of func.", RANK),
    FnInfo::new("highestAverage", FILTER, "The n series with the highest average.", N_INT),
    FnInfo::new("highestCurrent", FILTER, "The n series with the highest last value.", N_INT),
    FnInfo::new("highestMax", FILTER, "The n series with the highest maximum.", N_INT),
    FnInfo::new("limit", FILTER, "The first n series.", N_INT),
    FnInfo::new("lowest", FILTER, "The n series with the lowest value of func.", RANK),
    FnInfo::new("lowestAverage", FILTER, "The n series with the lowest average.", N_INT),
    FnInfo::new("lowestCurrent", FILTER, "The n series with the lowest last value.", N_INT),
    FnInfo::new("maximumAbove", FILTER, "Keeps the series whose maximum is above n.", N_FLOAT),
    FnInfo::new("maximumBelow", FILTER, "Keeps the series whose maximum is at most n.", N_FLOAT),
    FnInfo::new("minimumAbove", FILTER, "Keeps the series whose minimum is above n.", N_FLOAT),
    FnInfo::new("minimumBelow", FILTER, "Keeps the series whose minimum is at most n.", N_FLOAT),
    FnInfo::new(
        "mostDeviant",
        FILTER,
        "The n series whose values deviate most from their own average.",
        N_INT,
    ),
    FnInfo::new(
        "removeEmptySeries",
        FILTER,
        "Removes series with no values (or with fewer than xFilesFactor of them known).",
        &[SERIES_LIST, p("xFilesFactor", Ty::Float)],
    ),
    FnInfo::new(
        "sortBy",
        SORTING,
        "Sorts the series by the value of func, ascending (descending with reverse).",
        &[
            SERIES_LIST,
            p("func", Ty::AggFunc).dflt(Lit::Str("average")),
            p("reverse", Ty::Boolean).dflt(Lit::Bool(false)),
        ],
    ),
    FnInfo::new("sortByMaxima", SORTING, "Sorts the series by their maximum, highest first.", &[SERIES_LIST]),
    FnInfo::new(
        "sortByMinima",
        SORTING,
        "Sorts the series by their minimum, lowest first, leaving out series whose maximum is not above zero.",
        &[SERIES_LIST],
    ),
    FnInfo::new(
        "sortByName",
        SORTING,
        "Sorts the series by name (natural: numbers by value).",
        &[
            SERIES_LIST,
            p("natural", Ty::Boolean).dflt(Lit::Bool(false)),
            p("reverse", Ty::Boolean).dflt(Lit::Bool(false)),
        ],
    ),
    FnInfo::new("sortByTotal", SORTING, "Sorts the series by their sum, highest first.", &[SERIES_LIST]),
    FnInfo::new(
        "unique",
        FILTER,
        "Drops series whose name came earlier.",
        &[p("seriesLists", Ty::SeriesList).req().multi()],
    ),
    FnInfo::new(
        "useSeriesAbove",
        FILTER,
        "For each series whose maximum is above value, the series named by a regex search and replace on its name.",
        &[
            SERIES_LIST,
            p("value", Ty::Float).req(),
            p("search", Ty::String).req(),
            p("replace", Ty::String).req(),
        ],
    ),
];

/// An aggregation function over one series' values, as graphite-web
/// applies it to a whole series (NaN for Python's None).
fn series_value(s: &Series, func: &str) -> f64 {
    if func == "count" {
        return s.values.iter().filter(|v| !v.is_nan()).count() as f64;
    }
    reduce(func, &s.values)
}

/// graphite-web's `keyFunc`: None sorts as -infinity.
fn key(s: &Series, func: &str) -> f64 {
    let v = series_value(s, func);
    if v.is_nan() {
        f64::NEG_INFINITY
    } else {
        v
    }
}

/// Python's stable `list.sort(key=..., reverse=...)` (reverse keeps equal
/// keys in their original order).
fn sort_by_key(list: Vec<Series>, func: &str, reverse: bool) -> Vec<Series> {
    let mut keyed: Vec<(f64, Series)> = list.into_iter().map(|s| (key(&s, func), s)).collect();
    keyed.sort_by(|a, b| {
        let o = a.0.partial_cmp(&b.0).unwrap_or(Ordering::Equal);
        if reverse {
            o.reverse()
        } else {
            o
        }
    });
    keyed.into_iter().map(|(_, s)| s).collect()
}

/// Python's `seq[:n]`.
fn py_head(mut list: Vec<Series>, n: i64) -> Vec<Series> {
    list.truncate(super::py_bound(list.len(), n));
    list
}

fn compare(op: &str, v: f64, t: f64) -> bool {
    let known = !v.is_nan();
    match op {
        "=" => known && v == t,
        "!=" => !known || v != t,
        ">" => known && v > t,
        ">=" => known && v >= t,
        "<" => !known || v < t,
        _ => !known || v <= t,
    }
}

/// graphite-web's natural sort key: every run of digits zero-padded to ten.
fn natural_key(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 16);
    let mut digits = String::new();
    let flush = |digits: &mut String, out: &mut String| {
        if !digits.is_empty() {
            let trimmed = digits.trim_start_matches('0');
            let n = if trimmed.is_empty() { "0" } else { trimmed };
            for _ in n.len()..10 {
                out.push('0');
            }
            out.push_str(n);
            digits.clear();
        }
    };
    for c in name.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            flush(&mut digits, &mut out);
            out.push(c);
        }
    }
    flush(&mut digits, &mut out);
    out
}

fn regex(a: &Args<'_>, pattern: &str) -> Result<Regex, QueryError> {
    Regex::new(pattern).map_err(|e| a.bad_arg(format!("bad regex {pattern:?}: {e}")))
}

fn agg_func<'c>(
    a: &Args<'c>,
    i: usize,
    name: &str,
    default: &'c str,
) -> Result<&'c str, QueryError> {
    let f = a.opt_string(i, name)?.unwrap_or(default);
    if is_agg_func(f) {
        Ok(f)
    } else {
        Err(a.bad_arg(format!("unsupported aggregation function: {f}")))
    }
}

pub(super) fn call(
    ctx: &mut Context<'_>,
    name: &str,
    a: &Args<'_>,
) -> Option<Result<Vec<Series>, QueryError>> {
    let filter = match name {
        "currentAbove" => Some(("last", ">")),
        "currentBelow" => Some(("last", "<=")),
        "averageAbove" => Some(("average", ">")),
        "averageBelow" => Some(("average", "<=")),
        "maximumAbove" => Some(("max", ">")),
        "maximumBelow" => Some(("max", "<=")),
        "minimumAbove" => Some(("min", ">")),
        "minimumBelow" => Some(("min", "<=")),
        _ => None,
    };
    Some((|| -> Result<Vec<Series>, QueryError> {
        if let Some((func, op)) = filter {
            let list = a.series(ctx, 0)?;
            let n = a.num(1, "n")?;
            return Ok(list
                .into_iter()
                .filter(|s| compare(op, series_value(s, func), n))
                .collect());
        }
        match name {
            "exclude" | "grep" => {
                let list = a.series(ctx, 0)?;
                let re = regex(a, a.string(1, "pattern")?)?;
                let keep = name == "grep";
                Ok(list
                    .into_iter()
                    .filter(|s| re.is_match(&s.name) == keep)
                    .collect())
            }
            "filterSeries" => {
                let list = a.series(ctx, 0)?;
                let func = agg_func(a, 1, "func", "")?;
                let op = a.string(2, "operator")?;
                if !OPERATORS.contains(&op) {
                    return Err(a.bad_arg(format!("unsupported operator: {op}")));
                }
                let t = a.num(3, "threshold")?;
                Ok(list
                    .into_iter()
                    .filter(|s| compare(op, series_value(s, func), t))
                    .collect())
            }
            "limit" => Ok(py_head(a.series(ctx, 0)?, a.int(1, "n")?)),
            "unique" => {
                let mut seen = std::collections::HashSet::new();
                Ok(a.series_from(ctx, 0)?
                    .into_iter()
                    .filter(|s| seen.insert(s.name.clone()))
                    .collect())
            }
            "removeEmptySeries" => {
                let list = a.series(ctx, 0)?;
                let xff = a.opt_num(1, "xFilesFactor")?.unwrap_or(0.0);
                Ok(list
                    .into_iter()
                    .filter(|s| {
                        let known = s.values.iter().filter(|v| !v.is_nan()).count();
                        known > 0 && known as f64 / s.values.len() as f64 >= xff
                    })
                    .collect())
            }
            "sortByName" => {
                let mut list = a.series(ctx, 0)?;
                let natural = a.opt_bool(1, "natural")?.unwrap_or(false);
                let reverse = a.opt_bool(2, "reverse")?.unwrap_or(false);
                let k = |s: &Series| {
                    if natural {
                        natural_key(&s.name)
                    } else {
                        s.name.clone()
                    }
                };
                list.sort_by(|x, y| {
                    let o = k(x).cmp(&k(y));
                    if reverse {
                        o.reverse()
                    } else {
                        o
                    }
                });
                Ok(list)
            }
            "sortBy" => {
                let list = a.series(ctx, 0)?;
                let func = agg_func(a, 1, "func", "average")?;
                let reverse = a.opt_bool(2, "reverse")?.unwrap_or(false);
                Ok(sort_by_key(list, func, reverse))
            }
            "sortByMaxima" | "sortByTotal" => {
                let list = a.series(ctx, 0)?;
                let func = if name == "sortByMaxima" { "max" } else { "sum" };
                Ok(sort_by_key(list, func, true))
            }
            "sortByMinima" => {
                let list: Vec<Series> = a
                    .series(ctx, 0)?
                    .into_iter()
                    .filter(|s| {
                        let m = series_value(s, "max");
                        !m.is_nan() && m > 0.0
                    })
                    .collect();
                Ok(sort_by_key(list, "min", false))
            }
            "highest" | "lowest" => {
                let list = a.series(ctx, 0)?;
                let n = match a.get(1, "n") {
                    None => 1,
                    Some(_) => a.int(1, "n")?,
                };
                let func = agg_func(a, 2, "func", "average")?;
                Ok(py_head(sort_by_key(list, func, name == "highest"), n))
            }
            "highestCurrent" | "highestMax" | "highestAverage" | "lowestCurrent"
            | "lowestAverage" => {
                let list = a.series(ctx, 0)?;
                let n = a.int(1, "n")?;
                let func = if name.ends_with("Current") {
                    "current"
                } else if name.ends_with("Max") {
                    "max"
                } else {
                    "average"
                };
                Ok(py_head(
                    sort_by_key(list, func, name.starts_with("highest")),
                    n,
                ))
            }
            "mostDeviant" => {
                let list = a.series(ctx, 0)?;
                let n = a.int(1, "n")?;
                let mut scored: Vec<(f64, Series)> = list
                    .into_iter()
                    .filter_map(|s| {
                        let known: Vec<f64> =
                            s.values.iter().copied().filter(|v| !v.is_nan()).collect();
                        if known.is_empty() {
                            return None;
                        }
                        let n = known.len() as f64;
                        let mean = known.iter().fold(0.0, |a, b| a + b) / n;
                        let squares = known.iter().fold(0.0, |a, v| a + (v - mean) * (v - mean));
                        Some((squares / n, s))
                    })
                    .collect();
                scored.sort_by(|x, y| y.0.partial_cmp(&x.0).unwrap_or(Ordering::Equal));
                Ok(py_head(scored.into_iter().map(|(_, s)| s).collect(), n))
            }
            "useSeriesAbove" => {
                let list = a.series(ctx, 0)?;
                let value = a.num(1, "value")?;
                let re = regex(a, a.string(2, "search")?)?;
                let replace = super::alias::py_replacement(a.string(3, "replace")?);
                let names: Vec<String> = list
                    .iter()
                    .filter(|s| {
                        let m = series_value(s, "max");
                        !m.is_nan() && m > value
                    })
                    .map(|s| re.replace_all(&s.name, replace.as_str()).into_owned())
                    .collect();
                if names.is_empty() {
                    return Ok(vec![]);
                }
                let target = format!("group({})", names.join(","));
                let expr = crate::parse::parse(&target)?;
                Ok(ctx
                    .eval(&expr)?
                    .into_iter()
                    .filter(|s| !s.values.is_empty())
                    .collect())
            }
            _ => Err(QueryError::UnknownFunction(String::new())),
        }
    })())
    .filter(|r| !matches!(r, Err(QueryError::UnknownFunction(n)) if n.is_empty()))
}

#[cfg(test)]
#[expect(
    clippy::cast_possible_wrap,
    reason = "test series hold a handful of values"
)]
mod tests {
    use super::*;

    const N: f64 = f64::NAN;

    fn s(name: &str, values: &[f64]) -> Series {
        Series::new(name, 0, 10 * values.len() as i64, 10, values.to_vec())
    }

    fn names(list: &[Series]) -> Vec<&str> {
        list.iter().map(|s| s.name.as_str()).collect()
    }

    fn list() -> Vec<Series> {
        vec![
            s("a", &[1.0, 5.0, 2.0]),
            s("b", &[N, N, N]),
            s("c", &[3.0, 3.0, N]),
            s("d", &[0.0, 9.0, 1.0]),
        ]
    }

    #[test]
    fn gaps_sort_as_minus_infinity_and_ties_keep_their_order() {
        // Averages: a 8/3, b none, c 3, d 10/3.
        let l = sort_by_key(list(), "average", true);
        assert_eq!(names(&l), ["d", "c", "a", "b"]);
        let l = sort_by_key(list(), "average", false);
        assert_eq!(names(&l), ["b", "a", "c", "d"]);
        // Current (last known): a 2, c 3, d 1; b none.
        let l = sort_by_key(list(), "current", true);
        assert_eq!(names(&l), ["c", "a", "d", "b"]);
        // Equal keys: reverse keeps the original order, as Python's does.
        let l = vec![s("x", &[1.0]), s("y", &[1.0]), s("z", &[2.0])];
        let l = sort_by_key(l, "max", true);
        assert_eq!(names(&l), ["z", "x", "y"]);
    }

    #[test]
    fn filters_compare_like_graphite() {
        // A series without values passes `<=` and `!=` (None compares so).
        assert!(compare("<=", N, 1.0));
        assert!(compare("!=", N, 1.0));
        assert!(!compare(">", N, 1.0));
        assert!(!compare("=", N, 1.0));
        assert!(compare(">=", 2.0, 2.0));
        assert_eq!(series_value(&s("b", &[N, N]), "count"), 0.0);
    }

    #[test]
    fn heads_and_natural_names() {
        assert_eq!(names(&py_head(list(), 2)), ["a", "b"]);
        assert_eq!(names(&py_head(list(), -1)), ["a", "b", "c"]);
        assert_eq!(names(&py_head(list(), 9)).len(), 4);
        assert_eq!(natural_key("web10.x2"), "web0000000010.x0000000002");
        assert!(natural_key("web9") < natural_key("web10"));
    }
}
