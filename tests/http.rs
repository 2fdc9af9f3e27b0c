//! The HTTP API over real sockets: carbon points rendered as Graphite JSON,
//! and deploy events posted with `rollupd event` and read back.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{poll_until, run_bin, Daemon, Options};

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn get(url: &str) -> (u16, String) {
    let r = ureq::get(url)
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .expect("request");
    let status = r.status().as_u16();
    (status, r.into_body().read_to_string().unwrap_or_default())
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
