//! Alert rules: the shape written in TOML files and sent over HTTP as JSON
//! ([`RuleSpec`], the same fields either way), and the checked form the
//! evaluator runs ([`Rule`]). Every refusal names the rule and the field,
//! so a bad file's log line or a 400 says what to fix.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::notice::Severity;
use super::template;

/// A rule as written: TOML (`[[rule]]` tables) or a JSON body. Kinds are
/// strings here and checked in [`Rule::from_spec`], so an unknown reducer
/// is a message naming the field rather than serde's list of variants.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    #[serde(default)]
    pub name: String,
    /// `threshold` (default) or `forecast`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default)]
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reducer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nulls: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn: Option<Bound>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crit: Option<Bound>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn_recovery: Option<Bound>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crit_recovery: Option<Bound>,
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_firing_for: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_data_after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Forecast rules: the level the fitted line must not cross.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// Forecast rules: how far ahead a crossing fires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub horizon: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_r2: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_points: Option<usize>,
    /// Forecast rules: the level a crossing fires at (default critical).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Receivers (by name) this rule notifies; empty: all of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub receivers: Vec<String>,
}

/// A threshold: one number (`above`, `below`) or a `[low, high]` pair
/// (`outside`, `inside`).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Bound {
    One(f64),
    Pair([f64; 2]),
}

/// How a window of points becomes the one number compared.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reducer {
    Last,
    Avg,
    Min,
    Max,
    Sum,
    Count,
    Median,
    /// `pNN`: the NN-th percentile (nearest rank over the window's points).
    Percentile(f64),
    /// Last value minus first.
    Delta,
    /// (last − first) per second between their times.
    Rate,
}

impl Reducer {
    pub fn parse(s: &str) -> Option<Reducer> {
        Some(match s {
            "last" => Reducer::Last,
            "avg" | "average" | "mean" => Reducer::Avg,
            "min" => Reducer::Min,
            "max" => Reducer::Max,
            "sum" => Reducer::Sum,
            "count" => Reducer::Count,
            "median" => Reducer::Median,
            "delta" => Reducer::Delta,
            "rate" => Reducer::Rate,
            p => {
                let n: f64 = p.strip_prefix('p')?.parse().ok()?;
                if !(n > 0.0 && n <= 100.0) {
                    return None;
                }
                Reducer::Percentile(n)
            }
        })
    }

    pub fn name(&self) -> String {
        match self {
            Reducer::Last => "last".into(),
            Reducer::Avg => "avg".into(),
            Reducer::Min => "min".into(),
            Reducer::Max => "max".into(),
            Reducer::Sum => "sum".into(),
            Reducer::Count => "count".into(),
            Reducer::Median => "median".into(),
            Reducer::Percentile(p) => format!("p{p}"),
            Reducer::Delta => "delta".into(),
            Reducer::Rate => "rate".into(),
        }
    }
}

/// What a null (missing) point in the window counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nulls {
    /// Left out; a window of only nulls is no data.
    Ignore,
    /// Counted as 0.
    Zero,
    /// Any null makes the evaluation an error (the `error` policy applies).
    Fail,
}

/// Which side of a threshold is bad. Always written out: Seyren and
/// check_graphite guess it from whether warn < crit, which silently turns a
/// mistyped pair into an alert that can never fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Above,
    Below,
    Outside,
    Inside,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Above => "above",
            Direction::Below => "below",
            Direction::Outside => "outside",
            Direction::Inside => "inside",
        }
    }
}

/// What an instance whose window holds no data becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoDataPolicy {
    Ok,
    Warning,
    Critical,
    /// The `nodata` state (shown, not notified).
    NoData,
    /// Whatever it was before.
    KeepLast,
}

/// What an instance becomes when its target cannot be evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorPolicy {
    /// The `error` state.
    Error,
    KeepLast,
    Ok,
    Warning,
    Critical,
}

/// One level's threshold in a checked rule: where it fires and where a
/// firing instance recovers (the same place unless a recovery is given).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Level {
    /// `(low, high)`; `above`/`below` use one end (the other infinite).
    pub fire: (f64, f64),
    pub recover: (f64, f64),
}

/// The threshold kind's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub reducer: Reducer,
    pub nulls: Nulls,
    pub direction: Direction,
    pub warn: Option<Level>,
    pub crit: Option<Level>,
}

/// The forecast kind's settings: a least-squares line over the window,
/// firing when it crosses `threshold` within `horizon`.
#[derive(Debug, Clone, PartialEq)]
pub struct Forecast {
    pub threshold: f64,
    /// `Above`: fires when the line rises through the threshold; `Below`:
    /// when it falls through it.
    pub direction: Direction,
    pub horizon: Duration,
    pub min_r2: f64,
    pub min_points: usize,
    pub severity: Severity,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Threshold(Threshold),
    Forecast(Forecast),
}

/// A checked rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    pub target: String,
    pub kind: Kind,
    pub window: Duration,
    pub for_: Duration,
    pub keep_firing_for: Duration,
    pub no_data: NoDataPolicy,
    pub no_data_after: Duration,
    pub error: ErrorPolicy,
    /// `None`: the daemon's default interval.
    pub interval: Option<Duration>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub receivers: Vec<String>,
    /// What was written, kept to show and to save as given.
    pub spec: RuleSpec,
}

/// A refused rule: which rule, which field, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub rule: String,
    pub field: String,
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.rule.is_empty() {
            write!(f, "field {}: {}", self.field, self.message)
        } else {
            write!(
                f,
                "rule {:?}: field {}: {}",
                self.rule, self.field, self.message
            )
        }
    }
}

impl std::error::Error for RuleError {}

/// The longest rule name: it is a path segment, a label value and part of
/// store keys.
pub const MAX_NAME: usize = 200;
/// The longest target (the render API's own bound on one target is larger;
/// a rule's is stored and evaluated every interval).
pub const MAX_TARGET: usize = 8192;
/// Labels plus annotations one rule may carry, and the longest value.
pub const MAX_LABELS: usize = 64;
pub const MAX_LABEL_VALUE: usize = 4096;
/// The shortest interval a rule may ask for.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// The longest window or horizon (ten years).
pub const MAX_SPAN: Duration = Duration::from_secs(10 * 366 * 86400);

/// A duration as a rule writes it: humantime's `"5m"`, `"1h 30m"`, or
/// Graphite's `"5min"`, `"2hours"`, `"7d"`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    if let Ok(d) = humantime::parse_duration(t) {
        return Some(d);
    }
    // Graphite's units ("5min", "1mon") through its own offset parser; a
    // leading sign is not a duration.
    if t.starts_with(['-', '+']) {
        return None;
    }
    let secs = crate::query::time::parse_offset(t).ok()?;
    (secs > 0).then(|| Duration::from_secs(secs.unsigned_abs()))
}

impl Rule {
    /// Checks a written rule (a missing `window` is 5 minutes).
    pub fn from_spec(spec: RuleSpec) -> Result<Rule, RuleError> {
        let name = spec.name.clone();
        let err = |field: &str, message: String| RuleError {
            rule: name.clone(),
            field: field.to_string(),
            message,
        };
        check_name(&spec.name).map_err(|m| err("name", m))?;
        if spec.target.trim().is_empty() {
            return Err(err("target", "a render target is required".into()));
        }
        if spec.target.len() > MAX_TARGET {
            return Err(err(
                "target",
                format!(
                    "{} bytes, more than the {MAX_TARGET} a rule may hold",
                    spec.target.len()
                ),
            ));
        }
        crate::query::parse::parse(&spec.target)
            .map_err(|e| err("target", format!("does not parse: {e}")))?;
        let dur =
            |field: &str, v: &Option<String>, default: Duration| -> Result<Duration, RuleError> {
                match v {
                    None => Ok(default),
                    Some(t) => match parse_duration(t) {
                        Some(d) if d <= MAX_SPAN => Ok(d),
                        Some(_) => Err(err(field, format!("{t:?} is longer than ten years"))),
                        None => Err(err(
                            field,
                            format!("{t:?} is not a duration like \"5m\", \"90s\" or \"2h\""),
                        )),
                    },
                }
            };
        let window = dur("window", &spec.window, Duration::from_secs(300))?;
        if window.is_zero() {
            return Err(err("window", "must be longer than 0s".into()));
        }
        let for_ = dur("for", &spec.for_, Duration::ZERO)?;
        let keep_firing_for = dur("keep_firing_for", &spec.keep_firing_for, Duration::ZERO)?;
        let no_data_after = dur("no_data_after", &spec.no_data_after, Duration::ZERO)?;
        let interval = match &spec.interval {
            None => None,
            Some(_) => {
                let d = dur("interval", &spec.interval, Duration::ZERO)?;
                if d < MIN_INTERVAL {
                    return Err(err("interval", "must be at least 1s".into()));
                }
                Some(d)
            }
        };
        let no_data = match spec.no_data.as_deref() {
            None | Some("nodata") | Some("no_data") => NoDataPolicy::NoData,
            Some("ok") => NoDataPolicy::Ok,
            Some("warning") => NoDataPolicy::Warning,
            Some("critical") => NoDataPolicy::Critical,
            Some("keep_last") => NoDataPolicy::KeepLast,
            Some(o) => {
                return Err(err(
                    "no_data",
                    format!("{o:?} is not one of ok, warning, critical, nodata, keep_last"),
                ))
            }
        };
        let error = match spec.error.as_deref() {
            None | Some("error") => ErrorPolicy::Error,
            Some("keep_last") => ErrorPolicy::KeepLast,
            Some("ok") => ErrorPolicy::Ok,
            Some("warning") => ErrorPolicy::Warning,
            Some("critical") => ErrorPolicy::Critical,
            Some(o) => {
                return Err(err(
                    "error",
                    format!("{o:?} is not one of error, keep_last, ok, warning, critical"),
                ))
            }
        };
        let kind = match spec.kind.as_deref() {
            None | Some("threshold") => Kind::Threshold(threshold(&spec, &err)?),
            Some("forecast") => Kind::Forecast(forecast(&spec, &err)?),
            Some(o) => {
                return Err(err("kind", format!("{o:?} is not threshold or forecast")));
            }
        };
        if spec.labels.len() + spec.annotations.len() > MAX_LABELS {
            return Err(err(
                "labels",
                format!("more than {MAX_LABELS} labels and annotations"),
            ));
        }
        for (field, map) in [("labels", &spec.labels), ("annotations", &spec.annotations)] {
            for (k, v) in map {
                if !valid_label_name(k) {
                    return Err(err(
                        field,
                        format!("{k:?} is not a label name ([A-Za-z_][A-Za-z0-9_]*)"),
                    ));
                }
                if v.len() > MAX_LABEL_VALUE {
                    return Err(err(
                        &format!("{field}.{k}"),
                        format!("longer than {MAX_LABEL_VALUE} bytes"),
                    ));
                }
                template::check(v).map_err(|m| err(&format!("{field}.{k}"), m))?;
            }
        }
        for r in &spec.receivers {
            if r.is_empty() {
                return Err(err("receivers", "an empty receiver name".into()));
            }
        }
        Ok(Rule {
            name: spec.name.clone(),
            target: spec.target.clone(),
            kind,
            window,
            for_,
            keep_firing_for,
            no_data,
            no_data_after,
            error,
            interval,
            labels: spec.labels.clone(),
            annotations: spec.annotations.clone(),
            receivers: spec.receivers.clone(),
            spec,
        })
    }

    pub fn is_forecast(&self) -> bool {
        matches!(self.kind, Kind::Forecast(_))
    }
}

/// Names: a path segment in `/api/alerts/<name>` and a label value, so
/// printable ASCII without `/` and spaces.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a rule needs a name".into());
    }
    if name.len() > MAX_NAME {
        return Err(format!("longer than {MAX_NAME} bytes"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')))
    {
        return Err(format!(
            "{name:?} holds {c:?}; names are letters, digits and _ - . :"
        ));
    }
    Ok(())
}

fn valid_label_name(k: &str) -> bool {
    let mut c = k.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphabetic() || f == '_')
        && c.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

type ErrFn<'a> = dyn Fn(&str, String) -> RuleError + 'a;

fn not_for(
    spec: &RuleSpec,
    kind: &str,
    fields: &[(&str, bool)],
    err: &ErrFn<'_>,
) -> Result<(), RuleError> {
    let _ = spec;
    for (f, present) in fields {
        if *present {
            return Err(err(f, format!("is not used by a {kind} rule")));
        }
    }
    Ok(())
}

fn threshold(spec: &RuleSpec, err: &ErrFn<'_>) -> Result<Threshold, RuleError> {
    not_for(
        spec,
        "threshold",
        &[
            ("threshold", spec.threshold.is_some()),
            ("horizon", spec.horizon.is_some()),
            ("min_r2", spec.min_r2.is_some()),
            ("min_points", spec.min_points.is_some()),
            ("severity", spec.severity.is_some()),
        ],
        err,
    )?;
    let reducer = match spec.reducer.as_deref() {
        None => Reducer::Avg,
        Some(r) => Reducer::parse(r).ok_or_else(|| {
            err(
                "reducer",
                format!(
                    "{r:?} is not one of last, avg, min, max, sum, count, median, pNN (0 < NN <= 100), delta, rate"
                ),
            )
        })?,
    };
    let nulls = match spec.nulls.as_deref() {
        None | Some("ignore") => Nulls::Ignore,
        Some("zero") => Nulls::Zero,
        Some("fail") => Nulls::Fail,
        Some(o) => {
            return Err(err(
                "nulls",
                format!("{o:?} is not one of ignore, zero, fail"),
            ))
        }
    };
    let direction = match spec.direction.as_deref() {
        Some(d) => parse_direction(d).ok_or_else(|| {
            err(
                "direction",
                format!("{d:?} is not one of above, below, outside, inside"),
            )
        })?,
        None => return Err(err(
            "direction",
            "required (above, below, outside or inside): it is never guessed from warn and crit"
                .into(),
        )),
    };
    if spec.warn.is_none() && spec.crit.is_none() {
        return Err(err(
            "crit",
            "a threshold rule needs warn, crit or both".into(),
        ));
    }
    let level = |field: &str,
                 rfield: &str,
                 b: Option<Bound>,
                 r: Option<Bound>|
     -> Result<Option<Level>, RuleError> {
        let Some(b) = b else {
            if r.is_some() {
                return Err(err(rfield, format!("given without {field}")));
            }
            return Ok(None);
        };
        let fire = bound(direction, b).map_err(|m| err(field, m))?;
        let recover = match r {
            None => fire,
            Some(r) => bound(direction, r).map_err(|m| err(rfield, m))?,
        };
        let wrong = |m: &str| Err(err(rfield, m.to_string()));
        match direction {
            Direction::Above if recover.0 > fire.0 => {
                return wrong("must be at or below the threshold (it fired above it)")
            }
            Direction::Below if recover.1 < fire.1 => {
                return wrong("must be at or above the threshold (it fired below it)")
            }
            Direction::Outside if recover.0 < fire.0 || recover.1 > fire.1 => {
                return wrong("must lie within the threshold's range (it fired outside it)")
            }
            Direction::Inside if recover.0 > fire.0 || recover.1 < fire.1 => {
                return wrong("must contain the threshold's range (it fired inside it)")
            }
            _ => {}
        }
        Ok(Some(Level { fire, recover }))
    };
    let warn = level("warn", "warn_recovery", spec.warn, spec.warn_recovery)?;
    let crit = level("crit", "crit_recovery", spec.crit, spec.crit_recovery)?;
    if let (Some(w), Some(c)) = (warn, crit) {
        let contradicts = match direction {
            Direction::Above => c.fire.0 < w.fire.0,
            Direction::Below => c.fire.1 > w.fire.1,
            Direction::Outside => c.fire.0 > w.fire.0 || c.fire.1 < w.fire.1,
            Direction::Inside => c.fire.0 < w.fire.0 || c.fire.1 > w.fire.1,
        };
        if contradicts {
            let why = match direction {
                Direction::Above => "crit must be at or above warn for direction = \"above\"",
                Direction::Below => "crit must be at or below warn for direction = \"below\"",
                Direction::Outside => {
                    "crit's range must contain warn's for direction = \"outside\""
                }
                Direction::Inside => {
                    "crit's range must lie within warn's for direction = \"inside\""
                }
            };
            return Err(err("crit", why.into()));
        }
    }
    Ok(Threshold {
        reducer,
        nulls,
        direction,
        warn,
        crit,
    })
}

fn parse_direction(d: &str) -> Option<Direction> {
    Some(match d {
        "above" => Direction::Above,
        "below" => Direction::Below,
        "outside" | "outside_range" => Direction::Outside,
        "inside" | "inside_range" | "within_range" => Direction::Inside,
        _ => return None,
    })
}

/// A written bound as `(low, high)` for the direction.
fn bound(direction: Direction, b: Bound) -> Result<(f64, f64), String> {
    let finite = |v: f64| {
        if v.is_finite() {
            Ok(v)
        } else {
            Err("must be a finite number".to_string())
        }
    };
    match (direction, b) {
        (Direction::Above, Bound::One(v)) => Ok((finite(v)?, f64::INFINITY)),
        (Direction::Below, Bound::One(v)) => Ok((f64::NEG_INFINITY, finite(v)?)),
        (Direction::Outside | Direction::Inside, Bound::Pair([lo, hi])) => {
            let (lo, hi) = (finite(lo)?, finite(hi)?);
            if lo > hi {
                return Err(format!("[{lo}, {hi}]: low is above high"));
            }
            Ok((lo, hi))
        }
        (Direction::Above | Direction::Below, Bound::Pair(_)) => {
            Err("one number for direction above or below, not a pair".into())
        }
        (Direction::Outside | Direction::Inside, Bound::One(_)) => {
            Err("a pair [low, high] for direction outside or inside".into())
        }
    }
}

fn forecast(spec: &RuleSpec, err: &ErrFn<'_>) -> Result<Forecast, RuleError> {
    not_for(
        spec,
        "forecast",
        &[
            ("reducer", spec.reducer.is_some()),
            ("warn", spec.warn.is_some()),
            ("crit", spec.crit.is_some()),
            ("warn_recovery", spec.warn_recovery.is_some()),
            ("crit_recovery", spec.crit_recovery.is_some()),
            ("nulls", spec.nulls.is_some()),
        ],
        err,
    )?;
    let threshold = spec.threshold.ok_or_else(|| {
        err(
            "threshold",
            "a forecast rule needs the level it must not cross".into(),
        )
    })?;
    if !threshold.is_finite() {
        return Err(err("threshold", "must be a finite number".into()));
    }
    let direction = match spec.direction.as_deref() {
        Some("above") => Direction::Above,
        Some("below") => Direction::Below,
        Some(d) => {
            return Err(err(
                "direction",
                format!(
                    "{d:?}: a forecast fires on a line crossing upward (above) or downward (below)"
                ),
            ))
        }
        None => return Err(err("direction", "required: above or below".into())),
    };
    let horizon = match spec.horizon.as_deref() {
        None => {
            return Err(err(
                "horizon",
                "required: how far ahead a crossing fires, e.g. \"30d\"".into(),
            ))
        }
        Some(h) => match parse_duration(h) {
            Some(d) if !d.is_zero() && d <= MAX_SPAN => d,
            _ => {
                return Err(err(
                    "horizon",
                    format!("{h:?} is not a duration up to ten years"),
                ))
            }
        },
    };
    let min_r2 = spec.min_r2.unwrap_or(0.8);
    if !(0.0..=1.0).contains(&min_r2) {
        return Err(err("min_r2", format!("{min_r2} is not between 0 and 1")));
    }
    let min_points = spec.min_points.unwrap_or(10);
    if min_points < 3 {
        return Err(err(
            "min_points",
            "at least 3 points to fit a line and judge it".into(),
        ));
    }
    let severity = match spec.severity.as_deref() {
        None | Some("critical") => Severity::Critical,
        Some("warning") => Severity::Warning,
        Some(o) => return Err(err("severity", format!("{o:?} is not warning or critical"))),
    };
    Ok(Forecast {
        threshold,
        direction,
        horizon,
        min_r2,
        min_points,
        severity,
    })
}

/// A rule file: `[[rule]]` tables.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    #[serde(default)]
    pub rule: Vec<RuleSpec>,
}

/// Reads a rule file's text: every rule checked, names unique within it.
/// The first problem is the error (the file is all or nothing, so a
/// half-read file never replaces a working one).
pub fn parse_file(text: &str) -> Result<Vec<Rule>, RuleError> {
    let file: RuleFile = toml::from_str(text).map_err(|e| {
        let (line, col) = e
            .span()
            .map(|s| {
                let before = &text[..s.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                (line, col)
            })
            .unwrap_or((0, 0));
        RuleError {
            rule: String::new(),
            field: format!("(line {line}, column {col})"),
            message: e.message().trim_end().replace('\n', "; "),
        }
    })?;
    let mut seen = std::collections::HashSet::new();
    let mut rules = Vec::with_capacity(file.rule.len());
    for spec in file.rule {
        let rule = Rule::from_spec(spec)?;
        if !seen.insert(rule.name.clone()) {
            return Err(RuleError {
                rule: rule.name,
                field: "name".into(),
                message: "used by another rule in this file".into(),
            });
        }
        rules.push(rule);
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: &str) -> Result<Rule, RuleError> {
        let text = format!("[[rule]]\nname = \"r\"\ntarget = \"a.b\"\n{extra}\n");
        parse_file(&text).map(|mut v| v.remove(0))
    }

    fn field_of(extra: &str) -> String {
        spec(extra).unwrap_err().field
    }

    #[test]
    fn a_full_threshold_rule_reads() {
        let r = spec(
            r#"reducer = "p99"
window = "5min"
direction = "above"
warn = 500
crit = 800
crit_recovery = 700
for = "5m"
keep_firing_for = "2m"
no_data = "critical"
no_data_after = "10m"
error = "keep_last"
interval = "30s"
labels = { team = "web" }
annotations = { summary = "p99 {{ value }} on {{ series }}" }"#,
        )
        .unwrap();
        let Kind::Threshold(t) = &r.kind else {
            panic!()
        };
        assert_eq!(t.reducer, Reducer::Percentile(99.0));
        assert_eq!(t.direction, Direction::Above);
        assert_eq!(t.crit.unwrap().fire.0, 800.0);
        assert_eq!(t.crit.unwrap().recover.0, 700.0);
        assert_eq!(t.warn.unwrap().recover.0, 500.0);
        assert_eq!(r.window, Duration::from_secs(300));
        assert_eq!(r.for_, Duration::from_secs(300));
        assert_eq!(r.interval, Some(Duration::from_secs(30)));
        assert_eq!(r.no_data, NoDataPolicy::Critical);
        assert_eq!(r.error, ErrorPolicy::KeepLast);
    }

    #[test]
    fn the_direction_is_never_guessed() {
        let e = spec("warn = 1\ncrit = 2").unwrap_err();
        assert_eq!(e.field, "direction");
        assert!(e.message.contains("never guessed"), "{e}");
    }

    #[test]
    fn bad_fields_are_named() {
        assert_eq!(
            field_of("reducer = \"p999x\"\ndirection = \"above\"\ncrit = 1"),
            "reducer"
        );
        assert_eq!(
            field_of("reducer = \"p0\"\ndirection = \"above\"\ncrit = 1"),
            "reducer"
        );
        assert_eq!(
            field_of("window = \"fortnight\"\ndirection = \"above\"\ncrit = 1"),
            "window"
        );
        assert_eq!(field_of("direction = \"up\"\ncrit = 1"), "direction");
        assert_eq!(field_of("direction = \"above\""), "crit");
        assert_eq!(field_of("direction = \"above\"\ncrit = [1, 2]"), "crit");
        assert_eq!(field_of("direction = \"outside\"\ncrit = 1"), "crit");
        assert_eq!(
            field_of("direction = \"above\"\ncrit = 1\nno_data = \"maybe\""),
            "no_data"
        );
        assert_eq!(
            field_of("direction = \"above\"\ncrit = 1\ninterval = \"10ms\""),
            "interval"
        );
        assert_eq!(
            field_of("direction = \"above\"\ncrit = 1\nhorizon = \"1d\""),
            "horizon"
        );
        assert_eq!(
            field_of("direction = \"above\"\ncrit = 1\nannotations = { s = \"{{ nope }}\" }"),
            "annotations.s"
        );
        let e = parse_file(
            "[[rule]]\nname = \"r\"\ntarget = \"sum(a.b\"\ndirection = \"above\"\ncrit = 1\n",
        )
        .unwrap_err();
        assert_eq!(e.field, "target");
        let e = parse_file("[[rule]]\nname = \"a b\"\ntarget = \"a\"\n").unwrap_err();
        assert_eq!(e.field, "name");
        let e = parse_file("[[rule]]\nname = \"r\"\ntarget = \"a\"\ncolour = 1\n").unwrap_err();
        assert!(e.message.contains("colour"), "{e}");
    }

    #[test]
    fn warn_and_crit_that_contradict_the_direction_are_refused() {
        let e = spec("direction = \"above\"\nwarn = 800\ncrit = 500").unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.message.contains("above warn")),
            ("crit", true)
        );
        let e = spec("direction = \"below\"\nwarn = 5\ncrit = 10").unwrap_err();
        assert_eq!(e.field, "crit");
        let e = spec("direction = \"outside\"\nwarn = [0, 10]\ncrit = [2, 20]").unwrap_err();
        assert_eq!(e.field, "crit");
        let e = spec("direction = \"inside\"\nwarn = [0, 10]\ncrit = [-1, 5]").unwrap_err();
        assert_eq!(e.field, "crit");
        assert!(spec("direction = \"below\"\nwarn = 10\ncrit = 5").is_ok());
        assert!(spec("direction = \"outside\"\nwarn = [2, 8]\ncrit = [0, 10]").is_ok());
    }

    #[test]
    fn a_recovery_on_the_wrong_side_is_refused() {
        assert_eq!(
            field_of("direction = \"above\"\ncrit = 800\ncrit_recovery = 900"),
            "crit_recovery"
        );
        assert_eq!(
            field_of("direction = \"below\"\ncrit = 10\ncrit_recovery = 5"),
            "crit_recovery"
        );
        assert_eq!(
            field_of("direction = \"outside\"\ncrit = [0, 10]\ncrit_recovery = [-1, 9]"),
            "crit_recovery"
        );
        assert_eq!(
            field_of("direction = \"above\"\nwarn_recovery = 1\ncrit = 2"),
            "warn_recovery"
        );
        assert!(spec("direction = \"below\"\ncrit = 10\ncrit_recovery = 15").is_ok());
    }

    #[test]
    fn forecast_rules_read_and_refuse_threshold_fields() {
        let r = spec("kind = \"forecast\"\nwindow = \"7d\"\nthreshold = 4e9\ndirection = \"above\"\nhorizon = \"30d\"\nmin_r2 = 0.9").unwrap();
        let Kind::Forecast(f) = &r.kind else { panic!() };
        assert_eq!(f.horizon, Duration::from_secs(30 * 86400));
        assert_eq!(
            (f.min_r2, f.min_points, f.severity),
            (0.9, 10, Severity::Critical)
        );
        assert_eq!(field_of("kind = \"forecast\"\nthreshold = 1\ndirection = \"above\"\nhorizon = \"1d\"\ncrit = 2"), "crit");
        assert_eq!(
            field_of("kind = \"forecast\"\ndirection = \"above\"\nhorizon = \"1d\""),
            "threshold"
        );
        assert_eq!(
            field_of(
                "kind = \"forecast\"\nthreshold = 1\ndirection = \"outside\"\nhorizon = \"1d\""
            ),
            "direction"
        );
        assert_eq!(field_of("kind = \"forecast\"\nthreshold = 1\ndirection = \"above\"\nhorizon = \"1d\"\nmin_r2 = 2"), "min_r2");
    }

    #[test]
    fn json_bodies_hold_the_same_fields() {
        let s: RuleSpec = serde_json::from_str(
            r#"{"name":"r","target":"a.b","reducer":"max","direction":"inside","crit":[1,2],"for":"1m"}"#,
        )
        .unwrap();
        let r = Rule::from_spec(s).unwrap();
        assert_eq!(r.for_, Duration::from_secs(60));
        let back = serde_json::to_string(&r.spec).unwrap();
        let again: RuleSpec = serde_json::from_str(&back).unwrap();
        assert_eq!(again, r.spec);
        assert!(serde_json::from_str::<RuleSpec>(r#"{"name":"r","bogus":1}"#).is_err());
    }

    #[test]
    fn durations_read_both_ways() {
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("5min"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("2hours"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("7d"), Some(Duration::from_secs(7 * 86400)));
        assert_eq!(parse_duration("-5min"), None);
        assert_eq!(parse_duration("soon"), None);
    }

    #[test]
    fn duplicate_names_in_one_file_are_refused() {
        let e = parse_file(
            "[[rule]]\nname = \"r\"\ntarget = \"a\"\ndirection = \"above\"\ncrit = 1\n[[rule]]\nname = \"r\"\ntarget = \"b\"\ndirection = \"above\"\ncrit = 1\n",
        )
        .unwrap_err();
        assert_eq!((e.rule.as_str(), e.field.as_str()), ("r", "name"));
    }
}
