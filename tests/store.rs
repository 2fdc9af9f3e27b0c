//! The store end to end: statsd flushes and carbon plaintext (TCP and UDP)
//! land in the store; points survive `kill -9`; a data_dir that cannot be
//! used is one clear error at start-up.

mod common;

use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

use common::{poll_until, run_bin, Daemon, Options};

fn now() -> i64 {
    common::unix_now()
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

/// The admin port's leaves under a glob.
fn leaves(admin: &mut common::Admin, glob: &str) -> Vec<String> {
    admin
        .cmd(&format!("find {glob}"), "END\n")
        .lines()
        .filter_map(|l| l.strip_suffix(" leaf").map(str::to_string))
        .collect()
}

/// Carbon writers create series over TCP while the daemon is killed with
/// SIGKILL at random moments (three rounds). A carbon client cannot know
/// which of its points the daemon logged, so the test takes as
/// acknowledged what the admin port showed just before the kill: a point
/// is applied to memory only after its batch's log write returned. Every
/// such point must be back after the restart, and every point present
/// must be in the series it was sent to (the value encodes the series).
#[test]
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "the values read back are the whole numbers series × 64 + writer this test sent, below 2^53"
)]
fn series_created_while_killed_at_random_keep_their_points_in_their_series() {
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let o = Options::new("1s");
    let t0 = now() - now().rem_euclid(10) - 600;
    let mut rng = fastrand::Rng::with_seed(now().cast_unsigned());
    let mut seen: Vec<(String, i64, f64)> = Vec::new();
    let mut d = Daemon::start(dir.path(), &o);
    for round in 0..3u64 {
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..4u64)
            .map(|w| {
                let (addr, stop) = (d.carbon_tcp, stop.clone());
                std::thread::spawn(move || {
                    let Ok(mut c) = TcpStream::connect(addr) else {
                        return;
                    };
                    let mut k = 0u64;
                    while !stop.load(Relaxed) && k < 8_000 {
                        // Writers share names, each new name met by all.
                        let j = (k + w * 7) % 1000;
                        let series = round * 10_000 + j;
                        let line = format!(
                            "kill.r{round}.s{j} {} {}\n",
                            series * 64 + w,
                            t0 + i64::try_from(w).unwrap() * 10
                        );
                        if c.write_all(line.as_bytes()).is_err() {
                            return;
                        }
                        k += 1;
                        if k.is_multiple_of(50) {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(rng.u64(100..800)));
        let mut admin = d.admin();
        for name in leaves(&mut admin, &format!("kill.r{round}.*")) {
            for (t, v) in admin.points(&name, t0 - 10, t0 + 40) {
                seen.push((name.clone(), t, v));
            }
        }
        d.kill_hard();
        stop.store(true, Relaxed);
        for h in writers {
            h.join().unwrap();
        }
        d = Daemon::start_with_data_dir(dir.path(), &data, &o);
        let mut admin = d.admin();
        let mut lost = Vec::new();
        for (name, t, v) in &seen {
            if admin.points(name, t0 - 10, t0 + 40).get(t) != Some(v) {
                lost.push((name.clone(), *t, *v));
            }
        }
        assert!(
            lost.is_empty(),
            "round {round}: {} of {} points seen before the kill are gone, e.g. {:?}; log:\n{}",
            lost.len(),
            seen.len(),
            &lost[..lost.len().min(5)],
            d.log()
        );
        for r in 0..=round {
            for name in leaves(&mut admin, &format!("kill.r{r}.*")) {
                let j: u64 = name.rsplit_once(".s").unwrap().1.parse().unwrap();
                let series = r * 10_000 + j;
                for v in admin.points(&name, t0 - 10, t0 + 40).values() {
                    assert_eq!(
                        *v as u64 / 64,
                        series,
                        "{name} holds a point sent to another series"
                    );
                }
            }
        }
    }
    assert!(!seen.is_empty(), "no point was ever seen before a kill");
    d.stop();
}

#[test]
fn a_carbon_flood_of_new_series_stops_at_max_series() {
    let dir = tempfile::tempdir().unwrap();
    let o = Options::new("1s").storage("[storage]\nmax_series = 3\n");
    let mut d = Daemon::start(dir.path(), &o);
    let t = now() - 60;
    let mut text = String::new();
    for i in 0..10 {
        text.push_str(&format!("flood.s{i} {i} {t}\n"));
    }
    let mut c = TcpStream::connect(d.carbon_tcp).unwrap();
    c.write_all(text.as_bytes()).unwrap();
    drop(c);
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(format!("flood.udp 1 {t}\n").as_bytes(), d.carbon_udp)
        .unwrap();
    let logged = poll_until(Duration::from_secs(20), || {
        d.log().contains("new series refused").then_some(())
    });
    assert!(logged.is_some(), "log:\n{}", d.log());
    let mut admin = d.admin();
    let got = poll_until(Duration::from_secs(10), || {
        let n = leaves(&mut admin, "flood.*").len();
        (n == 3).then_some(n)
    });
    assert_eq!(got, Some(3), "{:?}", leaves(&mut admin, "flood.*"));
    // The first three series are kept and take points; the daemon is fine.
    // (A name is in the index a moment before its point is: the write
    // names its series, logs, then applies; so the point is waited for.)
    let p = poll_until(Duration::from_secs(10), || {
        let p: Vec<f64> = admin
            .points("flood.s0", t - 10, t + 10)
            .into_values()
            .collect();
        (!p.is_empty()).then_some(p)
    });
    assert_eq!(p, Some(vec![0.0]));
    assert!(d.is_running());
    let refused = poll_until(Duration::from_secs(10), || {
        let n = admin.store()["points_refused"];
        (n == 8).then_some(n)
    });
    assert_eq!(refused, Some(8), "{:?}", admin.store());
    let log = d.log();
    assert!(log.contains("at_max_series"), "{log}");
    d.stop();
}
