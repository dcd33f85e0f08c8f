#!/usr/bin/env bash
# Overhead of live capture (needs root, kernel BTF, and .ci/live-deps.sh).
#
#   bash benches/live_overhead.sh [REPS]
#
# Measures, for a syscall-heavy workload (`find /usr`, warm cache: ~230k
# system calls, ~460k enter+exit events):
#   - plain: the workload alone;
#   - outside: the workload while a capture watches another (empty) cgroup:
#     the cost every other process on the host pays;
#   - record / monitor: the workload inside the watched cgroup
#     (`chids record|monitor -- /usr/bin/time find /usr`): its own wall
#     time, chids' CPU (user space, its own process only), events, drops.
# and the sustained event rate with zero drops for a flood of tiny syscalls
# (`dd bs=1`: one read + one write per byte).
# Wall times are medians over REPS runs (default 5).
set -euo pipefail
REPS=${1:-5}
cd "$(dirname "$0")/.."
cargo build --release --features live --bins >/dev/null 2>&1 || cargo build --release --features live --bins
BIN=target/release
LIVE=$BIN/chids
TMP=$(mktemp -d)
CG_ROOT=$(awk '$9 == "cgroup2" && $4 == "/" { print $5; exit }' /proc/self/mountinfo)
EMPTY="$CG_ROOT/chids/bench-empty-$$"
mkdir -p "$EMPTY"
cleanup() { rmdir "$EMPTY" 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT

median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
# Wall seconds of the workload as /usr/bin/time printed it (tag "W=").
wall_of() { sed -n 's/.*W=\([0-9.]*\).*/\1/p' "$1" | tail -1; }
field() { sed -n "s/.* \([0-9.]*\) $2.*/\1/p" "$1" | tail -1; }

WORK=(find /usr)
"${WORK[@]}" >/dev/null 2>&1 || true # warm the dentry cache

echo "## plain"
for _ in $(seq "$REPS"); do
  /usr/bin/time -f "W=%e" "${WORK[@]}" 2>"$TMP/t" >/dev/null; wall_of "$TMP/t"
done | median | tee "$TMP/plain"

echo "## outside a watched cgroup"
"$LIVE" record --cgroup "$EMPTY" --out "$TMP/empty.zip" --duration 600s 2>/dev/null &
REC=$!
sleep 1.5
for _ in $(seq "$REPS"); do
  /usr/bin/time -f "W=%e" "${WORK[@]}" 2>"$TMP/t" >/dev/null; wall_of "$TMP/t"
done | median | tee "$TMP/outside"
kill -INT $REC; wait $REC || true

run_live() { # mode -> prints "wall events cpu dropped" per run
  local mode=$1; shift
  for i in $(seq "$REPS"); do
    if [ "$mode" = record ]; then
      "$LIVE" record --out "$TMP/r$i.zip" -- /usr/bin/time -f "W=%e" "${WORK[@]}" >/dev/null 2>"$TMP/o" || true
      ev=$(sed -n 's/.*: \([0-9]*\) events in.*/\1/p' "$TMP/o")
    else
      "$LIVE" monitor --model "$TMP/model" -- /usr/bin/time -f "W=%e" "${WORK[@]}" >/dev/null 2>"$TMP/o" || true
      ev=$(sed -n 's/^\([0-9]*\) events,.*/\1/p' "$TMP/o")
    fi
    cpu=$(sed -n 's/.*chids cpu \([0-9.]*\)s.*/\1/p' "$TMP/o")
    dr=$(sed -n 's/.*[( ]\([0-9]*\) dropped.*/\1/p' "$TMP/o")
    echo "$(wall_of "$TMP/o") $ev $cpu $dr"
  done
}

echo "## record"
run_live record | tee "$TMP/record"
# A model of the same workload, for monitor.
"$BIN/chids" baseline --td "$TMP/r1.zip" "$TMP/r2.zip" --od "$TMP/model" --epochs 20 >/dev/null 2>&1
echo "## monitor"
run_live monitor | tee "$TMP/monitor"

echo "## flood: dd bs=1 (read+write per byte)"
FLOOD=2000000
"$LIVE" monitor --model "$TMP/model" -- /usr/bin/time -f "W=%e" dd if=/dev/zero of=/dev/null bs=1 count=$FLOOD >/dev/null 2>"$TMP/f" || true
grep -E "events,|W=" "$TMP/f" | tee "$TMP/flood"
/usr/bin/time -f "W=%e" dd if=/dev/zero of=/dev/null bs=1 count=$FLOOD 2>"$TMP/fp" >/dev/null
flood_plain=$(wall_of "$TMP/fp")

summ() { # file -> "wall_median events cpu_median drops_max"
  local w e c d
  w=$(awk '{print $1}' "$1" | median); e=$(awk '{print $2}' "$1" | median)
  c=$(awk '{print $3}' "$1" | median); d=$(awk '{print $4}' "$1" | sort -n | tail -1)
  echo "$w $e $c $d"
}
plain=$(cat "$TMP/plain")
echo
echo "| run | workload wall (s) | slowdown | events | chids CPU (s) | CPU s / 1M events | dropped |"
echo "|---|---|---|---|---|---|---|"
echo "| plain | $plain | 1.00x | | | | |"
echo "| outside watched cgroup | $(cat "$TMP/outside") | $(awk -v a="$(cat "$TMP/outside")" -v b="$plain" 'BEGIN{printf "%.2fx", a/b}') | 0 | | | |"
for m in record monitor; do
  read -r w e c d <<<"$(summ "$TMP/$m")"
  echo "| $m (inside) | $w | $(awk -v a="$w" -v b="$plain" 'BEGIN{printf "%.2fx", a/b}') | $e | $c | $(awk -v c="$c" -v e="$e" 'BEGIN{printf "%.2f", c/e*1e6}') | $d |"
done
fe=$(sed -n 's/^\([0-9]*\) events,.*/\1/p' "$TMP/flood"); fw=$(wall_of "$TMP/flood")
fc=$(sed -n 's/.*chids cpu \([0-9.]*\)s.*/\1/p' "$TMP/flood"); fd=$(sed -n 's/.*[( ]\([0-9]*\) dropped.*/\1/p' "$TMP/flood")
echo
echo "flood (monitor, dd bs=1 count=$FLOOD): $fe events in ${fw}s = $(awk -v e="$fe" -v w="$fw" 'BEGIN{printf "%.0f", e/w}') events/s, dropped $fd, chids CPU ${fc}s ($(awk -v c="$fc" -v e="$fe" 'BEGIN{printf "%.2f", c/e*1e6}') s per 1M events); plain dd ${flood_plain}s"
