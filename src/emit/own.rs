//! The daemon's own figures beyond the aggregator's counters: the store,
//! the data directory's size, the resident set, `/render` and alerting.
//! They were only on `/metrics`; written as series at each flush, the
//! daemon's own dashboard can graph them with the rest.
//!
//! One [`Own`] is sampled per flush ([`OwnSources::sample`]) and written
//! by both the store and the carbon forward, so the data directory is
//! walked at most once per flush (less often when a walk is slow: see
//! `WALK_SPACING`) and a counter's change is counted once.
//!
//! Names follow the internal counters' scheme (`prefix_stats`, `statsd`
//! by default): counts through the counter path (legacy:
//! `stats.statsd.<x>` per second and `stats_counts.statsd.<x>`), levels
//! through the gauge path, like Etsy's `statsd.timestamp_lag`
//! (`stats.gauges.statsd.<x>`).

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use crate::store::Store;
use crate::telemetry::render::RenderLatency;

/// The states alert instances are counted in, as `/api/alerts` names them,
/// and `silenced` (instances in any state that a silence covers).
pub const ALERT_STATES: [&str; 7] = [
    "ok", "pending", "warning", "critical", "nodata", "error", "silenced",
];

/// One flush's figures: counts over the interval and levels now. Names are
/// below `prefix_stats` (`store.points_written`, ...).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Own {
    pub counts: Vec<(String, f64)>,
    pub levels: Vec<(String, f64)>,
}

/// Where the figures come from; each is optional (a test daemon, the
/// benchmarks, a store in memory).
#[derive(Default)]
pub struct OwnSources {
    pub store: Option<Arc<Store>>,
    /// The data directory, measured as `du` does (allocated blocks).
    pub data_dir: Option<PathBuf>,
    pub render: Option<Arc<RenderLatency>>,
    pub alerts: Option<Arc<crate::alert::engine::Alerts>>,
    /// `[storage.clickhouse]`'s writer: its `clickhouse.*` figures, only
    /// when it is configured.
    pub clickhouse: Option<Arc<crate::clickhouse::write::Writer>>,
    /// Cumulative counts at the last sample, by name.
    last: Mutex<Vec<(String, u64)>>,
    /// The last walk of the data directory: (bytes, entries, took, when).
    walked: Mutex<Option<(u64, u64, std::time::Duration, Instant)>>,
}

/// A walk of the data directory is repeated only after 100 times what the
/// last one took, so it costs at most 1 % of the flusher's time: 5 µs an
/// entry measured (10,000 files: 45 ms; 50,000: 290 ms), so a data
/// directory under ~2,000 files is walked every flush of 1 s and more.
const WALK_SPACING: u32 = 100;

/// Bytes allocated under `dir` (`du -s --block-size=1`, hard links counted
/// once per sighting), and how many entries were looked at. Unreadable
/// entries are skipped: the figure is for a graph, not an invoice.
pub fn du(dir: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let mut bytes = 0u64;
    let mut entries = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            entries += 1;
            // symlink_metadata: a link is not followed (du's default).
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            bytes += m.blocks() * 512;
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    (bytes, entries)
}

impl OwnSources {
    pub fn new(
        store: Option<Arc<Store>>,
        data_dir: Option<PathBuf>,
        render: Option<Arc<RenderLatency>>,
        alerts: Option<Arc<crate::alert::engine::Alerts>>,
    ) -> OwnSources {
        OwnSources {
            store,
            data_dir,
            render,
            alerts,
            ..Default::default()
        }
    }

    /// The data directory's size: walked now, or the last walk's figures
    /// while the spacing after an expensive walk lasts.
    fn disk(&self) -> (u64, u64, std::time::Duration) {
        let Some(dir) = self.data_dir.as_deref() else {
            return (0, 0, Default::default());
        };
        let mut walked = self.walked.lock();
        if let Some((bytes, entries, took, at)) = *walked {
            if at.elapsed() < took * WALK_SPACING {
                return (bytes, entries, took);
            }
        }
        let started = Instant::now();
        let (bytes, entries) = du(dir);
        let took = started.elapsed();
        *walked = Some((bytes, entries, took, started));
        (bytes, entries, took)
    }

    /// The counter `name`'s change since the last sample (its whole value
    /// at the first).
    fn delta(last: &mut Vec<(String, u64)>, name: &str, now: u64) -> f64 {
        match last.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => {
                let d = now.saturating_sub(*v);
                *v = now;
                d as f64
            }
            None => {
                last.push((name.to_string(), now));
                now as f64
            }
        }
    }

    /// The figures now. Every name is always present (zero when its source
    /// is absent), except the `clickhouse.*` ones (only with
    /// `[storage.clickhouse]`) and render latency, absent in an interval without a
    /// render: a p99 of nothing is not 0 ms.
    pub fn sample(&self) -> Own {
        let mut last = self.last.lock();
        let mut own = Own::default();
        let mut count = |own: &mut Own, name: &str, now: u64| {
            let d = Self::delta(&mut last, name, now);
            own.counts.push((name.to_string(), d));
        };
        let level = |own: &mut Own, name: &str, v: f64| own.levels.push((name.to_string(), v));

        let s = self.store.as_deref();
        let stat = |f: fn(&Store) -> u64| s.map_or(0, f);
        count(
            &mut own,
            "store.points_written",
            stat(|s| s.stats.points_accepted.load(Relaxed)),
        );
        count(
            &mut own,
            "store.rows_sealed",
            stat(|s| s.stats.rows_sealed.load(Relaxed)),
        );
        count(
            &mut own,
            "store.write_errors",
            stat(|s| s.stats.write_errors.load(Relaxed)),
        );
        level(
            &mut own,
            "store.series",
            stat(|s| s.index().len() as u64) as f64,
        );
        level(
            &mut own,
            "store.checkpoint_ms",
            stat(|s| s.stats.last_checkpoint_ms.load(Relaxed)) as f64,
        );
        let (disk, entries, took) = self.disk();
        let walk_us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        level(&mut own, "store.disk_bytes", disk as f64);
        level(&mut own, "store.disk_files", entries as f64);
        level(&mut own, "store.disk_walk_us", walk_us as f64);
        level(
            &mut own,
            "process.rss_bytes",
            crate::store::memory::process_rss().unwrap_or(0) as f64,
        );

        let r = self.render.as_deref();
        let (requests, classes) = r.map_or((0, [0; 5]), |r| (r.requests(), r.by_class()));
        count(&mut own, "render.requests", requests);
        for (i, n) in classes.iter().enumerate() {
            count(&mut own, &format!("render.status.{}xx", i + 1), *n);
        }
        if let Some(w) = r.and_then(|r| r.take_window()) {
            level(&mut own, "render.latency_p50_ms", w.p50_ms);
            level(&mut own, "render.latency_p99_ms", w.p99_ms);
            level(&mut own, "render.latency_max_ms", w.max_ms);
        }

        let mut states = [0u64; ALERT_STATES.len()];
        let (mut sent, mut failed) = (0, 0);
        if let Some(a) = &self.alerts {
            for (state, n) in a.state_counts() {
                if let Some(k) = ALERT_STATES.iter().position(|s| *s == state) {
                    states[k] = n as u64;
                }
            }
            // Which instances a silence covers takes each one's labels:
            // worked out only while there are silences.
            if !a.silences().is_empty() {
                states[ALERT_STATES.len() - 1] = a
                    .list()
                    .iter()
                    .flat_map(|r| &r.instances)
                    .filter(|i| i.silenced)
                    .count() as u64;
            }
            for rc in a.notify_stats().receivers() {
                sent += rc.delivered;
                failed += rc.failed_attempts;
            }
        }
        for (state, n) in ALERT_STATES.iter().zip(states) {
            level(&mut own, &format!("alerts.instances.{state}"), n as f64);
        }
        count(&mut own, "alerts.notifications_sent", sent);
        count(&mut own, "alerts.notifications_failed", failed);
        if let Some(w) = &self.clickhouse {
            let st = w.stats();
            count(
                &mut own,
                "clickhouse.points_inserted",
                st.points_inserted.load(Relaxed),
            );
            count(&mut own, "clickhouse.errors", st.errors.load(Relaxed));
            count(
                &mut own,
                "clickhouse.points_dropped",
                st.points_dropped.load(Relaxed),
            );
            level(
                &mut own,
                "clickhouse.queue_points",
                st.queued_points.load(Relaxed) as f64,
            );
            level(
                &mut own,
                "clickhouse.queue_bytes",
                st.queued_bytes.load(Relaxed) as f64,
            );
            let oldest = st.queued_oldest.load(Relaxed);
            let age = if oldest == 0 {
                0.0
            } else {
                (crate::telemetry::unix_now().saturating_sub(oldest)) as f64
            };
            level(&mut own, "clickhouse.queue_oldest_age_s", age);
            level(
                &mut own,
                "clickhouse.insert_ms",
                st.last_insert_ms.load(Relaxed) as f64,
            );
        }
        own
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn get(v: &[(String, f64)], name: &str) -> Option<f64> {
        v.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }

    #[test]
    fn counts_are_changes_and_levels_are_now() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), vec![1u8; 10_000]).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/b"), vec![1u8; 50_000]).unwrap();
        let store = Arc::new(Store::in_memory(&Default::default()).unwrap());
        let render = Arc::new(RenderLatency::default());
        let src = OwnSources::new(
            Some(store.clone()),
            Some(dir.path().to_path_buf()),
            Some(render.clone()),
            None,
        );
        store.stats.points_accepted.fetch_add(100, Relaxed);
        for ms in [1, 2, 3, 4, 100] {
            render.observe(Duration::from_millis(ms));
            render.status(200);
        }
        render.status(503);
        let a = src.sample();
        assert_eq!(get(&a.counts, "store.points_written"), Some(100.0));
        assert_eq!(get(&a.counts, "render.requests"), Some(6.0));
        assert_eq!(get(&a.counts, "render.status.2xx"), Some(5.0));
        assert_eq!(get(&a.counts, "render.status.5xx"), Some(1.0));
        assert_eq!(get(&a.levels, "render.latency_p50_ms"), Some(3.0));
        assert_eq!(get(&a.levels, "render.latency_max_ms"), Some(100.0));
        let disk = get(&a.levels, "store.disk_bytes").unwrap();
        // Allocated blocks: at least the 60 KB written, at most a few
        // blocks more per file.
        assert!((60_000.0..200_000.0).contains(&disk), "{disk}");
        assert_eq!(get(&a.levels, "store.disk_files"), Some(3.0));
        assert!(get(&a.levels, "process.rss_bytes").unwrap() > 1e6);
        assert_eq!(get(&a.levels, "alerts.instances.critical"), Some(0.0));
        assert_eq!(get(&a.levels, "alerts.instances.silenced"), Some(0.0));
        // The next sample counts only what happened since.
        store.stats.points_accepted.fetch_add(7, Relaxed);
        let b = src.sample();
        assert_eq!(get(&b.counts, "store.points_written"), Some(7.0));
        assert_eq!(get(&b.counts, "render.requests"), Some(0.0));
        // No render in the interval: no latency figures, rather than 0.
        assert_eq!(get(&b.levels, "render.latency_p99_ms"), None);
    }

    #[test]
    fn a_slow_walk_is_not_repeated_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let src = OwnSources::new(None, Some(dir.path().to_path_buf()), None, None);
        // As if the last walk took a second: its figures stand for 100 s.
        *src.walked.lock() = Some((12345, 7, Duration::from_secs(1), Instant::now()));
        let a = src.sample();
        assert_eq!(get(&a.levels, "store.disk_bytes"), Some(12345.0));
        assert_eq!(get(&a.levels, "store.disk_walk_us"), Some(1e6));
        // Long enough ago: walked again.
        *src.walked.lock() = Some((
            12345,
            7,
            Duration::from_millis(1),
            Instant::now() - Duration::from_secs(1),
        ));
        let b = src.sample();
        assert_eq!(get(&b.levels, "store.disk_files"), Some(0.0));
    }

    /// What `du` costs per flush on a data directory of many files
    /// (`cargo test --release du_cost -- --ignored --nocapture`).
    #[test]
    #[ignore]
    fn du_cost() {
        let dir = tempfile::tempdir().unwrap();
        let mut made = 0;
        for n in [100usize, 1_000, 10_000, 50_000] {
            while made < n {
                let sub = dir.path().join(format!("d{}", made / 1000));
                std::fs::create_dir_all(&sub).unwrap();
                std::fs::write(sub.join(format!("{made:06}.sst")), [0u8; 100]).unwrap();
                made += 1;
            }
            let runs = 20;
            let t = Instant::now();
            for _ in 0..runs {
                std::hint::black_box(du(dir.path()));
            }
            let each = t.elapsed() / runs;
            println!("du of {n} files: {each:?} per walk");
        }
    }
}
