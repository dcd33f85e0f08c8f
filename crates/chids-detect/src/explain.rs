//! The offline explain loop: a recording's windows replayed through the
//! detector's live scorer, so that offline alarms carry exactly the reasons
//! and the alert form of live ones (`evaluate --alerts`, `vectors
//! --explain`).

use std::collections::BTreeSet;

use crate::alert::{OfflineAlert, Reasons, WindowAlert};
use crate::detect::ScoredWindow;
use crate::detector::{Detector, Explain};
use chids_core::source::{EventSource, ReadOptions, SourceError};

/// Replays `source` through `detector`'s stream scorer at `threshold`;
/// `keep` gets every scored window that has events.
fn replay(
    detector: &dyn Detector,
    source: &dyn EventSource,
    read: &ReadOptions,
    threshold: f64,
    explain: Explain,
    keep: &mut dyn FnMut(ScoredWindow),
) -> Result<(), SourceError> {
    let mut stream = detector.stream(threshold, explain);
    let mut emit = |w: ScoredWindow| {
        if w.features.events > 0 {
            keep(w)
        }
    };
    source.read(read, &mut |event| {
        stream.push(event, &mut emit);
        Ok(())
    })?;
    stream.finish(&mut emit);
    Ok(())
}

/// The alert lines of a recording's alarm windows (`alarms`: their
/// indexes, as evaluation found them at `threshold`), in the live alert
/// form with the recording and window added.
pub fn alarm_lines(
    detector: &dyn Detector,
    source: &dyn EventSource,
    read: &ReadOptions,
    threshold: f64,
    alarms: &BTreeSet<u64>,
) -> Result<Vec<OfflineAlert>, SourceError> {
    let mut lines = Vec::new();
    if alarms.is_empty() {
        return Ok(lines);
    }
    let window_ns = detector.window_ns();
    replay(
        detector,
        source,
        read,
        threshold,
        Explain::Alarms,
        &mut |w| {
            if alarms.contains(&w.features.index) {
                lines.push(OfflineAlert {
                    recording: source.info().name.clone(),
                    window: w.features.index,
                    detector: detector.name().to_string(),
                    alert: WindowAlert::from_scored(w, window_ns),
                });
            }
        },
    )?;
    Ok(lines)
}

/// Every window's reasons (windows with events), by window index.
pub fn window_reasons(
    detector: &dyn Detector,
    source: &dyn EventSource,
    read: &ReadOptions,
    threshold: f64,
) -> Result<std::collections::BTreeMap<u64, Reasons>, SourceError> {
    let mut out = std::collections::BTreeMap::new();
    replay(
        detector,
        source,
        read,
        threshold,
        Explain::Every,
        &mut |w| {
            if let Some(r) = w.reasons {
                out.insert(w.features.index, r);
            }
        },
    )?;
    Ok(out)
}
