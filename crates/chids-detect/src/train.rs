//! Training a baseline (SPEC §4, §6): two passes over the training
//! recordings (training elements, then anomaly vectors), the autoencoder,
//! and the thresholds.

use rayon::prelude::*;

use crate::model::bundle::TrainingInfo;
use crate::model::{thresholds, Autoencoder, Bundle, ModelError, Scoring, TrainConfig};
use chids_core::features::{
    check_window_ns, encode_recording, read_recording, window_count, EncodedRecording, Settings,
    TrainingElements, WindowFeatures,
};
use chids_core::source::{EventSource, ReadOptions, ReadStats, SourceError};
use chids_core::window::WindowStats;

/// What to train and how.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    pub settings: Settings,
    pub model: TrainConfig,
    pub thetas: Vec<f64>,
    pub read: ReadOptions,
}

/// Progress reports for long work (the library never prints).
#[derive(Clone, Debug)]
pub enum Step<'a> {
    /// A stage over `total` recordings begins.
    Stage { name: &'a str, total: usize },
    /// One recording of the current stage is done.
    Recording { name: &'a str },
    /// One training epoch is done.
    Epoch {
        epoch: usize,
        total: usize,
        loss: f64,
        val_loss: Option<f64>,
    },
}

pub type Progress<'p> = dyn Fn(Step<'_>) + Sync + 'p;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("{0}")]
    BadWindow(String),
    #[error("no usable event in any training recording")]
    NoEvents,
    #[error("training needs at least two non-empty windows, found {0}")]
    TooFewWindows(usize),
    #[error("training the autoencoder: {0}")]
    Model(#[from] ModelError),
}

/// A training run's result, with what it passed over.
pub struct Trained {
    pub bundle: Bundle,
    /// One line per recording skipped or partly unreadable.
    pub warnings: Vec<String>,
    /// Recordings actually used.
    pub used: usize,
}

/// Runs `f` on every recording in parallel, as one progress stage. Results
/// keep the input order whatever the thread count; the first error in input
/// order is returned.
pub(crate) fn map_recordings<'a, R: Send>(
    recordings: &[&'a dyn EventSource],
    stage: &str,
    progress: &Progress<'_>,
    f: impl Fn(&'a dyn EventSource) -> Result<R, SourceError> + Sync,
) -> Result<Vec<R>, SourceError> {
    progress(Step::Stage {
        name: stage,
        total: recordings.len(),
    });
    // Largest file first: a long recording that happens to come last in
    // the input would otherwise start only after the small ones before it,
    // and the run waits for it alone at the end.
    let mut order: Vec<usize> = (0..recordings.len()).collect();
    order.sort_by_cached_key(|&i| {
        std::cmp::Reverse(std::fs::metadata(&recordings[i].info().path).map_or(0, |m| m.len()))
    });
    let mut results: Vec<(usize, Result<R, SourceError>)> = order
        .par_iter()
        .map(|&i| {
            let r = recordings[i];
            let out = f(r);
            progress(Step::Recording {
                name: &r.info().name,
            });
            (i, out)
        })
        .collect();
    results.sort_by_key(|&(i, _)| i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Warnings about a recording's read: malformed lines, or nothing usable.
pub(crate) fn read_warnings(
    source: &dyn EventSource,
    read: &ReadStats,
    windows: &WindowStats,
    has_windows: bool,
) -> Vec<String> {
    let path = source.info().path.display();
    let mut out = Vec::new();
    if read.malformed > 0 {
        let (pos, why) = read
            .first_malformed
            .clone()
            .unwrap_or((chids_core::source::Position::Whole, String::new()));
        out.push(format!(
            "{path}: skipped {} malformed record(s) (first at {pos}: {why})",
            read.malformed
        ));
    }
    if windows.out_of_range > 0 {
        out.push(format!(
            "{path}: dropped {} event(s) whose time jumps more than {} windows ahead (corrupt timestamps?)",
            windows.out_of_range,
            chids_core::window::MAX_JUMP_WINDOWS
        ));
    }
    if windows.out_of_order() > 0 {
        out.push(format!(
            "{path}: dropped {} event(s) out of time order: {} earlier than the first event, {} more than two windows late (shuffled or backwards timestamps?)",
            windows.out_of_order(),
            windows.before_start,
            windows.late
        ));
    }
    if windows.capped_windows > 0 {
        out.push(format!(
            "{path}: {} window(s) had more than {} distinct unseen names; their USI/UAI are upper estimates",
            windows.capped_windows,
            chids_core::ssg::MAX_DISTINCT_PER_WINDOW
        ));
    }
    if read.events == 0 {
        out.push(format!("{path}: no usable event; recording skipped"));
    } else if !has_windows {
        out.push(format!("{path}: yields no window (its last event is earlier than its first); recording skipped"));
    }
    out
}

/// Trains a baseline on `recordings` (no operating threshold; see
/// [`train_calibrated`]).
pub fn train(
    recordings: &[Box<dyn EventSource>],
    options: &TrainOptions,
    progress: &Progress<'_>,
) -> Result<Trained, TrainError> {
    let recordings: Vec<&dyn EventSource> = recordings.iter().map(|r| r.as_ref()).collect();
    train_refs(&recordings, options, progress).map(|(trained, _)| trained)
}

/// Trains a baseline and sets its operating threshold for a false-alarm
/// budget (alarm windows per hour of normal activity) from normal data the
/// model did not learn from: `validation` when given; else, in modern
/// mode, whole training recordings held out by seed
/// ([`crate::calibrate::held_out`]), never windows of one recording. Compat
/// mode trains on every training recording, as the reference does, and
/// without validation calibrates on them (in-sample, optimistic).
pub fn train_calibrated(
    recordings: &[Box<dyn EventSource>],
    validation: Option<&[Box<dyn EventSource>]>,
    options: &TrainOptions,
    budget_per_hour: f64,
    progress: &Progress<'_>,
) -> Result<Trained, TrainError> {
    let all: Vec<&dyn EventSource> = recordings.iter().map(|r| r.as_ref()).collect();
    let held = match (validation, options.settings.mode) {
        (None, chids_core::mode::Mode::Modern) => {
            crate::calibrate::held_out(all.len(), options.model.seed)
        }
        _ => Vec::new(),
    };
    let (fit, kept): (Vec<_>, Vec<_>) =
        all.iter().enumerate().partition(|(i, _)| !held.contains(i));
    let fit: Vec<&dyn EventSource> = fit.into_iter().map(|(_, &r)| r).collect();
    let kept: Vec<&dyn EventSource> = kept.into_iter().map(|(_, &r)| r).collect();
    let (mut trained, scans) = train_refs(&fit, options, progress)?;
    // Never alarm on a window like any training window (theta 1.0).
    let floor = trained.bundle.training.max_error;
    // Modern mode folds the names normal calibration data uses into the
    // model rather than let them lift the threshold (see `crate::fold`).
    let modern = options.settings.mode == chids_core::mode::Mode::Modern;
    let mut calibrate_on = |recs: &[&dyn EventSource], source: &str| {
        if modern {
            crate::fold::score_folding(&mut trained.bundle, recs, source, &options.read, progress)
        } else {
            score_normal(&trained.bundle, recs, &options.read, progress)
        }
    };
    let (source, scored) = match validation {
        Some(v) => {
            let v: Vec<&dyn EventSource> = v.iter().map(|r| r.as_ref()).collect();
            ("validation", calibrate_on(&v, "validation")?)
        }
        None if !kept.is_empty() => (
            "held-out training",
            calibrate_on(&kept, "held-out training")?,
        ),
        // The training recordings themselves: scored from what the second
        // pass kept, not read a third time.
        None => match scans {
            Some(scans) => {
                progress(Step::Stage {
                    name: "calibration",
                    total: fit.len(),
                });
                let scored = fit
                    .iter()
                    .zip(scans)
                    .map(|(&r, scan)| {
                        progress(Step::Recording {
                            name: &r.info().name,
                        });
                        crate::scored::scored(
                            r,
                            &trained.bundle,
                            &scan.read,
                            &scan.windows,
                            scan.features,
                        )
                    })
                    .collect();
                ("training", scored)
            }
            None => (
                "training",
                score_normal(&trained.bundle, &fit, &options.read, progress)?,
            ),
        },
    };
    let warnings = apply_threshold(&mut trained.bundle, &scored, source, budget_per_hour, floor);
    trained.warnings.extend(warnings);
    Ok(trained)
}

/// Scores normal recordings for calibration.
fn score_normal(
    bundle: &Bundle,
    recordings: &[&dyn EventSource],
    read: &ReadOptions,
    progress: &Progress<'_>,
) -> Result<Vec<crate::scored::ScoredRecording>, SourceError> {
    map_recordings(recordings, "calibration", progress, |r| {
        crate::scored::score_one(r, bundle, read, false)
    })
}

/// Scores `recordings` (normal) with the bundle and sets its operating
/// threshold from them, never below `floor`. Returns warnings (too few
/// windows).
pub fn set_operating_threshold(
    bundle: &mut Bundle,
    recordings: &[&dyn EventSource],
    source: &str,
    budget_per_hour: f64,
    floor: f64,
    read: &ReadOptions,
    progress: &Progress<'_>,
) -> Result<Vec<String>, SourceError> {
    let scored = score_normal(bundle, recordings, read, progress)?;
    Ok(apply_threshold(
        bundle,
        &scored,
        source,
        budget_per_hour,
        floor,
    ))
}

/// Sets the operating threshold from scored normal recordings; returns
/// warnings (too few windows).
fn apply_threshold(
    bundle: &mut Bundle,
    scored: &[crate::scored::ScoredRecording],
    source: &str,
    budget_per_hour: f64,
    floor: f64,
) -> Vec<String> {
    let (threshold, calibration) = crate::scored::calibrate_scored(
        scored,
        source,
        bundle.settings.window_ns,
        budget_per_hour,
        floor,
    );
    let mut warnings: Vec<String> = scored.iter().flat_map(|r| r.warnings.clone()).collect();
    if (calibration.windows as usize) < crate::calibrate::MIN_WINDOWS {
        warnings.push(format!(
            "only {} window(s) to calibrate on ({} {} recording(s)); too few to fit a tail, so the operating threshold is the larger of their largest score and theta 1.0: give more normal data (--vd)",
            calibration.windows,
            calibration.recordings.len(),
            source
        ));
    }
    bundle.operating_threshold = Some(threshold);
    bundle.calibration = Some(calibration);
    warnings
}

/// A fit recording as the second training pass saw it: what scoring it
/// again with the finished bundle needs, so that calibrating on the
/// training recordings does not read them again.
struct FitScan {
    read: ReadStats,
    windows: WindowStats,
    features: Vec<WindowFeatures>,
}

/// The first pass's training elements over every recording with events,
/// the indexes of those recordings, and the read warnings.
fn merge_first_pass(
    recordings: &[&dyn EventSource],
    first: &[EncodedRecording],
) -> Result<(TrainingElements, Vec<usize>, Vec<String>), TrainError> {
    let mut warnings = Vec::new();
    let mut elements = TrainingElements::default();
    let mut usable = Vec::new();
    for (i, (&source, scan)) in recordings.iter().zip(first).enumerate() {
        warnings.extend(read_warnings(
            source,
            &scan.read,
            &scan.windows,
            !scan.windows.void,
        ));
        if scan.read.events == 0 {
            if recordings.len() == 1 {
                return Err(SourceError::new(
                    &source.info().path,
                    chids_core::source::Position::Whole,
                    "no usable event",
                )
                .into());
            }
            continue;
        }
        if scan
            .elements
            .seen_args
            .contains(chids_core::features::OVERFLOW_ARG)
        {
            warnings.push(format!(
                "{}: more than {} distinct arguments; training kept that many and folded the rest into one node (a flood of names: possible poisoning)",
                source.info().path.display(),
                chids_core::features::MAX_TRAINING_ARGS
            ));
        }
        elements
            .seen_syscalls
            .extend(scan.elements.seen_syscalls.iter().cloned());
        elements
            .seen_args
            .extend(scan.elements.seen_args.iter().cloned());
        elements.max_freq = elements.max_freq.max(scan.elements.max_freq);
        usable.push(i);
    }
    if usable.is_empty() || elements.max_freq == 0 {
        return Err(TrainError::NoEvents);
    }
    Ok((elements, usable, warnings))
}

/// Learns the path patterns of one-off names into `elements`; returns
/// the one-off names they cover (which leave the bundle).
fn learn_patterns(
    elements: &mut TrainingElements,
    first: &[EncodedRecording],
    usable: &[usize],
) -> Vec<String> {
    let evidence: Vec<_> = usable
        .iter()
        .map(|&i| first[i].pattern_evidence())
        .collect();
    elements.patterns = chids_core::patterns::learn(&evidence);
    let mut uses: std::collections::BTreeMap<&str, usize> = Default::default();
    for e in &evidence {
        for a in &e.args {
            *uses.entry(a.as_str()).or_default() += 1;
        }
    }
    uses.into_iter()
        .filter(|&(a, n)| n == 1 && chids_core::patterns::covering(&elements.patterns, a).is_some())
        .map(|(a, _)| a.to_string())
        .collect()
}

/// Second pass: each usable recording's windows scored against the
/// elements, from memory where the first pass kept the recording; every
/// recording with events, in input order.
fn second_pass(
    recordings: &[&dyn EventSource],
    first: Vec<EncodedRecording>,
    usable: &[usize],
    elements: &TrainingElements,
    options: &TrainOptions,
    progress: &Progress<'_>,
) -> Result<Vec<FitScan>, TrainError> {
    let settings = options.settings;
    progress(Step::Stage {
        name: "features (pass 2 of 2)",
        total: usable.len(),
    });
    let mut first: Vec<Option<EncodedRecording>> = first.into_iter().map(Some).collect();
    let todo: Vec<(usize, EncodedRecording)> = usable
        .iter()
        .filter_map(|&i| first[i].take().map(|e| (i, e)))
        .collect();
    let second: Vec<Result<(usize, FitScan), SourceError>> = todo
        .into_par_iter()
        .map(|(i, mut enc)| {
            let out = match enc.features(elements) {
                Some(features) => {
                    // As `read_recording` with the baseline counts them.
                    let mut windows = enc.windows;
                    windows.capped_windows += features.iter().filter(|w| w.capped).count() as u64;
                    Ok(FitScan {
                        read: enc.read,
                        windows,
                        features,
                    })
                }
                None => read_recording(
                    recordings[i],
                    settings,
                    Some(elements),
                    false,
                    &options.read,
                )
                .map(|r| FitScan {
                    read: r.read,
                    windows: r.windows,
                    features: r.features,
                }),
            };
            progress(Step::Recording {
                name: &recordings[i].info().name,
            });
            out.map(|scan| (i, scan))
        })
        .collect();
    // Every recording in input order; those without events have no window.
    let mut scans: Vec<Option<FitScan>> = first
        .into_iter()
        .map(|unused| {
            unused.map(|enc| FitScan {
                read: enc.read,
                windows: enc.windows,
                features: Vec::new(),
            })
        })
        .collect();
    for scanned in second {
        let (i, scan) = scanned?;
        scans[i] = Some(scan);
    }
    let scans: Vec<FitScan> = scans.into_iter().flatten().collect();
    Ok(scans)
}

/// Trains on `recordings`; also returns, per recording, what scoring it
/// with the bundle needs (`None` when the bundle's elements differ from
/// those the windows were scored with).
fn train_refs(
    recordings: &[&dyn EventSource],
    options: &TrainOptions,
    progress: &Progress<'_>,
) -> Result<(Trained, Option<Vec<FitScan>>), TrainError> {
    let settings = options.settings;
    check_window_ns(settings.window_ns).map_err(TrainError::BadWindow)?;
    let recordings = recordings.to_vec();
    let first = map_recordings(&recordings, "reading (pass 1 of 2)", progress, |r| {
        encode_recording(r, settings, &options.read)
    })?;
    let (elements, usable, warnings) = merge_first_pass(&recordings, &first)?;
    let mut elements = elements;
    let count_maxima =
        crate::rising::training_maxima(&recordings, &first, &usable, settings, &options.read)?;
    // Modern mode: directories of one-off names become pattern nodes.
    // Their one-off names leave the bundle afterwards (see below).
    let one_off = if settings.mode == chids_core::mode::Mode::Modern {
        learn_patterns(&mut elements, &first, &usable)
    } else {
        Vec::new()
    };

    let scans = second_pass(&recordings, first, &usable, &elements, options, progress)?;
    let windows: u64 = scans.iter().map(|r| window_count(&r.features)).sum();
    let vectors: Vec<[f64; 3]> = scans
        .iter()
        .flat_map(|r| {
            r.features
                .iter()
                .filter_map(|w| w.vector.map(|v| v.to_array()))
        })
        .collect();
    if vectors.len() < 2 {
        return Err(TrainError::TooFewWindows(vectors.len()));
    }

    let scoring = Scoring::fit(settings.mode, &vectors);
    let prepared: Vec<[f64; 3]> = vectors.iter().map(|v| scoring.prepare(v)).collect();
    let train_rows =
        prepared.len() - (prepared.len() as f64 * options.model.validation_split) as usize;
    let config = TrainConfig {
        epochs: Scoring::epochs(
            settings.mode,
            options.model.epochs,
            train_rows,
            options.model.batch_size,
        ),
        ..options.model.clone()
    };
    let epochs = config.epochs;
    let (model, report) = Autoencoder::fit(&prepared, &config, &mut |epoch, loss, val_loss| {
        progress(Step::Epoch {
            epoch,
            total: epochs,
            loss,
            val_loss,
        })
    })?;
    let max_error = vectors
        .iter()
        .map(|v| scoring.error(&model, v))
        .fold(0.0f64, f64::max);

    // A one-off name under a pattern is seen through its pattern: keeping
    // it would only grow the bundle by every temp file training made. (The
    // vectors above are the same either way: a file access to it folds to
    // the pattern, which is seen.)
    // The kept windows were scored with the elements before this.
    let scans = one_off.is_empty().then_some(scans);
    for a in &one_off {
        elements.seen_args.remove(a);
    }
    let bundle = Bundle {
        settings,
        elements,
        scoring,
        thetas: options.thetas.clone(),
        thresholds: thresholds(max_error, &options.thetas),
        training: TrainingInfo {
            recordings: usable
                .iter()
                .map(|&i| recordings[i].info().name.clone())
                .collect(),
            windows,
            vectors: vectors.len() as u64,
            epochs: report.epochs,
            seed: options.model.seed,
            final_loss: report.final_loss,
            final_val_loss: report.final_val_loss,
            max_error,
        },
        operating_threshold: None,
        accepted: Vec::new(),
        calibration: None,
        count_maxima: Some(count_maxima),
        folded: None,
        model,
    };
    Ok((
        Trained {
            bundle,
            warnings,
            used: usable.len(),
        },
        scans,
    ))
}
