//! Dashboards as files: the TOML model and its checks ([`model`]), reading
//! `dashboards/*.toml` and the configured globs ([`load`]), and Grafana's
//! dashboard JSON both ways ([`grafana`]).

pub mod grafana;
pub mod load;
pub mod model;

pub use model::{Dashboard, DashboardError};
