//! `/health` and `/metrics` (Prometheus text) for whoever runs rollupd.

use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::HttpState;

pub use crate::telemetry::render::{RenderLatency, WindowStats, RENDER_BUCKETS, WINDOW_SAMPLES};

/// Counts the render family's responses by status class (a middleware:
/// the handlers answer from several places, a 503 from the gate among
/// them).
pub async fn count_status(
    State(st): State<Arc<HttpState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = req.uri().path();
    let counted = path.starts_with("/render") || path.starts_with("/metrics/");
    let r = next.run(req).await;
    if counted {
        st.render_latency.status(r.status().as_u16());
    }
    r
}

pub async fn health(State(st): State<Arc<HttpState>>) -> Response {
    if st.store.degraded() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "store writes are failing (see the log and write_errors in /metrics); reads still work\n",
        )
            .into_response();
    }
    (StatusCode::OK, "ok\n").into_response()
}

fn counter(out: &mut String, name: &str, help: &str, v: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
    );
}

fn gauge(out: &mut String, name: &str, help: &str, v: f64) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
}

pub async fn metrics(State(st): State<Arc<HttpState>>) -> Response {
    let mut out = String::new();
    let t = st.telemetry.snapshot();
    counter(
        &mut out,
        "rollupd_statsd_packets_total",
        "statsd datagrams and TCP reads received",
        t.packets_received,
    );
    counter(
        &mut out,
        "rollupd_statsd_lines_total",
        "statsd lines received",
        t.metrics_received,
    );
    let _ = writeln!(out, "# HELP rollupd_statsd_bad_lines_total statsd lines refused, by reason\n# TYPE rollupd_statsd_bad_lines_total counter");
    for r in crate::protocol::statsd::BadReason::ALL {
        let _ = writeln!(
            out,
            "rollupd_statsd_bad_lines_total{{reason=\"{}\"}} {}",
            r.as_str(),
            t.bad_lines[r.index()]
        );
    }
    counter(
        &mut out,
        "rollupd_statsd_udp_kernel_drops_total",
        "datagrams the kernel dropped on our sockets",
        t.udp_kernel_drops,
    );
    counter(
        &mut out,
        "rollupd_carbon_points_total",
        "carbon plaintext points received",
        t.carbon_points,
    );
    let _ = writeln!(out, "# HELP rollupd_carbon_bad_lines_total carbon lines refused, by reason\n# TYPE rollupd_carbon_bad_lines_total counter");
    for r in crate::protocol::carbon::CarbonBad::ALL {
        let _ = writeln!(
            out,
            "rollupd_carbon_bad_lines_total{{reason=\"{}\"}} {}",
            r.as_str(),
            t.carbon_bad_lines[r.index()]
        );
    }
    gauge(
        &mut out,
        "rollupd_flush_seconds",
        "duration of the last flush's aggregation step",
        st.telemetry.last_flush_micros.load(Relaxed) as f64 / 1e6,
    );
    let s = &st.store.stats;
    counter(
        &mut out,
        "rollupd_store_points_total",
        "points accepted by the store",
        s.points_accepted.load(Relaxed),
    );
    counter(
        &mut out,
        "rollupd_store_points_too_old_total",
        "points older than the longest retention",
        s.points_too_old.load(Relaxed),
    );
    counter(
        &mut out,
        "rollupd_store_points_too_new_total",
        "points further ahead than max_future",
        s.points_too_new.load(Relaxed),
    );
    counter(
        &mut out,
        "rollupd_store_points_refused_total",
        "points of new series refused by max_series, max_new_series_per_minute or the name length",
        st.store.caps.points_refused.load(Relaxed),
    );
    counter(
        &mut out,
        "rollupd_store_write_errors_total",
        "failed engine writes (log appends and checkpoints)",
        s.write_errors.load(Relaxed),
    );
    let _ = writeln!(
        out,
        "# HELP rollupd_store_write_seconds_total time spent in store writes\n# TYPE rollupd_store_write_seconds_total counter\nrollupd_store_write_seconds_total {}",
        s.write_nanos.load(Relaxed) as f64 / 1e9
    );
    counter(
        &mut out,
        "rollupd_store_checkpoints_total",
        "checkpoints written",
        s.checkpoints.load(Relaxed),
    );
    gauge(
        &mut out,
        "rollupd_store_last_checkpoint_seconds",
        "duration of the last checkpoint",
        s.last_checkpoint_ms.load(Relaxed) as f64 / 1e3,
    );
    gauge(
        &mut out,
        "rollupd_store_series",
        "series in the index",
        st.store.index().len() as f64,
    );
    gauge(
        &mut out,
        "rollupd_store_rows_in_memory",
        "open and unsaved rows",
        st.store.rows_in_memory() as f64,
    );
    gauge(
        &mut out,
        "rollupd_store_disk_bytes",
        "bytes the engine holds on disk",
        st.store.disk_bytes() as f64,
    );
    counter(
        &mut out,
        "rollupd_store_corrupt_rows_total",
        "rows that could not be decoded",
        s.corrupt_rows.load(Relaxed),
    );
    let ev = &st.events.stats;
    gauge(
        &mut out,
        "rollupd_events_stored",
        "Graphite events in the event store",
        ev.stored.load(Relaxed) as f64,
    );
    let _ = writeln!(out, "# HELP rollupd_events_refused_total events not stored, by reason\n# TYPE rollupd_events_refused_total counter");
    for (reason, n) in [("full", &ev.refused_full), ("invalid", &ev.refused_invalid)] {
        let _ = writeln!(
            out,
            "rollupd_events_refused_total{{reason=\"{reason}\"}} {}",
            n.load(Relaxed)
        );
    }
    counter(
        &mut out,
        "rollupd_events_reads_over_cap_total",
        "event reads refused for matching too many events",
        ev.reads_over_cap.load(Relaxed),
    );
    counter(
        &mut out,
        "rollupd_events_expired_total",
        "events deleted past events_retention",
        ev.expired.load(Relaxed),
    );
    let r = &st.render_latency;
    let _ = writeln!(
        out,
        "# HELP rollupd_render_seconds /render latency\n# TYPE rollupd_render_seconds histogram"
    );
    let (buckets, n, secs) = r.histogram();
    for (le, b) in RENDER_BUCKETS.iter().zip(buckets) {
        let _ = writeln!(out, "rollupd_render_seconds_bucket{{le=\"{le}\"}} {b}");
    }
    let _ = writeln!(out, "rollupd_render_seconds_bucket{{le=\"+Inf\"}} {n}");
    let _ = writeln!(out, "rollupd_render_seconds_sum {secs}");
    let _ = writeln!(out, "rollupd_render_seconds_count {n}");
    if let Some(a) = &st.alerts {
        alert_metrics(&mut out, a);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

/// Alerting's own series: rules, instances by state, evaluation cost,
/// transitions, reloads, and each receiver's deliveries and failures.
fn alert_metrics(out: &mut String, a: &crate::alert::engine::Alerts) {
    gauge(
        out,
        "rollupd_alert_rules",
        "alert rules loaded",
        a.rule_count() as f64,
    );
    if let Some((members, here)) = a.sharing() {
        gauge(
            out,
            "rollupd_alert_members",
            "aggregators sharing the engine that beat within three reload_checks",
            members as f64,
        );
        gauge(
            out,
            "rollupd_alert_rules_evaluated_here",
            "alert rules this aggregator evaluates (the others' states are read from the shared engine)",
            here as f64,
        );
    }
    let _ = writeln!(out, "# HELP rollupd_alert_instances alert instances by state\n# TYPE rollupd_alert_instances gauge");
    for (state, n) in a.state_counts() {
        let _ = writeln!(out, "rollupd_alert_instances{{state=\"{state}\"}} {n}");
    }
    let s = &a.stats;
    counter(
        out,
        "rollupd_alert_evaluations_total",
        "rule evaluations",
        s.evaluations.load(Relaxed),
    );
    counter(
        out,
        "rollupd_alert_evaluation_errors_total",
        "rule evaluations whose target failed",
        s.evaluation_errors.load(Relaxed),
    );
    counter(
        out,
        "rollupd_alert_transitions_total",
        "alert state changes",
        s.transitions.load(Relaxed),
    );
    gauge(
        out,
        "rollupd_alert_round_seconds",
        "duration of the last evaluation round",
        s.last_round_micros.load(Relaxed) as f64 / 1e6,
    );
    counter(
        out,
        "rollupd_alert_reload_errors_total",
        "rule files that did not load",
        s.reload_errors.load(Relaxed),
    );
    let receivers = a.notify_stats().receivers();
    type Read = fn(&crate::alert::notify::ReceiverCounts) -> u64;
    let families: [(&str, &str, Read); 5] = [
        (
            "rollupd_alert_notifications_sent_total",
            "requests a receiver accepted",
            |r| r.delivered,
        ),
        (
            "rollupd_alert_notifications_failed_total",
            "delivery attempts that failed",
            |r| r.failed_attempts,
        ),
        (
            "rollupd_alert_notifications_retries_total",
            "delivery attempts after the first",
            |r| r.retries,
        ),
        (
            "rollupd_alert_notifications_dropped_total",
            "requests given up on or pushed out of a full queue",
            |r| r.dropped_failed + r.dropped_queue_full,
        ),
        (
            "rollupd_alert_notifications_queued",
            "requests waiting",
            |r| r.queued,
        ),
    ];
    for (name, help, get) in families {
        let kind = if name.ends_with("_total") {
            "counter"
        } else {
            "gauge"
        };
        let _ = writeln!(
            out,
            "# HELP {name} {help}, by receiver\n# TYPE {name} {kind}"
        );
        for r in &receivers {
            // A label value escapes \\, " and newlines (the exposition format).
            let label = r
                .name
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            let _ = writeln!(out, "{name}{{receiver=\"{label}\"}} {}", get(r));
        }
    }
}
