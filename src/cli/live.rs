//! Command-line arguments of `chids record` and `chids monitor` (clap).
//!
//! Mounted by `src/cli/mod.rs` when the `live` feature is on. Parsing and
//! printing only: the work is done by `chids_live::record` /
//! `chids_live::monitor`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
#[cfg(test)]
use clap::Parser;

/// What to capture: exactly one of a cgroup, a container, or a command.
#[derive(Args, Clone, Debug)]
pub struct TargetArgs {
    /// A cgroup v2 directory (absolute, or relative to the cgroup2 root);
    /// its child cgroups are captured too.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["container", "command"])]
    pub cgroup: Option<PathBuf>,
    /// A container id (or a unique prefix of at least 4 hex digits):
    /// docker, containerd, cri-o or podman.
    #[arg(long, value_name = "ID", conflicts_with = "command")]
    pub container: Option<String>,
    /// Run this command in a fresh cgroup with its own mount/pid/uts/ipc
    /// namespaces and capture it until it exits.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// `chids record`: capture system calls into a LID-DS 2021 style zip.
#[derive(Args, Clone, Debug)]
pub struct RecordArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// The recording to write (`NAME.zip` holding `NAME.sc` and `NAME.json`).
    #[arg(long, short, value_name = "REC.zip")]
    pub out: PathBuf,
    /// Stop after this long (e.g. `10s`, `2m`, `500ms`; plain number = seconds).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Attack start in Unix seconds (written as `time.exploit[0].absolute`).
    #[arg(long, value_name = "UNIX_SECS")]
    pub exploit_at: Option<f64>,
    /// A file whose first change during the recording stamps the attack
    /// start: its content if that is Unix seconds, else its mtime. Must be a
    /// regular file (or not exist yet); it is never followed if a symlink.
    #[arg(long, value_name = "FILE")]
    pub marker_file: Option<PathBuf>,
    /// Replace the output file if it exists.
    #[arg(long)]
    pub force: bool,
}

/// `chids monitor`: score a container's windows live against a model.
#[derive(Args, Clone, Debug)]
pub struct MonitorArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Model bundle folder written by `chids baseline`.
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// Threshold multiplier: alert when a window's error exceeds theta ×
    /// the largest training error. Default: the model's operating
    /// threshold (set by `chids baseline` from normal data).
    #[arg(long, conflicts_with = "threshold")]
    pub theta: Option<f64>,
    /// Alert when a window's error exceeds this value.
    #[arg(long)]
    pub threshold: Option<f64>,
    /// Append one JSON line per alert to FILE (flushed per alert; created
    /// with mode 0600). A symlink there is refused, and so is anything but
    /// a regular file with one link.
    #[arg(long, value_name = "FILE")]
    pub alerts: Option<PathBuf>,
    /// Let --alerts follow a symlink (e.g. to /dev/stdout).
    #[arg(long, requires = "alerts")]
    pub alerts_follow_symlink: bool,
    /// Serve Prometheus metrics at ADDR (e.g. 127.0.0.1:9464).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<std::net::SocketAddr>,
    /// Stop after this long (default: until the command exits, or Ctrl-C).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Where window features are computed: `kernel` (BPF maps, one record
    /// only per new argument; needs a modern bundle with per-thread edges,
    /// what `chids baseline` trains by default), `events` (one record per
    /// event, any bundle), `auto` (kernel when the bundle allows, else
    /// events, saying why once).
    #[arg(long, value_enum, default_value_t = WindowsArg::Auto)]
    pub windows: WindowsArg,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowsArg {
    Auto,
    Kernel,
    #[value(alias = "event")]
    Events,
}

/// A duration flag (`10s`, `2m`, `500ms`, bare seconds): the parser every
/// chids command uses.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    super::parse_duration(s).map(Duration::from_nanos)
}

/// A parser with just the live subcommands, for the argument tests.
#[cfg(test)]
#[derive(Parser, Debug)]
#[command(name = "chids")]
pub struct LiveCli {
    #[command(subcommand)]
    pub command: LiveCommand,
}

#[cfg(test)]
#[derive(clap::Subcommand, Debug)]
pub enum LiveCommand {
    /// Capture a container's system calls into a LID-DS 2021 style zip.
    Record(RecordArgs),
    /// Score a container's windows live and alert on anomalous ones.
    Monitor(MonitorArgs),
}

#[cfg(feature = "live")]
pub use convert::{run_monitor, run_record};

#[cfg(feature = "live")]
mod convert {
    use super::*;
    use chids_live::{MonitorOptions, RecordOptions, Target};
    use std::io::IsTerminal;
    use std::process::ExitCode;

    impl TargetArgs {
        pub fn to_target(&self) -> Result<Target, String> {
            match (&self.cgroup, &self.container, self.command.is_empty()) {
                (Some(p), None, true) => Ok(Target::Cgroup(p.clone())),
                (None, Some(id), true) => Ok(Target::Container(id.clone())),
                (None, None, false) => Ok(Target::Command(self.command.clone())),
                (None, None, true) => {
                    Err("say what to capture: --cgroup PATH, --container ID, or -- CMD ARGS".into())
                }
                _ => Err("give only one of --cgroup, --container, -- CMD".into()),
            }
        }
    }

    impl RecordArgs {
        pub fn to_options(&self) -> Result<RecordOptions, String> {
            Ok(RecordOptions {
                target: self.target.to_target()?,
                out: self.out.clone(),
                duration: self.duration,
                exploit_at: self.exploit_at,
                marker_file: self.marker_file.clone(),
                force: self.force,
                stop: chids_live::StopToken::new(),
            })
        }
    }

    impl MonitorArgs {
        pub fn to_options(&self) -> Result<MonitorOptions, String> {
            Ok(MonitorOptions {
                target: self.target.to_target()?,
                model_dir: self.model.clone(),
                theta: self.theta,
                threshold: self.threshold,
                alerts: self.alerts.clone(),
                alerts_follow_symlink: self.alerts_follow_symlink,
                metrics: self.metrics,
                duration: self.duration,
                windows: match self.windows {
                    WindowsArg::Auto => chids_live::WindowPath::Auto,
                    WindowsArg::Kernel => chids_live::WindowPath::Kernel,
                    WindowsArg::Events => chids_live::WindowPath::Events,
                },
                stop: chids_live::StopToken::new(),
            })
        }
    }

    /// `chids record`: runs the capture and prints its summary (stderr).
    pub fn run_record(args: &RecordArgs) -> Result<ExitCode, String> {
        let mut opts = args.to_options()?;
        opts.stop = chids_live::StopToken::on_signals().map_err(|e| e.to_string())?;
        let tty = std::io::stderr().is_terminal();
        let summary = chids_live::record(opts, &mut |p| {
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
        for w in &summary.warnings {
            eprintln!("chids: warning: {w}");
        }
        report_losses(&summary.counters);
        report_command(summary.stopped_by, summary.command_status);
        // The recording is good: that is what chids' status says. The
        // command's own status is reported above, never passed off as
        // chids' (a command exiting 101 would look like a chids panic).
        Ok(ExitCode::SUCCESS)
    }

    /// `chids monitor`: alerts to stdout (a human line on a terminal, else one
    /// JSON line each), status to stderr.
    pub fn run_monitor(args: &MonitorArgs) -> Result<ExitCode, String> {
        use chids_live::MonitorUpdate;
        use std::io::Write;
        let mut opts = args.to_options()?;
        opts.stop = chids_live::StopToken::on_signals().map_err(|e| e.to_string())?;
        let tty = std::io::stdout().is_terminal();
        let summary = chids_live::monitor(opts, &mut |u| match u {
            MonitorUpdate::Started {
                cgroup,
                metrics,
                threshold,
                kernel_windows,
                per_event_reason,
            } => {
                eprintln!(
                    "monitoring {} ({}), threshold {threshold:.6}, {} windows{}",
                    cgroup.name,
                    cgroup.path.display(),
                    if kernel_windows { "kernel" } else { "per-event" },
                    metrics
                        .map(|a| format!(", metrics on http://{a}/metrics"))
                        .unwrap_or_default()
                );
                if let Some(why) = per_event_reason {
                    eprintln!("chids: per-event windows (slower): {why}");
                }
            }
            MonitorUpdate::Window(_) => {}
            MonitorUpdate::Alert(a) => {
                let mut out = std::io::stdout().lock();
                if tty {
                    let w = &a.window;
                    let args: Vec<String> = w
                        .reasons
                        .unseen_args
                        .iter()
                        .map(|u| format!("{} ({} by {})", u.arg, u.syscall, u.process))
                        .collect();
                    let _ = writeln!(
                        out,
                        "ALERT {} window at {:.3}: score {:.2} (error {:.5} / threshold {:.5}, {} events){}{}{}",
                        a.container,
                        w.window_start_ns as f64 / 1e9,
                        w.score,
                        w.error,
                        w.threshold,
                        w.events,
                        if w.reasons.unseen_syscalls.is_empty() {
                            String::new()
                        } else {
                            format!(
                                "; unseen syscalls: {}",
                                w.reasons.unseen_syscalls.join(", ")
                            )
                        },
                        if args.is_empty() {
                            String::new()
                        } else {
                            format!("; unseen args: {}", args.join(", "))
                        },
                        rising_text(&w.reasons.rising)
                    );
                } else {
                    let _ = serde_json::to_writer(&mut out, a);
                    let _ = writeln!(out);
                }
                let _ = out.flush();
            }
        })
        .map_err(|e| e.to_string())?;
        report_losses(&summary.counters);
        report_command(summary.stopped_by, summary.command_status);
        eprintln!(
            "{} events, {} windows, {} alerts in {:.2}s (chids cpu {:.2}s, {} dropped{})",
            summary.events,
            summary.windows,
            summary.alerts,
            summary.elapsed.as_secs_f64(),
            summary.cpu.as_secs_f64(),
            summary.counters.dropped,
            if summary.kernel_windows {
                format!(
                    ", kernel windows, {} records lost",
                    summary.counters.agg_lost
                )
            } else {
                String::new()
            }
        );
        if summary.out_of_order > 0 {
            eprintln!(
                "warning: dropped {} event(s) that arrived more than two windows out of time order",
                summary.out_of_order
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Says what the capture could not see as it should, when anything.
pub(super) fn report_losses(c: &chids_live::Counters) {
    if c.migrated > 0 {
        eprintln!(
            "chids: warning: {} watched task(s) moved out of the watched cgroup; they were followed",
            c.migrated
        );
    }
    if c.exec_unmatched > 0 {
        eprintln!(
            "chids: warning: {} exec(s) lost their enter event (path): they entered before the capture",
            c.exec_unmatched
        );
    }
    if c.undecodable > 0 {
        eprintln!(
            "chids: warning: {} ring-buffer record(s) could not be decoded",
            c.undecodable
        );
    }
}

/// Says how a sandboxed command ended, when that is news.
fn report_command(stopped_by: chids_live::StopReason, status: Option<i32>) {
    use chids_live::StopReason;
    match (stopped_by, status) {
        (StopReason::CommandExited, Some(0)) | (_, None) => {}
        (StopReason::CommandExited, Some(code)) if code > 128 => {
            eprintln!("chids: the command was killed by signal {}", code - 128)
        }
        (StopReason::CommandExited, Some(code)) => {
            eprintln!("chids: the command exited with status {code}")
        }
        (StopReason::Duration, Some(_)) => {
            eprintln!("chids: the command was still running at --duration and was stopped")
        }
        (StopReason::Signal, Some(_)) => {
            eprintln!("chids: the command was stopped (chids received a stop signal)")
        }
    }
}

/// `; rising: openat 40 (training max 10), ...`, or nothing.
fn rising_text(rising: &[chids_detect::alert::Rising]) -> String {
    if rising.is_empty() {
        return String::new();
    }
    let items: Vec<String> = rising
        .iter()
        .map(|r| format!("{} {} (training max {})", r.what, r.count, r.training_max))
        .collect();
    format!("; rising: {}", items.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("3 parsecs").is_err());
    }

    #[test]
    fn record_args_parse() {
        let cli = LiveCli::try_parse_from([
            "chids",
            "record",
            "--out",
            "r.zip",
            "--duration",
            "5s",
            "--",
            "sh",
            "-c",
            "true",
        ])
        .unwrap();
        let LiveCommand::Record(r) = cli.command else {
            panic!("record expected")
        };
        assert_eq!(r.target.command, ["sh", "-c", "true"]);
        assert_eq!(r.duration, Some(Duration::from_secs(5)));
        assert!(LiveCli::try_parse_from([
            "chids",
            "record",
            "--out",
            "r.zip",
            "--cgroup",
            "a",
            "--container",
            "abcd",
        ])
        .is_err());
        let cli = LiveCli::try_parse_from([
            "chids",
            "monitor",
            "--model",
            "m",
            "--theta",
            "1.4",
            "--metrics",
            "127.0.0.1:9464",
            "--container",
            "abcd12",
        ])
        .unwrap();
        let LiveCommand::Monitor(m) = cli.command else {
            panic!("monitor expected")
        };
        assert_eq!(m.theta, Some(1.4));
        assert_eq!(m.target.container.as_deref(), Some("abcd12"));
    }
}
