//! JSON replies and their JSONP form. graphite-web echoes `jsonp=<callback>`
//! unchecked at the head of the reply, which lets anyone who can get a
//! link clicked run script in the origin of whatever serves the reply; a
//! callback here must be a (dotted) JavaScript identifier.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::render::Params;

/// Longest callback accepted: generated callbacks (jQuery's
/// `jQuery3510...._1700000000000`) are under 64 characters.
pub const MAX_CALLBACK_LEN: usize = 128;

/// The request's JSONP callback, checked: `None` when absent or empty
/// (graphite-web's `if jsonp:`), a 400 naming `jsonp` when it is anything
/// but dot-separated identifiers of ASCII letters, digits, `_` and `$`,
/// none starting with a digit. Checked before any work is done.
pub fn jsonp(p: &Params) -> Result<Option<&str>, ApiError> {
    match p.get("jsonp") {
        None | Some("") => Ok(None),
        Some(cb) if is_callback(cb) => Ok(Some(cb)),
        // The value is not repeated: an error must not echo it either.
        Some(_) => Err(ApiError::BadRequest(format!(
            "jsonp must be a JavaScript function name (letters, digits, _, $ and dots, not \
             starting with a digit, at most {MAX_CALLBACK_LEN} characters)"
        ))),
    }
}

fn is_callback(cb: &str) -> bool {
    cb.len() <= MAX_CALLBACK_LEN
        && cb.split('.').all(|part| {
            let mut chars = part.chars();
            matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == '$')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        })
}

/// A value quoted back in an error message, cut so that an error cannot
/// be used to echo a large value either.
pub fn shorten(v: &str) -> String {
    const KEEP: usize = 64;
    match v.char_indices().nth(KEEP) {
        Some((i, _)) => format!("{}...", &v[..i]),
        None => v.to_string(),
    }
}

/// `body` (JSON text) as `application/json`, or wrapped in the checked
/// callback as `text/javascript` (what a `<script>` tag loads).
pub fn json(body: String, callback: Option<&str>) -> Response {
    match callback {
        Some(cb) => javascript(format!("{cb}({body})")),
        None => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
    }
}

/// A JSONP reply.
pub fn javascript(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/javascript")], body).into_response()
}

/// Every reply says `X-Content-Type-Options: nosniff`, so a browser runs
/// or renders a reply only as what its content type says it is (a JSON
/// reply is never taken for a script or a page).
pub async fn nosniff(mut r: Response) -> Response {
    r.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callbacks_are_identifiers() {
        for ok in [
            "cb",
            "_cb",
            "$",
            "jQuery3510123_1700000000000",
            "a.b.c",
            "ns.$cb1",
        ] {
            assert!(is_callback(ok), "{ok}");
        }
        for bad in [
            "<script>alert(1)</script>",
            "1cb",
            "a.1b",
            "a..b",
            ".a",
            "a.",
            "a b",
            "a(b)",
            "a;b",
            "é",
            "a-b",
            &"x".repeat(MAX_CALLBACK_LEN + 1),
        ] {
            assert!(!is_callback(bad), "{bad}");
        }
        assert!(is_callback(&"x".repeat(MAX_CALLBACK_LEN)));
        assert_eq!(shorten(&"y".repeat(100)).len(), 67);
    }
}
