//! The monthly signal-to-noise review (`GET /api/alerts/review`): per rule,
//! over a window, how often it changed state and notified, how often it
//! fired and for how long, how much of the time its instances spent in
//! each state, how many firings were flaps, how many ended shortly after a
//! deploy, and a verdict in plain words. JSON (serde) and CSV.
//!
//! Pure: the caller reads the transitions, deploys and the states at the
//! window's start from the store.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use serde::Serialize;

use super::forecast::human;
use super::history::{Deploy, Transition};
use super::secs;
use super::state::State;

/// What to judge by.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// Unix seconds; the window is `[from, until)`.
    pub from: i64,
    pub until: i64,
    /// A firing that ended sooner than this is a flap. The rules' own `for`
    /// is not what matters here: this is the pending period a page that is
    /// worth waking someone for would have.
    pub flap_under: Duration,
    /// A firing that ended within this long after a deploy counts as
    /// deploy-related.
    pub deploy_within: Duration,
}

/// 5 minutes: the shortest `for` common in paging rules (Prometheus'
/// examples, Grafana's default evaluation of 1m with 5m pending).
pub const DEFAULT_FLAP_UNDER: Duration = Duration::from_secs(300);
/// 15 minutes: a deploy's rollout plus the window a health alert needs to
/// clear after it.
pub const DEFAULT_DEPLOY_WITHIN: Duration = Duration::from_secs(900);

impl Params {
    pub fn new(from: i64, until: i64) -> Params {
        Params {
            from,
            until,
            flap_under: DEFAULT_FLAP_UNDER,
            deploy_within: DEFAULT_DEPLOY_WITHIN,
        }
    }
}

/// What the review is computed from.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// Every rule that exists, so a rule that never fired is listed too.
    /// Rules that only appear in `transitions` (since deleted) are listed
    /// as well.
    pub rules: &'a [String],
    /// The transitions in the window, by time. Earlier ones may be
    /// included: they only set the state at `from`. Later ones are ignored.
    pub transitions: &'a [Transition],
    /// Each instance's state at `from`, keyed by (rule, series). `None`:
    /// derived from each instance's first transition (its `from` field),
    /// counted from the window's start. `Some`: instances not in the map
    /// did not exist at `from` and are counted from their first transition.
    pub at_from: Option<&'a BTreeMap<(String, String), State>>,
    /// Deploys, in any order.
    pub deploys: &'a [Deploy],
    /// Repeat notifications per rule (sent while firing, not transitions),
    /// added to the count.
    pub repeats: &'a BTreeMap<String, u64>,
}

/// Seconds in each state, summed over a rule's instances, clipped to the
/// window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StateSeconds {
    pub ok: i64,
    pub pending: i64,
    pub warning: i64,
    pub critical: i64,
    pub nodata: i64,
    pub error: i64,
}

impl StateSeconds {
    fn add(&mut self, s: State, secs: i64) {
        let slot = match s {
            State::Ok => &mut self.ok,
            State::Pending => &mut self.pending,
            State::Warning => &mut self.warning,
            State::Critical => &mut self.critical,
            State::NoData => &mut self.nodata,
            State::Error => &mut self.error,
        };
        *slot += secs;
    }

    pub fn total(&self) -> i64 {
        self.ok + self.pending + self.warning + self.critical + self.nodata + self.error
    }

    pub fn firing(&self) -> i64 {
        self.warning + self.critical
    }
}

/// One rule's review.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleReview {
    pub rule: String,
    /// Instances (series) seen in the window.
    pub instances: usize,
    pub transitions: u64,
    /// Transitions that notified, plus repeats.
    pub notifications: u64,
    /// Firing episodes (ok/pending/nodata/error → warning or critical,
    /// until back; warning ↔ critical is the same one) that started in the
    /// window. One already firing at `from` was counted by the previous
    /// review; its time is in `seconds`.
    pub firings: u64,
    /// Of those, still firing at `until` (no duration yet).
    pub ongoing: u64,
    /// Ended firings shorter than `flap_under`.
    pub flaps: u64,
    /// Ended firings that ended within `deploy_within` after a deploy.
    pub deploy_ended: u64,
    /// The deploys those were after, by time.
    pub deploys: Vec<Deploy>,
    /// Over ended firings.
    pub mean_firing_seconds: Option<f64>,
    pub max_firing_seconds: Option<i64>,
    pub seconds: StateSeconds,
    /// "noisy: 14 of 20 firings lasted under 5m".
    pub verdict: String,
}

/// The review of every rule, most notifications first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Review {
    pub from: i64,
    pub until: i64,
    pub flap_under_seconds: u64,
    pub deploy_within_seconds: u64,
    pub rules: Vec<RuleReview>,
}

/// An instance while the transitions are walked.
struct Walk {
    state: State,
    /// Where the current state's time starts counting.
    since: i64,
    /// The current firing's start, if it started in the window.
    firing_start: Option<i64>,
}

#[derive(Default)]
struct Acc {
    instances: usize,
    transitions: u64,
    notifications: u64,
    firings: u64,
    ongoing: u64,
    flaps: u64,
    deploy_ended: u64,
    /// Indices into the deploys sorted by time: deduplicated and ordered.
    deploys: BTreeSet<usize>,
    durations: Vec<i64>,
    seconds: StateSeconds,
}

pub fn review(input: &Input<'_>, p: &Params) -> Review {
    let (from, until) = (p.from, p.until.max(p.from));
    let flap_under = secs(p.flap_under);
    let deploy_within = secs(p.deploy_within);
    let clip = |a: i64, b: i64| (b.min(until) - a.max(from)).max(0);

    let mut deploys: Vec<&Deploy> = input.deploys.iter().collect();
    deploys.sort_by(|x, y| x.when.cmp(&y.when).then_with(|| x.what.cmp(&y.what)));

    let mut acc: BTreeMap<&str, Acc> = BTreeMap::new();
    for r in input.rules {
        acc.entry(r.as_str()).or_default();
    }
    let mut walks: HashMap<(&str, &str), Walk> = HashMap::new();
    if let Some(m) = input.at_from {
        for ((rule, series), &state) in m {
            walks.insert(
                (rule.as_str(), series.as_str()),
                Walk {
                    state,
                    since: from,
                    firing_start: None,
                },
            );
            acc.entry(rule.as_str()).or_default().instances += 1;
        }
    }
    // Stable: transitions at the same second keep their recorded order.
    let mut order: Vec<&Transition> = input.transitions.iter().collect();
    order.sort_by_key(|t| t.at);
    for t in order {
        if t.at >= until {
            break;
        }
        let a = acc.entry(t.rule.as_str()).or_default();
        let w = walks
            .entry((t.rule.as_str(), t.series.as_str()))
            .or_insert_with(|| {
                a.instances += 1;
                Walk {
                    state: t.from,
                    since: if input.at_from.is_some() { t.at } else { from },
                    firing_start: None,
                }
            });
        a.seconds.add(w.state, clip(w.since, t.at));
        let in_window = t.at >= from;
        if in_window {
            a.transitions += 1;
            a.notifications += u64::from(t.notified);
        }
        let was = w.state.firing().is_some();
        let now = t.to.firing().is_some();
        if !was && now && in_window {
            a.firings += 1;
            w.firing_start = Some(t.at);
        }
        if was && !now {
            if let Some(start) = w.firing_start.take() {
                let d = t.at - start;
                a.durations.push(d);
                if d < flap_under {
                    a.flaps += 1;
                }
                // The deploys in [end - deploy_within, end].
                let lo = deploys.partition_point(|d| d.when < t.at.saturating_sub(deploy_within));
                let hi = deploys.partition_point(|d| d.when <= t.at);
                if lo < hi {
                    a.deploy_ended += 1;
                    a.deploys.extend(lo..hi);
                }
            }
        }
        w.state = t.to;
        w.since = t.at;
    }
    for ((rule, _), w) in &walks {
        let a = acc
            .get_mut(*rule)
            .expect("every walked instance has its rule");
        a.seconds.add(w.state, clip(w.since, until));
        if w.firing_start.is_some() {
            a.ongoing += 1;
        }
    }

    let mut rules: Vec<RuleReview> = acc
        .into_iter()
        .map(|(rule, mut a)| {
            a.notifications += input.repeats.get(rule).copied().unwrap_or(0);
            let mean = (!a.durations.is_empty())
                .then(|| a.durations.iter().sum::<i64>() as f64 / a.durations.len() as f64);
            let max = a.durations.iter().copied().max();
            let verdict = verdict(&a, mean, flap_under, deploy_within);
            RuleReview {
                rule: rule.to_string(),
                instances: a.instances,
                transitions: a.transitions,
                notifications: a.notifications,
                firings: a.firings,
                ongoing: a.ongoing,
                flaps: a.flaps,
                deploy_ended: a.deploy_ended,
                deploys: a.deploys.iter().map(|&i| deploys[i].clone()).collect(),
                mean_firing_seconds: mean,
                max_firing_seconds: max,
                seconds: a.seconds,
                verdict,
            }
        })
        .collect();
    rules.sort_by(|a, b| {
        b.notifications
            .cmp(&a.notifications)
            .then(b.firings.cmp(&a.firings))
            .then(b.transitions.cmp(&a.transitions))
            .then_with(|| a.rule.cmp(&b.rule))
    });
    Review {
        from,
        until,
        flap_under_seconds: p.flap_under.as_secs(),
        deploy_within_seconds: p.deploy_within.as_secs(),
        rules,
    }
}

/// The verdict, first match wins:
/// - quiet: no firing started in the window;
/// - stuck: instances fired at least half of their time (an alert that is
///   always on gets ignored);
/// - noisy: more than half the firings were flaps;
/// - deploy-related: more than half ended soon after a deploy;
/// - useful: otherwise.
///
/// Time in nodata and error is added, since it is time the alert could not
/// see.
#[expect(
    clippy::cast_possible_truncation,
    reason = "the mean of i64 firing durations lies within i64's range, and `as` saturates at its ends"
)]
fn verdict(a: &Acc, mean: Option<f64>, flap_under: i64, deploy_within: i64) -> String {
    let firing = a.seconds.firing();
    let total = a.seconds.total();
    let plural = |n: u64, one: &str, many: &str| {
        if n == 1 {
            format!("{n} {one}")
        } else {
            format!("{n} {many}")
        }
    };
    let mut v = if total > 0 && firing * 2 >= total {
        format!(
            "stuck: firing {}% of the time ({} over {}); an alert that is always on gets ignored",
            firing * 100 / total,
            human(firing),
            plural(a.instances as u64, "instance", "instances"),
        )
    } else if a.firings == 0 {
        if firing > 0 {
            format!(
                "quiet: no new firing; {} firing carried over from before the window",
                human(firing)
            )
        } else {
            "quiet: never fired".to_string()
        }
    } else if a.flaps * 2 > a.firings {
        format!(
            "noisy: {} of {} lasted under {}",
            a.flaps,
            plural(a.firings, "firing", "firings"),
            human(flap_under)
        )
    } else if a.deploy_ended * 2 > a.firings {
        format!(
            "deploy-related: {} of {} ended within {} after a deploy; consider silencing during deploys",
            a.deploy_ended,
            plural(a.firings, "firing", "firings"),
            human(deploy_within)
        )
    } else {
        let mut s = format!("useful: {}", plural(a.firings, "firing", "firings"));
        if let Some(m) = mean {
            s.push_str(&format!(", mean {}", human(m.round() as i64)));
        }
        if a.flaps > 0 {
            s.push_str(&format!(", {}", plural(a.flaps, "flap", "flaps")));
        }
        s
    };
    if a.ongoing > 0 && !v.starts_with("stuck") {
        v.push_str(&format!("; {} still firing", a.ongoing));
    }
    let blind: Vec<String> = [("nodata", a.seconds.nodata), ("error", a.seconds.error)]
        .iter()
        .filter(|(_, s)| *s > 0)
        .map(|(n, s)| format!("{} in {n}", human(*s)))
        .collect();
    if !blind.is_empty() {
        v.push_str("; ");
        v.push_str(&blind.join(", "));
    }
    v
}

/// The CSV header, in the order of [`Review::csv`]'s columns.
pub const CSV_HEADER: [&str; 18] = [
    "rule",
    "instances",
    "transitions",
    "notifications",
    "firings",
    "ongoing",
    "flaps",
    "deploy_ended",
    "mean_firing_seconds",
    "max_firing_seconds",
    "ok_seconds",
    "pending_seconds",
    "warning_seconds",
    "critical_seconds",
    "nodata_seconds",
    "error_seconds",
    "deploys",
    "verdict",
];

impl Review {
    /// RFC 4180 CSV: a header row, one row per rule, CRLF line ends.
    /// Written here rather than with the `csv` crate: the quoting rule is
    /// three lines, and a spreadsheet also needs text fields that start
    /// with `= + - @` defused (OWASP's CSV injection advice: a leading
    /// `'`), which the crate does not do. Deploys are `time what`, joined
    /// by `; `.
    pub fn csv(&self) -> String {
        let mut out = CSV_HEADER.join(",");
        out.push_str("\r\n");
        for r in &self.rules {
            let deploys: Vec<String> = r
                .deploys
                .iter()
                .map(|d| format!("{} {}", rfc3339(d.when), d.what))
                .collect();
            let opt = |v: Option<String>| v.unwrap_or_default();
            let fields = [
                text_field(&r.rule),
                r.instances.to_string(),
                r.transitions.to_string(),
                r.notifications.to_string(),
                r.firings.to_string(),
                r.ongoing.to_string(),
                r.flaps.to_string(),
                r.deploy_ended.to_string(),
                opt(r.mean_firing_seconds.map(|m| format!("{:.0}", m))),
                opt(r.max_firing_seconds.map(|m| m.to_string())),
                r.seconds.ok.to_string(),
                r.seconds.pending.to_string(),
                r.seconds.warning.to_string(),
                r.seconds.critical.to_string(),
                r.seconds.nodata.to_string(),
                r.seconds.error.to_string(),
                text_field(&deploys.join("; ")),
                text_field(&r.verdict),
            ];
            out.push_str(&fields.join(","));
            out.push_str("\r\n");
        }
        out
    }
}

fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| t.to_string())
}

/// A text cell: defused if a spreadsheet would read it as a formula, then
/// quoted if it holds a comma, quote or line break (quotes doubled).
fn text_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FROM: i64 = 1_000_000;
    const DAY: i64 = 86400;
    const UNTIL: i64 = FROM + 30 * DAY;

    fn tr(at: i64, rule: &str, series: &str, from: State, to: State, notified: bool) -> Transition {
        Transition {
            at,
            rule: rule.into(),
            series: series.into(),
            from,
            to,
            value: None,
            thresholds: String::new(),
            reason: String::new(),
            deploys: vec![],
            notified,
            silenced: false,
        }
    }

    /// A firing of `len` seconds at `at` (ok → critical → ok), both notified.
    fn firing(at: i64, len: i64, rule: &str, series: &str) -> [Transition; 2] {
        [
            tr(at, rule, series, State::Ok, State::Critical, true),
            tr(at + len, rule, series, State::Critical, State::Ok, true),
        ]
    }

    fn run(rules: &[&str], ts: Vec<Transition>, deploys: Vec<Deploy>) -> Review {
        let rules: Vec<String> = rules.iter().map(|r| r.to_string()).collect();
        review(
            &Input {
                rules: &rules,
                transitions: &ts,
                at_from: None,
                deploys: &deploys,
                repeats: &BTreeMap::new(),
            },
            &Params::new(FROM, UNTIL),
        )
    }

    fn get<'a>(r: &'a Review, rule: &str) -> &'a RuleReview {
        r.rules.iter().find(|x| x.rule == rule).unwrap()
    }

    #[test]
    fn a_rule_that_never_fired_is_quiet() {
        let r = run(&["calm"], vec![], vec![]);
        let c = get(&r, "calm");
        assert_eq!((c.firings, c.transitions, c.instances), (0, 0, 0));
        assert_eq!(c.verdict, "quiet: never fired");
        assert_eq!(c.mean_firing_seconds, None);
    }

    #[test]
    fn flaps_make_a_rule_noisy() {
        let mut ts = Vec::new();
        // 14 firings of 60 s and 6 of an hour, a day apart.
        for i in 0..20 {
            let len = if i < 14 { 60 } else { 3600 };
            ts.extend(firing(FROM + i * DAY, len, "noisy", "a"));
        }
        let r = run(&["noisy"], ts, vec![]);
        let n = get(&r, "noisy");
        assert_eq!(
            (n.firings, n.flaps, n.transitions, n.notifications),
            (20, 14, 40, 40)
        );
        assert_eq!(n.verdict, "noisy: 14 of 20 firings lasted under 5m");
        assert_eq!(n.max_firing_seconds, Some(3600));
        assert_eq!(
            n.mean_firing_seconds,
            Some((14.0 * 60.0 + 6.0 * 3600.0) / 20.0)
        );
        assert_eq!(n.seconds.critical, 14 * 60 + 6 * 3600);
        assert_eq!(n.seconds.ok, 30 * DAY - n.seconds.critical);
    }

    #[test]
    fn a_flap_is_strictly_shorter_than_flap_under() {
        let mut ts = Vec::new();
        ts.extend(firing(FROM + 100, 299, "r", "a"));
        ts.extend(firing(FROM + DAY, 300, "r", "a"));
        let r = run(&["r"], ts, vec![]);
        assert_eq!(get(&r, "r").flaps, 1);
    }

    #[test]
    fn useful_rules_say_how_long_they_fire() {
        let mut ts = Vec::new();
        ts.extend(firing(FROM + DAY, 2400, "u", "a"));
        ts.extend(firing(FROM + 2 * DAY, 3000, "u", "b"));
        ts.extend(firing(FROM + 3 * DAY, 60, "u", "a"));
        let r = run(&["u"], ts, vec![]);
        let u = get(&r, "u");
        assert_eq!(u.instances, 2);
        assert_eq!(u.verdict, "useful: 3 firings, mean 30m, 1 flap");
    }

    #[test]
    fn warning_to_critical_is_one_firing() {
        let ts = vec![
            tr(FROM + 10, "r", "a", State::Ok, State::Pending, false),
            tr(FROM + 70, "r", "a", State::Pending, State::Warning, true),
            tr(FROM + 670, "r", "a", State::Warning, State::Critical, true),
            tr(
                FROM + 1270,
                "r",
                "a",
                State::Critical,
                State::Warning,
                false,
            ),
            tr(FROM + 1870, "r", "a", State::Warning, State::Ok, true),
        ];
        let r = run(&["r"], ts, vec![]);
        let x = get(&r, "r");
        assert_eq!((x.firings, x.transitions, x.notifications), (1, 5, 3));
        assert_eq!(x.max_firing_seconds, Some(1800));
        assert_eq!(
            x.seconds,
            StateSeconds {
                ok: 30 * DAY - 1860,
                pending: 60,
                warning: 1200,
                critical: 600,
                nodata: 0,
                error: 0,
            }
        );
    }

    #[test]
    fn time_is_clipped_to_the_window_and_carried_in_states_count() {
        // Firing since before the window, resolved a day in; an earlier
        // transition (before `from`) sets the state and is not counted.
        let ts = vec![
            tr(FROM - 500, "r", "a", State::Ok, State::Critical, true),
            tr(FROM + DAY, "r", "a", State::Critical, State::Ok, true),
        ];
        let r = run(&["r"], ts, vec![]);
        let x = get(&r, "r");
        assert_eq!((x.transitions, x.notifications, x.firings), (1, 1, 0));
        assert_eq!((x.seconds.critical, x.seconds.ok), (DAY, 29 * DAY));
        assert_eq!(
            x.verdict,
            "quiet: no new firing; 1d 0h firing carried over from before the window"
        );
        // A transition at or after `until` is ignored.
        let ts = vec![tr(UNTIL, "r", "a", State::Ok, State::Critical, true)];
        let x = run(&["r"], ts, vec![]).rules.remove(0);
        assert_eq!((x.transitions, x.firings, x.seconds.ok), (0, 0, 0));
    }

    #[test]
    fn an_ongoing_firing_is_counted_but_has_no_duration() {
        let ts = vec![tr(UNTIL - 100, "r", "a", State::Ok, State::Critical, true)];
        let r = run(&["r"], ts, vec![]);
        let x = get(&r, "r");
        assert_eq!((x.firings, x.ongoing, x.flaps), (1, 1, 0));
        assert_eq!(x.max_firing_seconds, None);
        assert_eq!(x.seconds.critical, 100);
        assert_eq!(x.verdict, "useful: 1 firing; 1 still firing");
    }

    #[test]
    fn an_alert_that_is_always_on_is_stuck() {
        let ts = vec![
            tr(FROM + DAY, "r", "a", State::Ok, State::Warning, true),
            tr(FROM + 2 * DAY, "r", "a", State::Warning, State::Ok, true),
            tr(FROM + 3 * DAY, "r", "a", State::Ok, State::Warning, true),
        ];
        let x = run(&["r"], ts, vec![]).rules.remove(0);
        assert_eq!(x.seconds.warning, 28 * DAY);
        assert_eq!(
            x.verdict,
            "stuck: firing 93% of the time (28d 0h over 1 instance); an alert that is always on gets ignored"
        );
    }

    #[test]
    fn firings_ending_after_deploys_are_counted_with_their_deploys() {
        let d1 = Deploy {
            when: FROM + DAY,
            what: "api v1.2".into(),
            data: String::new(),
        };
        let d2 = Deploy {
            when: FROM + 2 * DAY,
            what: "api v1.3".into(),
            data: String::new(),
        };
        let d3 = Deploy {
            when: FROM + 5 * DAY,
            what: "db".into(),
            data: String::new(),
        };
        let mut ts = Vec::new();
        // Ends 10 min after d1: counted.
        ts.extend(firing(FROM + DAY - 1200, 1800, "r", "a"));
        // Ends exactly 15 min after d2: counted (within is inclusive).
        ts.extend(firing(FROM + 2 * DAY - 600, 1500, "r", "a"));
        // Ends 16 min after d3: not counted.
        ts.extend(firing(FROM + 5 * DAY, 960, "r", "a"));
        // Ends before d3 (starts after nothing): not counted.
        ts.extend(firing(FROM + 5 * DAY - 4000, 3000, "r", "a"));
        let r = run(&["r"], ts, vec![d3.clone(), d2.clone(), d1.clone()]);
        let x = get(&r, "r");
        assert_eq!((x.firings, x.deploy_ended), (4, 2));
        assert_eq!(x.deploys, vec![d1, d2]);
        assert!(x.verdict.starts_with("useful: 4 firings"), "{}", x.verdict);
        // Three of four after a deploy: deploy-related.
        let mut ts = Vec::new();
        for i in 0..3 {
            ts.extend(firing(FROM + i * DAY + 100, 1000, "r", "a"));
        }
        ts.extend(firing(FROM + 10 * DAY, 1000, "r", "a"));
        let deploys = (0..3)
            .map(|i| Deploy {
                when: FROM + i * DAY + 1000,
                what: format!("v{i}"),
                data: String::new(),
            })
            .collect();
        let x = run(&["r"], ts, deploys).rules.remove(0);
        assert_eq!(
            x.verdict,
            "deploy-related: 3 of 4 firings ended within 15m after a deploy; consider silencing during deploys"
        );
    }

    #[test]
    fn the_state_at_from_can_be_given() {
        let mut at_from = BTreeMap::new();
        at_from.insert(("r".to_string(), "a".to_string()), State::NoData);
        at_from.insert(("r".to_string(), "quiet".to_string()), State::Ok);
        let ts = vec![
            tr(FROM + DAY, "r", "a", State::NoData, State::Ok, false),
            // "b" did not exist at `from`: counted from its first transition.
            tr(FROM + 29 * DAY, "r", "b", State::Ok, State::Error, false),
        ];
        let rules = vec!["r".to_string()];
        let r = review(
            &Input {
                rules: &rules,
                transitions: &ts,
                at_from: Some(&at_from),
                deploys: &[],
                repeats: &BTreeMap::new(),
            },
            &Params::new(FROM, UNTIL),
        );
        let x = &r.rules[0];
        assert_eq!(x.instances, 3);
        assert_eq!(x.seconds.nodata, DAY);
        assert_eq!(x.seconds.error, DAY);
        assert_eq!(x.seconds.ok, 29 * DAY + 30 * DAY);
        assert_eq!(x.seconds.total(), 61 * DAY);
        assert_eq!(
            x.verdict,
            "quiet: never fired; 1d 0h in nodata, 1d 0h in error"
        );
    }

    #[test]
    fn sorted_by_notifications_with_repeats_added() {
        let mut ts = Vec::new();
        ts.extend(firing(FROM + 10, 4000, "a", "x"));
        ts.extend(firing(FROM + DAY, 4000, "b", "x"));
        ts.extend(firing(FROM + 2 * DAY, 4000, "b", "x"));
        // Unsorted input is sorted by time.
        ts.reverse();
        let rules = vec![
            "a".to_string(),
            "b".to_string(),
            "c".to_string(),
            "d".to_string(),
        ];
        let mut repeats = BTreeMap::new();
        repeats.insert("a".to_string(), 5);
        let p = Params {
            flap_under: Duration::from_secs(60),
            ..Params::new(FROM, UNTIL)
        };
        let r = review(
            &Input {
                rules: &rules,
                transitions: &ts,
                at_from: None,
                deploys: &[],
                repeats: &repeats,
            },
            &p,
        );
        let order: Vec<(&str, u64)> = r
            .rules
            .iter()
            .map(|x| (x.rule.as_str(), x.notifications))
            .collect();
        assert_eq!(order, [("a", 7), ("b", 4), ("c", 0), ("d", 0)]);
        assert_eq!(get(&r, "b").firings, 2);
        assert_eq!(r.flap_under_seconds, 60);
        // A rule only in the history (since deleted) is listed too.
        let x = run(&[], firing(FROM, 10, "gone", "s").to_vec(), vec![]);
        assert_eq!(x.rules[0].rule, "gone");
    }

    #[test]
    fn csv_has_a_header_and_quotes_what_needs_it() {
        let d = Deploy {
            when: FROM + DAY,
            what: "api \"v2\", canary".into(),
            data: String::new(),
        };
        let mut ts = Vec::new();
        ts.extend(firing(FROM + DAY - 60, 120, "-lat", "a"));
        let r = run(&["-lat", "calm"], ts, vec![d]);
        let csv = r.csv();
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(lines.len(), 4, "{csv:?}");
        assert_eq!(lines[3], "");
        assert_eq!(lines[0], CSV_HEADER.join(","));
        assert_eq!(
            lines[1],
            "'-lat,1,2,2,1,0,1,1,120,120,2591880,0,0,120,0,0,\
             \"1970-01-13T13:46:40Z api \"\"v2\"\", canary\",noisy: 1 of 1 firing lasted under 5m"
        );
        assert_eq!(
            lines[2],
            "calm,0,0,0,0,0,0,0,,,0,0,0,0,0,0,,quiet: never fired"
        );
        assert_eq!(text_field("a\nb"), "\"a\nb\"");
        assert_eq!(text_field("=1+1"), "'=1+1");
        assert_eq!(text_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(text_field("plain"), "plain");
    }

    #[test]
    fn json_shape() {
        let r = run(&["r"], firing(FROM, 100, "r", "a").to_vec(), vec![]);
        let j = serde_json::to_value(&r).unwrap();
        assert_eq!(j["from"], FROM);
        assert_eq!(j["flap_under_seconds"], 300);
        assert_eq!(j["deploy_within_seconds"], 900);
        let x = &j["rules"][0];
        assert_eq!(x["rule"], "r");
        assert_eq!(x["firings"], 1);
        assert_eq!(x["seconds"]["critical"], 100);
        assert_eq!(x["mean_firing_seconds"], 100.0);
        assert_eq!(x["verdict"], "noisy: 1 of 1 firing lasted under 5m");
    }
}
