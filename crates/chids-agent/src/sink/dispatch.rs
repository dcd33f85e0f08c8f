//! The agent's one way out for alerts: the budget decides, the outbox
//! commits, then every sink gets the committed JSON.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::budget::{AlertBudget, Verdict};
use super::outbox::{now_ns, Outbox, OutboxCounters, LOSS_REASONS};
use super::{AlertSink, SinkStats};

/// The outbox's figures for metrics.
#[derive(Clone, Debug, Default)]
pub(crate) struct OutboxFigures {
    pub committed: u64,
    pub pending: u64,
    pub pending_bytes: u64,
    /// `(reason, count)` for each of [`LOSS_REASONS`].
    pub lost: Vec<(&'static str, u64)>,
    /// Alerts folded into summaries, per workload.
    pub suppressed: BTreeMap<String, u64>,
}

pub struct AlertDispatch {
    outbox: Outbox,
    counters: Arc<OutboxCounters>,
    budget: AlertBudget,
    sinks: Vec<Box<dyn AlertSink>>,
    log: Vec<String>,
    /// Commit failures logged in the current burst (a full disk must not
    /// flood the log: one line, then a count).
    unstored_since_log: u64,
    last_unstored_log: Option<Instant>,
}

const UNSTORED_LOG_EVERY: Duration = Duration::from_secs(10);

impl AlertDispatch {
    pub fn new(
        outbox: Outbox,
        budget: AlertBudget,
        sinks: Vec<Box<dyn AlertSink>>,
    ) -> AlertDispatch {
        AlertDispatch {
            counters: outbox.counters(),
            outbox,
            budget,
            sinks,
            log: Vec::new(),
            unstored_since_log: 0,
            last_unstored_log: None,
        }
    }

    /// Some(alert_id) when `workload`'s alert goes out (build its JSON with
    /// that id, then call [`AlertDispatch::deliver`]); None when the
    /// budget folded it into the period's summary.
    pub fn admit(&mut self, workload: &str) -> Option<String> {
        let id = self.outbox.next_alert_id();
        match self.budget.admit(workload, Instant::now()) {
            Verdict::Send => Some(id),
            Verdict::Suppress => {
                self.budget.fold(workload, &id, now_ns());
                None
            }
        }
    }

    /// An id for a record that is not under the alert budget (an exec
    /// session's, which has a rate limit of its own).
    pub(crate) fn record_id(&mut self) -> String {
        self.outbox.next_alert_id()
    }

    /// Commits `json` (carrying `alert_id`) to the outbox, then hands it
    /// to every sink. An alert the outbox could not store (full disk) is
    /// counted there and still goes to the file sinks.
    pub fn deliver(&mut self, alert_id: &str, workload: &str, json: &[u8]) {
        if let Err(e) = self.outbox.commit(alert_id, workload, json) {
            self.unstored_since_log += 1;
            if self
                .last_unstored_log
                .is_none_or(|t| t.elapsed() >= UNSTORED_LOG_EVERY)
            {
                self.log.push(format!(
                    "{e} ({} alert(s) not stored since the last such line; counted in chids_alerts_lost_total)",
                    self.unstored_since_log
                ));
                self.unstored_since_log = 0;
                self.last_unstored_log = Some(Instant::now());
            }
        }
        for s in self.sinks.iter_mut() {
            if let Err(e) = s.send(json) {
                self.log.push(format!("{} sink: {e}", s.kind()));
            }
        }
    }

    /// Periodic work: summaries of budget periods that ended (all of them
    /// when `all`), the outbox's retention.
    pub fn tick(&mut self, all: bool) {
        for mut summary in self.budget.due(Instant::now(), all) {
            summary.alert_id = self.outbox.next_alert_id();
            let json = serde_json::to_vec(&summary).expect("summary serialises");
            let (id, workload) = (summary.alert_id.clone(), summary.workload.clone());
            self.deliver(&id, &workload, &json);
        }
        self.outbox.tick();
    }

    /// Log lines since the last call (the sinks' too).
    pub(crate) fn take_log(&mut self) -> Vec<String> {
        let mut lines = std::mem::take(&mut self.log);
        for s in self.sinks.iter_mut() {
            lines.extend(s.take_log());
        }
        lines
    }

    pub(crate) fn sink_stats(&self) -> Vec<(&'static str, SinkStats)> {
        self.sinks.iter().map(|s| (s.kind(), s.stats())).collect()
    }

    pub(crate) fn outbox_figures(&self) -> OutboxFigures {
        let c = &self.counters;
        OutboxFigures {
            committed: c.committed.load(Ordering::Relaxed),
            pending: c.pending.load(Ordering::Relaxed),
            pending_bytes: c.pending_bytes.load(Ordering::Relaxed),
            lost: LOSS_REASONS.iter().map(|r| (*r, c.lost(r))).collect(),
            suppressed: self
                .budget
                .suppressed_total()
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
        }
    }

    /// Writes the last summaries, then gives the sinks `grace` to deliver.
    pub fn close(&mut self, grace: Duration) {
        self.tick(true);
        for s in self.sinks.iter_mut() {
            s.close(grace);
        }
    }
}
