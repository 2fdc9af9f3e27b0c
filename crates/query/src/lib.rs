//! The Graphite query side: the target language ([`parse`]), numbers as
//! Python prints them ([`format`]), and its time language ([`time`]).

pub mod eval;
pub mod format;
pub mod functions;
pub mod parse;
pub mod series;
pub mod tags;
pub mod time;
