//! Prometheus metrics of `chids agent`: per container (while it runs) and
//! per workload (for the agent's life), the agent's own cost, kernel
//! losses and the sinks' delivery state. Served by the same small server
//! as `monitor`'s ([`chids_live::metrics::serve`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::identity::Identity;
use crate::sink::SinkStats;
use chids_live::capture::Counters;
use chids_live::metrics::Exposition;

#[derive(Clone, Debug, Default)]
struct ContainerLine {
    labels: String,
    events: u64,
    windows: u64,
    alerts: u64,
    late: u64,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct WorkloadLine {
    pub state: &'static str,
    pub containers: usize,
    pub events: u64,
    pub windows: u64,
    pub alerts: u64,
    /// Events the windower dropped for their time (see [`AgentMetrics::late`]).
    pub late: u64,
    pub learned_seconds: f64,
}

/// A running container's totals so far.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ContainerCounts {
    pub events: u64,
    pub windows: u64,
    pub alerts: u64,
    pub late: u64,
}

#[derive(Clone, Debug, Default)]
pub struct AgentMetrics {
    /// By cgroup id; removed when the container stops, so label sets do
    /// not pile up on a host where containers come and go.
    containers: BTreeMap<u64, ContainerLine>,
    pub(crate) workloads: BTreeMap<String, WorkloadLine>,
    /// The capture's loss counters (ring buffer, path reads, exec enters,
    /// undecodable records).
    pub counters: Counters,
    /// Events dropped by the detecting streams' windowers for their time:
    /// more than two windows late, before a stream's first window, or
    /// absurdly far ahead. All containers, stopped ones included.
    pub late: u64,
    pub cpu_seconds: f64,
    pub rss_bytes: u64,
    pub watched: usize,
    pub sinks: Vec<(&'static str, SinkStats)>,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub(crate) const STATES: [&str; 3] = ["learning", "training", "detecting"];

impl AgentMetrics {
    pub(crate) fn container_started(&mut self, cgroup_id: u64, ident: &Identity, workload: &str) {
        let labels = format!(
            "container=\"{}\",container_id=\"{}\",image=\"{}\",runtime=\"{}\",workload=\"{}\"",
            escape(ident.display_name()),
            escape(ident.short_id()),
            escape(ident.image.as_deref().unwrap_or("")),
            escape(&ident.runtime),
            escape(workload)
        );
        self.containers.insert(
            cgroup_id,
            ContainerLine {
                labels,
                ..ContainerLine::default()
            },
        );
    }

    pub(crate) fn container_stopped(&mut self, cgroup_id: u64) {
        self.containers.remove(&cgroup_id);
    }

    /// A running container's totals so far.
    pub(crate) fn set_counts(&mut self, cgroup_id: u64, counts: ContainerCounts) {
        if let Some(c) = self.containers.get_mut(&cgroup_id) {
            c.events = counts.events;
            c.windows = counts.windows;
            c.alerts = counts.alerts;
            c.late = counts.late;
        }
    }
}

impl Exposition for AgentMetrics {
    fn render(&self) -> String {
        let mut s = String::new();
        let mut family =
            |metric: &str,
             kind: &str,
             help: &str,
             rows: &mut dyn Iterator<Item = (String, String)>| {
                let _ = writeln!(s, "# HELP {metric} {help}\n# TYPE {metric} {kind}");
                for (labels, value) in rows {
                    if labels.is_empty() {
                        let _ = writeln!(s, "{metric} {value}");
                    } else {
                        let _ = writeln!(s, "{metric}{{{labels}}} {value}");
                    }
                }
            };
        let per_container = |f: fn(&ContainerLine) -> u64| {
            self.containers
                .values()
                .map(move |c| (c.labels.clone(), f(c).to_string()))
                .collect::<Vec<_>>()
        };
        family(
            "chids_container_events_total",
            "counter",
            "System call events captured per running container.",
            &mut per_container(|c| c.events).into_iter(),
        );
        family(
            "chids_container_windows_total",
            "counter",
            "Windows scored per running container.",
            &mut per_container(|c| c.windows).into_iter(),
        );
        family(
            "chids_container_alerts_total",
            "counter",
            "Alerts per running container.",
            &mut per_container(|c| c.alerts).into_iter(),
        );
        family(
            "chids_container_late_events_total",
            "counter",
            "Events dropped per running container for their time (more than two windows late, before the first window, or absurdly far ahead).",
            &mut per_container(|c| c.late).into_iter(),
        );
        let wl = |w: &str| format!("workload=\"{}\"", escape(w));
        family(
            "chids_workload_state",
            "gauge",
            "1 for the state the workload is in (learning, training, detecting).",
            &mut self
                .workloads
                .iter()
                .flat_map(|(k, w)| {
                    STATES.iter().map(move |st| {
                        (
                            format!("{},state=\"{st}\"", wl(k)),
                            u8::from(w.state == *st).to_string(),
                        )
                    })
                })
                .collect::<Vec<_>>()
                .into_iter(),
        );
        let per_workload = |f: fn(&WorkloadLine) -> String| {
            self.workloads
                .iter()
                .map(|(k, w)| (wl(k), f(w)))
                .collect::<Vec<_>>()
        };
        family(
            "chids_workload_containers",
            "gauge",
            "Running containers of the workload.",
            &mut per_workload(|w| w.containers.to_string()).into_iter(),
        );
        family(
            "chids_workload_learned_seconds",
            "gauge",
            "Time the workload has been learning so far.",
            &mut per_workload(|w| format!("{:.1}", w.learned_seconds)).into_iter(),
        );
        family(
            "chids_workload_events_total",
            "counter",
            "Events of the workload's containers.",
            &mut per_workload(|w| w.events.to_string()).into_iter(),
        );
        family(
            "chids_workload_windows_total",
            "counter",
            "Windows of the workload's containers scored.",
            &mut per_workload(|w| w.windows.to_string()).into_iter(),
        );
        family(
            "chids_workload_alerts_total",
            "counter",
            "Alerts raised for the workload.",
            &mut per_workload(|w| w.alerts.to_string()).into_iter(),
        );
        family(
            "chids_workload_late_events_total",
            "counter",
            "Events of the workload's containers dropped for their time.",
            &mut per_workload(|w| w.late.to_string()).into_iter(),
        );
        let one = |v: String| vec![(String::new(), v)].into_iter();
        family(
            "chids_agent_cpu_seconds_total",
            "counter",
            "CPU time (user + system) of the agent process.",
            &mut one(format!("{:.3}", self.cpu_seconds)),
        );
        family(
            "chids_agent_rss_bytes",
            "gauge",
            "Resident memory of the agent process.",
            &mut one(self.rss_bytes.to_string()),
        );
        family(
            "chids_agent_watched_containers",
            "gauge",
            "Container cgroups watched now.",
            &mut one(self.watched.to_string()),
        );
        family(
            "chids_late_events_total",
            "counter",
            "Events dropped for their time (more than two windows late, before the first window, or absurdly far ahead), all containers.",
            &mut one(self.late.to_string()),
        );
        for (metric, help, v) in chids_live::metrics::kernel_counters(&self.counters) {
            family(metric, "counter", help, &mut one(v.to_string()));
        }
        let sink = |f: fn(&SinkStats) -> u64| {
            self.sinks
                .iter()
                .map(|(k, st)| (format!("sink=\"{k}\""), f(st).to_string()))
                .collect::<Vec<_>>()
                .into_iter()
        };
        family(
            "chids_sink_delivered_total",
            "counter",
            "Alerts delivered by each sink.",
            &mut sink(|s| s.delivered),
        );
        family(
            "chids_spool_bytes",
            "gauge",
            "Bytes of alerts waiting in the on-disk spool.",
            &mut sink(|s| s.spooled_bytes),
        );
        family(
            "chids_spool_alerts",
            "gauge",
            "Alerts waiting in the on-disk spool.",
            &mut sink(|s| s.spooled),
        );
        family(
            "chids_spool_lost_total",
            "counter",
            "Alerts dropped because the spool was full.",
            &mut sink(|s| s.lost),
        );
        family(
            "chids_sink_connected",
            "gauge",
            "1 when the sink's destination is reachable.",
            &mut sink(|s| u64::from(s.connected)),
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_containers_workloads_and_sinks() {
        let ident = Identity {
            runtime: "podman".into(),
            id: "ab".repeat(32),
            name: Some("web\"1".into()),
            image: Some("localhost/web:1".into()),
            ..Identity::default()
        };
        let mut m = AgentMetrics::default();
        m.container_started(7, &ident, "localhost/web:1");
        m.set_counts(
            7,
            ContainerCounts {
                events: 100,
                windows: 3,
                alerts: 1,
                late: 2,
            },
        );
        m.late = 5;
        m.counters.exec_unmatched = 4;
        m.workloads.insert(
            "localhost/web:1".into(),
            WorkloadLine {
                state: "detecting",
                containers: 1,
                ..WorkloadLine::default()
            },
        );
        m.sinks.push((
            "nats",
            SinkStats {
                spooled_bytes: 512,
                ..SinkStats::default()
            },
        ));
        let text = m.render();
        assert!(text.contains(
            "chids_container_events_total{container=\"web\\\"1\",container_id=\"abababababab\",image=\"localhost/web:1\",runtime=\"podman\",workload=\"localhost/web:1\"} 100"
        ), "{text}");
        assert!(text.contains(
            "chids_container_late_events_total{container=\"web\\\"1\",container_id=\"abababababab\",image=\"localhost/web:1\",runtime=\"podman\",workload=\"localhost/web:1\"} 2"
        ), "{text}");
        assert!(text.contains("\nchids_late_events_total 5\n"), "{text}");
        assert!(
            text.contains("\nchids_exec_enters_lost_total 4\n"),
            "{text}"
        );
        assert!(text
            .contains("chids_workload_state{workload=\"localhost/web:1\",state=\"detecting\"} 1"));
        assert!(text
            .contains("chids_workload_state{workload=\"localhost/web:1\",state=\"learning\"} 0"));
        assert!(text.contains("chids_spool_bytes{sink=\"nats\"} 512"));
        m.container_stopped(7);
        assert!(!m.render().contains("container_id=\"abababababab\""));
    }
}
