//! Evaluation (SPEC §7): recordings scored window by window, and the
//! reference's recording-level table of detection and false-alarm rates.

use rayon::prelude::*;
use serde::Serialize;

use crate::detect::window_error;
use crate::event::RecordingInfo;
use crate::features::{read_recording, WindowFeatures};
use crate::model::Bundle;
use crate::source::{EventSource, ReadOptions, SourceError};
use crate::train::{read_warnings, Progress, Step};

/// One recording, scored.
#[derive(Clone, Debug)]
pub struct ScoredRecording {
    pub info: RecordingInfo,
    pub windows: Vec<WindowFeatures>,
    /// Reconstruction error per window (`None`: empty window).
    pub errors: Vec<Option<f64>>,
    pub warnings: Vec<String>,
    pub events: u64,
}

impl ScoredRecording {
    /// The largest window error, or `None` when no window has a vector.
    pub fn max_error(&self) -> Option<f64> {
        self.errors.iter().flatten().copied().reduce(f64::max)
    }

    /// Whether any window's error exceeds `threshold` (SPEC §7).
    pub fn flagged(&self, threshold: f64) -> bool {
        self.max_error().is_some_and(|e| e > threshold)
    }

    pub fn usable(&self) -> bool {
        self.events > 0 && !self.windows.is_empty()
    }
}

/// Scores every recording in parallel; results keep the input order.
pub fn score_all(
    recordings: &[Box<dyn EventSource>],
    bundle: &Bundle,
    read: &ReadOptions,
    explain: bool,
    stage: &str,
    progress: &Progress<'_>,
) -> Result<Vec<ScoredRecording>, SourceError> {
    progress(Step::Stage {
        name: stage,
        total: recordings.len(),
    });
    let results: Vec<Result<ScoredRecording, SourceError>> = recordings
        .par_iter()
        .map(|r| {
            let features = read_recording(
                r.as_ref(),
                bundle.settings,
                Some(&bundle.elements),
                explain,
                read,
            )?;
            let warnings = read_warnings(r.as_ref(), &features.read, !features.features.is_empty());
            let errors = features
                .features
                .iter()
                .map(|w| window_error(bundle, w))
                .collect();
            progress(Step::Recording {
                name: &r.info().name,
            });
            Ok(ScoredRecording {
                info: r.info().clone(),
                events: features.read.events,
                windows: features.features,
                errors,
                warnings,
            })
        })
        .collect();
    results.into_iter().collect()
}

/// One row of the evaluation table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    pub theta: f64,
    pub threshold: f64,
    pub detection_rate: f64,
    pub false_alarm_rate: f64,
    pub detected: usize,
    pub attacks: usize,
    pub false_alarms: usize,
    pub normals: usize,
}

/// The reference's table: per theta, the share of attack recordings
/// flagged and the share of normal recordings flagged. Unusable recordings
/// (no event, no window) are left out of both counts.
pub fn table(bundle: &Bundle, normal: &[ScoredRecording], attack: &[ScoredRecording]) -> Vec<Row> {
    let normal: Vec<&ScoredRecording> = normal.iter().filter(|r| r.usable()).collect();
    let attack: Vec<&ScoredRecording> = attack.iter().filter(|r| r.usable()).collect();
    bundle
        .thetas
        .iter()
        .zip(&bundle.thresholds)
        .map(|(&theta, &threshold)| {
            let detected = attack.iter().filter(|r| r.flagged(threshold)).count();
            let false_alarms = normal.iter().filter(|r| r.flagged(threshold)).count();
            Row {
                theta,
                threshold,
                detection_rate: ratio(detected, attack.len()),
                false_alarm_rate: ratio(false_alarms, normal.len()),
                detected,
                attacks: attack.len(),
                false_alarms,
                normals: normal.len(),
            }
        })
        .collect()
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}
