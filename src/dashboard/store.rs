//! Dashboards saved over HTTP, in the store's `dashboards` family. One key
//! per dashboard, its value the spec as JSON (the TOML's fields, as serde
//! names them: small, rare beside points, and readable with `ldb`):
//!
//! | key | value |
//! |---|---|
//! | `d` 0x00 name | `DashboardSpec` as JSON |
//!
//! The kind byte leaves room for other records in the family later.

use std::sync::Arc;

use super::model::DashboardSpec;
use crate::store::kv::{Batch, Kv, KvError, Space};

const DASHBOARD: u8 = b'd';

fn key(name: &str) -> Vec<u8> {
    let mut k = vec![DASHBOARD, 0];
    k.extend_from_slice(name.as_bytes());
    k
}

/// The dashboards family.
#[derive(Clone)]
pub struct DashboardStore {
    kv: Arc<dyn Kv>,
    shared: bool,
}

impl DashboardStore {
    pub fn new(kv: Arc<dyn Kv>) -> DashboardStore {
        DashboardStore { kv, shared: false }
    }

    /// On an engine other daemons save to as well (ClickHouse's, with
    /// `engine = "clickhouse"`): the registry reads it again every
    /// `reload_check`, so a dashboard saved through one aggregator is
    /// served by all.
    pub fn shared(kv: Arc<dyn Kv>) -> DashboardStore {
        DashboardStore { kv, shared: true }
    }

    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// Every saved dashboard: name, spec and the bytes its record holds.
    /// A record this build cannot read (written by a newer one, or
    /// damaged) is returned as an error line and skipped, not fatal.
    #[allow(clippy::type_complexity)]
    pub fn all(&self) -> Result<(Vec<(String, DashboardSpec, usize)>, Vec<String>), KvError> {
        let (from, to) = (vec![DASHBOARD, 0], vec![DASHBOARD, 1]);
        let mut out = Vec::new();
        let mut errors = Vec::new();
        self.kv.scan(Space::Dashboards, &from, &to, &mut |k, v| {
            let name = String::from_utf8_lossy(&k[2..]).into_owned();
            match serde_json::from_slice::<DashboardSpec>(v) {
                Ok(spec) => out.push((name, spec, v.len())),
                Err(e) => errors.push(format!("stored dashboard {name:?}: cannot read: {e}")),
            }
            true
        })?;
        Ok((out, errors))
    }

    /// Saves a dashboard's spec, already as JSON.
    pub fn put(&self, name: &str, json: Vec<u8>) -> Result<(), KvError> {
        let mut b = Batch::default();
        b.put(Space::Dashboards, key(name), json);
        self.kv.write(b)
    }

    pub fn delete(&self, name: &str) -> Result<(), KvError> {
        let mut b = Batch::default();
        b.delete(Space::Dashboards, key(name));
        self.kv.write(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::mem::MemKv;

    #[test]
    fn records_round_trip_and_an_unreadable_one_is_named() {
        let kv: Arc<dyn Kv> = Arc::new(MemKv::default());
        let s = DashboardStore::new(kv.clone());
        let spec = DashboardSpec {
            title: "T".into(),
            ..Default::default()
        };
        s.put("b", serde_json::to_vec(&spec).unwrap()).unwrap();
        s.put("a", serde_json::to_vec(&spec).unwrap()).unwrap();
        let mut bad = Batch::default();
        bad.put(Space::Dashboards, key("c"), b"{nope".to_vec());
        // A key of another kind is not read as a dashboard.
        bad.put(Space::Dashboards, b"x\0a".to_vec(), b"{}".to_vec());
        kv.write(bad).unwrap();
        let (all, errors) = s.all().unwrap();
        let names: Vec<&str> = all.iter().map(|(n, _, _)| n.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(all[0].1, spec);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("\"c\""), "{errors:?}");
        s.delete("a").unwrap();
        assert_eq!(s.all().unwrap().0.len(), 1);
        // The key is the kind byte, 0x00, then the name's bytes.
        assert_eq!(key("web"), b"d\0web");
    }
}
