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
#     time, chids' CPU (user space, its own process only), events, drops;
#     monitor both ways: `--windows events` (one ring-buffer record per
#     event, features in user space) and `--windows kernel` (features
#     aggregated in BPF maps, a record only per argument the kernel cannot
#     decide). plain, record and both monitors alternate within each rep.
# and the sustained event rate with zero drops for a flood of tiny syscalls
# (`dd bs=1`: one read + one write per byte), and a real server under a
# bounded load: nginx (one worker, a small static file, 127.0.0.1) started
# plainly, under `chids record -- nginx` and under `chids monitor -- nginx`
# (the whole server is the watched cgroup), driven from outside the cgroup by
# `wrk -t1 -c4 -d5s` (or `ab -c4 -t5` without wrk): requests/s and their
# ratio to plain, events, drops, chids CPU per 1M events. The monitor model
# is trained first on two short recordings of the same server and load.
# Wall times and requests/s are medians over REPS runs (default 5).
#
# On a machine shared with other work, CHIDS_BENCH_RT=1 runs the whole
# benchmark (workloads, chids, nginx, the load generator) at real-time
# priority (chrt -f 50), so the other work's processes do not preempt it:
# the ratios then measure chids, not the scheduler.
# CHIDS_PROFILE=profiling builds and runs target/profiling/chids (line tables
# for perf and flamegraphs; the release profile has no debug info).
set -euo pipefail
if [ "${CHIDS_BENCH_RT:-0}" = 1 ] && [ -z "${CHIDS_BENCH_RT_ON:-}" ]; then
  command -v chrt >/dev/null || { echo "live_overhead: CHIDS_BENCH_RT=1 needs chrt (util-linux)" >&2; exit 1; }
  CHIDS_BENCH_RT_ON=1 exec chrt -f 50 bash "$0" "$@"
fi
die() { echo "live_overhead: $*" >&2; exit 1; }
REPS=${1:-5}
[[ $REPS =~ ^[1-9][0-9]*$ ]] || die "REPS must be a positive integer, got '$REPS'"
cd "$(dirname "$0")/.."
PROFILE=${CHIDS_PROFILE:-release}
cargo build --profile "$PROFILE" --features live --bins >/dev/null 2>&1 || cargo build --profile "$PROFILE" --features live --bins
BIN=target/$PROFILE
LIVE=$BIN/chids
TMP=$(mktemp -d)
CG_ROOT=$(awk '$9 == "cgroup2" && $4 == "/" { print $5; exit }' /proc/self/mountinfo)
EMPTY="$CG_ROOT/chids/bench-empty-$$"
mkdir -p "$EMPTY"
SRV_PID= SRV_SIG=TERM
# Stops PID with SIGNAL, SIGKILL after 10 s; reaps it. (chids stops cleanly
# on SIGINT and kills its command's cgroup; a plain nginx stops on SIGTERM.)
stop_pid() {
  local i
  kill "-$2" "$1" 2>/dev/null || true
  for i in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
cleanup() {
  if [ -n "$SRV_PID" ]; then stop_pid "$SRV_PID" "$SRV_SIG"; fi
  rmdir "$EMPTY" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
# Wall seconds of the workload as /usr/bin/time printed it (tag "W=").
wall_of() { sed -n 's/.*W=\([0-9.]*\).*/\1/p' "$1" | tail -1; }
field() { sed -n "s/.* \([0-9.]*\) $2.*/\1/p" "$1" | tail -1; }

WORK=(find /usr)
"${WORK[@]}" >/dev/null 2>&1 || true # warm the dentry cache

echo "## outside a watched cgroup"
"$LIVE" record --cgroup "$EMPTY" --out "$TMP/empty.zip" --duration 600s 2>/dev/null &
REC=$!
sleep 1.5
for _ in $(seq "$REPS"); do
  /usr/bin/time -f "W=%e" "${WORK[@]}" 2>"$TMP/t" >/dev/null; wall_of "$TMP/t"
done | median | tee "$TMP/outside_med"
kill -INT $REC; wait $REC || true

# A model of the same workload, for monitor; per-thread edges, so that
# `--windows kernel` can compute its windows.
for i in 1 2; do
  "$LIVE" record --out "$TMP/t$i.zip" -- "${WORK[@]}" >/dev/null 2>&1 || true
done
"$BIN/chids" baseline --edges thread --td "$TMP/t1.zip" "$TMP/t2.zip" --od "$TMP/model" --epochs 20 >/dev/null 2>&1

run_one() { # mode -> appends "wall events cpu dropped" to $TMP/<mode>
  local mode=$1 ev cpu dr
  case $mode in
    plain)
      /usr/bin/time -f "W=%e" "${WORK[@]}" 2>"$TMP/o" >/dev/null
      echo "$(wall_of "$TMP/o")" >>"$TMP/plain"
      return ;;
    record)
      rm -f "$TMP/r.zip"
      "$LIVE" record --out "$TMP/r.zip" -- /usr/bin/time -f "W=%e" "${WORK[@]}" >/dev/null 2>"$TMP/o" || true
      ev=$(sed -n 's/.*: \([0-9]*\) events in.*/\1/p' "$TMP/o") ;;
    monitor-events|monitor-kernel)
      "$LIVE" monitor --windows "${mode#monitor-}" --model "$TMP/model" -- /usr/bin/time -f "W=%e" "${WORK[@]}" >/dev/null 2>"$TMP/o" || true
      ev=$(sed -n 's/^\([0-9]*\) events,.*/\1/p' "$TMP/o") ;;
  esac
  cpu=$(sed -n 's/.*chids cpu \([0-9.]*\)s.*/\1/p' "$TMP/o")
  dr=$(sed -n 's/.*[( ]\([0-9]*\) dropped.*/\1/p' "$TMP/o")
  echo "$(wall_of "$TMP/o") $ev $cpu $dr" >>"$TMP/$mode"
}
echo "## find: plain, record, monitor (events), monitor (kernel), interleaved"
for i in $(seq "$REPS"); do
  for m in plain record monitor-events monitor-kernel; do
    run_one "$m"
    echo "$m: $(tail -1 "$TMP/$m")"
  done
done
median <"$TMP/plain" >"$TMP/plain_med"

echo "## flood: dd bs=1 (read+write per byte)"
FLOOD=2000000
for w in events kernel; do
  "$LIVE" monitor --windows $w --model "$TMP/model" -- /usr/bin/time -f "W=%e" dd if=/dev/zero of=/dev/null bs=1 count=$FLOOD >/dev/null 2>"$TMP/f" || true
  grep -E "events,|W=" "$TMP/f" | tee "$TMP/flood-$w"
done
/usr/bin/time -f "W=%e" dd if=/dev/zero of=/dev/null bs=1 count=$FLOOD 2>"$TMP/fp" >/dev/null
flood_plain=$(wall_of "$TMP/fp")

echo "## server: nginx under a bounded wrk/ab load"
if ! command -v nginx >/dev/null; then
  apt-get install -y nginx-light >/dev/null 2>&1 || die "nginx missing and 'apt-get install -y nginx-light' failed"
fi
if ! command -v wrk >/dev/null && ! command -v ab >/dev/null; then
  apt-get install -y wrk >/dev/null 2>&1 || apt-get install -y apache2-utils >/dev/null 2>&1 ||
    die "neither wrk nor ab, and 'apt-get install -y wrk' / 'apache2-utils' failed"
fi
LOAD_SECS=5
SRV="$TMP/srv"
mkdir -p "$SRV/www" "$SRV/tmp"
chmod 755 "$TMP" "$SRV" "$SRV/www" # the worker runs as nginx's unprivileged user
head -c 2048 /dev/zero | tr '\0' 'x' >"$SRV/www/index.html"
chmod 644 "$SRV/www/index.html"
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
PORT=
for p in $(seq 18080 18179); do
  if ! port_open "$p"; then PORT=$p; break; fi
done
[ -n "$PORT" ] || die "no free port in 18080-18179 on 127.0.0.1"
CONF="$SRV/nginx.conf"
cat >"$CONF" <<CONF
worker_processes 1;
daemon off;
master_process on;
pid $SRV/nginx.pid;
error_log $SRV/error.log warn;
events { worker_connections 256; }
http {
  access_log $SRV/access.log;
  client_body_temp_path $SRV/tmp/body;
  proxy_temp_path $SRV/tmp/proxy;
  fastcgi_temp_path $SRV/tmp/fastcgi;
  uwsgi_temp_path $SRV/tmp/uwsgi;
  scgi_temp_path $SRV/tmp/scgi;
  default_type text/html;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$PORT;
    root $SRV/www;
  }
}
CONF
NGINX=(nginx -e "$SRV/error.log" -c "$CONF")
"${NGINX[@]}" -t >/dev/null 2>&1 || die "nginx -t rejects $CONF: $("${NGINX[@]}" -t 2>&1 | tail -1)"

# Waits (bounded) for the port to answer; dies if the starter ($SRV_PID) exited.
wait_port() {
  local i
  for i in $(seq 100); do
    port_open "$PORT" && return 0
    kill -0 "$SRV_PID" 2>/dev/null || die "server ($1) exited before listening on $PORT: $(tail -2 "$SRV/error.log" "$TMP/so" 2>/dev/null | tr '\n' ' ')"
    sleep 0.1
  done
  die "server ($1) not listening on 127.0.0.1:$PORT after 10s"
}
# Stops the server (see stop_pid) and waits (bounded) for its port to close.
stop_server() {
  local i
  stop_pid "$SRV_PID" "$SRV_SIG"
  SRV_PID=
  for i in $(seq 50); do port_open "$PORT" || return 0; sleep 0.1; done
  die "port $PORT still open after stopping the server"
}
# One bounded load from this (unwatched) cgroup -> requests/s.
load() {
  local secs=${1:-$LOAD_SECS} out
  if command -v wrk >/dev/null; then
    out=$(timeout $((secs + 30)) wrk -t1 -c4 -d"${secs}s" "http://127.0.0.1:$PORT/index.html") || die "wrk failed: $out"
    grep -q "Non-2xx" <<<"$out" && die "wrk saw errors: $out"
    sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' <<<"$out"
  else
    out=$(timeout $((secs + 30)) ab -q -k -c 4 -t "$secs" -n 10000000 "http://127.0.0.1:$PORT/index.html" 2>&1) || die "ab failed: $out"
    sed -n 's/^Requests per second: *\([0-9.]*\).*/\1/p' <<<"$out"
  fi
}
# mode [out] -> starts the server (plain, or under chids record|monitor).
start_server() {
  case $1 in
    plain) "${NGINX[@]}" >/dev/null 2>"$TMP/so" & SRV_SIG=TERM ;;
    record) rm -f "$2"; "$LIVE" record --out "$2" -- "${NGINX[@]}" >/dev/null 2>"$TMP/so" & SRV_SIG=INT ;;
    monitor-events|monitor-kernel)
      "$LIVE" monitor --windows "${1#monitor-}" --model "$TMP/smodel" -- "${NGINX[@]}" >/dev/null 2>"$TMP/so" & SRV_SIG=INT ;;
  esac
  SRV_PID=$!
  wait_port "$1"
}
# mode -> appends one run to $TMP/s<mode>: "reqs events cpu dropped".
# Not in a pipeline/subshell, so the trap always knows $SRV_PID.
server_run() {
  local mode=$1 rps ev cpu dr
  start_server "$mode" "$TMP/srec.zip"
  rps=$(load)
  [ -n "$rps" ] || die "no requests/s from the load generator ($mode)"
  if [ "$mode" = plain ]; then
    stop_server
    echo "$rps" >>"$TMP/splain"
    return
  fi
  stop_server
  if [ "$mode" = record ]; then
    ev=$(sed -n 's/.*: \([0-9]*\) events in.*/\1/p' "$TMP/so")
  else
    ev=$(sed -n 's/^\([0-9]*\) events,.*/\1/p' "$TMP/so")
  fi
  cpu=$(sed -n 's/.*chids cpu \([0-9.]*\)s.*/\1/p' "$TMP/so")
  dr=$(sed -n 's/.*[( ]\([0-9]*\) dropped.*/\1/p' "$TMP/so")
  [ -n "$ev" ] && [ -n "$cpu" ] && [ -n "$dr" ] || die "no summary from chids $mode: $(tail -3 "$TMP/so")"
  echo "$rps $ev $cpu $dr" >>"$TMP/s$mode"
  if [ "$mode" != record ]; then
    sed -n 's/.* windows, \([0-9]*\) alerts.*/\1/p' "$TMP/so" >>"$TMP/salerts-$mode"
  fi
}

# The monitor model: two short recordings of the same server and load.
for i in 1 2; do
  start_server record "$TMP/strain$i.zip"
  load 3 >/dev/null
  stop_server
  [ -s "$TMP/strain$i.zip" ] || die "training recording $i missing: $(tail -3 "$TMP/so")"
done
"$BIN/chids" baseline --edges thread --td "$TMP/strain1.zip" "$TMP/strain2.zip" --od "$TMP/smodel" --epochs 20 >"$TMP/bl" 2>&1 ||
  die "chids baseline on the nginx recordings failed: $(tail -3 "$TMP/bl")"
# Interleaved (plain, record, monitor) per rep, so drift in the machine's
# other load spreads over the three.
LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)
for i in $(seq "$REPS"); do
  for m in plain record monitor-events monitor-kernel; do
    server_run "$m"
    echo "$m: $(tail -1 "$TMP/s$m")"
  done
done
LOADAVG_END=$(cut -d' ' -f1-3 /proc/loadavg)

summ() { # file -> "wall_median events cpu_median drops_max"
  local w e c d
  w=$(awk '{print $1}' "$1" | median); e=$(awk '{print $2}' "$1" | median)
  c=$(awk '{print $3}' "$1" | median); d=$(awk '{print $4}' "$1" | sort -n | tail -1)
  echo "$w $e $c $d"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2fx", a/b}'; }
per_m_syscalls() { awk -v c="$1" -v e="$2" 'BEGIN{ if (e > 0) printf "%.3f", c/(e/2)*1e6; else printf "?" }'; }
plain=$(cat "$TMP/plain_med")
outside=$(cat "$TMP/outside_med")
echo
echo "find /usr ($REPS interleaved reps, medians${CHIDS_BENCH_RT_ON:+, real-time priority})"
echo "| run | workload wall (s) | slowdown | events | chids CPU (s) | CPU s / 1M syscalls | dropped |"
echo "|---|---|---|---|---|---|---|"
echo "| plain | $plain | 1.00x | | | | |"
echo "| outside watched cgroup | $outside | $(ratio "$outside" "$plain") | 0 | | | |"
for m in record monitor-events monitor-kernel; do
  read -r w e c d <<<"$(summ "$TMP/$m")"
  echo "| $m (inside) | $w | $(ratio "$w" "$plain") | $e | $c | $(per_m_syscalls "$c" "$e") | $d |"
done
echo
for w in events kernel; do
  fe=$(sed -n 's/^\([0-9]*\) events,.*/\1/p' "$TMP/flood-$w"); fw=$(wall_of "$TMP/flood-$w")
  fc=$(sed -n 's/.*chids cpu \([0-9.]*\)s.*/\1/p' "$TMP/flood-$w"); fd=$(sed -n 's/.*[( ]\([0-9]*\) dropped.*/\1/p' "$TMP/flood-$w")
  fl=$(sed -n 's/.* \([0-9]*\) records lost.*/\1/p' "$TMP/flood-$w")
  echo "flood (monitor --windows $w, dd bs=1 count=$FLOOD): $fe events in ${fw}s = $(awk -v e="$fe" -v w="$fw" 'BEGIN{printf "%.2f", e/2/w/1e6}') M syscalls/s, dropped $fd${fl:+, kernel records lost $fl}, chids CPU ${fc}s; plain dd ${flood_plain}s"
  echo "$fe $fw $fc $fd" >"$TMP/flood-$w.sum"
done

splain=$(median <"$TMP/splain")
if command -v wrk >/dev/null; then LOADGEN="wrk -t1 -c4 -d${LOAD_SECS}s"; else LOADGEN="ab -k -c4 -t${LOAD_SECS}"; fi
echo
echo "server: nginx (1 worker, 2 KiB static file), $LOADGEN from outside the cgroup; load average ${LOADAVG_START} at start, ${LOADAVG_END} at end"
echo "| run | requests/s | vs plain | slowdown | events | chids CPU (s) | CPU s / 1M syscalls | dropped |"
echo "|---|---|---|---|---|---|---|---|"
echo "| plain | $splain | 1.00x | 0% | | | | |"
for m in record monitor-events monitor-kernel; do
  read -r r e c d <<<"$(summ "$TMP/s$m")"
  echo "| $m (server inside) | $r | $(ratio "$r" "$splain") | $(awk -v a="$r" -v b="$splain" 'BEGIN{printf "%.0f%%", (1-a/b)*100}') | $e | $c | $(per_m_syscalls "$c" "$e") | $d |"
done
for m in monitor-events monitor-kernel; do
  echo "$m alerts per measured run: $(tr '\n' ' ' <"$TMP/salerts-$m")"
done

# The issue's goals, side by side.
read -r _ fe_e _ _ <<<"$(summ "$TMP/monitor-events")"; read -r fw_e _ fc_e _ <<<"$(summ "$TMP/monitor-events")"
read -r fw_k fe_k fc_k _ <<<"$(summ "$TMP/monitor-kernel")"; read -r fw_r _ _ _ <<<"$(summ "$TMP/record")"
read -r sr_e _ _ _ <<<"$(summ "$TMP/smonitor-events")"; read -r sr_k _ _ _ <<<"$(summ "$TMP/smonitor-kernel")"
read -r fle flw _ fld <<<"$(cat "$TMP/flood-events.sum")"; read -r flk flwk _ fldk <<<"$(cat "$TMP/flood-kernel.sum")"
echo
echo "goals (issue 11)"
echo "| workload | monitor, per-event | monitor, kernel windows | goal |"
echo "|---|---|---|---|"
echo "| find /usr inside the watched cgroup | $(ratio "$fw_e" "$plain") plain | $(ratio "$fw_k" "$plain") plain | <= 1.25x plain |"
echo "| nginx + load, requests/s | $(ratio "$sr_e" "$splain") plain | $(ratio "$sr_k" "$splain") plain | >= 0.95x plain |"
echo "| a process outside every watched cgroup | $(ratio "$outside" "$plain") plain | (same program) | <= 1.03x plain |"
echo "| chids CPU per 1M syscalls of the cgroup (find) | $(per_m_syscalls "$fc_e" "$fe_e") s | $(per_m_syscalls "$fc_k" "$fe_k") s | <= 0.03 s |"
echo "| dd bs=1 flood | $(awk -v e="$fle" -v w="$flw" 'BEGIN{printf "%.2f", e/2/w/1e6}') M syscalls/s, $fld dropped | $(awk -v e="$flk" -v w="$flwk" 'BEGIN{printf "%.2f", e/2/w/1e6}') M syscalls/s, $fldk dropped | >= 3 M syscalls/s, 0 lost |"
echo "| record (every event), find | $(ratio "$fw_r" "$plain") plain | | <= 1.5x plain |"
