#!/usr/bin/env bash
# What the agent costs the container it detects in (a benchmark, not a
# test; issue 18's goal: at most 1.25x the same container without the
# agent).
#
#   sudo benches/agent_overhead.sh [REPS]      # default 5
#
# One podman container (busybox-static, the host's /usr mounted read-only)
# runs `find /usr` three times whenever the host asks it to (a file in a
# shared folder), timing itself with `busybox time`: the wall time is the
# workload's own, not podman's or the trigger's. The agent learns the
# container (the host asks for the find a few times meanwhile, so the model
# knows it), then, REPS times in one loop, the find runs with the agent
# detecting and with no agent at all (stopped; restarted from its state
# folder, which keeps the model, and waited for until it detects again).
# Printed: the medians, their ratio, the agent's CPU per detected run and
# how many anomaly alerts the detected runs raised (should be 0: the find
# is normal). Unlike live_overhead.sh there is no real-time mode: podman
# (Go) run under SCHED_FIFO spun at 95 % CPU in `podman import` for
# minutes here; run it on a quiet machine instead.
set -euo pipefail
die() { echo "agent_overhead: $*" >&2; exit 1; }
REPS=${1:-5}
[[ $REPS =~ ^[1-9][0-9]*$ ]] || die "REPS must be a positive integer, got '$REPS'"
LEARN=${LEARN:-40s}
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || die "needs root (the agent loads a BPF program)"
command -v podman >/dev/null || die "needs podman (scripts/install-test-deps.sh)"
[ -x /bin/busybox ] || die "needs busybox-static"
PROFILE=${CHIDS_PROFILE:-release}
cargo build --profile "$PROFILE" --features live --bin chids >/dev/null 2>&1 || cargo build --profile "$PROFILE" --features live --bin chids
bin=target/$PROFILE/chids
P="podman --runtime runc --cgroup-manager cgroupfs"
tag=chids-overhead-$$
work=$(mktemp -d)
agent=
cleanup() {
  stop_agent
  $P rm -f -t 0 "$tag" >/dev/null 2>&1 || true
  $P rmi -f "localhost/$tag:1" >/dev/null 2>&1 || true
  rm -rf "$work"
}
stop_agent() {
  if [ -n "$agent" ]; then
    kill -TERM "$agent" 2>/dev/null || true
    wait "$agent" 2>/dev/null || true
    agent=
  fi
}
trap cleanup EXIT

# The image: busybox-static only; /usr comes from the host at run time.
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work/rootfs/tmp" "$work/rootfs/usr" "$work/ctl"
cp /bin/busybox "$work/rootfs/bin/busybox"
for a in sh cat ls sleep rm mv find time usleep; do ln -s busybox "$work/rootfs/bin/$a"; done
echo "root:x:0:0:root:/root:/bin/sh" >"$work/rootfs/etc/passwd"
tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
$P import "$work/rootfs.tar" "localhost/$tag:1" >/dev/null 2>&1

# The container waits for /ctl/go, runs the workload, leaves its time in /ctl/t.
# PATH=/bin and /bin/sh: the host's /usr/bin (mounted) must not shadow busybox.
$P run -d --name "$tag" --network none --ulimit nofile=1024:1024 --ulimit nproc=1000:1000 \
  -e PATH=/bin -v /usr:/usr:ro -v "$work/ctl:/ctl" "localhost/$tag:1" /bin/sh -c '
  while :; do
    if [ -e /ctl/go ]; then
      rm /ctl/go
      time -p -o /ctl/t.part sh -c "find /usr >/dev/null; find /usr >/dev/null; find /usr >/dev/null"
      mv /ctl/t.part /ctl/t
    fi
    usleep 20000
  done' >/dev/null

# Asks for one run; prints its wall seconds.
run_once() {
  rm -f "$work/ctl/t"
  touch "$work/ctl/go"
  for _ in $(seq 1200); do
    [ -s "$work/ctl/t" ] && { awk '/^real/ {print $2}' "$work/ctl/t"; return; }
    sleep 0.1
  done
  die "the container did not finish its run in 120 s"
}

start_agent() {
  "$bin" agent --state-dir "$work/state" --include "name=$tag" --learn-for "$LEARN" --learn-max "$LEARN" \
    --alerts "$work/alerts.jsonl" 2>>"$work/agent.log" &
  agent=$!
}

# Waits until the agent's status says the container's workload detects.
wait_detecting() {
  for _ in $(seq 900); do
    if "$bin" agent status --state-dir "$work/state" --json 2>/dev/null | python3 -c '
import json, sys
s = json.load(sys.stdin)
w = [x for x in s["workloads"] if sys.argv[1] in x["workload"] and x.get("containers", 0) > 0]
sys.exit(0 if w and all(x["state"] == "detecting" for x in w) else 1)' "$tag" 2>/dev/null; then
      return
    fi
    sleep 1
  done
  tail -20 "$work/agent.log" >&2
  die "the agent did not detect within 15 minutes"
}

anomalies() { grep -c '"kind":"anomaly"' "$work/alerts.jsonl" 2>/dev/null || true; }

echo "agent learning the container for $LEARN (the workload runs meanwhile)" >&2
start_agent
sleep 3
while ! "$bin" agent status --state-dir "$work/state" --json 2>/dev/null | grep -q '"detecting"'; do
  run_once >/dev/null
  sleep 1
done
wait_detecting

ticks=$(getconf CLK_TCK)
cpu() { awk -v t="$ticks" '{print ($14+$15)/t}' "/proc/$agent/stat"; }
with=() without=() cpus=()
alarms_before=$(anomalies)
for r in $(seq "$REPS"); do
  c0=$(cpu)
  with+=("$(run_once)")
  cpus+=("$(awk -v a="$(cpu)" -v b="$c0" 'BEGIN {print a - b}')")
  stop_agent
  without+=("$(run_once)")
  start_agent
  wait_detecting
  echo "rep $r: with agent ${with[-1]} s, without ${without[-1]} s" >&2
done
alarms=$(( $(anomalies) - alarms_before ))

python3 - "${with[*]}" "${without[*]}" "${cpus[*]}" "$alarms" <<'PY'
import statistics, sys
w = [float(x) for x in sys.argv[1].split()]
wo = [float(x) for x in sys.argv[2].split()]
c = [float(x) for x in sys.argv[3].split()]
mw, mwo = statistics.median(w), statistics.median(wo)
print(f"find /usr x3 in a container, medians of {len(w)} interleaved runs:")
print(f"  without the agent: {mwo:.2f} s")
print(f"  agent detecting:   {mw:.2f} s  ({mw / mwo:.2f}x; goal at most 1.25x)")
print(f"  agent CPU per detected run: {statistics.median(c):.2f} s")
print(f"  anomaly alerts raised by the detected runs: {sys.argv[4]}")
PY
