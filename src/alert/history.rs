//! The record of a state change, as stored, listed by
//! `/api/alerts/<name>/history`, reviewed and drawn as an event.

use serde::{Deserialize, Serialize};

use super::state::State;

/// A deploy (an event tagged `[alerts] deploy_tag`) shortly before a
/// transition: "what changed?" answered beside the alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deploy {
    pub when: i64,
    pub what: String,
    #[serde(default)]
    pub data: String,
}

/// One change of one instance's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    /// Unix seconds.
    pub at: i64,
    pub rule: String,
    pub series: String,
    pub from: State,
    pub to: State,
    pub value: Option<f64>,
    /// The thresholds in force (`warn above 500, crit above 800 (recovers below 700)`).
    pub thresholds: String,
    /// Plain language: "critical: p99 812 above 800 for 5m".
    pub reason: String,
    /// Deploys in the `deploy_window` before it, newest first.
    #[serde(default)]
    pub deploys: Vec<Deploy>,
    /// Whether it produced a notification (firing or resolved, not silenced,
    /// with a receiver configured).
    #[serde(default)]
    pub notified: bool,
    /// Whether a silence matched the instance at the time.
    #[serde(default)]
    pub silenced: bool,
}
