//! STIDE over a stream of events: per-thread sequences, the locality
//! frame, and the same time windows as chids. Files and live streams run
//! through the same [`StideStream`].

use rustc_hash::FxHashMap;

use super::{StideModel, UNKNOWN};
use crate::alert::Rising;
use crate::detect::{window_is_evidence, ScoredWindow};
use crate::detector::{Explain, StreamScorer};
use crate::rising::RISING_TOP;
use chids_core::event::{Direction, Event};
use chids_core::features::WindowFeatures;
use chids_core::mode::Mode;
use chids_core::ssg::EXPLAIN_TOP;
use chids_core::window::{
    Bucket, Closed, TooManyWindows, WindowStats, Windower, MAX_WINDOWS_PER_RECORDING,
};

/// One STIDE window: its event count, largest sequence score, and what
/// explains it (calls the database lacks, mismatching sequences), bounded
/// however many events it holds.
#[derive(Default)]
pub(super) struct StideWindow {
    events: u64,
    max: Option<f64>,
    /// Calls the database never saw (recording-local ids), the first few.
    unknown: Vec<u32>,
    more_unknown: u64,
    /// Mismatching sequences (local ids) and how often, the first few.
    mismatches: Vec<(Box<[u32]>, u64)>,
}

impl StideWindow {
    fn add(&mut self, score: Option<f64>) {
        self.events += 1;
        if let Some(s) = score {
            self.max = Some(self.max.map_or(s, |m| m.max(s)));
        }
    }

    fn unknown_call(&mut self, id: u32) {
        if !self.unknown.contains(&id) {
            if self.unknown.len() < EXPLAIN_TOP {
                self.unknown.push(id);
            } else {
                self.more_unknown += 1;
            }
        }
    }

    fn mismatch(&mut self, seq: &[u32], n: u64) {
        if let Some((_, c)) = self.mismatches.iter_mut().find(|(s, _)| &s[..] == seq) {
            *c += n;
        } else if self.mismatches.len() < RISING_TOP {
            self.mismatches.push((seq.into(), n));
        }
    }
}

impl Bucket for StideWindow {
    fn events(&self) -> u64 {
        self.events
    }
    fn append(&mut self, later: Self) {
        self.events += later.events;
        if let Some(s) = later.max {
            self.max = Some(self.max.map_or(s, |m| m.max(s)));
        }
        for id in later.unknown {
            self.unknown_call(id);
        }
        self.more_unknown += later.more_unknown;
        for (seq, n) in later.mismatches {
            self.mismatch(&seq, n);
        }
    }
}

/// String ↔ id table local to one recording or stream.
#[derive(Default)]
pub(super) struct Names {
    ids: FxHashMap<Box<str>, u32>,
    pub(super) names: Vec<Box<str>>,
}

impl Names {
    pub(super) fn id(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.into());
        self.ids.insert(name.into(), id);
        id
    }
}

/// Threads whose sequences one stream follows at once.
const MAX_THREADS: usize = 1 << 16;

/// Per-thread sliding sequences over a stream of events.
pub(super) struct Sequencer {
    mode: Mode,
    length: usize,
    threads: FxHashMap<i64, Vec<u32>>,
}

impl Sequencer {
    pub(super) fn new(mode: Mode, length: usize) -> Self {
        Sequencer {
            mode,
            length,
            threads: FxHashMap::default(),
        }
    }

    /// Adds one event; returns the sequence it completes, if any.
    pub(super) fn push(
        &mut self,
        event: &Event<'_>,
        id: impl FnOnce(&str) -> u32,
    ) -> Option<&[u32]> {
        if event.dir != Direction::Enter {
            return None;
        }
        let call = id(self.mode.node_name(event.syscall));
        if self.threads.len() >= MAX_THREADS && !self.threads.contains_key(&event.tid) {
            // Bounded memory on an endless live stream: start the
            // sequences afresh (they refill within `length` calls).
            self.threads.clear();
        }
        let seq = self.threads.entry(event.tid).or_default();
        if seq.len() == self.length {
            seq.remove(0);
        }
        seq.push(call);
        (seq.len() == self.length).then_some(&seq[..])
    }
}

/// Scores a stream of events with a STIDE model, window by window.
pub(crate) struct StideStream<'m> {
    model: &'m StideModel,
    global: FxHashMap<&'m str, u32>,
    /// Stream-local ids, and each one's id in the model (UNKNOWN when the
    /// database never saw it): the hot path looks no string up twice.
    names: Names,
    to_global: Vec<u32>,
    sequencer: Sequencer,
    remapped: Vec<u32>,
    frame: std::collections::VecDeque<bool>,
    mismatches: usize,
    windower: Windower<StideWindow>,
    threshold: f64,
    /// Explain every window, not only alarms.
    explain_every: bool,
}

impl<'m> StideStream<'m> {
    fn with_limit(
        model: &'m StideModel,
        limit: Option<u64>,
        threshold: f64,
        explain: Explain,
    ) -> Self {
        let s = &model.settings;
        StideStream {
            model,
            global: model
                .syscalls
                .iter()
                .enumerate()
                .map(|(i, n)| (n.as_str(), i as u32))
                .collect(),
            names: Names::default(),
            to_global: Vec::new(),
            sequencer: Sequencer::new(s.mode, s.length),
            remapped: Vec::with_capacity(s.length),
            frame: std::collections::VecDeque::with_capacity(s.frame),
            mismatches: 0,
            // Same windows as chids: same time base, same compat clamping.
            windower: Windower::new(s.window_ns, s.mode == Mode::Compat, limit),
            threshold,
            explain_every: explain == Explain::Every,
        }
    }

    /// A recording's stream: capped at [`MAX_WINDOWS_PER_RECORDING`].
    pub(super) fn for_file(model: &'m StideModel) -> Self {
        Self::with_limit(
            model,
            Some(MAX_WINDOWS_PER_RECORDING),
            f64::INFINITY,
            Explain::Alarms,
        )
    }

    /// A live stream, alarming above `threshold`.
    pub fn live(model: &'m StideModel, threshold: f64, explain: Explain) -> Self {
        Self::with_limit(model, None, threshold, explain)
    }

    /// Below this score a window's mismatches are not named.
    fn naming_threshold(&self) -> f64 {
        if self.explain_every {
            f64::NEG_INFINITY
        } else {
            self.threshold
        }
    }

    /// Adds one event; `emit` gets each window it closes with its score.
    pub(super) fn push_window(
        &mut self,
        event: &Event<'_>,
        emit: &mut Emit<'_>,
    ) -> Result<(), TooManyWindows> {
        let settings = &self.model.settings;
        let ts = settings.mode.timestamp(event.ts_ns);
        let StideStream {
            names,
            to_global,
            global,
            ..
        } = self;
        let seq = self.sequencer.push(event, |n| {
            let id = names.id(n);
            if id as usize == to_global.len() {
                to_global.push(global.get(n).copied().unwrap_or(UNKNOWN));
            }
            id
        });
        let mut mismatch = None;
        let score = seq.map(|seq| {
            self.remapped.clear();
            self.remapped
                .extend(seq.iter().map(|&id| self.to_global[id as usize]));
            let miss = !self.model.sequences.contains(&self.remapped[..]);
            if miss {
                mismatch = Some(seq.to_vec());
            }
            if self.frame.len() == settings.frame && self.frame.pop_front() == Some(true) {
                self.mismatches -= 1;
            }
            self.frame.push_back(miss);
            self.mismatches += usize::from(miss);
            self.mismatches as f64 / settings.frame as f64
        });
        let (names, threshold) = (&self.names, self.naming_threshold());
        let Some(window) = self
            .windower
            .slot(ts, &mut |c| emit_closed(names, threshold, c, emit))?
        else {
            return Ok(());
        };
        window.add(score);
        if let Some(seq) = mismatch {
            window.mismatch(&seq, 1);
        }
        if event.dir == Direction::Enter {
            let local = self.names.id(settings.mode.node_name(event.syscall));
            if self.to_global[local as usize] == UNKNOWN {
                window.unknown_call(local);
            }
        }
        Ok(())
    }

    /// Ends the stream; returns the window statistics.
    pub(super) fn finish_windows(self, emit: &mut Emit<'_>) -> WindowStats {
        let (names, threshold) = (&self.names, self.naming_threshold());
        self.windower
            .finish(&mut |c| emit_closed(names, threshold, c, emit))
    }
}

/// What a closed window hands on: its features (no vector: STIDE has
/// none), its score, and its mismatching sequences as `rising` reasons
/// (named only when the score is above `threshold`: only alarms need them).
type Emit<'e> = dyn FnMut(WindowFeatures, Option<f64>, Vec<Rising>) + 'e;

fn emit_closed(names: &Names, threshold: f64, closed: Closed<StideWindow>, emit: &mut Emit<'_>) {
    match closed {
        Closed::Window(w) => {
            let mut f = WindowFeatures::unscored(w.index, w.start_ns, 1, w.items.events as usize);
            let name = |id: u32| names.names[id as usize].to_string();
            f.unseen_syscalls = w.items.unknown.iter().map(|&id| name(id)).collect();
            f.more_unseen_syscalls = w.items.more_unknown;
            let alarm = w.items.max.is_some_and(|e| e > threshold);
            let rising = if alarm {
                w.items
                    .mismatches
                    .iter()
                    .map(|(seq, n)| Rising {
                        what: seq
                            .iter()
                            .map(|&id| name(id))
                            .collect::<Vec<_>>()
                            .join("->"),
                        count: *n,
                        training_max: 0,
                    })
                    .collect()
            } else {
                Vec::new()
            };
            emit(f, w.items.max, rising)
        }
        Closed::Empty(r) => emit(
            WindowFeatures::unscored(r.index, r.start_ns, r.count, 0),
            None,
            Vec::new(),
        ),
    }
}

/// A STIDE window scored against `threshold`; an alarm is explained by
/// the calls the database lacks and the sequences that mismatched.
fn scored_window(
    model: &StideModel,
    (threshold, every): (f64, bool),
    features: WindowFeatures,
    error: Option<f64>,
    mismatches: Vec<Rising>,
) -> ScoredWindow {
    let evidence = window_is_evidence(model.settings.mode, &features, features.index == 0, false);
    let anomalous = evidence && error.is_some_and(|e| e > threshold);
    let reasons = (anomalous || (every && features.events > 0)).then(|| {
        let mut r = crate::alert::Reasons::unseen(&features);
        r.rising = mismatches;
        if anomalous {
            r = crate::detector::never_empty(r, features.events, 0);
        }
        r
    });
    ScoredWindow {
        features,
        error,
        threshold,
        evidence,
        anomalous,
        reasons,
    }
}

impl StreamScorer for StideStream<'_> {
    fn push(&mut self, event: &Event<'_>, emit: &mut dyn FnMut(ScoredWindow)) {
        let (model, threshold) = (self.model, (self.threshold, self.explain_every));
        // A live stream has no window cap: pushing cannot fail.
        let _uncapped = self.push_window(event, &mut |w, e, m| {
            emit(scored_window(model, threshold, w, e, m))
        });
    }
    fn begin_mid_run(&mut self) {
        self.windower.begin_mid_run();
    }
    fn advance_to(&mut self, now_ns: u64, emit: &mut dyn FnMut(ScoredWindow)) {
        let (names, naming) = (&self.names, self.naming_threshold());
        let (model, threshold) = (self.model, (self.threshold, self.explain_every));
        self.windower.advance_to(now_ns, &mut |c| {
            emit_closed(names, naming, c, &mut |w, e, m| {
                emit(scored_window(model, threshold, w, e, m))
            })
        });
    }
    fn finish(self: Box<Self>, emit: &mut dyn FnMut(ScoredWindow)) {
        let (model, threshold) = (self.model, (self.threshold, self.explain_every));
        self.finish_windows(&mut |w, e, m| emit(scored_window(model, threshold, w, e, m)));
    }
    fn window_stats(&self) -> &WindowStats {
        self.windower.stats()
    }
    fn threshold(&self) -> f64 {
        self.threshold
    }
}
