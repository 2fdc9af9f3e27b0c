//! Etsy's Graphite naming: turns a [`Flush`] into `(name, value)` pairs in
//! the order and with the names Etsy statsd 0.9.0's graphite backend sends.
//!
//! Legacy namespace (the default): `stats.<key>` (rate), `stats_counts.<key>`,
//! `stats.timers.<key>.<field>`, `stats.gauges.<key>`, `stats.sets.<key>.count`.
//! New namespace: `<global_prefix>.<prefix_counter>.<key>.rate|count`, and so
//! on, where an empty prefix removes its level. `global_suffix` goes after
//! the name and before Graphite tags: `name.suffix;k=v`.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use crate::aggregate::timer::TimerLayout;
use crate::aggregate::Flush;
use crate::config::StatsdConfig;
use crate::protocol::key;
use crate::protocol::statsd::BadReason;

/// The graphite backend's own stats (Etsy's `graphiteStats`), reported in
/// the next flush.
#[derive(Debug, Default)]
pub struct BackendStats {
    pub last_flush: AtomicI64,
    pub last_exception: AtomicI64,
    pub flush_time_ms: AtomicU64,
    pub flush_length: AtomicU64,
}

/// Name prefixes worked out once from the configuration.
#[derive(Debug, Clone)]
pub struct Naming {
    legacy: bool,
    flush_counts: bool,
    /// Keys were kept raw at ingest and must be sanitized here.
    sanitize_here: bool,
    suffix: String,
    prefix_stats: String,
    global: Vec<String>,
    counter: Vec<String>,
    timer: Vec<String>,
    gauge: Vec<String>,
    set: Vec<String>,
    /// `stats_counts`, the legacy home of raw counts.
    counts: Vec<String>,
}

impl Naming {
    pub fn new(cfg: &StatsdConfig) -> Self {
        let suffix = cfg
            .global_suffix
            .as_ref()
            .map(|s| format!(".{s}"))
            .unwrap_or_default();
        let (global, counter, timer, gauge, set) = if cfg.legacy_namespace {
            // Etsy ignores every prefix option in the legacy namespace.
            let s = || vec!["stats".to_string()];
            let with = |x: &str| vec!["stats".to_string(), x.to_string()];
            (s(), s(), with("timers"), with("gauges"), with("sets"))
        } else {
            let base: Vec<String> = if cfg.global_prefix.is_empty() {
                vec![]
            } else {
                vec![cfg.global_prefix.clone()]
            };
            let with = |p: &str| {
                let mut v = base.clone();
                if !p.is_empty() {
                    v.push(p.to_string());
                }
                v
            };
            (
                base.clone(),
                with(&cfg.prefix_counter),
                with(&cfg.prefix_timer),
                with(&cfg.prefix_gauge),
                with(&cfg.prefix_set),
            )
        };
        Naming {
            legacy: cfg.legacy_namespace,
            flush_counts: cfg.flush_counts,
            sanitize_here: !cfg.key_name_sanitize,
            suffix,
            prefix_stats: cfg.prefix_stats.clone(),
            global,
            counter,
            timer,
            gauge,
            set,
            counts: vec!["stats_counts".to_string()],
        }
    }

    /// Etsy's `format(namespace, key, ...parts)`: the key's name part is
    /// joined under the namespace with the parts, then the suffix, then the
    /// key's `;tags`.
    fn format(&self, out: &mut String, namespace: &[String], key: &str, parts: &[&str]) {
        out.clear();
        let (name, tags) = match key.split_once(';') {
            Some((n, t)) => (n, Some(t)),
            None => (key, None),
        };
        for ns in namespace {
            out.push_str(ns);
            out.push('.');
        }
        if self.sanitize_here {
            out.push_str(&key::sanitize(name));
        } else {
            out.push_str(name);
        }
        for p in parts {
            out.push('.');
            out.push_str(p);
        }
        out.push_str(&self.suffix);
        if let Some(t) = tags {
            out.push(';');
            out.push_str(t);
        }
    }

    /// The branch a timer's stats hang under (`stats.timers.<key>`): the
    /// name its histogram is stored under.
    pub fn timer_branch(&self, key: &str) -> String {
        let mut out = String::new();
        self.format(&mut out, &self.timer, key, &[]);
        out
    }

    /// Walks a flush in Etsy's order, calling `out(name, value)` per line.
    /// `backend` are the graphite backend's own stats from earlier flushes.
    pub fn walk(
        &self,
        flush: &Flush,
        layout: &TimerLayout,
        backend: &BackendStats,
        mut out: impl FnMut(&str, f64),
    ) {
        self.walk_fields(flush, layout, backend, |name, v, _| out(name, v));
    }

    /// [`Naming::walk`], also saying of each timer field which timer
    /// (its index in `flush.timers`) and which field (`upper_90`, `mean`)
    /// it is: the store links a timer's statistics to its histogram by
    /// that, not by parsing the names back.
    pub fn walk_fields(
        &self,
        flush: &Flush,
        layout: &TimerLayout,
        backend: &BackendStats,
        mut out: impl FnMut(&str, f64, Field<'_>),
    ) {
        let started = std::time::Instant::now();
        let secs = flush.interval.as_millis() as f64 / 1000.0;
        let mut name = String::with_capacity(128);
        for (key, value) in &flush.counters {
            self.counter_lines(&mut name, key, *value, secs, &mut out);
        }
        for (i, t) in flush.timers.iter().enumerate() {
            // `histogram.bin_N` arrives as one part holding its own dot,
            // which joins to the same name as Etsy's two levels.
            layout.fields(&t.key, &t.samples, t.count, |field, v| {
                self.format(&mut name, &self.timer, &t.key, &[field]);
                out(&name, v, Field::Timer(i, field));
            });
        }
        let mut out = |n: &str, v: f64, f: Field<'_>| out(n, v, f);
        for (key, value) in &flush.gauges {
            self.format(&mut name, &self.gauge, key, &[]);
            out(&name, *value, Field::Other);
        }
        for (key, members) in &flush.sets {
            self.format(&mut name, &self.set, key, &["count"]);
            out(&name, *members as f64, Field::Other);
        }
        // rollupd's own counters, beyond Etsy's three (which are counters
        // above): named like statsd's internal counters.
        let p = &self.prefix_stats;
        let i = &flush.internal;
        for reason in BadReason::ALL {
            let key = format!("{p}.bad_lines.{}", reason.as_str());
            self.counter_lines(
                &mut name,
                &key,
                i.bad_lines[reason.index()] as f64,
                secs,
                &mut out,
            );
        }
        let extra = [
            ("keys_over_cap", i.keys_over_cap),
            ("timer_samples_dropped", i.timer_samples_dropped),
            ("set_members_dropped", i.set_members_dropped),
            ("events_received", i.events_received),
            ("events_dropped", i.events_dropped),
            ("service_checks_received", i.service_checks_received),
            ("udp_kernel_drops", i.udp_kernel_drops),
            ("forward_lines_dropped", i.forward_lines_dropped),
            ("tcp_connections_refused", i.tcp_connections_refused),
            ("carbon_connections_refused", i.carbon_connections_refused),
            ("admin_connections_refused", i.admin_connections_refused),
            ("http_connections_refused", i.http_connections_refused),
        ];
        for (what, n) in extra {
            self.counter_lines(&mut name, &format!("{p}.{what}"), n as f64, secs, &mut out);
        }
        self.counter_lines(
            &mut name,
            &format!("{p}.carbon.points_received"),
            i.carbon_points as f64,
            secs,
            &mut out,
        );
        for reason in crate::protocol::carbon::CarbonBad::ALL {
            let key = format!("{p}.carbon.bad_lines.{}", reason.as_str());
            self.counter_lines(
                &mut name,
                &key,
                i.carbon_bad_lines[reason.index()] as f64,
                secs,
                &mut out,
            );
        }
        // Etsy's trailer: numStats, calculation and processing time, then the
        // graphite backend's stats.
        let num_stats = flush.num_stats() as f64;
        let calc_ms = started.elapsed().as_millis() as f64;
        let processing_ms = flush.aggregation_time.as_millis() as f64;
        let trailer: [(&[&str], f64); 7] = [
            (&["numStats"], num_stats),
            (&["graphiteStats", "calculationtime"], calc_ms),
            (&["processing_time"], processing_ms),
            (
                &["graphiteStats", "last_exception"],
                backend.last_exception.load(Relaxed) as f64,
            ),
            (
                &["graphiteStats", "last_flush"],
                backend.last_flush.load(Relaxed) as f64,
            ),
            (
                &["graphiteStats", "flush_time"],
                backend.flush_time_ms.load(Relaxed) as f64,
            ),
            (
                &["graphiteStats", "flush_length"],
                backend.flush_length.load(Relaxed) as f64,
            ),
        ];
        for (k, (parts, v)) in trailer.iter().enumerate() {
            if self.legacy {
                // Etsy: `statsd.numStats` has no `stats.` root; the others do.
                name.clear();
                if k > 0 {
                    name.push_str("stats.");
                }
                name.push_str(p);
                for part in parts.iter() {
                    name.push('.');
                    name.push_str(part);
                }
                name.push_str(&self.suffix);
            } else {
                self.format(&mut name, &self.global, p, parts);
            }
            out(&name, *v, Field::Other);
        }
    }

    /// The daemon's own figures ([`super::own`]) under `prefix_stats`:
    /// counts as counters (a rate and, with `flush_counts`, the count),
    /// levels as gauges, as Etsy names `statsd.timestamp_lag`.
    pub fn walk_own(
        &self,
        own: &super::own::Own,
        interval: std::time::Duration,
        mut out: impl FnMut(&str, f64),
    ) {
        self.walk_own_fields(own, interval, |n, v, _| out(n, v));
    }

    /// [`Naming::walk_own`], saying of each counter line whether it is the
    /// rate or the count (as [`Naming::walk_fields`]).
    pub fn walk_own_fields(
        &self,
        own: &super::own::Own,
        interval: std::time::Duration,
        mut out: impl FnMut(&str, f64, Field<'_>),
    ) {
        let secs = interval.as_millis() as f64 / 1000.0;
        let p = &self.prefix_stats;
        let mut name = String::with_capacity(128);
        for (what, n) in &own.counts {
            self.counter_lines(&mut name, &format!("{p}.{what}"), *n, secs, &mut out);
        }
        for (what, v) in &own.levels {
            self.format(&mut name, &self.gauge, &format!("{p}.{what}"), &[]);
            out(&name, *v, Field::Other);
        }
    }

    fn counter_lines(
        &self,
        name: &mut String,
        key: &str,
        value: f64,
        secs: f64,
        out: &mut impl FnMut(&str, f64, Field<'_>),
    ) {
        let rate = value / secs;
        if self.legacy {
            self.format(name, &self.counter, key, &[]);
            out(name, rate, Field::CounterRate);
            if self.flush_counts {
                self.format(name, &self.counts, key, &[]);
                out(name, value, Field::CounterCount);
            }
        } else {
            self.format(name, &self.counter, key, &["rate"]);
            out(name, rate, Field::CounterRate);
            if self.flush_counts {
                self.format(name, &self.counter, key, &["count"]);
                out(name, value, Field::CounterCount);
            }
        }
    }
}

/// What a series [`Naming::walk_fields`] names is, beyond its name: the
/// store links a timer's statistics to its histogram and a rate to its
/// count by this, not by parsing the names back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field<'a> {
    /// Field `.1` (`upper_90`, `count_ps`) of timer `.0` (its index in
    /// `flush.timers`).
    Timer(usize, &'a str),
    /// A counter's per-second rate; its count, if flushed, comes next.
    CounterRate,
    /// The count of the counter whose rate came just before.
    CounterCount,
    /// A gauge, a set's count, Etsy's trailer.
    Other,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::TimerFlush;
    use crate::config::Config;
    use std::collections::BTreeMap;
    use std::time::Duration;

    fn names(toml: &str, flush: &Flush) -> BTreeMap<String, f64> {
        let cfg = Config::parse(toml).unwrap().statsd;
        let naming = Naming::new(&cfg);
        let layout = TimerLayout::new(&cfg);
        let mut out = BTreeMap::new();
        naming.walk(flush, &layout, &BackendStats::default(), |n, v| {
            out.insert(n.to_string(), v);
        });
        out
    }

    fn sample_flush() -> Flush {
        Flush {
            timestamp: 1,
            interval: Duration::from_secs(10),
            counters: vec![
                ("api.hits".into(), 5.0),
                ("api.req;env=prod;region=eu".into(), 1.0),
            ],
            timers: vec![TimerFlush {
                key: "t".into(),
                samples: vec![1.0, 3.0],
                count: 2.0,
            }],
            gauges: vec![("queue.depth".into(), 327.0)],
            sets: vec![("users.uniq".into(), 2)],
            ..Flush::default()
        }
    }

    #[test]
    fn legacy_names() {
        let n = names("", &sample_flush());
        assert_eq!(n["stats.api.hits"], 0.5);
        assert_eq!(n["stats_counts.api.hits"], 5.0);
        assert_eq!(n["stats.api.req;env=prod;region=eu"], 0.1);
        assert_eq!(n["stats_counts.api.req;env=prod;region=eu"], 1.0);
        assert_eq!(n["stats.timers.t.mean_90"], 2.0);
        assert_eq!(n["stats.gauges.queue.depth"], 327.0);
        assert_eq!(n["stats.sets.users.uniq.count"], 2.0);
        assert_eq!(n["statsd.numStats"], 5.0);
        assert!(n.contains_key("stats.statsd.graphiteStats.calculationtime"));
        assert!(n.contains_key("stats.statsd.processing_time"));
        assert!(n.contains_key("stats.statsd.graphiteStats.flush_length"));
    }

    #[test]
    fn new_namespace_with_prefix_and_suffix() {
        let n = names(
            "[statsd]\nlegacy_namespace = false\nglobal_prefix = \"app\"\nglobal_suffix = \"host1\"\n",
            &sample_flush(),
        );
        assert_eq!(n["app.counters.api.hits.rate.host1"], 0.5);
        assert_eq!(n["app.counters.api.hits.count.host1"], 5.0);
        assert_eq!(n["app.counters.api.req.rate.host1;env=prod;region=eu"], 0.1);
        assert_eq!(n["app.timers.t.upper_90.host1"], 3.0);
        assert_eq!(n["app.gauges.queue.depth.host1"], 327.0);
        assert_eq!(n["app.sets.users.uniq.count.host1"], 2.0);
        assert_eq!(n["app.statsd.numStats.host1"], 5.0);
    }

    #[test]
    fn empty_prefixes_remove_levels_and_flush_counts_off() {
        let n = names(
            "[statsd]\nlegacy_namespace = false\nglobal_prefix = \"\"\nprefix_counter = \"\"\nflush_counts = false\n",
            &sample_flush(),
        );
        assert_eq!(n["api.hits.rate"], 0.5);
        assert!(!n.contains_key("api.hits.count"));
        assert_eq!(n["timers.t.lower"], 1.0);
        assert_eq!(n["statsd.numStats"], 5.0);
    }

    #[test]
    fn legacy_ignores_prefix_options() {
        let n = names(
            "[statsd]\nglobal_prefix = \"app\"\nprefix_counter = \"c\"\n",
            &sample_flush(),
        );
        assert!(n.contains_key("stats.api.hits"));
    }

    #[test]
    fn raw_keys_are_sanitized_on_the_way_out() {
        let mut f = sample_flush();
        f.counters = vec![("a b/c;tag=x y".into(), 1.0)];
        let n = names("[statsd]\nkey_name_sanitize = false\n", &f);
        assert!(n.contains_key("stats_counts.a_b-c;tag=x y"), "{n:?}");
    }

    #[test]
    fn own_figures_are_named_as_counters_and_gauges() {
        let own = super::super::own::Own {
            counts: vec![("store.points_written".into(), 50.0)],
            levels: vec![("store.disk_bytes".into(), 4096.0)],
        };
        let walk = |toml: &str| {
            let naming = Naming::new(&Config::parse(toml).unwrap().statsd);
            let mut out = BTreeMap::new();
            naming.walk_own(&own, Duration::from_secs(10), |n, v| {
                out.insert(n.to_string(), v);
            });
            out
        };
        let n = walk("[statsd]\nglobal_suffix = \"web1\"\n");
        assert_eq!(n["stats.statsd.store.points_written.web1"], 5.0);
        assert_eq!(n["stats_counts.statsd.store.points_written.web1"], 50.0);
        assert_eq!(n["stats.gauges.statsd.store.disk_bytes.web1"], 4096.0);
        assert_eq!(n.len(), 3);
        let n = walk("[statsd]\nlegacy_namespace = false\nprefix_stats = \"rollupd\"\n");
        assert_eq!(n["stats.counters.rollupd.store.points_written.rate"], 5.0);
        assert_eq!(n["stats.gauges.rollupd.store.disk_bytes"], 4096.0);
    }

    #[test]
    fn internal_counters_by_reason_are_named() {
        let mut f = sample_flush();
        f.internal.bad_lines[BadReason::NoColon.index()] = 3;
        let n = names("", &f);
        assert_eq!(n["stats_counts.statsd.bad_lines.no_colon"], 3.0);
        assert_eq!(n["stats_counts.statsd.udp_kernel_drops"], 0.0);
    }
}
