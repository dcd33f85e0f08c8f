//! `chids agent` end to end, with real containers and a real broker:
//! podman containers of two images are discovered, each image is learnt
//! and then watched; an attack in one container raises alerts on NATS that
//! name it and its image, and no other of ours; the broker going away
//! loses no alert (they wait in the outbox); a restarted agent reloads its
//! models. A second test starts and stops containers 100 times and checks
//! that nothing is left behind.
//!
//! Needs root, kernel BTF, podman + runc, nats-server and busybox-static
//! (scripts/install-test-deps.sh); run with `--include-ignored`.
#![cfg(feature = "live")]

mod agent_support;

use std::collections::HashSet;
use std::time::Duration;

use agent_support::*;
use serde_json::Value;

/// A steady, regular workload (what "normal" looks like here).
const LOOP_A: &str =
    "while true; do cat /etc/passwd > /dev/null; ls /bin > /dev/null; sleep 0.2; done";
const LOOP_B: &str = "while true; do echo tick > /tmp/t; cat /tmp/t > /dev/null; sleep 0.3; done";
/// What an intruder does: read the password hashes, run a binary the
/// image never ran.
const ATTACK: &str = "cat /etc/shadow > /dev/null; cp /bin/busybox /tmp/ls; /tmp/ls / > /dev/null";

fn scrape(addr: &str) -> String {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.write_all(b"GET /metrics HTTP/1.1\r\nHost: chids\r\n\r\n")
        .unwrap();
    let mut s = String::new();
    c.read_to_string(&mut s).unwrap();
    s
}

/// The anomaly alerts of a container (exec sessions are records of their
/// own kind, `"kind": "exec"`).
fn alerts_for<'a>(alerts: &'a [Value], name: &str) -> Vec<&'a Value> {
    alerts
        .iter()
        .filter(|a| a["container_name"] == name && a["kind"] == "anomaly")
        .collect()
}

#[test]
#[ignore = "needs root, podman, nats-server"]
fn agent_learns_each_image_and_alerts_on_nats() {
    if let Some(why) = skip_reason() {
        panic!("missing prerequisite (the test is ignored unless asked for; asked for, it fails): {why}");
    }
    let p = prefix();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let alerts_file = tmp.path().join("alerts.jsonl");
    let img_a = Image::busybox(&format!("localhost/{p}-a:1"), &[]);
    let img_b = Image::busybox(&format!("localhost/{p}-b:1"), &[]);

    let port = free_port();
    let mut nats = Nats::start(&tmp.path().join("nats"), port);
    let subject = format!("{p}.alerts");
    nats.create_stream("CHIDS_ALERTS", &subject);
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let agent_args = [
        "--metrics",
        &metrics_addr,
        "--learn-for",
        "20s",
        "--theta",
        "1.5",
        "--nats",
        &nats.url(),
        "--subject",
        &subject,
        "--alerts",
        alerts_file.to_str().unwrap(),
        "--epochs",
        "40",
    ];
    let mut agent = Agent::start(&state, &agent_args);
    wait_for("agent status", Duration::from_secs(30), || agent.status());

    let a1 = Container::run(&format!("{p}-a1"), &img_a.name, LOOP_A);
    let a2 = Container::run(&format!("{p}-a2"), &img_a.name, LOOP_A);
    let b1 = Container::run(&format!("{p}-b1"), &img_b.name, LOOP_B);
    discovered_with_podman_names_and_images(&agent, &[(&a1, &img_a), (&a2, &img_a), (&b1, &img_b)]);
    // Learnt, trained, detecting.
    wait_for("both images detecting", Duration::from_secs(240), || {
        both_detecting(&agent, &img_a, &img_b)
    });
    metrics_show_each_workload_detecting(&metrics_addr, &[&img_a, &img_b], &a1);
    let models = std::fs::read_dir(state.join("models")).unwrap().count();
    assert!(models >= 2, "{models} model folders");

    // Restart: the models come back from disk, nothing is learnt again.
    assert_eq!(agent.stop(), Some(0), "{}", agent.log_text());
    agent = Agent::start(&state, &agent_args);
    restarted_agent_detects_with_its_saved_models(&agent, (&img_a, &img_b), [&a1, &a2, &b1]);

    // The broker goes away; the attack happens meanwhile.
    nats.kill();
    let out = a1.exec(ATTACK);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for(
        "the alert waiting in the outbox",
        Duration::from_secs(30),
        || {
            let (pending, _) = nats_sink_counts(&agent.status()?)?;
            (pending >= 1).then_some(())
        },
    );
    // Back on the same store: the outbox drains.
    nats = Nats::start(&tmp.path().join("nats"), port);
    wait_for("the outbox delivered", Duration::from_secs(60), || {
        let (pending, delivered) = nats_sink_counts(&agent.status()?)?;
        (pending == 0 && delivered >= 1).then_some(())
    });
    // Some more normal activity under detection, then stop.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(agent.stop(), Some(0), "{}", agent.log_text());

    let on_nats = ours(&p, &nats.messages("CHIDS_ALERTS"));
    let in_file: Vec<Value> = std::fs::read_to_string(&alerts_file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let in_file = ours(&p, &in_file);
    only_the_attacked_container_alerted(&on_nats, (&a1, &img_a), [&a2, &b1]);
    every_alert_reached_nats_once(&on_nats, &in_file);
    drop((a1, a2, b1));
}

/// Discovered, with names and images from podman's state.
fn discovered_with_podman_names_and_images(agent: &Agent, expected: &[(&Container, &Image)]) {
    wait_for(
        "the three containers in the status",
        Duration::from_secs(15),
        || {
            let st = agent.status()?;
            for (c, img) in expected {
                let e = container(&st, &c.name)?;
                assert_eq!(e["image"], img.name.as_str());
                assert_eq!(e["runtime"], "podman");
                assert_eq!(e["id"], c.id.as_str());
            }
            Some(())
        },
    );
}

fn both_detecting(agent: &Agent, img_a: &Image, img_b: &Image) -> Option<()> {
    let st = agent.status()?;
    (workload_state(&st, &img_a.name)? == "detecting"
        && workload_state(&st, &img_b.name)? == "detecting")
        .then_some(())
}

/// The status's detecting state, as Prometheus gauges per workload and per
/// container, with the outbox, memory and late-event series.
fn metrics_show_each_workload_detecting(
    metrics_addr: &str,
    images: &[&Image],
    watched: &Container,
) {
    let metrics = scrape(metrics_addr);
    for img in images {
        let line = format!(
            "chids_workload_state{{workload=\"{}\",state=\"detecting\"}} 1",
            img.name
        );
        assert!(metrics.contains(&line), "{line} not in\n{metrics}");
    }
    assert!(
        metrics.contains(&format!("container=\"{}\"", watched.name)),
        "{metrics}"
    );
    assert!(
        metrics.contains("\nchids_outbox_pending_alerts "),
        "{metrics}"
    );
    assert!(metrics.contains("chids_agent_rss_bytes "), "{metrics}");
    // No event came too late for its window (they are stamped and windows
    // closed on one clock).
    assert!(
        metrics.contains("\nchids_late_events_total 0\n"),
        "{metrics}"
    );
}

/// A restarted agent detects at once with the models from disk (its log
/// says so) and scores windows.
fn restarted_agent_detects_with_its_saved_models(
    agent: &Agent,
    (img_a, img_b): (&Image, &Image),
    containers: [&Container; 3],
) {
    wait_for(
        "restarted agent detecting all three",
        Duration::from_secs(30),
        || {
            let st = agent.status()?;
            let ok = workload_state(&st, &img_a.name)? == "detecting"
                && workload_state(&st, &img_b.name)? == "detecting"
                && containers.iter().all(|c| container(&st, &c.name).is_some());
            ok.then_some(())
        },
    );
    assert!(
        agent.log_text().contains("model loaded"),
        "{}",
        agent.log_text()
    );
    // A few quiet seconds of detection: windows are scored.
    let quiet = containers[1];
    wait_for(
        "windows scored after the restart",
        Duration::from_secs(30),
        || {
            let st = agent.status()?;
            (container(&st, &quiet.name)?["windows"].as_u64()? >= 3).then_some(())
        },
    );
}

/// The NATS sink's (pending, delivered) alert counts in a status.
fn nats_sink_counts(status: &Value) -> Option<(u64, u64)> {
    let nats_sink = status["sinks"]
        .as_array()?
        .iter()
        .find(|s| s["kind"] == "nats")?;
    Some((
        nats_sink["pending"].as_u64()?,
        nats_sink["delivered"].as_u64()?,
    ))
}

/// The alerts about this test's containers (names starting with `prefix`).
fn ours(prefix: &str, alerts: &[Value]) -> Vec<Value> {
    alerts
        .iter()
        .filter(|a| {
            a["container_name"]
                .as_str()
                .is_some_and(|n| n.starts_with(prefix))
        })
        .cloned()
        .collect()
}

/// The attacked container alerted, naming itself, its image and what it
/// did that was unseen; the others did not.
fn only_the_attacked_container_alerted(
    on_nats: &[Value],
    (attacked, img): (&Container, &Image),
    others: [&Container; 2],
) {
    let hits = alerts_for(on_nats, &attacked.name);
    assert!(
        !hits.is_empty(),
        "no alert for {} on NATS: {on_nats:#?}",
        attacked.name
    );
    for a in &hits {
        assert_eq!(a["image"], img.name.as_str());
        assert_eq!(a["workload"], img.name.as_str());
        assert_eq!(a["runtime"], "podman");
        assert_eq!(a["container_id"], attacked.id.as_str());
    }
    let unseen: Vec<&str> = hits
        .iter()
        .flat_map(|a| a["unseen_args"].as_array().unwrap().iter())
        .filter_map(|u| u["arg"].as_str())
        .collect();
    assert!(
        unseen
            .iter()
            .any(|u| u.contains("shadow") || u.contains("/tmp/ls")),
        "alerts do not name what was unseen: {unseen:?}"
    );
    for c in others {
        assert!(
            alerts_for(on_nats, &c.name).is_empty(),
            "false alerts for {}: {on_nats:#?}",
            c.name
        );
    }
}

/// Every alert the agent raised (the file sink) reached NATS, once.
fn every_alert_reached_nats_once(on_nats: &[Value], in_file: &[Value]) {
    let ids = |v: &[Value]| -> Vec<String> {
        v.iter()
            .map(|a| a["alert_id"].as_str().unwrap().to_string())
            .collect()
    };
    let (nats_ids, file_ids) = (ids(on_nats), ids(in_file));
    assert_eq!(
        nats_ids.iter().collect::<HashSet<_>>(),
        file_ids.iter().collect::<HashSet<_>>(),
        "NATS and the alert file differ"
    );
    assert_eq!(nats_ids.len(), file_ids.len(), "duplicates on NATS");
}

#[test]
#[ignore = "needs root, podman, nats-server"]
fn agent_releases_what_stopped_containers_held() {
    if let Some(why) = skip_reason() {
        panic!("missing prerequisite (the test is ignored unless asked for; asked for, it fails): {why}");
    }
    let p = prefix();
    let tmp = tempfile::tempdir().unwrap();
    let img = Image::busybox(&format!("localhost/{p}-churn:1"), &[]);
    let alerts = tmp.path().join("alerts.jsonl");
    let agent = Agent::start(
        &tmp.path().join("state"),
        &["--learn-for", "1h", "--alerts", alerts.to_str().unwrap()],
    );
    wait_for("agent status", Duration::from_secs(30), || agent.status());
    let name = format!("{p}-churn");
    let c = Container::run(&name, &img.name, "sleep 3600");
    let consistent = |st: &Value| {
        st["kernel_watched"].as_u64() == Some(st["containers"].as_array().unwrap().len() as u64)
    };
    let mut rss_after_warmup = 0;
    let mut seen_ids = HashSet::new();
    for cycle in 0..100 {
        // Running: watched (within the status refresh period).
        let cg = wait_for("container watched", Duration::from_secs(20), || {
            let st = agent.status()?;
            let e = container(&st, &name)?;
            e["cgroup_id"].as_u64()
        });
        // A restart is a new cgroup, picked up again.
        assert!(
            seen_ids.insert(cg),
            "cycle {cycle}: cgroup id {cg} seen before"
        );
        podman_ok(&["stop", "-t", "0", &name]);
        wait_for("container released", Duration::from_secs(20), || {
            let st = agent.status()?;
            (container(&st, &name).is_none() && consistent(&st)).then_some(())
        });
        assert!(
            c.cgroups().is_empty(),
            "cgroup left after stop: {:?}",
            c.cgroups()
        );
        if cycle == 9 {
            rss_after_warmup = agent.rss();
        }
        if cycle < 99 {
            podman_ok(&["start", &name]);
        }
    }
    let rss = agent.rss();
    let st = agent.status().unwrap();
    assert!(consistent(&st), "kernel map and containers differ: {st:#}");
    assert!(
        rss < rss_after_warmup + (8 << 20),
        "agent RSS grew from {rss_after_warmup} to {rss} over 90 container lifetimes"
    );
}
