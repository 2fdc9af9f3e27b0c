use axum::body::Body;
use axum::http::Request;
use axum::Router;
use tower::ServiceExt;

use super::*;
use crate::config::StorageConfig;
use crate::events::store::{EventLimits, MAX_PER_REQUEST};
use crate::query::eval::Limits;
use crate::store::Store;

const NOW: i64 = 1_795_314_600;

fn app_with(token: Option<&str>, limits: EventLimits) -> (Router, Arc<EventStore>) {
    let store = Arc::new(Store::in_memory(&StorageConfig::default()).unwrap());
    let events = Arc::new(EventStore::open_with(store.kv().clone(), limits).unwrap());
    let state = Arc::new(HttpState {
        source: store.clone(),
        store,
        events: events.clone(),
        api_token: token.map(crate::secret::Secret::from),
        limits: Limits {
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
        dashboards: Default::default(),
    });
    (super::super::router(state), events)
}

/// No token: the case a browser could be tricked into writing in.
fn app() -> (Router, Arc<EventStore>) {
    app_with(None, EventLimits::default())
}

async fn send(app: &Router, req: Request<Body>) -> (StatusCode, String) {
    let r = app.clone().oneshot(req).await.unwrap();
    let status = r.status();
    let body = axum::body::to_bytes(r.into_body(), 1 << 26).await.unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn post(body: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut r = Request::post("/events/").header("host", "graphs.example:8080");
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.body(Body::from(body.to_string())).unwrap()
}

const JSON: (&str, &str) = ("content-type", "application/json");
const DEPLOY: &str = r#"{"what": "web deploy", "tags": "deploy web", "when": 1795314000}"#;

async fn get_json(app: &Router, uri: &str) -> (StatusCode, serde_json::Value, String) {
    let (s, body) = send(app, Request::get(uri).body(Body::empty()).unwrap()).await;
    let v = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
    (s, v, body)
}

/// A cross-site form can post `text/plain` (or a urlencoded form) to any
/// host without a preflight; only JSON is an event.
#[tokio::test]
async fn a_post_must_be_json() {
    let (app, events) = app();
    for ct in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
    ] {
        let h: Vec<(&str, &str)> = ct.iter().map(|c| ("content-type", *c)).collect();
        let (s, msg) = send(&app, post(DEPLOY, &h)).await;
        assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct:?}: {msg}");
        assert!(msg.contains("application/json"), "{msg}");
    }
    assert!(events.is_empty());
    let (s, msg) = send(
        &app,
        post(
            DEPLOY,
            &[("content-type", "Application/JSON; charset=utf-8")],
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{msg}");
    assert_eq!(events.len(), 1);
}

#[tokio::test]
async fn cross_origin_writes_are_refused() {
    let (app, events) = app();
    for (h, why) in [
        (("origin", "http://evil.example"), "Origin"),
        (("origin", "null"), "Origin"),
        (("origin", "http://graphs.example:8081"), "Origin"),
        (("origin", "https://graphs.example"), "Origin"),
        (("sec-fetch-site", "cross-site"), "Sec-Fetch-Site"),
    ] {
        let (s, msg) = send(&app, post(DEPLOY, &[JSON, h])).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{h:?}: {msg}");
        assert!(msg.contains(why), "{msg}");
    }
    assert!(events.is_empty());
    // The server's own pages, and clients that are not browsers.
    for h in [
        ("origin", "http://graphs.example:8080"),
        ("origin", "http://GRAPHS.example:8080"),
        ("sec-fetch-site", "same-origin"),
        ("user-agent", "curl/8"),
    ] {
        let (s, msg) = send(&app, post(DEPLOY, &[JSON, h])).await;
        assert_eq!(s, StatusCode::OK, "{h:?}: {msg}");
    }
    // A default port may be left out of either side.
    let on_80 = Request::post("/events/")
        .header("host", "graphs.example")
        .header("origin", "http://graphs.example:80")
        .header("content-type", "application/json")
        .body(Body::from(DEPLOY))
        .unwrap();
    assert_eq!(send(&app, on_80).await.0, StatusCode::OK);
    assert_eq!(events.len(), 5);

    let del = |id: u64, h: (&str, &str)| {
        Request::delete(format!("/events/{id}"))
            .header("host", "graphs.example:8080")
            .header(h.0, h.1)
            .body(Body::empty())
            .unwrap()
    };
    let (s, msg) = send(&app, del(1, ("origin", "http://evil.example"))).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{msg}");
    let (s, _) = send(&app, del(1, ("sec-fetch-site", "cross-site"))).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(events.len(), 5);
    let (s, _) = send(&app, del(1, ("origin", "http://graphs.example:8080"))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(events.len(), 4);
}

#[tokio::test]
async fn bad_fields_are_a_400_naming_the_field() {
    let (app, events) = app();
    let long_what = serde_json::json!({"what": "w".repeat(300)}).to_string();
    let long_data = serde_json::json!({"what": "w", "data": "d".repeat(70_000)}).to_string();
    let many_tags = serde_json::json!({"what": "w", "tags": vec!["t"; 101]}).to_string();
    for (body, field) in [
        (long_what.as_str(), "\"what\""),
        (long_data.as_str(), "\"data\""),
        (many_tags.as_str(), "\"tags\""),
        (r#"{"what": "w", "when": 1e300}"#, "\"when\""),
        (r#"{"what": "w", "when": -1e300}"#, "\"when\""),
        (r#"{"what": "w", "when": 1795314000000}"#, "\"when\""),
        (r#"{"what": "w", "when": "soon"}"#, "\"when\""),
        (r#"{"what": "w", "tags": 1}"#, "\"tags\""),
        (r#"{"what": 5}"#, "\"what\""),
        (r#"[1]"#, "object"),
    ] {
        let (s, msg) = send(&app, post(body, &[JSON])).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body:.80}: {msg}");
        assert!(msg.contains(field), "{field}: {msg}");
    }
    assert!(events.is_empty());
    let (_, metrics) = send(&app, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert!(
        metrics.contains("rollupd_events_refused_total{reason=\"invalid\"} 6\n"),
        "{metrics}"
    );
    // A fractional `when` is floored, as graphite-web keeps whole seconds.
    let (s, _) = send(
        &app,
        post(r#"{"what": "w", "when": 1795314000.9}"#, &[JSON]),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (_, v, _) = get_json(&app, "/events/get_data").await;
    assert_eq!(v[0]["when"], 1795314000);
}

#[tokio::test]
async fn a_full_store_refuses_with_507_and_a_big_read_with_422() {
    let limits = EventLimits {
        max_events: 1,
        retention: std::time::Duration::from_secs(1 << 30),
    };
    let (small, _) = app_with(None, limits);
    assert_eq!(send(&small, post(DEPLOY, &[JSON])).await.0, StatusCode::OK);
    let (s, msg) = send(&small, post(DEPLOY, &[JSON])).await;
    assert_eq!(s, StatusCode::INSUFFICIENT_STORAGE, "{msg}");
    assert!(msg.contains("max_events"), "{msg}");

    let (app, events) = app();
    let many = (0..=i64::try_from(MAX_PER_REQUEST).unwrap())
        .map(|k| QueuedEvent {
            when: NOW - k,
            what: "e".into(),
            tags: vec!["deploy".into()],
            data: String::new(),
        })
        .collect();
    assert!(events.add_all(many, None).iter().all(|r| r.is_ok()));
    let (s, _, body) = get_json(
        &app,
        &format!("/events/get_data?from={}&until={NOW}", NOW - 100_000),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body:.200}");
    assert!(body.contains(&MAX_PER_REQUEST.to_string()), "{body}");
    let (s, v, _) = get_json(
        &app,
        &format!("/events/get_data?from={}&until={NOW}", NOW - 9),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v.as_array().unwrap().len(), 10);
}

/// Each `events=` value of a graph is a scan of its window: no more of
/// them than there are colours.
#[tokio::test]
async fn a_graph_marks_at_most_six_groups_of_events() {
    let (app, _) = app();
    let uri = |n: usize| {
        let groups: String = (0..n).map(|k| format!("&events=t{k}")).collect();
        format!(
            "/render?target=x&format=svg&from={}&until={NOW}{groups}",
            NOW - 60
        )
    };
    let (s, body) = send(&app, Request::get(uri(6)).body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::OK, "{body:.200}");
    let (s, body) = send(&app, Request::get(uri(7)).body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body.contains("at most 6 events parameters"), "{body}");
}

/// graphite-web 1.1.10's `get_data`: every tag must match unless
/// `set=union`; only the last `tags` parameter counts; tags are split on
/// spaces only.
#[tokio::test]
async fn get_data_selects_tags_as_graphite_web() {
    let (app, _) = app();
    for (what, tags, when) in [
        ("deploy web 1040", r#"["deploy", "web"]"#, NOW - 3000),
        ("incident", r#""incident web""#, NOW - 2000),
        ("deploy db 77", r#""deploy db""#, NOW - 1000),
        ("config change", r#"["config"]"#, NOW - 500),
    ] {
        let body = format!(r#"{{"what": "{what}", "tags": {tags}, "when": {when}}}"#);
        assert_eq!(send(&app, post(&body, &[JSON])).await.0, StatusCode::OK);
    }
    let whats = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| e["what"].as_str().unwrap().to_string())
            .collect()
    };
    let q = |rest: &str| format!("/events/get_data?from={}&until={NOW}{rest}", NOW - 4000);
    for (rest, want) in [
        (
            "",
            &[
                "deploy web 1040",
                "incident",
                "deploy db 77",
                "config change",
            ][..],
        ),
        ("&tags=deploy", &["deploy web 1040", "deploy db 77"]),
        ("&tags=deploy%20web", &["deploy web 1040"]),
        ("&tags=web+deploy", &["deploy web 1040"]),
        ("&tags=deploy%20web&set=intersection", &["deploy web 1040"]),
        ("&tags=deploy%20nothing", &[]),
        (
            "&tags=db%20config&set=union",
            &["deploy db 77", "config change"],
        ),
        (
            "&tags=web%20nothing&set=union",
            &["deploy web 1040", "incident"],
        ),
        // The last `tags` only, as Django's QueryDict.get reads it.
        ("&tags=db&tags=incident", &["incident"]),
        // Spaces only: "db,config" is one tag no event has.
        ("&tags=db,config&set=union", &[]),
        ("&tags=", &[]),
        ("&tags=%20%20deploy%20%20db", &["deploy db 77"]),
    ] {
        let (s, v, body) = get_json(&app, &q(rest)).await;
        assert_eq!(s, StatusCode::OK, "{rest}: {body}");
        assert_eq!(whats(&v), want, "{rest}");
    }
    let (s, _, body) = get_json(&app, &q("&tags=deploy&set=xor")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body.contains("union, intersection"), "{body}");
}
