//! What the daemon does with what it receives: malformed lines, the key cap,
//! DogStatsD extensions, and the kernel's UDP drop counter.

mod common;

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::net::UdpSocket;
use std::time::Duration;

use common::{is_internal, wait_until, Carbon, Daemon, Options};

const SECS_5: Duration = Duration::from_secs(5);

/// Every reason rollupd counts bad lines under (`BadReason::as_str`).
const REASONS: [&str; 11] = [
    "no_colon",
    "empty_key",
    "missing_type",
    "unknown_type",
    "bad_value",
    "non_finite",
    "negative_timer",
    "bad_sample_rate",
    "invalid_utf8",
    "truncated",
    "bad_event",
];

/// Names in the flushes that are not the daemon's own.
fn user_names(carbon: &Carbon) -> BTreeSet<String> {
    carbon
        .flushes()
        .iter()
        .flat_map(|f| f.lines.iter().map(|l| l.name.clone()))
        .filter(|n| !is_internal(n))
        .collect()
}

/// Malformed lines of every kind are counted, in total and by reason; the
/// daemon keeps running and a good line after them still counts.
#[test]
fn bad_lines_are_counted_by_reason() {
    let dir = tempfile::tempdir().unwrap();
    let carbon = Carbon::start();
    let mut d = Daemon::start(
        dir.path(),
        &Options::new("500ms")
            .no_tcp()
            .carbon(carbon.addr())
            .server("max_packet_size = 512"),
    );

    let mut packet: Vec<u8> = Vec::new();
    let lines: [&[u8]; 13] = [
        b"nocolon",
        b"nocolon2|c",
        b":1|c",
        b"mt:1",
        b"unk:1|zz",
        b"badnum:abc|c",
        b"nan:NaN|g",
        b"inf:Infinity|c",
        b"neg:-1|ms",
        b"rate:1|c|@x",
        b"bad\xff\xfename:1|c",
        b"_e{5,4}:tit|text",
        b"_sc|check|9",
    ];
    for l in lines {
        packet.extend_from_slice(l);
        packet.push(b'\n');
    }
    d.send_udp(&packet);
    // A datagram longer than max_packet_size: its cut last line is bad, the
    // complete line before it counts.
    let long = format!("trunc.ok:1|c\n{}:1|c", "x".repeat(600));
    d.send_udp(long.as_bytes());
    d.send_udp(b"good.after:1|c");

    wait_until(SECS_5, "the good line in a flush", || {
        (carbon.sum("stats_counts.good.after") >= 1.0).then_some(())
    });
    assert!(d.is_running(), "the daemon died:\n{}", d.log());
    d.stop();
    carbon.wait_all_closed(SECS_5);

    let mut want: BTreeMap<&str, f64> = REASONS.iter().map(|r| (*r, 0.0)).collect();
    for (reason, n) in [
        ("no_colon", 2.0),
        ("empty_key", 1.0),
        ("missing_type", 1.0),
        ("unknown_type", 1.0),
        ("bad_value", 1.0),
        ("non_finite", 2.0),
        ("negative_timer", 1.0),
        ("bad_sample_rate", 1.0),
        ("invalid_utf8", 1.0),
        ("bad_event", 2.0),
        ("truncated", 1.0),
    ] {
        want.insert(reason, n);
    }
    let got: BTreeMap<&str, f64> = REASONS
        .iter()
        .map(|r| {
            (
                *r,
                carbon.sum(&format!("stats_counts.statsd.bad_lines.{r}")),
            )
        })
        .collect();
    assert_eq!(got, want, "bad lines by reason");
    assert_eq!(carbon.sum("stats_counts.statsd.bad_lines_seen"), 14.0);
    assert_eq!(carbon.sum("stats_counts.statsd.metrics_received"), 16.0);
    assert_eq!(carbon.sum("stats_counts.statsd.packets_received"), 3.0);

    // Every flush reports every reason, zero or not.
    for (i, f) in carbon.flushes().iter().enumerate() {
        for r in REASONS {
            let name = format!("stats_counts.statsd.bad_lines.{r}");
            assert!(f.has(&name), "flush {i} lacks {name}");
        }
    }
    // Nothing of the bad lines reached the user namespace.
    let expected: BTreeSet<String> = [
        "stats.good.after",
        "stats_counts.good.after",
        "stats.trunc.ok",
        "stats_counts.trunc.ok",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(user_names(&carbon), expected);
    assert_eq!(carbon.sum("stats_counts.good.after"), 1.0);
    assert_eq!(carbon.sum("stats_counts.trunc.ok"), 1.0);
}

/// `server.max_line_length` bounds TCP lines: a longer line is counted as
/// truncated and skipped, whether it arrives in one read or several; the
/// line after it counts.
#[test]
fn overlong_tcp_line_is_counted_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let carbon = Carbon::start();
    let mut d = Daemon::start(
        dir.path(),
        &Options::new("60s")
            .no_udp()
            .carbon(carbon.addr())
            .server("max_line_length = 64"),
    );
    // One write, one short segment on loopback: the whole line is in one read.
    d.send_tcp(&format!("{}:1|c\ntcp.ok:1|c\n", "y".repeat(100)));
    let mut admin = d.admin();
    wait_until(SECS_5, "the line after the long one", || {
        admin
            .numbers("counters")
            .contains_key("tcp.ok")
            .then_some(())
    });
    d.stop();
    carbon.wait_all_closed(SECS_5);
    assert_eq!(carbon.sum("stats_counts.statsd.bad_lines.truncated"), 1.0);
    assert_eq!(carbon.sum("stats_counts.statsd.bad_lines_seen"), 1.0);
    assert_eq!(carbon.sum("stats_counts.tcp.ok"), 1.0);
    let users = user_names(&carbon);
    assert!(
        !users.iter().any(|n| n.contains("yyyy")),
        "the overlong line was accepted as a metric: {users:?}"
    );
}

/// `max_keys` caps live keys: of fifty new names, ten are kept and forty are
/// dropped and counted; a kept key still counts, a dropped one stays out.
#[test]
fn key_cap_bounds_live_keys() {
    let dir = tempfile::tempdir().unwrap();
    let carbon = Carbon::start();
    let mut d = Daemon::start(
        dir.path(),
        &Options::new("60s")
            .no_udp()
            .carbon(carbon.addr())
            .statsd("max_keys = 10"),
    );
    let lines: String = (0..50).map(|i| format!("cap.k{i:02}:1|c\n")).collect();
    d.send_tcp(&lines);
    let mut admin = d.admin();
    let totals = wait_until(SECS_5, "50 lines ingested", || {
        let t = admin.totals();
        (t.get("metrics_received") == Some(&50)).then_some(t)
    });
    assert_eq!(totals.get("live_keys"), Some(&10), "{totals:?}");
    assert_eq!(totals.get("keys_over_cap"), Some(&40), "{totals:?}");
    let counters = admin.numbers("counters");
    let kept: Vec<String> = counters
        .keys()
        .filter(|k| k.starts_with("cap."))
        .cloned()
        .collect();
    assert_eq!(kept.len(), 10, "{counters:?}");
    let dropped = (0..50)
        .map(|i| format!("cap.k{i:02}"))
        .find(|k| !kept.contains(k))
        .unwrap();
    d.send_tcp(&format!("{}:1|c\n{dropped}:1|c\n", kept[0]));
    wait_until(SECS_5, "52 lines ingested", || {
        (admin.totals().get("metrics_received") == Some(&52)).then_some(())
    });
    let counters = admin.numbers("counters");
    assert_eq!(counters.get(&kept[0]), Some(&2.0), "{counters:?}");
    assert!(!counters.contains_key(&dropped), "{counters:?}");
    d.stop();
    carbon.wait_all_closed(SECS_5);

    let counted: BTreeMap<String, f64> = user_names(&carbon)
        .into_iter()
        .filter_map(|n| {
            let key = n.strip_prefix("stats_counts.")?.to_string();
            let v = carbon.sum(&n);
            Some((key, v))
        })
        .collect();
    let want: BTreeMap<String, f64> = kept
        .iter()
        .enumerate()
        .map(|(i, k)| (k.clone(), if i == 0 { 2.0 } else { 1.0 }))
        .collect();
    assert_eq!(counted, want, "user counters in the flushes");
    assert_eq!(carbon.sum("stats_counts.statsd.keys_over_cap"), 41.0);
}

const DOG_LINES: &str = "dog.req:1|c|#env:prod,region:eu
dog.req:2|c|#env:prod,region:eu
dog.h:5|h
dog.d:7|d|#env:prod
dog.d:9|d|#env:prod
dog.fields:1|c|c:xyz
dog.fields:2|c|T1700000000
dog.fields:4|c|card:low
dog.fields:8|c|#a:b|c:abc:def|T1700000000|card:low
_e{10,9}:web deploy|sha abc12|d:1700000000|h:web1|#deploy,web
_sc|redis.up|0|#env:dev|m:ok
";

/// DogStatsD: tags become Graphite tags `name;k=v` in both namespaces, `h`
/// and `d` are timers, `_e` events go to the event store, `_sc`
/// service checks are counted, and the `c:`, `T` and `card:` fields are
/// tolerated.
#[test]
fn dogstatsd_extensions() {
    let dir = tempfile::tempdir().unwrap();
    let (legacy_dir, new_dir) = (dir.path().join("legacy"), dir.path().join("new"));
    std::fs::create_dir_all(&legacy_dir).unwrap();
    std::fs::create_dir_all(&new_dir).unwrap();
    let carbon_legacy = Carbon::start();
    let carbon_new = Carbon::start();
    let mut legacy = Daemon::start(
        &legacy_dir,
        &Options::new("60s").no_udp().carbon(carbon_legacy.addr()),
    );
    let mut new = Daemon::start(
        &new_dir,
        &Options::new("60s")
            .no_udp()
            .carbon(carbon_new.addr())
            .statsd("legacy_namespace = false"),
    );
    legacy.send_tcp(DOG_LINES);
    new.send_tcp(DOG_LINES);

    // The event is in the event store while the daemon runs.
    for d in [&legacy, &new] {
        let url = format!(
            "http://{}/events/get_data?from=1699999999&until=1700000001",
            d.http
        );
        let events = wait_until(SECS_5, "the event in /events/get_data", || {
            let body = ureq::get(&url)
                .call()
                .ok()?
                .into_body()
                .read_to_string()
                .ok()?;
            let v: serde_json::Value = serde_json::from_str(&body).ok()?;
            (v.as_array()?.len() == 1).then_some(v)
        });
        assert_eq!(events[0]["what"], "web deploy");
        assert_eq!(
            events[0]["tags"],
            serde_json::json!(["deploy", "web", "host:web1"])
        );
        assert_eq!(events[0]["data"], "sha abc12");
        assert_eq!(events[0]["when"], 1_700_000_000);
    }
    for d in [&mut legacy, &mut new] {
        let mut admin = d.admin();
        wait_until(SECS_5, "all lines ingested", || {
            (admin.totals().get("metrics_received") == Some(&11)).then_some(())
        });
        d.stop();
    }
    carbon_legacy.wait_all_closed(SECS_5);
    carbon_new.wait_all_closed(SECS_5);

    let l = &carbon_legacy;
    assert_eq!(l.sum("stats_counts.dog.req;env=prod;region=eu"), 3.0);
    assert_eq!(l.sum("stats.dog.req;env=prod;region=eu"), 3.0 / 60.0);
    assert_eq!(l.sum("stats.timers.dog.h.count"), 1.0);
    assert_eq!(l.sum("stats.timers.dog.h.upper"), 5.0);
    assert_eq!(l.sum("stats.timers.dog.d.count;env=prod"), 2.0);
    assert_eq!(l.sum("stats.timers.dog.d.lower;env=prod"), 7.0);
    assert_eq!(l.sum("stats.timers.dog.d.upper;env=prod"), 9.0);
    assert_eq!(l.sum("stats_counts.dog.fields"), 7.0);
    assert_eq!(l.sum("stats_counts.dog.fields;a=b"), 8.0);
    assert_eq!(l.sum("stats_counts.statsd.events_received"), 1.0);
    assert_eq!(l.sum("stats_counts.statsd.service_checks_received"), 1.0);
    assert_eq!(l.sum("stats_counts.statsd.bad_lines_seen"), 0.0);
    let users = user_names(l);
    for n in &users {
        assert!(
            !n.starts_with("stats_counts.dog.h") && !n.starts_with("stats_counts.dog.d"),
            "h and d must be timers only: {n}"
        );
        assert!(!n.contains("_e{") && !n.contains("_sc"), "{n}");
    }

    let n = &carbon_new;
    assert_eq!(
        n.sum("stats.counters.dog.req.count;env=prod;region=eu"),
        3.0
    );
    assert_eq!(
        n.sum("stats.counters.dog.req.rate;env=prod;region=eu"),
        3.0 / 60.0
    );
    assert_eq!(n.sum("stats.timers.dog.d.upper;env=prod"), 9.0);
    assert_eq!(n.sum("stats.timers.dog.h.count"), 1.0);
    assert_eq!(n.sum("stats.counters.dog.fields.count;a=b"), 8.0);
    // Tags always come last, after the name's own parts.
    for name in user_names(n) {
        if let Some((_, tags)) = name.split_once(';') {
            assert!(!tags.contains('.'), "tags before a name part: {name}");
        }
    }
    assert_eq!(
        n.sum("stats.counters.statsd.service_checks_received.count"),
        1.0
    );
    assert_eq!(n.sum("stats.counters.statsd.events_received.count"), 1.0);
    assert_eq!(n.sum("stats.counters.statsd.bad_lines_seen.count"), 0.0);
}

/// `statsd.udp_kernel_drops` is in every flush, and it accounts exactly for
/// the datagrams the kernel dropped on a socket with a tiny receive buffer:
/// received + dropped = sent.
#[test]
fn udp_kernel_drops_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let carbon = Carbon::start();
    let mut d = Daemon::start(
        dir.path(),
        &Options::new("300ms")
            .no_tcp()
            .carbon(carbon.addr())
            .server("udp_receivers = 1")
            .server("udp_recv_buffer = 1"),
    );
    let target = d.udp.unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let blast = "kd.x:1|c\n".repeat(100);
    let sent = Cell::new(0u64);
    let send = |data: &[u8]| {
        if sock.send_to(data, target).is_ok() {
            sent.set(sent.get() + 1);
        }
    };
    let mut admin = d.admin();
    let drops = |admin: &mut common::Admin| admin.totals()["udp_kernel_drops"];

    // Bursts much faster than one reader parses them overflow the buffer.
    for _round in 0..5 {
        for _ in 0..2000 {
            send(blast.as_bytes());
        }
        // Drops are reported with the next datagram the reader gets.
        send(b"kd.sentinel:1|c");
        let seen = common::poll_until(Duration::from_millis(300), || {
            (drops(&mut admin) > 0).then_some(())
        });
        if seen.is_some() {
            break;
        }
    }
    // A last datagram that arrives carries the final drop count; datagrams
    // can be dropped themselves, so send until the books balance.
    let balanced = common::poll_until(Duration::from_secs(10), || {
        send(b"kd.sentinel:1|c");
        common::poll_until(Duration::from_millis(100), || {
            let t = admin.totals();
            (t["packets_received"] + t["udp_kernel_drops"] == sent.get()).then_some(())
        })
    });
    let totals = admin.totals();
    assert!(
        balanced.is_some(),
        "received + dropped never reached sent = {}: {totals:?}",
        sent.get()
    );
    let dropped = totals["udp_kernel_drops"];
    assert!(
        dropped > 0,
        "no kernel drops provoked with a tiny receive buffer: {totals:?}"
    );
    // A few flushes, then shut down.
    let n = carbon.flush_count();
    carbon.wait_flush(n + 2, SECS_5);
    d.stop();
    carbon.wait_all_closed(SECS_5);

    let flushes = carbon.flushes();
    assert!(flushes.len() >= 3);
    for (i, f) in flushes.iter().enumerate() {
        for name in [
            "stats.statsd.udp_kernel_drops",
            "stats_counts.statsd.udp_kernel_drops",
        ] {
            assert!(f.has(name), "flush {i} lacks {name}: {f:?}");
        }
    }
    assert_eq!(
        carbon.sum("stats_counts.statsd.udp_kernel_drops"),
        dropped as f64
    );
    let received_blasts = carbon.sum("stats_counts.kd.x") / 100.0;
    let received_sentinels = carbon.sum("stats_counts.kd.sentinel");
    assert_eq!(
        received_blasts + received_sentinels + dropped as f64,
        sent.get() as f64,
        "every datagram sent is either counted or reported as dropped"
    );
}
