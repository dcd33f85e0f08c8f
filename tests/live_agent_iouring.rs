//! io_uring work inside a watched container is seen by `chids agent` like
//! system calls: a workload learnt doing plain file reads, which then opens
//! and reads `/etc/shadow` through io_uring alone (IORING_OP_OPENAT,
//! IORING_OP_READ), raises an anomaly alert that names `/etc/shadow` — not
//! only `io_uring_setup` / `io_uring_enter`, which is all a system-call
//! hook would see.
//!
//! The program is built here, statically, with liburing (liburing-dev), so
//! that it runs in a busybox image.
//!
//! Needs root, kernel BTF, podman + runc, busybox-static, a C compiler and
//! liburing (scripts/install-test-deps.sh); run with `--include-ignored`.
#![cfg(feature = "live")]

mod agent_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use agent_support::*;
use serde_json::Value;

/// `uring plain`: reads /etc/hostname with plain system calls.
/// `uring shadow`: the same, then /etc/shadow through io_uring only.
const PROGRAM: &str = r#"
#include <fcntl.h>
#include <liburing.h>
#include <string.h>
#include <unistd.h>

static int plain(void)
{
	char buf[64];
	int fd = openat(AT_FDCWD, "/etc/hostname", O_RDONLY);
	if (fd < 0 || read(fd, buf, sizeof buf) < 0)
		return 2;
	close(fd);
	return 0;
}

static int shadow(void)
{
	struct io_uring ring;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	char buf[256];
	if (io_uring_queue_init(4, &ring, 0))
		return 3;
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_openat(sqe, AT_FDCWD, "/etc/shadow", O_RDONLY, 0);
	io_uring_submit(&ring);
	if (io_uring_wait_cqe(&ring, &cqe) || cqe->res < 0)
		return 4;
	int fd = cqe->res;
	io_uring_cqe_seen(&ring, cqe);
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_read(sqe, fd, buf, sizeof buf, 0);
	io_uring_submit(&ring);
	if (io_uring_wait_cqe(&ring, &cqe) || cqe->res < 0)
		return 5;
	io_uring_cqe_seen(&ring, cqe);
	io_uring_queue_exit(&ring);
	return 0;
}

int main(int argc, char **argv)
{
	if (plain())
		return 2;
	if (argc > 1 && !strcmp(argv[1], "shadow"))
		return shadow();
	return 0;
}
"#;

/// Plain reads until /tmp/go appears, then the io_uring reads too.
const LOOP: &str = "while true; do if [ -f /tmp/go ]; then /bin/uring shadow; \
                    else /bin/uring plain; fi; cat /etc/hostname > /dev/null; sleep 0.2; done";

fn build(dir: &Path) -> PathBuf {
    let src = dir.join("uring.c");
    std::fs::write(&src, PROGRAM).unwrap();
    let bin = dir.join("uring");
    let out = Command::new("cc")
        .args(["-static", "-O2", "-o"])
        .arg(&bin)
        .arg(&src)
        .arg("-luring")
        .output()
        .expect("run cc (a C compiler is a prerequisite)");
    assert!(
        out.status.success(),
        "building the io_uring program failed (liburing-dev installed?):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    bin
}

#[test]
#[ignore = "needs root, podman, liburing"]
fn io_uring_reads_in_a_container_are_named_in_the_agents_alert() {
    if let Some(why) = skip_reason() {
        panic!("missing prerequisite: {why}");
    }
    let p = prefix();
    let tmp = tempfile::tempdir().unwrap();
    let bin = build(tmp.path());
    std::fs::write(tmp.path().join("hostname"), "uring-test\n").unwrap();
    let img = Image::busybox(
        &format!("localhost/{p}-uring:1"),
        &[
            (bin.as_path(), "/bin/uring"),
            (tmp.path().join("hostname").as_path(), "/etc/hostname"),
        ],
    );
    let state = tmp.path().join("state");
    let alerts_file = tmp.path().join("alerts.jsonl");
    let agent = Agent::start(
        &state,
        &[
            "--learn-for",
            "20s",
            "--learn-max",
            "40s",
            "--epochs",
            "40",
            "--alerts",
            alerts_file.to_str().unwrap(),
        ],
    );
    wait_for("agent status", Duration::from_secs(30), || agent.status());
    // Podman's default seccomp profile refuses io_uring_setup (as Docker's
    // does); a workload that is allowed io_uring runs without it.
    let c = Container::run_with(
        &format!("{p}-uring"),
        &img.name,
        LOOP,
        &["--security-opt", "seccomp=unconfined"],
    );
    wait_for("the workload detecting", Duration::from_secs(240), || {
        (workload_state(&agent.status()?, &img.name)? == "detecting").then_some(())
    });
    // Normal work goes on detecting for a while before the io_uring reads.
    std::thread::sleep(Duration::from_secs(3));
    podman_ok(&["exec", &c.name, "sh", "-c", "echo > /tmp/go"]);
    let names_shadow = |a: &Value| {
        a["kind"] == "anomaly"
            && a["container_name"] == c.name.as_str()
            && a["unseen_args"].as_array().is_some_and(|v| {
                v.iter()
                    .any(|u| u["arg"] == "/etc/shadow" && u["process"] == "uring")
            })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let alert = loop {
        if let Some(a) = json_lines(&alerts_file).into_iter().find(names_shadow) {
            break a;
        }
        if std::time::Instant::now() > deadline {
            let seen: Vec<String> = json_lines(&alerts_file)
                .iter()
                .map(|a| {
                    format!(
                        "{} {} {}",
                        a["kind"], a["unseen_syscalls"], a["unseen_args"]
                    )
                })
                .collect();
            panic!(
                "no anomaly alert naming /etc/shadow within 60 s; alerts: {seen:#?}\n{}",
                agent.log_text()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(alert["image"], img.name.as_str(), "{alert:#}");
    // The io_uring operations are in the reasons under their own names.
    let unseen: Vec<&str> = alert["unseen_syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(unseen.contains(&"io_uring_read"), "{alert:#}");
}
