//! Forecasts: holtWintersForecast, holtWintersConfidenceBands,
//! holtWintersAberration, holtWintersConfidenceArea and linearRegression,
//! as graphite-web 1.1.10 computes them (same operations in the same
//! order, so the same floating-point results).
//!
//! The Holt-Winters functions evaluate their first argument again with
//! `from` moved back by `bootstrapInterval` (7 days by default), run the
//! analysis over the whole bootstrapped series (seasonality 1 day by
//! default; alpha = gamma = 0.1, beta = 0.0035) and keep what falls after
//! the bootstrap. linearRegression fits a least-squares line to the series
//! over `[startSourceAt, endSourceAt]` (the request's range by default) and
//! draws it over the requested range.

use std::collections::HashMap;

use super::shift::py_mktime;
use super::Args;
use crate::eval::{Context, QueryError};
use crate::series::{Consolidate, Series};
use crate::time::{parse_at_time, parse_offset};

/// What `/functions` says about each function here (graphite-web's
/// groups and parameters); the registry dispatches by these names.
pub(super) const INFO: &[super::info::FnInfo] = {
    use super::info::{p, FnInfo, Lit::*, Param, Ty, SERIES_LIST};
    const BOOTSTRAP: Param = p("bootstrapInterval", Ty::Interval)
        .dflt(Str("7d"))
        .sugg(&[Str("7d"), Str("30d")]);
    const SEASON: Param = p("seasonality", Ty::Interval)
        .dflt(Str("1d"))
        .sugg(&[Str("1d"), Str("7d")]);
    const BANDS: &[Param] = &[
        SERIES_LIST,
        p("delta", Ty::Integer).dflt(Int(3)),
        BOOTSTRAP,
        SEASON,
    ];
    &[
        FnInfo::new(
            "holtWintersAberration",
            "Calculate",
            "How far each point lies outside the Holt-Winters confidence bands (delta deviations wide): positive above the upper band, negative below the lower, 0 inside.",
            BANDS,
        ),
        FnInfo::new(
            "holtWintersConfidenceArea",
            "Calculate",
            "The Holt-Winters confidence bands (delta deviations wide) drawn as an area between the lower and the upper band.",
            BANDS,
        ),
        FnInfo::new(
            "holtWintersConfidenceBands",
            "Calculate",
            "The upper and lower Holt-Winters confidence bands, delta predicted deviations from the forecast, trained on bootstrapInterval of data before `from`.",
            BANDS,
        ),
        FnInfo::new(
            "holtWintersForecast",
            "Calculate",
            "A Holt-Winters forecast of each series, trained on bootstrapInterval of data before `from`, with a season of seasonality.",
            &[SERIES_LIST, BOOTSTRAP, SEASON],
        ),
        FnInfo::new(
            "linearRegression",
            "Calculate",
            "The least-squares line through each series' points between startSourceAt and endSourceAt (the request's range by default), drawn over the request's range.",
            &[
                SERIES_LIST,
                p("startSourceAt", Ty::Date),
                p("endSourceAt", Ty::Date),
            ],
        ),
    ]
};

const ALPHA: f64 = 0.1;
const GAMMA: f64 = 0.1;
const BETA: f64 = 0.0035;

fn bad(msg: String) -> QueryError {
    QueryError::BadArgument(msg)
}

/// Python's `list[k:]`, negative `k` counting from the end.
fn py_tail(v: &[f64], k: i64) -> Vec<f64> {
    v[super::py_bound(v.len(), k)..].to_vec()
}

/// `holtWintersAnalysis`: the predictions (None where the series had a
/// gap right before) and the deviations, one per point.
#[expect(
    clippy::cast_possible_wrap,
    reason = "`i` indexes `values`, and a slice holds at most isize::MAX elements"
)]
pub(super) fn holt_winters(
    values: &[f64],
    step: i64,
    season_secs: i64,
) -> Result<(Vec<f64>, Vec<f64>), QueryError> {
    let season_length = season_secs.div_euclid(step.max(1));
    let n = values.len();
    let mut intercepts: Vec<Option<f64>> = Vec::with_capacity(n);
    let mut slopes: Vec<f64> = Vec::with_capacity(n);
    let mut seasonals: Vec<f64> = Vec::with_capacity(n);
    let mut predictions: Vec<f64> = Vec::with_capacity(n);
    let mut deviations: Vec<f64> = Vec::with_capacity(n);
    // seasonals[i - season_length], 0 before the first season; graphite-web
    // fails (IndexError) when that is a point not computed yet.
    let last = |v: &[f64], i: usize| -> Result<f64, QueryError> {
        let j = i as i64 - season_length;
        if j < 0 {
            return Ok(0.0);
        }
        usize::try_from(j).ok().and_then(|j| v.get(j)).copied().ok_or_else(|| {
            bad(format!(
                "holtWinters: the seasonality must be at least two steps ({season_secs} s at {step} s)"
            ))
        })
    };
    let mut next_pred: Option<f64> = None;
    for (i, &actual) in values.iter().enumerate() {
        if actual.is_nan() {
            intercepts.push(None);
            slopes.push(0.0);
            seasonals.push(0.0);
            predictions.push(next_pred.unwrap_or(f64::NAN));
            deviations.push(0.0);
            next_pred = None;
            continue;
        }
        let (last_intercept, last_slope, prediction) = if i == 0 {
            (actual, 0.0, Some(actual))
        } else {
            (
                intercepts[i - 1].unwrap_or(actual),
                slopes[i - 1],
                next_pred,
            )
        };
        let last_seasonal = last(&seasonals, i)?;
        let next_last_seasonal = last(&seasonals, i + 1)?;
        let last_seasonal_dev = last(&deviations, i)?;
        let intercept =
            ALPHA * (actual - last_seasonal) + (1.0 - ALPHA) * (last_intercept + last_slope);
        let slope = BETA * (intercept - last_intercept) + (1.0 - BETA) * last_slope;
        let seasonal = GAMMA * (actual - intercept) + (1.0 - GAMMA) * last_seasonal;
        next_pred = Some(intercept + slope + next_last_seasonal);
        let deviation =
            GAMMA * (actual - prediction.unwrap_or(0.0)).abs() + (1.0 - GAMMA) * last_seasonal_dev;
        intercepts.push(Some(intercept));
        slopes.push(slope);
        seasonals.push(seasonal);
        predictions.push(prediction.unwrap_or(f64::NAN));
        deviations.push(deviation);
    }
    Ok((predictions, deviations))
}

fn set_tags(s: &mut Series, keys: &[&str]) {
    for k in keys {
        s.tags.insert((*k).to_string(), "1".to_string());
    }
}

/// A new series as graphite-web's `TimeSeries(...)` makes it: the
/// consolidation back to average, the path expression the name.
fn fresh(from: &Series, name: String, start: i64, end: i64, values: Vec<f64>) -> Series {
    let mut s = from.clone();
    s.path_expression = name.clone();
    s.name = name;
    s.start = start;
    s.end = end;
    s.values = values;
    s.consolidate = Consolidate::Average;
    s
}

/// holtWintersForecast over the bootstrapped series.
pub(super) fn forecast(
    bootstrapped: Vec<Series>,
    preview: i64,
    season_secs: i64,
) -> Result<Vec<Series>, QueryError> {
    let mut out = Vec::new();
    for mut s in bootstrapped {
        let (predictions, _) = holt_winters(&s.values, s.step, season_secs)?;
        let window = preview.div_euclid(s.step.max(1));
        // The analysis tags its input twice (the forecast and deviation
        // series share the dict), then the forecast tags it again.
        set_tags(&mut s, &["holtWintersForecast", "holtWintersDeviation"]);
        let name = format!("holtWintersForecast({})", s.name);
        let (start, end) = (s.start + preview, s.end);
        out.push(fresh(&s, name, start, end, py_tail(&predictions, window)));
    }
    Ok(out)
}

/// holtWintersConfidenceBands over the bootstrapped series: lower then
/// upper for each.
pub(super) fn bands(
    bootstrapped: Vec<Series>,
    delta: f64,
    preview: i64,
    season_secs: i64,
) -> Result<Vec<Series>, QueryError> {
    let mut out = Vec::new();
    for mut s in bootstrapped {
        let (predictions, deviations) = holt_winters(&s.values, s.step, season_secs)?;
        let window = preview.div_euclid(s.step.max(1));
        let forecast = py_tail(&predictions, window);
        let deviation = py_tail(&deviations, window);
        let (mut upper, mut lower) = (Vec::new(), Vec::new());
        for (f, d) in forecast.iter().zip(&deviation) {
            if f.is_nan() || d.is_nan() {
                upper.push(f64::NAN);
                lower.push(f64::NAN);
            } else {
                let scaled = delta * d;
                upper.push(f + scaled);
                lower.push(f - scaled);
            }
        }
        set_tags(
            &mut s,
            &[
                "holtWintersForecast",
                "holtWintersDeviation",
                "holtWintersConfidenceUpper",
                "holtWintersConfidenceLower",
            ],
        );
        let (start, end) = (s.start + preview, s.end);
        let path = s.path_expression.clone();
        let mut lo = fresh(
            &s,
            format!("holtWintersConfidenceLower({})", s.name),
            start,
            end,
            lower,
        );
        let mut up = fresh(
            &s,
            format!("holtWintersConfidenceUpper({})", s.name),
            start,
            end,
            upper,
        );
        lo.path_expression = path.clone();
        up.path_expression = path;
        out.push(lo);
        out.push(up);
    }
    Ok(out)
}

/// holtWintersAberration: how far each point of `series` (as first
/// evaluated) lies outside its bands, 0 inside them or where it is None.
pub(super) fn aberration(series: Vec<Series>, bands: &[Series]) -> Result<Vec<Series>, QueryError> {
    let by_name: HashMap<&str, &Series> = bands.iter().map(|b| (b.name.as_str(), b)).collect();
    let mut out = Vec::new();
    for mut s in series {
        let find = |which: &str| {
            let key = format!("holtWintersConfidence{which}({})", s.name);
            by_name.get(key.as_str()).copied().ok_or_else(|| {
                bad(format!(
                    "holtWintersAberration(): no {key} in the bootstrapped data"
                ))
            })
        };
        let (lower, upper) = (find("Lower")?, find("Upper")?);
        let mut values = Vec::with_capacity(s.values.len());
        for (i, &v) in s.values.iter().enumerate() {
            if v.is_nan() {
                values.push(0.0);
                continue;
            }
            let band = |b: &Series| {
                b.values.get(i).copied().ok_or_else(|| {
                    bad(format!(
                        "holtWintersAberration(): {} has {} points at {} s, {} {} at {} s: the bootstrap read another archive",
                        s.name,
                        s.values.len(),
                        s.step,
                        b.name,
                        b.values.len(),
                        b.step
                    ))
                })
            };
            let (u, l) = (band(upper)?, band(lower)?);
            values.push(if !u.is_nan() && v > u {
                v - u
            } else if !l.is_nan() && v < l {
                v - l
            } else {
                0.0
            });
        }
        set_tags(&mut s, &["holtWintersAberration"]);
        let name = format!("holtWintersAberration({})", s.name);
        let (start, end) = (s.start, s.end);
        out.push(fresh(&s, name, start, end, values));
    }
    Ok(out)
}

/// holtWintersConfidenceArea: the two bands of exactly one series, both
/// named after its path expression.
pub(super) fn area(bands: Vec<Series>) -> Result<Vec<Series>, QueryError> {
    if bands.len() != 2 {
        return Err(bad(format!(
            "holtWintersConfidenceArea(): the series argument must reference exactly 1 series, not {}",
            bands.len() / 2
        )));
    }
    let name = format!("holtWintersConfidenceArea({})", bands[1].path_expression);
    Ok(bands
        .into_iter()
        .map(|mut s| {
            set_tags(&mut s, &["holtWintersConfidenceArea"]);
            s.name = name.clone();
            s.path_expression = name.clone();
            s
        })
        .collect())
}

/// `_linearRegressionAnalysis`: (factor, offset) of the least-squares line
/// through the known points, or None when they cannot define one.
pub(super) fn regression(source: &Series) -> Option<(f64, f64)> {
    let (mut n, mut sum_i, mut sum_ii) = (0i128, 0i128, 0i128);
    let (mut sum_v, mut sum_iv) = (0.0f64, 0.0f64);
    for (i, &v) in source.values.iter().enumerate() {
        if v.is_nan() {
            continue;
        }
        let i = i as i128;
        n += 1;
        sum_i += i;
        sum_ii += i * i;
        sum_v += v;
        sum_iv += i as f64 * v;
    }
    let denominator = (n * sum_ii - sum_i * sum_i) as f64;
    if denominator == 0.0 {
        return None;
    }
    let factor = (n as f64 * sum_iv - sum_i as f64 * sum_v) / denominator / source.step as f64;
    let offset = (sum_ii as f64 * sum_v - sum_iv * sum_i as f64) / denominator
        - factor * source.start as f64;
    Some((factor, offset))
}

/// linearRegression: each series paired by position with its source (the
/// same expression over the source range); `start`/`end` are the source
/// range as the result's name and tag give it.
#[expect(
    clippy::cast_possible_wrap,
    reason = "`i` indexes `s.values`, and a Vec holds at most isize::MAX elements"
)]
pub(super) fn linear_regression(
    series: Vec<Series>,
    sources: &[Series],
    start: i64,
    end: i64,
) -> Vec<Series> {
    let mut out = Vec::new();
    for (mut s, source) in series.into_iter().zip(sources) {
        s.tags
            .insert("linearRegressions".into(), format!("{start}, {end}"));
        let Some((factor, offset)) = regression(source) else {
            continue;
        };
        let values = (0..s.values.len())
            .map(|i| offset + (s.start + i as i64 * s.step) as f64 * factor)
            .collect();
        let name = format!("linearRegression({}, {start}, {end})", s.name);
        let (st, en) = (s.start, s.end);
        out.push(fresh(&s, name, st, en, values));
    }
    out
}

/// The interval argument `i` (default `default`) in seconds.
fn interval_arg(a: &Args<'_>, i: usize, name: &str, default: &str) -> Result<i64, QueryError> {
    Ok(parse_offset(a.opt_string(i, name)?.unwrap_or(default))?)
}

pub(super) fn call(
    ctx: &mut Context<'_>,
    name: &str,
    a: &Args<'_>,
) -> Option<Result<Vec<Series>, QueryError>> {
    if !INFO.iter().any(|i| i.name == name) {
        return None;
    }
    Some((|| {
        // graphite-web evaluates every argument first, over the request's
        // range, even where only the bootstrapped evaluation is used.
        let first = a.series(ctx, 0)?;
        if name == "linearRegression" {
            // graphite-web's parseATTime(text): the server's zone, and the
            // wall clock for `now` whatever the request's `now`.
            let wall = i64::try_from(rollupd_telemetry::unix_now()).unwrap_or(i64::MAX);
            let (tz, server_tz) = (ctx.tz, ctx.server_tz);
            // Each bound with the zone its datetime is in.
            let at = |i, key, default| -> Result<(i64, chrono_tz::Tz), QueryError> {
                match a.opt_string(i, key)? {
                    Some(t) => Ok((parse_at_time(t, &server_tz, wall)?, server_tz)),
                    None => Ok((default, tz)),
                }
            };
            let (start, start_tz) = at(1, "startSourceAt", ctx.from)?;
            let (end, end_tz) = at(2, "endSourceAt", ctx.until)?;
            let sources = a.series_over(ctx, 0, start, end)?;
            // The name holds int(time.mktime(dt.timetuple())) of each bound.
            let named = (
                py_mktime(start, &start_tz, &server_tz),
                py_mktime(end, &end_tz, &server_tz),
            );
            return Ok(linear_regression(first, &sources, named.0, named.1));
        }
        let arg0 = if name == "holtWintersForecast" { 1 } else { 2 };
        let preview = interval_arg(a, arg0, "bootstrapInterval", "7d")?;
        let season = interval_arg(a, arg0 + 1, "seasonality", "1d")?;
        let bootstrapped = a.series_bootstrapped(ctx, 0, preview)?;
        // A series at a time, so a request past its deadline stops between
        // them (each analysis is linear in the bootstrapped points, which
        // the points cap bounds).
        let delta = if name == "holtWintersForecast" {
            0.0 // no bands
        } else {
            a.opt_num(1, "delta")?.unwrap_or(3.0)
        };
        let mut b = Vec::new();
        for s in bootstrapped {
            ctx.limits.check_deadline()?;
            b.extend(if name == "holtWintersForecast" {
                forecast(vec![s], preview, season)?
            } else {
                bands(vec![s], delta, preview, season)?
            });
        }
        if name == "holtWintersForecast" {
            return Ok(b);
        }
        match name {
            "holtWintersConfidenceBands" => Ok(b),
            "holtWintersAberration" => aberration(first, &b),
            _ => area(b),
        }
    })())
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{same, N};
    use super::*;

    /// graphite-web's holtWintersAnalysis, step by step, for a 2-point
    /// season: the reference the implementation must equal bit for bit.
    fn reference(values: &[f64], season: usize) -> (Vec<f64>, Vec<f64>) {
        let (a, b, g) = (0.1f64, 0.0035f64, 0.1f64);
        let mut intercepts: Vec<Option<f64>> = vec![];
        let (mut slopes, mut seasonals, mut preds, mut devs) = (vec![], vec![], vec![], vec![]);
        let mut next_pred: Option<f64> = None;
        let get = |v: &Vec<f64>, i: usize| if i >= season { v[i - season] } else { 0.0 };
        for (i, &x) in values.iter().enumerate() {
            if x.is_nan() {
                intercepts.push(None);
                slopes.push(0.0);
                seasonals.push(0.0);
                preds.push(next_pred.unwrap_or(N));
                devs.push(0.0);
                next_pred = None;
                continue;
            }
            let (li, ls, p) = if i == 0 {
                (x, 0.0, Some(x))
            } else {
                (intercepts[i - 1].unwrap_or(x), slopes[i - 1], next_pred)
            };
            let lsea = get(&seasonals, i);
            let nls = get(&seasonals, i + 1);
            let ldev = get(&devs, i);
            let icpt = a * (x - lsea) + (1.0 - a) * (li + ls);
            let slope = b * (icpt - li) + (1.0 - b) * ls;
            let sea = g * (x - icpt) + (1.0 - g) * lsea;
            next_pred = Some(icpt + slope + nls);
            let dev = g * (x - p.unwrap_or(0.0)).abs() + (1.0 - g) * ldev;
            intercepts.push(Some(icpt));
            slopes.push(slope);
            seasonals.push(sea);
            preds.push(p.unwrap_or(N));
            devs.push(dev);
        }
        (preds, devs)
    }

    #[test]
    fn holt_winters_first_steps_by_hand() {
        // Season of 2 points (20 s at 10 s). Point 0 seeds everything:
        // intercept = 0.1*10 + 0.9*10 = 10, slope 0, seasonal 0.1*(10-10)
        // = 0, prediction 10, deviation 0.1*|10-10| = 0; the next
        // prediction is 10 + 0 + 0 = 10.
        let (p, d) = holt_winters(&[10.0, 20.0], 10, 20).unwrap();
        assert_eq!(p[0], 10.0);
        assert_eq!(d[0], 0.0);
        // Point 1: prediction 10, deviation 0.1*|20-10| + 0.9*0 = 1.
        assert_eq!(p[1], 10.0);
        assert!((d[1] - 1.0).abs() < 1e-15);
    }

    #[test]
    fn holt_winters_equals_the_reference_with_gaps() {
        let v = [
            10.0, 12.0, N, 9.0, 11.5, 14.0, N, N, 8.0, 10.0, 13.0, 12.5, 9.5, N, 11.0,
        ];
        let (p, d) = holt_winters(&v, 10, 40).unwrap();
        let (rp, rd) = reference(&v, 4);
        assert!(same(&p, &rp), "{p:?}\n{rp:?}");
        assert!(same(&d, &rd), "{d:?}\n{rd:?}");
        // After a gap the next prediction is None, and the point after it
        // predicts nothing either.
        assert!(p[3].is_nan());
        assert!(
            !p[2].is_nan(),
            "the gap itself carries the pending prediction"
        );
        // A leading gap: the first known point starts from itself.
        let (p, _) = holt_winters(&[N, 5.0, 6.0], 10, 20).unwrap();
        assert!(p[0].is_nan() && p[1].is_nan());
        // Seasonality under two steps fails as in graphite-web.
        assert!(holt_winters(&[1.0, 2.0], 10, 10).is_err());
        assert!(holt_winters(&[N, N], 10, 10).is_ok());
    }

    fn boot() -> Series {
        let v: Vec<f64> = (0..12)
            .map(|i| 10.0 + f64::from(i % 4) + if i == 7 { N } else { 0.0 })
            .collect();
        let mut s = Series::new("a.b", 1000, 1120, 10, v);
        s.path_expression = "a.*".into();
        s.consolidate = Consolidate::Sum;
        s
    }

    #[test]
    fn forecast_trims_the_bootstrap() {
        let out = forecast(vec![boot()], 80, 40).unwrap();
        let s = &out[0];
        let (p, _) = holt_winters(&boot().values, 10, 40).unwrap();
        assert_eq!(s.name, "holtWintersForecast(a.b)");
        assert_eq!(s.path_expression, s.name);
        assert_eq!((s.start, s.end, s.step), (1080, 1120, 10));
        assert!(same(&s.values, &p[8..]));
        assert_eq!(s.consolidate, Consolidate::Average);
        let tags: Vec<(&str, &str)> = s
            .tags
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            tags,
            [
                ("holtWintersDeviation", "1"),
                ("holtWintersForecast", "1"),
                ("name", "a.b")
            ]
        );
    }

    #[test]
    fn bands_aberration_and_area() {
        let out = bands(vec![boot()], 2.0, 80, 40).unwrap();
        let (p, d) = holt_winters(&boot().values, 10, 40).unwrap();
        assert_eq!(out.len(), 2);
        let (lo, up) = (&out[0], &out[1]);
        assert_eq!(lo.name, "holtWintersConfidenceLower(a.b)");
        assert_eq!(up.name, "holtWintersConfidenceUpper(a.b)");
        assert_eq!(lo.path_expression, "a.*");
        assert_eq!((lo.start, lo.end), (1080, 1120));
        // The gap at point 7 leaves point 8 without a prediction: no band.
        assert!(p[8].is_nan() && up.values[0].is_nan() && lo.values[0].is_nan());
        for i in 1..4 {
            let (f, dv) = (p[8 + i], d[8 + i]);
            assert_eq!(up.values[i], f + 2.0 * dv);
            assert_eq!(lo.values[i], f - 2.0 * dv);
        }
        assert_eq!(lo.tags.len(), 5);
        assert_eq!(lo.tags, up.tags);

        // Aberration of a series over the trimmed range: above, inside,
        // below, None.
        let orig = Series::new(
            "a.b",
            1080,
            1120,
            10,
            vec![1e6, up.values[1] + 1.5, lo.values[2], lo.values[3] - 0.25],
        );
        let ab = aberration(vec![orig], &out).unwrap();
        assert_eq!(ab[0].name, "holtWintersAberration(a.b)");
        assert_eq!(
            ab[0].tags.get("holtWintersAberration").map(String::as_str),
            Some("1")
        );
        assert_eq!(ab[0].tags.len(), 2);
        assert_eq!(ab[0].values[0], 0.0, "no band: no aberration");
        assert!((ab[0].values[1] - 1.5).abs() < 1e-9);
        assert_eq!(ab[0].values[2], 0.0);
        assert!((ab[0].values[3] + 0.25).abs() < 1e-9);
        let gap = Series::new("a.b", 1080, 1120, 10, vec![N, N, N, N]);
        assert_eq!(aberration(vec![gap], &out).unwrap()[0].values, vec![0.0; 4]);
        // A series longer than its bands (another archive) fails, as the
        // IndexError does in graphite-web.
        let long = Series::new("a.b", 1080, 1180, 10, vec![100.0; 10]);
        assert!(aberration(vec![long], &out).is_err());

        let area = area(out).unwrap();
        assert_eq!(area[0].name, "holtWintersConfidenceArea(a.*)");
        assert_eq!(area[1].name, "holtWintersConfidenceArea(a.*)");
        assert_eq!(area[0].tags.len(), 6);
        let two = bands(vec![boot(), boot()], 3.0, 80, 40).unwrap();
        assert!(super::area(two).is_err());
    }

    #[test]
    fn regression_by_hand() {
        // Points at i = 0, 1, 3 (i = 2 missing) with values 1, 3, 7: the
        // line v = 1 + 2i, so per second (step 10, start 100): factor 0.2,
        // offset 1 - 0.2 * 100 = -19.
        let src = Series::new("a", 100, 140, 10, vec![1.0, 3.0, N, 7.0]);
        let (factor, offset) = regression(&src).unwrap();
        assert!((factor - 0.2).abs() < 1e-12);
        assert!((offset + 19.0).abs() < 1e-12);
        assert!(regression(&Series::new("a", 100, 120, 10, vec![N, 5.0])).is_none());

        let target = Series::new("a", 200, 230, 10, vec![N, N, N]);
        let out = linear_regression(vec![target], &[src], 90, 140);
        let s = &out[0];
        assert_eq!(s.name, "linearRegression(a, 90, 140)");
        assert_eq!(
            s.tags.get("linearRegressions").map(String::as_str),
            Some("90, 140")
        );
        assert_eq!((s.start, s.end, s.step), (200, 230, 10));
        let want: Vec<f64> = [200.0, 210.0, 220.0]
            .iter()
            .map(|t| offset + t * factor)
            .collect();
        assert!(same(&s.values, &want));
        // A source with a single point draws nothing.
        let lone = Series::new("a", 100, 120, 10, vec![N, 5.0]);
        let target = Series::new("a", 200, 230, 10, vec![N, N, N]);
        assert!(linear_regression(vec![target], &[lone], 90, 140).is_empty());
    }

    #[test]
    fn python_tail_slices() {
        assert_eq!(py_tail(&[1.0, 2.0, 3.0], 1), vec![2.0, 3.0]);
        assert_eq!(py_tail(&[1.0, 2.0, 3.0], 5), Vec::<f64>::new());
        assert_eq!(py_tail(&[1.0, 2.0, 3.0], -1), vec![3.0]);
        assert_eq!(py_tail(&[1.0, 2.0, 3.0], -9), vec![1.0, 2.0, 3.0]);
    }
}
