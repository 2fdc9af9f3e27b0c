//! Drawing primitives on a plotters backend, in graphite's terms: text
//! placed by cairo-style alignment, lines clipped to the plot area, faint
//! sub-pixel grid lines. Works the same on the bitmap and the SVG backend;
//! the two only differ in where plotters puts a text's baseline.

use plotters::prelude::DrawingBackend;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontDesc, FontFamily, FontStyle, FontTransform, RGBAColor, ShapeStyle};

use super::font;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Center,
    Right,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VAlign {
    Top,
    Middle,
    Bottom,
    Baseline,
}

/// A rectangle: x0 < x1, y0 < y1, y down.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x0: f64,
    pub y0: f64,
    pub x1: f64,
    pub y1: f64,
}

pub struct Canvas<DB: DrawingBackend> {
    db: DB,
    svg: bool,
}

type Out = Result<(), String>;

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("drawing failed: {e:?}")
}

/// A pixel; coordinates are bounded so that no stray value sends plotters'
/// rasterizer across millions of rows.
#[expect(
    clippy::cast_possible_truncation,
    reason = "clamped to ±100 000 (NaN to 0) first: fits i32"
)]
fn pt((x, y): (f64, f64)) -> (i32, i32) {
    let bound = |v: f64| {
        if v.is_nan() {
            0
        } else {
            v.clamp(-100_000.0, 100_000.0).round() as i32
        }
    };
    (bound(x), bound(y))
}

/// Plotters strokes whole pixels; graphite's thinner lines show as fainter
/// one-pixel lines.
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "widths are lineWidth (checked 0..=100 in options) or constants below 1, \
              and this cast is only for width >= 1: 1..=100"
)]
fn stroke(color: RGBAColor, width: f64) -> ShapeStyle {
    let RGBAColor(r, g, b, a) = color;
    let (w, a) = if width < 1.0 {
        (1, a * width.max(0.1))
    } else {
        (width.round() as u32, a)
    };
    ShapeStyle {
        color: RGBAColor(r, g, b, a),
        filled: false,
        stroke_width: w,
    }
}

impl<DB: DrawingBackend> Canvas<DB> {
    pub fn new(db: DB, svg: bool) -> Canvas<DB> {
        Canvas { db, svg }
    }

    pub fn finish(mut self) -> Out {
        self.db.present().map_err(err)
    }

    pub fn fill_rect(&mut self, r: Rect, color: RGBAColor) -> Out {
        let style = ShapeStyle {
            color,
            filled: true,
            stroke_width: 1,
        };
        self.db
            .draw_rect(pt((r.x0, r.y0)), pt((r.x1, r.y1)), &style, true)
            .map_err(err)
    }

    pub fn stroke_rect(&mut self, r: Rect, color: RGBAColor) -> Out {
        self.db
            .draw_rect(
                pt((r.x0, r.y0)),
                pt((r.x1, r.y1)),
                &stroke(color, 1.0),
                false,
            )
            .map_err(err)
    }

    pub fn line(&mut self, a: (f64, f64), b: (f64, f64), color: RGBAColor, width: f64) -> Out {
        self.db
            .draw_line(pt(a), pt(b), &stroke(color, width))
            .map_err(err)
    }

    /// One connected line; repeated pixels are dropped.
    pub fn polyline(&mut self, points: &[(f64, f64)], color: RGBAColor, width: f64) -> Out {
        let mut px: Vec<(i32, i32)> = Vec::with_capacity(points.len());
        for p in points {
            let p = pt(*p);
            if px.last() != Some(&p) {
                px.push(p);
            }
        }
        if px.len() == 1 {
            // A lone point still shows, as a dot.
            px.push(px[0]);
        }
        if px.is_empty() {
            return Ok(());
        }
        self.db.draw_path(px, &stroke(color, width)).map_err(err)
    }

    pub fn polygon(&mut self, points: &[(f64, f64)], color: RGBAColor) -> Out {
        if points.len() < 3 {
            return Ok(());
        }
        let style = ShapeStyle {
            color,
            filled: true,
            stroke_width: 1,
        };
        self.db
            .fill_polygon(points.iter().map(|p| pt(*p)), &style)
            .map_err(err)
    }

    /// Text as cairo places it for graphite: `(x, y)` is the anchor,
    /// `align` horizontal, `valign` vertical (top = the font's ascent).
    /// `upright` turns it to read bottom to top (a vertical title); then
    /// `valign` is measured along x.
    #[allow(clippy::too_many_arguments)]
    pub fn text(
        &mut self,
        text: &str,
        x: f64,
        y: f64,
        em: f64,
        color: RGBAColor,
        align: Align,
        valign: VAlign,
        upright: bool,
    ) -> Out {
        if text.is_empty() {
            return Ok(());
        }
        let e = font::extents(em);
        let to_baseline = match valign {
            VAlign::Top => e.ascent,
            VAlign::Middle => e.height / 2.0 - e.descent,
            VAlign::Bottom => -e.descent,
            VAlign::Baseline => 0.0,
        };
        if self.svg {
            // The viewer sets the text; plotters writes a top-anchored
            // <text> with dy = 0.76 of its CSS size, which is size / 1.24.
            let h = match align {
                Align::Left => HPos::Left,
                Align::Center => HPos::Center,
                Align::Right => HPos::Right,
            };
            let shift = 0.76 * em;
            let (pos, transform) = if upright {
                ((x + to_baseline - shift, y), FontTransform::Rotate270)
            } else {
                ((x, y + to_baseline - shift), FontTransform::None)
            };
            let style = FontDesc::new(FontFamily::SansSerif, em * 1.24, FontStyle::Normal)
                .transform(transform)
                .color(&color)
                .pos(Pos::new(h, VPos::Top));
            return self.db.draw_text(text, &style, pt(pos)).map_err(err);
        }
        // On the bitmap, glyph by glyph. plotters draws a glyph's raster
        // from its outline box's corner: the box's left edge at the anchor
        // (the bearing dropped) and its top at the anchor plus half the
        // pixel size plus the box top, truncated. Undo both so each glyph
        // sits at its pen position on one shared baseline.
        let size = em * font::PX_PER_EM;
        let total = font::width(text, em);
        let lead = match align {
            Align::Left => 0.0,
            Align::Center => total / 2.0,
            Align::Right => total,
        };
        let transform = if upright {
            FontTransform::Rotate270
        } else {
            FontTransform::None
        };
        let style = FontDesc::new(FontFamily::SansSerif, size, FontStyle::Normal)
            .transform(transform)
            .color(&color)
            .pos(Pos::new(HPos::Left, VPos::Top));
        let baseline = ((if upright { x } else { y }) + to_baseline).round();
        let mut buf = [0u8; 4];
        let mut pen = -lead;
        for ch in text.chars() {
            let advance = font::advance(ch, em);
            if !ch.is_whitespace() {
                let (left, top) = font::glyph_box(ch);
                let top_px = (-top * em).floor();
                let plotters_drop = (size / 2.0 + top_px).trunc();
                let across = baseline + top_px - plotters_drop;
                let along = pen + (left * em).floor();
                // `across` is whole already; `pt` rounds and bounds the rest.
                let pos = if upright {
                    pt((across, y - along))
                } else {
                    pt((x + along, across))
                };
                self.db
                    .draw_text(ch.encode_utf8(&mut buf), &style, pos)
                    .map_err(err)?;
            }
            pen += advance;
        }
        Ok(())
    }
}

/// The parts of a polyline inside `r` (each part one unbroken line).
pub fn clip_polyline(points: &[(f64, f64)], r: Rect) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut cur: Vec<(f64, f64)> = Vec::new();
    if points.len() == 1 {
        let (x, y) = points[0];
        if x >= r.x0 && x <= r.x1 && y >= r.y0 && y <= r.y1 {
            out.push(vec![points[0]]);
        }
        return out;
    }
    for w in points.windows(2) {
        match clip_segment(w[0], w[1], r) {
            Some((a, b)) => {
                if cur.last() != Some(&a) {
                    if !cur.is_empty() {
                        out.push(std::mem::take(&mut cur));
                    }
                    cur.push(a);
                }
                cur.push(b);
                if b != w[1] {
                    out.push(std::mem::take(&mut cur));
                }
            }
            None => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Liang–Barsky: the part of a segment inside `r`.
fn clip_segment(a: (f64, f64), b: (f64, f64), r: Rect) -> Option<((f64, f64), (f64, f64))> {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (p, q) in [
        (-dx, a.0 - r.x0),
        (dx, r.x1 - a.0),
        (-dy, a.1 - r.y0),
        (dy, r.y1 - a.1),
    ] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let t = q / p;
            if p < 0.0 {
                t0 = t0.max(t);
            } else {
                t1 = t1.min(t);
            }
            if t0 > t1 {
                return None;
            }
        }
    }
    let at = |t: f64| {
        if t == 0.0 {
            a
        } else if t == 1.0 {
            b
        } else {
            (a.0 + t * dx, a.1 + t * dy)
        }
    };
    Some((at(t0), at(t1)))
}

/// Sutherland–Hodgman: a polygon cut to `r`.
pub fn clip_polygon(points: &[(f64, f64)], r: Rect) -> Vec<(f64, f64)> {
    type Inside = fn((f64, f64), Rect) -> bool;
    type Cross = fn((f64, f64), (f64, f64), Rect) -> (f64, f64);
    let edges: [(Inside, Cross); 4] = [
        (
            |p, r| p.0 >= r.x0,
            |a, b, r| (r.x0, a.1 + (b.1 - a.1) * (r.x0 - a.0) / (b.0 - a.0)),
        ),
        (
            |p, r| p.0 <= r.x1,
            |a, b, r| (r.x1, a.1 + (b.1 - a.1) * (r.x1 - a.0) / (b.0 - a.0)),
        ),
        (
            |p, r| p.1 >= r.y0,
            |a, b, r| (a.0 + (b.0 - a.0) * (r.y0 - a.1) / (b.1 - a.1), r.y0),
        ),
        (
            |p, r| p.1 <= r.y1,
            |a, b, r| (a.0 + (b.0 - a.0) * (r.y1 - a.1) / (b.1 - a.1), r.y1),
        ),
    ];
    let mut poly = points.to_vec();
    for (inside, cross) in edges {
        if poly.is_empty() {
            break;
        }
        let input = std::mem::take(&mut poly);
        let mut prev = input[input.len() - 1];
        for p in input {
            match (inside(p, r), inside(prev, r)) {
                (true, true) => poly.push(p),
                (true, false) => {
                    poly.push(cross(prev, p, r));
                    poly.push(p);
                }
                (false, true) => poly.push(cross(prev, p, r)),
                (false, false) => {}
            }
            prev = p;
        }
    }
    poly
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: Rect = Rect {
        x0: 0.0,
        y0: 0.0,
        x1: 10.0,
        y1: 10.0,
    };

    #[test]
    fn a_line_leaving_and_coming_back_is_two_lines() {
        let parts = clip_polyline(&[(0.0, 5.0), (2.0, 15.0), (4.0, 5.0), (6.0, 5.0)], R);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], vec![(0.0, 5.0), (1.0, 10.0)]);
        assert_eq!(parts[1], vec![(3.0, 10.0), (4.0, 5.0), (6.0, 5.0)]);
        assert!(clip_polyline(&[(0.0, -5.0), (10.0, -1.0)], R).is_empty());
    }

    #[test]
    fn polygons_are_cut_at_the_edges() {
        let p = clip_polygon(&[(2.0, 5.0), (8.0, 5.0), (8.0, 20.0), (2.0, 20.0)], R);
        let ys: Vec<f64> = p.iter().map(|q| q.1).collect();
        assert!(ys.iter().all(|y| *y <= 10.0), "{p:?}");
        assert!(
            p.contains(&(8.0, 10.0)) && p.contains(&(2.0, 10.0)),
            "{p:?}"
        );
    }
}
