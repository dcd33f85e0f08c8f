//! Recordings scored window by window (SPEC §7), by any detector; what
//! evaluation and calibration read.

use crate::detect::window_error;
use crate::model::Bundle;
use crate::train::{map_recordings, read_warnings, Progress};
use chids_core::event::RecordingInfo;
use chids_core::features::{read_recording, WindowFeatures};
use chids_core::source::{EventSource, ReadOptions, SourceError};

/// One recording, scored.
#[derive(Clone, Debug)]
pub struct ScoredRecording {
    pub info: RecordingInfo,
    /// Every window; a run of empty windows is one entry
    /// ([`WindowFeatures::run_length`]).
    pub windows: Vec<WindowFeatures>,
    /// Reconstruction error per entry of `windows` (`None`: empty window).
    pub errors: Vec<Option<f64>>,
    /// Per window: whether it is evidence ([`crate::detect::evidence`]).
    pub evidence: Vec<bool>,
    pub warnings: Vec<String>,
    pub events: u64,
    /// Events dropped because their time was out of order or backwards.
    pub out_of_order: u64,
}

impl ScoredRecording {
    /// The errors of the windows that are evidence (others: `None`).
    pub fn evidence_errors(&self) -> impl Iterator<Item = Option<f64>> + '_ {
        self.errors
            .iter()
            .zip(&self.evidence)
            .map(|(e, &ev)| e.filter(|_| ev))
    }

    /// The largest error of a window that is evidence, or `None`.
    pub fn max_error(&self) -> Option<f64> {
        self.evidence_errors().flatten().reduce(f64::max)
    }

    /// Evidence windows whose error exceeds `threshold`.
    pub fn alarm_windows(&self, threshold: f64) -> usize {
        self.evidence_errors()
            .flatten()
            .filter(|&e| e > threshold)
            .count()
    }

    /// Whether any window's error exceeds `threshold` (SPEC §7).
    pub fn flagged(&self, threshold: f64) -> bool {
        self.max_error().is_some_and(|e| e > threshold)
    }

    pub fn usable(&self) -> bool {
        self.events > 0 && !self.windows.is_empty()
    }

    /// A warning when the recording's exploit time lies outside its
    /// windows: after the last one, no window is in the attack phase; before
    /// the first, every window is. Either way the label is probably wrong.
    pub fn exploit_outside(&self, window_ns: u64) -> Option<String> {
        let t = self.info.labels.exploit_ns?;
        let first = self.windows.first()?.start_ns;
        let end = self.windows.last()?.start_ns.saturating_add(window_ns);
        if (first..end).contains(&t) {
            return None;
        }
        let secs = |ns: u64| ns as f64 / 1e9;
        Some(format!(
            "{}: the exploit time {:.3} is {} the recording ({:.3} to {:.3}); {}",
            self.info.path.display(),
            secs(t),
            if t < first { "before" } else { "after" },
            secs(first),
            secs(end),
            if t < first {
                "every window counts as attack"
            } else {
                "no window counts as attack"
            }
        ))
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
    let refs: Vec<&dyn EventSource> = recordings.iter().map(|r| r.as_ref()).collect();
    map_recordings(&refs, stage, progress, |r| {
        score_one(r, bundle, read, explain)
    })
}

/// Scores one recording with a chids bundle.
pub fn score_one(
    r: &dyn EventSource,
    bundle: &Bundle,
    read: &ReadOptions,
    explain: bool,
) -> Result<ScoredRecording, SourceError> {
    let features = read_recording(r, bundle.settings, Some(&bundle.elements), explain, read)?;
    Ok(scored(
        r,
        bundle,
        &features.read,
        &features.windows,
        features.features,
    ))
}

/// Scores a recording's windows, read with `bundle`'s settings and
/// elements (by [`read_recording`], or kept from training).
pub(crate) fn scored(
    r: &dyn EventSource,
    bundle: &Bundle,
    read: &chids_core::source::ReadStats,
    windows: &chids_core::window::WindowStats,
    features: Vec<WindowFeatures>,
) -> ScoredRecording {
    let warnings = read_warnings(r, read, windows, !features.is_empty());
    let errors = features.iter().map(|w| window_error(bundle, w)).collect();
    ScoredRecording {
        evidence: crate::detect::evidence(bundle.settings.mode, &features),
        info: r.info().clone(),
        events: read.events,
        out_of_order: windows.out_of_order(),
        windows: features,
        errors,
        warnings,
    }
}

/// Sets an operating threshold from normal recordings' scores (see
/// [`crate::calibrate`]): their evidence windows are the sample.
pub fn calibrate_scored(
    scored: &[ScoredRecording],
    source: &str,
    window_ns: u64,
    budget_per_hour: f64,
    floor: f64,
) -> (f64, crate::calibrate::Calibration) {
    use crate::calibrate::{calibrate, CalibrationInput, WindowScore};
    let usable: Vec<&ScoredRecording> = scored.iter().filter(|r| r.usable()).collect();
    let scores = usable
        .iter()
        .flat_map(|r| {
            r.evidence_errors().zip(&r.windows).filter_map(|(e, w)| {
                e.map(|score| WindowScore {
                    recording: &r.info.name,
                    window: w.index,
                    score,
                })
            })
        })
        .collect();
    calibrate(&CalibrationInput {
        source,
        recordings: usable.iter().map(|r| r.info.name.clone()).collect(),
        scores,
        total_windows: usable
            .iter()
            .map(|r| chids_core::features::window_count(&r.windows))
            .sum(),
        window_ns,
        budget_per_hour,
        floor,
    })
}
