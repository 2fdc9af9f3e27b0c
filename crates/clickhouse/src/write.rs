//! The ClickHouse writer: every point and timer histogram the store accepts
//! (it is the store's [`Mirror`]) as rows of graphite-clickhouse's tables,
//! sent in batches.
//!
//! Three steps, each on its own: `accepted` (on the writer's thread, no
//! I/O) appends rows to per-table buffers; the `clickhouse-cut` thread cuts
//! them into a batch every `batch_interval` (or at `batch_points`) and
//! hands it to the sender, or to the disk queue while ClickHouse is not
//! taking batches; the `clickhouse-send` thread inserts them, and on a
//! failure puts the batch on the disk queue and retries the oldest one
//! there with backoff (1 s doubling to 30 s) until the queue is empty
//! again. So a slow or absent server costs disk, never memory: what is in
//! memory is at most two batches and the buffers of one interval.
//!
//! Index rows (`graphite_index`: the daily path and its reverse, the tree
//! of parents and the reversed leaf, as carbon-clickhouse writes them) are
//! made once per path per day; a tagged name (`a;k=v`) gets its rows in
//! `graphite_tagged` instead, one per tag.
//!
//! Retries can insert a table's rows twice: `GraphiteMergeTree` keeps one
//! row per (Path, Time) and version, so merges (and reads that take the
//! newest version) see each point once.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::client::{ClickHouseError, Client};
use super::queue::{Batch, Depth, Queue};
use super::schema::{self, Target};
use rollupd_store::config::{ClickHouseConfig, StorageConfig};
use rollupd_store::mirror::{Mirror, MirroredHist, MirroredPoint};
use rollupd_store::schema::Method;

/// graphite-clickhouse's date for rows that hold for every day.
const TREE_DATE: &str = "1970-02-12";
const REVERSE_LEVEL: u32 = 10_000;
const TREE_LEVEL: u32 = 20_000;
const REVERSE_TREE_LEVEL: u32 = 30_000;
/// Longest wait between retries while ClickHouse fails.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Why the writer could not start.
#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    #[error(transparent)]
    Schema(#[from] schema::ClickHouseSchemaError),
    #[error("clickhouse queue {dir}: {source}")]
    Queue {
        dir: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// What the writer has done (read by telemetry and the admin port).
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Points handed to the writer.
    pub points: AtomicU64,
    /// Points ClickHouse took.
    pub points_inserted: AtomicU64,
    pub batches_inserted: AtomicU64,
    /// Inserts (or schema statements) that failed.
    pub errors: AtomicU64,
    /// The last successful batch's insert time.
    pub last_insert_ms: AtomicU64,
    /// Points of batches dropped because the queue was at its cap.
    pub points_dropped: AtomicU64,
    pub queued_batches: AtomicU64,
    pub queued_bytes: AtomicU64,
    pub queued_points: AtomicU64,
    /// When the oldest queued batch was cut (unix seconds; 0: none).
    pub queued_oldest: AtomicU64,
}

/// Rows waiting to be cut into a batch.
#[derive(Default)]
struct Buffers {
    tables: HashMap<String, Vec<u8>>,
    points: u64,
    /// Paths (hashes) whose index rows were written on `day`.
    indexed: hashbrown::HashSet<u64>,
    day: i64,
    /// A day's `YYYY-MM-DD`, for the last day seen.
    date: (i64, String),
    /// (retention, method) -> `db.table`.
    names: Vec<(String, Method, String)>,
}

struct Shared {
    client: Client,
    db: String,
    ddl: Vec<String>,
    schema_ready: AtomicBool,
    batch_points: u64,
    interval: Duration,
    buffers: Mutex<Buffers>,
    full: Condvar,
    queue: Mutex<Queue>,
    /// Whether the sender takes batches from memory (false while the disk
    /// queue has batches: new ones go behind them).
    direct: AtomicBool,
    stop: AtomicBool,
    stats: WriterStats,
}

pub struct Writer {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Writer {
    /// Starts the writer for `cfg.clickhouse`, its queue under `queue_dir`.
    pub fn start(
        cfg: &StorageConfig,
        ch: &ClickHouseConfig,
        queue_dir: &std::path::Path,
    ) -> Result<Writer, WriterError> {
        let rollups = schema::rollups_of(cfg)?;
        let ddl = schema::ddl(
            &Target {
                database: ch.database.clone(),
                cluster: ch.cluster.clone(),
            },
            &rollups,
        )?;
        let queue =
            Queue::open(queue_dir, ch.queue_max_bytes).map_err(|source| WriterError::Queue {
                dir: queue_dir.to_path_buf(),
                source,
            })?;
        let direct = queue.is_empty();
        let shared = Arc::new(Shared {
            client: Client::new(ch),
            db: ch.database.clone(),
            ddl,
            schema_ready: AtomicBool::new(false),
            batch_points: ch.batch_points as u64,
            interval: ch.batch_interval,
            buffers: Mutex::new(Buffers::default()),
            full: Condvar::new(),
            queue: Mutex::new(queue),
            direct: AtomicBool::new(direct),
            stop: AtomicBool::new(false),
            stats: WriterStats::default(),
        });
        shared.note_depth(&shared.queue.lock().unwrap_or_else(|p| p.into_inner()));
        let (tx, rx) = sync_channel::<Batch>(1);
        let cut = {
            let s = shared.clone();
            std::thread::Builder::new()
                .name("clickhouse-cut".into())
                .spawn(move || cut_loop(&s, &tx))
                .expect("spawn clickhouse-cut")
        };
        let send = {
            let s = shared.clone();
            std::thread::Builder::new()
                .name("clickhouse-send".into())
                .spawn(move || send_loop(&s, &rx))
                .expect("spawn clickhouse-send")
        };
        Ok(Writer {
            shared,
            threads: Mutex::new(vec![cut, send]),
        })
    }

    pub fn stats(&self) -> &WriterStats {
        &self.shared.stats
    }

    /// Cuts what is buffered, sends it (or queues it on disk) and stops.
    pub fn stop(&self) {
        self.shared.stop.store(true, Relaxed);
        self.shared.full.notify_all();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Mirror for Writer {
    fn accepted(&self, points: &[MirroredPoint<'_>], hists: &[MirroredHist<'_>], now: i64) {
        let s = &self.shared;
        s.stats.points.fetch_add(points.len() as u64, Relaxed);
        let mut b = s.buffers.lock().unwrap_or_else(|p| p.into_inner());
        b.add(&s.db, points, hists, now);
        if b.points >= s.batch_points {
            s.full.notify_one();
        }
    }
}

impl Buffers {
    /// Rows of a batch of points and histograms accepted at `now` (the
    /// rows' version), and index rows for paths new today.
    fn add(
        &mut self,
        db: &str,
        points: &[MirroredPoint<'_>],
        hists: &[MirroredHist<'_>],
        now: i64,
    ) {
        let version = now.clamp(0, i64::from(u32::MAX));
        let today = now.div_euclid(86_400);
        if self.day != today {
            self.indexed.clear();
            self.day = today;
        }
        for p in points {
            let Ok(time) = u32::try_from(p.timestamp) else {
                continue;
            };
            let table = table_name(&mut self.names, db, p.retention, p.method);
            let date = date_of(&mut self.date, p.timestamp);
            let rows = self.tables.entry(table).or_default();
            tsv_text(rows, p.name);
            let _ = writeln!(
                Out(rows),
                "\t{}\t{time}\t{date}\t{version}",
                value_text(p.value)
            );
            self.points += 1;
            if self
                .indexed
                .insert(xxhash_rust::xxh3::xxh3_64(p.name.as_bytes()))
            {
                let day = date_of(&mut self.date, now).to_string();
                let (table, tagged) = match p.name.contains(';') {
                    true => (schema::TAGGED_TABLE, true),
                    false => (schema::INDEX_TABLE, false),
                };
                let rows = self.tables.entry(format!("{db}.{table}")).or_default();
                if tagged {
                    tagged_rows(rows, p.name, &day, version);
                } else {
                    index_rows(rows, p.name, &day, version);
                }
                if let Some((hist, code)) = p.link {
                    let rows = self
                        .tables
                        .entry(format!("{db}.{}", schema::LINKS_TABLE))
                        .or_default();
                    let _ = write!(Out(rows), "{day}\t");
                    tsv_text(rows, p.name);
                    rows.push(b'\t');
                    tsv_text(rows, hist);
                    let _ = writeln!(Out(rows), "\t{}\t{version}", code.to_bits());
                }
            }
        }
        for h in hists {
            let Ok(time) = u32::try_from(h.timestamp) else {
                continue;
            };
            let date = date_of(&mut self.date, h.timestamp).to_string();
            let rows = self
                .tables
                .entry(format!("{db}.{}", schema::HISTS_TABLE))
                .or_default();
            tsv_text(rows, h.name);
            let _ = write!(Out(rows), "\t{time}\t{date}\t[");
            for (i, (unit, _)) in h.hist.buckets.iter().enumerate() {
                let _ = write!(Out(rows), "{}{unit}", if i > 0 { "," } else { "" });
            }
            rows.extend_from_slice(b"]\t[");
            for (i, (_, n)) in h.hist.buckets.iter().enumerate() {
                let _ = write!(Out(rows), "{}{n}", if i > 0 { "," } else { "" });
            }
            let _ = writeln!(Out(rows), "]\t{version}");
        }
    }
}

/// `fmt::Write` over a byte buffer.
struct Out<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Out<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// The `db.table` of a (retention, method), remembered.
fn table_name(
    names: &mut Vec<(String, Method, String)>,
    db: &str,
    retention: &str,
    method: Method,
) -> String {
    if let Some((_, _, t)) = names
        .iter()
        .find(|(r, m, _)| r == retention && *m == method)
    {
        return t.clone();
    }
    let t = format!("{db}.{}", schema::table_for(retention, method));
    names.push((retention.to_string(), method, t.clone()));
    t
}

/// `YYYY-MM-DD` of unix time `t` (UTC), remembered for its day.
fn date_of(cache: &mut (i64, String), t: i64) -> &str {
    let day = t.div_euclid(86_400);
    if cache.1.is_empty() || cache.0 != day {
        cache.0 = day;
        cache.1 = chrono::DateTime::from_timestamp(day * 86_400, 0)
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_else(|| "1970-01-01".into());
    }
    &cache.1
}

/// A value as ClickHouse's TabSeparated reads a Float64.
fn value_text(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        let mut b = ryu::Buffer::new();
        b.format_finite(v).to_string()
    }
}

/// A string field of TabSeparated: backslash, tab and newline escaped.
fn tsv_text(out: &mut Vec<u8>, s: &str) {
    for &c in s.as_bytes() {
        match c {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0 => out.extend_from_slice(b"\\0"),
            _ => out.push(c),
        }
    }
}

/// The path with its nodes in reverse order (`a.b.c` -> `c.b.a`).
fn reversed(path: &str) -> String {
    let mut nodes: Vec<&str> = path.split('.').collect();
    nodes.reverse();
    nodes.join(".")
}

/// A tagged series' rows in `graphite_tagged`, one per tag (`name=<its
/// path>` first), each with all of them in `Tags`, as carbon-clickhouse
/// writes them; `Path` is the series' name as rollupd stores it
/// (`a.b;k=v`), whose points are under the same name.
fn tagged_rows(out: &mut Vec<u8>, name: &str, day: &str, version: i64) {
    let mut parts = name.split(';');
    let path = parts.next().unwrap_or_default();
    let mut tags: Vec<String> = vec![format!("name={path}")];
    tags.extend(parts.filter(|t| t.contains('=')).map(str::to_string));
    // The array as ClickHouse reads it: quoted strings, `\` and `'`
    // escaped, then the whole field escaped for TabSeparated.
    let mut array = String::from("[");
    for (i, t) in tags.iter().enumerate() {
        if i > 0 {
            array.push(',');
        }
        array.push('\'');
        for c in t.chars() {
            if c == '\\' || c == '\'' {
                array.push('\\');
            }
            array.push(c);
        }
        array.push('\'');
    }
    array.push(']');
    for t in &tags {
        let _ = write!(Out(out), "{day}\t");
        tsv_text(out, t);
        out.push(b'\t');
        tsv_text(out, name);
        out.push(b'\t');
        tsv_text(out, &array);
        let _ = writeln!(Out(out), "\t{version}");
    }
}

/// carbon-clickhouse's index rows of one path: daily direct and reverse,
/// the tree of its parents and itself, and its reverse in the tree.
#[expect(
    clippy::cast_possible_truncation,
    reason = "the path is an accepted series' name, which the store caps at \
              MAX_NAME_BYTES (4096): at most 4097 levels"
)]
fn index_rows(out: &mut Vec<u8>, path: &str, day: &str, version: i64) {
    let depth = path.split('.').count() as u32;
    let mut row = |date: &str, level: u32, p: &str| {
        let _ = write!(Out(out), "{date}\t{level}\t");
        tsv_text(out, p);
        let _ = writeln!(Out(out), "\t{version}");
    };
    let rev = reversed(path);
    row(day, depth, path);
    row(day, REVERSE_LEVEL + depth, &rev);
    for (level, (at, _)) in path.match_indices('.').enumerate() {
        row(TREE_DATE, TREE_LEVEL + level as u32 + 1, &path[..=at]);
    }
    row(TREE_DATE, TREE_LEVEL + depth, path);
    row(TREE_DATE, REVERSE_TREE_LEVEL + depth, &rev);
}

impl Shared {
    /// Takes the buffered rows as a batch, if any.
    fn cut(&self, now: i64) -> Option<Batch> {
        let mut b = self.buffers.lock().unwrap_or_else(|p| p.into_inner());
        if b.tables.is_empty() {
            return None;
        }
        let points = std::mem::take(&mut b.points);
        let mut tables: Vec<(String, Vec<u8>)> = b.tables.drain().collect();
        // The indexes first: a path is findable no later than its points.
        tables.sort_by_key(|(t, _)| {
            !(t.ends_with(schema::INDEX_TABLE)
                || t.ends_with(schema::TAGGED_TABLE)
                || t.ends_with(schema::LINKS_TABLE))
        });
        Some(Batch {
            points,
            made: now,
            tables,
        })
    }

    fn note_depth(&self, q: &Queue) {
        let Depth {
            batches,
            bytes,
            points,
            oldest,
        } = q.depth();
        self.stats.queued_batches.store(batches, Relaxed);
        self.stats.queued_bytes.store(bytes, Relaxed);
        self.stats.queued_points.store(points, Relaxed);
        self.stats
            .queued_oldest
            .store(oldest.map_or(0, |t| u64::try_from(t).unwrap_or(0)), Relaxed);
    }

    /// Puts `b` on the disk queue (dropped, counted and logged past the
    /// cap or when the disk fails).
    fn enqueue(&self, b: &Batch) {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        self.direct.store(false, Relaxed);
        match q.push(b) {
            Ok(true) => {}
            Ok(false) => {
                self.stats.points_dropped.fetch_add(b.points, Relaxed);
                tracing::error!(
                    points = b.points,
                    queued_bytes = q.depth().bytes,
                    "clickhouse: the disk queue is at queue_max_bytes; a batch is dropped"
                );
            }
            Err(e) => {
                self.stats.points_dropped.fetch_add(b.points, Relaxed);
                tracing::error!(error = %e, points = b.points, "clickhouse: a batch could not be queued on disk; it is dropped");
            }
        }
        self.note_depth(&q);
    }

    /// The schema, made once (every statement is idempotent), on every
    /// server: with a cluster each needs its local tables.
    fn ensure_schema(&self) -> Result<(), ClickHouseError> {
        if self.schema_ready.load(Relaxed) {
            return Ok(());
        }
        for url in self.client.urls() {
            for st in &self.ddl {
                self.client.query_on(url, st)?;
            }
        }
        self.schema_ready.store(true, Relaxed);
        tracing::info!(
            servers = self.client.urls().len(),
            "clickhouse: schema in place"
        );
        Ok(())
    }

    /// Inserts `b`, table by table; on a failure, `b` keeps the tables not
    /// yet inserted.
    fn insert(&self, b: &mut Batch) -> Result<(), ClickHouseError> {
        self.ensure_schema()?;
        let started = Instant::now();
        while let Some((table, rows)) = b.tables.first() {
            self.client.insert(table, rows)?;
            b.tables.remove(0);
        }
        self.stats.last_insert_ms.store(
            u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            Relaxed,
        );
        self.stats.points_inserted.fetch_add(b.points, Relaxed);
        self.stats.batches_inserted.fetch_add(1, Relaxed);
        Ok(())
    }
}

fn cut_loop(s: &Shared, tx: &SyncSender<Batch>) {
    loop {
        let stopping = {
            let b = s.buffers.lock().unwrap_or_else(|p| p.into_inner());
            let (_b, _) = s
                .full
                .wait_timeout_while(b, s.interval, |b| {
                    b.points < s.batch_points && !s.stop.load(Relaxed)
                })
                .unwrap_or_else(|p| p.into_inner());
            s.stop.load(Relaxed)
        };
        if let Some(b) = s.cut(i64::try_from(rollupd_telemetry::unix_now()).unwrap_or(i64::MAX)) {
            if s.direct.load(Relaxed) {
                match tx.try_send(b) {
                    Ok(()) => {}
                    // The sender is busy with the last batch: this one waits
                    // on disk rather than in memory.
                    Err(TrySendError::Full(b) | TrySendError::Disconnected(b)) => s.enqueue(&b),
                }
            } else {
                s.enqueue(&b);
            }
        }
        if stopping {
            return;
        }
    }
}

/// When the next retry of the disk queue's oldest batch is due.
struct Retry {
    at: Instant,
    backoff: Duration,
}

impl Retry {
    fn failed(&mut self) {
        self.at = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    fn succeeded(&mut self) {
        self.backoff = Duration::from_secs(1);
    }
}

impl Shared {
    fn lock_queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Inserts a batch the cutter handed over, unless batches wait on disk
    /// (then it goes behind them); what fails goes to the disk queue.
    fn send_or_queue(&self, mut b: Batch, retry: &mut Retry) {
        if !self.lock_queue().is_empty() {
            self.enqueue(&b);
            return;
        }
        if let Err(e) = self.insert(&mut b) {
            self.stats.errors.fetch_add(1, Relaxed);
            tracing::warn!(error = %e, points = b.points, "clickhouse: an insert failed; the batch waits on disk");
            self.enqueue(&b);
            retry.failed();
        }
    }

    /// One try of the disk queue's oldest batch. True when it was inserted.
    fn send_queued(&self, retry: &mut Retry) -> bool {
        let Some(mut b) = self.lock_queue().front() else {
            return false;
        };
        match self.insert(&mut b) {
            Ok(()) => {
                retry.succeeded();
                let mut q = self.lock_queue();
                q.pop_front();
                self.note_depth(&q);
                if q.is_empty() {
                    self.direct.store(true, Relaxed);
                    tracing::info!("clickhouse: the disk queue is drained");
                }
                true
            }
            Err(e) => {
                self.stats.errors.fetch_add(1, Relaxed);
                retry.failed();
                let mut q = self.lock_queue();
                tracing::warn!(error = %e, retry_in = ?retry.backoff, queued = ?q.depth(), "clickhouse: a queued batch failed; retrying");
                // The tables already inserted are not sent again.
                if let Err(e) = q.replace_front(&b) {
                    tracing::error!(error = %e, "clickhouse: a queued batch could not be rewritten; it will be sent whole again");
                }
                false
            }
        }
    }
}

fn send_loop(s: &Shared, rx: &Receiver<Batch>) {
    let mut retry = Retry {
        at: Instant::now(),
        backoff: Duration::from_secs(1),
    };
    // The schema at once, so readers find the tables before the first
    // batch; a server not up yet is tried again with that batch.
    if let Err(e) = s.ensure_schema() {
        tracing::warn!(error = %e, "clickhouse: the schema could not be made yet; it is tried again with the first batch");
    }
    loop {
        if s.stop.load(Relaxed) {
            // What the cutter still hands over is sent once or queued; the
            // disk queue waits for the next start.
            for b in rx.iter() {
                s.send_or_queue(b, &mut retry);
            }
            return;
        }
        if Instant::now() >= retry.at && s.send_queued(&mut retry) {
            continue;
        }
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(b) => s.send_or_queue(b, &mut retry),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollupd_store::hist::Hist;

    fn text(b: &Buffers, table: &str) -> String {
        String::from_utf8(b.tables[table].clone()).unwrap()
    }

    #[test]
    fn points_go_to_their_rules_table_with_index_rows_once_a_day() {
        let mut b = Buffers::default();
        let day = 1_700_000_000 / 86_400 * 86_400;
        let p = |name, timestamp, value| MirroredPoint {
            name,
            timestamp,
            value,
            retention: "10s:2160,60s:10080",
            method: Method::Sum,
            link: None,
        };
        let h = Hist {
            buckets: vec![(1000, 2), (5000, 1)],
        };
        b.add(
            "g",
            &[
                p("a.b\tc", day + 10, 1.5),
                p("x;env=prod", day + 10, f64::NAN),
            ],
            &[MirroredHist {
                name: "t.api",
                timestamp: day + 10,
                hist: &h,
            }],
            day + 15,
        );
        assert_eq!(b.points, 2);
        let pts = text(&b, "g.points_sum_10s_2160_60s_10080");
        assert_eq!(
            pts,
            format!(
                "a.b\\tc\t1.5\t{t}\t2023-11-14\t{v}\nx;env=prod\tnan\t{t}\t2023-11-14\t{v}\n",
                t = day + 10,
                v = day + 15
            )
        );
        // The index: daily path and reverse, the tree, the reversed leaf;
        // a tagged name's rows are in the tagged table, one per tag.
        let v = day + 15;
        assert_eq!(
            text(&b, "g.graphite_tagged"),
            format!(
                "2023-11-14\tname=x\tx;env=prod\t['name=x','env=prod']\t{v}\n\
                 2023-11-14\tenv=prod\tx;env=prod\t['name=x','env=prod']\t{v}\n"
            )
        );
        assert_eq!(
            text(&b, "g.graphite_index"),
            format!(
                "2023-11-14\t2\ta.b\\tc\t{v}\n2023-11-14\t10002\tb\\tc.a\t{v}\n\
                 1970-02-12\t20001\ta.\t{v}\n1970-02-12\t20002\ta.b\\tc\t{v}\n\
                 1970-02-12\t30002\tb\\tc.a\t{v}\n"
            )
        );
        assert_eq!(
            text(&b, "g.rollupd_hists"),
            format!("t.api\t{}\t2023-11-14\t[1000,5000]\t[2,1]\t{v}\n", day + 10)
        );
        // The same path again that day: no more index rows; the next day: again.
        let before = b.tables["g.graphite_index"].len();
        b.add("g", &[p("a.b\tc", day + 20, 2.0)], &[], day + 25);
        assert_eq!(b.tables["g.graphite_index"].len(), before);
        b.add("g", &[p("a.b\tc", day + 86_400, 2.0)], &[], day + 86_405);
        assert!(b.tables["g.graphite_index"].len() > before);
        // A timer statistic's link to its histogram, once with its index rows.
        let code = rollupd_store::index::StatCode::of_field("upper_90").unwrap();
        let linked = MirroredPoint {
            link: Some(("t.api", code)),
            ..p("t.api.upper_90", day + 10, 7.0)
        };
        b.add("g", &[linked, linked], &[], day + 15);
        assert_eq!(
            text(&b, "g.rollupd_links"),
            format!(
                "2023-11-14\tt.api.upper_90\tt.api\t{}\t{v}\n",
                code.to_bits()
            )
        );
        // Points before 1970 or past 2106 have no UInt32 time: left out.
        b.add("g", &[p("old", -10, 1.0)], &[], day);
        assert!(!text(&b, "g.points_sum_10s_2160_60s_10080").contains("old"));
    }

    #[test]
    fn a_cut_puts_the_index_first_and_empties_the_buffers() {
        let cfg = ClickHouseConfig {
            urls: vec!["http://127.0.0.1:9".into()],
            ..ClickHouseConfig::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let w = Writer::start(&StorageConfig::default(), &cfg, dir.path()).unwrap();
        w.shared.buffers.lock().unwrap().add(
            "graphite",
            &[MirroredPoint {
                name: "a.b",
                timestamp: 100,
                value: 1.0,
                retention: "10s:6h",
                method: Method::Average,
                link: None,
            }],
            &[],
            100,
        );
        let b = w.shared.cut(7).unwrap();
        assert_eq!((b.points, b.made), (1, 7));
        assert_eq!(b.tables[0].0, "graphite.graphite_index");
        assert!(w.shared.cut(8).is_none());
        w.stop();
    }

    #[test]
    fn values_are_written_as_clickhouse_reads_them() {
        assert_eq!(value_text(0.1), "0.1");
        assert_eq!(value_text(1e300), "1e300");
        assert_eq!(value_text(f64::INFINITY), "inf");
        assert_eq!(value_text(f64::NEG_INFINITY), "-inf");
        assert_eq!(reversed("a.b.c"), "c.b.a");
    }
}
