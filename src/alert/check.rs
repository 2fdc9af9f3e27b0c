//! `/check` results for systems that poll (Nagios, Icinga, Sensu, a load
//! balancer's health check): the overall state of a rule's series, the
//! Nagios plugin line with performance data, the exit code, and a JSON
//! shape. Pure: the caller evaluates the series and serves the text.
//!
//! States map to Nagios as: critical → CRITICAL (2), warning → WARNING
//! (1), error and nodata → UNKNOWN (3: the check could not say whether the
//! service is fine; Nagios' own meaning of UNKNOWN), pending and ok → OK
//! (0: a breach still waiting out `for` has not fired, and a poller that
//! paged on it would undo the rule's `for`). The overall state is the
//! worst series: critical > warning > error > nodata > pending > ok.

use serde::Serialize;

use super::forecast::fmt_num;
use super::rule::{Bound, Direction, Kind, Rule, Threshold};
use super::state::{thresholds_text, State};

/// Series with performance data in one plugin line; the rest are counted
/// in the text.
pub const MAX_PERFDATA: usize = 100;
/// The whole plugin line, in bytes. Nagios 3's plugin API documentation:
/// "Nagios will only read the first 4 KB of data that a plugin returns";
/// a line cut there loses the perfdata's tail mid-label.
pub const MAX_OUTPUT: usize = 4096;
/// Series named per state in the text (the perfdata has all of them).
const NAMED_PER_STATE: usize = 5;
/// A series name in the text, in bytes (perfdata labels are not cut).
const MAX_TEXT_NAME: usize = 120;
/// A series' reason in the text, in bytes.
const MAX_TEXT_REASON: usize = 200;
/// The text before the perfdata, in bytes: a quarter of the line, so the
/// perfdata always has room.
const MAX_TEXT: usize = MAX_OUTPUT / 4;

/// One series as evaluated: what the caller hands in and what the JSON
/// lists.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesCheck {
    pub name: String,
    pub value: Option<f64>,
    pub state: State,
    pub reason: String,
}

/// The rule's thresholds as the JSON shows them: as written, and as text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Thresholds {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reducer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warn: Option<Bound>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crit: Option<Bound>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warn_recovery: Option<Bound>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crit_recovery: Option<Bound>,
    /// `warn above 700, crit above 800 (recovers below 700)`.
    pub text: String,
}

/// A check's result: `{state, status, exit_code, series, thresholds,
/// reason}` in JSON, the plugin line from [`CheckResult::nagios`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckResult {
    pub state: State,
    /// The Nagios status word: OK, WARNING, CRITICAL, UNKNOWN.
    pub status: &'static str,
    pub exit_code: u8,
    /// Worst first.
    pub series: Vec<SeriesCheck>,
    pub thresholds: Thresholds,
    /// The plugin line's text without the status word and perfdata.
    pub reason: String,
    /// `; perfdata for the worst 100 of 250 series` when some were left
    /// out of the plugin line (the JSON lists them all).
    #[serde(skip)]
    perf_note: String,
    #[serde(skip)]
    threshold: Option<Threshold>,
    #[serde(skip)]
    perfdata: String,
}

/// How bad a state is, for "worst of all series".
pub fn rank(s: State) -> u8 {
    match s {
        State::Ok => 0,
        State::Pending => 1,
        State::NoData => 2,
        State::Error => 3,
        State::Warning => 4,
        State::Critical => 5,
    }
}

/// The Nagios status word and exit code of a state (see the module doc).
pub fn nagios_status(s: State) -> (&'static str, u8) {
    match s {
        State::Ok | State::Pending => ("OK", 0),
        State::Warning => ("WARNING", 1),
        State::Critical => ("CRITICAL", 2),
        State::NoData | State::Error => ("UNKNOWN", 3),
    }
}

/// Builds the result of checking `rule` on these series. No series at all
/// is nodata (UNKNOWN): a check that saw nothing cannot say OK.
pub fn evaluate(rule: &Rule, mut series: Vec<SeriesCheck>) -> CheckResult {
    let threshold = match &rule.kind {
        Kind::Threshold(t) => Some(t.clone()),
        Kind::Forecast(_) => None,
    };
    series.sort_by(|a, b| {
        rank(b.state)
            .cmp(&rank(a.state))
            .then_with(|| {
                let bad = |s: &SeriesCheck| badness(threshold.as_ref(), s.value);
                bad(b).total_cmp(&bad(a))
            })
            .then_with(|| a.name.cmp(&b.name))
    });
    let state = series.first().map_or(State::NoData, |s| s.state);
    let (status, exit_code) = nagios_status(state);
    let perf: Vec<String> = series
        .iter()
        .map(|s| perf_entry(threshold.as_ref(), s))
        .collect();
    let mut r = CheckResult {
        state,
        status,
        exit_code,
        thresholds: thresholds(rule),
        reason: String::new(),
        perf_note: String::new(),
        threshold,
        perfdata: String::new(),
        series,
    };
    // The text first without the perfdata note, then as much perfdata as
    // fits beside it; the note (if any) is short and was budgeted for.
    let text = cut(&r.summary(), MAX_TEXT);
    const NOTE_ROOM: usize = 64;
    let room = MAX_OUTPUT.saturating_sub(status.len() + 3 + text.len() + 3 + NOTE_ROOM);
    let mut used = 0;
    let mut kept = 0;
    for p in &perf {
        if kept == MAX_PERFDATA || used + p.len() + 1 > room {
            break;
        }
        if kept > 0 {
            r.perfdata.push(' ');
        }
        r.perfdata.push_str(p);
        used += p.len() + 1;
        kept += 1;
    }
    if kept < perf.len() {
        r.perf_note = format!("; perfdata for the worst {kept} of {} series", perf.len());
    }
    r.reason = text;
    r
}

impl CheckResult {
    /// The plugin line: `CRITICAL - api.p99 = 812 (crit > 800) |
    /// 'api.p99'=812;700;800`. One line, at most [`MAX_OUTPUT`] bytes.
    pub fn nagios(&self) -> String {
        let mut line = format!("{} - {}{}", self.status, self.reason, self.perf_note);
        if !self.perfdata.is_empty() {
            line.push_str(" | ");
            line.push_str(&self.perfdata);
        }
        line
    }

    /// The HTTP status a poller reads: 200 for OK, 503 otherwise (a load
    /// balancer's health check takes a non-2xx as down).
    pub fn http_status(&self) -> u16 {
        if self.exit_code == 0 {
            200
        } else {
            503
        }
    }

    /// The text after the status word, before any perfdata note.
    fn summary(&self) -> String {
        let total = self.series.len();
        if total == 0 {
            return "the target returned no series".into();
        }
        if total == 1 {
            return self.item(&self.series[0]);
        }
        let mut parts = Vec::new();
        let mut i = 0;
        while i < total {
            let st = self.series[i].state;
            let n = self.series[i..]
                .iter()
                .take_while(|s| s.state == st)
                .count();
            let group = &self.series[i..i + n];
            i += n;
            if st == State::Ok {
                if parts.is_empty() {
                    parts.push(format!("{total} series ok; worst {}", self.item(&group[0])));
                }
                continue;
            }
            let cond = self
                .level_cond(st)
                .map(|c| format!(" ({c})"))
                .unwrap_or_default();
            let mut named: Vec<String> = group
                .iter()
                .take(NAMED_PER_STATE)
                .map(|s| self.item_in_group(s))
                .collect();
            if n > NAMED_PER_STATE {
                named.push(format!("and {} more", n - NAMED_PER_STATE));
            }
            parts.push(format!(
                "{n} of {total} series {}{cond}: {}",
                st.as_str(),
                named.join(", ")
            ));
        }
        parts.join("; ")
    }

    /// One series alone: `api.p99 = 812 (crit > 800)`.
    fn item(&self, s: &SeriesCheck) -> String {
        let name = text_name(&s.name);
        match (s.value, s.state) {
            (Some(v), State::Warning | State::Critical) => {
                match self
                    .level_cond(s.state)
                    .filter(|_| self.breaches(s.state, v))
                {
                    Some(c) => format!("{name} = {} ({c})", fmt_num(v)),
                    None => format!("{name} = {} ({})", fmt_num(v), text_reason(&s.reason)),
                }
            }
            (Some(v), State::Ok) => format!("{name} = {}", fmt_num(v)),
            (Some(v), _) => format!("{name} = {} ({})", fmt_num(v), text_reason(&s.reason)),
            (None, _) => format!("{name}: {}", text_reason(&s.reason)),
        }
    }

    /// One series in a group whose header already shows the threshold:
    /// `a = 812`, or why it is in the group without breaching it.
    fn item_in_group(&self, s: &SeriesCheck) -> String {
        let name = text_name(&s.name);
        match (s.value, s.state) {
            (Some(v), State::Warning | State::Critical) if self.breaches(s.state, v) => {
                format!("{name} = {}", fmt_num(v))
            }
            (Some(v), State::Pending) => format!("{name} = {}", fmt_num(v)),
            _ => self.item(s),
        }
    }

    /// `crit > 800`, `warn < 10`, `crit outside [10, 20]` for a firing
    /// state of a threshold rule.
    fn level_cond(&self, st: State) -> Option<String> {
        let t = self.threshold.as_ref()?;
        let (word, level) = match st {
            State::Critical => ("crit", t.crit?),
            State::Warning => ("warn", t.warn?),
            _ => return None,
        };
        let (lo, hi) = level.fire;
        Some(match t.direction {
            Direction::Above => format!("{word} > {lo}"),
            Direction::Below => format!("{word} < {hi}"),
            Direction::Outside => format!("{word} outside [{lo}, {hi}]"),
            Direction::Inside => format!("{word} inside [{lo}, {hi}]"),
        })
    }

    /// Whether `v` breaches the firing threshold of state `st` (false when
    /// the series is held by a recovery threshold or keep_firing_for).
    fn breaches(&self, st: State, v: f64) -> bool {
        let Some(t) = &self.threshold else {
            return false;
        };
        let level = match st {
            State::Critical => t.crit,
            State::Warning => t.warn,
            _ => None,
        };
        level.is_some_and(|l| {
            let (lo, hi) = l.fire;
            match t.direction {
                Direction::Above => v > lo,
                Direction::Below => v < hi,
                Direction::Outside => v < lo || v > hi,
                Direction::Inside => v >= lo && v <= hi,
            }
        })
    }
}

/// How far past the worst threshold a value is, for ordering series of the
/// same state (higher is worse; no value sorts last).
fn badness(t: Option<&Threshold>, v: Option<f64>) -> f64 {
    let Some(v) = v.filter(|v| !v.is_nan()) else {
        return f64::NEG_INFINITY;
    };
    let Some(t) = t else { return 0.0 };
    let Some(l) = t.crit.or(t.warn) else {
        return 0.0;
    };
    let (lo, hi) = l.fire;
    match t.direction {
        Direction::Above => v,
        Direction::Below => -v,
        Direction::Outside => (lo - v).max(v - hi),
        Direction::Inside => (v - lo).min(hi - v),
    }
}

fn thresholds(rule: &Rule) -> Thresholds {
    let text = thresholds_text(rule);
    match &rule.kind {
        Kind::Threshold(t) => Thresholds {
            direction: Some(t.direction),
            reducer: Some(t.reducer.name()),
            warn: rule.spec.warn,
            crit: rule.spec.crit,
            warn_recovery: rule.spec.warn_recovery,
            crit_recovery: rule.spec.crit_recovery,
            text,
        },
        Kind::Forecast(f) => Thresholds {
            direction: Some(f.direction),
            reducer: None,
            warn: None,
            crit: None,
            warn_recovery: None,
            crit_recovery: None,
            text,
        },
    }
}

/// One perfdata entry: `'label'=value;warn;crit` (Nagios plugin
/// guidelines). A forecast rule's line value is not what its threshold is
/// compared with, so it gets no warn/crit.
fn perf_entry(t: Option<&Threshold>, s: &SeriesCheck) -> String {
    let value = match s.value {
        Some(v) if v.is_finite() => format!("{v}"),
        // "U": the value could not be determined.
        _ => "U".into(),
    };
    let range = |l: Option<super::rule::Level>| match (t, l) {
        (Some(t), Some(l)) => nagios_range(t.direction, l.fire),
        _ => String::new(),
    };
    let (warn, crit) = match t {
        Some(th) => (range(th.warn), range(th.crit)),
        None => (String::new(), String::new()),
    };
    let entry = format!("{}={value};{warn};{crit}", perf_label(&s.name));
    entry.trim_end_matches(';').to_string()
}

/// A threshold in Nagios range syntax. Nagios alerts outside `lo:hi` and
/// inside `@lo:hi` (ends included in the range), `lo:` means below lo,
/// `~:hi` above hi. `above 800` is written `800` as check_graphite and
/// the issue's example do: Nagios reads that as `0:800`, which differs
/// from `~:800` only for negative values; a negative threshold (where
/// `0:-5` would be an inverted range) is written `~:-5`.
fn nagios_range(d: Direction, (lo, hi): (f64, f64)) -> String {
    match d {
        Direction::Above if lo >= 0.0 => format!("{lo}"),
        Direction::Above => format!("~:{lo}"),
        Direction::Below => format!("{hi}:"),
        Direction::Outside => format!("{lo}:{hi}"),
        Direction::Inside => format!("@{lo}:{hi}"),
    }
}

/// A perfdata label: single-quoted, a quote doubled (the guidelines'
/// escape), `=` (which ends a label) as `_`, and line breaks and `|` (which
/// would start a new output line or section) as spaces.
fn perf_label(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('\'');
    for c in name.chars() {
        match c {
            '\'' => out.push_str("''"),
            '=' => out.push('_'),
            '|' => out.push(' '),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Text for the part before `|`: no `|` (it would start the perfdata), no
/// line breaks (the first line is the status).
fn text_clean(s: &str) -> String {
    s.chars()
        .map(|c| if c == '|' || c.is_control() { ' ' } else { c })
        .collect()
}

fn text_name(name: &str) -> String {
    cut(&text_clean(name), MAX_TEXT_NAME)
}

fn text_reason(reason: &str) -> String {
    cut(&text_clean(reason), MAX_TEXT_REASON)
}

/// At most `max` bytes, cut at a character boundary and marked with `…`.
fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max - '…'.len_utf8();
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::rule::parse_file;

    fn rule(extra: &str) -> Rule {
        parse_file(&format!(
            "[[rule]]\nname = \"r\"\ntarget = \"a\"\nreducer = \"p99\"\n{extra}\n"
        ))
        .unwrap()
        .remove(0)
    }

    fn above() -> Rule {
        rule("direction = \"above\"\nwarn = 700\ncrit = 800")
    }

    fn s(name: &str, value: Option<f64>, state: State, reason: &str) -> SeriesCheck {
        SeriesCheck {
            name: name.into(),
            value,
            state,
            reason: reason.into(),
        }
    }

    #[test]
    fn the_issues_example() {
        let r = evaluate(
            &above(),
            vec![s(
                "api.p99",
                Some(812.0),
                State::Critical,
                "critical: p99 812 above 800",
            )],
        );
        assert_eq!(
            r.nagios(),
            "CRITICAL - api.p99 = 812 (crit > 800) | 'api.p99'=812;700;800"
        );
        assert_eq!((r.exit_code, r.http_status()), (2, 503));
    }

    #[test]
    fn states_map_to_nagios_codes() {
        let one = |st: State, v: Option<f64>| evaluate(&above(), vec![s("a", v, st, "why")]);
        for (st, v, word, code, http) in [
            (State::Ok, Some(1.0), "OK", 0, 200),
            (State::Pending, Some(750.0), "OK", 0, 200),
            (State::Warning, Some(750.0), "WARNING", 1, 503),
            (State::Critical, Some(900.0), "CRITICAL", 2, 503),
            (State::NoData, None, "UNKNOWN", 3, 503),
            (State::Error, None, "UNKNOWN", 3, 503),
        ] {
            let r = one(st, v);
            assert_eq!(
                (r.status, r.exit_code, r.http_status()),
                (word, code, http),
                "{st:?}"
            );
            assert!(
                r.nagios().starts_with(&format!("{word} - ")),
                "{}",
                r.nagios()
            );
        }
        let r = evaluate(&above(), vec![]);
        assert_eq!((r.state, r.exit_code), (State::NoData, 3));
        assert_eq!(r.nagios(), "UNKNOWN - the target returned no series");
    }

    #[test]
    fn the_worst_series_decides_and_comes_first() {
        let r = evaluate(
            &above(),
            vec![
                s("ok1", Some(10.0), State::Ok, ""),
                s("nd", None, State::NoData, "no data in the last 5m"),
                s("err", None, State::Error, "evaluation failed: boom"),
                s("w", Some(750.0), State::Warning, ""),
                s("pend", Some(900.0), State::Pending, "pending"),
            ],
        );
        assert_eq!(r.state, State::Warning);
        let order: Vec<&str> = r.series.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(order, ["w", "err", "nd", "pend", "ok1"]);
        assert_eq!(
            r.reason,
            "1 of 5 series warning (warn > 700): w = 750; \
             1 of 5 series error: err: evaluation failed: boom; \
             1 of 5 series nodata: nd: no data in the last 5m; \
             1 of 5 series pending: pend = 900"
        );
        // Error outranks nodata; both are UNKNOWN.
        let r = evaluate(
            &above(),
            vec![
                s("nd", None, State::NoData, "x"),
                s("err", None, State::Error, "y"),
            ],
        );
        assert_eq!((r.state, r.status), (State::Error, "UNKNOWN"));
    }

    #[test]
    fn several_series_are_summarised_worst_first() {
        let r = evaluate(
            &above(),
            vec![
                s("a", Some(812.0), State::Critical, ""),
                s("b", Some(900.0), State::Critical, ""),
                s("c", Some(100.0), State::Ok, ""),
                s("d", Some(120.0), State::Ok, ""),
                s("e", Some(130.0), State::Ok, ""),
            ],
        );
        assert_eq!(
            r.nagios(),
            "CRITICAL - 2 of 5 series critical (crit > 800): b = 900, a = 812 \
             | 'b'=900;700;800 'a'=812;700;800 'e'=130;700;800 'd'=120;700;800 'c'=100;700;800"
        );
        let r = evaluate(
            &above(),
            vec![
                s("a", Some(1.5), State::Ok, ""),
                s("b", Some(2.5), State::Ok, ""),
            ],
        );
        assert_eq!(r.reason, "2 series ok; worst b = 2.5");
    }

    #[test]
    fn long_groups_name_five_and_count_the_rest() {
        let many: Vec<SeriesCheck> = (0..12)
            .map(|i| {
                s(
                    &format!("s{i:02}"),
                    Some(801.0 + f64::from(i)),
                    State::Critical,
                    "",
                )
            })
            .collect();
        let r = evaluate(&above(), many);
        assert_eq!(
            r.reason,
            "12 of 12 series critical (crit > 800): s11 = 812, s10 = 811, s09 = 810, s08 = 809, s07 = 808, and 7 more"
        );
    }

    #[test]
    fn low_thresholds_and_ranges_use_nagios_range_syntax() {
        let below = rule("direction = \"below\"\nwarn = 50\ncrit = 10");
        let r = evaluate(&below, vec![s("rate", Some(5.0), State::Critical, "")]);
        assert_eq!(
            r.nagios(),
            "CRITICAL - rate = 5 (crit < 10) | 'rate'=5;50:;10:"
        );
        let out = rule("direction = \"outside\"\nwarn = [20, 80]\ncrit = [10, 90]");
        let r = evaluate(&out, vec![s("t", Some(95.5), State::Critical, "")]);
        assert_eq!(
            r.nagios(),
            "CRITICAL - t = 95.5 (crit outside [10, 90]) | 't'=95.5;20:80;10:90"
        );
        let ins = rule("direction = \"inside\"\ncrit = [-1, 1]");
        let r = evaluate(&ins, vec![s("z", Some(0.25), State::Critical, "")]);
        assert_eq!(
            r.nagios(),
            "CRITICAL - z = 0.25 (crit inside [-1, 1]) | 'z'=0.25;;@-1:1"
        );
        let neg = rule("direction = \"above\"\ncrit = -5");
        let r = evaluate(&neg, vec![s("n", Some(-1.0), State::Critical, "")]);
        assert!(r.nagios().ends_with("| 'n'=-1;;~:-5"), "{}", r.nagios());
        // Only crit: the empty warn field stays, the trailing one goes.
        let r = evaluate(
            &rule("direction = \"above\"\nwarn = 7"),
            vec![s("x", Some(1.0), State::Ok, "")],
        );
        assert_eq!(r.nagios(), "OK - x = 1 | 'x'=1;7");
    }

    #[test]
    fn nagios_ranges_agree_with_the_state_machines_breach() {
        // Nagios: outside lo:hi alerts when v < lo or v > hi; @lo:hi when
        // lo <= v <= hi; lo: when v < lo; ~:hi when v > hi. Checked against
        // what each direction fires on at and around the edges.
        fn nagios_alerts(range: &str, v: f64) -> bool {
            let (inside, r) = match range.strip_prefix('@') {
                Some(r) => (true, r),
                None => (false, range),
            };
            let (lo, hi) = match r.split_once(':') {
                Some((l, h)) => (
                    if l == "~" {
                        f64::NEG_INFINITY
                    } else {
                        l.parse().unwrap()
                    },
                    if h.is_empty() {
                        f64::INFINITY
                    } else {
                        h.parse().unwrap()
                    },
                ),
                None => (0.0, r.parse().unwrap()),
            };
            let within = v >= lo && v <= hi;
            if inside {
                within
            } else {
                !within
            }
        }
        for (d, fire) in [
            (Direction::Above, (-5.0, f64::INFINITY)),
            (Direction::Below, (f64::NEG_INFINITY, 10.0)),
            (Direction::Outside, (10.0, 20.0)),
            (Direction::Inside, (10.0, 20.0)),
        ] {
            let range = nagios_range(d, fire);
            for v in [-6.0, -5.0, -4.0, 9.0, 10.0, 15.0, 20.0, 21.0] {
                let ours = match d {
                    Direction::Above => v > fire.0,
                    Direction::Below => v < fire.1,
                    Direction::Outside => v < fire.0 || v > fire.1,
                    Direction::Inside => v >= fire.0 && v <= fire.1,
                };
                assert_eq!(nagios_alerts(&range, v), ours, "{d:?} {range} {v}");
            }
        }
    }

    #[test]
    fn labels_are_quoted_and_escaped() {
        let r = evaluate(
            &above(),
            vec![s("it's;dc=east|x\ny", Some(1.0), State::Ok, "")],
        );
        assert_eq!(
            r.nagios(),
            "OK - it's;dc=east x y = 1 | 'it''s;dc_east x y'=1;700;800"
        );
        assert_eq!(r.nagios().lines().count(), 1);
        assert_eq!(r.nagios().matches('|').count(), 1);
    }

    #[test]
    fn unknown_values_are_u() {
        let r = evaluate(
            &above(),
            vec![
                s("a", None, State::NoData, "no data in the last 5m"),
                s("b", Some(f64::NAN), State::Error, "evaluation failed: x"),
            ],
        );
        assert!(
            r.nagios().ends_with("| 'b'=U;700;800 'a'=U;700;800"),
            "{}",
            r.nagios()
        );
    }

    #[test]
    fn held_and_kept_series_say_why_instead_of_a_threshold_they_do_not_breach() {
        let r = rule("direction = \"above\"\ncrit = 800\ncrit_recovery = 700");
        let res = evaluate(
            &r,
            vec![s(
                "a",
                Some(780.0),
                State::Critical,
                "held critical: p99 780 not below recovery 700",
            )],
        );
        assert_eq!(
            res.reason,
            "a = 780 (held critical: p99 780 not below recovery 700)"
        );
        let res = evaluate(
            &r,
            vec![
                s(
                    "a",
                    Some(780.0),
                    State::Critical,
                    "held critical: p99 780 not below recovery 700",
                ),
                s("b", Some(900.0), State::Critical, ""),
            ],
        );
        assert_eq!(
            res.reason,
            "2 of 2 series critical (crit > 800): b = 900, a = 780 (held critical: p99 780 not below recovery 700)"
        );
        // A no-data policy of critical: no value, the reason says so.
        let res = evaluate(
            &r,
            vec![s(
                "q",
                None,
                State::Critical,
                "critical: no data in the last 5m",
            )],
        );
        assert_eq!(res.reason, "q: critical: no data in the last 5m");
    }

    #[test]
    fn output_is_bounded() {
        let many: Vec<SeriesCheck> = (0..250)
            .map(|i| {
                s(
                    &format!("host{i:03}.cpu"),
                    Some(f64::from(i)),
                    State::Ok,
                    "",
                )
            })
            .collect();
        let r = evaluate(&above(), many);
        let line = r.nagios();
        assert!(line.len() <= MAX_OUTPUT, "{}", line.len());
        let (text, perf) = line.split_once(" | ").unwrap();
        assert_eq!(perf.split(' ').count(), MAX_PERFDATA);
        assert!(
            text.ends_with("; perfdata for the worst 100 of 250 series"),
            "{text}"
        );
        // The worst (highest) values are the ones kept.
        assert!(perf.starts_with("'host249.cpu'=249;"), "{perf}");

        // Long names: the byte bound cuts before the count does.
        let long: Vec<SeriesCheck> = (0..100)
            .map(|i| {
                s(
                    &format!("{}{i:03}", "x".repeat(200)),
                    Some(1.0),
                    State::Ok,
                    "",
                )
            })
            .collect();
        let r = evaluate(&above(), long);
        let line = r.nagios();
        assert!(line.len() <= MAX_OUTPUT, "{}", line.len());
        let kept = line.split_once(" | ").unwrap().1.split(' ').count();
        assert!((15..100).contains(&kept), "{kept}");
        assert!(
            line.contains(&format!("perfdata for the worst {kept} of 100 series | ")),
            "{line}"
        );
        assert!(
            !r.reason.contains("perfdata"),
            "the JSON lists every series"
        );
        // Names in the text are cut; the JSON keeps them whole.
        assert!(r.reason.contains('…'));
        assert_eq!(r.series[0].name.len(), 203);
    }

    #[test]
    fn long_reasons_do_not_crowd_out_the_perfdata() {
        let many: Vec<SeriesCheck> = (0..30)
            .map(|i| {
                let st = [
                    State::Critical,
                    State::Warning,
                    State::Error,
                    State::NoData,
                    State::Pending,
                ][i % 5];
                s(
                    &format!("{}{i}", "n".repeat(300)),
                    Some(900.0),
                    st,
                    &"why ".repeat(500),
                )
            })
            .collect();
        let r = evaluate(&above(), many);
        let line = r.nagios();
        assert!(line.len() <= MAX_OUTPUT, "{}", line.len());
        assert!(r.reason.len() <= MAX_TEXT + 64, "{}", r.reason.len());
        let perf = line.split_once(" | ").unwrap().1;
        assert!(perf.matches("=900;700;800").count() >= 5, "{perf}");
        assert_eq!(cut("abcdef", 6), "abcdef");
        assert_eq!(cut("abcdef", 5), "ab…");
        assert_eq!(cut("ééé", 5), "é…");
    }

    #[test]
    fn json_shape() {
        let r = evaluate(
            &rule("direction = \"outside\"\ncrit = [10, 90]\ncrit_recovery = [15, 85]"),
            vec![s(
                "t",
                Some(95.0),
                State::Critical,
                "critical: p99 95 outside [10, 90]",
            )],
        );
        let j = serde_json::to_value(&r).unwrap();
        assert_eq!(j["state"], "critical");
        assert_eq!(j["status"], "CRITICAL");
        assert_eq!(j["exit_code"], 2);
        assert_eq!(j["series"][0]["name"], "t");
        assert_eq!(j["series"][0]["value"], 95.0);
        assert_eq!(j["series"][0]["state"], "critical");
        assert_eq!(j["thresholds"]["direction"], "outside");
        assert_eq!(j["thresholds"]["reducer"], "p99");
        assert_eq!(j["thresholds"]["crit"], serde_json::json!([10.0, 90.0]));
        assert_eq!(
            j["thresholds"]["crit_recovery"],
            serde_json::json!([15.0, 85.0])
        );
        assert!(j["thresholds"].get("warn").is_none());
        assert_eq!(
            j["thresholds"]["text"],
            "crit outside [10, 90] (recovers inside [15, 85])"
        );
        assert_eq!(j["reason"], "t = 95 (crit outside [10, 90])");
        assert!(j.get("perfdata").is_none() && j.get("threshold").is_none());
    }

    #[test]
    fn forecast_rules_report_their_reason_and_no_perf_thresholds() {
        let f = rule_forecast();
        let r = evaluate(
            &f,
            vec![s(
                "disk.used",
                Some(3.5e9),
                State::Critical,
                "critical: crosses 4e9 in 12d (R² 0.97)",
            )],
        );
        assert_eq!(
            r.nagios(),
            "CRITICAL - disk.used = 3.500e9 (critical: crosses 4e9 in 12d (R² 0.97)) | 'disk.used'=3500000000"
        );
        assert_eq!(r.thresholds.text, "critical above 4.000e9 within 30d 0h");
    }

    fn rule_forecast() -> Rule {
        parse_file(
            "[[rule]]\nname = \"f\"\ntarget = \"a\"\nkind = \"forecast\"\nthreshold = 4e9\ndirection = \"above\"\nhorizon = \"30d\"\n",
        )
        .unwrap()
        .remove(0)
    }
}
