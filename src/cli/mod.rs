//! Subcommands. Each file parses its flags, calls the library, and prints.

mod accept;
#[cfg(feature = "live")]
mod agent;
mod baseline;
mod dump;
mod evaluate;
#[cfg(feature = "live")]
mod live;
mod progress;
#[cfg(feature = "console")]
mod ui;
#[cfg(all(feature = "console", feature = "live"))]
mod ui_accept;
mod vectors;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

use chids_core::source::{discover, EventSource};

#[derive(Parser)]
#[command(
    name = "chids",
    version,
    about = "Container host intrusion detection from system-call sequence graphs (CHIDS)",
    long_about = "Learns how a container normally uses system calls (a baseline) and flags what deviates.\n\
                  Reads sysdig/Falco captures (.scap), `sysdig -r` text and LID-DS 2019/2021 recordings."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a baseline on normal recordings and write the model bundle.
    Baseline(baseline::Args),
    /// Evaluate a model on normal and attack recordings (detection / false-alarm rates).
    Evaluate(evaluate::Args),
    /// Print every window's anomaly vector and reconstruction error.
    Vectors(vectors::Args),
    /// Print the events of a sysdig/Falco capture (.scap), like `sysdig -r`.
    Dump(dump::Args),
    /// Accept alerts as normal: fold what they named into the model, with an audit record.
    Accept(accept::Args),
    /// Capture a container's system calls live (eBPF) into a LID-DS 2021 recording.
    #[cfg(feature = "live")]
    Record(live::RecordArgs),
    /// Watch a container live and raise explained alerts on anomalous windows.
    #[cfg(feature = "live")]
    Monitor(live::MonitorArgs),
    /// Watch every container on the host: learn each workload, then alert (NATS, files).
    #[cfg(feature = "live")]
    // Boxed: the agent has many flags, the other commands fewer.
    Agent(Box<agent::AgentArgs>),
    /// Serve the alert console in the browser (alerts from NATS JetStream, workloads).
    #[cfg(feature = "console")]
    Ui(ui::Args),
    /// Live capture (record, monitor, agent) is not in this build.
    #[cfg(not(feature = "live"))]
    #[command(name = "record", aliases = ["monitor", "agent"], hide = true, disable_help_flag = true)]
    LiveMissing {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        args: Vec<String>,
    },
}

pub fn run() -> Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Baseline(args) => baseline::run(args),
        Command::Evaluate(args) => evaluate::run(args),
        Command::Vectors(args) => vectors::run(args),
        Command::Dump(args) => dump::run(args),
        Command::Accept(args) => accept::run(args),
        #[cfg(feature = "live")]
        Command::Record(args) => live::run_record(&args).map_err(anyhow::Error::msg),
        #[cfg(feature = "live")]
        Command::Monitor(args) => live::run_monitor(&args).map_err(anyhow::Error::msg),
        #[cfg(feature = "live")]
        Command::Agent(args) => agent::run(*args).map_err(anyhow::Error::msg),
        #[cfg(feature = "console")]
        Command::Ui(args) => ui::run(args),
        #[cfg(not(feature = "live"))]
        Command::LiveMissing { .. } => {
            let which = std::env::args().nth(1).unwrap_or_default();
            bail!(
                "`chids {which}` is live capture, which this build leaves out: build with \
                 `cargo build --release --features live` (needs clang and libbpf-dev; \
                 scripts/install-test-deps.sh installs them) and run target/release/chids as root"
            )
        }
    }
}

/// Finds the recordings under `paths`, saying which flag they came from.
fn recordings(paths: &[PathBuf], flag: &str) -> Result<Vec<Box<dyn EventSource>>> {
    if paths.is_empty() {
        bail!("{flag}: no path given");
    }
    let found = discover(paths).with_context(|| flag.to_string())?;
    warn_all(&found.warnings);
    Ok(found.recordings)
}

/// Parses a duration like `1s`, `500ms`, `2.5s`, `100us`, `250000ns` (bare
/// numbers are seconds) into nanoseconds.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (try 1s, 500ms)"))?;
    let scale = match unit.trim() {
        "" | "s" => 1e9,
        "ms" => 1e6,
        "us" | "µs" => 1e3,
        "ns" => 1.0,
        "m" | "min" => 60e9,
        "h" => 3600e9,
        u => {
            return Err(format!(
                "unknown unit {u:?} in {s:?} (use ns, us, ms, s, m, h)"
            ))
        }
    };
    let ns = (value * scale).round();
    if !(1.0..1e18).contains(&ns) {
        return Err(format!("{s:?} is out of range (must be at least 1ns)"));
    }
    Ok(ns as u64)
}

/// Parses `--window`: a duration from 1 ms to one hour.
pub fn parse_window(s: &str) -> Result<u64, String> {
    let ns = parse_duration(s)?;
    chids_core::features::check_window_ns(ns).map_err(|e| format!("{s:?}: {e}"))?;
    Ok(ns)
}

/// `--container` selects by the cgroups a capture records; text and LID-DS
/// recordings have none, so say that their events are all used.
fn warn_container_unused(recordings: &[Box<dyn EventSource>], container: Option<&str>) {
    let Some(id) = container else { return };
    for r in recordings {
        if r.info().format != chids_core::event::Format::Scap {
            eprintln!(
                "chids: warning: {}: --container {id} applies to .scap captures only; all of this recording's events are used",
                r.info().path.display()
            );
        }
    }
}

/// Prints warnings about recordings to stderr.
fn warn_all<'a>(warnings: impl IntoIterator<Item = &'a String>) {
    for w in warnings {
        eprintln!("chids: warning: {w}");
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_duration, parse_window};

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1s"), Ok(1_000_000_000));
        assert_eq!(parse_duration("500ms"), Ok(500_000_000));
        assert_eq!(parse_duration("2"), Ok(2_000_000_000));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("1 fortnight").is_err());
        assert!(parse_duration("").is_err());
        assert_eq!(parse_window("1ms"), Ok(1_000_000));
        assert!(parse_window("1us").is_err());
        assert!(parse_window("999us").is_err());
        assert!(parse_window("61m").is_err());
    }
}
