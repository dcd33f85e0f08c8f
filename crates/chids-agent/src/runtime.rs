//! The container runtime is not the workload. Inside a container's cgroup
//! the runtime does work of its own: runc's (or crun's) init stages set up
//! the container and every exec session (`runc:[2:INIT]` joins the
//! namespaces, reads `/proc/self/fd`, `/etc/passwd`, ...), and conmon or a
//! shim may sit there too. That work is not what the workload does, so it
//! is counted and not fed to the workload's model. The program an exec
//! session runs is the workload's like any other process once it is
//! running; its start is reported as an exec record of its own.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use chids_live::capture::RawEvent;
use chids_live::syscalls;

use crate::host_file;

/// `cgroup.procs` is read this far at most (some 30,000 pids; only the
/// first 256 are looked at).
const MAX_PROCS_BYTES: u64 = 256 << 10;

/// Whether a task named `comm` (the kernel's 16-byte task name) is the
/// container runtime's own: runc's and crun's init stages (`runc:[0:PARENT]`,
/// `runc:[1:CHILD]`, `runc:[2:INIT]`, `crun` likewise), conmon, the
/// containerd shims.
pub(crate) fn is_runtime_task(comm: &[u8]) -> bool {
    comm.starts_with(b"runc:[")
        || comm.starts_with(b"crun:[")
        || comm == b"runc"
        || comm == b"crun"
        || comm == b"conmon"
        || comm.starts_with(b"containerd-shim")
}

/// Whether a task of the workload (not of the runtime) is in the cgroup at
/// `dir` or the folders below it, now: the container's program already
/// runs. Reads `cgroup.procs` and each task's `comm` (bounded: the first
/// 256 tasks of at most 64 folders); a task gone meanwhile is skipped, and
/// what cannot be read counts as not running (the container is then taken
/// as starting, as when found at once).
pub(crate) fn workload_running(dir: &Path) -> bool {
    let mut folders = vec![(dir.to_path_buf(), 0)];
    let (mut seen_folders, mut seen_tasks) = (0, 0);
    while let Some((folder, depth)) = folders.pop() {
        seen_folders += 1;
        if seen_folders > 64 {
            break;
        }
        // Bounded, and never a FIFO or link planted in the folder (see host_file).
        let procs =
            host_file::read_text(&folder.join("cgroup.procs"), MAX_PROCS_BYTES).unwrap_or_default();
        for pid in procs.lines().filter_map(|l| l.trim().parse::<u32>().ok()) {
            seen_tasks += 1;
            if seen_tasks > 256 {
                return false;
            }
            let Ok(comm) = host_file::read_bounded(Path::new(&format!("/proc/{pid}/comm")), 64)
            else {
                continue;
            };
            let comm = comm.strip_suffix(b"\n").unwrap_or(&comm);
            if !is_runtime_task(comm) {
                return true;
            }
        }
        if depth < 2 {
            if let Ok(entries) = std::fs::read_dir(&folder) {
                folders.extend(
                    entries
                        .flatten()
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                        .map(|e| (e.path(), depth + 1)),
                );
            }
        }
    }
    false
}

/// The program a runtime task starts (`execve` entered by it), if this
/// event is such a start: in a running container, an exec session.
pub(crate) fn exec_start(raw: &RawEvent<'_>) -> Option<String> {
    if raw.dir != chids_core::event::Direction::Enter {
        return None;
    }
    match syscalls::name(raw.nr) {
        Some("execve") | Some("execveat") => {}
        _ => return None,
    }
    let path = String::from_utf8_lossy(raw.path.unwrap_or_default()).into_owned();
    // The runtime re-executing itself (`runc init` from /proc/self/exe)
    // is its own setup, not a session's program.
    let own = path == "/proc/self/exe"
        || path.ends_with("/runc")
        || path.ends_with("/crun")
        || path.starts_with("/proc/self/fd/");
    (!own).then_some(path)
}

/// An exec session in a container (`podman exec`, `kubectl exec`, exec
/// probes), as its own kind of record.
#[derive(Clone, Debug, Serialize)]
pub struct ExecRecord {
    /// Always `exec` (anomaly alerts say `anomaly`).
    pub kind: &'static str,
    /// Unique per node (see [`crate::sink::outbox`]); NATS's `Nats-Msg-Id`.
    pub alert_id: String,
    /// On the events' clock, ns since the epoch.
    pub time_ns: u64,
    /// The program started (the `execve` path; arguments are not captured).
    pub command: String,
    pub uid: u32,
    #[serde(flatten)]
    pub who: crate::AlertContainer,
    /// Exec sessions of this container not reported before this one
    /// (past the rate limit).
    pub suppressed_before: u64,
}

/// At most [`ExecLimit::PER_MINUTE`] exec records per container a minute;
/// the rest are counted and the count goes with the next record.
#[derive(Debug)]
pub(crate) struct ExecLimit {
    period_start: Instant,
    in_period: u32,
    pub suppressed: u64,
}

impl Default for ExecLimit {
    fn default() -> ExecLimit {
        ExecLimit {
            period_start: Instant::now(),
            in_period: 0,
            suppressed: 0,
        }
    }
}

impl ExecLimit {
    pub(crate) const PER_MINUTE: u32 = 10;

    /// Whether one more record may go out now.
    pub(crate) fn admit(&mut self) -> bool {
        if self.period_start.elapsed() >= Duration::from_secs(60) {
            self.period_start = Instant::now();
            self.in_period = 0;
        }
        if self.in_period < Self::PER_MINUTE {
            self.in_period += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_tasks_by_name() {
        for comm in [
            &b"runc:[2:INIT]"[..],
            b"runc:[1:CHILD]",
            b"crun",
            b"conmon",
            b"containerd-shim",
        ] {
            assert!(is_runtime_task(comm), "{}", String::from_utf8_lossy(comm));
        }
        for comm in [&b"sh"[..], b"runcible", b"cat", b"nginx", b""] {
            assert!(!is_runtime_task(comm), "{}", String::from_utf8_lossy(comm));
        }
    }

    #[test]
    fn exec_records_are_rate_limited() {
        let mut l = ExecLimit::default();
        let admitted = (0..25).filter(|_| l.admit()).count();
        assert_eq!(admitted, ExecLimit::PER_MINUTE as usize);
        assert_eq!(l.suppressed, 25 - u64::from(ExecLimit::PER_MINUTE));
    }
}
