//! `chids monitor --container ID` follows the container across a restart:
//! the runtime makes it a new cgroup (a new cgroup id), and the windows go
//! on being scored from the new one, each window once: under kernel
//! windows too, where the aggregation moves to the new cgroup (it used to
//! stay on the old one while the new one got per-event capture as well,
//! so every window after a restart was counted twice).
//!
//! Needs root, kernel BTF, podman + runc and busybox-static; run with
//! `--include-ignored`.
#![cfg(feature = "live")]

mod agent_support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use agent_support::*;
use chids_core::features::Settings;
use chids_core::ssg::EdgeOrder;
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
#[ignore = "needs root, podman"]
fn monitor_follows_a_restarted_container() {
    follow_a_restart(live::WindowPath::Events);
}

#[test]
#[ignore = "needs root, podman"]
fn kernel_windows_follow_a_restarted_container_without_double_counting() {
    follow_a_restart(live::WindowPath::Kernel);
}

/// A window as `monitor` reported it.
#[derive(Clone, Copy, Debug)]
struct Seen {
    start_ns: u64,
    run_length: u64,
    events: usize,
}

fn follow_a_restart(windows: live::WindowPath) {
    if let Some(why) = skip_reason() {
        panic!("missing prerequisite: {why}");
    }
    let p = prefix();
    let tmp = tempfile::tempdir().unwrap();
    let tag = match windows {
        live::WindowPath::Kernel => "kwin",
        _ => "ewin",
    };
    let img = Image::busybox(&format!("localhost/{p}-{tag}:1"), &[]);
    let c = Container::run(&format!("{p}-{tag}"), &img.name, LOOP);
    wait_for("the container's cgroup", Duration::from_secs(20), || {
        (!c.cgroups().is_empty()).then_some(())
    });

    // A model of the container, from a short recording of it; per-thread
    // edges, which kernel windows need.
    let settings = Settings {
        edges: EdgeOrder::Thread,
        ..Settings::default()
    };
    let model = train_model(&c, settings, tmp.path());

    // Monitor in a thread; restart the container meanwhile.
    let restarted_at = Arc::new(AtomicU64::new(u64::MAX));
    let after_restart = Arc::new(AtomicU64::new(0));
    let seen = Arc::new(Mutex::new(Vec::<Seen>::new()));
    let (r, a, all) = (
        Arc::clone(&restarted_at),
        Arc::clone(&after_restart),
        Arc::clone(&seen),
    );
    let id = c.id.clone();
    let stop = live::StopToken::new();
    let stop_monitor = stop.clone();
    let monitor = std::thread::spawn(move || {
        live::monitor(
            MonitorOptions {
                target: Target::Container(id),
                model_dir: model,
                theta: Some(1.0),
                threshold: None,
                windows,
                alerts: None,
                alerts_follow_symlink: false,
                metrics: None,
                duration: Some(Duration::from_secs(60)),
                stop: stop_monitor,
            },
            &mut |u| {
                if let MonitorUpdate::Window(w) = u {
                    all.lock().unwrap().push(Seen {
                        start_ns: w.start_ns,
                        run_length: w.run_length,
                        events: w.events,
                    });
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
    stop.stop();
    let summary = monitor.join().unwrap();
    assert_eq!(
        summary.kernel_windows,
        windows == live::WindowPath::Kernel,
        "{summary:?}"
    );
    assert!(summary.windows > 3);

    let seen = seen.lock().unwrap().clone();
    assert_each_stretch_counted_once(seen, settings.window_ns);
}

/// Each stretch of time is one window: sorted by start, a window may
/// overlap the one before it only where the old cgroup's last window meets
/// the new cgroup's first (the two streams start on their own grids).
/// Counted twice, every window after the restart would overlap.
fn assert_each_stretch_counted_once(mut seen: Vec<Seen>, window_ns: u64) {
    seen.sort_by_key(|w| w.start_ns);
    let overlaps: Vec<(Seen, Seen)> = seen
        .windows(2)
        .filter(|p| p[1].start_ns < p[0].start_ns + p[0].run_length * window_ns)
        .map(|p| (p[0], p[1]))
        .collect();
    assert!(
        overlaps.len() <= 1,
        "{} overlapping windows: {:?}",
        overlaps.len(),
        &overlaps[..overlaps.len().min(5)]
    );
    let with_events = seen.iter().filter(|w| w.events > 0).count() as u64;
    assert!(with_events >= 3, "{seen:?}");
}

/// Records the running container for 4 s and trains a model on it.
fn train_model(c: &Container, settings: Settings, dir: &std::path::Path) -> std::path::PathBuf {
    let rec = dir.join("normal.zip");
    live::record(
        RecordOptions {
            target: Target::Container(c.id.clone()),
            out: rec.clone(),
            duration: Some(Duration::from_secs(4)),
            exploit_at: None,
            marker_file: None,
            force: false,
            stop: Default::default(),
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
        settings,
        model: TrainConfig {
            epochs: 20,
            ..TrainConfig::default()
        },
        thetas: chids_detect::model::default_thetas(),
        read: Default::default(),
    };
    let model = dir.join("model");
    train(&sources, &options, &|_| {})
        .unwrap()
        .bundle
        .save(&model)
        .unwrap();
    model
}
