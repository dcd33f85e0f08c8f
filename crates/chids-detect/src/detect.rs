//! Verdicts: a window's reconstruction error against a threshold, for
//! recordings read from disk and for live event streams alike.

use serde::Serialize;

use crate::model::Bundle;
use chids_core::event::Event;
use chids_core::features::{FeatureStream, WindowFeatures};
use chids_core::mode::Mode;

/// Windows with fewer events than this are not evidence (modern mode).
pub const MIN_EVIDENCE_EVENTS: usize = 10;

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
    match mode {
        Mode::Compat => true,
        Mode::Modern => !first && !partial_last && w.events >= MIN_EVIDENCE_EVENTS,
    }
}

/// The threshold alarms use: `threshold` when given, else `theta` × the
/// largest training error, else the bundle's operating threshold (θ 1.0
/// for bundles without one). Errors name the flag.
pub fn choose_threshold(
    bundle: &Bundle,
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
        (Some(t), _) => Ok(bundle.threshold(t)),
        (None, None) => Ok(bundle.operating_threshold()),
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
}

/// The reconstruction error of a window's vector under the bundle's model.
pub fn window_error(bundle: &Bundle, features: &WindowFeatures) -> Option<f64> {
    features.vector.map(|v| bundle.error(&v.to_array()))
}

/// Scores a live event stream window by window, with explanations.
pub struct StreamDetector<'b> {
    bundle: &'b Bundle,
    stream: FeatureStream<'b>,
    threshold: f64,
}

impl<'b> StreamDetector<'b> {
    /// Alarms above `threshold` (e.g. [`Bundle::operating_threshold`]).
    pub fn new(bundle: &'b Bundle, threshold: f64) -> Self {
        StreamDetector {
            bundle,
            stream: FeatureStream::live(bundle.settings, Some(&bundle.elements), true),
            threshold,
        }
    }

    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// Events dropped so far (out of order, time jumps).
    pub fn window_stats(&self) -> &chids_core::window::WindowStats {
        self.stream.window_stats()
    }

    /// Adds one event; `emit` gets every window this closes, scored.
    pub fn push(&mut self, event: &Event<'_>, emit: &mut impl FnMut(ScoredWindow)) {
        let (bundle, threshold) = (self.bundle, self.threshold);
        // A live stream has no window cap (`FeatureStream::live`): pushing
        // cannot fail.
        let _uncapped = self
            .stream
            .push(event, &mut |w| emit(score(bundle, threshold, w)));
    }

    /// Closes windows that ended before `now_ns` (a silent container).
    pub fn advance_to(&mut self, now_ns: u64, emit: &mut impl FnMut(ScoredWindow)) {
        let (bundle, threshold) = (self.bundle, self.threshold);
        self.stream
            .advance_to(now_ns, &mut |w| emit(score(bundle, threshold, w)));
    }

    /// Ends the stream, flushing the open windows. A live stream has no
    /// median to call a window partial by: the minimum-events rule decides.
    pub fn finish(self, emit: &mut impl FnMut(ScoredWindow)) {
        let (bundle, threshold) = (self.bundle, self.threshold);
        let _ = self
            .stream
            .finish(&mut |w| emit(score(bundle, threshold, w)));
    }
}

/// Scores a live window, computed by any path (the stream's first window
/// has index 0).
pub fn score(bundle: &Bundle, threshold: f64, features: WindowFeatures) -> ScoredWindow {
    let error = window_error(bundle, &features);
    let evidence = window_is_evidence(bundle.settings.mode, &features, features.index == 0, false);
    ScoredWindow {
        anomalous: evidence && error.is_some_and(|e| e > threshold),
        features,
        error,
        threshold,
        evidence,
    }
}
