//! The one typeface images use: DejaVu Sans, built into the binary and
//! registered with plotters, so a graph looks the same on a machine with no
//! fonts installed. Sizes here are em sizes in pixels, as graphite's
//! `fontSize` is.

use std::sync::OnceLock;

use plotters::style::FontStyle;

static DEJAVU_SANS: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// DejaVu Sans' vertical metrics (hhea, 2048 units per em).
const UNITS_PER_EM: f64 = 2048.0;
const ASCENT: f64 = 1901.0 / UNITS_PER_EM;
const DESCENT: f64 = 483.0 / UNITS_PER_EM;

/// ab_glyph (so plotters) scales a font by ascent + descent, not by em.
pub const PX_PER_EM: f64 = ASCENT + DESCENT;

/// Registers the font under the generic name, once; every later call
/// returns the first outcome.
pub fn register() -> Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, DEJAVU_SANS)
            .map_err(|_| "the built-in font does not load".to_string())
    })
    .clone()
}

/// Cairo's font extents for an em size, hinted to whole pixels as
/// FreeType hints them (ascent and descent rounded out, height rounded):
/// what graphite lays out with.
#[derive(Debug, Clone, Copy)]
pub struct Extents {
    pub ascent: f64,
    pub descent: f64,
    /// Line height.
    pub height: f64,
}

pub fn extents(em: f64) -> Extents {
    Extents {
        ascent: (ASCENT * em).ceil(),
        descent: (DESCENT * em).ceil(),
        height: ((ASCENT + DESCENT) * em).round(),
    }
}

/// The pen advance of `c` at an em size, hinted to whole pixels (as
/// cairo's text, which graphite draws with, advances; no kerning).
pub fn advance(c: char, em: f64) -> f64 {
    let units = tables().map_or(1229, |t| t.advance(c));
    (f64::from(units) * em / UNITS_PER_EM).round()
}

/// Width of `text` at an em size: its advances summed.
pub fn width(text: &str, em: f64) -> f64 {
    text.chars().map(|c| advance(c, em)).sum()
}

fn tables() -> Option<&'static Tables> {
    static TABLES: OnceLock<Option<Tables>> = OnceLock::new();
    TABLES.get_or_init(|| Tables::parse(DEJAVU_SANS)).as_ref()
}

/// `text` cut (with an ellipsis) to fit `max` pixels.
pub fn fit(text: &str, em: f64, max: f64) -> String {
    if width(text, em) <= max {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    let (mut lo, mut hi) = (0, chars.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        let s: String = chars[..mid].iter().chain(['…'].iter()).collect();
        if width(&s, em) <= max {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    chars[..lo].iter().chain(['…'].iter()).collect()
}

/// Where `c`'s outline starts, in ems: its left edge after the pen and
/// its top above the baseline (the glyph's bounding box). plotters'
/// bitmap text places each glyph by its outline's box and rounds that
/// differently per glyph, so the canvas places glyphs itself from these.
pub fn glyph_box(c: char) -> (f64, f64) {
    tables()
        .and_then(|t| t.glyph_box(c))
        .map_or((0.0, ASCENT), |(x, y)| {
            (f64::from(x) / UNITS_PER_EM, f64::from(y) / UNITS_PER_EM)
        })
}

/// The tables of the font file that metrics need: `cmap` (its format 4
/// subtable: characters to glyphs), `hmtx` (advances), `loca` and `glyf`
/// (outline boxes).
struct Tables {
    cmap4: &'static [u8],
    hmtx: &'static [u8],
    long_metrics: usize,
    loca: &'static [u8],
    long_loca: bool,
    glyf: &'static [u8],
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

impl Tables {
    fn parse(f: &'static [u8]) -> Option<Tables> {
        let table = |tag: &[u8; 4]| -> Option<&'static [u8]> {
            let n = usize::from(be16(f, 4)?);
            (0..n).find_map(|i| {
                let rec = 12 + 16 * i;
                if f.get(rec..rec + 4)? != tag {
                    return None;
                }
                let off = be32(f, rec + 8)? as usize;
                let len = be32(f, rec + 12)? as usize;
                f.get(off..off + len)
            })
        };
        let cmap = table(b"cmap")?;
        let cmap4 = (0..usize::from(be16(cmap, 2)?)).find_map(|i| {
            let off = be32(cmap, 4 + 8 * i + 4)? as usize;
            let sub = cmap.get(off..)?;
            (be16(sub, 0)? == 4).then_some(sub)
        })?;
        Some(Tables {
            cmap4,
            hmtx: table(b"hmtx")?,
            long_metrics: usize::from(be16(table(b"hhea")?, 34)?),
            loca: table(b"loca")?,
            long_loca: be16(table(b"head")?, 50)? == 1,
            glyf: table(b"glyf")?,
        })
    }

    fn glyph(&self, c: char) -> Option<u16> {
        let c = u16::try_from(u32::from(c)).ok()?;
        let t = self.cmap4;
        let segs = usize::from(be16(t, 6)? / 2);
        let ends = 14;
        let starts = ends + 2 * segs + 2;
        let deltas = starts + 2 * segs;
        let ranges = deltas + 2 * segs;
        // The first segment whose end is at or past c.
        let (mut lo, mut hi) = (0, segs);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if be16(t, ends + 2 * mid)? < c {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let i = lo;
        if i >= segs || be16(t, starts + 2 * i)? > c {
            return None;
        }
        let start = be16(t, starts + 2 * i)?;
        let delta = be16(t, deltas + 2 * i)?;
        let range = be16(t, ranges + 2 * i)?;
        if range == 0 {
            return Some(c.wrapping_add(delta));
        }
        let at = ranges + 2 * i + usize::from(range) + 2 * usize::from(c - start);
        let g = be16(t, at)?;
        (g != 0).then(|| g.wrapping_add(delta))
    }

    /// The advance of `c` in font units (.notdef's when it has no glyph).
    fn advance(&self, c: char) -> u16 {
        let g = usize::from(self.glyph(c).unwrap_or(0));
        let at = 4 * g.min(self.long_metrics.saturating_sub(1));
        be16(self.hmtx, at).unwrap_or(1229)
    }

    /// xMin and yMax of `c`'s outline; `None` for a glyph with none.
    fn glyph_box(&self, c: char) -> Option<(i16, i16)> {
        let g = usize::from(self.glyph(c)?);
        let (start, end) = if self.long_loca {
            (
                be32(self.loca, 4 * g)? as usize,
                be32(self.loca, 4 * g + 4)? as usize,
            )
        } else {
            (
                2 * usize::from(be16(self.loca, 2 * g)?),
                2 * usize::from(be16(self.loca, 2 * g + 2)?),
            )
        };
        if end <= start {
            return None;
        }
        // TrueType's FWORD: an int16, big-endian.
        let x_min = be16(self.glyf, start + 2)?.cast_signed();
        let y_max = be16(self.glyf, start + 8)?.cast_signed();
        Some((x_min, y_max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_font_measures_text() {
        register().unwrap();
        let w = width("Hello", 10.0);
        // DejaVu Sans advances: H 1540, e 1260, l 569 ×2, o 1253 units,
        // each rounded at 10 px: 8 + 6 + 3 + 3 + 6.
        assert_eq!(w, 26.0);
        // Hinted extents at 10 px: ascent 9.28 → 10, descent 2.36 → 3,
        // height 11.64 → 12 (graphite's legend boxes are 11 px).
        let e = extents(10.0);
        assert_eq!((e.ascent, e.descent, e.height), (10.0, 3.0, 12.0));
        assert!(width("Hello Hello", 10.0) > 2.0 * w);
        // Boxes from the font's glyf table (xMin, yMax in 2048ths).
        assert_eq!(glyph_box('1'), (225.0 / 2048.0, 1493.0 / 2048.0));
        assert_eq!(glyph_box('.'), (219.0 / 2048.0, 254.0 / 2048.0));
        assert_eq!(glyph_box('H'), (201.0 / 2048.0, 1493.0 / 2048.0));
        let cut = fit("a.very.long.series.name.indeed", 10.0, 60.0);
        assert!(cut.ends_with('…') && width(&cut, 10.0) <= 60.0, "{cut}");
    }
}
