//! `chids evaluate --model DIR --ns DIR --ms DIR`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use chids::eval::{score_all, table};
use chids::model::Bundle;
use chids::source::ReadOptions;

use super::progress::Bar;

#[derive(clap::Args)]
pub struct Args {
    /// Model bundle folder written by `chids baseline`.
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
    /// Normal recordings (false-alarm rate). Repeatable.
    #[arg(long = "ns", value_name = "PATH", required = true, num_args = 1..)]
    normal: Vec<PathBuf>,
    /// Malicious (attack) recordings (detection rate). Repeatable.
    #[arg(long = "ms", value_name = "PATH", required = true, num_args = 1..)]
    attack: Vec<PathBuf>,
    /// Print the table as one JSON object instead.
    #[arg(long)]
    json: bool,
    /// Keep only the events of this container id (scap captures).
    #[arg(long)]
    container: Option<String>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let bundle = Bundle::load(&args.model).context("loading the model")?;
    let normal = super::recordings(&args.normal, "--ns")?;
    let attack = super::recordings(&args.attack, "--ms")?;
    let read = ReadOptions {
        compat_line_filter: bundle.settings.mode.line_filter(),
        container: args.container,
    };
    let bar = Bar::new();
    let scored = score_all(
        &normal,
        &bundle,
        &read,
        false,
        "scoring normal recordings",
        &|s| bar.step(s),
    )
    .and_then(|n| {
        Ok((
            n,
            score_all(
                &attack,
                &bundle,
                &read,
                false,
                "scoring attack recordings",
                &|s| bar.step(s),
            )?,
        ))
    });
    bar.finish();
    let (normal, attack) = scored?;
    super::warn_all(normal.iter().chain(&attack).flat_map(|r| &r.warnings));
    let rows = table(&bundle, &normal, &attack);
    if args.json {
        println!("{}", serde_json::json!({ "rows": rows }));
        return Ok(ExitCode::SUCCESS);
    }
    println!("------------ Evaluation Summary ----------");
    println!(
        "{:>6}  {:>12}  {:>14}  {:>16}  {:>9}  {:>12}",
        "Theta", "Threshold", "Detection Rate", "False Alarm Rate", "Detected", "False alarms"
    );
    for r in &rows {
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
    Ok(ExitCode::SUCCESS)
}
