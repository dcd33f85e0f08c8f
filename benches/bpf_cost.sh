#!/usr/bin/env bash
# What the kernel program costs each watched system call (needs root).
#
#   bash benches/bpf_cost.sh [REPS]
#
# Wall-clock slowdowns on this shared 2-core machine move by ±20 % with
# whatever else runs; the kernel's own accounting of BPF program run time
# (kernel.bpf_stats_enabled) moves far less, and it is the part of the
# overhead the kernel program decides. For each way of capturing (record,
# monitor with per-event records, monitor with kernel windows), chids
# watches a cgroup while `find /usr` (warm cache) runs REPS times inside it
# (default 3), and this prints the per-call programs' (chids_sys_*) runs and
# mean nanoseconds per run (over every call on the machine: calls outside a
# watched cgroup leave after one lookup), all chids programs' total time per
# workload run (exec and task-exit programs included; the calls of other
# processes add a little), and the workload's median wall time beside a
# plain run's.
#
# CHIDS_BIN=path/to/chids measures that binary instead of building one (to
# compare two versions in one interleaved loop).
#
# The workload and chids run at real-time priority (chrt -f 50) so that a
# busy machine's other processes do not preempt them (a preempted program's
# run time includes the wait); set CHIDS_BENCH_RT=0 to run them normally.
# CHIDS_PROFILE=profiling builds and runs target/profiling/chids (line tables
# for perf and flamegraphs; the release profile has no debug info).
set -euo pipefail
die() { echo "bpf_cost: $*" >&2; exit 1; }
REPS=${1:-3}
[[ $REPS =~ ^[1-9][0-9]*$ ]] || die "REPS must be a positive integer, got '$REPS'"
[ "$(id -u)" = 0 ] || die "needs root (BPF, cgroups)"
command -v bpftool >/dev/null || die "bpftool missing (apt-get install bpftool)"
cd "$(dirname "$0")/.."
PROFILE=${CHIDS_PROFILE:-release}
if [ -n "${CHIDS_BIN:-}" ]; then
  LIVE=$(realpath "$CHIDS_BIN")
else
  cargo build --profile "$PROFILE" --features live --bins >/dev/null 2>&1 || cargo build --profile "$PROFILE" --features live --bins
  LIVE=target/$PROFILE/chids
fi
RT=()
if [ "${CHIDS_BENCH_RT:-1}" != 0 ] && command -v chrt >/dev/null; then RT=(chrt -f 50); fi
TMP=$(mktemp -d)
CG_ROOT=$(awk '$9 == "cgroup2" && $4 == "/" { print $5; exit }' /proc/self/mountinfo)
CG="$CG_ROOT/chids/bpf-cost-$$"
mkdir -p "$CG"
CHIDS_PID=
STATS_BEFORE=$(cat /proc/sys/kernel/bpf_stats_enabled)
cleanup() {
  if [ -n "$CHIDS_PID" ]; then kill -INT "$CHIDS_PID" 2>/dev/null || true; wait "$CHIDS_PID" 2>/dev/null || true; fi
  echo "$STATS_BEFORE" >/proc/sys/kernel/bpf_stats_enabled
  rmdir "$CG" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
echo 1 >/proc/sys/kernel/bpf_stats_enabled

WORK=(find /usr)
"${WORK[@]}" >/dev/null 2>&1 || true # warm the dentry cache
median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
# Runs the workload inside the cgroup REPS times; prints the median wall seconds.
work_in_cgroup() {
  local i
  for i in $(seq "$REPS"); do
    /usr/bin/time -f "%e" "${RT[@]}" sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@" >/dev/null 2>&1' sh "$CG" "${WORK[@]}" 2>&1 | tail -1
  done | median
}
# "run_time_ns run_cnt" summed over the loaded programs whose name starts
# with $1 (0 0 when none).
prog_stats() {
  bpftool -j prog show 2>/dev/null | python3 -c '
import json, sys
prefix = sys.argv[1]
t = c = 0
for p in json.load(sys.stdin):
    if p.get("name", "").startswith(prefix):
        t += p.get("run_time_ns", 0); c += p.get("run_cnt", 0)
print(t, c)' "$1"
}
# Waits (bounded) until chids' per-call program is loaded.
wait_loaded() {
  local i
  for i in $(seq 100); do
    bpftool -j prog show 2>/dev/null | grep -q '"name":"chids_sys_exit"' && { sleep 0.5; return 0; }
    kill -0 "$CHIDS_PID" 2>/dev/null || die "chids exited before attaching: $(tail -3 "$TMP/o")"
    sleep 0.1
  done
  die "chids did not attach within 10 s"
}

# A model of the workload with per-thread edges (kernel windows need them).
for i in 1 2; do
  "$LIVE" record --out "$TMP/t$i.zip" -- "${WORK[@]}" >/dev/null 2>&1 || die "training recording $i failed"
done
"$LIVE" baseline --edges thread --td "$TMP/t1.zip" "$TMP/t2.zip" --od "$TMP/model" --epochs 20 >/dev/null 2>&1 ||
  die "baseline failed"

plain=$(work_in_cgroup)
printf '| capture | per-call runs per find | ns per run | BPF ms per find (all programs) | find wall (s) | vs plain (%s s) |\n|---|---|---|---|---|---|\n' "$plain"
for mode in record monitor-events monitor-kernel; do
  case $mode in
    record) "${RT[@]}" "$LIVE" record --cgroup "$CG" --out "$TMP/r.zip" --force >/dev/null 2>"$TMP/o" & ;;
    monitor-*) "${RT[@]}" "$LIVE" monitor --cgroup "$CG" --model "$TMP/model" --windows "${mode#monitor-}" >/dev/null 2>"$TMP/o" & ;;
  esac
  CHIDS_PID=$!
  wait_loaded
  read -r t0 c0 <<<"$(prog_stats chids_sys_)"
  read -r x0 d0 <<<"$(prog_stats chids_)"
  wall=$(work_in_cgroup)
  read -r t1 c1 <<<"$(prog_stats chids_sys_)"
  read -r x1 d1 <<<"$(prog_stats chids_)"
  kill -INT "$CHIDS_PID"; wait "$CHIDS_PID" || true; CHIDS_PID=
  awk -v m="$mode" -v t="$((t1 - t0))" -v c="$((c1 - c0))" -v x="$((x1 - x0))" -v d="$((d1 - d0))" -v w="$wall" -v p="$plain" -v r="$REPS" \
    'BEGIN { printf "| %s | %.0f | %.0f | %.1f | %s | %.2fx |\n", m, c / r, c ? t / c : 0, x / r / 1e6, w, w / p }'
done
