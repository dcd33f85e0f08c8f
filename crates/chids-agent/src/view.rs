//! What the agent shows of itself: Prometheus metrics and the status file.

use std::collections::HashMap;
use std::fs;
use std::sync::Mutex;
use std::time::Duration;

use chids_live::capture::Capture;

use crate::held::Pending;
use crate::metrics::{AgentMetrics, ContainerCounts, WorkloadLine};
use crate::run::threshold_of;
use crate::sink::AlertDispatch;
use crate::state::{threshold_source, Container, Workload};
use crate::status::{AgentStatus, ContainerStatus, IdentifyingStatus, SinkStatus, WorkloadStatus};
use crate::AgentSummary;

pub(crate) fn update_metrics(
    metrics: &Mutex<AgentMetrics>,
    capture: &Capture,
    containers: &HashMap<u64, Container>,
    workloads: &HashMap<String, Workload>,
    alerts: &AlertDispatch,
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
                    learn_dropped: w.learn_dropped,
                    learned_seconds: w.learned.as_secs_f64(),
                },
            )
        })
        .collect();
    m.late = m.workloads.values().map(|w| w.late).sum();
    m.sinks = alerts.sink_stats();
    m.outbox = alerts.outbox_figures();
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

fn containers_view(containers: &HashMap<u64, Container>) -> Vec<ContainerStatus> {
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
            runtime_events: c.runtime_events,
            exec_rises: c.exec_rises,
        })
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

/// Containers watched and not yet identified, oldest first.
pub(crate) fn identifying_view(pending: &HashMap<u64, Pending>) -> Vec<IdentifyingStatus> {
    let mut v: Vec<IdentifyingStatus> = pending.values().map(Pending::status).collect();
    v.sort_by(|a, b| (a.since_ns, &a.id).cmp(&(b.since_ns, &b.id)));
    v
}

fn workloads_view(
    workloads: &HashMap<String, Workload>,
    containers: &HashMap<u64, Container>,
    theta: Option<f64>,
    window_ns: u64,
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
                threshold: w.state.bundle().map(|b| threshold_of(b, theta)),
                threshold_source: w.state.bundle().map(|b| threshold_source(b, theta)),
                training_windows: w.state.bundle().map_or(0, |b| b.training.vectors),
                calibration_windows: w
                    .state
                    .bundle()
                    .and_then(|b| b.calibration.as_ref())
                    .map_or(0, |c| c.windows),
                new_names_per_hour: w.completeness.map(|c| {
                    c.new_per_hour(w.state.bundle().map_or(window_ns, |b| b.settings.window_ns))
                }),
                errors: w.errors,
                model: w.state.bundle().and(w.origin.clone()),
            }
        })
        .collect();
    v.sort_by(|a, b| a.workload.cmp(&b.workload));
    v
}

/// The agent's settings the status shows.
pub(crate) struct Shown {
    pub learn_for: Duration,
    pub theta: Option<f64>,
    /// Window length of the models the agent trains.
    pub window_ns: u64,
}

pub(crate) fn status_now(
    capture: &Capture,
    containers: &HashMap<u64, Container>,
    workloads: &HashMap<String, Workload>,
    alerts: &AlertDispatch,
    summary: &AgentSummary,
    shown: &Shown,
    running: bool,
) -> AgentStatus {
    let learn_for = shown.learn_for;
    let workloads = workloads_view(workloads, containers, shown.theta, shown.window_ns);
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
        excluded: Vec::new(),
        identifying: Vec::new(),
        sinks: alerts
            .sink_stats()
            .into_iter()
            .map(|(kind, st)| SinkStatus::new(kind, st))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use chids_core::event::Direction;
    use chids_live::capture::RawEvent;
    use chids_live::cgroup::CgroupRef;

    use super::*;
    use crate::discovery::Runtime;
    use crate::held::Held;

    fn pending(id: &str, cgroup_id: u64, since_ns: u64, events: u64) -> Pending {
        let mut held = Held::default();
        for ts_ns in 0..events {
            let raw = RawEvent {
                ts_ns,
                watch: cgroup_id,
                ret: 0,
                flags: 0,
                pid: 1,
                tid: 1,
                uid: 0,
                nr: 0,
                dir: Direction::Exit,
                comm: b"sh",
                path: None,
                path_fault: false,
                sockaddr: None,
            };
            held.push(&raw, usize::MAX);
        }
        Pending {
            cgroup: CgroupRef {
                path: PathBuf::from(format!("/sys/fs/cgroup/kubepods/pod1/{id}")),
                id: cgroup_id,
                level: 3,
                name: id[..12].to_string(),
            },
            container_id: id.to_string(),
            runtime: Runtime::Containerd,
            since_ns,
            running: false,
            held,
            stopped: false,
        }
    }

    #[test]
    fn containers_being_identified_are_shown_oldest_first_with_what_is_held() {
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        let pending = HashMap::from([(7, pending(&b, 7, 2_000, 3)), (5, pending(&a, 5, 1_000, 0))]);
        let shown = identifying_view(&pending);
        assert_eq!(shown.len(), 2);
        assert_eq!(shown[0].id, a, "oldest first");
        assert_eq!((shown[0].since_ns, shown[0].held_events), (1_000, 0));
        let second = &shown[1];
        assert_eq!(second.state, "identifying");
        assert_eq!(second.runtime, "containerd");
        assert_eq!(
            (second.cgroup_id, second.since_ns, second.held_events),
            (7, 2_000, 3)
        );
        assert_eq!(second.cgroup, format!("/sys/fs/cgroup/kubepods/pod1/{b}"));
        // And in the status file as `agent status` reads it.
        let dir = tempfile::tempdir().unwrap();
        let st = AgentStatus {
            identifying: shown.clone(),
            ..AgentStatus::default()
        };
        crate::status::write(dir.path(), &st);
        let back = crate::status::read_status(dir.path()).unwrap();
        assert_eq!(back.identifying, shown);
    }
}
