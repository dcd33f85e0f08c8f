//! Hostile files around chids: names planted where it writes (symlinks to
//! files it must not touch), a full disk, and recordings, labels and
//! bundles that lie. chids runs as root beside what it distrusts; each test
//! here fails on a chids that writes through a planted name or trusts what
//! it reads.

use std::io::Write;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chids_core::source::discover;

fn chids(args: &[&str]) -> Output {
    chids_cmd(args).output().expect("run chids")
}

fn chids_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_chids"));
    c.args(args);
    c
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A LID-DS 2021 `.sc` recording: a web server's steady loop for
/// `seconds` from `t0_s` (Unix seconds), then the `extra` calls.
fn sc_recording(path: &Path, t0_s: u64, seconds: u64, seed: u64, extra: &[&str]) {
    let mut s = String::new();
    let calls = ["read", "write", "epoll_wait", "close", "futex"];
    let t0 = t0_s * 1_000_000_000;
    let mut t = t0 + seed * 1_000;
    let mut i = seed;
    while t < t0 + seconds * 1_000_000_000 {
        let call = calls[(i % 5) as usize];
        s += &format!("{t} 33 42 nginx 42 {call} > fd=3 \n");
        s += &format!("{} 33 42 nginx 42 {call} < res=0 \n", t + 500);
        if i.is_multiple_of(97) {
            s += &format!(
                "{} 33 42 nginx 42 open < fd=5(<f>/var/www/index.html) name=/var/www/index.html flags=1(O_RDONLY) \n",
                t + 900
            );
        }
        t += 6_000_000;
        i += 1;
    }
    for (k, line) in extra.iter().enumerate() {
        s += &format!("{} 0 66 sh 66 {line} \n", t + k as u64 * 1_000);
    }
    std::fs::write(path, s).unwrap();
}

const T0: u64 = 1_700_000_000;

/// Training, normal and attack recordings in a temporary folder.
struct Lab {
    dir: tempfile::TempDir,
}

impl Lab {
    fn new() -> Lab {
        let lab = Lab {
            dir: tempfile::tempdir().unwrap(),
        };
        for d in ["train", "normal", "attack"] {
            std::fs::create_dir(lab.path(d)).unwrap();
        }
        for i in 0..3 {
            sc_recording(&lab.path(&format!("train/t{i}.sc")), T0, 4, i, &[]);
        }
        sc_recording(&lab.path("normal/n0.sc"), T0, 3, 7, &[]);
        let attack = [
            "execve < res=0 exe=/bin/sh",
            "ptrace < res=0",
            "open < fd=3(<f>/etc/shadow) name=/etc/shadow flags=1(O_RDONLY)",
        ];
        sc_recording(&lab.path("attack/a0.sc"), T0, 3, 9, &attack);
        lab.label("attack/a0", T0 as f64 + 3.0);
        lab
    }

    /// Writes `rel.json` with an exploit time.
    fn label(&self, rel: &str, exploit: impl serde::Serialize) {
        let json = serde_json::json!({ "exploit": true, "time": { "exploit": [{ "absolute": exploit }] } });
        std::fs::write(self.path(&format!("{rel}.json")), json.to_string()).unwrap();
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn s(&self, rel: &str) -> String {
        self.path(rel).display().to_string()
    }

    fn train_args(&self, out: &str) -> Vec<String> {
        [
            "baseline",
            "--td",
            &self.s("train"),
            "--od",
            &self.s(out),
            "--epochs",
            "5",
        ]
        .map(String::from)
        .to_vec()
    }

    fn train(&self, out: &str, extra: &[&str]) -> Output {
        let mut args = self.train_args(out);
        args.extend(extra.iter().map(|a| a.to_string()));
        chids(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
}

/// Files planted as symlinks to victims; checks that each victim keeps
/// its content.
struct Victims {
    planted: Vec<(PathBuf, PathBuf)>,
}

impl Victims {
    fn plant(dir: &Path, names: &[&str], victims: &Path) -> Victims {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::create_dir_all(victims).unwrap();
        let planted = names
            .iter()
            .map(|n| {
                let victim = victims.join(format!("victim-{n}"));
                std::fs::write(&victim, format!("precious {n}")).unwrap();
                symlink(&victim, dir.join(n)).unwrap();
                (dir.join(n), victim)
            })
            .collect();
        Victims { planted }
    }

    fn assert_untouched(&self) {
        for (link, victim) in &self.planted {
            let name = link.file_name().unwrap().to_string_lossy();
            assert_eq!(
                std::fs::read_to_string(victim).unwrap(),
                format!("precious {name}"),
                "written through the symlink {}",
                link.display()
            );
        }
    }
}

#[test]
fn bundles_and_reports_never_write_through_planted_symlinks() {
    let lab = Lab::new();
    // The bundle's names, and the temporary names chids used to write to.
    let bundle_names = [
        "baseline.json",
        "model.safetensors",
        "baseline.tmp",
        "model.tmp",
    ];
    let planted = Victims::plant(&lab.path("model"), &bundle_names, &lab.path("v1"));
    let o = lab.train("model", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    planted.assert_untouched();
    for f in ["baseline.json", "model.safetensors"] {
        let p = lab.path("model").join(f);
        assert!(!p.is_symlink(), "{f} is still the planted symlink");
        assert_eq!(mode(&p), 0o640, "{f}");
    }

    let report_names = ["report.md", "report.json", "roc.png", "scores-1-chids.png"];
    let planted = Victims::plant(&lab.path("report"), &report_names, &lab.path("v2"));
    let o = chids(&[
        "evaluate",
        "--model",
        &lab.s("model"),
        "--ns",
        &lab.s("normal"),
        "--ms",
        &lab.s("attack"),
        "--report",
        &lab.s("report"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    planted.assert_untouched();
    for f in report_names {
        let p = lab.path("report").join(f);
        assert!(!p.is_symlink(), "{f} is still the planted symlink");
        assert_eq!(mode(&p), 0o600, "{f}");
    }
    let png = std::fs::read(lab.path("report/roc.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
}

/// Runs with a file size limit of `limit` bytes (EFBIG past it, as on a
/// full disk): no root needed, nothing else on the machine affected.
fn with_file_size_limit(cmd: &mut Command, limit: u64) -> Output {
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let lim = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().expect("run chids")
}

fn listing(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_failed_write_replaces_nothing_and_says_so() {
    let lab = Lab::new();
    let o = lab.train("model", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let before = listing(&lab.path("model"));
    let smallest = before.iter().map(|(_, b)| b.len() as u64).min().unwrap();
    let largest = before.iter().map(|(_, b)| b.len() as u64).max().unwrap();
    // Room for the smaller file, not for the larger: the bundle can only
    // be half written. A different seed makes a different model.
    let mut args = lab.train_args("model");
    args.extend(["--seed".to_string(), "7".to_string()]);
    let limit = (smallest + largest) / 2;
    let o = with_file_size_limit(
        &mut chids_cmd(&args.iter().map(String::as_str).collect::<Vec<_>>()),
        limit,
    );
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("File too large"), "{err}");
    assert!(err.contains(&lab.s("model")), "{err}");
    assert_eq!(
        listing(&lab.path("model")),
        before,
        "the old bundle changed"
    );

    // Same for a report: the old one stays whole.
    let report = |limit: Option<u64>| {
        let mut c = chids_cmd(&[
            "evaluate",
            "--model",
            &lab.s("model"),
            "--ns",
            &lab.s("normal"),
            "--ms",
            &lab.s("attack"),
            "--report",
            &lab.s("report"),
        ]);
        match limit {
            Some(l) => with_file_size_limit(&mut c, l),
            None => c.output().unwrap(),
        }
    };
    assert!(report(None).status.success());
    let md = lab.path("report/report.md");
    std::fs::write(&md, "the previous report").unwrap();
    let before = listing(&lab.path("report"));
    let o = report(Some(16));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("report.md"), "{}", stderr(&o));
    assert_eq!(listing(&lab.path("report")), before);
}

#[test]
fn training_settings_that_make_unloadable_bundles_are_refused() {
    let lab = Lab::new();
    let o = chids(&[
        "baseline",
        "--td",
        &lab.s("train"),
        "--od",
        &lab.s("zero"),
        "--compat",
        "--epochs",
        "0",
    ]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("--epochs") && err.contains("'0'"), "{err}");
    assert!(!lab.path("zero").exists(), "nothing may be written");
    for window in ["1us", "500us", "2h"] {
        let o = lab.train("tiny", &["--window", window]);
        assert!(!o.status.success(), "--window {window} accepted");
        let err = stderr(&o);
        assert!(
            err.contains("--window") && err.contains("between 1ms and 1h"),
            "{err}"
        );
        assert!(!lab.path("tiny").exists());
    }
}

#[test]
fn bundles_that_would_score_nonsense_are_refused_on_load() {
    let lab = Lab::new();
    assert!(lab.train("model", &[]).status.success());
    let good: serde_json::Value =
        serde_json::from_slice(&std::fs::read(lab.path("model/baseline.json")).unwrap()).unwrap();
    let weights = std::fs::read(lab.path("model/model.safetensors")).unwrap();
    let edits: [(&str, serde_json::Value, &str); 7] = [
        ("/scoring/scale/0", 0.0.into(), "scoring.scale"),
        ("/scoring/scale/2", (-1.0).into(), "scoring.scale"),
        ("/thresholds/0", (-0.5).into(), "threshold"),
        ("/thetas/1", 0.0.into(), "theta"),
        ("/window_ns", 1.into(), "window_ns"),
        ("/window_ns", 7_200_000_000_000u64.into(), "window_ns"),
        ("/training/max_error", (-1.0).into(), "max_error"),
    ];
    for (i, (pointer, value, named)) in edits.into_iter().enumerate() {
        let dir = lab.path(&format!("bad{i}"));
        std::fs::create_dir(&dir).unwrap();
        let mut v = good.clone();
        *v.pointer_mut(pointer).unwrap() = value.clone();
        std::fs::write(dir.join("baseline.json"), v.to_string()).unwrap();
        std::fs::write(dir.join("model.safetensors"), &weights).unwrap();
        let o = chids(&[
            "vectors",
            "--model",
            &dir.display().to_string(),
            &lab.s("normal"),
        ]);
        assert!(!o.status.success(), "{pointer} = {value} was accepted");
        let err = stderr(&o);
        assert!(
            err.contains("baseline.json") && err.contains(named),
            "{pointer}: {err}"
        );
    }
    // A STIDE bundle too.
    assert!(lab
        .train("stide", &["--detector", "stide"])
        .status
        .success());
    let p = lab.path("stide/baseline.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    v["thresholds"][0] = (-1.0).into();
    std::fs::write(&p, v.to_string()).unwrap();
    let o = chids(&[
        "evaluate",
        "--model",
        &lab.s("stide"),
        "--ns",
        &lab.s("normal"),
        "--ms",
        &lab.s("attack"),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("threshold -1"), "{}", stderr(&o));
}

#[test]
fn exploit_times_that_are_not_times_are_errors_naming_the_file() {
    let lab = Lab::new();
    // LID-DS 2021 labels.
    let bad: [serde_json::Value; 3] = [
        "1700000002.5".into(),
        serde_json::json!({ "t": 1 }),
        1e19.into(),
    ];
    for value in bad {
        lab.label("attack/a0", value.clone());
        let err = match discover(&[lab.path("attack/a0.sc")]) {
            Ok(_) => panic!("exploit time {value} accepted"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains("a0.json") && err.contains("time.exploit[0].absolute"),
            "{err}"
        );
    }
    // LID-DS 2019 runs.csv: offsets after the first event.
    let dir = lab.path("2019");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("run.txt"),
        "1 10:00:00.000000000 0 33 nginx 42 > read fd=3\n",
    )
    .unwrap();
    for offset in ["inf", "NaN", "2e10", "soon"] {
        std::fs::write(
            dir.join("runs.csv"),
            format!(
                "scenario_name, is_executing_exploit, exploit_start_time\nrun, True, {offset}\n"
            ),
        )
        .unwrap();
        let err = match discover(&[dir.join("run.txt")]) {
            Ok(found) => panic!(
                "exploit_start_time {offset} accepted: {:?}",
                found.recordings[0].info().labels
            ),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains("runs.csv") && err.contains("exploit_start_time"),
            "{err}"
        );
    }
}

#[test]
fn an_exploit_time_outside_the_recording_is_warned_about() {
    let lab = Lab::new();
    assert!(lab.train("model", &[]).status.success());
    // A million seconds after the recording: no window is in the attack.
    lab.label("attack/a0", T0 as f64 + 1e6);
    let o = chids(&[
        "evaluate",
        "--model",
        &lab.s("model"),
        "--ns",
        &lab.s("normal"),
        "--ms",
        &lab.s("attack"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("a0.sc: the exploit time") && err.contains("after the recording"),
        "{err}"
    );
    // Inside it: no warning.
    lab.label("attack/a0", T0 as f64 + 2.0);
    let o = chids(&[
        "evaluate",
        "--model",
        &lab.s("model"),
        "--ns",
        &lab.s("normal"),
        "--ms",
        &lab.s("attack"),
    ]);
    assert!(!stderr(&o).contains("exploit time"), "{}", stderr(&o));
}

#[test]
fn a_zip_with_two_sc_entries_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let zip_path = dir.path().join("two.zip");
    let mut z = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
    let opts = zip::write::SimpleFileOptions::default();
    for name in ["a.sc", "b.sc"] {
        z.start_file(name, opts).unwrap();
        z.write_all(b"1700000000000000000 0 1 sh 1 read > fd=3 \n")
            .unwrap();
    }
    z.finish().unwrap();
    let err = match discover(std::slice::from_ref(&zip_path)) {
        Ok(_) => panic!("a zip with two .sc entries was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("two.zip") && err.contains("2 .sc files"),
        "{err}"
    );
}

#[test]
fn symlinked_sub_folders_are_followed_and_loops_reported() {
    let dir = tempfile::tempdir().unwrap();
    let train = dir.path().join("train");
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&train).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    sc_recording(&train.join("here.sc"), T0, 1, 0, &[]);
    sc_recording(&elsewhere.join("there.sc"), T0, 1, 1, &[]);
    symlink(&elsewhere, train.join("linked")).unwrap();
    // A loop back to the folder being walked, and a dangling link.
    symlink(&train, train.join("loop")).unwrap();
    symlink(dir.path().join("gone"), train.join("dangling")).unwrap();
    let found = discover(std::slice::from_ref(&train)).unwrap();
    let mut names: Vec<String> = found
        .recordings
        .iter()
        .map(|r| r.info().name.clone())
        .collect();
    names.sort();
    assert_eq!(names, ["here.sc", "there.sc"]);
    let warnings = found.warnings.join("\n");
    assert!(warnings.contains("symlink loop"), "{warnings}");
    assert!(warnings.contains("dangling: broken symlink"), "{warnings}");
}

#[cfg(feature = "live")]
#[test]
fn monitor_refuses_to_append_alerts_through_a_symlink() {
    let lab = Lab::new();
    assert!(lab.train("model", &[]).status.success());
    let planted = Victims::plant(&lab.path("out"), &["alerts.jsonl"], &lab.path("v"));
    // Refused before anything is captured: no root or eBPF needed.
    let o = chids(&[
        "monitor",
        "--model",
        &lab.s("model"),
        "--alerts",
        &lab.s("out/alerts.jsonl"),
        "--duration",
        "1s",
        "--",
        "true",
    ]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("alerts.jsonl") && err.contains("--alerts-follow-symlink"),
        "{err}"
    );
    planted.assert_untouched();
}

/// Runs chids, killing it if it has not finished within 60 s (a read that
/// blocks on a FIFO would hang the test otherwise).
fn chids_bounded(args: &[&str]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let err = dir.path().join("stderr");
    let mut child = chids_cmd(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let end = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if std::time::Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chids {} still running after 60 s", args.join(" "));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    (status.code(), std::fs::read_to_string(err).unwrap())
}

#[test]
fn a_fifo_or_a_device_as_input_is_refused_not_waited_on() {
    let lab = Lab::new();
    let fifo = lab.path("pipe.sc");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let fifo = fifo.to_str().unwrap();
    let (code, err) = chids_bounded(&[
        "baseline",
        "--td",
        fifo,
        "--od",
        &lab.s("m1"),
        "--epochs",
        "1",
    ]);
    assert_ne!(code, Some(0));
    assert!(err.contains("pipe.sc") && err.contains("FIFO"), "{err}");
    let (code, err) = chids_bounded(&[
        "baseline",
        "--td",
        "/dev/zero",
        "--od",
        &lab.s("m2"),
        "--epochs",
        "1",
    ]);
    assert_ne!(code, Some(0));
    assert!(err.contains("/dev/zero") && err.contains("device"), "{err}");
    let o = lab.train("model", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (code, err) = chids_bounded(&[
        "evaluate",
        "--model",
        &lab.s("model"),
        "--ns",
        fifo,
        "--ms",
        &lab.s("attack"),
    ]);
    assert_ne!(code, Some(0));
    assert!(err.contains("FIFO"), "{err}");
}
