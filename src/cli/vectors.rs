//! `chids vectors --model DIR PATH...`: one line per window.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use chids_core::source::ReadOptions;
use chids_detect::model::Bundle;
use chids_detect::scored::score_all;

use super::progress::Bar;

#[derive(clap::Args)]
pub struct Args {
    /// Model bundle folder written by `chids baseline`.
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
}

pub fn run(args: Args) -> Result<ExitCode> {
    let bundle = Bundle::load(&args.model).context("loading the model")?;
    let recordings = super::recordings(&args.paths, "PATH")?;
    super::warn_container_unused(&recordings, args.container.as_deref());
    let read = ReadOptions {
        compat_line_filter: bundle.settings.mode.line_filter(),
        container: args.container,
    };
    let bar = Bar::new();
    let scored = score_all(&recordings, &bundle, &read, false, "scoring", &|s| {
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
    let window_ns = bundle.settings.window_ns;
    for rec in &scored {
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
            if args.json {
                let line = serde_json::json!({
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
                writeln!(out, "{line}")?;
            } else {
                let f = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.6}"));
                writeln!(
                    out,
                    "{:<40} {:>6} {:>20} {:>8} {:>12} {:>12} {:>12} {:>12} {:>8}",
                    rec.info.name,
                    index,
                    start_ns,
                    w.events,
                    f(v.map(|v| v[0])),
                    f(v.map(|v| v[1])),
                    f(v.map(|v| v[2])),
                    err.map_or("-".to_string(), |e| format!("{e:.4e}")),
                    if evidence { "yes" } else { "no" }
                )?;
            }
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
