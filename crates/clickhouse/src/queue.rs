//! Batches waiting for ClickHouse while it cannot take them, on disk: one
//! file per batch under `data_dir/clickhouse-queue/`, named by sequence,
//! written whole (a temp file, fsync, rename) and removed once inserted,
//! oldest first. It survives a restart: files left there are sent first.
//!
//! Files of our own rather than a RocksDB family: each batch is written
//! once, read once and deleted whole, in order; a file per batch is exactly
//! that, with nothing to compact, and it stays out of the embedded store's
//! write path and format.
//!
//! A file: `rollupq1`, then little-endian u64 points, i64 when the batch
//! was cut (unix seconds), u32 tables, and per table u32 name length, name,
//! u64 rows length, rows (TabSeparated); last, the xxh3-64 of all before it.
//! A file that does not check out is renamed `*.bad`, logged and skipped.

use std::collections::VecDeque;
use std::io::Write as _;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"rollupq1";

/// Rows for ClickHouse: per table (`db.table`), TabSeparated rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    pub points: u64,
    /// When the batch was cut, unix seconds.
    pub made: i64,
    pub tables: Vec<(String, Vec<u8>)>,
}

impl Batch {
    pub fn bytes(&self) -> u64 {
        self.tables
            .iter()
            .map(|(t, r)| (t.len() + r.len() + 12) as u64)
            .sum::<u64>()
            + 36
    }

    #[expect(
        clippy::cast_possible_truncation,
        reason = "a batch has one table per retention and method of the rules plus the \
                  index, tagged, links and histogram tables, and each name is the \
                  configured database's `db.table`: both far below u32::MAX"
    )]
    fn encode(&self) -> Vec<u8> {
        // Only a capacity hint: a size past usize::MAX could not be in memory.
        let mut out = Vec::with_capacity(usize::try_from(self.bytes()).unwrap_or(0));
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.points.to_le_bytes());
        out.extend_from_slice(&self.made.to_le_bytes());
        out.extend_from_slice(&(self.tables.len() as u32).to_le_bytes());
        for (t, rows) in &self.tables {
            out.extend_from_slice(&(t.len() as u32).to_le_bytes());
            out.extend_from_slice(t.as_bytes());
            out.extend_from_slice(&(rows.len() as u64).to_le_bytes());
            out.extend_from_slice(rows);
        }
        let sum = xxhash_rust::xxh3::xxh3_64(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    fn decode(b: &[u8]) -> Option<Batch> {
        let (body, sum) = b.split_at_checked(b.len().checked_sub(8)?)?;
        if xxhash_rust::xxh3::xxh3_64(body).to_le_bytes() != sum {
            return None;
        }
        let mut r = Reader(body.strip_prefix(MAGIC.as_slice())?);
        let points = u64::from_le_bytes(r.take(8)?.try_into().ok()?);
        let made = i64::from_le_bytes(r.take(8)?.try_into().ok()?);
        let n = u32::from_le_bytes(r.take(4)?.try_into().ok()?);
        let mut tables = Vec::new();
        for _ in 0..n {
            let len = u32::from_le_bytes(r.take(4)?.try_into().ok()?) as usize;
            let name = String::from_utf8(r.take(len)?.to_vec()).ok()?;
            let len = usize::try_from(u64::from_le_bytes(r.take(8)?.try_into().ok()?)).ok()?;
            tables.push((name, r.take(len)?.to_vec()));
        }
        r.0.is_empty().then_some(Batch {
            points,
            made,
            tables,
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (a, b) = self.0.split_at_checked(n)?;
        self.0 = b;
        Some(a)
    }
}

/// One queued file.
#[derive(Debug, Clone, Copy)]
struct Entry {
    seq: u64,
    bytes: u64,
    points: u64,
    made: i64,
}

pub struct Queue {
    dir: PathBuf,
    entries: VecDeque<Entry>,
    bytes: u64,
    max_bytes: u64,
    next_seq: u64,
}

/// What the queue holds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Depth {
    pub batches: u64,
    pub bytes: u64,
    pub points: u64,
    /// When its oldest batch was cut (unix seconds), if any.
    pub oldest: Option<i64>,
}

impl Queue {
    /// The queue in `dir` (made if missing), with the batches a last run
    /// left there.
    pub fn open(dir: &Path, max_bytes: u64) -> std::io::Result<Queue> {
        std::fs::create_dir_all(dir)?;
        let mut found: Vec<u64> = Vec::new();
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let name = e.file_name();
            let name = name.to_string_lossy();
            if let Some(seq) = name.strip_suffix(".batch").and_then(|s| s.parse().ok()) {
                found.push(seq);
            } else if name.ends_with(".tmp") {
                // A batch whose write did not finish: never acknowledged.
                let _ = std::fs::remove_file(e.path());
            }
        }
        found.sort_unstable();
        let mut q = Queue {
            dir: dir.to_path_buf(),
            entries: VecDeque::new(),
            bytes: 0,
            max_bytes,
            next_seq: found.last().map_or(0, |s| s + 1),
        };
        for seq in found {
            match q.read(seq) {
                Some(b) => {
                    let e = Entry {
                        seq,
                        bytes: b.bytes(),
                        points: b.points,
                        made: b.made,
                    };
                    q.bytes += e.bytes;
                    q.entries.push_back(e);
                }
                None => q.set_aside(seq),
            }
        }
        Ok(q)
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}.batch"))
    }

    fn read(&self, seq: u64) -> Option<Batch> {
        Batch::decode(&std::fs::read(self.path(seq)).ok()?)
    }

    fn set_aside(&self, seq: u64) {
        let from = self.path(seq);
        let to = from.with_extension("bad");
        tracing::error!(file = %from.display(), "clickhouse queue: a batch file does not check out; set aside as .bad, not sent");
        let _ = std::fs::rename(from, to);
    }

    /// Adds `b` at the back, on disk. `Ok(false)`: it would pass the cap,
    /// and is not kept.
    pub fn push(&mut self, b: &Batch) -> std::io::Result<bool> {
        let bytes = b.bytes();
        if self.bytes + bytes > self.max_bytes {
            return Ok(false);
        }
        let seq = self.next_seq;
        self.write_whole(seq, b)?;
        self.next_seq += 1;
        self.bytes += bytes;
        self.entries.push_back(Entry {
            seq,
            bytes,
            points: b.points,
            made: b.made,
        });
        Ok(true)
    }

    /// The oldest batch, read back (a file that does not check out is set
    /// aside and the next one read).
    pub fn front(&mut self) -> Option<Batch> {
        while let Some(e) = self.entries.front().copied() {
            if let Some(b) = self.read(e.seq) {
                return Some(b);
            }
            self.set_aside(e.seq);
            self.drop_front();
        }
        None
    }

    /// Writes `b` in place of the oldest batch (what is left of it after a
    /// partial insert).
    pub fn replace_front(&mut self, b: &Batch) -> std::io::Result<()> {
        let Some(e) = self.entries.front_mut() else {
            return Ok(());
        };
        let seq = e.seq;
        self.write_whole(seq, b)?;
        let Some(e) = self.entries.front_mut() else {
            return Ok(());
        };
        let bytes = b.bytes();
        self.bytes = self.bytes - e.bytes + bytes;
        e.bytes = bytes;
        e.points = b.points;
        Ok(())
    }

    /// Writes batch `seq` whole: a temp file, fsynced, renamed into place,
    /// and the directory synced so the rename is on disk too.
    fn write_whole(&self, seq: u64, b: &Batch) -> std::io::Result<()> {
        let path = self.path(seq);
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&b.encode())?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &path)?;
        if let Ok(d) = std::fs::File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Removes the oldest batch (once inserted).
    pub fn pop_front(&mut self) {
        if let Some(e) = self.entries.front() {
            let _ = std::fs::remove_file(self.path(e.seq));
        }
        self.drop_front();
    }

    fn drop_front(&mut self) {
        if let Some(e) = self.entries.pop_front() {
            self.bytes -= e.bytes;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn depth(&self) -> Depth {
        Depth {
            batches: self.entries.len() as u64,
            bytes: self.bytes,
            points: self.entries.iter().map(|e| e.points).sum(),
            oldest: self.entries.front().map(|e| e.made),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(n: u64) -> Batch {
        Batch {
            points: n,
            made: 1_700_000_000 + n.cast_signed(),
            tables: vec![
                (
                    "g.points_sum".into(),
                    format!("a.b\t{n}\t1\t1970-01-01\t1\n").into_bytes(),
                ),
                (
                    "g.graphite_index".into(),
                    b"1970-02-12\t20001\ta.\t1\n".to_vec(),
                ),
            ],
        }
    }

    #[test]
    fn batches_come_back_oldest_first_across_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(dir.path(), 1 << 20).unwrap();
        for n in 1..=3 {
            assert!(q.push(&batch(n)).unwrap());
        }
        assert_eq!(q.depth().batches, 3);
        assert_eq!(q.depth().points, 6);
        assert_eq!(q.front(), Some(batch(1)));
        q.pop_front();
        drop(q);
        // A half-written batch of a crashed run is no batch.
        std::fs::write(dir.path().join("00000000000000000009.tmp"), b"rollupq1").unwrap();
        let mut q = Queue::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(q.depth().batches, 2);
        assert_eq!(q.depth().oldest, Some(1_700_000_002));
        assert_eq!(q.front(), Some(batch(2)));
        q.pop_front();
        assert!(q.push(&batch(4)).unwrap());
        assert_eq!(q.front(), Some(batch(3)));
        q.pop_front();
        assert_eq!(q.front(), Some(batch(4)));
        q.pop_front();
        assert!(q.is_empty() && q.front().is_none());
        assert_eq!(q.depth(), Depth::default());
    }

    #[test]
    fn past_the_cap_a_batch_is_refused_and_a_damaged_file_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let one = batch(1).bytes();
        let mut q = Queue::open(dir.path(), one * 2).unwrap();
        assert!(q.push(&batch(1)).unwrap());
        assert!(q.push(&batch(2)).unwrap());
        assert!(!q.push(&batch(3)).unwrap(), "past the cap");
        // Flip a byte of the first file: it is set aside, the second comes.
        let first = dir.path().join(format!("{:020}.batch", 0));
        let mut b = std::fs::read(&first).unwrap();
        b[20] ^= 1;
        std::fs::write(&first, b).unwrap();
        assert_eq!(q.front(), Some(batch(2)));
        assert!(dir.path().join(format!("{:020}.bad", 0)).exists());
        // Truncated or garbage files never decode.
        assert!(Batch::decode(b"").is_none());
        assert!(Batch::decode(&batch(1).encode()[..30]).is_none());
    }
}
