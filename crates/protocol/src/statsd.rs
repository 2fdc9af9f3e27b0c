//! The statsd line protocol: Etsy's grammar plus the DogStatsD extensions,
//! parsed over borrowed bytes without allocating.
//!
//! ```text
//! line    = name ":" sample (":" sample)* ["|#" tags] [ext-fields]
//! sample  = value "|" type ("|" field)*
//! type    = c | ms | h | d | g | s
//! field   = "@" rate | "#" tags | "c:" container | "T" unix-ts | "card:" x | "e:" x
//! ```
//!
//! Each sample of a line succeeds or fails on its own, as in Etsy: a bad
//! sample is one bad line in the counters, and the good ones still count.
//! DogStatsD events (`_e{..}`) and service checks (`_sc|..`) are recognised
//! here and parsed by [`super::dogstatsd`].

use nom::bytes::complete::take_till;
use nom::{FindSubstring, Parser};

use super::number::{parse_js_number, NumberError};

/// What a sample aggregates into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    Counter,
    /// `ms`, and also `h` and `d` (DogStatsD histograms and distributions),
    /// which every peer but Etsy treats as timers.
    Timer,
    Gauge,
    Set,
}

/// Why a line (or one sample of it) was refused. Each reason is counted on
/// its own so a user can tell a broken client from a broken network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BadReason {
    NoColon,
    EmptyKey,
    MissingType,
    UnknownType,
    BadValue,
    NonFinite,
    NegativeTimer,
    BadSampleRate,
    InvalidUtf8,
    Truncated,
    BadEvent,
}

impl BadReason {
    pub const ALL: [BadReason; 11] = [
        BadReason::NoColon,
        BadReason::EmptyKey,
        BadReason::MissingType,
        BadReason::UnknownType,
        BadReason::BadValue,
        BadReason::NonFinite,
        BadReason::NegativeTimer,
        BadReason::BadSampleRate,
        BadReason::InvalidUtf8,
        BadReason::Truncated,
        BadReason::BadEvent,
    ];

    /// The name used in internal metric names and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            BadReason::NoColon => "no_colon",
            BadReason::EmptyKey => "empty_key",
            BadReason::MissingType => "missing_type",
            BadReason::UnknownType => "unknown_type",
            BadReason::BadValue => "bad_value",
            BadReason::NonFinite => "non_finite",
            BadReason::NegativeTimer => "negative_timer",
            BadReason::BadSampleRate => "bad_sample_rate",
            BadReason::InvalidUtf8 => "invalid_utf8",
            BadReason::Truncated => "truncated",
            BadReason::BadEvent => "bad_event",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// One non-empty line of a packet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Line<'a> {
    Metric(MetricLine<'a>),
    /// A DogStatsD event, `_e{title_len,text_len}:title|text|...`.
    Event(&'a [u8]),
    /// A DogStatsD service check, `_sc|name|status|...`.
    ServiceCheck(&'a [u8]),
}

/// A metric line split into its name, its DogStatsD tags, and the samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricLine<'a> {
    /// The raw name, before tags are appended and before sanitizing.
    pub name: &'a [u8],
    /// The raw tag list after `|#`, if any (`env:prod,region:eu`).
    pub tags: Option<&'a [u8]>,
    body: &'a [u8],
    /// A sample rate written after the tags (`x:1|c|#t|@0.5` is unusual but
    /// DogStatsD allows fields in any order).
    tail_rate: Option<&'a [u8]>,
}

/// One value of a metric line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample<'a> {
    pub kind: MetricType,
    /// The number (0 for sets, whose member is `raw`).
    pub value: f64,
    /// The value as written: a set's member, and a gauge's sign.
    pub raw: &'a [u8],
    /// The effective sample rate, in (0, ...]; 1 when none was given.
    pub rate: f64,
}

impl Sample<'_> {
    /// A gauge written `+N` or `-N` changes an existing gauge (Etsy: only a
    /// non-zero one) instead of setting it.
    pub fn is_gauge_delta(&self) -> bool {
        matches!(self.raw.first(), Some(b'+') | Some(b'-'))
    }
}

/// Splits one line (no newline in it) into its parts. Samples are checked
/// lazily by [`MetricLine::samples`].
pub fn parse_line(line: &[u8]) -> Result<Line<'_>, BadReason> {
    if line.starts_with(b"_e{") {
        return Ok(Line::Event(line));
    }
    if line.starts_with(b"_sc|") {
        return Ok(Line::ServiceCheck(line));
    }
    // Etsy splits the whole line at the first `|#`: tags apply to every
    // sample of the line.
    let (head, tags, tail) = match find2(line, b'|', b'#') {
        Some(at) => {
            let after = &line[at + 2..];
            let end = memchr(b'|', after).unwrap_or(after.len());
            let tags = &after[..end];
            (
                &line[..at],
                (!tags.is_empty()).then_some(tags),
                &after[end..],
            )
        }
        None => (line, None, &b""[..]),
    };
    let (body, name) = match memchr(b':', head) {
        Some(at) => (&head[at + 1..], &head[..at]),
        None => return Err(BadReason::NoColon),
    };
    if name.is_empty() {
        return Err(BadReason::EmptyKey);
    }
    let tail_rate = tail
        .split(|&b| b == b'|')
        .find(|f| f.first() == Some(&b'@'));
    Ok(Line::Metric(MetricLine {
        name,
        tags,
        body,
        tail_rate,
    }))
}

impl<'a> MetricLine<'a> {
    /// The samples of the line, each valid or not on its own.
    pub fn samples(&self) -> Samples<'a> {
        Samples {
            rest: Some(self.body),
            tail_rate: self.tail_rate,
        }
    }
}

/// Iterator over the samples of a [`MetricLine`].
#[derive(Debug, Clone)]
pub struct Samples<'a> {
    rest: Option<&'a [u8]>,
    tail_rate: Option<&'a [u8]>,
}

impl<'a> Iterator for Samples<'a> {
    type Item = Result<Sample<'a>, BadReason>;

    fn next(&mut self) -> Option<Self::Item> {
        let input = self.rest.take()?;
        let (rest, raw) = split_sample(input);
        self.rest = rest;
        Some(check_sample(raw, self.tail_rate))
    }
}

/// The pieces of one sample before validation.
#[derive(Debug, Default)]
struct RawSample<'a> {
    value: &'a [u8],
    ty: Option<&'a [u8]>,
    rate: Option<&'a [u8]>,
    /// The first field after the type was neither a rate nor a known
    /// DogStatsD field: Etsy refuses it as a malformed sample rate.
    bad_first_field: bool,
}

fn is_value_end(c: u8) -> bool {
    c == b'|' || c == b':'
}

/// Cuts the first sample off `input`; returns what follows its `:` if another
/// sample follows.
fn split_sample(input: &[u8]) -> (Option<&[u8]>, RawSample<'_>) {
    let mut raw = RawSample::default();
    let (mut rest, value) = till(input, is_value_end);
    raw.value = value;
    if let Some((&b'|', after)) = rest.split_first() {
        let (r, ty) = till(after, is_value_end);
        raw.ty = Some(ty);
        rest = r;
        let mut index = 0;
        while let Some((&b'|', after)) = rest.split_first() {
            let (r, field) = field(after);
            rest = r;
            if let Some(rate) = field.strip_prefix(b"@") {
                if index == 0 {
                    raw.rate = Some(rate);
                }
            } else if index == 0 && !is_dogstatsd_field(field) {
                raw.bad_first_field = true;
            }
            index += 1;
        }
    }
    match rest.split_first() {
        Some((&b':', next)) => (Some(next), raw),
        _ => (None, raw),
    }
}

/// nom's `take_till` over a complete input: (rest, taken). It cannot fail on
/// complete input; the fallback only satisfies the type.
fn till(input: &[u8], stop: fn(u8) -> bool) -> (&[u8], &[u8]) {
    take_till::<_, _, ()>(stop)
        .parse(input)
        .unwrap_or((&input[input.len()..], input))
}

/// One `|`-separated field. DogStatsD's container, cardinality and external
/// data fields hold `:` themselves, so they run to the next `|`.
fn field(input: &[u8]) -> (&[u8], &[u8]) {
    let colon_ok =
        input.starts_with(b"c:") || input.starts_with(b"card:") || input.starts_with(b"e:");
    let end = if colon_ok {
        memchr(b'|', input).unwrap_or(input.len())
    } else {
        input
            .iter()
            .position(|&c| is_value_end(c))
            .unwrap_or(input.len())
    };
    (&input[end..], &input[..end])
}

fn is_dogstatsd_field(field: &[u8]) -> bool {
    field.starts_with(b"#")
        || field.starts_with(b"c:")
        || field.starts_with(b"card:")
        || field.starts_with(b"e:")
        || (field.len() > 1 && field[0] == b'T' && field[1..].iter().all(u8::is_ascii_digit))
}

fn check_sample<'a>(
    raw: RawSample<'a>,
    tail_rate: Option<&'a [u8]>,
) -> Result<Sample<'a>, BadReason> {
    let ty = raw.ty.ok_or(BadReason::MissingType)?;
    if raw.bad_first_field {
        return Err(BadReason::BadSampleRate);
    }
    let kind = match trim_ascii(ty) {
        b"c" => MetricType::Counter,
        b"ms" | b"h" | b"d" => MetricType::Timer,
        b"g" => MetricType::Gauge,
        b"s" => MetricType::Set,
        b"" => return Err(BadReason::MissingType),
        _ => return Err(BadReason::UnknownType),
    };
    let rate = match raw.rate.or(tail_rate.map(|r| &r[1..])) {
        Some(r) => sample_rate(r)?,
        None => 1.0,
    };
    let value = match kind {
        MetricType::Set => {
            if std::str::from_utf8(raw.value).is_err() {
                return Err(BadReason::InvalidUtf8);
            }
            0.0
        }
        _ => match parse_js_number(raw.value) {
            Ok(v) => v,
            Err(NumberError::Invalid) => return Err(BadReason::BadValue),
            Err(NumberError::NonFinite) => return Err(BadReason::NonFinite),
        },
    };
    if kind == MetricType::Timer && value < 0.0 {
        return Err(BadReason::NegativeTimer);
    }
    Ok(Sample {
        kind,
        value,
        raw: raw.value,
        rate,
    })
}

/// Etsy accepts `@` followed by any non-negative JS number, then uses only
/// the leading `[0-9.]+` of it (`@2e-1` samples at 2). A rate that comes out
/// as zero, not finite, or empty would divide by zero or crash Etsy; here it
/// is a bad line.
fn sample_rate(text: &[u8]) -> Result<f64, BadReason> {
    if text.is_empty() || text[0] == b'-' {
        return Err(BadReason::BadSampleRate);
    }
    let prefix_len = text
        .iter()
        .position(|c| !(c.is_ascii_digit() || *c == b'.'))
        .unwrap_or(text.len());
    // The usual rate (`0.1`) is all prefix: then the whole number and the
    // prefix are the same text and one parse answers both questions.
    if prefix_len < text.len() && parse_js_number(text).is_err() {
        return Err(BadReason::BadSampleRate);
    }
    // A rate is used as 1/rate: one below 1/f64::MAX (a subnormal such as
    // `@0.000…01`) would count each sample as infinitely many.
    match parse_js_number(&text[..prefix_len]) {
        Ok(r) if r > 0.0 && (1.0 / r).is_finite() => Ok(r),
        _ => Err(BadReason::BadSampleRate),
    }
}

fn trim_ascii(s: &[u8]) -> &[u8] {
    s.trim_ascii()
}

/// Position of the first `needle`. nom's `find_substring` with a one-byte
/// needle is `memchr::memchr`, which scans a word or a vector at a time;
/// the byte-at-a-time loop it replaces was most of the parser's time on
/// the long names real traffic has.
fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.find_substring(&[needle][..])
}

/// Position of the first `a` immediately followed by `b`. Searches for the
/// rarer `b` (`#` in `|#`) and checks the byte before it, so a line without
/// tags costs one fast scan.
fn find2(hay: &[u8], a: u8, b: u8) -> Option<usize> {
    let mut from = 1;
    while from < hay.len() {
        let at = from + memchr(b, &hay[from..])?;
        if hay[at - 1] == a {
            return Some(at - 1);
        }
        from = at + 1;
    }
    None
}

/// Splits a packet into its non-empty lines (`\n`-separated; a trailing
/// `\r` stays on the line and is trimmed where Etsy trims it).
pub fn lines(packet: &[u8]) -> impl Iterator<Item = &[u8]> {
    // `split` with a closure tests one byte at a time; memchr finds each
    // newline a vector at a time, which matters on 1.4 kB datagrams.
    let mut rest = Some(packet);
    std::iter::from_fn(move || {
        let r = rest?;
        match memchr(b'\n', r) {
            Some(at) => {
                rest = Some(&r[at + 1..]);
                Some(&r[..at])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
    .filter(|l| !l.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(line: &str) -> MetricLine<'_> {
        match parse_line(line.as_bytes()).unwrap() {
            Line::Metric(m) => m,
            other => panic!("not a metric: {other:?}"),
        }
    }

    fn samples(line: &str) -> Vec<Result<(MetricType, f64, f64), BadReason>> {
        metric(line)
            .samples()
            .map(|s| s.map(|s| (s.kind, s.value, s.rate)))
            .collect()
    }

    fn one(line: &str) -> Result<(MetricType, f64, f64), BadReason> {
        let mut v = samples(line);
        assert_eq!(v.len(), 1, "{line}: {v:?}");
        v.pop().unwrap()
    }

    use MetricType::*;

    #[test]
    fn basic_types() {
        assert_eq!(one("a:1|c"), Ok((Counter, 1.0, 1.0)));
        assert_eq!(one("a:320|ms"), Ok((Timer, 320.0, 1.0)));
        assert_eq!(one("a:5|h"), Ok((Timer, 5.0, 1.0)));
        assert_eq!(one("a:7|d|@0.5"), Ok((Timer, 7.0, 0.5)));
        assert_eq!(one("a:42|g"), Ok((Gauge, 42.0, 1.0)));
        assert_eq!(one("a:bob|s"), Ok((Set, 0.0, 1.0)));
        assert_eq!(one("a:-3|c"), Ok((Counter, -3.0, 1.0)));
        assert_eq!(one("a:1.5|c|@0.1"), Ok((Counter, 1.5, 0.1)));
    }

    #[test]
    fn names_are_borrowed_as_written() {
        let m = metric("api.latency:320|ms|@0.1");
        assert_eq!(m.name, b"api.latency");
        assert_eq!(m.tags, None);
        let m = metric("my key/x@y:1|c");
        assert_eq!(m.name, b"my key/x@y");
    }

    #[test]
    fn multi_value_lines() {
        assert_eq!(
            samples("k:1|c:2|ms:3|g"),
            vec![
                Ok((Counter, 1.0, 1.0)),
                Ok((Timer, 2.0, 1.0)),
                Ok((Gauge, 3.0, 1.0))
            ]
        );
        // Etsy's `pack:1:2|c`: the first part has no type, the second counts.
        assert_eq!(
            samples("pack:1:2|c"),
            vec![Err(BadReason::MissingType), Ok((Counter, 2.0, 1.0))]
        );
        assert_eq!(
            samples("k:1|c|@0.5:2|c"),
            vec![Ok((Counter, 1.0, 0.5)), Ok((Counter, 2.0, 1.0))]
        );
    }

    #[test]
    fn dogstatsd_tags_and_fields() {
        let m = metric("api.req:1|c|#env:prod,region:eu");
        assert_eq!(m.name, b"api.req");
        assert_eq!(m.tags, Some(&b"env:prod,region:eu"[..]));
        assert_eq!(
            one("api.req:1|c|#env:prod,region:eu"),
            Ok((Counter, 1.0, 1.0))
        );
        assert_eq!(
            one("x:1|c|@0.5|#a:b|c:container-1|T1700000000"),
            Ok((Counter, 1.0, 0.5))
        );
        assert_eq!(one("x:1|c|c:abc:def"), Ok((Counter, 1.0, 1.0)));
        assert_eq!(one("x:1|c|T1700000000"), Ok((Counter, 1.0, 1.0)));
        assert_eq!(one("x:1|c|card:low"), Ok((Counter, 1.0, 1.0)));
        assert_eq!(one("x:1|c|#t|@0.25"), Ok((Counter, 1.0, 0.25)));
        assert_eq!(metric("x:1|c|#").tags, None);
    }

    #[test]
    fn extra_fields_after_the_rate_are_ignored_as_etsy_does() {
        assert_eq!(one("w:1|c|@0.5|extra"), Ok((Counter, 1.0, 0.5)));
    }

    #[test]
    fn crlf_lines() {
        assert_eq!(one("crlf:3|ms\r"), Ok((Timer, 3.0, 1.0)));
        assert_eq!(one("crlf2:4|c|@0.5\r"), Ok((Counter, 4.0, 0.5)));
    }

    #[test]
    fn sample_rates_follow_etsy() {
        assert_eq!(one("a:1|c|@2"), Ok((Counter, 1.0, 2.0)));
        assert_eq!(one("a:1|c|@.2"), Ok((Counter, 1.0, 0.2)));
        // Etsy validates the whole number but samples at the [0-9.]+ prefix.
        assert_eq!(one("a:1|c|@2e-1"), Ok((Counter, 1.0, 2.0)));
        for bad in [
            "a:1|c|@",
            "a:1|c|@blah",
            "a:1|c|@.",
            "a:1|c|@.1.",
            "a:1|c|@-1.0",
            "a:1|c|b",
            "a:1|c|@0",
            "a:1|c|@+0.5",
        ] {
            assert_eq!(one(bad), Err(BadReason::BadSampleRate), "{bad}");
        }
    }

    #[test]
    fn bad_lines_by_reason() {
        assert_eq!(parse_line(b"nocolon"), Err(BadReason::NoColon));
        assert_eq!(parse_line(b"nocolon|c"), Err(BadReason::NoColon));
        assert_eq!(parse_line(b":1|c"), Err(BadReason::EmptyKey));
        assert_eq!(one("x:1"), Err(BadReason::MissingType));
        assert_eq!(one("x:1|"), Err(BadReason::MissingType));
        assert_eq!(one("x:1|zz"), Err(BadReason::UnknownType));
        assert_eq!(one("x:1|kv"), Err(BadReason::UnknownType));
        assert_eq!(one("x:abc|c"), Err(BadReason::BadValue));
        assert_eq!(one("x:|c"), Err(BadReason::BadValue));
        assert_eq!(one("empty.timer:|ms"), Err(BadReason::BadValue));
        assert_eq!(one("x:NaN|g"), Err(BadReason::NonFinite));
        assert_eq!(one("x:Infinity|c"), Err(BadReason::NonFinite));
        assert_eq!(one("x:1e999|ms"), Err(BadReason::NonFinite));
        assert_eq!(one("negtimer:-1|ms"), Err(BadReason::NegativeTimer));
    }

    #[test]
    fn invalid_utf8_set_member() {
        let m = match parse_line(b"x:\xff\xfe|s").unwrap() {
            Line::Metric(m) => m,
            _ => unreachable!(),
        };
        let v: Vec<_> = m.samples().collect();
        assert_eq!(v, vec![Err(BadReason::InvalidUtf8)]);
    }

    #[test]
    fn negative_zero_timer_is_fine_and_hex_counts() {
        assert_eq!(one("t:-0.0|ms"), Ok((Timer, -0.0, 1.0)));
        assert_eq!(one("hex:0x10|c"), Ok((Counter, 16.0, 1.0)));
    }

    #[test]
    fn gauge_sign_and_sets() {
        let m = metric("g:+4|g");
        let s = m.samples().next().unwrap().unwrap();
        assert!(s.is_gauge_delta());
        let m = metric("g:-10|g");
        assert!(m.samples().next().unwrap().unwrap().is_gauge_delta());
        let m = metric("g:10|g");
        assert!(!m.samples().next().unwrap().unwrap().is_gauge_delta());
        let m = metric("u:alice|s");
        assert_eq!(m.samples().next().unwrap().unwrap().raw, b"alice");
        // Etsy keeps the sampled gauge's value and ignores the rate.
        assert_eq!(one("gauge.sampled:10|g|@0.5"), Ok((Gauge, 10.0, 0.5)));
    }

    #[test]
    fn events_and_service_checks_are_recognised() {
        assert!(matches!(
            parse_line(b"_e{5,4}:title|text"),
            Ok(Line::Event(_))
        ));
        assert!(matches!(
            parse_line(b"_sc|Redis|2|#env:dev"),
            Ok(Line::ServiceCheck(_))
        ));
    }

    #[test]
    fn fast_scans_agree_with_the_plain_loops() {
        // The byte-at-a-time versions the memchr-based ones replaced.
        fn find2_plain(hay: &[u8], a: u8, b: u8) -> Option<usize> {
            hay.windows(2).position(|w| w[0] == a && w[1] == b)
        }
        fn lines_plain(p: &[u8]) -> Vec<&[u8]> {
            p.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect()
        }
        let mut rng = fastrand::Rng::with_seed(11);
        let alphabet = b"ab|#:\n@.1";
        for _ in 0..20_000 {
            let len = rng.usize(0..80);
            let s: Vec<u8> = (0..len)
                .map(|_| alphabet[rng.usize(..alphabet.len())])
                .collect();
            assert_eq!(find2(&s, b'|', b'#'), find2_plain(&s, b'|', b'#'), "{s:?}");
            assert_eq!(lines(&s).collect::<Vec<_>>(), lines_plain(&s), "{s:?}");
            assert_eq!(memchr(b':', &s), s.iter().position(|&c| c == b':'), "{s:?}");
        }
    }

    #[test]
    fn packet_lines_skip_empties() {
        let v: Vec<_> = lines(b"a:1|c\nb:2|c\n\nc:4|c\n").collect();
        assert_eq!(v, vec![&b"a:1|c"[..], b"b:2|c", b"c:4|c"]);
    }
}
