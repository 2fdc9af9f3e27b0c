//! The HTTP API on `[server] http`: axum on a small tokio runtime of its
//! own, so nothing async reaches the ingest or flush threads. Handlers call
//! the query stage and the encoders; [`error`] is the one place that turns
//! errors into status codes.

pub mod alerts;
pub mod conn;
pub mod dashboards;
pub mod error;
pub mod events;
pub mod gate;
pub mod ops;
pub mod pages;
pub mod render;
pub mod reply;
pub mod tags;

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::routing::{delete, get, post, put};
use axum::Router;

use hyper_util::rt::TokioIo;

use crate::query::eval::Limits;
use crate::store::Store;
use crate::telemetry::Listener;

/// What the handlers share.
pub struct HttpState {
    /// The embedded store: its own figures (`/metrics`, `/health`).
    pub store: Arc<Store>,
    /// What render, find and the tag listings read: the embedded store, or
    /// ClickHouse with `[storage] engine = "clickhouse"`.
    pub source: Arc<dyn crate::store::source::SeriesSource>,
    pub events: Arc<crate::events::store::EventStore>,
    /// Writes need `Authorization: Bearer <token>` when set.
    pub api_token: Option<crate::secret::Secret>,
    pub limits: Limits,
    pub default_tz: chrono_tz::Tz,
    pub telemetry: Arc<crate::telemetry::Telemetry>,
    /// Shared with the flush, which writes its figures as series.
    pub render_latency: Arc<ops::RenderLatency>,
    /// The bound on concurrent renders and their deadline.
    pub gate: gate::Gate,
    /// When set, alerting reads need it (or `api_token`).
    pub read_token: Option<crate::secret::Secret>,
    /// Alerting, when the daemon runs it.
    pub alerts: Option<Arc<crate::alert::engine::Alerts>>,
    /// The dashboards: files (read at start, on SIGHUP and when one
    /// changes) and those saved over HTTP. `dashboards.read()` is the
    /// list served, swapped whole, so a request sees one list or the other.
    pub dashboards: Arc<crate::dashboard::registry::Dashboards>,
}

/// The largest request body read (a POSTed render form, an event): what
/// graphite-web's Django reads by default (2.5 MB), rounded down. Past it,
/// a 413.
pub const MAX_BODY_BYTES: usize = 2 << 20;

pub fn router(state: Arc<HttpState>) -> Router {
    Router::new()
        .route("/render", get(render::render_get).post(render::render_post))
        .route(
            "/render/",
            get(render::render_get).post(render::render_post),
        )
        .route(
            "/metrics/find",
            get(render::find_get).post(render::find_post),
        )
        .route(
            "/metrics/find/",
            get(render::find_get).post(render::find_post),
        )
        .route(
            "/metrics/expand",
            get(render::expand_get).post(render::expand_post),
        )
        .route("/events", post(events::post))
        .route("/events/", post(events::post))
        .route("/events/get_data", get(events::get_data))
        .route("/events/{id}", delete(events::delete))
        .route("/tags", get(tags::list))
        .route("/tags/", get(tags::list))
        .route("/tags/findSeries", get(tags::find_series))
        .route("/tags/autoComplete/tags", get(tags::autocomplete_tags))
        .route("/tags/autoComplete/values", get(tags::autocomplete_values))
        .route("/tags/{tag}", get(tags::detail))
        .route("/functions", get(tags::functions))
        .route("/functions/", get(tags::functions))
        .route("/functions/{name}", get(tags::function))
        .route("/api/alerts", get(alerts::list))
        .route("/api/alerts/test", post(alerts::test))
        .route("/api/alerts/review", get(alerts::review))
        .route(
            "/api/alerts/rules/{name}",
            put(alerts::put_rule).delete(alerts::delete_rule),
        )
        .route("/api/alerts/{name}", get(alerts::detail))
        .route("/api/alerts/{name}/history", get(alerts::history))
        .route(
            "/api/silences",
            get(alerts::silences).post(alerts::add_silence),
        )
        .route("/api/silences/{id}", delete(alerts::delete_silence))
        .route("/api/dashboards", get(dashboards::list))
        .route("/api/dashboards/import", post(dashboards::import))
        .route(
            "/api/dashboards/{name}",
            get(dashboards::detail)
                .put(dashboards::put)
                .delete(dashboards::delete),
        )
        .route("/api/dashboards/{name}/spec", get(dashboards::spec))
        .route("/d/{name}/grafana.json", get(dashboards::grafana))
        .route("/", get(pages::index))
        .route("/d/{name}", get(pages::dashboard))
        .route("/explore", get(pages::explore))
        .route("/ui/{*file}", get(pages::asset))
        .route("/check", get(alerts::check_adhoc))
        .route("/check/{rule}", get(alerts::check_rule))
        .route("/health", get(ops::health))
        .route("/metrics", get(ops::metrics))
        .route("/version", get(|| async { "1.1.10" }))
        .route("/version/", get(|| async { "1.1.10" }))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::map_response(reply::nosniff))
        .layer(axum::middleware::from_fn(pages::mark_compressible))
        .layer(pages::compression())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ops::count_status,
        ))
        .with_state(state)
}

/// What the HTTP listener allows (`[server]` in the config).
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    /// Connections served at once; more are closed unread and counted.
    pub max_connections: usize,
    /// A connection must send a complete request head within this long
    /// (from connecting, or from its previous reply), and each piece of a
    /// request body within this long of the last: idle keep-alive
    /// connections, trickled headers and bodies that never come are not
    /// held.
    pub read_timeout: Duration,
    /// At shutdown, how long replies in progress may take.
    pub drain: Duration,
}

/// Serves until `shutdown` is set, then lets replies in progress finish for
/// at most `limits.drain`; whatever is still open then is dropped. Without
/// the bound one slow or stalled client (a streamed json reply read a byte
/// at a time) would hold the process, and whatever still runs after the
/// HTTP thread in the shutdown order, forever. The thread ends within
/// `drain` (plus one look at the flag) of `shutdown`.
pub fn start(
    listener: TcpListener,
    state: Arc<HttpState>,
    limits: ServeLimits,
    shutdown: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    listener.set_nonblocking(true)?;
    // Every blocking task holds a render slot (http::gate), so the pool
    // never needs more threads than there are slots; tokio's default
    // would let it grow to 512.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(state.gate.max())
        .thread_name("http")
        .enable_io()
        .enable_time()
        .build()?;
    std::thread::Builder::new()
        .name("http-main".into())
        .spawn(move || {
            rt.block_on(serve(listener, state, limits, shutdown));
            // Dropping the runtime would wait for every blocking render
            // thread; this drops the connection tasks (so a streaming
            // writer's channel closes and it ends) and waits for none.
            rt.shutdown_background();
        })
}

/// The accept loop. hyper's connection builder is used directly rather than
/// `axum::serve`, which has no connection cap and no timer (so hyper's
/// header timeout never ran and an idle connection was held forever).
async fn serve(
    listener: TcpListener,
    state: Arc<HttpState>,
    limits: ServeLimits,
    shutdown: Arc<AtomicBool>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "cannot serve HTTP");
            return;
        }
    };
    let telemetry = state.telemetry.clone();
    let reply_idle = state.gate.timeout() + Duration::from_secs(10);
    let app = router(state);
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.read_timeout);
    let asked = || async {
        while !shutdown.load(Relaxed) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    loop {
        let stream = tokio::select! {
            () = asked() => break,
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors, say: wait rather than spin.
                    tracing::warn!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            telemetry.connection_refused(Listener::Http, limits.max_connections);
            continue;
        };
        let service = hyper_util::service::TowerToHyperService::new(
            tower_http::timeout::RequestBodyTimeout::new(app.clone(), limits.read_timeout),
        );
        let _ = stream.set_nodelay(true);
        // A request is answered within render_timeout; a connection that
        // has had no byte of reply for that (and a margin) since its
        // request began sends no whole request or reads no reply.
        let stream = conn::Conn::new(stream, reply_idle);
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            // An error is the client's going away or its header timeout.
            let _ = conn.await;
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            drain = ?limits.drain,
            "HTTP replies still open at the shutdown deadline are dropped"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{header, Request, StatusCode};
    use tower::ServiceExt;

    use crate::config::StorageConfig;
    use crate::store::Point;

    const NOW: i64 = 1_795_314_600;

    fn app() -> Router {
        app_with(
            Limits {
                max_series: 2,
                max_points: 1_000_000,
                deadline: None,
            },
            gate::Gate::new(4, Duration::from_secs(30)),
        )
    }

    fn app_with_max_series(max_series: usize) -> Router {
        app_with(
            Limits {
                max_series,
                max_points: 1_000_000,
                deadline: None,
            },
            gate::Gate::new(4, Duration::from_secs(30)),
        )
    }

    fn app_with(limits: Limits, gate: gate::Gate) -> Router {
        let store = Store::in_memory(&StorageConfig::default()).unwrap();
        let names = [
            "servers.web1.cpu.user",
            "servers.web2.cpu.user",
            "servers.web1.cpu.idle",
            "disk.used;dc=east;host=web1",
        ];
        for k in 0..30 {
            let t = NOW - 300 + k * 10;
            let pts: Vec<Point<'_>> = names
                .iter()
                .enumerate()
                .map(|(i, n)| Point {
                    name: n,
                    timestamp: t,
                    value: (i * 100) as f64 + k as f64,
                })
                .collect();
            store.write(&pts, &[], NOW).unwrap();
        }
        let store = Arc::new(store);
        let events = Arc::new(crate::events::store::EventStore::open(store.kv().clone()).unwrap());
        router(Arc::new(HttpState {
            events,
            api_token: Some("s3cret".into()),
            source: store.clone(),
            store,
            limits,
            default_tz: chrono_tz::Tz::UTC,
            telemetry: Arc::new(crate::telemetry::Telemetry::new()),
            render_latency: Default::default(),
            gate,
            read_token: None,
            alerts: None,
            dashboards: Default::default(),
        }))
    }

    async fn get(uri: &str) -> (StatusCode, String) {
        send(app(), Request::get(uri).body(Body::empty()).unwrap()).await
    }

    async fn send(app: Router, req: Request<Body>) -> (StatusCode, String) {
        let r = app.oneshot(req).await.unwrap();
        let status = r.status();
        let body = axum::body::to_bytes(r.into_body(), 1 << 24).await.unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn render_json_of_one_series() {
        let (s, body) = get(&format!(
            "/render?target=servers.web1.cpu.idle&format=json&from={}&until={}&now={NOW}",
            NOW - 60,
            NOW - 30
        ))
        .await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let t0 = NOW - 50;
        assert_eq!(
            body,
            format!(
                r#"[{{"target": "servers.web1.cpu.idle", "tags": {{"name": "servers.web1.cpu.idle"}}, "datapoints": [[225.0, {t0}], [226.0, {}], [227.0, {}]]}}]"#,
                t0 + 10,
                t0 + 20
            )
        );
    }

    /// A json reply of more than one piece is sent as it is written (no
    /// length up front) and holds what the one-piece jsonp reply holds; a
    /// small one keeps its length.
    #[tokio::test]
    async fn a_large_json_reply_is_streamed_whole() {
        // Two series over a year (the 10 m archive): ~52,000 points each,
        // mostly nulls, about 1 MB each.
        let q = format!(
            "/render?target=servers.*.cpu.user&format=json&from={}&until={NOW}&now={NOW}",
            NOW - 365 * 86400
        );
        let r = app()
            .oneshot(Request::get(&q).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers().get(header::CONTENT_LENGTH).is_none());
        let body = axum::body::to_bytes(r.into_body(), 1 << 24).await.unwrap();
        assert!(body.len() > 2 << 20, "{}", body.len());
        let (s, wrapped) = get(&format!("{q}&jsonp=cb")).await;
        assert_eq!(s, StatusCode::OK);
        let inner = wrapped
            .strip_prefix("cb(")
            .and_then(|w| w.strip_suffix(')'));
        assert_eq!(Some(String::from_utf8_lossy(&body).as_ref()), inner);

        let small = app()
            .oneshot(
                Request::get(format!("{q}&maxDataPoints=100"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert!(small.headers().get(header::CONTENT_LENGTH).is_some());
    }

    /// csv and raw replies as large as a json one are streamed too, and
    /// hold every point, in order, once.
    #[tokio::test]
    async fn large_csv_and_raw_replies_are_streamed_whole() {
        let q = format!(
            "/render?target=servers.*.cpu.user&from={}&until={NOW}&now={NOW}",
            NOW - 365 * 86400
        );
        let (_, json) = get(&format!("{q}&format=json")).await;
        let json = parse_json(&json);
        let points = |i: usize| json[i]["datapoints"].as_array().unwrap().len();
        for format in ["csv", "raw"] {
            let r = app()
                .oneshot(
                    Request::get(format!("{q}&format={format}"))
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            assert!(
                r.headers().get(header::CONTENT_LENGTH).is_none(),
                "{format}"
            );
            let body = axum::body::to_bytes(r.into_body(), 1 << 26).await.unwrap();
            let body = String::from_utf8(body.to_vec()).unwrap();
            assert!(body.len() > 256 << 10, "{format}: {}", body.len());
            if format == "raw" {
                let lines: Vec<&str> = body.lines().collect();
                assert_eq!(lines.len(), 2);
                for (i, l) in lines.iter().enumerate() {
                    let (_, values) = l.split_once('|').unwrap();
                    assert_eq!(values.split(',').count(), points(i), "{l:.80}");
                }
                continue;
            }
            for (i, name) in ["servers.web1.cpu.user", "servers.web2.cpu.user"]
                .into_iter()
                .enumerate()
            {
                let stamps: Vec<&str> = body
                    .split("\r\n")
                    .filter(|l| l.starts_with(&format!("{name},")))
                    .map(|l| l.split(',').nth(1).unwrap())
                    .collect();
                assert_eq!(stamps.len(), points(i), "{name}");
                assert!(stamps.windows(2).all(|w| w[0] < w[1]), "{name}");
            }
        }
    }

    /// One GET or POST of a target nested 20,000 deep overflowed the
    /// render thread's stack and aborted the daemon. Now a 400 naming the
    /// nesting limit, by either method, and the next request is served.
    #[tokio::test]
    async fn a_target_nested_20000_deep_is_a_400_by_get_and_post() {
        let deep = format!(
            "{}servers.web1.cpu.user{}",
            "scale(".repeat(20_000),
            ",2)".repeat(20_000)
        );
        // A URI holds at most 64 KB: `a(` is the shortest level.
        let deep_get = format!("{}x{}", "a(".repeat(20_000), ")".repeat(20_000));
        let app = app();
        let (s, body) = send(
            app.clone(),
            Request::get(format!("/render?target={deep_get}&format=json"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            body.contains("nesting limit") && body.contains("50"),
            "{body}"
        );
        let (s, body) = send(
            app.clone(),
            Request::post("/render")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(format!("target={deep}&format=json")))
                .unwrap(),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
        assert!(body.contains("nesting limit"), "{body}");
        let (s, body) = send(
            app,
            Request::get(format!(
                "/render?target=servers.web1.cpu.idle&format=json&now={NOW}"
            ))
            .body(Body::empty())
            .unwrap(),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{body}");
    }

    /// `now`, `from` and `until` near i64's edge overflowed the window
    /// arithmetic (a panic in a debug build, a wrapped window in release).
    #[tokio::test]
    async fn times_out_of_range_are_400s_naming_them() {
        for q in [
            "now=9223372036854775000",
            "from=-290000000000y",
            "until=now%2B9000y",
            "from=99999999999999999999",
        ] {
            let (s, body) = get(&format!(
                "/render?target=servers.web1.cpu.idle&format=json&{q}"
            ))
            .await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {body}");
            assert!(body.contains("out of range"), "{q}: {body}");
        }
    }

    #[tokio::test]
    async fn mistakes_are_4xx_that_say_what() {
        let (s, body) = get("/render?target=sumSeriez(servers.*.cpu.user)&format=json").await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(body.contains("unknown function sumSeriez"), "{body}");
        let (s, body) = get("/render?target=servers.*.cpu.user&from=-5x&format=json").await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(body.contains("-5x"), "{body}");
        let (s, body) = get("/render?target=sumSeries(a&format=json").await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(body.contains("character"), "{body}");
        let (s, body) = get("/render?target=servers.*.cpu.*&format=json").await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body.contains("series cap") && body.contains('3'), "{body}");
        let (s, _) = get("/metrics/find").await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
    }

    fn parse_json(body: &str) -> serde_json::Value {
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
    }

    #[tokio::test]
    async fn functions_name_and_compute_like_graphite() {
        let w = format!(
            "&format=json&from={}&until={}&now={NOW}",
            NOW - 60,
            NOW - 30
        );
        let (s, body) = get(&format!("/render?target=sumSeries(servers.*.cpu.user){w}")).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let v = parse_json(&body);
        assert_eq!(v[0]["target"], "sumSeries(servers.*.cpu.user)");
        assert_eq!(v[0]["tags"]["aggregatedBy"], "sum");
        // web1.cpu.user = k, web2.cpu.user = 100 + k at k = 25.
        assert_eq!(v[0]["datapoints"][0][0], 150.0);
        let (_, body) = get(&format!(
            "/render?target=scale(servers.web1.cpu.idle,0.5){w}"
        ))
        .await;
        let v = parse_json(&body);
        assert_eq!(v[0]["target"], "scale(servers.web1.cpu.idle,0.5)");
        assert_eq!(v[0]["tags"]["scale"], "0.5");
        assert_eq!(v[0]["datapoints"][0][0], 112.5);
        let (_, body) = get(&format!(
            "/render?target=aliasByNode(servers.*.cpu.user,1){w}"
        ))
        .await;
        let v = parse_json(&body);
        assert_eq!(
            (v[0]["target"].as_str(), v[1]["target"].as_str()),
            (Some("web1"), Some("web2"))
        );
        let grafana = "aliasSub(servers.web1.cpu.user,%20%22(%5E.*%24)%22,%20%22%5C1%20A%22)";
        let (_, body) = get(&format!("/render?target={grafana}{w}")).await;
        assert_eq!(parse_json(&body)[0]["target"], "servers.web1.cpu.user A");
        let (_, body) = get(&format!("/render?target=constantLine(100){w}")).await;
        let v = parse_json(&body);
        assert_eq!(v[0]["target"], "100.0");
        assert_eq!(v[0]["datapoints"].as_array().unwrap().len(), 3);
        let (_, body) = get(&format!(
            "/render?target=highestCurrent(servers.*.cpu.user,1){w}"
        ))
        .await;
        assert_eq!(parse_json(&body)[0]["target"], "servers.web2.cpu.user");
        let (s, body) = get(&format!(
            "/render?target=scale(servers.web1.cpu.idle,'x'){w}"
        ))
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(body.contains("factor must be a number"), "{body}");
    }

    #[tokio::test]
    async fn events_need_the_token_and_come_back_by_tag() {
        let app = app();
        let body = r#"{"what": "web deploy 36790", "tags": "deploy web", "when": 1795314000, "data": "r1"}"#;
        let post = |auth: Option<&str>| {
            let mut r = Request::post("/events/").header("content-type", "application/json");
            if let Some(a) = auth {
                r = r.header("authorization", a);
            }
            r.body(Body::from(body)).unwrap()
        };
        let (s, msg) = send(app.clone(), post(None)).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{msg}");
        let (s, _) = send(app.clone(), post(Some("Bearer wrong"))).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (s, _) = send(app.clone(), post(Some("Bearer s3cret"))).await;
        assert_eq!(s, StatusCode::OK);
        let q = |tags: &str| {
            Request::get(format!(
                "/events/get_data?from=1795310000&until=1795318000&tags={tags}"
            ))
            .body(Body::empty())
            .unwrap()
        };
        let (_, body) = send(app.clone(), q("deploy")).await;
        let v = parse_json(&body);
        assert_eq!(v[0]["what"], "web deploy 36790");
        assert_eq!(v[0]["tags"], serde_json::json!(["deploy", "web"]));
        assert_eq!(v[0]["when"], 1795314000);
        let (_, body) = send(app.clone(), q("db")).await;
        assert_eq!(body, "[]");
        let id = v[0]["id"].as_u64().unwrap();
        let del = |auth: &str| {
            Request::delete(format!("/events/{id}"))
                .header("authorization", auth)
                .body(Body::empty())
                .unwrap()
        };
        let (s, _) = send(app.clone(), del("Bearer nope")).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (s, _) = send(app.clone(), del("Bearer s3cret")).await;
        assert_eq!(s, StatusCode::OK);
        let (s, _) = send(app.clone(), del("Bearer s3cret")).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let bad = Request::post("/events/")
            .header("authorization", "Bearer s3cret")
            .header("content-type", "application/json")
            .body(Body::from("{\"tags\": 1}"))
            .unwrap();
        let (s, msg) = send(app, bad).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(msg.contains("what"), "{msg}");
    }

    #[tokio::test]
    async fn tags_and_series_by_tag() {
        let app = app_with(
            Limits::default(),
            gate::Gate::new(4, Duration::from_secs(30)),
        );
        let get =
            |uri: &'static str| send(app.clone(), Request::get(uri).body(Body::empty()).unwrap());
        let (_, body) = get("/tags").await;
        assert_eq!(body, r#"[{"tag":"dc"},{"tag":"host"},{"tag":"name"}]"#);
        let (_, body) = get("/tags?limit=2").await;
        assert_eq!(body, r#"[{"tag":"dc"},{"tag":"host"}]"#);
        // Past the series cap a listing is refused, not cut.
        let small = app_with_max_series(2);
        let (s, body) = send(small, Request::get("/tags").body(Body::empty()).unwrap()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body.contains("more than 2 tags"), "{body}");
        let (_, body) = get("/tags/host").await;
        assert_eq!(
            body,
            r#"{"tag":"host","values":[{"count":1,"value":"web1"}]}"#
        );
        let (_, body) = get("/tags/autoComplete/values?tag=dc").await;
        assert_eq!(body, r#"["east"]"#);
        let (_, body) = get("/tags/autoComplete/tags?expr=name%3Ddisk.used").await;
        assert_eq!(body, r#"["dc","host"]"#);
        let (_, body) = get("/tags/findSeries?expr=dc%3Deast").await;
        assert_eq!(body, r#"["disk.used;dc=east;host=web1"]"#);
        let w = format!(
            "&format=json&from={}&until={}&now={NOW}",
            NOW - 60,
            NOW - 30
        );
        let (s, body) = send(
            app,
            Request::get(format!("/render?target=seriesByTag('name=disk.used')&{w}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let v = parse_json(&body);
        assert_eq!(v[0]["target"], "disk.used;dc=east;host=web1");
        assert_eq!(v[0]["tags"]["dc"], "east");
    }

    #[tokio::test]
    async fn functions_list_the_way_grafana_reads_it() {
        let (s, body) = get("/functions").await;
        assert_eq!(s, StatusCode::OK);
        // graphite-web writes infinite defaults as 1e9999 (JavaScript's
        // JSON.parse reads Infinity); serde_json refuses them.
        assert!(
            body.contains(r#""default":1e9999"#),
            "keepLastValue's limit"
        );
        let v = parse_json(&body.replace("1e9999", "\"inf\""));
        let f = &v["asPercent"];
        assert_eq!(f["name"], "asPercent");
        assert_eq!(f["group"], "Combine");
        assert_eq!(f["function"], "asPercent(seriesList, total=None, *nodes)");
        assert_eq!(f["params"][0]["type"], "seriesList");
        assert_eq!(f["params"][0]["required"], true);
        assert_eq!(f["params"][2]["multiple"], true);
        assert_eq!(v["groupByNode"]["params"][2]["default"], "average");
        let cb = v["groupByNode"]["params"][2]["options"].as_array().unwrap();
        assert!(cb.contains(&serde_json::json!("sumSeries")));
        assert!(cb.contains(&serde_json::json!("median")));
        // Every function the evaluator serves is listed.
        for name in crate::query::functions::names() {
            assert_eq!(v[name]["name"], name, "{name}");
        }
        let (_, body) = get("/functions?grouped=true&group=Sorting").await;
        let g = parse_json(&body);
        assert_eq!(g.as_object().unwrap().len(), 1);
        assert_eq!(g["Sorting"]["sortByName"]["params"][1]["name"], "natural");
        let (s, body) = get("/functions/scale").await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(parse_json(&body)["params"][1]["type"], "float");
        let (s, _) = get("/functions/nope").await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }

    async fn get_raw(app: Router, uri: &str) -> (StatusCode, String, Vec<u8>) {
        let r = app
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = r.status();
        let ctype = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let body = axum::body::to_bytes(r.into_body(), 1 << 24).await.unwrap();
        (status, ctype, body.to_vec())
    }

    #[tokio::test]
    async fn render_png_and_svg() {
        let w = format!("&from={}&until={NOW}&now={NOW}", NOW - 300);
        let (s, ctype, png) = get_raw(
            app(),
            &format!("/render?target=servers.web1.cpu.*&format=png&width=640&height=300{w}"),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(ctype, "image/png");
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&png[12..16], b"IHDR");
        let dim = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
        assert_eq!((dim(16), dim(20)), (640, 300));
        // png is the default format, at graphite's 330 x 250.
        let (s, ctype, png) =
            get_raw(app(), &format!("/render?target=servers.web1.cpu.user{w}")).await;
        assert_eq!((s, ctype.as_str()), (StatusCode::OK, "image/png"));
        assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 330);
        assert_eq!(u32::from_be_bytes(png[20..24].try_into().unwrap()), 250);

        let (s, ctype, svg) = get_raw(
            app(),
            &format!("/render?target=servers.web1.cpu.*&format=svg&title=CPU%20web1{w}"),
        )
        .await;
        assert_eq!((s, ctype.as_str()), (StatusCode::OK, "image/svg+xml"));
        let svg = String::from_utf8(svg).unwrap();
        assert!(svg.contains(">\nCPU web1\n</text>"), "{svg}");
        assert!(svg.contains(">\nservers.web1.cpu.idle\n</text>"));
        assert!(svg.contains(">\nservers.web1.cpu.user\n</text>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        // Nothing matched: graphite's empty graph.
        let (s, _, svg) =
            get_raw(app(), &format!("/render?target=nothing.here&format=svg{w}")).await;
        assert_eq!(s, StatusCode::OK);
        assert!(String::from_utf8(svg)
            .unwrap()
            .contains(">\nNo Data\n</text>"));
    }

    #[tokio::test]
    async fn bad_image_params_are_400s_naming_the_param() {
        for (q, name) in [
            ("areaMode=bogus", "areaMode"),
            ("lineMode=curly", "lineMode"),
            ("width=5000", "width"),
            ("height=-3", "height"),
            ("width=big", "width"),
            ("bgcolor=notacolour", "bgcolor"),
            ("colorList=red,nope", "colorList"),
            ("fontSize=abc", "fontSize"),
            ("yUnitSystem=furlongs", "yUnitSystem"),
            ("hideLegend=perhaps", "hideLegend"),
            ("yMin=5&yMax=1", "yMin"),
        ] {
            for format in ["png", "svg"] {
                let (s, body) = get(&format!(
                    "/render?target=servers.web1.cpu.user&format={format}&{q}"
                ))
                .await;
                assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {body}");
                assert!(body.contains(name), "{q}: {body}");
            }
        }
        let (s, body) = get("/render?target=servers.web1.cpu.user&format=gif").await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(body.contains("png, svg"), "{body}");
    }

    #[tokio::test]
    async fn render_marks_events_by_tag() {
        let app = app();
        for (what, tags, when) in [
            ("web deploy 7", "deploy web", NOW - 200),
            ("db failover", "db", NOW - 100),
            ("too early", "deploy", NOW - 5000),
        ] {
            let body = serde_json::json!({"what": what, "tags": tags, "when": when}).to_string();
            let req = Request::post("/events/")
                .header("authorization", "Bearer s3cret")
                .header("content-type", "application/json")
                .body(Body::from(body))
                .unwrap();
            assert_eq!(send(app.clone(), req).await.0, StatusCode::OK);
        }
        let uri = |events: &str| {
            format!(
                "/render?target=servers.web1.cpu.user&format=svg&from={}&until={NOW}&now={NOW}&width=600{events}",
                NOW - 300
            )
        };
        let (_, _, svg) = get_raw(app.clone(), &uri("&events=deploy")).await;
        let svg = String::from_utf8(svg).unwrap();
        assert!(svg.contains(">\nweb deploy 7\n</text>"), "{svg}");
        assert!(!svg.contains("db failover"));
        assert!(!svg.contains("too early"));
        // As in get_data and events(): one value's tags must all match;
        // each value is one colour.
        let (_, _, svg) = get_raw(app.clone(), &uri("&events=deploy%20db")).await;
        let svg = String::from_utf8(svg).unwrap();
        assert!(!svg.contains("web deploy 7") && !svg.contains("db failover"));
        let (_, _, svg) = get_raw(app.clone(), &uri("&events=deploy%20web&events=db")).await;
        let svg = String::from_utf8(svg).unwrap();
        assert!(
            svg.contains(">\nweb deploy 7\n</text>") && svg.contains(">\ndb failover\n</text>")
        );
        let (_, _, svg) = get_raw(app, &uri("")).await;
        assert!(!String::from_utf8(svg).unwrap().contains("web deploy 7"));
    }

    #[tokio::test]
    async fn find_and_expand() {
        let (s, body) = get("/metrics/find?query=servers.*").await;
        assert_eq!(s, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v[0]["id"], "servers.web1");
        assert_eq!(v[0]["leaf"], 0);
        assert_eq!(v.as_array().unwrap().len(), 2);
        let (_, body) = get("/metrics/find?query=servers.web1.cpu.*&format=completer").await;
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["metrics"][0]["path"], "servers.web1.cpu.idle");
        assert_eq!(v["metrics"][0]["is_leaf"], "1");
        let (_, body) = get("/metrics/expand?query=servers.*.cpu.user").await;
        assert_eq!(
            body,
            r#"{"results":["servers.web1.cpu.user","servers.web2.cpu.user"]}"#
        );
        let (_, body) = get("/version").await;
        assert_eq!(body, "1.1.10");
        let (s, body) = get("/health").await;
        assert_eq!((s, body.as_str()), (StatusCode::OK, "ok\n"));
        let (_, body) = get("/metrics").await;
        assert!(body.contains("rollupd_store_series 4\n"), "{body}");
        assert!(body.contains("rollupd_render_seconds_count 0\n"), "{body}");
    }

    /// graphite-web's find view: treejson lists branches, then leaves, each
    /// by name (one node per name); `leavesOnly`; the completer searches
    /// `query*`; expand's `leavesOnly` and `groupByExpr`.
    #[tokio::test]
    async fn find_orders_and_filters_as_graphite_web() {
        let texts = |body: &str| -> Vec<String> {
            let v: serde_json::Value = serde_json::from_str(body).unwrap();
            v.as_array()
                .unwrap()
                .iter()
                .map(|n| format!("{}:{}", n["text"].as_str().unwrap(), n["leaf"]))
                .collect()
        };
        let wide = Request::get("/metrics/find?query=servers.**")
            .body(Body::empty())
            .unwrap();
        let (s, body) = send(app_with_max_series(100), wide).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        assert_eq!(
            texts(&body),
            ["cpu:0", "web1:0", "web2:0", "idle:1", "user:1"],
            "{body}"
        );
        let (_, body) = get("/metrics/find?query=servers.web1.*&leavesOnly=1").await;
        assert_eq!(body, "[]");
        let (_, body) = get("/metrics/find?query=servers.web1.cpu.*&leavesOnly=1").await;
        assert_eq!(texts(&body), ["idle:1", "user:1"]);
        let (s, body) = get("/metrics/find?query=servers.web1&leavesOnly=yes").await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(body.contains("leavesOnly"), "{body}");
        let (_, body) = get("/metrics/find?query=servers.web1.cpu.u&format=completer").await;
        assert_eq!(
            body,
            r#"{"metrics":[{"is_leaf":"1","name":"user","path":"servers.web1.cpu.user"}]}"#
        );
        let (_, body) = get("/metrics/expand?query=servers.web1.*&leavesOnly=1").await;
        assert_eq!(body, r#"{"results":[]}"#);
        // Three paths: past the app's cap of 2 (counted over all queries).
        let grouped = Request::get(
            "/metrics/expand?query=servers.*.cpu.user&query=servers.web1.cpu.idle&groupByExpr=1",
        )
        .body(Body::empty())
        .unwrap();
        let (_, body) = send(app_with_max_series(3), grouped).await;
        assert_eq!(
            body,
            r#"{"results":{"servers.*.cpu.user":["servers.web1.cpu.user","servers.web2.cpu.user"],"servers.web1.cpu.idle":["servers.web1.cpu.idle"]}}"#
        );
    }

    /// Status, content type, nosniff header and body of one request.
    async fn get_with_headers(app: Router, uri: &str) -> (StatusCode, String, bool, String) {
        let r = app
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = r.status();
        let header = |h| {
            r.headers()
                .get(h)
                .map(|v: &header::HeaderValue| v.to_str().unwrap().to_string())
                .unwrap_or_default()
        };
        let ctype = header(header::CONTENT_TYPE);
        let nosniff = header(header::X_CONTENT_TYPE_OPTIONS) == "nosniff";
        let body = axum::body::to_bytes(r.into_body(), 1 << 24).await.unwrap();
        (
            status,
            ctype,
            nosniff,
            String::from_utf8_lossy(&body).into_owned(),
        )
    }

    /// Every endpoint that wraps its reply in a `jsonp` callback takes
    /// only a (dotted) JavaScript identifier, and serves the wrapped reply
    /// as JavaScript that the browser may not sniff as anything else.
    #[tokio::test]
    async fn jsonp_callbacks_are_identifiers_or_a_400() {
        let w = format!("from={}&until={NOW}&now={NOW}", NOW - 60);
        let endpoints = [
            format!("/render?target=servers.web1.cpu.idle&format=json&{w}"),
            format!("/render?target=servers.web1.cpu.idle&format=svg&{w}"),
            "/metrics/find?query=servers.*".to_string(),
            "/metrics/expand?query=servers.*".to_string(),
            "/events/get_data?from=-1h".to_string(),
            "/functions?group=Combine".to_string(),
            "/functions/scale?type=series".to_string(),
        ];
        for e in &endpoints {
            for bad in [
                "%3Cscript%3Ealert(1)%3C/script%3E",
                "alert(1)",
                "1cb",
                "a..b",
                "cb%0A",
                &"x".repeat(200),
            ] {
                let (s, _, nosniff, body) =
                    get_with_headers(app(), &format!("{e}&jsonp={bad}")).await;
                assert_eq!(s, StatusCode::BAD_REQUEST, "{e} {bad}: {body}");
                assert!(body.contains("jsonp"), "{e}: {body}");
                assert!(!body.contains("<script>") && nosniff, "{e}: {body}");
            }
            let (s, ctype, nosniff, body) =
                get_with_headers(app(), &format!("{e}&jsonp=ns.cb_1$")).await;
            assert_eq!(s, StatusCode::OK, "{e}: {body}");
            assert_eq!(ctype, "text/javascript", "{e}");
            assert!(nosniff, "{e}");
            assert!(
                body.starts_with("ns.cb_1$(") && body.ends_with(')'),
                "{e}: {body}"
            );
            let (s, ctype, nosniff, _) = get_with_headers(app(), e).await;
            assert_eq!(s, StatusCode::OK, "{e}");
            assert_ne!(ctype, "text/javascript", "{e}");
            assert!(nosniff, "{e}");
        }
    }

    /// A panic in a request's work is our bug: a 500 that says so, never
    /// a 400 blaming the request; the server goes on serving.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panic_in_the_work_is_a_500() {
        for uri in [
            "/render?target=test.panic&format=json",
            "/render?target=test.panic&format=png",
            "/metrics/find?query=test.panic",
            "/metrics/expand?query=test.panic",
        ] {
            let (s, body) = get(uri).await;
            assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR, "{uri}: {body}");
            assert!(body.contains("a bug"), "{uri}: {body}");
        }
        let (s, _) = get("/render?target=servers.web1.cpu.idle&format=json").await;
        assert_eq!(s, StatusCode::OK);
    }

    /// With every render slot taken by slow work, `/health` and
    /// `/metrics` still answer, and a render past the limit is a 503
    /// naming it once its short wait for a slot runs out.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn saturated_renders_leave_health_and_metrics_answering() {
        let app = app_with(
            Limits::default(),
            gate::Gate::new(2, Duration::from_secs(60)),
        );
        let slow: Vec<_> = ["json", "png"]
            .into_iter()
            .map(|f| {
                let app = app.clone();
                tokio::spawn(async move {
                    let uri = format!("/render?target=test.block.saturate&format={f}");
                    send(app, Request::get(uri).body(Body::empty()).unwrap()).await
                })
            })
            .collect();
        tokio::task::spawn_blocking(|| render::test_hook::wait_entered("saturate", 2))
            .await
            .unwrap();
        let (s, body) = send(
            app.clone(),
            Request::get("/health").body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!((s, body.as_str()), (StatusCode::OK, "ok\n"));
        let (s, body) = send(
            app.clone(),
            Request::get("/metrics").body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        assert!(body.contains("rollupd_store_series 4"), "{body}");
        for uri in [
            "/render?target=servers.web1.cpu.idle&format=json",
            "/metrics/find?query=servers.*",
            "/tags",
        ] {
            let r = app
                .clone()
                .oneshot(Request::get(uri).body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "{uri}");
            assert_eq!(r.headers()[header::RETRY_AFTER], "1", "{uri}");
            let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
            let body = String::from_utf8_lossy(&body);
            assert!(body.contains("max_concurrent_renders"), "{uri}: {body}");
        }
        render::test_hook::release("saturate");
        for r in slow {
            let (s, body) = r.await.unwrap();
            assert_eq!(s, StatusCode::OK, "{body}");
        }
        let (s, _) = send(
            app,
            Request::get("/render?target=servers.web1.cpu.idle&format=json")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
    }

    /// Work still running at the request's deadline is answered with a 503
    /// naming `render_timeout`, and keeps its slot until it stops.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_render_past_its_deadline_is_a_503() {
        let app = app_with(
            Limits::default(),
            gate::Gate::new(2, Duration::from_millis(300)),
        );
        for uri in [
            "/render?target=test.block.late&format=json",
            "/metrics/find?query=test.block.late",
        ] {
            let (s, body) = send(app.clone(), Request::get(uri).body(Body::empty()).unwrap()).await;
            assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{uri}: {body}");
            assert!(body.contains("render_timeout"), "{uri}: {body}");
        }
        // Both slots are still held by the work that overran.
        let (s, body) = get_from(&app, "/render?target=servers.web1.cpu.idle&format=json").await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(body.contains("max_concurrent_renders"), "{body}");
        render::test_hook::release("late");
    }

    async fn get_from(app: &Router, uri: &str) -> (StatusCode, String) {
        send(app.clone(), Request::get(uri).body(Body::empty()).unwrap()).await
    }

    #[tokio::test]
    async fn request_bounds_are_4xx_naming_the_parameter() {
        let w = "format=json&from=-1h";
        let many = "&target=servers.web1.cpu.idle".repeat(render::MAX_TARGETS + 1);
        for (uri, status, names) in [
            (format!("/render?{w}{many}"), 400, "target"),
            (
                format!("/render?{w}&target=a.b&maxDataPoints=nan"),
                400,
                "maxDataPoints",
            ),
            (
                format!("/render?{w}&target=a.b&maxDataPoints=-1"),
                400,
                "maxDataPoints",
            ),
            (
                format!("/render?{w}&target=a.b&maxDataPoints=0"),
                400,
                "maxDataPoints",
            ),
            (
                format!("/render?{w}&target=a.b&xFilesFactor=2"),
                400,
                "xFilesFactor",
            ),
            (
                format!("/render?{w}&target=a.b&xFilesFactor=nan"),
                400,
                "xFilesFactor",
            ),
            ("/tags?limit=lots".to_string(), 400, "limit"),
            ("/tags/host?limit=-1".to_string(), 400, "limit"),
            // The test app's cap is 2 series.
            ("/tags".to_string(), 422, "max_series_per_request"),
            (
                "/tags/autoComplete/tags".to_string(),
                200,
                "[\"dc\",\"host\",\"name\"]",
            ),
            (
                "/metrics/find?query=servers.*.cpu.*".to_string(),
                422,
                "max_series_per_request",
            ),
            (
                "/metrics/expand?query=servers.web1.cpu.*&query=servers.web2.cpu.*".to_string(),
                422,
                "max_series_per_request",
            ),
            (
                "/tags?limit=2".to_string(),
                200,
                "[{\"tag\":\"dc\"},{\"tag\":\"host\"}]",
            ),
        ] {
            let (s, body) = get(&uri).await;
            assert_eq!(s.as_u16(), status, "{uri}: {body}");
            assert!(body.contains(names), "{uri}: {body}");
        }
        // maxDataPoints past any count is no limit, not a wrapped number.
        let (s, body) = get(&format!(
            "/render?target=servers.web1.cpu.idle&format=json&from={}&until={}&now={NOW}&maxDataPoints=1e300",
            NOW - 60,
            NOW - 30
        ))
        .await;
        assert_eq!(s, StatusCode::OK, "{body}");
        assert_eq!(
            parse_json(&body)[0]["datapoints"].as_array().unwrap().len(),
            3
        );
    }

    #[tokio::test]
    async fn a_post_body_past_the_limit_is_a_413() {
        let form = format!("target={}", "a".repeat(MAX_BODY_BYTES));
        for uri in ["/render", "/metrics/find", "/events/"] {
            let req = Request::post(uri)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("authorization", "Bearer s3cret")
                .body(Body::from(form.clone()))
                .unwrap();
            let (s, body) = send(app(), req).await;
            assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{uri}: {body}");
        }
        let ok = Request::post("/render")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from("target=servers.web1.cpu.idle&format=json"))
            .unwrap();
        assert_eq!(send(app(), ok).await.0, StatusCode::OK);
    }

    /// No cross-origin reads: no CORS header is ever sent, and a
    /// preflight is refused (browsers then keep other origins' scripts
    /// from reading replies; JSONP is the one opt-in, checked above).
    #[tokio::test]
    async fn no_cross_origin_reads() {
        let req = Request::get("/render?target=servers.web1.cpu.idle&format=json")
            .header("origin", "http://evil.example")
            .body(Body::empty())
            .unwrap();
        let r = app().oneshot(req).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r
            .headers()
            .keys()
            .all(|k| !k.as_str().starts_with("access-control-")));
        let pre = Request::options("/events/")
            .header("origin", "http://evil.example")
            .header("access-control-request-method", "POST")
            .body(Body::empty())
            .unwrap();
        let r = app().oneshot(pre).await.unwrap();
        assert!(r.status().is_client_error(), "{}", r.status());
        assert!(r
            .headers()
            .keys()
            .all(|k| !k.as_str().starts_with("access-control-")));
    }
}
