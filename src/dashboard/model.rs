//! A dashboard as written in `dashboards/*.toml` ([`DashboardSpec`]) and
//! its checked form ([`Dashboard`]). Every refusal names the panel (row and
//! panel index, and its title) and the field, so a bad file's message says
//! where to look; the loader adds the file.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A dashboard as written.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardSpec {
    #[serde(default)]
    pub title: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Default range start, a graphite time (`-6h`, `now`, `20260101`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// Auto-refresh interval (`30s`, `1m`); none: no auto-refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh: Option<String>,
    #[serde(default, rename = "variable", skip_serializing_if = "Vec::is_empty")]
    pub variables: Vec<VariableSpec>,
    #[serde(default, rename = "row", skip_serializing_if = "Vec::is_empty")]
    pub rows: Vec<RowSpec>,
}

/// `[[variable]]`: a template variable filled from `/metrics/find`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VariableSpec {
    #[serde(default)]
    pub name: String,
    /// A `/metrics/find` pattern; each match's last segment is a choice.
    #[serde(default)]
    pub query: String,
    #[serde(default)]
    pub multi: bool,
    #[serde(default)]
    pub include_all: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

/// `[[row]]`: a titled band of panels.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RowSpec {
    #[serde(default)]
    pub title: String,
    #[serde(default, rename = "panel")]
    pub panels: Vec<PanelSpec>,
}

/// `[[row.panel]]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PanelSpec {
    #[serde(default)]
    pub title: String,
    /// `graph` (default), `stat`, `table`, `alerts`, `text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y_min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y_max: Option<f64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub log_scale: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stack: bool,
    #[serde(default, rename = "threshold", skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<ThresholdSpec>,
    /// Take the threshold bands from this alert rule instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    /// Tag expression of the events drawn as lines (default `deploy`;
    /// `""` draws none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<String>,
    /// `text` panels: the Markdown shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub markdown: Option<String>,
    /// Grid columns of 12 (default 6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
}

/// `[[row.panel.threshold]]`: a band from `value` up (`op = "gt"`, the
/// default) or down (`op = "lt"`), drawn in `color`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdSpec {
    pub value: f64,
    #[serde(default)]
    pub color: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<String>,
}

/// Where a dashboard comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// A TOML file (`dashboards/*.toml`, `[dashboards] paths`).
    #[default]
    File,
    /// Saved over HTTP, kept in the store's `dashboards` family.
    Store,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::File => "file",
            Source::Store => "store",
        }
    }
}

/// A checked dashboard.
#[derive(Debug, Clone, PartialEq)]
pub struct Dashboard {
    /// Its name in URLs: the file's stem, or the name it was saved under.
    pub name: String,
    pub source: Source,
    /// The dashboard as written (before defaults), as `Rule` keeps its
    /// spec: what `GET /api/dashboards/<name>/spec` answers and the store
    /// keeps.
    pub spec: Arc<DashboardSpec>,
    pub title: String,
    pub tags: Vec<String>,
    pub from: String,
    pub until: String,
    pub refresh: Option<Duration>,
    pub variables: Vec<Variable>,
    pub rows: Vec<Row>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Variable {
    pub name: String,
    pub query: String,
    pub multi: bool,
    pub include_all: bool,
    pub default: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub title: String,
    pub panels: Vec<Panel>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    pub title: String,
    pub kind: PanelKind,
    pub targets: Vec<String>,
    pub unit: Unit,
    pub y_min: Option<f64>,
    pub y_max: Option<f64>,
    pub log_scale: bool,
    pub stack: bool,
    pub thresholds: Thresholds,
    /// Empty: no event lines.
    pub events: String,
    pub width: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PanelKind {
    Graph,
    Stat,
    Table,
    Alerts,
    Text { markdown: String },
}

impl PanelKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            PanelKind::Graph => "graph",
            PanelKind::Stat => "stat",
            PanelKind::Table => "table",
            PanelKind::Alerts => "alerts",
            PanelKind::Text { .. } => "text",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Ms,
    S,
    Bytes,
    Percent,
    Reqps,
    Short,
}

impl Unit {
    pub const ALL: [Unit; 6] = [
        Unit::Ms,
        Unit::S,
        Unit::Bytes,
        Unit::Percent,
        Unit::Reqps,
        Unit::Short,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Ms => "ms",
            Unit::S => "s",
            Unit::Bytes => "bytes",
            Unit::Percent => "percent",
            Unit::Reqps => "reqps",
            Unit::Short => "short",
        }
    }

    pub fn parse(s: &str) -> Option<Unit> {
        Unit::ALL.into_iter().find(|u| u.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Thresholds {
    Bands(Vec<Band>),
    /// The named alert rule's warn and crit levels (resolved when drawn:
    /// rules are reloaded on their own schedule).
    Alert(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// The band runs from the value up.
    Gt,
    /// The band runs from the value down.
    Lt,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    pub value: f64,
    pub color: String,
    pub op: Op,
}

/// Where a refusal is and why. `panel` is `(row, panel, title)`, 0-based.
#[derive(Debug, Clone, PartialEq)]
pub struct DashboardError {
    pub panel: Option<(usize, usize, String)>,
    pub field: String,
    pub message: String,
}

impl fmt::Display for DashboardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((r, p, title)) = &self.panel {
            write!(f, "row {r} panel {p} ({title:?}): ")?;
        }
        write!(f, "field {}: {}", self.field, self.message)
    }
}

impl std::error::Error for DashboardError {}

pub const MAX_TITLE: usize = 200;
pub const MAX_TAGS: usize = 32;
pub const MAX_VARIABLES: usize = 20;
pub const MAX_ROWS: usize = 50;
/// Panels in one dashboard: each is at least one `/render` target drawn on
/// every refresh.
pub const MAX_PANELS: usize = 200;
/// Targets in one panel (Grafana's refIds A..Z).
pub const MAX_TARGETS: usize = 26;
/// The longest target, as an alert rule's.
pub const MAX_TARGET: usize = 8192;
pub const MAX_THRESHOLDS: usize = 16;
pub const MAX_MARKDOWN: usize = 64 * 1024;
/// Grid columns a row holds.
pub const GRID_COLUMNS: u32 = 12;
pub const DEFAULT_WIDTH: u32 = 6;
pub const DEFAULT_FROM: &str = "-6h";
pub const DEFAULT_UNTIL: &str = "now";
pub const DEFAULT_EVENTS: &str = "deploy";
/// What `$var` becomes when a target is parsed to check it: one plain path
/// segment, which every place a variable may stand accepts.
const PLACEHOLDER: &str = "VAR";

fn err(field: &str, message: String) -> DashboardError {
    DashboardError {
        panel: None,
        field: field.into(),
        message,
    }
}

fn check_text(field: &str, s: &str, max: usize, required: bool) -> Result<(), DashboardError> {
    if required && s.trim().is_empty() {
        return Err(err(field, "is required".into()));
    }
    if s.len() > max {
        return Err(err(
            field,
            format!("{} bytes, more than the {max} allowed", s.len()),
        ));
    }
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(err(field, "holds a control character".into()));
    }
    Ok(())
}

fn valid_var_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphabetic() || f == '_')
        && c.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn valid_color(s: &str) -> bool {
    if let Some(hex) = s.strip_prefix('#') {
        return matches!(hex.len(), 3 | 6 | 8) && hex.bytes().all(|b| b.is_ascii_hexdigit());
    }
    !s.is_empty() && s.len() <= 40 && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
}

/// Each `$name` / `${name}` in `target`: (start, end, name) byte spans.
fn references(target: &str) -> Vec<(usize, usize, &str)> {
    let mut out = Vec::new();
    let b = target.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            let braced = b.get(i + 1) == Some(&b'{');
            let start = if braced { i + 2 } else { i + 1 };
            let mut j = start;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                j += 1;
            }
            if j > start && (!braced || b.get(j) == Some(&b'}')) {
                let end = if braced { j + 1 } else { j };
                out.push((i, end, &target[start..j]));
                i = end;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// The variables a target names (`$name` or `${name}`), in order.
pub fn variables_in(target: &str) -> Vec<String> {
    references(target)
        .into_iter()
        .map(|(_, _, n)| n.to_string())
        .collect()
}

/// `target` with every `$name`/`${name}` replaced by `with(name)`.
pub fn substitute(target: &str, with: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(target.len());
    let mut last = 0;
    for (start, end, name) in references(target) {
        out.push_str(&target[last..start]);
        out.push_str(&with(name));
        last = end;
    }
    out.push_str(&target[last..]);
    out
}

fn check_time(field: &str, t: &str) -> Result<(), DashboardError> {
    check_text(field, t, 100, true)?;
    let utc = chrono_tz::UTC;
    crate::query::time::parse_at_time(t, &utc, 1_700_000_000)
        .map(|_| ())
        .map_err(|e| err(field, format!("{t:?} is not a graphite time: {e}")))
}

impl Dashboard {
    /// Checks a written dashboard named `name` (its file's stem).
    pub fn from_spec(name: &str, spec: DashboardSpec) -> Result<Dashboard, DashboardError> {
        let written = Arc::new(spec.clone());
        check_text("title", &spec.title, MAX_TITLE, true)?;
        if spec.tags.len() > MAX_TAGS {
            return Err(err("tags", format!("more than {MAX_TAGS} tags")));
        }
        for (i, t) in spec.tags.iter().enumerate() {
            check_text(&format!("tags[{i}]"), t, MAX_TITLE, true)?;
        }
        let from = spec.from.unwrap_or_else(|| DEFAULT_FROM.into());
        let until = spec.until.unwrap_or_else(|| DEFAULT_UNTIL.into());
        check_time("from", &from)?;
        check_time("until", &until)?;
        let refresh = match &spec.refresh {
            None => None,
            Some(r) => match crate::alert::rule::parse_duration(r) {
                Some(d) if d >= Duration::from_secs(1) => Some(d),
                _ => {
                    return Err(err(
                        "refresh",
                        format!("{r:?} is not a duration of at least 1s, like \"30s\" or \"1m\""),
                    ))
                }
            },
        };
        if spec.variables.len() > MAX_VARIABLES {
            return Err(err(
                "variable",
                format!("more than {MAX_VARIABLES} variables"),
            ));
        }
        let mut variables: Vec<Variable> = Vec::new();
        for (i, v) in spec.variables.into_iter().enumerate() {
            let at = |f: &str| format!("variable[{i}].{f}");
            if !valid_var_name(&v.name) || v.name.len() > 64 {
                return Err(err(
                    &at("name"),
                    format!(
                        "{:?} is not a variable name ([A-Za-z_][A-Za-z0-9_]*, at most 64)",
                        v.name
                    ),
                ));
            }
            if v.name.starts_with("__") {
                return Err(err(
                    &at("name"),
                    "names starting with __ are reserved".into(),
                ));
            }
            if variables.iter().any(|o| o.name == v.name) {
                return Err(err(&at("name"), format!("{:?} is defined twice", v.name)));
            }
            check_text(&at("query"), &v.query, MAX_TARGET, true)?;
            // A query may use the variables before it (`servers.$dc.*`).
            for used in variables_in(&v.query) {
                if !variables.iter().any(|o| o.name == used) {
                    return Err(err(
                        &at("query"),
                        format!("${used} is not a variable defined before this one"),
                    ));
                }
            }
            if let Some(d) = &v.default {
                check_text(&at("default"), d, MAX_TITLE, true)?;
            }
            variables.push(Variable {
                name: v.name,
                query: v.query,
                multi: v.multi,
                include_all: v.include_all,
                default: v.default,
            });
        }
        if spec.rows.len() > MAX_ROWS {
            return Err(err("row", format!("more than {MAX_ROWS} rows")));
        }
        let total: usize = spec.rows.iter().map(|r| r.panels.len()).sum();
        if total > MAX_PANELS {
            return Err(err(
                "row",
                format!("{total} panels, more than the {MAX_PANELS} a dashboard may hold"),
            ));
        }
        let mut rows = Vec::with_capacity(spec.rows.len());
        for (ri, row) in spec.rows.into_iter().enumerate() {
            check_text(&format!("row[{ri}].title"), &row.title, MAX_TITLE, false)?;
            let mut panels = Vec::with_capacity(row.panels.len());
            for (pi, p) in row.panels.into_iter().enumerate() {
                let title = p.title.clone();
                let panel = Panel::from_spec(p, &variables).map_err(|mut e| {
                    e.panel = Some((ri, pi, title));
                    e
                })?;
                panels.push(panel);
            }
            rows.push(Row {
                title: row.title,
                panels,
            });
        }
        Ok(Dashboard {
            name: name.to_string(),
            source: Source::File,
            spec: written,
            title: spec.title,
            tags: spec.tags,
            from,
            until,
            refresh,
            variables,
            rows,
        })
    }

    /// Reads and checks one TOML dashboard.
    pub fn from_toml(name: &str, text: &str) -> Result<Dashboard, DashboardError> {
        let spec: DashboardSpec = toml::from_str(text).map_err(|e| DashboardError {
            panel: None,
            field: "(toml)".into(),
            message: e.to_string().trim_end().to_string(),
        })?;
        Dashboard::from_spec(name, spec)
    }

    /// Every panel with its row and panel index.
    pub fn panels(&self) -> impl Iterator<Item = (usize, usize, &Panel)> {
        self.rows
            .iter()
            .enumerate()
            .flat_map(|(ri, r)| r.panels.iter().enumerate().map(move |(pi, p)| (ri, pi, p)))
    }
}

impl Panel {
    fn from_spec(p: PanelSpec, variables: &[Variable]) -> Result<Panel, DashboardError> {
        check_text("title", &p.title, MAX_TITLE, false)?;
        let kind = match p.kind.as_deref() {
            None | Some("graph") => PanelKind::Graph,
            Some("stat") => PanelKind::Stat,
            Some("table") => PanelKind::Table,
            Some("alerts") => PanelKind::Alerts,
            Some("text") => {
                let md = p.markdown.clone().unwrap_or_default();
                check_text("markdown", &md, MAX_MARKDOWN, true)?;
                PanelKind::Text { markdown: md }
            }
            Some(o) => {
                return Err(err(
                    "kind",
                    format!("{o:?} is not one of graph, stat, table, alerts, text"),
                ))
            }
        };
        if p.markdown.is_some() && !matches!(kind, PanelKind::Text { .. }) {
            return Err(err("markdown", "only a text panel has markdown".into()));
        }
        let needs_targets = matches!(kind, PanelKind::Graph | PanelKind::Stat | PanelKind::Table);
        if needs_targets && p.targets.is_empty() {
            return Err(err(
                "targets",
                "a graph, stat or table panel needs a target".into(),
            ));
        }
        if !needs_targets && !p.targets.is_empty() {
            return Err(err(
                "targets",
                format!("a {} panel draws no targets", kind.as_str()),
            ));
        }
        if p.targets.len() > MAX_TARGETS {
            return Err(err("targets", format!("more than {MAX_TARGETS} targets")));
        }
        for (i, t) in p.targets.iter().enumerate() {
            let field = format!("targets[{i}]");
            check_text(&field, t, MAX_TARGET, true)?;
            for used in variables_in(t) {
                if !variables.iter().any(|v| v.name == used) {
                    return Err(err(&field, format!("${used} is not a defined variable")));
                }
            }
            let plain = substitute(t, |_| PLACEHOLDER.to_string());
            crate::query::parse::parse(&plain)
                .map_err(|e| err(&field, format!("does not parse: {e}")))?;
        }
        let unit = match p.unit.as_deref() {
            None => Unit::Short,
            Some(u) => Unit::parse(u).ok_or_else(|| {
                err(
                    "unit",
                    format!("{u:?} is not one of ms, s, bytes, percent, reqps, short"),
                )
            })?,
        };
        for (f, v) in [("y_min", p.y_min), ("y_max", p.y_max)] {
            if v.is_some_and(|v| !v.is_finite()) {
                return Err(err(f, "must be a finite number".into()));
            }
        }
        if let (Some(lo), Some(hi)) = (p.y_min, p.y_max) {
            if lo >= hi {
                return Err(err("y_max", format!("{hi} is not above y_min {lo}")));
            }
        }
        if p.log_scale && p.y_min.is_some_and(|v| v <= 0.0) {
            return Err(err("y_min", "a log scale needs y_min above 0".into()));
        }
        let thresholds = match &p.alert {
            Some(rule) => {
                if !p.thresholds.is_empty() {
                    return Err(err(
                        "alert",
                        "a panel takes its thresholds from an alert rule or lists them, not both"
                            .into(),
                    ));
                }
                check_text("alert", rule, crate::alert::rule::MAX_NAME, true)?;
                Thresholds::Alert(rule.clone())
            }
            None => {
                if p.thresholds.len() > MAX_THRESHOLDS {
                    return Err(err(
                        "threshold",
                        format!("more than {MAX_THRESHOLDS} thresholds"),
                    ));
                }
                let mut bands = Vec::new();
                for (i, t) in p.thresholds.iter().enumerate() {
                    let at = |f: &str| format!("threshold[{i}].{f}");
                    if !t.value.is_finite() {
                        return Err(err(&at("value"), "must be a finite number".into()));
                    }
                    if !valid_color(&t.color) {
                        return Err(err(
                            &at("color"),
                            format!("{:?} is not a colour (#rrggbb or a name like red)", t.color),
                        ));
                    }
                    let op = match t.op.as_deref() {
                        None | Some("gt") => Op::Gt,
                        Some("lt") => Op::Lt,
                        Some(o) => return Err(err(&at("op"), format!("{o:?} is not gt or lt"))),
                    };
                    bands.push(Band {
                        value: t.value,
                        color: t.color.clone(),
                        op,
                    });
                }
                Thresholds::Bands(bands)
            }
        };
        let events = p.events.unwrap_or_else(|| DEFAULT_EVENTS.into());
        check_text("events", &events, MAX_TITLE, false)?;
        let width = p.width.unwrap_or(DEFAULT_WIDTH);
        if !(1..=GRID_COLUMNS).contains(&width) {
            return Err(err(
                "width",
                format!("{width} is not a number of grid columns from 1 to {GRID_COLUMNS}"),
            ));
        }
        Ok(Panel {
            title: p.title,
            kind,
            targets: p.targets,
            unit,
            y_min: p.y_min,
            y_max: p.y_max,
            log_scale: p.log_scale,
            stack: p.stack,
            thresholds,
            events,
            width,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r##"
title = "Web"
tags = ["web"]
from = "-1h"
refresh = "30s"

[[variable]]
name = "service"
query = "stats.timers.*"
multi = true
include_all = true

[[row]]
title = "Traffic"

[[row.panel]]
title = "Latency"
targets = ["timerPercentile(stats.timers.$service.latency, 99)", "alias(stats.timers.${service}.latency.mean, 'mean')"]
unit = "ms"
y_min = 0
[[row.panel.threshold]]
value = 500
color = "red"

[[row.panel]]
title = "Notes"
kind = "text"
markdown = "# hi"
width = 12
"##;

    fn bad(text: &str) -> DashboardError {
        Dashboard::from_toml("d", text).unwrap_err()
    }

    fn with_panel(panel: &str) -> String {
        format!(
            "title = \"t\"\n[[variable]]\nname = \"host\"\nquery = \"servers.*\"\n[[row]]\n[[row.panel]]\ntitle = \"P\"\n{panel}\n"
        )
    }

    #[test]
    fn a_good_dashboard_is_checked() {
        let d = Dashboard::from_toml("web", GOOD).unwrap();
        assert_eq!(d.name, "web");
        assert_eq!(d.from, "-1h");
        assert_eq!(d.until, "now");
        assert_eq!(d.refresh, Some(Duration::from_secs(30)));
        let p = &d.rows[0].panels[0];
        assert_eq!(p.unit, Unit::Ms);
        assert_eq!(p.events, "deploy");
        assert_eq!(p.width, 6);
        assert_eq!(
            p.thresholds,
            Thresholds::Bands(vec![Band {
                value: 500.0,
                color: "red".into(),
                op: Op::Gt
            }])
        );
        assert_eq!(
            d.rows[0].panels[1].kind,
            PanelKind::Text {
                markdown: "# hi".into()
            }
        );
        assert_eq!(d.panels().count(), 2);
    }

    #[test]
    fn refusals_name_the_panel_and_field() {
        let e = bad(&with_panel("targets = [\"sum(a.b\"]"));
        assert_eq!(e.panel, Some((0, 0, "P".into())));
        assert_eq!(e.field, "targets[0]");
        assert!(
            e.to_string()
                .contains("row 0 panel 0 (\"P\"): field targets[0]"),
            "{e}"
        );

        let e = bad(&with_panel("targets = [\"a.$nope\"]"));
        assert_eq!(e.field, "targets[0]");
        assert!(e.message.contains("$nope"), "{e}");

        let e = bad(&with_panel("targets = [\"a.b\"]\nunit = \"furlongs\""));
        assert_eq!(e.field, "unit");
        let e = bad(&with_panel("targets = [\"a.b\"]\nwidth = 13"));
        assert_eq!(e.field, "width");
        let e = bad(&with_panel("targets = [\"a.b\"]\ny_min = 5\ny_max = 1"));
        assert_eq!(e.field, "y_max");
        let e = bad(&with_panel("kind = \"pie\"\ntargets = [\"a.b\"]"));
        assert_eq!(e.field, "kind");
        let e = bad(&with_panel("kind = \"text\""));
        assert_eq!(e.field, "markdown");
        let e = bad(&with_panel("targets = []"));
        assert_eq!(e.field, "targets");
        let e = bad(&with_panel(
            "targets = [\"a.b\"]\nalert = \"r\"\n[[row.panel.threshold]]\nvalue = 1\ncolor = \"red\"",
        ));
        assert_eq!(e.field, "alert");
        let e = bad(&with_panel(
            "targets = [\"a.b\"]\n[[row.panel.threshold]]\nvalue = 1\ncolor = \"red\"\nop = \"ge\"",
        ));
        assert_eq!(e.field, "threshold[0].op");
        let e = bad(&with_panel(
            "targets = [\"a.b\"]\n[[row.panel.threshold]]\nvalue = 1\ncolor = \"<script>\"",
        ));
        assert_eq!(e.field, "threshold[0].color");
        // A second panel's error names index 1.
        let e = bad(&with_panel(
            "targets = [\"a.b\"]\n[[row.panel]]\ntitle = \"Q\"\ntargets = [\"(\"]",
        ));
        assert_eq!(e.panel, Some((0, 1, "Q".into())));
    }

    #[test]
    fn unknown_fields_and_dashboard_fields_are_refused() {
        let e = bad(&with_panel("targets = [\"a.b\"]\ncolour = \"red\""));
        assert!(e.message.contains("colour"), "{e}");
        let e = bad("title = \"\"");
        assert_eq!(e.field, "title");
        let e = bad("title = \"t\"\nfrom = \"yesterdayish\"");
        assert_eq!(e.field, "from");
        let e = bad("title = \"t\"\nrefresh = \"0s\"");
        assert_eq!(e.field, "refresh");
        let e = bad("title = \"t\"\n[[variable]]\nname = \"1x\"\nquery = \"a.*\"");
        assert_eq!(e.field, "variable[0].name");
        let e = bad("title = \"t\"\n[[variable]]\nname = \"b\"\nquery = \"a.$c.*\"");
        assert_eq!(e.field, "variable[0].query");
        let e = bad("title = \"t\"\n[[variable]]\nname = \"b\"\nquery = \"a.*\"\n[[variable]]\nname = \"b\"\nquery = \"a.*\"");
        assert_eq!(e.field, "variable[1].name");
    }

    #[test]
    fn sizes_are_bounded() {
        let targets: Vec<String> = (0..=MAX_TARGETS).map(|i| format!("\"a.b{i}\"")).collect();
        let e = bad(&with_panel(&format!("targets = [{}]", targets.join(","))));
        assert_eq!(e.field, "targets");
        let mut many = String::from("title = \"t\"\n[[row]]\n");
        for _ in 0..=MAX_PANELS {
            many.push_str("[[row.panel]]\ntargets = [\"a.b\"]\n");
        }
        assert_eq!(bad(&many).field, "row");
        let long = "x".repeat(MAX_TITLE + 1);
        assert_eq!(bad(&format!("title = \"{long}\"")).field, "title");
    }

    #[test]
    fn variables_are_found_and_substituted() {
        assert_eq!(variables_in("a.$host.${svc}.b$"), vec!["host", "svc"]);
        assert_eq!(
            substitute("sum(a.$host.${svc}.x, '$host')", |n| format!("<{n}>")),
            "sum(a.<host>.<svc>.x, '<host>')"
        );
        assert_eq!(substitute("no vars", |_| "z".into()), "no vars");
    }
}
