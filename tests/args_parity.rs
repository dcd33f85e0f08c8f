//! Path normalisation against every case the reference was run on.
mod common;

use chids_core::mode::normalize_path;

#[test]
#[ignore = "needs CHIDS_SHARED (shared data)"]
fn process_args_cases_match_the_reference() {
    let shared = common::shared();
    let file = common::shared_file(&shared, "parity/process_args_cases.json");
    let cases: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    assert!(cases.len() > 400);
    let mut failures = Vec::new();
    for case in &cases {
        let raw = case["raw"].as_str().unwrap();
        let want = case["output"].as_str().unwrap();
        // The reference slices the parameter name off by width.
        let skip = match case["mode"].as_str().unwrap() {
            "CLONE" => 4,
            "EXECVE" => 9,
            _ => 5,
        };
        let arg: String = raw.chars().skip(skip).collect();
        let got = normalize_path(&arg);
        if got != want {
            failures.push(format!("{raw:?}: got {got:?}, want {want:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
