//! chids-detect: what learns normal behaviour and scores windows against
//! it — the CHIDS autoencoder and STIDE, their bundles on disk, training,
//! and the calibration of an operating threshold.
//!
//! ```text
//! windows (chids-core) ──► train / Fit ──► bundle ──► Detector ──► scores, alerts (alert), reasons
//!                                                  (autoencoder, STIDE)
//! ```
//!
//! Everything downstream (`evaluate`, `monitor`, the agent) sees a model
//! through the [`Detector`] trait only ([`detector::load`] opens any
//! bundle); every alarm is an [`alert::WindowAlert`] whose reasons are
//! never empty.

pub mod accept;
pub mod alert;
pub mod calibrate;
pub mod completeness;
pub mod detect;
pub mod detector;
pub mod explain;
pub mod fold;
pub mod model;
pub mod rising;
pub mod scored;
pub mod stide;
pub mod train;

pub use detector::Detector;
