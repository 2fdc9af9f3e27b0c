//! The carbon plaintext protocol, one point per line, parsed over borrowed
//! bytes without allocating.
//!
//! ```text
//! line      = [blank] name blank value blank timestamp [blank] ["\r"]
//! blank     = (" " | "\t")+
//! name      = metric (";" key "=" tag-value)*
//! value     = what Python's float() reads, but NaN
//! timestamp = Unix seconds, as float() reads them, truncated toward zero;
//!             -1 means "now"
//! ```
//!
//! The rules are carbon's (`MetricLineReceiver` and `TaggedSeries`):
//!
//! - A line is UTF-8, stripped, and split on blanks into exactly three
//!   fields. Here only spaces and tabs separate fields (carbon also splits
//!   on other Unicode white space; a name holding any is refused instead).
//! - Values and timestamps are floats. `nan` is refused (carbon drops NaN
//!   points silently; here they are counted); `inf` and `-inf` pass, as
//!   `float()` reads them. Python's `_` digit separators are not accepted.
//! - A timestamp is truncated toward zero like `int(float(ts))`; one that
//!   truncates to -1 asks for the receive time ([`NOW`]: the caller, which
//!   has a clock, fills it in), and any other negative one is refused.
//! - A tagged name (`metric;key=value;...`) must pass carbon's tag checks:
//!   keys and values non-empty, no `!` or `^` in keys, no value starting
//!   with `~`. [`normalize_tags`] gives carbon's canonical spelling.
//!
//! Graphite's OpenMetrics-style names (`metric{key="value"}`) are not
//! recognised: they are kept, and stored, as written.

use std::borrow::Cow;
use std::fmt;

/// The timestamp of a point sent with timestamp `-1`: carbon stamps it with
/// the time it arrives. The parser has no clock, so it leaves this for the
/// receiver to replace.
pub const NOW: i64 = -1;

/// One data point, borrowing its name from the line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point<'a> {
    /// The name as sent: tags not yet in canonical order (see
    /// [`normalize_tags`]).
    pub name: &'a str,
    /// Never NaN; may be infinite.
    pub value: f64,
    /// Unix seconds, `>= 0`, or [`NOW`].
    pub timestamp: i64,
}

/// Why a line was refused. Each reason is counted on its own, as
/// `carbon.bad_lines.<as_str()>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CarbonBad {
    /// The line is not valid UTF-8.
    NotUtf8,
    /// Not exactly three blank-separated fields.
    WrongFieldCount,
    /// The metric part of the name is empty (`;k=v`), or only `~`.
    EmptyName,
    /// The name holds a control character or non-ASCII white space.
    BadName,
    /// A `;key=value` segment breaks carbon's tag rules.
    BadTags,
    /// The value is not a number, or is NaN.
    BadValue,
    /// The timestamp is not a number, not finite, negative (other than the
    /// `-1` meaning now) or beyond `i64` seconds.
    BadTimestamp,
    /// A TCP line longer than the limit, or the cut last line of a UDP
    /// datagram longer than the buffer. Never returned by [`parse_line`].
    TooLong,
}

impl CarbonBad {
    pub const ALL: [CarbonBad; 8] = [
        CarbonBad::NotUtf8,
        CarbonBad::WrongFieldCount,
        CarbonBad::EmptyName,
        CarbonBad::BadName,
        CarbonBad::BadTags,
        CarbonBad::BadValue,
        CarbonBad::BadTimestamp,
        CarbonBad::TooLong,
    ];

    /// The name used in internal metric names and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            CarbonBad::NotUtf8 => "not_utf8",
            CarbonBad::WrongFieldCount => "wrong_field_count",
            CarbonBad::EmptyName => "empty_name",
            CarbonBad::BadName => "bad_name",
            CarbonBad::BadTags => "bad_tags",
            CarbonBad::BadValue => "bad_value",
            CarbonBad::BadTimestamp => "bad_timestamp",
            CarbonBad::TooLong => "too_long",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for CarbonBad {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for CarbonBad {}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn is_blank_byte(b: u8) -> bool {
    b == b' ' || b == b'\t' || b == b'\r'
}

/// Parses one line (without its `\n`; a trailing `\r` is allowed).
pub fn parse_line(line: &[u8]) -> Result<Point<'_>, CarbonBad> {
    let line = std::str::from_utf8(line).map_err(|_| CarbonBad::NotUtf8)?;
    let line = line.trim_matches(|c| is_blank(c) || c == '\r');
    let mut fields = line.split(is_blank).filter(|f| !f.is_empty());
    let (Some(name), Some(value), Some(timestamp), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(CarbonBad::WrongFieldCount);
    };
    check_name(name)?;
    let value = parse_value(value)?;
    let timestamp = parse_timestamp(timestamp)?;
    Ok(Point {
        name,
        value,
        timestamp,
    })
}

/// Calls `f` with each non-blank line of `buf` (split on `\n`) parsed, and
/// the line itself (without its `\n`) for logging. Lines holding only
/// spaces, tabs and `\r` are skipped.
pub fn for_each_line<'a>(buf: &'a [u8], mut f: impl FnMut(Result<Point<'a>, CarbonBad>, &'a [u8])) {
    for line in buf.split(|&b| b == b'\n') {
        if line.iter().all(|&b| is_blank_byte(b)) {
            continue;
        }
        f(parse_line(line), line);
    }
}

/// Refuses what carbon could not store or would split differently: control
/// characters and white space anywhere, an empty metric part, bad tags.
fn check_name(name: &str) -> Result<(), CarbonBad> {
    let plain = name.bytes().all(|b| b > b' ' && b < 0x7f);
    if !plain && name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(CarbonBad::BadName);
    }
    let (metric, tags) = match name.split_once(';') {
        Some((metric, tags)) => (metric, Some(tags)),
        None => (name, None),
    };
    // carbon names the series by its metric part without leading `~`
    // (tag values may not start with one); nothing may be left of it.
    if metric.trim_start_matches('~').is_empty() {
        return Err(CarbonBad::EmptyName);
    }
    match tags {
        Some(tags) if !tags.split(';').all(is_valid_tag) => Err(CarbonBad::BadTags),
        _ => Ok(()),
    }
}

/// One `key=value` segment, by carbon's rules. The key stops at the first
/// `=`, so a value may hold more of them.
fn is_valid_tag(segment: &str) -> bool {
    match segment.split_once('=') {
        Some((key, value)) => {
            !key.is_empty()
                && !value.is_empty()
                && !key.contains(['!', '^'])
                && !value.starts_with('~')
        }
        None => false,
    }
}

/// Rust's float grammar is Python's `float()` (signs, `.5`, `1.`, exponents,
/// `inf`/`infinity`/`nan` in any case) less `_` separators and non-ASCII
/// digits; the fields hold no white space left to trim.
fn parse_value(field: &str) -> Result<f64, CarbonBad> {
    match field.parse::<f64>() {
        Ok(v) if !v.is_nan() => Ok(v),
        _ => Err(CarbonBad::BadValue),
    }
}

/// 2^63, the first float past `i64`.
const I64_END: f64 = 9_223_372_036_854_775_808.0;

#[expect(
    clippy::cast_possible_truncation,
    reason = "t is a whole number in [0, 2^63), checked just before the cast, so it fits an i64 exactly"
)]
fn parse_timestamp(field: &str) -> Result<i64, CarbonBad> {
    let bytes = field.as_bytes();
    // Almost every timestamp is plain digits; 18 of them always fit.
    if bytes.len() <= 18 && bytes.iter().all(u8::is_ascii_digit) {
        return Ok(bytes
            .iter()
            .fold(0i64, |n, &d| n * 10 + i64::from(d - b'0')));
    }
    let t = field.parse::<f64>().map_err(|_| CarbonBad::BadTimestamp)?;
    if !t.is_finite() {
        return Err(CarbonBad::BadTimestamp);
    }
    // int() truncates toward zero: -0.5 is 0, and -1.5 is -1 (now).
    let t = t.trunc();
    if t == -1.0 {
        Ok(NOW)
    } else if (0.0..I64_END).contains(&t) {
        Ok(t as i64)
    } else {
        Err(CarbonBad::BadTimestamp)
    }
}

/// carbon's canonical spelling of a series name (`TaggedSeries.parse(name).path`):
/// the metric part without leading `~`, then the tags sorted, each key once
/// (the last one sent wins) and any `name` tag dropped (carbon fills that
/// tag from the metric part).
///
/// The sort is by whole `key=value` text, as carbon sorts its `;key=value`
/// strings: the same as by key except where a key extends another with a
/// character below `=` (`a.b=1` sorts before `a=2`).
///
/// Borrows when nothing moves, which is the case for untagged names and
/// already canonical ones. A name carbon's parser refuses (see
/// [`parse_line`]'s reasons) comes back unchanged, as carbon stores it.
pub fn normalize_tags(name: &str) -> Cow<'_, str> {
    if check_name(name).is_err() {
        return Cow::Borrowed(name);
    }
    let name = name.trim_start_matches('~');
    let Some((metric, tags)) = name.split_once(';') else {
        return Cow::Borrowed(name);
    };
    if is_canonical(tags) {
        return Cow::Borrowed(name);
    }
    // (key, position, segment): by key, the last sent first.
    let mut segments: Vec<(&str, usize, &str)> = tags
        .split(';')
        .enumerate()
        .map(|(i, segment)| (tag_key(segment), i, segment))
        .filter(|&(key, _, _)| key != "name")
        .collect();
    segments.sort_unstable_by(|a, b| a.0.cmp(b.0).then(b.1.cmp(&a.1)));
    segments.dedup_by(|later, first| later.0 == first.0);
    segments.sort_unstable_by(|a, b| a.2.cmp(b.2));
    let mut out = String::with_capacity(name.len());
    out.push_str(metric);
    for (_, _, segment) in segments {
        out.push(';');
        out.push_str(segment);
    }
    Cow::Owned(out)
}

fn tag_key(segment: &str) -> &str {
    segment.split_once('=').map_or(segment, |(key, _)| key)
}

/// Segments in strictly increasing order, no key twice, no `name` key.
/// Segments with one key are neighbours once sorted (they share the prefix
/// `key=`), so comparing neighbours finds every repeated key.
fn is_canonical(tags: &str) -> bool {
    let mut previous: Option<&str> = None;
    for segment in tags.split(';') {
        let key = tag_key(segment);
        if key == "name" {
            return false;
        }
        if let Some(p) = previous {
            if p >= segment || tag_key(p) == key {
                return false;
            }
        }
        previous = Some(segment);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Point<'_> {
        parse_line(line.as_bytes()).unwrap_or_else(|e| panic!("{line:?}: {e:?}"))
    }

    fn bad(line: &[u8]) -> CarbonBad {
        match parse_line(line) {
            Ok(p) => panic!("{:?} parsed as {p:?}", String::from_utf8_lossy(line)),
            Err(e) => e,
        }
    }

    fn point(name: &str, value: f64, timestamp: i64) -> Point<'_> {
        Point {
            name,
            value,
            timestamp,
        }
    }

    #[test]
    fn plain_line() {
        assert_eq!(
            ok("servers.web1.cpu 12.5 1700000000"),
            point("servers.web1.cpu", 12.5, 1_700_000_000)
        );
        assert_eq!(ok("a 0 0"), point("a", 0.0, 0));
    }

    #[test]
    fn blanks_between_and_around_fields() {
        let want = point("a.b", 1.0, 2);
        for line in [
            "a.b 1 2",
            "a.b\t1\t2",
            "a.b  \t 1 \t\t 2",
            "  a.b 1 2",
            "\ta.b 1 2\t ",
            "a.b 1 2\r",
            "a.b 1 2 \r",
            "a.b 1 2\r\r",
            " \t a.b 1 2 \t\r",
        ] {
            assert_eq!(ok(line), want, "{line:?}");
        }
    }

    #[test]
    fn wrong_field_count() {
        for line in [
            &b"a"[..],
            b"a 1",
            b"a 1 2 3",
            b"a 1 2 3 4",
            b"   ",
            b"\r",
            b"",
            b"a 1 \r 2",
            b"a;b=c d 1 2",
        ] {
            assert_eq!(bad(line), CarbonBad::WrongFieldCount, "{line:?}");
        }
    }

    #[test]
    fn not_utf8() {
        assert_eq!(bad(b"a\xff 1 2"), CarbonBad::NotUtf8);
        assert_eq!(bad(b"a 1 2\xc3"), CarbonBad::NotUtf8);
        // Checked first, as carbon decodes the whole line before splitting.
        assert_eq!(bad(b"\xfe"), CarbonBad::NotUtf8);
    }

    #[test]
    fn names() {
        assert_eq!(ok("caf\u{e9}.t\u{fc}r 1 2").name, "caf\u{e9}.t\u{fc}r");
        assert_eq!(ok("a/b-c_d:e@f 1 2").name, "a/b-c_d:e@f");
        assert_eq!(ok("~a.b 1 2").name, "~a.b");
        for line in [
            &b"a\x01b 1 2"[..],
            b"a\x7fb 1 2",
            b"a\x00 1 2",
            b"a\rb 1 2",
            b"a\x0bb 1 2",
            b"a\x0cb 1 2",
            "a\u{85}b 1 2".as_bytes(),
            "a\u{a0}b 1 2".as_bytes(),
            "a\u{2028}b 1 2".as_bytes(),
            "a\u{3000}b 1 2".as_bytes(),
            "a;k=v\u{1}x 1 2".as_bytes(),
        ] {
            assert_eq!(bad(line), CarbonBad::BadName, "{line:?}");
        }
        for line in [&b"~ 1 2"[..], b"~~~ 1 2", b";a=b 1 2", b"~;a=b 1 2"] {
            assert_eq!(bad(line), CarbonBad::EmptyName, "{line:?}");
        }
    }

    #[test]
    fn tags() {
        assert_eq!(ok("m;k=v 1 2").name, "m;k=v");
        assert_eq!(ok("m;b=2;a=1 1 2").name, "m;b=2;a=1");
        // A value may hold `=` and `~` (not first), a key `~`.
        assert_eq!(ok("m;k=a=b 1 2").name, "m;k=a=b");
        assert_eq!(ok("m;k=a~ 1 2").name, "m;k=a~");
        assert_eq!(ok("m;~k=v 1 2").name, "m;~k=v");
        for line in [
            "m; 1 2",
            "m;; 1 2",
            "m;k 1 2",
            "m;=v 1 2",
            "m;k= 1 2",
            "m;k=~v 1 2",
            "m;k!=v 1 2",
            "m;k^=v 1 2",
            "m;a=1; 1 2",
            "m;a=1;;b=2 1 2",
            "m;a=1;b 1 2",
        ] {
            assert_eq!(bad(line.as_bytes()), CarbonBad::BadTags, "{line:?}");
        }
    }

    #[test]
    fn values_as_python_float_reads_them() {
        for (field, want) in [
            ("1", 1.0),
            ("-2.5", -2.5),
            ("+3", 3.0),
            ("1e3", 1000.0),
            ("1E+3", 1000.0),
            ("2.5e-1", 0.25),
            (".5", 0.5),
            ("-.5", -0.5),
            ("5.", 5.0),
            ("007", 7.0),
            ("-0", -0.0),
            ("1e400", f64::INFINITY),
            ("inf", f64::INFINITY),
            ("+inf", f64::INFINITY),
            ("-inf", f64::NEG_INFINITY),
            ("Infinity", f64::INFINITY),
            ("-INF", f64::NEG_INFINITY),
            ("1e-400", 0.0),
        ] {
            let line = format!("m {field} 2");
            let got = ok(&line).value;
            assert_eq!(got.to_bits(), want.to_bits(), "{field:?} gave {got}");
        }
    }

    #[test]
    fn bad_values() {
        for field in [
            "nan", "NaN", "-nan", "+NAN", "x", "1x", "1,5", "1_000", "0x10", ".", "e5", "1e",
            "1e+", "--1", "+-1", "in", "infinit", "1.2.3", "１",
        ] {
            let line = format!("m {field} 2");
            assert_eq!(bad(line.as_bytes()), CarbonBad::BadValue, "{field:?}");
        }
    }

    #[test]
    fn timestamps() {
        for (field, want) in [
            ("0", 0),
            ("1700000000", 1_700_000_000),
            ("0001700000000", 1_700_000_000),
            ("1700000000.5", 1_700_000_000),
            ("1700000000.999", 1_700_000_000),
            ("1.7e9", 1_700_000_000),
            ("+1700000000", 1_700_000_000),
            ("999999999999999999", 999_999_999_999_999_999),
            // The largest float below 2^63; one more digit's worth rounds up
            // to 2^63 and out of range.
            ("9223372036854774784", 9_223_372_036_854_774_784),
            ("-0", 0),
            ("-0.5", 0),
            ("-1", NOW),
            ("-1.0", NOW),
            ("-1.9", NOW),
            ("-1e0", NOW),
        ] {
            let line = format!("m 1 {field}");
            assert_eq!(ok(&line).timestamp, want, "{field:?}");
        }
    }

    #[test]
    fn bad_timestamps() {
        for field in [
            "N",
            "now",
            "x",
            "17e",
            "-2",
            "-2.5",
            "-1700000000",
            "nan",
            "inf",
            "-inf",
            "1e300",
            "9223372036854775807",
            "9223372036854775808",
            "99999999999999999999",
            "1_700_000_000",
            "",
        ] {
            let line = format!("m 1 {field}");
            let want = if field.is_empty() {
                CarbonBad::WrongFieldCount
            } else {
                CarbonBad::BadTimestamp
            };
            assert_eq!(bad(line.as_bytes()), want, "{field:?}");
        }
    }

    #[test]
    fn the_first_bad_field_names_the_reason() {
        assert_eq!(bad(b"a\x01 x y"), CarbonBad::BadName);
        assert_eq!(bad(b"a;k x y"), CarbonBad::BadTags);
        assert_eq!(bad(b"a x y"), CarbonBad::BadValue);
        assert_eq!(bad(b"a nan -5"), CarbonBad::BadValue);
        assert_eq!(bad(b"a 1 y"), CarbonBad::BadTimestamp);
    }

    #[test]
    fn reasons_are_listed_once_with_distinct_names() {
        for (i, r) in CarbonBad::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
            assert_eq!(r.to_string(), r.as_str());
        }
        let mut names: Vec<_> = CarbonBad::ALL.iter().map(|r| r.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CarbonBad::ALL.len());
        assert!(names.iter().all(|n| n
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))));
    }

    fn lines(buf: &[u8]) -> Vec<(Result<Point<'_>, CarbonBad>, &[u8])> {
        let mut out = Vec::new();
        for_each_line(buf, |r, raw| out.push((r, raw)));
        out
    }

    #[test]
    fn for_each_line_splits_and_skips_blank_lines() {
        let buf = b"\na 1 2\r\n\r\n  \t\nb x 3\n\nc 3 4";
        let got = lines(buf);
        assert_eq!(
            got,
            vec![
                (Ok(point("a", 1.0, 2)), &b"a 1 2\r"[..]),
                (Err(CarbonBad::BadValue), &b"b x 3"[..]),
                (Ok(point("c", 3.0, 4)), &b"c 3 4"[..]),
            ]
        );
        assert!(lines(b"").is_empty());
        assert!(lines(b"\n\n\r\n \n").is_empty());
        assert_eq!(lines(b"a 1 2\n").len(), 1);
    }

    #[test]
    fn for_each_line_points_borrow_from_the_buffer() {
        let buf = b"first.name 1 2\nsecond.name 3 4\n".to_vec();
        let mut names: Vec<&str> = Vec::new();
        for_each_line(&buf, |r, _| names.push(r.unwrap().name));
        assert_eq!(names, ["first.name", "second.name"]);
        let range = buf.as_ptr_range();
        assert!(names.iter().all(|n| range.contains(&n.as_ptr())));
    }

    fn borrowed(c: Cow<'_, str>) -> bool {
        matches!(c, Cow::Borrowed(_))
    }

    #[test]
    fn normalize_sorts_tags() {
        let n = normalize_tags("m;c=3;a=1;b=2");
        assert_eq!(n, "m;a=1;b=2;c=3");
        assert!(!borrowed(n));
        assert_eq!(normalize_tags("m;b=2;a=1"), "m;a=1;b=2");
        assert_eq!(normalize_tags("m;k=a=b;a=1"), "m;a=1;k=a=b");
    }

    #[test]
    fn normalize_borrows_when_nothing_moves() {
        for name in ["m", "a.b.c", "m;a=1", "m;a=1;b=2;c=3", "caf\u{e9};k=\u{fc}"] {
            let n = normalize_tags(name);
            assert_eq!(n, name);
            assert!(borrowed(n), "{name:?}");
        }
        // Stripping a leading `~` still borrows.
        let n = normalize_tags("~~m;a=1");
        assert_eq!(n, "m;a=1");
        assert!(borrowed(n));
        assert_eq!(normalize_tags("~m"), "m");
    }

    #[test]
    fn normalize_keeps_the_last_of_a_repeated_key() {
        assert_eq!(normalize_tags("m;a=1;a=2"), "m;a=2");
        assert_eq!(normalize_tags("m;a=2;b=1;a=1"), "m;a=1;b=1");
        assert_eq!(normalize_tags("m;a=1;b=2;a=3;a=0"), "m;a=0;b=2");
    }

    #[test]
    fn normalize_drops_the_name_tag() {
        assert_eq!(normalize_tags("m;name=x"), "m");
        assert_eq!(normalize_tags("m;b=2;name=x;a=1"), "m;a=1;b=2");
        assert_eq!(normalize_tags("~m;name=x"), "m");
        // Only the key `name`.
        assert_eq!(normalize_tags("m;names=x"), "m;names=x");
    }

    #[test]
    fn normalize_sorts_by_segment_text_as_carbon_does() {
        // ";a.b=1" < ";a=2" because '.' < '='; by key alone it would be the
        // other way round.
        assert_eq!(normalize_tags("m;a=2;a.b=1"), "m;a.b=1;a=2");
        let n = normalize_tags("m;a.b=1;a=2");
        assert!(borrowed(n));
        assert_eq!(normalize_tags("m;ab=1;a=2"), "m;a=2;ab=1");
        assert_eq!(normalize_tags("m;B=1;a=2"), "m;B=1;a=2");
    }

    #[test]
    fn normalize_leaves_names_carbon_refuses() {
        for name in ["m;k", "m;k=~v", ";a=1", "~", "m;b=2;a=1\u{1}", "m;a=1;;"] {
            let n = normalize_tags(name);
            assert_eq!(n, name);
            assert!(borrowed(n));
        }
    }

    #[test]
    fn normalize_is_idempotent() {
        for name in [
            "m",
            "~m",
            "m;c=3;a=1;b=2",
            "m;a=1;a=2;name=z",
            "m;a=2;a.b=1;a-b=3",
            "m;k",
            "~~;a=1",
        ] {
            let once = normalize_tags(name).into_owned();
            let twice = normalize_tags(&once);
            assert_eq!(twice, once, "{name:?}");
            assert!(borrowed(twice));
        }
    }

    #[test]
    fn normalize_many_tags() {
        let tags: Vec<String> = (0..2000).rev().map(|i| format!("k{i:05}=v")).collect();
        let name = format!("m;{}", tags.join(";"));
        let n = normalize_tags(&name);
        let mut sorted = tags.clone();
        sorted.sort();
        assert_eq!(n, format!("m;{}", sorted.join(";")));
        assert!(borrowed(normalize_tags(&n)));
    }
}
