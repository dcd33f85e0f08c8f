//! The model bundle: one folder with `model.safetensors` (the weights) and
//! `baseline.json` (everything else a scorer needs). Neither format can run
//! code when loaded, unlike the reference's pickles and HDF5.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::autoencoder::{Autoencoder, ModelError};
use super::scoring::Scoring;
use crate::args::Mode;
use crate::features::{Settings, TrainingElements};

/// Bumped whenever a field changes meaning; loading refuses other versions.
pub const FORMAT_VERSION: u32 = 1;
pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const BASELINE_FILE: &str = "baseline.json";
/// Identifies our `baseline.json` among other JSON files.
pub const KIND: &str = "chids-baseline";
/// `baseline.json`'s `detector` for the autoencoder; bundles written before
/// the field existed have none and are autoencoder bundles.
pub const DETECTOR: &str = "chids";

/// How the model was trained.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingInfo {
    pub recordings: Vec<String>,
    pub windows: u64,
    /// Non-empty windows = rows the autoencoder saw (training + validation).
    pub vectors: u64,
    pub epochs: usize,
    pub seed: u64,
    pub final_loss: f64,
    pub final_val_loss: Option<f64>,
    /// Largest reconstruction error over the training vectors; thresholds
    /// are multiples of it.
    pub max_error: f64,
}

/// `baseline.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BaselineFile {
    pub kind: String,
    pub format_version: u32,
    /// Which detector the bundle holds (`chids`, `stide`).
    #[serde(default = "default_detector")]
    pub detector: String,
    pub chids_version: String,
    pub mode: Mode,
    pub window_ns: u64,
    pub seen_syscalls: Vec<String>,
    pub seen_args: Vec<String>,
    pub max_freq: u64,
    /// Feature scaling and error rule (compat: none, mean).
    pub scoring: Scoring,
    pub thetas: Vec<f64>,
    pub thresholds: Vec<f64>,
    pub training: TrainingInfo,
}

fn default_detector() -> String {
    DETECTOR.into()
}

/// A loaded model: what scoring needs.
#[derive(Clone, Debug)]
pub struct Bundle {
    pub settings: Settings,
    pub elements: TrainingElements,
    pub scoring: Scoring,
    pub thetas: Vec<f64>,
    pub thresholds: Vec<f64>,
    pub training: TrainingInfo,
    pub model: Autoencoder,
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Model { path: PathBuf, source: ModelError },
}

impl Bundle {
    /// Writes the bundle into `dir` (created if needed). Each file is
    /// written to a temporary name and renamed, so a crash never leaves a
    /// half-written model behind a good name.
    pub fn save(&self, dir: &Path) -> Result<(), BundleError> {
        std::fs::create_dir_all(dir).map_err(|source| BundleError::Io {
            path: dir.into(),
            source,
        })?;
        let file = BaselineFile {
            kind: KIND.into(),
            format_version: FORMAT_VERSION,
            detector: DETECTOR.into(),
            chids_version: env!("CARGO_PKG_VERSION").into(),
            mode: self.settings.mode,
            window_ns: self.settings.window_ns,
            seen_syscalls: self.elements.seen_syscalls.iter().cloned().collect(),
            seen_args: self.elements.seen_args.iter().cloned().collect(),
            max_freq: self.elements.max_freq,
            scoring: self.scoring,
            thetas: self.thetas.clone(),
            thresholds: self.thresholds.clone(),
            training: self.training.clone(),
        };
        let json = serde_json::to_vec_pretty(&file).expect("baseline serialises");
        write_atomic(&dir.join(BASELINE_FILE), &json)?;
        write_atomic(&dir.join(WEIGHTS_FILE), &self.model.to_safetensors())
    }

    /// Loads and checks a bundle.
    pub fn load(dir: &Path) -> Result<Bundle, BundleError> {
        let json_path = dir.join(BASELINE_FILE);
        let invalid = |message: String| BundleError::Invalid {
            path: json_path.clone(),
            message,
        };
        let (value, detector) = read_baseline_json(dir)?;
        if detector != DETECTOR {
            return Err(invalid(format!(
                "this is a {detector:?} baseline, not a chids autoencoder bundle"
            )));
        }
        let file: BaselineFile = serde_json::from_value(value)
            .map_err(|e| invalid(format!("damaged baseline ({e})")))?;
        if file.thetas.len() != file.thresholds.len() || file.thetas.is_empty() {
            return Err(invalid("thetas and thresholds differ in length".into()));
        }
        if file.window_ns == 0 || file.max_freq == 0 {
            return Err(invalid("window_ns and max_freq must be positive".into()));
        }
        crate::features::check_window_ns(file.window_ns).map_err(invalid)?;
        if !file
            .thresholds
            .iter()
            .chain(&file.thetas)
            .all(|t| t.is_finite())
        {
            return Err(invalid("thresholds must be finite numbers".into()));
        }
        let weights_path = dir.join(WEIGHTS_FILE);
        let weights = std::fs::read(&weights_path).map_err(|source| BundleError::Io {
            path: weights_path.clone(),
            source,
        })?;
        let model =
            Autoencoder::from_safetensors(&weights).map_err(|source| BundleError::Model {
                path: weights_path,
                source,
            })?;
        Ok(Bundle {
            settings: Settings {
                mode: file.mode,
                window_ns: file.window_ns,
            },
            elements: TrainingElements {
                seen_syscalls: file.seen_syscalls.into_iter().collect(),
                seen_args: file.seen_args.into_iter().collect(),
                max_freq: file.max_freq,
            },
            scoring: file.scoring,
            thetas: file.thetas,
            thresholds: file.thresholds,
            training: file.training,
            model,
        })
    }

    /// The error of a window vector: what thresholds are compared with.
    pub fn error(&self, v: &[f64; 3]) -> f64 {
        self.scoring.error(&self.model, v)
    }

    /// The threshold for `theta`: the stored one when theta is in the grid,
    /// else theta × the largest training error.
    pub fn threshold(&self, theta: f64) -> f64 {
        self.thetas
            .iter()
            .position(|&t| (t - theta).abs() < 1e-9)
            .map_or(theta * self.training.max_error, |i| self.thresholds[i])
    }
}

/// Reads `dir/baseline.json`, checks that it is ours and of this format
/// version, and returns it with the detector it names. Every detector's
/// loader starts here, so a bundle of one detector loaded as another is a
/// clear error rather than a missing-field one.
pub fn read_baseline_json(dir: &Path) -> Result<(serde_json::Value, String), BundleError> {
    let json_path = dir.join(BASELINE_FILE);
    let invalid = |message: String| BundleError::Invalid {
        path: json_path.clone(),
        message,
    };
    let bytes = std::fs::read(&json_path).map_err(|source| BundleError::Io {
        path: json_path.clone(),
        source,
    })?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| invalid(format!("not valid JSON ({e})")))?;
    if value.get("kind").and_then(|k| k.as_str()) != Some(KIND) {
        return Err(invalid(
            "not a chids baseline (no \"kind\": \"chids-baseline\")".into(),
        ));
    }
    let version = value.get("format_version").and_then(|v| v.as_u64());
    if version != Some(u64::from(FORMAT_VERSION)) {
        return Err(invalid(format!(
            "bundle format version {} is not the one this chids reads ({FORMAT_VERSION}); retrain with `chids baseline`",
            version.map_or("?".into(), |v| v.to_string())
        )));
    }
    let detector = match value.get("detector") {
        None => DETECTOR.to_string(),
        Some(serde_json::Value::String(d)) => d.clone(),
        Some(other) => return Err(invalid(format!("\"detector\" is not a name: {other}"))),
    };
    Ok((value, detector))
}

/// Writes `bytes` to `path` through a temporary name.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), BundleError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|source| BundleError::Io {
            path: path.into(),
            source,
        })
}
