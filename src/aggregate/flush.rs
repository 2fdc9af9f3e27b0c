//! What one flush hands downstream: an immutable picture of the interval.

use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::telemetry::Snapshot;

/// Timer samples are milliseconds by convention; histograms record them in
/// microseconds so sub-millisecond timings keep three significant digits.
pub const HISTOGRAM_UNITS_PER_MS: f64 = 1000.0;
/// Significant decimal digits kept by each timer histogram (0.1% error).
pub const HISTOGRAM_SIGFIGS: u8 = 3;

/// The state of one interval, taken by [`super::Aggregator::flush`].
#[derive(Debug, Default)]
pub struct Flush {
    /// Unix seconds (Etsy: `Math.round(Date.now() / 1000)`).
    pub timestamp: i64,
    /// The configured interval (Etsy divides rates by it, not by the
    /// measured time).
    pub interval: Duration,
    /// Counter sums, sample-rate corrected; the three internal counters first.
    pub counters: Vec<(Arc<str>, f64)>,
    pub timers: Vec<TimerFlush>,
    pub gauges: Vec<(Arc<str>, f64)>,
    /// Distinct members per set.
    pub sets: Vec<(Arc<str>, u64)>,
    /// rollupd's own counters over the interval.
    pub internal: Snapshot,
    /// How long taking the state took.
    pub aggregation_time: Duration,
}

/// One timer's interval.
#[derive(Debug)]
pub struct TimerFlush {
    pub key: Arc<str>,
    /// Raw samples, ascending (empty for an idle timer that is kept).
    pub samples: Vec<f64>,
    /// Sample-rate-corrected count.
    pub count: f64,
}

impl TimerFlush {
    /// The interval's samples as a mergeable histogram (microseconds), so
    /// coarser resolutions can give true percentiles of all samples in a
    /// window; `None` for an idle timer.
    ///
    /// Derived on demand from the sorted samples, which determine it
    /// exactly. Building one for every timer at every flush is what the
    /// flush must not do: a dense hdrhistogram covering milliseconds to
    /// seconds at three significant digits is about 200 KB, and 100,000
    /// timers made a flush take ten seconds.
    pub fn histogram(&self) -> Option<Histogram<u64>> {
        if self.samples.is_empty() {
            None
        } else {
            histogram_of(&self.samples)
        }
    }
}

impl Flush {
    /// Series the flush holds (Etsy's `numStats`).
    pub fn num_stats(&self) -> usize {
        self.counters.len() + self.timers.len() + self.gauges.len() + self.sets.len()
    }
}

/// Builds the histogram of one interval's samples (ms -> µs, rounded).
pub fn histogram_of(samples: &[f64]) -> Option<Histogram<u64>> {
    let mut h = Histogram::<u64>::new(HISTOGRAM_SIGFIGS).ok()?;
    for &v in samples {
        // Samples are finite and >= 0, but above ~1.8e305 ms the product
        // overflows to +inf: clamp it like any other too-large value.
        let units = (v * HISTOGRAM_UNITS_PER_MS).round();
        let units = if units >= 0.0 {
            units.min(u64::MAX as f64 / 4.0) as u64
        } else {
            0
        };
        // auto-resizing histograms accept any u64
        let _ = h.record(units);
    }
    Some(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_keeps_percentiles_within_its_precision() {
        let samples: Vec<f64> = (1..=1000).map(|i| i as f64 * 0.5).collect();
        let h = histogram_of(&samples).unwrap();
        assert_eq!(h.len(), 1000);
        let p99 = h.value_at_quantile(0.99) as f64 / HISTOGRAM_UNITS_PER_MS;
        assert!((p99 - 495.0).abs() / 495.0 < 0.001, "{p99}");
        let max = h.max() as f64 / HISTOGRAM_UNITS_PER_MS;
        assert!((max - 500.0).abs() / 500.0 < 0.001, "{max}");
    }
}
