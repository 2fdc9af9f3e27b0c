//! json, csv and raw output, byte for byte as graphite-web 1.1.10 writes
//! them, and its `maxDataPoints` consolidation (quirks included).

use std::fmt::Write;

use rollupd_query::format::{py_float_repr, write_py_float};
use rollupd_query::series::Series;

/// One series' points as they go out: (value, timestamp).
pub struct Out {
    pub points: Vec<(f64, i64)>,
}

/// graphite-web's json path: consolidate each series to at most
/// `max_points` (the window of all series decides the bucket width), with
/// its start nudged so buckets line up between refreshes, and its first
/// values dropped as graphite-web drops them.
pub fn datapoints(all: &[Series], max_points: Option<usize>) -> Vec<Out> {
    let window = window_of(all);
    all.iter()
        .map(|s| Out {
            points: points_of(s, window, max_points),
        })
        .collect()
}

/// The span of all series, `(start, end)`: what `maxDataPoints` divides.
fn window_of(all: &[Series]) -> (i64, i64) {
    let start = all.iter().map(|s| s.start).min().unwrap_or(0);
    let end = all.iter().map(|s| s.end).max().unwrap_or(0);
    (start, end)
}

/// One series' points as [`datapoints`] gives them, for a `window` of all
/// series.
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    reason = "`per` is the ceil of n / maxDataPoints with n > maxDataPoints, so >= 2 and \
              at most the window's span in seconds, an i64 (the saturating `as` is the \
              intended reading past it); `i` indexes `s.values`, at most isize::MAX long"
)]
fn points_of(s: &Series, (start, end): (i64, i64), max_points: Option<usize>) -> Vec<(f64, i64)> {
    let range = end - start;
    let step = s.step.max(1);
    let n = range as f64 / step as f64;
    match max_points {
        // graphite-web's special case: every value of the series in one
        // point at the series' own start, however short the window (no
        // nudge, no values dropped). A series without values has no point
        // (graphite-web fails on it: a consolidation step of zero).
        Some(1) => {
            if s.values.is_empty() || s.start > s.end {
                return Vec::new();
            }
            let all = s.consolidate.apply_bucket(&s.values, s.values.len(), s.xff);
            vec![(all, s.start)]
        }
        Some(mdp) if mdp > 0 && (mdp as f64) < n => {
            let per = (n / mdp as f64).ceil() as i64;
            let spp = per * step;
            let nudge = spp + s.start.rem_euclid(step) - s.start.rem_euclid(spp);
            let first = s.start + nudge;
            // nudge > 0: spp exceeds `s.start.rem_euclid(spp)`.
            let lose = usize::try_from(nudge / step).unwrap_or(usize::MAX);
            let vals = if lose > 1 {
                &s.values[(lose - 1).min(s.values.len())..]
            } else {
                &s.values[..]
            };
            // Past usize::MAX (on a 32-bit target), one chunk of all values.
            let per_n = usize::try_from(per).unwrap_or(usize::MAX);
            let mut points = Vec::with_capacity(vals.len().div_ceil(per_n));
            let mut t = first;
            for chunk in vals.chunks(per_n) {
                if t > s.end {
                    break;
                }
                points.push((s.consolidate.apply_bucket(chunk, per_n, s.xff), t));
                t += spp;
            }
            points
        }
        _ => s
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| (*v, s.start + i as i64 * step))
            .take_while(|(_, t)| *t <= s.end)
            .collect(),
    }
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

/// How a json reply is written: the window of all its series (what
/// `maxDataPoints` divides), and the size a piece of it stops at.
struct JsonShape {
    window: (i64, i64),
    max_points: Option<usize>,
    no_null_points: bool,
    piece_bytes: usize,
    /// Opt-in (`targetIndex` on `/render`): each series' index among the
    /// request's targets, written as `"targetIndex": N` after its tags so a
    /// page that batches many panels' targets into one request can tell
    /// whose each series is (graphite's json does not say).
    target_index: Option<Vec<usize>>,
}

/// graphite-web's `if any(data)`: a series without values is falsy, so
/// when none has any (movingAverage(x,N) with N past the last point,
/// delay(x,0)) the json reply is `[]`.
fn no_values(all: &[Series]) -> bool {
    all.iter().all(|s| s.values.is_empty())
}

/// Writes series `from..` of a json reply to `out`, the opening bracket
/// first when `from` is 0, until `out` holds `shape.piece_bytes` (whole
/// series only). Returns the next series to write, `all.len()` once the
/// reply is complete with its closing bracket. A series is consolidated
/// only when its turn comes. `wrote` says whether an earlier piece wrote a
/// series (so this one starts with a comma): with `noNullPoints`, a series
/// left without points is not written at all, as graphite-web skips it.
fn write_json_piece(
    all: &[Series],
    from: usize,
    shape: &JsonShape,
    wrote: &mut bool,
    out: &mut String,
) -> usize {
    let mut stamp = itoa::Buffer::new();
    if from == 0 {
        out.push('[');
    }
    for (i, s) in all.iter().enumerate().skip(from) {
        let mut points = points_of(s, shape.window, shape.max_points);
        if shape.no_null_points {
            points.retain(|(v, _)| !v.is_nan());
            if points.is_empty() {
                continue;
            }
        }
        if *wrote {
            out.push_str(", ");
        }
        *wrote = true;
        out.push_str("{\"target\": ");
        json_string(out, &s.name);
        out.push_str(", \"tags\": {");
        for (j, (k, v)) in s.tags.iter().enumerate() {
            if j > 0 {
                out.push_str(", ");
            }
            json_string(out, k);
            out.push_str(": ");
            json_string(out, v);
        }
        out.push('}');
        if let Some(ix) = shape.target_index.as_ref().and_then(|t| t.get(i)) {
            out.push_str(", \"targetIndex\": ");
            out.push_str(stamp.format(*ix));
        }
        out.push_str(", \"datapoints\": [");
        let mut first = true;
        for (v, t) in points {
            if !first {
                out.push_str(", ");
            }
            first = false;
            out.push('[');
            json_number(out, v);
            out.push_str(", ");
            out.push_str(stamp.format(t));
            out.push(']');
        }
        out.push_str("]}");
        if out.len() >= shape.piece_bytes && i + 1 < all.len() {
            return i + 1;
        }
    }
    out.push(']');
    all.len()
}

/// `format=json`.
pub fn json(all: &[Series], max_points: Option<usize>, no_null_points: bool) -> String {
    if no_values(all) {
        return "[]".to_string();
    }
    let shape = JsonShape {
        window: window_of(all),
        max_points,
        no_null_points,
        piece_bytes: usize::MAX,
        target_index: None,
    };
    let mut out =
        String::with_capacity(64 + all.iter().map(|s| s.values.len() * 24).sum::<usize>());
    write_json_piece(all, 0, &shape, &mut false, &mut out);
    out
}

/// `format=json` in pieces of about `piece_bytes` (whole series, so a
/// piece may be larger; the last one smaller), written as they are asked
/// for: a reply of a million points can be sent while the rest of it is
/// written. The pieces, joined, are [`json`]'s reply.
pub struct JsonPieces {
    all: Vec<Series>,
    shape: JsonShape,
    next: usize,
    /// A series has been written (the next one starts with a comma).
    wrote: bool,
    finished: bool,
}

impl JsonPieces {
    pub fn new(
        all: Vec<Series>,
        max_points: Option<usize>,
        no_null_points: bool,
        piece_bytes: usize,
    ) -> JsonPieces {
        let window = window_of(&all);
        JsonPieces {
            all,
            shape: JsonShape {
                window,
                max_points,
                no_null_points,
                piece_bytes,
                target_index: None,
            },
            next: 0,
            wrote: false,
            finished: false,
        }
    }

    /// Tags each series with the index of the target that produced it
    /// (`index[i]` for series `i`); see [`JsonShape::target_index`].
    pub fn with_target_index(mut self, index: Vec<usize>) -> JsonPieces {
        self.shape.target_index = Some(index);
        self
    }

    /// Whether every piece has been given out.
    pub fn is_finished(&self) -> bool {
        self.finished
    }
}

impl Iterator for JsonPieces {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        if self.finished {
            return None;
        }
        if no_values(&self.all) {
            self.finished = true;
            return Some("[]".to_string());
        }
        // Room for the target size and most of one more series past it.
        let piece_bytes = self.shape.piece_bytes;
        let mut out = String::with_capacity(piece_bytes.saturating_add(piece_bytes / 4));
        self.next = write_json_piece(&self.all, self.next, &self.shape, &mut self.wrote, &mut out);
        self.finished = self.next >= self.all.len();
        Some(out)
    }
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
#[expect(
    clippy::cast_possible_wrap,
    reason = "`i` indexes `s.values`, and a Vec holds at most isize::MAX elements"
)]
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

    /// `targetIndex` adds one key per series and nothing else: without it
    /// the reply is byte for byte graphite's.
    #[test]
    fn target_index_tags_each_series_with_its_target() {
        let a = Series::new("a", 100, 120, 10, vec![1.0, 2.0]);
        let b = Series::new("b", 100, 120, 10, vec![3.0, f64::NAN]);
        let plain: String = JsonPieces::new(vec![a.clone(), b.clone()], None, false, 16).collect();
        assert_eq!(plain, json(&[a.clone(), b.clone()], None, false));
        let tagged: String = JsonPieces::new(vec![a, b], None, false, 16)
            .with_target_index(vec![0, 2])
            .collect();
        assert_eq!(
            tagged,
            r#"[{"target": "a", "tags": {"name": "a"}, "targetIndex": 0, "datapoints": [[1.0, 100], [2.0, 110]]}, {"target": "b", "tags": {"name": "b"}, "targetIndex": 2, "datapoints": [[3.0, 100], [null, 110]]}]"#
        );
    }

    #[test]
    fn json_is_graphite_shaped() {
        let s = Series::new("a.b", 100, 130, 10, vec![1.0, f64::NAN, f64::INFINITY]);
        assert_eq!(
            json(&[s], None, false),
            r#"[{"target": "a.b", "tags": {"name": "a.b"}, "datapoints": [[1.0, 100], [null, 110], [1e9999, 120]]}]"#
        );
    }

    /// In pieces, the reply is the same bytes as whole, cut after whole
    /// series.
    #[test]
    fn json_in_pieces_is_the_whole_reply() {
        let all: Vec<Series> = (0..30)
            .map(|i| {
                let vals: Vec<f64> = (0..50).map(|j| f64::from(i * j) / 7.0).collect();
                Series::new(&format!("x.s{i:02}"), 1000, 1500, 10, vals)
            })
            .collect();
        for mdp in [None, Some(20)] {
            let whole = json(&all, mdp, false);
            for piece in [1, 100, 1000, whole.len() - 1, whole.len() + 1] {
                let mut pieces = JsonPieces::new(all.clone(), mdp, false, piece);
                let first = pieces.next().unwrap();
                let finished_first = pieces.is_finished();
                let got: Vec<String> = std::iter::once(first).chain(&mut pieces).collect();
                assert_eq!(finished_first, got.len() == 1, "piece {piece}");
                assert!(pieces.is_finished() && pieces.next().is_none());
                assert_eq!(got.concat(), whole, "piece {piece}");
                for p in &got[..got.len() - 1] {
                    assert!(p.len() >= piece && p.ends_with("]}"), "piece {piece}");
                }
            }
        }
        let empty = vec![Series::new("a", 100, 100, 10, vec![])];
        let got: Vec<String> = JsonPieces::new(empty, None, false, 10).collect();
        assert_eq!(got, ["[]"]);
    }

    #[test]
    fn max_data_points_buckets_like_graphite_web() {
        // 60 points at 10 s from t=1005 (not aligned), maxDataPoints 20:
        // 3 values per point, 30 s buckets.
        let vals: Vec<f64> = (0..60).map(f64::from).collect();
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
        let vals: Vec<f64> = (0..60).map(f64::from).collect();
        let mut s = Series::new("x", 1000, 1600, 10, vals);
        s.xff = 0.7;
        let o = &datapoints(&[s], Some(20))[0];
        assert_eq!(o.points.len(), 20);
        assert_eq!(o.points[18], (56.0, 1560));
        assert!(o.points[19].0.is_nan() && o.points[19].1 == 1590);
    }

    /// graphite-web's `maxDataPoints=1`: `consolidate(len(series))`, one
    /// point at the series' start (not the nudged bucket of 2 and up).
    #[test]
    fn one_max_data_point_is_the_whole_series_at_its_start() {
        let vals: Vec<f64> = (0..60).map(f64::from).collect();
        let s = Series::new("x", 1000, 1600, 10, vals.clone());
        assert_eq!(datapoints(&[s], Some(1))[0].points, [(29.5, 1000)]);
        // Its own start and all its values, whatever the window of all.
        let short = Series::new("y", 1300, 1330, 10, vec![1.0, f64::NAN, 5.0]);
        let long = Series::new("x", 1000, 1600, 10, vals);
        let o = datapoints(&[long, short.clone()], Some(1));
        assert_eq!(o[1].points, [(3.0, 1300)]);
        // xFilesFactor counts against all of the series.
        let mut sparse = short;
        sparse.xff = 0.7;
        assert!(datapoints(&[sparse], Some(1))[0].points[0].0.is_nan());
        let empty = Series::new("e", 1000, 1000, 10, vec![]);
        assert!(datapoints(&[empty], Some(1))[0].points.is_empty());
    }

    /// graphite-web's `noNullPoints` drops the null points and then every
    /// series left without a point (`if not datapoints: continue`).
    #[test]
    fn no_null_points_drops_series_left_without_points() {
        let nan = f64::NAN;
        let none = Series::new("a", 100, 130, 10, vec![nan, nan, nan]);
        let some = Series::new("b", 100, 130, 10, vec![1.0, nan, 2.0]);
        let empty = Series::new("c", 100, 100, 10, vec![]);
        let b = r#"{"target": "b", "tags": {"name": "b"}, "datapoints": [[1.0, 100], [2.0, 120]]}"#;
        let all = [none.clone(), some.clone(), empty.clone(), none.clone()];
        assert_eq!(json(&all, None, true), format!("[{b}]"));
        assert_eq!(json(&[none.clone(), empty.clone()], None, true), "[]");
        assert_eq!(
            json(&[some.clone(), some.clone()], None, true),
            format!("[{b}, {b}]")
        );
        // The same reply in pieces, however the skipped series fall.
        for piece in [1, 10, 1000] {
            let got: Vec<String> = JsonPieces::new(all.to_vec(), None, true, piece).collect();
            assert_eq!(got.concat(), format!("[{b}]"), "piece {piece}");
            let two = vec![some.clone(), none.clone(), some.clone()];
            let got: Vec<String> = JsonPieces::new(two, None, true, piece).collect();
            assert_eq!(got.concat(), format!("[{b}, {b}]"), "piece {piece}");
        }
        // Without the flag every series stays, nulls and all.
        assert!(json(&[none, some], None, false).contains("[null, 100]"));
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
