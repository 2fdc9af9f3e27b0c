//! A series as graphite-web's functions see it: a name, tags, a regular
//! time grid and its values (NaN for Python's None).

use std::collections::BTreeMap;

/// How a series is consolidated into fewer points (`consolidateBy`, and
/// `maxDataPoints`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consolidate {
    Average,
    Sum,
    Min,
    Max,
    First,
    Last,
    Median,
    /// graphite-web's `avg_zero`: gaps count as zeros.
    AvgZero,
}

impl Consolidate {
    pub fn parse(s: &str) -> Option<Consolidate> {
        Some(match s {
            "average" | "avg" => Consolidate::Average,
            "sum" => Consolidate::Sum,
            "min" => Consolidate::Min,
            "max" => Consolidate::Max,
            "first" => Consolidate::First,
            "last" => Consolidate::Last,
            "median" => Consolidate::Median,
            "avg_zero" => Consolidate::AvgZero,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Consolidate::Average => "average",
            Consolidate::Sum => "sum",
            Consolidate::Min => "min",
            Consolidate::Max => "max",
            Consolidate::First => "first",
            Consolidate::Last => "last",
            Consolidate::Median => "median",
            Consolidate::AvgZero => "avg_zero",
        }
    }

    /// One bucket of a series consolidated `per` points to one (graphite-web's
    /// `__consolidatingGenerator`): the known values count against `per`,
    /// also in a last bucket that holds fewer points.
    pub fn apply_bucket(self, values: &[f64], per: usize, xff: f64) -> f64 {
        let known = values.iter().filter(|v| !v.is_nan()).count();
        if known == 0 || (known as f64 / per.max(1) as f64) < xff {
            return f64::NAN;
        }
        self.of_known(values, known)
    }

    /// graphite-web's `TimeSeries.__consolidate`: None when nothing is
    /// known or fewer than `xff` of the values are.
    pub fn apply(self, values: &[f64], xff: f64) -> f64 {
        // No copy of the known values but for the median: json output
        // consolidates a million buckets per 1,000-series render. The sums
        // run over the known values in order, as they did over a copy.
        let n = values.iter().filter(|v| !v.is_nan()).count();
        if n == 0 || (n as f64 / values.len() as f64) < xff {
            return f64::NAN;
        }
        self.of_known(values, n)
    }

    /// The consolidated value of `values`, `n` (> 0) of which are known.
    fn of_known(self, values: &[f64], n: usize) -> f64 {
        let known = || values.iter().copied().filter(|v| !v.is_nan());
        match self {
            Consolidate::Average => known().sum::<f64>() / n as f64,
            Consolidate::AvgZero => known().sum::<f64>() / values.len() as f64,
            Consolidate::Sum => known().sum(),
            Consolidate::Min => known().fold(f64::INFINITY, f64::min),
            Consolidate::Max => known().fold(f64::NEG_INFINITY, f64::max),
            Consolidate::First => known().next().unwrap_or(f64::NAN),
            Consolidate::Last => known().next_back().unwrap_or(f64::NAN),
            Consolidate::Median => {
                let mut v: Vec<f64> = known().collect();
                v.sort_by(f64::total_cmp);
                // Python's statistics-free median of graphite: the middle
                // value, or the mean of the two middle values.
                if n % 2 == 1 {
                    v[n / 2]
                } else {
                    (v[n / 2 - 1] + v[n / 2]) / 2.0
                }
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    /// The glob or expression that produced it (Graphite's pathExpression).
    pub path_expression: String,
    pub tags: BTreeMap<String, String>,
    pub start: i64,
    pub end: i64,
    pub step: i64,
    pub values: Vec<f64>,
    pub consolidate: Consolidate,
    pub xff: f64,
    // --- Presentation options (graphite-web's `series.options` and
    // `series.color`), set by render functions and read only by the image
    // renderer; json/csv/raw output ignores them.
    /// `drawAsInfinite()`: each point whose value is above zero is drawn
    /// as a vertical line from the bottom to the top of the plot area
    /// (zero, negative and null draw nothing); such a series is left out
    /// of the y-axis range and of area stacking. The values themselves are
    /// unchanged (json shows them as they are).
    pub draw_as_infinite: bool,
    /// `stacked()`: the values are already running totals of a stack, to
    /// be drawn as filled areas on top of each other.
    pub stacked: bool,
    /// `threshold(..., color)` (and graphite's `color()`): the line colour
    /// as the user wrote it (a colour name or hex code), if any.
    pub color: Option<String>,
}

impl Series {
    pub fn new(name: &str, start: i64, end: i64, step: i64, values: Vec<f64>) -> Series {
        Series {
            name: name.to_string(),
            path_expression: name.to_string(),
            tags: tags_of(name),
            start,
            end,
            step,
            values,
            consolidate: Consolidate::Average,
            xff: 0.0,
            draw_as_infinite: false,
            stacked: false,
            color: None,
        }
    }
}

/// graphite-web's test for a name a function built (`^[a-z]+[(].+[)]$`,
/// any case): such names are never parsed for tags.
fn looks_like_call(name: &str) -> bool {
    let letters = name.bytes().take_while(u8::is_ascii_alphabetic).count();
    letters > 0
        && name.as_bytes().get(letters) == Some(&b'(')
        && name.ends_with(')')
        && name.len() >= letters + 3
}

/// The tags graphite-web gives a series name: `name;k=v` parsed, or just
/// `{"name": name}` (always so for a name like `sumSeries(a.b)`).
pub fn tags_of(name: &str) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::new();
    let parsed = if looks_like_call(name) {
        None
    } else {
        rollupd_store::index::parse_tagged(name)
    };
    match parsed {
        Some((_, kv)) => {
            for (k, v) in kv {
                tags.insert(k.to_string(), v.to_string());
            }
        }
        None => {
            tags.insert("name".to_string(), name.to_string());
        }
    }
    tags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_are_not_parsed_for_tags() {
        assert!(looks_like_call("sumSeries(a.b)"));
        assert!(looks_like_call("asPercent(disk.used;dc=east,5)"));
        assert!(!looks_like_call("a()"));
        assert!(!looks_like_call("100.0"));
        assert!(!looks_like_call("disk.used;dc=east"));
        let t = tags_of("sumSeries(disk.used;dc=east)");
        assert_eq!(t.len(), 1);
        assert_eq!(t["name"], "sumSeries(disk.used;dc=east)");
        let t = tags_of("disk.used;dc=east");
        assert_eq!(
            (t["name"].as_str(), t["dc"].as_str()),
            ("disk.used", "east")
        );
    }

    #[test]
    fn avg_zero_counts_gaps_as_zeros() {
        let n = f64::NAN;
        assert_eq!(Consolidate::AvgZero.apply(&[4.0, n, 2.0, n], 0.0), 1.5);
        assert!(Consolidate::AvgZero.apply(&[n, n], 0.0).is_nan());
        assert_eq!(Consolidate::parse("avg_zero"), Some(Consolidate::AvgZero));
    }
}
