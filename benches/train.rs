//! Training throughput: 10,000 synthetic, deterministic anomaly vectors,
//! the reference's settings (120 epochs, batch 50, 20 % validation).
//! `cargo bench --bench train`. Target: < 1 s in release.

use std::time::Instant;

use chids_detect::model::{Autoencoder, TrainConfig};

/// Deterministic vectors shaped like real AVs: FI in [0, 0.2), USI/UAI
/// mostly 0 with occasional spikes (splitmix64, no RNG crate state needed).
fn synthetic(n: usize) -> Vec<[f64; 3]> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let fi = 0.2 * next();
            let usi = if next() < 0.1 { 5.0 * next() } else { 0.0 };
            let uai = if next() < 0.05 { 20.0 * next() } else { 0.0 };
            [fi, usi, uai]
        })
        .collect()
}

fn main() {
    let vectors = synthetic(10_000);
    let cfg = TrainConfig::default();
    let mut best = f64::INFINITY;
    for run in 0..3 {
        let start = Instant::now();
        let (model, report) =
            Autoencoder::fit(&vectors, &cfg, &mut |_, _, _| {}).expect("training succeeds");
        let secs = start.elapsed().as_secs_f64();
        best = best.min(secs);
        let sample_passes = (report.train_rows * report.epochs) as f64;
        println!(
            "run {run}: {} vectors ({} train / {} val), {} epochs in {secs:.3} s = \
             {:.0} vectors/s ({:.0} training samples/s); loss {:.5} val {:.5}; err[0] {:.6}",
            vectors.len(),
            report.train_rows,
            report.validation_rows,
            report.epochs,
            vectors.len() as f64 / secs,
            sample_passes / secs,
            report.final_loss,
            report.final_val_loss.unwrap_or(f64::NAN),
            model.reconstruction_error(&vectors[0]),
        );
    }
    println!("best: {best:.3} s (target < 1 s)");
}
