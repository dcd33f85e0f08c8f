//! Live: a task that leaves the watched cgroup is followed (and counted),
//! the `-- CMD` sandbox dies with chids, and the command's status is
//! reported instead of passed off as chids' own.
//!
//! Needs root and eBPF; runs the real `chids` binary.
#![cfg(feature = "live")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn chids() -> Command {
    Command::new(env!("CARGO_BIN_EXE_chids"))
}

fn sc_text(zip_path: &Path) -> String {
    use std::io::Read;
    let mut z = zip::ZipArchive::new(std::fs::File::open(zip_path).unwrap()).unwrap();
    let name = (0..z.len())
        .map(|i| z.by_index(i).unwrap().name().to_string())
        .find(|n| n.ends_with(".sc"))
        .expect("a .sc entry");
    let mut sc = String::new();
    z.by_name(&name).unwrap().read_to_string(&mut sc).unwrap();
    sc
}

fn wait_until(deadline: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    ok()
}

#[test]
#[ignore = "needs root and eBPF (run with --include-ignored)"]
fn a_task_that_leaves_its_cgroup_is_followed() {
    chids_live::capture::check_environment().expect("live capture environment");
    let root = chids_live::cgroup::cgroup2_root().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("escape.zip");
    // Try to join the root cgroup (and a sibling's), then do something.
    let script = format!(
        "echo $$ > {root}/cgroup.procs; echo $$ > {root}/chids/cgroup.procs; \
         exec cat /etc/hostname",
        root = root.display()
    );
    let run = chids()
        .args(["record", "--out"])
        .arg(&out)
        .args(["--duration", "30s", "--", "sh", "-c", &script])
        .output()
        .unwrap();
    assert!(run.status.success(), "record failed: {run:?}");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("moved out of the watched cgroup; they were followed"),
        "the move is reported: {stderr}"
    );
    let sc = sc_text(&out);
    assert!(
        sc.contains("name=/etc/hostname"),
        "events after the escape attempt are still captured:\n{}",
        sc.lines().rev().take(20).collect::<Vec<_>>().join("\n")
    );
}

#[test]
#[ignore = "needs root and eBPF (run with --include-ignored)"]
fn the_sandbox_dies_with_chids_and_is_swept() {
    chids_live::capture::check_environment().expect("live capture environment");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("killed.zip");
    let pidfile = tmp.path().join("pid");
    let script = format!("echo $$ > {}; exec sleep 1000", pidfile.display());
    let mut child = chids()
        .args(["record", "--out"])
        .arg(&out)
        .args(["--", "sh", "-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The sandboxed sleep's pid as the host sees it: find the `sleep 1000`
    // whose cgroup is chids' record cgroup of this run.
    let chids_pid = child.id();
    // `<name>-<serial in that process>-<pid>`: its first and only sandbox.
    let cgroup_name = format!("record-sh-0-{chids_pid}");
    let mut sleeper: Option<PathBuf> = None;
    let found = wait_until(Duration::from_secs(20), || {
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let cg = std::fs::read_to_string(e.path().join("cgroup")).unwrap_or_default();
            let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
            if comm.trim() == "sleep" && cg.contains(&cgroup_name) {
                sleeper = Some(e.path());
                return true;
            }
        }
        false
    });
    assert!(found, "the sandboxed sleep started");
    child.kill().unwrap(); // SIGKILL: chids cannot clean up
    child.wait().unwrap();
    let sleeper = sleeper.unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || !sleeper.exists()),
        "the sandboxed command died with chids"
    );
    // The next run sweeps the dead run's cgroup.
    let stale = chids_live::cgroup::cgroup2_root()
        .unwrap()
        .join("chids")
        .join(&cgroup_name);
    let st = chids()
        .args(["record", "--out"])
        .arg(tmp.path().join("next.zip"))
        .args(["--", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    assert!(!stale.exists(), "{} was swept", stale.display());
}

#[test]
#[ignore = "needs root and eBPF (run with --include-ignored)"]
fn exit_codes_are_chids_own() {
    chids_live::capture::check_environment().expect("live capture environment");
    let tmp = tempfile::tempdir().unwrap();
    // Stopped at --duration: a good recording, exit 0 (not 137).
    let out = chids()
        .args(["record", "--out"])
        .arg(tmp.path().join("d.zip"))
        .args(["--duration", "1s", "--", "sleep", "100"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("still running at --duration"));
    // A command failing with 101 is reported, not passed off as a panic.
    let out = chids()
        .args(["record", "--out"])
        .arg(tmp.path().join("f.zip"))
        .args(["--", "sh", "-c", "exit 101"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("exited with status 101"));
    assert!(tmp.path().join("f.zip").exists());
}
