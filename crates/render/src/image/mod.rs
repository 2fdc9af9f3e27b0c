//! `format=png` and `format=svg`: a series list drawn as graphite-web
//! draws a line graph (glyph.py's LineGraph), with plotters doing the
//! drawing.
//!
//! - [`options`] reads and checks the image params;
//! - [`graph`] lays the graph out and draws it, with [`ticks`] for the
//!   value axis, [`timeaxis`] for the time axis, [`legend`] for the
//!   legend and [`consolidate`] merging points to pixel columns;
//! - [`canvas`] is the drawing surface over a plotters backend, [`font`]
//!   the built-in typeface, [`color`] graphite's colour names, [`png`] the
//!   in-memory PNG encoding.

pub mod canvas;
pub mod color;
pub mod consolidate;
pub mod font;
pub mod graph;
pub mod legend;
pub mod options;
pub mod png;
pub mod ticks;
pub mod timeaxis;

use chrono_tz::Tz;
use plotters::prelude::{BitMapBackend, SVGBackend};

use canvas::Canvas;
use color::Color;
pub use options::GraphOptions;
use rollupd_events::store::Event;
use rollupd_query::series::Series;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Png,
    Svg,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Png => "image/png",
            Format::Svg => "image/svg+xml",
        }
    }
}

/// An event to mark on the graph.
#[derive(Debug, Clone, PartialEq)]
pub struct EventMark {
    pub when: i64,
    pub what: String,
    pub color: Color,
}

/// How many groups of events one graph marks, each in its own colour.
pub const EVENT_COLORS: usize = color::EVENT_LIST.len();

/// Events as markers, one colour per group (one group per `events=`
/// value, in request order); an event in several groups is marked once,
/// in the colour of the first.
pub fn event_marks(groups: &[Vec<Event>]) -> Vec<EventMark> {
    let mut seen = std::collections::HashSet::new();
    let mut marks = Vec::new();
    for (k, events) in groups.iter().enumerate() {
        for e in events.iter().filter(|e| seen.insert(e.id)) {
            marks.push(EventMark {
                when: e.when,
                what: e.what.clone(),
                color: color::EVENT_LIST[k % color::EVENT_LIST.len()],
            });
        }
    }
    marks.sort_by_key(|m| m.when);
    marks
}

/// Whether a series carries graphite's `drawAsInfinite` option.
///
/// The hook for the query layer: `Series` has no per-series drawing
/// options yet; once it has (graphite keeps them in `series.options`),
/// this is the one place that reads them.
pub fn draws_as_infinite(s: &Series) -> bool {
    s.draw_as_infinite
}

/// Draws `series` (and `events`) as one image.
pub fn render(
    series: &[Series],
    events: &[EventMark],
    o: &GraphOptions,
    tz: &Tz,
    format: Format,
) -> Result<Vec<u8>, String> {
    let plots: Vec<graph::Plot<'_>> = series
        .iter()
        .map(|s| graph::Plot {
            series: s,
            infinite: draws_as_infinite(s),
        })
        .collect();
    render_plots(&plots, events, o, tz, format)
}

/// [`render`] with each series' drawing options given.
pub fn render_plots(
    plots: &[graph::Plot<'_>],
    events: &[EventMark],
    o: &GraphOptions,
    tz: &Tz,
    format: Format,
) -> Result<Vec<u8>, String> {
    font::register()?;
    let size = (o.width, o.height);
    match format {
        Format::Png => {
            let mut buf = vec![0u8; o.width as usize * o.height as usize * 3];
            {
                let mut c = Canvas::new(BitMapBackend::with_buffer(&mut buf, size), false);
                graph::draw(&mut c, o, tz, plots, events)?;
                c.finish()?;
            }
            png::encode_rgb(o.width, o.height, &buf).map_err(|e| format!("png: {e}"))
        }
        Format::Svg => {
            let mut svg = String::new();
            {
                let mut c = Canvas::new(SVGBackend::with_string(&mut svg, size), true);
                graph::draw(&mut c, o, tz, plots, events)?;
                c.finish()?;
            }
            Ok(svg.into_bytes())
        }
    }
}

#[cfg(test)]
mod tests;
