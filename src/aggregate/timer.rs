//! Etsy's timer statistics (`lib/process_metrics.js`), computed from one
//! interval's raw samples with the same formulas and the same floating-point
//! order, so every field matches Etsy to the last bit where Etsy's arithmetic
//! allows it.
//!
//! Field names are built once from the configuration ([`TimerLayout`]), not
//! per timer per flush.

use crate::config::{BinLimit, HistogramConfig, StatsdConfig};

/// One percentile threshold's five field names, e.g. `count_90`, `mean_90`,
/// `upper_90`, `sum_90`, `sum_squares_90` (or `lower_top10` for `-10`).
#[derive(Debug, Clone)]
struct PctFields {
    pct: f64,
    names: [Option<String>; 5],
}

/// A histogram configuration with its bin names made once.
#[derive(Debug, Clone)]
struct Bins {
    metric: String,
    limits: Vec<BinLimit>,
    names: Vec<String>,
}

/// Which timer fields exist, with their Graphite names; `None` = filtered
/// out by `calculated_timer_metrics`.
#[derive(Debug, Clone)]
pub struct TimerLayout {
    pcts: Vec<PctFields>,
    std: Option<&'static str>,
    upper: Option<&'static str>,
    lower: Option<&'static str>,
    count: Option<&'static str>,
    count_ps: Option<&'static str>,
    sum: Option<&'static str>,
    sum_squares: Option<&'static str>,
    mean: Option<&'static str>,
    median: Option<&'static str>,
    histogram_enabled: bool,
    bins: Vec<Bins>,
    interval_secs: f64,
}

/// JavaScript's `String(number)`, which Etsy uses for names and values.
pub fn js_number(v: f64) -> String {
    let mut b = ryu_js::Buffer::new();
    b.format(v).to_string()
}

/// Etsy's filter key: `_(top)?\d+$` becomes `_percent` (`count_90` ->
/// `count_percent`; note `sum_squares_99_9` -> `sum_squares_99_percent`,
/// which no filter names, as in Etsy).
fn filter_key(field: &str) -> String {
    let digits = field.len() - field.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 {
        return field.to_string();
    }
    let stem = &field[..field.len() - digits];
    let stem = stem.strip_suffix("top").unwrap_or(stem);
    match stem.strip_suffix('_') {
        Some(s) => format!("{s}_percent"),
        None => field.to_string(),
    }
}

impl TimerLayout {
    pub fn new(cfg: &StatsdConfig) -> Self {
        let filter: Option<&Vec<String>> = cfg.calculated_timer_metrics.as_ref();
        let keep = |field: &str| -> bool {
            match filter {
                None => true,
                Some(list) => !list.iter().any(|f| *f == filter_key(field)),
            }
        };
        let stat = |name: &'static str| keep(name).then_some(name);
        let pcts = cfg
            .percent_threshold
            .0
            .iter()
            .map(|&pct| {
                let clean = js_number(pct).replacen('.', "_", 1).replacen('-', "top", 1);
                let bound = if pct > 0.0 { "upper" } else { "lower" };
                let names = [
                    format!("count_{clean}"),
                    format!("mean_{clean}"),
                    format!("{bound}_{clean}"),
                    format!("sum_{clean}"),
                    format!("sum_squares_{clean}"),
                ]
                .map(|n| keep(&n).then_some(n));
                PctFields { pct, names }
            })
            .collect();
        TimerLayout {
            pcts,
            std: stat("std"),
            upper: stat("upper"),
            lower: stat("lower"),
            count: stat("count"),
            count_ps: stat("count_ps"),
            sum: stat("sum"),
            sum_squares: stat("sum_squares"),
            mean: stat("mean"),
            median: stat("median"),
            histogram_enabled: keep("histogram"),
            bins: cfg.histogram.iter().map(Bins::new).collect(),
            interval_secs: cfg.flush_interval_ms() as f64 / 1000.0,
        }
    }

    /// Calls `out(field, value)` for each field of one timer, in Etsy's
    /// order. `sorted` holds the interval's samples in ascending order;
    /// `count` is the sample-rate-corrected count. Histogram bins come as
    /// `histogram.bin_N`.
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "|pct| <= 100 (Percentiles' deserializer refuses the rest), so |pct| / 100 × n rounds to 0..=n, a sample count"
    )]
    pub fn fields(&self, key: &str, sorted: &[f64], count: f64, mut out: impl FnMut(&str, f64)) {
        if sorted.is_empty() {
            // Etsy: `count = count_ps = 0`, assigned right to left, so
            // count_ps is created (and emitted) first.
            if let Some(n) = self.count_ps {
                out(n, 0.0);
            }
            if let Some(n) = self.count {
                out(n, 0.0);
            }
            return;
        }
        let n = sorted.len();
        let min = sorted[0];
        let max = sorted[n - 1];
        // Etsy's prefix sums, accumulated in the same order.
        let mut cumul = Vec::with_capacity(n);
        let mut cumul_sq = Vec::with_capacity(n);
        cumul.push(min);
        cumul_sq.push(min * min);
        for i in 1..n {
            cumul.push(sorted[i] + cumul[i - 1]);
            cumul_sq.push(sorted[i] * sorted[i] + cumul_sq[i - 1]);
        }
        let (mut sum, mut sum_sq, mut mean, mut boundary) = (min, min * min, min, max);
        for p in &self.pcts {
            let mut in_threshold = n;
            if n > 1 {
                in_threshold = (p.pct.abs() / 100.0 * n as f64).round() as usize;
                if in_threshold == 0 {
                    continue;
                }
                if p.pct > 0.0 {
                    boundary = sorted[in_threshold - 1];
                    sum = cumul[in_threshold - 1];
                    sum_sq = cumul_sq[in_threshold - 1];
                } else {
                    boundary = sorted[n - in_threshold];
                    // JS reads cumulativeValues[-1] as undefined when the top
                    // set is every sample, giving NaN; Etsy emits that NaN.
                    let before = |v: &Vec<f64>| {
                        if n - in_threshold == 0 {
                            f64::NAN
                        } else {
                            v[n - in_threshold - 1]
                        }
                    };
                    sum = cumul[n - 1] - before(&cumul);
                    sum_sq = cumul_sq[n - 1] - before(&cumul_sq);
                }
                mean = sum / in_threshold as f64;
            }
            let values = [in_threshold as f64, mean, boundary, sum, sum_sq];
            for (name, v) in p.names.iter().zip(values) {
                if let Some(name) = name {
                    out(name, v);
                }
            }
        }
        let sum = cumul[n - 1];
        let sum_sq = cumul_sq[n - 1];
        let mean = sum / n as f64;
        let mut diffs = 0.0;
        for v in sorted {
            diffs += (v - mean) * (v - mean);
        }
        let mid = n / 2;
        let median = if n % 2 == 1 {
            sorted[mid]
        } else {
            (sorted[mid - 1] + sorted[mid]) / 2.0
        };
        let fields = [
            (self.std, (diffs / n as f64).sqrt()),
            (self.upper, max),
            (self.lower, min),
            (self.count, count),
            (self.count_ps, count / self.interval_secs),
            (self.sum, sum),
            (self.sum_squares, sum_sq),
            (self.mean, mean),
            (self.median, median),
        ];
        for (name, v) in fields {
            if let Some(name) = name {
                out(name, v);
            }
        }
        if !self.histogram_enabled {
            return;
        }
        // First configuration whose metric is a substring of the key.
        let Some(bins) = self.bins.iter().find(|b| key.contains(b.metric.as_str())) else {
            return;
        };
        let mut i = 0;
        for (limit, name) in bins.limits.iter().zip(&bins.names) {
            let mut freq = 0u64;
            while i < n
                && match limit {
                    BinLimit::Inf => true,
                    BinLimit::Finite(l) => sorted[i] < *l,
                }
            {
                freq += 1;
                i += 1;
            }
            out(name, freq as f64);
        }
    }
}

impl Bins {
    fn new(h: &HistogramConfig) -> Self {
        let names = h
            .bins
            .iter()
            .map(|b| match b {
                BinLimit::Inf => "histogram.bin_inf".to_string(),
                BinLimit::Finite(x) => {
                    format!("histogram.bin_{}", js_number(*x).replacen('.', "_", 1))
                }
            })
            .collect();
        Bins {
            metric: h.metric.clone(),
            limits: h.bins.clone(),
            names,
        }
    }
}

/// Sorts samples as Etsy's numeric sort does (ascending; samples are finite).
pub fn sort_samples(samples: &mut [f64]) {
    samples.sort_unstable_by(|a, b| a.total_cmp(b));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Percentiles};

    fn layout(toml: &str) -> TimerLayout {
        TimerLayout::new(&Config::parse(toml).unwrap().statsd)
    }

    fn run(l: &TimerLayout, key: &str, samples: &[f64], count: f64) -> Vec<(String, f64)> {
        let mut s = samples.to_vec();
        sort_samples(&mut s);
        let mut out = Vec::new();
        l.fields(key, &s, count, |n, v| out.push((n.to_string(), v)));
        out
    }

    fn get(v: &[(String, f64)], name: &str) -> f64 {
        v.iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no {name} in {v:?}"))
            .1
    }

    #[test]
    fn live_run_api_latency() {
        // statsd.md §2.1: 320, 100(@0.1), 200, 150, 400 with [90, 99] and bins.
        let l = layout(
            "[statsd]\npercent_threshold = [90, 99]\nhistogram = [{ metric = \"api.latency\", bins = [100, 250, \"inf\"] }]\n",
        );
        let v = run(
            &l,
            "api.latency",
            &[320.0, 100.0, 200.0, 150.0, 400.0],
            14.0,
        );
        let names: Vec<&str> = v.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "count_90",
                "mean_90",
                "upper_90",
                "sum_90",
                "sum_squares_90",
                "count_99",
                "mean_99",
                "upper_99",
                "sum_99",
                "sum_squares_99",
                "std",
                "upper",
                "lower",
                "count",
                "count_ps",
                "sum",
                "sum_squares",
                "mean",
                "median",
                "histogram.bin_100",
                "histogram.bin_250",
                "histogram.bin_inf"
            ]
        );
        assert_eq!(get(&v, "mean_90"), 234.0);
        assert_eq!(get(&v, "upper_99"), 400.0);
        assert_eq!(get(&v, "sum_squares"), 334900.0);
        assert_eq!(get(&v, "std"), 110.56219968868203);
        assert_eq!(get(&v, "count"), 14.0);
        assert_eq!(get(&v, "count_ps"), 1.4);
        assert_eq!(get(&v, "median"), 200.0);
        assert_eq!(get(&v, "histogram.bin_100"), 0.0);
        assert_eq!(get(&v, "histogram.bin_250"), 3.0);
        assert_eq!(get(&v, "histogram.bin_inf"), 2.0);
    }

    #[test]
    fn live_run_edge_percentiles() {
        // statsd.md §2.4 config C: [50, 99.9, -20] over 1..10.
        let l = layout("[statsd]\npercent_threshold = [50, 99.9, -20]\n");
        let samples: Vec<f64> = (1..=10).map(f64::from).collect();
        let v = run(&l, "t", &samples, 10.0);
        assert_eq!(get(&v, "count_50"), 5.0);
        assert_eq!(get(&v, "mean_50"), 3.0);
        assert_eq!(get(&v, "upper_50"), 5.0);
        assert_eq!(get(&v, "sum_squares_50"), 55.0);
        assert_eq!(get(&v, "count_99_9"), 10.0);
        assert_eq!(get(&v, "mean_99_9"), 5.5);
        assert_eq!(get(&v, "count_top20"), 2.0);
        assert_eq!(get(&v, "mean_top20"), 9.5);
        assert_eq!(get(&v, "lower_top20"), 9.0);
        assert_eq!(get(&v, "sum_top20"), 19.0);
        assert_eq!(get(&v, "sum_squares_top20"), 181.0);
        assert_eq!(get(&v, "std"), 2.8722813232690143);
        assert_eq!(get(&v, "median"), 5.5);
        // a single sample: every percentile is that sample
        let v = run(&l, "t.sci", &[100.0], 1.0);
        assert_eq!(get(&v, "upper_99_9"), 100.0);
        assert_eq!(get(&v, "lower_top20"), 100.0);
        assert_eq!(get(&v, "count_50"), 1.0);
    }

    #[test]
    fn percentile_rounding_to_zero_skips_the_set() {
        let l = layout("[statsd]\npercent_threshold = [10]\n");
        let v = run(&l, "t", &[1.0, 2.0, 3.0, 4.0], 4.0);
        assert!(v.iter().all(|(n, _)| !n.ends_with("_10")), "{v:?}");
        let v = run(&l, "t", &[1.0; 5], 5.0);
        assert_eq!(get(&v, "count_10"), 1.0, "round(0.5) is 1 in JS");
    }

    #[test]
    fn idle_timer_is_count_ps_then_count() {
        let l = layout("");
        assert_eq!(
            run(&l, "t", &[], 0.0),
            vec![("count_ps".to_string(), 0.0), ("count".to_string(), 0.0)]
        );
    }

    #[test]
    fn calculated_timer_metrics_filters_like_etsy() {
        let l = layout("[statsd]\ncalculated_timer_metrics = [\"count\", \"upper_percent\", \"histogram\"]\npercent_threshold = [90, 99.9]\nhistogram = [{ metric = \"t\", bins = [1] }]\n");
        let v = run(&l, "t", &[1.0, 2.0], 2.0);
        let names: Vec<&str> = v.iter().map(|(n, _)| n.as_str()).collect();
        assert!(!names.contains(&"count"));
        assert!(!names.contains(&"upper_90"));
        assert!(!names.iter().any(|n| n.starts_with("histogram")));
        assert!(
            names.contains(&"upper_99_9"),
            "Etsy's filter misses _99_9: {names:?}"
        );
        assert!(names.contains(&"mean_90"));
    }

    #[test]
    fn bins_match_by_substring_first_wins_and_drop_overflow() {
        let l = layout("[statsd]\nhistogram = [{ metric = \"foo\", bins = [] }, { metric = \"\", bins = [0.5, 2] }]\n");
        // "foo" matches first and has no bins: no histogram at all.
        let v = run(&l, "a.foo", &[1.0], 1.0);
        assert!(!v.iter().any(|(n, _)| n.starts_with("histogram")));
        let v = run(&l, "bar", &[0.1, 1.0, 3.0], 3.0);
        assert_eq!(get(&v, "histogram.bin_0_5"), 1.0);
        assert_eq!(get(&v, "histogram.bin_2"), 1.0);
        assert!(!v.iter().any(|(n, _)| n == "histogram.bin_inf"));
    }

    #[test]
    fn top_percentile_covering_all_samples_is_nan_as_in_etsy() {
        let mut cfg = Config::parse("").unwrap().statsd;
        cfg.percent_threshold = Percentiles(vec![-100.0]);
        let l = TimerLayout::new(&cfg);
        let v = run(&l, "t", &[1.0, 2.0], 2.0);
        assert!(get(&v, "sum_top100").is_nan());
        assert_eq!(get(&v, "lower_top100"), 1.0);
    }

    #[test]
    fn js_number_formatting() {
        assert_eq!(js_number(99.9), "99.9");
        assert_eq!(js_number(90.0), "90");
        assert_eq!(js_number(-10.0), "-10");
        assert_eq!(js_number(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(js_number(1e21), "1e+21");
        assert_eq!(js_number(1.4), "1.4");
    }
}
