//! Dashboards over HTTP: the list, each one as the page draws it, its spec
//! as written, its Grafana export (`/d/<name>/grafana.json`, Graphite
//! datasource, deploy events as annotations); and, behind the API token,
//! saving, deleting and importing a Grafana dashboard into the store. The
//! files (`dashboards/*.toml` beside the working directory,
//! `[dashboards] paths`) are read at start, on SIGHUP and when one
//! changes; their names cannot be saved over (409).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use serde_json::json;

use crate::dashboard::model::{Band, Dashboard, DashboardSpec, Op, PanelKind, Thresholds};
use crate::dashboard::registry::{SaveError, Saved};

use super::alerts::may_read;
use super::error::ApiError;
use super::events::{authorized, same_origin};
use super::render::Params;
use super::HttpState;

/// A refusal as the other handlers word theirs (plain text, one line):
/// the API's own, or one with a status `ApiError` has no variant for.
pub enum Refused {
    Api(ApiError),
    Status(StatusCode, String),
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::Api(e) => e.into_response(),
            Refused::Status(status, message) => (status, format!("{message}\n")).into_response(),
        }
    }
}

impl From<ApiError> for Refused {
    fn from(e: ApiError) -> Refused {
        Refused::Api(e)
    }
}

fn refuse(status: StatusCode, message: impl std::fmt::Display) -> Refused {
    Refused::Status(status, message.to_string())
}

fn save_error(e: SaveError) -> Refused {
    let status = match &e {
        SaveError::Invalid(_) | SaveError::BadName(_) => StatusCode::BAD_REQUEST,
        SaveError::File(..) => StatusCode::CONFLICT,
        SaveError::NotFound(_) => StatusCode::NOT_FOUND,
        // The caps, as alert rules' own (422): the request is fine, the
        // store is at its bound.
        SaveError::Full(_) => StatusCode::UNPROCESSABLE_ENTITY,
        SaveError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        SaveError::NoStore | SaveError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    refuse(status, e)
}

/// Writes need the API token and no cross-site origin (as alert rules).
fn may_write(st: &HttpState, headers: &HeaderMap) -> Result<(), Refused> {
    authorized(st, headers)?;
    Ok(same_origin(headers)?)
}

/// The body must be JSON (415 for another content type; none is taken
/// as JSON, as curl's `-d` sends a form type only when asked).
fn json_body(headers: &HeaderMap) -> Result<(), Refused> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.is_empty() && !ct.starts_with("application/json") {
        return Err(refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("send the body as application/json, not {ct:?}"),
        ));
    }
    Ok(())
}

fn json_reply(status: StatusCode, v: &serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

fn find(st: &HttpState, name: &str) -> Result<Dashboard, ApiError> {
    st.dashboards
        .get(name)
        .ok_or_else(|| ApiError::NotFound(format!("no dashboard named {name:?}")))
}

/// `GET /api/dashboards`: name, title, tags, panel count and source
/// (`file` or `store`) of each.
///
/// With `?errors=1` the answer is `{"dashboards": [...], "file_errors":
/// [...]}`: the list, and why each file (or stored dashboard) that is not
/// served as written was refused, as the log says it (file, panel, field).
/// Without it, the plain list, as before.
pub async fn list(
    State(st): State<Arc<HttpState>>,
    headers: HeaderMap,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Result<Response, ApiError> {
    may_read(&st, &headers)?;
    let with_errors = match q.get("errors").map(String::as_str) {
        None | Some("0") | Some("false") => false,
        Some("1") | Some("true") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "errors must be 1 or 0, not {other:?}"
            )))
        }
    };
    let all = st.dashboards.read().clone();
    let list: Vec<serde_json::Value> = all
        .iter()
        .map(|d| {
            serde_json::json!({
                "name": d.name,
                "title": d.title,
                "tags": d.tags,
                "panels": d.panels().count(),
                "source": d.source.as_str(),
                "grafana": format!("/d/{}/grafana.json", d.name),
            })
        })
        .collect();
    let body = if with_errors {
        serde_json::json!({"dashboards": list, "file_errors": st.dashboards.errors()}).to_string()
    } else {
        serde_json::to_string(&list).unwrap_or_else(|_| "[]".into())
    };
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
    let d = find(&st, &name)?;
    let body = crate::dashboard::grafana::export_string(&d);
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
    let d = find(&st, &name)?;
    let body = page_model(&d, |rule| st.alerts.as_ref().and_then(|a| a.rule(rule)));
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response())
}

/// `GET /api/dashboards/<name>/spec`: the dashboard as written (the TOML's
/// fields as JSON, what `PUT` takes), and where it comes from.
pub async fn spec(
    State(st): State<Arc<HttpState>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    may_read(&st, &headers)?;
    let d = find(&st, &name)?;
    let mut r = json_reply(
        StatusCode::OK,
        &serde_json::to_value(&*d.spec).unwrap_or_default(),
    );
    if let Ok(v) = header::HeaderValue::from_str(d.source.as_str()) {
        r.headers_mut().insert("x-rollupd-source", v);
    }
    Ok(r)
}

/// `PUT /api/dashboards/<name>`: a spec (the TOML's fields as JSON) saved
/// in the store, checked as a file is. 201 created, 200 replaced; 400 for
/// a bad name or a check that fails (naming panel and field); 409 when a
/// file holds the name; 413 past a file's size; 422 at the store's caps.
pub async fn put(
    State(st): State<Arc<HttpState>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, Refused> {
    may_write(&st, &headers)?;
    json_body(&headers)?;
    let spec: DashboardSpec = serde_json::from_slice(&body)
        .map_err(|e| refuse(StatusCode::BAD_REQUEST, format!("bad JSON body: {e}")))?;
    let saved = st.dashboards.put(&name, spec).map_err(save_error)?;
    let status = match saved {
        Saved::Created => StatusCode::CREATED,
        Saved::Replaced => StatusCode::OK,
    };
    Ok(json_reply(status, &saved_json(&st, &name, &[])))
}

fn saved_json(
    st: &HttpState,
    name: &str,
    left_out: &[crate::dashboard::grafana::LeftOut],
) -> serde_json::Value {
    let d = st.dashboards.get(name);
    json!({
        "name": name,
        "title": d.as_ref().map(|d| d.title.clone()),
        "panels": d.as_ref().map(|d| d.panels().count()),
        "source": "store",
        "url": format!("/d/{name}"),
        "left_out": left_out,
    })
}

/// `DELETE /api/dashboards/<name>`: 204; 404 when the store has none by
/// that name, 409 when it is a file's.
pub async fn delete(
    State(st): State<Arc<HttpState>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, Refused> {
    may_write(&st, &headers)?;
    st.dashboards.delete(&name).map_err(save_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/dashboards/import[?name=<name>]`: a Grafana dashboard (bare
/// or as the API's `{"dashboard": ...}`) with Graphite targets, saved in
/// the store under `name`, else its `uid`, else a slug of its title.
/// Answers the name and `left_out`: each panel that could not be carried
/// over (kept as a text note), with why. 400 naming the problem for JSON
/// that is not a dashboard rollupd can read; otherwise as `PUT`.
pub async fn import(
    State(st): State<Arc<HttpState>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Result<Response, Refused> {
    may_write(&st, &headers)?;
    json_body(&headers)?;
    let p = Params::from_parts(q, vec![])?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| refuse(StatusCode::BAD_REQUEST, "the body is not UTF-8"))?;
    let (d, left_out) = crate::dashboard::grafana::import_report(text)
        .map_err(|e| refuse(StatusCode::BAD_REQUEST, format!("not imported: {e}")))?;
    let name = p.get("name").map(str::to_string).unwrap_or(d.name.clone());
    let saved = st
        .dashboards
        .put(&name, (*d.spec).clone())
        .map_err(save_error)?;
    let status = match saved {
        Saved::Created => StatusCode::CREATED,
        Saved::Replaced => StatusCode::OK,
    };
    Ok(json_reply(status, &saved_json(&st, &name, &left_out)))
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

    // ----- over HTTP, through the router -----

    use crate::config::{DashboardsConfig, StorageConfig};
    use crate::dashboard::registry::Dashboards;
    use crate::dashboard::store::DashboardStore;
    use crate::store::Store;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    const FILED: &str =
        "title = \"Filed\"\n[[row]]\n[[row.panel]]\ntitle = \"a\"\ntargets = [\"a.b\"]\n";

    struct App {
        router: axum::Router,
        store: Arc<Store>,
        repo: tempfile::TempDir,
    }

    fn app_on(store: Arc<Store>, repo: tempfile::TempDir) -> App {
        let dashboards = Dashboards::open(
            repo.path(),
            &DashboardsConfig::default(),
            Some(DashboardStore::new(store.kv().clone())),
        );
        let events = Arc::new(crate::events::store::EventStore::open(store.kv().clone()).unwrap());
        let state = Arc::new(HttpState {
            source: store.clone(),
            store: store.clone(),
            events,
            api_token: Some("s3cret".into()),
            limits: crate::query::eval::Limits {
                max_series: 100,
                max_points: 1_000_000,
                deadline: None,
            },
            default_tz: chrono_tz::Tz::UTC,
            telemetry: Arc::new(crate::telemetry::Telemetry::new()),
            render_latency: Default::default(),
            gate: crate::http::gate::Gate::new(4, std::time::Duration::from_secs(30)),
            read_token: None,
            alerts: None,
            dashboards,
        });
        App {
            router: super::super::router(state),
            store,
            repo,
        }
    }

    fn app() -> App {
        let repo = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(repo.path().join("dashboards")).unwrap();
        std::fs::write(repo.path().join("dashboards/filed.toml"), FILED).unwrap();
        app_on(
            Arc::new(Store::in_memory(&StorageConfig::default()).unwrap()),
            repo,
        )
    }

    async fn call(
        app: &App,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (StatusCode, String) {
        let mut req = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = app
            .router
            .clone()
            .oneshot(req.body(Body::from(body.to_string())).unwrap())
            .await
            .unwrap();
        let status = r.status();
        let body = axum::body::to_bytes(r.into_body(), 1 << 24).await.unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    const AUTH: (&str, &str) = ("authorization", "Bearer s3cret");
    const JSON: (&str, &str) = ("content-type", "application/json");

    fn body(title: &str) -> String {
        json!({
            "title": title,
            "tags": ["mine"],
            "refresh": "30s",
            "variable": [{"name": "host", "query": "servers.*"}],
            "row": [{"title": "R", "panel": [{
                "title": "P", "targets": ["servers.$host.cpu"], "unit": "ms",
                "threshold": [{"value": 5, "color": "red"}]
            }]}]
        })
        .to_string()
    }

    #[tokio::test]
    async fn the_list_says_why_a_file_was_refused_when_asked() {
        let repo = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(repo.path().join("dashboards")).unwrap();
        std::fs::write(repo.path().join("dashboards/filed.toml"), FILED).unwrap();
        std::fs::write(
            repo.path().join("dashboards/broken.toml"),
            "title = \"B\"\n[[row]]\n[[row.panel]]\ntitle = \"x\"\ntargets = [\"sum(a\"]\n",
        )
        .unwrap();
        let a = app_on(
            Arc::new(Store::in_memory(&StorageConfig::default()).unwrap()),
            repo,
        );
        // The plain list by default, without the broken file.
        let (s, b) = call(&a, "GET", "/api/dashboards", &[], "").await;
        assert_eq!(s, StatusCode::OK);
        let l: serde_json::Value = serde_json::from_str(&b).unwrap();
        assert_eq!(l.as_array().map(Vec::len), Some(1), "{b}");
        assert_eq!(l[0]["name"], "filed");
        // Asked, the list and why the other file was refused.
        let (s, b) = call(&a, "GET", "/api/dashboards?errors=1", &[], "").await;
        assert_eq!(s, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["dashboards"][0]["name"], "filed", "{b}");
        let errors = v["file_errors"].as_array().unwrap();
        assert_eq!(errors.len(), 1, "{b}");
        let e = errors[0].as_str().unwrap();
        assert!(e.contains("broken.toml") && e.contains("targets[0]"), "{e}");
        let (s, b) = call(&a, "GET", "/api/dashboards?errors=maybe", &[], "").await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
        assert!(b.contains("errors must be 1 or 0"), "{b}");
    }

    #[tokio::test]
    async fn saved_dashboards_are_checked_listed_served_and_deleted() {
        let a = app();
        let w = [AUTH, JSON];
        let (s, b) = call(&a, "PUT", "/api/dashboards/mine", &w, &body("Mine")).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&b).unwrap()["url"],
            "/d/mine"
        );
        let (s, _) = call(&a, "PUT", "/api/dashboards/mine", &w, &body("Mine 2")).await;
        assert_eq!(s, StatusCode::OK);
        // The list holds both, with their sources.
        let (s, b) = call(&a, "GET", "/api/dashboards", &[], "").await;
        assert_eq!(s, StatusCode::OK);
        let l: serde_json::Value = serde_json::from_str(&b).unwrap();
        assert_eq!(l[0]["name"], "filed");
        assert_eq!(l[0]["source"], "file");
        assert_eq!(l[1]["name"], "mine");
        assert_eq!(l[1]["source"], "store");
        assert_eq!(l[1]["title"], "Mine 2");
        // The page model and the Grafana export serve it.
        let (s, b) = call(&a, "GET", "/api/dashboards/mine", &[], "").await;
        assert_eq!(s, StatusCode::OK);
        let m: serde_json::Value = serde_json::from_str(&b).unwrap();
        assert_eq!(m["rows"][0]["panels"][0]["unit"], "ms");
        assert_eq!(m["refresh"], 30);
        let (s, b) = call(&a, "GET", "/d/mine/grafana.json", &[], "").await;
        assert_eq!(s, StatusCode::OK);
        assert!(b.contains("servers.$host.cpu"), "{b}");
        // The spec comes back as written.
        let (s, b) = call(&a, "GET", "/api/dashboards/mine/spec", &[], "").await;
        assert_eq!(s, StatusCode::OK);
        // (As serde writes the spec: defaults spelled out, numbers as f64.)
        let got: DashboardSpec = serde_json::from_str(&b).unwrap();
        let sent: DashboardSpec = serde_json::from_str(&body("Mine 2")).unwrap();
        assert_eq!(got, sent);
        assert!(
            b.contains("\"variable\":[{") && b.contains("\"panel\":[{"),
            "{b}"
        );
        let (s, b) = call(&a, "GET", "/api/dashboards/filed/spec", &[], "").await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&b).unwrap()["title"],
            "Filed"
        );
        // A file's name: 409 both ways.
        let (s, b) = call(&a, "PUT", "/api/dashboards/filed", &w, &body("x")).await;
        assert_eq!(s, StatusCode::CONFLICT, "{b}");
        assert!(b.contains("filed.toml"), "{b}");
        let (s, _) = call(&a, "DELETE", "/api/dashboards/filed", &w, "").await;
        assert_eq!(s, StatusCode::CONFLICT);
        // Saved in the store: a new registry on the same store has it.
        let again = app_on(a.store.clone(), tempfile::tempdir().unwrap());
        let (s, b) = call(&again, "GET", "/api/dashboards", &[], "").await;
        assert_eq!(s, StatusCode::OK);
        assert!(b.contains("\"mine\""), "{b}");
        let (s, _) = call(&a, "DELETE", "/api/dashboards/mine", &w, "").await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, _) = call(&a, "DELETE", "/api/dashboards/mine", &w, "").await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = call(&a, "GET", "/api/dashboards/mine/spec", &[], "").await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        drop(a.repo);
    }

    #[tokio::test]
    async fn writes_are_guarded_and_bad_bodies_named() {
        let a = app();
        let (s, _) = call(&a, "PUT", "/api/dashboards/x", &[JSON], &body("X")).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let bad_token = ("authorization", "Bearer nope");
        let (s, _) = call(&a, "DELETE", "/api/dashboards/x", &[bad_token], "").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let cross = ("origin", "https://evil.example");
        let (s, _) = call(
            &a,
            "PUT",
            "/api/dashboards/x",
            &[AUTH, JSON, cross],
            &body("X"),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let form = ("content-type", "application/x-www-form-urlencoded");
        let (s, _) = call(&a, "PUT", "/api/dashboards/x", &[AUTH, form], &body("X")).await;
        assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let (s, b) = call(
            &a,
            "PUT",
            "/api/dashboards/x",
            &[AUTH, JSON],
            "{\"titel\": 1}",
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(b.contains("titel"), "{b}");
        // Checked as a file is: the panel and the field are named.
        let broken = body("X").replace("servers.$host.cpu", "sum(");
        let (s, b) = call(&a, "PUT", "/api/dashboards/x", &[AUTH, JSON], &broken).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(
            b.contains("row 0 panel 0 (\"P\")") && b.contains("targets[0]"),
            "{b}"
        );
        let undefined = body("X").replace("$host", "$dc");
        let (s, b) = call(&a, "PUT", "/api/dashboards/x", &[AUTH, JSON], &undefined).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(b.contains("$dc"), "{b}");
        for name in ["a%20b", "-x", "import", &"n".repeat(65)] {
            let (s, b) = call(
                &a,
                "PUT",
                &format!("/api/dashboards/{name}"),
                &[AUTH, JSON],
                &body("X"),
            )
            .await;
            assert!(
                s == StatusCode::BAD_REQUEST || s == StatusCode::METHOD_NOT_ALLOWED,
                "{name}: {s} {b}"
            );
        }
        // Past the request body bound: 413.
        let huge = format!(
            "{{\"title\": \"{}\"}}",
            "x".repeat(super::super::MAX_BODY_BYTES)
        );
        let (s, _) = call(&a, "PUT", "/api/dashboards/x", &[AUTH, JSON], &huge).await;
        assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
        let (s, _) = call(&a, "GET", "/api/dashboards/x", &[], "").await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }

    /// A hand-written Grafana dashboard with a panel rollupd does not draw.
    const GRAFANA: &str = r#"{
      "dashboard": {
        "uid": "ops-board", "title": "Ops board", "tags": ["ops"],
        "time": {"from": "now-3h", "to": "now"},
        "panels": [
          {"type": "timeseries", "title": "Requests", "gridPos": {"x": 0, "y": 0, "w": 12, "h": 8},
           "datasource": {"type": "graphite", "uid": "g"},
           "targets": [{"refId": "A", "target": "sumSeries(web.*.requests)"}]},
          {"type": "piechart", "title": "Share", "gridPos": {"x": 12, "y": 0, "w": 12, "h": 8},
           "datasource": {"type": "graphite", "uid": "g"},
           "targets": [{"refId": "A", "target": "web.*.share"}]}
        ]
      }
    }"#;

    #[tokio::test]
    async fn a_grafana_dashboard_is_imported_with_what_was_left_out() {
        let a = app();
        let w = [AUTH, JSON];
        let (s, b) = call(&a, "POST", "/api/dashboards/import", &[JSON], GRAFANA).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
        let (s, b) = call(&a, "POST", "/api/dashboards/import", &w, GRAFANA).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        let r: serde_json::Value = serde_json::from_str(&b).unwrap();
        assert_eq!(r["name"], "ops-board");
        assert_eq!(r["panels"], 2);
        let left = r["left_out"].as_array().unwrap();
        assert_eq!(left.len(), 1, "{b}");
        assert_eq!(left[0]["title"], "Share");
        assert_eq!(left[0]["kind"], "piechart");
        assert!(left[0]["why"].as_str().unwrap().contains("piechart"));
        let (s, b) = call(&a, "GET", "/api/dashboards/ops-board", &[], "").await;
        assert_eq!(s, StatusCode::OK);
        let m: serde_json::Value = serde_json::from_str(&b).unwrap();
        assert_eq!(m["from"], "-3h");
        assert_eq!(
            m["rows"][0]["panels"][0]["targets"][0],
            "sumSeries(web.*.requests)"
        );
        assert_eq!(m["rows"][0]["panels"][1]["kind"], "text");
        // `?name=` names it; the committed exports import whole.
        for file in ["rollupd", "web-service"] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("dashboards/{file}.json"));
            let text = std::fs::read_to_string(path).unwrap();
            let uri = format!("/api/dashboards/import?name=copy-of-{file}");
            let (s, b) = call(&a, "POST", &uri, &w, &text).await;
            assert_eq!(s, StatusCode::CREATED, "{file}: {b}");
            let r: serde_json::Value = serde_json::from_str(&b).unwrap();
            assert_eq!(r["left_out"], json!([]), "{file}");
            let (s, _) = call(
                &a,
                "GET",
                &format!("/d/copy-of-{file}/grafana.json"),
                &[],
                "",
            )
            .await;
            assert_eq!(s, StatusCode::OK);
        }
        // Under a file's name: 409.
        let (s, _) = call(&a, "POST", "/api/dashboards/import?name=filed", &w, GRAFANA).await;
        assert_eq!(s, StatusCode::CONFLICT);
        // Not JSON, not a dashboard, another datasource: 400 naming it.
        let (s, b) = call(&a, "POST", "/api/dashboards/import", &w, "{oops").await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(b.contains("not JSON"), "{b}");
        let (s, b) = call(&a, "POST", "/api/dashboards/import", &w, "[1]").await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(b.contains("object"), "{b}");
        let prom = GRAFANA
            .replace("\"target\": \"web.*.share\"", "\"expr\": \"rate(x[5m])\"")
            .replace("\"piechart\"", "\"timeseries\"");
        let (s, b) = call(&a, "POST", "/api/dashboards/import?name=p", &w, &prom).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(b.contains("\"Share\"") && b.contains("targets[0]"), "{b}");
    }
}
