//! Pure parsers over bytes: no sockets, no clocks, no shared state. The
//! fuzz targets and the parser benchmark call these directly.

pub mod carbon;
pub mod dogstatsd;
pub mod key;
pub mod number;
pub mod statsd;
