//! How a window's vector becomes one error number.
//!
//! Compat mode is the reference: the raw vector goes into the autoencoder
//! and the error is the mean of the three squared differences. That scores
//! badly on real data: FI lives in [0, 0.2) while USI/UAI reach tens, the
//! sigmoid output cannot go above 1, and 120 epochs of a few batches leave
//! the network nearly untrained, so the largest training error is simply the
//! quietest window's and a tripled call rate *lowers* the error.
//!
//! The modern mode fixes the scale, not the network: each feature is divided
//! by its largest training value (at least 1 for USI/UAI, which are 0 on
//! training data by construction), so normal windows span [0, 1] where the
//! sigmoid output can follow them and anything beyond the training range
//! is an error by itself; the error is the largest per-feature squared
//! difference, so one feature going wild is not diluted by the two that
//! stay normal; and training runs until the optimiser has taken a useful
//! number of steps, however few the training windows.

use serde::{Deserialize, Serialize};

use super::Autoencoder;
use chids_core::mode::Mode;

/// How the per-feature differences are combined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Mean of the squared differences (the reference).
    Mean,
    /// Largest squared excess of a feature over its reconstruction: only
    /// *more* activity, unseen calls or unseen arguments than the model
    /// expects count. A quiet window is no sign of intrusion, and every
    /// recording ends in a partial, quiet window that would otherwise set
    /// the threshold.
    MaxExcess,
}

/// Input scaling and error rule, stored in the bundle.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scoring {
    /// Each feature is divided by this before the autoencoder sees it.
    pub scale: [f64; 3],
    pub error: ErrorKind,
}

/// The smallest scale of USI and UAI in modern mode (see [`Scoring::fit`]).
pub(crate) const UNSEEN_SCALE: f64 = 0.05;

/// Optimiser steps the modern mode trains for at least (see module doc).
pub(crate) const MODERN_MIN_STEPS: usize = 4_000;

impl Scoring {
    /// The reference's rule: raw features, mean error.
    pub(crate) const REFERENCE: Scoring = Scoring {
        scale: [1.0; 3],
        error: ErrorKind::Mean,
    };

    /// The scoring a mode uses, given the training vectors.
    pub fn fit(mode: Mode, vectors: &[[f64; 3]]) -> Scoring {
        match mode {
            Mode::Compat => Scoring::REFERENCE,
            Mode::Modern => {
                let mut max = [0.0f64; 3];
                for v in vectors {
                    for i in 0..3 {
                        max[i] = max[i].max(v[i]);
                    }
                }
                // USI/UAI are 0 on training windows by construction; one
                // unseen call in a window of ~40 distinct calls gives about
                // 2/39 ≈ 0.05, which should already stand out as a full unit.
                let floor = [0.0, UNSEEN_SCALE, UNSEEN_SCALE];
                let scale = [0, 1, 2].map(|i| {
                    if max[i] > floor[i] {
                        max[i]
                    } else if floor[i] > 0.0 {
                        floor[i]
                    } else {
                        1.0
                    }
                });
                Scoring {
                    scale,
                    error: ErrorKind::MaxExcess,
                }
            }
        }
    }

    /// The vector as the autoencoder sees it.
    pub fn prepare(&self, v: &[f64; 3]) -> [f64; 3] {
        [
            v[0] / self.scale[0],
            v[1] / self.scale[1],
            v[2] / self.scale[2],
        ]
    }

    /// The error of a raw window vector under `model`.
    pub fn error(&self, model: &Autoencoder, v: &[f64; 3]) -> f64 {
        let x = self.prepare(v);
        match self.error {
            ErrorKind::Mean => model.reconstruction_error(&x),
            ErrorKind::MaxExcess => {
                let y = model.reconstruct(&x);
                (0..3)
                    .map(|i| (x[i] - f64::from(y[i])).max(0.0).powi(2))
                    .fold(0.0, f64::max)
            }
        }
    }

    /// Epochs to train for: the configured number, raised in modern mode so
    /// that small training sets still get [`MODERN_MIN_STEPS`] updates.
    pub fn epochs(mode: Mode, configured: usize, train_rows: usize, batch: usize) -> usize {
        match mode {
            Mode::Compat => configured,
            Mode::Modern => {
                let per_epoch = train_rows.div_ceil(batch.max(1)).max(1);
                configured.max(MODERN_MIN_STEPS.div_ceil(per_epoch))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compat_is_the_reference() {
        let s = Scoring::fit(Mode::Compat, &[[0.1, 2.0, 3.0]]);
        assert_eq!(s, Scoring::REFERENCE);
        let m = Autoencoder::new(1);
        let v = [0.1, 2.0, 3.0];
        assert_eq!(s.error(&m, &v), m.reconstruction_error(&v));
        assert_eq!(Scoring::epochs(Mode::Compat, 120, 10, 50), 120);
    }

    #[test]
    fn modern_scales_to_training_range() {
        let s = Scoring::fit(Mode::Modern, &[[0.1, 0.0, 0.0], [0.05, 0.0, 0.5]]);
        assert_eq!(s.scale, [0.1, UNSEEN_SCALE, 0.5]);
        assert_eq!(s.prepare(&[0.2, 0.1, 0.5]), [2.0, 2.0, 1.0]);
        let m = Autoencoder::new(1);
        // Only excess counts: a vector below its reconstruction scores 0.
        assert_eq!(s.error(&m, &[0.0, 0.0, 0.0]), 0.0);
        // FI at twice its training maximum: the sigmoid output is at most
        // 1, so the excess is at least 1.
        assert!(s.error(&m, &[0.2, 0.0, 0.0]) >= 1.0);
        assert_eq!(Scoring::epochs(Mode::Modern, 120, 48, 50), 4000);
        assert_eq!(Scoring::epochs(Mode::Modern, 120, 800_000, 50), 120);
    }
}
