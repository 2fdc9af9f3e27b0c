//! Alerting over HTTP: rules and their states, history, the backtest,
//! the signal-to-noise review, silences, and `/check` for pollers.
//! Writes need the API token (and no cross-site origin); reads need the
//! read token when one is set. Anything that evaluates a target runs on a
//! render slot with the render deadline, like `/render`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::error::ApiError;
use super::events::{authorized, bearer, same_origin};
use super::render::Params;
use super::HttpState;
use crate::alert::engine::{AlertError, Alerts};
use crate::alert::rule::RuleSpec;
use crate::query::eval::Limits;
use crate::query::time::parse_at_time;

fn unix_now() -> i64 {
    crate::telemetry::unix_now_i64()
}

/// Transitions one history reply holds at most.
const MAX_HISTORY: usize = 10_000;

fn alerts(st: &HttpState) -> Result<&Arc<Alerts>, ApiError> {
    st.alerts
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("alerting is not running on this server".into()))
}

/// Reads need `read_token` (or `api_token`) when `read_token` is set.
pub(crate) fn may_read(st: &HttpState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = &st.read_token else {
        return Ok(());
    };
    let given = bearer(headers);
    let ok = given
        .is_some_and(|g| token.matches(g) || st.api_token.as_ref().is_some_and(|t| t.matches(g)));
    if ok {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

fn may_write(st: &HttpState, headers: &HeaderMap) -> Result<(), ApiError> {
    authorized(st, headers)?;
    same_origin(headers)
}

fn json_reply<T: serde::Serialize>(status: StatusCode, v: &T) -> Response {
    let body = serde_json::to_string(v).unwrap_or_else(|_| "{}".into());
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A JSON body, with a 415 for another content type and a 400 naming
/// serde's complaint (the field, the line and column).
fn read_json<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<T, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.is_empty() && !ct.starts_with("application/json") {
        return Err(ApiError::UnsupportedMediaType(format!(
            "send the body as application/json, not {ct:?}"
        )));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("bad JSON body: {e}")))
}

/// `from`/`until` as graphite-web reads them (`-30d`, `now`, unix seconds).
fn time_param(p: &Params, key: &str, default: &str, now: i64) -> Result<i64, ApiError> {
    let v = p.get(key).unwrap_or(default);
    Ok(parse_at_time(v, &chrono_tz::Tz::UTC, now)?)
}

fn usize_param(p: &Params, key: &str, default: usize, max: usize) -> Result<usize, ApiError> {
    match p.get(key) {
        None => Ok(default),
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if n <= max => Ok(n),
            _ => Err(ApiError::BadRequest(format!(
                "{key} {v:?} is not a whole number up to {max}"
            ))),
        },
    }
}

pub async fn list(
    State(st): State<Arc<HttpState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    may_read(&st, &headers)?;
    let a = alerts(&st)?;
    let body = serde_json::json!({
        "rules": a.list(),
        "file_errors": a.file_errors(),
        "states": a.state_counts(),
    });
    Ok(json_reply(StatusCode::OK, &body))
}

pub async fn detail(
    State(st): State<Arc<HttpState>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    may_read(&st, &headers)?;
    let a = alerts(&st)?;
    let view = a
        .get(&name)
        .ok_or_else(|| ApiError::NotFound(format!("no rule named {name:?}")))?;
    let now = unix_now();
    let transitions = a.history(Some(&name), now - 7 * 86400, now, 50)?;
    let rule = a.rule(&name);
    let body = serde_json::json!({
        "rule": view,
        "transitions": transitions,
        "graph": rule.map(|r| a.graph_url(&r)),
    });
    Ok(json_reply(StatusCode::OK, &body))
}

pub async fn history(
    State(st): State<Arc<HttpState>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    may_read(&st, &headers)?;
    let a = alerts(&st)?.clone();
    let p = Params::from_parts(q, vec![])?;
    let now = unix_now();
    let from = time_param(&p, "from", "-7d", now)?;
    let until = time_param(&p, "until", "now", now)?;
    let limit = usize_param(&p, "limit", 1000, MAX_HISTORY)?;
    let rule = (name != "_all").then_some(name);
    let (h, _) = st
        .gate
        .run("alert history".into(), move |_| {
            Ok(a.history(rule.as_deref(), from, until, limit)?)
        })
        .await?;
    Ok(json_reply(
        StatusCode::OK,
        &serde_json::json!({ "from": from, "until": until, "transitions": h }),
    ))
}

pub async fn put_rule(
    State(st): State<Arc<HttpState>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    may_write(&st, &headers)?;
    let a = alerts(&st)?;
    let mut spec: RuleSpec = read_json(&headers, &body)?;
    if spec.name.is_empty() {
        spec.name = name.clone();
    } else if spec.name != name {
        return Err(ApiError::BadRequest(format!(
            "the body names rule {:?} but the path names {name:?}",
            spec.name
        )));
    }
    let created = a.put_rule(spec)?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json_reply(status, &a.get(&name)))
}

pub async fn delete_rule(
    State(st): State<Arc<HttpState>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    may_write(&st, &headers)?;
    alerts(&st)?.delete_rule(&name)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestBody {
    rule: RuleSpec,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    until: Option<String>,
}

/// `POST /api/alerts/test`: a rule run over stored history, saving and
/// sending nothing: the transitions and notifications it would have made.
pub async fn test(
    State(st): State<Arc<HttpState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    may_read(&st, &headers)?;
    let a = alerts(&st)?.clone();
    let mut b: TestBody = read_json(&headers, &body)?;
    if b.rule.name.is_empty() {
        b.rule.name = "test".into();
    }
    let now = unix_now();
    let tz = chrono_tz::Tz::UTC;
    let from = parse_at_time(b.from.as_deref().unwrap_or("-1d"), &tz, now)?;
    let until = parse_at_time(b.until.as_deref().unwrap_or("now"), &tz, now)?;
    let limits = st.limits;
    let (r, _) = st
        .gate
        .run(format!("alert test {}", b.rule.target), move |slot| {
            let limits = Limits {
                deadline: Some((slot.deadline, slot.timeout)),
                ..limits
            };
            Ok(a.backtest(b.rule, from, until, limits)?)
        })
        .await?;
    Ok(json_reply(StatusCode::OK, &r))
}

impl From<AlertError> for ApiError {
    fn from(e: AlertError) -> ApiError {
        match e {
            // The query stage's own statuses: 422 for a cap, 503 for the
            // deadline or the store, 400 for the rest.
            AlertError::Query(q) => ApiError::Query(q),
            other => ApiError::Alert(other),
        }
    }
}

/// `GET /api/alerts/review?from=-30d&until=now&flap_under=5min&deploy_within=15min&format=json|csv`:
/// the monthly signal-to-noise review, one row per rule.
pub async fn review(
    State(st): State<Arc<HttpState>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    use crate::alert::review::Params as ReviewParams;
    may_read(&st, &headers)?;
    let a = alerts(&st)?.clone();
    let p = Params::from_parts(q, vec![])?;
    let now = unix_now();
    let from = time_param(&p, "from", "-30d", now)?;
    let until = time_param(&p, "until", "now", now)?;
    if until <= from {
        return Err(ApiError::BadRequest("until must be after from".into()));
    }
    let mut rp = ReviewParams::new(from, until);
    for (key, slot) in [
        ("flap_under", &mut rp.flap_under),
        ("deploy_within", &mut rp.deploy_within),
    ] {
        if let Some(v) = p.get(key) {
            *slot = crate::alert::rule::parse_duration(v).ok_or_else(|| {
                ApiError::BadRequest(format!("{key} {v:?} is not a duration like \"5min\""))
            })?;
        }
    }
    let csv = match p.get("format") {
        None | Some("json") => false,
        Some("csv") => true,
        Some(f) => {
            return Err(ApiError::BadRequest(format!(
                "format {f:?} is not json or csv"
            )))
        }
    };
    let (r, _) = st
        .gate
        .run("alert review".into(), move |_| Ok(a.review(&rp)?))
        .await?;
    if csv {
        Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], r.csv()).into_response())
    } else {
        Ok(json_reply(StatusCode::OK, &r))
    }
}

// ----- silences -----

pub async fn silences(
    State(st): State<Arc<HttpState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    may_read(&st, &headers)?;
    let now = unix_now();
    let list: Vec<serde_json::Value> = alerts(&st)?
        .silences()
        .iter()
        .map(|s| s.to_json(now))
        .collect();
    Ok(json_reply(StatusCode::OK, &list))
}

/// `POST /api/silences`: Alertmanager's body (matchers, createdBy,
/// comment, startsAt, endsAt; `id` to update one). Answers
/// `{"silenceID": ...}` as Alertmanager does.
pub async fn add_silence(
    State(st): State<Arc<HttpState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    may_write(&st, &headers)?;
    let spec: crate::alert::silence::SilenceSpec = read_json(&headers, &body)?;
    let s = alerts(&st)?.add_silence(spec)?;
    Ok(json_reply(
        StatusCode::OK,
        &serde_json::json!({ "silenceID": s.id }),
    ))
}

/// `DELETE /api/silences/<id>`: expires it (the record stays, so the
/// history says who silenced what).
pub async fn delete_silence(
    State(st): State<Arc<HttpState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    may_write(&st, &headers)?;
    alerts(&st)?.expire_silence(&id)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ----- /check -----

/// The parameters `/check` reads; anything else is a 400 (a mistyped
/// `critical=` must not turn into a check that can never fire).
const CHECK_PARAMS: [&str; 11] = [
    "target",
    "reducer",
    "window",
    "direction",
    "warn",
    "crit",
    "warn_recovery",
    "crit_recovery",
    "nulls",
    "format",
    "name",
];

/// `800` or a range `10:20` (also `10,20`) as a bound.
fn bound_param(p: &Params, key: &str) -> Result<Option<crate::alert::rule::Bound>, ApiError> {
    use crate::alert::rule::Bound;
    let Some(v) = p.get(key) else {
        return Ok(None);
    };
    let num = |s: &str| -> Result<f64, ApiError> {
        s.trim()
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .ok_or_else(|| {
                ApiError::BadRequest(format!("{key} {v:?} is not a number or a range low:high"))
            })
    };
    match v.split_once([':', ',']) {
        Some((lo, hi)) => Ok(Some(Bound::Pair([num(lo)?, num(hi)?]))),
        None => Ok(Some(Bound::One(num(v)?))),
    }
}

fn check_reply(result: &crate::alert::check::CheckResult, nagios: bool) -> Response {
    let status =
        StatusCode::from_u16(result.http_status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    if nagios {
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{}\n", result.nagios()),
        )
            .into_response()
    } else {
        json_reply(status, result)
    }
}

fn wants_nagios(p: &Params) -> Result<bool, ApiError> {
    match p.get("format") {
        None | Some("json") => Ok(false),
        Some("nagios") => Ok(true),
        Some(f) => Err(ApiError::BadRequest(format!(
            "format {f:?} is not json or nagios"
        ))),
    }
}

/// `GET /check?target=...&reducer=avg&window=5min&direction=above&warn=..&crit=..`:
/// one threshold check, now, with no state kept. 200 when every series is
/// ok, 503 otherwise (warning, critical, no data or error: a poller or a
/// load balancer reads the status alone); `format=nagios` for the plugin
/// line.
pub async fn check_adhoc(
    State(st): State<Arc<HttpState>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    may_read(&st, &headers)?;
    let a = alerts(&st)?.clone();
    let p = Params::from_parts(q, vec![])?;
    for (k, _) in p.pairs() {
        if !CHECK_PARAMS.contains(&k.as_str()) {
            return Err(ApiError::BadRequest(format!(
                "unknown parameter {k:?}; /check reads {}",
                CHECK_PARAMS.join(", ")
            )));
        }
    }
    let nagios = wants_nagios(&p)?;
    let target = p
        .get("target")
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| ApiError::BadRequest("target is required".into()))?;
    let spec = RuleSpec {
        name: p.get("name").unwrap_or("check").to_string(),
        target: target.to_string(),
        reducer: Some(p.get("reducer").unwrap_or("avg").to_string()),
        window: Some(p.get("window").unwrap_or("5min").to_string()),
        direction: p.get("direction").map(str::to_string),
        nulls: p.get("nulls").map(str::to_string),
        warn: bound_param(&p, "warn")?,
        crit: bound_param(&p, "crit")?,
        warn_recovery: bound_param(&p, "warn_recovery")?,
        crit_recovery: bound_param(&p, "crit_recovery")?,
        ..Default::default()
    };
    let rule = crate::alert::rule::Rule::from_spec(spec).map_err(AlertError::from)?;
    let limits = st.limits;
    let (result, _) = st
        .gate
        .run(format!("check {target}"), move |slot| {
            let limits = Limits {
                deadline: Some((slot.deadline, slot.timeout)),
                ..limits
            };
            let found = a.check(&rule, unix_now(), limits)?;
            let series = found
                .into_iter()
                .map(|i| crate::alert::check::SeriesCheck {
                    name: i.series,
                    value: i.value,
                    state: i.state,
                    reason: i.reason,
                })
                .collect();
            Ok(crate::alert::check::evaluate(&rule, series))
        })
        .await?;
    Ok(check_reply(&result, nagios))
}

/// `GET /check/<rule>`: a configured rule's instances as alerting holds
/// them now (its `for`, hysteresis and no-data policy applied).
pub async fn check_rule(
    State(st): State<Arc<HttpState>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    may_read(&st, &headers)?;
    let a = alerts(&st)?;
    let p = Params::from_parts(q, vec![])?;
    let nagios = wants_nagios(&p)?;
    let rule = a
        .rule(&name)
        .ok_or_else(|| ApiError::NotFound(format!("no rule named {name:?}")))?;
    let view = a
        .get(&name)
        .ok_or_else(|| ApiError::NotFound(format!("no rule named {name:?}")))?;
    let series = view
        .instances
        .into_iter()
        .map(|i| crate::alert::check::SeriesCheck {
            name: i.series,
            value: i.value,
            state: i.state,
            reason: i.reason,
        })
        .collect();
    Ok(check_reply(
        &crate::alert::check::evaluate(&rule, series),
        nagios,
    ))
}
