//! What the query layer and alerts read, at the level of series: the one
//! interface a storage engine serves them. `Store`, the embedded engine,
//! implements it here; an engine on another database (ClickHouse, issue
//! 13) implements the same methods, and nothing that reads through it
//! names either.
//!
//! Series are named by `u32` handles an engine gives out from `expand`,
//! `tagged` and `find_hists` and takes back in `name` and the fetches:
//! the embedded engine's ids; another engine keeps its own table of them.

use super::index::GlobError;
use super::kv::Kv;
use super::schema::Retention;
use super::{Fetched, HistWindow, Store, StoreError};

pub trait SeriesSource: Send + Sync {
    /// The point series a Graphite glob names, at most `limit` (a
    /// `GlobError` with `too_wide` past it).
    fn expand(&self, pattern: &str, limit: usize) -> Result<Vec<u32>, GlobError>;

    /// The name of series `id` (empty for an id it never gave out).
    fn name(&self, id: u32) -> String;

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
}
