use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use super::*;

const WEEK: Duration = Duration::from_secs(7 * 86400);

fn open(dir: &Path, max_bytes: u64) -> Outbox {
    let r = Retention {
        max_bytes,
        max_age: WEEK,
    };
    Outbox::open(dir, r, true).unwrap()
}

thread_local! {
    /// Ids for the records the tests commit; unique across the reopens of
    /// one database (a fresh run number each open), so a counter per
    /// thread is enough.
    static N: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

fn commit(o: &mut Outbox, workload: &str) -> String {
    let n = N.with(|c| {
        c.set(c.get() + 1);
        c.get()
    });
    let id = format!("{}.{n}", o.id_prefix);
    let body = format!("{{\"alert_id\":\"{id}\",\"workload\":\"{workload}\"}}");
    o.commit(&id, workload, body.as_bytes()).unwrap();
    id
}

#[test]
fn ids_stay_unique_across_reopens_and_files_are_private() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let mut ids = HashSet::new();
    for _ in 0..3 {
        let mut o = open(&state, 1 << 20);
        for _ in 0..5 {
            assert!(ids.insert(commit(&mut o, "w")));
        }
    }
    assert_eq!(ids.len(), 15);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&state.join(DB_FILE)), 0o600);
    let o = open(&state, 1 << 20);
    assert_eq!(o.counters().pending.load(Ordering::Relaxed), 0);
    let r = o.reader().unwrap();
    assert_eq!(o.counters().pending.load(Ordering::Relaxed), 15);
    drop(r);
}

use std::collections::HashSet;

#[test]
fn delivers_round_robin_across_workloads() {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = open(tmp.path(), 1 << 20);
    let noisy: Vec<String> = (0..30).map(|_| commit(&mut o, "noisy")).collect();
    let quiet = commit(&mut o, "quiet");
    let mut r = o.reader().unwrap();
    let batch = r.next_batch(4).unwrap();
    let ids: Vec<&str> = batch.iter().map(|p| p.alert_id.as_str()).collect();
    assert!(ids.contains(&quiet.as_str()), "{ids:?}");
    assert_eq!(ids[0], noisy[0]);
    r.mark_delivered(&batch.iter().map(|p| p.seq).collect::<Vec<_>>())
        .unwrap();
    let next = r.next_batch(100).unwrap();
    assert_eq!(next.len(), reader::PER_WORKLOAD as usize);
    assert!(next.iter().all(|p| !ids.contains(&p.alert_id.as_str())));
    assert_eq!(o.counters().delivered.load(Ordering::Relaxed), 4);
    assert_eq!(o.counters().pending.load(Ordering::Relaxed), 27);
}

#[test]
fn size_limit_drops_the_largest_backlog_first_and_counts_it() {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = open(tmp.path(), 64 << 10);
    let quiet = commit(&mut o, "quiet");
    for _ in 0..2000 {
        commit(&mut o, "noisy");
    }
    o.enforce_retention();
    let lost = o.counters().lost("outbox_full");
    assert!(lost > 0 && lost < 2000, "{lost}");
    let mut r = o.reader().unwrap();
    assert_eq!(o.counters().pending.load(Ordering::Relaxed), 2001 - lost);
    let next = r.next_batch(10_000).unwrap();
    assert!(next.iter().any(|p| p.alert_id == quiet));
}

#[test]
fn a_planted_link_at_the_database_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let victim = tmp.path().join("victim");
    std::fs::write(&victim, "keep").unwrap();
    let state = tmp.path().join("state");
    std::fs::create_dir(&state).unwrap();
    for name in [DB_FILE, "outbox.db-wal", "outbox.db-shm"] {
        let link = state.join(name);
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let r = Retention {
            max_bytes: 1 << 20,
            max_age: WEEK,
        };
        let e = Outbox::open(&state, r, true).err().unwrap().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        std::fs::remove_file(&link).unwrap();
    }
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
}

#[test]
fn past_the_age_limit_undelivered_alerts_are_dropped_and_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = open(tmp.path(), 1 << 20);
    for _ in 0..3 {
        commit(&mut o, "w");
    }
    drop(o);
    let r = Retention {
        max_bytes: 1 << 20,
        max_age: Duration::ZERO,
    };
    let o = Outbox::open(tmp.path(), r, true).unwrap();
    assert_eq!(o.counters().lost("expired"), 3);
    let mut n = 0;
    list(tmp.path(), None, false, &mut |_| {
        n += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(n, 0);
}

#[test]
fn listing_filters_undelivered_and_prints_whole_json() {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = open(tmp.path(), 1 << 20);
    let first = commit(&mut o, "w");
    commit(&mut o, "w");
    let mut r = o.reader().unwrap();
    let batch = r.next_batch(1).unwrap();
    assert_eq!(batch[0].alert_id, first);
    r.mark_delivered(&[batch[0].seq]).unwrap();
    let mut lines = Vec::new();
    list(
        tmp.path(),
        Some(Duration::from_secs(3600)),
        true,
        &mut |b| {
            lines.push(String::from_utf8(b.to_vec()).unwrap());
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(lines.len(), 1);
    let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_ne!(v["alert_id"], first.as_str());
}
