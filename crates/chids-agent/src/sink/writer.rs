//! The outbox's writer thread: commits the records the capture thread
//! produced, then hands them to the sinks.
//!
//! A commit is an fsync (`synchronous=FULL`): on the capture thread it
//! would hold the draining of the ring buffer behind the disk (and behind
//! a lock another process holds on the database). The capture thread only
//! queues a record; when the bounded queue is full the record is counted
//! lost (`queue_full`) and capture goes on. This thread commits whatever
//! waits in one transaction (a storm costs one fsync per batch, not per
//! alert), then gives every sink the committed JSON: committed on the node
//! first, then delivered (the NATS delivery thread reads only committed
//! rows). When the capture side closes the queue, everything in it is
//! committed before the thread ends.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::outbox::Outbox;
use super::{AlertSink, SinkStats};
use chids_live::LiveError;

/// Records waiting for the writer at most (a few KB each: a few MB in
/// all). Past this, records are counted lost, `queue_full`.
pub(crate) const QUEUE: usize = 1024;
/// Records committed in one transaction at most.
pub(crate) const BATCH: usize = 256;
/// How often the writer refreshes the sinks' figures and logs when idle.
const IDLE: Duration = Duration::from_millis(250);
/// Lines about records not stored: one, then a count, this often.
const UNSTORED_LOG_EVERY: Duration = Duration::from_secs(10);

/// One record for the outbox: a JSON object carrying `alert_id`.
#[derive(Debug)]
pub(crate) struct Record {
    pub alert_id: String,
    pub workload: String,
    pub json: Vec<u8>,
}

/// What the writer shares with the capture side.
#[derive(Default)]
struct Shared {
    /// Log lines (bounded: a failing disk for hours must not grow memory).
    log: Mutex<Vec<String>>,
    /// The sinks' figures, refreshed by the writer.
    sinks: Mutex<Vec<(&'static str, SinkStats)>>,
    /// The capture side is closing: a database locked by another process
    /// is not waited for any longer.
    closing: AtomicBool,
}

impl Shared {
    fn log(&self, line: String) {
        let mut l = self.log.lock().unwrap();
        if l.len() < 100 {
            l.push(line);
        }
    }
}

/// Why a record could not be queued.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NotQueued {
    Full,
    /// The writer thread ended (it panicked).
    WriterGone,
}

/// The writer thread, as the capture side sees it.
pub(crate) struct OutboxWriter {
    tx: Option<SyncSender<Record>>,
    thread: Option<JoinHandle<Vec<Box<dyn AlertSink>>>>,
    shared: Arc<Shared>,
}

impl OutboxWriter {
    /// Starts the thread that owns `outbox` and `sinks`.
    pub(crate) fn start(
        outbox: Outbox,
        sinks: Vec<Box<dyn AlertSink>>,
    ) -> Result<OutboxWriter, LiveError> {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let shared = Arc::new(Shared::default());
        publish_stats(&shared, &sinks);
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("chids-outbox".into())
            .spawn(move || write_loop(outbox, sinks, rx, &s))
            .map_err(|e| LiveError::io("start the outbox writer thread", e))?;
        Ok(OutboxWriter {
            tx: Some(tx),
            thread: Some(thread),
            shared,
        })
    }

    /// Queues `record` without waiting.
    pub(crate) fn queue(&self, record: Record) -> Result<(), NotQueued> {
        let Some(tx) = &self.tx else {
            return Err(NotQueued::WriterGone);
        };
        tx.try_send(record).map_err(|e| match e {
            TrySendError::Full(_) => NotQueued::Full,
            TrySendError::Disconnected(_) => NotQueued::WriterGone,
        })
    }

    /// Queues `record`, waiting for room (only when the agent stops: the
    /// last summaries must not be lost to a full queue).
    pub(crate) fn queue_waiting(&self, record: Record) -> Result<(), NotQueued> {
        let Some(tx) = &self.tx else {
            return Err(NotQueued::WriterGone);
        };
        tx.send(record).map_err(|_| NotQueued::WriterGone)
    }

    /// The agent stops: a database locked by another process is no longer
    /// waited for past SQLite's busy timeout (so the last records queued
    /// waiting for room, and the exit, cannot hang on it).
    pub(crate) fn closing(&self) {
        self.shared.closing.store(true, Ordering::SeqCst);
    }

    /// Closes the queue and waits until everything in it is committed and
    /// handed to the sinks; gives the sinks back (to be closed). Empty when
    /// the writer panicked or was finished already.
    pub(crate) fn finish(&mut self) -> Vec<Box<dyn AlertSink>> {
        self.closing();
        self.tx = None;
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(sinks)) => {
                publish_stats(&self.shared, &sinks);
                sinks
            }
            _ => Vec::new(),
        }
    }

    pub(crate) fn take_log(&self) -> Vec<String> {
        std::mem::take(&mut *self.shared.log.lock().unwrap())
    }

    pub(crate) fn sink_stats(&self) -> Vec<(&'static str, SinkStats)> {
        self.shared.sinks.lock().unwrap().clone()
    }
}

fn publish_stats(shared: &Shared, sinks: &[Box<dyn AlertSink>]) {
    *shared.sinks.lock().unwrap() = sinks.iter().map(|s| (s.kind(), s.stats())).collect();
}

/// Records not stored (a full disk), logged once per
/// [`UNSTORED_LOG_EVERY`] with a count.
#[derive(Default)]
struct UnstoredLog {
    since_log: u64,
    last: Option<Instant>,
}

impl UnstoredLog {
    fn note(&mut self, shared: &Shared, e: &LiveError) {
        self.since_log += 1;
        if self.last.is_none_or(|t| t.elapsed() >= UNSTORED_LOG_EVERY) {
            shared.log(format!(
                "{e} ({} alert(s) not stored since the last such line; counted in chids_alerts_lost_total)",
                self.since_log
            ));
            self.since_log = 0;
            self.last = Some(Instant::now());
        }
    }
}

/// The thread: batches of what waits, committed, then handed to the
/// sinks; retention and figures in between. Ends when the queue is closed
/// and empty.
fn write_loop(
    mut outbox: Outbox,
    mut sinks: Vec<Box<dyn AlertSink>>,
    rx: Receiver<Record>,
    shared: &Shared,
) -> Vec<Box<dyn AlertSink>> {
    let mut unstored = UnstoredLog::default();
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        match rx.recv_timeout(IDLE) {
            Ok(r) => batch.push(r),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            let closing = || shared.closing.load(Ordering::SeqCst);
            let mut locked_log = |waited: Duration| {
                shared.log(format!(
                    "outbox: the database is locked by another process (waited {:.0}s); {} alert(s) wait to be committed",
                    waited.as_secs_f64(),
                    batch.len()
                ))
            };
            let failures = outbox.commit_batch(&batch, &closing, &mut locked_log);
            for e in &failures {
                unstored.note(shared, e);
            }
            // Committed (or counted lost when not storable): the sinks
            // get it either way, a file sink is the node's last record.
            for r in batch.drain(..) {
                for s in sinks.iter_mut() {
                    if let Err(e) = s.send(&r.json) {
                        shared.log(format!("{} sink: {e}", s.kind()));
                    }
                }
            }
        }
        outbox.tick();
        for s in sinks.iter_mut() {
            for line in s.take_log() {
                shared.log(line);
            }
        }
        publish_stats(shared, &sinks);
    }
    sinks
}
