//! The native reader on a capture that carries what no shared capture does:
//! event types libs added after id 351 (sent exit-only, as current drivers
//! do), control characters in names, two containers whose ids share a
//! prefix, and time-0 container metadata. Written by the test's own scap
//! writer (tests/common/scap_writer.rs).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use chids_core::source::scap::{dump, DumpFormat, DumpOptions, ScapSource};
use chids_core::source::{EventSource, ReadOptions};
use common::scap_writer::{ty, Proc, ScapWriter, AT_FDCWD, O_CLOEXEC, O_RDONLY, P};

const WEB: &str = "abc1d6f0e2b1c3a4958766aa00112233445566778899aabbccddeeff00112233";
const DB: &str = "abc2d6f0e2b1c3a4958766aa00112233445566778899aabbccddeeff00112233";
const APP: i64 = 100;
const ODD: i64 = 200;
const START: u64 = 1_700_000_000_000_000_000;

/// Writes the capture; each step appends its events in order, so the event
/// numbers the tests look up (1 = container metadata, 2 = openat, ...) stay
/// those of one fixed sequence.
fn capture(dir: &Path) -> PathBuf {
    let web_cg = format!("cpuset=/docker/{WEB}\0cpu=/docker/{WEB}");
    let db_cg = format!("cpuset=/docker/{DB}");
    let mut w = ScapWriter::new(START);
    w.processes(&[
        Proc {
            tid: APP as u64,
            pid: APP as u64,
            comm: "app",
            cwd: "/srv/",
            cgroups: &web_cg,
        },
        Proc {
            tid: ODD as u64,
            pid: ODD as u64,
            comm: "we\x0cird",
            cwd: "/",
            cgroups: &db_cg,
        },
    ])
    .files(
        APP as u64,
        &[(0, "/dev/pts/0"), (1, "/dev/pts/0"), (2, "/dev/pts/0")],
    );
    time_zero_container_metadata(&mut w);
    file_descriptor_events(&mut w);
    socket_events(&mut w);
    newer_event_types(&mut w);
    control_characters_in_a_name(&mut w);
    user_metadata_with_a_real_time(&mut w);
    close_range_of_the_pipe(&mut w);
    let path = dir.join("newer.scap");
    w.write(&path);
    path
}

/// Event 1: the web container's metadata at time 0 (hidden by dump).
fn time_zero_container_metadata(w: &mut ScapWriter) {
    let json = format!(
        "{{\"container\":{{\"id\":\"{}\",\"name\":\"web\"}}}}",
        &WEB[..12]
    );
    w.event_at(0, -1, ty::CONTAINER_JSON_2_E, &[P::Str(&json)], true);
}

/// Events 2-9: open, stat, dup3/dup2 copies, close and reads through them.
fn file_descriptor_events(w: &mut ScapWriter) {
    w.event(
        APP,
        ty::OPENAT_2_X,
        &[
            P::I64(3),
            P::I64(AT_FDCWD),
            P::Str("data.txt"),
            P::U32(O_RDONLY),
            P::U32(0),
            P::U32(0),
        ],
    )
    .event(
        APP,
        ty::NEWFSTATAT_X,
        &[
            P::I64(0),
            P::I64(AT_FDCWD),
            P::Str("conf/app.yml"),
            P::U32(0),
        ],
    )
    .event(
        APP,
        ty::DUP3_X,
        &[P::I64(7), P::I64(3), P::I64(7), P::U32(O_CLOEXEC)],
    )
    .event(APP, ty::DUP2_X, &[P::I64(1), P::I64(3), P::I64(1)])
    .event(APP, ty::CLOSE_X, &[P::I64(0), P::I64(3)])
    .event(
        APP,
        ty::READ_X,
        &[P::I64(4), P::Bytes(b"abcd"), P::I64(7), P::U32(4)],
    )
    .event(
        APP,
        ty::READ_X,
        &[P::I64(-9), P::Bytes(b""), P::I64(3), P::U32(4)],
    )
    .event(
        APP,
        ty::READ_X,
        &[P::I64(4), P::Bytes(b"abcd"), P::I64(1), P::U32(4)],
    );
}

/// Events 10-12: a socket, an accept4 with its tuple, a read on it.
fn socket_events(w: &mut ScapWriter) {
    w.event(
        APP,
        ty::SOCKET_X,
        &[P::I64(4), P::U32(2), P::U32(1), P::U32(0), P::U32(0)],
    )
    .event(
        APP,
        ty::ACCEPT4_6_X,
        &[
            P::I64(5),
            P::Tuple4([10, 0, 0, 1], 40000, [10, 0, 0, 2], 80),
            P::U8(0),
            P::U32(0),
            P::U32(128),
            P::U32(0),
        ],
    )
    .event(
        APP,
        ty::READ_X,
        &[P::I64(4), P::Bytes(b"GET "), P::I64(5), P::U32(4)],
    );
}

/// Events 13-16: types libs added after id 351, sent exit-only.
fn newer_event_types(w: &mut ScapWriter) {
    w.event(
        APP,
        ty::PIPE2_X,
        &[P::I64(0), P::I64(8), P::I64(9), P::U64(0), P::U32(0)],
    )
    .event(
        APP,
        ty::MEMFD_CREATE_X,
        &[P::I64(10), P::Str("jit"), P::U32(0)],
    )
    .event(
        APP,
        ty::PRCTL_X,
        &[P::I64(0), P::U32(15), P::Str("worker"), P::I64(0)],
    )
    .event(
        APP,
        ty::FINIT_MODULE_X,
        &[P::I64(-1), P::I64(10), P::Str(""), P::U32(0)],
    );
}

/// Event 17: the db container's process opens a name with a newline.
fn control_characters_in_a_name(w: &mut ScapWriter) {
    w.event(
        ODD,
        ty::OPENAT_2_X,
        &[
            P::I64(3),
            P::I64(AT_FDCWD),
            P::Str("evil\nname"),
            P::U32(O_RDONLY),
            P::U32(0),
            P::U32(0),
        ],
    );
}

/// Event 18: metadata with a real time: printed by dump, no system call.
fn user_metadata_with_a_real_time(w: &mut ScapWriter) {
    w.event(
        -1,
        ty::USER_ADDED_E,
        &[
            P::U32(1001),
            P::U32(1001),
            P::Str("svc"),
            P::Str("/home/svc"),
            P::Str("/bin/sh"),
            P::Str(""),
        ],
    );
}

/// Events 19-20: close_range(8, 9) closes both pipe ends (id 451, the
/// newest type); a read on one end then fails.
fn close_range_of_the_pipe(w: &mut ScapWriter) {
    w.event(
        APP,
        ty::CLOSE_RANGE_X,
        &[P::I64(0), P::U32(8), P::U32(9), P::U32(0)],
    )
    .event(
        APP,
        ty::READ_X,
        &[P::I64(-9), P::Bytes(b""), P::I64(8), P::U32(1)],
    );
}

fn dump_lines(path: &Path, options: &DumpOptions) -> Vec<String> {
    let mut out = Vec::new();
    let stats = dump(path, options, &mut out).unwrap();
    assert_eq!(stats.read.malformed, 0, "{:?}", stats.read.first_malformed);
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    assert_eq!(
        lines.len() as u64,
        stats.events,
        "one line per event:\n{text}"
    );
    lines
}

fn line_of(lines: &[String], num: u64) -> &str {
    let prefix = format!("{num} ");
    lines
        .iter()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no event {num} in\n{}", lines.join("\n")))
}

#[test]
fn newer_event_types_decode_with_names_and_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let lines = dump_lines(&capture(dir.path()), &DumpOptions::default());
    let expect = [
        (
            2,
            "< openat fd=3(<f>/srv/data.txt) dirfd=-100(AT_FDCWD) name=data.txt(/srv/data.txt)",
        ),
        (
            3,
            "< newfstatat res=0 dirfd=-100(AT_FDCWD) path=conf/app.yml(/srv/conf/app.yml) flags=0",
        ),
        (
            4,
            "< dup3 res=7(<f>/srv/data.txt) oldfd=3(<f>/srv/data.txt) newfd=7(<f>/srv/data.txt)",
        ),
        (
            5,
            "< dup2 res=1(<f>/srv/data.txt) oldfd=3(<f>/srv/data.txt) newfd=1(<f>/srv/data.txt)",
        ),
        (
            11,
            "< accept4 fd=5(<4t>10.0.0.1:40000->10.0.0.2:80) tuple=10.0.0.1:40000->10.0.0.2:80",
        ),
        (13, "< pipe2 res=0 fd1=8(<p>) fd2=9(<p>)"),
        (14, "< memfd_create fd=10(<m>jit) name=jit"),
        (15, "< prctl res=0 option=15(PR_SET_NAME) arg2_str=worker"),
        (16, "< finit_module res=-1(EPERM) fd=10(<m>jit)"),
        (
            18,
            " (-1) > useradded uid=1001 gid=1001 name=svc home=/home/svc shell=/bin/sh",
        ),
    ];
    for (num, want) in expect {
        let l = line_of(&lines, num);
        assert!(l.contains(want), "event {num}:\n got  {l}\n want {want}");
    }
}

#[test]
fn fd_table_follows_dup_close_and_accept4() {
    let dir = tempfile::tempdir().unwrap();
    let lines = dump_lines(&capture(dir.path()), &DumpOptions::default());
    // fd 3 closed: its dup3 copy (7) and dup2 copy (1) still name the file.
    assert!(line_of(&lines, 7).contains("< read res=4 data=abcd fd=7(<f>/srv/data.txt)"));
    let closed = line_of(&lines, 8);
    assert!(
        closed.contains("res=-9(EBADF) data= fd=3 size=4"),
        "{closed}"
    );
    assert!(line_of(&lines, 9).contains("fd=1(<f>/srv/data.txt)"));
    assert!(line_of(&lines, 12).contains("fd=5(<4t>10.0.0.1:40000->10.0.0.2:80)"));
    assert!(line_of(&lines, 19).contains("< close_range res=0 first=8 last=9"));
    let closed = line_of(&lines, 20);
    assert!(
        closed.contains("res=-9(EBADF) data= fd=8 size=1"),
        "{closed}"
    );
}

#[test]
fn the_pipeline_gets_new_events_with_their_typed_path() {
    let dir = tempfile::tempdir().unwrap();
    let src = ScapSource::open(capture(dir.path())).unwrap();
    let mut seen = Vec::new();
    let stats = src
        .read(&ReadOptions::default(), &mut |e| {
            seen.push((e.syscall.to_string(), e.params.path.map(str::to_string)));
            Ok(())
        })
        .unwrap();
    assert_eq!(stats.malformed, 0, "{:?}", stats.first_malformed);
    let names: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
    for n in [
        "newfstatat",
        "dup3",
        "dup2",
        "accept4",
        "pipe2",
        "memfd_create",
        "prctl",
        "finit_module",
    ] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    assert!(
        seen.contains(&("newfstatat".into(), Some("/srv/conf/app.yml".into()))),
        "{seen:?}"
    );
    // Container and user metadata are no system calls.
    assert!(!names.contains(&"container"), "{names:?}");
    assert!(!names.contains(&"useradded"), "{names:?}");
}

#[test]
fn dump_escapes_control_characters_and_hides_time_zero_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let path = capture(dir.path());
    let lines = dump_lines(&path, &DumpOptions::default());
    let odd = line_of(&lines, 17);
    assert!(odd.contains(" we\\x0cird (200) < openat "), "{odd}");
    assert!(odd.contains("name=evil\\x0aname(/evil\\x0aname)"), "{odd}");
    assert!(
        !lines.iter().any(|l| l.contains("> container json=")),
        "{lines:?}"
    );
    let all = dump_lines(
        &path,
        &DumpOptions {
            all_events: true,
            ..DumpOptions::default()
        },
    );
    assert_eq!(all.len(), lines.len() + 1);
    assert!(line_of(&all, 1)
        .starts_with("1 00:00:00.000000000 0 container:abc1d6f0e2b1 (-1) > container json="));
    // JSON keeps every byte and the full container id.
    let mut out = Vec::new();
    let json = DumpOptions {
        format: DumpFormat::Json,
        ..DumpOptions::default()
    };
    dump(&path, &json, &mut out).unwrap();
    let odd: serde_json::Value = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["tid"] == ODD)
        .unwrap();
    assert_eq!(odd["process"], "we\x0cird");
    assert_eq!(odd["container"], DB);
}

fn pipeline_count(path: &Path, container: &str) -> Result<u64, String> {
    let options = ReadOptions {
        container: Some(container.into()),
        ..ReadOptions::default()
    };
    let mut n = 0;
    ScapSource::open(path)
        .unwrap()
        .read(&options, &mut |_| {
            n += 1;
            Ok(())
        })
        .map(|_| n)
        .map_err(|e| e.to_string())
}

#[test]
fn container_takes_the_full_id_or_a_unique_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let path = capture(dir.path());
    let app_events = 17;
    for id in [WEB, &WEB[..12], "abc1", &WEB.to_ascii_uppercase()] {
        assert_eq!(
            pipeline_count(&path, id),
            Ok(app_events),
            "--container {id}"
        );
        let options = DumpOptions {
            container: Some(id.into()),
            ..DumpOptions::default()
        };
        let lines = dump_lines(&path, &options);
        assert_eq!(lines.len() as u64, app_events, "{lines:?}");
        assert!(lines.iter().all(|l| l.contains(" app (100) ")), "{lines:?}");
    }
    assert_eq!(pipeline_count(&path, DB), Ok(1));
    let e = pipeline_count(&path, "abc").unwrap_err();
    assert!(
        e.contains("--container abc is ambiguous") && e.contains("newer.scap"),
        "{e}"
    );
    let e = pipeline_count(&path, "ffff").unwrap_err();
    assert!(e.contains("--container ffff selects no event"), "{e}");
    assert!(
        e.contains("abc1d6f0e2b1") && e.contains("abc2d6f0e2b1"),
        "{e}"
    );
}

#[test]
fn cli_dump_reports_a_filter_that_selects_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = capture(dir.path());
    for (id, why) in [("ffff", "selects no event"), ("abc", "is ambiguous")] {
        let o = Command::new(env!("CARGO_BIN_EXE_chids"))
            .args(["dump", "--container", id, path.to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "--container {id}: {err}");
        assert!(
            err.contains(why) && err.trim().lines().count() == 1,
            "{err}"
        );
    }
    let o = Command::new(env!("CARGO_BIN_EXE_chids"))
        .args([
            "dump",
            "--all-events",
            "--container",
            WEB,
            path.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 17);
}
