//! `chids vectors --model DIR PATH...`: one line per window.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use chids_core::source::ReadOptions;
use chids_detect::alert::Reasons;
use chids_detect::detector;

use super::progress::Bar;

#[derive(clap::Args)]
pub struct Args {
    /// Model bundle folder written by `chids baseline` (chids or STIDE).
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
    /// Recordings (files or folders).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// JSON lines instead of a table.
    #[arg(long)]
    json: bool,
    /// Keep only the events of this container id (scap captures).
    #[arg(long)]
    container: Option<String>,
    /// Also list each window's reasons: unseen syscalls and arguments, and
    /// the calls and transitions whose counts rose above their training
    /// maximum (reads each recording a second time).
    #[arg(long)]
    explain: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let detector = detector::load(&args.model).context("loading the model")?;
    let detector = detector.as_ref();
    let recordings = super::recordings(&args.paths, "PATH")?;
    super::warn_container_unused(&recordings, args.container.as_deref());
    let read = ReadOptions {
        compat_line_filter: detector.mode().line_filter(),
        container: args.container,
    };
    let bar = Bar::new();
    let scored = detector::score_all(detector, &recordings, &read, false, "scoring", &|s| {
        bar.step(s)
    });
    bar.finish();
    let scored = scored?;
    super::warn_all(scored.iter().flat_map(|r| &r.warnings));
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if !args.json {
        writeln!(
            out,
            "{:<40} {:>6} {:>20} {:>8} {:>12} {:>12} {:>12} {:>12} {:>8}",
            "recording", "window", "start_ns", "events", "fi", "usi", "uai", "error", "evidence"
        )?;
    }
    let window_ns = detector.window_ns();
    for (source, rec) in recordings.iter().zip(&scored) {
        let reasons = if args.explain {
            chids_detect::explain::window_reasons(
                detector,
                source.as_ref(),
                &read,
                detector.operating_threshold(),
            )?
        } else {
            Default::default()
        };
        // A run of empty windows is one entry: print each of its windows.
        let windows = rec
            .windows
            .iter()
            .zip(&rec.errors)
            .zip(&rec.evidence)
            .flat_map(|((w, err), &evidence)| {
                (0..w.run_length).map(move |i| (w, i, err, evidence))
            });
        for (w, i, err, evidence) in windows {
            let index = w.index + i;
            let start_ns = w.start_ns + i * window_ns;
            let v = w.vector.map(|v| v.to_array());
            let why = reasons.get(&index).filter(|_| i == 0);
            if args.json {
                let mut line = serde_json::json!({
                    "recording": rec.info.name,
                    "window": index,
                    "start_ns": start_ns,
                    "events": w.events,
                    "fi": v.map(|v| v[0]),
                    "usi": v.map(|v| v[1]),
                    "uai": v.map(|v| v[2]),
                    "error": err,
                    "evidence": evidence,
                });
                if let Some(r) = why {
                    line["reasons"] = serde_json::to_value(r)?;
                }
                writeln!(out, "{line}")?;
            } else {
                let f = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.6}"));
                writeln!(
                    out,
                    "{:<40} {:>6} {:>20} {:>8} {:>12} {:>12} {:>12} {:>12} {:>8}{}",
                    rec.info.name,
                    index,
                    start_ns,
                    w.events,
                    f(v.map(|v| v[0])),
                    f(v.map(|v| v[1])),
                    f(v.map(|v| v[2])),
                    err.map_or("-".to_string(), |e| format!("{e:.4e}")),
                    if evidence { "yes" } else { "no" },
                    why.map(reasons_text).unwrap_or_default()
                )?;
            }
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// A window's reasons on one table line: `  unseen: ...; rising: ...`.
fn reasons_text(r: &Reasons) -> String {
    let mut parts = Vec::new();
    if !r.unseen_syscalls.is_empty() {
        parts.push(format!("unseen syscalls {}", r.unseen_syscalls.join(",")));
    }
    if !r.unseen_args.is_empty() {
        let args: Vec<&str> = r.unseen_args.iter().map(|a| a.arg.as_str()).collect();
        parts.push(format!("unseen args {}", args.join(",")));
    }
    if !r.rising.is_empty() {
        let rising: Vec<String> = r
            .rising
            .iter()
            .map(|x| format!("{} {}>{}", x.what, x.count, x.training_max))
            .collect();
        parts.push(format!("rising {}", rising.join(",")));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("  {}", parts.join("; "))
    }
}
