//! What the families' tests share: a render context over a test store.
//! (The one place to follow a change to `Context`.)

use crate::eval::{Context, Limits, Spent};
use rollupd_store::Store;

pub(super) fn ctx(store: &Store, from: i64, until: i64, now: i64) -> Context<'_> {
    Context {
        store,
        from,
        until,
        now,
        tz: chrono_tz::Tz::UTC,
        server_tz: chrono_tz::Tz::UTC,
        xff: 0.0,
        limits: Limits::default(),
        spent: Spent::default(),
    }
}

/// Python's None in expected values.
pub(super) const N: f64 = f64::NAN;

/// Values equal exactly, None matching None.
pub(super) fn same(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x.is_nan() && y.is_nan()) || x == y)
}
