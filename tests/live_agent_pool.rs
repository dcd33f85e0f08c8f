//! Pooled learning and a broker restart, end to end: two agents as two
//! nodes on one host (each watching its own cgroup subtree; podman
//! `--cgroup-parent` puts the containers there) and one nats-server with
//! JetStream.
//!
//! 1. Node A and node B run containers of the same image doing different
//!    parts of its normal behaviour (chosen by an environment variable):
//!    one model is trained on the data of both (one version, its origin
//!    naming both nodes, its known paths holding both parts), both nodes
//!    detect with it; B's part run on A does not alarm on a name, an
//!    attack does.
//! 2. The nats-server restarts (same store, same port) while both agents
//!    run: an alert raised during the outage reaches the broker after it
//!    (the outbox), and a version published afterwards by a third party is
//!    adopted by both agents within seconds (their KV watch reconnected).
//!
//! Needs root, kernel BTF, cgroup v2, podman + runc, nats-server and
//! busybox-static (scripts/install-test-deps.sh); run with
//! `--include-ignored`.
#![cfg(feature = "live")]

mod agent_support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use agent_support::*;
use chids_agent::fleet::{FleetOptions, FleetStore};
use chids_detect::model::Bundle;
use serde_json::Value;

/// The image's normal behaviour: read the file of this container's part
/// (`PART=a` or `PART=b`), list a folder, often.
const LOOP: &str =
    "while true; do cat /srv/part-$PART.txt > /dev/null; ls /bin > /dev/null; sleep 0.1; done";
/// Node B's part, run on node A.
const PART_B: &[&str] = &["cat", "/srv/part-b.txt"];
/// What an intruder does.
const ATTACK: &[&str] = &[
    "sh",
    "-c",
    "cat /etc/shadow > /dev/null; cp /bin/busybox /tmp/ls; /tmp/ls / > /dev/null",
];

fn workload<'a>(st: &'a Value, key: &str) -> Option<&'a Value> {
    st["workloads"]
        .as_array()?
        .iter()
        .find(|w| w["workload"] == key)
}

fn windows(agent: &Agent, name: &str) -> Option<u64> {
    container(&agent.status()?, name)?["windows"].as_u64()
}

/// Runs `command` in the container, then waits for `n` more of its
/// windows to be scored.
fn exec_and_score(agent: &Agent, c: &Container, command: &[&str], n: u64) {
    let w0 = windows(agent, &c.name).expect("the container in the status");
    podman_ok(&[&["exec", c.name.as_str()], command].concat());
    wait_for(
        &format!("{n} more windows of {} scored", c.name),
        Duration::from_secs(60),
        || (windows(agent, &c.name)? >= w0 + n).then_some(()),
    );
}

/// The alerts of `container` that name any unseen syscall or argument.
fn with_unseen_names(alerts: &[Value]) -> Vec<&Value> {
    alerts
        .iter()
        .filter(|a| {
            ["unseen_syscalls", "unseen_args"]
                .iter()
                .any(|k| a[k].as_array().is_some_and(|v| !v.is_empty()))
        })
        .collect()
}

struct Node {
    name: &'static str,
    agent: Agent,
    alerts: PathBuf,
}

/// One nats-server, two nodes' cgroup subtrees, one image.
struct Pool {
    tmp: tempfile::TempDir,
    nats: Nats,
    subject: String,
    img: Image,
    p: String,
}

impl Pool {
    fn start(&self, node: &'static str, tree: &CgroupTree) -> Node {
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
                "45s",
                "--learn-max",
                "45s",
                "--epochs",
                "40",
            ],
        );
        Node {
            name: node,
            agent,
            alerts,
        }
    }

    /// The model a node stored for the image.
    fn stored_model(&self, node: &Node) -> Bundle {
        let dir = node
            .agent
            .state
            .join("models")
            .join(chids_agent::workloads::folder_name(&self.img.name));
        Bundle::load(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
    }
}

#[test]
#[ignore = "needs root, podman, nats-server"]
fn nodes_learn_one_model_together_and_the_fleet_survives_a_broker_restart() {
    if let Some(why) = skip_reason() {
        panic!("missing prerequisite (the test is ignored unless asked for; asked for, it fails): {why}");
    }
    let p = prefix();
    let tmp = tempfile::tempdir().unwrap();
    let part = tmp.path().join("part.txt");
    std::fs::write(&part, "a part of the normal behaviour\n").unwrap();
    let img = Image::busybox(
        &format!("localhost/{p}-pool:1"),
        &[(&part, "/srv/part-a.txt"), (&part, "/srv/part-b.txt")],
    );
    let port = free_port();
    let nats = Nats::start(&tmp.path().join("nats"), port);
    let subject = format!("{p}.alerts");
    nats.create_stream("CHIDS_ALERTS", &subject);
    let mut pool = Pool {
        tmp,
        nats,
        subject,
        img,
        p,
    };
    // Declared before the containers: removed after them.
    let tree_a = CgroupTree::new(&format!("{}-pool-a", pool.p));
    let tree_b = CgroupTree::new(&format!("{}-pool-b", pool.p));
    let a = pool.start("node-a", &tree_a);
    let b = pool.start("node-b", &tree_b);
    for n in [&a, &b] {
        wait_for("agent status", Duration::from_secs(30), || n.agent.status());
    }
    let a1 = tree_a.run_with(
        &format!("{}-pa1", pool.p),
        &pool.img.name,
        LOOP,
        &["-e", "PART=a"],
    );
    let b1 = tree_b.run_with(
        &format!("{}-pb1", pool.p),
        &pool.img.name,
        LOOP,
        &["-e", "PART=b"],
    );
    one_model_from_both_nodes(&pool, &a, &b);
    part_b_on_node_a_is_normal_and_an_attack_is_not(&a, &a1);
    a_broker_restart_loses_nothing(&mut pool, &[&a, &b], &b1);
}

/// One version, trained by one node on the data of both, detected with on
/// both; its known paths hold both parts.
fn one_model_from_both_nodes(pool: &Pool, a: &Node, b: &Node) {
    let img = &pool.img.name;
    let both = serde_json::json!(["node-a", "node-b"]);
    for n in [a, b] {
        wait_for(
            &format!("{} detecting with the pooled version 1", n.name),
            Duration::from_secs(400),
            || {
                let st = n.agent.status()?;
                let w = workload(&st, img)?;
                (w["state"] == "detecting"
                    && w["model"]["version"] == 1
                    && w["model"]["learnt_from"] == both)
                    .then_some(())
            },
        );
    }
    let trainers: Vec<&str> = [a, b]
        .iter()
        .filter(|n| {
            n.agent
                .log_text()
                .contains("training on the pooled learning data of node-a, node-b")
        })
        .map(|n| n.name)
        .collect();
    assert_eq!(
        trainers.len(),
        1,
        "one node trains the pool\nA:\n{}\nB:\n{}",
        a.agent.log_text(),
        b.agent.log_text()
    );
    eprintln!("the pool was trained by {}", trainers[0]);
    for n in [a, b] {
        let model = pool.stored_model(n);
        for path in ["/srv/part-a.txt", "/srv/part-b.txt"] {
            assert!(
                model.elements.seen_args.contains(path),
                "{}'s model lacks {path}: {:?}",
                n.name,
                model.elements.seen_args
            );
        }
    }
    let (version, _) = FleetStore::connect(&fleet_options(&pool.nats, "reader"))
        .unwrap()
        .fetch(img)
        .unwrap()
        .expect("the version on the broker");
    assert_eq!(version.version, 1, "{version:?}");
    assert_eq!(version.learnt_from, ["node-a", "node-b"]);
    let shown = std::process::Command::new(env!("CARGO_BIN_EXE_chids"))
        .args(["agent", "status", "--state-dir"])
        .arg(&a.agent.state)
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains("on the data of node-a, node-b"), "{shown}");
}

/// Node B's part run on node A names nothing unseen; an attack alarms.
fn part_b_on_node_a_is_normal_and_an_attack_is_not(a: &Node, a1: &Container) {
    wait_for("windows scored on node A", Duration::from_secs(60), || {
        (windows(&a.agent, &a1.name)? >= 3).then_some(())
    });
    let before = anomalies_of(&a.alerts, &a1.name).len();
    exec_and_score(&a.agent, a1, PART_B, 4);
    let after = anomalies_of(&a.alerts, &a1.name);
    let named = with_unseen_names(&after[before..]);
    assert!(
        named.is_empty(),
        "node B's part alarms on node A with unseen names: {named:?}"
    );
    assert!(
        !after[before..]
            .iter()
            .any(|al| al.to_string().contains("part-b")),
        "{after:?}"
    );
    if after.len() > before {
        eprintln!(
            "node A: {} alarm(s) on activity level alone while node B's part ran",
            after.len() - before
        );
    }
    exec_and_score(&a.agent, a1, ATTACK, 3);
    wait_for(
        "node A's alert on the attack",
        Duration::from_secs(30),
        || (anomalies_of(&a.alerts, &a1.name).len() > after.len()).then_some(()),
    );
}

fn fleet_options(nats: &Nats, node: &str) -> FleetOptions {
    FleetOptions {
        url: nats.url(),
        models_bucket: "chids-models".into(),
        bundles_bucket: "chids-bundles".into(),
        learning_bucket: None,
        node: node.into(),
    }
}

/// The nats-server stops and starts again on its store: an alert raised
/// meanwhile arrives after, and a version published after is adopted by
/// both nodes within seconds.
fn a_broker_restart_loses_nothing(pool: &mut Pool, nodes: &[&Node; 2], b1: &Container) {
    let b = nodes[1];
    let (dir, port) = (pool.nats.dir.clone(), pool.nats.port);
    pool.nats.kill();
    let before = anomalies_of(&b.alerts, &b1.name).len();
    exec_and_score(&b.agent, b1, ATTACK, 3);
    let during: Vec<String> = wait_for(
        "node B's alert during the outage",
        Duration::from_secs(30),
        || {
            let all = anomalies_of(&b.alerts, &b1.name);
            (all.len() > before).then(|| {
                all[before..]
                    .iter()
                    .filter_map(|a| a["alert_id"].as_str().map(str::to_string))
                    .collect()
            })
        },
    );
    pool.nats = Nats::start(&dir, port);
    let t0 = Instant::now();
    wait_for(
        "the outage's alerts on the broker",
        Duration::from_secs(60),
        || {
            let on_nats: Vec<Value> = pool.nats.messages("CHIDS_ALERTS");
            during
                .iter()
                .all(|id| on_nats.iter().any(|m| m["alert_id"] == id.as_str()))
                .then_some(())
        },
    );
    eprintln!(
        "{} alert(s) of the outage on the broker {:.1}s after it came back",
        during.len(),
        t0.elapsed().as_secs_f64()
    );
    a_version_put_after_the_restart_is_adopted(pool, nodes);
}

fn a_version_put_after_the_restart_is_adopted(pool: &Pool, nodes: &[&Node; 2]) {
    let img = &pool.img.name;
    let store = wait_for(
        "the broker to answer a third party",
        Duration::from_secs(30),
        || FleetStore::connect(&fleet_options(&pool.nats, "third-party")).ok(),
    );
    let (_, mut bundle) = store.fetch(img).unwrap().expect("version 1");
    bundle
        .elements
        .seen_args
        .insert("/srv/put-by-a-third-party".into());
    let t0 = Instant::now();
    let v2 = store.publish(img, &bundle, "put by the test").unwrap();
    assert_eq!(v2.version, 2);
    for n in nodes {
        wait_for(
            &format!("{} to adopt version 2 after the restart", n.name),
            Duration::from_secs(30),
            || {
                let st = n.agent.status()?;
                let m = &workload(&st, img)?["model"];
                (m["version"] == 2 && m["node"] == "third-party").then_some(())
            },
        );
        eprintln!(
            "{} adopted version 2 {:.1}s after it was put",
            n.name,
            t0.elapsed().as_secs_f64()
        );
    }
    // How each watch came back (for the record).
    for n in nodes {
        let log = n.agent.log_text();
        for line in log.lines().filter(|l| l.contains("fleet:")) {
            eprintln!("{}: {line}", n.name);
        }
    }
}
