//! End to end on a tiny LID-DS 2021 style data set: both detectors trained
//! with `chids baseline`, compared by `chids evaluate --report`.

use std::io::Write;
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

/// Recordings start here (unix seconds), as LID-DS 2021's do.
const T0_S: u64 = 1_600_000_000;

/// `.sc` lines of a web server looping over a few calls on two threads
/// for `seconds`; with `exploit_at` (seconds after the start), a shell
/// appears then and runs calls the server never makes.
fn sc_text(seconds: u64, seed: u64, exploit_at: Option<f64>) -> String {
    let calls = ["read", "write", "epoll_wait", "close", "futex"];
    let mut s = String::new();
    let mut line = |ts: u64, proc_: &str, tid: u64, call: &str, args: &str| {
        s += &format!("{ts} 33 {tid} {proc_} {tid} {call} > {args}\n");
        s += &format!("{} 33 {tid} {proc_} {tid} {call} < res=0\n", ts + 1_000);
    };
    for ms in (0..seconds * 1000).step_by(5) {
        let ts = T0_S * 1_000_000_000 + ms * 1_000_000 + seed * 10_000;
        let tid = 100 + (ms / 5) % 2;
        let call = calls[((ms / 5 + seed) % 5) as usize];
        line(ts, "nginx", tid, call, "fd=3");
        if ms % 500 == 0 {
            line(
                ts + 2_000,
                "nginx",
                tid,
                "openat",
                "fd=5(<f>/var/www/index.html) dirfd=-100(AT_FDCWD) name=/var/www/index.html flags=1(O_RDONLY) mode=0",
            );
        }
        if let Some(at) = exploit_at {
            let at_ms = (at * 1000.0) as u64;
            if ms >= at_ms && ms < at_ms + 1500 && ms % 20 == 0 {
                let shell = [
                    ("execve", "filename=/bin/sh"),
                    ("ptrace", "request=PTRACE_ATTACH"),
                    (
                        "openat",
                        "fd=4 dirfd=-100 name=/etc/shadow flags=1(O_RDONLY) mode=0",
                    ),
                    ("mknod", "path=/tmp/x"),
                    ("socket", "domain=2"),
                ];
                // Three rounds per burst: more shell sequences in a row
                // than STIDE's locality frame holds.
                for (i, (c, a)) in shell.iter().cycle().take(15).enumerate() {
                    line(ts + 3_000 + i as u64 * 10_000, "sh", 666, c, a);
                }
            }
        }
    }
    s
}

fn write_zip(path: &Path, name: &str, sc: &str, exploit_at: Option<f64>) {
    let meta = match exploit_at {
        Some(at) => format!(
            r#"{{"exploit": true, "time": {{"exploit": [{{"absolute": {}}}]}}}}"#,
            T0_S as f64 + at
        ),
        None => r#"{"exploit": false, "time": {"exploit": []}}"#.to_string(),
    };
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let opts = zip::write::SimpleFileOptions::default();
    zip.start_file(format!("{name}.sc"), opts).unwrap();
    zip.write_all(sc.as_bytes()).unwrap();
    zip.start_file(format!("{name}.json"), opts).unwrap();
    zip.write_all(meta.as_bytes()).unwrap();
    zip.finish().unwrap();
}

struct Lab {
    dir: tempfile::TempDir,
}

impl Lab {
    fn new() -> Lab {
        let lab = Lab {
            dir: tempfile::tempdir().unwrap(),
        };
        for d in ["training", "test/normal", "test/normal_and_attack"] {
            std::fs::create_dir_all(lab.path(d)).unwrap();
        }
        for i in 0..5 {
            let name = format!("train_{i}");
            write_zip(
                &lab.path(&format!("training/{name}.zip")),
                &name,
                &sc_text(6, i, None),
                None,
            );
        }
        for i in 0..2 {
            let name = format!("normal_{i}");
            write_zip(
                &lab.path(&format!("test/normal/{name}.zip")),
                &name,
                &sc_text(6, 10 + i, None),
                None,
            );
        }
        for (i, at) in [(0, 3.5), (1, 2.25)] {
            let name = format!("attack_{i}");
            write_zip(
                &lab.path(&format!("test/normal_and_attack/{name}.zip")),
                &name,
                &sc_text(6, 20 + i, Some(at)),
                Some(at),
            );
        }
        lab
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn s(&self, rel: &str) -> String {
        self.path(rel).display().to_string()
    }

    fn evaluate(&self, models: &[&str], extra: &[&str]) -> Output {
        let mut args: Vec<String> = vec!["evaluate".into()];
        for m in models {
            args.push("--model".into());
            args.push(self.s(m));
        }
        args.extend([
            "--ns".into(),
            self.s("test/normal"),
            "--ms".into(),
            self.s("test/normal_and_attack"),
        ]);
        args.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        chids(&refs)
    }
}

fn is_png(path: &Path) -> bool {
    let bytes = std::fs::read(path).unwrap_or_default();
    bytes.len() > 1000 && bytes.starts_with(b"\x89PNG\r\n\x1a\n")
}

#[test]
fn both_detectors_side_by_side_in_the_report() {
    let lab = Lab::new();
    train_chids_and_stide(&lab);
    vectors_take_the_stide_bundle(&lab);
    let o = lab.evaluate(&["m_chids", "m_stide"], &["--report", &lab.s("report")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("LID-DS metrics"), "{out}");
    assert!(out.contains("(stide) =="), "{out}");
    let md = report_markdown_has_both_side_by_side(&lab);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(lab.path("report/report.json")).unwrap()).unwrap();
    assert_eq!(report["inputs"]["attack_with_exploit_time"], 2);
    assert_eq!(report["inputs"]["normal_usable"], 2);
    assert!(md.contains("At the operating point"), "{md}");
    report_scores_both_models_per_window(&report);
    report_plots_are_pngs(&lab, &report);
    same_inputs_give_the_same_report(&lab);
    plot_recording_picks_the_recording_and_names_an_unknown_one(&lab);
    if std::env::var_os("CHIDS_KEEP_REPORT_LAB").is_some() {
        // For looking at the report and plots by hand.
        eprintln!("lab kept in {}", lab.dir.keep().display());
    }
}

/// `baseline` trains the default detector and STIDE, whose bundle records
/// its sequence length and locality frame.
fn train_chids_and_stide(lab: &Lab) {
    let o = chids(&[
        "baseline",
        "--td",
        &lab.s("training"),
        "--od",
        &lab.s("m_chids"),
        "--epochs",
        "20",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = chids(&[
        "baseline",
        "--detector",
        "stide",
        "--td",
        &lab.s("training"),
        "--od",
        &lab.s("m_stide"),
        "--stide-length",
        "4",
        "--stide-window",
        "10",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("held-out recordings    1"), "{out}");
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(lab.path("m_stide/baseline.json")).unwrap()).unwrap();
    assert_eq!(meta["detector"], "stide");
    assert_eq!(meta["sequence_length"], 4);
    assert_eq!(meta["locality_frame"], 10);
    assert!(lab.path("m_stide/stide_sequences.json").exists());
}

/// `vectors` takes any detector's bundle (the Detector trait): STIDE's
/// windows with its mismatch share as the score.
fn vectors_take_the_stide_bundle(lab: &Lab) {
    let o = chids(&[
        "vectors",
        "--model",
        &lab.s("m_stide"),
        &lab.s("test/normal"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(table.starts_with("recording"), "{table}");
    assert!(table.lines().count() > 1, "{table}");
}

/// report.md has every section, for both detectors; returned for more checks.
fn report_markdown_has_both_side_by_side(lab: &Lab) -> String {
    let md = std::fs::read_to_string(lab.path("report/report.md")).unwrap();
    for needle in [
        "## Side by side",
        "(chids)",
        "(stide)",
        "### Recording level (the reference's table)",
        "### LID-DS metrics",
        "Window-level ROC AUC",
        "| CFA |",
        "![Window-level ROC](roc.png)",
        "2 with an exploit time",
    ] {
        assert!(md.contains(needle), "report.md lacks {needle:?}:\n{md}");
    }
    md
}

/// report.json's models: both detectors, their tables, and window counts
/// that follow from the lab's exploit times; STIDE catches both attacks.
fn report_scores_both_models_per_window(report: &serde_json::Value) {
    let models = report["models"].as_array().unwrap();
    assert_eq!(models.len(), 2);
    assert_eq!(models[0]["detector"], "chids");
    assert_eq!(models[1]["detector"], "stide");
    for m in models {
        assert_eq!(m["rows"].as_array().unwrap().len(), 10);
        let lidds = m["lidds"].as_array().unwrap();
        assert_eq!(lidds.len(), 10);
        assert_eq!(lidds[0]["attacks"], 2);
        let auc = m["roc"]["auc"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&auc), "{auc}");
        // Windows: 2 attacks × 6 s, of which 3.5 + 2.25 s before the
        // exploits → windows [0,1)..[5,6): 3 + 2 before, 3 + 4 after.
        // The first window of every recording is start-up, not evidence.
        assert_eq!(m["roc"]["positives"], 7);
        assert_eq!(m["roc"]["negatives"], 2 * 5 + 3);
    }
    // The shell's calls are sequences STIDE never saw: both attacks are
    // caught (theta 1.0), in the window of the exploit.
    let stide = &models[1]["lidds"][4];
    assert_eq!(stide["theta"], 1.0);
    assert_eq!(stide["detected"], 2);
    assert!(stide["latency_max_s"].as_f64().unwrap() <= 1.0);
    assert!(models[1]["roc"]["auc"].as_f64().unwrap() > 0.6);
}

/// The ROC plot and one score plot per model, named in report.json.
fn report_plots_are_pngs(lab: &Lab, report: &serde_json::Value) {
    let plots = &report["plots"];
    assert_eq!(plots["roc"], "roc.png");
    let scores = plots["scores"].as_array().unwrap();
    assert_eq!(scores.len(), 2);
    assert_eq!(scores[0]["recording"], "attack_0");
    for f in ["roc.png", "scores-1-chids.png", "scores-2-stide.png"] {
        assert!(
            is_png(&lab.path(&format!("report/{f}"))),
            "{f} is not a PNG"
        );
    }
}

/// Same inputs, same report.
fn same_inputs_give_the_same_report(lab: &Lab) {
    let o = lab.evaluate(&["m_chids", "m_stide"], &["--report", &lab.s("report2")]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(lab.path("report/report.json")).unwrap(),
        std::fs::read(lab.path("report2/report.json")).unwrap()
    );
}

/// --plot-recording picks the recording; an unknown one is named.
fn plot_recording_picks_the_recording_and_names_an_unknown_one(lab: &Lab) {
    let o = lab.evaluate(
        &["m_stide"],
        &[
            "--report",
            &lab.s("r3"),
            "--plot-recording",
            "attack_1",
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["lidds"][0]["detected"], 2);
    let r3: serde_json::Value =
        serde_json::from_slice(&std::fs::read(lab.path("r3/report.json")).unwrap()).unwrap();
    assert_eq!(r3["plots"]["scores"][0]["recording"], "attack_1");
    let o = lab.evaluate(
        &["m_stide"],
        &["--report", &lab.s("r4"), "--plot-recording", "nope"],
    );
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("\"nope\"") && err.contains("attack_0"),
        "{err}"
    );
}
