//! `chids agent`: one process per host that watches every container,
//! learns a baseline per workload and then raises alerts on it.
//!
//! ```text
//! discovery (inotify on the cgroup tree) ─► identity (runtime state) ─► workload key
//!   └► capture.watch(container cgroup) ─► per-container stream
//!        learning:  .sc lines under <state>/learn/<workload>/  ─► train (thread) ─► --models
//!        detecting: StreamDetector(workload bundle) ─► alerts ─► sinks (file, NATS + spool)
//! ```
//!
//! The loop runs on one thread (the capture is not `Send`); training runs
//! on a background thread with the same [`chids_detect::train::train`] the
//! `baseline` command uses, on the recordings the agent wrote, so a model
//! the agent learnt is a model `chids baseline` would have made from them.

pub mod cri;
pub mod discovery;
pub mod fleet;
pub mod identity;
pub mod metrics;
pub mod sink;
mod status;
pub mod workloads;

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::sink::AlertSink;
use chids_core::features::Settings;
use chids_core::mode::Mode;
use chids_core::source::lidds::Lidds2021;
use chids_core::source::{EventSource, ReadOptions};
use chids_detect::alert::WindowAlert;
use chids_detect::detect::{ScoredWindow, StreamDetector};
use chids_detect::model::bundle::Bundle;
use chids_detect::model::{default_thetas, TrainConfig};
use chids_detect::train::{train, TrainOptions};
use chids_live::capture::{Capture, Counters, RawEvent};
use chids_live::cgroup::{cgroup2_root, CgroupRef};
use chids_live::format::{write_sc_line, Formatter};
use chids_live::monitor::Alert;
use chids_live::{stop_requested, LiveError};

use discovery::{Change, Discovery, Runtime};
use identity::{Identity, Resolver};
use metrics::{AgentMetrics, ContainerCounts, WorkloadLine};
pub use status::{read_status, AgentStatus, ContainerStatus, SinkStatus, WorkloadStatus};
use workloads::{folder_name, ModelStore, WorkloadConfig};

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
    /// Learning data, the status file, the alert spool.
    pub state_dir: PathBuf,
    /// How long a workload without a model is recorded before training.
    pub learn_for: Duration,
    /// Threshold multiplier of detection; `None`: each bundle's operating
    /// threshold (set from normal data when it was trained).
    pub theta: Option<f64>,
    /// Workload grouping rules (default: one workload per image).
    pub workloads: WorkloadConfig,
    pub sinks: Vec<Box<dyn AlertSink>>,
    pub metrics: Option<SocketAddr>,
    /// Stop after this long (default: until SIGINT/SIGTERM).
    pub duration: Option<Duration>,
    /// Window length of the models the agent trains.
    pub window_ns: u64,
    /// Training epochs (as `chids baseline --epochs`).
    pub epochs: usize,
}

/// An alert of the agent: `monitor`'s keys plus who the container is.
#[derive(Clone, Debug, Serialize)]
pub struct AgentAlert {
    /// Unique per alert (agent start time and a sequence number).
    pub id: String,
    #[serde(flatten)]
    pub alert: Alert,
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

/// Learning data beyond this many bytes per workload is not written (the
/// recording window still ends at `learn_for`).
const LEARN_MAX_BYTES: u64 = 512 << 20;
/// How often the status file and the process metrics are refreshed.
const STATUS_EVERY: Duration = Duration::from_secs(1);
/// How long sinks get to deliver what is left when the agent stops.
const SINK_GRACE: Duration = Duration::from_secs(5);

enum WorkloadState<'a> {
    Learning,
    Training,
    Detecting(&'a Bundle),
}

impl WorkloadState<'_> {
    fn name(&self) -> &'static str {
        match self {
            WorkloadState::Learning => "learning",
            WorkloadState::Training => "training",
            WorkloadState::Detecting(_) => "detecting",
        }
    }
}

struct Workload<'a> {
    state: WorkloadState<'a>,
    containers: usize,
    learned: Duration,
    learn_bytes: u64,
    events: u64,
    windows: u64,
    alerts: u64,
    /// Late events of the workload's containers that have stopped.
    late: u64,
}

enum Stream<'a> {
    Learning(Option<BufWriter<File>>),
    /// The workload is training; events are not kept.
    Waiting,
    // Boxed: a detector is large, and containers switch streams rarely.
    Detecting(Box<StreamDetector<'a>>),
}

struct Container<'a> {
    cgroup: CgroupRef,
    ident: Identity,
    workload: String,
    fmt: Formatter,
    stream: Stream<'a>,
    events: u64,
    windows: u64,
    alerts: u64,
    /// Late events of the container's earlier detectors (see [`Container::late`]).
    late_done: u64,
    /// Learning bytes this container may still write (its workload's share
    /// of LEARN_MAX_BYTES when it started).
    learn_budget: u64,
}

impl Container<'_> {
    /// Events the windower dropped for their time, so far.
    fn late(&self) -> u64 {
        self.late_done
            + match &self.stream {
                Stream::Detecting(d) => d.window_stats().dropped(),
                _ => 0,
            }
    }

    /// Ends the container's stream: a detector's open windows go to `emit`,
    /// a learning file is flushed.
    fn finish_stream(&mut self, emit: &mut impl FnMut(ScoredWindow)) {
        self.late_done = self.late();
        match std::mem::replace(&mut self.stream, Stream::Waiting) {
            Stream::Detecting(d) => d.finish(emit),
            Stream::Learning(Some(mut wr)) => {
                let _ = wr.flush();
            }
            _ => {}
        }
    }
}

type TrainResult = (String, Result<Bundle, String>);

/// Runs until a stop is requested (SIGINT/SIGTERM) or the duration passes.
pub fn agent(
    mut opts: AgentOptions,
    on_update: &mut dyn FnMut(AgentUpdate<'_>),
) -> Result<AgentSummary, LiveError> {
    if let Some(theta) = opts.theta.filter(|t| !(t.is_finite() && *t > 0.0)) {
        return Err(LiveError::Other(format!(
            "--theta {theta}: must be a positive number"
        )));
    }
    let state_dir = opts.state_dir.clone();
    for d in [&state_dir, &state_dir.join("learn")] {
        if fs::symlink_metadata(d).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(LiveError::Other(format!(
                "--state-dir: {} is a symbolic link",
                d.display()
            )));
        }
        fs::create_dir_all(d).map_err(|e| LiveError::io(format!("create {}", d.display()), e))?;
    }
    let store = ModelStore::open(&opts.models).map_err(LiveError::Other)?;
    let mut capture = Capture::open()?;
    let root = match &opts.cgroup_root {
        Some(r) => r.clone(),
        None => cgroup2_root()?,
    };
    let resolver = Resolver::new(&opts.host_root);
    let mut cri = cri::CriSource::new(opts.cri_socket.as_deref(), &opts.host_root, &mut |l| {
        on_update(AgentUpdate::Log(l))
    });
    // In a container (the DaemonSet), the agent's own container is one of
    // those discovered: watching it would feed the agent its own work.
    let own_cgroup = own_cgroup(&root);

    // Bundles live as long as the agent; detectors borrow them.
    let arena: typed_arena::Arena<Bundle> = typed_arena::Arena::new();
    let mut workloads: HashMap<String, Workload<'_>> = HashMap::new();
    let (loaded, warnings) = store.load_all();
    for w in warnings {
        on_update(AgentUpdate::Log(format!("models: {w}")));
    }
    for (key, bundle) in loaded {
        on_update(AgentUpdate::Log(format!(
            "workload {key}: model loaded from {}, detecting",
            store.dir().join(folder_name(&key)).display()
        )));
        let b: &Bundle = arena.alloc(bundle);
        workloads.insert(key, new_workload(WorkloadState::Detecting(b)));
    }
    // Learning starts afresh: data of an earlier run (a restart mid-learning)
    // does not match the time counted in this one.
    let learn_root = state_dir.join("learn");
    if let Ok(entries) = fs::read_dir(&learn_root) {
        for e in entries.flatten() {
            let _ = fs::remove_dir_all(e.path());
        }
    }

    let metrics = Arc::new(Mutex::new(AgentMetrics::default()));
    let server = match opts.metrics {
        Some(addr) => Some(chids_live::metrics::serve(addr, Arc::clone(&metrics))?),
        None => None,
    };

    let (mut discovery, initial) = Discovery::new(&root)?;
    on_update(AgentUpdate::Started {
        cgroup_root: &root,
        metrics: server.as_ref().map(|s| s.addr),
    });

    let start = Instant::now();
    let agent_start_ns = capture.now_ns();
    let mut alert_seq = 0u64;
    let mut containers: HashMap<u64, Container<'_>> = HashMap::new();
    let mut summary = AgentSummary::default();
    let mut bare_warned: HashSet<String> = HashSet::new();
    let (train_tx, train_rx) = mpsc::channel::<TrainResult>();
    let mut trainers: Vec<std::thread::JoinHandle<()>> = Vec::new();
    let mut closed: Vec<(u64, ScoredWindow)> = Vec::new();
    let mut last_tick = Instant::now();
    let mut last_status = Instant::now() - STATUS_EVERY;
    let mode = Mode::Modern;
    let ctx = Ctx {
        learn_root: &learn_root,
        theta: opts.theta,
    };

    let mut pending_changes = initial;
    // One .sc line buffer for every learning container's events.
    let mut sc_line: Vec<u8> = Vec::with_capacity(512);
    loop {
        // 1. Containers that came or went.
        pending_changes.extend(discovery.poll()?);
        for change in pending_changes.drain(..) {
            match change {
                Change::Started(found) => {
                    if own_cgroup
                        .as_ref()
                        .is_some_and(|o| o.starts_with(&found.path))
                    {
                        on_update(AgentUpdate::Log(format!(
                            "{}: the agent's own container, not watched",
                            found.path.display()
                        )));
                        continue;
                    }
                    let mut ident = resolver.resolve(found.container.runtime, &found.container.id);
                    if matches!(found.container.runtime, Runtime::Containerd | Runtime::Crio) {
                        // The runtime's own answer first; the disk's where it says nothing.
                        cri.fill(&mut ident, &mut |l| on_update(AgentUpdate::Log(l)));
                    }
                    if ident.is_bare() && bare_warned.insert(ident.runtime.clone()) {
                        on_update(AgentUpdate::Log(format!(
                            "identity: no {} state found under {} for {}; containers of this runtime are named by id",
                            ident.runtime,
                            opts.host_root.display(),
                            ident.short_id()
                        )));
                    }
                    let key = opts.workloads.key_of(&ident);
                    let w = workloads
                        .entry(key.clone())
                        .or_insert_with(|| new_workload(WorkloadState::Learning));
                    let cgroup = CgroupRef {
                        path: found.path.clone(),
                        id: found.cgroup_id,
                        level: found.level,
                        name: ident.short_id().to_string(),
                    };
                    let stream = ctx.stream_for(&key, &found.container.id, found.cgroup_id, w)?;
                    if let Err(e) = capture.watch(&cgroup) {
                        on_update(AgentUpdate::Log(format!(
                            "container {}: cannot watch: {e}",
                            ident.display_name()
                        )));
                        continue;
                    }
                    w.containers += 1;
                    summary.containers_seen += 1;
                    on_update(AgentUpdate::Log(format!(
                        "container {} ({}, image {}, {}) started: workload {key}, {}",
                        ident.display_name(),
                        ident.short_id(),
                        ident.image.as_deref().unwrap_or("?"),
                        ident.runtime,
                        w.state.name()
                    )));
                    metrics
                        .lock()
                        .unwrap()
                        .container_started(found.cgroup_id, &ident, &key);
                    if let Some(old) = containers.insert(
                        found.cgroup_id,
                        Container {
                            cgroup,
                            ident,
                            workload: key,
                            fmt: Formatter::new(),
                            stream,
                            events: 0,
                            windows: 0,
                            alerts: 0,
                            late_done: 0,
                            learn_budget: LEARN_MAX_BYTES.saturating_sub(w.learn_bytes),
                        },
                    ) {
                        // The same cgroup id twice cannot happen; keep counts right if it does.
                        if let Some(w) = workloads.get_mut(&old.workload) {
                            w.containers = w.containers.saturating_sub(1);
                        }
                    }
                }
                Change::Stopped { cgroup_id, .. } => {
                    let Some(mut c) = containers.remove(&cgroup_id) else {
                        continue;
                    };
                    let _ = capture.unwatch(&c.cgroup);
                    // Events still in the ring buffer belong to windows we close now.
                    c.finish_stream(&mut |w| closed.push((cgroup_id, w)));
                    containers.insert(cgroup_id, c);
                    process_closed(
                        &mut closed,
                        &mut containers,
                        &mut workloads,
                        &mut opts.sinks,
                        &mut summary,
                        &mut alert_seq,
                        agent_start_ns,
                        capture.now_ns(),
                        opts.theta,
                        on_update,
                    )?;
                    let c = containers.remove(&cgroup_id).expect("just inserted");
                    if let Some(w) = workloads.get_mut(&c.workload) {
                        w.containers = w.containers.saturating_sub(1);
                        w.events += c.events;
                        w.late += c.late();
                    }
                    summary.late += c.late();
                    metrics.lock().unwrap().container_stopped(cgroup_id);
                    on_update(AgentUpdate::Log(format!(
                        "container {} ({}) stopped after {} events, {} windows, {} alerts{}",
                        c.ident.display_name(),
                        c.ident.short_id(),
                        c.events,
                        c.windows,
                        c.alerts,
                        match c.late() {
                            0 => String::new(),
                            n => format!(", {n} late events dropped"),
                        }
                    )));
                }
            }
        }

        // 2. Events.
        let line = &mut sc_line;
        capture.poll(Duration::from_millis(100), &mut |raw: &RawEvent<'_>| {
            let Some(c) = containers.get_mut(&raw.watch) else {
                return;
            };
            c.events += 1;
            summary.events += 1;
            match &mut c.stream {
                Stream::Learning(Some(wr)) => {
                    let ev = c.fmt.format(raw);
                    line.clear();
                    write_sc_line(line, &ev, raw.uid);
                    let n = line.len() as u64;
                    if n > c.learn_budget || wr.write_all(line).is_err() {
                        // Full (or unwritable): learning goes on with what is there.
                        let _ = wr.flush();
                        c.stream = Stream::Learning(None);
                    } else {
                        c.learn_budget -= n;
                    }
                }
                Stream::Detecting(d) => {
                    let ev = c.fmt.format(raw);
                    let id = raw.watch;
                    d.push(&ev, &mut |w| closed.push((id, w)));
                }
                Stream::Learning(None) | Stream::Waiting => {}
            }
        })?;
        // Silent containers' windows close on the events' clock (Capture::now_ns).
        let now = mode.timestamp(capture.now_ns());
        for (&id, c) in containers.iter_mut() {
            if let Stream::Detecting(d) = &mut c.stream {
                d.advance_to(now, &mut |w| closed.push((id, w)));
            }
        }
        process_closed(
            &mut closed,
            &mut containers,
            &mut workloads,
            &mut opts.sinks,
            &mut summary,
            &mut alert_seq,
            agent_start_ns,
            capture.now_ns(),
            opts.theta,
            on_update,
        )?;

        // 3. Learning clocks, training start and results.
        let dt = last_tick.elapsed();
        last_tick = Instant::now();
        let mut to_train = Vec::new();
        for (key, w) in workloads.iter_mut() {
            if matches!(w.state, WorkloadState::Learning) && w.containers > 0 {
                w.learned += dt;
                if w.learned >= opts.learn_for {
                    to_train.push(key.clone());
                }
            }
        }
        for key in to_train {
            let w = workloads.get_mut(&key).unwrap();
            w.state = WorkloadState::Training;
            for c in containers.values_mut().filter(|c| c.workload == key) {
                if let Stream::Learning(Some(mut wr)) =
                    std::mem::replace(&mut c.stream, Stream::Waiting)
                {
                    let _ = wr.flush();
                }
            }
            on_update(AgentUpdate::Log(format!(
                "workload {key}: learnt for {:.0}s, training",
                w.learned.as_secs_f64()
            )));
            let dir = learn_root.join(folder_name(&key));
            let tx = train_tx.clone();
            let settings = Settings::for_mode(mode, opts.window_ns);
            let epochs = opts.epochs;
            let t = std::thread::Builder::new()
                .name("chids-train".into())
                .spawn(move || {
                    // A panic must not leave the workload "training" forever.
                    let result =
                        std::panic::catch_unwind(|| train_workload(&dir, settings, epochs))
                            .unwrap_or_else(|_| Err("training panicked".into()));
                    let _ = tx.send((key, result));
                })
                .map_err(|e| LiveError::io("start a training thread", e))?;
            trainers.push(t);
        }
        while let Ok((key, result)) = train_rx.try_recv() {
            let Some(w) = workloads.get_mut(&key) else {
                continue;
            };
            match result.and_then(|b| store.save(&key, &b).map(|p| (b, p))) {
                Ok((bundle, path)) => {
                    summary.models_trained += 1;
                    on_update(AgentUpdate::Log(format!(
                        "workload {key}: model stored in {} ({} training windows), detecting",
                        path.display(),
                        bundle.training.vectors
                    )));
                    let b: &Bundle = arena.alloc(bundle);
                    w.state = WorkloadState::Detecting(b);
                    let _ = fs::remove_dir_all(learn_root.join(folder_name(&key)));
                    for c in containers.values_mut().filter(|c| c.workload == key) {
                        c.stream = Stream::Detecting(Box::new(StreamDetector::new(
                            b,
                            threshold_of(b, opts.theta),
                        )));
                    }
                }
                Err(e) => {
                    on_update(AgentUpdate::Log(format!(
                        "workload {key}: training failed ({e}); learning on"
                    )));
                    w.state = WorkloadState::Learning;
                    w.learned = Duration::ZERO;
                    for (&id, c) in containers.iter_mut().filter(|(_, c)| c.workload == key) {
                        c.stream = ctx.stream_for(&key, &c.ident.id, id, w)?;
                        c.learn_budget = LEARN_MAX_BYTES.saturating_sub(w.learn_bytes);
                    }
                }
            }
        }
        trainers.retain(|t| !t.is_finished());

        // 4. Status, metrics, sink logs.
        for s in opts.sinks.iter_mut() {
            for line in s.take_log() {
                on_update(AgentUpdate::Log(line));
            }
        }
        if last_status.elapsed() >= STATUS_EVERY {
            last_status = Instant::now();
            update_metrics(&metrics, &capture, &containers, &workloads, &opts.sinks);
            let st = status_now(
                &capture,
                &containers,
                &workloads,
                &opts.sinks,
                &summary,
                opts.learn_for,
                true,
            );
            status::write(&state_dir, &st);
        }

        if stop_requested() || opts.duration.is_some_and(|d| start.elapsed() >= d) {
            break;
        }
    }

    // Stop: what is in flight, then every open window, then the sinks.
    capture.drain(&mut |raw: &RawEvent<'_>| {
        if let Some(c) = containers.get_mut(&raw.watch) {
            c.events += 1;
            summary.events += 1;
            if let Stream::Detecting(d) = &mut c.stream {
                let ev = c.fmt.format(raw);
                let id = raw.watch;
                d.push(&ev, &mut |w| closed.push((id, w)));
            }
        }
    })?;
    let ids: Vec<u64> = containers.keys().copied().collect();
    for id in ids {
        let c = containers.get_mut(&id).unwrap();
        c.finish_stream(&mut |w| closed.push((id, w)));
        summary.late += c.late();
    }
    process_closed(
        &mut closed,
        &mut containers,
        &mut workloads,
        &mut opts.sinks,
        &mut summary,
        &mut alert_seq,
        agent_start_ns,
        capture.now_ns(),
        opts.theta,
        on_update,
    )?;
    for s in opts.sinks.iter_mut() {
        s.close(SINK_GRACE);
        for line in s.take_log() {
            on_update(AgentUpdate::Log(line));
        }
    }
    update_metrics(&metrics, &capture, &containers, &workloads, &opts.sinks);
    let st = status_now(
        &capture,
        &containers,
        &workloads,
        &opts.sinks,
        &summary,
        opts.learn_for,
        false,
    );
    status::write(&state_dir, &st);
    drop(server);
    // Training threads finish on their own; their results are not needed.
    drop(train_rx);
    summary.counters = capture.counters();
    summary.elapsed = start.elapsed();
    Ok(summary)
}

/// This process's cgroup v2 directory under `root` (`0::/path` in
/// /proc/self/cgroup).
fn own_cgroup(root: &Path) -> Option<PathBuf> {
    let text = fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    let rel = rel.trim().trim_start_matches('/');
    (!rel.is_empty()).then(|| root.join(rel))
}

fn new_workload<'a>(state: WorkloadState<'a>) -> Workload<'a> {
    Workload {
        state,
        containers: 0,
        learned: Duration::ZERO,
        learn_bytes: 0,
        events: 0,
        windows: 0,
        alerts: 0,
        late: 0,
    }
}

struct Ctx<'p> {
    learn_root: &'p Path,
    theta: Option<f64>,
}

/// The detection threshold of a bundle: at `theta` when given, else the
/// bundle's operating threshold.
fn threshold_of(bundle: &Bundle, theta: Option<f64>) -> f64 {
    theta.map_or_else(|| bundle.operating_threshold(), |t| bundle.threshold(t))
}

impl Ctx<'_> {
    /// The stream a container of workload `w` starts with.
    fn stream_for<'a>(
        &self,
        key: &str,
        container_id: &str,
        cgroup_id: u64,
        w: &mut Workload<'a>,
    ) -> Result<Stream<'a>, LiveError> {
        Ok(match w.state {
            WorkloadState::Detecting(b) => Stream::Detecting(Box::new(StreamDetector::new(
                b,
                threshold_of(b, self.theta),
            ))),
            WorkloadState::Training => Stream::Waiting,
            WorkloadState::Learning => {
                let dir = self.learn_root.join(folder_name(key));
                fs::create_dir_all(&dir)
                    .map_err(|e| LiveError::io(format!("create {}", dir.display()), e))?;
                // Never write learning data through a link planted in the state dir.
                if !fs::symlink_metadata(&dir).is_ok_and(|m| m.file_type().is_dir()) {
                    return Err(LiveError::Other(format!(
                        "{}: not a real folder (a symbolic link?)",
                        dir.display()
                    )));
                }
                w.learn_bytes = dir_bytes(&dir);
                if w.learn_bytes >= LEARN_MAX_BYTES {
                    return Ok(Stream::Learning(None));
                }
                // One file per cgroup (a restarted container gets a new one).
                let short = &container_id[..container_id.len().min(12)];
                let path = dir.join(format!("{short}-{cgroup_id}.sc"));
                use std::os::unix::fs::OpenOptionsExt;
                let f = fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&path)
                    .map_err(|e| LiveError::io(format!("create {}", path.display()), e))?;
                Stream::Learning(Some(BufWriter::with_capacity(64 << 10, f)))
            }
        })
    }
}

fn dir_bytes(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .map(|es| {
            es.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Trains a workload's baseline from the `.sc` files the agent wrote, as
/// `chids baseline --td DIR` would.
fn train_workload(dir: &Path, settings: Settings, epochs: usize) -> Result<Bundle, String> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sc"))
        .filter(|p| fs::metadata(p).is_ok_and(|m| m.len() > 0))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err("no events recorded".into());
    }
    let sources: Vec<Box<dyn EventSource>> = files
        .iter()
        .map(|p| Lidds2021::open_sc(p).map(|s| Box::new(s) as Box<dyn EventSource>))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let options = TrainOptions {
        settings,
        model: TrainConfig {
            epochs,
            ..TrainConfig::default()
        },
        thetas: default_thetas(),
        read: ReadOptions::default(),
    };
    train(&sources, &options, &|_| {})
        .map(|t| t.bundle)
        .map_err(|e| e.to_string())
}

#[allow(clippy::too_many_arguments)]
fn process_closed(
    closed: &mut Vec<(u64, ScoredWindow)>,
    containers: &mut HashMap<u64, Container<'_>>,
    workloads: &mut HashMap<String, Workload<'_>>,
    sinks: &mut [Box<dyn AlertSink>],
    summary: &mut AgentSummary,
    alert_seq: &mut u64,
    agent_start_ns: u64,
    now_ns: u64,
    theta: Option<f64>,
    on_update: &mut dyn FnMut(AgentUpdate<'_>),
) -> Result<(), LiveError> {
    for (id, scored) in closed.drain(..) {
        let Some(c) = containers.get_mut(&id) else {
            continue;
        };
        c.windows += 1;
        summary.windows += 1;
        let w = workloads.get_mut(&c.workload);
        let window_ns = match w.as_ref().map(|w| &w.state) {
            Some(WorkloadState::Detecting(b)) => b.settings.window_ns,
            _ => 0,
        };
        if let Some(w) = w {
            w.windows += 1;
            if scored.anomalous {
                w.alerts += 1;
            }
        }
        if !scored.anomalous {
            continue;
        }
        c.alerts += 1;
        summary.alerts += 1;
        *alert_seq += 1;
        let alert = AgentAlert {
            id: format!("{agent_start_ns:x}-{alert_seq}"),
            alert: Alert {
                // The events' clock, as the window times (see Alert::time_ns).
                time_ns: now_ns,
                cgroup: c.cgroup.path.display().to_string(),
                container: c.ident.short_id().to_string(),
                theta,
                window: WindowAlert::from_scored(scored, window_ns),
            },
            container_id: c.ident.id.clone(),
            container_name: c.ident.display_name().to_string(),
            image: c.ident.image.clone(),
            runtime: c.ident.runtime.clone(),
            workload: c.workload.clone(),
            namespace: c.ident.namespace.clone(),
            pod: c.ident.pod.clone(),
            k8s_container: c.ident.k8s_container.clone(),
        };
        let json = serde_json::to_vec(&alert).expect("alert serialises");
        for s in sinks.iter_mut() {
            if let Err(e) = s.send(&json) {
                on_update(AgentUpdate::Log(format!("{} sink: {e}", s.kind())));
            }
        }
        on_update(AgentUpdate::Alert(&alert));
    }
    Ok(())
}

fn update_metrics(
    metrics: &Mutex<AgentMetrics>,
    capture: &Capture,
    containers: &HashMap<u64, Container<'_>>,
    workloads: &HashMap<String, Workload<'_>>,
    sinks: &[Box<dyn AlertSink>],
) {
    let counters = capture.counters();
    let mut m = metrics.lock().unwrap();
    m.counters = counters;
    m.cpu_seconds = chids_live::self_cpu_time().as_secs_f64();
    m.rss_bytes = rss_bytes();
    m.watched = containers.len();
    for (&id, c) in containers.iter() {
        m.set_counts(
            id,
            ContainerCounts {
                events: c.events,
                windows: c.windows,
                alerts: c.alerts,
                late: c.late(),
            },
        );
    }
    m.workloads = workloads
        .iter()
        .map(|(k, w)| {
            let running = containers.values().filter(|c| &c.workload == k);
            let events = running.clone().map(|c| c.events).sum::<u64>();
            let late = running.map(|c| c.late()).sum::<u64>();
            (
                k.clone(),
                WorkloadLine {
                    state: w.state.name(),
                    containers: w.containers,
                    events: w.events + events,
                    windows: w.windows,
                    alerts: w.alerts,
                    late: w.late + late,
                    learned_seconds: w.learned.as_secs_f64(),
                },
            )
        })
        .collect();
    m.late = m.workloads.values().map(|w| w.late).sum();
    m.sinks = sinks.iter().map(|s| (s.kind(), s.stats())).collect();
}

/// Resident set size of this process, from /proc/self/statm.
pub fn rss_bytes() -> u64 {
    let statm = fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    pages * page
}

fn containers_view(containers: &HashMap<u64, Container<'_>>) -> Vec<ContainerStatus> {
    let mut v: Vec<ContainerStatus> = containers
        .iter()
        .map(|(&id, c)| ContainerStatus {
            id: c.ident.id.clone(),
            name: c.ident.display_name().to_string(),
            image: c.ident.image.clone(),
            runtime: c.ident.runtime.clone(),
            workload: c.workload.clone(),
            cgroup: c.cgroup.path.display().to_string(),
            cgroup_id: id,
            events: c.events,
            windows: c.windows,
            alerts: c.alerts,
            late_events: c.late(),
        })
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

fn workloads_view(
    workloads: &HashMap<String, Workload<'_>>,
    containers: &HashMap<u64, Container<'_>>,
) -> Vec<WorkloadStatus> {
    let mut v: Vec<WorkloadStatus> = workloads
        .iter()
        .map(|(k, w)| {
            let running = containers.values().filter(|c| &c.workload == k);
            WorkloadStatus {
                workload: k.clone(),
                state: w.state.name().to_string(),
                containers: running.clone().count(),
                learned_seconds: w.learned.as_secs_f64(),
                windows: w.windows,
                alerts: w.alerts,
                late_events: w.late + running.map(|c| c.late()).sum::<u64>(),
            }
        })
        .collect();
    v.sort_by(|a, b| a.workload.cmp(&b.workload));
    v
}

fn status_now(
    capture: &Capture,
    containers: &HashMap<u64, Container<'_>>,
    workloads: &HashMap<String, Workload<'_>>,
    sinks: &[Box<dyn AlertSink>],
    summary: &AgentSummary,
    learn_for: Duration,
    running: bool,
) -> AgentStatus {
    let workloads = workloads_view(workloads, containers);
    AgentStatus {
        updated_ns: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
        pid: if running { std::process::id() } else { 0 },
        running,
        learn_for_seconds: learn_for.as_secs_f64(),
        rss_bytes: rss_bytes(),
        kernel_watched: capture.watched_count(),
        events: summary.events,
        dropped_events: capture.counters().dropped,
        late_events: workloads.iter().map(|w| w.late_events).sum(),
        alerts: summary.alerts,
        workloads,
        containers: containers_view(containers),
        sinks: sinks
            .iter()
            .map(|s| SinkStatus::new(s.kind(), s.stats()))
            .collect(),
    }
}
