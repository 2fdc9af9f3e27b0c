//! The time axis: graphite-web's table (from rrdtool) of grid and label
//! spacings by seconds per pixel, and the wall-clock instants in the
//! request's time zone where grid lines and labels fall.

use chrono::{LocalResult, NaiveDateTime, TimeZone, Timelike};
use chrono_tz::Tz;

const SEC: i64 = 1;
const MIN: i64 = 60;
const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

/// One row of the table: grid and label spacing as (unit, count).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct XConfig {
    /// The finest seconds-per-pixel this row suits.
    seconds: f64,
    pub minor: (i64, f64),
    pub major: (i64, f64),
    pub label: (i64, f64),
    pub format: &'static str,
    /// The longest range this row suits (`None`: any).
    max_interval: Option<i64>,
}

const fn row(
    seconds: f64,
    minor: (i64, f64),
    major: (i64, f64),
    label: (i64, f64),
    format: &'static str,
    max_interval: Option<i64>,
) -> XConfig {
    XConfig {
        seconds,
        minor,
        major,
        label,
        format,
        max_interval,
    }
}

/// graphite-web's `xAxisConfigs`, with its default `DATE_FORMAT` `%m/%d`.
const CONFIGS: &[XConfig] = &[
    row(
        0.0,
        (SEC, 5.0),
        (MIN, 1.0),
        (SEC, 5.0),
        "%H:%M:%S",
        Some(10 * MIN),
    ),
    row(
        0.07,
        (SEC, 10.0),
        (MIN, 1.0),
        (SEC, 10.0),
        "%H:%M:%S",
        Some(20 * MIN),
    ),
    row(
        0.14,
        (SEC, 15.0),
        (MIN, 1.0),
        (SEC, 15.0),
        "%H:%M:%S",
        Some(30 * MIN),
    ),
    row(
        0.27,
        (SEC, 30.0),
        (MIN, 2.0),
        (MIN, 1.0),
        "%H:%M",
        Some(2 * HOUR),
    ),
    row(
        0.5,
        (MIN, 1.0),
        (MIN, 2.0),
        (MIN, 1.0),
        "%H:%M",
        Some(2 * HOUR),
    ),
    row(
        1.2,
        (MIN, 1.0),
        (MIN, 4.0),
        (MIN, 2.0),
        "%H:%M",
        Some(3 * HOUR),
    ),
    row(
        2.0,
        (MIN, 1.0),
        (MIN, 10.0),
        (MIN, 5.0),
        "%H:%M",
        Some(6 * HOUR),
    ),
    row(
        5.0,
        (MIN, 2.0),
        (MIN, 10.0),
        (MIN, 10.0),
        "%H:%M",
        Some(12 * HOUR),
    ),
    row(
        10.0,
        (MIN, 5.0),
        (MIN, 20.0),
        (MIN, 20.0),
        "%H:%M",
        Some(DAY),
    ),
    row(
        30.0,
        (MIN, 10.0),
        (HOUR, 1.0),
        (HOUR, 1.0),
        "%H:%M",
        Some(2 * DAY),
    ),
    row(
        60.0,
        (MIN, 30.0),
        (HOUR, 2.0),
        (HOUR, 2.0),
        "%H:%M",
        Some(2 * DAY),
    ),
    row(
        100.0,
        (HOUR, 2.0),
        (HOUR, 4.0),
        (HOUR, 4.0),
        "%a %H:%M",
        Some(6 * DAY),
    ),
    row(
        255.0,
        (HOUR, 6.0),
        (HOUR, 12.0),
        (HOUR, 12.0),
        "%m/%d %H:%M",
        Some(10 * DAY),
    ),
    row(
        600.0,
        (HOUR, 6.0),
        (DAY, 1.0),
        (DAY, 1.0),
        "%m/%d",
        Some(14 * DAY),
    ),
    row(
        1000.0,
        (HOUR, 12.0),
        (DAY, 1.0),
        (DAY, 1.0),
        "%m/%d",
        Some(365 * DAY),
    ),
    row(
        2000.0,
        (DAY, 1.0),
        (DAY, 2.0),
        (DAY, 2.0),
        "%m/%d",
        Some(365 * DAY),
    ),
    row(
        4000.0,
        (DAY, 2.0),
        (DAY, 4.0),
        (DAY, 4.0),
        "%m/%d",
        Some(365 * DAY),
    ),
    row(
        8000.0,
        (DAY, 3.5),
        (DAY, 7.0),
        (DAY, 7.0),
        "%m/%d",
        Some(365 * DAY),
    ),
    row(
        16000.0,
        (DAY, 7.0),
        (DAY, 14.0),
        (DAY, 14.0),
        "%m/%d",
        Some(365 * DAY),
    ),
    row(
        32000.0,
        (DAY, 15.0),
        (DAY, 30.0),
        (DAY, 30.0),
        "%m/%d",
        Some(365 * DAY),
    ),
    row(
        64000.0,
        (DAY, 30.0),
        (DAY, 60.0),
        (DAY, 60.0),
        "%m/%d %Y",
        None,
    ),
    row(
        100000.0,
        (DAY, 60.0),
        (DAY, 120.0),
        (DAY, 120.0),
        "%m/%d %Y",
        None,
    ),
    row(
        120000.0,
        (DAY, 120.0),
        (DAY, 240.0),
        (DAY, 240.0),
        "%m/%d %Y",
        None,
    ),
];

/// The row for a graph showing `time_range` seconds over `pixels`: the
/// coarsest whose resolution the graph reaches and whose range it suits.
pub fn choose(time_range: i64, pixels: f64) -> XConfig {
    let per_pixel = time_range as f64 / pixels.max(1.0);
    CONFIGS
        .iter()
        .rev()
        .find(|c| c.seconds <= per_pixel && c.max_interval.is_none_or(|m| m >= time_range))
        .copied()
        .unwrap_or(CONFIGS[CONFIGS.len() - 1])
}

/// Instants from the first multiple of `unit × step` (on the wall clock in
/// `tz`) at or after `start`, up to but excluding `end`.
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "(unit, step) is a row of CONFIGS (graph.rs passes its x_conf's): units up \
              to a day and steps from 1 to 240, so unit × step fits i64 and the step's \
              integer part u32"
)]
pub fn instants(start: i64, end: i64, (unit, step): (i64, f64), tz: &Tz) -> Vec<i64> {
    let delta = ((unit as f64) * step).round() as i64;
    if delta <= 0 || end <= start {
        return Vec::new();
    }
    let local = tz.timestamp_opt(start, 0).single().map(|d| d.naive_local());
    let Some(local) = local else {
        return Vec::new();
    };
    let whole = step.max(1.0) as u32;
    let floored = match unit {
        SEC => local.with_second(local.second() - local.second() % whole),
        MIN => local
            .with_second(0)
            .and_then(|d| d.with_minute(d.minute() - d.minute() % whole)),
        HOUR => local
            .with_second(0)
            .and_then(|d| d.with_minute(0))
            .and_then(|d| d.with_hour(d.hour() - d.hour() % whole)),
        _ => local.date().and_hms_opt(0, 0, 0),
    };
    let mut t = floored.map_or(start, |n| to_epoch(tz, n, start));
    while t < start {
        t += delta;
    }
    let mut out = Vec::new();
    while t < end && out.len() < 10_000 {
        out.push(t);
        t += delta;
    }
    out
}

/// A wall-clock time as epoch seconds; a time the clocks skip becomes the
/// instant they skip to, an ambiguous one its first occurrence.
fn to_epoch(tz: &Tz, n: NaiveDateTime, fallback: i64) -> i64 {
    match tz.from_local_datetime(&n) {
        LocalResult::Single(d) => d.timestamp(),
        LocalResult::Ambiguous(a, _) => a.timestamp(),
        LocalResult::None => (1..=4)
            .find_map(|h| {
                tz.from_local_datetime(&(n + chrono::Duration::hours(h)))
                    .earliest()
            })
            .map_or(fallback, |d| d.timestamp()),
    }
}

/// `t` written with a strftime `format` in `tz`; `None` if the format has
/// a directive chrono does not know.
pub fn label(t: i64, format: &str, tz: &Tz) -> Option<String> {
    use std::fmt::Write;
    let d = tz.timestamp_opt(t, 0).single()?;
    let mut s = String::new();
    write!(s, "{}", d.format(format)).ok()?;
    Some(s)
}

/// Whether a strftime format is one chrono can write.
pub fn valid_format(format: &str) -> bool {
    use chrono::format::{Item, StrftimeItems};
    !StrftimeItems::new(format).any(|i| matches!(i, Item::Error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ranges_get_clock_times_long_ones_dates() {
        // 1 h over 300 px = 12 s/px → the 10 s/px row (labels every 20 min).
        let c = choose(3600, 300.0);
        assert_eq!((c.label, c.format), ((MIN, 20.0), "%H:%M"));
        // 1 d over 740 px ≈ 117 s/px → 4-hourly "%a %H:%M".
        let c = choose(DAY, 740.0);
        assert_eq!((c.label, c.format), ((HOUR, 4.0), "%a %H:%M"));
        // 30 d over 300 px → dates.
        let c = choose(30 * DAY, 300.0);
        assert_eq!(c.format, "%m/%d");
        // 2 y → dates with the year.
        assert_eq!(choose(730 * DAY, 300.0).format, "%m/%d %Y");
    }

    #[test]
    fn instants_sit_on_the_local_wall_clock() {
        // 2024-01-01 00:07:00 UTC; 20-minute labels → 00:20, 00:40, 01:00.
        let start = 1_704_067_620;
        let got = instants(start, start + 3600, (MIN, 20.0), &Tz::UTC);
        assert_eq!(got, vec![start + 780, start + 1980, start + 3180]);
        let text: Vec<String> = got
            .iter()
            .map(|t| label(*t, "%H:%M", &Tz::UTC).unwrap())
            .collect();
        assert_eq!(text, ["00:20", "00:40", "01:00"]);
        // Days start at local midnight: in Asia/Kolkata (UTC+5:30) the
        // first day boundary after 00:07 UTC is 18:30 UTC.
        let tz: Tz = "Asia/Kolkata".parse().unwrap();
        let got = instants(start, start + DAY, (DAY, 1.0), &tz);
        assert_eq!(got, vec![1_704_047_400 + DAY]);
        assert_eq!(label(got[0], "%m/%d %H:%M", &tz).unwrap(), "01/02 00:00");
    }

    #[test]
    fn bad_formats_are_caught() {
        assert!(valid_format("%H:%M"));
        assert!(!valid_format("%Q"));
    }
}
