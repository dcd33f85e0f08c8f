//! The one detector interface: what `evaluate`, `monitor` and the agent
//! see of a trained model, whichever it is (the CHIDS autoencoder bundle,
//! STIDE). Training is [`Fit`]; scoring, explaining, thresholds and saving
//! are [`Detector`]; a live stream is scored by a [`StreamScorer`] any
//! detector makes.

/// The [`Detector`] methods every bundle type answers from the same fields
/// (`settings`, `thetas`, `thresholds`, `operating_threshold`,
/// `calibration`): written once for the autoencoder bundle and the STIDE
/// model. A macro rather than a shared struct, because the fields sit at
/// the top level of each bundle's `baseline.json`.
macro_rules! settings_and_thresholds_accessors {
    () => {
        fn mode(&self) -> Mode {
            self.settings.mode
        }
        fn window_ns(&self) -> u64 {
            self.settings.window_ns
        }
        fn thetas(&self) -> &[f64] {
            &self.thetas
        }
        fn thresholds(&self) -> &[f64] {
            &self.thresholds
        }
        fn calibrated_threshold(&self) -> Option<f64> {
            self.operating_threshold
        }
        fn calibration(&self) -> Option<&Calibration> {
            self.calibration.as_ref()
        }
        fn set_operating_threshold(&mut self, threshold: f64, calibration: Calibration) {
            self.operating_threshold = Some(threshold);
            self.calibration = Some(calibration);
        }
    };
}

mod chids;
mod stide;

use std::path::Path;

use crate::alert::Reasons;
use crate::calibrate::Calibration;
use crate::detect::ScoredWindow;
use crate::model::bundle::read_baseline_json;
use crate::model::{Bundle, BundleError};
use crate::rising::Counted;
use crate::scored::ScoredRecording;
use crate::stide::StideModel;
use crate::train::{map_recordings, Progress};
use chids_core::event::Event;
use chids_core::features::WindowFeatures;
use chids_core::mode::Mode;
use chids_core::source::{EventSource, ReadOptions, SourceError};
use chids_core::window::WindowStats;

pub(crate) use chids::alarm_reasons;

/// A trained detector.
pub trait Detector: Send + Sync {
    /// `chids` or `stide`: `baseline.json`'s `detector`.
    fn name(&self) -> &'static str;
    /// What scores mean, for tables and plot axes.
    fn score_name(&self) -> &'static str;
    fn mode(&self) -> Mode;
    fn window_ns(&self) -> u64;
    /// The theta grid and its thresholds (theta × [`Detector::training_max`]).
    fn thetas(&self) -> &[f64];
    fn thresholds(&self) -> &[f64];
    /// The score thresholds are multiples of: the largest training score.
    fn training_max(&self) -> f64;
    /// The calibrated operating threshold, if any.
    fn calibrated_threshold(&self) -> Option<f64>;
    /// How the operating threshold was set; `None`: an older bundle (θ 1.0).
    fn calibration(&self) -> Option<&Calibration>;
    /// Stores an operating threshold and how it was set.
    fn set_operating_threshold(&mut self, threshold: f64, calibration: Calibration);

    /// Scores one recording window by window; with `explain`, windows keep
    /// the names that made them score.
    fn score_recording(
        &self,
        source: &dyn EventSource,
        read: &ReadOptions,
        explain: bool,
    ) -> Result<ScoredRecording, SourceError>;

    /// A scorer for one live stream of events (one container), alarming
    /// above `threshold`, explaining the windows `explain` asks for.
    fn stream(&self, threshold: f64, explain: Explain) -> Box<dyn StreamScorer + '_>;

    /// Why a window scored as it did: its unseen names, and the counts that
    /// rose above their training maximum (`counts`: the window's, when
    /// counted). May be empty; an alarm's reasons never are
    /// ([`never_empty`]).
    fn explain(&self, window: &WindowFeatures, counts: Option<&Counted<'_>>) -> Reasons;

    /// Writes the bundle into `dir` (see [`crate::model::bundle::save_bundle`]).
    fn save(&self, dir: &Path) -> Result<(), BundleError>;

    /// The autoencoder bundle, for what only it can do (kernel windows).
    fn as_bundle(&self) -> Option<&Bundle> {
        None
    }

    /// The threshold alarms use by default: the calibrated operating
    /// threshold, or θ 1.0 for bundles without one.
    fn operating_threshold(&self) -> f64 {
        self.calibrated_threshold()
            .unwrap_or_else(|| self.threshold(1.0))
    }

    /// The threshold for `theta`: the stored one when theta is in the grid,
    /// else theta × the largest training score.
    fn threshold(&self, theta: f64) -> f64 {
        self.thetas()
            .iter()
            .position(|&t| (t - theta).abs() < 1e-9)
            .map_or(theta * self.training_max(), |i| self.thresholds()[i])
    }
}

/// Which windows a [`StreamScorer`] explains ([`ScoredWindow::reasons`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Explain {
    /// Alarms only (live: every other window is only counted).
    Alarms,
    /// Every window with events (`vectors --explain`).
    Every,
}

/// Training a detector from recordings of normal behaviour.
pub trait Fit: Detector + Sized {
    type Options;
    type Error;
    fn fit(
        recordings: &[Box<dyn EventSource>],
        options: &Self::Options,
        progress: &Progress<'_>,
    ) -> Result<Self, Self::Error>;
}

/// Scores one live stream window by window.
pub trait StreamScorer: Send {
    /// Adds one event; `emit` gets every window this closes, scored.
    fn push(&mut self, event: &Event<'_>, emit: &mut dyn FnMut(ScoredWindow));
    /// Declares that the stream begins in the middle of what it watches
    /// (something already running): none of its windows is a start-up
    /// window, exempt from alarming. Call before the first event.
    fn begin_mid_run(&mut self);
    /// Closes windows that ended before `now_ns` (a silent container).
    fn advance_to(&mut self, now_ns: u64, emit: &mut dyn FnMut(ScoredWindow));
    /// Ends the stream, flushing the open windows.
    fn finish(self: Box<Self>, emit: &mut dyn FnMut(ScoredWindow));
    /// Events dropped so far (out of order, time jumps).
    fn window_stats(&self) -> &WindowStats;
    fn threshold(&self) -> f64;
}

/// Loads the bundle in `dir`, whichever detector it holds.
pub fn load(dir: &Path) -> Result<Box<dyn Detector>, BundleError> {
    let (_, detector) = read_baseline_json(dir)?;
    match detector.as_str() {
        crate::stide::DETECTOR => Ok(Box::new(StideModel::load(dir)?)),
        crate::model::bundle::DETECTOR => Ok(Box::new(Bundle::load(dir)?)),
        other => Err(BundleError::Invalid {
            path: dir.join(crate::model::bundle::BASELINE_FILE),
            message: format!("unknown detector {other:?} (this chids knows chids and stide)"),
        }),
    }
}

/// Scores every recording (parallel, results in input order), warning
/// about exploit times outside a recording.
pub fn score_all(
    detector: &dyn Detector,
    recordings: &[Box<dyn EventSource>],
    read: &ReadOptions,
    explain: bool,
    stage: &str,
    progress: &Progress<'_>,
) -> Result<Vec<ScoredRecording>, SourceError> {
    let refs: Vec<&dyn EventSource> = recordings.iter().map(|r| r.as_ref()).collect();
    let mut scored = map_recordings(&refs, stage, progress, |r| {
        detector.score_recording(r, read, explain)
    })?;
    for r in &mut scored {
        let outside = r.exploit_outside(detector.window_ns());
        r.warnings.extend(outside);
    }
    Ok(scored)
}

/// The threshold alarms use: `threshold` when given, else `theta` × the
/// largest training score, else the operating threshold. Errors name the
/// flag.
pub fn choose_threshold(
    detector: &dyn Detector,
    theta: Option<f64>,
    threshold: Option<f64>,
) -> Result<f64, String> {
    match (theta, threshold) {
        (Some(_), Some(_)) => Err("give --theta or --threshold, not both".into()),
        (_, Some(t)) if !(t.is_finite() && t >= 0.0) => {
            Err(format!("--threshold {t}: must be a non-negative number"))
        }
        (_, Some(t)) => Ok(t),
        (Some(t), _) if !(t.is_finite() && t > 0.0) => {
            Err(format!("--theta {t}: must be a positive number"))
        }
        (Some(t), _) => Ok(detector.threshold(t)),
        (None, None) => Ok(detector.operating_threshold()),
    }
}

/// Reasons that are never empty: when neither an unseen name nor a count
/// above its training maximum explains an alarm (a bundle without count
/// maxima, kernel-computed windows), the window's event count against the
/// busiest training window's is the reason (FI is that ratio).
pub(crate) fn never_empty(
    mut reasons: Reasons,
    events: usize,
    training_max_events: u64,
) -> Reasons {
    if reasons.is_empty() {
        reasons.rising.push(crate::alert::Rising {
            what: "events".into(),
            count: events as u64,
            training_max: training_max_events,
        });
    }
    reasons
}

#[cfg(test)]
mod tests;
