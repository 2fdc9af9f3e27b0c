//! The shared Etsy statsd 0.9.0 conformance cases (tests/data/cases.json and
//! expected.json, copied from the conformance kit), replayed against the real
//! binary with the semantics of the kit's run.py: wait for the first flush,
//! send each batch of UDP packets right after a flush, capture the next
//! flush; keep user metrics and Etsy's three internal counters; compare to
//! 1e-9 relative. Extra `.statsd.` names are allowed, other extras are not.
//!
//! One daemon per case, all cases at once (each takes a few 2 s flushes).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{is_internal, Carbon, Daemon, Options};
use serde_json::Value;

const FLUSH_MS: u64 = 2000;
const KEEP_INTERNAL: [&str; 3] = ["bad_lines_seen", "packets_received", "metrics_received"];

/// run.py's `keep`: user metrics, and of the daemon's own only Etsy's three
/// counters.
fn keep(name: &str) -> bool {
    if is_internal(name) || name.starts_with("statsd.") {
        return KEEP_INTERNAL.iter().any(|k| name.contains(k));
    }
    true
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * 1f64.max(a.abs()).max(b.abs())
}

/// Etsy option name to the snake_case key rollupd reads.
fn snake(k: &str) -> String {
    let mut out = String::new();
    for c in k.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn toml_value(v: &Value) -> String {
    match v {
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => common::toml_str(s),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(toml_value).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(o) => format!(
            "{{ {} }}",
            o.iter()
                .map(|(k, x)| format!("{k} = {}", toml_value(x)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Null => panic!("null in a case config"),
    }
}

type Captured = Vec<BTreeMap<String, f64>>;

/// Runs one case; `Err` says why nothing could be captured.
fn run_case(case: &Value) -> Result<Captured, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let carbon = Carbon::start();
    let mut opts = Options::new(&format!("{FLUSH_MS}ms"))
        .no_tcp()
        .carbon(carbon.addr());
    if let Some(cfg) = case["config"].as_object() {
        for (k, v) in cfg {
            opts = opts.statsd(&format!("{} = {}", snake(k), toml_value(v)));
        }
    }
    let daemon = Daemon::start(dir.path(), &opts);
    let first = common::poll_until(Duration::from_secs(20), || {
        (carbon.flush_count() >= 1).then_some(())
    });
    if first.is_none() {
        return Err("no flush reached carbon within 20 s".into());
    }
    let mut out = Vec::new();
    let batches = case["flushes"].as_array().ok_or("no flushes")?;
    for (i, batch) in batches.iter().enumerate() {
        // Flush #i has just arrived: this batch lands in the next interval.
        for packet in batch.as_array().ok_or("batch is not a list")? {
            let packet = packet.as_str().ok_or("packet is not a string")?;
            daemon.send_udp(packet.as_bytes());
        }
        let timeout = Duration::from_millis(FLUSH_MS * 2 + 2000);
        let got = common::poll_until(timeout, || {
            (carbon.flush_count() > i + 1).then(|| carbon.flushes()[i + 1].clone())
        });
        let flush = got.ok_or_else(|| format!("no flush after batch {i} within {timeout:?}"))?;
        out.push(
            flush
                .lines
                .into_iter()
                .filter(|l| keep(&l.name))
                .map(|l| (l.name, l.value))
                .collect(),
        );
    }
    // Every line parsed as `name value timestamp`.
    let malformed = carbon.malformed();
    if !malformed.is_empty() {
        return Err(format!("malformed carbon lines: {malformed:?}"));
    }
    Ok(out)
}

/// run.py's `compare` for one case.
fn compare(expected: &Value, actual: &Captured) -> Vec<String> {
    let mut problems = Vec::new();
    let exp = expected["flushes"].as_array().expect("expected flushes");
    for (i, (fe, fa)) in exp.iter().zip(actual).enumerate() {
        let fe = fe.as_object().expect("expected flush is an object");
        for (k, v) in fe {
            let v = v.as_f64().expect("expected value is a number");
            match fa.get(k) {
                None => problems.push(format!("flush {i}: missing {k}")),
                Some(a) if !close(v, *a) => {
                    problems.push(format!("flush {i}: {k} = {a}, expected {v}"))
                }
                Some(_) => {}
            }
        }
        for k in fa.keys() {
            if !fe.contains_key(k) && !is_internal(k) {
                problems.push(format!("flush {i}: unexpected {k}"));
            }
        }
    }
    if exp.len() != actual.len() {
        problems.push(format!("{} flushes, expected {}", actual.len(), exp.len()));
    }
    problems
}

#[test]
fn etsy_conformance_cases() {
    let cases: Value =
        serde_json::from_str(include_str!("data/cases.json")).expect("cases.json parses");
    let expected: Value =
        serde_json::from_str(include_str!("data/expected.json")).expect("expected.json parses");
    let cases = cases.as_array().expect("cases is a list").clone();
    assert_eq!(cases.len(), 16, "the kit has 16 cases");

    let handles: Vec<_> = cases
        .into_iter()
        .map(|case| {
            let name = case["name"].as_str().expect("case name").to_string();
            let h = std::thread::Builder::new()
                .name(name.clone())
                .spawn(move || run_case(&case))
                .expect("spawn case thread");
            (name, h)
        })
        .collect();

    let mut failures = Vec::new();
    let mut passed = 0;
    for (name, h) in handles {
        let result = match h.join() {
            Ok(r) => r,
            Err(p) => Err(format!(
                "panicked: {}",
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            )),
        };
        let problems = match (&result, expected.get(&name)) {
            (_, None) => vec!["no expected output for this case".to_string()],
            (Err(e), _) => vec![e.clone()],
            (Ok(actual), Some(exp)) => compare(exp, actual),
        };
        if problems.is_empty() {
            passed += 1;
        } else {
            failures.push(format!("FAIL {name}: {}", problems.join("; ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{passed} passed, {} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
