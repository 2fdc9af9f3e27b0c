//! Functions that choose or order series: exclude, grep, limit,
//! sortByName, sortByMaxima, sortByTotal, highest*/lowest*,
//! removeAbovePercentile... (the first of them here).

use regex::Regex;

use super::Args;
use crate::query::eval::{Context, QueryError};
use crate::query::series::Series;

pub const NAMES: &[&str] = &[
    "exclude",
    "grep",
    "highestAverage",
    "highestCurrent",
    "highestMax",
    "limit",
    "lowestAverage",
    "lowestCurrent",
    "sortByMaxima",
    "sortByName",
    "sortByTotal",
];

fn known(s: &Series) -> impl Iterator<Item = f64> + '_ {
    s.values.iter().copied().filter(|v| !v.is_nan())
}

fn key(s: &Series, what: &str) -> Option<f64> {
    let n = known(s).count();
    if n == 0 {
        return None;
    }
    Some(match what {
        "current" => known(s).last().unwrap_or(f64::NAN),
        "max" => known(s).fold(f64::NEG_INFINITY, f64::max),
        "average" => known(s).sum::<f64>() / n as f64,
        _ => known(s).sum::<f64>(),
    })
}

/// Orders by `what`, highest first; series without values last.
fn rank(mut list: Vec<Series>, what: &str, highest: bool) -> Vec<Series> {
    list.sort_by(|a, b| {
        let (ka, kb) = (key(a, what), key(b, what));
        match (ka, kb) {
            (Some(x), Some(y)) => {
                if highest {
                    y.total_cmp(&x)
                } else {
                    x.total_cmp(&y)
                }
            }
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        }
    });
    list
}

pub fn call(
    ctx: &mut Context<'_>,
    name: &str,
    a: &Args<'_>,
) -> Option<Result<Vec<Series>, QueryError>> {
    Some((|| -> Result<Vec<Series>, QueryError> {
        match name {
            "exclude" | "grep" => {
                let list = a.series(ctx, 0)?;
                let pattern = a.string(1, "pattern")?;
                let re = Regex::new(pattern).map_err(|e| {
                    QueryError::BadArgument(format!("{name}(): bad regex {pattern:?}: {e}"))
                })?;
                let keep = name == "grep";
                Ok(list
                    .into_iter()
                    .filter(|s| re.is_match(&s.name) == keep)
                    .collect())
            }
            "limit" => {
                let mut list = a.series(ctx, 0)?;
                let n = a.int(1, "n")?.max(0) as usize;
                list.truncate(n);
                Ok(list)
            }
            "sortByName" => {
                let mut list = a.series(ctx, 0)?;
                list.sort_by(|x, y| x.name.cmp(&y.name));
                Ok(list)
            }
            "sortByMaxima" => Ok(rank(a.series(ctx, 0)?, "max", true)),
            "sortByTotal" => Ok(rank(a.series(ctx, 0)?, "sum", true)),
            "highestCurrent" | "highestMax" | "highestAverage" | "lowestCurrent"
            | "lowestAverage" => {
                let list = a.series(ctx, 0)?;
                let n = match a.opt_num(1, "n")? {
                    Some(n) => n.max(0.0) as usize,
                    None => 1,
                };
                let what = if name.ends_with("Current") {
                    "current"
                } else if name.ends_with("Max") {
                    "max"
                } else {
                    "average"
                };
                let mut ranked = rank(list, what, name.starts_with("highest"));
                ranked.truncate(n);
                Ok(ranked)
            }
            _ => Err(QueryError::UnknownFunction(String::new())),
        }
    })())
    .filter(|r| !matches!(r, Err(QueryError::UnknownFunction(n)) if n.is_empty()))
}
