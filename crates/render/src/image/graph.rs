//! One line graph, laid out and drawn the way graphite-web's LineGraph
//! does it: title on top, legend at the bottom, x labels above the legend,
//! y labels pushing the plot right until they fit, grid, then the series
//! (filled ones first), then event markers.

use chrono_tz::Tz;
use plotters::prelude::DrawingBackend;
use plotters::style::RGBAColor;

use super::canvas::{clip_polygon, clip_polyline, Align, Canvas, Rect, VAlign};
use super::color::{self, Color};
use super::consolidate::{columns, Columns};
use super::font;
use super::legend::{self, Entry};
use super::options::{unquote_plus, AreaMode, GraphOptions, LineMode};
use super::ticks::{y_axis, YAxis};
use super::timeaxis;
use super::EventMark;
use rollupd_query::series::Series;

/// A series to draw and how.
pub struct Plot<'a> {
    pub series: &'a Series,
    /// graphite's `drawAsInfinite`: a vertical line at each non-zero point.
    pub infinite: bool,
}

struct Drawn {
    color: Color,
    cols: Columns,
    /// Values as drawn (stacked, nulls as zero when asked); NaN = none.
    values: Vec<f64>,
    /// Stacked series: the total under each value.
    below: Option<Vec<f64>>,
    infinite: bool,
    filled: bool,
}

fn area_of(xmin: f64, xmax: f64, ymin: f64, ymax: f64) -> Rect {
    Rect {
        x0: xmin,
        y0: ymin,
        x1: xmax,
        y1: ymax,
    }
}

/// Draws the whole graph on `c`.
pub fn draw<DB: DrawingBackend>(
    c: &mut Canvas<DB>,
    o: &GraphOptions,
    tz: &Tz,
    plots: &[Plot<'_>],
    events: &[EventMark],
) -> Result<(), String> {
    let (w, h) = (f64::from(o.width), f64::from(o.height));
    c.fill_rect(area_of(0.0, w, 0.0, h), o.background.opaque())?;
    let start = plots.iter().map(|p| p.series.start).min();
    let end = plots.iter().map(|p| p.series.end).max();
    let (Some(start), Some(end)) = (start, end) else {
        return no_data(c, w, h);
    };
    if end <= start {
        return no_data(c, w, h);
    }
    let fg = o.foreground.opaque();
    let em = o.font_size;
    let margin = o.margin;
    let (mut xmin, xmax, mut ymin, mut ymax) = if o.graph_only {
        (0.0, w, 0.0, h)
    } else {
        (margin + 10.0, w - margin, margin, h - margin)
    };

    // A slope needs two points; graphite falls back to steps otherwise.
    let mut line_mode = o.line_mode;
    if line_mode == LineMode::Slope && plots.iter().any(|p| p.series.values.len() == 1) {
        line_mode = LineMode::Staircase;
    }
    // A series with a colour of its own (`threshold(v, label, 'red')`,
    // `color()`) keeps it; the others take colorList's in turn, as
    // graphite-web's `if not hasattr(series, 'color')` does: a coloured
    // series does not use up a colour of the cycle.
    let mut next = 0;
    let colors: Vec<Color> = plots
        .iter()
        .map(|p| match p.series.color.as_deref().and_then(color::parse) {
            Some(c) => c,
            None => {
                let c = o.colors[next % o.colors.len().max(1)];
                next += 1;
                c
            }
        })
        .collect();

    let title_em = em + em.ln().floor();
    if !o.title.is_empty() {
        let line = font::extents(title_em).height;
        let mut y = ymin;
        for text in o.title.split('\n') {
            let text = font::fit(text, title_em, (w - 2.0 * margin).max(title_em));
            c.text(
                &text,
                w / 2.0,
                y,
                title_em,
                fg,
                Align::Center,
                VAlign::Top,
                false,
            )?;
            y += line;
        }
        ymin = y + margin;
    }
    if !o.vtitle.is_empty() {
        let line = font::extents(title_em).height;
        let mut x = xmin + line;
        for text in o.vtitle.split('\n') {
            let text = font::fit(text, title_em, (h - 2.0 * margin).max(title_em));
            c.text(
                &text,
                x,
                h / 2.0,
                title_em,
                fg,
                Align::Center,
                VAlign::Baseline,
                true,
            )?;
            x += line;
        }
        xmin = x + margin + line;
    }

    let show_legend = !o.hide_legend.unwrap_or(plots.len() > legend::MAX_ITEMS);
    if show_legend {
        let mut entries: Vec<Entry> = plots
            .iter()
            .zip(&colors)
            .filter(|(p, _)| !p.series.name.is_empty())
            .filter(|(p, _)| {
                !(o.hide_null_from_legend && p.series.values.iter().all(|v| v.is_nan()))
            })
            .map(|(p, col)| Entry {
                name: unquote_plus(&p.series.name),
                color: *col,
            })
            .collect();
        entries.extend(events.iter().map(|e| Entry {
            name: e.what.clone(),
            color: e.color,
        }));
        if !entries.is_empty() {
            let l = legend::layout(entries, o.unique_legend, em, xmin, w);
            // A legend that would crush the plot is left out.
            if ymax - l.height - ymin >= (ymax - ymin) / 3.0 {
                ymax -= l.height;
                l.draw(c, xmin, ymax, fg)?;
            }
        }
    }

    let ext = font::extents(em);
    let axes = !o.hide_axes;
    if axes && !o.hide_x_axis {
        ymax -= ext.ascent * 2.0;
    }

    let end_time = if line_mode == LineMode::Staircase {
        end
    } else {
        plots
            .iter()
            .map(|p| p.series.end - p.series.step)
            .max()
            .unwrap_or(end)
    };
    let time_range = end_time - start;
    if time_range <= 0 || xmax - xmin < 4.0 || ymax - ymin < 4.0 {
        return Ok(());
    }

    // Fit the y labels: they push the plot right, which changes how points
    // merge, which can change the labels; graphite repeats until stable.
    let mut drawn;
    let mut axis;
    let mut label_width = 0.0;
    let mut rounds = 0;
    loop {
        let pixels = xmax - xmin - (o.line_width + 1.0);
        drawn = prepare(o, plots, &colors, start, time_range, pixels.max(1.0), xmin);
        let (lo, hi) = limits(&drawn);
        axis = y_axis(lo, hi, &o.axis);
        if !axes || o.hide_y_axis {
            break;
        }
        label_width = axis
            .labels
            .iter()
            .map(|(_, t)| font::width(t, em))
            .fold(0.0, f64::max);
        let need = margin + label_width * 1.02;
        rounds += 1;
        if xmin >= need || rounds > 4 {
            break;
        }
        xmin = need;
        if xmax - xmin < 4.0 {
            return Ok(());
        }
    }
    let graph_width = (xmax - xmin - (o.line_width + 1.0)).max(1.0);
    let x_conf = timeaxis::choose(time_range, graph_width);
    let x_scale = graph_width / time_range as f64;
    let (lowest, highest) = if axes {
        axis.range()
    } else {
        (axis.bottom, axis.top)
    };
    let ymap = YMap {
        lowest,
        span: highest - lowest,
        ymin,
        ymax,
    };
    let plot = area_of(xmin, xmax, ymin, ymax);

    if axes {
        if !o.hide_y_axis {
            for (v, text) in &axis.labels {
                let y = ymap.y(*v).max(0.0);
                let x = xmin - label_width * 0.02;
                c.text(text, x, y, em, fg, Align::Right, VAlign::Middle, false)?;
            }
        }
        if !o.hide_x_axis {
            let format = o.x_format.as_deref().unwrap_or(x_conf.format);
            let ticks = timeaxis::instants(start, end_time, x_conf.label, tz);
            let labels: Vec<(f64, String)> = ticks
                .iter()
                .filter_map(|t| {
                    let text = timeaxis::label(*t, format, tz)?;
                    Some((xmin + (t - start) as f64 * x_scale, text))
                })
                .collect();
            for (x, text) in spaced(&labels, em, w) {
                c.text(
                    text,
                    x,
                    ymax + ext.ascent,
                    em,
                    fg,
                    Align::Center,
                    VAlign::Top,
                    false,
                )?;
            }
        }
        if !o.hide_grid {
            grid(
                c,
                o,
                tz,
                &axis,
                &ymap,
                plot,
                (start, end_time),
                x_scale,
                &x_conf,
            )?;
        }
    }

    draw_series(c, o, line_mode, &drawn, &ymap, plot)?;
    draw_events(c, o, events, (start, end_time), x_scale, plot)
}

fn no_data<DB: DrawingBackend>(c: &mut Canvas<DB>, w: f64, h: f64) -> Result<(), String> {
    let em = (w * h).ln();
    let red = RGBAColor(200, 0, 50, 1.0);
    c.text(
        "No Data",
        w / 2.0,
        h / 2.0,
        em,
        red,
        Align::Center,
        VAlign::Top,
        false,
    )
}

/// Value to pixel row: the lowest label at the bottom of the plot, the
/// highest at the top.
struct YMap {
    lowest: f64,
    span: f64,
    ymin: f64,
    ymax: f64,
}

impl YMap {
    /// Far outside values (infinities included) stay a bounded distance
    /// off the plot, where clipping cuts them.
    fn y(&self, v: f64) -> f64 {
        if self.span <= 0.0 {
            return self.ymax;
        }
        let y = self.ymax - (v - self.lowest) / self.span * (self.ymax - self.ymin);
        y.clamp(self.ymin - 10_000.0, self.ymax + 10_000.0)
    }
}

/// Consolidates every series to the plot width and applies
/// `drawNullAsZero` and stacking.
fn prepare(
    o: &GraphOptions,
    plots: &[Plot<'_>],
    colors: &[Color],
    start: i64,
    time_range: i64,
    pixels: f64,
    xmin: f64,
) -> Vec<Drawn> {
    let left = xmin + o.line_width / 2.0;
    let mut total: Vec<f64> = Vec::new();
    let mut first_finite = true;
    plots
        .iter()
        .zip(colors)
        .map(|(p, color)| {
            let cols = columns(p.series, start, time_range, pixels, o.min_x_step, left);
            let mut values = cols.values.clone();
            if o.draw_null_as_zero {
                for v in &mut values {
                    if v.is_nan() {
                        *v = 0.0;
                    }
                }
            }
            let filled = !p.infinite
                && match o.area_mode {
                    AreaMode::None => false,
                    AreaMode::First => std::mem::take(&mut first_finite),
                    AreaMode::All | AreaMode::Stacked => true,
                };
            let mut below = None;
            if o.area_mode == AreaMode::Stacked && !p.infinite {
                if total.len() < values.len() {
                    total.resize(values.len(), 0.0);
                }
                let under: Vec<f64> = total[..values.len()].to_vec();
                for (v, t) in values.iter_mut().zip(total.iter_mut()) {
                    if !v.is_nan() {
                        *t += *v;
                        *v = *t;
                    }
                }
                below = Some(under);
            }
            Drawn {
                color: *color,
                cols,
                values,
                below,
                infinite: p.infinite,
                filled,
            }
        })
        .collect()
}

/// The value range to cover: every drawn value of the finite series.
fn limits(drawn: &[Drawn]) -> (f64, f64) {
    let finite = || {
        drawn
            .iter()
            .filter(|d| !d.infinite)
            .flat_map(|d| d.values.iter().copied())
            .filter(|v| v.is_finite())
    };
    let lo = finite().fold(f64::INFINITY, f64::min);
    let hi = finite().fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    // drawNullAsZero already put its zeros into the values.
    (lo, hi)
}

/// Labels that do not overlap: every k-th for the smallest k that leaves
/// a gap between neighbours; kept inside the image.
fn spaced(labels: &[(f64, String)], em: f64, width: f64) -> Vec<(f64, &str)> {
    let widths: Vec<f64> = labels.iter().map(|(_, t)| font::width(t, em)).collect();
    let gap = em * 0.8;
    let mut k = 1;
    while k < labels.len() {
        let ok = (k..labels.len()).step_by(k).all(|i| {
            let prev = i - k;
            labels[i].0 - labels[prev].0 >= (widths[i] + widths[prev]) / 2.0 + gap
        });
        if ok {
            break;
        }
        k += 1;
    }
    labels
        .iter()
        .zip(&widths)
        .step_by(k.max(1))
        .map(|((x, t), tw)| {
            let x = x.max(tw / 2.0 + 1.0).min(width - tw / 2.0 - 1.0);
            (x, t.as_str())
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn grid<DB: DrawingBackend>(
    c: &mut Canvas<DB>,
    o: &GraphOptions,
    tz: &Tz,
    axis: &YAxis,
    ymap: &YMap,
    plot: Rect,
    (start, end): (i64, i64),
    x_scale: f64,
    x_conf: &timeaxis::XConfig,
) -> Result<(), String> {
    let major = o.major_grid.opaque();
    let minor = o.minor_grid.opaque();
    let values: Vec<f64> = axis.labels.iter().map(|(v, _)| *v).collect();
    for (i, v) in values.iter().enumerate() {
        let y = ymap.y(*v);
        if y < 0.0 {
            continue;
        }
        c.line((plot.x0, y), (plot.x1, y), major, 0.4)?;
        if o.minor_y >= 1 && i + 1 < values.len() {
            let (lo, hi) = (v.min(values[i + 1]), v.max(values[i + 1]));
            let d = (hi - lo) / f64::from(1 + o.minor_y);
            for k in 1..=o.minor_y {
                let mv = lo + f64::from(k) * d;
                if mv >= axis.top {
                    continue;
                }
                let y = ymap.y(mv);
                if y >= 0.0 {
                    c.line((plot.x0, y), (plot.x1, y), minor, 0.3)?;
                }
            }
        }
    }
    for (spacing, color, width) in [(x_conf.minor, minor, 0.25), (x_conf.major, major, 0.33)] {
        for t in timeaxis::instants(start, end, spacing, tz) {
            let x = plot.x0 + (t - start) as f64 * x_scale;
            if x < plot.x1 {
                c.line((x, plot.y1), (x, plot.y0), color, width)?;
            }
        }
    }
    c.line((plot.x1, plot.y1), (plot.x1, plot.y0), major, 0.5)?;
    c.line((plot.x0, plot.y1), (plot.x0, plot.y0), major, 0.5)
}

/// The unbroken pieces of a series' line, point by point as graphite's
/// cairo path goes (including the short flat tail it draws into the first
/// missing point). `None` values are NaN.
fn pieces(
    values: &[f64],
    cols: &Columns,
    mode: LineMode,
    limit: Option<usize>,
    ymap: &YMap,
) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut cur: Vec<(f64, f64)> = Vec::new();
    let mut x = cols.x0;
    let mut y = ymap.ymin;
    let mut nones = 0usize;
    let flush = |cur: &mut Vec<(f64, f64)>, out: &mut Vec<Vec<(f64, f64)>>| {
        // A lone move is no line (cairo draws nothing for it).
        if cur.len() > 1 {
            out.push(std::mem::take(cur));
        } else {
            cur.clear();
        }
    };
    for (i, v) in values.iter().enumerate() {
        if v.is_nan() {
            if nones == 0 {
                cur.push((x, y));
            }
            x += cols.x_step;
            nones += 1;
            continue;
        }
        y = ymap.y(*v).max(0.0);
        let restart = match mode {
            LineMode::Staircase | LineMode::Slope => nones > 0,
            LineMode::Connected => nones == i || limit.is_some_and(|l| nones > l),
        };
        if restart {
            flush(&mut cur, &mut out);
        }
        cur.push((x, y));
        x += cols.x_step;
        if mode == LineMode::Staircase {
            cur.push((x, y));
        }
        nones = 0;
    }
    flush(&mut cur, &mut out);
    out
}

fn draw_series<DB: DrawingBackend>(
    c: &mut Canvas<DB>,
    o: &GraphOptions,
    mode: LineMode,
    drawn: &[Drawn],
    ymap: &YMap,
    plot: Rect,
) -> Result<(), String> {
    let lw = o.line_width;
    let zero = ymap.y(0.0);
    // Filled series first, last to first, so an earlier area stays on top
    // where two overlap (graphite clips each fill to what is not yet
    // covered; for stacked bands the order does not matter).
    for d in drawn.iter().rev().filter(|d| d.filled) {
        let color = d.color.with_default_alpha(o.area_alpha.unwrap_or(1.0));
        let tops = pieces(&d.values, &d.cols, mode, o.connected_limit, ymap);
        let bottoms = d.below.as_ref().map(|below| {
            let masked: Vec<f64> = d
                .values
                .iter()
                .zip(below)
                .map(|(v, b)| if v.is_nan() { f64::NAN } else { *b })
                .collect();
            pieces(&masked, &d.cols, mode, o.connected_limit, ymap)
        });
        for (k, top) in tops.iter().enumerate() {
            let mut poly = top.clone();
            match bottoms.as_ref().and_then(|b| b.get(k)) {
                Some(bottom) => poly.extend(bottom.iter().rev()),
                None => {
                    let (first, last) = (top[0].0, top[top.len() - 1].0);
                    poly.push((last, zero));
                    poly.push((first, zero));
                }
            }
            c.polygon(&clip_polygon(&poly, plot), color)?;
        }
    }
    // Then the lines: every series not filled, and the filled ones again
    // as lines when areaAlpha made their fill see-through.
    for d in drawn {
        if d.filled && o.area_alpha.is_none() {
            continue;
        }
        let color = d.color.opaque();
        if d.infinite {
            for (i, v) in d.values.iter().enumerate() {
                if *v > 0.0 {
                    let x = d.cols.x0 + i as f64 * d.cols.x_step;
                    if x >= plot.x0 && x <= plot.x1 {
                        c.line((x, plot.y1), (x, plot.y0), color, lw)?;
                    }
                }
            }
            continue;
        }
        for piece in pieces(&d.values, &d.cols, mode, o.connected_limit, ymap) {
            for part in clip_polyline(&piece, plot) {
                c.polyline(&part, color, lw)?;
            }
        }
    }
    Ok(())
}

/// Event markers: a vertical line per event in its tag's colour, its
/// `what` written beside the top, moved down a row when it would run into
/// the label before it.
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "the row count is clamped to 1..=4 right after the cast; the saturating \
              `as` (negative and NaN to 0) only feeds that clamp"
)]
fn draw_events<DB: DrawingBackend>(
    c: &mut Canvas<DB>,
    o: &GraphOptions,
    events: &[EventMark],
    (start, end): (i64, i64),
    x_scale: f64,
    plot: Rect,
) -> Result<(), String> {
    let em = (o.font_size * 0.9).max(1.0);
    let line = font::extents(em).height;
    let rows = (((plot.y1 - plot.y0) / line / 3.0).floor() as usize).clamp(1, 4);
    let mut row_end = vec![f64::NEG_INFINITY; rows];
    for e in events {
        if e.when < start || e.when > end {
            continue;
        }
        let x = plot.x0 + o.line_width / 2.0 + (e.when - start) as f64 * x_scale;
        if x < plot.x0 || x > plot.x1 {
            continue;
        }
        let color = e.color.opaque();
        c.line((x, plot.y1), (x, plot.y0), color, o.line_width.max(1.0))?;
        let text = font::fit(&e.what, em, (plot.x1 - plot.x0) / 2.0);
        let tw = font::width(&text, em);
        // Right of the line if it fits, else left of it.
        let (x0, align, tx) = if x + 3.0 + tw <= plot.x1 {
            (x + 3.0, Align::Left, x + 3.0)
        } else {
            (x - 3.0 - tw, Align::Right, x - 3.0)
        };
        if let Some(r) = (0..rows).find(|r| row_end[*r] + 4.0 <= x0) {
            row_end[r] = x0 + tw;
            let y = plot.y0 + 2.0 + r as f64 * line;
            c.text(&text, tx, y, em, color, align, VAlign::Top, false)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ymap() -> YMap {
        YMap {
            lowest: 0.0,
            span: 10.0,
            ymin: 0.0,
            ymax: 100.0,
        }
    }

    fn cols(n: usize) -> Columns {
        Columns {
            values: vec![0.0; n],
            x0: 0.0,
            x_step: 10.0,
        }
    }

    #[test]
    fn a_gap_breaks_the_line_after_a_flat_tail() {
        let nan = f64::NAN;
        let v = [1.0, 2.0, nan, nan, 5.0, 6.0];
        let p = pieces(&v, &cols(6), LineMode::Slope, None, &ymap());
        assert_eq!(p.len(), 2);
        // 1 → 2, then flat into the first missing slot.
        assert_eq!(p[0], vec![(0.0, 90.0), (10.0, 80.0), (20.0, 80.0)]);
        assert_eq!(p[1], vec![(40.0, 50.0), (50.0, 40.0)]);
        // Connected bridges the gap; a limit of 1 does not.
        let p = pieces(&v, &cols(6), LineMode::Connected, None, &ymap());
        assert_eq!(p.len(), 1);
        let p = pieces(&v, &cols(6), LineMode::Connected, Some(1), &ymap());
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn staircase_holds_each_value_for_its_step() {
        let p = pieces(&[1.0, 2.0], &cols(2), LineMode::Staircase, None, &ymap());
        assert_eq!(
            p,
            vec![vec![(0.0, 90.0), (10.0, 90.0), (10.0, 80.0), (20.0, 80.0)]]
        );
    }

    #[test]
    fn leading_nulls_draw_nothing() {
        let nan = f64::NAN;
        let p = pieces(
            &[nan, nan, 3.0, 4.0],
            &cols(4),
            LineMode::Slope,
            None,
            &ymap(),
        );
        assert_eq!(p, vec![vec![(20.0, 70.0), (30.0, 60.0)]]);
    }

    #[test]
    fn labels_thin_out_until_they_fit() {
        font::register().unwrap();
        let labels: Vec<(f64, String)> = (0..10)
            .map(|i| (50.0 + f64::from(i) * 20.0, format!("{i:02}:00")))
            .collect();
        let kept = spaced(&labels, 10.0, 400.0);
        assert!(kept.len() < 10 && kept.len() >= 3, "{kept:?}");
        for w in kept.windows(2) {
            assert!(
                w[1].0 - w[0].0 >= font::width("00:00", 10.0) + 8.0,
                "{kept:?}"
            );
        }
    }
}
