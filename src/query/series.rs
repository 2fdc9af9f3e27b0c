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
        self.apply(values, 0.0)
    }

    /// graphite-web's `TimeSeries.__consolidate`: None when nothing is
    /// known or fewer than `xff` of the values are.
    pub fn apply(self, values: &[f64], xff: f64) -> f64 {
        let usable: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
        if usable.is_empty() || (usable.len() as f64 / values.len() as f64) < xff {
            return f64::NAN;
        }
        match self {
            Consolidate::Average => usable.iter().sum::<f64>() / usable.len() as f64,
            Consolidate::Sum => usable.iter().sum(),
            Consolidate::Min => usable.iter().copied().fold(f64::INFINITY, f64::min),
            Consolidate::Max => usable.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            Consolidate::First => usable[0],
            Consolidate::Last => usable[usable.len() - 1],
            Consolidate::Median => {
                let mut v = usable;
                v.sort_by(f64::total_cmp);
                let n = v.len();
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
        }
    }
}

/// The tags graphite-web gives a series name: `name;k=v` parsed, or just
/// `{"name": name}`.
pub fn tags_of(name: &str) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::new();
    match crate::store::index::parse_tagged(name) {
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
