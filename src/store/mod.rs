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

pub mod caps;
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
pub mod spill;
pub mod wal;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

use self::caps::{Caps, Refusal, MAX_NAME_BYTES};
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
    /// Stored rows a write had to read under the store lock because they
    /// left memory between its read-ahead and its apply (expected ~0).
    pub reads_under_lock: AtomicU64,
}

/// What happened to one batch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub accepted: u64,
    pub too_old: u64,
    pub too_new: u64,
    /// Points and histograms of series the caps refused to create
    /// (`max_series`, `max_new_series_per_minute`).
    pub refused: u64,
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
    /// Series (points and histograms) the store holds at most.
    pub max_series: usize,
    pub max_new_series_per_minute: usize,
    /// Memory the whole daemon may use (`[storage] max_memory`); past it,
    /// new series are refused ([`caps::Caps::set_memory_full`]).
    pub max_memory: u64,
}

impl StoreOptions {
    pub fn from_config(cfg: &StorageConfig) -> Self {
        StoreOptions {
            max_future: cfg.max_future,
            checkpoint_interval: cfg.checkpoint_interval,
            checkpoint_log_bytes: cfg.checkpoint_log_bytes,
            checkpoint_unsaved_rows: 200_000,
            max_series: cfg.max_series,
            max_new_series_per_minute: cfg.max_new_series_per_minute,
            max_memory: cfg.max_memory,
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

/// Series and schema records not yet known to be in the engine, numbered
/// in creation order. A record is added in the same critical section (the
/// index's write lock) that makes its id visible, and leaves only once a
/// batch holding it is written; every log batch and checkpoint carries all
/// of them. So no batch can name an id whose record is neither in the
/// engine already nor in the same batch: a crash cannot orphan a point,
/// and an id no stored record holds was never stored anywhere.
#[derive(Default)]
struct Pending {
    records: Vec<(u64, Space, Vec<u8>, Vec<u8>)>,
    next: u64,
}

impl Pending {
    fn push(&mut self, space: Space, k: Vec<u8>, v: Vec<u8>) {
        self.records.push((self.next, space, k, v));
        self.next += 1;
    }

    /// Adds every record to `batch`; returns the number up to which they
    /// are in it (for [`Pending::written`]).
    fn add_to(&self, batch: &mut Batch) -> u64 {
        for (_, space, k, v) in &self.records {
            batch.put(*space, k.clone(), v.clone());
        }
        self.next
    }

    /// Records numbered below `upto` are in the engine.
    fn written(&mut self, upto: u64) {
        self.records.retain(|r| r.0 >= upto);
    }
}

/// The log's tail. Held from taking a sequence number until the batch is
/// applied to memory, so batches reach memory in log order (replay applies
/// them in that order too), while no index, schema or row lock is held
/// across the log write.
struct LogTail {
    next_seq: u64,
}

struct Inner {
    points: Lane<f64>,
    hists: Lane<Option<Hist>>,
    /// First log sequence not yet applied to memory: a checkpoint taken
    /// now covers the log below it.
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
    /// Entries whose log write failed, kept (up to [`MAX_UNLOGGED_BYTES`])
    /// until a checkpoint covers them, so a stopping store can still log
    /// or spill them: (sequence, bytes, points).
    unlogged: std::collections::VecDeque<(u64, Vec<u8>, u64)>,
    unlogged_bytes: usize,
    /// Points of unlogged entries dropped past the bound: in memory only,
    /// until a checkpoint covers sequence `unprotected_upto`.
    unprotected_points: u64,
    unprotected_upto: u64,
}

/// Bytes of failed log entries kept for a final log write or spill.
const MAX_UNLOGGED_BYTES: usize = 64 << 20;

/// How a store stopped ([`Store::close`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Closed {
    /// The final checkpoint wrote everything.
    Checkpointed,
    /// The checkpoint failed; every point is in the log, replayed at the
    /// next start (`points` of them had failed their first log write).
    Logged { points: u64 },
    /// The engine took nothing; `points` are in the spill file, read at the
    /// next start.
    Spilled { points: u64, path: PathBuf },
    /// `points` could be written nowhere and are lost with the process.
    Lost { points: u64 },
}

pub struct Store {
    kv: Arc<dyn Kv>,
    path: PathBuf,
    rules: Rules,
    opts: StoreOptions,
    index: RwLock<Index>,
    schemas: RwLock<Schemas>,
    inner: Mutex<Inner>,
    /// Taken last of all locks, never held across I/O.
    pending: Mutex<Pending>,
    log: Mutex<LogTail>,
    /// The caps on new series; its counters are read by telemetry.
    pub caps: Caps,
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
        Self::take_spill(&*kv, &path)?;
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
            let limit = recs.len() + opts.max_series;
            for (id, name, schema, method, xff) in recs {
                if id as usize >= limit {
                    return Err(damaged(format!(
                        "series {name:?} has id {id}, beyond the {limit} series there can be"
                    )));
                }
                if schema as usize >= schemas.list.len() {
                    return Err(damaged(format!(
                        "series {name:?} names unknown schema {schema}"
                    )));
                }
                let method = Method::from_code(method).unwrap_or(Method::Average);
                // Ids are dense; a gap (a record lost by an older version,
                // which could log a point before its series' record) is a
                // hole that no name reaches.
                loop {
                    let len = if kind == SERIES_POINTS {
                        index.series.len()
                    } else {
                        index.hists.len()
                    } as u32;
                    if len >= id {
                        break;
                    }
                    index.add_hole(kind == SERIES_HISTS);
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
                next_seq: checkpoint_seq,
                checkpoint_seq,
                log_bytes: 0,
                log_sizes: std::collections::VecDeque::new(),
                last_checkpoint: Instant::now(),
                last_seal: Instant::now(),
                log_gap: false,
                unlogged: std::collections::VecDeque::new(),
                unlogged_bytes: 0,
                unprotected_points: 0,
                unprotected_upto: 0,
            }),
            pending: Mutex::new(Pending::default()),
            caps: Caps::default(),
            log: Mutex::new(LogTail {
                next_seq: checkpoint_seq,
            }),
            checkpointing: Mutex::new(()),
            gate: RwLock::new(()),
            stats: StoreStats::default(),
        };
        store.replay()?;
        let _ = now;
        Ok(store)
    }

    /// Moves a spill file left by the last stop ([`Store::close`]) into the
    /// engine, so the load and replay that follow see its records and
    /// entries as if the engine had taken them then. A spill that cannot be
    /// taken in (the disk is still full) stops the open: its entries'
    /// sequences must not be reused by new batches.
    fn take_spill(kv: &dyn Kv, path: &Path) -> Result<(), StoreError> {
        let file = spill::path_for(path);
        let damaged = |why: String| StoreError::Damaged {
            path: path.to_owned(),
            why,
        };
        let Some(sp) = spill::Spill::read(&file).map_err(|e| damaged(e.to_string()))? else {
            return Ok(());
        };
        let mut b = Batch::default();
        let points: usize = sp.entries.len();
        for (space, k, v) in sp.records {
            b.put(space, k, v);
        }
        for (seq, bytes) in sp.entries {
            b.put(Space::Log, wal::key(seq).to_vec(), bytes);
        }
        kv.write(b).map_err(|source| StoreError::Open {
            path: file.clone(),
            source,
        })?;
        std::fs::remove_file(&file).map_err(|e| damaged(format!("{}: {e}", file.display())))?;
        tracing::info!(path = %file.display(), batches = points, "spilled batches taken back into the log");
        Ok(())
    }

    /// Stops the store without losing what the engine would not take: a
    /// final compacting checkpoint; if that fails, a plain one; then the
    /// batches whose log write failed go to the log in one write; then to
    /// the spill file beside the store. Each outcome is logged as it is:
    /// where the points are, or how many are lost.
    pub fn close(&self) -> Closed {
        let first = match self.checkpoint_compact() {
            Ok(()) => return Closed::Checkpointed,
            Err(e) => e,
        };
        tracing::warn!(error = %first, "final checkpoint failed; retrying once");
        if self.checkpoint().is_ok() {
            return Closed::Checkpointed;
        }
        let _no_batches = self.gate.write();
        let mut inner = self.inner.lock();
        let unlogged: u64 = inner.unlogged.iter().map(|u| u.2).sum();
        let lost_anyway = inner.unprotected_points;
        let mut batch = Batch::default();
        let records_upto = self.pending.lock().add_to(&mut batch);
        for (seq, bytes, _) in &inner.unlogged {
            batch.put(Space::Log, wal::key(*seq).to_vec(), bytes.clone());
        }
        let closed = match self.kv.write(batch) {
            Ok(()) => {
                self.pending.lock().written(records_upto);
                inner.unlogged.clear();
                inner.unlogged_bytes = 0;
                Closed::Logged { points: unlogged }
            }
            Err(e) => {
                let file = spill::path_for(&self.path);
                let sp = spill::Spill {
                    records: self
                        .pending
                        .lock()
                        .records
                        .iter()
                        .map(|(_, s, k, v)| (*s, k.clone(), v.clone()))
                        .collect(),
                    entries: inner
                        .unlogged
                        .iter()
                        .map(|(s, b, _)| (*s, b.clone()))
                        .collect(),
                };
                let spilled = if self.path == Path::new(":memory:") {
                    None
                } else {
                    match sp.write(&file) {
                        Ok(()) => Some(file),
                        Err(se) => {
                            tracing::error!(error = %se, "cannot write the spill file either");
                            None
                        }
                    }
                };
                tracing::warn!(error = %e, "the store's log cannot take the unlogged batches");
                match spilled {
                    Some(path) => Closed::Spilled {
                        points: unlogged,
                        path,
                    },
                    None => Closed::Lost {
                        points: unlogged + lost_anyway,
                    },
                }
            }
        };
        match &closed {
            Closed::Logged { points } => tracing::warn!(
                points_only_in_memory_until_now = points,
                "final checkpoint failed; every point is in the log and the next start replays it"
            ),
            Closed::Spilled { points, path } => tracing::error!(
                points,
                path = %path.display(),
                "final checkpoint and log write failed (disk full?); the points whose log write had failed are in the spill file, read back at the next start"
            ),
            Closed::Checkpointed => {}
            Closed::Lost { points } => tracing::error!(
                points,
                "final checkpoint, log write and spill file all failed (disk full?): these points existed only in memory and are lost"
            ),
        }
        if lost_anyway > 0 && !matches!(closed, Closed::Lost { .. }) {
            tracing::error!(
                points = lost_anyway,
                "besides these, points beyond the unlogged-batch bound were only in memory and are lost"
            );
        }
        closed
    }

    /// A store on the in-memory engine (tests, benchmarks).
    pub fn in_memory(cfg: &StorageConfig) -> Result<Store, StoreError> {
        Store::open(Arc::new(mem::MemKv::new()), Path::new(":memory:"), cfg, 0)
    }

    pub fn kv(&self) -> &Arc<dyn Kv> {
        &self.kv
    }

    fn replay(&self) -> Result<(), StoreError> {
        let from = wal::key(self.inner.lock().checkpoint_seq);
        let mut entries: Vec<(u64, wal::Entry)> = Vec::new();
        let mut damaged: Vec<String> = Vec::new();
        // The tail must move past every entry in the log, damaged or not,
        // so no new batch is written over one.
        let mut last_seq = None;
        self.kv
            .scan(Space::Log, &from, &[0xff; 9], &mut |k, v| {
                let seq = wal::seq_of(k);
                last_seq = seq.or(last_seq);
                match (seq, wal::Entry::decode(v)) {
                    (Some(seq), Ok(e)) => entries.push((seq, e)),
                    (seq, Err(e)) => damaged.push(format!("log entry {seq:?}: {e}")),
                    (None, _) => {}
                }
                true
            })
            .map_err(|source| StoreError::Open {
                path: self.path.clone(),
                source,
            })?;
        if !damaged.is_empty() {
            // A torn entry cannot happen with an atomic engine; a damaged
            // one means damaged files. Each batch stands alone, so the
            // others are replayed.
            tracing::error!(
                entries = damaged.len(),
                first = damaged[0],
                "write-ahead log damaged; the damaged entries' points are lost, the others are replayed"
            );
        }
        self.reserve_logged_ids(&entries);
        let index = self.index.read();
        let schemas = self.schemas.read();
        let mut inner = self.inner.lock();
        for (seq, e) in entries {
            let targets: Vec<Option<Target>> =
                e.points.iter().map(|p| target(&index, p.0)).collect();
            let htargets: Vec<Option<(u32, u16)>> =
                e.hists.iter().map(|h| hist_target(&index, h.0)).collect();
            inner.points.stamp = seq;
            inner.hists.stamp = seq;
            let w = self.apply(
                &mut inner, &*self.kv, &index, &schemas, &e, &targets, &htargets,
            );
            if let Err(err) = w {
                return Err(StoreError::Open {
                    path: self.path.clone(),
                    source: err,
                });
            }
            inner.next_seq = seq + 1;
            self.stats.replayed_batches.fetch_add(1, Relaxed);
        }
        let next = inner.next_seq.max(last_seq.map_or(0, |s| s + 1));
        inner.next_seq = next;
        self.log.lock().next_seq = next;
        Ok(())
    }

    /// Ids that log entries name beyond the stored records (written by an
    /// older version, which could log a point before its series' record):
    /// their points cannot be placed, and the ids are taken as holes so no
    /// new series is given one and then handed those points by the next
    /// replay.
    fn reserve_logged_ids(&self, entries: &[(u64, wal::Entry)]) {
        let mut index = self.index.write();
        // An id past what the caps allow is damage, not a lost record: its
        // points are dropped without reserving ids up to it.
        let limit = self.opts.max_series.max(index.len());
        let (mut lost, mut lost_hists) = (0u64, 0u64);
        for (_, e) in entries {
            for &(id, _, _) in &e.points {
                while index.series.len() <= id as usize && (id as usize) < limit {
                    index.add_hole(false);
                }
                lost += u64::from(index.series.get(id as usize).is_none_or(|s| s.hole));
            }
            for (id, _, _) in &e.hists {
                while index.hists.len() <= *id as usize && (*id as usize) < limit {
                    index.add_hole(true);
                }
                lost_hists += u64::from(index.hists.get(*id as usize).is_none_or(|h| h.hole));
            }
        }
        if lost + lost_hists > 0 {
            tracing::error!(
                points = lost,
                histograms = lost_hists,
                "the log names series whose records were never stored (a crash under an older rollupd); these points cannot be placed and are dropped"
            );
        }
    }

    /// Stores a batch of points and timer histograms (histograms are named
    /// like the timer's branch). Returns what was accepted once the batch
    /// is in the log: a point whose write returned `Ok` survives a crash of
    /// the process. An engine failure is counted and returned, and the
    /// points stay in memory (and reads) until a checkpoint can write them.
    pub fn write(
        &self,
        points: &[Point<'_>],
        hists: &[(&str, i64, Hist)],
        now: i64,
    ) -> Result<Written, StoreError> {
        let started = Instant::now();
        let _gate = self.gate.read();
        let (targets, htargets) = self.resolve(points, hists);
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
        let refused = (targets.iter().filter(|t| t.is_none()).count()
            + htargets.iter().filter(|t| t.is_none()).count()) as u64;
        let targets: Vec<Option<Target>> = targets.into_iter().flatten().map(Some).collect();
        let htargets: Vec<Option<(u32, u16)>> = htargets.into_iter().flatten().map(Some).collect();
        let bytes = entry.encode();
        // The log write holds only the log's tail: readers, the checkpoint
        // and writers resolving names go on meanwhile.
        let mut tail = self.log.lock();
        let seq = tail.next_seq;
        tail.next_seq += 1;
        let mut batch = Batch::default();
        let records_upto = self.pending.lock().add_to(&mut batch);
        batch.put(Space::Log, wal::key(seq).to_vec(), bytes.clone());
        let logged = self.kv.write(batch);
        if logged.is_ok() {
            self.pending.lock().written(records_upto);
        } else {
            self.stats.write_errors.fetch_add(1, Relaxed);
        }
        let applied = self.apply_live(seq, &entry, &bytes, logged.is_ok(), &targets, &htargets);
        drop(tail);
        self.stats.batches.fetch_add(1, Relaxed);
        self.stats
            .write_nanos
            .fetch_add(started.elapsed().as_nanos() as u64, Relaxed);
        let mut written = match applied {
            Ok(w) => w,
            Err(e) => {
                self.stats.write_errors.fetch_add(1, Relaxed);
                return Err(StoreError::Write(e));
            }
        };
        written.refused = refused;
        self.stats
            .points_accepted
            .fetch_add(written.accepted, Relaxed);
        self.stats
            .points_too_old
            .fetch_add(written.too_old, Relaxed);
        self.stats
            .points_too_new
            .fetch_add(written.too_new, Relaxed);
        match logged {
            Err(e) => Err(StoreError::Write(e)),
            Ok(()) => Ok(written),
        }
    }

    /// Applies a live batch to memory. Stored rows it needs (late points,
    /// rows taken up again after a restart, rows derived from them) are
    /// read with no lock held, then the batch is applied under the locks
    /// from what was read; a row that left memory in between (a checkpoint
    /// committed it) is looked for again, a few times, before it is read
    /// under the lock.
    fn apply_live(
        &self,
        seq: u64,
        entry: &wal::Entry,
        bytes: &[u8],
        logged: bool,
        targets: &[Option<Target>],
        htargets: &[Option<(u32, u16)>],
    ) -> Result<Written, KvError> {
        let mut read = Prefetched::new(self.kv.clone());
        let mut rounds = 0;
        loop {
            let index = self.index.read();
            let schemas = self.schemas.read();
            let mut inner = self.inner.lock();
            let wanted = if rounds < 4 {
                self.rows_to_read(&inner, &index, &schemas, entry, targets, htargets, &read)
            } else {
                Vec::new()
            };
            if wanted.is_empty() {
                if logged {
                    inner.log_bytes += bytes.len() as u64;
                    inner.log_sizes.push_back((seq, bytes.len() as u64));
                    self.stats.log_bytes.store(inner.log_bytes, Relaxed);
                } else {
                    inner.log_gap = true;
                    let n = (entry.points.len() + entry.hists.len()) as u64;
                    inner.unlogged_bytes += bytes.len();
                    inner.unlogged.push_back((seq, bytes.to_vec(), n));
                    while inner.unlogged_bytes > MAX_UNLOGGED_BYTES {
                        let Some((s, b, n)) = inner.unlogged.pop_front() else {
                            break;
                        };
                        inner.unlogged_bytes -= b.len();
                        inner.unprotected_points += n;
                        inner.unprotected_upto = inner.unprotected_upto.max(s + 1);
                    }
                }
                inner.points.stamp = seq;
                inner.hists.stamp = seq;
                let w = self.apply(
                    &mut inner, &read, &index, &schemas, entry, targets, htargets,
                );
                inner.next_seq = seq + 1;
                self.stats
                    .reads_under_lock
                    .fetch_add(read.fallbacks.load(Relaxed), Relaxed);
                return w;
            }
            drop(inner);
            drop(schemas);
            drop(index);
            read.fetch(wanted)?;
            rounds += 1;
        }
    }

    /// The stored rows applying `e` may read that are neither in memory nor
    /// already read: per point and archive, its row if not open or unsaved
    /// and possibly stored; the rows derived from it under the same key (it
    /// may pin them); and the sources of any derived row read so far (its
    /// decoding reads them).
    #[allow(clippy::too_many_arguments)]
    fn rows_to_read(
        &self,
        inner: &Inner,
        index: &Index,
        schemas: &Schemas,
        e: &wal::Entry,
        targets: &[Option<Target>],
        htargets: &[Option<(u32, u16)>],
        read: &Prefetched,
    ) -> Vec<(Space, Vec<u8>)> {
        let max_future = self.opts.max_future.as_secs() as i64;
        let mut want: Vec<(Space, Vec<u8>)> = Vec::new();
        let need = |space: Space, key: RowKey, missing: bool, want: &mut Vec<_>| {
            let k = key.encode().to_vec();
            if missing && !read.has(space, &k) {
                want.push((space, k));
            }
        };
        let touch = |source: Source, id: u32, schema: u16, ts: i64, want: &mut Vec<_>| {
            let shape = &schemas.shapes[schema as usize];
            for a in 0..shape.steps.len() {
                let (start, _) = locate(shape, a, ts);
                let key = RowKey {
                    schema,
                    archive: a as u8,
                    start,
                    series: id,
                };
                // The common case, a point for an open row, reads nothing.
                let (space, missing) = match source {
                    Source::Points(_) if inner.points.is_open(key) => continue,
                    Source::Hist(_) if inner.hists.is_open(key) => continue,
                    Source::Points(_) => (Space::Rows, inner.points.must_read(key)),
                    Source::Hist(_) => (Space::Hists, inner.hists.must_read(key)),
                };
                need(space, key, missing, want);
                for d in derive::dependents(index, source) {
                    if index.series.get(d as usize).map(|s| s.schema) != Some(schema) {
                        continue;
                    }
                    let dk = RowKey { series: d, ..key };
                    need(Space::Rows, dk, inner.points.must_read(dk), want);
                }
            }
        };
        for ((_, ts, _), t) in e.hists.iter().zip(htargets) {
            let Some((id, schema)) = *t else { continue };
            if *ts > e.now + max_future || *ts < 0 || *ts > u32::MAX as i64 {
                continue;
            }
            touch(Source::Hist(id), id, schema, *ts, &mut want);
        }
        for (&(_, ts, _), t) in e.points.iter().zip(targets) {
            let Some(t) = *t else { continue };
            if ts > e.now + max_future || ts < 0 || ts > u32::MAX as i64 {
                continue;
            }
            touch(Source::Points(t.id), t.id, t.schema, ts, &mut want);
        }
        for (space, key, bytes) in read.derived_rows() {
            let Some(key) = RowKey::decode(key) else {
                continue;
            };
            let Some(slots) = schemas
                .shapes
                .get(key.schema as usize)
                .and_then(|s| s.slots.get(key.archive as usize))
            else {
                continue;
            };
            debug_assert_eq!(space, Space::Rows);
            for src in derive::stored_sources(bytes, *slots as usize) {
                let (space, series) = match src {
                    Source::Points(p) => (Space::Rows, p),
                    Source::Hist(h) => (Space::Hists, h),
                };
                let k = RowKey { series, ..key }.encode().to_vec();
                if !read.has(space, &k) {
                    want.push((space, k));
                }
            }
        }
        want.sort();
        want.dedup();
        want
    }

    /// Names to ids, creating series (and their schema) on first sight,
    /// within the caps. A series' record joins the pending records in the
    /// same critical section that gives it its id (see [`Pending`]).
    #[allow(clippy::type_complexity)]
    fn resolve(
        &self,
        points: &[Point<'_>],
        hists: &[(&str, i64, Hist)],
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
                        .map(|h| index.hist_id(h.0).and_then(|id| hist_target(&index, id)))
                        .collect(),
                );
            }
        }
        let mut index = self.index.write();
        let mut refused = 0u64;
        let mut hts = Vec::with_capacity(hists.len());
        for (name, _, _) in hists {
            let id = match index.hist_id(name) {
                Some(id) => Some(id),
                None if self.may_create(&index, name) => {
                    let a = self.rules.assign(name);
                    let schema = self.schema_id(&a.retention);
                    let id = index.add_hist(name, schema);
                    let (k, v) = series_record(SERIES_HISTS, name, id, schema, Method::Sum, 0.0);
                    self.pending.lock().push(Space::Series, k, v);
                    Some(id)
                }
                None => {
                    refused += 1;
                    None
                }
            };
            hts.push(id.and_then(|id| hist_target(&index, id)));
        }
        let mut ts = Vec::with_capacity(points.len());
        for p in points {
            let id = match index.id(p.name) {
                Some(id) => Some(id),
                None if self.may_create(&index, p.name) => {
                    let a = self.rules.assign(p.name);
                    let schema = self.schema_id(&a.retention);
                    let id = index.add_series(p.name, schema, a.method, a.xff);
                    let (k, v) = series_record(SERIES_POINTS, p.name, id, schema, a.method, a.xff);
                    self.pending.lock().push(Space::Series, k, v);
                    Some(id)
                }
                None => {
                    refused += 1;
                    None
                }
            };
            ts.push(id.and_then(|id| target(&index, id)));
        }
        drop(index);
        if refused > 0 {
            self.caps.refused(
                refused,
                self.opts.max_series,
                self.opts.max_new_series_per_minute,
            );
        }
        (ts, hts)
    }

    /// Whether a new series may be created now (the caller holds the
    /// index's write lock, so the count cannot move meanwhile).
    fn may_create(&self, index: &Index, name: &str) -> bool {
        if name.len() > MAX_NAME_BYTES || name.is_empty() {
            self.caps.note(Refusal::Name);
            return false;
        }
        if index.len() + index.hists.len() >= self.opts.max_series {
            self.caps.note(Refusal::Total);
            return false;
        }
        if !self.caps.take_new(self.opts.max_new_series_per_minute) {
            self.caps.note(Refusal::Rate);
            return false;
        }
        true
    }

    /// The id of a retention schema, adding it (and its record, to the
    /// pending records) on first use. Called under the index's write lock.
    fn schema_id(&self, text: &str) -> u16 {
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
        self.pending
            .lock()
            .push(Space::Meta, meta_schema_key(id), text.as_bytes().to_vec());
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
    #[allow(clippy::too_many_arguments)]
    fn apply(
        &self,
        inner: &mut Inner,
        kv: &dyn Kv,
        index: &Index,
        schemas: &Schemas,
        e: &wal::Entry,
        targets: &[Option<Target>],
        htargets: &[Option<(u32, u16)>],
    ) -> Result<Written, KvError> {
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
        let (rows, hrows, covered, plans, mut batch, records_upto) = {
            let index = self.index.read();
            let schemas = self.schemas.read();
            let point_schema = |sid: u32| index.series.get(sid as usize).map(|s| s.schema);
            let hist_schema = |sid: u32| index.hists.get(sid as usize).map(|s| s.schema);
            let (rows, hrows, covered) = {
                let inner = self.inner.lock();
                (
                    inner
                        .points
                        .snapshot(&schemas.shapes, &point_schema, compress_open),
                    inner
                        .hists
                        .snapshot(&schemas.shapes, &hist_schema, compress_open),
                    inner.next_seq,
                )
            };
            // Taken under the index lock, after the rows: every series
            // (and schema) these rows or derived rows name is in the
            // engine already or among these records.
            let mut batch = Batch::default();
            let records_upto = self.pending.lock().add_to(&mut batch);
            let step_of = |schema: u16, a: u8| {
                schemas
                    .shapes
                    .get(schema as usize)
                    .and_then(|s| s.steps.get(a as usize).copied())
            };
            let plans = derive::plan(&index, &step_of, &rows, &hrows, compress_open);
            (rows, hrows, covered, plans, batch, records_upto)
        };
        let encoded = derive::encode_rows(&rows, &hrows, &plans, compress_open);
        let hrows = Lane::<Option<Hist>>::encode(&hrows, compress_open);
        let rows = encoded;
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
        if result.is_ok() {
            self.pending.lock().written(records_upto);
        }
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
                inner.checkpoint_seq = covered;
                while inner.unlogged.front().is_some_and(|u| u.0 < covered) {
                    if let Some((_, b, _)) = inner.unlogged.pop_front() {
                        inner.unlogged_bytes -= b.len();
                    }
                }
                if covered >= inner.unprotected_upto {
                    inner.unprotected_points = 0;
                }
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
        let mut batch = Batch::default();
        let mut ranges = Vec::new();
        // The deletes and the compaction run with no lock held.
        let schemas = self.schemas.read();
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
        drop(schemas);
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
    let s: &SeriesInfo = index.series.get(id as usize).filter(|s| !s.hole)?;
    Some(Target {
        id,
        schema: s.schema,
        method: s.method,
        xff: s.xff,
        link: s.link(),
    })
}

fn hist_target(index: &Index, id: u32) -> Option<(u32, u16)> {
    let h = index.hists.get(id as usize).filter(|h| !h.hole)?;
    Some((id, h.schema))
}

/// The stored rows a write reads, fetched with no lock held
/// ([`Store::apply_live`]) and served to the apply from memory. A key not
/// fetched is read from the engine (and counted: it was read under the
/// lock).
struct Prefetched {
    kv: Arc<dyn Kv>,
    rows: HashMap<(Space, Vec<u8>), Option<Vec<u8>>>,
    fallbacks: AtomicU64,
}

impl Prefetched {
    fn new(kv: Arc<dyn Kv>) -> Self {
        Prefetched {
            kv,
            rows: HashMap::new(),
            fallbacks: AtomicU64::new(0),
        }
    }

    fn has(&self, space: Space, key: &[u8]) -> bool {
        self.rows.contains_key(&(space, key.to_vec()))
    }

    fn fetch(&mut self, keys: Vec<(Space, Vec<u8>)>) -> Result<(), KvError> {
        for space in [Space::Rows, Space::Hists] {
            let keys: Vec<Vec<u8>> = keys
                .iter()
                .filter(|k| k.0 == space)
                .map(|k| k.1.clone())
                .collect();
            if keys.is_empty() {
                continue;
            }
            let got = self.kv.multi_get(space, &keys)?;
            for (k, v) in keys.into_iter().zip(got) {
                self.rows.insert((space, k), v);
            }
        }
        Ok(())
    }

    /// Derived value rows read so far (their sources must be read too).
    fn derived_rows(&self) -> impl Iterator<Item = (Space, &[u8], &[u8])> {
        self.rows.iter().filter_map(|((space, k), v)| {
            let v = v.as_deref()?;
            (*space == Space::Rows && v.first() == Some(&derive::FORMAT_DERIVED)).then_some((
                *space,
                k.as_slice(),
                v,
            ))
        })
    }
}

impl Kv for Prefetched {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        if let Some(v) = self.rows.get(&(space, key.to_vec())) {
            return Ok(v.clone());
        }
        self.fallbacks.fetch_add(1, Relaxed);
        self.kv.get(space, key)
    }

    fn write(&self, batch: Batch) -> Result<(), KvError> {
        self.kv.write(batch)
    }

    fn scan(
        &self,
        space: Space,
        from: &[u8],
        to: &[u8],
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), KvError> {
        self.kv.scan(space, from, to, f)
    }

    fn disk_bytes(&self) -> u64 {
        self.kv.disk_bytes()
    }

    fn compact(&self, space: Space, from: &[u8], to: &[u8]) {
        self.kv.compact(space, from, to)
    }
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
