//! The series index's memory and glob speed at a million series. Prints a
//! report; run with `cargo bench --no-default-features --bench index`
//! (optionally `-- N` for another series count).
//!
//! Names are what rollupd holds in practice: carbon-style host metrics
//! (`host.h00042.app.api.requests.count`), statsd timers with their
//! histograms (`stats.timers.api.endpoint_17.upper_90`), counters
//! (`stats_counts.api.x3.y7` and its rate), gauges, and 1% tagged names
//! (`cpu.load;host=h42;dc=dc3`). Memory is measured two ways around the
//! build only: live heap bytes by a counting global allocator (what the
//! index asked for), and the RSS delta from /proc/self/status (what the
//! process paid, malloc's rounding and growth slack included).
#![allow(unsafe_code)] // a counting global allocator

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

use rollupd::store::index::Index;
use rollupd::store::schema::Method;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new, Relaxed);
        LIVE.fetch_sub(l.size(), Relaxed);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn rss() -> usize {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: usize = s
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

const TIMER_STATS: [&str; 14] = [
    "count",
    "count_90",
    "count_ps",
    "lower",
    "mean",
    "mean_90",
    "median",
    "std",
    "sum",
    "sum_90",
    "sum_squares",
    "sum_squares_90",
    "upper",
    "upper_90",
];
const SERVICES: [&str; 8] = [
    "api", "web", "auth", "billing", "search", "queue", "mailer", "cdn",
];
const HOST_METRICS: [&str; 10] = [
    "requests.count",
    "requests.errors",
    "latency.p50",
    "latency.p99",
    "cpu.user",
    "cpu.system",
    "mem.used",
    "mem.free",
    "disk.read_bytes",
    "disk.write_bytes",
];

/// The `i`th name into `out` (true for a timer's first stat, whose
/// histogram the caller adds, as the store does for statsd timers).
fn name(i: usize, out: &mut String) -> bool {
    out.clear();
    match i % 100 {
        // 40%: carbon host metrics, 10 per app, 5 apps per host.
        0..40 => {
            let j = i / 100 * 40 + i % 100;
            let m = HOST_METRICS[j % 10];
            let host = j / 50;
            let svc = SERVICES[j / 10 % 5];
            write!(out, "host.h{host:05}.{svc}.app.{m}").unwrap();
        }
        // 35%: statsd timers, all their stats.
        40..75 => {
            let j = i / 100 * 35 + i % 100 - 40;
            let stat = TIMER_STATS[j % TIMER_STATS.len()];
            let ep = j / TIMER_STATS.len();
            let svc = SERVICES[ep % SERVICES.len()];
            write!(out, "stats.timers.{svc}.endpoint_{ep}.{stat}").unwrap();
            return j.is_multiple_of(TIMER_STATS.len());
        }
        // 20%: counters (count and rate).
        75..95 => {
            let j = i / 100 * 20 + i % 100 - 75;
            let prefix = if j.is_multiple_of(2) {
                "stats_counts"
            } else {
                "stats"
            };
            let svc = SERVICES[j / 200 % SERVICES.len()];
            write!(out, "{prefix}.{svc}.x{}.y{}", j / 2 / 100, j / 2 % 100).unwrap();
        }
        // 4%: gauges.
        95..99 => {
            let j = i / 100 * 4 + i % 100 - 95;
            let svc = SERVICES[j % SERVICES.len()];
            write!(out, "stats.gauges.{svc}.queue_{j}.depth").unwrap();
        }
        // 1%: tagged.
        _ => {
            let j = i / 100;
            write!(out, "cpu.load;host=h{j};dc=dc{}", j % 7).unwrap();
        }
    }
    false
}

fn timed<T>(runs: u32, mut f: impl FnMut() -> T) -> (T, f64) {
    let mut out = f();
    let t = Instant::now();
    for _ in 0..runs {
        out = black_box(f());
    }
    (out, t.elapsed().as_secs_f64() * 1e3 / f64::from(runs))
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let mut buf = String::with_capacity(128);
    let mut name_bytes = 0usize;
    let (heap0, rss0) = (LIVE.load(Relaxed), rss());
    let t = Instant::now();
    let mut ix = Index::default();
    let mut hists = 0usize;
    for i in 0..n {
        if name(i, &mut buf) {
            let (base, _) = buf.rsplit_once('.').unwrap();
            ix.add_hist(base, 0);
            name_bytes += base.len();
            hists += 1;
        }
        ix.add_series(&buf, 0, Method::Average, 0.5);
        name_bytes += buf.len();
    }
    let build = t.elapsed();
    let (heap, rss1) = (LIVE.load(Relaxed) - heap0, rss() - rss0);
    let per = |b: usize| b as f64 / n as f64;
    println!(
        "index: {n} series + {hists} histograms built in {build:.2?}; names {:.1} bytes/series on average",
        per(name_bytes)
    );
    println!(
        "index: heap {:.1} MiB = {:.1} bytes/series ({:.1} beyond the name bytes); RSS delta {:.1} MiB = {:.1} bytes/series",
        heap as f64 / 1048576.0,
        per(heap),
        per(heap) - per(name_bytes),
        rss1 as f64 / 1048576.0,
        per(rss1)
    );
    let (own, ms) = timed(20, || ix.heap_bytes());
    println!(
        "index: its own count (Index::heap_bytes, {ms:.2} ms) {:.1} MiB, {:+.1}% off the allocator's",
        own as f64 / 1048576.0,
        (own as f64 / heap as f64 - 1.0) * 100.0
    );
    assert_eq!(ix.len(), n);
    name(7, &mut buf);
    assert_eq!(ix.id(&buf), Some(7));

    // The write path's lookup: every point's name, every flush.
    let sample: Vec<String> = (0..n)
        .step_by(7)
        .map(|i| {
            name(i, &mut buf);
            buf.clone()
        })
        .collect();
    let (hits, ms) = timed(5, || sample.iter().filter(|s| ix.id(s).is_some()).count());
    assert_eq!(hits, sample.len());
    println!(
        "index: id(name) {:.0} ns per lookup ({} names)",
        ms * 1e6 / sample.len() as f64,
        sample.len()
    );

    for (pattern, runs) in [
        ("host.*.api.app.*", 20),
        ("stats.timers.api.*.upper_90", 20),
        ("host.h0000[0-9].*.app.cpu.*", 200),
        ("stats_counts.web.x1.y42", 2000),
    ] {
        let (found, ms) = timed(runs, || ix.find(pattern, 10_000_000).unwrap().len());
        println!("index: find({pattern:?}) -> {found} paths in {ms:.3} ms");
    }
}
