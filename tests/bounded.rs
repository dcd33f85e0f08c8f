//! Hostile files against the command line: memory stays bounded, caps are
//! clear errors, losses are counted and warned (issue 9 item 2).
//!
//! Peak memory is the child's own `ru_maxrss`, read with `wait4` on its
//! pid, so other tests running at the same time do not blur it.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A finished run of the CLI: exit status, output, and peak RSS in MiB.
struct Run {
    success: bool,
    stdout: String,
    stderr: String,
    max_rss_mib: u64,
}

fn chids_measured(dir: &Path, args: &[&str]) -> Run {
    let out = dir.join("stdout");
    let err = dir.join("stderr");
    let child = Command::new(env!("CARGO_BIN_EXE_chids"))
        .args(args)
        .stdout(Stdio::from(File::create(&out).unwrap()))
        .stderr(Stdio::from(File::create(&err).unwrap()))
        .spawn()
        .expect("run chids");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value to be overwritten.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our own child, not yet waited for; both out-pointers
    // point to live locals.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4: {}", std::io::Error::last_os_error());
    // The child is reaped: `child` must not be waited for again.
    std::mem::forget(child);
    Run {
        success: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        stdout: std::fs::read_to_string(out).unwrap(),
        stderr: std::fs::read_to_string(err).unwrap(),
        // ru_maxrss is in KiB on Linux.
        max_rss_mib: usage.ru_maxrss as u64 / 1024,
    }
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

const T0: u64 = 1_631_078_877_000_000_000;
const MS: u64 = 1_000_000;

/// One LID-DS 2021 `.sc` line.
fn sc_line(ts_ns: u64, syscall: &str, dir: char, args: &str) -> String {
    format!("{ts_ns} 0 42 nginx 42 {syscall} {dir} {args}\n")
}

/// A steady workload: a short loop of calls every 0.3 ms for `ms` ms.
fn steady(ms: u64, seed: u64) -> String {
    let calls = ["read", "write", "epoll_wait", "close", "futex"];
    let mut text = String::new();
    for i in 0..ms * 10 / 3 {
        let t = T0 + i * 300_000 + seed;
        let call = calls[((i + seed) % 5) as usize];
        text += &sc_line(t, call, '>', "fd=3");
        text += &sc_line(t + 1_000, call, '<', "res=0");
        if i % 7 == 0 {
            text += &sc_line(
                t + 2_000,
                "open",
                '<',
                "fd=5 name=/var/www/index.html flags=1",
            );
        }
    }
    text
}

/// A lab: a 1 ms model trained on steady recordings, and folders to score.
struct Lab {
    dir: tempfile::TempDir,
}

impl Lab {
    fn new() -> Lab {
        let lab = Lab {
            dir: tempfile::tempdir().unwrap(),
        };
        for d in ["train", "normal", "attack"] {
            std::fs::create_dir(lab.path(d)).unwrap();
        }
        for i in 0..2 {
            std::fs::write(lab.path(&format!("train/r{i}.sc")), steady(400, i)).unwrap();
        }
        std::fs::write(lab.path("normal/n0.sc"), steady(300, 7)).unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_chids"))
            .args(["baseline", "--td", &s(&lab.path("train"))])
            .args(["--od", &s(&lab.path("model")), "--window", "1ms"])
            .args(["--epochs", "2"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        lab
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn evaluate(&self) -> Run {
        chids_measured(
            self.dir.path(),
            &[
                "evaluate",
                "--model",
                &s(&self.path("model")),
                "--ns",
                &s(&self.path("normal")),
                "--ms",
                &s(&self.path("attack")),
                "--json",
            ],
        )
    }
}

/// `jumps` events, each 2^20 windows (1 ms) after the one before: the
/// largest jump a recording may make, repeated.
fn jumpy(jumps: u64) -> String {
    (0..jumps)
        .map(|i| sc_line(T0 + i * (1 << 20) * MS, "read", '<', "res=0"))
        .collect()
}

#[test]
fn a_tiny_file_of_huge_time_jumps_takes_little_memory() {
    let lab = Lab::new();
    // 16 lines spanning 15.7 million windows of 1 ms: before runs of empty
    // windows were one entry this took 2.2 GB.
    let text = jumpy(16);
    assert!(text.len() < 1_000);
    std::fs::write(lab.path("attack/jumpy.sc"), text).unwrap();
    let run = lab.evaluate();
    assert!(run.success, "{}", run.stderr);
    assert!(!run.stderr.contains("dropped"), "{}", run.stderr);
    assert!(
        run.max_rss_mib < 200,
        "peak RSS {} MiB for a {}-byte file",
        run.max_rss_mib,
        jumpy(16).len()
    );
}

#[test]
fn a_recording_past_the_window_cap_is_an_error_naming_it() {
    let lab = Lab::new();
    // 40 jumps of 2^20 windows: past the 2^24-window cap.
    std::fs::write(lab.path("attack/endless.sc"), jumpy(40)).unwrap();
    let run = lab.evaluate();
    assert!(!run.success);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert!(run.stderr.contains("endless.sc"), "{}", run.stderr);
    assert!(
        run.stderr.contains("spans more than 16777216 windows"),
        "{}",
        run.stderr
    );
    assert!(run.max_rss_mib < 200, "peak RSS {} MiB", run.max_rss_mib);
}

#[test]
fn shuffled_events_are_counted_and_warned() {
    let lab = Lab::new();
    // 5,000 events 0.1 ms apart (500 windows of 1 ms), in a fixed shuffle.
    let mut order: Vec<u64> = (0..5_000).collect();
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for i in (1..order.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        order.swap(i, (x % (i as u64 + 1)) as usize);
    }
    let text: String = order
        .iter()
        .map(|&i| sc_line(T0 + i * 100_000, "read", '<', "res=0"))
        .collect();
    std::fs::write(lab.path("attack/shuffled.sc"), text).unwrap();
    let run = lab.evaluate();
    assert!(run.success, "{}", run.stderr);
    let warning = run
        .stderr
        .lines()
        .find(|l| l.contains("shuffled.sc") && l.contains("out of time order"))
        .unwrap_or_else(|| panic!("no warning: {}", run.stderr));
    // Most events land behind the reorder horizon; the count says how many.
    let dropped: u64 = warning
        .split("dropped ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(dropped > 4_000, "{warning}");
    let json: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(
        json["out_of_order_events"].as_u64(),
        Some(dropped),
        "{json}"
    );
}

#[test]
fn windows_under_a_millisecond_are_refused() {
    let lab = Lab::new();
    let o = Command::new(env!("CARGO_BIN_EXE_chids"))
        .args(["baseline", "--td", &s(&lab.path("train"))])
        .args(["--od", &s(&lab.path("m")), "--window", "1us"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--window") && err.contains("1ms"), "{err}");
    assert!(!lab.path("m").exists());
}

#[test]
fn bundles_with_an_absurd_window_are_refused() {
    let lab = Lab::new();
    let meta_path = lab.path("model/baseline.json");
    let meta = std::fs::read_to_string(&meta_path).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&meta).unwrap();
    for bad in [1u64, u64::MAX / 2] {
        v["window_ns"] = bad.into();
        std::fs::write(&meta_path, serde_json::to_string(&v).unwrap()).unwrap();
        let run = lab.evaluate();
        assert!(!run.success);
        assert!(
            run.stderr.contains("baseline.json") && run.stderr.contains("window"),
            "{}",
            run.stderr
        );
    }
}
