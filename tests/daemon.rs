//! The daemon's life cycle: shutdown without loss, flush boundaries, gauges
//! across a restart, carbon outages, the data_dir lock and `check-config`.

mod common;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{run_bin, wait_until, Carbon, Daemon, Options};

const SECS_5: Duration = Duration::from_secs(5);

/// SIGTERM loses nothing: lines already written to an open TCP connection
/// and datagrams already sent are drained, flushed one last time and
/// delivered to carbon before the process exits with status 0.
#[test]
fn shutdown_flushes_everything_received() {
    let dir = tempfile::tempdir().unwrap();
    let carbon = Carbon::start();
    // No periodic flush during the test: only the final one can carry data.
    let mut d = Daemon::start(dir.path(), &Options::new("60s").carbon(carbon.addr()));

    let mut conn = d.statsd_tcp();
    conn.write_all("shutdown.tcp:1|c\n".repeat(100).as_bytes())
        .unwrap();
    // The connection is accepted and being served before the rest is sent.
    let mut admin = d.admin();
    wait_until(SECS_5, "the first 100 TCP increments", || {
        (admin.numbers("counters").get("shutdown.tcp") == Some(&100.0)).then_some(())
    });
    // 4,900 more in four writes, and 500 increments over UDP, then SIGTERM
    // at once without closing the connection.
    for _ in 0..4 {
        conn.write_all("shutdown.tcp:1|c\n".repeat(1225).as_bytes())
            .unwrap();
    }
    let udp_packet = "shutdown.udp:1|c\n".repeat(10);
    for _ in 0..50 {
        d.send_udp(udp_packet.as_bytes());
    }
    d.stop();
    drop(conn);

    carbon.wait_all_closed(SECS_5);
    let flushes = carbon.flushes();
    assert!(!flushes.is_empty(), "no flush reached carbon");
    assert_eq!(
        carbon.sum("stats_counts.shutdown.tcp"),
        5000.0,
        "TCP increments in the flushes: {flushes:?}"
    );
    assert_eq!(
        carbon.sum("stats_counts.shutdown.udp"),
        500.0,
        "UDP increments in the flushes: {flushes:?}"
    );
    assert_eq!(carbon.sum("stats_counts.statsd.metrics_received"), 5500.0);
    assert_eq!(carbon.sum("stats_counts.statsd.bad_lines_seen"), 0.0);
}

/// Ingest while short flushes run: every increment lands in exactly one
/// flush, none lost and none counted twice.
#[test]
fn flush_boundaries_lose_and_duplicate_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let carbon = Carbon::start();
    let mut d = Daemon::start(
        dir.path(),
        &Options::new("200ms").no_udp().carbon(carbon.addr()),
    );

    const THREADS: usize = 4;
    const WRITES: usize = 40;
    const GROUPS_PER_WRITE: usize = 125;
    let senders: Vec<_> = (0..THREADS)
        .map(|t| {
            let mut conn = d.statsd_tcp();
            std::thread::spawn(move || {
                // Counter increments of 1 and 2 alternate with timer samples.
                let chunk = format!("boundary.c:1|c\nboundary.t:{t}|ms\nboundary.c:2|c\n")
                    .repeat(GROUPS_PER_WRITE);
                for i in 0..WRITES {
                    // Spread the writes over several flush intervals; the
                    // last is followed at once by SIGTERM.
                    if i > 0 {
                        std::thread::sleep(Duration::from_millis(25));
                    }
                    conn.write_all(chunk.as_bytes()).unwrap();
                }
                conn
            })
        })
        .collect();
    let conns: Vec<_> = senders.into_iter().map(|h| h.join().unwrap()).collect();
    d.stop();
    drop(conns);
    carbon.wait_all_closed(SECS_5);

    let per_write = GROUPS_PER_WRITE as f64;
    let writes = (THREADS * WRITES) as f64;
    let flushes = carbon.flushes();
    let with_data = flushes
        .iter()
        .filter(|f| f.get("stats_counts.boundary.c").unwrap_or(0.0) > 0.0)
        .count();
    assert!(
        with_data >= 2,
        "the increments should span several flushes, got {with_data} of {}",
        flushes.len()
    );
    assert_eq!(
        carbon.sum("stats_counts.boundary.c"),
        writes * per_write * 3.0,
        "counter total over {} flushes",
        flushes.len()
    );
    assert_eq!(
        carbon.sum("stats.timers.boundary.t.count"),
        writes * per_write,
        "timer sample count over {} flushes",
        flushes.len()
    );
    assert_eq!(
        carbon.sum("stats_counts.statsd.metrics_received"),
        writes * per_write * 3.0
    );
}

/// Gauges are written at shutdown and read back at start: the first flush
/// of the next run reports them, and they are live state (a delta applies).
#[test]
fn gauges_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    {
        let carbon = Carbon::start();
        let mut d = Daemon::start_with_data_dir(
            dir.path(),
            &data_dir,
            &Options::new("60s").carbon(carbon.addr()),
        );
        d.send_tcp("restart.a:42|g\nrestart.b:-7.5|g\nrestart.c:10|g\nrestart.c:+5|g\n");
        let mut admin = d.admin();
        wait_until(SECS_5, "the gauges to be set", || {
            let g = admin.numbers("gauges");
            (g.get("restart.a") == Some(&42.0)
                && g.get("restart.b") == Some(&-7.5)
                && g.get("restart.c") == Some(&15.0))
            .then_some(())
        });
        d.stop();
    }

    let carbon = Carbon::start();
    let d = Daemon::start_with_data_dir(
        dir.path(),
        &data_dir,
        &Options::new("300ms").carbon(carbon.addr()),
    );
    let first = carbon.wait_flush(0, SECS_5);
    assert_eq!(first.get("stats.gauges.restart.a"), Some(42.0), "{first:?}");
    assert_eq!(first.get("stats.gauges.restart.b"), Some(-7.5), "{first:?}");
    assert_eq!(first.get("stats.gauges.restart.c"), Some(15.0), "{first:?}");

    d.send_tcp("restart.a:+1|g\n");
    let mut admin = d.admin();
    wait_until(SECS_5, "the delta to apply to the restored gauge", || {
        (admin.numbers("gauges").get("restart.a") == Some(&43.0)).then_some(())
    });
    let n = carbon.flush_count();
    let next = carbon.wait_flush(n, SECS_5);
    assert_eq!(next.get("stats.gauges.restart.a"), Some(43.0), "{next:?}");
}

/// With carbon down, ingest and flushing go on; once carbon listens, the
/// queued flushes arrive and nothing is dropped.
#[test]
fn carbon_down_does_not_block() {
    let dir = tempfile::tempdir().unwrap();
    let carbon_addr = common::unused_tcp_addr();
    let mut d = Daemon::start(dir.path(), &Options::new("1s").no_udp().carbon(carbon_addr));
    let mut admin = d.admin();
    let hits = |admin: &mut common::Admin| admin.numbers("counters").get("down.hits").copied();

    // First batch: ingested, then reset by a flush (so the flusher is not
    // stuck on the unreachable carbon).
    d.send_tcp(&"down.hits:1|c\n".repeat(5));
    wait_until(SECS_5, "a flush after the first batch", || {
        (hits(&mut admin) == Some(0.0)).then_some(())
    });
    // Right after that flush: the second batch shows up in the new interval.
    d.send_tcp(&"down.hits:1|c\n".repeat(3));
    wait_until(Duration::from_millis(900), "the second batch", || {
        (hits(&mut admin) == Some(3.0)).then_some(())
    });
    wait_until(SECS_5, "a flush after the second batch", || {
        (hits(&mut admin) == Some(0.0)).then_some(())
    });
    assert!(d.is_running());

    let carbon = Carbon::start_on(carbon_addr);
    wait_until(
        Duration::from_secs(20),
        "the queued flushes to arrive",
        || (carbon.sum("stats_counts.down.hits") >= 8.0).then_some(()),
    );
    d.stop();
    carbon.wait_all_closed(SECS_5);
    assert_eq!(carbon.sum("stats_counts.down.hits"), 8.0);
    assert_eq!(carbon.sum("stats_counts.statsd.forward_lines_dropped"), 0.0);
    // Each batch was flushed while carbon was down, into a flush of its own:
    // the queued flushes arrive one by one, in order.
    let with_data: Vec<f64> = carbon
        .flushes()
        .iter()
        .filter_map(|f| f.get("stats_counts.down.hits"))
        .filter(|v| *v > 0.0)
        .collect();
    assert!(
        with_data.len() >= 2 && with_data.last() == Some(&3.0),
        "expected the first batch's flush(es), then one flush of 3: {with_data:?}"
    );
}

/// A second daemon on a data_dir in use refuses to start, names the path,
/// and exits non-zero; the first keeps running, and the lock is released
/// when it exits.
#[test]
fn locked_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("shared-data");
    let opts = Options::new("60s");
    let mut first = Daemon::start_with_data_dir(dir.path(), &data_dir, &opts);

    let second = Daemon::try_start(dir.path(), &data_dir, &opts);
    let failure = match second {
        Ok(_) => panic!("a second daemon started on a locked data_dir"),
        Err(f) => f,
    };
    assert!(!failure.status.success(), "{}", failure.status);
    let path = data_dir.display().to_string();
    assert!(
        failure.log.contains(&path) && failure.log.contains("in use"),
        "the error should name {path} and say it is in use:\n{}",
        failure.log
    );
    assert!(first.is_running(), "the first daemon must keep running");
    assert!(first.admin().cmd("health", "\n").contains("health: up"));

    first.stop();
    let mut third = Daemon::start_with_data_dir(dir.path(), &data_dir, &opts);
    third.stop();
}

/// `rollupd check-config FILE`: ok for a good file; for an unknown key or a
/// bad duration, a non-zero exit and a message naming the key and file.
#[test]
fn check_config() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let good = write(
        "good.toml",
        "[server]\nstatsd_tcp = \"\"\ndata_dir = \"/nonexistent/rollupd\"\n\n[statsd]\nflush_interval = \"2000ms\"\npercent_threshold = [90, 99]\n\n[forward.graphite]\naddress = \"127.0.0.1:2003\"\n",
    );
    let out = run_bin(&["check-config", &good], SECS_5);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("ok"), "stdout: {stdout:?}");

    for (name, text, key) in [
        (
            "unknown.toml",
            "[statsd]\nflush_intervall = \"10s\"\n",
            "flush_intervall",
        ),
        (
            "duration.toml",
            "[statsd]\nflush_interval = \"ten seconds\"\n",
            "flush_interval",
        ),
    ] {
        let path = write(name, text);
        let out = run_bin(&["check-config", &path], SECS_5);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}: exit {}", out.status);
        assert!(
            stderr.contains(key) && stderr.contains(&path),
            "{name}: the message should name {key} and {path}: {stderr:?}"
        );
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("ok"),
            "{name}: says ok"
        );
    }
}

/// `rollupd check-config` checks dashboards too: the repo's own pass, a bad
/// file from `[dashboards] paths` fails with its file, panel and field.
#[test]
fn check_config_dashboards() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("d")).unwrap();
    std::fs::write(
        dir.path().join("d/mine.toml"),
        "title = \"x\"\n[[row]]\n[[row.panel]]\ntitle = \"Bad\"\ntargets = [\"a.$h\"]\n",
    )
    .unwrap();
    let cfg = dir.path().join("rollupd.toml");
    let glob = dir.path().join("d/*.toml");
    std::fs::write(
        &cfg,
        format!("[dashboards]\npaths = [{:?}]\n", glob.to_str().unwrap()),
    )
    .unwrap();
    let out = run_bin(&["check-config", cfg.to_str().unwrap()], SECS_5);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exit {}", out.status);
    assert!(stdout.contains("web-service.toml: ok"), "{stdout:?}");
    assert!(
        stderr.contains("mine.toml") && stderr.contains("\"Bad\"") && stderr.contains("targets[0]"),
        "{stderr:?}"
    );
}

/// SIGTERM with HTTP clients that never finish (a request whose body never
/// comes, a request whose headers never end): the partial interval is
/// flushed and forwarded at once, not after them; the gauges are saved; and
/// the process exits once `http_drain_timeout` has passed, dropping them.
#[test]
fn shutdown_does_not_wait_for_stalled_http_clients() {
    const DRAIN: Duration = Duration::from_secs(6);
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let carbon = Carbon::start();
    let opts = Options::new("60s")
        .carbon(carbon.addr())
        .server("http_drain_timeout = \"6s\"");
    let mut d = Daemon::start_with_data_dir(dir.path(), &data_dir, &opts);

    let mut stalled_body = TcpStream::connect_timeout(&d.http, SECS_5).unwrap();
    stalled_body
        .write_all(
            b"POST /render HTTP/1.1\r\nHost: rollupd\r\n\
              Content-Type: application/x-www-form-urlencoded\r\n\
              Content-Length: 100000\r\n\r\ntarget=a",
        )
        .unwrap();
    let mut stalled_headers = TcpStream::connect_timeout(&d.http, SECS_5).unwrap();
    stalled_headers
        .write_all(b"GET /render?target=a HTTP/1.1\r\nHost: rollupd\r\n")
        .unwrap();
    // A complete request on a third connection is answered: the server has
    // accepted the two before it (the accept queue is in order).
    let mut ok = TcpStream::connect_timeout(&d.http, SECS_5).unwrap();
    ok.set_read_timeout(Some(SECS_5)).unwrap();
    ok.write_all(b"GET /health HTTP/1.1\r\nHost: rollupd\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    let _ = ok.read_to_string(&mut reply);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply:?}");

    d.send_udp(b"stall.count:5|c\nstall.gauge:42|g\n");
    let mut admin = d.admin();
    wait_until(SECS_5, "the counter and gauge", || {
        let c = admin.numbers("counters");
        let g = admin.numbers("gauges");
        (c.get("stall.count") == Some(&5.0) && g.get("stall.gauge") == Some(&42.0)).then_some(())
    });
    drop(admin);

    let asked = Instant::now();
    d.sigterm();
    let flush = carbon.wait_flush(0, SECS_5);
    assert_eq!(
        flush.get("stats_counts.stall.count"),
        Some(5.0),
        "{flush:?}"
    );
    assert!(
        d.is_running(),
        "the final flush should not wait for HTTP, and HTTP should get its drain time"
    );
    let status = d.wait_exit(DRAIN + Duration::from_secs(10));
    let took = asked.elapsed();
    assert!(status.success(), "exit {status}; log:\n{}", d.log());
    assert!(took < DRAIN + Duration::from_secs(5), "exit took {took:?}");
    assert!(
        d.log().contains("still open at the shutdown deadline"),
        "{}",
        d.log()
    );
    drop((stalled_body, stalled_headers));

    // The gauge was saved before the drain ended.
    let mut again = Daemon::start_with_data_dir(dir.path(), &data_dir, &Options::new("60s"));
    let mut admin = again.admin();
    assert_eq!(admin.numbers("gauges").get("stall.gauge"), Some(&42.0));
    drop(admin);
    again.stop();
}

/// Clients that never stop sending (a UDP flood, a TCP stream) cannot hold
/// shutdown: the sockets are drained for a bounded time, then the final
/// flush runs and the process exits while they are still sending.
#[test]
fn shutdown_ends_while_clients_keep_sending() {
    let dir = tempfile::tempdir().unwrap();
    let carbon = Carbon::start();
    let mut d = Daemon::start(dir.path(), &Options::new("60s").carbon(carbon.addr()));
    let stop = Arc::new(AtomicBool::new(false));
    let line = "flood.count:1|c\n".repeat(80);
    let udp = {
        let (stop, line, to) = (stop.clone(), line.clone(), d.udp.unwrap());
        std::thread::spawn(move || {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            let until = Instant::now() + Duration::from_secs(40);
            while !stop.load(Relaxed) && Instant::now() < until {
                let _ = s.send_to(line.as_bytes(), to);
            }
        })
    };
    let tcp = {
        let (stop, mut conn) = (stop.clone(), d.statsd_tcp());
        std::thread::spawn(move || {
            let until = Instant::now() + Duration::from_secs(40);
            while !stop.load(Relaxed) && Instant::now() < until {
                if conn.write_all(line.as_bytes()).is_err() {
                    break;
                }
            }
        })
    };
    let mut admin = d.admin();
    wait_until(SECS_5, "the flood to arrive", || {
        (admin.numbers("counters").get("flood.count") > Some(&10_000.0)).then_some(())
    });
    drop(admin);
    let asked = Instant::now();
    d.sigterm();
    let status = d.wait_exit(Duration::from_secs(30));
    let took = asked.elapsed();
    stop.store(true, Relaxed);
    let _ = (udp.join(), tcp.join());
    assert!(status.success(), "exit {status}; log:\n{}", d.log());
    assert!(took < Duration::from_secs(10), "shutdown took {took:?}");
    carbon.wait_all_closed(SECS_5);
    assert!(
        carbon.sum("stats_counts.flood.count") > 10_000.0,
        "{:?}",
        carbon.flushes()
    );
}
