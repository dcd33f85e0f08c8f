//! What rose: per-window counts of system calls and of transitions between
//! them, their largest values over the training windows (stored in the
//! bundle), and the `rising` reasons of an alarm: the counts furthest above
//! their training maximum. A frequency-driven alarm (FI high, nothing
//! unseen) names what drove it this way.
//!
//! Memory is bounded whatever the input: at most [`MAX_NAMES`] names per
//! stream, [`MAX_DISTINCT`] distinct transitions and threads per window
//! (more are not counted, and the counts stay lower bounds).

use std::collections::{BTreeMap, VecDeque};

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::alert::Rising;
use rayon::prelude::*;

use chids_core::event::Event;
use chids_core::features::{EncodedRecording, Settings};
use chids_core::mode::Mode;
use chids_core::source::{EventSource, ReadOptions, SourceError};
use chids_core::ssg::EdgeOrder;
use chids_core::window::{Bucket, Closed, Windower};

/// Names one counter interns (system-call node names are a few hundred).
pub(crate) const MAX_NAMES: usize = 4096;
/// Distinct transitions, and threads, one window counts.
pub(crate) const MAX_DISTINCT: usize = 4096;
/// `rising` entries an alarm lists.
pub(crate) const RISING_TOP: usize = 5;

/// One window's counts, by name id.
#[derive(Clone, Debug, Default)]
pub struct WindowCounts {
    events: u64,
    calls: FxHashMap<u32, u64>,
    edges: FxHashMap<(u32, u32), u64>,
    /// Stream order: the window's last call.
    last: Option<u32>,
    /// Thread order: each thread's last call.
    last_by_thread: FxHashMap<u32, u32>,
    /// The first call (for joining a later window in stream order).
    first: Option<u32>,
}

impl WindowCounts {
    /// Counts one call of `thread`; edges join calls as the window graph
    /// does ([`EdgeOrder`]).
    pub fn push(&mut self, call: u32, thread: u32, order: EdgeOrder) {
        self.events += 1;
        *self.calls.entry(call).or_default() += 1;
        self.first.get_or_insert(call);
        let prev = match order {
            EdgeOrder::Stream => self.last.replace(call),
            EdgeOrder::Thread => {
                let n = self.last_by_thread.len();
                match self.last_by_thread.get_mut(&thread) {
                    Some(p) => Some(std::mem::replace(p, call)),
                    None => {
                        if n < MAX_DISTINCT {
                            self.last_by_thread.insert(thread, call);
                        }
                        None
                    }
                }
            }
        };
        if let Some(p) = prev {
            self.edge(p, call, 1);
        }
    }

    fn edge(&mut self, from: u32, to: u32, n: u64) {
        let len = self.edges.len();
        match self.edges.get_mut(&(from, to)) {
            Some(c) => *c += n,
            None if len < MAX_DISTINCT => {
                self.edges.insert((from, to), n);
            }
            None => {}
        }
    }
}

impl Bucket for WindowCounts {
    fn events(&self) -> u64 {
        self.events
    }
    fn append(&mut self, later: Self) {
        if later.events == 0 {
            return;
        }
        if let (Some(a), Some(b)) = (self.last, later.first) {
            self.edge(a, b, 1);
        }
        self.events += later.events;
        for (k, n) in later.calls {
            *self.calls.entry(k).or_default() += n;
        }
        for ((a, b), n) in later.edges {
            self.edge(a, b, n);
        }
        if later.last.is_some() {
            self.last = later.last;
        }
        self.first = self.first.or(later.first);
    }
}

/// The key of a transition in [`CountMaxima::edges`] and in `rising`.
pub(crate) fn edge_name(from: &str, to: &str) -> String {
    format!("{from}->{to}")
}

/// The largest count of each call and transition in one training window.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountMaxima {
    pub calls: BTreeMap<String, u64>,
    pub edges: BTreeMap<String, u64>,
}

impl CountMaxima {
    /// The maxima of windows counted with the ids `name` resolves.
    pub fn named<'a>(ids: &IdMaxima, name: impl Fn(u32) -> &'a str) -> CountMaxima {
        CountMaxima {
            calls: ids
                .calls
                .iter()
                .map(|(&k, &n)| (name(k).to_string(), n))
                .collect(),
            edges: ids
                .edges
                .iter()
                .map(|(&(a, b), &n)| (edge_name(name(a), name(b)), n))
                .collect(),
        }
    }

    /// Merges another recording's maxima.
    pub fn merge(&mut self, other: CountMaxima) {
        for (k, n) in other.calls {
            raise(&mut self.calls, &k, n);
        }
        for (k, n) in other.edges {
            raise(&mut self.edges, &k, n);
        }
    }

    /// The calls and transitions of a window whose counts exceed their
    /// training maximum, largest excess first (ties by name), at most
    /// [`RISING_TOP`]. Calls training never saw, and transitions from or to
    /// them, are left out: the window's unseen syscalls name them.
    pub fn rising<'a>(&self, counts: &WindowCounts, name: impl Fn(u32) -> &'a str) -> Vec<Rising> {
        let mut out: Vec<Rising> = Vec::new();
        let seen = |id: u32| self.calls.contains_key(name(id));
        let mut consider = |what: String, count: u64, map: &BTreeMap<String, u64>| {
            let training_max = map.get(&what).copied().unwrap_or(0);
            if count > training_max {
                out.push(Rising {
                    what,
                    count,
                    training_max,
                });
            }
        };
        for (&k, &n) in counts.calls.iter().filter(|(&k, _)| seen(k)) {
            consider(name(k).to_string(), n, &self.calls);
        }
        for (&(a, b), &n) in &counts.edges {
            if seen(a) && seen(b) {
                consider(edge_name(name(a), name(b)), n, &self.edges);
            }
        }
        out.sort_by(|x, y| {
            (y.count - y.training_max)
                .cmp(&(x.count - x.training_max))
                .then_with(|| x.what.cmp(&y.what))
        });
        out.truncate(RISING_TOP);
        out
    }
}

/// Maxima by name id, while one recording is counted.
#[derive(Default)]
pub struct IdMaxima {
    calls: FxHashMap<u32, u64>,
    edges: FxHashMap<(u32, u32), u64>,
}

impl IdMaxima {
    /// Raises the maxima to a window's counts.
    pub(crate) fn observe(&mut self, counts: &WindowCounts) {
        for (&k, &n) in &counts.calls {
            let m = self.calls.entry(k).or_default();
            *m = (*m).max(n);
        }
        for (&k, &n) in &counts.edges {
            let m = self.edges.entry(k).or_default();
            *m = (*m).max(n);
        }
    }
}

/// A window's counts with the counter that names their ids: what
/// [`crate::Detector::explain`] reads `rising` from.
pub struct Counted<'a> {
    pub counts: &'a WindowCounts,
    pub counter: &'a CallCounter,
}

/// The count maxima over the training windows of the usable recordings:
/// from the events the first training pass kept, or, for a recording too
/// large to keep, by reading it again.
pub(crate) fn training_maxima(
    recordings: &[&dyn EventSource],
    encoded: &[EncodedRecording],
    usable: &[usize],
    settings: Settings,
    read: &ReadOptions,
) -> Result<CountMaxima, SourceError> {
    let per: Vec<Result<CountMaxima, SourceError>> = usable
        .par_iter()
        .map(|&i| {
            let enc = &encoded[i];
            let Some(windows) = enc.kept_windows() else {
                return maxima_by_reading(recordings[i], settings, read);
            };
            let mut ids = IdMaxima::default();
            for events in windows {
                let mut c = WindowCounts::default();
                for e in events {
                    c.push(e.node, e.thread, settings.edges);
                }
                ids.observe(&c);
            }
            Ok(CountMaxima::named(&ids, |id| enc.node_name(id)))
        })
        .collect();
    let mut all = CountMaxima::default();
    for m in per {
        all.merge(m?);
    }
    Ok(all)
}

/// [`training_maxima`] of one recording, read from its source.
fn maxima_by_reading(
    source: &dyn EventSource,
    settings: Settings,
    read: &ReadOptions,
) -> Result<CountMaxima, SourceError> {
    let mut counter = CallCounter::new(
        settings.mode,
        settings.edges,
        settings.window_ns,
        Some(chids_core::window::MAX_WINDOWS_PER_RECORDING),
    );
    let mut ids = IdMaxima::default();
    source.read(read, &mut |event| {
        counter.push(event);
        for (_, c) in counter.closed.drain(..) {
            ids.observe(&c);
        }
        Ok(())
    })?;
    counter.finish();
    for (_, c) in counter.closed.drain(..) {
        ids.observe(&c);
    }
    Ok(CountMaxima::named(&ids, |id| counter.name(id)))
}

fn raise(map: &mut BTreeMap<String, u64>, key: &str, n: u64) {
    match map.get_mut(key) {
        Some(m) => *m = (*m).max(n),
        None => {
            map.insert(key.to_string(), n);
        }
    }
}

/// Counts the calls of a stream of events per window, on the same windows
/// as the feature stream (same length, same time base, same compat clamp),
/// and hands back a window's counts by its index.
pub struct CallCounter {
    mode: Mode,
    order: EdgeOrder,
    ids: FxHashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
    windower: Windower<WindowCounts>,
    /// Closed windows not yet asked for, oldest first.
    closed: VecDeque<(u64, WindowCounts)>,
}

/// Closed windows a counter keeps for its consumer: the feature stream
/// closes the same windows at the same events, so a few suffice.
const KEEP_CLOSED: usize = 8;

impl CallCounter {
    /// `limit`: as [`Windower::new`] (`None` for a live stream).
    pub fn new(mode: Mode, order: EdgeOrder, window_ns: u64, limit: Option<u64>) -> Self {
        CallCounter {
            mode,
            order,
            ids: FxHashMap::default(),
            names: Vec::new(),
            windower: Windower::new(window_ns, mode == Mode::Compat, limit),
            closed: VecDeque::new(),
        }
    }

    fn id(&mut self, name: &str) -> Option<u32> {
        if let Some(&id) = self.ids.get(name) {
            return Some(id);
        }
        if self.names.len() >= MAX_NAMES {
            return None;
        }
        let id = self.names.len() as u32;
        self.names.push(name.into());
        self.ids.insert(name.into(), id);
        Some(id)
    }

    pub fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }

    fn keep(closed: &mut VecDeque<(u64, WindowCounts)>, c: Closed<WindowCounts>) {
        if let Closed::Window(w) = c {
            if closed.len() == KEEP_CLOSED {
                closed.pop_front();
            }
            closed.push_back((w.index, w.items));
        }
    }

    /// Counts one event (every event, as the feature stream does).
    pub fn push(&mut self, event: &Event<'_>) {
        let ts = self.mode.timestamp(event.ts_ns);
        let id = self.id(self.mode.node_name(event.syscall));
        let order = self.order;
        let closed = &mut self.closed;
        if let Ok(Some(w)) = self.windower.slot(ts, &mut |c| Self::keep(closed, c)) {
            match id {
                Some(id) => w.push(id, event.tid as u32, order),
                None => w.events += 1,
            }
        }
    }

    /// A live stream that begins mid-run, as [`Windower::begin_mid_run`].
    pub fn begin_mid_run(&mut self) {
        self.windower.begin_mid_run();
    }

    /// Closes windows as [`Windower::advance_to`].
    pub fn advance_to(&mut self, now_ns: u64) {
        let closed = &mut self.closed;
        self.windower
            .advance_to(now_ns, &mut |c| Self::keep(closed, c));
    }

    /// Closes every window (end of stream).
    pub fn finish(&mut self) {
        let windower = std::mem::replace(&mut self.windower, Windower::new(1, false, Some(0)));
        let closed = &mut self.closed;
        windower.finish(&mut |c| Self::keep(closed, c));
    }

    /// The counts of closed window `index` (and forgets older ones).
    pub fn take(&mut self, index: u64) -> Option<WindowCounts> {
        while self.closed.front().is_some_and(|(i, _)| *i < index) {
            self.closed.pop_front();
        }
        match self.closed.front() {
            Some((i, _)) if *i == index => self.closed.pop_front().map(|(_, c)| c),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(calls: &[u32], order: EdgeOrder) -> WindowCounts {
        let mut w = WindowCounts::default();
        for (i, &c) in calls.iter().enumerate() {
            w.push(c, (i % 2) as u32, order);
        }
        w
    }

    const NAMES: [&str; 3] = ["read", "write", "open"];

    #[test]
    fn rising_names_counts_above_training_maxima() {
        // Training: read write read write.
        let mut ids = IdMaxima::default();
        ids.observe(&counts(&[0, 1, 0, 1], EdgeOrder::Stream));
        let max = CountMaxima::named(&ids, |i| NAMES[i as usize]);
        assert_eq!(max.calls["read"], 2);
        assert_eq!(max.edges["read->write"], 2);
        assert_eq!(max.edges["write->read"], 1);
        // Now: read write ×4, then an open.
        let now = counts(&[0, 1, 0, 1, 0, 1, 0, 1, 2], EdgeOrder::Stream);
        let r = max.rising(&now, |i| NAMES[i as usize]);
        let whats: Vec<&str> = r.iter().map(|r| r.what.as_str()).collect();
        assert_eq!(whats[..2], ["read", "read->write"]);
        assert_eq!(r[0].count, 4);
        assert_eq!(r[0].training_max, 2);
        // Four excesses of 2; "open", a call training never saw, is an
        // unseen syscall, not a rising count.
        assert_eq!(whats.len(), 4);
        assert!(!whats.iter().any(|w| w.contains("open")));
        // The training window itself raises nothing.
        let same = counts(&[0, 1, 0, 1], EdgeOrder::Stream);
        assert!(max.rising(&same, |i| NAMES[i as usize]).is_empty());
    }

    #[test]
    fn thread_edges_follow_each_thread() {
        // Threads alternate 0,1,0,1: thread 0 runs read read, 1 write write.
        let w = counts(&[0, 1, 0, 1], EdgeOrder::Thread);
        assert_eq!(w.edges.get(&(0, 0)), Some(&1));
        assert_eq!(w.edges.get(&(1, 1)), Some(&1));
        assert_eq!(w.edges.get(&(0, 1)), None);
    }
}
