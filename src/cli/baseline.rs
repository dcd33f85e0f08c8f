//! `chids baseline --td DIR --od DIR`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use chids_core::features::Settings;
use chids_core::mode::Mode;
use chids_core::source::EventSource;
use chids_core::source::ReadOptions;
use chids_core::ssg::EdgeOrder;
use chids_detect::calibrate::Calibration;
use chids_detect::model::{default_thetas, TrainConfig};
use chids_detect::stide::{self, StideSettings};
use chids_detect::train::{train_calibrated, TrainOptions};

use super::progress::Bar;

#[derive(clap::Args)]
pub struct Args {
    /// Training recordings (normal activity): files or folders (walked
    /// recursively). Repeatable.
    #[arg(long = "training", visible_alias = "td", value_name = "PATH", required = true, num_args = 1..)]
    training: Vec<PathBuf>,
    /// Output folder for the model bundle (created if needed).
    #[arg(long = "out", visible_alias = "od", value_name = "DIR")]
    output: PathBuf,
    /// Validation recordings (normal activity the model does not learn
    /// from) that set the operating threshold. Without them, modern mode
    /// holds out about a fifth of the training recordings (whole
    /// recordings, chosen by --seed) for it.
    #[arg(long = "validation", visible_alias = "vd", value_name = "PATH", num_args = 1..)]
    validation: Vec<PathBuf>,
    /// False-alarm budget of the operating threshold: alarm windows per
    /// hour of normal activity (e.g. 1/h, 10/d).
    #[arg(long, value_name = "RATE", default_value = "1/h", value_parser = chids_detect::calibrate::parse_budget)]
    max_false_alarms: f64,
    /// Reproduce the reference implementation exactly (see README).
    #[arg(long)]
    compat: bool,
    /// Graph edges (modern mode): `thread` joins consecutive calls of each
    /// thread (feature version 2, computed in the kernel by `monitor`; the
    /// default); `stream` joins consecutive calls of the whole stream, as
    /// bundles before version 2 and compat mode do (such a bundle is
    /// monitored from per-event records).
    #[arg(long, value_enum)]
    edges: Option<Edges>,
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
enum Edges {
    Thread,
    Stream,
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
    let recordings = super::recordings(&args.training, "--training")?;
    super::warn_container_unused(&recordings, args.container.as_deref());
    warn_attack_labels(&recordings, "--training");
    let validation = if args.validation.is_empty() {
        None
    } else {
        let v = super::recordings(&args.validation, "--validation")?;
        super::warn_container_unused(&v, args.container.as_deref());
        warn_attack_labels(&v, "--validation");
        Some(v)
    };
    if args.detector == Detector::Stide {
        return run_stide(&args, mode, &thetas, &recordings, validation.as_deref());
    }
    let mut settings = Settings::for_mode(mode, args.window);
    match (args.edges, mode) {
        (Some(Edges::Thread), Mode::Compat) => {
            anyhow::bail!("--edges thread: compat mode keeps the reference's stream edges")
        }
        (Some(Edges::Thread), _) => settings.edges = EdgeOrder::Thread,
        (Some(Edges::Stream), _) => settings.edges = EdgeOrder::Stream,
        (None, _) => {}
    }
    let options = TrainOptions {
        settings,
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
    let trained = train_calibrated(
        &recordings,
        validation.as_deref(),
        &options,
        args.max_false_alarms,
        &|s| bar.step(s),
    );
    bar.finish();
    let trained = trained?;
    super::warn_all(&trained.warnings);
    trained
        .bundle
        .save(&args.output)
        .with_context(|| format!("writing the model bundle to {}", args.output.display()))?;

    print_summary(&trained.bundle, trained.used, args.compat);
    report_completeness(&recordings, &options, args.max_false_alarms)?;
    println!("model written to {}", args.output.display());
    Ok(ExitCode::SUCCESS)
}

/// What `baseline` prints about the model it wrote.
fn print_summary(b: &chids_detect::model::Bundle, used: usize, compat: bool) {
    println!("------------ Training Summary ----------");
    println!(
        "mode                   {}",
        if compat { "compat" } else { "modern" }
    );
    println!(
        "edges                  {}",
        match b.settings.edges {
            EdgeOrder::Thread => "per thread (monitor computes windows in the kernel)",
            EdgeOrder::Stream => "stream (monitor computes windows from per-event records)",
        }
    );
    println!("training recordings    {}", used);
    if !b.elements.patterns.is_empty() {
        println!(
            "one-off name patterns  {} ({})",
            b.elements.patterns.len(),
            b.elements
                .patterns
                .iter()
                .map(|p| format!("{}: {} names", p.pattern, p.distinct_names))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    println!(
        "windows                {} ({} non-empty)",
        b.training.windows, b.training.vectors
    );
    println!("seen syscalls          {}", b.elements.seen_syscalls.len());
    println!("seen arguments         {}", b.elements.seen_args.len());
    println!("max_freq               {}", b.elements.max_freq);
    if let Some(f) = b.folded.as_ref().filter(|f| !f.is_empty()) {
        // Said plainly: these would otherwise have lifted the threshold.
        println!(
            "normal from {}   {} syscall(s), {} argument(s) training lacked, now seen: {}",
            f.source,
            f.syscalls.len(),
            f.args.len(),
            f.syscalls
                .iter()
                .chain(&f.args)
                .take(12)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
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
    if let (Some(t), Some(c)) = (b.operating_threshold, &b.calibration) {
        print_operating_point(t, c, b.training.max_error);
    }
}

/// Prints how often the training data suggest a new name (system call,
/// path, endpoint) still appears, and warns when that does not fit the
/// false-alarm budget or rests on too few windows (see
/// `chids_detect::completeness`).
fn report_completeness(
    recordings: &[Box<dyn EventSource>],
    options: &TrainOptions,
    budget_per_hour: f64,
) -> anyhow::Result<()> {
    let refs: Vec<&dyn EventSource> = recordings.iter().map(|r| r.as_ref()).collect();
    let c = chids_detect::completeness::estimate(&refs, options.settings, &options.read)?;
    let window_ns = options.settings.window_ns;
    println!("completeness           {}", c.describe(window_ns));
    if c.is_thin() {
        eprintln!(
            "chids: warning: training is thin: {} windows with events (fewer than {}); names it never saw will make normal windows alarm: record more normal activity",
            c.windows,
            chids_detect::completeness::MIN_WINDOWS
        );
    } else if !c.fits(budget_per_hour, window_ns) {
        eprintln!(
            "chids: warning: training is not complete: about {:.1} new names per hour are still expected, against a budget of {budget_per_hour}/h; each can make a normal window alarm: record more normal activity",
            c.new_per_hour(window_ns)
        );
    }
    Ok(())
}

/// Training data should be normal: say so when a recording is labelled
/// as an attack (LID-DS `exploit: true`).
fn warn_attack_labels(recordings: &[Box<dyn EventSource>], flag: &str) {
    for r in recordings {
        if r.info().labels.exploit {
            eprintln!(
                "chids: warning: {}: labelled as an attack (exploit: true) but given as normal data ({flag}); the model will learn the attack as normal",
                r.info().path.display()
            );
        }
    }
}

/// The operating point, as a sentence a newcomer can act on.
fn print_operating_point(threshold: f64, c: &Calibration, theta_one: f64) {
    println!("------------ Operating point ----------");
    let theta = if theta_one > 0.0 {
        format!(" (θ {:.2})", threshold / theta_one)
    } else {
        String::new()
    };
    println!(
        "threshold {threshold:.6e}{theta}: set for at most {} false-alarm window(s) per hour of normal activity,",
        fmt_rate(c.max_false_alarms_per_hour)
    );
    println!(
        "from {} {} recording(s) ({} windows, {}; method: {}; largest score {:.6e} at {}).",
        c.recordings.len(),
        c.source,
        c.windows,
        chids_eval::report::duration(c.hours),
        c.method,
        c.largest_score,
        c.largest_at
    );
    println!(
        "On that data {} window(s) exceed it; the data alone support a rate of at most {}/h (95 % bound).",
        c.observed_alarm_windows,
        fmt_rate(c.upper_bound_per_hour)
    );
    println!("`chids monitor` and `chids evaluate` use this threshold unless given --theta or --threshold.");
}

fn fmt_rate(r: f64) -> String {
    if r >= 10.0 {
        format!("{r:.0}")
    } else {
        format!("{r:.2}")
    }
}

fn run_stide(
    args: &Args,
    mode: Mode,
    thetas: &[f64],
    recordings: &[Box<dyn EventSource>],
    validation: Option<&[Box<dyn EventSource>]>,
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
    let mut trained = trained?;
    super::warn_all(&trained.warnings);
    // The operating threshold: from the validation recordings, else from
    // the held-out training recordings the database lacks.
    let (scored, source) = match validation {
        Some(v) => {
            let bar = Bar::new();
            let s = trained
                .model
                .score_all(v, &read, "stide: calibration", &|s| bar.step(s));
            bar.finish();
            let s = s?;
            super::warn_all(s.iter().flat_map(|r| &r.warnings));
            (s, "validation")
        }
        None => (
            std::mem::take(&mut trained.held_out_scores),
            "held-out training",
        ),
    };
    let (threshold, calibration) = chids_detect::scored::calibrate_scored(
        &scored,
        source,
        settings.window_ns,
        args.max_false_alarms,
        0.0,
    );
    if (calibration.windows as usize) < chids_detect::calibrate::MIN_WINDOWS {
        eprintln!(
            "chids: warning: only {} window(s) to calibrate on; too few to fit a tail, so the operating threshold is their largest score: give more normal data (--vd)",
            calibration.windows
        );
    }
    trained.model.operating_threshold = Some(threshold);
    trained.model.calibration = Some(calibration);
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
    if let (Some(t), Some(c)) = (m.operating_threshold, &m.calibration) {
        print_operating_point(t, c, m.training.max_score);
    }
    println!("model written to {}", args.output.display());
    Ok(ExitCode::SUCCESS)
}
