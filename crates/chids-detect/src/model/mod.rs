//! The model stage: the autoencoder over anomaly vectors, thresholds, and the
//! on-disk bundle.

pub mod autoencoder;

pub(crate) use autoencoder::ModelError;
pub use autoencoder::{default_thetas, thresholds, Autoencoder, TrainConfig};
pub mod bundle;

pub use bundle::Bundle;
pub(crate) use bundle::BundleError;
pub mod scoring;

pub use scoring::ErrorKind;
pub(crate) use scoring::Scoring;
