//! The spill file: where a stopping store puts the batches its engine
//! would not take (a full disk), so they are not lost with the process.
//! Written only at shutdown, and only when the final checkpoint and a
//! last log write both failed; read back into the log at the next start
//! before anything else, then removed.
//!
//! Layout (docs/storage-format.md, "The spill file"): the magic line
//! `rollupd-spill-1\n`, then items, each a tag byte: `R` a record (space
//! byte, key length u32 LE, key, value length u32 LE, value) or `L` a log
//! entry (sequence u64 LE, length u32 LE, the entry's bytes as the log
//! holds them). It is written to a temporary name, synced and renamed, so
//! it exists whole or not at all.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::kv::Space;

const MAGIC: &[u8] = b"rollupd-spill-1\n";

#[derive(Debug, Default, PartialEq)]
pub struct Spill {
    /// Series and schema records: (space, key, value).
    pub records: Vec<(Space, Vec<u8>, Vec<u8>)>,
    /// Log entries: (sequence, bytes).
    pub entries: Vec<(u64, Vec<u8>)>,
}

#[derive(Debug, thiserror::Error)]
pub enum SpillError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is damaged at byte {at}")]
    Damaged { path: PathBuf, at: usize },
}

/// The spill file of the store in `store_dir`.
pub fn path_for(store_dir: &Path) -> PathBuf {
    let mut p = store_dir.as_os_str().to_owned();
    p.push(".spill");
    PathBuf::from(p)
}

fn space_byte(s: Space) -> u8 {
    Space::ALL
        .iter()
        .position(|x| *x == s)
        .and_then(|i| u8::try_from(i).ok())
        .unwrap_or(0)
}

impl Spill {
    #[expect(
        clippy::cast_possible_truncation,
        reason = "the store spills series and schema records (names of at most MAX_NAME_BYTES) and log entries it kept only while under MAX_UNLOGGED_BYTES (64 MiB) each"
    )]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        for (space, k, v) in &self.records {
            out.push(b'R');
            out.push(space_byte(*space));
            for part in [k, v] {
                out.extend_from_slice(&(part.len() as u32).to_le_bytes());
                out.extend_from_slice(part);
            }
        }
        for (seq, bytes) in &self.entries {
            out.push(b'L');
            out.extend_from_slice(&seq.to_le_bytes());
            out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            out.extend_from_slice(bytes);
        }
        out
    }

    /// Parses a whole spill file; `None` at the byte offset of the damage.
    pub fn decode(buf: &[u8]) -> Result<Spill, usize> {
        let mut at = MAGIC.len();
        if !buf.starts_with(MAGIC) {
            return Err(0);
        }
        let take = |at: &mut usize, n: usize| -> Result<&[u8], usize> {
            let s = buf.get(*at..at.checked_add(n).ok_or(*at)?).ok_or(*at)?;
            *at += n;
            Ok(s)
        };
        let u32_at = |at: &mut usize| -> Result<usize, usize> {
            let b = take(at, 4)?;
            Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        };
        let mut spill = Spill::default();
        while at < buf.len() {
            let item = at;
            match take(&mut at, 1)?[0] {
                b'R' => {
                    let space = *Space::ALL.get(take(&mut at, 1)?[0] as usize).ok_or(item)?;
                    let n = u32_at(&mut at)?;
                    let k = take(&mut at, n)?.to_vec();
                    let n = u32_at(&mut at)?;
                    let v = take(&mut at, n)?.to_vec();
                    spill.records.push((space, k, v));
                }
                b'L' => {
                    let seq = u64::from_le_bytes(take(&mut at, 8)?.try_into().map_err(|_| item)?);
                    let n = u32_at(&mut at)?;
                    spill.entries.push((seq, take(&mut at, n)?.to_vec()));
                }
                _ => return Err(item),
            }
        }
        Ok(spill)
    }

    /// Writes the file whole (temporary name, sync, rename, sync the
    /// directory).
    pub fn write(&self, path: &Path) -> Result<(), SpillError> {
        let io = |source| SpillError::Io {
            path: path.to_owned(),
            source,
        };
        let tmp = path.with_extension("spill.tmp");
        let result = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&self.encode())?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map_err(io)
    }

    /// Reads the spill file if there is one.
    pub fn read(path: &Path) -> Result<Option<Spill>, SpillError> {
        match std::fs::read(path) {
            Ok(buf) => Spill::decode(&buf)
                .map(Some)
                .map_err(|at| SpillError::Damaged {
                    path: path.to_owned(),
                    at,
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(SpillError::Io {
                path: path.to_owned(),
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spill_round_trips_and_any_cut_is_damage() {
        let s = Spill {
            records: vec![
                (
                    Space::Series,
                    b"pa.b".to_vec(),
                    vec![0, 0, 0, 1, 0, 0, 3, 0, 0, 0, 0],
                ),
                (Space::Meta, b"schema/\0\0".to_vec(), b"10s:1d".to_vec()),
            ],
            entries: vec![(7, vec![1, 2, 3]), (9, vec![])],
        };
        let b = s.encode();
        assert_eq!(Spill::decode(&b), Ok(s));
        for cut in 0..b.len() {
            let cut_ok = Spill::decode(&b[..cut]);
            // Cutting exactly between items leaves a shorter valid file;
            // everything else is damage.
            if let Ok(short) = cut_ok {
                assert!(short.records.len() + short.entries.len() < 4, "cut {cut}");
            }
        }
        assert!(Spill::decode(b"rollupd-spill-1\nX").is_err());
        assert!(Spill::decode(b"nope").is_err());
    }
}
