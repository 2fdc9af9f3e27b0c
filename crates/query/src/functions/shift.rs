//! timeStack: the series over earlier windows, each shifted onto the
//! request's range (graphite-web's `timeStack`; its sibling timeShift is in
//! transform.rs).

use chrono::TimeZone;
use chrono_tz::{OffsetComponents, Tz};

use super::Args;
use crate::eval::{Context, QueryError};
use crate::series::Series;
use crate::time::parse_offset;

/// What `/functions` says about timeStack (graphite-web's group and
/// parameters); the registry dispatches by this name.
pub(super) const INFO: &[super::info::FnInfo] = {
    use super::info::{p, FnInfo, Lit::*, Ty, SERIES_LIST};
    &[FnInfo::new(
        "timeStack",
        "Transform",
        "The series shifted by timeShiftUnit times each of timeShiftStart up to timeShiftEnd (exclusive), all drawn over the request's range: last week's days stacked over today, for example.",
        &[
            SERIES_LIST,
            p("timeShiftUnit", Ty::Interval).dflt(Str("1d")).sugg(&[
                Str("1h"),
                Str("6h"),
                Str("12h"),
                Str("1d"),
                Str("2d"),
                Str("7d"),
                Str("14d"),
                Str("30d"),
            ]),
            p("timeShiftStart", Ty::Integer).dflt(Int(0)),
            p("timeShiftEnd", Ty::Integer).dflt(Int(7)),
        ],
    )]
};

/// graphite-web's default direction for a shift: into the past unless a
/// sign says otherwise (`'1d'` is `'-1d'`).
pub(super) fn signed_shift(text: &str) -> String {
    if text.starts_with(|c: char| c.is_ascii_digit()) {
        format!("-{text}")
    } else {
        text.to_string()
    }
}

/// One shifted copy of the stack, relabelled onto `base`'s window.
pub(super) fn stacked(mut s: Series, unit: &str, shift: i64, base: &Series) -> Series {
    s.tags.insert("timeShiftUnit".into(), unit.to_string());
    s.tags.insert("timeShift".into(), shift.to_string());
    s.name = format!("timeShift({}, {unit}, {shift})", s.name);
    s.path_expression = s.name.clone();
    s.start = base.start;
    s.end = base.end;
    s
}

/// `t`'s offset from UTC in `tz` and whether that is daylight saving time.
fn offset(tz: &Tz, t: i64) -> (i64, i64, bool) {
    match tz.timestamp_opt(t, 0).single() {
        Some(d) => {
            let o = d.offset();
            let base = o.base_utc_offset().num_seconds();
            let dst = o.dst_offset().num_seconds();
            (base + dst, base, dst != 0)
        }
        None => (0, 0, false),
    }
}

/// Python's `int(time.mktime(dt.timetuple()))` for the instant `t` held in
/// zone `tz`, in a process whose local time is `local`: `t`'s wall clock in
/// `tz`, read back as a wall clock of `local` with `tz`'s DST flag (glibc
/// takes the flag at its word, an hour earlier when it says DST). `t` itself
/// when the zones are the same.
pub(super) fn py_mktime(t: i64, tz: &Tz, local: &Tz) -> i64 {
    let (off, _, dst) = offset(tz, t);
    let wall = t + off;
    let (_, base, _) = offset(local, wall);
    wall - base - if dst { 3600 } else { 0 }
}

/// `time.localtime(time.mktime(dt.timetuple())).tm_isdst` for `t` in `tz`.
fn local_dst(t: i64, tz: &Tz, local: &Tz) -> bool {
    offset(local, py_mktime(t, tz, local)).2
}

/// timeShift's `alignDST`: +1 hour when the request's window is all in DST
/// and the shifted one all outside it, -1 in the opposite case, else 0
/// (DST as the server's local time sees it).
pub(super) fn dst_hours(ctx: &Context<'_>, sfrom: i64, suntil: i64) -> i64 {
    let is_dst = |t| local_dst(t, &ctx.tz, &ctx.server_tz);
    let (req_start, req_end) = (is_dst(ctx.from), is_dst(ctx.until));
    let (my_start, my_end) = (is_dst(sfrom), is_dst(suntil));
    if req_start && req_end && !my_start && !my_end {
        1
    } else if !req_start && !req_end && my_start && my_end {
        -1
    } else {
        0
    }
}

fn int_arg(a: &Args<'_>, i: usize, name: &str, default: i64) -> Result<i64, QueryError> {
    // graphite-web's int(): floats truncate.
    Ok(a.opt_num(i, name)?.map(super::py_int).unwrap_or(default))
}

pub(super) fn call(
    ctx: &mut Context<'_>,
    name: &str,
    a: &Args<'_>,
) -> Option<Result<Vec<Series>, QueryError>> {
    if name != "timeStack" {
        return None;
    }
    Some((|| {
        let first = a.series(ctx, 0)?;
        let unit = signed_shift(a.opt_string(1, "timeShiftUnit")?.unwrap_or("1d"));
        let delta = parse_offset(&unit)?;
        let Some(base) = first.first() else {
            return Ok(vec![]);
        };
        let start = int_arg(a, 2, "timeShiftStart", 0)?;
        let end = int_arg(a, 3, "timeShiftEnd", 7)?;
        // Each shift reads the list again: more shifts than the request
        // may read series could never be answered, and 10^9 of them would
        // loop for hours over windows with nothing in them.
        let shifts = end.saturating_sub(start).max(0).unsigned_abs();
        if shifts > ctx.limits.max_series as u64 {
            return Err(QueryError::TooMuch {
                what: "series",
                needed: usize::try_from(shifts).unwrap_or(usize::MAX),
                cap: ctx.limits.max_series,
            });
        }
        let mut out = Vec::new();
        for shift in start..end {
            let d = delta.checked_mul(shift).ok_or_else(|| {
                a.bad_arg(format!(
                    "timeShiftUnit {unit:?} times {shift} is out of range"
                ))
            })?;
            let (from, until) = (ctx.shifted(ctx.from, d)?, ctx.shifted(ctx.until, d)?);
            for s in a.series_over(ctx, 0, from, until)? {
                out.push(stacked(s, &unit, shift, base));
            }
        }
        Ok(out)
    })())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_tags_and_window() {
        assert_eq!(signed_shift("1d"), "-1d");
        assert_eq!(signed_shift("+1h"), "+1h");
        assert_eq!(signed_shift("-2h"), "-2h");
        let base = Series::new("a.b", 1000, 1100, 10, vec![1.0; 10]);
        let mut older = Series::new("a.b", 900, 1000, 10, vec![2.0; 10]);
        older.path_expression = "a.*".into();
        let s = stacked(older, "-100s", 1, &base);
        assert_eq!(s.name, "timeShift(a.b, -100s, 1)");
        assert_eq!(s.path_expression, s.name);
        assert_eq!((s.start, s.end, s.step), (1000, 1100, 10));
        assert_eq!(s.tags.get("timeShift").map(String::as_str), Some("1"));
        assert_eq!(
            s.tags.get("timeShiftUnit").map(String::as_str),
            Some("-100s")
        );
        assert_eq!(s.values, vec![2.0; 10]);
    }

    #[test]
    fn mktime_reads_the_wall_clock_in_the_local_zone() {
        let utc = Tz::UTC;
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let july = 1_782_864_000; // 2026-07-01 00:00 UTC, summer time
        let nov = 1_795_314_600; // 2026-11-22 02:30 UTC, winter time
        for t in [july, nov] {
            assert_eq!(py_mktime(t, &utc, &utc), t);
            assert_eq!(py_mktime(t, &berlin, &berlin), t);
        }
        // A Berlin wall clock read as UTC: +1 h in winter; in summer +2 h,
        // less the hour glibc takes off for the DST flag.
        assert_eq!(py_mktime(nov, &berlin, &utc), nov + 3600);
        assert_eq!(py_mktime(july, &berlin, &utc), july + 3600);
        // A UTC wall clock read in Berlin (standard time, flag off).
        assert_eq!(py_mktime(july, &utc, &berlin), july - 3600);
        assert!(local_dst(july, &berlin, &berlin));
        assert!(!local_dst(nov, &berlin, &berlin));
        assert!(!local_dst(july, &utc, &utc));
        assert!(
            local_dst(july, &utc, &berlin),
            "00:00 UTC read as CET is 01:00 CEST"
        );
    }
}
