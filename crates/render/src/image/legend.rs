//! The legend under the plot: a colour box and a name per series (and per
//! event), in as many equal columns as the widest name allows, as
//! graphite-web lays it out. Names too wide for the image are shortened.

use plotters::prelude::DrawingBackend;
use plotters::style::RGBAColor;

use super::canvas::{Align, Canvas, Rect, VAlign};
use super::color::Color;
use super::font;

/// graphite's legend series cap (`LEGEND_MAX_ITEMS`): more series hide
/// the legend unless `hideLegend=false` asks for it.
pub const MAX_ITEMS: usize = 10;

const PADDING: f64 = 5.0;

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub name: String,
    pub color: Color,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Legend {
    pub entries: Vec<Entry>,
    box_size: f64,
    line_height: f64,
    label_width: f64,
    pub columns: usize,
    pub lines: usize,
    /// Room it takes off the bottom of the plot.
    pub height: f64,
    em: f64,
}

/// Lays out `entries` for a legend starting at `left` in an image
/// `width` wide; `unique` drops repeated names (`uniqueLegend`).
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "room and label_width are positive, so the column count is a whole \
              number >= 0 (then at least 1); the saturating `as` is the intended \
              reading of more columns than usize holds: all entries on one line"
)]
pub fn layout(mut entries: Vec<Entry>, unique: bool, em: f64, left: f64, width: f64) -> Legend {
    if unique {
        let mut seen = std::collections::HashSet::new();
        entries.retain(|e| seen.insert(e.name.clone()));
    }
    let e = font::extents(em);
    let box_size = e.height - 1.0;
    let line_height = e.height + 1.0;
    let room = (width - left - PADDING).max(1.0);
    let name_room = (room - box_size - 2.0 * PADDING).max(em);
    for entry in &mut entries {
        entry.name = font::fit(&entry.name, em, name_room);
    }
    // The longest name by characters sets the column width (graphite's
    // rule), measured as drawn.
    let longest = entries
        .iter()
        .map(|e| &e.name)
        .max_by_key(|n| n.chars().count())
        .map_or(0.0, |n| font::width(n, em));
    let label_width = longest + 2.0 * (box_size + PADDING);
    // The last column needs no trailing gap.
    let columns = (((room + PADDING + box_size) / label_width).floor() as usize).max(1);
    let lines = entries.len().div_ceil(columns);
    Legend {
        height: lines as f64 * line_height + PADDING,
        entries,
        box_size,
        line_height,
        label_width,
        columns,
        lines,
        em,
    }
}

impl Legend {
    /// Draws it with its first line's top at `left`, `bottom_of_plot` +
    /// 2 × padding.
    pub fn draw<DB: DrawingBackend>(
        &self,
        c: &mut Canvas<DB>,
        left: f64,
        bottom_of_plot: f64,
        fg: RGBAColor,
    ) -> Result<(), String> {
        let border = RGBAColor(111, 111, 111, 1.0);
        let mut x = left;
        let mut y = bottom_of_plot + 2.0 * PADDING;
        for (i, e) in self.entries.iter().enumerate() {
            let b = Rect {
                x0: x,
                y0: y,
                x1: x + self.box_size,
                y1: y + self.box_size,
            };
            c.fill_rect(b, e.color.opaque())?;
            c.stroke_rect(b, border)?;
            c.text(
                &e.name,
                x + self.box_size + PADDING,
                y,
                self.em,
                fg,
                Align::Left,
                VAlign::Top,
                false,
            )?;
            x += self.label_width;
            if (i + 1) % self.columns == 0 {
                x = left;
                y += self.line_height;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(names: &[&str]) -> Vec<Entry> {
        names
            .iter()
            .map(|n| Entry {
                name: n.to_string(),
                color: Color::rgb(1, 2, 3),
            })
            .collect()
    }

    #[test]
    fn columns_follow_the_longest_name() {
        font::register().unwrap();
        let l = layout(entries(&["a", "b", "c", "d"]), false, 10.0, 20.0, 330.0);
        assert!(l.columns >= 4, "{l:?}");
        assert_eq!(l.lines, 1);
        let wide = "servers.web1.cpu.user.something.long";
        let l = layout(entries(&[wide, "b", "c"]), false, 10.0, 20.0, 330.0);
        assert_eq!((l.columns, l.lines), (1, 3));
        let e = font::extents(10.0);
        assert!((l.height - (3.0 * (e.height + 1.0) + 5.0)).abs() < 1e-9);
    }

    #[test]
    fn unique_drops_repeats_and_long_names_are_cut() {
        font::register().unwrap();
        let l = layout(entries(&["x", "y", "x"]), true, 10.0, 20.0, 330.0);
        assert_eq!(l.entries.len(), 2);
        let long = "n".repeat(200);
        let l = layout(entries(&[&long]), false, 10.0, 20.0, 200.0);
        assert!(l.entries[0].name.ends_with('…'));
        assert!(font::width(&l.entries[0].name, 10.0) < 200.0);
    }
}
