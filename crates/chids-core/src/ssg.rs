//! The syscall sequence graph of one window and its anomaly vector
//! [FI, USI, UAI] (SPEC §5).
//!
//! The graph is never built as a graph: the three features only need the
//! number of events, the number of distinct nodes and the distinct
//! neighbours of the two special nodes, which [`WindowGraph`] gathers one
//! event at a time. Its memory does not grow with the number of events:
//! node sets are bit sets over the baseline's syscalls, and the distinct
//! unseen names are counted up to [`MAX_DISTINCT_PER_WINDOW`].
//!
//! Which consecutive events form an edge is [`EdgeOrder`]: the reference
//! links consecutive events of the whole stream in arrival order; modern
//! bundles of feature version 2 link consecutive events of each thread,
//! the order the kernel can keep exactly without a global lock. The
//! kernel-aggregated live path fills a [`GraphSummary`] from BPF maps; the
//! arithmetic from there to the vector is shared.

use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};

/// β, the frequency-increase fold (SPEC §5).
pub const BETA: f64 = 5.0;

/// Distinct unseen syscalls, unseen arguments and (argument, syscall)
/// pairs counted exactly per window: 65,536 each, about 1 MB per set. Past
/// it, every further occurrence of a name not yet counted counts as new, so
/// USI/UAI become upper estimates and the window is marked
/// [`WindowGraph::capped`]. A normal window has a few dozen.
pub const MAX_DISTINCT_PER_WINDOW: usize = 1 << 16;

/// Unseen syscalls and unseen (argument, syscall) pairs named in an
/// explanation: the first 32 in order of appearance; the rest are counted.
pub const EXPLAIN_TOP: usize = 32;

/// One event of a recording, reduced to what the graph needs. Ids index the
/// recording's symbol tables (kept between the two training passes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowEvent {
    pub node: u32,
    /// Normalised argument, or [`NO_ARG`].
    pub arg: u32,
    /// The thread (as the source names it), for [`EdgeOrder::Thread`].
    pub thread: u32,
}

/// Which consecutive events of a window are joined by an edge. No
/// `Default`: what a new model gets depends on its mode
/// (`Settings::for_mode`), and what a bundle without the field had is
/// [`EdgeOrder::BEFORE_VERSION_2`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeOrder {
    /// Consecutive events of the whole stream, in arrival order: the
    /// reference's definition (compat, modern bundles written before
    /// feature version 2, and `baseline --edges stream`). Live, arrival
    /// order across CPUs is the ring buffer's, which only a per-event
    /// capture reproduces.
    Stream,
    /// Consecutive events of the same thread (by thread id), in that
    /// thread's order: program order, exact whether the events are
    /// recorded or aggregated in the kernel. A thread's first event in a
    /// window has no predecessor in it. Nodes, FI and the formulas of the
    /// special nodes are unchanged; the nodes are the distinct labels of
    /// the window's events (feature version 2).
    Thread,
}

impl EdgeOrder {
    /// The edges of a bundle written before the field existed: every such
    /// bundle linked the whole stream.
    pub const BEFORE_VERSION_2: EdgeOrder = EdgeOrder::Stream;
}

pub(crate) const NO_ARG: u32 = u32::MAX;

/// The node every unseen syscall is renamed to.
pub const USN: u32 = u32::MAX - 1;
/// The node every event with an unseen argument is renamed to.
pub const UAN: u32 = u32::MAX - 2;

/// One event labelled against the baseline (SPEC §5 steps 1–2).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Labelled<'a> {
    /// A seen syscall, with a seen argument or none: node `id`.
    Seen(u32),
    /// A syscall the baseline lacks. `key` identifies the name within the
    /// stream (equal names, equal keys).
    UnseenSyscall { key: u64, name: &'a str },
    /// A seen argument-bearing syscall `node` whose argument the baseline
    /// lacks; `key` identifies the normalised argument.
    UnseenArg {
        node: u32,
        key: u64,
        arg: &'a str,
        process: &'a str,
    },
}

/// The anomaly vector of a window.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct AnomalyVector {
    pub fi: f64,
    pub usi: f64,
    pub uai: f64,
}

impl AnomalyVector {
    pub fn to_array(self) -> [f64; 3] {
        [self.fi, self.usi, self.uai]
    }
}

/// Why a window scored as it did: the first [`EXPLAIN_TOP`] unseen
/// syscalls and (argument, syscall, process) triples, in order of
/// appearance, and how many more distinct ones there were.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Explanation {
    pub unseen_syscalls: Vec<Box<str>>,
    pub more_unseen_syscalls: u64,
    /// (argument, syscall node id, process).
    pub unseen_args: Vec<(Box<str>, u32, Box<str>)>,
    pub more_unseen_args: u64,
}

/// A set of graph labels: a bit per seen node id, plus USN and UAN. Its
/// size is bounded by the number of node ids, which a baseline bounds.
#[derive(Clone, Debug, Default)]
struct LabelSet {
    bits: Vec<u64>,
    len: usize,
}

impl LabelSet {
    fn bit(label: u32) -> usize {
        match label {
            USN => 0,
            UAN => 1,
            id => id as usize + 2,
        }
    }

    fn insert(&mut self, label: u32) {
        let i = Self::bit(label);
        let (word, mask) = (i / 64, 1u64 << (i % 64));
        if word >= self.bits.len() {
            self.bits.resize(word + 1, 0);
        }
        if self.bits[word] & mask == 0 {
            self.bits[word] |= mask;
            self.len += 1;
        }
    }

    fn union(&mut self, other: &LabelSet) {
        if other.bits.len() > self.bits.len() {
            self.bits.resize(other.bits.len(), 0);
        }
        for (a, b) in self.bits.iter_mut().zip(&other.bits) {
            *a |= b;
        }
        self.len = self.bits.iter().map(|w| w.count_ones() as usize).sum();
    }
}

/// Distinct keys, counted exactly up to [`MAX_DISTINCT_PER_WINDOW`].
#[derive(Clone, Debug, Default)]
struct Distinct {
    keys: FxHashSet<u64>,
    /// Occurrences of keys not in the full set: counted as new.
    overflow: u64,
}

impl Distinct {
    /// Whether `key` counts as new.
    fn insert(&mut self, key: u64) -> bool {
        if self.keys.contains(&key) {
            return false;
        }
        if self.keys.len() < MAX_DISTINCT_PER_WINDOW {
            self.keys.insert(key);
        } else {
            self.overflow += 1;
        }
        true
    }

    fn contains(&self, key: u64) -> bool {
        self.keys.contains(&key)
    }

    fn len(&self) -> u64 {
        self.keys.len() as u64 + self.overflow
    }

    fn union(&mut self, other: Distinct) {
        for k in other.keys {
            self.insert(k);
        }
        self.overflow += other.overflow;
    }
}

#[derive(Clone, Debug, Default)]
struct Neighbours {
    preds: LabelSet,
    succs: LabelSet,
}

/// The named part of an explanation, with the keys that dedupe it.
#[derive(Clone, Debug, Default)]
struct Named {
    syscalls: Vec<(u64, Box<str>)>,
    args: Vec<(u64, Box<str>, u32, Box<str>)>,
}

/// What one window's graph needs, gathered event by event in bounded
/// memory (see the module comment).
#[derive(Clone, Debug, Default)]
pub(crate) struct WindowGraph {
    events: u64,
    first: u32,
    last: u32,
    /// [`EdgeOrder::Thread`]: each thread's last label, for up to
    /// [`MAX_DISTINCT_PER_WINDOW`] threads (later ones get no edges and
    /// mark the window capped).
    last_by_thread: FxHashMap<u32, u32>,
    threads_overflow: u64,
    nodes: LabelSet,
    usn: Neighbours,
    uan: Neighbours,
    /// U: distinct unseen syscalls.
    unseen_syscalls: Distinct,
    /// Ua: distinct unseen arguments.
    unseen_args: Distinct,
    /// Uc: distinct syscalls of the events with an unseen argument.
    unseen_arg_calls: LabelSet,
    /// Distinct (argument, syscall) pairs with an unseen argument.
    unseen_pairs: Distinct,
    named: Named,
}

fn pair_key(arg_key: u64, node: u32) -> u64 {
    // Argument keys are random 64-bit hashes; mixing the node in keeps
    // pairs apart with the same odds.
    arg_key ^ u64::from(node).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl WindowGraph {
    /// Adds the next event of the stream ([`EdgeOrder::Stream`]); with
    /// `explain`, keeps the first names.
    pub fn push(&mut self, event: Labelled<'_>, explain: bool) {
        let label = self.label(event, explain);
        if self.events > 0 {
            self.edge(self.last, label);
        }
        self.count(label);
    }

    /// Adds the next event of `thread` ([`EdgeOrder::Thread`]).
    pub(crate) fn push_in_thread(&mut self, event: Labelled<'_>, thread: u32, explain: bool) {
        let label = self.label(event, explain);
        let n = self.last_by_thread.len();
        match self.last_by_thread.get_mut(&thread) {
            Some(prev) => {
                let p = std::mem::replace(prev, label);
                self.edge(p, label);
            }
            None if n < MAX_DISTINCT_PER_WINDOW => {
                self.last_by_thread.insert(thread, label);
            }
            None => self.threads_overflow += 1,
        }
        self.count(label);
    }

    /// Adds an event in the given order.
    pub(crate) fn push_ordered(
        &mut self,
        event: Labelled<'_>,
        thread: u32,
        order: EdgeOrder,
        explain: bool,
    ) {
        match order {
            EdgeOrder::Stream => self.push(event, explain),
            EdgeOrder::Thread => self.push_in_thread(event, thread, explain),
        }
    }

    fn count(&mut self, label: u32) {
        self.nodes.insert(label);
        if self.events == 0 {
            self.first = label;
        }
        self.last = label;
        self.events += 1;
    }

    /// The event's graph label; records what is unseen.
    fn label(&mut self, event: Labelled<'_>, explain: bool) -> u32 {
        match event {
            Labelled::Seen(node) => node,
            Labelled::UnseenSyscall { key, name } => {
                if self.unseen_syscalls.insert(key)
                    && explain
                    && self.named.syscalls.len() < EXPLAIN_TOP
                {
                    self.named.syscalls.push((key, name.into()));
                }
                USN
            }
            Labelled::UnseenArg {
                node,
                key,
                arg,
                process,
            } => {
                self.unseen_arg_calls.insert(node);
                self.unseen_args.insert(key);
                let pair = pair_key(key, node);
                if self.unseen_pairs.insert(pair) && explain && self.named.args.len() < EXPLAIN_TOP
                {
                    self.named
                        .args
                        .push((pair, arg.into(), node, process.into()));
                }
                UAN
            }
        }
    }

    fn edge(&mut self, prev: u32, cur: u32) {
        for (special, acc) in [(USN, &mut self.usn), (UAN, &mut self.uan)] {
            if cur == special {
                acc.preds.insert(prev);
            }
            if prev == special {
                acc.succs.insert(cur);
            }
        }
    }

    #[cfg(test)]
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Whether a distinct-name count overflowed its cap (the vector is then
    /// an upper estimate).
    pub fn capped(&self) -> bool {
        self.unseen_syscalls.overflow > 0
            || self.unseen_args.overflow > 0
            || self.unseen_pairs.overflow > 0
            || self.threads_overflow > 0
    }

    /// Appends a later window, as if its events had followed these
    /// (stream order: compat folds windows after its last row with it).
    pub fn append(&mut self, later: WindowGraph) {
        if later.events == 0 {
            return;
        }
        if self.events == 0 {
            *self = later;
            return;
        }
        self.edge(self.last, later.first);
        // Names first, while `self`'s sets still tell which are new.
        for (key, name) in later.named.syscalls {
            if !self.unseen_syscalls.contains(key) && self.named.syscalls.len() < EXPLAIN_TOP {
                self.named.syscalls.push((key, name));
            }
        }
        for (pair, arg, node, process) in later.named.args {
            if !self.unseen_pairs.contains(pair) && self.named.args.len() < EXPLAIN_TOP {
                self.named.args.push((pair, arg, node, process));
            }
        }
        self.nodes.union(&later.nodes);
        for (a, b) in [(&mut self.usn, &later.usn), (&mut self.uan, &later.uan)] {
            a.preds.union(&b.preds);
            a.succs.union(&b.succs);
        }
        self.unseen_syscalls.union(later.unseen_syscalls);
        self.unseen_args.union(later.unseen_args);
        self.unseen_pairs.union(later.unseen_pairs);
        self.unseen_arg_calls.union(&later.unseen_arg_calls);
        self.events += later.events;
        self.last = later.last;
    }

    /// The unseen names (when pushed with `explain`).
    pub fn explanation(&self) -> Explanation {
        Explanation {
            unseen_syscalls: self.named.syscalls.iter().map(|n| n.1.clone()).collect(),
            more_unseen_syscalls: self.unseen_syscalls.len() - self.named.syscalls.len() as u64,
            unseen_args: self
                .named
                .args
                .iter()
                .map(|(_, arg, node, process)| (arg.clone(), *node, process.clone()))
                .collect(),
            more_unseen_args: self.unseen_pairs.len() - self.named.args.len() as u64,
        }
    }

    /// The counts the vector is made of.
    pub fn summary(&self) -> GraphSummary {
        GraphSummary {
            events: self.events,
            nodes: self.nodes.len as u64,
            unseen_syscalls: self.unseen_syscalls.len(),
            unseen_arg_calls: self.unseen_arg_calls.len as u64,
            unseen_args: self.unseen_args.len(),
            usn_preds: self.usn.preds.len as u64,
            usn_succs: self.usn.succs.len as u64,
            uan_preds: self.uan.preds.len as u64,
            uan_succs: self.uan.succs.len as u64,
        }
    }

    /// The anomaly vector; `None` for an empty window.
    pub fn vector(&self, max_freq: u64) -> Option<AnomalyVector> {
        self.summary().vector(max_freq)
    }
}

/// What [FI, USI, UAI] needs of one window's graph (SPEC §5), however it
/// was gathered: counts of distinct things, never the things themselves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GraphSummary {
    /// Events in the window.
    pub events: u64,
    /// Distinct node labels (USN and UAN included).
    pub nodes: u64,
    /// |U|: distinct unseen syscall nodes.
    pub unseen_syscalls: u64,
    /// |Uc|: distinct syscall nodes of the events relabelled UAN.
    pub unseen_arg_calls: u64,
    /// |Ua|: distinct unseen arguments.
    pub unseen_args: u64,
    /// Distinct predecessors and successors of USN and of UAN.
    pub usn_preds: u64,
    pub usn_succs: u64,
    pub uan_preds: u64,
    pub uan_succs: u64,
}

impl GraphSummary {
    /// The anomaly vector; `None` for an empty window.
    pub fn vector(&self, max_freq: u64) -> Option<AnomalyVector> {
        let n = self.events;
        if n == 0 {
            return None;
        }
        if n == 1 {
            // No edge: the graph is empty (quirk Q9).
            return Some(AnomalyVector {
                fi: 0.0,
                usi: 0.0,
                uai: 0.0,
            });
        }
        let fi = (n - 1) as f64 / (max_freq as f64 * BETA);
        let n_nodes = self.nodes;
        let centrality = |preds: u64, succs: u64| -> f64 {
            if n_nodes <= 1 {
                // networkx: a one-node graph has centrality 1 in and out.
                return if preds == 0 && succs == 0 { 0.0 } else { 2.0 };
            }
            // networkx multiplies by 1/(n-1) rather than dividing by n-1;
            // the last bit differs, and parity is to the bit.
            let s = 1.0 / (n_nodes as f64 - 1.0);
            preds as f64 * s + succs as f64 * s
        };
        let usi = match self.unseen_syscalls {
            0 => 0.0,
            u => u as f64 * centrality(self.usn_preds, self.usn_succs),
        };
        let uai = match self.unseen_args {
            0 => 0.0,
            ua => {
                ((self.unseen_arg_calls * ua) as f64) * centrality(self.uan_preds, self.uan_succs)
            }
        };
        Some(AnomalyVector { fi, usi, uai })
    }
}

/// Lookups the graph needs: is a node / an argument part of the baseline?
pub trait Seen {
    fn syscall_seen(&self, node: u32) -> bool;
    fn arg_seen(&self, arg: u32) -> bool;
}

/// The anomaly vector of a window given as a list of events (ids only:
/// unseen names are keyed by their id). `None` for an empty window.
pub fn anomaly_vector(
    events: &[WindowEvent],
    seen: &impl Seen,
    max_freq: u64,
) -> Option<AnomalyVector> {
    let mut graph = WindowGraph::default();
    for e in events {
        graph.push(label_by_id(e, seen), false);
    }
    graph.vector(max_freq)
}

/// Labels an event whose names are ids of one table.
pub(crate) fn label_by_id(e: &WindowEvent, seen: &impl Seen) -> Labelled<'static> {
    if !seen.syscall_seen(e.node) {
        Labelled::UnseenSyscall {
            key: u64::from(e.node),
            name: "",
        }
    } else if e.arg != NO_ARG && !seen.arg_seen(e.arg) {
        Labelled::UnseenArg {
            node: e.node,
            key: u64::from(e.arg),
            arg: "",
            process: "",
        }
    } else {
        Labelled::Seen(e.node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct S(Vec<u32>, Vec<u32>);
    impl Seen for S {
        fn syscall_seen(&self, n: u32) -> bool {
            self.0.contains(&n)
        }
        fn arg_seen(&self, a: u32) -> bool {
            self.1.contains(&a)
        }
    }

    fn ev(node: u32, arg: u32) -> WindowEvent {
        WindowEvent {
            node,
            arg,
            thread: 0,
        }
    }

    #[test]
    fn thread_edges_link_each_threads_own_sequence() {
        // Threads 1 and 2 interleave: 1:a 2:x 1:b 2:y, with x unseen.
        // Stream edges: a->USN, USN->b, b->y. Thread edges: a->b, USN->y.
        let seen = S(vec![0, 1, 3], vec![]);
        let t = |node, thread| WindowEvent {
            node,
            arg: NO_ARG,
            thread,
        };
        let w = [t(0, 1), t(2, 2), t(1, 1), t(3, 2)];
        let mut stream = WindowGraph::default();
        let mut threads = WindowGraph::default();
        for e in &w {
            stream.push(label_by_id(e, &seen), false);
            threads.push_in_thread(label_by_id(e, &seen), e.thread, false);
        }
        let s = stream.summary();
        assert_eq!((s.usn_preds, s.usn_succs), (1, 1));
        let s = threads.summary();
        assert_eq!((s.usn_preds, s.usn_succs, s.nodes), (0, 1, 4));
        assert_eq!(threads.vector(10).unwrap().usi, 1.0 / 3.0);
    }

    #[test]
    fn reference_worked_example() {
        // quirks.json ssg_worked_example: nodes 0=open 1=ptrace 2=mknod
        // 3=read 4=execve 5=stat; args 0='' 1=/etc/hosts 2=/etc/passwd 3=/bin/sh
        let seen = S(vec![0, 3, 4, 5], vec![0, 1]);
        let w = [
            ev(0, NO_ARG),
            ev(0, 2),
            ev(1, NO_ARG),
            ev(1, NO_ARG),
            ev(2, NO_ARG),
            ev(3, NO_ARG),
            ev(4, 3),
            ev(4, 0),
            ev(5, 1),
            ev(3, NO_ARG),
        ];
        let v = anomaly_vector(&w, &seen, 4).unwrap();
        assert_eq!(v.to_array(), [0.45, 1.6, 3.2]);
        // The same window cut in two and appended gives the same graph.
        for cut in 0..=w.len() {
            let mut a = WindowGraph::default();
            let mut b = WindowGraph::default();
            w[..cut]
                .iter()
                .for_each(|e| a.push(label_by_id(e, &seen), false));
            w[cut..]
                .iter()
                .for_each(|e| b.push(label_by_id(e, &seen), false));
            a.append(b);
            assert_eq!(a.vector(4), Some(v), "cut at {cut}");
        }
    }

    #[test]
    fn single_event_and_single_node() {
        let seen = S(vec![], vec![]);
        let v = anomaly_vector(&[ev(7, NO_ARG)], &seen, 10).unwrap();
        assert_eq!(v.to_array(), [0.0, 0.0, 0.0]);
        let v = anomaly_vector(&[ev(7, NO_ARG), ev(8, NO_ARG)], &seen, 10).unwrap();
        // Both unseen -> one USN node with a self-loop: 2 distinct * (1 + 1).
        assert_eq!(v.usi, 4.0);
        assert!(anomaly_vector(&[], &seen, 10).is_none());
    }

    #[test]
    fn a_window_of_millions_of_unseen_names_stays_bounded() {
        // Two million events, each with its own unseen argument: the
        // distinct count stops growing at the cap, the names at EXPLAIN_TOP.
        let mut g = WindowGraph::default();
        for i in 0..2_000_000u64 {
            g.push(
                Labelled::UnseenArg {
                    node: 3,
                    key: i.wrapping_mul(0x2545_F491_4F6C_DD1D),
                    arg: "/tmp/x",
                    process: "p",
                },
                true,
            );
        }
        assert_eq!(g.events(), 2_000_000);
        assert!(g.capped());
        assert!(g.unseen_args.keys.len() <= MAX_DISTINCT_PER_WINDOW);
        assert!(g.unseen_pairs.keys.len() <= MAX_DISTINCT_PER_WINDOW);
        let x = g.explanation();
        assert_eq!(x.unseen_args.len(), EXPLAIN_TOP);
        assert_eq!(x.more_unseen_args, 2_000_000 - EXPLAIN_TOP as u64);
        // Upper estimate: every event counted as a new argument.
        let v = g.vector(10).unwrap();
        assert!(v.uai >= 2_000_000.0, "{v:?}");
    }

    #[test]
    fn explanations_list_the_first_names_and_count_the_rest() {
        let mut g = WindowGraph::default();
        let names: Vec<String> = (0..100).map(|i| format!("sys{i}")).collect();
        for (i, n) in names.iter().enumerate().chain(names.iter().enumerate()) {
            g.push(
                Labelled::UnseenSyscall {
                    key: i as u64,
                    name: n,
                },
                true,
            );
        }
        let x = g.explanation();
        assert_eq!(x.unseen_syscalls.len(), EXPLAIN_TOP);
        assert_eq!(&*x.unseen_syscalls[0], "sys0");
        assert_eq!(x.more_unseen_syscalls, 100 - EXPLAIN_TOP as u64);
        assert!(!g.capped());
    }
}
