//! Numbers as Etsy statsd reads them: JavaScript's `Number(str)`, except that
//! NaN and infinities are refused (a metric of `Infinity` is a bad line here,
//! where Etsy would store it and poison every rollup after it).
//!
//! Hand-written rather than `str::parse::<f64>` alone because JS accepts
//! forms Rust does not (`0x10`, `0b11`, `0o17`, surrounding whitespace) and
//! Rust accepts forms JS does not (`inf`, `nan`); the digits themselves are
//! still converted by the standard library's correctly rounded parser. The
//! all-digits fast path exists because most statsd values are small integers.

/// Why a value is not a usable number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberError {
    /// JS would call it NaN: empty, letters, two dots, ...
    Invalid,
    /// `NaN`, `Infinity`, or a literal too large for a double.
    NonFinite,
}

/// Parses a JS-style number, refusing NaN and infinities.
pub fn parse_js_number(raw: &[u8]) -> Result<f64, NumberError> {
    // Fast path: 1 to 15 ASCII digits fit in f64 exactly.
    if !raw.is_empty() && raw.len() <= 15 && raw.iter().all(u8::is_ascii_digit) {
        let mut n: u64 = 0;
        for &b in raw {
            n = n * 10 + u64::from(b - b'0');
        }
        return Ok(n as f64);
    }
    let s = trim_js_space(raw);
    if s.is_empty() {
        return Err(NumberError::Invalid);
    }
    if s.len() > 2 && s[0] == b'0' {
        let radix = match s[1] {
            b'x' | b'X' => 16,
            b'o' | b'O' => 8,
            b'b' | b'B' => 2,
            _ => 0,
        };
        if radix != 0 {
            return parse_radix(&s[2..], radix);
        }
    }
    if !is_js_decimal(s) {
        let unsigned = match s[0] {
            b'+' | b'-' => &s[1..],
            _ => s,
        };
        if unsigned == b"Infinity" || s == b"NaN" {
            return Err(NumberError::NonFinite);
        }
        return Err(NumberError::Invalid);
    }
    // Validated ASCII, so neither step can fail; map defensively anyway.
    let v: f64 = std::str::from_utf8(s)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or(NumberError::Invalid)?;
    if v.is_finite() {
        Ok(v)
    } else {
        Err(NumberError::NonFinite)
    }
}

/// JS `Number()` trims ASCII and Unicode white space; ASCII covers what
/// statsd clients send (CR from CRLF lines, stray spaces).
fn trim_js_space(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if first.is_ascii_whitespace() || *first == 0x0b {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if last.is_ascii_whitespace() || *last == 0x0b {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// `[+-]? (digits [. digits?] | . digits) ([eE] [+-]? digits)?`
fn is_js_decimal(s: &[u8]) -> bool {
    let mut i = 0;
    if matches!(s.first(), Some(b'+') | Some(b'-')) {
        i += 1;
    }
    let int_start = i;
    while i < s.len() && s[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = i - int_start;
    let mut frac_digits = 0;
    if i < s.len() && s[i] == b'.' {
        i += 1;
        let f = i;
        while i < s.len() && s[i].is_ascii_digit() {
            i += 1;
        }
        frac_digits = i - f;
    }
    if int_digits + frac_digits == 0 {
        return false;
    }
    if i < s.len() && (s[i] == b'e' || s[i] == b'E') {
        i += 1;
        if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
            i += 1;
        }
        let e = i;
        while i < s.len() && s[i].is_ascii_digit() {
            i += 1;
        }
        if i == e {
            return false;
        }
    }
    i == s.len()
}

fn parse_radix(digits: &[u8], radix: u32) -> Result<f64, NumberError> {
    if digits.is_empty() {
        return Err(NumberError::Invalid);
    }
    let mut v: f64 = 0.0;
    for &b in digits {
        let d = (b as char).to_digit(radix).ok_or(NumberError::Invalid)?;
        v = v * f64::from(radix) + f64::from(d);
    }
    if v.is_finite() {
        Ok(v)
    } else {
        Err(NumberError::NonFinite)
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_js_number, NumberError};

    fn p(s: &[u8]) -> Option<f64> {
        parse_js_number(s).ok()
    }

    #[test]
    fn integers_and_decimals() {
        assert_eq!(p(b"0"), Some(0.0));
        assert_eq!(p(b"42"), Some(42.0));
        assert_eq!(p(b"-10"), Some(-10.0));
        assert_eq!(p(b"+10e1"), Some(100.0));
        assert_eq!(p(b"1.0"), Some(1.0));
        assert_eq!(p(b".5"), Some(0.5));
        assert_eq!(p(b"5."), Some(5.0));
        assert_eq!(p(b"2e-1"), Some(0.2));
        assert_eq!(p(b"1E3"), Some(1000.0));
        assert_eq!(p(b"123456789012345678"), Some(123456789012345678.0));
        assert_eq!(p(b"0.1"), Some(0.1));
        assert_eq!(p(b"-0.0"), Some(-0.0));
    }

    #[test]
    fn js_radix_forms_and_whitespace() {
        assert_eq!(p(b"0x10"), Some(16.0));
        assert_eq!(p(b"0XfF"), Some(255.0));
        assert_eq!(p(b"0b101"), Some(5.0));
        assert_eq!(p(b"0o17"), Some(15.0));
        assert_eq!(p(b" 5 "), Some(5.0));
        assert_eq!(p(b"3\r"), Some(3.0));
        assert_eq!(p(b"0x"), None);
        assert_eq!(p(b"-0x10"), None);
        assert_eq!(p(b"0x1g"), None);
    }

    #[test]
    fn not_numbers() {
        for bad in [
            &b""[..],
            b" ",
            b"abc",
            b"1.2.3",
            b"1e",
            b"e5",
            b".",
            b"+",
            b"-",
            b"1 2",
            b"NaN",
            b"nan",
            b"inf",
            b"Infinity",
            b"-Infinity",
            b"1e400",
            b"--1",
            b"1_000",
            b"\xff",
        ] {
            assert_eq!(p(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn nan_and_infinity_are_told_apart() {
        for s in [
            &b"NaN"[..],
            b"Infinity",
            b"-Infinity",
            b"+Infinity",
            b"1e400",
            b"-1e999",
        ] {
            assert_eq!(parse_js_number(s), Err(NumberError::NonFinite), "{s:?}");
        }
        assert_eq!(parse_js_number(b"nan"), Err(NumberError::Invalid));
        assert_eq!(parse_js_number(b"abc"), Err(NumberError::Invalid));
    }
}
