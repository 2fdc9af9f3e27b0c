//! graphite-web's tag API: `/tags`, `/tags/<tag>`, `/tags/autoComplete/tags`,
//! `/tags/autoComplete/values`, `/tags/findSeries`; and `/functions`.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::render::Params;
use super::HttpState;
use crate::query::tags::series_by_tag;
use crate::store::index::parse_tagged;

fn json(v: serde_json::Value) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response()
}

fn limit(p: &Params) -> usize {
    p.get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(usize::MAX)
}

pub async fn list(
    State(st): State<Arc<HttpState>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::from_parts(q, vec![])?;
    let filter = p
        .get("filter")
        .map(regex::Regex::new)
        .transpose()
        .map_err(|e| ApiError::BadRequest(format!("bad filter: {e}")))?;
    let index = st.store.index();
    let tags: Vec<serde_json::Value> = index
        .tag_names()
        .filter(|t| filter.as_ref().is_none_or(|f| f.is_match(t)))
        .take(limit(&p))
        .map(|t| serde_json::json!({ "tag": t }))
        .collect();
    Ok(json(serde_json::Value::Array(tags)))
}

pub async fn detail(
    State(st): State<Arc<HttpState>>,
    Path(tag): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::from_parts(q, vec![])?;
    let index = st.store.index();
    let values: Vec<serde_json::Value> = index
        .tag_values(&tag)
        .take(limit(&p))
        .map(|(v, ids)| serde_json::json!({ "count": ids.len(), "value": v }))
        .collect();
    Ok(json(serde_json::json!({ "tag": tag, "values": values })))
}

/// The tagged series matching the request's `expr`s (all tagged series
/// when there are none).
fn matching(st: &HttpState, p: &Params) -> Result<Vec<String>, ApiError> {
    let exprs: Vec<&str> = p.all("expr").collect();
    let index = st.store.index();
    if exprs.is_empty() {
        let mut all: Vec<String> = index
            .tag_values("name")
            .flat_map(|(_, ids)| {
                ids.iter()
                    .map(|&i| index.series[i as usize].name.to_string())
            })
            .collect();
        all.sort();
        return Ok(all);
    }
    let ids = series_by_tag(&index, &exprs)?;
    Ok(ids
        .into_iter()
        .map(|i| index.series[i as usize].name.to_string())
        .collect())
}

pub async fn find_series(
    State(st): State<Arc<HttpState>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::from_parts(q, vec![])?;
    if p.all("expr").next().is_none() {
        return Err(ApiError::BadRequest("missing parameter: expr".into()));
    }
    Ok(json(serde_json::json!(matching(&st, &p)?)))
}

pub async fn autocomplete_tags(
    State(st): State<Arc<HttpState>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::from_parts(q, vec![])?;
    let prefix = p.get("tagPrefix").unwrap_or("");
    let used: Vec<String> = p
        .all("expr")
        .filter_map(|e| e.split(['=', '!']).next().map(str::to_string))
        .collect();
    let mut tags = std::collections::BTreeSet::new();
    for name in matching(&st, &p)? {
        if let Some((_, kv)) = parse_tagged(&name) {
            for (k, _) in kv {
                if k.starts_with(prefix) && !used.iter().any(|u| u == k) {
                    tags.insert(k.to_string());
                }
            }
        }
    }
    Ok(json(serde_json::json!(tags
        .into_iter()
        .take(limit(&p))
        .collect::<Vec<_>>())))
}

pub async fn autocomplete_values(
    State(st): State<Arc<HttpState>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::from_parts(q, vec![])?;
    let tag = p
        .get("tag")
        .ok_or_else(|| ApiError::BadRequest("missing parameter: tag".into()))?;
    let prefix = p.get("valuePrefix").unwrap_or("");
    let mut values = std::collections::BTreeSet::new();
    for name in matching(&st, &p)? {
        if let Some((_, kv)) = parse_tagged(&name) {
            for (k, v) in kv {
                if k == tag && v.starts_with(prefix) {
                    values.insert(v.to_string());
                }
            }
        }
    }
    Ok(json(serde_json::json!(values
        .into_iter()
        .take(limit(&p))
        .collect::<Vec<_>>())))
}

/// One function's `/functions` entry: its table entry, or a bare one for
/// a function whose family has no table yet.
fn function_info(name: &'static str) -> serde_json::Value {
    use crate::query::functions::{
        info::{FnInfo, SERIES_LIST},
        infos,
    };
    match infos().find(|i| i.name == name) {
        Some(i) => i.json(),
        None => FnInfo::new(name, "Ungrouped", "", &[SERIES_LIST]).json(),
    }
}

fn functions_reply(v: &serde_json::Value, p: &Params) -> Response {
    let body = crate::query::functions::info::to_text(v);
    match p.get("jsonp") {
        Some(cb) => (
            [(header::CONTENT_TYPE, "text/javascript")],
            format!("{cb}({body})"),
        )
            .into_response(),
        None => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
    }
}

/// graphite-web's `/functions`: every function's name, signature,
/// description, group and parameters, as Grafana's Graphite query editor
/// loads them. `group=X` keeps one group; `grouped=true` nests the answer
/// by group; `type=pie` lists pie functions (none here).
pub async fn functions(RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let p = Params::from_parts(q, vec![])?;
    let grouped = matches!(
        p.get("grouped").map(str::to_ascii_lowercase).as_deref(),
        Some("1" | "true")
    );
    let mut out = serde_json::Map::new();
    if p.get("type") != Some("pie") {
        for name in crate::query::functions::names() {
            let info = function_info(name);
            let group = info["group"].as_str().unwrap_or_default().to_string();
            if p.get("group").is_some_and(|g| g != group) {
                continue;
            }
            if grouped {
                let slot = out
                    .entry(group)
                    .or_insert_with(|| serde_json::Value::Object(Default::default()));
                if let Some(m) = slot.as_object_mut() {
                    m.insert(name.to_string(), info);
                }
            } else {
                out.insert(name.to_string(), info);
            }
        }
    }
    Ok(functions_reply(&serde_json::Value::Object(out), &p))
}

/// graphite-web's `/functions/<name>`.
pub async fn function(
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::from_parts(q, vec![])?;
    let name = name.trim_end_matches('/');
    match crate::query::functions::names()
        .into_iter()
        .find(|n| *n == name)
    {
        Some(n) if p.get("type") != Some("pie") => Ok(functions_reply(&function_info(n), &p)),
        _ => Err(ApiError::NotFound(format!("Function not found: {name}"))),
    }
}
