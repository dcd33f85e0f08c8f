//! Live capture with eBPF (cargo feature `live`).
//!
//! ```text
//! kernel: raw_syscalls/sys_enter + sys_exit ─► cgroup filter ─► ring buffer
//! user:   Capture::poll ─► RawEvent ─► Formatter (sysdig-style info) ─► Event
//!         record: .sc lines streamed to a temp file, zipped with a .json at the end
//! ```
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
pub mod format;
mod marker;
pub mod metrics;
pub mod monitor;
pub mod record;
pub mod syscalls;

#[allow(clippy::all, clippy::pedantic, dead_code, non_camel_case_types)]
#[allow(unsafe_op_in_unsafe_fn)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/chids.skel.rs"));
}

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

pub use aggregate::KernelWindows;
pub use capture::{Capture, Counters, RawEvent};
pub use cgroup::{CgroupRef, Target};
pub use format::Formatter;
pub use monitor::{
    monitor, Alert, MonitorOptions, MonitorSummary, MonitorUpdate, WindowPath, WindowReport,
};
pub use record::{record, RecordOptions, RecordProgress, RecordSummary, StopReason};

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

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(sig: libc::c_int) {
    // Only an atomic swap and _exit: async-signal-safe.
    if STOP.swap(true, Ordering::SeqCst) {
        // The second signal: the user insists. Leave at once; a sandboxed
        // command dies with us (PR_SET_PDEATHSIG), and what was written
        // so far stays as a `.partial` file.
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(128 + sig) };
    }
}

/// Makes SIGINT and SIGTERM request a clean stop (see [`stop_requested`])
/// instead of killing the process, so recordings and alert files are
/// finished properly; a second SIGINT/SIGTERM exits at once. Called by the
/// CLI, not by the library on its own.
pub fn stop_on_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: installs a handler that only stores to an atomic.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_stop_signal as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// True once SIGINT/SIGTERM arrived (after [`stop_on_signals`]) or
/// [`request_stop`] was called.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Asks running captures to finish (as a signal would).
pub fn request_stop() {
    STOP.store(true, Ordering::SeqCst);
}

/// Clears a previous stop request (tests run several captures in one process).
pub fn reset_stop() {
    STOP.store(false, Ordering::SeqCst);
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
