//! The agent's alert outbox end to end (issue 16), with real containers, a
//! real nats-server with JetStream and a real tmpfs:
//! - the broker is back before its stream exists: alerts stay pending
//!   (warned), then are delivered; a kill -9 during delivery and a
//!   restart: the stream holds exactly the outbox's alerts, each once;
//! - one workload's alert storm is folded by its budget and another
//!   workload's alert reaches NATS within 5 s;
//! - a full 3 MB state folder: alerts that do not fit are counted lost, no
//!   record is torn, what is stored is delivered;
//! - a symbolic link planted at every file the agent writes is refused,
//!   and everything it writes is 0600 in 0700 folders;
//! - `--no-jetstream` on a broker without any stream: alerts are
//!   published plainly to a core-NATS subscriber, each once, the outbox
//!   marks them delivered, and the agent says delivery is at most once.
//!
//! Each workload gets a model up front (trained by `chids baseline` on a
//! synthetic sleeping process), so the agent detects at once and every
//! busy window of a busybox shell is an alert.
//!
//! Needs root, kernel BTF, podman + runc, nats-server and busybox-static
//! (scripts/install-test-deps.sh); run with `--include-ignored`.
#![cfg(feature = "live")]

mod agent_support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use agent_support::outbox::*;
use agent_support::*;
use serde_json::Value;

/// Busy enough that every 1 s window of it is an alert.
const NOISY: &str =
    "while true; do cat /etc/passwd > /dev/null; ls /bin > /dev/null; sleep 0.2; done";

fn require_prerequisites() {
    if let Some(why) = skip_reason() {
        panic!("prerequisite missing: {why}");
    }
}

fn nats_sink(agent: &Agent) -> Option<Value> {
    agent.status()?["sinks"]
        .as_array()?
        .iter()
        .find(|s| s["kind"] == "nats")
        .cloned()
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
}

/// SIGKILL, no chance to flush anything.
fn kill_9(agent: &mut Agent) {
    unsafe { libc::kill(agent.pid() as i32, libc::SIGKILL) };
    wait_for("the killed agent gone", Duration::from_secs(10), || {
        (!Path::new(&format!("/proc/{}/stat", agent.pid())).exists()
            || std::fs::read_to_string(format!("/proc/{}/stat", agent.pid()))
                .is_ok_and(|s| s.contains(") Z ")))
        .then_some(())
    });
}

#[test]
#[ignore = "needs root, podman, nats-server"]
fn pending_until_the_stream_exists_and_exactly_once_through_kill_9() {
    require_prerequisites();
    let p = prefix();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let models = tmp.path().join("models");
    let img = Image::busybox(&format!("localhost/{p}-k9:1"), &[]);
    preload_model(&models, &img.name, &train_sleepy_model(tmp.path()));
    // The broker is up, its stream is not there yet.
    let nats = Nats::start(&tmp.path().join("nats"), free_port());
    let subject = format!("{p}.alerts");
    let args = [
        "--models",
        models.to_str().unwrap(),
        "--nats",
        &nats.url(),
        "--subject",
        &subject,
        "--alert-rate",
        "0",
    ];
    let mut agent = Agent::start(&state, &args);
    wait_for("agent status", Duration::from_secs(30), || agent.status());
    let noisy: Vec<Container> = (0..3)
        .map(|i| Container::run(&format!("{p}-k9-{i}"), &img.name, NOISY))
        .collect();
    wait_for(
        "alerts pending, none delivered",
        Duration::from_secs(60),
        || {
            let s = nats_sink(&agent)?;
            assert_eq!(s["delivered"], 0, "delivered without a stream: {s}");
            (s["pending"].as_u64()? >= 20).then_some(())
        },
    );
    let log = agent.log_text();
    assert!(
        log.contains("no JetStream stream covers"),
        "no warning about the missing stream:\n{log}"
    );
    assert!(!log.contains("plain publish"), "{log}");

    // The stream comes; the agent dies while it delivers the backlog.
    nats.create_stream("CHIDS_K9", &subject);
    let end = Instant::now() + Duration::from_secs(30);
    while nats.messages("CHIDS_K9").is_empty() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(5));
    }
    kill_9(&mut agent);
    drop(agent);
    eprintln!(
        "killed with {} alert(s) in the stream, {} stored, {} of them not marked delivered",
        nats.messages("CHIDS_K9").len(),
        stored_alerts(&state, false).len(),
        stored_alerts(&state, true).len()
    );
    let mut agent = Agent::start(&state, &args);
    wait_for(
        "the restarted agent running",
        Duration::from_secs(30),
        || agent.status(),
    );
    // More alerts after the restart, then quiet, then everything delivered.
    std::thread::sleep(Duration::from_secs(3));
    drop(noisy);
    wait_for("nothing undelivered", Duration::from_secs(90), || {
        stored_alerts(&state, true).is_empty().then_some(())
    });
    assert_eq!(agent.stop(), Some(0), "{}", agent.log_text());

    let stored = stored_alerts(&state, false);
    assert!(stored.len() >= 20, "{} stored", stored.len());
    let runs: std::collections::HashSet<String> = alert_ids(&stored)
        .iter()
        .map(|id| id.rsplit_once('.').unwrap().0.to_string())
        .collect();
    assert!(runs.len() >= 2, "alerts of both runs expected: {runs:?}");
    assert_stream_matches_outbox(&nats.messages("CHIDS_K9"), &stored);
}

#[test]
#[ignore = "needs root, podman, nats-server"]
fn no_jetstream_publishes_plainly_to_core_subscribers() {
    require_prerequisites();
    let p = prefix();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let models = tmp.path().join("models");
    let img = Image::busybox(&format!("localhost/{p}-plain-nats:1"), &[]);
    preload_model(&models, &img.name, &train_sleepy_model(tmp.path()));
    // A broker with no stream at all: only a core-NATS subscriber listens.
    let nats = Nats::start(&tmp.path().join("nats"), free_port());
    let subject = format!("{p}.plain");
    let sub = CoreSubscriber::start(&nats.url(), &subject);
    let mut agent = Agent::start(
        &state,
        &[
            "--models",
            models.to_str().unwrap(),
            "--nats",
            &nats.url(),
            "--subject",
            &subject,
            "--no-jetstream",
            "--alert-rate",
            "0",
            // Other tests' containers are not this test's business.
            "--include",
            &format!("image={}", img.name),
        ],
    );
    wait_for("agent status", Duration::from_secs(30), || agent.status());
    let log = agent.log_text();
    assert!(
        log.contains("--no-jetstream") && log.contains("plainly, at most once"),
        "the agent did not say delivery is at most once:\n{log}"
    );
    let noisy = Container::run(&format!("{p}-plain-nats"), &img.name, NOISY);
    wait_for(
        "alerts at the core subscriber",
        Duration::from_secs(60),
        || (sub.messages().len() >= 5).then_some(()),
    );
    // Quiet, then everything stored is marked delivered.
    drop(noisy);
    wait_for("nothing undelivered", Duration::from_secs(60), || {
        stored_alerts(&state, true).is_empty().then_some(())
    });
    let stored = stored_alerts(&state, false);
    // The sink counts them delivered (the status file is a second behind).
    wait_for("the sink's count", Duration::from_secs(30), || {
        let delivered = nats_sink(&agent)?["delivered"].as_u64()?;
        (delivered >= stored.len() as u64).then_some(())
    });
    assert_eq!(agent.stop(), Some(0), "{}", agent.log_text());
    let stored = stored_alerts(&state, false);
    // The last ones may still be on their way to the subscriber.
    wait_for(
        "the subscriber to have every stored alert",
        Duration::from_secs(10),
        || (sub.messages().len() >= stored.len()).then_some(()),
    );
    let got = sub.messages();
    for m in &got {
        assert_eq!(m["image"], img.name.as_str(), "{m}");
    }
    assert_stream_matches_outbox(&got, &stored);
    let log = agent.log_text();
    assert!(!log.contains("no JetStream stream covers"), "{log}");
}

#[test]
#[ignore = "needs root, podman, nats-server"]
fn a_storm_is_folded_and_another_workloads_alert_arrives_within_5s() {
    require_prerequisites();
    let p = prefix();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let models = tmp.path().join("models");
    let loud = Image::busybox(&format!("localhost/{p}-loud:1"), &[]);
    let calm = Image::busybox(&format!("localhost/{p}-calm:1"), &[]);
    let model = train_sleepy_model(tmp.path());
    preload_model(&models, &loud.name, &model);
    preload_model(&models, &calm.name, &model);
    let nats = Nats::start(&tmp.path().join("nats"), free_port());
    let subject = format!("{p}.alerts");
    nats.create_stream("CHIDS_STORM", &subject);
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let args = [
        "--models",
        models.to_str().unwrap(),
        "--nats",
        &nats.url(),
        "--subject",
        &subject,
        "--metrics",
        &metrics_addr,
        "--alert-rate",
        "5/15s",
    ];
    let agent = Agent::start(&state, &args);
    wait_for("agent status", Duration::from_secs(30), || agent.status());
    // A sleeping container makes no system call: no window, no alert.
    let quiet = Container::run(&format!("{p}-calm"), &calm.name, "sleep 3600");
    let storm: Vec<Container> = (0..4)
        .map(|i| Container::run(&format!("{p}-loud-{i}"), &loud.name, NOISY))
        .collect();
    let suppressed = format!(
        "chids_alerts_suppressed_total{{workload=\"{}\"}}",
        loud.name
    );
    wait_for("the storm past its budget", Duration::from_secs(60), || {
        (metric(&scrape(&metrics_addr)?, &suppressed)? >= 10.0).then_some(())
    });

    let attacked = Instant::now();
    let out = quiet.exec("cat /etc/shadow > /dev/null; ls / > /dev/null");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The anomaly, not the exec session's record (which comes first).
    let arrived = wait_for(
        "the calm workload's anomaly alert on NATS",
        Duration::from_secs(60),
        || {
            nats.messages("CHIDS_STORM")
                .iter()
                .any(|a| a["container_name"] == quiet.name.as_str() && a["kind"] == "anomaly")
                .then(|| attacked.elapsed())
        },
    );
    assert!(
        arrived <= Duration::from_secs(5),
        "the calm workload's alert took {arrived:?} behind the storm"
    );
    // Found already running (it was asleep when the agent watched it), the
    // container's exec is still an exec session.
    assert!(
        nats.messages("CHIDS_STORM")
            .iter()
            .any(|a| a["container_name"] == quiet.name.as_str() && a["kind"] == "exec"),
        "no exec record for the calm container"
    );
    // The storm's alerts of a period past the budget are one summary.
    let summary = wait_for("a summary of the storm", Duration::from_secs(60), || {
        nats.messages("CHIDS_STORM")
            .into_iter()
            .find(|a| a["kind"] == "suppressed" && a["workload"] == loud.name.as_str())
    });
    assert!(summary["count"].as_u64().unwrap() >= 1, "{summary}");
    assert!(summary["first_alert_id"].is_string() && summary["last_alert_id"].is_string());
    drop(storm);
    // The outbox holds at most the budget per period for the storm.
    let stored = stored_alerts(&state, false);
    let loud_alerts = stored
        .iter()
        .filter(|a| a["kind"] == "anomaly" && a["workload"] == loud.name.as_str())
        .count();
    let periods = agent_uptime_periods(&agent, Duration::from_secs(15));
    assert!(
        loud_alerts as u64 <= 5 * periods,
        "{loud_alerts} alerts of the storm stored in {periods} periods of 15s"
    );
    drop(quiet);
}

/// How many budget periods the agent has run, rounded up.
fn agent_uptime_periods(agent: &Agent, period: Duration) -> u64 {
    let since = std::fs::metadata(&agent.log)
        .and_then(|m| m.created())
        .map(|t| t.elapsed().unwrap_or_default())
        .unwrap_or(Duration::from_secs(3600));
    since.as_secs() / period.as_secs() + 2
}

#[test]
#[ignore = "needs root, podman, nats-server"]
fn a_full_3mb_state_folder_counts_losses_and_keeps_delivering() {
    require_prerequisites();
    let p = prefix();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let fs = Tmpfs::mount(&state, "3m");
    let models = tmp.path().join("models");
    let img = Image::busybox(&format!("localhost/{p}-full:1"), &[]);
    preload_model(&models, &img.name, &train_sleepy_model(tmp.path()));
    let nats = Nats::start(&tmp.path().join("nats"), free_port());
    let subject = format!("{p}.alerts");
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let args = [
        "--models",
        models.to_str().unwrap(),
        "--nats",
        &nats.url(),
        "--subject",
        &subject,
        "--metrics",
        &metrics_addr,
        "--alert-rate",
        "0",
    ];
    let agent = Agent::start(&state, &args);
    wait_for("agent status", Duration::from_secs(30), || agent.status());
    let noisy: Vec<Container> = (0..3)
        .map(|i| Container::run(&format!("{p}-full-{i}"), &img.name, NOISY))
        .collect();
    wait_for("some alerts stored", Duration::from_secs(60), || {
        (nats_sink(&agent)?["pending"].as_u64()? >= 5).then_some(())
    });
    // Then the folder is filled (the agent's log lives in it too: a
    // little room is left).
    let filler = state.join("filler");
    let room = 64 << 10;
    std::fs::write(
        &filler,
        vec![0u8; (fs.free().saturating_sub(room)) as usize],
    )
    .unwrap();
    let lost = "chids_alerts_lost_total{reason=\"disk_full\"}";
    wait_for(
        "alerts lost to the full disk, counted",
        Duration::from_secs(120),
        || (metric(&scrape(&metrics_addr)?, lost)? >= 1.0).then_some(()),
    );
    // Every stored record is whole (stored_alerts parses each line).
    let stored = stored_alerts(&state, false);
    assert!(!stored.is_empty());
    // The stream comes while the disk is still full: what is stored goes out.
    nats.create_stream("CHIDS_FULL", &subject);
    wait_for("the stored alerts on NATS", Duration::from_secs(60), || {
        let on_nats = alert_ids(&nats.messages("CHIDS_FULL"));
        alert_ids(&stored)
            .iter()
            .all(|id| on_nats.contains(id))
            .then_some(())
    });
    drop(noisy);
    std::fs::remove_file(&filler).unwrap();
    wait_for("nothing undelivered", Duration::from_secs(60), || {
        stored_alerts(&state, true).is_empty().then_some(())
    });
    let mut agent = agent;
    assert_eq!(agent.stop(), Some(0), "{}", agent.log_text());
    assert_stream_matches_outbox(&nats.messages("CHIDS_FULL"), &stored_alerts(&state, false));
    drop(fs);
}

/// Starts the agent expecting it to refuse: its exit code and log.
fn refused_start(state: &Path) -> (Option<i32>, String) {
    let alerts = state.with_extension("alerts.jsonl");
    let mut agent = Agent::start(state, &["--alerts", alerts.to_str().unwrap()]);
    let code = agent
        .wait_exit(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("the agent kept running:\n{}", agent.log_text()));
    (code, agent.log_text())
}

#[test]
#[ignore = "needs root, podman"]
fn planted_links_are_refused_and_everything_written_is_private() {
    require_prerequisites();
    let p = prefix();
    let tmp = tempfile::tempdir().unwrap();
    let victim = tmp.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    // A link at the outbox or its WAL / shared-memory files: no start.
    for name in ["outbox.db", "outbox.db-wal", "outbox.db-shm"] {
        let state = tmp.path().join(format!("state-{name}"));
        std::fs::create_dir_all(&state).unwrap();
        std::os::unix::fs::symlink(&victim, state.join(name)).unwrap();
        let (code, log) = refused_start(&state);
        assert_ne!(code, Some(0), "started with a link at {name}:\n{log}");
        assert!(log.contains("symbolic link"), "{name}:\n{log}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    }

    let state = tmp.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    // A link at the status file: replaced, never written through.
    std::os::unix::fs::symlink(&victim, state.join("status.json")).unwrap();
    let linked = Image::busybox(&format!("localhost/{p}-linked:1"), &[]);
    let plain = Image::busybox(&format!("localhost/{p}-plain:1"), &[]);
    let victim_dir = tmp.path().join("victim-dir");
    std::fs::create_dir(&victim_dir).unwrap();
    let alerts = tmp.path().join("alerts.jsonl");
    let mut agent = Agent::start(
        &state,
        &["--learn-for", "1h", "--alerts", alerts.to_str().unwrap()],
    );
    wait_for("agent status", Duration::from_secs(30), || agent.status());
    // A link where a workload's learning folder will be made.
    let learn = state.join("learn");
    let linked_dir = learn.join(chids_agent::workloads::folder_name(&linked.name));
    std::os::unix::fs::symlink(&victim_dir, &linked_dir).unwrap();
    let c1 = Container::run(&format!("{p}-linked"), &linked.name, NOISY);
    let c2 = Container::run(&format!("{p}-plain"), &plain.name, NOISY);
    let plain_dir = learn.join(chids_agent::workloads::folder_name(&plain.name));
    let sc = wait_for(
        "the plain workload's learning file",
        Duration::from_secs(30),
        || {
            std::fs::read_dir(&plain_dir)
                .ok()?
                .flatten()
                .map(|e| e.path())
                .find(|p| {
                    p.extension().is_some_and(|x| x == "sc")
                        && p.metadata().is_ok_and(|m| m.len() > 0)
                })
        },
    );
    wait_for(
        "the linked workload refused",
        Duration::from_secs(30),
        || agent.log_text().contains("learning file:").then_some(()),
    );
    // Still running, still writing its status.
    let before = agent.status().unwrap()["updated_ns"].as_u64().unwrap();
    wait_for("a fresh status", Duration::from_secs(30), || {
        (agent.status()?["updated_ns"].as_u64()? > before).then_some(())
    });
    assert_eq!(std::fs::read_dir(&victim_dir).unwrap().count(), 0);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    let status = state.join("status.json");
    assert!(std::fs::symlink_metadata(&status).unwrap().is_file());
    for (path, want) in [
        (state.as_path(), 0o700),
        (learn.as_path(), 0o700),
        (plain_dir.as_path(), 0o700),
        (state.join("models").as_path(), 0o700),
        (sc.as_path(), 0o600),
        (status.as_path(), 0o600),
        (state.join("outbox.db").as_path(), 0o600),
        (state.join("outbox.db-wal").as_path(), 0o600),
        (state.join("outbox.db-shm").as_path(), 0o600),
    ] {
        assert_eq!(mode(path), want, "{}", path.display());
    }
    assert_eq!(agent.stop(), Some(0), "{}", agent.log_text());
    drop((c1, c2));
}
