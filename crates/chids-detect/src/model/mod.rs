//! The model stage: the autoencoder over anomaly vectors, thresholds, and the
//! on-disk bundle.

pub mod autoencoder;

pub use autoencoder::{
    default_thetas, thresholds, Autoencoder, ModelError, TrainConfig, TrainReport,
};
pub mod bundle;

pub use bundle::{Bundle, BundleError};
pub mod scoring;

pub use scoring::{ErrorKind, Scoring};
