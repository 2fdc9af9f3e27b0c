//! The Graphite target language: `sumSeries(a.*.c, b.{x,y})`,
//! `alias(x, "name")`, `seriesByTag('k=v')`, `movingAverage(x, '5min')`,
//! `f(x, key=value)`, numbers, booleans, `None`, single- or double-quoted
//! strings, and paths with globs (`*`, `?`, `[a-z]`, `{a,b}`).
//!
//! Built with nom. Errors say what was expected and at which character
//! (1-based, as graphite-web counts), so a 400 points at the mistake.

use nom::branch::alt;
use nom::bytes::complete::{take_while, take_while1};
use nom::character::complete::{char, multispace0};
use nom::combinator::recognize;
use nom::error::{ErrorKind, ParseError};
use nom::number::complete::recognize_float;
use nom::sequence::{delimited, pair, preceded};
use nom::{IResult, Parser};

/// How deep calls may nest (`a(b(c(x)))` is 3). Parsing and evaluating
/// recurse once per level on a render thread's 2 MiB stack, and a stack
/// overflow aborts the whole daemon, so the depth is bounded well inside
/// what that stack holds: a test parses and evaluates this depth through
/// the costliest function families on such a thread in a debug build.
/// Real targets nest a dozen deep.
pub const MAX_DEPTH: usize = 50;

/// What a target nested deeper than [`MAX_DEPTH`] is told (a test keeps
/// the number in it equal to the constant).
const TOO_DEEP: &str = "no further nesting: calls nest at most 50 levels deep (the nesting limit)";

/// A parsed target.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A metric path or glob (also a tagged name).
    Path(String),
    Call(Call),
    Str(String),
    /// An integer literal (graphite-web keeps ints and floats apart, and
    /// prints them differently in names and tags).
    Int(i64),
    Num(f64),
    Bool(bool),
    None,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub name: String,
    pub args: Vec<Expr>,
    pub kwargs: Vec<(String, Expr)>,
}

/// Why a target does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid target {target:?}: expected {expected} at character {at}")]
pub struct SyntaxError {
    pub target: String,
    pub expected: String,
    /// 1-based character position.
    pub at: usize,
}

#[derive(Debug, PartialEq)]
struct PErr<'a> {
    input: &'a str,
    expected: &'static str,
}

impl<'a> ParseError<&'a str> for PErr<'a> {
    fn from_error_kind(input: &'a str, _kind: ErrorKind) -> Self {
        PErr {
            input,
            expected: "an expression",
        }
    }
    fn append(_input: &'a str, _kind: ErrorKind, other: Self) -> Self {
        other
    }
}

type PResult<'a, T> = IResult<&'a str, T, PErr<'a>>;

fn fail<'a, T>(input: &'a str, expected: &'static str) -> PResult<'a, T> {
    Err(nom::Err::Error(PErr { input, expected }))
}

fn cut<'a, T>(input: &'a str, expected: &'static str) -> PResult<'a, T> {
    Err(nom::Err::Failure(PErr { input, expected }))
}

fn ws<'a, O>(
    inner: impl Parser<&'a str, Output = O, Error = PErr<'a>>,
) -> impl Parser<&'a str, Output = O, Error = PErr<'a>> {
    delimited(multispace0, inner, multispace0)
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn identifier(i: &str) -> PResult<'_, &str> {
    recognize(pair(take_while1(is_ident_start), take_while(is_ident))).parse(i)
}

/// Characters a path may hold outside braces (graphite-web's
/// validMetricChars, less the ones that delimit expressions).
fn is_path_char(c: char) -> bool {
    !(c.is_whitespace() || matches!(c, '(' | ')' | ',' | '\'' | '"' | '{' | '}'))
}

/// A path: runs of path characters and `{a,b}` groups (whose commas are
/// part of the path).
fn path(i: &str) -> PResult<'_, &str> {
    let start = i;
    let mut rest = i;
    loop {
        let (r, run) = take_while(is_path_char)(rest)?;
        rest = r;
        if let Some(inner) = rest.strip_prefix('{') {
            match inner.find('}') {
                Some(end) if !inner[..end].contains(['(', ')', '{']) => {
                    rest = &inner[end + 1..];
                    continue;
                }
                _ => return cut(rest, "'}' closing the '{' group"),
            }
        }
        if run.is_empty() {
            break;
        }
    }
    let len = start.len() - rest.len();
    if len == 0 {
        return fail(i, "a metric path, a function call or a literal");
    }
    Ok((rest, &start[..len]))
}

fn string(i: &str) -> PResult<'_, String> {
    let quote = match i.chars().next() {
        Some(q @ ('\'' | '"')) => q,
        _ => return fail(i, "a string"),
    };
    let body = &i[1..];
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            c if c == quote => return Ok((&body[at + 1..], out)),
            '\\' => match chars.next() {
                Some((_, e)) => {
                    // Python keeps unknown escapes (`\1` in aliasSub) as they are.
                    if e != quote && e != '\\' {
                        out.push('\\');
                    }
                    out.push(e);
                }
                None => break,
            },
            c => out.push(c),
        }
    }
    cut(&i[i.len()..], "the closing quote of a string")
}

/// A number, only when it is a whole argument (`1.5`, `-3`, `1e3`), so a
/// path such as `10.web.hits` stays a path.
fn number(i: &str) -> PResult<'_, f64> {
    let (rest, text) = recognize_float(i)?;
    let after = rest.trim_start();
    if !(after.is_empty() || after.starts_with(',') || after.starts_with(')')) {
        return fail(i, "a number");
    }
    match text.parse::<f64>() {
        Ok(v) => Ok((rest, v)),
        Err(_) => fail(i, "a number"),
    }
}

fn numeric(i: &str) -> PResult<'_, Expr> {
    let (rest, v) = number(i)?;
    let text = &i[..i.len() - rest.len()];
    if !text.contains(['.', 'e', 'E']) {
        if let Ok(n) = text.trim_start_matches('+').parse::<i64>() {
            return Ok((rest, Expr::Int(n)));
        }
    }
    Ok((rest, Expr::Num(v)))
}

fn literal_word(i: &str) -> PResult<'_, Expr> {
    let (rest, word) = identifier(i)?;
    let after = rest.trim_start();
    let whole = after.is_empty() || after.starts_with(',') || after.starts_with(')');
    match word {
        "true" | "True" if whole => Ok((rest, Expr::Bool(true))),
        "false" | "False" if whole => Ok((rest, Expr::Bool(false))),
        "None" | "none" | "null" if whole => Ok((rest, Expr::None)),
        _ => fail(i, "a literal"),
    }
}

/// A call at nesting level `depth` (1 for the outermost).
fn call(i: &str, depth: usize) -> PResult<'_, Expr> {
    let (rest, name) = identifier(i)?;
    let (rest, _) = preceded(multispace0, char('(')).parse(rest)?;
    if depth > MAX_DEPTH {
        return cut(i, TOO_DEEP);
    }
    let mut args = Vec::new();
    let mut kwargs: Vec<(String, Expr)> = Vec::new();
    let (mut rest, _) = multispace0(rest)?;
    if let Ok((r, _)) = char::<&str, PErr>(')').parse(rest) {
        return Ok((
            r,
            Expr::Call(Call {
                name: name.to_string(),
                args,
                kwargs,
            }),
        ));
    }
    loop {
        let (r, _) = multispace0(rest)?;
        rest = r;
        // key=value, where value is any expression.
        let kw: PResult<'_, &str> = (identifier, ws(char('=')), nom::combinator::not(char('=')))
            .map(|(k, _, _)| k)
            .parse(rest);
        match kw {
            Ok((r, key)) => {
                let (r, v) = expression(r, depth)?;
                kwargs.push((key.to_string(), v));
                rest = r;
            }
            Err(_) => {
                if !kwargs.is_empty() {
                    return cut(rest, "a keyword argument (positional ones go first)");
                }
                let (r, v) = expression(rest, depth)?;
                args.push(v);
                rest = r;
            }
        }
        let (r, _) = multispace0(rest)?;
        if let Some(r) = r.strip_prefix(',') {
            rest = r;
            continue;
        }
        if let Some(r) = r.strip_prefix(')') {
            return Ok((
                r,
                Expr::Call(Call {
                    name: name.to_string(),
                    args,
                    kwargs,
                }),
            ));
        }
        return cut(r, "',' or ')'");
    }
}

/// An expression inside `depth` enclosing calls. The grammar recurses only
/// here (through call arguments); strings, paths and brace groups are
/// loops.
fn expression(i: &str, depth: usize) -> PResult<'_, Expr> {
    let (i, _) = multispace0(i)?;
    let (rest, e) = alt((
        |i| call(i, depth + 1),
        string.map(Expr::Str),
        numeric,
        literal_word,
        path.map(|p: &str| Expr::Path(p.to_string())),
    ))
    .parse(i)?;
    let (rest, _) = multispace0(rest)?;
    Ok((rest, e))
}

/// Parses one whole target.
pub fn parse(target: &str) -> Result<Expr, SyntaxError> {
    let at = |rest: &str| target[..target.len() - rest.len()].chars().count() + 1;
    let target_text = excerpt(target);
    let err = |e: PErr<'_>| SyntaxError {
        target: target_text.clone(),
        expected: e.expected.to_string(),
        at: at(e.input),
    };
    match expression(target, 0) {
        Ok(("", e)) => Ok(e),
        Ok((rest, _)) => Err(SyntaxError {
            target: target_text,
            expected: "the end of the target".to_string(),
            at: at(rest),
        }),
        Err(nom::Err::Error(e)) | Err(nom::Err::Failure(e)) => Err(err(e)),
        Err(nom::Err::Incomplete(_)) => Err(SyntaxError {
            target: target_text,
            expected: "more input".to_string(),
            at: target.chars().count() + 1,
        }),
    }
}

/// The target as an error repeats it: whole up to [`EXCERPT_CHARS`]
/// characters, else its start and `...` (a 20,000-deep target is 180 KB;
/// the position in the error still counts in the whole target).
fn excerpt(target: &str) -> String {
    match target.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}...", &target[..cut]),
        None => target.to_string(),
    }
}

const EXCERPT_CHARS: usize = 200;

impl Expr {
    /// The target text graphite-web would print for this expression in a
    /// series name (`alias(x, "n")` style: strings double-quoted).
    pub fn to_target(&self) -> String {
        match self {
            Expr::Path(p) => p.clone(),
            Expr::Str(s) => format!("\"{s}\""),
            Expr::Int(n) => n.to_string(),
            Expr::Num(n) => crate::format::py_float_repr(*n),
            Expr::Bool(b) => if *b { "True" } else { "False" }.to_string(),
            Expr::None => "None".to_string(),
            Expr::Call(c) => {
                let mut parts: Vec<String> = c.args.iter().map(Expr::to_target).collect();
                parts.extend(
                    c.kwargs
                        .iter()
                        .map(|(k, v)| format!("{k}={}", v.to_target())),
                );
                format!("{}({})", c.name, parts.join(","))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Expr {
        parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn call(name: &str, args: Vec<Expr>) -> Expr {
        Expr::Call(Call {
            name: name.into(),
            args,
            kwargs: vec![],
        })
    }

    fn path(s: &str) -> Expr {
        Expr::Path(s.into())
    }

    #[test]
    fn paths_with_every_glob() {
        for s in [
            "a.b.c",
            "a.*.c",
            "a.b?.c",
            "a.b[0-9].c",
            "a.{b,c}.d",
            "{a,b}.*",
            "10.web",
            "a-b.c_d:e",
            "x;tag=v",
        ] {
            assert_eq!(p(s), path(s), "{s}");
        }
    }

    #[test]
    fn calls_literals_and_kwargs() {
        assert_eq!(
            p("sumSeries(a.*.c, b.{x,y})"),
            call("sumSeries", vec![path("a.*.c"), path("b.{x,y}")])
        );
        assert_eq!(
            p(r#"aliasSub(x, "(^.*$)", "\1 A")"#),
            call(
                "aliasSub",
                vec![
                    path("x"),
                    Expr::Str("(^.*$)".into()),
                    Expr::Str(r"\1 A".into())
                ]
            )
        );
        assert_eq!(
            p("scale(x, -1.5e2)"),
            call("scale", vec![path("x"), Expr::Num(-150.0)])
        );
        assert_eq!(
            p("limit(x, 3)"),
            call("limit", vec![path("x"), Expr::Int(3)])
        );
        assert_eq!(
            p(r"f(x, true, False, None, 'it\'s')"),
            call(
                "f",
                vec![
                    path("x"),
                    Expr::Bool(true),
                    Expr::Bool(false),
                    Expr::None,
                    Expr::Str("it's".into())
                ]
            )
        );
        let Expr::Call(c) = p("summarize(x, '1h', func='sum', alignToFrom=true)") else {
            panic!()
        };
        assert_eq!(c.args, vec![path("x"), Expr::Str("1h".into())]);
        assert_eq!(
            c.kwargs,
            vec![
                ("func".to_string(), Expr::Str("sum".into())),
                ("alignToFrom".to_string(), Expr::Bool(true))
            ]
        );
        assert_eq!(
            p("constantLine(100)"),
            call("constantLine", vec![Expr::Int(100)])
        );
        assert_eq!(p(" countSeries( ) "), call("countSeries", vec![]));
        assert_eq!(
            p("seriesByTag('name=cpu', 'dc=~us.*')"),
            call(
                "seriesByTag",
                vec![Expr::Str("name=cpu".into()), Expr::Str("dc=~us.*".into())]
            )
        );
        assert_eq!(
            p("sumSeries(scale(a,2),b)"),
            call(
                "sumSeries",
                vec![call("scale", vec![path("a"), Expr::Int(2)]), path("b")]
            )
        );
    }

    #[test]
    fn errors_name_what_and_where() {
        let e = parse("sumSeries(a.b").unwrap_err();
        assert_eq!((e.expected.as_str(), e.at), ("',' or ')'", 14), "{e}");
        let e = parse("alias(a, 'x)").unwrap_err();
        assert!(e.expected.contains("closing quote"), "{e}");
        let e = parse("a.b)").unwrap_err();
        assert_eq!(e.at, 4, "{e}");
        let e = parse("").unwrap_err();
        assert_eq!(e.at, 1, "{e}");
        let e = parse("f(x=1, y)").unwrap_err();
        assert!(e.expected.contains("keyword"), "{e}");
        let e = parse("a.{b,c").unwrap_err();
        assert!(e.expected.contains('}'), "{e}");
        assert!(parse("f(,)").is_err());
        assert!(parse("((").is_err());
    }

    fn nested(depth: usize, inner: &str) -> String {
        format!("{}{inner}{}", "scale(".repeat(depth), ",2)".repeat(depth))
    }

    #[test]
    fn nesting_up_to_the_limit_parses() {
        let Expr::Call(mut c) = p(&nested(MAX_DEPTH, "a.b")) else {
            panic!()
        };
        let mut depth = 1;
        while let Expr::Call(inner) = c.args.remove(0) {
            (c, depth) = (inner, depth + 1);
        }
        assert_eq!(depth, MAX_DEPTH);
        assert!(TOO_DEEP.contains(&format!(" {MAX_DEPTH} ")), "{TOO_DEEP}");
    }

    /// 20,000 levels overflowed the parser's stack and aborted the daemon;
    /// now any depth past the limit is a syntax error naming the limit, at
    /// the call that goes one level too deep. Run on a thread with the
    /// stack a render thread has.
    #[test]
    fn nesting_past_the_limit_is_an_error_naming_it() {
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(|| {
                for (depth, inner) in [
                    (MAX_DEPTH + 1, "a.b".to_string()),
                    (20_000, "a.b".to_string()),
                    (20_000, "'x'".to_string()),
                ] {
                    let e = parse(&nested(depth, &inner)).unwrap_err();
                    assert!(e.expected.contains("nesting limit"), "{e}");
                    assert!(e.to_string().len() < 400, "{e}");
                    assert_eq!(e.at, MAX_DEPTH * "scale(".len() + 1, "{e}");
                }
                // Keyword values and later arguments nest the same way.
                let kw = format!("{}x{}", "f(a, k=".repeat(20_000), ")".repeat(20_000));
                assert!(parse(&kw).unwrap_err().expected.contains("nesting limit"));
                // Unclosed parentheses alone never recurse past the limit.
                assert!(parse(&"f(".repeat(20_000)).is_err());
                assert!(parse(&"(".repeat(20_000)).is_err());
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
