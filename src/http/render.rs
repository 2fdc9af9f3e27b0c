//! `/render`, `/metrics/find`, `/metrics/expand`.

use std::sync::Arc;

use bytes::Bytes;

use axum::body::Body;
use axum::extract::{Form, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::HttpState;
use crate::events::store::{
    split_tags, EventError, TagFilter, MAX_PER_REQUEST as MAX_EVENTS_PER_REQUEST,
};
use crate::query::eval::{evaluate, Context, Limits, QueryError};
use crate::query::series::Series;
use crate::query::time::{parse_at_time, zone};
use crate::render::image::{self, GraphOptions};
use crate::render::text;
use crate::telemetry::unix_now_i64;

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

    /// Every (key, value) pair, in the order given.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
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

/// A reply's piece size: large enough that the pieces cost little (to
/// write, to send, and to Python's chunked reader), small enough that the
/// client reads the first while the rest is written.
const PIECE_BYTES: usize = 256 << 10;

/// Pieces written ahead of the client: the memory a slow reader can hold
/// (16 MB; the whole reply was held before). Fewer made the writer wait
/// on the client piece by piece, each wait a wake-up: with 4, a
/// 1,000-series reply was no faster than written whole on this 2-core
/// box; with 64, about 20 ms faster (out of 130).
const PIECES_AHEAD: usize = 64;

/// Points of one series per csv piece (a line is about 40 bytes).
const CSV_POINTS: usize = 4096;

/// A reply written piece by piece as the client takes it.
type Pieces = Box<dyn Iterator<Item = String> + Send>;

/// What a render produced: a reply, or a text reply of more than
/// [`PIECE_BYTES`]: its content type, its first piece, and the rest, still
/// to be written.
enum Rendered {
    Reply(Response),
    Streamed(&'static str, String, Pieces),
}

/// A text reply from its pieces: whole, with its length, when it is
/// smaller than a piece; else streamed (json, jsonp, csv and raw replies
/// can be as large as the points cap allows: 50 M points are gigabytes).
fn piecewise(
    content_type: &'static str,
    pieces: impl Iterator<Item = String> + Send + 'static,
) -> Rendered {
    let mut pieces = pieces.peekable();
    let mut first = String::new();
    while first.len() < PIECE_BYTES {
        match pieces.next() {
            Some(p) => first.push_str(&p),
            None => break,
        }
    }
    if pieces.peek().is_none() {
        return Rendered::Reply(([(header::CONTENT_TYPE, content_type)], first).into_response());
    }
    Rendered::Streamed(content_type, first, Box::new(pieces))
}

/// `format=csv` (each series cut every [`CSV_POINTS`] points, its lines
/// being independent) or `format=raw` (a series per piece: one line).
struct TextPieces {
    all: std::vec::IntoIter<Series>,
    current: Option<(Series, usize)>,
    tz: chrono_tz::Tz,
    csv: bool,
}

impl Iterator for TextPieces {
    type Item = String;

    #[expect(
        clippy::cast_possible_wrap,
        reason = "at is an offset into s.values, a Vec, so it is below isize::MAX and fits an i64"
    )]
    fn next(&mut self) -> Option<String> {
        let (s, at) = match self.current.take() {
            Some(c) => c,
            None => (self.all.next()?, 0),
        };
        if !self.csv {
            return Some(text::raw(std::slice::from_ref(&s)));
        }
        let end = (at + CSV_POINTS).min(s.values.len());
        let mut part = Series::new(
            &s.name,
            s.start + at as i64 * s.step,
            s.end,
            s.step,
            s.values[at..end].to_vec(),
        );
        part.end = s.end;
        let text = text::csv(std::slice::from_ref(&part), &self.tz);
        if end < s.values.len() {
            self.current = Some((s, end));
        }
        Some(text)
    }
}

/// Most targets one render request may name: a dashboard panel names a
/// few; each target is parsed and walks the index before any cap on what
/// it reads applies.
pub const MAX_TARGETS: usize = 500;

/// What a request asked for, for the log: its targets (or query), cut.
fn request_label(p: &Params, key: &str) -> String {
    let all: Vec<&str> = p.all(key).collect();
    super::reply::shorten(&format!("{key}={}", all.join(&format!(" {key}="))))
}

async fn render(st: Arc<HttpState>, p: Params) -> Result<Response, ApiError> {
    let started = std::time::Instant::now();
    // What can be refused without work is refused before a slot is taken.
    super::reply::jsonp(&p)?;
    let targets = p.all("target").count();
    if targets > MAX_TARGETS {
        return Err(ApiError::BadRequest(format!(
            "target is given {targets} times; at most {MAX_TARGETS} targets per request"
        )));
    }
    let request = request_label(&p, "target");
    let st2 = st.clone();
    let r = st
        .gate
        .run(request.clone(), move |slot| render_blocking(&st2, &p, slot))
        .await;
    let reply = match r {
        Ok((Rendered::Streamed(ctype, first, rest), slot)) => {
            return Ok(stream(st, started, ctype, first, rest, slot, request))
        }
        Ok((Rendered::Reply(reply), _slot)) => Ok(reply),
        Err(e) => Err(e),
    };
    st.render_latency.observe(started.elapsed());
    reply
}

/// A reply of more than one piece, sent as it is written: the first
/// piece at once, the rest from a blocking task up to [`PIECES_AHEAD`]
/// pieces ahead of the client (which may start reading 31 MB while most of
/// it is still to be written). The writer keeps the request's render slot
/// until the last piece is handed over, and stops at the request's
/// deadline (a client too slow to take the reply by then gets a cut
/// reply, marked as an error, not as the end). The render latency counts
/// until the last piece is written.
fn stream(
    st: Arc<HttpState>,
    started: std::time::Instant,
    content_type: &'static str,
    first: String,
    rest: Pieces,
    slot: super::gate::Slot,
    request: String,
) -> Response {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(PIECES_AHEAD);
    // The channel is empty: the first piece always fits.
    let _ = tx.try_send(Bytes::from(first));
    // Set when the writer stops before the end: the client must not take
    // a cut reply for a whole one.
    let cut = Arc::new(std::sync::Mutex::new(None::<String>));
    let cut_w = cut.clone();
    let rt = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let written = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for piece in rest {
                let sent = rt.block_on(tokio::time::timeout_at(
                    slot.deadline.into(),
                    tx.send(Bytes::from(piece)),
                ));
                match sent {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return Ok(()), // the client went away
                    Err(_) => return Err(QueryError::Deadline(slot.timeout).to_string()),
                }
                slot.check().map_err(|e| e.to_string())?;
            }
            Ok(())
        }));
        let failed = match written {
            Ok(Ok(())) => None,
            Ok(Err(why)) => {
                tracing::warn!(request = %request, "reply cut: {why}");
                Some(why)
            }
            Err(panic) => Some(super::gate::panicked(&request, &*panic).to_string()),
        };
        if let Ok(mut c) = cut_w.lock() {
            *c = failed;
        }
        drop(tx);
        drop(slot);
        st.render_latency.observe(started.elapsed());
    });
    let mut ended = false;
    let body = Body::from_stream(futures_util::stream::poll_fn(move |cx| {
        if ended {
            return std::task::Poll::Ready(None);
        }
        match rx.poll_recv(cx) {
            std::task::Poll::Ready(Some(b)) => std::task::Poll::Ready(Some(Ok(b))),
            std::task::Poll::Ready(None) => {
                ended = true;
                let why = cut.lock().ok().and_then(|mut c| c.take());
                std::task::Poll::Ready(why.map(|w| Err(std::io::Error::other(w))))
            }
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }));
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// A count at least 1 as a usize; past usize, as good as no limit.
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "the saturating `as` is intended: callers pass f >= 1.0, and one past usize becomes usize::MAX"
)]
fn saturating_usize(f: f64) -> usize {
    f as usize
}

fn render_blocking(
    st: &HttpState,
    p: &Params,
    slot: &super::gate::Slot,
) -> Result<Rendered, ApiError> {
    #[cfg(test)]
    test_hook::on_render(p);
    let tz = match p.get("tz") {
        Some(name) => zone(name)?,
        None => st.default_tz,
    };
    let wall = unix_now_i64();
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
        Some(v) => match v.parse::<f64>() {
            Ok(f) if (0.0..=1.0).contains(&f) => f,
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "xFilesFactor must be a number from 0 to 1, not {:?}",
                    super::reply::shorten(v)
                )))
            }
        },
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
        store: st.source.as_ref(),
        from,
        until,
        now,
        tz,
        server_tz: st.default_tz,
        xff,
        limits: Limits {
            deadline: Some((slot.deadline, slot.timeout)),
            ..st.limits
        },
        spent: Default::default(),
    };
    let mut series: Vec<Series> = Vec::new();
    // Which target (its place among the `target` parameters, blanks
    // counted) made each series: for `targetIndex`.
    let mut origin: Vec<usize> = Vec::new();
    for (i, t) in p.all("target").enumerate() {
        if t.trim().is_empty() {
            continue;
        }
        series.extend(evaluate(&mut ctx, t)?);
        origin.resize(series.len(), i);
        slot.check()?;
    }
    if let (Some(fmt), Some(graph)) = (image_format, graph) {
        return render_image(st, p, &series, &graph, &tz, (from, until), fmt).map(Rendered::Reply);
    }
    let max_points = p
        .get("maxDataPoints")
        .map(|v| match v.parse::<f64>() {
            Ok(f) if f >= 1.0 => Ok(saturating_usize(f)),
            _ => Err(ApiError::BadRequest(format!(
                "maxDataPoints must be a number of at least 1, not {:?}",
                super::reply::shorten(v)
            ))),
        })
        .transpose()?;
    let no_null_points = no_null_points(p);
    // Opt-in and ours (graphite-web has no such key): present, each
    // series carries `"targetIndex": N`; absent, the reply is graphite's.
    let target_index = p.get("targetIndex").is_some();
    let json = |series| {
        let pieces = text::JsonPieces::new(series, max_points, no_null_points, PIECE_BYTES);
        if target_index {
            pieces.with_target_index(origin)
        } else {
            pieces
        }
    };
    let text = |series: Vec<Series>, csv| TextPieces {
        all: series.into_iter(),
        current: None,
        tz,
        csv,
    };
    Ok(match format {
        "json" => match super::reply::jsonp(p)? {
            Some(cb) => {
                let open = std::iter::once(format!("{cb}("));
                let close = std::iter::once(")".to_string());
                piecewise("text/javascript", open.chain(json(series)).chain(close))
            }
            None => piecewise("application/json", json(series)),
        },
        "csv" => piecewise("text/csv", text(series, true)),
        "raw" => piecewise("text/plain", text(series, false)),
        other => {
            return Err(ApiError::BadRequest(format!(
                "format {other:?} is not one of png, svg, json, csv, raw"
            )))
        }
    })
}

/// graphite-web tests `'noNullPoints' in queryParams`: the key alone turns
/// it on, whatever its value (`noNullPoints=false` too).
fn no_null_points(p: &Params) -> bool {
    p.get("noNullPoints").is_some()
}

/// `format=png|svg`, with the stored events that `events=<tags>` names
/// marked on the graph: as in `/events/get_data` and `events()`, an event
/// must carry every tag of an `events` value; each `events` value is one
/// colour.
fn render_image(
    st: &HttpState,
    p: &Params,
    series: &[Series],
    graph: &GraphOptions,
    tz: &chrono_tz::Tz,
    (from, until): (i64, i64),
    fmt: image::Format,
) -> Result<Response, ApiError> {
    let mut groups = Vec::new();
    let mut found = 0;
    let wanted: Vec<Vec<String>> = p
        .all("events")
        .map(split_tags)
        .filter(|t| !t.is_empty())
        .collect();
    // Each is a scan of the window: as many as there are colours.
    if wanted.len() > image::EVENT_COLORS {
        return Err(ApiError::BadRequest(format!(
            "at most {} events parameters (one colour each), not {}",
            image::EVENT_COLORS,
            wanted.len()
        )));
    }
    for tags in wanted {
        let events = st.events.query(from, until, &TagFilter::AllOf(tags))?;
        found += events.len();
        if found > MAX_EVENTS_PER_REQUEST {
            return Err(EventError::TooMany {
                cap: MAX_EVENTS_PER_REQUEST,
            }
            .into());
        }
        groups.push(events);
    }
    let marks = image::event_marks(&groups);
    let body = image::render(series, &marks, graph, tz, fmt)
        .map_err(|e| ApiError::Unavailable(format!("image rendering failed: {e}")))?;
    match (fmt, super::reply::jsonp(p)?) {
        // graphite-web hands an SVG to a jsonp callback as a JSON string.
        (image::Format::Svg, Some(cb)) => {
            let text = String::from_utf8_lossy(&body);
            let quoted = serde_json::Value::String(text.into_owned()).to_string();
            Ok(super::reply::javascript(format!("{cb}({quoted})")))
        }
        _ => Ok(([(header::CONTENT_TYPE, fmt.content_type())], body).into_response()),
    }
}

pub async fn find_get(
    State(st): State<Arc<HttpState>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    find(st, Params::from_parts(q, vec![])?).await
}

pub async fn find_post(
    State(st): State<Arc<HttpState>>,
    RawQuery(q): RawQuery,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    find(st, Params::from_parts(q, form)?).await
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

/// An index walk for `/metrics/find` and `/metrics/expand`, on a render
/// slot (a `*.*.*` over a million series takes a while, and must not hold
/// an async worker that `/health` needs), answered as JSON or JSONP.
async fn index_walk(
    st: Arc<HttpState>,
    p: Params,
    walk: fn(&HttpState, &Params) -> Result<String, ApiError>,
) -> Result<Response, ApiError> {
    let callback = super::reply::jsonp(&p)?.map(str::to_string);
    let queries = p.all("query").count();
    if queries == 0 {
        return Err(ApiError::BadRequest("missing parameter: query".into()));
    }
    if queries > MAX_TARGETS {
        return Err(ApiError::BadRequest(format!(
            "query is given {queries} times; at most {MAX_TARGETS} per request"
        )));
    }
    let st2 = st.clone();
    let (body, _slot) = st
        .gate
        .run(request_label(&p, "query"), move |_| {
            #[cfg(test)]
            test_hook::on_render(&p);
            walk(&st2, &p)
        })
        .await?;
    Ok(super::reply::json(body, callback.as_deref()))
}

/// The nodes `query` matches, at most `max_series_per_request` of them:
/// more is a 422 (a silently cut list would look like the whole tree).
fn find_nodes(st: &HttpState, query: &str) -> Result<Vec<crate::store::index::Found>, ApiError> {
    let cap = st.limits.max_series;
    let found = st.source.find(query, cap.saturating_add(1)).map_err(|e| {
        if e.unavailable {
            ApiError::Unavailable(e.to_string())
        } else if e.too_wide {
            ApiError::TooLarge(format!("{e} (max_series_per_request)"))
        } else {
            ApiError::BadRequest(e.to_string())
        }
    })?;
    if found.len() > cap {
        return Err(ApiError::TooLarge(format!(
            "query {:?} matches more than {cap} nodes (max_series_per_request); narrow it",
            super::reply::shorten(query)
        )));
    }
    Ok(found)
}

async fn find(st: Arc<HttpState>, p: Params) -> Result<Response, ApiError> {
    index_walk(st, p, find_body).await
}

fn find_body(st: &HttpState, p: &Params) -> Result<String, ApiError> {
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
    let mut found = find_nodes(st, &pattern)?;
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
    Ok(body.to_string())
}

pub async fn expand_get(
    State(st): State<Arc<HttpState>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    index_walk(st, Params::from_parts(q, vec![])?, expand_body).await
}

pub async fn expand_post(
    State(st): State<Arc<HttpState>>,
    RawQuery(q): RawQuery,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    index_walk(st, Params::from_parts(q, form)?, expand_body).await
}

/// graphite-web's expand view: the paths each query matches (leaves only
/// with `leavesOnly=1`), merged and sorted, or with `groupByExpr=1` sorted
/// per query; at most `max_series_per_request` paths in all.
fn expand_body(st: &HttpState, p: &Params) -> Result<String, ApiError> {
    use std::collections::{BTreeMap, BTreeSet};
    let cap = st.limits.max_series;
    let leaves_only = int_param(p, "leavesOnly", 0)? != 0;
    let group = int_param(p, "groupByExpr", 0)? != 0;
    let mut by_query: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut total = 0usize;
    for q in p.all("query") {
        let paths = by_query.entry(q).or_default();
        for f in find_nodes(st, q)? {
            if (f.leaf.is_some() || !leaves_only) && paths.insert(f.path) {
                total += 1;
            }
        }
        if total > cap {
            return Err(ApiError::TooLarge(format!(
                "the queries match more than {cap} paths (max_series_per_request); narrow them"
            )));
        }
    }
    let body = if group {
        serde_json::json!({ "results": by_query })
    } else {
        let all: BTreeSet<String> = by_query.into_values().flatten().collect();
        serde_json::json!({ "results": all })
    };
    Ok(body.to_string())
}

/// Hooks a test reaches through the targets (or find queries) it sends:
/// `test.panic` panics inside the work; `test.block.<name>` holds the work
/// until the test calls [`test_hook::release`] for that name.
#[cfg(test)]
pub mod test_hook {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::{Condvar, Mutex};
    use std::time::{Duration, Instant};

    use super::Params;

    struct Hooks {
        entered: BTreeMap<String, usize>,
        released: BTreeSet<String>,
    }

    static HOOKS: Mutex<Hooks> = Mutex::new(Hooks {
        entered: BTreeMap::new(),
        released: BTreeSet::new(),
    });
    static CHANGED: Condvar = Condvar::new();

    /// How long a test waits for what it started before it fails (a
    /// bound on a hang, not a timing assertion).
    const PATIENCE: Duration = Duration::from_secs(60);

    pub fn on_render(p: &Params) {
        for t in p.all("target").chain(p.all("query")) {
            if t == "test.panic" {
                panic!("a panic forced by a test");
            }
            if let Some(name) = t.strip_prefix("test.block.") {
                let mut h = HOOKS.lock().unwrap();
                *h.entered.entry(name.to_string()).or_default() += 1;
                CHANGED.notify_all();
                let until = Instant::now() + PATIENCE;
                while !h.released.contains(name) && Instant::now() < until {
                    h = CHANGED.wait_timeout(h, PATIENCE).unwrap().0;
                }
            }
        }
    }

    /// Blocks until `n` pieces of work are held at `test.block.<name>`.
    pub fn wait_entered(name: &str, n: usize) {
        let mut h = HOOKS.lock().unwrap();
        let until = Instant::now() + PATIENCE;
        while h.entered.get(name).copied().unwrap_or(0) < n {
            assert!(Instant::now() < until, "{n} renders never reached {name}");
            h = CHANGED.wait_timeout(h, PATIENCE).unwrap().0;
        }
    }

    pub fn release(name: &str) {
        HOOKS.lock().unwrap().released.insert(name.to_string());
        CHANGED.notify_all();
    }
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
