//! The alert outbox: every alert is committed here, on the node, before it
//! goes anywhere else, and delivered to NATS from here.
//!
//! The store is SQLite (`STATE_DIR/outbox.db`, rusqlite with the bundled
//! library) in WAL mode with `synchronous=FULL`: a commit that returned
//! is on disk, through a kill -9 *and* a power cut. The cost, one fsync
//! per alert, is bounded by the per-workload alert budget
//! ([`super::budget`]): a flood becomes one summary record per period, not
//! one commit per alert.
//!
//! Commits run on a writer thread of their own (`super::writer`), several
//! waiting records in one transaction.
//!
//! Each record has an `alert_id`, `NODE.RUN.N`: `NODE` random, chosen when
//! the database was created; `RUN` counted up at every open; `N` counted
//! in memory ([`AlertIds`], on the capture thread). It is unique per node (and across nodes sharing a stream),
//! written into the alert's JSON at commit and reused by every retry, so
//! JetStream drops a re-publish after a crash (`Nats-Msg-Id`).
//!
//! A full disk fails the insert (SQLite rolls the transaction back: no
//! torn record); the alert is counted lost with reason `disk_full`, the
//! oldest delivered records are pruned to make room for the next one, and
//! delivery of what is stored goes on.

mod reader;
mod retention;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension};

pub use reader::{OutboxReader, Pending};
pub use retention::Retention;

use super::private_fs;
use super::writer::Record;
use chids_live::LiveError;

/// The database's file name in the state folder.
pub(crate) const DB_FILE: &str = "outbox.db";

/// Why alerts were lost (labels of `chids_alerts_lost_total`).
/// `queue_full`: not taken by the writer thread (its queue full, see
/// `super::writer`); the others: see [`Outbox::commit`] and `retention`.
pub(crate) const LOSS_REASONS: [&str; 4] = ["disk_full", "outbox_full", "expired", "queue_full"];

/// Figures shared by the committing side, the delivery thread and metrics.
#[derive(Debug, Default)]
pub struct OutboxCounters {
    pub committed: AtomicU64,
    pub delivered: AtomicU64,
    pub pending: AtomicU64,
    pub pending_bytes: AtomicU64,
    /// By [`LOSS_REASONS`] index.
    pub lost: [AtomicU64; 4],
}

impl OutboxCounters {
    pub fn lost(&self, reason: &str) -> u64 {
        LOSS_REASONS
            .iter()
            .position(|r| *r == reason)
            .map_or(0, |i| self.lost[i].load(Ordering::Relaxed))
    }

    pub(crate) fn add_lost(&self, reason: &str, n: u64) {
        if let Some(i) = LOSS_REASONS.iter().position(|r| *r == reason) {
            self.lost[i].fetch_add(n, Ordering::Relaxed);
        }
    }

    pub(crate) fn lost_total(&self) -> u64 {
        self.lost.iter().map(|l| l.load(Ordering::Relaxed)).sum()
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alerts(
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id TEXT NOT NULL UNIQUE,
    workload TEXT NOT NULL,
    created_ns INTEGER NOT NULL,
    body BLOB NOT NULL,
    delivered_ns INTEGER
);
CREATE INDEX IF NOT EXISTS pending_by_workload ON alerts(workload, seq) WHERE delivered_ns IS NULL;
CREATE INDEX IF NOT EXISTS by_created ON alerts(created_ns);
";

pub(crate) fn db_error(what: &str, e: rusqlite::Error) -> LiveError {
    LiveError::Other(format!("outbox: {what}: {e}"))
}

pub(crate) fn is_disk_full(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(ErrorCode::DiskFull)
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

pub(crate) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Opens a connection to the outbox database with the settings every
/// user of it needs (the file must exist and be safe: see [`Outbox::open`]).
pub(crate) fn connect(path: &Path, read_only: bool) -> Result<Connection, LiveError> {
    let mut flags = OpenFlags::SQLITE_OPEN_NOFOLLOW | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    flags |= if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
    };
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| LiveError::Other(format!("outbox {}: {e}", path.display())))?;
    // The delivery thread and the committing side write in turns.
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(|e| db_error("busy timeout", e))?;
    if !read_only {
        for (k, v) in [
            ("journal_mode", "WAL"),
            ("synchronous", "FULL"),
            // Small checkpoints and a WAL cut back after each: the outbox
            // must work in a state folder of a few MB.
            ("wal_autocheckpoint", "100"),
            ("journal_size_limit", "1048576"),
        ] {
            conn.pragma_update(None, k, v)
                .map_err(|e| db_error(&format!("PRAGMA {k}"), e))?;
        }
    }
    Ok(conn)
}

/// The committing side of the outbox (the agent's thread).
pub struct Outbox {
    conn: Connection,
    path: PathBuf,
    id_prefix: String,
    /// Without a remote destination (no `--nats`) records are stored
    /// already delivered: kept for `chids agent alerts`, not pending.
    remote: bool,
    retention: Retention,
    last_retention: Instant,
    counters: Arc<OutboxCounters>,
}

impl Outbox {
    /// Opens (or creates) `STATE_DIR/outbox.db`: the folder 0700, the
    /// file 0600, neither through a symbolic link.
    pub fn open(state_dir: &Path, retention: Retention, remote: bool) -> Result<Outbox, LiveError> {
        private_fs::private_dir(state_dir)
            .map_err(|e| LiveError::Other(format!("--state-dir: {e}")))?;
        let path = state_dir.join(DB_FILE);
        // SQLite names its WAL and shared-memory files after the database
        // and opens them O_NOFOLLOW; creating them safely first also gives
        // them 0600 (SQLite copies the database file's mode).
        for name in [DB_FILE, "outbox.db-wal", "outbox.db-shm"] {
            private_fs::ensure_file(&state_dir.join(name))
                .map_err(|e| LiveError::Other(format!("outbox: {e}")))?;
        }
        let conn = connect(&path, false)?;
        conn.execute_batch(SCHEMA)
            .map_err(|e| db_error("create tables", e))?;
        let (node, run) = node_and_run(&conn)?;
        let counters = Arc::new(OutboxCounters::default());
        let mut outbox = Outbox {
            conn,
            path,
            id_prefix: format!("{node}.{run}"),
            remote,
            retention,
            last_retention: Instant::now(),
            counters,
        };
        outbox.enforce_retention();
        Ok(outbox)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn counters(&self) -> Arc<OutboxCounters> {
        Arc::clone(&self.counters)
    }

    /// A reader on its own connection, for the delivery thread.
    pub fn reader(&self) -> Result<OutboxReader, LiveError> {
        OutboxReader::open(&self.path, self.counters())
    }

    /// This run's alert ids (take them once: each call counts from 1).
    pub(crate) fn alert_ids(&self) -> AlertIds {
        AlertIds {
            prefix: self.id_prefix.clone(),
            next_n: 1,
        }
    }

    /// Commits one record (a JSON object carrying `alert_id`). On error the
    /// record is not stored and is counted lost (`disk_full` when the disk
    /// is full, after one retry with room made by pruning delivered ones).
    pub fn commit(&mut self, alert_id: &str, workload: &str, body: &[u8]) -> Result<(), LiveError> {
        self.tick();
        let mut result = self.insert(alert_id, workload, body);
        if result.as_ref().is_err_and(is_disk_full) && retention::prune_delivered(&self.conn) > 0 {
            result = self.insert(alert_id, workload, body);
        }
        match result {
            Ok(()) => {
                self.counted_committed(body.len());
                Ok(())
            }
            Err(e) => {
                let reason = if is_disk_full(&e) {
                    "disk_full"
                } else {
                    "outbox_full"
                };
                self.counters.add_lost(reason, 1);
                Err(db_error(&format!("alert {alert_id} not stored"), e))
            }
        }
    }

    fn counted_committed(&self, body_len: usize) {
        self.counters.committed.fetch_add(1, Ordering::Relaxed);
        if self.remote {
            self.counters.pending.fetch_add(1, Ordering::Relaxed);
            self.counters
                .pending_bytes
                .fetch_add(body_len as u64, Ordering::Relaxed);
        }
    }

    fn insert(&self, alert_id: &str, workload: &str, body: &[u8]) -> rusqlite::Result<()> {
        insert(&self.conn, self.remote, alert_id, workload, body)
    }

    /// Commits `records` in one transaction (one fsync). When that fails,
    /// they are committed one by one, so a full disk loses only what does
    /// not fit, each counted (see [`Outbox::commit`]); the errors are
    /// returned. A database locked by another process (SQLite's busy
    /// timeout passed) is waited for, `locked` told each time, until
    /// `closing()`: then the records are counted lost (`outbox_full`).
    pub(crate) fn commit_batch(
        &mut self,
        records: &[Record],
        closing: &dyn Fn() -> bool,
        locked: &mut dyn FnMut(Duration),
    ) -> Vec<LiveError> {
        self.tick();
        let since = Instant::now();
        loop {
            match self.insert_all(records) {
                Ok(()) => {
                    for r in records {
                        self.counted_committed(r.json.len());
                    }
                    return Vec::new();
                }
                Err(e) if is_busy(&e) && !closing() => locked(since.elapsed()),
                Err(e) if is_busy(&e) => {
                    // The agent stops: no record waits the timeout again.
                    self.counters.add_lost("outbox_full", records.len() as u64);
                    return records
                        .iter()
                        .map(|r| {
                            LiveError::Other(format!(
                                "outbox: alert {} not stored: {e}",
                                r.alert_id
                            ))
                        })
                        .collect();
                }
                Err(_) => break,
            }
        }
        records
            .iter()
            .filter_map(|r| self.commit(&r.alert_id, &r.workload, &r.json).err())
            .collect()
    }

    fn insert_all(&mut self, records: &[Record]) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        for r in records {
            insert(&tx, self.remote, &r.alert_id, &r.workload, &r.json)?;
        }
        tx.commit()
    }

    /// Runs retention when it is due (every few seconds).
    pub fn tick(&mut self) {
        if self.last_retention.elapsed() >= retention::EVERY {
            self.enforce_retention();
        }
    }

    /// Drops what is past the outbox's age and size limits (see
    /// [`Retention`]); called on its own every few seconds by `commit`,
    /// and by the agent's periodic tick.
    pub(crate) fn enforce_retention(&mut self) {
        self.last_retention = Instant::now();
        retention::enforce(&self.conn, &self.retention, &self.counters);
    }
}

/// Inserts one record (in the caller's transaction, if any); without a
/// remote destination it is stored delivered already.
fn insert(
    conn: &Connection,
    remote: bool,
    alert_id: &str,
    workload: &str,
    body: &[u8],
) -> rusqlite::Result<()> {
    let now = now_ns() as i64;
    let delivered = (!remote).then_some(now);
    conn.prepare_cached(
        "INSERT INTO alerts(alert_id, workload, created_ns, body, delivered_ns) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![alert_id, workload, now, body, delivered])
    .map(drop)
}

/// Alert ids of one run, `NODE.RUN.N` (see the module's notes).
#[derive(Debug)]
pub(crate) struct AlertIds {
    prefix: String,
    next_n: u64,
}

impl AlertIds {
    /// The next alert id (also for alerts folded into a summary, which are
    /// never stored: the summary names the first and last).
    pub(crate) fn next_id(&mut self) -> String {
        let id = format!("{}.{}", self.prefix, self.next_n);
        self.next_n += 1;
        id
    }
}

/// The node's random id (made once) and this run's number (counted up).
fn node_and_run(conn: &Connection) -> Result<(String, u64), LiveError> {
    let get = |k: &str| {
        conn.query_row("SELECT value FROM meta WHERE key = ?1", [k], |r| {
            r.get::<_, String>(0)
        })
        .optional()
        .map_err(|e| db_error("read meta", e))
    };
    let node = match get("node")? {
        Some(n) => n,
        None => {
            let n = format!("{:016x}", rand::random::<u64>());
            conn.execute("INSERT INTO meta(key, value) VALUES ('node', ?1)", [&n])
                .map_err(|e| db_error("write node id", e))?;
            n
        }
    };
    let run = get("run")?.and_then(|r| r.parse::<u64>().ok()).unwrap_or(0) + 1;
    let stored = conn.execute(
        "INSERT INTO meta(key, value) VALUES ('run', ?1) ON CONFLICT(key) DO UPDATE SET value = ?1",
        [run.to_string()],
    );
    match stored {
        Ok(_) => Ok((node, run)),
        // A full disk at start: ids stay unique with the start time as run.
        Err(e) if is_disk_full(&e) => Ok((node, now_ns())),
        Err(e) => Err(db_error("write run number", e)),
    }
}

/// Prints the stored records (JSON objects, one a line, oldest first) of
/// the outbox in `state_dir`: those created within `since`, only the
/// undelivered ones when `undelivered`. Opens the database read-only, so
/// it can run beside the agent.
pub fn list(
    state_dir: &Path,
    since: Option<Duration>,
    undelivered: bool,
    out: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
) -> Result<u64, LiveError> {
    let path = state_dir.join(DB_FILE);
    if !path.exists() {
        return Err(LiveError::Other(format!(
            "{}: no outbox here (has `chids agent --state-dir {}` run?)",
            path.display(),
            state_dir.display()
        )));
    }
    let conn = connect(&path, true)?;
    let from = since.map_or(0, |d| now_ns().saturating_sub(d.as_nanos() as u64)) as i64;
    let mut stmt = conn
        .prepare(
            "SELECT body FROM alerts WHERE created_ns >= ?1 AND (?2 = 0 OR delivered_ns IS NULL) ORDER BY seq",
        )
        .map_err(|e| db_error("read alerts", e))?;
    let mut rows = stmt
        .query(params![from, i64::from(undelivered)])
        .map_err(|e| db_error("read alerts", e))?;
    let mut n = 0;
    while let Some(row) = rows.next().map_err(|e| db_error("read alerts", e))? {
        let body: Vec<u8> = row.get(0).map_err(|e| db_error("read alerts", e))?;
        out(&body).map_err(|e| LiveError::io("write", e))?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests;
