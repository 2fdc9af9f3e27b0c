//! The window, bucket, forecast and shift functions evaluated against a
//! store: bootstraps read real data before `from`, re-evaluate the first
//! argument (not the series' names), and count against the points cap.
#![expect(
    clippy::cast_possible_wrap,
    reason = "indexes of test series a few hundred values long"
)]

use crate::eval::{evaluate, Context, Limits, QueryError};
use crate::series::Series;
use rollupd_config::{AggregationRule, RetentionRule, StorageConfig};
use rollupd_store::{Point, Store};

const T0: i64 = 1_700_006_400;
const NOW: i64 = T0 + 3 * 3600;

/// `a.b` (and `a.c` = 2 × `a.b`) every 10 s from T0 to NOW, valued
/// `(t - T0) / 10`: the point's index; `g.h` the same with every third
/// point missing.
fn store() -> Store {
    let cfg = StorageConfig {
        retention: vec![RetentionRule {
            pattern: ".*".into(),
            retentions: "10s:6h,1m:7d".into(),
        }],
        aggregation: vec![AggregationRule {
            pattern: ".*".into(),
            method: "average".into(),
            x_files_factor: 0.0,
        }],
        ..StorageConfig::default()
    };
    let store = Store::in_memory(&cfg).unwrap();
    let mut pts = Vec::new();
    for t in (T0..=NOW).step_by(10) {
        let v = ((t - T0) / 10) as f64;
        pts.push(Point {
            name: "a.b",
            timestamp: t,
            value: v,
        });
        pts.push(Point {
            name: "a.c",
            timestamp: t,
            value: 2.0 * v,
        });
        if (t - T0) % 30 != 0 {
            pts.push(Point {
                name: "g.h",
                timestamp: t,
                value: v,
            });
        }
    }
    store.write(&pts, &[], NOW).unwrap();
    store
}

fn ctx(store: &Store, from: i64, max_points: usize) -> Context<'_> {
    Context {
        limits: Limits {
            max_series: 100,
            max_points,
            deadline: None,
        },
        ..super::testutil::ctx(store, from, NOW, NOW)
    }
}

fn run(store: &Store, target: &str) -> Vec<Series> {
    let mut c = ctx(store, NOW - 1800, 1_000_000);
    evaluate(&mut c, target).unwrap_or_else(|e| panic!("{target}: {e}"))
}

#[test]
fn moving_average_bootstraps_before_from() {
    let st = store();
    // The request's first point is at NOW-1790 (index 901); its 6-point
    // window is 896..=901, read from before `from`.
    let out = run(&st, "movingAverage(a.b,6)");
    let s = &out[0];
    assert_eq!(s.name, "movingAverage(a.b,6)");
    assert_eq!((s.start, s.end, s.step), (NOW - 1790, NOW + 10, 10));
    assert_eq!(s.values.len(), 180);
    assert_eq!(s.values[0], 898.5);
    assert_eq!(s.values[179], 1077.5);
    // The same by interval: 1min = 6 points.
    let out = run(&st, "movingAverage(a.b,'1min')");
    assert_eq!(out[0].name, "movingAverage(a.b,\"1min\")");
    assert_eq!(out[0].values, s.values);
    assert_eq!(out[0].start, s.start);
    // movingWindow with its function and a nested argument.
    let out = run(&st, "movingWindow(scale(a.b,2),3,'max')");
    assert_eq!(out[0].name, "movingMax(scale(a.b,2),3)");
    assert_eq!(out[0].values[0], 1802.0);
}

#[test]
fn the_points_cap_counts_the_bootstrap() {
    let st = store();
    // Plain: 180 points. movingAverage(...,'1h'): 180 at first, then 540
    // with the bootstrap.
    let mut c = ctx(&st, NOW - 1800, 500);
    assert!(evaluate(&mut c, "a.b").is_ok());
    assert_eq!(c.spent.points, 180);
    let mut c = ctx(&st, NOW - 1800, 500);
    match evaluate(&mut c, "movingAverage(a.b,'1h')") {
        Err(QueryError::TooMuch { what, needed, cap }) => {
            assert_eq!((what, needed, cap), ("points", 720, 500));
        }
        other => panic!("{other:?}"),
    }
    let mut c = ctx(&st, NOW - 1800, 720);
    assert!(evaluate(&mut c, "movingAverage(a.b,'1h')").is_ok());
    assert_eq!(c.spent.points, 720);
    // The window is the request's again afterwards.
    assert_eq!((c.from, c.until), (NOW - 1800, NOW));
}

#[test]
fn time_shift_and_stack_re_evaluate_the_argument() {
    let st = store();
    // aliasByNode's names are no path: the argument is evaluated again.
    let out = run(&st, "timeShift(aliasByNode(a.*,1),'10min')");
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].name, "timeShift(b, \"-10min\")");
    assert_eq!(out[0].start, NOW - 1790);
    assert_eq!(out[0].values[0], 841.0);
    assert_eq!(out[1].values[0], 1682.0);
    let out = run(&st, "timeStack(a.b,'10min',0,3)");
    let names: Vec<&str> = out.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "timeShift(a.b, -10min, 0)",
            "timeShift(a.b, -10min, 1)",
            "timeShift(a.b, -10min, 2)"
        ]
    );
    for (k, s) in out.iter().enumerate() {
        assert_eq!(s.start, NOW - 1790);
        assert_eq!(s.values[0], 901.0 - 60.0 * k as f64);
    }
}

#[test]
fn summarize_and_hitcount_over_the_store() {
    let st = store();
    // NOW - 1790 .. NOW: 10-minute buckets from NOW - 1800 (NOW is a
    // multiple of 600); the first misses its first point.
    let out = run(&st, "summarize(a.b,'10min','max')");
    let s = &out[0];
    assert_eq!(s.name, "summarize(a.b, \"10min\", \"max\")");
    assert_eq!((s.start, s.end, s.step), (NOW - 1800, NOW + 600, 600));
    assert_eq!(s.values, vec![959.0, 1019.0, 1079.0, 1080.0]);
    // hitcount with alignToInterval: from NOW-1795 back to the minute.
    let mut c = ctx(&st, NOW - 1795, 1_000_000);
    let out = evaluate(&mut c, "hitcount(a.b,'10min',true)").unwrap();
    let s = &out[0];
    assert_eq!(s.name, "hitcount(a.b, \"10min\", true)");
    // Refetched from NOW-1800 (first point NOW-1790), end stretched to
    // NOW-1790 + 3*600 + 600; four buckets back from there.
    assert_eq!((s.start, s.end, s.step), (NOW - 1790, NOW + 610, 600));
    let hits: f64 = (901..=960).map(|v| f64::from(v) * 10.0).sum();
    assert_eq!(s.values[0], hits);
}

#[test]
fn regression_and_forecast_over_the_store() {
    let st = store();
    // a.b is a line: v = (t - T0) / 10; the regression draws it exactly.
    let from = format!("{}", NOW - 3 * 3600 + 600);
    let until = format!("{}", NOW - 3600);
    let out = run(&st, &format!("linearRegression(a.b,'{from}','{until}')"));
    let s = &out[0];
    assert_eq!(s.name, format!("linearRegression(a.b, {from}, {until})"));
    for (i, v) in s.values.iter().enumerate() {
        let t = s.start + i as i64 * s.step;
        assert!((v - (t - T0) as f64 / 10.0).abs() < 1e-6, "{i}: {v}");
    }
    // holtWintersForecast: the analysis over the bootstrapped fetch, cut
    // back to the request's range.
    let out = run(&st, "holtWintersForecast(a.b,'1h','20min')");
    let s = &out[0];
    let mut c = ctx(&st, NOW - 1800 - 3600, 1_000_000);
    let full = evaluate(&mut c, "a.b").unwrap().remove(0);
    let (pred, _) = super::forecast::holt_winters(&full.values, 10, 1200).unwrap();
    assert_eq!(s.start, full.start + 3600);
    assert_eq!(s.values, pred[360..].to_vec());
    assert_eq!(s.values.len(), 180);
}

#[test]
fn the_request_xfilesfactor_is_the_default() {
    let st = store();
    // Every 3-point window of g.h holds 2 known points.
    let mut c = ctx(&st, NOW - 1800, 1_000_000);
    c.xff = 0.7;
    let out = evaluate(&mut c, "movingAverage(g.h,3)").unwrap();
    assert!(out[0].values.iter().all(|v| v.is_nan()));
    let out = evaluate(&mut c, "movingAverage(g.h,3,0.6)").unwrap();
    assert_eq!(out[0].values[0], 900.0, "indices 899..=901, 900 missing");
    assert_eq!(out[0].xff, 0.7);
    let out = evaluate(&mut c, "summarize(g.h,'1min','sum')").unwrap();
    assert!(out[0].values.iter().all(|v| v.is_nan()), "4/6 < 0.7");
    c.xff = 0.6;
    let out = evaluate(&mut c, "summarize(g.h,'1min','sum')").unwrap();
    // NOW-1800..NOW-1740 holds 901..=905 (of 900..=905), 903 missing.
    assert_eq!(out[0].values[0], 901.0 + 902.0 + 904.0 + 905.0);
}
