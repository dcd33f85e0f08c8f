//! The agent's one way out for alerts: the budget decides (on the capture
//! thread), the outbox commits (on the writer thread, `super::writer`),
//! then every sink gets the committed JSON.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::budget::{AlertBudget, Verdict};
use super::outbox::{now_ns, AlertIds, Outbox, OutboxCounters, LOSS_REASONS};
use super::writer::{NotQueued, OutboxWriter, Record, QUEUE};
use super::{AlertSink, SinkStats};
use chids_live::LiveError;

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
    ids: AlertIds,
    counters: Arc<OutboxCounters>,
    budget: AlertBudget,
    /// Commits and hands to the sinks, on a thread of its own.
    writer: OutboxWriter,
    /// The sinks once the writer finished (closed, still asked for
    /// figures and last log lines).
    closed_sinks: Vec<Box<dyn AlertSink>>,
    log: Vec<String>,
    /// Records the writer's queue had no room for, since the last line
    /// about it (a storm must not flood the log: one line, then a count).
    not_queued_since_log: u64,
    last_not_queued_log: Option<Instant>,
}

const NOT_QUEUED_LOG_EVERY: Duration = Duration::from_secs(10);

impl AlertDispatch {
    /// Starts the writer thread, which owns `outbox` and `sinks`.
    pub fn new(
        outbox: Outbox,
        budget: AlertBudget,
        sinks: Vec<Box<dyn AlertSink>>,
    ) -> Result<AlertDispatch, LiveError> {
        Ok(AlertDispatch {
            ids: outbox.alert_ids(),
            counters: outbox.counters(),
            budget,
            writer: OutboxWriter::start(outbox, sinks)?,
            closed_sinks: Vec::new(),
            log: Vec::new(),
            not_queued_since_log: 0,
            last_not_queued_log: None,
        })
    }

    /// Some(alert_id) when `workload`'s alert goes out (build its JSON with
    /// that id, then call [`AlertDispatch::deliver`]); None when the
    /// budget folded it into the period's summary.
    pub fn admit(&mut self, workload: &str) -> Option<String> {
        let id = self.ids.next_id();
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
        self.ids.next_id()
    }

    /// Queues `json` (carrying `alert_id`) for the writer thread, which
    /// commits it to the outbox, then hands it to every sink. Never waits:
    /// when the queue is full the record is counted lost (`queue_full`)
    /// and logged.
    pub fn deliver(&mut self, alert_id: &str, workload: &str, json: Vec<u8>) {
        let record = Record {
            alert_id: alert_id.to_string(),
            workload: workload.to_string(),
            json,
        };
        if let Err(why) = self.writer.queue(record) {
            self.not_queued(alert_id, why);
        }
    }

    fn not_queued(&mut self, alert_id: &str, why: NotQueued) {
        self.counters.add_lost("queue_full", 1);
        self.not_queued_since_log += 1;
        if self
            .last_not_queued_log
            .is_some_and(|t| t.elapsed() < NOT_QUEUED_LOG_EVERY)
        {
            return;
        }
        let what = match why {
            NotQueued::Full => format!(
                "the outbox writer's queue is full ({QUEUE} records: the disk is slow or the database locked)"
            ),
            NotQueued::WriterGone => "the outbox writer thread has stopped".to_string(),
        };
        self.log.push(format!(
            "outbox: alert {alert_id} lost: {what} ({} alert(s) lost since the last such line; counted in chids_alerts_lost_total{{reason=\"queue_full\"}})",
            self.not_queued_since_log
        ));
        self.not_queued_since_log = 0;
        self.last_not_queued_log = Some(Instant::now());
    }

    /// Summaries of budget periods that ended (all of them when `all`,
    /// then queued waiting for room: the agent stops).
    pub fn tick(&mut self, all: bool) {
        for mut summary in self.budget.due(Instant::now(), all) {
            summary.alert_id = self.ids.next_id();
            let record = Record {
                json: serde_json::to_vec(&summary).expect("summary serialises"),
                alert_id: summary.alert_id,
                workload: summary.workload,
            };
            let id = record.alert_id.clone();
            let queued = if all {
                self.writer.queue_waiting(record)
            } else {
                self.writer.queue(record)
            };
            if let Err(why) = queued {
                self.not_queued(&id, why);
            }
        }
    }

    /// Log lines since the last call (the writer's and the sinks' too).
    pub(crate) fn take_log(&mut self) -> Vec<String> {
        let mut lines = std::mem::take(&mut self.log);
        lines.extend(self.writer.take_log());
        for s in self.closed_sinks.iter_mut() {
            lines.extend(s.take_log());
        }
        lines
    }

    pub(crate) fn sink_stats(&self) -> Vec<(&'static str, SinkStats)> {
        if self.closed_sinks.is_empty() {
            return self.writer.sink_stats();
        }
        self.closed_sinks
            .iter()
            .map(|s| (s.kind(), s.stats()))
            .collect()
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

    /// Writes the last summaries, waits until the writer has committed
    /// everything queued, then gives the sinks `grace` to deliver.
    pub fn close(&mut self, grace: Duration) {
        self.writer.closing();
        self.tick(true);
        self.closed_sinks = self.writer.finish();
        for s in self.closed_sinks.iter_mut() {
            s.close(grace);
        }
    }
}

impl Drop for AlertDispatch {
    /// An agent ending on an error still commits what it queued.
    fn drop(&mut self) {
        self.writer.finish();
    }
}

#[cfg(test)]
mod tests;
