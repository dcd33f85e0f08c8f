#!/usr/bin/env bash
# Regenerates every lab scenario into OUT (default lab/out), one after the
# other (servers use fixed ports). Same knobs as each run.sh (SMALL, SEED,
# N_TRAIN, N_VAL, N_NORMAL, N_ATTACK, DURATION, CHIDS_RECORD).
# usage: sudo lab/run-all.sh [SCENARIO...]
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() { echo "lab: $*" >&2; exit 1; }
scen=("$@")
[ ${#scen[@]} -gt 0 ] || scen=(ftp-bruteforce nginx-alias-traversal redis-config-write flask-ssti post-exploitation)
for s in "${scen[@]}"; do
	[ -x "$HERE/$s/run.sh" ] || die "no scenario $s (no $HERE/$s/run.sh)"
done
failed=()
for s in "${scen[@]}"; do
	echo "== $s" >&2
	"$HERE/$s/run.sh" || failed+=("$s")
done
[ ${#failed[@]} -eq 0 ] || die "failed: ${failed[*]}"
