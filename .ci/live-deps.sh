#!/usr/bin/env bash
# Debian packages the `live` feature (eBPF capture) needs at build time:
# clang compiles crates/chids-live/src/bpf/chids.bpf.c, libbpf-dev provides bpf_helpers.h,
# bpftool generates vmlinux.h from the kernel's BTF, libelf/zlib/pkg-config
# are for libbpf-sys building the vendored libbpf that libbpf-rs links.
# `unshare` (util-linux) is used at run time by `chids record -- CMD`.
set -euo pipefail
pkgs=(clang libbpf-dev libelf-dev zlib1g-dev bpftool pkg-config make util-linux)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
