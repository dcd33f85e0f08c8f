//! The bound on distinct names a workload may teach while it learns.
//!
//! Training keeps state per distinct argument (the interned name, its
//! graph node, pattern statistics: a few KB each), so a container that
//! floods distinct file names or addresses while it is being learned could
//! grow training past any memory. The agent records at most
//! [`LEARN_MAX_NAMES`] distinct names per workload: an event naming a new
//! one past that is not recorded (and warned about as possible poisoning),
//! events naming known ones still are. Such a name is then unseen for the
//! model: the flood shows up as alerts later instead of being learnt.

use std::hash::BuildHasher;

use rustc_hash::FxHashSet;

use chids_core::event::{Endpoint, Event};

/// Distinct names (paths, socket addresses) one workload's learning data
/// may hold. With training's cost per distinct name (a few KB, measured
/// at about 3 KB) this bounds the name-dependent part of training memory
/// to about 60 MB per workload; the rest is bounded by the learning data's
/// size (`LEARN_MAX_BYTES`).
pub(crate) const LEARN_MAX_NAMES: usize = 20_000;

/// The names one workload used while learning (hashes only: 8 bytes each).
#[derive(Default)]
pub(crate) struct LearnNames {
    seen: FxHashSet<u64>,
    /// Keyed per agent run, so that no name can be made to collide on purpose.
    hasher: std::collections::hash_map::RandomState,
    /// Events not recorded because they named a new name past the bound.
    pub refused: u64,
    /// Whether the warning for this workload was given.
    pub warned: bool,
}

impl LearnNames {
    /// Whether the event is recorded: it names nothing, a known name, or a
    /// new one while there is room.
    pub fn admit(&mut self, ev: &Event<'_>) -> bool {
        let p = &ev.params;
        let name = match (p.path, p.endpoint) {
            (Some(path), _) => self.hasher.hash_one(path),
            (None, Some(Endpoint::Unix(path))) => self.hasher.hash_one(path),
            (None, Some(Endpoint::Ip(addr))) => self.hasher.hash_one(addr),
            (None, None) => return true,
        };
        if self.seen.contains(&name) {
            return true;
        }
        if self.seen.len() < LEARN_MAX_NAMES {
            self.seen.insert(name);
            return true;
        }
        self.refused += 1;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chids_core::event::{Direction, Params};

    fn open(path: &str) -> Event<'_> {
        Event {
            ts_ns: 0,
            tid: 1,
            pid: 1,
            process: "p",
            dir: Direction::Exit,
            syscall: "openat",
            info: "",
            params: Params {
                path: Some(path),
                ..Params::default()
            },
        }
    }

    #[test]
    fn new_names_past_the_bound_are_refused_known_ones_kept() {
        let mut names = LearnNames::default();
        for i in 0..LEARN_MAX_NAMES {
            assert!(names.admit(&open(&format!("/tmp/f{i}"))));
        }
        assert!(!names.admit(&open("/tmp/one-more")));
        assert!(names.admit(&open("/tmp/f3")));
        let mut no_name = open("");
        no_name.params.path = None;
        assert!(names.admit(&no_name));
        assert_eq!(names.refused, 1);
    }
}
