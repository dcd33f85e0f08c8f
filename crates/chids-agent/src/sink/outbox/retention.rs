//! How long and how much the outbox keeps.
//!
//! Delivered records are kept for `chids agent alerts` until they are
//! older than `max_age` or the outbox is over `max_bytes` (oldest first).
//! Undelivered records are dropped only past those limits, and counted
//! lost: `expired` past the age, `outbox_full` past the size. Past the
//! size, the workload with the most undelivered records loses its oldest
//! first, so a noisy workload pays for its own backlog.

use std::time::Duration;

use rusqlite::{params, Connection};

use super::{now_ns, OutboxCounters};

/// The outbox's limits.
#[derive(Clone, Copy, Debug)]
pub struct Retention {
    /// Body bytes plus a per-record overhead estimate.
    pub max_bytes: u64,
    pub max_age: Duration,
}

/// How often retention runs on its own.
pub(super) const EVERY: Duration = Duration::from_secs(10);
/// Per-record overhead counted against `max_bytes` (ids, index entries).
const ROW_OVERHEAD: i64 = 128;
/// Records deleted per statement (bounded work per step).
const CHUNK: i64 = 256;

/// Applies the limits. Failures (a full disk) are left for the next run.
pub(super) fn enforce(conn: &Connection, r: &Retention, counters: &OutboxCounters) {
    let cutoff = now_ns().saturating_sub(r.max_age.as_nanos() as u64) as i64;
    let _ = conn.execute(
        "DELETE FROM alerts WHERE delivered_ns IS NOT NULL AND created_ns < ?1",
        [cutoff],
    );
    if let Ok(n) = conn.execute(
        "DELETE FROM alerts WHERE delivered_ns IS NULL AND created_ns < ?1",
        [cutoff],
    ) {
        counters.add_lost("expired", n as u64);
    }
    // Bounded: each pass deletes at least one chunk or stops.
    for _ in 0..10_000 {
        if size(conn) <= r.max_bytes as i64 {
            break;
        }
        if prune_delivered(conn) > 0 {
            continue;
        }
        match drop_from_largest_backlog(conn) {
            Ok(0) | Err(_) => break,
            Ok(n) => counters.add_lost("outbox_full", n as u64),
        }
    }
}

fn size(conn: &Connection) -> i64 {
    conn.query_row(
        "SELECT COALESCE(SUM(length(body)), 0) + COUNT(*) * ?1 FROM alerts",
        [ROW_OVERHEAD],
        |r| r.get(0),
    )
    .unwrap_or(0)
}

/// Deletes the oldest delivered records (one chunk); how many.
pub(super) fn prune_delivered(conn: &Connection) -> usize {
    conn.execute(
        "DELETE FROM alerts WHERE seq IN (
            SELECT seq FROM alerts WHERE delivered_ns IS NOT NULL ORDER BY seq LIMIT ?1)",
        [CHUNK],
    )
    .unwrap_or(0)
}

fn drop_from_largest_backlog(conn: &Connection) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM alerts WHERE seq IN (
            SELECT seq FROM alerts WHERE delivered_ns IS NULL AND workload = (
                SELECT workload FROM alerts WHERE delivered_ns IS NULL
                GROUP BY workload ORDER BY COUNT(*) DESC LIMIT 1)
            ORDER BY seq LIMIT ?1)",
        params![CHUNK / 8],
    )
}
