//! Silences in Alertmanager's shape: matchers on an alert instance's labels
//! (`alertname` = the rule, `severity`, `series`, the series' tags, the
//! rule's labels), who and why, and a time range. A silenced instance still
//! changes state; it is only not notified.
//!
//! Pure: the caller passes `now`, assigns ids and stores silences. The JSON
//! is Alertmanager's (`matchers[].name/value/isRegex/isEqual`, `createdBy`,
//! `comment`, `startsAt`, `endsAt` as RFC 3339), so a body written for
//! `amtool` or Alertmanager's v2 API works here unchanged.

use std::collections::BTreeMap;
use std::fmt;

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Matchers one silence may hold.
pub const MAX_MATCHERS: usize = 64;
/// The longest matcher value (a literal or a regex).
pub const MAX_VALUE: usize = 4096;
/// The longest label name in a matcher.
pub const MAX_NAME: usize = 256;
pub const MAX_COMMENT: usize = 4096;
pub const MAX_CREATED_BY: usize = 256;
/// The longest id a client may give (an update of an existing silence).
pub const MAX_ID: usize = 64;
/// The longest a silence may run: a year. A longer one is a rule that
/// should be deleted, not silenced.
pub const MAX_LENGTH: i64 = 366 * 86400;
/// How far ahead a silence may start.
pub const MAX_START_AHEAD: i64 = 366 * 86400;
/// The compiled programs of one silence's regexes, together. The regex
/// crate's default is 10 MiB per regex, so 64 regex matchers could take
/// 640 MiB. Measured (regex 1.13, the smallest `size_limit` each compiles
/// under): `(api|web|db)-[0-9]{1,4}\.(east|west)` 1.8 KB, `.{0,50}` 52 KB,
/// `\w+\.\w+\.\w+` 150 KB, `\w{1,8}` 400 KB (Unicode `\w` is large),
/// `((a{100}){100}){100}` 32 MB, refused in 2.5 ms.
pub const REGEX_BUDGET: usize = 4 << 20;
/// At most this per regex, however few a silence has.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// One matcher: `name` `=`, `!=`, `=~` or `!~` `value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matcher {
    pub name: String,
    pub value: String,
    #[serde(rename = "isRegex", default)]
    pub is_regex: bool,
    /// False negates the match (`!=`, `!~`). Alertmanager's default: true.
    #[serde(rename = "isEqual", default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

impl Matcher {
    /// The operator as Alertmanager prints it.
    pub fn op(&self) -> &'static str {
        match (self.is_regex, self.is_equal) {
            (false, true) => "=",
            (false, false) => "!=",
            (true, true) => "=~",
            (true, false) => "!~",
        }
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.op(), self.value)
    }
}

/// A refused silence: which field (`matchers[2].value`, `endsAt`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SilenceError {
    pub field: String,
    pub message: String,
}

impl fmt::Display for SilenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field {}: {}", self.field, self.message)
    }
}

impl std::error::Error for SilenceError {}

fn refuse(field: impl Into<String>, message: impl Into<String>) -> SilenceError {
    SilenceError {
        field: field.into(),
        message: message.into(),
    }
}

/// What a `POST /api/silences` body holds (Alertmanager's postable
/// silence). `id` is Alertmanager's update of an existing silence: copied
/// through [`check`]; the caller decides whether such a silence exists and
/// assigns a fresh id when it is empty.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SilenceSpec {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub matchers: Vec<Matcher>,
    #[serde(default)]
    pub created_by: String,
    #[serde(default)]
    pub comment: String,
    /// Missing: now.
    #[serde(default, deserialize_with = "time_opt")]
    pub starts_at: Option<i64>,
    #[serde(default, deserialize_with = "time_opt")]
    pub ends_at: Option<i64>,
}

/// A checked silence. Serializes to Alertmanager's JSON; deserializing
/// (from the store) checks the matchers again and compiles the regexes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(into = "Wire", try_from = "Wire")]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<Matcher>,
    pub created_by: String,
    pub comment: String,
    /// Unix seconds.
    pub starts_at: i64,
    pub ends_at: i64,
    /// One per matcher: the anchored regex of a regex matcher.
    compiled: Vec<Option<Regex>>,
}

impl PartialEq for Silence {
    fn eq(&self, o: &Silence) -> bool {
        // The compiled regexes follow from the matchers.
        (
            &self.id,
            &self.matchers,
            &self.created_by,
            &self.comment,
            self.starts_at,
            self.ends_at,
        ) == (
            &o.id,
            &o.matchers,
            &o.created_by,
            &o.comment,
            o.starts_at,
            o.ends_at,
        )
    }
}

/// Where a silence stands at a moment (Alertmanager's `status.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SilenceState {
    Pending,
    Active,
    Expired,
}

impl SilenceState {
    pub fn as_str(self) -> &'static str {
        match self {
            SilenceState::Pending => "pending",
            SilenceState::Active => "active",
            SilenceState::Expired => "expired",
        }
    }
}

/// Checks a posted silence at `now`, as Alertmanager does: at least one
/// matcher and at least one that does not match the empty string (so no
/// silence mutes every alert), label names, regexes that compile within
/// their share of [`REGEX_BUDGET`], a creator and a comment, an end in the future and
/// after the start, at most [`MAX_LENGTH`] long, bounded sizes. A start in
/// the past becomes `now` (Alertmanager's rule too: a silence cannot
/// rewrite what was already sent).
pub fn check(spec: SilenceSpec, now: i64) -> Result<Silence, SilenceError> {
    let id = match spec.id {
        None => String::new(),
        Some(id) => {
            if id.len() > MAX_ID
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(refuse(
                    "id",
                    format!("at most {MAX_ID} letters, digits, - and _"),
                ));
            }
            id
        }
    };
    if spec.created_by.trim().is_empty() {
        return Err(refuse("createdBy", "required: who made the silence"));
    }
    if spec.comment.trim().is_empty() {
        return Err(refuse("comment", "required: why the silence was made"));
    }
    let ends_at = spec
        .ends_at
        .ok_or_else(|| refuse("endsAt", "required: when the silence ends"))?;
    let starts_at = spec.starts_at.unwrap_or(now).max(now);
    if starts_at > now.saturating_add(MAX_START_AHEAD) {
        return Err(refuse("startsAt", "more than a year ahead"));
    }
    if ends_at <= now {
        return Err(refuse(
            "endsAt",
            "in the past: the silence would never apply",
        ));
    }
    if ends_at <= starts_at {
        return Err(refuse("endsAt", "must be after startsAt"));
    }
    if ends_at - starts_at > MAX_LENGTH {
        return Err(refuse(
            "endsAt",
            format!(
                "the silence would last {} days; at most a year (delete or change the rule instead)",
                (ends_at - starts_at) / 86400
            ),
        ));
    }
    Silence::build(Wire {
        id,
        matchers: spec.matchers,
        created_by: spec.created_by,
        comment: spec.comment,
        starts_at,
        ends_at,
    })
}

impl Silence {
    /// The checks that hold whatever the time (also run on a stored
    /// silence read back), and the regexes compiled.
    fn build(w: Wire) -> Result<Silence, SilenceError> {
        if w.created_by.len() > MAX_CREATED_BY {
            return Err(refuse(
                "createdBy",
                format!("longer than {MAX_CREATED_BY} bytes"),
            ));
        }
        if w.comment.len() > MAX_COMMENT {
            return Err(refuse(
                "comment",
                format!("longer than {MAX_COMMENT} bytes"),
            ));
        }
        if w.matchers.is_empty() {
            return Err(refuse("matchers", "at least one matcher is required"));
        }
        if w.matchers.len() > MAX_MATCHERS {
            return Err(refuse(
                "matchers",
                format!("{} matchers; at most {MAX_MATCHERS}", w.matchers.len()),
            ));
        }
        // Each regex gets an equal share of the budget: a bound known
        // before compiling (the regex crate does not report the size).
        let regexes = w.matchers.iter().filter(|m| m.is_regex).count().max(1);
        let limit = (REGEX_BUDGET / regexes).min(REGEX_SIZE_LIMIT);
        let mut compiled = Vec::with_capacity(w.matchers.len());
        for (i, m) in w.matchers.iter().enumerate() {
            if !valid_label_name(&m.name) {
                return Err(refuse(
                    format!("matchers[{i}].name"),
                    format!(
                        "{:?} is not a label name ([A-Za-z_][A-Za-z0-9_]*, at most {MAX_NAME} bytes)",
                        truncate(&m.name, 64)
                    ),
                ));
            }
            if m.value.len() > MAX_VALUE {
                return Err(refuse(
                    format!("matchers[{i}].value"),
                    format!("longer than {MAX_VALUE} bytes"),
                ));
            }
            compiled.push(if m.is_regex {
                Some(
                    compile(&m.value, limit)
                        .map_err(|e| refuse(format!("matchers[{i}].value"), e))?,
                )
            } else {
                None
            });
        }
        let s = Silence {
            id: w.id,
            matchers: w.matchers,
            created_by: w.created_by,
            comment: w.comment,
            starts_at: w.starts_at,
            ends_at: w.ends_at,
            compiled,
        };
        if (0..s.matchers.len()).all(|i| s.matcher_matches(i, "")) {
            return Err(refuse(
                "matchers",
                "every matcher matches the empty string, so the silence would mute every alert; \
                 add one that names something (e.g. alertname=\"my_rule\")",
            ));
        }
        Ok(s)
    }

    fn matcher_matches(&self, i: usize, v: &str) -> bool {
        let m = &self.matchers[i];
        let hit = match &self.compiled[i] {
            Some(re) => re.is_match(v),
            None => m.value == v,
        };
        hit == m.is_equal
    }

    /// Whether every matcher holds for an instance's labels. A label the
    /// instance lacks is the empty string (Alertmanager's rule), so
    /// `team!="web"` matches an instance without a `team` label.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        (0..self.matchers.len()).all(|i| {
            let v = labels
                .get(&self.matchers[i].name)
                .map_or("", String::as_str);
            self.matcher_matches(i, v)
        })
    }

    /// Whether it mutes notifications at `now`: from `starts_at` (included)
    /// until `ends_at` (excluded).
    pub fn active(&self, now: i64) -> bool {
        self.starts_at <= now && now < self.ends_at
    }

    pub fn state(&self, now: i64) -> SilenceState {
        if now < self.starts_at {
            SilenceState::Pending
        } else if now < self.ends_at {
            SilenceState::Active
        } else {
            SilenceState::Expired
        }
    }

    /// Ends the silence at `now` (Alertmanager's expire: `DELETE` keeps
    /// the record, so the history says who silenced what). A pending one
    /// gets `starts_at = ends_at = now`. An expired one is refused.
    pub fn expire(&mut self, now: i64) -> Result<(), SilenceError> {
        match self.state(now) {
            SilenceState::Expired => Err(refuse("id", "the silence has already expired")),
            SilenceState::Pending => {
                self.starts_at = now;
                self.ends_at = now;
                Ok(())
            }
            SilenceState::Active => {
                self.ends_at = now;
                Ok(())
            }
        }
    }

    /// Alertmanager's gettable silence: the silence and `status.state`.
    pub fn to_json(&self, now: i64) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        if let Some(o) = v.as_object_mut() {
            o.insert(
                "status".into(),
                serde_json::json!({ "state": self.state(now).as_str() }),
            );
        }
        v
    }
}

/// The ids of the silences that mute an instance with these labels at
/// `now` (Alertmanager's `silencedBy`), in the order given.
pub fn silenced_by(
    silences: &[Silence],
    labels: &BTreeMap<String, String>,
    now: i64,
) -> Vec<String> {
    silences
        .iter()
        .filter(|s| s.active(now) && s.matches(labels))
        .map(|s| s.id.clone())
        .collect()
}

/// Alertmanager anchors a matcher's regex: the whole value must match
/// (`^(?:value)$`), so `api` does not match `api-2`. `limit` bounds the
/// compiled program and, separately, the lazy DFA's cache (past which the
/// regex crate falls back to a slower engine; it never grows more).
fn compile(value: &str, limit: usize) -> Result<Regex, String> {
    RegexBuilder::new(&format!("^(?:{value})$"))
        .size_limit(limit)
        .dfa_size_limit(limit)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(_) => format!(
                "the regex compiles to more than the {} KiB one regex of this silence may take; \
                 simplify it (Unicode classes like \\w are large: [A-Za-z0-9_] is small)",
                limit / 1024
            ),
            e => format!("not a regex: {}", one_line(&e.to_string())),
        })
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn truncate(s: &str, n: usize) -> &str {
    let mut end = n.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn valid_label_name(k: &str) -> bool {
    let mut c = k.chars();
    k.len() <= MAX_NAME
        && matches!(c.next(), Some(f) if f.is_ascii_alphabetic() || f == '_')
        && c.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The JSON form, for both directions.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    #[serde(default)]
    id: String,
    matchers: Vec<Matcher>,
    created_by: String,
    comment: String,
    #[serde(serialize_with = "time_out", deserialize_with = "time_in")]
    starts_at: i64,
    #[serde(serialize_with = "time_out", deserialize_with = "time_in")]
    ends_at: i64,
}

impl From<Silence> for Wire {
    fn from(s: Silence) -> Wire {
        Wire {
            id: s.id,
            matchers: s.matchers,
            created_by: s.created_by,
            comment: s.comment,
            starts_at: s.starts_at,
            ends_at: s.ends_at,
        }
    }
}

impl TryFrom<Wire> for Silence {
    type Error = SilenceError;
    fn try_from(w: Wire) -> Result<Silence, SilenceError> {
        Silence::build(w)
    }
}

/// RFC 3339 in UTC to the second (`2026-12-07T03:00:00Z`); a time chrono
/// cannot show (beyond year 262143) stays unix seconds rather than failing.
fn time_out<S: Serializer>(t: &i64, s: S) -> Result<S::Ok, S::Error> {
    match chrono::DateTime::from_timestamp(*t, 0) {
        Some(d) => s.serialize_str(&d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        None => s.serialize_i64(*t),
    }
}

/// A time as a client writes it: RFC 3339 (fractions of a second are
/// dropped) or unix seconds, as a number or a string of digits.
#[derive(Deserialize)]
#[serde(untagged)]
enum TimeIn {
    Int(i64),
    Float(f64),
    Text(String),
}

#[expect(
    clippy::cast_possible_truncation,
    reason = "a float time is finite and under 1e15 in magnitude (the guard), well inside i64"
)]
fn parse_time(t: TimeIn) -> Result<i64, String> {
    match t {
        TimeIn::Int(i) => Ok(i),
        TimeIn::Float(f) if f.is_finite() && f.abs() < 1e15 => Ok(f.floor() as i64),
        TimeIn::Float(f) => Err(format!("{f} is not a time")),
        TimeIn::Text(s) => {
            let s = s.trim();
            if let Ok(i) = s.parse::<i64>() {
                return Ok(i);
            }
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|d| d.timestamp())
                .map_err(|_| {
                    format!(
                        "{:?} is not an RFC 3339 time (2026-12-07T03:00:00Z) or unix seconds",
                        truncate(s, 64)
                    )
                })
        }
    }
}

fn time_in<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    parse_time(TimeIn::deserialize(d)?).map_err(serde::de::Error::custom)
}

fn time_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match Option::<TimeIn>::deserialize(d)? {
        None => Ok(None),
        Some(t) => parse_time(t).map(Some).map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_780_000_000;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn m(name: &str, op: &str, value: &str) -> Matcher {
        let (is_regex, is_equal) = match op {
            "=" => (false, true),
            "!=" => (false, false),
            "=~" => (true, true),
            "!~" => (true, false),
            _ => panic!("{op}"),
        };
        Matcher {
            name: name.into(),
            value: value.into(),
            is_regex,
            is_equal,
        }
    }

    fn spec(matchers: Vec<Matcher>) -> SilenceSpec {
        SilenceSpec {
            id: None,
            matchers,
            created_by: "ops".into(),
            comment: "maintenance".into(),
            starts_at: Some(NOW),
            ends_at: Some(NOW + 3600),
        }
    }

    fn field(s: SilenceSpec) -> String {
        check(s, NOW).unwrap_err().field
    }

    #[test]
    fn alertmanagers_json_reads_and_writes_back() {
        let body = r#"{
            "matchers": [
                {"name": "alertname", "value": "api_latency", "isRegex": false},
                {"name": "dc", "value": "east|west", "isRegex": true, "isEqual": true},
                {"name": "team", "value": "db", "isRegex": false, "isEqual": false}
            ],
            "createdBy": "alice",
            "comment": "deploying api v2",
            "startsAt": "2026-05-28T20:26:40.123Z",
            "endsAt": "2026-05-28T22:26:40+02:00"
        }"#;
        let spec: SilenceSpec = serde_json::from_str(body).unwrap();
        assert_eq!(spec.starts_at, Some(1_780_000_000));
        assert_eq!(
            spec.ends_at,
            Some(1_780_000_000),
            "+02:00 is two hours earlier in UTC"
        );
        let spec = SilenceSpec {
            ends_at: Some(NOW + 7200),
            ..spec
        };
        assert!(spec.matchers[0].is_equal, "isEqual defaults to true");
        let mut s = check(spec, NOW).unwrap();
        s.id = "abc".into();
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["startsAt"], "2026-05-28T20:26:40Z");
        assert_eq!(json["endsAt"], "2026-05-28T22:26:40Z");
        assert_eq!(json["createdBy"], "alice");
        assert_eq!(json["matchers"][1]["isRegex"], true);
        assert_eq!(json["matchers"][2]["isEqual"], false);
        // Read back (as from the store): equal, regexes compiled again.
        let back: Silence = serde_json::from_value(json).unwrap();
        assert_eq!(back, s);
        assert!(back.matches(&labels(&[("alertname", "api_latency"), ("dc", "west")])));
        assert!(!back.matches(&labels(&[("alertname", "api_latency"), ("dc", "north")])));
    }

    #[test]
    fn times_read_as_rfc3339_or_unix_seconds() {
        for (t, want) in [
            (r#""2026-05-28T20:26:40Z""#, Some(NOW)),
            (r#""2026-05-28T20:26:40.999999999Z""#, Some(NOW)),
            (r#""2026-05-28T21:26:40+01:00""#, Some(NOW)),
            ("1780000000", Some(NOW)),
            (r#""1780000000""#, Some(NOW)),
            ("1780000000.7", Some(NOW)),
            ("null", None),
        ] {
            let s: SilenceSpec = serde_json::from_str(&format!(r#"{{"startsAt": {t}}}"#)).unwrap();
            assert_eq!(s.starts_at, want, "{t}");
        }
        for bad in [r#""tomorrow""#, r#""2026-05-28 20:26""#, "1e300", "true"] {
            let e = serde_json::from_str::<SilenceSpec>(&format!(r#"{{"endsAt": {bad}}}"#));
            assert!(e.is_err(), "{bad}");
        }
        let e = serde_json::from_str::<SilenceSpec>(r#"{"endsAt": "soon"}"#).unwrap_err();
        assert!(e.to_string().contains("RFC 3339"), "{e}");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let e = serde_json::from_str::<SilenceSpec>(r#"{"createBy": "x"}"#).unwrap_err();
        assert!(e.to_string().contains("createBy"), "{e}");
        let e = serde_json::from_str::<SilenceSpec>(
            r#"{"matchers": [{"name": "a", "value": "b", "isregex": true}]}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("isregex"), "{e}");
    }

    #[test]
    fn the_four_operators() {
        let l = labels(&[
            ("alertname", "disk"),
            ("host", "db-12"),
            ("severity", "critical"),
        ]);
        let one = |mm: Matcher| check(spec(vec![m("alertname", "=", "disk"), mm]), NOW).unwrap();
        assert!(one(m("host", "=", "db-12")).matches(&l));
        assert!(!one(m("host", "=", "db-1")).matches(&l));
        assert!(one(m("host", "!=", "db-1")).matches(&l));
        assert!(!one(m("host", "!=", "db-12")).matches(&l));
        assert!(one(m("host", "=~", "db-[0-9]+")).matches(&l));
        assert!(!one(m("host", "!~", "db-[0-9]+")).matches(&l));
        assert!(one(m("host", "!~", "web-.*")).matches(&l));
        assert!(one(m("severity", "=~", "warning|critical")).matches(&l));
    }

    #[test]
    fn regexes_are_anchored_like_alertmanagers() {
        let s = check(spec(vec![m("host", "=~", "db|web")]), NOW).unwrap();
        assert!(s.matches(&labels(&[("host", "db")])));
        assert!(s.matches(&labels(&[("host", "web")])));
        // Unanchored, "db|web" would match both of these.
        assert!(!s.matches(&labels(&[("host", "db-2")])));
        assert!(!s.matches(&labels(&[("host", "oldweb")])));
    }

    #[test]
    fn all_matchers_must_hold() {
        let s = check(
            spec(vec![m("alertname", "=", "disk"), m("dc", "=", "east")]),
            NOW,
        )
        .unwrap();
        assert!(s.matches(&labels(&[("alertname", "disk"), ("dc", "east")])));
        assert!(!s.matches(&labels(&[("alertname", "disk"), ("dc", "west")])));
        assert!(!s.matches(&labels(&[("alertname", "cpu"), ("dc", "east")])));
    }

    #[test]
    fn a_missing_label_is_the_empty_string() {
        let l = labels(&[("alertname", "disk")]);
        let with = |mm: Matcher| check(spec(vec![m("alertname", "=", "disk"), mm]), NOW).unwrap();
        assert!(with(m("team", "!=", "web")).matches(&l));
        assert!(with(m("team", "=", "")).matches(&l));
        assert!(with(m("team", "=~", "web|")).matches(&l));
        assert!(!with(m("team", "=", "web")).matches(&l));
        assert!(!with(m("team", "=~", ".+")).matches(&l));
    }

    #[test]
    fn a_silence_that_would_mute_everything_is_refused() {
        for ms in [
            vec![m("alertname", "=~", ".*")],
            vec![m("team", "=", "")],
            vec![m("team", "!=", "web"), m("dc", "=~", "east|")],
        ] {
            let e = check(spec(ms.clone()), NOW).unwrap_err();
            assert_eq!(e.field, "matchers", "{ms:?}");
            assert!(e.message.contains("every alert"), "{e}");
        }
        // One matcher that names something is enough.
        assert!(check(
            spec(vec![m("team", "!=", "web"), m("alertname", "=", "x")]),
            NOW
        )
        .is_ok());
        assert_eq!(field(spec(vec![])), "matchers");
    }

    #[test]
    fn bad_matchers_are_named() {
        let mk = |mm: Matcher| spec(vec![m("alertname", "=", "x"), mm]);
        assert_eq!(field(mk(m("1abc", "=", "x"))), "matchers[1].name");
        assert_eq!(field(mk(m("a-b", "=", "x"))), "matchers[1].name");
        assert_eq!(field(mk(m("", "=", "x"))), "matchers[1].name");
        assert_eq!(
            field(mk(m(&"a".repeat(MAX_NAME + 1), "=", "x"))),
            "matchers[1].name"
        );
        assert!(check(mk(m(&"a".repeat(MAX_NAME), "=", "x")), NOW).is_ok());
        assert_eq!(field(mk(m("h", "=~", "db(["))), "matchers[1].value");
        let e = check(mk(m("h", "=~", "(a")), NOW).unwrap_err();
        assert!(e.message.starts_with("not a regex"), "{e}");
        assert!(!e.message.contains('\n'), "{e}");
        assert_eq!(
            field(mk(m("h", "=", &"v".repeat(MAX_VALUE + 1)))),
            "matchers[1].value"
        );
        assert!(check(mk(m("h", "=", &"v".repeat(MAX_VALUE))), NOW).is_ok());
        let many: Vec<Matcher> = (0..=MAX_MATCHERS)
            .map(|i| m(&format!("l{i}"), "=", "x"))
            .collect();
        assert_eq!(field(spec(many)), "matchers");
        let most: Vec<Matcher> = (0..MAX_MATCHERS)
            .map(|i| m(&format!("l{i}"), "=", "x"))
            .collect();
        assert!(check(spec(most), NOW).is_ok());
    }

    #[test]
    fn a_hostile_regex_is_refused_quickly_and_small() {
        // Nested counted repetition: 10^6 copies of `a`, 32 MB compiled.
        let t = std::time::Instant::now();
        let e = check(spec(vec![m("h", "=~", "((a{100}){100}){100}")]), NOW).unwrap_err();
        assert_eq!(e.field, "matchers[0].value");
        assert!(e.message.contains("1024 KiB"), "{e}");
        assert!(
            t.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            t.elapsed()
        );
        // Realistic patterns compile, one Unicode-heavy one (400 KB) too.
        assert!(check(
            spec(vec![m(
                "host",
                "=~",
                "(api|web|db)-[0-9]{1,4}\\.(east|west)"
            )]),
            NOW
        )
        .is_ok());
        assert!(check(spec(vec![m("host", "=~", "\\w{1,8}")]), NOW).is_ok());
        // But 64 of them share the silence's budget: 64 KiB each.
        let many: Vec<Matcher> = (0..64)
            .map(|i| m(&format!("l{i}"), "=~", "\\w{1,8}"))
            .collect();
        let e = check(spec(many), NOW).unwrap_err();
        assert_eq!(e.field, "matchers[0].value");
        assert!(e.message.contains("64 KiB"), "{e}");
        let many: Vec<Matcher> = (0..64)
            .map(|i| m(&format!("l{i}"), "=~", "[A-Za-z0-9_]{1,8}"))
            .collect();
        assert!(check(spec(many), NOW).is_ok());
    }

    #[test]
    fn case_insensitive_matching_works() {
        // Alertmanager users write (?i); the regex crate needs its
        // unicode-case feature for it (on in Cargo.toml).
        let s = check(spec(vec![m("alertname", "=~", "(?i)disk.*")]), NOW).unwrap();
        assert!(s.matches(&labels(&[("alertname", "DISK_full")])));
        assert!(!s.matches(&labels(&[("alertname", "cpu")])));
    }

    #[test]
    fn people_and_reasons_are_required_and_bounded() {
        let mut s = spec(vec![m("alertname", "=", "x")]);
        s.created_by = " ".into();
        assert_eq!(field(s.clone()), "createdBy");
        s.created_by = "a".repeat(MAX_CREATED_BY + 1);
        assert_eq!(field(s.clone()), "createdBy");
        s.created_by = "ops".into();
        s.comment = String::new();
        assert_eq!(field(s.clone()), "comment");
        s.comment = "c".repeat(MAX_COMMENT + 1);
        assert_eq!(field(s.clone()), "comment");
        s.comment = "c".repeat(MAX_COMMENT);
        assert!(check(s.clone(), NOW).is_ok());
        s.id = Some("a/b".into());
        assert_eq!(field(s.clone()), "id");
        s.id = Some("x".repeat(MAX_ID + 1));
        assert_eq!(field(s.clone()), "id");
        s.id = Some("3f1c-22_a".into());
        assert_eq!(check(s, NOW).unwrap().id, "3f1c-22_a");
    }

    #[test]
    fn time_ranges_are_checked() {
        let base = spec(vec![m("alertname", "=", "x")]);
        let with = |start: Option<i64>, end: Option<i64>| SilenceSpec {
            starts_at: start,
            ends_at: end,
            ..base.clone()
        };
        assert_eq!(field(with(Some(NOW), None)), "endsAt");
        assert_eq!(field(with(Some(NOW), Some(NOW))), "endsAt");
        assert_eq!(field(with(Some(NOW + 100), Some(NOW + 50))), "endsAt");
        assert_eq!(field(with(Some(NOW - 100), Some(NOW - 1))), "endsAt");
        assert_eq!(field(with(Some(NOW), Some(NOW + MAX_LENGTH + 1))), "endsAt");
        assert_eq!(
            field(with(
                Some(NOW + MAX_START_AHEAD + 1),
                Some(NOW + MAX_START_AHEAD + 60)
            )),
            "startsAt"
        );
        assert!(check(with(Some(NOW), Some(NOW + MAX_LENGTH)), NOW).is_ok());
        // A start in the past (or none) becomes now.
        assert_eq!(
            check(with(Some(NOW - 500), Some(NOW + 60)), NOW)
                .unwrap()
                .starts_at,
            NOW
        );
        assert_eq!(
            check(with(None, Some(NOW + 60)), NOW).unwrap().starts_at,
            NOW
        );
        // Huge numbers do not overflow.
        assert_eq!(field(with(Some(i64::MAX), Some(i64::MAX))), "startsAt");
        assert_eq!(field(with(Some(i64::MIN), Some(i64::MAX))), "endsAt");
    }

    #[test]
    fn active_pending_expired_and_expire() {
        let mut s = check(
            SilenceSpec {
                starts_at: Some(NOW + 100),
                ends_at: Some(NOW + 200),
                ..spec(vec![m("alertname", "=", "x")])
            },
            NOW,
        )
        .unwrap();
        assert_eq!(s.state(NOW), SilenceState::Pending);
        assert!(!s.active(NOW + 99));
        assert!(s.active(NOW + 100));
        assert!(s.active(NOW + 199));
        assert!(!s.active(NOW + 200), "ends_at is excluded");
        assert_eq!(s.state(NOW + 200), SilenceState::Expired);
        assert_eq!(s.to_json(NOW + 150)["status"]["state"], "active");

        let mut p = s.clone();
        p.expire(NOW).unwrap();
        assert_eq!((p.starts_at, p.ends_at), (NOW, NOW));
        assert!(!p.active(NOW));
        s.expire(NOW + 150).unwrap();
        assert_eq!(s.ends_at, NOW + 150);
        assert_eq!(s.state(NOW + 150), SilenceState::Expired);
        assert_eq!(s.expire(NOW + 160).unwrap_err().field, "id");
    }

    #[test]
    fn silenced_by_lists_active_matching_ids() {
        let mk = |id: &str, value: &str, start: i64| {
            let mut s = check(
                SilenceSpec {
                    starts_at: Some(start),
                    ends_at: Some(NOW + 1000),
                    ..spec(vec![m("alertname", "=", value)])
                },
                NOW,
            )
            .unwrap();
            s.id = id.into();
            s
        };
        let all = vec![
            mk("a", "disk", NOW),
            mk("b", "cpu", NOW),
            mk("c", "disk", NOW + 500),
            mk("d", "disk", NOW),
        ];
        let l = labels(&[("alertname", "disk")]);
        assert_eq!(silenced_by(&all, &l, NOW + 10), vec!["a", "d"]);
        assert_eq!(silenced_by(&all, &l, NOW + 600), vec!["a", "c", "d"]);
        assert!(silenced_by(&all, &l, NOW + 1000).is_empty());
    }

    #[test]
    fn a_stored_silence_with_a_bad_regex_does_not_load() {
        let json = r#"{"id":"x","matchers":[{"name":"a","value":"(","isRegex":true}],
            "createdBy":"o","comment":"c","startsAt":0,"endsAt":10}"#;
        let e = serde_json::from_str::<Silence>(json).unwrap_err();
        assert!(e.to_string().contains("not a regex"), "{e}");
        // Expired silences load: time is only checked when posted.
        let json = r#"{"id":"x","matchers":[{"name":"a","value":"b","isRegex":false}],
            "createdBy":"o","comment":"c","startsAt":0,"endsAt":10}"#;
        let s: Silence = serde_json::from_str(json).unwrap();
        assert_eq!(s.state(NOW), SilenceState::Expired);
    }

    #[test]
    fn matchers_print_like_alertmanager() {
        assert_eq!(m("a", "=~", "x|y").to_string(), "a=~\"x|y\"");
        assert_eq!(m("a", "!=", "x").to_string(), "a!=\"x\"");
    }
}
