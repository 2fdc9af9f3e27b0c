//! The caps on new series: how many series the store holds
//! (`[storage] max_series`), how many it creates per minute
//! (`max_new_series_per_minute`), how long a name may be, and whether the
//! daemon is past `max_memory` (the store measures and says so through
//! [`Caps::set_memory_full`]). Carbon plaintext over TCP and UDP is
//! unauthenticated, so without them any sender could grow the index (and
//! the memory of every live series' head) without bound. Like the aggregator's
//! `max_keys`, a refusal drops the point, counts it, and is logged at a
//! bounded rate; series that exist keep writing.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
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
    /// The daemon uses more memory than `[storage] max_memory`.
    Memory,
}

const REASONS: usize = 4;

/// What the store last said about memory (for the log lines).
#[derive(Debug, Default, Clone, Copy)]
struct MemoryReport {
    used: u64,
    limit: u64,
    /// When a change of `full` was last logged.
    logged: Option<Instant>,
}

pub struct Caps {
    /// Start of the current minute and series created in it.
    window: Mutex<(Instant, u64)>,
    /// Refusals by reason since the last log line.
    unlogged: [AtomicU64; REASONS],
    /// Refusals by reason since start ([`Caps::refused_for`]).
    refusals: [AtomicU64; REASONS],
    last_log: Mutex<Option<Instant>>,
    /// Points dropped because their series was refused, since start.
    pub points_refused: AtomicU64,
    /// Past `max_memory`: new series are refused.
    memory_full: AtomicBool,
    memory: Mutex<MemoryReport>,
}

impl Default for Caps {
    fn default() -> Self {
        Caps {
            window: Mutex::new((Instant::now(), 0)),
            unlogged: Default::default(),
            refusals: Default::default(),
            last_log: Mutex::new(None),
            points_refused: AtomicU64::new(0),
            memory_full: AtomicBool::new(false),
            memory: Mutex::new(MemoryReport::default()),
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
        self.refusals[why as usize].fetch_add(1, Relaxed);
    }

    /// Refusals for `why` since start: one per point whose new series was
    /// refused for it (a series refused again each time a point names it).
    pub fn refused_for(&self, why: Refusal) -> u64 {
        self.refusals[why as usize].load(Relaxed)
    }

    /// What the store says after measuring its memory: `full` when `used`
    /// bytes are past `limit` (`[storage] max_memory`). While full, new
    /// series are refused ([`Caps::memory_allows_new`]); series that exist
    /// keep writing. A change is logged, at most every [`LOG_EVERY`] (a
    /// daemon hovering at its limit would flip on every measurement).
    pub fn set_memory_full(&self, full: bool, used: u64, limit: u64) {
        let was = self.memory_full.swap(full, Relaxed);
        let mut m = self.memory.lock();
        (m.used, m.limit) = (used, limit);
        if was == full || m.logged.is_some_and(|t| t.elapsed() < LOG_EVERY) {
            return;
        }
        m.logged = Some(Instant::now());
        drop(m);
        if full {
            tracing::warn!(
                memory_used = used,
                max_memory = limit,
                "memory is past [storage] max_memory: new series are refused (their points dropped and counted); existing series keep writing"
            );
        } else {
            tracing::info!(
                memory_used = used,
                max_memory = limit,
                "memory is back under [storage] max_memory: new series are accepted again"
            );
        }
    }

    pub fn memory_full(&self) -> bool {
        self.memory_full.load(Relaxed)
    }

    /// Whether memory leaves room for a new series; when it does not, the
    /// refusal is noted (as [`Refusal::Memory`]) and the caller drops the
    /// point and reports it through [`Caps::refused`], as for the other caps.
    pub fn memory_allows_new(&self) -> bool {
        if self.memory_full() {
            self.note(Refusal::Memory);
            return false;
        }
        true
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
        let [total, rate, name, memory] = [0, 1, 2, 3].map(|i| self.unlogged[i].swap(0, Relaxed));
        let points_refused_total = self.points_refused.load(Relaxed);
        if memory == 0 {
            tracing::warn!(
                at_max_series = total,
                over_rate = rate,
                bad_name = name,
                max_series,
                max_new_series_per_minute = per_minute,
                max_name_bytes = MAX_NAME_BYTES,
                points_refused_total,
                "new series refused; their points are dropped"
            );
            return;
        }
        let m = *self.memory.lock();
        tracing::warn!(
            at_max_series = total,
            over_rate = rate,
            bad_name = name,
            over_max_memory = memory,
            max_series,
            max_new_series_per_minute = per_minute,
            max_name_bytes = MAX_NAME_BYTES,
            memory_used = m.used,
            max_memory = m.limit,
            points_refused_total,
            "new series refused, {memory} because memory is past [storage] max_memory; their points are dropped, existing series keep writing"
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

    /// The log lines a closure emits (at info and above).
    fn logs(f: impl FnOnce()) -> String {
        use std::sync::Arc;
        #[derive(Clone, Default)]
        struct Buf(Arc<parking_lot::Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let writer = buf.clone();
        let sub = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(sub, f);
        let out = buf.0.lock().clone();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn past_max_memory_new_series_are_refused_and_counted_until_it_clears() {
        let c = Caps::default();
        assert!(c.memory_allows_new());
        let log = logs(|| c.set_memory_full(true, 1100 << 20, 1 << 30));
        assert!(c.memory_full());
        assert!(log.contains("past [storage] max_memory"), "{log}");
        assert!(log.contains("max_memory=1073741824"), "{log}");
        assert!(!c.memory_allows_new());
        assert!(!c.memory_allows_new());
        assert_eq!(c.refused_for(Refusal::Memory), 2);
        assert_eq!(c.refused_for(Refusal::Total), 0);
        // A second report while full says nothing new.
        assert_eq!(logs(|| c.set_memory_full(true, 1200 << 20, 1 << 30)), "");
        // A change within LOG_EVERY of the last logged one is not logged,
        // but takes effect.
        assert_eq!(logs(|| c.set_memory_full(false, 900 << 20, 1 << 30)), "");
        assert!(c.memory_allows_new());
        assert_eq!(c.refused_for(Refusal::Memory), 2);
        c.memory.lock().logged = Some(Instant::now() - LOG_EVERY);
        c.set_memory_full(true, 1100 << 20, 1 << 30);
        c.memory.lock().logged = Some(Instant::now() - LOG_EVERY);
        let log = logs(|| c.set_memory_full(false, 900 << 20, 1 << 30));
        assert!(log.contains("back under [storage] max_memory"), "{log}");
    }

    #[test]
    fn memory_refusals_are_logged_at_the_bounded_rate_naming_max_memory() {
        let c = Caps::default();
        c.set_memory_full(true, 2 << 30, 1 << 30);
        for _ in 0..3 {
            assert!(!c.memory_allows_new());
        }
        let log = logs(|| {
            c.refused(3, 10, 10);
            assert!(!c.memory_allows_new());
            c.refused(1, 10, 10);
        });
        assert_eq!(log.lines().count(), 1, "{log}");
        assert!(
            log.contains("3 because memory is past [storage] max_memory"),
            "{log}"
        );
        assert!(log.contains("over_max_memory=3"), "{log}");
        assert_eq!(c.points_refused.load(Relaxed), 4);
        // The next line, once due, carries what the bound held back.
        *c.last_log.lock() = Some(Instant::now() - LOG_EVERY);
        let log = logs(|| c.refused(0, 10, 10));
        assert!(log.contains("over_max_memory=1"), "{log}");
        // Refusals for other reasons alone keep their own line.
        *c.last_log.lock() = Some(Instant::now() - LOG_EVERY);
        c.note(Refusal::Total);
        let log = logs(|| c.refused(1, 10, 10));
        assert!(
            log.contains("at_max_series=1") && !log.contains("max_memory"),
            "{log}"
        );
    }
}
