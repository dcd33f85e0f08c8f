#!/usr/bin/env bash
# Installs what the tests need beyond Rust: the eBPF toolchain for the live
# capture feature, the programs the end-to-end tests drive and the font the
# report plots load at run time (fonts-dejavu-core). Idempotent;
# needs root (apt-get) unless everything is already there.
# nginx-light: the server of the lab scenario tests/lab_small.rs records
# (lab/nginx-alias-traversal); the other lab scenarios' packages are in
# lab/install-deps.sh.
# podman, runc, nats-server, busybox-static: the `chids agent` tests run real
# containers (images imported from a busybox rootfs, no registry needed) and
# publish alerts to a real broker.
# libfaketime: tests/live_agent_clock.rs steps the agent's wall clock (and
# only its) to show that windows close on the events' clock.
# chromium, chromium-driver: tests/console_ui.rs drives the `chids ui` page in
# a real headless browser through WebDriver.
# liburing-dev: tests/live_iouring.rs builds a program that opens, reads and
# connects through io_uring (cc -luring).
# containerd: tests/live_agent_cri.rs runs a pod through its CRI plugin (in
# a folder of its own, never the host's containerd).
set -euo pipefail
exec "$(dirname "$0")/apt-install.sh" \
  clang libbpf-dev libelf-dev zlib1g-dev pkg-config bpftool curl python3 unzip \
  fonts-dejavu-core nginx-light \
  podman runc nats-server busybox-static libfaketime containerd liburing-dev \
  chromium chromium-driver
