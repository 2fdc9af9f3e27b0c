//! Events end to end over real sockets: a DogStatsD `_e` datagram reaches
//! `/events/get_data` and the `events()` render function (one store of
//! events), retention deletes old events, events survive a restart and a
//! `kill -9`, ids are never reused, and the old `events.jsonl` spool is
//! imported once.

mod common;

use std::time::Duration;

use common::{wait_until, Daemon, Options};

const SECS_10: Duration = Duration::from_secs(10);

fn now() -> i64 {
    common::unix_now()
}

fn get(url: &str) -> (u16, String) {
    common::http_get(url)
}

fn get_json(url: &str) -> serde_json::Value {
    let (s, body) = get(url);
    assert_eq!(s, 200, "{url}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{url}: {e}: {body}"))
}

/// Posts an event as JSON; its id.
fn post(d: &Daemon, body: serde_json::Value) -> u64 {
    let r = ureq::post(&format!("http://{}/events/", d.http))
        .header("Content-Type", "application/json")
        .config()
        .http_status_as_error(false)
        .build()
        .send(body.to_string())
        .expect("post");
    let status = r.status().as_u16();
    let text = r.into_body().read_to_string().unwrap_or_default();
    assert_eq!(status, 200, "{text}");
    serde_json::from_str::<serde_json::Value>(&text).unwrap()["id"]
        .as_u64()
        .unwrap()
}

fn events(d: &Daemon, query: &str) -> Vec<serde_json::Value> {
    let v = get_json(&format!("http://{}/events/get_data?{query}", d.http));
    v.as_array().unwrap().clone()
}

/// The reported bug: a DogStatsD event sent over UDP was not in
/// `/events/get_data` 10 s later (it went to a spool file nothing read).
#[test]
fn a_dogstatsd_event_over_udp_is_in_get_data_and_on_graphs() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &Options::new("1s"));
    let when = now() - 30;
    d.send_udp(format!("_e{{10,9}}:web deploy|sha abc12|d:{when}|h:web1|#deploy,web").as_bytes());
    let q = format!("tags=deploy&from={}&until={}", when - 1, when + 1);
    let found = wait_until(SECS_10, "the UDP event in /events/get_data", || {
        let v = events(&d, &q);
        (!v.is_empty()).then_some(v)
    });
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["what"], "web deploy");
    assert_eq!(found[0]["data"], "sha abc12");
    assert_eq!(found[0]["when"], when);
    assert_eq!(
        found[0]["tags"],
        serde_json::json!(["deploy", "web", "host:web1"])
    );
    // Every tag must match.
    let two = |t: &str| format!("tags=deploy%20{t}&from={}&until={}", when - 1, when + 1);
    assert_eq!(events(&d, &two("db")).len(), 0);
    assert_eq!(events(&d, &two("host:web1")).len(), 1);

    // The same event is a point of `events('deploy')`, at its second.
    let url = format!(
        "http://{}/render?target=events('deploy','web')&format=json&from={}&until={}",
        d.http,
        when - 10,
        when + 10
    );
    let v = get_json(&url);
    assert_eq!(v[0]["target"], "events(\"deploy\", \"web\")");
    let points: Vec<(f64, i64)> = v[0]["datapoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| !p[0].is_null())
        .map(|p| (p[0].as_f64().unwrap(), p[1].as_i64().unwrap()))
        .collect();
    assert_eq!(points, vec![(1.0, when)]);
    // And a mark on an image.
    let (s, svg) = get(&format!(
        "http://{}/render?target=events('deploy')&format=svg&from={}&until={}&events=deploy",
        d.http,
        when - 10,
        when + 10
    ));
    assert_eq!(s, 200);
    assert!(svg.contains("web deploy"), "no event mark in the svg");
}

/// `storage.events_retention` deletes old events (it used to be parsed and
/// never applied): an event that is there at first is gone a few seconds
/// later, and one sent already older than the retention never shows.
#[test]
fn events_past_their_retention_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(
        dir.path(),
        &Options::new("1s").storage("[storage]\nevents_retention = \"3s\""),
    );
    let t = now();
    post(
        &d,
        serde_json::json!({"what": "fresh", "tags": "deploy", "when": t}),
    );
    let q = format!("tags=deploy&from={}&until={}", t - 3600, t + 3600);
    assert_eq!(events(&d, &q).len(), 1);
    wait_until(
        Duration::from_secs(20),
        "the event deleted by retention",
        || events(&d, &q).is_empty().then_some(()),
    );
    assert!(
        d.log().contains("deleted events past events_retention"),
        "{}",
        d.log()
    );
}

/// An acknowledged event survives `kill -9`; one queued from UDP survives
/// a clean stop; ids keep rising across restarts even after the newest
/// event was deleted.
#[test]
fn events_survive_restart_and_kill_and_ids_are_not_reused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let o = Options::new("1s");
    let t = now() - 100;
    let mut d = Daemon::start_with_data_dir(dir.path(), &data, &o);
    let a = post(&d, serde_json::json!({"what": "a", "tags": "x", "when": t}));
    let b = post(
        &d,
        serde_json::json!({"what": "b", "tags": "x", "when": t + 1}),
    );
    d.kill_hard();

    let mut d = Daemon::start_with_data_dir(dir.path(), &data, &o);
    let q = format!("from={}&until={}", t - 10, t + 10);
    let got: Vec<u64> = events(&d, &q)
        .iter()
        .map(|e| e["id"].as_u64().unwrap())
        .collect();
    assert_eq!(got, vec![a, b], "acknowledged events after kill -9");
    let del = ureq::delete(&format!("http://{}/events/{b}", d.http))
        .call()
        .expect("delete");
    assert_eq!(del.status().as_u16(), 200);
    d.send_udp(format!("_e{{3,0}}:udp||d:{}|#x", t + 2).as_bytes());
    wait_until(SECS_10, "the UDP event stored", || {
        (events(&d, &q).len() == 2).then_some(())
    });
    d.stop();

    let d = Daemon::start_with_data_dir(dir.path(), &data, &o);
    let c = post(
        &d,
        serde_json::json!({"what": "c", "tags": "x", "when": t + 3}),
    );
    let all = events(&d, &q);
    let whats: Vec<&str> = all.iter().map(|e| e["what"].as_str().unwrap()).collect();
    assert_eq!(whats, ["a", "udp", "c"]);
    let udp = all[1]["id"].as_u64().unwrap();
    assert!(udp > b && c > udp, "ids a={a} b={b} udp={udp} c={c}");
}

/// The first versions spooled DogStatsD events to `data_dir/events.jsonl`;
/// the next start moves them into the event store, once, and says so.
#[test]
fn the_old_event_spool_is_imported_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let t = now() - 600;
    let spool = format!(
        "{}\n{}\n",
        serde_json::json!({"when": t, "what": "old deploy", "tags": ["deploy", "host:web1"], "data": "v1"}),
        serde_json::json!({"when": t + 1, "what": "old db", "tags": ["db"], "data": ""}),
    );
    std::fs::write(data.join("events.jsonl"), spool).unwrap();
    let o = Options::new("1s");
    let mut d = Daemon::start_with_data_dir(dir.path(), &data, &o);
    let q = format!("from={}&until={}", t - 10, t + 10);
    let whats = |d: &Daemon| -> Vec<String> {
        events(d, &q)
            .iter()
            .map(|e| e["what"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(whats(&d), ["old deploy", "old db"]);
    assert!(!data.join("events.jsonl").exists());
    assert!(data.join("events.jsonl.imported").exists());
    assert!(
        d.log().contains("imported the old DogStatsD event spool"),
        "{}",
        d.log()
    );
    d.stop();
    let d = Daemon::start_with_data_dir(dir.path(), &data, &o);
    assert_eq!(whats(&d), ["old deploy", "old db"], "imported once");
}
