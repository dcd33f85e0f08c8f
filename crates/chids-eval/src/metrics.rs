//! LID-DS style metrics over scored recordings: pure functions of the
//! per-window scores, the window start times and the labels.
//!
//! Conventions (LID-DS, Grimmer et al.; window-based here because chids
//! and STIDE both score time windows):
//! - A window is in the *attack phase* of an attack recording when it ends
//!   after the exploit start (`start + window > exploit`): the window that
//!   contains the exploit start counts as attack. Every other window
//!   (normal recordings, attack recordings before the exploit) is in the
//!   *normal phase*.
//! - An *alarm* is a window whose score exceeds the threshold. A window
//!   without a score (no event) is never an alarm.
//! - An attack recording is *detected* when an alarm falls in its attack
//!   phase.
//! - False alarms are the alarms in the normal phase, counted per window
//!   and as runs of consecutive alarmed windows ("cfa": one run, one alarm
//!   an operator must look at). A run is cut where the normal phase ends.
//! - Precision = detected / (detected + cfa); F1 uses the detection rate
//!   as recall.
//! - Latency = end of the first attack-phase alarm window − exploit start:
//!   a window's verdict exists once the window has closed, so that is the
//!   earliest moment a streaming detector can raise it.
//! - ROC: every scored window is one sample, positive when in the attack
//!   phase, scored by its error.

use serde::Serialize;

/// One recording's scores, with what the metrics need to know about it.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub name: String,
    /// `None` for a normal recording; for an attack recording, when the
    /// attack starts (ns, the event timestamps' clock).
    pub exploit_ns: Option<u64>,
    /// Window length (ns): window `i` covers `[starts[i], starts[i] + window_ns)`.
    pub window_ns: u64,
    pub starts: Vec<u64>,
    /// Score per window; `None` for a window without one (no event).
    pub scores: Vec<Option<f64>>,
}

impl Series {
    /// Whether window `i` is in the attack phase.
    pub(crate) fn is_attack_window(&self, i: usize) -> bool {
        match self.exploit_ns {
            Some(exploit) => self.starts[i].saturating_add(self.window_ns) > exploit,
            None => false,
        }
    }

    fn alarm(&self, i: usize, threshold: f64) -> bool {
        self.scores[i].is_some_and(|s| s > threshold)
    }
}

/// LID-DS metrics at one threshold.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LiddsRow {
    pub theta: f64,
    pub threshold: f64,
    /// Attack recordings, and those with an alarm in their attack phase.
    pub attacks: usize,
    pub detected: usize,
    pub detection_rate: f64,
    /// Scored windows in the normal phase, and those alarmed.
    pub normal_windows: usize,
    pub false_alarm_windows: usize,
    /// Runs of consecutive false-alarm windows.
    pub consecutive_false_alarms: usize,
    /// detected / (detected + consecutive_false_alarms); 0 when both are 0.
    pub precision: f64,
    /// Harmonic mean of precision and detection rate; 0 when both are 0.
    pub f1: f64,
    /// Over detected recordings, seconds; `None` when none was detected.
    pub latency_mean_s: Option<f64>,
    pub latency_max_s: Option<f64>,
}

/// LID-DS metrics for one threshold over `series` (normal and attack
/// recordings together; `exploit_ns` tells them apart).
pub(crate) fn lidds_row(series: &[Series], theta: f64, threshold: f64) -> LiddsRow {
    let mut attacks = 0;
    let mut detected = 0;
    let mut normal_windows = 0;
    let mut false_alarm_windows = 0;
    let mut cfa = 0;
    let mut latencies = Vec::new();
    for s in series {
        let mut in_run = false;
        let mut first_alarm: Option<usize> = None;
        for i in 0..s.scores.len() {
            if s.is_attack_window(i) {
                in_run = false;
                if first_alarm.is_none() && s.alarm(i, threshold) {
                    first_alarm = Some(i);
                }
                continue;
            }
            if s.scores[i].is_some() {
                normal_windows += 1;
            }
            let alarm = s.alarm(i, threshold);
            if alarm {
                false_alarm_windows += 1;
                if !in_run {
                    cfa += 1;
                }
            }
            in_run = alarm;
        }
        if let Some(exploit) = s.exploit_ns {
            attacks += 1;
            if let Some(i) = first_alarm {
                detected += 1;
                let end = s.starts[i].saturating_add(s.window_ns);
                latencies.push(end.saturating_sub(exploit) as f64 / 1e9);
            }
        }
    }
    let detection_rate = ratio(detected, attacks);
    let precision = ratio(detected, detected + cfa);
    let f1 = if precision + detection_rate > 0.0 {
        2.0 * precision * detection_rate / (precision + detection_rate)
    } else {
        0.0
    };
    LiddsRow {
        theta,
        threshold,
        attacks,
        detected,
        detection_rate,
        normal_windows,
        false_alarm_windows,
        consecutive_false_alarms: cfa,
        precision,
        f1,
        latency_mean_s: (!latencies.is_empty())
            .then(|| latencies.iter().sum::<f64>() / latencies.len() as f64),
        latency_max_s: latencies.iter().copied().reduce(f64::max),
    }
}

/// [`lidds_row`] for every (theta, threshold) pair.
pub(crate) fn lidds_table(series: &[Series], thetas: &[f64], thresholds: &[f64]) -> Vec<LiddsRow> {
    thetas
        .iter()
        .zip(thresholds)
        .map(|(&theta, &threshold)| lidds_row(series, theta, threshold))
        .collect()
}

/// One point of a ROC curve: alarming on scores `> threshold` gives these rates.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RocPoint {
    pub fpr: f64,
    pub tpr: f64,
    /// The score at which this point is reached (`+inf` for the origin).
    pub threshold: f64,
}

/// A window-level ROC curve and its area.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Roc {
    pub positives: usize,
    pub negatives: usize,
    /// From (0, 0) to (1, 1), one point per distinct score.
    pub points: Vec<RocPoint>,
    /// Trapezoid area; `None` without both positives and negatives.
    pub auc: Option<f64>,
}

/// The window-level ROC curve of `series`. Windows with equal scores enter
/// the curve together (one diagonal step), so ties count half, as in the
/// Mann-Whitney reading of the AUC.
pub fn roc(series: &[Series]) -> Roc {
    let mut samples: Vec<(f64, bool)> = series
        .iter()
        .flat_map(|s| {
            s.scores
                .iter()
                .enumerate()
                .filter_map(move |(i, score)| score.map(|x| (x, s.is_attack_window(i))))
        })
        .collect();
    // Highest score first; NaN (never expected) sorts as the largest.
    samples.sort_by(|a, b| b.0.total_cmp(&a.0));
    let positives = samples.iter().filter(|s| s.1).count();
    let negatives = samples.len() - positives;
    if positives == 0 || negatives == 0 {
        return Roc {
            positives,
            negatives,
            points: Vec::new(),
            auc: None,
        };
    }
    let mut points = vec![RocPoint {
        fpr: 0.0,
        tpr: 0.0,
        threshold: f64::INFINITY,
    }];
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut auc = 0.0;
    let mut i = 0;
    while i < samples.len() {
        let score = samples[i].0;
        while i < samples.len() && samples[i].0.total_cmp(&score).is_eq() {
            if samples[i].1 {
                tp += 1;
            } else {
                fp += 1;
            }
            i += 1;
        }
        let prev = *points.last().expect("origin");
        let point = RocPoint {
            fpr: fp as f64 / negatives as f64,
            tpr: tp as f64 / positives as f64,
            threshold: score,
        };
        auc += (point.fpr - prev.fpr) * (point.tpr + prev.tpr) / 2.0;
        points.push(point);
    }
    Roc {
        positives,
        negatives,
        points,
        auc: Some(auc),
    }
}

impl Roc {
    /// At most about `max` points (the first and last always kept), for
    /// reports: a curve over millions of windows has as many points.
    pub(crate) fn thinned(&self, max: usize) -> Vec<RocPoint> {
        let n = self.points.len();
        if n <= max.max(2) {
            return self.points.clone();
        }
        let step = n.div_ceil(max.max(2) - 1);
        let mut out: Vec<RocPoint> = self.points.iter().step_by(step).copied().collect();
        if out.last() != self.points.last() {
            out.push(self.points[n - 1]);
        }
        out
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn series(exploit_s: Option<f64>, scores: &[Option<f64>]) -> Series {
        Series {
            name: "r".into(),
            exploit_ns: exploit_s.map(|e| (e * S as f64) as u64),
            window_ns: S,
            starts: (0..scores.len() as u64).map(|i| 100 * S + i * S).collect(),
            scores: scores.to_vec(),
        }
    }

    #[test]
    fn window_containing_exploit_is_attack_phase() {
        let s = series(Some(102.5), &[Some(0.0); 5]);
        let phase: Vec<bool> = (0..5).map(|i| s.is_attack_window(i)).collect();
        // Windows [100,101) [101,102) before; [102,103) holds the exploit.
        assert_eq!(phase, vec![false, false, true, true, true]);
        // An exploit exactly at a window start: that window is the first.
        let s = series(Some(102.0), &[Some(0.0); 5]);
        assert!(!s.is_attack_window(1) && s.is_attack_window(2));
    }

    #[test]
    fn detection_false_alarms_runs_precision_f1_latency() {
        let t = 0.5;
        // Normal: alarms at windows 1,2 (one run) and 4 (another); the
        // empty window 3 breaks the run and is not a scored window.
        let normal = series(None, &[Some(0.1), Some(0.9), Some(0.8), None, Some(0.7)]);
        // Attack, exploit at 102.5: alarm at 0 (false, run 1), alarm at 1
        // (false, same run), the run is cut at the exploit; first attack
        // alarm at window 3 = [103,104): latency 104 - 102.5 = 1.5 s.
        let a1 = series(
            Some(102.5),
            &[Some(0.6), Some(0.6), Some(0.1), Some(0.9), Some(0.9)],
        );
        // Attack, exploit at 100.2: alarm in window 0 (contains the exploit)
        // → latency 101 - 100.2 = 0.8 s.
        let a2 = series(Some(100.2), &[Some(0.7), Some(0.1)]);
        // Attack never alarmed after the exploit: missed; its pre-exploit
        // alarm (window 0) is one false-alarm run.
        let a3 = series(Some(101.0), &[Some(0.9), Some(0.1), Some(0.1)]);
        let row = lidds_row(&[normal, a1, a2, a3], 1.0, t);
        assert_eq!(row.attacks, 3);
        assert_eq!(row.detected, 2);
        assert!((row.detection_rate - 2.0 / 3.0).abs() < 1e-12);
        // Normal-phase scored windows: normal 4, a1 2, a2 0, a3 1.
        assert_eq!(row.normal_windows, 7);
        // False-alarm windows: normal 3, a1 2, a3 1.
        assert_eq!(row.false_alarm_windows, 6);
        // Runs: normal 2, a1 1, a3 1.
        assert_eq!(row.consecutive_false_alarms, 4);
        let p = 2.0 / 6.0;
        let r = 2.0 / 3.0;
        assert!((row.precision - p).abs() < 1e-12);
        assert!((row.f1 - 2.0 * p * r / (p + r)).abs() < 1e-12);
        assert!((row.latency_mean_s.unwrap() - (1.5 + 0.8) / 2.0).abs() < 1e-9);
        assert!((row.latency_max_s.unwrap() - 1.5).abs() < 1e-9);
    }

    #[test]
    fn threshold_is_strict_and_nothing_detected_gives_zeros() {
        let a = series(Some(100.0), &[Some(0.5)]);
        let row = lidds_row(std::slice::from_ref(&a), 1.0, 0.5);
        assert_eq!(row.detected, 0);
        assert_eq!((row.precision, row.f1), (0.0, 0.0));
        assert_eq!(row.latency_mean_s, None);
        assert_eq!(lidds_row(&[a], 1.0, 0.49).detected, 1);
    }

    #[test]
    fn roc_auc_hand_computed() {
        // Positives 0.9, 0.4; negatives 0.8, 0.3, 0.1.
        // Pairs (pos > neg): 0.9 beats 3, 0.4 beats 2 → AUC = 5/6.
        let normal = series(None, &[Some(0.8), Some(0.3), Some(0.1)]);
        let attack = series(Some(100.0), &[Some(0.9), Some(0.4)]);
        let r = roc(&[normal, attack]);
        assert_eq!((r.positives, r.negatives), (2, 3));
        assert!((r.auc.unwrap() - 5.0 / 6.0).abs() < 1e-12);
        let pts: Vec<(f64, f64)> = r.points.iter().map(|p| (p.fpr, p.tpr)).collect();
        assert_eq!(
            pts,
            vec![
                (0.0, 0.0),
                (0.0, 0.5),
                (1.0 / 3.0, 0.5),
                (1.0 / 3.0, 1.0),
                (2.0 / 3.0, 1.0),
                (1.0, 1.0)
            ]
        );
    }

    #[test]
    fn roc_ties_count_half() {
        // One positive and one negative with the same score: AUC 0.5, and
        // one diagonal step rather than an optimistic corner.
        let normal = series(None, &[Some(0.5)]);
        let attack = series(Some(100.0), &[Some(0.5)]);
        let r = roc(&[normal, attack]);
        assert_eq!(r.auc, Some(0.5));
        assert_eq!(r.points.len(), 2);
        // Pre-exploit windows of attack recordings are negatives.
        let attack = series(Some(101.0), &[Some(0.9), Some(0.2)]);
        let r = roc(&[attack]);
        assert_eq!((r.positives, r.negatives), (1, 1));
        assert_eq!(r.auc, Some(0.0));
    }

    #[test]
    fn roc_needs_both_classes() {
        let r = roc(&[series(None, &[Some(0.1), None])]);
        assert_eq!(r.auc, None);
        assert_eq!(r.negatives, 1);
    }

    #[test]
    fn thinning_keeps_ends() {
        let r = Roc {
            positives: 1,
            negatives: 1,
            points: (0..=100)
                .map(|i| RocPoint {
                    fpr: i as f64 / 100.0,
                    tpr: i as f64 / 100.0,
                    threshold: 0.0,
                })
                .collect(),
            auc: Some(0.5),
        };
        let t = r.thinned(10);
        assert!(t.len() <= 11);
        assert_eq!(t.first(), r.points.first());
        assert_eq!(t.last(), r.points.last());
    }
}
