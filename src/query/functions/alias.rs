//! Functions that rename: alias, aliasByNode, aliasByMetric, aliasSub.

use regex::Regex;

use super::Args;
use crate::query::eval::{Context, QueryError};
use crate::query::parse::Expr;
use crate::query::series::Series;

pub const NAMES: &[&str] = &["alias", "aliasByMetric", "aliasByNode", "aliasSub"];

/// The metric path inside a name that functions have wrapped
/// (`scale(a.b.c,2)` → `a.b.c`), as graphite-web extracts it.
pub fn simplified(name: &str) -> &str {
    let inner = name.rsplit('(').next().unwrap_or(name);
    let end = inner.find([',', ')']).unwrap_or(inner.len());
    let path = &inner[..end];
    path.split(';').next().unwrap_or(path)
}

/// Python's `re.sub` replacement syntax (`\1`, `\g<1>`, `\g<name>`) in
/// Rust's (`${1}`, `${name}`).
fn py_replacement(r: &str) -> String {
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

pub fn call(
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
                    let p = simplified(&s.name);
                    s.name = p.rsplit('.').next().unwrap_or(p).to_string();
                    s
                })
                .collect()),
            "aliasByNode" => {
                let list = a.series(ctx, 0)?;
                let nodes: Vec<&Expr> = a.call.args.iter().skip(1).collect();
                if nodes.is_empty() {
                    return Err(QueryError::BadArgument(
                        "aliasByNode(): at least one node is needed".into(),
                    ));
                }
                list.into_iter()
                    .map(|mut s| {
                        let path = simplified(&s.name).to_string();
                        let parts: Vec<&str> = path.split('.').collect();
                        let mut picked = Vec::new();
                        for n in &nodes {
                            match n {
                                Expr::Int(i) => {
                                    let idx = if *i < 0 { parts.len() as i64 + i } else { *i };
                                    match parts.get(idx as usize).filter(|_| idx >= 0) {
                                        Some(p) => picked.push(p.to_string()),
                                        None => {
                                            return Err(QueryError::BadArgument(format!(
                                                "aliasByNode(): {path} has no node {i}"
                                            )))
                                        }
                                    }
                                }
                                Expr::Str(tag) => picked
                                    .push(s.tags.get(tag.as_str()).cloned().unwrap_or_default()),
                                other => {
                                    return Err(QueryError::BadArgument(format!(
                                        "aliasByNode(): a node is an integer or a tag name, not {}",
                                        other.to_target()
                                    )))
                                }
                            }
                        }
                        s.name = picked.join(".");
                        Ok(s)
                    })
                    .collect()
            }
            "aliasSub" => {
                let list = a.series(ctx, 0)?;
                let search = a.string(1, "search")?;
                let replace = py_replacement(a.string(2, "replace")?);
                let re = Regex::new(search).map_err(|e| {
                    QueryError::BadArgument(format!("aliasSub(): bad regex {search:?}: {e}"))
                })?;
                Ok(list
                    .into_iter()
                    .map(|mut s| {
                        s.name = re.replace_all(&s.name, replace.as_str()).into_owned();
                        s
                    })
                    .collect())
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

    #[test]
    fn simplified_names() {
        assert_eq!(simplified("scale(a.b.c,2)"), "a.b.c");
        assert_eq!(simplified("sumSeries(a.*.c)"), "a.*.c");
        assert_eq!(simplified("a.b"), "a.b");
        assert_eq!(simplified("disk.used;dc=east"), "disk.used");
    }
}
