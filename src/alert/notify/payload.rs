//! Request bodies: Alertmanager's webhook message (for `webhook`
//! receivers) and the alert list of Alertmanager's `POST /api/v2/alerts`.
//! Built on the receiver's thread, never on the evaluator's.

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat};
use serde::Serialize;

use super::track::Outgoing;

/// What Alertmanager's webhook puts in `endsAt` while an alert fires (Go's
/// zero time).
pub(super) const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Unix seconds as RFC 3339 UTC (`2026-12-07T02:52:24Z`).
pub(super) fn rfc3339(secs: i64) -> String {
    DateTime::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_else(|| ZERO_TIME.to_string())
}

type Labels<'a> = BTreeMap<&'a str, &'a str>;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WebhookMessage<'a> {
    version: &'static str,
    group_key: String,
    truncated_alerts: u32,
    status: &'static str,
    receiver: &'a str,
    group_labels: Labels<'a>,
    common_labels: Labels<'a>,
    common_annotations: Labels<'a>,
    #[serde(rename = "externalURL")]
    external_url: &'a str,
    alerts: Vec<WebhookAlert<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WebhookAlert<'a> {
    status: &'static str,
    labels: &'a BTreeMap<String, String>,
    annotations: &'a BTreeMap<String, String>,
    starts_at: String,
    ends_at: String,
    #[serde(rename = "generatorURL")]
    generator_url: &'a str,
    fingerprint: &'a str,
    /// Ours: the reduced value that made it fire (null for no data).
    value: Option<f64>,
}

/// The pairs every map holds with the same value.
fn common<'a>(maps: impl Iterator<Item = &'a BTreeMap<String, String>>) -> Labels<'a> {
    let mut acc: Option<Labels<'a>> = None;
    for m in maps {
        acc = Some(match acc {
            None => m.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
            Some(mut c) => {
                c.retain(|k, v| m.get(*k).is_some_and(|x| x == v));
                c
            }
        });
    }
    acc.unwrap_or_default()
}

/// The scheme and authority of `url` (`http://host:port`), for
/// `externalURL` when none was configured.
pub(super) fn origin(url: &str) -> &str {
    let Some(i) = url.find("://") else {
        return "";
    };
    let rest = &url[i + 3..];
    let end = rest.find(['/', '?', '#']).map_or(url.len(), |j| i + 3 + j);
    &url[..end]
}

/// Alertmanager's webhook message for one rule's alerts: `status` is
/// `firing` when any alert in it fires (as Alertmanager does).
pub(super) fn webhook(
    receiver: &str,
    rule: &str,
    external_url: &str,
    alerts: &[Outgoing],
) -> Vec<u8> {
    let firing = alerts.iter().any(|a| a.resolved_at.is_none());
    let external_url = if external_url.is_empty() {
        alerts
            .first()
            .map_or("", |a| origin(&a.notice.generator_url))
    } else {
        external_url
    };
    let msg = WebhookMessage {
        version: "4",
        // Alertmanager's shape: the route's matchers, then the group labels.
        group_key: format!("{{}}:{{alertname={}}}", serde_json::Value::from(rule)),
        truncated_alerts: 0,
        status: if firing { "firing" } else { "resolved" },
        receiver,
        group_labels: BTreeMap::from([("alertname", rule)]),
        common_labels: common(alerts.iter().map(|a| &a.notice.labels)),
        common_annotations: common(alerts.iter().map(|a| &a.notice.annotations)),
        external_url,
        alerts: alerts
            .iter()
            .map(|a| WebhookAlert {
                status: if a.resolved_at.is_some() {
                    "resolved"
                } else {
                    "firing"
                },
                labels: &a.notice.labels,
                annotations: &a.notice.annotations,
                starts_at: rfc3339(a.notice.starts_at),
                ends_at: a.resolved_at.map_or_else(|| ZERO_TIME.to_string(), rfc3339),
                generator_url: &a.notice.generator_url,
                fingerprint: &a.notice.fingerprint,
                value: a.notice.value.filter(|v| v.is_finite()),
            })
            .collect(),
    };
    serde_json::to_vec(&msg).expect("a webhook message serializes")
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PostableAlert<'a> {
    labels: BTreeMap<Cow<'a, str>, &'a str>,
    annotations: BTreeMap<Cow<'a, str>, &'a str>,
    starts_at: String,
    ends_at: String,
    #[serde(rename = "generatorURL", skip_serializing_if = "str::is_empty")]
    generator_url: &'a str,
}

/// A label name Alertmanager 0.25 accepts (`[a-zA-Z_][a-zA-Z0-9_]*`): it
/// refuses the whole request over one bad name, and series tags may hold
/// `-` or `.`. Other characters become `_`.
fn label_name(name: &str) -> Cow<'_, str> {
    let ok =
        |i: usize, c: char| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit());
    if !name.is_empty() && name.chars().enumerate().all(|(i, c)| ok(i, c)) {
        return Cow::Borrowed(name);
    }
    let mut s: String = name
        .chars()
        .map(|c| {
            if c == '_' || c.is_ascii_alphanumeric() {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !s.starts_with(|c: char| c == '_' || c.is_ascii_alphabetic()) {
        s.insert(0, '_');
    }
    Cow::Owned(s)
}

fn am_map(m: &BTreeMap<String, String>) -> BTreeMap<Cow<'_, str>, &str> {
    m.iter().map(|(k, v)| (label_name(k), v.as_str())).collect()
}

/// The body of `POST /api/v2/alerts`. A firing alert ends at `now` + 4 ×
/// `repeat` (seconds): re-sent every `repeat`, it stays active in
/// Alertmanager through three lost repeats, and if rollupd stops,
/// Alertmanager resolves it by itself. A resolved one ends when it resolved,
/// but never later than `wall` (the clock as the request is made):
/// Alertmanager treats an `endsAt` still ahead as a firing alert's, and a
/// firing alert's earlier `endsAt` loses to the later one it holds (seen
/// with 0.25: an alert "resolved" one second ahead stayed active for the
/// four repeat intervals of its last firing send).
pub(super) fn alertmanager(alerts: &[Outgoing], now: i64, repeat: i64, wall: i64) -> Vec<u8> {
    let list: Vec<PostableAlert<'_>> = alerts
        .iter()
        .map(|a| PostableAlert {
            labels: am_map(&a.notice.labels),
            annotations: am_map(&a.notice.annotations),
            starts_at: rfc3339(a.notice.starts_at),
            ends_at: rfc3339(match a.resolved_at {
                Some(t) => t.min(wall),
                None => now.saturating_add(repeat.saturating_mul(4)),
            }),
            generator_url: &a.notice.generator_url,
        })
        .collect();
    serde_json::to_vec(&list).expect("an alert list serializes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::notice::{fingerprint, Notice, Severity};
    use serde_json::{json, Value};
    use std::sync::Arc;

    fn notice(series: &str, sev: Severity) -> Notice {
        Notice {
            fingerprint: fingerprint("lat", series),
            rule: "lat".into(),
            series: series.into(),
            labels: BTreeMap::from([
                ("alertname".into(), "lat".into()),
                ("severity".into(), sev.as_str().into()),
                ("series".into(), series.into()),
                ("dc-name".into(), "east".into()),
            ]),
            annotations: BTreeMap::from([("summary".into(), format!("{series} is slow"))]),
            severity: sev,
            value: Some(812.5),
            starts_at: 1_800_000_000,
            generator_url: "http://rollupd:8080/api/alerts/lat".into(),
            silenced: false,
            receivers: vec![],
        }
    }

    fn out(n: Notice, resolved_at: Option<i64>) -> Outgoing {
        Outgoing {
            notice: Arc::new(n),
            resolved_at,
        }
    }

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_800_000_000), "2027-01-15T08:00:00Z");
    }

    #[test]
    fn origin_keeps_scheme_and_authority() {
        assert_eq!(origin("http://h:1/api/x?y"), "http://h:1");
        assert_eq!(origin("https://h"), "https://h");
        assert_eq!(origin("nope"), "");
    }

    #[test]
    fn webhook_message_has_alertmanagers_shape() {
        let mut b = notice("api.b", Severity::Critical);
        b.value = None;
        let alerts = [
            out(notice("api.a", Severity::Critical), None),
            out(b, Some(1_800_000_060)),
        ];
        let v: Value = serde_json::from_slice(&webhook("ops", "lat", "", &alerts)).unwrap();
        assert_eq!(v["version"], "4");
        assert_eq!(v["status"], "firing");
        assert_eq!(v["receiver"], "ops");
        assert_eq!(v["groupKey"], "{}:{alertname=\"lat\"}");
        assert_eq!(v["groupLabels"], json!({"alertname": "lat"}));
        assert_eq!(
            v["commonLabels"],
            json!({"alertname": "lat", "severity": "critical", "dc-name": "east"})
        );
        assert_eq!(v["commonAnnotations"], json!({}));
        assert_eq!(v["externalURL"], "http://rollupd:8080");
        let a = &v["alerts"][0];
        assert_eq!(a["status"], "firing");
        assert_eq!(a["startsAt"], "2027-01-15T08:00:00Z");
        assert_eq!(a["endsAt"], ZERO_TIME);
        assert_eq!(a["generatorURL"], "http://rollupd:8080/api/alerts/lat");
        assert_eq!(a["fingerprint"], fingerprint("lat", "api.a"));
        assert_eq!(a["value"], 812.5);
        assert_eq!(a["labels"]["series"], "api.a");
        assert_eq!(a["annotations"]["summary"], "api.a is slow");
        let b = &v["alerts"][1];
        assert_eq!(b["status"], "resolved");
        assert_eq!(b["endsAt"], "2027-01-15T08:01:00Z");
        assert_eq!(b["value"], Value::Null);

        let only_resolved = [out(notice("api.a", Severity::Warning), Some(1))];
        let v: Value =
            serde_json::from_slice(&webhook("ops", "lat", "https://x", &only_resolved)).unwrap();
        assert_eq!(v["status"], "resolved");
        assert_eq!(v["externalURL"], "https://x");
    }

    #[test]
    fn alertmanager_list_ends_firing_alerts_four_repeats_ahead() {
        let alerts = [
            out(notice("api.a", Severity::Warning), None),
            out(notice("api.b", Severity::Warning), Some(1_800_000_030)),
        ];
        let v: Value =
            serde_json::from_slice(&alertmanager(&alerts, 1_800_000_000, 60, 1_900_000_000))
                .unwrap();
        let list = v.as_array().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["endsAt"], "2027-01-15T08:04:00Z");
        assert_eq!(list[1]["endsAt"], "2027-01-15T08:00:30Z");
        assert_eq!(list[0]["startsAt"], "2027-01-15T08:00:00Z");
        // A tag name Alertmanager would refuse is made acceptable.
        assert_eq!(list[0]["labels"]["dc_name"], "east");
        assert!(list[0]["labels"].get("dc-name").is_none());
        assert_eq!(list[0]["annotations"]["summary"], "api.a is slow");
        let mut keys: Vec<&str> = list[0]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            vec![
                "annotations",
                "endsAt",
                "generatorURL",
                "labels",
                "startsAt"
            ]
        );
    }

    #[test]
    fn a_resolve_never_ends_after_the_wall_clock() {
        let alerts = [out(notice("api.a", Severity::Warning), Some(1_800_000_030))];
        let v: Value =
            serde_json::from_slice(&alertmanager(&alerts, 0, 60, 1_800_000_010)).unwrap();
        assert_eq!(v[0]["endsAt"], rfc3339(1_800_000_010));
    }

    #[test]
    fn label_names_alertmanager_accepts() {
        assert_eq!(label_name("ok_1"), "ok_1");
        assert_eq!(label_name("a.b-c"), "a_b_c");
        assert_eq!(label_name("1x"), "_1x");
        assert_eq!(label_name(""), "_");
    }
}
