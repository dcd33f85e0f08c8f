//! Helpers of the outbox tests: a model preloaded for a workload (so the
//! agent detects at once, no learning phase), the agent's stored alerts,
//! metrics scrapes, a small tmpfs.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

const T0: u64 = 1_631_078_877_000_000_000;

/// A synthetic recording of a process that only sleeps and reads one fd:
/// nothing a busybox shell does looks like it, so every non-empty window
/// of a container watched with this model is an alert.
fn sleepy_recording(seconds: u64, seed: u64) -> String {
    let mut text = String::new();
    for i in 0..seconds * 20 {
        let t = T0 + i * 50_000_000 + seed;
        for (call, dir, args) in [
            ("nanosleep", '>', "rqtp=50000000"),
            ("nanosleep", '<', "res=0"),
            ("read", '>', "fd=3 size=8"),
            ("read", '<', "res=8"),
        ] {
            text += &format!("{t} 0 42 sleeper 42 {call} {dir} {args}\n");
        }
    }
    text
}

/// Trains that model once into `dir` (`chids baseline`, a 1 s window).
pub fn train_sleepy_model(dir: &Path) -> PathBuf {
    let td = dir.join("sleepy-train");
    std::fs::create_dir_all(&td).unwrap();
    for i in 0..2 {
        std::fs::write(td.join(format!("r{i}.sc")), sleepy_recording(30, i)).unwrap();
    }
    let model = dir.join("sleepy-model");
    let out = Command::new(env!("CARGO_BIN_EXE_chids"))
        .args(["baseline", "--td"])
        .arg(&td)
        .arg("--od")
        .arg(&model)
        .args(["--window", "1s", "--epochs", "3"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "baseline: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    model
}

/// Puts `model` into the agent's model store `models` as the bundle of
/// `workload`, as the agent itself stores what it trained.
pub fn preload_model(models: &Path, workload: &str, model: &Path) {
    let dest = models.join(chids_agent::workloads::folder_name(workload));
    std::fs::create_dir_all(&dest).unwrap();
    for f in std::fs::read_dir(model).unwrap().flatten() {
        std::fs::copy(f.path(), dest.join(f.file_name())).unwrap();
    }
    std::fs::write(
        dest.join("workload.json"),
        serde_json::json!({ "workload": workload }).to_string(),
    )
    .unwrap();
}

/// The alerts stored in the outbox (`chids agent alerts`), each parsed:
/// a line that is not JSON fails the test.
pub fn stored_alerts(state: &Path, undelivered: bool) -> Vec<Value> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chids"));
    cmd.args(["agent", "alerts", "--state-dir"]).arg(state);
    if undelivered {
        cmd.arg("--undelivered");
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "chids agent alerts: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

pub fn alert_ids(alerts: &[Value]) -> Vec<String> {
    alerts
        .iter()
        .map(|a| a["alert_id"].as_str().expect("alert_id").to_string())
        .collect()
}

/// Asserts the stream holds exactly the outbox's alerts, each once.
pub fn assert_stream_matches_outbox(on_nats: &[Value], stored: &[Value]) {
    let nats_ids = alert_ids(on_nats);
    let stored_ids = alert_ids(stored);
    let nats_set: HashSet<&String> = nats_ids.iter().collect();
    assert_eq!(nats_set.len(), nats_ids.len(), "duplicates in the stream");
    let stored_set: HashSet<&String> = stored_ids.iter().collect();
    let missing: Vec<_> = stored_set.difference(&nats_set).collect();
    let extra: Vec<_> = nats_set.difference(&stored_set).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "stream and outbox differ: {} stored, {} in the stream; missing from the stream {missing:?}, not in the outbox {extra:?}",
        stored_ids.len(),
        nats_ids.len()
    );
}

/// `GET /metrics`, or None when the server does not answer in time.
pub fn scrape(addr: &str) -> Option<String> {
    let mut c = std::net::TcpStream::connect(addr).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    c.write_all(b"GET /metrics HTTP/1.1\r\nHost: chids\r\n\r\n")
        .ok()?;
    let mut s = String::new();
    c.read_to_string(&mut s).ok()?;
    Some(s)
}

/// The value of one sample line (`name{labels}` exactly) in a scrape.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// A tmpfs of `size` mounted at `dir` (unmounted on drop).
pub struct Tmpfs {
    pub dir: PathBuf,
}

impl Tmpfs {
    pub fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let st = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .status()
            .unwrap();
        assert!(st.success(), "mount -t tmpfs at {}", dir.display());
        Tmpfs {
            dir: dir.to_path_buf(),
        }
    }

    /// Bytes still free.
    pub fn free(&self) -> u64 {
        let c = std::ffi::CString::new(self.dir.to_str().unwrap()).unwrap();
        // SAFETY: an all-zero statvfs is a valid value to be overwritten.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: a NUL-terminated path and a live out-pointer.
        assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut st) }, 0);
        st.f_bavail * st.f_frsize
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}
