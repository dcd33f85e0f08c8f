//! `chids agent` (feature `live`): flags, and printing what the agent
//! reports. The work is done by `chids_agent`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use chids_agent::sink::{AlertSink, FileSink, NatsOptions, NatsSink};
use chids_agent::{self as agent, AgentOptions, AgentUpdate};

use super::live::parse_duration;

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AgentArgs {
    #[command(subcommand)]
    pub command: Option<AgentCommand>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Subcommand, Debug)]
pub enum AgentCommand {
    /// Print which workloads are learning or detecting, and the containers
    /// watched (read from the running agent's status file).
    Status {
        #[arg(long, value_name = "DIR", default_value = DEFAULT_STATE)]
        state_dir: PathBuf,
        /// Print the status file as it is (JSON).
        #[arg(long)]
        json: bool,
    },
}

const DEFAULT_STATE: &str = "/var/lib/chids";

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Learning data, the status file and the alert spool live here.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_STATE)]
    pub state_dir: PathBuf,
    /// One model bundle per workload (default: STATE_DIR/models).
    #[arg(long, value_name = "DIR")]
    pub models: Option<PathBuf>,
    /// How long a workload without a model is recorded before its baseline
    /// is trained (time with at least one of its containers running).
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub learn_for: Duration,
    /// Watch only containers matching this selector (repeatable: any of
    /// them): name=GLOB, image=GLOB, namespace=GLOB, pod=GLOB or
    /// label=KEY=GLOB (`*` is any run of characters). Also `include` in
    /// --workloads.
    #[arg(long, value_name = "SELECTOR", value_parser = agent::workloads::Selector::parse)]
    pub include: Vec<agent::workloads::Selector>,
    /// Never watch containers matching this selector (repeatable), as
    /// --include. Also `exclude` in --workloads.
    #[arg(long, value_name = "SELECTOR", value_parser = agent::workloads::Selector::parse)]
    pub exclude: Vec<agent::workloads::Selector>,
    /// How long at most: past --learn-for a workload learns on while the
    /// estimated rate of names it never saw (system calls, paths,
    /// endpoints) does not fit the alarm budget (--max-false-alarms), up
    /// to this; then it detects, with a warning naming its expected
    /// false-alarm rate. Default: three times --learn-for.
    #[arg(long, value_parser = parse_duration)]
    pub learn_max: Option<Duration>,
    /// Threshold multiplier: alert when a window's error exceeds theta ×
    /// the largest training error (default: each model's operating
    /// threshold, set from normal data when it was trained).
    #[arg(long)]
    pub theta: Option<f64>,
    /// Workload grouping rules (JSON; default: one workload per image).
    #[arg(long, value_name = "FILE")]
    pub workloads: Option<PathBuf>,
    /// Append alerts as JSON lines to FILE (`-` for stdout). Without
    /// --alerts or --nats, alerts go to stdout.
    #[arg(long, value_name = "FILE")]
    pub alerts: Option<PathBuf>,
    /// Publish alerts to this NATS server (`nats://HOST:PORT`).
    #[arg(long, value_name = "URL")]
    pub nats: Option<String>,
    /// NATS subject of the alerts.
    #[arg(long, value_name = "SUBJ", default_value = "chids.alerts")]
    pub subject: String,
    /// Largest on-disk spool of undelivered alerts, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub spool_max_mib: u64,
    /// Serve Prometheus metrics at ADDR (e.g. 0.0.0.0:9464).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// Stop after this long (default: until SIGINT/SIGTERM).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Where the host's runtime state (/run, /var/lib) is mounted, when the
    /// agent runs in a container.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub host_root: PathBuf,
    /// The cgroup v2 root to watch (default: from /proc/self/mountinfo).
    #[arg(long, value_name = "DIR")]
    pub cgroup_root: Option<PathBuf>,
    /// The CRI socket of containerd or CRI-O, asked for the Kubernetes
    /// names of their containers (default: the usual sockets under
    /// --host-root, when one answers).
    #[arg(long, value_name = "PATH")]
    pub cri_socket: Option<PathBuf>,
    /// Window length of the baselines the agent trains.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub window: Duration,
    /// Training epochs of the baselines the agent trains (as `baseline --epochs`).
    #[arg(long, default_value_t = 120)]
    pub epochs: usize,
    /// False-alarm budget of the operating thresholds the agent calibrates
    /// when a workload's learning ends (as `baseline --max-false-alarms`):
    /// alarm windows per hour of normal activity (e.g. 1/h, 10/d).
    #[arg(long = "max-false-alarms", value_name = "RATE", default_value = "1/h", value_parser = chids_detect::calibrate::parse_budget)]
    pub alarm_budget: f64,
}

pub fn run(args: AgentArgs) -> Result<ExitCode, String> {
    match args.command {
        Some(AgentCommand::Status { state_dir, json }) => status(&state_dir, json),
        None => run_agent(args.run),
    }
}

fn status(state_dir: &std::path::Path, json: bool) -> Result<ExitCode, String> {
    let st = agent::read_status(state_dir)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&st).map_err(|e| e.to_string())?
        );
        return Ok(ExitCode::SUCCESS);
    }
    let age_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
        .saturating_sub(st.updated_ns) as f64
        / 1e9;
    println!(
        "agent {} (status {:.0}s old), {} events ({} lost in the kernel, {} late), {} alerts, rss {:.1} MiB, {} cgroups watched",
        if st.running {
            format!("running, pid {}", st.pid)
        } else {
            "stopped".to_string()
        },
        age_s,
        st.events,
        st.dropped_events,
        st.late_events,
        st.alerts,
        st.rss_bytes as f64 / (1 << 20) as f64,
        st.kernel_watched
    );
    println!(
        "{:<40} {:<10} {:>10} {:>12} {:>8} {:>8}",
        "WORKLOAD", "STATE", "CONTAINERS", "LEARNED", "ALERTS", "LATE"
    );
    for w in &st.workloads {
        let learned = if w.state == "learning" {
            format!("{:.0}/{:.0}s", w.learned_seconds, st.learn_for_seconds)
        } else {
            "-".into()
        };
        println!(
            "{:<40} {:<10} {:>10} {:>12} {:>8} {:>8}",
            w.workload, w.state, w.containers, learned, w.alerts, w.late_events
        );
        if let (Some(t), Some(source)) = (w.threshold, &w.threshold_source) {
            println!(
                "  threshold {t:.6}: {source}; trained on {} windows",
                w.training_windows
            );
        }
        if let Some(rate) = w.new_names_per_hour {
            println!("  new names still expected: about {rate:.1} per hour");
        }
        if w.errors > 0 {
            println!("  {} errors (see the agent's log)", w.errors);
        }
    }
    if !st.excluded.is_empty() {
        println!();
        println!("{:<24} {:<14} {:<32} WHY", "NOT WATCHED", "ID", "IMAGE");
        for x in &st.excluded {
            println!(
                "{:<24} {:<14} {:<32} {}",
                x.name,
                &x.id[..x.id.len().min(12)],
                x.image.as_deref().unwrap_or("?"),
                x.why
            );
        }
    }
    println!();
    println!(
        "{:<24} {:<14} {:<32} {:>10} {:>8} {:>8}",
        "CONTAINER", "ID", "IMAGE", "EVENTS", "ALERTS", "LATE"
    );
    for c in &st.containers {
        println!(
            "{:<24} {:<14} {:<32} {:>10} {:>8} {:>8}",
            c.name,
            &c.id[..c.id.len().min(12)],
            c.image.as_deref().unwrap_or("?"),
            c.events,
            c.alerts,
            c.late_events
        );
    }
    for s in &st.sinks {
        println!(
            "sink {}: {} delivered, {} spooled ({} bytes), {} lost, {}",
            s.kind,
            s.delivered,
            s.spooled,
            s.spooled_bytes,
            s.lost,
            if s.connected {
                "connected"
            } else {
                "not connected"
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn run_agent(a: RunArgs) -> Result<ExitCode, String> {
    let stop = chids_live::StopToken::on_signals().map_err(|e| e.to_string())?;
    let mut workloads = match &a.workloads {
        Some(p) => agent::workloads::WorkloadConfig::load(p)?,
        None => agent::workloads::WorkloadConfig::default(),
    };
    workloads.include.extend(a.include.iter().cloned());
    workloads.exclude.extend(a.exclude.iter().cloned());
    let mut sinks: Vec<Box<dyn AlertSink>> = Vec::new();
    let mut to_stdout = a.alerts.is_none() && a.nats.is_none();
    match &a.alerts {
        Some(p) if p.as_os_str() == "-" => to_stdout = true,
        Some(p) => sinks.push(Box::new(FileSink::open(p).map_err(|e| e.to_string())?)),
        None => {}
    }
    if to_stdout {
        sinks.push(Box::new(FileSink::to_writer(
            Box::new(std::io::stdout()),
            "stdout",
        )));
    }
    if let Some(url) = &a.nats {
        sinks.push(Box::new(
            NatsSink::start(NatsOptions {
                url: url.clone(),
                subject: a.subject.clone(),
                spool_dir: a.state_dir.join("spool"),
                spool_max: a.spool_max_mib << 20,
            })
            .map_err(|e| e.to_string())?,
        ));
    }
    let opts = AgentOptions {
        cgroup_root: a.cgroup_root.clone(),
        host_root: a.host_root.clone(),
        cri_socket: a.cri_socket.clone(),
        models: a
            .models
            .clone()
            .unwrap_or_else(|| a.state_dir.join("models")),
        state_dir: a.state_dir.clone(),
        learn_for: a.learn_for,
        learn_max: a.learn_max.unwrap_or(a.learn_for * 3),
        theta: a.theta,
        workloads,
        sinks,
        metrics: a.metrics,
        duration: a.duration,
        window_ns: a.window.as_nanos() as u64,
        epochs: a.epochs,
        budget_per_hour: a.alarm_budget,
        stop,
    };
    let summary = agent::agent(opts, &mut |u| match u {
        AgentUpdate::Started {
            cgroup_root,
            metrics,
        } => eprintln!(
            "chids agent: watching containers under {}{}",
            cgroup_root.display(),
            metrics
                .map(|m| format!(", metrics on http://{m}/metrics"))
                .unwrap_or_default()
        ),
        AgentUpdate::Log(line) => eprintln!("chids agent: {line}"),
        // Alerts reach stdout only through a sink.
        AgentUpdate::Alert(_) => {}
        AgentUpdate::Exec(x) => eprintln!(
            "chids agent: exec in {} ({}): {} as uid {}",
            x.container_name,
            &x.container_id[..x.container_id.len().min(12)],
            x.command,
            x.uid
        ),
    })
    .map_err(|e| e.to_string())?;
    eprintln!(
        "chids agent: stopped after {:.1}s: {} containers, {} events, {} windows, {} alerts, {} models trained",
        summary.elapsed.as_secs_f64(),
        summary.containers_seen,
        summary.events,
        summary.windows,
        summary.alerts,
        summary.models_trained
    );
    super::live::report_losses(&summary.counters);
    if summary.counters.dropped > 0 {
        eprintln!(
            "chids agent: warning: {} event(s) lost in the kernel (ring buffer full)",
            summary.counters.dropped
        );
    }
    if summary.late > 0 {
        eprintln!(
            "chids agent: warning: dropped {} event(s) whose time was out of order (more than two windows late, or before their stream's first window)",
            summary.late
        );
    }
    Ok(ExitCode::SUCCESS)
}
