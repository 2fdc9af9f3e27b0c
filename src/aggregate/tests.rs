//! Etsy's aggregation rules, checked through the public surface.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::config::Config;
use crate::events::EventQueue;

const TEN_S: Duration = Duration::from_secs(10);

struct Fixture {
    agg: Aggregator,
    scratch: Scratch,
    counts: LocalCounts,
    _events: std::sync::mpsc::Receiver<crate::events::QueuedEvent>,
}

impl Fixture {
    fn new(toml: &str) -> Self {
        let cfg = Config::parse(toml).unwrap();
        let (q, rx) = EventQueue::bounded();
        Fixture {
            agg: Aggregator::new(&cfg.statsd, Arc::new(Telemetry::new()), q),
            scratch: Scratch::default(),
            counts: LocalCounts::default(),
            _events: rx,
        }
    }

    fn send(&mut self, packet: &str) {
        self.agg.ingest_packet(
            packet.as_bytes(),
            false,
            &mut self.scratch,
            &mut self.counts,
        );
        self.agg.telemetry().publish(&mut self.counts);
    }

    fn flush(&self) -> Flush {
        self.agg.flush(TEN_S)
    }
}

fn counters(f: &Flush) -> HashMap<String, f64> {
    f.counters
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect()
}
fn gauges(f: &Flush) -> HashMap<String, f64> {
    f.gauges.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}
fn sets(f: &Flush) -> HashMap<String, u64> {
    f.sets.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}
fn timer<'a>(f: &'a Flush, key: &str) -> &'a TimerFlush {
    f.timers.iter().find(|t| &*t.key == key).unwrap()
}

#[test]
fn counters_scale_by_sample_rate_and_reset_to_zero() {
    let mut fx = Fixture::new("");
    fx.send("api.hits:1|c\napi.hits:2|c|@0.5\nmulti:1|c:2|c\nc.float:1.5|c|@0.1");
    let f = fx.flush();
    let c = counters(&f);
    assert_eq!(c["api.hits"], 5.0);
    assert_eq!(c["multi"], 3.0);
    assert_eq!(c["c.float"], 15.0);
    assert_eq!(c["statsd.metrics_received"], 4.0);
    assert_eq!(c["statsd.packets_received"], 1.0);
    // kept at zero by default
    let c = counters(&fx.flush());
    assert_eq!(c["api.hits"], 0.0);
    assert_eq!(c["statsd.metrics_received"], 0.0);
}

#[test]
fn delete_counters_keeps_names_mentioning_internal_counters() {
    let mut fx = Fixture::new("[statsd]\ndelete_counters = true\n");
    fx.send("gone:5|c\nmy.packets_received.copy:1|c");
    assert_eq!(counters(&fx.flush())["gone"], 5.0);
    let c = counters(&fx.flush());
    assert!(!c.contains_key("gone"));
    assert_eq!(c["my.packets_received.copy"], 0.0);
    assert_eq!(fx.agg.live_keys(), 1);
}

#[test]
fn gauges_follow_etsy_delta_rules() {
    let mut fx = Fixture::new("");
    fx.send("q:333|g\nq:-10|g\nq:+4|g\nfresh:-5|g\nsampled:10|g|@0.5");
    let g = gauges(&fx.flush());
    assert_eq!(g["q"], 327.0);
    assert_eq!(g["fresh"], -5.0, "a fresh signed gauge is set, not added");
    assert_eq!(g["sampled"], 10.0, "the sample rate does not touch gauges");
    // a delta on a gauge at zero sets it (Etsy tests `gauges[key]` for truth)
    fx.send("z:0|g");
    fx.send("z:+3|g");
    assert_eq!(gauges(&fx.flush())["z"], 3.0);
    // gauges persist across flushes
    assert_eq!(gauges(&fx.flush())["q"], 327.0);
}

#[test]
fn gauge_ttl_with_delete_gauges() {
    let mut fx = Fixture::new("[statsd]\ndelete_gauges = true\ngauges_max_ttl = 2\n");
    fx.send("dg:3|g");
    assert!(gauges(&fx.flush()).contains_key("dg"));
    assert!(
        gauges(&fx.flush()).contains_key("dg"),
        "ttl 2 keeps it one idle flush"
    );
    assert!(!gauges(&fx.flush()).contains_key("dg"));
}

#[test]
fn timestamp_lag_appears_from_the_second_flush() {
    let fx = Fixture::new("");
    assert!(!gauges(&fx.flush()).contains_key("statsd.timestamp_lag"));
    let lag = gauges(&fx.flush())["statsd.timestamp_lag"];
    // two immediate flushes: lag = 0 - 10 s (give or take a rounding second)
    assert!((-11.0..=-9.0).contains(&lag), "{lag}");
}

#[test]
fn sets_count_distinct_members() {
    let mut fx = Fixture::new("");
    fx.send("u:alice|s\nu:bob|s\nu:alice|s\nz:|s\nz:0|s");
    let s = sets(&fx.flush());
    assert_eq!(s["u"], 2);
    assert_eq!(s["z"], 1, "an empty member is Etsy's '0'");
    assert_eq!(sets(&fx.flush())["u"], 0, "kept, emptied");
}

#[test]
fn timers_keep_raw_samples_and_rate_corrected_count() {
    let mut fx = Fixture::new("");
    fx.send("t:320|ms\nt:100|ms|@0.1\nt:200|ms\nt:150|h\nt:400|d");
    let f = fx.flush();
    let t = timer(&f, "t");
    assert_eq!(t.samples, vec![100.0, 150.0, 200.0, 320.0, 400.0]);
    assert_eq!(t.count, 14.0);
    let h = t.histogram().unwrap();
    assert_eq!(h.len(), 5);
    assert_eq!(h.max(), h.highest_equivalent(400_000));
    // idle, kept: no samples, count 0
    let f = fx.flush();
    let t = timer(&f, "t");
    assert!(t.samples.is_empty() && t.count == 0.0 && t.histogram().is_none());
}

#[test]
fn timer_reservoir_past_the_cap() {
    let mut fx = Fixture::new("[statsd]\nmax_timer_samples = 10\n");
    let packet: String = (0..100).map(|i| format!("t:{i}|ms\n")).collect();
    fx.send(&packet);
    let f = fx.flush();
    let t = timer(&f, "t");
    assert_eq!(t.samples.len(), 10);
    assert_eq!(t.count, 100.0, "the count stays exact");
    assert_eq!(f.internal.timer_samples_dropped, 90);
}

#[test]
fn key_cap_drops_new_keys_only() {
    let mut fx = Fixture::new("[statsd]\nmax_keys = 3\n");
    fx.send("a:1|c\nb:1|c\nc:1|ms\nd:1|g\ne:1|s\na:1|c");
    let f = fx.flush();
    let c = counters(&f);
    assert_eq!(c["a"], 2.0, "known keys keep counting");
    assert_eq!(f.internal.keys_over_cap, 2);
    assert_eq!(fx.agg.live_keys(), 3);
}

#[test]
fn bad_lines_are_counted_by_reason_and_per_sample() {
    let mut fx = Fixture::new("");
    fx.send("nocolon\nx:1|zz\npack:1:2|c\n!!!:1|c:2|c\nneg:-1|ms\nok:1|c");
    let f = fx.flush();
    let i = &f.internal;
    assert_eq!(i.bad_lines[BadReason::NoColon.index()], 1);
    assert_eq!(i.bad_lines[BadReason::UnknownType.index()], 1);
    assert_eq!(i.bad_lines[BadReason::MissingType.index()], 1);
    assert_eq!(
        i.bad_lines[BadReason::EmptyKey.index()],
        2,
        "one per sample of the line"
    );
    assert_eq!(i.bad_lines[BadReason::NegativeTimer.index()], 1);
    assert_eq!(i.bad_lines_total(), 6);
    assert_eq!(counters(&f)["statsd.bad_lines_seen"], 6.0);
    assert_eq!(counters(&f)["pack"], 2.0);
    assert_eq!(counters(&f)["ok"], 1.0);
}

#[test]
fn truncated_datagram_loses_only_its_cut_line() {
    let mut fx = Fixture::new("");
    fx.agg
        .ingest_packet(b"a:1|c\nb:1|c\nc:12", true, &mut fx.scratch, &mut fx.counts);
    fx.agg.telemetry().publish(&mut fx.counts);
    let f = fx.flush();
    assert_eq!(counters(&f)["a"], 1.0);
    assert!(!counters(&f).contains_key("c"));
    assert_eq!(f.internal.bad_lines[BadReason::Truncated.index()], 1);
}

#[test]
fn events_and_service_checks() {
    let cfg = Config::parse("").unwrap();
    let (q, rx) = EventQueue::bounded();
    let agg = Aggregator::new(&cfg.statsd, Arc::new(Telemetry::new()), q);
    let (mut s, mut c) = (Scratch::default(), LocalCounts::default());
    agg.ingest_packet(
        b"_e{6,4}:deploy|v1.2|#deploy,web\n_sc|db|0\n_e{99,1}:x|y",
        false,
        &mut s,
        &mut c,
    );
    assert_eq!(c.events, 1);
    assert_eq!(c.service_checks, 1);
    assert_eq!(c.bad[BadReason::BadEvent.index()], 1);
    let ev = rx.try_recv().unwrap();
    assert_eq!(ev.what, "deploy");
    assert_eq!(ev.data, "v1.2");
    assert_eq!(ev.tags, vec!["deploy", "web"]);
}

#[test]
fn tags_join_the_key_and_sanitizing_can_be_off() {
    let mut fx = Fixture::new("");
    fx.send("api.req:1|c|#env:prod,region:eu\nmy key/x@y:1|c");
    let c = counters(&fx.flush());
    assert_eq!(c["api.req;env=prod;region=eu"], 1.0);
    assert_eq!(c["my_key-xy"], 1.0);
    let mut fx = Fixture::new("[statsd]\nkey_name_sanitize = false\n");
    fx.send("my key/x@y:1|c");
    assert_eq!(counters(&fx.flush())["my key/x@y"], 1.0);
}

#[test]
fn admin_views_and_folder_deletes() {
    let mut fx = Fixture::new("");
    fx.send("api.hits:5|c\napi.req:1|c\nother:1|c\nt:3|ms\nt:1|ms\ng:7|g");
    let v = fx.agg.view(MetricType::Counter);
    assert!(v
        .iter()
        .any(|(k, v)| &**k == "api.hits" && *v == View::Counter(5.0)));
    assert!(v.iter().any(|(k, _)| &**k == "statsd.metrics_received"));
    let t = fx.agg.view(MetricType::Timer);
    assert_eq!(
        t,
        vec![(Arc::from("t"), View::Timer(vec![3.0, 1.0]))],
        "arrival order"
    );
    let mut deleted = fx.agg.delete(MetricType::Counter, "api.*");
    deleted.sort();
    assert_eq!(deleted, vec!["api.hits", "api.req"]);
    assert!(fx.agg.delete(MetricType::Counter, "nope").is_empty());
    assert_eq!(fx.agg.delete(MetricType::Gauge, "g"), vec!["g"]);
    assert_eq!(fx.agg.live_keys(), 2);
}

#[test]
fn restored_gauges_do_not_override_new_values() {
    let mut fx = Fixture::new("");
    fx.send("live:1|g");
    let n = fx
        .agg
        .restore_gauges(&[("live".into(), 9.0), ("old".into(), 4.0)]);
    assert_eq!(n, 1);
    let g = gauges(&fx.flush());
    assert_eq!(g["live"], 1.0);
    assert_eq!(g["old"], 4.0);
    let mut saved = fx.agg.gauges();
    saved.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        saved,
        vec![("live".to_string(), 1.0), ("old".to_string(), 4.0)]
    );
}

/// No increment is lost or counted twice across flush boundaries while
/// several threads ingest and another flushes as fast as it can.
#[test]
fn flush_boundaries_neither_lose_nor_double_count() {
    let cfg = Config::parse("").unwrap();
    let (q, _rx) = EventQueue::bounded();
    let agg = Arc::new(Aggregator::new(&cfg.statsd, Arc::new(Telemetry::new()), q));
    const THREADS: usize = 4;
    const PACKETS: usize = 2_000;
    // 20 keys, each line +1 or +3 (@0.5 is exactly x2 in binary floating point)
    let packet: String = (0..20)
        .map(|k| {
            if k % 2 == 0 {
                format!("k{k}:1|c\n")
            } else {
                format!("k{k}:1.5|c|@0.5\n")
            }
        })
        .collect();
    let per_packet: f64 = (0..20).map(|k| if k % 2 == 0 { 1.0 } else { 3.0 }).sum();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flusher = {
        let (agg, stop) = (agg.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut total = 0.0;
            let mut flushes = 0;
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                let f = agg.flush(TEN_S);
                total += f
                    .counters
                    .iter()
                    .filter(|(k, _)| k.starts_with('k'))
                    .map(|(_, v)| v)
                    .sum::<f64>();
                flushes += 1;
            }
            (total, flushes)
        })
    };
    let senders: Vec<_> = (0..THREADS)
        .map(|_| {
            let (agg, packet) = (agg.clone(), packet.clone());
            std::thread::spawn(move || {
                let (mut s, mut c) = (Scratch::default(), LocalCounts::default());
                for _ in 0..PACKETS {
                    agg.ingest_packet(packet.as_bytes(), false, &mut s, &mut c);
                }
                agg.telemetry().publish(&mut c);
            })
        })
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Release);
    let (mut total, flushes) = flusher.join().unwrap();
    let last = agg.flush(TEN_S);
    total += last
        .counters
        .iter()
        .filter(|(k, _)| k.starts_with('k'))
        .map(|(_, v)| v)
        .sum::<f64>();
    assert!(
        flushes > 1,
        "the flusher ran concurrently ({flushes} flushes)"
    );
    assert_eq!(total, per_packet * (THREADS * PACKETS) as f64);
}
