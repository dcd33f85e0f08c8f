//! Build script. This crate is only built with the `chids` feature `live`,
//! so a plain `cargo build` needs no clang, no libbpf headers and no kernel
//! BTF.
//!
//! It compiles the eBPF program `src/bpf/chids.bpf.c` with
//! clang and generates its Rust skeleton (libbpf-cargo). The program is CO-RE:
//! it includes a `vmlinux.h` generated here from the build machine's kernel
//! BTF with bpftool (into OUT_DIR, not committed: it is ~3 MB and regenerating
//! it is one fast command). `CHIDS_VMLINUX_H=/path/to/vmlinux.h` overrides it
//! (for builders without /sys/kernel/btf/vmlinux).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    live::build();
}

mod live {
    use std::path::PathBuf;
    use std::process::Command;

    const SRC: &str = "src/bpf/chids.bpf.c";

    pub fn build() {
        println!("cargo:rerun-if-changed={SRC}");
        println!("cargo:rerun-if-changed=src/bpf/aggregate.bpf.h");
        println!("cargo:rerun-if-env-changed=CHIDS_VMLINUX_H");
        let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
        let include = out.join("bpf-include");
        std::fs::create_dir_all(&include).expect("create OUT_DIR/bpf-include");
        let vmlinux = include.join("vmlinux.h");

        if let Some(given) = std::env::var_os("CHIDS_VMLINUX_H") {
            std::fs::copy(&given, &vmlinux).unwrap_or_else(|e| {
                panic!("CHIDS_VMLINUX_H={}: {e}", PathBuf::from(&given).display())
            });
        } else if !vmlinux.exists() {
            generate_vmlinux(&vmlinux);
        }

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

    fn generate_vmlinux(dst: &std::path::Path) {
        const BTF: &str = "/sys/kernel/btf/vmlinux";
        if !std::path::Path::new(BTF).exists() {
            panic!(
                "feature `live`: {BTF} not found (kernel without BTF?); \
                 set CHIDS_VMLINUX_H to a vmlinux.h generated elsewhere"
            );
        }
        let bpftool = ["bpftool", "/usr/sbin/bpftool", "/usr/local/sbin/bpftool"]
            .into_iter()
            .find(|b| Command::new(b).arg("version").output().is_ok())
            .unwrap_or_else(|| {
                panic!("feature `live`: bpftool not found (apt-get install bpftool; see .ci/live-deps.sh)")
            });
        let output = Command::new(bpftool)
            .args(["btf", "dump", "file", BTF, "format", "c"])
            .output()
            .expect("run bpftool");
        if !output.status.success() {
            panic!(
                "bpftool btf dump failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::fs::write(dst, output.stdout).expect("write vmlinux.h");
    }
}
