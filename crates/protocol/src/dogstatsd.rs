//! DogStatsD events: `_e{title_len,text_len}:title|text|d:ts|h:host|p:prio|t:type|k:key|s:src|#tags`.
//!
//! rollupd keeps them as annotation events (a deploy posted by a client
//! library shows up as a deploy line on graphs). Lengths are in bytes, as the
//! Datadog agent reads them; `\n` in the text is written as the two bytes
//! `\\n` on the wire.

use nom::bytes::complete::{tag, take};
use nom::character::complete::{char, digit1};
use nom::combinator::map_res;
use nom::sequence::{delimited, separated_pair};
use nom::{IResult, Parser};
use serde::{Deserialize, Serialize};

/// A parsed DogStatsD event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DogEvent {
    pub title: String,
    pub text: String,
    /// `d:` — when it happened (unix seconds); the receive time when absent.
    pub timestamp: Option<i64>,
    pub hostname: Option<String>,
    pub aggregation_key: Option<String>,
    pub priority: Option<String>,
    pub source_type: Option<String>,
    pub alert_type: Option<String>,
    pub tags: Vec<String>,
}

fn usize_digits(input: &[u8]) -> IResult<&[u8], usize> {
    map_res(digit1, |d: &[u8]| {
        std::str::from_utf8(d)
            .map_err(|_| ())
            .and_then(|s| s.parse::<usize>().map_err(|_| ()))
    })
    .parse(input)
}

fn header(input: &[u8]) -> IResult<&[u8], (usize, usize)> {
    let (rest, lens) = delimited(
        tag(&b"_e{"[..]),
        separated_pair(usize_digits, char(','), usize_digits),
        tag(&b"}:"[..]),
    )
    .parse(input)?;
    Ok((rest, lens))
}

/// Parses one `_e{...}` line; `None` when it is malformed.
pub fn parse_event(line: &[u8]) -> Option<DogEvent> {
    let line = line.trim_ascii_end();
    let (rest, (title_len, text_len)) = header(line).ok()?;
    if title_len == 0 || title_len > rest.len() {
        return None;
    }
    let (rest, title) = take::<_, _, ()>(title_len).parse(rest).ok()?;
    let (rest, _) = char::<_, ()>('|').parse(rest).ok()?;
    if text_len > rest.len() {
        return None;
    }
    let (rest, text) = take::<_, _, ()>(text_len).parse(rest).ok()?;
    let mut ev = DogEvent {
        title: String::from_utf8(title.to_vec()).ok()?.replace("\\n", "\n"),
        text: String::from_utf8(text.to_vec()).ok()?.replace("\\n", "\n"),
        timestamp: None,
        hostname: None,
        aggregation_key: None,
        priority: None,
        source_type: None,
        alert_type: None,
        tags: Vec::new(),
    };
    if rest.is_empty() {
        return Some(ev);
    }
    let rest = rest.strip_prefix(b"|")?;
    for field in rest.split(|&b| b == b'|') {
        let field = std::str::from_utf8(field).ok()?;
        if let Some(v) = field.strip_prefix("d:") {
            ev.timestamp = Some(v.parse().ok()?);
        } else if let Some(v) = field.strip_prefix("h:") {
            ev.hostname = Some(v.to_owned());
        } else if let Some(v) = field.strip_prefix("k:") {
            ev.aggregation_key = Some(v.to_owned());
        } else if let Some(v) = field.strip_prefix("p:") {
            ev.priority = Some(v.to_owned());
        } else if let Some(v) = field.strip_prefix("s:") {
            ev.source_type = Some(v.to_owned());
        } else if let Some(v) = field.strip_prefix("t:") {
            ev.alert_type = Some(v.to_owned());
        } else if let Some(v) = field.strip_prefix('#') {
            ev.tags
                .extend(v.split(',').filter(|t| !t.is_empty()).map(str::to_owned));
        }
        // Unknown fields (`c:`, `e:`, future ones) are tolerated.
    }
    Some(ev)
}

/// A service check is only counted; it must at least have a name and status.
pub fn is_valid_service_check(line: &[u8]) -> bool {
    let mut parts = line.trim_ascii_end().split(|&b| b == b'|');
    parts.next() == Some(b"_sc")
        && parts.next().is_some_and(|n| !n.is_empty())
        && parts
            .next()
            .is_some_and(|s| matches!(s, b"0" | b"1" | b"2" | b"3"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_event() {
        let e = parse_event(
            b"_e{21,36}:An exception occurred|Cannot parse CSV file from 10.0.0.17|t:warning|#err_type:bad_file",
        )
        .unwrap();
        assert_eq!(e.title, "An exception occurred");
        assert_eq!(e.text, "Cannot parse CSV file from 10.0.0.17");
        assert_eq!(e.alert_type.as_deref(), Some("warning"));
        assert_eq!(e.tags, vec!["err_type:bad_file".to_string()]);
    }

    #[test]
    fn deploy_event_with_time_host_and_newline() {
        let e = parse_event(b"_e{10,10}:web deploy|line\\nnext|d:1700000000|h:web1|#deploy,web")
            .unwrap();
        assert_eq!(e.title, "web deploy");
        assert_eq!(e.text, "line\nnext");
        assert_eq!(e.timestamp, Some(1_700_000_000));
        assert_eq!(e.hostname.as_deref(), Some("web1"));
        assert_eq!(e.tags, vec!["deploy", "web"]);
    }

    #[test]
    fn malformed_events() {
        for bad in [
            &b"_e{5,4}:tit|text"[..],
            b"_e{,4}:title|text",
            b"_e{5,4}title|text",
            b"_e{5,40}:title|text",
            b"_e{0,4}:|text",
            b"_e{5,4}:title|textX",
            b"_e{5,4}:title|text|d:soon",
            b"_e{99999999999999999999,1}:a|b",
        ] {
            assert!(
                parse_event(bad).is_none(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn service_checks() {
        assert!(is_valid_service_check(
            b"_sc|Redis connection|2|#env:dev|m:timed out"
        ));
        assert!(!is_valid_service_check(b"_sc||2"));
        assert!(!is_valid_service_check(b"_sc|name|9"));
    }
}
