//! A wall-clock step does not make events late: `chids agent` closes
//! windows on the events' clock (CLOCK_MONOTONIC plus the epoch offset
//! taken at start), so when the host's CLOCK_REALTIME jumps an hour ahead
//! and then two hours back, windows keep closing, an attack still raises
//! alerts, no event is dropped as late, and the alerts' times stay on the
//! events' timeline.
//!
//! And the other way round: with the agent's monotonic clock faked too,
//! its "now" runs an hour ahead of the events' clock, and the late events
//! that follow are counted (status, metrics, warning at exit).
//!
//! The step is real for the agent and no one else: libfaketime is
//! preloaded into the agent only (FAKETIME_TIMESTAMP_FILE with
//! FAKETIME_NO_CACHE lets the test move the offset while it runs;
//! FAKETIME_DONT_FAKE_MONOTONIC keeps CLOCK_MONOTONIC true, as an NTP step
//! does). The kernel stamps events with its own monotonic clock, which no
//! preload touches. The test checks that the step took effect: the status
//! file's time (the agent's wall clock) moves by the step.
//!
//! Needs root, kernel BTF, podman + runc, busybox-static and libfaketime
//! (scripts/install-test-deps.sh); run with `--include-ignored`.
#![cfg(feature = "live")]

mod agent_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use agent_support::*;
use serde_json::Value;

const LOOP: &str =
    "while true; do cat /etc/passwd > /dev/null; ls /bin > /dev/null; sleep 0.2; done";
const ATTACK: &str = "cat /etc/shadow > /dev/null; cp /bin/busybox /tmp/ls; /tmp/ls / > /dev/null";
const HOUR_NS: i64 = 3_600_000_000_000;

/// libfaketime's preload library, wherever the multiarch folder is.
fn libfaketime() -> Option<PathBuf> {
    std::fs::read_dir("/usr/lib")
        .ok()?
        .flatten()
        .map(|e| e.path().join("faketime/libfaketime.so.1"))
        .chain([PathBuf::from("/usr/lib/faketime/libfaketime.so.1")])
        .find(|p| p.exists())
}

fn real_now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

fn scrape(addr: &str) -> String {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.write_all(b"GET /metrics HTTP/1.1\r\nHost: chids\r\n\r\n")
        .unwrap();
    let mut s = String::new();
    c.read_to_string(&mut s).unwrap();
    s
}

fn alerts_of(file: &Path, name: &str) -> Vec<Value> {
    anomalies_of(file, name)
}

#[test]
#[ignore = "needs root, podman, libfaketime"]
fn a_wall_clock_step_makes_no_event_late() {
    if let Some(why) = skip_reason() {
        panic!("missing prerequisite (the test is ignored unless asked for; asked for, it fails): {why}");
    }
    let Some(faketime) = libfaketime() else {
        panic!("missing prerequisite: libfaketime not installed (scripts/install-test-deps.sh)");
    };
    let p = prefix();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let alerts_file = tmp.path().join("alerts.jsonl");
    let offset_file = tmp.path().join("faketime");
    std::fs::write(&offset_file, "+0\n").unwrap();
    let img = Image::busybox(&format!("localhost/{p}-clock:1"), &[]);

    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let mut agent = Agent::start_with_env(
        &state,
        &[
            "--metrics",
            &metrics_addr,
            "--learn-for",
            "20s",
            "--theta",
            "1.5",
            "--alerts",
            alerts_file.to_str().unwrap(),
            "--epochs",
            "40",
        ],
        &[
            ("LD_PRELOAD", faketime.to_str().unwrap()),
            ("FAKETIME_TIMESTAMP_FILE", offset_file.to_str().unwrap()),
            ("FAKETIME_NO_CACHE", "1"),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ],
    );
    wait_for("agent status", Duration::from_secs(30), || agent.status());
    let c = Container::run(&format!("{p}-clock"), &img.name, LOOP);
    wait_for("the image detecting", Duration::from_secs(240), || {
        let st = agent.status()?;
        (workload_state(&st, &img.name)? == "detecting").then_some(())
    });
    wait_for("windows scored", Duration::from_secs(30), || {
        (windows(&agent.status()?, &c)? >= 3).then_some(())
    });

    // An hour ahead, then two hours back (an hour behind the true time).
    let watched = Watched {
        agent: &agent,
        container: &c,
        alerts_file: &alerts_file,
        offset_file: &offset_file,
    };
    for (step, offset_ns) in [("+3600", HOUR_NS), ("-3600", -HOUR_NS)] {
        watched.step_the_wall_clock(step, offset_ns);
        watched.windows_keep_closing_and_an_attack_alerts_on_time(step);
    }

    let metrics = scrape(&metrics_addr);
    assert!(
        metrics.contains("\nchids_late_events_total 0\n"),
        "{metrics}"
    );
    assert_eq!(agent.stop(), Some(0), "{}", agent.log_text());
    assert!(
        !agent.log_text().contains("out of order"),
        "{}",
        agent.log_text()
    );

    late_events_are_counted_when_the_agents_clock_runs_ahead(
        &state,
        &metrics_addr,
        (&faketime, &offset_file),
        (&img, &c),
    );
    drop(c);
}

/// The container's scored windows, from a status.
fn windows(st: &Value, c: &Container) -> Option<u64> {
    container(st, &c.name)?["windows"].as_u64()
}

/// A running agent (its wall clock faked through `offset_file`) and the
/// container it detects on.
struct Watched<'a> {
    agent: &'a Agent,
    container: &'a Container,
    alerts_file: &'a Path,
    offset_file: &'a Path,
}

impl Watched<'_> {
    /// Steps the agent's wall clock to `step` seconds off the true time,
    /// and waits until its status file shows it moved.
    fn step_the_wall_clock(&self, step: &str, offset_ns: i64) {
        std::fs::write(self.offset_file, format!("{step}\n")).unwrap();
        // The agent's wall clock moved: its status file says so.
        wait_for(
            &format!("the agent's wall clock at {step}s"),
            Duration::from_secs(30),
            || {
                let st = self.agent.status()?;
                let skew = st["updated_ns"].as_i64()? - real_now_ns() - offset_ns;
                (skew.abs() < 60_000_000_000).then_some(())
            },
        );
    }

    /// After the step: windows keep closing, an attack raises alerts on the
    /// events' timeline, and no event was late.
    fn windows_keep_closing_and_an_attack_alerts_on_time(&self, step: &str) {
        let (agent, c) = (self.agent, self.container);
        // Windows keep closing...
        let w0 = windows(&agent.status().unwrap(), c).unwrap();
        wait_for(
            &format!("windows closing after the {step}s step"),
            Duration::from_secs(60),
            || (windows(&agent.status()?, c)? >= w0 + 3).then_some(()),
        );
        // ...and an attack still raises alerts.
        let before = alerts_of(self.alerts_file, &c.name).len();
        let out = c.exec(ATTACK);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let alerts = wait_for(
            &format!("an alert after the {step}s step"),
            Duration::from_secs(60),
            || {
                let a = alerts_of(self.alerts_file, &c.name);
                (a.len() > before).then_some(a)
            },
        );
        // On the events' timeline: the true time (the offset was taken
        // before any step), and the alert raised just after its window.
        let now = real_now_ns();
        for a in &alerts[before..] {
            let start = a["window_start_ns"].as_i64().unwrap();
            let end = a["window_end_ns"].as_i64().unwrap();
            let time = a["time_ns"].as_i64().unwrap();
            assert!(
                (now - 600_000_000_000..=now).contains(&end),
                "window end {end} is not the true time {now} (step {step}): {a:#}"
            );
            assert!(
                start < end && end <= time && time - end < 60_000_000_000,
                "alert time {time} is off its window {start}..{end} (step {step}): {a:#}"
            );
        }
        let st = agent.status().unwrap();
        assert_eq!(st["late_events"], 0, "late events after {step}s: {st:#}");
    }
}

/// The counter is real: when the agent's "now" and the events' clock
/// do disagree — its CLOCK_MONOTONIC faked an hour ahead of the
/// kernel's, which stamps the events — every window closes at once and
/// every later event is late: counted per container, in the status,
/// the metrics and the warning at exit. (The restarted agent detects at
/// once with the model it stored.)
fn late_events_are_counted_when_the_agents_clock_runs_ahead(
    state: &Path,
    metrics_addr: &str,
    (faketime, offset_file): (&Path, &Path),
    (img, c): (&Image, &Container),
) {
    std::fs::write(offset_file, "+0\n").unwrap();
    let mut agent = Agent::start_with_env(
        state,
        &["--metrics", metrics_addr, "--learn-for", "20s"],
        &[
            ("LD_PRELOAD", faketime.to_str().unwrap()),
            ("FAKETIME_TIMESTAMP_FILE", offset_file.to_str().unwrap()),
            ("FAKETIME_NO_CACHE", "1"),
        ],
    );
    wait_for("windows scored again", Duration::from_secs(60), || {
        let st = agent.status()?;
        (workload_state(&st, &img.name)? == "detecting" && windows(&st, c)? >= 2).then_some(())
    });
    std::fs::write(offset_file, "+3600\n").unwrap();
    let st = wait_for("late events counted", Duration::from_secs(60), || {
        let st = agent.status()?;
        (container(&st, &c.name)?["late_events"].as_u64()? >= 10).then_some(st)
    });
    assert!(st["late_events"].as_u64().unwrap() >= 10, "{st:#}");
    let metrics = scrape(metrics_addr);
    let line = metrics
        .lines()
        .find(|l| {
            l.starts_with("chids_container_late_events_total{")
                && l.contains(&format!("container=\"{}\"", c.name))
        })
        .unwrap_or_else(|| panic!("no late events line for {}:\n{metrics}", c.name));
    let n: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n >= 10, "{line}");
    assert_eq!(agent.stop(), Some(0), "{}", agent.log_text());
    assert!(
        agent.log_text().contains("whose time was out of order"),
        "{}",
        agent.log_text()
    );
}
