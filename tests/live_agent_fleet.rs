//! The fleet end to end: two agents as two nodes on one host, each
//! watching its own cgroup subtree (podman `--cgroup-parent` puts the
//! containers there), and one nats-server with JetStream. Node A learns an
//! image and publishes its model; node B, which never learns it, detects a
//! container of that image from its start with node A's version, and an
//! attack in it raises an alert from node B. A false alarm raised on node
//! A, accepted with `chids accept --nats URL ALERT_ID`, becomes version 2
//! on both nodes, and the same activity no longer alarms on node B while
//! the attack still does. Restarted, node B has version 2 from its own
//! models folder.
//!
//! Needs root, kernel BTF, cgroup v2, podman + runc, nats-server and
//! busybox-static (scripts/install-test-deps.sh); run with
//! `--include-ignored`.
#![cfg(feature = "live")]

mod agent_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use agent_support::*;
use serde_json::Value;

/// What the image does when nobody looks (the normal activity): a short
/// period, so that a window holds many rounds and its count of events
/// varies little from one window to the next.
const LOOP: &str =
    "while true; do cat /etc/passwd > /dev/null; ls /bin > /dev/null; sleep 0.1; done";
/// Harmless, but never seen while learning (a file the loop never reads,
/// by a program it runs): a false alarm. One small program, so that its
/// window stands out by the name, not by its number of events.
const ODD_BUT_FINE: &[&str] = &["cat", "/etc/hostname"];
/// What an intruder does.
const ATTACK: &[&str] = &[
    "sh",
    "-c",
    "cat /etc/shadow > /dev/null; cp /bin/busybox /tmp/ls; /tmp/ls / > /dev/null",
];

fn anomalies(file: &Path, container: &str) -> Vec<Value> {
    anomalies_of(file, container)
}

/// The workload's entry in a status.
fn workload<'a>(st: &'a Value, key: &str) -> Option<&'a Value> {
    st["workloads"]
        .as_array()?
        .iter()
        .find(|w| w["workload"] == key)
}

/// The fleet version the workload detects with, and who published it.
fn model_version(st: &Value, key: &str) -> Option<(u64, String)> {
    let m = &workload(st, key)?["model"];
    Some((m["version"].as_u64()?, m["node"].as_str()?.to_string()))
}

fn windows(agent: &Agent, name: &str) -> Option<u64> {
    container(&agent.status()?, name)?["windows"].as_u64()
}

/// Runs `command` in the container, then waits for `n` more of its
/// windows to be scored (the activity's window among them).
fn exec_and_score(agent: &Agent, c: &Container, command: &[&str], n: u64) {
    let w0 = windows(agent, &c.name).expect("the container in the status");
    podman_ok(&[&["exec", c.name.as_str()], command].concat());
    wait_for(
        &format!("{n} more windows of {} scored", c.name),
        Duration::from_secs(60),
        || (windows(agent, &c.name)? >= w0 + n).then_some(()),
    );
}

/// One nats-server, two nodes' cgroup subtrees, one image.
struct Fleet {
    tmp: tempfile::TempDir,
    nats: Nats,
    subject: String,
    img: Image,
    p: String,
}

impl Fleet {
    /// An agent as node `node`, watching only its own cgroup subtree.
    fn start(&self, node: &str, tree: &CgroupTree) -> (Agent, PathBuf) {
        let dir = self.tmp.path().join(node);
        let alerts = dir.join("alerts.jsonl");
        let agent = Agent::start(
            &dir.join("state"),
            &[
                "--cgroup-root",
                tree.root.to_str().unwrap(),
                "--node",
                node,
                "--nats",
                &self.nats.url(),
                "--subject",
                &self.subject,
                "--alerts",
                alerts.to_str().unwrap(),
                "--learn-for",
                "60s",
                "--learn-max",
                "60s",
                "--epochs",
                "40",
            ],
        );
        (agent, alerts)
    }
}

#[test]
#[ignore = "needs root, podman, nats-server"]
fn a_model_learnt_on_one_node_detects_on_another_and_accepting_reaches_both() {
    if let Some(why) = skip_reason() {
        panic!("missing prerequisite (the test is ignored unless asked for; asked for, it fails): {why}");
    }
    let p = prefix();
    let tmp = tempfile::tempdir().unwrap();
    let img = Image::busybox(&format!("localhost/{p}-fleet:1"), &[]);
    let port = free_port();
    let nats = Nats::start(&tmp.path().join("nats"), port);
    let subject = format!("{p}.alerts");
    nats.create_stream("CHIDS_ALERTS", &subject);
    let fleet = Fleet {
        tmp,
        nats,
        subject,
        img,
        p,
    };
    // Declared before the containers: removed after them.
    let tree_a = CgroupTree::new(&format!("{}-node-a", fleet.p));
    let tree_b = CgroupTree::new(&format!("{}-node-b", fleet.p));
    let (agent_a, alerts_a) = fleet.start("node-a", &tree_a);
    let (agent_b, alerts_b) = fleet.start("node-b", &tree_b);
    for agent in [&agent_a, &agent_b] {
        wait_for("agent status", Duration::from_secs(30), || agent.status());
    }
    let a1 = node_a_learns_and_node_b_adopts(&fleet, &tree_a, &agent_a, &agent_b);
    let b1 = node_b_detects_from_the_start(&fleet, &tree_b, &agent_b);
    an_attack_on_node_b_alerts(&fleet, &agent_b, &alerts_b, &b1);
    accepting_node_as_false_alarm_reaches_both(&fleet, (&agent_a, &alerts_a, &a1), &agent_b);
    node_b_is_quiet_on_the_accepted_activity_and_still_alerts(&agent_b, &alerts_b, &b1);
    a_restarted_node_keeps_its_version(&fleet, &tree_b, agent_b, &b1);
}

/// Node A learns the image and publishes version 1; node B, which runs
/// no container of it, has it too (the broker's watch).
fn node_a_learns_and_node_b_adopts(
    fleet: &Fleet,
    tree_a: &CgroupTree,
    agent_a: &Agent,
    agent_b: &Agent,
) -> Container {
    let img = &fleet.img;
    let a1 = tree_a.run(&format!("{}-a1", fleet.p), &img.name, LOOP);
    wait_for(
        "node A to learn, train and publish",
        Duration::from_secs(300),
        || {
            let st = agent_a.status()?;
            (model_version(&st, &img.name)? == (1, "node-a".into())).then_some(())
        },
    );
    wait_for("node B to adopt version 1", Duration::from_secs(30), || {
        let st = agent_b.status()?;
        (model_version(&st, &img.name)? == (1, "node-a".into())
            && workload_state(&st, &img.name)? == "detecting")
            .then_some(())
    });
    assert!(
        agent_b.log_text().contains("fleet version 1 from node-a"),
        "{}",
        agent_b.log_text()
    );
    a1
}

/// A container of the image on node B detects from its start.
fn node_b_detects_from_the_start(fleet: &Fleet, tree_b: &CgroupTree, agent_b: &Agent) -> Container {
    let img = &fleet.img;
    let t0 = Instant::now();
    let b1 = tree_b.run(&format!("{}-b1", fleet.p), &img.name, LOOP);
    wait_for(
        "node B's container, detecting with version 1",
        Duration::from_secs(5),
        || {
            let st = agent_b.status()?;
            container(&st, &b1.name)?;
            let w = workload(&st, &img.name)?;
            (w["state"] == "detecting" && w["learned_seconds"] == 0.0).then_some(())
        },
    );
    let seen = t0.elapsed();
    wait_for(
        "node B's first scored window",
        Duration::from_secs(30),
        || (windows(agent_b, &b1.name)? >= 1).then_some(()),
    );
    eprintln!(
        "node B: container listed detecting {:.1}s, first window scored {:.1}s after `podman run` began",
        seen.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
    assert!(
        !fleet
            .tmp
            .path()
            .join("node-b/state/learn")
            .read_dir()
            .unwrap()
            .any(|_| true),
        "node B wrote learning data"
    );
    b1
}

/// An attack on node B: an alert from node B, on NATS too.
fn an_attack_on_node_b_alerts(fleet: &Fleet, agent_b: &Agent, alerts_b: &Path, b1: &Container) {
    exec_and_score(agent_b, b1, ATTACK, 3);
    wait_for(
        "node B's alert on the attack",
        Duration::from_secs(30),
        || (!anomalies(alerts_b, &b1.name).is_empty()).then_some(()),
    );
    let node_b_alerts = wait_for("node B's alerts on NATS", Duration::from_secs(30), || {
        let on_nats = fleet
            .nats
            .messages("CHIDS_ALERTS")
            .into_iter()
            .filter(|a| a["container_name"] == b1.name.as_str() && a["kind"] == "anomaly")
            .count();
        (on_nats >= 1).then_some(on_nats)
    });
    assert!(node_b_alerts >= 1);
}

/// A false alarm on node A, accepted by its id: version 2 everywhere, and
/// `chids agent status` says which version and where it comes from.
fn accepting_node_as_false_alarm_reaches_both(
    fleet: &Fleet,
    (agent_a, alerts_a, a1): (&Agent, &Path, &Container),
    agent_b: &Agent,
) {
    wait_for("windows scored on node A", Duration::from_secs(30), || {
        (windows(agent_a, &a1.name)? >= 3).then_some(())
    });
    exec_and_score(agent_a, a1, ODD_BUT_FINE, 3);
    wait_for("node A's false alarm", Duration::from_secs(30), || {
        (!anomalies(alerts_a, &a1.name).is_empty()).then_some(())
    });
    let false_alarm = wait_for(
        "node A's false alarm on NATS",
        Duration::from_secs(30),
        || {
            fleet
                .nats
                .messages("CHIDS_ALERTS")
                .into_iter()
                .find(|a| a["container_name"] == a1.name.as_str() && a["kind"] == "anomaly")
        },
    );
    eprintln!("node A's false alarm: {false_alarm}");
    let id = false_alarm["alert_id"].as_str().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_chids"))
        .args(["accept", "--nats", &fleet.nats.url(), "--by", "tester", id])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "chids accept: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("chids accept: {}", String::from_utf8_lossy(&out.stdout));
    for (node, agent) in [("A", agent_a), ("B", agent_b)] {
        wait_for(
            &format!("node {node} to adopt version 2"),
            Duration::from_secs(30),
            || {
                let st = agent.status()?;
                let m = &workload(&st, &fleet.img.name)?["model"];
                (m["version"] == 2 && m["reason"] == "accepted by tester").then_some(())
            },
        );
    }
    let shown = Command::new(env!("CARGO_BIN_EXE_chids"))
        .args(["agent", "status", "--state-dir"])
        .arg(&agent_b.state)
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("model version 2 from accept:tester (accepted by tester, "),
        "{shown}"
    );
}

/// The same activity on node B: nothing it names is unseen any more, so
/// no alarm on it; the attack still alarms.
fn node_b_is_quiet_on_the_accepted_activity_and_still_alerts(
    agent_b: &Agent,
    alerts_b: &Path,
    b1: &Container,
) {
    let before = anomalies(alerts_b, &b1.name).len();
    exec_and_score(agent_b, b1, ODD_BUT_FINE, 4);
    let after = anomalies(alerts_b, &b1.name);
    assert!(
        !after
            .iter()
            .any(|a| a.to_string().contains("/etc/hostname")),
        "node B still finds the accepted path unseen: {after:?}"
    );
    // An alarm with unseen names would be the accepted activity judged
    // new again. (Accepting folds the names in and lifts the activity
    // level to the busiest normal window's; the accepted window then
    // scores just under the threshold, so a busier window on a loaded
    // machine may still alarm on its level alone: that is reported, not
    // failed, see docs/fleet.md.)
    let new_names: Vec<&Value> = after[before..]
        .iter()
        .filter(|a| {
            a["unseen_syscalls"]
                .as_array()
                .is_some_and(|v| !v.is_empty())
                || a["unseen_args"].as_array().is_some_and(|v| !v.is_empty())
        })
        .collect();
    assert!(
        new_names.is_empty(),
        "the accepted activity still alarms on node B with unseen names: {new_names:?}"
    );
    if after.len() > before {
        eprintln!(
            "node B: {} alarm(s) on activity level alone after the accept",
            after.len() - before
        );
    }
    exec_and_score(agent_b, b1, ATTACK, 3);
    wait_for(
        "node B's alert on the attack with version 2",
        Duration::from_secs(30),
        || (anomalies(alerts_b, &b1.name).len() > after.len()).then_some(()),
    );
}

/// Node B restarted: version 2 and its origin come from its models
/// folder; the fleet's copy (the same digest) is not adopted again.
fn a_restarted_node_keeps_its_version(
    fleet: &Fleet,
    tree_b: &CgroupTree,
    mut agent_b: Agent,
    b1: &Container,
) {
    assert_eq!(agent_b.stop(), Some(0), "{}", agent_b.log_text());
    let (agent_b, _) = fleet.start("node-b", tree_b);
    wait_for(
        "the restarted node B detecting with version 2",
        Duration::from_secs(30),
        || {
            let st = agent_b.status()?;
            container(&st, &b1.name)?;
            (model_version(&st, &fleet.img.name)? == (2, "accept:tester".into())).then_some(())
        },
    );
    let w0 = windows(&agent_b, &b1.name).unwrap();
    wait_for("windows after the restart", Duration::from_secs(30), || {
        (windows(&agent_b, &b1.name)? >= w0 + 3).then_some(())
    });
    let log = agent_b.log_text();
    assert!(log.contains("model loaded"), "{log}");
    assert!(!log.contains("fleet version"), "adopted again:\n{log}");
}
