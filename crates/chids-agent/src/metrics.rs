//! Prometheus metrics of `chids agent`: per container (while it runs) and
//! per workload (for the agent's life), the agent's own cost, kernel
//! losses, the alert outbox and the sinks' delivery state. Written by the
//! same encoder and served by the same server as `monitor`'s
//! ([`chids_live::metrics`]).

use std::collections::BTreeMap;

use crate::identity::Identity;
use crate::sink::dispatch::OutboxFigures;
use crate::sink::SinkStats;
use chids_live::capture::Counters;
use chids_live::metrics::encoder::{Column, Encoder, Kind};
use chids_live::metrics::Exposition;

#[derive(Clone, Debug, Default)]
struct ContainerLine {
    labels: Vec<(&'static str, String)>,
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
    /// Learning lines not written: the writer thread fell behind.
    pub learn_dropped: u64,
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
pub(crate) struct AgentMetrics {
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
    /// Events of containers not yet identified that did not fit the bound
    /// of what is held for them (see `held.rs`).
    pub held_dropped: u64,
    pub cpu_seconds: f64,
    pub rss_bytes: u64,
    pub watched: usize,
    pub sinks: Vec<(&'static str, SinkStats)>,
    pub outbox: OutboxFigures,
}

pub(crate) const STATES: [&str; 3] = ["learning", "training", "detecting"];

impl AgentMetrics {
    pub(crate) fn container_started(&mut self, cgroup_id: u64, ident: &Identity, workload: &str) {
        let labels = vec![
            ("container", ident.display_name().to_string()),
            ("container_id", ident.short_id().to_string()),
            ("image", ident.image.clone().unwrap_or_default()),
            ("runtime", ident.runtime.clone()),
            ("workload", workload.to_string()),
        ];
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
        let mut e = Encoder::new();
        self.render_containers(&mut e);
        self.render_workloads(&mut e);
        self.render_agent(&mut e);
        self.render_alert_delivery(&mut e);
        e.finish()
    }
}

impl AgentMetrics {
    fn render_containers(&self, e: &mut Encoder) {
        let families: [Column<ContainerLine, u64>; 4] = [
            ("chids_container_events_total", "System call events captured per running container.", |c| c.events),
            ("chids_container_windows_total", "Windows scored per running container.", |c| c.windows),
            ("chids_container_alerts_total", "Alerts per running container.", |c| c.alerts),
            (
                "chids_container_late_events_total",
                "Events dropped per running container for their time (more than two windows late, before the first window, or absurdly far ahead).",
                |c| c.late,
            ),
        ];
        for (metric, help, value) in families {
            e.family(metric, Kind::Counter, help);
            for c in self.containers.values() {
                e.sample(metric, &c.labels, value(c));
            }
        }
    }

    fn render_workloads(&self, e: &mut Encoder) {
        let state = "chids_workload_state";
        e.family(
            state,
            Kind::Gauge,
            "1 for the state the workload is in (learning, training, detecting).",
        );
        for (k, w) in &self.workloads {
            for st in STATES {
                e.sample(
                    state,
                    &[("workload", k.as_str()), ("state", st)],
                    u64::from(w.state == st),
                );
            }
        }
        let gauges: [Column<WorkloadLine, f64>; 2] = [
            (
                "chids_workload_containers",
                "Running containers of the workload.",
                |w| w.containers as f64,
            ),
            (
                "chids_workload_learned_seconds",
                "Time the workload has been learning so far.",
                |w| (w.learned_seconds * 10.0).round() / 10.0,
            ),
        ];
        for (metric, help, value) in gauges {
            e.family(metric, Kind::Gauge, help);
            for (k, w) in &self.workloads {
                e.sample(metric, &[("workload", k.as_str())], value(w));
            }
        }
        let counters: [Column<WorkloadLine, u64>; 5] = [
            (
                "chids_workload_events_total",
                "Events of the workload's containers.",
                |w| w.events,
            ),
            (
                "chids_workload_windows_total",
                "Windows of the workload's containers scored.",
                |w| w.windows,
            ),
            (
                "chids_workload_alerts_total",
                "Alerts raised for the workload.",
                |w| w.alerts,
            ),
            (
                "chids_workload_late_events_total",
                "Events of the workload's containers dropped for their time.",
                |w| w.late,
            ),
            (
                "chids_workload_learning_dropped_total",
                "Learning events not recorded because the writer thread fell behind (a slow disk).",
                |w| w.learn_dropped,
            ),
        ];
        for (metric, help, value) in counters {
            e.family(metric, Kind::Counter, help);
            for (k, w) in &self.workloads {
                e.sample(metric, &[("workload", k.as_str())], value(w));
            }
        }
        let suppressed = "chids_alerts_suppressed_total";
        e.family(
            suppressed,
            Kind::Counter,
            "Alerts folded into a summary record because the workload was past its alert budget (--alert-rate).",
        );
        for (k, n) in &self.outbox.suppressed {
            e.sample(suppressed, &[("workload", k.as_str())], *n);
        }
    }

    fn render_agent(&self, e: &mut Encoder) {
        e.single(
            "chids_agent_cpu_seconds_total",
            Kind::Counter,
            "CPU time (user + system) of the agent process.",
            (self.cpu_seconds * 1000.0).round() / 1000.0,
        );
        e.single(
            "chids_agent_rss_bytes",
            Kind::Gauge,
            "Resident memory of the agent process.",
            self.rss_bytes,
        );
        e.single(
            "chids_agent_watched_containers",
            Kind::Gauge,
            "Container cgroups watched now.",
            self.watched,
        );
        e.single(
            "chids_late_events_total",
            Kind::Counter,
            "Events dropped for their time (more than two windows late, before the first window, or absurdly far ahead), all containers.",
            self.late,
        );
        e.single(
            "chids_identify_held_dropped_total",
            Kind::Counter,
            "Events of containers being identified that did not fit the bound of what is held for them (not detected on).",
            self.held_dropped,
        );
        chids_live::metrics::kernel_families(e, &self.counters);
    }

    fn render_alert_delivery(&self, e: &mut Encoder) {
        let o = &self.outbox;
        e.single(
            "chids_outbox_committed_total",
            Kind::Counter,
            "Alert records committed to the outbox.",
            o.committed,
        );
        e.single(
            "chids_outbox_pending_alerts",
            Kind::Gauge,
            "Alert records in the outbox not yet delivered.",
            o.pending,
        );
        e.single(
            "chids_outbox_pending_bytes",
            Kind::Gauge,
            "Bytes of the alert records not yet delivered.",
            o.pending_bytes,
        );
        let lost = "chids_alerts_lost_total";
        e.family(
            lost,
            Kind::Counter,
            "Alerts lost: not taken by the outbox writer, its queue full (queue_full); not stored (disk_full); or dropped undelivered past the outbox's size (outbox_full) or age (expired).",
        );
        for (reason, n) in &o.lost {
            e.sample(lost, &[("reason", *reason)], *n);
        }
        let sinks: [(Kind, Column<SinkStats, u64>); 2] = [
            (
                Kind::Counter,
                (
                    "chids_sink_delivered_total",
                    "Alerts delivered by each sink.",
                    |s| s.delivered,
                ),
            ),
            (
                Kind::Gauge,
                (
                    "chids_sink_connected",
                    "1 when the sink's destination is reachable.",
                    |s| u64::from(s.connected),
                ),
            ),
        ];
        for (kind, (metric, help, value)) in sinks {
            e.family(metric, kind, help);
            for (k, st) in &self.sinks {
                e.sample(metric, &[("sink", *k)], value(st));
            }
        }
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
                delivered: 512,
                ..SinkStats::default()
            },
        ));
        m.outbox.lost = vec![("disk_full", 3), ("expired", 0)];
        m.outbox.suppressed.insert("localhost/web:1".into(), 9);
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
        assert!(text.contains("chids_sink_delivered_total{sink=\"nats\"} 512"));
        assert!(text.contains("chids_alerts_lost_total{reason=\"disk_full\"} 3\n"));
        assert!(text.contains("chids_alerts_suppressed_total{workload=\"localhost/web:1\"} 9\n"));
        m.container_stopped(7);
        assert!(!m.render().contains("container_id=\"abababababab\""));
    }
}
