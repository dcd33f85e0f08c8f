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
        LiveCommand::Monitor(args) => run_monitor(&args),
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
        "{}: {} events in {:.2}s (chids cpu {:.2}s) from {} ({} dropped, {} unreadable paths){}",
        summary.out.display(),
        summary.events,
        summary.elapsed.as_secs_f64(),
        summary.cpu.as_secs_f64(),
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

fn run_monitor(args: &live_cli::MonitorArgs) -> Result<ExitCode, String> {
    use chids::live::MonitorUpdate;
    use std::io::Write;
    let opts = args.to_options()?;
    let tty = std::io::stdout().is_terminal();
    let summary = chids::live::monitor(opts, &mut |u| match u {
        MonitorUpdate::Started {
            cgroup,
            metrics,
            threshold,
        } => {
            eprintln!(
                "monitoring {} ({}), threshold {threshold:.6}{}",
                cgroup.name,
                cgroup.path.display(),
                metrics
                    .map(|a| format!(", metrics on http://{a}/metrics"))
                    .unwrap_or_default()
            );
        }
        MonitorUpdate::Window(_) => {}
        MonitorUpdate::Alert(a) => {
            let mut out = std::io::stdout().lock();
            if tty {
                let args: Vec<String> = a
                    .unseen_args
                    .iter()
                    .map(|u| format!("{} ({} by {})", u.arg, u.syscall, u.process))
                    .collect();
                let _ = writeln!(
                    out,
                    "ALERT {} window at {:.3}: error {:.5} > {:.5} ({} events){}{}",
                    a.container,
                    a.window_start_ns as f64 / 1e9,
                    a.error,
                    a.threshold,
                    a.events,
                    if a.unseen_syscalls.is_empty() {
                        String::new()
                    } else {
                        format!("; unseen syscalls: {}", a.unseen_syscalls.join(", "))
                    },
                    if args.is_empty() {
                        String::new()
                    } else {
                        format!("; unseen args: {}", args.join(", "))
                    }
                );
            } else {
                let _ = serde_json::to_writer(&mut out, a);
                let _ = writeln!(out);
            }
            let _ = out.flush();
        }
    })
    .map_err(|e| e.to_string())?;
    eprintln!(
        "{} events, {} windows, {} alerts in {:.2}s (chids cpu {:.2}s, {} dropped)",
        summary.events,
        summary.windows,
        summary.alerts,
        summary.elapsed.as_secs_f64(),
        summary.cpu.as_secs_f64(),
        summary.counters.dropped
    );
    Ok(ExitCode::SUCCESS)
}
