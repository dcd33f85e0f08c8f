//! The agent as it is deployed: in a container image, with only the
//! capabilities and mounts the DaemonSet gives it, watching a sibling
//! container. The image is the one `scripts/build-image.sh` builds (what
//! the README tells adopters to run): the test binary's `chids` and its
//! shared libraries, `FROM scratch`, no registry needed.
//!
//! Needs root, kernel BTF, podman + runc and busybox-static; run with
//! `--include-ignored`, and then a missing prerequisite fails it.
#![cfg(feature = "live")]

mod agent_support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use agent_support::*;
use serde_json::Value;

#[test]
#[ignore = "needs root, podman, nats-server"]
fn agent_in_a_container_watches_a_sibling() {
    if let Some(why) = skip_reason() {
        panic!("cannot run: {why}");
    }
    let p = prefix();
    let agent_image = image_from_script(&format!("localhost/{p}-agent:test"));
    let app_image = Image::busybox(&format!("localhost/{p}-app:1"), &[]);

    let state = tempfile::tempdir().unwrap();
    let agent_name = format!("{p}-agent");
    run_the_agent_as_the_daemonset_does(&agent_name, &agent_image, state.path());
    struct Remove(String);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = podman(&["rm", "-f", "-t", "5", &self.0]);
        }
    }
    let _agent = Remove(agent_name.clone());
    let logs = || {
        let out = podman(&["logs", &agent_name]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let status = || -> Option<Value> {
        let text = std::fs::read_to_string(state.path().join("status.json")).ok()?;
        serde_json::from_str(&text).ok()
    };
    let waited = std::panic::catch_unwind(|| {
        wait_for("the agent's status file", Duration::from_secs(60), status)
    });
    assert!(
        waited.is_ok(),
        "agent in its container did not start:\n{}",
        logs()
    );

    let app = Container::run(
        &format!("{p}-app"),
        &app_image.name,
        "while true; do cat /etc/passwd > /dev/null; sleep 0.2; done",
    );
    let seen = std::panic::catch_unwind(|| {
        wait_for(
            "the sibling watched, with events",
            Duration::from_secs(60),
            || {
                let st = status()?;
                let c = container(&st, &app.name)?;
                (c["events"].as_u64()? > 0).then(|| c.clone())
            },
        )
    });
    let c = seen.unwrap_or_else(|_| panic!("sibling not watched:\n{}", logs()));
    // Identity through the mounted runtime state.
    assert_eq!(c["image"], app_image.name.as_str());
    assert_eq!(c["id"], app.id.as_str());
    assert_eq!(c["workload"], app_image.name.as_str());
    // The agent does not watch its own container.
    let st = status().unwrap();
    assert!(container(&st, &agent_name).is_none(), "{st:#}");
    // Stops cleanly on SIGTERM (podman stop), writing its final status.
    podman_ok(&["stop", "-t", "20", &agent_name]);
    let st = status().unwrap();
    assert_eq!(st["running"], false, "{}", logs());
}

/// Starts `podman run -d` of the agent image with the DaemonSet's
/// settings and mounts, its state in `state`.
fn run_the_agent_as_the_daemonset_does(agent_name: &str, agent_image: &Image, state: &Path) {
    let cgroup_root = chids_live::cgroup::cgroup2_root().unwrap();
    let _ = podman(&["rm", "-f", "-t", "0", agent_name]);
    let mounts = [
        format!("{}:/host/sys/fs/cgroup:ro", cgroup_root.display()),
        "/sys/kernel/btf:/sys/kernel/btf:ro".to_string(),
        "/var/lib/containers/storage:/host/var/lib/containers/storage:ro".to_string(),
        format!("{}:/var/lib/chids", state.display()),
    ];
    let mut args: Vec<&str> = vec![
        "run",
        "-d",
        "--name",
        agent_name,
        // The DaemonSet's settings: host pids, host cgroups, BPF and
        // PERFMON (SYS_RESOURCE only matters before Linux 5.11 and is not
        // in this machine's bounding set), no seccomp filter on bpf(2).
        "--pid",
        "host",
        "--cgroupns",
        "host",
        "--cap-drop",
        "all",
        "--cap-add",
        "bpf",
        "--cap-add",
        "perfmon",
        "--cap-add",
        "dac_read_search",
        "--security-opt",
        "seccomp=unconfined",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1000:1000",
    ];
    for m in &mounts {
        args.push("-v");
        args.push(m);
    }
    args.extend([
        // The image's entrypoint is `chids agent`: arguments only, as the
        // DaemonSet gives them.
        agent_image.name.as_str(),
        "--state-dir",
        "/var/lib/chids",
        "--host-root",
        "/host",
        "--cgroup-root",
        "/host/sys/fs/cgroup",
        "--learn-for",
        "1h",
        "--alerts",
        "/var/lib/chids/alerts.jsonl",
    ]);
    podman_ok(&args);
}

/// `scripts/build-image.sh` run on the `chids` cargo built for this test.
fn image_from_script(tag: &str) -> Image {
    let stage = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/build-image.sh");
    let out = Command::new(&script)
        .arg("--binary")
        .arg(env!("CARGO_BIN_EXE_chids"))
        .arg("--tag")
        .arg(tag)
        .arg("--stage")
        .arg(stage.path().join("image"))
        .output()
        .expect("run scripts/build-image.sh");
    assert!(
        out.status.success(),
        "scripts/build-image.sh failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Image {
        name: tag.to_string(),
    }
}
