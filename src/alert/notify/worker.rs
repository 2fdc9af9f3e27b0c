//! One receiver's thread: takes requests off its queue and POSTs them,
//! retrying a failure with backoff (1 s doubling to 60 s) until the
//! receiver's `retry_for` has passed. A dead receiver holds only its own
//! thread and its own bounded queue.

use std::io::Read;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::payload;
use super::queue::Queue;
use super::stats::{NotifyStats, ReceiverStats};
use super::track::Outgoing;
use crate::config::{ReceiverConfig, ReceiverKind};

const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// A receiver's failures are logged at most this often (the count of the
/// ones in between goes in the next line): a dead receiver retried every
/// few seconds would otherwise fill the log.
const LOG_EVERY: Duration = Duration::from_secs(60);
/// How much of an error answer's body goes in the log.
const BODY_IN_LOG: u64 = 512;

/// One request: one rule's alerts for one receiver, from one evaluation.
#[derive(Debug)]
pub(super) struct Batch {
    pub rule: Arc<str>,
    /// The evaluation's time (unix seconds).
    pub now: i64,
    pub alerts: Vec<Outgoing>,
}

#[derive(Debug)]
enum Failure {
    /// No answer: refused, reset, timed out, bad URL.
    Transport(String),
    Status(u16, String),
}

impl Failure {
    /// Whether trying again can help: not for a 4xx (the request itself is
    /// wrong), except 408 and 429 (the receiver is busy).
    fn retryable(&self) -> bool {
        match self {
            Failure::Transport(_) => true,
            Failure::Status(s, _) => !(400..500).contains(s) || *s == 408 || *s == 429,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Transport(e) => f.write_str(e),
            Failure::Status(s, body) => write!(f, "answered {s}: {}", body.trim()),
        }
    }
}

/// Lets a line through at most once per [`LOG_EVERY`], counting the rest.
#[derive(Default)]
pub(super) struct LogGate {
    last: Option<Instant>,
    suppressed: u64,
}

impl LogGate {
    /// `Some(lines held back since the last one)` when this one may go.
    pub(super) fn pass(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self.last.is_some_and(|t| now.duration_since(t) < LOG_EVERY) {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

pub(super) struct Worker {
    pub name: String,
    pub kind: ReceiverKind,
    /// Where requests go (`/api/v2/alerts` already added for Alertmanager).
    pub url: String,
    pub bearer: Option<String>,
    pub retry_for: Duration,
    /// Seconds.
    pub repeat: i64,
    pub external_url: String,
    pub agent: ureq::Agent,
    pub queue: Arc<Queue<Batch>>,
    pub stats: Arc<ReceiverStats>,
    pub all: Arc<NotifyStats>,
    failures: LogGate,
    drops: LogGate,
    /// Failed since the last delivery (to log the recovery once).
    failing: bool,
}

impl Worker {
    pub(super) fn new(
        cfg: &ReceiverConfig,
        repeat: i64,
        external_url: &str,
        queue: Arc<Queue<Batch>>,
        stats: Arc<ReceiverStats>,
        all: Arc<NotifyStats>,
    ) -> Worker {
        let base = cfg.url.trim_end_matches('/');
        let url = match cfg.kind {
            ReceiverKind::Webhook => cfg.url.clone(),
            ReceiverKind::Alertmanager => format!("{base}/api/v2/alerts"),
        };
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(cfg.timeout))
            .http_status_as_error(false)
            .user_agent(concat!("rollupd/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Worker {
            name: cfg.name.clone(),
            kind: cfg.kind,
            url,
            bearer: cfg
                .bearer_token
                .as_ref()
                .map(|t| format!("Bearer {}", t.expose())),
            retry_for: cfg.retry_for,
            repeat,
            external_url: external_url.to_string(),
            agent,
            queue,
            stats,
            all,
            failures: LogGate::default(),
            drops: LogGate::default(),
            failing: false,
        }
    }

    pub(super) fn run(mut self) {
        while let Some((batch, left)) = self.queue.pop() {
            self.stats.queued.store(left as u64, Relaxed);
            self.deliver(&batch);
        }
    }

    fn body(&self, b: &Batch) -> Vec<u8> {
        match self.kind {
            ReceiverKind::Webhook => {
                payload::webhook(&self.name, &b.rule, &self.external_url, &b.alerts)
            }
            ReceiverKind::Alertmanager => {
                let wall = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
                payload::alertmanager(&b.alerts, b.now, self.repeat, wall)
            }
        }
    }

    fn post(&self, body: &[u8]) -> Result<(), Failure> {
        let mut req = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json");
        if let Some(b) = &self.bearer {
            req = req.header("Authorization", b);
        }
        let resp = req
            .send(body)
            .map_err(|e| Failure::Transport(e.to_string()))?;
        let status = resp.status().as_u16();
        // Read a little of the answer (what a receiver says went wrong);
        // a big or endless body is not waited for.
        let mut text = Vec::new();
        let _ = resp
            .into_body()
            .into_reader()
            .take(BODY_IN_LOG)
            .read_to_end(&mut text);
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(Failure::Status(
                status,
                String::from_utf8_lossy(&text).into_owned(),
            ))
        }
    }

    fn deliver(&mut self, b: &Batch) {
        let body = self.body(b);
        let started = Instant::now();
        let mut backoff = BACKOFF_FIRST;
        let mut attempt = 0u32;
        loop {
            if attempt > 0 {
                self.stats.retries.fetch_add(1, Relaxed);
            }
            attempt += 1;
            let failure = match self.post(&body) {
                Ok(()) => {
                    self.stats.delivered.fetch_add(1, Relaxed);
                    self.stats
                        .alerts_delivered
                        .fetch_add(b.alerts.len() as u64, Relaxed);
                    self.all.rule_delivered(&b.rule, b.alerts.len());
                    if std::mem::take(&mut self.failing) {
                        tracing::info!(receiver = %self.name, rule = %b.rule, attempt, "alert receiver delivers again");
                    }
                    return;
                }
                Err(f) => f,
            };
            self.failing = true;
            self.stats.failed_attempts.fetch_add(1, Relaxed);
            if let Some(held_back) = self.failures.pass() {
                tracing::warn!(
                    receiver = %self.name, url = %self.url, rule = %b.rule, attempt,
                    error = %failure, failures_not_logged = held_back,
                    "alert notification failed"
                );
            }
            let out_of_time = started.elapsed() + backoff > self.retry_for;
            if !failure.retryable() || out_of_time {
                self.stats.dropped_failed.fetch_add(1, Relaxed);
                if let Some(held_back) = self.drops.pass() {
                    tracing::warn!(
                        receiver = %self.name, rule = %b.rule, alerts = b.alerts.len(), attempts = attempt,
                        error = %failure, drops_not_logged = held_back,
                        "alert notification dropped"
                    );
                }
                return;
            }
            if self.queue.sleep_unless_stopped(backoff) {
                return;
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_busy_or_broken_receiver_is_retried() {
        assert!(Failure::Transport("refused".into()).retryable());
        assert!(Failure::Status(500, String::new()).retryable());
        assert!(Failure::Status(503, String::new()).retryable());
        assert!(Failure::Status(429, String::new()).retryable());
        assert!(Failure::Status(408, String::new()).retryable());
        assert!(!Failure::Status(400, String::new()).retryable());
        assert!(!Failure::Status(404, String::new()).retryable());
    }

    #[test]
    fn log_gate_lets_one_line_a_minute_through_and_counts_the_rest() {
        let mut g = LogGate::default();
        assert_eq!(g.pass(), Some(0));
        assert_eq!(g.pass(), None);
        assert_eq!(g.pass(), None);
        g.last = Some(Instant::now() - LOG_EVERY);
        assert_eq!(g.pass(), Some(2));
    }
}
