//! One request must not stop the daemon: what functions make counts
//! against the points cap before it is allocated, both caps hold for the
//! whole request, the deadline stops costly work, nesting is bounded on a
//! render thread's stack, and times from the user never overflow.
#![expect(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    reason = "test fixtures: 125 series' indexes, and five years of seconds as a count"
)]

use std::time::{Duration, Instant};

use crate::eval::{evaluate, Context, Limits, QueryError, MAX_DEPTH};
use crate::parse::{Call, Expr};
use crate::time::TimeError;
use rollupd_config::StorageConfig;
use rollupd_store::{Point, Store};

const NOW: i64 = 1_795_314_600;
const YEAR: i64 = 365 * 86400;

/// The default retention (10s:6h,1m:7d,10m:5y). `h.N.cpu` (N < 5) and
/// `w.NN` (NN < 60) every 10 s over the last hour; `cpu;host=hNN` (60
/// of them) the same.
fn store() -> Store {
    let store = Store::in_memory(&StorageConfig::default()).unwrap();
    let mut names: Vec<String> = (0..5).map(|i| format!("h.{i}.cpu")).collect();
    names.extend((0..60).map(|i| format!("w.{i:02}")));
    names.extend((0..60).map(|i| format!("cpu;host=h{i:02}")));
    let mut pts = Vec::new();
    for (k, name) in names.iter().enumerate() {
        for t in (NOW - 3600..NOW).step_by(10) {
            pts.push(Point {
                name,
                timestamp: t,
                value: (k as i64 + (t % 97)) as f64,
            });
        }
    }
    store.write(&pts, &[], NOW).unwrap();
    store
}

fn ctx(store: &Store, from: i64, limits: Limits) -> Context<'_> {
    Context {
        limits,
        ..super::testutil::ctx(store, from, NOW, NOW)
    }
}

fn limits(max_series: usize, max_points: usize) -> Limits {
    Limits {
        max_series,
        max_points,
        deadline: None,
    }
}

fn too_much(r: Result<Vec<crate::series::Series>, QueryError>, what: &str) -> usize {
    match r {
        Err(QueryError::TooMuch {
            what: w,
            needed,
            cap,
        }) if w == what => {
            assert!(needed > cap, "{needed} > {cap}");
            needed
        }
        other => panic!("expected the {what} cap, got {other:?}"),
    }
}

/// The issue's `summarize(h.*.cpu,'1s','sum')` over five years: 158
/// million buckets a series, allocated before anything was counted (the
/// daemon died of it). Refused now from the bucket count, before any is
/// allocated; the same over an hour is fine.
#[test]
fn buckets_a_function_makes_count_against_the_points_cap() {
    let st = store();
    let mut c = ctx(&st, NOW - 5 * YEAR, Limits::default());
    let needed = too_much(evaluate(&mut c, "summarize(h.*.cpu,'1s','sum')"), "points");
    assert!(needed >= 5 * 5 * YEAR as usize, "{needed}");
    let mut c = ctx(&st, NOW - 5 * YEAR, Limits::default());
    too_much(evaluate(&mut c, "hitcount(h.*.cpu,'1s')"), "points");
    // A month at '1s': 2.6 million buckets against a cap of a million.
    for t in [
        "summarize(h.0.cpu,'1s','sum')",
        "summarize(h.0.cpu,'1s','sum',true)",
        "hitcount(h.0.cpu,'1s')",
        "hitcount(h.0.cpu,'1s',true)",
        // A negative window gives |window| values more than it reads.
        "movingSum(h.0.cpu,-2000000)",
        // Each series grows to the reference's length.
        "transformNull(summarize(w.*,'1d'),0,summarize(h.0.cpu,'1s'))",
    ] {
        let mut c = ctx(&st, NOW - 30 * 86400, limits(100, 1_000_000));
        too_much(evaluate(&mut c, t), "points");
    }
    let mut c = ctx(&st, NOW - 30 * 86400, limits(100, 1_000_000));
    let out = evaluate(&mut c, "summarize(h.0.cpu,'1h','sum')").unwrap();
    assert_eq!(out[0].values.len(), 30 * 24 + 1);
    // The month is read at 10 min; what summarize made is fewer points
    // than it was given, so nothing more is charged.
    assert_eq!(c.spent.points, 30 * 144);
}

/// Points a function makes that the cap never saw before: every function's
/// output beyond its input is charged after it returns, so a chain of them
/// cannot grow past the cap either.
#[test]
fn what_any_function_makes_beyond_its_input_is_charged() {
    let st = store();
    let mut c = ctx(&st, NOW - 3600, limits(100, 1_000_000));
    evaluate(&mut c, "constantLine(1)").unwrap();
    assert_eq!(c.spent.points, 3);
    let mut c = ctx(&st, NOW - 3600, limits(100, 1_000_000));
    evaluate(&mut c, "scale(h.0.cpu,2)").unwrap();
    assert_eq!(c.spent.points, 360, "a transform makes nothing new");
}

/// `max_series_per_request` held per path: `sumSeries(w.*, w.*)` read
/// twice the cap, as did two targets, and seriesByTag skipped it.
#[test]
fn the_series_cap_holds_for_the_whole_request() {
    let st = store();
    let mut c = ctx(&st, NOW - 3600, limits(100, 10_000_000));
    // (The second glob is expanded only to one past what is left.)
    assert_eq!(
        too_much(evaluate(&mut c, "sumSeries(w.*,w.*)"), "series"),
        101
    );
    // Two targets of one request share one context.
    let mut c = ctx(&st, NOW - 3600, limits(100, 10_000_000));
    assert_eq!(evaluate(&mut c, "w.*").unwrap().len(), 60);
    assert_eq!(too_much(evaluate(&mut c, "w.*"), "series"), 101);
    let mut c = ctx(&st, NOW - 3600, limits(50, 10_000_000));
    assert_eq!(
        too_much(evaluate(&mut c, "seriesByTag('name=cpu')"), "series"),
        60
    );
    let mut c = ctx(&st, NOW - 3600, limits(60, 10_000_000));
    let got = evaluate(&mut c, "seriesByTag('name=cpu')").unwrap();
    assert_eq!(got.len(), 60);
    assert_eq!(got[0].path_expression, "seriesByTag('name=cpu')");
    assert_eq!(c.spent.series, 60);
    // timeStack reads its list once per shift: more shifts than the cap
    // is refused before the first.
    let mut c = ctx(&st, NOW - 3600, limits(100, 10_000_000));
    too_much(
        evaluate(&mut c, "timeStack(h.0.cpu,'1d',0,1000000000)"),
        "series",
    );
}

/// The points cap is checked before a series' window is read: a cap
/// smaller than one window refuses it without reading it.
#[test]
fn a_window_is_refused_before_it_is_read() {
    let st = store();
    let mut c = ctx(&st, NOW - 3600, limits(100, 100));
    too_much(evaluate(&mut c, "h.0.cpu"), "points");
    assert_eq!(c.spent.points, 0, "nothing was read");
}

/// A request past its deadline stops in the costly functions instead of
/// running on (the deadline is already over before they start).
#[test]
fn an_expired_deadline_stops_costly_work() {
    let st = store();
    let expired = Limits {
        deadline: Some((Instant::now(), Duration::from_millis(1))),
        ..Limits::default()
    };
    for t in [
        "h.0.cpu",
        "movingMedian(h.*.cpu,'1h')",
        "summarize(h.*.cpu,'1min','median')",
        "hitcount(h.*.cpu,'1min')",
        "holtWintersForecast(h.0.cpu)",
        "timeStack(h.0.cpu,'1h',0,3)",
        "sortByMaxima(h.*.cpu)",
        "groupByNode(h.*.cpu,1,'sum')",
        "constantLine(1)",
    ] {
        let mut c = ctx(&st, NOW - 86400, expired);
        match evaluate(&mut c, t) {
            Err(QueryError::Deadline(d)) => assert_eq!(d, Duration::from_millis(1)),
            other => panic!("{t}: {other:?}"),
        }
    }
}

/// The deadline is checked inside a window function's loop, not only
/// between calls: one long series with a wide median window stops.
#[test]
fn the_deadline_is_checked_inside_a_window() {
    use super::window::{moving_within, Window};
    let s = crate::series::Series::new("x", 0, 20_000, 1, vec![1.0; 20_000]);
    let expired = Limits {
        deadline: Some((Instant::now(), Duration::from_secs(2))),
        ..Limits::default()
    };
    let w = Window::Points(300, "300".into());
    match moving_within(vec![s.clone()], &w, 300, "median", None, &expired) {
        Err(QueryError::Deadline(_)) => {}
        other => panic!("{:?}", other.map(|v| v.len())),
    }
    let none = Limits::default();
    assert_eq!(
        moving_within(vec![s], &w, 300, "median", None, &none).unwrap()[0]
            .values
            .len(),
        19_700
    );
}

fn nest(depth: usize, leaf: Expr) -> Expr {
    let mut e = leaf;
    for _ in 0..depth {
        e = Expr::Call(Call {
            name: "scale".into(),
            args: vec![e, Expr::Int(1)],
            kwargs: vec![],
        });
    }
    e
}

/// A render thread's stack: tokio's blocking threads get 2 MiB.
fn on_render_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

/// An expression deeper than the parser allows (built by a function, as
/// applyByNode builds one) is refused by the evaluator too, on a render
/// thread's stack, instead of overflowing it.
#[test]
fn the_evaluator_refuses_nesting_past_the_limit() {
    // Built and dropped on a big stack: dropping a deep tree recurses too.
    let deep = std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(|| nest(20_000, Expr::Path("h.0.cpu".into())))
        .unwrap()
        .join()
        .unwrap();
    let (deep, r) = on_render_stack(move || {
        let st = store();
        let mut c = ctx(&st, NOW - 3600, Limits::default());
        let r = c.eval(&deep).map(|v| v.len());
        (deep, r)
    });
    assert!(matches!(r, Err(QueryError::TooDeep)), "{r:?}");
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(move || drop(deep))
        .unwrap()
        .join()
        .unwrap();
    let at_limit = nest(MAX_DEPTH, Expr::Path("h.0.cpu".into()));
    let r = on_render_stack(move || {
        let st = store();
        let mut c = ctx(&st, NOW - 3600, Limits::default());
        c.eval(&at_limit).map(|v| v.len())
    });
    assert_eq!(r.unwrap(), 1);
}

/// The deepest target the parser accepts, through the families with the
/// largest frames, parses and evaluates on a render thread's stack in a
/// debug build (a release build's frames are smaller).
#[test]
fn the_deepest_target_fits_a_render_threads_stack() {
    // Functions that evaluate their argument twice double the work below
    // them: those are kept to the outer levels.
    let twice = [
        ("movingAverage(", ",2)"),
        ("holtWintersForecast(", ")"),
        ("timeShift(", ",'1min')"),
        ("timeStack(", ",'1min',0,1)"),
        ("hitcount(", ",'1min',true)"),
    ];
    let once = [
        ("summarize(", ",'1min','sum')"),
        ("asPercent(", ",100)"),
        ("groupByNode(", ",1,'sum')"),
        ("aliasByNode(", ",1)"),
        ("sortByMaxima(", ")"),
        ("transformNull(", ",0)"),
        ("sumSeries(", ")"),
        ("removeAbovePercentile(", ",90)"),
        ("perSecond(", ")"),
    ];
    let mut head = String::new();
    let mut tail = String::new();
    for i in 0..MAX_DEPTH {
        let (open, close) = if i < twice.len() {
            twice[i]
        } else {
            once[i % once.len()]
        };
        head.push_str(open);
        tail.insert_str(0, close);
    }
    let target = format!("{head}h.*.cpu{tail}");
    let r = on_render_stack(move || {
        let st = store();
        let mut c = ctx(&st, NOW - 3600, Limits::default());
        evaluate(&mut c, &target).map(|v| v.len())
    });
    assert!(r.is_ok(), "{r:?}");
}

/// A function nested around itself that evaluates its argument twice
/// doubled the work per level; around a path matching nothing it reads
/// no point, so only a count of evaluations stops it.
#[test]
fn evaluations_are_bounded_where_points_are_not() {
    let st = store();
    let target = format!(
        "{}nothing.here{}",
        "holtWintersForecast(".repeat(40),
        ")".repeat(40)
    );
    let mut c = ctx(&st, NOW - 3600, Limits::default());
    too_much(evaluate(&mut c, &target), "evaluations");
}

/// Times and offsets that overflowed i64 (a panic in debug builds, a
/// wrapped window in release) are 400s naming the value.
#[test]
fn time_arithmetic_never_overflows() {
    let st = store();
    let range = |r: Result<Vec<crate::series::Series>, QueryError>, t: &str| match r {
        Err(QueryError::Time(TimeError::Range(_))) => {}
        other => panic!("{t}: {other:?}"),
    };
    for t in [
        // Each fits i64 alone; two bootstraps of it do not.
        "holtWintersForecast(holtWintersForecast(h.0.cpu,'290000000000y'),'290000000000y')",
        "timeStack(h.0.cpu,'290000000000y',0,2)",
        "timeShift(h.0.cpu,'290000000000y')",
        "timeShift(timeShift(h.0.cpu,'-9000y'),'-9000y')",
        "holtWintersForecast(h.0.cpu,'9000y')",
    ] {
        let mut c = ctx(&st, NOW - 3600, Limits::default());
        range(evaluate(&mut c, t), t);
    }
    // A window at the edge of the times handled, then moved past it.
    let mut c = ctx(&st, crate::time::MAX_TIME - 10, Limits::default());
    c.until = crate::time::MAX_TIME;
    c.now = crate::time::MAX_TIME;
    range(evaluate(&mut c, "timeShift(h.0.cpu,'+1h')"), "edge");
    // Steps whose least common multiple overflows i64 (the primes to 53).
    let primes = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53];
    let parts: Vec<String> = primes
        .iter()
        .map(|p| format!("summarize(h.0.cpu,'{p}s')"))
        .collect();
    let mut c = ctx(&st, NOW - 3600, Limits::default());
    let out = evaluate(&mut c, &format!("sumSeries({})", parts.join(","))).unwrap();
    assert_eq!(out.len(), 1);
    assert!(out[0].step > 0);
}

/// Each aliasSub with an empty pattern multiplies a name's length by its
/// replacement's; three nested made an 8 GB name. Refused from the count
/// of matches, before the name is built; one level is fine.
#[test]
fn names_cannot_be_multiplied_without_bound() {
    let st = store();
    let x = "x".repeat(1000);
    let one = format!("aliasSub(h.0.cpu,'','{x}')");
    let mut c = ctx(&st, NOW - 3600, Limits::default());
    assert_eq!(evaluate(&mut c, &one).unwrap()[0].name.len(), 8 * 1000 + 7);
    let three = format!("aliasSub(aliasSub({one},'','{x}'),'','{x}')");
    let mut c = ctx(&st, NOW - 3600, Limits::default());
    match evaluate(&mut c, &three) {
        Err(QueryError::BadArgument(m)) => assert!(m.contains("aliasSub"), "{m}"),
        other => panic!("{:?}", other.map(|v| v.len())),
    }
}

/// Node numbers at i64's edges (`int()` of a huge float saturates there):
/// `node + 1` overflowed in applyByNode's prefix.
#[test]
fn node_numbers_at_the_edges_do_not_overflow() {
    let st = store();
    for t in [
        "applyByNode(h.*.cpu,9223372036854775807,'sumSeries(%)')",
        "applyByNode(h.*.cpu,-9223372036854775808,'sumSeries(%)')",
        "applyByNode(h.*.cpu,1e300,'sumSeries(%)')",
        "aliasByNode(h.*.cpu,9223372036854775807,-9223372036854775808)",
        "groupByNode(h.*.cpu,-9223372036854775808,'sum')",
        "limit(h.*.cpu,-9223372036854775808)",
    ] {
        let mut c = ctx(&st, NOW - 3600, Limits::default());
        let _ = evaluate(&mut c, t);
    }
}
