//! `ramp`: how much memory and disk the store takes per live series, and
//! how fast it writes, as live series ramp up to a million.
//!
//! The store runs on RocksDB in a temp dir with the default storage rules
//! (`10s:6h,1m:7d,10m:5y`), on a SIMULATED clock: every live series gets a
//! point per 10 s of simulated time, and simulated time runs as fast as the
//! store takes the points. The writer sends batches of [`BATCH`] points, as
//! the carbon listener hands a read's points to `Store::write` (at most
//! `ingest::carbon::MAX_BATCH`, 4,096). Two upkeep threads, as the
//! daemon's: one calls `checkpoint_when_due` each simulated second, forces
//! a checkpoint every 5 simulated minutes (the configured interval is
//! wall-clock, so it is set out of the way) and enforces retention every
//! 10 simulated minutes; the other calls `seal_ended_rows` as simulated
//! time passes.
//!
//! After each level (100k, 250k, 500k, 1M live series, up to `RAMP_MAX`) it
//! prints one line: series, points, write rate over the level, RSS now and
//! peak, checkpoints, `du` of the data dir, the live bytes of the row
//! spaces, bytes per point as `du` shows them. Then it restarts the store
//! twice: as after `kill -9` (dropped without closing: the log since the
//! last checkpoint is replayed) and after a clean `close`. At the top level
//! it also times renders (while upkeep runs, and again once it has
//! stopped): one series over -1h, and the 1,000 series of one
//! glob over -1h and -24h.
//!
//! Environment:
//! - `RAMP_MAX` (1000000): live series at the top level.
//! - `RAMP_MINUTES` (30): simulated minutes at the top level;
//!   `RAMP_LOWER_MINUTES` (10, at most `RAMP_MINUTES`) at the levels below.
//! - `RAMP_VALUES` (`statsd`): statsd-shaped values (integer counters that
//!   grow by a little, gauges that wander, constant series); `random`: any
//!   f64.
//! - `RAMP_RSS_LIMIT_MB` (20000): the ramp stops, with a line that says so,
//!   once the process's RSS passes it.
//! - `RAMP_CACHE_MB`, `RAMP_MEMTABLE_MB`: RocksDB's block cache and
//!   memtable budget (`RocksOptions`' defaults when unset).
//! - `RAMP_EVERY_MINUTES` (0: off): every so many simulated minutes, one
//!   line of `du` against the rows' live bytes and the bytes written to
//!   disk so far (`/proc/self/io`), so the disk is seen between level ends.
//!   Every line also gives the largest `du` sampled (every 250 ms) since
//!   the line before: the disk at its fullest, while a settle's output and
//!   inputs are both there.
//! - `RAMP_LOG` (unset): a tracing filter (`info`, `rollupd=debug`) for
//!   the store's log lines on stderr.
//! - `RAMP_MAX_LAG` (60): simulated seconds the writer may run ahead of
//!   the upkeep thread before it waits (0: never waits), so checkpoints
//!   come every 5 simulated minutes, as the daemon's do, however long
//!   each takes. The write rate then includes that wait; "store alone"
//!   leaves it out.
//! - `RAMP_ROCKS_<FAMILY>` (unset): mutable RocksDB options of one
//!   family (`RAMP_ROCKS_HEADS="level0_file_num_compaction_trigger=8"`,
//!   `;` between settings), set after each open: settings measured
//!   without a rebuild.
//! - `RAMP_MAX_MEMORY_MB` (1024): `[storage] max_memory`, the budget whose
//!   quarter the rows in memory may hold before a checkpoint is forced.
#![expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    reason = "benchmark figures of this run: milliseconds waited, series indices (a million at most), sample ranks and the simulated clock, far inside the target types"
)]

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rollupd::config::StorageConfig;
use rollupd::store::kv::{Kv, Space};
use rollupd::store::{Point, Store};

use super::T0;

mod proc;
pub(crate) use proc::du;
use proc::{du_split, status_mb, write_bytes};

/// Points per `Store::write`, as carbon's reads deliver them.
const BATCH: usize = 4096;
/// Live series at each level; the top level is `RAMP_MAX`.
const LEVELS: [usize; 4] = [100_000, 250_000, 500_000, 1_000_000];
/// Simulated seconds between forced checkpoints.
const CHECKPOINT_EVERY: i64 = 300;
/// Simulated seconds between retention passes.
const RETENTION_EVERY: i64 = 600;
/// Simulated seconds the writer may run ahead of the upkeep thread's last
/// finished `maintain` (`RAMP_MAX_LAG`; 0: unbounded, as before it had a
/// bound, for write rates comparable with older runs). Unbounded, a checkpoint of a few wall seconds let
/// the writer run on for 20 simulated minutes (13 checkpoints in 260
/// minutes at 50k series, where the daemon on a real clock makes 52): the
/// log outgrew its memtable before a checkpoint covered it, and fragments
/// held four times the points, which no daemon sees.
const MAX_LAG: i64 = 60;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v}: not a number")),
        Err(_) => default,
    }
}

/// The levels up to `max`, ending at `max`.
fn levels(max: usize) -> Vec<usize> {
    let mut l: Vec<usize> = LEVELS.iter().copied().filter(|&n| n < max).collect();
    l.push(max);
    l
}

/// Writes series `i`'s name, carbon-style: 1,000 series per host, so one
/// host's glob (`host.0007.*.metric.*`) names 1,000 series.
fn name(i: usize, out: &mut String) {
    let mut b = itoa::Buffer::new();
    out.push_str("host.");
    let host = b.format(i / 1000);
    for _ in host.len()..4 {
        out.push('0');
    }
    out.push_str(host);
    out.push_str(".app");
    out.push_str(b.format((i / 100) % 10));
    out.push_str(".metric.");
    out.push_str(b.format(i % 100));
}

/// The values each series sends.
struct Values {
    random: bool,
    rng: fastrand::Rng,
    last: Vec<f64>,
}

impl Values {
    fn new(random: bool) -> Self {
        Values {
            random,
            rng: fastrand::Rng::with_seed(11),
            last: Vec::new(),
        }
    }

    /// The next value of series `i`. Statsd-shaped: six in ten are counters
    /// (integers growing by 0..=3 a point), three in ten gauges wandering by
    /// tenths, one in ten constant.
    fn next(&mut self, i: usize) -> f64 {
        if self.random {
            return f64::from_bits(self.rng.u64(..) >> 2) * (self.rng.f64() - 0.5);
        }
        if i >= self.last.len() {
            let rng = &mut self.rng;
            self.last
                .extend((self.last.len()..=i).map(|j| match j % 10 {
                    0..=5 => f64::from(rng.u32(0..100_000)),
                    6..=8 => f64::from(rng.u32(0..10_000)) / 10.0,
                    _ => (j % 3) as f64,
                }));
        }
        let v = &mut self.last[i];
        match i % 10 {
            0..=5 => *v += f64::from(self.rng.u32(0..=3)),
            6..=8 => *v = ((*v * 10.0).round() + f64::from(self.rng.i32(-5..=5))).max(0.0) / 10.0,
            _ => {}
        }
        *v
    }
}

/// Upkeep beside the writer, as the daemon's two upkeep threads, on the
/// simulated clock: one checkpoints and enforces retention, one seals.
struct Upkeep {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
    sealer: JoinHandle<()>,
}

/// What the upkeep thread measured.
#[derive(Default)]
struct UpkeepStats {
    checkpoints: AtomicU64,
    checkpoint_max_ms: AtomicU64,
    retention_passes: AtomicU64,
    retention_max_ms: AtomicU64,
    /// The simulated time of the last `maintain` finished.
    upkept: AtomicI64,
    /// Wall time the writer waited for the upkeep thread ([`MAX_LAG`]).
    waited_ms: AtomicU64,
}

/// Waits until the simulated clock passes `last` and returns its time
/// (now `last`), or `None` once `stop` is set.
fn next_tick(clock: &AtomicI64, stop: &AtomicBool, last: &mut i64) -> Option<i64> {
    while !stop.load(Relaxed) {
        let now = clock.load(Relaxed);
        if now > *last {
            *last = now;
            return Some(now);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    None
}

impl Upkeep {
    fn start(store: Arc<Store>, clock: Arc<AtomicI64>, stats: Arc<UpkeepStats>) -> Upkeep {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (stop, store, clock) = (stop.clone(), store.clone(), clock.clone());
            std::thread::spawn(move || {
                let start = clock.load(Relaxed);
                // Checkpoints fall half-way between level ends, so a crash
                // at a level's end leaves half an interval in the log to
                // replay, as a crash at a random moment would on average.
                let (mut last, mut last_ckpt, mut last_ret) =
                    (start, start - CHECKPOINT_EVERY / 2, start);
                stats.upkept.store(start, Relaxed);
                while let Some(now) = next_tick(&clock, &stop, &mut last) {
                    let force = now - last_ckpt >= CHECKPOINT_EVERY;
                    let t = Instant::now();
                    store.checkpoint_when_due(force).expect("checkpoint");
                    if force {
                        last_ckpt = now;
                        stats.checkpoints.fetch_add(1, Relaxed);
                        let ms = t.elapsed().as_millis() as u64;
                        stats.checkpoint_max_ms.fetch_max(ms, Relaxed);
                    }
                    if now - last_ret >= RETENTION_EVERY {
                        last_ret = now;
                        let t = Instant::now();
                        store.enforce_retention(now).expect("retention");
                        stats.retention_passes.fetch_add(1, Relaxed);
                        let ms = t.elapsed().as_millis() as u64;
                        stats.retention_max_ms.fetch_max(ms, Relaxed);
                    }
                    stats.upkept.store(now, Relaxed);
                }
            })
        };
        let sealer = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut last = i64::MIN;
                while let Some(now) = next_tick(&clock, &stop, &mut last) {
                    store.seal_ended_rows(now).expect("seal");
                }
            })
        };
        Upkeep {
            stop,
            thread,
            sealer,
        }
    }

    fn stop(self) {
        self.stop.store(true, Relaxed);
        self.thread.join().expect("upkeep thread");
        self.sealer.join().expect("seal thread");
    }
}

/// An open store and what runs beside it.
struct Running {
    engine: super::Engine,
    store: Arc<Store>,
    upkeep: Upkeep,
}

fn open(
    dir: &Path,
    cfg: &StorageConfig,
    now: i64,
    clock: &Arc<AtomicI64>,
    stats: &Arc<UpkeepStats>,
) -> (Running, Duration) {
    let t = Instant::now();
    let engine = open_engine(dir);
    let store = Arc::new(Store::open(engine.kv(), dir, cfg, now).expect("open store"));
    let took = t.elapsed();
    let upkeep = Upkeep::start(store.clone(), clock.clone(), stats.clone());
    (
        Running {
            engine,
            store,
            upkeep,
        },
        took,
    )
}

fn open_engine(dir: &Path) -> super::Engine {
    #[cfg(feature = "rocksdb")]
    {
        let opts = rollupd::rocks::RocksOptions::default();
        let opts = rollupd::rocks::RocksOptions {
            cache_bytes: env::<usize>("RAMP_CACHE_MB", opts.cache_bytes >> 20) << 20,
            memtable_bytes: env::<usize>("RAMP_MEMTABLE_MB", opts.memtable_bytes >> 20) << 20,
        };
        let kv = rollupd::rocks::RocksKv::open_with(dir, &opts).expect("open rocksdb");
        // `RAMP_ROCKS_LOG="level0_file_num_compaction_trigger=8;..."`: a
        // family's mutable RocksDB options, set after open.
        for s in Space::ALL {
            let var = format!("RAMP_ROCKS_{}", s.name().to_uppercase());
            let Ok(text) = std::env::var(&var) else {
                continue;
            };
            let pairs: Vec<(&str, &str)> = text
                .split(';')
                .filter(|p| !p.trim().is_empty())
                .map(|p| {
                    p.split_once('=')
                        .unwrap_or_else(|| panic!("{var}: {p}: not name=value"))
                })
                .map(|(k, v)| (k.trim(), v.trim()))
                .collect();
            kv.set_options(s, &pairs)
                .unwrap_or_else(|e| panic!("{var}={text}: {e}"));
        }
        super::Engine::Rocks(Arc::new(kv))
    }
    #[cfg(not(feature = "rocksdb"))]
    {
        let _ = dir;
        super::Engine::Mem(Arc::new(rollupd::store::mem::MemKv::new()))
    }
}

/// What the engine holds in memory, by its own counters.
fn engine_memory(engine: &super::Engine) -> String {
    match engine {
        #[cfg(feature = "rocksdb")]
        super::Engine::Rocks(k) => {
            let m = k.memory();
            format!(
                "rocksdb: cache {:.0} MB of which pinned {:.0} MB, memtables {:.0} MB, table readers {:.0} MB",
                mb(m.cache),
                mb(m.cache_pinned),
                mb(m.memtables),
                mb(m.table_readers)
            )
        }
        super::Engine::Mem(_) => "in-memory engine".into(),
    }
}

/// Where `du` goes: RocksDB's tables by space, its write-ahead log, the
/// rest.
fn disk_split(engine: &super::Engine, dir: &Path) -> String {
    let (sst, wal, other) = du_split(dir);
    let mut text = format!("sst {:.1} MB", mb(sst));
    #[cfg(feature = "rocksdb")]
    if let super::Engine::Rocks(k) = engine {
        let spaces: Vec<String> = Space::ALL
            .iter()
            .map(|s| format!("{} {:.1}", s.name(), mb(k.live_sst_bytes(*s))))
            .collect();
        let _ = write!(text, " (live: {} MB)", spaces.join(", "));
    }
    #[cfg(not(feature = "rocksdb"))]
    let _ = engine;
    let _ = write!(
        text,
        ", rocksdb's wal {:.1} MB, other {:.1} MB",
        mb(wal),
        mb(other)
    );
    text
}

/// The engine the `du` sampler asks for its tables, emptied while the
/// store is closed and reopened (a reference held then would keep the
/// database's lock).
type PeakEngine = Arc<std::sync::Mutex<Option<super::Engine>>>;

/// At a `du` peak: each space's tables RocksDB still reads (a
/// compaction's inputs are on disk until it ends, but no longer here).
fn peak_detail(slot: PeakEngine) -> Box<dyn Fn() -> String + Send> {
    Box::new(move || {
        #[cfg(feature = "rocksdb")]
        if let Some(super::Engine::Rocks(k)) = &*slot.lock().unwrap() {
            let spaces: Vec<String> = Space::ALL
                .iter()
                .map(|s| format!("{} {:.1}", s.name(), mb(k.live_sst_bytes(*s))))
                .filter(|t| !t.ends_with(" 0.0"))
                .collect();
            let held: u64 = Space::ALL.iter().map(|s| k.held_sst_bytes(*s)).sum();
            return format!(
                " [live: {}; replaced but held by a reader {:.1}]",
                spaces.join(", "),
                mb(held)
            );
        }
        let _ = &slot;
        String::new()
    })
}

/// What RocksDB wrote since it opened, per family with writes, in bytes
/// per point written since then (`points`): its WAL, flushes, and
/// compactions' output by level; then the process's own `write_bytes`
/// over the same points beside their sum (the kernel's count also holds
/// RocksDB's LOG and MANIFEST, and misses what was deleted before
/// writeback).
fn write_lines(engine: &super::Engine, points: u64, process_written: u64) -> String {
    #[cfg(feature = "rocksdb")]
    let mut text = String::new();
    #[cfg(not(feature = "rocksdb"))]
    let text = String::new();
    #[cfg(feature = "rocksdb")]
    if let super::Engine::Rocks(k) = engine {
        let per = |b: u64| b as f64 / points.max(1) as f64;
        let mut sum = (0u64, 0u64, 0u64);
        for s in Space::ALL {
            let w = k.writes(s);
            if w.wal + w.flushed + w.compacted_total() == 0 {
                continue;
            }
            sum = (
                sum.0 + w.wal,
                sum.1 + w.flushed,
                sum.2 + w.compacted_total(),
            );
            let levels: Vec<String> = w
                .compacted
                .iter()
                .enumerate()
                .filter(|(_, b)| **b > 0)
                .map(|(l, b)| format!("L{l} {:.2}", per(*b)))
                .collect();
            let _ = writeln!(
                text,
                "ramp:   {:<10} wal {:6.2}  flushed {:6.2}  compacted {:6.2} ({}) B/point",
                s.name(),
                per(w.wal),
                per(w.flushed),
                per(w.compacted_total()),
                if levels.is_empty() {
                    "-".into()
                } else {
                    levels.join(", ")
                },
            );
        }
        let _ = writeln!(
            text,
            "ramp:   {:<10} wal {:6.2}  flushed {:6.2}  compacted {:6.2} = {:.2} B/point over {points} points since open; the process wrote {:.2}",
            "all",
            per(sum.0),
            per(sum.1),
            per(sum.2),
            per(sum.0 + sum.1 + sum.2),
            per(process_written),
        );
    }
    let _ = (engine, points, process_written);
    text
}

/// The spaces that hold rows: every space but the log, the metadata, the
/// series index and events, so a new row space is counted without a
/// change here.
fn row_spaces() -> impl Iterator<Item = Space> {
    Space::ALL
        .into_iter()
        .filter(|s| !matches!(s, Space::Log | Space::Meta | Space::Series | Space::Events))
}

/// Live bytes of the row spaces (values; keys beside), read through the
/// engine: what the compressed rows themselves take.
fn row_bytes(kv: &dyn Kv) -> Vec<(Space, u64, u64)> {
    row_spaces()
        .map(|s| {
            let (mut values, mut keys) = (0u64, 0u64);
            kv.scan(s, &[], &[0xff; 32], &mut |k, v| {
                values += v.len() as u64;
                keys += k.len() as u64;
                true
            })
            .expect("scan");
            (s, values, keys)
        })
        .collect()
}

/// The largest `du` of the data dir seen since it was last taken, sampled
/// every 250 ms on a thread of its own: a settle's output and inputs are
/// both on disk for a few seconds, between the lines' own `du`.
struct DuPeak {
    peak: Arc<AtomicU64>,
    /// `du_split` (tables, RocksDB's WAL, the rest) when the peak was seen.
    split: Arc<std::sync::Mutex<(u64, u64, u64)>>,
    /// The engine's own tables by space when the peak was seen.
    detail: Arc<std::sync::Mutex<String>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl DuPeak {
    fn start(dir: &Path, detail_of: Box<dyn Fn() -> String + Send>) -> DuPeak {
        let (peak, stop) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let split = Arc::new(std::sync::Mutex::new((0, 0, 0)));
        let detail = Arc::new(std::sync::Mutex::new(String::new()));
        let (p, s, sp, dir) = (peak.clone(), stop.clone(), split.clone(), dir.to_path_buf());
        let d = detail.clone();
        let thread = std::thread::spawn(move || {
            while !s.load(Relaxed) {
                let parts = du_split(&dir);
                let total = parts.0 + parts.1 + parts.2;
                if p.fetch_max(total, Relaxed) < total {
                    *sp.lock().unwrap() = parts;
                    *d.lock().unwrap() = detail_of();
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        });
        DuPeak {
            peak,
            split,
            detail,
            stop,
            thread: Some(thread),
        }
    }

    /// The peak since the last call (at least `now`), and a new start.
    fn take(&self, now: u64) -> u64 {
        self.peak.swap(0, Relaxed).max(now)
    }

    /// The peak against the rows' bytes now and at the line before (the
    /// rows grow between lines, so the second is the upper bound).
    fn text(&self, disk: u64, rows: u64, prev_rows: &mut u64) -> String {
        let peak = self.take(disk);
        let (sst, wal, other) = std::mem::take(&mut *self.split.lock().unwrap());
        let detail = std::mem::take(&mut *self.detail.lock().unwrap());
        let before = if *prev_rows == 0 { rows } else { *prev_rows };
        *prev_rows = rows;
        format!(
            "du peak since the line before {:.1} MB (sst {:.1}{detail}, wal {:.1}, other {:.1}) = {:.2}x these rows + keys ({:.2}x the line before's)",
            mb(peak),
            mb(sst),
            mb(wal),
            mb(other),
            peak as f64 / rows.max(1) as f64,
            peak as f64 / before.max(1) as f64
        )
    }
}

impl Drop for DuPeak {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One line of `du` against the rows' live bytes, at simulated minute
/// `k / 6` (`RAMP_EVERY_MINUTES`): the disk as it stands between level ends.
fn snapshot(
    engine: &super::Engine,
    dir: &Path,
    k: i64,
    steps: &VecDeque<(i64, u64)>,
    written_at_start: u64,
    since_open: (u64, u64),
    (peak, prev_rows): (&DuPeak, &mut u64),
) {
    let disk = du(dir);
    let rows = row_bytes(&*engine.kv());
    let values: u64 = rows.iter().map(|r| r.1).sum();
    let keys: u64 = rows.iter().map(|r| r.2).sum();
    let now = T0 + k * 10;
    let points: u64 = steps
        .iter()
        .filter(|(t, _)| *t >= now - 6 * 3600)
        .map(|s| s.1)
        .sum();
    let all: u64 = steps.iter().map(|s| s.1).sum();
    let written = write_bytes().saturating_sub(written_at_start);
    println!(
        "ramp: minute {}: du {:.1} MB, rows {:.1} MB + keys {:.1} MB, du/(rows + keys) {:.2}, {}, du {:.2} B/point, written {:.0} MB = {:.1} B/point since the start ({})",
        k / 6,
        mb(disk),
        mb(values),
        mb(keys),
        disk as f64 / (values + keys).max(1) as f64,
        peak.text(disk, values + keys, prev_rows),
        disk as f64 / points.max(1) as f64,
        mb(written),
        written as f64 / all.max(1) as f64,
        disk_split(engine, dir),
    );
    print!(
        "{}",
        write_lines(
            engine,
            since_open.0,
            write_bytes().saturating_sub(since_open.1)
        )
    );
}

/// Hands the freed heap of a closed store back to the kernel, so the RSS
/// printed after a reopen is the new store's, not the old one's garbage
/// (without it RSS after a clean restart read 482 MB where the store
/// before it had 257 MB).
#[allow(unsafe_code)] // malloc_trim(3), through libc
fn trim() {
    // SAFETY: malloc_trim takes no pointers and is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn mb(b: u64) -> f64 {
    b as f64 / 1e6
}

fn pct(v: &mut [Duration], q: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// Render latencies on the open store at `now`; `when` says what else
/// runs meanwhile.
fn renders(store: &Store, engine: &super::Engine, now: i64, when: &str) {
    let files = match engine {
        #[cfg(feature = "rocksdb")]
        super::Engine::Rocks(kv) => [Space::Heads, Space::Rows]
            .iter()
            .map(|&s| format!("{} {:?}", s.name(), kv.level_files(s)))
            .collect::<Vec<_>>()
            .join(", "),
        _ => String::new(),
    };
    println!("ramp: renders {when} (table files by level: {files}):");
    let one = store
        .index()
        .id("host.0000.app0.metric.0")
        .expect("series 0");
    let mut lat: Vec<Duration> = (0..200)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(store.fetch(one, now - 3600, now, now).expect("fetch"));
            t.elapsed()
        })
        .collect();
    println!(
        "ramp: render one series -1h: p50 {:.2?} p99 {:.2?} (200 fetches)",
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99)
    );
    let glob = "host.0000.*.metric.*";
    for (what, span) in [("-1h", 3600), ("-24h", 86400)] {
        let mut n = 0;
        let mut points = 0;
        let mut lat: Vec<Duration> = (0..20)
            .map(|_| {
                let t = Instant::now();
                let ids = store.index().expand(glob, 100_000).expect("glob");
                n = ids.len();
                points = 0;
                for id in ids {
                    let f = store.fetch(id, now - span, now, now).expect("fetch");
                    points += f.map_or(0, |f| f.values.iter().filter(|v| !v.is_nan()).count());
                }
                t.elapsed()
            })
            .collect();
        println!(
            "ramp: render glob {glob} ({n} series, {points} points) {what}: p50 {:.1?} p99 {:.1?} (20 renders: expand, then fetch each)",
            pct(&mut lat, 0.5),
            pct(&mut lat, 0.99)
        );
    }
}

pub(crate) fn ramp() {
    // `RAMP_LOG=info` (or any filter) shows the store's own log lines,
    // the seal's phases with the resident set among them.
    if let Ok(filter) = std::env::var("RAMP_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .try_init();
    }
    let max: usize = env("RAMP_MAX", 1_000_000);
    let top_minutes: i64 = env("RAMP_MINUTES", 30);
    let lower_minutes: i64 = env("RAMP_LOWER_MINUTES", 10).min(top_minutes);
    let random = std::env::var("RAMP_VALUES").is_ok_and(|v| v == "random");
    let rss_limit: f64 = env("RAMP_RSS_LIMIT_MB", 20_000.0);
    let dir = tempfile::tempdir().expect("tempdir");
    // The configured interval is wall-clock: the upkeep thread checkpoints
    // on the simulated clock instead. `max_memory` is the budget under test
    // (`RAMP_MAX_MEMORY_MB`, 1024: the daemon's default is a quarter of
    // RAM); every other setting is the default.
    let cfg = StorageConfig {
        checkpoint_interval: Duration::from_secs(86400),
        max_memory: env::<u64>("RAMP_MAX_MEMORY_MB", 1024) << 20,
        ..StorageConfig::default()
    };
    let clock = Arc::new(AtomicI64::new(T0));
    let up = Arc::new(UpkeepStats::default());
    println!(
        "ramp: up to {max} series, {lower_minutes} simulated min per level below the top, {top_minutes} at it, {} values, batches of {BATCH}; RSS before the store {:.0} MB",
        if random { "random" } else { "statsd-shaped" },
        status_mb("VmRSS")
    );
    let (mut run, _) = open(dir.path(), &cfg, T0, &clock, &up);
    println!(
        "ramp: engine {}, data dir {}",
        run.engine.name(),
        dir.path().display()
    );
    let mut values = Values::new(random);
    let (mut names, mut spans) = (String::new(), Vec::<(usize, usize, f64, i64)>::new());
    // Points written per simulated step, for the points still in retention.
    let mut steps: VecDeque<(i64, u64)> = VecDeque::new();
    let (mut total, mut k) = (0u64, 0i64);
    let ret10 = 6 * 3600;
    let levels = levels(max);
    let every: i64 = env("RAMP_EVERY_MINUTES", 0);
    let max_lag: i64 = env("RAMP_MAX_LAG", MAX_LAG);
    let written_at_start = write_bytes();
    // Points written, and the process's write_bytes, when the engine
    // opened: RocksDB's counts start from zero at each open.
    let mut opened_at = (0u64, written_at_start);
    let peak_engine: PeakEngine = Arc::new(std::sync::Mutex::new(Some(run.engine.clone())));
    let du_peak = DuPeak::start(dir.path(), peak_detail(peak_engine.clone()));
    let mut prev_rows = 0u64;
    'levels: for (li, &series) in levels.iter().enumerate() {
        let top = li + 1 == levels.len();
        let minutes = if top { top_minutes } else { lower_minutes };
        let started = Instant::now();
        let written_before = write_bytes();
        let mut busy_gen = Duration::ZERO;
        let mut busy_wait = Duration::ZERO;
        let mut level_points = 0u64;
        let mut stopped = None;
        for _ in 0..minutes * 6 {
            let t = T0 + k * 10;
            let w = Instant::now();
            while max_lag > 0 && t - up.upkept.load(Relaxed) > max_lag {
                std::thread::sleep(Duration::from_millis(1));
            }
            busy_wait += w.elapsed();
            up.waited_ms
                .fetch_add(w.elapsed().as_millis() as u64, Relaxed);
            let mut i = 0;
            while i < series {
                let g = Instant::now();
                let end = (i + BATCH).min(series);
                names.clear();
                spans.clear();
                for j in i..end {
                    let from = names.len();
                    name(j, &mut names);
                    // Senders' clocks spread the points over the step.
                    spans.push((from, names.len(), values.next(j), t + (j % 10) as i64));
                }
                let pts: Vec<Point<'_>> = spans
                    .iter()
                    .map(|&(a, b, value, timestamp)| Point {
                        name: &names[a..b],
                        timestamp,
                        value,
                    })
                    .collect();
                let now = t + (10 * end / series) as i64;
                busy_gen += g.elapsed();
                let w = run.store.write(&pts, &[], now).expect("write");
                assert_eq!(w.accepted as usize, pts.len(), "points refused: {w:?}");
                clock.store(now, Relaxed);
                i = end;
            }
            k += 1;
            level_points += series as u64;
            steps.push_back((t, series as u64));
            if every > 0 && k % (every * 6) == 0 {
                snapshot(
                    &run.engine,
                    dir.path(),
                    k,
                    &steps,
                    written_at_start,
                    (total + level_points - opened_at.0, opened_at.1),
                    (&du_peak, &mut prev_rows),
                );
            }
            let rss = status_mb("VmRSS");
            if rss > rss_limit {
                stopped = Some(rss);
                break;
            }
        }
        total += level_points;
        let took = started.elapsed().as_secs_f64();
        let level_written = write_bytes().saturating_sub(written_before);
        let now = T0 + k * 10;
        while steps.front().is_some_and(|(t, _)| *t < now - ret10) {
            steps.pop_front();
        }
        let in_retention: u64 = steps.iter().map(|s| s.1).sum();
        let (rss, hwm) = (status_mb("VmRSS"), status_mb("VmHWM"));
        let engine_mem = engine_memory(&run.engine);
        let disk = du(dir.path());
        let split = disk_split(&run.engine, dir.path());
        let rows = row_bytes(&*run.engine.kv());
        let row_total: u64 = rows.iter().map(|r| r.1).sum();
        let peak_text = du_peak.text(disk, rows.iter().map(|r| r.1 + r.2).sum(), &mut prev_rows);
        let mut row_text = String::new();
        for (s, v, keys) in &rows {
            if !row_text.is_empty() {
                row_text.push_str(", ");
            }
            let _ = write!(
                row_text,
                "{} {:.1} MB + keys {:.1} MB",
                s.name(),
                mb(*v),
                mb(*keys)
            );
        }
        println!(
            "ramp[{series}]: {series} live series, {level_points} points in {:.1} s wall ({} simulated min; {total} points in all), {:.2}M points/s (store alone, without making the points or waiting for upkeep, {:.2}M/s), RSS {rss:.0} MB peak {hwm:.0} MB = {:.0} B/series ({engine_mem}), checkpoints {} (last {} ms, longest {} ms), retention passes {} (longest {} ms), writer waited {} ms for upkeep, du {:.1} MB ({split}), rows {:.1} MB ({row_text}), du {:.2} B/point and rows {:.2} B/point of {in_retention} points within the 10s:6h archive's retention, du/(rows + keys) {:.2}, {peak_text}, written to disk over the level {:.0} MB = {:.1} B/point",
            took,
            level_points / series as u64 / 6,
            level_points as f64 / took / 1e6,
            level_points as f64 / (took - busy_gen.as_secs_f64() - busy_wait.as_secs_f64()) / 1e6,
            rss * 1048576.0 / series as f64,
            up.checkpoints.load(Relaxed),
            run.store.stats.last_checkpoint_ms.load(Relaxed),
            up.checkpoint_max_ms.load(Relaxed),
            up.retention_passes.load(Relaxed),
            up.retention_max_ms.load(Relaxed),
            up.waited_ms.load(Relaxed),
            mb(disk),
            mb(row_total),
            disk as f64 / in_retention as f64,
            row_total as f64 / in_retention as f64,
            disk as f64 / rows.iter().map(|r| r.1 + r.2).sum::<u64>().max(1) as f64,
            mb(level_written),
            level_written as f64 / level_points as f64,
        );
        print!(
            "{}",
            write_lines(
                &run.engine,
                total - opened_at.0,
                write_bytes().saturating_sub(opened_at.1)
            )
        );
        if let Some(rss) = stopped {
            println!(
                "ramp: STOPPED at {series} series, simulated minute {}: RSS {rss:.0} MB passed RAMP_RSS_LIMIT_MB={rss_limit:.0}",
                (k * 10) / 60
            );
            break 'levels;
        }
        if top {
            renders(
                &run.store,
                &run.engine,
                now,
                "while upkeep runs (a seal, a checkpoint, a settle may share the cores)",
            );
        }
        // As after kill -9: nothing closed, the log since the last
        // checkpoint replayed at open.
        let Running {
            engine,
            store,
            upkeep,
        } = run;
        upkeep.stop();
        if top {
            // The same reads with the cores to themselves: what a render
            // costs, apart from what upkeep takes from it.
            store.wait_for_settle();
            renders(&store, &engine, now, "with upkeep stopped");
        }
        drop(store);
        peak_engine.lock().unwrap().take();
        drop(engine);
        trim();
        let (r, took) = open(dir.path(), &cfg, now, &clock, &up);
        println!(
            "ramp[{series}]: restart without close (as after kill -9): reopen {took:.2?}, {} log batches replayed, {} series, RSS {:.0} MB",
            r.store.stats.replayed_batches.load(Relaxed),
            r.store.index().len(),
            status_mb("VmRSS")
        );
        // A clean stop: the final compacting checkpoint, then reopen.
        r.upkeep.stop();
        let t = Instant::now();
        let closed = r.store.close();
        let close_took = t.elapsed();
        drop(r.store);
        drop(r.engine);
        trim();
        let (r, took) = open(dir.path(), &cfg, now, &clock, &up);
        *peak_engine.lock().unwrap() = Some(r.engine.clone());
        println!(
            "ramp[{series}]: restart after close ({closed:?} in {close_took:.2?}): reopen {took:.2?}, {} log batches replayed, RSS {:.0} MB, du {:.1} MB",
            r.store.stats.replayed_batches.load(Relaxed),
            status_mb("VmRSS"),
            mb(du(dir.path()))
        );
        run = r;
        opened_at = (total, write_bytes());
    }
    run.upkeep.stop();
}
