//! Build script. This crate is only built with the `chids` feature `live`,
//! so a plain `cargo build` needs no clang, no libbpf headers and no kernel
//! BTF.
//!
//! It compiles the eBPF program `src/bpf/chids.bpf.c` with
//! clang and generates its Rust skeleton (libbpf-cargo), whose `types`
//! module is how the Rust side sees the kernel interface
//! (`src/bpf/chids_abi.h`). The program is CO-RE and includes the
//! `vmlinux.h` committed for the target architecture
//! (`src/bpf/vmlinux/<arch>/`, see the README there; libbpf-cargo
//! defines `__TARGET_ARCH_<arch>` from CARGO_CFG_TARGET_ARCH).
//! `CHIDS_VMLINUX_H=/path/to/vmlinux.h` overrides it.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    live::build();
}

mod live {
    use std::path::PathBuf;

    const SRC: &str = "src/bpf/chids.bpf.c";
    /// Everything the program includes besides vmlinux.h and libbpf's headers.
    const HEADERS: &[&str] = &[
        "src/bpf/chids_abi.h",
        "src/bpf/arch.bpf.h",
        "src/bpf/aggregate.bpf.h",
        "src/bpf/iouring.bpf.h",
        "src/bpf/exec.bpf.h",
        "src/bpf/syscall.bpf.h",
    ];

    pub fn build() {
        println!("cargo:rerun-if-changed={SRC}");
        for h in HEADERS {
            println!("cargo:rerun-if-changed={h}");
        }
        println!("cargo:rerun-if-env-changed=CHIDS_VMLINUX_H");
        let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
        let include = match std::env::var_os("CHIDS_VMLINUX_H") {
            Some(given) => {
                let dir = out.join("bpf-include");
                std::fs::create_dir_all(&dir).expect("create OUT_DIR/bpf-include");
                std::fs::copy(&given, dir.join("vmlinux.h")).unwrap_or_else(|e| {
                    panic!("CHIDS_VMLINUX_H={}: {e}", PathBuf::from(&given).display())
                });
                dir
            }
            None => committed_vmlinux(),
        };
        println!(
            "cargo:rerun-if-changed={}",
            include.join("vmlinux.h").display()
        );

        libbpf_cargo::SkeletonBuilder::new()
            .source(SRC)
            .clang_args([
                std::ffi::OsString::from("-I"),
                include.into_os_string(),
                "-Wall".into(),
                "-Wno-unused-function".into(),
            ])
            .build_and_generate(out.join("chids.skel.rs"))
            .unwrap_or_else(|e| {
                panic!(
                    "building the eBPF program {SRC} failed: {e:#}\n\
                     (feature `live` needs clang and libbpf-dev: run .ci/live-deps.sh)"
                )
            });
    }

    /// The folder of the committed vmlinux.h for the target architecture.
    fn committed_vmlinux() -> PathBuf {
        let arch = std::env::var("CARGO_CFG_TARGET_ARCH").expect("CARGO_CFG_TARGET_ARCH");
        let dir = PathBuf::from("src/bpf/vmlinux").join(&arch);
        if !dir.join("vmlinux.h").exists() {
            panic!(
                "feature `live`: no vmlinux.h for target architecture {arch} \
                 (supported: x86_64, aarch64); set CHIDS_VMLINUX_H to one generated \
                 with `bpftool btf dump file /sys/kernel/btf/vmlinux format c`"
            );
        }
        dir
    }
}
