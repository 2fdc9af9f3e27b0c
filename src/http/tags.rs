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

/// `limit=N`, checked; `None` when absent.
fn limit(p: &Params) -> Result<Option<usize>, ApiError> {
    p.get("limit")
        .map(|l| {
            l.parse::<usize>().map_err(|_| {
                ApiError::BadRequest(format!(
                    "limit must be a whole number, not {:?}",
                    super::reply::shorten(l)
                ))
            })
        })
        .transpose()
}

/// At most `limit` of `items`, and never more than the series cap: a list
/// longer than that is a 422 that says how to narrow it (a million-series
/// index would otherwise be one reply).
fn bounded<T>(
    st: &HttpState,
    items: impl Iterator<Item = T>,
    limit: Option<usize>,
    what: &str,
) -> Result<Vec<T>, ApiError> {
    let cap = st.limits.max_series;
    let v: Vec<T> = items
        .take(limit.unwrap_or(usize::MAX).min(cap.saturating_add(1)))
        .collect();
    if v.len() > cap {
        return Err(ApiError::TooLarge(format!(
            "more than {cap} {what} match (max_series_per_request); narrow the request or \
             give a smaller limit"
        )));
    }
    Ok(v)
}

/// What `walk` offers, kept as [`bounded`] keeps an iterator's items:
/// `walk` is told to stop once one more than fits has come.
fn visited<T>(
    st: &HttpState,
    limit: Option<usize>,
    what: &str,
    walk: impl FnOnce(&mut dyn FnMut(T) -> bool),
) -> Result<Vec<T>, ApiError> {
    let take = limit
        .unwrap_or(usize::MAX)
        .min(st.limits.max_series.saturating_add(1));
    let mut v = Vec::new();
    walk(&mut |x| {
        if v.len() < take {
            v.push(x);
        }
        v.len() < take
    });
    bounded(st, v.into_iter(), limit, what)
}

/// A tag listing, worked on a render slot (see `http::gate`): walking the
/// tag postings of a large index must not hold an async worker.
async fn listing(
    st: Arc<HttpState>,
    p: Params,
    work: impl FnOnce(&HttpState, &Params) -> Result<serde_json::Value, ApiError> + Send + 'static,
) -> Result<Response, ApiError> {
    limit(&p)?;
    let request = format!("{:?}", p.all("expr").collect::<Vec<_>>());
    let st2 = st.clone();
    let (v, _slot) = st.gate.run(request, move |_| work(&st2, &p)).await?;
    Ok(json(v))
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
    listing(st, p, move |st, p| {
        let tags = visited(st, limit(p)?, "tags", |push| {
            st.source.visit_tag_names(&mut |t| {
                if filter.as_ref().is_none_or(|f| f.is_match(t)) {
                    push(serde_json::json!({ "tag": t }))
                } else {
                    true
                }
            })
        })?;
        Ok(serde_json::Value::Array(tags))
    })
    .await
}

pub async fn detail(
    State(st): State<Arc<HttpState>>,
    Path(tag): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::from_parts(q, vec![])?;
    listing(st, p, move |st, p| {
        let values = visited(st, limit(p)?, "tag values", |push| {
            st.source.visit_tag_values(&tag, &mut |v, n| {
                push(serde_json::json!({ "count": n, "value": v }))
            })
        })?;
        Ok(serde_json::json!({ "tag": tag, "values": values }))
    })
    .await
}

/// The tagged series matching the request's `expr`s (all tagged series
/// when there are none), at most the series cap of them.
fn matching(st: &HttpState, p: &Params) -> Result<Vec<String>, ApiError> {
    let exprs: Vec<&str> = p.all("expr").collect();
    if exprs.is_empty() {
        let mut all: Vec<String> = visited(st, None, "tagged series", |push| {
            st.source.visit_tagged(&mut |n| push(n.to_string()))
        })?;
        all.sort();
        return Ok(all);
    }
    let ids = series_by_tag(st.source.as_ref(), &exprs)?;
    bounded(
        st,
        ids.into_iter().map(|i| st.source.name(i)),
        None,
        "tagged series",
    )
}

pub async fn find_series(
    State(st): State<Arc<HttpState>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::from_parts(q, vec![])?;
    if p.all("expr").next().is_none() {
        return Err(ApiError::BadRequest("missing parameter: expr".into()));
    }
    listing(st, p, |st, p| Ok(serde_json::json!(matching(st, p)?))).await
}

pub async fn autocomplete_tags(
    State(st): State<Arc<HttpState>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::from_parts(q, vec![])?;
    listing(st, p, |st, p| {
        let prefix = p.get("tagPrefix").unwrap_or("");
        let used: Vec<String> = p
            .all("expr")
            .filter_map(|e| e.split(['=', '!']).next().map(str::to_string))
            .collect();
        let mut tags = std::collections::BTreeSet::new();
        for name in matching(st, p)? {
            if let Some((_, kv)) = parse_tagged(&name) {
                for (k, _) in kv {
                    if k.starts_with(prefix) && !used.iter().any(|u| u == k) {
                        tags.insert(k.to_string());
                    }
                }
            }
        }
        let n = limit(p)?.unwrap_or(usize::MAX);
        Ok(serde_json::json!(tags
            .into_iter()
            .take(n)
            .collect::<Vec<_>>()))
    })
    .await
}

pub async fn autocomplete_values(
    State(st): State<Arc<HttpState>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::from_parts(q, vec![])?;
    if p.get("tag").is_none() {
        return Err(ApiError::BadRequest("missing parameter: tag".into()));
    }
    listing(st, p, |st, p| {
        let tag = p.get("tag").unwrap_or_default();
        let prefix = p.get("valuePrefix").unwrap_or("");
        let mut values = std::collections::BTreeSet::new();
        for name in matching(st, p)? {
            if let Some((_, kv)) = parse_tagged(&name) {
                for (k, v) in kv {
                    if k == tag && v.starts_with(prefix) {
                        values.insert(v.to_string());
                    }
                }
            }
        }
        let n = limit(p)?.unwrap_or(usize::MAX);
        Ok(serde_json::json!(values
            .into_iter()
            .take(n)
            .collect::<Vec<_>>()))
    })
    .await
}

/// One function's `/functions` entry, from the function registry.
fn function_info(name: &str) -> Option<serde_json::Value> {
    crate::query::functions::registry::get(name).map(|e| e.info.json())
}

fn functions_reply(v: &serde_json::Value, p: &Params) -> Result<Response, ApiError> {
    let body = crate::query::functions::info::to_text(v);
    Ok(super::reply::json(body, super::reply::jsonp(p)?))
}

/// graphite-web's `/functions`: every function's name, signature,
/// description, group and parameters, as Grafana's Graphite query editor
/// loads them. `group=X` keeps one group; `grouped=true` nests the answer
/// by group; `type=pie` lists pie functions (none here).
pub async fn functions(RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let p = Params::from_parts(q, vec![])?;
    super::reply::jsonp(&p)?;
    let grouped = matches!(
        p.get("grouped").map(str::to_ascii_lowercase).as_deref(),
        Some("1" | "true")
    );
    let mut out = serde_json::Map::new();
    if p.get("type") != Some("pie") {
        for e in crate::query::functions::registry::all() {
            let (name, info) = (e.info.name, e.info.json());
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
    functions_reply(&serde_json::Value::Object(out), &p)
}

/// graphite-web's `/functions/<name>`.
pub async fn function(
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::from_parts(q, vec![])?;
    let name = name.trim_end_matches('/');
    match function_info(name) {
        Some(info) if p.get("type") != Some("pie") => functions_reply(&info, &p),
        _ => Err(ApiError::NotFound(format!("Function not found: {name}"))),
    }
}
