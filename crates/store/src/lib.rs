//! The time-series store: rollupd's replacement for carbon-cache + whisper.
//!
//! Points arrive in batches (a statsd flush, a carbon connection's lines).
//! Each batch is appended whole to the write-ahead log, then applied to
//! memory: the finest archive takes every point (whatever its age, so a
//! backfill rolls up as live traffic does). Memory holds only what changed
//! since the last checkpoint (`open.rs`); a checkpoint writes it out as
//! fragments of the rows not yet sealed and drops the log it covers
//! (`checkpoint.rs`). When a row's span has passed, the seal puts it
//! together, compresses it and writes the coarser archive's points rolled
//! up from it (`seal.rs`); until then reads roll the coarser points up from
//! the finer rows themselves (`read.rs`), with whisper's rules
//! (`rollup.rs`). Retention is a range delete per archive
//! (`retention.rs`). docs/storage-format.md has the bytes; ARCHITECTURE.md
//! the invariants.
//!
//! The file per stage: `write.rs` (names to ids, log, memory), `read.rs`,
//! `checkpoint.rs`, `seal.rs`, `retention.rs`, `recover.rs` (open, replay,
//! close).
//!
//! Nothing here names RocksDB: the engine is a [`kv::Kv`].

pub mod caps;
mod checkpoint;
pub mod config;
pub mod derive;
pub mod glob;
pub mod hist;
pub mod index;
pub mod kv;
pub mod mem;
pub mod memory;
pub mod mirror;
pub mod open;
mod read;
mod recover;
mod retention;
pub mod rollup;
pub mod row;
pub mod schema;
mod seal;
pub mod source;
pub mod spill;
pub mod wal;
mod write;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

use self::caps::{Caps, Refusal, MAX_NAME_BYTES};
use self::derive::Source;
use self::hist::Hist;
use self::index::{Index, SeriesInfo};
use self::kv::{Batch, Kv, KvError, KvErrorKind, Space};
use self::open::{Lane, Shape};
use self::row::RowKey;
use self::schema::{archive_byte, Method, Retention, Rules, SchemaError};
use crate::config::StorageConfig;

/// Written to `Meta` at creation; a store with another value is refused.
pub const FORMAT_VERSION: &[u8] = b"rollupd-store-4";
/// Older formats this version reads, and upgrades (by rewriting the
/// marker) at open: `rollupd-store-1` lacked packed histogram rows and
/// derived rows, `rollupd-store-2` row fragments, and `rollupd-store-3`
/// linked series records (19 bytes), which each would misread or skip,
/// so it must refuse the store once they may be in it.
const FORMAT_UPGRADES: &[&[u8]] = &[b"rollupd-store-1", b"rollupd-store-2", b"rollupd-store-3"];
const META_FORMAT: &[u8] = b"format";
const META_CHECKPOINT: &[u8] = b"checkpoint";
const META_SCHEMA: &[u8] = b"schema/";
/// `sealed/` + schema + archive: every row of that archive ending at or
/// before this time is sealed (`seal.rs`).
const META_SEALED: &[u8] = b"sealed/";
/// The last fragment sequence used.
const META_FRAGSEQ: &[u8] = b"fragseq";
const SERIES_POINTS: u8 = b'p';
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
    /// An engine on another server could not answer.
    #[error("storage engine: {0}")]
    Engine(String),
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
    /// Rows put together and compressed by the seal.
    pub rows_sealed: AtomicU64,
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

/// A timer statistic among a write's points, linked to the timer's
/// histogram among its histograms: the emitter's word that
/// `points[point]` is statistic `stat` of `hists[hist]`
/// ([`index::StatCode::of_field`]: `upper_90`, `upper_99_9`, `median`,
/// `mean`, `std`). The store then rolls that series up from the merged
/// histogram, so its percentiles stay true at every resolution, whatever
/// its name looks like (tags, suffixes, namespaces). A link across
/// schemas, or to an index out of range, is ignored.
#[derive(Debug, Clone, Copy)]
pub struct StatLink {
    pub point: usize,
    pub hist: usize,
    pub stat: index::StatCode,
}

/// A per-second rate among a write's points, linked to the count it is
/// the rate of: the emitter's word that `points[rate]` is `points[count]`
/// divided by the flush interval (a counter's `rate` and `count`, Etsy's
/// `stats.<key>` and `stats_counts.<key>`, a timer's `count_ps` and
/// `count`). The rate's rows are then stored as differences from count ÷
/// step (`derive`), whatever the names look like. A link across schemas,
/// or to an index out of range, is ignored.
#[derive(Debug, Clone, Copy)]
pub struct RateLink {
    pub rate: usize,
    pub count: usize,
}

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
    /// The daemon's memory budget in bytes (`[storage] max_memory`). Rows
    /// in memory may take a quarter of it before a checkpoint writes them
    /// out early.
    pub max_memory: u64,
    /// Rows older than this are deleted whatever their archive keeps: with
    /// `[storage] engine = "clickhouse"` this store is the log and a local
    /// copy, and ClickHouse holds the history (`keep_locally`).
    pub keep_at_most: Option<Duration>,
}

impl StoreOptions {
    /// Bytes the rows in memory may hold before a checkpoint is forced.
    pub fn rows_budget(&self) -> usize {
        (self.max_memory / 4) as usize
    }
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
            keep_at_most: match (&cfg.engine, &cfg.clickhouse) {
                (config::Engine::ClickHouse, Some(ch)) => Some(ch.keep_locally),
                _ => None,
            },
        }
    }
}

struct Schemas {
    list: Vec<Retention>,
    shapes: Vec<Shape>,
    by_text: HashMap<String, u16>,
}

impl Schemas {
    /// Adds a schema under the next id; `None` (nothing added) once every
    /// 16-bit id is taken (schema ids are 16 bits in series records and
    /// row keys).
    fn add(&mut self, r: Retention) -> Option<u16> {
        let id = u16::try_from(self.list.len()).ok()?;
        self.by_text.insert(r.text.clone(), id);
        self.shapes.push(Shape {
            steps: r.archives.iter().map(|a| a.step).collect(),
            retentions: r.archives.iter().map(|a| a.retention()).collect(),
            spans: r.spans.clone(),
            slots: (0..r.archives.len()).map(|a| r.slots(a)).collect(),
        });
        self.list.push(r);
        Some(id)
    }
}

/// Per-series facts the write path needs, copied out of the index.
#[derive(Clone, Copy)]
struct Target {
    id: u32,
    schema: u16,
    rule: rollup::Rule,
}

impl Inner {
    /// Whether row `start` of (schema, archive) is sealed for writes.
    fn is_sealing(&self, shape: &Shape, schema: u16, a: usize, start: u32) -> bool {
        let end = u64::from(start) + u64::from(shape.spans[a]);
        self.sealing
            .get(&(schema, archive_byte(a)))
            .is_some_and(|&s| end <= u64::from(s))
    }

    /// Gives a schema its seal marks the first time a batch uses it: rows
    /// that ended a grace period before the batch's clock count as sealed
    /// (a store has no rows of a schema before its first batch; a store
    /// of an older format stored its coarser points at once).
    fn init_marks(&mut self, shape: &Shape, schema: u16, now: i64) {
        if self.sealing.contains_key(&(schema, 0)) {
            return;
        }
        for a in 0..shape.steps.len() {
            let span = i64::from(shape.spans[a]);
            let t = (now - seal::grace(shape, a)).max(0);
            let mark = u32::try_from(t - t.rem_euclid(span)).unwrap_or(u32::MAX);
            self.sealing.insert((schema, archive_byte(a)), mark);
            self.sealed.insert((schema, archive_byte(a)), mark);
        }
    }

    /// The next fragment sequence.
    fn next_frag(&mut self) -> u64 {
        self.reserve_frags(1)
    }

    /// The first of `n` fragment sequences (at least one), all taken.
    fn reserve_frags(&mut self, n: u64) -> u64 {
        let first = self.frag_seq + 1;
        self.frag_seq += n.max(1);
        first
    }

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
    /// Per (schema, archive): rows ending at or before this time take
    /// changes whole, as sealed rows (raised when a seal starts).
    sealing: HashMap<(u16, u8), u32>,
    /// Per (schema, archive): rows ending at or before this time are
    /// sealed, so the coarser archive's points under them are stored (set
    /// when a seal is done). Reads roll up the coarser points after it.
    sealed: HashMap<(u16, u8), u32>,
    /// Per (schema, archive): the oldest start of a sealed row a
    /// checkpoint wrote since the last retention sweep, which that sweep
    /// keeps.
    fresh_rows: HashMap<(u16, u8), u32>,
    /// The last fragment sequence used; each batch that writes fragments
    /// takes the next, so a later fragment of a row sorts after.
    frag_seq: u64,
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
    /// Held for a whole checkpoint (and for each write of a seal), so two
    /// never interleave.
    checkpointing: Mutex<()>,
    /// Held for a whole seal: the seal thread and a caller of `maintain`
    /// never seal at once.
    sealing_one: Mutex<()>,
    /// The fragments families' settle running after a checkpoint, if any
    /// (`checkpoint.rs`).
    settler: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Whether a settle runs, and whether a checkpoint that found it
    /// running asked for one more pass (`checkpoint.rs`).
    settle_state: Arc<Mutex<SettleState>>,
    /// Tests only: run by a seal after each batch it writes, to put a
    /// write between two of them.
    #[cfg(test)]
    after_seal_batch: Mutex<Option<Box<dyn Fn() + Send>>>,
    /// Batches are applied under its read side; a stop's final checkpoint
    /// holds the write side, so nothing changes while it writes.
    gate: RwLock<()>,
    pub stats: StoreStats,
    /// Where accepted batches are also sent, once set.
    mirror: std::sync::OnceLock<Arc<dyn mirror::Mirror>>,
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

/// The settle thread's state, shared with it.
#[derive(Default)]
struct SettleState {
    running: bool,
    again: bool,
}

/// A series record (docs/storage-format.md Section 3): 11 bytes, and 8
/// more for a linked point series (its histogram's id and stat code, or
/// its count's id and [`index::RATE_BITS`]).
fn series_record(
    kind: u8,
    name: &str,
    id: u32,
    schema: u16,
    method: Method,
    xff: f32,
    link: Option<(u32, u32)>,
) -> (Vec<u8>, Vec<u8>) {
    let mut key = Vec::with_capacity(name.len() + 1);
    key.push(kind);
    key.extend_from_slice(name.as_bytes());
    let mut v = Vec::with_capacity(19);
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(&schema.to_be_bytes());
    v.push(method.code());
    v.extend_from_slice(&xff.to_le_bytes());
    if let Some((to, bits)) = link {
        v.extend_from_slice(&to.to_be_bytes());
        v.extend_from_slice(&bits.to_be_bytes());
    }
    (key, v)
}

impl Store {
    /// A store on the in-memory engine (tests, benchmarks).
    pub fn in_memory(cfg: &StorageConfig) -> Result<Store, StoreError> {
        Store::open(Arc::new(mem::MemKv::new()), Path::new(":memory:"), cfg, 0)
    }

    pub fn kv(&self) -> &Arc<dyn Kv> {
        &self.kv
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

    /// Rows held in memory (heads and unsaved), for telemetry.
    pub fn rows_in_memory(&self) -> usize {
        let inner = self.inner.lock();
        inner.points.rows_in_memory() + inner.hists.rows_in_memory()
    }

    /// Bytes the rows in memory hold, approximately: what `max_memory`
    /// weighs against.
    pub fn memory_bytes(&self) -> usize {
        let inner = self.inner.lock();
        inner.points.bytes() + inner.hists.bytes()
    }

    /// True when the engine's last write failed (e.g. the disk is full).
    pub fn degraded(&self) -> bool {
        self.inner.lock().log_gap
    }

    pub fn is_disk_full(e: &StoreError) -> bool {
        matches!(e, StoreError::Write(k) if k.kind == KvErrorKind::NoSpace)
    }
}

#[cfg(test)]
mod tests;

impl Drop for Store {
    /// A settle still running holds the engine: waited for, so the
    /// engine's files are free once the store is gone (a reopen of the
    /// same directory would find RocksDB's lock held).
    fn drop(&mut self) {
        self.wait_for_settle();
    }
}
