//! The time-series store: rollupd's replacement for carbon-cache + whisper.
//!
//! Points arrive in batches (a statsd flush, a carbon connection's lines).
//! Each batch is appended whole to the write-ahead log, then applied to
//! open rows in memory: the finest archive takes it (whatever its age, so
//! a backfill rolls up as live traffic does), and every coarser archive's point for the same window is
//! recomputed from the finer row at once, with the series' aggregation
//! method and x-files-factor, as whisper's propagation does. A checkpoint
//! writes changed rows (pco-compressed) to the engine and drops the log it
//! covers; retention is a range delete per archive. docs/storage-format.md
//! has the bytes; ARCHITECTURE.md the invariants.
//!
//! Nothing here names RocksDB: the engine is a [`kv::Kv`].

pub mod derive;
pub mod glob;
pub mod hist;
pub mod index;
pub mod kv;
pub mod mem;
pub mod open;
#[cfg(feature = "rocksdb")]
pub mod rocks;
pub mod row;
pub mod schema;
pub mod wal;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

use self::derive::Source;
use self::hist::Hist;
use self::index::{Index, SeriesInfo, Stat};
use self::kv::{Batch, Kv, KvError, KvErrorKind, Space};
use self::open::{Lane, Shape};
use self::row::RowKey;
use self::schema::{Method, Retention, Rules, SchemaError};
use crate::config::StorageConfig;

/// Written to `Meta` at creation; a store with another value is refused.
pub const FORMAT_VERSION: &[u8] = b"rollupd-store-2";
/// Older formats this version reads, and upgrades (by rewriting the
/// marker) at open: `rollupd-store-1` lacked packed histogram rows and
/// derived rows, which it would misread, so it must refuse the store once
/// they may be in it.
const FORMAT_UPGRADES: &[&[u8]] = &[b"rollupd-store-1"];
const META_FORMAT: &[u8] = b"format";
const META_CHECKPOINT: &[u8] = b"checkpoint";
const META_SCHEMA: &[u8] = b"schema/";
/// `upto/` + schema + archive: the newest row start ever written for that
/// archive, so rows starting later are known not to exist.
const META_UPTO: &[u8] = b"upto/";
const SERIES_POINTS: u8 = b'p';
/// How often idle open rows are looked for.
const SEAL_EVERY: Duration = Duration::from_secs(30);
const SERIES_HISTS: u8 = b'h';

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the store in {path}: {source}")]
    Open { path: PathBuf, source: KvError },
    #[error("the store in {path} is not one this rollupd can read (format {found:?}, expected {expected:?})")]
    Format {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error("the store in {path} is damaged: {why}")]
    Damaged { path: PathBuf, why: String },
    #[error("storage rules: {0}")]
    Rules(#[from] SchemaError),
    #[error("store write failed: {0}")]
    Write(KvError),
    #[error("store read failed: {0}")]
    Read(KvError),
}

/// The store's counters, read by telemetry and `/metrics`.
#[derive(Debug, Default)]
pub struct StoreStats {
    pub points_accepted: AtomicU64,
    pub points_too_old: AtomicU64,
    pub points_too_new: AtomicU64,
    pub write_errors: AtomicU64,
    pub batches: AtomicU64,
    pub checkpoints: AtomicU64,
    pub checkpoint_errors: AtomicU64,
    pub last_checkpoint_ms: AtomicU64,
    pub rows_written: AtomicU64,
    pub log_bytes: AtomicU64,
    pub corrupt_rows: AtomicU64,
    pub replayed_batches: AtomicU64,
    pub write_nanos: AtomicU64,
}

/// What happened to one batch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub accepted: u64,
    pub too_old: u64,
    pub too_new: u64,
}

/// Histograms read from one archive: first slot's time, step, slots.
pub type HistWindow = (i64, u32, Vec<Option<Hist>>);

/// One point to store.
#[derive(Debug, Clone, Copy)]
pub struct Point<'a> {
    pub name: &'a str,
    pub timestamp: i64,
    pub value: f64,
}

/// What a read returns, in whisper's shape: `values[i]` is the point at
/// `from + i * step` (NaN = none), for `from <= t < until`.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched {
    pub from: i64,
    pub until: i64,
    pub step: u32,
    pub values: Vec<f64>,
}

#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub max_future: Duration,
    pub checkpoint_interval: Duration,
    pub checkpoint_log_bytes: u64,
    /// Unsaved rows that force a checkpoint (bounds memory after a row
    /// boundary seals every series at once).
    pub checkpoint_unsaved_rows: usize,
}

impl StoreOptions {
    pub fn from_config(cfg: &StorageConfig) -> Self {
        StoreOptions {
            max_future: cfg.max_future,
            checkpoint_interval: cfg.checkpoint_interval,
            checkpoint_log_bytes: cfg.checkpoint_log_bytes,
            checkpoint_unsaved_rows: 200_000,
        }
    }
}

struct Schemas {
    list: Vec<Retention>,
    shapes: Vec<Shape>,
    by_text: HashMap<String, u16>,
}

impl Schemas {
    fn add(&mut self, r: Retention) -> u16 {
        let id = self.list.len() as u16;
        self.by_text.insert(r.text.clone(), id);
        self.shapes.push(Shape {
            steps: r.archives.iter().map(|a| a.step).collect(),
            retentions: r.archives.iter().map(|a| a.retention()).collect(),
            spans: r.spans.clone(),
            slots: (0..r.archives.len()).map(|a| r.slots(a)).collect(),
        });
        self.list.push(r);
        id
    }
}

/// Per-series facts the write path needs, copied out of the index.
#[derive(Clone, Copy)]
struct Target {
    id: u32,
    schema: u16,
    method: Method,
    xff: f32,
    link: Option<(u32, Stat)>,
}

impl Inner {
    /// Bytes of log entries before `seq`, forgotten as they are covered.
    fn log_bytes_at(&mut self, seq: u64) -> u64 {
        let mut n = 0;
        while let Some(&(s, b)) = self.log_sizes.front() {
            if s >= seq {
                break;
            }
            n += b;
            self.log_sizes.pop_front();
        }
        n
    }
}

struct Inner {
    points: Lane<f64>,
    hists: Lane<Option<Hist>>,
    /// Series and schema records not yet known to be in the engine.
    /// (batch sequence, space, key, value).
    pending_records: Vec<(u64, Space, Vec<u8>, Vec<u8>)>,
    next_seq: u64,
    /// First log sequence the last checkpoint does not cover.
    checkpoint_seq: u64,
    log_bytes: u64,
    /// (sequence, bytes) of log entries not yet covered, for the log size
    /// left after a checkpoint.
    log_sizes: std::collections::VecDeque<(u64, u64)>,
    last_checkpoint: Instant,
    last_seal: Instant,
    /// A log append failed: memory holds points the log does not, so the
    /// next checkpoint must not wait for its interval.
    log_gap: bool,
}

pub struct Store {
    kv: Arc<dyn Kv>,
    path: PathBuf,
    rules: Rules,
    opts: StoreOptions,
    index: RwLock<Index>,
    schemas: RwLock<Schemas>,
    inner: Mutex<Inner>,
    /// Held for a whole checkpoint, so two never interleave.
    checkpointing: Mutex<()>,
    /// Batches are applied under its read side; the final compaction holds
    /// the write side, so no batch changes an open row between its snapshot
    /// and its commit (its derived rows may lean on open rows).
    gate: RwLock<()>,
    pub stats: StoreStats,
}

/// The first key after every key that starts with `prefix` (which ends in
/// a byte below 0xff, as ours all do).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    end
}

fn meta_schema_key(id: u16) -> Vec<u8> {
    [META_SCHEMA, &id.to_be_bytes()].concat()
}

fn series_record(
    kind: u8,
    name: &str,
    id: u32,
    schema: u16,
    method: Method,
    xff: f32,
) -> (Vec<u8>, Vec<u8>) {
    let mut key = Vec::with_capacity(name.len() + 1);
    key.push(kind);
    key.extend_from_slice(name.as_bytes());
    let mut v = Vec::with_capacity(11);
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(&schema.to_be_bytes());
    v.push(method.code());
    v.extend_from_slice(&xff.to_le_bytes());
    (key, v)
}

impl Store {
    /// Opens a store on an engine, loading its index and replaying its log.
    pub fn open(
        kv: Arc<dyn Kv>,
        path: &Path,
        cfg: &StorageConfig,
        now: i64,
    ) -> Result<Store, StoreError> {
        let rules = Rules::from_config(cfg)?;
        let opts = StoreOptions::from_config(cfg);
        let path = path.to_owned();
        let read_err = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        let damaged = |why: String| StoreError::Damaged {
            path: path.clone(),
            why,
        };
        match kv.get(Space::Meta, META_FORMAT).map_err(read_err)? {
            Some(v) if FORMAT_UPGRADES.contains(&v.as_slice()) => {
                let mut b = Batch::default();
                b.put(Space::Meta, META_FORMAT, FORMAT_VERSION);
                kv.write(b).map_err(read_err)?;
                tracing::info!(
                    from = %String::from_utf8_lossy(&v),
                    to = %String::from_utf8_lossy(FORMAT_VERSION),
                    "store format upgraded"
                );
            }
            Some(v) if v != FORMAT_VERSION => {
                return Err(StoreError::Format {
                    path: path.clone(),
                    found: String::from_utf8_lossy(&v).into_owned(),
                    expected: String::from_utf8_lossy(FORMAT_VERSION).into_owned(),
                })
            }
            Some(_) => {}
            None => {
                let mut b = Batch::default();
                b.put(Space::Meta, META_FORMAT, FORMAT_VERSION);
                kv.write(b).map_err(read_err)?;
            }
        }
        // Schemas, in id order.
        let mut schema_rows: Vec<(u16, String)> = Vec::new();
        let end = prefix_end(META_SCHEMA);
        kv.scan(Space::Meta, META_SCHEMA, &end, &mut |k, v| {
            if let Ok(id) = k[META_SCHEMA.len()..].try_into().map(u16::from_be_bytes) {
                schema_rows.push((id, String::from_utf8_lossy(v).into_owned()));
            }
            true
        })
        .map_err(read_err)?;
        schema_rows.sort();
        let mut schemas = Schemas {
            list: vec![],
            shapes: vec![],
            by_text: HashMap::new(),
        };
        for (id, text) in schema_rows {
            if id as usize != schemas.list.len() {
                return Err(damaged(format!("schema {id} is missing its predecessors")));
            }
            let r =
                Retention::parse(&text).map_err(|e| damaged(format!("stored schema {id}: {e}")))?;
            schemas.add(r);
        }
        // Series, then histograms (so links are made), each in id order.
        let mut index = Index::default();
        for kind in [SERIES_POINTS, SERIES_HISTS] {
            let mut recs: Vec<(u32, String, u16, u8, f32)> = Vec::new();
            kv.scan(Space::Series, &[kind], &[kind + 1], &mut |k, v| {
                if v.len() == 11 {
                    let id = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
                    let schema = u16::from_be_bytes([v[4], v[5]]);
                    let xff = f32::from_le_bytes([v[7], v[8], v[9], v[10]]);
                    recs.push((
                        id,
                        String::from_utf8_lossy(&k[1..]).into_owned(),
                        schema,
                        v[6],
                        xff,
                    ));
                }
                true
            })
            .map_err(read_err)?;
            recs.sort_by_key(|r| r.0);
            for (id, name, schema, method, xff) in recs {
                if schema as usize >= schemas.list.len() {
                    return Err(damaged(format!(
                        "series {name:?} names unknown schema {schema}"
                    )));
                }
                let method = Method::from_code(method).unwrap_or(Method::Average);
                // Ids are dense; a gap (a record lost with a failed write)
                // is filled with a placeholder that no name reaches.
                loop {
                    let len = if kind == SERIES_POINTS {
                        index.series.len()
                    } else {
                        index.hists.len()
                    } as u32;
                    if len >= id {
                        break;
                    }
                    let hole = format!("\u{0}hole{len}");
                    if kind == SERIES_POINTS {
                        index.add_series(&hole, schema, method, xff);
                    } else {
                        index.add_hist(&hole, schema);
                    }
                }
                if kind == SERIES_POINTS {
                    index.add_series(&name, schema, method, xff);
                } else {
                    index.add_hist(&name, schema);
                }
            }
        }
        let checkpoint_seq = match kv.get(Space::Meta, META_CHECKPOINT).map_err(read_err)? {
            Some(v) => u64::from_be_bytes(
                v.as_slice()
                    .try_into()
                    .map_err(|_| damaged("checkpoint record has the wrong length".into()))?,
            ),
            None => 0,
        };
        let mut points = Lane::default();
        let mut hists = Lane::default();
        let end = prefix_end(META_UPTO);
        kv.scan(Space::Meta, META_UPTO, &end, &mut |k, v| {
            let k = &k[META_UPTO.len()..];
            if let (Ok(k), Ok(v)) = (<[u8; 3]>::try_from(k), <[u8; 4]>::try_from(v)) {
                let at = (u16::from_be_bytes([k[0], k[1]]), k[2]);
                points.stored_upto.insert(at, u32::from_be_bytes(v));
                hists.stored_upto.insert(at, u32::from_be_bytes(v));
            }
            true
        })
        .map_err(read_err)?;
        let store = Store {
            kv,
            path,
            rules,
            opts,
            index: RwLock::new(index),
            schemas: RwLock::new(schemas),
            inner: Mutex::new(Inner {
                points,
                hists,
                pending_records: Vec::new(),
                next_seq: checkpoint_seq,
                checkpoint_seq,
                log_bytes: 0,
                log_sizes: std::collections::VecDeque::new(),
                last_checkpoint: Instant::now(),
                last_seal: Instant::now(),
                log_gap: false,
            }),
            checkpointing: Mutex::new(()),
            gate: RwLock::new(()),
            stats: StoreStats::default(),
        };
        store.replay()?;
        let _ = now;
        Ok(store)
    }

    /// A store on the in-memory engine (tests, benchmarks).
    pub fn in_memory(cfg: &StorageConfig) -> Result<Store, StoreError> {
        Store::open(Arc::new(mem::MemKv::new()), Path::new(":memory:"), cfg, 0)
    }

    pub fn kv(&self) -> &Arc<dyn Kv> {
        &self.kv
    }

    fn replay(&self) -> Result<(), StoreError> {
        let mut inner = self.inner.lock();
        let from = wal::key(inner.checkpoint_seq);
        let mut entries: Vec<(u64, wal::Entry)> = Vec::new();
        let mut bad = None;
        self.kv
            .scan(Space::Log, &from, &[0xff; 9], &mut |k, v| {
                match (wal::seq_of(k), wal::Entry::decode(v)) {
                    (Some(seq), Ok(e)) => entries.push((seq, e)),
                    (seq, Err(e)) => {
                        bad = Some(format!("log entry {seq:?}: {e}"));
                        return false;
                    }
                    (None, _) => {}
                }
                true
            })
            .map_err(|source| StoreError::Open {
                path: self.path.clone(),
                source,
            })?;
        if let Some(why) = bad {
            // A torn tail cannot happen with an atomic engine; a damaged
            // entry means damaged files. Keep what precedes it.
            tracing::error!(
                why,
                "write-ahead log damaged; replaying what precedes the damage"
            );
        }
        let index = self.index.read();
        let schemas = self.schemas.read();
        for (seq, e) in entries {
            let targets: Vec<Option<Target>> =
                e.points.iter().map(|p| target(&index, p.0)).collect();
            let htargets: Vec<Option<(u32, u16)>> = e
                .hists
                .iter()
                .map(|h| index.hists.get(h.0 as usize).map(|i| (h.0, i.schema)))
                .collect();
            inner.points.stamp = seq;
            inner.hists.stamp = seq;
            let w = self.apply(&mut inner, &index, &schemas, &e, &targets, &htargets);
            if let Err(err) = w {
                return Err(StoreError::Open {
                    path: self.path.clone(),
                    source: err,
                });
            }
            inner.next_seq = seq + 1;
            self.stats.replayed_batches.fetch_add(1, Relaxed);
        }
        Ok(())
    }

    /// Stores a batch of points and timer histograms (histograms are named
    /// like the timer's branch). Returns what was accepted; an engine
    /// failure is counted and returned, and the points stay in memory (and
    /// reads) until a checkpoint can write them.
    pub fn write(
        &self,
        points: &[Point<'_>],
        hists: &[(&str, i64, Hist)],
        now: i64,
    ) -> Result<Written, StoreError> {
        let started = Instant::now();
        let _gate = self.gate.read();
        let mut records: Vec<(Space, Vec<u8>, Vec<u8>)> = Vec::new();
        let (targets, htargets) = self.resolve(points, hists, &mut records);
        let entry = wal::Entry {
            now,
            points: points
                .iter()
                .zip(&targets)
                .filter_map(|(p, t)| t.map(|t| (t.id, p.timestamp, p.value)))
                .collect(),
            hists: hists
                .iter()
                .zip(&htargets)
                .filter_map(|((_, ts, h), t)| t.map(|t| (t.0, *ts, h.clone())))
                .collect(),
        };
        let targets: Vec<Option<Target>> = targets.into_iter().flatten().map(Some).collect();
        let htargets: Vec<Option<(u32, u16)>> = htargets.into_iter().flatten().map(Some).collect();
        let bytes = entry.encode();
        // The index before the rest (as a checkpoint takes them): applying
        // reads it to pin derived rows.
        let index = self.index.read();
        let schemas = self.schemas.read();
        let mut inner = self.inner.lock();
        let seq = inner.next_seq;
        inner.next_seq += 1;
        inner
            .pending_records
            .extend(records.into_iter().map(|(s, k, v)| (seq, s, k, v)));
        let mut batch = Batch::default();
        for (_, space, k, v) in &inner.pending_records {
            batch.put(*space, k.clone(), v.clone());
        }
        batch.put(Space::Log, wal::key(seq).to_vec(), bytes.clone());
        let logged = self.kv.write(batch);
        let mut result_err = None;
        match logged {
            Ok(()) => {
                inner.pending_records.clear();
                inner.log_bytes += bytes.len() as u64;
                inner.log_sizes.push_back((seq, bytes.len() as u64));
                self.stats.log_bytes.store(inner.log_bytes, Relaxed);
            }
            Err(e) => {
                inner.log_gap = true;
                self.stats.write_errors.fetch_add(1, Relaxed);
                result_err = Some(e);
            }
        }
        inner.points.stamp = seq;
        inner.hists.stamp = seq;
        let applied = self.apply(&mut inner, &index, &schemas, &entry, &targets, &htargets);
        drop(inner);
        drop(index);
        self.stats.batches.fetch_add(1, Relaxed);
        self.stats
            .write_nanos
            .fetch_add(started.elapsed().as_nanos() as u64, Relaxed);
        let written = match applied {
            Ok(w) => w,
            Err(e) => {
                self.stats.write_errors.fetch_add(1, Relaxed);
                return Err(StoreError::Write(e));
            }
        };
        self.stats
            .points_accepted
            .fetch_add(written.accepted, Relaxed);
        self.stats
            .points_too_old
            .fetch_add(written.too_old, Relaxed);
        self.stats
            .points_too_new
            .fetch_add(written.too_new, Relaxed);
        match result_err {
            Some(e) => Err(StoreError::Write(e)),
            None => Ok(written),
        }
    }

    /// Names to ids, creating series (and their schema) on first sight.
    #[allow(clippy::type_complexity)]
    fn resolve(
        &self,
        points: &[Point<'_>],
        hists: &[(&str, i64, Hist)],
        records: &mut Vec<(Space, Vec<u8>, Vec<u8>)>,
    ) -> (Vec<Option<Target>>, Vec<Option<(u32, u16)>>) {
        {
            let index = self.index.read();
            let known = points.iter().all(|p| index.id(p.name).is_some())
                && hists.iter().all(|h| index.hist_id(h.0).is_some());
            if known {
                return (
                    points
                        .iter()
                        .map(|p| index.id(p.name).and_then(|id| target(&index, id)))
                        .collect(),
                    hists
                        .iter()
                        .map(|h| {
                            index
                                .hist_id(h.0)
                                .map(|id| (id, index.hists[id as usize].schema))
                        })
                        .collect(),
                );
            }
        }
        let mut index = self.index.write();
        let mut hts = Vec::with_capacity(hists.len());
        for (name, _, _) in hists {
            let id = match index.hist_id(name) {
                Some(id) => id,
                None => {
                    let a = self.rules.assign(name);
                    let schema = self.schema_id(&a.retention, records);
                    let id = index.add_hist(name, schema);
                    let (k, v) = series_record(SERIES_HISTS, name, id, schema, Method::Sum, 0.0);
                    records.push((Space::Series, k, v));
                    id
                }
            };
            hts.push(Some((id, index.hists[id as usize].schema)));
        }
        let mut ts = Vec::with_capacity(points.len());
        for p in points {
            let id = match index.id(p.name) {
                Some(id) => id,
                None => {
                    let a = self.rules.assign(p.name);
                    let schema = self.schema_id(&a.retention, records);
                    let id = index.add_series(p.name, schema, a.method, a.xff);
                    let (k, v) = series_record(SERIES_POINTS, p.name, id, schema, a.method, a.xff);
                    records.push((Space::Series, k, v));
                    id
                }
            };
            ts.push(target(&index, id));
        }
        (ts, hts)
    }

    fn schema_id(&self, text: &str, records: &mut Vec<(Space, Vec<u8>, Vec<u8>)>) -> u16 {
        if let Some(&id) = self.schemas.read().by_text.get(text) {
            return id;
        }
        let mut schemas = self.schemas.write();
        if let Some(&id) = schemas.by_text.get(text) {
            return id;
        }
        // Rules were validated at start-up, so their texts parse.
        let r = Retention::parse(text).unwrap_or_else(|_| {
            Retention::parse(schema::DEFAULT_RETENTION).unwrap_or_else(|_| unreachable!())
        });
        let id = schemas.add(r);
        records.push((Space::Meta, meta_schema_key(id), text.as_bytes().to_vec()));
        let mut inner = self.inner.lock();
        let shape_archives = schemas.shapes[id as usize].spans.len();
        for a in 0..shape_archives {
            // A new schema has no stored rows.
            inner.points.stored_upto.insert((id, a as u8), 0);
            inner.hists.stored_upto.insert((id, a as u8), 0);
        }
        id
    }

    /// Applies one batch to memory: histograms first (their rollups feed
    /// the timer stats' rollups), then points.
    fn apply(
        &self,
        inner: &mut Inner,
        index: &Index,
        schemas: &Schemas,
        e: &wal::Entry,
        targets: &[Option<Target>],
        htargets: &[Option<(u32, u16)>],
    ) -> Result<Written, KvError> {
        let kv = &*self.kv;
        let mut w = Written::default();
        let max_future = self.opts.max_future.as_secs() as i64;
        for ((_, ts, h), t) in e.hists.iter().zip(htargets) {
            let Some((id, schema)) = *t else { continue };
            let r = &schemas.list[schema as usize];
            if *ts > e.now + max_future {
                continue;
            }
            if r.archive_for_age(e.now - ts).is_none() {
                continue;
            }
            let shape = &schemas.shapes[schema as usize];
            put_hist(inner, kv, index, shape, id, schema, *ts, h.clone())?;
        }
        for (&(_, ts, v), t) in e.points.iter().zip(targets) {
            let Some(t) = *t else { continue };
            if ts > e.now + max_future || ts < 0 || ts > u32::MAX as i64 {
                w.too_new += 1;
                continue;
            }
            let r = &schemas.list[t.schema as usize];
            if r.archive_for_age(e.now - ts).is_none() {
                w.too_old += 1;
                continue;
            }
            let shape = &schemas.shapes[t.schema as usize];
            put_point(inner, kv, index, shape, &t, ts, v)?;
            w.accepted += 1;
        }
        Ok(w)
    }

    /// whisper's fetch, on our rows.
    pub fn fetch(
        &self,
        id: u32,
        from: i64,
        until: i64,
        now: i64,
    ) -> Result<Option<Fetched>, StoreError> {
        let schema = match self.index.read().series.get(id as usize) {
            Some(s) => s.schema,
            None => return Ok(None),
        };
        let (mut from, mut until) = (from, until);
        if from > until {
            std::mem::swap(&mut from, &mut until);
        }
        let schemas = self.schemas.read();
        let r = &schemas.list[schema as usize];
        let shape = schemas.shapes[schema as usize].clone();
        let oldest = now - r.max_retention() as i64;
        if from > now || until < oldest {
            return Ok(None);
        }
        from = from.max(oldest);
        until = until.min(now);
        let a = r.archive_for_read(now - from);
        drop(schemas);
        let step = shape.steps[a] as i64;
        let from_i = from - from.rem_euclid(step) + step;
        let mut until_i = until - until.rem_euclid(step) + step;
        if from_i == until_i {
            until_i += step;
        }
        let n = ((until_i - from_i) / step) as usize;
        let mut values = vec![f64::NAN; n];
        self.read_range(id, schema, a, &shape, from_i, &mut values)?;
        Ok(Some(Fetched {
            from: from_i,
            until: until_i,
            step: step as u32,
            values,
        }))
    }

    /// Fills `out[i]` with the point at `from + i * step` of one archive.
    fn read_range(
        &self,
        id: u32,
        schema: u16,
        a: usize,
        shape: &Shape,
        from: i64,
        out: &mut [f64],
    ) -> Result<(), StoreError> {
        let step = shape.steps[a] as i64;
        let span = shape.spans[a] as i64;
        let slots = shape.slots[a] as usize;
        let until = from + out.len() as i64 * step;
        let mut missing: Vec<(i64, Vec<u8>)> = Vec::new();
        {
            let inner = self.inner.lock();
            let mut start = from.max(0) - from.max(0).rem_euclid(span);
            while start < until {
                if start >= 0 && start <= u32::MAX as i64 {
                    let first = ((from.max(start) - start) / step) as usize;
                    let last = (((until.min(start + span)) - start) / step) as usize;
                    match inner
                        .points
                        .window(id, schema, a, start as u32, first, last - first)
                    {
                        Some(vals) => {
                            let at = ((start + first as i64 * step - from) / step) as usize;
                            for (i, v) in vals.into_iter().enumerate() {
                                if let Some(o) = out.get_mut(at + i) {
                                    *o = v;
                                }
                            }
                        }
                        None => missing.push((
                            start,
                            RowKey {
                                schema,
                                archive: a as u8,
                                start: start as u32,
                                series: id,
                            }
                            .encode()
                            .to_vec(),
                        )),
                    }
                }
                start += span;
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        let keys: Vec<Vec<u8>> = missing.iter().map(|m| m.1.clone()).collect();
        let rows = self
            .kv
            .multi_get(Space::Rows, &keys)
            .map_err(StoreError::Read)?;
        for ((start, _), row) in missing.into_iter().zip(rows) {
            let Some(bytes) = row else { continue };
            let key = RowKey {
                schema,
                archive: a as u8,
                start: start as u32,
                series: id,
            };
            let vals = match derive::decode(&bytes, slots, key, &*self.kv) {
                Ok(v) => v,
                Err(e) => {
                    self.stats.corrupt_rows.fetch_add(1, Relaxed);
                    tracing::error!(series = id, start, error = %e, "corrupt row read as empty");
                    continue;
                }
            };
            for (i, v) in vals.into_iter().enumerate() {
                let t = start + i as i64 * step;
                if t >= from && t < until {
                    out[((t - from) / step) as usize] = v;
                }
            }
        }
        Ok(())
    }

    /// A timer's merged histogram over `[from, until)` at the archive a
    /// read from `from` would use, with that archive's step.
    pub fn fetch_hists(
        &self,
        id: u32,
        from: i64,
        until: i64,
        now: i64,
    ) -> Result<Option<HistWindow>, StoreError> {
        let schema = match self.index.read().hists.get(id as usize) {
            Some(h) => h.schema,
            None => return Ok(None),
        };
        let schemas = self.schemas.read();
        let r = &schemas.list[schema as usize];
        let shape = schemas.shapes[schema as usize].clone();
        let oldest = now - r.max_retention() as i64;
        let (from, until) = (from.max(oldest), until.min(now));
        if from > until {
            return Ok(None);
        }
        let a = r.archive_for_read(now - from);
        drop(schemas);
        let step = shape.steps[a] as i64;
        let span = shape.spans[a] as i64;
        let from_i = from - from.rem_euclid(step) + step;
        let until_i = (until - until.rem_euclid(step) + step).max(from_i + step);
        let n = ((until_i - from_i) / step) as usize;
        let mut out: Vec<Option<Hist>> = vec![None; n];
        let mut start = from_i - from_i.rem_euclid(span);
        while start < until_i {
            let slots = shape.slots[a] as usize;
            let in_mem = self
                .inner
                .lock()
                .hists
                .window(id, schema, a, start as u32, 0, slots);
            let row = match in_mem {
                Some(r) => r,
                None => {
                    let key = RowKey {
                        schema,
                        archive: a as u8,
                        start: start as u32,
                        series: id,
                    };
                    match self
                        .kv
                        .get(Space::Hists, &key.encode())
                        .map_err(StoreError::Read)?
                    {
                        Some(b) => {
                            hist::decode_row(&b, slots).unwrap_or_else(|_| vec![None; slots])
                        }
                        None => vec![None; slots],
                    }
                }
            };
            for (i, h) in row.into_iter().enumerate() {
                let t = start + i as i64 * step;
                if t >= from_i && t < until_i {
                    out[((t - from_i) / step) as usize] = h;
                }
            }
            start += span;
        }
        Ok(Some((from_i, step as u32, out)))
    }

    /// Seals rows whose time has passed, checkpoints when due, enforces
    /// retention. Called every few seconds by the maintenance thread.
    pub fn maintain(&self, now: i64, force_checkpoint: bool) -> Result<(), StoreError> {
        // Sealing walks every series; a row's end passing is a matter of
        // minutes, so every 30 s (and before a forced checkpoint) is enough.
        let seal_due = {
            let mut inner = self.inner.lock();
            let due = force_checkpoint || inner.last_seal.elapsed() >= SEAL_EVERY;
            if due {
                inner.last_seal = Instant::now();
            }
            due
        };
        if seal_due {
            self.seal_idle(now);
        }
        let due = {
            let inner = self.inner.lock();
            force_checkpoint
                || inner.log_gap
                || inner.last_checkpoint.elapsed() >= self.opts.checkpoint_interval
                || inner.log_bytes >= self.opts.checkpoint_log_bytes
                || inner.points.unsaved.len() + inner.hists.unsaved.len()
                    >= self.opts.checkpoint_unsaved_rows
        };
        if due {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// Moves open rows that ended more than a grace period ago out of the
    /// open set, so idle series hold no memory.
    fn seal_idle(&self, now: i64) {
        let index = self.index.read();
        let schemas = self.schemas.read();
        let cutoff = |schema: u16, a: usize| -> u64 {
            let step = schemas.shapes[schema as usize].steps[a] as i64;
            (now - 2 * step - 120).max(0) as u64
        };
        let point_schema = |sid: u32| index.series.get(sid as usize).map(|s| s.schema);
        let hist_schema = |sid: u32| index.hists.get(sid as usize).map(|s| s.schema);
        let mut inner = self.inner.lock();
        inner
            .points
            .seal_older(&schemas.shapes, &point_schema, &cutoff);
        inner
            .hists
            .seal_older(&schemas.shapes, &hist_schema, &cutoff);
    }

    /// Writes every changed row and drops the log they cover, atomically.
    /// Rows are copied under the lock and encoded outside it, so writers
    /// wait only for the copy. Sealed rows are compressed; open rows are
    /// written raw (cheap, rewritten at every checkpoint until they seal).
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.checkpoint_with(false)
    }

    /// A checkpoint that also compresses open rows: at shutdown, so a
    /// stopped store is as small as it gets.
    pub fn checkpoint_compact(&self) -> Result<(), StoreError> {
        let _no_batches = self.gate.write();
        self.checkpoint_with(true)
    }

    fn checkpoint_with(&self, compress_open: bool) -> Result<(), StoreError> {
        let _one_at_a_time = self.checkpointing.lock();
        let started = Instant::now();
        let (rows, hrows, covered, records, plans) = {
            let index = self.index.read();
            let schemas = self.schemas.read();
            let point_schema = |sid: u32| index.series.get(sid as usize).map(|s| s.schema);
            let hist_schema = |sid: u32| index.hists.get(sid as usize).map(|s| s.schema);
            let (rows, hrows, covered, records) = {
                let inner = self.inner.lock();
                (
                    inner
                        .points
                        .snapshot(&schemas.shapes, &point_schema, compress_open),
                    inner
                        .hists
                        .snapshot(&schemas.shapes, &hist_schema, compress_open),
                    inner.next_seq,
                    inner.pending_records.clone(),
                )
            };
            let step_of = |schema: u16, a: u8| {
                schemas
                    .shapes
                    .get(schema as usize)
                    .and_then(|s| s.steps.get(a as usize).copied())
            };
            let plans = derive::plan(&index, &step_of, &rows, &hrows, compress_open);
            (rows, hrows, covered, records, plans)
        };
        let encoded = derive::encode_rows(&rows, &hrows, &plans, compress_open);
        let hrows = Lane::<Option<Hist>>::encode(&hrows, compress_open);
        let rows = encoded;
        let mut batch = Batch::default();
        for (_, space, k, v) in &records {
            batch.put(*space, k.clone(), v.clone());
        }
        for (space, list) in [(Space::Rows, &rows), (Space::Hists, &hrows)] {
            for (key, bytes) in list {
                match bytes {
                    Some(b) => batch.put(space, key.encode().to_vec(), b.clone()),
                    None => batch.delete(space, key.encode().to_vec()),
                }
            }
        }
        let mut upto: HashMap<(u16, u8), u32> = HashMap::new();
        for (key, _) in rows.iter().chain(hrows.iter()) {
            let e = upto.entry((key.schema, key.archive)).or_insert(0);
            *e = (*e).max(key.start);
        }
        {
            let inner = self.inner.lock();
            for ((schema, archive), start) in upto {
                let known = |l: &HashMap<(u16, u8), u32>| l.get(&(schema, archive)).copied();
                let start = start
                    .max(known(&inner.points.stored_upto).unwrap_or(0))
                    .max(known(&inner.hists.stored_upto).unwrap_or(0));
                let key = [META_UPTO, &schema.to_be_bytes()[..], &[archive]].concat();
                batch.put(Space::Meta, key, start.to_be_bytes().to_vec());
            }
        }
        batch.put(Space::Meta, META_CHECKPOINT, covered.to_be_bytes().to_vec());
        batch.delete_range(Space::Log, wal::key(0).to_vec(), wal::key(covered).to_vec());
        let result = self.kv.write(batch);
        let mut inner = self.inner.lock();
        match result {
            Ok(()) => {
                inner.points.commit(&rows, covered);
                inner.hists.commit(&hrows, covered);
                if compress_open {
                    // Derived rows written now may lean on open rows; see
                    // `Lane::close_clean`.
                    inner.points.close_clean(covered);
                    inner.hists.close_clean(covered);
                }
                for (key, _) in rows.iter().chain(hrows.iter()) {
                    inner.points.mark_stored(key.schema, key.archive, key.start);
                    inner.hists.mark_stored(key.schema, key.archive, key.start);
                }
                inner.pending_records.retain(|r| r.0 >= covered);
                inner.checkpoint_seq = covered;
                inner.log_bytes = inner.log_bytes.saturating_sub(inner.log_bytes_at(covered));
                inner.log_gap = false;
                inner.last_checkpoint = Instant::now();
                self.stats.log_bytes.store(inner.log_bytes, Relaxed);
                self.stats.checkpoints.fetch_add(1, Relaxed);
                self.stats
                    .rows_written
                    .fetch_add((rows.len() + hrows.len()) as u64, Relaxed);
                self.stats
                    .last_checkpoint_ms
                    .store(started.elapsed().as_millis() as u64, Relaxed);
                self.stats.corrupt_rows.fetch_max(
                    inner.points.corrupt_rows + inner.hists.corrupt_rows,
                    Relaxed,
                );
                Ok(())
            }
            Err(e) => {
                self.stats.checkpoint_errors.fetch_add(1, Relaxed);
                self.stats.write_errors.fetch_add(1, Relaxed);
                // Retry soon rather than after a whole interval.
                inner.log_gap = true;
                Err(StoreError::Write(e))
            }
        }
    }

    /// Deletes rows older than each archive keeps. Returns rows' archives
    /// touched.
    pub fn enforce_retention(&self, now: i64) -> Result<usize, StoreError> {
        let schemas = self.schemas.read();
        let mut batch = Batch::default();
        let mut ranges = Vec::new();
        let mut inner = self.inner.lock();
        for (sid, (r, shape)) in schemas.list.iter().zip(&schemas.shapes).enumerate() {
            for (a, arch) in r.archives.iter().enumerate() {
                let cutoff = now - arch.retention() as i64;
                // Rows that end at or before the cutoff hold nothing a read
                // can reach.
                let end_start = cutoff - shape.spans[a] as i64 + 1;
                if end_start <= 0 {
                    continue;
                }
                let end_start = end_start.min(u32::MAX as i64) as u32;
                let from = RowKey::prefix(sid as u16, a as u8, 0).to_vec();
                let to = RowKey::prefix(sid as u16, a as u8, end_start).to_vec();
                batch.delete_range(Space::Rows, from.clone(), to.clone());
                batch.delete_range(Space::Hists, from.clone(), to.clone());
                ranges.push((from, to));
                inner
                    .points
                    .expire(sid as u16, a, shape.spans[a], cutoff.max(0) as u32);
                inner
                    .hists
                    .expire(sid as u16, a, shape.spans[a], cutoff.max(0) as u32);
            }
        }
        drop(inner);
        if batch.is_empty() {
            return Ok(0);
        }
        self.kv.write(batch).map_err(StoreError::Write)?;
        for (from, to) in &ranges {
            self.kv.compact(Space::Rows, from, to);
            self.kv.compact(Space::Hists, from, to);
        }
        Ok(ranges.len())
    }

    /// The series index, for find and render.
    pub fn index(&self) -> parking_lot::RwLockReadGuard<'_, Index> {
        self.index.read()
    }

    /// The step and retention text of a series' schema.
    pub fn retention_of(&self, schema: u16) -> Option<Retention> {
        self.schemas.read().list.get(schema as usize).cloned()
    }

    pub fn disk_bytes(&self) -> u64 {
        self.kv.disk_bytes()
    }

    /// Rows held in memory (open and unsaved), for telemetry.
    pub fn rows_in_memory(&self) -> usize {
        let inner = self.inner.lock();
        inner.points.open_rows()
            + inner.hists.open_rows()
            + inner.points.unsaved.len()
            + inner.hists.unsaved.len()
    }

    /// True when the engine's last write failed (e.g. the disk is full).
    pub fn degraded(&self) -> bool {
        self.inner.lock().log_gap
    }

    pub fn is_disk_full(e: &StoreError) -> bool {
        matches!(e, StoreError::Write(k) if k.kind == KvErrorKind::NoSpace)
    }
}

fn target(index: &Index, id: u32) -> Option<Target> {
    let s: &SeriesInfo = index.series.get(id as usize)?;
    Some(Target {
        id,
        schema: s.schema,
        method: s.method,
        xff: s.xff,
        link: s.link,
    })
}

fn locate(shape: &Shape, a: usize, ts: i64) -> (u32, usize) {
    let step = shape.steps[a] as i64;
    let span = shape.spans[a] as i64;
    let t = ts - ts.rem_euclid(step);
    let start = t - t.rem_euclid(span);
    (start as u32, ((t - start) / step) as usize)
}

/// Stores a point in the finest archive and propagates it to the coarser
/// ones.
///
/// Whatever the point's age: whisper writes a point older than its finest
/// archive's retention straight into a coarser archive (the slot then holds
/// one raw value instead of a rollup, and a backfill of yesterday's data
/// rolls up differently from the same data arriving live). Here every point
/// rolls up from the finest archive, so a backfill, a replay or a catch-up
/// after an outage stores what live traffic would have; the fine rows past
/// their retention are dropped by the next retention sweep, and reads of an
/// old range use the coarse archive as whisper's fetch does.
fn put_point(
    inner: &mut Inner,
    kv: &dyn Kv,
    index: &Index,
    shape: &Shape,
    t: &Target,
    ts: i64,
    v: f64,
) -> Result<(), KvError> {
    let n = shape.steps.len();
    let a = 0;
    let (start, slot) = locate(shape, a, ts);
    let source = Source::Points(t.id);
    let taken_up = inner.points.set(
        kv,
        t.id,
        t.schema,
        a,
        n,
        start,
        slot,
        shape.slots[a] as usize,
        v,
    )?;
    if taken_up {
        pin_dependents(inner, kv, index, shape, source, t.schema, a, start)?;
    }
    for j in a + 1..n {
        let coarse = shape.steps[j] as i64;
        let fine = shape.steps[j - 1] as i64;
        let bucket = ts - ts.rem_euclid(coarse);
        let (fstart, fslot) = locate(shape, j - 1, bucket);
        let per = (coarse / fine) as usize;
        let Some(mut agg) =
            inner
                .points
                .with_window(t.id, t.schema, j - 1, fstart, fslot, per, |finer| {
                    t.method.aggregate_window(finer, per, t.xff)
                })
        else {
            break;
        };
        if let (Some(_), Some((hid, stat))) = (agg, t.link) {
            // A timer stat: the true statistic of every sample in the
            // window, from the histogram merged at this archive.
            let (hstart, hslot) = locate(shape, j, bucket);
            let from_hist = inner
                .hists
                .with_window(hid, t.schema, j, hstart, hslot, 1, |w| {
                    w.first()?.as_ref().and_then(|h| match stat {
                        Stat::Quantile(q) => h.quantile(q),
                        Stat::Mean => h.mean(),
                        Stat::Std => h.stdev(),
                    })
                })
                .flatten();
            if from_hist.is_some() {
                agg = from_hist;
            }
        }
        let Some(value) = agg else { break };
        let (cstart, cslot) = locate(shape, j, bucket);
        let taken_up = inner.points.set(
            kv,
            t.id,
            t.schema,
            j,
            n,
            cstart,
            cslot,
            shape.slots[j] as usize,
            value,
        )?;
        if taken_up {
            pin_dependents(inner, kv, index, shape, source, t.schema, j, cstart)?;
        }
    }
    Ok(())
}

/// A stored row of `source` is about to change (it was taken up by a late
/// point or after a restart): the rows derived from it under the same key
/// are brought into memory first, decoded against the stored source, so
/// the checkpoint that writes the changed source rewrites them too
/// (`derive`). Only this path can change a stored source row: open rows
/// are never a derived row's source outside the final compaction.
#[allow(clippy::too_many_arguments)]
fn pin_dependents(
    inner: &mut Inner,
    kv: &dyn Kv,
    index: &Index,
    shape: &Shape,
    source: Source,
    schema: u16,
    archive: usize,
    start: u32,
) -> Result<(), KvError> {
    for d in derive::dependents(index, source) {
        if index.series.get(d as usize).map(|s| s.schema) != Some(schema) {
            continue;
        }
        let key = RowKey {
            schema,
            archive: archive as u8,
            start,
            series: d,
        };
        inner.points.pin(kv, key, shape.slots[archive] as usize)?;
    }
    Ok(())
}

/// Stores a histogram in the finest archive and merges it into the coarser
/// ones (from the finest archive whatever its age, as [`put_point`]).
#[allow(clippy::too_many_arguments)]
fn put_hist(
    inner: &mut Inner,
    kv: &dyn Kv,
    index: &Index,
    shape: &Shape,
    id: u32,
    schema: u16,
    ts: i64,
    h: Hist,
) -> Result<(), KvError> {
    let n = shape.steps.len();
    let a = 0;
    let (start, slot) = locate(shape, a, ts);
    let source = Source::Hist(id);
    let taken_up = inner.hists.set(
        kv,
        id,
        schema,
        a,
        n,
        start,
        slot,
        shape.slots[a] as usize,
        Some(h),
    )?;
    if taken_up {
        pin_dependents(inner, kv, index, shape, source, schema, a, start)?;
    }
    for j in a + 1..n {
        let coarse = shape.steps[j] as i64;
        let fine = shape.steps[j - 1] as i64;
        let bucket = ts - ts.rem_euclid(coarse);
        let (fstart, fslot) = locate(shape, j - 1, bucket);
        let merged = inner
            .hists
            .with_window(
                id,
                schema,
                j - 1,
                fstart,
                fslot,
                (coarse / fine) as usize,
                |finer| {
                    let mut merged = Hist::default();
                    for h in finer.iter().flatten() {
                        merged.merge(h);
                    }
                    merged
                },
            )
            .unwrap_or_default();
        if merged.is_empty() {
            break;
        }
        let (cstart, cslot) = locate(shape, j, bucket);
        let taken_up = inner.hists.set(
            kv,
            id,
            schema,
            j,
            n,
            cstart,
            cslot,
            shape.slots[j] as usize,
            Some(merged),
        )?;
        if taken_up {
            pin_dependents(inner, kv, index, shape, source, schema, j, cstart)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
