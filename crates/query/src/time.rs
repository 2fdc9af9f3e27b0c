//! Graphite's time language, as graphite-web 1.1 parses it: `from` and
//! `until` (`-6h`, `now`, `now-15min`, epoch seconds, `HH:MM_YYYYMMDD`,
//! `YYYYMMDD`, `MM/DD/YY`, `midnight`, `noon`, `teatime`, `yesterday`,
//! `today`, `tomorrow`, month and weekday names, with an offset after any of
//! them), and the offsets and intervals that functions take (`'5min'`,
//! `'1d'`, `'-1w'`).

use chrono::{Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use chrono_tz::Tz;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("invalid time {0:?}")]
    Invalid(String),
    #[error("invalid offset unit {unit:?} in {text:?} (use s, min, h, d, w, mon, y)")]
    Unit { text: String, unit: String },
    #[error("unknown time zone {0:?}")]
    Zone(String),
    /// A time outside years 1 to 9999, or an offset longer than that span:
    /// refused, so no sum of a time and an offset can overflow.
    #[error(
        "{0} is out of range: times must fall in years 1 to 9999, offsets within 10,000 years"
    )]
    Range(String),
}

/// The earliest time accepted (0001-01-01T00:00:00Z), as Python's
/// `datetime`, which graphite-web parses times into, allows.
pub const MIN_TIME: i64 = -62_135_596_800;
/// The latest time accepted (9999-12-31T23:59:59Z).
pub const MAX_TIME: i64 = 253_402_300_799;
/// The longest offset accepted: the whole range of times. A time plus an
/// offset is then at most about 6e11 from zero, a thousandth of a
/// millionth of i64's range, so a few of them added never overflow.
pub const MAX_OFFSET: i64 = MAX_TIME - MIN_TIME;

/// `t` if it is a time this daemon handles, else a `Range` naming `what`.
pub fn check_time(t: i64, what: impl FnOnce() -> String) -> Result<i64, TimeError> {
    if (MIN_TIME..=MAX_TIME).contains(&t) {
        Ok(t)
    } else {
        Err(TimeError::Range(what()))
    }
}

/// `t + by` when both are in range and so is the sum; otherwise a `Range`
/// error naming them.
pub fn add_offset(t: i64, by: i64) -> Result<i64, TimeError> {
    t.checked_add(by)
        .filter(|x| (MIN_TIME..=MAX_TIME).contains(x))
        .ok_or_else(|| TimeError::Range(format!("the time {t} moved by {by} s")))
}

/// A time zone by name (`UTC`, `Europe/Berlin`).
pub fn zone(name: &str) -> Result<Tz, TimeError> {
    name.parse::<Tz>()
        .map_err(|_| TimeError::Zone(name.to_string()))
}

/// Seconds in an offset like `-1h30min`, `5min`, `+2d` (graphite-web's
/// parseTimeOffset: months are 30 days, years 365).
pub fn parse_offset(text: &str) -> Result<i64, TimeError> {
    let bad = || TimeError::Invalid(text.to_string());
    let mut s = text;
    if s.is_empty() {
        return Ok(0);
    }
    let sign = match s.as_bytes()[0] {
        b'+' => {
            s = &s[1..];
            1
        }
        b'-' => {
            s = &s[1..];
            -1
        }
        b'0'..=b'9' => 1,
        _ => return Err(bad()),
    };
    if s.is_empty() {
        return Err(bad());
    }
    let mut total: i64 = 0;
    while !s.is_empty() {
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        // Only digits: a parse fails by overflowing.
        let num: i64 = s[..digits]
            .parse()
            .map_err(|_| TimeError::Range(format!("the offset {text:?}")))?;
        s = &s[digits..];
        let letters = s.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &s[..letters];
        s = &s[letters..];
        let secs = if unit.starts_with('s') {
            1
        } else if unit.starts_with("min") {
            60
        } else if unit.starts_with('h') {
            3600
        } else if unit.starts_with('d') {
            86400
        } else if unit.starts_with('w') {
            7 * 86400
        } else if unit.starts_with("mon") {
            30 * 86400
        } else if unit.starts_with('y') {
            365 * 86400
        } else {
            return Err(TimeError::Unit {
                text: text.to_string(),
                unit: unit.to_string(),
            });
        };
        total = num
            .checked_mul(secs)
            .and_then(|v| total.checked_add(v))
            .filter(|&t| t <= MAX_OFFSET)
            .ok_or_else(|| TimeError::Range(format!("the offset {text:?}")))?;
    }
    Ok(sign * total)
}

fn localize(tz: &Tz, dt: NaiveDateTime) -> Option<i64> {
    match tz.from_local_datetime(&dt) {
        LocalResult::Single(t) => Some(t.timestamp()),
        // pytz's localize(is_dst=False) picks standard time on ambiguity.
        LocalResult::Ambiguous(_, late) => Some(late.timestamp()),
        // A time skipped by a DST jump: pytz keeps the wall clock with the
        // earlier offset; an hour later is what it comes to.
        LocalResult::None => tz
            .from_local_datetime(&(dt + Duration::hours(1)))
            .earliest()
            .map(|t| t.timestamp()),
    }
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// graphite-web's parseTimeReference: an optional time of day (`HH:MM`,
/// `Xam`, `Xpm`, `noon`, `midnight`, `teatime`; midnight when absent) and
/// an optional day (`yesterday`, `today`, `tomorrow`, `MM/DD/YY[YY]`,
/// `YYYYMMDD`, a month name and day, a weekday name; today when absent).
fn parse_reference(r: &str, tz: &Tz, now: i64) -> Result<i64, TimeError> {
    let bad = || TimeError::Invalid(r.to_string());
    if r.is_empty() || r == "now" {
        return Ok(now);
    }
    let today = tz
        .timestamp_opt(now, 0)
        .single()
        .ok_or_else(bad)?
        .naive_local()
        .date();
    let (mut hour, mut minute) = (0u32, 0u32);
    let mut rest = r;
    if let Some(i) = rest.find(':').filter(|&i| i > 0 && i < 3) {
        hour = rest[..i].parse().map_err(|_| bad())?;
        minute = rest
            .get(i + 1..i + 3)
            .ok_or_else(bad)?
            .parse()
            .map_err(|_| bad())?;
        rest = &rest[i + 3..];
        if let Some(r2) = rest.strip_prefix("am") {
            rest = r2;
        } else if let Some(r2) = rest.strip_prefix("pm") {
            hour = (hour + 12) % 24;
            rest = r2;
        }
    }
    if let Some(i) = rest.find("am").filter(|&i| i > 0 && i < 3) {
        hour = rest[..i].parse().map_err(|_| bad())?;
        rest = &rest[i + 2..];
    }
    if let Some(i) = rest.find("pm").filter(|&i| i > 0 && i < 3) {
        hour = (rest[..i].parse::<u32>().map_err(|_| bad())? + 12) % 24;
        rest = &rest[i + 2..];
    }
    for (word, h) in [("noon", 12), ("midnight", 0), ("teatime", 16)] {
        if let Some(r2) = rest.strip_prefix(word) {
            (hour, minute) = (h, 0);
            rest = r2;
            break;
        }
    }
    let date = match rest {
        "" | "today" => today,
        "yesterday" => today.pred_opt().ok_or_else(bad)?,
        "tomorrow" => today.succ_opt().ok_or_else(bad)?,
        _ if rest.matches('/').count() == 2 => {
            let mut it = rest.split('/').map(|x| x.parse::<i32>());
            let (Some(Ok(m)), Some(Ok(d)), Some(Ok(mut y))) = (it.next(), it.next(), it.next())
            else {
                return Err(bad());
            };
            if y < 1900 {
                y += 1900;
            }
            if y < 1970 {
                y += 100;
            }
            // A negative month or day is no date, as one past 12 or 31 is.
            let (Ok(m), Ok(d)) = (u32::try_from(m), u32::try_from(d)) else {
                return Err(bad());
            };
            NaiveDate::from_ymd_opt(y, m, d).ok_or_else(bad)?
        }
        _ if rest.len() == 8 && rest.bytes().all(|b| b.is_ascii_digit()) => {
            NaiveDate::parse_from_str(rest, "%Y%m%d").map_err(|_| bad())?
        }
        // `get(..3)`: the first three bytes may end inside a character.
        _ if rest.get(..3).is_some_and(|p| MONTHS.contains(&p)) => {
            let m = MONTHS
                .iter()
                .zip(1u32..)
                .find(|(x, _)| Some(**x) == rest.get(..3))
                .map_or(1, |(_, m)| m);
            let tail = rest.as_bytes();
            let n = tail.len();
            let day = if n >= 2 && tail[n - 2].is_ascii_digit() && tail[n - 1].is_ascii_digit() {
                rest[n - 2..].parse::<u32>().map_err(|_| bad())?
            } else if tail[n - 1].is_ascii_digit() {
                rest[n - 1..].parse::<u32>().map_err(|_| bad())?
            } else {
                return Err(bad());
            };
            NaiveDate::from_ymd_opt(today.year(), m, day).ok_or_else(bad)?
        }
        _ if rest.get(..3).is_some_and(|p| WEEKDAYS.contains(&p)) => {
            let want = WEEKDAYS
                .iter()
                .zip(0i64..)
                .find(|(x, _)| Some(**x) == rest.get(..3))
                .map_or(0, |(_, i)| i);
            let have = i64::from(today.weekday().num_days_from_monday());
            today - Duration::days((have - want).rem_euclid(7))
        }
        _ => return Err(bad()),
    };
    let t = NaiveTime::from_hms_opt(hour, minute, 0).ok_or_else(bad)?;
    localize(tz, date.and_time(t)).ok_or_else(bad)
}

/// graphite-web's parseATTime: the Unix time a `from`/`until` value names.
pub fn parse_at_time(text: &str, tz: &Tz, now: i64) -> Result<i64, TimeError> {
    let s: String = text
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| !matches!(c, '_' | ',' | ' '))
        .collect();
    let bad = || TimeError::Invalid(text.to_string());
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let is_date = s.len() == 8
            && s[..4].parse::<u32>().is_ok_and(|y| y > 1900)
            && s[4..6].parse::<u32>().is_ok_and(|m| m < 13)
            && s[6..].parse::<u32>().is_ok_and(|d| d < 32);
        if !is_date {
            let t = s
                .parse::<i64>()
                .map_err(|_| TimeError::Range(format!("the time {text:?}")))?;
            return check_time(t, || format!("the time {text:?}"));
        }
    } else if s.contains(':') && s.len() == 13 {
        let dt = NaiveDateTime::parse_from_str(&s, "%H:%M%Y%m%d").map_err(|_| bad())?;
        return localize(tz, dt).ok_or_else(bad);
    }
    let (reference, offset) = match (s.find('+'), s.find('-')) {
        (Some(p), _) => (&s[..p], &s[p..]),
        (None, Some(m)) => (&s[..m], &s[m..]),
        (None, None) => (s.as_str(), ""),
    };
    let base = parse_reference(reference, tz, now)?;
    let t = base
        .checked_add(parse_offset(offset)?)
        .ok_or_else(|| TimeError::Range(format!("the time {text:?}")))?;
    check_time(t, || format!("the time {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_314_600; // 2026-11-22 02:30:00 UTC, a Sunday
    const MIDNIGHT: i64 = 1_795_305_600;

    fn at(s: &str) -> i64 {
        parse_at_time(s, &Tz::UTC, NOW).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("5min").unwrap(), 300);
        assert_eq!(parse_offset("-1h30min").unwrap(), -5400);
        assert_eq!(parse_offset("+2d").unwrap(), 172_800);
        assert_eq!(parse_offset("1w").unwrap(), 604_800);
        assert_eq!(parse_offset("1mon").unwrap(), 30 * 86400);
        assert_eq!(parse_offset("1y").unwrap(), 365 * 86400);
        assert_eq!(parse_offset("10s").unwrap(), 10);
        assert_eq!(parse_offset("3hours").unwrap(), 10800);
        assert!(matches!(parse_offset("5m"), Err(TimeError::Unit { .. })));
        assert!(parse_offset("h").is_err());
        assert!(parse_offset("-").is_err());
    }

    /// Offsets and times that would overflow the sums made of them (or
    /// did: `now-300000000000y` wrapped in release and panicked in
    /// debug) are refused with the value named.
    #[test]
    fn out_of_range_times_and_offsets_are_errors_naming_them() {
        for text in [
            "1000000000y",
            "-1000000000y",
            "99999999999999999999s",
            "10010y",
        ] {
            match parse_offset(text) {
                Err(TimeError::Range(what)) => assert!(what.contains(text), "{what}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        assert_eq!(parse_offset("9999y").unwrap(), 9999 * 365 * 86400);
        for text in [
            "now-9000y",
            "-9000y",
            "now+9000y",
            "9223372036854775807",
            "99999999999999999999",
            "253402300800",
            "20261122+9000y",
        ] {
            match parse_at_time(text, &Tz::UTC, NOW) {
                Err(TimeError::Range(what)) => assert!(what.contains(text), "{what}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        // With `now` itself at the edge, an offset cannot wrap past it.
        assert!(matches!(
            parse_at_time("+9999y", &Tz::UTC, MAX_TIME),
            Err(TimeError::Range(_))
        ));
        assert_eq!(at("253402300799"), MAX_TIME);
        assert_eq!(add_offset(MAX_TIME, 0).unwrap(), MAX_TIME);
        assert!(add_offset(MAX_TIME, 1).is_err());
        assert!(add_offset(i64::MAX, i64::MAX).is_err());
        assert!(add_offset(MIN_TIME, -1).is_err());
    }

    #[test]
    fn every_form_graphite_accepts() {
        assert_eq!(at("now"), NOW);
        assert_eq!(at("-6h"), NOW - 6 * 3600);
        assert_eq!(at("now-15min"), NOW - 900);
        assert_eq!(at("-2d"), NOW - 2 * 86400);
        assert_eq!(at("1700000000"), 1_700_000_000);
        // A bare reference means midnight of that day, as in graphite-web.
        assert_eq!(at("20261122"), MIDNIGHT);
        assert_eq!(at("today"), MIDNIGHT);
        assert_eq!(at("yesterday"), MIDNIGHT - 86400);
        assert_eq!(at("tomorrow"), MIDNIGHT + 86400);
        assert_eq!(at("12:30_20261122"), MIDNIGHT + 12 * 3600 + 1800);
        assert_eq!(at("midnight"), MIDNIGHT);
        assert_eq!(at("noon"), MIDNIGHT + 12 * 3600);
        assert_eq!(at("noon yesterday"), MIDNIGHT - 12 * 3600);
        assert_eq!(at("3pm"), MIDNIGHT + 15 * 3600);
        assert_eq!(at("11/20/2026"), MIDNIGHT - 2 * 86400);
        assert_eq!(at("11/20/26"), MIDNIGHT - 2 * 86400);
        assert_eq!(at("nov20"), MIDNIGHT - 2 * 86400);
        assert_eq!(at("friday"), MIDNIGHT - 2 * 86400);
        assert_eq!(at("sunday"), MIDNIGHT);
        assert_eq!(at("midnight-1d"), MIDNIGHT - 86400);
        assert_eq!(at("noon+1h"), MIDNIGHT + 13 * 3600);
        assert!(parse_at_time("soon", &Tz::UTC, NOW).is_err());
        assert!(parse_at_time("-5x", &Tz::UTC, NOW).is_err());
        let berlin = zone("Europe/Berlin").unwrap();
        assert_eq!(
            parse_at_time("midnight", &berlin, NOW).unwrap(),
            1_795_302_000
        );
        assert!(zone("Mars/Olympus").is_err());
    }
}
