//! The store's size and speed figures, on RocksDB (and on the in-memory
//! engine where that isolates the store's own cost). Prints a report; run
//! with `cargo bench --bench store -- [size|write|read|latency|sustained|compact|ramp]...`
//! (no argument: size, write and read).
//!
//! - `size`: a day of statsd output for 10,000 series at 10 s, produced by
//!   the real aggregator and Etsy naming from synthetic traffic (counters,
//!   timers with integer and two-decimal samples, gauges), written through
//!   the store with the default retention `10s:6h,1m:7d,10m:5y`, compacted;
//!   bytes of SST files per point at rest, all archives counted.
//! - `write`: points per second into the store, 10,000 series per batch.
//! - `read`: one series 24 h at 10 s; 1,000 series by one glob, 24 h at 1m.
//! - `latency`: how long a fetch waits while the store is busy: one reader
//!   fetching random series (the last hour) in a loop, beside a writer of
//!   250,000 points/s (1% of them late, into rows already stored), first
//!   alone, then while checkpoints run, then during a retention pass that
//!   deletes and compacts half the stored rows; p50/p99/max per phase, and
//!   resident memory.
//! - `sustained`: a stream of 250,000 points/s kept up with for 10 minutes
//!   of wall time (simulated time runs 100× faster, so rows seal,
//!   checkpoints run and retention deletes, on a thread of their own as in
//!   the daemon), sampling resident memory, `du` of the data dir and how
//!   far behind it fell.
//! - `compact`: what reclaiming a range-deleted range costs RocksDB (time,
//!   `du` before and after).
//! - `ramp`: memory, disk and write rate per live series as they ramp up
//!   to a million on a simulated clock, with restarts and render latency
//!   (see `ramp/mod.rs` for what it prints and its `RAMP_*` settings).
#![expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    reason = "benchmark data: series, row and sample indices, rates and point counts of this run (millions at most), non-negative and rounded, far inside the target types"
)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rollupd::aggregate::{Aggregator, Scratch};

/// The daemon's allocator (src/main.rs), so memory figures are the daemon's.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
use rollupd::config::{Config, StorageConfig};
use rollupd::emit::Emitter;
use rollupd::events::EventQueue;
#[cfg(feature = "rocksdb")]
use rollupd::rocks::RocksKv;
use rollupd::store::kv::{Kv, Space};
use rollupd::store::mem::MemKv;
use rollupd::store::row;
use rollupd::store::{Point, Store};
use rollupd::telemetry::{LocalCounts, Telemetry};

mod ramp;

const DAY: i64 = 86400;
const T0: i64 = 1_700_006_400;

fn rss_mb() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// The engine under the store: RocksDB when built with it (the default),
/// else the in-memory engine, whose bytes are the keys and values it holds
/// (what RocksDB's SST files hold, less their index and filter blocks).
#[derive(Clone)]
enum Engine {
    #[cfg(feature = "rocksdb")]
    Rocks(Arc<RocksKv>),
    #[allow(dead_code)]
    Mem(Arc<MemKv>),
}

impl Engine {
    fn name(&self) -> &'static str {
        match self {
            #[cfg(feature = "rocksdb")]
            Engine::Rocks(_) => "rocksdb",
            Engine::Mem(_) => "memory",
        }
    }

    fn kv(&self) -> Arc<dyn Kv> {
        match self {
            #[cfg(feature = "rocksdb")]
            Engine::Rocks(k) => k.clone(),
            Engine::Mem(k) => k.clone(),
        }
    }

    fn compact_all(&self) {
        match self {
            #[cfg(feature = "rocksdb")]
            Engine::Rocks(k) => k.compact_all(),
            Engine::Mem(_) => {}
        }
    }

    fn space_bytes(&self, space: Space) -> u64 {
        match self {
            #[cfg(feature = "rocksdb")]
            Engine::Rocks(k) => k.space_sst_bytes(space),
            Engine::Mem(k) => k.bytes(space),
        }
    }

    fn all_bytes(&self) -> u64 {
        match self {
            #[cfg(feature = "rocksdb")]
            Engine::Rocks(k) => k.sst_bytes(),
            Engine::Mem(k) => Space::ALL.iter().map(|s| k.bytes(*s)).sum(),
        }
    }

    fn disk_bytes(&self) -> u64 {
        self.kv().disk_bytes()
    }
}

fn open_rocks(dir: &Path, cfg: &StorageConfig) -> (Engine, Store) {
    #[cfg(feature = "rocksdb")]
    let engine = Engine::Rocks(Arc::new(RocksKv::open(dir).expect("open rocksdb")));
    #[cfg(not(feature = "rocksdb"))]
    let engine = Engine::Mem(Arc::new(MemKv::new()));
    let store = Store::open(engine.kv(), dir, cfg, 0).expect("open store");
    (engine, store)
}

/// Points at rest: present slots of every stored row.
fn points_at_rest(kv: &dyn Kv) -> u64 {
    let mut n = 0u64;
    kv.scan(Space::Rows, &[], &[0xff; 12], &mut |_, v| {
        let mut rest = &v[1..];
        if let Ok(c) = row::decode_presence(&mut rest, usize::MAX, |_| {}) {
            n += c as u64;
        }
        true
    })
    .expect("scan");
    n
}

/// Synthetic statsd traffic for one flush interval, as lines.
struct Traffic {
    rng: fastrand::Rng,
    counters: Vec<(String, f64)>,
    timers: Vec<(String, f64, bool)>,
    gauges: Vec<(String, f64)>,
}

impl Traffic {
    fn new() -> Self {
        let mut rng = fastrand::Rng::with_seed(42);
        let counters = (0..1800)
            .map(|i| {
                (
                    format!("app{}.svc{}.requests{i}", i % 7, i % 40),
                    0.2 + rng.f64() * 200.0,
                )
            })
            .collect();
        let timers = (0..420)
            .map(|i| {
                (
                    format!("app{}.svc{}.latency{i}", i % 7, i % 40),
                    5.0 + rng.f64() * 300.0,
                    i % 5 < 3,
                )
            })
            .collect();
        let gauges = (0..512)
            .map(|i| {
                (
                    format!("app{}.host{}.queue{i}", i % 7, i % 40),
                    rng.f64() * 1000.0,
                )
            })
            .collect();
        Traffic {
            rng,
            counters,
            timers,
            gauges,
        }
    }

    fn interval(&mut self, k: i64, out: &mut Vec<String>) {
        out.clear();
        let day = (k as f64 / 8640.0 * std::f64::consts::TAU).sin() * 0.5 + 1.0;
        for (name, mean) in &self.counters {
            let n = (mean * day * (0.7 + self.rng.f64() * 0.6)).round() as u64;
            if n > 0 {
                out.push(format!("{name}:{n}|c"));
            }
        }
        for (name, median, integer) in &self.timers {
            let n = self.rng.usize(1..30);
            for _ in 0..n {
                let v = median * day * (-(self.rng.f64().max(1e-9)).ln()).max(0.05);
                if *integer {
                    out.push(format!("{name}:{}|ms", v.round()));
                } else {
                    out.push(format!("{name}:{:.2}|ms", v));
                }
            }
        }
        for (name, level) in self.gauges.iter_mut() {
            if self.rng.f64() < 0.3 {
                *level = (*level + self.rng.f64() * 20.0 - 10.0).max(0.0).round();
            }
            out.push(format!("{name}:{level}|g"));
        }
    }
}

fn size() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = Config::default();
    let (kv, store) = open_rocks(dir.path(), &cfg.storage);
    let telemetry = Arc::new(Telemetry::new());
    let (events, _rx) = EventQueue::bounded();
    let agg = Aggregator::new(&cfg.statsd, telemetry.clone(), events);
    let emitter = Emitter::new(&cfg, telemetry);
    let mut traffic = Traffic::new();
    let mut lines = Vec::new();
    let mut scratch = Scratch::default();
    let mut counts = LocalCounts::default();
    let started = Instant::now();
    let mut written = 0u64;
    let mut series = 0usize;
    // SIZE_HOURS shortens the run while looking into where bytes go.
    let hours: i64 = std::env::var("SIZE_HOURS")
        .ok()
        .and_then(|h| h.parse().ok())
        .unwrap_or(24);
    let flushes = hours * 3600 / 10;
    for k in 0..flushes {
        traffic.interval(k, &mut lines);
        for l in &lines {
            agg.ingest_line(l.as_bytes(), &mut scratch, &mut counts);
        }
        let mut flush = agg.flush(Duration::from_secs(10));
        let now = T0 + k * 10;
        flush.timestamp = now;
        let before = store
            .stats
            .points_accepted
            .load(std::sync::atomic::Ordering::Relaxed);
        emitter.store_flush(&store, &flush);
        written += store
            .stats
            .points_accepted
            .load(std::sync::atomic::Ordering::Relaxed)
            - before;
        series = store.index().len();
        if k % 360 == 359 {
            store.maintain(now, true).expect("checkpoint");
            store.enforce_retention(now).expect("retention");
        }
    }
    let now = T0 + flushes * 10;
    store.maintain(now, true).expect("checkpoint");
    store.enforce_retention(now).expect("retention");
    let took = started.elapsed();
    kv.compact_all();
    let running = kv.space_bytes(Space::Rows);
    let running_points = points_at_rest(&*kv.kv());
    println!(
        "size: while running (open rows checkpointed raw): rows {running} B = {:.3} B/point",
        running as f64 / running_points as f64
    );
    // What a clean shutdown leaves: open rows compressed too.
    store.checkpoint_compact().expect("checkpoint");
    kv.compact_all();
    let rows = kv.space_bytes(Space::Rows);
    let hists = kv.space_bytes(Space::Hists);
    let all = kv.all_bytes();
    let at_rest = points_at_rest(&*kv.kv());
    println!(
        "size[{}]: {series} series, {written} points written over {hours} h of 10 s flushes in {took:.1?}",
        kv.name()
    );
    println!(
        "size: {at_rest} points at rest (10s:6h + 1m:7d + 10m:5y windows); rows {rows} B = {:.3} B/point; \
         with timer histograms {} B = {:.3} B/point; whole store {all} B = {:.3} B/point",
        rows as f64 / at_rest as f64,
        rows + hists,
        (rows + hists) as f64 / at_rest as f64,
        all as f64 / at_rest as f64,
    );
    by_kind(&*kv.kv(), &store);
    println!(
        "size: whisper for the same series: {:.1} MB preallocated ({} B per series), 12 B/point",
        series as f64 * 3_364_396.0 / 1e6,
        3_364_396
    );
}

/// What kind of statsd series a name is, for the size breakdown.
fn kind(name: &str) -> String {
    if let Some(rest) = name.strip_prefix("stats.timers.") {
        let stat = rest.rsplit('.').next().unwrap_or(rest);
        return format!("timer {stat}");
    }
    if name.starts_with("stats.gauges.") {
        return "gauge".into();
    }
    if name.starts_with("stats_counts.") {
        return "counter count".into();
    }
    if name.starts_with("stats.statsd.") || name.starts_with("statsd.") {
        return "rollupd's own".into();
    }
    "counter rate".into()
}

/// Bytes and points at rest per kind of series, largest first: where the
/// bytes go.
fn by_kind(kv: &dyn Kv, store: &Store) {
    let mut kinds: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
    let index = store.index();
    kv.scan(Space::Rows, &[], &[0xff; 12], &mut |k, v| {
        let Some(key) = row::RowKey::decode(k) else {
            return true;
        };
        let name = if (key.series as usize) < index.len() {
            kind(index.name(key.series))
        } else {
            String::new()
        };
        let mut rest = &v[1..];
        let n = row::decode_presence(&mut rest, usize::MAX, |_| {}).unwrap_or(0) as u64;
        let e = kinds.entry(name).or_default();
        e.0 += (k.len() + v.len()) as u64;
        e.1 += n;
        true
    })
    .expect("scan");
    let mut list: Vec<_> = kinds.into_iter().collect();
    list.sort_by_key(|(_, (b, _))| std::cmp::Reverse(*b));
    for (kind, (bytes, points)) in list {
        println!(
            "size:   {kind:<20} {:>6.1} MB {:>10} points {:>6.2} B/point (key and value)",
            bytes as f64 / 1e6,
            points,
            bytes as f64 / points.max(1) as f64
        );
    }
}

fn names(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("bench.h{}.s{}.m{}", i % 100, (i / 100) % 10, i))
        .collect()
}

fn write() {
    for engine in ["memory", "rocksdb"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = StorageConfig::default();
        let store = if engine == "memory" {
            Store::in_memory(&cfg).expect("store")
        } else if cfg!(feature = "rocksdb") {
            open_rocks(dir.path(), &cfg).1
        } else {
            continue;
        };
        let names = names(10_000);
        let batches = 2000i64;
        let mut rng = fastrand::Rng::with_seed(1);
        let vals: Vec<f64> = (0..10_000)
            .map(|_| f64::from(rng.u32(0..10_000)) / 10.0)
            .collect();
        let started = Instant::now();
        let mut pts: Vec<Point<'_>> = Vec::with_capacity(10_000);
        for b in 0..batches {
            let t = T0 + b * 10;
            pts.clear();
            pts.extend(names.iter().zip(&vals).map(|(n, v)| Point {
                name: n,
                timestamp: t,
                value: v + b as f64,
            }));
            store.write(&pts, &[], t).expect("write");
            if b % 360 == 359 {
                store.maintain(t, true).expect("checkpoint");
            }
        }
        store.maintain(T0 + batches * 10, true).expect("checkpoint");
        let took = started.elapsed().as_secs_f64();
        let n = batches as f64 * 10_000.0;
        println!(
            "write[{engine}]: {:.0} points in {took:.2} s = {:.2}M points/s (10,000 series x {batches} batches, every archive maintained, checkpoints included)",
            n,
            n / took / 1e6
        );
    }
}

fn read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = StorageConfig::default();
    let (_kv, store) = open_rocks(dir.path(), &cfg);
    let names = names(1000);
    let day = DAY / 10;
    let mut pts: Vec<Point<'_>> = Vec::with_capacity(1000);
    for b in 0..day {
        let t = T0 + b * 10;
        pts.clear();
        pts.extend(names.iter().enumerate().map(|(i, n)| Point {
            name: n,
            timestamp: t,
            value: ((i as i64 * 31 + b) % 1000) as f64 / 10.0,
        }));
        store.write(&pts, &[], T0 + day * 10).expect("write");
        if b % 720 == 719 {
            store.maintain(t, true).expect("checkpoint");
        }
    }
    let now = T0 + day * 10;
    store.checkpoint_compact().expect("checkpoint");
    // One series, 24 h at 10 s (a 10s:1d schema would be needed for 10 s
    // over 24 h with the default retention; read the finest that covers).
    let id = store.index().id(&names[0]).unwrap();
    let reps = 200;
    let t = Instant::now();
    for _ in 0..reps {
        let f = store.fetch(id, now - DAY, now, now).unwrap().unwrap();
        std::hint::black_box(f);
    }
    let one = t.elapsed() / reps;
    let f = store.fetch(id, now - DAY, now, now).unwrap().unwrap();
    println!(
        "read: one series, 24 h: {} points at {} s in {one:.1?}",
        f.values.len(),
        f.step
    );
    let t = Instant::now();
    let f6 = store.fetch(id, now - 6 * 3600, now, now).unwrap().unwrap();
    let six = t.elapsed();
    println!(
        "read: one series, 6 h at 10 s: {} points in {six:.1?}",
        f6.values.len()
    );
    let reps = 10;
    let t = Instant::now();
    let mut n = 0;
    for _ in 0..reps {
        let ids = store.index().expand("bench.*.*.*", 100_000).unwrap();
        n = ids.len();
        for id in ids {
            std::hint::black_box(store.fetch(id, now - DAY, now, now).unwrap());
        }
    }
    println!(
        "read: glob bench.*.*.* -> {n} series, 24 h at 1m each: {:.1?}",
        t.elapsed() / reps
    );
}

fn sustained() {
    use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = StorageConfig {
        checkpoint_interval: Duration::from_secs(5),
        ..StorageConfig::default()
    };
    let (kv, store) = open_rocks(dir.path(), &cfg);
    let store = Arc::new(store);
    let names = names(25_000);
    let per_sec = 250_000u64;
    let wall = Duration::from_secs(
        std::env::var("SUSTAINED_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(600),
    );
    // The store's own threads, as in the daemon: sealing on one,
    // checkpoints and retention on the other, beside the writer, on the
    // simulated clock.
    let clock = Arc::new(AtomicI64::new(T0));
    let stop = Arc::new(AtomicBool::new(false));
    let sealer = {
        let (store, clock, stop) = (store.clone(), clock.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let now = clock.load(Ordering::Relaxed);
                store.seal_ended_rows(now).expect("seal");
                std::thread::sleep(Duration::from_millis(250));
            }
        })
    };
    let upkeep = {
        let (store, clock, stop) = (store.clone(), clock.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut last_retention = T0;
            while !stop.load(Ordering::Relaxed) {
                let now = clock.load(Ordering::Relaxed);
                store.checkpoint_when_due(false).expect("checkpoint");
                if now - last_retention >= 3600 {
                    store.enforce_retention(now).expect("retention");
                    last_retention = now;
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        })
    };
    // The writer keeps up with a stream of `per_sec` points: it writes a
    // flush (one point per series) whenever it is behind, and sleeps when
    // it is ahead, so a slow moment must be made up for.
    let started = Instant::now();
    let mut b = 0i64;
    let mut pts: Vec<Point<'_>> = Vec::with_capacity(25_000);
    let mut written = 0u64;
    let mut behind_max = 0u64;
    let mut next_report = Duration::from_secs(30);
    let mut busy = Duration::ZERO;
    while started.elapsed() < wall {
        let due = (started.elapsed().as_secs_f64() * per_sec as f64) as u64;
        if written >= due {
            std::thread::sleep(Duration::from_millis(5));
        } else {
            behind_max = behind_max.max(due - written);
            let t0 = Instant::now();
            let t = T0 + b * 10;
            clock.store(t, Ordering::Relaxed);
            pts.clear();
            pts.extend(names.iter().enumerate().map(|(i, n)| Point {
                name: n,
                timestamp: t,
                value: ((i as i64 + b) % 97) as f64,
            }));
            store.write(&pts, &[], t).expect("write");
            written += pts.len() as u64;
            b += 1;
            busy += t0.elapsed();
        }
        if started.elapsed() >= next_report {
            next_report += Duration::from_secs(30);
            println!(
                "sustained: {:>4.0} s wall, {:.1} h simulated, {written} points, {:.0} points/s, writer busy {:.0}%, most behind {behind_max} points, RSS {:.0} MB, store {:.0} MB, du {:.0} MB, rows in memory {}",
                started.elapsed().as_secs_f64(),
                b as f64 * 10.0 / 3600.0,
                written as f64 / started.elapsed().as_secs_f64(),
                busy.as_secs_f64() / started.elapsed().as_secs_f64() * 100.0,
                rss_mb(),
                kv.disk_bytes() as f64 / 1e6,
                ramp::du(dir.path()) as f64 / 1e6,
                store.rows_in_memory(),
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    upkeep.join().expect("upkeep thread");
    sealer.join().expect("seal thread");
}

/// Latency percentiles of `v` (sorted in place), as text.
fn percentiles(v: &mut [Duration]) -> String {
    if v.is_empty() {
        return "no samples".into();
    }
    v.sort();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    format!(
        "{} fetches: p50 {:.1?}, p99 {:.1?}, max {:.1?}",
        v.len(),
        at(0.5),
        at(0.99),
        v[v.len() - 1]
    )
}

fn latency() {
    use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
    use std::sync::Mutex;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = StorageConfig {
        retention: vec![rollupd::config::RetentionRule {
            pattern: ".*".into(),
            retentions: "10s:2h,1m:1d".into(),
        }],
        ..StorageConfig::default()
    };
    let (_kv, store) = open_rocks(dir.path(), &cfg);
    let store = Arc::new(store);
    let series = 5000usize;
    let names = Arc::new(names(series));
    // Four hours at 10 s, checkpointed every half hour: the rows of the
    // first hours are on disk, the last ones in memory.
    let hours = 4i64;
    let mut pts: Vec<Point<'_>> = Vec::with_capacity(series);
    for b in 0..hours * 360 {
        let t = T0 + b * 10;
        pts.clear();
        pts.extend(names.iter().enumerate().map(|(i, n)| Point {
            name: n,
            timestamp: t,
            value: ((i as i64 + b) % 97) as f64,
        }));
        store.write(&pts, &[], t).expect("write");
        if b % 180 == 179 {
            store.maintain(t, true).expect("checkpoint");
        }
    }
    store.maintain(T0 + hours * 3600, true).expect("checkpoint");
    let clock = Arc::new(AtomicI64::new(T0 + hours * 3600));
    let stop = Arc::new(AtomicBool::new(false));
    // The writer: a batch of `series` points every 20 ms, 1% of them late
    // (three hours old, so their rows are read from the engine).
    let writer = {
        let (store, names, clock, stop) =
            (store.clone(), names.clone(), clock.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut rng = fastrand::Rng::with_seed(7);
            let mut b = 0i64;
            let mut pts: Vec<Point<'_>> = Vec::with_capacity(series);
            while !stop.load(Ordering::Relaxed) {
                let t0 = Instant::now();
                let t = T0 + hours * 3600 + b * 10;
                clock.store(t, Ordering::Relaxed);
                pts.clear();
                pts.extend(names.iter().enumerate().map(|(i, n)| {
                    let late = rng.u32(0..100) == 0;
                    Point {
                        name: n,
                        timestamp: if late {
                            t - 3 * 3600 - rng.i64(0..360) * 10
                        } else {
                            t
                        },
                        value: ((i as i64 + b) % 89) as f64,
                    }
                }));
                store.write(&pts, &[], t).expect("write");
                b += 1;
                if let Some(rest) = Duration::from_millis(20).checked_sub(t0.elapsed()) {
                    std::thread::sleep(rest);
                }
            }
        })
    };
    let samples: Arc<Mutex<Vec<(Instant, Duration)>>> = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let (store, clock, stop, samples) =
            (store.clone(), clock.clone(), stop.clone(), samples.clone());
        std::thread::spawn(move || {
            let mut rng = fastrand::Rng::with_seed(9);
            let mut out = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let now = clock.load(Ordering::Relaxed);
                let id = rng.u32(0..series as u32);
                let t0 = Instant::now();
                let f = store.fetch(id, now - 3600, now, now).expect("fetch");
                out.push((t0, t0.elapsed()));
                std::hint::black_box(f);
                std::thread::sleep(Duration::from_micros(200));
            }
            samples.lock().expect("samples").extend(out);
        })
    };
    let phase = |what: &str, f: &dyn Fn()| {
        let from = Instant::now();
        f();
        (what.to_string(), from, Instant::now())
    };
    let mut phases = Vec::new();
    phases.push(phase("writer only", &|| {
        std::thread::sleep(Duration::from_secs(5))
    }));
    phases.push(phase("during checkpoints", &|| {
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            store
                .maintain(clock.load(Ordering::Relaxed), true)
                .expect("checkpoint");
        }
    }));
    phases.push(phase("during a retention pass", &|| {
        // Two hours of 10 s rows (half those stored) expire.
        store
            .enforce_retention(clock.load(Ordering::Relaxed))
            .expect("retention");
    }));
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer");
    reader.join().expect("reader");
    let samples = samples.lock().expect("samples");
    for (what, from, until) in phases {
        let mut v: Vec<Duration> = samples
            .iter()
            .filter(|(t, _)| *t >= from && *t < until)
            .map(|s| s.1)
            .collect();
        println!(
            "latency[{what}, {:.1} s]: {}",
            (until - from).as_secs_f64(),
            percentiles(&mut v)
        );
    }
    println!(
        "latency: RSS {:.0} MB, reads under the store lock {}, write errors {}",
        rss_mb(),
        store
            .stats
            .reads_under_lock
            .load(std::sync::atomic::Ordering::Relaxed),
        store
            .stats
            .write_errors
            .load(std::sync::atomic::Ordering::Relaxed),
    );
}

/// What reclaiming a range-deleted range costs the engine: `COMPACT_MB`
/// (default 1024) of rows written in key order and compacted, the oldest
/// three quarters range-deleted as retention does, then `Kv::compact` on
/// that range: its time, and `du` of the data dir before and after.
fn compact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (engine, _store) = open_rocks(dir.path(), &StorageConfig::default());
    let kv = engine.kv();
    let mb: u64 = std::env::var("COMPACT_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let value = vec![0x5au8; 1000];
    let rows = mb * 1000;
    let key = |i: u64| {
        // Rows' key shape: schema 0, archive 0, start, series.
        let mut k = [0u8; 11];
        k[3..7].copy_from_slice(&((i / 1000) as u32).to_be_bytes());
        k[7..11].copy_from_slice(&((i % 1000) as u32).to_be_bytes());
        k
    };
    let mut i = 0;
    while i < rows {
        let mut b = rollupd::store::kv::Batch::default();
        for j in i..(i + 1000).min(rows) {
            b.put(Space::Rows, key(j).to_vec(), value.clone());
        }
        kv.write(b).expect("write");
        i += 1000;
    }
    engine.compact_all();
    let before = ramp::du(dir.path());
    let (from, to) = (key(0).to_vec(), key(rows / 4 * 3).to_vec());
    let mut b = rollupd::store::kv::Batch::default();
    b.delete_range(Space::Rows, from.clone(), to.clone());
    kv.write(b).expect("delete range");
    let t = Instant::now();
    kv.compact(Space::Rows, &from, &to);
    let took = t.elapsed();
    let mut left = 0u64;
    kv.scan(Space::Rows, &[], &[0xff; 12], &mut |_, _| {
        left += 1;
        true
    })
    .expect("scan");
    assert_eq!(
        left,
        rows - rows / 4 * 3,
        "rows left after the range delete"
    );
    println!(
        "compact[{}]: {rows} rows of 1000 B, 3/4 range-deleted: Kv::compact took {took:.2?}; du {:.0} MB before, {:.0} MB after; RSS {:.0} MB",
        engine.name(),
        before as f64 / 1e6,
        ramp::du(dir.path()) as f64 / 1e6,
        rss_mb()
    );
}

fn main() {
    // `cargo test --all-targets` runs bench targets too, without `--bench`
    // and in debug mode: measuring there would take an hour and mean
    // nothing.
    if !std::env::args().any(|a| a == "--bench") {
        println!("store bench: measures only under `cargo bench` (skipped)");
        return;
    }
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let want = |w: &str| {
        if args.is_empty() {
            !matches!(w, "sustained" | "latency" | "ramp" | "compact")
        } else {
            args.iter().any(|a| a == w)
        }
    };
    if want("size") {
        size();
    }
    if want("write") {
        write();
    }
    if want("read") {
        read();
    }
    if want("sustained") {
        sustained();
    }
    if want("latency") {
        latency();
    }
    if want("compact") {
        compact();
    }
    if want("ramp") {
        ramp::ramp();
    }
}
