#!/usr/bin/env bash
# Two chids binaries compared on one workload in one interleaved loop (root).
#
#   bash benches/ab_find.sh OLD_CHIDS NEW_CHIDS [REPS]
#
# Each rep runs, one after the other: the workload plainly, then under each
# binary's `monitor --windows kernel -- CMD`, `monitor --windows events` and
# `record -- CMD`. Measured by /usr/bin/time inside the watched cgroup: the
# workload's wall time and its system time. The system time is the better
# measure of what the kernel program costs a call on a busy machine: the
# programs run in the calling task's context, and other processes' calls
# (which inflate the kernel's global BPF run-time stats) do not count in it.
# Both binaries use one model, trained from NEW's recordings with per-thread
# edges. Prints each run, then medians and their ratio to plain.
# AB_WORK=flood runs `dd bs=1 count=1000000` (2M tiny calls) instead of
# `find /usr`. On a machine shared with other work, ratios from one loop
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
case ${AB_WORK:-find} in
  find) WORK=(find /usr) ;;
  flood) WORK=(dd if=/dev/zero of=/dev/null bs=1 count=1000000) ;;
  *) die "AB_WORK is find or flood, got '$AB_WORK'" ;;
esac
"${WORK[@]}" >/dev/null 2>&1 || true # warm the dentry cache
median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
# "wall system" seconds as /usr/bin/time printed them (tag "W=").
times_of() { sed -n 's/.*W=\([0-9.]*\) S=\([0-9.]*\).*/\1 \2/p' "$1" | tail -1; }
TIME=(/usr/bin/time -f "W=%e S=%S")

for i in 1 2; do
  "$NEW" record --out "$TMP/t$i.zip" -- "${WORK[@]}" >/dev/null 2>&1 || die "training recording $i failed"
done
"$NEW" baseline --edges thread --td "$TMP/t1.zip" "$TMP/t2.zip" --od "$TMP/model" --epochs 20 >/dev/null 2>&1 ||
  die "baseline failed"

run_one() { # name binary mode -> appends "wall system" seconds to $TMP/<name>
  local name=$1 bin=$2 mode=$3
  case $mode in
    plain) "${TIME[@]}" "${WORK[@]}" >/dev/null 2>"$TMP/o" ;;
    record) rm -f "$TMP/r.zip"
      "$bin" record --out "$TMP/r.zip" -- "${TIME[@]}" "${WORK[@]}" >/dev/null 2>"$TMP/o" || true ;;
    kernel|events)
      "$bin" monitor --windows "$mode" --model "$TMP/model" -- "${TIME[@]}" "${WORK[@]}" >/dev/null 2>"$TMP/o" || true ;;
  esac
  local t
  t=$(times_of "$TMP/o")
  [ -n "$t" ] || die "$name: no times: $(tail -3 "$TMP/o")"
  echo "$t" >>"$TMP/$name"
  echo "$name $t"
}
RUNS="plain:-:plain old-kernel:$OLD:kernel new-kernel:$NEW:kernel old-events:$OLD:events new-events:$NEW:events old-record:$OLD:record new-record:$NEW:record"
for _ in $(seq "$REPS"); do
  for r in $RUNS; do
    IFS=: read -r name bin mode <<<"$r"
    run_one "$name" "$bin" "$mode"
  done
done
col() { awk -v c="$1" '{ print $c }' "$2" | median; }
plain=$(col 1 "$TMP/plain") plain_sys=$(col 2 "$TMP/plain")
printf '| %s, %s reps | median wall (s) | vs plain | median system (s) | vs plain |\n|---|---|---|---|---|\n' "${WORK[*]}" "$REPS"
for r in $RUNS; do
  name=${r%%:*}
  awk -v n="$name" -v w="$(col 1 "$TMP/$name")" -v s="$(col 2 "$TMP/$name")" -v p="$plain" -v ps="$plain_sys" \
    'BEGIN { printf "| %s | %s | %.2fx | %s | %.2fx |\n", n, w, w / p, s, ps ? s / ps : 0 }'
done
