//! Learning: each container of a learning workload writes its events as
//! `.sc` lines under `<state>/learn/<workload>/`, in segments (so that
//! calibration can hold out whole ones); when the workload has learnt long
//! enough (at least `--learn-for`; then until the estimated rate of new
//! names fits the alarm budget, or `--learn-max`), a bounded pool of
//! training threads turns them into a calibrated bundle with the code
//! `chids baseline` uses.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
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

use crate::workloads::folder_name;

/// Learning data beyond this many bytes per workload is not written (the
/// recording window still ends at `learn_for`).
pub(crate) const LEARN_MAX_BYTES: u64 = 512 << 20;
/// How long after a failure to open a learning file it is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(10);
/// A workload's learning is cut into about this many segments per
/// container, so that calibration can validate on whole held-out ones.
const SEGMENTS: u32 = 6;
/// ... none shorter than this (a segment should hold whole windows).
const MIN_SEGMENT: Duration = Duration::from_secs(5);

/// How long one learning segment lasts when a workload learns for `learn_for`.
pub(crate) fn segment_length(learn_for: Duration) -> Duration {
    (learn_for / SEGMENTS).max(MIN_SEGMENT)
}

enum LearnFile {
    Open {
        wr: BufWriter<File>,
        opened: Instant,
    },
    /// The workload's share of [`LEARN_MAX_BYTES`] is used up.
    Full,
    /// Opening failed (logged, counted); tried again at `retry_at`.
    Failed { retry_at: Instant },
}

/// One container's learning data.
pub(crate) struct Learner {
    dir: PathBuf,
    stem: String,
    segment: u32,
    file: LearnFile,
    /// Bytes this container may still write.
    budget: u64,
}

impl Learner {
    /// Starts learning into `<learn_root>/<workload>/`. An error (logged by
    /// the caller, counted) leaves the learner retrying later.
    pub(crate) fn start(
        learn_root: &Path,
        key: &str,
        container_id: &str,
        cgroup_id: u64,
    ) -> (Learner, Result<(), String>) {
        let dir = learn_root.join(folder_name(key));
        let short = &container_id[..container_id.len().min(12)];
        let stem = format!("{short}-{cgroup_id}");
        // Learning that resumes (after a completeness check) starts a new
        // segment: earlier ones stay whole.
        let segment = (0..)
            .find(|i| !dir.join(segment_name(&stem, *i)).exists())
            .unwrap_or(0);
        let mut l = Learner {
            budget: LEARN_MAX_BYTES.saturating_sub(dir_bytes(&dir)),
            dir,
            stem,
            segment,
            file: LearnFile::Full,
        };
        let r = l.open();
        (l, r)
    }

    fn open(&mut self) -> Result<(), String> {
        if self.budget == 0 {
            self.file = LearnFile::Full;
            return Ok(());
        }
        match open_segment(&self.dir, &self.stem, self.segment) {
            Ok(f) => {
                self.file = LearnFile::Open {
                    wr: BufWriter::with_capacity(64 << 10, f),
                    opened: Instant::now(),
                };
                Ok(())
            }
            Err(e) => {
                self.file = LearnFile::Failed {
                    retry_at: Instant::now() + RETRY_AFTER,
                };
                Err(e)
            }
        }
    }

    /// Appends one `.sc` line (dropped when full or failed).
    pub(crate) fn write(&mut self, line: &[u8]) {
        let LearnFile::Open { wr, .. } = &mut self.file else {
            return;
        };
        let n = line.len() as u64;
        if n > self.budget || wr.write_all(line).is_err() {
            // Full (or unwritable): learning goes on with what is there.
            let _ = wr.flush();
            self.file = LearnFile::Full;
        } else {
            self.budget -= n;
        }
    }

    /// Starts the next segment when this one is `segment` old; retries a
    /// failed open. Returns an error to log.
    pub(crate) fn tick(&mut self, segment: Duration) -> Result<(), String> {
        match &mut self.file {
            LearnFile::Open { wr, opened } if opened.elapsed() >= segment => {
                let _ = wr.flush();
                self.segment += 1;
                self.open()
            }
            LearnFile::Failed { retry_at } if Instant::now() >= *retry_at => self.open(),
            _ => Ok(()),
        }
    }

    pub(crate) fn finish(&mut self) {
        if let LearnFile::Open { wr, .. } = &mut self.file {
            let _ = wr.flush();
        }
        self.file = LearnFile::Full;
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
