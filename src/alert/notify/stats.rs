//! The notifier's counters: per receiver (delivered, failed attempts,
//! retries, dropped) and per rule (notifications delivered), read by the
//! /metrics exporter and the review endpoint.
//!
//! Kept here rather than in `crate::telemetry` because receivers and rules
//! are named at run time: a fixed struct of atomics cannot hold them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::config::ReceiverKind;

/// Every counter the notifier keeps. Shared (`Arc`) between the
/// [`super::Notifier`], its receiver threads and whoever exports them.
#[derive(Debug, Default)]
pub struct NotifyStats {
    receivers: Mutex<BTreeMap<String, Arc<ReceiverStats>>>,
    rules: Mutex<BTreeMap<String, RuleCounts>>,
}

/// One receiver's counters (cumulative since start, but `queued`).
#[derive(Debug)]
pub struct ReceiverStats {
    pub name: String,
    pub kind: ReceiverKind,
    /// Requests the receiver accepted (2xx).
    pub delivered: AtomicU64,
    /// Alerts those requests carried (firing and resolved).
    pub alerts_delivered: AtomicU64,
    /// Attempts that failed: no connection, a timeout, a non-2xx answer.
    pub failed_attempts: AtomicU64,
    /// Attempts after the first for the same request.
    pub retries: AtomicU64,
    /// Requests pushed out of a full queue (the oldest goes).
    pub dropped_queue_full: AtomicU64,
    /// Requests given up on: `retry_for` passed, or an answer that a retry
    /// cannot change (a 4xx other than 408/429).
    pub dropped_failed: AtomicU64,
    /// Requests waiting now (a gauge).
    pub queued: AtomicU64,
}

/// A plain reading of one receiver's counters.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReceiverCounts {
    pub name: String,
    pub kind: &'static str,
    pub delivered: u64,
    pub alerts_delivered: u64,
    pub failed_attempts: u64,
    pub retries: u64,
    pub dropped_queue_full: u64,
    pub dropped_failed: u64,
    pub queued: u64,
}

/// What one rule's notifications came to, over every receiver.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RuleCounts {
    /// Requests delivered for this rule (one per receiver per evaluation
    /// that had something to send): the "notifications sent" of a review.
    pub notifications: u64,
    /// Alerts those requests carried.
    pub alerts: u64,
}

impl NotifyStats {
    pub fn new() -> Arc<NotifyStats> {
        Arc::new(NotifyStats::default())
    }

    /// The counters of receiver `name`, made on first use (a restart of the
    /// notifier with the same receiver keeps counting where it was).
    pub(super) fn receiver(&self, name: &str, kind: ReceiverKind) -> Arc<ReceiverStats> {
        self.receivers
            .lock()
            .entry(name.to_string())
            .or_insert_with(|| {
                Arc::new(ReceiverStats {
                    name: name.to_string(),
                    kind,
                    delivered: AtomicU64::new(0),
                    alerts_delivered: AtomicU64::new(0),
                    failed_attempts: AtomicU64::new(0),
                    retries: AtomicU64::new(0),
                    dropped_queue_full: AtomicU64::new(0),
                    dropped_failed: AtomicU64::new(0),
                    queued: AtomicU64::new(0),
                })
            })
            .clone()
    }

    pub(super) fn rule_delivered(&self, rule: &str, alerts: usize) {
        let mut rules = self.rules.lock();
        let c = match rules.get_mut(rule) {
            Some(c) => c,
            None => rules.entry(rule.to_string()).or_default(),
        };
        c.notifications += 1;
        c.alerts += alerts as u64;
    }

    /// Every receiver's counters, by name.
    pub fn receivers(&self) -> Vec<ReceiverCounts> {
        self.receivers.lock().values().map(|r| r.read()).collect()
    }

    /// One receiver's counters.
    pub fn receiver_counts(&self, name: &str) -> Option<ReceiverCounts> {
        self.receivers.lock().get(name).map(|r| r.read())
    }

    /// What `rule`'s notifications came to since start (zero if none).
    pub fn rule(&self, rule: &str) -> RuleCounts {
        self.rules.lock().get(rule).copied().unwrap_or_default()
    }

    /// Every rule that has had a notification delivered, by name.
    pub fn rules(&self) -> Vec<(String, RuleCounts)> {
        self.rules
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }
}

impl ReceiverStats {
    pub fn read(&self) -> ReceiverCounts {
        ReceiverCounts {
            name: self.name.clone(),
            kind: match self.kind {
                ReceiverKind::Webhook => "webhook",
                ReceiverKind::Alertmanager => "alertmanager",
            },
            delivered: self.delivered.load(Relaxed),
            alerts_delivered: self.alerts_delivered.load(Relaxed),
            failed_attempts: self.failed_attempts.load(Relaxed),
            retries: self.retries.load(Relaxed),
            dropped_queue_full: self.dropped_queue_full.load(Relaxed),
            dropped_failed: self.dropped_failed.load(Relaxed),
            queued: self.queued.load(Relaxed),
        }
    }
}
