//! The store's behaviour on the in-memory engine: whisper-exact rollups,
//! true percentiles from merged histograms, replay after a crash, retention
//! and a full disk.
#![expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    reason = "test values are small constants: slot and point indexes of a few rows, offsets inside a fetched window, retentions of a few years"
)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use super::hist::Hist;
use super::kv::{Kv, Space};
use super::mem::MemKv;
use super::schema::{Method, Retention};
use super::{Point, RateLink, StatLink, Store};
use crate::config::{AggregationRule, RetentionRule, StorageConfig};

const T0: i64 = 1_700_006_400; // a multiple of every span used here

fn cfg(retentions: &str, method: &str, xff: f64) -> StorageConfig {
    StorageConfig {
        retention: vec![RetentionRule {
            pattern: ".*".into(),
            retentions: retentions.into(),
        }],
        aggregation: vec![AggregationRule {
            pattern: ".*".into(),
            method: method.into(),
            x_files_factor: xff,
        }],
        ..StorageConfig::default()
    }
}

fn open(kv: &Arc<MemKv>, c: &StorageConfig) -> Store {
    let dynkv: Arc<dyn Kv> = kv.clone();
    Store::open(dynkv, Path::new("mem"), c, 0).unwrap()
}

/// Point `point` of a write is stat `field` of its first histogram.
fn link(point: usize, field: &str) -> StatLink {
    StatLink {
        point,
        hist: 0,
        stat: super::index::StatCode::of_field(field).unwrap(),
    }
}

fn pt(name: &str, timestamp: i64, value: f64) -> Point<'_> {
    Point {
        name,
        timestamp,
        value,
    }
}

/// whisper's update and fetch, written from its documented algorithm, over
/// unbounded maps, as carbon-cache drives it for points that arrive live:
/// each point lands in the finest archive and propagates from there. (For a
/// point older than the finest retention whisper would write the coarse slot
/// raw; the store rolls such points up from the finest archive too, so this
/// is the reference for every point, late ones included.)
struct RefWhisper {
    archives: Vec<(i64, i64)>,
    data: Vec<BTreeMap<i64, f64>>,
    method: Method,
    xff: f32,
}

impl RefWhisper {
    fn new(text: &str, method: Method, xff: f32) -> Self {
        let r = Retention::parse(text).unwrap();
        let archives: Vec<(i64, i64)> = r
            .archives
            .iter()
            .map(|a| (i64::from(a.step), a.retention() as i64))
            .collect();
        RefWhisper {
            data: vec![BTreeMap::new(); archives.len()],
            archives,
            method,
            xff,
        }
    }

    fn update(&mut self, ts: i64, v: f64, now: i64) {
        let diff = now - ts;
        let max = self.archives.last().unwrap().1;
        if !(diff < max && diff >= 0) {
            return;
        }
        let step = self.archives[0].0;
        let my = ts - ts.rem_euclid(step);
        self.data[0].insert(my, v);
        for lower in 1..self.archives.len() {
            let hstep = self.archives[lower - 1].0;
            let lstep = self.archives[lower].0;
            let start = my - my.rem_euclid(lstep);
            let neighbors: Vec<f64> = (0..lstep / hstep)
                .map(|k| {
                    let t = start + k * hstep;
                    self.data[lower - 1].get(&t).copied().unwrap_or(f64::NAN)
                })
                .collect();
            match self.method.aggregate(&neighbors, self.xff) {
                Some(agg) => {
                    self.data[lower].insert(start, agg);
                }
                None => break,
            }
        }
    }

    fn fetch(&self, from: i64, until: i64, now: i64) -> (i64, i64, i64, Vec<f64>) {
        let max = self.archives.last().unwrap().1;
        let from = from.max(now - max);
        let until = until.min(now);
        let diff = now - from;
        let a = self.archives.iter().position(|a| a.1 >= diff).unwrap();
        let step = self.archives[a].0;
        let fi = from - from.rem_euclid(step) + step;
        let mut ui = until - until.rem_euclid(step) + step;
        if fi == ui {
            ui += step;
        }
        let vals = (0..(ui - fi) / step)
            .map(|k| {
                self.data[a]
                    .get(&(fi + k * step))
                    .copied()
                    .unwrap_or(f64::NAN)
            })
            .collect();
        (fi, ui, step, vals)
    }
}

fn same(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            (x.is_nan() && y.is_nan()) || x == y || (x - y).abs() <= 1e-9 * x.abs().max(1.0)
        })
}

#[test]
fn points_read_back_at_the_finest_archive() {
    let store = Store::in_memory(&StorageConfig::default()).unwrap();
    let pts: Vec<(String, i64, f64)> = (0..360)
        .map(|i| ("web.hits".to_string(), T0 + i * 10, i as f64 * 0.1))
        .collect();
    let batch: Vec<Point<'_>> = pts.iter().map(|p| pt(&p.0, p.1, p.2)).collect();
    let now = T0 + 3600;
    let w = store.write(&batch, &[], now).unwrap();
    assert_eq!(w.accepted, 360);
    let id = store.index().id("web.hits").unwrap();
    let f = store.fetch(id, T0 - 10, now, now).unwrap().unwrap();
    assert_eq!((f.from, f.until, f.step), (T0, now + 10, 10));
    for i in 0..360 {
        assert_eq!(f.values[i], i as f64 * 0.1, "slot {i}");
    }
    assert!(f.values[360].is_nan());
}

#[test]
fn rollups_equal_whisper_for_every_method_with_gaps_and_late_points() {
    let text = "10s:1h,1m:6h,10m:2d";
    for (method, xff) in [
        ("average", 0.5),
        ("sum", 0.0),
        ("min", 0.1),
        ("max", 0.3),
        ("last", 0.0),
        ("average", 0.9),
    ] {
        let c = cfg(text, method, xff);
        let store = Store::in_memory(&c).unwrap();
        let mut reference = RefWhisper::new(text, Method::parse(method).unwrap(), xff as f32);
        let mut rng = fastrand::Rng::with_seed(7);
        // 8 hours of 10 s points, written in flushes, some missing, some
        // late (arriving up to 3 hours behind the clock).
        let mut late: Vec<(i64, f64)> = Vec::new();
        let mut now = T0;
        for k in 0..(8 * 360) {
            now = T0 + k * 10;
            let mut batch = Vec::new();
            if rng.f64() > 0.25 {
                batch.push((now, f64::from(rng.u32(0..1000)) / 10.0));
            }
            if rng.f64() < 0.02 {
                late.push((now - rng.i64(0..3 * 3600), rng.f64() * 100.0));
            }
            if k % 97 == 0 {
                batch.append(&mut late);
            }
            let points: Vec<Point<'_>> = batch.iter().map(|&(t, v)| pt("s", t, v)).collect();
            store.write(&points, &[], now).unwrap();
            for &(t, v) in &batch {
                reference.update(t, v, now);
            }
            if k % 500 == 0 {
                store.maintain(now, true).unwrap();
            }
        }
        let id = store.index().id("s").unwrap();
        // Reads that land in each archive.
        for from_ago in [1800, 5 * 3600, 40 * 3600] {
            let (fi, ui, step, want) = reference.fetch(now - from_ago, now, now);
            let got = store.fetch(id, now - from_ago, now, now).unwrap().unwrap();
            assert_eq!(
                (got.from, got.until, i64::from(got.step)),
                (fi, ui, step),
                "{method}"
            );
            assert!(
                same(&got.values, &want),
                "{method} xff {xff} from -{from_ago}s differs:\n got {:?}\nwant {:?}",
                &got.values,
                &want
            );
            // (At xff 0.9, 75% of 10 s points rarely make a 10m point.)
            assert!(
                xff > 0.8 && from_ago > 86400 || want.iter().any(|v| !v.is_nan()),
                "{method} -{from_ago}: the comparison saw no data"
            );
        }
    }
}

#[test]
fn a_backfill_rolls_up_as_live_traffic_does() {
    // A day of 10 s points sent at once, long after the fact (carbon
    // replaying a queue, an import): every coarse point is the rollup of
    // its fine points, not the last raw value whisper would keep.
    let text = "10s:1h,1m:6h,10m:2d";
    let store = Store::in_memory(&cfg(text, "sum", 0.0)).unwrap();
    let start = T0 - T0.rem_euclid(600);
    let now = start + 2 * 86400 - 3600;
    let pts: Vec<(i64, f64)> = (0..8640)
        .map(|i| (start + i * 10, (i % 7) as f64))
        .collect();
    let batch: Vec<Point<'_>> = pts.iter().map(|&(t, v)| pt("b", t, v)).collect();
    assert_eq!(store.write(&batch, &[], now).unwrap().accepted, 8640);
    let id = store.index().id("b").unwrap();
    let f = store.fetch(id, start - 1, now, now).unwrap().unwrap();
    assert_eq!((f.step, f.from), (600, start));
    let mut checked = 0;
    for (k, got) in f.values.iter().enumerate() {
        let b = f.from + k as i64 * 600;
        let want: f64 = pts
            .iter()
            .filter(|p| p.0 >= b && p.0 < b + 600)
            .map(|p| p.1)
            .sum();
        if b >= start && b + 600 <= start + 86400 {
            assert_eq!(*got, want, "10m bucket at {b}");
            checked += 1;
        }
    }
    assert_eq!(checked, 144);
}

#[test]
fn old_points_roll_up_from_the_finest_archive() {
    let text = "10s:1h,1m:6h,10m:2d";
    let store = Store::in_memory(&cfg(text, "sum", 0.0)).unwrap();
    let now = T0 + 86400;
    // Two hours old: into the 10s archive, rolled up into 1m and 10m.
    let t = now - 7200;
    store
        .write(&[pt("x", t, 5.0), pt("x", t + 60, 6.0)], &[], now)
        .unwrap();
    let id = store.index().id("x").unwrap();
    let f = store.fetch(id, now - 3 * 3600, now, now).unwrap().unwrap();
    assert_eq!(f.step, 60);
    let at = |f: &super::Fetched, ts: i64| f.values[((ts - f.from) / i64::from(f.step)) as usize];
    assert_eq!(at(&f, t - t % 60), 5.0);
    let f = store.fetch(id, now - 10 * 3600, now, now).unwrap().unwrap();
    assert_eq!(f.step, 600);
    let b = t - t.rem_euclid(600);
    assert_eq!(at(&f, b), 11.0);
    // Past every retention, and too far ahead: rejected and counted.
    let w = store
        .write(
            &[pt("x", now - 3 * 86400, 1.0), pt("x", now + 3600, 1.0)],
            &[],
            now,
        )
        .unwrap();
    assert_eq!((w.accepted, w.too_old, w.too_new), (0, 1, 1));
    assert_eq!(
        store
            .stats
            .points_too_old
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[test]
fn out_of_order_points_last_write_wins() {
    let store = Store::in_memory(&StorageConfig::default()).unwrap();
    let now = T0 + 600;
    store.write(&[pt("g", T0 + 10, 1.0)], &[], now).unwrap();
    store.write(&[pt("g", T0 + 20, 2.0)], &[], now).unwrap();
    store.write(&[pt("g", T0 + 10, 3.0)], &[], now).unwrap();
    let id = store.index().id("g").unwrap();
    let f = store.fetch(id, T0, T0 + 30, now).unwrap().unwrap();
    assert_eq!(&f.values[..2], &[3.0, 2.0]);
}

/// Timer samples whose distribution changes a lot within ten minutes:
/// mostly fast, with a slow burst in one minute.
/// A histogram outside the u32 seconds rows are keyed by is dropped, as a
/// point there is (it went to the row its wrapped-around start named).
#[test]
fn a_histogram_out_of_row_time_is_dropped_like_a_point() {
    let store = Store::in_memory(&cfg("10s:6h,1m:7d", "average", 0.0)).unwrap();
    let h = Hist::from_sorted_samples(&[1.0, 2.0]);
    let w = store
        .write(&[pt("a.b", -10, 1.0)], &[("a.t", -10, h)], 100)
        .unwrap();
    assert_eq!(w.too_new, 1);
    assert_eq!(store.rows_in_memory(), 0);
}

/// Schema ids are 16 bits: past 65,536 schemas none is added (an id that
/// wrapped around would have rewritten schema 0's record).
#[test]
fn schema_ids_stop_at_16_bits() {
    let mut schemas = super::Schemas {
        list: vec![],
        shapes: vec![],
        by_text: std::collections::HashMap::new(),
    };
    let r = Retention::parse("10s:6h").unwrap();
    for want in 0..=u16::MAX {
        assert_eq!(schemas.add(r.clone()), Some(want));
    }
    assert_eq!(schemas.add(r), None);
    assert_eq!(schemas.list.len(), 1 << 16);
}

fn samples_at(k: i64, rng: &mut fastrand::Rng) -> Vec<f64> {
    let burst = (k % 60) >= 24 && (k % 60) < 30;
    let n = if burst { 400 } else { 20 };
    let mut s: Vec<f64> = (0..n)
        .map(|_| {
            if burst {
                500.0 + rng.f64() * 1500.0
            } else {
                5.0 + rng.f64() * 20.0
            }
        })
        .collect();
    s.sort_by(f64::total_cmp);
    s
}

fn etsy_upper(sorted: &[f64], pct: f64) -> f64 {
    let n = ((pct / 100.0) * sorted.len() as f64).round() as usize;
    sorted[n.max(1) - 1]
}

#[test]
fn timer_percentiles_at_10m_are_true_percentiles() {
    let c = StorageConfig {
        retention: vec![RetentionRule {
            pattern: ".*".into(),
            retentions: "10s:1h,1m:2h,10m:1d".into(),
        }],
        ..StorageConfig::default()
    };
    let store = Store::in_memory(&c).unwrap();
    let mut rng = fastrand::Rng::with_seed(3);
    let mut all: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    let mut per_flush_p90: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    let base = "stats.timers.api.latency";
    let p90 = format!("{base}.upper_90");
    let median = format!("{base}.median");
    let hours = 8;
    let mut now = T0;
    for k in 0..(hours * 360) {
        now = T0 + k * 10;
        let s = samples_at(k, &mut rng);
        let window = now - now.rem_euclid(600);
        all.entry(window).or_default().extend(&s);
        let v = etsy_upper(&s, 90.0);
        per_flush_p90.entry(window).or_default().push(v);
        let h = Hist::from_sorted_samples(&s);
        let med = etsy_upper(&s, 50.0);
        store
            .write_linked(
                &[pt(&p90, now, v), pt(&median, now, med)],
                &[(base, now, h)],
                &[link(0, "upper_90"), link(1, "median")],
                now,
            )
            .unwrap();
    }
    let id = store.index().id(&p90).unwrap();
    // Seven hours back: the 10m archive.
    let f = store.fetch(id, now - 7 * 3600, now, now).unwrap().unwrap();
    assert_eq!(store.index().series[id as usize].method, Method::Max);
    assert_eq!(f.step, 600);
    let mut checked = 0;
    for (i, v) in f.values.iter().enumerate() {
        let w = f.from + i as i64 * 600;
        let (Some(samples), false) = (all.get(&w), v.is_nan()) else {
            continue;
        };
        if samples.len() < 1000 {
            continue; // windows cut by the start of the test
        }
        let mut sorted = samples.clone();
        sorted.sort_by(f64::total_cmp);
        let truth = etsy_upper(&sorted, 90.0);
        let ours_err = (v - truth).abs() / truth;
        let graphite = {
            let p = &per_flush_p90[&w];
            p.iter().sum::<f64>() / p.len() as f64
        };
        let graphite_err = (graphite - truth).abs() / truth;
        // The README's promise: within 0.1%.
        assert!(ours_err < 0.001, "window {w}: ours {v} vs true {truth}");
        assert!(
            graphite_err > 0.5,
            "window {w}: averaging p90s gives {graphite} vs true {truth}; the test must show the gap"
        );
        checked += 1;
    }
    assert!(checked >= 30, "checked {checked} windows");
    // The median too, from the same histogram.
    let mid = store.index().id(&median).unwrap();
    let f = store.fetch(mid, now - 7 * 3600, now, now).unwrap().unwrap();
    let w = f.from + 600 * 10;
    let mut sorted = all[&w].clone();
    sorted.sort_by(f64::total_cmp);
    let truth = etsy_upper(&sorted, 50.0);
    let got = f.values[10];
    assert!(
        (got - truth).abs() / truth < 0.001,
        "median {got} vs {truth}"
    );
}

#[test]
fn a_restart_replays_what_no_checkpoint_covered() {
    let kv = Arc::new(MemKv::new());
    let c = StorageConfig::default();
    let now = T0 + 3 * 3600;
    let names: Vec<String> = (0..50).map(|i| format!("app.s{i}")).collect();
    {
        let store = open(&kv, &c);
        for k in 0..300 {
            let t = T0 + k * 10;
            let batch: Vec<Point<'_>> = names
                .iter()
                .enumerate()
                .map(|(i, n)| pt(n, t, (i as i64 * k) as f64))
                .collect();
            store.write(&batch, &[], now).unwrap();
            if k == 150 {
                store.checkpoint().unwrap();
            }
        }
        // Dropped without a checkpoint: as after kill -9.
    }
    assert!(kv.len(Space::Log) > 0);
    let store = open(&kv, &c);
    assert_eq!(store.index().len(), 50);
    for (i, n) in names.iter().enumerate() {
        let id = store.index().id(n).unwrap();
        let f = store.fetch(id, T0 - 1, T0 + 2990, now).unwrap().unwrap();
        for k in 0..299 {
            assert_eq!(f.values[k as usize], (i as i64 * k) as f64, "{n} slot {k}");
        }
    }
    // New points after the restart land beside the replayed ones.
    store
        .write(&[pt("app.s1", T0 + 3000, 7.0)], &[], now)
        .unwrap();
    store.checkpoint().unwrap();
    assert_eq!(
        kv.len(Space::Log),
        0,
        "a checkpoint drops the log it covers"
    );
    drop(store);
    let store = open(&kv, &c);
    let id = store.index().id("app.s1").unwrap();
    let f = store.fetch(id, T0 - 1, T0 + 3000, now).unwrap().unwrap();
    assert_eq!(f.values[300], 7.0);
    assert_eq!(f.values[299], 299.0);
}

#[test]
fn retention_deletes_old_rows_and_disk_stops_growing() {
    let kv = Arc::new(MemKv::new());
    let c = cfg("10s:1h,1m:3h", "average", 0.0);
    let store = open(&kv, &c);
    let mut sizes = Vec::new();
    for hour in 0..12 {
        for k in 0..360 {
            let t = T0 + hour * 3600 + k * 10;
            store
                .write(&[pt("a", t, k as f64), pt("b", t, 1.0)], &[], t)
                .unwrap();
        }
        let now = T0 + (hour + 1) * 3600;
        store.maintain(now, true).unwrap();
        store.enforce_retention(now).unwrap();
        sizes.push(kv.bytes(Space::Rows));
    }
    // After the longest retention plus a row span, size is flat.
    // (Row boundaries make it alternate; the peaks must not rise.)
    let early = *sizes[4..8].iter().max().unwrap();
    let late = *sizes[8..].iter().max().unwrap();
    assert!(late <= early + 32, "rows bytes keep growing: {sizes:?}");
    let id = store.index().id("a").unwrap();
    let now = T0 + 12 * 3600;
    let f = store.fetch(id, now - 3 * 3600, now, now).unwrap().unwrap();
    assert!(f.values.iter().filter(|v| !v.is_nan()).count() > 100);
    let old = store.fetch(id, T0, T0 + 3600, now).unwrap();
    assert!(old.is_none(), "beyond retention nothing is returned");
}

/// With ClickHouse holding the history, the embedded store keeps only
/// `keep_locally` of it (and the rows not sealed yet), whatever the
/// archives' retention says.
#[test]
fn keep_locally_bounds_the_embedded_copy() {
    let run = |keep: Option<u64>| {
        let kv = Arc::new(MemKv::new());
        // The 1 min archive's rows span 12 h (720 points).
        let mut c = cfg("10s:1h,1m:2d", "average", 0.0);
        if let Some(secs) = keep {
            c.engine = crate::config::Engine::ClickHouse;
            c.clickhouse = Some(crate::config::ClickHouseConfig {
                keep_locally: std::time::Duration::from_secs(secs),
                ..Default::default()
            });
        }
        let store = open(&kv, &c);
        for hour in 0..30 {
            for k in 0..360 {
                let t = T0 + hour * 3600 + k * 10;
                store.write(&[pt("a", t, 1.0)], &[], t).unwrap();
            }
            let now = T0 + (hour + 1) * 3600;
            store.maintain(now, true).unwrap();
            store.enforce_retention(now).unwrap();
        }
        let id = store.index().id("a").unwrap();
        let now = T0 + 30 * 3600;
        // 20-21 h ago: in the 1 min archive's first row, sealed long since.
        let f = store
            .fetch(id, now - 21 * 3600, now - 20 * 3600, now)
            .unwrap();
        let known = f.map_or(0, |f| f.values.iter().filter(|v| !v.is_nan()).count());
        (known, kv.bytes(Space::Rows))
    };
    let (all, all_bytes) = run(None);
    let (kept, kept_bytes) = run(Some(3600));
    assert!(
        all > 50,
        "without keep_locally the archive's 2 d hold: {all}"
    );
    assert_eq!(kept, 0, "with 1 h kept locally, nothing 20 h old");
    assert!(
        kept_bytes * 2 < all_bytes,
        "{kept_bytes} of {all_bytes} bytes"
    );
}

#[test]
fn a_full_disk_fails_loudly_keeps_reads_and_recovers() {
    let kv = Arc::new(MemKv::new());
    let c = StorageConfig::default();
    let store = open(&kv, &c);
    let now = T0 + 600;
    store.write(&[pt("d", T0, 1.0)], &[], now).unwrap();
    kv.set_full(true);
    let e = store.write(
        &[pt("d", T0 + 10, 2.0), pt("new.series", T0, 3.0)],
        &[],
        now,
    );
    assert!(e.as_ref().is_err_and(Store::is_disk_full), "{e:?}");
    assert!(store.degraded());
    assert!(store.checkpoint().is_err());
    let id = store.index().id("d").unwrap();
    let f = store.fetch(id, T0 - 1, T0 + 20, now).unwrap().unwrap();
    assert_eq!(&f.values[..2], &[1.0, 2.0], "reads serve what memory holds");
    kv.set_full(false);
    store.maintain(now, false).unwrap();
    assert!(!store.degraded());
    drop(store);
    let store = open(&kv, &c);
    let f = store
        .fetch(
            store.index().id("new.series").unwrap(),
            T0 - 1,
            T0 + 20,
            now,
        )
        .unwrap()
        .unwrap();
    assert_eq!(f.values[0], 3.0, "the point written while full survived");
    let f = store.fetch(id, T0 - 1, T0 + 20, now).unwrap().unwrap();
    assert_eq!(&f.values[..2], &[1.0, 2.0]);
}

#[test]
fn a_corrupt_row_costs_its_points_not_the_store() {
    let kv = Arc::new(MemKv::new());
    let c = StorageConfig::default();
    let store = open(&kv, &c);
    let now = T0 + 600;
    store.write(&[pt("c", T0, 1.0)], &[], now).unwrap();
    store.checkpoint().unwrap();
    drop(store);
    // Damage every stored row and row fragment.
    let mut b = super::kv::Batch::default();
    for space in [Space::Rows, Space::Heads] {
        let mut keys = Vec::new();
        kv.scan(space, &[], &[0xff; 20], &mut |k, _| {
            keys.push(k.to_vec());
            true
        })
        .unwrap();
        assert!(space == Space::Rows || !keys.is_empty());
        for k in keys {
            b.put(space, k, vec![1, 9, 9, 9]);
        }
    }
    kv.write(b).unwrap();
    let store = open(&kv, &c);
    let id = store.index().id("c").unwrap();
    let f = store.fetch(id, T0 - 1, T0 + 10, now).unwrap().unwrap();
    assert!(f.values[0].is_nan());
    assert!(
        store
            .stats
            .corrupt_rows
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
    store.write(&[pt("c", T0 + 10, 2.0)], &[], now).unwrap();
    let f = store.fetch(id, T0 - 1, T0 + 20, now).unwrap().unwrap();
    assert_eq!(f.values[1], 2.0);
}

#[test]
fn a_clean_restart_keeps_a_many_point_open_row() {
    let kv = Arc::new(MemKv::new());
    let c = cfg("1s:1h,1m:1d", "sum", 0.0);
    let now = T0 + 30;
    {
        let store = open(&kv, &c);
        for k in 0..20 {
            store
                .write(&[pt("m", T0 + k, k as f64 + 1.0)], &[], T0 + k)
                .unwrap();
        }
        store.checkpoint_compact().unwrap();
    }
    let store = open(&kv, &c);
    let id = store.index().id("m").unwrap();
    let f = store.fetch(id, T0 - 1, T0 + 19, now).unwrap().unwrap();
    let got: Vec<f64> = f.values.iter().copied().filter(|v| !v.is_nan()).collect();
    assert_eq!(got, (1..=20).map(f64::from).collect::<Vec<_>>());
}

#[test]
fn a_checkpoint_writes_what_changed_and_the_seal_writes_the_row_once() {
    let kv = Arc::new(MemKv::new());
    let c = StorageConfig::default();
    let store = open(&kv, &c);
    let t0 = T0 - T0.rem_euclid(7200);
    let formats = |space: Space| {
        let mut f = Vec::new();
        kv.scan(space, &[], &[0xff; 20], &mut |k, v| {
            if super::row::RowKey::decode(&k[..11]).is_some_and(|k| k.archive == 0) {
                f.push((v[0], k.len()));
            }
            true
        })
        .unwrap();
        f
    };
    // Two checkpoints while the row fills: each writes the points that
    // came since the last one as a fragment (format 6: XOR-packed, cheap to
    // write), and nothing is rewritten.
    for part in 0..2 {
        let pts: Vec<(String, i64, f64)> = (0..50)
            .map(|i| {
                let k = part * 50 + i;
                ("o".to_string(), t0 + k * 10, (k % 9) as f64)
            })
            .collect();
        let batch: Vec<Point<'_>> = pts.iter().map(|p| pt(&p.0, p.1, p.2)).collect();
        store.write(&batch, &[], t0 + 1000).unwrap();
        store.checkpoint().unwrap();
        assert_eq!(formats(Space::Heads).len(), part as usize + 1);
    }
    assert_eq!(formats(Space::Heads), vec![(6, 19), (6, 19)]);
    assert!(formats(Space::Rows).is_empty());
    // Once the row's span and its grace have passed, the seal writes it
    // whole, compressed, and its fragments go.
    let later = t0 + 7200 + 600;
    store.maintain(later, false).unwrap();
    assert_eq!(formats(Space::Rows), vec![(1, 11)]);
    assert!(formats(Space::Heads).is_empty());
    drop(store);
    let store = open(&kv, &c);
    let id = store.index().id("o").unwrap();
    let f = store.fetch(id, t0 - 1, t0 + 1000, later).unwrap().unwrap();
    for (i, v) in f.values.iter().take(100).enumerate() {
        assert_eq!(*v, (i % 9) as f64, "slot {i}");
    }
}

#[test]
fn checkpoints_merge_a_rows_fragments_and_every_value_reads_back() {
    let kv = Arc::new(MemKv::new());
    let c = StorageConfig::default();
    let t0 = T0 - T0.rem_euclid(7200);
    let names: Vec<String> = (0..7).map(|i| format!("m{i}")).collect();
    let value = |s: usize, k: i64| -> f64 {
        match s % 3 {
            // Statsd-shaped, random bits, and a constant.
            0 => (1000 + k * (s as i64 + 1)) as f64,
            1 => f64::from_bits(fastrand::Rng::with_seed((s as u64) << 32 | k as u64).u64(..) >> 2),
            _ => 0.5,
        }
    };
    // Per series, the most fragments its row holds after each checkpoint.
    let fragments = |kv: &MemKv| {
        let mut per_row: BTreeMap<Vec<u8>, (usize, Vec<u8>)> = BTreeMap::new();
        kv.scan(Space::Heads, &[], &[0xff; 20], &mut |k, v| {
            let e = per_row.entry(k[..11].to_vec()).or_default();
            e.0 += 1;
            e.1.push(v[0]);
            true
        })
        .unwrap();
        per_row
    };
    let mut most: BTreeMap<usize, usize> = BTreeMap::new();
    let mut formats = std::collections::BTreeSet::new();
    // 24 checkpoints of 20 points each, one crash (no close) half-way.
    let mut store = open(&kv, &c);
    for part in 0..24i64 {
        if part == 12 {
            drop(store);
            store = open(&kv, &c);
        }
        let pts: Vec<(String, i64, f64)> = (0..20)
            .flat_map(|i| {
                let k = part * 20 + i;
                names
                    .iter()
                    .enumerate()
                    .filter(move |(s, _)| (k + *s as i64) % 5 != 0)
                    .map(move |(s, n)| (n.clone(), t0 + k * 10, value(s, k)))
            })
            .collect();
        let batch: Vec<Point<'_>> = pts.iter().map(|p| pt(&p.0, p.1, p.2)).collect();
        store.write(&batch, &[], t0 + part * 200 + 200).unwrap();
        store.checkpoint().unwrap();
        for (key, (n, f)) in fragments(&kv) {
            let id = u32::from_be_bytes(key[7..11].try_into().unwrap());
            let name = names
                .iter()
                .position(|n| store.index().id(n) == Some(id))
                .unwrap();
            let m = most.entry(name % 3).or_insert(0);
            *m = (*m).max(n);
            formats.extend(f);
        }
    }
    // Statsd-shaped and constant rows: at most a merged fragment and one
    // per checkpoint since. Random bits pack no better merged, so their
    // rows are merged only from 16 fragments, on their turn (one
    // checkpoint in four).
    assert!(
        most[&0] <= 5 && most[&2] <= 5,
        "{most:?} fragments in one row"
    );
    assert!(
        (6..=19).contains(&most[&1]),
        "{most:?} fragments in one row"
    );
    assert!(
        formats.contains(&1),
        "no merged (pco) fragment: {formats:?}"
    );
    drop(store);
    let now = t0 + 24 * 200;
    let store = open(&kv, &c);
    for (s, n) in names.iter().enumerate() {
        let id = store.index().id(n).unwrap();
        let f = store
            .fetch(id, t0 - 1, t0 + 479 * 10, now)
            .unwrap()
            .unwrap();
        assert_eq!(f.values.len(), 480);
        for (k, v) in f.values.iter().enumerate() {
            let k = k as i64;
            if (k + s as i64) % 5 == 0 {
                assert!(v.is_nan(), "{n} slot {k}: {v}");
            } else {
                assert_eq!(v.to_bits(), value(s, k).to_bits(), "{n} slot {k}");
            }
        }
    }
}

/// One flush of a timer and a counter in Etsy's legacy naming, as the
/// aggregator computes them (the values derived rows predict: mean, std,
/// count_ps, mean_90, the counter's rate), with the timer's histogram.
fn etsy_flush(k: i64, rng: &mut fastrand::Rng) -> (Vec<(String, f64)>, Hist) {
    let mut s: Vec<f64> = (0..rng.usize(1..30))
        .map(|_| (rng.f64() * 300.0 * 100.0).round() / 100.0)
        .collect();
    s.sort_by(f64::total_cmp);
    let n = s.len() as f64;
    let sum: f64 = s.iter().sum();
    let mean = sum / n;
    let std = (s.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt();
    let n90 = ((0.9 * n).round() as usize).max(1);
    let sum90: f64 = s[..n90].iter().sum();
    let hits = (k % 17 + rng.u64(0..50) as i64) as f64;
    let t = "stats.timers.api.lat";
    let named = |stat: &str, v: f64| (format!("{t}.{stat}"), v);
    let points = vec![
        named("count", n),
        named("count_ps", n / 10.0),
        named("sum", sum),
        named("sum_squares", s.iter().map(|v| v * v).sum()),
        named("mean", mean),
        named("std", std),
        named("lower", s[0]),
        named("upper", s[s.len() - 1]),
        named("median", s[s.len() / 2]),
        named("count_90", n90 as f64),
        named("sum_90", sum90),
        named("mean_90", sum90 / n90 as f64),
        named("upper_90", s[n90 - 1]),
        ("stats.hits".to_string(), hits / 10.0),
        ("stats_counts.hits".to_string(), hits),
    ];
    (points, Hist::from_sorted_samples(&s))
}

/// One retention for every series, and the built-in aggregation rules
/// (sums for counts and sums, max for uppers, average for the rest).
fn etsy_cfg(retentions: &str) -> StorageConfig {
    StorageConfig {
        retention: vec![RetentionRule {
            pattern: ".*".into(),
            retentions: retentions.into(),
        }],
        ..StorageConfig::default()
    }
}

/// Writes `flushes` Etsy flushes from `T0`, returning what was written per
/// series name, by timestamp.
fn write_etsy(store: &Store, flushes: i64) -> BTreeMap<String, BTreeMap<i64, f64>> {
    let mut rng = fastrand::Rng::with_seed(11);
    let mut sent: BTreeMap<String, BTreeMap<i64, f64>> = BTreeMap::new();
    for k in 0..flushes {
        let ts = T0 + k * 10;
        let (points, h) = etsy_flush(k, &mut rng);
        let batch: Vec<Point<'_>> = points.iter().map(|(n, v)| pt(n, ts, *v)).collect();
        // The timer's statistics linked to its histogram, as the emitter
        // links them.
        let links: Vec<StatLink> = points
            .iter()
            .enumerate()
            .filter_map(|(i, (n, _))| {
                let field = n.strip_prefix("stats.timers.api.lat.")?;
                Some(StatLink {
                    point: i,
                    hist: 0,
                    stat: super::index::StatCode::of_field(field)?,
                })
            })
            .collect();
        // Rates linked to their counts, as the emitter links them.
        let at = |n: &str| points.iter().position(|(p, _)| p == n);
        let rates: Vec<RateLink> = [
            (
                "stats.timers.api.lat.count_ps",
                "stats.timers.api.lat.count",
            ),
            ("stats.hits", "stats_counts.hits"),
        ]
        .iter()
        .filter_map(|(r, c)| {
            Some(RateLink {
                rate: at(r)?,
                count: at(c)?,
            })
        })
        .collect();
        store
            .write_flush(
                &batch,
                &[("stats.timers.api.lat", ts, h)],
                &links,
                &rates,
                ts + 1,
            )
            .unwrap();
        for (n, v) in points {
            sent.entry(n).or_default().insert(ts, v);
        }
        if k % 100 == 99 {
            store.maintain(ts + 1, false).unwrap();
        }
    }
    sent
}

/// Stored rows of one archive by series name: (format byte, bytes).
fn stored_rows(kv: &MemKv, store: &Store, archive: u8) -> BTreeMap<String, Vec<(u8, usize)>> {
    let index = store.index();
    let mut out: BTreeMap<String, Vec<(u8, usize)>> = BTreeMap::new();
    kv.scan(Space::Rows, &[], &[0xff; 12], &mut |k, v| {
        let key = super::row::RowKey::decode(k).unwrap();
        if key.archive == archive {
            let name = index.name(key.series).to_string();
            out.entry(name).or_default().push((v[0], v.len()));
        }
        true
    })
    .unwrap();
    out
}

#[test]
fn derived_rows_keep_every_value_exactly_in_a_fraction_of_the_bytes() {
    let kv = Arc::new(MemKv::new());
    let c = etsy_cfg("10s:6h,1m:1d");
    let flushes = 1500; // two 10 s rows and a bit, sealed as time passes
    let now = T0 + flushes * 10 + 1;
    let sent = {
        let store = open(&kv, &c);
        let sent = write_etsy(&store, flushes);
        // Time passes until the 1 m row (12 h) seals too.
        store.maintain(T0 + 43_200 + 600, false).unwrap();
        store.checkpoint_compact().unwrap();
        sent
    };
    let store = open(&kv, &c);
    // Every value reads back bit for bit, derived or not, after a restart.
    for (name, points) in &sent {
        let id = store.index().id(name).unwrap();
        let f = store.fetch(id, T0 - 1, now, now).unwrap().unwrap();
        assert_eq!(f.step, 10);
        for (&ts, &v) in points {
            let got = f.values[((ts - f.from) / 10) as usize];
            assert_eq!(got.to_bits(), v.to_bits(), "{name} at {ts}");
        }
    }
    // The derived series are stored derived (format 5), and cost a small
    // part of what their plain rows would.
    let rows = stored_rows(&kv, &store, 0);
    let bytes = |n: &str| rows[n].iter().map(|r| r.1).sum::<usize>();
    for stat in ["mean", "std", "count_ps", "mean_90"] {
        let name = format!("stats.timers.api.lat.{stat}");
        assert!(
            rows[&name].iter().all(|r| r.0 == 5),
            "{name}: {:?}",
            rows[&name]
        );
        let plain: usize = {
            let mut slots = vec![f64::NAN; 720];
            sent[&name]
                .values()
                .take(720)
                .enumerate()
                .for_each(|(i, v)| slots[i] = *v);
            super::row::encode(&slots).len()
        };
        assert!(
            bytes(&name) * 3 < plain * 2,
            "{name}: {} B derived for 3 rows, {plain} B plain for 1",
            bytes(&name)
        );
    }
    assert!(rows["stats.hits"].iter().all(|r| r.0 == 5));
    // Sources are never derived.
    for src in ["sum", "count", "sum_squares", "sum_90", "count_90"] {
        let name = format!("stats.timers.api.lat.{src}");
        assert!(rows[&name].iter().all(|r| r.0 != 5), "{name}");
    }
    // At 1 m the histogram's statistics are the rolled-up stats exactly.
    let coarse = stored_rows(&kv, &store, 1);
    for stat in ["mean", "std", "median", "upper_90"] {
        let name = format!("stats.timers.api.lat.{stat}");
        assert!(coarse[&name].iter().all(|r| r.0 == 5), "{name} at 1m");
    }
}

#[test]
fn a_changed_source_leaves_derived_values_as_they_were_written() {
    let kv = Arc::new(MemKv::new());
    let c = etsy_cfg("10s:6h,1m:1d");
    let flushes = 1500;
    let now = T0 + flushes * 10 + 1;
    let store = open(&kv, &c);
    let sent = write_etsy(&store, flushes);
    store.maintain(now, true).unwrap();
    // The first 10 s row is sealed and stored derived; a late point now
    // changes its `sum` and `count` at one slot, and a late histogram its
    // histogram there.
    assert!(stored_rows(&kv, &store, 0)["stats.timers.api.lat.mean"][0].0 == 5);
    let ts = T0 + 50;
    store
        .write(
            &[
                pt("stats.timers.api.lat.sum", ts, 1e6),
                pt("stats.timers.api.lat.count", ts, 3.0),
                pt("stats_counts.hits", ts, 12345.0),
            ],
            &[(
                "stats.timers.api.lat",
                ts,
                Hist::from_sorted_samples(&[1.0, 9000.0]),
            )],
            now,
        )
        .unwrap();
    let check = |store: &Store, when: &str| {
        for stat in ["mean", "std", "count_ps"] {
            let name = format!("stats.timers.api.lat.{stat}");
            let id = store.index().id(&name).unwrap();
            let f = store.fetch(id, T0 - 1, now, now).unwrap().unwrap();
            for (&t, &v) in &sent[&name] {
                let got = f.values[((t - f.from) / 10) as usize];
                assert_eq!(got.to_bits(), v.to_bits(), "{name} at {t} {when}");
            }
        }
        let id = store.index().id("stats.hits").unwrap();
        let f = store.fetch(id, T0 - 1, now, now).unwrap().unwrap();
        assert_eq!(f.values[5], sent["stats.hits"][&ts], "{when}");
    };
    check(&store, "in memory");
    store.checkpoint().unwrap();
    check(&store, "after the checkpoint");
    drop(store);
    let store = open(&kv, &c);
    check(&store, "after a restart");
}

#[test]
fn a_changed_histogram_leaves_derived_rollups_as_they_were_written() {
    let kv = Arc::new(MemKv::new());
    let c = etsy_cfg("10s:1h,1m:2h");
    let flushes = 900;
    let now = T0 + flushes * 10 + 1;
    let store = open(&kv, &c);
    write_etsy(&store, flushes);
    store.maintain(now, true).unwrap();
    // The first 1 m row is sealed, its timer stats derived from the
    // histogram row beside them.
    assert!(stored_rows(&kv, &store, 1)["stats.timers.api.lat.mean"][0].0 == 5);
    let read_at = T0 + 4000; // past the 10 s retention: reads use 1 m
    let coarse = |store: &Store, stat: &str| {
        let id = store
            .index()
            .id(&format!("stats.timers.api.lat.{stat}"))
            .unwrap();
        let f = store
            .fetch(id, T0 - 1, T0 + 3600, read_at)
            .unwrap()
            .unwrap();
        assert_eq!(f.step, 60);
        f.values
    };
    let mean_before = coarse(&store, "mean");
    // A late flush brings a histogram and an upper_90 for a slot of that
    // row, and no mean.
    let ts = T0 + 1810;
    store
        .write(
            &[pt("stats.timers.api.lat.upper_90", ts, 9000.0)],
            &[(
                "stats.timers.api.lat",
                ts,
                Hist::from_sorted_samples(&[9000.0; 500]),
            )],
            now,
        )
        .unwrap();
    let verify = |store: &Store, when: &str| {
        let mean = coarse(store, "mean");
        for (i, (a, b)) in mean.iter().zip(&mean_before).enumerate() {
            assert_eq!(a.to_bits(), b.to_bits(), "mean slot {i} {when}");
        }
        // The upper_90 slot was rolled up again, from the merged histogram.
        let upper = coarse(store, "upper_90");
        assert!(upper[30] >= 9000.0 * 0.999, "{when}: {}", upper[30]);
    };
    verify(&store, "in memory");
    store.checkpoint().unwrap();
    verify(&store, "after the checkpoint");
    drop(store);
    verify(&open(&kv, &c), "after a restart");
}

#[test]
fn an_older_store_is_upgraded_and_an_unknown_one_refused() {
    let c = StorageConfig::default();
    let marked = |v: &[u8]| {
        let kv = Arc::new(MemKv::new());
        let mut b = super::kv::Batch::default();
        b.put(Space::Meta, super::META_FORMAT, v.to_vec());
        kv.write(b).unwrap();
        kv
    };
    let kv = marked(b"rollupd-store-1");
    let store = open(&kv, &c);
    store.write(&[pt("a", T0, 1.0)], &[], T0 + 1).unwrap();
    assert_eq!(
        kv.get(Space::Meta, super::META_FORMAT).unwrap().as_deref(),
        Some(super::FORMAT_VERSION)
    );
    let kv = marked(b"rollupd-store-9");
    let dynkv: Arc<dyn Kv> = kv;
    match Store::open(dynkv, Path::new("/var/lib/x"), &c, 0) {
        Err(e @ super::StoreError::Format { .. }) => assert_eq!(
            e.to_string(),
            "the store in /var/lib/x is not one this rollupd can read \
             (format \"rollupd-store-9\", expected \"rollupd-store-4\")"
        ),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("an unknown format was opened"),
    }
}

/// The value a crash test writes: which series (its number) and which
/// writer, so a point replayed into another series is recognised.
fn crash_value(series: u64, writer: u64) -> f64 {
    (series * 64 + writer) as f64
}

/// Writers creating series concurrently while the engine is "killed" at a
/// random instant ([`MemKv::crash_copy`]). Acknowledged = `Store::write`
/// returned `Ok` before the crash instant (a writer takes a ticket after
/// its write returns; the crash reads the ticket counter first, so every
/// ticket below it was taken by a write that finished before the copy).
/// Returns the acknowledged points `(name, ts, value)` and the copy.
fn crash_while_creating(
    store: &Arc<Store>,
    kv: &Arc<MemKv>,
    phase: u64,
    seed: u64,
    now: i64,
) -> (Vec<(String, i64, f64)>, MemKv) {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
    let writers = 4u64;
    let stop = Arc::new(AtomicBool::new(false));
    let tickets = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..writers)
        .map(|w| {
            let (store, stop, tickets) = (store.clone(), stop.clone(), tickets.clone());
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                let mut round = 0u64;
                while !stop.load(SeqCst) {
                    // Every writer walks the same new names, from different
                    // starting points, so they meet on names just created.
                    let names: Vec<(u64, String)> = (0..3)
                        .map(|k| {
                            let s = phase * 1_000_000 + round * 8 + (w + k) % 8;
                            (s, format!("crash.p{phase}.r{round}.s{}", (w + k) % 8))
                        })
                        .collect();
                    let ts = T0 + w as i64 * 10;
                    let batch: Vec<Point<'_>> = names
                        .iter()
                        .map(|(s, n)| pt(n, ts, crash_value(*s, w)))
                        .collect();
                    if store.write(&batch, &[], now).is_ok() {
                        let ticket = tickets.fetch_add(1, SeqCst);
                        for (s, n) in &names {
                            acked.push((ticket, n.clone(), ts, crash_value(*s, w)));
                        }
                    }
                    round += 1;
                }
                acked
            })
        })
        .collect();
    let mut rng = fastrand::Rng::with_seed(seed);
    std::thread::sleep(std::time::Duration::from_micros(rng.u64(200..5000)));
    let cut = tickets.load(SeqCst);
    let copy = kv.crash_copy();
    stop.store(true, SeqCst);
    let mut acked = Vec::new();
    for h in handles {
        for (ticket, n, ts, v) in h.join().unwrap() {
            if ticket < cut {
                acked.push((n, ts, v));
            }
        }
    }
    (acked, copy)
}

/// Every point in every series of `store` is one written to that series.
fn no_point_in_a_wrong_series(store: &Store, now: i64) {
    let index = store.index();
    let names: Vec<String> = (0..index.len() as u32)
        .map(|i| index.name(i).to_string())
        .filter(|n| n.starts_with("crash."))
        .collect();
    drop(index);
    for n in names {
        // crash.p{phase}.r{round}.s{j}
        let parts: Vec<u64> = n
            .split('.')
            .skip(1)
            .map(|p| p[1..].parse().unwrap())
            .collect();
        let series = parts[0] * 1_000_000 + parts[1] * 8 + parts[2];
        let id = store.index().id(&n).unwrap();
        let f = store.fetch(id, T0 - 10, T0 + 100, now).unwrap().unwrap();
        for v in f.values.iter().filter(|v| !v.is_nan()) {
            assert_eq!(
                (*v as u64) / 64,
                series,
                "{n} holds a point written to another series ({v})"
            );
        }
    }
}

fn acked_are_back(store: &Store, acked: &[(String, i64, f64)], now: i64, what: &str) {
    let mut lost = Vec::new();
    for (n, ts, v) in acked {
        let got = store
            .index()
            .id(n)
            .and_then(|id| store.fetch(id, *ts - 1, *ts + 1, now).unwrap())
            .map(|f| f.values[((*ts - f.from) / i64::from(f.step)) as usize]);
        if got != Some(*v) {
            lost.push((n.clone(), *ts, *v, got));
        }
    }
    assert!(
        lost.is_empty(),
        "{what}: {} of {} acknowledged points lost or wrong, e.g. {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(5)]
    );
}

#[test]
fn series_created_concurrently_survive_a_crash_in_the_right_series() {
    let c = cfg("10s:1d", "average", 0.0);
    let now = T0 + 3600;
    for attempt in 0..30u64 {
        let kv = Arc::new(MemKv::new());
        let store = Arc::new(open(&kv, &c));
        let (acked1, copy) = crash_while_creating(&store, &kv, 1, attempt, now);
        drop(store);
        // Restart on what the crash left; no checkpoint, so the log of the
        // first run is still there when the second run crashes.
        let kv = Arc::new(copy);
        let store = Arc::new(open(&kv, &c));
        acked_are_back(&store, &acked1, now, "after the first crash");
        let (acked2, copy) = crash_while_creating(&store, &kv, 2, attempt + 1000, now);
        drop(store);
        let kv = Arc::new(copy);
        let store = open(&kv, &c);
        no_point_in_a_wrong_series(&store, now);
        acked_are_back(&store, &acked1, now, "first run, after the second crash");
        acked_are_back(&store, &acked2, now, "after the second crash");
    }
}

#[test]
fn new_series_past_the_caps_are_refused_and_counted() {
    let now = T0 + 600;
    let names: Vec<String> = (0..8).map(|i| format!("flood.s{i}")).collect();
    let batch = |names: &[String]| -> Vec<(String, i64, f64)> {
        names.iter().map(|n| (n.clone(), T0, 1.0)).collect()
    };
    let write = |store: &Store, pts: &[(String, i64, f64)]| {
        let b: Vec<Point<'_>> = pts.iter().map(|p| pt(&p.0, p.1, p.2)).collect();
        store.write(&b, &[], now).unwrap()
    };
    // The total.
    let c = StorageConfig {
        max_series: 5,
        ..cfg("10s:1d", "average", 0.0)
    };
    let store = Store::in_memory(&c).unwrap();
    let w = write(&store, &batch(&names));
    assert_eq!((w.accepted, w.refused), (5, 3));
    assert_eq!(store.index().len(), 5);
    assert_eq!(store.caps.points_refused.load(Relaxed), 3);
    assert!(store.index().id("flood.s7").is_none());
    // Existing series still take points; the refused stay refused.
    let w = write(&store, &batch(&names));
    assert_eq!((w.accepted, w.refused), (5, 3));
    assert_eq!(store.caps.points_refused.load(Relaxed), 6);
    // Histograms count too.
    let w = store
        .write(
            &[],
            &[("flood.t", T0, Hist::from_sorted_samples(&[1.0]))],
            now,
        )
        .unwrap();
    assert_eq!(w.refused, 1);

    // The rate.
    let c = StorageConfig {
        max_new_series_per_minute: 3,
        ..cfg("10s:1d", "average", 0.0)
    };
    let store = Store::in_memory(&c).unwrap();
    let w = write(&store, &batch(&names[..5]));
    assert_eq!((w.accepted, w.refused), (3, 2));
    let w = write(&store, &batch(&names[..3]));
    assert_eq!((w.accepted, w.refused), (3, 0), "known series are not new");

    // A name longer than any path, and an empty one.
    let store = Store::in_memory(&cfg("10s:1d", "average", 0.0)).unwrap();
    let long = "x".repeat(super::caps::MAX_NAME_BYTES + 1);
    let w = write(&store, &[(long, T0, 1.0), (String::new(), T0, 1.0)]);
    assert_eq!((w.accepted, w.refused), (0, 2));
    assert_eq!(store.index().len(), 0);
}

#[test]
fn a_stop_on_a_full_disk_spills_what_the_log_lacks_and_the_next_start_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let c = cfg("10s:1d", "average", 0.0);
    let now = T0 + 600;
    let kv = Arc::new(MemKv::new());
    let dynkv: Arc<dyn Kv> = kv.clone();
    let store = Store::open(dynkv.clone(), &path, &c, 0).unwrap();
    store.write(&[pt("kept.a", T0, 1.0)], &[], now).unwrap();
    kv.set_full(true);
    let e = store.write(
        &[pt("kept.a", T0 + 10, 2.0), pt("kept.new", T0, 3.0)],
        &[],
        now,
    );
    assert!(e.is_err());
    assert_eq!(
        store.close(),
        super::Closed::Spilled {
            points: 2,
            path: super::spill::path_for(&path)
        }
    );
    drop(store);
    assert!(super::spill::path_for(&path).exists());
    // A restart on a disk still full cannot take the spill in: it refuses
    // to start rather than reuse the spilled batches' sequences.
    assert!(Store::open(dynkv.clone(), &path, &c, 0).is_err());
    kv.set_full(false);
    let store = Store::open(dynkv, &path, &c, 0).unwrap();
    assert!(
        !super::spill::path_for(&path).exists(),
        "taken in, then removed"
    );
    let a = store.index().id("kept.a").unwrap();
    let f = store.fetch(a, T0 - 1, T0 + 20, now).unwrap().unwrap();
    assert_eq!(&f.values[..2], &[1.0, 2.0]);
    let n = store
        .index()
        .id("kept.new")
        .expect("the series created while full");
    let f = store.fetch(n, T0 - 1, T0 + 20, now).unwrap().unwrap();
    assert_eq!(f.values[0], 3.0);
}

#[test]
fn a_stop_that_can_write_nowhere_says_how_many_points_are_lost() {
    let dir = tempfile::tempdir().unwrap();
    // The spill file's directory does not exist, so it cannot be written.
    let path = dir.path().join("gone").join("store");
    let kv = Arc::new(MemKv::new());
    let dynkv: Arc<dyn Kv> = kv.clone();
    let store = Store::open(dynkv, &path, &cfg("10s:1d", "average", 0.0), 0).unwrap();
    kv.set_full(true);
    let pts: Vec<Point<'_>> = (0..3).map(|k| pt("lost", T0 + k * 10, 1.0)).collect();
    assert!(store.write(&pts, &[], T0 + 600).is_err());
    assert_eq!(store.close(), super::Closed::Lost { points: 3 });
}

#[test]
fn a_checkpoint_after_a_full_disk_is_all_a_stop_needs() {
    let kv = Arc::new(MemKv::new());
    let store = open(&kv, &cfg("10s:1d", "average", 0.0));
    kv.set_full(true);
    assert!(store.write(&[pt("x", T0, 1.0)], &[], T0 + 600).is_err());
    kv.set_full(false);
    assert_eq!(store.close(), super::Closed::Checkpointed);
    drop(store);
    let store = open(&kv, &cfg("10s:1d", "average", 0.0));
    let id = store.index().id("x").unwrap();
    assert_eq!(
        store
            .fetch(id, T0 - 1, T0 + 9, T0 + 600)
            .unwrap()
            .unwrap()
            .values[0],
        1.0
    );
}

#[test]
fn a_damaged_log_entry_costs_its_own_points_only() {
    let kv = Arc::new(MemKv::new());
    let c = cfg("10s:1d", "average", 0.0);
    let now = T0 + 600;
    {
        let store = open(&kv, &c);
        for k in 0..5 {
            store
                .write(&[pt("torn", T0 + k * 10, k as f64)], &[], now)
                .unwrap();
        }
    }
    // Damage the middle entry (sequence 2).
    let mut b = super::kv::Batch::default();
    b.put(Space::Log, super::wal::key(2).to_vec(), vec![1, 2, 3]);
    kv.write(b).unwrap();
    let store = open(&kv, &c);
    let id = store.index().id("torn").unwrap();
    let f = store.fetch(id, T0 - 1, T0 + 50, now).unwrap().unwrap();
    assert_eq!(
        f.values[..5].iter().filter(|v| !v.is_nan()).count(),
        4,
        "{:?}",
        f.values
    );
    assert!(f.values[2].is_nan());
    assert_eq!(f.values[4], 4.0, "entries after the damage are replayed");
    // A new batch goes after every old entry, overwriting none.
    store.write(&[pt("torn", T0 + 50, 5.0)], &[], now).unwrap();
    drop(store);
    let store = open(&kv, &c);
    let f = store.fetch(id, T0 - 1, T0 + 60, now).unwrap().unwrap();
    assert_eq!((f.values[3], f.values[4], f.values[5]), (3.0, 4.0, 5.0));
}

/// A backfill of two days, time-major as carbon sends it, while
/// checkpoints and retention sweeps run: the 10 s rows it fills are past
/// their retention, and each 1 m point must still roll up from all six of
/// its 10 s points (a sweep that dropped a row being filled, from memory
/// or the engine, left the points after it to roll up alone).
///
/// Checkpoints run back to back; a sweep runs at most once per batch
/// written. That is the guarantee (docs/storage-format.md 7.5): a sweep
/// keeps the rows checkpoints wrote since the one before it, so a coarse
/// point whose finer points arrive within one sweep interval (10 minutes
/// in the daemon) rolls up whole. Sweeps back to back, several while one
/// batch was written, dropped a row between its points (1 run in 5).
#[test]
fn a_backfill_rolls_up_whole_while_checkpoints_and_retention_run() {
    let kv = Arc::new(MemKv::new());
    let c = cfg("10s:6h,1m:7d,10m:5y", "sum", 0.5);
    let store = Arc::new(open(&kv, &c));
    let now = 1_796_604_000i64;
    let n = 2 * 8640;
    let start = now - (n - 1) * 10;
    let start = start - start.rem_euclid(60);
    let names: Vec<String> = (0..40).map(|i| format!("s{i:02}")).collect();
    let value = |k: i64, i: usize| ((k * 7 + i as i64) % 13) as f64;
    let mut lines: Vec<(usize, i64, f64)> = Vec::new();
    for k in 0..n {
        for i in 0..names.len() {
            lines.push((i, start + k * 10, value(k, i)));
        }
    }
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
    let stop = Arc::new(AtomicBool::new(false));
    let batches = Arc::new(AtomicUsize::new(0));
    let sweeper = {
        let (store, stop, batches) = (store.clone(), stop.clone(), batches.clone());
        std::thread::spawn(move || {
            let (mut swept_at, mut sweeps) = (0, 0);
            while !stop.load(Relaxed) {
                store.checkpoint().unwrap();
                let written = batches.load(Relaxed);
                if written > swept_at {
                    store.enforce_retention(now).unwrap();
                    (swept_at, sweeps) = (written, sweeps + 1);
                }
            }
            sweeps
        })
    };
    for chunk in lines.chunks(5000) {
        let batch: Vec<Point<'_>> = chunk
            .iter()
            .map(|(i, t, v)| pt(&names[*i], *t, *v))
            .collect();
        store.write(&batch, &[], now).unwrap();
        batches.fetch_add(1, Relaxed);
    }
    stop.store(true, Relaxed);
    let sweeps = sweeper.join().unwrap();
    // The sweeps ran between the batches, not all after them.
    assert!(sweeps > 10, "{sweeps} sweeps");
    for name in ["s00", "s17"] {
        let i: usize = name[1..].parse().unwrap();
        let id = store.index().id(name).unwrap();
        let f = store.fetch(id, now - 2 * 86400, now, now).unwrap().unwrap();
        assert_eq!(f.step, 60);
        for (j, v) in f.values.iter().enumerate() {
            let b = f.from + j as i64 * 60;
            if b < start || b + 60 > start + n * 10 {
                continue;
            }
            let want: f64 = (0..6).map(|s| value((b - start) / 10 + s, i)).sum();
            assert_eq!(*v, want, "{name} at {b} ({} s before now)", now - b);
        }
    }
}

/// An engine that runs `hook` once, just before it writes the first batch
/// that puts a sealed row: the seal is then between reading the row's
/// fragments and writing the row, with its mark not yet moved.
struct MidSeal {
    kv: Arc<MemKv>,
    hook: parking_lot::Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl Kv for MidSeal {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, super::kv::KvError> {
        self.kv.get(space, key)
    }
    fn write(&self, batch: super::kv::Batch) -> Result<(), super::kv::KvError> {
        let seals = batch
            .ops
            .iter()
            .any(|op| matches!(op, super::kv::Op::Put(Space::Rows, _, _)));
        if seals {
            let hook = self.hook.lock().take();
            if let Some(hook) = hook {
                hook();
            }
        }
        self.kv.write(batch)
    }
    fn scan(
        &self,
        space: Space,
        from: &[u8],
        to: &[u8],
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), super::kv::KvError> {
        self.kv.scan(space, from, to, f)
    }
    fn disk_bytes(&self) -> u64 {
        0
    }
    fn compact(&self, _: Space, _: &[u8], _: &[u8]) {}
}

/// A late point for a row being sealed, written while the seal runs (after
/// it read the row's fragments, before it wrote the row), is neither lost
/// nor counted twice: the row and the coarser point rolled up from it
/// (a sum, which a point counted twice would show) hold it once, before
/// and after a restart.
#[test]
fn a_late_point_written_while_its_row_is_sealed_is_kept_once() {
    let mem = Arc::new(MemKv::new());
    let kv = Arc::new(MidSeal {
        kv: mem.clone(),
        hook: parking_lot::Mutex::new(None),
    });
    let c = cfg("10s:1h,1m:1d", "sum", 0.0);
    let store = Arc::new(Store::open(kv.clone(), Path::new("mem"), &c, 0).unwrap());
    for k in 0..360 {
        store
            .write(&[pt("late", T0 + k * 10, 1.0)], &[], T0 + k * 10)
            .unwrap();
    }
    store.checkpoint().unwrap();
    let now = T0 + 3600 + 300;
    {
        let store = store.clone();
        *kv.hook.lock() = Some(Box::new(move || {
            store.write(&[pt("late", T0 + 100, 5.0)], &[], now).unwrap();
        }));
    }
    store.maintain(now, false).unwrap();
    assert!(kv.hook.lock().is_none(), "the seal wrote no row");
    assert!(store.stats.rows_sealed.load(Relaxed) > 0);
    store.checkpoint().unwrap();
    let check = |store: &Store| {
        let id = store.index().id("late").unwrap();
        // Read as at the row's last step, so the 10 s archive answers.
        let fine = store
            .fetch(id, T0 - 1, T0 + 3590, T0 + 3590)
            .unwrap()
            .unwrap();
        assert_eq!(fine.step, 10);
        let known: Vec<f64> = fine
            .values
            .iter()
            .copied()
            .filter(|v| !v.is_nan())
            .collect();
        assert_eq!(known.len(), 360, "{:?}", fine.values);
        let at = |t: i64| fine.values[((t - fine.from) / 10) as usize];
        assert_eq!(at(T0 + 100), 5.0);
        assert_eq!(known.iter().sum::<f64>(), 359.0 + 5.0);
        let coarse = store
            .fetch(id, now - 7200, T0 + 3599, now)
            .unwrap()
            .unwrap();
        assert_eq!(coarse.step, 60);
        let at = |t: i64| coarse.values[((t - coarse.from) / 60) as usize];
        // The minute from T0 + 60: five points of 1 and the late 5.
        assert_eq!(at(T0 + 60), 10.0, "{:?}", coarse.values);
        assert_eq!(at(T0), 6.0, "{:?}", coarse.values);
    };
    check(&store);
    drop(store);
    let store = open(&mem, &c);
    check(&store);
}

/// `series` series named `prefix` and a number, each given `points`
/// points of 1 every 10 s from `T0`, written a step at a time as a
/// daemon's flushes would. Returns their names.
fn ones_every_10s(store: &Store, prefix: &str, series: usize, points: i64) -> Vec<String> {
    let names: Vec<String> = (0..series).map(|i| format!("{prefix}{i:04}")).collect();
    for k in 0..points {
        let batch: Vec<Point<'_>> = names.iter().map(|n| pt(n, T0 + k * 10, 1.0)).collect();
        store.write(&batch, &[], T0 + k * 10).unwrap();
    }
    names
}

/// The daemon seals on one thread while another checkpoints and writers
/// go on: late points for the rows being sealed and new points for the
/// next rows, written while the seal runs with checkpoints between its
/// batches, are each kept once, in the fine rows and in the coarser sums
/// rolled up from them, before and after a restart.
#[test]
fn a_seal_on_its_own_thread_beside_checkpoints_and_writes_loses_nothing() {
    use std::sync::atomic::{AtomicBool, AtomicUsize};
    let mem = Arc::new(MemKv::new());
    let c = cfg("10s:1h,1m:1d", "sum", 0.0);
    let store = Arc::new(open(&mem, &c));
    let names = ones_every_10s(&store, "sealed.s", 300, 360);
    store.checkpoint().unwrap();
    let now = T0 + 3600 + 300;
    // Series i's late point replaces its point at slot i % 360 with 5.
    let late_at = |i: usize| T0 + (i as i64 % 360) * 10;
    let stop = Arc::new(AtomicBool::new(false));
    let checkpoints = Arc::new(AtomicUsize::new(0));
    let checkpointer = {
        let (store, stop, checkpoints) = (store.clone(), stop.clone(), checkpoints.clone());
        std::thread::spawn(move || {
            while !stop.load(Relaxed) {
                store.checkpoint_when_due(true).unwrap();
                checkpoints.fetch_add(1, Relaxed);
            }
        })
    };
    let writer = {
        let (store, names) = (store.clone(), names.clone());
        std::thread::spawn(move || {
            for (i, n) in names.iter().enumerate() {
                let k = (i / 10) as i64;
                store
                    .write(
                        &[pt(n, late_at(i), 5.0), pt(n, T0 + 3600 + k * 10, 2.0)],
                        &[],
                        now,
                    )
                    .unwrap();
            }
        })
    };
    while checkpoints.load(Relaxed) == 0 {
        std::thread::yield_now();
    }
    let before = checkpoints.load(Relaxed);
    let sealed = store.seal_ended_rows(now).unwrap();
    let during = checkpoints.load(Relaxed) - before;
    writer.join().unwrap();
    stop.store(true, Relaxed);
    checkpointer.join().unwrap();
    // Every row ended is sealed: by the seal, or (a row a late point
    // took whole before the seal read it) by a checkpoint, which writes it
    // sealed and drops its fragments. None is left as fragments.
    assert!(sealed > 0, "{sealed} rows sealed");
    let ended = |space: Space| {
        let mut n = 0;
        let (from, to) = (
            crate::row::RowKey::prefix(0, 0, 0),
            crate::row::RowKey::prefix(0, 0, u32::try_from(T0 + 3600).unwrap()),
        );
        mem.scan(space, &from, &to, &mut |_, _| {
            n += 1;
            true
        })
        .unwrap();
        n
    };
    assert_eq!(ended(Space::Rows), names.len());
    assert_eq!(ended(Space::Heads), 0, "fragments of sealed rows left");
    // The other thread's checkpoints ran while the seal did.
    assert!(during > 0, "no checkpoint while the seal ran");
    let check = |store: &Store| {
        for (i, n) in names.iter().enumerate() {
            let id = store.index().id(n).unwrap();
            let fine = store
                .fetch(id, T0 - 1, T0 + 3590, T0 + 3590)
                .unwrap()
                .unwrap();
            assert_eq!(fine.step, 10);
            let known: Vec<f64> = fine
                .values
                .iter()
                .copied()
                .filter(|v| !v.is_nan())
                .collect();
            assert_eq!(known.len(), 360, "{n}: {:?}", fine.values);
            assert_eq!(known.iter().sum::<f64>(), 359.0 + 5.0, "{n}");
            let coarse = store
                .fetch(id, now - 7200, T0 + 3599, now)
                .unwrap()
                .unwrap();
            assert_eq!(coarse.step, 60);
            let minute = late_at(i) - late_at(i).rem_euclid(60);
            let at = |t: i64| coarse.values[((t - coarse.from) / 60) as usize];
            assert_eq!(at(minute), 10.0, "{n}: {:?}", coarse.values);
            let total: f64 = coarse.values.iter().filter(|v| !v.is_nan()).sum();
            assert_eq!(total, 359.0 + 5.0, "{n}: {:?}", coarse.values);
            let next = store.fetch(id, now - 600, now, now).unwrap().unwrap();
            let k = (i / 10) as i64;
            let at = |t: i64| next.values[((t - next.from) / i64::from(next.step)) as usize];
            assert_eq!(at(T0 + 3600 + k * 10), 2.0, "{n}: {:?}", next.values);
        }
    };
    // As after kill -9 right after the seal, before any checkpoint: the
    // engine and the log as they are.
    check(&open(&mem, &c));
    store.maintain(now, true).unwrap();
    check(&store);
    drop(store);
    let store = open(&mem, &c);
    check(&store);
}

/// Has the seal, right after its first batch, take a late point of value
/// `v` at `T0` for each of `late` (then a checkpoint, with `checkpoint`).
fn late_points_after_the_first_seal_batch(
    store: &Arc<Store>,
    late: Vec<String>,
    v: f64,
    now: i64,
    checkpoint: bool,
) {
    let store2 = Arc::downgrade(store);
    *store.after_seal_batch.lock() = Some(Box::new(move || {
        let store = store2.upgrade().unwrap();
        for n in &late {
            store.write(&[pt(n, T0, v)], &[], now).unwrap();
        }
        if checkpoint {
            store.checkpoint().unwrap();
        }
    }));
}

/// A late point that takes a row whole while the seal runs leaves the seal
/// to skip that row's record (the checkpoint after writes it whole). The
/// seal's last batch deletes the row's fragments: killed before that
/// checkpoint, the store must still hold every earlier point of the row
/// (the log has only the late one).
#[test]
fn a_row_a_late_point_took_during_the_seal_survives_a_kill_right_after_it() {
    let mem = Arc::new(MemKv::new());
    // No checkpoint but the seal's own (one archive: a coarser one's seal
    // would start with a checkpoint of its own).
    let c = StorageConfig {
        checkpoint_interval: std::time::Duration::from_secs(86400),
        ..cfg("10s:6h", "sum", 0.0)
    };
    let store = Arc::new(open(&mem, &c));
    // One row each, [T0, T0 + 2 h).
    let names = ones_every_10s(&store, "late.s", 3000, 720);
    store.checkpoint().unwrap();
    let now = T0 + 7200 + 300;
    // Right after the seal's first batch, a late point (the value the
    // slot already has, so every row keeps 720 points) for each of the
    // last rows in key order, which a later batch of the seal writes.
    late_points_after_the_first_seal_batch(&store, names[2900..].to_vec(), 1.0, now, false);
    store.seal_ended_rows(now).unwrap();
    // As after kill -9: the engine and the log as the seal left them.
    let after = open(&mem, &c);
    for n in &names {
        let id = after.index().id(n).unwrap();
        let f = after
            .fetch(id, T0 - 1, T0 + 7190, T0 + 7190)
            .unwrap()
            .unwrap();
        let known = f.values.iter().filter(|v| !v.is_nan()).count();
        assert_eq!(known, 720, "{n}: points lost");
    }
}

/// A stat's link to its histogram is stored with its series record and is
/// there after a restart; series stored before links were (records of 11
/// bytes, as `write` without links still makes them) are linked by Etsy's
/// naming when loaded, so an upgraded store keeps its rollups.
#[test]
fn links_survive_a_restart_and_older_records_link_by_name() {
    let kv = Arc::new(MemKv::new());
    let c = cfg("10s:1h,1m:1d", "max", 0.0);
    let tagged = "stats.timers.api.upper_90;env=prod";
    let plain = "stats.timers.web.upper_90";
    {
        let store = open(&kv, &c);
        let h = Hist::from_sorted_samples(&[1.0, 2.0, 3.0]);
        store
            .write_linked(
                &[pt(tagged, T0, 3.0)],
                &[("stats.timers.api;env=prod", T0, h.clone())],
                &[link(0, "upper_90")],
                T0,
            )
            .unwrap();
        // No link given: an 11-byte record, as older versions wrote.
        store
            .write(&[pt(plain, T0, 3.0)], &[("stats.timers.web", T0, h)], T0)
            .unwrap();
        // A rate linked to its count whatever its name, and one of an
        // older version's records, linked by Etsy's naming at the restart.
        store
            .write_flush(
                &[pt("app.hits.per_s", T0, 0.5), pt("app.hits.n", T0, 5.0)],
                &[],
                &[],
                &[RateLink { rate: 0, count: 1 }],
                T0,
            )
            .unwrap();
        store
            .write(
                &[pt("stats.old", T0, 0.5), pt("stats_counts.old", T0, 5.0)],
                &[],
                T0,
            )
            .unwrap();
        let ix = store.index();
        assert!(ix.series[ix.id(tagged).unwrap() as usize].link().is_some());
        assert_eq!(ix.series[ix.id(plain).unwrap() as usize].link(), None);
        assert_eq!(
            ix.series[ix.id("stats.old").unwrap() as usize].rate_of(),
            None
        );
        drop(ix);
        store.checkpoint().unwrap();
    }
    let store = open(&kv, &c);
    let ix = store.index();
    for (rate, count) in [
        ("app.hits.per_s", "app.hits.n"),
        ("stats.old", "stats_counts.old"),
    ] {
        assert_eq!(
            ix.series[ix.id(rate).unwrap() as usize].rate_of(),
            Some(ix.id(count).unwrap()),
            "{rate}"
        );
    }
    for (name, hist) in [
        (tagged, "stats.timers.api;env=prod"),
        (plain, "stats.timers.web"),
    ] {
        let link = ix.series[ix.id(name).unwrap() as usize].link();
        assert_eq!(
            link,
            Some((ix.hist_id(hist).unwrap(), super::index::Stat::Quantile(0.9))),
            "{name}"
        );
    }
}

/// Checkpoints of more heads than one thread encodes (a chunk's encoding
/// and merges split over two threads) keep every point of every series,
/// merged fragments included.
#[test]
fn checkpoints_split_over_two_threads_keep_every_point() {
    let c = cfg("10s:6h,1m:7d", "average", 0.0);
    let store = Store::in_memory(&c).unwrap();
    let names: Vec<String> = (0..6000).map(|i| format!("wide.s{i:05}")).collect();
    let value = |k: i64, i: usize| ((k * 31 + i as i64 * 7) % 1000) as f64 / 4.0;
    let steps = 60i64;
    for k in 0..steps {
        let batch: Vec<Point<'_>> = names
            .iter()
            .enumerate()
            .map(|(i, n)| pt(n, T0 + k * 10, value(k, i)))
            .collect();
        store.write(&batch, &[], T0 + k * 10).unwrap();
        if k % 5 == 4 {
            store.checkpoint().unwrap();
        }
    }
    store.checkpoint().unwrap();
    let now = T0 + steps * 10;
    let ix = store.index();
    for (i, n) in names.iter().enumerate().step_by(7) {
        let id = ix.id(n).unwrap();
        let f = store.fetch(id, T0 - 1, now - 1, now).unwrap().unwrap();
        assert_eq!(f.step, 10);
        for k in 0..steps {
            let t = T0 + k * 10;
            let v = f.values[((t - f.from) / 10) as usize];
            assert_eq!(v, value(k, i), "{n} at step {k}");
        }
    }
}

/// A seal that covers several of a series' rows (the daemon was down, or
/// a backfill filled older rows) rolls each of them up into the same
/// coarser row: more series than one chunk of the seal holds puts those
/// rows in different chunks, and every rollup must be kept.
#[test]
fn a_seal_over_several_rows_of_many_series_keeps_every_rollup() {
    let mem = Arc::new(MemKv::new());
    let c = cfg("10s:1h,1m:1d", "sum", 0.0);
    let store = open(&mem, &c);
    // Three fine rows, [T0, T0 + 3 h), one point in each.
    let names: Vec<String> = (0..2100).map(|i| format!("rows.s{i:04}")).collect();
    for r in 0..3 {
        let batch: Vec<Point<'_>> = names.iter().map(|n| pt(n, T0 + r * 3600, 1.0)).collect();
        store.write(&batch, &[], T0 + r * 3600).unwrap();
    }
    store.checkpoint().unwrap();
    let now = T0 + 3 * 3600 + 300;
    store.maintain(now, true).unwrap();
    let check = |store: &Store| {
        for n in &names {
            let id = store.index().id(n).unwrap();
            let f = store
                .fetch(id, T0 - 1, T0 + 3 * 3600 - 1, now)
                .unwrap()
                .unwrap();
            assert_eq!(f.step, 60);
            for r in 0..3 {
                let v = f.values[((T0 + r * 3600 - f.from) / 60) as usize];
                assert_eq!(v, 1.0, "{n}: row {r}");
            }
        }
    };
    check(&store);
    drop(store);
    check(&open(&mem, &c));
}

/// A late point takes a row whole while the seal runs, and a checkpoint
/// writes that row sealed (dropping its fragments) before the seal's scan
/// reaches it: the seal must still roll the whole row up into the coarser
/// archive, not leave it the late point's window alone (a CI run of the
/// test of the seal beside checkpoints lost 59 of 60 minutes so).
#[test]
fn a_row_checkpointed_whole_before_the_seal_reaches_it_still_rolls_up() {
    let mem = Arc::new(MemKv::new());
    let c = StorageConfig {
        checkpoint_interval: std::time::Duration::from_secs(86400),
        ..cfg("10s:1h,1m:1d", "sum", 0.0)
    };
    let store = Arc::new(open(&mem, &c));
    let names = ones_every_10s(&store, "took.s", 3000, 360);
    store.checkpoint().unwrap();
    let now = T0 + 3600 + 300;
    // After the seal's first batch: late points (5 in place of the first
    // 1) for rows a later batch seals, then a checkpoint.
    let late = names[2900..].to_vec();
    late_points_after_the_first_seal_batch(&store, late.clone(), 5.0, now, true);
    assert!(store.seal_ended_rows(now).unwrap() > 0);
    let check = |store: &Store| {
        for n in &names {
            let id = store.index().id(n).unwrap();
            let f = store
                .fetch(id, now - 7200, T0 + 3599, now)
                .unwrap()
                .unwrap();
            assert_eq!(f.step, 60);
            let total: f64 = f.values.iter().filter(|v| !v.is_nan()).sum();
            let want = if late.contains(n) { 364.0 } else { 360.0 };
            assert_eq!(total, want, "{n}: {:?}", f.values);
        }
    };
    check(&store);
    // As after kill -9: the engine and the log as the seal left them.
    check(&open(&mem, &c));
}
