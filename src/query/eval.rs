//! Evaluating a parsed target against the store: paths become fetched
//! series; calls go to the function library.

use std::cell::Cell;

use crate::store::{Store, StoreError};

use super::parse::{parse, Expr, SyntaxError};
use super::series::{tags_of, Series};
use super::time::TimeError;

/// Why a target could not be evaluated. Each maps to one HTTP status in
/// `http::error`.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Syntax(#[from] SyntaxError),
    #[error("unknown function {0}()")]
    UnknownFunction(String),
    #[error("{0}")]
    BadArgument(String),
    #[error("bad glob: {0}")]
    Glob(String),
    #[error("{what} cap exceeded: the request needs {needed}, the cap is {cap}")]
    TooMuch {
        what: &'static str,
        needed: usize,
        cap: usize,
    },
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Time(#[from] TimeError),
    /// The request ran past its deadline (`[server] render_timeout`); the
    /// evaluator checks it as it charges points and between steps.
    #[error("the request ran past its deadline of {0:?} (render_timeout)")]
    Deadline(std::time::Duration),
}

/// Caps that keep one request from reading without bound.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_series: usize,
    pub max_points: usize,
    /// When the request must be answered by, and the timeout it came from
    /// (for the message). `None`: no deadline (tests, the admin port).
    pub deadline: Option<(std::time::Instant, std::time::Duration)>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_series: 100_000,
            max_points: 50_000_000,
            deadline: None,
        }
    }
}

/// One render request's time window and clock.
pub struct Context<'a> {
    pub store: &'a Store,
    pub from: i64,
    pub until: i64,
    pub now: i64,
    /// The request's time zone (`tz`, else the server's): functions that
    /// align to days or hours (hitcount's alignToInterval) use it.
    pub tz: chrono_tz::Tz,
    /// The server's time zone (graphite-web's TIME_ZONE, which is also its
    /// process's local time): linearRegression parses its times in it, and
    /// `time.mktime` reads wall clocks in it.
    pub server_tz: chrono_tz::Tz,
    /// The request's `xFilesFactor` (graphite-web's DEFAULT_XFILES_FACTOR,
    /// 0, without one): every fetched series carries it, and window and
    /// bucket functions use it when given none.
    pub xff: f64,
    pub limits: Limits,
    /// Points read so far by this request.
    pub points_read: usize,
}

impl Context<'_> {
    /// Evaluates `e` as if the request asked for `[from, until]`, then
    /// restores the request's window. This is graphite-web's copied request
    /// context with `startTime`/`endTime` moved, re-evaluating a function's
    /// first argument: the bootstrap of window functions (from moved back
    /// by the window), timeShift, timeStack, linearRegression's source
    /// range. What it reads counts against the same points cap.
    pub fn eval_over(
        &mut self,
        e: &Expr,
        from: i64,
        until: i64,
    ) -> Result<Vec<Series>, QueryError> {
        let saved = (self.from, self.until);
        (self.from, self.until) = (from, until);
        let r = self.eval(e);
        (self.from, self.until) = saved;
        r
    }

    /// [`Context::eval_over`] with only `from` moved back by `seconds`: a
    /// bootstrap, so the first points of a window function are computed
    /// from real data before the requested range.
    pub fn eval_bootstrapped(&mut self, e: &Expr, seconds: i64) -> Result<Vec<Series>, QueryError> {
        self.eval_over(e, self.from - seconds, self.until)
    }

    /// The series a path names, fetched, in name order.
    pub fn fetch_path(&mut self, pattern: &str) -> Result<Vec<Series>, QueryError> {
        let ids = self
            .store
            .index()
            .expand(pattern, self.limits.max_series + 1)
            .map_err(|e| QueryError::Glob(e.to_string()))?;
        if ids.len() > self.limits.max_series {
            return Err(QueryError::TooMuch {
                what: "series",
                needed: ids.len(),
                cap: self.limits.max_series,
            });
        }
        let read = Cell::new(self.points_read);
        let fetch_one = |id: u32| -> Result<Option<Series>, QueryError> {
            let name = self.store.index().series[id as usize].name.clone();
            let Some(f) = self.store.fetch(id, self.from, self.until, self.now)? else {
                return Ok(None);
            };
            let total = read.get() + f.values.len();
            read.set(total);
            if total > self.limits.max_points {
                return Err(QueryError::TooMuch {
                    what: "points",
                    needed: total,
                    cap: self.limits.max_points,
                });
            }
            let mut s = Series::new(
                &name,
                f.from,
                f.until - f.step as i64,
                f.step as i64,
                f.values,
            );
            s.end = f.until;
            s.xff = self.xff;
            s.path_expression = pattern.to_string();
            s.tags = tags_of(&name);
            Ok(Some(s))
        };
        // Serial on purpose: two threads measured slower on sumSeries of
        // 1,000 series (130 ms against 92 ms), contending for the store's
        // lock on open rows.
        let results: Vec<Result<Option<Series>, QueryError>> =
            ids.iter().map(|&id| fetch_one(id)).collect();
        self.points_read = read.into_inner();
        let mut out = Vec::with_capacity(results.len());
        for r in results {
            if let Some(s) = r? {
                out.push(s);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    pub fn eval(&mut self, e: &Expr) -> Result<Vec<Series>, QueryError> {
        match e {
            Expr::Path(p) => self.fetch_path(p),
            Expr::Call(c) if c.name == "seriesByTag" => {
                let mut exprs = Vec::new();
                for a in &c.args {
                    match a {
                        Expr::Str(s) => exprs.push(s.as_str()),
                        other => {
                            return Err(QueryError::BadArgument(format!(
                                "seriesByTag(): arguments are quoted tag expressions, not {}",
                                other.to_target()
                            )))
                        }
                    }
                }
                let ids = super::tags::series_by_tag(&self.store.index(), &exprs)?;
                let target = e.to_target().replace('"', "'");
                let mut out = Vec::new();
                for id in ids {
                    let name = self.store.index().series[id as usize].name.to_string();
                    let mut got = self.fetch_path(&name)?;
                    for s in &mut got {
                        s.path_expression = target.clone();
                    }
                    out.extend(got);
                }
                Ok(out)
            }
            Expr::Call(c) => super::functions::call(self, c),
            other => Err(QueryError::BadArgument(format!(
                "a target must be a series, not {}",
                other.to_target()
            ))),
        }
    }
}

/// Parses and evaluates one target.
pub fn evaluate(ctx: &mut Context<'_>, target: &str) -> Result<Vec<Series>, QueryError> {
    let e = parse(target)?;
    ctx.eval(&e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StorageConfig;
    use crate::store::Point;

    const NOW: i64 = 1_700_010_000;

    /// `wide.sNNN` for NNN < n, an hour at 10 s, each valued its number.
    fn wide_store(n: usize) -> Store {
        let store = Store::in_memory(&StorageConfig::default()).unwrap();
        let names: Vec<String> = (0..n).map(|i| format!("wide.s{i:03}")).collect();
        let mut pts = Vec::new();
        for (i, name) in names.iter().enumerate() {
            for t in (NOW - 3600..NOW).step_by(10) {
                pts.push(Point {
                    name,
                    timestamp: t,
                    value: i as f64,
                });
            }
        }
        store.write(&pts, &[], NOW).unwrap();
        store
    }

    fn ctx(store: &Store, max_points: usize) -> Context<'_> {
        Context {
            store,
            from: NOW - 3600,
            until: NOW,
            now: NOW,
            tz: chrono_tz::Tz::UTC,
            server_tz: chrono_tz::Tz::UTC,
            xff: 0.0,
            limits: Limits {
                max_series: 1000,
                max_points,
                deadline: None,
            },
            points_read: 0,
        }
    }

    #[test]
    fn a_wide_glob_is_fetched_whole_in_name_order_and_counted() {
        let store = wide_store(150);
        let mut c = ctx(&store, 1_000_000);
        let got = c.fetch_path("wide.*").unwrap();
        assert_eq!(got.len(), 150);
        for (i, s) in got.iter().enumerate() {
            assert_eq!(s.name, format!("wide.s{i:03}"));
            assert_eq!(s.values[0], i as f64);
            assert_eq!(s.path_expression, "wide.*");
        }
        let per = got[0].values.len();
        assert_eq!(c.points_read, 150 * per);
    }

    #[test]
    fn a_wide_glob_over_the_points_cap_is_refused() {
        let store = wide_store(150);
        let mut c = ctx(&store, 100 * 360);
        match c.fetch_path("wide.*") {
            Err(QueryError::TooMuch { what, cap, needed }) => {
                assert_eq!((what, cap), ("points", 100 * 360));
                assert!(needed > cap);
            }
            other => panic!("expected the points cap, got {other:?}"),
        }
    }
}
