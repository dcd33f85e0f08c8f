//! The lab end to end, small: records the `nginx-alias-traversal` scenario
//! (lab/nginx-alias-traversal/run.sh, SMALL=1: 2 training, 1 validation,
//! 1 normal and 1 attack recording of 6 s) into a temporary folder, trains
//! a baseline on it and evaluates it. Needs root, a kernel with BTF and
//! nginx (scripts/install-test-deps.sh installs nginx-light): `#[ignore]`d,
//! run with `--include-ignored`, and then it fails where they are missing.
#![cfg(feature = "live")]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

const SCENARIO: &str = "nginx-alias-traversal";
/// Not the scenario's default port, so a lab run on the same machine does
/// not collide with the test.
const PORT: &str = "18181";

fn unmet_requirement() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root (the lab records with eBPF in a cgroup sandbox)".into());
    }
    if let Err(e) = chids_live::capture::check_environment() {
        return Some(e.to_string());
    }
    for bin in ["/usr/sbin/nginx", "/usr/bin/python3", "/usr/bin/curl"] {
        if !Path::new(bin).exists() {
            return Some(format!(
                "{bin} missing (scripts/install-test-deps.sh installs it)"
            ));
        }
    }
    None
}

/// The record command.
fn record_command() -> String {
    format!("{} record", env!("CARGO_BIN_EXE_chids"))
}

fn zips(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "zip"))
        .collect();
    v.sort();
    v
}

fn metadata(zip_path: &Path) -> serde_json::Value {
    let name = zip_path.file_stem().unwrap().to_string_lossy().into_owned();
    let mut z = zip::ZipArchive::new(std::fs::File::open(zip_path).unwrap()).unwrap();
    let mut js = String::new();
    z.by_name(&format!("{name}.json"))
        .unwrap()
        .read_to_string(&mut js)
        .unwrap();
    serde_json::from_str(&js).unwrap()
}

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
#[ignore = "needs root + eBPF, nginx, python3 and curl"]
fn lab_small_scenario_end_to_end() {
    if let Some(why) = unmet_requirement() {
        panic!("cannot run here: {why}");
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    // nginx's worker (www-data) must reach the site under it
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let out = tmp.path().join("out");
    let script = repo.join("lab").join(SCENARIO).join("run.sh");
    let started = std::time::Instant::now();
    run(
        Command::new("bash")
            .arg(&script)
            .env("SMALL", "1")
            .env("OUT", &out)
            .env("PORT", PORT)
            .env("LAB_SRV", tmp.path().join("srv"))
            .env("CHIDS_RECORD", record_command()),
        "lab run.sh",
    );

    // The LID-DS 2021 layout, with the SMALL=1 counts.
    let base = out.join(SCENARIO);
    for (sub, n) in [
        ("training", 2),
        ("validation", 1),
        ("test/normal", 1),
        ("test/normal_and_attack", 1),
    ] {
        let z = zips(&base.join(sub));
        assert_eq!(z.len(), n, "{sub}: {z:?}");
        for p in &z {
            let m = metadata(p);
            let attack = sub == "test/normal_and_attack";
            assert_eq!(m["exploit"], attack, "{}: exploit flag", p.display());
            if attack {
                let t = m["time"]["exploit"][0]["absolute"].as_f64().unwrap();
                assert!(t > 1e9, "{}: exploit time {t}", p.display());
            }
        }
    }

    let chids = env!("CARGO_BIN_EXE_chids");
    let model = tmp.path().join("model");
    run(
        Command::new(chids)
            .arg("baseline")
            .arg("--td")
            .arg(base.join("training"))
            .arg("--vd")
            .arg(base.join("validation"))
            .arg("--od")
            .arg(&model),
        "chids baseline",
    );
    let json = run(
        Command::new(chids)
            .arg("evaluate")
            .arg("--model")
            .arg(&model)
            .arg("--ns")
            .arg(base.join("test/normal"))
            .arg("--ms")
            .arg(base.join("test/normal_and_attack"))
            .arg("--json"),
        "chids evaluate",
    );
    let v: serde_json::Value = serde_json::from_str(json.trim())
        .unwrap_or_else(|e| panic!("evaluate --json: {e}: {json}"));
    let op = &v["operating_point"];
    assert_eq!(op["attacks"], 1, "{json}");
    assert_eq!(op["normals"], 1, "{json}");
    let rows = v["rows"].as_array().expect("rows");
    assert!(!rows.is_empty(), "no rows: {json}");
    for r in rows {
        assert_eq!(r["attacks"], 1, "{r}");
        assert_eq!(r["normals"], 1, "{r}");
        for k in ["detection_rate", "false_alarm_rate"] {
            let x = r[k].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&x), "{k} {x}");
        }
    }
    eprintln!(
        "lab {SCENARIO} (SMALL=1): {} rows in {:.0}s",
        rows.len(),
        started.elapsed().as_secs_f64()
    );
}
