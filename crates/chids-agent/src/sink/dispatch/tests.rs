//! The writer thread keeps commits off the producer: a database locked by
//! another connection holds neither `deliver` nor the records, a full
//! queue is counted, a stop commits what waits.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::*;
use crate::sink::outbox::{Retention, DB_FILE};
use crate::sink::writer::BATCH;
use crate::sink::FileSink;

const WEEK: Duration = Duration::from_secs(7 * 86400);
/// Far more than any step here takes, even on a loaded machine.
const DEADLINE: Duration = Duration::from_secs(60);

/// A dispatch without an alert budget, its outbox in `dir`, a file sink
/// at `dir/alerts.jsonl`.
fn dispatch(dir: &Path) -> (AlertDispatch, Arc<OutboxCounters>, PathBuf) {
    let retention = Retention {
        max_bytes: 64 << 20,
        max_age: WEEK,
    };
    let outbox = Outbox::open(dir, retention, false).unwrap();
    let counters = outbox.counters();
    let lines = dir.join("alerts.jsonl");
    let sink: Box<dyn AlertSink> = Box::new(FileSink::open(&lines).unwrap());
    let budget = AlertBudget::new(0, Duration::from_secs(60));
    let d = AlertDispatch::new(outbox, budget, vec![sink]).unwrap();
    (d, counters, lines)
}

/// Another process's connection holding the database's write lock.
fn lock(dir: &Path) -> Connection {
    let c = Connection::open(dir.join(DB_FILE)).unwrap();
    c.execute_batch("BEGIN IMMEDIATE").unwrap();
    c
}

fn produce(d: &mut AlertDispatch, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let id = d.admit("w").expect("no budget");
            let json = format!("{{\"alert_id\":\"{id}\",\"kind\":\"anomaly\"}}");
            d.deliver(&id, "w", json.into_bytes());
            id
        })
        .collect()
}

fn committed(c: &OutboxCounters) -> u64 {
    c.committed.load(Ordering::Relaxed)
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + DEADLINE;
    while !done() {
        assert!(Instant::now() < until, "not within {DEADLINE:?}: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn stored_ids(dir: &Path) -> Vec<String> {
    let c = Connection::open(dir.join(DB_FILE)).unwrap();
    let mut stmt = c
        .prepare("SELECT alert_id FROM alerts ORDER BY seq")
        .unwrap();
    let ids = stmt.query_map([], |r| r.get(0)).unwrap();
    ids.map(Result::unwrap).collect()
}

fn lines_in(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .count()
}

#[test]
fn a_locked_database_holds_neither_the_producer_nor_the_alerts() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut d, counters, lines) = dispatch(tmp.path());
    let locker = lock(tmp.path());
    // A commit on the producer's side would wait SQLite's busy timeout
    // (10 s) per alert here and then fail: nothing would be queued.
    let ids = produce(&mut d, 20);
    assert_eq!(
        committed(&counters),
        0,
        "the lock is held: nothing committed yet"
    );
    assert_eq!(
        counters.lost_total(),
        0,
        "nothing lost while the lock is held"
    );
    assert_eq!(
        lines_in(&lines),
        0,
        "sinks get an alert only once it is committed"
    );
    locker.execute_batch("COMMIT").unwrap();
    wait_for("20 alerts committed after the lock is released", || {
        committed(&counters) == 20
    });
    assert_eq!(stored_ids(tmp.path()), ids, "stored once each, in order");
    wait_for("the file sink has them", || lines_in(&lines) == 20);
    d.close(Duration::ZERO);
    assert_eq!(counters.lost_total(), 0);
}

#[test]
fn a_full_queue_counts_the_rest_lost_and_says_so_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut d, counters, _) = dispatch(tmp.path());
    let locker = lock(tmp.path());
    // The writer holds at most one batch, the queue QUEUE records: the
    // last 50 have no room.
    let produced = QUEUE + BATCH + 50;
    produce(&mut d, produced);
    let lost = counters.lost("queue_full");
    assert!(lost >= 50, "{lost} counted queue_full");
    let log = d.take_log();
    let said: Vec<&String> = log.iter().filter(|l| l.contains("queue is full")).collect();
    assert!(
        !said.is_empty() && (said.len() as u64) < lost,
        "rate-limited: {said:?}"
    );
    assert!(said[0].contains("queue_full"), "{}", said[0]);
    locker.execute_batch("COMMIT").unwrap();
    wait_for("every alert committed or counted lost", || {
        committed(&counters) + lost == produced as u64
    });
    d.close(Duration::ZERO);
    assert_eq!(stored_ids(tmp.path()).len() as u64, produced as u64 - lost);
}

#[test]
fn a_stop_commits_everything_queued() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut d, counters, lines) = dispatch(tmp.path());
    let locker = lock(tmp.path());
    // More than a batch waits in the queue when the stop comes; the lock
    // goes away a little later, while `close` waits for the writer.
    let ids = produce(&mut d, BATCH * 2);
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        locker.execute_batch("COMMIT").unwrap();
    });
    d.close(Duration::ZERO);
    release.join().unwrap();
    assert_eq!(committed(&counters), ids.len() as u64);
    assert_eq!(stored_ids(tmp.path()), ids);
    assert_eq!(lines_in(&lines), ids.len(), "every sink got each alert");
    assert_eq!(counters.lost_total(), 0);
}
