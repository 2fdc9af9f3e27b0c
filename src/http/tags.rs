//! graphite-web's tag API: `/tags`, `/tags/<tag>`, `/tags/autoComplete/tags`,
//! `/tags/autoComplete/values`, `/tags/findSeries`; and `/functions`.

use std::collections::BTreeMap;
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

/// The function list Grafana's editor loads (names, groups, parameters).
pub async fn functions() -> Response {
    let mut out = BTreeMap::new();
    for name in crate::query::functions::names() {
        out.insert(
            name.to_string(),
            serde_json::json!({
                "name": name,
                "function": format!("{name}(seriesList)"),
                "description": "",
                "module": "graphite.render.functions",
                "group": "rollupd",
                "params": [{ "name": "seriesList", "type": "seriesList", "required": true }],
            }),
        );
    }
    json(serde_json::json!(out))
}
