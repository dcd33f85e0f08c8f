//! SIGTERM during `record`: the recording is finished cleanly (a valid zip
//! with everything captured so far) and the command is stopped. Its own
//! test binary, because signal handlers are process-wide.
#![cfg(feature = "live")]

use std::io::Read;
use std::process::Command;
use std::time::Duration;

use chids_live::{self as live, RecordOptions, StopReason, Target};

#[test]
#[ignore = "needs root + eBPF"]
fn sigterm_finishes_the_recording() {
    live::capture::check_environment().expect("live capture environment");
    let stop = live::StopToken::on_signals().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("stopped.zip");
    let me = std::process::id().to_string();
    // A real SIGTERM to this process, 1.5 s in.
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        Command::new("kill").args(["-TERM", &me]).status().unwrap()
    });
    let summary = live::record(
        RecordOptions {
            target: Target::Command(vec![
                "sh".into(),
                "-c".into(),
                "while :; do cat /etc/hostname > /dev/null; sleep 0.05; done".into(),
            ]),
            out: out.clone(),
            duration: Some(Duration::from_secs(30)),
            exploit_at: None,
            marker_file: None,
            force: false,
            stop,
        },
        &mut |_| {},
    )
    .unwrap();
    assert!(killer.join().unwrap().success());
    assert_eq!(summary.stopped_by, StopReason::Signal);
    assert!(summary.elapsed < Duration::from_secs(10), "{summary:?}");
    // The endless command was stopped with the recording.
    assert!(summary.command_status.is_some(), "{summary:?}");
    assert!(!summary.cgroup.exists(), "the command's cgroup was removed");

    let mut z = zip::ZipArchive::new(std::fs::File::open(&out).unwrap()).unwrap();
    let mut sc = String::new();
    z.by_name("stopped.sc")
        .unwrap()
        .read_to_string(&mut sc)
        .unwrap();
    assert_eq!(sc.lines().count() as u64, summary.events);
    assert!(sc.contains("name=/etc/hostname"));
    assert!(z.by_name("stopped.json").is_ok());
    assert!(!tmp.path().join("stopped.sc.partial").exists());
}
