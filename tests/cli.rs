//! The command line on good and bad input: exit codes, one-line errors that
//! name the file, warnings with counts, determinism of the model.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn chids(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chids"))
        .args(args)
        .output()
        .expect("run chids")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A `sysdig -r` style text recording: a small loop of calls over
/// `seconds`, with `extra` lines appended (e.g. an attack).
fn text_recording(path: &Path, seconds: u64, seed: u64, extra: &[&str]) {
    let mut s = String::new();
    let mut n = 1;
    let calls = ["read", "write", "epoll_wait", "close", "futex"];
    for ms in (0..seconds * 1000).step_by(7) {
        let t = ms * 1_000_000 + seed * 1_000;
        let (sec, ns) = (10 * 3600 + t / 1_000_000_000, t % 1_000_000_000);
        let hms = format!(
            "{:02}:{:02}:{:02}.{:09}",
            sec / 3600,
            sec / 60 % 60,
            sec % 60,
            ns
        );
        let call = calls[((ms / 7 + seed) % 5) as usize];
        s += &format!("{n} {hms} 0 nginx (42) > {call} fd=3\n");
        n += 1;
        s += &format!("{n} {hms} 0 nginx (42) < {call} res=0\n");
        n += 1;
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

struct Lab {
    dir: tempfile::TempDir,
}

impl Lab {
    fn new() -> Lab {
        let lab = Lab {
            dir: tempfile::tempdir().unwrap(),
        };
        for d in ["train", "normal", "attack"] {
            std::fs::create_dir(lab.path(d)).unwrap();
        }
        for i in 0..3 {
            text_recording(&lab.path(&format!("train/r{i}.txt")), 4, i, &[]);
        }
        text_recording(&lab.path("normal/n0.txt"), 3, 7, &[]);
        let attack = [
            "99990 10:00:02.500000000 0 sh (66) > execve filename=/bin/sh",
            "99991 10:00:02.500100000 0 sh (66) < execve res=0 exe=sh",
            "99992 10:00:02.500200000 0 sh (66) > ptrace",
            "99993 10:00:02.500300000 0 sh (66) < ptrace res=0",
            "99994 10:00:02.500400000 0 cat (67) < open fd=3(<f>/etc/shadow) name=/etc/shadow flags=1(O_RDONLY) mode=0",
            "99995 10:00:02.500500000 0 sh (66) > mknod",
            // Modern graphs join each thread's own calls: cat goes on.
            "99996 10:00:02.500600000 0 cat (67) > close fd=3",
        ];
        text_recording(&lab.path("attack/a0.txt"), 3, 9, &attack);
        lab
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn s(&self, rel: &str) -> String {
        self.path(rel).display().to_string()
    }

    fn train(&self, out: &str, extra: &[&str]) -> Output {
        let mut args = vec!["baseline", "--td"];
        let td = self.s("train");
        let od = self.s(out);
        args.push(&td);
        args.extend(["--od", &od, "--epochs", "20"]);
        args.extend(extra);
        chids(&args)
    }
}

#[test]
fn baseline_then_evaluate_and_vectors() {
    let lab = Lab::new();
    let meta = baseline_holds_out_a_recording_to_calibrate(&lab);
    evaluate_json_catches_the_attack_at_theta_1_and_the_operating_point(&lab, &meta);
    evaluate_normal_only_warns_on_overlap_and_refuses_neither(&lab);
    vectors_json_scores_the_attack_window(&lab);
}

/// `baseline` writes baseline.json with every key, calibrated on the
/// held-out recording; returned for the operating threshold.
fn baseline_holds_out_a_recording_to_calibrate(lab: &Lab) -> serde_json::Value {
    let o = lab.train("model", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    // One of the three recordings is held out to set the operating threshold.
    assert!(out.contains("training recordings    2"), "{out}");
    assert!(out.contains("Operating point"), "{out}");
    // Modern mode's default: per-thread edges, what the kernel computes.
    assert!(out.contains("edges                  per thread"), "{out}");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(lab.path("model/baseline.json")).unwrap())
            .unwrap();
    for key in [
        "format_version",
        "mode",
        "window_ns",
        "seen_syscalls",
        "seen_args",
        "max_freq",
        "thetas",
        "thresholds",
        "training",
        "operating_threshold",
        "calibration",
    ] {
        assert!(meta.get(key).is_some(), "baseline.json lacks {key}");
    }
    assert_eq!(meta["calibration"]["source"], "held-out training");
    assert_eq!(
        meta["calibration"]["recordings"].as_array().unwrap().len(),
        1
    );
    assert_eq!(meta["mode"], "modern");
    assert_eq!(meta["edges"], "thread");
    assert_eq!(
        meta["seen_args"],
        serde_json::json!(["/var/www/index.html"])
    );
    meta
}

/// `evaluate --json`: the full table, the attack caught at theta 1 and at
/// the operating point, which is the model's threshold.
fn evaluate_json_catches_the_attack_at_theta_1_and_the_operating_point(
    lab: &Lab,
    meta: &serde_json::Value,
) {
    let o = chids(&[
        "evaluate",
        "--model",
        &lab.s("model"),
        "--ns",
        &lab.s("normal"),
        "--ms",
        &lab.s("attack"),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = table["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 10);
    for key in [
        "theta",
        "threshold",
        "detection_rate",
        "false_alarm_rate",
        "detected",
        "attacks",
        "false_alarms",
        "normals",
    ] {
        assert!(rows[0].get(key).is_some(), "row lacks {key}");
    }
    // The attack adds unseen syscalls and an unseen path: caught at theta 1.
    let r1 = rows.iter().find(|r| r["theta"] == 1.0).unwrap();
    assert_eq!(r1["detected"], 1, "{table}");
    assert_eq!(r1["false_alarms"], 0, "{table}");
    // ... and at the operating point, which comes first.
    let op = &table["operating_point"];
    for key in [
        "threshold",
        "detection_rate",
        "false_alarm_rate",
        "detected",
        "attacks",
        "false_alarms",
        "normals",
        "mean_latency_s",
    ] {
        assert!(op.get(key).is_some(), "operating_point lacks {key}");
    }
    assert_eq!(op["detected"], 1, "{table}");
    assert_eq!(op["false_alarms"], 0, "{table}");
    assert_eq!(op["threshold"], meta["operating_threshold"]);
}

/// `evaluate` with normal recordings only, with one set as both, and with
/// neither.
fn evaluate_normal_only_warns_on_overlap_and_refuses_neither(lab: &Lab) {
    // Normal recordings alone: false alarms only, as a sentence first.
    let o = chids(&[
        "evaluate",
        "--model",
        &lab.s("model"),
        "--normal",
        &lab.s("normal"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.starts_with("At the operating point"), "{text}");
    assert!(
        text.contains("0 of 1 normal recordings raised a false alarm"),
        "{text}"
    );
    assert!(!text.contains("attack recordings"), "{text}");
    // The same file as normal and attack: a warning.
    let o = chids(&[
        "evaluate",
        "--model",
        &lab.s("model"),
        "--ns",
        &lab.s("normal"),
        "--ms",
        &lab.s("normal"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("both as normal"), "{}", stderr(&o));
    // Neither: refused.
    let o = chids(&["evaluate", "--model", &lab.s("model")]);
    assert!(!o.status.success());
}

/// `vectors --json`: one line per window, the attack's window with unseen
/// syscalls and arguments.
fn vectors_json_scores_the_attack_window(lab: &Lab) {
    let o = chids(&[
        "vectors",
        "--model",
        &lab.s("model"),
        &lab.s("attack/a0.txt"),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[2]["usi"].as_f64().unwrap() > 0.0);
    assert!(lines[2]["uai"].as_f64().unwrap() > 0.0);
    for key in [
        "recording",
        "window",
        "start_ns",
        "events",
        "fi",
        "usi",
        "uai",
        "error",
    ] {
        assert!(lines[0].get(key).is_some(), "vector line lacks {key}");
    }
}

/// A normal recording whose third second carries a burst of `read` calls:
/// nothing unseen, only more of what training saw.
fn burst_recording(path: &Path) {
    let burst: Vec<String> = (0..1500u64)
        .flat_map(|i| {
            let hms = format!("10:00:02.{:09}", 300_000_000 + i * 100_000);
            [
                format!("{} {hms} 0 nginx (42) > read fd=3", 200_000 + 2 * i),
                format!("{} {hms} 0 nginx (42) < read res=0", 200_001 + 2 * i),
            ]
        })
        .collect();
    let refs: Vec<&str> = burst.iter().map(String::as_str).collect();
    text_recording(path, 4, 5, &refs);
}

#[test]
fn evaluate_alerts_and_vectors_explain_say_why() {
    let lab = Lab::new();
    burst_recording(&lab.path("attack/a1.txt"));
    let o = lab.train("model", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let alerts = lab.path("alerts.jsonl");
    let o = chids(&[
        "evaluate",
        "--model",
        &lab.s("model"),
        "--ns",
        &lab.s("normal"),
        "--ms",
        &lab.s("attack"),
        "--alerts",
        &alerts.display().to_string(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&alerts).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Every alarm says why, in the live alert form.
    assert!(!lines.is_empty(), "no alarm");
    for a in &lines {
        assert_eq!(a["kind"], "anomaly", "{a}");
        assert_eq!(a["detector"], "chids", "{a}");
        assert!(a["score"].as_f64().unwrap() >= 1.0, "{a}");
        assert!(a["window"].is_u64() && a["window_start_ns"].is_u64(), "{a}");
        let reasons: usize = ["unseen_syscalls", "unseen_args", "rising"]
            .iter()
            .map(|k| a[k].as_array().unwrap().len())
            .sum();
        assert!(reasons > 0, "an alarm without reasons: {a}");
    }
    assert!(
        lines.iter().all(|a| a["recording"] != "n0.txt"),
        "the normal recording alarmed: {text}"
    );
    // The exploit names its unseen path and calls.
    let exploit = lines
        .iter()
        .find(|a| a["recording"] == "a0.txt")
        .expect("the exploit raised no alarm");
    assert!(
        exploit["unseen_args"].to_string().contains("/etc/shadow"),
        "{exploit}"
    );
    assert!(
        exploit["unseen_syscalls"].to_string().contains("ptrace"),
        "{exploit}"
    );
    // The burst names the call that rose, against its training maximum.
    let burst = lines
        .iter()
        .find(|a| a["recording"] == "a1.txt")
        .expect("the burst raised no alarm");
    let first = &burst["rising"][0];
    assert_eq!(first["what"], "read", "{burst}");
    assert!(
        first["count"].as_u64().unwrap() > 10 * first["training_max"].as_u64().unwrap(),
        "{burst}"
    );

    // `vectors --explain` lists the same reasons per window.
    let o = chids(&[
        "vectors",
        "--model",
        &lab.s("model"),
        &lab.s("attack/a0.txt"),
        "--json",
        "--explain",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let windows: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let w = &windows[exploit["window"].as_u64().unwrap() as usize];
    assert_eq!(w["reasons"]["unseen_args"], exploit["unseen_args"], "{w}");
    let o = chids(&[
        "vectors",
        "--model",
        &lab.s("model"),
        &lab.s("attack/a0.txt"),
        "--explain",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("unseen args /etc/shadow"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

/// A thin baseline must not go blind: a validation recording in which a
/// user ran a command training never saw (`df`) would, scored as unseen,
/// lift the operating threshold above what an attack scores. Its names are
/// normal: folded into the model and listed; the attack, which runs other
/// programs never seen, is still detected at the operating point.
#[test]
fn names_in_validation_data_are_folded_and_attacks_still_alarm() {
    let lab = Lab::new();
    std::fs::create_dir(lab.path("validation")).unwrap();
    let df = [
        "99980 10:00:01.500000000 0 df (70) > execve filename=/usr/bin/df",
        "99981 10:00:01.500100000 0 df (70) < execve res=0 exe=df",
        "99982 10:00:01.500200000 0 df (70) > statfs",
        "99983 10:00:01.500300000 0 df (70) < statfs res=0",
        "99984 10:00:01.500400000 0 df (70) < open fd=3(<f>/proc/mounts) name=/proc/mounts flags=1(O_RDONLY) mode=0",
        "99985 10:00:01.500500000 0 df (70) > close fd=3",
    ];
    text_recording(&lab.path("validation/v0.txt"), 3, 11, &df);
    text_recording(&lab.path("validation/v1.txt"), 3, 12, &[]);
    let o = lab.train("model", &["--vd", &lab.s("validation")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("normal from validation"), "{out}");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(lab.path("model/baseline.json")).unwrap())
            .unwrap();
    let folded = &meta["folded_names"];
    assert_eq!(folded["source"], "validation", "{folded}");
    assert!(
        folded["syscalls"].to_string().contains("statfs"),
        "{folded}"
    );
    assert!(
        folded["args"].to_string().contains("/proc/mounts"),
        "{folded}"
    );
    assert!(meta["seen_syscalls"].to_string().contains("statfs"));

    // The validation data no longer alarms; the attack still does.
    let o = chids(&[
        "evaluate",
        "--model",
        &lab.s("model"),
        "--ns",
        &lab.s("validation"),
        "--ms",
        &lab.s("attack/a0.txt"),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let op = &table["operating_point"];
    assert_eq!(op["detected"], 1, "{table}");
    assert_eq!(op["false_alarms"], 0, "{table}");
}

#[test]
fn same_seed_same_model_whatever_the_threads() {
    let lab = Lab::new();
    let run = |out: &str, threads: &str, seed: &str| {
        let o = Command::new(env!("CARGO_BIN_EXE_chids"))
            .env("RAYON_NUM_THREADS", threads)
            .args([
                "baseline",
                "--td",
                &lab.s("train"),
                "--od",
                &lab.s(out),
                "--epochs",
                "30",
                "--seed",
                seed,
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        std::fs::read(lab.path(out).join("model.safetensors")).unwrap()
    };
    let a = run("m1", "1", "7");
    let b = run("m2", "2", "7");
    let c = run("m3", "2", "8");
    assert_eq!(a, b, "same seed, different thread count: different weights");
    assert_ne!(a, c, "different seeds gave identical weights");
}

fn assert_clean_error(o: &Output, mentions: &str) {
    assert!(!o.status.success(), "expected failure");
    let err = stderr(o);
    assert!(!err.contains("panicked"), "panic: {err}");
    assert!(
        err.contains(mentions),
        "error should mention {mentions:?}: {err}"
    );
    assert_eq!(
        err.trim().lines().filter(|l| l.contains("error")).count(),
        1,
        "one error line: {err}"
    );
}

#[test]
fn bad_inputs_are_clear_errors() {
    let lab = Lab::new();
    // Missing folder.
    let o = chids(&["baseline", "--td", &lab.s("nope"), "--od", &lab.s("m")]);
    assert_clean_error(&o, "nope");
    // Empty folder.
    std::fs::create_dir(lab.path("empty")).unwrap();
    let o = chids(&["baseline", "--td", &lab.s("empty"), "--od", &lab.s("m")]);
    assert_clean_error(&o, "no recording");
    // Truncated zip.
    let zip = lab.path("cut.zip");
    let mut bytes = b"PK\x03\x04".to_vec();
    bytes.extend([0u8; 40]);
    std::fs::write(&zip, bytes).unwrap();
    let o = chids(&["baseline", "--td", &lab.s("cut.zip"), "--od", &lab.s("m")]);
    assert_clean_error(&o, "cut.zip");
    // Unrecognised file.
    std::fs::write(lab.path("junk.bin"), [0xffu8, 0, 1, 2, 3]).unwrap();
    let o = chids(&["baseline", "--td", &lab.s("junk.bin"), "--od", &lab.s("m")]);
    assert_clean_error(&o, "junk.bin");
    // The only input has no usable event.
    // Every line is sysdig metadata noise, dropped by the compat filter.
    std::fs::write(
        lab.path("noise.txt"),
        "1 10:00:00.000000000 0 x (1) > read container=abc\n",
    )
    .unwrap();
    let o = chids(&[
        "baseline",
        "--td",
        &lab.s("noise.txt"),
        "--od",
        &lab.s("m"),
        "--compat",
    ]);
    assert_clean_error(&o, "noise.txt");
    // Bad duration.
    let o = chids(&[
        "baseline",
        "--td",
        &lab.s("train"),
        "--od",
        &lab.s("m"),
        "--window",
        "soon",
    ]);
    assert!(!o.status.success());
}

#[test]
fn malformed_lines_are_counted_and_skipped() {
    let lab = Lab::new();
    let p = lab.path("train/r0.txt");
    let mut bytes = std::fs::read(&p).unwrap();
    bytes.extend(b"this is not an event\n");
    bytes.extend(b"5 10:00:01.000000000 0 x\xff\xfe (1) > read\n");
    std::fs::write(&p, bytes).unwrap();
    let o = lab.train("model", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("r0.txt: skipped 2 malformed"), "{err}");
}

#[test]
fn damaged_or_foreign_bundles_are_refused() {
    let lab = Lab::new();
    assert!(lab.train("model", &[]).status.success());
    let eval = |m: &str| {
        chids(&[
            "evaluate",
            "--model",
            &lab.s(m),
            "--ns",
            &lab.s("normal"),
            "--ms",
            &lab.s("attack"),
        ])
    };
    // Another format version.
    let meta = std::fs::read_to_string(lab.path("model/baseline.json")).unwrap();
    std::fs::create_dir(lab.path("old")).unwrap();
    std::fs::write(
        lab.path("old/baseline.json"),
        meta.replace("\"format_version\": 1", "\"format_version\": 99"),
    )
    .unwrap();
    std::fs::copy(
        lab.path("model/model.safetensors"),
        lab.path("old/model.safetensors"),
    )
    .unwrap();
    assert_clean_error(&eval("old"), "version");
    // Damaged weights.
    std::fs::create_dir(lab.path("bad")).unwrap();
    std::fs::write(lab.path("bad/baseline.json"), &meta).unwrap();
    let w = std::fs::read(lab.path("model/model.safetensors")).unwrap();
    std::fs::write(lab.path("bad/model.safetensors"), &w[..w.len() / 2]).unwrap();
    assert_clean_error(&eval("bad"), "model.safetensors");
    // A JSON file that is not ours.
    std::fs::create_dir(lab.path("foreign")).unwrap();
    std::fs::write(lab.path("foreign/baseline.json"), "{\"hello\": 1}").unwrap();
    assert_clean_error(&eval("foreign"), "not a chids baseline");
}

#[test]
#[ignore = "needs CHIDS_SHARED (shared data)"]
fn container_filter_on_a_real_capture() {
    let shared = common::shared();
    let scap =
        Path::new(&shared).join("data/scap/troubleshooting-docker-kubernetes-sysdig/capture.scap");
    assert!(scap.exists(), "missing {}", scap.display());
    let dump = |extra: &[&str]| -> Vec<serde_json::Value> {
        let mut args = vec!["dump", "--format", "json", scap.to_str().unwrap()];
        args.extend(extra);
        let o = chids(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let all = dump(&[]);
    let one = dump(&["--container", "de7157"]);
    assert!(
        !one.is_empty() && one.len() < all.len() / 2,
        "{} of {}",
        one.len(),
        all.len()
    );
    assert!(one.iter().all(|e| e["container"]
        .as_str()
        .is_some_and(|c| c.starts_with("de7157"))));
    let expected = all
        .iter()
        .filter(|e| {
            e["container"]
                .as_str()
                .is_some_and(|c| c.starts_with("de7157"))
        })
        .count();
    assert_eq!(one.len(), expected);
    // The pipeline sees the same subset.
    let lab = Lab::new();
    let o = chids(&[
        "baseline",
        "--td",
        scap.to_str().unwrap(),
        "--od",
        &lab.s("m"),
        "--container",
        "de7157",
        "--epochs",
        "5",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(lab.path("m/baseline.json")).unwrap())
            .unwrap();
    let full = chids(&[
        "baseline",
        "--td",
        scap.to_str().unwrap(),
        "--od",
        &lab.s("f"),
        "--epochs",
        "5",
    ]);
    assert!(full.status.success());
    let full_meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(lab.path("f/baseline.json")).unwrap())
            .unwrap();
    assert!(meta["max_freq"].as_u64() < full_meta["max_freq"].as_u64());
}

#[test]
#[ignore = "needs CHIDS_SHARED (shared data)"]
fn a_closed_pipe_ends_output_quietly() {
    let shared = common::shared();
    use std::io::BufRead;
    let scap =
        Path::new(&shared).join("data/scap/troubleshooting-docker-kubernetes-sysdig/capture.scap");
    let mut child = Command::new(env!("CARGO_BIN_EXE_chids"))
        .args(["dump", scap.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.contains("switch") || first.contains(' '), "{first}");
    // The reader is gone now (stdout dropped): chids must stop without a panic.
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
}

/// Live capture is a build feature: a build without it says how to get
/// `record`, `monitor` and `agent` instead of "unrecognized subcommand";
/// a build with it knows `agent status`.
#[test]
fn live_commands_say_how_to_get_them() {
    for cmd in ["record", "monitor", "agent"] {
        let o = chids(&[cmd, "--help"]);
        if cfg!(feature = "live") {
            assert!(o.status.success(), "chids {cmd} --help: {}", stderr(&o));
        } else {
            assert!(!o.status.success());
            let e = stderr(&o);
            assert!(e.contains("--features live"), "chids {cmd}: {e}");
            assert!(e.contains(&format!("chids {cmd}")), "{e}");
            assert_eq!(e.lines().count(), 1, "{e}");
        }
    }
    if cfg!(feature = "live") {
        let dir = tempfile::tempdir().unwrap();
        let o = chids(&[
            "agent",
            "status",
            "--state-dir",
            dir.path().to_str().unwrap(),
        ]);
        assert!(!o.status.success());
        assert_clean_error(&o, "status.json");
    }
}

#[test]
fn model_folder_inside_training_folder_and_attack_labels_are_warned_about() {
    let lab = Lab::new();
    // The model written inside the training folder: the next run skips it.
    let o = lab.train("train/model", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = lab.train("train/model", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("a chids model folder"),
        "{}",
        stderr(&o)
    );
    // Training data labelled as an attack (LID-DS `exploit: true`).
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data");
    let o = chids(&[
        "baseline",
        "--training",
        &shipped.join("training").display().to_string(),
        &shipped
            .join("test/normal_and_attack/attack_shell.zip")
            .display()
            .to_string(),
        "--out",
        &lab.s("m2"),
        "--epochs",
        "5",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("attack_shell.zip: labelled as an attack"),
        "{}",
        stderr(&o)
    );
}

/// `chids agent --cgroup-root` that is missing, or a folder not on cgroup
/// v2, is a clear error at start (it used to start an agent that never
/// found a container). Checked before anything is captured, so it needs
/// neither root nor BPF.
#[cfg(feature = "live")]
#[test]
fn agent_refuses_a_cgroup_root_that_is_not_one() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let plain = dir.path().join("plain");
    std::fs::create_dir(&plain).unwrap();
    for (root, why) in [
        (dir.path().join("nonexistent"), "No such file or directory"),
        (plain.clone(), "not on a cgroup v2 file system"),
    ] {
        let o = chids(&[
            "agent",
            "--state-dir",
            state.to_str().unwrap(),
            "--cgroup-root",
            root.to_str().unwrap(),
            "--duration",
            "20s",
        ]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert_clean_error(&o, &format!("--cgroup-root {}: {why}", root.display()));
    }
}
