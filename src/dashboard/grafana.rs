//! Grafana's dashboard JSON model, both ways: [`export`] writes a dashboard
//! for Grafana's Graphite datasource (schemaVersion 39, the datasource
//! picked through a `datasource` variable), [`import`] reads a Grafana
//! dashboard whose targets are Graphite's.
//!
//! What Grafana has no field for (an `lt` band, thresholds taken from an
//! alert rule, a panel's own events tag, the `alerts` kind) rides in a
//! `rollupd` object on the panel, which Grafana keeps and ignores; the
//! native fields are still written, so the dashboard draws in Grafana, and
//! read back when that object is absent.

use serde_json::{json, Map, Value};

use super::model::{
    Band, Dashboard, DashboardError, DashboardSpec, Op, Panel, PanelKind, PanelSpec, RowSpec,
    ThresholdSpec, Thresholds, Unit, VariableSpec, DEFAULT_EVENTS, GRID_COLUMNS,
};

pub const SCHEMA_VERSION: u64 = 39;
/// Grafana's grid: 24 columns to our 12.
const GRAFANA_COLUMNS: u64 = 24;
const SCALE: u64 = GRAFANA_COLUMNS / GRID_COLUMNS as u64;

fn datasource() -> Value {
    json!({"type": "graphite", "uid": "${datasource}"})
}

fn grafana_time(t: &str) -> String {
    if t.starts_with('-') {
        format!("now{t}")
    } else {
        t.to_string()
    }
}

fn graphite_time(t: &str) -> String {
    match t.strip_prefix("now") {
        Some(rest) if rest.starts_with('-') => rest.to_string(),
        _ => t.to_string(),
    }
}

fn refresh_string(d: std::time::Duration) -> String {
    let s = d.as_secs();
    if s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

fn grafana_kind(p: &Panel) -> &'static str {
    match p.kind {
        PanelKind::Graph => "timeseries",
        PanelKind::Stat => "stat",
        PanelKind::Table => "table",
        // Grafana's alertlist lists Grafana's alerts, not rollupd's: the
        // panel becomes a note, and `rollupd.kind` brings it back.
        PanelKind::Alerts | PanelKind::Text { .. } => "text",
    }
}

fn height(p: &Panel) -> u64 {
    match p.kind {
        PanelKind::Stat | PanelKind::Text { .. } => 4,
        _ => 8,
    }
}

#[expect(
    clippy::cast_possible_truncation,
    reason = "i indexes a checked panel's targets, at most MAX_TARGETS (26, Dashboard::from_spec refuses more): A..=Z"
)]
fn ref_id(i: usize) -> String {
    char::from(b'A' + i as u8).to_string()
}

fn panel_json(p: &Panel, id: u64, grid: Value) -> Value {
    let mut defaults = Map::new();
    defaults.insert("unit".into(), json!(p.unit.as_str()));
    if let Some(v) = p.y_min {
        defaults.insert("min".into(), json!(v));
    }
    if let Some(v) = p.y_max {
        defaults.insert("max".into(), json!(v));
    }
    let base = if p.kind == PanelKind::Stat {
        "green"
    } else {
        "transparent"
    };
    let mut steps = vec![json!({"color": base, "value": null})];
    let mut ext = Map::new();
    match &p.thresholds {
        Thresholds::Bands(bands) => {
            let mut up: Vec<&Band> = bands.iter().filter(|b| b.op == Op::Gt).collect();
            up.sort_by(|a, b| a.value.total_cmp(&b.value));
            steps.extend(
                up.iter()
                    .map(|b| json!({"color": b.color, "value": b.value})),
            );
            let exact: Vec<Value> = bands
                .iter()
                .map(|b| {
                    let op = if b.op == Op::Gt { "gt" } else { "lt" };
                    json!({"value": b.value, "color": b.color, "op": op})
                })
                .collect();
            ext.insert("thresholds".into(), Value::Array(exact));
        }
        Thresholds::Alert(rule) => {
            ext.insert("alert".into(), json!(rule));
        }
    }
    let has_bands = steps.len() > 1;
    defaults.insert(
        "thresholds".into(),
        json!({"mode": "absolute", "steps": steps}),
    );
    let mut custom = Map::new();
    if p.kind == PanelKind::Graph {
        custom.insert(
            "scaleDistribution".into(),
            if p.log_scale {
                json!({"type": "log", "log": 10})
            } else {
                json!({"type": "linear"})
            },
        );
        custom.insert(
            "stacking".into(),
            json!({"mode": (if p.stack { "normal" } else { "none" }), "group": "A"}),
        );
        custom.insert(
            "thresholdsStyle".into(),
            json!({"mode": (if has_bands { "area" } else { "off" })}),
        );
    } else {
        // Kept for the round trip: only a graph draws them in Grafana.
        if p.log_scale {
            ext.insert("log_scale".into(), json!(true));
        }
        if p.stack {
            ext.insert("stack".into(), json!(true));
        }
    }
    if !custom.is_empty() {
        defaults.insert("custom".into(), Value::Object(custom));
    }
    ext.insert("events".into(), json!(p.events));
    let options = match &p.kind {
        PanelKind::Graph => json!({
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": true},
            "tooltip": {"mode": "multi", "sort": "desc"}
        }),
        PanelKind::Stat => json!({
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": false},
            "colorMode": "background",
            "graphMode": "area"
        }),
        PanelKind::Table => json!({"showHeader": true}),
        PanelKind::Text { markdown } => json!({"mode": "markdown", "content": markdown}),
        PanelKind::Alerts => {
            ext.insert("kind".into(), json!("alerts"));
            json!({
                "mode": "markdown",
                "content": "rollupd's alert states: this panel lists them on rollupd's own dashboard page."
            })
        }
    };
    let targets: Vec<Value> = p
        .targets
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"refId": ref_id(i), "target": t, "datasource": datasource()}))
        .collect();
    let mut panel = json!({
        "id": id,
        "type": grafana_kind(p),
        "title": p.title,
        "gridPos": grid,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
        "rollupd": ext,
    });
    let obj = panel.as_object_mut().expect("a panel is an object");
    if !targets.is_empty() {
        obj.insert("datasource".into(), datasource());
        obj.insert("targets".into(), Value::Array(targets));
    }
    if p.kind == PanelKind::Table {
        // Graphite answers series; a table shows one row per series.
        obj.insert(
            "transformations".into(),
            json!([{"id": "reduce", "options": {"reducers": ["mean", "max", "lastNotNull"]}}]),
        );
    }
    panel
}

/// The dashboard as Grafana's dashboard JSON.
pub fn export(d: &Dashboard) -> Value {
    let mut panels = Vec::new();
    let mut id = 0u64;
    let mut y = 0u64;
    for row in &d.rows {
        id += 1;
        panels.push(json!({
            "id": id,
            "type": "row",
            "title": row.title,
            "collapsed": false,
            "gridPos": {"x": 0, "y": y, "w": GRAFANA_COLUMNS, "h": 1},
            "panels": []
        }));
        y += 1;
        let (mut x, mut line_h) = (0u64, 0u64);
        for p in &row.panels {
            let w = u64::from(p.width) * SCALE;
            if x + w > GRAFANA_COLUMNS {
                y += line_h;
                x = 0;
                line_h = 0;
            }
            let h = height(p);
            id += 1;
            panels.push(panel_json(p, id, json!({"x": x, "y": y, "w": w, "h": h})));
            x += w;
            line_h = line_h.max(h);
        }
        y += line_h;
    }
    let mut annotations = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for (_, _, p) in d.panels() {
        if !p.events.is_empty() && !seen.contains(&p.events.as_str()) {
            seen.push(&p.events);
            annotations.push(json!({
                "name": p.events,
                "datasource": datasource(),
                "enable": true,
                "iconColor": "rgba(255, 96, 96, 1)",
                "fromAnnotations": true,
                "target": "",
                "tags": p.events,
                "type": "tags"
            }));
        }
    }
    let mut vars = vec![json!({
        "name": "datasource",
        "label": "Graphite",
        "type": "datasource",
        "query": "graphite",
        "current": {},
        "hide": 0,
        "options": [],
        "refresh": 1,
        "regex": ""
    })];
    for v in &d.variables {
        let current = match &v.default {
            None => json!({}),
            Some(text) => {
                let value = if v.include_all && text == "All" {
                    "$__all"
                } else {
                    text
                };
                if v.multi {
                    json!({"selected": true, "text": [text], "value": [value]})
                } else {
                    json!({"selected": true, "text": text, "value": value})
                }
            }
        };
        vars.push(json!({
            "name": v.name,
            "label": v.name,
            "type": "query",
            "datasource": datasource(),
            "query": v.query,
            "definition": v.query,
            "multi": v.multi,
            "includeAll": v.include_all,
            "current": current,
            "hide": 0,
            "options": [],
            "refresh": 1,
            "regex": "",
            "sort": 1
        }));
    }
    json!({
        "uid": d.name,
        "title": d.title,
        "tags": d.tags,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": true,
        "graphTooltip": 1,
        "timezone": "browser",
        "time": {"from": grafana_time(&d.from), "to": grafana_time(&d.until)},
        "refresh": d.refresh.map(refresh_string).unwrap_or_default(),
        "annotations": {"list": annotations},
        "templating": {"list": vars},
        "panels": panels
    })
}

/// [`export`] as the text committed in `dashboards/*.json`: pretty, with a
/// final newline.
pub fn export_string(d: &Dashboard) -> String {
    let mut s = serde_json::to_string_pretty(&export(d)).expect("JSON values serialize");
    s.push('\n');
    s
}

fn refused(field: &str, message: String) -> DashboardError {
    DashboardError {
        panel: None,
        field: field.into(),
        message,
    }
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// Whether a `datasource` value is (or may be) Graphite: absent, a
/// variable, or of type `graphite`. `Err` holds what it is instead.
fn check_datasource(v: Option<&Value>) -> Result<bool, String> {
    let mixed = "-- Mixed --";
    match v {
        None | Some(Value::Null) => Ok(false),
        Some(Value::String(s)) => {
            if s == mixed {
                Ok(true)
            } else if s.starts_with("-- ") {
                Err(format!("{s:?} is not a Graphite datasource"))
            } else {
                // A datasource named in an old dashboard: its type is not
                // written down, so the targets' shape decides.
                Ok(false)
            }
        }
        Some(o) => {
            let ty = str_of(o, "type").unwrap_or("");
            let uid = str_of(o, "uid").unwrap_or("");
            if uid == mixed {
                Ok(true)
            } else if ty == "graphite" || (ty.is_empty() && uid.starts_with('$')) {
                Ok(false)
            } else {
                Err(format!("type {ty:?} is not a Graphite datasource"))
            }
        }
    }
}

fn tags_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Array(a) => {
            let tags: Vec<&str> = a.iter().filter_map(Value::as_str).collect();
            Some(tags.join(" "))
        }
        _ => None,
    }
}

/// The events tag a Grafana dashboard's Graphite annotations draw: the
/// first tags annotation (legacy `tags` or a `target` object's).
fn annotation_events(dash: &Value) -> Option<String> {
    let list = dash.pointer("/annotations/list")?.as_array()?;
    list.iter().find_map(|a| {
        if check_datasource(a.get("datasource")).is_err() || a.get("builtIn").is_some() {
            return None;
        }
        tags_text(a.get("tags"))
            .or_else(|| tags_text(a.pointer("/target/tags")))
            .filter(|t| !t.is_empty())
    })
}

fn unit_from(g: Option<&str>) -> Option<String> {
    let u = match g? {
        "ops" => Unit::Reqps,
        "none" => Unit::Short,
        other => Unit::parse(other)?,
    };
    Some(u.as_str().to_string())
}

fn left_out(kind: &str, p: &Value) -> String {
    let mut md =
        format!("Left out on import from Grafana: a `{kind}` panel, which rollupd does not draw.");
    let targets: Vec<&str> = p
        .get("targets")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|t| str_of(t, "target")).collect())
        .unwrap_or_default();
    if !targets.is_empty() {
        md.push_str(" Its targets:\n");
        for t in targets {
            md.push_str(&format!("\n- `{t}`"));
        }
    }
    md
}

/// A Grafana panel an import could not carry over: kept as a text panel
/// that says so (and lists its targets), and reported to whoever imported.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LeftOut {
    /// Row and panel index in the imported dashboard, 0-based.
    pub row: usize,
    pub panel: usize,
    pub title: String,
    /// Grafana's panel type.
    pub kind: String,
    pub why: String,
}

fn panel_spec(
    p: &Value,
    at: (usize, usize),
    events_default: &str,
    left: &mut Vec<LeftOut>,
) -> Result<PanelSpec, DashboardError> {
    let title = str_of(p, "title").unwrap_or("").to_string();
    let named = |field: &str, message: String| DashboardError {
        panel: Some((at.0, at.1, title.clone())),
        field: field.into(),
        message,
    };
    let ext = p.get("rollupd").cloned().unwrap_or(Value::Null);
    let ty = str_of(p, "type").unwrap_or("graph");
    let kind = match ty {
        "timeseries" | "graph" => None,
        "stat" | "singlestat" => Some("stat"),
        "table" | "table-old" => Some("table"),
        "text" if str_of(&ext, "kind") == Some("alerts") => Some("alerts"),
        _ => Some("text"),
    };
    let mut spec = PanelSpec {
        title: title.clone(),
        kind: kind.map(str::to_string),
        ..PanelSpec::default()
    };
    if kind == Some("text") {
        spec.markdown = Some(if ty == "text" {
            let md = p
                .pointer("/options/content")
                .or_else(|| p.get("content"))
                .and_then(Value::as_str)
                .unwrap_or("");
            if md.trim().is_empty() {
                "(an empty text panel)".to_string()
            } else {
                md.to_string()
            }
        } else {
            left.push(LeftOut {
                row: at.0,
                panel: at.1,
                title: title.clone(),
                kind: ty.to_string(),
                why: format!(
                    "rollupd does not draw a {ty:?} panel (it draws graph, stat, table, alerts and text); kept as a text note listing its targets"
                ),
            });
            left_out(ty, p)
        });
    }
    let draws = matches!(kind, None | Some("stat") | Some("table"));
    let mixed = check_datasource(p.get("datasource")).map_err(|m| named("datasource", m))?;
    if draws {
        let targets = p.get("targets").and_then(Value::as_array);
        for (i, t) in targets.into_iter().flatten().enumerate() {
            let field = format!("targets[{i}]");
            let own = check_datasource(t.get("datasource"))
                .map_err(|m| named(&format!("{field}.datasource"), m))?;
            if own {
                return Err(named(
                    &format!("{field}.datasource"),
                    "a target cannot be mixed".into(),
                ));
            }
            if mixed && t.get("datasource").is_none() {
                return Err(named(
                    &format!("{field}.datasource"),
                    "a target of a mixed panel names no datasource".into(),
                ));
            }
            if t.get("hide").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            let text = str_of(t, "targetFull")
                .filter(|s| !s.is_empty())
                .or_else(|| str_of(t, "target"));
            match text {
                Some(s) => spec.targets.push(s.to_string()),
                None => {
                    return Err(named(
                        &field,
                        "has no Graphite `target` (another datasource's query?)".into(),
                    ))
                }
            }
        }
    }
    let defaults = p
        .pointer("/fieldConfig/defaults")
        .cloned()
        .unwrap_or(Value::Null);
    if draws {
        spec.unit = unit_from(str_of(&defaults, "unit"));
        spec.y_min = defaults.get("min").and_then(Value::as_f64);
        spec.y_max = defaults.get("max").and_then(Value::as_f64);
        spec.log_scale = defaults
            .pointer("/custom/scaleDistribution/type")
            .and_then(Value::as_str)
            == Some("log")
            || ext.get("log_scale").and_then(Value::as_bool) == Some(true);
        spec.stack = defaults
            .pointer("/custom/stacking/mode")
            .and_then(Value::as_str)
            .is_some_and(|m| m != "none")
            || ext.get("stack").and_then(Value::as_bool) == Some(true);
    }
    if let Some(rule) = str_of(&ext, "alert") {
        spec.alert = Some(rule.to_string());
    } else if let Some(list) = ext.get("thresholds").and_then(Value::as_array) {
        for (i, t) in list.iter().enumerate() {
            let value = t.get("value").and_then(Value::as_f64).ok_or_else(|| {
                named(
                    &format!("rollupd.thresholds[{i}].value"),
                    "must be a number".into(),
                )
            })?;
            spec.thresholds.push(ThresholdSpec {
                value,
                color: str_of(t, "color").unwrap_or("").to_string(),
                op: str_of(t, "op").map(str::to_string),
            });
        }
    } else if draws {
        let steps = defaults
            .pointer("/thresholds/steps")
            .and_then(Value::as_array);
        for s in steps.into_iter().flatten() {
            // The base step (value null) colours what is below every band.
            if let Some(value) = s.get("value").and_then(Value::as_f64) {
                spec.thresholds.push(ThresholdSpec {
                    value,
                    color: str_of(s, "color").unwrap_or("").to_string(),
                    op: None,
                });
            }
        }
    }
    if draws {
        spec.events = Some(str_of(&ext, "events").unwrap_or(events_default).to_string());
    } else if let Some(e) = str_of(&ext, "events") {
        spec.events = Some(e.to_string());
    }
    let w = p
        .pointer("/gridPos/w")
        .and_then(Value::as_u64)
        .unwrap_or(12);
    // Clamped to 1..=GRID_COLUMNS, a u32: the fallback is never taken.
    spec.width = Some(
        u32::try_from(w.div_ceil(SCALE).clamp(1, u64::from(GRID_COLUMNS))).unwrap_or(GRID_COLUMNS),
    );
    Ok(spec)
}

fn variable_spec(v: &Value, i: usize) -> Result<Option<VariableSpec>, DashboardError> {
    let name = str_of(v, "name").unwrap_or("").to_string();
    let field = format!("templating.list[{i}]");
    match str_of(v, "type").unwrap_or("query") {
        "datasource" => return Ok(None),
        "query" => {}
        other => {
            return Err(refused(
                &field,
                format!(
                "variable {name:?}: a {other:?} variable is not supported (only Graphite queries)"
            ),
            ))
        }
    }
    check_datasource(v.get("datasource"))
        .and_then(|mixed| {
            if mixed {
                Err("a mixed datasource".into())
            } else {
                Ok(())
            }
        })
        .map_err(|m| {
            refused(
                &format!("{field}.datasource"),
                format!("variable {name:?}: {m}"),
            )
        })?;
    let query = match v.get("query") {
        Some(Value::String(s)) => s.clone(),
        Some(o @ Value::Object(_)) => str_of(o, "target")
            .or_else(|| str_of(o, "query"))
            .unwrap_or("")
            .to_string(),
        _ => String::new(),
    };
    let one = |c: &Value| -> Option<String> {
        match c {
            Value::String(s) => Some(s.clone()),
            Value::Array(a) if a.len() == 1 => a[0].as_str().map(str::to_string),
            Value::Array(a) if a.len() > 1 => {
                let all: Vec<&str> = a.iter().filter_map(Value::as_str).collect();
                Some(format!("{{{}}}", all.join(",")))
            }
            _ => None,
        }
    };
    let default = v
        .pointer("/current/value")
        .and_then(one)
        .map(|d| if d == "$__all" { "All".to_string() } else { d })
        .filter(|d| !d.is_empty());
    Ok(Some(VariableSpec {
        name,
        query,
        multi: v.get("multi").and_then(Value::as_bool).unwrap_or(false),
        include_all: v
            .get("includeAll")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        default,
    }))
}

fn slug(title: &str) -> String {
    let mut s = String::new();
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
        } else if !s.ends_with('-') && !s.is_empty() {
            s.push('-');
        }
    }
    let s = s.trim_end_matches('-');
    if s.is_empty() {
        "imported".into()
    } else {
        s.chars().take(64).collect()
    }
}

/// Reads a Grafana dashboard (bare, or the API's `{"dashboard": ...}`)
/// whose targets are Graphite's. Its name is its `uid` when that is a
/// plain name, else a slug of its title.
pub fn import(text: &str) -> Result<Dashboard, DashboardError> {
    import_report(text).map(|(d, _)| d)
}

/// [`import`], with the panels it could not carry over.
pub fn import_report(text: &str) -> Result<(Dashboard, Vec<LeftOut>), DashboardError> {
    let v: Value =
        serde_json::from_str(text).map_err(|e| refused("(json)", format!("not JSON: {e}")))?;
    import_value_report(&v)
}

pub fn import_value(v: &Value) -> Result<Dashboard, DashboardError> {
    import_value_report(v).map(|(d, _)| d)
}

pub fn import_value_report(v: &Value) -> Result<(Dashboard, Vec<LeftOut>), DashboardError> {
    let mut left = Vec::new();
    let dash = match v.get("dashboard") {
        Some(d) if d.is_object() => d,
        _ => v,
    };
    if !dash.is_object() {
        return Err(refused("(json)", "a dashboard is a JSON object".into()));
    }
    let uid = str_of(dash, "uid").unwrap_or("");
    let title = str_of(dash, "title").unwrap_or("").to_string();
    let name = if !uid.is_empty()
        && uid.len() <= 64
        && uid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        uid.to_string()
    } else {
        slug(&title)
    };
    let mut spec = DashboardSpec {
        title,
        tags: dash
            .get("tags")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        from: dash
            .pointer("/time/from")
            .and_then(Value::as_str)
            .map(graphite_time),
        until: dash
            .pointer("/time/to")
            .and_then(Value::as_str)
            .map(graphite_time),
        refresh: str_of(dash, "refresh")
            .filter(|r| !r.is_empty())
            .map(str::to_string),
        ..DashboardSpec::default()
    };
    let vars = dash.pointer("/templating/list").and_then(Value::as_array);
    for (i, v) in vars.into_iter().flatten().enumerate() {
        if let Some(var) = variable_spec(v, i)? {
            spec.variables.push(var);
        }
    }
    let events_default = annotation_events(dash).unwrap_or_else(|| DEFAULT_EVENTS.to_string());
    // Panels in reading order; a row's own `panels` (when collapsed) follow it.
    let mut top: Vec<&Value> = dash
        .get("panels")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let pos = |p: &Value, k: &str| p.pointer(&format!("/gridPos/{k}")).and_then(Value::as_u64);
    top.sort_by_key(|p| (pos(p, "y").unwrap_or(0), pos(p, "x").unwrap_or(0)));
    let mut rows: Vec<RowSpec> = Vec::new();
    for p in top {
        if str_of(p, "type") == Some("row") {
            rows.push(RowSpec {
                title: str_of(p, "title").unwrap_or("").to_string(),
                panels: Vec::new(),
            });
            let inner = p.get("panels").and_then(Value::as_array);
            for q in inner.into_iter().flatten() {
                let at = (rows.len() - 1, rows.last().map_or(0, |r| r.panels.len()));
                let ps = panel_spec(q, at, &events_default, &mut left)?;
                rows.last_mut().expect("pushed above").panels.push(ps);
            }
            continue;
        }
        if rows.is_empty() {
            rows.push(RowSpec::default());
        }
        let at = (rows.len() - 1, rows.last().map_or(0, |r| r.panels.len()));
        let ps = panel_spec(p, at, &events_default, &mut left)?;
        rows.last_mut().expect("pushed above").panels.push(ps);
    }
    spec.rows = rows;
    Ok((Dashboard::from_spec(&name, spec)?, left))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RICH: &str = r##"
title = "Everything"
tags = ["a", "b"]
from = "-2d"
until = "-1h"
refresh = "1m"

[[variable]]
name = "host"
query = "servers.*"
multi = true
include_all = true
default = "All"

[[variable]]
name = "svc"
query = "servers.$host.*"
default = "web"

[[row]]
title = "First"

[[row.panel]]
title = "Graph"
targets = ["sumSeries(servers.$host.cpu)", "alias(servers.${host}.load, 'load')"]
unit = "percent"
y_min = 0.5
y_max = 100
log_scale = true
stack = true
width = 8
events = "deploy web"
[[row.panel.threshold]]
value = 90
color = "red"
[[row.panel.threshold]]
value = 80
color = "#ffaa00"
[[row.panel.threshold]]
value = 1
color = "blue"
op = "lt"

[[row.panel]]
title = "Stat"
kind = "stat"
targets = ["servers.$svc.up"]
unit = "s"
alert = "disk-full"
width = 4

[[row.panel]]
title = "Wraps to the next line"
kind = "table"
targets = ["servers.*.mem"]
unit = "bytes"
width = 12
events = ""

[[row]]
title = ""

[[row.panel]]
title = "Alerts"
kind = "alerts"
width = 3

[[row.panel]]
title = "Notes"
kind = "text"
markdown = "**bold** note"
"##;

    /// The checked dashboard without its written form (an import writes
    /// defaults out that the file left implicit).
    fn checked(d: &Dashboard) -> Dashboard {
        Dashboard {
            spec: Default::default(),
            ..d.clone()
        }
    }

    fn rich() -> Dashboard {
        Dashboard::from_toml("everything", RICH).unwrap()
    }

    #[test]
    fn export_then_import_gives_the_same_dashboard() {
        let d = rich();
        let text = export_string(&d);
        let back = import(&text).unwrap();
        assert_eq!(checked(&back), checked(&d));
        // Twice: the export of the import is the same text.
        assert_eq!(export_string(&back), text);
    }

    #[test]
    fn export_has_grafanas_shape() {
        let v = export(&rich());
        assert_eq!(v["schemaVersion"], 39);
        assert_eq!(v["time"]["from"], "now-2d");
        assert_eq!(v["time"]["to"], "now-1h");
        assert_eq!(v["refresh"], "1m");
        let vars = v["templating"]["list"].as_array().unwrap();
        assert_eq!(vars[0]["type"], "datasource");
        assert_eq!(vars[1]["type"], "query");
        assert_eq!(vars[1]["query"], "servers.*");
        assert_eq!(vars[1]["current"]["value"], json!(["$__all"]));
        assert_eq!(vars[2]["current"]["value"], "web");
        let ann = v["annotations"]["list"].as_array().unwrap();
        // One per distinct events tag; the table's "" draws none.
        let tags: Vec<&str> = ann.iter().map(|a| a["tags"].as_str().unwrap()).collect();
        assert_eq!(tags, ["deploy web", "deploy"]);
        assert_eq!(ann[0]["type"], "tags");
        assert_eq!(ann[0]["target"], "");
        assert_eq!(ann[0]["datasource"]["type"], "graphite");
        let panels = v["panels"].as_array().unwrap();
        let types: Vec<&str> = panels.iter().map(|p| p["type"].as_str().unwrap()).collect();
        assert_eq!(
            types,
            ["row", "timeseries", "stat", "table", "row", "text", "text"]
        );
        let g = &panels[1];
        assert_eq!(g["gridPos"], json!({"x": 0, "y": 1, "w": 16, "h": 8}));
        assert_eq!(
            panels[2]["gridPos"],
            json!({"x": 16, "y": 1, "w": 8, "h": 4})
        );
        // 24 columns taken: the table starts the next line, below the graph.
        assert_eq!(
            panels[3]["gridPos"],
            json!({"x": 0, "y": 9, "w": 24, "h": 8})
        );
        assert_eq!(panels[4]["gridPos"]["y"], 17);
        assert_eq!(g["targets"][1]["refId"], "B");
        assert_eq!(
            g["targets"][1]["target"],
            "alias(servers.${host}.load, 'load')"
        );
        assert_eq!(g["datasource"]["uid"], "${datasource}");
        let d = &g["fieldConfig"]["defaults"];
        assert_eq!(d["unit"], "percent");
        assert_eq!(d["min"], 0.5);
        assert_eq!(d["custom"]["scaleDistribution"]["type"], "log");
        assert_eq!(d["custom"]["stacking"]["mode"], "normal");
        // Grafana's steps hold the upward bands, sorted; the `lt` one is
        // only in `rollupd`.
        let steps: Vec<Value> = d["thresholds"]["steps"].as_array().unwrap().clone();
        assert_eq!(steps.len(), 3);
        assert_eq!(steps[0]["value"], Value::Null);
        assert_eq!(steps[1], json!({"color": "#ffaa00", "value": 80.0}));
        assert_eq!(steps[2], json!({"color": "red", "value": 90.0}));
        assert_eq!(panels[2]["fieldConfig"]["defaults"]["unit"], "s");
        assert_eq!(panels[2]["rollupd"]["alert"], "disk-full");
        assert_eq!(panels[6]["options"]["content"], "**bold** note");
        assert_eq!(panels[5]["rollupd"]["kind"], "alerts");
    }

    #[test]
    fn native_fields_alone_carry_what_grafana_can_hold() {
        // Without the `rollupd` objects (a dashboard saved by a Grafana that
        // dropped them), the upward bands, units, bounds, scale, stacking and
        // the annotation's events tag still come back.
        let toml = r#"
title = "Plain"
[[variable]]
name = "host"
query = "servers.*"
[[row]]
title = "R"
[[row.panel]]
title = "G"
targets = ["servers.$host.cpu"]
unit = "ms"
y_max = 10
log_scale = true
stack = true
[[row.panel.threshold]]
value = 5
color = "red"
[[row.panel]]
title = "S"
kind = "stat"
targets = ["servers.$host.up"]
"#;
        let d = Dashboard::from_toml("plain", toml).unwrap();
        let mut v = export(&d);
        for p in v["panels"].as_array_mut().unwrap() {
            p.as_object_mut().unwrap().remove("rollupd");
        }
        assert_eq!(checked(&import_value(&v).unwrap()), checked(&d));
    }

    const GRAFANA: &str = r#"{
      "dashboard": {
        "uid": "abc-123",
        "title": "From Grafana",
        "time": {"from": "now-12h", "to": "now"},
        "annotations": {"list": [
          {"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "name": "Annotations & Alerts"},
          {"datasource": {"type": "graphite", "uid": "xyz"}, "name": "releases",
           "target": {"fromAnnotations": true, "tags": ["release"], "type": "tags"}}
        ]},
        "templating": {"list": [
          {"type": "query", "name": "dc", "datasource": "Graphite",
           "query": {"queryType": "Default", "target": "servers.*"},
           "current": {"text": ["a", "b"], "value": ["a", "b"]}, "multi": true}
        ]},
        "panels": [
          {"type": "graph", "title": "Old graph", "gridPos": {"x": 0, "y": 0, "w": 12, "h": 8},
           "datasource": "Graphite",
           "targets": [
             {"refId": "A", "target": "servers.$dc.cpu", "hide": true},
             {"refId": "B", "target": "sumSeries(#A)", "targetFull": "sumSeries(servers.$dc.cpu)"}
           ]},
          {"type": "heatmap", "title": "Heat", "gridPos": {"x": 12, "y": 0, "w": 12, "h": 8},
           "targets": [{"refId": "A", "target": "servers.*.lat"}]},
          {"type": "row", "title": "Folded", "collapsed": true, "gridPos": {"x": 0, "y": 8, "w": 24, "h": 1},
           "panels": [
             {"type": "stat", "title": "Up", "gridPos": {"x": 0, "y": 9, "w": 6, "h": 4},
              "datasource": {"type": "graphite", "uid": "xyz"},
              "fieldConfig": {"defaults": {"unit": "ops"}},
              "targets": [{"refId": "A", "target": "servers.up"}]}
           ]}
        ]
      }
    }"#;

    #[test]
    fn a_grafana_dashboard_is_imported() {
        let d = import(GRAFANA).unwrap();
        assert_eq!(d.name, "abc-123");
        assert_eq!(d.from, "-12h");
        assert_eq!(d.variables[0].query, "servers.*");
        assert_eq!(d.variables[0].default.as_deref(), Some("{a,b}"));
        assert_eq!(d.rows.len(), 2);
        let g = &d.rows[0].panels[0];
        // The hidden helper is left out; `targetFull` is what is drawn.
        assert_eq!(g.targets, ["sumSeries(servers.$dc.cpu)"]);
        assert_eq!(g.events, "release");
        assert_eq!(g.width, 6);
        match &d.rows[0].panels[1].kind {
            PanelKind::Text { markdown } => {
                assert!(markdown.contains("`heatmap`"), "{markdown}");
                assert!(markdown.contains("servers.*.lat"), "{markdown}");
            }
            k => panic!("{k:?}"),
        }
        assert_eq!(d.rows[1].title, "Folded");
        let up = &d.rows[1].panels[0];
        assert_eq!(up.kind, PanelKind::Stat);
        assert_eq!(up.unit, Unit::Reqps);
        assert_eq!(up.width, 3);
    }

    #[test]
    fn another_datasource_is_refused_naming_the_panel() {
        let prom = GRAFANA.replace(
            r#""datasource": {"type": "graphite", "uid": "xyz"},
              "fieldConfig""#,
            r#""datasource": {"type": "prometheus", "uid": "p"},
              "fieldConfig""#,
        );
        assert_ne!(prom, GRAFANA);
        let e = import(&prom).unwrap_err();
        assert_eq!(e.panel, Some((1, 0, "Up".into())));
        assert_eq!(e.field, "datasource");
        assert!(e.message.contains("prometheus"), "{e}");

        // A target's own datasource under a mixed panel.
        let mixed = json!({"title": "M", "panels": [{
        "type": "timeseries", "title": "Mixed",
        "datasource": {"type": "datasource", "uid": "-- Mixed --"},
        "targets": [
            {"refId": "A", "target": "a.b", "datasource": {"type": "graphite", "uid": "g"}},
            {"refId": "B", "expr": "up", "datasource": {"type": "prometheus", "uid": "p"}}
        ]}]});
        let e = import_value(&mixed).unwrap_err();
        assert_eq!(e.panel, Some((0, 0, "Mixed".into())));
        assert_eq!(e.field, "targets[1].datasource");

        // A query of another shape with no datasource named.
        let loki = json!({"title": "L", "panels": [{
            "type": "timeseries", "title": "Logs",
            "targets": [{"refId": "A", "expr": "rate({job=\"x\"}[5m])"}]}]});
        let e = import_value(&loki).unwrap_err();
        assert_eq!(e.field, "targets[0]");
        assert_eq!(e.panel, Some((0, 0, "Logs".into())));
    }

    #[test]
    fn imported_targets_are_checked_like_files() {
        let bad = json!({"title": "B", "panels": [{
            "type": "timeseries", "title": "Broken",
            "targets": [{"refId": "A", "target": "sum(a.$nope)"}]}]});
        let e = import_value(&bad).unwrap_err();
        assert_eq!(e.panel, Some((0, 0, "Broken".into())));
        assert_eq!(e.field, "targets[0]");
        let custom =
            json!({"title": "C", "templating": {"list": [{"type": "custom", "name": "x"}]}});
        let e = import_value(&custom).unwrap_err();
        assert!(e.message.contains("\"custom\""), "{e}");
        assert!(import("[").is_err());
    }

    /// `dashboards/<name>.json` is the export of `dashboards/<name>.toml`,
    /// byte for byte. `ROLLUPD_BLESS=1 cargo test` rewrites them.
    #[test]
    fn committed_grafana_json_is_the_export() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards");
        let loaded = crate::dashboard::load::load_all(
            dir.parent().unwrap(),
            &crate::config::DashboardsConfig::default(),
        );
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        assert!(loaded.dashboards.len() >= 2);
        let bless = std::env::var_os("ROLLUPD_BLESS").is_some();
        for (path, d) in &loaded.dashboards {
            let json_path = path.with_extension("json");
            let want = export_string(d);
            if bless {
                std::fs::write(&json_path, &want).unwrap();
            }
            let have = std::fs::read_to_string(&json_path)
                .unwrap_or_else(|e| panic!("{}: {e}", json_path.display()));
            assert!(
                have == want,
                "{} differs from the export of {} (ROLLUPD_BLESS=1 rewrites it)",
                json_path.display(),
                path.display()
            );
            // And it reads back as the same dashboard.
            assert_eq!(checked(&import(&have).unwrap()), checked(d));
        }
    }

    #[test]
    fn names_and_times_convert() {
        assert_eq!(slug("My  Dash: v2!"), "my-dash-v2");
        assert_eq!(slug("!!!"), "imported");
        assert_eq!(grafana_time("-6h"), "now-6h");
        assert_eq!(grafana_time("now"), "now");
        assert_eq!(graphite_time("now-6h"), "-6h");
        assert_eq!(graphite_time("now"), "now");
        assert_eq!(refresh_string(std::time::Duration::from_secs(90)), "90s");
        assert_eq!(refresh_string(std::time::Duration::from_secs(7200)), "2h");
    }
}
