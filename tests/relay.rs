//! `rollupd relay` end to end: two real aggregators (the daemon) on loopback
//! ports and a relay in front of them. Every counter reaches the aggregator
//! that owns its name on the ring, whole; when one aggregator dies the
//! relay sees it through `health`, sends its names to the other, and counts
//! the lines it failed over.

mod common;

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::time::Duration;

use common::relay::{start_relay, stop_relay};
use common::{wait_until, Daemon, Options};
use rollupd::relay::ring::Ring;

fn send_counters(relay: std::net::SocketAddr, names: &[String]) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    for chunk in names.chunks(20) {
        let body: Vec<String> = chunk.iter().map(|n| format!("{n}:1|c")).collect();
        sock.send_to(body.join("\n").as_bytes(), relay).unwrap();
        // Loopback drops nothing at this pace; a burst could fill the
        // relay's socket buffer on a loaded machine.
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn counters(d: &Daemon, prefix: &str) -> BTreeMap<String, f64> {
    d.admin()
        .numbers("counters")
        .into_iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .collect()
}

/// Two daemons, "a" and "b", flushing every minute (so the counters the
/// test reads are whole), each in its own directory under `dir`.
fn two_aggregators(dir: &std::path::Path) -> (Daemon, Daemon) {
    let opts = Options::new("60s");
    let start = |name: &str| {
        std::fs::create_dir(dir.join(name)).unwrap();
        Daemon::start(&dir.join(name), &opts)
    };
    (start("a"), start("b"))
}

/// Which of `a` (member "a") and `b` holds name `n` by the ring: its
/// owner's index, then the owner's side and the other's.
fn by_owner<'t, T>(ring: &Ring, n: &str, a: &'t T, b: &'t T) -> (usize, &'t T, &'t T) {
    let owner = ring.owner(n.as_bytes(), |_| true).unwrap();
    if owner == 0 {
        (owner, a, b)
    } else {
        (owner, b, a)
    }
}

#[test]
fn each_name_meets_its_owner_and_fails_over_when_it_dies() {
    let dir = tempfile::tempdir().unwrap();
    let (a, mut b) = two_aggregators(dir.path());
    let (mut relay, listeners) = start_relay(dir.path(), &a, &b, false);
    let addr = listeners.statsd_udp;

    let ring = Ring::new(&["a", "b"], &[1, 1]);
    let names: Vec<String> = (0..200).map(|i| format!("relay.t.{i}")).collect();
    send_counters(addr, &names);
    send_counters(addr, &names);
    let (at_a, at_b) = wait_until(Duration::from_secs(10), "every counter arrives", || {
        let (x, y) = (counters(&a, "relay.t."), counters(&b, "relay.t."));
        let all = x.values().chain(y.values()).sum::<f64>();
        (all == 400.0).then_some((x, y))
    });
    for n in &names {
        let (owner, here, there) = by_owner(&ring, n, &at_a, &at_b);
        // Both samples of a name met in its owner.
        assert_eq!(here.get(n), Some(&2.0), "{n} owned by {owner}");
        assert!(!there.contains_key(n), "{n} also reached the other");
    }
    assert!(!at_a.is_empty() && !at_b.is_empty(), "{at_a:?} {at_b:?}");
    // The relay's own counts reach their owners as statsd counters, like
    // any line: every line it read, and each member's share.
    wait_until(Duration::from_secs(10), "the relay's own counts", || {
        let mut own = counters(&a, "relayself.");
        own.extend(counters(&b, "relayself."));
        let got = |k: &str| own.get(k).copied().unwrap_or(0.0);
        let shares = got("relayself.member.a.lines") + got("relayself.member.b.lines");
        (got("relayself.lines") == 400.0 && shares == 400.0).then_some(())
    });

    // b dies; the relay hears it through `health` and sends b's names to a.
    b.kill_hard();
    wait_until(Duration::from_secs(10), "the relay sees b down", || {
        let text = std::fs::read_to_string(&relay.log).unwrap_or_default();
        text.lines()
            .any(|l| l.contains("member is down") && l.contains("member=b"))
            .then_some(())
    });
    let later: Vec<String> = (0..100).map(|i| format!("relay.u.{i}")).collect();
    send_counters(addr, &later);
    wait_until(Duration::from_secs(10), "a has every later counter", || {
        let x = counters(&a, "relay.u.");
        (x.len() == later.len() && x.values().all(|&v| v == 1.0)).then_some(())
    });
    let b_owned = later
        .iter()
        .filter(|n| ring.owner(n.as_bytes(), |_| true) == Some(1))
        .count();
    assert!(b_owned > 0);

    // On SIGTERM the relay logs its counts.
    let text = stop_relay(&mut relay);
    assert!(
        text.contains(&format!("failed_over={b_owned} ")),
        "{b_owned} lines failed over: {text}"
    );
    assert!(text.contains("lines=500 "), "{text}");
}

#[test]
fn tcp_lines_reach_their_owner_and_too_long_ones_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_aggregators(dir.path());
    let (mut relay, listeners) = start_relay(dir.path(), &a, &b, true);
    let (statsd_tcp, carbon) = listeners.tcp.unwrap();
    let now = common::unix_now() / 10 * 10;
    let names: Vec<String> = (0..100).map(|i| format!("relay.c.m{i}")).collect();
    let mut text = String::new();
    for (i, n) in names.iter().enumerate() {
        text.push_str(&format!("{n} {i} {now}\n"));
        if i == 50 {
            // One line past the relay's limit, dropped whole.
            text.push_str(&format!("relay.c.long {} {now}\n", "9".repeat(5000)));
        }
    }
    let mut s = std::net::TcpStream::connect(carbon).unwrap();
    std::io::Write::write_all(&mut s, text.as_bytes()).unwrap();
    drop(s);
    // statsd over TCP: newline-ended lines, two samples of each counter
    // (one line each, and one line with both), and one line too long.
    let counters_tcp: Vec<String> = (0..50).map(|i| format!("relay.s.m{i}")).collect();
    let mut text = String::new();
    for n in &counters_tcp {
        text.push_str(&format!("{n}:1|c\n"));
    }
    text.push_str(&format!("relay.s.long:{}|c\n", "1".repeat(5000)));
    for n in &counters_tcp {
        text.push_str(&format!("{n}:2|c\r\n"));
    }
    let mut s = std::net::TcpStream::connect(statsd_tcp).unwrap();
    std::io::Write::write_all(&mut s, text.as_bytes()).unwrap();
    drop(s);
    let find = |d: &Daemon| -> Vec<String> {
        let (status, body) =
            common::http_get(&format!("http://{}/metrics/find?query=relay.c.*", d.http));
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|n| n["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (at_a, at_b) = wait_until(
        Duration::from_secs(10),
        "every carbon line is stored",
        || {
            let (x, y) = (find(&a), find(&b));
            (x.len() + y.len() >= names.len()).then_some((x, y))
        },
    );
    let ring = Ring::new(&["a", "b"], &[1, 1]);
    for n in &names {
        let (owner, here, there) = by_owner(&ring, n, &at_a, &at_b);
        assert!(here.contains(n), "{n} not stored by its owner {owner}");
        assert!(!there.contains(n), "{n} stored by both");
    }
    assert!(!at_a.iter().chain(&at_b).any(|n| n.ends_with("long")));
    let (sa, sb) = wait_until(
        Duration::from_secs(10),
        "every statsd TCP counter arrives",
        || {
            let (x, y) = (counters(&a, "relay.s."), counters(&b, "relay.s."));
            let all = x.values().chain(y.values()).sum::<f64>();
            (all >= 150.0).then_some((x, y))
        },
    );
    for n in &counters_tcp {
        let (owner, here, there) = by_owner(&ring, n, &sa, &sb);
        assert_eq!(here.get(n), Some(&3.0), "{n} owned by {owner}");
        assert!(!there.contains_key(n), "{n} also reached the other");
    }
    assert!(!sa.keys().chain(sb.keys()).any(|n| n.ends_with("long")));
    let log = stop_relay(&mut relay);
    assert!(log.contains("carbon_lines=100 "), "{log}");
    assert!(log.contains("tcp_lines=100 "), "{log}");
    assert!(log.contains("too_long=2 "), "{log}");
    assert!(log.contains("carbon_undelivered=0"), "{log}");
}
