//! What the query layer and alerts read, at the level of series: the one
//! interface a storage engine serves them. `Store`, the embedded engine,
//! implements it here; an engine on another database (ClickHouse, issue
//! 13) implements the same methods, and nothing that reads through it
//! names either.
//!
//! Series are named by `u32` handles an engine gives out from `expand`,
//! `tagged` and `find_hists` and takes back in `name` and the fetches:
//! the embedded engine's ids; another engine keeps its own table of them.

use super::index::{Found, GlobError};
use super::kv::Kv;
use super::schema::Retention;
use super::{Fetched, HistWindow, Store, StoreError};

pub trait SeriesSource: Send + Sync {
    /// The point series a Graphite glob names, at most `limit` (a
    /// `GlobError` with `too_wide` past it).
    fn expand(&self, pattern: &str, limit: usize) -> Result<Vec<u32>, GlobError>;

    /// The name of series `id` (empty for an id it never gave out).
    fn name(&self, id: u32) -> String;

    /// The point series named exactly `name`, if there is one.
    fn lookup(&self, name: &str) -> Option<u32>;

    /// Series `id`'s archives, so a read can be sized before it is made.
    fn retention(&self, id: u32) -> Option<Retention>;

    /// Series `id` over `[from, until]`, from the archive whisper would
    /// read at `now`.
    fn fetch(
        &self,
        id: u32,
        from: i64,
        until: i64,
        now: i64,
    ) -> Result<Option<Fetched>, StoreError>;

    /// [`SeriesSource::fetch`] of each of `ids` over the same window, in
    /// their order. An engine on a server answers them in one round trip
    /// (or a few) instead of one each.
    fn fetch_many(
        &self,
        ids: &[u32],
        from: i64,
        until: i64,
        now: i64,
    ) -> Result<Vec<Option<Fetched>>, StoreError> {
        ids.iter()
            .map(|&id| self.fetch(id, from, until, now))
            .collect()
    }

    /// Timer histograms under a glob: each one's path and handle, at most
    /// `limit`.
    fn find_hists(&self, pattern: &str, limit: usize) -> Result<Vec<(String, u32)>, GlobError>;

    /// Histogram series `id` over `[from, until]`, as `fetch` reads.
    fn fetch_hists(
        &self,
        id: u32,
        from: i64,
        until: i64,
        now: i64,
    ) -> Result<Option<HistWindow>, StoreError>;

    /// Tagged series whose tag `tag` has a value `keep` accepts, with their
    /// names (seriesByTag's candidates), in no particular order.
    fn tagged(&self, tag: &str, keep: &mut dyn FnMut(&str) -> bool) -> Vec<(u32, String)>;

    /// Where events are kept (`events::store` reads them).
    fn events(&self) -> &dyn Kv;

    /// The nodes a Graphite glob matches (`/metrics/find`), at most
    /// `limit`.
    fn find(&self, pattern: &str, limit: usize) -> Result<Vec<Found>, GlobError>;

    /// Tag names, ascending, to `visit` until it returns false (a listing
    /// stays bounded however many there are).
    fn visit_tag_names(&self, visit: &mut dyn FnMut(&str) -> bool);

    /// One tag's values, ascending, each with how many series hold it,
    /// until `visit` returns false.
    fn visit_tag_values(&self, tag: &str, visit: &mut dyn FnMut(&str, usize) -> bool);

    /// Every tagged series' name, until `visit` returns false.
    fn visit_tagged(&self, visit: &mut dyn FnMut(&str) -> bool);
}

impl SeriesSource for Store {
    fn expand(&self, pattern: &str, limit: usize) -> Result<Vec<u32>, GlobError> {
        self.index().expand(pattern, limit)
    }

    fn name(&self, id: u32) -> String {
        let index = self.index();
        if (id as usize) < index.len() {
            index.name(id).to_string()
        } else {
            String::new()
        }
    }

    fn lookup(&self, name: &str) -> Option<u32> {
        self.index().id(name)
    }

    fn retention(&self, id: u32) -> Option<Retention> {
        let schema = self.index().series.get(id as usize)?.schema;
        self.retention_of(schema)
    }

    fn fetch(
        &self,
        id: u32,
        from: i64,
        until: i64,
        now: i64,
    ) -> Result<Option<Fetched>, StoreError> {
        Store::fetch(self, id, from, until, now)
    }

    fn find_hists(&self, pattern: &str, limit: usize) -> Result<Vec<(String, u32)>, GlobError> {
        let index = self.index();
        // A tagged timer (`api.lat;env=prod`) is in no glob tree: its exact
        // name finds it.
        if let Some(id) = index.hist_id(pattern) {
            return Ok(vec![(pattern.to_string(), id)]);
        }
        Ok(index
            .find(pattern, limit)?
            .into_iter()
            .filter_map(|f| index.hist_id(&f.path).map(|id| (f.path, id)))
            .collect())
    }

    fn fetch_hists(
        &self,
        id: u32,
        from: i64,
        until: i64,
        now: i64,
    ) -> Result<Option<HistWindow>, StoreError> {
        Store::fetch_hists(self, id, from, until, now)
    }

    fn tagged(&self, tag: &str, keep: &mut dyn FnMut(&str) -> bool) -> Vec<(u32, String)> {
        let index = self.index();
        let mut ids: Vec<u32> = index
            .tag_values(tag)
            .filter(|(v, _)| keep(v))
            .flat_map(|(_, ids)| ids.iter().copied())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter()
            .map(|id| (id, index.name(id).to_string()))
            .collect()
    }

    fn events(&self) -> &dyn Kv {
        self.kv().as_ref()
    }

    fn find(&self, pattern: &str, limit: usize) -> Result<Vec<Found>, GlobError> {
        self.index().find(pattern, limit)
    }

    fn visit_tag_names(&self, visit: &mut dyn FnMut(&str) -> bool) {
        for t in self.index().tag_names() {
            if !visit(t) {
                return;
            }
        }
    }

    fn visit_tag_values(&self, tag: &str, visit: &mut dyn FnMut(&str, usize) -> bool) {
        for (v, ids) in self.index().tag_values(tag) {
            if !visit(v, ids.len()) {
                return;
            }
        }
    }

    fn visit_tagged(&self, visit: &mut dyn FnMut(&str) -> bool) {
        // Every tagged name has a `name` tag (its path).
        let index = self.index();
        for (_, ids) in index.tag_values("name") {
            for &id in ids {
                if !visit(index.name(id)) {
                    return;
                }
            }
        }
    }
}
