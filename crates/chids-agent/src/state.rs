//! What the agent keeps per workload and per watched container.

use std::sync::Arc;
use std::time::Duration;

use chids_detect::completeness::Completeness;
use chids_detect::detect::ScoredWindow;
use chids_detect::model::bundle::Bundle;
use chids_live::cgroup::CgroupRef;
use chids_live::format::Formatter;

use crate::detector::LiveDetector;
use crate::identity::Identity;
use crate::learn_writer::LearnWriter;
use crate::learning::Learner;
use crate::runtime::ExecLimit;

pub(crate) enum WorkloadState {
    Learning,
    Training,
    Detecting(Arc<Bundle>),
}

impl WorkloadState {
    /// The bundle detection uses, once detecting.
    pub(crate) fn bundle(&self) -> Option<&Bundle> {
        match self {
            WorkloadState::Detecting(b) => Some(b),
            _ => None,
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            WorkloadState::Learning => "learning",
            WorkloadState::Training => "training",
            WorkloadState::Detecting(_) => "detecting",
        }
    }
}

pub(crate) struct Workload {
    pub state: WorkloadState,
    pub containers: usize,
    pub learned: Duration,
    pub events: u64,
    pub windows: u64,
    pub alerts: u64,
    /// Late events of the workload's containers that have stopped.
    pub late: u64,
    /// Errors confined to this workload (learning files that could not be
    /// written, training that failed), each logged.
    pub errors: u64,
    /// Learnt time at which the data are next checked for completeness.
    pub next_check: Duration,
    /// The last completeness estimate of its learning data.
    pub completeness: Option<Completeness>,
    /// Distinct names its learning data holds (bounded).
    pub names: crate::learn_names::LearnNames,
    /// Where its model comes from (fleet version, node, reason, time).
    pub origin: Option<crate::status::ModelOrigin>,
    /// Learning lines not written because the writer fell behind the
    /// capture (see `learn_writer.rs`); warned about once.
    pub learn_dropped: u64,
    pub learn_drop_warned: bool,
}

impl Workload {
    pub(crate) fn new(state: WorkloadState) -> Workload {
        Workload {
            state,
            containers: 0,
            learned: Duration::ZERO,
            events: 0,
            windows: 0,
            alerts: 0,
            late: 0,
            errors: 0,
            next_check: Duration::ZERO,
            completeness: None,
            names: Default::default(),
            origin: None,
            learn_dropped: 0,
            learn_drop_warned: false,
        }
    }
}

pub(crate) enum Stream {
    Learning(Learner),
    /// The workload is training; events are not kept.
    Waiting,
    // Boxed: a detector is large, and containers switch streams rarely.
    Detecting(Box<LiveDetector>),
}

pub(crate) struct Container {
    pub cgroup: CgroupRef,
    pub ident: Identity,
    pub workload: String,
    pub fmt: Formatter,
    pub stream: Stream,
    pub events: u64,
    pub windows: u64,
    pub alerts: u64,
    /// Events of the container runtime's own tasks (runc init, conmon):
    /// counted, not fed to the model (see `runtime.rs`).
    pub runtime_events: u64,
    /// Its program was running when the agent found it: a runtime task
    /// starting a program is then an exec session even before the
    /// container's first own event.
    pub running_when_found: bool,
    pub exec_limit: ExecLimit,
    /// When its exec sessions' processes ran (see `exec_spans.rs`).
    pub exec_spans: crate::exec_spans::ExecSpans,
    /// Windows whose only reason was rising counts while an exec session
    /// ran: counted, not raised (see `exec_spans.rs`).
    pub exec_rises: u64,
    /// Late events of the container's earlier detectors (see [`Container::late`]).
    pub late_done: u64,
}

impl Container {
    /// Who this container's records are about.
    pub(crate) fn who(&self) -> crate::AlertContainer {
        crate::AlertContainer {
            container_id: self.ident.id.clone(),
            container_name: self.ident.display_name().to_string(),
            image: self.ident.image.clone(),
            runtime: self.ident.runtime.clone(),
            workload: self.workload.clone(),
            namespace: self.ident.namespace.clone(),
            pod: self.ident.pod.clone(),
            k8s_container: self.ident.k8s_container.clone(),
        }
    }

    /// Events the windower dropped for their time, so far.
    pub(crate) fn late(&self) -> u64 {
        self.late_done
            + match &self.stream {
                Stream::Detecting(d) => d.dropped(),
                _ => 0,
            }
    }

    /// Ends the container's stream: a detector's open windows go to `emit`,
    /// a learning file gets its last lines and is closed. Returns the
    /// learning lines dropped (the writer too far behind).
    pub(crate) fn finish_stream(
        &mut self,
        writer: &LearnWriter,
        emit: &mut impl FnMut(ScoredWindow),
    ) -> u64 {
        self.late_done = self.late();
        match std::mem::replace(&mut self.stream, Stream::Waiting) {
            Stream::Detecting(mut d) => {
                d.finish(emit);
                0
            }
            Stream::Learning(mut l) => l.finish(writer),
            Stream::Waiting => 0,
        }
    }
}

/// Where a detection threshold comes from, in words.
pub(crate) fn threshold_source(bundle: &Bundle, theta: Option<f64>) -> String {
    match (theta, &bundle.calibration) {
        (Some(t), _) => format!("theta {t} (--theta) x the largest training error"),
        (None, Some(c)) => format!(
            "operating threshold for {}/h from {} data ({} windows, {:.2} h; {})",
            c.max_false_alarms_per_hour, c.source, c.windows, c.hours, c.method
        ),
        (None, None) => "theta 1.0: the model has no operating threshold".into(),
    }
}
