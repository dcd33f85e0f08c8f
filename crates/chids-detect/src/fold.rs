//! Thin baselines must not go blind. A name (system call, path, program,
//! endpoint) that occurs in the normal recordings calibration scores is
//! normal: rather than let the window it appears in lift the operating
//! threshold above what an attack scores, it is folded into the model's
//! seen names, listed in the bundle, and the recordings are scored again.
//! A program never seen in training *or* calibration still scores as
//! unseen, and the threshold stays where it alarms.
//!
//! Modern mode only: compat reproduces the reference, which has no such
//! step.

use serde::{Deserialize, Serialize};

use crate::model::Bundle;
use crate::scored::ScoredRecording;
use crate::train::{map_recordings, Progress};
use chids_core::source::{EventSource, ReadOptions, SourceError};

/// Scoring rounds at most: each names up to
/// [`chids_core::ssg::EXPLAIN_TOP`] new names per window, so a window with
/// more needs another round.
pub(crate) const MAX_ROUNDS: usize = 4;

/// Names calibration's normal data used that training lacked, folded into
/// the model as seen (`baseline.json`'s `folded_names`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoldedNames {
    /// The calibration data they came from (`validation`, `held-out training`).
    pub source: String,
    pub syscalls: Vec<String>,
    pub args: Vec<String>,
}

impl FoldedNames {
    pub fn is_empty(&self) -> bool {
        self.syscalls.is_empty() && self.args.is_empty()
    }
}

/// The unseen names of every window of `scored` (scored with `explain`).
fn unseen_names(scored: &[ScoredRecording]) -> (Vec<String>, Vec<String>) {
    let mut syscalls = std::collections::BTreeSet::new();
    let mut args = std::collections::BTreeSet::new();
    for w in scored.iter().flat_map(|r| &r.windows) {
        syscalls.extend(w.unseen_syscalls.iter().cloned());
        args.extend(w.unseen_args.iter().map(|a| a.arg.clone()));
    }
    (syscalls.into_iter().collect(), args.into_iter().collect())
}

/// Scores normal `recordings` for calibration, folding the names they use
/// that `bundle` lacks into it (and into `bundle.folded`) until none is
/// left or [`MAX_ROUNDS`] passed; returns the last scores.
pub(crate) fn score_folding(
    bundle: &mut Bundle,
    recordings: &[&dyn EventSource],
    source: &str,
    read: &ReadOptions,
    progress: &Progress<'_>,
) -> Result<Vec<ScoredRecording>, SourceError> {
    let mut round = 0;
    loop {
        let b: &Bundle = bundle;
        let scored = map_recordings(recordings, "calibration", progress, |r| {
            crate::scored::score_one(r, b, read, true)
        })?;
        let (syscalls, args) = unseen_names(&scored);
        round += 1;
        if (syscalls.is_empty() && args.is_empty()) || round == MAX_ROUNDS {
            return Ok(scored);
        }
        let folded = bundle.folded.get_or_insert_with(|| FoldedNames {
            source: source.to_string(),
            ..FoldedNames::default()
        });
        bundle
            .elements
            .seen_syscalls
            .extend(syscalls.iter().cloned());
        bundle.elements.seen_args.extend(args.iter().cloned());
        folded.syscalls.extend(syscalls);
        folded.args.extend(args);
    }
}
