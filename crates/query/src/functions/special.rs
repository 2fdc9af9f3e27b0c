//! Series that come from somewhere other than a path, and presentation
//! options for the image renderer: events, threshold, drawAsInfinite,
//! stacked.

use super::info::{p, FnInfo, Ty, SERIES_LIST};
use super::Args;
use crate::eval::{Context, QueryError};
use crate::format::py_float_repr;
use crate::parse::Expr;
use crate::series::{Consolidate, Series};
use rollupd_events::store::{visit as visit_events, TagFilter};
use rollupd_store::StoreError;

pub(super) const INFO: &[FnInfo] = &[
    FnInfo::new(
        "drawAsInfinite",
        "Graph",
        "Draws every value above zero as a vertical line across the whole graph (deploys, events); the values are unchanged.",
        &[SERIES_LIST],
    ),
    FnInfo::new(
        "events",
        "Special",
        "A series counting, each second, the stored events that carry all the given tags (\"*\": every event); seconds without events are gaps.",
        &[p("tags", Ty::String).req().multi()],
    ),
    FnInfo::new(
        "stacked",
        "Graph",
        "Stacks the series: each point becomes the running total of that point over the series before it (gaps stay gaps), drawn as stacked areas.",
        &[SERIES_LIST, p("stack", Ty::String)],
    ),
    FnInfo::new(
        "threshold",
        "Graph",
        "A horizontal line at value, named label (if given) and drawn in color (if given).",
        &[
            p("value", Ty::Float).req(),
            p("label", Ty::String),
            p("color", Ty::String),
        ],
    ),
];

/// graphite-web's `constantLine(value)`: three points spanning the window,
/// named by the value as Python prints a float.
pub(super) fn constant_line(ctx: &Context<'_>, value: f64) -> Series {
    let step = ((ctx.until - ctx.from) / 2).max(1);
    let text = py_float_repr(value);
    let mut s = Series::new(&text, ctx.from, ctx.until, step, vec![value; 3]);
    s.path_expression = format!("constantLine({text})");
    s
}

/// graphite-web's `events(*tags)`: one point a second over the window, the
/// number of events at that second that carry every tag (None where there
/// are none); `events('*')` counts every event, `events()` none (its name
/// is `events("")`, as graphite-web builds it).
fn events(ctx: &mut Context<'_>, a: &Args<'_>, tags: Vec<String>) -> Result<Series, QueryError> {
    let name = format!("events(\"{}\")", tags.join("\", \""));
    let (start, end) = (ctx.from, ctx.until);
    let points = usize::try_from(end.saturating_sub(start)).unwrap_or(0);
    a.charge(ctx, points)?;
    let filter = if tags.len() == 1 && tags[0] == "*" {
        TagFilter::Every
    } else {
        TagFilter::AllOf(tags)
    };
    let mut values = vec![f64::NAN; points];
    // Counted as they are read: the window's events are never all held.
    visit_events(ctx.store.events(), start, end, &filter, &mut |e| {
        if let Some(v) = e
            .when
            .checked_sub(start)
            .and_then(|d| usize::try_from(d).ok())
            .and_then(|i| values.get_mut(i))
        {
            *v = if v.is_nan() { 1.0 } else { *v + 1.0 };
        }
        true
    })
    .map_err(|e| QueryError::Store(StoreError::Read(e)))?;
    let mut s = Series::new(&name, start, end, 1, values);
    s.consolidate = Consolidate::Sum;
    Ok(s)
}

pub(super) fn call(
    ctx: &mut Context<'_>,
    name: &str,
    a: &Args<'_>,
) -> Option<Result<Vec<Series>, QueryError>> {
    Some((|| -> Result<Vec<Series>, QueryError> {
        match name {
            "events" => {
                let tags = a
                    .call
                    .args
                    .iter()
                    .map(|e| match e {
                        Expr::Str(s) => Ok(s.clone()),
                        other => Err(a.bad_arg(format!(
                            "tags are quoted strings, not {}",
                            other.to_target()
                        ))),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(vec![events(ctx, a, tags)?])
            }
            "drawAsInfinite" => Ok(a
                .series(ctx, 0)?
                .into_iter()
                .map(|mut s| {
                    s.draw_as_infinite = true;
                    s.tags.insert("drawAsInfinite".into(), "1".into());
                    s.name = format!("drawAsInfinite({})", s.name);
                    s
                })
                .collect()),
            "threshold" => {
                let value = a.num(0, "value")?;
                let label = a.opt_string(1, "label")?;
                let color = a.opt_string(2, "color")?;
                let mut s = constant_line(ctx, value);
                if let Some(l) = label.filter(|l| !l.is_empty()) {
                    s.name = l.to_string();
                }
                s.color = color.filter(|c| !c.is_empty()).map(str::to_string);
                Ok(vec![s])
            }
            "stacked" => {
                let list = a.series(ctx, 0)?;
                let stack = match a.get(1, "stack").or_else(|| a.get(usize::MAX, "stackName")) {
                    None | Some(Expr::None) => None,
                    Some(Expr::Str(s)) => Some(s.clone()),
                    Some(other) => {
                        return Err(
                            a.bad_arg(format!("stack must be a string, not {}", other.to_target()))
                        )
                    }
                };
                let default = stack.as_deref().is_none_or(|s| s == "__DEFAULT__");
                let mut totals: Vec<f64> = Vec::new();
                Ok(list
                    .into_iter()
                    .map(|mut s| {
                        if totals.len() < s.values.len() {
                            totals.resize(s.values.len(), 0.0);
                        }
                        for (v, t) in s.values.iter_mut().zip(totals.iter_mut()) {
                            if !v.is_nan() {
                                *t += *v;
                                *v = *t;
                            }
                        }
                        if default {
                            s.tags.insert("stacked".into(), "__DEFAULT__".into());
                            s.name = format!("stacked({})", s.name);
                        }
                        s.path_expression = s.name.clone();
                        s.stacked = true;
                        s
                    })
                    .collect())
            }
            _ => Err(QueryError::UnknownFunction(String::new())),
        }
    })())
    .filter(|r| !matches!(r, Err(QueryError::UnknownFunction(n)) if n.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::evaluate;
    use rollupd_config::StorageConfig;
    use rollupd_events::store::EventStore;
    use rollupd_store::{Point, Store};

    const T0: i64 = 1_795_300_200;

    fn store() -> Store {
        let store = Store::in_memory(&StorageConfig::default()).unwrap();
        let pts: Vec<Point<'_>> = (0..6)
            .flat_map(|k| {
                [
                    Point {
                        name: "a.x",
                        timestamp: T0 + k * 10,
                        value: k as f64,
                    },
                    Point {
                        name: "a.y",
                        timestamp: T0 + k * 10,
                        value: 10.0,
                    },
                ]
            })
            .collect();
        store.write(&pts, &[], T0 + 60).unwrap();
        let ev = EventStore::open(store.kv().clone()).unwrap();
        let add = |when, what: &str, tags: &[&str]| {
            ev.add(rollupd_events::QueuedEvent {
                when,
                what: what.into(),
                tags: tags.iter().map(|s| s.to_string()).collect(),
                data: String::new(),
            })
            .unwrap()
        };
        add(T0 + 5, "deploy 1", &["deploy", "web"]);
        add(T0 + 5, "deploy 2", &["deploy", "db"]);
        add(T0 + 20, "deploy 3", &["deploy", "web"]);
        add(T0 + 30, "config", &["config"]);
        add(T0 + 500, "later", &["deploy"]);
        store
    }

    fn run(store: &Store, target: &str) -> Vec<Series> {
        let mut c = super::super::testutil::ctx(store, T0, T0 + 60, T0 + 60);
        evaluate(&mut c, target).unwrap_or_else(|e| panic!("{target}: {e}"))
    }

    #[test]
    fn events_count_per_second_the_events_with_all_tags() {
        let s = store();
        let x = &run(&s, "events('deploy')")[0];
        assert_eq!(x.name, "events(\"deploy\")");
        assert_eq!(x.tags.len(), 1);
        assert_eq!((x.start, x.end, x.step), (T0, T0 + 60, 1));
        assert_eq!(x.values.len(), 60);
        assert_eq!(x.consolidate, Consolidate::Sum);
        // Two deploys at +5, one at +20; the one at +500 is outside.
        assert_eq!(x.values[5], 2.0);
        assert_eq!(x.values[20], 1.0);
        assert_eq!(x.values.iter().filter(|v| !v.is_nan()).count(), 2);
        let x = &run(&s, "events('deploy', 'web')")[0];
        assert_eq!(x.name, "events(\"deploy\", \"web\")");
        assert_eq!((x.values[5], x.values[20]), (1.0, 1.0));
        let x = &run(&s, "events('*')")[0];
        assert_eq!((x.values[5], x.values[30]), (2.0, 1.0));
        let x = &run(&s, "events('nothing')")[0];
        assert!(x.values.iter().all(|v| v.is_nan()));
        // graphite-web: every tag must match, and no tag matches nothing.
        let x = &run(&s, "events('deploy', 'nothing')")[0];
        assert!(x.values.iter().all(|v| v.is_nan()));
        let x = &run(&s, "events()")[0];
        assert_eq!(x.name, "events(\"\")");
        assert!(x.values.iter().all(|v| v.is_nan()));
    }

    #[test]
    fn draw_as_infinite_keeps_values_and_sets_the_option() {
        let s = store();
        let x = &run(&s, "drawAsInfinite(events('deploy'))")[0];
        assert_eq!(x.name, "drawAsInfinite(events(\"deploy\"))");
        assert!(x.draw_as_infinite);
        assert_eq!(x.tags["drawAsInfinite"], "1");
        assert_eq!(x.values[5], 2.0);
        assert!(!run(&s, "a.x")[0].draw_as_infinite);
    }

    #[test]
    fn threshold_is_a_named_coloured_constant_line() {
        let s = store();
        let x = &run(&s, "threshold(75, 'warn', 'red')")[0];
        assert_eq!(x.name, "warn");
        // The tags keep constantLine's name, as graphite-web's do.
        assert_eq!(x.tags["name"], "75.0");
        assert_eq!(x.path_expression, "constantLine(75.0)");
        assert_eq!(x.color.as_deref(), Some("red"));
        assert_eq!(x.values, vec![75.0; 3]);
        assert_eq!((x.start, x.end, x.step), (T0, T0 + 60, 30));
        let x = &run(&s, "threshold(1.5)")[0];
        assert_eq!((x.name.as_str(), x.color.as_deref()), ("1.5", None));
    }

    #[test]
    fn stacked_adds_each_series_on_the_ones_before() {
        let s = store();
        let out = run(&s, "stacked(a.*)");
        assert_eq!(out[0].name, "stacked(a.x)");
        assert_eq!(out[0].tags["stacked"], "__DEFAULT__");
        assert!(out[1].stacked);
        // The window's points are T0+10 .. T0+50 (k = 1..5) and a gap at
        // T0+60: a.y (10) on top of a.x (k).
        assert_eq!(out[1].values[..5], [11.0, 12.0, 13.0, 14.0, 15.0]);
        assert!(out[1].values[5].is_nan());
        let out = run(&s, "stacked(a.*,'mine')");
        assert_eq!(out[1].name, "a.y");
        assert_eq!(out[1].tags.get("stacked"), None);
    }
}
