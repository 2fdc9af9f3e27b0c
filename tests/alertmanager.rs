//! rollupd's notifications in a real Alertmanager (Debian's 0.25, started
//! by the test on a loopback port): what is sent arrives with its labels,
//! annotations and start, a resolved alert ends there, and a silence in
//! rollupd keeps an alert out of it. First through the notifier alone, then
//! end to end: rules firing in a running daemon over carbon-written series.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use chrono::DateTime;
use serde_json::Value;

use common::alertmanager::Alertmanager;
use common::{toml_str, unix_now, wait_until, Daemon, Options};
use rollupd::alert::notice::{fingerprint, Notice, Severity};
use rollupd::alert::notify::{Notifier, NotifyStats};
use rollupd::config::{ReceiverConfig, ReceiverKind};

const SOON: Duration = Duration::from_secs(10);

fn receiver(am: &Alertmanager) -> ReceiverConfig {
    ReceiverConfig {
        name: "am".into(),
        kind: ReceiverKind::Alertmanager,
        url: am.url.clone(),
        repeat_interval: Some(Duration::from_secs(60)),
        send_resolved: true,
        timeout: Duration::from_secs(2),
        retry_for: Duration::from_secs(5),
        queue: 100,
        bearer_token: None,
    }
}

fn notice(rule: &str, series: &str, starts_at: i64) -> Notice {
    Notice {
        fingerprint: fingerprint(rule, series),
        rule: rule.into(),
        series: series.into(),
        labels: BTreeMap::from([
            ("alertname".into(), rule.into()),
            ("severity".into(), "critical".into()),
            ("series".into(), series.into()),
            // A series tag whose name Alertmanager would refuse as is.
            ("dc-name".into(), "east".into()),
        ]),
        annotations: BTreeMap::from([
            ("summary".into(), format!("{series} is 97% full")),
            ("runbook".into(), "https://runbooks.example/disk".into()),
        ]),
        severity: Severity::Critical,
        value: Some(97.0),
        starts_at,
        generator_url: format!("http://127.0.0.1:1/api/alerts/{rule}"),
        silenced: false,
        receivers: vec![],
    }
}

fn unix(t: &Value) -> i64 {
    DateTime::parse_from_rfc3339(t.as_str().expect("a time string"))
        .expect("RFC 3339")
        .timestamp()
}

fn series_of(alerts: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = alerts
        .iter()
        .map(|a| a["labels"]["series"].as_str().unwrap_or("").to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn notifier_alerts_arrive_resolve_and_respect_silences() {
    let am = Alertmanager::start();
    let stats = NotifyStats::new();
    let n = Notifier::start(&[receiver(&am)], stats.clone());
    let now = unix_now();
    let started = now - 300;
    let rule = "disk_full";
    let held = Notice {
        silenced: true,
        ..notice(rule, "db2.disk", started)
    };
    n.update(
        rule,
        vec![
            notice(rule, "db1.disk", started),
            notice(rule, "db3.disk", started),
            held.clone(),
        ],
        now,
    );
    let alerts = am.wait_for(SOON, "db1 and db3 in Alertmanager", |a| a.len() >= 2);
    // The silenced one went in no request: both others came in one.
    assert_eq!(series_of(&alerts), ["db1.disk", "db3.disk"]);
    let a = &am.alerts_with("series", "db1.disk")[0];
    assert_eq!(a["labels"]["alertname"], rule);
    assert_eq!(a["labels"]["severity"], "critical");
    assert_eq!(a["labels"]["dc_name"], "east");
    assert_eq!(a["annotations"]["summary"], "db1.disk is 97% full");
    assert_eq!(a["annotations"]["runbook"], "https://runbooks.example/disk");
    assert_eq!(unix(&a["startsAt"]), started);
    // Kept active through three lost repeats (4 × 60 s), then it would end.
    assert_eq!(unix(&a["endsAt"]), now + 240);
    assert_eq!(a["status"]["state"], "active");
    assert_eq!(a["generatorURL"], "http://127.0.0.1:1/api/alerts/disk_full");

    // db1 recovers: resolved at once, not at its endsAt. db2's silence
    // ends while it fires: it is sent now.
    let unsilenced = Notice {
        silenced: false,
        ..held
    };
    n.update(
        rule,
        vec![notice(rule, "db3.disk", started), unsilenced],
        now + 1,
    );
    let alerts = am.wait_for(SOON, "db1 resolved, db2 arrived", |a| {
        series_of(a) == ["db2.disk", "db3.disk"]
    });
    assert!(
        alerts.iter().all(|a| a["status"]["state"] == "active"),
        "{alerts:#?}"
    );

    // The rule is deleted: what it had firing ends.
    n.forget_rule(rule, now + 2);
    am.wait_for(SOON, "every alert of the rule resolved", |a| a.is_empty());
    n.stop();
    let c = stats.receiver_counts("am").unwrap();
    assert_eq!(
        (c.delivered, c.failed_attempts, c.dropped_failed),
        (3, 0, 0),
        "{c:?}"
    );
    assert_eq!(stats.rule(rule).notifications, 3);
}

// ---------------------------------------------------------------------------
// End to end through the daemon

fn carbon(d: &Daemon, lines: &str) {
    let mut s = TcpStream::connect(d.carbon_tcp).expect("connect carbon");
    s.write_all(lines.as_bytes()).expect("write carbon");
}

/// The state rollupd gives `series` under `rule`, if it follows it.
fn state_in_rollupd(d: &Daemon, rule: &str, series: &str) -> Option<String> {
    let (status, body) = common::http_get(&format!("http://{}/api/alerts/{rule}", d.http));
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).expect("JSON");
    v["rule"]["instances"]
        .as_array()?
        .iter()
        .find(|i| i["series"] == series)
        .and_then(|i| i["state"].as_str().map(str::to_string))
}

fn post_json(url: &str, body: &Value) -> (u16, String) {
    let r = ureq::post(url)
        .header("Content-Type", "application/json")
        .config()
        .http_status_as_error(false)
        .build()
        .send(body.to_string().as_bytes())
        .expect("request");
    let status = r.status().as_u16();
    (status, r.into_body().read_to_string().unwrap_or_default())
}

#[test]
fn daemon_rules_reach_alertmanager_resolve_and_respect_a_rollupd_silence() {
    let am = Alertmanager::start();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("rules")).expect("rules dir");
    std::fs::write(
        dir.path().join("rules/disk.toml"),
        r#"
[[rule]]
name = "disk"
target = "t.disk.*"
reducer = "last"
window = "1m"
direction = "above"
warn = 5.0
crit = 10.0
for = "0s"
interval = "1s"
annotations = { summary = "{{ series }} at {{ value }}" }
"#,
    )
    .expect("rule file");
    let o = Options::new("1s").storage(&format!(
        "[[storage.retention]]\npattern = \"^t\\\\.\"\nretentions = \"1s:3h\"\n\n\
         [alerts]\nrules = [{}]\n\n\
         [[alerts.receivers]]\nname = \"am\"\nkind = \"alertmanager\"\nurl = {}\ntimeout = \"2s\"\n",
        toml_str(&format!("{}/*.toml", dir.path().join("rules").display())),
        toml_str(&am.url),
    ));
    let mut d = Daemon::start(dir.path(), &o);
    // Silenced in rollupd before anything fires.
    let (status, body) = post_json(
        &format!("http://{}/api/silences", d.http),
        &serde_json::json!({
            "matchers": [{"name": "series", "value": "t.disk.db2", "isRegex": false}],
            "createdBy": "test",
            "comment": "db2 is being replaced",
            "endsAt": unix_now() + 3600,
        }),
    );
    assert_eq!(status, 200, "{body}");
    let silence: Value = serde_json::from_str(&body).expect("JSON");
    let silence_id = silence["silenceID"].as_str().expect("an id").to_string();

    let t0 = unix_now();
    carbon(
        &d,
        &format!("t.disk.db1 20 {t0}\nt.disk.db2 30 {t0}\nt.disk.db3 1 {t0}\n"),
    );
    for series in ["t.disk.db1", "t.disk.db2"] {
        wait_until(SOON * 3, &format!("{series} critical in rollupd"), || {
            (state_in_rollupd(&d, "disk", series)? == "critical").then_some(())
        });
    }
    let alerts = am.wait_for(SOON, "db1 in Alertmanager", |a| !a.is_empty());
    // Both fired in the same evaluation, so in the same request: db2, held
    // back by the silence, is not there.
    assert_eq!(series_of(&alerts), ["t.disk.db1"], "{alerts:#?}");
    let a = &alerts[0];
    assert_eq!(a["labels"]["alertname"], "disk");
    assert_eq!(a["labels"]["severity"], "critical");
    assert_eq!(a["annotations"]["summary"], "t.disk.db1 at 20");
    let starts = unix(&a["startsAt"]);
    assert!(
        (t0 - 5..=unix_now()).contains(&starts),
        "startsAt {starts}, points at {t0}"
    );
    assert!(
        a["generatorURL"]
            .as_str()
            .unwrap_or("")
            .ends_with("/api/alerts/disk"),
        "{a:#?}"
    );
    assert_eq!(a["status"]["state"], "active");

    // The silence ends while db2 still fires: it reaches Alertmanager.
    let r = ureq::delete(&format!("http://{}/api/silences/{silence_id}", d.http))
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .expect("request");
    assert_eq!(r.status().as_u16(), 204);
    am.wait_for(SOON, "db2 after its silence", |a| {
        series_of(a) == ["t.disk.db1", "t.disk.db2"]
    });

    // db1 recovers: resolved in Alertmanager long before its endsAt.
    carbon(&d, &format!("t.disk.db1 1 {}\n", unix_now()));
    let alerts = am.wait_for(SOON * 3, "db1 resolved in Alertmanager", |a| {
        series_of(a) == ["t.disk.db2"]
    });
    assert_eq!(alerts[0]["annotations"]["summary"], "t.disk.db2 at 30");
    d.stop();
}
