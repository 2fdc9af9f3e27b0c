//! The invariants the fuzz targets check, one function per target.
//!
//! Shared by the cargo-fuzz targets (through `rollupd_fuzz::checks`) and by
//! the main crate's `tests/fuzz_regressions.rs` (through `#[path]`), so a
//! replayed input is judged exactly as the fuzzer judged it. Every check
//! panics on a violated invariant; libFuzzer reports a panic as a crash.
//!
//! Only the public API of `rollupd` is used, and the expectations are
//! computed independently of the code under test where that is cheap (line
//! counting, decimal grammar, radix values).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Duration;

use rollupd::aggregate::flush::HISTOGRAM_UNITS_PER_MS;
use rollupd::aggregate::{Aggregator, Flush, Scratch};
use rollupd::config::Config;
use rollupd::events::{EventQueue, QueuedEvent};
use rollupd::protocol::carbon::{self, CarbonBad};
use rollupd::protocol::dogstatsd::{is_valid_service_check, parse_event};
use rollupd::protocol::key::KeyBuf;
use rollupd::protocol::number::{parse_js_number, NumberError};
use rollupd::protocol::statsd::{lines, parse_line, BadReason, Line, MetricType};
use rollupd::telemetry::{LocalCounts, Telemetry};

/// Bytes Etsy keeps in a sanitized key: `[A-Za-z0-9_.;=-]`.
pub fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b';' | b'=' | b'-')
}

/// Non-empty `\n`-separated lines, counted without `statsd::lines`.
pub fn count_lines(packet: &[u8]) -> u64 {
    let mut n = 0;
    let mut len = 0usize;
    for &b in packet {
        if b == b'\n' {
            n += u64::from(len > 0);
            len = 0;
        } else {
            len += 1;
        }
    }
    n + u64::from(len > 0)
}

/// How `statsd_packet` reads its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketFlags {
    /// bit 0: the datagram was truncated (its last line is cut).
    pub truncated: bool,
    /// bit 1 clear: `key_name_sanitize = true` (the default config).
    pub sanitize: bool,
    /// bits 2-3: ingest + flush rounds, 1 to 4.
    pub rounds: usize,
}

impl PacketFlags {
    /// ASCII `0` (0x30) is the plain case: not truncated, sanitized, one
    /// round; `1` truncated, `2` unsanitized, `4` two rounds, `<` four.
    pub fn from_byte(b: u8) -> Self {
        PacketFlags {
            truncated: b & 1 != 0,
            sanitize: b & 2 == 0,
            rounds: 1 + usize::from((b >> 2) & 3),
        }
    }
}

/// The part of a flush that must repeat exactly when the same packet is
/// ingested again after a flush: counters (internal ones included), timers
/// and sets are reset in place, so each round sees the same interval. f64
/// values are compared by bits so NaN compares equal to itself, after -0
/// is made +0: a new counter starts at its first increment (`x:-0|c` gives
/// -0) but a reset one at +0 (+0 + -0 = +0), and both print as `0`.
#[derive(Debug, PartialEq, Eq)]
struct Repeatable {
    /// Bad lines by reason, but for `NonFinite`: a gauge is not reset by a
    /// flush, so a delta can overflow in a later round only.
    bad: Vec<u64>,
    /// All but `statsd.bad_lines_seen`, which sums `bad` and `NonFinite`.
    counters: BTreeMap<String, u64>,
    timers: BTreeMap<String, (Vec<u64>, u64)>,
    sets: BTreeMap<String, u64>,
}

fn bits(v: f64) -> u64 {
    (v + 0.0).to_bits()
}

fn unique<T>(what: &str, items: impl Iterator<Item = (String, T)>) -> BTreeMap<String, T> {
    let mut map = BTreeMap::new();
    for (k, v) in items {
        assert!(
            map.insert(k.clone(), v).is_none(),
            "{what} key {k:?} twice in one flush"
        );
    }
    map
}

/// What `statsd_packet` runs: the first byte is [`PacketFlags`], the rest is
/// one datagram. A fresh aggregator per input keeps every failure
/// reproducible from its input alone.
pub fn check_packet(input: &[u8]) {
    let Some((&flag_byte, packet)) = input.split_first() else {
        return;
    };
    let flags = PacketFlags::from_byte(flag_byte);
    // The receiver stays alive (events are queued, as in the daemon) and is
    // drained after every flush. The queue is made once per thread: its
    // 10,000-slot buffer costs more to allocate than a small input costs to
    // check, and one datagram (<= 64 KiB; an event line takes >= 11 bytes)
    // cannot fill it in one round, so no state leaks between inputs.
    thread_local! {
        static EVENTS: (EventQueue, Receiver<QueuedEvent>) = EventQueue::bounded();
    }
    EVENTS.with(|(queue, rx)| {
        rx.try_iter().for_each(drop);
        run_packet(packet, flags, queue.clone(), rx);
    });
}

fn run_packet(packet: &[u8], flags: PacketFlags, queue: EventQueue, rx: &Receiver<QueuedEvent>) {
    let mut cfg = Config::default().statsd;
    cfg.key_name_sanitize = flags.sanitize;
    let agg = Aggregator::new(&cfg, Arc::new(Telemetry::new()), queue);
    let mut scratch = Scratch::default();
    let mut counts = LocalCounts::default();
    let lines = count_lines(packet);
    let user_internal = names_an_internal_counter(packet, flags.sanitize);
    let mut first: Option<Repeatable> = None;
    for round in 0..flags.rounds {
        agg.ingest_packet(packet, flags.truncated, &mut scratch, &mut counts);
        agg.telemetry().publish(&mut counts);
        let flush = agg.flush(Duration::from_secs(10));
        rx.try_iter().for_each(drop);
        let now = check_flush(&flush, flags, lines, user_internal, round);
        match &first {
            None => first = Some(now),
            Some(f) => assert_eq!(
                f, &now,
                "round {round} differs from round 0 for the same packet"
            ),
        }
    }
}

/// The three counters Etsy keeps in its counters map, under the default
/// `prefix_stats`.
pub const INTERNAL_COUNTERS: [&str; 3] = [
    "statsd.bad_lines_seen",
    "statsd.packets_received",
    "statsd.metrics_received",
];

/// Does a line of `packet` name one of [`INTERNAL_COUNTERS`] itself? Etsy
/// adds such a line to its own counter, so the internal values are then
/// not the plain counts.
fn names_an_internal_counter(packet: &[u8], sanitize: bool) -> bool {
    let mut buf = KeyBuf::default();
    lines(packet).any(|line| match parse_line(line) {
        Ok(Line::Metric(m)) => buf
            .build(m.name, m.tags, sanitize)
            .is_ok_and(|k| INTERNAL_COUNTERS.iter().any(|i| i.as_bytes() == k)),
        _ => false,
    })
}

fn check_flush(
    flush: &Flush,
    flags: PacketFlags,
    lines: u64,
    user_internal: bool,
    round: usize,
) -> Repeatable {
    let internal = &flush.internal;
    assert_eq!(internal.packets_received, 1, "packets_received");
    assert_eq!(
        internal.metrics_received, lines,
        "metrics_received must equal the non-empty lines of the packet"
    );
    assert_eq!(
        flush.counters.len().min(3),
        3,
        "the three internal counters"
    );
    let names: Vec<&str> = flush.counters[..3].iter().map(|(k, _)| &**k).collect();
    assert_eq!(names, INTERNAL_COUNTERS, "the internal counters come first");
    if !user_internal {
        let values: Vec<f64> = flush.counters[..3].iter().map(|(_, v)| *v).collect();
        let want = [internal.bad_lines_total() as f64, 1.0, lines as f64];
        assert_eq!(
            values, want,
            "bad_lines_seen, packets_received, metrics_received"
        );
    }
    if flags.truncated && lines > 0 {
        assert!(
            internal.bad_lines[BadReason::Truncated.index()] >= 1,
            "a truncated packet's last line is a bad line"
        );
    }

    let check_key = |what: &str, key: &str| {
        assert!(!key.is_empty(), "empty {what} key");
        if flags.sanitize {
            assert!(
                key.bytes().all(is_key_byte),
                "{what} key {key:?} has a byte outside [A-Za-z0-9_.;=-]"
            );
        }
    };

    let finite = |v: f64| v.is_finite();
    for (k, v) in &flush.counters {
        check_key("counter", k);
        assert!(finite(*v), "counter {k:?} = {v} is not finite");
    }
    for (k, v) in &flush.gauges {
        check_key("gauge", k);
        assert!(finite(*v), "gauge {k:?} = {v} is not finite");
    }
    for t in &flush.timers {
        check_key("timer", &t.key);
        assert!(
            finite(t.count) && (t.count.is_nan() || t.count >= 0.0),
            "timer {:?} count = {} is not finite",
            t.key,
            t.count
        );
        for &s in &t.samples {
            assert!(
                s.is_finite() && s >= 0.0,
                "timer {:?} sample {s} is negative or not finite",
                t.key
            );
        }
        assert!(
            t.samples.windows(2).all(|w| w[0].total_cmp(&w[1]).is_le()),
            "timer {:?} samples are not sorted",
            t.key
        );
        if t.samples.is_empty() {
            assert!(t.histogram().is_none(), "histogram without samples");
        } else {
            assert!(t.count > 0.0, "timer {:?} has samples but count 0", t.key);
            let h = t.histogram().expect("histogram of a sampled timer");
            assert_eq!(h.len(), t.samples.len() as u64, "histogram count");
            // The largest sample, in µs, clamped where flush.rs clamps it;
            // the histogram keeps 3 significant digits of it.
            let top = t.samples[t.samples.len() - 1] * HISTOGRAM_UNITS_PER_MS;
            let top = top.round().min(u64::MAX as f64 / 4.0);
            assert!(
                h.max() as f64 >= top * 0.999,
                "timer {:?}: largest sample {} ms, histogram max {} µs",
                t.key,
                t.samples[t.samples.len() - 1],
                h.max()
            );
        }
    }
    for (k, n) in &flush.sets {
        check_key("set", k);
        assert!(*n >= 1, "set {k:?} flushed with no member");
    }
    // The same packet every round: every key is set again each round.
    if round > 0 {
        assert!(flush.timers.iter().all(|t| !t.samples.is_empty()));
    }
    // Etsy's `timestamp_lag` overwrites a client gauge of that name.
    let _ = unique(
        "gauge",
        flush.gauges.iter().map(|(k, v)| (k.to_string(), *v)),
    );
    // A client's own `statsd.bad_lines_seen` (say) should be added to the
    // internal counter, as in Etsy's single counters map, not flushed as a
    // second series of the same name.
    let mut counters: Vec<(String, f64)> = flush
        .counters
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    let bad = BadReason::ALL
        .iter()
        .filter(|r| **r != BadReason::NonFinite)
        .map(|r| internal.bad_lines[r.index()])
        .collect();
    counters.retain(|(k, _)| k != INTERNAL_COUNTERS[0]);
    Repeatable {
        bad,
        counters: unique("counter", counters.into_iter().map(|(k, v)| (k, bits(v)))),
        timers: unique(
            "timer",
            flush.timers.iter().map(|t| {
                let samples = t.samples.iter().map(|s| s.to_bits()).collect();
                (t.key.to_string(), (samples, bits(t.count)))
            }),
        ),
        sets: unique("set", flush.sets.iter().map(|(k, n)| (k.to_string(), *n))),
    }
}

/// Is `r` inside `whole` (zero-copy parsing hands out sub-slices)?
fn is_within(r: &[u8], whole: &[u8]) -> bool {
    let (start, end) = (
        whole.as_ptr() as usize,
        whole.as_ptr() as usize + whole.len(),
    );
    let p = r.as_ptr() as usize;
    r.is_empty() || (p >= start && p + r.len() <= end)
}

type Key = Result<Vec<u8>, BadReason>;

fn key(buf: &mut KeyBuf, name: &[u8], tags: Option<&[u8]>, sanitize: bool) -> Key {
    buf.build(name, tags, sanitize).map(<[u8]>::to_vec)
}

/// What `statsd_line` runs: the input is split with `statsd::lines` and
/// every line goes through `parse_line`, `samples` and `KeyBuf::build`.
pub fn check_line(input: &[u8]) {
    let mut reused = KeyBuf::default();
    let mut n = 0u64;
    for line in lines(input) {
        n += 1;
        assert!(!line.is_empty() && !line.contains(&b'\n'), "lines() item");
        let m = match parse_line(line) {
            Err(reason) => {
                assert!(
                    matches!(reason, BadReason::NoColon | BadReason::EmptyKey),
                    "parse_line refused a line for {reason:?}"
                );
                continue;
            }
            Ok(Line::Event(raw)) => {
                assert!(raw == line && line.starts_with(b"_e{"));
                if let Some(e) = parse_event(raw) {
                    assert!(!e.title.is_empty(), "event with an empty title");
                }
                continue;
            }
            Ok(Line::ServiceCheck(raw)) => {
                assert!(raw == line && line.starts_with(b"_sc|"));
                let _ = is_valid_service_check(raw);
                continue;
            }
            Ok(Line::Metric(m)) => m,
        };
        assert!(!m.name.is_empty(), "metric with an empty name");
        assert!(line.starts_with(m.name), "the name is the line's prefix");
        assert!(!m.name.contains(&b':'), "the name stops at the first ':'");
        if let Some(tags) = m.tags {
            assert!(!tags.is_empty() && !tags.contains(&b'|'), "tags {tags:?}");
            assert!(is_within(tags, line));
        }

        let mut count = 0;
        for sample in m.samples() {
            count += 1;
            assert!(count <= line.len(), "more samples than bytes");
            let Ok(s) = sample else { continue };
            assert!(is_within(s.raw, line), "sample raw outside the line");
            assert!(
                s.rate.is_finite() && s.rate > 0.0,
                "sample rate {} of {:?}",
                s.rate,
                String::from_utf8_lossy(line)
            );
            // The aggregator multiplies by 1/rate.
            assert!(
                (1.0 / s.rate).is_finite(),
                "sample rate {:e} has no finite reciprocal",
                s.rate
            );
            assert!(s.value.is_finite(), "sample value {}", s.value);
            match s.kind {
                MetricType::Set => {
                    assert_eq!(s.value, 0.0);
                    assert!(std::str::from_utf8(s.raw).is_ok(), "set member UTF-8");
                }
                MetricType::Timer => {
                    assert!(s.value >= 0.0, "negative timer {}", s.value);
                    assert_eq!(parse_js_number(s.raw), Ok(s.value));
                }
                MetricType::Counter | MetricType::Gauge => {
                    assert_eq!(parse_js_number(s.raw), Ok(s.value));
                }
            }
        }
        assert!(count >= 1, "a metric line has at least one sample");

        // Keys: a reused buffer must give what a fresh one gives.
        let on = key(&mut KeyBuf::default(), m.name, m.tags, true);
        let off = key(&mut KeyBuf::default(), m.name, m.tags, false);
        assert_eq!(key(&mut reused, m.name, m.tags, true), on, "reused KeyBuf");
        assert_eq!(
            key(&mut reused, m.name, m.tags, false),
            off,
            "reused KeyBuf"
        );
        match &on {
            Ok(k) => {
                assert!(!k.is_empty(), "empty sanitized key");
                assert!(
                    k.iter().copied().all(is_key_byte),
                    "sanitized key {:?} has a byte outside [A-Za-z0-9_.;=-]",
                    String::from_utf8_lossy(k)
                );
            }
            Err(r) => assert!(
                matches!(r, BadReason::InvalidUtf8 | BadReason::EmptyKey),
                "{r:?}"
            ),
        }
        match &off {
            Ok(k) => {
                assert!(std::str::from_utf8(k).is_ok(), "unsanitized key UTF-8");
                assert!(k.starts_with(m.name), "the key starts with the name");
                if m.tags.is_none() {
                    assert_eq!(k.as_slice(), m.name);
                }
                if k.iter().copied().all(is_key_byte) {
                    assert_eq!(&on, &off, "an already clean key is unchanged");
                }
            }
            Err(r) => {
                assert_eq!(*r, BadReason::InvalidUtf8);
                assert_eq!(on, Err(BadReason::InvalidUtf8));
            }
        }
    }
    assert_eq!(n, count_lines(input), "lines() count");
}

/// JS `Number()` trims (at least) these; so does `parse_js_number`.
fn is_ascii_js_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [f, rest @ ..] = s {
        if !is_ascii_js_space(*f) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., l] = s {
        if !is_ascii_js_space(*l) {
            break;
        }
        s = rest;
    }
    s
}

fn digits(s: &[u8]) -> usize {
    s.iter().take_while(|b| b.is_ascii_digit()).count()
}

/// `[+-]? (D+ (. D*)? | . D+) ([eE] [+-]? D+)?`: a decimal both JS
/// `Number()` and Rust's `f64::from_str` accept.
pub fn is_plain_decimal(s: &[u8]) -> bool {
    let mut i = usize::from(matches!(s.first(), Some(b'+' | b'-')));
    let int = digits(&s[i..]);
    i += int;
    let mut frac = 0;
    if s.get(i) == Some(&b'.') {
        i += 1;
        frac = digits(&s[i..]);
        i += frac;
    }
    if int + frac == 0 {
        return false;
    }
    if matches!(s.get(i), Some(b'e' | b'E')) {
        i += 1;
        i += usize::from(matches!(s.get(i), Some(b'+' | b'-')));
        let e = digits(&s[i..]);
        if e == 0 {
            return false;
        }
        i += e;
    }
    i == s.len()
}

/// The exact value of a `0x`/`0o`/`0b` literal, if it fits in a u128.
fn radix_value(s: &[u8]) -> Option<u128> {
    if s.len() <= 2 || s[0] != b'0' {
        return None;
    }
    let radix = match s[1] {
        b'x' | b'X' => 16,
        b'o' | b'O' => 8,
        b'b' | b'B' => 2,
        _ => return None,
    };
    let mut v: u128 = 0;
    for &b in &s[2..] {
        let d = (b as char).to_digit(radix)?;
        v = v
            .checked_mul(u128::from(radix))?
            .checked_add(u128::from(d))?;
    }
    Some(v)
}

/// What `js_number` runs.
pub fn check_js_number(input: &[u8]) {
    let got = parse_js_number(input);
    if let Ok(v) = got {
        assert!(v.is_finite(), "parse_js_number gave {v}");
    }
    let core = trim(input);
    if is_plain_decimal(core) {
        let text = std::str::from_utf8(core).expect("ASCII");
        let rust: f64 = text.parse().expect("Rust parses every plain decimal");
        if rust.is_finite() {
            assert_eq!(
                got.map(f64::to_bits),
                Ok(rust.to_bits()),
                "{text:?}: parse_js_number {got:?}, str::parse {rust}"
            );
        } else {
            assert_eq!(got, Err(NumberError::NonFinite), "{text:?} overflows");
        }
    } else if let Some(exact) = radix_value(core) {
        // JS `Number("0x...")` rounds the exact integer once, to nearest,
        // ties to even; so does `u128 as f64`.
        let want = exact as f64;
        assert_eq!(
            got.map(f64::to_bits),
            Ok(want.to_bits()),
            "{:?}: parse_js_number {got:?}, exact value {exact} rounds to {want}",
            String::from_utf8_lossy(core)
        );
    }
}

/// What `dogstatsd_event` runs: `parse_event` on the input as it is and
/// behind an `_e{` header, and `is_valid_service_check` likewise.
pub fn check_event(input: &[u8]) {
    check_one_event(input);
    let mut prefixed = b"_e{".to_vec();
    prefixed.extend_from_slice(input);
    check_one_event(&prefixed);

    if is_valid_service_check(input) {
        assert!(input.starts_with(b"_sc|"), "a valid check starts with _sc|");
    }
    let mut sc = b"_sc|".to_vec();
    sc.extend_from_slice(input);
    let _ = is_valid_service_check(&sc);
}

fn check_one_event(raw: &[u8]) {
    let Some(e) = parse_event(raw) else { return };
    assert!(!e.title.is_empty(), "event with an empty title");
    assert!(e.title.len() < raw.len() && e.text.len() < raw.len());
    // Written back in its simplest form, it must read the same.
    if !e.title.contains('\n')
        && !e.text.contains('\n')
        && !e.title.contains("\\n")
        && !e.text.contains("\\n")
        && !e.text.ends_with(|c: char| c.is_ascii_whitespace())
    {
        let line = format!(
            "_e{{{},{}}}:{}|{}",
            e.title.len(),
            e.text.len(),
            e.title,
            e.text
        );
        let again = parse_event(line.as_bytes()).expect("round trip");
        assert_eq!((again.title, again.text), (e.title, e.text), "{line:?}");
    }
}

/// The lines `carbon::for_each_line` must hand out: split at `\n`, less
/// those of only spaces, tabs and `\r`.
pub fn carbon_lines(buf: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    for end in (0..=buf.len()).filter(|&i| i == buf.len() || buf[i] == b'\n') {
        let line = &buf[start..end];
        if line.iter().any(|&b| b != b' ' && b != b'\t' && b != b'\r') {
            out.push(line);
        }
        start = end + 1;
    }
    out
}

/// The fields of a carbon line, counted byte by byte: runs of anything but
/// spaces and tabs, once `\r` is gone from both ends.
fn carbon_fields(line: &str) -> Vec<&str> {
    let b = line.as_bytes();
    let is_sep = |c: u8| c == b' ' || c == b'\t';
    let (mut lo, mut hi) = (0, b.len());
    while lo < hi && (is_sep(b[lo]) || b[lo] == b'\r') {
        lo += 1;
    }
    while hi > lo && (is_sep(b[hi - 1]) || b[hi - 1] == b'\r') {
        hi -= 1;
    }
    let mut fields = Vec::new();
    let mut i = lo;
    while i < hi {
        if is_sep(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < hi && !is_sep(b[i]) {
            i += 1;
        }
        fields.push(&line[start..i]);
    }
    fields
}

fn same_point(
    a: &Result<carbon::Point<'_>, CarbonBad>,
    b: &Result<carbon::Point<'_>, CarbonBad>,
) -> bool {
    match (a, b) {
        (Ok(a), Ok(b)) => {
            a.name == b.name && a.value.to_bits() == b.value.to_bits() && a.timestamp == b.timestamp
        }
        (Err(a), Err(b)) => a == b,
        _ => false,
    }
}

/// What carbon's `TaggedSeries.parse(name).path` gives for a name that
/// passed `parse_line`, modelled with a map (the code under test sorts and
/// dedups a list).
fn carbon_canonical(name: &str) -> String {
    let mut parts = name.split(';');
    let metric = parts.next().unwrap_or("").trim_start_matches('~');
    let mut tags = BTreeMap::new();
    for segment in parts {
        let (k, v) = segment.split_once('=').expect("a valid tag has '='");
        tags.insert(k, v);
    }
    tags.remove("name");
    let mut segments: Vec<String> = tags.iter().map(|(k, v)| format!(";{k}={v}")).collect();
    segments.sort();
    format!("{metric}{}", segments.concat())
}

/// `normalize_tags` on any string: idempotent, borrowing the second time;
/// unchanged for a name `parse_line` refuses; the carbon model's result for
/// one it takes, itself a name it takes.
pub fn check_carbon_name(name: &str) {
    let once = carbon::normalize_tags(name);
    let twice = carbon::normalize_tags(&once);
    assert_eq!(twice, once, "normalize_tags not idempotent on {name:?}");
    assert!(
        matches!(twice, Cow::Borrowed(_)),
        "normalized {once:?} normalized again allocates"
    );
    if let Cow::Borrowed(b) = &once {
        assert!(is_within(b.as_bytes(), name.as_bytes()));
    }
    let valid = !name.contains([' ', '\t', '\r', '\n'])
        && carbon::parse_line(format!("{name} 1 1").as_bytes()).is_ok();
    if !valid {
        assert_eq!(once, name, "a refused name is changed");
        return;
    }
    assert_eq!(once, carbon_canonical(name), "normalize_tags({name:?})");
    let line = format!("{once} 1 1");
    let again = carbon::parse_line(line.as_bytes());
    assert!(again.is_ok(), "normalized {once:?} refused: {again:?}");
}

/// What `carbon_line` runs: `carbon::for_each_line` over the input, each
/// line judged against its fields as counted here, and `normalize_tags` on
/// every line's first field.
pub fn check_carbon(input: &[u8]) {
    let expected = carbon_lines(input);
    let mut seen = 0;
    carbon::for_each_line(input, |parsed, raw| {
        assert!(seen < expected.len(), "more lines than {}", expected.len());
        assert_eq!(raw, expected[seen], "line {seen}");
        assert!(is_within(raw, input));
        seen += 1;
        assert!(
            same_point(&parsed, &carbon::parse_line(raw)),
            "for_each_line and parse_line disagree"
        );
        check_carbon_line(raw, parsed);
    });
    assert_eq!(seen, expected.len(), "lines handed out");
}

fn check_carbon_line(raw: &[u8], parsed: Result<carbon::Point<'_>, CarbonBad>) {
    assert_ne!(parsed, Err(CarbonBad::TooLong), "parse_line gave too_long");
    let Ok(text) = std::str::from_utf8(raw) else {
        assert_eq!(parsed, Err(CarbonBad::NotUtf8));
        return;
    };
    let fields = carbon_fields(text);
    if let Some(first) = fields.first() {
        check_carbon_name(first);
    }
    if fields.len() != 3 {
        assert_eq!(parsed, Err(CarbonBad::WrongFieldCount), "{fields:?}");
        return;
    }
    let (name, value, ts) = (fields[0], fields[1], fields[2]);
    let name_ok = !name.chars().any(|c| c.is_control() || c.is_whitespace());
    let metric_empty = name
        .split(';')
        .next()
        .is_none_or(|m| m.trim_start_matches('~').is_empty());
    let value_ok = value.parse::<f64>().is_ok_and(|v| !v.is_nan());
    let t = ts
        .parse::<f64>()
        .ok()
        .filter(|t| t.is_finite())
        .map(f64::trunc);
    let ts_ok = t.is_some_and(|t| t == -1.0 || (0.0..2f64.powi(63)).contains(&t));
    match parsed {
        Err(CarbonBad::NotUtf8 | CarbonBad::WrongFieldCount | CarbonBad::TooLong) => {
            panic!("{parsed:?} for three UTF-8 fields {fields:?}")
        }
        Err(CarbonBad::BadName) => assert!(!name_ok, "{name:?} is a fine name"),
        Err(CarbonBad::EmptyName) => assert!(name_ok && metric_empty, "{name:?}"),
        Err(CarbonBad::BadTags) => assert!(name_ok && !metric_empty && name.contains(';')),
        Err(CarbonBad::BadValue) => assert!(!value_ok, "{value:?} is a fine value"),
        Err(CarbonBad::BadTimestamp) => {
            assert!(value_ok && !ts_ok, "{ts:?} is a fine timestamp")
        }
        Ok(p) => {
            assert!(name_ok && !metric_empty && value_ok && ts_ok);
            assert_eq!(p.name, name);
            assert!(is_within(p.name.as_bytes(), raw));
            assert!(!p.value.is_nan());
            assert_eq!(p.value.to_bits(), value.parse::<f64>().unwrap().to_bits());
            let t = t.unwrap();
            if p.timestamp == carbon::NOW {
                assert_eq!(t, -1.0);
            } else {
                assert!(p.timestamp >= 0, "{ts:?} gave {}", p.timestamp);
                assert_eq!(p.timestamp as f64, t, "{ts:?} gave {}", p.timestamp);
            }
            // Written back canonically, it reads the same.
            let canonical = carbon::normalize_tags(p.name);
            let line = format!("{canonical} {} {}", p.value, p.timestamp);
            let again = carbon::parse_line(line.as_bytes());
            let want = carbon::Point {
                name: canonical.as_ref(),
                ..p
            };
            assert!(same_point(&again, &Ok(want)), "{line:?} read as {again:?}");
        }
    }
}

// ---------------------------------------------------------------------------
// Render targets

const TARGET_NOW: i64 = 1_795_400_000;

/// A small store the target checks evaluate against: a few plain and
/// tagged series, the last two hours at 10 s, with gaps.
fn target_store() -> &'static rollupd::store::Store {
    use rollupd::store::{Point, Store};
    static STORE: std::sync::OnceLock<Store> = std::sync::OnceLock::new();
    STORE.get_or_init(|| {
        let store = Store::in_memory(&Config::default().storage).expect("in-memory store");
        let names = ["a.b.c", "a.b.d", "a.x.c", "web1.cpu", "disk;host=h1;dc=x"];
        let mut pts = Vec::new();
        for (k, name) in (0i64..).zip(names.iter()) {
            for i in 0..720i64 {
                if (i + k) % 17 == 0 {
                    continue;
                }
                pts.push(Point {
                    name,
                    timestamp: TARGET_NOW - 7200 + i * 10,
                    value: ((i * (k + 3)) % 97) as f64 - 20.0,
                });
            }
        }
        store.write(&pts, &[], TARGET_NOW).expect("write");
        store
    })
}

/// The caps `check_target` evaluates under: small, so that a target that
/// escapes them (a function making points it never counted, a glob read
/// twice) shows in the counts at once.
pub const TARGET_MAX_SERIES: usize = 50;
pub const TARGET_MAX_POINTS: usize = 200_000;

/// What `render_target` runs, on any text: the target parser, the time
/// parsers, and the whole evaluation over a small store, with the points
/// and series caps on and a deadline, on a thread with the 2 MiB stack a
/// render thread has (so nesting that would overflow a render thread
/// crashes here too).
///
/// The text is a target, or `FROM|UNTIL\nTARGET`: the window as
/// `from`/`until` parameters say it (`-5y|now`, `-10y|-1y`, `20200101|+1d`),
/// so windows of years reach the bucket, window and shift functions.
///
/// Errors are fine (they are 400s, 422s and 503s); a panic or an abort is a
/// crash, as it would be a 500 or a dead daemon. A successful evaluation
/// stays within both caps.
pub fn check_target(input: &[u8]) {
    use rollupd::query::eval::{evaluate, Context, Limits};
    use rollupd::query::parse::parse;
    use rollupd::query::time::{parse_at_time, parse_offset};
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let tz = chrono_tz::Tz::UTC;
    let _ = parse_offset(text);
    let _ = parse_at_time(text, &tz, TARGET_NOW);
    let (window, target) = match text.split_once('\n') {
        Some((w, t)) => (Some(w), t),
        None => (None, text),
    };
    let (from, until) = match window {
        None => (TARGET_NOW - 3600, TARGET_NOW),
        Some(w) => {
            let (f, u) = w.split_once('|').unwrap_or((w, "now"));
            let (Ok(f), Ok(u)) = (
                parse_at_time(f, &tz, TARGET_NOW),
                parse_at_time(u, &tz, TARGET_NOW),
            ) else {
                return;
            };
            (f.min(u), f.max(u))
        }
    };
    std::thread::scope(|scope| {
        let worker = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn_scoped(scope, || {
                let Ok(expr) = parse(target) else {
                    return;
                };
                // What the parser accepted, it can print as a target.
                let _ = expr.to_target();
                let mut ctx = Context {
                    store: target_store(),
                    from,
                    until,
                    now: TARGET_NOW,
                    tz,
                    server_tz: tz,
                    xff: 0.0,
                    limits: Limits {
                        max_series: TARGET_MAX_SERIES,
                        max_points: TARGET_MAX_POINTS,
                        // A slow target ends as a 503 long before the
                        // fuzzer's -timeout=10 calls it a hang; one that
                        // runs far past this is a hang it reports.
                        deadline: Some((
                            std::time::Instant::now() + std::time::Duration::from_secs(2),
                            std::time::Duration::from_secs(2),
                        )),
                    },
                    spent: Default::default(),
                };
                if evaluate(&mut ctx, target).is_ok() {
                    assert!(
                        ctx.spent.points <= TARGET_MAX_POINTS,
                        "the points cap let {} points through",
                        ctx.spent.points
                    );
                    assert!(
                        ctx.spent.series <= TARGET_MAX_SERIES,
                        "the series cap let {} series through",
                        ctx.spent.series
                    );
                }
            })
            .expect("a thread for the evaluation");
        if let Err(panic) = worker.join() {
            std::panic::resume_unwind(panic);
        }
    });
}

/// Source rows for `check_row`'s derived rows: under key (0, 0, 0, s),
/// value rows for series 1..=3 and a histogram row for series 4, 32 slots.
fn row_sources() -> &'static rollupd::store::mem::MemKv {
    use rollupd::store::hist::{self, Hist};
    use rollupd::store::kv::{Batch, Kv, Space};
    use rollupd::store::row::{self, RowKey};
    static KV: std::sync::OnceLock<rollupd::store::mem::MemKv> = std::sync::OnceLock::new();
    KV.get_or_init(|| {
        let kv = rollupd::store::mem::MemKv::new();
        let mut b = Batch::default();
        let key = |series| {
            RowKey {
                schema: 0,
                archive: 0,
                start: 0,
                series,
            }
            .encode()
            .to_vec()
        };
        for s in 1..=3u32 {
            let v: Vec<f64> = (0..ROW_SLOTS)
                .map(|i| {
                    if i % 7 == 3 {
                        f64::NAN
                    } else {
                        (i as f64 + 1.0) * f64::from(s)
                    }
                })
                .collect();
            b.put(Space::Rows, key(s), row::encode(&v));
        }
        let h: Vec<Option<Hist>> = (0..ROW_SLOTS)
            .map(|i| (i % 5 != 0).then(|| Hist::from_sorted_samples(&[1.0, i as f64 * 3.5])))
            .collect();
        b.put(Space::Hists, key(4), hist::encode_row(&h));
        kv.write(b).expect("memory engine");
        kv
    })
}

const ROW_SLOTS: usize = 32;

/// `store_rows`: byte 0 picks the decoder (even: value rows of any format,
/// derived ones against `row_sources`; odd: histogram rows), the rest is
/// the stored row. Damaged rows must be errors, never panics; a row that
/// decodes has the archive's slot count and survives a re-encode bit for bit.
pub fn check_row(input: &[u8]) {
    use rollupd::store::{derive, hist, row};
    let Some((&which, bytes)) = input.split_first() else {
        return;
    };
    let key = rollupd::store::row::RowKey {
        schema: 0,
        archive: 0,
        start: 0,
        series: 9,
    };
    if which % 2 == 0 {
        let Ok(v) = derive::decode(bytes, ROW_SLOTS, key, row_sources()) else {
            return;
        };
        assert_eq!(v.len(), ROW_SLOTS);
        // NaN is absence: a present NaN is not stored again.
        if v.iter().any(|x| !x.is_nan()) {
            let again = row::decode(&row::encode(&v), ROW_SLOTS).expect("own encoding decodes");
            for (a, b) in v.iter().zip(&again) {
                assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()));
            }
        }
    } else {
        let Ok(h) = hist::decode_row(bytes, ROW_SLOTS) else {
            return;
        };
        assert_eq!(h.len(), ROW_SLOTS);
        let again = hist::encode_row(&h);
        assert_eq!(
            hist::decode_row(&again, ROW_SLOTS).expect("own encoding decodes"),
            h
        );
    }
}

/// `alert_rule`: the alert rule language and what runs it. The input is
/// read as a TOML rule file, as a JSON rule, as a JSON silence and as a
/// template; each rule that reads is driven through the state machine by
/// observations taken from the input's bytes. No panic anywhere, and:
/// a rule that reads writes back (JSON) to the same rule; each change of
/// state is reported with the state it left and a reason, and nothing
/// changes unreported; an instance fires exactly when it has a
/// `firing_since`; a pending instance has a pending level; a forecast
/// fires only on a fit at least as good as its `min_r2`.
pub fn check_alert(input: &[u8]) {
    use rollupd::alert::forecast::judge;
    use rollupd::alert::notice::Severity;
    use rollupd::alert::reduce::reduce;
    use rollupd::alert::rule::{parse_file, Direction, Forecast, Nulls, Reducer, Rule, RuleSpec};
    use rollupd::alert::silence;
    use rollupd::alert::state::{self, Instance, Observation, State};
    use rollupd::alert::template;

    let text = String::from_utf8_lossy(input);
    let mut rules: Vec<Rule> = parse_file(&text).unwrap_or_default();
    if let Ok(spec) = serde_json::from_str::<RuleSpec>(&text) {
        if let Ok(r) = Rule::from_spec(spec) {
            rules.push(r);
        }
    }
    if let Ok(spec) = serde_json::from_str::<silence::SilenceSpec>(&text) {
        if let Ok(s) = silence::check(spec, TARGET_NOW) {
            let labels = BTreeMap::from([("alertname".to_string(), text.to_string())]);
            let _ = s.matches(&labels);
        }
    }
    let checked = template::check(&text).is_ok();
    let rendered = template::render(&text, &template::Vars::default());
    if !checked {
        // Text that is not a valid template is never half-filled.
        assert!(rendered == text || text.contains("{{"), "{rendered:?}");
    }
    let obs: Vec<Observation> = input
        .iter()
        .take(64)
        .map(|&b| match b % 8 {
            0 => Observation::NoData,
            1 => Observation::Error("x".into()),
            2 => Observation::Value(f64::from(b) * 10.0),
            3 => Observation::Value(-f64::from(b)),
            4 => Observation::Value(f64::from(b % 3) * 500.0),
            5 => Observation::Value(1e300),
            6 => Observation::Value(800.0),
            _ => Observation::Value(0.0),
        })
        .collect();
    for r in &rules {
        let back = serde_json::to_string(&r.spec).expect("a rule's spec serializes");
        let again = Rule::from_spec(serde_json::from_str(&back).expect("reads back"))
            .expect("a rule that read once reads again");
        assert_eq!(&again, r, "{back}");
        let _ = state::thresholds_text(r);
        let mut inst = Instance::new("s", BTreeMap::new(), 0);
        for (i, o) in (0i64..).zip(obs.iter()) {
            let t = i * 10;
            let before = inst.state;
            match state::step(r, &mut inst, o.clone(), t) {
                Some(c) => {
                    assert_eq!((c.from, c.to), (before, inst.state));
                    assert_ne!(c.from, c.to);
                    assert!(!c.reason.is_empty());
                    assert_eq!(inst.since, t);
                }
                None => assert_eq!(inst.state, before),
            }
            assert_eq!(
                inst.firing_since.is_some(),
                inst.state.firing().is_some(),
                "{inst:?}"
            );
            if inst.state == State::Pending {
                assert!(inst.pending.is_some(), "{inst:?}");
            }
        }
    }
    // Reducers and forecasts over the input's bytes as numbers (pairs of
    // bytes; 0xffff is a null).
    let values: Vec<f64> = input
        .chunks(2)
        .map(|c| {
            let v = u16::from_le_bytes([c[0], *c.get(1).unwrap_or(&0)]);
            if v == 0xffff {
                f64::NAN
            } else {
                f64::from(v) - 30000.0
            }
        })
        .collect();
    for reducer in [
        Reducer::Last,
        Reducer::Avg,
        Reducer::Min,
        Reducer::Max,
        Reducer::Sum,
        Reducer::Count,
        Reducer::Median,
        Reducer::Percentile(99.9),
        Reducer::Delta,
        Reducer::Rate,
    ] {
        for nulls in [Nulls::Ignore, Nulls::Zero, Nulls::Fail] {
            if let Ok(Some(v)) = reduce(0, 10, &values, reducer, nulls) {
                assert!(v.is_finite(), "{reducer:?} {v}");
            }
        }
    }
    let pts: Vec<(i64, f64)> = (0i64..)
        .zip(values.iter())
        .filter(|(_, v)| !v.is_nan())
        .map(|(i, &v)| (i * 60, v))
        .collect();
    let f = Forecast {
        threshold: 1000.0,
        direction: if input.first().is_some_and(|b| b % 2 == 0) {
            Direction::Above
        } else {
            Direction::Below
        },
        horizon: Duration::from_secs(86400),
        min_r2: 0.5,
        min_points: 3,
        severity: Severity::Critical,
    };
    let v = judge(
        &f,
        &pts,
        i64::try_from(pts.len()).expect("a Vec's length fits i64") * 60,
    );
    if v.fires {
        assert!(v.fit.is_some_and(|fit| fit.r2 >= 0.5), "{v:?}");
    }
}
