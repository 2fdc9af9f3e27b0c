//! The series index: names ↔ ids, the metric tree that answers Graphite
//! globs, and the tag postings that answer `seriesByTag`.
//!
//! Everything is in memory (loaded from the `Series` space at start-up);
//! the store persists each new entry in the same atomic batch as the first
//! points that name it. Globs are matched one path level at a time: a
//! literal level is one hash lookup, a wildcard level tests only the
//! children of the nodes matched so far, so `a.*.c` never looks at series
//! outside `a.`.
//!
//! It is laid out for a million series and more (`benches/index.rs`,
//! 1,000,000 carbon and statsd names of 34 bytes on average): each name is
//! stored once, end to end with the others in an [`Arena`], and the name
//! maps are hash tables of ids hashed by the name they point at; a tree
//! level (`stats`, `timers`, `upper_90`) is interned once for all the
//! nodes that have it; a node is two u32s and its children a sorted vector
//! until it has many; a series' facts are 16 bytes. At 1M series that
//! took the index from 331 heap bytes per series (296 beyond the name
//! bytes: the name held three times over, a HashMap per node; RSS 344) to
//! 116 (82 beyond the names; RSS 111). Run alternately with the old one on
//! the shared 2-core machine (load 6), `find("host.*.api.app.*")` (40,000
//! paths) went from 84-100 ms to 44-74 ms; name lookups (300-500 ns) and
//! `stats.timers.api.*.upper_90` (3,125 paths, 2.5-10 ms) did not move
//! beyond the noise.

use std::collections::BTreeMap;
use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::glob::LevelMatcher;
use super::schema::Method;

/// Names are hashed on every point written; foldhash is several times
/// faster than SipHash on them, and the index is not keyed by anything an
/// attacker can collide cheaply at scale (names come from our own clients).
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// No series, no children (a node's fields).
const NONE: u32 = u32::MAX;

/// `len` as the id of the next entry of a vector of 32-bit ids, if it is
/// one ([`NONE`] is not).
fn below_none(len: usize) -> Option<u32> {
    u32::try_from(len).ok().filter(|&i| i != NONE)
}

/// A node's children stay a sorted vector up to this many (a binary
/// search over 8-byte entries, no table per node); past it a hash map,
/// so a level with 100,000 hosts is not a vector that every insert shifts.
const FEW: usize = 32;

/// Bytes of one [`Arena`] chunk. A name never spans two, so a chunk is
/// never moved or grown (no doubling of the whole arena, no copy of it);
/// the tail a chunk cannot fit is at most one name (4 KiB, `MAX_NAME_BYTES`).
const CHUNK: usize = 1 << 20;

/// Strings stored end to end in fixed chunks, each found by its number
/// (the order it was pushed in). 8 bytes a string beyond its bytes.
#[derive(Debug, Default)]
struct Arena {
    chunks: Vec<String>,
    /// Where each string ends: its chunk << 32 | the offset after it. It
    /// starts where the one before ends, or at 0 when that one is in an
    /// earlier chunk.
    ends: Vec<u64>,
}

impl Arena {
    fn len(&self) -> usize {
        self.ends.len()
    }

    #[expect(
        clippy::cast_possible_truncation,
        reason = "an arena holds fewer than u32::MAX strings: one per series or histogram (the store creates none past max_series, at most u32::MAX by StorageConfig::validate, and loads ids from 32-bit records), or one per atom, which child_or_new adds only below NONE"
    )]
    fn push(&mut self, s: &str) -> u32 {
        let fits = self
            .chunks
            .last()
            .is_some_and(|c| c.len() + s.len() <= c.capacity());
        if !fits {
            self.chunks.push(String::with_capacity(CHUNK.max(s.len())));
        }
        let c = self.chunks.len() - 1;
        self.chunks[c].push_str(s);
        self.ends
            .push((c as u64) << 32 | self.chunks[c].len() as u64);
        (self.ends.len() - 1) as u32
    }

    #[expect(
        clippy::cast_possible_truncation,
        reason = "the low 32 bits of an end are its offset in its chunk (taken on purpose); a chunk is at most max(1 MiB, one name) long"
    )]
    fn get(&self, i: u32) -> &str {
        let end = self.ends[i as usize];
        let chunk = end >> 32;
        let start = match i.checked_sub(1).map(|p| self.ends[p as usize]) {
            Some(prev) if prev >> 32 == chunk => prev as u32 as usize,
            _ => 0,
        };
        &self.chunks[chunk as usize][start..end as u32 as usize]
    }

    fn heap_bytes(&self) -> usize {
        self.chunks.iter().map(String::capacity).sum::<usize>() + self.ends.capacity() * 8
    }
}

/// What a percentile-like series derives from its timer's histogram.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stat {
    Quantile(f64),
    Mean,
    Std,
}

/// One point series (its name is [`Index::name`]): 16 bytes, a million of
/// them 16 MiB.
#[derive(Debug, Clone, Copy)]
pub struct SeriesInfo {
    /// The linked histogram; for a rate ([`RATE_BITS`] in `stat`) the
    /// point series it counts; or [`NONE`].
    hist: u32,
    /// The linked [`Stat`], or [`RATE_BITS`].
    stat: StatCode,
    pub xff: f32,
    pub schema: u16,
    pub method: Method,
    /// An id no series holds (see [`Index::add_hole`]): no name reaches
    /// it and nothing is written under it.
    pub hole: bool,
}

impl SeriesInfo {
    fn new(schema: u16, method: Method, xff: f32, hole: bool) -> SeriesInfo {
        SeriesInfo {
            hist: NONE,
            stat: StatCode(CODE_MEAN),
            xff,
            schema,
            method,
            hole,
        }
    }

    /// For a timer stat (`upper_90`, `median`, `mean`, `std`) whose timer
    /// has a histogram series: rollups come from the merged histogram.
    pub fn link(&self) -> Option<(u32, Stat)> {
        self.link_code().map(|(h, c)| (h, c.stat()))
    }

    /// [`SeriesInfo::link`] as stored.
    pub fn link_code(&self) -> Option<(u32, StatCode)> {
        (self.hist != NONE && self.stat.0 != RATE_BITS).then_some((self.hist, self.stat))
    }

    /// For a counter's (or a timer's) per-second rate: the point series of
    /// the count it is the rate of ([`Index::link_rate`]). Rows of the
    /// rate are stored as differences from count ÷ step (`derive`).
    pub fn rate_of(&self) -> Option<u32> {
        (self.hist != NONE && self.stat.0 == RATE_BITS).then_some(self.hist)
    }

    /// The link as a series record stores it: (id, stat bits), a rate's
    /// bits being [`RATE_BITS`].
    pub fn record_link(&self) -> Option<(u32, u32)> {
        (self.hist != NONE).then_some((self.hist, self.stat.0))
    }
}

/// The stat bits of a series record whose link is a rate: its `hist`
/// field is then a point series, the count. No stat has these bits (a
/// percentile of 0.00).
pub const RATE_BITS: u32 = 2;

/// A [`Stat`] in 4 bytes and exact: a quantile is kept as the decimal its
/// name writes (`upper_99_9`: the digits 999 and 1 decimal, as
/// `999 << 5 | 1`), whose f64 is the one parsing `99.9` gives: both are
/// the float nearest the same decimal, since 999 and 10^1 (any power up to
/// 10^22) are exact in an f64 and a division rounds once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatCode(u32);

const CODE_MEAN: u32 = 0;
const CODE_STD: u32 = 1;

impl StatCode {
    /// The stat a timer field names, as the emitter writes the field
    /// (`upper_90`, `upper_99_9`, `median`, `mean`, `std`); `None` for any
    /// other field (`count`, `sum`, `lower_10`: rolled up by its method).
    pub fn of_field(field: &str) -> Option<StatCode> {
        match field {
            "median" => StatCode::percentile("50"),
            "mean" => Some(StatCode(CODE_MEAN)),
            "std" => Some(StatCode(CODE_STD)),
            // `upper_99_9` is the 99.9th percentile.
            _ => StatCode::percentile(field.strip_prefix("upper_")?),
        }
    }

    /// As stored in a series record.
    pub fn to_bits(self) -> u32 {
        self.0
    }

    /// From a series record; `None` for bits no stat has.
    pub fn from_bits(bits: u32) -> Option<StatCode> {
        match bits {
            CODE_MEAN | CODE_STD => Some(StatCode(bits)),
            _ => {
                let c = StatCode(bits);
                let digits = bits >> 5;
                let pct = c.percent();
                (digits < 1 << 27 && (bits & 31) <= 22 && pct > 0.0 && pct <= 100.0).then_some(c)
            }
        }
    }

    /// A percentile as a name writes it, `_` for the point (`90`,
    /// `99_9`), in (0, 100]. At most 2^27 for its digits (8 significant
    /// ones: `99_999999`); beyond, or in any other spelling, it is not a
    /// stat the histogram answers (the series rolls up by its method).
    fn percentile(s: &str) -> Option<StatCode> {
        let (int, frac) = s.split_once('_').unwrap_or((s, ""));
        if int.is_empty() || s.ends_with('_') {
            return None;
        }
        let places = u32::try_from(frac.len()).ok().filter(|&n| n <= 22)?;
        let mut digits: u32 = 0;
        for b in int.bytes().chain(frac.bytes()) {
            if !b.is_ascii_digit() {
                return None;
            }
            digits = digits.checked_mul(10)?.checked_add(u32::from(b - b'0'))?;
        }
        if digits >= 1 << 27 {
            return None;
        }
        let code = StatCode(digits << 5 | places);
        let pct = code.percent();
        (pct > 0.0 && pct <= 100.0).then_some(code)
    }

    #[expect(
        clippy::cast_possible_wrap,
        reason = "the decimal places are the code's low 5 bits, at most 31"
    )]
    fn percent(self) -> f64 {
        f64::from(self.0 >> 5) / 10f64.powi((self.0 & 31) as i32)
    }

    pub fn stat(self) -> Stat {
        match self.0 {
            CODE_MEAN => Stat::Mean,
            CODE_STD => Stat::Std,
            _ => Stat::Quantile(self.percent() / 100.0),
        }
    }
}

/// One histogram series (named like the timer's branch, e.g.
/// `stats.timers.api.latency`; the name is [`Index::hist_name`]).
#[derive(Debug, Clone, Copy)]
pub struct HistInfo {
    pub schema: u16,
    /// As [`SeriesInfo::hole`].
    pub hole: bool,
}

/// A tree node: 8 bytes. Most nodes are leaves, with no children.
#[derive(Debug, Clone, Copy)]
struct Node {
    /// The series stored under this path, or [`NONE`].
    series: u32,
    /// Its children in `Index::kids`, or [`NONE`] while it has none.
    kids: u32,
}

const EMPTY_NODE: Node = Node {
    series: NONE,
    kids: NONE,
};

/// A node's children: (level atom, node).
#[derive(Debug)]
enum Kids {
    /// Sorted by atom.
    Few(Vec<(u32, u32)>),
    Many(Box<HashMap<u32, u32>>),
}

impl Kids {
    fn get(&self, atom: u32) -> Option<u32> {
        match self {
            Kids::Few(v) => v
                .binary_search_by_key(&atom, |&(a, _)| a)
                .ok()
                .map(|i| v[i].1),
            Kids::Many(m) => m.get(&atom).copied(),
        }
    }

    fn insert(&mut self, atom: u32, node: u32) {
        match self {
            Kids::Few(v) if v.len() < FEW => {
                // Grown one entry at a time: most lists hold 1 to 5 (a
                // doubling vector's slack was 60% of their bytes).
                v.reserve_exact(1);
                let i = v.partition_point(|&(a, _)| a < atom);
                v.insert(i, (atom, node));
            }
            Kids::Few(v) => {
                let mut m: HashMap<u32, u32> = v.iter().copied().collect();
                m.insert(atom, node);
                *self = Kids::Many(Box::new(m));
            }
            Kids::Many(m) => {
                m.insert(atom, node);
            }
        }
    }

    fn len(&self) -> usize {
        match self {
            Kids::Few(v) => v.len(),
            Kids::Many(m) => m.len(),
        }
    }

    fn iter(&self) -> KidsIter<'_> {
        match self {
            Kids::Few(v) => KidsIter::Few(v.iter()),
            Kids::Many(m) => KidsIter::Many(m.iter()),
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Kids::Few(v) => v.capacity() * 8,
            // Entries and a control byte each, and the map itself.
            Kids::Many(m) => m.capacity() * 9 + size_of::<HashMap<u32, u32>>(),
        }
    }
}

enum KidsIter<'a> {
    Few(std::slice::Iter<'a, (u32, u32)>),
    Many(std::collections::hash_map::Iter<'a, u32, u32>),
}

impl Iterator for KidsIter<'_> {
    type Item = (u32, u32);

    fn next(&mut self) -> Option<(u32, u32)> {
        match self {
            KidsIter::Few(i) => i.next().copied(),
            KidsIter::Many(i) => i.next().map(|(&a, &n)| (a, n)),
        }
    }
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
#[error("{}glob {pattern:?}: {why}", if *.too_wide || *.unavailable { "" } else { "bad " })]
pub struct GlobError {
    /// The pattern, [`shown`].
    pub pattern: String,
    pub why: String,
    /// Not a bad pattern: a level above the last matches more nodes than
    /// the caller's limit (a cap, answered as one).
    pub too_wide: bool,
    /// Not a bad pattern: the engine could not be asked (a server down),
    /// answered as unavailable.
    pub unavailable: bool,
}

/// The index. Its bytes: [`Index::heap_bytes`] (within 2% of what a
/// counting allocator sees in `benches/index.rs`).
#[derive(Debug)]
pub struct Index {
    /// Series names by id (a hole's is empty).
    names: Arena,
    /// Series ids, hashed by their name.
    by_name: HashTable<u32>,
    pub series: Vec<SeriesInfo>,
    hist_names: Arena,
    hist_by_name: HashTable<u32>,
    pub hists: Vec<HistInfo>,
    /// Tree levels, each once (`stats`, `timers`, `h00042`), and their ids
    /// hashed by the level.
    atoms: Arena,
    atom_ids: HashTable<u32>,
    /// The metric tree; the root is node 0.
    nodes: Vec<Node>,
    kids: Vec<Kids>,
    /// tag → value → series ids (ascending), for tagged names.
    tags: BTreeMap<String, BTreeMap<String, Vec<u32>>>,
    /// histogram id → the stat series linked to it ([`Index::link`]): the
    /// rows to bring into memory before a stored histogram row changes.
    /// Only timers with links have an entry (about 70 bytes a timer with
    /// eight stats, against the ~5 KB its series take).
    hist_stats: HashMap<u32, Vec<u32>>,
    /// count series → the rate linked to it ([`Index::link_rate`]): the
    /// rows to bring into memory before a stored count row changes. A
    /// count has one rate (a counter's, a timer's `count_ps`), so a map of
    /// ids (about 10 bytes a counter) with the rare others beside it,
    /// rather than a list per count (about 70).
    count_rate: HashMap<u32, u32>,
    count_more_rates: HashMap<u32, Vec<u32>>,
    hasher: foldhash::fast::RandomState,
}

impl Default for Index {
    fn default() -> Self {
        Index {
            names: Arena::default(),
            by_name: HashTable::new(),
            series: Vec::new(),
            hist_names: Arena::default(),
            hist_by_name: HashTable::new(),
            hists: Vec::new(),
            atoms: Arena::default(),
            atom_ids: HashTable::new(),
            nodes: vec![EMPTY_NODE],
            kids: Vec::new(),
            tags: BTreeMap::new(),
            hist_stats: HashMap::default(),
            count_rate: HashMap::default(),
            count_more_rates: HashMap::default(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }
}

/// The id whose name in `arena` is `name`.
fn lookup(
    table: &HashTable<u32>,
    arena: &Arena,
    hasher: &foldhash::fast::RandomState,
    name: &str,
) -> Option<u32> {
    table
        .find(hasher.hash_one(name), |&i| arena.get(i) == name)
        .copied()
}

/// Points `name` at `id` in `table` (replacing an earlier id of the same
/// name, as a map insert would).
fn put(
    table: &mut HashTable<u32>,
    arena: &Arena,
    hasher: &foldhash::fast::RandomState,
    name: &str,
    id: u32,
) {
    let hash = hasher.hash_one(name);
    match table.find_mut(hash, |&i| arena.get(i) == name) {
        Some(old) => *old = id,
        None => {
            table.insert_unique(hash, id, |&i| hasher.hash_one(arena.get(i)));
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

/// The timer stat a series name ends in, with the timer's branch name,
/// by Etsy's naming: only for series stored before links were
/// ([`Index::link_legacy`]).
fn timer_stat(name: &str) -> Option<(&str, StatCode)> {
    let (base, last) = name.rsplit_once('.')?;
    Some((base, StatCode::of_field(last)?))
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
        lookup(&self.by_name, &self.names, &self.hasher, name)
    }

    pub fn hist_id(&self, name: &str) -> Option<u32> {
        lookup(&self.hist_by_name, &self.hist_names, &self.hasher, name)
    }

    /// The name of series `id` (empty for a hole).
    ///
    /// # Panics
    /// If there is no such id, as `series[id]` would.
    pub fn name(&self, id: u32) -> &str {
        self.names.get(id)
    }

    /// The name of histogram series `id` (empty for a hole).
    ///
    /// # Panics
    /// If there is no such id.
    pub fn hist_name(&self, id: u32) -> &str {
        self.hist_names.get(id)
    }

    /// Adds a point series under the next id (or the id it was stored
    /// with, when loading) and returns it.
    pub fn add_series(&mut self, name: &str, schema: u16, method: Method, xff: f32) -> u32 {
        let id = self.names.push(name);
        debug_assert_eq!(id as usize, self.series.len());
        self.series
            .push(SeriesInfo::new(schema, method, xff, false));
        put(&mut self.by_name, &self.names, &self.hasher, name, id);
        if let Some((_, tags)) = parse_tagged(name) {
            for (k, v) in tags {
                self.tags
                    .entry(k.to_string())
                    .or_default()
                    .entry(v.to_string())
                    .or_default()
                    .push(id);
            }
        } else {
            // A tree out of ids leaves the series out of it (found by its
            // name, not by globs).
            let mut node = Some(0u32);
            for part in name.split('.') {
                node = node.and_then(|n| self.child_or_new(n, part));
            }
            if let Some(node) = node {
                self.nodes[node as usize].series = id;
            }
        }
        id
    }

    /// The child of `node` at level `part`, made if missing; `None` when
    /// the tree has no 32-bit id left for it (4 billion nodes, atoms or
    /// child lists: an id that wrapped around would make a cycle through
    /// the root).
    fn child_or_new(&mut self, node: u32, part: &str) -> Option<u32> {
        let atom = match lookup(&self.atom_ids, &self.atoms, &self.hasher, part) {
            Some(a) => a,
            None => {
                below_none(self.atoms.len())?;
                let a = self.atoms.push(part);
                put(&mut self.atom_ids, &self.atoms, &self.hasher, part, a);
                a
            }
        };
        let kids = self.nodes[node as usize].kids;
        if kids != NONE {
            if let Some(c) = self.kids[kids as usize].get(atom) {
                return Some(c);
            }
        }
        let c = below_none(self.nodes.len())?;
        if kids == NONE {
            let k = below_none(self.kids.len())?;
            self.nodes.push(EMPTY_NODE);
            self.nodes[node as usize].kids = k;
            self.kids.push(Kids::Few(vec![(atom, c)]));
        } else {
            self.nodes.push(EMPTY_NODE);
            self.kids[kids as usize].insert(atom, c);
        }
        Some(c)
    }

    /// The children of `node`: (level, node), in no particular order.
    fn children(&self, node: u32) -> impl Iterator<Item = (&str, u32)> {
        let kids = self.nodes[node as usize].kids;
        (kids != NONE)
            .then(|| self.kids[kids as usize].iter())
            .into_iter()
            .flatten()
            .map(|(a, c)| (self.atoms.get(a), c))
    }

    fn child_count(&self, node: u32) -> usize {
        match self.nodes[node as usize].kids {
            NONE => 0,
            k => self.kids[k as usize].len(),
        }
    }

    /// The child of `node` whose level is atom `atom`.
    fn child(&self, node: u32, atom: u32) -> Option<u32> {
        match self.nodes[node as usize].kids {
            NONE => None,
            k => self.kids[k as usize].get(atom),
        }
    }

    fn atom(&self, part: &str) -> Option<u32> {
        lookup(&self.atom_ids, &self.atoms, &self.hasher, part)
    }

    fn has_children(&self, node: u32) -> bool {
        self.nodes[node as usize].kids != NONE
    }

    /// Takes the next point (or histogram, with `hist`) id without a
    /// series: for an id whose record was lost, or one that log entries
    /// name but no record does, so that no new series is ever given an id
    /// that old entries still use. A hole is in neither the tree nor the
    /// name map, so no find, glob or write reaches it.
    pub fn add_hole(&mut self, hist: bool) -> u32 {
        if hist {
            let id = self.hist_names.push("");
            debug_assert_eq!(id as usize, self.hists.len());
            self.hists.push(HistInfo {
                schema: 0,
                hole: true,
            });
            id
        } else {
            let id = self.names.push("");
            debug_assert_eq!(id as usize, self.series.len());
            self.series
                .push(SeriesInfo::new(0, Method::Average, 0.0, true));
            id
        }
    }

    /// Links point series `series` to histogram series `hist` as its stat
    /// `code`: its rollups come from the merged histogram. Returns whether
    /// that changed anything; nothing is linked (false) when either id is
    /// unknown or a hole, or their schemas differ (the histogram's archives
    /// must be the stat's).
    pub fn link(&mut self, series: u32, hist: u32, code: StatCode) -> bool {
        let (Some(s), Some(h)) = (
            self.series.get(series as usize),
            self.hists.get(hist as usize),
        ) else {
            return false;
        };
        if s.hole || h.hole || s.schema != h.schema || s.link_code() == Some((hist, code)) {
            return false;
        }
        self.unlink(series);
        let s = &mut self.series[series as usize];
        (s.hist, s.stat) = (hist, code);
        let v = self.hist_stats.entry(hist).or_default();
        if !v.contains(&series) {
            v.push(series);
        }
        true
    }

    /// Links point series `series` as the per-second rate of point series
    /// `count` (the emitter's word: a counter's `rate` and `count`, a
    /// timer's `count_ps` and `count`). Returns whether that changed
    /// anything; nothing is linked (false) when either is unknown or a
    /// hole, they are one series, their schemas differ, or `count` is
    /// itself a rate (a derived row's sources are never derived).
    pub fn link_rate(&mut self, series: u32, count: u32) -> bool {
        let (Some(s), Some(c)) = (
            self.series.get(series as usize),
            self.series.get(count as usize),
        ) else {
            return false;
        };
        if series == count
            || s.hole
            || c.hole
            || s.schema != c.schema
            || c.rate_of().is_some()
            || s.rate_of() == Some(count)
        {
            return false;
        }
        self.unlink(series);
        let s = &mut self.series[series as usize];
        (s.hist, s.stat) = (count, StatCode(RATE_BITS));
        match self.count_rate.get(&count) {
            None => {
                self.count_rate.insert(count, series);
            }
            Some(_) => self.count_more_rates.entry(count).or_default().push(series),
        }
        true
    }

    /// Drops `series`' link from the way back, before it is linked anew.
    fn unlink(&mut self, series: u32) {
        let Some(s) = self.series.get(series as usize) else {
            return;
        };
        if let Some((old, _)) = s.link_code() {
            if let Some(v) = self.hist_stats.get_mut(&old) {
                v.retain(|&x| x != series);
            }
        } else if let Some(count) = s.rate_of() {
            let more = self.count_more_rates.get_mut(&count);
            if self.count_rate.get(&count) == Some(&series) {
                // The first of the others, if any, takes its place.
                match more.and_then(Vec::pop) {
                    Some(next) => self.count_rate.insert(count, next),
                    None => self.count_rate.remove(&count),
                };
            } else if let Some(v) = more {
                v.retain(|&x| x != series);
            }
            if self.count_more_rates.get(&count).is_some_and(Vec::is_empty) {
                self.count_more_rates.remove(&count);
            }
        }
    }

    /// The rates linked to count series `count`.
    pub fn rates_of(&self, count: u32) -> Vec<u32> {
        let mut out: Vec<u32> = self.count_rate.get(&count).copied().into_iter().collect();
        out.extend(self.count_more_rates.get(&count).into_iter().flatten());
        out
    }

    /// The link of a series stored before links were stored (a series
    /// record of 11 bytes): taken from Etsy's naming, as those versions
    /// did (`<timer>.upper_90` to histogram `<timer>`). Only the loader
    /// calls it, once every record is loaded; new series are linked by
    /// the emitter ([`Index::link`]).
    pub fn link_legacy(&mut self, series: u32) {
        let found = timer_stat(self.names.get(series))
            .and_then(|(base, code)| self.hist_id(base).map(|h| (h, code)));
        if let Some((h, code)) = found {
            self.link(series, h, code);
        } else if let Some(count) = self.counted_by_name(series) {
            self.link_rate(series, count);
        }
    }

    /// The count a rate was the rate of by Etsy's naming, for series stored
    /// before rate links were: `<B>.rate` and `<B>.count_ps` of `<B>.count`
    /// (tags kept), `stats.<K>` of `stats_counts.<K>` (the legacy
    /// namespace).
    fn counted_by_name(&self, series: u32) -> Option<u32> {
        let name = self.names.get(series);
        let (path, tags) = name.split_at(name.find(';').unwrap_or(name.len()));
        match path.rsplit_once('.') {
            Some((base, "rate" | "count_ps")) => self.id(&format!("{base}.count{tags}")),
            _ => self.id(&format!(
                "stats_counts.{}{tags}",
                path.strip_prefix("stats.")?
            )),
        }
    }

    /// Adds a histogram series.
    pub fn add_hist(&mut self, name: &str, schema: u16) -> u32 {
        let id = self.hist_names.push(name);
        debug_assert_eq!(id as usize, self.hists.len());
        self.hists.push(HistInfo {
            schema,
            hole: false,
        });
        put(
            &mut self.hist_by_name,
            &self.hist_names,
            &self.hasher,
            name,
            id,
        );
        id
    }

    /// The timer stats whose rollups come from histogram series `hist`.
    pub fn linked_to_hist(&self, hist: u32) -> Vec<u32> {
        self.hist_stats.get(&hist).cloned().unwrap_or_default()
    }

    /// Graphite's find: every path matching `pattern` level by level, in
    /// name order, with whether a series lives there and whether names go
    /// deeper. Each level is matched as graphite-web's standard finder
    /// matches a path component (`store::glob`), `**` included.
    pub fn find(&self, pattern: &str, limit: usize) -> Result<Vec<Found>, GlobError> {
        let levels: Vec<&str> = pattern.split('.').collect();
        // The root has the empty path; everything else its dotted name.
        let mut frontier: Vec<(String, u32)> = vec![(String::new(), 0)];
        for (depth, level) in levels.iter().enumerate() {
            let m = LevelMatcher::new(pattern, level)?;
            let last = depth + 1 == levels.len();
            // A literal's level is looked up once, not under every node.
            let atoms: Vec<(&str, Option<u32>)> = if m.is_literal() {
                m.literals
                    .iter()
                    .map(|l| (l.as_str(), self.atom(l)))
                    .collect()
            } else {
                Vec::new()
            };
            let mut next = Vec::new();
            for (path, node) in &frontier {
                self.matching_children(path, *node, &m, &atoms, &mut next);
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
                        for (k, c) in self.children(*node) {
                            next.push((join(path, k), c));
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
                    unavailable: false,
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
                leaf: Some(self.nodes[n as usize].series).filter(|&s| s != NONE),
                branch: self.has_children(n),
            })
            .collect())
    }

    /// Children of `node` (at `path`) that match level `m` (whose literals,
    /// if it is only literals, are `atoms`), in name order.
    fn matching_children(
        &self,
        path: &str,
        node: u32,
        m: &LevelMatcher,
        atoms: &[(&str, Option<u32>)],
        out: &mut Vec<(String, u32)>,
    ) {
        // Exact names: one lookup each, unless braces made more of them
        // than there are children to scan.
        if m.is_literal() && atoms.len() <= self.child_count(node) {
            for &(l, atom) in atoms {
                if let Some(c) = atom.and_then(|a| self.child(node, a)) {
                    out.push((join(path, l), c));
                }
            }
            return;
        }
        let mut kids: Vec<(&str, u32)> =
            self.children(node).filter(|(k, _)| m.is_match(k)).collect();
        kids.sort_unstable_by(|a, b| a.0.cmp(b.0));
        out.extend(kids.into_iter().map(|(k, c)| (join(path, k), c)));
    }

    /// `node` and every node below it that has children (the directories
    /// graphite-web's `os.walk` visits), stopping past `limit`.
    fn walk(&self, path: &str, node: u32, out: &mut Vec<(String, u32)>, limit: usize) {
        let mut stack = vec![(path.to_string(), node)];
        while let Some((p, n)) = stack.pop() {
            if out.len() > limit {
                return;
            }
            for (k, c) in self.children(n) {
                if self.has_children(c) {
                    stack.push((join(&p, k), c));
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

    /// Heap bytes the index holds, from its containers' capacities (what
    /// it asked the allocator for, not malloc's own rounding). The tag
    /// postings are estimated (their B-tree nodes are not visible). Walks
    /// the tree's child lists, not the series: 2-4 ms at 1M series.
    pub fn heap_bytes(&self) -> usize {
        let table = |t: &HashTable<u32>| t.capacity() * 5;
        let tags: usize = self
            .tags
            .iter()
            .map(|(k, vals)| {
                k.capacity()
                    + vals
                        .iter()
                        .map(|(v, ids)| v.capacity() + ids.capacity() * 4 + 64)
                        .sum::<usize>()
                    + 64
            })
            .sum();
        self.names.heap_bytes()
            + table(&self.by_name)
            + self.series.capacity() * size_of::<SeriesInfo>()
            + self.hist_names.heap_bytes()
            + table(&self.hist_by_name)
            + self.hists.capacity() * size_of::<HistInfo>()
            + self.atoms.heap_bytes()
            + table(&self.atom_ids)
            + self.nodes.capacity() * size_of::<Node>()
            + self.kids.capacity() * size_of::<Kids>()
            + self.kids.iter().map(Kids::heap_bytes).sum::<usize>()
            + tags
    }
}

#[cfg(test)]
mod tests {
    #![expect(
        clippy::cast_possible_truncation,
        reason = "test ids count a few thousand test names"
    )]
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
    fn stats_link_to_their_histogram_and_back() {
        let mut ix = Index::default();
        let h = ix.add_hist("stats.timers.api;env=prod", 0);
        let p90 = ix.add_series("stats.timers.api.upper_90;env=prod", 0, Method::Max, 0.1);
        let p999 = ix.add_series("stats.timers.api.upper_99_9;env=prod", 0, Method::Max, 0.1);
        let code = |f: &str| StatCode::of_field(f).unwrap();
        assert!(ix.link(p90, h, code("upper_90")));
        assert!(!ix.link(p90, h, code("upper_90")), "the same link twice");
        assert!(ix.link(p999, h, code("upper_99_9")));
        assert_eq!(
            ix.series[p90 as usize].link(),
            Some((h, Stat::Quantile(0.9)))
        );
        let (_, Stat::Quantile(q)) = ix.series[p999 as usize].link().unwrap() else {
            panic!("99.9 is a quantile");
        };
        assert!((q - 0.999).abs() < 1e-12);
        let mut back = ix.linked_to_hist(h);
        back.sort_unstable();
        assert_eq!(back, vec![p90, p999]);
        // Relinked elsewhere, it leaves the first histogram's list.
        let h2 = ix.add_hist("stats.timers.web", 0);
        assert!(ix.link(p999, h2, code("mean")));
        assert_eq!(ix.linked_to_hist(h), vec![p90]);
        assert_eq!(ix.linked_to_hist(h2), vec![p999]);
        // Not across schemas, nor to what is not there.
        let other = ix.add_series("x.upper_90", 1, Method::Max, 0.1);
        assert!(!ix.link(other, h, code("upper_90")));
        assert!(!ix.link(other, 99, code("upper_90")));
        for f in [
            "upper",
            "lower_90",
            "count",
            "upper_0",
            "upper_101",
            "upper_9x",
        ] {
            assert_eq!(StatCode::of_field(f), None, "{f}");
        }
        for f in [
            "upper_90",
            "upper_99_9",
            "median",
            "mean",
            "std",
            "upper_100",
        ] {
            let c = code(f);
            assert_eq!(StatCode::from_bits(c.to_bits()), Some(c), "{f}");
        }
        assert_eq!(StatCode::from_bits(2), None, "0.0 % is no stat");
    }

    /// Series stored before links were stored are linked by Etsy's naming
    /// when loaded, whichever came first.
    #[test]
    fn legacy_series_link_by_name() {
        let mut ix = Index::default();
        let p90 = ix.add_series("stats.timers.api.upper_90", 0, Method::Max, 0.1);
        let upper = ix.add_series("stats.timers.api.upper", 0, Method::Max, 0.1);
        let h = ix.add_hist("stats.timers.api", 0);
        let med = ix.add_series("stats.timers.api.median", 0, Method::Average, 0.3);
        assert_eq!(
            ix.series[p90 as usize].link(),
            None,
            "not linked by name any more"
        );
        for id in [p90, upper, med] {
            ix.link_legacy(id);
        }
        assert_eq!(
            ix.series[p90 as usize].link(),
            Some((h, Stat::Quantile(0.9)))
        );
        assert_eq!(
            ix.series[med as usize].link(),
            Some((h, Stat::Quantile(0.5)))
        );
        assert_eq!(ix.series[upper as usize].link(), None);
        // Rates by Etsy's names, in both namespaces, tags kept.
        let add = |ix: &mut Index, n: &str| ix.add_series(n, 0, Method::Sum, 0.0);
        let pairs = [
            ("stats.hits;dc=eu", Some("stats_counts.hits;dc=eu")),
            (
                "stats.counters.hits.rate",
                Some("stats.counters.hits.count"),
            ),
            ("stats.timers.api.count_ps", Some("stats.timers.api.count")),
            ("stats.gauges.q", None),
            ("other.rate", None),
        ];
        for (rate, count) in pairs {
            let r = add(&mut ix, rate);
            let c = count.map(|c| add(&mut ix, c));
            ix.link_legacy(r);
            assert_eq!(ix.series[r as usize].rate_of(), c, "{rate}");
            assert_eq!(ix.series[r as usize].link(), None, "{rate}");
        }
    }

    /// A rate links to its count and back; never to itself, across
    /// schemas, to a rate, or to what is not there; relinked as a timer
    /// stat, it leaves its count's list.
    #[test]
    fn rates_link_to_their_counts_and_back() {
        let mut ix = Index::default();
        let add = |ix: &mut Index, n: &str, schema| ix.add_series(n, schema, Method::Sum, 0.0);
        let count = add(&mut ix, "a.count", 0);
        let rate = add(&mut ix, "a.per_second", 0);
        let rate2 = add(&mut ix, "a.per_minute", 0);
        assert!(ix.link_rate(rate, count));
        assert!(!ix.link_rate(rate, count), "the same link twice");
        assert!(ix.link_rate(rate2, count));
        assert_eq!(ix.series[rate as usize].rate_of(), Some(count));
        assert_eq!(ix.series[rate as usize].link(), None);
        assert_eq!(ix.series[rate as usize].link_code(), None);
        assert_eq!(
            ix.series[rate as usize].record_link(),
            Some((count, RATE_BITS))
        );
        let mut back = ix.rates_of(count);
        back.sort_unstable();
        assert_eq!(back, vec![rate, rate2]);
        let other = add(&mut ix, "b.count", 1);
        assert!(!ix.link_rate(count, count), "itself");
        assert!(!ix.link_rate(other, count), "across schemas");
        assert!(!ix.link_rate(count, rate), "to a rate");
        assert!(!ix.link_rate(count, 999), "to nothing");
        let h = ix.add_hist("a", 0);
        assert!(ix.link(rate2, h, StatCode::of_field("mean").unwrap()));
        assert_eq!(ix.rates_of(count), vec![rate]);
        assert_eq!(ix.series[rate2 as usize].rate_of(), None);
        assert_eq!(ix.linked_to_hist(h), vec![rate2]);
        // The first rate moved elsewhere: the other stays the count's.
        assert!(ix.link_rate(rate2, count));
        let count2 = add(&mut ix, "c.count", 0);
        assert!(ix.link_rate(rate, count2));
        assert_eq!(ix.rates_of(count), vec![rate2]);
        assert_eq!(ix.rates_of(count2), vec![rate]);
    }

    /// The layout the memory figures rest on.
    #[test]
    fn a_series_and_a_node_stay_small() {
        assert_eq!(size_of::<SeriesInfo>(), 16);
        assert_eq!(size_of::<HistInfo>(), 4);
        assert_eq!(size_of::<Node>(), 8);
        assert_eq!(size_of::<Kids>(), 24);
    }

    /// Names on both sides of a chunk boundary, and one longer than what
    /// the chunk had left, come back whole.
    #[test]
    fn the_arena_keeps_names_across_chunks() {
        let mut a = Arena::default();
        let mut want = Vec::new();
        let mut total = 0;
        let mut i = 0;
        while total < 3 * CHUNK {
            let s = format!("{i}.").repeat(1 + i % 700);
            total += s.len();
            assert_eq!(a.push(&s) as usize, want.len());
            want.push(s);
            i += 1;
        }
        a.push("");
        want.push(String::new());
        assert!(a.chunks.len() >= 3, "{}", a.chunks.len());
        for (i, w) in want.iter().enumerate() {
            assert_eq!(a.get(i as u32), w, "string {i}");
        }
    }

    /// A node past FEW children becomes a map and still finds, lists and
    /// sorts them all.
    #[test]
    fn a_wide_level_finds_every_child() {
        let names: Vec<String> = (0..500).rev().map(|i| format!("w.n{i:03}.x")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let ix = index(&refs);
        let found = paths(&ix, "w.*.x");
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(found, sorted);
        assert_eq!(paths(&ix, "w.n42?.x").len(), 10);
        assert_eq!(paths(&ix, "w.{n007,n499,n500}.x"), ["w.n007.x", "w.n499.x"]);
        for (i, n) in names.iter().enumerate() {
            assert_eq!(ix.id(n), Some(i as u32));
            assert_eq!(ix.name(i as u32), n);
        }
        assert_eq!(ix.id("w.n500.x"), None);
        assert_eq!(ix.id("w.n001"), None, "a branch is not a series");
    }

    #[test]
    fn names_holes_and_histograms_keep_their_ids() {
        let mut ix = Index::default();
        let a = ix.add_series("a.b", 0, Method::Sum, 0.0);
        let hole = ix.add_hole(false);
        let hhole = ix.add_hole(true);
        let h = ix.add_hist("a.b", 3);
        let c = ix.add_series("a.c;k=v", 1, Method::Max, 0.25);
        assert_eq!((a, hole, c, hhole, h), (0, 1, 2, 0, 1));
        assert_eq!(ix.name(hole), "");
        assert!(ix.series[hole as usize].hole && !ix.series[a as usize].hole);
        assert_eq!(ix.id(""), None, "a hole has no name to reach it by");
        assert_eq!(ix.hist_id("a.b"), Some(h));
        assert_eq!(ix.hist_name(h), "a.b");
        assert_eq!(ix.hists[h as usize].schema, 3);
        assert_eq!(ix.id("a.c;k=v"), Some(c));
        let s = ix.series[c as usize];
        assert_eq!((s.schema, s.method, s.xff), (1, Method::Max, 0.25));
        assert!(ix.heap_bytes() > 0);
    }

    /// `heap_bytes` is what the index holds: within 10% of the allocator's
    /// count is checked by benches/index.rs; here, that it grows with the
    /// series and counts the names.
    #[test]
    fn heap_bytes_grow_with_the_names() {
        let mut ix = Index::default();
        let empty = ix.heap_bytes();
        for i in 0..10_000 {
            ix.add_series(
                &format!("some.fairly.long.prefix.series_{i}"),
                0,
                Method::Sum,
                0.0,
            );
        }
        let grown = ix.heap_bytes() - empty;
        assert!(grown > 10_000 * 50, "{grown}");
    }

    /// A percentile's code gives the very f64 the name's decimal parses
    /// to (what derived rows store and compare), and refuses what it
    /// cannot hold instead of rounding it.
    #[test]
    fn percentiles_are_kept_exactly() {
        let parsed = |p: &str| p.replacen('_', ".", 1).parse::<f64>().unwrap() / 100.0;
        let mut spellings: Vec<String> = [
            "90",
            "99",
            "99_9",
            "99_99",
            "99_999",
            "50",
            "0_1",
            "100",
            "75",
            "95",
            "33_333333",
            "99_999999",
            "0_000001",
            "007",
            "12_5",
            "1",
            "0_5",
            "66_6666",
        ]
        .map(String::from)
        .to_vec();
        spellings.extend((1..=1000).map(|i| format!("{}_{}", i / 10, i % 10)));
        spellings.extend((1..=999).map(|i| format!("99_{i:03}")));
        for p in &spellings {
            let code = StatCode::percentile(p).unwrap_or_else(|| panic!("{p}"));
            let Stat::Quantile(q) = code.stat() else {
                panic!("{p}");
            };
            assert_eq!(q.to_bits(), parsed(p).to_bits(), "{p}");
        }
        for p in [
            "0",
            "0_0",
            "100_1",
            "101",
            "",
            "_5",
            "9_",
            "9e1",
            "+90",
            "9_9_9",
            "nan",
            "inf",
            "134217728",
            "999999999",
            "99_9999999",
            "top10",
            "1_0000000000000000000000001",
        ] {
            assert_eq!(StatCode::percentile(p), None, "{p:?}");
        }
        assert_eq!(StatCode(CODE_MEAN).stat(), Stat::Mean);
        assert_eq!(StatCode(CODE_STD).stat(), Stat::Std);
        assert_eq!(
            timer_stat("a.median").unwrap().1.stat(),
            Stat::Quantile(0.5)
        );
    }
}
