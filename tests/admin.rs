//! Etsy's management interface on the admin TCP port.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
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

/// A connection to the admin port that `health` is answered on, retried
/// while a slot freed a moment ago is still being released.
fn served_admin(addr: std::net::SocketAddr) -> common::Admin {
    wait_until(SECS_5, "an admin connection that is served", || {
        let mut s = std::net::TcpStream::connect_timeout(&addr, SECS_5).ok()?;
        s.write_all(b"health\n").ok()?;
        s.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
        let mut got = [0u8; 64];
        let n = s.read(&mut got).ok()?;
        got[..n]
            .starts_with(b"health: ")
            .then(|| common::Admin::from_stream(s))
    })
}

/// The admin port is bounded like the ingest ones: an over-long line gets
/// an error and the connection goes on; connections past
/// `max_admin_connections` are closed unread and counted; the port keeps
/// serving the others and reuses a freed slot.
#[test]
fn admin_port_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::start(
        dir.path(),
        &Options::new("60s")
            .no_udp()
            .server("max_admin_connections = 2"),
    );
    let mut a = served_admin(d.admin);
    a.send(&"x".repeat(200_000));
    assert_eq!(
        a.read_until("\n"),
        "ERROR line longer than max_line_length (65536 bytes)\n"
    );
    assert_eq!(a.cmd("health", "\n"), "health: up\n");
    // Commands pipelined around an over-long line are answered in order.
    a.send(&format!("health\n{}\nhealth", "y".repeat(70_000)));
    assert_eq!(a.read_until("\n"), "health: up\n");
    assert_eq!(
        a.read_until("\n"),
        "ERROR line longer than max_line_length (65536 bytes)\n"
    );
    assert_eq!(a.read_until("\n"), "health: up\n");

    let mut b = served_admin(d.admin);
    let refused_before = a.totals()["admin_connections_refused"];
    let mut c = common::Admin::connect(d.admin);
    assert!(
        c.closed_within(SECS_5),
        "a connection past the cap was not closed"
    );
    assert_eq!(
        a.totals()["admin_connections_refused"],
        refused_before + 1,
        "the refusal is counted"
    );
    assert_eq!(a.cmd("health", "\n"), "health: up\n");
    assert_eq!(b.cmd("health", "\n"), "health: up\n");
    drop(b);
    let mut e = served_admin(d.admin);
    assert_eq!(e.cmd("health", "\n"), "health: up\n");
    assert!(d.is_running());
    drop((a, e));
    d.stop();
}

/// A connection with no command for `admin_idle_timeout` is told so and
/// closed, so idle clients cannot hold the port's slots.
#[test]
fn idle_admin_connections_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::start(
        dir.path(),
        &Options::new("60s")
            .no_udp()
            .server("admin_idle_timeout = \"1s\""),
    );
    let mut a = served_admin(d.admin);
    assert_eq!(a.cmd("health", "\n"), "health: up\n");
    // Bytes that never make a command do not keep it open.
    a.send_raw(b"hea");
    assert!(
        a.closed_within(Duration::from_secs(10)),
        "an idle admin connection was not closed"
    );
    assert_eq!(
        a.try_read_until("\n", Duration::ZERO).as_deref(),
        Some("ERROR idle too long; closing\n")
    );
    assert_eq!(served_admin(d.admin).cmd("health", "\n"), "health: up\n");
    d.stop();
}

/// The API token never leaves the daemon: not in the admin `config` reply,
/// not in its log, not in `check-config`'s complaint about a mistyped
/// token, and not in `rollupd event`'s log at the most verbose level.
#[test]
fn the_api_token_stays_secret() {
    const TOKEN: &str = "adm1n-t0ken-9f8e7d6c";
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::start(
        dir.path(),
        &Options::new("60s")
            .no_udp()
            .server(&format!("api_token = \"{TOKEN}\"")),
    );
    let mut a = d.admin();
    a.send("config");
    a.send("health");
    let config = a.read_until("health: ");
    assert!(!config.contains(TOKEN), "{config}");
    assert!(config.contains("api_token = \"<redacted>\""), "{config}");

    let out = std::process::Command::new(common::BIN)
        .args([
            "event",
            "--what",
            "secret test",
            "--server",
            &format!("http://{}", d.http),
            "--token",
            TOKEN,
        ])
        .env("ROLLUPD_LOG", "trace")
        .env("NO_COLOR", "1")
        .output()
        .expect("run rollupd event");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        !log.contains(TOKEN),
        "rollupd event logged the token:\n{log}"
    );
    // A wire dump (hex, then 16 bytes as text per line) splits it across
    // lines: join the text columns too.
    let columns: String = log
        .lines()
        .map(|l| l.get(l.len().saturating_sub(16)..).unwrap_or(""))
        .collect();
    assert!(
        !columns.contains(TOKEN),
        "rollupd event dumped the token in its wire log:\n{log}"
    );
    drop(a);
    d.stop();
    assert!(!d.log().contains(TOKEN), "{}", d.log());

    for (name, text) in [
        (
            "number.toml",
            "[server]\napi_token = 918273645\n".to_string(),
        ),
        (
            "unterminated.toml",
            format!("[server]\napi_token = \"{TOKEN}\n"),
        ),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, &text).unwrap();
        let out = run_bin(&["check-config", path.to_str().unwrap()], SECS_5);
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{name}: {said}");
        assert!(
            !said.contains(TOKEN) && !said.contains("918273645"),
            "{name}: {said}"
        );
        assert!(said.contains("api_token"), "{name}: {said}");
    }
}
