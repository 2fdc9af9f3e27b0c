//! Output encoders: what a list of series looks like on the wire. The query
//! stage decides the numbers; nothing here changes them except
//! `maxDataPoints` consolidation, which graphite-web also does at output,
//! and the merging of points to pixel columns when drawing an image.

pub mod image;
pub mod text;
