//! `rollupd clickhouse-schema` against real ClickHouse: two servers of
//! Debian's `clickhouse-server` (installed by `./dev setup`) on loopback
//! ports, each a shard of a cluster, with the rollup sections the command
//! prints in their `config.d` and its SQL run on both (twice: it is
//! idempotent). Points written through the `Distributed` tables land on
//! both shards, and after a final merge each series is thinned with the
//! function and precision the embedded store rolls it up with.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{run_bin, unix_now, wait_until, Daemon, Options};
use rollupd::clickhouse::schema::table_of;
use rollupd::config::StorageConfig;
use rollupd::store::schema::Rules;

const CLUSTER: &str = "rollupd_test";
const DB: &str = "rollupd";

fn server_binary() -> PathBuf {
    let p = std::env::var_os("ROLLUPD_CLICKHOUSE_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/clickhouse-server"));
    assert!(
        p.exists(),
        "{} is missing: ./dev setup installs Debian's clickhouse-server",
        p.display()
    );
    p
}

/// One server; killed when dropped.
struct Server {
    child: Child,
    http: u16,
    dir: PathBuf,
    /// How it was started, to start it again.
    ports: (u16, u16, [u16; 2]),
    rollup_xml: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let p = l.local_addr().unwrap().port();
    (l, p)
}

impl Server {
    fn start(dir: &Path, http: u16, tcp: u16, shards: [u16; 2], rollup_xml: &str) -> Server {
        for d in ["data", "tmp", "log", "config.d"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        let shard = |port: u16| {
            format!("<shard><replica><host>127.0.0.1</host><port>{port}</port></replica></shard>")
        };
        let d = dir.display();
        let config = format!(
            "<yandex>
  <logger><level>warning</level><log>{d}/log/server.log</log><errorlog>{d}/log/error.log</errorlog></logger>
  <http_port>{http}</http_port>
  <tcp_port>{tcp}</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>{d}/data/</path>
  <tmp_path>{d}/tmp/</tmp_path>
  <users_config>/etc/clickhouse-server/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>67108864</mark_cache_size>
  <max_server_memory_usage>1000000000</max_server_memory_usage>
  <remote_servers><{CLUSTER}>{}{}</{CLUSTER}></remote_servers>
</yandex>
",
            shard(shards[0]),
            shard(shards[1])
        );
        std::fs::write(dir.join("config.xml"), config).unwrap();
        std::fs::write(dir.join("config.d/rollupd.xml"), rollup_xml).unwrap();
        let child = Command::new(server_binary())
            .arg(format!(
                "--config-file={}",
                dir.join("config.xml").display()
            ))
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("log/stderr")).unwrap())
            .spawn()
            .expect("start clickhouse-server");
        let s = Server {
            child,
            http,
            dir: dir.to_path_buf(),
            ports: (http, tcp, shards),
            rollup_xml: rollup_xml.to_string(),
        };
        wait_until(Duration::from_secs(60), "clickhouse-server answers", || {
            s.try_query("SELECT version()").ok()
        });
        s
    }

    /// Stopped as by a crash, then started again on its own data.
    fn restart(self) -> Server {
        let (dir, (http, tcp, shards), xml) =
            (self.dir.clone(), self.ports, self.rollup_xml.clone());
        drop(self);
        Server::start(&dir, http, tcp, shards, &xml)
    }

    fn try_query(&self, sql: &str) -> Result<String, String> {
        let url = format!("http://127.0.0.1:{}/?insert_distributed_sync=1", self.http);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        let mut r = agent.post(&url).send(sql).map_err(|e| e.to_string())?;
        let status = r.status().as_u16();
        let body = r.body_mut().read_to_string().map_err(|e| e.to_string())?;
        if status == 200 {
            Ok(body)
        } else {
            Err(format!("{status}: {body}"))
        }
    }

    fn query(&self, sql: &str) -> String {
        self.try_query(sql).unwrap_or_else(|e| {
            let log = std::fs::read_to_string(self.dir.join("log/error.log")).unwrap_or_default();
            panic!("{sql}\n-> {e}\nserver log:\n{log}")
        })
    }
}

fn stdout_of(args: &[&str]) -> String {
    let out = run_bin(args, Duration::from_secs(30));
    assert!(
        out.status.success(),
        "rollupd {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn date(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap()
        .format("%Y-%m-%d")
        .to_string()
}

#[test]
fn two_shards_thin_each_series_as_the_embedded_store_rolls_it_up() {
    let xml = stdout_of(&["clickhouse-schema", "--xml"]);
    let sql = stdout_of(&["clickhouse-schema", "--database", DB, "--cluster", CLUSTER]);
    let statements: Vec<&str> = sql
        .split(";\n")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    assert!(statements.len() > 5, "{sql}");

    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = two_shards(tmp.path(), &xml);
    println!("clickhouse {}", a.query("SELECT version()").trim());

    for _ in 0..2 {
        for s in [&a, &b] {
            for st in &statements {
                s.query(st);
            }
        }
    }

    // Series of every default method, 7 hours old (past the 10 s archive's
    // 6 hours: thinned to 1 min), and one series 10 minutes old (kept at 10 s).
    let rules = Rules::from_config(&StorageConfig::default()).unwrap();
    let now = unix_now();
    let old = (now - 7 * 3600) / 60 * 60;
    let young = (now - 600) / 60 * 60;
    let mut names = Vec::new();
    for i in 0..16 {
        names.push(format!("stats_counts.shop.orders.{i}"));
        names.push(format!("stats.timers.api{i}.upper"));
        names.push(format!("stats.timers.api{i}.lower"));
        names.push(format!("stats.gauges.queue{i}"));
        names.push(format!("web.latency.{i}"));
    }
    let values = |i: usize, k: usize| ((i * 7 + k * 13) % 17) as f64 * 1.25 + k as f64 / 8.0;
    let mut by_table: std::collections::BTreeMap<String, String> = Default::default();
    let mut want: Vec<(String, String, f64)> = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let assigned = rules.assign(name);
        let table = table_of(&assigned);
        let rows = by_table.entry(table.clone()).or_default();
        let vals: Vec<f64> = (0..6).map(|k| values(i, k)).collect();
        for (k, v) in (0i64..).zip(&vals) {
            let t = old + 10 * k;
            rows.push_str(&format!("{name}\t{v}\t{t}\t{}\t{now}\n", date(t)));
        }
        let rolled = assigned.method.aggregate(&vals, 0.0).unwrap();
        want.push((table, name.clone(), rolled));
    }
    let young_table = table_of(&rules.assign("web.young"));
    for k in 0..6 {
        let t = young + 10 * k;
        by_table
            .entry(young_table.clone())
            .or_default()
            .push_str(&format!("web.young\t{k}\t{t}\t{}\t{now}\n", date(t)));
    }
    assert_eq!(
        by_table.len(),
        5,
        "one table per default method: {by_table:?}"
    );
    for (table, rows) in &by_table {
        a.query(&format!(
            "INSERT INTO {DB}.{table} FORMAT TabSeparated\n{rows}"
        ));
    }
    // Both shards got rows.
    for s in [&a, &b] {
        let n: u64 = s
            .query(&format!("SELECT count() FROM {DB}.{}_local", want[0].0))
            .trim()
            .parse()
            .unwrap();
        assert!(n > 0, "a shard got no rows of {}", want[0].0);
    }
    for table in by_table.keys() {
        for s in [&a, &b] {
            s.query(&format!("OPTIMIZE TABLE {DB}.{table}_local FINAL"));
        }
    }

    for (table, name, rolled) in &want {
        let got = b.query(&format!(
            "SELECT Time, Value FROM {DB}.{table} WHERE Path = '{name}' ORDER BY Time FORMAT TabSeparated"
        ));
        let rows: Vec<(i64, f64)> = got
            .lines()
            .map(|l| {
                let (t, v) = l.split_once('\t').unwrap();
                (t.parse().unwrap(), v.parse().unwrap())
            })
            .collect();
        assert_eq!(
            rows.len(),
            1,
            "{name} in {table}: one 1-minute point, got {got:?}"
        );
        assert_eq!(rows[0].0, old, "{name}: the minute it starts");
        let (g, w) = (rows[0].1, *rolled);
        assert!(
            (g - w).abs() <= 1e-9 * w.abs().max(1.0),
            "{name} in {table}: ClickHouse {g}, embedded {w}"
        );
    }
    let kept = b.query(&format!(
        "SELECT count() FROM {DB}.{young_table} WHERE Path = 'web.young'"
    ));
    assert_eq!(kept.trim(), "6", "points younger than 6 h keep their 10 s");
}

/// Two shards; each table's `Distributed` reads both.
fn two_shards(tmp: &Path, xml: &str) -> (Server, Server) {
    // Hold all four ports until both servers are configured, so they differ.
    let ports: Vec<(TcpListener, u16)> = (0..4).map(|_| free_port()).collect();
    let p: Vec<u16> = ports.iter().map(|x| x.1).collect();
    drop(ports);
    let shards = [p[1], p[3]];
    let a = Server::start(&tmp.join("a"), p[0], p[1], shards, xml);
    let b = Server::start(&tmp.join("b"), p[2], p[3], shards, xml);
    (a, b)
}

/// `[storage.clickhouse]` for a daemon on the two shards: both servers in
/// `urls`, the test cluster, batches every 200 ms, requests of `timeout`.
fn clickhouse_section(a: &Server, b: &Server, timeout: &str) -> String {
    format!(
        "[storage.clickhouse]\nurls = [\"http://127.0.0.1:{}\", \"http://127.0.0.1:{}\"]\n\
         database = \"{DB}\"\ncluster = \"{CLUSTER}\"\nbatch_interval = \"200ms\"\ntimeout = \"{timeout}\"\n",
        a.http, b.http
    )
}

/// Distinct (Path, Time) points of `table` under `prefix`, with the newest
/// version's value (retries may have inserted a row twice); none before
/// the daemon has made the table.
fn points_in(
    s: &Server,
    table: &str,
    prefix: &str,
) -> std::collections::BTreeMap<(String, i64), f64> {
    s.try_query(&format!(
        "SELECT Path, Time, argMax(Value, Timestamp) FROM {DB}.{table} \
         WHERE startsWith(Path, '{prefix}') GROUP BY Path, Time FORMAT TabSeparated"
    ))
    .unwrap_or_default()
    .lines()
    .map(|l| {
        let f: Vec<&str> = l.split('\t').collect();
        (
            (f[0].to_string(), f[1].parse().unwrap()),
            f[2].parse().unwrap(),
        )
    })
    .collect()
}

fn send_carbon(d: &Daemon, lines: &str) {
    let mut c = std::net::TcpStream::connect(d.carbon_tcp).unwrap();
    std::io::Write::write_all(&mut c, lines.as_bytes()).unwrap();
}

#[test]
fn the_daemon_writes_every_point_to_two_shards_and_queues_while_one_is_down() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = two_shards(tmp.path(), &stdout_of(&["clickhouse-schema", "--xml"]));
    let storage = clickhouse_section(&a, &b, "5s");
    std::fs::create_dir(tmp.path().join("d")).unwrap();
    let mut d = Daemon::start(&tmp.path().join("d"), &Options::new("1s").storage(&storage));
    let rules = Rules::from_config(&StorageConfig::default()).unwrap();
    let table = table_of(&rules.assign("ch.web.0"));
    let now = unix_now() / 10 * 10;
    let lines = |round: i64| -> String {
        let mut text = String::new();
        for i in 0..40 {
            for k in 0..3 {
                let t = now - 600 + round * 300 + k * 10;
                text.push_str(&format!(
                    "ch.web.{i} {} {t}\n",
                    f64::from(i) + k as f64 / 4.0 + round as f64
                ));
            }
        }
        text
    };
    send_carbon(&d, &lines(0));
    // statsd: a timer's stats and its histogram.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for v in [10, 20, 30, 40] {
        udp.send_to(format!("chtimer.api:{v}|ms").as_bytes(), d.udp.unwrap())
            .unwrap();
    }
    let got = wait_until(
        Duration::from_secs(30),
        "ClickHouse has the first 120 points",
        || {
            let p = points_in(&a, &table, "ch.web.");
            (p.len() == 120).then_some(p)
        },
    );
    // Every point as the embedded store has it, on both shards together.
    let mut admin = d.admin();
    for i in 0..40 {
        let name = format!("ch.web.{i}");
        let embedded = admin.points(&name, now - 700, now);
        for (t, v) in embedded {
            assert_eq!(got.get(&(name.clone(), t)), Some(&v), "{name} at {t}");
        }
    }
    for s in [&a, &b] {
        let n = s.query(&format!(
            "SELECT count() FROM {DB}.{table}_local WHERE startsWith(Path, 'ch.web.')"
        ));
        assert!(n.trim().parse::<u64>().unwrap() > 0, "a shard got none");
    }
    // The index: findable as graphite-clickhouse finds it (the tree rows).
    let tree = |level: u32| {
        a.query(&format!(
            "SELECT DISTINCT Path FROM {DB}.graphite_index WHERE Level = {level} \
             AND startsWith(Path, 'ch.') ORDER BY Path FORMAT TabSeparated"
        ))
    };
    assert_eq!(tree(20002), "ch.web.\n");
    assert_eq!(tree(20003).lines().count(), 40, "{}", tree(20003));
    let hists = wait_until(
        Duration::from_secs(30),
        "the timer's histogram arrives",
        || {
            let h = a
            .try_query(&format!(
                "SELECT Counts FROM {DB}.rollupd_hists WHERE Path = 'stats.timers.chtimer.api' FORMAT TabSeparated"
            ))
            .unwrap_or_default();
            (!h.trim().is_empty()).then_some(h)
        },
    );
    assert!(hists.contains('1'), "{hists}");
    let upper = wait_until(Duration::from_secs(30), "the timer's upper arrives", || {
        let t = table_of(&rules.assign("stats.timers.chtimer.api.upper"));
        let p = points_in(&a, &t, "stats.timers.chtimer.api.upper");
        p.into_iter()
            .find(|((n, _), _)| n == "stats.timers.chtimer.api.upper")
            .map(|(_, v)| v)
    });
    assert_eq!(upper, 40.0);

    // Shard b dies: inserts fail (they are synchronous), batches wait on disk.
    let b_dir = b.dir.clone();
    let b = {
        let mut b = b;
        let _ = b.child.kill();
        let _ = b.child.wait();
        b
    };
    send_carbon(&d, &lines(1));
    let queue = d.data_dir.join("clickhouse-queue");
    wait_until(Duration::from_secs(30), "a batch waits on disk", || {
        let n = std::fs::read_dir(&queue)
            .ok()?
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "batch"))
            })
            .count();
        (n > 0).then_some(())
    });
    // Back: the queue drains, every point of both rounds is there.
    let b = b.restart();
    assert_eq!(b.dir, b_dir);
    let all = wait_until(
        Duration::from_secs(60),
        "ClickHouse has all 240 points",
        || {
            let p = points_in(&a, &table, "ch.web.");
            (p.len() == 240).then_some(p)
        },
    );
    for i in 0..40 {
        let name = format!("ch.web.{i}");
        for (t, v) in admin.points(&name, now - 700, now) {
            assert_eq!(all.get(&(name.clone(), t)), Some(&v), "{name} at {t}");
        }
    }
    wait_until(Duration::from_secs(10), "the disk queue is empty", || {
        let n = std::fs::read_dir(&queue)
            .ok()?
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "batch"))
            })
            .count();
        (n == 0).then_some(())
    });
    d.stop();
    let log = std::fs::read_to_string(&d.log_path).unwrap();
    assert!(log.contains("the disk queue is drained"), "{log}");
}

/// Percent-encodes a render argument.
fn arg(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn the_clickhouse_engine_answers_as_the_embedded_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = two_shards(tmp.path(), &stdout_of(&["clickhouse-schema", "--xml"]));
    let ch = clickhouse_section(&a, &b, "10s");
    // The embedded engine answers from its own store; it also writes every
    // point to ClickHouse, which the second daemon reads.
    std::fs::create_dir(tmp.path().join("e")).unwrap();
    let embedded = Daemon::start(&tmp.path().join("e"), &Options::new("10s").storage(&ch));
    // Three hours of 10 s points, each method of the built-in rules.
    let end = unix_now() / 60 * 60;
    let start = end - 3 * 3600;
    let names = [
        "eq.web.a.cpu",
        "eq.web.b.cpu",
        "eq.web.c.cpu",
        "eq.web.a.mem",
        "eq.web.b.mem",
        "stats_counts.eq.hits",
        "stats.gauges.eq.queue",
        "stats.timers.eq.api.upper",
        "stats.timers.eq.api.lower",
        "eq.tagged;dc=a;env=prod",
        "eq.tagged;dc=b;env=prod",
        "eq.tagged;dc=a;env=dev",
    ];
    let mut text = String::new();
    let mut total = 0;
    for (i, n) in (0i64..).zip(&names) {
        for k in 0..(end - start) / 10 {
            // Gaps in one series, so both engines meet missing points.
            if i == 1 && k % 7 == 3 {
                continue;
            }
            let v = ((k * 37 + i * 11) % 101) as f64 / 4.0 + i as f64;
            text.push_str(&format!("{n} {v} {}\n", start + k * 10));
            total += 1;
        }
    }
    send_carbon(&embedded, &text);
    let rules = Rules::from_config(&StorageConfig::default()).unwrap();
    wait_until(
        Duration::from_secs(60),
        "ClickHouse has every point",
        || {
            let mut n = 0;
            let mut tables: Vec<String> =
                names.iter().map(|n| table_of(&rules.assign(n))).collect();
            tables.sort();
            tables.dedup();
            for t in &tables {
                n += points_in(&a, t, "")
                    .keys()
                    .filter(|(p, _)| names.contains(&p.as_str()))
                    .count();
            }
            (n == total).then_some(())
        },
    );

    std::fs::create_dir(tmp.path().join("c")).unwrap();
    let on_ch = format!(
        "[storage]\nengine = \"clickhouse\"\n{}",
        ch.trim_start_matches("[storage]\n")
    );
    let clickhouse = Daemon::start(&tmp.path().join("c"), &Options::new("10s").storage(&on_ch));
    let render = |d: &Daemon, target: &str, from: i64, until: i64| -> serde_json::Value {
        let (status, body) = common::http_get(&format!(
            "http://{}/render?target={}&from={from}&until={until}&format=json",
            d.http,
            arg(target)
        ));
        assert_eq!(status, 200, "{target}: {body}");
        serde_json::from_str(&body).unwrap()
    };
    let targets = [
        "eq.web.*.cpu",
        "eq.web.{a,b}.*",
        "sumSeries(eq.web.*.cpu)",
        "averageSeries(eq.web.*.cpu)",
        "summarize(eq.web.b.cpu, '5min', 'sum')",
        "movingAverage(eq.web.a.mem, 6)",
        "aliasByNode(highestMax(eq.web.*.cpu, 2), 2)",
        "asPercent(eq.web.a.cpu, sumSeries(eq.web.*.cpu))",
        "stats_counts.eq.hits",
        "stats.gauges.eq.queue",
        "stats.timers.eq.api.*",
        "nonNegativeDerivative(stats_counts.eq.hits)",
        "seriesByTag('name=eq.tagged', 'env=prod')",
        "sumSeries(seriesByTag('dc=~[ab]'))",
        "eq.tagged;dc=a;env=dev",
    ];
    // -1h reads the 10 s archive; -10h the 1 min one (rolled up by the
    // server or at read, as the embedded store rolls it up at its seal).
    let mut compared = 0;
    for (from, until) in [(end - 3600, end - 600), (end - 10 * 3600, end - 600)] {
        for t in targets {
            let (x, y) = (
                render(&embedded, t, from, until),
                render(&clickhouse, t, from, until),
            );
            assert!(!x.as_array().unwrap().is_empty(), "{t}: no series");
            // Points, not only series (the -10h window is 3 h of data).
            for s in x.as_array().unwrap() {
                let dp = s["datapoints"].as_array().unwrap();
                let known = dp.iter().filter(|p| !p[0].is_null()).count();
                assert!(known >= 10, "{t}: {known} of {} known: {s}", dp.len());
            }
            assert_eq!(
                x, y,
                "{t} from {from} until {until}: embedded, then ClickHouse"
            );
            compared += x.as_array().unwrap().len();
        }
    }
    assert_eq!(compared, 46, "series compared");
    // find answers the same tree.
    for q in ["eq.*", "eq.web.*", "eq.web.*.c*", "stats.timers.eq.api.*"] {
        let get = |d: &Daemon| {
            common::http_get(&format!("http://{}/metrics/find?query={}", d.http, arg(q)))
        };
        let (x, y) = (get(&embedded), get(&clickhouse));
        assert_eq!(x.0, 200, "{}", x.1);
        let (x, y): (serde_json::Value, serde_json::Value) = (
            serde_json::from_str(&x.1).unwrap(),
            serde_json::from_str(&y.1).unwrap(),
        );
        assert_eq!(x, y, "find {q}");
        assert!(!x.as_array().unwrap().is_empty(), "find {q}");
    }
    // The tag listings too.
    for (path, has) in [
        ("/tags", "\"dc\""),
        ("/tags/env", "\"dev\""),
        ("/tags/dc", "\"b\""),
        (
            "/tags/findSeries?expr=env%3Dprod",
            "eq.tagged;dc=b;env=prod",
        ),
    ] {
        let get = |d: &Daemon| common::http_get(&format!("http://{}{path}", d.http));
        let (x, y) = (get(&embedded), get(&clickhouse));
        assert_eq!(x.0, 200, "{path}: {}", x.1);
        assert!(x.1.contains(has), "{path}: {}", x.1);
        assert_eq!(x, y, "{path}");
    }
    // The admin port's `find` and `fetch` read what render reads.
    for cmd in [
        "find eq.web.*".to_string(),
        format!("fetch eq.web.a.cpu {} {}", end - 3600, end - 600),
        format!("fetch eq.web.a.cpu {} {}", end - 10 * 3600, end - 600),
    ] {
        let (x, y) = (
            embedded.admin().cmd(&cmd, "END\n\n"),
            clickhouse.admin().cmd(&cmd, "END\n\n"),
        );
        assert!(x.lines().count() > 3, "{cmd}: {x}");
        assert_eq!(x, y, "{cmd}: embedded, then ClickHouse");
    }
    // A glob ClickHouse cannot serve is a clear 400; a down server a 503.
    let (status, body) = common::http_get(&format!(
        "http://{}/render?target=eq.**&format=json",
        clickhouse.http
    ));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("**"), "{body}");
    drop(a);
    drop(b);
    let (status, body) = common::http_get(&format!(
        "http://{}/render?target=eq.web.*.cpu&format=json",
        clickhouse.http
    ));
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("clickhouse"), "{body}");
}

/// Every point (the sum of every datapoint) of a render, and its series.
fn render_sum(d: &Daemon, target: &str) -> (usize, f64, String) {
    let (status, body) = common::http_get(&format!(
        "http://{}/render?target={}&from=-10min&format=json",
        d.http,
        arg(target)
    ));
    assert_eq!(status, 200, "{target}: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let series = v.as_array().unwrap();
    let sum = series
        .iter()
        .flat_map(|s| s["datapoints"].as_array().unwrap().iter())
        .filter_map(|p| p[0].as_f64())
        .sum();
    (series.len(), sum, body)
}

fn send_udp(to: std::net::SocketAddr, lines: &[String]) {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for chunk in lines.chunks(20) {
        sock.send_to(chunk.join("\n").as_bytes(), to).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The scale-out shape end to end: `rollupd relay` in front of two
/// aggregators that both write and read two ClickHouse shards. Any
/// aggregator answers for every series; a shard stopped and started again
/// loses nothing acknowledged; an aggregator stopped is failed over.
#[test]
fn a_relay_two_aggregators_and_two_shards_answer_as_one_machine() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = two_shards(tmp.path(), &stdout_of(&["clickhouse-schema", "--xml"]));
    let storage = format!(
        "[storage]\nengine = \"clickhouse\"\n{}\n[alerts]\nreload_check = \"1s\"\n",
        clickhouse_section(&a, &b, "5s")
    );
    let start = |name: &str| {
        std::fs::create_dir(tmp.path().join(name)).unwrap();
        Daemon::start(
            &tmp.path().join(name),
            &Options::new("1s")
                .server("api_token = \"tok\"")
                .storage(&storage),
        )
    };
    let (x, mut y) = (start("x"), start("y"));
    let (mut relay, listeners) = common::relay::start_relay(tmp.path(), &x, &y, true);
    let (_, carbon) = listeners.tcp.unwrap();

    // statsd counters (three samples each) and carbon points, all through
    // the relay.
    let counters: Vec<String> = (0..40).map(|i| format!("cl.c.{i}:1|c")).collect();
    for _ in 0..3 {
        send_udp(listeners.statsd_udp, &counters);
    }
    let now = unix_now() / 10 * 10;
    let mut text = String::new();
    for i in 0..40 {
        for k in 0..6 {
            text.push_str(&format!("cl.g.{i} {} {}\n", i + k, now - 120 + k * 10));
        }
    }
    text.push_str(&format!("cl.t;dc=a 1 {now}\ncl.t;dc=b 2 {now}\n"));
    let mut c = std::net::TcpStream::connect(carbon).unwrap();
    std::io::Write::write_all(&mut c, text.as_bytes()).unwrap();
    drop(c);
    // Both aggregators answer for every series, the same.
    for d in [&x, &y] {
        wait_until(Duration::from_secs(30), "every count is readable", || {
            let (n, sum, _) = render_sum(d, "stats_counts.cl.c.*");
            (n == 40 && sum == 120.0).then_some(())
        });
        wait_until(
            Duration::from_secs(30),
            "every carbon point is readable",
            || {
                let (n, sum, _) = render_sum(d, "cl.g.*");
                let want: i64 = (0..40).map(|i| (0..6).map(|k| i + k).sum::<i64>()).sum();
                (n == 40 && sum == want as f64).then_some(())
            },
        );
    }
    // Over one fixed window (two renders at `-10min` a moment apart can
    // straddle a step and differ by a slot).
    let fixed = |d: &Daemon| {
        common::http_get(&format!(
            "http://{}/render?target=cl.g.*&from={}&until={}&format=json",
            d.http,
            now - 600,
            now + 10
        ))
    };
    assert_eq!(fixed(&x), fixed(&y));
    // Each aggregator aggregated its own share of the counters.
    let shares: Vec<u64> = [&x, &y]
        .iter()
        .map(|d| d.admin().totals()["metrics_received"])
        .collect();
    assert!(shares.iter().all(|&n| n > 0), "{shares:?}");
    // Tags and alerting checks answer the same on both.
    let get = |d: &Daemon, path: &str| common::http_get(&format!("http://{}{path}", d.http));
    let tags = get(&x, "/tags/findSeries?expr=dc%3Da");
    assert!(tags.1.contains("cl.t;dc=a"), "{tags:?}");
    assert_eq!(tags, get(&y, "/tags/findSeries?expr=dc%3Da"));
    let check = format!(
        "/check?target={}&reducer=last&window=10min&direction=above&crit=100",
        arg("sumSeries(cl.g.*)")
    );
    let verdict = get(&x, &check);
    assert_eq!(
        verdict.0, 503,
        "sumSeries of the last points is 1,000: critical: {verdict:?}"
    );
    assert_eq!(verdict.0, get(&y, &check).0);
    // An event posted to x is y's too (the events are in ClickHouse), drawn
    // by both, with an id from the clock; deleted through y, it is gone
    // from x.
    let r = ureq::post(&format!("http://{}/events/", x.http))
        .header("Content-Type", "application/json")
        .header("authorization", "Bearer tok")
        .send(
            serde_json::json!({"what": "deploy web 42", "tags": "deploy web", "when": now - 30})
                .to_string(),
        )
        .expect("post an event");
    let posted: serde_json::Value =
        serde_json::from_str(&r.into_body().read_to_string().unwrap()).unwrap();
    let id = posted["id"].as_u64().unwrap();
    assert!(id > 1 << 40, "an id from the clock: {posted}");
    let query = format!(
        "/events/get_data?from={}&until={}&tags=deploy",
        now - 60,
        now
    );
    for d in [&x, &y] {
        let (status, body) = get(d, &query);
        assert_eq!(status, 200, "{body}");
        let got: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(got.as_array().map(Vec::len), Some(1), "{body}");
        assert_eq!(got[0]["id"].as_u64(), Some(id), "{body}");
        assert_eq!(got[0]["what"], "deploy web 42", "{body}");
        let drawn = render_sum(d, "events('deploy')");
        assert_eq!((drawn.0, drawn.1), (1, 1.0), "{drawn:?}");
    }
    let del = ureq::delete(&format!("http://{}/events/{id}", y.http))
        .header("authorization", "Bearer tok")
        .call()
        .expect("delete an event");
    assert_eq!(del.status().as_u16(), 200);
    assert_eq!(get(&x, &query), (200, "[]".to_string()));
    // A dashboard saved through x is served by y (which reads the shared
    // ones again at its reload_check); deleted through y, x drops it.
    let saved = ureq::put(&format!("http://{}/api/dashboards/shared", x.http))
        .header("authorization", "Bearer tok")
        .content_type("application/json")
        .send(r#"{"title": "Shared", "row": [{"panel": [{"title": "p", "targets": ["cl.g.*"]}]}]}"#)
        .expect("save a dashboard");
    assert_eq!(saved.status().as_u16(), 201);
    wait_until(Duration::from_secs(10), "y serves x's dashboard", || {
        let (status, body) = get(&y, "/api/dashboards/shared");
        (status == 200 && body.contains("Shared")).then_some(())
    });
    let deleted = ureq::delete(&format!("http://{}/api/dashboards/shared", y.http))
        .header("authorization", "Bearer tok")
        .call()
        .expect("delete a dashboard");
    assert_eq!(deleted.status().as_u16(), 204);
    wait_until(Duration::from_secs(10), "x drops it", || {
        (get(&x, "/api/dashboards/shared").0 == 404).then_some(())
    });
    // A rule saved through x is y's too, and one of them evaluates it
    // (`alert::peers`): both show its state, and its transition is
    // recorded once, not once per aggregator. Rules are saved until one
    // is y's, to see it move when y dies below.
    let put_rule = |name: &str| {
        let put = ureq::put(&format!("http://{}/api/alerts/rules/{name}", x.http))
            .header("authorization", "Bearer tok")
            .content_type("application/json")
            .send(r#"{"target": "sumSeries(cl.g.*)", "reducer": "last", "window": "10min", "direction": "above", "crit": 100, "interval": "1s"}"#)
            .expect("save a rule");
        assert_eq!(put.status().as_u16(), 201);
    };
    let rule_of = |d: &Daemon, name: &str| -> Option<serde_json::Value> {
        let (status, body) = get(d, &format!("/api/alerts/{name}"));
        (status == 200).then(|| serde_json::from_str::<serde_json::Value>(&body).unwrap())
    };
    let mut y_rule = None;
    for i in 0..20 {
        let name = format!("cl-sum-{i}");
        put_rule(&name);
        let views: Vec<serde_json::Value> = [&x, &y]
            .iter()
            .map(|d| {
                wait_until(
                    Duration::from_secs(20),
                    "the shared rule critical on both",
                    || {
                        // The state is set before its transition is
                        // stored: wait for both.
                        rule_of(d, &name).filter(|v| {
                            v["rule"]["state"] == "critical"
                                && v["transitions"].as_array().is_some_and(|t| !t.is_empty())
                        })
                    },
                )
            })
            .collect();
        assert_eq!(
            views[0]["rule"]["evaluator"], views[1]["rule"]["evaluator"],
            "{views:#?}"
        );
        let here: Vec<bool> = views
            .iter()
            .map(|v| v["rule"]["evaluated_here"].as_bool().unwrap())
            .collect();
        assert_eq!(here.iter().filter(|h| **h).count(), 1, "{views:#?}");
        for v in &views {
            let t = v["transitions"].as_array().unwrap();
            assert_eq!(t.len(), 1, "one transition, recorded once: {v:#}");
            assert_eq!(
                (t[0]["from"].as_str(), t[0]["to"].as_str()),
                (Some("ok"), Some("critical"))
            );
        }
        if here[1] {
            y_rule = Some(name);
            break;
        }
    }
    let y_rule = y_rule.expect("one of 20 rules evaluated by y");
    // Each shows the two members, and the rules split between them.
    let evaluated: Vec<u64> = [&x, &y]
        .iter()
        .map(|d| {
            let (_, text) = get(d, "/metrics");
            assert!(text.contains("rollupd_alert_members 2"), "{text}");
            text.lines()
                .find_map(|l| l.strip_prefix("rollupd_alert_rules_evaluated_here "))
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or_else(|| panic!("{text}"))
        })
        .collect();
    let listed: serde_json::Value = serde_json::from_str(&get(&x, "/api/alerts").1).unwrap();
    let saved = listed["rules"].as_array().map_or(0, Vec::len);
    assert_eq!(
        evaluated.iter().sum::<u64>(),
        saved as u64,
        "{evaluated:?} of {saved}"
    );
    // A silence added through y is x's too.
    let silenced = ureq::post(&format!("http://{}/api/silences", y.http))
        .header("authorization", "Bearer tok")
        .content_type("application/json")
        .send(
            serde_json::json!({
                "matchers": [{"name": "alertname", "value": "cl-sum-0", "isRegex": false}],
                "createdBy": "test",
                "comment": "shared silence",
                "endsAt": unix_now() + 3600,
            })
            .to_string(),
        )
        .expect("add a silence");
    assert_eq!(silenced.status().as_u16(), 200);
    wait_until(Duration::from_secs(10), "x has y's silence", || {
        get(&x, "/api/silences")
            .1
            .contains("shared silence")
            .then_some(())
    });

    // Shard b stops mid-run: the points sent meanwhile wait on disk and
    // are all readable once it is back.
    let b = {
        let mut b = b;
        let _ = b.child.kill();
        let _ = b.child.wait();
        b
    };
    let mut text = String::new();
    for i in 0..40 {
        text.push_str(&format!("cl.h.{i} {i} {now}\n"));
    }
    let mut c = std::net::TcpStream::connect(carbon).unwrap();
    std::io::Write::write_all(&mut c, text.as_bytes()).unwrap();
    drop(c);
    std::thread::sleep(Duration::from_secs(1));
    let _b = b.restart();
    wait_until(
        Duration::from_secs(60),
        "the points sent while a shard was down",
        || {
            let (n, sum, _) = render_sum(&x, "cl.h.*");
            (n == 40 && sum == (0..40).sum::<i64>() as f64).then_some(())
        },
    );

    // Aggregator y dies: the relay fails its names over to x, which counts
    // them all; its counts are read from the shared store. (The rule y
    // evaluates went through error while shard b was down: critical
    // again, its transitions so far are counted first.)
    let before = wait_until(Duration::from_secs(20), "y's rule critical again", || {
        rule_of(&x, &y_rule).filter(|v| v["rule"]["state"] == "critical")
    });
    std::thread::sleep(Duration::from_secs(2));
    let transitions_before = rule_of(&x, &y_rule).unwrap_or(before)["transitions"]
        .as_array()
        .map_or(0, Vec::len);
    y.kill_hard();
    wait_until(Duration::from_secs(10), "the relay sees y down", || {
        let text = std::fs::read_to_string(&relay.log).unwrap_or_default();
        text.lines()
            .any(|l| l.contains("member is down") && l.contains("member=b"))
            .then_some(())
    });
    // y's rules move to x once y's beats stop (three checks), with the
    // states y stored: still critical, with no new transition.
    let taken = wait_until(Duration::from_secs(20), "x evaluates y's rule", || {
        rule_of(&x, &y_rule).filter(|v| v["rule"]["evaluated_here"] == true)
    });
    std::thread::sleep(Duration::from_secs(2));
    let taken = rule_of(&x, &y_rule).unwrap_or(taken);
    assert_eq!(taken["rule"]["state"], "critical", "{taken:#}");
    assert_eq!(
        taken["transitions"].as_array().map(Vec::len),
        Some(transitions_before),
        "{taken:#}"
    );
    let later: Vec<String> = (0..40).map(|i| format!("cl.d.{i}:1|c")).collect();
    send_udp(listeners.statsd_udp, &later);
    wait_until(
        Duration::from_secs(30),
        "every later count is readable",
        || {
            let (n, sum, _) = render_sum(&x, "stats_counts.cl.d.*");
            (n == 40 && sum == 40.0).then_some(())
        },
    );
    let log = common::relay::stop_relay(&mut relay);
    let failed_over: u64 = log
        .split("failed_over=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(failed_over > 0, "{log}");
}

/// A timer statistic's coarse slots on ClickHouse are the statistic of the
/// slot's merged histogram, as on the embedded store: two flushes in one
/// minute, ten samples of 10 ms and then one of 1000 ms, have a median of
/// 10 for that minute, where the table's rollup of the flushes' medians
/// (10 and 1000) would say otherwise.
#[test]
fn timer_percentiles_survive_rollups_on_clickhouse() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = two_shards(tmp.path(), &stdout_of(&["clickhouse-schema", "--xml"]));
    let ch = clickhouse_section(&a, &b, "10s");
    std::fs::create_dir(tmp.path().join("e")).unwrap();
    let embedded = Daemon::start(&tmp.path().join("e"), &Options::new("1s").storage(&ch));
    std::fs::create_dir(tmp.path().join("c")).unwrap();
    let on_ch = format!("[storage]\nengine = \"clickhouse\"\n{ch}");
    let clickhouse = Daemon::start(&tmp.path().join("c"), &Options::new("1s").storage(&on_ch));
    // Both flushes in one minute, in two 10 s slots.
    while unix_now() % 60 > 30 {
        std::thread::sleep(Duration::from_millis(200));
    }
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = embedded.udp.unwrap();
    for _ in 0..10 {
        udp.send_to(b"cht.api:10|ms", to).unwrap();
    }
    std::thread::sleep(Duration::from_secs(11));
    udp.send_to(b"cht.api:1000|ms", to).unwrap();
    let targets = [
        "stats.timers.cht.api.median",
        "stats.timers.cht.api.upper_90",
        "stats.timers.cht.api.mean",
        "timerPercentile(stats.timers.cht.api, 50)",
    ];
    let render = |d: &Daemon, target: &str, from: &str| -> serde_json::Value {
        let (status, body) = common::http_get(&format!(
            "http://{}/render?target={}&from={from}&format=json",
            d.http,
            arg(target)
        ));
        assert_eq!(status, 200, "{target}: {body}");
        serde_json::from_str(&body).unwrap()
    };
    let known = |v: &serde_json::Value| -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["datapoints"].as_array().unwrap().clone())
            .filter_map(|p| p[0].as_f64())
            .collect()
    };
    // -10h reads the 1 min archive: the minute of both flushes is one slot.
    let median = wait_until(
        Duration::from_secs(30),
        "the minute's median on both engines",
        || {
            let (x, y) = (
                render(&embedded, targets[0], "-10h"),
                render(&clickhouse, targets[0], "-10h"),
            );
            let v = known(&x);
            (!v.is_empty() && x == y).then_some(v)
        },
    );
    assert!(
        median.iter().all(|&m| m < 20.0),
        "merged histograms' median: {median:?}"
    );
    for t in targets {
        for from in ["-10h", "-1h"] {
            let x = wait_until(Duration::from_secs(10), "equal answers", || {
                let (x, y) = (render(&embedded, t, from), render(&clickhouse, t, from));
                (x == y).then_some(x)
            });
            assert!(!known(&x).is_empty(), "{t} from {from}: {x}");
        }
    }
}

/// The store's key-value contract on ClickHouse (`clickhouse::kv`), which
/// the events run on with `engine = "clickhouse"`: through the
/// `Distributed` table of two shards, binary keys and values (tabs,
/// newlines, NULs) come back as written, a scan pages past its first 1,000
/// keys in order and stops when asked, puts, deletes and range deletes in
/// one batch apply together, a space is on one shard, another daemon's
/// `ClickHouseKv` reads the same, and servers that are down are an error.
#[test]
fn the_key_value_table_keeps_the_kv_contract_on_two_shards() {
    use rollupd::clickhouse::kv::ClickHouseKv;
    use rollupd::store::config::ClickHouseConfig;
    use rollupd::store::kv::{Batch, Kv, Space};

    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = two_shards(tmp.path(), &stdout_of(&["clickhouse-schema", "--xml"]));
    let cfg = ClickHouseConfig {
        urls: vec![
            format!("http://127.0.0.1:{}", a.http),
            format!("http://127.0.0.1:{}", b.http),
        ],
        database: DB.into(),
        cluster: Some(CLUSTER.into()),
        timeout: Duration::from_secs(5),
        ..ClickHouseConfig::default()
    };
    let kv = ClickHouseKv::new(&cfg).unwrap();
    let key = |i: u32| {
        let mut k = vec![b'k'];
        k.extend_from_slice(&i.to_be_bytes());
        k
    };
    let value = |i: u32, gen: &str| format!("{gen}\t{i}\n\\\0\r").into_bytes();
    let mut batch = Batch::default();
    for i in 0..2500 {
        batch.put(Space::Events, key(i), value(i, "v1"));
    }
    kv.write(batch).unwrap();
    let scan = |kv: &ClickHouseKv, from: &[u8], to: &[u8], stop: usize| {
        let mut seen = Vec::new();
        kv.scan(Space::Events, from, to, &mut |k, v| {
            seen.push((k.to_vec(), v.to_vec()));
            seen.len() < stop
        })
        .unwrap();
        seen
    };
    let all = scan(&kv, &[], &[0xff], usize::MAX);
    let want: Vec<(Vec<u8>, Vec<u8>)> = (0..2500).map(|i| (key(i), value(i, "v1"))).collect();
    let extra: Vec<_> = all.iter().filter(|e| !want.contains(e)).take(5).collect();
    let missing: Vec<_> = want.iter().filter(|e| !all.contains(e)).take(5).collect();
    assert!(
        all == want,
        "{} keys; not written: {extra:?}; missing: {missing:?}",
        all.len()
    );
    assert_eq!(
        scan(&kv, &key(1500), &key(1510), usize::MAX),
        want[1500..1510]
    );
    assert_eq!(
        scan(&kv, &[], &[0xff], 1200).len(),
        1200,
        "a scan stops when asked"
    );
    assert!(scan(&kv, &key(9), &key(9), usize::MAX).is_empty());
    assert_eq!(
        kv.get(Space::Events, &key(7)).unwrap(),
        Some(value(7, "v1"))
    );
    assert_eq!(kv.get(Space::Events, &key(9999)).unwrap(), None);
    // Keys ending in NUL bytes (an id that is a multiple of 256 ends so).
    for i in [0, 256, 512] {
        assert_eq!(
            kv.get(Space::Events, &key(i)).unwrap(),
            Some(value(i, "v1"))
        );
    }
    assert_eq!(
        kv.get(Space::Dashboards, &key(7)).unwrap(),
        None,
        "spaces apart"
    );

    // One batch: an overwrite, a delete, a range delete, a put after a delete.
    let mut batch = Batch::default();
    batch.put(Space::Events, key(5), value(5, "v2"));
    batch.delete(Space::Events, key(6));
    batch.delete_range(Space::Events, key(100), key(1100));
    batch.delete(Space::Events, key(2000));
    batch.put(Space::Events, key(2000), value(2000, "v2"));
    kv.write(batch).unwrap();
    // Another daemon's view of the same table.
    let other = ClickHouseKv::new(&cfg).unwrap();
    let all = scan(&other, &[], &[0xff], usize::MAX);
    assert_eq!(all.len(), 2500 - 1 - 1000);
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0), "in key order");
    assert_eq!(
        other.get(Space::Events, &key(5)).unwrap(),
        Some(value(5, "v2"))
    );
    assert_eq!(other.get(Space::Events, &key(6)).unwrap(), None);
    assert_eq!(other.get(Space::Events, &key(100)).unwrap(), None);
    assert_eq!(
        other.get(Space::Events, &key(1100)).unwrap(),
        Some(value(1100, "v1"))
    );
    assert_eq!(
        other.get(Space::Events, &key(2000)).unwrap(),
        Some(value(2000, "v2"))
    );
    // The space's rows are on one shard, so a batch is one insert there.
    let rows: Vec<u64> = [&a, &b]
        .iter()
        .map(|s| {
            s.query(&format!(
                "SELECT count() FROM {DB}.rollupd_kv_local WHERE Space = 'events'"
            ))
            .trim()
            .parse()
            .unwrap()
        })
        .collect();
    assert!(
        rows.contains(&0) && rows.iter().sum::<u64>() >= 2500,
        "{rows:?}"
    );

    drop((a, b));
    let down = ClickHouseKv::new(&cfg).unwrap();
    assert!(down.get(Space::Events, &key(5)).is_err());
    assert!(down
        .scan(Space::Events, &[], &[0xff], &mut |_, _| true)
        .is_err());
    let mut batch = Batch::default();
    batch.put(Space::Events, key(1), value(1, "v3"));
    assert!(kv.write(batch).is_err());
}
