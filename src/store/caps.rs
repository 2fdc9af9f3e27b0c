//! The caps on new series: how many series the store holds
//! (`[storage] max_series`), how many it creates per minute
//! (`max_new_series_per_minute`), and how long a name may be. Carbon
//! plaintext over TCP and UDP is unauthenticated, so without them any
//! sender could grow the index (and the memory of every open row) without
//! bound. Like the aggregator's `max_keys`, a refusal drops the point,
//! counts it, and is logged at a bounded rate.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Longest series name stored. Graphite keeps a name as a file path (at
/// most 4096 bytes on Linux); a longer one is refused, not truncated.
pub const MAX_NAME_BYTES: usize = 4096;

/// How often, at most, the refusals are logged (with their counts).
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Why a new series was refused.
#[derive(Debug, Clone, Copy)]
pub enum Refusal {
    /// The store holds `max_series` series.
    Total,
    /// `max_new_series_per_minute` were created in the last minute.
    Rate,
    /// The name is empty or longer than [`MAX_NAME_BYTES`].
    Name,
}

pub struct Caps {
    /// Start of the current minute and series created in it.
    window: Mutex<(Instant, u64)>,
    /// Refusals by reason since the last log line.
    unlogged: [AtomicU64; 3],
    last_log: Mutex<Option<Instant>>,
    /// Points dropped because their series was refused, since start.
    pub points_refused: AtomicU64,
}

impl Default for Caps {
    fn default() -> Self {
        Caps {
            window: Mutex::new((Instant::now(), 0)),
            unlogged: Default::default(),
            last_log: Mutex::new(None),
            points_refused: AtomicU64::new(0),
        }
    }
}

impl Caps {
    /// Takes one creation from this minute's allowance, if any is left.
    pub fn take_new(&self, per_minute: usize) -> bool {
        let mut w = self.window.lock();
        if w.0.elapsed() >= Duration::from_secs(60) {
            *w = (Instant::now(), 0);
        }
        if w.1 >= per_minute as u64 {
            return false;
        }
        w.1 += 1;
        true
    }

    pub fn note(&self, why: Refusal) {
        self.unlogged[why as usize].fetch_add(1, Relaxed);
    }

    /// Counts `points` dropped for refused series and logs, at most every
    /// [`LOG_EVERY`], how many were refused for each reason since the last
    /// line.
    pub fn refused(&self, points: u64, max_series: usize, per_minute: usize) {
        self.points_refused.fetch_add(points, Relaxed);
        {
            let mut last = self.last_log.lock();
            if last.is_some_and(|t| t.elapsed() < LOG_EVERY) {
                return;
            }
            *last = Some(Instant::now());
        }
        let [total, rate, name] = [0, 1, 2].map(|i| self.unlogged[i].swap(0, Relaxed));
        tracing::warn!(
            at_max_series = total,
            over_rate = rate,
            bad_name = name,
            max_series,
            max_new_series_per_minute = per_minute,
            max_name_bytes = MAX_NAME_BYTES,
            points_refused_total = self.points_refused.load(Relaxed),
            "new series refused; their points are dropped"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minute_allowance_runs_out() {
        let c = Caps::default();
        assert!(c.take_new(2));
        assert!(c.take_new(2));
        assert!(!c.take_new(2));
        *c.window.lock() = (Instant::now() - Duration::from_secs(61), 2);
        assert!(c.take_new(2), "a new minute has a new allowance");
    }
}
