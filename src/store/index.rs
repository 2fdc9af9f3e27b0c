//! The series index: names ↔ ids, the metric tree that answers Graphite
//! globs, and the tag postings that answer `seriesByTag`.
//!
//! Everything is in memory (loaded from the `Series` space at start-up);
//! the store persists each new entry in the same atomic batch as the first
//! points that name it. Globs are matched one path level at a time: a
//! literal level is one hash lookup, a wildcard level tests only the
//! children of the nodes matched so far, so `a.*.c` never looks at series
//! outside `a.`.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::glob::LevelMatcher;
use super::schema::Method;

/// Names are hashed on every point written; foldhash is several times
/// faster than SipHash on them, and the index is not keyed by anything an
/// attacker can collide cheaply at scale (names come from our own clients).
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// What a percentile-like series derives from its timer's histogram.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stat {
    Quantile(f64),
    Mean,
    Std,
}

/// One point series.
#[derive(Debug, Clone)]
pub struct SeriesInfo {
    pub name: Arc<str>,
    pub schema: u16,
    pub method: Method,
    pub xff: f32,
    /// For a timer stat (`upper_90`, `median`, `mean`, `std`) whose timer
    /// has a histogram series: rollups come from the merged histogram.
    pub link: Option<(u32, Stat)>,
    /// An id no series holds (see [`Index::add_hole`]): no name reaches
    /// it and nothing is written under it.
    pub hole: bool,
}

/// One histogram series (named like the timer's branch, e.g.
/// `stats.timers.api.latency`).
#[derive(Debug, Clone)]
pub struct HistInfo {
    pub name: Arc<str>,
    pub schema: u16,
    /// As [`SeriesInfo::hole`].
    pub hole: bool,
}

#[derive(Debug, Default)]
struct Node {
    children: HashMap<Box<str>, u32>,
    series: Option<u32>,
}

/// One answer to a glob: a path and what is there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub path: String,
    /// A series is stored under exactly this name.
    pub leaf: Option<u32>,
    /// Names continue below this path.
    pub branch: bool,
}

/// A pattern as an error repeats it: at most 200 characters of it (a
/// pattern may be megabytes long; the reply naming it should not be).
pub fn shown(pattern: &str) -> String {
    match pattern.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &pattern[..i]),
        None => pattern.to_string(),
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{}glob {pattern:?}: {why}", if *.too_wide { "" } else { "bad " })]
pub struct GlobError {
    /// The pattern, [`shown`].
    pub pattern: String,
    pub why: String,
    /// Not a bad pattern: a level above the last matches more nodes than
    /// the caller's limit (a cap, answered as one).
    pub too_wide: bool,
}

#[derive(Debug)]
pub struct Index {
    by_name: HashMap<Arc<str>, u32>,
    pub series: Vec<SeriesInfo>,
    hist_by_name: HashMap<Arc<str>, u32>,
    pub hists: Vec<HistInfo>,
    nodes: Vec<Node>,
    /// tag → value → series ids (ascending), for tagged names.
    tags: BTreeMap<String, BTreeMap<String, Vec<u32>>>,
}

impl Default for Index {
    fn default() -> Self {
        Index {
            by_name: HashMap::default(),
            series: Vec::new(),
            hist_by_name: HashMap::default(),
            hists: Vec::new(),
            nodes: vec![Node::default()],
            tags: BTreeMap::new(),
        }
    }
}

/// Splits `name;k=v;k2=v2` into its path and tags (with `name` as a tag,
/// as Graphite does).
pub fn parse_tagged(name: &str) -> Option<(&str, Vec<(&str, &str)>)> {
    let (path, rest) = name.split_once(';')?;
    let mut tags = vec![("name", path)];
    for kv in rest.split(';') {
        let (k, v) = kv.split_once('=')?;
        tags.push((k, v));
    }
    Some((path, tags))
}

/// The timer stat a series name ends in, with the timer's branch name.
fn timer_stat(name: &str) -> Option<(&str, Stat)> {
    let (base, last) = name.rsplit_once('.')?;
    let stat = match last {
        "median" => Stat::Quantile(0.5),
        "mean" => Stat::Mean,
        "std" => Stat::Std,
        _ => {
            let pct = last.strip_prefix("upper_")?;
            // `upper_99_9` is the 99.9th percentile.
            let pct: f64 = pct.replacen('_', ".", 1).parse().ok()?;
            if !(pct > 0.0 && pct <= 100.0) {
                return None;
            }
            Stat::Quantile(pct / 100.0)
        }
    };
    Some((base, stat))
}

/// A child's path: its name under the root, else `parent.name`.
fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_string()
    } else {
        format!("{parent}.{child}")
    }
}

impl Index {
    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    pub fn id(&self, name: &str) -> Option<u32> {
        self.by_name.get(name).copied()
    }

    pub fn hist_id(&self, name: &str) -> Option<u32> {
        self.hist_by_name.get(name).copied()
    }

    /// Adds a point series under the next id (or the id it was stored
    /// with, when loading) and returns it.
    pub fn add_series(&mut self, name: &str, schema: u16, method: Method, xff: f32) -> u32 {
        let id = self.series.len() as u32;
        let name: Arc<str> = Arc::from(name);
        // Linked only when both share a schema, so the histogram's archives
        // are the stat's archives.
        let link = timer_stat(&name).and_then(|(base, stat)| {
            self.hist_by_name
                .get(base)
                .filter(|&&h| self.hists[h as usize].schema == schema)
                .map(|&h| (h, stat))
        });
        self.series.push(SeriesInfo {
            name: name.clone(),
            schema,
            method,
            xff,
            link,
            hole: false,
        });
        self.by_name.insert(name.clone(), id);
        if let Some((_, tags)) = parse_tagged(&name) {
            for (k, v) in tags {
                self.tags
                    .entry(k.to_string())
                    .or_default()
                    .entry(v.to_string())
                    .or_default()
                    .push(id);
            }
        } else {
            let mut node = 0usize;
            for part in name.split('.') {
                node = match self.nodes[node].children.get(part) {
                    Some(&n) => n as usize,
                    None => {
                        let n = self.nodes.len();
                        self.nodes.push(Node::default());
                        self.nodes[node].children.insert(part.into(), n as u32);
                        n
                    }
                };
            }
            self.nodes[node].series = Some(id);
        }
        id
    }

    /// Takes the next point (or histogram, with `hist`) id without a
    /// series: for an id whose record was lost, or one that log entries
    /// name but no record does, so that no new series is ever given an id
    /// that old entries still use. A hole is in neither the tree nor the
    /// name map, so no find, glob or write reaches it.
    pub fn add_hole(&mut self, hist: bool) -> u32 {
        let name: Arc<str> = Arc::from("");
        if hist {
            self.hists.push(HistInfo {
                name,
                schema: 0,
                hole: true,
            });
            self.hists.len() as u32 - 1
        } else {
            self.series.push(SeriesInfo {
                name,
                schema: 0,
                method: Method::Average,
                xff: 0.0,
                link: None,
                hole: true,
            });
            self.series.len() as u32 - 1
        }
    }

    /// Adds a histogram series and links the timer stats already indexed
    /// under it.
    pub fn add_hist(&mut self, name: &str, schema: u16) -> u32 {
        let id = self.hists.len() as u32;
        let name: Arc<str> = Arc::from(name);
        self.hists.push(HistInfo {
            name: name.clone(),
            schema,
            hole: false,
        });
        self.hist_by_name.insert(name.clone(), id);
        // Stats indexed before their histogram (an upgrade, or a restart
        // that loads series first) are children of the timer's node.
        if let Some(node) = self.find_node(&name) {
            let kids: Vec<u32> = self.nodes[node]
                .children
                .values()
                .filter_map(|&c| self.nodes[c as usize].series)
                .collect();
            for sid in kids {
                let s = &mut self.series[sid as usize];
                if let Some((base, stat)) = timer_stat(&s.name) {
                    if base == &*name && s.schema == schema {
                        s.link = Some((id, stat));
                    }
                }
            }
        }
        id
    }

    /// The timer stats whose rollups come from histogram series `hist`
    /// (they are children of the timer's node).
    pub fn linked_to_hist(&self, hist: u32) -> Vec<u32> {
        let Some(node) = self
            .hists
            .get(hist as usize)
            .and_then(|h| self.find_node(&h.name))
        else {
            return Vec::new();
        };
        self.nodes[node]
            .children
            .values()
            .filter_map(|&c| self.nodes[c as usize].series)
            .filter(|&sid| {
                self.series[sid as usize]
                    .link
                    .is_some_and(|(h, _)| h == hist)
            })
            .collect()
    }

    /// The tree node of a dotted path.
    fn find_node(&self, path: &str) -> Option<usize> {
        let mut node = 0usize;
        for part in path.split('.') {
            node = *self.nodes[node].children.get(part)? as usize;
        }
        Some(node)
    }

    /// Graphite's find: every path matching `pattern` level by level, in
    /// name order, with whether a series lives there and whether names go
    /// deeper. Each level is matched as graphite-web's standard finder
    /// matches a path component (`store::glob`), `**` included.
    pub fn find(&self, pattern: &str, limit: usize) -> Result<Vec<Found>, GlobError> {
        let levels: Vec<&str> = pattern.split('.').collect();
        // The root has the empty path; everything else its dotted name.
        let mut frontier: Vec<(String, usize)> = vec![(String::new(), 0)];
        for (depth, level) in levels.iter().enumerate() {
            let m = LevelMatcher::new(pattern, level)?;
            let last = depth + 1 == levels.len();
            let mut next = Vec::new();
            for (path, node) in &frontier {
                self.matching_children(path, *node, &m, &mut next);
                if next.len() > limit {
                    break;
                }
            }
            if m.globstar && next.len() <= limit {
                // graphite-web walks every directory below (and at) the
                // nodes so far; the levels after `**` are matched in each,
                // and a last `**` takes everything in them (a `*` after).
                let mut below = Vec::new();
                for (path, node) in &frontier {
                    self.walk(path, *node, &mut below, limit);
                }
                if last {
                    for (path, node) in &below {
                        for (k, &c) in &self.nodes[*node].children {
                            next.push((join(path, k), c as usize));
                        }
                        if next.len() > limit {
                            break;
                        }
                    }
                } else {
                    next.extend(below);
                }
                // A node reached twice is one path.
                let mut seen = std::collections::HashSet::new();
                next.retain(|(_, n)| seen.insert(*n));
            }
            // Past the limit above the last level, the levels below could
            // only be walked from a cut list: the answer would be partial
            // and look whole. (At the last level the caller sees limit + 1
            // and names its own cap.)
            if !last && next.len() > limit {
                return Err(GlobError {
                    pattern: shown(pattern),
                    why: format!(
                        "level {} ({level:?}) matches more than {limit} nodes; narrow it",
                        depth + 1
                    ),
                    too_wide: true,
                });
            }
            frontier = next;
            if frontier.is_empty() {
                break;
            }
        }
        frontier.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        frontier.truncate(limit);
        Ok(frontier
            .into_iter()
            .map(|(path, n)| Found {
                path,
                leaf: self.nodes[n].series,
                branch: !self.nodes[n].children.is_empty(),
            })
            .collect())
    }

    /// Children of `node` (at `path`) that match level `m`, in name order.
    fn matching_children(
        &self,
        path: &str,
        node: usize,
        m: &LevelMatcher,
        out: &mut Vec<(String, usize)>,
    ) {
        let children = &self.nodes[node].children;
        // Exact names: one lookup each, unless braces made more of them
        // than there are children to scan.
        if m.is_literal() && m.literals.len() <= children.len() {
            for l in &m.literals {
                if let Some(&c) = children.get(l.as_str()) {
                    out.push((join(path, l), c as usize));
                }
            }
            return;
        }
        let mut kids: Vec<(&str, u32)> = children
            .iter()
            .filter(|(k, _)| m.is_match(k))
            .map(|(k, &c)| (&**k, c))
            .collect();
        kids.sort_unstable_by(|a, b| a.0.cmp(b.0));
        out.extend(kids.into_iter().map(|(k, c)| (join(path, k), c as usize)));
    }

    /// `node` and every node below it that has children (the directories
    /// graphite-web's `os.walk` visits), stopping past `limit`.
    fn walk(&self, path: &str, node: usize, out: &mut Vec<(String, usize)>, limit: usize) {
        let mut stack = vec![(path.to_string(), node)];
        while let Some((p, n)) = stack.pop() {
            if out.len() > limit {
                return;
            }
            for (k, &c) in &self.nodes[n].children {
                if !self.nodes[c as usize].children.is_empty() {
                    stack.push((join(&p, k), c as usize));
                }
            }
            out.push((p, n));
        }
    }

    /// The series a glob names (leaves only), in name order. Tagged names
    /// match only themselves exactly.
    pub fn expand(&self, pattern: &str, limit: usize) -> Result<Vec<u32>, GlobError> {
        if pattern.contains(';') {
            return Ok(self.id(pattern).into_iter().collect());
        }
        Ok(self
            .find(pattern, limit)?
            .into_iter()
            .filter_map(|f| f.leaf)
            .collect())
    }

    /// Tag names in use, ascending.
    pub fn tag_names(&self) -> impl Iterator<Item = &str> {
        self.tags.keys().map(String::as_str)
    }

    /// Values of one tag with their series, ascending.
    pub fn tag_values(&self, tag: &str) -> impl Iterator<Item = (&str, &[u32])> {
        self.tags
            .get(tag)
            .into_iter()
            .flat_map(|m| m.iter().map(|(v, ids)| (v.as_str(), ids.as_slice())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(names: &[&str]) -> Index {
        let mut ix = Index::default();
        for n in names {
            ix.add_series(n, 0, Method::Average, 0.5);
        }
        ix
    }

    fn paths(ix: &Index, p: &str) -> Vec<String> {
        ix.find(p, usize::MAX)
            .unwrap()
            .into_iter()
            .map(|f| f.path)
            .collect()
    }

    /// A level above the last that matches more nodes than the limit used to
    /// be cut there and walked on from the cut list, so the answer could
    /// be a silently partial list under the limit (`hosts.*.cpu` found
    /// `cpu` only under the first hosts). Now it is an error naming the
    /// level; at the last level the caller still gets limit + 1 and
    /// reports its own cap.
    #[test]
    fn an_inner_level_past_the_limit_is_an_error_not_a_partial_answer() {
        let names: Vec<String> = (0..10).map(|i| format!("hosts.h{i}.cpu")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let ix = index(&names);
        let e = ix.find("hosts.*.cpu", 3).unwrap_err();
        assert!(
            e.why.contains("level 2") && e.why.contains("more than 3"),
            "{e}"
        );
        assert!(ix.expand("hosts.*.cpu", 3).is_err());
        assert_eq!(ix.find("hosts.*.cpu", 10).unwrap().len(), 10);
        assert_eq!(ix.find("hosts.*", 3).unwrap().len(), 3);
        assert_eq!(ix.find("hosts.h1.cpu", 1).unwrap().len(), 1);
    }

    #[test]
    fn graphite_globs() {
        let ix = index(&[
            "a.b.c", "a.c.c", "a.d.e", "a.b1.c", "a.b2.c", "a.bx.c", "b.b.c", "a.b",
        ]);
        assert_eq!(
            paths(&ix, "a.*.c"),
            ["a.b.c", "a.b1.c", "a.b2.c", "a.bx.c", "a.c.c"]
        );
        assert_eq!(paths(&ix, "a.{b,c}.c"), ["a.b.c", "a.c.c"]);
        assert_eq!(paths(&ix, "a.b[0-9].c"), ["a.b1.c", "a.b2.c"]);
        assert_eq!(paths(&ix, "a.b?.c"), ["a.b1.c", "a.b2.c", "a.bx.c"]);
        assert_eq!(paths(&ix, "a.b[!0-9].c"), ["a.bx.c"]);
        assert_eq!(paths(&ix, "*.b.c"), ["a.b.c", "b.b.c"]);
        assert_eq!(paths(&ix, "a.b.c.d"), Vec::<String>::new());
        assert_eq!(paths(&ix, "nope.*"), Vec::<String>::new());
        let f = ix.find("a.b", 10).unwrap();
        assert_eq!(f.len(), 1);
        assert!(f[0].leaf.is_some() && f[0].branch, "{f:?}");
        let f = ix.find("a.*", 10).unwrap();
        assert!(f.iter().all(|x| x.branch));
        assert_eq!(ix.expand("a.*.c", 100).unwrap().len(), 5);
        assert_eq!(ix.expand("a.*", 100).unwrap(), vec![ix.id("a.b").unwrap()]);
        // graphite-web's fnmatch reads an unclosed `[` as itself.
        assert_eq!(paths(&ix, "a.["), Vec::<String>::new());
        assert!(ix.find(&"{a,b}".repeat(20), 10).is_err());
    }

    /// Ranges inside braces, braces inside braces, `**`: what graphite-web
    /// 1.1.10's standard finder answers over the same tree (checked
    /// against it with render_oracle.py, tests/data/render_oracle_find.json).
    #[test]
    fn ranges_and_braces_together_as_graphite_web() {
        let ix = index(&[
            "s.web1.cpu",
            "s.web2.cpu",
            "s.web3.cpu",
            "s.db1.cpu",
            "s.web1a.cpu",
            "s.web2b.cpu",
            "s.db.cpu",
            "s.[x.cpu",
            "s.web1.net.rx",
            "s.web^.cpu",
        ]);
        assert_eq!(
            paths(&ix, "s.web[1-3]{a,b}.cpu"),
            ["s.web1a.cpu", "s.web2b.cpu"]
        );
        assert_eq!(
            paths(&ix, "s.{web[12],db}.cpu"),
            ["s.db.cpu", "s.web1.cpu", "s.web2.cpu"]
        );
        assert_eq!(
            paths(&ix, "s.{web{1,3},db*}.cpu"),
            ["s.db.cpu", "s.db1.cpu", "s.web1.cpu", "s.web3.cpu"]
        );
        assert_eq!(
            paths(&ix, "s.[!w]*.cpu"),
            ["s.[x.cpu", "s.db.cpu", "s.db1.cpu"]
        );
        assert_eq!(paths(&ix, "s.web[^1].cpu"), ["s.web1.cpu", "s.web^.cpu"]);
        assert_eq!(paths(&ix, "s.web[3-1].cpu"), Vec::<String>::new());
        assert_eq!(paths(&ix, "s.[x.cpu"), ["s.[x.cpu"]);
        assert_eq!(paths(&ix, "s.web{}1.cpu"), ["s.web1.cpu"]);
        assert_eq!(paths(&ix, "s.web1{,a}.cpu"), ["s.web1.cpu", "s.web1a.cpu"]);
        assert_eq!(paths(&ix, "s.**.rx"), ["s.web1.net.rx"]);
        assert_eq!(
            paths(&ix, "s.web1.**"),
            ["s.web1.cpu", "s.web1.net", "s.web1.net.rx"]
        );
        assert_eq!(paths(&ix, "s.{**,x}.rx"), ["s.web1.net.rx"]);
        // More brace alternatives than children: the children are scanned.
        assert_eq!(
            paths(&ix, "s.{w,d}{e,b}{b,x}{1,2,3}{,a}.cpu"),
            ["s.web1.cpu", "s.web1a.cpu", "s.web2.cpu", "s.web3.cpu"]
        );
    }

    #[test]
    fn limits_stop_a_wide_glob() {
        let names: Vec<String> = (0..1000).map(|i| format!("h.{i}.x")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let ix = index(&refs);
        assert!(ix.expand("h.*.x", 10).unwrap_err().too_wide);
        assert_eq!(ix.find("h.*", 10).unwrap().len(), 10);
        assert_eq!(ix.expand("h.*.x", 5000).unwrap().len(), 1000);
    }

    #[test]
    fn tagged_names_are_posted_by_tag() {
        let ix = index(&["cpu;host=a;dc=x", "cpu;host=b;dc=x", "mem;host=a"]);
        let names: Vec<&str> = ix.tag_names().collect();
        assert_eq!(names, ["dc", "host", "name"]);
        let hosts: Vec<(&str, usize)> = ix
            .tag_values("host")
            .map(|(v, ids)| (v, ids.len()))
            .collect();
        assert_eq!(hosts, [("a", 2), ("b", 1)]);
        assert_eq!(ix.expand("cpu;host=a;dc=x", 10).unwrap(), vec![0]);
        assert!(
            paths(&ix, "*").is_empty(),
            "tagged series stay out of the tree"
        );
    }

    #[test]
    fn timer_stats_link_to_their_histogram_in_either_order() {
        let mut ix = Index::default();
        let h = ix.add_hist("stats.timers.api", 0);
        let p90 = ix.add_series("stats.timers.api.upper_90", 0, Method::Max, 0.1);
        let p999 = ix.add_series("stats.timers.api.upper_99_9", 0, Method::Max, 0.1);
        let upper = ix.add_series("stats.timers.api.upper", 0, Method::Max, 0.1);
        assert_eq!(ix.series[p90 as usize].link, Some((h, Stat::Quantile(0.9))));
        let (_, Stat::Quantile(q)) = ix.series[p999 as usize].link.unwrap() else {
            panic!("99.9 is a quantile");
        };
        assert!((q - 0.999).abs() < 1e-12);
        assert_eq!(ix.series[upper as usize].link, None);
        let med = ix.add_series("stats.timers.web.median", 0, Method::Average, 0.3);
        let h2 = ix.add_hist("stats.timers.web", 0);
        assert_eq!(
            ix.series[med as usize].link,
            Some((h2, Stat::Quantile(0.5)))
        );
    }
}
