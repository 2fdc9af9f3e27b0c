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
    if let Some(v) = short_decimal(raw) {
        return Ok(v);
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

/// The second most common value shape, `digits.digits` (timings like
/// `18.423`, rates like `0.1`), without going through the general parser.
///
/// With at most 15 digits the digits as an integer `m` are below 2^53 and
/// `10^k` (k <= 15) is exact, so `m / 10^k` is one correctly rounded IEEE
/// division of two exact operands: the same double the standard library's
/// correctly rounded parser returns (Clinger's fast path). Anything else
/// (signs, exponents, spaces, more digits) returns `None` for the general
/// path.
fn short_decimal(raw: &[u8]) -> Option<f64> {
    const POW10: [f64; 16] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    ];
    let dot = raw.iter().position(|&b| b == b'.')?;
    let (int, frac) = (&raw[..dot], &raw[dot + 1..]);
    let digits = int.len() + frac.len();
    if digits == 0 || digits > 15 {
        return None;
    }
    let mut m: u64 = 0;
    for &b in int.iter().chain(frac) {
        if !b.is_ascii_digit() {
            return None;
        }
        m = m * 10 + u64::from(b - b'0');
    }
    Some(m as f64 / POW10[frac.len()])
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
    // JS rounds the exact integer once. Accumulate it exactly while it fits
    // in 128 bits; past that (it then has >= 125 significant bits, far more
    // than f64's 53) later digits only scale it, by a power of two, and a
    // sticky bit records whether any of them was non-zero so that a tie
    // still rounds up.
    let bits_per_digit = radix.trailing_zeros();
    let mut m: u128 = 0;
    let mut scale: u32 = 0;
    let mut sticky = false;
    for &b in digits {
        let d = (b as char).to_digit(radix).ok_or(NumberError::Invalid)?;
        if scale == 0 && m.leading_zeros() >= bits_per_digit {
            m = (m << bits_per_digit) | u128::from(d);
        } else {
            scale = scale.saturating_add(bits_per_digit);
            sticky |= d != 0;
        }
    }
    let exp = i32::try_from(scale).unwrap_or(i32::MAX);
    let v = (m | u128::from(sticky)) as f64 * 2f64.powi(exp);
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
    fn short_decimals_match_the_standard_parser_bit_for_bit() {
        let mut rng = fastrand::Rng::with_seed(7);
        let check = |s: String| {
            let want: f64 = s.parse().unwrap();
            let got = super::short_decimal(s.as_bytes()).unwrap();
            assert_eq!(got.to_bits(), want.to_bits(), "{s}");
            assert_eq!(parse_js_number(s.as_bytes()), Ok(want), "{s}");
        };
        for _ in 0..200_000 {
            let int_len = rng.usize(0..=8);
            let frac_len = rng.usize(0..=(15 - int_len).min(9));
            if int_len + frac_len == 0 {
                continue;
            }
            let digits = |n: usize, rng: &mut fastrand::Rng| -> String {
                (0..n).map(|_| rng.char('0'..='9')).collect()
            };
            check(format!(
                "{}.{}",
                digits(int_len, &mut rng),
                digits(frac_len, &mut rng)
            ));
        }
        for s in [
            "0.1",
            "0.3",
            "18.423",
            "5.",
            ".5",
            "999999999999999.",
            ".000000000000001",
        ] {
            check(s.to_string());
        }
        // Not its shape: left to the general parser.
        for s in [
            ".",
            "1.2.3",
            "-1.5",
            "+1.5",
            "1.5e3",
            " 1.5",
            "1.5\r",
            "1234567890.1234567",
        ] {
            assert_eq!(super::short_decimal(s.as_bytes()), None, "{s}");
        }
        assert_eq!(p(b"1234567890.1234567"), Some(1234567890.1234567));
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
