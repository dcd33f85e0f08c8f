//! Live, end to end: io_uring operations are events with their arguments.
//!
//! A small C program (built here with liburing) either works with plain
//! system calls (opens and reads /etc/hostname, connects to a local
//! service) or also, through io_uring only, opens and reads /etc/shadow
//! (IORING_OP_OPENAT, IORING_OP_READ) and connects to a port nobody
//! listens on (IORING_OP_CONNECT). Under `record` the io_uring path and
//! endpoint are in the recording (read back from its `.sc` lines); a
//! model trained on the plain runs, under `monitor`, raises alerts that
//! name both, with per-event windows and with kernel windows. (Both parts
//! run again after a pause, so that the io_uring work falls in a window
//! after the first: a stream's first window is never an alert.)
//!
//! Needs root, kernel BTF, a C compiler and liburing (liburing-dev).
#![cfg(feature = "live")]

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use chids_core::features::{read_recording, Settings, TrainingElements};
use chids_core::ssg::EdgeOrder;
use chids_detect::model::TrainConfig;
use chids_detect::train::{train_calibrated, TrainOptions};
use chids_live::{self as live, Alert, MonitorOptions, MonitorUpdate, RecordOptions, Target};

const PROGRAM: &str = r#"
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct sockaddr_in loopback(int port)
{
	struct sockaddr_in a;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons(port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

static int plain(int port)
{
	char buf[64];
	int fd = openat(AT_FDCWD, "/etc/hostname", O_RDONLY);
	if (fd < 0 || read(fd, buf, sizeof buf) < 0)
		return 2;
	close(fd);
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = loopback(port);
	if (connect(s, (struct sockaddr *)&a, sizeof a))
		return 3;
	close(s);
	return 0;
}

/* Submits the prepared request and returns its result. */
static int run(struct io_uring *ring)
{
	struct io_uring_cqe *cqe;
	if (io_uring_submit(ring) != 1 || io_uring_wait_cqe(ring, &cqe))
		return -1000;
	int res = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return res;
}

static int uring(int port)
{
	struct io_uring ring;
	char buf[64];
	if (io_uring_queue_init(8, &ring, 0))
		return 4;
	io_uring_prep_openat(io_uring_get_sqe(&ring), AT_FDCWD, "/etc/shadow", O_RDONLY, 0);
	int fd = run(&ring);
	if (fd < 0)
		return 5;
	io_uring_prep_read(io_uring_get_sqe(&ring), fd, buf, sizeof buf, 0);
	if (run(&ring) < 0)
		return 6;
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = loopback(port);
	io_uring_prep_connect(io_uring_get_sqe(&ring), s, (struct sockaddr *)&a, sizeof a);
	if (run(&ring) != -ECONNREFUSED)
		return 7;
	io_uring_queue_exit(&ring);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return 1;
	/* The io_uring part falls in the second window: a stream's first
	   window is not evidence (chids_detect::detect::window_is_evidence). */
	int rc = plain(atoi(argv[1]));
	usleep(1200 * 1000);
	if (!rc)
		rc = plain(atoi(argv[1]));
	if (rc || !atoi(argv[2]))
		return rc;
	return uring(atoi(argv[2]));
}
"#;

fn unmet_requirement() -> Option<String> {
    if let Err(e) = live::capture::check_environment() {
        return Some(e.to_string());
    }
    if !Path::new("/usr/include/liburing.h").exists() {
        return Some("liburing-dev not installed (scripts/install-test-deps.sh)".into());
    }
    None
}

/// The program, compiled into `dir`.
fn build(dir: &Path) -> PathBuf {
    let src = dir.join("iou.c");
    let bin = dir.join("iou");
    std::fs::write(&src, PROGRAM).unwrap();
    let out = Command::new("cc")
        .arg("-O2")
        .arg("-o")
        .arg(&bin)
        .arg(&src)
        .arg("-luring")
        .output()
        .expect("run cc (a C compiler is needed)");
    assert!(
        out.status.success(),
        "cc -luring failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    bin
}

/// A local service on a port below the ephemeral range (so the model keeps
/// the port) that accepts and closes connections.
fn service() -> u16 {
    for port in (20_000u16..30_000).step_by(89) {
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
            std::thread::spawn(move || {
                for mut c in l.incoming().flatten() {
                    let _ = c.write_all(b"hi");
                }
            });
            return port;
        }
    }
    panic!("no free port in 20000..30000");
}

/// A port in the same range that nothing listens on.
fn unused_port() -> u16 {
    (30_011u16..31_000)
        .step_by(7)
        .find(|&p| TcpListener::bind(("127.0.0.1", p)).is_ok())
        .expect("no unused port in 30011..31000")
}

fn target(bin: &Path, service: u16, unused: Option<u16>) -> Target {
    Target::Command(vec![
        bin.display().to_string(),
        service.to_string(),
        unused.unwrap_or(0).to_string(),
    ])
}

fn record(dir: &Path, name: &str, target: Target) -> PathBuf {
    let out = dir.join(format!("{name}.zip"));
    let s = live::record(
        RecordOptions {
            target,
            out: out.clone(),
            duration: Some(Duration::from_secs(60)),
            exploit_at: None,
            marker_file: None,
            force: false,
        },
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(s.command_status, Some(0), "workload failed: {s:?}");
    out
}

/// Per-thread edges, so the same bundle runs on both window paths.
fn settings() -> Settings {
    Settings {
        edges: EdgeOrder::Thread,
        ..Settings::default()
    }
}

fn unseen_args(rec: &Path, baseline: &TrainingElements) -> Vec<String> {
    let source = chids_core::source::discover::open(rec).unwrap();
    read_recording(
        source.as_ref(),
        settings(),
        Some(baseline),
        true,
        &Default::default(),
    )
    .unwrap()
    .features
    .iter()
    .flat_map(|w| w.unseen_args.iter().map(|a| a.arg.clone()))
    .collect()
}

fn monitor(model: &Path, target: Target, windows: live::WindowPath) -> Vec<Alert> {
    let mut alerts = Vec::new();
    let summary = live::monitor(
        MonitorOptions {
            target,
            model_dir: model.to_path_buf(),
            // The model's operating threshold.
            theta: None,
            threshold: None,
            alerts: None,
            alerts_follow_symlink: false,
            metrics: None,
            duration: Some(Duration::from_secs(60)),
            windows,
        },
        &mut |u| match u {
            MonitorUpdate::Alert(a) => alerts.push(a.clone()),
            MonitorUpdate::Window(w) => eprintln!(
                "{windows:?} window: {} events, error {:?}, anomalous {}",
                w.events, w.error, w.anomalous
            ),
            _ => {}
        },
    )
    .unwrap();
    assert_eq!(summary.command_status, Some(0), "{summary:?}");
    alerts
}

#[test]
#[ignore = "needs root + eBPF, cc and liburing-dev"]
fn io_uring_open_read_and_connect_are_seen_and_named() {
    if let Some(why) = unmet_requirement() {
        panic!("cannot run here: {why}");
    }
    let tmp = tempfile::tempdir().unwrap();
    let bin = build(tmp.path());
    let port = service();
    let unused = unused_port();
    let shadow = "/etc/shadow".to_string();
    let endpoint = format!("inet:127.0.0.1:{unused}");

    // A baseline from plain runs: opens and connects, no io_uring.
    let recs: Vec<PathBuf> = (0..3)
        .map(|i| record(tmp.path(), &format!("plain{i}"), target(&bin, port, None)))
        .collect();
    let sources: Vec<_> = recs
        .iter()
        .map(|p| chids_core::source::discover::open(p).unwrap())
        .collect();
    let trained = train_calibrated(
        &sources,
        None,
        &TrainOptions {
            settings: settings(),
            model: TrainConfig::default(),
            thetas: chids_detect::model::default_thetas(),
            read: Default::default(),
        },
        chids_detect::calibrate::DEFAULT_BUDGET_PER_HOUR,
        &|_| {},
    )
    .unwrap();
    let elements = &trained.bundle.elements;
    assert!(elements.seen_syscalls.contains("open"));
    assert!(elements.seen_syscalls.contains("connect"));
    assert!(!elements.seen_args.contains(&shadow));
    let model = tmp.path().join("model");
    trained.bundle.save(&model).unwrap();

    // `record`: the io_uring operations' path and endpoint are in the
    // recording, read back from its .sc lines as typed arguments.
    let attack = record(tmp.path(), "uring", target(&bin, port, Some(unused)));
    let named = unseen_args(&attack, elements);
    assert!(named.contains(&shadow), "recording: {named:?}");
    assert!(named.contains(&endpoint), "recording: {named:?}");

    // `monitor`, both window paths: alerts name them.
    for path in [live::WindowPath::Events, live::WindowPath::Kernel] {
        let alerts = monitor(&model, target(&bin, port, Some(unused)), path);
        let args: Vec<&str> = alerts
            .iter()
            .flat_map(|a| a.window.reasons.unseen_args.iter().map(|u| u.arg.as_str()))
            .collect();
        let syscalls: Vec<&str> = alerts
            .iter()
            .flat_map(|a| a.window.reasons.unseen_syscalls.iter().map(String::as_str))
            .collect();
        eprintln!("{path:?}: unseen args {args:?}, unseen syscalls {syscalls:?}");
        assert!(args.contains(&shadow.as_str()), "{path:?}: {args:?}");
        assert!(args.contains(&endpoint.as_str()), "{path:?}: {args:?}");
        assert!(
            syscalls.contains(&"io_uring_read"),
            "{path:?}: the io_uring read is an unseen node: {syscalls:?}"
        );
    }
}
