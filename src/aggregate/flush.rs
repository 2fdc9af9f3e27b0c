//! What one flush hands downstream: an immutable picture of the interval.

use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::telemetry::Snapshot;

// The histogram's units are the store's format (`store::hist`); the
// aggregator records into it.
pub use crate::store::hist::{histogram_of, HISTOGRAM_SIGFIGS, HISTOGRAM_UNITS_PER_MS};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_keeps_percentiles_within_its_precision() {
        let samples: Vec<f64> = (1..=1000).map(|i| f64::from(i) * 0.5).collect();
        let h = histogram_of(&samples).unwrap();
        assert_eq!(h.len(), 1000);
        let p99 = h.value_at_quantile(0.99) as f64 / HISTOGRAM_UNITS_PER_MS;
        assert!((p99 - 495.0).abs() / 495.0 < 0.001, "{p99}");
        let max = h.max() as f64 / HISTOGRAM_UNITS_PER_MS;
        assert!((max - 500.0).abs() / 500.0 < 0.001, "{max}");
    }
}
