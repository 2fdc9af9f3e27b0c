//! `/metrics/find` and `/metrics/expand` against graphite-web 1.1.10's own
//! answers: every find and expand request of
//! tests/data/render_oracle_fidelity.json carries the reply graphite-web gave
//! it (recorded by render_oracle.py capture over the oracle's dataset), and
//! the dataset's metric names are in the file too. Find and expand depend on
//! names only, so the daemon is given each name once and must answer every
//! request as graphite-web did (same status; JSON equal, order included).
//! The render requests of the file need the dataset's values and run live
//! with render_oracle.py.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{wait_until, Daemon, Options};
use serde_json::Value;

fn cases() -> Value {
    serde_json::from_str(include_str!("data/render_oracle_fidelity.json"))
        .expect("render_oracle_fidelity.json parses")
}

/// The request's params as (key, value) pairs, lists repeated.
fn pairs(params: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (k, v) in params.as_object().into_iter().flatten() {
        let one = |v: &Value| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match v {
            Value::Array(items) => out.extend(items.iter().map(|i| (k.clone(), one(i)))),
            _ => out.push((k.clone(), one(v))),
        }
    }
    out
}

fn send(base: &str, req: &Value) -> (u16, String) {
    let url = format!("{base}{}", req["path"].as_str().unwrap());
    let params = pairs(&req["params"]);
    let r = if req["method"] == "POST" {
        ureq::post(&url)
            .config()
            .http_status_as_error(false)
            .build()
            .send_form(params)
    } else {
        ureq::get(&url)
            .query_pairs(params)
            .config()
            .http_status_as_error(false)
            .build()
            .call()
    }
    .expect("request");
    let status = r.status().as_u16();
    (status, r.into_body().read_to_string().unwrap_or_default())
}

#[test]
fn find_and_expand_answer_as_graphite_web_answered() {
    let cases = cases();
    let names: Vec<&str> = cases["dataset_names"]
        .as_array()
        .expect("dataset_names")
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &Options::new("10s"));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut c = TcpStream::connect(d.carbon_tcp).unwrap();
    for n in &names {
        writeln!(c, "{n} 1 {now}").unwrap();
    }
    drop(c);
    let base = format!("http://{}", d.http);
    let last = names.iter().rfind(|n| !n.contains(';')).unwrap();
    wait_until(Duration::from_secs(20), "the last name is found", || {
        let probe = serde_json::json!({
            "path": "/metrics/expand", "method": "GET", "params": {"query": last}
        });
        send(&base, &probe).1.contains(last).then_some(())
    });

    let mut checked = 0;
    let mut failures = Vec::new();
    for req in cases["requests"].as_array().unwrap() {
        let path = req["path"].as_str().unwrap();
        if !path.starts_with("/metrics/") {
            continue;
        }
        let want = &req["graphite_web"];
        let (status, body) = send(&base, req);
        checked += 1;
        let name = req["name"].as_str().unwrap();
        if want["status"] != status {
            failures.push(format!(
                "{name}: status {status}, graphite-web {}",
                want["status"]
            ));
            continue;
        }
        let got: Value = match serde_json::from_str(&body) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{name}: reply is not json ({e}): {body}"));
                continue;
            }
        };
        if got != want["json"] {
            failures.push(format!("{name}: {got}\n  graphite-web: {}", want["json"]));
        }
    }
    assert!(checked >= 30, "only {checked} find/expand cases");
    assert!(
        failures.is_empty(),
        "{} of {checked} differ from graphite-web:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
