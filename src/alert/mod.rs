//! Threshold and forecast alerts, evaluated from the store (never through
//! our own HTTP API), with their states, history and notifications.
//!
//! By stage: `rule.rs` (what a rule is, checked), `eval.rs` (a rule's
//! target fetched and each series' window observed), `reduce.rs` and
//! `forecast.rs` (the numbers), `state.rs` (one instance's state
//! machine), `engine.rs` (the running rules, rounds, reloads, the API the
//! HTTP layer calls), `persist.rs` (what survives a restart), `peers.rs`
//! (which aggregator evaluates which rule on a shared engine), `history.rs`
//! (transitions), `silence.rs`, `notice.rs` (a firing instance as the
//! notifier sees it), `notify/` (receivers, repeats, retries),
//! `template.rs`, `check.rs` (`/check` replies), `review.rs` (the
//! signal-to-noise review).

pub mod check;
pub mod engine;
pub mod eval;
pub mod forecast;
pub mod history;
pub mod notice;
pub mod notify;
pub mod peers;
pub mod persist;
pub mod reduce;
pub mod review;
pub mod rule;
pub mod silence;
pub mod state;
pub mod template;

use std::time::Duration;

/// A duration in whole seconds as the signed times are kept; one past
/// `i64::MAX` seconds (only an unbounded setting or request) saturates.
pub(crate) fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}
