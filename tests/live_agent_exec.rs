//! The runtime is not the workload: `podman exec` into a watched container
//! is reported as an exec record (`"kind":"exec"`, container, program,
//! uid), at most ten a minute per container; the runtime's own tasks
//! (runc's init stages) are counted, not fed to the workload.
//!
//! Needs root, kernel BTF, podman + runc and busybox-static
//! (scripts/install-test-deps.sh); run with `--include-ignored`.
#![cfg(feature = "live")]

mod agent_support;

use std::time::Duration;

use agent_support::*;
use serde_json::Value;

const LOOP: &str = "while true; do cat /etc/passwd > /dev/null; sleep 0.2; done";

fn records(path: &std::path::Path) -> Vec<Value> {
    json_lines(path)
}

#[test]
#[ignore = "needs root, podman"]
fn exec_sessions_are_records_of_their_own_and_rate_limited() {
    if let Some(why) = skip_reason() {
        panic!("missing prerequisite: {why}");
    }
    let p = prefix();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let alerts = tmp.path().join("alerts.jsonl");
    let img = Image::busybox(&format!("localhost/{p}-exec:1"), &[]);
    let mut agent = Agent::start(
        &state,
        &["--learn-for", "1h", "--alerts", alerts.to_str().unwrap()],
    );
    let c = Container::run(&format!("{p}-exec"), &img.name, LOOP);
    wait_for(
        "the container's own events",
        Duration::from_secs(30),
        || {
            let st = agent.status()?;
            (container(&st, &c.name)?["events"].as_u64()? > 0).then_some(())
        },
    );

    // More exec sessions than the limit lets through in a minute.
    for _ in 0..12 {
        podman_ok(&["exec", &c.name, "true"]);
    }
    let ours = || -> Vec<Value> {
        records(&alerts)
            .into_iter()
            .filter(|r| r["kind"] == "exec" && r["container_name"] == c.name.as_str())
            .collect()
    };
    let execs = wait_for("ten exec records", Duration::from_secs(30), || {
        let v = ours();
        (v.len() >= 10).then_some(v)
    });
    for r in &execs {
        assert!(r["command"].as_str().unwrap().ends_with("true"), "{r:#}");
        assert_eq!(r["image"], img.name.as_str());
        assert_eq!(r["container_id"], c.id.as_str());
        assert_eq!(r["uid"], 0);
    }
    // The runtime's own work was counted, apart from the container's.
    let st = agent.status().unwrap();
    let entry = container(&st, &c.name).unwrap();
    assert!(entry["runtime_events"].as_u64().unwrap() > 0, "{entry:#}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(agent.stop(), Some(0), "{}", agent.log_text());
    // Twelve sessions well inside a minute: ten reported, no more.
    assert_eq!(ours().len(), 10, "{:#?}", ours());
    // No anomaly alert can come from a learning workload; none is here.
    assert!(records(&alerts).iter().all(|r| r["kind"] != "anomaly"));
}

/// A container already running when the agent starts (an agent restart, a
/// container found late): the agent never sees its start, yet an exec into
/// it is an exec session, and what the exec does alarms in the container's
/// first window with events (that window is not the container's start-up,
/// which alone is exempt from alarming).
#[test]
#[ignore = "needs root, podman"]
fn a_container_found_running_reports_its_exec_and_alarms_on_its_first_activity() {
    if let Some(why) = skip_reason() {
        panic!("missing prerequisite: {why}");
    }
    let p = prefix();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let models = tmp.path().join("models");
    let alerts = tmp.path().join("alerts.jsonl");
    let img = Image::busybox(&format!("localhost/{p}-found:1"), &[]);
    let model = agent_support::outbox::train_sleepy_model(tmp.path());
    agent_support::outbox::preload_model(&models, &img.name, &model);
    // Asleep before the agent exists: no system call the agent could see.
    let c = Container::run(&format!("{p}-found"), &img.name, "sleep 3600");
    let agent = Agent::start(
        &state,
        &[
            "--models",
            models.to_str().unwrap(),
            "--alerts",
            alerts.to_str().unwrap(),
        ],
    );
    wait_for("the container watched", Duration::from_secs(30), || {
        container(&agent.status()?, &c.name).map(|_| ())
    });
    // A few quiet windows pass before anything happens.
    std::thread::sleep(Duration::from_secs(3));
    podman_ok(&["exec", &c.name, "sh", "-c", "cat /etc/shadow > /dev/null"]);
    let ours = |kind: &str| -> Vec<Value> {
        records(&alerts)
            .into_iter()
            .filter(|r| r["kind"] == kind && r["container_name"] == c.name.as_str())
            .collect()
    };
    let anomaly = wait_for("the exec's anomaly alert", Duration::from_secs(30), || {
        ours("anomaly").into_iter().next()
    });
    assert!(anomaly["score"].as_f64().unwrap() >= 1.0, "{anomaly:#}");
    let execs = ours("exec");
    assert_eq!(execs.len(), 1, "one exec record expected: {execs:#?}");
    assert!(execs[0]["command"].as_str().unwrap().ends_with("sh"));
    let st = agent.status().unwrap();
    assert_eq!(container(&st, &c.name).unwrap()["late_events"], 0, "{st:#}");
}
