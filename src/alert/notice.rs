//! What the evaluator hands the notifier: one firing alert instance as the
//! notification layer sees it. The evaluator decides *what* is firing; the
//! notifier (`alert::notify`) decides when and where it is sent.

use std::collections::BTreeMap;

/// How bad a firing instance is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// One firing alert instance (a rule and one series of its target).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Notice {
    /// Stable for the (rule, series) pair: a hash of the rule's name and
    /// the series name, as 16 hex digits (Alertmanager's shape).
    pub fingerprint: String,
    pub rule: String,
    pub series: String,
    /// `alertname` (the rule), `severity`, `series`, the series' tags and
    /// the rule's own labels.
    pub labels: BTreeMap<String, String>,
    /// The rule's annotations with their templates filled in.
    pub annotations: BTreeMap<String, String>,
    pub severity: Severity,
    /// The reduced value that made it fire (None for a no-data alert).
    pub value: Option<f64>,
    /// Unix seconds the instance started firing.
    pub starts_at: i64,
    /// Link to the rule's page on this daemon.
    pub generator_url: String,
    /// Silenced in rollupd: still firing, but not sent (and not resolved
    /// because of the silence either). Sent once the silence ends, if it
    /// still fires.
    pub silenced: bool,
    /// Receivers by name this rule's notifications go to; empty: all.
    pub receivers: Vec<String>,
}

/// The 16-hex-digit fingerprint of a (rule, series) pair. FNV-1a over the
/// two names with a separator no name holds: stable across restarts and
/// builds (std's hasher is randomly seeded, so it cannot be used).
pub fn fingerprint(rule: &str, series: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in rule.bytes().chain([0u8]).chain(series.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_stable_and_tell_pairs_apart() {
        assert_eq!(fingerprint("r", "a.b"), fingerprint("r", "a.b"));
        assert_ne!(fingerprint("r", "a.b"), fingerprint("r", "a.c"));
        // The separator keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(fingerprint("ab", "c"), fingerprint("a", "bc"));
        assert_eq!(fingerprint("r", "a.b").len(), 16);
    }
}
