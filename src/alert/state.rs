//! One alert instance's state machine (pure: no clock, no store). Each
//! evaluation's finding goes in; the new state and, when it changed, a
//! plain-language reason come out. `for` (pending), `keep_firing_for`,
//! recovery thresholds (hysteresis), no-data and error policies all live
//! here and nowhere else.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::forecast::{fmt_num, human, Verdict};
use super::notice::Severity;
use super::rule::{Direction, ErrorPolicy, Kind, Level, NoDataPolicy, Rule, Threshold};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Ok,
    Pending,
    Warning,
    Critical,
    NoData,
    Error,
}

impl State {
    pub const ALL: [State; 6] = [
        State::Ok,
        State::Pending,
        State::Warning,
        State::Critical,
        State::NoData,
        State::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Ok => "ok",
            State::Pending => "pending",
            State::Warning => "warning",
            State::Critical => "critical",
            State::NoData => "nodata",
            State::Error => "error",
        }
    }

    /// The level it fires at, if it fires.
    pub fn firing(self) -> Option<Severity> {
        match self {
            State::Warning => Some(Severity::Warning),
            State::Critical => Some(Severity::Critical),
            _ => None,
        }
    }

    fn of(level: Option<Severity>) -> State {
        match level {
            None => State::Ok,
            Some(Severity::Warning) => State::Warning,
            Some(Severity::Critical) => State::Critical,
        }
    }
}

/// What one evaluation found for an instance.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    /// The reduced value of a threshold rule's window.
    Value(f64),
    /// A forecast rule's verdict.
    Forecast(Verdict),
    /// The window held no point.
    NoData,
    /// The target could not be evaluated (or `nulls = "fail"` met a null).
    Error(String),
}

/// An instance as it stands between evaluations (kept in the store, so a
/// restart resumes pending timers and firing states).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    pub series: String,
    /// The series' tags (name;tag=value), for labels and silences.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    pub state: State,
    /// When `state` was entered.
    pub since: i64,
    /// The last reduced value (None: no data, error, forecast without fit).
    pub value: Option<f64>,
    /// Why it is in its state, as of the last evaluation.
    pub reason: String,
    /// A level waiting out `for`, and since when.
    #[serde(default)]
    pub pending: Option<(Severity, i64)>,
    /// When it started firing (kept across warning ↔ critical).
    #[serde(default)]
    pub firing_since: Option<i64>,
    /// When its value stopped holding the firing level (`keep_firing_for`).
    #[serde(default)]
    pub recovered_since: Option<i64>,
    /// The last evaluation whose window had data.
    #[serde(default)]
    pub last_data: Option<i64>,
    /// Consecutive evaluations the series was missing from the result.
    #[serde(default)]
    pub missing: u32,
    /// The last evaluation.
    #[serde(default)]
    pub evaluated: i64,
    /// A forecast rule's last verdict: the fit, its R² and the crossing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forecast: Option<Verdict>,
}

impl Instance {
    pub fn new(series: &str, tags: BTreeMap<String, String>, now: i64) -> Instance {
        Instance {
            series: series.to_string(),
            tags,
            state: State::Ok,
            since: now,
            value: None,
            reason: "new".into(),
            pending: None,
            firing_since: None,
            recovered_since: None,
            last_data: Some(now),
            missing: 0,
            evaluated: now,
            forecast: None,
        }
    }
}

/// A change of state.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub from: State,
    pub to: State,
    pub reason: String,
}

/// What the observation asks for, before `for` and `keep_firing_for`.
enum Want {
    /// Fire at this level (None: ok). `immediate` skips `for` (a no-data
    /// or error policy that names a level: the wait was `no_data_after`).
    Level {
        level: Option<Severity>,
        immediate: bool,
        reason: String,
    },
    /// The nodata or error state.
    Special(State, String),
    /// Stay as it is.
    Keep(String),
}

/// Applies one evaluation at `now`. Returns the change, if the state
/// changed; the instance's value, reason and timers are updated either way.
pub fn step(rule: &Rule, inst: &mut Instance, obs: Observation, now: i64) -> Option<Change> {
    inst.evaluated = now;
    inst.missing = 0;
    let firing = inst.state.firing();
    let want = match obs {
        Observation::Value(v) => {
            inst.value = Some(v);
            inst.last_data = Some(now);
            match &rule.kind {
                Kind::Threshold(t) => judge(t, firing, v),
                Kind::Forecast(_) => Want::Keep("a forecast rule got a plain value".into()),
            }
        }
        Observation::Forecast(verdict) => {
            inst.value = verdict.fit.map(|f| f.at(now));
            inst.last_data = Some(now);
            inst.forecast = Some(verdict.clone());
            let Kind::Forecast(f) = &rule.kind else {
                return None;
            };
            Want::Level {
                level: verdict.fires.then_some(f.severity),
                immediate: false,
                reason: verdict.reason,
            }
        }
        Observation::NoData => {
            inst.value = None;
            let quiet = now - inst.last_data.unwrap_or(inst.since);
            let after = super::secs(rule.no_data_after);
            if quiet < after {
                Want::Keep(format!(
                    "no data for {}, waiting out no_data_after {}",
                    human(quiet),
                    human(after)
                ))
            } else {
                let why = format!("no data in the last {}", human(super::secs(rule.window)));
                match rule.no_data {
                    NoDataPolicy::Ok => Want::Level {
                        level: None,
                        immediate: true,
                        reason: format!("{why} (no_data = ok)"),
                    },
                    NoDataPolicy::Warning => Want::Level {
                        level: Some(Severity::Warning),
                        immediate: true,
                        reason: format!("warning: {why}"),
                    },
                    NoDataPolicy::Critical => Want::Level {
                        level: Some(Severity::Critical),
                        immediate: true,
                        reason: format!("critical: {why}"),
                    },
                    NoDataPolicy::NoData => Want::Special(State::NoData, why),
                    NoDataPolicy::KeepLast => Want::Keep(format!("{why}; keeping the last state")),
                }
            }
        }
        Observation::Error(e) => {
            inst.value = None;
            let why = format!("evaluation failed: {e}");
            match rule.error {
                ErrorPolicy::Error => Want::Special(State::Error, why),
                ErrorPolicy::KeepLast => Want::Keep(format!("{why}; keeping the last state")),
                ErrorPolicy::Ok => Want::Level {
                    level: None,
                    immediate: true,
                    reason: format!("{why} (error = ok)"),
                },
                ErrorPolicy::Warning => Want::Level {
                    level: Some(Severity::Warning),
                    immediate: true,
                    reason: format!("warning: {why}"),
                },
                ErrorPolicy::Critical => Want::Level {
                    level: Some(Severity::Critical),
                    immediate: true,
                    reason: format!("critical: {why}"),
                },
            }
        }
    };
    apply(rule, inst, want, now)
}

/// The series left the target's result. After two evaluations missing, the
/// instance resolves: the bool says to drop it, and the change (to ok) is
/// there when it was in any other state.
pub fn missing(inst: &mut Instance, now: i64) -> (bool, Option<Change>) {
    inst.missing += 1;
    inst.evaluated = now;
    if inst.missing < 2 {
        return (false, None);
    }
    let change = (inst.state != State::Ok).then(|| Change {
        from: inst.state,
        to: State::Ok,
        reason: "resolved: the series is no longer in the target's result".into(),
    });
    (true, change)
}

fn apply(rule: &Rule, inst: &mut Instance, want: Want, now: i64) -> Option<Change> {
    let from = inst.state;
    let firing = from.firing();
    let to = match want {
        Want::Keep(reason) => {
            inst.reason = reason;
            return None;
        }
        Want::Special(s, reason) => {
            inst.pending = None;
            inst.recovered_since = None;
            inst.reason = reason;
            s
        }
        Want::Level {
            level,
            immediate,
            reason,
        } => {
            let for_ = super::secs(rule.for_);
            if level > firing {
                inst.recovered_since = None;
                let since = match inst.pending {
                    Some((_, s)) => s,
                    None => now,
                };
                if immediate || for_ == 0 || now - since >= for_ {
                    inst.pending = None;
                    inst.reason = if for_ > 0 && !immediate {
                        format!("{reason} for {}", human(now - since))
                    } else {
                        reason
                    };
                    State::of(level)
                } else {
                    let l = level.unwrap_or(Severity::Warning);
                    inst.pending = Some((l, since));
                    inst.reason = format!(
                        "pending {}: {reason} for {} of {}",
                        l.as_str(),
                        human(now - since),
                        human(for_)
                    );
                    // From ok (or nodata, error) the state shows pending;
                    // a warning waiting to become critical stays warning.
                    if firing.is_some() {
                        from
                    } else {
                        State::Pending
                    }
                }
            } else if level < firing {
                inst.pending = None;
                let keep = super::secs(rule.keep_firing_for);
                let since = *inst.recovered_since.get_or_insert(now);
                if keep > 0 && now - since < keep {
                    inst.reason = format!(
                        "kept {}: {reason}; recovered {} ago, keep_firing_for {}",
                        from.as_str(),
                        human(now - since),
                        human(keep)
                    );
                    from
                } else {
                    inst.recovered_since = None;
                    inst.reason = reason;
                    State::of(level)
                }
            } else {
                inst.pending = None;
                inst.recovered_since = None;
                inst.reason = reason;
                if firing.is_some() {
                    from
                } else {
                    State::of(level)
                }
            }
        }
    };
    if to == from {
        return None;
    }
    match (from.firing(), to.firing()) {
        (None, Some(_)) => inst.firing_since = Some(now),
        (Some(_), None) => inst.firing_since = None,
        _ => {}
    }
    inst.state = to;
    inst.since = now;
    Some(Change {
        from,
        to,
        reason: inst.reason.clone(),
    })
}

/// Whether `v` is on the bad side of `range` for the direction.
fn breaches(d: Direction, range: (f64, f64), v: f64) -> bool {
    match d {
        Direction::Above => v > range.0,
        Direction::Below => v < range.1,
        Direction::Outside => v < range.0 || v > range.1,
        Direction::Inside => v >= range.0 && v <= range.1,
    }
}

fn judge(t: &Threshold, firing: Option<Severity>, v: f64) -> Want {
    let fire = |sev: Severity, l: &Level, held: bool| Want::Level {
        level: Some(sev),
        immediate: false,
        reason: if held {
            format!(
                "held {}: {} {} not {} recovery {}",
                sev.as_str(),
                t.reducer.name(),
                fmt_num(v),
                recover_word(t.direction),
                show(t.direction, l.recover)
            )
        } else {
            format!(
                "{}: {} {} {} {}",
                sev.as_str(),
                t.reducer.name(),
                fmt_num(v),
                t.direction.as_str(),
                show(t.direction, l.fire)
            )
        },
    };
    if let Some(c) = &t.crit {
        if breaches(t.direction, c.fire, v) {
            return fire(Severity::Critical, c, false);
        }
        if firing == Some(Severity::Critical) && breaches(t.direction, c.recover, v) {
            return fire(Severity::Critical, c, true);
        }
    }
    if let Some(w) = &t.warn {
        if breaches(t.direction, w.fire, v) {
            return fire(Severity::Warning, w, false);
        }
        if firing.is_some() && breaches(t.direction, w.recover, v) {
            return fire(Severity::Warning, w, true);
        }
    }
    let recovered = match firing {
        Some(_) => format!("recovered: {} {}", t.reducer.name(), fmt_num(v)),
        None => format!("ok: {} {}", t.reducer.name(), fmt_num(v)),
    };
    Want::Level {
        level: None,
        immediate: false,
        reason: recovered,
    }
}

fn recover_word(d: Direction) -> &'static str {
    match d {
        Direction::Above => "below",
        Direction::Below => "above",
        Direction::Outside => "inside",
        Direction::Inside => "outside",
    }
}

/// A bound as a reader would write it for the direction: `800`, `[2, 8]`.
fn show(d: Direction, r: (f64, f64)) -> String {
    match d {
        Direction::Above => fmt_num(r.0),
        Direction::Below => fmt_num(r.1),
        _ => format!("[{}, {}]", fmt_num(r.0), fmt_num(r.1)),
    }
}

/// The thresholds in force, for a transition's record:
/// `warn above 500, crit above 800 (recovers below 700)`.
pub fn thresholds_text(rule: &Rule) -> String {
    match &rule.kind {
        Kind::Threshold(t) => {
            let mut parts = Vec::new();
            for (name, l) in [("warn", &t.warn), ("crit", &t.crit)] {
                if let Some(l) = l {
                    let mut s = format!(
                        "{name} {} {}",
                        t.direction.as_str(),
                        show(t.direction, l.fire)
                    );
                    if l.recover != l.fire {
                        s.push_str(&format!(
                            " (recovers {} {})",
                            recover_word(t.direction),
                            show(t.direction, l.recover)
                        ));
                    }
                    parts.push(s);
                }
            }
            parts.join(", ")
        }
        Kind::Forecast(f) => format!(
            "{} {} {} within {}",
            f.severity.as_str(),
            f.direction.as_str(),
            fmt_num(f.threshold),
            human(super::secs(f.horizon))
        ),
    }
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

    /// Runs values through at 10 s steps from t=0; returns (t, to) of
    /// every change and the final instance.
    fn run(r: &Rule, obs: Vec<Observation>) -> (Vec<(i64, State, String)>, Instance) {
        let mut inst = Instance::new("a", BTreeMap::new(), 0);
        let mut out = Vec::new();
        for (i, o) in (0i64..).zip(obs) {
            let t = i * 10;
            if let Some(c) = step(r, &mut inst, o, t) {
                out.push((t, c.to, c.reason));
            }
        }
        (out, inst)
    }

    fn vals(v: &[f64]) -> Vec<Observation> {
        v.iter().map(|&x| Observation::Value(x)).collect()
    }

    #[test]
    fn pending_then_critical_after_for_then_hysteresis() {
        let r = rule("direction = \"above\"\ncrit = 800\ncrit_recovery = 700\nfor = \"30s\"");
        let (ch, _) = run(
            &r,
            vals(&[500.0, 812.0, 820.0, 830.0, 815.0, 780.0, 720.0, 690.0]),
        );
        let states: Vec<(i64, State)> = ch.iter().map(|c| (c.0, c.1)).collect();
        assert_eq!(
            states,
            vec![(10, State::Pending), (40, State::Critical), (70, State::Ok)]
        );
        assert_eq!(ch[1].2, "critical: p99 815 above 800 for 30s");
        assert!(ch[2].2.starts_with("recovered: p99 690"), "{}", ch[2].2);
    }

    #[test]
    fn held_states_say_why() {
        let r = rule("direction = \"above\"\ncrit = 800\ncrit_recovery = 700");
        let mut inst = Instance::new("a", BTreeMap::new(), 0);
        step(&r, &mut inst, Observation::Value(812.0), 0).unwrap();
        assert!(step(&r, &mut inst, Observation::Value(780.0), 10).is_none());
        assert_eq!(inst.state, State::Critical);
        assert_eq!(inst.reason, "held critical: p99 780 not below recovery 700");
    }

    #[test]
    fn oscillating_around_the_threshold_does_not_flap() {
        let r = rule("direction = \"above\"\ncrit = 800\ncrit_recovery = 700");
        let wave: Vec<f64> = (0..60)
            .map(|i| if i % 2 == 0 { 810.0 } else { 790.0 })
            .collect();
        let (ch, inst) = run(&r, vals(&wave));
        assert_eq!(ch.len(), 1, "{ch:?}");
        assert_eq!(inst.state, State::Critical);
        // Without a recovery threshold the same wave flaps every step.
        let r = rule("direction = \"above\"\ncrit = 800");
        assert_eq!(run(&r, vals(&wave)).0.len(), 60);
    }

    #[test]
    fn a_dip_during_pending_starts_over() {
        let r = rule("direction = \"above\"\ncrit = 800\nfor = \"30s\"");
        let (ch, _) = run(&r, vals(&[900.0, 900.0, 100.0, 900.0, 900.0, 900.0, 900.0]));
        let states: Vec<(i64, State)> = ch.iter().map(|c| (c.0, c.1)).collect();
        assert_eq!(
            states,
            vec![
                (0, State::Pending),
                (20, State::Ok),
                (30, State::Pending),
                (60, State::Critical)
            ]
        );
    }

    #[test]
    fn low_thresholds_and_ranges() {
        let r = rule("direction = \"below\"\nwarn = 50\ncrit = 10");
        let (ch, _) = run(&r, vals(&[100.0, 40.0, 5.0, 60.0]));
        let s: Vec<State> = ch.iter().map(|c| c.1).collect();
        assert_eq!(s, vec![State::Warning, State::Critical, State::Ok]);
        assert_eq!(ch[0].2, "warning: p99 40 below 50");
        let r = rule("direction = \"outside\"\ncrit = [10, 20]");
        let s: Vec<State> = run(&r, vals(&[15.0, 25.0, 15.0, 5.0]))
            .0
            .iter()
            .map(|c| c.1)
            .collect();
        assert_eq!(s, vec![State::Critical, State::Ok, State::Critical]);
        let r = rule("direction = \"inside\"\ncrit = [10, 20]");
        let s: Vec<State> = run(&r, vals(&[5.0, 15.0, 25.0]))
            .0
            .iter()
            .map(|c| c.1)
            .collect();
        assert_eq!(s, vec![State::Critical, State::Ok]);
    }

    #[test]
    fn warning_escalates_and_steps_down() {
        let r = rule("direction = \"above\"\nwarn = 500\ncrit = 800\ncrit_recovery = 700");
        let (ch, inst) = run(&r, vals(&[600.0, 900.0, 750.0, 650.0, 400.0]));
        let s: Vec<State> = ch.iter().map(|c| c.1).collect();
        assert_eq!(
            s,
            vec![State::Warning, State::Critical, State::Warning, State::Ok]
        );
        assert_eq!(inst.firing_since, None);
    }

    #[test]
    fn keep_firing_for_holds_a_recovered_alert() {
        let r = rule("direction = \"above\"\ncrit = 800\nkeep_firing_for = \"30s\"");
        let (ch, _) = run(
            &r,
            vals(&[900.0, 100.0, 100.0, 900.0, 100.0, 100.0, 100.0, 100.0]),
        );
        let states: Vec<(i64, State)> = ch.iter().map(|c| (c.0, c.1)).collect();
        // The dip at 10–20 is held; recovery from 40 is let go at 70.
        assert_eq!(states, vec![(0, State::Critical), (70, State::Ok)]);
    }

    #[test]
    fn no_data_policies_wait_out_no_data_after() {
        let r = rule("direction = \"above\"\ncrit = 800\nno_data_after = \"30s\"");
        let mut o = vals(&[100.0]);
        o.extend((0..5).map(|_| Observation::NoData));
        let (ch, inst) = run(&r, o);
        // Last data at 0; quiet for 30 s at t=30.
        assert_eq!(
            ch.iter().map(|c| (c.0, c.1)).collect::<Vec<_>>(),
            vec![(30, State::NoData)]
        );
        assert_eq!(inst.reason, "no data in the last 5m");
        let r = rule("direction = \"above\"\ncrit = 800\nno_data = \"critical\"\nfor = \"1h\"");
        let (ch, _) = run(&r, vec![Observation::NoData]);
        assert_eq!(ch[0].1, State::Critical, "no-data levels skip `for`");
        let r = rule("direction = \"above\"\ncrit = 800\nno_data = \"keep_last\"");
        let mut o = vals(&[900.0]);
        o.push(Observation::NoData);
        let (ch, inst) = run(&r, o);
        assert_eq!((ch.len(), inst.state), (1, State::Critical));
    }

    #[test]
    fn errors_follow_the_error_policy() {
        let r = rule("direction = \"above\"\ncrit = 800");
        let (ch, _) = run(
            &r,
            vec![Observation::Error("boom".into()), Observation::Value(1.0)],
        );
        assert_eq!(
            ch.iter().map(|c| c.1).collect::<Vec<_>>(),
            vec![State::Error, State::Ok]
        );
        assert_eq!(ch[0].2, "evaluation failed: boom");
        let r = rule("direction = \"above\"\ncrit = 800\nerror = \"keep_last\"");
        let (ch, inst) = run(
            &r,
            vec![Observation::Value(900.0), Observation::Error("x".into())],
        );
        assert_eq!((ch.len(), inst.state), (1, State::Critical));
    }

    #[test]
    fn a_missing_series_resolves_after_two_evaluations() {
        let r = rule("direction = \"above\"\ncrit = 800");
        let mut inst = Instance::new("a", BTreeMap::new(), 0);
        step(&r, &mut inst, Observation::Value(900.0), 0);
        assert_eq!(missing(&mut inst, 10), (false, None));
        let (drop, ch) = missing(&mut inst, 20);
        assert!(drop);
        assert_eq!(ch.unwrap().to, State::Ok);
    }

    #[test]
    fn thresholds_read_as_text() {
        let r = rule("direction = \"above\"\nwarn = 500\ncrit = 800\ncrit_recovery = 700");
        assert_eq!(
            thresholds_text(&r),
            "warn above 500, crit above 800 (recovers below 700)"
        );
    }
}
