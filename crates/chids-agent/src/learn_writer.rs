//! Learning data go to disk on a thread of their own.
//!
//! The capture thread formats `.sc` lines into a buffer per container and
//! hands full buffers (or a second's worth) to the writer; it never waits
//! for the disk. What is handed over but not written yet is bounded
//! ([`IN_FLIGHT_MAX`]): past it, a buffer is dropped and counted against
//! its workload (see [`Learner`](crate::learning::Learner)). Files are made
//! as before: 0600 in 0700 folders, never through a link
//! (`sink/private_fs.rs`); an error (a file that cannot be opened or
//! written) is sent back to be logged and counted on its workload, and the
//! file is tried again later.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Learning data beyond this many bytes per workload are not written (the
/// recording window still ends at `learn_for`).
pub(crate) const LEARN_MAX_BYTES: u64 = 512 << 20;
/// Bytes handed to the writer and not yet written, at most.
pub(crate) const IN_FLIGHT_MAX: usize = 16 << 20;
/// How long after a failure to open or write a learning file it is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(10);

/// One container's segments, where they go.
pub(crate) struct Target {
    pub workload: String,
    pub dir: PathBuf,
    /// File names are `<stem>-<segment>.sc`.
    pub stem: String,
}

enum Job {
    Start {
        id: u64,
        target: Target,
    },
    Write {
        id: u64,
        buf: Vec<u8>,
    },
    /// The next segment begins.
    Rotate {
        id: u64,
    },
    Finish {
        id: u64,
    },
    /// Answered once everything sent before it is on disk.
    Barrier(Sender<()>),
}

/// The capture thread's side of the writer.
pub(crate) struct LearnWriter {
    tx: Sender<Job>,
    in_flight: Arc<AtomicUsize>,
    errors: Receiver<(String, String)>,
    next_id: u64,
}

impl LearnWriter {
    pub(crate) fn start() -> LearnWriter {
        let (tx, jobs) = mpsc::channel();
        let (errors_tx, errors) = mpsc::channel();
        let in_flight = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&in_flight);
        // Without the thread, jobs are never taken: every buffer is then
        // dropped past IN_FLIGHT_MAX and counted, which the log says.
        let _ = std::thread::Builder::new()
            .name("chids-learn-write".into())
            .spawn(move || write_jobs(jobs, &counted, &errors_tx));
        LearnWriter {
            tx,
            in_flight,
            errors,
            next_id: 0,
        }
    }

    /// A new stream of segments; its id for the other calls.
    pub(crate) fn open(&mut self, target: Target) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        let _ = self.tx.send(Job::Start { id, target });
        id
    }

    /// Hands `buf` over, unless the writer is [`IN_FLIGHT_MAX`] behind:
    /// then it is given back (dropped by the caller, who counts it).
    pub(crate) fn write(&self, id: u64, buf: Vec<u8>) -> Result<(), Vec<u8>> {
        let n = buf.len();
        if self.in_flight.load(Ordering::Relaxed) + n > IN_FLIGHT_MAX {
            return Err(buf);
        }
        self.in_flight.fetch_add(n, Ordering::Relaxed);
        self.tx.send(Job::Write { id, buf }).map_err(|e| {
            self.in_flight.fetch_sub(n, Ordering::Relaxed);
            match e.0 {
                Job::Write { buf, .. } => buf,
                _ => Vec::new(),
            }
        })
    }

    pub(crate) fn rotate(&self, id: u64) {
        let _ = self.tx.send(Job::Rotate { id });
    }

    pub(crate) fn finish(&self, id: u64) {
        let _ = self.tx.send(Job::Finish { id });
    }

    /// Gets a message once everything sent so far is written (training
    /// waits for it before it reads the files); the sender is dropped
    /// unanswered if the writer is gone.
    pub(crate) fn barrier(&self) -> Receiver<()> {
        let (tx, rx) = mpsc::channel();
        let _ = self.tx.send(Job::Barrier(tx));
        rx
    }

    /// Errors since the last call: (workload, what went wrong).
    pub(crate) fn errors(&self) -> Vec<(String, String)> {
        self.errors.try_iter().collect()
    }
}

enum SegmentFile {
    Open(File),
    /// The workload's share of [`LEARN_MAX_BYTES`] is used up (or the
    /// stream is finished).
    Full,
    /// Opening or writing failed (reported); tried again at `retry_at`.
    Failed {
        retry_at: Instant,
    },
}

/// The writer thread's view of one stream.
struct Segments {
    target: Target,
    segment: u32,
    file: SegmentFile,
    /// Bytes this container may still write.
    budget: u64,
    /// Its failure was reported; until it writes again, further ones are
    /// not (a full disk must not flood the log, which may be on it too).
    reported: bool,
}

impl Segments {
    fn start(target: Target) -> (Segments, Result<(), String>) {
        // Learning that resumes (after a completeness check) starts a new
        // segment: earlier ones stay whole.
        let segment = (0..)
            .find(|i| !target.dir.join(segment_name(&target.stem, *i)).exists())
            .unwrap_or(0);
        let mut s = Segments {
            budget: LEARN_MAX_BYTES.saturating_sub(dir_bytes(&target.dir)),
            target,
            segment,
            file: SegmentFile::Full,
            reported: false,
        };
        let r = s.open();
        (s, r)
    }

    fn open(&mut self) -> Result<(), String> {
        if self.budget == 0 {
            self.file = SegmentFile::Full;
            return Ok(());
        }
        match open_segment(&self.target.dir, &self.target.stem, self.segment) {
            Ok(f) => {
                self.file = SegmentFile::Open(f);
                self.reported = false;
                Ok(())
            }
            Err(e) => {
                self.fail();
                Err(e)
            }
        }
    }

    fn fail(&mut self) {
        self.file = SegmentFile::Failed {
            retry_at: Instant::now() + RETRY_AFTER,
        };
    }

    /// Appends `buf` (dropped when full or failed; a failed open is tried
    /// again once its time has come).
    fn write(&mut self, buf: &[u8]) -> Result<(), String> {
        if let SegmentFile::Failed { retry_at } = self.file {
            if Instant::now() < retry_at {
                return Ok(());
            }
            self.open()?;
        }
        let SegmentFile::Open(f) = &mut self.file else {
            return Ok(());
        };
        let n = buf.len() as u64;
        if n > self.budget {
            // Full: learning goes on with what is there.
            self.file = SegmentFile::Full;
            return Ok(());
        }
        match f.write_all(buf) {
            Ok(()) => {
                self.budget -= n;
                self.reported = false;
                Ok(())
            }
            Err(e) => {
                self.fail();
                Err(format!(
                    "{}: {e}",
                    self.target
                        .dir
                        .join(segment_name(&self.target.stem, self.segment))
                        .display()
                ))
            }
        }
    }

    fn rotate(&mut self) -> Result<(), String> {
        match self.file {
            SegmentFile::Open(_) | SegmentFile::Failed { .. } => {
                self.segment += 1;
                self.open()
            }
            SegmentFile::Full => Ok(()),
        }
    }
}

/// The writer thread: runs until the agent drops its [`LearnWriter`].
fn write_jobs(jobs: Receiver<Job>, in_flight: &AtomicUsize, errors: &Sender<(String, String)>) {
    let mut streams: HashMap<u64, Segments> = HashMap::new();
    for job in jobs {
        let (id, result) = match job {
            Job::Start { id, target } => {
                let (s, r) = Segments::start(target);
                streams.insert(id, s);
                (id, r)
            }
            Job::Write { id, buf } => {
                let r = streams.get_mut(&id).map_or(Ok(()), |s| s.write(&buf));
                in_flight.fetch_sub(buf.len(), Ordering::Relaxed);
                (id, r)
            }
            Job::Rotate { id } => (id, streams.get_mut(&id).map_or(Ok(()), Segments::rotate)),
            Job::Finish { id } => {
                // Written with plain writes: closing is all that is left.
                streams.remove(&id);
                continue;
            }
            Job::Barrier(done) => {
                let _ = done.send(());
                continue;
            }
        };
        if let (Err(e), Some(s)) = (result, streams.get_mut(&id)) {
            if !std::mem::replace(&mut s.reported, true) {
                let _ = errors.send((s.target.workload.clone(), e));
            }
        }
    }
}

/// Opens a learning segment for appending: in a real folder (never
/// through a link planted in the state dir), 0600, never through a link.
fn open_segment(dir: &Path, stem: &str, segment: u32) -> Result<File, String> {
    crate::sink::private_fs::private_dir(dir).map_err(|e| e.to_string())?;
    let path = dir.join(segment_name(stem, segment));
    crate::sink::private_fs::append_file(&path).map_err(|e| e.to_string())
}

fn segment_name(stem: &str, segment: u32) -> String {
    format!("{stem}-{segment:03}.sc")
}

fn dir_bytes(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .map(|es| {
            es.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn target(dir: &Path) -> Target {
        Target {
            workload: "w".into(),
            dir: dir.to_path_buf(),
            stem: "abc-1".into(),
        }
    }

    #[test]
    fn writes_segments_in_order_privately_and_reports_a_planted_link() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("w");
        let mut w = LearnWriter::start();
        let id = w.open(target(&dir));
        w.write(id, b"one\n".to_vec()).unwrap();
        w.rotate(id);
        w.write(id, b"two\n".to_vec()).unwrap();
        w.finish(id);
        w.barrier().recv().unwrap();
        let read = |n: &str| fs::read_to_string(dir.join(n)).unwrap();
        assert_eq!(read("abc-1-000.sc"), "one\n");
        assert_eq!(read("abc-1-001.sc"), "two\n");
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.join("abc-1-001.sc")), 0o600);
        assert_eq!(mode(&dir), 0o700);
        assert!(w.errors().is_empty());

        // A link where the folder goes: refused, reported for the workload.
        let victim = tmp.path().join("victim");
        fs::create_dir(&victim).unwrap();
        let linked = tmp.path().join("linked");
        std::os::unix::fs::symlink(&victim, &linked).unwrap();
        let id = w.open(target(&linked));
        w.write(id, b"x\n".to_vec()).unwrap();
        w.barrier().recv().unwrap();
        let errors = w.errors();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].0, "w");
        // Failing on: said once, not at every try.
        w.rotate(id);
        w.write(id, b"y\n".to_vec()).unwrap();
        w.barrier().recv().unwrap();
        assert!(w.errors().is_empty());
        assert_eq!(fs::read_dir(&victim).unwrap().count(), 0);
    }

    #[test]
    fn past_the_bound_a_buffer_is_given_back() {
        let w = LearnWriter::start();
        w.in_flight.store(IN_FLIGHT_MAX, Ordering::Relaxed);
        assert_eq!(w.write(1, b"x\n".to_vec()), Err(b"x\n".to_vec()));
    }
}
