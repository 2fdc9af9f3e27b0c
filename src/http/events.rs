//! graphite-web's events API: `POST /events/`, `GET /events/get_data`,
//! `DELETE /events/<id>`. Writes need the API token when one is set.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::render::Params;
use super::HttpState;
use crate::events::store::{split_tags, TagSet};
use crate::query::time::parse_at_time;
use crate::telemetry::unix_now;

fn authorized(st: &HttpState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = &st.api_token else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given.is_some_and(|g| token.matches(g)) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

pub async fn post(
    State(st): State<Arc<HttpState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    authorized(&st, &headers)?;
    let v: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("event body is not JSON: {e}")))?;
    let what = v
        .get("what")
        .and_then(|w| w.as_str())
        .ok_or_else(|| ApiError::BadRequest("event needs a \"what\" string".into()))?;
    let tags = match v.get("tags") {
        None | Some(serde_json::Value::Null) => vec![],
        Some(serde_json::Value::String(s)) => split_tags(s),
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .map(|t| {
                t.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| ApiError::BadRequest("event tags must be strings".into()))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "event \"tags\" must be a list or a space-separated string".into(),
            ))
        }
    };
    let when = match v.get("when") {
        None | Some(serde_json::Value::Null) => unix_now() as i64,
        Some(w) => w
            .as_f64()
            .map(|f| f as i64)
            .ok_or_else(|| ApiError::BadRequest("event \"when\" must be epoch seconds".into()))?,
    };
    let data = match v.get("data") {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    let e = st
        .events
        .add(when, what, tags, &data)
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "id": e.id }).to_string(),
    )
        .into_response())
}

pub async fn get_data(
    State(st): State<Arc<HttpState>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::from_parts(q, vec![])?;
    let now = unix_now() as i64;
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
    let tags: Vec<String> = p.all("tags").flat_map(split_tags).collect();
    let set = match p.get("set").unwrap_or("union") {
        "union" => TagSet::Union,
        "intersection" => TagSet::Intersection,
        other => {
            return Err(ApiError::BadRequest(format!(
                "set {other:?} is not one of union, intersection"
            )))
        }
    };
    let list = st
        .events
        .query(from, until, &tags, set)
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let body = serde_json::to_string(&list).unwrap_or_else(|_| "[]".into());
    let body = match p.get("jsonp") {
        Some(cb) => format!("{cb}({body})"),
        None => body,
    };
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

pub async fn delete(
    State(st): State<Arc<HttpState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorized(&st, &headers)?;
    let id: u64 = id
        .trim_end_matches('/')
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("event id {id:?} is not a number")))?;
    match st.events.delete(id) {
        Ok(true) => Ok(StatusCode::OK.into_response()),
        Ok(false) => Err(ApiError::NotFound(format!("no event {id}"))),
        Err(e) => Err(ApiError::Unavailable(e.to_string())),
    }
}
