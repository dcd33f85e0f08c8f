//! The model bundle: one folder with `model.safetensors` (the weights) and
//! `baseline.json` (everything else a scorer needs). Neither format can run
//! code when loaded, unlike the reference's pickles and HDF5.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::autoencoder::{Autoencoder, ModelError};
use super::scoring::Scoring;
use chids_core::features::{Settings, TrainingElements};
use chids_core::mode::Mode;
use chids_core::ssg::EdgeOrder;

/// Bumped whenever a field changes meaning; loading refuses other versions.
pub(crate) const FORMAT_VERSION: u32 = 1;
pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const BASELINE_FILE: &str = "baseline.json";
/// Identifies our `baseline.json` among other JSON files.
pub(crate) const KIND: &str = "chids-baseline";
/// `baseline.json`'s `detector` for the autoencoder; bundles written before
/// the field existed have none and are autoencoder bundles.
pub(crate) const DETECTOR: &str = "chids";

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
pub(crate) struct BaselineFile {
    pub kind: String,
    pub format_version: u32,
    /// Which detector the bundle holds (`chids`, `stide`).
    #[serde(default = "default_detector")]
    pub detector: String,
    pub chids_version: String,
    pub mode: Mode,
    pub window_ns: u64,
    /// Feature version: which consecutive events form graph edges. Bundles
    /// written before the field existed linked the whole stream.
    #[serde(default = "edges_before_version_2")]
    pub edges: EdgeOrder,
    pub seen_syscalls: Vec<String>,
    pub seen_args: Vec<String>,
    pub max_freq: u64,
    /// Feature scaling and error rule (compat: none, mean).
    pub scoring: Scoring,
    pub thetas: Vec<f64>,
    pub thresholds: Vec<f64>,
    pub training: TrainingInfo,
    /// Directories of one-off names (modern mode; see `chids_core::patterns`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patterns: Vec<chids_core::patterns::PathPattern>,
    /// Arguments training met only through a `stat`-family call (modern
    /// mode; see `TrainingElements::stat_only_args`): unseen to `open`,
    /// `execve` and the rest. Bundles written before have none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stat_only_args: Vec<String>,
    /// The threshold `monitor` and `evaluate` use unless told otherwise,
    /// set from normal data for a false-alarm budget. Bundles written
    /// before it existed have none (θ 1.0 is used then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operating_threshold: Option<f64>,
    /// How `operating_threshold` was set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<crate::calibrate::Calibration>,
    /// The largest count of each system call and transition in one
    /// training window: what an alarm's `rising` reasons compare with.
    /// Bundles written before it existed have none (no `rising` then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count_maxima: Option<crate::rising::CountMaxima>,
    /// Names the normal calibration data used that training lacked, now
    /// in `seen_syscalls` / `seen_args` (see `crate::fold`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folded_names: Option<crate::fold::FoldedNames>,
    /// Alerts accepted as normal since training, oldest first (see
    /// [`crate::accept`]): the bundle's audit trail.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accepted: Vec<crate::accept::Acceptance>,
}

fn default_detector() -> String {
    DETECTOR.into()
}

fn edges_before_version_2() -> EdgeOrder {
    EdgeOrder::BEFORE_VERSION_2
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
    /// See [`BaselineFile::operating_threshold`].
    pub operating_threshold: Option<f64>,
    pub calibration: Option<crate::calibrate::Calibration>,
    /// See [`BaselineFile::count_maxima`].
    pub count_maxima: Option<crate::rising::CountMaxima>,
    /// See [`BaselineFile::folded_names`].
    pub folded: Option<crate::fold::FoldedNames>,
    /// See [`BaselineFile::accepted`].
    pub accepted: Vec<crate::accept::Acceptance>,
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
    /// Writes the bundle into `dir` (created if needed). Both files are
    /// written to temporary names first and then renamed (mode 0640, see
    /// `chids_core::output`), so a crash or a full disk never leaves a
    /// half-written model behind a good name, nor replaces a good one.
    pub fn save(&self, dir: &Path) -> Result<(), BundleError> {
        save_bundle(
            dir,
            &self.baseline_file(),
            BaselineFile::check,
            WEIGHTS_FILE,
            &self.model.to_safetensors(),
        )
    }

    /// The bundle's two files as bytes (`baseline.json`, `model.safetensors`):
    /// what [`Bundle::save`] writes and the fleet store publishes, with the
    /// same refusal of what could not be loaded.
    pub fn to_bytes(&self) -> Result<(Vec<u8>, Vec<u8>), String> {
        let json = serde_json::to_vec_pretty(&self.baseline_file()).expect("baseline serialises");
        serde_json::from_slice::<BaselineFile>(&json)
            .map_err(|e| e.to_string())
            .and_then(|f| f.check())
            .map_err(|m| format!("refusing to write a model that could not be loaded: {m}"))?;
        Ok((json, self.model.to_safetensors()))
    }

    fn baseline_file(&self) -> BaselineFile {
        BaselineFile {
            kind: KIND.into(),
            format_version: FORMAT_VERSION,
            detector: DETECTOR.into(),
            chids_version: env!("CARGO_PKG_VERSION").into(),
            mode: self.settings.mode,
            window_ns: self.settings.window_ns,
            edges: self.settings.edges,
            seen_syscalls: self.elements.seen_syscalls.iter().cloned().collect(),
            seen_args: self.elements.seen_args.iter().cloned().collect(),
            max_freq: self.elements.max_freq,
            scoring: self.scoring,
            thetas: self.thetas.clone(),
            thresholds: self.thresholds.clone(),
            training: self.training.clone(),
            patterns: self.elements.patterns.clone(),
            stat_only_args: self.elements.stat_only_args.iter().cloned().collect(),
            operating_threshold: self.operating_threshold,
            calibration: self.calibration.clone(),
            count_maxima: self.count_maxima.clone(),
            folded_names: self.folded.clone(),
            accepted: self.accepted.clone(),
        }
    }

    /// Loads and checks a bundle.
    pub fn load(dir: &Path) -> Result<Bundle, BundleError> {
        let json_path = dir.join(BASELINE_FILE);
        let json = std::fs::read(&json_path).map_err(|source| BundleError::Io {
            path: json_path.clone(),
            source,
        })?;
        let weights_path = dir.join(WEIGHTS_FILE);
        let weights = std::fs::read(&weights_path).map_err(|source| {
            // Another detector's bundle (STIDE's has no weights file) is
            // named as such, not as a missing file; the baseline is parsed
            // again only on this error path.
            match parse_baseline_json(&json, &json_path) {
                Ok((_, detector)) if detector != DETECTOR => BundleError::Invalid {
                    path: json_path.clone(),
                    message: format!(
                        "this is a {detector:?} baseline, not a chids autoencoder bundle"
                    ),
                },
                _ => BundleError::Io {
                    path: weights_path.clone(),
                    source,
                },
            }
        })?;
        Bundle::from_bytes(&json, &weights, dir)
    }

    /// Checks and builds a bundle from its two files' bytes; `dir` names
    /// where they came from in errors (a folder, or a broker object).
    pub fn from_bytes(json: &[u8], weights: &[u8], dir: &Path) -> Result<Bundle, BundleError> {
        let json_path = dir.join(BASELINE_FILE);
        let invalid = |message: String| BundleError::Invalid {
            path: json_path.clone(),
            message,
        };
        let (value, detector) = parse_baseline_json(json, &json_path)?;
        if detector != DETECTOR {
            return Err(invalid(format!(
                "this is a {detector:?} baseline, not a chids autoencoder bundle"
            )));
        }
        let file: BaselineFile = serde_json::from_value(value)
            .map_err(|e| invalid(format!("damaged baseline ({e})")))?;
        file.check().map_err(invalid)?;
        if file
            .operating_threshold
            .is_some_and(|t| !t.is_finite() || t < 0.0)
        {
            return Err(invalid(
                "operating_threshold must be a finite, non-negative number".into(),
            ));
        }
        let model =
            Autoencoder::from_safetensors(weights).map_err(|source| BundleError::Model {
                path: dir.join(WEIGHTS_FILE),
                source,
            })?;
        Ok(Bundle {
            settings: Settings {
                mode: file.mode,
                window_ns: file.window_ns,
                edges: file.edges,
            },
            elements: TrainingElements {
                seen_syscalls: file.seen_syscalls.into_iter().collect(),
                seen_args: file.seen_args.into_iter().collect(),
                max_freq: file.max_freq,
                patterns: file.patterns,
                stat_only_args: file.stat_only_args.into_iter().collect(),
            },
            scoring: file.scoring,
            thetas: file.thetas,
            thresholds: file.thresholds,
            training: file.training,
            operating_threshold: file.operating_threshold,
            calibration: file.calibration,
            count_maxima: file.count_maxima,
            folded: file.folded_names,
            accepted: file.accepted,
            model,
        })
    }

    /// The error of a window vector: what thresholds are compared with.
    pub fn error(&self, v: &[f64; 3]) -> f64 {
        self.scoring.error(&self.model, v)
    }

    /// The threshold alarms use by default (as every detector chooses it:
    /// [`Detector::operating_threshold`]).
    pub fn operating_threshold(&self) -> f64 {
        crate::Detector::operating_threshold(self)
    }

    /// The threshold for `theta` ([`Detector::threshold`]; the largest
    /// training error is the scale).
    pub fn threshold(&self, theta: f64) -> f64 {
        crate::Detector::threshold(self, theta)
    }
}

/// Reads `dir/baseline.json`, checks that it is ours and of this format
/// version, and returns it with the detector it names. Every detector's
/// loader starts here, so a bundle of one detector loaded as another is a
/// clear error rather than a missing-field one.
pub(crate) fn read_baseline_json(dir: &Path) -> Result<(serde_json::Value, String), BundleError> {
    let json_path = dir.join(BASELINE_FILE);
    let bytes = std::fs::read(&json_path).map_err(|source| BundleError::Io {
        path: json_path.clone(),
        source,
    })?;
    parse_baseline_json(&bytes, &json_path)
}

/// [`read_baseline_json`] on bytes already read; `json_path` names them in errors.
fn parse_baseline_json(
    bytes: &[u8],
    json_path: &Path,
) -> Result<(serde_json::Value, String), BundleError> {
    let invalid = |message: String| BundleError::Invalid {
        path: json_path.into(),
        message,
    };
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| invalid(format!("not valid JSON ({e})")))?;
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

/// Writes a bundle into `dir` (created if needed): `baseline.json` from
/// `file` and the detector's data file `data_name`. What cannot be loaded
/// is not written: `file` must pass `check` as `load` would read it back
/// (a NaN is written as `null`). Both files are written to temporary names
/// first and then renamed, mode 0640 (see
/// [`chids_core::output::write_files`]), so a crash or a full disk never
/// leaves a half-written model behind a good name, nor replaces a good one.
pub(crate) fn save_bundle<F: Serialize + serde::de::DeserializeOwned>(
    dir: &Path,
    file: &F,
    check: fn(&F) -> Result<(), String>,
    data_name: &str,
    data: &[u8],
) -> Result<(), BundleError> {
    std::fs::create_dir_all(dir).map_err(|source| BundleError::Io {
        path: dir.into(),
        source,
    })?;
    let json_path = dir.join(BASELINE_FILE);
    let json = serde_json::to_vec_pretty(file).expect("baseline serialises");
    serde_json::from_slice::<F>(&json)
        .map_err(|e| e.to_string())
        .and_then(|f| check(&f))
        .map_err(|m| BundleError::Invalid {
            path: json_path.clone(),
            message: format!("refusing to write a model that could not be loaded: {m}"),
        })?;
    let files: [(PathBuf, &[u8]); 2] = [(dir.join(data_name), data), (json_path, &json)];
    chids_core::output::write_files(&files, chids_core::output::MODEL_MODE)
        .map_err(|(path, source)| BundleError::Io { path, source })
}

/// Window lengths a bundle may have: below 1 ms a second of activity is
/// thousands of windows (memory and time grow with them), above an hour
/// nothing is ever detected in time. Both ends are refused at training
/// and at loading.
pub(crate) const WINDOW_NS_RANGE: std::ops::RangeInclusive<u64> =
    chids_core::features::MIN_WINDOW_NS..=chids_core::features::MAX_WINDOW_NS;

/// The checks every detector's bundle passes on load (and before save):
/// a sane window, and thresholds a comparison can use.
pub(crate) fn check_common(
    window_ns: u64,
    thetas: &[f64],
    thresholds: &[f64],
) -> Result<(), String> {
    if !WINDOW_NS_RANGE.contains(&window_ns) {
        return Err(format!(
            "window_ns {window_ns} is outside {}..={} (1 ms to 1 h)",
            WINDOW_NS_RANGE.start(),
            WINDOW_NS_RANGE.end()
        ));
    }
    if thetas.len() != thresholds.len() || thetas.is_empty() {
        return Err("thetas and thresholds differ in length".into());
    }
    if let Some(t) = thetas.iter().find(|t| !(t.is_finite() && **t > 0.0)) {
        return Err(format!("theta {t} is not a positive number"));
    }
    if let Some(t) = thresholds.iter().find(|t| !(t.is_finite() && **t >= 0.0)) {
        // A negative threshold flags every window, NaN none.
        return Err(format!("threshold {t} is not a finite number >= 0"));
    }
    Ok(())
}

impl BaselineFile {
    /// What must hold for scoring to mean anything.
    fn check(&self) -> Result<(), String> {
        check_common(self.window_ns, &self.thetas, &self.thresholds)?;
        if self.max_freq == 0 {
            return Err("max_freq must be positive".into());
        }
        if let Some(s) = self
            .scoring
            .scale
            .iter()
            .find(|s| !(s.is_finite() && **s > 0.0))
        {
            // 0 or negative silently disables detection; NaN scores nothing.
            return Err(format!("scoring.scale {s} is not a positive number"));
        }
        let e = self.training.max_error;
        if !(e.is_finite() && e >= 0.0) {
            return Err(format!(
                "training.max_error {e} is not a finite number >= 0"
            ));
        }
        Ok(())
    }
}
