//! Live: 32-bit (ia32) system calls get their own names and arguments.
//!
//! A 64-bit process may enter the kernel through the ia32 gate (`int
//! $0x80`), where call 5 is `open` and its path is in ebx — on x86-64, 5
//! is `fstat`. An attacker can use this to make a file open look like an
//! `fstat` without a path. The workload here opens a file both ways; the
//! recording must show two `open` calls with that path and no `fstat`.
//!
//! Needs root, eBPF and a C compiler (`cc`).
#![cfg(feature = "live")]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use chids_live::{self as live, RecordOptions, Target};

const PROBE_C: &str = r#"
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv) {
    const char *path = argv[1];
    /* The ia32 gate takes 32-bit pointers: put the path in the low 2 GB. */
    char *low = mmap(0, 4096, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
    if (low == MAP_FAILED) return 2;
    strcpy(low, path);
    long fd;
    /* ia32 open(path, O_RDONLY) = 5; ebx is callee-saved, so swap it. */
    __asm__ volatile(
        "xchg %%ebx, %%edi\n\t"
        "int $0x80\n\t"
        "xchg %%ebx, %%edi"
        : "=a"(fd)
        : "a"(5), "D"((unsigned)(unsigned long)low), "c"(0), "d"(0)
        : "memory");
    if (fd < 0) return 3;
    /* The same open through the 64-bit gate. */
    int fd64 = open(path, O_RDONLY);
    if (fd64 < 0) return 4;
    return 0;
}
"#;

#[test]
#[ignore = "needs root, eBPF and cc (run with --include-ignored)"]
fn ia32_open_is_named_open_with_its_path() {
    live::capture::check_environment().expect("live capture environment");
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("probe.c");
    let bin = tmp.path().join("probe");
    std::fs::write(&src, PROBE_C).unwrap();
    let cc = Command::new("cc")
        .args(["-O0", "-o"])
        .arg(&bin)
        .arg(&src)
        .status()
        .expect("cc runs");
    assert!(cc.success(), "cc failed");
    let target_file = tmp.path().join("ia32-target");
    std::fs::write(&target_file, "x").unwrap();

    let out = tmp.path().join("ia32.zip");
    let summary = live::record(
        RecordOptions {
            target: Target::Command(vec![
                bin.display().to_string(),
                target_file.display().to_string(),
            ]),
            out: out.clone(),
            duration: Some(Duration::from_secs(30)),
            exploit_at: None,
            marker_file: None,
            force: false,
            stop: Default::default(),
        },
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(summary.command_status, Some(0), "probe failed: {summary:?}");

    let source = chids_core::source::discover::open(&out).unwrap();
    let want = target_file.display().to_string();
    let mut opens_of_target = 0;
    let mut misnamed = Vec::new();
    source
        .read(&Default::default(), &mut |ev| {
            if ev.dir == chids_core::event::Direction::Exit && ev.params.path == Some(&want) {
                if ev.syscall == "open" || ev.syscall == "openat" {
                    opens_of_target += 1;
                } else {
                    misnamed.push(ev.syscall.to_string());
                }
            }
            if ev.syscall == "fstat" && ev.info.contains("ia32-target") {
                misnamed.push("fstat".into());
            }
            Ok(())
        })
        .unwrap();
    assert!(misnamed.is_empty(), "misnamed: {misnamed:?}");
    assert_eq!(
        opens_of_target, 2,
        "the ia32 open and the 64-bit open of {want}"
    );
    assert!(Path::new(&out).exists());
}
