//! The reference's recording-level table of detection and false-alarm
//! rates (SPEC §7), and the operating point at the threshold alarms use.

use serde::Serialize;

use chids_detect::model::Bundle;
use chids_detect::scored::ScoredRecording;

use crate::metrics;

/// The scores of `r` as the LID-DS metrics see them. `attack`: the
/// recording was given as an attack; one without an exploit time is taken
/// as attacked from its first window on. A run of empty windows stays one
/// entry: the metrics treat a run of unscored windows as they treat one
/// (no alarm, no count, the end of any run of alarms).
pub fn series(r: &ScoredRecording, window_ns: u64, attack: bool) -> metrics::Series {
    let starts: Vec<u64> = r.windows.iter().map(|w| w.start_ns).collect();
    metrics::Series {
        name: r.info.name.clone(),
        exploit_ns: attack.then(|| {
            r.info
                .labels
                .exploit_ns
                .unwrap_or_else(|| starts.first().copied().unwrap_or(0))
        }),
        window_ns,
        starts,
        scores: r.evidence_errors().collect(),
    }
}

/// One row of the evaluation table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    pub theta: f64,
    pub threshold: f64,
    pub detection_rate: f64,
    pub false_alarm_rate: f64,
    pub detected: usize,
    pub attacks: usize,
    pub false_alarms: usize,
    pub normals: usize,
}

/// The reference's table: per theta, the share of attack recordings
/// flagged and the share of normal recordings flagged. Unusable recordings
/// (no event, no window) are left out of both counts.
pub fn table(bundle: &Bundle, normal: &[ScoredRecording], attack: &[ScoredRecording]) -> Vec<Row> {
    recording_table(&bundle.thetas, &bundle.thresholds, normal, attack)
}

/// [`table`] for any detector's thetas and thresholds.
pub fn recording_table(
    thetas: &[f64],
    thresholds: &[f64],
    normal: &[ScoredRecording],
    attack: &[ScoredRecording],
) -> Vec<Row> {
    let normal: Vec<&ScoredRecording> = normal.iter().filter(|r| r.usable()).collect();
    let attack: Vec<&ScoredRecording> = attack.iter().filter(|r| r.usable()).collect();
    thetas
        .iter()
        .zip(thresholds)
        .map(|(&theta, &threshold)| {
            let detected = attack.iter().filter(|r| r.flagged(threshold)).count();
            let false_alarms = normal.iter().filter(|r| r.flagged(threshold)).count();
            Row {
                theta,
                threshold,
                detection_rate: ratio(detected, attack.len()),
                false_alarm_rate: ratio(false_alarms, normal.len()),
                detected,
                attacks: attack.len(),
                false_alarms,
                normals: normal.len(),
            }
        })
        .collect()
}

/// The results at the one threshold alarms actually use.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OperatingPoint {
    pub threshold: f64,
    /// Where the threshold came from: `calibrated` (the bundle's operating
    /// threshold), `theta 1.0 (no operating threshold in this bundle)`,
    /// `--theta T` or `--threshold`.
    pub source: String,
    pub detection_rate: f64,
    pub false_alarm_rate: f64,
    pub detected: usize,
    pub attacks: usize,
    pub false_alarms: usize,
    pub normals: usize,
    /// Mean seconds from the exploit start to the end of the first alarm
    /// window after it; `None` without exploit times or detections.
    pub mean_latency_s: Option<f64>,
    /// Alarm windows in the normal recordings, and the hours they cover.
    pub false_alarm_windows: usize,
    pub normal_hours: f64,
    /// `false_alarm_windows / normal_hours`; `None` without normal data.
    pub false_alarms_per_hour: Option<f64>,
}

/// The operating point of scored recordings at `threshold`.
pub fn operating_point(
    threshold: f64,
    source: &str,
    window_ns: u64,
    normal: &[ScoredRecording],
    attack: &[ScoredRecording],
) -> OperatingPoint {
    let row = &recording_table(&[0.0], &[threshold], normal, attack)[0];
    let usable_normal: Vec<&ScoredRecording> = normal.iter().filter(|r| r.usable()).collect();
    let false_alarm_windows = usable_normal
        .iter()
        .map(|r| r.alarm_windows(threshold))
        .sum();
    let normal_hours = usable_normal
        .iter()
        .map(|r| chids_core::features::window_count(&r.windows) as f64 * window_ns as f64 / 3.6e12)
        .sum::<f64>();
    let timed: Vec<metrics::Series> = attack
        .iter()
        .filter(|r| r.usable() && r.info.labels.exploit_ns.is_some())
        .map(|r| series(r, window_ns, true))
        .collect();
    let mean_latency_s = (!timed.is_empty())
        .then(|| metrics::lidds_row(&timed, 0.0, threshold).latency_mean_s)
        .flatten();
    OperatingPoint {
        threshold,
        source: source.to_string(),
        detection_rate: row.detection_rate,
        false_alarm_rate: row.false_alarm_rate,
        detected: row.detected,
        attacks: row.attacks,
        false_alarms: row.false_alarms,
        normals: row.normals,
        mean_latency_s,
        false_alarm_windows,
        normal_hours,
        false_alarms_per_hour: (normal_hours > 0.0)
            .then(|| false_alarm_windows as f64 / normal_hours),
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}
