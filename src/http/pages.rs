//! The daemon's own pages: `/` (dashboards, firing alerts, last deploys),
//! `/d/<name>` (a dashboard, drawn in the browser from `/render` JSON with
//! uPlot), `/explore` (one target, editable) and their assets under
//! `/ui/`. The pages are small HTML shells; the data comes from the JSON
//! API, so everything a page shows is also scriptable.
//!
//! Every asset is compiled into the binary (`include_bytes!`): the pages
//! work offline and load nothing from outside the daemon (their
//! `Content-Security-Policy` says `default-src 'self'`). Asset URLs carry
//! a version (a hash of all assets), so they are served `immutable` and a
//! reload downloads none of them again; a stale or missing version gets
//! an ETag to revalidate against instead.

use std::sync::{Arc, LazyLock};

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::HttpState;

/// One file under `/ui/`.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $ctype:literal) => {
        Asset {
            path: $path,
            content_type: $ctype,
            body: include_bytes!(concat!("../../assets/ui/", $path)),
        }
    };
}

static ASSETS: &[Asset] = &[
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("common.js", "text/javascript; charset=utf-8"),
    asset!("index.js", "text/javascript; charset=utf-8"),
    asset!("dash.js", "text/javascript; charset=utf-8"),
    asset!("explore.js", "text/javascript; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!(
        "vendor/uplot/uPlot.iife.min.js",
        "text/javascript; charset=utf-8"
    ),
    asset!("vendor/uplot/uPlot.min.css", "text/css; charset=utf-8"),
    asset!("vendor/uplot/LICENSE", "text/plain; charset=utf-8"),
    asset!("vendor/uplot/README.md", "text/plain; charset=utf-8"),
];

/// FNV-1a, 64 bits: a content hash for ETags and the asset version (not a
/// security boundary; it only has to change when a file does).
fn fnv(bytes: &[u8], mut h: u64) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

const FNV_SEED: u64 = 0xcbf2_9ce4_8422_2325;

/// The version in every asset URL: a hash over all assets, so one changed
/// file changes every URL (simpler than one version per file, and the
/// assets change together anyway, with the binary).
static VERSION: LazyLock<String> = LazyLock::new(|| {
    let h = ASSETS
        .iter()
        .fold(FNV_SEED, |h, a| fnv(a.body, fnv(a.path.as_bytes(), h)));
    format!("{:012x}", h >> 16)
});

/// What the pages may load: only this daemon (and `data:` images, which
/// uPlot does not need but a favicon fallback might). Inline styles are
/// allowed because uPlot positions its cursor and legend with them.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
                   object-src 'none'; base-uri 'none'; frame-ancestors 'self'";

/// Each asset gzipped once, at the best level (uPlot: 51 KB to 22 KB; the
/// reply layer's fastest level left 26 KB), for clients that take gzip.
static GZIPPED: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| {
            let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            // Writing to a Vec cannot fail.
            let _ = std::io::Write::write_all(&mut z, a.body);
            z.finish().unwrap_or_default()
        })
        .collect()
});

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|e| {
            let mut parts = e.trim().split(';');
            let name = parts.next().unwrap_or("").trim();
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            (name.eq_ignore_ascii_case("gzip") || name == "*") && q > 0.0
        })
}

/// `GET /ui/<file>`: an embedded asset. With the current `?v=` the reply
/// is cached for a year as immutable; otherwise it must be revalidated,
/// and a matching `If-None-Match` is a 304.
pub async fn asset(Path(file): Path<String>, headers: HeaderMap, uri: axum::http::Uri) -> Response {
    let Some((i, a)) = ASSETS.iter().enumerate().find(|(_, a)| a.path == file) else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("no asset named {file:?}\n"),
        )
            .into_response();
    };
    let etag = format!("\"{:016x}\"", fnv(a.body, FNV_SEED));
    let current = uri
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv == format!("v={}", *VERSION)));
    let cache = if current {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let gz = GZIPPED
        .get(i)
        .filter(|z| !z.is_empty() && z.len() < a.body.len());
    let mut r = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else if let (Some(z), true) = (gz, accepts_gzip(&headers)) {
        (
            [
                (header::CONTENT_TYPE, a.content_type),
                (header::CONTENT_ENCODING, "gzip"),
            ],
            axum::body::Body::from(z.clone()),
        )
            .into_response()
    } else {
        (
            [(header::CONTENT_TYPE, a.content_type)],
            axum::body::Body::from(a.body),
        )
            .into_response()
    };
    let h = r.headers_mut();
    if gz.is_some() {
        h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    r
}

/// Marks a reply that may be gzipped (when the client accepts it): see
/// [`mark_compressible`].
#[derive(Debug, Clone, Copy)]
struct Compressible;

/// Only the pages' own traffic is compressed: the pages, their assets, the
/// dashboard API, and the `/render` calls a page makes (which say
/// `targetIndex` in the URL). graphite-web's clients get the replies they
/// always got, and a large render for them costs no gzip time. Measured
/// in Chromium on a cold load of `dashboards/rollupd.toml` over 6 h (two
/// hosts' series at 10 s): 186 KB went over the wire instead of 821 KB;
/// the assets 58 KB instead of 126 KB, the two render replies 125 KB
/// instead of 689 KB.
pub async fn mark_compressible(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let uri = req.uri();
    let p = uri.path();
    let ours = p == "/"
        || p.starts_with("/d/")
        || p == "/explore"
        || p.starts_with("/ui/")
        || p.starts_with("/api/dashboards")
        || (matches!(p, "/render" | "/render/")
            && uri.query().is_some_and(|q| {
                q.split('&')
                    .any(|kv| kv.split('=').next() == Some("targetIndex"))
            }));
    let mut r = next.run(req).await;
    if ours {
        r.extensions_mut().insert(Compressible);
    }
    r
}

/// gzip at its fastest level (the JSON is repetitive enough that more
/// effort buys little), for replies [`mark_compressible`] marked, past
/// tower-http's default predicate (not images, not tiny).
pub fn compression(
) -> tower_http::compression::CompressionLayer<impl tower_http::compression::Predicate> {
    use tower_http::compression::predicate::{DefaultPredicate, Predicate};
    tower_http::compression::CompressionLayer::new()
        .quality(tower_http::CompressionLevel::Fastest)
        .compress_when(DefaultPredicate::new().and(
            |_: StatusCode, _: axum::http::Version, _: &HeaderMap, ext: &axum::http::Extensions| {
                ext.get::<Compressible>().is_some()
            },
        ))
}

/// A path segment as JavaScript's `encodeURIComponent` writes it (so the
/// preloaded URL is the one the page asks for).
fn encode_segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Text for HTML, attribute values included.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// What a page's shell says about the server, as `data-` attributes on
/// `<body>` the scripts read: whether reads need a token (so the page asks
/// for it before its first call rather than after a 401) and whether
/// alerting runs (so the page does not ask for alerts that are not there).
fn body_attrs(st: &HttpState, page: &str, extra: &[(&str, &str)]) -> String {
    let mut s = format!(
        " data-page=\"{}\" data-auth=\"{}\" data-alerts=\"{}\"",
        escape(page),
        if st.read_token.is_some() {
            "token"
        } else {
            "open"
        },
        if st.alerts.is_some() { "on" } else { "off" },
    );
    for (k, v) in extra {
        s.push_str(&format!(" data-{k}=\"{}\"", escape(v)));
    }
    s
}

/// A page: the shared head, `body` inside `<main>`, then the scripts.
fn shell(
    title: &str,
    attrs: &str,
    body: &str,
    scripts: &[&str],
    uplot: bool,
    preload: Option<&str>,
) -> String {
    let v = &*VERSION;
    let mut head = String::new();
    if let Some(url) = preload {
        head.push_str(&format!(
            "<link rel=\"preload\" as=\"fetch\" crossorigin href=\"{}\">\n",
            escape(url)
        ));
    }
    if uplot {
        head.push_str(&format!(
            "<link rel=\"stylesheet\" href=\"/ui/vendor/uplot/uPlot.min.css?v={v}\">\n"
        ));
    }
    let mut tail = String::new();
    if uplot {
        tail.push_str(&format!(
            "<script src=\"/ui/vendor/uplot/uPlot.iife.min.js?v={v}\"></script>\n"
        ));
    }
    for s in std::iter::once(&"common.js").chain(scripts) {
        tail.push_str(&format!("<script src=\"/ui/{s}?v={v}\"></script>\n"));
    }
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"color-scheme\" content=\"dark light\">\n\
         <title>{title}</title>\n\
         <link rel=\"icon\" href=\"/ui/favicon.svg?v={v}\" type=\"image/svg+xml\">\n\
         {head}<link rel=\"stylesheet\" href=\"/ui/app.css?v={v}\">\n</head>\n\
         <body{attrs}>\n<header class=\"top\"><a class=\"home\" href=\"/\">rollupd</a>\
         <span class=\"crumb\" id=\"crumb\"></span><span class=\"spacer\"></span>\
         <span id=\"toolbar\"></span></header>\n\
         <main id=\"main\">{body}</main>\n{tail}</body>\n</html>\n",
        title = escape(title),
    )
}

fn html(status: StatusCode, page: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        page,
    )
        .into_response()
}

/// `GET /`: the dashboards, the alerts firing, the last deploys.
pub async fn index(State(st): State<Arc<HttpState>>) -> Response {
    let body = "<section class=\"index-col\"><h1>Dashboards</h1>\
        <input id=\"search\" type=\"search\" placeholder=\"Search by title or tag\" autocomplete=\"off\" autofocus>\
        <ul id=\"dashboards\" class=\"dash-list\"></ul></section>\
        <section class=\"index-col\"><h1>Firing</h1><ul id=\"firing\" class=\"firing\"></ul>\
        <h1>Last deploys</h1><ul id=\"deploys\" class=\"deploys\"></ul></section>";
    html(
        StatusCode::OK,
        shell(
            "rollupd",
            &body_attrs(&st, "index", &[]),
            body,
            &["index.js"],
            false,
            None,
        ),
    )
}

/// `GET /d/<name>`: the dashboard page. An unknown name is a 404 page
/// saying so, unless reads need a token: a browser's navigation carries
/// none, so then the shell is served and the page learns from the API
/// (with the token) whether the dashboard exists; the name alone would
/// otherwise tell a stranger which dashboards there are.
pub async fn dashboard(State(st): State<Arc<HttpState>>, Path(name): Path<String>) -> Response {
    let title = st
        .dashboards
        .read()
        .iter()
        .find(|d| d.name == name)
        .map(|d| d.title.clone());
    if title.is_none() && st.read_token.is_none() {
        let body = format!(
            "<section class=\"missing\"><h1>No dashboard named \u{201c}{}\u{201d}</h1>\
             <p><a href=\"/\">All dashboards</a></p></section>",
            escape(&name)
        );
        return html(
            StatusCode::NOT_FOUND,
            shell(
                "No such dashboard",
                &body_attrs(&st, "missing", &[]),
                &body,
                &[],
                false,
                None,
            ),
        );
    }
    let title = title.unwrap_or_else(|| name.clone());
    let body = "<div id=\"dash\" class=\"dash\"></div>";
    // The model is fetched while the scripts load (it was the first
    // request after them, ~100 ms later). Not behind a read token: the
    // preload would carry none and be a 401.
    let model = format!("/api/dashboards/{}", encode_segment(&name));
    let preload = st.read_token.is_none().then_some(model.as_str());
    html(
        StatusCode::OK,
        shell(
            &title,
            &body_attrs(&st, "dash", &[("name", &name)]),
            body,
            &["dash.js"],
            true,
            preload,
        ),
    )
}

/// `GET /explore?target=...&from=...`: one target, editable, graphed.
pub async fn explore(State(st): State<Arc<HttpState>>) -> Response {
    let body = "<div id=\"explore\" class=\"explore\"></div>";
    html(
        StatusCode::OK,
        shell(
            "Explore",
            &body_attrs(&st, "explore", &[]),
            body,
            &["dash.js", "explore.js"],
            true,
            None,
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StorageConfig;
    use crate::store::Store;
    use axum::body::Body;
    use axum::http::Request;
    use std::time::Duration;
    use tower::ServiceExt;

    fn app(read_token: Option<&str>) -> axum::Router {
        let store = Store::in_memory(&StorageConfig::default()).unwrap();
        let now = crate::telemetry::unix_now_i64();
        for k in 0..60 {
            let p = crate::store::Point {
                name: "a.b",
                timestamp: now - 600 + k * 10,
                value: k as f64,
            };
            store.write(&[p], &[], now).unwrap();
        }
        let store = Arc::new(store);
        let events = Arc::new(crate::events::store::EventStore::open(store.kv().clone()).unwrap());
        let dash = crate::dashboard::model::Dashboard::from_toml(
            "web",
            "title = \"Web <b>&</b>\"\n[[row]]\n[[row.panel]]\ntitle = \"x\"\ntargets = [\"a.b\"]\n",
        )
        .unwrap();
        super::super::router(Arc::new(HttpState {
            events,
            api_token: Some("s3cret".into()),
            source: store.clone(),
            store,
            limits: Default::default(),
            default_tz: chrono_tz::Tz::UTC,
            telemetry: Arc::new(crate::telemetry::Telemetry::new()),
            render_latency: Default::default(),
            gate: super::super::gate::Gate::new(2, Duration::from_secs(30)),
            read_token: read_token.map(Into::into),
            alerts: None,
            dashboards: crate::dashboard::registry::Dashboards::fixed(vec![dash]),
        }))
    }

    async fn get(
        app: axum::Router,
        uri: &str,
        extra: Option<(header::HeaderName, &str)>,
    ) -> (StatusCode, HeaderMap, String) {
        let mut req = Request::get(uri);
        if let Some((k, v)) = extra {
            req = req.header(k, v);
        }
        let r = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        let body = axum::body::to_bytes(r.into_body(), 1 << 24).await.unwrap();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    fn ctype(h: &HeaderMap) -> &str {
        h.get(header::CONTENT_TYPE).unwrap().to_str().unwrap()
    }

    #[tokio::test]
    async fn pages_are_html_that_loads_only_our_assets() {
        for uri in ["/", "/d/web", "/explore?target=a.b&from=-1h"] {
            let (s, h, body) = get(app(None), uri, None).await;
            assert_eq!(s, StatusCode::OK, "{uri}");
            assert_eq!(ctype(&h), "text/html; charset=utf-8", "{uri}");
            assert!(h[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .starts_with("default-src 'self'"));
            // Every src/href is one of ours, at the current version.
            for part in body.split(['"']).filter(|p| p.starts_with("/ui/")) {
                let (path, q) = part.split_once('?').unwrap();
                assert_eq!(q, format!("v={}", *VERSION), "{part}");
                let (s, _, _) = get(app(None), part, None).await;
                assert_eq!(s, StatusCode::OK, "{uri}: {part}");
                assert!(ASSETS.iter().any(|a| format!("/ui/{}", a.path) == path));
            }
            assert!(!body.contains("http://") && !body.contains("https://"));
        }
        let (_, _, body) = get(app(None), "/d/web", None).await;
        // The title is escaped, in <title> and nowhere raw.
        assert!(
            body.contains("<title>Web &lt;b&gt;&amp;&lt;/b&gt;</title>"),
            "{body}"
        );
        assert!(!body.contains("<b>&</b>"));
        assert!(body.contains("data-name=\"web\""));
        assert!(body.contains("data-alerts=\"off\""));
        assert!(
            body.contains("rel=\"preload\" as=\"fetch\" crossorigin href=\"/api/dashboards/web\"")
        );
        assert_eq!(encode_segment("a b/ü"), "a%20b%2F%C3%BC");
    }

    #[tokio::test]
    async fn assets_have_types_and_are_cached_by_version_or_etag() {
        let v = &*VERSION;
        for (file, want) in [
            ("app.css", "text/css; charset=utf-8"),
            ("dash.js", "text/javascript; charset=utf-8"),
            (
                "vendor/uplot/uPlot.iife.min.js",
                "text/javascript; charset=utf-8",
            ),
            ("vendor/uplot/LICENSE", "text/plain; charset=utf-8"),
            ("favicon.svg", "image/svg+xml"),
        ] {
            let (s, h, body) = get(app(None), &format!("/ui/{file}?v={v}"), None).await;
            assert_eq!(s, StatusCode::OK, "{file}");
            assert_eq!(ctype(&h), want, "{file}");
            assert!(!body.is_empty());
            assert_eq!(
                h[header::CACHE_CONTROL],
                "public, max-age=31536000, immutable"
            );
            assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
            let etag = h[header::ETAG].to_str().unwrap().to_string();
            // Without the version: revalidated, and a 304 when unchanged.
            let (s, h, _) = get(app(None), &format!("/ui/{file}"), None).await;
            assert_eq!(
                (s, h[header::CACHE_CONTROL].to_str().unwrap()),
                (StatusCode::OK, "no-cache")
            );
            let (s, _, body) = get(
                app(None),
                &format!("/ui/{file}"),
                Some((header::IF_NONE_MATCH, &etag)),
            )
            .await;
            assert_eq!(s, StatusCode::NOT_MODIFIED, "{file}");
            assert!(body.is_empty());
            let (s, _, _) = get(
                app(None),
                &format!("/ui/{file}"),
                Some((header::IF_NONE_MATCH, "\"0\"")),
            )
            .await;
            assert_eq!(s, StatusCode::OK);
        }
        for missing in [
            "/ui/nope.js",
            "/ui/../Cargo.toml",
            "/ui/vendor/uplot/",
            "/ui/",
        ] {
            let (s, _, _) = get(app(None), missing, None).await;
            assert_eq!(s, StatusCode::NOT_FOUND, "{missing}");
        }
    }

    #[tokio::test]
    async fn an_unknown_dashboard_is_a_404_page_naming_it_escaped() {
        let (s, h, body) = get(app(None), "/d/%3Cscript%3Ex", None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(ctype(&h), "text/html; charset=utf-8");
        assert!(body.contains("No dashboard named"), "{body}");
        assert!(body.contains("&lt;script&gt;x"), "{body}");
        assert!(!body.contains("<script>x"));
        // Behind a read token the shell is served; the page asks the API
        // (with the token) and says so there.
        let (s, _, body) = get(app(Some("r3ad")), "/d/nope", None).await;
        assert_eq!(s, StatusCode::OK);
        assert!(body.contains("data-auth=\"token\""), "{body}");
        let (s, _, body) = get(app(Some("r3ad")), "/", None).await;
        assert_eq!(s, StatusCode::OK);
        assert!(body.contains("data-auth=\"token\""));
    }

    /// The pages' traffic is gzipped for a client that accepts it;
    /// graphite's clients' renders are not, whatever they accept.
    #[tokio::test]
    async fn only_the_pages_traffic_is_gzipped() {
        let gz = Some((header::ACCEPT_ENCODING, "gzip"));
        let encoding = |h: &HeaderMap| {
            h.get(header::CONTENT_ENCODING)
                .map(|v| v.to_str().unwrap().to_string())
        };
        let js = format!("/ui/vendor/uplot/uPlot.iife.min.js?v={}", *VERSION);
        let r = app(None)
            .oneshot(
                Request::get(&js)
                    .header(header::ACCEPT_ENCODING, "gzip")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(encoding(r.headers()).as_deref(), Some("gzip"));
        let r_vary = r.headers()[header::VARY].to_str().unwrap().to_string();
        let sent = axum::body::to_bytes(r.into_body(), 1 << 24).await.unwrap();
        let plain = ASSETS.iter().find(|a| js.contains(a.path)).unwrap().body;
        assert!(
            sent.len() < plain.len() / 2,
            "{} of {}",
            sent.len(),
            plain.len()
        );
        assert_eq!(r_vary, "accept-encoding");
        let mut unzipped = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&sent[..]), &mut unzipped)
            .unwrap();
        assert_eq!(unzipped, plain);
        let (_, h, _) = get(app(None), &js, None).await;
        assert_eq!(encoding(&h), None);
        let (_, h, _) = get(app(None), &js, Some((header::ACCEPT_ENCODING, "gzip;q=0"))).await;
        assert_eq!(encoding(&h), None);
        let (_, h, _) = get(app(None), "/d/web", gz.clone()).await;
        assert_eq!(encoding(&h).as_deref(), Some("gzip"));
        let render = "/render?target=a.b&format=json&from=-1h";
        let (s, h, _) = get(app(None), render, gz.clone()).await;
        assert_eq!((s, encoding(&h)), (StatusCode::OK, None));
        let (s, h, _) = get(app(None), &format!("{render}&targetIndex=1"), gz).await;
        assert_eq!((s, encoding(&h).as_deref()), (StatusCode::OK, Some("gzip")));
    }

    #[test]
    fn escape_covers_text_and_attributes() {
        assert_eq!(
            escape("<a href='x'>\"&"),
            "&lt;a href=&#39;x&#39;&gt;&quot;&amp;"
        );
    }
}
