//! Evaluating a parsed target against the store: paths become fetched
//! series; calls go to the function library.

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
}

/// Caps that keep one request from reading without bound.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_series: usize,
    pub max_points: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_series: 100_000,
            max_points: 50_000_000,
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
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let name = self.store.index().series[id as usize].name.clone();
            let Some(f) = self.store.fetch(id, self.from, self.until, self.now)? else {
                continue;
            };
            self.points_read += f.values.len();
            if self.points_read > self.limits.max_points {
                return Err(QueryError::TooMuch {
                    what: "points",
                    needed: self.points_read,
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
            out.push(s);
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
