//! The function library: graphite-web's render functions, each with its
//! semantics (series names, tags, None handling), written from its
//! documentation and behaviour. One file per family.

mod aggfunc;
mod alias;
mod bucket;
mod combine;
mod filter;
mod forecast;
mod shift;
mod transform;
mod window;

#[cfg(test)]
mod eval_tests;

use super::eval::{Context, QueryError};
use super::parse::{Call, Expr};
use super::series::Series;

/// A call's arguments, positional or by keyword.
pub struct Args<'c> {
    pub call: &'c Call,
}

impl<'c> Args<'c> {
    /// Argument `i`, or keyword `name`.
    pub fn get(&self, i: usize, name: &str) -> Option<&'c Expr> {
        self.call
            .kwargs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
            .or_else(|| self.call.args.get(i))
    }

    fn bad(&self, what: String) -> QueryError {
        QueryError::BadArgument(format!("{}(): {what}", self.call.name))
    }

    pub fn series(&self, ctx: &mut Context<'_>, i: usize) -> Result<Vec<Series>, QueryError> {
        match self.get(i, "seriesList") {
            Some(e) => ctx.eval(e),
            None => Err(self.bad(format!("argument {} (a series list) is missing", i + 1))),
        }
    }

    /// Every argument from `i` on, as series (`*seriesLists`).
    pub fn series_from(&self, ctx: &mut Context<'_>, i: usize) -> Result<Vec<Series>, QueryError> {
        let mut out = Vec::new();
        for e in self.call.args.iter().skip(i) {
            out.extend(ctx.eval(e)?);
        }
        Ok(out)
    }

    pub fn num(&self, i: usize, name: &str) -> Result<f64, QueryError> {
        match self.get(i, name) {
            Some(Expr::Num(n)) => Ok(*n),
            Some(Expr::Int(n)) => Ok(*n as f64),
            Some(other) => Err(self.bad(format!(
                "{name} must be a number, not {}",
                other.to_target()
            ))),
            None => Err(self.bad(format!("{name} is missing"))),
        }
    }

    pub fn opt_num(&self, i: usize, name: &str) -> Result<Option<f64>, QueryError> {
        match self.get(i, name) {
            None | Some(Expr::None) => Ok(None),
            Some(_) => self.num(i, name).map(Some),
        }
    }

    pub fn int(&self, i: usize, name: &str) -> Result<i64, QueryError> {
        let n = self.num(i, name)?;
        if n.fract() != 0.0 {
            return Err(self.bad(format!("{name} must be an integer, not {n}")));
        }
        Ok(n as i64)
    }

    pub fn string(&self, i: usize, name: &str) -> Result<&'c str, QueryError> {
        match self.get(i, name) {
            Some(Expr::Str(s)) => Ok(s),
            Some(other) => Err(self.bad(format!(
                "{name} must be a string, not {}",
                other.to_target()
            ))),
            None => Err(self.bad(format!("{name} is missing"))),
        }
    }

    pub fn opt_string(&self, i: usize, name: &str) -> Result<Option<&'c str>, QueryError> {
        match self.get(i, name) {
            None | Some(Expr::None) => Ok(None),
            Some(_) => self.string(i, name).map(Some),
        }
    }

    pub fn opt_bool(&self, i: usize, name: &str) -> Result<Option<bool>, QueryError> {
        match self.get(i, name) {
            None | Some(Expr::None) => Ok(None),
            Some(Expr::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.bad(format!(
                "{name} must be true or false, not {}",
                other.to_target()
            ))),
        }
    }

    /// The raw text of argument `i` as graphite-web repeats it in names.
    pub fn repr(&self, i: usize, name: &str) -> String {
        self.get(i, name).map(Expr::to_target).unwrap_or_default()
    }
}

/// Runs one function call.
pub fn call(ctx: &mut Context<'_>, c: &Call) -> Result<Vec<Series>, QueryError> {
    let a = Args { call: c };
    let name = c.name.as_str();
    if let Some(r) = combine::call(ctx, name, &a) {
        return r;
    }
    if let Some(r) = transform::call(ctx, name, &a) {
        return r;
    }
    if let Some(r) = alias::call(ctx, name, &a) {
        return r;
    }
    if let Some(r) = filter::call(ctx, name, &a) {
        return r;
    }
    if let Some(r) = window::call(ctx, name, &a) {
        return r;
    }
    if let Some(r) = bucket::call(ctx, name, &a) {
        return r;
    }
    if let Some(r) = forecast::call(ctx, name, &a) {
        return r;
    }
    if let Some(r) = shift::call(ctx, name, &a) {
        return r;
    }
    Err(QueryError::UnknownFunction(c.name.clone()))
}

/// Names every function this build serves (for `/functions`).
pub fn names() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = [
        combine::NAMES,
        transform::NAMES,
        alias::NAMES,
        filter::NAMES,
        window::NAMES,
        bucket::NAMES,
        forecast::NAMES,
        shift::NAMES,
    ]
    .concat();
    v.sort_unstable();
    v
}
