//! `chids accept` offline: a false alarm on normal recordings, written by
//! `evaluate --alerts`, is accepted, after which the same recordings raise no alarm while
//! the attack is still detected; the bundle keeps an audit record.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn chids(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chids"))
        .args(args)
        .output()
        .expect("run chids")
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A `sysdig -r` text recording: a loop of calls over `seconds`, plus
/// `extra` lines.
fn text_recording(path: &Path, seconds: u64, seed: u64, extra: &[String]) {
    let mut s = String::new();
    let calls = ["read", "write", "epoll_wait", "close", "futex"];
    let mut n = 1;
    for ms in (0..seconds * 1000).step_by(7) {
        let t = ms * 1_000_000 + seed * 1_000;
        let hms = hms(t);
        let call = calls[((ms / 7 + seed) % 5) as usize];
        s += &format!(
            "{n} {hms} 0 nginx (42) > {call} fd=3\n{} {hms} 0 nginx (42) < {call} res=0\n",
            n + 1
        );
        n += 2;
        if ms % 700 == 0 {
            s += &format!("{n} {hms} 0 nginx (42) < open fd=5(<f>/var/www/index.html) name=/var/www/index.html flags=1(O_RDONLY) mode=0\n");
            n += 1;
        }
    }
    for line in extra {
        s += line;
        s += "\n";
    }
    std::fs::write(path, s).unwrap();
}

fn hms(t_ns: u64) -> String {
    let (sec, ns) = (10 * 3600 + t_ns / 1_000_000_000, t_ns % 1_000_000_000);
    format!(
        "{:02}:{:02}:{:02}.{:09}",
        sec / 3600,
        sec / 60 % 60,
        sec % 60,
        ns
    )
}

/// A new page served now and then: normal, but training never saw it.
fn new_page(at_ms: u64, n: u64) -> String {
    format!(
        "{n} {} 0 nginx (42) < open fd=5(<f>/var/www/about.html) name=/var/www/about.html flags=1(O_RDONLY) mode=0",
        hms(at_ms * 1_000_000 + 3_000)
    )
}

fn operating_point(model: &str, normal: &str, attack: &str) -> serde_json::Value {
    let out = ok(chids(&[
        "evaluate", "--model", model, "--ns", normal, "--ms", attack, "--json",
    ]));
    let table: serde_json::Value = serde_json::from_str(&out).unwrap();
    table["operating_point"].clone()
}

/// The recordings and the model trained on them: a normal recording that
/// serves a page training never saw, and an attack.
struct Lab {
    dir: tempfile::TempDir,
}

impl Lab {
    fn new() -> Lab {
        let lab = Lab {
            dir: tempfile::tempdir().unwrap(),
        };
        for d in ["train", "normal", "attack"] {
            std::fs::create_dir(lab.p(d)).unwrap();
        }
        for i in 0..3 {
            text_recording(&lab.p(&format!("train/r{i}.txt")), 4, i, &[]);
        }
        let pages: Vec<String> = (0..3)
            .map(|i| new_page(500 + i * 1000, 900_000 + i))
            .collect();
        text_recording(&lab.p("normal/n0.txt"), 3, 7, &pages);
        let attack: Vec<String> = [
            "99990 10:00:02.500000000 0 sh (66) > execve filename=/bin/sh",
            "99991 10:00:02.500100000 0 sh (66) < execve res=0 exe=sh",
            "99992 10:00:02.500200000 0 sh (66) > ptrace",
            "99993 10:00:02.500300000 0 sh (66) < ptrace res=0",
            "99994 10:00:02.500400000 0 cat (67) < open fd=3(<f>/etc/shadow) name=/etc/shadow flags=1(O_RDONLY) mode=0",
            "99996 10:00:02.500600000 0 cat (67) > close fd=3",
        ]
        .map(String::from)
        .to_vec();
        text_recording(&lab.p("attack/a0.txt"), 3, 9, &attack);
        ok(chids(&[
            "baseline",
            "--td",
            &lab.s("train"),
            "--od",
            &lab.s("model"),
            "--epochs",
            "20",
        ]));
        lab
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn s(&self, rel: &str) -> String {
        self.p(rel).display().to_string()
    }

    fn operating_point(&self) -> serde_json::Value {
        operating_point(&self.s("model"), &self.s("normal"), &self.s("attack"))
    }

    fn bundle(&self) -> Vec<u8> {
        std::fs::read(self.p("model/baseline.json")).unwrap()
    }
}

#[test]
fn accepting_a_false_alarm_silences_it_and_keeps_detecting_attacks() {
    let lab = Lab::new();
    let before = lab.operating_point();
    assert_eq!(before["detected"], 1, "{before}");
    assert_eq!(
        before["false_alarms"], 1,
        "the new page must alarm first: {before}"
    );
    let n = write_the_false_alarm_lines(&lab);
    accept_records_who_accepted_what(&lab, n);

    let after = lab.operating_point();
    assert_eq!(after["false_alarms"], 0, "{after}");
    assert_eq!(after["detected"], 1, "{after}");

    // The same alerts again: recorded once, the bundle unchanged.
    let bytes = lab.bundle();
    let out = ok(chids(&[
        "accept",
        "--model",
        &lab.s("model"),
        &lab.s("alerts.jsonl"),
    ]));
    assert!(out.contains(&format!("0 of {n} alerts accepted")), "{out}");
    assert_eq!(lab.bundle(), bytes);

    // A damaged line is named by file and line; nothing is changed.
    std::fs::write(lab.p("bad.jsonl"), "{\"id\":\"x\"}\n{oops\n").unwrap();
    let o = chids(&["accept", "--model", &lab.s("model"), &lab.s("bad.jsonl")]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad.jsonl:2"), "{err}");
    assert_eq!(lab.bundle(), bytes);
}

/// The alarm windows as alert lines; the triager keeps the normal
/// recording's (the false alarms, all about the new page) in alerts.jsonl.
/// Returns how many.
fn write_the_false_alarm_lines(lab: &Lab) -> usize {
    let all = lab.p("all-alerts.jsonl");
    ok(chids(&[
        "evaluate",
        "--model",
        &lab.s("model"),
        "--ns",
        &lab.s("normal"),
        "--ms",
        &lab.s("attack"),
        "--alerts",
        &all.display().to_string(),
    ]));
    let alerts: Vec<String> = std::fs::read_to_string(&all)
        .unwrap()
        .lines()
        .filter(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["recording"] == "n0.txt"
        })
        .map(str::to_string)
        .collect();
    let n = alerts.len();
    assert!(n >= 1, "no false alarm line written");
    assert!(
        alerts.iter().all(|l| l.contains("/var/www/about.html")),
        "{alerts:?}"
    );
    std::fs::write(lab.p("alerts.jsonl"), alerts.join("\n") + "\n").unwrap();
    n
}

/// `accept` takes all `n` alerts and keeps an audit record per alert; the
/// page's name is added once.
fn accept_records_who_accepted_what(lab: &Lab, n: usize) {
    let out = ok(chids(&[
        "accept",
        "--model",
        &lab.s("model"),
        "--by",
        "alice",
        &lab.s("alerts.jsonl"),
    ]));
    assert!(
        out.contains(&format!("{n} of {n} alerts accepted")),
        "{out}"
    );
    assert!(out.contains("no longer alarms"), "{out}");
    let meta: serde_json::Value = serde_json::from_slice(&lab.bundle()).unwrap();
    let audit = meta["accepted"].as_array().unwrap();
    assert_eq!(audit.len(), n, "{meta}");
    assert_eq!(audit[0]["accepted_by"], "alice");
    assert_eq!(
        audit[0]["args_added"],
        serde_json::json!(["/var/www/about.html"])
    );
    assert!(audit[0]["alert_id"]
        .as_str()
        .unwrap()
        .starts_with("n0.txt#"));
    if n > 1 {
        assert!(
            audit[1]["args_added"].is_null(),
            "only the first adds the name: {meta}"
        );
    }
}
