//! The eBPF program builds for every architecture it supports, not only
//! the one this machine is (the build compiles that one): each with its
//! committed vmlinux.h (crates/chids-live/src/bpf/vmlinux/<arch>/). Compile only: what
//! breaks here is an architecture-specific part (registers, syscall
//! numbers, kernel types) that the host build does not see.
//!
//! Needs clang and libbpf's headers, as feature `live` does.
#![cfg(feature = "live")]

use std::path::Path;
use std::process::Command;

/// (Rust target_arch, libbpf's __TARGET_ARCH_ name).
const ARCHES: &[(&str, &str)] = &[("x86_64", "x86"), ("aarch64", "arm64")];

fn compile(arch: &str, target: &str, out: &Path) -> std::process::Output {
    let bpf = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/chids-live/src/bpf");
    Command::new("clang")
        .args(["-g", "-O2", "-target", "bpf", "-Wall", "-Werror"])
        .args(["-Wno-unused-function", "-fno-stack-protector"])
        .arg(format!("-D__TARGET_ARCH_{target}"))
        .arg("-I")
        .arg(bpf.join("vmlinux").join(arch))
        .arg("-c")
        .arg(bpf.join("chids.bpf.c"))
        .arg("-o")
        .arg(out)
        .output()
        .unwrap_or_else(|e| panic!("clang not runnable ({e}): feature `live` needs clang"))
}

#[test]
fn program_compiles_for_every_supported_architecture() {
    let dir = std::env::temp_dir().join(format!("chids-bpf-arch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (arch, target) in ARCHES {
        let out = dir.join(format!("chids-{arch}.bpf.o"));
        let done = compile(arch, target, &out);
        assert!(
            done.status.success(),
            "the eBPF program does not build for {arch}:\n{}",
            String::from_utf8_lossy(&done.stderr)
        );
        let object = std::fs::read(&out).unwrap();
        // An ELF object for the BPF machine (EM_BPF = 247).
        assert_eq!(&object[..4], b"\x7fELF", "{arch}: not an ELF object");
        assert_eq!(
            u16::from_le_bytes([object[18], object[19]]),
            247,
            "{arch}: not BPF"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
