//! Functions that rename: alias, aliasByNode, aliasByMetric, aliasSub.

use regex::Regex;

use super::info::{p, FnInfo, Lit, Ty, SERIES_LIST};
use super::{Args, NodeArg};
use crate::eval::{Context, QueryError};
use crate::parse::Expr;
use crate::series::Series;

const ALIAS: &str = "Alias";

pub(super) const INFO: &[FnInfo] = &[
    FnInfo::new(
        "alias",
        ALIAS,
        "Takes one metric or a wildcard seriesList and a string: each series is named that string.",
        &[SERIES_LIST, p("newName", Ty::String).req()],
    ),
    FnInfo::new(
        "aliasByMetric",
        ALIAS,
        "Names each series by the last node of its metric path.",
        &[SERIES_LIST],
    ),
    FnInfo::new(
        "aliasByNode",
        ALIAS,
        "Names each series by the given nodes of its path (0-based, negative from the end) or tag values, joined by dots.",
        &[SERIES_LIST, p("nodes", Ty::NodeOrTag).req().multi()],
    ),
    FnInfo::new(
        "aliasByTags",
        ALIAS,
        "Names each series by the values of the given tags (or path nodes), joined by dots.",
        &[SERIES_LIST, p("tags", Ty::NodeOrTag).req().multi()],
    ),
    FnInfo::new(
        "aliasSub",
        ALIAS,
        "Runs a regular expression search and replace on each series name (\\1 refers to a group).",
        &[
            SERIES_LIST,
            p("search", Ty::String).req(),
            p("replace", Ty::String).req(),
        ],
    ),
    FnInfo::new(
        "substr",
        "Special",
        "Names each series by a slice of the nodes of its metric path, from start to stop (0 = to the end).",
        &[
            SERIES_LIST,
            p("start", Ty::Node).dflt(Lit::Int(0)),
            p("stop", Ty::Node).dflt(Lit::Int(0)),
        ],
    ),
];

/// graphite-web's `_getFirstPathExpression`: the first path inside a name
/// that functions built, following first arguments (`asPercent(a.b,c)` →
/// `a.b`); None when the name does not parse or leads to no path.
pub(super) fn first_path(name: &str) -> Option<String> {
    let mut e = crate::parse::parse(name).ok()?;
    loop {
        match e {
            Expr::Path(p) => return Some(p),
            Expr::Call(c) => e = c.args.into_iter().next()?,
            _ => return None,
        }
    }
}

/// The longest name aliasSub makes. An empty pattern matches between every
/// two characters, so each aliasSub multiplies a name's length by its
/// replacement's: three of 1,000 characters nested made an 8 GB name.
pub(super) const MAX_NAME_BYTES: usize = 1 << 20;

/// `re.replace_all(name, replace)`, refused before it is built when it
/// could be longer than [`MAX_NAME_BYTES`]: each match adds at most the
/// template plus one whole name per group reference in it.
fn replace_bounded(re: &Regex, name: &str, replace: &str) -> Result<String, QueryError> {
    let refs = replace.matches("${").count();
    let per_match = replace
        .len()
        .saturating_add(refs.saturating_mul(name.len()));
    let most = re
        .find_iter(name)
        .count()
        .saturating_mul(per_match)
        .saturating_add(name.len());
    if most > MAX_NAME_BYTES {
        return Err(QueryError::BadArgument(format!(
            "aliasSub(): the new name could be {most} bytes long, more than {MAX_NAME_BYTES}"
        )));
    }
    Ok(re.replace_all(name, replace).into_owned())
}

/// Python's `seq[i]` for a possibly negative `i`.
fn py_index(len: usize, i: i64) -> Option<usize> {
    let j = if i < 0 {
        len.checked_sub(usize::try_from(i.unsigned_abs()).ok()?)?
    } else {
        usize::try_from(i).ok()?
    };
    (j < len).then_some(j)
}

/// graphite-web's `getNodeOrTag`: node `n` of the path (tags split off),
/// else the tag of that name, else "".
pub(super) fn node_or_tag(s: &Series, n: &NodeArg, path: Option<&str>) -> String {
    if let NodeArg::Index(i) = n {
        let base = path.unwrap_or(&s.name).split(';').next().unwrap_or("");
        let parts: Vec<&str> = base.split('.').collect();
        if let Some(j) = py_index(parts.len(), *i) {
            return parts[j].to_string();
        }
    }
    let key = match n {
        NodeArg::Index(i) => i.to_string(),
        NodeArg::Tag(t) => t.clone(),
    };
    s.tags.get(&key).cloned().unwrap_or_default()
}

/// graphite-web's `aggKey`: the chosen nodes or tags of a series joined by
/// dots, read from its first path when its name is a function's.
pub(super) fn agg_key(s: &Series, nodes: &[NodeArg]) -> String {
    let path = if s.name.ends_with(')') {
        first_path(&s.name)
    } else {
        None
    };
    nodes
        .iter()
        .map(|n| node_or_tag(s, n, path.as_deref()))
        .collect::<Vec<_>>()
        .join(".")
}

/// Python's `seq[start:stop]` bounds (stop None = to the end).
fn py_slice(len: usize, start: i64, stop: Option<i64>) -> (usize, usize) {
    let clamp = |i: i64| super::py_bound(len, i);
    let a = clamp(start);
    let b = stop.map_or(len, clamp);
    (a, b.max(a))
}

/// graphite-web's `substr` on one name: the text between the last `(`
/// and the first `)`, nodes `start..stop` of it, cut at the first comma.
pub(super) fn substr_name(name: &str, start: i64, stop: i64) -> String {
    let left = name.rfind('(').map_or(0, |i| i + 1);
    let right = name.find(')').unwrap_or(name.len());
    let clean = if right > left { &name[left..right] } else { "" };
    let parts: Vec<&str> = clean.split('.').collect();
    let (a, b) = py_slice(parts.len(), start, (stop != 0).then_some(stop));
    let joined = parts[a..b].join(".");
    match joined.find(',') {
        Some(c) => joined[..c].to_string(),
        None => joined,
    }
}

/// Python's `re.sub` replacement syntax (`\1`, `\g<1>`, `\g<name>`) in
/// Rust's (`${1}`, `${name}`).
pub(super) fn py_replacement(r: &str) -> String {
    let mut out = String::new();
    let mut chars = r.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.peek() {
                Some(d) if d.is_ascii_digit() => {
                    let mut n = String::new();
                    while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                        n.push(*d);
                        chars.next();
                    }
                    out.push_str(&format!("${{{n}}}"));
                }
                Some('g') => {
                    chars.next();
                    if chars.peek() == Some(&'<') {
                        chars.next();
                        let name: String = chars.by_ref().take_while(|c| *c != '>').collect();
                        out.push_str(&format!("${{{name}}}"));
                    } else {
                        out.push_str("\\g");
                    }
                }
                Some('n') => {
                    chars.next();
                    out.push('\n');
                }
                Some('\\') => {
                    chars.next();
                    out.push('\\');
                }
                _ => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out
}

pub(super) fn call(
    ctx: &mut Context<'_>,
    name: &str,
    a: &Args<'_>,
) -> Option<Result<Vec<Series>, QueryError>> {
    Some((|| -> Result<Vec<Series>, QueryError> {
        match name {
            "alias" => {
                let list = a.series(ctx, 0)?;
                let new = a.string(1, "newName")?;
                Ok(list
                    .into_iter()
                    .map(|mut s| {
                        s.name = new.to_string();
                        s
                    })
                    .collect())
            }
            "aliasByMetric" => Ok(a
                .series(ctx, 0)?
                .into_iter()
                .map(|mut s| {
                    s.name = substr_name(&s.name, -1, 0);
                    s
                })
                .collect()),
            "substr" => {
                let list = a.series(ctx, 0)?;
                let start = match a.get(1, "start") {
                    None | Some(Expr::None) => 0,
                    Some(_) => a.int(1, "start")?,
                };
                let stop = match a.get(2, "stop") {
                    None | Some(Expr::None) => 0,
                    Some(_) => a.int(2, "stop")?,
                };
                Ok(list
                    .into_iter()
                    .map(|mut s| {
                        s.name = substr_name(&s.name, start, stop);
                        s
                    })
                    .collect())
            }
            "aliasByNode" | "aliasByTags" => {
                let list = a.series(ctx, 0)?;
                let nodes = a.nodes_from(1)?;
                if nodes.is_empty() {
                    return Err(a.bad_arg("at least one node or tag is needed"));
                }
                Ok(list
                    .into_iter()
                    .map(|mut s| {
                        s.name = agg_key(&s, &nodes);
                        s
                    })
                    .collect())
            }
            "aliasSub" => {
                let list = a.series(ctx, 0)?;
                let search = a.string(1, "search")?;
                let replace = py_replacement(a.string(2, "replace")?);
                let re = Regex::new(search).map_err(|e| {
                    QueryError::BadArgument(format!("aliasSub(): bad regex {search:?}: {e}"))
                })?;
                list.into_iter()
                    .map(|mut s| {
                        s.name = replace_bounded(&re, &s.name, &replace)?;
                        Ok(s)
                    })
                    .collect()
            }
            _ => Err(QueryError::UnknownFunction(String::new())),
        }
    })())
    .filter(|r| !matches!(r, Err(QueryError::UnknownFunction(n)) if n.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_replacements() {
        assert_eq!(py_replacement(r"\1 A"), "${1} A");
        assert_eq!(py_replacement(r"\g<host>.x"), "${host}.x");
        assert_eq!(py_replacement("a$b"), "a$$b");
        let re = Regex::new("(^.*$)").unwrap();
        assert_eq!(
            re.replace_all("x.y", py_replacement(r"\1 A").as_str()),
            "x.y A"
        );
    }

    fn series(name: &str) -> Series {
        Series::new(name, 0, 30, 10, vec![1.0, 2.0, 3.0])
    }

    #[test]
    fn substr_takes_nodes_between_the_last_paren_and_the_first_close() {
        // graphite-web: name[rfind('(')+1 : find(')')], split on dots.
        assert_eq!(substr_name("a.b.c.d", 1, 3), "b.c");
        assert_eq!(substr_name("a.b.c.d", 2, 0), "c.d");
        assert_eq!(substr_name("a.b.c.d", -1, 0), "d");
        assert_eq!(substr_name("scale(a.b.c,2)", -1, 0), "c");
        // divideSeries(a.b,c.d): "a.b,c.d" → nodes a, "b,c", d → last is d.
        assert_eq!(substr_name("divideSeries(a.b,c.d)", -1, 0), "d");
        assert_eq!(substr_name("divideSeries(a.b,c.d)", 1, 2), "b");
        assert_eq!(substr_name("a.b", 5, 0), "");
    }

    #[test]
    fn agg_key_reads_the_first_path_of_a_function_name() {
        let s = series("sumSeries(servers.web1.cpu.user)");
        assert_eq!(agg_key(&s, &[NodeArg::Index(1)]), "web1");
        let s = series("asPercent(servers.web2.cpu.idle,sumSeries(servers.web2.cpu.*))");
        assert_eq!(
            agg_key(&s, &[NodeArg::Index(1), NodeArg::Index(-1)]),
            "web2.idle"
        );
        // Out of range: graphite-web looks for a tag named "7", finds "".
        assert_eq!(agg_key(&s, &[NodeArg::Index(7)]), "");
        let t = series("disk.used;dc=east;host=web1");
        assert_eq!(
            agg_key(&t, &[NodeArg::Tag("host".into()), NodeArg::Index(0)]),
            "web1.disk"
        );
        assert_eq!(agg_key(&t, &[NodeArg::Tag("rack".into())]), "");
    }
}
