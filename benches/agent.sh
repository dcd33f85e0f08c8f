#!/usr/bin/env bash
# Benchmark of `chids agent` (not a test): its CPU and RSS while watching
# 20 idle and 5 busy podman containers, and how long an alert takes to
# reach a NATS subscriber (p50/p99).
#
#   sudo benches/agent.sh            # needs podman, runc, nats-server, busybox-static, python3
#   BUSY_SLEEP=0.01 MEASURE=60 ATTACKS=30 benches/agent.sh
#
# Latency is measured twice, from the alert's own stamps:
#   delivery = arrival at the subscriber - alert time_ns (raised by the agent)
#   end-to-end = arrival - window_end_ns (the anomalous window's end; the
#                window can only close after it ends)
# CHIDS_PROFILE=profiling builds and runs target/profiling/chids (line tables
# for perf and flamegraphs; the release profile has no debug info).
set -euo pipefail
cd "$(dirname "$0")/.."
MEASURE=${MEASURE:-60}          # seconds of steady-state CPU/RSS measurement
ATTACKS=${ATTACKS:-30}          # alerts to time
BUSY_SLEEP=${BUSY_SLEEP:-0.01}  # pause in the busy containers' loop
LEARN=${LEARN:-30s}
P="podman --runtime runc --cgroup-manager cgroupfs"
RUN="$P run -d --network none --ulimit nofile=1024:1024 --ulimit nproc=1000:1000"
tag=chids-bench-$$
work=$(mktemp -d)
cleanup() {
  [ -n "${agent:-}" ] && kill -TERM "$agent" 2>/dev/null && wait "$agent" 2>/dev/null || true
  [ -n "${sub:-}" ] && kill "$sub" 2>/dev/null || true
  [ -n "${nats:-}" ] && kill "$nats" 2>/dev/null || true
  $P rm -f -t 0 $($P ps -aq --filter "name=$tag") >/dev/null 2>&1 || true
  $P rmi -f "localhost/$tag:1" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

PROFILE=${CHIDS_PROFILE:-release}
cargo build --profile "$PROFILE" --features live --bin chids >/dev/null
bin=target/$PROFILE/chids

# An image from busybox-static, no registry needed.
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work/rootfs/tmp"
cp /bin/busybox "$work/rootfs/bin/busybox"
# A dynamic busybox (package `busybox` instead of `busybox-static`) needs its libraries.
for lib in $(ldd /bin/busybox 2>/dev/null | grep -o '/[^ ]*'); do
  mkdir -p "$work/rootfs$(dirname "$lib")"; cp -L "$lib" "$work/rootfs$lib"
done
for a in sh cat ls sleep cp mkdir true; do ln -s busybox "$work/rootfs/bin/$a"; done
echo "root:x:0:0:root:/root:/bin/sh" >"$work/rootfs/etc/passwd"
echo "root:*:19000:0:99999:7:::" >"$work/rootfs/etc/shadow"
tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
$P import "$work/rootfs.tar" "localhost/$tag:1" >/dev/null

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
nats-server -js -sd "$work/nats" -a 127.0.0.1 -p "$port" >/dev/null 2>&1 &
nats=$!
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done

# A raw-protocol subscriber: one line per alert, "<arrival ns> <json>".
cat >"$work/sub.py" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
f = s.makefile("rb")
f.readline()  # INFO
s.sendall(b'CONNECT {"verbose":false}\r\nSUB ' + sys.argv[2].encode() + b' 1\r\nPING\r\n')
out = open(sys.argv[3], "w")
while True:
    line = f.readline()
    if not line:
        break
    if line.startswith(b"PING"):
        s.sendall(b"PONG\r\n")
    elif line.startswith(b"MSG"):
        n = int(line.split()[-1])
        body = f.read(n + 2)[:-2]
        out.write("%d %s\n" % (time.time_ns(), body.decode()))
        out.flush()
PY
python3 "$work/sub.py" "$port" chids.bench "$work/received" &
sub=$!

echo "starting 20 idle and 5 busy containers" >&2
for i in $(seq 20); do $RUN --name "$tag-idle$i" "localhost/$tag:1" sleep 3600 >/dev/null; done
for i in $(seq 5); do
  $RUN --name "$tag-busy$i" "localhost/$tag:1" sh -c "while true; do cat /etc/passwd >/dev/null; ls /bin >/dev/null; sleep $BUSY_SLEEP; done" >/dev/null
done

"$bin" agent --state-dir "$work/state" --learn-for "$LEARN" --nats "nats://127.0.0.1:$port" \
  --subject chids.bench --metrics 127.0.0.1:0 2>"$work/agent.log" &
agent=$!
echo "agent pid $agent; learning for $LEARN" >&2
for _ in $(seq 600); do
  if "$bin" agent status --state-dir "$work/state" --json 2>/dev/null |
     python3 2>/dev/null -c 'import json,sys; s=json.load(sys.stdin); w=[x for x in s["workloads"] if "chids-bench" in x["workload"]]; sys.exit(0 if w and all(x["state"]=="detecting" for x in w) else 1)'; then
    break
  fi
  sleep 1
done

ticks=$(getconf CLK_TCK)
cpu() { awk -v t="$ticks" '{print ($14+$15)/t}' "/proc/$agent/stat"; }
c0=$(cpu); t0=$(date +%s.%N)
sleep "$MEASURE"
c1=$(cpu); t1=$(date +%s.%N)
rss=$(awk '/VmRSS/ {print $2}' "/proc/$agent/status")
events=$("$bin" agent status --state-dir "$work/state" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["events"])')

echo "timing $ATTACKS alerts" >&2
for i in $(seq "$ATTACKS"); do
  $P exec "$tag-busy1" sh -c "cat /etc/shadow >/dev/null; mkdir -p /tmp/d$i; cp /bin/busybox /tmp/d$i/ls; /tmp/d$i/ls / >/dev/null" || true
  sleep 3
done
sleep 5

python3 - "$work/received" "$c0" "$c1" "$t0" "$t1" "$rss" "$events" <<'PY'
import json, sys
rows = [l.split(" ", 1) for l in open(sys.argv[1]) if l.strip()]
c0, c1, t0, t1 = map(float, sys.argv[2:6])
rss_kb, events = int(sys.argv[6]), int(sys.argv[7])
def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))] if v else float("nan")
deliv = [(int(t) - json.loads(b)["time_ns"]) / 1e6 for t, b in rows]
e2e = [(int(t) - json.loads(b)["window_end_ns"]) / 1e6 for t, b in rows]
print(f"agent CPU: {100 * (c1 - c0) / (t1 - t0):.1f}% of one core over {t1 - t0:.0f}s (20 idle + 5 busy containers)")
print(f"agent RSS: {rss_kb / 1024:.1f} MiB; {events} events captured so far")
print(f"alerts received on NATS: {len(rows)}")
print(f"delivery latency (raised -> subscriber): p50 {pct(deliv, 50):.1f} ms, p99 {pct(deliv, 99):.1f} ms")
print(f"end-to-end latency (window end -> subscriber): p50 {pct(e2e, 50):.0f} ms, p99 {pct(e2e, 99):.0f} ms")
PY
