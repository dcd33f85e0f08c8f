//! Evaluation of one or more detectors on the same recordings, and the
//! report folder: `report.md`, `report.json` (the same numbers) and PNG plots.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::metrics::{lidds_table, roc, LiddsRow, Roc, RocPoint, Series};
use crate::plot::{roc_png, scores_png, PlotError, RocCurve, ScorePlot};
use crate::{operating_point, recording_table, OperatingPoint, Row};
use chids_detect::scored::ScoredRecording;
use chids_detect::Detector;

/// ROC points kept in `report.json` per model.
const ROC_POINTS_IN_REPORT: usize = 200;

/// One detector's results on the evaluation recordings.
#[derive(Clone, Debug)]
pub struct ModelEvaluation {
    /// How the user named the model (its folder).
    pub model: String,
    pub detector: &'static str,
    pub score_name: &'static str,
    pub window_ns: u64,
    /// The results at the threshold alarms use.
    pub operating_point: OperatingPoint,
    /// The reference's recording-level table.
    pub table: Vec<Row>,
    /// LID-DS metrics; `None` when no attack recording has an exploit time.
    pub lidds: Option<Vec<LiddsRow>>,
    pub roc: Roc,
    /// Usable recordings' scores, normal ones first, in input order.
    pub series: Vec<Series>,
    /// (theta, threshold) of the detector's grid, for plots.
    threshold_at: Vec<(f64, f64)>,
    /// The threshold at theta 1 (the largest training score): thetas off
    /// the grid scale it.
    theta_one_threshold: f64,
}

impl ModelEvaluation {
    /// The threshold at `theta`: from the grid when there, else scaled
    /// from the theta-1 threshold.
    pub fn threshold(&self, theta: f64) -> f64 {
        self.threshold_at
            .iter()
            .find(|(t, _)| (t - theta).abs() < 1e-9)
            .map_or(theta * self.theta_one_threshold, |&(_, th)| th)
    }
}

/// Evaluates one detector's scores; `threshold` and `source` name the
/// operating point (see [`OperatingPoint`]).
pub fn evaluate_model(
    model: &str,
    detector: &dyn Detector,
    (threshold, source): (f64, &str),
    normal: &[ScoredRecording],
    attack: &[ScoredRecording],
) -> ModelEvaluation {
    let table = recording_table(detector.thetas(), detector.thresholds(), normal, attack);
    let window_ns = detector.window_ns();
    let operating_point = operating_point(threshold, source, window_ns, normal, attack);
    let attack_usable: Vec<&ScoredRecording> = attack.iter().filter(|r| r.usable()).collect();
    let series: Vec<Series> = normal
        .iter()
        .filter(|r| r.usable())
        .map(|r| crate::series(r, window_ns, false))
        .chain(
            attack_usable
                .iter()
                .map(|r| crate::series(r, window_ns, true)),
        )
        .collect();
    let with_time = attack_usable
        .iter()
        .any(|r| r.info.labels.exploit_ns.is_some());
    let lidds = with_time.then(|| lidds_table(&series, detector.thetas(), detector.thresholds()));
    ModelEvaluation {
        model: model.to_string(),
        detector: detector.name(),
        score_name: detector.score_name(),
        window_ns,
        operating_point,
        table,
        lidds,
        roc: roc(&series),
        series,
        threshold_at: detector
            .thetas()
            .iter()
            .copied()
            .zip(detector.thresholds().iter().copied())
            .collect(),
        theta_one_threshold: detector.threshold(1.0),
    }
}

/// Counts of the evaluation input, for the report header.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Inputs {
    pub normal_recordings: usize,
    pub normal_usable: usize,
    pub attack_recordings: usize,
    pub attack_usable: usize,
    /// Usable attack recordings with an exploit time (the others count as
    /// attacked from their first window).
    pub attack_with_exploit_time: usize,
    /// Events dropped, over all recordings, because their time was out of
    /// order (beyond the two-window reorder horizon) or backwards.
    pub out_of_order_events: u64,
}

impl Inputs {
    pub fn count(normal: &[ScoredRecording], attack: &[ScoredRecording]) -> Inputs {
        Inputs {
            normal_recordings: normal.len(),
            normal_usable: normal.iter().filter(|r| r.usable()).count(),
            attack_recordings: attack.len(),
            attack_usable: attack.iter().filter(|r| r.usable()).count(),
            attack_with_exploit_time: attack
                .iter()
                .filter(|r| r.usable() && r.info.labels.exploit_ns.is_some())
                .count(),
            out_of_order_events: normal.iter().chain(attack).map(|r| r.out_of_order).sum(),
        }
    }
}

/// What to plot.
#[derive(Clone, Debug)]
pub struct ReportOptions {
    /// The attack recording whose scores are drawn; `None`: the first one.
    pub plot_recording: Option<String>,
    /// The threshold drawn on the score plots.
    pub plot_theta: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct RocReport {
    pub auc: Option<f64>,
    pub positives: usize,
    pub negatives: usize,
    /// At most ~200 points of the curve.
    pub points: Vec<RocPoint>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ModelReport {
    pub model: String,
    pub detector: String,
    pub score: String,
    pub window_ns: u64,
    pub operating_point: OperatingPoint,
    pub rows: Vec<Row>,
    pub lidds: Option<Vec<LiddsRow>>,
    pub roc: RocReport,
}

#[derive(Clone, Debug, Serialize)]
pub struct ScorePlotReport {
    pub model: String,
    pub recording: String,
    pub theta: f64,
    pub threshold: f64,
    pub file: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Plots {
    pub roc: Option<String>,
    pub scores: Vec<ScorePlotReport>,
}

/// `report.json`.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub chids_version: String,
    pub inputs: Inputs,
    pub models: Vec<ModelReport>,
    pub plots: Plots,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Plot(#[from] PlotError),
    #[error("--plot-recording {name:?}: no usable attack recording of that name (attack recordings: {known})")]
    NoSuchRecording { name: String, known: String },
}

/// The numbers of `report.json`, without plots.
pub(crate) fn build_report(inputs: &Inputs, evals: &[ModelEvaluation]) -> Report {
    Report {
        chids_version: env!("CARGO_PKG_VERSION").into(),
        inputs: inputs.clone(),
        models: evals
            .iter()
            .map(|e| ModelReport {
                model: e.model.clone(),
                detector: e.detector.into(),
                score: e.score_name.into(),
                window_ns: e.window_ns,
                operating_point: e.operating_point.clone(),
                rows: e.table.clone(),
                lidds: e.lidds.clone(),
                roc: RocReport {
                    auc: e.roc.auc,
                    positives: e.roc.positives,
                    negatives: e.roc.negatives,
                    points: e.roc.thinned(ROC_POINTS_IN_REPORT),
                },
            })
            .collect(),
        plots: Plots::default(),
    }
}

/// Writes `report.md`, `report.json` and the plots into `dir` (created if
/// needed). The Markdown and JSON are written first, so a plot failure
/// (no font) still leaves the numbers behind.
pub fn write_report(
    dir: &Path,
    inputs: &Inputs,
    evals: &[ModelEvaluation],
    options: &ReportOptions,
) -> Result<Report, ReportError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ReportError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut report = build_report(inputs, evals);

    // Decide the plots before writing, so the files name them.
    let roc_file = "roc.png";
    if evals.iter().any(|e| e.roc.auc.is_some()) {
        report.plots.roc = Some(roc_file.into());
    }
    let mut score_plots = Vec::new();
    for (i, e) in evals.iter().enumerate() {
        let attacks: Vec<&Series> = e.series.iter().filter(|s| s.exploit_ns.is_some()).collect();
        let chosen = match &options.plot_recording {
            Some(name) => Some(
                attacks
                    .iter()
                    .find(|s| &s.name == name)
                    .copied()
                    .ok_or_else(|| ReportError::NoSuchRecording {
                        name: name.clone(),
                        known: attacks
                            .iter()
                            .map(|s| s.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    })?,
            ),
            None => attacks.first().copied(),
        };
        if let Some(series) = chosen {
            let file = format!("scores-{}-{}.png", i + 1, e.detector);
            let threshold = e.threshold(options.plot_theta);
            report.plots.scores.push(ScorePlotReport {
                model: e.model.clone(),
                recording: series.name.clone(),
                theta: options.plot_theta,
                threshold,
                file: file.clone(),
            });
            score_plots.push((e, series, threshold, file));
        }
    }

    let md = markdown(&report);
    let md_path = dir.join("report.md");
    let private = chids_core::output::OUTPUT_MODE;
    chids_core::output::write_file(&md_path, md.as_bytes(), private).map_err(io(&md_path))?;
    let json_path = dir.join("report.json");
    let json = serde_json::to_vec_pretty(&report).expect("report serialises");
    chids_core::output::write_file(&json_path, &json, private).map_err(io(&json_path))?;

    if report.plots.roc.is_some() {
        let curves: Vec<RocCurve<'_>> = evals
            .iter()
            .filter(|e| e.roc.auc.is_some())
            .map(|e| RocCurve {
                label: format!(
                    "{} ({}), AUC {:.3}",
                    e.detector,
                    e.model,
                    e.roc.auc.unwrap_or(f64::NAN)
                ),
                points: &e.roc.points,
            })
            .collect();
        roc_png(&dir.join(roc_file), &curves)?;
    }
    for (e, series, threshold, file) in score_plots {
        scores_png(
            &dir.join(&file),
            &ScorePlot {
                title: format!("{}: {} ({})", series.name, e.detector, e.model),
                score_name: e.score_name,
                series,
                theta: options.plot_theta,
                threshold,
            },
        )?;
    }
    Ok(report)
}

/// The operating point as sentences a newcomer can read: what was
/// detected, how fast, and how many false alarms per hour of normal
/// activity. Parts without data (no attack or no normal recordings) are left out.
pub fn operating_sentence(op: &OperatingPoint) -> String {
    let mut s = format!(
        "At the operating point (threshold {:.4e}, {}):",
        op.threshold, op.source
    );
    if op.attacks > 0 {
        let _ = write!(
            s,
            " detected {} of {} attack recordings",
            op.detected, op.attacks
        );
        if let Some(l) = op.mean_latency_s {
            let _ = write!(s, " (mean latency {l:.2} s after the exploit starts)");
        }
        s.push(';');
    }
    if op.normals > 0 {
        let _ = write!(
            s,
            " {} of {} normal recordings raised a false alarm ({} alarm window(s) in {}, {:.1} per hour of normal activity).",
            op.false_alarms,
            op.normals,
            op.false_alarm_windows,
            duration(op.normal_hours),
            op.false_alarms_per_hour.unwrap_or(0.0)
        );
    } else if s.ends_with(';') {
        s.pop();
        s.push('.');
    }
    s
}

/// Hours as a short human duration.
pub fn duration(hours: f64) -> String {
    let secs = hours * 3600.0;
    if secs < 120.0 {
        format!("{secs:.0} s")
    } else if secs < 7200.0 {
        format!("{:.1} min", secs / 60.0)
    } else {
        format!("{hours:.1} h")
    }
}

fn opt(x: Option<f64>, digits: usize) -> String {
    x.map_or("–".into(), |v| format!("{v:.digits$}"))
}

/// `report.md`: the same numbers as `report.json`, as tables.
pub(crate) fn markdown(report: &Report) -> String {
    let mut s = String::new();
    let i = &report.inputs;
    let _ = writeln!(s, "# chids evaluation report\n");
    let _ = writeln!(
        s,
        "- normal recordings: {} ({} usable)\n- attack recordings: {} ({} usable, {} with an exploit time)\n- chids {}\n",
        i.normal_recordings,
        i.normal_usable,
        i.attack_recordings,
        i.attack_usable,
        i.attack_with_exploit_time,
        report.chids_version
    );
    if report.models.len() > 1 {
        push_side_by_side(&mut s, &report.models);
    }
    for m in &report.models {
        push_model(&mut s, m);
    }
    if report.plots.roc.is_some() || !report.plots.scores.is_empty() {
        push_plots(&mut s, &report.plots);
    }
    s
}

/// One row per model: its best F1 and the numbers at that theta.
fn push_side_by_side(s: &mut String, models: &[ModelReport]) {
    let _ = writeln!(s, "## Side by side\n");
    let _ = writeln!(
        s,
        "| Model | Detector | ROC AUC | Best F1 | at theta | DR | CFA | Precision |"
    );
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|");
    for m in models {
        let best = m.lidds.as_ref().and_then(|rows| {
            rows.iter()
                .max_by(|a, b| a.f1.total_cmp(&b.f1).then(b.theta.total_cmp(&a.theta)))
        });
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            m.model,
            m.detector,
            opt(m.roc.auc, 4),
            opt(best.map(|r| r.f1), 3),
            opt(best.map(|r| r.theta), 1),
            opt(best.map(|r| r.detection_rate), 3),
            best.map_or("–".into(), |r| r.consecutive_false_alarms.to_string()),
            opt(best.map(|r| r.precision), 3),
        );
    }
    let _ = writeln!(s);
}

/// A model's section: the operating point, both tables and the ROC AUC.
fn push_model(s: &mut String, m: &ModelReport) {
    let _ = writeln!(s, "## {} ({})\n", m.model, m.detector);
    let _ = writeln!(
        s,
        "Score: {}; windows of {} s.\n",
        m.score,
        m.window_ns as f64 / 1e9
    );
    let _ = writeln!(s, "{}\n", operating_sentence(&m.operating_point));
    push_recording_table(s, m);
    push_lidds_table(s, m);
    let _ = writeln!(
        s,
        "Window-level ROC AUC: {} ({} attack-phase windows, {} normal-phase windows).\n",
        opt(m.roc.auc, 4),
        m.roc.positives,
        m.roc.negatives
    );
}

fn push_recording_table(s: &mut String, m: &ModelReport) {
    let _ = writeln!(s, "### Recording level (the reference's table)\n");
    let _ = writeln!(
        s,
        "| Theta | Threshold | Detection rate | False-alarm rate | Detected | False alarms |"
    );
    let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|");
    for r in &m.rows {
        let _ = writeln!(
            s,
            "| {:.1} | {:.4e} | {:.3} | {:.3} | {}/{} | {}/{} |",
            r.theta,
            r.threshold,
            r.detection_rate,
            r.false_alarm_rate,
            r.detected,
            r.attacks,
            r.false_alarms,
            r.normals
        );
    }
    let _ = writeln!(s);
}

fn push_lidds_table(s: &mut String, m: &ModelReport) {
    let _ = writeln!(s, "### LID-DS metrics\n");
    match &m.lidds {
        None => {
            let _ = writeln!(
                s,
                "No attack recording carries an exploit time: LID-DS metrics need one.\n"
            );
        }
        Some(rows) => {
            let _ = writeln!(
                s,
                "| Theta | Threshold | DR | Detected | FA windows | Normal windows | CFA | Precision | F1 | Latency mean (s) | Latency max (s) |"
            );
            let _ = writeln!(
                s,
                "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            );
            for r in rows {
                let _ = writeln!(
                    s,
                    "| {:.1} | {:.4e} | {:.3} | {}/{} | {} | {} | {} | {:.3} | {:.3} | {} | {} |",
                    r.theta,
                    r.threshold,
                    r.detection_rate,
                    r.detected,
                    r.attacks,
                    r.false_alarm_windows,
                    r.normal_windows,
                    r.consecutive_false_alarms,
                    r.precision,
                    r.f1,
                    opt(r.latency_mean_s, 3),
                    opt(r.latency_max_s, 3)
                );
            }
            let _ = writeln!(s);
        }
    }
}

fn push_plots(s: &mut String, plots: &Plots) {
    let _ = writeln!(s, "## Plots\n");
    if let Some(f) = &plots.roc {
        let _ = writeln!(s, "![Window-level ROC]({f})\n");
    }
    for p in &plots.scores {
        let _ = writeln!(
            s,
            "![{} scores of {} (threshold at theta {})]({})\n",
            p.model, p.recording, p.theta, p.file
        );
    }
}
