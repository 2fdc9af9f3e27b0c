//! One level of a Graphite glob, matched as graphite-web 1.1.10's standard
//! finder matches a path component: braces are expanded as text first
//! (innermost group first, `{}` is an empty alternative, an unclosed brace
//! is a literal), then each alternative is either a literal name (no `[`,
//! `*` or `?`) or a pattern with Python's `fnmatch` rules (`[!..]` negates,
//! `^` is an ordinary character, an unclosed `[` is a literal, a reversed
//! range such as `[z-a]` drops both its ends). A child matches the level
//! when it matches any alternative.
//!
//! Hand-written, not globset: globset has no nested braces, treats `[^..]`
//! as a negation, and rejects an unclosed `[` or a reversed range, where
//! graphite-web answers. The matching itself is the regex crate's; only
//! the translation from fnmatch to a regex is here.
//!
//! One difference, on purpose: graphite-web deletes every backslash from
//! the pattern (and then renames what matched after the pattern), while a
//! backslash here makes the next character literal. Both find a series
//! whose name holds the escaped character; here nothing else is found.

use regex::Regex;

use super::index::GlobError;

/// Brace expansion of one level stops here: `{a,b}` twenty times over is a
/// million alternatives (graphite-web would try them all).
pub const MAX_ALTERNATIVES: usize = 4096;

/// The longest level matched, in characters: room for a Grafana variable of
/// a few thousand hosts in braces. Expansion and the fnmatch translation
/// cost time in the level's length (a 300,000-character `[[[...` took 26 s
/// before this bound).
pub const MAX_LEVEL_CHARS: usize = 32 * 1024;

/// Braces nest at most this deep in one level (a `{{{..x..}}}` 200,000
/// deep expanded one group at a time, copying the level each time).
pub const MAX_BRACE_DEPTH: usize = 16;

/// Characters held by the alternatives of one level, expanded and still
/// pending, at most (8 bytes each): each alternative is a copy of the
/// level, so 200,000 alternatives of a 1.4 MB level were 2 TB and aborted
/// the process before the count of alternatives was checked.
const MAX_EXPANDED_CHARS: usize = 1 << 22;

/// One character of a level, and whether a backslash made it literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Tok {
    c: char,
    escaped: bool,
}

impl Tok {
    fn is(self, c: char) -> bool {
        !self.escaped && self.c == c
    }
}

fn tokens(level: &str) -> Vec<Tok> {
    let mut out = Vec::with_capacity(level.len());
    let mut chars = level.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            // A trailing backslash escapes nothing: it is itself.
            match chars.next() {
                Some(n) => out.push(Tok {
                    c: n,
                    escaped: true,
                }),
                None => out.push(Tok { c, escaped: true }),
            }
        } else {
            out.push(Tok { c, escaped: false });
        }
    }
    out
}

/// A compiled level: literal names looked up by hash, the rest in one
/// regex (the alternatives' fnmatch translations, anchored).
#[derive(Debug)]
pub struct LevelMatcher {
    /// Alternatives without wildcards, each one exact child name, sorted.
    pub literals: Vec<String>,
    /// The alternatives with wildcards, or None when there are none.
    pub pattern: Option<Regex>,
    /// An alternative is `**`: any number of levels (zero included), and
    /// when it is the last level, everything below them.
    pub globstar: bool,
}

impl LevelMatcher {
    /// Compiles one level; `whole` is the full pattern, for the error.
    pub fn new(whole: &str, level: &str) -> Result<LevelMatcher, GlobError> {
        let err = |why: String| GlobError {
            pattern: super::index::shown(whole),
            why,
            too_wide: false,
            unavailable: false,
        };
        if level.chars().count() > MAX_LEVEL_CHARS {
            return Err(err(format!(
                "a level is longer than {MAX_LEVEL_CHARS} characters"
            )));
        }
        let toks = tokens(level);
        if brace_depth(&toks) > MAX_BRACE_DEPTH {
            return Err(err(format!("braces nest more than {MAX_BRACE_DEPTH} deep")));
        }
        let mut alternatives = Vec::new();
        expand_braces(toks, &mut alternatives).map_err(|()| {
            err(format!(
                "expands to more than {MAX_ALTERNATIVES} alternatives (or {MAX_EXPANDED_CHARS} characters)"
            ))
        })?;
        let mut literals = Vec::new();
        let mut regexes = Vec::new();
        let mut globstar = false;
        for alt in alternatives {
            if alt.len() == 2 && alt.iter().all(|t| t.is('*')) {
                globstar = true;
            } else if alt.iter().any(|t| t.is('[') || t.is('*') || t.is('?')) {
                regexes.push(translate(&alt).map_err(err)?);
            } else {
                literals.push(alt.iter().map(|t| t.c).collect());
            }
        }
        literals.sort_unstable();
        literals.dedup();
        let pattern = if regexes.is_empty() {
            None
        } else {
            regexes.sort_unstable();
            regexes.dedup();
            let re = format!("(?s)\\A(?:{})\\z", regexes.join("|"));
            Some(Regex::new(&re).map_err(|e| err(e.to_string()))?)
        };
        Ok(LevelMatcher {
            literals,
            pattern,
            globstar,
        })
    }

    /// Whether the level is exact names only, with nothing to scan.
    pub fn is_literal(&self) -> bool {
        self.pattern.is_none() && !self.globstar
    }

    pub fn is_match(&self, child: &str) -> bool {
        // `literals` is sorted (and deduplicated) by `new`.
        self.literals
            .binary_search_by(|l| l.as_str().cmp(child))
            .is_ok()
            || self.pattern.as_ref().is_some_and(|p| p.is_match(child))
    }
}

/// graphite-web's `expand_braces`: the leftmost `{...}` holding no other
/// brace is replaced by each of its comma-separated parts, recursively,
/// and the results deduplicated. Err when there would be too many.
fn expand_braces(toks: Vec<Tok>, out: &mut Vec<Vec<Tok>>) -> Result<(), ()> {
    // Characters held in `pending` and `out`, checked before each copy.
    let mut held = toks.len();
    let mut pending = vec![toks];
    let mut seen = std::collections::HashSet::new();
    while let Some(t) = pending.pop() {
        held -= t.len();
        match innermost_group(&t) {
            None => {
                if seen.insert(t.clone()) {
                    if out.len() >= MAX_ALTERNATIVES {
                        return Err(());
                    }
                    held += t.len();
                    out.push(t);
                }
            }
            Some((open, close)) => {
                let outside = t.len() - (close + 1 - open);
                for part in t[open + 1..close].split(|x| x.is(',')) {
                    // Every pending item is at least one alternative.
                    held += outside + part.len();
                    if pending.len() + out.len() >= MAX_ALTERNATIVES * 4
                        || held > MAX_EXPANDED_CHARS
                    {
                        return Err(());
                    }
                    let mut v = Vec::with_capacity(outside + part.len());
                    v.extend_from_slice(&t[..open]);
                    v.extend_from_slice(part);
                    v.extend_from_slice(&t[close + 1..]);
                    pending.push(v);
                }
            }
        }
    }
    Ok(())
}

/// How deep unescaped braces nest (an unclosed one counts while open).
fn brace_depth(t: &[Tok]) -> usize {
    let (mut depth, mut most) = (0usize, 0usize);
    for x in t {
        if x.is('{') {
            depth += 1;
            most = most.max(depth);
        } else if x.is('}') {
            depth = depth.saturating_sub(1);
        }
    }
    most
}

/// The leftmost `{` whose group closes before another `{` opens: the
/// first match of graphite-web's `\{([^\{\}]*)\}`.
fn innermost_group(t: &[Tok]) -> Option<(usize, usize)> {
    let mut open = None;
    for (i, x) in t.iter().enumerate() {
        if x.is('{') {
            open = Some(i);
        } else if x.is('}') {
            if let Some(o) = open {
                return Some((o, i));
            }
        }
    }
    None
}

fn lit(c: char) -> String {
    format!("\\x{{{:x}}}", c as u32)
}

/// Python 3.11's `fnmatch.translate` of one alternative, as a regex body
/// for the regex crate (every literal character written as `\x{..}`, so
/// nothing in a name is read as regex syntax).
fn translate(t: &[Tok]) -> Result<String, String> {
    let mut out = String::new();
    let mut i = 0;
    let n = t.len();
    while i < n {
        let x = t[i];
        i += 1;
        if x.is('*') {
            if !out.ends_with(".*") {
                out.push_str(".*");
            }
        } else if x.is('?') {
            out.push('.');
        } else if x.is('[') {
            // The class ends at the first `]` after an optional `!` and an
            // optional `]` (which is then a member); none: a literal `[`.
            let mut j = i;
            if j < n && t[j].is('!') {
                j += 1;
            }
            if j < n && t[j].c == ']' {
                j += 1;
            }
            while j < n && !t[j].is(']') {
                j += 1;
            }
            if j >= n {
                out.push_str(&lit('['));
            } else {
                out.push_str(&class(&t[i..j])?);
                i = j + 1;
            }
        } else {
            out.push_str(&lit(x.c));
        }
    }
    Ok(out)
}

/// One bracket class body (between `[` and `]`), as fnmatch reads it:
/// a leading `!` negates; `-` between two characters is a range, except
/// first (after the `!`) or last; a range whose start is past its end
/// removes itself and both its ends (Python drops the empty range).
fn class(body: &[Tok]) -> Result<String, String> {
    let negate = body.first().is_some_and(|t| t.is('!'));
    let body = if negate { &body[1..] } else { body };
    // Chunks split at range hyphens, as fnmatch splits them: a hyphen is a
    // range hyphen when it is not the first character and the previous
    // range hyphen is at least two characters back.
    let mut chunks: Vec<Vec<Tok>> = Vec::new();
    let mut start = 0;
    let mut k = 1;
    while let Some(h) = (k..body.len()).find(|&p| body[p].is('-')) {
        chunks.push(body[start..h].to_vec());
        start = h + 1;
        k = h + 3;
    }
    let rest = body[start..].to_vec();
    if rest.is_empty() && !chunks.is_empty() {
        // A trailing hyphen is a member.
        if let Some(last) = chunks.last_mut() {
            last.push(Tok {
                c: '-',
                escaped: true,
            });
        }
    } else {
        chunks.push(rest);
    }
    // Empty ranges go, right to left, as fnmatch removes them.
    let mut k = chunks.len();
    while k > 1 {
        k -= 1;
        let (Some(a), Some(b)) = (chunks[k - 1].last(), chunks[k].first()) else {
            // Python indexes an empty chunk here and fails.
            return Err("bad character range".into());
        };
        if a.c > b.c {
            let tail = chunks.remove(k);
            chunks[k - 1].pop();
            chunks[k - 1].extend_from_slice(&tail[1..]);
        }
    }
    // Members: the chunks joined, the last of one and the first of the
    // next making a range.
    let mut items: Vec<(char, char)> = Vec::new();
    for (ci, chunk) in chunks.iter().enumerate() {
        for (pi, t) in chunk.iter().enumerate() {
            let joins_prev = ci > 0 && pi == 0;
            if joins_prev {
                // `chunk[0]` closes the range opened by the previous
                // chunk's last member, which was pushed as a single.
                let Some(&(lo, _)) = items.last() else {
                    return Err("bad character range".into());
                };
                if lo > t.c {
                    return Err(format!("bad character range {lo}-{}", t.c));
                }
                items.pop();
                items.push((lo, t.c));
            } else {
                items.push((t.c, t.c));
            }
        }
    }
    if items.is_empty() {
        // `[!]`-like bodies: a negated empty class is any character, an
        // empty one matches nothing.
        return Ok(if negate { ".".into() } else { "[a&&b]".into() });
    }
    let mut s = String::from(if negate { "[^" } else { "[" });
    for (lo, hi) in items {
        s.push_str(&lit(lo));
        if hi != lo {
            s.push('-');
            s.push_str(&lit(hi));
        }
    }
    s.push(']');
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(level: &str) -> LevelMatcher {
        LevelMatcher::new(level, level).unwrap()
    }

    fn alts(level: &str) -> Vec<String> {
        let mut out = Vec::new();
        expand_braces(tokens(level), &mut out).unwrap();
        let mut v: Vec<String> = out
            .into_iter()
            .map(|a| a.iter().map(|t| t.c).collect())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn braces_expand_as_graphite_web_expands_them() {
        assert_eq!(alts("web[1-3]{a,b}"), ["web[1-3]a", "web[1-3]b"]);
        assert_eq!(alts("{web[12],db}"), ["db", "web[12]"]);
        assert_eq!(alts("{a,{b,c}}"), ["a", "b", "c"]);
        assert_eq!(alts("x{a,{b,c}d}y"), ["xay", "xbdy", "xcdy"]);
        assert_eq!(alts("web{}1"), ["web1"]);
        assert_eq!(alts("web{,1}"), ["web", "web1"]);
        assert_eq!(alts("{a,b"), ["{a,b"]);
        assert_eq!(alts("a,b}"), ["a,b}"]);
        assert_eq!(alts("}{a,b}{"), ["}a{", "}b{"]);
        assert_eq!(alts("{a,a}"), ["a"]);
        assert_eq!(alts(r"\{a,b}"), ["{a,b}"]);
    }

    /// Each of these took seconds to minutes, or all the memory there is,
    /// before the bounds: a level 1.4 MB long in 200,000 alternatives
    /// aborted the daemon.
    #[test]
    fn hostile_levels_are_refused_before_the_work() {
        let huge: String = format!(
            "{{{}}}",
            (0..200_000)
                .map(|i| format!("x{i}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let deep = format!("{}x{}", "{".repeat(200_000), "}".repeat(200_000));
        let brackets = "[".repeat(300_000);
        for (level, why) in [
            (huge.as_str(), "longer than"),
            (deep.as_str(), "longer than"),
            (brackets.as_str(), "longer than"),
        ] {
            let e = LevelMatcher::new(level, level).unwrap_err();
            assert!(e.why.contains(why), "{}", e.why);
            assert!(
                e.to_string().len() < 400,
                "the error repeats the whole level"
            );
        }
        let nested = format!("{}x{}", "{a,".repeat(17), "}".repeat(17));
        let e = LevelMatcher::new(&nested, &nested).unwrap_err();
        assert!(e.why.contains("nest more than 16"), "{}", e.why);
        // Sixteen deep is served: `a` (deduplicated) and `x`.
        assert_eq!(
            alts(&format!("{}x{}", "{a,".repeat(16), "}".repeat(16))),
            ["a", "x"]
        );
        // Under the length bound, still more alternatives than allowed:
        // refused as the copies are made, not after.
        let wide = format!(
            "{{{}}}",
            (0..5000)
                .map(|i| format!("{i}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let e = LevelMatcher::new(&wide, &wide).unwrap_err();
        assert!(e.why.contains("alternatives"), "{}", e.why);
    }

    #[test]
    fn too_many_alternatives_is_an_error_not_a_million_strings() {
        let level = "{a,b}".repeat(20);
        let e = LevelMatcher::new(&level, &level).unwrap_err();
        assert!(e.why.contains("alternatives"), "{e}");
        assert_eq!(alts(&"{a,b}".repeat(12)).len(), 4096);
    }

    /// Expected answers are Python 3.11's `fnmatch.fnmatchcase`, which
    /// graphite-web 1.1.10 runs on each brace alternative.
    #[test]
    fn fnmatch_classes_as_python() {
        let cases: &[(&str, &str, bool)] = &[
            ("web[1-3]", "web2", true),
            ("web[1-3]", "web4", false),
            ("web[!1-3]", "web4", true),
            ("web[!1-3]", "web2", false),
            ("web[^1]", "web^", true),
            ("web[^1]", "web1", true),
            ("web[^1]", "web2", false),
            ("[a-c0-2]", "b", true),
            ("[a-c0-2]", "2", true),
            ("[a-c0-2]", "3", false),
            ("[z-a]", "z", false),
            ("[z-a]", "m", false),
            ("[c-a0-2]", "c", false),
            ("[c-a0-2]", "1", true),
            ("[!z-a]", "q", true),
            ("[]]", "]", true),
            ("[!]]", "a", true),
            ("[!]]", "]", false),
            ("[a-]", "-", true),
            ("[-a]", "-", true),
            ("[a-c-e]", "-", true),
            ("[a-c-e]", "d", false),
            ("[a-c-e]", "e", true),
            ("web[", "web[", true),
            ("web[1", "web[1", true),
            ("web[1", "web1", false),
            ("[!]", "[!]", true),
            ("w*b?", "wexb1", true),
            ("w*b?", "wb", false),
            ("*", "", true),
            ("a.c", "abc", false),
            ("[.]", ".", true),
            ("[&&]", "&", true),
            ("[a--b]", "b", true),
            ("[a--b]", "a", false),
            ("[a--b]", "-", false),
            ("[b-a-c]", "-", true),
            ("[b-a-c]", "c", true),
            ("[b-a-c]", "b", false),
            ("[!a-c-b]", "b", false),
            ("[!a-c-b]", "-", false),
            ("[!a-c-b]", "d", true),
            ("[\\w]", "w", true),
            ("x\\*", "x*", true),
            ("x\\*", "xy", false),
        ];
        for &(pat, name, want) in cases {
            let m = m(pat);
            assert_eq!(m.is_match(name), want, "{pat:?} against {name:?}");
        }
    }

    #[test]
    fn literal_alternatives_are_looked_up_not_scanned() {
        let l = m("{web1,db1}");
        assert!(l.is_literal());
        assert_eq!(l.literals, ["db1", "web1"]);
        let l = m("{web[12],db}");
        assert!(!l.is_literal());
        assert!(l.is_match("db") && l.is_match("web2") && !l.is_match("db1"));
    }
}
