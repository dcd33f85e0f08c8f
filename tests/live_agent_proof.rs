//! The proof of issue 17: the agent is quiet on normal churn and loud on
//! attacks. Three containers of two images run a steady small load (files
//! read, directories listed, /tmp written, a local HTTP exchange, syslog
//! forwarded over UDP); the agent learns for at most three minutes, then
//! detects for ten (`CHIDS_PROOF_DETECT_MINUTES` shortens it for local
//! iteration): no anomaly alert. Ten `podman exec C true`: exec records,
//! no anomaly alert. Then three attacks through exec — read /etc/shadow,
//! copy a binary to /tmp and run it, connect to a port never used — each
//! raise an anomaly alert on NATS within 5 s of the exec, naming the
//! container, its image and the path or endpoint.
//!
//! `benches/agent_soak.sh` runs this test for longer with
//! `CHIDS_PROOF_REPORT=FILE`: the false-alarm windows per hour per workload
//! and the agent's CPU and memory are written there before any assertion.
//!
//! Needs root, kernel BTF, podman + runc, nats-server and busybox-static
//! (scripts/install-test-deps.sh); run with `--include-ignored`.
#![cfg(feature = "live")]

mod agent_support;

use std::time::{Duration, Instant};

use agent_support::*;
use serde_json::{json, Value};

/// A small web service: busybox httpd on loopback, fetched by the loop,
/// which also reads configuration, lists directories, keeps a counter in
/// /tmp and, every 5th round, walks /etc and checksums its page (a branch
/// taken now and then; /etc/shadow is listed, never read). It was every
/// 25th round, seen only about ten times per container in two minutes of
/// learning; on a loaded machine (load 7) one window then came out 3 %
/// above the largest training score — a frequency alarm, a few more reads
/// and writes than any training window had, no unseen name — and the
/// thinly sampled branch is the likeliest source. A steady load, as the
/// claim asks, is one whose every branch learning sees many times.
///
/// The page is fetched with `nc`, not `wget`: busybox wget reads the body
/// non-blocking and calls `poll` only when the body has not arrived yet —
/// a race the load of the machine decides. A CI run on a busy machine saw
/// `poll` for the first time after learning, three times in ten minutes: a
/// real false alarm on a real (if rare) normal path, but one no three
/// minutes of learning can be sure to see. nc waits with the same calls
/// every time, and its request comes from a file, so its end of input
/// (and the half-close that follows) always comes before the answer: the
/// workload is steady, which this test's claim needs.
const WEB_LOOP: &str = "busybox httpd -f -p 127.0.0.1:8080 -h /www & i=0; \
printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' > /tmp/request; \
while true; do i=$((i+1)); \
cat /etc/passwd > /dev/null; ls /bin > /dev/null; \
busybox nc 127.0.0.1 8080 < /tmp/request > /tmp/page; \
cat /tmp/page > /dev/null; echo $i > /tmp/count; \
if [ $((i % 5)) -eq 0 ]; then busybox find /etc > /dev/null; busybox md5sum /tmp/page > /dev/null; fi; \
sleep 0.5; done";

/// A batch worker: logs each job through syslogd, which forwards over UDP
/// to a collector on loopback; each job writes, checksums and removes a
/// numbered file in /tmp (a name new every time).
const WORKER_LOOP: &str = "busybox syslogd -n -R 127.0.0.1:5514 & i=0; \
while true; do i=$((i+1)); \
busybox logger -t worker \"job $i\"; echo job $i > /tmp/job.$i; \
busybox md5sum /tmp/job.$i > /dev/null; rm /tmp/job.$i; ls /tmp > /dev/null; \
sleep 0.3; done";

const STREAM: &str = "CHIDS_PROOF";

/// How long the quiet detection phase lasts: 10 minutes, as the issue
/// says, unless `CHIDS_PROOF_DETECT_MINUTES` says otherwise.
fn detect_minutes() -> f64 {
    std::env::var("CHIDS_PROOF_DETECT_MINUTES")
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("CHIDS_PROOF_DETECT_MINUTES={v}: not a number"))
        })
        .unwrap_or(10.0)
}

/// The agent's user + system CPU time so far, seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name, which may hold spaces: state is 3rd.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    ticks as f64 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// The records on the stream of our containers, of one kind.
fn ours(nats: &Nats, p: &str, kind: &str) -> Vec<Value> {
    nats.messages(STREAM)
        .into_iter()
        .filter(|a| {
            a["kind"] == kind
                && a["container_name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with(p))
        })
        .collect()
}

/// The first reasons of an alert, short, for a failure message.
fn brief(a: &Value) -> Value {
    json!({
        "container": a["container_name"], "score": a["score"], "events": a["events"],
        "fi": a["fi"], "usi": a["usi"], "uai": a["uai"],
        "unseen_syscalls": a["unseen_syscalls"], "unseen_args": a["unseen_args"],
        "rising": a["rising"], "window_start_ns": a["window_start_ns"],
    })
}

/// Windows scored so far in each container of ours.
fn windows_scored(agent: &Agent, names: &[&str]) -> Option<Vec<u64>> {
    let st = agent.status()?;
    names
        .iter()
        .map(|n| container(&st, n)?["windows"].as_u64())
        .collect()
}

struct Proof {
    p: String,
    nats: Nats,
    agent: Agent,
    web: Image,
    worker: Image,
    web1: Container,
    web2: Container,
    batch: Container,
    _tmp: tempfile::TempDir,
}

impl Proof {
    fn start() -> Proof {
        let p = prefix();
        let tmp = tempfile::tempdir().unwrap();
        let page = tmp.path().join("index.html");
        std::fs::write(&page, "<html><body>chids proof</body></html>\n").unwrap();
        let web = Image::busybox(
            &format!("localhost/{p}-web:1"),
            &[(&page, "/www/index.html")],
        );
        let worker = Image::busybox(&format!("localhost/{p}-worker:1"), &[]);
        let nats = Nats::start(&tmp.path().join("nats"), free_port());
        let subject = format!("{p}.alerts");
        nats.create_stream(STREAM, &subject);
        let state = tmp.path().join("state");
        let alerts = tmp.path().join("alerts.jsonl");
        let url = nats.url();
        let agent = Agent::start(
            &state,
            &[
                "--include",
                &format!("name={p}-*"),
                "--learn-for",
                "2m",
                "--learn-max",
                "3m",
                "--nats",
                &url,
                "--subject",
                &subject,
                "--alerts",
                alerts.to_str().unwrap(),
            ],
        );
        wait_for("agent status", Duration::from_secs(30), || agent.status());
        let web1 = Container::run(&format!("{p}-web1"), &web.name, WEB_LOOP);
        let web2 = Container::run(&format!("{p}-web2"), &web.name, WEB_LOOP);
        let batch = Container::run(&format!("{p}-batch"), &worker.name, WORKER_LOOP);
        Proof {
            p,
            nats,
            agent,
            web,
            worker,
            web1,
            web2,
            batch,
            _tmp: tmp,
        }
    }

    fn names(&self) -> [&str; 3] {
        [&self.web1.name, &self.web2.name, &self.batch.name]
    }

    fn anomalies(&self) -> Vec<Value> {
        ours(&self.nats, &self.p, "anomaly")
    }

    /// Learning ends within its maximum (plus training, on a busy machine).
    fn learn(&self) -> Duration {
        let t = Instant::now();
        wait_for("both images detecting", Duration::from_secs(480), || {
            let st = self.agent.status()?;
            (workload_state(&st, &self.web.name)? == "detecting"
                && workload_state(&st, &self.worker.name)? == "detecting")
                .then_some(())
        });
        t.elapsed()
    }

    /// Waits until every container has had `n` more windows scored.
    fn windows_pass(&self, n: u64) {
        let names = self.names();
        let before = windows_scored(&self.agent, &names).expect("windows in the status");
        wait_for(
            &format!("{n} more windows scored in each container"),
            Duration::from_secs(60 + 2 * n),
            || {
                let now = windows_scored(&self.agent, &names)?;
                now.iter()
                    .zip(&before)
                    .all(|(a, b)| *a >= b + n)
                    .then_some(())
            },
        );
    }
}

impl Drop for Proof {
    /// On a failure, what the agent said: its log's end and its workloads.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let log = self.agent.log_text();
        let tail: Vec<&str> = log.lines().rev().take(60).collect();
        eprintln!("agent log (end):");
        for l in tail.iter().rev() {
            eprintln!("  {l}");
        }
        if let Some(st) = self.agent.status() {
            eprintln!("agent workloads: {:#}", st["workloads"]);
        }
        let last: Vec<Value> = self
            .nats
            .messages(STREAM)
            .into_iter()
            .rev()
            .take(8)
            .collect();
        eprintln!("last records on the stream: {last:#?}");
    }
}

/// One attack: `cmd` exec'd into `c`; the first anomaly alert of `c`
/// naming `what` among its unseen arguments must arrive within 5 s of the
/// exec, naming the container and its image. Err says what went wrong.
fn attack(
    proof: &Proof,
    c: &Container,
    image: &str,
    cmd: &[&str],
    what: &str,
) -> Result<Duration, String> {
    let before = proof.anomalies().len();
    let t = Instant::now();
    let mut args = vec!["exec", c.name.as_str()];
    args.extend_from_slice(cmd);
    let _ = podman(&args); // a refused connection exits non-zero: fine
    let names_it = |a: &Value| {
        a["container_name"] == c.name.as_str()
            && a["unseen_args"]
                .as_array()
                .is_some_and(|u| u.iter().any(|u| u["arg"].as_str() == Some(what)))
    };
    let mut hit = None;
    while hit.is_none() && t.elapsed() < Duration::from_secs(30) {
        hit = proof.anomalies().into_iter().skip(before).find(names_it);
        std::thread::sleep(Duration::from_millis(100));
    }
    let latency = t.elapsed();
    let Some(hit) = hit else {
        let other: Vec<Value> = proof.anomalies().iter().skip(before).map(brief).collect();
        return Err(format!(
            "{what} in {}: no anomaly alert naming it within 30 s; other alerts: {other:#?}",
            c.name
        ));
    };
    eprintln!(
        "proof: {what} in {}: alert after {latency:?}: {:#}",
        c.name,
        brief(&hit)
    );
    assert_eq!(hit["image"], image, "{hit:#}");
    assert_eq!(hit["container_id"], c.id.as_str(), "{hit:#}");
    assert!(hit["score"].as_f64().unwrap() >= 1.0, "{hit:#}");
    if latency > Duration::from_secs(5) {
        return Err(format!("{what} in {}: alert after {latency:?}", c.name));
    }
    Ok(latency)
}

#[test]
#[ignore = "needs root, podman, nats-server"]
fn agent_is_quiet_on_normal_churn_and_loud_on_attacks() {
    if let Some(why) = skip_reason() {
        panic!("missing prerequisite (the test is ignored unless asked for; asked for, it fails): {why}");
    }
    let proof = Proof::start();
    let learnt_in = proof.learn();
    eprintln!("proof: both images detecting after {learnt_in:?}");
    if let Some(st) = proof.agent.status() {
        eprintln!("proof: workloads {:#}", st["workloads"]);
    }

    // The quiet phase: normal churn under detection.
    let minutes = detect_minutes();
    let names = proof.names();
    let windows_before = windows_scored(&proof.agent, &names).unwrap();
    let cpu_before = cpu_seconds(proof.agent.pid());
    let t = Instant::now();
    let mut rss_max = 0;
    while t.elapsed() < Duration::from_secs_f64(minutes * 60.0) {
        rss_max = rss_max.max(proof.agent.rss());
        std::thread::sleep(Duration::from_secs(5));
    }
    let detected_for = t.elapsed();
    let cpu = cpu_seconds(proof.agent.pid()) - cpu_before;
    let windows_after = windows_scored(&proof.agent, &names).unwrap();
    let quiet = proof.anomalies();
    let suppressed = ours(&proof.nats, &proof.p, "suppressed");
    write_report(
        &proof,
        detected_for,
        cpu,
        rss_max,
        &quiet,
        &windows_before,
        &windows_after,
    );

    // Detection really ran: every container had its windows scored.
    for (i, n) in names.iter().enumerate() {
        let scored = windows_after[i] - windows_before[i];
        assert!(
            scored as f64 >= minutes * 60.0 * 0.8,
            "{n}: {scored} windows scored in {detected_for:?}"
        );
    }
    let shown: Vec<Value> = quiet.iter().map(brief).collect();
    assert!(
        quiet.is_empty() && suppressed.is_empty(),
        "{} false alarms in {detected_for:?} of normal churn ({} suppressed records): {shown:#?}",
        quiet.len(),
        suppressed.len()
    );

    exec_sessions_raise_no_anomaly(&proof);

    // Every attack is tried (each in its own container), then judged.
    let results = [
        attack(
            &proof,
            &proof.web1,
            &proof.web.name,
            &["cat", "/etc/shadow"],
            "/etc/shadow",
        ),
        attack(
            &proof,
            &proof.batch,
            &proof.worker.name,
            &[
                "sh",
                "-c",
                "cp /bin/busybox /tmp/ls && /tmp/ls / > /dev/null",
            ],
            "/tmp/ls",
        ),
        attack(
            &proof,
            &proof.web2,
            &proof.web.name,
            &["busybox", "nc", "-w", "1", "127.0.0.1", "4444"],
            "inet:127.0.0.1:4444",
        ),
    ];
    let failed: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    assert!(
        failed.is_empty(),
        "attacks not alarmed within 5 s: {failed:#?}"
    );
}

/// Ten `podman exec C true` across the containers: ten exec records, and
/// no anomaly alert while the windows after them are scored.
fn exec_sessions_raise_no_anomaly(proof: &Proof) {
    let names = proof.names();
    for i in 0..10 {
        podman_ok(&["exec", names[i % 3], "true"]);
    }
    wait_for("ten exec records", Duration::from_secs(60), || {
        (ours(&proof.nats, &proof.p, "exec").len() >= 10).then_some(())
    });
    proof.windows_pass(5);
    let after: Vec<Value> = proof.anomalies().iter().map(brief).collect();
    assert!(after.is_empty(), "`podman exec C true` alarmed: {after:#?}");
}

/// With `CHIDS_PROOF_REPORT=FILE`: what the soak measured, as JSON.
fn write_report(
    proof: &Proof,
    detected_for: Duration,
    cpu: f64,
    rss_max: u64,
    alarms: &[Value],
    windows_before: &[u64],
    windows_after: &[u64],
) {
    let Ok(path) = std::env::var("CHIDS_PROOF_REPORT") else {
        return;
    };
    let hours = detected_for.as_secs_f64() / 3600.0;
    let names = proof.names();
    let images = [&proof.web.name, &proof.web.name, &proof.worker.name];
    let workloads: Vec<Value> = [(&proof.web.name, "web"), (&proof.worker.name, "worker")]
        .iter()
        .map(|(img, label)| {
            let n = alarms.iter().filter(|a| a["image"] == img.as_str()).count();
            let windows: u64 = (0..3)
                .filter(|&i| images[i] == *img)
                .map(|i| windows_after[i] - windows_before[i])
                .sum();
            json!({"workload": label, "containers": (0..3).filter(|&i| images[i] == *img).map(|i| names[i]).collect::<Vec<_>>(),
                   "windows_scored": windows, "false_alarm_windows": n,
                   "false_alarm_windows_per_hour": n as f64 / hours})
        })
        .collect();
    let report = json!({
        "detected_minutes": detected_for.as_secs_f64() / 60.0,
        "agent_cpu_seconds": cpu,
        "agent_cpu_percent_of_one_core": 100.0 * cpu / detected_for.as_secs_f64(),
        "agent_rss_max_mib": rss_max as f64 / (1 << 20) as f64,
        "workloads": workloads,
        "false_alarms": alarms.iter().map(brief).collect::<Vec<_>>(),
    });
    std::fs::write(&path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
}
