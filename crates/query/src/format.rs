//! Numbers as Python prints them, because graphite-web's replies are
//! Python's `repr` of floats (json, csv, raw, and series names such as
//! `scale(x,2.0)`).

use std::fmt::Write;

/// Python's `repr(float)`: the shortest digits that round-trip, fixed
/// notation for exponents from -4 to 15, scientific (`1e+16`, `1e-05`)
/// outside, always with a `.0` on whole numbers in fixed notation.
pub fn py_float_repr(v: f64) -> String {
    let mut out = String::new();
    write_py_float(&mut out, v);
    out
}

/// [`py_float_repr`] appended to `out`, without allocating: json and csv
/// write every point through this (a million points per 1,000-series
/// render).
///
/// The digits are Ryū's: the shortest that round-trip and, of those, the
/// nearest, ties to even, as Python's `repr` picks them (core's `{:e}`
/// rounds such a tie up: `1118178314393840.25` is `...840.3` there and
/// `...840.2` in Python). Ryū's layout is Python's for zero and for
/// 1e-4 <= |v| < 1e16 (fixed, `.0` on whole numbers), nearly every value
/// a render writes; outside it the digits are laid out again.
pub fn write_py_float(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("nan");
        return;
    }
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "inf" } else { "-inf" });
        return;
    }
    let mut buf = ryu::Buffer::new();
    let ryu = buf.format_finite(v);
    let a = v.abs();
    if a == 0.0 || (1e-4..1e16).contains(&a) {
        out.push_str(ryu);
    } else {
        write_scientific(out, ryu);
    }
}

/// Python's scientific layout (`d.ddde+XX`, `de-XX`: a signed exponent of
/// at least two digits) of what Ryū wrote outside the shared range: its
/// own scientific form (`1e16`, `1.5e-7`) or, for 1e-5 <= |v| < 1e-4,
/// fixed (`0.0000123`).
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    reason = "Ryū writes at most 24 bytes, so its count of zeros after the point (four: \
              it writes fixed notation here only for 1e-5 <= |v| < 1e-4) fits i32"
)]
fn write_scientific(out: &mut String, ryu: &str) {
    let (neg, body) = match ryu.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, ryu),
    };
    let (digits, exp): (&str, i32) = match body.split_once('e') {
        Some((mantissa, exp)) => {
            // `d` or `d.ddd`: the digits are the mantissa without its point.
            let exp = exp.parse().unwrap_or(0);
            match mantissa.split_once('.') {
                Some((lead, rest)) => {
                    if neg {
                        out.push('-');
                    }
                    out.push_str(lead);
                    out.push('.');
                    out.push_str(rest);
                    push_exponent(out, exp);
                    return;
                }
                None => (mantissa, exp),
            }
        }
        None => {
            // `0.000ddd`: the exponent is one below the zeros after the point.
            let frac = body.strip_prefix("0.").unwrap_or(body);
            let significant = frac.trim_start_matches('0');
            let zeros = (frac.len() - significant.len()) as i32;
            (significant, -zeros - 1)
        }
    };
    if neg {
        out.push('-');
    }
    out.push_str(&digits[..1]);
    if digits.len() > 1 {
        out.push('.');
        out.push_str(&digits[1..]);
    }
    push_exponent(out, exp);
}

fn push_exponent(out: &mut String, exp: i32) {
    out.push('e');
    out.push(if exp < 0 { '-' } else { '+' });
    let e = exp.unsigned_abs();
    if e < 10 {
        out.push('0');
    }
    let _ = write!(out, "{e}");
}

/// Python's `"%g" % v`: six significant digits, trailing zeros dropped,
/// scientific below 1e-4 and from 1e6.
pub fn py_g(v: f64) -> String {
    if v.is_nan() {
        return "nan".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    let sci = format!("{v:.5e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        let decimals = usize::try_from(5 - exp).unwrap_or(0);
        let s = format!("{v:.decimals$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    } else {
        let m = mantissa.trim_end_matches('0').trim_end_matches('.');
        format!("{m}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_python_percent_g() {
        for (v, want) in [
            (2.0, "2"),
            (0.1, "0.1"),
            (1.5, "1.5"),
            (-3.25, "-3.25"),
            (1234567.0, "1.23457e+06"),
            (123456.0, "123456"),
            (0.0001, "0.0001"),
            (0.00001234, "1.234e-05"),
            (1.0 / 3.0, "0.333333"),
            (100.0, "100"),
        ] {
            assert_eq!(py_g(v), want, "{v}");
        }
    }

    /// Every finite value is written so that it parses back to itself, in
    /// Python's layout for its magnitude: random bit patterns, the same
    /// mantissas across the fixed range, and values like the ones metrics
    /// carry (few decimals, averages of them).
    #[test]
    fn writes_round_trip_in_python_layout() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut out = String::new();
        let mut check = |v: f64| {
            out.clear();
            write_py_float(&mut out, v);
            assert_eq!(out.parse::<f64>().ok(), Some(v), "{out}");
            let a = v.abs();
            let fixed = a == 0.0 || (1e-4..1e16).contains(&a);
            if fixed {
                assert!(out.contains('.') && !out.contains('e'), "{out}");
            } else {
                let (_, exp) = out.split_once('e').expect(&out);
                assert!(exp.len() >= 3 && (exp.starts_with('+') || exp.starts_with('-')));
            }
        };
        for _ in 0..300_000 {
            let bits = rng.u64(..);
            let v = f64::from_bits(bits);
            if v.is_finite() {
                check(v);
            }
            let e = rng.u64(1005..1080);
            check(f64::from_bits((bits & !(0x7ff << 52)) | (e << 52)));
            let cents = rng.i64(-10_000_000..10_000_000) as f64 / 100.0;
            check(cents);
            check(cents / f64::from(rng.u32(1..100)));
        }
    }

    #[test]
    fn matches_python_repr() {
        let cases = [
            (1.0, "1.0"),
            (100.0, "100.0"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (123456789012345.6, "123456789012345.6"),
            (1e15, "1000000000000000.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.2345e-7, "1.2345e-07"),
            (1e100, "1e+100"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0 / 3.0, "0.3333333333333333"),
            (2.0 / 3.0, "0.6666666666666666"),
            (110.56219968868203, "110.56219968868203"),
            (f64::MAX, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (-f64::MAX, "-1.7976931348623157e+308"),
            (-2.2250738585072014e-308, "-2.2250738585072014e-308"),
        ];
        for (v, want) in cases {
            assert_eq!(py_float_repr(v), want, "{v:e}");
        }
        // Both sides of the range Ryū's layout shares, and ties between two
        // shortest candidates (to even), as CPython 3 writes them.
        for (v, want) in [
            (f64::from_bits(0x430fc7d169ccc782), "1118178314393840.2"),
            (0.0001, "0.0001"),
            (1.5e-5, "1.5e-05"),
            (-1.2345e-5, "-1.2345e-05"),
            (1e-5, "1e-05"),
            (9.999999999999999e-5, "9.999999999999999e-05"),
            (9999999999999998.0, "9999999999999998.0"),
            (-9999999999999998.0, "-9999999999999998.0"),
            (1e16, "1e+16"),
        ] {
            assert_eq!(py_float_repr(v), want, "{v:e}");
        }
        // The writer appends to what is there.
        let mut out = String::from("[");
        write_py_float(&mut out, -0.00012345678901234567);
        assert_eq!(out, "[-0.00012345678901234567");
    }
}
