//! Graphite tag expressions (`seriesByTag('name=cpu', 'dc=~us-.*',
//! 'host!=a')`) against the index's tag postings.

use regex::Regex;

use rollupd_store::index::parse_tagged;
use rollupd_store::source::SeriesSource;

use super::eval::QueryError;

enum Op {
    Eq(String),
    Ne(String),
    Match(Regex),
    NotMatch(Regex),
}

struct Term {
    tag: String,
    op: Op,
}

fn parse_term(e: &str) -> Result<Term, QueryError> {
    let bad = || {
        QueryError::BadArgument(format!(
            "seriesByTag(): {e:?} is not tag=value, tag!=value, tag=~regex or tag!=~regex"
        ))
    };
    let (tag, op) = if let Some((t, v)) = e.split_once("!=~") {
        (t, Op::NotMatch(anchored(v)?))
    } else if let Some((t, v)) = e.split_once("=~") {
        (t, Op::Match(anchored(v)?))
    } else if let Some((t, v)) = e.split_once("!=") {
        (t, Op::Ne(v.to_string()))
    } else if let Some((t, v)) = e.split_once('=') {
        (t, Op::Eq(v.to_string()))
    } else {
        return Err(bad());
    };
    if tag.is_empty() {
        return Err(bad());
    }
    Ok(Term {
        tag: tag.trim().to_string(),
        op,
    })
}

/// graphite-web matches tag regexes from the start of the value.
fn anchored(re: &str) -> Result<Regex, QueryError> {
    Regex::new(&format!("^(?:{re})"))
        .map_err(|e| QueryError::BadArgument(format!("seriesByTag(): bad regex {re:?}: {e}")))
}

impl Term {
    fn matches(&self, value: Option<&str>) -> bool {
        let v = value.unwrap_or("");
        match &self.op {
            Op::Eq(x) => v == x,
            Op::Ne(x) => v != x,
            Op::Match(r) => r.is_match(v),
            Op::NotMatch(r) => !r.is_match(v),
        }
    }

    /// Whether a series without the tag can match (graphite: `k!=x` and
    /// `k!=~re` do, and so does `k=` meaning "no such tag").
    fn matches_absent(&self) -> bool {
        self.matches(None)
    }
}

/// Ids of tagged series matching every expression, in name order. At least
/// one expression must select positively (`=` with a value, or `=~`).
pub fn series_by_tag(source: &dyn SeriesSource, exprs: &[&str]) -> Result<Vec<u32>, QueryError> {
    let terms: Vec<Term> = exprs
        .iter()
        .map(|e| parse_term(e))
        .collect::<Result<_, _>>()?;
    let positive = terms
        .iter()
        .position(|t| !t.matches_absent())
        .ok_or_else(|| QueryError::BadArgument("seriesByTag(): at least one tag expression must match a value (tag=value or tag=~regex)".into()))?;
    // Candidates from the positive term's postings.
    let first = &terms[positive];
    let candidates = source.tagged(&first.tag, &mut |v| first.matches(Some(v)));
    let mut out: Vec<(String, u32)> = Vec::new();
    for (id, name) in candidates {
        let Some((_, tags)) = parse_tagged(&name) else {
            continue;
        };
        let ok = terms.iter().all(|t| {
            let v = tags.iter().find(|(k, _)| *k == t.tag).map(|(_, v)| *v);
            t.matches(v)
        });
        if ok {
            out.push((name, id));
        }
    }
    out.sort();
    Ok(out.into_iter().map(|(_, id)| id).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollupd_store::config::StorageConfig;
    use rollupd_store::{Point, Store};

    #[test]
    fn expressions() {
        let store = Store::in_memory(&StorageConfig::default()).unwrap();
        let now = 1_700_000_000;
        for n in [
            "disk.used;dc=east;host=web1",
            "disk.used;dc=west;host=web2",
            "cpu;dc=east;host=web1",
            "disk.used;host=db1",
        ] {
            let p = Point {
                name: n,
                timestamp: now,
                value: 1.0,
            };
            store.write(&[p], &[], now).unwrap();
        }
        let names = |e: &[&str]| -> Vec<String> {
            series_by_tag(&store, e)
                .unwrap()
                .into_iter()
                .map(|i| store.index().name(i).to_string())
                .collect()
        };
        assert_eq!(
            names(&["name=disk.used", "dc=east"]),
            ["disk.used;dc=east;host=web1"]
        );
        assert_eq!(
            names(&["name=disk.used", "dc!=east"]),
            ["disk.used;dc=west;host=web2", "disk.used;host=db1"]
        );
        assert_eq!(names(&["host=~web"]).len(), 3);
        assert_eq!(
            names(&["name=disk.used", "host!=~web"]),
            ["disk.used;host=db1"]
        );
        assert_eq!(names(&["name=disk.used", "dc="]), ["disk.used;host=db1"]);
        assert!(series_by_tag(&store, &["dc!=east"]).is_err());
        assert!(series_by_tag(&store, &["nonsense"]).is_err());
    }
}
