//! ARCHITECTURE.md's "no module cycles", checked on the source: every
//! `crate::<module>` path in `src/` (tests and doc links included, as a
//! workspace split would need them) is an edge between top-level modules,
//! and the graph they make must have no cycle. A cycle is what stops a
//! module from becoming a crate of its own.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level module -> module it names -> where (file:line), first few.
type Graph = BTreeMap<String, BTreeMap<String, Vec<String>>>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The identifiers that follow `crate::` on a line.
fn crate_paths(line: &str) -> impl Iterator<Item = &str> + '_ {
    line.match_indices("crate::").filter_map(move |(at, _)| {
        // `rollupd_crate::x` or `my_crate::x` are not ours.
        let before = line[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            return None;
        }
        let rest = &line[at + "crate::".len()..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        (end > 0).then(|| &rest[..end])
    })
}

fn graph(src: &Path) -> Graph {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut g = Graph::new();
    for file in files {
        let rel = file.strip_prefix(src).expect("under src");
        let first = rel.components().next().expect("a component");
        let top = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        // The crate root and the binaries sit above every module.
        if matches!(top.as_str(), "lib" | "main" | "bin") {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read a source file");
        for (n, line) in text.lines().enumerate() {
            for to in crate_paths(line) {
                if to != top {
                    let at = g
                        .entry(top.clone())
                        .or_default()
                        .entry(to.to_string())
                        .or_default();
                    if at.len() < 3 {
                        at.push(format!("{}:{}", file.display(), n + 1));
                    }
                }
            }
        }
    }
    g
}

/// Modules reachable from `from`.
fn reach(g: &Graph, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![from.to_string()];
    while let Some(m) = stack.pop() {
        for next in g.get(&m).into_iter().flat_map(|e| e.keys()) {
            if seen.insert(next.clone()) {
                stack.push(next.clone());
            }
        }
    }
    seen
}

/// Every edge that closes a cycle, with where it is named.
fn cycle_edges(g: &Graph) -> Vec<String> {
    let mut out = Vec::new();
    for (from, edges) in g {
        for (to, at) in edges {
            if reach(g, to).contains(from) {
                out.push(format!("{from} -> {to} ({})", at.join(", ")));
            }
        }
    }
    out
}

/// The daemon's `src/` and each crate's `src/` under `crates/`.
fn crate_sources() -> Vec<(String, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = vec![("rollupd".to_string(), root.join("src"))];
    for entry in std::fs::read_dir(root.join("crates")).expect("read crates") {
        let dir = entry.expect("entry").path();
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        out.push((name, dir.join("src")));
    }
    out.sort();
    out
}

#[test]
fn top_level_modules_have_no_cycle() {
    let crates = crate_sources();
    assert!(crates.len() > 8, "{crates:?}");
    for (name, src) in &crates {
        let g = graph(src);
        if name == "rollupd" {
            // The graph is real: the daemon wires the stages together.
            assert!(g["daemon"].contains_key("store"), "{g:?}");
        }
        let cycles = cycle_edges(&g);
        assert!(
            cycles.is_empty(),
            "module cycles in {name}:\n{}",
            cycles.join("\n")
        );
    }
}

/// Each crate's dependencies by name, from its manifest.
fn dependencies(crate_dir: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(crate_dir.join("Cargo.toml")).expect("a manifest");
    let manifest: toml::Table = text.parse().expect("a manifest that parses");
    manifest
        .get("dependencies")
        .and_then(|d| d.as_table())
        .map(|d| d.keys().cloned().collect())
        .unwrap_or_default()
}

/// What the workspace split is for: only the engine crates compile C++ or
/// talk to a server, so everything else builds and tests in seconds.
#[test]
fn only_the_engine_crates_name_rocksdb_or_a_server() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut seen = 0;
    for (name, src) in crate_sources() {
        if name == "rollupd" {
            continue;
        }
        let deps = dependencies(src.parent().unwrap());
        seen += 1;
        assert_eq!(
            deps.contains("rocksdb"),
            name == "rocks",
            "{name}: {deps:?}"
        );
        assert_eq!(
            deps.contains("ureq"),
            name == "clickhouse",
            "{name}: {deps:?}"
        );
        for server in [
            "tokio",
            "axum",
            "hyper",
            "rollupd-rocks",
            "rollupd-clickhouse",
        ] {
            assert!(!deps.contains(server), "{name} depends on {server}");
        }
    }
    assert!(seen > 8);
    // The daemon reaches RocksDB only through the engine crate.
    let daemon = dependencies(root);
    assert!(
        daemon.contains("rollupd-rocks") && !daemon.contains("rocksdb"),
        "{daemon:?}"
    );
}

#[test]
fn the_checker_finds_a_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir(src.join("store")).unwrap();
    std::fs::write(
        src.join("store/mod.rs"),
        "use crate::config::StorageConfig;\n",
    )
    .unwrap();
    std::fs::write(
        src.join("config.rs"),
        "//! see [`crate::store::Store`]\nfn f() { my_crate::x(); }\n",
    )
    .unwrap();
    std::fs::write(
        src.join("lib.rs"),
        "pub mod config; pub mod store; use crate::store;\n",
    )
    .unwrap();
    let cycles = cycle_edges(&graph(src));
    assert_eq!(cycles.len(), 2, "{cycles:?}");
    assert!(
        cycles[0].starts_with("config -> store (") && cycles[0].contains("config.rs:1"),
        "{cycles:?}"
    );
    assert!(cycles[1].starts_with("store -> config ("), "{cycles:?}");
    std::fs::write(src.join("config.rs"), "fn f() {}\n").unwrap();
    assert!(cycle_edges(&graph(src)).is_empty());
}
