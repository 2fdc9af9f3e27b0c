//! graphite-web's events API: `POST /events/`, `GET /events/get_data`,
//! `DELETE /events/<id>`. Writes need the API token when one is set, a
//! JSON body, and no sign of coming from another site: without a token, a
//! page elsewhere could otherwise make a visitor's browser post events
//! (a form can send `text/plain` to any host without asking first).

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::render::Params;
use super::HttpState;
use crate::events::store::{split_tags, EventStore, TagFilter};
use crate::events::QueuedEvent;
use crate::query::time::parse_at_time;
use crate::telemetry::unix_now_i64;

/// The token of an `Authorization: Bearer <token>` header.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

pub(crate) fn authorized(st: &HttpState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = &st.api_token else {
        return Ok(());
    };
    if bearer(headers).is_some_and(|g| token.matches(g)) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// Refuses a write a browser made on behalf of another site: one marked
/// `Sec-Fetch-Site: cross-site`, or one whose `Origin` is not this server
/// (the `Host` it was sent to). Clients that are not browsers send
/// neither header and are not affected.
pub(crate) fn same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let forbidden = |why: String| Err(ApiError::Forbidden(why));
    if let Some(site) = headers.get("sec-fetch-site") {
        if site.as_bytes().eq_ignore_ascii_case(b"cross-site") {
            return forbidden("a cross-site write (Sec-Fetch-Site: cross-site) is refused".into());
        }
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("");
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if origin_is_host(origin, host) {
        Ok(())
    } else {
        forbidden(format!(
            "a write from another origin is refused (Origin {origin:?} is not this server, Host {host:?})"
        ))
    }
}

/// Whether `origin` (`scheme://host[:port]`) names `host` (the `Host`
/// header, `host[:port]`). A port left out is the scheme's default.
fn origin_is_host(origin: &str, host: &str) -> bool {
    let (Ok(o), Ok(h)) = (
        origin.parse::<Uri>(),
        format!("http://{host}").parse::<Uri>(),
    ) else {
        return false;
    };
    let (Some(oa), Some(ha)) = (o.authority(), h.authority()) else {
        return false;
    };
    let default = match o.scheme_str() {
        Some("https") => 443,
        Some("http") => 80,
        _ => return false,
    };
    oa.host().eq_ignore_ascii_case(ha.host())
        && oa.port_u16().unwrap_or(default) == ha.port_u16().unwrap_or(default)
}

/// graphite-web reads the body as JSON; a form's content types are refused
/// so a browser cannot send one from another site without asking first.
fn json_body(headers: &HeaderMap) -> Result<(), ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = ct.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(format!(
            "an event is posted as \"Content-Type: application/json\", not {ct:?}"
        )))
    }
}

/// Whole seconds, as graphite-web keeps them (floored); a value past i64
/// saturates and the store refuses it by range.
#[expect(
    clippy::cast_possible_truncation,
    reason = "the saturating `as` is intended: a time past i64 becomes i64::MIN or i64::MAX, which the store refuses by range (JSON has no NaN)"
)]
fn floor_secs(f: f64) -> i64 {
    f.floor() as i64
}

/// The event a `POST /events/` body describes, as graphite-web reads it:
/// `what` (a string), `tags` (a list, or a string of words), `when` (epoch
/// seconds; now when absent), `data`.
fn event_from_json(body: &[u8]) -> Result<QueuedEvent, ApiError> {
    let v: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("event body is not JSON: {e}")))?;
    let bad = |m: &str| ApiError::BadRequest(m.to_string());
    if !v.is_object() {
        return Err(bad("an event is a JSON object"));
    }
    let what = v
        .get("what")
        .and_then(|w| w.as_str())
        .ok_or_else(|| bad("event needs a \"what\" string"))?;
    let tags = match v.get("tags") {
        None | Some(serde_json::Value::Null) => vec![],
        Some(serde_json::Value::String(s)) => split_tags(s),
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .map(|t| {
                t.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| bad("event \"tags\" must be strings"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(bad(
                "event \"tags\" must be a list or a space-separated string",
            ))
        }
    };
    let when = match v.get("when") {
        None | Some(serde_json::Value::Null) => unix_now_i64(),
        Some(w) => w
            .as_f64()
            .map(floor_secs)
            .ok_or_else(|| bad("event \"when\" must be epoch seconds"))?,
    };
    let data = match v.get("data") {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    Ok(QueuedEvent {
        when,
        what: what.to_string(),
        tags,
        data,
    })
}

/// Runs an event store call off the async workers, on a render slot
/// (`http::gate`): a write waits on disk, and a read of a wide window
/// decodes every event in it, so both count against
/// `max_concurrent_renders` and `render_timeout` like any other work on the
/// blocking pool (which is sized to the slots).
async fn blocking<T: Send + 'static>(
    st: &HttpState,
    what: &str,
    f: impl FnOnce(&EventStore) -> T + Send + 'static,
) -> Result<T, ApiError> {
    let events = st.events.clone();
    let (out, _slot) = st
        .gate
        .run(what.to_string(), move |_| Ok(f(&events)))
        .await?;
    Ok(out)
}

pub async fn post(
    State(st): State<Arc<HttpState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    same_origin(&headers)?;
    authorized(&st, &headers)?;
    json_body(&headers)?;
    let new = event_from_json(&body)?;
    let e = blocking(&st, "POST /events/", move |ev| ev.add(new)).await??;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "id": e.id }).to_string(),
    )
        .into_response())
}

/// Which events `tags` and `set` select, as graphite-web 1.1.10 reads
/// them: only the last `tags` parameter, split on spaces; without `set`
/// (or `set=intersection`) an event must carry every tag, with
/// `set=union` any of them. No `tags` at all is every event; a `tags`
/// with no words in it is none. (graphite-web's tagging library also
/// ignores a tag no event has ever carried; that is its bug, not kept.)
pub fn tag_filter(p: &Params) -> Result<TagFilter, ApiError> {
    let Some(tags) = p.get("tags") else {
        return Ok(TagFilter::Every);
    };
    let tags: Vec<String> = tags
        .split(' ')
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    match p.get("set").unwrap_or("") {
        "" | "intersection" => Ok(TagFilter::AllOf(tags)),
        "union" => Ok(TagFilter::AnyOf(tags)),
        other => Err(ApiError::BadRequest(format!(
            "set {other:?} is not one of union, intersection"
        ))),
    }
}

pub async fn get_data(
    State(st): State<Arc<HttpState>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::from_parts(q, vec![])?;
    let callback = super::reply::jsonp(&p)?;
    let now = unix_now_i64();
    let tz = match p.get("tz") {
        Some(n) => crate::query::time::zone(n)?,
        None => st.default_tz,
    };
    let from = match p.get("from") {
        Some(f) => parse_at_time(f, &tz, now)?,
        None => 0,
    };
    let until = match p.get("until") {
        Some(u) => parse_at_time(u, &tz, now)?,
        None => now,
    };
    let filter = tag_filter(&p)?;
    let list = blocking(&st, "/events/get_data", move |ev| {
        ev.query(from, until, &filter)
    })
    .await??;
    let body = serde_json::to_string(&list).unwrap_or_else(|_| "[]".into());
    Ok(super::reply::json(body, callback))
}

pub async fn delete(
    State(st): State<Arc<HttpState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    same_origin(&headers)?;
    authorized(&st, &headers)?;
    let id: u64 = id
        .trim_end_matches('/')
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("event id {id:?} is not a number")))?;
    if blocking(&st, "DELETE /events/", move |ev| ev.delete(id)).await?? {
        Ok(StatusCode::OK.into_response())
    } else {
        Err(ApiError::NotFound(format!("no event {id}")))
    }
}

#[cfg(test)]
mod tests;
