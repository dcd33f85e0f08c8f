//! Time windows over an event stream (SPEC §2).
//!
//! Window k holds the events with `t0 + k·W <= t < t0 + (k+1)·W`, in arrival
//! order, where t0 is the first event's time. Captures are in per-CPU order,
//! so an event can arrive a little after a later one: a window is therefore
//! kept open until an event two windows later arrives, which bounds memory
//! to about three windows while still placing late events where the
//! reference does.

use std::collections::VecDeque;

/// How many windows after window k must have begun before k is closed.
const GRACE_WINDOWS: u64 = 2;

/// An event more than this many windows after the latest one is taken for
/// a corrupt timestamp and dropped (counted): at 1 s windows that is a
/// silence of 12 days inside one recording. Live streams close windows as
/// time passes ([`Windower::advance_to`]), so they never jump that far.
pub const MAX_JUMP_WINDOWS: u64 = 1 << 20;

/// A closed window: its index from the recording start, start time and items.
#[derive(Debug)]
pub struct Window<T> {
    pub index: u64,
    pub start_ns: u64,
    pub items: Vec<T>,
}

/// What the end of a stream revealed about the windows emitted so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WindowStats {
    /// Events earlier than the first event (they belong to no window).
    pub before_start: u64,
    /// Events that arrived after their window was closed (dropped).
    pub late: u64,
    /// Events whose time jumps more than [`MAX_JUMP_WINDOWS`] ahead (dropped).
    pub out_of_range: u64,
    /// The stream yields no windows at all (compat: the last row is earlier
    /// than the first, as when a text capture crosses midnight).
    pub void: bool,
}

/// Cuts a stream of timestamped items into consecutive windows.
pub struct Windower<T> {
    window_ns: u64,
    /// The reference ends the window range at the LAST ROW's time, so later
    /// events that arrived earlier fall in the last window (compat only).
    clamp_to_last_row: bool,
    first_ns: Option<u64>,
    last_ns: u64,
    /// Index of `pending[0]`.
    next_index: u64,
    pending: VecDeque<Vec<T>>,
    stats: WindowStats,
}

impl<T> Windower<T> {
    pub fn new(window_ns: u64, clamp_to_last_row: bool) -> Self {
        assert!(window_ns > 0, "window length must be positive");
        Windower {
            window_ns,
            clamp_to_last_row,
            first_ns: None,
            last_ns: 0,
            next_index: 0,
            pending: VecDeque::new(),
            stats: WindowStats::default(),
        }
    }

    pub fn window_ns(&self) -> u64 {
        self.window_ns
    }

    pub fn first_ns(&self) -> Option<u64> {
        self.first_ns
    }

    /// Adds one item; calls `emit` for every window that this closes.
    pub fn push(&mut self, ts_ns: u64, item: T, emit: &mut impl FnMut(Window<T>)) {
        let first = *self.first_ns.get_or_insert(ts_ns);
        if ts_ns < first {
            // The reference's last row can be one of these (compat clamp).
            self.last_ns = ts_ns;
            self.stats.before_start += 1;
            return;
        }
        let k = (ts_ns - first) / self.window_ns;
        if k < self.next_index {
            self.last_ns = ts_ns;
            self.stats.late += 1;
            return;
        }
        let newest = self.next_index + (self.pending.len() as u64).saturating_sub(1);
        if k > newest.saturating_add(MAX_JUMP_WINDOWS) {
            self.stats.out_of_range += 1;
            return;
        }
        // Close what this event leaves behind first, so that a long silence
        // is emitted window by window instead of queued.
        self.close_before(k.saturating_sub(GRACE_WINDOWS - 1), emit);
        let slot = (k - self.next_index) as usize;
        while self.pending.len() <= slot {
            self.pending.push_back(Vec::new());
        }
        self.pending[slot].push(item);
        self.last_ns = ts_ns;
    }

    /// Closes the windows that end before `now_ns - grace`: used by live
    /// monitoring when a container falls silent.
    pub fn advance_to(&mut self, now_ns: u64, emit: &mut impl FnMut(Window<T>)) {
        let Some(first) = self.first_ns else { return };
        if now_ns < first {
            return;
        }
        let k = (now_ns - first) / self.window_ns;
        self.close_before(k.saturating_sub(GRACE_WINDOWS - 1), emit);
    }

    /// Emits every window with index < `limit`, empty ones included.
    fn close_before(&mut self, limit: u64, emit: &mut impl FnMut(Window<T>)) {
        let first = self.first_ns.unwrap_or(0);
        while self.next_index < limit {
            let items = self.pending.pop_front().unwrap_or_default();
            emit(Window {
                index: self.next_index,
                start_ns: first + self.next_index * self.window_ns,
                items,
            });
            self.next_index += 1;
        }
    }

    /// Ends the stream: emits what is still open and reports.
    pub fn finish(mut self, emit: &mut impl FnMut(Window<T>)) -> WindowStats {
        let Some(first) = self.first_ns else {
            return self.stats;
        };
        if self.clamp_to_last_row {
            if self.last_ns < first {
                self.stats.void = true;
                return self.stats;
            }
            let last_k = (self.last_ns - first) / self.window_ns;
            // Windows after the last row's window fold into it.
            if last_k >= self.next_index {
                let keep = (last_k - self.next_index + 1) as usize;
                while self.pending.len() < keep {
                    self.pending.push_back(Vec::new());
                }
                let tail: Vec<Vec<T>> = self.pending.drain(keep..).collect();
                let last = self.pending.back_mut().expect("keep >= 1");
                for items in tail {
                    last.extend(items);
                }
            }
        }
        let end = self.next_index + self.pending.len() as u64;
        self.close_before(end, emit);
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(ts: &[u64], clamp: bool) -> (Vec<Vec<usize>>, WindowStats) {
        let mut w = Windower::new(1_000, clamp);
        let mut out = Vec::new();
        for (i, &t) in ts.iter().enumerate() {
            w.push(t, i, &mut |win: Window<usize>| out.push(win.items));
        }
        let stats = w.finish(&mut |win| out.push(win.items));
        (out, stats)
    }

    #[test]
    fn reference_windowing_example() {
        // quirks.json windowing_example, in microseconds.
        let (w, _) = run(&[900, 1899, 1900, 3950, 4100], true);
        assert_eq!(w, vec![vec![0, 1], vec![2], vec![], vec![3, 4]]);
    }

    #[test]
    fn late_rows_and_rows_before_start() {
        let (w, s) = run(&[500, 100, 1700, 600], true);
        assert_eq!(w, vec![vec![0, 3, 2]]);
        assert_eq!(s.before_start, 1);
    }

    #[test]
    fn last_row_before_first_is_void_in_compat() {
        let (w, s) = run(&[5_000, 6_000, 1_000], true);
        assert!(s.void);
        assert!(w.len() <= 1);
        let (w, s) = run(&[5_000, 6_000, 1_000], false);
        assert!(!s.void);
        assert_eq!(w, vec![vec![0], vec![1]]);
    }

    #[test]
    fn absurd_time_jumps_are_dropped() {
        let (w, s) = run(&[0, 1_000 * (MAX_JUMP_WINDOWS + 5), 500], false);
        assert_eq!(s.out_of_range, 1);
        assert_eq!(w, vec![vec![0, 2]]);
    }

    #[test]
    fn long_gaps_give_empty_windows() {
        let (w, _) = run(&[0, 10_500], false);
        assert_eq!(w.len(), 11);
        assert!(w[1..10].iter().all(|x| x.is_empty()));
    }
}
