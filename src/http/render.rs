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
        points_read: 0,
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
    let no_null_points = no_null_points(p);
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

/// graphite-web tests `'noNullPoints' in queryParams`: the key alone turns
/// it on, whatever its value (`noNullPoints=false` too).
fn no_null_points(p: &Params) -> bool {
    p.get("noNullPoints").is_some()
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

/// An integer parameter as graphite-web's `queryParamAsInt` reads it: absent
/// is `default`, anything but an integer is a 400 naming it.
fn int_param(p: &Params, key: &str, default: i64) -> Result<i64, ApiError> {
    match p.get(key) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| ApiError::BadRequest(format!("{key} {v:?} is not an integer"))),
    }
}

/// The pattern graphite-web's find view searches: for `format=completer`,
/// `..` becomes `*.` and a `*` is appended unless the query ends in one;
/// with `automatic_variants=1`, a level holding commas but no brace is
/// braced (`a,b` is `{a,b}`).
fn completer_query(query: &str, automatic_variants: bool) -> String {
    let mut q = query.replace("..", "*.");
    if !q.ends_with('*') {
        q.push('*');
    }
    if automatic_variants {
        q = q
            .split('.')
            .map(|part| {
                if part.contains(',') && !part.contains('{') {
                    format!("{{{part}}}")
                } else {
                    part.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(".");
    }
    q
}

fn find(st: &HttpState, p: &Params) -> Result<Response, ApiError> {
    let query = p
        .get("query")
        .ok_or_else(|| ApiError::BadRequest("missing parameter: query".into()))?;
    let format = p.get("format").unwrap_or("treejson");
    let leaves_only = int_param(p, "leavesOnly", 0)? != 0;
    // treejson ids are built on the query as written, before the completer
    // rewrite below.
    let base = match query.rfind('.') {
        Some(i) => format!("{}.", &query[..i]),
        None => String::new(),
    };
    let pattern = if format == "completer" {
        completer_query(query, int_param(p, "automatic_variants", 0)? != 0)
    } else {
        query.to_string()
    };
    let mut found = st
        .store
        .index()
        .find(&pattern, st.limits.max_series)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if leaves_only {
        found.retain(|f| f.leaf.is_some());
    }
    let leaf_name = |path: &str| path.rsplit('.').next().unwrap_or(path).to_string();
    // graphite-web sorts what it found by the last name only (a stable sort,
    // so equal names keep their path order here).
    found.sort_by_cached_key(|f| leaf_name(&f.path));
    let body = match format {
        "treejson" => {
            let mut seen = std::collections::HashSet::new();
            let mut branches = Vec::new();
            let mut leaves = Vec::new();
            // `wildcards=1` (the tree browser): a `*` node first when there
            // is more than one match, a branch if any match is one.
            let wildcards = matches!(p.get("wildcards"), Some("1" | "true"));
            if wildcards && found.len() > 1 {
                let any_branch = found.iter().any(|f| f.branch || f.leaf.is_none());
                let b = i32::from(any_branch);
                branches.push(serde_json::json!({
                    "text": "*",
                    "id": format!("{base}*"),
                    "allowChildren": b,
                    "expandable": b,
                    "leaf": 1 - b,
                }));
            }
            // One node per name, branches before leaves (graphite-web's
            // tree_json).
            for f in &found {
                let name = leaf_name(&f.path);
                if !seen.insert(name.clone()) {
                    continue;
                }
                let leaf = f.leaf.is_some() && !f.branch;
                let node = serde_json::json!({
                    "allowChildren": if leaf { 0 } else { 1 },
                    "expandable": if leaf { 0 } else { 1 },
                    "leaf": if leaf { 1 } else { 0 },
                    "id": format!("{base}{name}"),
                    "text": name,
                });
                if leaf {
                    leaves.push(node);
                } else {
                    branches.push(node);
                }
            }
            branches.extend(leaves);
            serde_json::Value::Array(branches)
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
            let mut metrics = metrics;
            if metrics.len() > 1 && matches!(p.get("wildcards"), Some("1" | "true")) {
                metrics.push(serde_json::json!({ "name": "*" }));
            }
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

/// graphite-web's expand view: the paths each query matches (leaves only
/// with `leavesOnly=1`), merged and sorted, or with `groupByExpr=1` sorted
/// per query.
fn expand(st: &HttpState, p: &Params) -> Result<Response, ApiError> {
    use std::collections::{BTreeMap, BTreeSet};
    let queries: Vec<&str> = p.all("query").collect();
    if queries.is_empty() {
        return Err(ApiError::BadRequest("missing parameter: query".into()));
    }
    let leaves_only = int_param(p, "leavesOnly", 0)? != 0;
    let group = int_param(p, "groupByExpr", 0)? != 0;
    let mut by_query: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for q in queries {
        let paths = by_query.entry(q).or_default();
        for f in st
            .store
            .index()
            .find(q, st.limits.max_series)
            .map_err(|e| ApiError::BadRequest(e.to_string()))?
        {
            if f.leaf.is_some() || !leaves_only {
                paths.insert(f.path);
            }
        }
    }
    let body = if group {
        serde_json::json!({ "results": by_query })
    } else {
        let all: BTreeSet<String> = by_query.into_values().flatten().collect();
        serde_json::json!({ "results": all })
    };
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_null_points_is_on_whatever_its_value() {
        let on = |q: &str| no_null_points(&Params::from_parts(Some(q.into()), vec![]).unwrap());
        for q in [
            "noNullPoints",
            "noNullPoints=",
            "noNullPoints=true",
            "noNullPoints=false",
            "noNullPoints=0",
            "format=json&noNullPoints=False",
        ] {
            assert!(on(q), "{q}");
        }
        assert!(!on("format=json"));
        assert!(!on("nonullpoints=1"), "the key is case-sensitive");
    }

    #[test]
    fn the_completer_searches_what_graphite_web_searches() {
        assert_eq!(completer_query("servers.web", false), "servers.web*");
        assert_eq!(completer_query("servers.", false), "servers.*");
        assert_eq!(completer_query("servers..cpu", false), "servers*.cpu*");
        assert_eq!(completer_query("servers.*", false), "servers.*");
        assert_eq!(
            completer_query("servers.web1,db1.c", true),
            "servers.{web1,db1}.c*"
        );
        assert_eq!(completer_query("servers.{a,b}.c", true), "servers.{a,b}.c*");
        assert_eq!(
            completer_query("servers.web1,db1.c", false),
            "servers.web1,db1.c*"
        );
    }
}
