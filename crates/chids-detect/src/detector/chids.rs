//! The CHIDS autoencoder bundle as a [`Detector`].

use std::path::Path;

use super::{never_empty, Detector, Explain, Fit, StreamScorer};
use crate::alert::Reasons;
use crate::calibrate::Calibration;
use crate::detect::{score, ScoredWindow};
use crate::model::{Bundle, BundleError};
use crate::rising::{CallCounter, Counted};
use crate::scored::ScoredRecording;
use chids_core::event::Event;
use chids_core::features::{FeatureStream, WindowFeatures};
use chids_core::mode::Mode;
use chids_core::source::{EventSource, ReadOptions, SourceError};
use chids_core::window::WindowStats;

impl Detector for Bundle {
    fn name(&self) -> &'static str {
        crate::model::bundle::DETECTOR
    }
    fn score_name(&self) -> &'static str {
        "reconstruction error"
    }
    settings_and_thresholds_accessors!();
    fn training_max(&self) -> f64 {
        self.training.max_error
    }
    fn score_recording(
        &self,
        source: &dyn EventSource,
        read: &ReadOptions,
        explain: bool,
    ) -> Result<ScoredRecording, SourceError> {
        crate::scored::score_one(source, self, read, explain)
    }
    fn stream(&self, threshold: f64, explain: Explain) -> Box<dyn StreamScorer + '_> {
        Box::new(ChidsStream::new(self, threshold, explain))
    }
    fn explain(&self, window: &WindowFeatures, counts: Option<&Counted<'_>>) -> Reasons {
        let mut reasons = Reasons::unseen(window);
        if let (Some(c), Some(max)) = (counts, &self.count_maxima) {
            reasons.rising = max.rising(c.counts, |id| c.counter.name(id));
        }
        reasons
    }
    fn save(&self, dir: &Path) -> Result<(), BundleError> {
        Bundle::save(self, dir)
    }
    fn as_bundle(&self) -> Option<&Bundle> {
        Some(self)
    }
}

impl Fit for Bundle {
    type Options = crate::train::TrainOptions;
    type Error = crate::train::TrainError;
    /// Trains on every recording (no operating threshold; see
    /// [`crate::train::train_calibrated`] for the calibrated path).
    fn fit(
        recordings: &[Box<dyn EventSource>],
        options: &Self::Options,
        progress: &crate::train::Progress<'_>,
    ) -> Result<Self, Self::Error> {
        crate::train::train(recordings, options, progress).map(|t| t.bundle)
    }
}

/// An alarm's reasons, never empty: FI compares a window's transitions
/// (events - 1) with `max_freq`, so the busiest training window had
/// `max_freq + 1` events.
pub(crate) fn alarm_reasons(bundle: &Bundle, reasons: Reasons, events: usize) -> Reasons {
    never_empty(reasons, events, bundle.elements.max_freq + 1)
}

/// A live stream scored by the autoencoder: the same [`FeatureStream`] as
/// files, plus per-window call counts for the `rising` reasons.
pub(crate) struct ChidsStream<'b> {
    bundle: &'b Bundle,
    stream: FeatureStream<'b>,
    counter: CallCounter,
    threshold: f64,
    explain_every: bool,
}

impl<'b> ChidsStream<'b> {
    pub fn new(bundle: &'b Bundle, threshold: f64, explain: Explain) -> Self {
        let s = bundle.settings;
        ChidsStream {
            bundle,
            stream: FeatureStream::live(s, Some(&bundle.elements), true),
            counter: CallCounter::new(s.mode, s.edges, s.window_ns, None),
            threshold,
            explain_every: explain == Explain::Every,
        }
    }

    /// Scores a closed window, explaining it when it alarms.
    fn scored(&mut self, w: WindowFeatures, emit: &mut dyn FnMut(ScoredWindow)) {
        let counts = self.counter.take(w.index);
        let mut s = score(self.bundle, self.threshold, w);
        if s.anomalous || (self.explain_every && s.features.events > 0) {
            let counted = counts.as_ref().map(|counts| Counted {
                counts,
                counter: &self.counter,
            });
            let reasons = self.bundle.explain(&s.features, counted.as_ref());
            s.reasons = Some(if s.anomalous {
                alarm_reasons(self.bundle, reasons, s.features.events)
            } else {
                reasons
            });
        }
        emit(s)
    }
}

impl StreamScorer for ChidsStream<'_> {
    fn push(&mut self, event: &Event<'_>, emit: &mut dyn FnMut(ScoredWindow)) {
        self.counter.push(event);
        let mut closed = Vec::new();
        // A live stream has no window cap (`FeatureStream::live`): pushing
        // cannot fail.
        let _uncapped = self.stream.push(event, &mut |w| closed.push(w));
        for w in closed {
            self.scored(w, emit);
        }
    }
    fn begin_mid_run(&mut self) {
        self.counter.begin_mid_run();
        self.stream.begin_mid_run();
    }
    fn advance_to(&mut self, now_ns: u64, emit: &mut dyn FnMut(ScoredWindow)) {
        self.counter.advance_to(now_ns);
        let mut closed = Vec::new();
        self.stream.advance_to(now_ns, &mut |w| closed.push(w));
        for w in closed {
            self.scored(w, emit);
        }
    }
    fn finish(mut self: Box<Self>, emit: &mut dyn FnMut(ScoredWindow)) {
        self.counter.finish();
        let stream = std::mem::replace(
            &mut self.stream,
            FeatureStream::live(self.bundle.settings, None, false),
        );
        let mut closed = Vec::new();
        let _ = stream.finish(&mut |w| closed.push(w));
        for w in closed {
            self.scored(w, emit);
        }
    }
    fn window_stats(&self) -> &WindowStats {
        self.stream.window_stats()
    }
    fn threshold(&self) -> f64 {
        self.threshold
    }
}
