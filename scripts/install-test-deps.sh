#!/usr/bin/env bash
# Installs what the tests need beyond Rust: the eBPF toolchain for the live
# capture feature, the programs the end-to-end tests drive and the font the
# report plots load at run time (fonts-dejavu-core). Idempotent;
# needs root (apt-get) unless everything is already there.
set -euo pipefail
need=()
for pkg in clang libbpf-dev libelf-dev zlib1g-dev pkg-config bpftool curl python3 unzip fonts-dejavu-core; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-test-deps: missing ${need[*]} and not root; install them first" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
