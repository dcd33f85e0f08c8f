//! Verdicts: a window's reconstruction error against a threshold, for
//! recordings read from disk and for live event streams alike.

use serde::Serialize;

use crate::detector::{Detector, StreamScorer};
use crate::model::Bundle;
use chids_core::event::Event;
use chids_core::features::WindowFeatures;
use chids_core::mode::Mode;

/// Windows with fewer events than this are not evidence (modern mode).
pub(crate) const MIN_EVIDENCE_EVENTS: usize = 10;

/// Which windows count as evidence. In modern mode every window except:
/// a recording's first (start-up, or cut where capture began); its last
/// when it is partial (fewer events than half the recording's median
/// window: capture stopped inside it); and windows of fewer than
/// [`MIN_EVIDENCE_EVENTS`] events, whose few calls make the USI and UAI
/// ratios of tiny denominators. Windows that are not evidence are scored
/// and shown, but neither raise an alarm nor set the operating threshold.
/// Compat mode counts every window, as the reference does.
pub fn evidence(mode: Mode, windows: &[WindowFeatures]) -> Vec<bool> {
    let mut sizes: Vec<usize> = windows
        .iter()
        .map(|w| w.events)
        .filter(|&n| n > 0)
        .collect();
    sizes.sort_unstable();
    let median = sizes.get(sizes.len() / 2).copied().unwrap_or(0);
    let n = windows.len();
    windows
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let partial_last = i + 1 == n && w.events * 2 < median;
            window_is_evidence(mode, w, i == 0, partial_last)
        })
        .collect()
}

/// [`evidence`] for one window, knowing whether it is the first and
/// whether it is a partial last one.
pub fn window_is_evidence(mode: Mode, w: &WindowFeatures, first: bool, partial_last: bool) -> bool {
    is_evidence(mode, w.events, first, partial_last)
}

/// The rule of [`window_is_evidence`], from a window's event count.
pub(crate) fn is_evidence(mode: Mode, events: usize, first: bool, partial_last: bool) -> bool {
    match mode {
        Mode::Compat => true,
        Mode::Modern => !first && !partial_last && events >= MIN_EVIDENCE_EVENTS,
    }
}

/// A scored window.
#[derive(Clone, Debug, Serialize)]
pub struct ScoredWindow {
    #[serde(flatten)]
    pub features: WindowFeatures,
    /// Reconstruction error; `None` for an empty window.
    pub error: Option<f64>,
    pub threshold: f64,
    /// Whether the window counts as evidence (see [`evidence`]); a window
    /// that is not is never anomalous.
    pub evidence: bool,
    pub anomalous: bool,
    /// Why the window alarmed; set on anomalous windows only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasons: Option<crate::alert::Reasons>,
}

/// The reconstruction error of a window's vector under the bundle's model.
pub(crate) fn window_error(bundle: &Bundle, features: &WindowFeatures) -> Option<f64> {
    features.vector.map(|v| bundle.error(&v.to_array()))
}

/// Scores a live event stream window by window, with explanations, by
/// any [`Detector`]'s [`StreamScorer`].
pub struct StreamDetector<'d> {
    scorer: Box<dyn StreamScorer + 'd>,
}

impl<'d> StreamDetector<'d> {
    /// Alarms above `threshold` (e.g. [`Detector::operating_threshold`]).
    pub fn new(detector: &'d dyn Detector, threshold: f64) -> Self {
        StreamDetector {
            scorer: detector.stream(threshold, crate::detector::Explain::Alarms),
        }
    }

    pub fn threshold(&self) -> f64 {
        self.scorer.threshold()
    }

    /// Events dropped so far (out of order, time jumps).
    pub fn window_stats(&self) -> &chids_core::window::WindowStats {
        self.scorer.window_stats()
    }

    /// Adds one event; `emit` gets every window this closes, scored.
    pub fn push(&mut self, event: &Event<'_>, emit: &mut impl FnMut(ScoredWindow)) {
        self.scorer.push(event, emit)
    }

    /// The stream begins mid-run (see [`StreamScorer::begin_mid_run`]).
    pub fn begin_mid_run(&mut self) {
        self.scorer.begin_mid_run()
    }

    /// Closes windows that ended before `now_ns` (a silent container).
    pub fn advance_to(&mut self, now_ns: u64, emit: &mut impl FnMut(ScoredWindow)) {
        self.scorer.advance_to(now_ns, emit)
    }

    /// Ends the stream, flushing the open windows. A live stream has no
    /// median to call a window partial by: the minimum-events rule decides.
    pub fn finish(self, emit: &mut impl FnMut(ScoredWindow)) {
        self.scorer.finish(emit)
    }
}

/// Scores a live window, computed by any path (the stream's first window
/// has index 0).
pub fn score(bundle: &Bundle, threshold: f64, features: WindowFeatures) -> ScoredWindow {
    let error = window_error(bundle, &features);
    let evidence = window_is_evidence(bundle.settings.mode, &features, features.index == 0, false);
    let anomalous = evidence && error.is_some_and(|e| e > threshold);
    // Explained here without counts (kernel windows have none); the
    // stream scorer explains its own alarms with them.
    let reasons = anomalous.then(|| {
        let r = bundle.explain(&features, None);
        crate::detector::alarm_reasons(bundle, r, features.events)
    });
    ScoredWindow {
        anomalous,
        features,
        error,
        threshold,
        evidence,
        reasons,
    }
}
