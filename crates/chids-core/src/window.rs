//! Time windows over an event stream (SPEC §2).
//!
//! Window k holds the events with `t0 + k·W <= t < t0 + (k+1)·W`, in arrival
//! order, where t0 is the first event's time. Captures are in per-CPU order,
//! so an event can arrive a little after a later one: a window is therefore
//! kept open until an event two windows later arrives, which bounds memory
//! to three open windows while still placing late events where the
//! reference does.
//!
//! A run of empty windows is emitted as one [`Closed::Empty`] count, so a
//! silence of 10^9 windows costs what one window costs. What a window holds
//! is up to the caller (a [`Bucket`]): the event list, a count, or the
//! bounded graph summary of [`crate::ssg::WindowGraph`].

use std::collections::VecDeque;

/// How many windows after window k must have begun before k is closed.
const GRACE_WINDOWS: u64 = 2;

/// An event more than this many windows after the latest one is taken for
/// a corrupt timestamp and dropped (counted): at 1 s windows that is a
/// silence of 12 days inside one recording. Live streams close windows as
/// time passes ([`Windower::advance_to`]), so they never jump that far.
pub const MAX_JUMP_WINDOWS: u64 = 1 << 20;

/// The most windows (empty ones included) one recording may span: 2^24,
/// 194 days of 1 s windows or 4.6 hours of 1 ms ones. Whatever lists windows
/// one by one (`chids vectors`, score plots) stays bounded by it; a
/// recording that goes further is an error, not a silent cut.
pub const MAX_WINDOWS_PER_RECORDING: u64 = 1 << 24;

/// What one open window accumulates.
pub trait Bucket: Default {
    /// Events added so far.
    fn events(&self) -> u64;
    /// Appends a later window's contents, as if its events had arrived
    /// here (compat: windows after the last row fold into its window).
    fn append(&mut self, later: Self);
}

impl<T> Bucket for Vec<T> {
    fn events(&self) -> u64 {
        self.len() as u64
    }
    fn append(&mut self, later: Self) {
        self.extend(later);
    }
}

/// A closed window: its index from the recording start, start time and contents.
#[derive(Debug)]
pub struct Window<B> {
    pub index: u64,
    pub start_ns: u64,
    pub items: B,
}

/// `count` consecutive windows without an event, from window `index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EmptyRun {
    pub index: u64,
    pub start_ns: u64,
    pub count: u64,
}

/// What closing windows yields: a window with events, or a run of empty ones.
#[derive(Debug)]
pub enum Closed<B> {
    Window(Window<B>),
    Empty(EmptyRun),
}

/// What the end of a stream revealed about the windows emitted so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct WindowStats {
    /// Events earlier than the first event (they belong to no window).
    pub before_start: u64,
    /// Events that arrived after their window was closed, more than the
    /// reorder horizon (two windows) late: out of order or time going
    /// backwards (dropped).
    pub late: u64,
    /// Events whose time jumps more than [`MAX_JUMP_WINDOWS`] ahead (dropped).
    pub out_of_range: u64,
    /// Windows whose distinct unseen names overflowed the per-window cap
    /// ([`crate::ssg::MAX_DISTINCT_PER_WINDOW`]): their USI/UAI are upper
    /// estimates.
    pub capped_windows: u64,
    /// The stream yields no windows at all (compat: the last row is earlier
    /// than the first, as when a text capture crosses midnight).
    pub void: bool,
}

impl WindowStats {
    /// Events dropped because their time was out of order or backwards.
    pub fn out_of_order(&self) -> u64 {
        self.before_start + self.late
    }

    /// Every event the windower dropped for its time: out of order,
    /// backwards, or absurdly far ahead. What live consumers report as
    /// "late" events.
    pub fn dropped(&self) -> u64 {
        self.out_of_order() + self.out_of_range
    }
}

/// An event would put the stream past its window cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooManyWindows {
    /// The window the event belongs to.
    pub index: u64,
    pub limit: u64,
}

/// Cuts a stream of timestamped events into consecutive windows.
pub struct Windower<B> {
    window_ns: u64,
    /// The reference ends the window range at the LAST ROW's time, so later
    /// events that arrived earlier fall in the last window (compat only).
    clamp_to_last_row: bool,
    /// Windows the stream may span; `None` for live streams, which keep
    /// nothing per closed window.
    limit: Option<u64>,
    first_ns: Option<u64>,
    /// Index of the first window: 0, or 1 for a stream that began mid-run
    /// ([`Windower::begin_mid_run`]), which has no start-up window.
    base: u64,
    last_ns: u64,
    /// Index of `pending[0]`.
    next_index: u64,
    /// Open windows: at most GRACE_WINDOWS + 1 (three), whatever the input.
    pending: VecDeque<B>,
    /// Empty windows closed but not emitted yet, so that a silence split
    /// by the closing steps of successive events stays one run.
    run: Option<EmptyRun>,
    stats: WindowStats,
}

impl<B: Bucket> Windower<B> {
    /// `limit`: the most windows the stream may span (see
    /// [`MAX_WINDOWS_PER_RECORDING`]); `None` for an endless live stream.
    pub fn new(window_ns: u64, clamp_to_last_row: bool, limit: Option<u64>) -> Self {
        assert!(window_ns > 0, "window length must be positive");
        Windower {
            window_ns,
            clamp_to_last_row,
            limit,
            first_ns: None,
            base: 0,
            last_ns: 0,
            next_index: 0,
            pending: VecDeque::new(),
            run: None,
            stats: WindowStats::default(),
        }
    }

    pub fn window_ns(&self) -> u64 {
        self.window_ns
    }

    pub fn first_ns(&self) -> Option<u64> {
        self.first_ns
    }

    pub fn stats(&self) -> &WindowStats {
        &self.stats
    }

    /// The open windows, oldest first.
    pub(crate) fn open_mut(&mut self) -> impl Iterator<Item = &mut B> {
        self.pending.iter_mut()
    }

    /// Declares that a live stream begins in the middle of what it
    /// watches (a container already running), so none of its windows is a
    /// start-up: the first is numbered 1, not 0 (window 0 stands for the
    /// start-up, see `chids_detect::detect::evidence`). Clock-free on
    /// purpose: the windows still start at the first event. No effect once
    /// an event has arrived.
    pub fn begin_mid_run(&mut self) {
        if self.first_ns.is_none() {
            self.base = 1;
            self.next_index = 1;
        }
    }

    /// Finds the open window of an event at `ts_ns`, closing (through
    /// `emit`) every window it leaves behind; the caller adds the event to
    /// the returned bucket. `Ok(None)`: the event is dropped (and counted).
    pub fn slot(
        &mut self,
        ts_ns: u64,
        emit: &mut impl FnMut(Closed<B>),
    ) -> Result<Option<&mut B>, TooManyWindows> {
        let first = *self.first_ns.get_or_insert(ts_ns);
        if ts_ns < first {
            // The reference's last row can be one of these (compat clamp).
            self.last_ns = ts_ns;
            self.stats.before_start += 1;
            return Ok(None);
        }
        let k = (ts_ns - first) / self.window_ns + self.base;
        if k < self.next_index {
            self.last_ns = ts_ns;
            self.stats.late += 1;
            return Ok(None);
        }
        let newest = self.next_index + (self.pending.len() as u64).saturating_sub(1);
        if k > newest.saturating_add(MAX_JUMP_WINDOWS) {
            self.stats.out_of_range += 1;
            return Ok(None);
        }
        if let Some(limit) = self.limit {
            if k >= limit {
                return Err(TooManyWindows { index: k, limit });
            }
        }
        // Close what this event leaves behind first, so that only the
        // windows still open are queued.
        self.close_before(k.saturating_sub(GRACE_WINDOWS - 1), false, emit);
        let slot = (k - self.next_index) as usize;
        while self.pending.len() <= slot {
            self.pending.push_back(B::default());
        }
        self.last_ns = ts_ns;
        Ok(Some(&mut self.pending[slot]))
    }

    /// Closes the windows that end before `now_ns - grace`: used by live
    /// monitoring when a container falls silent.
    pub fn advance_to(&mut self, now_ns: u64, emit: &mut impl FnMut(Closed<B>)) {
        let Some(first) = self.first_ns else { return };
        if now_ns < first {
            return;
        }
        let k = (now_ns - first) / self.window_ns + self.base;
        // Live: report a silence as it passes.
        self.close_before(k.saturating_sub(GRACE_WINDOWS - 1), true, emit);
    }

    /// Closes every window with index < `limit`: windows with events are
    /// emitted one by one, the empty ones between as runs (O(1) however
    /// long). A trailing run is held for the next call unless `flush`.
    fn close_before(&mut self, limit: u64, flush: bool, emit: &mut impl FnMut(Closed<B>)) {
        let first = self.first_ns.unwrap_or(0);
        let mut run = self.run.take();
        while self.next_index < limit {
            let Some(bucket) = self.pending.pop_front() else {
                // Nothing open beyond this point: the rest is one silence.
                let count = limit - self.next_index;
                match run.as_mut() {
                    Some(r) => r.count += count,
                    None => run = Some(self.empty_run(first, count)),
                }
                self.next_index = limit;
                break;
            };
            if bucket.events() == 0 {
                match run.as_mut() {
                    Some(r) => r.count += 1,
                    None => run = Some(self.empty_run(first, 1)),
                }
            } else {
                if let Some(r) = run.take() {
                    emit(Closed::Empty(r));
                }
                emit(Closed::Window(Window {
                    index: self.next_index,
                    start_ns: self.start_of(first, self.next_index),
                    items: bucket,
                }));
            }
            self.next_index += 1;
        }
        match run {
            Some(r) if flush => emit(Closed::Empty(r)),
            held => self.run = held,
        }
    }

    fn start_of(&self, first: u64, index: u64) -> u64 {
        first.saturating_add((index - self.base).saturating_mul(self.window_ns))
    }

    fn empty_run(&self, first: u64, count: u64) -> EmptyRun {
        EmptyRun {
            index: self.next_index,
            start_ns: self.start_of(first, self.next_index),
            count,
        }
    }

    /// Ends the stream: emits what is still open and reports.
    pub fn finish(mut self, emit: &mut impl FnMut(Closed<B>)) -> WindowStats {
        let Some(first) = self.first_ns else {
            return self.stats;
        };
        if self.clamp_to_last_row {
            if self.last_ns < first {
                self.stats.void = true;
                return self.stats;
            }
            let last_k = (self.last_ns - first) / self.window_ns + self.base;
            // Windows after the last row's window fold into it.
            if last_k >= self.next_index {
                let keep = (last_k - self.next_index + 1) as usize;
                while self.pending.len() < keep {
                    self.pending.push_back(B::default());
                }
                let tail: Vec<B> = self.pending.drain(keep..).collect();
                let last = self.pending.back_mut().expect("keep >= 1");
                for items in tail {
                    last.append(items);
                }
            }
        }
        let end = self.next_index + self.pending.len() as u64;
        self.close_before(end, true, emit);
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every window expanded, empty runs included (what the reference lists).
    fn run_limit(ts: &[u64], clamp: bool, limit: Option<u64>) -> (Vec<Vec<usize>>, WindowStats) {
        let mut w: Windower<Vec<usize>> = Windower::new(1_000, clamp, limit);
        let mut out = Vec::new();
        let mut expand = |c: Closed<Vec<usize>>| match c {
            Closed::Window(win) => out.push(win.items),
            Closed::Empty(r) => out.extend((0..r.count).map(|_| Vec::new())),
        };
        for (i, &t) in ts.iter().enumerate() {
            if let Some(b) = w.slot(t, &mut expand).unwrap() {
                b.push(i);
            }
        }
        let stats = w.finish(&mut expand);
        (out, stats)
    }

    fn run(ts: &[u64], clamp: bool) -> (Vec<Vec<usize>>, WindowStats) {
        run_limit(ts, clamp, None)
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
    fn shuffled_events_beyond_the_horizon_are_counted() {
        // 10 windows' worth of events, newest first: all but the first are
        // late by more than the reorder horizon.
        let ts: Vec<u64> = (0..10).rev().map(|k| k * 1_000 + 5).collect();
        let (w, s) = run(&ts, false);
        assert_eq!(w.iter().map(Vec::len).sum::<usize>(), 1);
        assert_eq!(s.out_of_order(), 9);
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
    fn a_stream_begun_mid_run_numbers_its_windows_from_one() {
        let collect = |mid_run: bool| {
            let mut w: Windower<Vec<usize>> = Windower::new(1_000, false, None);
            if mid_run {
                w.begin_mid_run();
            }
            let mut out = Vec::new();
            let mut keep = |c: Closed<Vec<usize>>| {
                if let Closed::Window(win) = c {
                    out.push((win.index, win.start_ns, win.items));
                }
            };
            for (i, t) in [25_500u64, 25_900, 27_100].into_iter().enumerate() {
                w.slot(t, &mut keep).unwrap().unwrap().push(i);
            }
            w.advance_to(40_000, &mut keep);
            out
        };
        let from_zero = collect(false);
        let from_one = collect(true);
        // The same windows, at the same times, numbered one higher.
        assert_eq!(from_zero.len(), 2);
        for (a, b) in from_zero.iter().zip(&from_one) {
            assert_eq!(a.0 + 1, b.0);
            assert_eq!((a.1, &a.2), (b.1, &b.2));
        }
        assert_eq!(from_one[0].1, 25_500);
        // Once an event has arrived, it is too late to say so.
        let mut w: Windower<Vec<usize>> = Windower::new(1_000, false, None);
        w.slot(500, &mut |_| {}).unwrap();
        w.begin_mid_run();
        assert_eq!(w.base, 0);
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

    #[test]
    fn a_silence_is_one_run_however_long() {
        // 200 jumps of a million windows each: 2·10^8 windows, 401 items.
        let mut w: Windower<Vec<u8>> = Windower::new(1, false, None);
        let mut closed = 0usize;
        let mut windows = 0u64;
        let mut count = |c: Closed<Vec<u8>>| {
            closed += 1;
            windows += match c {
                Closed::Window(_) => 1,
                Closed::Empty(r) => r.count,
            };
        };
        for i in 0..200u64 {
            w.slot(i * MAX_JUMP_WINDOWS, &mut count)
                .unwrap()
                .unwrap()
                .push(0);
        }
        w.finish(&mut count);
        assert_eq!(windows, 199 * MAX_JUMP_WINDOWS + 1);
        assert!(closed <= 2 * 200, "{closed} items for 200 events");
    }

    #[test]
    fn the_window_cap_is_an_error() {
        let mut w: Windower<Vec<u8>> = Windower::new(1_000, false, Some(100));
        let mut sink = |_: Closed<Vec<u8>>| {};
        assert!(w.slot(0, &mut sink).unwrap().is_some());
        assert!(w.slot(99_999, &mut sink).unwrap().is_some());
        let err = w.slot(100_000, &mut sink).err().unwrap();
        assert_eq!(
            err,
            TooManyWindows {
                index: 100,
                limit: 100
            }
        );
    }
}
