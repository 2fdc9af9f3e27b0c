//! The Graphite query side: the target language ([`parse`]), numbers as
//! Python prints them ([`format`]).

pub mod format;
pub mod parse;
