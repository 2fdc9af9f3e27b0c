//! Support code for the rollupd fuzz targets: the invariants each target
//! checks live in [`checks`], shared with `tests/fuzz_regressions.rs`.

pub mod checks;
