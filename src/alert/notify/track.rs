//! What each receiver has been told, and what it must be told now. Pure
//! bookkeeping (no I/O, no clock of its own): the evaluator's `now` drives
//! it, so repeats and resolves are exact and testable without waiting.
//!
//! Per rule, per firing fingerprint, per receiver: the notice last sent and
//! when. An evaluation's firing list is compared with that:
//! - not sent yet (new, or its silence just ended): sent now;
//! - sent, but its labels changed (warning became critical): sent now; to
//!   Alertmanager, which tells alerts apart by labels, the old label set is
//!   also resolved, or it would stay active there until its `endsAt`;
//! - sent at least `repeat_interval` ago: sent again;
//! - silenced: nothing sent, nothing resolved, no repeat;
//! - gone from the list after being sent: resolved (if `send_resolved`).

use std::collections::HashMap;
use std::sync::Arc;

use crate::alert::notice::Notice;
use crate::config::ReceiverKind;

/// One alert in a request: firing, or resolved at a time.
#[derive(Debug, Clone)]
pub(super) struct Outgoing {
    pub notice: Arc<Notice>,
    pub resolved_at: Option<i64>,
}

/// What the tracker needs to know of a receiver.
#[derive(Debug, Clone)]
pub(super) struct Target {
    pub name: String,
    pub kind: ReceiverKind,
    /// Seconds, at least 1.
    pub repeat: i64,
    pub send_resolved: bool,
}

#[derive(Debug)]
struct Sent {
    at: i64,
    notice: Arc<Notice>,
}

#[derive(Debug)]
struct Entry {
    /// Indexed like `Tracker::targets`.
    sent: Vec<Option<Sent>>,
    /// Silenced at the last evaluation.
    silenced: bool,
}

/// Whether `n` goes to `t`: a notice naming no receivers goes to all.
fn wants(t: &Target, n: &Notice) -> bool {
    n.receivers.is_empty() || n.receivers.contains(&t.name)
}

#[derive(Debug)]
pub(super) struct Tracker {
    targets: Vec<Target>,
    rules: HashMap<String, HashMap<String, Entry>>,
}

impl Tracker {
    pub(super) fn new(targets: Vec<Target>) -> Self {
        Tracker {
            targets,
            rules: HashMap::new(),
        }
    }

    fn empty_entry(&self) -> Entry {
        Entry {
            sent: (0..self.targets.len()).map(|_| None).collect(),
            silenced: false,
        }
    }

    /// The rule's firing instances as of `now`; returns, per receiver (in
    /// the order given to [`Tracker::new`]), the alerts to send now.
    pub(super) fn update(
        &mut self,
        rule: &str,
        firing: Vec<Notice>,
        now: i64,
    ) -> Vec<Vec<Outgoing>> {
        let mut out: Vec<Vec<Outgoing>> = vec![Vec::new(); self.targets.len()];
        let mut old = self.rules.remove(rule).unwrap_or_default();
        let mut current: HashMap<String, Entry> = HashMap::with_capacity(firing.len());
        for notice in firing {
            if current.contains_key(&notice.fingerprint) {
                continue; // the evaluator's duplicate: the first one stands
            }
            let fp = notice.fingerprint.clone();
            let n = Arc::new(notice);
            let mut e = old.remove(&fp).unwrap_or_else(|| self.empty_entry());
            let silence_ended = e.silenced && !n.silenced;
            let per_target = self
                .targets
                .iter()
                .zip(out.iter_mut())
                .zip(e.sent.iter_mut());
            for ((t, sink), sent) in per_target {
                if n.silenced || !wants(t, &n) {
                    continue;
                }
                let due = match sent {
                    None => true,
                    Some(s) if s.notice.labels != n.labels => {
                        if t.kind == ReceiverKind::Alertmanager {
                            sink.push(Outgoing {
                                notice: s.notice.clone(),
                                resolved_at: Some(now),
                            });
                        }
                        true
                    }
                    Some(s) => silence_ended || now >= s.at.saturating_add(t.repeat),
                };
                if due {
                    sink.push(Outgoing {
                        notice: n.clone(),
                        resolved_at: None,
                    });
                    *sent = Some(Sent {
                        at: now,
                        notice: n.clone(),
                    });
                }
            }
            e.silenced = n.silenced;
            current.insert(fp, e);
        }
        // What was firing and is no longer: resolved where it was sent.
        for e in old.into_values() {
            for (r, s) in e.sent.into_iter().enumerate() {
                if let Some(s) = s {
                    if self.targets[r].send_resolved {
                        out[r].push(Outgoing {
                            notice: s.notice,
                            resolved_at: Some(now),
                        });
                    }
                }
            }
        }
        if !current.is_empty() {
            self.rules.insert(rule.to_string(), current);
        }
        out
    }

    /// After a restart: `firing` was already notified before it; remember
    /// it as sent at `now` (silenced ones as not sent), send nothing. An
    /// instance this tracker already follows keeps what it knows (a rule
    /// re-installed by a reload is seeded again; its repeats and resolves
    /// must not move).
    pub(super) fn seed(&mut self, rule: &str, firing: Vec<Notice>, now: i64) {
        let mut entries = self.rules.remove(rule).unwrap_or_default();
        for notice in firing {
            if entries.contains_key(&notice.fingerprint) {
                continue;
            }
            let n = Arc::new(notice);
            let mut e = self.empty_entry();
            e.silenced = n.silenced;
            if !n.silenced {
                for (t, sent) in self.targets.iter().zip(e.sent.iter_mut()) {
                    if wants(t, &n) {
                        *sent = Some(Sent {
                            at: now,
                            notice: n.clone(),
                        });
                    }
                }
            }
            entries.insert(n.fingerprint.clone(), e);
        }
        if !entries.is_empty() {
            self.rules.insert(rule.to_string(), entries);
        }
    }

    /// Stops following `rule`, sending nothing.
    pub(super) fn forget(&mut self, rule: &str) {
        self.rules.remove(rule);
    }

    /// Firing instances followed, over every rule.
    #[cfg(test)]
    pub(super) fn instances(&self) -> usize {
        self.rules.values().map(HashMap::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::notice::{fingerprint, Severity};
    use std::collections::BTreeMap;

    pub(crate) fn notice(rule: &str, series: &str, sev: Severity) -> Notice {
        let labels = BTreeMap::from([
            ("alertname".to_string(), rule.to_string()),
            ("severity".to_string(), sev.as_str().to_string()),
            ("series".to_string(), series.to_string()),
        ]);
        Notice {
            fingerprint: fingerprint(rule, series),
            rule: rule.to_string(),
            series: series.to_string(),
            labels,
            annotations: BTreeMap::new(),
            severity: sev,
            value: Some(1.0),
            starts_at: 100,
            generator_url: String::new(),
            silenced: false,
            receivers: Vec::new(),
        }
    }

    fn target(name: &str, kind: ReceiverKind, repeat: i64) -> Target {
        Target {
            name: name.into(),
            kind,
            repeat,
            send_resolved: true,
        }
    }

    /// (series, resolved) of what receiver `r` is to get.
    fn what(out: &[Vec<Outgoing>], r: usize) -> Vec<(String, bool)> {
        let mut v: Vec<_> = out[r]
            .iter()
            .map(|o| (o.notice.series.clone(), o.resolved_at.is_some()))
            .collect();
        v.sort();
        v
    }

    fn s(series: &str, resolved: bool) -> (String, bool) {
        (series.to_string(), resolved)
    }

    #[test]
    fn new_repeat_and_resolve_follow_each_receivers_interval() {
        let mut t = Tracker::new(vec![
            target("a", ReceiverKind::Webhook, 10),
            target("b", ReceiverKind::Webhook, 30),
        ]);
        let w = Severity::Warning;
        let out = t.update("r", vec![notice("r", "x", w)], 1000);
        assert_eq!(what(&out, 0), vec![s("x", false)]);
        assert_eq!(what(&out, 1), vec![s("x", false)]);
        // Still firing, nothing due.
        let out = t.update("r", vec![notice("r", "x", w)], 1009);
        assert!(out.iter().all(Vec::is_empty));
        // A's interval is up, B's not; a new instance goes to both.
        let out = t.update("r", vec![notice("r", "x", w), notice("r", "y", w)], 1010);
        assert_eq!(what(&out, 0), vec![s("x", false), s("y", false)]);
        assert_eq!(what(&out, 1), vec![s("y", false)]);
        let out = t.update("r", vec![notice("r", "x", w), notice("r", "y", w)], 1030);
        assert_eq!(what(&out, 0), vec![s("x", false), s("y", false)]);
        assert_eq!(what(&out, 1), vec![s("x", false)]);
        // x resolves: both were told of it.
        let out = t.update("r", vec![notice("r", "y", w)], 1031);
        assert_eq!(what(&out, 0), vec![s("x", true)]);
        assert_eq!(what(&out, 1), vec![s("x", true)]);
        assert_eq!(out[0][0].resolved_at, Some(1031));
        // Nothing firing: the rule is no longer followed.
        let out = t.update("r", vec![], 1032);
        assert_eq!(what(&out, 0), vec![s("y", true)]);
        assert_eq!(t.instances(), 0);
    }

    #[test]
    fn silenced_is_neither_sent_nor_resolved_and_is_sent_when_the_silence_ends() {
        let mut t = Tracker::new(vec![target("a", ReceiverKind::Webhook, 3600)]);
        let mut x = notice("r", "x", Severity::Critical);
        x.silenced = true;
        assert!(t.update("r", vec![x.clone()], 10).iter().all(Vec::is_empty));
        // Silenced and gone: never sent, so nothing to resolve.
        assert!(t.update("r", vec![], 11).iter().all(Vec::is_empty));

        // Sent, then silenced: no repeats while silenced...
        let y = notice("r", "y", Severity::Critical);
        assert_eq!(t.update("r", vec![y.clone()], 20)[0].len(), 1);
        let mut ys = y.clone();
        ys.silenced = true;
        assert!(t
            .update("r", vec![ys.clone()], 4000)
            .iter()
            .all(Vec::is_empty));
        // ...and when the silence ends while it fires, sent at once (the
        // interval since the last send does not matter).
        let out = t.update("r", vec![y.clone()], 4001);
        assert_eq!(what(&out, 0), vec![s("y", false)]);
        let out = t.update("r", vec![ys], 4002);
        assert!(out[0].is_empty());
        // Resolved while silenced: it had been sent, so the resolve goes.
        let out = t.update("r", vec![], 4003);
        assert_eq!(what(&out, 0), vec![s("y", true)]);
    }

    #[test]
    fn seed_sends_nothing_and_repeats_from_the_seed_time() {
        let mut t = Tracker::new(vec![target("a", ReceiverKind::Webhook, 60)]);
        t.seed("r", vec![notice("r", "x", Severity::Warning)], 1000);
        assert!(t.update("r", vec![notice("r", "x", Severity::Warning)], 1059)[0].is_empty());
        assert_eq!(
            t.update("r", vec![notice("r", "x", Severity::Warning)], 1060)[0].len(),
            1
        );
        // A seeded instance that stops firing is resolved.
        t.seed("q", vec![notice("q", "z", Severity::Warning)], 1000);
        assert_eq!(what(&t.update("q", vec![], 1001), 0), vec![s("z", true)]);
    }

    #[test]
    fn seeding_what_is_already_followed_changes_nothing() {
        let mut t = Tracker::new(vec![target("a", ReceiverKind::Webhook, 60)]);
        t.update("r", vec![notice("r", "x", Severity::Warning)], 1000);
        let mut silenced = notice("r", "y", Severity::Warning);
        silenced.silenced = true;
        t.update(
            "r",
            vec![notice("r", "x", Severity::Warning), silenced.clone()],
            1001,
        );
        // A reload seeds the rule again at 1030: x's repeat stays at 1060,
        // and y, seeded unsilenced, is still unsent (it goes at once when
        // its silence ends).
        let y = notice("r", "y", Severity::Warning);
        t.seed(
            "r",
            vec![notice("r", "x", Severity::Warning), y.clone()],
            1030,
        );
        let out = t.update("r", vec![notice("r", "x", Severity::Warning), y], 1060);
        assert_eq!(what(&out, 0), vec![s("x", false), s("y", false)]);
    }

    #[test]
    fn receivers_filter_and_send_resolved() {
        let mut t = Tracker::new(vec![
            target("a", ReceiverKind::Webhook, 60),
            Target {
                send_resolved: false,
                ..target("b", ReceiverKind::Webhook, 60)
            },
        ]);
        let mut x = notice("r", "x", Severity::Warning);
        x.receivers = vec!["b".into()];
        let out = t.update("r", vec![x, notice("r", "y", Severity::Warning)], 0);
        assert_eq!(what(&out, 0), vec![s("y", false)]);
        assert_eq!(what(&out, 1), vec![s("x", false), s("y", false)]);
        let out = t.update("r", vec![], 1);
        assert_eq!(what(&out, 0), vec![s("y", true)]);
        assert!(out[1].is_empty(), "b does not want resolves");
    }

    #[test]
    fn an_escalation_is_sent_at_once_and_alertmanager_resolves_the_old_labels() {
        let mut t = Tracker::new(vec![
            target("hook", ReceiverKind::Webhook, 3600),
            target("am", ReceiverKind::Alertmanager, 60),
        ]);
        t.update("r", vec![notice("r", "x", Severity::Warning)], 0);
        let out = t.update("r", vec![notice("r", "x", Severity::Critical)], 5);
        assert_eq!(out[0].len(), 1);
        assert_eq!(out[0][0].notice.severity, Severity::Critical);
        let am: Vec<_> = out[1]
            .iter()
            .map(|o| (o.notice.labels["severity"].clone(), o.resolved_at))
            .collect();
        assert_eq!(
            am,
            vec![
                ("warning".to_string(), Some(5)),
                ("critical".to_string(), None)
            ]
        );
    }

    #[test]
    fn only_the_named_rule_is_touched() {
        let mut t = Tracker::new(vec![target("a", ReceiverKind::Webhook, 60)]);
        t.update("r1", vec![notice("r1", "x", Severity::Warning)], 0);
        let out = t.update("r2", vec![], 1);
        assert!(out[0].is_empty());
        assert_eq!(t.instances(), 1);
    }
}
