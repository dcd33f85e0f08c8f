//! Learning: each container of a learning workload writes its events as
//! `.sc` lines under `<state>/learn/<workload>/` (through the writer
//! thread, `learn_writer.rs`), in segments (so that
//! calibration can hold out whole ones); when the workload has learnt long
//! enough (at least `--learn-for`; then until the estimated rate of new
//! names fits the alarm budget, or `--learn-max`), a bounded pool of
//! training threads turns them into a calibrated bundle with the code
//! `chids baseline` uses.

use std::collections::VecDeque;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chids_core::features::Settings;
use chids_core::source::lidds::Lidds2021;
use chids_core::source::{EventSource, ReadOptions};
use chids_detect::completeness::{self, Completeness};
use chids_detect::model::bundle::Bundle;
use chids_detect::model::{default_thetas, TrainConfig};
use chids_detect::train::{train_calibrated, TrainOptions};

use crate::learn_writer::{LearnWriter, Target};
use crate::workloads::folder_name;

/// A workload's learning is cut into about this many segments per
/// container, so that calibration can validate on whole held-out ones.
const SEGMENTS: u32 = 6;
/// ... none shorter than this (a segment should hold whole windows).
const MIN_SEGMENT: Duration = Duration::from_secs(5);
/// A container's lines go to the writer when this many bytes are buffered...
const HAND_OVER_BYTES: usize = 64 << 10;
/// ... or when they have waited this long.
const HAND_OVER_EVERY: Duration = Duration::from_secs(1);

/// How long one learning segment lasts when a workload learns for `learn_for`.
pub(crate) fn segment_length(learn_for: Duration) -> Duration {
    (learn_for / SEGMENTS).max(MIN_SEGMENT)
}

/// One container's learning data, as the capture thread sees them: lines
/// buffered here, written by the [`LearnWriter`] thread.
pub(crate) struct Learner {
    id: u64,
    buf: Vec<u8>,
    segment_began: Instant,
    handed_at: Instant,
}

impl Learner {
    /// Starts learning into `<learn_root>/<workload>/` (the writer opens
    /// the file and reports errors, see [`LearnWriter::errors`]).
    pub(crate) fn start(
        writer: &mut LearnWriter,
        learn_root: &Path,
        key: &str,
        container_id: &str,
        cgroup_id: u64,
    ) -> Learner {
        let short = &container_id[..container_id.len().min(12)];
        let id = writer.open(Target {
            workload: key.to_string(),
            dir: learn_root.join(folder_name(key)),
            stem: format!("{short}-{cgroup_id}"),
        });
        Learner {
            id,
            buf: Vec::with_capacity(HAND_OVER_BYTES + 512),
            segment_began: Instant::now(),
            handed_at: Instant::now(),
        }
    }

    /// Appends one `.sc` line. Returns how many lines were dropped because
    /// the writer is too far behind (0 mostly).
    pub(crate) fn write(&mut self, line: &[u8], writer: &LearnWriter) -> u64 {
        self.buf.extend_from_slice(line);
        if self.buf.len() >= HAND_OVER_BYTES {
            self.hand_over(writer)
        } else {
            0
        }
    }

    fn hand_over(&mut self, writer: &LearnWriter) -> u64 {
        self.handed_at = Instant::now();
        if self.buf.is_empty() {
            return 0;
        }
        let full = std::mem::replace(&mut self.buf, Vec::with_capacity(HAND_OVER_BYTES + 512));
        match writer.write(self.id, full) {
            Ok(()) => 0,
            Err(mut dropped) => {
                let lines = dropped.iter().filter(|&&b| b == b'\n').count() as u64;
                // Reused: the next lines go where these were.
                dropped.clear();
                self.buf = dropped;
                lines
            }
        }
    }

    /// Hands over lines that waited long enough; starts the next segment
    /// when this one is `segment` old. Returns lines dropped (see `write`).
    pub(crate) fn tick(&mut self, segment: Duration, writer: &LearnWriter) -> u64 {
        let mut dropped = 0;
        if self.handed_at.elapsed() >= HAND_OVER_EVERY {
            dropped = self.hand_over(writer);
        }
        if self.segment_began.elapsed() >= segment {
            dropped += self.hand_over(writer);
            writer.rotate(self.id);
            self.segment_began = Instant::now();
        }
        dropped
    }

    /// The last lines, then the file is closed. Returns lines dropped.
    pub(crate) fn finish(&mut self, writer: &LearnWriter) -> u64 {
        let dropped = self.hand_over(writer);
        writer.finish(self.id);
        dropped
    }
}

/// What a workload's training needs.
pub(crate) struct TrainJob {
    pub key: String,
    pub dir: PathBuf,
    pub settings: Settings,
    pub epochs: usize,
    /// False-alarm budget of the operating threshold (alarm windows per hour).
    pub budget_per_hour: f64,
    /// The workload has learnt for `--learn-max`: train even when the
    /// data do not look complete.
    pub at_max: bool,
    /// Answered when the learning files are all written (see
    /// [`LearnWriter::barrier`]).
    pub written: mpsc::Receiver<()>,
}

/// A trained, calibrated bundle and what the user should hear about it.
pub(crate) struct Trained {
    pub bundle: Bundle,
    pub warnings: Vec<String>,
    pub completeness: Completeness,
}

/// What a training job came to.
pub(crate) enum Outcome {
    // Boxed: a bundle is large, and results are few.
    Trained(Box<Trained>),
    /// New names still appear too often for the budget: learn on.
    Incomplete(Completeness),
}

pub(crate) type TrainResult = (String, Result<Outcome, String>);

/// Trains a workload's baseline from the `.sc` files the agent wrote, as
/// `chids baseline --td DIR` would: calibrated on held-out segments (on
/// the training data itself when there are fewer than three). First,
/// unless at `--learn-max`, whether the data are complete enough.
fn train_workload(job: &TrainJob) -> Result<Outcome, String> {
    // An error here means the writer is gone: what is on disk is all.
    let _ = job.written.recv();
    let dir = &job.dir;
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sc"))
        .filter(|p| fs::symlink_metadata(p).is_ok_and(|m| m.is_file() && m.len() > 0))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err("no events recorded".into());
    }
    let sources: Vec<Box<dyn EventSource>> = files
        .iter()
        .map(|p| Lidds2021::open_sc(p).map(|s| Box::new(s) as Box<dyn EventSource>))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let refs: Vec<&dyn EventSource> = sources.iter().map(|s| s.as_ref()).collect();
    let completeness = completeness::estimate(&refs, job.settings, &ReadOptions::default())
        .map_err(|e| e.to_string())?;
    if !job.at_max && !completeness.fits(job.budget_per_hour, job.settings.window_ns) {
        return Ok(Outcome::Incomplete(completeness));
    }
    let options = TrainOptions {
        settings: job.settings,
        model: TrainConfig {
            epochs: job.epochs,
            ..TrainConfig::default()
        },
        thetas: default_thetas(),
        read: ReadOptions::default(),
    };
    let t = train_calibrated(&sources, None, &options, job.budget_per_hour, &|_| {})
        .map_err(|e| e.to_string())?;
    Ok(Outcome::Trained(Box::new(Trained {
        bundle: t.bundle,
        warnings: t.warnings,
        completeness,
    })))
}

/// Training threads, at most `max` at once; further jobs wait their turn.
pub(crate) struct Trainer {
    max: usize,
    queue: VecDeque<TrainJob>,
    running: Vec<JoinHandle<()>>,
    tx: mpsc::Sender<TrainResult>,
    rx: mpsc::Receiver<TrainResult>,
}

impl Trainer {
    /// At most half the CPUs (at least one) train at once: detection of
    /// the other workloads must keep its share.
    pub(crate) fn new() -> Trainer {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (tx, rx) = mpsc::channel();
        Trainer {
            max: (cpus / 2).max(1),
            queue: VecDeque::new(),
            running: Vec::new(),
            tx,
            rx,
        }
    }

    pub(crate) fn submit(&mut self, job: TrainJob) {
        self.queue.push_back(job);
    }

    /// Starts queued jobs while there is room; returns finished results.
    pub(crate) fn poll(&mut self) -> Vec<TrainResult> {
        self.running.retain(|t| !t.is_finished());
        while self.running.len() < self.max {
            let Some(job) = self.queue.pop_front() else {
                break;
            };
            let tx = self.tx.clone();
            let key = job.key.clone();
            let spawned = std::thread::Builder::new()
                .name("chids-train".into())
                .spawn(move || {
                    // A panic must not leave the workload "training" forever.
                    let result = std::panic::catch_unwind(|| train_workload(&job))
                        .unwrap_or_else(|_| Err("training panicked".into()));
                    let _ = tx.send((job.key, result));
                });
            match spawned {
                Ok(t) => self.running.push(t),
                Err(e) => {
                    let _ = self
                        .tx
                        .send((key, Err(format!("cannot start a training thread: {e}"))));
                }
            }
        }
        self.rx.try_iter().collect()
    }
}
