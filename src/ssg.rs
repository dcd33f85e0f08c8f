//! The syscall sequence graph of one window and its anomaly vector
//! [FI, USI, UAI] (SPEC §5).
//!
//! The graph is never built as a graph: the three features only need the
//! number of events, the number of distinct nodes and the distinct
//! neighbours of the two special nodes, which one pass over the window gives
//! ([`GraphSummary`]). The kernel-aggregated live path fills the same
//! summary from BPF maps, so both end in the same arithmetic.
//!
//! Which consecutive events form an edge is [`EdgeOrder`]: the reference
//! links consecutive events of the whole stream in arrival order; modern
//! bundles (feature version 2) link consecutive events of each thread,
//! the order the kernel can keep exactly without a global lock.

use serde::{Deserialize, Serialize};

/// β, the frequency-increase fold (SPEC §5).
pub const BETA: f64 = 5.0;

/// One event of a window, reduced to what the graph needs. Ids index the
/// recording's symbol tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowEvent {
    pub node: u32,
    /// The thread (as the source names it) for [`EdgeOrder::Thread`].
    pub thread: u32,
    /// Normalised argument, or [`NO_ARG`].
    pub arg: u32,
    /// Process name id, or [`NO_ARG`] when not kept (only argument-bearing
    /// and unseen events keep it, for explanations).
    pub process: u32,
}

pub const NO_ARG: u32 = u32::MAX;

/// Which consecutive events of a window are joined by an edge.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeOrder {
    /// Consecutive events of the whole stream, in arrival order: the
    /// reference's definition (compat, and modern bundles written before
    /// feature version 2). Live, arrival order across CPUs is the ring
    /// buffer's, which only a per-event capture reproduces.
    #[default]
    Stream,
    /// Consecutive events of the same thread (by thread id), in that
    /// thread's order, which is program order and therefore exact whether
    /// the events are recorded or aggregated in the kernel. A thread's
    /// first event in a window has no predecessor in it. Nodes, FI and the
    /// special nodes' formulas are unchanged; nodes are the distinct labels
    /// of the window's events.
    Thread,
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

/// Why a window scored as it did: which unseen syscalls and arguments.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Explanation {
    pub unseen_syscalls: Vec<u32>,
    /// (argument, syscall node, process) ids.
    pub unseen_args: Vec<(u32, u32, u32)>,
}

/// Lookups the graph needs: is a node / an argument part of the baseline?
pub trait Seen {
    fn syscall_seen(&self, node: u32) -> bool;
    fn arg_seen(&self, arg: u32) -> bool;
}

/// Labels of the two special nodes (SPEC §5).
pub const USN: u32 = u32::MAX - 1;
pub const UAN: u32 = u32::MAX - 2;

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
    /// Distinct predecessors and successors of USN.
    pub usn_preds: u64,
    pub usn_succs: u64,
    /// Distinct predecessors and successors of UAN.
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
            // networkx multiplies by 1/(n-1) rather than dividing by n-1; the
            // last bit differs, and parity is to the bit.
            let s = 1.0 / (n_nodes as f64 - 1.0);
            preds as f64 * s + succs as f64 * s
        };
        let usi = if self.unseen_syscalls == 0 {
            0.0
        } else {
            self.unseen_syscalls as f64 * centrality(self.usn_preds, self.usn_succs)
        };
        let uai = if self.unseen_args == 0 {
            0.0
        } else {
            ((self.unseen_arg_calls * self.unseen_args) as f64)
                * centrality(self.uan_preds, self.uan_succs)
        };
        Some(AnomalyVector { fi, usi, uai })
    }
}

/// The graph label of an event: USN for an unseen syscall (its argument
/// is forgotten), UAN for an argument-bearing event with an unseen
/// argument, else its node.
fn label(e: &WindowEvent, seen: &impl Seen) -> u32 {
    if !seen.syscall_seen(e.node) {
        USN
    } else if e.arg != NO_ARG && !seen.arg_seen(e.arg) {
        UAN
    } else {
        e.node
    }
}

/// Computes the anomaly vector of one window; `None` for an empty window.
pub fn anomaly_vector(
    events: &[WindowEvent],
    seen: &impl Seen,
    max_freq: u64,
    edges: EdgeOrder,
    explain: Option<&mut Explanation>,
) -> Option<AnomalyVector> {
    summarize(events, seen, edges, explain).vector(max_freq)
}

/// The [`GraphSummary`] of one window's events.
pub fn summarize(
    events: &[WindowEvent],
    seen: &impl Seen,
    edges: EdgeOrder,
    explain: Option<&mut Explanation>,
) -> GraphSummary {
    let mut unseen_syscalls: Vec<u32> = Vec::new();
    let mut unseen_arg_calls: Vec<u32> = Vec::new();
    let mut unseen_args: Vec<u32> = Vec::new();
    let mut unseen_detail: Vec<(u32, u32, u32)> = Vec::new();
    for e in events {
        match label(e, seen) {
            USN => push_distinct(&mut unseen_syscalls, e.node),
            UAN => {
                push_distinct(&mut unseen_arg_calls, e.node);
                push_distinct(&mut unseen_args, e.arg);
                if explain.is_some() && !unseen_detail.iter().any(|d| d.0 == e.arg && d.1 == e.node)
                {
                    unseen_detail.push((e.arg, e.node, e.process));
                }
            }
            _ => {}
        }
    }
    if let Some(x) = explain {
        x.unseen_syscalls = unseen_syscalls.clone();
        x.unseen_args = unseen_detail;
    }

    // Distinct nodes and the distinct neighbours of USN and UAN.
    let mut nodes: Vec<u32> = Vec::new();
    let mut usn = Neighbours::default();
    let mut uan = Neighbours::default();
    let mut edge = |prev: u32, cur: u32| {
        for (special, acc) in [(USN, &mut usn), (UAN, &mut uan)] {
            if cur == special {
                push_distinct(&mut acc.preds, prev);
            }
            if prev == special {
                push_distinct(&mut acc.succs, cur);
            }
        }
    };
    match edges {
        EdgeOrder::Stream => {
            let mut prev: Option<u32> = None;
            for e in events {
                let cur = label(e, seen);
                push_distinct_sorted_hint(&mut nodes, cur);
                if let Some(p) = prev {
                    edge(p, cur);
                }
                prev = Some(cur);
            }
        }
        EdgeOrder::Thread => {
            // thread -> its last label in this window.
            let mut last: rustc_hash::FxHashMap<u32, u32> = Default::default();
            for e in events {
                let cur = label(e, seen);
                push_distinct_sorted_hint(&mut nodes, cur);
                if let Some(p) = last.insert(e.thread, cur) {
                    edge(p, cur);
                }
            }
        }
    }
    GraphSummary {
        events: events.len() as u64,
        nodes: nodes.len() as u64,
        unseen_syscalls: unseen_syscalls.len() as u64,
        unseen_arg_calls: unseen_arg_calls.len() as u64,
        unseen_args: unseen_args.len() as u64,
        usn_preds: usn.preds.len() as u64,
        usn_succs: usn.succs.len() as u64,
        uan_preds: uan.preds.len() as u64,
        uan_succs: uan.succs.len() as u64,
    }
}

#[derive(Default)]
struct Neighbours {
    preds: Vec<u32>,
    succs: Vec<u32>,
}

/// Linear-scan set: windows have few distinct nodes, so this beats hashing.
fn push_distinct(v: &mut Vec<u32>, x: u32) {
    if !v.contains(&x) {
        v.push(x);
    }
}

fn push_distinct_sorted_hint(v: &mut Vec<u32>, x: u32) {
    // Consecutive events often repeat the last node; check it first.
    if v.last() != Some(&x) {
        push_distinct(v, x);
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
            thread: 0,
            arg,
            process: 0,
        }
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
        let v = anomaly_vector(&w, &seen, 4, EdgeOrder::Stream, None).unwrap();
        assert_eq!(v.to_array(), [0.45, 1.6, 3.2]);
    }

    #[test]
    fn single_event_and_single_node() {
        let seen = S(vec![], vec![]);
        let v = anomaly_vector(&[ev(7, NO_ARG)], &seen, 10, EdgeOrder::Stream, None).unwrap();
        assert_eq!(v.to_array(), [0.0, 0.0, 0.0]);
        let v = anomaly_vector(
            &[ev(7, NO_ARG), ev(8, NO_ARG)],
            &seen,
            10,
            EdgeOrder::Stream,
            None,
        )
        .unwrap();
        // Both unseen -> one USN node with a self-loop: 2 distinct * (1 + 1).
        assert_eq!(v.usi, 4.0);
        assert!(anomaly_vector(&[], &seen, 10, EdgeOrder::Stream, None).is_none());
    }

    #[test]
    fn thread_edges_link_each_threads_own_sequence() {
        // Threads 1 and 2 interleave: 1:a 2:x 1:b 2:y, with x unseen.
        // Stream edges: a->USN, USN->b, b->y. Thread edges: a->b, USN->y.
        let seen = S(vec![0, 1, 3], vec![]);
        let t = |node, thread| WindowEvent {
            node,
            thread,
            arg: NO_ARG,
            process: 0,
        };
        let w = [t(0, 1), t(2, 2), t(1, 1), t(3, 2)];
        let s = summarize(&w, &seen, EdgeOrder::Stream, None);
        assert_eq!((s.usn_preds, s.usn_succs), (1, 1));
        let s = summarize(&w, &seen, EdgeOrder::Thread, None);
        assert_eq!((s.usn_preds, s.usn_succs, s.nodes), (0, 1, 4));
        let v = anomaly_vector(&w, &seen, 10, EdgeOrder::Thread, None).unwrap();
        assert_eq!(v.usi, 1.0 / 3.0);
    }
}
