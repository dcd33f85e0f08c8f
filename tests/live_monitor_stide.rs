//! `chids monitor --model STIDE_BUNDLE -- cmd`, end to end through the
//! command line: record a small shell loop three times, train STIDE on the
//! recordings (`baseline --detector stide`), then monitor a run of the same
//! loop that midway runs programs the loop never ran. The monitor must
//! alert, in the alert form every detector shares: `kind` anomaly, `score`
//! = error / threshold of at least 1, reasons that are not empty.
//!
//! Robust by design: the new programs give sequences the database cannot
//! hold whatever the timing, and STIDE's threshold comes from the held-out
//! normal run, which the loop alone makes.
//!
//! Needs root and kernel BTF: `#[ignore]`d; run with `--include-ignored`,
//! and then it fails, saying why, where live capture cannot run.
#![cfg(feature = "live")]

use std::path::Path;
use std::process::Command;

/// The normal loop; with `$NEW` set it also, midway, runs programs the
/// training runs never ran.
const LOOP: &str = r#"
i=0
while [ $i -lt 30 ]; do
  cat /etc/hostname > /dev/null; sleep 0.1; i=$((i+1))
  if [ -n "$NEW" ] && [ $i -eq 15 ]; then
    ls -la / > /dev/null; id > /dev/null; uname -a > /dev/null; cat /etc/shadow > /dev/null
  fi
done
"#;

fn chids(args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_chids"))
        .args(args)
        .output()
        .expect("run chids");
    assert!(
        out.status.success(),
        "chids {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn shell_loop(new: bool) -> Vec<String> {
    vec![
        "/usr/bin/env".into(),
        format!("NEW={}", if new { "1" } else { "" }),
        "/bin/sh".into(),
        "-c".into(),
        LOOP.into(),
    ]
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
#[ignore = "needs root + eBPF"]
fn monitor_with_a_stide_bundle_alerts_on_new_programs() {
    chids_live::capture::check_environment().expect("live capture environment");
    let tmp = tempfile::tempdir().unwrap();
    let recordings = tmp.path().join("normal");
    std::fs::create_dir(&recordings).unwrap();
    for i in 0..3 {
        let out = recordings.join(format!("normal_{i}.zip"));
        let mut args = vec!["record", "--out", path(&out), "--"];
        let argv = shell_loop(false);
        args.extend(argv.iter().map(String::as_str));
        chids(&args);
    }
    let model = tmp.path().join("stide");
    chids(&[
        "baseline",
        "--detector",
        "stide",
        "--training",
        path(&recordings),
        "--out",
        path(&model),
    ]);

    let alerts = tmp.path().join("alerts.jsonl");
    let mut args = vec![
        "monitor",
        "--model",
        path(&model),
        "--alerts",
        path(&alerts),
        "--",
    ];
    let argv = shell_loop(true);
    args.extend(argv.iter().map(String::as_str));
    chids(&args);

    let text = std::fs::read_to_string(&alerts).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    eprintln!("{text}");
    assert!(!lines.is_empty(), "the new programs raised no alert");
    for a in &lines {
        assert_eq!(a["kind"], "anomaly", "{a}");
        assert!(a["score"].as_f64().unwrap() >= 1.0, "{a}");
        let reasons = ["unseen_syscalls", "unseen_args", "rising"]
            .iter()
            .map(|k| a[k].as_array().map_or(0, Vec::len))
            .sum::<usize>();
        assert!(reasons > 0, "an alert without reasons: {a}");
    }
    // STIDE names the sequences that mismatched.
    assert!(
        lines.iter().any(|a| a["rising"]
            .as_array()
            .is_some_and(|r| r.iter().any(|x| x["what"].as_str().unwrap().contains("->")))),
        "{text}"
    );
}
