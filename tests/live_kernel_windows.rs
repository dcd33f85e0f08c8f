//! Live, exactness of the kernel-aggregated windows: one capture both
//! records a workload (a record per event, written as a LID-DS `.sc`) and
//! aggregates its windows in the kernel. Reading the recording back
//! offline must give, window by window, the same event counts, the same
//! anomaly vectors to the bit, and the same unseen syscalls and arguments.
//!
//! The workload runs several processes at once (interleaved threads, the
//! case where only per-thread edges are exact), uses syscalls and paths the
//! baseline has not seen (USN and UAN, arguments going to user space) and
//! paths it has (arguments the kernel decides alone), and spans many short
//! windows, so every window slot is reused.
//!
//! Needs root, kernel BTF, /bin/sh and coreutils.
#![cfg(feature = "live")]

use std::time::{Duration, Instant};

use chids_core::features::{read_recording, Settings, TrainingElements, WindowFeatures};
use chids_core::mode::Mode;
use chids_core::source::ReadOptions;
use chids_core::ssg::EdgeOrder;
use chids_live::capture::ExecGate;
use chids_live::cgroup::CommandCgroup;
use chids_live::format::write_sc_line;
use chids_live::{self as live, Capture, Formatter, KernelWindows};

const WORKLOAD: &str = r#"
work() {
  i=0
  while [ $i -lt 12 ]; do
    cat /etc/hostname /etc/passwd > /dev/null
    ls /usr/lib > /dev/null
    id > /dev/null
    sleep 0.03
    i=$((i+1))
  done
}
work & work & work &
wait
"#;

fn baseline() -> TrainingElements {
    let set = |names: &[&str]| names.iter().map(|s| s.to_string()).collect();
    TrainingElements {
        // Common calls of a dynamic binary's start and of the shell; the
        // rest (getdents64, socket, connect, ...) is unseen.
        seen_syscalls: set(&[
            "execve",
            "open",
            "stat",
            "clone",
            "close",
            "read",
            "write",
            "mmap",
            "mprotect",
            "munmap",
            "brk",
            "fstat",
            "arch_prctl",
            "rt_sigaction",
            "rt_sigprocmask",
            "wait4",
            "exit_group",
            "access",
            "pread64",
            "set_tid_address",
            "set_robust_list",
            "rseq",
            "prlimit64",
            "getrandom",
            "dup2",
            "fcntl",
        ]),
        // The loader's cache and libc are seen; /etc/passwd, the locale
        // files, ls's and id's own paths are not.
        seen_args: set(&[
            "/etc/ld.so.cache",
            "/lib/x86_64-linux-gnu/libc.so.",
            "/etc/hostname",
            "/usr/bin/cat",
            "sh",
            "cat",
        ]),
        max_freq: 500,
        ..TrainingElements::default()
    }
}

/// Runs the workload with both paths on; returns (kernel windows, .sc file).
fn run(
    settings: Settings,
    elements: &TrainingElements,
    dir: &std::path::Path,
) -> Vec<WindowFeatures> {
    let mut capture = Capture::open().expect("load the eBPF program");
    let mut command = CommandCgroup::create("kwin-eq").expect("create a cgroup");
    let cgroup = command.cgroup.clone();
    let mut kernel =
        KernelWindows::attach(&mut capture, &cgroup, settings, elements, true, true).unwrap();
    command
        .spawn(&["/bin/sh".into(), "-c".into(), WORKLOAD.into()])
        .expect("start the workload");

    let mut gate = ExecGate::new(true);
    let mut fmt = Formatter::new();
    let mut sc: Vec<u8> = Vec::new();
    let mut on_event = |raw: &live::RawEvent<'_>| {
        if gate.admit(raw) {
            write_sc_line(&mut sc, &fmt.format(raw), raw.uid);
        }
    };
    let mut windows = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        capture
            .poll(Duration::from_millis(50), &mut on_event)
            .unwrap();
        kernel.pump(&mut capture, &mut |w| windows.push(w)).unwrap();
        if command.try_wait().unwrap().is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "workload still running after 120 s"
        );
    }
    capture.drain(&mut on_event).unwrap();
    let late = kernel
        .finish(&mut capture, &mut |w| windows.push(w))
        .unwrap();
    // A late event is in no window: the comparison would be inexact.
    assert_eq!(late, 0, "events late for their window");
    let counters = capture.counters();
    assert_eq!(
        counters.dropped, 0,
        "per-event records lost: no exact reference"
    );
    assert_eq!(counters.agg_lost, 0, "aggregation records lost");
    std::fs::write(dir.join("run.sc"), &sc).unwrap();
    windows
}

/// How many unseen syscalls and (argument, syscall) pairs a window names
/// or counts, and the names themselves when all are listed (the first 32
/// in order of appearance otherwise, an order the two paths need not share).
fn unseen(w: &WindowFeatures) -> (u64, u64, Vec<String>, Vec<(String, String)>) {
    let calls_total = w.unseen_syscalls.len() as u64 + w.more_unseen_syscalls;
    let args_total = w.unseen_args.len() as u64 + w.more_unseen_args;
    let mut calls = Vec::new();
    if w.more_unseen_syscalls == 0 {
        calls = w.unseen_syscalls.clone();
        calls.sort();
    }
    let mut args = Vec::new();
    if w.more_unseen_args == 0 {
        args = w
            .unseen_args
            .iter()
            .map(|u| (u.arg.clone(), u.syscall.clone()))
            .collect();
        args.sort();
    }
    (calls_total, args_total, calls, args)
}

#[test]
#[ignore = "needs root and eBPF (run with --include-ignored)"]
fn kernel_windows_equal_the_recordings_windows() {
    let settings = Settings {
        mode: Mode::Modern,
        window_ns: 100_000_000,
        edges: EdgeOrder::Thread,
    };
    let elements = baseline();
    let dir = tempfile::tempdir().unwrap();
    let kernel = run(settings, &elements, dir.path());

    let source = chids_core::source::discover::open(&dir.path().join("run.sc")).unwrap();
    let offline = read_recording(
        source.as_ref(),
        settings,
        Some(&elements),
        true,
        &ReadOptions::default(),
    )
    .unwrap();
    // Runs of empty windows are one entry offline: windows with events are
    // compared by index; every other kernel window must be empty.
    let offline: Vec<WindowFeatures> = offline
        .features
        .into_iter()
        .filter(|w| w.events > 0)
        .collect();

    assert!(
        offline.len() >= 5,
        "only {} windows: workload too short",
        offline.len()
    );
    let events: usize = offline.iter().map(|w| w.events).sum();
    assert!(events > 2_000, "only {events} events");
    let by_index: std::collections::HashMap<u64, &WindowFeatures> =
        kernel.iter().map(|w| (w.index, w)).collect();
    for k in &kernel {
        if !offline.iter().any(|o| o.index == k.index) {
            assert_eq!(
                k.events, 0,
                "kernel window {} has events the recording lacks",
                k.index
            );
        }
    }
    for o in &offline {
        let k = by_index
            .get(&o.index)
            .unwrap_or_else(|| panic!("no kernel window {}", o.index));
        assert_eq!(
            (k.start_ns, k.events, k.vector),
            (o.start_ns, o.events, o.vector),
            "window {}",
            o.index
        );
        assert_eq!(
            unseen(k),
            unseen(o),
            "window {}: unseen syscalls and arguments",
            o.index
        );
    }
    // The workload exercised what the equality is about.
    let v: Vec<_> = offline.iter().filter_map(|w| w.vector).collect();
    assert!(v.iter().any(|v| v.usi > 0.0), "no unseen syscall");
    assert!(v.iter().any(|v| v.uai > 0.0), "no unseen argument");
}

/// Runs the chids binary; it must succeed unless `fail` is set.
fn chids(args: &[&str], fail: bool) -> (String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chids"))
        .args(args)
        .output()
        .expect("run chids");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.success(), !fail, "chids {args:?}: {stderr}");
    (String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
}

/// The defaults take the fast path: plain `chids baseline` trains
/// per-thread edges and plain `chids monitor` computes that bundle's
/// windows in the kernel. A stream-edge bundle (`--edges stream`) and a
/// compat one still monitor, from per-event records, and say why once;
/// `--windows kernel` refuses them with the same reason.
#[test]
#[ignore = "needs root and eBPF (run with --include-ignored)"]
fn plain_baseline_and_monitor_take_kernel_windows() {
    chids_live::capture::check_environment().expect("live capture environment");
    let training = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/training");
    let tmp = tempfile::tempdir().unwrap();
    let model = |name: &str, extra: &[&str]| {
        let dir = tmp.path().join(name);
        let mut args = vec!["baseline", "--td", training, "--od", dir.to_str().unwrap()];
        args.extend_from_slice(extra);
        chids(&args, false);
        dir.to_str().unwrap().to_string()
    };
    let thread = model("thread", &[]);
    let stream = model("stream", &["--edges", "stream"]);
    let compat = model("compat", &["--compat"]);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{thread}/baseline.json")).unwrap()).unwrap();
    assert_eq!(json["edges"], "thread");

    let monitor = |model: &str, extra: &[&str], fail: bool| {
        let mut args = vec!["monitor", "--model", model];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--", "/bin/sh", "-c", "cat /etc/hostname >/dev/null"]);
        chids(&args, fail).1
    };
    let fast = monitor(&thread, &[], false);
    assert!(fast.contains(", kernel windows"), "{fast}");
    assert!(!fast.contains("per-event windows"), "{fast}");

    let slow = monitor(&stream, &[], false);
    assert!(slow.contains("per-event windows"), "{slow}");
    assert_eq!(
        slow.matches("chids: per-event windows (slower): this bundle has stream edges")
            .count(),
        1,
        "{slow}"
    );
    assert!(!slow.contains(", kernel windows"), "{slow}");
    let compat_run = monitor(&compat, &[], false);
    assert!(
        compat_run.contains("chids: per-event windows (slower): a compat bundle"),
        "{compat_run}"
    );
    // Asked for, per-event windows are no fallback: nothing to explain.
    let asked = monitor(&thread, &["--windows", "event"], false);
    assert!(asked.contains("per-event windows"), "{asked}");
    assert!(!asked.contains("(slower)"), "{asked}");

    let refused = monitor(&stream, &["--windows", "kernel"], true);
    assert!(
        refused.contains("this bundle has stream edges"),
        "{refused}"
    );
}
