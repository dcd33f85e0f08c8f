//! Compat mode against the reference's own numbers (`../shared/parity`):
//! seen syscalls, seen args, max_freq, and every anomaly vector of every
//! recording of every split.
mod common;

use std::path::{Path, PathBuf};

use chids_core::event::Event;
use chids_core::features::{
    read_recording, FeatureStream, RecordingFeatures, Settings, TrainingElements, WindowFeatures,
};
use chids_core::mode::Mode;
use chids_core::source::{discover::open, EventSource, ReadOptions, ReadStats, SourceError};
use serde_json::Value;

const COMPAT: Settings = Settings::for_mode(Mode::Compat, 1_000_000_000);

fn options() -> ReadOptions {
    ReadOptions {
        compat_line_filter: true,
        ..ReadOptions::default()
    }
}

/// The sysdig text dump the reference read for `<sub>/<name>.scap`.
fn text_for(shared: &Path, key: &str) -> PathBuf {
    let (sub, name) = key.split_once('/').unwrap();
    let name = name.trim_end_matches(".scap");
    common::shared_file(shared, &format!("parity/sysdig_text/{sub}__{name}.txt"))
}

fn load(shared: &Path, split: &str) -> Value {
    let p = common::shared_file(shared, &format!("parity/split_{split}.json"));
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn merge(into: &mut TrainingElements, from: &TrainingElements) {
    into.seen_syscalls
        .extend(from.seen_syscalls.iter().cloned());
    into.seen_args.extend(from.seen_args.iter().cloned());
    into.max_freq = into.max_freq.max(from.max_freq);
}

fn check_elements(split: &str, want: &Value, got: &TrainingElements) {
    let ss: Vec<String> = got.seen_syscalls.iter().cloned().collect();
    let sa: Vec<String> = got.seen_args.iter().cloned().collect();
    let mut want_ss = strings(&want["seen_syscalls"]);
    let mut want_sa = strings(&want["seen_args"]);
    want_ss.sort();
    want_sa.sort();
    assert_eq!(ss, want_ss, "split {split}: seen syscalls");
    assert_eq!(sa, want_sa, "split {split}: seen args");
    assert_eq!(
        got.max_freq,
        want["max_freq"].as_u64().unwrap(),
        "split {split}: max_freq"
    );
}

/// Compares every window's vector; returns the number of components checked.
fn check_vectors(what: &str, want: &Value, got: &RecordingFeatures) -> usize {
    let want = want.as_array().unwrap();
    // A run of empty windows is one entry; the reference lists each.
    let got: Vec<&WindowFeatures> = got
        .features
        .iter()
        .flat_map(|w| std::iter::repeat_n(w, w.run_length as usize))
        .collect();
    assert_eq!(got.len(), want.len(), "{what}: number of windows");
    let mut n = 0;
    for (i, (w, g)) in want.iter().zip(got).enumerate() {
        match (w, g.vector) {
            (Value::Null, None) => {}
            (Value::Array(w), Some(g)) => {
                for (c, (w, g)) in w.iter().zip(g.to_array()).enumerate() {
                    let w = w.as_f64().unwrap();
                    assert!(
                        (w - g).abs() <= 1e-9,
                        "{what} window {i} component {c}: want {w}, got {g}"
                    );
                    n += 1;
                }
            }
            (w, g) => panic!("{what} window {i}: want {w}, got {g:?}"),
        }
    }
    n
}

/// The capture itself, read natively.
fn scap_for(shared: &Path, key: &str) -> PathBuf {
    common::shared_file(shared, &format!("data/scap/{key}"))
}

fn run_scap_split(split: &str) {
    run_split(split, text_for);
}

fn run_scap_split_natively(split: &str) {
    run_split(split, scap_for);
}

fn run_split(split: &str, file_for: fn(&Path, &str) -> PathBuf) {
    let text_for = file_for;
    let shared = common::shared();
    let want = load(&shared, split);
    let mut elements = TrainingElements::default();
    for key in strings(&want["training_files"]) {
        let source = open(&text_for(&shared, &key)).unwrap();
        let scan = read_recording(source.as_ref(), COMPAT, None, false, &options()).unwrap();
        merge(&mut elements, &scan.elements);
    }
    check_elements(split, &want, &elements);
    // Files the reference rejects have no event left after its filter.
    for key in want["training_errors"]
        .as_object()
        .unwrap()
        .keys()
        .chain(want["evaluation_errors"].as_object().unwrap().keys())
    {
        let source = open(&text_for(&shared, key));
        if let Ok(source) = source {
            let scan = read_recording(source.as_ref(), COMPAT, None, false, &options()).unwrap();
            assert_eq!(scan.read.events, 0, "{key} should have no usable event");
        }
    }
    let mut checked = 0;
    for section in ["evaluation", "training_vectors"] {
        for (key, vectors) in want[section].as_object().unwrap() {
            let source = open(&text_for(&shared, key)).unwrap();
            let got = read_recording(source.as_ref(), COMPAT, Some(&elements), false, &options())
                .unwrap();
            checked += check_vectors(&format!("split {split} {section} {key}"), vectors, &got);
        }
    }
    assert!(checked > 30, "too few components compared: {checked}");
    eprintln!("split {split}: {checked} vector components equal the reference");
}

#[test]
#[ignore = "needs CHIDS_SHARED (shared data)"]
fn split_a_matches_reference() {
    run_scap_split("A");
}

#[test]
#[ignore = "needs CHIDS_SHARED (shared data)"]
fn split_b_matches_reference() {
    run_scap_split("B");
}

#[test]
#[ignore = "needs CHIDS_SHARED (shared data)"]
fn split_a_from_scap_matches_reference() {
    run_scap_split_natively("A");
}

#[test]
#[ignore = "needs CHIDS_SHARED (shared data)"]
fn split_b_from_scap_matches_reference() {
    run_scap_split_natively("B");
}

/// Feeds only the events `keep` accepts (in file order) through a stream.
fn features_of(
    source: &dyn EventSource,
    baseline: Option<&TrainingElements>,
    mut keep: impl FnMut(usize, &Event<'_>) -> bool,
) -> RecordingFeatures {
    let mut stream = FeatureStream::new(COMPAT, baseline, false);
    let mut features = Vec::new();
    let mut i = 0usize;
    let read: Result<ReadStats, SourceError> = source.read(&options(), &mut |e| {
        if keep(i, e) {
            stream.push(e, &mut |w| features.push(w)).unwrap();
        }
        i += 1;
        Ok(())
    });
    stream.into_recording(read.unwrap(), features)
}

fn run_lidds_split(split: &str) {
    let shared = common::shared();
    let want = load(&shared, split);
    let zip = common::shared_file(&shared, "data/lidds2021/aggressive_nightingale_1018.zip");
    let source = open(&zip).unwrap();
    let labels = &source.info().labels;
    assert!(labels.exploit);
    let exploit_ns = labels.exploit_ns.unwrap();
    assert_eq!(
        exploit_ns,
        want["lidds"]["exploit_ns"]
            .as_u64()
            .unwrap_or(1_631_078_877_513_988_000)
    );
    let total = 23468usize;
    let cut = total * 4 / 10;
    let train = features_of(source.as_ref(), None, |i, e| match split {
        "C" => i < cut,
        _ => e.ts_ns < exploit_ns,
    });
    check_elements(split, &want, &train.elements);
    let elements = train.elements.clone();
    let eval = features_of(source.as_ref(), Some(&elements), |_, _| true);
    assert_eq!(eval.read.events as usize, total);
    let (_, vectors) = want["evaluation"]
        .as_object()
        .unwrap()
        .iter()
        .next()
        .unwrap();
    let n = check_vectors(&format!("split {split}"), vectors, &eval);
    let train_v = features_of(source.as_ref(), Some(&elements), |i, e| match split {
        "C" => i < cut,
        _ => e.ts_ns < exploit_ns,
    });
    let (_, tv) = want["training_vectors"]
        .as_object()
        .unwrap()
        .iter()
        .next()
        .unwrap();
    let m = check_vectors(&format!("split {split} training"), tv, &train_v);
    eprintln!(
        "split {split}: {} vector components equal the reference",
        n + m
    );
}

#[test]
#[ignore = "needs CHIDS_SHARED (shared data)"]
fn split_c_matches_reference() {
    run_lidds_split("C");
}

#[test]
#[ignore = "needs CHIDS_SHARED (shared data)"]
fn split_cpre_matches_reference() {
    run_lidds_split("Cpre");
}
