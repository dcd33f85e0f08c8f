#!/usr/bin/env bash
# Two chids binaries compared on one workload in one interleaved loop (root).
#
#   bash benches/ab_find.sh OLD_CHIDS NEW_CHIDS [REPS]
#
# Each rep runs, one after the other: `find /usr` plainly, then under each
# binary's `monitor --windows kernel -- CMD`, `monitor --windows events` and
# `record -- CMD` (the workload's own wall time, from /usr/bin/time inside
# the watched cgroup). Both binaries use one model, trained from NEW's
# recordings with per-thread edges. Prints each run, then medians and their
# ratio to plain. On a machine shared with other work, ratios from one loop
# are comparable; absolute times between loops are not. CHIDS_BENCH_RT=1
# runs everything at real-time priority (chrt -f 50), as benches/live_overhead.sh.
set -euo pipefail
if [ "${CHIDS_BENCH_RT:-0}" = 1 ] && [ -z "${CHIDS_BENCH_RT_ON:-}" ]; then
  command -v chrt >/dev/null || { echo "ab_find: CHIDS_BENCH_RT=1 needs chrt (util-linux)" >&2; exit 1; }
  CHIDS_BENCH_RT_ON=1 exec chrt -f 50 bash "$0" "$@"
fi
die() { echo "ab_find: $*" >&2; exit 1; }
[ $# -ge 2 ] || die "usage: ab_find.sh OLD_CHIDS NEW_CHIDS [REPS]"
OLD=$(realpath "$1") NEW=$(realpath "$2") REPS=${3:-5}
[[ $REPS =~ ^[1-9][0-9]*$ ]] || die "REPS must be a positive integer, got '$REPS'"
[ -x "$OLD" ] && [ -x "$NEW" ] || die "both binaries must be executable"
[ "$(id -u)" = 0 ] || die "needs root (BPF, cgroups)"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
WORK=(find /usr)
"${WORK[@]}" >/dev/null 2>&1 || true # warm the dentry cache
median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
wall_of() { sed -n 's/.*W=\([0-9.]*\).*/\1/p' "$1" | tail -1; }

for i in 1 2; do
  "$NEW" record --out "$TMP/t$i.zip" -- "${WORK[@]}" >/dev/null 2>&1 || die "training recording $i failed"
done
"$NEW" baseline --edges thread --td "$TMP/t1.zip" "$TMP/t2.zip" --od "$TMP/model" --epochs 20 >/dev/null 2>&1 ||
  die "baseline failed"

run_one() { # name binary mode -> appends the wall seconds to $TMP/<name>
  local name=$1 bin=$2 mode=$3
  case $mode in
    plain) /usr/bin/time -f "W=%e" "${WORK[@]}" >/dev/null 2>"$TMP/o" ;;
    record) rm -f "$TMP/r.zip"
      "$bin" record --out "$TMP/r.zip" -- /usr/bin/time -f "W=%e" "${WORK[@]}" >/dev/null 2>"$TMP/o" || true ;;
    kernel|events)
      "$bin" monitor --windows "$mode" --model "$TMP/model" -- /usr/bin/time -f "W=%e" "${WORK[@]}" >/dev/null 2>"$TMP/o" || true ;;
  esac
  local w
  w=$(wall_of "$TMP/o")
  [ -n "$w" ] || die "$name: no wall time: $(tail -3 "$TMP/o")"
  echo "$w" >>"$TMP/$name"
  echo "$name $w"
}
RUNS="plain:-:plain old-kernel:$OLD:kernel new-kernel:$NEW:kernel old-events:$OLD:events new-events:$NEW:events old-record:$OLD:record new-record:$NEW:record"
for _ in $(seq "$REPS"); do
  for r in $RUNS; do
    IFS=: read -r name bin mode <<<"$r"
    run_one "$name" "$bin" "$mode"
  done
done
plain=$(median <"$TMP/plain")
printf '| run | median wall (s) | vs plain |\n|---|---|---|\n'
for r in $RUNS; do
  name=${r%%:*}
  m=$(median <"$TMP/$name")
  awk -v n="$name" -v m="$m" -v p="$plain" 'BEGIN { printf "| %s | %s | %.2fx |\n", n, m, m / p }'
done
