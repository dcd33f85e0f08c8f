//! Prometheus metrics of `chids monitor`, served as text by a tiny HTTP
//! server on a std `TcpListener` (one thread; scrapes are rare and small,
//! so a dependency would buy nothing).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::capture::Counters;
use super::cgroup::CgroupRef;
use super::LiveError;

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
pub struct Metrics {
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

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        Exposition::render(self)
    }
}

/// What the metrics server can serve: anything that renders the Prometheus
/// text exposition (`monitor`'s [`Metrics`], the agent's metrics).
pub trait Exposition: Send + 'static {
    fn render(&self) -> String;
}

impl Exposition for Metrics {
    fn render(&self) -> String {
        let mut s = String::new();
        let labels = |name: &str, c: &PerContainer| {
            format!(
                "container=\"{}\",cgroup=\"{}\"",
                escape(name),
                escape(&c.cgroup)
            )
        };
        let family = |s: &mut String,
                      metric: &str,
                      kind: &str,
                      help: &str,
                      f: &dyn Fn(&PerContainer) -> u64| {
            let _ = writeln!(s, "# HELP {metric} {help}\n# TYPE {metric} {kind}");
            for (name, c) in &self.containers {
                let _ = writeln!(s, "{metric}{{{}}} {}", labels(name, c), f(c));
            }
        };
        family(
            &mut s,
            "chids_events_total",
            "counter",
            "System call events captured (enter and exit).",
            &|c| c.events,
        );
        family(
            &mut s,
            "chids_windows_total",
            "counter",
            "Windows closed and scored, empty ones included.",
            &|c| c.windows,
        );
        family(
            &mut s,
            "chids_empty_windows_total",
            "counter",
            "Windows without events (no vector).",
            &|c| c.empty_windows,
        );
        family(
            &mut s,
            "chids_alerts_total",
            "counter",
            "Anomalous windows (error above threshold).",
            &|c| c.alerts,
        );
        family(
            &mut s,
            "chids_late_events_total",
            "counter",
            "Events dropped for their time (more than two windows late, before the first window, or absurdly far ahead).",
            &|c| c.late,
        );

        let _ = writeln!(
            s,
            "# HELP chids_window_error Reconstruction error of non-empty windows.\n# TYPE chids_window_error histogram"
        );
        for (name, c) in &self.containers {
            let l = labels(name, c);
            for (i, le) in ERROR_BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "chids_window_error_bucket{{{l},le=\"{le}\"}} {}",
                    c.buckets[i]
                );
            }
            let _ = writeln!(
                s,
                "chids_window_error_bucket{{{l},le=\"+Inf\"}} {}",
                c.error_count
            );
            let _ = writeln!(s, "chids_window_error_sum{{{l}}} {}", c.error_sum);
            let _ = writeln!(s, "chids_window_error_count{{{l}}} {}", c.error_count);
        }
        let _ = writeln!(
            s,
            "# HELP chids_threshold Alert threshold on the reconstruction error.\n# TYPE chids_threshold gauge\nchids_threshold {}",
            self.threshold
        );
        for (name, help, v) in kernel_counters(&self.counters) {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        }
        s
    }
}

/// The kernel side's loss counters as Prometheus counters (name, help,
/// value): `monitor` and the agent export the same set.
pub fn kernel_counters(c: &Counters) -> [(&'static str, &'static str, u64); 5] {
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

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The running metrics server; stops (and joins its thread) on drop.
pub struct Server {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves `metrics` on `addr` (any path answers with the metrics).
pub fn serve<M: Exposition>(addr: SocketAddr, metrics: Arc<Mutex<M>>) -> Result<Server, LiveError> {
    let listener =
        TcpListener::bind(addr).map_err(|e| LiveError::io(format!("--metrics {addr}"), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| LiveError::io("metrics address", e))?;
    // Non-blocking accept so the thread notices the stop flag.
    listener
        .set_nonblocking(true)
        .map_err(|e| LiveError::io("metrics listener", e))?;
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name("chids-metrics".into())
        .spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let _ = answer(conn, &metrics);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        })
        .map_err(|e| LiveError::io("start metrics thread", e))?;
    Ok(Server {
        addr,
        stop,
        thread: Some(thread),
    })
}

fn answer<M: Exposition>(mut conn: TcpStream, metrics: &Mutex<M>) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(2)))?;
    conn.set_write_timeout(Some(Duration::from_secs(2)))?;
    // Read the request head (we answer every request the same way).
    let mut buf = [0u8; 4096];
    let mut got = 0;
    while got < buf.len() {
        let n = conn.read(&mut buf[got..])?;
        if n == 0 {
            break;
        }
        got += n;
        if buf[..got].windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let body = metrics.lock().unwrap().render();
    write!(
        conn,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    conn.flush()
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

    #[test]
    fn serves_over_http() {
        let m = Arc::new(Mutex::new(Metrics::new(1.0)));
        let server = serve("127.0.0.1:0".parse().unwrap(), Arc::clone(&m)).unwrap();
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
