//! `chids agent` (feature `live`): flags, and printing what the agent
//! reports. The work is done by `chids_agent`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use chids_agent::sink::budget::AlertBudget;
use chids_agent::sink::outbox::{self, Outbox, Retention};
use chids_agent::sink::{AlertDispatch, AlertSink, FileSink, NatsOptions, NatsSink};
use chids_agent::{self as agent, AgentOptions, AgentUpdate};

use super::live::parse_duration;

/// `eprintln!` that gives up quietly when stderr cannot be written.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

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
    /// Print the alerts stored in the agent's outbox, one JSON object a
    /// line, oldest first (works while the agent runs).
    Alerts {
        #[arg(long, value_name = "DIR", default_value = DEFAULT_STATE)]
        state_dir: PathBuf,
        /// Only alerts stored within this long (e.g. 30m, 2h, 1d).
        #[arg(long, value_name = "DUR", value_parser = humantime::parse_duration)]
        since: Option<Duration>,
        /// Only alerts not yet delivered to NATS.
        #[arg(long)]
        undelivered: bool,
    },
}

const DEFAULT_STATE: &str = "/var/lib/chids";

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Learning data, the status file and the alert outbox live here
    /// (folders 0700, files 0600).
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
    /// This node's name, recorded with the models it trains and publishes
    /// (default: the host name; in a DaemonSet give the node's, e.g.
    /// `--node $(NODE_NAME)`).
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,
    /// Key-value bucket of the fleet's model versions (with --nats: models
    /// trained here are published, and each workload's current version
    /// there is detected with here).
    #[arg(long, default_value = "chids-models", value_name = "NAME")]
    pub models_bucket: String,
    /// Object-store bucket of the fleet's bundle files (with --nats).
    #[arg(long, default_value = "chids-bundles", value_name = "NAME")]
    pub bundles_bucket: String,
    /// Pooled learning (with --nats): every node learning a workload
    /// uploads its learning data to this object store, and the first to
    /// finish learning trains one model on all of them (its training lease
    /// is in the key-value bucket of the same name).
    #[arg(long, default_value = "chids-learning", value_name = "NAME")]
    pub learning_bucket: String,
    /// No pooled learning (with --nats): the first node to train a
    /// workload, on its own data, trains it for all.
    #[arg(long)]
    pub no_pool: bool,
    /// Work alone even with --nats: no models from or to the fleet (the
    /// broker gets alerts only).
    #[arg(long)]
    pub no_fleet: bool,
    /// NATS subject of the alerts.
    #[arg(long, value_name = "SUBJ", default_value = "chids.alerts")]
    pub subject: String,
    /// Publish plainly instead of through JetStream: at most once, no
    /// acknowledgement (default: an alert counts as delivered only when a
    /// JetStream stream acknowledged it).
    #[arg(long)]
    pub no_jetstream: bool,
    /// Largest alert outbox, in MiB: past it the oldest delivered alerts
    /// go, then undelivered ones (counted lost).
    #[arg(long, alias = "spool-max-mib", value_name = "MIB", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub outbox_max_mib: u64,
    /// How long the outbox keeps alerts; undelivered ones older than this
    /// are dropped (counted lost).
    #[arg(long, value_name = "DUR", default_value = "7d", value_parser = humantime::parse_duration)]
    pub outbox_max_age: Duration,
    /// Alerts per workload per period (`N` a minute, or `N/DUR`, e.g.
    /// `20/5m`); past it a workload's alerts of the period are folded into
    /// one `"kind":"suppressed"` record (0: no limit).
    #[arg(long, value_name = "N[/DUR]", default_value = "10/1m", value_parser = parse_alert_rate)]
    pub alert_rate: (u32, Duration),
    /// Serve Prometheus metrics at ADDR (loopback, e.g. 127.0.0.1:9464, or
    /// the pod's address; it tells container names, images and counts).
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

/// `N` (a minute) or `N/DUR`.
fn parse_alert_rate(s: &str) -> Result<(u32, Duration), String> {
    let (n, period) = match s.split_once('/') {
        Some((n, d)) => (
            n,
            humantime::parse_duration(d.trim()).map_err(|e| format!("{d}: {e}"))?,
        ),
        None => (s, Duration::from_secs(60)),
    };
    let n = n
        .trim()
        .parse::<u32>()
        .map_err(|e| format!("{n}: {e} (expected N or N/DUR, e.g. 10/1m)"))?;
    if period < Duration::from_secs(1) {
        return Err(format!("{s}: the period must be at least 1s"));
    }
    Ok((n, period))
}

pub fn run(args: AgentArgs) -> Result<ExitCode, String> {
    match args.command {
        Some(AgentCommand::Status { state_dir, json }) => status(&state_dir, json),
        Some(AgentCommand::Alerts {
            state_dir,
            since,
            undelivered,
        }) => list_alerts(&state_dir, since, undelivered),
        None => run_agent(args.run),
    }
}

fn list_alerts(
    state_dir: &std::path::Path,
    since: Option<Duration>,
    undelivered: bool,
) -> Result<ExitCode, String> {
    use std::io::Write;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    outbox::list(state_dir, since, undelivered, &mut |body| {
        out.write_all(body)?;
        out.write_all(b"\n")
    })
    .map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())?;
    Ok(ExitCode::SUCCESS)
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
        if let Some(m) = &w.model {
            println!("  model {}", describe_origin(m));
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
    print_identifying(&st);
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
            "sink {}: {} delivered, {} pending ({} bytes), {} lost, {}",
            s.kind,
            s.delivered,
            s.pending,
            s.pending_bytes,
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

/// Containers watched while the agent finds out who they are: their
/// events are held meanwhile.
fn print_identifying(st: &agent::AgentStatus) {
    if st.identifying.is_empty() {
        return;
    }
    println!();
    println!(
        "{:<24} {:<12} {:>10} {:>10} {:>8}",
        "IDENTIFYING", "RUNTIME", "SINCE", "HELD", "DROPPED"
    );
    for p in &st.identifying {
        let since = st.updated_ns.saturating_sub(p.since_ns) as f64 / 1e9;
        println!(
            "{:<24} {:<12} {:>9.1}s {:>10} {:>8}",
            &p.id[..p.id.len().min(12)],
            p.runtime,
            since,
            p.held_events,
            p.held_dropped
        );
    }
}

/// `version 3 from node-a (trained, 2026-12-07T21:30:00Z)`; a pooled
/// model adds `, on the data of node-a, node-b`.
fn describe_origin(m: &agent::ModelOrigin) -> String {
    let when = std::time::UNIX_EPOCH + Duration::from_nanos(m.time_ns);
    let pooled = if m.learnt_from.is_empty() {
        String::new()
    } else {
        format!(", on the data of {}", m.learnt_from.join(", "))
    };
    format!(
        "{} from {} ({}, {}{pooled})",
        m.version.map_or_else(
            || "local (not on the fleet)".to_string(),
            |v| format!("version {v}")
        ),
        m.node,
        m.reason,
        humantime::format_rfc3339_seconds(when)
    )
}

/// The host's name, for `--node`'s default.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
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
    let retention = Retention {
        max_bytes: a.outbox_max_mib << 20,
        max_age: a.outbox_max_age,
    };
    let outbox =
        Outbox::open(&a.state_dir, retention, a.nats.is_some()).map_err(|e| e.to_string())?;
    if let Some(url) = &a.nats {
        let options = NatsOptions {
            url: url.clone(),
            subject: a.subject.clone(),
            jetstream: !a.no_jetstream,
        };
        let reader = outbox.reader().map_err(|e| e.to_string())?;
        sinks.push(Box::new(
            NatsSink::start(options, reader, outbox.counters()).map_err(|e| e.to_string())?,
        ));
    }
    let budget = AlertBudget::new(a.alert_rate.0, a.alert_rate.1);
    let node = a.node.clone().unwrap_or_else(host_name);
    let fleet = a
        .nats
        .as_ref()
        .filter(|_| !a.no_fleet)
        .map(|url| agent::fleet::FleetOptions {
            url: url.clone(),
            models_bucket: a.models_bucket.clone(),
            bundles_bucket: a.bundles_bucket.clone(),
            learning_bucket: (!a.no_pool).then(|| a.learning_bucket.clone()),
            node: node.clone(),
        });
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
        alerts: AlertDispatch::new(outbox, budget, sinks).map_err(|e| e.to_string())?,
        metrics: a.metrics,
        duration: a.duration,
        window_ns: a.window.as_nanos() as u64,
        epochs: a.epochs,
        budget_per_hour: a.alarm_budget,
        node,
        fleet,
        stop,
    };
    // The running agent's log must not stop it: a line that cannot be
    // written (stderr on a full disk) is lost, where eprintln! would panic.
    let summary = agent::agent(opts, &mut |u| match u {
        AgentUpdate::Started {
            cgroup_root,
            metrics,
        } => say!(
            "chids agent: watching containers under {}{}",
            cgroup_root.display(),
            metrics
                .map(|m| format!(", metrics on http://{m}/metrics"))
                .unwrap_or_default()
        ),
        AgentUpdate::Log(line) => say!("chids agent: {line}"),
        // Alerts reach stdout only through a sink.
        AgentUpdate::Alert(_) => {}
        AgentUpdate::Exec(x) => say!(
            "chids agent: exec in {} ({}): {} as uid {}",
            x.who.container_name,
            &x.who.container_id[..x.who.container_id.len().min(12)],
            x.command,
            x.uid
        ),
    })
    .map_err(|e| e.to_string())?;
    report_summary(&summary);
    Ok(ExitCode::SUCCESS)
}

/// What the agent did, and what it lost, when it has stopped.
fn report_summary(summary: &agent::AgentSummary) {
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
}
