//! The store end to end: statsd flushes and carbon plaintext (TCP and UDP)
//! land in the store; points survive `kill -9`; a data_dir that cannot be
//! used is one clear error at start-up.

mod common;

use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{poll_until, run_bin, Daemon, Options};

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn carbon_points_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let o = Options::new("1s");
    let mut d = Daemon::start(dir.path(), &o);
    let t0 = now() - now().rem_euclid(10) - 3600;
    // 3 series x 300 points at 10 s, over one TCP connection, then some
    // over UDP.
    let mut text = String::new();
    for k in 0..300 {
        for s in 0..3 {
            text.push_str(&format!("crash.s{s} {} {}\n", k * 10 + s, t0 + k * 10));
        }
    }
    let mut c = TcpStream::connect(d.carbon_tcp).unwrap();
    c.write_all(text.as_bytes()).unwrap();
    drop(c);
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(
        format!("crash.udp 42 {t0}\ncrash.udp 43 {}\n", t0 + 10).as_bytes(),
        d.carbon_udp,
    )
    .unwrap();
    let mut admin = d.admin();
    let seen = poll_until(Duration::from_secs(20), || {
        let n: usize = (0..3)
            .map(|s| {
                admin
                    .points(&format!("crash.s{s}"), t0 - 10, t0 + 3000)
                    .len()
            })
            .sum();
        let u = admin.points("crash.udp", t0 - 10, t0 + 20).len();
        (n == 900 && u == 2).then_some(n)
    });
    assert_eq!(seen, Some(900), "points not all visible; log:\n{}", d.log());
    d.kill_hard();

    let mut d = Daemon::start_with_data_dir(dir.path(), &dir.path().join("data"), &o);
    let mut admin = d.admin();
    for s in 0..3 {
        let pts = admin.points(&format!("crash.s{s}"), t0 - 10, t0 + 3000);
        assert_eq!(
            pts.len(),
            300,
            "series {s} after kill -9; log:\n{}",
            d.log()
        );
        for k in 0..300 {
            assert_eq!(pts[&(t0 + k * 10)], (k * 10 + s) as f64);
        }
    }
    let u = admin.points("crash.udp", t0 - 10, t0 + 20);
    assert_eq!(u.values().copied().collect::<Vec<_>>(), vec![42.0, 43.0]);
    let stats = admin.store();
    assert!(stats["replayed_batches"] > 0, "{stats:?}");
    d.stop();
}

#[test]
fn statsd_flushes_are_stored_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    // One-second points for one-second flushes: with a coarser step, later
    // flushes in the same step overwrite a slot (last write wins, as in
    // whisper) and the counts would not add up.
    let o = Options::new("1s")
        .storage("[[storage.retention]]\npattern = \".*\"\nretentions = \"1s:1h,1m:1d\"\n");
    let mut d = Daemon::start(dir.path(), &o);
    let start = now();
    for _ in 0..5 {
        d.send_tcp("deploys.web:1|c\nqueue.depth:7|g\napi.latency:100|ms\napi.latency:300|ms\n");
    }
    let mut admin = d.admin();
    let total = poll_until(Duration::from_secs(20), || {
        let counts = admin.points("stats_counts.deploys.web", start - 20, now() + 20);
        let sum: f64 = counts.values().sum();
        (sum == 5.0).then_some(sum)
    });
    assert_eq!(total, Some(5.0), "log:\n{}", d.log());
    let g = admin.points("stats.gauges.queue.depth", start - 20, now() + 20);
    assert!(g.values().all(|v| *v == 7.0) && !g.is_empty(), "{g:?}");
    let upper = admin.points("stats.timers.api.latency.upper", start - 20, now() + 20);
    assert!(upper.values().any(|v| *v == 300.0), "{upper:?}");
    // A clean stop checkpoints; the restart replays nothing and still has it.
    d.stop();
    let mut d = Daemon::start_with_data_dir(dir.path(), &dir.path().join("data"), &o);
    let mut admin = d.admin();
    let counts = admin.points("stats_counts.deploys.web", start - 20, now() + 20);
    assert_eq!(
        counts.values().sum::<f64>(),
        5.0,
        "{counts:?} {:?}",
        admin.store()
    );
    assert_eq!(admin.store()["replayed_batches"], 0);
    let found = admin.cmd("find stats.timers.api.latency.*", "END\n");
    assert!(
        found.contains("stats.timers.api.latency.upper_90 leaf"),
        "{found}"
    );
    d.stop();
}

#[test]
fn bad_carbon_lines_are_counted_and_good_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::start(dir.path(), &Options::new("200ms"));
    let t = now() - 60;
    let mut c = TcpStream::connect(d.carbon_tcp).unwrap();
    c.write_all(
        format!(
            "good.one 1 {t}\nno_value_or_time\nbad.value abc {t}\ngood.two 2 {t}\nbad.time 1 yesterday\n\
             too.old 1 1000\ntoo.new 1 {}\n",
            now() + 86400
        )
        .as_bytes(),
    )
    .unwrap();
    drop(c);
    let mut admin = d.admin();
    let got = poll_until(Duration::from_secs(20), || {
        let a = admin.points("good.one", t - 10, t + 10);
        let b = admin.points("good.two", t - 10, t + 10);
        (a.len() == 1 && b.len() == 1).then_some(())
    });
    assert!(got.is_some(), "log:\n{}", d.log());
    let stats = admin.store();
    assert_eq!(stats["points_too_old"], 1, "{stats:?}");
    assert_eq!(stats["points_too_new"], 1, "{stats:?}");
    // Bad lines: counted by reason, and logged with their text.
    let bad = poll_until(Duration::from_secs(20), || {
        let text = admin.cmd("stats", "END\n");
        text.contains("carbon_bad_lines: 3").then_some(text)
    });
    assert!(
        bad.is_some(),
        "stats:\n{}\nlog:\n{}",
        admin.cmd("stats", "END\n"),
        d.log()
    );
    assert!(d.log().contains("bad.value abc"), "{}", d.log());
    d.stop();
}

fn start_error(data_dir_toml: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nstatsd_udp = \"\"\nstatsd_tcp = \"\"\nadmin_tcp = \"\"\nhttp = \"\"\ncarbon_tcp = \"\"\ncarbon_udp = \"\"\ndata_dir = {data_dir_toml}\n"
        ),
    )
    .unwrap();
    let out = run_bin(
        &["--config", cfg.to_str().unwrap()],
        Duration::from_secs(30),
    );
    assert!(!out.status.success(), "rollupd started on a bad data_dir");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn unusable_data_dirs_are_one_clear_error() {
    // Not a directory.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let path = file.join("data");
    let err = start_error(&common::toml_str(path.to_str().unwrap()));
    assert!(err.contains(path.to_str().unwrap()), "{err}");
    assert!(err.to_lowercase().contains("not a directory"), "{err}");

    // A damaged store: RocksDB's CURRENT names a manifest that is garbage.
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("store")).unwrap();
    std::fs::write(data.join("store").join("CURRENT"), b"MANIFEST-000099\n").unwrap();
    std::fs::write(
        data.join("store").join("MANIFEST-000099"),
        b"not a manifest at all",
    )
    .unwrap();
    let err = start_error(&common::toml_str(data.to_str().unwrap()));
    assert!(err.contains(data.join("store").to_str().unwrap()), "{err}");
    assert!(err.contains("cannot open the store in"), "{err}");
}

#[test]
fn a_second_daemon_on_the_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::start(dir.path(), &Options::new("1s"));
    let err = start_error(&common::toml_str(d.data_dir.to_str().unwrap()));
    assert!(err.contains("in use by another rollupd"), "{err}");
    d.stop();
}
