//! chids-detect: what learns normal behaviour and scores windows against
//! it — the CHIDS autoencoder and STIDE, their bundles on disk, training,
//! and the calibration of an operating threshold.
//!
//! ```text
//! windows (chids-core) ──► train ──► model bundle ──► detect / scored ──► verdicts
//! ```

pub mod accept;
pub mod calibrate;
pub mod detect;
pub mod model;
pub mod scored;
pub mod stide;
pub mod train;
