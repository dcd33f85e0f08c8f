//! End-to-end tests of `chids record` (eBPF). Those that capture need root
//! and a kernel with BTF: they are `#[ignore]`d (run them with
//! `--include-ignored`, as `.ci/run` does), and fail when asked for where
//! live capture cannot run.
#![cfg(feature = "live")]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chids_live::{self as live, RecordOptions, Target};

/// Fails the test, saying why, when live capture cannot run here.
macro_rules! require_live {
    () => {
        live::capture::check_environment().expect("live capture environment")
    };
}

/// (.sc text, .json value) of a recording.
fn read_recording(zip_path: &Path) -> (String, serde_json::Value) {
    let name = zip_path.file_stem().unwrap().to_string_lossy().into_owned();
    let mut z = zip::ZipArchive::new(std::fs::File::open(zip_path).unwrap()).unwrap();
    let mut sc = String::new();
    z.by_name(&format!("{name}.sc"))
        .unwrap()
        .read_to_string(&mut sc)
        .unwrap();
    let mut js = String::new();
    z.by_name(&format!("{name}.json"))
        .unwrap()
        .read_to_string(&mut js)
        .unwrap();
    (sc, serde_json::from_str(&js).unwrap())
}

struct Fields<'a> {
    pid: i64,
    proc_: &'a str,
    syscall: &'a str,
    dir: &'a str,
    args: Vec<&'a str>,
}

fn parse_line(l: &str) -> Fields<'_> {
    let t: Vec<&str> = l.split_ascii_whitespace().collect();
    assert!(t.len() >= 7, "short line {l:?}");
    assert!(
        t[0].parse::<u64>().unwrap() > 1_600_000_000_000_000_000,
        "epoch ns: {l}"
    );
    t[1].parse::<u32>().unwrap();
    Fields {
        pid: t[2].parse().unwrap(),
        proc_: t[3],
        syscall: t[5],
        dir: t[6],
        args: t[7..].to_vec(),
    }
}

/// A process outside any watched cgroup doing file opens in a loop, under a
/// distinctive name, so the test can check that none of it leaks in.
struct Outsider {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Outsider {
    fn start() -> Outsider {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("zzoutsider");
        std::fs::copy("/bin/cat", &bin).unwrap();
        let script = format!(
            "while :; do {} /etc/hostname >/dev/null; done",
            bin.display()
        );
        let child = Command::new("sh")
            .args(["-c", &script])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        Outsider { child, _dir: dir }
    }
}

impl Drop for Outsider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn out_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.zip"))
}

fn is_stat(s: &str) -> bool {
    ["stat", "lstat", "newfstatat", "statx"].contains(&s)
}

#[test]
#[ignore = "needs root + eBPF"]
fn record_command_captures_exec_and_open_and_nothing_outside() {
    require_live!();
    let tmp = tempfile::tempdir().unwrap();
    let outsider = Outsider::start();
    std::thread::sleep(Duration::from_millis(100));
    let out = out_path(tmp.path(), "cmd_run");
    let script = "cat /etc/hostname; ls / > /dev/null; stat /etc/passwd > /dev/null; \
                  /nonexistent/chids-x 2>/dev/null; sleep 0.2";
    let summary = live::record(
        RecordOptions {
            target: Target::Command(vec!["sh".into(), "-c".into(), script.into()]),
            out: out.clone(),
            duration: Some(Duration::from_secs(20)),
            exploit_at: None,
            marker_file: None,
            force: false,
            stop: Default::default(),
        },
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(summary.command_status, Some(0));
    assert_eq!(summary.counters.dropped, 0, "no events may be lost");
    assert!(summary.events > 100, "{summary:?}");

    let (sc, meta) = read_recording(&out);
    let lines: Vec<Fields> = sc.lines().map(parse_line).collect();
    assert_eq!(lines.len() as u64, summary.events);
    // Every line ends with the LID-DS trailing space.
    assert!(sc.lines().all(|l| l.ends_with(' ')));

    let execs: Vec<&str> = lines
        .iter()
        .filter(|f| f.syscall == "execve" && f.dir == ">")
        .filter_map(|f| f.args.first().copied())
        .collect();
    // The command itself (the recording starts at its exec), path as token 0.
    assert!(
        execs[0] == "filename=/usr/bin/sh" || execs[0] == "filename=/bin/sh",
        "{execs:?}"
    );
    assert!(execs.iter().any(|a| a.ends_with("/cat")), "{execs:?}");
    // A failed exec: its (deferred) enter event still has the path, then
    // the exit with the error.
    let failed = lines
        .iter()
        .position(|f| {
            f.syscall == "execve" && f.args.first() == Some(&"filename=/nonexistent/chids-x")
        })
        .expect("enter of the failed execve");
    assert!(lines[failed + 1..]
        .iter()
        .any(|f| f.syscall == "execve" && f.dir == "<" && f.args.first() == Some(&"res=-2")));

    // cat's open of /etc/hostname, with the path at index 1 as name=.
    let open = lines
        .iter()
        .find(|f| {
            f.proc_ == "cat"
                && (f.syscall == "openat" || f.syscall == "open")
                && f.dir == "<"
                && f.args.get(1) == Some(&"name=/etc/hostname")
        })
        .expect("openat of /etc/hostname by cat");
    assert!(
        open.args[0].starts_with("fd=") && open.args[0].contains("(<f>/etc/hostname)"),
        "{:?}",
        open.args
    );
    // Stat family with path= at index 1.
    assert!(lines.iter().any(|f| f.proc_ == "stat"
        && f.dir == "<"
        && is_stat(f.syscall)
        && f.args.get(1) == Some(&"path=/etc/passwd")));
    // A fork/clone exit carries exe=.
    assert!(lines.iter().any(
        |f| ["clone", "clone3", "vfork", "fork"].contains(&f.syscall)
            && f.dir == "<"
            && f.args.get(1).is_some_and(|a| a.starts_with("exe="))
    ));

    // Nothing from outside the cgroup.
    let outsider_pid = outsider.child.id() as i64;
    for f in &lines {
        assert_ne!(f.proc_, "zzoutsider", "event from outside the cgroup");
        assert_ne!(f.pid, outsider_pid, "event from outside the cgroup");
    }
    drop(outsider);

    assert_eq!(meta["exploit"], false);
    assert!(meta["time"]["exploit"].as_array().unwrap().is_empty());
    assert!(meta["time"]["warmup_end"]["absolute"].as_f64().unwrap() > 1.6e9);
}

#[test]
#[ignore = "needs root + eBPF"]
fn marker_file_stamps_exploit_time() {
    require_live!();
    let tmp = tempfile::tempdir().unwrap();
    let marker = tmp.path().join("attack-started");
    let out = out_path(tmp.path(), "marked");
    let script = format!(
        "sleep 0.3; touch {}; cat /etc/hostname >/dev/null; sleep 0.3",
        marker.display()
    );
    let summary = live::record(
        RecordOptions {
            target: Target::Command(vec!["sh".into(), "-c".into(), script]),
            out: out.clone(),
            duration: Some(Duration::from_secs(20)),
            exploit_at: None,
            marker_file: Some(marker.clone()),
            force: false,
            stop: Default::default(),
        },
        &mut |_| {},
    )
    .unwrap();
    let t = summary.exploit_at.expect("marker stamped");
    let (sc, meta) = read_recording(&out);
    assert_eq!(meta["exploit"], true);
    let abs = meta["time"]["exploit"][0]["absolute"].as_f64().unwrap();
    assert!((abs - t).abs() < 1e-6);
    // The touch happens between the first and last event.
    let ts: Vec<f64> = sc
        .lines()
        .map(|l| l.split(' ').next().unwrap().parse::<u64>().unwrap() as f64 / 1e9)
        .collect();
    let (first, last) = (ts[0], *ts.last().unwrap());
    assert!(first < abs && abs < last, "{first} < {abs} < {last}");
}

#[test]
#[ignore = "needs root + eBPF"]
fn cgroup_target_includes_child_cgroups_created_later() {
    require_live!();
    let root = live::cgroup::cgroup2_root().unwrap();
    let parent = root
        .join("chids")
        .join(format!("test-parent-{}", std::process::id()));
    std::fs::create_dir_all(&parent).unwrap();
    let child_cg = parent.join("child");
    let tmp = tempfile::tempdir().unwrap();
    let out = out_path(tmp.path(), "by_cgroup");

    // A process in a child cgroup made after recording has started: the
    // worker waits for record's first progress report (the capture is
    // running), so a loaded machine only makes it later, never early; the
    // duration leaves it seconds to run after that.
    let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
    let child_cg2 = child_cg.clone();
    let worker = std::thread::spawn(move || {
        let _ = started_rx.recv();
        std::fs::create_dir_all(&child_cg2).unwrap();
        let script = format!(
            "echo $$ > {}/cgroup.procs; for i in 1 2 3 4 5; do cat /etc/hostname > /dev/null; done",
            child_cg2.display()
        );
        Command::new("sh").args(["-c", &script]).status().unwrap()
    });
    let summary = live::record(
        RecordOptions {
            target: Target::Cgroup(parent.clone()),
            out: out.clone(),
            duration: Some(Duration::from_secs(8)),
            exploit_at: None,
            marker_file: None,
            force: false,
            stop: Default::default(),
        },
        &mut |_| {
            let _ = started_tx.send(());
        },
    );
    drop(started_tx);
    let status = worker.join().unwrap();
    let _ = std::fs::remove_dir(&child_cg);
    let _ = std::fs::remove_dir(&parent);
    let summary = summary.unwrap();
    assert!(status.success());
    let (sc, _) = read_recording(&out);
    let opens = sc
        .lines()
        .map(parse_line)
        .filter(|f| f.proc_ == "cat" && f.args.get(1) == Some(&"name=/etc/hostname"))
        .count();
    assert_eq!(opens, 5, "{summary:?}");
}

#[test]
#[ignore = "needs root + eBPF"]
fn container_id_prefix_finds_its_cgroup() {
    require_live!();
    let root = live::cgroup::cgroup2_root().unwrap();
    let id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let dir = root
        .join("chids")
        .join(format!("test-ctr-{}", std::process::id()))
        .join(format!("docker-{id}.scope"));
    std::fs::create_dir_all(&dir).unwrap();
    let found = live::CgroupRef::from_container("0123456789ab");
    let missing = live::CgroupRef::from_container("fedcba987654");
    let _ = std::fs::remove_dir(&dir);
    let _ = std::fs::remove_dir(dir.parent().unwrap());
    let found = found.unwrap();
    assert_eq!(found.path, dir);
    assert_eq!(found.name, "0123456789ab");
    assert!(missing.unwrap_err().to_string().contains("no cgroup"));
}

#[test]
#[ignore = "needs root + eBPF"]
fn missing_cgroup_is_a_clear_error() {
    require_live!();
    let err = live::record(
        RecordOptions {
            target: Target::Cgroup("/sys/fs/cgroup/unified/definitely/not/here".into()),
            out: std::env::temp_dir().join("never.zip"),
            duration: Some(Duration::from_millis(10)),
            exploit_at: None,
            marker_file: None,
            force: false,
            stop: Default::default(),
        },
        &mut |_| {},
    )
    .unwrap_err();
    assert!(err.to_string().starts_with("cgroup not found"), "{err}");
}

fn options(target: Target, out: &Path) -> RecordOptions {
    RecordOptions {
        target,
        out: out.to_path_buf(),
        duration: Some(Duration::from_secs(20)),
        exploit_at: None,
        marker_file: None,
        force: false,
        stop: Default::default(),
    }
}

fn busy_command() -> Target {
    Target::Command(vec![
        "sh".into(),
        "-c".into(),
        "while :; do cat /etc/hostname > /dev/null; done".into(),
    ])
}

/// Bad outputs and inputs are refused before anything is captured (so
/// without root or eBPF), and nothing at the output is touched.
#[test]
fn bad_out_marker_or_exploit_time_is_refused_before_capturing() {
    let tmp = tempfile::tempdir().unwrap();
    let existing = tmp.path().join("old.zip");
    std::fs::write(&existing, "an earlier recording").unwrap();
    let cmd = || Target::Command(vec!["true".into()]);
    let err = |o: RecordOptions| live::record(o, &mut |_| {}).unwrap_err().to_string();

    let e = err(options(cmd(), &existing));
    assert!(e.contains("old.zip") && e.contains("--force"), "{e}");
    assert_eq!(
        std::fs::read_to_string(&existing).unwrap(),
        "an earlier recording"
    );
    let e = err(options(cmd(), tmp.path()));
    assert!(e.contains("is a folder"), "{e}");
    let e = err(options(cmd(), &tmp.path().join("no/such/dir/r.zip")));
    assert!(e.contains("no/such/dir"), "{e}");

    let fifo = tmp.path().join("marker");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let e = err(RecordOptions {
        marker_file: Some(fifo),
        ..options(cmd(), &tmp.path().join("m.zip"))
    });
    assert!(e.contains("--marker-file") && e.contains("FIFO"), "{e}");
    for bad in [f64::INFINITY, f64::NAN, -5.0] {
        let e = err(RecordOptions {
            exploit_at: Some(bad),
            ..options(cmd(), &tmp.path().join("x.zip"))
        });
        assert!(e.contains("--exploit-at"), "{e}");
    }
    // Nothing was created on the way.
    let mut names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["marker", "old.zip"]);
}

/// Symlinks planted at the names chids used for its temporary files point
/// at files root must not write; the recording is made beside them.
#[test]
#[ignore = "needs root + eBPF"]
fn record_never_writes_through_planted_names_and_replaces_only_with_force() {
    require_live!();
    use std::os::unix::fs::{symlink, PermissionsExt};
    let tmp = tempfile::tempdir().unwrap();
    let victims = tempfile::tempdir().unwrap();
    let out = out_path(tmp.path(), "planted");
    for name in ["planted.sc.partial", "planted.zip.partial"] {
        let victim = victims.path().join(name);
        std::fs::write(&victim, "precious").unwrap();
        symlink(&victim, tmp.path().join(name)).unwrap();
    }
    let script = "cat /etc/hostname > /dev/null";
    let cmd = || Target::Command(vec!["sh".into(), "-c".into(), script.into()]);
    let summary = live::record(options(cmd(), &out), &mut |_| {}).unwrap();
    for name in ["planted.sc.partial", "planted.zip.partial"] {
        let victim = victims.path().join(name);
        let content = std::fs::read_to_string(&victim).unwrap();
        assert!(content == "precious", "written through {name}");
    }
    let (sc, _) = read_recording(&out);
    assert_eq!(sc.lines().count() as u64, summary.events);
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // Only the recording and the planted links: no temporary file left.
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 3);

    // Again: refused without force, replaced with it.
    let before = std::fs::read(&out).unwrap();
    let e = live::record(options(cmd(), &out), &mut |_| {}).unwrap_err();
    assert!(e.to_string().contains("--force"), "{e}");
    assert_eq!(std::fs::read(&out).unwrap(), before);
    live::record(
        RecordOptions {
            force: true,
            ..options(cmd(), &out)
        },
        &mut |_| {},
    )
    .unwrap();
    assert_ne!(std::fs::read(&out).unwrap(), before);
}

/// A small tmpfs: a disk that fills up. Unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(bytes: u64) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(ok.success(), "mount tmpfs failed");
        SmallDisk { dir }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
#[ignore = "needs root + eBPF"]
fn a_full_disk_stops_the_recording_at_once_and_keeps_what_was_written() {
    require_live!();
    let disk = SmallDisk::mount(512 * 1024);
    let out = out_path(disk.dir.path(), "full");
    let started = std::time::Instant::now();
    let err = live::record(
        RecordOptions {
            duration: Some(Duration::from_secs(120)),
            ..options(busy_command(), &out)
        },
        &mut |_| {},
    )
    .unwrap_err()
    .to_string();
    // At once: not at the end of the 120 s.
    assert!(started.elapsed() < Duration::from_secs(60), "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    let kept = err
        .split("kept in ")
        .nth(1)
        .unwrap_or_else(|| panic!("no kept file named: {err}"));
    let kept = Path::new(kept.trim());
    assert!(kept.starts_with(disk.dir.path()), "{err}");
    let text = std::fs::read_to_string(kept).unwrap();
    let first = text.lines().next().expect("events were kept");
    parse_line(first);
    assert!(!out.exists());
}

/// The marker file swapped for a FIFO or a link to /dev/zero while
/// recording: reading it must neither hang nor eat memory; the recording
/// ends on time and says the marker was ignored.
#[test]
#[ignore = "needs root + eBPF"]
fn a_marker_swapped_for_a_fifo_or_dev_zero_is_ignored_without_hanging() {
    require_live!();
    for swap in ["mkfifo \"$M\"", "ln -s /dev/zero \"$M\""] {
        let tmp = tempfile::tempdir().unwrap();
        let marker = tmp.path().join("marker");
        std::fs::write(&marker, "").unwrap();
        let script = format!(
            "M={}; sleep 0.3; rm -f \"$M\"; {swap}; sleep 30",
            marker.display()
        );
        let opts = RecordOptions {
            duration: Some(Duration::from_secs(2)),
            marker_file: Some(marker.clone()),
            ..options(
                Target::Command(vec!["sh".into(), "-c".into(), script]),
                &out_path(tmp.path(), "swapped"),
            )
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(live::record(opts, &mut |_| {}));
        });
        let summary = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("record hung on a marker swapped by `{swap}`"))
            .unwrap();
        assert_eq!(summary.exploit_at, None, "{swap}");
        let w = summary.warnings.join("\n");
        assert!(
            w.contains("--marker-file") && w.contains("ignored"),
            "{swap}: {w}"
        );
    }
}
