//! Live capture with eBPF (cargo feature `live`).
//!
//! ```text
//! kernel: raw_syscalls/sys_exit (+ exec, task exit) ─► cgroup filter ─► ring buffer
//! user:   Capture::poll ─► RawEvent ─► Formatter (sysdig-style info) ─► Event
//!         record: .sc lines streamed to a temp file, zipped with a .json at the end
//! ```
//!
//! `record`, `monitor` and the agent are consumers of one [`Session`]
//! (capture, target, clock, stop token); see `session.rs`.
//!
//! Why a feature: building the eBPF program needs clang, libbpf headers and
//! the kernel's BTF (for vmlinux.h), and running it needs root. None of that
//! should be needed to build, test or use the offline pipeline, so
//! `cargo build` without `--features live` compiles none of this module and
//! pulls in no libbpf. See `README.md` beside this file.

mod abi;
mod agg_record;
pub mod aggregate;
pub mod capture;
pub mod cgroup;
pub mod container_dir;
pub mod format;
mod marker;
pub mod metrics;
pub mod monitor;
pub mod record;
pub mod session;
pub mod syscalls;

#[allow(clippy::all, clippy::pedantic, dead_code, non_camel_case_types)]
#[allow(unsafe_op_in_unsafe_fn)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/chids.skel.rs"));
}

use std::path::PathBuf;

pub use aggregate::KernelWindows;
pub use capture::{Capture, Counters, RawEvent};
pub use cgroup::{CgroupRef, Target};
pub use format::Formatter;
pub use monitor::{
    monitor, Alert, MonitorOptions, MonitorSummary, MonitorUpdate, WindowPath, WindowReport,
};
pub use record::{record, RecordOptions, RecordProgress, RecordSummary};
pub use session::{Followed, Session, SessionEnd, StopReason, StopToken};

/// Everything that can go wrong in live capture, each with what to do.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(
        "live capture needs root (or CAP_BPF + CAP_PERFMON, or CAP_SYS_ADMIN); \
         run with sudo"
    )]
    NotPrivileged,
    #[error(
        "the kernel has no BTF ({0} missing): eBPF CO-RE programs cannot be \
         loaded; use a kernel built with CONFIG_DEBUG_INFO_BTF=y"
    )]
    NoBtf(PathBuf),
    #[error("no cgroup v2 hierarchy mounted (looked in /proc/self/mountinfo for cgroup2)")]
    NoCgroup2,
    #[error("cgroup not found: {0}")]
    CgroupNotFound(String),
    #[error("container {id:?}: {why}")]
    Container { id: String, why: String },
    #[error("loading the eBPF program failed: {0}")]
    Bpf(String),
    #[error("{what}: {err}")]
    Io {
        what: String,
        #[source]
        err: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

impl LiveError {
    pub fn io(what: impl Into<String>, err: std::io::Error) -> Self {
        LiveError::Io {
            what: what.into(),
            err,
        }
    }
}

/// CPU time (user + system) this process has used so far, children
/// excluded: what capture costs in user space. (The eBPF programs' own
/// cost is charged to the traced tasks, as kernel time of their syscalls.)
pub fn self_cpu_time() -> std::time::Duration {
    // SAFETY: getrusage writes into the struct we pass.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let tv =
        |t: libc::timeval| std::time::Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}
