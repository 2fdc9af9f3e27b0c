//! How long the render family's requests take and how they end: counted
//! by the HTTP layer, read by `/metrics` and by the daemon's own series.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds (seconds) of the render latency histogram's buckets.
pub const RENDER_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 5.0,
];

/// Latencies a flush interval keeps for its percentiles at most: past
/// it, new ones overwrite old ones in turn (16 KiB; a flush of 10 s at
/// 6,500 renders a second fills it).
pub const WINDOW_SAMPLES: usize = 4096;

/// Render latencies, as a Prometheus histogram; the responses of the
/// render family (`/render`, `/metrics/find`, `/metrics/expand`) by status
/// class; and the latencies of the current flush interval, for the
/// internal series' p50, p99 and max.
#[derive(Debug, Default)]
pub struct RenderLatency {
    buckets: [AtomicU64; RENDER_BUCKETS.len()],
    count: AtomicU64,
    micros: AtomicU64,
    /// 1xx .. 5xx.
    classes: [AtomicU64; 5],
    window: parking_lot::Mutex<Window>,
}

#[derive(Debug, Default)]
struct Window {
    micros: Vec<u32>,
    seen: usize,
    max: u32,
}

/// One interval's render latencies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowStats {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub count: usize,
}

impl RenderLatency {
    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        for (i, le) in RENDER_BUCKETS.iter().enumerate() {
            if s <= *le {
                self.buckets[i].fetch_add(1, Relaxed);
            }
        }
        self.count.fetch_add(1, Relaxed);
        self.micros
            .fetch_add(u64::try_from(d.as_micros()).unwrap_or(u64::MAX), Relaxed);
        let us = u32::try_from(d.as_micros()).unwrap_or(u32::MAX);
        let mut w = self.window.lock();
        if w.micros.len() < WINDOW_SAMPLES {
            w.micros.push(us);
        } else {
            let at = w.seen % WINDOW_SAMPLES;
            w.micros[at] = us;
        }
        w.seen += 1;
        w.max = w.max.max(us);
    }

    /// A response of the render family, by its status.
    /// Renders at or under each of [`RENDER_BUCKETS`] (cumulative, as
    /// Prometheus wants), all of them, and their total time in seconds.
    pub fn histogram(&self) -> ([u64; RENDER_BUCKETS.len()], u64, f64) {
        (
            std::array::from_fn(|i| self.buckets[i].load(Relaxed)),
            self.count.load(Relaxed),
            self.micros.load(Relaxed) as f64 / 1e6,
        )
    }

    pub fn status(&self, code: u16) {
        if let Some(c) = self.classes.get(usize::from(code / 100).wrapping_sub(1)) {
            c.fetch_add(1, Relaxed);
        }
    }

    /// Responses so far, in all.
    pub fn requests(&self) -> u64 {
        self.by_class().iter().sum()
    }

    /// Responses so far by status class, 1xx first.
    pub fn by_class(&self) -> [u64; 5] {
        std::array::from_fn(|i| self.classes[i].load(Relaxed))
    }

    /// The interval's percentiles (nearest rank) and maximum, and a new
    /// interval begun; `None` when there was no render.
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "p is 0.5 or 0.99 and v is not empty, so p × len rounds up to 1..=len, a valid rank, and the clamp keeps it there"
    )]
    pub fn take_window(&self) -> Option<WindowStats> {
        let w = std::mem::take(&mut *self.window.lock());
        let mut v = w.micros;
        if v.is_empty() {
            return None;
        }
        v.sort_unstable();
        let rank = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        Some(WindowStats {
            p50_ms: f64::from(rank(0.5)) / 1000.0,
            p99_ms: f64::from(rank(0.99)) / 1000.0,
            max_ms: f64::from(w.max) / 1000.0,
            count: w.seen,
        })
    }
}
