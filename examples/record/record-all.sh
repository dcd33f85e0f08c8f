#!/usr/bin/env bash
# record-all.sh -- record the example LID-DS-2021-style recordings of chids.
#
# A python3 http.server runs in a sandbox (own cgroup v2 + pid/mount/uts/ipc
# namespaces), a bounded curl load runs against it from outside over
# loopback, and bpftrace (chids-record.bt) records every system call of the
# sandbox; bt2lidds.py turns each capture into <name>.zip (<name>.sc +
# <name>.json). Attack recordings run one attack-like action inside the
# sandbox (its cgroup and namespaces) part-way through.
#
# usage: sudo examples/record/record-all.sh [OUT_DIR]   (default: ../data)
# knobs (environment): DURATION (s, default 9), RATE (requests/s, default 10),
#   N_TRAIN (6), N_TEST_NORMAL (3), SEED (1),
#   ATTACK_KINDS ("shell shadow unseen_binary"), FORCE_NO_CGROUP (set: test
#   the fallback that filters on the sandbox's mount namespace instead)
# Needs: root, bpftrace, unshare/nsenter (util-linux), curl, python3.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=${1:-$HERE/../data}
DURATION=${DURATION:-9}
RATE=${RATE:-10}
N_TRAIN=${N_TRAIN:-6}
N_TEST_NORMAL=${N_TEST_NORMAL:-3}
SEED=${SEED:-1}
read -ra ATTACKS <<<"${ATTACK_KINDS:-shell shadow unseen_binary}"
CGROOT=/sys/fs/cgroup/unified
SANDBOX_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log() { printf '[record-all] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
now() { date +%s.%N; }

# ---------------------------------------------------------------- checks
[ "$(id -u)" = 0 ] || die "must run as root (bpftrace, cgroups, namespaces)"
for t in bpftrace unshare nsenter curl; do
	command -v "$t" >/dev/null || die "missing tool: $t"
done
# absolute paths: a PATH search would show up in the recording
NSENTER=$(command -v nsenter)
UNSHARE=$(command -v unshare)
# A real interpreter, not a shim (pyenv & co. would spawn shells inside
# the sandbox at start-up): Debian's /usr/bin/python3 when present.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(python3 -c 'import sys; print(sys.executable)')
[ -x "$PY" ] || die "no python3"
# syscall tracepoints live in tracefs; mount it when nobody has.
if [ ! -d /sys/kernel/tracing/events/raw_syscalls ] &&
	[ ! -d /sys/kernel/debug/tracing/events/raw_syscalls ]; then
	mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null ||
		die "cannot mount tracefs on /sys/kernel/tracing"
fi
[ -d /sys/kernel/tracing/events/raw_syscalls ] ||
	[ -d /sys/kernel/debug/tracing/events/raw_syscalls ] ||
	die "no raw_syscalls tracepoints (kernel without CONFIG_FTRACE_SYSCALLS?)"

WORK=$(mktemp -d /tmp/chids-record.XXXXXX)
SITE=$WORK/site
SRV_PID=""; BT_PID=""; CG=""

cleanup() {
	set +e
	[ -n "$BT_PID" ] && kill -INT "$BT_PID" 2>/dev/null && wait "$BT_PID" 2>/dev/null
	stop_sandbox
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stop_sandbox() {
	# unshare (SRV_PID) first: --kill-child takes the server with it; then
	# cgroup.kill for anything left in the group, and the group itself.
	if [ -n "$SRV_PID" ]; then
		kill "$SRV_PID" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$SRV_PID" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$SRV_PID" 2>/dev/null || true
		wait "$SRV_PID" 2>/dev/null || true
	fi
	if [ -n "$CG" ] && [ -d "$CG" ]; then
		echo 1 >"$CG/cgroup.kill" 2>/dev/null || true
		for _ in $(seq 50); do rmdir "$CG" 2>/dev/null && break; sleep 0.1; done
	fi
	SRV_PID=""; CG=""
}

# ---------------------------------------------------------------- the site
make_site() {
	mkdir -p "$SITE/docs" "$SITE/img"
	cat >"$SITE/index.html" <<-'EOF'
	<!doctype html><html><head><title>chids example</title>
	<link rel="stylesheet" href="style.css"></head>
	<body><h1>It works</h1><p><a href="about.html">about</a>
	<a href="docs/">docs</a></p><script src="app.js"></script></body></html>
	EOF
	cat >"$SITE/about.html" <<-'EOF'
	<!doctype html><html><body><h1>About</h1>
	<p>A small static site served by python3 -m http.server.</p></body></html>
	EOF
	printf 'body { font-family: sans-serif; margin: 2em; }\nh1 { color: #345; }\n' >"$SITE/style.css"
	printf 'document.title += " (js)";\n' >"$SITE/app.js"
	printf '{"items": [1, 2, 3], "name": "chids"}\n' >"$SITE/data.json"
	for i in 1 2 3; do
		printf 'Guide part %s.\n%s\n' "$i" "$(seq 1 40 | tr '\n' ' ')" >"$SITE/docs/guide$i.txt"
	done
	head -c 8192 /dev/zero | tr '\0' 'x' >"$SITE/img/logo.bin"
}

PAGES=(/ /index.html /index.html /about.html /style.css /app.js /data.json
	/docs/ /docs/guide1.txt /docs/guide2.txt /docs/guide3.txt /img/logo.bin
	/missing.html)

free_port() {
	"$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---------------------------------------------------------------- sandbox
# start_sandbox NAME: sets CG (or "" on fallback), SRV_PID (the unshare
# process), INNER_PID (the server, pid 1 of the new pid namespace), PORT,
# MNTNS.
SEQ=0
start_sandbox() {
	SEQ=$((SEQ + 1))
	CG=$CGROOT/chids-example-$$-$SEQ
	if [ -n "${FORCE_NO_CGROUP:-}" ] || ! mkdir "$CG" 2>/dev/null; then
		log "WARNING: cannot create cgroup $CG; falling back to filtering by the sandbox's mount namespace"
		CG=""
	fi
	PORT=$(free_port)
	# The subshell moves itself into the cgroup, then becomes unshare; the
	# sandbox copies the site to a private /srv/www, mounts a private /tmp
	# and execs the server there with a clean environment.
	(
		[ -n "$CG" ] && echo "$BASHPID" >"$CG/cgroup.procs"
		exec "$UNSHARE" --fork --pid --mount --mount-proc --uts --ipc --kill-child \
			/bin/sh -c 'mount -t tmpfs -o size=16m tmpfs /srv && cp -r "$1" /srv/www &&
				mount -t tmpfs -o size=16m tmpfs /tmp && hostname chids-example &&
				cd /srv/www && exec env -i PATH="$2" HOME=/ "$3" -m http.server --bind 127.0.0.1 "$4"' \
			sandbox "$SITE" "$SANDBOX_PATH" "$PY" "$PORT"
	) >"$WORK/server.log" 2>&1 &
	SRV_PID=$!
	local ok=""
	for _ in $(seq 100); do
		if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/"; then ok=1; break; fi
		sleep 0.1
	done
	[ -n "$ok" ] || { cat "$WORK/server.log" >&2; die "server did not come up"; }
	INNER_PID=$(cat "/proc/$SRV_PID/task/$SRV_PID/children" | awk '{print $1}')
	[ -n "$INNER_PID" ] || die "cannot find the sandboxed server's pid"
	MNTNS=$(stat -L -c %i "/proc/$INNER_PID/ns/mnt")
}

# in_sandbox CMD...: run CMD inside the sandbox: in its cgroup and its
# mount/pid/uts/ipc namespaces, with the sandbox's clean environment.
in_sandbox() {
	(
		# the sandbox's clean environment, without an extra env(1) exec;
		# made before joining the cgroup (compgen's subshell is a fork)
		for v in $(compgen -e); do unset "$v" 2>/dev/null || true; done
		export PATH="$SANDBOX_PATH" HOME=/
		[ -n "$CG" ] && echo "$BASHPID" >"$CG/cgroup.procs"
		exec "$NSENTER" -t "$INNER_PID" -m -p -u -i "$@"
	)
}

run_attack() {
	case "$1" in
	shell) in_sandbox /bin/sh -c 'id; uname -a; ls /' ;;
	shadow) in_sandbox /bin/cat /etc/shadow ;;
	unseen_binary)
		in_sandbox /bin/cp /usr/bin/base64 /tmp/x
		in_sandbox /tmp/x /etc/hostname ;;
	*) die "unknown attack $1" ;;
	esac
}

# ---------------------------------------------------------------- one run
# record_one OUTDIR NAME [ATTACK]
record_one() {
	local outdir=$1 name=$2 attack=${3:-}
	local raw=$WORK/$name.bt
	start_sandbox
	local container_ready
	container_ready=$(now)
	sleep 0.5

	# fallback: any path cgroupid() can resolve; the mount-ns key decides
	local cgpath=${CG:-/} key=0
	[ -n "$CG" ] || key=$MNTNS
	BPFTRACE_PERF_RB_PAGES=256 bpftrace "$HERE/chids-record.bt" "$cgpath" "$key" \
		>"$raw" 2>"$WORK/bt.err" &
	BT_PID=$!
	local ok=""
	for _ in $(seq 300); do
		if grep -q '^B' "$raw" 2>/dev/null; then ok=1; break; fi
		kill -0 "$BT_PID" 2>/dev/null || break
		sleep 0.1
	done
	[ -n "$ok" ] || { cat "$WORK/bt.err" >&2; die "bpftrace did not start"; }
	# CLOCK_REALTIME - CLOCK_MONOTONIC (bpftrace nsecs is CLOCK_MONOTONIC)
	local offset warmup_end
	offset=$("$PY" -c 'import time; print(time.clock_gettime_ns(time.CLOCK_REALTIME) - time.clock_gettime_ns(time.CLOCK_MONOTONIC))')
	warmup_end=$(now)

	# bounded load: DURATION*RATE requests, ~RATE per second, all loopback
	local total=$((DURATION * RATE)) attack_at=-1 exploit="" i
	if [ -n "$attack" ]; then
		# between 40 % and 50 % of the requests (the capture adds ~0.5 s
		# at the end, so this lands at ~35-50 % of the recording)
		attack_at=$((total * 40 / 100 + RANDOM % (total * 10 / 100 + 1)))
	fi
	local t0 pause
	t0=$(date +%s%N)
	for ((i = 0; i < total; i++)); do
		if [ "$i" -eq "$attack_at" ]; then
			exploit=$(now)
			log "$name: attack '$attack' at request $i/$total"
			run_attack "$attack" >/dev/null 2>&1 || log "WARNING: attack command failed"
		fi
		local page=${PAGES[$((RANDOM % ${#PAGES[@]}))]}
		if [ $((RANDOM % 10)) -eq 0 ]; then
			curl -s -o /dev/null -I --max-time 2 "http://127.0.0.1:$PORT$page" || true
		else
			curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$PORT$page" || true
		fi
		# pace to RATE per second against the start time
		pause=$(( (t0 + (i + 1) * 1000000000 / RATE - $(date +%s%N)) / 1000000 ))
		if [ "$pause" -gt 0 ]; then sleep "$(printf '0.%03d' "$pause")"; fi
	done
	sleep 0.5
	kill -INT "$BT_PID"
	wait "$BT_PID" || true
	BT_PID=""
	stop_sandbox

	local extra=()
	if [ -n "$exploit" ]; then extra=(--exploit "$exploit" --exploit-name "$attack"); fi
	"$PY" "$HERE/bt2lidds.py" --raw "$raw" --offset-ns "$offset" --name "$name" \
		--out "$outdir" --container-ready "$container_ready" \
		--warmup-end "$warmup_end" --recording-time "$DURATION" \
		--container-name "chids-example-$SEQ" "${extra[@]}" --allow-lost |
		tee -a "$WORK/summary.txt"
	rm -f "$raw"
}

# ---------------------------------------------------------------- main
make_site
RANDOM=$SEED
rm -rf "$OUT/training" "$OUT/test"
mkdir -p "$OUT/training" "$OUT/test/normal" "$OUT/test/normal_and_attack"
for ((k = 1; k <= N_TRAIN; k++)); do
	record_one "$OUT/training" "normal_train_$k"
done
for ((k = 1; k <= N_TEST_NORMAL; k++)); do
	record_one "$OUT/test/normal" "normal_test_$k"
done
for a in "${ATTACKS[@]}"; do
	record_one "$OUT/test/normal_and_attack" "attack_$a" "$a"
done
log "summary:"
cat "$WORK/summary.txt" >&2
if grep -q 'lost=[1-9]' "$WORK/summary.txt"; then
	log "WARNING: bpftrace lost events in some recordings (see lost=)"
fi
