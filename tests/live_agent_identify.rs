//! Finding out who a container is must not cost its first events. The
//! agent watches a container's cgroup the moment it appears and looks its
//! identity up on a worker thread; what the container does meanwhile is
//! held and replayed into its workload's stream once it is known.
//!
//! The look-up is made slow for real: `--host-root` points at a copy of
//! containers/storage whose `containers.json` lists some hundred thousand
//! containers (about 60 MB, as on a busy build host), which the agent
//! parses for every container it finds. The container opens a marker file
//! first thing; that open must be in its workload's learning data.
//!
//! Needs root, kernel BTF, podman + runc and busybox-static
//! (scripts/install-test-deps.sh); run with `--include-ignored`.
#![cfg(feature = "live")]

mod agent_support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use agent_support::*;
use serde_json::{json, Value};

/// Entries of the padded `containers.json` (about 60 MB in all).
const PADDING: usize = 150_000;

/// A containers/storage `containers.json` entry, as podman writes it.
fn entry(id: &str, name: &str, image: &str) -> Value {
    let meta = json!({"image-name": image, "name": name}).to_string();
    json!({
        "id": id,
        "names": [name],
        "image": "f".repeat(64),
        "layer": "e".repeat(64),
        "metadata": meta,
        "created": "2026-01-01T00:00:00.000000000Z",
        "flags": {"MountLabel": "", "ProcessLabel": ""},
    })
}

/// Writes `containers.json` under `host` (atomically: the agent may read
/// it at any time): `PADDING` strangers, then `ours`.
fn write_storage(host: &Path, ours: &[Value]) -> PathBuf {
    let dir = host.join("var/lib/containers/storage/overlay-containers");
    std::fs::create_dir_all(&dir).unwrap();
    let mut all: Vec<Value> = (0..PADDING)
        .map(|i| {
            entry(
                &format!("{i:064x}"),
                &format!("stranger-{i}"),
                "localhost/stranger:1",
            )
        })
        .collect();
    all.extend(ours.iter().cloned());
    let tmp = dir.join("containers.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec(&all).unwrap()).unwrap();
    let file = dir.join("containers.json");
    std::fs::rename(&tmp, &file).unwrap();
    file
}

/// Every learning line the agent wrote under `state`.
fn learnt_lines(state: &Path) -> String {
    let mut text = String::new();
    let mut dirs = vec![state.join("learn")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "sc") {
                text.push_str(&std::fs::read_to_string(&p).unwrap_or_default());
            }
        }
    }
    text
}

#[test]
#[ignore = "needs root, podman"]
fn a_container_identified_slowly_keeps_its_first_events() {
    if let Some(why) = skip_reason() {
        panic!("missing prerequisite: {why}");
    }
    let p = prefix();
    let tmp = tempfile::tempdir().unwrap();
    let host = tmp.path().join("host");
    let state = tmp.path().join("state");
    let marker_src = tmp.path().join("marker");
    std::fs::write(&marker_src, "first\n").unwrap();
    let img = Image::busybox(
        &format!("localhost/{p}-ident:1"),
        &[(marker_src.as_path(), "/etc/chids-first-marker")],
    );
    let storage = write_storage(&host, &[]);
    let size = std::fs::metadata(&storage).unwrap().len();
    assert!(size > 40 << 20, "containers.json only {size} bytes");
    let mut agent = Agent::start(
        &state,
        &[
            "--host-root",
            host.to_str().unwrap(),
            "--learn-for",
            "1h",
            "--include",
            &format!("image={}", img.name),
            "--alerts",
            tmp.path().join("alerts.jsonl").to_str().unwrap(),
        ],
    );
    wait_for("agent status", Duration::from_secs(30), || agent.status());

    // Created first, so that the slow storage can name it; its cgroup
    // appears only when it starts.
    let name = format!("{p}-ident");
    let _ = podman(&["rm", "-f", "-t", "0", &name]);
    let script = "cat /etc/chids-first-marker > /dev/null; while true; do sleep 1; done";
    let id = podman_ok(&[
        "create",
        "--name",
        &name,
        "--network",
        "none",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1000:1000",
        &img.name,
        "sh",
        "-c",
        script,
    ]);
    let c = Container {
        name: name.clone(),
        id: id.clone(),
    };
    write_storage(&host, &[entry(&id, &name, &img.name)]);
    podman_ok(&["start", &name]);

    let line = wait_for("the container identified", Duration::from_secs(120), || {
        agent
            .log_text()
            .lines()
            .find(|l| l.contains(&format!("container {name} (")) && l.contains("started"))
            .map(str::to_owned)
    });
    eprintln!("{line}");
    assert!(line.contains(&format!("workload {}", img.name)), "{line}");
    // The look-up was slow enough that events were held and replayed.
    assert!(
        line.contains("events meanwhile replayed") && line.contains("identified after"),
        "no events were held while the container was identified: {line}"
    );
    wait_for(
        "the container's own events",
        Duration::from_secs(30),
        || {
            let st = agent.status()?;
            (container(&st, &name)?["events"].as_u64()? > 0).then_some(())
        },
    );
    assert_eq!(agent.stop(), Some(0), "{}", agent.log_text());
    let lines = learnt_lines(&state);
    assert!(
        lines.contains("/etc/chids-first-marker"),
        "the container's first action is not in its learning data ({} bytes of it, beginning:\n{}); log:\n{}",
        lines.len(),
        lines.lines().take(30).collect::<Vec<_>>().join("\n"),
        agent.log_text()
    );
    drop(c);
}
