//! Colours as graphite-web's image params name them: its aliases
//! (`blue` is (100,100,255), not CSS blue), `rrggbb`, `#rrggbb`, `%23rrggbb`
//! and `rrggbbaa` with an alpha byte.

use plotters::style::RGBAColor;

/// One colour; `alpha` is `None` unless the param spelled it out, so a
/// caller can apply its own default (graphite's `areaAlpha`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Color {
    pub r: u8,
    pub g: u8,
    pub b: u8,
    pub alpha: Option<f64>,
}

impl Color {
    pub const fn rgb(r: u8, g: u8, b: u8) -> Color {
        Color {
            r,
            g,
            b,
            alpha: None,
        }
    }

    /// The colour with the alpha it names, or `default` when it names none.
    pub fn with_default_alpha(self, default: f64) -> RGBAColor {
        RGBAColor(self.r, self.g, self.b, self.alpha.unwrap_or(default))
    }

    pub fn opaque(self) -> RGBAColor {
        self.with_default_alpha(1.0)
    }
}

/// graphite-web's colour aliases (glyph.py `colorAliases`).
const ALIASES: &[(&str, (u8, u8, u8))] = &[
    ("black", (0, 0, 0)),
    ("white", (255, 255, 255)),
    ("blue", (100, 100, 255)),
    ("green", (0, 200, 0)),
    ("red", (200, 0, 50)),
    ("yellow", (255, 255, 0)),
    ("orange", (255, 165, 0)),
    ("purple", (200, 100, 255)),
    ("brown", (150, 100, 50)),
    ("cyan", (0, 255, 255)),
    ("aqua", (0, 150, 150)),
    ("gray", (175, 175, 175)),
    ("grey", (175, 175, 175)),
    ("magenta", (255, 0, 255)),
    ("pink", (255, 100, 100)),
    ("gold", (200, 200, 0)),
    ("rose", (200, 150, 200)),
    ("darkblue", (0, 0, 255)),
    ("darkgreen", (0, 255, 0)),
    ("darkred", (255, 0, 0)),
    ("darkgray", (111, 111, 111)),
    ("darkgrey", (111, 111, 111)),
];

/// graphite-web's default line colours, in order.
pub const DEFAULT_LIST: &str =
    "blue,green,red,purple,brown,yellow,aqua,grey,magenta,pink,gold,rose";

/// Colours for event lines, one per `events=` value, picked so they stand
/// apart from the default series colours.
pub const EVENT_LIST: &[Color] = &[
    Color::rgb(255, 165, 0),   // orange
    Color::rgb(0, 255, 255),   // cyan
    Color::rgb(255, 0, 255),   // magenta
    Color::rgb(255, 255, 255), // white
    Color::rgb(255, 0, 0),     // darkred
    Color::rgb(0, 255, 0),     // darkgreen
];

/// Parses one colour: an alias, or 6 or 8 hex digits after an optional
/// `#` or `%23`.
pub fn parse(text: &str) -> Option<Color> {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    if let Some((_, (r, g, b))) = ALIASES.iter().find(|(n, _)| *n == lower) {
        return Some(Color::rgb(*r, *g, *b));
    }
    let hex = lower
        .strip_prefix('#')
        .or_else(|| lower.strip_prefix("%23"))
        .unwrap_or(&lower);
    if !(hex.len() == 6 || hex.len() == 8) || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
    Some(Color {
        r: byte(0)?,
        g: byte(2)?,
        b: byte(4)?,
        alpha: if hex.len() == 8 {
            Some(f64::from(byte(6)?) / 255.0)
        } else {
            None
        },
    })
}

/// Parses a comma-separated list (`colorList`); `Err` carries the entry
/// that is not a colour.
pub fn parse_list(text: &str) -> Result<Vec<Color>, String> {
    let list: Vec<Color> = text
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| parse(c).ok_or_else(|| c.to_string()))
        .collect::<Result<_, _>>()?;
    if list.is_empty() {
        return Err(text.to_string());
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_are_graphites_not_css() {
        assert_eq!(parse("blue"), Some(Color::rgb(100, 100, 255)));
        assert_eq!(parse("Red"), Some(Color::rgb(200, 0, 50)));
        assert_eq!(parse("darkgrey"), Some(Color::rgb(111, 111, 111)));
    }

    #[test]
    fn hex_with_and_without_alpha() {
        assert_eq!(parse("ff0000"), Some(Color::rgb(255, 0, 0)));
        assert_eq!(parse("#00FF00"), Some(Color::rgb(0, 255, 0)));
        assert_eq!(parse("%230000ff"), Some(Color::rgb(0, 0, 255)));
        let c = parse("ff000080").unwrap();
        assert_eq!((c.r, c.g, c.b), (255, 0, 0));
        assert!((c.alpha.unwrap() - 128.0 / 255.0).abs() < 1e-12);
        assert_eq!(parse("fff"), None);
        assert_eq!(parse("gg0000"), None);
        assert_eq!(parse("notacolour"), None);
    }

    #[test]
    fn lists_name_the_bad_entry() {
        assert_eq!(parse_list(DEFAULT_LIST).unwrap().len(), 12);
        assert_eq!(parse_list("red, 00ff00").unwrap()[1], Color::rgb(0, 255, 0));
        assert_eq!(parse_list("red,bogus"), Err("bogus".to_string()));
        assert!(parse_list(",").is_err());
    }
}
