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

#[test]
fn top_level_modules_have_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let g = graph(&src);
    // The graph is real: the daemon wires the stages together.
    assert!(g["daemon"].contains_key("store"), "{g:?}");
    let cycles = cycle_edges(&g);
    assert!(cycles.is_empty(), "module cycles:\n{}", cycles.join("\n"));
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
