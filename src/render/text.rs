//! json, csv and raw output, byte for byte as graphite-web 1.1.10 writes
//! them, and its `maxDataPoints` consolidation (quirks included).

use std::fmt::Write;

use crate::query::format::{py_float_repr, write_py_float};
use crate::query::series::Series;

/// One series' points as they go out: (value, timestamp).
pub struct Out {
    pub points: Vec<(f64, i64)>,
}

/// graphite-web's json path: consolidate each series to at most
/// `max_points` (the window of all series decides the bucket width), with
/// its start nudged so buckets line up between refreshes, and its first
/// values dropped as graphite-web drops them.
pub fn datapoints(all: &[Series], max_points: Option<usize>) -> Vec<Out> {
    let start = all.iter().map(|s| s.start).min().unwrap_or(0);
    let end = all.iter().map(|s| s.end).max().unwrap_or(0);
    let range = end - start;
    all.iter()
        .map(|s| {
            let step = s.step.max(1);
            let n = range as f64 / step as f64;
            match max_points {
                Some(mdp) if mdp > 0 && (mdp as f64) < n => {
                    let per = (n / mdp as f64).ceil() as i64;
                    let spp = per * step;
                    let nudge = spp + s.start.rem_euclid(step) - s.start.rem_euclid(spp);
                    let first = s.start + nudge;
                    let lose = (nudge / step) as usize;
                    let vals = if lose > 1 {
                        &s.values[(lose - 1).min(s.values.len())..]
                    } else {
                        &s.values[..]
                    };
                    let mut points = Vec::with_capacity(vals.len().div_ceil(per as usize));
                    let mut t = first;
                    for chunk in vals.chunks(per as usize) {
                        if t > s.end {
                            break;
                        }
                        points.push((s.consolidate.apply_bucket(chunk, per as usize, s.xff), t));
                        t += spp;
                    }
                    Out { points }
                }
                _ => Out {
                    points: s
                        .values
                        .iter()
                        .enumerate()
                        .map(|(i, v)| (*v, s.start + i as i64 * step))
                        .take_while(|(_, t)| *t <= s.end)
                        .collect(),
                },
            }
        })
        .collect()
}

fn json_number(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("null");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "1e9999" } else { "-1e9999" });
    } else {
        write_py_float(out, v);
    }
}

fn json_string(out: &mut String, s: &str) {
    // Python's json.dumps with ensure_ascii: non-ASCII as \uXXXX.
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for u in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{:04x}", u);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `format=json`.
pub fn json(all: &[Series], max_points: Option<usize>, no_null_points: bool) -> String {
    // graphite-web's `if any(data)`: a series without values is falsy, so
    // when none has any (movingAverage(x,N) with N past the last point,
    // delay(x,0)) the reply is empty.
    if all.iter().all(|s| s.values.is_empty()) {
        return "[]".to_string();
    }
    let outs = datapoints(all, max_points);
    let mut out =
        String::with_capacity(64 + all.iter().map(|s| s.values.len() * 24).sum::<usize>());
    let mut stamp = itoa::Buffer::new();
    out.push('[');
    for (i, (s, o)) in all.iter().zip(&outs).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str("{\"target\": ");
        json_string(&mut out, &s.name);
        out.push_str(", \"tags\": {");
        for (j, (k, v)) in s.tags.iter().enumerate() {
            if j > 0 {
                out.push_str(", ");
            }
            json_string(&mut out, k);
            out.push_str(": ");
            json_string(&mut out, v);
        }
        out.push_str("}, \"datapoints\": [");
        let mut first = true;
        for (v, t) in &o.points {
            if no_null_points && v.is_nan() {
                continue;
            }
            if !first {
                out.push_str(", ");
            }
            first = false;
            out.push('[');
            json_number(&mut out, *v);
            out.push_str(", ");
            out.push_str(stamp.format(*t));
            out.push(']');
        }
        out.push_str("]}");
    }
    out.push(']');
    out
}

/// `format=raw`: `name,start,end,step|v,v,...` per series (None for gaps).
pub fn raw(all: &[Series]) -> String {
    let mut out = String::new();
    for s in all {
        let _ = write!(out, "{},{},{},{}|", s.name, s.start, s.end, s.step);
        for (i, v) in s.values.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            if v.is_nan() {
                out.push_str("None");
            } else {
                write_py_float(&mut out, *v);
            }
        }
        out.push('\n');
    }
    out
}

/// `format=csv`: `name,YYYY-MM-DD HH:MM:SS,value` per point, in `tz`.
pub fn csv(all: &[Series], tz: &chrono_tz::Tz) -> String {
    use chrono::TimeZone;
    let mut out = String::new();
    for s in all {
        for (i, v) in s.values.iter().enumerate() {
            let t = s.start + i as i64 * s.step;
            let when = tz
                .timestamp_opt(t, 0)
                .single()
                .map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_default();
            let name = if s.name.contains(',') || s.name.contains('"') {
                format!("\"{}\"", s.name.replace('"', "\"\""))
            } else {
                s.name.clone()
            };
            if v.is_nan() {
                let _ = write!(out, "{name},{when},\r\n");
            } else {
                let _ = write!(out, "{name},{when},{}\r\n", py_float_repr(*v));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_graphite_shaped() {
        let s = Series::new("a.b", 100, 130, 10, vec![1.0, f64::NAN, f64::INFINITY]);
        assert_eq!(
            json(&[s], None, false),
            r#"[{"target": "a.b", "tags": {"name": "a.b"}, "datapoints": [[1.0, 100], [null, 110], [1e9999, 120]]}]"#
        );
    }

    #[test]
    fn max_data_points_buckets_like_graphite_web() {
        // 60 points at 10 s from t=1005 (not aligned), maxDataPoints 20:
        // 3 values per point, 30 s buckets.
        let vals: Vec<f64> = (0..60).map(|i| i as f64).collect();
        let s = Series::new("x", 1000, 1600, 10, vals);
        let o = &datapoints(&[s], Some(20))[0];
        // nudge = 30 + 0 - (1000 % 30 = 10) = 20; start 1020; lose 2 → drop 1.
        assert_eq!(o.points[0], (2.0, 1020));
        assert_eq!(o.points[1], (5.0, 1050));
        assert!(o.points.len() <= 20);
    }

    #[test]
    fn the_last_short_bucket_counts_against_a_full_one() {
        // As above: 59 values left, so the last bucket (1590) holds 2 of
        // 3; with xFilesFactor 0.7, 2/3 is too few, though both are known.
        let vals: Vec<f64> = (0..60).map(|i| i as f64).collect();
        let mut s = Series::new("x", 1000, 1600, 10, vals);
        s.xff = 0.7;
        let o = &datapoints(&[s], Some(20))[0];
        assert_eq!(o.points.len(), 20);
        assert_eq!(o.points[18], (56.0, 1560));
        assert!(o.points[19].0.is_nan() && o.points[19].1 == 1590);
    }

    #[test]
    fn no_values_anywhere_is_an_empty_reply() {
        let empty = Series::new("a", 100, 100, 10, vec![]);
        assert_eq!(json(&[empty.clone(), empty.clone()], None, false), "[]");
        let one = Series::new("b", 100, 110, 10, vec![1.0]);
        assert_eq!(
            json(&[empty, one], None, false),
            r#"[{"target": "a", "tags": {"name": "a"}, "datapoints": []}, {"target": "b", "tags": {"name": "b"}, "datapoints": [[1.0, 100]]}]"#
        );
    }

    #[test]
    fn raw_and_csv() {
        let s = Series::new("a.b", 100, 120, 10, vec![1.5, f64::NAN]);
        assert_eq!(raw(std::slice::from_ref(&s)), "a.b,100,120,10|1.5,None\n");
        assert_eq!(
            csv(&[s], &chrono_tz::Tz::UTC),
            "a.b,1970-01-01 00:01:40,1.5\r\na.b,1970-01-01 00:01:50,\r\n"
        );
    }
}
