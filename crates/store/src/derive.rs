//! Derived rows: a row of values stored as its difference from what rows of
//! other series under the same key predict.
//!
//! statsd's output is full of values that other series already determine:
//! a timer's `mean` is Etsy's `sum / count`, its `count_ps` and a counter's
//! rate are `count / seconds`, `std` is within a few units in the last place
//! of what `sum_squares`, `sum` and `count` give, and a timer stat rolled up
//! from its merged histogram is that histogram's statistic. These are also
//! the values no codec shrinks (full-precision quotients cost 6 bytes a
//! point). Such a row is stored as, per point, the difference between the
//! bits of its value and of the prediction (`format 5`, docs/storage-format.md
//! Section 5.5): zeros and small numbers that pco packs into almost nothing.
//! The value is kept exactly; a prediction is only a guess that makes it
//! cheap, so a wrong guess costs bytes, never a value.
//!
//! The rules that keep a derived row readable (ARCHITECTURE.md, "Store"):
//! - A derived row is encoded against its sources' rows *as stored in the
//!   same checkpoint batch*, and its sources are sealed rows (or every row,
//!   at the final compaction), never rows still open in memory.
//! - A derived row's sources are never derived themselves, and share its
//!   schema, so retention deletes them together.
//! - Before a stored source row changes, its dependents are brought into
//!   memory, decoded against the stored sources (see `Store::pin_dependents`),
//!   and so are rewritten by the same checkpoint as the source.

use super::hist::{self, Hist};
use super::index::{Index, Stat};
use super::kv::{Kv, Space};
use super::row::{
    self, decode_presence, encode_presence, get_varint, put_varint, RowError, RowKey,
};

/// Format byte of a derived row (1 and 2 are plain value rows, 3 and 4
/// histogram rows).
pub const FORMAT_DERIVED: u8 = 5;
/// Rows with at most this many points keep their differences raw.
const RAW_MAX: usize = 4;

/// What a derived row's sources are: other value series, or a timer's
/// histogram series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    Points(u32),
    Hist(u32),
}

/// How a value is predicted from its sources in the same slot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Predictor {
    /// `num / den`: a timer's `mean` (`sum / count`) and `mean_N`.
    Ratio { num: u32, den: u32 },
    /// `of / by`: a rate, `count / seconds per step`.
    Scale { of: u32, by: f64 },
    /// `sqrt(squares / count − (sum / count)²)`: a timer's `std`.
    Spread { squares: u32, sum: u32, count: u32 },
    /// The statistic of the histogram in the same slot, computed as the
    /// store's rollup computes it (`put_point`).
    Hist { hist: u32, stat: Stat },
}

const KIND_RATIO: u8 = 1;
const KIND_SCALE: u8 = 2;
const KIND_SPREAD: u8 = 3;
const KIND_HIST: u8 = 4;
const STAT_MEAN: u8 = 0;
const STAT_STD: u8 = 1;
const STAT_QUANTILE: u8 = 2;

/// The rows of a derived row's sources at its key, in
/// [`Predictor::sources`] order: value rows, then the histogram row.
pub struct SourceRows<'a> {
    pub points: Vec<&'a [f64]>,
    pub hist: Option<&'a [Option<Hist>]>,
}

impl Predictor {
    pub fn sources(&self) -> Vec<Source> {
        match *self {
            Predictor::Ratio { num, den } => vec![Source::Points(num), Source::Points(den)],
            Predictor::Scale { of, .. } => vec![Source::Points(of)],
            Predictor::Spread {
                squares,
                sum,
                count,
            } => vec![
                Source::Points(squares),
                Source::Points(sum),
                Source::Points(count),
            ],
            Predictor::Hist { hist, .. } => vec![Source::Hist(hist)],
        }
    }

    /// The prediction for slot `i`, if the sources hold what it needs.
    fn predict(&self, rows: &SourceRows<'_>, i: usize) -> Option<f64> {
        let p = |k: usize| {
            rows.points
                .get(k)
                .and_then(|r| r.get(i))
                .copied()
                .filter(|v| !v.is_nan())
        };
        let v = match *self {
            Predictor::Ratio { .. } => p(0)? / p(1)?,
            Predictor::Scale { by, .. } => p(0)? / by,
            Predictor::Spread { .. } => {
                let (ss, s, c) = (p(0)?, p(1)?, p(2)?);
                let mean = s / c;
                (ss / c - mean * mean).max(0.0).sqrt()
            }
            Predictor::Hist { stat, .. } => {
                let h = rows.hist?.get(i)?.as_ref()?;
                match stat {
                    Stat::Quantile(q) => h.quantile(q)?,
                    Stat::Mean => h.mean()?,
                    Stat::Std => h.stdev()?,
                }
            }
        };
        (!v.is_nan()).then_some(v)
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match *self {
            Predictor::Ratio { num, den } => {
                out.push(KIND_RATIO);
                put_varint(out, num.into());
                put_varint(out, den.into());
            }
            Predictor::Scale { of, by } => {
                out.push(KIND_SCALE);
                put_varint(out, of.into());
                out.extend_from_slice(&by.to_le_bytes());
            }
            Predictor::Spread {
                squares,
                sum,
                count,
            } => {
                out.push(KIND_SPREAD);
                for id in [squares, sum, count] {
                    put_varint(out, id.into());
                }
            }
            Predictor::Hist { hist, stat } => {
                out.push(KIND_HIST);
                put_varint(out, hist.into());
                match stat {
                    Stat::Mean => out.push(STAT_MEAN),
                    Stat::Std => out.push(STAT_STD),
                    Stat::Quantile(q) => {
                        out.push(STAT_QUANTILE);
                        out.extend_from_slice(&q.to_le_bytes());
                    }
                }
            }
        }
    }

    fn decode(buf: &mut &[u8]) -> Result<Predictor, RowError> {
        let id = |buf: &mut &[u8]| -> Result<u32, RowError> {
            get_varint(buf)
                .and_then(|v| u32::try_from(v).ok())
                .ok_or(RowError::Truncated)
        };
        let float = |buf: &mut &[u8]| -> Result<f64, RowError> {
            let (b, rest) = buf.split_first_chunk::<8>().ok_or(RowError::Truncated)?;
            *buf = rest;
            Ok(f64::from_le_bytes(*b))
        };
        let (&kind, rest) = buf.split_first().ok_or(RowError::Truncated)?;
        *buf = rest;
        Ok(match kind {
            KIND_RATIO => Predictor::Ratio {
                num: id(buf)?,
                den: id(buf)?,
            },
            KIND_SCALE => Predictor::Scale {
                of: id(buf)?,
                by: float(buf)?,
            },
            KIND_SPREAD => Predictor::Spread {
                squares: id(buf)?,
                sum: id(buf)?,
                count: id(buf)?,
            },
            KIND_HIST => {
                let hist = id(buf)?;
                let (&s, rest) = buf.split_first().ok_or(RowError::Truncated)?;
                *buf = rest;
                let stat = match s {
                    STAT_MEAN => Stat::Mean,
                    STAT_STD => Stat::Std,
                    STAT_QUANTILE => Stat::Quantile(float(buf)?),
                    other => return Err(RowError::Format(other)),
                };
                Predictor::Hist { hist, stat }
            }
            other => return Err(RowError::Format(other)),
        })
    }
}

/// A series path and its tag suffix (`;k=v...`, or empty).
fn split_tags(name: &str) -> (&str, &str) {
    match name.find(';') {
        Some(i) => name.split_at(i),
        None => (name, ""),
    }
}

/// The sibling of `name` with its last path level replaced by `last`.
fn sibling(index: &Index, name: &str, last: &str) -> Option<u32> {
    let (path, tags) = split_tags(name);
    let (base, _) = path.rsplit_once('.')?;
    index.id(&format!("{base}.{last}{tags}"))
}

/// What a value series' rows in `archive` (of step `step` seconds) are
/// tried against, from the series' links (histogram, count) and the field
/// names of a timer's branch; `None`
/// for a series nothing predicts. Sources share the series' schema and are
/// never predicted themselves.
pub fn predictor(index: &Index, id: u32, archive: usize, step: u32) -> Option<Predictor> {
    let pred = candidate(index, id, archive, step)?;
    let schema = index.series.get(id as usize)?.schema;
    let fits = pred.sources().into_iter().all(|s| match s {
        Source::Points(p) => {
            p != id
                && index.series.get(p as usize).map(|s| s.schema) == Some(schema)
                && candidate(index, p, archive, step).is_none()
        }
        Source::Hist(h) => index.hists.get(h as usize).map(|h| h.schema) == Some(schema),
    });
    fits.then_some(pred)
}

fn candidate(index: &Index, id: u32, archive: usize, step: u32) -> Option<Predictor> {
    let info = index.series.get(id as usize)?;
    if archive > 0 {
        // Rolled up from the merged histogram (put_point): exactly its stat.
        if let Some((hist, stat)) = info.link() {
            return Some(Predictor::Hist { hist, stat });
        }
    }
    // A rate the emitter linked to its count.
    if let Some(count) = info.rate_of() {
        return Some(Predictor::Scale {
            of: count,
            by: f64::from(step),
        });
    }
    // A timer's mean and standard deviation from its sums and count: the
    // fields of one timer branch, named alike in every namespace.
    let name = index.name(id);
    let (path, _) = split_tags(name);
    let last = path.rsplit_once('.').map_or(path, |(_, l)| l);
    match last {
        "mean" => Some(Predictor::Ratio {
            num: sibling(index, name, "sum")?,
            den: sibling(index, name, "count")?,
        }),
        "std" => Some(Predictor::Spread {
            squares: sibling(index, name, "sum_squares")?,
            sum: sibling(index, name, "sum")?,
            count: sibling(index, name, "count")?,
        }),
        _ => {
            let pct = last.strip_prefix("mean_")?;
            Some(Predictor::Ratio {
                num: sibling(index, name, &format!("sum_{pct}"))?,
                den: sibling(index, name, &format!("count_{pct}"))?,
            })
        }
    }
}

/// The value series whose rows may be derived from `source`: what must be
/// pinned in memory before a stored row of `source` changes. The inverse of
/// [`predictor`]'s links and naming rules (a test holds them together).
pub fn dependents(index: &Index, source: Source) -> Vec<u32> {
    let mut out: Vec<u32> = Vec::new();
    match source {
        Source::Hist(h) => out.extend(index.linked_to_hist(h)),
        Source::Points(p) => {
            if index.series.get(p as usize).is_none() {
                return out;
            }
            out.extend(index.rates_of(p));
            let name = index.name(p);
            let (path, _) = split_tags(name);
            let last = path.rsplit_once('.').map_or(path, |(_, l)| l);
            let names: Vec<String> = match last {
                "sum" => vec!["mean".into(), "std".into()],
                "count" => vec!["mean".into(), "std".into()],
                "sum_squares" => vec!["std".into()],
                _ => match last.strip_prefix("sum_").or(last.strip_prefix("count_")) {
                    Some(pct) => vec![format!("mean_{pct}")],
                    None => vec![],
                },
            };
            out.extend(names.iter().filter_map(|n| sibling(index, name, n)));
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Encodes `slots` as a derived row against `rows`, or `None` when no
/// point is predicted (the plain form is then the right one).
pub fn encode(slots: &[f64], pred: &Predictor, rows: &SourceRows<'_>) -> Option<Vec<u8>> {
    let mut out = vec![FORMAT_DERIVED];
    let count = encode_presence(&mut out, slots.iter().map(|v| !v.is_nan()));
    let guesses: Vec<Option<f64>> = slots
        .iter()
        .enumerate()
        .map(|(i, v)| {
            if v.is_nan() {
                None
            } else {
                pred.predict(rows, i)
            }
        })
        .collect();
    // Which points are predicted, as runs over the points (not the slots),
    // so a gappy row does not pay for its gaps twice.
    let predicted = encode_presence(
        &mut out,
        slots
            .iter()
            .zip(&guesses)
            .filter(|(v, _)| !v.is_nan())
            .map(|(_, g)| g.is_some()),
    );
    if predicted == 0 {
        return None;
    }
    pred.encode(&mut out);
    let diffs: Vec<i64> = slots
        .iter()
        .zip(&guesses)
        .filter(|(v, _)| !v.is_nan())
        .map(|(v, g)| {
            let bits = v.to_bits().cast_signed();
            match g {
                Some(g) => bits.wrapping_sub(g.to_bits().cast_signed()),
                None => bits,
            }
        })
        .collect();
    if count <= RAW_MAX {
        for d in diffs {
            out.extend_from_slice(&d.to_le_bytes());
        }
    } else {
        let bytes = pco::standalone::simple_compress(&diffs, &row::pco_config()).ok()?;
        out.extend_from_slice(&bytes);
    }
    Some(out)
}

/// The sources a stored row was encoded against (none for a plain row or
/// one that does not parse; decoding reports the damage).
pub fn stored_sources(bytes: &[u8], slots: usize) -> Vec<Source> {
    let Some((&FORMAT_DERIVED, mut rest)) = bytes.split_first() else {
        return Vec::new();
    };
    let mut present = 0usize;
    if decode_presence(&mut rest, slots, |_| present += 1).is_err()
        || decode_presence(&mut rest, present, |_| {}).is_err()
    {
        return Vec::new();
    }
    Predictor::decode(&mut rest)
        .map(|p| p.sources())
        .unwrap_or_default()
}

/// Decodes a value row of any format into `slots` entries, reading a
/// derived row's sources from the engine at the same key.
pub fn decode(bytes: &[u8], slots: usize, key: RowKey, kv: &dyn Kv) -> Result<Vec<f64>, RowError> {
    if bytes.first() != Some(&FORMAT_DERIVED) {
        return row::decode(bytes, slots);
    }
    let mut rest = &bytes[1..];
    let mut present = Vec::new();
    decode_presence(&mut rest, slots, |s| present.push(s))?;
    let mut predicted = vec![false; present.len()];
    if decode_presence(&mut rest, present.len(), |p| predicted[p] = true)? == 0 {
        return Err(RowError::Source("a derived row predicts no point".into()));
    }
    let pred = Predictor::decode(&mut rest)?;
    let diffs: Vec<i64> = if present.len() <= RAW_MAX {
        if rest.len() != present.len() * 8 {
            return Err(RowError::Count {
                got: rest.len() / 8,
                want: present.len(),
            });
        }
        rest.chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect()
    } else {
        row::decompress_exact(rest, present.len())?
    };
    if diffs.len() != present.len() {
        return Err(RowError::Count {
            got: diffs.len(),
            want: present.len(),
        });
    }
    let (mut points, mut hist) = (Vec::new(), None);
    for s in pred.sources() {
        let at = |series| RowKey { series, ..key }.encode();
        let missing =
            |what: &str| RowError::Source(format!("{what} row of the same key is missing"));
        match s {
            Source::Points(p) => {
                let b = kv
                    .get(Space::Rows, &at(p))
                    .map_err(|e| RowError::Source(e.to_string()))?
                    .ok_or_else(|| missing("a source value"))?;
                if b.first() == Some(&FORMAT_DERIVED) {
                    return Err(RowError::Source("a source row is itself derived".into()));
                }
                points.push(row::decode(&b, slots)?);
            }
            Source::Hist(h) => {
                let b = kv
                    .get(Space::Hists, &at(h))
                    .map_err(|e| RowError::Source(e.to_string()))?
                    .ok_or_else(|| missing("the histogram"))?;
                hist = Some(hist::decode_row(&b, slots)?);
            }
        }
    }
    let rows = SourceRows {
        points: points.iter().map(Vec::as_slice).collect(),
        hist: hist.as_deref(),
    };
    let mut out = vec![f64::NAN; slots];
    for ((&s, d), guessed) in present.iter().zip(diffs).zip(predicted) {
        let bits = if guessed {
            let g = pred
                .predict(&rows, s)
                .ok_or_else(|| RowError::Source(format!("no prediction for slot {s}")))?;
            g.to_bits().cast_signed().wrapping_add(d)
        } else {
            d
        };
        out[s] = f64::from_bits(bits.cast_unsigned());
    }
    Ok(out)
}

/// How one snapshot row is to be derived: its predictor, and where its
/// sources are among the snapshot's value rows and histogram rows.
pub struct Plan {
    pred: Predictor,
    points: Vec<usize>,
    hist: Option<usize>,
}

/// A checkpoint snapshot's rows: key, slots, and whether the row is open.
pub type Snapshot<T> = [(RowKey, Vec<T>, bool)];

/// Chooses the rows of a checkpoint snapshot that may be stored derived:
/// sealed rows (every row with `compress_open`, the final compaction) with
/// a predictor whose sources are sealed rows with points in the same
/// snapshot, so they are written in the same batch. `step_of(schema,
/// archive)` is the archive's step in seconds.
pub fn plan(
    index: &Index,
    step_of: &dyn Fn(u16, u8) -> Option<u32>,
    rows: &Snapshot<f64>,
    hrows: &Snapshot<Option<Hist>>,
    compress_open: bool,
) -> Vec<Option<Plan>> {
    let usable = |open: bool| !open || compress_open;
    let at: std::collections::HashMap<RowKey, usize> = rows
        .iter()
        .enumerate()
        .filter(|(_, (_, s, open))| usable(*open) && s.iter().any(|v| !v.is_nan()))
        .map(|(i, (k, _, _))| (*k, i))
        .collect();
    let hat: std::collections::HashMap<RowKey, usize> = hrows
        .iter()
        .enumerate()
        .filter(|(_, (_, s, open))| usable(*open) && s.iter().any(Option::is_some))
        .map(|(i, (k, _, _))| (*k, i))
        .collect();
    rows.iter()
        .map(|(key, _, open)| {
            if !at.contains_key(key) || !usable(*open) {
                return None;
            }
            let step = step_of(key.schema, key.archive)?;
            let pred = predictor(index, key.series, key.archive as usize, step)?;
            let mut plan = Plan {
                pred,
                points: Vec::new(),
                hist: None,
            };
            for s in pred.sources() {
                match s {
                    Source::Points(p) => plan.points.push(*at.get(&RowKey { series: p, ..*key })?),
                    Source::Hist(h) => plan.hist = Some(*hat.get(&RowKey { series: h, ..*key })?),
                }
            }
            Some(plan)
        })
        .collect()
}

/// Encodes a snapshot's value rows: planned rows in the smaller of their
/// derived and plain forms, the rest as `Lane::encode` does (rows without
/// points become deletes).
pub fn encode_rows(
    rows: &Snapshot<f64>,
    hrows: &Snapshot<Option<Hist>>,
    plans: &[Option<Plan>],
    compress_open: bool,
) -> Vec<(RowKey, Option<Vec<u8>>)> {
    rows.iter()
        .zip(plans)
        .map(|((key, slots, open), plan)| {
            if !slots.iter().any(|v| !v.is_nan()) {
                return (*key, None);
            }
            let plain = if *open && !compress_open {
                row::encode_xor(slots)
            } else {
                row::encode(slots)
            };
            let derived = plan.as_ref().and_then(|p| {
                let sources = SourceRows {
                    points: p.points.iter().map(|&i| rows[i].1.as_slice()).collect(),
                    hist: p.hist.map(|i| hrows[i].1.as_slice()),
                };
                encode(slots, &p.pred, &sources)
            });
            match derived {
                Some(d) if d.len() < plain.len() => (*key, Some(d)),
                _ => (*key, Some(plain)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::Batch;
    use crate::mem::MemKv;
    use crate::schema::Method;

    /// Etsy's names for one timer (legacy and new namespaces), counters in
    /// both namespaces, a tagged timer and bystanders. Both timers' stats
    /// are linked to their histograms, and the rates to their counts, as
    /// the emitter links them.
    fn index() -> Index {
        let mut ix = Index::default();
        let add = |ix: &mut Index, n: &str| ix.add_series(n, 0, Method::Average, 0.0);
        let api = ix.add_hist("stats.timers.api", 0);
        let tagged = ix.add_hist("stats.timers.tagged;env=prod", 0);
        for stat in [
            "count",
            "count_ps",
            "sum",
            "sum_squares",
            "mean",
            "std",
            "median",
            "upper",
            "lower",
            "upper_90",
            "sum_90",
            "count_90",
            "mean_90",
            "sum_squares_90",
            "upper_99_9",
            "mean_99_9",
            "sum_99_9",
            "count_99_9",
        ] {
            let a = add(&mut ix, &format!("stats.timers.api.{stat}"));
            let t = add(&mut ix, &format!("stats.timers.tagged.{stat};env=prod"));
            if let Some(code) = crate::index::StatCode::of_field(stat) {
                assert!(ix.link(a, api, code) && ix.link(t, tagged, code));
            }
        }
        for n in [
            "stats.hits",
            "stats_counts.hits",
            "stats.hits;dc=eu",
            "stats_counts.hits;dc=eu",
            "app.counters.hits.rate",
            "app.counters.hits.count",
            "stats.gauges.q",
            "stats.lonely",
            "other.mean",
            "stats.timers.api.lat",
            "unlinked.rate",
            "unlinked.count",
        ] {
            add(&mut ix, n);
        }
        for (rate, count) in [
            ("stats.hits", "stats_counts.hits"),
            ("stats.hits;dc=eu", "stats_counts.hits;dc=eu"),
            ("app.counters.hits.rate", "app.counters.hits.count"),
            ("stats.timers.api.count_ps", "stats.timers.api.count"),
            (
                "stats.timers.tagged.count_ps;env=prod",
                "stats.timers.tagged.count;env=prod",
            ),
        ] {
            let (r, c) = (ix.id(rate).unwrap(), ix.id(count).unwrap());
            assert!(ix.link_rate(r, c), "{rate}");
        }
        ix
    }

    #[test]
    fn every_source_names_its_dependents() {
        let ix = index();
        let mut derived = 0;
        for id in 0..u32::try_from(ix.series.len()).unwrap() {
            for archive in [0, 1] {
                let Some(p) = predictor(&ix, id, archive, 10) else {
                    continue;
                };
                derived += 1;
                for s in p.sources() {
                    assert!(
                        dependents(&ix, s).contains(&id),
                        "{} at archive {archive} from {s:?} is not pinned by it",
                        ix.name(id)
                    );
                }
            }
        }
        // mean, std, count_ps, mean_90, mean_99_9 (both timers, both
        // archives), median and upper_N at 1 m, three rates.
        assert!(derived >= 20, "{derived}");
        let name = |n: &str| ix.id(n).unwrap();
        let pred = |n: &str, a| predictor(&ix, name(n), a, 10);
        assert_eq!(
            pred("stats.timers.api.mean", 0),
            Some(Predictor::Ratio {
                num: name("stats.timers.api.sum"),
                den: name("stats.timers.api.count")
            })
        );
        assert!(matches!(
            pred("stats.timers.api.upper_90", 1),
            Some(Predictor::Hist { stat: Stat::Quantile(q), .. }) if (q - 0.9).abs() < 1e-12
        ));
        // A tagged timer's stats too: the emitter links them, where Etsy's
        // naming (`<timer>.upper_90;env=prod`) could not be parsed back.
        assert!(matches!(
            pred("stats.timers.tagged.upper_99_9;env=prod", 1),
            Some(Predictor::Hist { stat: Stat::Quantile(q), .. }) if (q - 0.999).abs() < 1e-12
        ));
        assert_eq!(
            pred("stats.hits;dc=eu", 0),
            Some(Predictor::Scale {
                of: name("stats_counts.hits;dc=eu"),
                by: 10.0
            })
        );
        assert_eq!(
            pred("stats.timers.tagged.mean_90;env=prod", 0),
            Some(Predictor::Ratio {
                num: name("stats.timers.tagged.sum_90;env=prod"),
                den: name("stats.timers.tagged.count_90;env=prod")
            })
        );
        assert_eq!(
            pred("app.counters.hits.rate", 1),
            Some(Predictor::Scale {
                of: name("app.counters.hits.count"),
                by: 10.0
            })
        );
        // Nothing predicts sources, lone names, gauges or other `mean`s.
        for n in [
            "stats.timers.api.sum",
            "stats.timers.api.count",
            "stats_counts.hits",
            "stats.lonely",
            "stats.gauges.q",
            "other.mean",
            "stats.timers.api.median",
            // Named like a rate, but no emitter said so.
            "unlinked.rate",
        ] {
            assert_eq!(pred(n, 0), None, "{n}");
        }
    }

    fn put_row(kv: &MemKv, space: Space, key: RowKey, bytes: Vec<u8>) {
        let mut b = Batch::default();
        b.put(space, key.encode().to_vec(), bytes);
        kv.write(b).unwrap();
    }

    #[test]
    fn derived_rows_round_trip_bit_for_bit_and_fail_cleanly() {
        let kv = MemKv::new();
        let key = |series| RowKey {
            schema: 0,
            archive: 0,
            start: 7200,
            series,
        };
        let mut rng = fastrand::Rng::with_seed(5);
        let n = 720;
        let count: Vec<f64> = (0..n)
            .map(|i| {
                if i % 50 == 7 {
                    f64::NAN
                } else {
                    f64::from(rng.u32(1..40))
                }
            })
            .collect();
        let sum: Vec<f64> = count
            .iter()
            .map(|c| c * (rng.f64() * 300.0 * 100.0).round() / 100.0)
            .collect();
        // The values: mostly the ratio, some not (an overwrite, a slot
        // whose sources are missing).
        let mut mean: Vec<f64> = sum.iter().zip(&count).map(|(s, c)| s / c).collect();
        mean[3] = 1e300;
        mean[7] = 42.5;
        put_row(&kv, Space::Rows, key(1), row::encode(&sum));
        put_row(&kv, Space::Rows, key(2), row::encode(&count));
        let pred = Predictor::Ratio { num: 1, den: 2 };
        let rows = SourceRows {
            points: vec![&sum, &count],
            hist: None,
        };
        let bytes = encode(&mean, &pred, &rows).unwrap();
        let plain = row::encode(&mean).len();
        assert!(
            bytes.len() * 10 < plain,
            "{} bytes derived, {plain} plain",
            bytes.len()
        );
        let back = decode(&bytes, n, key(3), &kv).unwrap();
        for (a, b) in mean.iter().zip(&back) {
            assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()));
        }
        // Plain rows decode through the same door.
        assert_eq!(decode(&row::encode(&sum), n, key(1), &kv).unwrap().len(), n);
        // A missing source is an error, never made-up values.
        assert!(matches!(
            decode(&bytes, n, key(3), &MemKv::new()),
            Err(RowError::Source(_))
        ));
        // Damage is an error or a row of the right size, never a panic.
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut], n, key(3), &kv).is_err(), "cut {cut}");
        }
        for _ in 0..2000 {
            let mut b = bytes.clone();
            let at = rng.usize(1..b.len());
            b[at] ^= 1 << rng.u8(0..8);
            if let Ok(v) = decode(&b, n, key(3), &kv) {
                assert_eq!(v.len(), n);
            }
        }
        // A source that is itself derived is refused.
        put_row(&kv, Space::Rows, key(2), bytes.clone());
        assert!(decode(&bytes, n, key(3), &kv).is_err());
    }

    #[test]
    fn every_predictor_kind_round_trips() {
        let kv = MemKv::new();
        let key = |series| RowKey {
            schema: 1,
            archive: 1,
            start: 0,
            series,
        };
        let n = 30;
        let a: Vec<f64> = (0..n).map(|i| 1.0 + i as f64).collect();
        let b: Vec<f64> = (0..n).map(|i| 0.5 + i as f64 * 3.25).collect();
        let c: Vec<f64> = (0..n).map(|i| 2.0 + (i % 4) as f64).collect();
        let h: Vec<Option<Hist>> = (0..n)
            .map(|i| (i % 3 != 0).then(|| Hist::from_sorted_samples(&[1.0, 2.0 + i as f64])))
            .collect();
        put_row(&kv, Space::Rows, key(1), row::encode(&a));
        put_row(&kv, Space::Rows, key(2), row::encode(&b));
        put_row(&kv, Space::Rows, key(3), row::encode(&c));
        put_row(&kv, Space::Hists, key(4), hist::encode_row(&h));
        let values: Vec<f64> = (0..n).map(|i| (i as f64).sqrt() * 7.1).collect();
        for pred in [
            Predictor::Ratio { num: 1, den: 3 },
            Predictor::Scale { of: 2, by: 60.0 },
            Predictor::Spread {
                squares: 2,
                sum: 1,
                count: 3,
            },
            Predictor::Hist {
                hist: 4,
                stat: Stat::Mean,
            },
            Predictor::Hist {
                hist: 4,
                stat: Stat::Std,
            },
            Predictor::Hist {
                hist: 4,
                stat: Stat::Quantile(0.999),
            },
        ] {
            let rows = SourceRows {
                points: pred
                    .sources()
                    .iter()
                    .filter_map(|s| match s {
                        Source::Points(1) => Some(a.as_slice()),
                        Source::Points(2) => Some(b.as_slice()),
                        Source::Points(3) => Some(c.as_slice()),
                        _ => None,
                    })
                    .collect(),
                hist: Some(&h),
            };
            // Exact predictions and arbitrary values both come back.
            let exact: Vec<f64> = (0..n)
                .map(|i| pred.predict(&rows, i).unwrap_or(5.0))
                .collect();
            for want in [&exact, &values] {
                let bytes = encode(want, &pred, &rows).unwrap();
                let got = decode(&bytes, n, key(9), &kv).unwrap();
                for (x, y) in want.iter().zip(&got) {
                    assert_eq!(x.to_bits(), y.to_bits(), "{pred:?}");
                }
            }
        }
    }
}
