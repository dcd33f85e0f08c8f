//! Readers on small hand-made recordings (LID-DS 2019 and extracted 2021)
//! and on a damaged copy of the real LID-DS 2021 recording.
mod common;

use std::path::Path;

use chids_core::source::{discover, EventSource, ReadOptions};

fn events(source: &dyn EventSource) -> Vec<(u64, String, String)> {
    let mut out = Vec::new();
    source
        .read(&ReadOptions::default(), &mut |e| {
            out.push((e.ts_ns, e.syscall.to_string(), e.info.to_string()));
            Ok(())
        })
        .unwrap();
    out
}

#[test]
fn lidds_2019_with_runs_csv() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("CVE-2017-7529");
    std::fs::create_dir(&scenario).unwrap();
    std::fs::write(
        scenario.join("runs.csv"),
        "image_name, scenario_name, is_executing_exploit, warmup_time, recording_time, exploit_start_time\n\
         nginx, quiet_run, False, 5, 30, -1\n\
         nginx, loud_run, True, 5, 30, 2.5\n",
    )
    .unwrap();
    let line = |n: u32, t: &str, dir: &str, call: &str, args: &str| {
        format!("{n} {t} 3 33 nginx 4242 {dir} {call} {args}\n")
    };
    let mut loud = String::new();
    loud += &line(1, "23:59:59.500000000", ">", "openat", "");
    loud += &line(
        2,
        "23:59:59.600000000",
        "<",
        "openat",
        "fd=3(<f>/etc/passwd) name=/etc/passwd flags=1(O_RDONLY)",
    );
    loud += &line(3, "00:00:00.100000000", ">", "read", "fd=3");
    std::fs::write(scenario.join("loud_run.txt"), loud).unwrap();
    std::fs::write(
        scenario.join("quiet_run.txt"),
        line(1, "10:00:00.000000000", ">", "read", "fd=3"),
    )
    .unwrap();

    let found = discover(&[dir.path().to_path_buf()]).unwrap();
    assert_eq!(found.recordings.len(), 2);
    let loud = found
        .recordings
        .iter()
        .find(|r| r.info().name == "loud_run.txt")
        .unwrap();
    let quiet = found
        .recordings
        .iter()
        .find(|r| r.info().name == "quiet_run.txt")
        .unwrap();
    assert!(loud.info().labels.exploit);
    assert!(!quiet.info().labels.exploit);
    assert_eq!(quiet.info().labels.exploit_ns, None);
    let ev = events(loud.as_ref());
    assert_eq!(ev.len(), 3);
    assert_eq!(ev[1].1, "openat");
    assert_eq!(
        ev[1].2,
        "fd=3(<f>/etc/passwd) name=/etc/passwd flags=1(O_RDONLY)"
    );
    // Time of day, unwrapped across midnight.
    assert_eq!(ev[2].0 - ev[0].0, 600_000_000);
    // Exploit 2.5 s after the first event.
    assert_eq!(loud.info().labels.exploit_ns, Some(ev[0].0 + 2_500_000_000));
}

#[test]
fn lidds_2021_extracted_pair() {
    let dir = tempfile::tempdir().unwrap();
    let sc = dir.path().join("rec.sc");
    std::fs::write(
        &sc,
        "1631078867380457267 0 10 apache2 11 openat < fd=3(<f>/etc/hosts) name=/etc/hosts flags=1\n\
         1631078867380460410 0 10 apache2 11 read > fd=3\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("rec.json"),
        r#"{"exploit": true, "time": {"exploit": [{"absolute": 1631078867.38046}]}}"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("rec.res"), "cpu 1\n").unwrap();
    let found = discover(&[dir.path().to_path_buf()]).unwrap();
    assert_eq!(
        found.recordings.len(),
        1,
        "the .json and .res are companions, not recordings"
    );
    let r = &found.recordings[0];
    assert_eq!(r.info().labels.exploit_ns, Some(1_631_078_867_380_460_000));
    let ev = events(r.as_ref());
    assert_eq!(
        ev[0],
        (
            1_631_078_867_380_457_267,
            "openat".into(),
            "fd=3(<f>/etc/hosts) name=/etc/hosts flags=1".into()
        )
    );
}

#[test]
#[ignore = "needs CHIDS_SHARED (shared data)"]
fn truncated_real_lidds_zip_is_an_error_naming_the_file() {
    let shared = common::shared();
    let zip = common::shared_file(&shared, "data/lidds2021/aggressive_nightingale_1018.zip");
    let bytes = std::fs::read(&zip).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for cut in [bytes.len() / 3, bytes.len() - 100] {
        let p = dir.path().join(format!("cut{cut}.zip"));
        std::fs::write(&p, &bytes[..cut]).unwrap();
        let err = match discover(std::slice::from_ref(&p)) {
            Err(e) => e.to_string(),
            Ok(found) => {
                let r = &found.recordings[0];
                r.read(&ReadOptions::default(), &mut |_| Ok(()))
                    .unwrap_err()
                    .to_string()
            }
        };
        assert!(err.contains(&p.display().to_string()), "{err}");
    }
    // The intact recording reads every event.
    let found = discover(&[zip]).unwrap();
    let n = events(found.recordings[0].as_ref()).len();
    assert_eq!(n, 23468);
    assert!(Path::new(&shared).exists());
}
