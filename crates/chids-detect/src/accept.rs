//! Accepting an alert as normal: the triage loop's one step.
//!
//! An alert names why its window scored high: syscalls and arguments
//! (paths, endpoints) training never saw, and the window's event count.
//! Accepting it folds those names into the bundle's seen sets, so the same
//! activity no longer counts as unseen (USI and UAI drop to 0 for it), and
//! appends an [`Acceptance`] to the bundle's audit list: who, when, which
//! alert, what changed.
//!
//! A frequency-driven alert (more events than the busiest training
//! window, counts `rising` above their training maxima) raises the
//! bundle's `max_freq` so that the window's FI is at most the largest one
//! training saw (every quieter window's FI shrinks with it), and raises the
//! training maxima of the calls and transitions it lists to their counts
//! (so they are no longer `rising` reasons). That is a per-model allowance, not a per-window one:
//! a later flood up to the accepted count scores as the busiest normal
//! window did. The autoencoder is not retrained; its weights and
//! thresholds stay as calibrated.
//!
//! After folding, the accepted window is scored again from what the alert
//! says ([`Acceptance::score_after`], error over the operating threshold):
//! below 1 the window would no longer alarm. An alert that listed only the
//! first of its unseen names (`more_unseen_*` > 0) cannot be folded whole;
//! the acceptance says how many names it could not see.

use serde::{Deserialize, Serialize};

use crate::alert::Rising;
use crate::model::Bundle;

/// What accept reads of an alert line: the agent's alert form or
/// `evaluate --alerts`' (unknown keys are ignored, so both forms and later
/// additions parse).
#[derive(Clone, Debug, Deserialize)]
pub struct AlertReasons {
    /// The alert's id (`alert_id`, or `id` in the agent's older form).
    #[serde(default, alias = "id")]
    pub alert_id: Option<String>,
    #[serde(default)]
    pub workload: Option<String>,
    /// Offline alerts: the recording and window index.
    #[serde(default)]
    pub recording: Option<String>,
    #[serde(default)]
    pub window: Option<u64>,
    /// Events in the window.
    #[serde(default)]
    pub events: u64,
    #[serde(default)]
    pub unseen_syscalls: Vec<String>,
    #[serde(default)]
    pub more_unseen_syscalls: u64,
    #[serde(default)]
    pub unseen_args: Vec<NamedArg>,
    #[serde(default)]
    pub more_unseen_args: u64,
    /// Unseen endpoints, where an alert lists them apart from paths.
    #[serde(default)]
    pub unseen_endpoints: Vec<NamedArg>,
    /// Counts that rose above their training maximum.
    #[serde(default)]
    pub rising: Vec<Rising>,
}

/// An argument as an alert lists it: `{"arg": ..., ...}` or a plain string.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum NamedArg {
    Entry { arg: String },
    Plain(String),
}

impl NamedArg {
    pub fn name(&self) -> &str {
        match self {
            NamedArg::Entry { arg } | NamedArg::Plain(arg) => arg,
        }
    }
}

/// Longest alert line read; an alert is a few KB (32 names of each kind).
pub(crate) const MAX_ALERT_LINE: usize = 1 << 20;
/// Most names one alert may add: an alert lists at most 32 of each kind;
/// more is not an alert chids wrote.
const MAX_NAMES: usize = 256;

impl AlertReasons {
    /// Parses one JSON line; `at` names it in errors (`FILE:LINE`).
    pub fn parse(line: &str, at: &str) -> Result<AlertReasons, String> {
        if line.len() > MAX_ALERT_LINE {
            return Err(format!(
                "{at}: alert line longer than {MAX_ALERT_LINE} bytes"
            ));
        }
        let a: AlertReasons =
            serde_json::from_str(line).map_err(|e| format!("{at}: not an alert ({e})"))?;
        let names = a.unseen_syscalls.len()
            + a.unseen_args.len()
            + a.unseen_endpoints.len()
            + a.rising.len();
        if names > MAX_NAMES {
            return Err(format!(
                "{at}: {names} unseen names (an alert lists at most {MAX_NAMES})"
            ));
        }
        if a.id().is_none() {
            return Err(format!(
                "{at}: the alert has no alert_id (nor recording and window)"
            ));
        }
        Ok(a)
    }

    /// The alert's id: its own, or `recording#window` for an offline alert
    /// without one.
    pub fn id(&self) -> Option<String> {
        if let Some(id) = self.alert_id.as_ref().filter(|i| !i.is_empty()) {
            return Some(id.clone());
        }
        match (&self.recording, self.window) {
            (Some(r), Some(w)) => Some(format!("{r}#{w}")),
            _ => None,
        }
    }
}

/// One accepted alert in a bundle's audit list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Acceptance {
    pub alert_id: String,
    /// Who accepted it (as given to `chids accept --by`, else the user).
    pub accepted_by: String,
    /// When, ns since the epoch.
    pub accepted_at_ns: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    /// Names added to the seen sets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub syscalls_added: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args_added: Vec<String>,
    /// `max_freq` before and after, when the window's count raised it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_freq_raised: Option<[u64; 2]>,
    /// Training maxima of calls and transitions raised to the alert's
    /// `rising` counts (`training_max` is the value before).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub maxima_raised: Vec<Rising>,
    /// Unseen names the alert did not list (so could not be folded).
    #[serde(default)]
    pub names_not_listed: u64,
    /// The accepted window's error over the operating threshold, scored
    /// again after folding (at most 1: it no longer alarms, as a window
    /// alarms when its error is above the threshold). `None` when the
    /// alert gave no event count to score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_after: Option<f64>,
}

/// What [`accept`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum Accepted {
    /// Folded in and recorded.
    Added(Acceptance),
    /// The bundle's audit list already has this alert: nothing changed.
    AlreadyAccepted(String),
}

/// Folds what `alert` names into `bundle` as normal and records it in the
/// audit list. `by` and `now_ns` are who and when.
pub fn accept(bundle: &mut Bundle, alert: &AlertReasons, by: &str, now_ns: u64) -> Accepted {
    let id = alert.id().unwrap_or_default();
    if bundle.accepted.iter().any(|a| a.alert_id == id) {
        return Accepted::AlreadyAccepted(id);
    }
    let elements = &mut bundle.elements;
    let syscalls_added: Vec<String> = alert
        .unseen_syscalls
        .iter()
        .filter(|s| elements.seen_syscalls.insert((*s).clone()))
        .cloned()
        .collect();
    let args_added: Vec<String> = alert
        .unseen_args
        .iter()
        .chain(&alert.unseen_endpoints)
        .map(NamedArg::name)
        .filter(|a| elements.seen_args.insert((*a).to_string()))
        .map(str::to_string)
        .collect();
    let before = elements.max_freq;
    let needed = max_freq_covering(before, alert.events);
    let max_freq_raised = (needed > before).then(|| {
        elements.max_freq = needed;
        [before, needed]
    });
    let maxima_raised = raise_maxima(bundle.count_maxima.as_mut(), &alert.rising);
    let names_not_listed = alert.more_unseen_syscalls + alert.more_unseen_args;
    let score_after = (alert.events > 0 && names_not_listed == 0).then(|| {
        // Every name of the window is seen now: USI and UAI are 0.
        let fi = (alert.events.saturating_sub(1)) as f64
            / (bundle.elements.max_freq as f64 * chids_core::ssg::BETA);
        let error = bundle.error(&[fi, 0.0, 0.0]);
        error / bundle.operating_threshold().max(f64::MIN_POSITIVE)
    });
    let acceptance = Acceptance {
        alert_id: id,
        accepted_by: by.to_string(),
        accepted_at_ns: now_ns,
        workload: alert.workload.clone(),
        syscalls_added,
        args_added,
        max_freq_raised,
        maxima_raised,
        names_not_listed,
        score_after,
    };
    bundle.accepted.push(acceptance.clone());
    Accepted::Added(acceptance)
}

/// Raises the training maxima of what rose to the alert's counts (a
/// transition is named `a->b`); returns what changed, with the old maxima.
fn raise_maxima(maxima: Option<&mut crate::rising::CountMaxima>, rising: &[Rising]) -> Vec<Rising> {
    let Some(maxima) = maxima else {
        return Vec::new();
    };
    let mut raised = Vec::new();
    for r in rising {
        let table = if r.what.contains("->") {
            &mut maxima.edges
        } else {
            &mut maxima.calls
        };
        let max = table.entry(r.what.clone()).or_insert(0);
        if r.count > *max {
            raised.push(Rising {
                what: r.what.clone(),
                count: r.count,
                training_max: *max,
            });
            *max = r.count;
        }
    }
    raised
}

/// The smallest `max_freq` at which a window of `events` events has an FI
/// no larger than the busiest training window had (`m - 1` edges over `m`
/// at `max_freq` m): FI is (events - 1) / (max_freq · β), so that is
/// ⌈m · (events - 1) / (m - 1)⌉. Never lowers `max_freq`.
fn max_freq_covering(m: u64, events: u64) -> u64 {
    if events <= m || m < 2 {
        return m.max(events);
    }
    let (m, e) = (u128::from(m), u128::from(events));
    let needed = (m * (e - 1)).div_ceil(m - 1);
    u64::try_from(needed).unwrap_or(u64::MAX)
}

/// Largest alert file read (a million alerts are far more than anyone triages at once).
pub(crate) const MAX_ALERT_FILE: u64 = 1 << 30;

/// Reads alert JSON lines from `path` (blank lines skipped). Errors name
/// the file and line; a FIFO or device is refused (it may never end).
pub fn read_alert_file(path: &std::path::Path) -> Result<Vec<AlertReasons>, String> {
    use std::io::{BufRead, Read};
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{}: not a regular file", path.display()));
    }
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut reader = std::io::BufReader::new(file.take(MAX_ALERT_FILE));
    let mut alerts = Vec::new();
    let mut line = String::new();
    for n in 1.. {
        line.clear();
        let read = (&mut reader)
            .take(MAX_ALERT_LINE as u64 + 1)
            .read_line(&mut line)
            .map_err(|e| format!("{}:{n}: {e}", path.display()))?;
        if read == 0 {
            break;
        }
        if line.trim().is_empty() {
            continue;
        }
        alerts.push(AlertReasons::parse(
            line.trim_end(),
            &format!("{}:{n}", path.display()),
        )?);
    }
    Ok(alerts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_alert_forms_parse_and_bad_lines_are_named() {
        let live = r#"{"id":"17a-3","workload":"img","events":40,"unseen_syscalls":["ptrace"],"more_unseen_syscalls":0,"unseen_args":[{"arg":"/etc/shadow","syscall":"openat","process":"cat"}],"more_unseen_args":0,"fi":0.1}"#;
        let a = AlertReasons::parse(live, "f:1").unwrap();
        assert_eq!(a.id().as_deref(), Some("17a-3"));
        assert_eq!(a.unseen_args[0].name(), "/etc/shadow");
        let offline = r#"{"recording":"n0.txt","window":4,"events":9,"unseen_args":["/tmp/x"]}"#;
        let b = AlertReasons::parse(offline, "f:2").unwrap();
        assert_eq!(b.id().as_deref(), Some("n0.txt#4"));
        assert_eq!(max_freq_covering(100, 50), 100);
        assert_eq!(max_freq_covering(100, 199), 200);
        let (m, e) = (288u64, 289u64);
        let after = max_freq_covering(m, e);
        let fi = |events: u64, max: u64| (events - 1) as f64 / max as f64;
        assert!(fi(e, after) <= fi(m, m) && fi(e, after - 1) > fi(m, m));
        let e = AlertReasons::parse(r#"{"events":3}"#, "f:3").unwrap_err();
        assert!(e.starts_with("f:3: ") && e.contains("alert_id"), "{e}");
        let e = AlertReasons::parse("not json", "f:4").unwrap_err();
        assert!(e.starts_with("f:4: not an alert"), "{e}");
    }
}
