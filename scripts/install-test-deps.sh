#!/usr/bin/env bash
# Installs what the tests need beyond Rust: the eBPF toolchain for the live
# capture feature, the programs the end-to-end tests drive and the font the
# report plots load at run time (fonts-dejavu-core). Idempotent;
# needs root (apt-get) unless everything is already there.
set -euo pipefail
need=()
# nginx-light: the server of the lab scenario tests/lab_small.rs records
# (lab/nginx-alias-traversal); the other lab scenarios' packages are in
# lab/install-deps.sh.
for pkg in clang libbpf-dev libelf-dev zlib1g-dev pkg-config bpftool curl python3 unzip fonts-dejavu-core nginx-light; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-test-deps: missing ${need[*]} and not root; install them first" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  # No init system here: keep the packages' daemons (nginx) from being
  # started by their install scripts.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
