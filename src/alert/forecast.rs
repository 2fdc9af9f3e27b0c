//! Forecast rules: a least-squares line over the window, and when it
//! crosses the threshold. The fit's R² and the history it rests on are
//! reported with every verdict, and a poor or short fit refuses to fire
//! and says so (Bosun's `forecastlr` and Prometheus' `predict_linear`
//! give a time or a value and nothing about how far to trust it).

use super::rule::{Direction, Forecast};

/// A fitted line `v = slope * t + intercept` (t in unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Fit {
    /// Per second.
    pub slope: f64,
    pub intercept: f64,
    /// Coefficient of determination, 0..1 (1 for a series with no spread).
    pub r2: f64,
    /// Points the line was fitted to, and the time they span.
    pub points: usize,
    pub span_secs: i64,
}

impl Fit {
    pub fn at(&self, t: i64) -> f64 {
        self.slope * t as f64 + self.intercept
    }
}

/// Least squares over `(t, v)`; `None` under two points or two distinct
/// times. Times are centred on their mean before the sums: unix seconds
/// squared (~3e18) would eat most of f64's precision.
pub fn fit(points: &[(i64, f64)]) -> Option<Fit> {
    if points.len() < 2 {
        return None;
    }
    let n = points.len() as f64;
    let t0 = points[0].0;
    let tm = points.iter().map(|p| (p.0 - t0) as f64).sum::<f64>() / n;
    let vm = points.iter().map(|p| p.1).sum::<f64>() / n;
    let (mut stt, mut stv, mut svv) = (0.0, 0.0, 0.0);
    for &(t, v) in points {
        let (dt, dv) = ((t - t0) as f64 - tm, v - vm);
        stt += dt * dt;
        stv += dt * dv;
        svv += dv * dv;
    }
    if stt == 0.0 {
        return None;
    }
    let slope = stv / stt;
    // v = vm + slope * (t - t0 - tm)
    let intercept = vm - slope * (t0 as f64 + tm);
    let r2 = if svv == 0.0 {
        1.0
    } else {
        (stv * stv / (stt * svv)).clamp(0.0, 1.0)
    };
    Some(Fit {
        slope,
        intercept,
        r2,
        points: points.len(),
        span_secs: points[points.len() - 1].0 - t0,
    })
}

/// A forecast rule's verdict on one series.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Verdict {
    pub fires: bool,
    pub fit: Option<Fit>,
    /// Unix seconds at which the line crosses the threshold, if it does
    /// (in the past when it already has).
    pub crossing: Option<i64>,
    /// Plain language: why it fires or does not.
    pub reason: String,
}

/// Judges `points` (non-null, in time order) at `now`.
#[expect(
    clippy::cast_possible_truncation,
    reason = "the crossing is a finite whole number under 1e15 in magnitude (filtered just before the cast), well inside i64"
)]
pub fn judge(rule: &Forecast, points: &[(i64, f64)], now: i64) -> Verdict {
    let quiet = |fit, crossing, reason: String| Verdict {
        fires: false,
        fit,
        crossing,
        reason,
    };
    if points.len() < rule.min_points {
        return quiet(
            None,
            None,
            format!(
                "not enough history: {} points, min_points {}",
                points.len(),
                rule.min_points
            ),
        );
    }
    let Some(f) = fit(points) else {
        return quiet(None, None, "all points at one time: no line to fit".into());
    };
    let history = human(f.span_secs);
    if f.r2 < rule.min_r2 {
        return quiet(
            Some(f),
            None,
            format!(
                "fit too loose to project: R² {:.2} below min_r2 {} ({} points over {history})",
                f.r2, rule.min_r2, f.points
            ),
        );
    }
    let th = rule.threshold;
    let (word, past) = match rule.direction {
        Direction::Below => ("below", f.at(now) < th),
        _ => ("above", f.at(now) > th),
    };
    let rising = rule.direction != Direction::Below;
    let toward = if rising { f.slope > 0.0 } else { f.slope < 0.0 };
    let crossing = (f.slope != 0.0)
        .then(|| ((th - f.intercept) / f.slope).round())
        .filter(|t| t.is_finite() && t.abs() < 1e15)
        .map(|t| t as i64);
    let fit_text = format!("R² {:.2}, {} points over {history}", f.r2, f.points);
    if past {
        return Verdict {
            fires: true,
            fit: Some(f),
            crossing,
            reason: format!(
                "the fitted line is already {word} {} ({fit_text})",
                fmt_num(th)
            ),
        };
    }
    let per_day = f.slope * 86400.0;
    match crossing {
        Some(t) if toward => {
            let eta = t - now;
            let within = eta <= super::secs(rule.horizon);
            Verdict {
                fires: within,
                fit: Some(f),
                crossing: Some(t),
                reason: format!(
                    "{} {}/day: crosses {} in {}{} ({fit_text})",
                    if rising { "rising" } else { "falling" },
                    fmt_num(per_day.abs()),
                    fmt_num(th),
                    human(eta),
                    if within {
                        format!(
                            ", within the horizon of {}",
                            human(super::secs(rule.horizon))
                        )
                    } else {
                        format!(
                            ", beyond the horizon of {}",
                            human(super::secs(rule.horizon))
                        )
                    }
                ),
            }
        }
        _ => quiet(
            Some(f),
            None,
            format!(
                "not heading {word} {}: {}/day ({fit_text})",
                fmt_num(th),
                fmt_num(per_day)
            ),
        ),
    }
}

/// `23d 4h`, `5h 12m`, `40s`: the two largest units.
pub fn human(secs: i64) -> String {
    let s = secs.max(0);
    let (d, h, m) = (s / 86400, s % 86400 / 3600, s % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// A number for a sentence: up to 4 significant digits, no float noise.
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "a is in [1e-3, 1e6), so floor(log10 a) is -3..=5 and digits, floored at 0, is 0..=5"
)]
pub fn fmt_num(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let a = v.abs();
    if (1e-3..1e6).contains(&a) {
        let digits = (4 - 1 - a.log10().floor() as i32).max(0) as usize;
        let s = format!("{v:.digits$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    } else {
        format!("{v:.3e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::notice::Severity;
    use std::time::Duration;

    fn rule(direction: Direction) -> Forecast {
        Forecast {
            threshold: 4e9,
            direction,
            horizon: Duration::from_secs(30 * 86400),
            min_r2: 0.8,
            min_points: 10,
            severity: Severity::Critical,
        }
    }

    #[test]
    fn a_rising_line_fires_with_its_eta_and_fit() {
        // 1 GB a day from 1e9, hourly over 14 days: 4e9 is reached at day 3
        // past start + 0; now is day 14 → already past... so start at 0 GB.
        let t0 = 1_700_000_000;
        let pts: Vec<(i64, f64)> = (0..14 * 24)
            .map(|h| (t0 + h * 3600, 1e8 * (h as f64 / 24.0) + 5e8))
            .collect();
        let now = t0 + 14 * 86400;
        let v = judge(&rule(Direction::Above), &pts, now);
        let f = v.fit.unwrap();
        assert!((f.r2 - 1.0).abs() < 1e-9);
        assert!((f.slope * 86400.0 - 1e8).abs() < 1.0);
        // 5e8 + 1e8/day · d = 4e9 → d = 35: 21 days after now.
        let eta = v.crossing.unwrap() - now;
        assert!((eta - 21 * 86400).abs() <= 1, "{eta}");
        assert!(v.fires, "{}", v.reason);
        assert!(
            v.reason.contains("crosses 4.000e9 in 21d 0h"),
            "{}",
            v.reason
        );
        // Beyond a 10-day horizon it does not fire and says so.
        let mut short = rule(Direction::Above);
        short.horizon = Duration::from_secs(10 * 86400);
        let v = judge(&short, &pts, now);
        assert!(
            !v.fires && v.reason.contains("beyond the horizon"),
            "{}",
            v.reason
        );
    }

    #[test]
    fn noise_and_short_history_refuse_to_fire() {
        let mut rng = fastrand::Rng::with_seed(7);
        let pts: Vec<(i64, f64)> = (0..500).map(|i| (i * 60, rng.f64() * 8e9)).collect();
        let v = judge(&rule(Direction::Above), &pts, 500 * 60);
        assert!(!v.fires);
        assert!(v.fit.unwrap().r2 < 0.1);
        assert!(v.reason.contains("too loose"), "{}", v.reason);
        let v = judge(&rule(Direction::Above), &pts[..5], 300);
        assert!(
            !v.fires && v.reason.contains("min_points 10"),
            "{}",
            v.reason
        );
    }

    #[test]
    fn a_falling_line_fires_below() {
        let mut r = rule(Direction::Below);
        r.threshold = 10.0;
        let pts: Vec<(i64, f64)> = (0..20).map(|i| (i * 60, 100.0 - i as f64)).collect();
        let v = judge(&r, &pts, 19 * 60);
        // 100 - t/60 = 10 at t = 5400: 81 minutes after now (t = 1140).
        assert_eq!(v.crossing, Some(5400));
        assert!(v.fires, "{}", v.reason);
        // The same line is not heading above anything.
        r.direction = Direction::Above;
        r.threshold = 1000.0;
        assert!(!judge(&r, &pts, 19 * 60).fires);
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(fmt_num(812.0), "812");
        assert_eq!(fmt_num(0.123456), "0.1235");
        assert_eq!(fmt_num(4e9), "4.000e9");
        assert_eq!(human(21 * 86400 + 3600), "21d 1h");
        assert_eq!(human(90), "1m");
    }
}
