#!/usr/bin/env bash
# The test command. With CHIDS_SHARED pointing at the shared data folder the
# parity tests run on real captures; without it they are skipped (and say so).
# Live-capture tests need root, clang and libbpf (scripts/install-test-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
features=()
if command -v clang >/dev/null 2>&1 && [ -e /usr/include/bpf/libbpf.h ]; then
  features=(--features live)
else
  echo "test.sh: clang/libbpf-dev not found: live-capture tests not built (scripts/install-test-deps.sh installs them)" >&2
fi
cargo test --release "${features[@]}" -- --test-threads=2
