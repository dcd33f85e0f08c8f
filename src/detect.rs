//! Verdicts: a window's reconstruction error against a threshold, for
//! recordings read from disk and for live event streams alike.

use serde::Serialize;

use crate::event::Event;
use crate::features::{FeatureStream, WindowFeatures};
use crate::model::Bundle;

/// A scored window.
#[derive(Clone, Debug, Serialize)]
pub struct ScoredWindow {
    #[serde(flatten)]
    pub features: WindowFeatures,
    /// Reconstruction error; `None` for an empty window.
    pub error: Option<f64>,
    pub threshold: f64,
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
    /// `theta` picks the threshold (theta × the largest training error).
    pub fn new(bundle: &'b Bundle, theta: f64) -> Self {
        StreamDetector {
            bundle,
            stream: FeatureStream::live(bundle.settings, Some(&bundle.elements), true),
            threshold: bundle.threshold(theta),
        }
    }

    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// Events dropped so far (out of order, time jumps).
    pub fn window_stats(&self) -> &crate::window::WindowStats {
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

    /// Ends the stream, flushing the open windows.
    pub fn finish(self, emit: &mut impl FnMut(ScoredWindow)) {
        let (bundle, threshold) = (self.bundle, self.threshold);
        let _ = self
            .stream
            .finish(&mut |w| emit(score(bundle, threshold, w)));
    }
}

fn score(bundle: &Bundle, threshold: f64, features: WindowFeatures) -> ScoredWindow {
    let error = window_error(bundle, &features);
    ScoredWindow {
        anomalous: error.is_some_and(|e| e > threshold),
        features,
        error,
        threshold,
    }
}
