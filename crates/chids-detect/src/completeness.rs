//! How complete a baseline is: an estimate, from the training data alone,
//! of how often a window of normal activity still brings a name (system
//! call, path, endpoint) that training never saw — each such window scores
//! high on USI or UAI and so tends to alarm.
//!
//! The estimate is Good–Turing's on incidence data: a window is a sample,
//! and a name is counted once per window it occurs in. With `T` windows
//! and `Q1` names that occurred in exactly one of them, the expected
//! number of new names in the next window is about `Q1 / T` (for a name
//! seen once, the next window is about as likely to be "its" window as
//! any of the `T` seen so far). `Q1 / T` is also an upper bound on the
//! share of windows with a new name, so `Q1 / T × windows per hour`
//! bounds the alarm windows per hour that new names alone would cause.
//! A baseline with no name seen only once estimates 0: nothing seen
//! suggests more names to come.
//!
//! Only windows that can alarm are samples (modern mode: not a recording's
//! first window — the start-up, which never alarms — nor one of fewer than
//! the evidence minimum of events; see [`crate::detect::evidence`]). Names
//! seen in the other windows are known to the model all the same, so they
//! are never counted as seen once: a container's start-up brings names
//! (its mounts, its pid file, a `bind`) that it never uses again and that
//! cannot alarm, and counting them would call every baseline incomplete.
//!
//! Names are counted as the model sees them: node names (the mode's
//! families) and normalised arguments (digits removed, endpoints as the
//! model keys them). Memory is bounded: past [`MAX_NAMES`] distinct names
//! further new ones are not tracked and the estimate says it is a lower
//! bound ([`Completeness::capped`]).

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};

use chids_core::event::Event;
use chids_core::features::{normalized_arg, Settings};
use chids_core::source::{EventSource, ReadOptions, SourceError};

use crate::detect::is_evidence;

/// Distinct names tracked at most (about 20 bytes each).
pub(crate) const MAX_NAMES: usize = 1 << 20;
/// Fewer windows than this: the estimate rests on too little to trust.
pub const MIN_WINDOWS: u64 = 60;
const NS_PER_HOUR: f64 = 3.6e12;

/// The estimate, with what it rests on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Completeness {
    /// Windows with events (the samples).
    pub windows: u64,
    /// Distinct names seen.
    pub names: u64,
    /// Names seen in exactly one window (`Q1`).
    pub singletons: u64,
    /// Expected new names per window (`Q1 / T`).
    pub new_per_window: f64,
    /// More distinct names than [`MAX_NAMES`]: a lower bound.
    pub capped: bool,
}

impl Completeness {
    /// New names expected per hour of activity with windows of `window_ns`:
    /// a bound on the alarm windows per hour new names alone cause.
    pub fn new_per_hour(&self, window_ns: u64) -> f64 {
        self.new_per_window * NS_PER_HOUR / window_ns.max(1) as f64
    }

    /// Whether the expected rate of new names fits a false-alarm budget
    /// (alarm windows per hour).
    pub fn fits(&self, budget_per_hour: f64, window_ns: u64) -> bool {
        !self.capped && !self.is_thin() && self.new_per_hour(window_ns) <= budget_per_hour
    }

    /// Too few windows to estimate anything from.
    pub fn is_thin(&self) -> bool {
        self.windows < MIN_WINDOWS
    }

    /// One line for people.
    pub fn describe(&self, window_ns: u64) -> String {
        format!(
            "{} windows, {} distinct names, {} seen in one window only: about {:.3} new names per window ({:.1} per hour){}",
            self.windows,
            self.names,
            self.singletons,
            self.new_per_window,
            self.new_per_hour(window_ns),
            if self.capped { ", at least (too many names to track)" } else { "" }
        )
    }
}

/// Counts, per name, the windows it occurs in (only whether once or more).
#[derive(Debug, Default)]
pub(crate) struct NameIncidence {
    /// Name hash -> windows seen in, 1 or 2 (= more than one).
    seen: HashMap<u64, u8>,
    /// Names of the open window.
    window: HashSet<u64>,
    windows: u64,
    capped: bool,
}

impl NameIncidence {
    pub fn new() -> NameIncidence {
        NameIncidence::default()
    }

    /// A name occurring in the open window; `kind` keeps a path apart from
    /// a system call of the same spelling.
    pub fn name(&mut self, kind: u8, name: &str) {
        let mut h = DefaultHasher::new();
        kind.hash(&mut h);
        name.hash(&mut h);
        self.window.insert(h.finish());
    }

    /// Closes the open window (an empty one is not a sample).
    #[cfg(test)]
    fn end_window(&mut self) {
        self.end_window_as(true);
    }

    /// Closes the open window; one that is not `evidence` (cannot alarm)
    /// is no sample, and its names become known ones, never seen once.
    pub(crate) fn end_window_as(&mut self, evidence: bool) {
        if self.window.is_empty() {
            return;
        }
        if evidence {
            self.windows += 1;
        }
        for h in self.window.drain() {
            let full = self.seen.len() >= MAX_NAMES;
            match self.seen.get_mut(&h) {
                Some(n) => *n = 2,
                None if !full => {
                    self.seen.insert(h, if evidence { 1 } else { 2 });
                }
                None => self.capped = true,
            }
        }
    }

    pub fn estimate(&self) -> Completeness {
        let singletons = self.seen.values().filter(|&&n| n == 1).count() as u64;
        Completeness {
            windows: self.windows,
            names: self.seen.len() as u64,
            singletons,
            new_per_window: if self.windows == 0 {
                0.0
            } else {
                singletons as f64 / self.windows as f64
            },
            capped: self.capped,
        }
    }
}

/// The names an event brings, as the model sees them.
fn event_names(settings: Settings, ev: &Event<'_>, arg: &mut String, out: &mut NameIncidence) {
    let node = settings.mode.node_name(ev.syscall);
    out.name(0, node);
    if normalized_arg(settings.mode, node, ev, arg) {
        out.name(1, arg);
    }
}

/// Estimates the completeness of training data: each recording cut into
/// windows of `settings.window_ns` from its first event.
pub fn estimate(
    recordings: &[&dyn EventSource],
    settings: Settings,
    read: &ReadOptions,
) -> Result<Completeness, SourceError> {
    let mut names = NameIncidence::new();
    let mut arg = String::new();
    let window_ns = settings.window_ns.max(1);
    // Whether a window ends partial is not known while reading: counted in.
    let evidence = |first: bool, events: usize| is_evidence(settings.mode, events, first, false);
    for r in recordings {
        let mut start: Option<u64> = None;
        let (mut current, mut events) = (0u64, 0usize);
        r.read(read, &mut |ev| {
            let t0 = *start.get_or_insert(ev.ts_ns);
            let k = ev.ts_ns.saturating_sub(t0) / window_ns;
            if k != current {
                names.end_window_as(evidence(current == 0, events));
                (current, events) = (k, 0);
            }
            events += 1;
            event_names(settings, ev, &mut arg, &mut names);
            Ok(())
        })?;
        names.end_window_as(evidence(current == 0, events));
    }
    Ok(names.estimate())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows(spec: &[&[&str]]) -> Completeness {
        let mut n = NameIncidence::new();
        for w in spec {
            for name in *w {
                n.name(1, name);
            }
            n.end_window();
        }
        n.estimate()
    }

    #[test]
    fn names_in_every_window_leave_nothing_to_come() {
        let c = windows(&[&["a", "b"], &["a", "b"], &["b", "a", "a"]]);
        assert_eq!(c.windows, 3);
        assert_eq!(c.names, 2);
        assert_eq!(c.singletons, 0);
        assert_eq!(c.new_per_window, 0.0);
    }

    #[test]
    fn a_fresh_name_every_window_expects_one_more_per_window() {
        let c = windows(&[&["a", "x1"], &["a", "x2"], &["a", "x3"], &["a", "x4"]]);
        assert_eq!(c.singletons, 4);
        assert_eq!(c.new_per_window, 1.0);
        // One-second windows: 3,600 new names an hour, far past 1/h.
        assert_eq!(c.new_per_hour(1_000_000_000), 3600.0);
    }

    #[test]
    fn counts_windows_not_occurrences() {
        // "rare" occurs many times, but in one window only: a singleton.
        let c = windows(&[&["a", "rare", "rare", "rare"], &["a"], &["a"], &["a"]]);
        assert_eq!(c.singletons, 1);
        assert_eq!(c.new_per_window, 0.25);
        // Empty windows are no samples.
        let mut n = NameIncidence::new();
        n.end_window();
        assert_eq!(n.estimate().windows, 0);
        assert_eq!(n.estimate().new_per_window, 0.0);
    }

    #[test]
    fn names_of_windows_that_cannot_alarm_are_known_not_samples() {
        let mut n = NameIncidence::new();
        // The start-up window: its names are known, it is no sample.
        n.name(1, "a");
        n.name(1, "startup-only");
        n.end_window_as(false);
        n.name(1, "a");
        n.end_window();
        n.name(1, "a");
        n.name(1, "rare");
        n.end_window();
        let c = n.estimate();
        assert_eq!(c.windows, 2);
        assert_eq!(c.names, 3);
        assert_eq!(c.singletons, 1, "only `rare`: `startup-only` cannot alarm");
    }

    #[test]
    fn a_path_and_a_syscall_of_one_spelling_are_two_names() {
        let mut n = NameIncidence::new();
        n.name(0, "read");
        n.name(1, "read");
        n.end_window();
        assert_eq!(n.estimate().names, 2);
    }

    #[test]
    fn fits_needs_enough_windows_and_a_low_rate() {
        let second = 1_000_000_000;
        let mut c = Completeness {
            windows: 3600,
            names: 10,
            singletons: 1,
            new_per_window: 1.0 / 3600.0,
            capped: false,
        };
        assert!(c.fits(1.0, second));
        assert!(!c.fits(0.5, second));
        c.windows = 10;
        assert!(c.is_thin());
        assert!(!c.fits(1.0, second), "thin data never fits");
        c.windows = 3600;
        c.capped = true;
        assert!(!c.fits(1.0, second), "a lower bound never fits");
    }

    #[test]
    fn memory_is_bounded() {
        let mut n = NameIncidence::new();
        for i in 0..(MAX_NAMES + 10) {
            n.name(1, &i.to_string());
            if i % 1000 == 0 {
                n.end_window();
            }
        }
        n.end_window();
        let c = n.estimate();
        assert_eq!(c.names, MAX_NAMES as u64);
        assert!(c.capped);
    }
}
