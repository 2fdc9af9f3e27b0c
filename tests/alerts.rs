//! Alerts end to end: points written over carbon into the real daemon,
//! rules from a rule file and over HTTP, states read back over HTTP,
//! notifications caught by webhook receivers on loopback.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{wait_until, Daemon, Options};
use serde_json::Value;

const SECS_30: Duration = Duration::from_secs(30);

/// A webhook receiver on loopback: records each POST body.
struct Sink {
    addr: SocketAddr,
    bodies: Arc<Mutex<Vec<(Instant, Value)>>>,
}

impl Sink {
    fn start() -> Sink {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let b = bodies.clone();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(c) = conn else { continue };
                let b = b.clone();
                std::thread::spawn(move || serve(c, &b));
            }
        });
        Sink { addr, bodies }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn all(&self) -> Vec<Value> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// The alerts of every payload, flattened, with the payload's status.
    fn alerts(&self) -> Vec<Value> {
        self.all()
            .iter()
            .flat_map(|p| p["alerts"].as_array().cloned().unwrap_or_default())
            .collect()
    }
}

fn serve(c: TcpStream, bodies: &Mutex<Vec<(Instant, Value)>>) {
    c.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let mut r = BufReader::new(c.try_clone().unwrap());
    loop {
        let mut len = 0usize;
        let mut line = String::new();
        // Request line, then headers.
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            line.clear();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        if let Ok(v) = serde_json::from_slice(&body) {
            bodies.lock().unwrap().push((Instant::now(), v));
        }
        let mut w = &c;
        if w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            .is_err()
        {
            return;
        }
    }
}

fn carbon(d: &Daemon, lines: &str) {
    let mut s = TcpStream::connect(d.carbon_tcp).unwrap();
    s.write_all(lines.as_bytes()).unwrap();
}

fn get_json(url: &str) -> Value {
    let (s, body) = common::http_get(url);
    assert_eq!(s, 200, "{url}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn rule_view(d: &Daemon, name: &str) -> Value {
    get_json(&format!("http://{}/api/alerts/{name}", d.http))
}

fn instance_state(d: &Daemon, rule: &str, series: &str) -> Option<String> {
    let v = rule_view(d, rule);
    v["rule"]["instances"]
        .as_array()?
        .iter()
        .find(|i| i["series"] == series)
        .and_then(|i| i["state"].as_str().map(str::to_string))
}

fn history(d: &Daemon, rule: &str) -> Vec<Value> {
    let v = get_json(&format!(
        "http://{}/api/alerts/{rule}/history?from=-1h",
        d.http
    ));
    v["transitions"].as_array().cloned().unwrap_or_default()
}

fn options(dir: &Path, receivers: &str) -> Options {
    Options::new("1s").storage(&format!(
        "[[storage.retention]]\npattern = \"^t\\\\.\"\nretentions = \"1s:3h\"\n\n[alerts]\nrules = [{}]\n{receivers}",
        common::toml_str(&format!("{}/*.toml", dir.join("rules").display()))
    ))
}

fn write_rules(dir: &Path, text: &str) {
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    std::fs::write(dir.join("rules/main.toml"), text).unwrap();
}

/// A value a second for `secs` seconds ending now, one carbon line each.
fn feed(d: &Daemon, name: &str, secs: i64, value: impl Fn(i64) -> f64) {
    let now = common::unix_now();
    let lines: String = (0..secs)
        .map(|i| {
            let t = now - secs + 1 + i;
            format!("{name} {} {t}\n", value(t))
        })
        .collect();
    carbon(d, &lines);
}

#[test]
fn a_threshold_rule_goes_pending_then_critical_and_recovers_only_past_its_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Sink::start();
    write_rules(
        dir.path(),
        r#"
[[rule]]
name = "latency"
target = "t.api.p99"
reducer = "last"
window = "3s"
direction = "above"
crit = 800
crit_recovery = 700
for = "3s"
interval = "1s"
annotations = { summary = "p99 {{ value }} ms on {{ series }}" }
"#,
    );
    let receivers = format!(
        "[[alerts.receivers]]\nname = \"hook\"\nkind = \"webhook\"\nurl = {}\nrepeat_interval = \"1h\"\n",
        common::toml_str(&hook.url())
    );
    let mut d = Daemon::start(dir.path(), &options(dir.path(), &receivers));
    feed(&d, "t.api.p99", 5, |_| 500.0);
    wait_until(SECS_30, "the rule to see the series ok", || {
        (instance_state(&d, "latency", "t.api.p99")? == "ok").then_some(())
    });
    // Above 800: pending first, critical once 3 s have passed.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let value = Arc::new(Mutex::new(850.0));
    let feeder = {
        let (stop, value, addr) = (stop.clone(), value.clone(), d.carbon_tcp);
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let v = *value.lock().unwrap();
                if let Ok(mut s) = TcpStream::connect(addr) {
                    let _ =
                        s.write_all(format!("t.api.p99 {v} {}\n", common::unix_now()).as_bytes());
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        })
    };
    wait_until(SECS_30, "pending", || {
        (instance_state(&d, "latency", "t.api.p99")? == "pending").then_some(())
    });
    wait_until(SECS_30, "critical", || {
        (instance_state(&d, "latency", "t.api.p99")? == "critical").then_some(())
    });
    let h = history(&d, "latency");
    let to_crit = h
        .iter()
        .find(|t| t["to"] == "critical")
        .expect("a transition to critical");
    assert_eq!(to_crit["from"], "pending");
    let reason = to_crit["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("critical: last 850 above 800 for "),
        "{reason}"
    );
    assert_eq!(to_crit["thresholds"], "crit above 800 (recovers below 700)");
    // The webhook got the firing alert, in Alertmanager's shape.
    let fired = wait_until(SECS_30, "the firing webhook", || {
        hook.all().into_iter().find(|p| p["status"] == "firing")
    });
    let a = &fired["alerts"][0];
    assert_eq!(a["labels"]["alertname"], "latency");
    assert_eq!(a["labels"]["severity"], "critical");
    assert_eq!(a["annotations"]["summary"], "p99 850 ms on t.api.p99");
    assert!(a["generatorURL"]
        .as_str()
        .unwrap()
        .contains("/api/alerts/latency"));
    // Between recovery and threshold: held critical, no flapping.
    *value.lock().unwrap() = 750.0;
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        instance_state(&d, "latency", "t.api.p99").as_deref(),
        Some("critical")
    );
    let v = rule_view(&d, "latency");
    let reason = v["rule"]["instances"][0]["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(reason, "held critical: last 750 not below recovery 700");
    // Below the recovery threshold: ok, and a resolved message.
    *value.lock().unwrap() = 650.0;
    wait_until(SECS_30, "recovered", || {
        (instance_state(&d, "latency", "t.api.p99")? == "ok").then_some(())
    });
    wait_until(SECS_30, "the resolved webhook", || {
        hook.all().into_iter().find(|p| p["status"] == "resolved")
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    feeder.join().unwrap();
    // Every transition is an event tagged alert, for graphs.
    let evs = get_json(&format!(
        "http://{}/events/get_data?tags=alert+latency&from=-1h",
        d.http
    ));
    let whats: Vec<&str> = evs
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["what"].as_str().unwrap())
        .collect();
    assert!(
        whats.contains(&"latency t.api.p99: pending → critical"),
        "{whats:?}"
    );
    d.stop();
}

#[test]
fn low_thresholds_no_data_and_disappearing_series() {
    let dir = tempfile::tempdir().unwrap();
    write_rules(
        dir.path(),
        r#"
[[rule]]
name = "checkout-rate"
target = "t.checkout.count"
reducer = "avg"
window = "3s"
direction = "below"
warn = 50
crit = 10
interval = "1s"

[[rule]]
name = "silent"
target = "t.silent.*"
reducer = "last"
window = "2s"
direction = "above"
crit = 100
no_data_after = "2s"
interval = "1s"

[[rule]]
name = "errors"
target = "removeEmptySeries(t.err.*)"
reducer = "max"
window = "2s"
direction = "above"
crit = 5
interval = "1s"
"#,
    );
    let mut d = Daemon::start(dir.path(), &options(dir.path(), ""));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let rate = Arc::new(Mutex::new(100.0));
    let feeder = {
        let (stop, rate, addr) = (stop.clone(), rate.clone(), d.carbon_tcp);
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let now = common::unix_now();
                let r = *rate.lock().unwrap();
                let mut lines = format!("t.checkout.count {r} {now}\n");
                // t.silent.a stops after ~3 s; t.err.b stays, t.err.a goes.
                if n < 12 {
                    lines.push_str(&format!("t.silent.a 1 {now}\nt.err.a 9 {now}\n"));
                }
                lines.push_str(&format!("t.err.b 1 {now}\n"));
                if let Ok(mut s) = TcpStream::connect(addr) {
                    let _ = s.write_all(lines.as_bytes());
                }
                n += 1;
                std::thread::sleep(Duration::from_millis(250));
            }
        })
    };
    wait_until(SECS_30, "checkout ok", || {
        (instance_state(&d, "checkout-rate", "t.checkout.count")? == "ok").then_some(())
    });
    wait_until(SECS_30, "t.err.a critical", || {
        (instance_state(&d, "errors", "t.err.a")? == "critical").then_some(())
    });
    // The rate drops below 10: a low-threshold rule fires.
    *rate.lock().unwrap() = 5.0;
    wait_until(SECS_30, "checkout critical", || {
        (instance_state(&d, "checkout-rate", "t.checkout.count")? == "critical").then_some(())
    });
    let h = history(&d, "checkout-rate");
    assert!(
        h.iter().any(|t| t["to"] == "critical"
            && t["reason"].as_str().unwrap().starts_with("critical: avg ")),
        "{h:?}"
    );
    // t.silent.a stopped: no data after 2 s.
    wait_until(SECS_30, "t.silent.a nodata", || {
        (instance_state(&d, "silent", "t.silent.a")? == "nodata").then_some(())
    });
    // t.err.a left the target's result: resolved after two evaluations and gone.
    wait_until(SECS_30, "t.err.a resolved", || {
        let v = rule_view(&d, "errors");
        let names: Vec<String> = v["rule"]["instances"]
            .as_array()?
            .iter()
            .map(|i| i["series"].as_str().unwrap().to_string())
            .collect();
        (names == vec!["t.err.b".to_string()]).then_some(())
    });
    let h = history(&d, "errors");
    assert!(
        h.iter().any(|t| t["series"] == "t.err.a"
            && t["to"] == "ok"
            && t["reason"]
                .as_str()
                .unwrap()
                .contains("no longer in the target")),
        "{h:?}"
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    feeder.join().unwrap();
    d.stop();
}

#[test]
fn forecast_rules_fire_on_a_rising_line_and_refuse_noise() {
    let dir = tempfile::tempdir().unwrap();
    write_rules(
        dir.path(),
        r#"
[[rule]]
name = "disk-full"
kind = "forecast"
target = "t.disk.*"
window = "2h"
threshold = 1000
direction = "above"
horizon = "6h"
min_r2 = 0.8
min_points = 20
interval = "1s"
annotations = { summary = "{{ series }} reaches 1000 in {{ eta }} (R² {{ r2 }})" }
"#,
    );
    let mut d = Daemon::start(dir.path(), &options(dir.path(), ""));
    let now = common::unix_now();
    let mut rng = 12345u64;
    let mut lines = String::new();
    // One point a minute for two hours: `rising` climbs 100 an hour from
    // 300 (1000 is reached 7 h after the first point: 5 h from now, inside
    // the 6 h horizon);
    // `noisy` is random between 0 and 900.
    for m in 0..120 {
        let t = now - 7200 + m * 60;
        let rising = 300.0 + 100.0 * (m as f64 / 60.0) + if m % 2 == 0 { 1.0 } else { -1.0 };
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let noisy = (rng >> 33) as f64 / (1u64 << 31) as f64 * 900.0;
        lines.push_str(&format!(
            "t.disk.rising {rising} {t}\nt.disk.noisy {noisy} {t}\n"
        ));
    }
    carbon(&d, &lines);
    let fired = common::poll_until(SECS_30, || {
        (instance_state(&d, "disk-full", "t.disk.rising")? == "critical").then_some(())
    });
    if fired.is_none() {
        panic!("rising is not critical: {}", rule_view(&d, "disk-full"));
    }
    let v = rule_view(&d, "disk-full");
    let inst = v["rule"]["instances"].as_array().unwrap();
    let rising = inst
        .iter()
        .find(|i| i["series"] == "t.disk.rising")
        .unwrap();
    let f = &rising["forecast"];
    let r2 = f["fit"]["r2"].as_f64().unwrap();
    assert!(r2 > 0.99, "{f}");
    let slope_per_hour = f["fit"]["slope"].as_f64().unwrap() * 3600.0;
    assert!((slope_per_hour - 100.0).abs() < 1.0, "{f}");
    let eta = f["crossing"].as_i64().unwrap() - common::unix_now();
    assert!((eta - 5 * 3600).abs() < 300, "eta {eta}: {f}");
    assert!(
        rising["reason"]
            .as_str()
            .unwrap()
            .contains("within the horizon"),
        "{rising}"
    );
    let noisy = inst.iter().find(|i| i["series"] == "t.disk.noisy").unwrap();
    assert_eq!(noisy["state"], "ok", "{noisy}");
    assert!(
        noisy["reason"]
            .as_str()
            .unwrap()
            .starts_with("fit too loose to project"),
        "{noisy}"
    );
    d.stop();
}

#[test]
fn a_dead_receiver_is_retried_without_delaying_the_others_and_a_restart_does_not_renotify() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Sink::start();
    let dead = common::unused_tcp_addr();
    write_rules(
        dir.path(),
        r#"
[[rule]]
name = "a"
target = "t.a"
reducer = "last"
window = "30s"
direction = "above"
crit = 1
interval = "1s"
"#,
    );
    let receivers = format!(
        "[[alerts.receivers]]\nname = \"dead\"\nkind = \"webhook\"\nurl = \"http://{dead}/x\"\ntimeout = \"1s\"\n\n[[alerts.receivers]]\nname = \"hook\"\nkind = \"webhook\"\nurl = {}\nrepeat_interval = \"1h\"\n",
        common::toml_str(&hook.url())
    );
    let o = options(dir.path(), &receivers);
    let mut d = Daemon::start(dir.path(), &o);
    let data_dir = d.data_dir.clone();
    let fired_at = Instant::now();
    feed(&d, "t.a", 3, |_| 5.0);
    wait_until(SECS_30, "the live receiver", || {
        hook.all().into_iter().find(|p| p["status"] == "firing")
    });
    // The dead receiver's retries (1 s, 2 s, ...) did not hold it back.
    assert!(
        fired_at.elapsed() < Duration::from_secs(10),
        "{:?}",
        fired_at.elapsed()
    );
    // A rule added over HTTP notifies too while the dead one keeps failing.
    let r = ureq::put(&format!("http://{}/api/alerts/rules/b", d.http))
        .header("Content-Type", "application/json")
        .config()
        .http_status_as_error(false)
        .build()
        .send(r#"{"target":"t.a","reducer":"last","window":"30s","direction":"above","warn":1,"interval":"1s"}"#)
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    feed(&d, "t.a", 2, |_| 5.0);
    wait_until(SECS_30, "rule b's notification", || {
        hook.alerts()
            .into_iter()
            .find(|a| a["labels"]["alertname"] == "b")
    });
    let metrics = common::http_get(&format!("http://{}/metrics", d.http)).1;
    let failed = metrics
        .lines()
        .find(|l| l.starts_with("rollupd_alert_notifications_failed_total{receiver=\"dead\"}"))
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(!failed.ends_with(" 0"), "{failed}");
    // Restart: the firing states come back; nothing is sent again.
    let sent_before = hook.all().len();
    d.stop();
    let mut d = Daemon::start_with_data_dir(dir.path(), &data_dir, &o);
    feed(&d, "t.a", 3, |_| 5.0);
    wait_until(SECS_30, "rule a evaluated after the restart", || {
        let v = rule_view(&d, "a");
        (v["rule"]["last_eval"].as_i64()? > 0 && v["rule"]["instances"][0]["state"] == "critical")
            .then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(hook.all().len(), sent_before, "{:?}", hook.all());
    assert_eq!(instance_state(&d, "b", "t.a").as_deref(), Some("warning"));
    // No transition was recorded by the restart either.
    let crit: Vec<Value> = history(&d, "a")
        .into_iter()
        .filter(|t| t["to"] == "critical")
        .collect();
    assert_eq!(crit.len(), 1, "{crit:?}");
    d.stop();
}

#[test]
fn bad_rules_are_refused_with_the_field_named_and_the_old_rules_keep_running() {
    let dir = tempfile::tempdir().unwrap();
    write_rules(
        dir.path(),
        "[[rule]]\nname = \"ok\"\ntarget = \"t.x\"\ndirection = \"above\"\ncrit = 1\ninterval = \"1s\"\n",
    );
    let o = options(dir.path(), "").server("api_token = \"s3cret\"");
    let mut d = Daemon::start(dir.path(), &o);
    wait_until(SECS_30, "rule ok listed", || {
        let v = get_json(&format!("http://{}/api/alerts", d.http));
        (v["rules"][0]["name"] == "ok").then_some(())
    });
    // A broken file: the old rule stays, the error names file, rule, field.
    write_rules(
        dir.path(),
        "[[rule]]\nname = \"ok\"\ntarget = \"t.x\"\nreducer = \"p999x\"\ndirection = \"above\"\ncrit = 1\n",
    );
    let err = wait_until(SECS_30, "the file error", || {
        let v = get_json(&format!("http://{}/api/alerts", d.http));
        v["file_errors"][0].as_str().map(str::to_string)
    });
    assert!(
        err.contains("main.toml") && err.contains("rule \"ok\"") && err.contains("field reducer"),
        "{err}"
    );
    let v = get_json(&format!("http://{}/api/alerts", d.http));
    assert_eq!(v["rules"][0]["name"], "ok");
    // Over HTTP: no token, 401; a bad field, 400 naming it.
    let put = |token: Option<&str>, body: &str| {
        let mut r = ureq::put(&format!("http://{}/api/alerts/rules/new", d.http))
            .header("Content-Type", "application/json");
        if let Some(t) = token {
            r = r.header("Authorization", &format!("Bearer {t}"));
        }
        let r = r
            .config()
            .http_status_as_error(false)
            .build()
            .send(body.to_string())
            .unwrap();
        let s = r.status().as_u16();
        (s, r.into_body().read_to_string().unwrap_or_default())
    };
    let good = r#"{"target":"t.x","direction":"above","crit":1}"#;
    assert_eq!(put(None, good).0, 401);
    let (s, body) = put(
        Some("s3cret"),
        r#"{"target":"t.x","direction":"above","warn":800,"crit":500}"#,
    );
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("field crit"), "{body}");
    let (s, body) = put(
        Some("s3cret"),
        r#"{"target":"t.x","direction":"above","crit":800,"crit_recovery":900}"#,
    );
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("field crit_recovery"), "{body}");
    let (s, body) = put(
        Some("s3cret"),
        r#"{"target":"sum(t.x","direction":"above","crit":1}"#,
    );
    assert!(s == 400 && body.contains("field target"), "{s} {body}");
    let (s, _) = put(Some("s3cret"), good);
    assert_eq!(s, 201);
    // A name taken by a file rule cannot be replaced over HTTP.
    let r = ureq::put(&format!("http://{}/api/alerts/rules/ok", d.http))
        .header("Content-Type", "application/json")
        .header("Authorization", "Bearer s3cret")
        .config()
        .http_status_as_error(false)
        .build()
        .send(good)
        .unwrap();
    assert_eq!(r.status().as_u16(), 409);
    d.stop();
}

fn send(method: &str, url: &str, token: Option<&str>, body: Option<&str>) -> (u16, String) {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let r = match body {
        Some(b) => agent.run(
            req.header("Content-Type", "application/json")
                .body(b.to_string())
                .unwrap(),
        ),
        None => agent.run(req.body(()).unwrap()),
    }
    .expect("request");
    let s = r.status().as_u16();
    (s, r.into_body().read_to_string().unwrap_or_default())
}

#[test]
fn check_backtest_silences_and_review_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Sink::start();
    write_rules(
        dir.path(),
        r#"
[[rule]]
name = "lat"
target = "t.lat.*"
reducer = "max"
window = "30s"
direction = "above"
warn = 500
crit = 800
interval = "1s"
labels = { team = "web" }
"#,
    );
    let receivers = format!(
        "[[alerts.receivers]]\nname = \"hook\"\nkind = \"webhook\"\nurl = {}\n",
        common::toml_str(&hook.url())
    );
    let o = options(dir.path(), &receivers).server("api_token = \"s3cret\"");
    let mut d = Daemon::start(dir.path(), &o);
    let base = format!("http://{}", d.http);
    // A silence on host b before anything fires: b's alert is not sent.
    let (s, body) = send(
        "POST",
        &format!("{base}/api/silences"),
        Some("s3cret"),
        Some(&format!(
            r#"{{"matchers":[{{"name":"series","value":"t\\.lat\\.b","isRegex":true}}],"createdBy":"ops","comment":"maintenance","endsAt":{}}}"#,
            common::unix_now() + 86400
        )),
    );
    assert_eq!(s, 200, "{body}");
    let silence_id = serde_json::from_str::<Value>(&body).unwrap()["silenceID"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        send("POST", &format!("{base}/api/silences"), None, Some("{}")).0,
        401
    );
    let (s, body) = send(
        "POST",
        &format!("{base}/api/silences"),
        Some("s3cret"),
        Some(&format!(
            r#"{{"matchers":[],"createdBy":"a","comment":"b","endsAt":{}}}"#,
            common::unix_now() + 86400
        )),
    );
    assert!(s == 400 && body.contains("matchers"), "{s} {body}");
    // An hour of history: a at 900 for the last 20 minutes, b at 900 too,
    // c quiet at 100.
    let now = common::unix_now();
    let mut lines = String::new();
    for k in 0..3600 {
        let t = now - 3600 + k + 1;
        let hot = if k >= 2400 { 900 } else { 100 };
        lines.push_str(&format!(
            "t.lat.a {hot} {t}\nt.lat.b {hot} {t}\nt.lat.c 100 {t}\n"
        ));
    }
    carbon(&d, &lines);
    wait_until(SECS_30, "a critical", || {
        (instance_state(&d, "lat", "t.lat.a")? == "critical").then_some(())
    });
    wait_until(SECS_30, "b critical", || {
        (instance_state(&d, "lat", "t.lat.b")? == "critical").then_some(())
    });
    let v = rule_view(&d, "lat");
    let b = v["rule"]["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["series"] == "t.lat.b")
        .unwrap()
        .clone();
    assert_eq!(b["silenced"], true, "{b}");
    let firing = wait_until(SECS_30, "a's notification", || {
        hook.alerts()
            .into_iter()
            .find(|a| a["labels"]["series"] == "t.lat.a")
    });
    assert_eq!(firing["labels"]["team"], "web");
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        !hook
            .alerts()
            .iter()
            .any(|a| a["labels"]["series"] == "t.lat.b"),
        "a silenced instance was sent"
    );
    let h = history(&d, "lat");
    let tb = h
        .iter()
        .find(|t| t["series"] == "t.lat.b" && t["to"] == "critical")
        .unwrap();
    assert_eq!(
        (tb["silenced"].as_bool(), tb["notified"].as_bool()),
        (Some(true), Some(false))
    );
    // Expiring the silence lets b's alert out.
    assert_eq!(
        send(
            "DELETE",
            &format!("{base}/api/silences/{silence_id}"),
            Some("s3cret"),
            None
        )
        .0,
        204
    );
    wait_until(SECS_30, "b's notification after the silence ends", || {
        hook.alerts()
            .into_iter()
            .find(|a| a["labels"]["series"] == "t.lat.b")
    });
    let (_, list) = send("GET", &format!("{base}/api/silences"), None, None);
    assert!(list.contains("\"expired\""), "{list}");

    // /check: ad hoc, JSON and Nagios; the status says it.
    let q = "target=t.lat.*&reducer=max&window=1min&direction=above&warn=500&crit=800";
    let (s, body) = send("GET", &format!("{base}/check?{q}"), None, None);
    assert_eq!(s, 503, "{body}");
    let j: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(j["state"], "critical");
    assert_eq!(j["series"].as_array().unwrap().len(), 3);
    let (s, line) = send(
        "GET",
        &format!("{base}/check?{q}&format=nagios"),
        None,
        None,
    );
    assert_eq!(s, 503);
    assert!(
        line.starts_with("CRITICAL - 2 of 3 series critical"),
        "{line}"
    );
    assert!(line.contains("'t.lat.c'=100;500;800"), "{line}");
    let (s, line) = send("GET", &format!("{base}/check?target=t.lat.c&reducer=max&window=1min&direction=above&crit=800&format=nagios"), None, None);
    assert_eq!(s, 200, "{line}");
    assert!(line.starts_with("OK - "), "{line}");
    for (bad, named) in [
        (
            "target=t.lat.a&reducer=p999x&direction=above&crit=1",
            "reducer",
        ),
        (
            "target=t.lat.a&window=soon&direction=above&crit=1",
            "window",
        ),
        ("target=t.lat.a&direction=above&critical=1", "critical"),
        ("reducer=max&direction=above&crit=1", "target"),
        ("target=t.lat.a&direction=above&crit=abc", "crit"),
    ] {
        let (s, body) = send("GET", &format!("{base}/check?{bad}"), None, None);
        assert!(s == 400 && body.contains(named), "{bad}: {s} {body}");
    }
    let (s, body) = send(
        "GET",
        &format!("{base}/check/lat?format=nagios"),
        None,
        None,
    );
    assert!(s == 503 && body.starts_with("CRITICAL"), "{s} {body}");
    assert_eq!(
        send("GET", &format!("{base}/check/nope"), None, None).0,
        404
    );

    // The backtest over the stored hour: a and b went critical at the jump.
    let body = format!(
        r#"{{"rule":{{"target":"t.lat.*","reducer":"max","window":"1min","direction":"above","crit":800,"interval":"10s"}},"from":"{}","until":"{}"}}"#,
        now - 3600,
        now
    );
    let (s, body) = send(
        "POST",
        &format!("{base}/api/alerts/test"),
        None,
        Some(&body),
    );
    assert_eq!(s, 200, "{body}");
    let bt: Value = serde_json::from_str(&body).unwrap();
    let ts = bt["transitions"].as_array().unwrap();
    let crit: Vec<&Value> = ts.iter().filter(|t| t["to"] == "critical").collect();
    assert_eq!(crit.len(), 2, "{ts:?}");
    let jump = now - 3600 + 2401;
    for t in &crit {
        let at = t["at"].as_i64().unwrap();
        assert!(at >= jump && at < jump + 10, "{t} vs {jump}");
    }
    assert_eq!(bt["notifications"], 2);
    assert_eq!(bt["final_states"]["t.lat.c"], "ok");
    // Nothing of the backtest was saved.
    assert!(history(&d, "test").is_empty());

    // The review: JSON and CSV.
    let (s, body) = send(
        "GET",
        &format!("{base}/api/alerts/review?from=-1h"),
        None,
        None,
    );
    assert_eq!(s, 200, "{body}");
    let r: Value = serde_json::from_str(&body).unwrap();
    let lat = r["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["rule"] == "lat")
        .unwrap();
    assert_eq!(lat["firings"], 2, "{lat}");
    let (s, csv) = send(
        "GET",
        &format!("{base}/api/alerts/review?from=-1h&format=csv"),
        None,
        None,
    );
    assert_eq!(s, 200);
    assert!(csv.lines().nth(1).unwrap().starts_with("lat,"), "{csv}");
    assert_eq!(
        send(
            "GET",
            &format!("{base}/api/alerts/review?from=-1h&format=xml"),
            None,
            None
        )
        .0,
        400
    );
    d.stop();
}
