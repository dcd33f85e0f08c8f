//! When a container's exec sessions ran, so that their own activity alone
//! does not make an anomaly.
//!
//! The program an exec session runs (`podman exec C true`, an exec probe)
//! is watched like any process of the container: a path or system call it
//! brings that training never saw alarms as usual. But it also adds a few
//! process starts to the window it runs in, and a window that was already
//! among the busiest of training then counts a few more `execve`, `brk` or
//! `getuid` than any training window had: a frequency-driven score just
//! over the threshold, with no name the model does not know. The exec is
//! already reported as its own record (`"kind": "exec"`), so such a window
//! — rising counts only, while an exec session's processes ran — is counted
//! and not raised as an anomaly. A window with an unseen name is raised
//! whatever ran in it.

use std::collections::VecDeque;

use chids_core::event::Direction;
use chids_live::capture::RawEvent;
use chids_live::syscalls;

/// Exec-session processes remembered per container; the oldest go first.
/// An exec session is one process and the few it forks: a bound keeps a
/// container that execs in a loop from growing the list.
const MAX_SPANS: usize = 32;

/// A span quiet for this long is forgotten: its windows were scored long
/// ago (windows close about one window length after their end), and the
/// per-event look-up stays empty, and free, between exec sessions.
const FORGET_AFTER_NS: u64 = 60_000_000_000;

/// One exec-session process and when it ran.
#[derive(Clone, Copy, Debug)]
struct Span {
    pid: u32,
    first_ns: u64,
    last_ns: u64,
}

/// A container's exec-session processes (see the module documentation).
#[derive(Debug, Default)]
pub(crate) struct ExecSpans {
    spans: VecDeque<Span>,
}

impl ExecSpans {
    /// An exec session's program starts in process `pid` at `ts_ns`.
    pub(crate) fn start(&mut self, pid: u32, ts_ns: u64) {
        if self.spans.len() == MAX_SPANS {
            self.spans.pop_front();
        }
        self.spans.push_back(Span {
            pid,
            first_ns: ts_ns,
            last_ns: ts_ns,
        });
    }

    /// A workload event: extends its process's span if it is an exec
    /// session's, and a process it forks joins the session.
    pub(crate) fn observe(&mut self, raw: &RawEvent<'_>) {
        while self
            .spans
            .front()
            .is_some_and(|s| s.last_ns.saturating_add(FORGET_AFTER_NS) < raw.ts_ns)
        {
            self.spans.pop_front();
        }
        if self.spans.is_empty() {
            return;
        }
        let Some(span) = self.spans.iter_mut().find(|s| s.pid == raw.pid) else {
            return;
        };
        span.last_ns = span.last_ns.max(raw.ts_ns);
        let forked = raw.dir == Direction::Exit
            && raw.ret > 0
            && matches!(
                syscalls::name(raw.nr),
                Some("clone" | "clone3" | "fork" | "vfork")
            );
        if forked {
            if let Ok(child) = u32::try_from(raw.ret) {
                self.start(child, raw.ts_ns);
            }
        }
    }

    /// Whether an exec-session process ran within `[start_ns, end_ns)`.
    pub(crate) fn overlaps(&self, start_ns: u64, end_ns: u64) -> bool {
        self.spans
            .iter()
            .any(|s| s.first_ns < end_ns && s.last_ns >= start_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(pid: u32, ts_ns: u64, call: &str, dir: Direction, ret: i64) -> RawEvent<'static> {
        RawEvent {
            ts_ns,
            watch: 1,
            ret,
            flags: 0,
            pid,
            tid: pid,
            uid: 0,
            nr: (0..512)
                .find(|&n| syscalls::name(n) == Some(call))
                .expect("a known call"),
            dir,
            comm: b"sh",
            path: None,
            path_fault: false,
            sockaddr: None,
        }
    }

    #[test]
    fn a_session_and_what_it_forks_cover_the_times_they_ran() {
        let mut s = ExecSpans::default();
        assert!(!s.overlaps(0, u64::MAX), "no session yet");
        s.start(10, 1_000);
        s.observe(&event(10, 1_500, "getuid", Direction::Exit, 0));
        s.observe(&event(99, 9_000, "getuid", Direction::Exit, 0)); // the workload's
        assert!(s.overlaps(1_400, 2_000));
        assert!(
            !s.overlaps(1_600, 2_000),
            "the session was quiet after 1500"
        );
        assert!(!s.overlaps(0, 1_000), "nor before it started");
        // It forks 11, which runs later.
        s.observe(&event(10, 1_600, "clone", Direction::Exit, 11));
        s.observe(&event(11, 5_000, "openat", Direction::Exit, 3));
        assert!(s.overlaps(4_000, 6_000));
    }

    #[test]
    fn a_quiet_session_is_forgotten() {
        let mut s = ExecSpans::default();
        s.start(10, 1_000);
        s.observe(&event(
            99,
            1_000 + FORGET_AFTER_NS + 1,
            "getuid",
            Direction::Exit,
            0,
        ));
        assert!(s.spans.is_empty());
    }

    #[test]
    fn bounded() {
        let mut s = ExecSpans::default();
        for pid in 0..(MAX_SPANS as u32 * 3) {
            s.start(pid, u64::from(pid) * 10);
        }
        assert_eq!(s.spans.len(), MAX_SPANS);
        assert!(!s.overlaps(0, 10), "the oldest went first");
    }
}
