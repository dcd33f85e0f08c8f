//! The syscall sequence graph of one window and its anomaly vector
//! [FI, USI, UAI] (SPEC §5).
//!
//! The graph is never built as a graph: the three features only need the
//! number of events, the number of distinct nodes and the distinct
//! neighbours of the two special nodes, which one pass over the window gives.

use serde::Serialize;

/// β, the frequency-increase fold (SPEC §5).
pub const BETA: f64 = 5.0;

/// One event of a window, reduced to what the graph needs. Ids index the
/// recording's symbol tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowEvent {
    pub node: u32,
    /// Normalised argument, or [`NO_ARG`].
    pub arg: u32,
    /// Process name id, or [`NO_ARG`] when not kept (only argument-bearing
    /// and unseen events keep it, for explanations).
    pub process: u32,
}

pub const NO_ARG: u32 = u32::MAX;

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

const USN: u32 = u32::MAX - 1;
const UAN: u32 = u32::MAX - 2;

/// Computes the anomaly vector of one window; `None` for an empty window.
pub fn anomaly_vector(
    events: &[WindowEvent],
    seen: &impl Seen,
    max_freq: u64,
    explain: Option<&mut Explanation>,
) -> Option<AnomalyVector> {
    if events.is_empty() {
        return None;
    }
    let mut unseen_syscalls: Vec<u32> = Vec::new();
    let mut unseen_arg_calls: Vec<u32> = Vec::new();
    let mut unseen_args: Vec<u32> = Vec::new();
    let mut unseen_detail: Vec<(u32, u32, u32)> = Vec::new();

    // Relabel: unseen syscall -> USN (and its argument is forgotten), then
    // an argument-bearing event with an unseen argument -> UAN.
    let label = |e: &WindowEvent| -> u32 {
        if !seen.syscall_seen(e.node) {
            USN
        } else if e.arg != NO_ARG && !seen.arg_seen(e.arg) {
            UAN
        } else {
            e.node
        }
    };
    for e in events {
        match label(e) {
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

    let n = events.len();
    if n == 1 {
        // No edge: the graph is empty (quirk Q9).
        return Some(AnomalyVector {
            fi: 0.0,
            usi: 0.0,
            uai: 0.0,
        });
    }
    let fi = (n - 1) as f64 / (max_freq as f64 * BETA);

    // Distinct nodes and the distinct neighbours of USN and UAN.
    let mut nodes: Vec<u32> = Vec::new();
    let mut usn = Neighbours::default();
    let mut uan = Neighbours::default();
    let mut prev = label(&events[0]);
    push_distinct(&mut nodes, prev);
    for e in &events[1..] {
        let cur = label(e);
        push_distinct_sorted_hint(&mut nodes, cur);
        for (special, acc) in [(USN, &mut usn), (UAN, &mut uan)] {
            if cur == special {
                push_distinct(&mut acc.preds, prev);
            }
            if prev == special {
                push_distinct(&mut acc.succs, cur);
            }
        }
        prev = cur;
    }
    let n_nodes = nodes.len();
    let centrality = |acc: &Neighbours| -> f64 {
        if n_nodes <= 1 {
            // networkx: a one-node graph has centrality 1 in and out.
            return if acc.preds.is_empty() && acc.succs.is_empty() {
                0.0
            } else {
                2.0
            };
        }
        // networkx multiplies by 1/(n-1) rather than dividing by n-1; the
        // last bit differs, and parity is to the bit.
        let s = 1.0 / (n_nodes as f64 - 1.0);
        acc.preds.len() as f64 * s + acc.succs.len() as f64 * s
    };
    let usi = if unseen_syscalls.is_empty() {
        0.0
    } else {
        unseen_syscalls.len() as f64 * centrality(&usn)
    };
    let uai = if unseen_args.is_empty() {
        0.0
    } else {
        ((unseen_arg_calls.len() * unseen_args.len()) as f64) * centrality(&uan)
    };
    Some(AnomalyVector { fi, usi, uai })
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
        let v = anomaly_vector(&w, &seen, 4, None).unwrap();
        assert_eq!(v.to_array(), [0.45, 1.6, 3.2]);
    }

    #[test]
    fn single_event_and_single_node() {
        let seen = S(vec![], vec![]);
        let v = anomaly_vector(&[ev(7, NO_ARG)], &seen, 10, None).unwrap();
        assert_eq!(v.to_array(), [0.0, 0.0, 0.0]);
        let v = anomaly_vector(&[ev(7, NO_ARG), ev(8, NO_ARG)], &seen, 10, None).unwrap();
        // Both unseen -> one USN node with a self-loop: 2 distinct * (1 + 1).
        assert_eq!(v.usi, 4.0);
        assert!(anomaly_vector(&[], &seen, 10, None).is_none());
    }
}
