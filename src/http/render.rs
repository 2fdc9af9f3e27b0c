//! `/render`, `/metrics/find`, `/metrics/expand`.

use std::sync::Arc;

use bytes::Bytes;

use axum::body::Body;
use axum::extract::{Form, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::HttpState;
use crate::events::store::{split_tags, TagSet};
use crate::query::eval::{evaluate, Context};
use crate::query::series::Series;
use crate::query::time::{parse_at_time, zone};
use crate::render::image::{self, GraphOptions};
use crate::render::text;
use crate::telemetry::unix_now;

/// Request parameters, repeated keys kept (GET query string and POST form
/// merged, as graphite-web merges them).
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn from_parts(
        query: Option<String>,
        form: Vec<(String, String)>,
    ) -> Result<Params, ApiError> {
        let mut v: Vec<(String, String)> = match query {
            Some(q) => serde_urlencoded::from_str(&q)
                .map_err(|e| ApiError::BadRequest(format!("bad query string: {e}")))?,
            None => Vec::new(),
        };
        v.extend(form);
        Ok(Params(v))
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }

    pub fn all<'a>(&'a self, k: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(key, _)| key == k || key.strip_suffix("[]") == Some(k))
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some(v) if !matches!(v, "" | "0" | "false" | "False"))
    }
}

pub async fn render_get(
    State(st): State<Arc<HttpState>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    render(st, Params::from_parts(q, vec![])?).await
}

pub async fn render_post(
    State(st): State<Arc<HttpState>>,
    RawQuery(q): RawQuery,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    render(st, Params::from_parts(q, form)?).await
}

/// A json reply's piece size: large enough that the pieces cost little
/// (to write, to send, and to Python's chunked reader), small enough that
/// the client reads the first while the rest is written.
const JSON_PIECE_BYTES: usize = 256 << 10;

/// Pieces written ahead of the client: the memory a slow reader can hold
/// (16 MB; the whole reply was held before). Fewer made the writer wait
/// on the client piece by piece, each wait a wake-up: with 4, a
/// 1,000-series reply was no faster than written whole on this 2-core
/// box; with 64, about 20 ms faster (out of 130).
const JSON_PIECES_AHEAD: usize = 64;

/// What a render produced: a reply, or the rest of a json reply that is
/// still to be written (its first piece is already).
enum Rendered {
    Reply(Response),
    Streamed(String, text::JsonPieces),
}

async fn render(st: Arc<HttpState>, p: Params) -> Result<Response, ApiError> {
    let started = std::time::Instant::now();
    let st2 = st.clone();
    let r = tokio::task::spawn_blocking(move || render_blocking(&st2, &p))
        .await
        .map_err(|e| ApiError::BadRequest(format!("render task failed: {e}")))?;
    let reply = match r {
        Ok(Rendered::Streamed(first, rest)) => return Ok(stream_json(st, started, first, rest)),
        Ok(Rendered::Reply(reply)) => Ok(reply),
        Err(e) => Err(e),
    };
    st.render_latency.observe(started.elapsed());
    reply
}

/// A json reply of more than one piece, sent as it is written: the first
/// piece at once, the rest from a blocking task up to [`JSON_PIECES_AHEAD`]
/// pieces ahead of the client (which may start reading 31 MB while most of
/// it is still to be written). The render latency counts until the last
/// piece is written.
fn stream_json(
    st: Arc<HttpState>,
    started: std::time::Instant,
    first: String,
    rest: text::JsonPieces,
) -> Response {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(JSON_PIECES_AHEAD);
    // The channel is empty: the first piece always fits.
    let _ = tx.try_send(Ok(Bytes::from(first)));
    tokio::task::spawn_blocking(move || {
        let written = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for piece in rest {
                if tx.blocking_send(Ok(Bytes::from(piece))).is_err() {
                    return; // the client went away
                }
            }
        }));
        if written.is_err() {
            // An error, not the end of the stream: the client must not
            // take a cut reply for a whole one.
            let _ = tx.blocking_send(Err(std::io::Error::other("json writer panicked")));
        }
        st.render_latency.observe(started.elapsed());
    });
    let body = Body::from_stream(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)));
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn render_blocking(st: &HttpState, p: &Params) -> Result<Rendered, ApiError> {
    let tz = match p.get("tz") {
        Some(name) => zone(name)?,
        None => st.default_tz,
    };
    let wall = unix_now() as i64;
    let now = match p.get("now") {
        Some(n) => parse_at_time(n, &tz, wall)?,
        None => wall,
    };
    let until = parse_at_time(p.get("until").unwrap_or("now"), &tz, now)?;
    let from = parse_at_time(p.get("from").unwrap_or("-1d"), &tz, now)?;
    // graphite-web swaps a reversed window silently.
    let (from, until) = if from > until {
        (until, from)
    } else {
        (from, until)
    };
    let xff = match p.get("xFilesFactor") {
        Some(v) => v
            .parse::<f64>()
            .map_err(|_| ApiError::BadRequest(format!("xFilesFactor {v:?} is not a number")))?,
        None => 0.0,
    };
    let format = p.get("format").unwrap_or("png");
    let image_format = match format {
        "png" => Some(image::Format::Png),
        "svg" => Some(image::Format::Svg),
        _ => None,
    };
    // Image params are checked before any data is read.
    let graph = match image_format {
        Some(_) => Some(GraphOptions::parse(|k| p.get(k)).map_err(ApiError::BadRequest)?),
        None => None,
    };
    let mut ctx = Context {
        store: &st.store,
        from,
        until,
        now,
        tz,
        server_tz: st.default_tz,
        xff,
        limits: st.limits,
        spent: Default::default(),
    };
    let mut series: Vec<Series> = Vec::new();
    for t in p.all("target") {
        if t.trim().is_empty() {
            continue;
        }
        series.extend(evaluate(&mut ctx, t)?);
    }
    if let (Some(fmt), Some(graph)) = (image_format, graph) {
        return render_image(st, p, &series, &graph, &tz, (from, until), fmt).map(Rendered::Reply);
    }
    let max_points = p
        .get("maxDataPoints")
        .map(|v| {
            v.parse::<f64>()
                .map(|f| f as usize)
                .map_err(|_| ApiError::BadRequest(format!("maxDataPoints {v:?} is not a number")))
        })
        .transpose()?;
    let no_null_points = p.flag("noNullPoints");
    let reply = match format {
        "json" => match p.get("jsonp") {
            Some(cb) => {
                let body = text::json(&series, max_points, no_null_points);
                (
                    [(header::CONTENT_TYPE, "text/javascript")],
                    format!("{cb}({body})"),
                )
                    .into_response()
            }
            None => {
                let mut pieces =
                    text::JsonPieces::new(series, max_points, no_null_points, JSON_PIECE_BYTES);
                let first = pieces.next().unwrap_or_default();
                if !pieces.is_finished() {
                    return Ok(Rendered::Streamed(first, pieces));
                }
                // One piece: a plain reply, with its length.
                ([(header::CONTENT_TYPE, "application/json")], first).into_response()
            }
        },
        "csv" => (
            [(header::CONTENT_TYPE, "text/csv")],
            text::csv(&series, &tz),
        )
            .into_response(),
        "raw" => ([(header::CONTENT_TYPE, "text/plain")], text::raw(&series)).into_response(),
        other => {
            return Err(ApiError::BadRequest(format!(
                "format {other:?} is not one of png, svg, json, csv, raw"
            )))
        }
    };
    Ok(Rendered::Reply(reply))
}

/// `format=png|svg`, with the stored events that `events=<tags>` names
/// marked on the graph (any of the tags, as `/events/get_data` reads them).
fn render_image(
    st: &HttpState,
    p: &Params,
    series: &[Series],
    graph: &GraphOptions,
    tz: &chrono_tz::Tz,
    (from, until): (i64, i64),
    fmt: image::Format,
) -> Result<Response, ApiError> {
    let tags: Vec<String> = p.all("events").flat_map(split_tags).collect();
    let marks = if tags.is_empty() {
        Vec::new()
    } else {
        let found = st
            .events
            .query(from, until, &tags, TagSet::Union)
            .map_err(|e| ApiError::Unavailable(e.to_string()))?;
        image::event_marks(&found, &tags)
    };
    let body = image::render(series, &marks, graph, tz, fmt)
        .map_err(|e| ApiError::Unavailable(format!("image rendering failed: {e}")))?;
    match (fmt, p.get("jsonp")) {
        // graphite-web hands an SVG to a jsonp callback as a JSON string.
        (image::Format::Svg, Some(cb)) => {
            let text = String::from_utf8_lossy(&body);
            let quoted = serde_json::Value::String(text.into_owned()).to_string();
            Ok((
                [(header::CONTENT_TYPE, "text/javascript")],
                format!("{cb}({quoted})"),
            )
                .into_response())
        }
        _ => Ok(([(header::CONTENT_TYPE, fmt.content_type())], body).into_response()),
    }
}

pub async fn find_get(
    State(st): State<Arc<HttpState>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    find(&st, &Params::from_parts(q, vec![])?)
}

pub async fn find_post(
    State(st): State<Arc<HttpState>>,
    RawQuery(q): RawQuery,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    find(&st, &Params::from_parts(q, form)?)
}

fn find(st: &HttpState, p: &Params) -> Result<Response, ApiError> {
    let query = p
        .get("query")
        .ok_or_else(|| ApiError::BadRequest("missing parameter: query".into()))?;
    let found = st
        .store
        .index()
        .find(query, st.limits.max_series)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let base = match query.rfind('.') {
        Some(i) => format!("{}.", &query[..i]),
        None => String::new(),
    };
    let leaf_name = |path: &str| path.rsplit('.').next().unwrap_or(path).to_string();
    let body = match p.get("format").unwrap_or("treejson") {
        "treejson" => {
            let mut seen = std::collections::HashSet::new();
            let mut nodes = Vec::new();
            // `wildcards=1` (the tree browser): a `*` node first when there
            // is more than one match, a branch if any match is one.
            let wildcards = matches!(p.get("wildcards"), Some("1" | "true"));
            if wildcards && found.len() > 1 {
                let any_branch = found.iter().any(|f| f.branch || f.leaf.is_none());
                let b = i32::from(any_branch);
                nodes.push(serde_json::json!({
                    "text": "*",
                    "id": format!("{base}*"),
                    "allowChildren": b,
                    "expandable": b,
                    "leaf": 1 - b,
                }));
            }
            for f in &found {
                let name = leaf_name(&f.path);
                if !seen.insert(name.clone()) {
                    continue;
                }
                let leaf = f.leaf.is_some() && !f.branch;
                nodes.push(serde_json::json!({
                    "allowChildren": if leaf { 0 } else { 1 },
                    "expandable": if leaf { 0 } else { 1 },
                    "leaf": if leaf { 1 } else { 0 },
                    "id": format!("{base}{name}"),
                    "text": name,
                }));
            }
            serde_json::Value::Array(nodes)
        }
        "completer" => {
            let metrics: Vec<serde_json::Value> = found
                .iter()
                .map(|f| {
                    let leaf = f.leaf.is_some() && !f.branch;
                    serde_json::json!({
                        "path": if leaf { f.path.clone() } else { format!("{}.", f.path) },
                        "name": leaf_name(&f.path),
                        "is_leaf": if leaf { "1" } else { "0" },
                    })
                })
                .collect();
            serde_json::json!({ "metrics": metrics })
        }
        other => {
            return Err(ApiError::BadRequest(format!(
                "format {other:?} is not one of treejson, completer"
            )))
        }
    };
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response())
}

pub async fn expand_get(
    State(st): State<Arc<HttpState>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    expand(&st, &Params::from_parts(q, vec![])?)
}

pub async fn expand_post(
    State(st): State<Arc<HttpState>>,
    RawQuery(q): RawQuery,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    expand(&st, &Params::from_parts(q, form)?)
}

fn expand(st: &HttpState, p: &Params) -> Result<Response, ApiError> {
    let mut results = std::collections::BTreeSet::new();
    let queries: Vec<&str> = p.all("query").collect();
    if queries.is_empty() {
        return Err(ApiError::BadRequest("missing parameter: query".into()));
    }
    for q in queries {
        for f in st
            .store
            .index()
            .find(q, st.limits.max_series)
            .map_err(|e| ApiError::BadRequest(e.to_string()))?
        {
            results.insert(f.path);
        }
    }
    let body = serde_json::json!({ "results": results });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response())
}
