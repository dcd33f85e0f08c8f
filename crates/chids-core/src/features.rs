//! From events to anomaly vectors: encodes each event into the few ids the
//! graph needs, windows them, and computes [FI, USI, UAI] per window.
//!
//! [`FeatureStream`] is the one place where this happens, for files and for
//! live capture alike.
//!
//! Memory bounds, whatever the input:
//! - open windows: three ([`crate::window`]); a run of empty windows is one
//!   [`WindowFeatures`] entry;
//! - one window: a [`WindowGraph`] (bit sets and capped distinct counts)
//!   when scoring; a count when only counting; the event list (12 bytes per
//!   event) only in the first training pass, up to [`KEEP_LIMIT_EVENTS`];
//! - symbol tables with a baseline: the seen names (at most the baseline's)
//!   plus two [`BoundedCache`]s of [`CACHE_ENTRIES`] entries and
//!   [`CACHE_BYTES`] of keys each. Without a baseline (training) the tables
//!   hold every name the recording uses: they are the baseline being learnt.

use std::collections::BTreeSet;
use std::hash::BuildHasher;
use std::sync::Arc;

use rustc_hash::FxHashMap as HashMap;

use serde::{Deserialize, Serialize};

use crate::cache::BoundedCache;
use crate::event::Event;
use crate::mode::{normalize_endpoint, normalize_path, ArgKind, Mode, RawArg};
use crate::patterns::{covering, looks_generated, PathPattern, RecordingArgs};
use crate::ssg::{
    label_by_id, AnomalyVector, EdgeOrder, Labelled, Seen, WindowEvent, WindowGraph, NO_ARG,
};
use crate::window::{
    Bucket, Closed, TooManyWindows, WindowStats, Windower, MAX_WINDOWS_PER_RECORDING,
};

/// Entries of each name cache of a stream (raw argument → normalised,
/// names known unseen): 65,536.
pub const CACHE_ENTRIES: usize = 1 << 16;
/// Bytes of keys in each name cache: 16 MiB.
pub const CACHE_BYTES: usize = 16 << 20;

/// Distinct arguments one training recording may teach. Training keeps a
/// few KB per distinct argument (its interned text, graph node, the
/// training elements, pattern statistics), so a recording flooded with
/// distinct names (files made by the thousand while a workload is being
/// learnt) could otherwise grow training without bound. Past this, every
/// further new argument becomes the one node [`OVERFLOW_ARG`] and training
/// warns. Real recordings stay far below (LID-DS: a few thousand).
pub const MAX_TRAINING_ARGS: usize = 100_000;

/// The argument node of every argument past [`MAX_TRAINING_ARGS`]; with
/// spaces, so no real (escaped) argument can be it.
pub const OVERFLOW_ARG: &str = "(more distinct arguments than training keeps)";

/// Everything that decides how events become vectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub mode: Mode,
    pub window_ns: u64,
    /// Which consecutive events are joined by an edge. Compat is always
    /// [`EdgeOrder::Stream`] (the reference's). Modern defaults to
    /// [`EdgeOrder::Thread`] (feature version 2): program order, which
    /// live monitoring computes in the kernel; stream edges stay
    /// available (`baseline --edges stream`) and bundles that have them
    /// keep them.
    pub edges: EdgeOrder,
}

impl Default for Settings {
    fn default() -> Self {
        Settings::for_mode(Mode::Modern, 1_000_000_000)
    }
}

impl Settings {
    /// The default settings of a mode: per-thread edges for modern (what
    /// the kernel can compute, so `monitor` and the agent take the fast
    /// path), the reference's stream edges for compat.
    pub const fn for_mode(mode: Mode, window_ns: u64) -> Settings {
        Settings {
            mode,
            window_ns,
            edges: match mode {
                Mode::Modern => EdgeOrder::Thread,
                Mode::Compat => EdgeOrder::Stream,
            },
        }
    }
}

/// The shortest window chids accepts: 1 ms. Shorter windows hold a handful
/// of events, which says nothing about behaviour, and make any capture
/// span millions of windows.
pub const MIN_WINDOW_NS: u64 = 1_000_000;
/// The longest: one hour (a window is a unit of alerting; an hour-long one
/// would say nothing timely).
pub const MAX_WINDOW_NS: u64 = 3_600_000_000_000;

/// Checks a window length against [`MIN_WINDOW_NS`]..=[`MAX_WINDOW_NS`].
pub fn check_window_ns(window_ns: u64) -> Result<(), String> {
    if (MIN_WINDOW_NS..=MAX_WINDOW_NS).contains(&window_ns) {
        Ok(())
    } else {
        Err(format!(
            "a window of {window_ns} ns: must be between 1ms and 1h ({MIN_WINDOW_NS}..={MAX_WINDOW_NS} ns)"
        ))
    }
}

/// The training elements (SPEC §4).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainingElements {
    pub seen_syscalls: BTreeSet<String>,
    pub seen_args: BTreeSet<String>,
    pub max_freq: u64,
    /// Path positions of one-off names (modern mode; see [`crate::patterns`]).
    #[serde(default)]
    pub patterns: Vec<PathPattern>,
    /// Modern mode: the arguments of `seen_args` that training met only
    /// through a `stat`-family call. Looking at a file's metadata (`find
    /// /etc`, `ls -l`) is not reading it or running it: an `open` or
    /// `execve` of such a path is unseen. Empty for bundles written before
    /// (and in compat mode, as the reference has no such rule).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub stat_only_args: BTreeSet<String>,
}

impl TrainingElements {
    /// Whether `normalized`, used by a call of `kind`, was seen in training
    /// with a call that counts for it (see [`Self::stat_only_args`]).
    pub fn saw_arg(&self, kind: ArgKind, normalized: &str) -> bool {
        self.seen_args.contains(normalized)
            && (kind == ArgKind::Stat || !self.stat_only_args.contains(normalized))
    }

    /// Adds the elements of another recording: every name either used, and
    /// as stat-only those that neither used otherwise.
    pub fn merge(&mut self, other: &TrainingElements) {
        let used_otherwise = |e: &TrainingElements, a: &String| {
            e.seen_args.contains(a) && !e.stat_only_args.contains(a)
        };
        let stat_only: BTreeSet<String> = self
            .stat_only_args
            .iter()
            .chain(&other.stat_only_args)
            .filter(|a| !used_otherwise(self, a) && !used_otherwise(other, a))
            .cloned()
            .collect();
        self.seen_syscalls
            .extend(other.seen_syscalls.iter().cloned());
        self.seen_args.extend(other.seen_args.iter().cloned());
        self.stat_only_args = stat_only;
        self.max_freq = self.max_freq.max(other.max_freq);
    }

    /// Marks `arg` as seen with any call (folded or accepted as normal).
    pub fn admit_arg(&mut self, arg: &str) -> bool {
        let was_stat_only = self.stat_only_args.remove(arg);
        self.seen_args.insert(arg.to_string()) || was_stat_only
    }
}

/// String ↔ id table.
#[derive(Default)]
struct Interner {
    ids: HashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
}

impl Interner {
    fn get(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    fn intern(&mut self, name: &str) -> u32 {
        if let Some(id) = self.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.into());
        self.ids.insert(name.into(), id);
        id
    }

    fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }
}

/// What a raw argument normalises to.
#[derive(Clone)]
enum ArgRef {
    /// An id of `Symbols::args`.
    Known(u32),
    /// Not in the baseline: its key (see [`Labelled`]) and normalised text.
    Unseen { key: u64, name: Arc<str> },
}

/// Symbol tables of one stream. With a baseline, `nodes` and `args` hold
/// only seen names, so windows' node ids stay valid for the stream's life
/// while everything unseen lives in the bounded caches.
struct Symbols {
    nodes: Interner,
    args: Interner,
    /// Node names the baseline lacks → key.
    unseen_nodes: BoundedCache<Box<str>, u64>,
    /// raw argument text → normalised argument (normalising allocates).
    raw_args: BoundedCache<Box<str>, ArgRef>,
    /// Keys unseen names; random per stream so that no input can make two
    /// names collide on purpose.
    hasher: std::collections::hash_map::RandomState,
    /// Training only: argument ids some raw path with a generated-looking
    /// name normalised to (evidence for [`crate::patterns::learn`]).
    generated: rustc_hash::FxHashSet<u32>,
    /// Modern mode: tell stat-only arguments apart (see
    /// [`TrainingElements::stat_only_args`]).
    split_stat: bool,
    /// Training: argument ids used by a `stat`-family call, and by others.
    by_stat: rustc_hash::FxHashSet<u32>,
    by_other: rustc_hash::FxHashSet<u32>,
    /// Detection: ids of seen arguments the baseline saw only through
    /// `stat` (unseen to any other call).
    stat_only: rustc_hash::FxHashSet<u32>,
}

impl Default for Symbols {
    fn default() -> Self {
        Symbols {
            nodes: Interner::default(),
            args: Interner::default(),
            unseen_nodes: BoundedCache::new(CACHE_ENTRIES, CACHE_BYTES),
            raw_args: BoundedCache::new(CACHE_ENTRIES, CACHE_BYTES),
            hasher: Default::default(),
            generated: Default::default(),
            split_stat: false,
            by_stat: Default::default(),
            by_other: Default::default(),
            stat_only: Default::default(),
        }
    }
}

impl Symbols {
    /// Every syscall node and argument this stream used (with a baseline:
    /// the seen ones), as training elements.
    fn elements(&self, max_freq: u64) -> TrainingElements {
        TrainingElements {
            seen_syscalls: self.nodes.names.iter().map(|s| s.to_string()).collect(),
            seen_args: self.args.names.iter().map(|s| s.to_string()).collect(),
            max_freq,
            patterns: Vec::new(),
            stat_only_args: self
                .by_stat
                .iter()
                .filter(|id| self.split_stat && !self.by_other.contains(id))
                .map(|&id| self.args.name(id).to_string())
                .collect(),
        }
    }

    fn key(&self, name: &str) -> u64 {
        self.hasher.hash_one(name)
    }

    /// The node id of a seen syscall, or the key of an unseen one.
    fn node(&mut self, name: &str, baseline: Option<&TrainingElements>) -> Result<u32, u64> {
        if let Some(id) = self.nodes.get(name) {
            return Ok(id);
        }
        if let Some(&key) = self.unseen_nodes.get(name) {
            return Err(key);
        }
        if baseline.is_none_or(|b| b.seen_syscalls.contains(name)) {
            return Ok(self.nodes.intern(name));
        }
        let key = self.key(name);
        self.unseen_nodes.insert(name.into(), key);
        Err(key)
    }

    /// What a raw path argument normalises to, through the cache.
    fn path_arg(
        &mut self,
        raw: &str,
        kind: ArgKind,
        baseline: Option<&TrainingElements>,
    ) -> ArgRef {
        let found = match self.raw_args.get(raw) {
            Some(found) => found.clone(),
            None => self.normalize_new(raw, baseline),
        };
        self.by_kind(found, kind, baseline)
    }

    /// Training: notes which kind of call used an argument. Detection: a
    /// stat-only argument is unseen to any other call.
    fn by_kind(
        &mut self,
        found: ArgRef,
        kind: ArgKind,
        baseline: Option<&TrainingElements>,
    ) -> ArgRef {
        let ArgRef::Known(id) = found else {
            return found;
        };
        if !self.split_stat {
            return found;
        }
        if baseline.is_none() {
            if kind == ArgKind::Stat {
                self.by_stat.insert(id);
            } else {
                self.by_other.insert(id);
            }
            return found;
        }
        if kind == ArgKind::Stat || !self.stat_only.contains(&id) {
            return found;
        }
        let name: Arc<str> = self.args.name(id).into();
        ArgRef::Unseen {
            key: self.key(&name),
            name,
        }
    }

    /// A raw path not in the cache, normalised, labelled and cached (by
    /// the raw path alone: the label does not depend on the call's kind
    /// here; [`Symbols::by_kind`] and `encode` apply what does).
    fn normalize_new(&mut self, raw: &str, baseline: Option<&TrainingElements>) -> ArgRef {
        let found = self.normalized_arg(&normalize_path(raw), baseline);
        if let (None, ArgRef::Known(id)) = (baseline, &found) {
            if looks_generated(raw) {
                self.generated.insert(*id);
            }
        }
        self.raw_args.insert(raw.into(), found.clone());
        found
    }

    /// The id of a seen normalised argument, or its key and text. (An
    /// argument under a learned pattern is `Unseen` here; `encode` then
    /// finds its pattern. A stat-only one is `Known`, and noted.)
    fn normalized_arg(&mut self, normalized: &str, baseline: Option<&TrainingElements>) -> ArgRef {
        match self.args.get(normalized) {
            Some(id) => ArgRef::Known(id),
            None if baseline.is_none() && self.args.names.len() >= MAX_TRAINING_ARGS => {
                ArgRef::Known(self.args.intern(OVERFLOW_ARG))
            }
            None if baseline.is_none_or(|b| b.seen_args.contains(normalized)) => {
                let id = self.args.intern(normalized);
                if baseline.is_some_and(|b| b.stat_only_args.contains(normalized)) {
                    self.stat_only.insert(id);
                }
                ArgRef::Known(id)
            }
            None => ArgRef::Unseen {
                key: self.key(normalized),
                name: normalized.into(),
            },
        }
    }
}

/// An unseen argument, with what used it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnseenArg {
    pub arg: String,
    pub syscall: String,
    pub process: String,
}

/// The features of one closed window, or of a run of empty windows.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WindowFeatures {
    /// The (first) window's index from the recording start.
    pub index: u64,
    pub start_ns: u64,
    /// How many consecutive windows this entry stands for: 1 for a window
    /// with events; a run of empty windows is one entry.
    pub run_length: u64,
    pub events: usize,
    /// `None` for an empty window.
    pub vector: Option<AnomalyVector>,
    /// Unseen syscalls: the first [`crate::ssg::EXPLAIN_TOP`], in order of appearance.
    pub unseen_syscalls: Vec<String>,
    /// Distinct unseen syscalls not listed.
    pub more_unseen_syscalls: u64,
    /// Unseen (argument, syscall) pairs: the first [`crate::ssg::EXPLAIN_TOP`].
    pub unseen_args: Vec<UnseenArg>,
    /// Distinct unseen (argument, syscall) pairs not listed.
    pub more_unseen_args: u64,
    /// The distinct unseen names overflowed the per-window cap: USI and
    /// UAI are upper estimates ([`crate::ssg::MAX_DISTINCT_PER_WINDOW`]).
    pub capped: bool,
}

impl WindowFeatures {
    /// Whether the window names a system call or argument training never saw.
    pub fn names_unseen(&self) -> bool {
        !self.unseen_syscalls.is_empty()
            || self.more_unseen_syscalls > 0
            || !self.unseen_args.is_empty()
            || self.more_unseen_args > 0
    }

    /// A window (or run) without a vector.
    pub fn unscored(index: u64, start_ns: u64, run_length: u64, events: usize) -> Self {
        WindowFeatures {
            index,
            start_ns,
            run_length,
            events,
            vector: None,
            unseen_syscalls: Vec::new(),
            more_unseen_syscalls: 0,
            unseen_args: Vec::new(),
            more_unseen_args: 0,
            capped: false,
        }
    }
}

/// What one open window holds: its event count, the events themselves in
/// the first training pass, the graph summary when scoring.
#[derive(Default)]
struct Content {
    events: u64,
    kept: Vec<WindowEvent>,
    graph: WindowGraph,
}

impl Bucket for Content {
    fn events(&self) -> u64 {
        self.events
    }
    fn append(&mut self, later: Self) {
        self.events += later.events;
        self.kept.extend(later.kept);
        self.graph.append(later.graph);
    }
}

/// An event encoded, before its window is known.
enum Encoded {
    /// Counted only (no baseline).
    Count(WindowEvent),
    Seen(u32),
    UnseenSyscall(u64),
    UnseenArg {
        node: u32,
        key: u64,
        arg: Arc<str>,
    },
}

/// Turns a stream of events into windows and their anomaly vectors.
///
/// Without a baseline (the first training pass) it only counts: every
/// syscall and argument counts as seen and vectors are not computed.
pub struct FeatureStream<'b> {
    settings: Settings,
    baseline: Option<&'b TrainingElements>,
    symbols: Symbols,
    windower: Windower<Content>,
    explain: bool,
    /// First training pass: keep each window's events for the second.
    keep: bool,
    /// Reused buffer for normalised endpoints.
    scratch: String,
}

impl<'b> FeatureStream<'b> {
    /// A stream over one recording: at most [`MAX_WINDOWS_PER_RECORDING`] windows.
    pub fn new(settings: Settings, baseline: Option<&'b TrainingElements>, explain: bool) -> Self {
        Self::with_limit(settings, baseline, explain, Some(MAX_WINDOWS_PER_RECORDING))
    }

    /// A live stream: no window cap, as it keeps nothing per closed window
    /// (a silence of any length is one entry).
    pub fn live(settings: Settings, baseline: Option<&'b TrainingElements>, explain: bool) -> Self {
        Self::with_limit(settings, baseline, explain, None)
    }

    fn with_limit(
        settings: Settings,
        baseline: Option<&'b TrainingElements>,
        explain: bool,
        limit: Option<u64>,
    ) -> Self {
        FeatureStream {
            settings,
            baseline,
            symbols: Symbols {
                split_stat: settings.mode == Mode::Modern,
                ..Symbols::default()
            },
            windower: Windower::new(settings.window_ns, settings.mode == Mode::Compat, limit),
            explain,
            keep: false,
            scratch: String::new(),
        }
    }

    /// Adds one event; `emit` receives every window this closes. An error
    /// when the event lies past the stream's window cap.
    pub fn push(
        &mut self,
        event: &Event<'_>,
        emit: &mut impl FnMut(WindowFeatures),
    ) -> Result<(), TooManyWindows> {
        let (baseline, explain) = (self.baseline, self.explain);
        self.push_closed(event, &mut |c, sym| emit(score(c, sym, baseline, explain)))
    }

    /// Events dropped so far (out of order, time jumps).
    pub fn window_stats(&self) -> &WindowStats {
        self.windower.stats()
    }

    /// A live stream that begins mid-run (see [`Windower::begin_mid_run`]).
    pub fn begin_mid_run(&mut self) {
        self.windower.begin_mid_run();
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
        windower.advance_to(now_ns, &mut |c| {
            emit(score(c, symbols, *baseline, *explain))
        });
    }

    /// Adds one event, handing the windows it closes to `emit` unscored.
    fn push_closed(
        &mut self,
        event: &Event<'_>,
        emit: &mut impl FnMut(Closed<Content>, &Symbols),
    ) -> Result<(), TooManyWindows> {
        let ts = self.settings.mode.timestamp(event.ts_ns);
        let encoded = self.encode(event);
        let FeatureStream {
            windower,
            symbols,
            explain,
            keep,
            settings,
            ..
        } = self;
        let Some(content) = windower.slot(ts, &mut |c| emit(c, symbols))? else {
            return Ok(());
        };
        content.events += 1;
        let label = match &encoded {
            Encoded::Count(e) => {
                if *keep {
                    content.kept.push(*e);
                }
                return Ok(());
            }
            Encoded::Seen(node) => Labelled::Seen(*node),
            Encoded::UnseenSyscall(key) => Labelled::UnseenSyscall {
                key: *key,
                name: settings.mode.node_name(event.syscall),
            },
            Encoded::UnseenArg { node, key, arg } => Labelled::UnseenArg {
                node: *node,
                key: *key,
                arg,
                process: event.process,
            },
        };
        // Thread ids are 32-bit in the kernel; sources give them wider.
        content
            .graph
            .push_ordered(label, event.tid as u32, settings.edges, *explain);
        Ok(())
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
        let mut capped = 0;
        let mut stats = windower.finish(&mut |c| {
            let w = score(c, &symbols, baseline, explain);
            capped += u64::from(w.capped);
            emit(w)
        });
        stats.capped_windows += capped;
        let elements = symbols.elements(0);
        (stats, elements)
    }

    fn encode(&mut self, event: &Event<'_>) -> Encoded {
        let mode = self.settings.mode;
        let baseline = self.baseline;
        let node_name = mode.node_name(event.syscall);
        let sym = &mut self.symbols;
        let node = match sym.node(node_name, baseline) {
            Ok(node) => node,
            Err(key) => return Encoded::UnseenSyscall(key),
        };
        let mut arg = NO_ARG;
        if let Some(kind) = mode.arg_kind(node_name) {
            let found = match mode.raw_arg(kind, event) {
                Some(RawArg::Path(raw)) => Some(sym.path_arg(raw, kind, baseline)),
                Some(RawArg::Endpoint(endpoint)) => {
                    normalize_endpoint(&endpoint, &mut self.scratch);
                    Some(sym.normalized_arg(&self.scratch, baseline))
                }
                None => None,
            };
            // Under a learned pattern: seen, as the pattern's node.
            let found = match found {
                Some(ArgRef::Unseen { ref name, .. }) => {
                    match baseline.map(|b| label_arg(b, kind, name)) {
                        Some(ArgLabel::Covered(p)) => {
                            Some(ArgRef::Known(sym.args.intern(&p.pattern)))
                        }
                        _ => found,
                    }
                }
                other => other,
            };
            match found {
                Some(ArgRef::Known(id)) => arg = id,
                Some(ArgRef::Unseen { key, name }) => {
                    return Encoded::UnseenArg {
                        node,
                        key,
                        arg: name,
                    }
                }
                None => {}
            }
        }
        if baseline.is_none() {
            Encoded::Count(WindowEvent {
                node,
                arg,
                thread: event.tid as u32,
            })
        } else {
            Encoded::Seen(node)
        }
    }
}

/// The features of a closed window (or run), scored when there is a baseline.
fn score(
    closed: Closed<Content>,
    symbols: &Symbols,
    baseline: Option<&TrainingElements>,
    explain: bool,
) -> WindowFeatures {
    let window = match closed {
        Closed::Empty(r) => return WindowFeatures::unscored(r.index, r.start_ns, r.count, 0),
        Closed::Window(w) => w,
    };
    let mut features = WindowFeatures::unscored(
        window.index,
        window.start_ns,
        1,
        window.items.events as usize,
    );
    let Some(baseline) = baseline else {
        return features;
    };
    describe(
        &mut features,
        &window.items.graph,
        symbols,
        baseline.max_freq,
        explain,
    );
    features
}

/// Fills a window's vector (and explanation) from its graph.
fn describe(
    features: &mut WindowFeatures,
    graph: &WindowGraph,
    symbols: &Symbols,
    max_freq: u64,
    explain: bool,
) {
    features.vector = graph.vector(max_freq);
    features.capped = graph.capped();
    if explain {
        let x = graph.explanation();
        features.unseen_syscalls = x.unseen_syscalls.iter().map(|s| s.to_string()).collect();
        features.more_unseen_syscalls = x.more_unseen_syscalls;
        features.unseen_args = x
            .unseen_args
            .iter()
            .map(|(arg, node, process)| UnseenArg {
                arg: arg.to_string(),
                syscall: symbols.nodes.name(*node).to_string(),
                // Names from the watched system reach alerts and terminals
                // only in escaped form.
                process: crate::escape::escaped_str(process).into_owned(),
            })
            .collect();
        features.more_unseen_args = x.more_unseen_args;
    }
}

/// What reading a recording through a [`FeatureStream`] produced.
#[derive(Clone, Debug)]
pub struct RecordingFeatures {
    pub read: crate::source::ReadStats,
    pub windows: WindowStats,
    /// Every window in order, a run of empty ones as one entry
    /// ([`WindowFeatures::run_length`]). Empty when the recording is void
    /// (compat: it yields no window at all).
    pub features: Vec<WindowFeatures>,
    /// Syscall nodes and arguments the recording used (with a baseline:
    /// those the baseline has), and its busiest window (`max_freq`).
    pub elements: TrainingElements,
}

impl RecordingFeatures {
    /// How many windows the recording spans, empty ones included.
    pub fn window_count(&self) -> u64 {
        window_count(&self.features)
    }
}

/// How many windows `features` stands for, runs of empty windows expanded.
pub fn window_count(features: &[WindowFeatures]) -> u64 {
    features.iter().map(|w| w.run_length).sum()
}

/// The error for a recording past [`MAX_WINDOWS_PER_RECORDING`].
pub fn too_many_windows(
    source: &dyn crate::source::EventSource,
    window_ns: u64,
    e: TooManyWindows,
) -> crate::source::SourceError {
    crate::source::SourceError::new(
        &source.info().path,
        crate::source::Position::Whole,
        format!(
            "spans more than {} windows of {} ns (an event falls in window {}): corrupt timestamps or too short a window",
            e.limit, window_ns, e.index
        ),
    )
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
        stream
            .push(event, &mut |w| features.push(w))
            .map_err(|e| too_many_windows(source, settings.window_ns, e))
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
        let before = features.iter().filter(|w| w.capped).count() as u64;
        let (mut windows, mut elements) = self.finish(&mut |w| features.push(w));
        windows.capped_windows += before;
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
    edges: EdgeOrder,
    /// `None` when the recording was too large to keep (read it again).
    kept: Option<Vec<Closed<Vec<WindowEvent>>>>,
}

/// Recordings with more events than this are not kept in memory between
/// the training passes (12 bytes each, 192 MiB): they are read twice instead.
pub(crate) const KEEP_LIMIT_EVENTS: usize = 16 << 20;

/// First training pass: reads a recording, keeping it encoded when small enough.
pub fn encode_recording(
    source: &dyn crate::source::EventSource,
    settings: Settings,
    options: &crate::source::ReadOptions,
) -> Result<EncodedRecording, crate::source::SourceError> {
    let mut stream = FeatureStream::new(settings, None, false);
    stream.keep = true;
    let mut kept: Vec<Closed<Vec<WindowEvent>>> = Vec::new();
    // Events in `kept` and in the open windows.
    let mut kept_events = 0usize;
    let mut max_freq = 0u64;
    let mut keep_closed = |c: Closed<Content>, kept: &mut Vec<_>, keep: bool| match c {
        Closed::Window(w) => {
            max_freq = max_freq.max(w.items.events);
            if keep {
                kept.push(Closed::Window(crate::window::Window {
                    index: w.index,
                    start_ns: w.start_ns,
                    items: w.items.kept,
                }));
            }
        }
        Closed::Empty(r) => {
            if keep {
                kept.push(Closed::Empty(r));
            }
        }
    };
    let read = source.read(options, &mut |event| {
        let keep = stream.keep;
        stream
            .push_closed(event, &mut |c, _| keep_closed(c, &mut kept, keep))
            .map_err(|e| too_many_windows(source, settings.window_ns, e))?;
        if stream.keep {
            kept_events += 1;
            if kept_events > KEEP_LIMIT_EVENTS {
                // Too big: count only from here, and drop what was kept.
                stream.keep = false;
                kept = Vec::new();
                for open in stream.windower.open_mut() {
                    open.kept = Vec::new();
                }
            }
        }
        Ok(())
    })?;
    let keep = stream.keep;
    let FeatureStream {
        windower, symbols, ..
    } = stream;
    let windows = windower.finish(&mut |c| keep_closed(c, &mut kept, keep));
    if windows.void {
        kept.clear();
        max_freq = 0;
    }
    let elements = symbols.elements(max_freq);
    Ok(EncodedRecording {
        read,
        windows,
        elements,
        symbols,
        edges: settings.edges,
        kept: keep.then_some(kept),
    })
}

/// Seen-ness of a recording's own ids against a baseline.
struct SeenIds {
    nodes: Vec<bool>,
    args: Vec<bool>,
}

impl Seen for SeenIds {
    fn syscall_seen(&self, node: u32) -> bool {
        self.nodes[node as usize]
    }
    fn arg_seen(&self, arg: u32) -> bool {
        self.args[arg as usize]
    }
}

impl EncodedRecording {
    /// What pattern learning needs from this recording: its arguments, and
    /// those that a raw path with a generated-looking name became.
    pub fn pattern_evidence(&self) -> RecordingArgs {
        let sym = &self.symbols;
        RecordingArgs {
            args: self.elements.seen_args.clone(),
            generated: sym
                .generated
                .iter()
                .map(|&id| sym.args.name(id).to_string())
                .collect(),
        }
    }

    /// The kept windows' events, in order (`None`: not kept); their node
    /// ids are names by [`EncodedRecording::node_name`].
    pub fn kept_windows(&self) -> Option<impl Iterator<Item = &[WindowEvent]>> {
        let kept = self.kept.as_ref()?;
        Some(kept.iter().filter_map(|c| match c {
            Closed::Window(w) => Some(&w.items[..]),
            Closed::Empty(_) => None,
        }))
    }

    /// The node name of a kept event's id.
    pub fn node_name(&self, node: u32) -> &str {
        self.symbols.nodes.name(node)
    }

    /// Scores the kept windows against `baseline`; `None` if they were not kept.
    pub fn features(&mut self, baseline: &TrainingElements) -> Option<Vec<WindowFeatures>> {
        let kept = self.kept.as_ref()?;
        let sym = &self.symbols;
        let seen = SeenIds {
            nodes: sym
                .nodes
                .names
                .iter()
                .map(|n| baseline.seen_syscalls.contains(&**n))
                .collect(),
            args: sym
                .args
                .names
                .iter()
                .map(|n| baseline.seen_args.contains(&**n))
                .collect(),
        };
        Some(
            kept.iter()
                .map(|c| match c {
                    Closed::Empty(r) => WindowFeatures::unscored(r.index, r.start_ns, r.count, 0),
                    Closed::Window(w) => {
                        let mut graph = WindowGraph::default();
                        for e in &w.items {
                            graph.push_ordered(label_by_id(e, &seen), e.thread, self.edges, false);
                        }
                        let mut f = WindowFeatures::unscored(w.index, w.start_ns, 1, w.items.len());
                        describe(&mut f, &graph, sym, baseline.max_freq, false);
                        f
                    }
                })
                .collect(),
        )
    }
}

/// How a normalised argument of a node of kind `kind` is labelled against
/// a baseline. The one rule both window paths apply: [`FeatureStream`]
/// and the kernel-window reader (`live::aggregate`).
pub enum ArgLabel<'b> {
    /// Seen in training.
    Seen,
    /// Under a learned path pattern: seen, as the pattern. Only file
    /// accesses (open, stat): running a program from there is not.
    Covered(&'b PathPattern),
    Unseen,
}

pub fn label_arg<'b>(
    baseline: &'b TrainingElements,
    kind: ArgKind,
    normalized: &str,
) -> ArgLabel<'b> {
    if baseline.saw_arg(kind, normalized) {
        return ArgLabel::Seen;
    }
    match kind {
        ArgKind::Open | ArgKind::Stat => {
            covering(&baseline.patterns, normalized).map_or(ArgLabel::Unseen, ArgLabel::Covered)
        }
        _ => ArgLabel::Unseen,
    }
}

/// The normalised argument of an event whose node `node_name` carries one,
/// written into `out`; false when the event has none. The rule
/// [`FeatureStream`] applies, for the kernel-aggregated live path, which
/// sees only the events whose raw argument it could not decide itself.
pub fn normalized_arg(mode: Mode, node_name: &str, event: &Event<'_>, out: &mut String) -> bool {
    out.clear();
    let Some(kind) = mode.arg_kind(node_name) else {
        return false;
    };
    match mode.raw_arg(kind, event) {
        Some(RawArg::Path(raw)) => {
            out.push_str(&normalize_path(raw));
            true
        }
        Some(RawArg::Endpoint(endpoint)) => {
            normalize_endpoint(&endpoint, out);
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Direction, Params};

    #[test]
    fn training_keeps_a_bounded_number_of_distinct_arguments() {
        let mut sym = Symbols::default();
        // Letters, not digits: normalisation drops digits from names.
        let name = |i: usize| -> String {
            i.to_string()
                .bytes()
                .map(|b| (b - b'0' + b'a') as char)
                .collect()
        };
        for i in 0..MAX_TRAINING_ARGS + 50 {
            sym.path_arg(
                &format!("/tmp/f{}", name(i)),
                crate::mode::ArgKind::Open,
                None,
            );
        }
        // The cap, plus the one node the rest became.
        assert_eq!(sym.args.names.len(), MAX_TRAINING_ARGS + 1);
        assert!(sym.args.get(OVERFLOW_ARG).is_some());
        // Arguments met before the cap keep their own node.
        let early = sym.path_arg(
            &format!("/tmp/f{}", name(7)),
            crate::mode::ArgKind::Open,
            None,
        );
        assert!(matches!(early, ArgRef::Known(id) if sym.args.name(id) != OVERFLOW_ARG));
    }

    /// A name of lower-case letters only, so that normalising keeps it
    /// whole (digits would be deleted).
    fn letters(mut i: u64) -> String {
        let mut s = String::new();
        loop {
            s.push((b'a' + (i % 26) as u8) as char);
            i /= 26;
            if i == 0 {
                return s;
            }
        }
    }

    fn event<'a>(ts_ns: u64, syscall: &'a str, path: Option<&'a str>) -> Event<'a> {
        Event {
            ts_ns,
            tid: 1,
            pid: 1,
            process: "flood",
            dir: Direction::Exit,
            syscall,
            info: "",
            params: Params {
                path,
                ..Params::default()
            },
        }
    }

    #[test]
    fn a_unique_path_flood_keeps_the_caches_bounded() {
        let baseline = TrainingElements {
            seen_syscalls: ["stat".to_string()].into(),
            seen_args: ["/etc".to_string()].into(),
            max_freq: 10,
            ..TrainingElements::default()
        };
        let settings = Settings::default();
        let mut stream = FeatureStream::live(settings, Some(&baseline), true);
        let mut windows = Vec::new();
        let n = 3 * CACHE_ENTRIES as u64;
        for i in 0..n {
            // 1 µs apart: all in the first 1 s window.
            let path = format!("/tmp/flood/{}", letters(i));
            let unseen_call = format!("sys_{}", i % 100_000);
            let ev = event(i * 1_000, "stat", Some(&path));
            stream.push(&ev, &mut |w| windows.push(w)).unwrap();
            let ev = event(i * 1_000 + 1, &unseen_call, None);
            stream.push(&ev, &mut |w| windows.push(w)).unwrap();
            assert!(stream.symbols.raw_args.len() <= CACHE_ENTRIES);
            assert!(stream.symbols.unseen_nodes.len() <= CACHE_ENTRIES);
        }
        // Only the seen names are interned.
        assert_eq!(stream.symbols.nodes.names.len(), 1);
        assert_eq!(stream.symbols.args.names.len(), 0);
        assert!(stream.symbols.raw_args.clears() >= 2);
        stream.finish(&mut |w| windows.push(w));
        let w = &windows[0];
        assert_eq!(w.events as u64, 2 * n);
        assert!(w.capped);
        assert!(w.unseen_args.len() <= crate::ssg::EXPLAIN_TOP);
        assert_eq!(
            w.unseen_args.len() as u64 + w.more_unseen_args,
            n,
            "every unique path is counted"
        );
    }

    /// Events of one thread, 1 ms apart, from (syscall, path) pairs.
    fn stream_of(
        settings: Settings,
        baseline: Option<&TrainingElements>,
        calls: &[(&str, &str)],
    ) -> (Vec<WindowFeatures>, TrainingElements) {
        let mut stream = FeatureStream::live(settings, baseline, true);
        let mut windows = Vec::new();
        for (i, (syscall, path)) in calls.iter().enumerate() {
            let ev = event(i as u64 * 1_000_000, syscall, Some(path));
            stream.push(&ev, &mut |w| windows.push(w)).unwrap();
        }
        let (_, elements) = stream.finish(&mut |w| windows.push(w));
        (windows, elements)
    }

    /// A workload that walks /etc (`find`, `ls -l`) looks at the metadata
    /// of /etc/shadow; reading it is still unseen (it was not, when a stat
    /// made any later use of the path "seen").
    #[test]
    fn a_path_only_statted_in_training_is_unseen_to_open() {
        let training = [
            ("stat", "/etc/shadow"),
            ("stat", "/etc/passwd"),
            ("openat", "/etc/passwd"),
            ("read", "/etc/passwd"),
        ];
        let settings = Settings::default();
        assert_eq!(settings.mode, Mode::Modern);
        let (_, mut elements) = stream_of(settings, None, &training);
        assert_eq!(elements.stat_only_args, ["/etc/shadow".to_string()].into());
        elements.max_freq = 10;
        let detect = [
            ("stat", "/etc/shadow"),
            ("openat", "/etc/passwd"),
            ("openat", "/etc/shadow"),
            ("stat", "/etc/shadow"),
        ];
        let (windows, _) = stream_of(settings, Some(&elements), &detect);
        let unseen: Vec<(&str, &str)> = windows
            .iter()
            .flat_map(|w| &w.unseen_args)
            .map(|u| (u.arg.as_str(), u.syscall.as_str()))
            .collect();
        assert_eq!(unseen, [("/etc/shadow", "open")]);
        // Merged with a recording that opened it, it is simply seen.
        let (_, opened) = stream_of(settings, None, &[("openat", "/etc/shadow")]);
        let mut merged = elements.clone();
        merged.merge(&opened);
        assert!(merged.stat_only_args.is_empty());
        assert!(merged.saw_arg(ArgKind::Open, "/etc/shadow"));
        // Folded or accepted as normal: seen with any call.
        assert!(elements.admit_arg("/etc/shadow"));
        assert!(elements.saw_arg(ArgKind::Open, "/etc/shadow"));
        // Compat reproduces the reference: no such rule.
        let compat = Settings::for_mode(Mode::Compat, settings.window_ns);
        let (_, elements) = stream_of(compat, None, &training);
        assert!(elements.stat_only_args.is_empty());
    }
}
