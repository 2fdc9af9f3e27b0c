//! The aggregation key of a metric line: its name, DogStatsD tags appended
//! the way Etsy 0.9 appends them (`name;k=v;k2`), then sanitized.
//!
//! Most lines need neither tags nor sanitizing, and then the key is the name
//! as received, borrowed from the packet: no copy, no allocation. The slow
//! path writes into scratch buffers the caller reuses for every line.

use super::statsd::BadReason;

/// Reusable buffers for keys that have to be rewritten.
#[derive(Debug, Default)]
pub struct KeyBuf {
    joined: Vec<u8>,
    clean: Vec<u8>,
}

/// Bytes Etsy keeps in a key: `[a-zA-Z0-9_\-.;=]`.
#[expect(
    clippy::cast_possible_truncation,
    reason = "c < 256 by the loop's condition, so it fits a u8"
)]
const fn allowed_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric()
            || b == b'_'
            || b == b'-'
            || b == b'.'
            || b == b';'
            || b == b'=';
        c += 1;
    }
    t
}
static ALLOWED: [bool; 256] = allowed_table();

/// `ALLOWED[b]` as comparisons, so that the compiler can test 16 bytes at
/// once with vector compares (a table lookup cannot be vectorized).
fn is_allowed(b: u8) -> bool {
    b.is_ascii_alphanumeric() | (b == b'_') | (b == b'-') | (b == b'.') | (b == b';') | (b == b'=')
}

/// Whether every byte of `key` is one Etsy keeps: the check that lets most
/// keys through untouched, run on every line. Sixteen bytes at a time with
/// no early exit inside a block (which is what allows vectorizing); a
/// byte-at-a-time table lookup was a tenth of the whole ingest time.
fn all_allowed(key: &[u8]) -> bool {
    let mut blocks = key.chunks_exact(16);
    for block in &mut blocks {
        if !block.iter().fold(true, |ok, &b| ok & is_allowed(b)) {
            return false;
        }
    }
    blocks.remainder().iter().all(|&b| ALLOWED[b as usize])
}

impl KeyBuf {
    /// Builds the key for `name` with `tags`. With `sanitize` it follows
    /// Etsy's `keyNameSanitize`: runs of white space become `_`, `/` becomes
    /// `-`, and anything else outside `[a-zA-Z0-9_\-.;=]` is removed.
    /// Without it the key is kept as written but must be valid UTF-8.
    pub fn build<'a>(
        &'a mut self,
        name: &'a [u8],
        tags: Option<&[u8]>,
        sanitize: bool,
    ) -> Result<&'a [u8], BadReason> {
        let joined: &[u8] = match tags {
            None => name,
            Some(tags) => {
                self.joined.clear();
                self.joined.extend_from_slice(name);
                for tag in tags.split(|&b| b == b',') {
                    self.joined.push(b';');
                    append_tag(&mut self.joined, tag);
                }
                &self.joined
            }
        };
        if !sanitize {
            if std::str::from_utf8(joined).is_err() {
                return Err(BadReason::InvalidUtf8);
            }
            return Ok(joined);
        }
        if all_allowed(joined) {
            return Ok(joined);
        }
        let text = std::str::from_utf8(joined).map_err(|_| BadReason::InvalidUtf8)?;
        self.clean.clear();
        sanitize_into(text, &mut self.clean);
        if self.clean.is_empty() {
            return Err(BadReason::EmptyKey);
        }
        Ok(&self.clean)
    }
}

/// Etsy rewrites each tag with JS `replace`, which changes only the first
/// match: the first `;` becomes `_`, then the first `:` becomes `=`.
fn append_tag(out: &mut Vec<u8>, tag: &[u8]) {
    let start = out.len();
    out.extend_from_slice(tag);
    let t = &mut out[start..];
    if let Some(i) = t.iter().position(|&b| b == b';') {
        t[i] = b'_';
    }
    if let Some(i) = t.iter().position(|&b| b == b':') {
        t[i] = b'=';
    }
}

/// JavaScript's `\s`: ASCII white space plus the Unicode spaces.
fn is_js_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{0b}' | '\u{0c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202f}'
                | '\u{205f}'
                | '\u{3000}'
                | '\u{feff}'
    )
}

/// The three regex passes of Etsy's `sanitizeKeyName`, in one pass.
pub fn sanitize_into(text: &str, out: &mut Vec<u8>) {
    let mut in_space = false;
    for c in text.chars() {
        if is_js_space(c) {
            if !in_space {
                out.push(b'_');
            }
            in_space = true;
            continue;
        }
        in_space = false;
        if c == '/' {
            out.push(b'-');
        } else if c.is_ascii() && ALLOWED[c as usize] {
            out.push(c as u8);
        }
    }
}

/// Sanitizes a whole name (used where keys were kept raw for the admin
/// interface and must be cleaned on the way to Graphite).
pub fn sanitize(text: &str) -> String {
    let mut out = Vec::with_capacity(text.len());
    sanitize_into(text, &mut out);
    // Only ASCII bytes are ever pushed.
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, tags: Option<&str>) -> Result<String, BadReason> {
        let mut b = KeyBuf::default();
        b.build(name.as_bytes(), tags.map(str::as_bytes), true)
            .map(|k| String::from_utf8(k.to_vec()).unwrap())
    }

    #[test]
    fn plain_names_pass_through() {
        assert_eq!(key("api.latency", None).unwrap(), "api.latency");
        assert_eq!(key("a-b_c.d;e=f", None).unwrap(), "a-b_c.d;e=f");
    }

    #[test]
    fn etsy_sanitizing() {
        // From Etsy's own graphite tests and the live run.
        assert_eq!(key("fo/o", None).unwrap(), "fo-o");
        assert_eq!(key("b ar", None).unwrap(), "b_ar");
        assert_eq!(key("foo+bar", None).unwrap(), "foobar");
        assert_eq!(key("my key/x@y", None).unwrap(), "my_key-xy");
        assert_eq!(key("sp  ace.x", None).unwrap(), "sp_ace.x");
        assert_eq!(
            key("my key/with\\bad*chars!", None).unwrap(),
            "my_key-withbadchars"
        );
        assert_eq!(key("caf\u{e9}", None).unwrap(), "caf");
        assert_eq!(key("a\u{a0}\u{3000}b", None).unwrap(), "a_b");
        assert_eq!(key("a \t b", None).unwrap(), "a_b");
    }

    #[test]
    fn tags_are_appended_in_order() {
        assert_eq!(
            key("api.req", Some("env:prod,region:eu")).unwrap(),
            "api.req;env=prod;region=eu"
        );
        assert_eq!(
            key("notag", Some("prod,env:dev")).unwrap(),
            "notag;prod;env=dev"
        );
        // only the first ';' and ':' of a tag are rewritten
        assert_eq!(key("k", Some("a;b;c:d:e")).unwrap(), "k;a_b;c=de");
    }

    #[test]
    fn the_fast_check_agrees_with_the_table() {
        for b in 0..=255u8 {
            assert_eq!(is_allowed(b), ALLOWED[b as usize], "{b:#x}");
            // Every position of a vector block and of the tail.
            for at in 0..40 {
                let mut key = vec![b'a'; 40];
                key[at] = b;
                assert_eq!(all_allowed(&key), ALLOWED[b as usize], "{b:#x} at {at}");
            }
        }
        assert!(all_allowed(b""));
    }

    #[test]
    fn empty_after_sanitizing_is_bad() {
        assert_eq!(key("!!!", None), Err(BadReason::EmptyKey));
    }

    #[test]
    fn invalid_utf8_is_bad_either_way() {
        let mut b = KeyBuf::default();
        assert_eq!(b.build(b"a\xffb", None, true), Err(BadReason::InvalidUtf8));
        assert_eq!(b.build(b"a\xffb", None, false), Err(BadReason::InvalidUtf8));
        assert_eq!(b.build(b"a b", None, false).unwrap(), b"a b");
    }
}
