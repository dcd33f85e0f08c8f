//! Throughput of the offline pipeline on real data (not a timed test: it
//! reports numbers). `cargo bench --bench pipeline`; needs CHIDS_SHARED
//! (defaults to ../shared).
//!
//! Reports: events/s for reading the largest text dump (text parsing only,
//! and reading + windows + features, compat mode), and the end-to-end time
//! of split A (baseline + evaluate on the same files the reference ran on)
//! against the reference's 25.6 s.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chids_core::features::{read_recording, Settings, TrainingElements};
use chids_core::mode::Mode;
use chids_core::source::{discover, EventSource, ReadOptions};
use chids_detect::model::{default_thetas, TrainConfig};
use chids_detect::train::{train, TrainOptions};

fn best_of<T>(n: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut out = None;
    for _ in 0..n {
        let t = Instant::now();
        let v = f();
        best = best.min(t.elapsed());
        out = Some(v);
    }
    (best, out.unwrap())
}

fn main() {
    let shared =
        PathBuf::from(std::env::var("CHIDS_SHARED").unwrap_or_else(|_| "../shared".into()));
    let text = shared.join("parity/sysdig_text");
    if !text.is_dir() {
        eprintln!(
            "bench skipped: {} not found (set CHIDS_SHARED)",
            text.display()
        );
        return;
    }
    let largest = text.join("troubleshooting-docker-kubernetes-sysdig__capture.txt");
    let source = chids_core::source::discover::open(&largest).expect("open");
    let compat = Settings::for_mode(Mode::Compat, 1_000_000_000);
    let opts = ReadOptions {
        compat_line_filter: true,
        ..Default::default()
    };

    // Rayon off for the single-core numbers.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    pool.install(|| {
        let (t, events) = best_of(5, || {
            let mut n = 0u64;
            source
                .read(&opts, &mut |_e| {
                    n += 1;
                    Ok(())
                })
                .unwrap();
            n
        });
        println!(
            "text read only      {:>8} events  {:>8.3} ms  {:>6.2} M events/s (1 core)",
            events,
            t.as_secs_f64() * 1e3,
            events as f64 / t.as_secs_f64() / 1e6
        );
        let (t, rec) = best_of(5, || {
            read_recording(source.as_ref(), compat, None, false, &opts).unwrap()
        });
        let baseline = TrainingElements {
            max_freq: rec.elements.max_freq,
            ..rec.elements.clone()
        };
        println!(
            "text read+windows   {:>8} events  {:>8.3} ms  {:>6.2} M events/s (1 core)",
            rec.read.events,
            t.as_secs_f64() * 1e3,
            rec.read.events as f64 / t.as_secs_f64() / 1e6
        );
        let (t, rec) = best_of(5, || {
            read_recording(source.as_ref(), compat, Some(&baseline), false, &opts).unwrap()
        });
        println!(
            "text read+features  {:>8} events  {:>8.3} ms  {:>6.2} M events/s (1 core)",
            rec.read.events,
            t.as_secs_f64() * 1e3,
            rec.read.events as f64 / t.as_secs_f64() / 1e6
        );
    });

    split_a(&shared, &text);
}

/// Baseline + evaluate on split A, as the reference ran it (runs/A: train =
/// the 7 example captures, evaluate --ns train --ms the 12 falco/libs files).
fn split_a(shared: &Path, text: &Path) {
    let all: Vec<PathBuf> = std::fs::read_dir(text)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let pick = |pred: &dyn Fn(&str) -> bool| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = all
            .iter()
            .filter(|p| pred(&p.file_name().unwrap().to_string_lossy()))
            .filter(|p| std::fs::metadata(p).map(|m| m.len() > 0).unwrap_or(false))
            .cloned()
            .collect();
        v.sort();
        v
    };
    let train_paths =
        pick(&|n| n.starts_with("sysdig-opensource") || n.starts_with("troubleshooting"));
    let eval_paths = pick(&|n| n.starts_with("falco__") || n.starts_with("libs__"));
    let reference_s = reference_seconds(shared).unwrap_or(25.6);
    let (t, ()) = best_of(3, || {
        let train_rec = discover(&train_paths).unwrap().recordings;
        let eval_rec: Vec<Box<dyn EventSource>> = discover(&eval_paths).unwrap().recordings;
        let opts = TrainOptions {
            settings: Settings::for_mode(Mode::Compat, 1_000_000_000),
            model: TrainConfig::default(),
            thetas: default_thetas(),
            read: ReadOptions {
                compat_line_filter: true,
                ..Default::default()
            },
        };
        let trained = train(&train_rec, &opts, &|_| {}).unwrap();
        let normal = chids_detect::scored::score_all(
            &train_rec,
            &trained.bundle,
            &opts.read,
            false,
            "",
            &|_| {},
        )
        .unwrap();
        let attack = chids_detect::scored::score_all(
            &eval_rec,
            &trained.bundle,
            &opts.read,
            false,
            "",
            &|_| {},
        )
        .unwrap();
        let rows = chids_eval::table(&trained.bundle, &normal, &attack);
        assert_eq!(rows.len(), 10);
    });
    println!(
        "split A end to end  baseline+evaluate (sysdig text)  {:>8.1} ms   reference {:.1} s   {:>6.0}x faster",
        t.as_secs_f64() * 1e3,
        reference_s,
        reference_s / t.as_secs_f64()
    );
}

/// The reference's elapsed seconds for A baseline + A evaluate, from its logs.
fn reference_seconds(shared: &Path) -> Option<f64> {
    let mut total = 0.0;
    for log in ["A_baseline.log", "A_evaluate.log"] {
        let text = std::fs::read_to_string(shared.join("parity/runs").join(log)).ok()?;
        let line = text.lines().find(|l| l.contains("Elapsed (wall clock)"))?;
        let v = line.rsplit(' ').next()?;
        let mut secs = 0.0;
        for part in v.split(':') {
            secs = secs * 60.0 + part.parse::<f64>().ok()?;
        }
        total += secs;
    }
    Some(total)
}
