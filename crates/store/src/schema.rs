//! Retention and aggregation: which archives a series keeps, and how a
//! coarser point is made from finer ones. Carbon's storage-schemas and
//! storage-aggregation, as ordered rule lists (first match wins), with
//! whisper's validation of archive lists and whisper's aggregation methods.

use std::fmt;

use regex::Regex;

use crate::config::StorageConfig;

/// Points per row the store aims for. Rows this long compress to well under
/// a byte and a half per statsd-shaped point with pco; memory holds only the
/// slots changed since the last checkpoint, whatever the row's length.
/// (Measured in `benches/store.rs`: see docs/storage-format.md.)
pub const ROW_POINTS: u32 = 720;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SchemaError {
    #[error("retentions {text:?}: {why}")]
    Retentions { text: String, why: String },
    #[error("pattern {pattern:?} is not a valid regex: {why}")]
    Pattern { pattern: String, why: String },
    #[error("aggregation method {0:?} is not one of average, sum, min, max, last, avg_zero, absmax, absmin")]
    Method(String),
    #[error("x_files_factor {0} must be between 0 and 1")]
    Xff(f64),
}

/// One archive: a step and how many points it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Archive {
    pub step: u32,
    pub points: u32,
}

impl Archive {
    pub fn retention(&self) -> u64 {
        u64::from(self.step) * u64::from(self.points)
    }
}

/// An archive list plus the row span chosen for each archive.
/// What [`Retention::read_window`] reads: slots `from`, `from + step`, ...
/// up to (not including) `until` of `archive`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadWindow {
    pub archive: usize,
    pub step: i64,
    pub from: i64,
    pub until: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Retention {
    /// The text it was parsed from, normalised (`10s:6h,1m:7d`); stored with
    /// the schema so a restart with other rules keeps old series readable.
    pub text: String,
    pub archives: Vec<Archive>,
    /// Seconds covered by one row of each archive.
    pub spans: Vec<u32>,
}

fn unit_seconds(unit: &str) -> Option<u64> {
    Some(match unit {
        "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86400,
        "w" | "week" | "weeks" => 7 * 86400,
        "y" | "year" | "years" => 365 * 86400,
        _ => return None,
    })
}

/// `"10s"` → 10, `"60"` → 60 (plain numbers are seconds for a precision).
fn parse_amount(s: &str) -> Option<(u64, bool)> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let n: u64 = s[..digits].parse().ok()?;
    let unit = &s[digits..];
    if unit.is_empty() {
        Some((n, false))
    } else {
        Some((n.checked_mul(unit_seconds(unit)?)?, true))
    }
}

impl Retention {
    /// Parses carbon's retention syntax: `precision:retention` pairs,
    /// comma-separated; a retention without a unit is a number of points.
    pub fn parse(text: &str) -> Result<Retention, SchemaError> {
        let bad = |why: String| SchemaError::Retentions {
            text: text.to_string(),
            why,
        };
        let mut archives = Vec::new();
        for part in text.split(',').map(str::trim) {
            let (p, r) = part
                .split_once(':')
                .ok_or_else(|| bad(format!("{part:?} is not precision:retention")))?;
            let (step, _) = parse_amount(p.trim())
                .ok_or_else(|| bad(format!("{p:?} is not a precision like 10s or 1m")))?;
            let (ret, has_unit) = parse_amount(r.trim())
                .ok_or_else(|| bad(format!("{r:?} is not a retention like 6h or 1440")))?;
            let step = u32::try_from(step)
                .ok()
                .filter(|&s| s != 0 && s <= u32::MAX / 4)
                .ok_or_else(|| bad(format!("precision {p:?} is out of range")))?;
            let points = if has_unit { ret / u64::from(step) } else { ret };
            let points = u32::try_from(points)
                .ok()
                .filter(|&n| n != 0)
                .ok_or_else(|| bad(format!("{part:?} keeps no points or too many")))?;
            archives.push(Archive { step, points });
        }
        archives.sort_by_key(|a| a.step);
        // whisper's validateArchiveList, reworded.
        for w in archives.windows(2) {
            let (hi, lo) = (w[0], w[1]);
            if hi.step == lo.step {
                return Err(bad(format!("two archives have the step {}s", hi.step)));
            }
            if lo.step % hi.step != 0 {
                return Err(bad(format!(
                    "step {}s is not a multiple of the finer step {}s",
                    lo.step, hi.step
                )));
            }
            if lo.retention() <= hi.retention() {
                return Err(bad(format!(
                    "the {}s archive must keep more time than the {}s archive",
                    lo.step, hi.step
                )));
            }
            if u64::from(hi.points) < u64::from(lo.step / hi.step) {
                return Err(bad(format!(
                    "the {}s archive keeps fewer points than one {}s point needs",
                    hi.step, lo.step
                )));
            }
        }
        let spans = row_spans(&archives);
        let text = archives
            .iter()
            .map(|a| format!("{}s:{}", a.step, a.points))
            .collect::<Vec<_>>()
            .join(",");
        Ok(Retention {
            text,
            archives,
            spans,
        })
    }

    pub fn max_retention(&self) -> u64 {
        self.archives.last().map_or(0, |a| a.retention())
    }

    /// The archive a point `age` seconds old goes to (whisper's update: the
    /// first whose retention is at least the age), or None when it is as
    /// old as the longest retention or older.
    pub fn archive_for_age(&self, age: i64) -> Option<usize> {
        let age = age.max(0).unsigned_abs();
        if age >= self.max_retention() {
            return None;
        }
        self.archives.iter().position(|a| a.retention() >= age)
    }

    /// The archive a read from `age` seconds ago uses (whisper's fetch:
    /// retention >= age).
    pub fn archive_for_read(&self, age: i64) -> usize {
        let age = age.max(0).unsigned_abs();
        self.archives
            .iter()
            .position(|a| a.retention() >= age)
            .unwrap_or(self.archives.len() - 1)
    }

    /// whisper's fetch window over `[from, until]` read at `now`: the
    /// archive (the finest whose retention reaches `from`), its step, and
    /// the first and past-the-last slot, or `None` when the range is all in
    /// the future or past the longest retention. Every engine reads this
    /// window, so they answer the same range with the same slots.
    pub fn read_window(&self, from: i64, until: i64, now: i64) -> Option<ReadWindow> {
        let (mut from, mut until) = (from.min(until), from.max(until));
        let oldest = now.saturating_sub(i64::try_from(self.max_retention()).unwrap_or(i64::MAX));
        if from > now || until < oldest {
            return None;
        }
        from = from.max(oldest);
        until = until.min(now);
        let archive = self.archive_for_read(now - from);
        let step = i64::from(self.archives[archive].step);
        let from_i = from - from.rem_euclid(step) + step;
        let mut until_i = until - until.rem_euclid(step) + step;
        if from_i == until_i {
            until_i += step;
        }
        Some(ReadWindow {
            archive,
            step,
            from: from_i,
            until: until_i,
        })
    }

    pub fn slots(&self, archive: usize) -> u32 {
        self.spans[archive] / self.archives[archive].step
    }
}

/// Archive index `a` as the byte that row keys, seal marks and retention
/// ranges name it by.
#[expect(
    clippy::cast_possible_truncation,
    reason = "callers pass an index into a retention's archives, and Retention::parse keeps at most 30 (steps strictly rise, each a multiple, so at least double, of the finer one, up to u32::MAX / 4 < 2^30)"
)]
#[inline]
pub(crate) fn archive_byte(a: usize) -> u8 {
    a as u8
}

/// Each archive's row span: about [`ROW_POINTS`] steps (fewer when the
/// archive keeps fewer), rounded up to a
/// multiple of the next coarser step, so that every coarser point's finer
/// points lie in one row (rollups never straddle rows).
fn row_spans(archives: &[Archive]) -> Vec<u32> {
    archives
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let unit = u64::from(archives.get(i + 1).map_or(a.step, |c| c.step));
            // No longer than the archive keeps: a row outliving its
            // retention would hold expired points until it ends.
            let want = u64::from(a.step) * u64::from(ROW_POINTS.min(a.points));
            let span = want.div_ceil(unit) * unit;
            u32::try_from(span).unwrap_or(u32::MAX).min(u32::MAX / 2)
        })
        .collect()
}

/// How finer points become one coarser point (whisper's methods).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Average,
    Sum,
    Min,
    Max,
    Last,
    AvgZero,
    AbsMax,
    AbsMin,
}

impl Method {
    pub fn parse(s: &str) -> Result<Method, SchemaError> {
        Ok(match s {
            "average" | "avg" => Method::Average,
            "sum" => Method::Sum,
            "min" => Method::Min,
            "max" => Method::Max,
            "last" => Method::Last,
            "avg_zero" => Method::AvgZero,
            "absmax" => Method::AbsMax,
            "absmin" => Method::AbsMin,
            _ => return Err(SchemaError::Method(s.to_string())),
        })
    }

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(c: u8) -> Option<Method> {
        use Method::*;
        [Average, Sum, Min, Max, Last, AvgZero, AbsMax, AbsMin]
            .get(c as usize)
            .copied()
    }

    pub fn name(self) -> &'static str {
        match self {
            Method::Average => "average",
            Method::Sum => "sum",
            Method::Min => "min",
            Method::Max => "max",
            Method::Last => "last",
            Method::AvgZero => "avg_zero",
            Method::AbsMax => "absmax",
            Method::AbsMin => "absmin",
        }
    }

    /// whisper's `aggregate(method, knownValues, neighborValues)`: `slots`
    /// are the finer points of one coarser step in time order, NaN where
    /// unknown. Returns None when fewer than `xff` of them are known.
    pub fn aggregate(self, slots: &[f64], xff: f32) -> Option<f64> {
        self.aggregate_window(slots, slots.len(), xff)
    }

    /// [`Method::aggregate`] over a window of `n` slots of which `slots`
    /// are the first ones (the rest unknown).
    pub fn aggregate_window(self, slots: &[f64], n: usize, xff: f32) -> Option<f64> {
        let n = n.max(slots.len());
        let known = slots.iter().filter(|v| !v.is_nan()).count();
        if known == 0 || (known as f64 / n as f64) < f64::from(xff) {
            return None;
        }
        let vals = || slots.iter().copied().filter(|v| !v.is_nan());
        Some(match self {
            Method::Average => vals().sum::<f64>() / known as f64,
            Method::Sum => vals().sum(),
            Method::Min => vals().fold(f64::INFINITY, f64::min),
            Method::Max => vals().fold(f64::NEG_INFINITY, f64::max),
            Method::Last => vals().next_back().unwrap_or(f64::NAN),
            Method::AvgZero => vals().sum::<f64>() / n as f64,
            // Python's max(key=abs) keeps the first of equal magnitudes.
            Method::AbsMax => vals().fold(f64::NAN, |m, v| {
                if m.is_nan() || v.abs() > m.abs() {
                    v
                } else {
                    m
                }
            }),
            Method::AbsMin => vals().fold(f64::NAN, |m, v| {
                if m.is_nan() || v.abs() < m.abs() {
                    v
                } else {
                    m
                }
            }),
        })
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a new series gets.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    pub retention: String,
    pub method: Method,
    pub xff: f32,
}

/// The ordered rules, compiled.
#[derive(Debug, Clone)]
pub struct Rules {
    retention: Vec<(Regex, Retention)>,
    aggregation: Vec<(Regex, Method, f32)>,
}

/// The built-in rules, tried after the user's: right for statsd output.
pub const DEFAULT_RETENTION: &str = "10s:6h,1m:7d,10m:5y";
const DEFAULT_AGGREGATION: [(&str, &str, f64); 7] = [
    // Raw counts and sums add up; nothing is invented for missing points.
    (r"^stats_counts\.", "sum", 0.0),
    (r"\.count$", "sum", 0.0),
    (r"\.sum(_[0-9_]+)?$", "sum", 0.0),
    (r"\.lower$", "min", 0.1),
    (r"\.upper(_[0-9_]+)?$", "max", 0.1),
    // A gauge is a level: the last reading is the reading.
    (r"(^|\.)gauges\.", "last", 0.0),
    (r".*", "average", 0.3),
];

fn compile(pattern: &str) -> Result<Regex, SchemaError> {
    Regex::new(pattern).map_err(|e| SchemaError::Pattern {
        pattern: pattern.to_string(),
        why: e
            .to_string()
            .lines()
            .last()
            .unwrap_or("")
            .trim()
            .to_string(),
    })
}

impl Rules {
    #[expect(
        clippy::cast_possible_truncation,
        reason = "xff is checked to be within 0..=1 first; f32 (what a series record stores) only rounds it"
    )]
    pub fn from_config(cfg: &StorageConfig) -> Result<Rules, SchemaError> {
        let mut retention = Vec::new();
        for r in &cfg.retention {
            retention.push((compile(&r.pattern)?, Retention::parse(&r.retentions)?));
        }
        retention.push((compile(".*")?, Retention::parse(DEFAULT_RETENTION)?));
        let mut aggregation = Vec::new();
        let user = cfg
            .aggregation
            .iter()
            .map(|a| (a.pattern.as_str(), a.method.as_str(), a.x_files_factor));
        for (pattern, method, xff) in user.chain(DEFAULT_AGGREGATION) {
            if !(0.0..=1.0).contains(&xff) {
                return Err(SchemaError::Xff(xff));
            }
            aggregation.push((compile(pattern)?, Method::parse(method)?, xff as f32));
        }
        Ok(Rules {
            retention,
            aggregation,
        })
    }

    /// Every retention a series can be given: the user's rules in order,
    /// then the built-in one.
    pub fn retentions(&self) -> impl Iterator<Item = &Retention> + '_ {
        self.retention.iter().map(|(_, r)| r)
    }

    /// Every aggregation method a series can be given, in rule order (with
    /// repeats).
    pub fn methods(&self) -> impl Iterator<Item = Method> + '_ {
        self.aggregation.iter().map(|(_, m, _)| *m)
    }

    /// The first matching rule of each list, for a series name (tags and
    /// all, as carbon matches them).
    pub fn assign(&self, name: &str) -> Assignment {
        let retention = self
            .retention
            .iter()
            .find(|(re, _)| re.is_match(name))
            .map(|(_, r)| r.text.clone())
            .unwrap_or_else(|| DEFAULT_RETENTION.to_string());
        let (method, xff) = self
            .aggregation
            .iter()
            .find(|(re, _, _)| re.is_match(name))
            .map(|(_, m, x)| (*m, *x))
            .unwrap_or((Method::Average, 0.5));
        Assignment {
            retention,
            method,
            xff,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AggregationRule, RetentionRule};

    #[test]
    fn parses_carbon_retention_syntax() {
        let r = Retention::parse("10s:6h,1m:7d,10m:5y").unwrap();
        assert_eq!(
            r.archives,
            vec![
                Archive {
                    step: 10,
                    points: 2160
                },
                Archive {
                    step: 60,
                    points: 10080
                },
                Archive {
                    step: 600,
                    points: 262800
                },
            ]
        );
        assert_eq!(r.max_retention(), 5 * 365 * 86400);
        // Plain retention numbers are point counts.
        let r = Retention::parse("60:1440").unwrap();
        assert_eq!(
            r.archives,
            vec![Archive {
                step: 60,
                points: 1440
            }]
        );
        assert_eq!(r.text, "60s:1440");
    }

    #[test]
    fn rejects_what_whisper_rejects() {
        for bad in [
            "10s:6h,15s:7d", // not a multiple
            "10s:6h,1m:1h",  // coarser keeps less time
            "10s:30s,1m:7d", // too few points for one coarser point
            "10s:6h,10s:7d", // same step
            "10x:6h",        // unit
            "6h",            // no colon
            "0s:6h",         // zero step
        ] {
            assert!(Retention::parse(bad).is_err(), "{bad} should fail");
        }
        let e = Retention::parse("10s:6h,15s:7d").unwrap_err();
        assert!(e.to_string().contains("multiple"), "{e}");
    }

    #[test]
    fn row_spans_hold_whole_coarser_points() {
        let r = Retention::parse("10s:6h,1m:7d,10m:5y").unwrap();
        assert_eq!(r.spans, vec![7200, 43200, 432000]);
        for (i, span) in r.spans.iter().enumerate() {
            if let Some(c) = r.archives.get(i + 1) {
                assert_eq!(span % c.step, 0);
            }
            assert_eq!(span % r.archives[i].step, 0);
        }
        let odd = Retention::parse("7s:1d,49s:30d").unwrap();
        assert_eq!(odd.spans[0] % 49, 0);
    }

    #[test]
    fn archive_choice_matches_whisper() {
        let r = Retention::parse("10s:6h,1m:7d,10m:5y").unwrap();
        assert_eq!(r.archive_for_age(0), Some(0));
        assert_eq!(r.archive_for_age(6 * 3600), Some(0));
        assert_eq!(r.archive_for_age(6 * 3600 + 1), Some(1));
        assert_eq!(r.archive_for_age(5 * 365 * 86400 - 1), Some(2));
        assert_eq!(r.archive_for_age(5 * 365 * 86400), None);
        assert_eq!(r.archive_for_read(6 * 3600), 0);
        assert_eq!(r.archive_for_read(6 * 3600 + 1), 1);
    }

    #[test]
    fn whisper_aggregation_and_xff() {
        let n = f64::NAN;
        let s = [1.0, n, 3.0, n, n, 5.0];
        assert_eq!(Method::Average.aggregate(&s, 0.5), Some(3.0));
        assert_eq!(Method::Average.aggregate(&s, 0.51), None);
        assert_eq!(Method::Sum.aggregate(&s, 0.0), Some(9.0));
        assert_eq!(Method::Min.aggregate(&s, 0.0), Some(1.0));
        assert_eq!(Method::Max.aggregate(&s, 0.0), Some(5.0));
        assert_eq!(Method::Last.aggregate(&s, 0.0), Some(5.0));
        assert_eq!(Method::AvgZero.aggregate(&s, 0.0), Some(1.5));
        assert_eq!(Method::AbsMax.aggregate(&[-4.0, 4.0, 1.0], 0.0), Some(-4.0));
        assert_eq!(Method::AbsMin.aggregate(&[-4.0, 2.0, -2.0], 0.0), Some(2.0));
        assert_eq!(Method::Sum.aggregate(&[n, n], 0.0), None);
    }

    #[test]
    fn defaults_fit_statsd_names() {
        let rules = Rules::from_config(&StorageConfig::default()).unwrap();
        let m = |n: &str| rules.assign(n).method;
        assert_eq!(m("stats_counts.signups"), Method::Sum);
        assert_eq!(m("stats.timers.api.latency.count"), Method::Sum);
        assert_eq!(m("stats.timers.api.latency.sum"), Method::Sum);
        assert_eq!(m("stats.timers.api.latency.lower"), Method::Min);
        assert_eq!(m("stats.timers.api.latency.upper"), Method::Max);
        assert_eq!(m("stats.timers.api.latency.upper_99_9"), Method::Max);
        assert_eq!(m("stats.gauges.queue.depth"), Method::Last);
        assert_eq!(m("stats.signups"), Method::Average);
        assert_eq!(
            rules.assign("x").retention,
            "10s:2160,60s:10080,600s:262800"
        );
    }

    #[test]
    fn user_rules_come_first() {
        let cfg = StorageConfig {
            retention: vec![RetentionRule {
                pattern: "^carbon\\.".into(),
                retentions: "60s:90d".into(),
            }],
            aggregation: vec![AggregationRule {
                pattern: "\\.p99$".into(),
                method: "max".into(),
                x_files_factor: 0.0,
            }],
            ..StorageConfig::default()
        };
        let rules = Rules::from_config(&cfg).unwrap();
        assert_eq!(rules.assign("carbon.agents.a").retention, "60s:129600");
        assert_eq!(rules.assign("web.p99").method, Method::Max);
        assert_eq!(rules.assign("web.p99").xff, 0.0);
        assert_eq!(rules.assign("web.p50").method, Method::Average);
        let bad = StorageConfig {
            aggregation: vec![AggregationRule {
                pattern: "(".into(),
                method: "max".into(),
                x_files_factor: 0.0,
            }],
            ..StorageConfig::default()
        };
        assert!(matches!(
            Rules::from_config(&bad),
            Err(SchemaError::Pattern { .. })
        ));
    }
}
