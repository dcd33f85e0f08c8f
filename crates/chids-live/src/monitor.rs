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
use std::time::Duration;

use serde::Serialize;

use super::aggregate::{self, KernelWindows};
use super::capture::{Counters, RawEvent};
use super::cgroup::{CgroupRef, Target};
use super::format::Formatter;
use super::metrics::{self, Metrics};
use super::session::{Session, StopReason, StopToken};
use super::LiveError;
use chids_detect::alert::WindowAlert;
use chids_detect::detect::{self, ScoredWindow, StreamDetector};
use chids_detect::detector::Detector;
use chids_detect::model::bundle::Bundle;

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
    /// Ends monitoring cleanly when set (see [`StopToken::on_signals`]).
    pub stop: StopToken,
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
        /// Windows are computed in the kernel.
        kernel_windows: bool,
        /// Why `--windows auto` fell back to per-event records (the
        /// bundle cannot use kernel windows); `None` when it did not, or
        /// when per-event records were asked for.
        per_event_reason: Option<&'a str>,
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

/// The window stream of one watched cgroup.
struct Stream<'b> {
    cgroup: CgroupRef,
    detector: StreamDetector<'b>,
}

/// Kernel-computed windows of the watched cgroup (its id, the aggregation).
struct KernelStream {
    watch: u64,
    windows: KernelWindows,
}

/// Monitors until the command exits, the duration passes, or a stop is
/// requested (`opts.stop`); open windows are scored before returning.
pub fn monitor(
    opts: MonitorOptions,
    on_update: &mut dyn FnMut(MonitorUpdate<'_>),
) -> Result<MonitorSummary, LiveError> {
    let detector = chids_detect::detector::load(&opts.model_dir)
        .map_err(|e| LiveError::Other(format!("model: {e}")))?;
    let detector = detector.as_ref();
    let threshold = chids_detect::detector::choose_threshold(detector, opts.theta, opts.threshold)
        .map_err(LiveError::Other)?;
    let alerts_file: Option<File> = match &opts.alerts {
        Some(p) => Some(
            chids_core::output::open_append(p, opts.alerts_follow_symlink)
                .map_err(|e| LiveError::io(format!("--alerts {}", p.display()), e))?,
        ),
        None => None,
    };
    let (mut session, mut target) =
        Session::for_target(&opts.target, "monitor", opts.stop.clone(), opts.duration)?;
    // Alerts go to stdout: the command's output must not mix in.
    session.command_output_to_stderr();

    let metrics = Arc::new(Mutex::new(Metrics::new(threshold)));
    let server = match opts.metrics {
        Some(addr) => Some(metrics::serve(addr, Arc::clone(&metrics))?),
        None => None,
    };
    let kernel_windows = kernel_bundle(detector, opts.windows)?.is_some();
    let per_event_reason = match opts.windows {
        WindowPath::Auto if !kernel_windows => Some(why_per_event(detector)),
        _ => None,
    };
    let mut run = MonitorRun::new(detector, threshold, opts.theta, alerts_file, metrics);
    run.watch(&mut session, &target.cgroup, kernel_windows)?;
    on_update(MonitorUpdate::Started {
        cgroup: &target.cgroup,
        metrics: server.as_ref().map(|s| s.addr),
        threshold,
        kernel_windows,
        per_event_reason: per_event_reason.as_deref(),
    });

    session.begin()?;
    let stopped_by = loop {
        run.step(&mut session, on_update)?;
        // `--container`: a restarted container has a new cgroup; follow it.
        if let Some(new) = target.restarted() {
            run.move_watch(&mut session, &target.cgroup, &new, on_update)?;
            target.moved_to(new);
        }
        if let Some(reason) = session.stop_reason()? {
            break reason;
        }
    };
    let end = session.end();
    let (out_of_order, counters) = run.finish(&mut session, on_update)?;
    session.release_command();
    drop(server);

    Ok(MonitorSummary {
        events: run.events,
        windows: run.windows,
        alerts: run.alerts,
        out_of_order,
        counters,
        elapsed: end.elapsed,
        threshold,
        command_status: end.command_status,
        cpu: end.cpu,
        stopped_by,
        kernel_windows,
    })
}

/// The bundle whose windows the kernel computes, if it does: kernel
/// windows are the chids autoencoder's features, so only its bundles.
fn kernel_bundle(detector: &dyn Detector, path: WindowPath) -> Result<Option<&Bundle>, LiveError> {
    Ok(match (path, detector.as_bundle()) {
        (WindowPath::Events, _) => None,
        (WindowPath::Auto, b) => b.filter(|b| aggregate::supported(&b.settings)),
        (WindowPath::Kernel, Some(b)) => Some(b),
        (WindowPath::Kernel, None) => {
            return Err(LiveError::Other(format!(
                "kernel windows compute the chids autoencoder's features; a {} model scores per-event records (--windows events)",
                detector.name()
            )))
        }
    })
}

/// Why a detector's windows cannot be computed in the kernel, in words a
/// user can act on.
fn why_per_event(detector: &dyn Detector) -> String {
    match detector.as_bundle() {
        None => format!(
            "a {} model scores per-event records, not window features",
            detector.name()
        ),
        Some(b) => aggregate::unsupported_reason(&b.settings)
            .unwrap_or("the bundle allows kernel windows")
            .to_string(),
    }
}

/// `monitor` as a consumer of a [`Session`]: the watched cgroups' window
/// streams, their scoring, alerts and metrics.
struct MonitorRun<'b> {
    detector: &'b dyn Detector,
    threshold: f64,
    theta: Option<f64>,
    alerts_file: Option<File>,
    metrics: Arc<Mutex<Metrics>>,
    streams: HashMap<u64, Stream<'b>>,
    /// Every cgroup watched so far (a restarted container's old one too):
    /// windows of an ended stream are still reported under its name.
    cgroups: HashMap<u64, CgroupRef>,
    kernel: Option<KernelStream>,
    fmt: Formatter,
    /// Windows closed during one step, drained after it: at most one per
    /// event read plus one run of empty windows per stream (a silence of
    /// any length is one entry), whatever the window length.
    closed: Vec<(u64, ScoredWindow)>,
    per_stream_events: HashMap<u64, u64>,
    events: u64,
    windows: u64,
    alerts: u64,
    /// Late events of streams that ended (a restarted container's).
    late_done: u64,
}

impl<'b> MonitorRun<'b> {
    fn new(
        detector: &'b dyn Detector,
        threshold: f64,
        theta: Option<f64>,
        alerts_file: Option<File>,
        metrics: Arc<Mutex<Metrics>>,
    ) -> Self {
        MonitorRun {
            detector,
            threshold,
            theta,
            alerts_file,
            metrics,
            streams: HashMap::new(),
            cgroups: HashMap::new(),
            kernel: None,
            fmt: Formatter::new(),
            closed: Vec::new(),
            per_stream_events: HashMap::new(),
            events: 0,
            windows: 0,
            alerts: 0,
            late_done: 0,
        }
    }

    /// Starts a stream for `cgroup`: windows from the kernel, or from one
    /// record per event.
    fn watch(
        &mut self,
        session: &mut Session,
        cgroup: &CgroupRef,
        kernel_windows: bool,
    ) -> Result<(), LiveError> {
        let kernel = match kernel_windows {
            true => kernel_bundle(self.detector, WindowPath::Kernel)?,
            false => None,
        };
        if let Some(bundle) = kernel {
            let gated = session.gated();
            let windows = KernelWindows::attach(
                session.capture(),
                cgroup,
                bundle.settings,
                &bundle.elements,
                gated,
                false,
            )?;
            self.kernel = Some(KernelStream {
                watch: cgroup.id,
                windows,
            });
        } else {
            session.capture().watch(cgroup)?;
        }
        self.streams.insert(
            cgroup.id,
            Stream {
                cgroup: cgroup.clone(),
                detector: StreamDetector::new(self.detector, self.threshold),
            },
        );
        self.cgroups.insert(cgroup.id, cgroup.clone());
        Ok(())
    }

    fn on_event(&mut self, raw: &RawEvent<'_>) {
        let Some(stream) = self.streams.get_mut(&raw.watch) else {
            return;
        };
        self.events += 1;
        *self.per_stream_events.entry(raw.watch).or_default() += 1;
        let ev = self.fmt.format(raw);
        let closed = &mut self.closed;
        stream
            .detector
            .push(&ev, &mut |w| closed.push((raw.watch, w)));
    }

    /// Windows the kernel finished (two windows old), scored.
    fn pump_kernel(&mut self, session: &mut Session) -> Result<(), LiveError> {
        let (Some(k), Some(bundle)) = (self.kernel.as_mut(), self.detector.as_bundle()) else {
            return Ok(());
        };
        let (threshold, watch) = (self.threshold, k.watch);
        let (events, counts, closed) = (
            &mut self.events,
            &mut self.per_stream_events,
            &mut self.closed,
        );
        k.windows.pump(session.capture(), &mut |w| {
            *events += w.events as u64;
            *counts.entry(watch).or_default() += w.events as u64;
            closed.push((watch, detect::score(bundle, threshold, w)));
        })
    }

    /// One poll: events, kernel windows, the timer, metrics, alerts.
    fn step(
        &mut self,
        session: &mut Session,
        on_update: &mut dyn FnMut(MonitorUpdate<'_>),
    ) -> Result<(), LiveError> {
        session.poll(Duration::from_millis(100), &mut |raw| self.on_event(raw))?;
        self.pump_kernel(session)?;
        // The timer: close windows of silent containers too, on the
        // events' clock (see Capture::now_ns).
        let now = self.detector.mode().timestamp(session.now_ns());
        for (&watch, s) in self.streams.iter_mut() {
            let closed = &mut self.closed;
            s.detector.advance_to(now, &mut |w| closed.push((watch, w)));
        }
        self.update_metrics(session);
        self.process_closed(session.now_ns(), on_update)
    }

    /// Late events of a stream so far: its windower's, plus the kernel's
    /// for the cgroup the kernel aggregates, plus those of ended streams.
    fn late_of(&self, watch: u64, stream: &Stream<'_>) -> u64 {
        let kernel = match &self.kernel {
            Some(k) if k.watch == watch => k.windows.late(),
            _ => 0,
        };
        self.late_done + stream.detector.window_stats().dropped() + kernel
    }

    fn update_metrics(&mut self, session: &Session) {
        let mut m = self.metrics.lock().unwrap();
        for (watch, n) in self.per_stream_events.drain() {
            if let Some(s) = self.streams.get(&watch) {
                m.events(&s.cgroup, n);
            }
        }
        for (&id, s) in &self.streams {
            m.late(&s.cgroup, self.late_of(id, s));
        }
        m.counters = session.capture_ref().counters();
    }

    /// A restarted container: the old cgroup's stream ends (its windows
    /// are scored and reported), the new cgroup gets a stream of its own.
    /// Under kernel windows the aggregation moves with it, so no window is
    /// counted twice (once by the kernel, once from per-event records).
    fn move_watch(
        &mut self,
        session: &mut Session,
        old: &CgroupRef,
        new: &CgroupRef,
        on_update: &mut dyn FnMut(MonitorUpdate<'_>),
    ) -> Result<(), LiveError> {
        session.capture().unwatch(old)?;
        // What the old cgroup sent is in flight or read already.
        session.drain(&mut |raw| self.on_event(raw))?;
        let kernel_windows = self.kernel.is_some();
        if let (Some(k), Some(bundle)) = (self.kernel.take(), self.detector.as_bundle()) {
            let (threshold, watch) = (self.threshold, k.watch);
            let closed = &mut self.closed;
            let mut events = 0u64;
            self.late_done += k.windows.finish(session.capture(), &mut |w| {
                events += w.events as u64;
                closed.push((watch, detect::score(bundle, threshold, w)));
            })?;
            self.events += events;
            *self.per_stream_events.entry(watch).or_default() += events;
        }
        self.update_metrics(session);
        if let Some(s) = self.streams.remove(&old.id) {
            self.late_done += s.detector.window_stats().dropped();
            let closed = &mut self.closed;
            s.detector.finish(&mut |w| closed.push((old.id, w)));
        }
        self.process_closed(session.now_ns(), on_update)?;
        self.watch(session, new, kernel_windows)
    }

    /// Events still in flight, then every open window. Returns the late
    /// events and the capture's counters.
    fn finish(
        &mut self,
        session: &mut Session,
        on_update: &mut dyn FnMut(MonitorUpdate<'_>),
    ) -> Result<(u64, Counters), LiveError> {
        session.drain(&mut |raw| self.on_event(raw))?;
        let mut kernel_late = (0, 0);
        if let (Some(k), Some(bundle)) = (self.kernel.take(), self.detector.as_bundle()) {
            let (threshold, watch) = (self.threshold, k.watch);
            let (events, counts, closed) = (
                &mut self.events,
                &mut self.per_stream_events,
                &mut self.closed,
            );
            let late = k.windows.finish(session.capture(), &mut |w| {
                *events += w.events as u64;
                *counts.entry(watch).or_default() += w.events as u64;
                closed.push((watch, detect::score(bundle, threshold, w)));
            })?;
            kernel_late = (watch, late);
        }
        let counters = session.capture_ref().counters();
        self.update_metrics(session);
        let mut out_of_order = self.late_done;
        for (watch, s) in std::mem::take(&mut self.streams) {
            let own_kernel = if watch == kernel_late.0 {
                kernel_late.1
            } else {
                0
            };
            let late = s.detector.window_stats().dropped() + own_kernel;
            self.metrics
                .lock()
                .unwrap()
                .late(&s.cgroup, self.late_done + late);
            out_of_order += late;
            let closed = &mut self.closed;
            s.detector.finish(&mut |w| closed.push((watch, w)));
        }
        self.process_closed(session.now_ns(), on_update)?;
        Ok((out_of_order, counters))
    }

    /// Scores the windows closed so far, reports them, writes alerts.
    fn process_closed(
        &mut self,
        now_ns: u64,
        on_update: &mut dyn FnMut(MonitorUpdate<'_>),
    ) -> Result<(), LiveError> {
        for (watch, scored) in std::mem::take(&mut self.closed) {
            let Some(cgroup) = self.cgroups.get(&watch) else {
                continue;
            };
            self.windows += scored.features.run_length;
            let (w, error, anomalous) = (&scored.features, scored.error, scored.anomalous);
            self.metrics
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
                theta: self.theta,
                window: WindowAlert::from_scored(scored, self.detector.window_ns()),
            };
            self.alerts += 1;
            if let Some(f) = self.alerts_file.as_mut() {
                let mut line = serde_json::to_vec(&alert).expect("alert serialises");
                line.push(b'\n');
                f.write_all(&line)
                    .and_then(|()| f.flush())
                    .map_err(|e| LiveError::io("write alerts file", e))?;
            }
            on_update(MonitorUpdate::Alert(&alert));
        }
        Ok(())
    }
}
