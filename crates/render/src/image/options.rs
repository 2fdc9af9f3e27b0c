//! The image params of `/render` (graphite-web's LineGraph options), read
//! and checked up front: a value that is not what the param takes is an
//! error naming the param, never a silently different graph.

use super::color::{self, Color};
use super::ticks::{AxisMax, AxisSettings, UnitSystem};

/// Largest width or height served.
pub const MAX_SIDE: u32 = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AreaMode {
    None,
    First,
    All,
    Stacked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineMode {
    Slope,
    Staircase,
    Connected,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GraphOptions {
    pub width: u32,
    pub height: u32,
    pub margin: f64,
    pub title: String,
    pub vtitle: String,
    pub area_mode: AreaMode,
    pub area_alpha: Option<f64>,
    pub line_mode: LineMode,
    /// Gaps of more points than this break a `connected` line.
    pub connected_limit: Option<usize>,
    pub line_width: f64,
    /// `None`: hidden when there are more than ten series (graphite's
    /// LEGEND_MAX_ITEMS).
    pub hide_legend: Option<bool>,
    pub hide_axes: bool,
    pub hide_x_axis: bool,
    pub hide_y_axis: bool,
    pub hide_grid: bool,
    pub hide_null_from_legend: bool,
    pub unique_legend: bool,
    pub draw_null_as_zero: bool,
    pub graph_only: bool,
    pub background: Color,
    pub foreground: Color,
    pub major_grid: Color,
    pub minor_grid: Color,
    pub colors: Vec<Color>,
    pub font_size: f64,
    pub axis: AxisSettings,
    /// Minor grid lines between two labelled ones.
    pub minor_y: u32,
    pub x_format: Option<String>,
    pub min_x_step: f64,
}

impl Default for GraphOptions {
    fn default() -> Self {
        GraphOptions {
            width: 330,
            height: 250,
            margin: 10.0,
            title: String::new(),
            vtitle: String::new(),
            area_mode: AreaMode::None,
            area_alpha: None,
            line_mode: LineMode::Slope,
            connected_limit: None,
            line_width: 1.2,
            hide_legend: None,
            hide_axes: false,
            hide_x_axis: false,
            hide_y_axis: false,
            hide_grid: false,
            hide_null_from_legend: false,
            unique_legend: false,
            draw_null_as_zero: false,
            graph_only: false,
            background: Color::rgb(0, 0, 0),
            foreground: Color::rgb(255, 255, 255),
            major_grid: Color::rgb(255, 255, 255),
            minor_grid: Color::rgb(175, 175, 175),
            colors: color::parse_list(color::DEFAULT_LIST).unwrap_or_default(),
            font_size: 10.0,
            axis: AxisSettings::default(),
            minor_y: 1,
            x_format: None,
            min_x_step: 1.0,
        }
    }
}

/// graphite-web's second unquoting of titles, colour lists and legend
/// names: `+` is a space and `%XX` a byte; a `%` not followed by two hex
/// digits stays as it is.
pub fn unquote_plus(s: &str) -> String {
    if !s.contains(['+', '%']) {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let byte = b
                    .get(i + 1..i + 3)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match byte {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl GraphOptions {
    /// Reads the params through `get` (the last value of a key). Values
    /// that are empty or `default` count as absent, as in graphite-web.
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "each number is finite (`number`) and checked before its cast: width and \
                  height 1..=MAX_SIDE and minorY 0..=100 (their integer parts are taken); \
                  connectedLimit only non-negative, where the saturating `as` is the \
                  intended reading: past usize::MAX is no limit"
    )]
    pub fn parse<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<GraphOptions, String> {
        let get = |k: &str| get(k).filter(|v| !v.is_empty() && !v.eq_ignore_ascii_case("default"));
        let mut o = GraphOptions::default();
        let number = |k: &str| -> Result<Option<f64>, String> {
            match get(k) {
                None => Ok(None),
                Some(v) => match v.trim().parse::<f64>() {
                    Ok(f) if f.is_finite() => Ok(Some(f)),
                    _ => Err(format!("{k} must be a number, not {v:?}")),
                },
            }
        };
        let flag = |k: &str| -> Result<Option<bool>, String> {
            match get(k) {
                None => Ok(None),
                Some(v) => match v.to_ascii_lowercase().as_str() {
                    "true" | "1" | "yes" | "on" => Ok(Some(true)),
                    "false" | "0" | "no" | "off" => Ok(Some(false)),
                    _ => Err(format!("{k} must be true or false, not {v:?}")),
                },
            }
        };
        let colour = |k: &str, dflt: Color| -> Result<Color, String> {
            match get(k) {
                None => Ok(dflt),
                Some(v) => color::parse(&unquote_plus(v))
                    .ok_or_else(|| format!("{k} {v:?} is not a colour name or hex rrggbb[aa]")),
            }
        };
        let side = |k: &str, dflt: u32| -> Result<u32, String> {
            match number(k)? {
                None => Ok(dflt),
                Some(f) if f >= 1.0 && f <= f64::from(MAX_SIDE) => Ok(f as u32),
                Some(_) => Err(format!(
                    "{k} must be from 1 to {MAX_SIDE} pixels, not {:?}",
                    get(k).unwrap_or_default()
                )),
            }
        };
        o.width = side("width", o.width)?;
        o.height = side("height", o.height)?;
        if let Some(m) = number("margin")? {
            o.margin = if m < 0.0 { 10.0 } else { m.min(1000.0) };
        }
        o.title = get("title").map(unquote_plus).unwrap_or_default();
        o.vtitle = get("vtitle").map(unquote_plus).unwrap_or_default();
        if let Some(v) = get("areaMode") {
            o.area_mode = match v.to_ascii_lowercase().as_str() {
                "none" => AreaMode::None,
                "first" => AreaMode::First,
                "all" => AreaMode::All,
                "stacked" => AreaMode::Stacked,
                _ => {
                    return Err(format!(
                        "areaMode {v:?} is not one of none, first, all, stacked"
                    ))
                }
            };
        }
        if let Some(a) = number("areaAlpha")? {
            if !(0.0..=1.0).contains(&a) {
                return Err(format!("areaAlpha must be from 0 to 1, not {a}"));
            }
            o.area_alpha = Some(a);
        }
        if let Some(v) = get("lineMode") {
            o.line_mode = match v.to_ascii_lowercase().as_str() {
                "slope" => LineMode::Slope,
                "staircase" => LineMode::Staircase,
                "connected" => LineMode::Connected,
                _ => {
                    return Err(format!(
                        "lineMode {v:?} is not one of slope, staircase, connected"
                    ))
                }
            };
        }
        if let Some(c) = number("connectedLimit")? {
            if c < 0.0 {
                return Err(format!("connectedLimit must not be negative, not {c}"));
            }
            o.connected_limit = Some(c as usize);
        }
        let width_key = if get("lineWidth").is_some() {
            "lineWidth"
        } else {
            "thickness"
        };
        if let Some(w) = number(width_key)? {
            if !(0.0..=100.0).contains(&w) {
                return Err(format!("{width_key} must be from 0 to 100, not {w}"));
            }
            o.line_width = w;
        }
        o.hide_legend = flag("hideLegend")?;
        o.hide_axes = flag("hideAxes")?.unwrap_or(false);
        o.hide_x_axis = flag("hideXAxis")?.unwrap_or(false);
        o.hide_y_axis = flag("hideYAxis")?.unwrap_or(false);
        o.hide_grid = flag("hideGrid")?.unwrap_or(false);
        o.hide_null_from_legend = flag("hideNullFromLegend")?.unwrap_or(false);
        o.unique_legend = flag("uniqueLegend")?.unwrap_or(false);
        o.draw_null_as_zero = flag("drawNullAsZero")?.unwrap_or(false);
        o.graph_only = flag("graphOnly")?.unwrap_or(false);
        o.background = colour("bgcolor", o.background)?;
        o.foreground = colour("fgcolor", o.foreground)?;
        o.major_grid = colour("majorGridLineColor", o.major_grid)?;
        o.minor_grid = colour("minorGridLineColor", o.minor_grid)?;
        if let Some(list) = get("colorList") {
            o.colors = color::parse_list(&unquote_plus(list))
                .map_err(|bad| format!("colorList entry {bad:?} is not a colour"))?;
        }
        if let Some(f) = number("fontSize")? {
            if !(1.0..=200.0).contains(&f) {
                return Err(format!("fontSize must be from 1 to 200, not {f}"));
            }
            // graphite takes the integer part.
            o.font_size = f.trunc();
        }
        o.axis.min = match number("yMin")? {
            Some(v) => Some(v),
            None => number("min")?,
        };
        let max_key = if get("yMax").is_some() { "yMax" } else { "max" };
        o.axis.max = match get(max_key) {
            None => AxisMax::Auto,
            Some("max") => AxisMax::Extremum,
            Some(_) => AxisMax::Value(number(max_key)?.unwrap_or(0.0)),
        };
        if let (Some(lo), AxisMax::Value(hi)) = (o.axis.min, o.axis.max) {
            if lo >= hi {
                return Err(format!("yMin ({lo}) must be less than yMax ({hi})"));
            }
        }
        o.axis.limit = number("yLimit")?;
        if let Some(s) = number("yStep")? {
            if s <= 0.0 {
                return Err(format!("yStep must be positive, not {s}"));
            }
            o.axis.step = Some(s);
        }
        if let Some(v) = get("yDivisors") {
            o.axis.divisors = v
                .split(',')
                .map(|d| {
                    d.trim()
                        .parse::<u32>()
                        .ok()
                        .filter(|d| (1..=100).contains(d))
                })
                .collect::<Option<Vec<u32>>>()
                .ok_or_else(|| {
                    format!("yDivisors must be whole numbers from 1 to 100, not {v:?}")
                })?;
        }
        if let Some(v) = get("yUnitSystem") {
            o.axis.units = UnitSystem::parse(v).ok_or_else(|| {
                format!("yUnitSystem {v:?} is not one of si, binary, sec, msec, none")
            })?;
        }
        if let Some(m) = number("minorY")? {
            if !(0.0..=100.0).contains(&m) {
                return Err(format!("minorY must be from 0 to 100, not {m}"));
            }
            o.minor_y = m as u32;
        }
        if let Some(f) = get("xFormat") {
            if !super::timeaxis::valid_format(f) {
                return Err(format!("xFormat {f:?} is not a strftime format"));
            }
            o.x_format = Some(f.to_string());
        }
        if let Some(m) = number("minXStep")? {
            if m <= 0.0 {
                return Err(format!("minXStep must be positive, not {m}"));
            }
            o.min_x_step = m;
        }
        if o.graph_only {
            o.hide_legend = Some(true);
            o.hide_grid = true;
            o.hide_axes = true;
            o.title.clear();
            o.vtitle.clear();
            o.margin = 0.0;
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &[(&str, &str)]) -> Result<GraphOptions, String> {
        GraphOptions::parse(|k| q.iter().rev().find(|(key, _)| *key == k).map(|(_, v)| *v))
    }

    #[test]
    fn defaults_are_graphites() {
        let o = parse(&[]).unwrap();
        assert_eq!((o.width, o.height), (330, 250));
        assert_eq!(o.background, Color::rgb(0, 0, 0));
        assert_eq!(o.foreground, Color::rgb(255, 255, 255));
        assert_eq!(o.colors[0], Color::rgb(100, 100, 255));
        assert_eq!(o.colors.len(), 12);
        assert_eq!(o.line_width, 1.2);
        assert_eq!(o.hide_legend, None);
    }

    #[test]
    fn values_are_read() {
        let o = parse(&[
            ("width", "800"),
            ("height", "400.7"),
            ("areaMode", "Stacked"),
            ("lineMode", "staircase"),
            ("bgcolor", "#ffffff"),
            ("colorList", "red,00ff0080"),
            ("yMin", "0"),
            ("yMax", "max"),
            ("hideLegend", "false"),
            ("title", "CPU+%28all%29"),
            ("fontSize", "12.5"),
        ])
        .unwrap();
        assert_eq!((o.width, o.height), (800, 400));
        assert_eq!(o.area_mode, AreaMode::Stacked);
        assert_eq!(o.line_mode, LineMode::Staircase);
        assert_eq!(o.background, Color::rgb(255, 255, 255));
        assert_eq!(o.colors.len(), 2);
        assert_eq!(o.axis.min, Some(0.0));
        assert_eq!(o.axis.max, AxisMax::Extremum);
        assert_eq!(o.hide_legend, Some(false));
        assert_eq!(o.title, "CPU (all)");
        assert_eq!(o.font_size, 12.0);
        // Empty and "default" mean the default.
        let o = parse(&[("width", ""), ("areaMode", "default")]).unwrap();
        assert_eq!((o.width, o.area_mode), (330, AreaMode::None));
    }

    #[test]
    fn mistakes_name_the_param() {
        for (k, v) in [
            ("areaMode", "bogus"),
            ("lineMode", "curvy"),
            ("width", "5000"),
            ("height", "0"),
            ("width", "wide"),
            ("bgcolor", "blurple"),
            ("colorList", "red,nope"),
            ("hideLegend", "maybe"),
            ("yUnitSystem", "furlongs"),
            ("fontSize", "0"),
            ("xFormat", "%Q"),
            ("yStep", "-1"),
        ] {
            let e = parse(&[(k, v)]).unwrap_err();
            assert!(e.contains(k), "{k}={v}: {e}");
        }
        let e = parse(&[("yMin", "10"), ("yMax", "5")]).unwrap_err();
        assert!(e.contains("yMin"), "{e}");
    }

    #[test]
    fn graph_only_strips_everything() {
        let o = parse(&[("graphOnly", "true"), ("title", "x")]).unwrap();
        assert!(o.hide_axes && o.hide_grid && o.hide_legend == Some(true));
        assert_eq!((o.title.as_str(), o.margin), ("", 0.0));
    }

    #[test]
    fn unquoting_is_lenient() {
        assert_eq!(unquote_plus("a+b%2Cc"), "a b,c");
        assert_eq!(unquote_plus("50%"), "50%");
        assert_eq!(unquote_plus("5%zz"), "5%zz");
    }
}
