//! From a [`Flush`] to named series: Etsy's Graphite names, written to the
//! store (with each timer's histogram) and sent to the carbon forward queue.

pub mod forward;
pub mod graphite;
pub mod own;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use crate::aggregate::timer::TimerLayout;
use crate::aggregate::Flush;
use crate::config::Config;
use crate::store::hist::Hist;
use crate::store::{Point, RateLink, StatLink, Store};
use crate::telemetry::Telemetry;
use forward::{Forwarder, Payload};
use graphite::Field;
use graphite::{BackendStats, Naming};

/// Turns flushes into Graphite lines and hands them to the forwarder.
pub struct Emitter {
    naming: Naming,
    layout: TimerLayout,
    backend: Arc<BackendStats>,
    forward: Option<Forwarder>,
    store: Option<Arc<Store>>,
    own: Option<own::OwnSources>,
}

impl Emitter {
    pub fn new(cfg: &Config, telemetry: Arc<Telemetry>) -> Self {
        let backend = Arc::new(BackendStats::default());
        backend.last_flush.store(
            crate::telemetry::unix_now_i64(),
            std::sync::atomic::Ordering::Relaxed,
        );
        let forward = cfg.forward.graphite.as_ref().map(|g| {
            Forwarder::start(
                g.address.clone(),
                g.max_queue_bytes,
                telemetry,
                backend.clone(),
            )
        });
        Emitter {
            naming: Naming::new(&cfg.statsd),
            layout: TimerLayout::new(&cfg.statsd),
            backend,
            forward,
            store: None,
            own: None,
        }
    }

    /// Also writes the daemon's own figures (store, disk, RSS, render,
    /// alerts) at every flush.
    pub fn with_own(mut self, sources: own::OwnSources) -> Self {
        self.own = Some(sources);
        self
    }

    /// Also writes every flush into `store`.
    pub fn with_store(mut self, store: Arc<Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Writes one flush to the store: every series Etsy would send, plus a
    /// histogram per timer with samples (rollups take percentiles from it).
    pub fn store_flush(&self, store: &Store, flush: &Flush) {
        self.store_flush_with(store, flush, &own::Own::default());
    }

    fn store_flush_with(&self, store: &Store, flush: &Flush, own: &own::Own) {
        let ts = flush.timestamp;
        // A timer with samples has a histogram, `hists[hist_of[timer]]`.
        let mut hist_of: Vec<Option<usize>> = Vec::with_capacity(flush.timers.len());
        let mut branches: Vec<(String, Hist)> = Vec::new();
        for t in &flush.timers {
            if t.samples.is_empty() {
                hist_of.push(None);
            } else {
                hist_of.push(Some(branches.len()));
                branches.push((
                    self.naming.timer_branch(&t.key),
                    Hist::from_sorted_samples(&t.samples),
                ));
            }
        }
        // Non-finite values (Etsy's NaN for an empty lower set) are not
        // stored; a timer's statistics are linked to its histogram.
        let mut names: Vec<(String, f64)> = Vec::with_capacity(flush.num_stats() * 4 + 64);
        let mut links: Vec<StatLink> = Vec::new();
        let mut rates = RatePairs::default();
        self.naming
            .walk_fields(flush, &self.layout, &self.backend, |name, value, field| {
                if !value.is_finite() {
                    rates.skipped();
                    return;
                }
                let point = names.len();
                if let Field::Timer(timer, field) = field {
                    let stat = crate::store::index::StatCode::of_field(field);
                    if let (Some(hist), Some(stat)) = (hist_of[timer], stat) {
                        links.push(StatLink { point, hist, stat });
                    }
                }
                rates.saw(field, point);
                names.push((name.to_string(), value));
            });
        self.naming
            .walk_own_fields(own, flush.interval, |name, value, field| {
                if !value.is_finite() {
                    rates.skipped();
                    return;
                }
                rates.saw(field, names.len());
                names.push((name.to_string(), value));
            });
        let points: Vec<Point<'_>> = names
            .iter()
            .map(|(n, v)| Point {
                name: n,
                timestamp: ts,
                value: *v,
            })
            .collect();
        let hists: Vec<(&str, i64, Hist)> = branches
            .iter_mut()
            .map(|(n, h)| (n.as_str(), ts, std::mem::take(h)))
            .collect();
        if let Err(e) = store.write_flush(&points, &hists, &links, &rates.links, ts) {
            tracing::error!(error = %e, points = points.len(), "flush could not be logged; it is kept in memory until a checkpoint succeeds");
        }
    }

    /// Renders one flush as carbon plaintext: `name value timestamp\n`, the
    /// value as JavaScript prints it (as Etsy sends it).
    pub fn render(&self, flush: &Flush) -> Payload {
        self.render_with(flush, &own::Own::default())
    }

    fn render_with(&self, flush: &Flush, own: &own::Own) -> Payload {
        let mut data = Vec::with_capacity(64 * (flush.num_stats() + 32));
        let mut lines = 0u64;
        let ts = flush.timestamp;
        let mut num = ryu_js::Buffer::new();
        self.naming
            .walk(flush, &self.layout, &self.backend, |name, value| {
                let _ = writeln!(data, "{name} {} {ts}", num.format(value));
                lines += 1;
            });
        self.naming.walk_own(own, flush.interval, |name, value| {
            let _ = writeln!(data, "{name} {} {ts}", num.format(value));
            lines += 1;
        });
        Payload { data, lines }
    }

    /// The graphite backend's stats (for the admin `stats` command).
    pub fn backend(&self) -> Arc<BackendStats> {
        self.backend.clone()
    }

    /// Emits a flush to every configured destination.
    /// The daemon's own figures are sampled once here (one walk of the
    /// data directory, each counter's change counted once) for both.
    pub fn emit(&self, flush: &Flush) {
        let own = self
            .own
            .as_ref()
            .map(own::OwnSources::sample)
            .unwrap_or_default();
        if let Some(s) = &self.store {
            self.store_flush_with(s, flush, &own);
        }
        if let Some(f) = &self.forward {
            f.send(self.render_with(flush, &own));
        }
    }

    /// Gives the forwarder up to `grace` to send what is queued.
    pub fn shutdown(self, grace: Duration) {
        if let Some(f) = self.forward {
            f.shutdown(grace);
        }
    }
}

/// Pairs each rate the flush walks with its count, as the walk names them
/// ([`graphite::Field`]): a counter's rate and the count right after it, a
/// timer's `count_ps` and `count` (in either order among its fields).
#[derive(Default)]
struct RatePairs {
    links: Vec<RateLink>,
    /// The counter rate just walked.
    counter_rate: Option<usize>,
    /// The walked timer's `count_ps` and `count`: (timer, point).
    timer_rate: Option<(usize, usize)>,
    timer_count: Option<(usize, usize)>,
}

impl RatePairs {
    /// `field` was stored as point `point`.
    fn saw(&mut self, field: Field<'_>, point: usize) {
        match field {
            Field::CounterRate => self.counter_rate = Some(point),
            Field::CounterCount => {
                if let Some(rate) = self.counter_rate.take() {
                    self.links.push(RateLink { rate, count: point });
                }
            }
            Field::Timer(timer, "count_ps") => {
                self.timer_rate = Some((timer, point));
                self.pair_timer();
            }
            Field::Timer(timer, "count") => {
                self.timer_count = Some((timer, point));
                self.pair_timer();
            }
            Field::Timer(..) | Field::Other => self.counter_rate = None,
        }
    }

    /// A field was not stored (not finite): a counter's count can no
    /// longer pair with a rate before it.
    fn skipped(&mut self) {
        self.counter_rate = None;
    }

    fn pair_timer(&mut self) {
        self.counter_rate = None;
        if let (Some((a, rate)), Some((b, count))) = (self.timer_rate, self.timer_count) {
            if a == b {
                self.links.push(RateLink { rate, count });
                (self.timer_rate, self.timer_count) = (None, None);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::TimerFlush;
    use crate::store::index::Stat;

    /// The flush links each rate to its count by what it emitted (a
    /// counter's rate and count in either namespace, a timer's `count_ps`
    /// and `count`), so the rates are stored derived from the counts
    /// whatever the names; a counter whose count is not flushed has none.
    #[test]
    fn rates_are_linked_to_their_counts_whatever_their_names() {
        for (toml, pairs) in [
            (
                "",
                vec![
                    ("stats.hits", "stats_counts.hits"),
                    ("stats.api.req;env=prod", "stats_counts.api.req;env=prod"),
                    ("stats.timers.lat.count_ps", "stats.timers.lat.count"),
                    (
                        "stats.statsd.bad_lines.no_colon",
                        "stats_counts.statsd.bad_lines.no_colon",
                    ),
                    (
                        "stats.statsd.store.points_written",
                        "stats_counts.statsd.store.points_written",
                    ),
                ],
            ),
            (
                "[statsd]\nlegacy_namespace = false\nglobal_suffix = \"sfx\"\n",
                vec![
                    (
                        "stats.counters.hits.rate.sfx",
                        "stats.counters.hits.count.sfx",
                    ),
                    (
                        "stats.counters.api.req.rate.sfx;env=prod",
                        "stats.counters.api.req.count.sfx;env=prod",
                    ),
                    (
                        "stats.timers.lat.count_ps.sfx",
                        "stats.timers.lat.count.sfx",
                    ),
                ],
            ),
            (
                "[statsd]\nflush_counts = false\n",
                vec![("stats.timers.lat.count_ps", "stats.timers.lat.count")],
            ),
        ] {
            let cfg = Config::parse(toml).unwrap();
            let emitter = Emitter::new(&cfg, Arc::new(Telemetry::new()));
            let store = Store::in_memory(&cfg.storage).unwrap();
            let flush = Flush {
                timestamp: 1_700_000_000,
                interval: Duration::from_secs(10),
                counters: vec![("hits".into(), 5.0), ("api.req;env=prod".into(), 7.0)],
                timers: vec![TimerFlush {
                    key: "lat".into(),
                    samples: vec![1.0, 2.0],
                    count: 2.0,
                }],
                gauges: vec![("q".into(), 3.0)],
                sets: vec![],
                internal: Default::default(),
                aggregation_time: Duration::ZERO,
            };
            let own = own::Own {
                counts: vec![("store.points_written".into(), 50.0)],
                levels: vec![("store.series".into(), 9.0)],
            };
            emitter.store_flush_with(&store, &flush, &own);
            let ix = store.index();
            let linked: Vec<(String, String)> = (0..u32::try_from(ix.len()).unwrap())
                .filter_map(|id| {
                    let count = ix.series[id as usize].rate_of()?;
                    Some((ix.name(id).to_string(), ix.name(count).to_string()))
                })
                .collect();
            for (rate, count) in &pairs {
                assert!(
                    linked.iter().any(|(r, c)| r == rate && c == count),
                    "{toml:?}: {rate} -> {count} not in {linked:?}"
                );
            }
            // Every link pairs a rate with the count of the same key.
            for (r, c) in &linked {
                let key = |n: &str| {
                    n.replace("stats_counts.", "stats.")
                        .replace(".count_ps", "")
                        .replace(".count", "")
                        .replace(".rate", "")
                };
                assert_eq!(key(r), key(c), "{toml:?}");
            }
            if toml.contains("flush_counts") {
                assert_eq!(linked.len(), 1, "no counter count, no link: {linked:?}");
            }
        }
    }

    /// The flush links each timer's statistics to its histogram by what it
    /// emitted, so the names Etsy's naming cannot be parsed back from (a
    /// tagged timer, a global suffix, the new namespace) roll up from the
    /// merged histogram too.
    #[test]
    fn timer_stats_are_linked_to_their_histogram_whatever_their_names() {
        for toml in [
            "",
            "[statsd]\nlegacy_namespace = false\nglobal_suffix = \"sfx\"\npercent_threshold = [90, 99.9]\n",
        ] {
            let cfg = Config::parse(toml).unwrap();
            let emitter = Emitter::new(&cfg, Arc::new(Telemetry::new()));
            let store = Store::in_memory(&cfg.storage).unwrap();
            let key = "api.lat;env=prod";
            let flush = Flush {
                timestamp: 1_700_000_000,
                interval: Duration::from_secs(10),
                counters: vec![],
                timers: vec![TimerFlush {
                    key: key.into(),
                    samples: (1..=100).map(f64::from).collect(),
                    count: 100.0,
                }],
                gauges: vec![],
                sets: vec![],
                internal: Default::default(),
                aggregation_time: Duration::ZERO,
            };
            emitter.store_flush(&store, &flush);
            let ix = store.index();
            let h = ix.hist_id(&emitter.naming.timer_branch(key)).unwrap();
            let mut linked: Vec<(String, Stat)> = ix
                .linked_to_hist(h)
                .into_iter()
                .map(|id| {
                    let (hist, stat) = ix.series[id as usize].link().unwrap();
                    assert_eq!(hist, h);
                    (ix.name(id).to_string(), stat)
                })
                .collect();
            linked.sort_by(|a, b| a.0.cmp(&b.0));
            // The field a stored name ends in, under its suffix and tags.
            let field_of = |n: &str| -> String {
                let base = n.split(';').next().unwrap();
                let base = base.strip_suffix(".sfx").unwrap_or(base);
                base.rsplit('.').next().unwrap().to_string()
            };
            let stat = |field: &str| {
                linked
                    .iter()
                    .find(|(n, _)| field_of(n) == field)
                    .map(|(_, s)| *s)
            };
            assert_eq!(stat("upper_90"), Some(Stat::Quantile(0.9)), "{toml}: {linked:?}");
            assert_eq!(stat("median"), Some(Stat::Quantile(0.5)), "{toml}: {linked:?}");
            assert_eq!(stat("mean"), Some(Stat::Mean), "{toml}: {linked:?}");
            assert_eq!(stat("std"), Some(Stat::Std), "{toml}: {linked:?}");
            if !toml.is_empty() {
                assert!(
                    matches!(stat("upper_99_9"), Some(Stat::Quantile(q)) if (q - 0.999).abs() < 1e-12),
                    "{linked:?}"
                );
            }
            // Nothing else: count, sum, upper and the like roll up by their
            // method.
            let want = if toml.is_empty() { 4 } else { 5 };
            assert_eq!(linked.len(), want, "{toml}: {linked:?}");
            for (n, _) in &linked {
                assert!(n.ends_with(";env=prod"), "{n}");
                if !toml.is_empty() {
                    assert!(n.contains(".sfx;"), "{n}");
                }
            }
        }
    }
}
