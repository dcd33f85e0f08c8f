//! `chids monitor --container ID` follows the container across a restart:
//! the runtime makes it a new cgroup (a new cgroup id), and the windows go
//! on being scored from the new one.
//!
//! Needs root, kernel BTF, podman + runc and busybox-static; run with
//! `--include-ignored`.
#![cfg(feature = "live")]

mod agent_support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use agent_support::*;
use chids_core::features::Settings;
use chids_detect::model::TrainConfig;
use chids_detect::train::{train, TrainOptions};
use chids_live::{self as live, MonitorOptions, MonitorUpdate, RecordOptions, Target};

const LOOP: &str = "while true; do cat /etc/passwd > /dev/null; sleep 0.1; done";

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

#[test]
#[ignore = "needs root, podman, nats-server"]
fn monitor_follows_a_restarted_container() {
    if let Some(why) = skip_reason() {
        eprintln!("skipped: {why}");
        return;
    }
    let p = prefix();
    let tmp = tempfile::tempdir().unwrap();
    let img = Image::busybox(&format!("localhost/{p}-mon:1"), &[]);
    let c = Container::run(&format!("{p}-mon"), &img.name, LOOP);
    wait_for("the container's cgroup", Duration::from_secs(20), || {
        (!c.cgroups().is_empty()).then_some(())
    });

    // A model of the container, from a short recording of it.
    let rec = tmp.path().join("normal.zip");
    live::record(
        RecordOptions {
            target: Target::Container(c.id.clone()),
            out: rec.clone(),
            duration: Some(Duration::from_secs(4)),
            exploit_at: None,
            marker_file: None,
            force: false,
        },
        &mut |_| {},
    )
    .unwrap_or_else(|e| {
        panic!(
            "record {}: {e}\n{}\ncgroups: {:?}",
            c.id,
            podman_ok(&["ps", "-a"]),
            c.cgroups()
        )
    });
    let sources = chids_core::source::discover(&[rec]).unwrap().recordings;
    let options = TrainOptions {
        settings: Settings::default(),
        model: TrainConfig {
            epochs: 20,
            ..TrainConfig::default()
        },
        thetas: chids_detect::model::default_thetas(),
        read: Default::default(),
    };
    let model = tmp.path().join("model");
    train(&sources, &options, &|_| {})
        .unwrap()
        .bundle
        .save(&model)
        .unwrap();

    // Monitor in a thread; restart the container meanwhile.
    let restarted_at = Arc::new(AtomicU64::new(u64::MAX));
    let after_restart = Arc::new(AtomicU64::new(0));
    let (r, a) = (Arc::clone(&restarted_at), Arc::clone(&after_restart));
    let id = c.id.clone();
    let monitor = std::thread::spawn(move || {
        live::monitor(
            MonitorOptions {
                target: Target::Container(id),
                model_dir: model,
                theta: Some(1.0),
                threshold: None,
                windows: live::WindowPath::Events,
                alerts: None,
                alerts_follow_symlink: false,
                metrics: None,
                duration: Some(Duration::from_secs(40)),
            },
            &mut |u| {
                if let MonitorUpdate::Window(w) = u {
                    if w.events > 0 && w.start_ns > r.load(Ordering::SeqCst) {
                        a.fetch_add(1, Ordering::SeqCst);
                    }
                }
            },
        )
        .unwrap()
    });
    std::thread::sleep(Duration::from_secs(4));
    let before = c.cgroups();
    podman_ok(&["stop", "-t", "0", &c.name]);
    podman_ok(&["start", &c.name]);
    restarted_at.store(now_ns(), Ordering::SeqCst);
    assert_ne!(before, Vec::<std::path::PathBuf>::new());
    wait_for(
        "windows with events from the new cgroup",
        Duration::from_secs(30),
        || (after_restart.load(Ordering::SeqCst) >= 3).then_some(()),
    );
    live::request_stop();
    let summary = monitor.join().unwrap();
    live::reset_stop();
    assert!(summary.windows > 3);
}
