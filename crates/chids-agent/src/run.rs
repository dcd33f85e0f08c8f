//! The agent as a consumer of a [`Session`]: containers come and go
//! (discovery), their events feed learning files or detectors, workloads
//! move from learning to training to detecting, alerts go to the sinks.
//! Each step is a method; an error is confined to the container or
//! workload it concerns (logged, counted); only losing the capture is
//! fatal (`?` on the session's calls).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chids_core::features::Settings;
use chids_core::mode::Mode;
use chids_detect::alert::WindowAlert;
use chids_detect::detect::ScoredWindow;
use chids_detect::model::bundle::Bundle;
use chids_live::capture::RawEvent;
use chids_live::cgroup::CgroupRef;
use chids_live::format::{write_sc_line, Formatter};
use chids_live::monitor::Alert;
use chids_live::{LiveError, Session};

use crate::detector::LiveDetector;
use crate::discovery::{Change, Found};
use crate::held::{Held, Pending, HELD_BYTES_TOTAL};
use crate::identify::{Answer, Identifier};
use crate::identity::{Identity, Resolver};
use crate::learn_names;
use crate::learn_writer::LearnWriter;
use crate::learning::{segment_length, Learner, Outcome, TrainJob, Trained, Trainer};
use crate::metrics::AgentMetrics;
use crate::runtime::{self, ExecRecord};
use crate::sink::AlertDispatch;
use crate::state::{threshold_source, Container, Stream, Workload, WorkloadState};
use crate::status::ExcludedStatus;
use crate::workloads::{folder_name, ModelStore, WorkloadConfig};
use crate::{cri, status, view, AgentAlert, AgentOptions, AgentSummary, AgentUpdate};

mod fleet_sync;
mod pool_sync;

/// How long one turn waits for events. New cgroups are read between
/// turns, and a container runs its program some 50-100 ms after its cgroup
/// appears: a shorter wait watches it before that (its start-up is seen).
const POLL_FOR: Duration = Duration::from_millis(20);
/// How often the status file and the process metrics are refreshed.
const STATUS_EVERY: Duration = Duration::from_secs(1);
/// How long sinks get to deliver what is left when the agent stops.
const SINK_GRACE: Duration = Duration::from_secs(5);
/// How long containers still being identified are waited for at the stop.
const IDENTIFY_GRACE: Duration = Duration::from_secs(3);

type Update<'u> = &'u mut dyn FnMut(AgentUpdate<'_>);

/// What the agent was asked to do, once set up.
struct Config {
    state_dir: PathBuf,
    learn_root: PathBuf,
    learn_for: Duration,
    learn_max: Duration,
    theta: Option<f64>,
    workloads: WorkloadConfig,
    window_ns: u64,
    epochs: usize,
    budget_per_hour: f64,
    /// The agent's own container (in a DaemonSet): never watched.
    own_cgroup: Option<PathBuf>,
}

pub(crate) struct AgentRun {
    cfg: Config,
    store: ModelStore,
    /// Identity look-ups, on a thread of their own.
    identifier: Identifier,
    /// Containers watched, not yet identified, by cgroup id.
    pending: HashMap<u64, Pending>,
    /// Bytes of events `pending` holds (bounded by [`HELD_BYTES_TOTAL`]).
    held_bytes: usize,
    /// Events of unidentified containers past the bounds (not detected on).
    held_dropped: u64,
    /// The outbox, the per-workload budget and the sinks.
    alerts: AlertDispatch,
    pub(crate) metrics: Arc<Mutex<AgentMetrics>>,
    workloads: HashMap<String, Workload>,
    containers: HashMap<u64, Container>,
    pub(crate) summary: AgentSummary,
    trainer: Trainer,
    closed: Vec<(u64, ScoredWindow)>,
    /// One .sc line buffer for every learning container's events.
    sc_line: Vec<u8>,
    /// Learning files are written on a thread of their own.
    learn_writer: LearnWriter,
    /// Exec sessions seen during a poll (cgroup, program, uid, time),
    /// reported after it.
    execs: Vec<(u64, String, u32, u64)>,
    /// Running containers not watched (--include / --exclude), by cgroup id.
    excluded: HashMap<u64, ExcludedStatus>,
    last_tick: Instant,
    last_status: Instant,
    /// This node's name (models it trains carry it).
    node: String,
    /// The fleet's models (`--nats`), see `fleet_sync.rs`.
    fleet: Option<crate::fleet::FleetLink>,
    /// Pooled learning through the fleet, see `pool_sync.rs`.
    pool: pool_sync::PoolSync,
}

/// The detection threshold of a bundle: at `theta` when given, else the
/// bundle's operating threshold.
pub(crate) fn threshold_of(bundle: &Bundle, theta: Option<f64>) -> f64 {
    theta.map_or_else(|| bundle.operating_threshold(), |t| bundle.threshold(t))
}

impl AgentRun {
    /// Loads the stored models; clears learning data of an earlier run (a
    /// restart mid-learning: its data does not match the time counted in
    /// this one).
    pub(crate) fn new(
        opts: AgentOptions,
        store: ModelStore,
        root: &Path,
        up: Update<'_>,
    ) -> AgentRun {
        let learn_root = opts.state_dir.join("learn");
        if let Ok(entries) = std::fs::read_dir(&learn_root) {
            for e in entries.flatten() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        // Pools read for a training an earlier run did not finish.
        let _ = std::fs::remove_dir_all(opts.state_dir.join("pool"));
        let cri = cri::CriSource::new(opts.cri_socket.as_deref(), &opts.host_root, &mut |l| {
            up(AgentUpdate::Log(l))
        });
        let identifier =
            Identifier::start(Resolver::new(&opts.host_root), cri, opts.host_root.clone());
        let mut run = AgentRun {
            identifier,
            pending: HashMap::new(),
            held_bytes: 0,
            held_dropped: 0,
            cfg: Config {
                learn_root,
                state_dir: opts.state_dir,
                learn_for: opts.learn_for,
                learn_max: opts.learn_max.max(opts.learn_for),
                theta: opts.theta,
                workloads: opts.workloads,
                window_ns: opts.window_ns,
                epochs: opts.epochs,
                budget_per_hour: opts.budget_per_hour,
                own_cgroup: own_cgroup(root),
            },
            store,
            alerts: opts.alerts,
            metrics: Arc::new(Mutex::new(AgentMetrics::default())),
            workloads: HashMap::new(),
            containers: HashMap::new(),
            summary: AgentSummary::default(),
            trainer: Trainer::new(),
            closed: Vec::new(),
            sc_line: Vec::with_capacity(512),
            learn_writer: LearnWriter::start(),
            execs: Vec::new(),
            excluded: HashMap::new(),
            last_tick: Instant::now(),
            last_status: Instant::now() - STATUS_EVERY,
            node: opts.node,
            fleet: None,
            pool: pool_sync::PoolSync::new(),
        };
        run.load_models(up);
        run.start_fleet(opts.fleet, up);
        run
    }

    fn load_models(&mut self, up: Update<'_>) {
        let (loaded, warnings) = self.store.load_all();
        for w in warnings {
            up(AgentUpdate::Log(format!("models: {w}")));
        }
        for (key, bundle) in loaded {
            up(AgentUpdate::Log(format!(
                "workload {key}: model loaded from {}, detecting",
                self.store.dir().join(folder_name(&key)).display()
            )));
            let state = WorkloadState::Detecting(Arc::new(bundle));
            let mut w = Workload::new(state);
            w.origin = self.store.origin(&key);
            self.workloads.insert(key, w);
        }
    }

    /// One turn of the loop after discovery: events, windows, learning,
    /// status.
    pub(crate) fn step(&mut self, session: &mut Session, up: Update<'_>) -> Result<(), LiveError> {
        session.poll(POLL_FOR, &mut |raw| self.on_event(raw))?;
        let answers = self.identifier.answers();
        self.identities(answers, session, up);
        self.report_execs(up);
        // Silent containers' windows close on the events' clock.
        let now = Mode::Modern.timestamp(session.now_ns());
        for (&id, c) in self.containers.iter_mut() {
            if let Stream::Detecting(d) = &mut c.stream {
                let closed = &mut self.closed;
                d.advance_to(now, &mut |w| closed.push((id, w)));
            }
        }
        self.process_closed(session.now_ns(), up);
        self.learning_tick(up);
        self.fleet_turn(session.now_ns(), up);
        self.training_results(up);
        self.refresh_status(session, up, false);
        Ok(())
    }

    pub(crate) fn changes(&mut self, changes: Vec<Change>, session: &mut Session, up: Update<'_>) {
        for change in changes {
            match change {
                Change::Started(found) => self.container_started(found, session, up),
                Change::Stopped { cgroup_id, .. } => self.container_stopped(cgroup_id, session, up),
            }
        }
    }

    /// Watches a container at once (its first events are captured) and
    /// asks who it is; it joins its workload when the answer comes
    /// (`container_identified`).
    fn container_started(&mut self, found: Found, session: &mut Session, up: Update<'_>) {
        if self
            .cfg
            .own_cgroup
            .as_ref()
            .is_some_and(|o| o.starts_with(&found.path))
        {
            up(AgentUpdate::Log(format!(
                "{}: the agent's own container, not watched",
                found.path.display()
            )));
            return;
        }
        // A container already running its program when found (found late,
        // or the agent restarted): what it does next is neither its
        // start-up nor its first run of a program (see `begin_mid_run`).
        let running = runtime::workload_running(&found.path);
        let id = &found.container.id;
        let cgroup = CgroupRef {
            path: found.path.clone(),
            id: found.cgroup_id,
            level: found.level,
            name: id[..id.len().min(12)].to_string(),
        };
        if let Err(e) = session.capture().watch(&cgroup) {
            up(AgentUpdate::Log(format!(
                "container {}: cannot watch: {e}",
                cgroup.name
            )));
            return;
        }
        self.identifier
            .submit(found.cgroup_id, found.container.runtime, id);
        let pending = Pending {
            cgroup,
            container_id: id.clone(),
            runtime: found.container.runtime,
            since_ns: crate::sink::outbox::now_ns(),
            running,
            held: Held::default(),
            stopped: false,
        };
        if let Some(old) = self.pending.insert(found.cgroup_id, pending) {
            self.held_bytes -= old.held.bytes();
        }
    }

    /// Answers of the identity worker: log lines, containers identified.
    fn identities(&mut self, answers: Vec<Answer>, session: &mut Session, up: Update<'_>) {
        for answer in answers {
            match answer {
                Answer::Log(l) => up(AgentUpdate::Log(l)),
                Answer::Identified {
                    cgroup_id,
                    ident,
                    took,
                } => self.container_identified(cgroup_id, ident, took, session, up),
            }
        }
    }

    /// A watched container is known: excluded (unwatched), or given its
    /// workload and stream, into which the events held meanwhile are
    /// replayed.
    fn container_identified(
        &mut self,
        cgroup_id: u64,
        ident: Identity,
        took: Duration,
        session: &mut Session,
        up: Update<'_>,
    ) {
        let Some(p) = self.pending.remove(&cgroup_id) else {
            return;
        };
        self.held_bytes -= p.held.bytes();
        if let Some(why) = self.cfg.workloads.excluded(&ident) {
            let _ = session.capture().unwatch(&p.cgroup);
            up(AgentUpdate::Log(format!(
                "container {} ({}, image {}): not watched: {why}",
                ident.display_name(),
                ident.short_id(),
                ident.image.as_deref().unwrap_or("?")
            )));
            if !p.stopped {
                let entry = ExcludedStatus {
                    id: ident.id.clone(),
                    name: ident.display_name().to_string(),
                    image: ident.image.clone(),
                    namespace: ident.namespace.clone(),
                    why,
                };
                self.excluded.insert(cgroup_id, entry);
            }
            return;
        }
        let key = self.cfg.workloads.key_of(&ident);
        self.workloads
            .entry(key.clone())
            .or_insert_with(|| Workload::new(WorkloadState::Learning));
        let stream = self.stream_for(&key, &ident.id, cgroup_id, p.running);
        let w = self.workloads.get_mut(&key).expect("inserted above");
        w.containers += 1;
        self.summary.containers_seen += 1;
        up(AgentUpdate::Log(format!(
            "container {} ({}, image {}, {}) started: workload {key}, {}{}",
            ident.display_name(),
            ident.short_id(),
            ident.image.as_deref().unwrap_or("?"),
            ident.runtime,
            w.state.name(),
            held_note(&p.held, took)
        )));
        self.held_dropped += p.held.dropped;
        self.metrics
            .lock()
            .unwrap()
            .container_started(cgroup_id, &ident, &key);
        let container = Container {
            cgroup: p.cgroup,
            ident,
            workload: key,
            fmt: Formatter::new(),
            stream,
            events: 0,
            windows: 0,
            alerts: 0,
            runtime_events: 0,
            running_when_found: p.running,
            exec_limit: Default::default(),
            exec_spans: Default::default(),
            exec_rises: 0,
            late_done: 0,
        };
        if let Some(old) = self.containers.insert(cgroup_id, container) {
            // The same cgroup id twice cannot happen; keep counts right if it does.
            if let Some(w) = self.workloads.get_mut(&old.workload) {
                w.containers = w.containers.saturating_sub(1);
            }
        }
        // What it did while it was being identified, in order, as if live.
        p.held.replay(&mut |raw| self.on_event(raw));
        if p.stopped {
            self.container_stopped(cgroup_id, session, up);
        }
    }

    fn container_stopped(&mut self, cgroup_id: u64, session: &mut Session, up: Update<'_>) {
        self.excluded.remove(&cgroup_id);
        if let Some(p) = self.pending.get_mut(&cgroup_id) {
            // Its events so far are still detected on, once it is known.
            let _ = session.capture().unwatch(&p.cgroup);
            p.stopped = true;
            return;
        }
        let Some(c) = self.containers.get_mut(&cgroup_id) else {
            return;
        };
        let _ = session.capture().unwatch(&c.cgroup);
        // Events still in the ring buffer belong to windows we close now.
        let closed = &mut self.closed;
        let dropped = c.finish_stream(&self.learn_writer, &mut |w| closed.push((cgroup_id, w)));
        self.process_closed(session.now_ns(), up);
        let c = self.containers.remove(&cgroup_id).expect("present above");
        if let Some(w) = self.workloads.get_mut(&c.workload) {
            w.learn_dropped += dropped;
            w.containers = w.containers.saturating_sub(1);
            w.events += c.events;
            w.late += c.late();
        }
        self.summary.late += c.late();
        self.metrics.lock().unwrap().container_stopped(cgroup_id);
        up(AgentUpdate::Log(format!(
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

    /// The stream a container of workload `key` starts with. A learning
    /// file that cannot be opened is this workload's error: the writer
    /// reports it (logged, counted in `learning_tick`) and tries again later.
    fn stream_for(
        &mut self,
        key: &str,
        container_id: &str,
        cgroup_id: u64,
        mid_run: bool,
    ) -> Stream {
        let Some(w) = self.workloads.get(key) else {
            return Stream::Waiting;
        };
        match &w.state {
            WorkloadState::Detecting(b) => Stream::Detecting(Box::new(LiveDetector::new(
                Arc::clone(b),
                threshold_of(b, self.cfg.theta),
                mid_run,
            ))),
            WorkloadState::Training => Stream::Waiting,
            WorkloadState::Learning => Stream::Learning(Learner::start(
                &mut self.learn_writer,
                &self.cfg.learn_root,
                key,
                container_id,
                cgroup_id,
            )),
        }
    }

    fn on_event(&mut self, raw: &RawEvent<'_>) {
        let Some(c) = self.containers.get_mut(&raw.watch) else {
            if let Some(p) = self.pending.get_mut(&raw.watch) {
                self.held_bytes += p.held.push(raw, HELD_BYTES_TOTAL - self.held_bytes);
            }
            return;
        };
        if runtime::is_runtime_task(raw.comm) {
            c.runtime_events += 1;
            // A runtime task starting a program in a container that already
            // ran: an exec session (a container's own start is not one).
            if c.events > 0 || c.running_when_found {
                if let Some(command) = runtime::exec_start(raw) {
                    c.exec_spans.start(raw.pid, raw.ts_ns);
                    self.execs.push((raw.watch, command, raw.uid, raw.ts_ns));
                }
            }
            return;
        }
        c.exec_spans.observe(raw);
        c.events += 1;
        self.summary.events += 1;
        match &mut c.stream {
            Stream::Learning(l) => {
                let ev = c.fmt.format(raw);
                let Some(w) = self.workloads.get_mut(&c.workload) else {
                    return;
                };
                // Past the workload's bound on distinct names: not recorded.
                if !w.names.admit(&ev) {
                    return;
                }
                self.sc_line.clear();
                write_sc_line(&mut self.sc_line, &ev, raw.uid);
                w.learn_dropped += l.write(&self.sc_line, &self.learn_writer);
            }
            Stream::Detecting(d) => {
                let ev = c.fmt.format(raw);
                let (id, closed) = (raw.watch, &mut self.closed);
                d.push(&ev, &mut |w| closed.push((id, w)));
            }
            Stream::Waiting => {}
        }
    }

    /// Learning clocks, segment rotation, and training for the workloads
    /// that have learnt long enough.
    fn learning_tick(&mut self, up: Update<'_>) {
        let dt = self.last_tick.elapsed();
        self.last_tick = Instant::now();
        let segment = segment_length(self.cfg.learn_for);
        for c in self.containers.values_mut() {
            if let Stream::Learning(l) = &mut c.stream {
                let dropped = l.tick(segment, &self.learn_writer);
                if let Some(w) = self.workloads.get_mut(&c.workload) {
                    w.learn_dropped += dropped;
                }
            }
        }
        for (key, e) in self.learn_writer.errors() {
            if let Some(w) = self.workloads.get_mut(&key) {
                w.errors += 1;
            }
            up(AgentUpdate::Log(format!(
                "workload {key}: learning file: {e}; trying again in a while"
            )));
        }
        let mut to_train = Vec::new();
        for (key, w) in self.workloads.iter_mut() {
            if matches!(w.state, WorkloadState::Learning) && w.containers > 0 {
                w.learned += dt;
                if w.learned >= self.cfg.learn_for.max(w.next_check) {
                    to_train.push(key.clone());
                }
            }
        }
        for key in to_train {
            self.start_training(key, up);
        }
        self.pool_uploads();
    }

    /// Stops learning and hands the data to the trainer, which first checks
    /// whether they are complete enough (unless at `--learn-max`).
    fn start_training(&mut self, key: String, up: Update<'_>) {
        let w = self.workloads.get_mut(&key).expect("a learning workload");
        w.state = WorkloadState::Training;
        let at_max = w.learned >= self.cfg.learn_max;
        for c in self.containers.values_mut().filter(|c| c.workload == key) {
            if let Stream::Learning(mut l) = std::mem::replace(&mut c.stream, Stream::Waiting) {
                w.learn_dropped += l.finish(&self.learn_writer);
            }
        }
        up(AgentUpdate::Log(format!(
            "workload {key}: learnt for {:.0}s, {}",
            w.learned.as_secs_f64(),
            if at_max {
                "the maximum (--learn-max): training"
            } else {
                "checking completeness, then training"
            }
        )));
        let written = self.learn_writer.barrier();
        if let Some(written) = self.claim_pool(&key, written) {
            let dir = self.cfg.learn_root.join(folder_name(&key));
            self.submit_training(key, dir, written);
        }
    }

    /// Hands a workload's learning data in `dir` to the trainer, once
    /// `written` answers.
    fn submit_training(
        &mut self,
        key: String,
        dir: PathBuf,
        written: std::sync::mpsc::Receiver<()>,
    ) {
        let at_max = self
            .workloads
            .get(&key)
            .is_some_and(|w| w.learned >= self.cfg.learn_max);
        self.trainer.submit(TrainJob {
            dir,
            key,
            settings: Settings::for_mode(Mode::Modern, self.cfg.window_ns),
            epochs: self.cfg.epochs,
            budget_per_hour: self.cfg.budget_per_hour,
            at_max,
            written,
        });
    }

    fn training_results(&mut self, up: Update<'_>) {
        for (key, result) in self.trainer.poll() {
            // Gone, or detecting with the fleet's model meanwhile.
            if self
                .workloads
                .get(&key)
                .is_none_or(|w| !matches!(w.state, WorkloadState::Training))
            {
                continue;
            }
            match result {
                Ok(Outcome::Trained(t)) => self.trained(&key, *t, up),
                Ok(Outcome::Incomplete(c)) => {
                    let w = self.workloads.get_mut(&key).expect("checked above");
                    let segment = segment_length(self.cfg.learn_for);
                    w.next_check = w.learned + segment;
                    w.completeness = Some(c);
                    w.state = WorkloadState::Learning;
                    up(AgentUpdate::Log(format!(
                        "workload {key}: not complete enough yet ({}; budget {}/h): learning on, checking again in {:.0}s (at most until {:.0}s)",
                        c.describe(self.cfg.window_ns),
                        self.cfg.budget_per_hour,
                        segment.as_secs_f64(),
                        self.cfg.learn_max.as_secs_f64()
                    )));
                    self.pool_done(&key, false);
                }
                Err(e) => {
                    self.training_failed(&key, e, up);
                    self.pool_done(&key, false);
                }
            }
            self.restart_streams(&key);
        }
    }

    fn trained(&mut self, key: &str, t: Trained, up: Update<'_>) {
        let path = match self.store.save(key, &t.bundle) {
            Ok(p) => p,
            Err(e) => return self.training_failed(key, e, up),
        };
        let w = self.workloads.get_mut(key).expect("a training workload");
        self.summary.models_trained += 1;
        for warning in &t.warnings {
            up(AgentUpdate::Log(format!("workload {key}: {warning}")));
        }
        let window_ns = t.bundle.settings.window_ns;
        if !t.completeness.fits(self.cfg.budget_per_hour, window_ns) {
            up(AgentUpdate::Log(format!(
                "workload {key}: warning: learnt for the maximum ({:.0}s, --learn-max) and still not complete: expect about {:.1} false alarms per hour from names it never saw ({})",
                w.learned.as_secs_f64(),
                t.completeness.new_per_hour(window_ns),
                t.completeness.describe(window_ns)
            )));
        }
        up(AgentUpdate::Log(format!(
            "workload {key}: model stored in {} ({} training windows), detecting at {:.6} ({})",
            path.display(),
            t.bundle.training.vectors,
            threshold_of(&t.bundle, self.cfg.theta),
            threshold_source(&t.bundle, self.cfg.theta)
        )));
        let _ = std::fs::remove_dir_all(self.cfg.learn_root.join(folder_name(key)));
        w.completeness = Some(t.completeness);
        w.state = WorkloadState::Detecting(Arc::new(t.bundle));
        self.model_trained(key, up);
    }

    fn training_failed(&mut self, key: &str, e: String, up: Update<'_>) {
        let w = self.workloads.get_mut(key).expect("a training workload");
        w.errors += 1;
        up(AgentUpdate::Log(format!(
            "workload {key}: training failed ({e}); learning on"
        )));
        w.state = WorkloadState::Learning;
        w.learned = Duration::ZERO;
        w.next_check = Duration::ZERO;
    }

    /// Gives the workload's containers the stream its new state calls for.
    fn restart_streams(&mut self, key: &str) {
        let ids: Vec<(u64, String)> = self
            .containers
            .iter()
            .filter(|(_, c)| c.workload == key)
            .map(|(&id, c)| (id, c.ident.id.clone()))
            .collect();
        // The containers are running: their new streams begin mid-run.
        for (id, container_id) in ids {
            let stream = self.stream_for(key, &container_id, id, true);
            if let Some(c) = self.containers.get_mut(&id) {
                c.stream = stream;
            }
        }
    }

    /// Sink logs every turn; status file and metrics about once a second.
    fn refresh_status(&mut self, session: &Session, up: Update<'_>, last: bool) {
        for (key, w) in self.workloads.iter_mut() {
            if w.learn_dropped > 0 && !w.learn_drop_warned {
                w.learn_drop_warned = true;
                up(AgentUpdate::Log(format!(
                    "workload {key}: warning: the learning files are written slower than events come (a slow disk?); {} events not recorded so far (said once)",
                    w.learn_dropped
                )));
            }
            if w.names.refused > 0 && !w.names.warned {
                w.names.warned = true;
                up(AgentUpdate::Log(format!(
                    "workload {key}: warning: more than {} distinct names (files, addresses) while learning: possible poisoning; events naming further new names are not recorded",
                    learn_names::LEARN_MAX_NAMES
                )));
            }
        }
        self.alerts.tick(false);
        for line in self.alerts.take_log() {
            up(AgentUpdate::Log(line));
        }
        if !last && self.last_status.elapsed() < STATUS_EVERY {
            return;
        }
        self.last_status = Instant::now();
        let capture = session.capture_ref();
        view::update_metrics(
            &self.metrics,
            capture,
            &self.containers,
            &self.workloads,
            &self.alerts,
        );
        self.metrics.lock().unwrap().held_dropped = self.held_dropped;
        let mut st = view::status_now(
            capture,
            &self.containers,
            &self.workloads,
            &self.alerts,
            &self.summary,
            &view::Shown {
                learn_for: self.cfg.learn_for,
                theta: self.cfg.theta,
                window_ns: self.cfg.window_ns,
            },
            !last,
        );
        st.identifying = view::identifying_view(&self.pending);
        st.excluded = self.excluded.values().cloned().collect();
        st.excluded.sort_by(|a, b| a.name.cmp(&b.name));
        status::write(&self.cfg.state_dir, &st);
    }

    /// Stop: what is in flight, then every open window, then the sinks.
    pub(crate) fn finish(
        &mut self,
        session: &mut Session,
        up: Update<'_>,
    ) -> Result<(), LiveError> {
        session.drain(&mut |raw| self.on_event(raw))?;
        // Containers still being identified: their names are worth a
        // short wait, their held events are detected on.
        let answers = self
            .identifier
            .answers_until(self.pending.len(), Instant::now() + IDENTIFY_GRACE);
        self.identities(answers, session, up);
        for (&id, c) in self.containers.iter_mut() {
            let closed = &mut self.closed;
            c.finish_stream(&self.learn_writer, &mut |w| closed.push((id, w)));
            self.summary.late += c.late();
        }
        // The learning files are whole when the agent has stopped.
        let _ = self.learn_writer.barrier().recv_timeout(SINK_GRACE);
        self.process_closed(session.now_ns(), up);
        self.alerts.close(SINK_GRACE);
        self.refresh_status(session, up, true);
        self.summary.counters = session.capture_ref().counters();
        self.summary.elapsed = session.elapsed();
        Ok(())
    }

    /// Exec sessions as records of their own, rate-limited per container.
    fn report_execs(&mut self, up: Update<'_>) {
        for (id, command, uid, ts_ns) in std::mem::take(&mut self.execs) {
            let Some(c) = self.containers.get_mut(&id) else {
                continue;
            };
            if !c.exec_limit.admit() {
                continue;
            }
            let record = ExecRecord {
                kind: "exec",
                alert_id: self.alerts.record_id(),
                time_ns: ts_ns,
                command,
                uid,
                who: c.who(),
                suppressed_before: std::mem::take(&mut c.exec_limit.suppressed),
            };
            let json = serde_json::to_vec(&record).expect("exec record serialises");
            self.alerts
                .deliver(&record.alert_id, &record.who.workload, json);
            up(AgentUpdate::Exec(&record));
        }
    }

    /// Counts the windows closed so far; turns anomalous ones into alerts
    /// for every sink.
    fn process_closed(&mut self, now_ns: u64, up: Update<'_>) {
        for (id, scored) in std::mem::take(&mut self.closed) {
            let Some(c) = self.containers.get_mut(&id) else {
                continue;
            };
            c.windows += 1;
            self.summary.windows += 1;
            let window_ns = match &c.stream {
                Stream::Detecting(d) => d.window_ns(),
                _ => self.cfg.window_ns,
            };
            let anomalous = scored.anomalous && !exec_rise(c, &scored, window_ns, up);
            if let Some(w) = self.workloads.get_mut(&c.workload) {
                w.windows += 1;
                w.alerts += u64::from(anomalous);
            }
            if !anomalous {
                continue;
            }
            c.alerts += 1;
            self.summary.alerts += 1;
            // Past the workload's budget: folded into the period's summary.
            let Some(id) = self.alerts.admit(&c.workload) else {
                continue;
            };
            let source = self
                .workloads
                .get(&c.workload)
                .and_then(|w| w.state.bundle())
                .map(|b| threshold_source(b, self.cfg.theta))
                .unwrap_or_default();
            let mut alert = agent_alert(id, c, scored, window_ns, now_ns, self.cfg.theta);
            alert.threshold_source = source;
            let json = serde_json::to_vec(&alert).expect("alert serialises");
            self.alerts
                .deliver(&alert.alert_id, &alert.who.workload, json);
            up(AgentUpdate::Alert(&alert));
        }
    }
}

/// Whether an anomalous window of `c` is only an exec session's rise: no
/// name the model does not know, while an exec session's processes ran
/// (see `exec_spans.rs`). Counted, and the first one of a container logged.
fn exec_rise(c: &mut Container, scored: &ScoredWindow, window_ns: u64, up: Update<'_>) -> bool {
    let w = &scored.features;
    let end_ns = w.start_ns.saturating_add(window_ns);
    if w.names_unseen() || !c.exec_spans.overlaps(w.start_ns, end_ns) {
        return false;
    }
    c.exec_rises += 1;
    if c.exec_rises == 1 {
        up(AgentUpdate::Log(format!(
            "container {}: a window scored over the threshold on rising counts alone while an exec session ran; \
             not an anomaly (the exec has its own record; a name never seen would still alarm)",
            c.ident.display_name()
        )));
    }
    true
}

/// What the start-up log says of the events held while a container was
/// identified (nothing when none were).
fn held_note(held: &Held, took: Duration) -> String {
    match (held.len(), held.dropped) {
        (0, 0) => String::new(),
        (n, 0) => format!(
            "; identified after {} ms, its {n} events meanwhile replayed",
            took.as_millis()
        ),
        (n, d) => format!(
            "; identified after {} ms, its {n} events meanwhile replayed, {d} more dropped (past the bound)",
            took.as_millis()
        ),
    }
}

/// An anomalous window of container `c` as an alert.
fn agent_alert(
    id: String,
    c: &Container,
    scored: ScoredWindow,
    window_ns: u64,
    now_ns: u64,
    theta: Option<f64>,
) -> AgentAlert {
    AgentAlert {
        alert_id: id,
        alert: Alert {
            // The events' clock, as the window times (see Alert::time_ns).
            time_ns: now_ns,
            cgroup: c.cgroup.path.display().to_string(),
            container: c.ident.short_id().to_string(),
            theta,
            window: WindowAlert::from_scored(scored, window_ns),
        },
        who: c.who(),
        threshold_source: String::new(),
    }
}

/// This process's cgroup v2 directory under `root` (`0::/path` in
/// /proc/self/cgroup).
fn own_cgroup(root: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    let rel = rel.trim().trim_start_matches('/');
    (!rel.is_empty()).then(|| root.join(rel))
}
