//! rollupd's own counters: what it received, refused, dropped and how long
//! its work took. Each event is a method that both counts and (where a human
//! should hear of it) logs, so a count and its log line cannot drift apart.
//!
//! Receiver threads count into a thread-local [`LocalCounts`] and publish it
//! once per batch of datagrams: two cores incrementing one shared atomic per
//! line would bounce its cache line on every metric.

pub mod render;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{SystemTime, UNIX_EPOCH};

use rollupd_protocol::carbon::CarbonBad;
use rollupd_protocol::statsd::BadReason;

const REASONS: usize = BadReason::ALL.len();
const CARBON_REASONS: usize = CarbonBad::ALL.len();

/// Cumulative counters since start. Per-flush values are differences of two
/// readings (see [`Telemetry::take_interval`]).
#[derive(Debug, Default)]
pub struct Telemetry {
    pub packets_received: AtomicU64,
    pub metrics_received: AtomicU64,
    pub bad_lines: [AtomicU64; REASONS],
    pub keys_over_cap: AtomicU64,
    pub timer_samples_dropped: AtomicU64,
    pub set_members_dropped: AtomicU64,
    pub events_received: AtomicU64,
    pub events_dropped: AtomicU64,
    pub service_checks_received: AtomicU64,
    /// Datagrams the kernel dropped on our UDP socket (SO_RXQ_OVFL).
    pub udp_kernel_drops: AtomicU64,
    pub forward_lines_dropped: AtomicU64,
    pub forward_errors: AtomicU64,
    pub tcp_connections_refused: AtomicU64,
    /// Connections refused by the carbon TCP and admin listeners at their
    /// caps (`tcp_connections_refused` is statsd TCP's).
    pub carbon_connections_refused: AtomicU64,
    pub admin_connections_refused: AtomicU64,
    pub http_connections_refused: AtomicU64,
    /// Carbon plaintext points accepted by the receivers, and lines refused.
    pub carbon_points: AtomicU64,
    pub carbon_bad_lines: [AtomicU64; CARBON_REASONS],
    /// Unix seconds of the last received metric line (Etsy's last_msg_seen).
    pub last_msg_seen: AtomicU64,
    /// Duration of the last flush's aggregation step, in microseconds.
    pub last_flush_micros: AtomicU64,
    /// The second bad-line logs are counted in and how many it has had,
    /// `second << 8 | count`: one word, so a thread whose clock reading is a
    /// moment stale cannot reopen the count of a second under way.
    log_window: AtomicU64,
    /// The last reading handed to a flush, for interval deltas.
    previous: parking_lot::Mutex<Option<Snapshot>>,
}

/// Counts gathered by one thread between two publishes.
#[derive(Debug, Default, Clone)]
pub struct LocalCounts {
    pub packets: u64,
    pub lines: u64,
    pub bad: [u64; REASONS],
    pub keys_over_cap: u64,
    pub timer_samples_dropped: u64,
    pub set_members_dropped: u64,
    pub events: u64,
    pub events_dropped: u64,
    pub service_checks: u64,
}

/// A reading of the cumulative counters.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Snapshot {
    pub packets_received: u64,
    pub metrics_received: u64,
    pub bad_lines: [u64; REASONS],
    pub keys_over_cap: u64,
    pub timer_samples_dropped: u64,
    pub set_members_dropped: u64,
    pub events_received: u64,
    pub events_dropped: u64,
    pub service_checks_received: u64,
    pub udp_kernel_drops: u64,
    pub forward_lines_dropped: u64,
    pub forward_errors: u64,
    pub tcp_connections_refused: u64,
    pub carbon_connections_refused: u64,
    pub admin_connections_refused: u64,
    pub http_connections_refused: u64,
    pub carbon_points: u64,
    pub carbon_bad_lines: [u64; CARBON_REASONS],
}

impl Snapshot {
    pub fn bad_lines_total(&self) -> u64 {
        self.bad_lines.iter().sum()
    }

    pub fn carbon_bad_lines_total(&self) -> u64 {
        self.carbon_bad_lines.iter().sum()
    }

    fn minus(&self, o: &Snapshot) -> Snapshot {
        let mut bad = [0; REASONS];
        for (i, b) in bad.iter_mut().enumerate() {
            *b = self.bad_lines[i].saturating_sub(o.bad_lines[i]);
        }
        let mut cbad = [0; CARBON_REASONS];
        for (i, b) in cbad.iter_mut().enumerate() {
            *b = self.carbon_bad_lines[i].saturating_sub(o.carbon_bad_lines[i]);
        }
        Snapshot {
            carbon_points: self.carbon_points.saturating_sub(o.carbon_points),
            carbon_bad_lines: cbad,
            packets_received: self.packets_received.saturating_sub(o.packets_received),
            metrics_received: self.metrics_received.saturating_sub(o.metrics_received),
            bad_lines: bad,
            keys_over_cap: self.keys_over_cap.saturating_sub(o.keys_over_cap),
            timer_samples_dropped: self
                .timer_samples_dropped
                .saturating_sub(o.timer_samples_dropped),
            set_members_dropped: self
                .set_members_dropped
                .saturating_sub(o.set_members_dropped),
            events_received: self.events_received.saturating_sub(o.events_received),
            events_dropped: self.events_dropped.saturating_sub(o.events_dropped),
            service_checks_received: self
                .service_checks_received
                .saturating_sub(o.service_checks_received),
            udp_kernel_drops: self.udp_kernel_drops.saturating_sub(o.udp_kernel_drops),
            forward_lines_dropped: self
                .forward_lines_dropped
                .saturating_sub(o.forward_lines_dropped),
            forward_errors: self.forward_errors.saturating_sub(o.forward_errors),
            tcp_connections_refused: self
                .tcp_connections_refused
                .saturating_sub(o.tcp_connections_refused),
            carbon_connections_refused: self
                .carbon_connections_refused
                .saturating_sub(o.carbon_connections_refused),
            admin_connections_refused: self
                .admin_connections_refused
                .saturating_sub(o.admin_connections_refused),
            http_connections_refused: self
                .http_connections_refused
                .saturating_sub(o.http_connections_refused),
        }
    }
}

/// The TCP listeners that cap their connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    StatsdTcp,
    CarbonTcp,
    Admin,
    Http,
}

impl Listener {
    pub fn as_str(self) -> &'static str {
        match self {
            Listener::StatsdTcp => "statsd TCP",
            Listener::CarbonTcp => "carbon TCP",
            Listener::Admin => "admin",
            Listener::Http => "HTTP",
        }
    }
}

/// At most this many bad-line log lines per second; the rest are counted only.
const BAD_LINE_LOGS_PER_SECOND: u64 = 5;
/// A clock this far behind the counted second was set back (not merely read
/// a moment early by another thread): counting starts afresh.
const CLOCK_STEP_BACK_SECS: u64 = 2;
/// Longest excerpt of an offending line put in a log line.
const LOG_EXCERPT: usize = 200;

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// [`unix_now`] as the signed seconds that timestamps are kept in; a clock
/// past `i64::MAX` seconds saturates.
pub fn unix_now_i64() -> i64 {
    i64::try_from(unix_now()).unwrap_or(i64::MAX)
}

impl Telemetry {
    pub fn new() -> Self {
        let t = Telemetry::default();
        t.last_msg_seen.store(unix_now(), Relaxed);
        t
    }

    /// Adds a thread's counts and zeroes them.
    pub fn publish(&self, c: &mut LocalCounts) {
        if c.packets == 0 && c.lines == 0 {
            return;
        }
        self.packets_received.fetch_add(c.packets, Relaxed);
        self.metrics_received.fetch_add(c.lines, Relaxed);
        for (i, n) in c.bad.iter().enumerate() {
            if *n > 0 {
                self.bad_lines[i].fetch_add(*n, Relaxed);
            }
        }
        let pairs = [
            (&self.keys_over_cap, c.keys_over_cap),
            (&self.timer_samples_dropped, c.timer_samples_dropped),
            (&self.set_members_dropped, c.set_members_dropped),
            (&self.events_received, c.events),
            (&self.events_dropped, c.events_dropped),
            (&self.service_checks_received, c.service_checks),
        ];
        for (a, n) in pairs {
            if n > 0 {
                a.fetch_add(n, Relaxed);
            }
        }
        if c.lines > 0 {
            self.last_msg_seen.store(unix_now(), Relaxed);
        }
        *c = LocalCounts::default();
    }

    /// A refused line: counted by the caller in its [`LocalCounts`]; logged
    /// here with the offending text, at a bounded rate.
    pub fn log_bad_line(&self, reason: BadReason, line: &[u8]) {
        if !self.may_log() {
            return;
        }
        let excerpt = &line[..line.len().min(LOG_EXCERPT)];
        tracing::warn!(
            reason = reason.as_str(),
            line = %String::from_utf8_lossy(excerpt).escape_debug(),
            "bad statsd line"
        );
    }

    /// A refused carbon line: counted and logged (bounded, like statsd's).
    pub fn carbon_bad_line(&self, reason: CarbonBad, line: &[u8]) {
        self.carbon_bad_lines[reason.index()].fetch_add(1, Relaxed);
        if !self.may_log() {
            return;
        }
        let excerpt = &line[..line.len().min(LOG_EXCERPT)];
        tracing::warn!(
            reason = reason.as_str(),
            line = %String::from_utf8_lossy(excerpt).escape_debug(),
            "bad carbon line"
        );
    }

    /// A TCP connection closed unread because `listener` already had
    /// `max_connections` open: counted, and logged at a bounded rate (a
    /// connection flood must not become a log flood).
    pub fn connection_refused(&self, listener: Listener, max_connections: usize) {
        let counter = match listener {
            Listener::StatsdTcp => &self.tcp_connections_refused,
            Listener::CarbonTcp => &self.carbon_connections_refused,
            Listener::Admin => &self.admin_connections_refused,
            Listener::Http => &self.http_connections_refused,
        };
        counter.fetch_add(1, Relaxed);
        if self.may_log() {
            tracing::warn!(
                listener = listener.as_str(),
                max_connections,
                "refusing a TCP connection: too many open"
            );
        }
    }

    /// Whether a warning that a flood could repeat may be logged now: at
    /// most a few a second, shared by every such warning.
    pub fn may_log(&self) -> bool {
        self.may_log_at(unix_now())
    }

    fn may_log_at(&self, now: u64) -> bool {
        let mut cur = self.log_window.load(Relaxed);
        loop {
            let (second, count) = (cur >> 8, cur & 0xff);
            let next = if now == second {
                if count >= BAD_LINE_LOGS_PER_SECOND {
                    return false;
                }
                cur + 1
            } else if now > second || second - now > CLOCK_STEP_BACK_SECS {
                (now << 8) | 1
            } else {
                // Read just before the second turned: that second is over.
                return false;
            };
            match self
                .log_window
                .compare_exchange_weak(cur, next, Relaxed, Relaxed)
            {
                Ok(_) => return true,
                Err(seen) => cur = seen,
            }
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let mut bad = [0; REASONS];
        for (i, b) in bad.iter_mut().enumerate() {
            *b = self.bad_lines[i].load(Relaxed);
        }
        let mut cbad = [0; CARBON_REASONS];
        for (i, b) in cbad.iter_mut().enumerate() {
            *b = self.carbon_bad_lines[i].load(Relaxed);
        }
        Snapshot {
            carbon_points: self.carbon_points.load(Relaxed),
            carbon_bad_lines: cbad,
            packets_received: self.packets_received.load(Relaxed),
            metrics_received: self.metrics_received.load(Relaxed),
            bad_lines: bad,
            keys_over_cap: self.keys_over_cap.load(Relaxed),
            timer_samples_dropped: self.timer_samples_dropped.load(Relaxed),
            set_members_dropped: self.set_members_dropped.load(Relaxed),
            events_received: self.events_received.load(Relaxed),
            events_dropped: self.events_dropped.load(Relaxed),
            service_checks_received: self.service_checks_received.load(Relaxed),
            udp_kernel_drops: self.udp_kernel_drops.load(Relaxed),
            forward_lines_dropped: self.forward_lines_dropped.load(Relaxed),
            forward_errors: self.forward_errors.load(Relaxed),
            tcp_connections_refused: self.tcp_connections_refused.load(Relaxed),
            carbon_connections_refused: self.carbon_connections_refused.load(Relaxed),
            admin_connections_refused: self.admin_connections_refused.load(Relaxed),
            http_connections_refused: self.http_connections_refused.load(Relaxed),
        }
    }

    /// What happened since the previous call (since start on the first).
    pub fn take_interval(&self) -> Snapshot {
        let now = self.snapshot();
        let mut prev = self.previous.lock();
        let delta = now.minus(&prev.unwrap_or_default());
        *prev = Some(now);
        delta
    }

    /// What happened since the last flush, without moving the mark (the
    /// admin `counters` command shows the current interval).
    pub fn peek_interval(&self) -> Snapshot {
        let now = self.snapshot();
        now.minus(&self.previous.lock().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_add_up_to_totals() {
        let t = Telemetry::new();
        let mut c = LocalCounts {
            packets: 2,
            lines: 5,
            ..Default::default()
        };
        c.bad[BadReason::NoColon.index()] = 1;
        t.publish(&mut c);
        assert_eq!(c.lines, 0, "publish zeroes the local counts");
        let first = t.take_interval();
        assert_eq!(first.metrics_received, 5);
        assert_eq!(first.bad_lines_total(), 1);
        let mut c = LocalCounts {
            packets: 1,
            lines: 3,
            ..Default::default()
        };
        t.publish(&mut c);
        assert_eq!(t.peek_interval().metrics_received, 3);
        assert_eq!(t.take_interval().metrics_received, 3);
        assert_eq!(t.take_interval().metrics_received, 0);
        assert_eq!(t.snapshot().metrics_received, 8);
    }

    /// The README's promise, exactly: at most 5 bad-line logs in any one
    /// second of the clock, and 5 again in the next.
    #[test]
    fn bad_line_logging_is_at_most_five_a_second() {
        let t = Telemetry::new();
        let count = |sec: u64, tries: usize| (0..tries).filter(|_| t.may_log_at(sec)).count();
        assert_eq!(count(1000, 100), 5);
        assert_eq!(count(1000, 100), 0);
        assert_eq!(count(1001, 100), 5);
        // A thread that read the clock just before the second turned (its
        // `now` is one behind) neither logs past the cap nor reopens the
        // count of the second that is under way.
        assert_eq!(count(1000, 3), 0);
        assert_eq!(count(1001, 100), 0);
        assert_eq!(count(1002, 2) + count(1001, 5) + count(1002, 100), 5);
        // A clock set back by more than a moment starts counting afresh.
        assert_eq!(count(500, 100), 5);
        assert!(t.may_log(), "the wall clock is far past second 500");
    }
}
