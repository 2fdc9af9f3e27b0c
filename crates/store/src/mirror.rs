//! A second destination for what the store accepts: every point and timer
//! histogram of a batch, after it is logged, with the rules the store gave
//! its series (retention and method), so the receiver need not match the
//! rules again (a regex match per point would cost more than the write).
//! The ClickHouse writer is one (`clickhouse::write`); the store does not
//! know which.

use super::hist::Hist;
use super::index::StatCode;
use super::schema::Method;

/// One accepted point.
#[derive(Debug, Clone, Copy)]
pub struct MirroredPoint<'a> {
    pub name: &'a str,
    pub timestamp: i64,
    pub value: f64,
    /// Its series' retention, as the rules write it (`10s:6h,1m:7d,10m:5y`).
    pub retention: &'a str,
    pub method: Method,
    /// A timer statistic's histogram (by name) and which statistic of it:
    /// coarser slots are that statistic of the merged histogram, not the
    /// method's aggregate (`rollup::value`).
    pub link: Option<(&'a str, StatCode)>,
}

/// One accepted timer histogram.
#[derive(Debug, Clone, Copy)]
pub struct MirroredHist<'a> {
    pub name: &'a str,
    pub timestamp: i64,
    pub hist: &'a Hist,
}

pub trait Mirror: Send + Sync {
    /// Called once per batch the store accepted, after it is logged, with
    /// no store lock held (two writers' batches may come in either order);
    /// it must not wait on I/O.
    fn accepted(&self, points: &[MirroredPoint<'_>], hists: &[MirroredHist<'_>], now: i64);
}
