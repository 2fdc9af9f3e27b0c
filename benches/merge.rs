//! `merge`: what a checkpoint's fragment merge (`store/checkpoint.rs`)
//! spends per row, piece by piece, on the ramp bench's value shapes
//! (statsd counters, gauges wandering by tenths, constants; random bits):
//! decoding the stored fragments (XOR, and pco for a row merged before),
//! the XOR encoding of the merged row, and pco's at several levels, with
//! the bytes each makes; and, for a whole 720-point row as the seal packs
//! it, pco's own search of delta encodings against `row::encode`'s
//! settings. `cargo bench --bench merge`.

use std::hint::black_box;
use std::time::Instant;

use rollupd::store::row;

/// Points a row holds at a merge: a 720-slot row is merged every fourth
/// checkpoint of 30 points, so on average when half full.
const POINTS: usize = 360;

fn shape(kind: &str, rng: &mut fastrand::Rng, points: usize) -> Vec<f64> {
    let mut v = match kind {
        "counter" => f64::from(rng.u32(0..100_000)),
        "gauge" => f64::from(rng.u32(0..10_000)) / 10.0,
        "constant" => 2.0,
        _ => 0.0,
    };
    if kind == "tenths" {
        // A rate with one decimal cycling through its range: XOR packs
        // it at 8 B a point, pco's float modes at about one.
        let mut slots = vec![f64::NAN; 720];
        for (i, s) in slots.iter_mut().take(points).enumerate() {
            *s = ((i * 37) % 90) as f64 / 10.0;
        }
        return slots;
    }
    let mut slots = vec![f64::NAN; 720];
    for s in slots.iter_mut().take(points) {
        match kind {
            "counter" => v += f64::from(rng.u32(0..=3)),
            "gauge" => v = ((v * 10.0).round() + f64::from(rng.i32(-5..=5))).max(0.0) / 10.0,
            "constant" => {}
            _ => v = f64::from_bits(rng.u64(..) >> 2) * (rng.f64() - 0.5),
        }
        *s = v;
    }
    slots
}

/// Mean µs of `f` over enough runs to take about 0.2 s.
fn time<R>(mut f: impl FnMut() -> R) -> f64 {
    let mut n = 1u32;
    loop {
        let t = Instant::now();
        for _ in 0..n {
            black_box(f());
        }
        let e = t.elapsed().as_secs_f64();
        if e > 0.2 {
            return e * 1e6 / f64::from(n);
        }
        n *= 4;
    }
}

fn pco_at(values: &[f64], level: usize) -> Vec<u8> {
    let cfg = row::pco_config().with_compression_level(level);
    pco::standalone::simple_compress(values, &cfg).unwrap_or_default()
}

fn pco_with(values: &[f64], cfg: &pco::ChunkConfig) -> Vec<u8> {
    pco::standalone::simple_compress(values, cfg).unwrap_or_default()
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let mut rng = fastrand::Rng::with_seed(7);
    for kind in ["counter", "gauge", "constant", "random"] {
        let slots = shape(kind, &mut rng, POINTS);
        let values: Vec<f64> = slots.iter().copied().filter(|v| !v.is_nan()).collect();
        let xor = row::encode_xor(&slots);
        let packed = row::encode(&slots);
        // Eight 30-point fragments, as a row's turn finds them.
        let frags: Vec<Vec<u8>> = (0..8)
            .map(|f| {
                let mut s = vec![f64::NAN; 720];
                s[f * 30..(f + 1) * 30].copy_from_slice(&slots[f * 30..(f + 1) * 30]);
                row::encode_xor(&s)
            })
            .collect();
        let mut line = format!(
            "merge[{kind}] {POINTS} points: xor {} B ({:.1} µs), decode xor {:.1} µs, 8 fragments decoded {:.1} µs, pco(row::encode) {} B ({:.1} µs), decode pco {:.1} µs",
            xor.len(),
            time(|| row::encode_xor(&slots)),
            time(|| row::decode(&xor, 720)),
            time(|| frags.iter().map(|f| row::decode(f, 720).map(|v| v.len()).unwrap_or(0)).sum::<usize>()),
            packed.len(),
            time(|| row::encode(&slots)),
            time(|| row::decode(&packed, 720)),
        );
        for level in [0, 1, 2, 4] {
            let b = pco_at(&values, level);
            line += &format!(
                ", level {level}: {} B {:.1} µs",
                b.len(),
                time(|| pco_at(&values, level))
            );
        }
        use pco::{DeltaSpec, ModeSpec};
        for (name, cfg) in [
            (
                "classic+noop",
                row::pco_config()
                    .with_mode_spec(ModeSpec::Classic)
                    .with_delta_spec(DeltaSpec::NoOp),
            ),
            (
                "classic+d1",
                row::pco_config()
                    .with_mode_spec(ModeSpec::Classic)
                    .with_delta_spec(DeltaSpec::TryConsecutive(1)),
            ),
            (
                "auto+noop",
                row::pco_config().with_delta_spec(DeltaSpec::NoOp),
            ),
            (
                "auto+d1",
                row::pco_config().with_delta_spec(DeltaSpec::TryConsecutive(1)),
            ),
            (
                "l0 auto+d1",
                row::pco_config()
                    .with_compression_level(0)
                    .with_delta_spec(DeltaSpec::TryConsecutive(1)),
            ),
        ] {
            let b = pco_with(&values, &cfg);
            line += &format!(
                ", {name}: {} B {:.1} µs",
                b.len(),
                time(|| pco_with(&values, &cfg))
            );
        }
        println!("{line}");
    }
    for kind in ["counter", "gauge", "constant", "tenths", "random"] {
        let slots = shape(kind, &mut rng, 720);
        let searched = row::encode_with(&slots, &row::pco_config());
        let sealed = row::encode(&slots);
        println!(
            "seal[{kind}] 720 points: pco's own search {} B {:.1} µs, row::encode {} B {:.1} µs",
            searched.len(),
            time(|| row::encode_with(&slots, &row::pco_config())),
            sealed.len(),
            time(|| row::encode(&slots)),
        );
    }
}
