//! The alert line: what every anomalous window reports, live (`monitor`,
//! the agent) and offline (`evaluate --alerts`), and what `accept` reads
//! back. One serde type, so the three cannot drift apart.

use serde::{Deserialize, Serialize};

use chids_core::features::{UnseenArg, WindowFeatures};

/// What kind of record an alert line is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A window whose score reached the alarm threshold.
    #[default]
    Anomaly,
}

/// A count that rose above what training ever saw in one window: a system
/// call (`"openat"`) or a transition between two (`"read->write"`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rising {
    pub what: String,
    /// Its count in the alarming window.
    pub count: u64,
    /// The largest count of it in one training window (0: never seen).
    pub training_max: u64,
}

/// Why a window alarmed: the names training never saw and the counts that
/// rose most above their training maximum. An alarm always has at least one
/// reason (see [`Reasons::is_empty`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Reasons {
    /// Syscalls in the window that training never saw: the first 32.
    #[serde(default)]
    pub unseen_syscalls: Vec<String>,
    /// Distinct unseen syscalls beyond `unseen_syscalls`.
    #[serde(default)]
    pub more_unseen_syscalls: u64,
    /// Arguments (normalised paths, endpoints) training never saw, with who
    /// used them: the first 32 (argument, syscall) pairs.
    #[serde(default)]
    pub unseen_args: Vec<UnseenArg>,
    /// Distinct unseen (argument, syscall) pairs beyond `unseen_args`.
    #[serde(default)]
    pub more_unseen_args: u64,
    /// Counts furthest above their training maximum, largest excess first.
    #[serde(default)]
    pub rising: Vec<Rising>,
}

impl Reasons {
    /// The unseen names of a window (no `rising`).
    pub fn unseen(w: &WindowFeatures) -> Reasons {
        Reasons {
            unseen_syscalls: w.unseen_syscalls.clone(),
            more_unseen_syscalls: w.more_unseen_syscalls,
            unseen_args: w.unseen_args.clone(),
            more_unseen_args: w.more_unseen_args,
            rising: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.unseen_syscalls.is_empty()
            && self.more_unseen_syscalls == 0
            && self.unseen_args.is_empty()
            && self.more_unseen_args == 0
            && self.rising.is_empty()
    }
}

/// The keys of an alert that describe the window: what `monitor`, the agent
/// and `evaluate --alerts` all write (each adds who and where).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowAlert {
    #[serde(default)]
    pub kind: AlertKind,
    pub window_start_ns: u64,
    pub window_end_ns: u64,
    pub events: usize,
    /// Frequency index: the window's transitions against the busiest
    /// training window's (1 is as busy as training ever was).
    pub fi: f64,
    /// Unseen-syscall index: how many calls training never saw, weighted by
    /// how connected they are in the window's call graph.
    pub usi: f64,
    /// Unseen-argument index: the same for arguments (paths, endpoints).
    pub uai: f64,
    /// The detector's error for the window (reconstruction error, STIDE
    /// mismatch share).
    pub error: f64,
    pub threshold: f64,
    /// `error / threshold`: 1 or more is an alarm, and it reads as severity.
    pub score: f64,
    #[serde(flatten)]
    pub reasons: Reasons,
}

impl WindowAlert {
    /// The alert of an anomalous scored window of `window_ns`; its reasons
    /// are the scorer's (never empty, see [`crate::detector::never_empty`]).
    pub fn from_scored(scored: crate::detect::ScoredWindow, window_ns: u64) -> WindowAlert {
        let crate::detect::ScoredWindow {
            features: w,
            error,
            threshold,
            reasons,
            ..
        } = scored;
        // STIDE windows have no vector.
        let v = w.vector.map_or([0.0; 3], |v| v.to_array());
        let error = error.unwrap_or(0.0);
        let reasons = crate::detector::never_empty(
            reasons.unwrap_or_else(|| Reasons::unseen(&w)),
            w.events,
            0,
        );
        WindowAlert {
            kind: AlertKind::Anomaly,
            window_start_ns: w.start_ns,
            window_end_ns: w.start_ns.saturating_add(window_ns),
            events: w.events,
            fi: v[0],
            usi: v[1],
            uai: v[2],
            error,
            threshold,
            score: score(error, threshold),
            reasons,
        }
    }
}

/// `error / threshold`. A zero threshold (STIDE's, when training saw no
/// mismatch: every non-zero error alarms) has no ratio; there an alarming
/// error reads as `1 + error`, so that 1 or more still means an alarm and
/// a larger error still scores higher.
pub fn score(error: f64, threshold: f64) -> f64 {
    if threshold > 0.0 {
        error / threshold
    } else if error > 0.0 {
        1.0 + error
    } else {
        0.0
    }
}

/// One line of `chids evaluate --alerts`: the window keys plus where it is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OfflineAlert {
    /// The recording's name.
    pub recording: String,
    /// The window's index from the recording start.
    pub window: u64,
    /// Which detector alarmed (`chids`, `stide`).
    pub detector: String,
    #[serde(flatten)]
    pub alert: WindowAlert,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_line_round_trips_and_reads_older_lines() {
        let line = OfflineAlert {
            recording: "r".into(),
            window: 3,
            detector: "chids".into(),
            alert: WindowAlert {
                kind: AlertKind::Anomaly,
                window_start_ns: 3_000,
                window_end_ns: 4_000,
                events: 12,
                fi: 0.5,
                usi: 0.0,
                uai: 0.0,
                error: 2.0,
                threshold: 1.0,
                score: 2.0,
                reasons: Reasons {
                    rising: vec![Rising {
                        what: "read->write".into(),
                        count: 40,
                        training_max: 10,
                    }],
                    ..Reasons::default()
                },
            },
        };
        let json = serde_json::to_string(&line).unwrap();
        assert!(json.contains(r#""kind":"anomaly""#), "{json}");
        assert!(json.contains(r#""rising":[{"what":"read->write","count":40,"training_max":10}]"#));
        let back: OfflineAlert = serde_json::from_str(&json).unwrap();
        assert_eq!(back, line);
        // A line without kind and reasons (an older monitor's) still reads.
        let old = r#"{"recording":"r","window":1,"detector":"chids","window_start_ns":0,
            "window_end_ns":1,"events":2,"fi":0,"usi":0,"uai":0,"error":1,"threshold":1,"score":1}"#;
        let back: OfflineAlert = serde_json::from_str(old).unwrap();
        assert!(back.alert.reasons.is_empty());
        assert_eq!(back.alert.kind, AlertKind::Anomaly);
    }

    #[test]
    fn score_is_error_over_threshold() {
        assert_eq!(score(3.0, 2.0), 1.5);
        assert_eq!(score(0.5, 0.0), 1.5);
        assert_eq!(score(0.0, 0.0), 0.0);
    }
}
