//! Throughput of the receive path without sockets, on one core:
//!
//! - `parse`: `protocol::statsd::parse_line` and its samples, over realistic
//!   multi-metric datagrams (lines per second).
//! - `ingest`: `Aggregator::ingest_packet`, which adds key building and the
//!   sharded state updates (lines per second); and `ingest_batch` over 64
//!   datagrams at a time, as the UDP receivers call it.
//! - `flush`: `Aggregator::flush` with 1,000,000 live series, all counters or
//!   900,000 counters plus 100,000 timers holding 10 samples each; and the
//!   Graphite rendering of the all-counter flush, for scale; and the flush
//!   of one 10 s interval of the load test at 2M lines/s (6M timer samples).
//!
//! The traffic has the shape `rollupd-load` sends: 10,000 keys, about 60%
//! counters (15% of them sampled at `@0.1`), 30% timers, 5% gauges, 5% sets,
//! packed into datagrams of at most 1432 bytes.
//!
//! Run with `cargo bench --bench ingest`; add a group name to run one.

use std::hint::black_box;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};

use rollupd::aggregate::{Aggregator, Scratch};
use rollupd::config::Config;
use rollupd::emit::Emitter;
use rollupd::events::{EventQueue, QueuedEvent};
use rollupd::protocol::statsd::{self, Line};
use rollupd::telemetry::{LocalCounts, Telemetry};

const KEYS: usize = 10_000;
const PACKET_SIZE: usize = 1432;
const PACKETS: usize = 512;
const FLUSH_INTERVAL: Duration = Duration::from_secs(10);

/// Datagrams shaped like `rollupd-load`'s, and their total line count.
fn packets(seed: u64) -> (Vec<Vec<u8>>, u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let names: Vec<(char, String)> = (0..KEYS)
        .map(|i| {
            let (kind, suffix) = match i * 100 / KEYS {
                0..=59 => ('c', "requests"),
                60..=89 => ('t', "latency"),
                90..=94 => ('g', "queue_depth"),
                _ => ('s', "unique_users"),
            };
            let app = ["app", "shop", "billing", "search"][rng.usize(..4)];
            let tier = ["web", "api", "worker"][rng.usize(..3)];
            (kind, format!("{app}.{tier}.svc.endpoint{i}.{suffix}"))
        })
        .collect();
    let mut out = Vec::with_capacity(PACKETS);
    let mut lines = 0;
    for _ in 0..PACKETS {
        let mut p = Vec::with_capacity(PACKET_SIZE);
        loop {
            let (kind, name) = &names[rng.usize(..KEYS)];
            let line = match kind {
                'c' if rng.u8(..100) < 15 => format!("{name}:1|c|@0.1"),
                'c' => format!("{name}:{}|c", if rng.bool() { 1 } else { rng.u32(2..500) }),
                't' => format!("{name}:{:.3}|ms", rng.f64() * 80.0 + 0.5),
                'g' => format!("{name}:{}|g", rng.u32(0..100_000)),
                _ => format!("{name}:u{}|s", rng.u32(0..50_000)),
            };
            if p.len() + 1 + line.len() > PACKET_SIZE {
                break;
            }
            if !p.is_empty() {
                p.push(b'\n');
            }
            p.extend_from_slice(line.as_bytes());
            lines += 1;
        }
        out.push(p);
    }
    (out, lines)
}

/// `cargo test --all-targets` runs every benchmark once as a smoke test
/// (criterion's test mode: no `--bench` argument). There the flush
/// benchmarks' setup shrinks a hundredfold so the test suite stays quick.
fn scale(n: usize) -> usize {
    if std::env::args().any(|a| a == "--bench") {
        n
    } else {
        n / 100
    }
}

/// An aggregator built as the daemon builds it, with room for the flush
/// benchmarks' million keys. The event receiver is returned to keep the
/// queue open.
fn aggregator() -> (Aggregator, Receiver<QueuedEvent>) {
    let mut cfg = Config::default();
    cfg.statsd.max_keys = 2_000_000;
    let (queue, rx) = EventQueue::bounded();
    (
        Aggregator::new(&cfg.statsd, Arc::new(Telemetry::new()), queue),
        rx,
    )
}

fn parse(c: &mut Criterion) {
    let (packets, lines) = packets(1);
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(lines));
    g.sample_size(20).measurement_time(Duration::from_secs(4));
    g.bench_function("parse_line+samples", |b| {
        b.iter(|| {
            let mut sum = 0.0;
            for p in &packets {
                for line in statsd::lines(p) {
                    if let Ok(Line::Metric(m)) = statsd::parse_line(black_box(line)) {
                        for s in m.samples().flatten() {
                            sum += s.value;
                        }
                    }
                }
            }
            black_box(sum)
        })
    });
    g.finish();
}

fn ingest(c: &mut Criterion) {
    let (packets, lines) = packets(2);
    let mut g = c.benchmark_group("ingest");
    g.throughput(Throughput::Elements(lines));
    g.sample_size(20).measurement_time(Duration::from_secs(4));
    // One datagram at a time (as TCP and the tests use it), and in batches
    // of 64 datagrams as the UDP receivers hand them over after recvmmsg.
    for batch in [1, 64] {
        let name = if batch == 1 {
            "ingest_packet".to_string()
        } else {
            format!("ingest_batch_{batch}")
        };
        g.bench_function(name, |b| {
            let (agg, _rx) = aggregator();
            let mut scratch = Scratch::default();
            let mut counts = LocalCounts::default();
            let mut since_flush = 0u64;
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    if batch == 1 {
                        for p in &packets {
                            agg.ingest_packet(black_box(p), false, &mut scratch, &mut counts);
                        }
                    } else {
                        for chunk in packets.chunks(batch) {
                            let datagrams = chunk.iter().map(|p| (black_box(&p[..]), false));
                            agg.ingest_batch(datagrams, &mut scratch, &mut counts);
                        }
                    }
                    spent += start.elapsed();
                    agg.telemetry().publish(&mut counts);
                    // The daemon flushes every 10 s; flushing every ~2M
                    // lines (untimed) keeps timer sample lists at a
                    // realistic size.
                    since_flush += lines;
                    if since_flush > 2_000_000 {
                        drop(black_box(agg.flush(FLUSH_INTERVAL)));
                        since_flush = 0;
                    }
                }
                spent
            })
        });
    }
    g.finish();
}

/// Creates `n` counters `c.<i>` (and `timers` timers `t.<i>`).
fn populate(agg: &Aggregator, counters: usize, timers: usize, timer_samples: usize) {
    let mut scratch = Scratch::default();
    let mut counts = LocalCounts::default();
    let mut line = String::new();
    for i in 0..counters {
        line.clear();
        line.push_str(&format!("app.web.svc.endpoint{i}.requests:1|c"));
        agg.ingest_line(line.as_bytes(), &mut scratch, &mut counts);
    }
    for i in 0..timers {
        line.clear();
        line.push_str(&format!("app.web.svc.endpoint{i}.latency"));
        for s in 0..timer_samples {
            line.push_str(&format!(":{}.5|ms", (i * 7 + s * 13) % 500));
        }
        agg.ingest_line(line.as_bytes(), &mut scratch, &mut counts);
    }
    agg.telemetry().publish(&mut counts);
}

fn flush(c: &mut Criterion) {
    let mut g = c.benchmark_group("flush");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .sampling_mode(SamplingMode::Flat);

    // Each aggregator is built inside its benchmark, so a filtered run
    // (`cargo bench --bench ingest parse`) does not pay for a million keys.
    g.bench_function("1M_counters", |b| {
        let (agg, _rx) = aggregator();
        populate(&agg, scale(1_000_000), 0, 0);
        assert_eq!(agg.live_keys(), scale(1_000_000));
        // Counters are kept (zeroed) across flushes, as Etsy keeps them, so
        // every flush sees the same million series.
        b.iter_with_large_drop(|| agg.flush(FLUSH_INTERVAL))
    });

    g.bench_function("1M_counters_render_graphite", |b| {
        let (agg, _rx) = aggregator();
        populate(&agg, scale(1_000_000), 0, 0);
        let emitter = Emitter::new(&Config::default(), agg.telemetry().clone());
        let flushed = agg.flush(FLUSH_INTERVAL);
        b.iter_with_large_drop(|| emitter.render(&flushed))
    });

    g.bench_function("900k_counters_100k_timers_x10", |b| {
        let (agg, _rx) = aggregator();
        populate(&agg, scale(900_000), scale(100_000), 10);
        assert_eq!(agg.live_keys(), scale(1_000_000));
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                // Timers lose their samples at a flush; give them new ones
                // (untimed) so every flush sorts and summarises 1M samples.
                populate(&agg, 0, scale(100_000), 10);
                let start = Instant::now();
                let f = agg.flush(FLUSH_INTERVAL);
                spent += start.elapsed();
                drop(black_box(f));
            }
            spent
        })
    });

    // What a 10 s interval of `rollupd-load --rate 2000000` leaves: 3,000
    // timers with 2,000 samples each (6M samples) next to 7,000 other keys.
    g.bench_function("load_interval_3k_timers_x2000", |b| {
        let (agg, _rx) = aggregator();
        populate(&agg, scale(7_000), scale(3_000), 2_000);
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                populate(&agg, 0, scale(3_000), 2_000);
                let start = Instant::now();
                let f = agg.flush(FLUSH_INTERVAL);
                spent += start.elapsed();
                drop(black_box(f));
            }
            spent
        })
    });
    g.finish();
}

criterion_group!(benches, parse, ingest, flush);
criterion_main!(benches);
