//! Calibrating on the training recordings themselves (no validation data,
//! too few recordings to hold any out, or compat mode) scores the windows
//! the second training pass kept instead of reading the files again. This
//! checks that it sets exactly what scoring them from a fresh read sets.
//! Needs `CHIDS_SHARED`.

mod common;

use chids_core::features::Settings;
use chids_core::mode::Mode;
use chids_core::source::{discover::open, EventSource, ReadOptions};
use chids_detect::model::{default_thetas, TrainConfig};
use chids_detect::train::{set_operating_threshold, train_calibrated, TrainOptions};

fn check(mode: Mode, files: &[&str]) {
    let shared = common::shared();
    let recordings: Vec<Box<dyn EventSource>> = files
        .iter()
        .map(|f| open(&common::shared_file(&shared, &format!("data/scap/{f}"))).unwrap())
        .collect();
    let options = TrainOptions {
        settings: Settings::for_mode(mode, 1_000_000_000),
        model: TrainConfig {
            epochs: 5,
            ..TrainConfig::default()
        },
        thetas: default_thetas(),
        read: ReadOptions {
            compat_line_filter: mode.line_filter(),
            container: None,
        },
    };
    let budget = 1.0;
    let trained = train_calibrated(&recordings, None, &options, budget, &|_| {}).unwrap();
    let mut again = trained.bundle.clone();
    again.operating_threshold = None;
    again.calibration = None;
    let refs: Vec<&dyn EventSource> = recordings.iter().map(|r| r.as_ref()).collect();
    let warnings = set_operating_threshold(
        &mut again,
        &refs,
        "training",
        budget,
        trained.bundle.training.max_error,
        &options.read,
        &|_| {},
    )
    .unwrap();
    assert!(trained.bundle.calibration.is_some());
    assert_eq!(again.calibration, trained.bundle.calibration, "{mode:?}");
    assert_eq!(
        again.operating_threshold.map(f64::to_bits),
        trained.bundle.operating_threshold.map(f64::to_bits)
    );
    assert!(
        trained.warnings.ends_with(&warnings),
        "{:?} vs {warnings:?}",
        trained.warnings
    );
}

#[test]
#[ignore = "needs CHIDS_SHARED (shared data)"]
fn compat_calibration_from_kept_windows_matches_a_fresh_read() {
    // Split A's training files, plus two without a system call (their
    // warnings must come out the same too).
    check(
        Mode::Compat,
        &[
            "sysdig-opensource-examples/example0_nginx.scap",
            "sysdig-opensource-examples/example2_502error.scap",
            "sysdig-opensource-examples/example4_example4-1.scap",
            "sysdig-opensource-examples/example5_httpd.scap",
            "troubleshooting-docker-kubernetes-sysdig/capture.scap",
            "falco/empty.scap",
            "falco/psp_privileged.scap",
        ],
    );
}

#[test]
#[ignore = "needs CHIDS_SHARED (shared data)"]
fn modern_calibration_on_two_recordings_matches_a_fresh_read() {
    // Two recordings: none held out, so modern mode calibrates on them.
    check(
        Mode::Modern,
        &[
            "sysdig-opensource-examples/example2_502error.scap",
            "troubleshooting-docker-kubernetes-sysdig/capture.scap",
        ],
    );
}
