//! Modern mode's scoring against the reference's on the shipped example
//! recordings: a pure call-rate increase (the shape of a brute-force
//! attack) is invisible to the reference's scoring and caught by ours.

use std::io::{Read, Write};
use std::path::Path;

use chids_core::features::Settings;
use chids_core::mode::Mode;
use chids_core::source::{discover, ReadOptions};
use chids_detect::model::{default_thetas, TrainConfig};
use chids_detect::scored::score_all;
use chids_detect::train::{train, TrainOptions};

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data");

/// Copies a LID-DS 2021 recording, tripling every event from its midpoint
/// on (each copy 1 ns later), and marks the midpoint as the exploit.
fn tripled_rate(from: &Path, to: &Path) {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(from).unwrap()).unwrap();
    let (mut sc, mut name) = (String::new(), String::new());
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        if f.name().ends_with(".sc") {
            name = f.name().trim_end_matches(".sc").to_string();
            f.read_to_string(&mut sc).unwrap();
        }
    }
    let ts = |l: &str| l.split(' ').next().unwrap().parse::<u64>().unwrap();
    let lines: Vec<&str> = sc.lines().collect();
    let mid = (ts(lines[0]) + ts(lines[lines.len() - 1])) / 2;
    let mut out = String::new();
    for l in &lines {
        out.push_str(l);
        out.push('\n');
        let t = ts(l);
        if t >= mid {
            let rest = l.split_once(' ').unwrap().1;
            for k in 1..=2 {
                out.push_str(&format!("{} {rest}\n", t + k));
            }
        }
    }
    let json = format!(
        "{{\"exploit\": true, \"time\": {{\"exploit\": [{{\"absolute\": {}.{:09}}}]}}}}",
        mid / 1_000_000_000,
        mid % 1_000_000_000
    );
    let mut w = zip::ZipWriter::new(std::fs::File::create(to).unwrap());
    let opts = zip::write::SimpleFileOptions::default();
    w.start_file(format!("{name}.sc"), opts).unwrap();
    w.write_all(out.as_bytes()).unwrap();
    w.start_file(format!("{name}.json"), opts).unwrap();
    w.write_all(json.as_bytes()).unwrap();
    w.finish().unwrap();
}

/// (attack flagged, normal recordings flagged) at theta 1.0.
fn run(mode: Mode, attack_dir: &Path) -> (bool, usize) {
    let training = discover(&[Path::new(EXAMPLES).join("training")])
        .unwrap()
        .recordings;
    let normal = discover(&[Path::new(EXAMPLES).join("test/normal")])
        .unwrap()
        .recordings;
    let attack = discover(&[attack_dir.to_path_buf()]).unwrap().recordings;
    let read = ReadOptions {
        compat_line_filter: mode.line_filter(),
        container: None,
    };
    let options = TrainOptions {
        settings: Settings::for_mode(mode, 1_000_000_000),
        model: TrainConfig::default(),
        thetas: default_thetas(),
        read: read.clone(),
    };
    let bundle = train(&training, &options, &|_| {}).unwrap().bundle;
    let threshold = bundle.threshold(1.0);
    let n = score_all(&normal, &bundle, &read, false, "", &|_| {}).unwrap();
    let a = score_all(&attack, &bundle, &read, false, "", &|_| {}).unwrap();
    (
        a[0].flagged(threshold),
        n.iter().filter(|r| r.flagged(threshold)).count(),
    )
}

#[test]
fn modern_catches_a_rate_increase_the_reference_misses() {
    let dir = tempfile::tempdir().unwrap();
    tripled_rate(
        &Path::new(EXAMPLES).join("test/normal/normal_test_1.zip"),
        &dir.path().join("rate_x3.zip"),
    );
    let (modern_detects, modern_false_alarms) = run(Mode::Modern, dir.path());
    assert!(modern_detects, "modern mode misses a tripled call rate");
    assert_eq!(
        modern_false_alarms, 0,
        "modern mode raises false alarms on normal recordings"
    );
    let (compat_detects, _) = run(Mode::Compat, dir.path());
    assert!(
        !compat_detects,
        "the reference's scoring now sees a pure rate increase: update the README claim"
    );
}
