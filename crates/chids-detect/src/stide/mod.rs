//! STIDE, the classic baseline (Forrest et al. 1996, "A sense of self for
//! Unix processes"), in the LID-DS variant, scored over the same time
//! windows as chids so that the two can be compared window by window.
//!
//! - Database: every length-n sequence of system calls seen in training.
//!   Sequences are taken per thread (each thread's own calls, in file
//!   order), as Forrest took them per process and LID-DS per thread: the
//!   interleaving of threads is scheduling noise, not behaviour. Each call
//!   counts once (its enter event, `>`), under the mode's node name
//!   ([`Mode::node_name`]), so modern STIDE sees `openat` as `open` too.
//! - Score of a sequence: the share of mismatches (sequences not in the
//!   database) among the last L sequences of the recording, L = the
//!   locality frame (LID-DS: mismatch count / L).
//! - Score of a time window: the largest sequence score in it; a window
//!   where no sequence ends has no score (like chids's empty windows).
//! - Thresholds: theta × the largest window score over held-out training
//!   recordings (the last 20 %, at least one when there are two or more),
//!   whose sequences are NOT in the database, as LID-DS calibrates on its
//!   validation set. All training sequences would score 0 against a
//!   database that holds them.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};

use crate::model::bundle::{
    check_common, read_baseline_json, save_bundle, BASELINE_FILE, FORMAT_VERSION, KIND,
};
use crate::model::BundleError;
use crate::scored::ScoredRecording;
use crate::train::{read_warnings, Progress, Step};
use chids_core::features::too_many_windows;
use chids_core::mode::Mode;
use chids_core::source::{EventSource, ReadOptions, SourceError};
use chids_core::window::WindowStats;

/// `baseline.json`'s `detector` for STIDE bundles.
pub(crate) const DETECTOR: &str = "stide";
/// The sequence database beside `baseline.json`.
pub(crate) const SEQUENCES_FILE: &str = "stide_sequences.json";
pub const DEFAULT_LENGTH: usize = 6;
pub const DEFAULT_FRAME: usize = 20;
/// Id of a system call the database never saw: no stored sequence holds it.
pub(crate) const UNKNOWN: u32 = u32::MAX;

/// How STIDE reads and scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StideSettings {
    pub mode: Mode,
    pub window_ns: u64,
    /// Sequence length n.
    pub length: usize,
    /// Locality frame L: scores are mismatches among the last L sequences / L.
    pub frame: usize,
}

impl Default for StideSettings {
    fn default() -> Self {
        StideSettings {
            mode: Mode::Modern,
            window_ns: 1_000_000_000,
            length: DEFAULT_LENGTH,
            frame: DEFAULT_FRAME,
        }
    }
}

/// What training saw.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StideTrainingInfo {
    /// Recordings whose sequences make the database.
    pub recordings: Vec<String>,
    /// Recordings scored to set the thresholds.
    pub held_out: Vec<String>,
    pub sequences: u64,
    /// Largest window score over the held-out recordings (0 without any).
    pub max_score: f64,
}

/// A trained STIDE model.
#[derive(Clone, Debug)]
pub struct StideModel {
    pub settings: StideSettings,
    /// Names table, sorted; sequences hold indexes into it.
    pub syscalls: Vec<String>,
    pub sequences: FxHashSet<Box<[u32]>>,
    pub thetas: Vec<f64>,
    pub thresholds: Vec<f64>,
    pub training: StideTrainingInfo,
    /// The threshold alarms use by default (see `crate::calibrate`).
    pub operating_threshold: Option<f64>,
    pub calibration: Option<crate::calibrate::Calibration>,
}

#[derive(Debug, thiserror::Error)]
pub enum StideError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("no usable event in any training recording")]
    NoEvents,
    #[error("no sequence of {0} system calls in any training recording (too short?)")]
    NoSequences(usize),
    #[error("sequence length and locality frame must be at least 1, the window 1ms to 1h")]
    BadSettings,
}

/// `baseline.json` of a STIDE bundle.
#[derive(Serialize, Deserialize)]
struct StideBaselineFile {
    kind: String,
    format_version: u32,
    detector: String,
    chids_version: String,
    mode: Mode,
    window_ns: u64,
    sequence_length: usize,
    locality_frame: usize,
    thetas: Vec<f64>,
    thresholds: Vec<f64>,
    training: StideTrainingInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    operating_threshold: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    calibration: Option<crate::calibrate::Calibration>,
}

impl StideBaselineFile {
    /// What must hold for scoring to mean anything.
    fn check(&self) -> Result<(), String> {
        check_common(self.window_ns, &self.thetas, &self.thresholds)?;
        if self.sequence_length == 0 || self.locality_frame == 0 {
            return Err("sequence_length and locality_frame must be positive".into());
        }
        let m = self.training.max_score;
        if !(m.is_finite() && m >= 0.0) {
            return Err(format!(
                "training.max_score {m} is not a finite number >= 0"
            ));
        }
        Ok(())
    }
}

/// `stide_sequences.json`: a names table and the sequences as sorted lists
/// of indexes into it. Plain data: loading it runs nothing.
#[derive(Serialize, Deserialize)]
struct SequencesFile {
    syscalls: Vec<String>,
    sequences: Vec<Vec<u32>>,
}

mod stream;

pub(crate) use stream::StideStream;
use stream::{Names, Sequencer};

/// The sequences of one training recording, in its own ids.
struct RecordingSequences {
    names: Vec<Box<str>>,
    sequences: FxHashSet<Box<[u32]>>,
    events: u64,
}

fn collect_sequences(
    source: &dyn EventSource,
    settings: &StideSettings,
    read: &ReadOptions,
) -> Result<(RecordingSequences, Vec<String>), SourceError> {
    let mut names = Names::default();
    let mut sequencer = Sequencer::new(settings.mode, settings.length);
    let mut sequences = FxHashSet::default();
    let stats = source.read(read, &mut |event| {
        if let Some(seq) = sequencer.push(event, |n| names.id(n)) {
            if !sequences.contains(seq) {
                sequences.insert(seq.into());
            }
        }
        Ok(())
    })?;
    let warnings = read_warnings(source, &stats, &WindowStats::default(), stats.events > 0);
    Ok((
        RecordingSequences {
            names: names.names,
            sequences,
            events: stats.events,
        },
        warnings,
    ))
}

/// Result of [`train`].
pub struct StideTrained {
    pub model: StideModel,
    pub warnings: Vec<String>,
    /// The held-out recordings' scores (normal data the database lacks).
    pub held_out_scores: Vec<ScoredRecording>,
}

/// Builds the database from all but the held-out recordings, then sets the
/// thresholds from the held-out ones' scores.
pub fn train(
    recordings: &[Box<dyn EventSource>],
    settings: StideSettings,
    thetas: &[f64],
    read: &ReadOptions,
    progress: &Progress<'_>,
) -> Result<StideTrained, StideError> {
    if settings.length == 0
        || settings.frame == 0
        || chids_core::features::check_window_ns(settings.window_ns).is_err()
    {
        return Err(StideError::BadSettings);
    }
    progress(Step::Stage {
        name: "stide: sequences",
        total: recordings.len(),
    });
    let collected: Vec<Result<(RecordingSequences, Vec<String>), SourceError>> = recordings
        .par_iter()
        .map(|r| {
            let out = collect_sequences(r.as_ref(), &settings, read);
            progress(Step::Recording {
                name: &r.info().name,
            });
            out
        })
        .collect();
    let collected: Vec<(RecordingSequences, Vec<String>)> =
        collected.into_iter().collect::<Result<_, _>>()?;
    let mut warnings = Vec::new();
    let mut usable = Vec::new();
    for (i, (seqs, w)) in collected.iter().enumerate() {
        warnings.extend(w.iter().cloned());
        if seqs.events > 0 {
            usable.push(i);
        }
    }
    if usable.is_empty() {
        return Err(StideError::NoEvents);
    }
    // Hold out the last 20 % (by discovery order, which is sorted, so the
    // split is the same on every run).
    let held = if usable.len() >= 2 {
        (usable.len() as f64 * 0.2).round().max(1.0) as usize
    } else {
        0
    };
    let (db_part, held_part) = usable.split_at(usable.len() - held);

    // The names table: every name of the database recordings, sorted, so
    // ids do not depend on which thread finished first.
    let mut syscalls: Vec<String> = db_part
        .iter()
        .flat_map(|&i| collected[i].0.names.iter().map(|n| n.to_string()))
        .collect();
    syscalls.sort();
    syscalls.dedup();
    let global: FxHashMap<&str, u32> = syscalls
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i as u32))
        .collect();
    let mut sequences: FxHashSet<Box<[u32]>> = FxHashSet::default();
    for &i in db_part {
        let rec = &collected[i].0;
        let remap: Vec<u32> = rec.names.iter().map(|n| global[&**n]).collect();
        for seq in &rec.sequences {
            sequences.insert(seq.iter().map(|&id| remap[id as usize]).collect());
        }
    }
    if sequences.is_empty() {
        return Err(StideError::NoSequences(settings.length));
    }
    let mut model = StideModel {
        settings,
        syscalls,
        sequences,
        thetas: thetas.to_vec(),
        thresholds: vec![0.0; thetas.len()],
        training: StideTrainingInfo {
            recordings: db_part
                .iter()
                .map(|&i| recordings[i].info().name.clone())
                .collect(),
            held_out: held_part
                .iter()
                .map(|&i| recordings[i].info().name.clone())
                .collect(),
            sequences: 0,
            max_score: 0.0,
        },
        operating_threshold: None,
        calibration: None,
    };
    model.training.sequences = model.sequences.len() as u64;
    let held_refs: Vec<&dyn EventSource> =
        held_part.iter().map(|&i| recordings[i].as_ref()).collect();
    let scored = score_refs(&held_refs, &model, read, "stide: thresholds", progress)?;
    let max_score = scored
        .iter()
        .flat_map(|r| r.errors.iter().flatten().copied())
        .fold(0.0f64, f64::max);
    model.training.max_score = max_score;
    model.thresholds = thetas.iter().map(|t| t * max_score).collect();
    Ok(StideTrained {
        model,
        warnings,
        held_out_scores: scored,
    })
}

impl StideModel {
    /// Scores one recording window by window.
    pub fn score(
        &self,
        source: &dyn EventSource,
        read: &ReadOptions,
    ) -> Result<ScoredRecording, SourceError> {
        let mut stream = StideStream::for_file(self);
        let mut features = Vec::new();
        let mut errors = Vec::new();
        let stats = source.read(read, &mut |event| {
            stream
                .push_window(event, &mut |w, e, _| {
                    features.push(w);
                    errors.push(e)
                })
                .map_err(|e| too_many_windows(source, self.settings.window_ns, e))
        })?;
        let wstats = stream.finish_windows(&mut |w, e, _| {
            features.push(w);
            errors.push(e)
        });
        if wstats.void {
            features.clear();
            errors.clear();
        }
        Ok(ScoredRecording {
            info: source.info().clone(),
            warnings: read_warnings(source, &stats, &wstats, !features.is_empty()),
            events: stats.events,
            evidence: crate::detect::evidence(self.settings.mode, &features),
            out_of_order: wstats.out_of_order(),
            windows: features,
            errors,
        })
    }

    /// Scores every recording in parallel; results keep the input order.
    pub fn score_all(
        &self,
        recordings: &[Box<dyn EventSource>],
        read: &ReadOptions,
        stage: &str,
        progress: &Progress<'_>,
    ) -> Result<Vec<ScoredRecording>, SourceError> {
        let refs: Vec<&dyn EventSource> = recordings.iter().map(|r| r.as_ref()).collect();
        score_refs(&refs, self, read, stage, progress)
    }

    /// The default threshold ([`Detector::operating_threshold`]).
    pub fn operating_threshold(&self) -> f64 {
        crate::Detector::operating_threshold(self)
    }

    /// The threshold for `theta` ([`Detector::threshold`]; the largest
    /// held-out score is the scale).
    pub fn threshold(&self, theta: f64) -> f64 {
        crate::Detector::threshold(self, theta)
    }

    /// Writes `baseline.json` and `stide_sequences.json` into `dir`.
    pub fn save(&self, dir: &Path) -> Result<(), BundleError> {
        let mut sequences: Vec<Vec<u32>> = self.sequences.iter().map(|s| s.to_vec()).collect();
        sequences.sort_unstable();
        let seq_file = SequencesFile {
            syscalls: self.syscalls.clone(),
            sequences,
        };
        let seq_json = serde_json::to_vec(&seq_file).expect("sequences serialise");
        let file = StideBaselineFile {
            kind: KIND.into(),
            format_version: FORMAT_VERSION,
            detector: DETECTOR.into(),
            chids_version: env!("CARGO_PKG_VERSION").into(),
            mode: self.settings.mode,
            window_ns: self.settings.window_ns,
            sequence_length: self.settings.length,
            locality_frame: self.settings.frame,
            thetas: self.thetas.clone(),
            thresholds: self.thresholds.clone(),
            training: self.training.clone(),
            operating_threshold: self.operating_threshold,
            calibration: self.calibration.clone(),
        };
        save_bundle(
            dir,
            &file,
            StideBaselineFile::check,
            SEQUENCES_FILE,
            &seq_json,
        )
    }

    /// Loads and checks a STIDE bundle.
    pub fn load(dir: &Path) -> Result<StideModel, BundleError> {
        let json_path = dir.join(BASELINE_FILE);
        let invalid = |path: &PathBuf, message: String| BundleError::Invalid {
            path: path.clone(),
            message,
        };
        let (value, detector) = read_baseline_json(dir)?;
        if detector != DETECTOR {
            return Err(invalid(
                &json_path,
                format!("this is a {detector:?} baseline, not a STIDE one"),
            ));
        }
        let file: StideBaselineFile = serde_json::from_value(value)
            .map_err(|e| invalid(&json_path, format!("damaged baseline ({e})")))?;
        file.check().map_err(|m| invalid(&json_path, m))?;
        let seq_path = dir.join(SEQUENCES_FILE);
        let bytes = std::fs::read(&seq_path).map_err(|source| BundleError::Io {
            path: seq_path.clone(),
            source,
        })?;
        let seqs: SequencesFile = serde_json::from_slice(&bytes)
            .map_err(|e| invalid(&seq_path, format!("damaged sequence database ({e})")))?;
        let n = seqs.syscalls.len();
        let mut sequences = FxHashSet::default();
        for (i, s) in seqs.sequences.into_iter().enumerate() {
            if s.len() != file.sequence_length || s.iter().any(|&id| id as usize >= n) {
                return Err(invalid(
                    &seq_path,
                    format!(
                        "sequence {i} has the wrong length or names a system call outside the table"
                    ),
                ));
            }
            sequences.insert(s.into_boxed_slice());
        }
        Ok(StideModel {
            settings: StideSettings {
                mode: file.mode,
                window_ns: file.window_ns,
                length: file.sequence_length,
                frame: file.locality_frame,
            },
            syscalls: seqs.syscalls,
            sequences,
            thetas: file.thetas,
            thresholds: file.thresholds,
            training: file.training,
            operating_threshold: file.operating_threshold.filter(|t| t.is_finite()),
            calibration: file.calibration,
        })
    }
}

fn score_refs(
    recordings: &[&dyn EventSource],
    model: &StideModel,
    read: &ReadOptions,
    stage: &str,
    progress: &Progress<'_>,
) -> Result<Vec<ScoredRecording>, SourceError> {
    crate::train::map_recordings(recordings, stage, progress, |r| model.score(r, read))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chids_core::event::{Direction, Event, Format, Labels, RecordingInfo};
    use chids_core::source::{ReadStats, Sink};

    /// A recording held in memory: (time in µs, tid, dir, syscall).
    struct Mem {
        info: RecordingInfo,
        events: Vec<(u64, i64, Direction, &'static str)>,
    }

    impl Mem {
        fn boxed(
            name: &str,
            events: Vec<(u64, i64, Direction, &'static str)>,
        ) -> Box<dyn EventSource> {
            Box::new(Mem {
                info: RecordingInfo {
                    name: name.into(),
                    path: name.into(),
                    format: Format::SysdigText,
                    labels: Labels::default(),
                },
                events,
            })
        }
    }

    impl EventSource for Mem {
        fn info(&self) -> &RecordingInfo {
            &self.info
        }
        fn read(&self, _: &ReadOptions, sink: &mut Sink<'_>) -> Result<ReadStats, SourceError> {
            for &(ts_us, tid, dir, syscall) in &self.events {
                sink(&Event {
                    // Test times are in µs: windows are at least 1 ms.
                    ts_ns: ts_us * 1_000,
                    tid,
                    pid: tid,
                    process: "p",
                    dir,
                    syscall,
                    info: "",
                    params: Default::default(),
                })?;
            }
            Ok(ReadStats {
                events: self.events.len() as u64,
                ..ReadStats::default()
            })
        }
    }

    const E: Direction = Direction::Enter;
    const X: Direction = Direction::Exit;

    fn settings(length: usize, frame: usize) -> StideSettings {
        StideSettings {
            mode: Mode::Modern,
            window_ns: 1_000_000,
            length,
            frame,
        }
    }

    fn model(seqs: &[&[&str]], s: StideSettings) -> StideModel {
        let mut syscalls: Vec<String> = seqs
            .iter()
            .flat_map(|q| q.iter().map(|n| n.to_string()))
            .collect();
        syscalls.sort();
        syscalls.dedup();
        let id = |n: &str| syscalls.iter().position(|x| x == n).unwrap() as u32;
        let sequences = seqs
            .iter()
            .map(|q| q.iter().map(|n| id(n)).collect())
            .collect();
        StideModel {
            settings: s,
            sequences,
            syscalls: syscalls.clone(),
            thetas: vec![1.0],
            thresholds: vec![0.0],
            training: StideTrainingInfo {
                recordings: vec![],
                held_out: vec![],
                sequences: 0,
                max_score: 0.0,
            },
            operating_threshold: None,
            calibration: None,
        }
    }

    #[test]
    fn sequences_are_per_thread_enter_events_with_family_names() {
        let rec = Mem::boxed(
            "r",
            vec![
                (0, 1, E, "read"),
                (1, 2, E, "write"),
                (2, 1, X, "read"),
                (3, 1, E, "openat"),
                (4, 2, E, "close"),
                (5, 1, E, "read"),
            ],
        );
        let (seqs, _) =
            collect_sequences(rec.as_ref(), &settings(2, 20), &ReadOptions::default()).unwrap();
        let named: std::collections::BTreeSet<Vec<&str>> = seqs
            .sequences
            .iter()
            .map(|s| s.iter().map(|&i| &*seqs.names[i as usize]).collect())
            .collect();
        let want: std::collections::BTreeSet<Vec<&str>> = [
            vec!["read", "open"],
            vec!["open", "read"],
            vec!["write", "close"],
        ]
        .into_iter()
        .collect();
        assert_eq!(named, want);
    }

    #[test]
    fn locality_frame_scores_per_window() {
        // Database: a→b only. Thread 1 runs a b a b c b, n = 2, L = 4.
        // Sequences (ending at events 1..5): ab ✓, ba ✗, ab ✓, bc ✗, cb ✗.
        // Frame mismatch counts after each: 0, 1, 1, 2, 3 → scores /4.
        // Windows of 1000 µs: events at 0,500 | 1000,1500 | 2500,2600.
        let m = model(&[&["a", "b"]], settings(2, 4));
        let rec = Mem::boxed(
            "r",
            vec![
                (0, 1, E, "a"),
                (500, 1, E, "b"),
                (1000, 1, E, "a"),
                (1500, 1, E, "b"),
                (2500, 1, E, "c"),
                (2600, 1, E, "b"),
            ],
        );
        let s = m.score(rec.as_ref(), &ReadOptions::default()).unwrap();
        assert_eq!(s.errors, vec![Some(0.0), Some(0.25), Some(0.75)]);
        assert_eq!(
            s.windows.iter().map(|w| w.start_ns).collect::<Vec<_>>(),
            vec![0, 1_000_000, 2_000_000]
        );
    }

    #[test]
    fn frame_forgets_old_mismatches_and_windows_without_sequences_have_no_score() {
        // n = 1, L = 2: scores are the share of unknown calls among the
        // last two. x y a a → 1/2, 2/2, 1/2, 0.
        let m = model(&[&["a"]], settings(1, 2));
        let rec = Mem::boxed(
            "r",
            vec![
                (0, 1, E, "x"),
                (100, 1, E, "y"),
                (1100, 1, X, "y"),
                (2100, 1, E, "a"),
                (2200, 1, E, "a"),
            ],
        );
        let s = m.score(rec.as_ref(), &ReadOptions::default()).unwrap();
        assert_eq!(s.errors, vec![Some(1.0), None, Some(0.5)]);
    }

    #[test]
    fn training_holds_out_the_last_fifth_for_the_thresholds() {
        let normal = |name: &str, extra: &'static str| {
            Mem::boxed(
                name,
                vec![
                    (0, 1, E, "a"),
                    (10, 1, E, "b"),
                    (20, 1, E, "a"),
                    (30, 1, E, extra),
                ],
            )
        };
        let recs = vec![
            normal("r0", "b"),
            normal("r1", "b"),
            normal("r2", "b"),
            normal("r3", "b"),
            normal("r4", "z"),
        ];
        let t = train(
            &recs,
            settings(2, 4),
            &[0.5, 1.0],
            &ReadOptions::default(),
            &|_| {},
        )
        .unwrap();
        let m = t.model;
        assert_eq!(m.training.held_out, vec!["r4".to_string()]);
        // Database {ab, ba}: r4's "az" is the one mismatch in a frame of 4.
        assert_eq!(m.training.sequences, 2);
        assert_eq!(m.training.max_score, 0.25);
        assert_eq!(m.thresholds, vec![0.125, 0.25]);
        assert!(!m.syscalls.contains(&"z".to_string()));
    }

    #[test]
    fn save_load_round_trip_and_foreign_bundles() {
        let dir = tempfile::tempdir().unwrap();
        // A bundle needs a loadable window (>= 1 ms).
        let saved = StideSettings {
            window_ns: 1_000_000_000,
            ..settings(2, 4)
        };
        let m = model(&[&["a", "b"], &["b", "a"]], saved);
        m.save(dir.path()).unwrap();
        let back = StideModel::load(dir.path()).unwrap();
        assert_eq!(back.sequences, m.sequences);
        assert_eq!(back.syscalls, m.syscalls);
        assert_eq!(back.settings, m.settings);
        // A STIDE bundle is not an autoencoder bundle.
        let err = crate::model::Bundle::load(dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"stide\" baseline"), "{err}");
        // A damaged database names its file.
        std::fs::write(
            dir.path().join(SEQUENCES_FILE),
            r#"{"syscalls":["a"],"sequences":[[0,7]]}"#,
        )
        .unwrap();
        let err = StideModel::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains(SEQUENCES_FILE), "{err}");
        // An autoencoder bundle (no "detector": the original format) is not STIDE.
        std::fs::write(
            dir.path().join(BASELINE_FILE),
            r#"{"kind":"chids-baseline","format_version":1}"#,
        )
        .unwrap();
        let err = StideModel::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("\"chids\" baseline, not a STIDE one"), "{err}");
    }
}
