//! `chids evaluate --model DIR [--model DIR] --ns DIR --ms DIR [--report DIR]`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use chids::eval::report::{evaluate_model, write_report, Inputs, ModelEvaluation, ReportOptions};
use chids::eval::Detector;
use chids::source::ReadOptions;

use super::progress::Bar;

#[derive(clap::Args)]
pub struct Args {
    /// Model bundle folder written by `chids baseline` (chids or STIDE: the
    /// bundle says which). Repeat to compare detectors on the same recordings.
    #[arg(long, value_name = "DIR", required = true)]
    model: Vec<PathBuf>,
    /// Normal recordings (false-alarm rate). Repeatable.
    #[arg(long = "ns", value_name = "PATH", required = true, num_args = 1..)]
    normal: Vec<PathBuf>,
    /// Malicious (attack) recordings (detection rate). Repeatable.
    #[arg(long = "ms", value_name = "PATH", required = true, num_args = 1..)]
    attack: Vec<PathBuf>,
    /// Print the results as one JSON object instead.
    #[arg(long)]
    json: bool,
    /// Keep only the events of this container id (scap captures).
    #[arg(long)]
    container: Option<String>,
    /// Write report.md, report.json and PNG plots into this folder.
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,
    /// Attack recording whose scores are plotted (default: the first).
    #[arg(long, value_name = "NAME", requires = "report")]
    plot_recording: Option<String>,
    /// Threshold drawn on the score plots, as a theta.
    #[arg(long, value_name = "THETA", default_value_t = 1.0, requires = "report")]
    plot_theta: f64,
}

pub fn run(args: Args) -> Result<ExitCode> {
    if !args.plot_theta.is_finite() || args.plot_theta <= 0.0 {
        anyhow::bail!("--plot-theta must be a positive number");
    }
    let detectors: Vec<Detector> = args
        .model
        .iter()
        .map(|dir| {
            Detector::load(dir).with_context(|| format!("loading the model {}", dir.display()))
        })
        .collect::<Result<_>>()?;
    let normal = super::recordings(&args.normal, "--ns")?;
    let attack = super::recordings(&args.attack, "--ms")?;
    super::warn_container_unused(&normal, args.container.as_deref());
    super::warn_container_unused(&attack, args.container.as_deref());
    let mut evals: Vec<ModelEvaluation> = Vec::new();
    let mut inputs = Inputs::default();
    for (dir, detector) in args.model.iter().zip(&detectors) {
        let read = ReadOptions {
            compat_line_filter: detector.mode().line_filter(),
            container: args.container.clone(),
        };
        let bar = Bar::new();
        let stage = |what: &str| format!("{what} ({})", detector.name());
        let scored = detector
            .score_all(&normal, &read, &stage("scoring normal"), &|s| bar.step(s))
            .and_then(|n| {
                Ok((
                    n,
                    detector
                        .score_all(&attack, &read, &stage("scoring attack"), &|s| bar.step(s))?,
                ))
            });
        bar.finish();
        let (normal, attack) = scored?;
        // Every detector reads the same files: warn once.
        if evals.is_empty() {
            super::warn_all(normal.iter().chain(&attack).flat_map(|r| &r.warnings));
            inputs = Inputs::count(&normal, &attack);
        }
        evals.push(evaluate_model(
            &dir.display().to_string(),
            detector,
            &normal,
            &attack,
        ));
    }

    if let Some(dir) = &args.report {
        let options = ReportOptions {
            plot_recording: args.plot_recording.clone(),
            plot_theta: args.plot_theta,
        };
        write_report(dir, &inputs, &evals, &options)
            .with_context(|| format!("writing the report to {}", dir.display()))?;
    }

    if args.json {
        let models: Vec<serde_json::Value> = evals
            .iter()
            .map(|e| {
                serde_json::json!({
                    "model": e.model,
                    "detector": e.detector,
                    "rows": e.table,
                    "lidds": e.lidds,
                    "roc_auc": e.roc.auc,
                })
            })
            .collect();
        // The first model's results stay at the top level, as before.
        let first = &evals[0];
        println!(
            "{}",
            serde_json::json!({
                "rows": first.table,
                "lidds": first.lidds,
                "roc_auc": first.roc.auc,
                "out_of_order_events": inputs.out_of_order_events,
                "models": models,
            })
        );
        return Ok(ExitCode::SUCCESS);
    }
    for e in &evals {
        if evals.len() > 1 {
            println!("== {} ({}) ==", e.model, e.detector);
        }
        print_tables(e);
    }
    if let Some(dir) = &args.report {
        println!("report written to {}", dir.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn print_tables(e: &ModelEvaluation) {
    println!("------------ Evaluation Summary ----------");
    println!(
        "{:>6}  {:>12}  {:>14}  {:>16}  {:>9}  {:>12}",
        "Theta", "Threshold", "Detection Rate", "False Alarm Rate", "Detected", "False alarms"
    );
    for r in &e.table {
        println!(
            "{:>6.1}  {:>12.4e}  {:>14.3}  {:>16.3}  {:>9}  {:>12}",
            r.theta,
            r.threshold,
            r.detection_rate,
            r.false_alarm_rate,
            format!("{}/{}", r.detected, r.attacks),
            format!("{}/{}", r.false_alarms, r.normals)
        );
    }
    let Some(rows) = &e.lidds else { return };
    println!("------------ LID-DS metrics (windows) ----------");
    println!(
        "{:>6}  {:>8}  {:>10}  {:>6}  {:>9}  {:>6}  {:>11}  {:>11}",
        "Theta", "DR", "FA windows", "CFA", "Precision", "F1", "Latency avg", "Latency max"
    );
    let secs = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.2}s"));
    for r in rows {
        println!(
            "{:>6.1}  {:>8.3}  {:>10}  {:>6}  {:>9.3}  {:>6.3}  {:>11}  {:>11}",
            r.theta,
            r.detection_rate,
            r.false_alarm_windows,
            r.consecutive_false_alarms,
            r.precision,
            r.f1,
            secs(r.latency_mean_s),
            secs(r.latency_max_s)
        );
    }
    println!(
        "window-level ROC AUC: {}",
        e.roc.auc.map_or("n/a".to_string(), |a| format!("{a:.4}"))
    );
}
