//! STIDE as a [`Detector`].

use std::path::Path;

use super::{Detector, Explain, Fit, StreamScorer};
use crate::alert::Reasons;
use crate::calibrate::Calibration;
use crate::model::BundleError;
use crate::rising::Counted;
use crate::scored::ScoredRecording;
use crate::stide::StideModel;
use chids_core::features::WindowFeatures;
use chids_core::mode::Mode;
use chids_core::source::{EventSource, ReadOptions, SourceError};

pub(crate) use crate::stide::StideStream;

impl Detector for StideModel {
    fn name(&self) -> &'static str {
        crate::stide::DETECTOR
    }
    fn score_name(&self) -> &'static str {
        "STIDE mismatch share"
    }
    settings_and_thresholds_accessors!();
    fn training_max(&self) -> f64 {
        self.training.max_score
    }
    fn score_recording(
        &self,
        source: &dyn EventSource,
        read: &ReadOptions,
        _explain: bool,
    ) -> Result<ScoredRecording, SourceError> {
        // STIDE windows always carry the calls the database lacks.
        self.score(source, read)
    }
    fn stream(&self, threshold: f64, explain: Explain) -> Box<dyn StreamScorer + '_> {
        Box::new(StideStream::live(self, threshold, explain))
    }
    /// The calls the database never saw; the mismatching sequences are
    /// known only while streaming (see [`StideStream`]).
    fn explain(&self, window: &WindowFeatures, _counts: Option<&Counted<'_>>) -> Reasons {
        Reasons::unseen(window)
    }
    fn save(&self, dir: &Path) -> Result<(), BundleError> {
        StideModel::save(self, dir)
    }
}

/// What STIDE trains with.
#[derive(Clone, Debug)]
pub struct StideFitOptions {
    pub settings: crate::stide::StideSettings,
    pub thetas: Vec<f64>,
    pub read: ReadOptions,
}

impl Fit for StideModel {
    type Options = StideFitOptions;
    type Error = crate::stide::StideError;
    /// Builds the database and sets the thresholds from held-out
    /// recordings (see [`crate::stide::train`]).
    fn fit(
        recordings: &[Box<dyn EventSource>],
        options: &Self::Options,
        progress: &crate::train::Progress<'_>,
    ) -> Result<Self, Self::Error> {
        crate::stide::train(
            recordings,
            options.settings,
            &options.thetas,
            &options.read,
            progress,
        )
        .map(|t| t.model)
    }
}
