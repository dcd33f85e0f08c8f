//! From events to anomaly vectors: encodes each event into the few ids the
//! graph needs, windows them, and computes [FI, USI, UAI] per window.
//!
//! [`FeatureStream`] is the one place where this happens, for files and for
//! live capture alike.

use std::collections::BTreeSet;

use rustc_hash::FxHashMap as HashMap;

use serde::{Deserialize, Serialize};

use crate::args::{normalize_endpoint, normalize_path, Mode, RawArg};
use crate::event::Event;
use crate::ssg::{anomaly_vector, AnomalyVector, Explanation, Seen, WindowEvent, NO_ARG};
use crate::window::{Window, WindowStats, Windower};

/// Everything that decides how events become vectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub mode: Mode,
    pub window_ns: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            mode: Mode::Modern,
            window_ns: 1_000_000_000,
        }
    }
}

/// The training elements (SPEC §4).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainingElements {
    pub seen_syscalls: BTreeSet<String>,
    pub seen_args: BTreeSet<String>,
    pub max_freq: u64,
}

/// String ↔ id table.
#[derive(Default)]
struct Interner {
    ids: HashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
}

impl Interner {
    /// Returns the id and whether the name is new.
    fn intern(&mut self, name: &str) -> (u32, bool) {
        if let Some(&id) = self.ids.get(name) {
            return (id, false);
        }
        let id = self.names.len() as u32;
        self.names.push(name.into());
        self.ids.insert(name.into(), id);
        (id, true)
    }

    fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }
}

/// Symbol tables of one stream, with the baseline's verdict cached per id.
#[derive(Default)]
struct Symbols {
    nodes: Interner,
    node_seen: Vec<bool>,
    args: Interner,
    arg_seen: Vec<bool>,
    /// raw argument text → normalised argument id (normalising allocates).
    raw_args: HashMap<Box<str>, u32>,
    processes: Interner,
}

impl Symbols {
    /// Every syscall node and argument this stream used, as training elements.
    fn elements(&self, max_freq: u64) -> TrainingElements {
        TrainingElements {
            seen_syscalls: self.nodes.names.iter().map(|s| s.to_string()).collect(),
            seen_args: self.args.names.iter().map(|s| s.to_string()).collect(),
            max_freq,
        }
    }
}

impl Seen for Symbols {
    fn syscall_seen(&self, node: u32) -> bool {
        self.node_seen[node as usize]
    }
    fn arg_seen(&self, arg: u32) -> bool {
        self.arg_seen[arg as usize]
    }
}

/// An unseen argument, with what used it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UnseenArg {
    pub arg: String,
    pub syscall: String,
    pub process: String,
}

/// The features of one closed window.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WindowFeatures {
    pub index: u64,
    pub start_ns: u64,
    pub events: usize,
    /// `None` for an empty window.
    pub vector: Option<AnomalyVector>,
    pub unseen_syscalls: Vec<String>,
    pub unseen_args: Vec<UnseenArg>,
}

/// Turns a stream of events into windows and their anomaly vectors.
///
/// Without a baseline (the first training pass) it only counts: every
/// syscall and argument counts as seen and vectors are not computed.
pub struct FeatureStream<'b> {
    settings: Settings,
    baseline: Option<&'b TrainingElements>,
    symbols: Symbols,
    windower: Windower<WindowEvent>,
    explain: bool,
    /// Reused buffer for normalised endpoints.
    scratch: String,
}

impl<'b> FeatureStream<'b> {
    pub fn new(settings: Settings, baseline: Option<&'b TrainingElements>, explain: bool) -> Self {
        FeatureStream {
            settings,
            baseline,
            symbols: Symbols::default(),
            windower: Windower::new(settings.window_ns, settings.mode == Mode::Compat),
            explain,
            scratch: String::new(),
        }
    }

    /// Adds one event; `emit` receives every window this closes.
    pub fn push(&mut self, event: &Event<'_>, emit: &mut impl FnMut(WindowFeatures)) {
        let ts = self.settings.mode.timestamp(event.ts_ns);
        let encoded = self.encode(event);
        let FeatureStream {
            windower,
            symbols,
            baseline,
            explain,
            ..
        } = self;
        windower.push(ts, encoded, &mut |w| {
            emit(score(&w, symbols, *baseline, *explain))
        });
    }

    /// Closes windows that ended well before `now_ns` (live: silent containers).
    pub fn advance_to(&mut self, now_ns: u64, emit: &mut impl FnMut(WindowFeatures)) {
        let FeatureStream {
            windower,
            symbols,
            baseline,
            explain,
            ..
        } = self;
        windower.advance_to(now_ns, &mut |w| {
            emit(score(&w, symbols, *baseline, *explain))
        });
    }

    /// Adds one event, keeping the windows it closes encoded in `kept`
    /// instead of scoring them (first training pass).
    fn push_keep(&mut self, event: &Event<'_>, kept: &mut Vec<Window<WindowEvent>>) {
        let ts = self.settings.mode.timestamp(event.ts_ns);
        let encoded = self.encode(event);
        self.windower.push(ts, encoded, &mut |w| kept.push(w));
    }

    /// Ends the stream. Returns the window statistics and the symbols seen.
    pub fn finish(self, emit: &mut impl FnMut(WindowFeatures)) -> (WindowStats, TrainingElements) {
        let FeatureStream {
            windower,
            symbols,
            baseline,
            explain,
            ..
        } = self;
        let stats = windower.finish(&mut |w| emit(score(&w, &symbols, baseline, explain)));
        let elements = symbols.elements(0);
        (stats, elements)
    }

    fn encode(&mut self, event: &Event<'_>) -> WindowEvent {
        let mode = self.settings.mode;
        let node_name = mode.node_name(event.syscall);
        let sym = &mut self.symbols;
        let (node, new) = sym.nodes.intern(node_name);
        if new {
            let seen = self
                .baseline
                .is_none_or(|b| b.seen_syscalls.contains(node_name));
            sym.node_seen.push(seen);
        }
        let mut arg = NO_ARG;
        if let Some(kind) = mode.arg_kind(node_name) {
            match mode.raw_arg(kind, event) {
                Some(RawArg::Path(raw)) => {
                    arg = match sym.raw_args.get(raw) {
                        Some(&id) => id,
                        None => {
                            let normalized = normalize_path(raw);
                            let id = intern_arg(sym, self.baseline, &normalized);
                            sym.raw_args.insert(raw.into(), id);
                            id
                        }
                    };
                }
                Some(RawArg::Endpoint(endpoint)) => {
                    let mut text = std::mem::take(&mut self.scratch);
                    normalize_endpoint(&endpoint, &mut text);
                    arg = intern_arg(sym, self.baseline, &text);
                    self.scratch = text;
                }
                None => {}
            }
        }
        // The process is only needed to explain unseen things.
        let process = if self.explain && (arg != NO_ARG || !sym.node_seen[node as usize]) {
            // Names from the watched system reach alerts and terminals
            // only in escaped form.
            sym.processes
                .intern(&crate::escape::escaped_str(event.process))
                .0
        } else {
            NO_ARG
        };
        WindowEvent { node, arg, process }
    }
}

/// The id of a normalised argument, recording whether the baseline saw it.
fn intern_arg(sym: &mut Symbols, baseline: Option<&TrainingElements>, normalized: &str) -> u32 {
    let (id, new) = sym.args.intern(normalized);
    if new {
        let seen = baseline.is_none_or(|b| b.seen_args.contains(normalized));
        sym.arg_seen.push(seen);
    }
    id
}

fn score(
    window: &Window<WindowEvent>,
    symbols: &Symbols,
    baseline: Option<&TrainingElements>,
    explain: bool,
) -> WindowFeatures {
    let mut features = WindowFeatures {
        index: window.index,
        start_ns: window.start_ns,
        events: window.items.len(),
        vector: None,
        unseen_syscalls: Vec::new(),
        unseen_args: Vec::new(),
    };
    let Some(baseline) = baseline else {
        return features;
    };
    let mut explanation = Explanation::default();
    features.vector = anomaly_vector(
        &window.items,
        symbols,
        baseline.max_freq,
        explain.then_some(&mut explanation),
    );
    if explain {
        features.unseen_syscalls = explanation
            .unseen_syscalls
            .iter()
            .map(|&id| symbols.nodes.name(id).to_string())
            .collect();
        features.unseen_args = explanation
            .unseen_args
            .iter()
            .map(|&(arg, node, process)| UnseenArg {
                arg: symbols.args.name(arg).to_string(),
                syscall: symbols.nodes.name(node).to_string(),
                process: if process == NO_ARG {
                    String::new()
                } else {
                    symbols.processes.name(process).to_string()
                },
            })
            .collect();
    }
    features
}

/// What reading a recording through a [`FeatureStream`] produced.
#[derive(Clone, Debug)]
pub struct RecordingFeatures {
    pub read: crate::source::ReadStats,
    pub windows: WindowStats,
    /// Every window in order, empty ones included. Empty when the recording
    /// is void (compat: it yields no window at all).
    pub features: Vec<WindowFeatures>,
    /// Syscall nodes and arguments the recording used, and its busiest
    /// window (`max_freq`).
    pub elements: TrainingElements,
}

/// Reads a whole recording and returns its windows. With `baseline` set the
/// windows carry anomaly vectors; without, it is the first training pass.
pub fn read_recording(
    source: &dyn crate::source::EventSource,
    settings: Settings,
    baseline: Option<&TrainingElements>,
    explain: bool,
    options: &crate::source::ReadOptions,
) -> Result<RecordingFeatures, crate::source::SourceError> {
    let mut stream = FeatureStream::new(settings, baseline, explain);
    let mut features = Vec::new();
    let read = source.read(options, &mut |event| {
        stream.push(event, &mut |w| features.push(w));
        Ok(())
    })?;
    Ok(stream.into_recording(read, features))
}

impl FeatureStream<'_> {
    /// Finishes the stream into a [`RecordingFeatures`].
    pub fn into_recording(
        self,
        read: crate::source::ReadStats,
        mut features: Vec<WindowFeatures>,
    ) -> RecordingFeatures {
        let (windows, mut elements) = self.finish(&mut |w| features.push(w));
        if windows.void {
            features.clear();
        }
        elements.max_freq = features.iter().map(|w| w.events as u64).max().unwrap_or(0);
        RecordingFeatures {
            read,
            windows,
            features,
            elements,
        }
    }
}

/// A recording read once and kept encoded (12 bytes per event), so that the
/// second training pass scores it without reading the file again.
pub struct EncodedRecording {
    pub read: crate::source::ReadStats,
    pub windows: WindowStats,
    /// Names used and busiest window, as [`RecordingFeatures::elements`].
    pub elements: TrainingElements,
    symbols: Symbols,
    /// `None` when the recording was too large to keep (read it again).
    kept: Option<Vec<Window<WindowEvent>>>,
}

/// Recordings with more events than this are not kept in memory between
/// the training passes (~12 bytes each): they are read twice instead.
pub const KEEP_LIMIT_EVENTS: usize = 16 << 20;

/// First training pass: reads a recording, keeping it encoded when small enough.
pub fn encode_recording(
    source: &dyn crate::source::EventSource,
    settings: Settings,
    options: &crate::source::ReadOptions,
) -> Result<EncodedRecording, crate::source::SourceError> {
    let mut stream = FeatureStream::new(settings, None, false);
    let mut kept = Vec::new();
    let mut kept_events = 0usize;
    let mut max_freq = 0usize;
    let mut too_big = false;
    let read = source.read(options, &mut |event| {
        let before = kept.len();
        stream.push_keep(event, &mut kept);
        for w in &kept[before..] {
            max_freq = max_freq.max(w.items.len());
            kept_events += w.items.len();
        }
        if kept_events > KEEP_LIMIT_EVENTS {
            too_big = true;
            kept.clear();
            kept.shrink_to_fit();
            kept_events = 0;
        }
        Ok(())
    })?;
    let FeatureStream {
        windower, symbols, ..
    } = stream;
    let windows = windower.finish(&mut |w| {
        max_freq = max_freq.max(w.items.len());
        kept.push(w);
    });
    if windows.void {
        kept.clear();
        max_freq = 0;
    }
    let elements = symbols.elements(max_freq as u64);
    Ok(EncodedRecording {
        read,
        windows,
        elements,
        symbols,
        kept: (!too_big).then_some(kept),
    })
}

impl EncodedRecording {
    /// Scores the kept windows against `baseline`; `None` if they were not kept.
    pub fn features(&mut self, baseline: &TrainingElements) -> Option<Vec<WindowFeatures>> {
        let kept = self.kept.as_ref()?;
        let sym = &mut self.symbols;
        sym.node_seen = sym
            .nodes
            .names
            .iter()
            .map(|n| baseline.seen_syscalls.contains(&**n))
            .collect();
        sym.arg_seen = sym
            .args
            .names
            .iter()
            .map(|n| baseline.seen_args.contains(&**n))
            .collect();
        Some(
            kept.iter()
                .map(|w| score(w, sym, Some(baseline), false))
                .collect(),
        )
    }
}
