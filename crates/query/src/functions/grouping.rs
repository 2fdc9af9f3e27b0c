//! Functions that split a list into groups and combine each group:
//! asPercent, groupByNode, groupByNodes, groupByTags,
//! aggregateWithWildcards (and its sum/average/multiply short forms),
//! applyByNode.

use std::collections::{BTreeMap, BTreeSet};

use super::alias::agg_key;
use super::combine::{self, aggregate, normalize, path_expressions, rows_of, safe_div};
use super::info::{p, FnInfo, Lit, Ty, SERIES_LIST};
use super::{Args, NodeArg};
use crate::eval::{Context, QueryError};
use crate::format::py_float_repr;
use crate::parse::Expr;
use crate::series::Series;

const COMBINE: &str = "Combine";
const WILDCARDS: &[super::info::Param] = &[SERIES_LIST, p("position", Ty::Node).multi()];
const AS_PERCENT: &[super::info::Param] = &[
    SERIES_LIST,
    p("total", Ty::Any),
    p("nodes", Ty::NodeOrTag).multi(),
];

pub(super) const INFO: &[FnInfo] = &[
    FnInfo::new(
        "aggregateWithWildcards",
        COMBINE,
        "Groups the series by their names with the given positions left out, and aggregates each group with the function; each result is named by what is left.",
        &[
            SERIES_LIST,
            p("func", Ty::AggFunc).req(),
            p("position", Ty::Node).multi(),
        ],
    ),
    FnInfo::new(
        "applyByNode",
        COMBINE,
        "For each distinct path prefix up to nodeNum, evaluates templateFunction with % replaced by the prefix (and names the result newName with % replaced, if given).",
        &[
            SERIES_LIST,
            p("nodeNum", Ty::Node).req(),
            p("templateFunction", Ty::String).req(),
            p("newName", Ty::String),
        ],
    ),
    FnInfo::new(
        "asPercent",
        COMBINE,
        "Each series as a percentage of a total: a number, one series, one series per input series (matched by name order), or by default the sum of the list. With nodes, series and totals are matched by those nodes.",
        AS_PERCENT,
    ),
    FnInfo::new(
        "averageSeriesWithWildcards",
        COMBINE,
        "averageSeries of the groups formed by leaving out the given positions of each name.",
        WILDCARDS,
    ),
    FnInfo::new(
        "groupByNode",
        COMBINE,
        "Groups the series by one node of their path (or a tag) and combines each group with the callback (an aggregation function or an aggregating function such as sumSeries); each result is named by the node.",
        &[
            SERIES_LIST,
            p("nodeNum", Ty::NodeOrTag).req(),
            p("callback", Ty::AggOrSeriesFunc).dflt(Lit::Str("average")),
        ],
    ),
    FnInfo::new(
        "groupByNodes",
        COMBINE,
        "Groups the series by several nodes (or tags) and combines each group with the callback; each result is named by the nodes joined by dots.",
        &[
            SERIES_LIST,
            p("callback", Ty::AggOrSeriesFunc).req(),
            p("nodes", Ty::NodeOrTag).multi(),
        ],
    ),
    FnInfo::new(
        "groupByTags",
        COMBINE,
        "Groups tagged series by the values of the given tags and combines each group with the callback; each result is named name;tag=value...",
        &[
            SERIES_LIST,
            p("callback", Ty::AggOrSeriesFunc).req(),
            p("tags", Ty::Tag).req().multi(),
        ],
    ),
    FnInfo::new(
        "multiplySeriesWithWildcards",
        COMBINE,
        "multiplySeries of the groups formed by leaving out the given positions of each name.",
        WILDCARDS,
    ),
    FnInfo::new("pct", COMBINE, "Short form of asPercent.", AS_PERCENT),
    FnInfo::new(
        "sumSeriesWithWildcards",
        COMBINE,
        "sumSeries of the groups formed by leaving out the given positions of each name.",
        WILDCARDS,
    ),
];

/// Series grouped by key, keys in order of first appearance.
fn group_by(list: Vec<Series>, key: impl Fn(&Series) -> String) -> Vec<(String, Vec<Series>)> {
    let mut groups: Vec<(String, Vec<Series>)> = Vec::new();
    let mut at: BTreeMap<String, usize> = BTreeMap::new();
    for s in list {
        let k = key(&s);
        match at.get(&k) {
            Some(&i) => groups[i].1.push(s),
            None => {
                at.insert(k.clone(), groups.len());
                groups.push((k, vec![s]));
            }
        }
    }
    groups
}

/// A groupBy callback on one group: an aggregating function by name
/// (`sumSeries`, `avg`...), else an aggregation function (`sum`,
/// `median`...), as graphite-web tries them.
fn apply_callback(callback: &str, list: Vec<Series>) -> Result<Option<Series>, QueryError> {
    let out = match combine::aggregator(callback, list.clone()) {
        Some(r) => r?,
        None => aggregate(list, callback, None)?,
    };
    Ok(out.into_iter().next())
}

fn group_by_nodes(
    list: Vec<Series>,
    callback: &str,
    nodes: &[NodeArg],
) -> Result<Vec<Series>, QueryError> {
    let mut out = Vec::new();
    for (key, group) in group_by(list, |s| agg_key(s, nodes)) {
        if let Some(mut s) = apply_callback(callback, group)? {
            s.name = key;
            out.push(s);
        }
    }
    Ok(out)
}

fn group_by_tags(
    list: Vec<Series>,
    callback: &str,
    tags: &[String],
) -> Result<Vec<Series>, QueryError> {
    let by_name = tags.iter().any(|t| t == "name");
    // Without `name` among the tags: the name all series share, else the
    // callback's.
    let names: BTreeSet<&str> = list
        .iter()
        .map(|s| s.tags.get("name").map_or("", String::as_str))
        .collect();
    let common = if names.len() == 1 {
        names.into_iter().next().unwrap_or_default().to_string()
    } else {
        callback.to_string()
    };
    let key = |s: &Series| {
        let mut parts: Vec<String> = tags
            .iter()
            .filter(|t| !(by_name && *t == "name"))
            .map(|t| format!("{t}={}", s.tags.get(t).map_or("", String::as_str)))
            .collect();
        parts.sort();
        let head = if by_name {
            s.tags.get("name").cloned().unwrap_or_default()
        } else {
            common.clone()
        };
        std::iter::once(head)
            .chain(parts)
            .collect::<Vec<_>>()
            .join(";")
    };
    let mut out = Vec::new();
    for (k, group) in group_by(list, key) {
        if let Some(mut s) = apply_callback(callback, group)? {
            s.tags = tags_of_key(&k);
            s.name = k.clone();
            s.path_expression = k;
            out.push(s);
        }
    }
    Ok(out)
}

/// The tags of a `name;k=v` key as graphite-web's tag database parses it
/// (never the "looks like a function" shortcut).
fn tags_of_key(key: &str) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::new();
    let mut parts = key.split(';');
    let name = parts.next().unwrap_or_default();
    for kv in parts {
        if let Some((k, v)) = kv.split_once('=') {
            tags.insert(k.to_string(), v.to_string());
        }
    }
    tags.insert("name".to_string(), name.trim_start_matches('~').to_string());
    tags
}

#[expect(
    clippy::cast_possible_wrap,
    reason = "`i` indexes a name's nodes, and a string is at most isize::MAX bytes"
)]
fn with_wildcards(
    list: Vec<Series>,
    func: &str,
    positions: &[i64],
) -> Result<Vec<Series>, QueryError> {
    let key = |s: &Series| {
        s.name
            .split('.')
            .enumerate()
            .filter(|(i, _)| !positions.contains(&(*i as i64)))
            .map(|(_, p)| p)
            .collect::<Vec<_>>()
            .join(".")
    };
    let mut out = Vec::new();
    for (k, group) in group_by(list, key) {
        if let Some(mut s) = aggregate(group, func, None)?.into_iter().next() {
            s.name = k;
            out.push(s);
        }
    }
    Ok(out)
}

/// `(v / total) * 100`, gaps and zero totals giving gaps.
fn percent(v: f64, total: f64) -> f64 {
    safe_div(v, total) * 100.0
}

/// Python's `sum` of the known values of a row; a gap when none is.
fn safe_sum(row: &[f64]) -> f64 {
    let mut known = row.iter().copied().filter(|v| !v.is_nan()).peekable();
    if known.peek().is_none() {
        return f64::NAN;
    }
    known.fold(0.0, |a, b| a + b)
}

/// The sum series graphite-web builds as a group's total.
fn sum_total(group: &[Series]) -> Series {
    if group.len() == 1 {
        return group[0].clone();
    }
    let name = format!("sumSeries({})", path_expressions(group));
    let (cols, start, end, step) = normalize(group);
    let values = rows_of(&cols).iter().map(|r| safe_sum(r)).collect();
    Series::new(&name, start, end, step, values)
}

/// One series against its total, both consolidated to a common step.
fn percent_pair(s: &Series, total: &Series) -> Series {
    let name = format!("asPercent({},{})", s.name, total.name);
    let (cols, start, end, step) = normalize(&[s.clone(), total.clone()]);
    let values = rows_of(&cols).iter().map(|r| percent(r[0], r[1])).collect();
    Series::new(&name, start, end, step, values)
}

/// A series of gaps, for a series or total with no partner.
fn missing(name: String, like: &Series) -> Series {
    Series::new(
        &name,
        like.start,
        like.end,
        like.step,
        vec![f64::NAN; like.values.len()],
    )
}

enum Total {
    Sum,
    Number(f64, String),
    List(Vec<Series>),
}

fn as_percent(
    list: Vec<Series>,
    total: Total,
    nodes: &[NodeArg],
) -> Result<Vec<Series>, QueryError> {
    if list.is_empty() {
        return Ok(vec![]);
    }
    if !nodes.is_empty() {
        let groups = group_by(list, |s| agg_key(s, nodes));
        let mut keys: Vec<String> = groups.iter().map(|g| g.0.clone()).collect();
        let totals: BTreeMap<String, Series> = match total {
            Total::Sum => groups
                .iter()
                .map(|(k, g)| (k.clone(), sum_total(g)))
                .collect(),
            Total::List(t) => {
                let tg = group_by(t, |s| agg_key(s, nodes));
                for (k, _) in &tg {
                    if !keys.contains(k) {
                        keys.push(k.clone());
                    }
                }
                tg.into_iter().map(|(k, g)| (k, sum_total(&g))).collect()
            }
            Total::Number(..) => {
                return Err(QueryError::BadArgument(
                    "asPercent(): with nodes, total must be None or a series list".into(),
                ))
            }
        };
        let mut out = Vec::new();
        for key in keys {
            let t = totals.get(&key);
            match groups.iter().find(|g| g.0 == key) {
                None => {
                    if let Some(t) = t {
                        out.push(missing(format!("asPercent(MISSING,{})", t.name), t));
                    }
                }
                Some((_, g)) => {
                    for s in g {
                        out.push(match t {
                            Some(t) => percent_pair(s, t),
                            None => missing(format!("asPercent({},MISSING)", s.name), s),
                        });
                    }
                }
            }
        }
        return Ok(out);
    }
    let (totals, text): (Vec<f64>, String) = match total {
        Total::Sum => {
            let (cols, ..) = normalize(&list);
            let sums = rows_of(&cols).iter().map(|r| safe_sum(r)).collect();
            (sums, format!("sumSeries({})", path_expressions(&list)))
        }
        Total::Number(n, text) => {
            let (cols, ..) = normalize(&list);
            (vec![n; cols[0].len()], text)
        }
        Total::List(t) if t.len() == list.len() => {
            // Matched by name order, each pair on its own.
            let mut a = list;
            let mut b = t;
            a.sort_by(|x, y| x.name.cmp(&y.name));
            b.sort_by(|x, y| x.name.cmp(&y.name));
            return Ok(a.iter().zip(&b).map(|(s, t)| percent_pair(s, t)).collect());
        }
        Total::List(t) if t.len() == 1 => {
            let mut all = list.clone();
            all.push(t[0].clone());
            let (mut cols, ..) = normalize(&all);
            let text = t[0].name.clone();
            (cols.pop().unwrap_or_default(), text)
        }
        Total::List(t) => {
            return Err(QueryError::BadArgument(format!(
                "asPercent(): total must be missing, a number, one series or as many series as the first argument ({}), not {}",
                list.len(),
                t.len()
            )))
        }
    };
    let (cols, _, _, step) = normalize(&list);
    Ok(list
        .iter()
        .zip(&cols)
        .map(|(s, col)| {
            let len = col.len().max(totals.len());
            let values = (0..len)
                .map(|i| {
                    percent(
                        col.get(i).copied().unwrap_or(f64::NAN),
                        totals.get(i).copied().unwrap_or(f64::NAN),
                    )
                })
                .collect();
            let total = if text.is_empty() {
                &s.path_expression
            } else {
                &text
            };
            let name = format!("asPercent({},{total})", s.name);
            Series::new(&name, s.start, s.end, step, values)
        })
        .collect())
}

/// Python's `'.'.join(name.split('.')[:n + 1])`.
fn prefix(name: &str, node: i64) -> String {
    let parts: Vec<&str> = name.split('.').collect();
    // `node` is the user's (up to i64::MAX): `n + 1` must not overflow.
    let stop = node
        .checked_add(1)
        .map_or(parts.len(), |n| super::py_bound(parts.len(), n));
    parts[..stop].join(".")
}

pub(super) fn call(
    ctx: &mut Context<'_>,
    name: &str,
    a: &Args<'_>,
) -> Option<Result<Vec<Series>, QueryError>> {
    Some((|| -> Result<Vec<Series>, QueryError> {
        match name {
            "asPercent" | "pct" => {
                let list = a.series(ctx, 0)?;
                let total = match a.get(1, "total") {
                    None | Some(Expr::None) => Total::Sum,
                    Some(Expr::Int(n)) => Total::Number(*n as f64, n.to_string()),
                    Some(Expr::Num(f)) => Total::Number(*f, py_float_repr(*f)),
                    Some(e) => Total::List(a.eval(ctx, e)?),
                };
                let nodes = a.nodes_from(2)?;
                as_percent(list, total, &nodes).map_err(|e| match e {
                    QueryError::BadArgument(m) if !m.starts_with(name) => a.bad_arg(m),
                    e => e,
                })
            }
            "groupByNode" | "groupByNodes" => {
                let list = a.series(ctx, 0)?;
                let (callback, nodes) = if name == "groupByNode" {
                    let node = a
                        .get(1, "nodeNum")
                        .and_then(super::node_arg)
                        .ok_or_else(|| a.bad_arg("nodeNum must be a node number or a tag name"))?;
                    let cb = a.opt_string(2, "callback")?.unwrap_or("average");
                    (cb, vec![node])
                } else {
                    (a.string(1, "callback")?, a.nodes_from(2)?)
                };
                group_by_nodes(list, callback, &nodes).map_err(|e| a.bad_arg(e))
            }
            "groupByTags" => {
                let list = a.series(ctx, 0)?;
                let callback = a.string(1, "callback")?;
                let tags: Vec<String> = a
                    .call
                    .args
                    .iter()
                    .skip(2)
                    .map(|e| match e {
                        Expr::Str(s) | Expr::Path(s) => Ok(s.clone()),
                        other => {
                            Err(a.bad_arg(format!("a tag is a name, not {}", other.to_target())))
                        }
                    })
                    .collect::<Result<_, _>>()?;
                if tags.is_empty() {
                    return Err(a.bad_arg("no tags specified"));
                }
                group_by_tags(list, callback, &tags).map_err(|e| a.bad_arg(e))
            }
            "aggregateWithWildcards"
            | "sumSeriesWithWildcards"
            | "averageSeriesWithWildcards"
            | "multiplySeriesWithWildcards" => {
                let list = a.series(ctx, 0)?;
                let (func, first) = match name {
                    "aggregateWithWildcards" => (a.string(1, "func")?, 2),
                    "sumSeriesWithWildcards" => ("sum", 1),
                    "averageSeriesWithWildcards" => ("average", 1),
                    _ => ("multiply", 1),
                };
                let positions: Vec<i64> = a
                    .nodes_from(first)?
                    .into_iter()
                    .filter_map(|n| match n {
                        NodeArg::Index(i) => Some(i),
                        NodeArg::Tag(_) => None,
                    })
                    .collect();
                with_wildcards(list, func, &positions).map_err(|e| a.bad_arg(e))
            }
            "applyByNode" => {
                let list = a.series(ctx, 0)?;
                let node = a.int(1, "nodeNum")?;
                let template = a.string(2, "templateFunction")?;
                let new_name = a.opt_string(3, "newName")?;
                let Some(last) = list.last() else {
                    return Ok(vec![]);
                };
                let (start, end) = (last.start, last.end);
                let prefixes: BTreeSet<String> =
                    list.iter().map(|s| prefix(&s.name, node)).collect();
                let mut out = Vec::new();
                for pre in prefixes {
                    let target = template.replace('%', &pre);
                    let expr = crate::parse::parse(&target)?;
                    for mut s in a.eval(ctx, &expr)? {
                        if let Some(n) = new_name {
                            s.name = n.replace('%', &pre);
                        }
                        s.path_expression = pre.clone();
                        s.start = start;
                        s.end = end;
                        out.push(s);
                    }
                }
                Ok(out)
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
        let mut x = Series::new(
            name,
            100,
            100 + 10 * values.len() as i64,
            10,
            values.to_vec(),
        );
        x.path_expression = "h.*.*".into();
        x
    }

    fn same(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| (x.is_nan() && y.is_nan()) || (x - y).abs() < 1e-9)
    }

    fn hosts() -> Vec<Series> {
        vec![
            s("h.a.user", &[1.0, 2.0, N]),
            s("h.a.sys", &[3.0, 0.0, N]),
            s("h.b.user", &[5.0, N, 4.0]),
        ]
    }

    #[test]
    fn as_percent_of_the_sum_of_the_list() {
        let out = as_percent(hosts(), Total::Sum, &[]).unwrap();
        // Totals per point: 9, 2, 4.
        assert_eq!(out[0].name, "asPercent(h.a.user,sumSeries(h.*.*))");
        assert_eq!(out[0].tags.len(), 1);
        assert!(same(&out[0].values, &[100.0 / 9.0, 100.0, N]));
        assert!(same(&out[1].values, &[300.0 / 9.0, 0.0, N]));
        assert!(same(&out[2].values, &[500.0 / 9.0, N, 100.0]));
    }

    #[test]
    fn as_percent_of_a_number_and_of_series() {
        let out = as_percent(hosts(), Total::Number(4.0, "4".into()), &[]).unwrap();
        assert_eq!(out[2].name, "asPercent(h.b.user,4)");
        assert!(same(&out[2].values, &[125.0, N, 100.0]));
        let zero = as_percent(hosts(), Total::Number(0.0, "0".into()), &[]).unwrap();
        assert!(same(&zero[0].values, &[N, N, N]));
        // One total series for all.
        let t = s("t", &[10.0, 4.0, 0.0]);
        let out = as_percent(hosts(), Total::List(vec![t.clone()]), &[]).unwrap();
        assert_eq!(out[1].name, "asPercent(h.a.sys,t)");
        assert!(same(&out[1].values, &[30.0, 0.0, N]));
        // As many totals as series: matched in name order.
        let totals = vec![s("t3", &[10.0; 3]), s("t1", &[1.0; 3]), s("t2", &[2.0; 3])];
        let out = as_percent(hosts(), Total::List(totals), &[]).unwrap();
        let names: Vec<&str> = out.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "asPercent(h.a.sys,t1)",
                "asPercent(h.a.user,t2)",
                "asPercent(h.b.user,t3)"
            ]
        );
        assert!(same(&out[1].values, &[50.0, 100.0, N]));
        assert!(as_percent(hosts(), Total::List(vec![t.clone(), t]), &[]).is_err());
    }

    #[test]
    fn as_percent_by_node_matches_groups() {
        let node1 = [NodeArg::Index(1)];
        let out = as_percent(hosts(), Total::Sum, &node1).unwrap();
        // Group a: total a.user + a.sys = 4, 2, gap; group b is its own total.
        assert_eq!(out[0].name, "asPercent(h.a.user,sumSeries(h.*.*))");
        assert!(same(&out[0].values, &[25.0, 100.0, N]));
        assert_eq!(out[2].name, "asPercent(h.b.user,h.b.user)");
        assert!(same(&out[2].values, &[100.0, N, 100.0]));
        // Totals by node: c has no series, b has no total.
        let totals = vec![s("t.a.x", &[8.0; 3]), s("t.c.x", &[1.0; 3])];
        let out = as_percent(hosts(), Total::List(totals), &node1).unwrap();
        let names: Vec<&str> = out.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "asPercent(h.a.user,t.a.x)",
                "asPercent(h.a.sys,t.a.x)",
                "asPercent(h.b.user,MISSING)",
                "asPercent(MISSING,t.c.x)"
            ]
        );
        assert!(same(&out[1].values, &[37.5, 0.0, N]));
        assert!(same(&out[2].values, &[N, N, N]));
        assert!(as_percent(hosts(), Total::Number(1.0, "1".into()), &node1).is_err());
    }

    #[test]
    fn group_by_node_names_by_the_node_and_keeps_aggregate_tags() {
        let out = group_by_nodes(hosts(), "sumSeries", &[NodeArg::Index(2)]).unwrap();
        assert_eq!(out[0].name, "user");
        assert!(same(&out[0].values, &[6.0, 2.0, 4.0]));
        assert_eq!(out[0].tags["aggregatedBy"], "sum");
        assert_eq!(out[0].tags["name"], "sumSeries(h.*.*)");
        assert_eq!(out[0].path_expression, "sumSeries(h.*.*)");
        assert_eq!(out[1].name, "sys");
        // A group of one keeps its series' name tag.
        assert_eq!(out[1].tags["name"], "h.a.sys");
        let out = group_by_nodes(hosts(), "median", &[NodeArg::Index(1)]).unwrap();
        assert_eq!(out[0].name, "a");
        assert!(same(&out[0].values, &[2.0, 1.0, N]));
        assert_eq!(out[0].tags["aggregatedBy"], "median");
        let out = group_by_nodes(hosts(), "avg", &[NodeArg::Index(1)]).unwrap();
        assert_eq!(out[0].tags["aggregatedBy"], "average");
        assert!(group_by_nodes(hosts(), "nope", &[NodeArg::Index(1)]).is_err());
    }

    #[test]
    fn group_by_tags_keys_on_the_tag_values() {
        let list = vec![
            s("disk.used;dc=east;host=a", &[1.0, 2.0]),
            s("disk.used;dc=west;host=b", &[10.0, 20.0]),
            s("disk.used;dc=east;host=c", &[3.0, N]),
        ];
        let out = group_by_tags(list.clone(), "sum", &["dc".into()]).unwrap();
        assert_eq!(out[0].name, "disk.used;dc=east");
        assert_eq!(out[0].path_expression, "disk.used;dc=east");
        assert!(same(&out[0].values, &[4.0, 2.0]));
        let t: Vec<(&str, &str)> = out[0]
            .tags
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(t, [("dc", "east"), ("name", "disk.used")]);
        assert_eq!(out[1].name, "disk.used;dc=west");
        let mut other = list;
        other.push(s("cpu.load;dc=east", &[5.0, 5.0]));
        let out = group_by_tags(other.clone(), "max", &["dc".into()]).unwrap();
        assert_eq!(out[0].name, "max;dc=east");
        let out = group_by_tags(other, "sum", &["name".into(), "dc".into()]).unwrap();
        let names: Vec<&str> = out.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(
            names,
            ["disk.used;dc=east", "disk.used;dc=west", "cpu.load;dc=east"]
        );
    }

    #[test]
    fn wildcards_and_prefixes() {
        let out = with_wildcards(hosts(), "sum", &[1]).unwrap();
        assert_eq!(out[0].name, "h.user");
        assert!(same(&out[0].values, &[6.0, 2.0, 4.0]));
        assert_eq!(out[1].name, "h.sys");
        assert_eq!(prefix("a.b.c", 1), "a.b");
        assert_eq!(prefix("a.b.c", 5), "a.b.c");
        assert_eq!(prefix("a.b.c", -2), "a.b");
    }
}
