//! `chids agent` with a real containerd and its CRI plugin: a pod started
//! the way the kubelet starts one (RunPodSandbox, CreateContainer,
//! StartContainer, with the kubelet's labels) is discovered under
//! `kubepods/besteffort/pod<uid>/<id>`, named by the CRI socket, learnt,
//! and an attack in it raises alerts naming namespace, pod and container.
//! Without the socket, the names come from containerd's state on disk
//! (the CRI annotations of the OCI spec), and the agent says so once.
//!
//! containerd runs from a folder of its own (root, state, socket), laid
//! out as a host's `/run/containerd` under that folder, so `--host-root`
//! points the agent at it and nothing of a host containerd is touched.
//!
//! Needs root, kernel BTF, containerd, runc, podman (to build the image)
//! and busybox-static (scripts/install-test-deps.sh); run with
//! `--include-ignored`.
#![cfg(feature = "live")]

mod agent_support;

use std::time::Duration;

use agent_support::cri::Containerd;
use agent_support::*;
use serde_json::Value;

const LOOP: &str =
    "while true; do cat /etc/passwd > /dev/null; ls /bin > /dev/null; sleep 0.2; done";
const ATTACK: &str = "cat /etc/shadow > /dev/null; cp /bin/busybox /tmp/ls; /tmp/ls / > /dev/null";

/// The anomaly alerts in `file` (exec-session records are left out).
fn alerts_in(file: &std::path::Path) -> Vec<Value> {
    json_lines(file)
        .into_iter()
        .filter(|a| a["kind"] == "anomaly")
        .collect()
}

#[test]
#[ignore = "needs root, containerd, podman"]
fn agent_names_cri_pods_and_alerts_with_their_kubernetes_identity() {
    if let Some(why) = skip_reason().or_else(cri::skip_reason) {
        panic!("missing prerequisite (the test is ignored unless asked for; asked for, it fails): {why}");
    }
    let p = prefix();
    let tmp = tempfile::tempdir().unwrap();
    let host = tmp.path().join("host");
    let img = Image::busybox_with(
        &format!("localhost/{p}-cri:1"),
        &[],
        &[r#"CMD ["/bin/sleep", "100000000"]"#],
    );
    // The image is the pods' pause image too (no registry to pull one from).
    let mut ctd = Containerd::start(&host, &img.name);
    ctd.import(&img.name);
    let socket = ctd.socket.clone();

    let alerts_file = tmp.path().join("alerts.jsonl");
    let mut agent = Agent::start(
        &tmp.path().join("state"),
        &[
            "--host-root",
            host.to_str().unwrap(),
            "--learn-for",
            "20s",
            "--theta",
            "1.5",
            "--alerts",
            alerts_file.to_str().unwrap(),
            "--epochs",
            "40",
        ],
    );
    wait_for("agent status", Duration::from_secs(30), || agent.status());
    assert!(
        agent
            .log_text()
            .contains(&format!("CRI runtime containerd on {}", socket.display())),
        "the agent did not find the CRI socket under --host-root:\n{}",
        agent.log_text()
    );

    let (ns, name) = ("chids-test", format!("{p}-web-0"));
    let id = ctd.run_pod(ns, &name, "app", &img.name, LOOP);
    let pod = Pod { ns, name, id };
    discovered_under_kubepods_with_its_pod_name(&agent, &pod, &img);
    learnt_then_an_attack_alerts_with_the_kubernetes_identity(
        &agent,
        &ctd,
        &pod,
        &img,
        &alerts_file,
    );
    assert_eq!(agent.stop(), Some(0), "{}", agent.log_text());
    named_from_disk_without_the_cri_socket(tmp.path(), &host, &pod);
    drop(ctd);
}

/// The pod started through CRI: its namespace, pod name and container id.
struct Pod {
    ns: &'static str,
    name: String,
    id: String,
}

impl Pod {
    /// The agent's name for the pod's container "app".
    fn container_name(&self) -> String {
        format!("{}/app", self.name)
    }
}

/// The status entry of the container with `id`, once it is there.
fn entry_of(agent: &Agent, what: &str, id: &str) -> Value {
    wait_for(what, Duration::from_secs(30), || {
        let st = agent.status()?;
        st["containers"]
            .as_array()?
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
    })
}

/// Named by the CRI socket, in the kubelet's cgroup layout.
fn discovered_under_kubepods_with_its_pod_name(agent: &Agent, pod: &Pod, img: &Image) {
    let entry = entry_of(agent, "the pod's container in the status", &pod.id);
    assert_eq!(entry["name"], pod.container_name().as_str(), "{entry:#}");
    assert_eq!(entry["runtime"], "containerd", "{entry:#}");
    assert_eq!(entry["image"], img.name.as_str(), "{entry:#}");
    let cgroup = entry["cgroup"].as_str().unwrap();
    assert!(
        cgroup.contains("/kubepods/besteffort/pod") && cgroup.ends_with(&pod.id),
        "{cgroup}"
    );
}

/// The image is learnt; an attack in the pod raises an alert naming
/// namespace, pod and container.
fn learnt_then_an_attack_alerts_with_the_kubernetes_identity(
    agent: &Agent,
    ctd: &Containerd,
    pod: &Pod,
    img: &Image,
    alerts_file: &std::path::Path,
) {
    let name = pod.container_name();
    wait_for("the image detecting", Duration::from_secs(240), || {
        let st = agent.status()?;
        (workload_state(&st, &img.name)? == "detecting").then_some(())
    });
    wait_for("windows scored", Duration::from_secs(30), || {
        let st = agent.status()?;
        (container(&st, &name)?["windows"].as_u64()? >= 3).then_some(())
    });
    assert_eq!(ctd.exec(&pod.id, ATTACK), 0, "the attack did not run");
    let alert = wait_for("an alert for the pod", Duration::from_secs(60), || {
        alerts_in(alerts_file)
            .into_iter()
            .find(|a| a["container_id"] == pod.id.as_str())
    });
    assert_eq!(alert["namespace"], pod.ns, "{alert:#}");
    assert_eq!(alert["pod"], pod.name.as_str(), "{alert:#}");
    assert_eq!(alert["k8s_container"], "app", "{alert:#}");
    assert_eq!(alert["container_name"], name.as_str(), "{alert:#}");
    assert_eq!(alert["image"], img.name.as_str(), "{alert:#}");
    assert_eq!(alert["runtime"], "containerd", "{alert:#}");
}

/// No CRI socket: the names come from containerd's state on disk
/// (the CRI annotations in the OCI spec), and the log says why, once.
fn named_from_disk_without_the_cri_socket(
    tmp: &std::path::Path,
    host: &std::path::Path,
    pod: &Pod,
) {
    let agent = Agent::start(
        &tmp.join("state-disk"),
        &[
            "--host-root",
            host.to_str().unwrap(),
            "--cri-socket",
            tmp.join("no.sock").to_str().unwrap(),
            "--learn-for",
            "1h",
            "--alerts",
            tmp.join("alerts-disk.jsonl").to_str().unwrap(),
        ],
    );
    let entry = entry_of(&agent, "the pod's container, named from disk", &pod.id);
    assert_eq!(entry["name"], pod.container_name().as_str(), "{entry:#}");
    let log = agent.log_text();
    assert_eq!(
        log.matches("named from their state on disk").count(),
        1,
        "{log}"
    );
    drop(agent);
}
