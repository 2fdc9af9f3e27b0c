//! Gauges kept across restarts: Etsy forgets every gauge when it restarts,
//! so a deploy of the daemon resets `queue.depth` to nothing until the next
//! update. rollupd writes its gauges to `data_dir/gauges.json` on shutdown
//! (and once a minute, so a crash loses at most a minute of changes) and
//! reads them back at start.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct GaugeFile {
    version: u32,
    gauges: Vec<(String, f64)>,
}

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("gauges.json")
}

/// Writes the snapshot atomically: a temporary file, synced, then renamed.
pub fn save(path: &Path, gauges: Vec<(String, f64)>) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let body =
        serde_json::to_vec(&GaugeFile { version: 1, gauges }).map_err(std::io::Error::other)?;
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&body)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Reads the snapshot; a missing file is an empty one. A damaged file is
/// moved aside (`gauges.json.corrupt`) and reported, never fatal.
pub fn load(path: &Path) -> Vec<(String, f64)> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "cannot read gauge snapshot; starting without it");
            return Vec::new();
        }
    };
    match serde_json::from_slice::<GaugeFile>(&bytes) {
        Ok(f) => f
            .gauges
            .into_iter()
            .filter(|(_, v)| v.is_finite())
            .collect(),
        Err(e) => {
            let aside = path.with_extension("json.corrupt");
            let _ = std::fs::rename(path, &aside);
            tracing::error!(path = %path.display(), moved_to = %aside.display(), error = %e, "gauge snapshot is damaged; starting without it");
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path());
        assert!(load(&p).is_empty());
        save(
            &p,
            vec![("queue.depth".into(), 327.0), ("neg".into(), -5.5)],
        )
        .unwrap();
        assert_eq!(
            load(&p),
            vec![
                ("queue.depth".to_string(), 327.0),
                ("neg".to_string(), -5.5)
            ]
        );
        std::fs::write(&p, b"{not json").unwrap();
        assert!(load(&p).is_empty());
        assert!(p.with_extension("json.corrupt").exists());
    }
}
