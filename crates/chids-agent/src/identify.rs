//! Who a container is, found out off the capture thread.
//!
//! Reading the runtime's state on disk and asking the CRI socket (up to
//! 2 s a call) must not delay the thread that drains the ring buffer and
//! watches new cgroups: one worker thread does it, fed by a bounded queue
//! (requests it has no room for wait on the capture side, in order), and
//! answers come back on a channel the agent reads every turn.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use crate::cri::CriSource;
use crate::discovery::Runtime;
use crate::identity::{Identity, Resolver};

/// Look-ups queued for the worker at most; more wait on the capture side.
const QUEUE: usize = 64;

struct Request {
    cgroup_id: u64,
    runtime: Runtime,
    id: String,
}

/// What the worker says.
pub(crate) enum Answer {
    Identified {
        cgroup_id: u64,
        ident: Identity,
        /// From the request to the answer.
        took: Duration,
    },
    /// A line for the agent's log.
    Log(String),
}

/// The identity worker, as the capture thread sees it.
pub(crate) struct Identifier {
    tx: Option<SyncSender<(Request, Instant)>>,
    rx: Receiver<Answer>,
    /// Requests the queue had no room for yet.
    waiting: VecDeque<(Request, Instant)>,
}

impl Identifier {
    /// Starts the worker with what it looks identities up with.
    pub(crate) fn start(resolver: Resolver, cri: CriSource, host_root: PathBuf) -> Identifier {
        let (tx, requests) = mpsc::sync_channel::<(Request, Instant)>(QUEUE);
        let (answers, rx) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("chids-identify".into())
            .spawn(move || {
                let mut w = Worker {
                    resolver,
                    cri,
                    host_root,
                    bare_warned: Default::default(),
                };
                for (req, asked) in requests {
                    let ident = w.identify(&req, &answers);
                    let answer = Answer::Identified {
                        cgroup_id: req.cgroup_id,
                        ident,
                        took: asked.elapsed(),
                    };
                    if answers.send(answer).is_err() {
                        return;
                    }
                }
            });
        let (tx, rx) = match spawned {
            Ok(_) => (Some(tx), rx),
            Err(e) => {
                // No worker: containers are named by id (see `answers`).
                let (answers, rx) = mpsc::channel();
                let _ = answers.send(Answer::Log(format!(
                    "identity: cannot start the look-up thread ({e}); containers are named by id"
                )));
                (None, rx)
            }
        };
        Identifier {
            tx,
            rx,
            waiting: VecDeque::new(),
        }
    }

    /// Asks who container `id` (its cgroup `cgroup_id`) is; the answer
    /// comes from [`answers`](Identifier::answers).
    pub(crate) fn submit(&mut self, cgroup_id: u64, runtime: Runtime, id: &str) {
        let req = Request {
            cgroup_id,
            runtime,
            id: id.to_string(),
        };
        self.waiting.push_back((req, Instant::now()));
        self.send_waiting();
    }

    fn send_waiting(&mut self) {
        while let Some(next) = self.waiting.pop_front() {
            let Some(tx) = &self.tx else {
                self.waiting.push_front(next);
                return;
            };
            match tx.try_send(next) {
                Ok(()) => {}
                Err(TrySendError::Full(next)) => {
                    self.waiting.push_front(next);
                    return;
                }
                Err(TrySendError::Disconnected(next)) => {
                    self.tx = None;
                    self.waiting.push_front(next);
                    return;
                }
            }
        }
    }

    /// Answers so far (without waiting). Without a worker (it could not
    /// start, or died), containers are answered with their bare id.
    pub(crate) fn answers(&mut self) -> Vec<Answer> {
        self.send_waiting();
        let mut out: Vec<Answer> = self.rx.try_iter().collect();
        if self.tx.is_none() {
            out.extend(
                self.waiting
                    .drain(..)
                    .map(|(req, asked)| Answer::Identified {
                        ident: bare(&req),
                        cgroup_id: req.cgroup_id,
                        took: asked.elapsed(),
                    }),
            );
        }
        out
    }

    /// Answers, waiting up to `deadline` for `want` of them (when the
    /// agent stops, so that containers found last still get their names).
    pub(crate) fn answers_until(&mut self, want: usize, deadline: Instant) -> Vec<Answer> {
        let mut out = self.answers();
        let identified = |a: &[Answer]| {
            a.iter()
                .filter(|a| matches!(a, Answer::Identified { .. }))
                .count()
        };
        while identified(&out) < want {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left.min(Duration::from_millis(50))) {
                Ok(a) => out.push(a),
                Err(RecvTimeoutError::Disconnected) => {
                    // The worker is gone: what waits is named by its id.
                    self.tx = None;
                    out.extend(self.answers());
                    break;
                }
                Err(_) if Instant::now() >= deadline => break,
                Err(_) => out.extend(self.answers()),
            }
        }
        out
    }
}

fn bare(req: &Request) -> Identity {
    Identity {
        runtime: req.runtime.as_str().to_string(),
        id: req.id.clone(),
        ..Identity::default()
    }
}

/// The worker thread's side.
struct Worker {
    resolver: Resolver,
    cri: CriSource,
    host_root: PathBuf,
    /// Runtimes whose state was not found, said once each.
    bare_warned: std::collections::HashSet<String>,
}

impl Worker {
    fn identify(&mut self, req: &Request, answers: &mpsc::Sender<Answer>) -> Identity {
        let mut log = |l: String| {
            let _ = answers.send(Answer::Log(l));
        };
        // A panic on strange state must not leave the container unnamed
        // for ever: it is named by its id.
        let found = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let mut ident = self.resolver.resolve(req.runtime, &req.id);
            if matches!(req.runtime, Runtime::Containerd | Runtime::Crio) {
                // The runtime's own answer first; the disk's where it says nothing.
                self.cri.fill(&mut ident, &mut log);
            }
            ident
        }));
        for line in self.resolver.take_log() {
            log(line);
        }
        let ident = found.unwrap_or_else(|_| {
            log(format!(
                "identity: looking up container {} failed (panic); named by its id",
                &req.id[..req.id.len().min(12)]
            ));
            bare(req)
        });
        if ident.is_bare() && self.bare_warned.insert(ident.runtime.clone()) {
            log(format!(
                "identity: no {} state found under {} for {}; containers of this runtime are named by id",
                ident.runtime,
                self.host_root.display(),
                ident.short_id()
            ));
        }
        ident
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identified(answers: Vec<Answer>) -> Vec<(u64, Identity)> {
        answers
            .into_iter()
            .filter_map(|a| match a {
                Answer::Identified {
                    cgroup_id, ident, ..
                } => Some((cgroup_id, ident)),
                Answer::Log(_) => None,
            })
            .collect()
    }

    #[test]
    fn answers_every_request_off_thread_even_past_the_queue() {
        let host = tempfile::tempdir().unwrap();
        let cri = CriSource::new(Some(&host.path().join("no.sock")), host.path(), &mut |_| {});
        let mut ider =
            Identifier::start(Resolver::new(host.path()), cri, host.path().to_path_buf());
        let n = QUEUE as u64 * 3;
        for i in 0..n {
            ider.submit(i, Runtime::Podman, &format!("{i:064x}"));
        }
        let got =
            identified(ider.answers_until(n as usize, Instant::now() + Duration::from_secs(30)));
        assert_eq!(got.len() as u64, n);
        for (i, (cgroup_id, ident)) in got.iter().enumerate() {
            assert_eq!(*cgroup_id, i as u64, "answers come in request order");
            assert_eq!(ident.id, format!("{i:064x}"));
            assert!(ident.is_bare());
        }
    }
}
