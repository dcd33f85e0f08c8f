//! Training a baseline (SPEC §4, §6): two passes over the training
//! recordings (training elements, then anomaly vectors), the autoencoder,
//! and the thresholds.

use rayon::prelude::*;

use crate::features::{
    check_window_ns, encode_recording, read_recording, window_count, EncodedRecording, Settings,
    TrainingElements, WindowFeatures,
};
use crate::model::bundle::TrainingInfo;
use crate::model::{thresholds, Autoencoder, Bundle, ModelError, Scoring, TrainConfig};
use crate::source::{EventSource, ReadOptions, ReadStats, SourceError};
use crate::window::WindowStats;

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
pub fn map_recordings<'a, R: Send>(
    recordings: &[&'a dyn EventSource],
    stage: &str,
    progress: &Progress<'_>,
    f: impl Fn(&'a dyn EventSource) -> Result<R, SourceError> + Sync,
) -> Result<Vec<R>, SourceError> {
    progress(Step::Stage {
        name: stage,
        total: recordings.len(),
    });
    let results: Vec<Result<R, SourceError>> = recordings
        .par_iter()
        .map(|&r| {
            let out = f(r);
            progress(Step::Recording {
                name: &r.info().name,
            });
            out
        })
        .collect();
    results.into_iter().collect()
}

/// Warnings about a recording's read: malformed lines, or nothing usable.
pub fn read_warnings(
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
            .unwrap_or((crate::source::Position::Whole, String::new()));
        out.push(format!(
            "{path}: skipped {} malformed record(s) (first at {pos}: {why})",
            read.malformed
        ));
    }
    if windows.out_of_range > 0 {
        out.push(format!(
            "{path}: dropped {} event(s) whose time jumps more than {} windows ahead (corrupt timestamps?)",
            windows.out_of_range,
            crate::window::MAX_JUMP_WINDOWS
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
            crate::ssg::MAX_DISTINCT_PER_WINDOW
        ));
    }
    if read.events == 0 {
        out.push(format!("{path}: no usable event; recording skipped"));
    } else if !has_windows {
        out.push(format!("{path}: yields no window (its last event is earlier than its first); recording skipped"));
    }
    out
}

/// Trains a baseline on `recordings`.
pub fn train(
    recordings: &[Box<dyn EventSource>],
    options: &TrainOptions,
    progress: &Progress<'_>,
) -> Result<Trained, TrainError> {
    let settings = options.settings;
    check_window_ns(settings.window_ns).map_err(TrainError::BadWindow)?;
    let recordings: Vec<&dyn EventSource> = recordings.iter().map(|r| r.as_ref()).collect();
    let first = map_recordings(&recordings, "reading (pass 1 of 2)", progress, |r| {
        encode_recording(r, settings, &options.read)
    })?;
    let mut warnings = Vec::new();
    let mut elements = TrainingElements::default();
    let mut usable = Vec::new();
    for (i, (&source, scan)) in recordings.iter().zip(&first).enumerate() {
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
                    crate::source::Position::Whole,
                    "no usable event",
                )
                .into());
            }
            continue;
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

    // Second pass: from memory where the first pass kept the recording.
    progress(Step::Stage {
        name: "features (pass 2 of 2)",
        total: usable.len(),
    });
    let mut first: Vec<Option<EncodedRecording>> = first.into_iter().map(Some).collect();
    let todo: Vec<(usize, EncodedRecording)> = usable
        .iter()
        .filter_map(|&i| first[i].take().map(|e| (i, e)))
        .collect();
    let second: Vec<Result<Vec<WindowFeatures>, SourceError>> = todo
        .into_par_iter()
        .map(|(i, mut enc)| {
            let out = match enc.features(&elements) {
                Some(f) => Ok(f),
                None => read_recording(
                    recordings[i],
                    settings,
                    Some(&elements),
                    false,
                    &options.read,
                )
                .map(|r| r.features),
            };
            progress(Step::Recording {
                name: &recordings[i].info().name,
            });
            out
        })
        .collect();
    let second: Vec<Vec<WindowFeatures>> = second.into_iter().collect::<Result<_, _>>()?;
    let windows: u64 = second.iter().map(|r| window_count(r)).sum();
    let vectors: Vec<[f64; 3]> = second
        .iter()
        .flat_map(|r| r.iter().filter_map(|w| w.vector.map(|v| v.to_array())))
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
        model,
    };
    Ok(Trained {
        bundle,
        warnings,
        used: usable.len(),
    })
}
