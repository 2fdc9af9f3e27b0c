//! What `/proc` and the file system say about this process and its data.

use std::path::Path;

/// A `/proc/self/status` field given in kB (`VmRSS`, `VmHWM`), in MiB.
pub(super) fn status_mb(field: &str) -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// Bytes this process has caused to be written to storage so far
/// (`write_bytes` of `/proc/self/io`: what reached the block layer, WAL,
/// flushes and compactions included), or 0 where the kernel does not say.
pub(super) fn write_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|rest| rest.trim().parse().ok())
        .unwrap_or(0)
}

/// Bytes allocated to the files under `dir`, as `du` counts them
/// (`st_blocks` × 512: a sparse or preallocated file counts what it holds
/// on disk, not its length).
pub(crate) fn du(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => m.blocks() * 512 + du(&e.path()),
            Ok(m) => m.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}

/// `du` of `dir` split by kind of file: RocksDB's tables (`.sst`), its
/// write-ahead log (`.log`), and the rest.
pub(super) fn du_split(dir: &Path) -> (u64, u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let mut sizes = (0, 0, 0);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return sizes;
    };
    for e in entries.flatten() {
        let Ok(m) = e.metadata() else { continue };
        if m.is_dir() {
            let (a, b, c) = du_split(&e.path());
            sizes = (sizes.0 + a, sizes.1 + b, sizes.2 + c + m.blocks() * 512);
            continue;
        }
        let name = e.file_name();
        let name = name.to_string_lossy();
        let bytes = m.blocks() * 512;
        if name.ends_with(".sst") {
            sizes.0 += bytes;
        } else if name.ends_with(".log") {
            sizes.1 += bytes;
        } else {
            sizes.2 += bytes;
        }
    }
    sizes
}
