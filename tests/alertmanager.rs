//! rollupd's notifications in a real Alertmanager (Debian's 0.25, started
//! by the test on a loopback port): what is sent arrives with its labels,
//! annotations and start, a resolved alert ends there, and a silence in
//! rollupd keeps an alert out of it.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::DateTime;
use serde_json::Value;

use common::alertmanager::Alertmanager;
use common::unix_now;
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
