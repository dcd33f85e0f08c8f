//! `chids evaluate --model DIR [--model DIR] --ns DIR --ms DIR [--report DIR]`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use chids_core::source::ReadOptions;
use chids_detect::detector::{self, Detector};
use chids_eval::report::{evaluate_model, write_report, Inputs, ModelEvaluation, ReportOptions};

use super::progress::Bar;

#[derive(clap::Args)]
pub struct Args {
    /// Model bundle folder written by `chids baseline` (chids or STIDE: the
    /// bundle says which). Repeat to compare detectors on the same recordings.
    #[arg(long, value_name = "DIR", required = true)]
    model: Vec<PathBuf>,
    /// Normal recordings (false alarms). Repeatable. Give these, the attack
    /// recordings, or both.
    #[arg(long = "normal", visible_alias = "ns", value_name = "PATH", num_args = 1.., required_unless_present = "attack")]
    normal: Vec<PathBuf>,
    /// Attack recordings (detections). Repeatable.
    #[arg(long = "attack", visible_alias = "ms", value_name = "PATH", num_args = 1..)]
    attack: Vec<PathBuf>,
    /// Evaluate the operating point at theta × the largest training score
    /// instead of the model's operating threshold.
    #[arg(long, conflicts_with = "threshold")]
    theta: Option<f64>,
    /// Evaluate the operating point at this threshold instead.
    #[arg(long)]
    threshold: Option<f64>,
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
    /// Write every alarm window (at the operating point) as one JSON line
    /// in the live alert form, reasons included, plus `recording`,
    /// `window` and `detector` (what `chids accept` reads).
    #[arg(long, value_name = "FILE")]
    alerts: Option<PathBuf>,
    /// Threshold drawn on the score plots, as a theta.
    #[arg(long, value_name = "THETA", default_value_t = 1.0, requires = "report")]
    plot_theta: f64,
}

pub fn run(args: Args) -> Result<ExitCode> {
    if !args.plot_theta.is_finite() || args.plot_theta <= 0.0 {
        anyhow::bail!("--plot-theta must be a positive number");
    }
    let detectors: Vec<Box<dyn Detector>> = args
        .model
        .iter()
        .map(|dir| {
            detector::load(dir).with_context(|| format!("loading the model {}", dir.display()))
        })
        .collect::<Result<_>>()?;
    let optional = |paths: &[PathBuf], flag: &str| {
        if paths.is_empty() {
            Ok(Vec::new())
        } else {
            super::recordings(paths, flag)
        }
    };
    let normal = optional(&args.normal, "--normal")?;
    let attack = optional(&args.attack, "--attack")?;
    warn_in_both(&normal, &attack);
    super::warn_container_unused(&normal, args.container.as_deref());
    super::warn_container_unused(&attack, args.container.as_deref());
    // Scored in one parallel pass: the small recordings of one set are read
    // while a large one of the other set still is.
    let normals = normal.len();
    let recordings: Vec<_> = normal.into_iter().chain(attack).collect();
    let mut evals: Vec<ModelEvaluation> = Vec::new();
    let mut inputs = Inputs::default();
    let mut alert_lines: Vec<u8> = Vec::new();
    for (dir, detector) in args.model.iter().zip(&detectors) {
        let read = ReadOptions {
            compat_line_filter: detector.mode().line_filter(),
            container: args.container.clone(),
        };
        let bar = Bar::new();
        let stage = |what: &str| format!("{what} ({})", detector.name());
        let scored = detector::score_all(
            detector.as_ref(),
            &recordings,
            &read,
            false,
            &stage("scoring"),
            &|s| bar.step(s),
        );
        bar.finish();
        let mut normal = scored?;
        let attack = normal.split_off(normals);
        // Every detector reads the same files: warn once.
        if evals.is_empty() {
            super::warn_all(normal.iter().chain(&attack).flat_map(|r| &r.warnings));
            inputs = Inputs::count(&normal, &attack);
        }
        let (threshold, source) = operating_point(detector.as_ref(), args.theta, args.threshold)?;
        if args.alerts.is_some() {
            let scored: Vec<_> = normal.iter().chain(&attack).collect();
            write_alarm_lines(
                detector.as_ref(),
                &recordings,
                &scored,
                &read,
                threshold,
                &mut alert_lines,
            )?;
        }
        evals.push(evaluate_model(
            &dir.display().to_string(),
            detector.as_ref(),
            (threshold, &source),
            &normal,
            &attack,
        ));
    }
    if let Some(path) = &args.alerts {
        chids_core::output::write_file(path, &alert_lines, chids_core::output::OUTPUT_MODE)
            .with_context(|| format!("--alerts {}", path.display()))?;
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
        print_json(&evals, &inputs);
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

/// The results as one JSON object on stdout.
fn print_json(evals: &[ModelEvaluation], inputs: &Inputs) {
    let models: Vec<serde_json::Value> = evals
        .iter()
        .map(|e| {
            serde_json::json!({
                "model": e.model,
                "detector": e.detector,
                "operating_point": e.operating_point,
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
            "operating_point": first.operating_point,
            "rows": first.table,
            "lidds": first.lidds,
            "roc_auc": first.roc.auc,
            "out_of_order_events": inputs.out_of_order_events,
            "models": models,
        })
    );
}

/// The threshold to evaluate at, and where it came from: `--theta`,
/// `--threshold`, else the bundle's operating threshold (the one
/// [`detector::choose_threshold`] picks too).
fn operating_point(
    detector: &dyn Detector,
    theta: Option<f64>,
    threshold: Option<f64>,
) -> Result<(f64, String)> {
    let chosen =
        detector::choose_threshold(detector, theta, threshold).map_err(anyhow::Error::msg)?;
    let source = match (theta, threshold, detector.calibration()) {
        (Some(t), _, _) => format!("--theta {t}"),
        (_, Some(_), _) => "--threshold".to_string(),
        (None, None, Some(c)) => format!(
            "calibrated on {} {} recording(s) for at most {} false-alarm window(s)/h",
            c.recordings.len(),
            c.source,
            c.max_false_alarms_per_hour
        ),
        (None, None, None) => {
            "theta 1.0: this bundle has no operating threshold; retrain to calibrate".to_string()
        }
    };
    Ok((chosen, source))
}

/// Appends the alert lines of every recording's alarm windows: evidence
/// windows scoring above `threshold`, explained by replaying the recording
/// through the detector's live scorer (only recordings with alarms are
/// read again).
fn write_alarm_lines(
    detector: &dyn Detector,
    recordings: &[Box<dyn chids_core::source::EventSource>],
    scored: &[&chids_detect::scored::ScoredRecording],
    read: &ReadOptions,
    threshold: f64,
    out: &mut Vec<u8>,
) -> Result<()> {
    for (source, rec) in recordings.iter().zip(scored) {
        let alarms: std::collections::BTreeSet<u64> = rec
            .windows
            .iter()
            .zip(rec.evidence_errors())
            .filter(|(_, e)| e.is_some_and(|e| e > threshold))
            .map(|(w, _)| w.index)
            .collect();
        let lines = chids_detect::explain::alarm_lines(
            detector,
            source.as_ref(),
            read,
            threshold,
            &alarms,
        )?;
        for line in lines {
            serde_json::to_writer(&mut *out, &line)?;
            out.push(b'\n');
        }
    }
    Ok(())
}

/// A recording given as normal and as attack makes both rates meaningless.
fn warn_in_both(
    normal: &[Box<dyn chids_core::source::EventSource>],
    attack: &[Box<dyn chids_core::source::EventSource>],
) {
    let key = |r: &dyn chids_core::source::EventSource| {
        let p = &r.info().path;
        std::fs::canonicalize(p).unwrap_or_else(|_| p.clone())
    };
    let normal: std::collections::BTreeSet<PathBuf> =
        normal.iter().map(|r| key(r.as_ref())).collect();
    for r in attack {
        if normal.contains(&key(r.as_ref())) {
            eprintln!(
                "chids: warning: {}: given both as normal (--ns) and as attack (--ms); it counts in both rates",
                r.info().path.display()
            );
        }
    }
}

fn print_tables(e: &ModelEvaluation) {
    let op = &e.operating_point;
    println!("{}", chids_eval::report::operating_sentence(op));
    println!();
    println!("------------ Evaluation Summary ----------");
    println!("Per threshold: an attack recording is detected, a normal one a false alarm, when any window that is evidence scores above it.");
    println!(
        "{:>6}  {:>12}  {:>14}  {:>16}  {:>9}  {:>12}",
        "Theta", "Threshold", "Detection Rate", "False Alarm Rate", "Detected", "False alarms"
    );
    let theta_one = e.threshold(1.0);
    println!(
        "{:>6}  {:>12.4e}  {:>14.3}  {:>16.3}  {:>9}  {:>12}   <- operating point{}",
        "op",
        op.threshold,
        op.detection_rate,
        op.false_alarm_rate,
        format!("{}/{}", op.detected, op.attacks),
        format!("{}/{}", op.false_alarms, op.normals),
        if theta_one > 0.0 {
            format!(" (θ {:.2})", op.threshold / theta_one)
        } else {
            String::new()
        }
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
    println!("DR: attack recordings alarmed at or after the exploit start; FA windows: alarmed windows outside any attack phase; CFA: runs of consecutive FA windows; latency: exploit start to the end of the first alarm window.");
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
    println!("(how well single window scores rank attack-phase windows above normal ones, 0.5 = chance; a short attack leaves most attack-phase windows quiet, so the AUC can be low while every attack is detected: docs/EVALUATION.md)");
}
