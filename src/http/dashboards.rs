//! Dashboards over HTTP: the list, and each one exported for Grafana
//! (`/d/<name>/grafana.json`, Graphite datasource, deploy events as
//! annotations). The dashboards are the files read at start and on SIGHUP
//! (`dashboards/*.toml` beside the working directory, `[dashboards] paths`).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::alerts::may_read;
use super::error::ApiError;
use super::HttpState;

/// `GET /api/dashboards`: name, title, tags and panel count of each.
pub async fn list(
    State(st): State<Arc<HttpState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    may_read(&st, &headers)?;
    let all = st.dashboards.read().clone();
    let list: Vec<serde_json::Value> = all
        .iter()
        .map(|d| {
            serde_json::json!({
                "name": d.name,
                "title": d.title,
                "tags": d.tags,
                "panels": d.panels().count(),
                "grafana": format!("/d/{}/grafana.json", d.name),
            })
        })
        .collect();
    let body = serde_json::to_string(&list).unwrap_or_else(|_| "[]".into());
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

/// `GET /d/<name>/grafana.json`: the dashboard in Grafana's JSON model.
pub async fn grafana(
    State(st): State<Arc<HttpState>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    may_read(&st, &headers)?;
    let all = st.dashboards.read().clone();
    let d = all
        .iter()
        .find(|d| d.name == name)
        .ok_or_else(|| ApiError::NotFound(format!("no dashboard named {name:?}")))?;
    let body = crate::dashboard::grafana::export_string(d);
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}
