//! The ClickHouse engine's reads: [`SeriesSource`] over the tables the
//! writer fills, so render, find and alerts answer from ClickHouse as they
//! do from the embedded store (`[storage] engine = "clickhouse"`).
//!
//! - Globs: the index's tree rows of the pattern's depth under its literal
//!   prefix are fetched (at most `MAX_CANDIDATES`), and each level is
//!   matched here with the embedded index's own matcher (`store::glob`),
//!   so both engines match the same names; `**` is refused.
//! - A window: the series' retention and method come from the `[storage]`
//!   rules (as they did when it was written), the window is the embedded
//!   store's (`Retention::read_window`: whisper's archive choice and
//!   slots), and the points are consolidated here: the newest version of
//!   each finest slot (whisper keeps the last write of a slot), then the
//!   method over each slot of the chosen archive. Rows the server has
//!   already rolled up read the same way. ClickHouse has no xFilesFactor:
//!   a coarse slot is made from whatever finer points it has.
//! - Timer histograms: `rollupd_hists`, merged per slot of the window.
//! - Series are named to the query layer by handles given out here, at
//!   most `max_series` of them for the daemon's life.
//! - Tagged series: `graphite_tagged`, a row per (tag, series); the tag
//!   listings are bounded by their visitors as the embedded ones are.
//! - Events stay in the embedded store's engine.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::client::{ClickHouseError, Client};
use super::schema;
use rollupd_store::config::{ClickHouseConfig, StorageConfig};
use rollupd_store::glob::LevelMatcher;
use rollupd_store::hist::Hist;
use rollupd_store::index::{shown, Found, GlobError, StatCode};
use rollupd_store::kv::Kv;
use rollupd_store::rollup::stat_of;
use rollupd_store::schema::{Method, ReadWindow, Retention, Rules, SchemaError};
use rollupd_store::source::SeriesSource;
use rollupd_store::{Fetched, HistWindow, StoreError};

/// Index rows fetched for one glob at most: past it the glob is too wide.
const MAX_CANDIDATES: usize = 1_000_000;
/// Seconds short of a rollup age from which a slot may already have been
/// rolled up by the server (see `slots`).
const MERGE_MARGIN: i64 = 3600;
/// The tree rows' level offset (carbon-clickhouse's).
const TREE_LEVEL: usize = 20_000;

#[derive(Default)]
struct Handles {
    names: Vec<String>,
    ids: HashMap<String, u32>,
}

pub struct ClickHouseSource {
    client: Client,
    db: String,
    rules: Rules,
    /// Parsed retentions by text.
    retentions: Mutex<HashMap<String, Retention>>,
    handles: Mutex<Handles>,
    max_handles: usize,
    events: Arc<dyn Kv>,
}

fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('\'');
    for c in s.chars() {
        match c {
            '\\' => q.push_str("\\\\"),
            '\'' => q.push_str("\\'"),
            _ => q.push(c),
        }
    }
    q.push('\'');
    q
}

/// A TabSeparated field back to its text.
fn unescape(f: &str) -> String {
    let mut out = String::with_capacity(f.len());
    let mut it = f.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('0') => out.push('\0'),
            Some(o) => out.push(o),
            None => {}
        }
    }
    out
}

/// The part of a pattern before its first wildcard: every match starts
/// with it.
fn literal_prefix(pattern: &str) -> &str {
    let end = pattern
        .find(['*', '?', '[', '{', ']', '}'])
        .unwrap_or(pattern.len());
    &pattern[..end]
}

/// ClickHouse's expression for one slot's value of a method over the
/// known (not NaN) values `v` of its finer slots `t`, `per` of them.
fn consolidate(method: Method, per: i64, v: &str, t: &str) -> String {
    let k = format!("NOT isNaN({v})");
    match method {
        Method::Average => format!("avgIf({v}, {k})"),
        Method::Sum => format!("sumIf({v}, {k})"),
        Method::Min => format!("minIf({v}, {k})"),
        Method::Max => format!("maxIf({v}, {k})"),
        Method::Last => format!("argMaxIf({v}, {t}, {k})"),
        Method::AvgZero => format!("sumIf({v}, {k}) / {per}"),
        // No table holds these (`schema::function` refuses them); as the
        // embedded store's methods, for a config written before.
        Method::AbsMax => format!("argMaxIf({v}, abs({v}), {k})"),
        Method::AbsMin => format!("argMinIf({v}, abs({v}), {k})"),
    }
}

impl ClickHouseSource {
    pub fn new(
        cfg: &StorageConfig,
        ch: &ClickHouseConfig,
        events: Arc<dyn Kv>,
    ) -> Result<ClickHouseSource, SchemaError> {
        Ok(ClickHouseSource {
            client: Client::new(ch),
            db: ch.database.clone(),
            rules: Rules::from_config(cfg)?,
            retentions: Mutex::new(HashMap::new()),
            handles: Mutex::new(Handles::default()),
            max_handles: cfg.max_series,
            events,
        })
    }

    fn handle(&self, name: &str) -> Option<u32> {
        let mut h = self.handles.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(&id) = h.ids.get(name) {
            return Some(id);
        }
        if h.names.len() >= self.max_handles {
            return None;
        }
        let id = u32::try_from(h.names.len()).ok()?;
        h.names.push(name.to_string());
        h.ids.insert(name.to_string(), id);
        Some(id)
    }

    fn name_of(&self, id: u32) -> Option<String> {
        let h = self.handles.lock().unwrap_or_else(|p| p.into_inner());
        h.names.get(id as usize).cloned()
    }

    /// A query's answer; no answer (not an error) while the database or a
    /// table does not exist yet: the writer makes them with the first
    /// batch, and until then there is nothing to read.
    fn query(&self, sql: &str) -> Result<String, ClickHouseError> {
        match self.client.query(sql) {
            // UNKNOWN_TABLE (60), UNKNOWN_DATABASE (81).
            Err(ClickHouseError::Server { body, .. })
                if body.starts_with("Code: 60,") || body.starts_with("Code: 81,") =>
            {
                Ok(String::new())
            }
            r => r,
        }
    }

    /// A series' retention and method, as the rules gave them when it was
    /// written (and the table its points are in).
    fn assigned(&self, name: &str) -> (Retention, Method, String, f32) {
        let a = self.rules.assign(name);
        let mut cache = self.retentions.lock().unwrap_or_else(|p| p.into_inner());
        let r = cache
            .entry(a.retention.clone())
            .or_insert_with(|| {
                Retention::parse(&a.retention).unwrap_or_else(|_| {
                    Retention::parse(rollupd_store::schema::DEFAULT_RETENTION)
                        .unwrap_or_else(|_| unreachable!())
                })
            })
            .clone();
        let table = format!("{}.{}", self.db, schema::table_for(&r.text, a.method));
        (r, a.method, table, a.xff)
    }

    /// The tree's nodes `pattern` matches: (path, leaf, branch), at most
    /// `limit` (more: too wide).
    fn matched(&self, pattern: &str, limit: usize) -> Result<Vec<(String, bool, bool)>, GlobError> {
        let err = |why: String, too_wide: bool, unavailable: bool| GlobError {
            pattern: shown(pattern),
            why,
            too_wide,
            unavailable,
        };
        let levels: Vec<&str> = pattern.split('.').collect();
        let matchers = levels
            .iter()
            .map(|l| LevelMatcher::new(pattern, l))
            .collect::<Result<Vec<_>, _>>()?;
        if matchers.iter().any(|m| m.globstar) {
            return Err(err(
                "`**` is not supported on the ClickHouse engine".into(),
                false,
                false,
            ));
        }
        let prefix = literal_prefix(pattern);
        let sql = format!(
            "SELECT DISTINCT Path FROM {}.{} WHERE Level = {} AND startsWith(Path, {}) \
             LIMIT {} FORMAT TabSeparated",
            self.db,
            schema::INDEX_TABLE,
            TREE_LEVEL + levels.len(),
            quote(prefix),
            MAX_CANDIDATES + 1
        );
        let rows = self
            .query(&sql)
            .map_err(|e| err(e.to_string(), false, true))?;
        let mut nodes: std::collections::BTreeMap<String, (bool, bool)> = Default::default();
        let mut seen = 0usize;
        for line in rows.lines() {
            seen += 1;
            if seen > MAX_CANDIDATES {
                return Err(err(
                    format!("more than {MAX_CANDIDATES} index rows under {prefix:?}"),
                    true,
                    false,
                ));
            }
            let path = unescape(line);
            let (name, branch) = match path.strip_suffix('.') {
                Some(b) => (b.to_string(), true),
                None => (path, false),
            };
            let parts: Vec<&str> = name.split('.').collect();
            if parts.len() != matchers.len()
                || !parts.iter().zip(&matchers).all(|(p, m)| m.is_match(p))
            {
                continue;
            }
            let e = nodes.entry(name).or_default();
            if branch {
                e.1 = true;
            } else {
                e.0 = true;
            }
            if nodes.len() > limit {
                return Err(err(format!("matches more than {limit} nodes"), true, false));
            }
        }
        Ok(nodes
            .into_iter()
            .map(|(p, (leaf, branch))| (p, leaf, branch))
            .collect())
    }

    /// (series, slot, value) of `names` (all of one table, method and
    /// xFilesFactor) over a window, in one query: the newest version of
    /// each finest slot, then each archive from the one before it, as the
    /// embedded store rolls up (`Method::aggregate_window`: the method
    /// over the known finer slots, none where fewer than `xff` of them are
    /// known). A slot old enough for the server to have rolled up its rows
    /// is taken whatever its count: `GraphiteMergeTree` leaves one row
    /// where there were several (in some parts and not yet in others), and
    /// knows no xFilesFactor, so a count there says nothing. (Tried: taking
    /// only a lone row at the slot's start as rolled up; a slot half rolled
    /// up then failed xFilesFactor: the conformance harness went from 60 to
    /// 54 of 62 on a run where the server merged early.)
    fn slots(
        &self,
        names: &[&str],
        (table, method, xff): (&str, Method, f32),
        r: &Retention,
        w: &ReadWindow,
        now: i64,
    ) -> Result<Vec<(String, i64, f64)>, ClickHouseError> {
        let fine = i64::from(r.archives[0].step);
        let (from, until) = (w.from.max(0), w.until.clamp(0, i64::from(u32::MAX) + 1));
        let list: Vec<String> = names.iter().map(|n| quote(n)).collect();
        // Each level's slot and value get names of their own (`t0`, `v0`,
        // `t1`, ...): an alias may not shadow the column it is made from.
        let mut sql = format!(
            "SELECT Path, intDiv(Time, {fine}) * {fine} AS t0, \
                    argMax(Value, toUInt64(Timestamp) * 4294967296 + Time) AS v0 \
             FROM {table} WHERE Path IN ({}) AND Time >= {from} AND Time < {until} \
             GROUP BY Path, t0",
            list.join(",")
        );
        for k in 1..=w.archive {
            let (step, prev) = (
                i64::from(r.archives[k].step),
                i64::from(r.archives[k - 1].step),
            );
            let per = step / prev.max(1);
            // Rows the server may have rolled up: older than the finer
            // archive's retention, with an hour's margin: ClickHouse 18.16
            // was seen rolling up rows a minute or two short of that age
            // (the conformance harness's minute just inside 6 h came back
            // with one row of six).
            let merged_before = now
                - i64::try_from(r.archives[k - 1].retention()).unwrap_or(i64::MAX)
                + MERGE_MARGIN;
            let (t, v) = (format!("t{}", k - 1), format!("v{}", k - 1));
            sql = format!(
                "SELECT Path, intDiv({t}, {step}) * {step} AS t{k}, \
                        if(countIf(NOT isNaN({v})) >= greatest(1, {xff} * {per}) \
                           OR (t{k} + {step} <= {merged_before} AND countIf(NOT isNaN({v})) > 0), \
                           {}, nan) AS v{k} \
                 FROM ({sql}) GROUP BY Path, t{k}",
                consolidate(method, per, &v, &t),
                xff = f64::from(xff),
            );
        }
        sql.push_str(" FORMAT TabSeparated");
        let text = self.query(&sql)?;
        Ok(text
            .lines()
            .filter_map(|l| {
                let mut f = l.split('\t');
                let (p, t, v) = (f.next()?, f.next()?, f.next()?);
                let v = match v {
                    "nan" | "-nan" => f64::NAN,
                    "inf" | "+inf" => f64::INFINITY,
                    "-inf" => f64::NEG_INFINITY,
                    v => v.parse().ok()?,
                };
                Some((unescape(p), t.parse().ok()?, v))
            })
            .collect())
    }

    /// Histograms of `names` over a window, merged per slot: the newest
    /// of each finest slot (the embedded store keeps a slot's last write),
    /// then merged over each slot of the window's archive.
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "`read_window` gives until > from and a step >= 1, so the slot count is \
                  positive, and a row's slot is taken only for t in [from, until): \
                  below that count"
    )]
    fn hists_by_slot(
        &self,
        names: &[&str],
        fine: i64,
        w: &ReadWindow,
    ) -> Result<HashMap<String, Vec<Option<Hist>>>, ClickHouseError> {
        let list: Vec<String> = names.iter().map(|n| quote(n)).collect();
        let sql = format!(
            "SELECT Path, intDiv(s, {step}) * {step} AS b, u, c FROM (\
               SELECT Path, intDiv(Time, {fine}) * {fine} AS s, \
                      argMax(Units, toUInt64(Timestamp) * 4294967296 + Time) AS u, \
                      argMax(Counts, toUInt64(Timestamp) * 4294967296 + Time) AS c \
               FROM {}.{} WHERE Path IN ({}) AND Time >= {} AND Time < {} GROUP BY Path, s\
             ) FORMAT TabSeparated",
            self.db,
            schema::HISTS_TABLE,
            list.join(","),
            w.from.max(0),
            w.until.clamp(0, i64::from(u32::MAX) + 1),
            step = w.step
        );
        let len = ((w.until - w.from) / w.step) as usize;
        let nums = |s: &str| -> Vec<u64> {
            s.trim_matches(|c| c == '[' || c == ']')
                .split(',')
                .filter_map(|x| x.parse().ok())
                .collect()
        };
        let mut out: HashMap<String, Vec<Option<Hist>>> = HashMap::new();
        for line in self.query(&sql)?.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            let (Some(p), Some(t), Some(u), Some(c)) = (f.first(), f.get(1), f.get(2), f.get(3))
            else {
                continue;
            };
            let Ok(t) = t.parse::<i64>() else { continue };
            if t < w.from || t >= w.until {
                continue;
            }
            let h = Hist {
                buckets: nums(u).into_iter().zip(nums(c)).collect(),
            };
            let slots = out.entry(unescape(p)).or_insert_with(|| vec![None; len]);
            let slot = &mut slots[((t - w.from) / w.step) as usize];
            match slot {
                Some(have) => have.merge(&h),
                None => *slot = Some(h),
            }
        }
        Ok(out)
    }

    /// The timer statistics among `names` and their histograms.
    fn links(
        &self,
        names: &[&str],
    ) -> Result<HashMap<String, (String, StatCode)>, ClickHouseError> {
        let list: Vec<String> = names.iter().map(|n| quote(n)).collect();
        let sql = format!(
            "SELECT Path, argMax(Hist, Version), argMax(Stat, Version) FROM {}.{} \
             WHERE Path IN ({}) GROUP BY Path FORMAT TabSeparated",
            self.db,
            schema::LINKS_TABLE,
            list.join(",")
        );
        let mut out = HashMap::new();
        for line in self.query(&sql)?.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            let (Some(p), Some(h), Some(code)) = (f.first(), f.get(1), f.get(2)) else {
                continue;
            };
            if let Some(code) = code.parse().ok().and_then(StatCode::from_bits) {
                out.insert(unescape(p), (unescape(h), code));
            }
        }
        Ok(out)
    }
}

fn engine(e: ClickHouseError) -> StoreError {
    StoreError::Engine(e.to_string())
}

impl SeriesSource for ClickHouseSource {
    fn expand(&self, pattern: &str, limit: usize) -> Result<Vec<u32>, GlobError> {
        // A tagged name is no glob: the series of exactly that name.
        if pattern.contains(';') {
            return Ok(self.lookup(pattern).into_iter().collect());
        }
        let mut out = Vec::new();
        for (path, leaf, _) in self.matched(pattern, limit)? {
            if leaf {
                out.push(self.handle(&path).ok_or_else(|| GlobError {
                    pattern: shown(pattern),
                    why: format!(
                        "more than {} series named since the start (max_series)",
                        self.max_handles
                    ),
                    too_wide: true,
                    unavailable: false,
                })?);
            }
        }
        Ok(out)
    }

    fn name(&self, id: u32) -> String {
        self.name_of(id).unwrap_or_default()
    }

    fn lookup(&self, name: &str) -> Option<u32> {
        let sql = match name.split_once(';') {
            Some((path, _)) => format!(
                "SELECT count() FROM {}.{} WHERE Tag1 = {} AND Path = {} FORMAT TabSeparated",
                self.db,
                schema::TAGGED_TABLE,
                quote(&format!("name={path}")),
                quote(name)
            ),
            None => format!(
                "SELECT count() FROM {}.{} WHERE Level = {} AND Path = {} FORMAT TabSeparated",
                self.db,
                schema::INDEX_TABLE,
                TREE_LEVEL + name.split('.').count(),
                quote(name)
            ),
        };
        let n: u64 = self.query(&sql).ok()?.trim().parse().ok()?;
        if n == 0 {
            return None;
        }
        self.handle(name)
    }

    fn retention(&self, id: u32) -> Option<Retention> {
        Some(self.assigned(&self.name_of(id)?).0)
    }

    fn fetch(
        &self,
        id: u32,
        from: i64,
        until: i64,
        now: i64,
    ) -> Result<Option<Fetched>, StoreError> {
        Ok(self.fetch_many(&[id], from, until, now)?.pop().flatten())
    }

    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "`read_window` gives until > from and a step that is an archive's u32 \
                  step widened, so the slot count is positive and the step fits u32; a \
                  row's slot is taken only for t in [from, until): below that count"
    )]
    fn fetch_many(
        &self,
        ids: &[u32],
        from: i64,
        until: i64,
        now: i64,
    ) -> Result<Vec<Option<Fetched>>, StoreError> {
        let mut out: Vec<Option<Fetched>> = vec![None; ids.len()];
        // One query per table: a series' window and table are its rules',
        // and the series of one table share both.
        type Group = (Retention, Method, f32, Vec<(usize, String)>);
        let mut groups: HashMap<(String, u32), Group> = HashMap::new();
        for (i, &id) in ids.iter().enumerate() {
            let Some(name) = self.name_of(id) else {
                continue;
            };
            let (r, method, table, xff) = self.assigned(&name);
            groups
                .entry((table, xff.to_bits()))
                .or_insert_with(|| (r, method, xff, Vec::new()))
                .3
                .push((i, name));
        }
        for ((table, _), (r, method, xff, members)) in groups {
            let Some(w) = r.read_window(from, until, now) else {
                continue;
            };
            let fine = i64::from(r.archives[0].step);
            let len = ((w.until - w.from) / w.step) as usize;
            let mut at: HashMap<&str, usize> = HashMap::new();
            for (i, name) in &members {
                at.insert(name.as_str(), *i);
                out[*i] = Some(Fetched {
                    from: w.from,
                    until: w.until,
                    step: w.step as u32,
                    values: vec![f64::NAN; len],
                });
            }
            let names: Vec<&str> = members.iter().map(|(_, n)| n.as_str()).collect();
            for (name, t, v) in self
                .slots(&names, (&table, method, xff), &r, &w, now)
                .map_err(engine)?
            {
                let Some(&i) = at.get(name.as_str()) else {
                    continue;
                };
                if let (Some(f), true) = (out[i].as_mut(), t >= w.from && t < w.until) {
                    f.values[((t - w.from) / w.step) as usize] = v;
                }
            }
            // In a coarser archive, a timer statistic's slot is that
            // statistic of the slot's merged histogram (`rollup::value`).
            if w.step > fine {
                let links = self.links(&names).map_err(engine)?;
                if !links.is_empty() {
                    let hnames: Vec<&str> = links.values().map(|(h, _)| h.as_str()).collect();
                    let hists = self.hists_by_slot(&hnames, fine, &w).map_err(engine)?;
                    for (name, (hist, code)) in &links {
                        let (Some(&i), Some(slots)) = (at.get(name.as_str()), hists.get(hist))
                        else {
                            continue;
                        };
                        let Some(f) = out[i].as_mut() else { continue };
                        for (v, h) in f.values.iter_mut().zip(slots) {
                            if let (false, Some(h)) = (v.is_nan(), h) {
                                if let Some(x) = stat_of(h, code.stat()) {
                                    *v = x;
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    fn find_hists(&self, pattern: &str, limit: usize) -> Result<Vec<(String, u32)>, GlobError> {
        let err = |e: ClickHouseError| GlobError {
            pattern: shown(pattern),
            why: e.to_string(),
            too_wide: false,
            unavailable: true,
        };
        let levels: Vec<&str> = pattern.split('.').collect();
        let matchers = levels
            .iter()
            .map(|l| LevelMatcher::new(pattern, l))
            .collect::<Result<Vec<_>, _>>()?;
        let sql = format!(
            "SELECT DISTINCT Path FROM {}.{} WHERE startsWith(Path, {}) LIMIT {} FORMAT TabSeparated",
            self.db,
            schema::HISTS_TABLE,
            quote(literal_prefix(pattern)),
            MAX_CANDIDATES
        );
        let mut out = Vec::new();
        for line in self.query(&sql).map_err(err)?.lines() {
            let path = unescape(line);
            let parts: Vec<&str> = path.split('.').collect();
            let hit = path == pattern
                || (parts.len() == matchers.len()
                    && parts.iter().zip(&matchers).all(|(p, m)| m.is_match(p)));
            if hit {
                if out.len() >= limit {
                    break;
                }
                if let Some(id) = self.handle(&path) {
                    out.push((path, id));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "`read_window` gives until > from and a step that is an archive's u32 \
                  step widened, so the slot count is positive and the step fits u32"
    )]
    fn fetch_hists(
        &self,
        id: u32,
        from: i64,
        until: i64,
        now: i64,
    ) -> Result<Option<HistWindow>, StoreError> {
        let Some(name) = self.name_of(id) else {
            return Ok(None);
        };
        let (r, ..) = self.assigned(&name);
        let Some(w) = r.read_window(from, until, now) else {
            return Ok(None);
        };
        let fine = i64::from(r.archives[0].step);
        let mut by = self.hists_by_slot(&[&name], fine, &w).map_err(engine)?;
        let out = by
            .remove(&name)
            .unwrap_or_else(|| vec![None; ((w.until - w.from) / w.step) as usize]);
        Ok(Some((w.from, w.step as u32, out)))
    }

    fn tagged(&self, tag: &str, keep: &mut dyn FnMut(&str) -> bool) -> Vec<(u32, String)> {
        let prefix = format!("{tag}=");
        let sql = format!(
            "SELECT DISTINCT Tag1, Path FROM {}.{} WHERE startsWith(Tag1, {}) LIMIT {} FORMAT TabSeparated",
            self.db,
            schema::TAGGED_TABLE,
            quote(&prefix),
            MAX_CANDIDATES
        );
        let Ok(text) = self.query(&sql) else {
            return Vec::new();
        };
        let mut out: Vec<(u32, String)> = Vec::new();
        for line in text.lines() {
            let Some((t, path)) = line.split_once('\t') else {
                continue;
            };
            let (t, path) = (unescape(t), unescape(path));
            if !t.strip_prefix(&prefix).is_some_and(&mut *keep) {
                continue;
            }
            if let Some(id) = self.handle(&path) {
                out.push((id, path));
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    fn events(&self) -> &dyn Kv {
        self.events.as_ref()
    }

    fn find(&self, pattern: &str, limit: usize) -> Result<Vec<Found>, GlobError> {
        Ok(self
            .matched(pattern, limit)?
            .into_iter()
            .map(|(path, leaf, branch)| Found {
                leaf: if leaf { self.handle(&path) } else { None },
                path,
                branch,
            })
            .collect())
    }

    fn visit_tag_names(&self, visit: &mut dyn FnMut(&str) -> bool) {
        let sql = format!(
            "SELECT DISTINCT splitByChar('=', Tag1)[1] AS t FROM {}.{} ORDER BY t FORMAT TabSeparated",
            self.db,
            schema::TAGGED_TABLE
        );
        for line in self.query(&sql).unwrap_or_default().lines() {
            if !visit(&unescape(line)) {
                return;
            }
        }
    }

    fn visit_tag_values(&self, tag: &str, visit: &mut dyn FnMut(&str, usize) -> bool) {
        let prefix = format!("{tag}=");
        let sql = format!(
            "SELECT substring(Tag1, {}, length(Tag1)) AS v, uniqExact(Path) FROM {}.{} \
             WHERE startsWith(Tag1, {}) GROUP BY v ORDER BY v FORMAT TabSeparated",
            prefix.len() + 1,
            self.db,
            schema::TAGGED_TABLE,
            quote(&prefix)
        );
        for line in self.query(&sql).unwrap_or_default().lines() {
            let Some((v, n)) = line.split_once('\t') else {
                continue;
            };
            if !visit(&unescape(v), n.parse().unwrap_or(0)) {
                return;
            }
        }
    }

    fn visit_tagged(&self, visit: &mut dyn FnMut(&str) -> bool) {
        let sql = format!(
            "SELECT DISTINCT Path FROM {}.{} WHERE startsWith(Tag1, 'name=') ORDER BY Path FORMAT TabSeparated",
            self.db,
            schema::TAGGED_TABLE
        );
        for line in self.query(&sql).unwrap_or_default().lines() {
            if !visit(&unescape(line)) {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_prefixes_and_quoting() {
        assert_eq!(
            literal_prefix("stats.timers.api*.upper"),
            "stats.timers.api"
        );
        assert_eq!(literal_prefix("{a,b}.c"), "");
        assert_eq!(literal_prefix("a.b.c"), "a.b.c");
        assert_eq!(quote("it's a\\b"), "'it\\'s a\\\\b'");
        assert_eq!(unescape("a\\tb\\\\c"), "a\tb\\c");
    }
}
