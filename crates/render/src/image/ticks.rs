//! The value axis: a round step and round limits that cover the data
//! (graphite-web's linear axis: steps of 1, 2 or 5 × 10^n, 4 to 6
//! divisions, the one that wastes the least room), and labels with unit
//! suffixes (`1.5 k`, `20.0 M`) written the way graphite writes them.

/// Tolerance for rounding errors when snapping to step multiples.
const EPSILON: f64 = 0.0001;

/// How big numbers are shortened on the axis (`yUnitSystem`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitSystem {
    Si,
    Binary,
    Sec,
    Msec,
    None,
}

impl UnitSystem {
    pub fn parse(s: &str) -> Option<UnitSystem> {
        Some(match s.to_ascii_lowercase().as_str() {
            "si" => UnitSystem::Si,
            "binary" => UnitSystem::Binary,
            "sec" => UnitSystem::Sec,
            "msec" => UnitSystem::Msec,
            "none" => UnitSystem::None,
            _ => return None,
        })
    }

    fn prefixes(self) -> &'static [(&'static str, f64)] {
        const K: f64 = 1024.0;
        const DAY: f64 = 86_400.0;
        match self {
            UnitSystem::Si => &[("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)],
            UnitSystem::Binary => &[
                ("Pi", K * K * K * K * K),
                ("Ti", K * K * K * K),
                ("Gi", K * K * K),
                ("Mi", K * K),
                ("Ki", K),
            ],
            UnitSystem::Sec => &[
                ("Y", DAY * 365.0),
                ("M", DAY * 30.0),
                ("D", DAY),
                ("H", 3600.0),
                ("m", 60.0),
            ],
            UnitSystem::Msec => &[
                ("Y", DAY * 365.0 * 1000.0),
                ("M", DAY * 30.0 * 1000.0),
                ("D", DAY * 1000.0),
                ("H", 3_600_000.0),
                ("m", 60_000.0),
                ("s", 1000.0),
            ],
            UnitSystem::None => &[],
        }
    }
}

/// The top of the axis as asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AxisMax {
    /// Rounded up from the data.
    Auto,
    /// Exactly the data's maximum (`yMax=max`).
    Extremum,
    Value(f64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct AxisSettings {
    pub min: Option<f64>,
    pub max: AxisMax,
    /// `yLimit`: the top is never rounded past this.
    pub limit: Option<f64>,
    pub step: Option<f64>,
    pub divisors: Vec<u32>,
    pub units: UnitSystem,
}

impl Default for AxisSettings {
    fn default() -> Self {
        AxisSettings {
            min: None,
            max: AxisMax::Auto,
            limit: None,
            step: None,
            divisors: vec![4, 5, 6],
            units: UnitSystem::Si,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Data,
    Min,
    Max,
    Limit,
    Extremum,
}

/// The finished axis.
#[derive(Debug, Clone, PartialEq)]
pub struct YAxis {
    pub bottom: f64,
    pub top: f64,
    pub step: f64,
    /// Label values, bottom up, and their text.
    pub labels: Vec<(f64, String)>,
}

impl YAxis {
    /// The values that map to the bottom and the top of the plot: the
    /// lowest and highest labels (graphite maps those, not bottom/top).
    pub fn range(&self) -> (f64, f64) {
        match (self.labels.first(), self.labels.last()) {
            (Some(lo), Some(hi)) if hi.0 > lo.0 => (lo.0, hi.0),
            _ => (self.bottom, self.top),
        }
    }
}

struct Ticks {
    min: f64,
    min_source: Source,
    max: f64,
    max_source: Source,
    limit: Option<f64>,
    step: f64,
    units: UnitSystem,
}

fn choose_delta(x: f64) -> f64 {
    if x.abs() < 1.0e-9 {
        1.0
    } else {
        0.1 * x.abs()
    }
}

impl Ticks {
    fn apply_settings(&mut self, s: &AxisSettings) {
        if let Some(m) = s.min.filter(|m| m.is_finite()) {
            self.min_source = Source::Min;
            self.min = m;
        }
        match s.max {
            AxisMax::Auto => {}
            AxisMax::Extremum => self.max_source = Source::Extremum,
            AxisMax::Value(m) if m.is_finite() => {
                self.max_source = Source::Max;
                self.max = m;
            }
            AxisMax::Value(_) => {}
        }
        self.limit = match s.limit.filter(|l| !l.is_nan()) {
            Some(l) if l < self.max => {
                self.max = l;
                self.max_source = Source::Limit;
                None
            }
            Some(l) if l.is_infinite() => None,
            other => other,
        };
        self.reconcile();
    }

    /// Makes `min < max`, moving whichever end the user did not fix.
    fn reconcile(&mut self) {
        if self.min < self.max {
            return;
        }
        let min_fixed = self.min_source == Source::Min;
        let max_fixed = matches!(self.max_source, Source::Max | Source::Limit);
        match (min_fixed, max_fixed) {
            // Both fixed the wrong way round (the params check refuses
            // this up front; a limit below yMin lands here): widen up.
            (true, true) | (true, false) => self.max = self.min + choose_delta(self.min),
            (false, true) => self.min = self.max - choose_delta(self.max),
            (false, false) => {
                let delta = choose_delta(self.min.abs().max(self.max.abs()));
                let mid = (self.min + self.max) / 2.0;
                self.min = mid - delta;
                self.max = mid + delta;
            }
        }
    }

    #[expect(
        clippy::cast_possible_truncation,
        reason = "the log of a finite positive f64 is within ±1100; the saturating `as` \
                  is the intended reading of a zero or infinite min_step (i32::MIN or \
                  i32::MAX, the candidates then 0 or inf, cut by the caller's take(400))"
    )]
    fn candidate_steps(min_step: f64, binary: bool) -> impl Iterator<Item = f64> {
        let (base, mantissas): (f64, &'static [f64]) = if binary {
            (2.0, &[1.0])
        } else {
            (10.0, &[1.0, 2.0, 5.0])
        };
        let mut exponent = (min_step.log(base) - EPSILON).floor() as i32;
        std::iter::from_fn(move || {
            let m = base.powi(exponent);
            exponent += 1;
            Some(mantissas.iter().map(move |k| k * m))
        })
        .flatten()
        .filter(move |v| *v >= min_step * (1.0 - EPSILON))
    }

    /// Whitespace outside the data when the axis has `divisor` steps of
    /// `step`, or `None` when that cannot cover the data.
    fn slop(&self, step: f64, divisor: u32) -> Option<f64> {
        let bottom = step * (self.min / step + EPSILON).floor();
        let top = bottom + step * f64::from(divisor);
        if top >= self.max - EPSILON * step {
            Some((top - self.max).max(self.min - bottom))
        } else {
            None
        }
    }

    fn choose_step(&mut self, divisors: &[u32], binary: bool) {
        if self.min == self.max {
            if self.min == 0.0 {
                self.max = 1.0;
            } else if self.min < 0.0 {
                self.min *= 1.1;
                self.max *= 0.9;
            } else {
                self.min *= 0.9;
                self.max *= 1.1;
            }
        }
        let variance = self.max - self.min;
        let most = f64::from(divisors.iter().copied().max().unwrap_or(6).max(1));
        let least = f64::from(divisors.iter().copied().min().unwrap_or(4).max(1));
        let mut best: Option<(f64, f64)> = None;
        for step in Self::candidate_steps(variance / most, binary).take(400) {
            if let Some((slop, _)) = best {
                if step * least >= 2.0 * slop + variance {
                    break;
                }
            }
            for d in divisors {
                if let Some(s) = self.slop(step, *d) {
                    if best.is_none_or(|(b, _)| s < b) {
                        best = Some((s, step));
                    }
                }
            }
        }
        self.step = best.map_or(variance / most, |(_, step)| step);
    }

    fn limits(&self) -> (f64, f64) {
        let bottom = if self.min_source == Source::Data {
            self.step * (self.min / self.step + EPSILON).floor()
        } else {
            self.min
        };
        let mut top = if self.max_source == Source::Data {
            let t = self.step * (self.max / self.step - EPSILON).ceil();
            match self.limit {
                Some(l) if t > l + EPSILON * self.step => l,
                _ => t,
            }
        } else {
            self.max
        };
        if top == bottom {
            top += 1.0;
        }
        (bottom, top)
    }

    fn label(&self, value: f64, span: f64) -> String {
        let (v, prefix) = format_units(value, self.step, self.units);
        let (span_v, span_prefix) = format_units(span, self.step, self.units);
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix} ")
        };
        if v < 0.1 {
            format!("{} {prefix}", fmt_g(v))
        } else if v < 1.0 {
            format!("{v:.2} {prefix}")
        } else if span_v > 10.0 || span_prefix != prefix || span_v > 3.0 {
            // graphite compares the bare span prefix with the spaced label
            // prefix, so any prefix lands here.
            format!("{v:.1} {prefix}")
        } else if span_v > 0.1 {
            format!("{v:.2} {prefix}")
        } else {
            format!("{} {prefix}", fmt_g(v))
        }
    }
}

/// Builds the axis for data spanning `data_min..=data_max`.
pub fn y_axis(data_min: f64, data_max: f64, s: &AxisSettings) -> YAxis {
    let mut t = Ticks {
        min: data_min,
        min_source: Source::Data,
        max: data_max,
        max_source: Source::Data,
        limit: None,
        step: 1.0,
        units: s.units,
    };
    t.apply_settings(s);
    let binary = s.units == UnitSystem::Binary;
    match s.step.filter(|st| st.is_finite() && *st > 0.0) {
        Some(st) => t.step = st,
        None => t.choose_step(&s.divisors, binary),
    }
    let (mut bottom, mut top) = t.limits();
    if top - bottom > 1000.0 * t.step {
        // A user step far too small for the range: pick one that is sane.
        t.choose_step(&[4, 5, 6], binary);
        (bottom, top) = t.limits();
    }
    let span = top - bottom;
    let start = t.step * (bottom / t.step - EPSILON).ceil();
    let mut labels = Vec::new();
    for i in 0..=1000 {
        let v = start + f64::from(i) * t.step;
        if v > top + EPSILON * t.step {
            break;
        }
        labels.push((v, t.label(v, span)));
    }
    YAxis {
        bottom,
        top,
        step: t.step,
        labels,
    }
}

/// graphite's `format_units`: `v` in the biggest unit that both `v` and
/// the axis step reach, with that unit's prefix.
pub fn format_units(v: f64, step: f64, units: UnitSystem) -> (f64, &'static str) {
    for (prefix, size) in units.prefixes() {
        if v.abs() >= *size && step >= *size {
            let mut v2 = v / size;
            if v2 - v2.floor() < 1e-11 && v > 1.0 {
                v2 = v2.floor();
            }
            return (v2, prefix);
        }
    }
    if v - v.floor() < 1e-11 && v > 1.0 {
        return (v.floor(), "");
    }
    (v, "")
}

/// Python's `"%g" % v`: six significant digits, no trailing zeros,
/// exponent form outside 1e-4..1e6.
pub fn fmt_g(v: f64) -> String {
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    if !v.is_finite() {
        return if v.is_nan() {
            "nan".into()
        } else if v > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    let sci = format!("{v:.5e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let strip = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if (-4..6).contains(&exp) {
        let decimals = usize::try_from(5 - exp).unwrap_or(0);
        strip(&format!("{v:.decimals$}"))
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", strip(mantissa), exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn axis(lo: f64, hi: f64) -> YAxis {
        y_axis(lo, hi, &AxisSettings::default())
    }

    fn texts(a: &YAxis) -> Vec<&str> {
        a.labels.iter().map(|(_, t)| t.as_str()).collect()
    }

    #[test]
    fn python_g() {
        assert_eq!(fmt_g(0.05), "0.05");
        assert_eq!(fmt_g(-20.0), "-20");
        assert_eq!(fmt_g(1234567.0), "1.23457e+06");
        assert_eq!(fmt_g(0.00001), "1e-05");
        assert_eq!(fmt_g(0.0), "0");
        assert_eq!(fmt_g(2.5), "2.5");
    }

    #[test]
    fn round_steps_that_waste_least() {
        // 0..95: step 20 with 5 divisions wastes 5; 25 is not a candidate.
        let a = axis(0.0, 95.0);
        assert_eq!(a.step, 20.0);
        assert_eq!((a.bottom, a.top), (0.0, 100.0));
        assert_eq!(
            texts(&a),
            ["0 ", "20.0 ", "40.0 ", "60.0 ", "80.0 ", "100.0 "]
        );
        // 3..7 → step 1, labels 3..7 with two decimals (span 4 > 3 → .1f).
        let a = axis(3.0, 7.0);
        assert_eq!(a.step, 1.0);
        assert_eq!(texts(&a), ["3.0 ", "4.0 ", "5.0 ", "6.0 ", "7.0 "]);
    }

    #[test]
    fn unit_suffixes() {
        // graphite picks the prefix by the step too: a 500 k step keeps
        // "1000.0 k" rather than switching to M.
        let a = axis(0.0, 2_400_000.0);
        assert_eq!(a.step, 500_000.0);
        assert_eq!(
            texts(&a),
            [
                "0 ",
                "500.0 k ",
                "1000.0 k ",
                "1500.0 k ",
                "2000.0 k ",
                "2500.0 k "
            ]
        );
        let a = axis(0.0, 100_000.0);
        assert_eq!(texts(&a)[1], "20.0 k ");
        // Binary steps are powers of two.
        let a = y_axis(
            0.0,
            3.0 * 1024.0 * 1024.0,
            &AxisSettings {
                units: UnitSystem::Binary,
                ..Default::default()
            },
        );
        assert_eq!(a.step, 524_288.0);
        assert_eq!(texts(&a)[1], "512.0 Ki ");
        assert_eq!(a.labels.len(), 7);
    }

    #[test]
    fn small_and_flat_data() {
        // A flat line at 5: 4.4..5.6 by 0.2.
        let a = axis(5.0, 5.0);
        assert_eq!(a.step, 0.2);
        assert_eq!(texts(&a)[0], "4.40 ");
        assert_eq!(a.labels.len(), 7);
        // All zeros: -1..1 by 0.5.
        let a = axis(0.0, 0.0);
        assert_eq!((a.bottom, a.top, a.step), (-1.0, 1.0, 0.5));
        assert_eq!(texts(&a), ["-1 ", "-0.5 ", "0 ", "0.50 ", "1.00 "]);
        let a = axis(0.0, 1.0);
        assert_eq!(
            texts(&a),
            ["0 ", "0.20 ", "0.40 ", "0.60 ", "0.80 ", "1.00 "]
        );
    }

    #[test]
    fn user_limits() {
        let a = y_axis(
            10.0,
            95.0,
            &AxisSettings {
                min: Some(0.0),
                max: AxisMax::Value(200.0),
                ..Default::default()
            },
        );
        assert_eq!((a.bottom, a.top), (0.0, 200.0));
        assert_eq!(a.range(), (0.0, 200.0));
        assert_eq!(texts(&a), ["0 ", "50.0 ", "100.0 ", "150.0 ", "200.0 "]);
        let a = y_axis(
            10.0,
            95.0,
            &AxisSettings {
                limit: Some(50.0),
                ..Default::default()
            },
        );
        assert_eq!((a.bottom, a.top, a.step), (10.0, 50.0, 10.0));
        let a = y_axis(
            0.0,
            95.0,
            &AxisSettings {
                max: AxisMax::Extremum,
                ..Default::default()
            },
        );
        assert_eq!(a.top, 95.0);
        // The labels stop at the last step below the top.
        assert_eq!(a.labels.last().unwrap().1, "80.0 ");
    }

    #[test]
    fn negative_values() {
        let a = axis(-40.0, 35.0);
        assert_eq!(texts(&a), ["-40 ", "-20 ", "0 ", "20.0 ", "40.0 "]);
    }
}
