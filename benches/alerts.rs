//! Alert evaluation cost: 1,000 rules, each a glob over 10 series (10,000
//! instances), evaluated from a RocksDB store holding an hour of 10 s
//! points for those series, with no HTTP in the way. Prints the time of a
//! whole round (every rule due), the cost per instance and the share of a
//! 10 s interval, and the process's RSS.
//!
//! `cargo bench --bench alerts` (env ALERT_RULES, ALERT_SERIES_PER_RULE,
//! ALERT_ROUNDS).
#![expect(
    clippy::cast_possible_wrap,
    reason = "series indices and round numbers of this benchmark (thousands at most) fit an i64"
)]

use std::sync::Arc;
use std::time::Instant;

use rollupd::alert::engine::Alerts;
use rollupd::config::{AlertsConfig, StorageConfig};
use rollupd::events::store::EventStore;
use rollupd::store::kv::Kv;
use rollupd::store::{Point, Store};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_mb() -> f64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = s
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / 1e6
}

fn main() {
    // `cargo test --all-targets` runs bench binaries without `--bench`:
    // measure only under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        println!("alerts bench: measures only under `cargo bench` (skipped)");
        return;
    }
    let rules = env("ALERT_RULES", 1000);
    let per = env("ALERT_SERIES_PER_RULE", 10);
    let rounds = env("ALERT_ROUNDS", 10);
    let dir = tempfile::tempdir().unwrap();
    let cfg = StorageConfig::default();
    #[cfg(feature = "rocksdb")]
    let kv: Arc<dyn Kv> = Arc::new(rollupd::rocks::RocksKv::open(dir.path()).unwrap());
    #[cfg(not(feature = "rocksdb"))]
    let kv: Arc<dyn Kv> = Arc::new(rollupd::store::mem::MemKv::new());
    // A multiple of every interval used, so rounds land on the grid.
    let now: i64 = 1_800_000_000;
    let store = Arc::new(Store::open(kv.clone(), dir.path(), &cfg, now - 3600).unwrap());
    let names: Vec<String> = (0..rules)
        .flat_map(|r| (0..per).map(move |s| format!("app{r}.host{s}.latency")))
        .collect();
    let t = Instant::now();
    for k in 0..360 {
        let ts = now - 3600 + k * 10;
        let pts: Vec<Point<'_>> = names
            .iter()
            .enumerate()
            .map(|(i, n)| Point {
                name: n,
                timestamp: ts,
                value: 100.0 + ((i as i64 * 7 + k) % 50) as f64,
            })
            .collect();
        store.write(&pts, &[], ts).unwrap();
    }
    println!(
        "wrote {} series × 360 points in {:.1} s; RSS {:.0} MB",
        names.len(),
        t.elapsed().as_secs_f64(),
        rss_mb()
    );
    let rules_dir = dir.path().join("rules");
    std::fs::create_dir_all(&rules_dir).unwrap();
    let mut text = String::new();
    for r in 0..rules {
        // Half the rules fire, so transitions, events and states are
        // written in the first round as they would be.
        let crit = if r % 2 == 0 { 120 } else { 1000 };
        text.push_str(&format!(
            "[[rule]]\nname = \"r{r}\"\ntarget = \"app{r}.*.latency\"\nreducer = \"p99\"\nwindow = \"5min\"\ndirection = \"above\"\nwarn = {}\ncrit = {crit}\ninterval = \"10s\"\n\n",
            crit - 10
        ));
    }
    std::fs::write(rules_dir.join("bench.toml"), text).unwrap();
    let acfg = AlertsConfig {
        rules: vec![format!("{}/*.toml", rules_dir.display())],
        ..Default::default()
    };
    let events = Arc::new(EventStore::open(kv.clone()).unwrap());
    let alerts = Alerts::open(
        &store,
        store.clone(),
        events,
        &acfg,
        std::time::Duration::from_secs(10),
        "http://127.0.0.1:8080".into(),
        None,
    )
    .unwrap();
    assert_eq!(alerts.rule_count(), rules);
    let mut times = Vec::new();
    for round in 0..rounds {
        let at = now + round as i64 * 10;
        // Live traffic goes on: a point per series per interval (not
        // timed), so each round's window holds what a live one would.
        if round > 0 {
            let k = 360 + round as i64;
            let pts: Vec<Point<'_>> = names
                .iter()
                .enumerate()
                .map(|(i, n)| Point {
                    name: n,
                    timestamp: at - 10,
                    value: 100.0 + ((i as i64 * 7 + k) % 50) as f64,
                })
                .collect();
            store.write(&pts, &[], at).unwrap();
        }
        let t = Instant::now();
        let n = alerts.round(at);
        times.push(t.elapsed().as_secs_f64());
        assert_eq!(n, rules, "every rule due each 10 s");
    }
    let counts = alerts.state_counts();
    let instances: usize = counts.values().sum();
    assert_eq!(instances, rules * per);
    let first = times[0];
    let mut rest: Vec<f64> = times[1..].to_vec();
    rest.sort_by(f64::total_cmp);
    let median = rest.get(rest.len() / 2).copied().unwrap_or(first);
    println!(
        "{rules} rules, {instances} instances: first round {:.0} ms (every instance new, {} transitions written), steady round median {:.0} ms = {:.2}% of a 10 s interval, {:.1} µs per instance; states {counts:?}; RSS {:.0} MB",
        first * 1e3,
        alerts.stats.transitions.load(std::sync::atomic::Ordering::Relaxed),
        median * 1e3,
        median / 10.0 * 100.0,
        median * 1e6 / instances as f64,
        rss_mb()
    );
}
