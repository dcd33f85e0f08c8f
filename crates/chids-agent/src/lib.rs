//! `chids agent`: one process per host that watches every container,
//! learns a baseline per workload and then raises alerts on it.
//!
//! ```text
//! discovery (inotify on the cgroup tree) ─► session.capture.watch(container cgroup) at once
//!   └► identity (runtime state, CRI; worker thread) ─► workload key ─► per-container stream
//!        (events until then held, then replayed into it)
//!        learning:  .sc segments under <state>/learn/<workload>/ (writer thread) ─► train (bounded pool) ─► --models
//!        detecting: detector(workload bundle, Arc) ─► alerts ─► outbox (SQLite) ─► sinks (file, NATS)
//!   fleet (--nats): models trained here ─► broker (KV + object store) ─► every agent adopts them
//! ```
//!
//! The agent is a consumer of a [`Session`] (see `run.rs`); the loop runs
//! on one thread (the capture is not `Send`), and nothing slow runs on it:
//! identity look-ups, learning-file writes, training and NATS delivery
//! have threads of their own. Training runs on a bounded
//! pool of threads with the same [`chids_detect::train::train_calibrated`]
//! `chids baseline` uses, on the recordings the agent wrote, so a model the
//! agent learnt is a model `chids baseline` would have made from them,
//! operating threshold included.

pub mod cri;
mod detector;
pub mod discovery;
mod exec_spans;
pub mod fleet;
mod held;
mod host_file;
mod identify;
pub mod identity;
mod learn_names;
mod learn_writer;
mod learning;
pub mod metrics;
mod run;
mod runtime;
pub mod sink;
mod state;
mod status;
mod view;
pub mod workloads;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::sink::{private_fs, AlertDispatch};
use chids_live::capture::Counters;
use chids_live::cgroup::cgroup2_root;
use chids_live::monitor::Alert;
use chids_live::{LiveError, Session, StopToken};

use discovery::Discovery;
use run::AgentRun;
pub use runtime::ExecRecord;
pub use status::{
    read_status, AgentStatus, ContainerStatus, ExcludedStatus, IdentifyingStatus, ModelOrigin,
    SinkStatus, WorkloadStatus,
};
pub use view::rss_bytes;
use workloads::{ModelStore, WorkloadConfig};

/// What the agent does.
pub struct AgentOptions {
    /// The cgroup v2 root to watch (default: found in /proc/self/mountinfo).
    pub cgroup_root: Option<PathBuf>,
    /// Prefix of the runtimes' state folders (`/` on the host, the host
    /// mount inside a container).
    pub host_root: PathBuf,
    /// The CRI socket to ask for containerd / CRI-O containers' names
    /// (default: the usual sockets under `host_root`, when one answers).
    pub cri_socket: Option<PathBuf>,
    /// One model bundle folder per workload.
    pub models: PathBuf,
    /// Learning data, the status file, the alert outbox.
    pub state_dir: PathBuf,
    /// How long a workload without a model is recorded at least before
    /// training.
    pub learn_for: Duration,
    /// How long at most: learning goes on past `learn_for` while the
    /// estimated rate of new names does not fit the alarm budget
    /// (`chids_detect::completeness`), up to this.
    pub learn_max: Duration,
    /// Threshold multiplier of detection; `None`: each bundle's operating
    /// threshold (set from normal data when it was trained).
    pub theta: Option<f64>,
    /// Workload grouping rules (default: one workload per image) and
    /// which containers to watch (`include`, `exclude`).
    pub workloads: WorkloadConfig,
    /// The outbox, the per-workload budget and the sinks.
    pub alerts: AlertDispatch,
    pub metrics: Option<SocketAddr>,
    /// Stop after this long (default: until SIGINT/SIGTERM).
    pub duration: Option<Duration>,
    /// Window length of the models the agent trains.
    pub window_ns: u64,
    /// Training epochs (as `chids baseline --epochs`).
    pub epochs: usize,
    /// False-alarm budget of the operating thresholds the agent sets
    /// (alarm windows per hour of normal activity, as `baseline --budget`).
    pub budget_per_hour: f64,
    /// This node's name: recorded with the models it trains (and
    /// publishes), shown in `agent status`.
    pub node: String,
    /// The fleet's broker and buckets (`--nats`): models trained here are
    /// published there, and every workload's current version there is
    /// detected with here. `None`: the agent works alone.
    pub fleet: Option<fleet::FleetOptions>,
    /// Ends the agent cleanly when set (see [`StopToken::on_signals`]).
    pub stop: StopToken,
}

/// An alert of the agent: `monitor`'s keys (`"kind": "anomaly"` among
/// them; exec sessions are [`ExecRecord`]s) plus who the container is.
#[derive(Clone, Debug, Serialize)]
pub struct AgentAlert {
    /// Unique per node, stable across retries and restarts (see
    /// [`crate::sink::outbox`]); NATS's `Nats-Msg-Id`.
    pub alert_id: String,
    #[serde(flatten)]
    pub alert: Alert,
    #[serde(flatten)]
    pub who: AlertContainer,
    /// Where `threshold` comes from, in words (the workload's operating
    /// threshold and the data behind it, or `--theta`).
    pub threshold_source: String,
}

/// Who an alert or exec record is about: the container and its workload,
/// the same keys in every record the agent sends.
#[derive(Clone, Debug, Serialize)]
pub struct AlertContainer {
    pub container_id: String,
    pub container_name: String,
    pub image: Option<String>,
    pub runtime: String,
    pub workload: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k8s_container: Option<String>,
}

/// What the agent tells its caller as it runs.
#[derive(Debug)]
pub enum AgentUpdate<'a> {
    /// Everything is set up.
    Started {
        cgroup_root: &'a Path,
        metrics: Option<SocketAddr>,
    },
    /// A line for the log (container and workload changes, sink state).
    Log(String),
    Alert(&'a AgentAlert),
    /// An exec session started in a container (also sent to the sinks).
    Exec(&'a ExecRecord),
}

#[derive(Clone, Debug, Default)]
pub struct AgentSummary {
    pub events: u64,
    pub windows: u64,
    pub alerts: u64,
    pub containers_seen: u64,
    pub models_trained: u64,
    /// Events the windowers dropped for their time (more than two windows
    /// late, before a stream's first window, or absurdly far ahead).
    pub late: u64,
    /// The capture's loss counters at the end.
    pub counters: Counters,
    pub elapsed: Duration,
}

/// Runs until a stop is requested (`opts.stop`: SIGINT/SIGTERM) or the
/// duration passes.
pub fn agent(
    opts: AgentOptions,
    on_update: &mut dyn FnMut(AgentUpdate<'_>),
) -> Result<AgentSummary, LiveError> {
    if let Some(theta) = opts.theta.filter(|t| !(t.is_finite() && *t > 0.0)) {
        return Err(LiveError::Other(format!(
            "--theta {theta}: must be a positive number"
        )));
    }
    if !(opts.budget_per_hour.is_finite() && opts.budget_per_hour > 0.0) {
        return Err(LiveError::Other(format!(
            "--max-false-alarms {}: must be a positive rate",
            opts.budget_per_hour
        )));
    }
    let root = match &opts.cgroup_root {
        Some(r) => check_cgroup_root(r)?,
        None => cgroup2_root()?,
    };
    prepare_state_dir(&opts.state_dir)?;
    let store = ModelStore::open(&opts.models).map_err(LiveError::Other)?;
    let mut session = Session::open(opts.stop.clone(), opts.duration)?;
    let metrics_addr = opts.metrics;
    let mut run = AgentRun::new(opts, store, &root, on_update);
    let server = match metrics_addr {
        Some(addr) => Some(chids_live::metrics::serve(addr, Arc::clone(&run.metrics))?),
        None => None,
    };
    let (mut discovery, initial) = Discovery::new(&root)?;
    on_update(AgentUpdate::Started {
        cgroup_root: &root,
        metrics: server.as_ref().map(|s| s.addr),
    });
    session.begin()?;
    run.changes(initial, &mut session, on_update);
    loop {
        // Containers that came or went. Discovery trouble (inotify out of
        // watches) is logged and the agent goes on with what it watches.
        let changes = discovery.poll().unwrap_or_else(|e| {
            on_update(AgentUpdate::Log(format!("discovery: {e}")));
            Vec::new()
        });
        for e in discovery.take_errors() {
            on_update(AgentUpdate::Log(format!("discovery: {e}")));
        }
        run.changes(changes, &mut session, on_update);
        run.step(&mut session, on_update)?;
        if session.stop_reason()?.is_some() {
            break;
        }
    }
    run.finish(&mut session, on_update)?;
    drop(server);
    // Training threads finish on their own; their results are not needed.
    Ok(std::mem::take(&mut run.summary))
}

/// `--cgroup-root` must be a folder on a cgroup v2 file system: anything
/// else would start an agent that never finds a container, silently.
fn check_cgroup_root(root: &Path) -> Result<PathBuf, LiveError> {
    let refused =
        |why: String| LiveError::Other(format!("--cgroup-root {}: {why}", root.display()));
    let meta = std::fs::metadata(root).map_err(|e| refused(e.to_string()))?;
    if !meta.is_dir() {
        return Err(refused("not a folder".into()));
    }
    let c_path = std::ffi::CString::new(root.as_os_str().as_encoded_bytes())
        .map_err(|_| refused("contains a NUL byte".into()))?;
    // SAFETY: a valid C string and a zeroed statfs for the kernel to fill.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c_path.as_ptr(), &mut fs) } != 0 {
        return Err(refused(std::io::Error::last_os_error().to_string()));
    }
    // f_type is i64 on x86_64, u32 or u64 elsewhere: compared as u64.
    if fs.f_type as u64 != libc::CGROUP2_SUPER_MAGIC as u64 {
        return Err(refused(
            "not on a cgroup v2 file system (mounted at /sys/fs/cgroup on most hosts)".into(),
        ));
    }
    Ok(root.to_path_buf())
}

/// Creates the state folder and its `learn/` (0700), never through a
/// planted link.
fn prepare_state_dir(state_dir: &Path) -> Result<(), LiveError> {
    for d in [state_dir.to_path_buf(), state_dir.join("learn")] {
        private_fs::private_dir(&d).map_err(|e| LiveError::Other(format!("--state-dir: {e}")))?;
    }
    Ok(())
}
