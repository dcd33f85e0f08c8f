#!/usr/bin/env bash
# Benchmark (not a test) of the offline `.scap` paths as CLI runs, the way a
# user runs them: wall-clock medians of interleaved repetitions.
#
#   cargo build --release && CHIDS_SHARED=/work/shared benches/scap_cli.sh [REPS]
#   CHIDS_BASE=path/to/other/chids ... also times that build (e.g. main's)
#   in the same interleaved loop, for a before/after under the same load
#
# Prints, per measure, the median and the ratio to its reference:
#   split A (compat)  `chids baseline --compat` + `chids evaluate` on the
#                     reference's split A `.scap` files, against the
#                     reference's own wall clock (parity/runs logs)
#   vectors           `chids vectors` on the 144k-event k8s capture (modern
#                     model trained on it), against `sysdig -r` of it
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${1:-9}
SHARED=${CHIDS_SHARED:?set CHIDS_SHARED to the shared data folder}
S=$SHARED/data/scap
K8S=$S/troubleshooting-docker-kubernetes-sysdig/capture.scap
B=${CHIDS_BIN:-$PWD/target/release/chids}
[ -x "$B" ] || { echo "build first: cargo build --release" >&2; exit 1; }
command -v sysdig >/dev/null || { echo "sysdig is not installed (apt-get install --no-install-recommends sysdig)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

train=("$S/sysdig-opensource-examples" "$S/troubleshooting-docker-kubernetes-sysdig")
attack=("$S/falco" "$S/libs")
BASE=${CHIDS_BASE:-}
split_a_with() {
  rm -rf "$work/a"
  "$1" baseline --compat --td "${train[@]}" --od "$work/a" >/dev/null 2>&1
  "$1" evaluate --model "$work/a" --ns "${train[@]}" --ms "${attack[@]}" >/dev/null 2>&1
}
split_a() { split_a_with "$B"; }
base_split_a() { split_a_with "$BASE"; }
"$B" baseline --td "$K8S" --od "$work/k8s" >/dev/null 2>&1
vectors() { "$B" vectors --model "$work/k8s" "$K8S" >/dev/null; }
base_vectors() { "$BASE" vectors --model "$work/k8s" "$K8S" >/dev/null; }
sysdig_r() { sysdig -r "$K8S" >/dev/null; }

# Seconds one call of $1 takes.
timed() {
  local t0 t1
  t0=$(date +%s.%N)
  "$1"
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}
median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

# The reference's wall clock for split A: baseline + evaluate.
ref=0
for log in A_baseline.log A_evaluate.log; do
  v=$(grep -h "Elapsed (wall clock)" "$SHARED/parity/runs/$log" | awk '{print $NF}')
  s=$(echo "$v" | awk -F: '{t=0; for (i=1;i<=NF;i++) t=t*60+$i; print t}')
  ref=$(echo "$ref + $s" | bc -l)
done

split_a; vectors # warm the page cache
: >"$work/a.t"; : >"$work/v.t"; : >"$work/s.t"; : >"$work/ba.t"; : >"$work/bv.t"
for _ in $(seq "$REPS"); do
  timed split_a >>"$work/a.t"
  timed vectors >>"$work/v.t"
  timed sysdig_r >>"$work/s.t"
  if [ -n "$BASE" ]; then
    timed base_split_a >>"$work/ba.t"
    timed base_vectors >>"$work/bv.t"
  fi
done
a=$(median <"$work/a.t"); v=$(median <"$work/v.t"); s=$(median <"$work/s.t")
echo "load: $(cut -d' ' -f1-3 /proc/loadavg), $REPS interleaved reps, medians"
printf 'split A compat from .scap (baseline + evaluate)  %.3f s   reference %.1f s   %.0fx\n' "$a" "$ref" "$(echo "$ref / $a" | bc -l)"
printf 'vectors, k8s capture (146k events)               %.3f s   sysdig -r %.3f s   %.1fx\n' "$v" "$s" "$(echo "$s / $v" | bc -l)"
samples() { sort -g "$1" | awk '{printf "%.3f ", $1}'; }
echo "samples (s): split A: $(samples "$work/a.t")"
echo "             vectors: $(samples "$work/v.t")"
echo "             sysdig -r: $(samples "$work/s.t")"
if [ -n "$BASE" ]; then
  ba=$(median <"$work/ba.t"); bv=$(median <"$work/bv.t")
  printf '%s, same loop: split A %.3f s (%.0fx the reference), vectors %.3f s (%.1fx sysdig -r)\n' \
    "$BASE" "$ba" "$(echo "$ref / $ba" | bc -l)" "$bv" "$(echo "$s / $bv" | bc -l)"
fi
