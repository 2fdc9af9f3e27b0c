//! The HTTP API over real sockets: carbon points rendered as Graphite JSON,
//! and deploy events posted with `rollupd event` and read back.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use common::{poll_until, run_bin, Daemon, Options};

fn now() -> i64 {
    common::unix_now()
}

fn get(url: &str) -> (u16, String) {
    common::http_get(url)
}

#[test]
fn carbon_points_render_as_graphite_json() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &Options::new("1s"));
    let t0 = now() - now().rem_euclid(10) - 600;
    let mut c = TcpStream::connect(d.carbon_tcp).unwrap();
    for k in 0..30 {
        writeln!(c, "web.hits {} {}", k, t0 + k * 10).unwrap();
        writeln!(c, "db.hits {} {}", 2 * k, t0 + k * 10).unwrap();
    }
    drop(c);
    let base = format!("http://{}", d.http);
    let url = format!(
        "{base}/render?target=sumSeries(*.hits)&format=json&from={}&until={}",
        t0 - 1,
        t0 + 299
    );
    let body = poll_until(Duration::from_secs(20), || {
        let (s, body) = get(&url);
        (s == 200 && body.contains("[87.0,")).then_some(body)
    })
    .unwrap_or_else(|| panic!("no sum of the last point; got {:?}", get(&url)));
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v[0]["target"], "sumSeries(*.hits)");
    let pts = v[0]["datapoints"].as_array().unwrap();
    assert_eq!(pts.len(), 30);
    assert_eq!(pts[0], serde_json::json!([0.0, t0]));
    let (s, body) = get(&format!("{base}/render?target=nope(web.hits)&format=json"));
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("unknown function nope"), "{body}");
    let (s, body) = get(&format!("{base}/metrics/find?query=*"));
    assert_eq!(s, 200);
    assert!(body.contains("\"id\":\"web\""), "{body}");
}

#[test]
fn deploy_events_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(
        dir.path(),
        &Options::new("1s").server("api_token = \"t0ken\""),
    );
    let server = format!("http://{}", d.http);
    let when = (now() - 60).to_string();
    let denied = run_bin(
        &[
            "event",
            "--server",
            &server,
            "--what",
            "web deploy 1",
            "--tags",
            "deploy web",
        ],
        Duration::from_secs(20),
    );
    assert!(!denied.status.success());
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains("401"),
        "{denied:?}"
    );
    let ok = run_bin(
        &[
            "event",
            "--server",
            &server,
            "--token",
            "t0ken",
            "--what",
            "web deploy 36790",
            "--tags",
            "deploy web",
            "--data",
            "r36790",
            "--when",
            &when,
        ],
        Duration::from_secs(20),
    );
    assert!(ok.status.success(), "{ok:?}");
    let (s, body) = get(&format!(
        "{server}/events/get_data?tags=deploy&from=-1h&until=now"
    ));
    assert_eq!(s, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1, "{body}");
    assert_eq!(v[0]["what"], "web deploy 36790");
    assert_eq!(v[0]["tags"], serde_json::json!(["deploy", "web"]));
    assert_eq!(v[0]["data"], "r36790");
    assert_eq!(v[0]["when"].as_i64().unwrap().to_string(), when);
}

/// One request written as given (`Connection: close`), and the reply's
/// status line, headers (lowercased) and body as the server sent them.
fn raw_request(addr: std::net::SocketAddr, request: &[u8]) -> (u16, String, String) {
    use std::io::Read;
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    // The server may answer (and close) before it has read all of a
    // request it refuses; what it answered is what counts.
    let _ = c.write_all(request);
    let mut reply = Vec::new();
    let _ = c.read_to_end(&mut reply);
    let text = String::from_utf8_lossy(&reply).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    (status, head.to_ascii_lowercase(), body.to_string())
}

/// The HTTP boundary's bounds, over a real socket: hostile requests are
/// refused with a 4xx that names what was wrong, and the daemon goes on
/// answering.
#[test]
fn hostile_requests_get_4xx_and_the_daemon_keeps_answering() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(
        dir.path(),
        &Options::new("1s")
            .server("render_timeout = \"10s\"")
            .server("max_concurrent_renders = 2"),
    );
    let get_req = |path: &str, extra: &str| {
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n").into_bytes()
    };
    // A script as the jsonp callback is refused, and every reply says nosniff.
    let (s, head, body) = raw_request(
        d.http,
        &get_req(
            "/render?target=a.b&format=json&jsonp=%3Cscript%3Ealert(1)%3C/script%3E",
            "",
        ),
    );
    assert_eq!(s, 400, "{body}");
    assert!(
        body.contains("jsonp") && !body.contains("<script>"),
        "{body}"
    );
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    let (s, head, body) = raw_request(
        d.http,
        &get_req("/render?target=a.b&format=json&from=-1h&jsonp=cb", ""),
    );
    assert_eq!(s, 200, "{body}");
    assert!(head.contains("content-type: text/javascript"), "{head}");
    assert_eq!(body, "cb([])");
    // A query string of a megabyte.
    let long = format!("/render?target={}", "a".repeat(1 << 20));
    let (s, _, _) = raw_request(d.http, &get_req(&long, ""));
    assert!((400..500).contains(&s), "{s}");
    // Too many headers.
    let many: String = (0..500).map(|i| format!("X-H{i}: v\r\n")).collect();
    let (s, _, _) = raw_request(d.http, &get_req("/health", &many));
    assert!((400..500).contains(&s), "{s}");
    // A POST body past the limit.
    let big = "a".repeat(3 << 20);
    let post = format!(
        "POST /render HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\ntarget={big}",
        big.len() + 7
    );
    let (s, _, body) = raw_request(d.http, post.as_bytes());
    assert_eq!(s, 413, "{body}");
    // Too many targets, in a body under the limit.
    let targets = "&target=a.b".repeat(600);
    let post = format!(
        "POST /render HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\nformat=json{targets}",
        targets.len() + 11
    );
    let (s, _, body) = raw_request(d.http, post.as_bytes());
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("target"), "{body}");
    // Bad numbers that reach the encoders.
    for (q, name) in [
        ("maxDataPoints=-3", "maxDataPoints"),
        ("format=png&width=100000", "width"),
        ("format=png&height=0", "height"),
        ("xFilesFactor=7", "xFilesFactor"),
    ] {
        let (s, _, body) = raw_request(
            d.http,
            &get_req(&format!("/render?target=a.b&format=json&{q}"), ""),
        );
        assert_eq!(s, 400, "{q}: {body}");
        assert!(body.contains(name), "{q}: {body}");
    }
    let (s, _, body) = raw_request(d.http, &get_req("/health", ""));
    assert_eq!((s, body.as_str()), (200, "ok\n"));
}

/// Dashboards are served: the shipped ones (`dashboards/*.toml` beside the
/// working directory, the repo root under `cargo test`) and the user's
/// (`[dashboards] paths`); each one's Grafana export is what the committed
/// JSON holds, and a bad file is logged while the others load.
#[test]
fn dashboards_are_listed_and_exported_for_grafana() {
    let dir = tempfile::tempdir().unwrap();
    let mine = dir.path().join("mine");
    std::fs::create_dir_all(&mine).unwrap();
    std::fs::write(
        mine.join("team.toml"),
        "title = \"Team\"\n[[row]]\n[[row.panel]]\ntitle = \"Hits\"\ntargets = [\"stats.hits\"]\n",
    )
    .unwrap();
    std::fs::write(
        mine.join("broken.toml"),
        "title = \"B\"\n[[row]]\n[[row.panel]]\ntitle = \"x\"\ntargets = [\"sum(a\"]\n",
    )
    .unwrap();
    let o = Options::new("1s").storage(&format!(
        "[dashboards]\npaths = [{}]",
        common::toml_str(&format!("{}/*.toml", mine.display()))
    ));
    let mut d = Daemon::start(dir.path(), &o);
    let (s, body) = get(&format!("http://{}/api/dashboards", d.http));
    assert_eq!(s, 200, "{body}");
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"rollupd") && names.contains(&"web-service") && names.contains(&"team"),
        "{names:?}"
    );
    assert!(!names.contains(&"broken"), "{names:?}");
    let (s, body) = get(&format!("http://{}/d/rollupd/grafana.json", d.http));
    assert_eq!(s, 200);
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/dashboards/rollupd.json"
    ))
    .unwrap();
    let a: serde_json::Value = serde_json::from_str(&body).unwrap();
    let b: serde_json::Value = serde_json::from_str(&committed).unwrap();
    assert_eq!(a, b);
    let (s, body) = get(&format!("http://{}/d/team/grafana.json", d.http));
    assert_eq!(s, 200);
    assert!(body.contains("\"stats.hits\""), "{body}");
    assert_eq!(
        get(&format!("http://{}/d/nope/grafana.json", d.http)).0,
        404
    );
    // A new file is served after SIGHUP.
    std::fs::write(
        mine.join("later.toml"),
        "title = \"Later\"\n[[row]]\n[[row.panel]]\ntitle = \"L\"\ntargets = [\"stats.later\"]\n",
    )
    .unwrap();
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &d.pid().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let served = poll_until(Duration::from_secs(10), || {
        (get(&format!("http://{}/d/later/grafana.json", d.http)).0 == 200).then_some(())
    });
    assert!(
        served.is_some(),
        "later.toml not served after SIGHUP: {}",
        d.log()
    );
    d.stop();
    let log = d.log();
    assert!(
        log.contains("broken.toml") && log.contains("dashboard not loaded"),
        "{log}"
    );
}

/// A request with a JSON body and the API token: status and body.
fn send_json(method: &str, url: &str, token: &str, body: &str) -> (u16, String) {
    let auth = format!("Bearer {token}");
    let r = match method {
        "PUT" => ureq::put(url)
            .config()
            .http_status_as_error(false)
            .build()
            .header("authorization", &auth)
            .content_type("application/json")
            .send(body),
        "POST" => ureq::post(url)
            .config()
            .http_status_as_error(false)
            .build()
            .header("authorization", &auth)
            .content_type("application/json")
            .send(body),
        _ => ureq::delete(url)
            .config()
            .http_status_as_error(false)
            .build()
            .header("authorization", &auth)
            .call(),
    }
    .expect("request");
    let status = r.status().as_u16();
    (status, r.into_body().read_to_string().unwrap_or_default())
}

fn title_of(d: &Daemon, name: &str) -> Option<String> {
    let (s, body) = get(&format!("http://{}/api/dashboards/{name}", d.http));
    if s != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v["title"].as_str().map(str::to_string)
}

/// Dashboard files are looked at every `[alerts] reload_check` with no
/// signal: an edit is served within the period, a broken edit is logged
/// (file, panel, field) while the last good version keeps serving; and a
/// dashboard saved over HTTP is in the store after a restart.
#[test]
fn dashboard_files_are_reread_when_they_change_and_saved_ones_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mine = dir.path().join("mine");
    std::fs::create_dir_all(&mine).unwrap();
    let team = |title: &str, target: &str| {
        format!(
            "title = {title:?}\n[[row]]\n[[row.panel]]\ntitle = \"Hits\"\ntargets = [{target:?}]\n"
        )
    };
    std::fs::write(mine.join("team.toml"), team("Team", "stats.hits")).unwrap();
    let o = Options::new("1s")
        .server("api_token = \"tok\"")
        .storage(&format!(
            "[dashboards]\npaths = [{}]\n\n[alerts]\nreload_check = \"1s\"",
            common::toml_str(&format!("{}/*.toml", mine.display()))
        ));
    let mut d = Daemon::start(dir.path(), &o);
    assert_eq!(title_of(&d, "team").as_deref(), Some("Team"));
    std::fs::write(mine.join("team.toml"), team("Team, edited", "stats.hits")).unwrap();
    let seen = poll_until(Duration::from_secs(5), || {
        (title_of(&d, "team").as_deref() == Some("Team, edited")).then_some(())
    });
    assert!(seen.is_some(), "the edit was not seen: {}", d.log());
    // A new file appears, and a broken edit keeps the last good version.
    std::fs::write(mine.join("new.toml"), team("New", "stats.new")).unwrap();
    std::fs::write(mine.join("team.toml"), team("Team, broken", "sum(")).unwrap();
    let seen = poll_until(Duration::from_secs(5), || title_of(&d, "new").map(|_| ()));
    assert!(seen.is_some(), "new.toml not served: {}", d.log());
    let logged = poll_until(Duration::from_secs(5), || {
        let log = d.log();
        (log.contains("team.toml") && log.contains("targets[0]") && log.contains("last good"))
            .then_some(())
    });
    assert!(logged.is_some(), "{}", d.log());
    assert_eq!(title_of(&d, "team").as_deref(), Some("Team, edited"));

    // Saved over HTTP: 201, then a file's name is 409, then it survives
    // a restart.
    let url = format!("http://{}/api/dashboards/saved", d.http);
    let spec =
        r#"{"title": "Saved", "row": [{"panel": [{"title": "p", "targets": ["stats.hits"]}]}]}"#;
    assert_eq!(send_json("PUT", &url, "nope", spec).0, 401);
    let (s, body) = send_json("PUT", &url, "tok", spec);
    assert_eq!(s, 201, "{body}");
    let (s, _) = send_json(
        "PUT",
        &format!("http://{}/api/dashboards/team", d.http),
        "tok",
        spec,
    );
    assert_eq!(s, 409);
    let grafana = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/dashboards/web-service.json"
    ))
    .unwrap();
    let (s, body) = send_json(
        "POST",
        &format!("http://{}/api/dashboards/import?name=imported", d.http),
        "tok",
        &grafana,
    );
    assert_eq!(s, 201, "{body}");
    d.stop();
    let mut d = Daemon::start(dir.path(), &o);
    assert_eq!(title_of(&d, "saved").as_deref(), Some("Saved"));
    assert!(title_of(&d, "imported").is_some());
    let (_, body) = get(&format!("http://{}/api/dashboards", d.http));
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    let source = |name: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == name)
            .map(|x| x["source"].clone())
    };
    assert_eq!(source("saved"), Some(serde_json::json!("store")));
    assert_eq!(source("rollupd"), Some(serde_json::json!("file")));
    let url = format!("http://{}/api/dashboards/saved", d.http);
    let (s, _) = send_json("DELETE", &url, "tok", "");
    assert_eq!(s, 204);
    assert_eq!(title_of(&d, "saved"), None);
    d.stop();
}

/// The last non-null value of `target` over the last minute.
fn last_value(d: &Daemon, target: &str) -> Option<f64> {
    let (s, body) = get(&format!(
        "http://{}/render?target={target}&from=-1min&format=json",
        d.http
    ));
    assert_eq!(s, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v.get(0)?["datapoints"]
        .as_array()?
        .iter()
        .rev()
        .find_map(|p| p[0].as_f64())
}

/// The daemon's own figures are series: after a flush the render API has
/// the data directory's size and the count of critical alert instances
/// that `/api/alerts` reports.
#[test]
fn the_daemons_own_figures_are_written_every_flush() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    // Critical for the next ten minutes: its window holds a point over 1.
    std::fs::write(
        dir.path().join("rules/r.toml"),
        "[[rule]]\nname = \"high\"\ntarget = \"t.high\"\nreducer = \"max\"\nwindow = \"10min\"\ndirection = \"above\"\ncrit = 1\ninterval = \"1s\"\n",
    )
    .unwrap();
    let o = Options::new("1s").storage(&format!(
        "[alerts]\nrules = [{}]",
        common::toml_str(&format!("{}/*.toml", dir.path().join("rules").display()))
    ));
    let d = Daemon::start(dir.path(), &o);
    let mut c = TcpStream::connect(d.carbon_tcp).unwrap();
    writeln!(c, "t.high 5 {}", now() - 5).unwrap();
    drop(c);
    let critical = || -> Option<u64> {
        let (_, body) = get(&format!("http://{}/api/alerts", d.http));
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        v["states"]["critical"].as_u64()
    };
    let n = poll_until(Duration::from_secs(15), || critical().filter(|n| *n > 0));
    assert_eq!(n, Some(1), "{}", d.log());
    // Flushes after that write the count; a render in between gives the
    // next flush a latency.
    let written = poll_until(Duration::from_secs(15), || {
        let v = last_value(&d, "stats.gauges.statsd.alerts.instances.critical")?;
        (v == critical()? as f64).then_some(v)
    });
    assert_eq!(written, Some(1.0), "{}", d.log());
    let disk = last_value(&d, "stats.gauges.statsd.store.disk_bytes").unwrap();
    assert!(disk > 0.0, "{disk}");
    let rss = last_value(&d, "stats.gauges.statsd.process.rss_bytes").unwrap();
    assert!(rss > 1e6, "{rss}");
    let p99 = poll_until(Duration::from_secs(5), || {
        last_value(&d, "stats.gauges.statsd.render.latency_p99_ms")
    });
    assert!(p99.is_some_and(|v| v >= 0.0), "{}", d.log());
    let requests = poll_until(Duration::from_secs(5), || {
        last_value(&d, "stats_counts.statsd.render.requests").filter(|v| *v > 0.0)
    });
    assert!(requests.is_some());
    let points = last_value(&d, "stats_counts.statsd.store.points_written").unwrap();
    assert!(points > 0.0, "{points}");
    // A silence over the instance: counted as silenced at the next flush.
    let (s, body) = send_json(
        "POST",
        &format!("http://{}/api/silences", d.http),
        "",
        &format!(
            r#"{{"matchers":[{{"name":"series","value":"t.high"}}],"createdBy":"test","comment":"c","endsAt":{}}}"#,
            now() + 3600
        ),
    );
    assert_eq!(s, 200, "{body}");
    let silenced = poll_until(Duration::from_secs(10), || {
        last_value(&d, "stats.gauges.statsd.alerts.instances.silenced").filter(|v| *v == 1.0)
    });
    assert_eq!(silenced, Some(1.0), "{}", d.log());
}
