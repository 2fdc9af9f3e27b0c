//! Points to pixels: graphite-web's `consolidateDataPoints`. When a series
//! has more points than the plot has pixel columns, runs of points are
//! merged (by the series' consolidation function) so that at most one
//! point lands on each column; drawing then costs the same whatever the
//! number of points fetched.

use rollupd_query::series::{Consolidate, Series};

/// A series as it will be drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct Columns {
    /// One value per drawn point (NaN: none).
    pub values: Vec<f64>,
    /// x of the first point, and the pixels between points.
    pub x0: f64,
    pub x_step: f64,
}

/// Merges `s` for a plot `pixels` wide whose left edge `left` shows
/// `start` and which spans `time_range` seconds. `min_x_step` is the
/// fewest pixels between two drawn points (graphite's `minXStep`).
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "`per` is a whole number >= 1 (the max above) and at most the request's \
              time range in seconds; the saturating `as` is the intended reading of \
              anything past usize::MAX: one chunk"
)]
pub fn columns(
    s: &Series,
    start: i64,
    time_range: i64,
    pixels: f64,
    min_x_step: f64,
    left: f64,
) -> Columns {
    let step = s.step.max(1) as f64;
    let points = time_range as f64 / step;
    let best = if points > 0.0 {
        pixels / points
    } else {
        pixels
    };
    let (per, x_step) = if best < min_x_step {
        let drawable = (pixels / min_x_step).floor().max(1.0);
        let per = (points / drawable).ceil().max(1.0);
        (per as usize, pixels * per / points)
    } else {
        (1, best)
    };
    let values = if per > 1 {
        merge(&s.values, per, s.consolidate, s.xff)
    } else {
        s.values.clone()
    };
    let missing = (s.start - start) as f64 / step;
    Columns {
        values,
        x0: left + x_step * (missing / per as f64),
        x_step,
    }
}

/// Chunks of `per` values from the first, each merged; a chunk with fewer
/// known values than `xff` of `per` (or none) is none. The last chunk may
/// be short but is still judged against `per`, as graphite does.
fn merge(values: &[f64], per: usize, how: Consolidate, xff: f64) -> Vec<f64> {
    values
        .chunks(per)
        .map(|chunk| {
            let known = chunk.iter().filter(|v| !v.is_nan()).count();
            if known == 0 || (known as f64 / per as f64) < xff {
                return f64::NAN;
            }
            let mut it = chunk.iter().copied().filter(|v| !v.is_nan());
            match how {
                Consolidate::Average => it.sum::<f64>() / known as f64,
                Consolidate::Sum => it.sum(),
                Consolidate::Min => it.fold(f64::INFINITY, f64::min),
                Consolidate::Max => it.fold(f64::NEG_INFINITY, f64::max),
                Consolidate::First => it.next().unwrap_or(f64::NAN),
                Consolidate::Last => it.next_back().unwrap_or(f64::NAN),
                Consolidate::Median | Consolidate::AvgZero => how.apply(chunk, 0.0),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_points_merge_to_about_one_per_column() {
        // 8640 points (1 d at 10 s) on 700 px: ceil(8640 / 700) = 13 per column.
        let vals: Vec<f64> = (0..8640).map(f64::from).collect();
        let s = Series::new("a", 0, 86_400, 10, vals);
        let c = columns(&s, 0, 86_400, 700.0, 1.0, 50.0);
        assert_eq!(c.values.len(), 8640_usize.div_ceil(13));
        // Average of 0..=12.
        assert_eq!(c.values[0], 6.0);
        assert!((c.x_step - 700.0 * 13.0 / 8640.0).abs() < 1e-9);
        assert_eq!(c.x0, 50.0);
        // The last, short chunk (8632..8639) is averaged over what it has.
        assert_eq!(*c.values.last().unwrap(), (8632.0 + 8639.0) / 2.0);
    }

    #[test]
    fn few_points_spread_out_and_late_series_start_later() {
        let s = Series::new("a", 60, 120, 10, vec![1.0; 6]);
        // 120 s over 240 px: 12 points → 20 px apart; starts 6 points in.
        let c = columns(&s, 0, 120, 240.0, 1.0, 0.0);
        assert_eq!(c.values.len(), 6);
        assert_eq!((c.x_step, c.x0), (20.0, 120.0));
    }

    #[test]
    fn merged_gaps_follow_xff_and_the_function() {
        let mut s = Series::new(
            "a",
            0,
            60,
            10,
            vec![1.0, f64::NAN, f64::NAN, f64::NAN, 5.0, 7.0],
        );
        s.consolidate = Consolidate::Max;
        assert_eq!(merge(&s.values, 3, s.consolidate, 0.0), vec![1.0, 7.0]);
        let m = merge(&s.values, 3, Consolidate::Sum, 0.5);
        assert!(m[0].is_nan());
        assert_eq!(m[1], 12.0);
        let m = merge(&[f64::NAN, f64::NAN], 2, Consolidate::Average, 0.0);
        assert!(m[0].is_nan());
    }
}
