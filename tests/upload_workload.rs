//! An upload-style server in modern mode: every upload goes through a temp
//! file with a random name (`mkstemp` in /tmp) and every login writes a
//! session file named by a random hex token. Trained on such normal
//! recordings (and calibrated on others), the model raises no alarm on new
//! normal uploads, whose names it has never seen, yet still flags a file
//! dropped through the upload folder and then run from there, naming the
//! concrete path.
//!
//! The recordings are `sysdig -r` text the test writes: a server loop plus
//! uploads, logins and a periodic job (`gzip` run each recording, so that
//! `execve` itself is a normal call and only its argument can be new).

use std::path::Path;
use std::process::{Command, Output};

fn chids(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chids"))
        .args(args)
        .output()
        .expect("run chids")
}

/// Deterministic pseudo-random names (the test must not depend on luck).
struct Names(u64);

impl Names {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// `mkstemp`'s alphabet: lower case, digits, underscore.
    fn mkstemp(&mut self) -> String {
        const A: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789_";
        (0..8)
            .map(|_| A[(self.next() % A.len() as u64) as usize] as char)
            .collect()
    }

    fn hex(&mut self) -> String {
        format!("{:016x}{:08x}", self.next(), self.next() as u32)
    }
}

struct Recording {
    lines: Vec<String>,
}

impl Recording {
    fn new() -> Self {
        Recording { lines: Vec::new() }
    }

    fn event(&mut self, ms: u64, proc_: &str, tid: u32, dir: char, rest: &str) {
        let t = 10 * 3600 * 1_000_000_000 + ms * 1_000_000 + self.lines.len() as u64;
        let (sec, ns) = (t / 1_000_000_000, t % 1_000_000_000);
        let n = self.lines.len() + 1;
        self.lines.push(format!(
            "{n} {:02}:{:02}:{:02}.{ns:09} 0 {proc_} ({tid}) {dir} {rest}",
            sec / 3600,
            sec / 60 % 60,
            sec % 60
        ));
    }

    fn call(&mut self, ms: u64, proc_: &str, tid: u32, call: &str, exit: &str) {
        self.event(ms, proc_, tid, '>', call);
        self.event(ms, proc_, tid, '<', &format!("{call} {exit}"));
    }

    fn open(&mut self, ms: u64, proc_: &str, tid: u32, path: &str) {
        self.call(
            ms,
            proc_,
            tid,
            "openat",
            &format!("fd=7(<f>{path}) dirfd=-100(AT_FDCWD) name={path} flags=4166(O_RDWR|O_CREAT|O_EXCL) mode=0600"),
        );
    }

    fn write(&self, path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, self.lines.join("\n") + "\n").unwrap();
    }
}

/// A normal recording of `seconds`: the server loop, an upload every
/// ~1.3 s, a login every ~2.1 s, the periodic job once.
fn normal(names: &mut Names, seconds: u64) -> Recording {
    recording(names, seconds, false)
}

/// The file the attacker uploads, then runs.
const DROPPED: &str = "/tmp/upload-x9q2kfz0";

/// [`normal`], and with `attack` at 4.5 s an upload's temp file is made
/// executable and run from /tmp by a shell.
fn recording(names: &mut Names, seconds: u64, attack: bool) -> Recording {
    let mut r = Recording::new();
    let loop_calls = ["epoll_wait", "accept4", "read", "write", "close", "futex"];
    for ms in (0..seconds * 1000).step_by(6) {
        let call = loop_calls[(ms / 6 % loop_calls.len() as u64) as usize];
        r.call(ms, "python3", 42, call, "res=0");
        if ms % 1300 == 600 {
            let tmp = format!("/tmp/upload-{}", names.mkstemp());
            r.open(ms, "python3", 42, &tmp);
            r.call(ms, "python3", 42, "write", "res=65536");
            r.call(ms, "python3", 42, "close", "res=0");
            r.call(
                ms,
                "python3",
                42,
                "newfstatat",
                &format!("res=0 dirfd=-100(AT_FDCWD) path={tmp} flags=0"),
            );
            r.call(ms, "python3", 42, "rename", "res=0");
        }
        if ms % 2100 == 900 {
            let sess = format!("/tmp/sess_{}", names.hex());
            r.open(ms, "python3", 42, &sess);
            r.call(ms, "python3", 42, "write", "res=10");
            r.call(ms, "python3", 42, "close", "res=0");
        }
        if ms == 3000 {
            // The periodic job: a program that is always run.
            r.call(ms, "sh", 50, "clone", "res=51 exe=/bin/sh");
            r.call(
                ms,
                "gzip",
                51,
                "execve",
                "res=0 exe=/usr/bin/gzip filename=/usr/bin/gzip",
            );
            r.open(ms, "gzip", 51, "/var/log/app.log");
        }
        if attack && ms == 4500 {
            r.open(ms, "python3", 42, DROPPED);
            r.call(ms, "python3", 42, "write", "res=65536");
            r.call(ms, "python3", 42, "close", "res=0");
            r.call(ms, "sh", 60, "clone", "res=61 exe=/bin/sh");
            r.call(
                ms,
                "upload-x9q2kfz0",
                61,
                "execve",
                &format!("res=0 exe={DROPPED} filename={DROPPED}"),
            );
            for _ in 0..20 {
                r.call(ms, "upload-x9q2kfz0", 61, "read", "res=0");
            }
        }
    }
    r
}

#[test]
fn uploads_do_not_alarm_a_dropped_executable_does() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = |s: &str| tmp.path().join(s);
    let s = |p: &Path| p.display().to_string();
    let mut names = Names(0x9e37_79b9_7f4a_7c15);
    for i in 0..4 {
        normal(&mut names, 8).write(&dir(&format!("train/t{i}.txt")));
    }
    for i in 0..3 {
        normal(&mut names, 8).write(&dir(&format!("val/v{i}.txt")));
    }
    for i in 0..4 {
        normal(&mut names, 8).write(&dir(&format!("normal/n{i}.txt")));
    }
    recording(&mut names, 8, true).write(&dir("attack/a0.txt"));

    let o = chids(&[
        "baseline",
        "--training",
        &s(&dir("train")),
        "--validation",
        &s(&dir("val")),
        "--out",
        &s(&dir("model")),
        "--epochs",
        "20",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir("model/baseline.json")).unwrap()).unwrap();
    // The upload folder became a pattern, with its evidence; the one-off
    // names themselves are not in the bundle.
    let patterns = meta["patterns"].as_array().expect("patterns");
    let up = patterns
        .iter()
        .find(|p| p["pattern"] == "/tmp/*")
        .unwrap_or_else(|| panic!("no /tmp/* pattern: {patterns:?}"));
    assert!(up["distinct_names"].as_u64().unwrap() >= 20, "{up}");
    assert_eq!(up["recordings"], 4);
    let seen: Vec<&str> = meta["seen_args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        !seen.iter().any(|a| a.starts_with("/tmp/upload-")),
        "{seen:?}"
    );
    assert_eq!(meta["calibration"]["source"], "validation");

    // New normal uploads, every name new: no alarm at the operating point.
    let o = chids(&[
        "evaluate",
        "--model",
        &s(&dir("model")),
        "--normal",
        &s(&dir("normal")),
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let op = &v["operating_point"];
    assert_eq!(op["normals"], 4, "{v}");
    assert_eq!(op["false_alarms"], 0, "{v}");
    assert_eq!(op["false_alarm_windows"], 0, "{v}");

    // The dropped executable: flagged.
    let o = chids(&[
        "evaluate",
        "--model",
        &s(&dir("model")),
        "--attack",
        &s(&dir("attack")),
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let vectors = chids(&["vectors", "--model", &s(&dir("model")), &s(&dir("attack"))]);
    assert_eq!(
        v["operating_point"]["detected"],
        1,
        "{v}\n{}",
        String::from_utf8_lossy(&vectors.stdout)
    );

    // ... by its argument alone (execve is a normal call here), and the
    // explanation names the concrete path, not the pattern.
    let bundle = chids_detect::model::Bundle::load(&dir("model")).unwrap();
    let src = chids_core::source::discover::open(&dir("attack/a0.txt")).unwrap();
    let scored =
        chids_detect::scored::score_one(src.as_ref(), &bundle, &Default::default(), true).unwrap();
    let threshold = bundle.operating_threshold();
    let alarms: Vec<_> = scored
        .windows
        .iter()
        .zip(scored.evidence_errors())
        .filter(|(_, e)| e.is_some_and(|e| e > threshold))
        .map(|(w, _)| w)
        .collect();
    assert!(!alarms.is_empty());
    for w in &alarms {
        assert!(w.unseen_syscalls.is_empty(), "{w:?}");
        assert!(
            w.unseen_args
                .iter()
                .any(|u| u.arg == "/tmp/upload-xqkfz" && u.syscall == "execve"),
            "{w:?}"
        );
    }
}
