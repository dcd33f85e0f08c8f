//! Stand-alone front end for the live commands while the main CLI is being
//! rewritten; `chids record` / `chids monitor` use the same argument structs.

#[path = "../cli/live.rs"]
mod live_cli;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use live_cli::{LiveCli, LiveCommand};

fn main() -> ExitCode {
    let cli = LiveCli::parse();
    chids::live::stop_on_signals();
    let result = match cli.command {
        LiveCommand::Record(args) => run_record(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("chids: {e}");
            ExitCode::from(2)
        }
    }
}

fn run_record(args: &live_cli::RecordArgs) -> Result<ExitCode, String> {
    let opts = args.to_options()?;
    let tty = std::io::stderr().is_terminal();
    let summary = chids::live::record(opts, &mut |p| {
        if tty {
            eprint!(
                "\rrecording: {:>6.1}s {:>10} events {:>6} dropped",
                p.elapsed.as_secs_f64(),
                p.events,
                p.counters.dropped
            );
        }
    })
    .map_err(|e| e.to_string())?;
    if tty {
        eprintln!();
    }
    eprintln!(
        "{}: {} events in {:.1}s from {} ({} dropped, {} unreadable paths){}",
        summary.out.display(),
        summary.events,
        summary.elapsed.as_secs_f64(),
        summary.cgroup.display(),
        summary.counters.dropped,
        summary.counters.path_faults,
        summary
            .exploit_at
            .map(|t| format!(", exploit at {t:.3}"))
            .unwrap_or_default()
    );
    if summary.counters.dropped > 0 {
        eprintln!(
            "warning: {} events were lost (ring buffer full)",
            summary.counters.dropped
        );
    }
    Ok(match summary.command_status {
        Some(c) if c != 0 => ExitCode::from(c.clamp(1, 255) as u8),
        _ => ExitCode::SUCCESS,
    })
}
