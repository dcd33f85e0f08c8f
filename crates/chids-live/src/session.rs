//! One live runtime: a [`Session`] owns the capture, the sandboxed command
//! (for `-- CMD` targets), the clock and a [`StopToken`]. `record`,
//! `monitor` and the agent are consumers: each drives the same
//! poll / check-stop / drain cycle and adds only what it does with the
//! events.
//!
//! ```text
//! Session::open(target) ─► begin (clock starts, command spawned)
//!   loop: poll(events, exec gate applied) ─► consumer ─► stop_reason()?
//!   drain (what is still in flight) ─► end (command status, elapsed, CPU)
//! ```
//!
//! Only losing the capture is fatal to a session; what a consumer does
//! with a container's events is the consumer's to confine.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::capture::{Capture, ExecGate, RawEvent};
use super::cgroup::{CgroupRef, CommandCgroup, Target};
use super::LiveError;

/// Asks a session (and whatever runs with it) to finish cleanly. Clones
/// share one flag; nothing about it is global, so tests and several
/// sessions in one process each have their own.
#[derive(Clone, Debug, Default)]
pub struct StopToken(Arc<AtomicBool>);

impl StopToken {
    pub fn new() -> StopToken {
        StopToken::default()
    }

    /// A token that SIGINT and SIGTERM set; a second such signal exits at
    /// once (exit status 128 + signal), as a user who insists expects. A
    /// sandboxed command dies with us (PR_SET_PDEATHSIG) and what was
    /// written so far stays as a `.partial` file.
    pub fn on_signals() -> Result<StopToken, LiveError> {
        let token = StopToken::new();
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            // Registered first, so the first signal finds the flag unset.
            signal_hook::flag::register_conditional_shutdown(sig, 128 + sig, Arc::clone(&token.0))
                .and_then(|_| signal_hook::flag::register(sig, Arc::clone(&token.0)))
                .map_err(|e| LiveError::io("install the SIGINT/SIGTERM handlers", e))?;
        }
        Ok(token)
    }

    /// Requests the stop (as a signal would).
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Why a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    CommandExited,
    Duration,
    Signal,
}

/// What a session reports when it ends.
#[derive(Clone, Copy, Debug)]
pub struct SessionEnd {
    pub elapsed: Duration,
    /// CPU time chids itself used while capturing (user + system).
    pub cpu: Duration,
    /// Exit code of the command (`-- CMD` targets only).
    pub command_status: Option<i32>,
}

/// A watched target's cgroup, with what is needed to follow it: a
/// container restarted by its runtime gets a new cgroup.
pub struct Followed {
    pub cgroup: CgroupRef,
    container: Option<String>,
    last_check: Option<Instant>,
}

impl Followed {
    fn new(cgroup: CgroupRef, container: Option<String>) -> Followed {
        Followed {
            cgroup,
            container,
            last_check: None,
        }
    }

    /// About once a second, for a `--container` target: the container's new
    /// cgroup when the watched one is gone (the container was restarted).
    /// The caller moves its watch and then calls [`Followed::moved_to`].
    pub fn restarted(&mut self) -> Option<CgroupRef> {
        use std::os::unix::fs::MetadataExt;
        let id = self.container.as_deref()?;
        if self
            .last_check
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return None;
        }
        self.last_check = Some(Instant::now());
        let same = std::fs::metadata(&self.cgroup.path).is_ok_and(|m| m.ino() == self.cgroup.id);
        if same {
            return None;
        }
        CgroupRef::from_container(id)
            .ok()
            .filter(|c| c.id != self.cgroup.id)
    }

    pub(crate) fn moved_to(&mut self, cgroup: CgroupRef) {
        self.cgroup = cgroup;
    }
}

/// The live runtime a consumer drives (see the module docs).
pub struct Session {
    capture: Capture,
    command: Option<CommandCgroup>,
    argv: Option<Vec<String>>,
    gate: ExecGate,
    stop: StopToken,
    duration: Option<Duration>,
    start: Instant,
    cpu_start: Duration,
    command_status: Option<i32>,
}

impl Session {
    /// A session over the capture alone: the consumer finds and watches
    /// its cgroups itself (the agent, by discovery).
    pub fn open(stop: StopToken, duration: Option<Duration>) -> Result<Session, LiveError> {
        Ok(Session {
            capture: Capture::open()?,
            command: None,
            argv: None,
            gate: ExecGate::new(false),
            stop,
            duration,
            start: Instant::now(),
            cpu_start: super::self_cpu_time(),
            command_status: None,
        })
    }

    /// A session for one target. A `-- CMD` target gets a fresh cgroup
    /// named `{purpose}-{program}` (the command starts at
    /// [`Session::begin`]) and events from the command's first `execve`
    /// on (see [`ExecGate`]). Nothing is watched yet: the consumer chooses
    /// how (per-event records, kernel windows).
    pub(crate) fn for_target(
        target: &Target,
        purpose: &str,
        stop: StopToken,
        duration: Option<Duration>,
    ) -> Result<(Session, Followed), LiveError> {
        // Load first: privilege / BTF errors come before anything is created.
        let mut session = Session::open(stop, duration)?;
        let followed = match target {
            Target::Cgroup(p) => Followed::new(CgroupRef::from_path(p)?, None),
            Target::Container(id) => {
                Followed::new(CgroupRef::from_container(id)?, Some(id.clone()))
            }
            Target::Command(argv) => {
                let base = argv
                    .first()
                    .map(|a| {
                        Path::new(a)
                            .file_name()
                            .unwrap_or_default()
                            .to_string_lossy()
                            .into_owned()
                    })
                    .unwrap_or_default();
                let c = CommandCgroup::create(&format!("{purpose}-{base}"))?;
                let cg = c.cgroup.clone();
                session.command = Some(c);
                session.argv = Some(argv.clone());
                session.gate = ExecGate::new(true);
                Followed::new(cg, None)
            }
        };
        Ok((session, followed))
    }

    /// Whether events are admitted only from a command's `execve` on.
    pub(crate) fn gated(&self) -> bool {
        self.argv.is_some()
    }

    /// The command's output goes to stderr (`monitor` prints alerts on
    /// stdout, which the command's output must not mix into).
    pub(crate) fn command_output_to_stderr(&mut self) {
        self.command = self.command.take().map(CommandCgroup::output_to_stderr);
    }

    /// Starts the clock and the command, if any.
    pub fn begin(&mut self) -> Result<(), LiveError> {
        self.start = Instant::now();
        self.cpu_start = super::self_cpu_time();
        if let (Some(c), Some(argv)) = (self.command.as_mut(), self.argv.as_ref()) {
            c.spawn(argv)?;
        }
        Ok(())
    }

    pub fn capture(&mut self) -> &mut Capture {
        &mut self.capture
    }

    pub fn capture_ref(&self) -> &Capture {
        &self.capture
    }

    /// Now, on the events' clock (see [`Capture::now_ns`]).
    pub fn now_ns(&self) -> u64 {
        self.capture.now_ns()
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    pub fn stop_token(&self) -> &StopToken {
        &self.stop
    }

    /// Waits up to `timeout` for events; hands each admitted one to `f`.
    pub fn poll(
        &mut self,
        timeout: Duration,
        f: &mut dyn FnMut(&RawEvent<'_>),
    ) -> Result<(), LiveError> {
        let gate = &mut self.gate;
        self.capture.poll(timeout, &mut |raw| {
            if gate.admit(raw) {
                f(raw)
            }
        })?;
        Ok(())
    }

    /// Hands out what is still in flight (see [`Capture::drain`]).
    pub fn drain(&mut self, f: &mut dyn FnMut(&RawEvent<'_>)) -> Result<(), LiveError> {
        let gate = &mut self.gate;
        self.capture.drain(&mut |raw| {
            if gate.admit(raw) {
                f(raw)
            }
        })?;
        Ok(())
    }

    /// Why the session should end now, if it should: the command exited
    /// (its status is kept), the duration is up, or a stop was requested.
    pub fn stop_reason(&mut self) -> Result<Option<StopReason>, LiveError> {
        if let Some(c) = self.command.as_mut() {
            if let Some(code) = c.try_wait()? {
                self.command_status = Some(code);
                return Ok(Some(StopReason::CommandExited));
            }
        }
        if self.duration.is_some_and(|d| self.start.elapsed() >= d) {
            return Ok(Some(StopReason::Duration));
        }
        if self.stop.is_stopped() {
            return Ok(Some(StopReason::Signal));
        }
        Ok(None)
    }

    /// Ends the session's clock; a command still running is killed (its
    /// cgroup is removed when the session is dropped).
    pub fn end(&mut self) -> SessionEnd {
        let elapsed = self.start.elapsed();
        let cpu = super::self_cpu_time().saturating_sub(self.cpu_start);
        if let Some(c) = self.command.as_mut() {
            if self.command_status.is_none() {
                self.command_status = c.kill();
            }
        }
        SessionEnd {
            elapsed,
            cpu,
            command_status: self.command_status,
        }
    }

    /// Removes the command's cgroup now (it is also removed on drop).
    pub(crate) fn release_command(&mut self) {
        self.command = None;
    }
}
