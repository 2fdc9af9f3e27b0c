//! PNG out of an RGB buffer, in memory, with the `png` crate (plotters'
//! own PNG output goes through files). Fast compression: a graph is mostly
//! flat colour, which compresses well at any level, and encoding time is
//! part of every image request.

/// Encodes `rgb` (`width × height × 3` bytes, rows top down).
pub fn encode_rgb(width: u32, height: u32, rgb: &[u8]) -> Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::with_capacity(rgb.len() / 16 + 1024);
    let mut enc = png::Encoder::new(&mut out, width, height);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Fast);
    enc.set_filter(png::FilterType::Up);
    let mut w = enc.write_header()?;
    w.write_image_data(rgb)?;
    w.finish()?;
    Ok(out)
}
