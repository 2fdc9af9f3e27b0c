//! Etsy's management interface on the admin TCP port.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{run_bin, wait_until, Daemon, Options};

const SECS_5: Duration = Duration::from_secs(5);

#[test]
fn admin_interface() {
    let dir = tempfile::tempdir().unwrap();
    // A long interval: the admin port shows the current interval, and no
    // flush resets it during the test.
    let mut d = Daemon::start(dir.path(), &Options::new("60s").no_udp());
    let mut a = d.admin();

    let help = a.cmd("help", "\n\n");
    for c in [
        "stats",
        "counters",
        "timers",
        "gauges",
        "delcounters",
        "deltimers",
        "delgauges",
        "health",
        "config",
        "quit",
    ] {
        assert!(help.contains(c), "help lacks {c}: {help:?}");
    }

    d.send_tcp(
        "admin.hits:3|c\nadmin.hits:2|c|@0.5\nadmin.lat:320|ms\nadmin.lat:100|ms\n\
         admin.depth:327|g\nadmin.del.a:1|c\nadmin.del.b:1|c\nadmin.keep:1|c\nnocolon\n",
    );
    let counters = wait_until(SECS_5, "the counters", || {
        let c = a.numbers("counters");
        (c.get("statsd.metrics_received") == Some(&9.0)).then_some(c)
    });
    assert_eq!(counters.get("admin.hits"), Some(&7.0), "{counters:?}");
    assert_eq!(counters.get("admin.del.a"), Some(&1.0), "{counters:?}");
    assert_eq!(counters.get("admin.del.b"), Some(&1.0), "{counters:?}");
    assert_eq!(counters.get("admin.keep"), Some(&1.0), "{counters:?}");
    assert_eq!(
        counters.get("statsd.bad_lines_seen"),
        Some(&1.0),
        "{counters:?}"
    );
    assert!(counters.contains_key("statsd.packets_received"));
    let timers = a.timers();
    assert_eq!(
        timers.get("admin.lat"),
        Some(&vec![320.0, 100.0]),
        "{timers:?}"
    );
    let gauges = a.numbers("gauges");
    assert_eq!(gauges.get("admin.depth"), Some(&327.0), "{gauges:?}");

    let stats = a.cmd("stats", "END\n\n");
    let uptime: i64 = stats
        .lines()
        .find_map(|l| l.strip_prefix("uptime: "))
        .unwrap_or_else(|| panic!("no uptime in {stats:?}"))
        .parse()
        .expect("uptime is a number");
    assert!((0..60).contains(&uptime), "uptime {uptime}");
    assert!(stats.contains("messages.bad_lines_seen: 1\n"), "{stats:?}");

    // A folder pattern deletes every counter under it, and only those.
    let reply = a.cmd("delcounters admin.del.*", "END\n\n");
    let deleted: BTreeSet<&str> = reply
        .lines()
        .filter(|l| !l.is_empty() && *l != "END")
        .collect();
    assert_eq!(
        deleted,
        BTreeSet::from(["deleted: admin.del.a", "deleted: admin.del.b"]),
        "{reply:?}"
    );
    let counters = a.numbers("counters");
    assert!(!counters.contains_key("admin.del.a"), "{counters:?}");
    assert!(!counters.contains_key("admin.del.b"), "{counters:?}");
    assert_eq!(counters.get("admin.keep"), Some(&1.0), "{counters:?}");
    assert_eq!(counters.get("admin.hits"), Some(&7.0), "{counters:?}");
    let reply = a.cmd("delcounters admin.nosuch", "END\n\n");
    assert!(reply.contains("metric admin.nosuch not found"), "{reply:?}");

    assert_eq!(a.cmd("health", "\n"), "health: up\n");
    assert_eq!(a.cmd("health down", "\n"), "health: down\n");
    assert_eq!(a.cmd("health", "\n"), "health: down\n");
    assert_eq!(a.cmd("health up", "\n"), "health: up\n");

    // `config` prints the effective configuration as TOML (read up to the
    // reply of the command sent after it); check-config accepts it.
    a.send("config");
    a.send("health");
    let reply = a.read_until("health: ");
    assert_eq!(a.read_until("\n"), "up\n");
    let config = reply.strip_suffix("health: ").unwrap();
    assert!(config.contains("flush_interval = \"60000ms\""), "{config}");
    let data_dir = common::toml_str(d.data_dir.to_str().unwrap());
    assert!(
        config.contains(&format!("data_dir = {data_dir}")),
        "{config}"
    );
    let copy = dir.path().join("effective.toml");
    std::fs::write(&copy, config).unwrap();
    let out = run_bin(&["check-config", copy.to_str().unwrap()], SECS_5);
    assert!(
        out.status.success(),
        "the effective config does not check: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    assert_eq!(a.cmd("bogus", "\n"), "ERROR\n");
    // The connection is still usable after an unknown command.
    assert_eq!(a.cmd("health", "\n"), "health: up\n");
    a.send("quit");
    assert!(
        a.closed_within(Duration::from_secs(2)),
        "quit did not close the connection"
    );
    assert!(d.is_running());
    d.stop();
}
