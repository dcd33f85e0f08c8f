//! `chids monitor`: score a container's windows as they close and raise an
//! alert for every anomalous one.
//!
//! Each watched cgroup gets its own window stream, scored by the same
//! [`StreamDetector`] the offline pipeline uses, so live and file scoring
//! cannot drift apart. Windows close when an event two windows later
//! arrives, and on a timer when the container is silent. Every alert is one
//! JSON line, flushed at once, in the alerts file.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::aggregate::{self, KernelWindows};
use super::capture::{Capture, Counters, ExecGate, RawEvent};
use super::cgroup::{CgroupRef, CommandCgroup, Target};
use super::format::Formatter;
use super::metrics::{self, Metrics};
use super::record::should_stop;
use super::record::StopReason;
use super::LiveError;
use chids_detect::alert::WindowAlert;
use chids_detect::detect::{self, ScoredWindow, StreamDetector};

/// What `monitor` does.
#[derive(Clone, Debug)]
pub struct MonitorOptions {
    pub target: Target,
    /// Model bundle folder (`baseline.json` + `model.safetensors`).
    pub model_dir: PathBuf,
    /// Threshold multiplier: alert when error > theta × max training error.
    /// Neither this nor `threshold`: the model's operating threshold.
    pub theta: Option<f64>,
    /// Alert when error > this.
    pub threshold: Option<f64>,
    /// Append one JSON line per alert here (flushed per alert). Created
    /// with mode 0600; a symlink, a hard link or anything but a regular
    /// file there is refused (see `chids_core::output::open_append`)...
    pub alerts: Option<PathBuf>,
    /// ...unless this is set: then a symlink is followed.
    pub alerts_follow_symlink: bool,
    /// Serve Prometheus metrics on this address (`127.0.0.1:9464`; port 0
    /// picks a free port, reported through [`MonitorUpdate::Listening`]).
    pub metrics: Option<SocketAddr>,
    /// Stop after this long (default: until the command exits, or a signal).
    pub duration: Option<Duration>,
    /// Where windows are computed.
    pub windows: WindowPath,
}

/// Where `monitor` computes window features.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WindowPath {
    /// In the kernel when the bundle allows it (modern, per-thread edges),
    /// else from per-event records.
    #[default]
    Auto,
    /// In the kernel (`aggregate`); an error for bundles that cannot.
    Kernel,
    /// From one ring-buffer record per event, in user space.
    Events,
}

/// One anomalous window. Field names are the alert file's JSON keys.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Alert {
    /// When the alert was raised, ns since the epoch, on the events' clock
    /// (see `Capture::now_ns`): a wall-clock step while chids runs moves
    /// neither this nor the window times, so they stay comparable.
    pub time_ns: u64,
    /// The watched cgroup's path.
    pub cgroup: String,
    /// Container id (first 12 digits) or the cgroup's name.
    pub container: String,
    /// The theta the threshold came from; `None` when it is the model's
    /// operating threshold or was given directly.
    pub theta: Option<f64>,
    /// The window: kind, times, features, error, threshold, score, reasons.
    #[serde(flatten)]
    pub window: WindowAlert,
}

/// A closed window, anomalous or not.
#[derive(Clone, Debug)]
pub struct WindowReport<'a> {
    pub container: &'a str,
    pub start_ns: u64,
    /// Consecutive windows this report stands for (> 1: a run of empty ones).
    pub run_length: u64,
    pub events: usize,
    /// `None` for an empty window.
    pub error: Option<f64>,
    pub anomalous: bool,
}

/// What `monitor` tells its caller as it runs.
#[derive(Debug)]
pub enum MonitorUpdate<'a> {
    /// Everything is attached; the metrics server (if any) listens here.
    Started {
        cgroup: &'a CgroupRef,
        metrics: Option<SocketAddr>,
        threshold: f64,
    },
    Window(&'a WindowReport<'a>),
    Alert(&'a Alert),
}

#[derive(Clone, Debug)]
pub struct MonitorSummary {
    pub events: u64,
    pub windows: u64,
    pub alerts: u64,
    /// Events the windower dropped for their time: more than two windows
    /// late, before the first window, or absurdly far ahead.
    pub out_of_order: u64,
    pub counters: Counters,
    pub elapsed: Duration,
    pub threshold: f64,
    pub command_status: Option<i32>,
    /// CPU time chids itself used while capturing (user + system).
    pub cpu: Duration,
    pub stopped_by: StopReason,
    /// Windows were computed in the kernel.
    pub kernel_windows: bool,
}

/// Notices, about once a second, that a watched container's cgroup is gone
/// and the container has a new one (it was restarted).
#[derive(Default)]
struct RestartCheck {
    last: Option<Instant>,
}

impl RestartCheck {
    fn check(&mut self, current: &CgroupRef, id: &str) -> Option<CgroupRef> {
        use std::os::unix::fs::MetadataExt;
        if self
            .last
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return None;
        }
        self.last = Some(Instant::now());
        let same = std::fs::metadata(&current.path).is_ok_and(|m| m.ino() == current.id);
        if same {
            return None;
        }
        CgroupRef::from_container(id)
            .ok()
            .filter(|c| c.id != current.id)
    }
}

/// The window stream of one watched cgroup.
struct Stream<'b> {
    cgroup: CgroupRef,
    detector: StreamDetector<'b>,
}

/// Monitors until the command exits, the duration passes, or a stop is
/// requested (SIGINT/SIGTERM); open windows are scored before returning.
pub fn monitor(
    opts: MonitorOptions,
    on_update: &mut dyn FnMut(MonitorUpdate<'_>),
) -> Result<MonitorSummary, LiveError> {
    let detector = chids_detect::detector::load(&opts.model_dir)
        .map_err(|e| LiveError::Other(format!("model: {e}")))?;
    let detector = detector.as_ref();
    let threshold = chids_detect::detector::choose_threshold(detector, opts.theta, opts.threshold)
        .map_err(LiveError::Other)?;
    let mut alerts_file: Option<File> = match &opts.alerts {
        Some(p) => Some(
            chids_core::output::open_append(p, opts.alerts_follow_symlink)
                .map_err(|e| LiveError::io(format!("--alerts {}", p.display()), e))?,
        ),
        None => None,
    };

    let mut capture = Capture::open()?;
    let mut command: Option<CommandCgroup> = None;
    let mut cgroup = match &opts.target {
        Target::Cgroup(p) => CgroupRef::from_path(p)?,
        Target::Container(id) => CgroupRef::from_container(id)?,
        Target::Command(argv) => {
            let base = argv
                .first()
                .map(|a| {
                    std::path::Path::new(a)
                        .file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned()
                })
                .unwrap_or_default();
            // Alerts go to stdout: the command's output must not mix in.
            let c = CommandCgroup::create(&format!("monitor-{base}"))?.output_to_stderr();
            let cg = c.cgroup.clone();
            command = Some(c);
            cg
        }
    };

    let metrics = Arc::new(Mutex::new(Metrics::new(threshold)));
    let server = match opts.metrics {
        Some(addr) => Some(metrics::serve(addr, Arc::clone(&metrics))?),
        None => None,
    };

    let mut streams: HashMap<u64, Stream<'_>> = HashMap::new();
    streams.insert(
        cgroup.id,
        Stream {
            cgroup: cgroup.clone(),
            detector: StreamDetector::new(detector, threshold),
        },
    );
    let mut cgroups: HashMap<u64, CgroupRef> = streams
        .iter()
        .map(|(&id, s)| (id, s.cgroup.clone()))
        .collect();
    // Kernel windows are the autoencoder's features: only its bundles.
    let kernel_bundle = match (opts.windows, detector.as_bundle()) {
        (WindowPath::Events, _) => None,
        (WindowPath::Auto, b) => b.filter(|b| aggregate::supported(&b.settings)),
        (WindowPath::Kernel, Some(b)) => Some(b),
        (WindowPath::Kernel, None) => {
            return Err(LiveError::Other(format!(
                "kernel windows compute the chids autoencoder's features; a {} model scores per-event records (--windows events)",
                detector.name()
            )))
        }
    };
    // The same gate `record` applies (see ExecGate).
    let gated = matches!(opts.target, Target::Command(_));
    let mut kernel = if let Some(bundle) = kernel_bundle {
        Some(KernelWindows::attach(
            &mut capture,
            &cgroup,
            bundle.settings,
            &bundle.elements,
            gated,
            false,
        )?)
    } else {
        capture.watch(&cgroup)?;
        None
    };
    on_update(MonitorUpdate::Started {
        cgroup: &cgroup,
        metrics: server.as_ref().map(|s| s.addr),
        threshold,
    });

    let start = Instant::now();
    let cpu_start = super::self_cpu_time();
    if let (Some(c), Target::Command(argv)) = (command.as_mut(), &opts.target) {
        c.spawn(argv)?;
    }

    let mode = detector.mode();
    let mut fmt = Formatter::new();
    // Windows closed during one poll, drained after it: at most one per
    // event read plus one run of empty windows per stream (a silence of
    // any length is one entry), whatever the window length. Each stream's
    // symbol tables and caches are bounded in `FeatureStream`.
    let mut closed: Vec<(u64, ScoredWindow)> = Vec::new();
    let mut per_stream_events: HashMap<u64, u64> = HashMap::new();
    let mut events = 0u64;
    let mut windows = 0u64;
    let mut alerts = 0u64;
    let mut command_status = None;
    // The same stream `record` writes: from the command's exec on.
    let mut gate = ExecGate::new(matches!(opts.target, Target::Command(_)));

    // Scores the windows closed so far, reports them, writes alerts.
    let window_ns = detector.window_ns();
    let mut process_closed = |closed: &mut Vec<(u64, ScoredWindow)>,
                              streams: &HashMap<u64, CgroupRef>,
                              windows: &mut u64,
                              alerts: &mut u64,
                              now_ns: u64|
     -> Result<(), LiveError> {
        for (watch, scored) in closed.drain(..) {
            let Some(cgroup) = streams.get(&watch) else {
                continue;
            };
            *windows += scored.features.run_length;
            let (w, error, anomalous) = (&scored.features, scored.error, scored.anomalous);
            metrics
                .lock()
                .unwrap()
                .window(cgroup, error, anomalous, w.run_length);
            on_update(MonitorUpdate::Window(&WindowReport {
                container: &cgroup.name,
                start_ns: w.start_ns,
                run_length: w.run_length,
                events: w.events,
                error,
                anomalous,
            }));
            if !anomalous {
                continue;
            }
            let alert = Alert {
                time_ns: now_ns,
                cgroup: cgroup.path.display().to_string(),
                container: cgroup.name.clone(),
                theta: opts.theta,
                window: WindowAlert::from_scored(scored, window_ns),
            };
            *alerts += 1;
            if let Some(f) = alerts_file.as_mut() {
                let mut line = serde_json::to_vec(&alert).expect("alert serialises");
                line.push(b'\n');
                f.write_all(&line)
                    .and_then(|()| f.flush())
                    .map_err(|e| LiveError::io("write alerts file", e))?;
            }
            on_update(MonitorUpdate::Alert(&alert));
        }
        Ok(())
    };

    let mut restart_check = RestartCheck::default();
    // Late events of detectors that ended (a restarted container's).
    let mut late_done = 0u64;
    let stopped_by = loop {
        capture.poll(Duration::from_millis(100), &mut |raw: &RawEvent<'_>| {
            if !gate.admit(raw) {
                return;
            }
            let Some(stream) = streams.get_mut(&raw.watch) else {
                return;
            };
            events += 1;
            *per_stream_events.entry(raw.watch).or_default() += 1;
            let ev = fmt.format(raw);
            stream
                .detector
                .push(&ev, &mut |w| closed.push((raw.watch, w)));
        })?;
        if let (Some(k), Some(bundle)) = (kernel.as_mut(), kernel_bundle) {
            k.pump(&mut capture, &mut |w| {
                events += w.events as u64;
                *per_stream_events.entry(cgroup.id).or_default() += w.events as u64;
                closed.push((cgroup.id, detect::score(bundle, threshold, w)));
            })?;
        }
        // The timer: close windows of silent containers too.
        // One clock: the events' (see Capture::now_ns).
        let now = mode.timestamp(capture.now_ns());
        for (&watch, s) in streams.iter_mut() {
            s.detector.advance_to(now, &mut |w| closed.push((watch, w)));
        }
        {
            let mut m = metrics.lock().unwrap();
            for (watch, n) in per_stream_events.drain() {
                if let Some(s) = streams.get(&watch) {
                    m.events(&s.cgroup, n);
                }
            }
            let kernel_late = kernel.as_ref().map_or(0, KernelWindows::late);
            for (&id, s) in &streams {
                let own_kernel = if id == cgroup.id { kernel_late } else { 0 };
                m.late(
                    &s.cgroup,
                    late_done + s.detector.window_stats().dropped() + own_kernel,
                );
            }
            m.counters = capture.counters();
        }
        process_closed(
            &mut closed,
            &cgroups,
            &mut windows,
            &mut alerts,
            capture.now_ns(),
        )?;

        // `--container`: a restarted container has a new cgroup; follow it.
        if let Target::Container(id) = &opts.target {
            if let Some(new) = restart_check.check(&cgroup, id) {
                capture.unwatch(&cgroup)?;
                if let Some(old) = streams.remove(&cgroup.id) {
                    let old_id = cgroup.id;
                    late_done += old.detector.window_stats().dropped();
                    old.detector.finish(&mut |w| closed.push((old_id, w)));
                }
                process_closed(
                    &mut closed,
                    &cgroups,
                    &mut windows,
                    &mut alerts,
                    capture.now_ns(),
                )?;
                capture.watch(&new)?;
                streams.insert(
                    new.id,
                    Stream {
                        cgroup: new.clone(),
                        detector: StreamDetector::new(detector, threshold),
                    },
                );
                cgroups.insert(new.id, new.clone());
                cgroup = new;
            }
        }

        if let Some(reason) = should_stop(&mut command, &mut command_status, opts.duration, start)?
        {
            break reason;
        }
    };

    // Events still in flight, then every open window.
    capture.drain(&mut |raw: &RawEvent<'_>| {
        if !gate.admit(raw) {
            return;
        }
        if let Some(stream) = streams.get_mut(&raw.watch) {
            events += 1;
            *per_stream_events.entry(raw.watch).or_default() += 1;
            let ev = fmt.format(raw);
            stream
                .detector
                .push(&ev, &mut |w| closed.push((raw.watch, w)));
        }
    })?;
    let mut kernel_late = 0;
    if let (Some(k), Some(bundle)) = (kernel.take(), kernel_bundle) {
        kernel_late = k.finish(&mut capture, &mut |w| {
            events += w.events as u64;
            *per_stream_events.entry(cgroup.id).or_default() += w.events as u64;
            closed.push((cgroup.id, detect::score(bundle, threshold, w)));
        })?;
    }
    let elapsed = start.elapsed();
    if let Some(c) = command.as_mut() {
        if command_status.is_none() {
            command_status = c.kill();
        }
    }
    let counters = capture.counters();
    {
        let mut m = metrics.lock().unwrap();
        m.counters = counters;
        for (watch, n) in per_stream_events.drain() {
            if let Some(s) = streams.get(&watch) {
                m.events(&s.cgroup, n);
            }
        }
    }
    let mut out_of_order = late_done;
    for (watch, s) in streams.drain() {
        let own_kernel = if watch == cgroup.id { kernel_late } else { 0 };
        let late = s.detector.window_stats().dropped() + own_kernel;
        metrics.lock().unwrap().late(&s.cgroup, late_done + late);
        out_of_order += late;
        s.detector.finish(&mut |w| closed.push((watch, w)));
    }
    process_closed(
        &mut closed,
        &cgroups,
        &mut windows,
        &mut alerts,
        capture.now_ns(),
    )?;
    drop(command);
    drop(server);

    Ok(MonitorSummary {
        events,
        windows,
        alerts,
        out_of_order,
        counters,
        elapsed,
        threshold,
        command_status,
        cpu: super::self_cpu_time().saturating_sub(cpu_start),
        stopped_by,
        kernel_windows: kernel_bundle.is_some(),
    })
}
