//! The operating threshold: set from normal recordings alone, for a
//! false-alarm budget in alarm windows per hour of normal activity.
//!
//! Estimator. The scores of the calibration windows (held-out normal
//! recordings; only windows that are evidence, see [`crate::detect::evidence`])
//! are sorted; the top `m` of `n` (m = n/5, between 5 and 50, below n) are taken as
//! the tail, modelled as exponential above the (m+1)-th largest score `u`
//! with the mean excess `s` as its scale (peaks over threshold with a
//! shape-0 generalised Pareto tail). A window of normal activity then
//! exceeds `t ≥ u` with probability `(m/n)·exp(-(t-u)/s)`; the threshold
//! is the `t` where that equals the budget per window. It is never below
//! `floor` (chids: the largest training score, theta 1.0, start-up windows
//! included; a threshold below it
//! would alarm on the training data itself).
//!
//! Uncertainty. A budget of 1/h means one alarm window in 3,600 one-second
//! windows; a few minutes of validation cannot observe that rate, only the
//! tail model extrapolates to it. [`Calibration`] therefore also reports
//! what the data alone support: the alarm windows observed at the chosen
//! threshold and a one-sided 95 % Poisson upper bound on their rate per
//! hour (0 observed in H hours: at most 3.0/H). With fewer than
//! [`MIN_WINDOWS`] windows there is no tail to fit: the threshold is the
//! largest score (or the floor) and the method says so.

use serde::{Deserialize, Serialize};

/// Below this many calibration windows the threshold is the largest score.
pub const MIN_WINDOWS: usize = 10;
/// The default budget: one alarm window per hour of normal activity.
pub const DEFAULT_BUDGET_PER_HOUR: f64 = 1.0;

const NS_PER_HOUR: f64 = 3.6e12;

/// How an operating threshold was set (stored in the bundle).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Where the normal data came from: `validation` (given with `--vd`),
    /// `held-out training` (whole training recordings kept out of
    /// training), or `training` (in-sample: compat mode without `--vd`).
    pub source: String,
    pub recordings: Vec<String>,
    /// Windows that were evidence and had a score.
    pub windows: u64,
    /// Hours of normal activity the recordings cover (all their windows).
    pub hours: f64,
    /// The budget: alarm windows per hour of normal activity.
    pub max_false_alarms_per_hour: f64,
    /// `tail fit`, `largest score` (too few windows) or `floor`.
    pub method: String,
    /// The largest calibration score, and where.
    pub largest_score: f64,
    pub largest_at: String,
    /// The detector's largest training score: the threshold's lower bound.
    pub floor: f64,
    /// Calibration windows above the threshold.
    pub observed_alarm_windows: u64,
    /// One-sided 95 % upper bound on the alarm rate per hour that the
    /// calibration data alone support at this threshold.
    pub upper_bound_per_hour: f64,
}

/// One calibration window's score.
#[derive(Clone, Debug)]
pub struct WindowScore<'a> {
    pub recording: &'a str,
    pub window: u64,
    pub score: f64,
}

/// What to calibrate from.
#[derive(Clone, Debug)]
pub struct CalibrationInput<'a> {
    pub source: &'a str,
    pub recordings: Vec<String>,
    /// Evidence windows with a score.
    pub scores: Vec<WindowScore<'a>>,
    /// All windows of the recordings (the activity covered).
    pub total_windows: u64,
    pub window_ns: u64,
    pub budget_per_hour: f64,
    pub floor: f64,
}

/// Sets the operating threshold (see the module documentation).
pub fn calibrate(input: &CalibrationInput<'_>) -> (f64, Calibration) {
    let hours = input.total_windows as f64 * input.window_ns as f64 / NS_PER_HOUR;
    let mut scores: Vec<f64> = input
        .scores
        .iter()
        .map(|s| s.score)
        .filter(|s| s.is_finite())
        .collect();
    scores.sort_by(|a, b| b.total_cmp(a));
    let n = scores.len();
    let (largest_score, largest_at) = input
        .scores
        .iter()
        .filter(|s| s.score.is_finite())
        .fold(None::<&WindowScore>, |best, s| match best {
            Some(b) if b.score >= s.score => Some(b),
            _ => Some(s),
        })
        .map_or((0.0, String::new()), |s| {
            (s.score, format!("{} window {}", s.recording, s.window))
        });
    // Budget per window of normal activity.
    let p = input.budget_per_hour * input.window_ns as f64 / NS_PER_HOUR;
    let (estimate, method) = if n < MIN_WINDOWS {
        (
            largest_score,
            "largest score (too few windows for a tail fit)",
        )
    } else {
        let m = (n / 5).clamp(5, 50).min(n - 1);
        let u = scores[m];
        let s = scores[..m].iter().map(|x| x - u).sum::<f64>() / m as f64;
        let tail = m as f64 / n as f64;
        let t = if p >= tail {
            // A generous budget on a lot of data: the empirical quantile.
            scores[((p * n as f64) as usize).min(n - 1)]
        } else {
            u + s * (tail / p).ln()
        };
        (t, "tail fit")
    };
    let (threshold, method) = if estimate < input.floor {
        (input.floor, "floor")
    } else {
        (estimate, method)
    };
    let observed = scores.iter().filter(|&&s| s > threshold).count() as u64;
    let calibration = Calibration {
        source: input.source.to_string(),
        recordings: input.recordings.clone(),
        windows: n as u64,
        hours,
        max_false_alarms_per_hour: input.budget_per_hour,
        method: method.to_string(),
        largest_score,
        largest_at,
        floor: input.floor,
        observed_alarm_windows: observed,
        upper_bound_per_hour: if hours > 0.0 {
            poisson_upper_95(observed) / hours
        } else {
            f64::INFINITY
        },
    };
    (threshold, calibration)
}

/// One-sided 95 % upper confidence bound on a Poisson mean after observing
/// `k` events (Wilson–Hilferty approximation of the chi-square quantile;
/// within 1 % of the exact value, 2.99 for k = 0 where exact is 3.00).
pub(crate) fn poisson_upper_95(k: u64) -> f64 {
    let a = (k + 1) as f64;
    let z = 1.644_853_626_951_472_2;
    a * (1.0 - 1.0 / (9.0 * a) + z / (3.0 * a.sqrt())).powi(3)
}

/// Parses a false-alarm budget: `1/h`, `0.5/h`, `10/d`, `2/min`, or a bare
/// number (per hour). Returns alarms per hour.
pub fn parse_budget(s: &str) -> Result<f64, String> {
    let (num, unit) = s.trim().split_once('/').unwrap_or((s.trim(), "h"));
    let value: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a rate (try 1/h)"))?;
    let per_hour = match unit.trim() {
        "h" | "hour" => value,
        "d" | "day" => value / 24.0,
        "min" | "m" => value * 60.0,
        "s" => value * 3600.0,
        u => {
            return Err(format!(
                "unknown unit {u:?} in {s:?} (use /s, /min, /h, /d)"
            ))
        }
    };
    if !(per_hour.is_finite() && per_hour > 0.0) {
        return Err(format!("{s:?}: the budget must be positive"));
    }
    Ok(per_hour)
}

/// Which recordings to hold out of training for calibration when no
/// validation recordings are given: about a fifth (at least one, none when
/// fewer than three), chosen by `seed`, whole recordings only. Returns
/// sorted indexes into `0..count`.
pub fn held_out(count: usize, seed: u64) -> Vec<usize> {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    if count < 3 {
        return Vec::new();
    }
    let k = ((count as f64 * 0.2).round() as usize).max(1);
    let mut idx: Vec<usize> = (0..count).collect();
    // A stream of its own: the training shuffle uses `seed` as well.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x6361_6c69_6272_6174);
    idx.shuffle(&mut rng);
    let mut out = idx[..k].to_vec();
    out.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(scores: &[f64], floor: f64) -> CalibrationInput<'static> {
        CalibrationInput {
            source: "validation",
            recordings: vec!["v".into()],
            scores: scores
                .iter()
                .enumerate()
                .map(|(i, &score)| WindowScore {
                    recording: "v",
                    window: i as u64,
                    score,
                })
                .collect(),
            total_windows: scores.len() as u64,
            window_ns: 1_000_000_000,
            budget_per_hour: 1.0,
            floor,
        }
    }

    #[test]
    fn poisson_bounds() {
        assert!((poisson_upper_95(0) - 3.0).abs() < 0.05);
        assert!((poisson_upper_95(1) - 4.74).abs() < 0.05);
        assert!((poisson_upper_95(10) - 17.0).abs() < 0.2);
    }

    #[test]
    fn tail_fit_extrapolates_beyond_the_largest_score() {
        // 1000 windows with exponential-like scores 0..~7.
        let scores: Vec<f64> = (1..=1000).map(|i| -(i as f64 / 1001.0).ln()).collect();
        let (t, c) = calibrate(&input(&scores, 0.0));
        assert_eq!(c.method, "tail fit");
        assert_eq!(c.windows, 1000);
        // Budget 1/h = 1/3600 per window: ln(3600) ≈ 8.2 for a unit tail.
        assert!(t > 6.9 && (7.0..9.5).contains(&t), "{t}");
        assert_eq!(c.observed_alarm_windows, 0);
        // 1000 s of data: 0 observed supports at most 3.0 per 1000 s.
        assert!((c.upper_bound_per_hour - 3.0 * 3.6).abs() < 0.2);
        assert_eq!(c.largest_at, "v window 0");
    }

    #[test]
    fn few_windows_and_floor() {
        let (t, c) = calibrate(&input(&[0.1, 0.3, 0.2], 0.0));
        assert_eq!(t, 0.3);
        assert!(c.method.starts_with("largest score"));
        let (t, c) = calibrate(&input(&[0.1, 0.3, 0.2], 0.5));
        assert_eq!(t, 0.5);
        assert_eq!(c.method, "floor");
        let (t, _) = calibrate(&input(&[], 0.25));
        assert_eq!(t, 0.25);
    }

    #[test]
    fn budgets() {
        assert_eq!(parse_budget("1/h"), Ok(1.0));
        assert_eq!(parse_budget("24/d"), Ok(1.0));
        assert_eq!(parse_budget("2"), Ok(2.0));
        assert!(parse_budget("0/h").is_err());
        assert!(parse_budget("1/week").is_err());
        assert!(parse_budget("often").is_err());
    }

    #[test]
    fn held_out_is_whole_recordings_by_seed() {
        assert!(held_out(2, 0).is_empty());
        assert_eq!(held_out(6, 0).len(), 1);
        assert_eq!(held_out(10, 3).len(), 2);
        assert_eq!(held_out(10, 3), held_out(10, 3));
        let picks: std::collections::BTreeSet<Vec<usize>> =
            (0..20).map(|s| held_out(10, s)).collect();
        assert!(picks.len() > 1, "the seed chooses");
    }
}
