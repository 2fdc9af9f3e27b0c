//! Durations and sizes as a config file writes them (`"10s"`, `"512MiB"`),
//! as serde adapters. Every section of the config uses them, the store's
//! included, so they sit below both.

use std::time::Duration;

use serde::de::{self, Deserializer};
use serde::Deserialize;

/// Durations written like `"10s"`, `"2000ms"`, `"1m"`.
pub mod duration_str {
    use super::*;

    pub fn serialize<S: serde::Serializer>(v: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}ms", v.as_millis()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(|e| {
            de::Error::custom(format!(
                "{s:?} is not a duration like \"10s\" or \"2000ms\" ({e})"
            ))
        })
    }
}

/// An optional duration: absent, or like `"10s"`.
pub mod opt_duration_str {
    use super::*;

    pub fn serialize<S: serde::Serializer>(v: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_str(&format!("{}ms", v.as_millis())),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        super::duration_str::deserialize(d).map(Some)
    }
}

/// A size in bytes: a TOML integer, or a string of a whole number and a
/// binary unit (`"512MiB"`, `"1 GiB"`, `"4096"`, `"100B"`). Decimal units
/// (`"1GB"`) are refused rather than guessed at: 7% apart at GiB.
pub mod size_str {
    use super::*;

    const UNITS: [(&str, u32); 5] = [("B", 0), ("KiB", 10), ("MiB", 20), ("GiB", 30), ("TiB", 40)];

    /// The largest unit that divides `v` whole (`"2GiB"`, `"1536MiB"`),
    /// so what the admin `config` prints reads back the same.
    pub fn show(v: u64) -> String {
        let (unit, shift) = UNITS
            .iter()
            .rev()
            .find(|&&(_, sh)| v != 0 && v.trailing_zeros() >= sh)
            .copied()
            .unwrap_or(("B", 0));
        format!("{}{unit}", v >> shift)
    }

    pub fn parse(s: &str) -> Result<u64, String> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = (&t[..split], t[split..].trim());
        let bad = || format!("{s:?} is not a size like \"512MiB\", \"1GiB\" or a number of bytes");
        let n: u64 = num.parse().map_err(|_| bad())?;
        let shift = match unit {
            "" => 0,
            u => {
                UNITS
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(u))
                    .ok_or_else(bad)?
                    .1
            }
        };
        n.checked_mul(1 << shift)
            .ok_or_else(|| format!("{s:?} is more bytes than 64 bits hold"))
    }

    pub fn serialize<S: serde::Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&show(*v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(n) => u64::try_from(n)
                .map_err(|_| de::Error::custom(format!("{n} is not a size: it is negative"))),
            Raw::Text(t) => parse(&t).map_err(de::Error::custom),
        }
    }
}
