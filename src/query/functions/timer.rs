//! Percentiles read from the merged timer histograms.

use super::info::FnInfo;
use super::Args;
use crate::query::eval::{Context, QueryError};
use crate::query::series::Series;

pub const NAMES: &[&str] = &[];

pub const INFO: &[FnInfo] = &[];

pub fn call(
    _ctx: &mut Context<'_>,
    _name: &str,
    _a: &Args<'_>,
) -> Option<Result<Vec<Series>, QueryError>> {
    None
}
