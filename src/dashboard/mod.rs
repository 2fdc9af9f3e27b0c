//! Dashboards: the TOML model and its checks ([`model`]), reading
//! `dashboards/*.toml` and the configured globs ([`load`]), Grafana's
//! dashboard JSON both ways ([`grafana`]), those saved over HTTP in the
//! store ([`store`]), and the set served, kept current ([`registry`]).

pub mod grafana;
pub mod load;
pub mod model;
pub mod registry;
pub mod store;

pub use model::{Dashboard, DashboardError};
