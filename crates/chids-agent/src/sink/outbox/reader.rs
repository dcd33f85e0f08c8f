//! The delivery side of the outbox: which records to send next, and
//! marking them delivered.
//!
//! Records are taken round-robin across workloads (each workload's oldest
//! first, a few per workload per batch), so a backlog of one noisy
//! workload never stands in front of another workload's alert.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use rusqlite::{params, Connection};

use super::{connect, db_error, now_ns, OutboxCounters};
use chids_live::LiveError;

/// One record waiting for delivery.
#[derive(Clone, Debug)]
pub struct Pending {
    pub seq: i64,
    pub alert_id: String,
    pub body: Vec<u8>,
}

pub struct OutboxReader {
    conn: Connection,
    counters: Arc<OutboxCounters>,
    /// Acknowledged by the broker but not yet marked (the mark failed, e.g.
    /// on a full disk): not published again, marked on the next try.
    acked_unmarked: HashSet<i64>,
}

/// At most this many records of one workload per batch.
pub(super) const PER_WORKLOAD: i64 = 8;

impl OutboxReader {
    pub(super) fn open(
        path: &Path,
        counters: Arc<OutboxCounters>,
    ) -> Result<OutboxReader, LiveError> {
        let reader = OutboxReader {
            conn: connect(path, false)?,
            counters,
            acked_unmarked: HashSet::new(),
        };
        reader.refresh_pending()?;
        Ok(reader)
    }

    /// The next records to deliver, at most `limit`, round-robin across
    /// workloads.
    pub(crate) fn next_batch(&mut self, limit: usize) -> Result<Vec<Pending>, LiveError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT seq, alert_id, body FROM (
                    SELECT seq, alert_id, body,
                           ROW_NUMBER() OVER (PARTITION BY workload ORDER BY seq) AS turn
                    FROM alerts WHERE delivered_ns IS NULL)
                 WHERE turn <= ?1 ORDER BY turn, seq LIMIT ?2",
            )
            .map_err(|e| db_error("read pending alerts", e))?;
        let rows = stmt
            .query_map(params![PER_WORKLOAD, limit as i64], |r| {
                Ok(Pending {
                    seq: r.get(0)?,
                    alert_id: r.get(1)?,
                    body: r.get(2)?,
                })
            })
            .map_err(|e| db_error("read pending alerts", e))?;
        let mut batch = Vec::new();
        for row in rows {
            let p = row.map_err(|e| db_error("read pending alerts", e))?;
            if !self.acked_unmarked.contains(&p.seq) {
                batch.push(p);
            }
        }
        Ok(batch)
    }

    /// Marks records delivered (one transaction). A failed mark is kept in
    /// memory and retried with the next call; the records are not
    /// published again meanwhile.
    pub(crate) fn mark_delivered(&mut self, seqs: &[i64]) -> Result<(), LiveError> {
        self.acked_unmarked.extend(seqs.iter().copied());
        let all: Vec<i64> = self.acked_unmarked.iter().copied().collect();
        self.mark(&all)?;
        self.acked_unmarked.clear();
        self.refresh_pending()
    }

    /// Retries marking what was acknowledged but could not be marked (a
    /// full disk); nothing to do otherwise.
    pub(crate) fn retry_marks(&mut self) -> Result<(), LiveError> {
        if self.acked_unmarked.is_empty() {
            return Ok(());
        }
        self.mark_delivered(&[])
    }

    /// Marks records delivered before they are sent (`--no-jetstream`, at
    /// most once): on failure nothing is kept, the records stay pending.
    pub(crate) fn mark_before_send(&mut self, seqs: &[i64]) -> Result<(), LiveError> {
        self.mark(seqs)?;
        self.refresh_pending()
    }

    fn mark(&mut self, seqs: &[i64]) -> Result<(), LiveError> {
        if seqs.is_empty() {
            return Ok(());
        }
        let now = now_ns() as i64;
        let tx = self
            .conn
            .transaction()
            .map_err(|e| db_error("mark delivered", e))?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "UPDATE alerts SET delivered_ns = ?1 WHERE seq = ?2 AND delivered_ns IS NULL",
                )
                .map_err(|e| db_error("mark delivered", e))?;
            for seq in seqs {
                stmt.execute(params![now, seq])
                    .map_err(|e| db_error("mark delivered", e))?;
            }
        }
        tx.commit().map_err(|e| db_error("mark delivered", e))?;
        self.counters
            .delivered
            .fetch_add(seqs.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Counts of what waits (for metrics and the status file).
    pub(crate) fn refresh_pending(&self) -> Result<(), LiveError> {
        let (n, bytes): (i64, i64) = self
            .conn
            .query_row(
                "SELECT COUNT(*), COALESCE(SUM(length(body)), 0) FROM alerts WHERE delivered_ns IS NULL",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| db_error("count pending alerts", e))?;
        let unmarked = self.acked_unmarked.len() as u64;
        self.counters
            .pending
            .store((n as u64).saturating_sub(unmarked), Ordering::Relaxed);
        self.counters
            .pending_bytes
            .store(bytes as u64, Ordering::Relaxed);
        Ok(())
    }
}
