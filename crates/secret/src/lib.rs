//! A configuration value that must never be printed: the API token today,
//! any credential tomorrow. Declaring a field as [`Secret`] is the whole
//! job: its `Debug`, `Display` and `Serialize` all print [`REDACTED`], so
//! the admin `config` command, `{:?}` of the config, log fields and error
//! messages cannot show it whatever code prints them. Reading the value
//! takes an explicit [`Secret::expose`] (or [`Secret::matches`], which
//! compares in constant time).

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use subtle::ConstantTimeEq;

/// What a secret prints as.
pub const REDACTED: &str = "<redacted>";

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for the one place that has to send or compare it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `given` is this secret, in time that depends only on the
    /// lengths (so a client timing replies cannot learn the token a byte at
    /// a time).
    pub fn matches(&self, given: &str) -> bool {
        bool::from(self.0.as_bytes().ct_eq(given.as_bytes()))
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_string())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// The redacted form, so a printed config says a secret is set without
/// saying what it is. Fed back in, it is refused (see `Deserialize`).
impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(REDACTED)
    }
}

/// A string. Every refusal names what was wrong and never the value: serde's
/// own "invalid type: integer `12345`" would put a mistyped token in the log.
impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SecretVisitor)
    }
}

struct SecretVisitor;

impl SecretVisitor {
    fn not_a_string<E: de::Error>(kind: &str) -> E {
        E::custom(format!(
            "a secret must be a string, not {kind} (value not shown)"
        ))
    }
}

impl<'de> Visitor<'de> for SecretVisitor {
    type Value = Secret;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Secret, E> {
        if v.is_empty() {
            return Err(E::custom("a secret must not be empty"));
        }
        if v == REDACTED {
            return Err(E::custom(format!(
                "a secret reads {REDACTED:?}: this is a printed copy of a config; put the real value back"
            )));
        }
        Ok(Secret(v.to_string()))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Secret, E> {
        Err(Self::not_a_string("a boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Secret, E> {
        Err(Self::not_a_string("a number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Secret, E> {
        Err(Self::not_a_string("a number"))
    }

    fn visit_i128<E: de::Error>(self, _: i128) -> Result<Secret, E> {
        Err(Self::not_a_string("a number"))
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<Secret, E> {
        Err(Self::not_a_string("a number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Secret, E> {
        Err(Self::not_a_string("a number"))
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Secret, E> {
        Err(Self::not_a_string("bytes"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Secret, E> {
        Err(Self::not_a_string("nothing"))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Secret, A::Error> {
        Err(Self::not_a_string("a list"))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, _: A) -> Result<Secret, A::Error> {
        Err(Self::not_a_string("a table"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_printed_form_is_redacted() {
        let s = Secret::new("hunter2-token");
        assert_eq!(format!("{s:?}"), REDACTED);
        assert_eq!(format!("{s}"), REDACTED);
        assert_eq!(format!("{:?}", Some(&s)), format!("Some({REDACTED})"));
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"<redacted>\"");
        assert_eq!(s.expose(), "hunter2-token");
    }

    #[test]
    fn matches_only_the_same_bytes() {
        let s = Secret::new("abc123");
        assert!(s.matches("abc123"));
        assert!(!s.matches("abc124"));
        assert!(!s.matches("abc12"));
        assert!(!s.matches("abc1234"));
        assert!(!s.matches(""));
    }

    #[test]
    fn refusals_never_echo_the_value() {
        let e = serde_json::from_str::<Secret>("987654321").unwrap_err();
        assert!(!e.to_string().contains("987654321"), "{e}");
        assert!(e.to_string().contains("string"), "{e}");
        let e = serde_json::from_str::<Secret>("[\"s3cr3t-in-a-list\"]").unwrap_err();
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
        let e = serde_json::from_str::<Secret>("\"<redacted>\"").unwrap_err();
        assert!(e.to_string().contains("real value"), "{e}");
        assert!(serde_json::from_str::<Secret>("\"\"").is_err());
        let ok: Secret = serde_json::from_str("\"tok\"").unwrap();
        assert!(ok.matches("tok"));
    }
}
