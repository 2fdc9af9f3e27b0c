//! Dashboards over HTTP: the list, and each one exported for Grafana
//! (`/d/<name>/grafana.json`, Graphite datasource, deploy events as
//! annotations). The dashboards are the files read at start and on SIGHUP
//! (`dashboards/*.toml` beside the working directory, `[dashboards] paths`).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use serde_json::json;

use crate::dashboard::model::{Band, Dashboard, Op, PanelKind, Thresholds};

use super::alerts::may_read;
use super::error::ApiError;
use super::HttpState;

/// `GET /api/dashboards`: name, title, tags and panel count of each.
pub async fn list(
    State(st): State<Arc<HttpState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    may_read(&st, &headers)?;
    let all = st.dashboards.read().clone();
    let list: Vec<serde_json::Value> = all
        .iter()
        .map(|d| {
            serde_json::json!({
                "name": d.name,
                "title": d.title,
                "tags": d.tags,
                "panels": d.panels().count(),
                "grafana": format!("/d/{}/grafana.json", d.name),
            })
        })
        .collect();
    let body = serde_json::to_string(&list).unwrap_or_else(|_| "[]".into());
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

/// `GET /d/<name>/grafana.json`: the dashboard in Grafana's JSON model.
pub async fn grafana(
    State(st): State<Arc<HttpState>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    may_read(&st, &headers)?;
    let all = st.dashboards.read().clone();
    let d = all
        .iter()
        .find(|d| d.name == name)
        .ok_or_else(|| ApiError::NotFound(format!("no dashboard named {name:?}")))?;
    let body = crate::dashboard::grafana::export_string(d);
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

/// `GET /api/dashboards/<name>`: the checked dashboard as the page draws it.
/// Times stay graphite times (`-6h`), refresh is in seconds, and each
/// panel's thresholds are bands `{from, to, color}` (`null` an open end):
/// a panel that names an alert rule gets that rule's warn and crit levels
/// as they are now, since rules reload on their own schedule.
pub async fn detail(
    State(st): State<Arc<HttpState>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    may_read(&st, &headers)?;
    let all = st.dashboards.read().clone();
    let d = all
        .iter()
        .find(|d| d.name == name)
        .ok_or_else(|| ApiError::NotFound(format!("no dashboard named {name:?}")))?;
    let body = page_model(d, |rule| st.alerts.as_ref().and_then(|a| a.rule(rule)));
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response())
}

/// The dashboard's JSON for the page; `rule` looks up an alert rule.
fn page_model(
    d: &Dashboard,
    rule: impl Fn(&str) -> Option<Arc<crate::alert::rule::Rule>>,
) -> serde_json::Value {
    let variables: Vec<serde_json::Value> = d
        .variables
        .iter()
        .map(|v| {
            json!({
                "name": v.name,
                "query": v.query,
                "multi": v.multi,
                "include_all": v.include_all,
                "default": v.default,
            })
        })
        .collect();
    let rows: Vec<serde_json::Value> = d
        .rows
        .iter()
        .map(|r| {
            let panels: Vec<serde_json::Value> = r
                .panels
                .iter()
                .map(|p| {
                    let (bands, alert) = match &p.thresholds {
                        Thresholds::Bands(b) => (b.iter().map(band_json).collect(), None),
                        Thresholds::Alert(name) => (
                            rule(name).map(|r| rule_bands(&r)).unwrap_or_default(),
                            Some(name.clone()),
                        ),
                    };
                    let markdown = match &p.kind {
                        PanelKind::Text { markdown } => Some(markdown.clone()),
                        _ => None,
                    };
                    json!({
                        "title": p.title,
                        "kind": p.kind.as_str(),
                        "targets": p.targets,
                        "unit": p.unit.as_str(),
                        "y_min": p.y_min,
                        "y_max": p.y_max,
                        "log_scale": p.log_scale,
                        "stack": p.stack,
                        "bands": bands,
                        "alert": alert,
                        "events": p.events,
                        "markdown": markdown,
                        "width": p.width,
                    })
                })
                .collect();
            json!({"title": r.title, "panels": panels})
        })
        .collect();
    json!({
        "name": d.name,
        "title": d.title,
        "tags": d.tags,
        "from": d.from,
        "until": d.until,
        "refresh": d.refresh.map(|r| r.as_secs()),
        "variables": variables,
        "rows": rows,
    })
}

fn band_json(b: &Band) -> serde_json::Value {
    match b.op {
        Op::Gt => json!({"from": b.value, "to": null, "color": b.color}),
        Op::Lt => json!({"from": null, "to": b.value, "color": b.color}),
    }
}

/// A rule's levels as bands: warn orange, crit red, on the side the rule
/// fires (both sides for `outside`, between the ends for `inside`).
fn rule_bands(rule: &crate::alert::rule::Rule) -> Vec<serde_json::Value> {
    use crate::alert::rule::{Direction, Kind};
    let finite = |v: f64| if v.is_finite() { json!(v) } else { json!(null) };
    let mut out = Vec::new();
    match &rule.kind {
        Kind::Threshold(t) => {
            for (level, color) in [(&t.warn, "orange"), (&t.crit, "red")] {
                let Some(l) = level else { continue };
                let (low, high) = l.fire;
                match t.direction {
                    Direction::Above => {
                        out.push(json!({"from": finite(low), "to": null, "color": color}))
                    }
                    Direction::Below => {
                        out.push(json!({"from": null, "to": finite(high), "color": color}))
                    }
                    Direction::Outside => {
                        out.push(json!({"from": finite(high), "to": null, "color": color}));
                        out.push(json!({"from": null, "to": finite(low), "color": color}));
                    }
                    Direction::Inside => {
                        out.push(json!({"from": finite(low), "to": finite(high), "color": color}))
                    }
                }
            }
        }
        Kind::Forecast(f) => {
            let color = match f.severity {
                crate::alert::notice::Severity::Warning => "orange",
                _ => "red",
            };
            match f.direction {
                Direction::Below => {
                    out.push(json!({"from": null, "to": f.threshold, "color": color}))
                }
                _ => out.push(json!({"from": f.threshold, "to": null, "color": color})),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::rule::parse_file;

    fn rule(extra: &str) -> Arc<crate::alert::rule::Rule> {
        let text =
            format!("[[rule]]\nname = \"lat\"\ntarget = \"a\"\nreducer = \"p99\"\n{extra}\n");
        Arc::new(parse_file(&text).unwrap().remove(0))
    }

    fn dashboard() -> Dashboard {
        Dashboard::from_toml(
            "web",
            r#"
title = "Web"
from = "-2h"
refresh = "30s"
[[variable]]
name = "host"
query = "servers.*"
multi = true
include_all = true
[[row]]
title = "A"
[[row.panel]]
title = "Own bands"
targets = ["servers.$host.load"]
unit = "ms"
[[row.panel.threshold]]
value = 5
color = "red"
[[row.panel.threshold]]
value = 1
color = "blue"
op = "lt"
[[row.panel]]
title = "Rule's bands"
targets = ["a"]
alert = "lat"
"#,
        )
        .unwrap()
    }

    #[test]
    fn the_page_model_carries_bands_from_the_file_and_from_a_rule() {
        let above = rule("direction = \"above\"\nwarn = 700\ncrit = 800");
        let m = page_model(&dashboard(), |name| (name == "lat").then(|| above.clone()));
        assert_eq!(m["from"], "-2h");
        assert_eq!(m["refresh"], 30);
        assert_eq!(m["variables"][0]["include_all"], true);
        let own = &m["rows"][0]["panels"][0];
        assert_eq!(own["unit"], "ms");
        assert_eq!(
            own["bands"][0],
            json!({"from": 5.0, "to": null, "color": "red"})
        );
        assert_eq!(
            own["bands"][1],
            json!({"from": null, "to": 1.0, "color": "blue"})
        );
        let from_rule = &m["rows"][0]["panels"][1];
        assert_eq!(from_rule["alert"], "lat");
        assert_eq!(
            from_rule["bands"],
            json!([
                {"from": 700.0, "to": null, "color": "orange"},
                {"from": 800.0, "to": null, "color": "red"}
            ])
        );
        let below = rule("direction = \"below\"\ncrit = 10");
        let m = page_model(&dashboard(), |_| Some(below.clone()));
        assert_eq!(
            m["rows"][0]["panels"][1]["bands"],
            json!([{"from": null, "to": 10.0, "color": "red"}])
        );
        let inside = rule("direction = \"inside\"\ncrit = [10, 20]");
        let m = page_model(&dashboard(), |_| Some(inside.clone()));
        assert_eq!(
            m["rows"][0]["panels"][1]["bands"],
            json!([{"from": 10.0, "to": 20.0, "color": "red"}])
        );
        // A rule that is gone draws no band, and says which rule it was.
        let m = page_model(&dashboard(), |_| None);
        assert_eq!(m["rows"][0]["panels"][1]["bands"], json!([]));
        assert_eq!(m["rows"][0]["panels"][1]["alert"], "lat");
    }
}
