//! The model stage: the autoencoder over anomaly vectors, thresholds, and the
//! on-disk bundle.
