#!/usr/bin/env bash
# The test command. Arguments go to the test binaries: tests that need the
# shared data (CHIDS_SHARED) or root + eBPF are #[ignore]d and listed as
# such; `scripts/test.sh --include-ignored` runs them too (what .ci/run
# does), and then a missing prerequisite fails them.
# Live-capture tests need clang and libbpf to build (scripts/install-test-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
# Every crate of the workspace; the live ones (chids-live, chids-agent)
# only where they can be built.
packages=()
if command -v clang >/dev/null 2>&1 && [ -e /usr/include/bpf/libbpf.h ]; then
  packages=(--workspace --features chids/live)
else
  echo "test.sh: clang/libbpf-dev not found: live-capture tests not built (scripts/install-test-deps.sh installs them)" >&2
fi
# Asked for everything without the shared captures: say so before the long
# build, not only in the failures at the end (README, "Testing").
if [[ " $* " == *" --include-ignored "* || " $* " == *" --ignored "* ]] && [ -z "${CHIDS_SHARED:-}" ]; then
  echo "test.sh: CHIDS_SHARED is not set: the tests that read the shared captures will fail (CHIDS_SHARED=/path/to/shared, see the README's Testing section)" >&2
fi
# --no-fail-fast: one missing prerequisite must not hide the other tests' results.
cargo test --release --no-fail-fast "${packages[@]}" -- --test-threads=2 "$@"
