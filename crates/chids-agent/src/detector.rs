//! A container's detector together with the bundle it borrows.
//!
//! [`StreamDetector`] borrows its bundle; the agent replaces a workload's
//! bundle mid-run (a model trained, a model reloaded), so each detector
//! keeps an `Arc` of its bundle: a replaced bundle is freed when the last
//! detector using it ends.

use std::sync::Arc;

use chids_core::event::Event;
use chids_detect::detect::{ScoredWindow, StreamDetector};
use chids_detect::model::bundle::Bundle;

/// `None` once finished (finishing consumes the detector).
type Borrowing<'b> = Option<StreamDetector<'b>>;

self_cell::self_cell!(
    struct Cell {
        owner: Arc<Bundle>,
        #[covariant]
        dependent: Borrowing,
    }
);

/// A stream detector that owns (a share of) its bundle.
pub(crate) struct LiveDetector {
    cell: Cell,
    window_ns: u64,
    /// Late events of the detector once finished.
    dropped_at_finish: u64,
}

impl LiveDetector {
    /// `mid_run`: the stream watches something already running (see
    /// [`StreamDetector::begin_mid_run`]).
    pub(crate) fn new(bundle: Arc<Bundle>, threshold: f64, mid_run: bool) -> LiveDetector {
        let window_ns = bundle.settings.window_ns;
        LiveDetector {
            cell: Cell::new(bundle, |b| {
                let mut d = StreamDetector::new(b.as_ref(), threshold);
                if mid_run {
                    d.begin_mid_run();
                }
                Some(d)
            }),
            window_ns,
            dropped_at_finish: 0,
        }
    }

    pub(crate) fn window_ns(&self) -> u64 {
        self.window_ns
    }

    pub(crate) fn push(&mut self, event: &Event<'_>, emit: &mut impl FnMut(ScoredWindow)) {
        self.cell.with_dependent_mut(|_, d| {
            if let Some(d) = d {
                d.push(event, emit)
            }
        });
    }

    pub(crate) fn advance_to(&mut self, now_ns: u64, emit: &mut impl FnMut(ScoredWindow)) {
        self.cell.with_dependent_mut(|_, d| {
            if let Some(d) = d {
                d.advance_to(now_ns, emit)
            }
        });
    }

    /// Events the windower dropped for their time, so far.
    pub(crate) fn dropped(&self) -> u64 {
        self.cell
            .borrow_dependent()
            .as_ref()
            .map_or(self.dropped_at_finish, |d| d.window_stats().dropped())
    }

    /// Emits the open windows; the detector takes no more events.
    pub(crate) fn finish(&mut self, emit: &mut impl FnMut(ScoredWindow)) {
        let dropped = self.dropped();
        self.cell.with_dependent_mut(|_, d| {
            if let Some(d) = d.take() {
                d.finish(emit)
            }
        });
        self.dropped_at_finish = dropped;
    }
}
