//! `chids baseline --td DIR --od DIR`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use chids::args::Mode;
use chids::features::Settings;
use chids::model::{default_thetas, TrainConfig};
use chids::source::ReadOptions;
use chids::stide::{self, StideSettings};
use chids::train::{train, TrainOptions};

use super::progress::Bar;

#[derive(clap::Args)]
pub struct Args {
    /// Training recordings: files or folders (walked recursively). Repeatable.
    #[arg(long = "td", value_name = "PATH", required = true, num_args = 1..)]
    training: Vec<PathBuf>,
    /// Output folder for the model bundle (created if needed).
    #[arg(long = "od", value_name = "DIR")]
    output: PathBuf,
    /// Reproduce the reference implementation exactly (see README).
    #[arg(long)]
    compat: bool,
    /// Window length (e.g. 1s, 500ms; from 1ms to 1h).
    #[arg(long, default_value = "1s", value_parser = super::parse_window)]
    window: u64,
    /// Training epochs, at least 1 (the modern mode raises them so that
    /// training takes at least 4,000 optimiser steps, however few the
    /// training windows).
    #[arg(long, default_value_t = 120, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    epochs: usize,
    /// Seed for weight initialisation and shuffling: same inputs and seed, same model.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Threshold multipliers, comma-separated (default 0.2,0.4,…,2.0).
    #[arg(long, value_delimiter = ',')]
    thetas: Option<Vec<f64>>,
    /// Keep only the events of this container id (scap captures).
    #[arg(long)]
    container: Option<String>,
    /// Which detector to train: the chids autoencoder, or the STIDE baseline.
    #[arg(long, value_enum, default_value_t = Detector::Chids)]
    detector: Detector,
    /// STIDE: length of the system-call sequences.
    #[arg(long, default_value_t = stide::DEFAULT_LENGTH, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=64))]
    stide_length: usize,
    /// STIDE: locality frame, in sequences (score = mismatches among the last N / N).
    #[arg(long, value_name = "N", default_value_t = stide::DEFAULT_FRAME, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    stide_window: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Detector {
    Chids,
    Stide,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let mode = if args.compat {
        Mode::Compat
    } else {
        Mode::Modern
    };
    let thetas = args.thetas.clone().unwrap_or_else(default_thetas);
    if thetas.is_empty() || thetas.iter().any(|t| !t.is_finite() || *t <= 0.0) {
        anyhow::bail!("--thetas must be positive numbers");
    }
    let recordings = super::recordings(&args.training, "--td")?;
    super::warn_container_unused(&recordings, args.container.as_deref());
    if args.detector == Detector::Stide {
        return run_stide(&args, mode, &thetas, &recordings);
    }
    let options = TrainOptions {
        settings: Settings {
            mode,
            window_ns: args.window,
        },
        model: TrainConfig {
            epochs: args.epochs,
            seed: args.seed,
            ..TrainConfig::default()
        },
        thetas,
        read: ReadOptions {
            compat_line_filter: mode.line_filter(),
            container: args.container,
        },
    };
    let bar = Bar::new();
    let trained = train(&recordings, &options, &|s| bar.step(s));
    bar.finish();
    let trained = trained?;
    super::warn_all(&trained.warnings);
    trained
        .bundle
        .save(&args.output)
        .with_context(|| format!("writing the model bundle to {}", args.output.display()))?;

    let b = &trained.bundle;
    println!("------------ Training Summary ----------");
    println!(
        "mode                   {}",
        if args.compat { "compat" } else { "modern" }
    );
    println!("training recordings    {}", trained.used);
    println!(
        "windows                {} ({} non-empty)",
        b.training.windows, b.training.vectors
    );
    println!("seen syscalls          {}", b.elements.seen_syscalls.len());
    println!("seen arguments         {}", b.elements.seen_args.len());
    println!("max_freq               {}", b.elements.max_freq);
    println!(
        "final loss             {:.6} (validation {})",
        b.training.final_loss,
        b.training
            .final_val_loss
            .map_or("n/a".into(), |v| format!("{v:.6}"))
    );
    println!("largest training error {:.6e}", b.training.max_error);
    println!("{:>8}  {:>14}", "Theta", "Threshold");
    for (t, th) in b.thetas.iter().zip(&b.thresholds) {
        println!("{:>8.1}  {:>14.6e}", t, th);
    }
    println!("model written to {}", args.output.display());
    Ok(ExitCode::SUCCESS)
}

fn run_stide(
    args: &Args,
    mode: Mode,
    thetas: &[f64],
    recordings: &[Box<dyn chids::source::EventSource>],
) -> Result<ExitCode> {
    let settings = StideSettings {
        mode,
        window_ns: args.window,
        length: args.stide_length,
        frame: args.stide_window,
    };
    let read = ReadOptions {
        compat_line_filter: mode.line_filter(),
        container: args.container.clone(),
    };
    let bar = Bar::new();
    let trained = stide::train(recordings, settings, thetas, &read, &|s| bar.step(s));
    bar.finish();
    let trained = trained?;
    super::warn_all(&trained.warnings);
    let m = &trained.model;
    m.save(&args.output)
        .with_context(|| format!("writing the model bundle to {}", args.output.display()))?;
    println!("------------ Training Summary (STIDE) ----------");
    println!(
        "mode                   {}",
        if args.compat { "compat" } else { "modern" }
    );
    println!("database recordings    {}", m.training.recordings.len());
    println!("held-out recordings    {}", m.training.held_out.len());
    println!("sequence length        {}", m.settings.length);
    println!("locality frame         {}", m.settings.frame);
    println!("distinct syscalls      {}", m.syscalls.len());
    println!("distinct sequences     {}", m.training.sequences);
    println!("largest held-out score {:.6}", m.training.max_score);
    println!("{:>8}  {:>14}", "Theta", "Threshold");
    for (t, th) in m.thetas.iter().zip(&m.thresholds) {
        println!("{:>8.1}  {:>14.6}", t, th);
    }
    println!("model written to {}", args.output.display());
    Ok(ExitCode::SUCCESS)
}
