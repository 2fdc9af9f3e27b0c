//! Threshold and forecast alerts, evaluated from the store (never through
//! our own HTTP API), with their states, history and notifications.
//!
//! `notice.rs`: what a firing instance looks like to the notification
//! layer. `notify/`: receivers (webhook, Alertmanager), repeats, retries.

pub mod notice;
pub mod notify;
