//! Prometheus metrics of `chids monitor`, written by the one [`encoder`]
//! (the agent's too) and served by the [`server`].
//!
//! What the endpoint reveals: container names and cgroup paths (the
//! agent adds container ids, images, runtimes and workload names),
//! event, window and alert counts, the alert threshold, the agent's own
//! CPU and memory, and the alert outbox's state. Bind it to loopback or
//! the pod address, not to every interface.

pub mod encoder;
pub mod server;

use std::collections::BTreeMap;

use crate::capture::Counters;
use crate::cgroup::CgroupRef;
use encoder::{Column, Encoder, Kind};
pub use server::{serve, Server};

/// Upper bounds of the reconstruction-error histogram. Normal windows sit
/// in the low decades; USI and UAI are unbounded, so attack windows can
/// score far above 1.
const ERROR_BUCKETS: &[f64] = &[
    1e-6, 1e-5, 1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 10.0, 100.0,
];

#[derive(Clone, Debug, Default)]
struct PerContainer {
    cgroup: String,
    events: u64,
    windows: u64,
    empty_windows: u64,
    alerts: u64,
    late: u64,
    buckets: Vec<u64>,
    error_sum: f64,
    error_count: u64,
}

/// Everything `/metrics` reports.
#[derive(Clone, Debug, Default)]
pub(crate) struct Metrics {
    pub counters: Counters,
    threshold: f64,
    containers: BTreeMap<String, PerContainer>,
}

impl Metrics {
    pub fn new(threshold: f64) -> Metrics {
        Metrics {
            threshold,
            ..Metrics::default()
        }
    }

    fn entry(&mut self, cg: &CgroupRef) -> &mut PerContainer {
        self.containers
            .entry(cg.name.clone())
            .or_insert_with(|| PerContainer {
                cgroup: cg.path.display().to_string(),
                buckets: vec![0; ERROR_BUCKETS.len()],
                ..PerContainer::default()
            })
    }

    pub fn events(&mut self, cg: &CgroupRef, n: u64) {
        self.entry(cg).events += n;
    }

    /// Events of the container the windower dropped for their time, so far.
    pub fn late(&mut self, cg: &CgroupRef, n: u64) {
        self.entry(cg).late = n;
    }

    /// `count` windows closed with this error (`count` > 1: a run of empty ones).
    pub fn window(&mut self, cg: &CgroupRef, error: Option<f64>, anomalous: bool, count: u64) {
        let c = self.entry(cg);
        c.windows += count;
        match error {
            None => c.empty_windows += count,
            Some(e) => {
                for (i, &le) in ERROR_BUCKETS.iter().enumerate() {
                    if e <= le {
                        c.buckets[i] += 1;
                    }
                }
                c.error_sum += e;
                c.error_count += 1;
            }
        }
        if anomalous {
            c.alerts += 1;
        }
    }
}

/// What the metrics server can serve: anything that renders the Prometheus
/// text exposition (`monitor`'s [`Metrics`], the agent's metrics).
pub trait Exposition: Send + 'static {
    fn render(&self) -> String;
}

impl Exposition for Metrics {
    fn render(&self) -> String {
        let mut e = Encoder::new();
        let labels = |name: &str, c: &PerContainer| {
            [
                ("container", name.to_string()),
                ("cgroup", c.cgroup.clone()),
            ]
        };
        let families: [Column<PerContainer, u64>; 5] = [
            ("chids_events_total", "System call events captured (enter and exit).", |c| c.events),
            ("chids_windows_total", "Windows closed and scored, empty ones included.", |c| c.windows),
            ("chids_empty_windows_total", "Windows without events (no vector).", |c| c.empty_windows),
            ("chids_alerts_total", "Anomalous windows (error above threshold).", |c| c.alerts),
            (
                "chids_late_events_total",
                "Events dropped for their time (more than two windows late, before the first window, or absurdly far ahead).",
                |c| c.late,
            ),
        ];
        for (metric, help, value) in families {
            e.family(metric, Kind::Counter, help);
            for (name, c) in &self.containers {
                e.sample(metric, &labels(name, c), value(c));
            }
        }
        let h = "chids_window_error";
        e.family(
            h,
            Kind::Histogram,
            "Reconstruction error of non-empty windows.",
        );
        for (name, c) in &self.containers {
            let [l0, l1] = labels(name, c);
            for (i, le) in ERROR_BUCKETS.iter().enumerate() {
                let with_le = [l0.clone(), l1.clone(), ("le", le.to_string())];
                e.sample("chids_window_error_bucket", &with_le, c.buckets[i]);
            }
            let inf = [l0.clone(), l1.clone(), ("le", "+Inf".to_string())];
            e.sample("chids_window_error_bucket", &inf, c.error_count);
            e.sample(
                "chids_window_error_sum",
                &[l0.clone(), l1.clone()],
                c.error_sum,
            );
            e.sample("chids_window_error_count", &[l0, l1], c.error_count);
        }
        e.single(
            "chids_threshold",
            Kind::Gauge,
            "Alert threshold on the reconstruction error.",
            self.threshold,
        );
        kernel_families(&mut e, &self.counters);
        e.finish()
    }
}

/// The kernel side's loss counters as counter families: `monitor` and the
/// agent export the same set.
pub fn kernel_families(e: &mut Encoder, c: &Counters) {
    for (name, help, v) in kernel_counters(c) {
        e.single(name, Kind::Counter, help, v);
    }
}

/// The kernel side's loss counters (name, help, value).
fn kernel_counters(c: &Counters) -> [(&'static str, &'static str, u64); 5] {
    [
        (
            "chids_dropped_events_total",
            "Events lost in the kernel (ring buffer full).",
            c.dropped,
        ),
        (
            "chids_path_read_faults_total",
            "Path arguments that could not be read.",
            c.path_faults,
        ),
        (
            "chids_exec_enters_lost_total",
            "Execs whose enter event was not seen (they entered before the capture).",
            c.exec_unmatched,
        ),
        (
            "chids_undecodable_records_total",
            "Ring-buffer records that could not be decoded.",
            c.undecodable,
        ),
        (
            "chids_migrated_tasks_total",
            "Watched tasks moved out of every watched cgroup (followed).",
            c.migrated,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_per_container_families() {
        let cg = CgroupRef {
            path: "/sys/fs/cgroup/x".into(),
            id: 7,
            level: 1,
            name: "web\"1".into(),
        };
        let mut m = Metrics::new(0.01);
        m.events(&cg, 42);
        m.window(&cg, Some(0.002), false, 1);
        m.window(&cg, Some(0.5), true, 1);
        m.window(&cg, None, false, 3);
        m.late(&cg, 2);
        m.counters.dropped = 3;
        let text = m.render();
        assert!(text
            .contains("chids_events_total{container=\"web\\\"1\",cgroup=\"/sys/fs/cgroup/x\"} 42"));
        assert!(text
            .contains("chids_windows_total{container=\"web\\\"1\",cgroup=\"/sys/fs/cgroup/x\"} 5"));
        assert!(text
            .contains("chids_alerts_total{container=\"web\\\"1\",cgroup=\"/sys/fs/cgroup/x\"} 1"));
        assert!(text.contains(
            "chids_late_events_total{container=\"web\\\"1\",cgroup=\"/sys/fs/cgroup/x\"} 2"
        ));
        assert!(text.contains(",le=\"0.003\"} 1\n"));
        assert!(text.contains(",le=\"+Inf\"} 2\n"));
        assert!(text.contains("chids_dropped_events_total 3\n"));
    }

    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::sync::{Arc, Mutex};

    #[test]
    fn serves_over_http() {
        let m = Arc::new(Mutex::new(Metrics::new(1.0)));
        let server = serve("127.0.0.1:0".parse().unwrap(), Arc::clone(&m)).unwrap();
        // A client that sends nothing does not hold up the next one.
        let _idle = TcpStream::connect(server.addr).unwrap();
        let mut c = TcpStream::connect(server.addr).unwrap();
        c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut resp = String::new();
        c.read_to_string(&mut resp).unwrap();
        assert!(resp.starts_with("HTTP/1.1 200 OK"));
        assert!(resp.contains("chids_threshold 1\n"));
        drop(server);
    }
}
